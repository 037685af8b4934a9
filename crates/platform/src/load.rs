//! Reading a platform file: `${ENV}` interpolation, strict parsing, key positions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::Platform;
use firedrill_core::diagnostic::{Location, Problem, Problems};

/// Reads, interpolates, parses and validates a platform file.
///
/// # Errors
///
/// Every problem found, each with `file:line:column` and a hint.
pub fn load(path: &Path) -> Result<Platform, Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problems(vec![Problem {
            location: None,
            message: format!("cannot read platform file {}: {e}", path.display()),
            hint: Some("check the path given to --platform".into()),
        }])
    })?;
    load_str(path, &text, &|name| std::env::var(name).ok())
}

/// Like [`load`], from text already read, with the environment given as a function (tests).
///
/// # Errors
///
/// Every problem found, each with `file:line:column` and a hint.
pub fn load_str(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Platform, Problems> {
    let interpolated = interpolate(path, text, env)?;
    let unfilled = super::placeholders(path, &interpolated);
    if !unfilled.is_empty() {
        return Err(unfilled);
    }
    let locator = Locator::index(&interpolated);
    let mut platform: Platform = serde_yaml::from_str(&interpolated).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        Problems(vec![parse_problem(
            Location::new(path, line, column),
            &e.to_string(),
        )])
    })?;
    platform.source = super::Source {
        path: path.to_path_buf(),
        locator,
    };
    platform.validate()?;
    Ok(platform)
}

/// Turns serde_yaml's message into one of ours: position stripped (we print it), hint added.
fn parse_problem(location: Location, message: &str) -> Problem {
    let message = message.split(" at line ").next().unwrap_or(message);
    // serde quotes the offending value; it may be a secret (an inline connection string).
    let message = redact_values(message);
    let hint = if message.contains("unknown field") {
        "remove the key or fix its spelling; the expected keys are listed above"
    } else if message.contains("missing field") {
        "add the key; see fixtures/platforms/production.example.yaml for an annotated example"
    } else if message.contains("not a duration") {
        "write durations like 90s, 5m or 25 minutes"
    } else {
        "check the YAML syntax and the value's type here"
    };
    Problem::at(location, format!("invalid platform file: {message}")).hint(hint)
}

/// Removes quoted values from a parser message (`string "mongodb://u:p@h"` → `string`).
fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("string \"") {
        out.push_str(&rest[..start + "string".len()]);
        let after = &rest[start + "string \"".len()..];
        rest = after.find('"').map_or("", |end| &after[end + 1..]);
    }
    out.push_str(rest);
    out
}

