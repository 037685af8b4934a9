//! The platform file: one estate described in YAML (regions, clusters, namespaces, databases,
//! Toxiproxy links, the traffic switch, probes, targets, safety limits, the Prometheus drills
//! query and the guards that stop them).
//!
//! Loading is pure apart from reading the file and the environment: [`load`] interpolates
//! `${ENV}`, parses with unknown keys rejected, then [`Platform::validate`] checks the model;
//! every problem names `file:line:column`. Nothing here connects to anything.

mod load;
mod placeholder;
mod require;
mod safety;
mod stop;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use firedrill_core::target::Target;

pub use load::{Locator, load, load_str};
pub use placeholder::{PLACEHOLDER, placeholder, placeholders};
pub use require::Unmet;
pub use safety::{
    Blackout, Bound, DEFAULT_HALT_NAME, Days, Freeze, HaltConfigMap, HaltMarker, InEffect,
    TimeOfDay, Weekly, Zone,
};
pub use stop::{
    Armed, BasicAuth, GUARD_TAG_PREFIX, Guard, GuardSource, NoData, Prometheus, PrometheusAuth,
};

/// One estate.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Platform {
    /// A short name used in reports and metrics labels (e.g. `production`, `embedded`).
    pub name: String,
    /// Regions by name. Optional: a platform of probes and command faults alone (a ported
    /// Chaos Toolkit experiment) has none; a drill whose steps need a primary or a failover
    /// region is refused against it ([`Platform::unmet`]).
    #[serde(default)]
    pub regions: BTreeMap<String, Region>,
    /// Namespaces by name.
    #[serde(default)]
    pub namespaces: BTreeMap<String, Namespace>,
    /// MongoDB replica sets by name.
    #[serde(default)]
    pub databases: BTreeMap<String, Database>,
    /// The Toxiproxy server and its named links.
    #[serde(default)]
    pub toxiproxy: Option<Toxiproxy>,
    /// How traffic is switched between regions.
    #[serde(default)]
    pub traffic: Option<Traffic>,
    /// Named commands a drill may run (e.g. a Terraform apply moving the Atlas primary).
    #[serde(default)]
    pub commands: BTreeMap<String, Command>,
    /// Named faults injected by a command, each with the command that undoes it.
    #[serde(default)]
    pub faults: BTreeMap<String, CommandFault>,
    /// Named probes.
    #[serde(default)]
    pub probes: BTreeMap<String, Probe>,
    /// Targets for named phases (e.g. `failover: 20m..25m`).
    #[serde(default)]
    pub targets: BTreeMap<String, Target>,
    /// What drills may touch.
    #[serde(default)]
    pub safety: Safety,
    /// The Prometheus guards and SLO assertions query.
    #[serde(default)]
    pub prometheus: Option<Prometheus>,
    /// Stop conditions by name: a guard that trips aborts the run and undoes everything.
    #[serde(default)]
    pub guards: BTreeMap<String, Guard>,
    /// The kubeconfig holding the regions' contexts (relative to this file); without it,
    /// `FIREDRILL_KUBECONFIG`, `KUBECONFIG`, then `~/.kube/config`.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Platform seconds per wall second: 1 for a real estate; the embedded platform writes its
    /// own (it runs compressed).
    #[serde(default = "default_time_scale")]
    pub time_scale: f64,
    /// Where it was loaded from, and how to find a key's position in it.
    #[serde(skip)]
    pub source: Source,
}

fn default_time_scale() -> f64 {
    1.0
}

/// Where a platform came from.
#[derive(Clone, Debug, Default)]
pub struct Source {
    /// The file as the user named it.
    pub path: PathBuf,
    /// Positions of keys and values in it.
    pub locator: Locator,
}

/// The role of a region in a failover.
#[derive(
    Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Serves traffic normally.
    Primary,
    /// The passive region traffic fails over to.
    Failover,
}

/// A region and its Kubernetes cluster.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Region {
    /// Primary or failover.
    pub role: Role,
    /// The kube context of this region's cluster.
    #[serde(default)]
    pub kube_context: Option<String>,
    /// Zone names (`topology.kubernetes.io/zone` values).
    #[serde(default)]
    pub zones: Vec<String>,
}

