//! The Kubernetes provider: one connection per region's kube context, the zone, region and pod
//! faults (taint, cordon and evict, delete, scale to zero, pod kill), the failover scale-up and
//! its readiness watch, the in-cluster traffic switch, the snapshot that proves a namespace
//! was left alone, and the checks preflight runs before anything is injected.
//!
//! Every connection is built from the kubeconfig the platform names (else `FIREDRILL_KUBECONFIG`,
//! `KUBECONFIG`, `~/.kube/config`; see [`kubeconfig_path`]) and only for a context listed in
//! `safety.allow.kube-contexts`. Every call is retried with a bounded backoff in platform time
//! while the API server is unreachable ([`Backoff`]); then it fails with
//! [`KubeError::Unreachable`] and the drill aborts and undoes. Undos are stored by reference
//! (context, object names, what to restore), so `firedrill recover` can take a fault back from
//! another process.

mod faults;
mod preflight;
mod retry;
mod snapshot;
mod switch;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use ::kube::config::{KubeConfigOptions, Kubeconfig};
use serde::{Deserialize, Serialize};

use firedrill_core::clock::Clock;
use firedrill_platform::Platform;

pub use faults::{Kill, services};
pub use preflight::{Requirement, preflight};
pub use retry::Backoff;
pub use snapshot::{NamespaceSnapshot, PodState};
pub use switch::{Switch, SwitchKind};
pub use watch::Readiness;

/// The NoExecute taint a zone outage puts on every node of the zone.
pub const ZONE_OUTAGE_TAINT: &str = "firedrill.dev/zone-outage";
/// How long the undo of a scale waits (platform time) for the deployments to run their
/// restored counts, Ready: Kubernetes' own default `progressDeadlineSeconds`.
pub const SCALED_BACK_WITHIN: Duration = Duration::from_secs(600);
/// The node label naming a node's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// A Kubernetes call or check that failed; names the context and the object.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The context is not in the allow-list.
    #[error(
        "kube context \"{context}\" is not allowed (allowed: {allowed}) (hint: add it to safety.allow.kube-contexts in the platform file)"
    )]
    NotAllowed {
        /// The context.
        context: String,
        /// The allow-list, formatted.
        allowed: String,
    },
    /// The region names no context.
    #[error(
        "region \"{region}\" has no kube-context (hint: set regions.{region}.kube-context in the platform file)"
    )]
    NoContext {
        /// The region.
        region: String,
    },
    /// The kubeconfig cannot be read.
    #[error(
        "cannot read the kubeconfig {path}: {message} (hint: set FIREDRILL_KUBECONFIG or KUBECONFIG)"
    )]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The kubeconfig has no usable context of that name.
    #[error(
        "kube context \"{context}\" cannot be used from {path}: {message} (hint: `kubectl config get-contexts` lists the known ones)"
    )]
    Context {
        /// The context.
        context: String,
        /// The kubeconfig.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// RBAC refused a verb.
    #[error(
        "[{}] forbidden: cannot {} {} \"{}\" in namespace \"{}\": {message} (hint: grant the verb `{}` on {} to firedrill's user)",
        call.context, call.verb, call.kind, call.object, call.namespace, call.verb, call.kind
    )]
    Forbidden {
        /// The refused call.
        call: Box<ObjectCall>,
        /// The server's message.
        message: String,
    },
    /// Any other API failure.
    #[error(
        "[{}] {} {} \"{}\" in namespace \"{}\" failed: {message} (hint: is the API server reachable and the object there?)",
        call.context, call.verb, call.kind, call.object, call.namespace
    )]
    Api {
        /// The failed call.
        call: Box<ObjectCall>,
        /// What the client said.
        message: String,
    },
    /// A zone without nodes.
    #[error(
        "[{context}] zone \"{zone}\" has no nodes (label {ZONE_LABEL}) (hint: check the zone name against `kubectl get nodes -L {ZONE_LABEL}`)"
    )]
    EmptyZone {
        /// The context.
        context: String,
        /// The zone.
        zone: String,
    },
    /// Evictions refused by a PodDisruptionBudget.
    #[error(
        "[{context}] eviction blocked by a PodDisruptionBudget for {pods} (hint: the zone's nodes stay cordoned; undo uncordons them)"
    )]
    EvictionBlocked {
        /// The context.
        context: String,
        /// `namespace/pod` of each blocked pod.
        pods: String,
    },
    /// The API server did not answer (connection refused or reset, 5xx) through every retry.
    #[error(
        "[{}] the API server is unreachable: {} {} \"{}\" in namespace \"{}\" failed {attempts} times over {waited} (platform time): {message} (hint: the drill aborts and undoes what it can; once the API server answers again, `firedrill recover` applies any undo left in the ledger)",
        call.context, call.verb, call.kind, call.object, call.namespace
    )]
    Unreachable {
        /// The call that kept failing.
        call: Box<ObjectCall>,
        /// How many times it was tried.
        attempts: u32,
        /// How long the retries took, formatted.
        waited: String,
        /// The last transport error.
        message: String,
    },
    /// No pod matched a pod kill's selector.
    #[error(
        "[{context}] no pod matches \"{selector}\" in namespace \"{namespace}\" (hint: check the selector with `kubectl get pods -n {namespace} -l {selector}`)"
    )]
    NoPods {
        /// The context.
        context: String,
        /// The namespace.
        namespace: String,
        /// The label selector.
        selector: String,
    },
    /// A traffic switch's object lacks what it should change.
    #[error(
        "[{}] {} \"{}/{}\" cannot be switched: {problem} (hint: {hint})",
        call.context, call.kind, call.namespace, call.object
    )]
    Switch {
        /// The object (`kind` is `Service`, `Ingress` or `ConfigMap`).
        call: Box<ObjectCall>,
        /// What is wrong.
        problem: String,
        /// What to do.
        hint: &'static str,
    },
    /// Replaced pods were not Ready again in time (the undo of a pod kill or pod delete).
    #[error(
        "[{context}] {namespace} pods \"{selector}\": {ready} Ready of the {wanted} before the fault, after waiting {within} (hint: check the deployment's events; `firedrill recover` checks again)"
    )]
    NotReplaced {
        /// The context.
        context: String,
        /// The namespace.
        namespace: String,
        /// The label selector ("" for every pod).
        selector: String,
        /// Ready pods now.
        ready: usize,
        /// Ready pods before the fault.
        wanted: usize,
        /// The deadline, formatted.
        within: String,
    },
    /// Scaled-back deployments not rolled out in time (the undo of a scale).
    #[error(
        "[{context}] scaled back, but not settled within {within}: {waiting} (hint: check the deployment's events with `kubectl describe deployment`; the undo stays in the ledger, and `firedrill recover` checks again)"
    )]
    NotRolledOut {
        /// The context.
        context: String,
        /// The deadline, formatted.
        within: String,
        /// The deployment still settling and its last state.
        waiting: String,
    },
    /// Pods not Ready in time.
    #[error("[{context}] pods not Ready within {within}: {waiting}")]
    NotReady {
        /// The context.
        context: String,
        /// The deadline, formatted.
        within: String,
        /// What was still waiting.
        waiting: String,
    },
}

