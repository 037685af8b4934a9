//! The in-process controllers: the deployment controller (replicas → pods, replica sets and
//! deployment status), the scheduler (Ready, uncordoned nodes whose taints the pod tolerates and
//! whose labels match its node selector / required affinity, spread over zones), the node
//! lifecycle controller (NotReady nodes get NoExecute taints; pods that do not tolerate a
//! NoExecute taint are evicted, after their tolerationSeconds) and a kubelet model that turns a
//! scheduled pod Running, then Ready, after seeded platform-time delays.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::resources::{DEPLOYMENTS, EVENTS, NODES, PODS, REPLICASETS};
use super::store::{Store, labels_of, name_of, namespace_of, parse_rfc3339, suffix};
use super::{POOL_LABEL, REGION_LABEL, ZONE_LABEL};
use firedrill_core::clock::{Clock, PlatformTime};

/// The seeded timing model of the kubelet (all platform time).
#[derive(Debug, Clone, PartialEq)]
pub struct TimingModel {
    /// Image pull time, drawn uniformly from this range.
    pub image_pull: (Duration, Duration),
    /// Container start time after the pull, drawn uniformly from this range.
    pub container_start: (Duration, Duration),
    /// From Running to Ready (readiness probe passing), drawn uniformly from this range.
    pub readiness: (Duration, Duration),
    /// From the autoscaler asking for a node to the node being Ready, drawn uniformly.
    pub node_provisioning: (Duration, Duration),
}

impl Default for TimingModel {
    /// Image pull 15–60 s plus start 5–30 s (Running 20–90 s after scheduling), Ready 1–5 s
    /// later; a new node takes 60–180 s.
    fn default() -> Self {
        Self {
            image_pull: (Duration::from_secs(15), Duration::from_secs(60)),
            container_start: (Duration::from_secs(5), Duration::from_secs(30)),
            readiness: (Duration::from_secs(1), Duration::from_secs(5)),
            node_provisioning: (Duration::from_secs(60), Duration::from_secs(180)),
        }
    }
}

fn draw(rng: &mut ChaCha8Rng, (lo, hi): (Duration, Duration)) -> Duration {
    if hi <= lo {
        return lo;
    }
    let span = (hi - lo).as_millis() as u64;
    lo + Duration::from_millis(rng.random_range(0..=span))
}

/// Ground truth about one pod, in platform time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRecord {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Pod uid.
    pub uid: String,
    /// Owning deployment, if any.
    pub deployment: Option<String>,
    /// Node it was bound to.
    pub node: Option<String>,
    /// Zone of that node.
    pub zone: Option<String>,
    /// When the pod was created.
    pub created: PlatformTime,
    /// When it was bound to a node.
    pub scheduled: Option<PlatformTime>,
    /// When it turned Running.
    pub running: Option<PlatformTime>,
    /// When it turned Ready.
    pub ready: Option<PlatformTime>,
    /// When it was deleted or evicted.
    pub deleted: Option<PlatformTime>,
    /// The modelled delay from scheduling to Running (pull + start).
    pub start_delay: Option<Duration>,
    /// The modelled delay from Running to Ready.
    pub ready_delay: Option<Duration>,
}

/// Ground truth about one node the autoscaler provisioned, in platform time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Node name.
    pub name: String,
    /// Zone.
    pub zone: String,
    /// Node pool.
    pub pool: String,
    /// When the autoscaler asked for it (pods of the pool were unschedulable).
    pub requested: PlatformTime,
    /// When it joined Ready.
    pub ready: Option<PlatformTime>,
    /// The modelled provisioning delay.
    pub delay: Duration,
}

/// The cluster autoscaler's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Autoscaling {
    /// Region the cluster is in (node labels).
    pub region: String,
    /// Zones nodes may be added to.
    pub zones: Vec<String>,
    /// Pools that scale, with their maximum node count per zone.
    pub max_per_zone: BTreeMap<String, usize>,
    /// Pods a node can run (allocatable pods).
    pub pods_per_node: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Running,
    Ready,
}

/// Controller state: timers and ground truth. Lives next to the store under one lock.
#[derive(Debug)]
pub struct Controller {
    /// Template hashes by (deployment uid, generation): hashing serialises the template.
    hashes: HashMap<(String, i64), String>,
    seed: u64,
    timing: TimingModel,
    clock: Clock,
    records: BTreeMap<String, PodRecord>,
    live: HashMap<(String, String), String>,
    timers: BTreeMap<(PlatformTime, String), Stage>,
    name_counters: HashMap<(String, String), u64>,
    ip_counter: u32,
    autoscaling: Autoscaling,
    /// While set, pods start and turn Ready with no modelled delay (a cluster that was up
    /// before the drill began; see `ClusterSpec::warm`).
    pub warm: bool,
    nodes: Vec<NodeRecord>,
    event_counter: u64,
    events: std::collections::VecDeque<(String, String)>,
    node_ip: u32,
}

/// How many events the controllers keep (the real server expires them after an hour).
pub const EVENT_CAP: usize = 5_000;

/// FNV-1a, for stable hashes of templates and names.
#[must_use]
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The pod-template-hash of a deployment's template (10 characters, like the real one).
#[must_use]
pub fn template_hash(template: &Value) -> String {
    let h = fnv(template.to_string().as_bytes());
    let mut s = suffix(h);
    s.push_str(&suffix(h.rotate_left(29)));
    s
}

/// Whether a pod's Ready condition is True.
#[must_use]
pub fn pod_ready(pod: &Value) -> bool {
    condition_true(pod, "Ready")
}

fn condition_true(obj: &Value, ty: &str) -> bool {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == ty && c["status"] == "True")
}