/// A namespace and what runs in it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Namespace {
    /// Services (deployments) by name.
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    /// The database (a key of `databases`) this namespace's application uses.
    #[serde(default)]
    pub database: Option<String>,
}

/// A service of a namespace.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Service {
    /// Replicas to run in the failover region when it is scaled up.
    pub failover_replicas: u32,
}

/// A MongoDB replica set.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Database {
    /// The replica set name (`replSetName`).
    pub replica_set: String,
    /// Where the connection string comes from; never inline, it may hold a password.
    pub uri: SecretRef,
    /// Member `host:port` → region, when the members carry no region tag.
    #[serde(default)]
    pub members: BTreeMap<String, String>,
    /// How the primary-kill step takes a member down and brings it back. Without it, only the
    /// embedded platform running in the drill's own process can kill (and restart) a member.
    #[serde(default)]
    pub kill: Option<MemberKill>,
    /// The Atlas cluster this replica set is, when MongoDB Atlas manages it. An Atlas-managed
    /// database is driven through the Atlas Administration API (outage simulation, test
    /// failover, region priorities); Atlas refuses `replSetStepDown`, `replSetFreeze` and
    /// `replSetReconfig`, so the steps that use them are refused for it.
    #[serde(default)]
    pub atlas: Option<Atlas>,
}

/// Which way a database is managed, and so which steps can act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Management {
    /// A replica set firedrill may reconfigure, step down, freeze and kill.
    SelfManaged,
    /// An Atlas cluster: faults go through the Atlas Administration API.
    Atlas,
}

impl Database {
    /// How the database is managed.
    #[must_use]
    pub fn management(&self) -> Management {
        if self.atlas.is_some() {
            Management::Atlas
        } else {
            Management::SelfManaged
        }
    }
}

/// A MongoDB Atlas cluster and how to reach its Administration API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Atlas {
    /// The Administration API's base URL (`https://cloud.mongodb.com`; the embedded platform
    /// serves its own).
    #[serde(default = "default_atlas_url")]
    pub url: String,
    /// The project (group) id: 24 hexadecimal digits.
    pub project_id: String,
    /// The cluster's name in the project.
    pub cluster: String,
    /// A programmatic API key (HTTP digest): both halves from the environment or a file.
    #[serde(default)]
    pub api_key: Option<AtlasApiKey>,
    /// A service account (OAuth 2.0 client credentials): both halves from the environment or
    /// a file.
    #[serde(default)]
    pub service_account: Option<AtlasServiceAccount>,
    /// The cloud provider of the cluster's regions (`GCP`, `AWS` or `AZURE`).
    #[serde(default = "default_atlas_provider")]
    pub provider: String,
    /// Platform region → its Atlas name (`us-west1: WESTERN_US`); Atlas names regions its own
    /// way.
    #[serde(default)]
    pub regions: BTreeMap<String, String>,
    /// How long a change of region priorities may keep the cluster `UPDATING` (platform time).
    #[serde(default = "default_atlas_update_within", with = "humantime_serde")]
    pub update_within: Duration,
    /// How long an outage simulation may take to start or to end (platform time).
    #[serde(default = "default_atlas_simulation_within", with = "humantime_serde")]
    pub simulation_within: Duration,
}

fn default_atlas_url() -> String {
    "https://cloud.mongodb.com".to_owned()
}
fn default_atlas_provider() -> String {
    "GCP".to_owned()
}
fn default_atlas_update_within() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_atlas_simulation_within() -> Duration {
    Duration::from_secs(20 * 60)
}

/// A programmatic API key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AtlasApiKey {
    /// The public key (the digest user name).
    pub public_key: SecretRef,
    /// The private key (the digest password).
    pub private_key: SecretRef,
}

/// A service account's client credentials.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AtlasServiceAccount {
    /// The client id.
    pub client_id: SecretRef,
    /// The client secret.
    pub client_secret: SecretRef,
}

