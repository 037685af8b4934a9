//! The embedded platform: a complete two-region estate, speaking the real protocols (Kubernetes
//! API, MongoDB wire protocol, Toxiproxy HTTP API, HTTP applications), usable on its own as an
//! in-process fake of those systems.
//!
//! It depends on firedrill's core (the clock) alone and knows nothing of the drill engine or
//! the providers: what a drill needs to reach it is written down as files, as a real estate's
//! operators would hand them over — a platform file, a kubeconfig, one connection-string file
//! per database — and the ways back from its faults are commands in that platform file, which
//! reach the estate through its [`control`] API. So firedrill's providers take exactly the code
//! path against it that they take against a real estate.

pub mod app;
pub mod atlas;
pub mod control;
pub mod kube;
pub mod metrics;
pub mod model;
pub mod mongo;
pub mod prometheus;
pub mod router;
pub mod toxiproxy;
pub mod truth;
pub mod users;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use firedrill_core::clock::Clock;

/// The embedded platform's platform file, shipped inside the binary.
pub const PLATFORM_YAML: &str = include_str!("../../../fixtures/platforms/embedded.yaml");

/// The name the embedded platform file is reported under.
pub const PLATFORM_PATH: &str = "fixtures/platforms/embedded.yaml";

/// Regions of the embedded estate, primary first.
pub const REGIONS: [&str; 2] = ["us-west1", "us-west2"];

/// The namespace firedrill itself runs in (in us-west1), where the platform file's halt
/// marker lives; no drill touches it.
pub const FIREDRILL_NAMESPACE: &str = "firedrill";

/// Namespaces of the embedded estate; each has its own replica set.
pub const NAMESPACES: [&str; 3] = ["prod-1", "prod-2", "prod-3"];

/// The embedded platform's Kubernetes side: one API server per region and the kubeconfig
/// naming them.
#[derive(Debug)]
pub struct KubeEstate {
    /// The clusters, in [`REGIONS`] order.
    pub clusters: Vec<Arc<kube::Cluster>>,
    /// The kubeconfig written for them (removed when the estate is dropped).
    pub kubeconfig: std::path::PathBuf,
}

/// How long the embedded estate may take to boot (its first pods pulled, started and Ready).
pub const BOOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The failover cluster's timing, chosen with [`model::Ranges`] so that a regional failover run
/// the way the reference estate runs it (scale us-west2 up, wait until Ready, switch traffic)
/// lands between 20 and 25 platform minutes: its node pools sit at 0 nodes, so the scale-up
/// waits for the cluster autoscaler (10.5–11.5 min for a node of a cold pool under a
/// region-wide rush), then a cold image pull (60–90 s), start (20–40 s) and readiness (10–20 s).
#[must_use]
pub fn failover_timing() -> kube::TimingModel {
    let s = std::time::Duration::from_secs;
    kube::TimingModel {
        image_pull: (s(60), s(90)),
        container_start: (s(20), s(40)),
        readiness: (s(10), s(20)),
        node_provisioning: (s(630), s(690)),
    }
}

/// `progressDeadlineSeconds` of the failover deployments: a cold scale-up waits about 11
/// minutes for nodes and 2 more for images, past the default 600 s, so a team running a 0-node
/// failover pool raises it; 30 minutes is above the 20–25 minute recovery target, so the
/// deadline still flags a scale-up that is failing, not one that is merely cold.
pub const FAILOVER_PROGRESS_DEADLINE_SECS: u32 = 1_800;

