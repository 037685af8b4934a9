//! Gherkin step definitions, one file per domain, and the step catalog.
//!
//! Steps are defined with cucumber's attribute macros (regexes with named groups, so editors
//! with the Cucumber language server complete and navigate them). Next to each domain's
//! definitions sits its [`StepDoc`] list: the human pattern, an example, what it does, and an
//! `analyze` function that checks a matched step's arguments against the platform without any
//! I/O — `validate`, `plan` and preflight all run it. [`Catalog::build`] ties each doc to its
//! definition by matching the doc's example, and a test fails if a definition has no doc or a
//! doc's example matches anything but exactly one definition.

pub mod check;
pub mod faults;
pub mod guards;
pub mod kube;
pub mod mongo;
pub mod network;
pub mod probes;
pub mod queries;
pub mod timing;
pub mod traffic;
pub mod world;

pub use check::{Checked, check};
pub use world::Drill;

use std::collections::HashMap;
use std::fmt;

use cucumber::gherkin::{self, StepType};
use cucumber::step::{Collection, Location};

use firedrill_core::target::{Target, parse_duration};
use firedrill_platform::Platform;

/// A step failed: the message tells the operator what was expected and what was seen.
#[derive(Debug)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

/// Documentation and static checks of one step definition.
#[derive(Clone, Copy)]
pub struct StepDoc {
    /// `Given`, `When` or `Then`.
    pub keyword: &'static str,
    /// The step as a reader sees it, with `{placeholders}`.
    pub pattern: &'static str,
    /// A complete example (without the keyword).
    pub example: &'static str,
    /// What it does.
    pub doc: &'static str,
    /// The domain (file) it belongs to.
    pub domain: &'static str,
    /// Checks the arguments against the platform; no I/O.
    pub analyze: fn(&Args, &Platform) -> Analysis,
}

impl fmt::Debug for StepDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepDoc")
            .field("pattern", &self.pattern)
            .finish_non_exhaustive()
    }
}

/// A step's named arguments with their offsets in the step text.
#[derive(Clone, Debug, Default)]
pub struct Args {
    values: HashMap<String, (String, usize)>,
}

impl Args {
    /// The argument `name` (empty when the optional group did not match).
    #[must_use]
    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map_or("", |(v, _)| v.as_str())
    }

    /// Whether the group `name` matched.
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// Offset of `name` in the step text, in characters (0 when absent).
    #[must_use]
    pub fn offset(&self, name: &str) -> usize {
        self.values.get(name).map_or(0, |(_, o)| *o)
    }
}

pub use firedrill_providers::preflight::Need;

/// A change a step would make, and how it would be undone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    /// What it injects or changes, where.
    pub what: String,
    /// How it is undone.
    pub undo: String,
}

/// A problem with one argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgProblem {
    /// The argument (named group); locates the problem in the step.
    pub arg: &'static str,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
}

/// The static outcome of a step.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// Problems with its arguments.
    pub problems: Vec<ArgProblem>,
    /// Providers it needs.
    pub needs: Vec<Need>,
    /// Changes it makes.
    pub effects: Vec<Effect>,
}

impl Analysis {
    /// Adds a problem.
    pub fn problem(
        &mut self,
        arg: &'static str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.problems.push(ArgProblem {
            arg,
            message: message.into(),
            hint: hint.into(),
        });
    }

    /// Checks that `region` exists.
    pub fn region(&mut self, arg: &'static str, region: &str, platform: &Platform) {
        if !platform.regions.contains_key(region) {
            self.problem(
                arg,
                format!("region \"{region}\" is not in the platform"),
                format!(
                    "known regions: {}",
                    firedrill_core::diagnostic::one_of(&platform.region_names())
                ),
            );
        }
    }

    /// Checks a duration argument.
    pub fn duration(&mut self, arg: &'static str, text: &str) {
        if let Err(e) = parse_duration(text) {
            let (message, hint) = e.parts();
            self.problem(arg, message, hint);
        }
    }

    /// Checks a target argument.
    pub fn target(&mut self, arg: &'static str, text: &str) {
        if let Err(e) = text.parse::<Target>() {
            let (message, hint) = e.parts();
            self.problem(arg, message, hint);
        }
    }

    /// Needs the traffic section; records its probe.
    pub fn traffic(&mut self, arg: &'static str, platform: &Platform) {
        match &platform.traffic {
            Some(t) => self.needs.push(Need::Probe(t.probe.clone())),
            None => self.problem(
                arg,
                "the platform has no `traffic` section",
                "define traffic.switch and traffic.probe in the platform file",
            ),
        }
    }
}

