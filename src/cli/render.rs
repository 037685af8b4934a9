//! Renders problems for people: a snippet of the file with the spot marked, and the hint.

use std::io::IsTerminal as _;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource};

use crate::diagnostic::{Problem, Problems};

/// Prints every problem to standard error, then a count.
pub fn problems(problems: &Problems) {
    let color = std::io::stderr().is_terminal();
    let handler = GraphicalReportHandler::new_themed(if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    });
    for problem in &problems.0 {
        // The one-line form first: grep-able, and complete on its own.
        eprintln!("error: {problem}");
        if let Some(snippet) = snippet(problem) {
            let mut out = String::new();
            if handler.render_report(&mut out, snippet.as_ref()).is_ok() {
                eprintln!("{out}");
            }
        }
    }
    let n = problems.0.len();
    eprintln!(
        "{n} problem{} found; nothing was injected",
        if n == 1 { "" } else { "s" }
    );
}

fn snippet(problem: &Problem) -> Option<Box<dyn miette::Diagnostic + Send + Sync>> {
    let location = problem.location.as_ref()?;
    let source = std::fs::read_to_string(&location.file).ok()?;
    let offset = offset_of(&source, location.line, location.column)?;
    let mut diagnostic = MietteDiagnostic::new(problem.message.clone())
        .with_label(LabeledSpan::at(offset..offset + 1, "here"));
    if let Some(hint) = &problem.hint {
        diagnostic = diagnostic.with_help(hint.clone());
    }
    let report = miette::Report::new(diagnostic).with_source_code(NamedSource::new(
        location.file.display().to_string(),
        source,
    ));
    Some(report.into())
}

fn offset_of(source: &str, line: usize, column: usize) -> Option<usize> {
    let start: usize = source
        .split_inclusive('\n')
        .take(line.checked_sub(1)?)
        .map(str::len)
        .sum();
    let line_text = source[start..].lines().next().unwrap_or("");
    let col = column
        .saturating_sub(1)
        .min(line_text.len().saturating_sub(1));
    Some(start + line_text.char_indices().nth(col).map_or(0, |(i, _)| i))
}
