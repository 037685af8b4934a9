//! Checking drills statically: every step of the selected scenarios matched against the
//! catalog and its arguments checked against the platform, without any I/O.

use cucumber::gherkin;
use firedrill_core::diagnostic::{Location, MESSAGE_LIMIT, Problem, Problems, clip, echo};
use firedrill_engine::drills::{Selection, effective_tags};
use firedrill_platform::Platform;
use firedrill_providers::preflight::Need;

use crate::{Catalog, Effect, Matched};

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
            // Guards armed from the start (the platform's `armed: always`, `@guard:` tags).
            let (needs, tag_problems) = crate::guards::analyze_start(&entry.tags, platform);
            entry.needs.extend(needs);
            for (message, hint) in tag_problems {
                problems.push(Problem::at(entry.location.clone(), message).hint(hint));
            }
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
                        let analysis = doc.analysis(&args, platform);
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
    let message = if argument.chars().count() > firedrill_core::diagnostic::ECHO_LIMIT {
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