/// Every domain's step docs.
#[must_use]
pub fn docs() -> Vec<StepDoc> {
    [
        traffic::DOCS,
        faults::DOCS,
        network::DOCS,
        probes::DOCS,
        timing::DOCS,
        mongo::DOCS,
        kube::DOCS,
        guards::DOCS,
        queries::DOCS,
    ]
    .concat()
}

/// The step definitions with their docs, as the runner and `validate` see them.
pub struct Catalog {
    collection: Collection<Drill>,
    by_location: HashMap<Location, StepDoc>,
}

/// A doc that does not match exactly one definition (a bug in firedrill, caught by tests).
#[derive(Debug, thiserror::Error)]
#[error(
    "step doc \"{pattern}\": its example matches {matches} definitions (hint: fix the example or the regex)"
)]
pub struct CatalogError {
    /// The doc's pattern.
    pub pattern: &'static str,
    /// How many definitions matched.
    pub matches: String,
}

/// A feature step matched against the catalog.
#[derive(Debug)]
pub enum Matched {
    /// Exactly one definition.
    One {
        /// Its doc.
        doc: StepDoc,
        /// The arguments.
        args: Args,
    },
    /// None.
    Undefined {
        /// The closest known steps, best first.
        suggestions: Vec<String>,
    },
    /// Several.
    Ambiguous {
        /// Their patterns.
        candidates: Vec<String>,
    },
}

impl Catalog {
    /// Links every doc to the definition its example matches.
    ///
    /// # Errors
    ///
    /// [`CatalogError`] when an example matches no or several definitions.
    pub fn build() -> Result<Self, CatalogError> {
        use cucumber::World as _;
        let collection = Drill::collection();
        let mut by_location = HashMap::new();
        for doc in docs() {
            let step = step(doc.keyword, doc.example);
            match collection.find(&step) {
                Ok(Some((_, _, Some(location), _))) => {
                    by_location.insert(location, doc);
                }
                Ok(_) => {
                    return Err(CatalogError {
                        pattern: doc.pattern,
                        matches: "no".into(),
                    });
                }
                Err(e) => {
                    return Err(CatalogError {
                        pattern: doc.pattern,
                        matches: e.possible_matches.len().to_string(),
                    });
                }
            }
        }
        Ok(Self {
            collection,
            by_location,
        })
    }

    /// Definitions that have no doc (their source locations); empty when the catalog is whole.
    #[must_use]
    pub fn undocumented(&self) -> Vec<Location> {
        use cucumber::codegen::inventory::iter;
        use cucumber::codegen::{StepConstructor as _, WorldInventory};
        let given = iter::<<Drill as WorldInventory>::Given>
            .into_iter()
            .map(|s| s.inner().0);
        let when = iter::<<Drill as WorldInventory>::When>
            .into_iter()
            .map(|s| s.inner().0);
        let then = iter::<<Drill as WorldInventory>::Then>
            .into_iter()
            .map(|s| s.inner().0);
        given
            .chain(when)
            .chain(then)
            .filter(|l| !self.by_location.contains_key(l))
            .collect()
    }

    /// Matches a feature step.
    #[must_use]
    pub fn matched(&self, feature_step: &gherkin::Step) -> Matched {
        match self.collection.find(feature_step) {
            Ok(Some((_, captures, location, context))) => {
                let doc = location.and_then(|l| self.by_location.get(&l).copied());
                match doc {
                    Some(doc) => {
                        let mut args = Args::default();
                        for (i, (name, value)) in context.matches.iter().enumerate() {
                            if let (Some(name), Some((start, _))) = (name, captures.get(i)) {
                                // Columns count characters (a `±` before the argument is one).
                                let column = feature_step
                                    .value
                                    .get(..start)
                                    .map_or(start, |before| before.chars().count());
                                args.values.insert(name.clone(), (value.clone(), column));
                            }
                        }
                        Matched::One { doc, args }
                    }
                    None => Matched::Undefined {
                        suggestions: Vec::new(),
                    },
                }
            }
            Ok(None) => Matched::Undefined {
                suggestions: self.suggest(feature_step),
            },
            Err(e) => Matched::Ambiguous {
                candidates: e
                    .possible_matches
                    .iter()
                    .map(|(re, _)| re.to_string())
                    .collect(),
            },
        }
    }