impl KubeEstate {
    /// Starts us-west1 (three zones, one node per namespace pool per zone, 3 storefront
    /// replicas per namespace) and us-west2 (the same pools at 0 nodes, grown by the cluster
    /// autoscaler one node per zone, storefront at 0 replicas), and writes `kubeconfig` with one
    /// context per region, named by `context` (e.g. `|r| format!("kind-{r}")`).
    ///
    /// # Errors
    ///
    /// [`kube::SimError`] when a server cannot start or the kubeconfig cannot be written.
    pub async fn start(
        clock: Clock,
        seed: u64,
        context: &dyn Fn(&str) -> String,
        kubeconfig: std::path::PathBuf,
    ) -> Result<Self, kube::SimError> {
        let mut clusters = Vec::new();
        for (i, region) in REGIONS.iter().enumerate() {
            let primary = i == 0;
            let nodes = usize::from(primary);
            let pools: Vec<(&str, usize)> = NAMESPACES.iter().map(|ns| (*ns, nodes)).collect();
            let mut spec = kube::ClusterSpec::new(*region, clock).seed(seed.wrapping_add(i as u64));
            if primary {
                spec = spec.warm();
            } else {
                spec = spec.timing(failover_timing()).pods_per_node(1);
                for ns in NAMESPACES {
                    spec = spec.autoscale(ns, 1);
                }
            }
            for zone in ["a", "b", "c"] {
                spec = spec.zone(format!("{region}-{zone}"), &pools);
            }
            for ns in NAMESPACES {
                let replicas = if primary { 3 } else { 0 };
                spec = spec
                    .namespace(ns)
                    .deployment(ns, "storefront", replicas, Some(ns));
            }
            if primary {
                // firedrill's own namespace, as deploy/k8s creates it: the emergency halt's
                // ConfigMap lives there.
                spec = spec.namespace(FIREDRILL_NAMESPACE);
            } else {
                spec = spec.progress_deadline(FAILOVER_PROGRESS_DEADLINE_SECS);
            }
            clusters.push(Arc::new(kube::Cluster::start(spec).await?));
        }
        let names: Vec<(String, String)> = clusters
            .iter()
            .map(|c| (context(c.region()), c.url()))
            .collect();
        let pairs: Vec<(&str, &str)> = names
            .iter()
            .map(|(n, u)| (n.as_str(), u.as_str()))
            .collect();
        kube::write_kubeconfig(&kubeconfig, &pairs)?;
        Ok(Self {
            clusters,
            kubeconfig,
        })
    }

    /// The cluster of `region`.
    #[must_use]
    pub fn cluster(&self, region: &str) -> Option<&Arc<kube::Cluster>> {
        self.clusters.iter().find(|c| c.region() == region)
    }

    /// Waits until `region` serves every namespace (its first pods pulled and started), so a
    /// drill starts from an estate in its steady state.
    ///
    /// # Errors
    ///
    /// [`EmbeddedError::Boot`] when it does not within [`BOOT_TIMEOUT`] of platform time.
    pub async fn wait_until_serving(
        &self,
        region: &str,
        clock: Clock,
    ) -> Result<(), EmbeddedError> {
        let health = self.health(region);
        let serving = async {
            let mut tick = clock.interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                if health(None) {
                    return;
                }
            }
        };
        clock
            .timeout(BOOT_TIMEOUT, serving)
            .await
            .map_err(|_| EmbeddedError::Boot {
                region: region.to_owned(),
                waited: BOOT_TIMEOUT,
            })
    }

    /// The application health of `region`: a namespace is served while one of its `storefront`
    /// pods is Ready in the region's cluster (every namespace, for a request of none).
    #[must_use]
    pub fn health(&self, region: &str) -> app::Health {
        let Some(cluster) = self.cluster(region).cloned() else {
            return Arc::new(|_| false);
        };
        Arc::new(move |namespace: Option<&str>| {
            let records = cluster.pod_records();
            let ready = |ns: &str| {
                records.iter().any(|r| {
                    r.namespace == ns
                        && r.deployment.as_deref() == Some("storefront")
                        && r.ready.is_some()
                        && r.deleted.is_none()
                })
            };
            match namespace {
                Some(ns) => ready(ns),
                None => NAMESPACES.iter().all(|ns| ready(ns)),
            }
        })
    }
}

impl Drop for KubeEstate {
    fn drop(&mut self) {
        // Best effort: a leftover kubeconfig in the temp folder names dead ports only.
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

/// A kubeconfig path in the temp folder unique to this process and start.
#[must_use]
pub fn temp_kubeconfig() -> std::path::PathBuf {
    static STARTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    std::env::temp_dir().join(format!("firedrill-kubeconfig-{}-{n}", std::process::id()))
}

/// One embedded replica set and the namespace whose database it is.
pub struct MongoSet {
    /// The namespace (and database) name, e.g. `prod-1`.
    pub namespace: String,
    /// The running set.
    pub set: Arc<mongo::ReplicaSet>,
}

impl std::fmt::Debug for MongoSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoSet")
            .field("namespace", &self.namespace)
            .field("replica_set", &self.set.name())
            .finish_non_exhaustive()
    }
}

impl MongoSet {
    /// `FIREDRILL_MONGO_URI_<NAMESPACE>` (upper case, `-` → `_`).
    #[must_use]
    pub fn env_var(&self) -> String {
        mongo_env_var(&self.namespace)
    }
}