/// How members of a replica set are killed, each way with its way back. For a member, the
/// first that names it wins: its Toxiproxy link, then its pod, then `shutdown` + `restart`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MemberKill {
    /// Member `host:port` (as the replica set config names it) → the Toxiproxy link (a key
    /// of `toxiproxy.links`) every client and member reaches it through. The kill adds a
    /// `timeout` toxic that holds all its traffic; the undo removes exactly that toxic.
    #[serde(default)]
    pub links: BTreeMap<String, String>,
    /// Members that run as pods of a StatefulSet: the kill deletes the pod, the undo waits
    /// until the StatefulSet has re-created it and it is Ready.
    #[serde(default)]
    pub pods: Option<MemberPods>,
    /// A command (a key of `commands`) that starts a member again after a `shutdown` kill;
    /// `{host}` in its arguments is the member's `host:port`. Without it (and without a link
    /// or a pod for the member) a kill is refused at preflight: it would have no way back.
    #[serde(default)]
    pub restart: Option<String>,
}

/// The pods members run as.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MemberPods {
    /// The kube context of the cluster they run in (must be in `safety.allow.kube-contexts`).
    pub context: String,
    /// Their namespace.
    pub namespace: String,
    /// Member `host:port` → pod name.
    pub members: BTreeMap<String, String>,
    /// How long the undo waits for the re-created pod to be Ready (platform time).
    #[serde(default = "default_pod_ready_within", with = "humantime_serde")]
    pub ready_within: Duration,
}

fn default_pod_ready_within() -> Duration {
    Duration::from_secs(5 * 60)
}

/// A secret taken from the environment or a file, never written in the platform file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecretRef {
    /// An environment variable holding the secret.
    #[serde(default)]
    pub env: Option<String>,
    /// A file holding the secret (trailing newline removed).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// A secret value; prints as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that needs it (a driver's connect call).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A secret reference that cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is not set.
    #[error(
        "environment variable {0} is not set (hint: export it, or point `file:` at a file holding the value)"
    )]
    MissingEnv(String),
    /// The file cannot be read.
    #[error("cannot read secret file {path}: {source} (hint: check the path and its permissions)")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Neither or both of `env` and `file`.
    #[error("a secret needs exactly one of `env:` or `file:`")]
    Shape,
}

impl SecretRef {
    /// Reads the secret. `base` is the platform file's folder, for relative `file:` paths.
    ///
    /// # Errors
    ///
    /// [`SecretError`] naming the variable or file.
    pub fn resolve(&self, base: &Path) -> Result<Secret, SecretError> {
        match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var)
                .map(Secret)
                .map_err(|_| SecretError::MissingEnv(var.clone())),
            (None, Some(file)) => {
                let path = base.join(file);
                std::fs::read_to_string(&path)
                    .map(|s| Secret(s.trim_end_matches(['\n', '\r']).to_owned()))
                    .map_err(|source| SecretError::File { path, source })
            }
            _ => Err(SecretError::Shape),
        }
    }
}

/// The Toxiproxy server.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Toxiproxy {
    /// Its HTTP API, e.g. `http://127.0.0.1:8474`.
    pub url: String,
    /// Whether a drill may call `POST /reset` (it wipes everyone's toxics). Default: no.
    #[serde(default)]
    pub allow_reset: bool,
    /// Named links.
    #[serde(default)]
    pub links: BTreeMap<String, Link>,
}

/// A network link through a Toxiproxy proxy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Link {
    /// The proxy's name in Toxiproxy.
    pub proxy: String,
    /// Listen address, when firedrill should create the proxy.
    #[serde(default)]
    pub listen: Option<String>,
    /// Upstream address, when firedrill should create the proxy.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Create the proxy at setup when it is missing.
    #[serde(default)]
    pub create: bool,
}

/// How traffic moves between regions.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Traffic {
    /// The command that switches traffic; `{region}` is replaced by the target region.
    pub switch: Command,
    /// The probe (a key of `probes`) that tells which region serves traffic.
    pub probe: String,
}

/// A command firedrill may run.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Command {
    /// Program and arguments (no shell).
    pub run: Vec<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory, relative to the platform file.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Deadline (platform time).
    #[serde(default = "default_command_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_command_timeout() -> Duration {
    Duration::from_secs(30 * 60)
}

