//! Where a `.feature` file stops being Gherkin, line by line.
//!
//! The gherkin parser reports the furthest position its grammar reached, which is often the
//! line *after* the bad one, and quotes as "unknown keyword" whatever slice its last attempt
//! took (`Scen` of `Scenaro: typo`). When it refuses a file, [`first_bad_line`] walks the file
//! as Gherkin's line kinds allow and names the first line that cannot be there, with the whole
//! word it starts with. It is deliberately lenient: where it is unsure it says nothing, and the
//! parser's own position is used.

/// The English keywords a line may start with, as a drill author writes them.
pub const KEYWORDS: &[&str] = &[
    "Feature",
    "Background",
    "Rule",
    "Scenario",
    "Scenario Outline",
    "Examples",
    "Given",
    "When",
    "Then",
    "And",
    "But",
];

const FEATURE: &[&str] = &["Feature", "Business Need", "Ability"];
const HEADERS: &[&str] = &[
    "Background",
    "Rule",
    "Scenario Outline",
    "Scenario Template",
    "Scenario",
    "Example",
    "Examples",
    "Scenarios",
];
const STEPS: &[&str] = &["Given ", "When ", "Then ", "And ", "But ", "* "];

/// The first line that cannot be where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// Line, from 1.
    pub line: usize,
    /// Column of its first character, from 1.
    pub column: usize,
    /// What is wrong with it.
    pub kind: Bad,
}

/// What is wrong with a [`BadLine`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bad {
    /// Something other than `Feature:` (or tags and comments) opens the file.
    BeforeFeature {
        /// The word the line starts with.
        word: String,
    },
    /// A line among steps that is no step, table row, doc string, tag, comment or header.
    UnknownKeyword {
        /// The word the line starts with (up to its `:`, so `Scenario Outlin` whole).
        word: String,
    },
    /// A second `Feature:`.
    SecondFeature,
    /// A doc string that is never closed.
    UnclosedDocString,
}

/// True when the file holds nothing but blank lines and comments.
#[must_use]
pub fn is_empty(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#')
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before `Feature:`.
    Preamble,
    /// After a header line: free text is its description. `steps` says whether steps may follow
    /// (a Scenario's or Background's description), or are description too (a Feature's, Rule's);
    /// `table` whether a table may (the Examples').
    Description { steps: bool, table: bool },
    /// After a step, a table row or a closed doc string.
    Steps,
    /// Inside a doc string opened by this delimiter.
    DocString(&'static str),
}

/// The first line of `text` that Gherkin does not allow where it is; `None` when every line
/// looks right (or the file is not in English, which this walk does not know).
#[must_use]
pub fn first_bad_line(text: &str) -> Option<BadLine> {
    let mut state = State::Preamble;
    let mut opened_at = (0, 0);
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        let line = index + 1;
        let column = raw[..raw.len() - trimmed.len()].chars().count() + 1;
        let bad = |kind| Some(BadLine { line, column, kind });
        if let State::DocString(delimiter) = state {
            if trimmed.starts_with(delimiter) {
                state = State::Steps;
            }
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('@') {
            continue;
        }
        if trimmed.starts_with('#') {
            if index == 0 || state == State::Preamble {
                let directive = trimmed.trim_start_matches('#').trim_start();
                if let Some(language) = directive.strip_prefix("language") {
                    let language = language.trim_start_matches([' ', ':']).trim();
                    if language != "en" {
                        return None;
                    }
                }
            }
            continue;
        }
        let header = header(trimmed);
        match state {
            State::Preamble => match header {
                Some(h) if FEATURE.contains(&h) => {
                    state = State::Description {
                        steps: false,
                        table: false,
                    };
                }
                _ => {
                    return bad(Bad::BeforeFeature {
                        word: word(trimmed),
                    });
                }
            },
            State::Description { steps, table } => match header {
                Some(h) if FEATURE.contains(&h) => return bad(Bad::SecondFeature),
                Some(h) => state = description_of(h),
                None if steps && is_step(trimmed) => state = State::Steps,
                None if table && trimmed.starts_with('|') => state = State::Steps,
                None => {}
            },
            State::Steps => match header {
                Some(h) if FEATURE.contains(&h) => return bad(Bad::SecondFeature),
                Some(h) => state = description_of(h),
                None if is_step(trimmed) || trimmed.starts_with('|') => {}
                None => match doc_string(trimmed) {
                    Some(delimiter) => {
                        opened_at = (line, column);
                        state = State::DocString(delimiter);
                    }
                    None => {
                        return bad(Bad::UnknownKeyword {
                            word: word(trimmed),
                        });
                    }
                },
            },
            State::DocString(_) => {}
        }
    }
    match state {
        State::DocString(_) => Some(BadLine {
            line: opened_at.0,
            column: opened_at.1,
            kind: Bad::UnclosedDocString,
        }),
        _ => None,
    }
}

fn description_of(header: &str) -> State {
    State::Description {
        steps: header != "Rule",
        table: matches!(header, "Examples" | "Scenarios"),
    }
}

/// The header keyword a line opens with (`Scenario` of `Scenario: x`), when followed by `:`.
fn header(line: &str) -> Option<&'static str> {
    FEATURE
        .iter()
        .chain(HEADERS)
        .filter(|k| {
            line.strip_prefix(**k)
                .is_some_and(|rest| rest.trim_start_matches([' ', '\t']).starts_with(':'))
        })
        .max_by_key(|k| k.len())
        .copied()
}