/// The environment variable holding a namespace's connection string.
#[must_use]
pub fn mongo_env_var(namespace: &str) -> String {
    format!(
        "FIREDRILL_MONGO_URI_{}",
        namespace.to_uppercase().replace('-', "_")
    )
}

/// The namespace whose database is an Atlas cluster, served by the embedded Atlas API.
pub const ATLAS_NAMESPACE: &str = "prod-1";

/// The Atlas cluster's regions: (Atlas name, priority, electable members). The third one
/// (Google Cloud's us-central1) holds the tie-breaking member, so that losing either us-west1
/// or us-west2 leaves a majority (Atlas's 2-2-1 layout across three regions). As on Atlas,
/// each member's `region` tag is the Atlas name of its region (the platform file maps them).
pub const ATLAS_REGIONS: [(&str, i64, usize); 3] = [
    ("WESTERN_US", 7, 2),
    ("US_WEST_2", 6, 2),
    ("CENTRAL_US", 5, 1),
];

/// Starts one replica set per namespace. The self-managed ones (prod-2, prod-3) have two
/// us-west1 members (priorities 2 and 1) and one us-west2 member (0.5), so a step-down stays in
/// us-west1 and a flip can raise us-west2; prod-1's is the Atlas cluster's ([`ATLAS_REGIONS`]:
/// two members in WESTERN_US (us-west1) at priority 7, two in US_WEST_2 at 6, one in
/// CENTRAL_US at 5).
///
/// # Errors
///
/// When a set cannot start.
pub async fn start_mongo(clock: Clock, seed: u64) -> Result<Vec<MongoSet>, mongo::Error> {
    let mut sets = Vec::new();
    for (i, ns) in NAMESPACES.iter().enumerate() {
        let members = if *ns == ATLAS_NAMESPACE {
            ATLAS_REGIONS
                .iter()
                .flat_map(|(name, priority, n)| {
                    (0..*n).map(move |_| mongo::MemberSpec::new(*name, *priority as f64))
                })
                .collect()
        } else {
            vec![
                mongo::MemberSpec::new(REGIONS[0], 2.0),
                mongo::MemberSpec::new(REGIONS[0], 1.0),
                mongo::MemberSpec::new(REGIONS[1], 0.5),
            ]
        };
        let spec = mongo::ReplicaSetSpec {
            name: format!("rs-{ns}"),
            members,
            seed: seed.wrapping_add(i as u64),
            timing: mongo::Timing::default(),
        };
        let set = Arc::new(mongo::ReplicaSet::start(spec, clock).await?);
        sets.push(MongoSet {
            namespace: (*ns).to_owned(),
            set,
        });
    }
    Ok(sets)
}

/// A hook run before each scenario (see [`Embedded::settle`]).
pub type Settle =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// Waits (at most [`SETTLE_TIMEOUT`]) until no pod runs on the nodes the autoscaler added to
/// `cluster`, then removes those nodes, as the cluster autoscaler's scale-down does.
async fn remove_empty_autoscaled_nodes(cluster: &kube::Cluster, clock: Clock) {
    let added = autoscaled_nodes(cluster);
    if added.is_empty() {
        return;
    }
    let busy = || {
        let pods = cluster.objects("pods", None);
        added.iter().any(|node| runs_pods(&pods, node))
    };
    let drained = async {
        let mut tick = clock.interval(std::time::Duration::from_secs(5));
        while busy() {
            tick.tick().await;
        }
    };
    if clock.timeout(SETTLE_TIMEOUT, drained).await.is_err() {
        tracing::warn!(
            region = cluster.region(),
            "autoscaled nodes still run pods; keeping them"
        );
        return;
    }
    for name in added {
        if cluster.object("nodes", "", &name).is_some() {
            let _ = cluster.remove_node(&name);
        }
    }
}

/// The nodes the cluster autoscaler added to `cluster` (and that joined).
fn autoscaled_nodes(cluster: &kube::Cluster) -> Vec<String> {
    cluster
        .node_records()
        .into_iter()
        .filter(|n| n.ready.is_some())
        .map(|n| n.name)
        .collect()
}

/// Whether any of `pods` is bound to `node`.
fn runs_pods(pods: &[serde_json::Value], node: &str) -> bool {
    pods.iter()
        .any(|p| p["spec"]["nodeName"].as_str() == Some(node))
}

