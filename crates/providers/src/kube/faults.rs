//! The faults themselves: a zone's nodes tainted, cordoned and drained, or its pods deleted;
//! deployments scaled; pods killed by selector; and the waits that check an undo took.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ::kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use ::kube::runtime::watcher;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::json;

use super::{Conn, KubeError, ReadyPods, Replicas, ZONE_LABEL, ZONE_OUTAGE_TAINT};
use firedrill_core::clock::format_duration;
use firedrill_platform::Platform;

/// Writes a fault keeps in flight at once: a 2,000-pod zone is evicted in parallel, as
/// `kubectl drain` does, without flooding the API server.
const IN_FLIGHT: usize = 32;

/// How many pods a pod kill takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kill {
    /// This many (all of them if fewer match).
    Count(usize),
    /// This percentage of the matching pods, rounded up (at least one when above 0).
    Percent(u32),
}

impl Kill {
    /// How many of `matching` pods to kill.
    #[must_use]
    pub fn of(self, matching: usize) -> usize {
        match self {
            Kill::Count(n) => n.min(matching),
            Kill::Percent(p) => {
                let p = usize::try_from(p.min(100)).unwrap_or(100);
                (matching * p).div_ceil(100)
            }
        }
    }
}

/// What a drain did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Pods evicted through the Eviction API (`namespace/name`).
    pub evicted: Vec<String>,
    /// Pods a PodDisruptionBudget protected, then deleted because the drain was forced.
    pub forced: Vec<String>,
}