/// The call an error names: context, namespace, kind, object and RBAC verb.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectCall {
    /// The context.
    pub context: String,
    /// The namespace (empty for cluster-scoped kinds).
    pub namespace: String,
    /// The resource (`nodes`, `pods/eviction`, `deployments/scale`).
    pub kind: String,
    /// The object name (empty for lists).
    pub object: String,
    /// The RBAC verb.
    pub verb: String,
}

/// Which call an error comes from, to name it.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The context.
    pub context: &'a str,
    /// The namespace ("" for cluster-scoped).
    pub namespace: &'a str,
    /// The resource.
    pub kind: &'a str,
    /// The object.
    pub object: &'a str,
    /// The RBAC verb.
    pub verb: &'a str,
}

impl Call<'_> {
    fn owned(&self) -> ObjectCall {
        ObjectCall {
            context: self.context.to_owned(),
            namespace: self.namespace.to_owned(),
            kind: self.kind.to_owned(),
            object: self.object.to_owned(),
            verb: self.verb.to_owned(),
        }
    }

    fn error(&self, e: &::kube::Error) -> KubeError {
        let (forbidden, message) = match e {
            ::kube::Error::Api(status) => (status.code == 403, status.message.clone()),
            other => (false, other.to_string()),
        };
        let call = Box::new(self.owned());
        if forbidden {
            KubeError::Forbidden { call, message }
        } else {
            KubeError::Api { call, message }
        }
    }
}

