//! Renders problems for people: a snippet of the file with the spot marked, and the hint.

use std::io::IsTerminal as _;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource};

use firedrill_core::diagnostic::{
    ECHO_LIMIT, MESSAGE_LIMIT, Problem, Problems, clip, redact_secret_values, redact_userinfo,
};

/// The most characters of one source line a snippet shows.
const SNIPPET_LINE_LIMIT: usize = 2 * ECHO_LIMIT;

/// Prints every problem to standard error, then a count and that nothing was injected: for the
/// checks that come before anything acts (run, validate, plan).
pub fn problems(problems: &Problems) {
    print(problems, "; nothing was injected");
}

/// Prints every problem to standard error, then a count, and claims nothing about the estate:
/// for `recover`, whose problems come while faults may still be in place.
pub fn problems_found(problems: &Problems) {
    print(problems, "");
}

fn print(problems: &Problems, conclusion: &str) {
    let color = std::io::stderr().is_terminal();
    let handler = GraphicalReportHandler::new_themed(if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    });
    for problem in &problems.0 {
        // The one-line form first: grep-able, and complete on its own.
        errln!("error: {problem}");
        if let Some(snippet) = snippet(problem) {
            let mut out = String::new();
            if handler.render_report(&mut out, snippet.as_ref()).is_ok() {
                errln!("{out}");
            }
        }
    }
    let n = problems.0.len();
    errln!(
        "{n} problem{} found{conclusion}",
        if n == 1 { "" } else { "s" }
    );
}

fn snippet(problem: &Problem) -> Option<Box<dyn miette::Diagnostic + Send + Sync>> {
    let location = problem.location.as_ref()?;
    let source = printable(&std::fs::read_to_string(&location.file).ok()?);
    let offset = offset_of(&source, location.line, location.column)?;
    let mut diagnostic = MietteDiagnostic::new(clip(&problem.message, MESSAGE_LIMIT))
        .with_label(LabeledSpan::at(offset..offset + 1, "here"));
    if let Some(hint) = &problem.hint {
        diagnostic = diagnostic.with_help(clip(hint, MESSAGE_LIMIT));
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

/// A file shown as a snippet, safe to print: `user:password@` in URLs hidden (safety rule 7: a
/// platform file that wrongly holds a connection string must not leak it into CI logs through
/// its error), and every line [`clip`]ped, so a 10 MB line is not printed whole.
fn printable(source: &str) -> String {
    redact_secret_values(&redact_userinfo(source))
        .split_inclusive('\n')
        .map(|line| match line.strip_suffix('\n') {
            Some(text) => format!("{}\n", clip(text, SNIPPET_LINE_LIMIT)),
            None => clip(line, SNIPPET_LINE_LIMIT).into_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_hide_credentials_and_clip_long_lines_keeping_line_numbers() {
        let long = "z".repeat(1_000_000);
        let source = format!(
            "uri: \"mongodb://admin:hunter2@db\"\nWhen {long}\nlast\n    private-key: c0ffee-s3cret\n"
        );
        let shown = printable(&source);
        assert!(!shown.contains("hunter2"), "{}", &shown[..80]);
        assert!(
            !shown.contains("c0ffee-s3cret"),
            "{}",
            &shown[shown.len() - 80..]
        );
        assert!(shown.len() < 2 * SNIPPET_LINE_LIMIT, "{}", shown.len());
        assert_eq!(shown.lines().count(), 4);
        assert_eq!(shown.lines().nth(2), Some("last"));
        // A column past the cut points into the clipped line, not past it.
        let offset = offset_of(&shown, 2, 900_000).expect("offset");
        assert!(offset < shown.len(), "{offset}");
    }

    #[test]
    fn offsets_follow_lines_and_columns() {
        let source = "ab\ncdef\n";
        assert_eq!(offset_of(source, 2, 3), Some(5));
        assert_eq!(offset_of(source, 1, 1), Some(0));
    }
}