/// The cluster autoscaler's scale-down for a long-running platform (`sim up`): every minute,
/// nodes it added that have run no pod for [`SCALE_DOWN_UNNEEDED`] are deleted (the real
/// autoscaler's `--scale-down-unneeded-time` default). Runs until the task is aborted.
pub async fn scale_down_loop(clusters: Vec<Arc<kube::Cluster>>, clock: Clock) {
    let mut empty_since: std::collections::BTreeMap<String, firedrill_core::clock::PlatformTime> =
        std::collections::BTreeMap::new();
    let mut tick = clock.interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let now = clock.now();
        for cluster in &clusters {
            let pods = cluster.objects("pods", None);
            for node in autoscaled_nodes(cluster) {
                let key = format!("{}/{node}", cluster.region());
                if runs_pods(&pods, &node) || cluster.object("nodes", "", &node).is_none() {
                    empty_since.remove(&key);
                    continue;
                }
                let since = *empty_since.entry(key.clone()).or_insert(now);
                if now.saturating_since(since) >= SCALE_DOWN_UNNEEDED {
                    let _ = cluster.remove_node(&node);
                    empty_since.remove(&key);
                }
            }
        }
    }
}

/// How long an added node must be empty before [`scale_down_loop`] removes it.
pub const SCALE_DOWN_UNNEEDED: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// How long [`Embedded::settle`] waits for the autoscaled nodes to empty (platform time).
pub const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// The Toxiproxy link from `region`'s application to `namespace`'s database.
#[must_use]
pub fn database_link(region: &str, namespace: &str) -> String {
    format!("{region}-to-{namespace}-db")
}

/// Starts each namespace's primary endpoint and, for every region, a Toxiproxy link to it
/// ([`database_link`]); returns the endpoints and each region's database clients (in
/// [`REGIONS`] order), which reach their database only through their link.
async fn database_links(
    sets: &[MongoSet],
    toxiproxy: &toxiproxy::ToxiproxyServer,
    clock: Clock,
) -> Result<(Vec<router::PrimaryRouter>, Vec<app::Databases>), EmbeddedError> {
    let mut routers = Vec::new();
    let mut databases: Vec<app::Databases> =
        REGIONS.iter().map(|_| app::Databases::new()).collect();
    for m in sets {
        let router = router::PrimaryRouter::start(Arc::clone(&m.set), clock)
            .await
            .map_err(|source| EmbeddedError::Router {
                namespace: m.namespace.clone(),
                source,
            })?;
        for (region, dbs) in REGIONS.iter().zip(&mut databases) {
            let link = toxiproxy
                .create_proxy(
                    &database_link(region, &m.namespace),
                    "127.0.0.1:0",
                    &router.addr.to_string(),
                )
                .await?;
            let uri = format!("mongodb://{link}/?directConnection=true");
            dbs.insert(m.namespace.clone(), app::database_client(&uri).await?);
        }
        routers.push(router);
    }
    Ok((routers, databases))
}

