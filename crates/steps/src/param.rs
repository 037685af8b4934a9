//! The step grammar's argument types: one [`cucumber::Parameter`] per kind of argument, each
//! with the one regex that matches it and the one [`FromStr`] that reads it.
//!
//! Steps are cucumber expressions over these (`region {region} goes dark`): the runner parses
//! a step's arguments with `FromStr` before the step runs, and the static analysis of
//! `validate`, `plan` and `run` parses them with the same `FromStr` first
//! ([`Analysis::arg`](crate::Analysis::arg)), so a drill that validated never meets a parse
//! error at run time.
//!
//! Each regex has at most one capture group: the argument's value, so that a problem is
//! located at the value (inside its quotes, past the `(±` of a jitter), not at its decoration.
//! A regex without a group is captured whole. An optional part with a group is written as an
//! alternation with nothing (`(?: of region "([^"]+)"|)`), not with `?`: cucumber-expressions
//! renames the groups of a parameter so the runner reads them as one argument, but it does
//! not look inside a repetition, and a group left unrenamed there would be read as an
//! argument of its own.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use firedrill_core::names::{MilestoneName, PhaseName, UnknownPhase};
use firedrill_core::target::{TargetError, parse_duration};
use firedrill_providers::kube::Kill;
use firedrill_providers::mongo::checker::Concern;
use firedrill_providers::toxiproxy::Stream;

/// The regex of a duration: `90s`, `5m`, `25 minutes`, `300ms`; a leading `-` matches so that
/// a negative duration is named as such instead of leaving the step undefined.
macro_rules! duration_regex {
    () => {
        r"-?\d[^\s)]*(?: (?:ms|milliseconds?|seconds?|secs?|minutes?|mins?|hours?))?"
    };
}

/// The regex of a quoted, non-empty name; its value is inside the quotes.
const QUOTED: &str = r#""([^"]+)""#;

/// A step argument: a [`cucumber::Parameter`] read by [`FromStr`], documented in the catalog.
pub trait Param: cucumber::Parameter + FromStr<Err = ArgError> {
    /// How the argument reads in the step catalog, e.g. `"{region}"` or
    /// `[ upstream|downstream|both]` (`[…]` is optional, `|` separates alternatives).
    const SHOWN: &'static str;
    /// What it is and how it is written.
    const ABOUT: &'static str;
}

/// One parameter as the catalog lists it.
#[derive(Clone, Copy, Debug)]
pub struct ParamDoc {
    /// Its name in cucumber expressions: `{name}`.
    pub name: &'static str,
    /// The regex it matches.
    pub regex: &'static str,
    /// How it reads in a step's pattern.
    pub shown: &'static str,
    /// What it is.
    pub about: &'static str,
    /// Reads an argument as the runner will, so analysis finds what would fail at run time.
    pub check: fn(&str) -> Result<(), ArgError>,
}

fn check_as<P: Param>(text: &str) -> Result<(), ArgError> {
    text.parse::<P>().map(drop)
}

impl ParamDoc {
    /// The doc of `P`.
    #[must_use]
    pub const fn of<P: Param>() -> Self {
        Self {
            name: P::NAME,
            regex: P::REGEX,
            shown: P::SHOWN,
            about: P::ABOUT,
            check: check_as::<P>,
        }
    }
}

/// Every parameter of the step grammar.
pub const PARAMETERS: &[ParamDoc] = &[
    ParamDoc::of::<Region>(),
    ParamDoc::of::<OfRegion>(),
    ParamDoc::of::<Zone>(),
    ParamDoc::of::<Namespace>(),
    ParamDoc::of::<Namespaces>(),
    ParamDoc::of::<Link>(),
    ParamDoc::of::<Probe>(),
    ParamDoc::of::<Fault>(),
    ParamDoc::of::<Command>(),
    ParamDoc::of::<Selector>(),
    ParamDoc::of::<Service>(),
    ParamDoc::of::<Ingress>(),
    ParamDoc::of::<ConfigMap>(),
    ParamDoc::of::<Key>(),
    ParamDoc::of::<Value>(),
    ParamDoc::of::<Labels>(),
    ParamDoc::of::<Duration>(),
    ParamDoc::of::<Latency>(),
    ParamDoc::of::<Jitter>(),
    ParamDoc::of::<Streams>(),
    ParamDoc::of::<Target>(),
    ParamDoc::of::<Phase>(),
    ParamDoc::of::<Milestone>(),
    ParamDoc::of::<Reference>(),
    ParamDoc::of::<Percent>(),
    ParamDoc::of::<Percentile>(),
    ParamDoc::of::<Rate>(),
    ParamDoc::of::<Bandwidth>(),
    ParamDoc::of::<Count>(),
    ParamDoc::of::<Pods>(),
    ParamDoc::of::<WriteConcern>(),
    ParamDoc::of::<Force>(),
    ParamDoc::of::<Query>(),
    ParamDoc::of::<QueryName>(),
    ParamDoc::of::<Guard>(),
    ParamDoc::of::<Number>(),
];

