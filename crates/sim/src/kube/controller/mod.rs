//! The in-process controllers, one file per control loop, all passes run by [`Controller::reconcile`]
//! in one order over one store:
//!
//! - [`kubelet`]: a scheduled pod turns Running, then Ready, after seeded platform-time delays;
//! - [`node_lifecycle`]: NotReady nodes get the `not-ready` / `unreachable` taints;
//! - [`taint_eviction`]: pods that do not tolerate a NoExecute taint are evicted, after their
//!   tolerationSeconds;
//! - [`garbage_collector`]: replica sets and pods whose owner is gone are deleted;
//! - [`deployment`]: replicas become replica sets and pods, and deployments get their status;
//! - [`scheduler`]: pods are bound to Ready, uncordoned nodes whose taints they tolerate and whose
//!   labels match their node selector / required affinity, spread over zones;
//! - [`autoscaler`]: the cluster autoscaler adds nodes to pools whose pods are unschedulable.
//!
//! This file holds the state they share (timers, ground truth, events) and the pass itself.

mod autoscaler;
mod deployment;
mod endpoints;
mod garbage_collector;
mod kubelet;
mod node_lifecycle;
mod scheduler;
mod taint_eviction;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::resources::{EVENTS, PODS};
use super::store::{Store, name_of, namespace_of, suffix};
use super::{POOL_LABEL, REGION_LABEL, ZONE_LABEL};
use firedrill_core::clock::{Clock, PlatformTime};

pub use autoscaler::{Autoscaling, NodeRecord};
use kubelet::Stage;

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
    /// When each NoExecute taint was first seen (platform time), for tolerationSeconds.
    taints_seen: HashMap<TaintKey, PlatformTime>,
    /// When each deployment (by uid) last progressed (platform time), for its deadline.
    progress_since: HashMap<String, PlatformTime>,
    /// The Endpoints objects the endpoints controller wrote: (namespace, service).
    endpoints_managed: std::collections::HashSet<(String, String)>,
}

/// A taint on a node: (node, key, effect).
type TaintKey = (String, String, String);

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
            taints_seen: HashMap::new(),
            progress_since: HashMap::new(),
            endpoints_managed: std::collections::HashSet::new(),
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
        self.sync_endpoints(store);
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

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