    fn suggest(&self, feature_step: &gherkin::Step) -> Vec<String> {
        // Edit distance is quadratic: a 10 MB line compared whole would take hours, and no
        // step is near anything far longer than the longest pattern.
        let value = firedrill_core::diagnostic::echo(&feature_step.value);
        let all = docs();
        let mut scored: Vec<(f64, &StepDoc)> = all
            .iter()
            .map(|d| {
                (
                    strsim::normalized_levenshtein(&value, d.example)
                        .max(strsim::normalized_levenshtein(&value, d.pattern)),
                    d,
                )
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored
            .into_iter()
            .take(3)
            .map(|(_, d)| format!("{} {}", d.keyword, d.pattern))
            .collect()
    }
}

/// A step as the parser would produce it.
#[must_use]
pub fn step(keyword: &str, text: &str) -> gherkin::Step {
    let ty = match keyword {
        "Given" => StepType::Given,
        "When" => StepType::When,
        _ => StepType::Then,
    };
    gherkin::Step {
        keyword: format!("{keyword} "),
        ty,
        value: text.to_owned(),
        docstring: None,
        table: None,
        span: gherkin::Span::default(),
        position: gherkin::LineCol::default(),
    }
}

/// A milestone reference as steps write it: `the fault`, `the switch`, or `"a milestone"`.
#[must_use]
pub fn milestone_ref(text: &str) -> String {
    match text {
        "the fault" => "fault injected".to_owned(),
        "the switch" => "traffic switch started".to_owned(),
        quoted => quoted.trim_matches('"').to_owned(),
    }
}

/// The regex fragment of a duration: `90s`, `5m`, `25 minutes`, `1h 30m`.
pub const DURATION: &str =
    r"\d[^\s]*(?: (?:ms|milliseconds?|seconds?|secs?|minutes?|mins?|hours?))?";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_doc_example_matches_exactly_one_definition_and_every_definition_has_a_doc() {
        let catalog = Catalog::build().expect("catalog");
        assert_eq!(
            catalog.by_location.len(),
            docs().len(),
            "two docs share one definition"
        );
        assert_eq!(
            catalog.undocumented(),
            Vec::<Location>::new(),
            "step definitions without a StepDoc"
        );
    }

    #[test]
    fn every_example_passes_its_own_analysis_against_the_reference_platform() {
        let platform = firedrill_platform::load(std::path::Path::new(concat!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
            "/fixtures/platforms/production.example.yaml"
        )))
        .unwrap_or_else(|p| panic!("example platform invalid:\n{p}"));
        let catalog = Catalog::build().expect("catalog");
        for doc in docs() {
            match catalog.matched(&step(doc.keyword, doc.example)) {
                Matched::One { doc: found, args } => {
                    assert_eq!(found.pattern, doc.pattern);
                    let analysis = (doc.analyze)(&args, &platform);
                    assert!(
                        analysis.problems.is_empty(),
                        "{}: {:?}",
                        doc.example,
                        analysis.problems
                    );
                }
                other => panic!("{}: {other:?}", doc.example),
            }
        }
    }

    fn noop(_: &mut Drill, _: cucumber::step::Context) -> futures::future::LocalBoxFuture<'_, ()> {
        Box::pin(async {})
    }

    #[test]
    fn a_step_matching_two_definitions_is_ambiguous_and_names_both() {
        let re = |r: &str| regex::Regex::new(r).expect("regex");
        let collection = Collection::new()
            .when(None, re("^traffic is (.*)$"), noop)
            .when(None, re("^(.*) switched$"), noop);
        let catalog = Catalog {
            collection,
            by_location: HashMap::new(),
        };
        match catalog.matched(&step("When", "traffic is switched")) {
            Matched::Ambiguous { candidates } => {
                assert_eq!(candidates, ["^(.*) switched$", "^traffic is (.*)$"])
            }
            other => panic!("expected ambiguity, got {other:?}"),
        }
        assert!(matches!(
            catalog.matched(&step("When", "nothing like it")),
            Matched::Undefined { .. }
        ));
    }

    #[test]
    fn an_undefined_step_suggests_the_closest_known_steps() {
        let catalog = Catalog::build().expect("catalog");
        match catalog.matched(&step("When", "trafic is switched to \"us-west2\"")) {
            Matched::Undefined { suggestions } => assert_eq!(
                suggestions.first().map(String::as_str),
                Some("When traffic is switched to \"{region}\"")
            ),
            other => panic!("expected undefined, got {other:?}"),
        }
    }
}
