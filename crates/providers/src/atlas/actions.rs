//! What firedrill asks of Atlas, each one request of the Administration API: read the cluster,
//! start, read and end an outage simulation, test a failover, patch the region priorities; and
//! the waits on the states Atlas reports. The priority arithmetic is pure and tested here.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use firedrill_core::clock::{PlatformTime, format_duration};

use super::client::{Answer, Call, Client, Role};
use super::error::AtlasError;

/// Media-type version of the cluster resources (`replicationSpecs[].regionConfigs[]`).
pub const CLUSTER_VERSION: &str = "2024-08-05";
/// Media-type version of the outage simulation resource.
pub const OUTAGE_VERSION: &str = "2023-01-01";
/// Media-type version of `restartPrimaries`.
pub const FAILOVER_VERSION: &str = "2023-02-01";
/// Media-type version of the project's API keys and service accounts.
pub const ACCESS_VERSION: &str = "2023-01-01";

/// How often a wait asks Atlas again (platform time).
pub const POLL_EVERY: Duration = Duration::from_secs(5);

/// `stateName` of a cluster with no change in progress.
pub const IDLE: &str = "IDLE";
/// The outage simulation state in which the regions are cut off.
pub const SIMULATING: &str = "SIMULATING";
/// The outage simulation state once the regions are back.
pub const COMPLETE: &str = "COMPLETE";

/// One region of a cluster's replication spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionConfig {
    /// The replication spec it belongs to (its index).
    pub spec: usize,
    /// `providerName`.
    pub provider: String,
    /// `regionName` (Atlas's name).
    pub region: String,
    /// `priority` (7 for the highest).
    pub priority: i64,
    /// `electableSpecs.nodeCount`.
    pub electable: u64,
}

/// A cluster as the drills need it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// `stateName`: IDLE, CREATING, UPDATING, DELETING, REPAIRING.
    pub state: String,
    /// `paused`.
    pub paused: bool,
    /// `replicationSpecs`, as Atlas sent them (saved in the ledger before a change).
    pub replication_specs: Value,
    /// Every region of every spec.
    pub regions: Vec<RegionConfig>,
}

impl Cluster {
    fn from_json(body: &Value) -> Self {
        let replication_specs = body["replicationSpecs"].clone();
        Self {
            state: body["stateName"].as_str().unwrap_or("UNKNOWN").to_owned(),
            paused: body["paused"].as_bool().unwrap_or(false),
            regions: regions_of(&replication_specs),
            replication_specs,
        }
    }

    /// The regions with electable nodes, highest priority first.
    #[must_use]
    pub fn electable(&self) -> Vec<&RegionConfig> {
        let mut out: Vec<&RegionConfig> = self.regions.iter().filter(|r| r.electable > 0).collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.priority));
        out
    }
}

/// Every region config of `specs`.
#[must_use]
pub fn regions_of(specs: &Value) -> Vec<RegionConfig> {
    let mut out = Vec::new();
    for (spec, s) in specs.as_array().into_iter().flatten().enumerate() {
        for r in s["regionConfigs"].as_array().into_iter().flatten() {
            out.push(RegionConfig {
                spec,
                provider: r["providerName"].as_str().unwrap_or_default().to_owned(),
                region: r["regionName"].as_str().unwrap_or_default().to_owned(),
                priority: r["priority"].as_i64().unwrap_or(0),
                electable: r["electableSpecs"]["nodeCount"].as_u64().unwrap_or(0),
            });
        }
    }
    out
}

/// The Atlas region with the highest priority (where the primary lives), if any.
#[must_use]
pub fn top_region(specs: &Value) -> Option<String> {
    regions_of(specs)
        .into_iter()
        .filter(|r| r.electable > 0)
        .max_by_key(|r| r.priority)
        .map(|r| r.region)
}

/// `specs` with `to`'s priority swapped with the highest one's, so the primary moves to `to`;
/// each spec's regions re-ordered by descending priority, as Atlas wants them.
///
/// # Errors
///
/// What is wrong, when `to` has no electable nodes in some spec.
pub fn flip_specs(specs: &Value, to: &str) -> Result<Value, String> {
    let mut out = specs.clone();
    for (i, spec) in out.as_array_mut().into_iter().flatten().enumerate() {
        let Some(configs) = spec["regionConfigs"].as_array_mut() else {
            continue;
        };
        let electable = |c: &Value| c["electableSpecs"]["nodeCount"].as_u64().unwrap_or(0) > 0;
        let target = configs
            .iter()
            .position(|c| c["regionName"] == to && electable(c))
            .ok_or_else(|| format!("replication spec {i} has no electable nodes in region {to}"))?;
        let top = configs
            .iter()
            .enumerate()
            .filter(|(_, c)| electable(c))
            .max_by_key(|(_, c)| c["priority"].as_i64().unwrap_or(0))
            .map(|(j, _)| j)
            .unwrap_or(target);
        let (a, b) = (
            configs[target]["priority"].clone(),
            configs[top]["priority"].clone(),
        );
        configs[target]["priority"] = b;
        configs[top]["priority"] = a;
        sort_by_priority(configs);
    }
    Ok(out)
}

