//! Loading drills (`.feature` files) and selecting scenarios. Checking their steps is the
//! steps' part (`firedrill_steps::check`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cucumber::feature::Ext as _;
use cucumber::gherkin::{self, GherkinEnv};
use cucumber::tag::Ext as _;

use firedrill_core::diagnostic::{Location, Problem, Problems, closest, echo};

use crate::syntax::{self, Bad};

/// Which scenarios to run.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// A tag expression (`@quarterly and not @gameday`).
    pub tags: Option<gherkin::tagexpr::TagOperation>,
    /// A regex on scenario names.
    pub name: Option<regex::Regex>,
    /// Leave out @gameday scenarios: they wait for a person at each change, so a run takes them
    /// only when its tag expression names @gameday.
    pub skip_gameday: bool,
}

/// The tag of scenarios whose every change a person approves at a prompt.
pub const GAMEDAY_TAG: &str = "gameday";

impl Selection {
    /// Whether a scenario is selected.
    #[must_use]
    pub fn selects(
        &self,
        feature: &gherkin::Feature,
        rule: Option<&gherkin::Rule>,
        scenario: &gherkin::Scenario,
    ) -> bool {
        let tags = effective_tags(feature, rule, scenario);
        if self.skip_gameday && tags.iter().any(|t| t == GAMEDAY_TAG) {
            return false;
        }
        let tags_ok = self.tags.as_ref().is_none_or(|expr| expr.eval(tags.iter()));
        let name_ok = self
            .name
            .as_ref()
            .is_none_or(|re| re.is_match(&scenario.name));
        tags_ok && name_ok
    }
}

/// A scenario's tags with its feature's and rule's, without the `@`.
#[must_use]
pub fn effective_tags(
    feature: &gherkin::Feature,
    rule: Option<&gherkin::Rule>,
    scenario: &gherkin::Scenario,
) -> Vec<String> {
    feature
        .tags
        .iter()
        .chain(rule.iter().flat_map(|r| &r.tags))
        .chain(scenario.tags.iter())
        .cloned()
        .collect()
}

/// Every `.feature` file under `paths` (files as given, folders recursively), sorted.
///
/// # Errors
///
/// A path that does not exist.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Problems> {
    let mut files = BTreeSet::new();
    let mut problems = Problems::default();
    for path in paths {
        if path.is_file() {
            files.insert(path.clone());
        } else if path.is_dir() {
            walk(path, &mut files);
        } else {
            problems.push(Problem {
                location: None,
                message: format!("{} does not exist", echo(&path.display().to_string())),
                hint: Some("give .feature files or folders holding them".into()),
            });
        }
    }
    if problems.is_empty() {
        Ok(files.into_iter().collect())
    } else {
        Err(problems)
    }
}

fn walk(dir: &Path, files: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "feature") {
            files.insert(path);
        }
    }
}

/// Parses feature files (Scenario Outlines expanded), collecting every parse error.
///
/// # Errors
///
/// Every file that does not parse, with its position; an empty file; a Scenario Outline
/// without Examples.
pub fn parse(files: &[PathBuf]) -> Result<Vec<gherkin::Feature>, Problems> {
    let mut features = Vec::new();
    let mut problems = Problems::default();
    for file in files {
        if std::fs::read_to_string(file).is_ok_and(|text| syntax::is_empty(&text)) {
            problems.push(
                Problem::in_file(file, "the file is empty: it holds no Feature").hint(
                    "start it with `Feature: <name>` and at least one Scenario, or remove it",
                ),
            );
            continue;
        }
        match gherkin::Feature::parse_path(file, GherkinEnv::default()) {
            Ok(feature) => {
                let outlines = outlines_without_examples(file, &feature);
                if !outlines.is_empty() {
                    // Checking its steps would only report its <placeholders> as values.
                    problems.0.extend(outlines);
                    continue;
                }
                match feature.expand_examples() {
                    Ok(feature) => features.push(feature),
                    Err(e) => problems.push(
                        Problem::in_file(file, format!("cannot expand Scenario Outline: {e}"))
                            .hint("every <placeholder> needs a column in Examples"),
                    ),
                }
            }
            Err(e) => problems.push(parse_problem(file, &e)),
        }
    }
    if problems.is_empty() {
        Ok(features)
    } else {
        Err(problems)
    }
}

