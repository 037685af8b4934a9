//! Gherkin step definitions, one file per domain, and the step catalog.
//!
//! Steps are defined with cucumber's attribute macros (regexes with named groups, so editors
//! with the Cucumber language server complete and navigate them). Next to each domain's
//! definitions sits its [`StepDoc`] list: the human pattern, an example, what it does, and an
//! `analyze` function that checks a matched step's arguments against the platform without any
//! I/O — `validate`, `plan` and preflight all run it. [`Catalog::build`] ties each doc to its
//! definition by matching the doc's example, and a test fails if a definition has no doc or a
//! doc's example matches anything but exactly one definition.

pub mod atlas;
pub mod check;
mod error;
pub mod faults;
pub mod guards;
pub mod kube;
pub mod mongo;
pub mod network;
pub mod param;
pub mod probes;
pub mod queries;
#[cfg(test)]
mod testing;
pub mod timing;
pub mod traffic;
pub mod world;

pub use check::{Checked, check};
pub use error::{Failure, Redacted, ResultExt, StepError};
pub use world::Drill;

use std::collections::HashMap;
use std::fmt;

use cucumber::codegen::{Expression, Regex};
use cucumber::gherkin::{self, StepType};
use cucumber::step::{Collection, Location};

use firedrill_platform::Platform;

/// Documentation and static checks of one step definition.
#[derive(Clone, Copy)]
pub struct StepDoc {
    /// `Given`, `When` or `Then`.
    pub keyword: &'static str,
    /// The step's cucumber expression, exactly as its definition's attribute writes it, over
    /// the parameters of [`param`]; [`StepDoc::shown`] is how a reader sees it.
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

impl StepDoc {
    /// The names of the parameters its expression uses, in order.
    #[must_use]
    pub fn params(&self) -> Vec<&'static str> {
        self.pattern
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect()
    }

    /// The step as a reader sees it: each `{parameter}` as [`param::ParamDoc::shown`], the
    /// expression's escapes (`\/`, `\(`) as the characters they stand for.
    #[must_use]
    pub fn shown(&self) -> String {
        let pattern = self.pattern.replace("\\/", "/").replace("\\(", "(");
        let mut shown = String::with_capacity(pattern.len());
        let mut rest = pattern.as_str();
        while let Some((before, after)) = rest.split_once('{') {
            shown.push_str(before);
            let Some((name, tail)) = after.split_once('}') else {
                shown.push('{');
                rest = after;
                continue;
            };
            match param::doc(name) {
                Some(p) => shown.push_str(p.shown),
                None => {
                    shown.push('{');
                    shown.push_str(name);
                    shown.push('}');
                }
            }
            rest = tail;
        }
        shown.push_str(rest);
        shown
    }

    /// The regex its expression expands to, as cucumber expands its definition's.
    ///
    /// # Errors
    ///
    /// When the expression does not parse or names an unknown parameter (a firedrill bug).
    pub fn regex(&self) -> Result<Regex, CatalogError> {
        let parameters: HashMap<&str, &str> = param::PARAMETERS
            .iter()
            .map(|p| (p.name, p.regex))
            .collect();
        Expression::regex_with_parameters(self.pattern, &parameters).map_err(|e| CatalogError {
            pattern: self.pattern,
            problem: format!("its expression does not expand: {e}"),
        })
    }

    /// The arguments of `text` when it is this step (its text without the keyword).
    #[must_use]
    pub fn read(&self, text: &str) -> Option<Args> {
        let regex = self.regex().ok()?;
        regex
            .is_match(text)
            .then(|| Args::read(&regex, &self.params(), text))
    }

