//! The names of milestones and phases, in one place: every instant firedrill stamps on a
//! timeline and every interval it measures. Steps, providers, the engine and the reports build
//! and read names only through [`MilestoneName`] and [`PhaseName`], so a name is spelt once.

use std::fmt;
use std::str::FromStr;

use crate::clock::PlatformTime;
use crate::timeline::{Milestone, Timeline};

/// `fault injected`: the scenario's first fault, once its undo is on disk ("the fault").
pub const FAULT_INJECTED: &str = "fault injected";
/// `traffic switch started`: a traffic switch began ("the switch").
pub const TRAFFIC_SWITCH_STARTED: &str = "traffic switch started";
/// `first bad answer`: a probe's first bad answer after good ones.
pub const FIRST_BAD_ANSWER: &str = "first bad answer";
/// `outage detected`: the first bad answer after the fault, as the detection step saw it.
pub const OUTAGE_DETECTED: &str = "outage detected";
/// `primary lost`: the Mongo observer saw the primary go.
pub const PRIMARY_LOST: &str = "primary lost";
/// `writes available again`: a write checker's write succeeded after failures.
pub const WRITES_AVAILABLE_AGAIN: &str = "writes available again";
/// `first failover pod ready`: the watch saw the first failover pod Ready.
pub const FIRST_FAILOVER_POD_READY: &str = "first failover pod ready";
/// The same instant as the Kubernetes API reported it (its Ready transition time).
pub const FIRST_FAILOVER_POD_READY_REPORTED: &str =
    "first failover pod ready (API transition time)";
/// `failover pods ready`: every failover deployment runs its pods, Ready.
pub const FAILOVER_PODS_READY: &str = "failover pods ready";
/// The prefix of `new primary elected in {region}`.
pub const NEW_PRIMARY_ELECTED_IN: &str = "new primary elected in ";

/// What the steps call the reference milestone `fault injected`.
pub const THE_FAULT: &str = "the fault";
/// What the steps call the reference milestone `traffic switch started`.
pub const THE_SWITCH: &str = "the switch";

/// The name of a milestone: one firedrill stamps, or one a drill waits for.
///
/// Its [`Display`](fmt::Display) is the name on the timeline and in reports; parsing a name
/// ([`MilestoneName::parse`]) gives back the variant, so `parse(x.to_string()) == x`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MilestoneName {
    /// `fault injected`: the scenario's first fault acted, its undo on disk.
    FaultInjected,
    /// `fault injected: {what}`: one fault acted, its undo on disk (a fault or a kube fault).
    FaultInjectedAs(String),
    /// `fault removed: {fault}`: a step undid a fault before the scenario ended.
    FaultRemoved(String),
    /// `approved: {change}`: a person (or `--auto-approve`) approved a @gameday change.
    Approved(String),
    /// `command {name} finished`: a named command exited.
    CommandFinished(String),
    /// `traffic switch started`: the platform's traffic switch or an in-cluster one began.
    TrafficSwitchStarted,
    /// `traffic switched to {region}`: the traffic switch command exited.
    TrafficSwitchedTo(String),
    /// `traffic switched: {what}`: an in-cluster traffic switch was applied.
    TrafficSwitched(String),
    /// `first bad answer`: a probe got a bad answer after good ones.
    FirstBadAnswer,
    /// `first good answer from {region}`: a probe's first good answer from a region.
    FirstGoodAnswerFrom(String),
    /// `service answers from {region}`: stable good answers from a region, stamped at the first.
    ServiceAnswersFrom(String),
    /// `outage detected`: the first bad answer after the fault.
    OutageDetected,
    /// `{duration} passed`: a step let platform time pass.
    Passed(String),
    /// `link {link} faulted: {what}`: a network fault on a Toxiproxy link acted.
    LinkFaulted {
        /// The link.
        link: String,
        /// What was done to it.
        what: String,
    },
    /// `link {link} restored`: a step undid the link's faults.
    LinkRestored(String),
    /// `mongo fault: {namespace}`: a step-down or kill of a namespace's primary acted.
    MongoFault(String),
    /// `mongo member frozen: {namespace}`: a member of the namespace's replica set was frozen.
    MongoMemberFrozen(String),
    /// `database flip started: {namespace}`: the reconfiguration of a flip acted.
    DatabaseFlipStarted(String),
    /// `primary lost`: the observer saw the primary go.
    PrimaryLost,
    /// `new primary elected in {region}`: the observer saw a member become primary.
    NewPrimaryElectedIn(String),
    /// `writes available again`: the write checker's writes succeed again.
    WritesAvailableAgain,
    /// `zone drained: {zone}`: the last pod of the platform's namespaces left the zone.
    ZoneDrained(String),
    /// `disruption budgets forced in zone {zone}: {pods}`: a forced drain deleted these pods.
    DisruptionBudgetsForced {
        /// The zone.
        zone: String,
        /// The pods deleted past their budget, comma-separated.
        pods: String,
    },
    /// `failover scale-up started: {region}`: the failover cluster's scale-up acted.
    FailoverScaleUpStarted(String),
    /// `first failover pod ready`, as the watch saw it.
    FirstFailoverPodReady,
    /// `first failover pod ready (API transition time)`, as the API reported it.
    FirstFailoverPodReadyReported,
    /// `failover pods ready`: every failover deployment runs its pods, Ready.
    FailoverPodsReady,
    /// `ground truth: {what}`: what the embedded platform's own records say happened.
    GroundTruth(String),
    /// A name firedrill does not stamp itself: a drill may wait for one (and time out).
    Named(String),
}