/// The kubeconfig `platform` is reached with: its `kubeconfig:` (relative to the platform file),
/// else `FIREDRILL_KUBECONFIG`, else `KUBECONFIG`, else `~/.kube/config`.
#[must_use]
pub fn kubeconfig_path(platform: &Platform) -> PathBuf {
    if let Some(path) = &platform.kubeconfig {
        return platform.base_dir().join(path);
    }
    std::env::var_os("FIREDRILL_KUBECONFIG")
        .or_else(|| std::env::var_os("KUBECONFIG"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".kube/config")
        })
}

/// The kube context of `region`.
///
/// # Errors
///
/// [`KubeError::NoContext`].
pub fn region_context<'a>(platform: &'a Platform, region: &str) -> Result<&'a str, KubeError> {
    platform
        .regions
        .get(region)
        .and_then(|r| r.kube_context.as_deref())
        .ok_or_else(|| KubeError::NoContext {
            region: region.to_owned(),
        })
}

/// The region a zone belongs to.
#[must_use]
pub fn zone_region<'a>(platform: &'a Platform, zone: &str) -> Option<&'a str> {
    platform
        .regions
        .iter()
        .find(|(_, r)| r.zones.iter().any(|z| z == zone))
        .map(|(name, _)| name.as_str())
}

/// Refuses a context not in `safety.allow.kube-contexts`.
///
/// # Errors
///
/// [`KubeError::NotAllowed`].
pub fn check_allowed(platform: &Platform, context: &str) -> Result<(), KubeError> {
    let allowed = &platform.safety.allow.kube_contexts;
    if allowed.iter().any(|c| c == context) {
        Ok(())
    } else {
        Err(KubeError::NotAllowed {
            context: context.to_owned(),
            allowed: if allowed.is_empty() {
                "none".to_owned()
            } else {
                allowed.join(", ")
            },
        })
    }
}

/// A connection to one allowed kube context: its client, and the clock and backoff its calls
/// retry with. Cheap to clone.
#[derive(Clone)]
pub struct Conn {
    client: ::kube::Client,
    context: String,
    clock: Clock,
    backoff: Backoff,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Connects to `context` (allowed contexts only). Client-side retries are off, so a refusal
    /// (a PodDisruptionBudget's 429) surfaces at once; transport errors are retried by
    /// [`Backoff`] in platform time (the clock runs at the platform's time scale).
    ///
    /// # Errors
    ///
    /// [`KubeError::NotAllowed`], [`KubeError::Kubeconfig`] or [`KubeError::Context`].
    pub async fn connect(platform: &Platform, context: &str) -> Result<Self, KubeError> {
        check_allowed(platform, context)?;
        let path = kubeconfig_path(platform);
        let kubeconfig = Kubeconfig::read_from(&path).map_err(|e| KubeError::Kubeconfig {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let context_error = |message: String| KubeError::Context {
            context: context.to_owned(),
            path: path.clone(),
            message,
        };
        if !kubeconfig.contexts.iter().any(|c| c.name == context) {
            return Err(context_error(
                "no such context in the kubeconfig".to_owned(),
            ));
        }
        let options = KubeConfigOptions {
            context: Some(context.to_owned()),
            ..Default::default()
        };
        let mut config = ::kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| context_error(e.to_string()))?;
        config.default_retry = false;
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(Duration::from_secs(30));
        let client = ::kube::Client::try_from(config).map_err(|e| context_error(e.to_string()))?;
        Ok(Self {
            client,
            context: context.to_owned(),
            clock: Clock::scaled(platform.time_scale).unwrap_or_else(|_| Clock::real()),
            backoff: Backoff::default(),
        })
    }

    /// The same connection, retrying on `clock` (the run's clock, so backoff is platform time).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same connection with another retry policy.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The kube context.
    #[must_use]
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The kube-rs client.
    #[must_use]
    pub fn client(&self) -> &::kube::Client {
        &self.client
    }

    /// The clock backoff sleeps on.
    #[must_use]
    pub fn clock(&self) -> Clock {
        self.clock
    }

    fn call<'a>(
        &'a self,
        namespace: &'a str,
        kind: &'a str,
        object: &'a str,
        verb: &'a str,
    ) -> Call<'a> {
        Call {
            context: &self.context,
            namespace,
            kind,
            object,
            verb,
        }
    }
}

/// One deployment's replica count, as recorded for an undo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replicas {
    /// Namespace.
    pub namespace: String,
    /// Deployment.
    pub name: String,
    /// Replica count.
    pub replicas: i32,
}

