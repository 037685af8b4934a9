//! The embedded Kubernetes API server: one per region, plain HTTP on 127.0.0.1, serving the part
//! of the Kubernetes API that firedrill (kube-rs client and runtime), kubectl and the Python
//! client use — discovery, `/openapi/v2` and `/v3`, namespaces, nodes, pods, deployments (with
//! scale and status), replica sets, services (cluster IPs), endpoints and endpoint slices,
//! configmaps, secrets, events, leases, claims, RBAC objects, pod disruption budgets and pod
//! evictions, access/rules/self reviews; list (paged), get, create, update, merge / strategic /
//! JSON patch, server-side apply with managedFields, delete and watch with resourceVersion,
//! bookmarks, label and field selectors and `410 Gone`; JSON or protobuf bodies; server-side
//! `Table` printing for kubectl. What it does not serve it refuses as a real server refuses it
//! (docs/conformance/kubernetes.md has the table).
//!
//! In-process controllers (one file each under `controller/`) turn deployment replicas into
//! pods, schedule them onto Ready, uncordoned, untainted nodes of the right pool, evict pods from
//! NoExecute-tainted and NotReady nodes, start pods after seeded platform-time delays
//! ([`TimingModel`]), add nodes for unschedulable pods, and keep endpoints.
//!
//! Start one with [`Cluster::start`] from a [`ClusterSpec`]; point clients at [`Cluster::url`] or
//! at a kubeconfig from [`write_kubeconfig`]. The handle also exposes ground truth (when each pod
//! became Ready, in platform time) and the faults no API client can cause (a node or zone going
//! NotReady, a role refusing a verb, the watch history being compacted). Object timestamps are
//! wall-clock time, also under compression (see `store::wall_now`).

pub mod audit;
mod controller;
mod discovery;
mod error;
mod gate;
mod managed;
mod objects;
mod openapi;
mod patch;
mod protobuf;
mod resources;
mod selector;
mod server;
mod services;
mod store;
mod table;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use controller::{NodeRecord, PodRecord, TimingModel};
pub use error::{ApiError, SimError};
pub use resources::{RESOURCES, ResourceType};
/// Wall-clock timestamps on the platform clock, for the other embedded APIs (Atlas) to stamp
/// their answers by the same rule.
pub(crate) use store::{rfc3339, wall_now};

use controller::Controller;
use firedrill_core::clock::{Clock, PlatformTime};
use resources::{DEPLOYMENTS, NODES};
use server::{Shared, World};
use store::Store;

/// The node label that names a node pool (GKE's, as in the reference estate).
pub const POOL_LABEL: &str = "cloud.google.com/gke-nodepool";
/// The zone label of nodes.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// The region label of nodes.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";

/// One zone of a cluster: its name and how many nodes each pool has in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSpec {
    /// Zone name (`us-west1-a`).
    pub name: String,
    /// (pool name, node count) pairs.
    pub pools: Vec<(String, usize)>,
}

/// A deployment to create at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentSpec {
    /// Namespace (created if missing).
    pub namespace: String,
    /// Deployment name; pods are labelled `app=<name>`.
    pub name: String,
    /// Initial replicas.
    pub replicas: u32,
    /// Node pool the pods must run on (a nodeSelector on [`POOL_LABEL`]), if any.
    pub pool: Option<String>,
    /// Container image.
    pub image: String,
    /// `spec.progressDeadlineSeconds` (the server's default, 600, when None).
    pub progress_deadline: Option<u32>,
}

/// Everything needed to start one regional cluster.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Region name (`us-west1`); nodes carry it as [`REGION_LABEL`].
    pub region: String,
    /// Zones and their node pools.
    pub zones: Vec<ZoneSpec>,
    /// Namespaces to create.
    pub namespaces: Vec<String>,
    /// Deployments to create.
    pub deployments: Vec<DeploymentSpec>,
    /// Seed of pod names and start delays.
    pub seed: u64,
    /// Pod start timing.
    pub timing: TimingModel,
    /// The platform clock.
    pub clock: Clock,
    /// The user named in 403 messages.
    pub user: String,
    /// How many changes watches can resume across before answering `410 Gone`.
    pub watch_history: usize,
    /// How often (wall time) watches that allow bookmarks get one.
    pub bookmark_every: Duration,
    /// Pools the cluster autoscaler grows, with their maximum nodes per zone.
    pub autoscale: BTreeMap<String, usize>,
    /// Pods one node can run (the scheduler's only capacity model).
    pub pods_per_node: usize,
    /// Start with the deployments' pods already Running and Ready, as an estate that was up
    /// before the drill began (otherwise they go through the kubelet model from the start).
    pub warm: bool,
}