/// The doc of the parameter called `name`.
#[must_use]
pub fn doc(name: &str) -> Option<&'static ParamDoc> {
    PARAMETERS.iter().find(|p| p.name == name)
}

/// An argument that does not read as its parameter: what is wrong, and a hint.
#[derive(Clone, PartialEq, Eq)]
pub enum ArgError {
    /// Not a duration.
    Duration(TargetError),
    /// A duration written negative.
    Negative {
        /// What the duration is (`latency`, `jitter`, `duration`).
        what: &'static str,
        /// As written.
        text: String,
    },
    /// Not a target.
    Target(TargetError),
    /// Not a phase firedrill measures.
    Phase(UnknownPhase),
    /// Not a percentage between 0 and 100.
    Percent(String),
    /// Not a percentile firedrill computes.
    Percentile(String),
    /// Not a positive rate.
    Rate(String),
    /// Not a whole number.
    Whole(String),
    /// A count below 1.
    Count(String),
    /// Not a number or percentage of pods a kill can take.
    Pods(String),
    /// A label that is not `key=value`.
    Label(String),
    /// Not a finite number.
    Number(String),
}

impl ArgError {
    /// The message and the hint, apart (diagnostics show them apart).
    #[must_use]
    pub fn parts(&self) -> (String, String) {
        match self {
            Self::Duration(e) | Self::Target(e) => {
                let (message, hint) = e.parts();
                (message, hint.to_owned())
            }
            Self::Negative { what, text } => (
                format!("{what} {text} is negative"),
                "give a duration of zero or more, e.g. 300ms".to_owned(),
            ),
            Self::Phase(e) => e.parts(),
            Self::Percent(text) => (
                format!("\"{text}\" is not a percentage between 0 and 100"),
                "write e.g. 1 or 0.5".to_owned(),
            ),
            Self::Percentile(text) => (
                format!("\"{text}\" is not a percentile firedrill computes"),
                "write p50, p95 or p99".to_owned(),
            ),
            Self::Rate(text) => (
                format!("\"{text}\" is not a positive rate"),
                "write e.g. 50 writes per second".to_owned(),
            ),
            Self::Whole(text) => (
                format!("{text} is not a whole number"),
                "write e.g. 100".to_owned(),
            ),
            Self::Count(_) => (
                "the count must be at least 1".to_owned(),
                "e.g. 3".to_owned(),
            ),
            Self::Pods(problem) => (
                problem.clone(),
                "write e.g. `2 pods of …` or `50% of the pods of …`".to_owned(),
            ),
            Self::Label(pair) => (
                format!("\"{pair}\" is not a label `key=value`"),
                "write labels as `key=value,key2=value2`".to_owned(),
            ),
            Self::Number(text) => (
                format!("\"{text}\" is not a number"),
                "write e.g. 0.01 or 250".to_owned(),
            ),
        }
    }
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (message, hint) = self.parts();
        write!(f, "{message} (hint: {hint})")
    }
}

/// As its message: the runner's parse of a step argument reports it with `{:?}`.
impl fmt::Debug for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ArgError {}