/// `current` with each region's priority set back to what `saved` says (regions matched by
/// provider and name), so only the priorities change back and nothing else the cluster has
/// gained since (a resize, a new region) is undone.
#[must_use]
pub fn restore_priorities(current: &Value, saved: &Value) -> Value {
    let wanted = regions_of(saved);
    let mut out = current.clone();
    for (i, spec) in out.as_array_mut().into_iter().flatten().enumerate() {
        let Some(configs) = spec["regionConfigs"].as_array_mut() else {
            continue;
        };
        for c in configs.iter_mut() {
            if let Some(w) = wanted.iter().find(|w| {
                w.spec == i
                    && c["regionName"] == w.region.as_str()
                    && c["providerName"] == w.provider.as_str()
            }) {
                c["priority"] = json!(w.priority);
            }
        }
        sort_by_priority(configs);
    }
    out
}

fn sort_by_priority(configs: &mut [Value]) {
    configs.sort_by_key(|c| std::cmp::Reverse(c["priority"].as_i64().unwrap_or(0)));
}

/// Whether two specs give every region the same priority.
#[must_use]
pub fn same_priorities(a: &Value, b: &Value) -> bool {
    let key = |s: &Value| {
        let mut r: Vec<(usize, String, String, i64)> = regions_of(s)
            .into_iter()
            .map(|r| (r.spec, r.provider, r.region, r.priority))
            .collect();
        r.sort();
        r
    };
    key(a) == key(b)
}

/// An outage simulation as Atlas reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    /// START_REQUESTED, STARTING, SIMULATING, RECOVERY_REQUESTED, RECOVERING, COMPLETE.
    pub state: String,
    /// The Atlas regions it cuts.
    pub regions: Vec<String>,
}

impl Outage {
    fn from_json(body: &Value) -> Self {
        Self {
            state: body["state"].as_str().unwrap_or("UNKNOWN").to_owned(),
            regions: body["outageFilters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["regionName"].as_str().map(str::to_owned))
                .collect(),
        }
    }

    /// Whether it has ended (or is ending on its own).
    #[must_use]
    pub fn over(&self) -> bool {
        self.state == COMPLETE
    }
}

const SIMULATION_CONFLICT: &str = "an outage simulation is already running on this cluster: end it (firedrill recover, or Test Resilience in the Atlas UI), wait five minutes, and run again";
const CHANGE_CONFLICT: &str =
    "wait until the cluster is IDLE (its change finishes in the Atlas UI), then run again";

impl Client {
    /// The cluster.
    ///
    /// # Errors
    ///
    /// [`AtlasError`]; a missing cluster is [`AtlasError::NotFound`].
    pub async fn cluster(&self) -> Result<Cluster, AtlasError> {
        let body = self
            .expect(&Call {
                method: Method::GET,
                path: self.cluster_path(""),
                version: CLUSTER_VERSION,
                body: None,
                what: "read the cluster",
                role: Role::ReadOnly,
                on_conflict: CHANGE_CONFLICT,
            })
            .await?;
        Ok(Cluster::from_json(&body))
    }

    /// The cluster's outage simulation, `None` when there is none.
    ///
    /// # Errors
    ///
    /// [`AtlasError`].
    pub async fn outage(&self) -> Result<Option<Outage>, AtlasError> {
        let answer = self
            .send(&Call {
                method: Method::GET,
                path: self.cluster_path("/outageSimulation"),
                version: OUTAGE_VERSION,
                body: None,
                what: "read the outage simulation",
                role: Role::ReadOnly,
                on_conflict: SIMULATION_CONFLICT,
            })
            .await?;
        Ok(match answer {
            Answer::Ok(body) => Some(Outage::from_json(&body)),
            Answer::NotFound(_) => None,
        })
    }

    /// Starts an outage simulation of `regions` (Atlas names).
    ///
    /// # Errors
    ///
    /// [`AtlasError`]; one already running is [`AtlasError::Conflict`].
    pub async fn start_outage(&self, regions: &[String]) -> Result<Outage, AtlasError> {
        let provider = self.settings().provider.clone();
        let filters: Vec<Value> = regions
            .iter()
            .map(|r| json!({"cloudProvider": provider, "regionName": r, "type": "REGION"}))
            .collect();
        let body = json!({ "outageFilters": filters });
        let answer = self
            .expect(&Call {
                method: Method::POST,
                path: self.cluster_path("/outageSimulation"),
                version: OUTAGE_VERSION,
                body: Some(&body),
                what: "start the outage simulation",
                role: Role::Owner,
                on_conflict: SIMULATION_CONFLICT,
            })
            .await?;
        Ok(Outage::from_json(&answer))
    }

