//! Why a step failed: [`StepError`], whose variants carry what failed, where, and a hint —
//! rendered once, by the runner, as the step's failure.

use std::fmt;

/// The hint of a provider's error that carries none (every provider error should; the
/// providers' own test holds them to it, so this only covers an error from elsewhere).
const FALLBACK_HINT: &str = "the run's log says more; `firedrill recover` undoes what is left";

/// Why a step failed. Every variant's message ends with `(hint: …)`: a [`StepError::Action`]
/// with its provider's hint, every other variant with its own `hint` field, which each
/// constructor requires.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// What the step checks did not hold.
    #[error("expected {expected}, but {seen} (hint: {hint})")]
    Unmet {
        /// What the step expected (`traffic to be served from "us-west2"`).
        expected: String,
        /// What it saw instead, naming the object it looked at.
        seen: String,
        /// What to do.
        hint: String,
    },
    /// A wait that ran out: what it awaited did not hold within its deadline.
    #[error("within {within}, expected {awaited}, but {seen} (hint: {hint})")]
    Timeout {
        /// What was awaited.
        awaited: String,
        /// The deadline and what it counts from (`20s of the end of the step before`).
        within: String,
        /// What was last seen.
        seen: String,
        /// What to do.
        hint: String,
    },
    /// A provider's action failed (its error names the object and ends with its hint).
    #[error("cannot {action}: {source}{}", hint_unless_given(.source))]
    Action {
        /// What the step did, on which target (`scale the failover cluster in "us-west2" up`).
        action: String,
        /// The provider's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The platform file lacks what the step needs.
    #[error("{what} (hint: {hint})")]
    Platform {
        /// What is missing or wrong (`the platform has no traffic section`).
        what: String,
        /// What to add to the platform file.
        hint: String,
    },
    /// Something the scenario had to do before this step did not happen.
    #[error("{what} (hint: {hint})")]
    Precondition {
        /// What did not happen (`the failover cluster in "us-west2" was not scaled up in this
        /// scenario`).
        what: String,
        /// Which step to add.
        hint: String,
    },
}

/// Old name of [`StepError`], kept so step signatures read `Result<(), Failure>`.
pub type Failure = StepError;

impl StepError {
    /// An expectation not met.
    pub fn unmet(
        expected: impl Into<String>,
        seen: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::Unmet {
            expected: expected.into(),
            seen: seen.into(),
            hint: hint.into(),
        }
    }

    /// The platform lacks `what`.
    pub fn platform(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::Platform {
            what: what.into(),
            hint: hint.into(),
        }
    }

    /// The scenario did not do `what` before this step.
    pub fn precondition(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::Precondition {
            what: what.into(),
            hint: hint.into(),
        }
    }

    /// A provider's `action` failed with `source`.
    pub fn action(
        action: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Action {
            action: action.into(),
            source: Box::new(source),
        }
    }

    /// This failure as the end of a wait of `within` (`20s of the end of the step before`):
    /// an expectation not met becomes a [`StepError::Timeout`]; any other failure is kept.
    #[must_use]
    pub fn within(self, within: impl fmt::Display) -> Self {
        match self {
            Self::Unmet {
                expected,
                seen,
                hint,
            } => Self::Timeout {
                awaited: expected,
                within: within.to_string(),
                seen,
                hint,
            },
            other => other,
        }
    }
}

/// A provider's message after a redaction (of credentials, of a URI's password): the source a
/// [`StepError::Action`] keeps when the original error must not be shown.
#[derive(Debug)]
pub struct Redacted(pub String);

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Redacted {}

/// ` (hint: …)` when the provider's message carries no hint of its own.
fn hint_unless_given<S: fmt::Display + ?Sized>(source: &S) -> String {
    if source.to_string().contains("(hint: ") {
        String::new()
    } else {
        format!(" (hint: {FALLBACK_HINT})")
    }
}

/// Names the action a provider's error comes from.
pub trait ResultExt<T> {
    /// A failure as a [`StepError::Action`] naming `action` (what, on which target).
    ///
    /// # Errors
    ///
    /// The error, when there is one, with the action named.
    fn acting<A: Into<String>>(self, action: impl FnOnce() -> A) -> Result<T, StepError>;