/// A parameter whose value is a quoted name, read as written.
macro_rules! quoted_name {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $about:literal) => {
        quoted_name!($(#[$doc])* $ty, $name, $about, QUOTED);
    };
    ($(#[$doc:meta])* $ty:ident, $name:literal, $about:literal, $regex:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $ty(pub String);

        impl cucumber::Parameter for $ty {
            const REGEX: &'static str = $regex;
            const NAME: &'static str = $name;
        }

        impl Param for $ty {
            const SHOWN: &'static str = concat!("\"{", $name, "}\"");
            const ABOUT: &'static str = $about;
        }

        impl FromStr for $ty {
            type Err = ArgError;

            fn from_str(s: &str) -> Result<Self, ArgError> {
                Ok(Self(s.to_owned()))
            }
        }

        impl Deref for $ty {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

quoted_name!(
    /// A PromQL query, quoted: `"sum(rate(http_requests_total{code=~'5..'}[5m]))"`.
    Query,
    "query",
    "a PromQL query, quoted (write its strings in single quotes): `\"sum(rate(http_requests_total{code=~'5..'}[5m]))\"`",
    r#""(.+)""#
);
quoted_name!(
    /// A query named under the platform's `prometheus.queries`: `"checkout-error-ratio"`.
    QueryName,
    "query-name",
    "a query named under the platform's prometheus.queries, quoted: `\"checkout-error-ratio\"`"
);
quoted_name!(
    /// A guard of the platform: `"bystanders"`.
    Guard,
    "guard",
    "a guard of the platform (its `guards:` section), quoted: `\"bystanders\"`"
);

/// A number an SLO query is compared with: `0.01`, `250`, `-1e3`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number(pub f64);

impl cucumber::Parameter for Number {
    const REGEX: &'static str = r"-?[0-9.eE+-]+";
    const NAME: &'static str = "number";
}

impl Param for Number {
    const SHOWN: &'static str = "{number}";
    const ABOUT: &'static str = "a finite number: `0.01`, `250`";
}

impl FromStr for Number {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        match s.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Self(n)),
            _ => Err(ArgError::Number(s.to_owned())),
        }
    }
}

quoted_name!(
    /// A region of the platform: `"us-west1"`.
    Region,
    "region",
    "a region of the platform, quoted: `\"us-west1\"`"
);
quoted_name!(
    /// A zone of one of the platform's regions: `"us-west1-a"`.
    Zone,
    "zone",
    "a zone the platform lists for one of its regions, quoted: `\"us-west1-a\"`"
);
quoted_name!(
    /// A Kubernetes namespace (and its database): `"prod-1"`.
    Namespace,
    "namespace",
    "a namespace of the platform (and the database it names), quoted: `\"prod-1\"`"
);
quoted_name!(
    /// A Toxiproxy link of the platform: `"app-to-mongo"`.
    Link,
    "link",
    "a link under `toxiproxy.links` of the platform, quoted: `\"app-to-mongo\"`"
);
quoted_name!(
    /// A probe of the platform: `"storefront"`.
    Probe,
    "probe",
    "a probe under `probes:` of the platform, quoted: `\"storefront\"`"
);
quoted_name!(
    /// A fault of the platform: `"us-west1-dark"`.
    Fault,
    "fault",
    "a fault under `faults:` of the platform, quoted: `\"us-west1-dark\"`"
);
quoted_name!(
    /// A command of the platform: `"atlas-primary-to-us-west2"`.
    Command,
    "command",
    "a command under `commands:` of the platform, quoted: `\"atlas-primary-to-us-west2\"`"
);
quoted_name!(
    /// A Kubernetes label selector: `"app=storefront"`.
    Selector,
    "selector",
    "a Kubernetes label selector, quoted: `\"app=storefront\"`"
);
quoted_name!(
    /// A Kubernetes Service: `"front"`.
    Service,
    "service",
    "a Kubernetes Service, quoted: `\"front\"`"
);
quoted_name!(
    /// A Kubernetes Ingress: `"front"`.
    Ingress,
    "ingress",
    "a Kubernetes Ingress, quoted: `\"front\"`"
);
quoted_name!(
    /// A Kubernetes ConfigMap: `"front-door"`.
    ConfigMap,
    "configmap",
    "a Kubernetes ConfigMap, quoted: `\"front-door\"`"
);
quoted_name!(
    /// A key of a ConfigMap: `"active-region"`.
    Key,
    "key",
    "a key of a ConfigMap, quoted: `\"active-region\"`"
);

/// A value to write, quoted, possibly empty: `"us-west2"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value(pub String);

impl cucumber::Parameter for Value {
    const REGEX: &'static str = r#""([^"]*)""#;
    const NAME: &'static str = "value";
}

impl Param for Value {
    const SHOWN: &'static str = "\"{value}\"";
    const ABOUT: &'static str = "a value to write, quoted, possibly empty: `\"us-west2\"`";
}

impl FromStr for Value {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        Ok(Self(s.to_owned()))
    }
}

/// ` of region "us-west2"`, or nothing (then the platform's primary region).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfRegion(pub Option<String>);

impl cucumber::Parameter for OfRegion {
    const REGEX: &'static str = r#"(?: of region "([^"]+)"|)"#;
    const NAME: &'static str = "of-region";
}

impl Param for OfRegion {
    const SHOWN: &'static str = "[ of region \"{region}\"]";
    const ABOUT: &'static str =
        "optional: ` of region \"us-west2\"`; without it, the platform's primary region";
}

impl FromStr for OfRegion {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        Ok(Self((!s.is_empty()).then(|| s.to_owned())))
    }
}