    /// Ends the outage simulation; one that is not there (or already ending) is fine, and one
    /// still starting is ended once it simulates (Atlas ends only a SIMULATING one), within
    /// `within` (platform time).
    ///
    /// # Errors
    ///
    /// [`AtlasError`]; [`AtlasError::NotSettled`] when it never came to simulate.
    pub async fn end_outage(&self, within: Duration) -> Result<(), AtlasError> {
        let ready = self
            .wait_outage(
                "outage simulation SIMULATING, to end it",
                within,
                |o| o.is_none_or(|o| !matches!(o.state.as_str(), "START_REQUESTED" | "STARTING")),
                |_, _| {},
            )
            .await?;
        if ready.is_none_or(|o| o.state != SIMULATING) {
            return Ok(());
        }
        self.send(&Call {
            method: Method::DELETE,
            path: self.cluster_path("/outageSimulation"),
            version: OUTAGE_VERSION,
            body: None,
            what: "end the outage simulation",
            role: Role::Owner,
            on_conflict: "the simulation is still starting; firedrill waits and ends it once it simulates",
        })
        .await
        .map(|_| ())
    }

    /// Test failover: Atlas shuts the primary down and an election follows.
    ///
    /// # Errors
    ///
    /// [`AtlasError`].
    pub async fn restart_primaries(&self) -> Result<(), AtlasError> {
        self.expect(&Call {
            method: Method::POST,
            path: self.cluster_path("/restartPrimaries"),
            version: FAILOVER_VERSION,
            body: None,
            what: "test failover (restartPrimaries)",
            role: Role::ClusterManager,
            on_conflict: CHANGE_CONFLICT,
        })
        .await
        .map(|_| ())
    }

    /// PATCHes the cluster's `replicationSpecs` (a priority change).
    ///
    /// # Errors
    ///
    /// [`AtlasError`].
    pub async fn set_replication_specs(&self, specs: &Value) -> Result<(), AtlasError> {
        let body = json!({ "replicationSpecs": specs });
        self.expect(&Call {
            method: Method::PATCH,
            path: self.cluster_path(""),
            version: CLUSTER_VERSION,
            body: Some(&body),
            what: "change the region priorities",
            role: Role::ClusterManager,
            on_conflict: CHANGE_CONFLICT,
        })
        .await
        .map(|_| ())
    }

