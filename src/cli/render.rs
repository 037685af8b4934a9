//! Renders problems for people: a snippet of the file with the spot marked, and the hint.

use std::io::IsTerminal as _;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource};

use crate::diagnostic::{Problem, Problems};

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
    let source = redact_credentials(&std::fs::read_to_string(&location.file).ok()?);
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

/// Hides `user:password@` in URLs of a file shown as a snippet (safety rule 7): a platform file
/// that wrongly holds a connection string must not leak it into CI logs through its error.
fn redact_credentials(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.split_inclusive('\n') {
        let mut rest = line;
        while let Some(scheme) = rest.find("://") {
            let after = &rest[scheme + 3..];
            let authority_end = after
                .find(['/', '"', '\'', ' ', '\n'])
                .unwrap_or(after.len());
            match after[..authority_end].rfind('@') {
                Some(at) => {
                    out.push_str(&rest[..scheme + 3]);
                    // Same length, so columns still point at the right place.
                    out.push_str(&"*".repeat(at));
                    rest = &after[at..];
                }
                None => {
                    out.push_str(&rest[..scheme + 3]);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_masked_and_columns_kept() {
        let line = "    uri: \"mongodb://admin:hunter2@db:27017/x\"\nurl: http://plain.example/\n";
        let masked = redact_credentials(line);
        assert!(
            !masked.contains("hunter2") && !masked.contains("admin"),
            "{masked}"
        );
        assert_eq!(masked.len(), line.len());
        assert!(
            masked.contains("@db:27017") && masked.contains("http://plain.example/"),
            "{masked}"
        );
    }

    #[test]
    fn offsets_follow_lines_and_columns() {
        let source = "ab\ncdef\n";
        assert_eq!(offset_of(source, 2, 3), Some(5));
        assert_eq!(offset_of(source, 1, 1), Some(0));
    }
}
