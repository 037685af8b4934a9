//! The files a run writes — its reports and its ledger — checked before anything is injected,
//! and the reports written once it ends.
//!
//! A drill that runs for 25 minutes and then cannot write its report has spent the estate's
//! outage budget for nothing, so every path is tried first: its folder exists, the file can be
//! opened for writing (an existing report is opened without truncating it: the last good one
//! stays until the run replaces it), and no two flags name one file. Reports are then written
//! once, at the end; one that still cannot be written (a full disk) is reported and makes the run
//! fail, and changes nothing about the undo, which happened before.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use firedrill_core::diagnostic::{Problem, Problems, echo};
use firedrill_engine::runner::{CucumberReports, ReportBuffer};
use firedrill_report::json::Report;

/// A path a run writes, and the flag that named it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Output {
    flag: &'static str,
    path: PathBuf,
}

/// A path that cannot be written, or a file named twice.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The folder the file goes in is missing.
    #[error(
        "{flag} {path}: the folder {folder} does not exist (hint: create it, or give a path in an existing folder)"
    )]
    NoFolder {
        /// The flag.
        flag: &'static str,
        /// The path given.
        path: String,
        /// Its folder.
        folder: String,
    },
    /// The path is a folder.
    #[error("{flag} {path} is a folder (hint: give a file name, e.g. {path}/report)")]
    IsFolder {
        /// The flag.
        flag: &'static str,
        /// The path given.
        path: String,
    },
    /// Opening it for writing failed.
    #[error(
        "{flag} {path} cannot be written: {source} (hint: check the folder's permissions and free space, or give another path)"
    )]
    NotWritable {
        /// The flag.
        flag: &'static str,
        /// The path given.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// Two flags name one file: the second would overwrite the first.
    #[error(
        "{first} {first_path} and {second} {second_path} name the same file (hint: give each its own file)"
    )]
    Same {
        /// The first flag.
        first: &'static str,
        /// Its path.
        first_path: String,
        /// The second flag.
        second: &'static str,
        /// Its path.
        second_path: String,
    },
    /// A report could not be written at the end of the run.
    #[error(
        "cannot write the report {path} ({flag}): {source} (hint: the drill ran and its undo is not affected; free space or fix the path, then run the drill again for its report)"
    )]
    Write {
        /// The flag.
        flag: &'static str,
        /// The path.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
}

/// The output paths of a run, checked.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    junit: Option<PathBuf>,
    json: Option<PathBuf>,
    html: Option<PathBuf>,
    cucumber_json: Option<PathBuf>,
    /// Cucumber's reports, filled during the run, written at its end.
    pub cucumber: CucumberReports,
}

/// The paths a run writes.
#[derive(Clone, Copy, Debug)]
pub struct Paths<'a> {
    /// `--junit`.
    pub junit: Option<&'a Path>,
    /// `--json`.
    pub json: Option<&'a Path>,
    /// `--html`.
    pub html: Option<&'a Path>,
    /// `--cucumber-json`.
    pub cucumber_json: Option<&'a Path>,
    /// `--ledger`.
    pub ledger: &'a Path,
}

impl Outputs {
    /// Checks every path: reports and the ledger. Touches nothing that exists and leaves no
    /// file behind.
    ///
    /// # Errors
    ///
    /// Every path that cannot be written and every file named twice, as problems to print.
    pub fn check(paths: Paths<'_>) -> Result<Self, Problems> {
        let reports = [
            ("--json", paths.json),
            ("--html", paths.html),
            ("--junit", paths.junit),
            ("--cucumber-json", paths.cucumber_json),
        ];
        let mut outputs: Vec<Output> = reports
            .iter()
            .filter_map(|(flag, path)| {
                path.map(|p| Output {
                    flag,
                    path: p.to_path_buf(),
                })
            })
            .collect();
        let mut errors: Vec<OutputError> = outputs.iter().filter_map(check_report).collect();
        let ledger = Output {
            flag: "--ledger",
            path: paths.ledger.to_path_buf(),
        };
        errors.extend(check_ledger(&ledger));
        outputs.push(ledger);
        errors.extend(same_files(&outputs));
        if !errors.is_empty() {
            return Err(Problems(
                errors
                    .into_iter()
                    .map(|e| Problem {
                        location: None,
                        message: e.to_string(),
                        hint: None,
                    })
                    .collect(),
            ));
        }
        let buffer = |path: Option<&Path>| path.map(|_| ReportBuffer::default());
        Ok(Self {
            junit: paths.junit.map(Path::to_path_buf),
            json: paths.json.map(Path::to_path_buf),
            html: paths.html.map(Path::to_path_buf),
            cucumber_json: paths.cucumber_json.map(Path::to_path_buf),
            cucumber: CucumberReports {
                junit: buffer(paths.junit),
                json: buffer(paths.cucumber_json),
            },
        })
    }