    /// The step's analysis: every argument read by its parameter (as the runner will, so a
    /// drill that validated meets no parse error at run time), then, if all read, the
    /// domain's `analyze`.
    #[must_use]
    pub fn analysis(&self, args: &Args, platform: &Platform) -> Analysis {
        let mut a = Analysis::default();
        for (name, value, _) in &args.values {
            if let Some(p) = param::doc(name)
                && let Err(e) = (p.check)(value)
            {
                let (message, hint) = e.parts();
                a.problem(name, message, hint);
            }
        }
        if a.problems.is_empty() {
            a = (self.analyze)(args, platform);
        }
        // A region role the step needs and the platform file lacks: the drill is refused here,
        // at the step, while a platform without regions stays valid for drills that need none.
        for need in &a.needs {
            if let Need::Region(role) = need
                && let Some(unmet) = platform.unmet(*role)
            {
                a.problems.push(ArgProblem {
                    arg: "",
                    message: unmet.message(),
                    hint: unmet.hint(),
                });
            }
        }
        a
    }
}

/// A step's arguments, by parameter name, with their columns in the step text.
#[derive(Clone, Debug, Default)]
pub struct Args {
    /// `(parameter, value, column)` in the order the expression names them.
    values: Vec<(&'static str, String, usize)>,
}

impl Args {
    /// The first argument of parameter `name` (empty when absent or an optional one is left out).
    #[must_use]
    pub fn get(&self, name: &str) -> &str {
        self.nth(name, 0)
    }

    /// The `n`th (from 0) argument of parameter `name`, for a step that names it twice.
    #[must_use]
    pub fn nth(&self, name: &str, n: usize) -> &str {
        self.values
            .iter()
            .filter(|(p, _, _)| *p == name)
            .nth(n)
            .map_or("", |(_, v, _)| v.as_str())
    }

    /// The first argument of parameter `P`, read as the runner reads it (`None` when it does
    /// not read: [`StepDoc::analysis`] has reported that before a domain's `analyze` runs).
    #[must_use]
    pub fn value<P: param::Param>(&self) -> Option<P> {
        self.get(P::NAME).parse().ok()
    }

    /// Column of the first argument `name` in the step text, in characters (0 when absent).
    #[must_use]
    pub fn offset(&self, name: &str) -> usize {
        self.values
            .iter()
            .find(|(p, _, _)| *p == name)
            .map_or(0, |(_, _, o)| *o)
    }