/// Runs `writes` [`IN_FLIGHT`] at a time; the first error ends it. Taken as a `Vec`, built
/// before the stream: a stream over the closure trips the compiler's `Send` inference
/// (rust#64552) when an undo is applied from a `Send` future.
async fn all_at_once<F>(writes: Vec<F>) -> Result<(), KubeError>
where
    F: std::future::Future<Output = Result<(), KubeError>>,
{
    futures::stream::iter(writes)
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn on_node(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}

/// The platform's services in its namespaces, with their failover replica counts.
#[must_use]
pub fn services(platform: &Platform) -> Vec<Replicas> {
    platform
        .namespaces
        .iter()
        .flat_map(|(ns, n)| {
            n.services.iter().map(move |(name, s)| Replicas {
                namespace: ns.clone(),
                name: name.clone(),
                replicas: i32::try_from(s.failover_replicas).unwrap_or(i32::MAX),
            })
        })
        .collect()
}

impl Conn {
    /// The names of the nodes of `zone`.
    ///
    /// # Errors
    ///
    /// [`KubeError`] for the list; [`KubeError::EmptyZone`] when there are none.
    pub async fn zone_nodes(&self, zone: &str) -> Result<Vec<String>, KubeError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let params = ListParams::default().labels(&format!("{ZONE_LABEL}={zone}"));
        let list = self
            .call_api(self.call("", "nodes", "", "list"), || nodes.list(&params))
            .await?;
        let names: Vec<String> = list
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        if names.is_empty() {
            return Err(KubeError::EmptyZone {
                context: self.context.clone(),
                zone: zone.to_owned(),
            });
        }
        Ok(names)
    }

    /// The nodes among `nodes` that are not cordoned now (those a drain would cordon).
    ///
    /// # Errors
    ///
    /// [`KubeError`] for the list.
    pub async fn uncordoned(&self, nodes: &[String]) -> Result<Vec<String>, KubeError> {
        let api: Api<Node> = Api::all(self.client.clone());
        let params = ListParams::default();
        let all = self
            .call_api(self.call("", "nodes", "", "list"), || api.list(&params))
            .await?;
        let cordoned: BTreeSet<String> = all
            .items
            .into_iter()
            .filter(|n| {
                n.spec
                    .as_ref()
                    .and_then(|s| s.unschedulable)
                    .unwrap_or(false)
            })
            .filter_map(|n| n.metadata.name)
            .collect();
        Ok(nodes
            .iter()
            .filter(|n| !cordoned.contains(*n))
            .cloned()
            .collect())
    }

    /// Adds (`on`) or removes the [`ZONE_OUTAGE_TAINT`] NoExecute taint on each node, leaving
    /// every other taint as it is. Each write carries the resourceVersion read, so a concurrent
    /// change is a conflict rather than a lost update.
    ///
    /// # Errors
    ///
    /// [`KubeError`] naming the node.
    pub async fn set_taint(&self, nodes: &[String], on: bool) -> Result<(), KubeError> {
        all_at_once(nodes.iter().map(|name| self.taint_one(name, on)).collect()).await
    }

    async fn taint_one(&self, name: &str, on: bool) -> Result<(), KubeError> {
        let api: Api<Node> = Api::all(self.client.clone());
        // A node that is gone has no taint left to remove.
        let Some(node) = self
            .call_unless_gone(self.call("", "nodes", name, "get"), !on, || api.get(name))
            .await?
        else {
            return Ok(());
        };
        let mut taints: Vec<Taint> = node.spec.and_then(|s| s.taints).unwrap_or_default();
        let has = taints.iter().any(|t| t.key == ZONE_OUTAGE_TAINT);
        if has == on {
            return Ok(());
        }
        if on {
            taints.push(Taint {
                key: ZONE_OUTAGE_TAINT.to_owned(),
                value: Some("true".to_owned()),
                effect: "NoExecute".to_owned(),
                time_added: None,
            });
        } else {
            taints.retain(|t| t.key != ZONE_OUTAGE_TAINT);
        }
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": taints},
        });
        let params = PatchParams::default();
        let patch = Patch::Merge(&patch);
        self.call_api(self.call("", "nodes", name, "patch"), || {
            api.patch(name, &params, &patch)
        })
        .await
        .map(|_| ())
    }

    /// Cordons (`on`) or uncordons each node.
    ///
    /// # Errors
    ///
    /// [`KubeError`] naming the node.
    pub async fn set_cordon(&self, nodes: &[String], on: bool) -> Result<(), KubeError> {
        let api: Api<Node> = Api::all(self.client.clone());
        let body = json!({"spec": {"unschedulable": on}});
        let patch = Patch::Merge(&body);
        let params = PatchParams::default();
        let writes = nodes
            .iter()
            .map(|name| {
                let (api, patch, params) = (&api, &patch, &params);
                async move {
                    self.call_unless_gone(self.call("", "nodes", name, "patch"), !on, || {
                        api.patch(name, params, patch)
                    })
                    .await
                    .map(|_| ())
                }
            })
            .collect();
        all_at_once(writes).await
    }

    /// The pods of `namespaces` running on `nodes`, as `(namespace, name)`: one list per
    /// namespace, so the drill needs no cluster-wide pod access and never touches a namespace
    /// the platform does not allow.
    ///
    /// # Errors
    ///
    /// [`KubeError`] for a list.
    pub async fn pods_on(
        &self,
        namespaces: &[String],
        nodes: &[String],
    ) -> Result<Vec<(String, String)>, KubeError> {
        let nodes: BTreeSet<&str> = nodes.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        for ns in namespaces {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            let params = ListParams::default();
            let pods = self
                .call_api(self.call(ns, "pods", "", "list"), || api.list(&params))
                .await?;
            out.extend(pods.items.into_iter().filter_map(|p| {
                let on = on_node(&p).is_some_and(|n| nodes.contains(n));
                match (on, p.metadata.name) {
                    (true, Some(name)) => Some((ns.clone(), name)),
                    _ => None,
                }
            }));
        }
        Ok(out)
    }

    /// Evicts `pods` through the Eviction API (so PodDisruptionBudgets apply), many at once.
    /// With `force`, a pod a budget protects is deleted instead, and reported as forced.
    ///
    /// # Errors
    ///
    /// [`KubeError::EvictionBlocked`] listing the pods a budget protected (the others are
    /// evicted) when not forced, or [`KubeError`] for a refused call.
    pub async fn evict(
        &self,
        pods: &[(String, String)],
        force: bool,
    ) -> Result<Drained, KubeError> {
        enum Outcome {
            Evicted(String),
            Gone,
            Blocked(String),
        }
        let outcomes: Vec<Outcome> =
            futures::stream::iter(pods.iter().map(|(ns, name)| async move {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
                let params = EvictParams::default();
                match self
                    .try_call(self.call(ns, "pods/eviction", name, "create"), || {
                        api.evict(name, &params)
                    })
                    .await?
                {
                    Ok(_) => Ok(Outcome::Evicted(format!("{ns}/{name}"))),
                    Err(::kube::Error::Api(s)) if s.code == 404 => Ok(Outcome::Gone),
                    Err(::kube::Error::Api(s)) if s.code == 429 => {
                        Ok(Outcome::Blocked(format!("{ns}/{name}")))
                    }
                    Err(e) => Err(self.call(ns, "pods/eviction", name, "create").error(&e)),
                }
            }))
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        let mut drained = Drained::default();
        let mut blocked = Vec::new();
        for o in outcomes {
            match o {
                Outcome::Evicted(p) => drained.evicted.push(p),
                Outcome::Blocked(p) => blocked.push(p),
                Outcome::Gone => {}
            }
        }
        drained.evicted.sort();
        blocked.sort();
        if blocked.is_empty() {
            return Ok(drained);
        }
        if !force {
            return Err(KubeError::EvictionBlocked {
                context: self.context.clone(),
                pods: blocked.join(", "),
            });
        }
        let victims: Vec<(String, String)> = blocked
            .iter()
            .filter_map(|p| p.split_once('/'))
            .map(|(ns, name)| (ns.to_owned(), name.to_owned()))
            .collect();
        self.delete_pods(&victims, true).await?;
        drained.forced = blocked;
        Ok(drained)
    }

    /// Deletes `pods` (`(namespace, name)`), many at once; `now` skips the grace period (a
    /// forced delete). A pod already gone is fine.
    ///
    /// # Errors
    ///
    /// [`KubeError`] naming the pod.
    pub async fn delete_pods(&self, pods: &[(String, String)], now: bool) -> Result<(), KubeError> {
        let params = if now {
            DeleteParams::default().grace_period(0)
        } else {
            DeleteParams::default()
        };
        let deletes = pods
            .iter()
            .map(|(ns, name)| {
                let params = &params;
                async move {
                    let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
                    self.call_unless_gone(self.call(ns, "pods", name, "delete"), true, || {
                        api.delete(name, params)
                    })
                    .await
                    .map(|_| ())
                }
            })
            .collect();
        all_at_once(deletes).await
    }

    /// Ready pods of `namespace` matching `selector` ("" for all), by name.
    ///
    /// # Errors
    ///
    /// [`KubeError`] for the list.
    pub async fn ready_pods(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<String>, KubeError> {
        self.pods_where(namespace, selector, is_ready).await
    }

    /// Pods of `namespace` matching `selector` that are not being deleted, by name.
    ///
    /// # Errors
    ///
    /// [`KubeError`] for the list.
    pub async fn live_pods(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<String>, KubeError> {
        self.pods_where(namespace, selector, |p| {
            p.metadata.deletion_timestamp.is_none()
        })
        .await
    }

    async fn pods_where(
        &self,
        namespace: &str,
        selector: &str,
        keep: impl Fn(&Pod) -> bool,
    ) -> Result<Vec<String>, KubeError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = ListParams::default().labels(selector);
        let pods = self
            .call_api(self.call(namespace, "pods", "", "list"), || {
                api.list(&params)
            })
            .await?;
        let mut names: Vec<String> = pods
            .items
            .into_iter()
            .filter(|p| keep(p))
            .filter_map(|p| p.metadata.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Picks the pods a pod kill takes among the pods matching `selector` that are not being
    /// deleted (a pod still starting is as killable as a Ready one): `kill` of them, chosen by
    /// a generator seeded with `seed` (the same seed, the same victims).
    ///
    /// # Errors
    ///
    /// [`KubeError::NoPods`] when none matches, [`KubeError`] for the list.
    pub async fn pick_victims(
        &self,
        namespace: &str,
        selector: &str,
        kill: Kill,
        seed: u64,
    ) -> Result<Vec<String>, KubeError> {
        let mut ready = self.live_pods(namespace, selector).await?;
        if ready.is_empty() {
            return Err(KubeError::NoPods {
                context: self.context.clone(),
                namespace: namespace.to_owned(),
                selector: selector.to_owned(),
            });
        }
        let n = kill.of(ready.len());
        ready.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        ready.truncate(n);
        ready.sort();
        Ok(ready)
    }

    /// Waits (on a watch) until each selector has at least as many Ready pods as before the
    /// fault, within `within` (platform time) for all of them.
    ///
    /// # Errors
    ///
    /// [`KubeError::NotReplaced`] naming the first selector still short.
    pub async fn await_replaced(
        &self,
        pods: &[ReadyPods],
        within: Duration,
    ) -> Result<(), KubeError> {
        let deadline = self.clock.now().plus(within);
        for want in pods {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &want.namespace);
            let mut config = watcher::Config::default();
            if !want.selector.is_empty() {
                config = config.labels(&want.selector);
            }
            let mut ready: BTreeMap<String, bool> = BTreeMap::new();
            let count = |r: &BTreeMap<String, bool>| r.values().filter(|v| **v).count();
            let mut errors = 0u32;
            let mut pause = self.backoff.first;
            let watch = async {
                let mut stream = watcher(api, config).boxed();
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                            errors = 0;
                            if let Some(name) = p.metadata.name.clone() {
                                ready.insert(name, is_ready(&p));
                            }
                        }
                        Ok(watcher::Event::Delete(p)) => {
                            if let Some(name) = &p.metadata.name {
                                ready.remove(name);
                            }
                        }
                        Ok(watcher::Event::Init) => ready.clear(),
                        Ok(watcher::Event::InitDone) => {}
                        Err(e) => {
                            errors += 1;
                            if errors >= self.backoff.attempts.max(1) {
                                return Err(KubeError::Unreachable {
                                    call: Box::new(
                                        self.call(&want.namespace, "pods", "", "watch").owned(),
                                    ),
                                    attempts: errors,
                                    waited: "its backoff".to_owned(),
                                    message: e.to_string(),
                                });
                            }
                            self.clock.sleep(pause).await;
                            pause = (pause * 2).min(self.backoff.max);
                            continue;
                        }
                    }
                    if count(&ready) >= want.ready {
                        return Ok(());
                    }
                }
                Ok(())
            };
            match self.clock.timeout_at(deadline, watch).await {
                Ok(result) => result?,
                Err(_) => {
                    return Err(KubeError::NotReplaced {
                        context: self.context.clone(),
                        namespace: want.namespace.clone(),
                        selector: want.selector.clone(),
                        ready: count(&ready),
                        wanted: want.ready,
                        within: format_duration(within),
                    });
                }
            }
        }
        Ok(())
    }

    /// The current replica counts of `services` (the `replicas` field is ignored).
    ///
    /// # Errors
    ///
    /// [`KubeError`] naming the deployment.
    pub async fn current_replicas(
        &self,
        services: &[Replicas],
    ) -> Result<Vec<Replicas>, KubeError> {
        let mut out = Vec::new();
        for s in services {
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), &s.namespace);
            let scale = self
                .call_api(
                    self.call(&s.namespace, "deployments/scale", &s.name, "get"),
                    || api.get_scale(&s.name),
                )
                .await?;
            out.push(Replicas {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                replicas: scale.spec.and_then(|s| s.replicas).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Scales each deployment to its count.
    ///
    /// # Errors
    ///
    /// [`KubeError`] naming the deployment.
    pub async fn scale(&self, replicas: &[Replicas]) -> Result<(), KubeError> {
        let params = PatchParams::default();
        for r in replicas {
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), &r.namespace);
            let body = json!({"spec": {"replicas": r.replicas}});
            let patch = Patch::Merge(&body);
            self.call_api(
                self.call(&r.namespace, "deployments/scale", &r.name, "patch"),
                || api.patch_scale(&r.name, &params, &patch),
            )
            .await?;
        }
        Ok(())
    }
}