    /// Writes every report the run was asked for: firedrill's JSON and HTML from `report`,
    /// cucumber's JUnit and JSON from what the run put in [`Outputs::cucumber`]. Prints what
    /// was written and every failure.
    ///
    /// Returns whether every report was written.
    #[must_use]
    pub fn write(&self, report: &Report) -> bool {
        let mut all = true;
        let mut write = |flag: &'static str, path: &Path, content: Result<Vec<u8>, String>| {
            let written = content
                .map_err(std::io::Error::other)
                .and_then(|bytes| write_file(path, &bytes));
            match written {
                Ok(()) => {
                    if flag == "--html" {
                        outln!("HTML report: {}", path.display());
                    }
                }
                Err(source) => {
                    all = false;
                    errln!(
                        "error: {}",
                        OutputError::Write {
                            flag,
                            path: shown(path),
                            source,
                        }
                    );
                }
            }
        };
        if let Some(path) = &self.html {
            let page = firedrill_report::html::render(std::slice::from_ref(report))
                .map(String::into_bytes)
                .map_err(|e| e.to_string());
            write("--html", path, page);
        }
        if let Some(path) = &self.json {
            let json = serde_json::to_vec_pretty(report).map_err(|e| e.to_string());
            write("--json", path, json);
        }
        let cucumber = [
            ("--junit", &self.junit, &self.cucumber.junit),
            ("--cucumber-json", &self.cucumber_json, &self.cucumber.json),
        ];
        for (flag, path, buffer) in cucumber {
            if let (Some(path), Some(buffer)) = (path, buffer) {
                write(flag, path, Ok(buffer.take()));
            }
        }
        all
    }
}