/// Replaces `${NAME}` and `${NAME:-default}`; `$${` is a literal `${`. Lines never move.
fn interpolate(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Problems> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Problems::default();
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            // A comment may mention ${NAME} without meaning it.
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        let mut column = 1;
        while let Some(start) = rest.find("${") {
            if rest[..start].ends_with('$') {
                out.push_str(&rest[..start - 1]);
                out.push_str("${");
                column += start + 2;
                rest = &rest[start + 2..];
                continue;
            }
            out.push_str(&rest[..start]);
            let at = Location::new(path, line_no + 1, column + start);
            let Some(end) = rest[start..].find('}') else {
                problems.push(
                    Problem::at(at, "unterminated ${ in platform file").hint("close it: ${NAME}"),
                );
                rest = "";
                break;
            };
            let inner = &rest[start + 2..start + end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                problems.push(
                    Problem::at(
                        at,
                        format!("\"${{{inner}}}\" is not an environment variable reference"),
                    )
                    .hint("use ${NAME} or ${NAME:-default}, NAME made of letters, digits and _"),
                );
            } else {
                match (env(name), default) {
                    (Some(value), _) => out.push_str(&value),
                    (None, Some(default)) => out.push_str(default),
                    (None, None) => problems.push(
                        Problem::at(at, format!("environment variable {name} is not set")).hint(
                            format!("export {name}, or give a default: ${{{name}:-value}}"),
                        ),
                    ),
                }
            }
            column += start + end + 1;
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Positions of every key and value in a YAML document, by dotted path
/// (`regions.us-west1.zones.1`).
#[derive(Clone, Debug, Default)]
pub struct Locator {
    positions: HashMap<String, (usize, usize)>,
}

impl Locator {
    /// Indexes `text`. A document that does not parse gives an empty index (serde reports it).
    #[must_use]
    pub fn index(text: &str) -> Self {
        let mut indexer = Indexer::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut indexer, false).is_err() {
            return Self::default();
        }
        Self {
            positions: indexer.positions,
        }
    }

    /// Where `path` is; falls back to its closest indexed parent, then the file start.
    #[must_use]
    pub fn locate(&self, file: &Path, path: &str) -> Location {
        let mut probe = path;
        loop {
            if let Some(&(line, column)) = self.positions.get(probe) {
                return Location::new(PathBuf::from(file), line, column);
            }
            match probe.rfind('.') {
                Some(dot) => probe = &probe[..dot],
                None => return Location::new(PathBuf::from(file), 1, 1),
            }
        }
    }
}

enum Frame {
    Mapping { key: Option<String> },
    Sequence { index: usize },
}

#[derive(Default)]
struct Indexer {
    /// Open collections, with whether each added a path segment.
    stack: Vec<(Frame, bool)>,
    path: Vec<String>,
    positions: HashMap<String, (usize, usize)>,
}

impl Indexer {
    /// Called for a value (scalar or collection start); returns whether the value opened a path
    /// segment that must be popped after it.
    fn enter_value(&mut self, mark: Marker) -> bool {
        let segment = match self.stack.last_mut() {
            Some((Frame::Mapping { key }, _)) => key.take(),
            Some((Frame::Sequence { index }, _)) => {
                let segment = index.to_string();
                *index += 1;
                Some(segment)
            }
            None => None,
        };
        match segment {
            Some(segment) => {
                self.path.push(segment);
                let key = self.path.join(".");
                self.positions
                    .entry(key)
                    .or_insert((mark.line(), mark.col() + 1));
                true
            }
            None => false,
        }
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, ..) => {
                if let Some((Frame::Mapping { key }, _)) = self.stack.last_mut()
                    && key.is_none()
                {
                    *key = Some(value.clone());
                    let mut path = self.path.clone();
                    path.push(value);
                    self.positions
                        .insert(path.join("."), (mark.line(), mark.col() + 1));
                    return;
                }
                if self.enter_value(mark) {
                    self.path.pop();
                }
            }
            Event::MappingStart(..) => {
                let pushed = self.enter_value(mark);
                self.stack.push((Frame::Mapping { key: None }, pushed));
            }
            Event::SequenceStart(..) => {
                let pushed = self.enter_value(mark);
                self.stack.push((Frame::Sequence { index: 0 }, pushed));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some((_, true)) = self.stack.pop() {
                    self.path.pop();
                }
            }
            Event::Alias(_) if self.enter_value(mark) => {
                self.path.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "name: test\nregions:\n  us-west1:\n    role: primary\n    zones: [a, b]\n";

    #[test]
    fn locates_keys_and_sequence_items() {
        let locator = Locator::index(YAML);
        let file = Path::new("p.yaml");
        assert_eq!(locator.locate(file, "regions.us-west1").line, 3);
        assert_eq!(
            locator.locate(file, "regions.us-west1.role"),
            Location::new("p.yaml", 4, 5)
        );
        assert_eq!(locator.locate(file, "regions.us-west1.zones").line, 5);
        // an unindexed child falls back to its parent
        assert_eq!(locator.locate(file, "regions.us-west1.nope").line, 3);
    }

    #[test]
    fn parser_messages_never_carry_the_offending_value() {
        assert_eq!(
            redact_values(
                "invalid type: string \"mongodb://admin:hunter2@db\", expected struct SecretRef"
            ),
            "invalid type: string, expected struct SecretRef"
        );
        assert_eq!(
            redact_values("unknown field `zonez`"),
            "unknown field `zonez`"
        );
    }

    #[test]
    fn interpolates_env_with_defaults_and_escapes() {
        let env = |name: &str| (name == "HOST").then(|| "db.internal".to_owned());
        let out = interpolate(
            Path::new("p"),
            "a: ${HOST}\nb: ${PORT:-27017}\nc: $${HOST}\n",
            &env,
        )
        .expect("interpolates");
        assert_eq!(out, "a: db.internal\nb: 27017\nc: ${HOST}\n");
    }

    #[test]
    fn missing_env_names_the_variable_and_its_position() {
        let env = |_: &str| None;
        let err = interpolate(
            Path::new("p.yaml"),
            "a: 1\nurl: http://${TOXI_HOST}:8474\n",
            &env,
        )
        .err()
        .map(|p| p.to_string())
        .unwrap_or_default();
        assert!(
            err.starts_with("p.yaml:2:13: environment variable TOXI_HOST is not set"),
            "{err}"
        );
        assert!(err.contains("hint:"), "{err}");
    }
}
