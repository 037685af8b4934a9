//! Placeholders: values `firedrill init` could not read from the estate, written as
//! `"<fill: what goes here>"`. A platform file holding one is refused, each named at its
//! position, until the operator fills it in (or removes the section it sits in).

use std::path::Path;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use firedrill_core::diagnostic::{Location, Problem, Problems, echo};

/// How a placeholder starts; it ends at the next `>`.
pub const PLACEHOLDER: &str = "<fill:";

/// A placeholder value for `what`, as `firedrill init` writes it.
#[must_use]
pub fn placeholder(what: &str) -> String {
    format!("{PLACEHOLDER} {what}>")
}

/// Every placeholder in `text` (comments are not values, so a placeholder mentioned in one is
/// not reported), each at its line and column.
#[must_use]
pub fn placeholders(path: &Path, text: &str) -> Problems {
    let mut found = Found::default();
    let mut parser = Parser::new_from_str(text);
    // A document that does not parse is reported by serde with its position.
    let _ = parser.load(&mut found, false);
    Problems(
        found
            .0
            .into_iter()
            .map(|(value, line, column)| {
                Problem::at(
                    Location::new(path, line, column),
                    format!("placeholder \"{}\" is not filled in", echo(&value)),
                )
                .hint(
                    "`firedrill init` could not read this from the estate: replace it with the real value, or remove the section if no drill uses it",
                )
            })
            .collect(),
    )
}

#[derive(Default)]
struct Found(Vec<(String, usize, usize)>);

impl MarkedEventReceiver for Found {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if let Event::Scalar(value, ..) = event {
            let mut rest = value.as_str();
            while let Some(start) = rest.find(PLACEHOLDER) {
                let tail = &rest[start..];
                let end = tail.find('>').map_or(tail.len(), |e| e + 1);
                self.0
                    .push((tail[..end].to_owned(), mark.line(), mark.col() + 1));
                rest = &tail[end..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_placeholder_in_values_with_its_position_and_none_in_comments() {
        let text = format!(
            "# {}\nname: x\ntoxiproxy:\n  url: \"{}\"\ntraffic:\n  switch:\n    run: [\"{}\", \"-var={}\"]\n",
            placeholder("a comment"),
            placeholder("the Toxiproxy API"),
            placeholder("program"),
            placeholder("arguments"),
        );
        let problems = placeholders(Path::new("p.yaml"), &text).to_string();
        assert!(!problems.contains("a comment"), "{problems}");
        assert!(
            problems
                .contains("p.yaml:4:8: placeholder \"<fill: the Toxiproxy API>\" is not filled in"),
            "{problems}"
        );
        assert!(problems.contains("\"<fill: program>\""), "{problems}");
        assert!(problems.contains("\"<fill: arguments>\""), "{problems}");
        assert_eq!(
            problems.matches("is not filled in").count(),
            3,
            "{problems}"
        );
    }

    #[test]
    fn a_filled_file_has_none() {
        let text = "name: x\ntoxiproxy:\n  url: http://127.0.0.1:8474 # was <fill: the API>\n";
        assert!(placeholders(Path::new("p.yaml"), text).is_empty());
    }
}