/// A list of quoted namespaces: `"prod-2" and "prod-3"`, `"a", "b", and "c"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespaces(pub Vec<String>);

impl cucumber::Parameter for Namespaces {
    const REGEX: &'static str = r#""[^"]+"(?:(?:, | and |, and )"[^"]+")*"#;
    const NAME: &'static str = "namespaces";
}

impl Param for Namespaces {
    const SHOWN: &'static str = "\"{namespace}\"[, \"{namespace}\"…][ and \"{namespace}\"]";
    const ABOUT: &'static str = "one or more quoted namespaces: `\"prod-2\"`, `\"prod-2\" and \"prod-3\"`, `\"a\", \"b\" and \"c\"`";
}

impl FromStr for Namespaces {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        Ok(Self(
            s.split('"').skip(1).step_by(2).map(str::to_owned).collect(),
        ))
    }
}

/// Labels to set: `"region=us-west2,track=b"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labels(pub std::collections::BTreeMap<String, String>);

impl cucumber::Parameter for Labels {
    const REGEX: &'static str = QUOTED;
    const NAME: &'static str = "labels";
}

impl Param for Labels {
    const SHOWN: &'static str = "\"{labels}\"";
    const ABOUT: &'static str =
        "labels `key=value`, comma-separated, quoted: `\"region=us-west2\"`";
}

impl FromStr for Labels {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        s.split(',')
            .map(|pair| {
                pair.trim()
                    .split_once('=')
                    .filter(|(k, _)| !k.trim().is_empty())
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| ArgError::Label(pair.to_owned()))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// A duration of zero or more, as written.
fn non_negative(what: &'static str, text: &str) -> Result<std::time::Duration, ArgError> {
    if text.starts_with('-') {
        return Err(ArgError::Negative {
            what,
            text: text.to_owned(),
        });
    }
    parse_duration(text).map_err(ArgError::Duration)
}

/// A span of platform time: `90s`, `5m`, `25 minutes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duration {
    /// The duration.
    pub value: std::time::Duration,
    /// As written (milestones and messages quote it so).
    pub text: String,
}

impl cucumber::Parameter for Duration {
    const REGEX: &'static str = duration_regex!();
    const NAME: &'static str = "duration";
}

impl Param for Duration {
    const SHOWN: &'static str = "{duration}";
    const ABOUT: &'static str =
        "platform time, humantime: `90s`, `5m`, `25 minutes`, `300ms`; zero or more";
}

impl FromStr for Duration {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        Ok(Self {
            value: non_negative("duration", s)?,
            text: s.to_owned(),
        })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A latency: how long a link delays data, or an answer takes (`300ms`, `2s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency(pub std::time::Duration);

impl cucumber::Parameter for Latency {
    const REGEX: &'static str = duration_regex!();
    const NAME: &'static str = "latency";
}

impl Param for Latency {
    const SHOWN: &'static str = "{latency}";
    const ABOUT: &'static str = "a latency, humantime: `300ms`, `2s`; zero or more";
}

impl FromStr for Latency {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        non_negative("latency", s).map(Self)
    }
}

/// ` (±50ms)` after a latency, or nothing (no jitter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jitter(pub std::time::Duration);

impl cucumber::Parameter for Jitter {
    const REGEX: &'static str = concat!(r"(?: \(±(", duration_regex!(), r")\)|)");
    const NAME: &'static str = "jitter";
}

impl Param for Jitter {
    const SHOWN: &'static str = "[ (±{jitter})]";
    const ABOUT: &'static str =
        "optional: ` (±50ms)`, how much a latency varies; at most the latency";
}

impl FromStr for Jitter {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        if s.is_empty() {
            Ok(Self(std::time::Duration::ZERO))
        } else {
            non_negative("jitter", s).map(Self)
        }
    }
}

/// ` upstream`, ` downstream`, ` both`, or nothing (downstream, Toxiproxy's default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Streams(pub Vec<Stream>);

impl cucumber::Parameter for Streams {
    const REGEX: &'static str = r"(?: (upstream|downstream|both)|)";
    const NAME: &'static str = "stream";
}

impl Param for Streams {
    const SHOWN: &'static str = "[ upstream|downstream|both]";
    const ABOUT: &'static str = "optional: the stream a network fault acts on: ` upstream` (client to server), ` downstream` (the answers; the default) or ` both`";
}

impl FromStr for Streams {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        Ok(Self(match s {
            "upstream" => vec![Stream::Upstream],
            "both" => vec![Stream::Upstream, Stream::Downstream],
            _ => vec![Stream::Downstream],
        }))
    }
}

/// A time budget: `25m`, or a band `20m..25m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target(pub firedrill_core::target::Target);

impl cucumber::Parameter for Target {
    const REGEX: &'static str = r"\S+";
    const NAME: &'static str = "target";
}

impl Param for Target {
    const SHOWN: &'static str = "{target}";
    const ABOUT: &'static str = "a time budget: `25m`, or a band `20m..25m`";
}

impl FromStr for Target {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        s.parse().map(Self).map_err(ArgError::Target)
    }
}

/// A phase firedrill measures: `failover`, `recovery`, `detection`, `switch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phase(pub PhaseName);

impl cucumber::Parameter for Phase {
    const REGEX: &'static str = r"[a-z-]+";
    const NAME: &'static str = "phase";
}

impl Param for Phase {
    const SHOWN: &'static str = "{phase}";
    const ABOUT: &'static str =
        "a phase firedrill measures: `failover`, `recovery`, `detection` or `switch`";
}

impl FromStr for Phase {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        s.parse().map(Self).map_err(ArgError::Phase)
    }
}

/// A milestone named in quotes: `"traffic switched to us-west2"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Milestone(pub MilestoneName);

impl cucumber::Parameter for Milestone {
    const REGEX: &'static str = QUOTED;
    const NAME: &'static str = "milestone";
}

impl Param for Milestone {
    const SHOWN: &'static str = "\"{milestone}\"";
    const ABOUT: &'static str = "a milestone, quoted: `\"traffic switched to us-west2\"`";
}

impl FromStr for Milestone {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        Ok(Self(MilestoneName::parse(s)))
    }
}

