//! The cucumber world of one scenario: the engine's [`Scenario`] (timeline, faults, undo) with
//! what the steps' domains keep beside it — continuous probes, the MongoDB observers and write
//! checkers, the Kubernetes snapshots, the Prometheus client of guards and SLO steps.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};

use firedrill_core::timeline::Milestone;
use firedrill_engine::events::Event;
use firedrill_engine::runner::DrillWorld;
use firedrill_engine::scenario::{self, RunContext, Scenario};
use firedrill_providers::Undo;
use firedrill_providers::http::{self, Running};
use futures::future::LocalBoxFuture;
use std::sync::Arc;

use crate::{ResultExt, StepError};

/// Why a world could not be made.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// A step ran outside a run.
    #[error("no run context: steps only run under `firedrill run`")]
    NoRun,
    /// The probes' HTTP client could not be built.
    #[error("cannot build the probes' HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The world of one scenario.
#[derive(cucumber::World)]
#[world(init = Self::new)]
pub struct Drill {
    engine: Scenario<Undo>,
    /// HTTP client for probes.
    pub http: reqwest::Client,
    /// Continuous probes by name.
    pub probes: BTreeMap<String, Running>,
    /// The MongoDB steps' observers, write checkers and reports.
    pub mongo: crate::mongo::Scenario,
    /// The Kubernetes steps' snapshots from the scenario's start.
    pub kube: crate::kube::Scenario,
    /// The platform's Prometheus, once a guard or an SLO step asked for it.
    prometheus: Option<firedrill_providers::prometheus::Client>,
    /// The Atlas steps' watchers.
    pub atlas: crate::atlas::Scenario,
}

impl fmt::Debug for Drill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drill")
            .field("scenario", &self.engine)
            .finish_non_exhaustive()
    }
}

/// A step's world is its scenario, plus what the domains keep: `world.inject(…)`,
/// `world.milestone(…)`, `world.platform()` are the engine's.
impl Deref for Drill {
    type Target = Scenario<Undo>;

    fn deref(&self) -> &Self::Target {
        &self.engine
    }
}

impl DerefMut for Drill {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.engine
    }
}

impl Drill {
    async fn new() -> Result<Self, WorldError> {
        Self::with_run(scenario::current::<Undo>().ok_or(WorldError::NoRun)?)
    }

    /// The world of a scenario of `run`.
    ///
    /// # Errors
    ///
    /// When the probes' HTTP client cannot be built.
    pub fn with_run(run: Arc<RunContext<Undo>>) -> Result<Self, WorldError> {
        Ok(Self {
            engine: Scenario::new(run),
            http: http::client()?,
            probes: BTreeMap::new(),
            mongo: crate::mongo::Scenario::default(),
            kube: crate::kube::Scenario::default(),
            prometheus: None,
            atlas: crate::atlas::Scenario::default(),
        })
    }

    /// The platform's Prometheus client (built once per scenario).
    ///
    /// # Errors
    ///
    /// When the platform names none or its credentials cannot be read.
    pub fn prometheus(&mut self) -> Result<firedrill_providers::prometheus::Client, StepError> {
        if let Some(client) = &self.prometheus {
            return Ok(client.clone());
        }
        let client = firedrill_providers::prometheus::Client::from_platform(self.platform())
            .acting(|| "connect to the platform's Prometheus")?;
        self.prometheus = Some(client.clone());
        Ok(client)
    }

    /// Starts (or returns) the continuous probe `name` from the platform.
    ///
    /// # Errors
    ///
    /// When the platform has no such probe.
    pub fn start_probe(&mut self, name: &str) -> Result<&Running, StepError> {
        if !self.probes.contains_key(name) {
            let probe = self.platform().probes.get(name).cloned().ok_or_else(|| {
                StepError::platform(
                    format!("probe \"{name}\" is not defined in the platform"),
                    format!("define probes.{name} with its url in the platform file"),
                )
            })?;
            let recorder = self.recorder();
            let on_milestone = Arc::new(
                move |probe: &str, m: http::ProbeMilestone, _: &http::Observation| {
                    recorder.record(Milestone {
                        name: m.name,
                        at: m.at,
                        source: probe.to_owned(),
                    });
                },
            );
            let running = http::spawn(name, probe, self.http.clone(), self.clock(), on_milestone);
            self.probes.insert(name.to_owned(), running);
        }
        self.probes.get(name).ok_or_else(|| {
            StepError::unmet(
                format!("probe \"{name}\" to start"),
                "it did not",
                "this is a firedrill bug; please report the drill",
            )
        })
    }

    /// Stops every probe and reports their final state.
    pub fn stop_probes(&mut self) {
        for (name, running) in std::mem::take(&mut self.probes) {
            let state = running.stop();
            self.run.events.emit(&Event::ProbeStopped {
                probe: name,
                state: Box::new(state),
            });
        }
    }
}

impl DrillWorld for Drill {
    type Undo = Undo;

    fn scenario(&mut self) -> &mut Scenario<Undo> {
        &mut self.engine
    }

    fn started<'a>(&'a mut self, steps: &'a [String]) -> LocalBoxFuture<'a, ()> {
        Box::pin(async move {
            // Namespaces that must stay untouched are compared with how they were now.
            crate::kube::scenario_started(self, steps).await;
            // The traffic probe runs for the whole scenario, so what users saw is always on the
            // timeline, from before the first fault.
            if let Some(probe) = self.platform().traffic.as_ref().map(|t| t.probe.clone()) {
                let _ = self.start_probe(&probe);
            }
            // Guards of the platform (`armed: always`) and of the scenario's tags.
            crate::guards::arm_at_start(self);
        })
    }

    fn finished(&mut self) -> LocalBoxFuture<'_, ()> {
        Box::pin(async move {
            crate::mongo::scenario_finished(self).await;
            crate::atlas::scenario_finished(self);
            self.stop_probes();
        })
    }
}