/// A fault injected by running a command, undone by another.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CommandFault {
    /// What it does, for plans and reports.
    pub description: String,
    /// Injects the fault.
    pub inject: Command,
    /// Undoes it; must be safe to run twice.
    pub undo: Command,
}

/// An HTTP probe.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Probe {
    /// The URL to GET.
    pub url: String,
    /// Time between requests (platform time).
    #[serde(default = "default_probe_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Per-request deadline (platform time).
    #[serde(default = "default_probe_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Status codes that count as good.
    #[serde(default = "default_expect_status")]
    pub expect_status: Vec<u16>,
    /// Text the body must contain to count as good.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// The response header naming the region that served the answer.
    #[serde(default)]
    pub region_header: Option<String>,
    /// Consecutive good answers after which the service counts as answering.
    #[serde(default = "default_stable_after")]
    pub stable_after: u32,
    /// The availability objective of what it probes, e.g. `99%`: its error budget (1%) is what
    /// "the probe's error rate is within its SLO" allows.
    #[serde(default)]
    pub slo: Option<String>,
}

impl Probe {
    /// The SLO as a percentage, when it is one (`99.9%` → 99.9).
    #[must_use]
    pub fn slo_percent(&self) -> Option<f64> {
        self.slo
            .as_deref()?
            .trim()
            .strip_suffix('%')?
            .trim()
            .parse()
            .ok()
            .filter(|p: &f64| *p > 0.0 && *p <= 100.0)
    }
}

fn default_probe_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_probe_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_expect_status() -> Vec<u16> {
    vec![200]
}
fn default_stable_after() -> u32 {
    3
}

/// What drills may touch (safety rule 6), and when they may not run at all (rule 9).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Safety {
    /// Allow-lists.
    #[serde(default)]
    pub allow: Allow,
    /// Where the emergency halt's marker lives (`firedrill halt` / `firedrill resume`).
    #[serde(default)]
    pub halt: Option<HaltMarker>,
    /// When no drill may start (weekly windows, dated freezes).
    #[serde(default)]
    pub blackout: Option<Blackout>,
}

/// Allow-lists; anything not listed is refused.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Allow {
    /// Kube contexts.
    #[serde(default)]
    pub kube_contexts: Vec<String>,
    /// Namespaces.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Replica set names.
    #[serde(default)]
    pub replica_sets: Vec<String>,
}

impl Platform {
    /// How often a running drill looks at the halt marker (platform time): `safety.halt.interval`,
    /// else the shortest probe interval, else 5s.
    #[must_use]
    pub fn halt_interval(&self) -> Duration {
        self.safety
            .halt
            .as_ref()
            .and_then(|h| h.interval)
            .or_else(|| self.probes.values().map(|p| p.interval).min())
            .unwrap_or_else(default_probe_interval)
    }

    /// The folder relative paths in the file are resolved against.
    #[must_use]
    pub fn base_dir(&self) -> PathBuf {
        self.source
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// The location of a dotted key path (`regions.us-west1.zones`), for problems.
    #[must_use]
    pub fn locate(&self, path: &str) -> firedrill_core::diagnostic::Location {
        self.source.locator.locate(&self.source.path, path)
    }

    /// Names of the regions.
    #[must_use]
    pub fn region_names(&self) -> Vec<&str> {
        self.regions.keys().map(String::as_str).collect()
    }

    /// The region that normally serves traffic (the first primary).
    #[must_use]
    pub fn primary_region(&self) -> Option<&str> {
        self.region_with(Role::Primary)
    }

    /// The first region with `role`.
    #[must_use]
    pub fn region_with(&self, role: Role) -> Option<&str> {
        self.regions
            .iter()
            .find(|(_, r)| r.role == role)
            .map(|(n, _)| n.as_str())
    }

    /// Every zone with its region.
    pub fn zones(&self) -> impl Iterator<Item = (&str, &str)> {
        self.regions
            .iter()
            .flat_map(|(region, r)| r.zones.iter().map(move |z| (z.as_str(), region.as_str())))
    }
}