/// A milestone a wait is timed from: `the fault`, `the switch`, or a quoted milestone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference(pub MilestoneName);

impl cucumber::Parameter for Reference {
    const REGEX: &'static str = r#"the fault|the switch|"[^"]+""#;
    const NAME: &'static str = "reference";
}

impl Param for Reference {
    const SHOWN: &'static str = "the fault|the switch|\"{milestone}\"";
    const ABOUT: &'static str = "`the fault` (`fault injected`), `the switch` (`traffic switch started`), or a quoted milestone";
}

impl FromStr for Reference {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        Ok(Self(MilestoneName::reference(s)))
    }
}

/// A percentage between 0 and 100: `1`, `0.5`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percent(pub f64);

impl cucumber::Parameter for Percent {
    const REGEX: &'static str = r"[0-9.]+";
    const NAME: &'static str = "percent";
}

impl Param for Percent {
    const SHOWN: &'static str = "{percent}";
    const ABOUT: &'static str = "a percentage between 0 and 100, before a `%`: `1`, `0.5`";
}

impl FromStr for Percent {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        match s.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(Self(p)),
            _ => Err(ArgError::Percent(s.to_owned())),
        }
    }
}

/// A latency percentile: `p50`, `p95` or `p99`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Percentile(pub u8);

impl Percentile {
    /// As a quantile between 0 and 1: `p95` is 0.95.
    #[must_use]
    pub fn quantile(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl cucumber::Parameter for Percentile {
    // Any `p` and digits matches, so that `p90` is named as unsupported instead of leaving
    // the step undefined.
    const REGEX: &'static str = r"p\d+";
    const NAME: &'static str = "percentile";
}

impl Param for Percentile {
    const SHOWN: &'static str = "p50|p95|p99";
    const ABOUT: &'static str = "a latency percentile: `p50` (the median), `p95` or `p99`";
}

impl FromStr for Percentile {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        match s {
            "p50" => Ok(Self(50)),
            "p95" => Ok(Self(95)),
            "p99" => Ok(Self(99)),
            _ => Err(ArgError::Percentile(s.to_owned())),
        }
    }
}

impl fmt::Display for Percentile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// A positive rate: `50` (writes per second).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate(pub f64);

impl cucumber::Parameter for Rate {
    const REGEX: &'static str = r"[0-9.]+";
    const NAME: &'static str = "rate";
}

impl Param for Rate {
    const SHOWN: &'static str = "{rate}";
    const ABOUT: &'static str = "a positive number of writes per platform second: `50`, `2.5`";
}

impl FromStr for Rate {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        match s.parse::<f64>() {
            Ok(r) if r > 0.0 && r.is_finite() => Ok(Self(r)),
            _ => Err(ArgError::Rate(s.to_owned())),
        }
    }
}