impl Conn {
    /// Waits (on a watch per deployment) until each deployment of `replicas` is rolled out at
    /// its count, as `kubectl rollout status` judges it: the controller has observed the change,
    /// it runs exactly that many pods and that many are Ready. All within `within` (platform
    /// time). This is how a scale-back is seen to have taken: the patch returning is not enough.
    ///
    /// # Errors
    ///
    /// [`KubeError::NotRolledOut`] at the deadline, with the last state seen;
    /// [`KubeError::Unreachable`] when the watch kept failing.
    pub async fn await_rolled_out(
        &self,
        replicas: &[Replicas],
        within: Duration,
    ) -> Result<(), KubeError> {
        let deadline = self.clock.now().plus(within);
        for (i, want) in replicas.iter().enumerate() {
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), &want.namespace);
            let config = watcher::Config::default().fields(&format!("metadata.name={}", want.name));
            let mut state = "not seen yet".to_owned();
            let mut errors = 0u32;
            let mut pause = self.backoff.first;
            let watch = async {
                let mut stream = watcher(api, config).boxed();
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d)) => {
                            errors = 0;
                            pause = self.backoff.first;
                            state = rollout_state(&d, want.replicas);
                            if rolled_out(&d, want.replicas) {
                                return Ok(());
                            }
                        }
                        Ok(watcher::Event::Delete(_)) => "deleted".clone_into(&mut state),
                        Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
                        Err(e) => {
                            errors += 1;
                            if errors >= self.backoff.attempts.max(1) {
                                return Err(KubeError::Unreachable {
                                    call: Box::new(
                                        self.call(
                                            &want.namespace,
                                            "deployments",
                                            &want.name,
                                            "watch",
                                        )
                                        .owned(),
                                    ),
                                    attempts: errors,
                                    waited: "its backoff".to_owned(),
                                    message: e.to_string(),
                                });
                            }
                            self.clock.sleep(pause).await;
                            pause = (pause * 2).min(self.backoff.max);
                        }
                    }
                }
                Ok(())
            };
            if let Ok(result) = self.clock.timeout_at(deadline, watch).await {
                result?;
                continue;
            }
            let mut waiting = format!("{}/{} {state}", want.namespace, want.name);
            let unchecked = replicas.len() - i - 1;
            if unchecked > 0 {
                waiting.push_str(&format!(
                    " (and {unchecked} more deployment(s) not checked)"
                ));
            }
            return Err(KubeError::NotRolledOut {
                context: self.context.clone(),
                within: format_duration(within),
                waiting,
            });
        }
        Ok(())
    }
}