    /// Reads `text`'s arguments with `regex`, the expansion of an expression naming `names`:
    /// as the runner does, the groups cucumber-expressions renamed `__{id}_{n}` are one
    /// argument (its first non-empty group), and every other group is one.
    fn read(regex: &Regex, names: &[&'static str], text: &str) -> Self {
        let Some(captures) = regex.captures(text) else {
            return Self::default();
        };
        let values = arguments(regex)
            .into_iter()
            .zip(names)
            .map(|(groups, name)| {
                let value = groups
                    .clone()
                    .filter_map(|g| captures.get(g))
                    .find(|m| !m.as_str().is_empty())
                    .or_else(|| groups.clone().find_map(|g| captures.get(g)));
                let (value, start) =
                    value.map_or((String::new(), 0), |m| (m.as_str().to_owned(), m.start()));
                // Columns count characters (a `±` before the argument is one).
                let column = text.get(..start).map_or(start, |b| b.chars().count());
                (*name, value, column)
            })
            .collect();
        Self { values }
    }
}

/// The capture groups of each argument of an expanded expression, in order: as the runner
/// reads them, the groups cucumber-expressions renamed `__{id}_{n}` are one argument, every
/// other group is one.
fn arguments(regex: &Regex) -> Vec<std::ops::Range<usize>> {
    let names: Vec<Option<&str>> = regex.capture_names().collect();
    let mut arguments = Vec::new();
    let mut group = 1;
    while group < names.len() {
        let prefix = names[group].filter(|n| n.starts_with("__")).map(|n| {
            let id = n[2..].find('_').map_or(n.len(), |i| i + 2);
            format!("{}_", &n[..id])
        });
        let mut end = group + 1;
        if let Some(prefix) = &prefix {
            while end < names.len() && names[end].is_some_and(|n| n.starts_with(prefix.as_str())) {
                end += 1;
            }
        }
        arguments.push(group..end);
        group = end;
    }
    arguments
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
        if platform.regions.is_empty() {
            self.problem(
                arg,
                format!(
                    "region \"{region}\" is not in the platform: platform file {} has no `regions:`",
                    platform.source.path.display()
                ),
                format!(
                    "add it to the platform file: regions: {{ {region}: {{ role: primary or failover, kube-context: <its cluster's context> }} }}"
                ),
            );
        } else if !platform.regions.contains_key(region) {
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

/// The state assertions: `Then` steps that check a state now. Each has a `within {duration}`
/// form (its pattern with ` within {duration}` added) that waits until the state holds, at most
/// that long after the end of the step before it; a test holds the grammar to it.
pub const STATES: &[&str] = &[
    "the platform is healthy",
    "traffic is served from region {region}",
    "traffic is still served from region {region}",
    "the service answers from {region}",
    "the primary of {namespace} is in {region}",
    "the query {query} is below {number}",
    "the {query-name} query is below {number}",
];

/// What every `within {duration}` form of a state assertion times from, as its doc says it.
pub const WITHIN_ANCHOR: &str = "after the end of the step before it";

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
        atlas::DOCS,
        kube::DOCS,
        guards::DOCS,
        queries::DOCS,
    ]
    .concat()
}

/// The step definitions with their docs, as the runner and `validate` see them.
pub struct Catalog {
    collection: Collection<Drill>,
    by_location: HashMap<Location, Entry>,
}

/// A doc that does not match exactly one definition, or whose expression does not expand (a
/// bug in firedrill, caught by tests).
#[derive(Debug, thiserror::Error)]
#[error(
    "step doc \"{pattern}\": {problem} (hint: fix the doc's example or expression, or the definition's)"
)]
pub struct CatalogError {
    /// The doc's expression.
    pub pattern: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// A doc with what reading its arguments takes.
struct Entry {
    doc: StepDoc,
    regex: Regex,
    params: Vec<&'static str>,
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
            let matches = match collection.find(&step) {
                Ok(Some((_, _, Some(location), _))) => {
                    let entry = Entry {
                        regex: doc.regex()?,
                        params: doc.params(),
                        doc,
                    };
                    by_location.insert(location, entry);
                    continue;
                }
                Ok(_) => "no".to_owned(),
                Err(e) => e.possible_matches.len().to_string(),
            };
            return Err(CatalogError {
                pattern: doc.pattern,
                problem: format!("its example matches {matches} definitions"),
            });
        }
        Ok(Self {
            collection,
            by_location,
        })
    }

    /// Every definition: its source location and its regex.
    fn definitions() -> Vec<(Location, Regex)> {
        use cucumber::codegen::inventory::iter;
        use cucumber::codegen::{StepConstructor as _, WorldInventory};
        let given = iter::<<Drill as WorldInventory>::Given>
            .into_iter()
            .map(|s| s.inner());
        let when = iter::<<Drill as WorldInventory>::When>
            .into_iter()
            .map(|s| s.inner());
        let then = iter::<<Drill as WorldInventory>::Then>
            .into_iter()
            .map(|s| s.inner());
        given
            .chain(when)
            .chain(then)
            .map(|(location, regex, _)| (location, regex()))
            .collect()
    }

    /// Definitions that have no doc (their source locations); empty when the catalog is whole.
    #[must_use]
    pub fn undocumented(&self) -> Vec<Location> {
        Self::definitions()
            .into_iter()
            .map(|(l, _)| l)
            .filter(|l| !self.by_location.contains_key(l))
            .collect()
    }

    /// Docs whose expression is not their definition's: `(doc's expansion, definition's
    /// regex)`; empty when every doc writes its definition's expression.
    #[must_use]
    pub fn drifted(&self) -> Vec<(String, String)> {
        Self::definitions()
            .into_iter()
            .filter_map(|(l, regex)| {
                let entry = self.by_location.get(&l)?;
                (entry.regex.as_str() != regex.as_str())
                    .then(|| (entry.regex.to_string(), regex.to_string()))
            })
            .collect()
    }

    /// Matches a feature step.
    #[must_use]
    pub fn matched(&self, feature_step: &gherkin::Step) -> Matched {
        match self.collection.find(feature_step) {
            Ok(Some((_, _, location, _))) => {
                match location.and_then(|l| self.by_location.get(&l)) {
                    Some(entry) => Matched::One {
                        doc: entry.doc,
                        args: Args::read(&entry.regex, &entry.params, &feature_step.value),
                    },
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
                        .max(strsim::normalized_levenshtein(&value, &d.shown())),
                    d,
                )
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored
            .into_iter()
            .take(3)
            .map(|(_, d)| format!("{} {}", d.keyword, d.shown()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The milestones that start a fault's clock: only the engine stamps them
    /// (`Scenario::inject`, after approval and once the undo is on disk).
    const FAULT_MILESTONES: [&str; 7] = [
        "MilestoneName::FaultInjected",
        "MilestoneName::LinkFaulted",
        "MilestoneName::MongoFault",
        "MilestoneName::MongoMemberFrozen",
        "MilestoneName::DatabaseFlipStarted",
        "MilestoneName::TrafficSwitchStarted",
        "MilestoneName::FailoverScaleUpStarted",
    ];

    #[test]
    fn every_domain_injects_through_the_engine_and_stamps_no_fault_milestone_itself() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for domain in ["kube", "mongo", "network", "atlas", "traffic", "faults"] {
            let path = dir.join(format!("{domain}.rs"));
            let source = std::fs::read_to_string(&path).expect("read step file");
            assert!(
                source.contains(".inject("),
                "{}: a domain with faults injects them through `world.inject`",
                path.display()
            );
            let lines: Vec<&str> = source.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                if !(line.contains(".mark(") || line.contains(".record(")) {
                    continue;
                }
                // The call and its arguments (rustfmt puts them on the next lines).
                let call = lines[i..lines.len().min(i + 4)].join(" ");
                for name in FAULT_MILESTONES {
                    assert!(
                        !call.contains(name),
                        "{}:{}: a step stamps {name} itself; pass it to `world.inject` so the \
                         engine stamps it after approval and the ledger flush",
                        path.display(),
                        i + 1
                    );
                }
            }
        }
    }

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
        assert_eq!(
            catalog.drifted(),
            Vec::<(String, String)>::new(),
            "docs whose expression is not their definition's"
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
                    let analysis = doc.analysis(&args, &platform);
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

    #[test]
    fn a_step_needing_a_failover_region_is_refused_only_where_the_platform_has_none() {
        let load = |yaml: &str| {
            firedrill_platform::load_str(std::path::Path::new("minimal.yaml"), yaml, &|_| None)
                .unwrap_or_else(|p| panic!("{p}"))
        };
        let minimal = load("name: minimal\nprobes:\n  site: { url: \"http://127.0.0.1:9/\" }\n");
        let two = load("name: two\nregions:\n  a: { role: primary }\n  b: { role: failover }\n");
        let catalog = Catalog::build().expect("catalog");
        let analysis = |text: &str, platform: &Platform| match catalog.matched(&step("Then", text))
        {
            Matched::One { doc, args } => doc.analysis(&args, platform),
            other => panic!("{text}: {other:?}"),
        };

        let failover = analysis("the failover time is within the 20m..25m target", &minimal);
        assert_eq!(
            failover.needs,
            [Need::Region(firedrill_platform::Role::Failover)]
        );
        let [problem] = failover.problems.as_slice() else {
            panic!("one problem expected: {:?}", failover.problems);
        };
        assert_eq!(problem.arg, "", "located at the step itself");
        assert_eq!(
            problem.message,
            "needs a failover region, and platform file minimal.yaml has no `regions:`"
        );
        assert_eq!(
            problem.hint,
            "add to the platform file: regions: { us-west2: { role: failover } }"
        );

        let met = analysis("the failover time is within the 20m..25m target", &two);
        assert!(met.problems.is_empty(), "{:?}", met.problems);
        // Recovery ends at an answer from any region: no region needed.
        let recovery = analysis("the recovery time is within the 5m target", &minimal);
        assert!(
            recovery.problems.is_empty() && recovery.needs.is_empty(),
            "{recovery:?}"
        );

        let named = analysis(
            "the service answers from \"us-west2\" within 25m of the fault",
            &minimal,
        );
        let pods = match catalog.matched(&step(
            "When",
            "2 pods of \"app=storefront\" in \"prod-1\" are killed",
        )) {
            Matched::One { doc, args } => doc.analysis(&args, &minimal),
            other => panic!("{other:?}"),
        };
        assert!(
            pods.problems.iter().any(|p| p.arg.is_empty()
                && p.message
                    == "needs a primary region, and platform file minimal.yaml has no `regions:`"
                && p.hint == "add to the platform file: regions: { us-west1: { role: primary } }"),
            "pods are killed in the primary region when none is named: {:?}",
            pods.problems
        );
        assert!(
            named.problems.iter().any(|p| p.message
                == "region \"us-west2\" is not in the platform: platform file minimal.yaml has no `regions:`"
                && p.hint.starts_with("add it to the platform file: regions: { us-west2: {")),
            "{:?}",
            named.problems
        );
    }

    #[test]
    fn an_earlier_wording_is_the_same_step_as_its_canonical_one() {
        let platform = firedrill_platform::load(std::path::Path::new(concat!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
            "/fixtures/platforms/production.example.yaml"
        )))
        .unwrap_or_else(|p| panic!("example platform invalid:\n{p}"));
        let catalog = Catalog::build().expect("catalog");
        let analysis = |text: &str| match catalog.matched(&step("When", text)) {
            Matched::One { doc, args } => (doc.pattern, doc.analysis(&args, &platform)),
            other => panic!("{text}: {other:?}"),
        };
        for (earlier, canonical) in [
            (
                "the Mongo primary of \"prod-3\" is stepped down",
                "the primary of \"prod-3\" is stepped down",
            ),
            (
                "the Mongo primary of \"prod-2\" is killed",
                "the primary of \"prod-2\" is killed",
            ),
            (
                "traffic is switched to \"us-west2\"",
                "traffic is switched to region \"us-west2\"",
            ),
        ] {
            let (earlier_pattern, earlier) = analysis(earlier);
            let (canonical_pattern, canonical) = analysis(canonical);
            assert_ne!(earlier_pattern, canonical_pattern);
            assert!(!canonical.effects.is_empty(), "{canonical_pattern}");
            assert_eq!(earlier.effects, canonical.effects, "{canonical_pattern}");
            assert_eq!(earlier.needs, canonical.needs, "{canonical_pattern}");
            assert_eq!(earlier.problems, canonical.problems, "{canonical_pattern}");
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
    fn every_state_assertion_has_an_instant_and_a_within_form_anchored_at_the_step_before() {
        let docs = docs();
        let then = |pattern: &str| {
            docs.iter()
                .find(|d| d.keyword == "Then" && d.pattern == pattern)
                .copied()
        };
        for state in STATES {
            assert!(then(state).is_some(), "no instant form `Then {state}`");
            let within = format!("{state} within {{duration}}");
            let doc = then(&within).unwrap_or_else(|| panic!("no `Then {within}`"));
            assert!(
                doc.doc.contains(WITHIN_ANCHOR),
                "`Then {within}` does not say it times from the end of the step before: {}",
                doc.doc
            );
        }
    }

    #[test]
    fn a_pattern_shows_each_parameter_as_it_is_written() {
        let doc = |pattern| StepDoc {
            keyword: "Then",
            pattern,
            example: "",
            doc: "",
            domain: "timing",
            analyze: |_, _| Analysis::default(),
        };
        assert_eq!(
            doc("{milestone} is reached within {duration} of {milestone}").shown(),
            "\"{milestone}\" is reached within {duration} of \"{milestone}\""
        );
        assert_eq!(
            doc("the link {link} is limited to {bandwidth} KB\\/s{stream}").shown(),
            "the link \"{link}\" is limited to {bandwidth} KB/s[ upstream|downstream|both]"
        );
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