impl ClusterSpec {
    /// An empty cluster for `region` on `clock`, seed 0, default timing.
    #[must_use]
    pub fn new(region: impl Into<String>, clock: Clock) -> Self {
        Self {
            region: region.into(),
            zones: Vec::new(),
            namespaces: Vec::new(),
            deployments: Vec::new(),
            seed: 0,
            timing: TimingModel::default(),
            clock,
            user: "firedrill".to_owned(),
            watch_history: 50_000,
            bookmark_every: Duration::from_secs(1),
            autoscale: BTreeMap::new(),
            pods_per_node: 110,
            warm: false,
        }
    }

    /// Lets the cluster autoscaler add nodes of `pool` (up to `max_per_zone` in each zone) when
    /// its pods are unschedulable; nodes join after [`TimingModel::node_provisioning`].
    #[must_use]
    pub fn autoscale(mut self, pool: &str, max_per_zone: usize) -> Self {
        self.autoscale.insert(pool.to_owned(), max_per_zone);
        self
    }

    /// Starts with the deployments' pods Ready (see [`ClusterSpec::warm`]).
    #[must_use]
    pub fn warm(mut self) -> Self {
        self.warm = true;
        self
    }

    /// Sets how many pods fit on one node.
    #[must_use]
    pub fn pods_per_node(mut self, pods: usize) -> Self {
        self.pods_per_node = pods.max(1);
        self
    }

    /// Adds a zone with `(pool, nodes)` pools.
    #[must_use]
    pub fn zone(mut self, name: impl Into<String>, pools: &[(&str, usize)]) -> Self {
        self.zones.push(ZoneSpec {
            name: name.into(),
            pools: pools.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect(),
        });
        self
    }

    /// Adds a namespace.
    #[must_use]
    pub fn namespace(mut self, name: impl Into<String>) -> Self {
        self.namespaces.push(name.into());
        self
    }

    /// Adds a deployment of `replicas` pods of image `app:1` pinned to `pool` (if given).
    #[must_use]
    pub fn deployment(
        mut self,
        namespace: &str,
        name: &str,
        replicas: u32,
        pool: Option<&str>,
    ) -> Self {
        self.deployments.push(DeploymentSpec {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            replicas,
            pool: pool.map(str::to_owned),
            image: "registry.example/app:1".to_owned(),
            progress_deadline: None,
        });
        self
    }

    /// Sets the progress deadline of the deployments added so far to `seconds` (a pool that
    /// scales from 0 nodes needs more than the default 600 s before a rollout is stalled).
    #[must_use]
    pub fn progress_deadline(mut self, seconds: u32) -> Self {
        for d in &mut self.deployments {
            d.progress_deadline = Some(seconds);
        }
        self
    }

    /// Sets the seed.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the timing model.
    #[must_use]
    pub fn timing(mut self, timing: TimingModel) -> Self {
        self.timing = timing;
        self
    }
}

fn deployment_object(d: &DeploymentSpec) -> Value {
    let mut spec = json!({
        "containers": [{
            "name": "app",
            "image": d.image,
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "readinessProbe": {
                "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3,
            },
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        }],
    });
    if let Some(pool) = &d.pool {
        spec["nodeSelector"] = json!({POOL_LABEL: pool});
    }
    let mut deployment = json!({
        "metadata": {"name": d.name, "namespace": d.namespace, "labels": {"app": d.name}},
        "spec": {
            "replicas": d.replicas,
            "selector": {"matchLabels": {"app": d.name}},
            "template": {"metadata": {"labels": {"app": d.name}}, "spec": spec},
        },
    });
    if let Some(seconds) = d.progress_deadline {
        deployment["spec"]["progressDeadlineSeconds"] = json!(seconds);
    }
    deployment
}

/// A running embedded cluster. Dropping it stops the server, the controller and every watch.
pub struct Cluster {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    /// True while the server resets every connection ([`Cluster::set_down`]).
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("region", &self.shared.region)
            .field("addr", &self.addr)
            .finish()
    }
}