/// Why the embedded platform did not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The applications or the front door.
    #[error(transparent)]
    App(#[from] app::AppError),
    /// A replica set.
    #[error(transparent)]
    Mongo(#[from] mongo::Error),
    /// The Toxiproxy server.
    #[error(transparent)]
    Toxiproxy(#[from] toxiproxy::Error),
    /// A Kubernetes API server or its kubeconfig.
    #[error(transparent)]
    Kube(#[from] kube::SimError),
    /// A namespace's primary endpoint could not listen.
    #[error("cannot start the primary endpoint of {namespace}: {source}")]
    Router {
        /// The namespace.
        namespace: String,
        /// Why.
        source: std::io::Error,
    },
    /// The control API could not listen.
    #[error("cannot start the embedded estate's control API: {0}")]
    Control(std::io::Error),
    /// The Atlas API could not listen.
    #[error("cannot start the embedded Atlas Administration API: {0}")]
    Atlas(std::io::Error),
    /// A region's applications never became Ready.
    #[error(
        "the embedded {region} cluster did not serve every namespace within {} of platform time (hint: a firedrill bug; rerun with --log-format json and report it)",
        firedrill_core::clock::format_duration(*waited)
    )]
    Boot {
        /// The region.
        region: String,
        /// How long it waited.
        waited: std::time::Duration,
    },
}

/// A running embedded platform.
pub struct Embedded {
    /// The applications and front door.
    pub front_door: app::FrontDoor,
    /// One replica set per namespace.
    pub mongo: Vec<MongoSet>,
    /// Each namespace's primary endpoint, behind the applications' database links.
    pub routers: Vec<router::PrimaryRouter>,
    /// The Toxiproxy the front door reaches the regions through.
    pub toxiproxy: toxiproxy::ToxiproxyServer,
    /// The Kubernetes API servers.
    pub kube: KubeEstate,
    /// The control API the platform file's ways back go through.
    pub control: control::Control,
    /// The Atlas Administration API over prod-1's replica set.
    pub atlas: atlas::AtlasApi,
    /// Its credentials: an owner API key, a read-only API key, an owner service account.
    pub atlas_credentials: AtlasCredentials,
    /// The clock it runs on.
    pub clock: Clock,
    /// The seed of its timing model.
    pub seed: u64,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("front_door", &self.front_door)
            .field("toxiproxy", &self.toxiproxy.url())
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl Embedded {
    /// Starts every component on loopback ports of its own.
    ///
    /// # Errors
    ///
    /// When a component cannot start.
    pub async fn start(clock: Clock, seed: u64, listen: SocketAddr) -> Result<Self, EmbeddedError> {
        Self::start_named(clock, seed, listen, &|region| region.to_owned()).await
    }

    /// As [`Embedded::start`], with the kube contexts named by `context`.
    ///
    /// # Errors
    ///
    /// When a component cannot start.
    pub async fn start_named(
        clock: Clock,
        seed: u64,
        listen: SocketAddr,
        context: &dyn Fn(&str) -> String,
    ) -> Result<Self, EmbeddedError> {
        let model = model::Model::new(seed, model::Ranges::default());
        let toxiproxy =
            toxiproxy::ToxiproxyServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), clock, seed)
                .await?;
        let kube = KubeEstate::start(clock, seed, context, temp_kubeconfig()).await?;
        let mongo = start_mongo(clock, seed).await?;
        let (routers, databases) = database_links(&mongo, &toxiproxy, clock).await?;
        let front_door = app::FrontDoor::start(app::FrontDoorSpec {
            regions: REGIONS
                .iter()
                .zip(databases)
                .map(|(r, dbs)| ((*r).to_owned(), kube.health(r), dbs))
                .collect(),
            namespaces: NAMESPACES.iter().map(|n| (*n).to_owned()).collect(),
            active: REGIONS[0].to_owned(),
            listen,
            clock,
            model,
            toxiproxy: Some(&toxiproxy),
        })
        .await?;
        kube.wait_until_serving(REGIONS[0], clock).await?;
        let control = control::Control::start(mongo.iter().map(|m| Arc::clone(&m.set)).collect())
            .await
            .map_err(EmbeddedError::Control)?;
        let atlas_credentials = AtlasCredentials::new();
        let atlas = start_atlas(&mongo, &atlas_credentials, clock, seed).await?;
        Ok(Self {
            front_door,
            routers,
            mongo,
            toxiproxy,
            kube,
            control,
            atlas,
            atlas_credentials,
            clock,
            seed,
        })
    }

    /// Ground truth for the drills run on this platform: when each region went down and came
    /// back up (from its pods' records), when traffic was sent to a region, and when users were
    /// first answered from it.
    #[must_use]
    pub fn ground_truth(&self) -> truth::Source {
        let clusters = self.kube.clusters.clone();
        let switches = self.front_door.switch_log();
        Arc::new(move |since| {
            // Each region's serving intervals once: every switch to it reads them again.
            let spans: Vec<(&str, Vec<truth::Span>)> = clusters
                .iter()
                .map(|c| (c.region(), truth::serving(c, &NAMESPACES)))
                .collect();
            let serving = |region: &str| {
                spans
                    .iter()
                    .find(|(r, _)| *r == region)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_default()
            };
            let mut events: Vec<truth::Event> = spans
                .iter()
                .flat_map(|(region, s)| truth::region_events(region, s, since))
                .collect();
            events.extend(truth::answered_from(&switches(), &serving, since));
            events.sort_by_key(|(_, at)| *at);
            events
        })
    }

    /// Brings the estate back to its steady state between scenarios, as the months between two
    /// quarterly drills do: the cluster autoscaler removes the nodes it added once they are
    /// empty. Without this, a failover cluster scaled up by one scenario would start the next
    /// one with warm nodes, and that scenario's timing would depend on the order of the drills.
    pub fn settle(&self) -> Settle {
        let clusters = self.kube.clusters.clone();
        let clock = self.clock;
        Arc::new(move || {
            let clusters = clusters.clone();
            Box::pin(async move {
                for cluster in clusters {
                    remove_empty_autoscaled_nodes(&cluster, clock).await;
                }
            })
        })
    }

    /// The endpoints, as the environment variables the platform file interpolates.
    #[must_use]
    pub fn env(&self) -> Vec<(String, String)> {
        let bin = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "firedrill".to_owned());
        let mut env = vec![
            ("FIREDRILL_BIN".to_owned(), bin),
            (
                "FIREDRILL_FRONT_DOOR_URL".to_owned(),
                self.front_door.url.clone(),
            ),
            ("FIREDRILL_SEED".to_owned(), self.seed.to_string()),
            ("FIREDRILL_TOXIPROXY_URL".to_owned(), self.toxiproxy.url()),
            (
                "FIREDRILL_KUBECONFIG".to_owned(),
                self.kube.kubeconfig.display().to_string(),
            ),
            (
                "FIREDRILL_TIME_SCALE".to_owned(),
                self.clock.scale().to_string(),
            ),
            (
                "FIREDRILL_SIM_CONTROL_URL".to_owned(),
                self.control.url.clone(),
            ),
        ];
        env.extend(
            self.mongo
                .iter()
                .map(|m| (m.env_var(), m.set.connection_string())),
        );
        env.push(("FIREDRILL_ATLAS_URL".to_owned(), self.atlas.url.clone()));
        env.push((
            "FIREDRILL_ATLAS_PROJECT_ID".to_owned(),
            self.atlas.project.clone(),
        ));
        env.extend(self.atlas_credentials.env());
        env
    }

    /// Where this estate's `/metrics` are served (`host:port`): the front door, then each
    /// region's application.
    #[must_use]
    pub fn metrics_targets(&self) -> Vec<String> {
        std::iter::once(&self.front_door.url)
            .chain(self.front_door.applications().values())
            .map(|url| url.trim_start_matches("http://").to_owned())
            .collect()
    }

    /// The platform file's text with every endpoint filled in.
    #[must_use]
    pub fn platform_text(&self) -> String {
        fill(PLATFORM_YAML, &self.env())
    }

    /// Writes what a drill needs to reach this estate, as a real estate's operators would hand
    /// it over: `{prefix}.platform.yaml`, naming this estate's kubeconfig, and one file per
    /// database holding its connection string (`{prefix}.{namespace}.uri`, mode 0600), which
    /// the platform file reads. Returns the platform file's path.
    ///
    /// # Errors
    ///
    /// When a file cannot be written.
    pub fn write_platform(&self, prefix: &Path) -> std::io::Result<PathBuf> {
        self.write_platform_with(prefix, None)
    }

    /// As [`Embedded::write_platform`]; with `prometheus` (its base URL), the platform file
    /// names that Prometheus, and its guards are measured by it (see [`prometheus`]), and
    /// `{prefix}.prometheus.yaml` is written beside it: a Prometheus configuration scraping
    /// this estate's [`Embedded::metrics_targets`].
    ///
    /// # Errors
    ///
    /// When a file cannot be written.
    pub fn write_platform_with(
        &self,
        prefix: &Path,
        prometheus: Option<&str>,
    ) -> std::io::Result<PathBuf> {
        let platform_file = PathBuf::from(format!("{}.platform.yaml", prefix.display()));
        let mut text = self.platform_text();
        if let Some(url) = prometheus {
            text = prometheus::with_prometheus(&text, url, self.clock.scale());
            std::fs::write(
                format!("{}.prometheus.yaml", prefix.display()),
                prometheus::scrape_config(&self.metrics_targets(), self.clock.scale()),
            )?;
        }
        for m in &self.mongo {
            let uri_file = PathBuf::from(format!("{}.{}.uri", prefix.display(), m.namespace));
            write_private(&uri_file, &m.set.connection_string())?;
            text = text.replace(
                &format!("uri: {{ env: {} }}", m.env_var()),
                &format!("uri: {{ file: \"{}\" }}", uri_file.display()),
            );
        }
        for (var, value) in self.atlas_credentials.env() {
            let file = PathBuf::from(format!(
                "{}.{}",
                prefix.display(),
                var.trim_start_matches("FIREDRILL_")
                    .to_lowercase()
                    .replace('_', "-")
            ));
            write_private(&file, &value)?;
            text = text.replace(
                &format!("{{ env: {var} }}"),
                &format!("{{ file: \"{}\" }}", file.display()),
            );
        }
        text = text.replacen(
            "\nregions:",
            &format!(
                "\nkubeconfig: {}\n\nregions:",
                self.kube.kubeconfig.display()
            ),
            1,
        );
        std::fs::write(&platform_file, text)?;
        Ok(platform_file)
    }
}

