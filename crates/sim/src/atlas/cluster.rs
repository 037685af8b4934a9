//! One embedded cluster: its state as Atlas shows it (`stateName`, region priorities, the
//! outage simulation) and the replica-set changes each state change makes, after modelled
//! platform times.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::{ClusterSpec, object_id};
use crate::kube::{rfc3339, wall_now};
use firedrill_core::clock::Clock;

/// An outage simulation.
#[derive(Clone, Debug)]
pub(super) struct Simulation {
    pub id: String,
    /// Atlas region names it cuts.
    pub regions: Vec<String>,
    pub state: &'static str,
    pub requested: SystemTime,
    pub expires: SystemTime,
}

/// A cluster's shown state.
pub(super) struct Cluster {
    pub spec: ClusterSpec,
    pub id: String,
    spec_id: String,
    zone_id: String,
    created: SystemTime,
    /// Each region's priority, in `spec.regions` order, as the cluster's configuration says
    /// (a PATCH changes it at once; the replica set follows at the end of UPDATING).
    pub priorities: Vec<i64>,
    pub state: &'static str,
    pub simulation: Option<Simulation>,
    /// How many simulations were started, for their ids.
    pub simulations: u64,
}

impl Cluster {
    pub fn new(spec: ClusterSpec, seed: u64, salt: u64, clock: &Clock) -> Self {
        let priorities = spec.regions.iter().map(|r| r.priority).collect();
        Self {
            id: object_id(seed, salt),
            spec_id: object_id(seed, salt + 1000),
            zone_id: object_id(seed, salt + 2000),
            created: wall_now(clock),
            spec,
            priorities,
            state: "IDLE",
            simulation: None,
            simulations: 0,
        }
    }

    /// The members (hosts) of each region, in `spec.regions` order.
    pub fn hosts_by_region(&self) -> Vec<Vec<String>> {
        let status = self.spec.set.status();
        self.spec
            .regions
            .iter()
            .map(|r| {
                status
                    .members
                    .iter()
                    .filter(|m| m.region == r.tag)
                    .map(|m| m.host.clone())
                    .collect()
            })
            .collect()
    }

    /// The members of the regions named (Atlas names).
    pub fn hosts_in(&self, regions: &[String]) -> Vec<String> {
        let by_region = self.hosts_by_region();
        self.spec
            .regions
            .iter()
            .zip(by_region)
            .filter(|(r, _)| regions.contains(&r.atlas))
            .flat_map(|(_, hosts)| hosts)
            .collect()
    }

    /// Each member's priority under the cluster's configured region priorities.
    pub fn member_priorities(&self) -> Vec<(String, f64)> {
        self.hosts_by_region()
            .into_iter()
            .zip(&self.priorities)
            .flat_map(|(hosts, p)| hosts.into_iter().map(move |h| (h, *p as f64)))
            .collect()
    }

    /// `replicationSpecs` as the `2024-08-05` resource shows them, highest priority first.
    pub fn replication_specs(&self) -> Value {
        let counts: Vec<usize> = self.hosts_by_region().iter().map(Vec::len).collect();
        let mut configs: Vec<(i64, Value)> = self
            .spec
            .regions
            .iter()
            .zip(&self.priorities)
            .zip(counts)
            .map(|((r, p), n)| {
                (
                    *p,
                    json!({
                        "providerName": self.spec.provider,
                        "regionName": r.atlas,
                        "priority": p,
                        "electableSpecs": { "instanceSize": "M30", "nodeCount": n, "diskSizeGB": 40.0 },
                        "readOnlySpecs": { "instanceSize": "M30", "nodeCount": 0, "diskSizeGB": 40.0 },
                        "analyticsSpecs": { "instanceSize": "M30", "nodeCount": 0, "diskSizeGB": 40.0 },
                        "autoScaling": {
                            "compute": { "enabled": false, "scaleDownEnabled": false },
                            "diskGB": { "enabled": true }
                        }
                    }),
                )
            })
            .collect();
        configs.sort_by_key(|(p, _)| std::cmp::Reverse(*p));
        json!([{
            "id": self.spec_id,
            "zoneId": self.zone_id,
            "zoneName": "Zone 1",
            "regionConfigs": configs.into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
        }])
    }

    /// The cluster resource.
    pub fn to_json(&self, project: &str) -> Value {
        let major = "8.0";
        json!({
            "id": self.id,
            "groupId": project,
            "name": self.spec.name,
            "clusterType": "REPLICASET",
            "mongoDBMajorVersion": major,
            "mongoDBVersion": "8.0.4",
            "versionReleaseSystem": "LTS",
            "stateName": self.state,
            "paused": false,
            "pitEnabled": false,
            "backupEnabled": false,
            "terminationProtectionEnabled": true,
            "createDate": rfc3339(self.created),
            "connectionStrings": { "standard": self.spec.set.connection_string() },
            "replicationSpecs": self.replication_specs(),
        })
    }

    /// The outage simulation resource.
    pub fn simulation_json(&self, project: &str) -> Option<Value> {
        let s = self.simulation.as_ref()?;
        Some(json!({
            "id": s.id,
            "groupId": project,
            "clusterName": self.spec.name,
            "outageFilters": s.regions.iter().map(|r| json!({
                "cloudProvider": self.spec.provider, "regionName": r, "type": "REGION"
            })).collect::<Vec<_>>(),
            "startRequestDate": rfc3339(s.requested),
            "expirationDate": rfc3339(s.expires),
            "state": s.state,
        }))
    }
}