    /// The project roles of the credentials in use, as Atlas lists them for the project;
    /// `None` when the credentials may not read the project's access (only a Project Owner
    /// or a user admin may).
    ///
    /// # Errors
    ///
    /// [`AtlasError`] other than a 403.
    pub async fn roles(&self) -> Result<Option<Vec<String>>, AtlasError> {
        use super::config::Credentials;
        let (path, me) = match &self.settings().credentials {
            Credentials::ApiKey { public, .. } => (
                self.project_path("/apiKeys?itemsPerPage=500"),
                public.expose().to_owned(),
            ),
            Credentials::ServiceAccount { id, .. } => (
                self.project_path(&format!("/serviceAccounts/{}", id.expose())),
                id.expose().to_owned(),
            ),
        };
        let call = Call {
            method: Method::GET,
            path,
            version: ACCESS_VERSION,
            body: None,
            what: "read the project's access",
            role: Role::Owner,
            on_conflict: "",
        };
        let body = match self.send(&call).await {
            Ok(Answer::Ok(body)) => body,
            Ok(Answer::NotFound(_)) => return Ok(Some(Vec::new())),
            Err(AtlasError::Forbidden { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let project = self.settings().project.clone();
        let roles = if let Some(keys) = body["results"].as_array() {
            keys.iter()
                .filter(|k| k["publicKey"] == me.as_str())
                .flat_map(|k| k["roles"].as_array().cloned().unwrap_or_default())
                .filter(|r| r["groupId"].as_str().is_none_or(|g| g == project))
                .filter_map(|r| r["roleName"].as_str().map(str::to_owned))
                .collect()
        } else {
            body["roles"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        };
        Ok(Some(roles))
    }

    /// Polls the outage simulation until `done` accepts it (`None`: there is none any more),
    /// calling `seen` with each new state and when Atlas reported it.
    ///
    /// # Errors
    ///
    /// [`AtlasError::NotSettled`] at `within` (platform time), or the API's error.
    pub async fn wait_outage(
        &self,
        expected: &str,
        within: Duration,
        done: impl Fn(Option<&Outage>) -> bool,
        mut seen: impl FnMut(&str, PlatformTime),
    ) -> Result<Option<Outage>, AtlasError> {
        let clock = self.clock();
        let deadline = clock.now().plus(within);
        let mut ticks = clock.interval(POLL_EVERY);
        let mut last = String::from("none");
        loop {
            ticks.tick().await;
            let outage = self.outage().await?;
            let state = outage.as_ref().map_or("none (404)", |o| o.state.as_str());
            if state != last {
                seen(state, clock.now());
                last = state.to_owned();
            }
            if done(outage.as_ref()) {
                return Ok(outage);
            }
            if clock.now() >= deadline {
                return Err(self.not_settled(expected, within, &last, "look at the cluster's Test Resilience page in Atlas, end the simulation there if it is stuck, then run `firedrill recover`"));
            }
        }
    }

    /// Polls the cluster until its `stateName` is IDLE.
    ///
    /// # Errors
    ///
    /// [`AtlasError::NotSettled`] at `within` (platform time), or the API's error.
    pub async fn wait_idle(
        &self,
        within: Duration,
        mut seen: impl FnMut(&str, PlatformTime),
    ) -> Result<Cluster, AtlasError> {
        let clock = self.clock();
        let deadline = clock.now().plus(within);
        let mut ticks = clock.interval(POLL_EVERY);
        let mut last = String::new();
        loop {
            ticks.tick().await;
            let cluster = self.cluster().await?;
            if cluster.state != last {
                seen(&cluster.state, clock.now());
                last.clone_from(&cluster.state);
            }
            if cluster.state == IDLE {
                return Ok(cluster);
            }
            if clock.now() >= deadline {
                return Err(self.not_settled(
                    "stateName IDLE",
                    within,
                    &last,
                    "the change may still be applying: watch the cluster in Atlas, then run `firedrill recover`",
                ));
            }
        }
    }

    fn not_settled(&self, expected: &str, within: Duration, last: &str, hint: &str) -> AtlasError {
        AtlasError::NotSettled {
            on: self.settings().on(),
            expected: expected.to_owned(),
            within: format_duration(within),
            last: last.to_owned(),
            hint: hint.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Value {
        json!([{ "zoneName": "Zone 1", "regionConfigs": [
            { "providerName": "GCP", "regionName": "WESTERN_US", "priority": 7, "electableSpecs": {"instanceSize": "M30", "nodeCount": 2} },
            { "providerName": "GCP", "regionName": "US_WEST_2", "priority": 6, "electableSpecs": {"instanceSize": "M30", "nodeCount": 2} },
            { "providerName": "GCP", "regionName": "CENTRAL_US", "priority": 5, "electableSpecs": {"instanceSize": "M30", "nodeCount": 1} },
        ]}])
    }

    #[test]
    fn a_flip_swaps_the_target_with_the_top_region_and_keeps_priorities_descending() {
        let flipped = flip_specs(&specs(), "US_WEST_2").expect("flip");
        let regions = regions_of(&flipped);
        let order: Vec<(&str, i64)> = regions
            .iter()
            .map(|r| (r.region.as_str(), r.priority))
            .collect();
        assert_eq!(
            order,
            [("US_WEST_2", 7), ("WESTERN_US", 6), ("CENTRAL_US", 5)]
        );
        assert_eq!(top_region(&flipped).as_deref(), Some("US_WEST_2"));
        // Everything but the priorities is as it was.
        assert_eq!(
            flipped[0]["regionConfigs"][0]["electableSpecs"]["instanceSize"],
            "M30"
        );
        assert_eq!(flipped[0]["zoneName"], "Zone 1");
        // Flipping to where the primary already is changes nothing.
        assert!(same_priorities(
            &flip_specs(&specs(), "WESTERN_US").expect("same"),
            &specs()
        ));
        assert!(
            flip_specs(&specs(), "EASTERN_US")
                .expect_err("no such region")
                .contains("EASTERN_US")
        );
    }

    #[test]
    fn restoring_sets_back_only_the_priorities() {
        let flipped = flip_specs(&specs(), "US_WEST_2").expect("flip");
        let mut resized = flipped.clone();
        resized[0]["regionConfigs"][0]["electableSpecs"]["instanceSize"] = json!("M40");
        let restored = restore_priorities(&resized, &specs());
        assert!(same_priorities(&restored, &specs()));
        assert_eq!(top_region(&restored).as_deref(), Some("WESTERN_US"));
        // The resize made since the flip stays.
        let us_west_2 = restored[0]["regionConfigs"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["regionName"] == "US_WEST_2"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(us_west_2["electableSpecs"]["instanceSize"], "M40");
    }
}