/// Makes a name from its value.
type Make = fn(String) -> MilestoneName;

/// Names of the form `{prefix}{value}`, in parsing order.
const PREFIXED: &[(&str, Make)] = &[
    ("fault injected: ", MilestoneName::FaultInjectedAs),
    ("fault removed: ", MilestoneName::FaultRemoved),
    ("approved: ", MilestoneName::Approved),
    ("traffic switched to ", MilestoneName::TrafficSwitchedTo),
    ("traffic switched: ", MilestoneName::TrafficSwitched),
    (
        "first good answer from ",
        MilestoneName::FirstGoodAnswerFrom,
    ),
    ("service answers from ", MilestoneName::ServiceAnswersFrom),
    ("mongo fault: ", MilestoneName::MongoFault),
    ("mongo member frozen: ", MilestoneName::MongoMemberFrozen),
    (
        "database flip started: ",
        MilestoneName::DatabaseFlipStarted,
    ),
    (NEW_PRIMARY_ELECTED_IN, MilestoneName::NewPrimaryElectedIn),
    ("zone drained: ", MilestoneName::ZoneDrained),
    (
        "failover scale-up started: ",
        MilestoneName::FailoverScaleUpStarted,
    ),
    ("ground truth: ", MilestoneName::GroundTruth),
];

/// Names without a value.
const FIXED: &[(&str, MilestoneName)] = &[
    (FAULT_INJECTED, MilestoneName::FaultInjected),
    (TRAFFIC_SWITCH_STARTED, MilestoneName::TrafficSwitchStarted),
    (FIRST_BAD_ANSWER, MilestoneName::FirstBadAnswer),
    (OUTAGE_DETECTED, MilestoneName::OutageDetected),
    (PRIMARY_LOST, MilestoneName::PrimaryLost),
    (WRITES_AVAILABLE_AGAIN, MilestoneName::WritesAvailableAgain),
    (
        FIRST_FAILOVER_POD_READY,
        MilestoneName::FirstFailoverPodReady,
    ),
    (
        FIRST_FAILOVER_POD_READY_REPORTED,
        MilestoneName::FirstFailoverPodReadyReported,
    ),
    (FAILOVER_PODS_READY, MilestoneName::FailoverPodsReady),
];

impl MilestoneName {
    /// The variant a name on a timeline stands for ([`MilestoneName::Named`] when firedrill
    /// stamps no such name).
    #[must_use]
    pub fn parse(name: &str) -> Self {
        if let Some((_, fixed)) = FIXED.iter().find(|(text, _)| *text == name) {
            return fixed.clone();
        }
        if let Some((prefix, make)) = PREFIXED.iter().find(|(p, _)| name.starts_with(p)) {
            return make(name[prefix.len()..].to_owned());
        }
        if let Some(rest) = name.strip_prefix("disruption budgets forced in zone ")
            && let Some((zone, pods)) = rest.split_once(": ")
        {
            return Self::DisruptionBudgetsForced {
                zone: zone.to_owned(),
                pods: pods.to_owned(),
            };
        }
        if let Some(rest) = name.strip_prefix("link ") {
            if let Some((link, what)) = rest.split_once(" faulted: ") {
                return Self::LinkFaulted {
                    link: link.to_owned(),
                    what: what.to_owned(),
                };
            }
            if let Some(link) = rest.strip_suffix(" restored") {
                return Self::LinkRestored(link.to_owned());
            }
        }
        if let Some(command) = name
            .strip_prefix("command ")
            .and_then(|r| r.strip_suffix(" finished"))
        {
            return Self::CommandFinished(command.to_owned());
        }
        if let Some(duration) = name.strip_suffix(" passed") {
            return Self::Passed(duration.to_owned());
        }
        Self::Named(name.to_owned())
    }