    /// As [`ResultExt::acting`], the error's message passed through `clean` first (it may
    /// hold credentials).
    ///
    /// # Errors
    ///
    /// The error, redacted, when there is one, with the action named.
    fn acting_redacted<A: Into<String>>(
        self,
        action: impl FnOnce() -> A,
        clean: impl FnOnce(&str) -> String,
    ) -> Result<T, StepError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> ResultExt<T> for Result<T, E> {
    fn acting<A: Into<String>>(self, action: impl FnOnce() -> A) -> Result<T, StepError> {
        self.map_err(|e| StepError::action(action(), e))
    }

    fn acting_redacted<A: Into<String>>(
        self,
        action: impl FnOnce() -> A,
        clean: impl FnOnce(&str) -> String,
    ) -> Result<T, StepError> {
        self.map_err(|e| StepError::action(action(), Redacted(clean(&e.to_string()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error(
        "[us-west2] deployments/scale \"storefront\" failed: refused (hint: is the API server reachable?)"
    )]
    struct WithHint;

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct WithoutHint;

    fn ends_with_a_hint(message: &str) -> bool {
        message
            .rfind("(hint: ")
            .is_some_and(|at| message.ends_with(')') && at + "(hint: ".len() < message.len() - 1)
    }

    #[test]
    fn every_variant_names_what_failed_and_ends_with_a_hint() {
        let cases = [
            (
                StepError::unmet(
                    "traffic to be served from \"us-west2\"",
                    "probe \"front-door\" got a good answer from \"us-west1\"",
                    "check the switch",
                ),
                "expected traffic to be served from \"us-west2\", but probe \"front-door\" got a good answer from \"us-west1\" (hint: check the switch)",
            ),
            (
                StepError::unmet("the platform to be healthy", "probe \"site\": 503", "wait")
                    .within("20s of the end of the step before"),
                "within 20s of the end of the step before, expected the platform to be healthy, but probe \"site\": 503 (hint: wait)",
            ),
            (
                StepError::action("scale the failover cluster in \"us-west2\" up", WithHint),
                "cannot scale the failover cluster in \"us-west2\" up: [us-west2] deployments/scale \"storefront\" failed: refused (hint: is the API server reachable?)",
            ),
            (
                StepError::action("cut link \"db\"", WithoutHint),
                "cannot cut link \"db\": connection refused (hint: the run's log says more; `firedrill recover` undoes what is left)",
            ),
            (
                StepError::action(
                    "step down the primary of prod-1",
                    Redacted("auth failed for <redacted> (hint: check the URI)".into()),
                ),
                "cannot step down the primary of prod-1: auth failed for <redacted> (hint: check the URI)",
            ),
            (
                StepError::platform(
                    "the platform has no traffic section",
                    "define traffic.switch and traffic.probe",
                ),
                "the platform has no traffic section (hint: define traffic.switch and traffic.probe)",
            ),
            (
                StepError::precondition(
                    "the failover cluster in \"us-west2\" was not scaled up in this scenario",
                    "add `When the failover cluster in \"us-west2\" is scaled up` before this step",
                ),
                "the failover cluster in \"us-west2\" was not scaled up in this scenario (hint: add `When the failover cluster in \"us-west2\" is scaled up` before this step)",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
            assert!(ends_with_a_hint(&error.to_string()), "{error}");
        }
    }

    #[test]
    fn an_action_keeps_its_provider_error_as_its_source() {
        let error = Err::<(), _>(WithHint)
            .acting(|| "scale \"us-west2\" up")
            .expect_err("an error");
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source, Some(WithHint.to_string()));
    }

    #[test]
    fn a_wait_keeps_a_failure_that_is_not_an_expectation() {
        let error = StepError::platform("no traffic section", "add one").within("5s");
        assert_eq!(error.to_string(), "no traffic section (hint: add one)");
    }

    /// The step files, for the scan below.
    const STEP_FILES: &[(&str, &str)] = &[
        ("atlas.rs", include_str!("atlas.rs")),
        ("check.rs", include_str!("check.rs")),
        ("faults.rs", include_str!("faults.rs")),
        ("guards.rs", include_str!("guards.rs")),
        ("kube.rs", include_str!("kube.rs")),
        ("mongo.rs", include_str!("mongo.rs")),
        ("network.rs", include_str!("network.rs")),
        ("probes.rs", include_str!("probes.rs")),
        ("queries.rs", include_str!("queries.rs")),
        ("timing.rs", include_str!("timing.rs")),
        ("traffic.rs", include_str!("traffic.rs")),
        ("world.rs", include_str!("world.rs")),
    ];

    #[test]
    fn no_step_file_builds_a_failure_without_a_hint() {
        // By construction every constructor takes a hint, and an action's comes from its
        // provider; what is left to catch is a hint left empty, or a message flattened into a
        // string as before.
        for (file, source) in STEP_FILES {
            let found: Vec<&str> = source
                .lines()
                .filter(|l| {
                    let l = l.trim();
                    // The old flattened type, an empty hint field, or an empty hint given
                    // to a constructor on the same line.
                    l.contains("Failure(")
                        || l.contains("hint: \"\"")
                        || l.contains("hint: String::new()")
                        || (l.contains("StepError::") && l.contains(", \"\")"))
                })
                .collect();
            assert!(
                found.is_empty(),
                "{file}: a step error without a hint: {found:#?}"
            );
        }
    }
}