impl Cluster {
    /// Builds the cluster's objects, binds 127.0.0.1:0 and starts the server and controller.
    ///
    /// # Errors
    ///
    /// [`SimError::Bind`] when the port cannot be bound, [`SimError::InvalidSpec`] when the spec's
    /// objects are refused (a duplicate zone, a deployment in a namespace twice ...).
    pub async fn start(spec: ClusterSpec) -> Result<Self, SimError> {
        let region = spec.region.clone();
        let invalid = |source: ApiError| SimError::InvalidSpec {
            region: region.clone(),
            problem: source.message,
            hint: "zone, namespace and deployment names must be unique",
        };
        let region_index = u32::try_from(controller::fnv(region.as_bytes()) % 64).unwrap_or(0);
        let mut store = Store::new(
            spec.clock,
            u32::try_from(controller::fnv(region.as_bytes()) & 0xffff_ffff).unwrap_or(0),
            spec.watch_history,
        );
        let autoscaling = controller::Autoscaling {
            region: spec.region.clone(),
            zones: spec.zones.iter().map(|z| z.name.clone()).collect(),
            max_per_zone: spec.autoscale.clone(),
            pods_per_node: spec.pods_per_node,
        };
        let mut ctl = Controller::new(
            spec.seed,
            spec.timing.clone(),
            spec.clock,
            region_index,
            autoscaling,
        );
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"]
            .iter()
            .copied()
            .chain(spec.namespaces.iter().map(String::as_str))
        {
            server::ensure_namespace(&mut store, ns).map_err(invalid)?;
        }
        store
            .create(resources::SERVICES, "default", services::api_service())
            .map_err(invalid)?;
        let mut ip = 0u32;
        for zone in &spec.zones {
            for (pool, count) in &zone.pools {
                for i in 0..*count {
                    ip += 1;
                    let addr = format!(
                        "10.{}.{}.{}",
                        128 + region_index,
                        (ip >> 8) & 0xff,
                        ip & 0xff
                    );
                    store
                        .create(
                            NODES,
                            "",
                            controller::node_object(
                                &spec.region,
                                &zone.name,
                                pool,
                                i,
                                &addr,
                                spec.pods_per_node,
                            ),
                        )
                        .map_err(invalid)?;
                }
            }
        }
        for d in &spec.deployments {
            server::ensure_namespace(&mut store, &d.namespace).map_err(invalid)?;
            store
                .create(DEPLOYMENTS, &d.namespace, deployment_object(d))
                .map_err(invalid)?;
        }
        ctl.warm = spec.warm;
        // Scheduled, Running, then Ready: one pass each, with no modelled delay when warm.
        for _ in 0..if spec.warm { 3 } else { 1 } {
            ctl.reconcile(&mut store);
        }
        ctl.warm = false;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| SimError::Bind {
                region: region.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            region: region.clone(),
            source,
        })?;
        let (watch_epoch, _) = tokio::sync::watch::channel(0u64);
        let (dark, _) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            region: region.clone(),
            world: Mutex::new(World { store, ctl }),
            wake: Notify::new(),
            clock: spec.clock,
            forbidden: Mutex::new(BTreeSet::new()),
            user: spec.user.clone(),
            watch_epoch,
            addr: OnceLock::new(),
            requests: Mutex::new(VecDeque::new()),
            bookmark_every: spec.bookmark_every,
            dark,
        });
        let _ = shared.addr.set(addr);
        // The `kubernetes` service's endpoints are the API server itself, as the real server
        // writes them (its endpoint reconciler).
        {
            let mut w = shared.lock();
            let endpoints = services::api_endpoints(addr);
            w.store
                .create(resources::ENDPOINTS, "default", endpoints)
                .map_err(invalid)?;
        }
        let app = axum::Router::new()
            .fallback(server::handle)
            .with_state(shared.clone());
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let listener = gate::Gated {
            inner: listener,
            down: Arc::clone(&down),
        };
        let serve = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "embedded Kubernetes API server stopped");
            }
        });
        let control = tokio::spawn(run_controller(shared.clone()));
        tracing::info!(region = %region, %addr, "embedded Kubernetes API server listening");
        Ok(Self {
            shared,
            addr,
            tasks: vec![serve, control],
            down,
        })
    }

    /// `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The region.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.shared.region
    }

    /// Ground truth about every pod ever created (including deleted ones).
    #[must_use]
    pub fn pod_records(&self) -> Vec<PodRecord> {
        self.shared.lock().ctl.records().cloned().collect()
    }

    /// Ground truth about every node the autoscaler provisioned.
    #[must_use]
    pub fn node_records(&self) -> Vec<NodeRecord> {
        self.shared.lock().ctl.node_records().cloned().collect()
    }

    /// When the live pod `namespace/name` became Ready, in platform time.
    #[must_use]
    pub fn pod_ready_at(&self, namespace: &str, name: &str) -> Option<PlatformTime> {
        self.shared
            .lock()
            .ctl
            .records()
            .filter(|r| r.namespace == namespace && r.name == name && r.deleted.is_none())
            .find_map(|r| r.ready)
    }

    /// The current state of an object (`plural` as in URLs: `pods`, `deployments`); `namespace`
    /// is ignored for cluster-scoped kinds.
    #[must_use]
    pub fn object(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = RESOURCES.iter().position(|r| r.plural == plural)?;
        let ns = if RESOURCES[res].namespaced {
            namespace
        } else {
            ""
        };
        self.shared
            .lock()
            .store
            .get(res, ns, name)
            .map(|o| (**o).clone())
    }

    /// Every object of a kind (all namespaces when `namespace` is None).
    #[must_use]
    pub fn objects(&self, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(res) = RESOURCES.iter().position(|r| r.plural == plural) else {
            return Vec::new();
        };
        self.shared
            .lock()
            .store
            .list(res, namespace)
            .map(|o| (**o).clone())
            .collect()
    }

    /// The current resourceVersion.
    #[must_use]
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().store.resource_version()
    }

    /// Marks a node Ready or not (the kubelet stops posting status: Ready=Unknown). The node
    /// lifecycle controller then taints it and pods are evicted after their tolerations
    /// (300 s by default).
    ///
    /// # Errors
    ///
    /// [`SimError::Api`] when the node does not exist.
    pub fn set_node_ready(&self, node: &str, ready: bool) -> Result<(), SimError> {
        self.node_ready(node, ready)
    }

    /// Removes `node`, as the cluster autoscaler does when it scales a pool down. Done inside
    /// the platform, not through the API: it is the platform's own component acting, not a
    /// client (the RBAC audit records clients only).
    ///
    /// # Errors
    ///
    /// [`SimError::Api`] when the node does not exist.
    pub fn remove_node(&self, node: &str) -> Result<(), SimError> {
        self.shared
            .lock()
            .store
            .delete(NODES, "", node, None)
            .map(|_| ())
            .map_err(|source| SimError::Api {
                region: self.shared.region.clone(),
                source: Box::new(source),
            })
    }

    fn node_ready(&self, node: &str, ready: bool) -> Result<(), SimError> {
        let mut w = self.shared.lock();
        let stamp = w.store.now_rfc3339();
        w.store
            .modify(NODES, "", node, |n| {
                for c in n["status"]["conditions"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    if c["type"] == "Ready" {
                        let (status, reason, message) = if ready {
                            ("True", "KubeletReady", "kubelet is posting ready status")
                        } else {
                            (
                                "Unknown",
                                "NodeStatusUnknown",
                                "Kubelet stopped posting node status.",
                            )
                        };
                        if c["status"] != status {
                            c["lastTransitionTime"] = json!(stamp);
                        }
                        c["status"] = json!(status);
                        c["reason"] = json!(reason);
                        c["message"] = json!(message);
                    }
                }
                Ok(())
            })
            .map_err(|source| SimError::Api {
                region: self.shared.region.clone(),
                source: Box::new(source),
            })?;
        let World { store, ctl } = &mut *w;
        ctl.reconcile(store);
        drop(w);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Marks every node of a zone Ready or not; returns how many nodes changed.
    ///
    /// # Errors
    ///
    /// [`SimError::Api`] if a node vanished meanwhile.
    pub fn set_zone_ready(&self, zone: &str, ready: bool) -> Result<usize, SimError> {
        let nodes: Vec<String> = self
            .objects("nodes", None)
            .iter()
            .filter(|n| n["metadata"]["labels"][ZONE_LABEL] == zone)
            .map(|n| store::name_of(n).to_owned())
            .collect();
        for n in &nodes {
            self.set_node_ready(n, ready)?;
        }
        Ok(nodes.len())
    }

    /// Refuses `verb` (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`, or `*`) on `resource` (`pods`, `pods/eviction`, `deployments/scale`,
    /// or `*`) with `403 Forbidden`, as RBAC would.
    pub fn forbid(&self, verb: &str, resource: &str) {
        self.shared
            .forbidden
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((verb.to_owned(), resource.to_owned()));
    }

    /// Like [`Cluster::forbid`], only in `namespace` (a Role that grants the verb in the other
    /// namespaces but not this one).
    pub fn forbid_in(&self, verb: &str, resource: &str, namespace: &str) {
        self.forbid(verb, &format!("{resource}@{namespace}"));
    }

    /// Lifts a [`Cluster::forbid`].
    pub fn allow(&self, verb: &str, resource: &str) {
        self.shared
            .forbidden
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(verb.to_owned(), resource.to_owned()));
    }

    /// Makes the region's API server unreachable (`true`): open watches end and every request
    /// hangs until the region is lit again (`false`), so clients hit their own timeouts as
    /// they would against a region that went dark. Objects and controllers keep their state.
    pub fn set_dark(&self, dark: bool) {
        self.shared.dark.send_replace(dark);
        if dark {
            self.close_watches();
        }
    }

    /// Takes the API server down (`true`): every connection, open or new, is reset at its next
    /// read or write, so clients get transport errors at once (a crashed control plane, not a
    /// silent one: see [`Cluster::set_dark`] for that). `false` brings it back with its objects.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
        if down {
            self.close_watches();
        }
    }

    /// Ends every open watch, as an API server restart does; clients re-watch from their last
    /// resourceVersion.
    pub fn close_watches(&self) {
        self.shared.watch_epoch.send_modify(|e| *e += 1);
    }

    /// Compacts the watch history and ends every open watch: re-watches from any version seen
    /// so far get `410 Gone` and clients must re-list.
    pub fn compact(&self) {
        self.shared.lock().store.compact();
        self.close_watches();
    }

    /// The last requests the server received (`METHOD /path?query`), oldest first.
    #[must_use]
    pub fn request_log(&self) -> Vec<String> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.close_watches();
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Wall time the controller waits after a wake-up so a burst of writes (a drain's evictions)
/// is reconciled in one pass rather than one pass per write.
const COALESCE: Duration = Duration::from_millis(2);

async fn run_controller(shared: Arc<Shared>) {
    loop {
        let began = std::time::Instant::now();
        let next = {
            let mut w = shared.lock();
            let World { store, ctl } = &mut *w;
            ctl.reconcile(store)
        };
        // A pass walks every object with the world locked: on a big cluster that is tens of
        // milliseconds, and during a drain every eviction wakes the next pass, so back-to-back
        // passes would starve the API (2,000 evictions took 8 s). Leaving the lock free for at
        // least as long as the pass held it keeps the API's share at half or more; a burst of
        // writes meanwhile is reconciled in the next pass.
        let held = began.elapsed();
        if held > COALESCE {
            tokio::time::sleep(held).await;
        }
        let clock = shared.clock;
        match next {
            Some(t) => {
                tokio::select! {
                    () = shared.wake.notified() => tokio::time::sleep(COALESCE).await,
                    () = clock.sleep_until(t) => {}
                }
            }
            None => {
                shared.wake.notified().await;
                tokio::time::sleep(COALESCE).await;
            }
        }
    }
}

/// Writes a kubeconfig with one context per `(context name, server URL)` pair (cluster and user
/// entries named like the context, a dummy token); the first context is current.
///
/// # Errors
///
/// [`SimError::RenderKubeconfig`] or [`SimError::WriteKubeconfig`].
pub fn write_kubeconfig(path: &Path, contexts: &[(&str, &str)]) -> Result<(), SimError> {
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": contexts.first().map(|(c, _)| *c).unwrap_or_default(),
        "clusters": contexts.iter().map(|(name, url)| json!({"name": name, "cluster": {"server": url}})).collect::<Vec<_>>(),
        "users": contexts.iter().map(|(name, _)| json!({"name": name, "user": {"token": "firedrill-embedded"}})).collect::<Vec<_>>(),
        "contexts": contexts.iter().map(|(name, _)| json!({"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}})).collect::<Vec<_>>(),
    });
    let text = serde_yaml::to_string(&doc).map_err(|source| SimError::RenderKubeconfig {
        path: path.to_owned(),
        source,
    })?;
    std::fs::write(path, text).map_err(|source| SimError::WriteKubeconfig {
        path: path.to_owned(),
        source,
    })
}