/// Writes `bytes` over `path` and waits until they are on disk, so a full disk is an error
/// here and not a silently short file.
fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.flush()?;
    match file.sync_all() {
        // Character devices and pipes cannot be synced; what was written was accepted.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}

/// A path as the user gave it, echoed.
fn shown(path: &Path) -> String {
    echo(&path.display().to_string()).into_owned()
}

/// The folder a file goes in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A report goes in an existing folder and opens for writing.
fn check_report(output: &Output) -> Option<OutputError> {
    let path = &output.path;
    if path.is_dir() {
        return Some(OutputError::IsFolder {
            flag: output.flag,
            path: shown(path),
        });
    }
    let folder = folder_of(path);
    if !folder.is_dir() {
        return Some(OutputError::NoFolder {
            flag: output.flag,
            path: shown(path),
            folder: shown(folder),
        });
    }
    try_open(output).err()
}

/// The ledger's folder is created when missing, so the nearest existing folder above it must
/// take new entries; an existing ledger must open for appending.
fn check_ledger(output: &Output) -> Option<OutputError> {
    let path = &output.path;
    if path.is_dir() {
        return Some(OutputError::IsFolder {
            flag: output.flag,
            path: shown(path),
        });
    }
    let folder = folder_of(path);
    if folder.is_dir() {
        return try_open(output).err();
    }
    let existing = folder
        .ancestors()
        .find(|a| a.exists())
        .unwrap_or(Path::new("."));
    if !existing.is_dir() {
        return Some(OutputError::NoFolder {
            flag: output.flag,
            path: shown(path),
            folder: shown(folder),
        });
    }
    // Creating the folders would leave them behind on a refused run; a probe file where the
    // first one would be made shows they can be.
    let probe = Output {
        flag: output.flag,
        path: existing.join(format!(".firedrill-probe-{}", std::process::id())),
    };
    match try_open(&probe) {
        Ok(()) => None,
        Err(OutputError::NotWritable { source, .. }) => Some(OutputError::NotWritable {
            flag: output.flag,
            path: shown(path),
            source,
        }),
        Err(other) => Some(other),
    }
}

/// Opens the file for writing as the run will: an existing one without truncating it, a new
/// one created and removed again.
fn try_open(output: &Output) -> Result<(), OutputError> {
    let not_writable = |source| OutputError::NotWritable {
        flag: output.flag,
        path: shown(&output.path),
        source,
    };
    let path = &output.path;
    if path.exists() {
        return OpenOptions::new()
            .write(true)
            .open(path)
            .map(drop)
            .map_err(not_writable);
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(not_writable)?;
    std::fs::remove_file(path).map_err(not_writable)
}

/// The file a path names once its folder and links are resolved; `None` when that cannot be
/// known (the other checks report why).
fn identity(path: &Path) -> Option<PathBuf> {
    if let Ok(canonical) = path.canonicalize() {
        return Some(canonical);
    }
    let name = path.file_name()?;
    let folder = folder_of(path);
    folder
        .canonicalize()
        .or_else(|_| std::path::absolute(folder))
        .ok()
        .map(|f| f.join(name))
}

fn same_files(outputs: &[Output]) -> Vec<OutputError> {
    let mut errors = Vec::new();
    for (i, first) in outputs.iter().enumerate() {
        for second in &outputs[i + 1..] {
            if let (Some(a), Some(b)) = (identity(&first.path), identity(&second.path))
                && a == b
            {
                errors.push(OutputError::Same {
                    first: first.flag,
                    first_path: shown(&first.path),
                    second: second.flag,
                    second_path: shown(&second.path),
                });
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(ledger: &Path) -> Paths<'_> {
        Paths {
            junit: None,
            json: None,
            html: None,
            cucumber_json: None,
            ledger,
        }
    }

    fn messages(problems: &Problems) -> String {
        problems.to_string()
    }

    #[test]
    fn a_missing_folder_and_a_folder_as_file_are_named_with_their_flag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = dir.path().join("l/ledger.jsonl");
        let json = dir.path().join("no/such/r.json");
        let html = dir.path().to_path_buf();
        let mut p = paths(&ledger);
        p.json = Some(&json);
        p.html = Some(&html);
        let text = messages(&Outputs::check(p).expect_err("bad paths"));
        assert!(
            text.contains(&format!("--json {}: the folder", json.display())),
            "{text}"
        );
        assert!(text.contains("does not exist (hint: create it"), "{text}");
        assert!(
            text.contains(&format!("--html {} is a folder", html.display())),
            "{text}"
        );
        // The ledger's missing folder is fine (it is created), and nothing was left behind.
        assert!(!text.contains("--ledger"), "{text}");
        assert!(!dir.path().join("l").exists());
    }

    #[test]
    fn an_existing_report_is_not_truncated_and_a_new_one_is_not_left_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = dir.path().join("ledger.jsonl");
        let old = dir.path().join("old.json");
        std::fs::write(&old, "last quarter's report").expect("write");
        let new = dir.path().join("new.xml");
        let mut p = paths(&ledger);
        p.json = Some(&old);
        p.junit = Some(&new);
        Outputs::check(p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::fs::read_to_string(&old).expect("read"),
            "last quarter's report"
        );
        assert!(!new.exists());
        assert!(!ledger.exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn two_flags_naming_one_file_are_refused_also_through_another_spelling() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        let ledger = dir.path().join("r.json");
        let json = dir.path().join("r.json");
        let cucumber = dir.path().join("sub/../r.json");
        let mut p = paths(&ledger);
        p.json = Some(&json);
        p.cucumber_json = Some(&cucumber);
        let text = messages(&Outputs::check(p).expect_err("same file"));
        assert!(
            text.contains("--json") && text.contains("--cucumber-json"),
            "{text}"
        );
        assert!(text.contains("--ledger"), "{text}");
        assert_eq!(text.matches("name the same file").count(), 3, "{text}");
    }

    #[test]
    fn a_report_that_cannot_be_written_at_the_end_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = firedrill_report::json::Builder::new().finish("passed");
        let fine = dir.path().join("r.json");
        let gone = dir.path().join("gone/r.html");
        let outputs = Outputs {
            json: Some(fine.clone()),
            html: Some(gone),
            ..Outputs::default()
        };
        assert!(!outputs.write(&report), "the HTML report cannot be written");
        assert!(fine.exists(), "the JSON report is written regardless");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_at_the_end_is_an_error() {
        let report = firedrill_report::json::Builder::new().finish("passed");
        let outputs = Outputs {
            json: Some(PathBuf::from("/dev/full")),
            ..Outputs::default()
        };
        assert!(!outputs.write(&report));
        assert!(write_file(Path::new("/dev/full"), b"x").is_err());
    }
}