/// The embedded Atlas API's credentials, made up at start (never the same twice).
#[derive(Clone)]
pub struct AtlasCredentials {
    /// An API key with the Project Owner role: (public, private).
    pub owner: (String, String),
    /// An API key with the Project Read Only role: (public, private).
    pub read_only: (String, String),
    /// A service account with the Project Owner role: (client id, secret).
    pub service_account: (String, String),
}

impl std::fmt::Debug for AtlasCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtlasCredentials(<redacted>)")
    }
}

impl AtlasCredentials {
    fn new() -> Self {
        fn hex(n: usize) -> String {
            use rand::Rng as _;
            let mut rng = rand::rng();
            (0..n)
                .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
                .collect()
        }
        let private = || format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12));
        let owner = (hex(8), private());
        let read_only = (hex(8), private());
        let service_account = (
            format!("mdb_sa_id_{}", hex(24)),
            format!("mdb_sa_sk_{}", hex(32)),
        );
        Self {
            owner,
            read_only,
            service_account,
        }
    }

    /// The environment variables the platform file reads them from.
    #[must_use]
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("FIREDRILL_ATLAS_PUBLIC_KEY", &self.owner.0),
            ("FIREDRILL_ATLAS_PRIVATE_KEY", &self.owner.1),
            ("FIREDRILL_ATLAS_READONLY_PUBLIC_KEY", &self.read_only.0),
            ("FIREDRILL_ATLAS_READONLY_PRIVATE_KEY", &self.read_only.1),
            ("FIREDRILL_ATLAS_CLIENT_ID", &self.service_account.0),
            ("FIREDRILL_ATLAS_CLIENT_SECRET", &self.service_account.1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }
}