/// Scenario Outlines (and Templates) with no Examples row to fill their `<placeholders>`.
fn outlines_without_examples(file: &Path, feature: &gherkin::Feature) -> Vec<Problem> {
    feature
        .scenarios
        .iter()
        .chain(feature.rules.iter().flat_map(|r| &r.scenarios))
        .filter(|s| s.keyword.starts_with("Scenario ") || !s.examples.is_empty())
        .filter(|s| {
            s.examples
                .iter()
                .all(|e| e.table.as_ref().is_none_or(|t| t.rows.len() < 2))
        })
        .map(|s| {
            let missing = if s.examples.is_empty() {
                "no Examples"
            } else {
                "no Examples rows"
            };
            Problem::at(
                Location::new(file, s.position.line, s.position.col),
                format!(
                    "{} \"{}\" has {missing}, so its <placeholders> have no values",
                    s.keyword,
                    echo(&s.name)
                ),
            )
            .hint("add `Examples:` with a table: a header row naming each <placeholder>, then a row per run; or make it a plain `Scenario:`")
        })
        .collect()
}

fn parse_problem(file: &Path, error: &gherkin::ParseFileError) -> Problem {
    match error {
        gherkin::ParseFileError::Reading { source, .. } => Problem {
            location: None,
            message: format!("cannot read {}: {source}", file.display()),
            hint: Some("check the path and its permissions".into()),
        },
        gherkin::ParseFileError::Parsing { error, source, .. } => {
            if let Some(gherkin::EnvError::UnsupportedLanguage(lang)) = error {
                return Problem::at(
                    Location::new(file, 1, 1),
                    format!("unsupported language \"{}\"", echo(lang)),
                )
                .hint("remove the `# language:` line or use a language Gherkin knows");
            }
            // The parser's position is the furthest its grammar got, often the line after the
            // bad one; find the bad line itself when the walk can.
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if let Some(bad) = syntax::first_bad_line(&text) {
                return bad_line_problem(file, &bad);
            }
            // gherkin keeps the position private; its message is "Error at LINE:COL: …".
            let text = source.to_string();
            let position = text.strip_prefix("Error at ").and_then(|rest| {
                rest.split(':')
                    .take(2)
                    .map(|n| n.trim().parse::<usize>().ok())
                    .collect::<Option<Vec<_>>>()
            });
            let (line, column) = match position.as_deref() {
                Some([line, column]) => (*line, (*column).max(1)),
                _ => (1, 1),
            };
            let (message, hint) = match error {
                Some(gherkin::EnvError::InconsistentCellCount(_)) => (
                    "a table row has a different number of cells".to_owned(),
                    "give every row of the table the same number of | cells |",
                ),
                _ => (
                    "not valid Gherkin".to_owned(),
                    "every step starts with Given, When, Then, And or But, inside a Scenario; check indentation and tags",
                ),
            };
            Problem::at(Location::new(file, line, column), message).hint(hint)
        }
    }
}

fn bad_line_problem(file: &Path, bad: &syntax::BadLine) -> Problem {
    let at = Location::new(file, bad.line, bad.column);
    let did_you_mean = |word: &str| {
        closest(word, syntax::KEYWORDS.iter().copied(), 1)
            .first()
            .map(|k| format!("did you mean \"{k}\"? "))
            .unwrap_or_default()
    };
    match &bad.kind {
        Bad::UnknownKeyword { word } => Problem::at(
            at,
            format!("unknown keyword \"{}\"", echo(word)),
        )
        .hint(format!(
            "{}among steps, a line is a step (Given, When, Then, And, But), a | table | row, a \"\"\" doc string, a comment, a @tag or the next Scenario:, Scenario Outline:, Examples: or Rule:",
            did_you_mean(word)
        )),
        Bad::BeforeFeature { word } => Problem::at(
            at,
            format!("the file must start with `Feature:`, not \"{}\"", echo(word)),
        )
        .hint(format!(
            "{}only comments, tags and a `# language:` line may come before `Feature: <name>`",
            did_you_mean(word)
        )),
        Bad::SecondFeature => Problem::at(at, "a second Feature in one file")
            .hint("a .feature file holds one Feature; move this one into its own file"),
        Bad::UnclosedDocString => Problem::at(at, "this doc string is never closed")
            .hint("close it with the same delimiter (\"\"\" or ```) on a line of its own"),
    }
}
