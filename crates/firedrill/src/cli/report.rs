//! `firedrill report`: the HTML report (and trend) from JSON drill reports.

use std::path::{Path, PathBuf};

use super::Exit;
use firedrill_report::{html, json};

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// JSON drill reports, or folders of them (e.g. one per quarter).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Write the self-contained HTML report here.
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
}

/// Renders the reports, oldest run first.
pub fn report(args: &ReportArgs) -> Exit {
    let mut files = Vec::new();
    for input in &args.inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|e| e == "json"))
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            if found.is_empty() {
                errln!("error: {} holds no .json reports", input.display());
                return Exit::Usage;
            }
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    let mut reports = Vec::new();
    let mut failed = false;
    for file in &files {
        match json::load(file) {
            Ok(r) => reports.push(r),
            Err(e) => {
                errln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Exit::Usage;
    }
    reports.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    write(&reports, &args.html)
}

/// Renders and writes; shared with `run --html`.
pub fn write(reports: &[json::Report], path: &Path) -> Exit {
    let written = html::render(reports)
        .map_err(|e| e.to_string())
        .and_then(|page| {
            std::fs::write(path, page).map_err(|e| format!("cannot write {}: {e}", path.display()))
        });
    match written {
        Ok(()) => {
            outln!("HTML report: {}", path.display());
            Exit::Passed
        }
        Err(e) => {
            errln!("error: {e}");
            Exit::Usage
        }
    }
}