    /// A milestone reference as steps write it: `the fault` (`fault injected`), `the switch`
    /// (`traffic switch started`), or a quoted name.
    #[must_use]
    pub fn reference(text: &str) -> Self {
        match text {
            THE_FAULT => Self::FaultInjected,
            THE_SWITCH => Self::TrafficSwitchStarted,
            quoted => Self::parse(quoted.trim_matches('"')),
        }
    }

    /// This milestone observed at `at` by `source`.
    #[must_use]
    pub fn at(&self, at: PlatformTime, source: &str) -> Milestone {
        Milestone {
            name: self.to_string(),
            at,
            source: source.to_owned(),
        }
    }

    /// Whether `milestone` carries this name.
    #[must_use]
    pub fn names(&self, milestone: &Milestone) -> bool {
        milestone.name == self.to_string()
    }
}

impl fmt::Display for MilestoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((text, _)) = FIXED.iter().find(|(_, fixed)| fixed == self) {
            return f.write_str(text);
        }
        match self {
            Self::FaultInjectedAs(v) => write!(f, "fault injected: {v}"),
            Self::FaultRemoved(v) => write!(f, "fault removed: {v}"),
            Self::Approved(v) => write!(f, "approved: {v}"),
            Self::CommandFinished(v) => write!(f, "command {v} finished"),
            Self::TrafficSwitchedTo(v) => write!(f, "traffic switched to {v}"),
            Self::TrafficSwitched(v) => write!(f, "traffic switched: {v}"),
            Self::FirstGoodAnswerFrom(v) => write!(f, "first good answer from {v}"),
            Self::ServiceAnswersFrom(v) => write!(f, "service answers from {v}"),
            Self::Passed(v) => write!(f, "{v} passed"),
            Self::LinkFaulted { link, what } => write!(f, "link {link} faulted: {what}"),
            Self::LinkRestored(v) => write!(f, "link {v} restored"),
            Self::MongoFault(v) => write!(f, "mongo fault: {v}"),
            Self::MongoMemberFrozen(v) => write!(f, "mongo member frozen: {v}"),
            Self::DatabaseFlipStarted(v) => write!(f, "database flip started: {v}"),
            Self::NewPrimaryElectedIn(v) => write!(f, "{NEW_PRIMARY_ELECTED_IN}{v}"),
            Self::ZoneDrained(v) => write!(f, "zone drained: {v}"),
            Self::DisruptionBudgetsForced { zone, pods } => {
                write!(f, "disruption budgets forced in zone {zone}: {pods}")
            }
            Self::FailoverScaleUpStarted(v) => write!(f, "failover scale-up started: {v}"),
            Self::GroundTruth(v) => write!(f, "ground truth: {v}"),
            Self::Named(v) => f.write_str(v),
            Self::FaultInjected
            | Self::TrafficSwitchStarted
            | Self::FirstBadAnswer
            | Self::OutageDetected
            | Self::PrimaryLost
            | Self::WritesAvailableAgain
            | Self::FirstFailoverPodReady
            | Self::FirstFailoverPodReadyReported
            | Self::FailoverPodsReady => Ok(()),
        }
    }
}

impl From<MilestoneName> for String {
    fn from(name: MilestoneName) -> Self {
        name.to_string()
    }
}

impl FromStr for MilestoneName {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse(s))
    }
}

/// A phase firedrill measures by name: what a drill's `the {phase} time is within …` step
/// accepts and the keys a platform's `targets:` may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PhaseName {
    /// From `fault injected` to the first `service answers from {region}` of a failover region.
    Failover,
    /// From `fault injected` to the first `service answers from {region}` after it, any region.
    Recovery,
    /// From `fault injected` to `outage detected`.
    Detection,
    /// From `traffic switch started` to the first `traffic switched to {region}` after it.
    Switch,
}