/// Ready pods of a selector before a fault that deletes pods; the undo waits until there are
/// as many again (the pods' controllers replace them: there is nothing to put back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyPods {
    /// Namespace.
    pub namespace: String,
    /// Label selector ("" for every pod of the namespace).
    pub selector: String,
    /// Ready pods before the fault.
    pub ready: usize,
}

/// How to take a Kubernetes fault back: by reference, so another process can do it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum KubeUndo {
    /// Remove [`ZONE_OUTAGE_TAINT`] from these nodes (and nothing else).
    Untaint {
        /// The context.
        context: String,
        /// The zone.
        zone: String,
        /// The nodes tainted.
        nodes: Vec<String>,
    },
    /// Uncordon these nodes (the ones this drill cordoned, not those cordoned before).
    Uncordon {
        /// The context.
        context: String,
        /// The zone.
        zone: String,
        /// The nodes cordoned.
        nodes: Vec<String>,
    },
    /// Scale deployments back to these replica counts.
    Scale {
        /// The context.
        context: String,
        /// What to restore.
        replicas: Vec<Replicas>,
    },
    /// Wait until deleted pods are replaced: as many Ready as before, per selector.
    Replaced {
        /// The context.
        context: String,
        /// Ready pods before the fault.
        pods: Vec<ReadyPods>,
        /// How long to wait for them (platform time).
        #[serde(with = "humantime_serde")]
        within: Duration,
    },
    /// Put back what a traffic switch changed (a JSON merge patch of the recorded old values).
    Restore {
        /// The context.
        context: String,
        /// The switch that was made.
        switch: Box<Switch>,
        /// The merge patch that restores the object.
        patch: serde_json::Value,
    },
}

impl KubeUndo {
    /// One line for plans, logs and reports.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            KubeUndo::Untaint {
                context,
                zone,
                nodes,
            } => format!(
                "[{context}] remove taint {ZONE_OUTAGE_TAINT} from the {} nodes of zone {zone}",
                nodes.len()
            ),
            KubeUndo::Uncordon {
                context,
                zone,
                nodes,
            } => format!(
                "[{context}] uncordon the {} nodes of zone {zone} this drill cordoned",
                nodes.len()
            ),
            KubeUndo::Scale { context, replicas } => format!(
                "[{context}] scale back {}",
                replicas
                    .iter()
                    .map(|r| format!("{}/{} to {}", r.namespace, r.name, r.replicas))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            KubeUndo::Replaced { context, pods, .. } => format!(
                "[{context}] wait until the deleted pods are replaced: {}",
                pods.iter()
                    .map(|p| {
                        let selector = if p.selector.is_empty() {
                            "all pods"
                        } else {
                            &p.selector
                        };
                        format!("{} Ready in {} ({selector})", p.ready, p.namespace)
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            KubeUndo::Restore {
                context, switch, ..
            } => {
                format!("[{context}] put back {}", switch.describe())
            }
        }
    }

    /// Applies the undo. Idempotent: a node already untainted or a deployment already at its
    /// count is left as it is. A scale back waits (at most [`SCALED_BACK_WITHIN`]) until the
    /// deployments run their counts, Ready; replaced pods are waited for too.
    ///
    /// # Errors
    ///
    /// [`KubeError`] naming the object that may still be faulted.
    pub async fn apply(&self, platform: &Platform) -> Result<(), KubeError> {
        let context = match self {
            KubeUndo::Untaint { context, .. }
            | KubeUndo::Uncordon { context, .. }
            | KubeUndo::Scale { context, .. }
            | KubeUndo::Replaced { context, .. }
            | KubeUndo::Restore { context, .. } => context,
        };
        let conn = Conn::connect(platform, context).await?;
        match self {
            KubeUndo::Untaint { nodes, .. } => conn.set_taint(nodes, false).await,
            KubeUndo::Uncordon { nodes, .. } => conn.set_cordon(nodes, false).await,
            KubeUndo::Scale { replicas, .. } => {
                conn.scale(replicas).await?;
                conn.await_rolled_out(replicas, SCALED_BACK_WITHIN).await
            }
            KubeUndo::Replaced { pods, within, .. } => conn.await_replaced(pods, *within).await,
            KubeUndo::Restore { switch, patch, .. } => conn.restore(switch, patch).await,
        }
    }
}
