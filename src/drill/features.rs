//! Loading drills (`.feature` files), selecting scenarios, and checking them statically.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cucumber::feature::Ext as _;
use cucumber::gherkin::{self, GherkinEnv};
use cucumber::tag::Ext as _;

use crate::diagnostic::{Location, MESSAGE_LIMIT, Problem, Problems, clip, closest, echo};
use crate::drill::syntax::{self, Bad};
use crate::platform::Platform;
use crate::steps::{Catalog, Effect, Matched, Need};

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

/// A selected scenario, checked.
#[derive(Clone, Debug)]
pub struct Checked {
    /// Feature name.
    pub feature: String,
    /// Scenario name.
    pub scenario: String,
    /// Where it is.
    pub location: Location,
    /// Providers it needs.
    pub needs: Vec<Need>,
    /// What it would change, in order, with undo.
    pub effects: Vec<Effect>,
    /// Its tags with its feature's and rule's, without the `@`.
    pub tags: Vec<String>,
}

/// Matches every step of the selected scenarios and checks its arguments against `platform`.
///
/// # Errors
///
/// Every problem, located at the step (or the argument inside it).
pub fn check(
    features: &[gherkin::Feature],
    selection: &Selection,
    catalog: &Catalog,
    platform: &Platform,
) -> Result<Vec<Checked>, Problems> {
    let mut problems = Problems::default();
    let mut checked = Vec::new();
    for feature in features {
        let file = feature.path.clone().unwrap_or_default();
        let scenarios = feature.scenarios.iter().map(|s| (None, s)).chain(
            feature
                .rules
                .iter()
                .flat_map(|r| r.scenarios.iter().map(move |s| (Some(r), s))),
        );
        for (rule, scenario) in scenarios {
            if !selection.selects(feature, rule, scenario) {
                continue;
            }
            let background = feature
                .background
                .iter()
                .chain(rule.and_then(|r| r.background.as_ref()))
                .flat_map(|b| b.steps.iter());
            let mut entry = Checked {
                feature: feature.name.clone(),
                scenario: scenario.name.clone(),
                location: Location::new(&file, scenario.position.line, scenario.position.col),
                needs: Vec::new(),
                effects: Vec::new(),
                tags: effective_tags(feature, rule, scenario),
            };
            for step in background.chain(scenario.steps.iter()) {
                let at = |offset: usize| {
                    Location::new(
                        &file,
                        step.position.line,
                        step.position.col + step.keyword.len() + offset,
                    )
                };
                match catalog.matched(step) {
                    Matched::One { doc, args } => {
                        let analysis = (doc.analyze)(&args, platform);
                        for p in analysis.problems {
                            problems.push(
                                Problem::at(
                                    at(args.offset(p.arg)),
                                    format!(
                                        "{}: {}",
                                        step_text(step),
                                        echoing(&p.message, args.get(p.arg))
                                    ),
                                )
                                .hint(echoing(&p.hint, args.get(p.arg))),
                            );
                        }
                        entry.needs.extend(analysis.needs);
                        entry.effects.extend(analysis.effects);
                    }
                    Matched::Undefined { suggestions } => problems.push(
                        Problem::at(at(0), format!("undefined step: {}", step_text(step))).hint(
                            format!(
                                "the closest known steps are: {} (run `firedrill steps` for all)",
                                suggestions.join(" | ")
                            ),
                        ),
                    ),
                    Matched::Ambiguous { candidates } => problems.push(
                        Problem::at(
                            at(0),
                            format!(
                                "ambiguous step: {} matches {} definitions",
                                step_text(step),
                                candidates.len()
                            ),
                        )
                        .hint(format!(
                            "reword it so only one matches: {}",
                            candidates.join(" | ")
                        )),
                    ),
                }
            }
            entry.needs.sort();
            entry.needs.dedup();
            checked.push(entry);
        }
    }
    if problems.is_empty() {
        Ok(checked)
    } else {
        problems.sort();
        Err(problems)
    }
}

/// A step analysis' message, with the argument it quotes [`echo`]ed (a 10 MB fault name is
/// quoted once, shortened), and [`clip`]ped as a whole.
fn echoing(message: &str, argument: &str) -> String {
    let message = if argument.chars().count() > crate::diagnostic::ECHO_LIMIT {
        message.replace(argument, &echo(argument))
    } else {
        message.to_owned()
    };
    clip(&message, MESSAGE_LIMIT).into_owned()
}

/// The step as its author wrote it, [`echo`]ed: diagnostics quote it, and it may be huge.
fn step_text(step: &gherkin::Step) -> String {
    format!("{}{}", step.keyword, echo(&step.value))
}