/// Phases firedrill measures by name, with how each is measured.
pub const PHASES: &[(&str, &str)] = &[
    (PhaseName::Failover.as_str(), PhaseName::Failover.measured()),
    (PhaseName::Recovery.as_str(), PhaseName::Recovery.measured()),
    (
        PhaseName::Detection.as_str(),
        PhaseName::Detection.measured(),
    ),
    (PhaseName::Switch.as_str(), PhaseName::Switch.measured()),
];

/// The names of [`PHASES`].
pub fn phase_names() -> impl Iterator<Item = &'static str> {
    PhaseName::ALL.iter().map(|p| p.as_str())
}

/// A phase's bounds: the milestone it starts at, and the one it ends at if reached.
pub type Bounds = (Milestone, Option<Milestone>);

impl PhaseName {
    /// Every phase, in the order the catalog lists them.
    pub const ALL: [Self; 4] = [
        Self::Failover,
        Self::Recovery,
        Self::Detection,
        Self::Switch,
    ];

    /// Its name, as drills and `targets:` write it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Failover => "failover",
            Self::Recovery => "recovery",
            Self::Detection => "detection",
            Self::Switch => "switch",
        }
    }

    /// How it is measured.
    #[must_use]
    pub const fn measured(self) -> &'static str {
        match self {
            Self::Failover => {
                "from `fault injected` to the first `service answers from {region}` of a failover region"
            }
            Self::Recovery => {
                "from `fault injected` to the first `service answers from {region}` after it, any region"
            }
            Self::Detection => "from `fault injected` to `outage detected`",
            Self::Switch => {
                "from `traffic switch started` to the first `traffic switched to {region}` after it"
            }
        }
    }

    /// The milestone the phase starts at.
    #[must_use]
    pub fn start(self) -> MilestoneName {
        match self {
            Self::Failover | Self::Recovery | Self::Detection => MilestoneName::FaultInjected,
            Self::Switch => MilestoneName::TrafficSwitchStarted,
        }
    }

    /// Whether a milestone ends the phase (`failover_regions` are the platform's failover
    /// regions).
    #[must_use]
    pub fn ends_at(self, end: &MilestoneName, failover_regions: &[&str]) -> bool {
        match (self, end) {
            (Self::Failover, MilestoneName::ServiceAnswersFrom(region)) => {
                failover_regions.contains(&region.as_str())
            }
            (Self::Recovery, MilestoneName::ServiceAnswersFrom(_))
            | (Self::Detection, MilestoneName::OutageDetected)
            | (Self::Switch, MilestoneName::TrafficSwitchedTo(_)) => true,
            _ => false,
        }
    }

    /// The phase's bounds on `timeline`: its start milestone (the earliest), and the earliest
    /// milestone at or after it that ends the phase.
    ///
    /// # Errors
    ///
    /// The start milestone's name when the timeline never reached it.
    pub fn bounds(
        self,
        timeline: &Timeline,
        failover_regions: &[&str],
    ) -> Result<Bounds, MilestoneName> {
        let start = self.start();
        let from = timeline.first(&start.to_string()).cloned().ok_or(start)?;
        let to = timeline
            .first_matching_since(from.at, |name| {
                self.ends_at(&MilestoneName::parse(name), failover_regions)
            })
            .cloned();
        Ok((from, to))
    }
}

impl fmt::Display for PhaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a phase firedrill measures.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("\"{name}\" is not a phase firedrill measures (hint: known phases: {})", crate::diagnostic::one_of(&PhaseName::ALL.map(PhaseName::as_str)))]
pub struct UnknownPhase {
    /// The name given.
    pub name: String,
}

impl UnknownPhase {
    /// The message and the hint, apart.
    #[must_use]
    pub fn parts(&self) -> (String, String) {
        (
            format!("\"{}\" is not a phase firedrill measures", self.name),
            format!(
                "known phases: {}",
                crate::diagnostic::one_of(&PhaseName::ALL.map(PhaseName::as_str))
            ),
        )
    }
}