fn is_step(line: &str) -> bool {
    STEPS.iter().any(|k| line.starts_with(k))
}

fn doc_string(line: &str) -> Option<&'static str> {
    ["\"\"\"", "```"].into_iter().find(|d| line.starts_with(d))
}

/// The word a line starts with, as its author meant it: up to a `:` when what comes before it
/// is a few words (`Scenario Outlin`), else the first word (`Whenn`).
fn word(line: &str) -> String {
    if let Some((before, _)) = line.split_once(':') {
        let before = before.trim_end();
        if !before.is_empty()
            && before.split_whitespace().count() <= 3
            && before.chars().all(|c| c.is_alphabetic() || c == ' ')
        {
            return before.to_owned();
        }
    }
    line.split_whitespace().next().unwrap_or(line).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(text: &str) -> Option<(usize, usize, Bad)> {
        first_bad_line(text).map(|b| (b.line, b.column, b.kind))
    }

    fn unknown(word: &str) -> Bad {
        Bad::UnknownKeyword {
            word: word.to_owned(),
        }
    }

    #[test]
    fn a_misspelt_header_after_steps_is_named_whole_at_its_own_line() {
        let text = "Feature: f\n  Scenario: ok\n    When x\n  Scenaro: typo\n    When y\n";
        assert_eq!(bad(text), Some((4, 3, unknown("Scenaro"))));
        let text = "Feature: f\n  Scenario: ok\n    When x\n  Scenario Outlin: typo\n    When y\n";
        assert_eq!(bad(text), Some((4, 3, unknown("Scenario Outlin"))));
    }

    #[test]
    fn a_misspelt_step_keyword_and_a_stray_line_are_named() {
        let text = "Feature: f\n  Scenario: ok\n    When x\n    Whenn the fault\n";
        assert_eq!(bad(text), Some((4, 5, unknown("Whenn"))));
        let text = "Feature: f\n  Scenario: ok\n    When x\n    this line is not gherkin\n";
        assert_eq!(bad(text), Some((4, 5, unknown("this"))));
    }

    #[test]
    fn valid_gherkin_has_no_bad_line() {
        let text = "# a comment\n@tag\nFeature: f\n  A description.\n  Given words here are description\n\n  Background:\n    Given a\n\n  @slow\n  Scenario Outline: o\n    Some description\n    When <x>\n      \"\"\"\n      anything: at all\n      \"\"\"\n    And a table\n      | a | b |\n    # comment\n    Examples:\n      | x |\n      | 1 |\n\n  Rule: r\n    Scenario: s\n      * a star step\n";
        assert_eq!(bad(text), None);
    }

    #[test]
    fn a_stray_line_after_an_examples_table_is_named() {
        let text = "Feature: f\n  Scenario Outline: o\n    When <x>\n    Examples:\n      | x |\n      | 1 |\n    oops\n";
        assert_eq!(bad(text), Some((7, 5, unknown("oops"))));
    }

    #[test]
    fn other_mistakes_are_located() {
        assert_eq!(
            bad("Scenario: x\n  When y\n"),
            Some((
                1,
                1,
                Bad::BeforeFeature {
                    word: "Scenario".into()
                }
            ))
        );
        assert_eq!(
            bad("Feature: a\n  Scenario: x\n    When y\nFeature: b\n"),
            Some((4, 1, Bad::SecondFeature))
        );
        assert_eq!(
            bad("Feature: a\n  Scenario: x\n    When y\n      \"\"\"\n      text\n"),
            Some((4, 7, Bad::UnclosedDocString))
        );
    }

    #[test]
    fn another_language_is_left_to_the_parser() {
        assert_eq!(
            bad("# language: fr\nFonctionnalité: f\n  Scénario: s\n    Quand x\n"),
            None
        );
    }

    #[test]
    fn only_comments_and_blank_lines_is_empty() {
        assert!(is_empty(""));
        assert!(is_empty("\n  \n# nothing here\n"));
        assert!(!is_empty("Feature: f\n"));
    }
}