/// Serves [`ATLAS_NAMESPACE`]'s replica set as an Atlas cluster of the same name.
async fn start_atlas(
    mongo: &[MongoSet],
    credentials: &AtlasCredentials,
    clock: Clock,
    seed: u64,
) -> Result<atlas::AtlasApi, EmbeddedError> {
    let clusters = mongo
        .iter()
        .filter(|m| m.namespace == ATLAS_NAMESPACE)
        .map(|m| atlas::ClusterSpec {
            name: m.namespace.clone(),
            set: Arc::clone(&m.set),
            provider: "GCP".to_owned(),
            regions: ATLAS_REGIONS
                .iter()
                .map(|(name, priority, _)| atlas::RegionSpec {
                    atlas: (*name).to_owned(),
                    tag: (*name).to_owned(),
                    priority: *priority,
                })
                .collect(),
        })
        .collect();
    let key = |(public, private): &(String, String), role: &str| atlas::ApiKey {
        public: public.clone(),
        private: private.clone(),
        roles: vec![role.to_owned()],
    };
    let spec = atlas::AtlasSpec {
        project: atlas::object_id(seed, 0),
        clusters,
        keys: vec![
            key(&credentials.owner, "GROUP_OWNER"),
            key(&credentials.read_only, "GROUP_READ_ONLY"),
        ],
        accounts: vec![atlas::ServiceAccount {
            client_id: credentials.service_account.0.clone(),
            secret: credentials.service_account.1.clone(),
            roles: vec!["GROUP_OWNER".to_owned()],
        }],
        timing: atlas::Timing::default(),
        limits: atlas::Limits::default(),
        seed,
    };
    atlas::AtlasApi::start(spec, clock, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(EmbeddedError::Atlas)
}

/// `template` with every `${NAME}` (and `${NAME:-default}` written as the embedded platform
/// file writes it) of `env` filled in.
fn fill(template: &str, env: &[(String, String)]) -> String {
    env.iter().fold(template.to_owned(), |text, (name, value)| {
        text.replace(&format!("${{{name}}}"), value)
            .replace(&format!("${{{name}:-1}}"), value)
    })
}

/// Writes `text` to `path` readable by its owner only (a connection string is a secret).
///
/// # Errors
///
/// When the file cannot be written.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}