fn tolerates(tolerations: &[Value], taint: &Value) -> Option<Option<i64>> {
    tolerations.iter().find_map(|t| {
        let key = t["key"].as_str().unwrap_or_default();
        let op = t["operator"].as_str().unwrap_or("Equal");
        let effect = t["effect"].as_str().unwrap_or_default();
        let key_ok =
            (key.is_empty() && op == "Exists") || key == taint["key"].as_str().unwrap_or_default();
        let value_ok = op == "Exists"
            || t["value"].as_str().unwrap_or_default()
                == taint["value"].as_str().unwrap_or_default();
        let effect_ok = effect.is_empty() || effect == taint["effect"].as_str().unwrap_or_default();
        (key_ok && value_ok && effect_ok).then(|| t["tolerationSeconds"].as_i64())
    })
}

fn expression_matches(expr: &Value, labels: Option<&serde_json::Map<String, Value>>) -> bool {
    let key = expr["key"].as_str().unwrap_or_default();
    let got = labels.and_then(|l| l.get(key)).and_then(Value::as_str);
    let values: Vec<&str> = expr["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let num = |s: &str| s.parse::<i64>().ok();
    match expr["operator"].as_str().unwrap_or_default() {
        "In" => got.is_some_and(|g| values.contains(&g)),
        "NotIn" => got.is_none_or(|g| !values.contains(&g)),
        "Exists" => got.is_some(),
        "DoesNotExist" => got.is_none(),
        "Gt" => got
            .and_then(num)
            .zip(values.first().and_then(|v| num(v)))
            .is_some_and(|(g, v)| g > v),
        "Lt" => got
            .and_then(num)
            .zip(values.first().and_then(|v| num(v)))
            .is_some_and(|(g, v)| g < v),
        _ => false,
    }
}

struct NodeView {
    name: String,
    zone: String,
    ready: bool,
    schedulable: bool,
    labels: serde_json::Map<String, Value>,
    taints: Vec<Value>,
    ip: String,
    capacity: usize,
}

impl NodeView {
    fn of(node: &Value) -> Self {
        Self {
            name: name_of(node).to_owned(),
            zone: node["metadata"]["labels"]["topology.kubernetes.io/zone"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            ready: condition_true(node, "Ready"),
            schedulable: node["spec"]["unschedulable"].as_bool() != Some(true),
            labels: labels_of(node).cloned().unwrap_or_default(),
            taints: node["spec"]["taints"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            ip: node["status"]["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["type"] == "InternalIP")
                .and_then(|a| a["address"].as_str())
                .unwrap_or_default()
                .to_owned(),
            capacity: node["status"]["allocatable"]["pods"]
                .as_str()
                .and_then(|p| p.parse().ok())
                .unwrap_or(110),
        }
    }

    /// Whether a pod (its spec) may be placed here (capacity aside).
    fn fits(&self, spec: &Value) -> bool {
        if !self.ready || !self.schedulable {
            return false;
        }
        let tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
        let tainted = self.taints.iter().any(|t| {
            matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute"))
                && tolerates(&tolerations, t).is_none()
        });
        if tainted {
            return false;
        }
        let selector_ok = spec["nodeSelector"]
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| self.labels.get(k) == Some(v));
        if !selector_ok {
            return false;
        }
        let terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"].as_array();
        match terms {
            Some(terms) if !terms.is_empty() => terms.iter().any(|term| {
                term["matchExpressions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|e| expression_matches(e, Some(&self.labels)))
            }),
            _ => true,
        }
    }
}

impl Controller {
    /// A controller with its seed, timing model and clock; `region_index` spreads pod IPs.
    #[must_use]
    pub fn new(
        seed: u64,
        timing: TimingModel,
        clock: Clock,
        region_index: u32,
        autoscaling: Autoscaling,
    ) -> Self {
        Self {
            seed,
            timing,
            clock,
            hashes: HashMap::new(),
            records: BTreeMap::new(),
            live: HashMap::new(),
            timers: BTreeMap::new(),
            name_counters: HashMap::new(),
            ip_counter: region_index << 16,
            autoscaling,
            warm: false,
            nodes: Vec::new(),
            event_counter: 0,
            events: std::collections::VecDeque::new(),
            node_ip: (region_index << 16) | 0x8000,
        }
    }

    /// Ground truth about every node the autoscaler provisioned, in request order.
    pub fn node_records(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.iter()
    }

    /// Ground truth about every pod ever created, ordered by uid (creation order).
    pub fn records(&self) -> impl Iterator<Item = &PodRecord> {
        self.records.values()
    }

    fn platform_of_wall(&self, wall_secs: u64) -> PlatformTime {
        let origin = self
            .clock
            .wall_origin()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        PlatformTime::from_offset(Duration::from_secs(wall_secs).saturating_sub(origin))
    }

    /// One pass of every controller; returns when the next timed transition is due.
    pub fn reconcile(&mut self, store: &mut Store) -> Option<PlatformTime> {
        let now = self.clock.now();
        let mut next: Option<PlatformTime> = None;
        let wake_at = |t: PlatformTime, next: &mut Option<PlatformTime>| {
            *next = Some(next.map_or(t, |n: PlatformTime| n.min(t)));
        };
        self.forget_deleted(store, now);
        self.fire_timers(store, now);
        self.node_lifecycle(store);
        if let Some(t) = self.evict_from_tainted_nodes(store, now) {
            wake_at(t, &mut next);
        }
        self.collect_garbage(store, now);
        self.sync_deployments(store, now);
        self.finish_provisioning(store, now);
        let unschedulable = self.schedule(store, now);
        self.request_nodes(store, now, &unschedulable);
        if let Some(t) = self
            .nodes
            .iter()
            .filter(|n| n.ready.is_none())
            .map(|n| n.requested.plus(n.delay))
            .min()
        {
            wake_at(t, &mut next);
        }
        if let Some(t) = self.update_deployment_status(store, now) {
            wake_at(t, &mut next);
        }
        if let Some(((t, _), _)) = self.timers.first_key_value() {
            wake_at(*t, &mut next);
        }
        next
    }

    /// Marks records of pods that disappeared (deleted through the API) as deleted.
    fn forget_deleted(&mut self, store: &Store, now: PlatformTime) {
        let gone: Vec<(String, String)> = self
            .live
            .iter()
            .filter(|((ns, name), uid)| {
                store
                    .get(PODS, ns, name)
                    .is_none_or(|p| p["metadata"]["uid"].as_str() != Some(uid.as_str()))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(uid) = self.live.remove(&key)
                && let Some(r) = self.records.get_mut(&uid)
            {
                r.deleted = Some(now);
            }
        }
    }

    fn fire_timers(&mut self, store: &mut Store, now: PlatformTime) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, uid), stage) = entry.remove_entry();
            let Some(record) = self.records.get(&uid) else {
                continue;
            };
            if record.deleted.is_some() {
                continue;
            }
            let (ns, name) = (record.namespace.clone(), record.name.clone());
            let stamp = store.now_rfc3339();
            let result = store.modify(PODS, &ns, &name, |pod| {
                set_pod_state(pod, stage, &stamp);
                Ok(())
            });
            if result.is_err() {
                continue;
            }
            let Some(record) = self.records.get_mut(&uid) else {
                continue;
            };
            match stage {
                Stage::Running => {
                    record.running = Some(now);
                    let mut rng =
                        ChaCha8Rng::seed_from_u64(self.seed ^ fnv(name.as_bytes()) ^ 0x5eed);
                    let delay = if self.warm {
                        Duration::ZERO
                    } else {
                        draw(&mut rng, self.timing.readiness)
                    };
                    record.ready_delay = Some(delay);
                    self.timers.insert((now.plus(delay), uid), Stage::Ready);
                }
                Stage::Ready => record.ready = Some(now),
            }
        }
    }

    /// The node lifecycle controller: NotReady nodes get the NoExecute (and NoSchedule) taints
    /// `node.kubernetes.io/unreachable` or `not-ready`; Ready nodes lose them.
    fn node_lifecycle(&mut self, store: &mut Store) {
        let stamp = store.now_rfc3339();
        let nodes: Vec<(String, Option<&'static str>, bool)> = store
            .list(NODES, None)
            .map(|n| {
                let status = n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == "Ready")
                    .and_then(|c| c["status"].as_str())
                    .unwrap_or("Unknown");
                let key = match status {
                    "True" => None,
                    "False" => Some("node.kubernetes.io/not-ready"),
                    _ => Some("node.kubernetes.io/unreachable"),
                };
                let lifecycle_taints: Vec<(&str, &str)> = n["spec"]["taints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| Some((t["key"].as_str()?, t["effect"].as_str()?)))
                    .filter(|(k, _)| {
                        *k == "node.kubernetes.io/not-ready"
                            || *k == "node.kubernetes.io/unreachable"
                    })
                    .collect();
                let settled = match key {
                    None => lifecycle_taints.is_empty(),
                    Some(k) => {
                        lifecycle_taints.iter().all(|(tk, _)| *tk == k)
                            && ["NoSchedule", "NoExecute"]
                                .iter()
                                .all(|e| lifecycle_taints.contains(&(k, *e)))
                    }
                };
                (name_of(n).to_owned(), key, settled)
            })
            .collect();
        // Most passes change no node: decide read-only, copy only the nodes that change.
        for (name, want, _) in nodes.into_iter().filter(|(_, _, settled)| !settled) {
            if let Some(node) = store.get(NODES, "", &name).cloned() {
                let (reason, message) = match want {
                    Some(_) => (
                        "NodeNotReady",
                        format!("Node {name} status is now: NodeNotReady"),
                    ),
                    None => ("NodeReady", format!("Node {name} status is now: NodeReady")),
                };
                self.emit(store, &node, "Normal", reason, message, "node-controller");
            }
            let _ = store.modify(NODES, "", &name, |node| {
                let mut taints = node["spec"]["taints"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let before = taints.len();
                taints.retain(|t| {
                    let k = t["key"].as_str().unwrap_or_default();
                    !(k == "node.kubernetes.io/not-ready" || k == "node.kubernetes.io/unreachable")
                        || Some(k) == want
                });
                let mut changed = taints.len() != before;
                if let Some(key) = want {
                    for effect in ["NoSchedule", "NoExecute"] {
                        if !taints
                            .iter()
                            .any(|t| t["key"] == key && t["effect"] == effect)
                        {
                            let mut t = json!({"key": key, "effect": effect});
                            if effect == "NoExecute" {
                                t["timeAdded"] = json!(stamp);
                            }
                            taints.push(t);
                            changed = true;
                        }
                    }
                }
                if changed {
                    if taints.is_empty() {
                        if let Some(spec) = node["spec"].as_object_mut() {
                            spec.remove("taints");
                        }
                    } else {
                        node["spec"]["taints"] = Value::Array(taints);
                    }
                }
                Ok(())
            });
        }
    }

    /// Evicts pods from nodes that are gone or carry a NoExecute taint the pod does not
    /// tolerate (or tolerates only for tolerationSeconds, which have passed). Returns when the
    /// next toleration runs out.
    fn evict_from_tainted_nodes(
        &mut self,
        store: &mut Store,
        now: PlatformTime,
    ) -> Option<PlatformTime> {
        let nodes: HashMap<String, Vec<Value>> = store
            .list(NODES, None)
            .map(|n| {
                let taints = n["spec"]["taints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|t| t["effect"] == "NoExecute")
                    .cloned()
                    .collect();
                (name_of(n).to_owned(), taints)
            })
            .collect();
        let mut next: Option<PlatformTime> = None;
        let mut evict = Vec::new();
        for pod in store.list(PODS, None) {
            let Some(node) = pod["spec"]["nodeName"].as_str() else {
                continue;
            };
            let Some(taints) = nodes.get(node) else {
                evict.push((namespace_of(pod).to_owned(), name_of(pod).to_owned()));
                continue;
            };
            if taints.is_empty() {
                continue;
            }
            let tolerations = pod["spec"]["tolerations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for taint in taints {
                let due = match tolerates(&tolerations, taint) {
                    None => Some(now),
                    Some(None) => None,
                    Some(Some(secs)) => {
                        // timeAdded has second precision: the taint came up to a second after
                        // the stamp, so round up and never evict early.
                        let added = taint["timeAdded"]
                            .as_str()
                            .and_then(parse_rfc3339)
                            .map_or(now, |w| self.platform_of_wall(w + 1));
                        Some(added.plus(Duration::from_secs(u64::try_from(secs).unwrap_or(0))))
                    }
                };
                match due {
                    Some(t) if t <= now => {
                        evict.push((namespace_of(pod).to_owned(), name_of(pod).to_owned()));
                        break;
                    }
                    Some(t) => next = Some(next.map_or(t, |n| n.min(t))),
                    None => {}
                }
            }
        }
        for (ns, name) in evict {
            if let Some(pod) = store.get(PODS, &ns, &name).cloned() {
                let message = format!("Marking for deletion Pod {ns}/{name}");
                self.emit(
                    store,
                    &pod,
                    "Normal",
                    "TaintManagerEviction",
                    message,
                    "taint-eviction-controller",
                );
            }
            let _ = store.delete(PODS, &ns, &name, None);
        }
        self.forget_deleted(store, now);
        next
    }

    /// The garbage collector: replica sets whose deployment is gone, then pods whose replica
    /// set is gone, are deleted (background propagation, the default for deployments).
    fn collect_garbage(&mut self, store: &mut Store, now: PlatformTime) {
        let orphans = |store: &Store, res, owner_res, owner_kind: &str| -> Vec<(String, String)> {
            let owners: std::collections::HashSet<&str> = store
                .list(owner_res, None)
                .filter_map(|o| o["metadata"]["uid"].as_str())
                .collect();
            store
                .list(res, None)
                .filter(|o| {
                    let owner = &o["metadata"]["ownerReferences"][0];
                    owner["kind"] == owner_kind
                        && owner["controller"] == true
                        && owner["uid"].as_str().is_some_and(|u| !owners.contains(u))
                })
                .map(|o| (namespace_of(o).to_owned(), name_of(o).to_owned()))
                .collect()
        };
        for (ns, name) in orphans(store, REPLICASETS, DEPLOYMENTS, "Deployment") {
            let _ = store.delete(REPLICASETS, &ns, &name, None);
        }
        let pods = orphans(store, PODS, REPLICASETS, "ReplicaSet");
        for (ns, name) in &pods {
            let _ = store.delete(PODS, ns, name, None);
        }
        if !pods.is_empty() {
            self.forget_deleted(store, now);
        }
    }

    /// Records a core/v1 Event about `involved` (nodes' events go to `default`), keeping the
    /// newest [`EVENT_CAP`] so long drills do not grow without bound.
    fn emit(
        &mut self,
        store: &mut Store,
        involved: &Value,
        ty: &str,
        reason: &str,
        message: String,
        component: &str,
    ) {
        let ns = match namespace_of(involved) {
            "" => "default".to_owned(),
            ns => ns.to_owned(),
        };
        self.event_counter += 1;
        let name = format!(
            "{}.{:016x}",
            name_of(involved),
            fnv(format!("{}/{}", self.seed, self.event_counter).as_bytes())
        );
        let m = &involved["metadata"];
        let event = json!({
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {
                "kind": involved["kind"], "apiVersion": involved["apiVersion"], "name": m["name"],
                "namespace": m["namespace"], "uid": m["uid"], "resourceVersion": m["resourceVersion"],
            },
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "count": 1,
            "type": ty,
            "reportingComponent": component,
            "reportingInstance": "",
        });
        if store.create(EVENTS, &ns, event).is_ok() {
            self.events.push_back((ns, name));
        }
        while self.events.len() > EVENT_CAP {
            if let Some((ns, name)) = self.events.pop_front() {
                let _ = store.delete(EVENTS, &ns, &name, None);
            }
        }
    }

    fn hash_of(&mut self, d: &Value) -> String {
        let key = (
            d["metadata"]["uid"].as_str().unwrap_or_default().to_owned(),
            d["metadata"]["generation"].as_i64().unwrap_or(0),
        );
        self.hashes
            .entry(key)
            .or_insert_with(|| template_hash(&d["spec"]["template"]))
            .clone()
    }

    /// Replica sets and pods follow each deployment's replicas. A template change makes a new
    /// replica set; the old one's pods go as the new one's turn Ready (a rolling update).
    fn sync_deployments(&mut self, store: &mut Store, now: PlatformTime) {
        let index = OwnerIndex::build(store);
        let deployments: Vec<Arc<Value>> = store.list(DEPLOYMENTS, None).cloned().collect();
        for d in deployments {
            let ns = namespace_of(&d).to_owned();
            let desired = usize::try_from(d["spec"]["replicas"].as_i64().unwrap_or(1)).unwrap_or(0);
            let hash = self.hash_of(&d);
            let rs_name = format!("{}-{hash}", name_of(&d));
            let rs_uid = self.ensure_replica_set(store, &d, &rs_name, &hash, desired);
            let mut current = index.pods(&ns, &rs_name);
            let new_ready = current.iter().filter(|p| pod_ready(p)).count();
            let mut doomed: Vec<Arc<Value>> = Vec::new();
            if current.len() > desired {
                // Delete the least useful first: unscheduled, then not ready, then the newest.
                current.sort_by_key(|p| {
                    (
                        p["spec"]["nodeName"].is_string(),
                        pod_ready(p),
                        std::cmp::Reverse(
                            p["metadata"]["creationTimestamp"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        ),
                        std::cmp::Reverse(name_of(p).to_owned()),
                    )
                });
                doomed.extend(current.iter().take(current.len() - desired).cloned());
            }
            for (old_rs, old_pods) in index.old_replica_sets(store, &d, &rs_name) {
                let keep = desired.saturating_sub(new_ready).min(old_pods.len());
                let mut old_pods = old_pods;
                old_pods.sort_by_key(|p| (pod_ready(p), name_of(p).to_owned()));
                doomed.extend(old_pods.iter().take(old_pods.len() - keep).cloned());
                let _ = store.modify(REPLICASETS, &ns, &old_rs, |rs| {
                    rs["spec"]["replicas"] = json!(keep);
                    Ok(())
                });
            }
            for p in &doomed {
                let _ = store.delete(PODS, &ns, name_of(p), None);
            }
            if !doomed.is_empty() {
                self.forget_deleted(store, now);
            }
            for _ in current.len()..desired {
                self.create_pod(store, &d, &rs_name, &rs_uid, &hash, now);
            }
        }
    }

    fn ensure_replica_set(
        &mut self,
        store: &mut Store,
        d: &Value,
        rs_name: &str,
        hash: &str,
        desired: usize,
    ) -> String {
        let ns = namespace_of(d);
        if let Some(rs) = store.get(REPLICASETS, ns, rs_name) {
            let uid = rs["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let before = rs["spec"]["replicas"].as_u64().unwrap_or(0);
            let _ = store.modify(REPLICASETS, ns, rs_name, |rs| {
                rs["spec"]["replicas"] = json!(desired);
                Ok(())
            });
            if before != desired as u64 {
                let way = if (desired as u64) > before {
                    "up"
                } else {
                    "down"
                };
                let message =
                    format!("Scaled {way} replica set {rs_name} from {before} to {desired}");
                self.emit(
                    store,
                    d,
                    "Normal",
                    "ScalingReplicaSet",
                    message,
                    "deployment-controller",
                );
            }
            return uid;
        }
        let revision = 1 + store
            .list(REPLICASETS, Some(ns))
            .filter(|rs| rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"])
            .count();
        let _ = store.modify(DEPLOYMENTS, ns, name_of(d), |dep| {
            dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                json!(revision.to_string());
            Ok(())
        });
        let mut template = d["spec"]["template"].clone();
        template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = d["spec"]["selector"].clone();
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let mut labels = template["metadata"]["labels"].clone();
        labels["pod-template-hash"] = json!(hash);
        let rs = json!({
            "metadata": {
                "name": rs_name,
                "namespace": ns,
                "labels": labels,
                "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": name_of(d),
                    "uid": d["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "spec": {"replicas": desired, "selector": selector, "template": template},
        });
        store
            .create(REPLICASETS, ns, rs)
            .map(|rs| {
                rs["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default()
    }

    fn create_pod(
        &mut self,
        store: &mut Store,
        d: &Value,
        rs_name: &str,
        rs_uid: &str,
        hash: &str,
        now: PlatformTime,
    ) {
        let (ns, deploy) = (namespace_of(d).to_owned(), name_of(d).to_owned());
        let counter = self
            .name_counters
            .entry((ns.clone(), deploy.clone()))
            .or_insert(0);
        let name = loop {
            *counter += 1;
            let h = fnv(format!("{}/{ns}/{deploy}/{counter}", self.seed).as_bytes());
            let candidate = format!("{rs_name}-{}", suffix(h));
            if store.get(PODS, &ns, &candidate).is_none() {
                break candidate;
            }
        };
        let template = &d["spec"]["template"];
        let mut labels = template["metadata"]["labels"].clone();
        labels["pod-template-hash"] = json!(hash);
        let mut pod = json!({
            "metadata": {
                "name": name,
                "generateName": format!("{rs_name}-"),
                "namespace": ns,
                "labels": labels,
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
                    "uid": rs_uid, "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "spec": template["spec"].clone(),
        });
        if let Some(annotations) = template["metadata"].get("annotations") {
            pod["metadata"]["annotations"] = annotations.clone();
        }
        if let Ok(created) = store.create(PODS, &ns, pod) {
            self.track(&created, Some(deploy), now);
        }
    }

    fn track(&mut self, pod: &Value, deployment: Option<String>, now: PlatformTime) {
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let (ns, name) = (namespace_of(pod).to_owned(), name_of(pod).to_owned());
        self.live.insert((ns.clone(), name.clone()), uid.clone());
        self.records.insert(
            uid.clone(),
            PodRecord {
                namespace: ns,
                name,
                uid,
                deployment,
                node: None,
                zone: None,
                created: now,
                scheduled: None,
                running: None,
                ready: None,
                deleted: None,
                start_delay: None,
                ready_delay: None,
            },
        );
    }

    /// Binds every unscheduled pod to a node, spreading each owner's pods over zones.
    /// Returns how many pods of each node pool found no node.
    fn schedule(&mut self, store: &mut Store, now: PlatformTime) -> BTreeMap<String, usize> {
        let mut unschedulable: BTreeMap<String, usize> = BTreeMap::new();
        let nodes: Vec<NodeView> = store.list(NODES, None).map(|n| NodeView::of(n)).collect();
        let mut per_node: HashMap<String, usize> = HashMap::new();
        let mut per_owner_zone: HashMap<(String, String, String), usize> = HashMap::new();
        let zone_of: HashMap<&str, &str> = nodes
            .iter()
            .map(|n| (n.name.as_str(), n.zone.as_str()))
            .collect();
        let owner = |p: &Value| -> (String, String) {
            let o = p["metadata"]["ownerReferences"][0]["name"]
                .as_str()
                .unwrap_or_else(|| name_of(p));
            (namespace_of(p).to_owned(), o.to_owned())
        };
        let mut pending = Vec::new();
        let mut started = Vec::new();
        for p in store.list(PODS, None) {
            if p["spec"]["nodeName"].is_null() {
                pending.push(p.clone());
            }
        }
        for p in store.list(PODS, None) {
            if let Some(node) = p["spec"]["nodeName"].as_str() {
                if !pending.is_empty() {
                    *per_node.entry(node.to_owned()).or_default() += 1;
                    let (ns, o) = owner(p);
                    let zone = zone_of.get(node).copied().unwrap_or_default().to_owned();
                    *per_owner_zone.entry((ns, o, zone)).or_default() += 1;
                }
                let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
                if self.records.get(uid).is_none_or(|r| r.scheduled.is_none()) {
                    started.push(p.clone());
                }
            }
        }
        // Pods created with a node already set (not by the scheduler) start on that node.
        for p in started {
            let node = p["spec"]["nodeName"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let zone = zone_of.get(node.as_str()).map(|z| (*z).to_owned());
            self.start(&p, node, zone, now);
        }
        let mut fit_cache: HashMap<String, Vec<usize>> = HashMap::new();
        for p in pending {
            let spec = &p["spec"];
            let key =
                json!([spec["tolerations"], spec["nodeSelector"], spec["affinity"]]).to_string();
            let fits = fit_cache
                .entry(key)
                .or_insert_with(|| (0..nodes.len()).filter(|&i| nodes[i].fits(spec)).collect());
            let (ns, o) = owner(&p);
            let name = name_of(&p).to_owned();
            let best = fits
                .iter()
                .copied()
                .filter(|&i| per_node.get(&nodes[i].name).copied().unwrap_or(0) < nodes[i].capacity)
                .min_by_key(|&i| {
                    let n = &nodes[i];
                    (
                        per_owner_zone
                            .get(&(ns.clone(), o.clone(), n.zone.clone()))
                            .copied()
                            .unwrap_or(0),
                        per_node.get(&n.name).copied().unwrap_or(0),
                        n.name.clone(),
                    )
                });
            let stamp = store.now_rfc3339();
            let Some(i) = best else {
                if let Some(pool) = spec["nodeSelector"][POOL_LABEL].as_str() {
                    *unschedulable.entry(pool.to_owned()).or_default() += 1;
                }
                let message = format!(
                    "0/{} nodes are available: no node is Ready, schedulable, untainted for this pod and matching its node selector.",
                    nodes.len()
                );
                let already = p["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter().any(|c| {
                        c["type"] == "PodScheduled"
                            && c["reason"] == "Unschedulable"
                            && c["message"] == message.as_str()
                    })
                });
                if !already {
                    let cond = json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message, "lastProbeTime": null, "lastTransitionTime": stamp});
                    let _ = store.modify(PODS, &ns, &name, |pod| {
                        pod["status"]["conditions"] = json!([cond]);
                        Ok(())
                    });
                    self.emit(
                        store,
                        &p,
                        "Warning",
                        "FailedScheduling",
                        message,
                        "default-scheduler",
                    );
                }
                continue;
            };
            let node = &nodes[i];
            *per_node.entry(node.name.clone()).or_default() += 1;
            *per_owner_zone
                .entry((ns.clone(), o.clone(), node.zone.clone()))
                .or_default() += 1;
            self.ip_counter = self.ip_counter.wrapping_add(1);
            let ip = format!(
                "10.{}.{}.{}",
                64 + ((self.ip_counter >> 16) & 0x3f),
                (self.ip_counter >> 8) & 0xff,
                self.ip_counter & 0xff
            );
            let bound = store.modify(PODS, &ns, &name, |pod| {
                pod["spec"]["nodeName"] = json!(node.name);
                let containers = pod["spec"]["containers"].as_array().cloned().unwrap_or_default();
                pod["status"] = json!({
                    "phase": "Pending",
                    "hostIP": node.ip,
                    "podIP": ip,
                    "podIPs": [{"ip": ip}],
                    "startTime": stamp,
                    "qosClass": "BestEffort",
                    "conditions": [
                        {"type": "PodReadyToStartContainers", "status": "False", "lastProbeTime": null, "lastTransitionTime": stamp},
                        {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": stamp},
                        {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status", "lastProbeTime": null, "lastTransitionTime": stamp},
                        {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status", "lastProbeTime": null, "lastTransitionTime": stamp},
                        {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": stamp},
                    ],
                    "containerStatuses": containers.iter().map(|c| json!({
                        "name": c["name"], "image": c["image"], "imageID": "", "ready": false, "restartCount": 0, "started": false,
                        "state": {"waiting": {"reason": "ContainerCreating"}},
                    })).collect::<Vec<_>>(),
                });
                Ok(())
            });
            if let Ok(bound) = bound {
                self.start(&bound, node.name.clone(), Some(node.zone.clone()), now);
            }
        }
        unschedulable
    }

    /// The cluster autoscaler: asks for enough nodes of each autoscaled pool to hold its
    /// unschedulable pods, in the zone with the fewest nodes of the pool, up to the maximum.
    fn request_nodes(
        &mut self,
        store: &Store,
        now: PlatformTime,
        unschedulable: &BTreeMap<String, usize>,
    ) {
        let per_node = self.autoscaling.pods_per_node.max(1);
        for (pool, pods) in unschedulable {
            let Some(&max) = self.autoscaling.max_per_zone.get(pool) else {
                continue;
            };
            let in_flight = self
                .nodes
                .iter()
                .filter(|n| n.pool == *pool && n.ready.is_none())
                .count();
            let wanted = pods.div_ceil(per_node).saturating_sub(in_flight);
            for _ in 0..wanted {
                let count = |zone: &str| {
                    store
                        .list(NODES, None)
                        .filter(|n| {
                            n["metadata"]["labels"][POOL_LABEL] == pool.as_str()
                                && n["metadata"]["labels"][ZONE_LABEL] == zone
                        })
                        .count()
                        + self
                            .nodes
                            .iter()
                            .filter(|n| n.pool == *pool && n.zone == zone && n.ready.is_none())
                            .count()
                };
                let Some((zone, index)) = self
                    .autoscaling
                    .zones
                    .iter()
                    .map(|z| (z.clone(), count(z)))
                    .filter(|(_, c)| *c < max)
                    .min_by_key(|(z, c)| (*c, z.clone()))
                else {
                    break;
                };
                let mut index = index;
                while store
                    .get(NODES, "", &format!("{zone}-{pool}-{index}"))
                    .is_some()
                    || self
                        .nodes
                        .iter()
                        .any(|n| n.name == format!("{zone}-{pool}-{index}"))
                {
                    index += 1;
                }
                let name = format!("{zone}-{pool}-{index}");
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ fnv(name.as_bytes()) ^ 0x0de);
                let delay = draw(&mut rng, self.timing.node_provisioning);
                self.nodes.push(NodeRecord {
                    name,
                    zone,
                    pool: pool.clone(),
                    requested: now,
                    ready: None,
                    delay,
                });
            }
        }
    }

    /// Nodes whose provisioning delay has passed join the cluster Ready.
    fn finish_provisioning(&mut self, store: &mut Store, now: PlatformTime) {
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if n.ready.is_some() || n.requested.plus(n.delay) > now {
                continue;
            }
            self.node_ip = self.node_ip.wrapping_add(1);
            let ip = format!(
                "10.{}.{}.{}",
                128 + ((self.node_ip >> 16) & 0x3f),
                (self.node_ip >> 8) & 0xff,
                self.node_ip & 0xff
            );
            let index = n
                .name
                .rsplit('-')
                .next()
                .and_then(|i| i.parse().ok())
                .unwrap_or(0);
            let node = node_object(
                &self.autoscaling.region,
                &n.zone,
                &n.pool,
                index,
                &ip,
                self.autoscaling.pods_per_node,
            );
            // A node of that name created meanwhile through the API counts as the new node
            // (and keeps the controller from waking for this request again and again).
            let _ = store.create(NODES, "", node);
            self.nodes[i].ready = Some(now);
        }
    }

    /// The kubelet model: draws the seeded start delay and arms the Running timer.
    fn start(&mut self, pod: &Value, node: String, zone: Option<String>, now: PlatformTime) {
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !self.records.contains_key(&uid) {
            self.track(pod, None, now);
        }
        let name = name_of(pod).to_owned();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ fnv(name.as_bytes()));
        let delay = if self.warm {
            Duration::ZERO
        } else {
            draw(&mut rng, self.timing.image_pull) + draw(&mut rng, self.timing.container_start)
        };
        if let Some(r) = self.records.get_mut(&uid) {
            r.node = Some(node);
            r.zone = zone;
            r.scheduled = Some(now);
            r.start_delay = Some(delay);
        }
        self.timers.insert((now.plus(delay), uid), Stage::Running);
    }

    /// Writes each deployment's and replica set's status; returns when a progress deadline
    /// runs out.
    fn update_deployment_status(
        &mut self,
        store: &mut Store,
        now: PlatformTime,
    ) -> Option<PlatformTime> {
        let stamp = store.now_rfc3339();
        let deployments: Vec<Arc<Value>> = store.list(DEPLOYMENTS, None).cloned().collect();
        let mut next: Option<PlatformTime> = None;
        let index = OwnerIndex::build(store);
        for d in deployments {
            let (ns, name) = (namespace_of(&d).to_owned(), name_of(&d).to_owned());
            let hash = self.hash_of(&d);
            let rs_name = format!("{name}-{hash}");
            let current = index.pods(&ns, &rs_name);
            let old_pods: Vec<Arc<Value>> = index
                .old_replica_sets(store, &d, &rs_name)
                .into_iter()
                .flat_map(|(_, p)| p)
                .collect();
            let updated = current.len() as i64;
            let replicas = updated + old_pods.len() as i64;
            let ready = current
                .iter()
                .chain(old_pods.iter())
                .filter(|p| pod_ready(p))
                .count() as i64;
            let desired = d["spec"]["replicas"].as_i64().unwrap_or(1);
            let max_unavailable = match &d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] {
                Value::Number(n) => n.as_i64().unwrap_or(0),
                Value::String(s) => {
                    s.trim_end_matches('%').parse::<i64>().unwrap_or(25) * desired / 100
                }
                _ => desired / 4,
            };
            let complete = replicas == desired && updated == desired && ready == desired;
            let deadline = Duration::from_secs(
                u64::try_from(d["spec"]["progressDeadlineSeconds"].as_i64().unwrap_or(600))
                    .unwrap_or(600),
            );
            let old = &d["status"];
            let old_cond = |ty: &str| {
                old["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == ty)
                    .cloned()
            };
            let old_progress = old_cond("Progressing");
            let progressed = old["availableReplicas"].as_i64().unwrap_or(0) != ready
                || old["replicas"].as_i64().unwrap_or(0) != replicas
                || old["observedGeneration"] != d["metadata"]["generation"];
            let (p_status, p_reason, p_message) = if complete {
                (
                    "True",
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                )
            } else {
                let since = old_progress
                    .as_ref()
                    .filter(|c| !progressed && c["reason"] != "NewReplicaSetAvailable")
                    .and_then(|c| c["lastUpdateTime"].as_str())
                    .and_then(parse_rfc3339)
                    .map_or(now, |w| self.platform_of_wall(w));
                let due = since.plus(deadline);
                if due <= now {
                    (
                        "False",
                        "ProgressDeadlineExceeded",
                        format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                    )
                } else {
                    next = Some(next.map_or(due, |n| n.min(due)));
                    (
                        "True",
                        "ReplicaSetUpdated",
                        format!("ReplicaSet \"{rs_name}\" is progressing."),
                    )
                }
            };
            let available = ready >= desired - max_unavailable;
            let (a_status, a_reason, a_message) = if available {
                (
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                )
            } else {
                (
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                )
            };
            let cond = |ty: &str, status: &str, reason: &str, message: &str, touch: bool| {
                let prev = old_cond(ty);
                let same = prev
                    .as_ref()
                    .is_some_and(|c| c["status"] == status && c["reason"] == reason);
                let transition = prev
                    .as_ref()
                    .filter(|c| c["status"] == status)
                    .map_or(json!(stamp), |c| c["lastTransitionTime"].clone());
                let update = if same && !touch {
                    prev.as_ref()
                        .map_or(json!(stamp), |c| c["lastUpdateTime"].clone())
                } else {
                    json!(stamp)
                };
                json!({"type": ty, "status": status, "lastUpdateTime": update, "lastTransitionTime": transition, "reason": reason, "message": message})
            };
            let mut status = json!({
                "observedGeneration": d["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "conditions": [
                    cond("Available", a_status, a_reason, a_message, false),
                    cond("Progressing", p_status, p_reason, &p_message, progressed && !complete),
                ],
            });
            if desired - ready > 0 {
                status["unavailableReplicas"] = json!(desired - ready);
            }
            if ready == 0
                && let Some(s) = status.as_object_mut()
            {
                s.remove("readyReplicas");
                s.remove("availableReplicas");
            }
            let _ = store.modify(DEPLOYMENTS, &ns, &name, |dep| {
                dep["status"] = status;
                Ok(())
            });
            let mut sets = index.old_replica_sets(store, &d, &rs_name);
            sets.push((rs_name, current));
            for (rs_name, pods) in sets {
                let count = pods.len();
                let ready = pods.iter().filter(|p| pod_ready(p)).count();
                let _ = store.modify(REPLICASETS, &ns, &rs_name, |rs| {
                    let generation = rs["metadata"]["generation"].clone();
                    rs["status"] = json!({"replicas": count, "fullyLabeledReplicas": count, "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": generation});
                    Ok(())
                });
            }
        }
        next
    }
}

/// The pods of each replica set, from one scan of the pods (so a pass costs O(pods), not
/// O(deployments × pods)).
struct OwnerIndex {
    by_rs: HashMap<(String, String), Vec<Arc<Value>>>,
}

impl OwnerIndex {
    fn build(store: &Store) -> Self {
        let mut by_rs: HashMap<(String, String), Vec<Arc<Value>>> = HashMap::new();
        for p in store.list(PODS, None) {
            let owner = &p["metadata"]["ownerReferences"][0];
            if owner["kind"] == "ReplicaSet"
                && let Some(rs) = owner["name"].as_str()
            {
                by_rs
                    .entry((namespace_of(p).to_owned(), rs.to_owned()))
                    .or_default()
                    .push(p.clone());
            }
        }
        Self { by_rs }
    }

    fn pods(&self, ns: &str, rs: &str) -> Vec<Arc<Value>> {
        self.by_rs
            .get(&(ns.to_owned(), rs.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// The deployment's other replica sets (older templates) and their pods.
    fn old_replica_sets(
        &self,
        store: &Store,
        d: &Value,
        current: &str,
    ) -> Vec<(String, Vec<Arc<Value>>)> {
        let ns = namespace_of(d);
        store
            .list(REPLICASETS, Some(ns))
            .filter(|rs| {
                name_of(rs) != current
                    && rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
            })
            .map(|rs| (name_of(rs).to_owned(), self.pods(ns, name_of(rs))))
            .collect()
    }
}

/// A Ready node of `pool` in `zone`, named `<zone>-<pool>-<index>`, room for `pods` pods.
#[must_use]
pub fn node_object(
    region: &str,
    zone: &str,
    pool: &str,
    index: usize,
    ip: &str,
    pods: usize,
) -> Value {
    let name = format!("{zone}-{pool}-{index}");
    json!({
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "e2-standard-4",
                ZONE_LABEL: zone,
                REGION_LABEL: region,
                POOL_LABEL: pool,
            },
        },
        "spec": {"providerID": format!("firedrill://{region}/{zone}/{name}")},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available"},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "kubelet has no disk pressure"},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "kubelet has sufficient PID available"},
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"},
            ],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "4", "memory": "16393232Ki", "pods": pods.to_string()},
            "allocatable": {"cpu": "3920m", "memory": "13484304Ki", "pods": pods.to_string()},
            "nodeInfo": {
                "kubeletVersion": "v1.34.0", "kubeProxyVersion": "v1.34.0", "containerRuntimeVersion": "containerd://2.0.0",
                "osImage": "Container-Optimized OS", "kernelVersion": "6.6.0", "operatingSystem": "linux", "architecture": "amd64",
                "machineID": "", "systemUUID": "", "bootID": "",
            },
        },
    })
}

/// The kubelet's view of a pod after the Running or Ready transition.
fn set_pod_state(pod: &mut Value, stage: Stage, stamp: &str) {
    let ready = stage == Stage::Ready;
    pod["status"]["phase"] = json!("Running");
    for c in pod["status"]["conditions"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let flip = match c["type"].as_str() {
            Some("PodReadyToStartContainers") => true,
            Some("Ready" | "ContainersReady") => ready,
            _ => false,
        };
        if flip && c["status"] != "True" {
            c["status"] = json!("True");
            c["lastTransitionTime"] = json!(stamp);
            if let Some(o) = c.as_object_mut() {
                o.remove("reason");
                o.remove("message");
            }
        }
    }
    for cs in pod["status"]["containerStatuses"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if stage == Stage::Running {
            cs["state"] = json!({"running": {"startedAt": stamp}});
            cs["started"] = json!(true);
            cs["containerID"] = json!(format!("containerd://{}", fnv(stamp.as_bytes())));
        }
        cs["ready"] = json!(ready);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_match_like_the_scheduler() {
        let taint = json!({"key": "zone-outage", "value": "a", "effect": "NoExecute"});
        assert_eq!(
            tolerates(&[json!({"operator": "Exists"})], &taint),
            Some(None)
        );
        assert_eq!(
            tolerates(
                &[json!({"key": "zone-outage", "operator": "Equal", "value": "b"})],
                &taint
            ),
            None
        );
        assert_eq!(
            tolerates(
                &[
                    json!({"key": "zone-outage", "value": "a", "effect": "NoExecute", "tolerationSeconds": 5})
                ],
                &taint
            ),
            Some(Some(5))
        );
        assert_eq!(
            tolerates(
                &[json!({"key": "zone-outage", "operator": "Exists", "effect": "NoSchedule"})],
                &taint
            ),
            None
        );
    }

    #[test]
    fn delays_come_from_the_seeded_model() {
        let model = TimingModel::default();
        let mut a = ChaCha8Rng::seed_from_u64(7);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        let (x, y) = (
            draw(&mut a, model.image_pull),
            draw(&mut b, model.image_pull),
        );
        assert_eq!(x, y);
        assert!(x >= model.image_pull.0 && x <= model.image_pull.1);
    }
}