/// A bandwidth in KB/s (1 KB = 1000 bytes), a whole number; its range is Toxiproxy's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bandwidth(pub i64);

impl cucumber::Parameter for Bandwidth {
    const REGEX: &'static str = r"-?\d+";
    const NAME: &'static str = "bandwidth";
}

impl Param for Bandwidth {
    const SHOWN: &'static str = "{bandwidth}";
    const ABOUT: &'static str = "a whole number of KB/s (1 KB = 1000 bytes), before ` KB/s`: `100`";
}

impl FromStr for Bandwidth {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        s.parse()
            .map(Self)
            .map_err(|_| ArgError::Whole(s.to_owned()))
    }
}

/// A count of at least 1: `3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count(pub usize);

impl cucumber::Parameter for Count {
    const REGEX: &'static str = r"\d+";
    const NAME: &'static str = "count";
}

impl Param for Count {
    const SHOWN: &'static str = "{count}";
    const ABOUT: &'static str = "a whole number of at least 1: `3`";
}

impl FromStr for Count {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Self(n)),
            _ => Err(ArgError::Count(s.to_owned())),
        }
    }
}

/// How many pods a kill takes: `2 pods`, `1 pod`, `50% of the pods`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pods(pub Kill);

impl cucumber::Parameter for Pods {
    const REGEX: &'static str = r"\d+ pods?|\d+% of the pods";
    const NAME: &'static str = "pods";
}

impl Param for Pods {
    const SHOWN: &'static str = "{count} pods|{percent}% of the pods";
    const ABOUT: &'static str =
        "how many pods a kill takes: `2 pods`, `1 pod`, or `50% of the pods` (rounded up)";
}

impl FromStr for Pods {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        if let Some(percent) = s.strip_suffix("% of the pods") {
            let p: u32 = percent
                .parse()
                .map_err(|_| ArgError::Pods(format!("\"{percent}%\" is not a percentage")))?;
            if p == 0 || p > 100 {
                return Err(ArgError::Pods(format!(
                    "{p}% is not a percentage of pods between 1 and 100"
                )));
            }
            return Ok(Self(Kill::Percent(p)));
        }
        let count = s.split(' ').next().unwrap_or_default();
        let n: usize = count
            .parse()
            .map_err(|_| ArgError::Pods(format!("\"{count}\" is not a pod count")))?;
        if n == 0 {
            return Err(ArgError::Pods("killing 0 pods does nothing".to_owned()));
        }
        Ok(Self(Kill::Count(n)))
    }
}

/// ` with w:1`, or nothing (w:majority).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteConcern(pub Concern);

impl cucumber::Parameter for WriteConcern {
    const REGEX: &'static str = r"(?: with w:1)?";
    const NAME: &'static str = "concern";
}

impl Param for WriteConcern {
    const SHOWN: &'static str = "[ with w:1]";
    const ABOUT: &'static str =
        "optional: ` with w:1` (acknowledged by the primary alone); without it, w:majority";
}

impl FromStr for WriteConcern {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        Ok(Self(if s.is_empty() {
            Concern::Majority
        } else {
            Concern::One
        }))
    }
}

/// `, forcing past disruption budgets`, or nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Force(pub bool);

impl cucumber::Parameter for Force {
    const REGEX: &'static str = r"(?:, forcing past disruption budgets)?";
    const NAME: &'static str = "force";
}

impl Param for Force {
    const SHOWN: &'static str = "[, forcing past disruption budgets]";
    const ABOUT: &'static str = "optional: `, forcing past disruption budgets` deletes the pods a PodDisruptionBudget protects";
}