impl FromStr for PhaseName {
    type Err = UnknownPhase;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPhase { name: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn every_kind() -> Vec<MilestoneName> {
        use MilestoneName as M;
        let v = |s: &str| s.to_owned();
        vec![
            M::FaultInjected,
            M::FaultInjectedAs(v("zone-outage us-west1-a")),
            M::FaultRemoved(v("marker")),
            M::Approved(v("marker: a marker file")),
            M::CommandFinished(v("wait-90s")),
            M::TrafficSwitchStarted,
            M::TrafficSwitchedTo(v("us-west2")),
            M::TrafficSwitched(v(
                "set region=us-west2 in the selector of Service prod-1/front",
            )),
            M::FirstBadAnswer,
            M::FirstGoodAnswerFrom(v("us-west2")),
            M::ServiceAnswersFrom(v("us-west2")),
            M::OutageDetected,
            M::Passed(v("5m")),
            M::LinkFaulted {
                link: v("app-link"),
                what: v("300ms ±50ms latency"),
            },
            M::LinkRestored(v("app-link")),
            M::MongoFault(v("prod-1")),
            M::MongoMemberFrozen(v("prod-1")),
            M::DatabaseFlipStarted(v("prod-1")),
            M::PrimaryLost,
            M::NewPrimaryElectedIn(v("us-west1")),
            M::WritesAvailableAgain,
            M::ZoneDrained(v("us-west1-a")),
            M::DisruptionBudgetsForced {
                zone: v("us-west1-b"),
                pods: v("prod-1/a, prod-1/b"),
            },
            M::FailoverScaleUpStarted(v("us-west2")),
            M::FirstFailoverPodReady,
            M::FirstFailoverPodReadyReported,
            M::FailoverPodsReady,
            M::GroundTruth(v("us-west1 down")),
            M::Named(v("never")),
        ]
    }

    #[test]
    fn every_name_reads_back_as_itself() {
        for name in every_kind() {
            let text = name.to_string();
            assert!(!text.is_empty(), "{name:?}");
            assert_eq!(MilestoneName::parse(&text), name, "{text}");
        }
    }

    #[test]
    fn names_read_as_they_always_did() {
        use MilestoneName as M;
        assert_eq!(M::FaultInjected.to_string(), "fault injected");
        assert_eq!(
            M::FaultInjectedAs("marker".into()).to_string(),
            "fault injected: marker"
        );
        assert_eq!(
            M::NewPrimaryElectedIn("us-west2".into()).to_string(),
            "new primary elected in us-west2"
        );
        assert_eq!(
            M::LinkFaulted {
                link: "l".into(),
                what: "cut".into()
            }
            .to_string(),
            "link l faulted: cut"
        );
        assert_eq!(M::Passed("5m".into()).to_string(), "5m passed");
    }

    #[test]
    fn references_name_the_fault_the_switch_or_a_quoted_milestone() {
        assert_eq!(
            MilestoneName::reference("the fault"),
            MilestoneName::FaultInjected
        );
        assert_eq!(
            MilestoneName::reference("the switch"),
            MilestoneName::TrafficSwitchStarted
        );
        assert_eq!(
            MilestoneName::reference("\"link front restored\""),
            MilestoneName::LinkRestored("front".into())
        );
        assert_eq!(
            MilestoneName::reference("\"never\""),
            MilestoneName::Named("never".into())
        );
    }

    #[test]
    fn phases_parse_by_name_and_say_which_exist() {
        assert_eq!("switch".parse(), Ok(PhaseName::Switch));
        let err = "failovr".parse::<PhaseName>().expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "\"failovr\" is not a phase firedrill measures (hint: known phases: \"failover\", \"recovery\", \"detection\" or \"switch\")"
        );
        assert_eq!(
            phase_names().collect::<Vec<_>>(),
            PHASES.iter().map(|(n, _)| *n).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_phase_ends_at_its_first_end_milestone_after_its_start() {
        let at = |s| PlatformTime::from_offset(Duration::from_secs(s));
        let mut t = Timeline::default();
        t.record(MilestoneName::ServiceAnswersFrom("us-west1".into()).at(at(0), "probe"));
        t.record(MilestoneName::FaultInjected.at(at(10), "engine"));
        t.record(MilestoneName::ServiceAnswersFrom("us-west1".into()).at(at(20), "probe"));
        t.record(MilestoneName::ServiceAnswersFrom("us-west2".into()).at(at(30), "probe"));
        let end = |phase: PhaseName| {
            phase
                .bounds(&t, &["us-west2"])
                .map(|(from, to)| (from.at, to.map(|m| m.at)))
        };
        assert_eq!(end(PhaseName::Failover), Ok((at(10), Some(at(30)))));
        assert_eq!(end(PhaseName::Recovery), Ok((at(10), Some(at(20)))));
        assert_eq!(end(PhaseName::Detection), Ok((at(10), None)));
        assert_eq!(
            end(PhaseName::Switch),
            Err(MilestoneName::TrafficSwitchStarted)
        );
    }
}