/// Whether `deployment` runs exactly `wanted` pods, all Ready, as its controller last saw it.
fn rolled_out(deployment: &Deployment, wanted: i32) -> bool {
    let spec = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let observed =
        status.observed_generation.unwrap_or(0) >= deployment.metadata.generation.unwrap_or(0);
    spec == wanted
        && observed
        && status.replicas.unwrap_or(0) == wanted
        && status.ready_replicas.unwrap_or(0) >= wanted
}

/// `1/3 Ready, 2 pods`: what a deployment's status says, for a message.
fn rollout_state(deployment: &Deployment, wanted: i32) -> String {
    let spec = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let pods = status.replicas.unwrap_or(0);
    let mut state = format!("{}/{wanted} Ready", status.ready_replicas.unwrap_or(0));
    if pods != wanted {
        state.push_str(&format!(", {pods} pods"));
    }
    if spec != wanted {
        state.push_str(&format!(
            ", but spec.replicas is now {spec} (scaled by someone else?)"
        ));
    }
    if status.observed_generation.unwrap_or(0) < deployment.metadata.generation.unwrap_or(0) {
        state.push_str(", the change not yet observed by its controller");
    }
    state
}

#[cfg(test)]
mod tests {
    use super::Kill;

    #[test]
    fn kill_counts_round_percentages_up_and_cap_at_what_matches() {
        assert_eq!(Kill::Count(2).of(5), 2);
        assert_eq!(Kill::Count(9).of(5), 5);
        assert_eq!(Kill::Percent(50).of(5), 3);
        assert_eq!(Kill::Percent(1).of(5), 1);
        assert_eq!(Kill::Percent(0).of(5), 0);
        assert_eq!(Kill::Percent(100).of(5), 5);
        assert_eq!(Kill::Percent(250).of(4), 4);
    }
}