impl FromStr for Force {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        Ok(Self(!s.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_regex_is_valid_and_captures_at_most_its_value() {
        for p in PARAMETERS {
            let re = regex::Regex::new(p.regex)
                .unwrap_or_else(|e| panic!("{{{}}}: invalid regex: {e}", p.name));
            assert!(
                re.captures_len() <= 2,
                "{{{}}} has more than one capture group: the catalog locates an argument by its one group",
                p.name
            );
        }
        let mut names: Vec<&str> = PARAMETERS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PARAMETERS.len(), "two parameters share a name");
    }

    #[test]
    fn every_parameter_is_one_argument_of_an_expression() {
        let parameters: std::collections::HashMap<&str, &str> =
            PARAMETERS.iter().map(|p| (p.name, p.regex)).collect();
        for p in PARAMETERS {
            let expression = format!("a {{{}}} b", p.name);
            let regex = cucumber::codegen::Expression::regex_with_parameters(
                expression.as_str(),
                &parameters,
            )
            .unwrap_or_else(|e| panic!("{{{}}}: {e}", p.name));
            // A group the expansion left unrenamed (one inside `?`) would be an argument of
            // its own, and every later argument would be read from the wrong group.
            assert_eq!(
                crate::arguments(&regex).len(),
                1,
                "{{{}}} expands to {regex}, which the runner reads as several arguments",
                p.name
            );
        }
    }

    #[test]
    fn durations_read_once_and_negative_ones_are_named() {
        let d: Duration = "25 minutes".parse().expect("duration");
        assert_eq!(d.value, std::time::Duration::from_secs(1500));
        assert_eq!(d.to_string(), "25 minutes");
        assert_eq!(
            "-300ms"
                .parse::<Latency>()
                .expect_err("negative")
                .to_string(),
            "latency -300ms is negative (hint: give a duration of zero or more, e.g. 300ms)"
        );
        assert_eq!(
            "5x".parse::<Duration>().expect_err("no unit").parts().0,
            "\"5x\" is not a duration"
        );
        assert_eq!(
            "".parse::<Jitter>().ok(),
            Some(Jitter(std::time::Duration::ZERO))
        );
    }

    #[test]
    fn counts_percentages_pods_and_labels_read_or_say_why_not() {
        assert_eq!("2 pods".parse::<Pods>().ok(), Some(Pods(Kill::Count(2))));
        assert_eq!("1 pod".parse::<Pods>().ok(), Some(Pods(Kill::Count(1))));
        assert_eq!(
            "50% of the pods".parse::<Pods>().ok(),
            Some(Pods(Kill::Percent(50)))
        );
        assert!("0 pods".parse::<Pods>().is_err());
        assert!("101% of the pods".parse::<Pods>().is_err());
        assert!("0".parse::<Count>().is_err());
        assert!("100.5".parse::<Percent>().is_err());
        assert!("0".parse::<Rate>().is_err());
        assert_eq!(
            "region=us-west2, track=b".parse::<Labels>().ok(),
            Some(Labels(
                [
                    ("region".to_owned(), "us-west2".to_owned()),
                    ("track".to_owned(), "b".to_owned())
                ]
                .into()
            ))
        );
        assert!("region".parse::<Labels>().is_err());
        assert_eq!(
            "\"a\", \"b\" and \"c\"".parse::<Namespaces>().ok(),
            Some(Namespaces(vec!["a".into(), "b".into(), "c".into()]))
        );
    }

    #[test]
    fn percentiles_read_p50_p95_p99_and_name_any_other() {
        assert_eq!("p95".parse::<Percentile>().ok(), Some(Percentile(95)));
        assert_eq!(
            "p99".parse::<Percentile>().map(Percentile::quantile),
            Ok(0.99)
        );
        assert_eq!(Percentile(50).to_string(), "p50");
        assert_eq!(
            "p90".parse::<Percentile>().expect_err("p90").to_string(),
            "\"p90\" is not a percentile firedrill computes (hint: write p50, p95 or p99)"
        );
    }

    #[test]
    fn references_are_milestone_names() {
        assert_eq!(
            "the fault".parse::<Reference>().ok(),
            Some(Reference(MilestoneName::FaultInjected))
        );
        assert_eq!(
            "\"traffic switched to us-west2\"".parse::<Reference>().ok(),
            Some(Reference(MilestoneName::TrafficSwitchedTo(
                "us-west2".into()
            )))
        );
    }
}
