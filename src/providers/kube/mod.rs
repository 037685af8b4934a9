//! The Kubernetes provider: one client per region's kube context, the zone and region faults
//! (taint, cordon and evict, scale to zero), the failover scale-up and its readiness watch, and
//! the checks preflight runs before anything is injected.
//!
//! Every client is built from the kubeconfig named by `FIREDRILL_KUBECONFIG` (else `KUBECONFIG`,
//! else `~/.kube/config`) and only for a context listed in `safety.allow.kube-contexts`. Undos
//! are stored by reference (context, object names, what to restore), so `firedrill recover` can
//! take a fault back from another process.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use ::kube::api::{Api, EvictParams, ListParams, Patch, PatchParams, PostParams};
use ::kube::config::{KubeConfigOptions, Kubeconfig};
use ::kube::runtime::watcher;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Taint};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::drill::clock::{Clock, PlatformTime};
use crate::platform::Platform;

/// The NoExecute taint a zone outage puts on every node of the zone.
pub const ZONE_OUTAGE_TAINT: &str = "firedrill.dev/zone-outage";
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

/// A kubeconfig set by this process (the embedded platform), read before the environment.
static KUBECONFIG: std::sync::RwLock<Option<PathBuf>> = std::sync::RwLock::new(None);

/// Makes this process read `path` as its kubeconfig (the embedded platform sets it, since a
/// library must not change its process's environment).
pub fn use_kubeconfig(path: &std::path::Path) {
    let mut slot = KUBECONFIG
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *slot = Some(path.to_path_buf());
}

/// The kubeconfig firedrill reads: the one [`use_kubeconfig`] set, else `FIREDRILL_KUBECONFIG`,
/// else `KUBECONFIG`, else `~/.kube/config`.
#[must_use]
pub fn kubeconfig_path() -> PathBuf {
    if let Some(path) = KUBECONFIG
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
    {
        return path;
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

/// A client for `context` (allowed contexts only). Client-side retries are off, so a refusal
/// (a PodDisruptionBudget's 429) surfaces at once instead of after minutes of backoff.
///
/// # Errors
///
/// [`KubeError::NotAllowed`], [`KubeError::Kubeconfig`] or [`KubeError::Context`].
pub async fn client(platform: &Platform, context: &str) -> Result<::kube::Client, KubeError> {
    check_allowed(platform, context)?;
    let path = kubeconfig_path();
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
    config.read_timeout = Some(Duration::from_secs(30));
    ::kube::Client::try_from(config).map_err(|e| context_error(e.to_string()))
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
        }
    }

    /// Applies the undo. Idempotent: a node already untainted or a deployment already at its
    /// count is left as it is.
    ///
    /// # Errors
    ///
    /// [`KubeError`] naming the object that may still be faulted.
    pub async fn apply(&self, platform: &Platform) -> Result<(), KubeError> {
        match self {
            KubeUndo::Untaint { context, nodes, .. } => {
                let client = client(platform, context).await?;
                set_taint(&client, context, nodes, false).await
            }
            KubeUndo::Uncordon { context, nodes, .. } => {
                let client = client(platform, context).await?;
                set_cordon(&client, context, nodes, false).await
            }
            KubeUndo::Scale { context, replicas } => {
                let client = client(platform, context).await?;
                scale(&client, context, replicas).await
            }
        }
    }
}

/// The names of the nodes of `zone`.
///
/// # Errors
///
/// [`KubeError`] for the list; [`KubeError::EmptyZone`] when there are none.
pub async fn zone_nodes(
    client: &::kube::Client,
    context: &str,
    zone: &str,
) -> Result<Vec<String>, KubeError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default().labels(&format!("{ZONE_LABEL}={zone}")))
        .await
        .map_err(|e| {
            Call {
                context,
                namespace: "",
                kind: "nodes",
                object: "",
                verb: "list",
            }
            .error(&e)
        })?;
    let names: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    if names.is_empty() {
        return Err(KubeError::EmptyZone {
            context: context.to_owned(),
            zone: zone.to_owned(),
        });
    }
    Ok(names)
}

/// The nodes among `nodes` that are not cordoned now (those a drain would cordon).
///
/// # Errors
///
/// [`KubeError`] for a get.
pub async fn uncordoned(
    client: &::kube::Client,
    context: &str,
    nodes: &[String],
) -> Result<Vec<String>, KubeError> {
    let api: Api<Node> = Api::all(client.clone());
    let mut out = Vec::new();
    for name in nodes {
        let node = api.get(name).await.map_err(|e| {
            Call {
                context,
                namespace: "",
                kind: "nodes",
                object: name,
                verb: "get",
            }
            .error(&e)
        })?;
        if !node.spec.and_then(|s| s.unschedulable).unwrap_or(false) {
            out.push(name.clone());
        }
    }
    Ok(out)
}

/// Adds (`on`) or removes the [`ZONE_OUTAGE_TAINT`] NoExecute taint on each node, leaving every
/// other taint as it is. Each write carries the resourceVersion read, so a concurrent change is
/// a conflict rather than a lost update.
///
/// # Errors
///
/// [`KubeError`] naming the node.
pub async fn set_taint(
    client: &::kube::Client,
    context: &str,
    nodes: &[String],
    on: bool,
) -> Result<(), KubeError> {
    let api: Api<Node> = Api::all(client.clone());
    for name in nodes {
        let call = |verb| Call {
            context,
            namespace: "",
            kind: "nodes",
            object: name,
            verb,
        };
        let node = match api.get(name).await {
            Ok(node) => node,
            // A node that is gone has no taint left to remove.
            Err(::kube::Error::Api(s)) if s.code == 404 && !on => continue,
            Err(e) => return Err(call("get").error(&e)),
        };
        let mut taints: Vec<Taint> = node.spec.and_then(|s| s.taints).unwrap_or_default();
        let has = taints.iter().any(|t| t.key == ZONE_OUTAGE_TAINT);
        if has == on {
            continue;
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
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| call("patch").error(&e))?;
    }
    Ok(())
}

/// Cordons (`on`) or uncordons each node.
///
/// # Errors
///
/// [`KubeError`] naming the node.
pub async fn set_cordon(
    client: &::kube::Client,
    context: &str,
    nodes: &[String],
    on: bool,
) -> Result<(), KubeError> {
    let api: Api<Node> = Api::all(client.clone());
    for name in nodes {
        let patch = json!({"spec": {"unschedulable": on}});
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(::kube::Error::Api(s)) if s.code == 404 && !on => {}
            Err(e) => {
                return Err(Call {
                    context,
                    namespace: "",
                    kind: "nodes",
                    object: name,
                    verb: "patch",
                }
                .error(&e));
            }
        }
    }
    Ok(())
}

/// Evicts every pod on `nodes` through the Eviction API (so PodDisruptionBudgets apply).
/// Returns the evicted pods as `namespace/name`.
///
/// # Errors
///
/// [`KubeError::EvictionBlocked`] listing the pods a budget protected (the others are
/// evicted), or [`KubeError`] for a refused call.
pub async fn evict_from(
    client: &::kube::Client,
    context: &str,
    nodes: &[String],
) -> Result<Vec<String>, KubeError> {
    let all: Api<Pod> = Api::all(client.clone());
    let mut evicted = Vec::new();
    let mut blocked = Vec::new();
    for node in nodes {
        let pods = all
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .map_err(|e| {
                Call {
                    context,
                    namespace: "",
                    kind: "pods",
                    object: "",
                    verb: "list",
                }
                .error(&e)
            })?;
        for pod in pods.items {
            let (Some(ns), Some(name)) = (pod.metadata.namespace, pod.metadata.name) else {
                continue;
            };
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            match api.evict(&name, &EvictParams::default()).await {
                Ok(_) => evicted.push(format!("{ns}/{name}")),
                Err(::kube::Error::Api(s)) if s.code == 404 => {}
                Err(::kube::Error::Api(s)) if s.code == 429 => blocked.push(format!("{ns}/{name}")),
                Err(e) => {
                    return Err(Call {
                        context,
                        namespace: &ns,
                        kind: "pods/eviction",
                        object: &name,
                        verb: "create",
                    }
                    .error(&e));
                }
            }
        }
    }
    if blocked.is_empty() {
        Ok(evicted)
    } else {
        Err(KubeError::EvictionBlocked {
            context: context.to_owned(),
            pods: blocked.join(", "),
        })
    }
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

/// The current replica counts of `services` (the `replicas` field is ignored).
///
/// # Errors
///
/// [`KubeError`] naming the deployment.
pub async fn current_replicas(
    client: &::kube::Client,
    context: &str,
    services: &[Replicas],
) -> Result<Vec<Replicas>, KubeError> {
    let mut out = Vec::new();
    for s in services {
        let api: Api<Deployment> = Api::namespaced(client.clone(), &s.namespace);
        let scale = api.get_scale(&s.name).await.map_err(|e| {
            Call {
                context,
                namespace: &s.namespace,
                kind: "deployments/scale",
                object: &s.name,
                verb: "get",
            }
            .error(&e)
        })?;
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
pub async fn scale(
    client: &::kube::Client,
    context: &str,
    replicas: &[Replicas],
) -> Result<(), KubeError> {
    for r in replicas {
        let api: Api<Deployment> = Api::namespaced(client.clone(), &r.namespace);
        let patch = json!({"spec": {"replicas": r.replicas}});
        api.patch_scale(&r.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                Call {
                    context,
                    namespace: &r.namespace,
                    kind: "deployments/scale",
                    object: &r.name,
                    verb: "patch",
                }
                .error(&e)
            })?;
    }
    Ok(())
}

/// What the readiness watch saw.
#[derive(Clone, Debug, PartialEq)]
pub struct Readiness {
    /// When the first wanted pod's Ready event arrived (platform time).
    pub first_ready: Option<PlatformTime>,
    /// That pod's Ready `lastTransitionTime` as the API reported it (second precision).
    pub first_ready_reported: Option<SystemTime>,
    /// When every deployment had its wanted Ready pods (platform time of the event).
    pub all_ready: Option<PlatformTime>,
}

fn pod_ready(pod: &Pod) -> Option<SystemTime> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(
        ready
            .last_transition_time
            .as_ref()
            .map_or(SystemTime::UNIX_EPOCH, |t| SystemTime::from(t.0)),
    )
}

/// Watches the pods of `want` (deployment → Ready pods wanted, pods labelled `app=<name>`)
/// until every deployment has that many Ready pods or `deadline` passes. Calls `on_first` and
/// `on_all` as the watch events arrive, with the platform time of their arrival. Pods Ready
/// before the watch started count as Ready at their reported transition time.
///
/// # Errors
///
/// [`KubeError::NotReady`] at the deadline, naming what was still waiting.
pub async fn watch_ready(
    client: &::kube::Client,
    context: &str,
    want: &[Replicas],
    clock: &Clock,
    deadline: PlatformTime,
    mut on_first: impl FnMut(PlatformTime, SystemTime),
    mut on_all: impl FnMut(PlatformTime),
) -> Result<Readiness, KubeError> {
    let began = clock.now();
    let api: Api<Pod> = Api::all(client.clone());
    let wanted: BTreeMap<(String, String), usize> = want
        .iter()
        .map(|r| {
            (
                (r.namespace.clone(), r.name.clone()),
                usize::try_from(r.replicas).unwrap_or(0),
            )
        })
        .collect();
    let mut ready: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut seen = Readiness {
        first_ready: None,
        first_ready_reported: None,
        all_ready: None,
    };
    let done = |ready: &BTreeMap<(String, String), BTreeSet<String>>| {
        wanted
            .iter()
            .all(|(k, n)| ready.get(k).map_or(0, BTreeSet::len) >= *n)
    };
    if done(&ready) {
        let now = clock.now();
        on_all(now);
        seen.all_ready = Some(now);
        return Ok(seen);
    }
    let stream = watcher(api, watcher::Config::default()).boxed();
    let watch = async {
        let mut stream = stream;
        while let Some(event) = stream.next().await {
            let now = clock.now();
            let pods: Vec<Pod> = match event {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => vec![p],
                Ok(watcher::Event::Delete(p)) => {
                    if let (Some(ns), Some(app), Some(name)) = (
                        p.metadata.namespace.clone(),
                        p.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get("app").cloned()),
                        p.metadata.name.clone(),
                    ) && let Some(set) = ready.get_mut(&(ns, app))
                    {
                        set.remove(&name);
                    }
                    continue;
                }
                // Errors are retried by the watcher's own re-list; init markers carry nothing.
                Ok(_) | Err(_) => continue,
            };
            for pod in pods {
                let (Some(ns), Some(name)) =
                    (pod.metadata.namespace.clone(), pod.metadata.name.clone())
                else {
                    continue;
                };
                let Some(app) = pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("app").cloned())
                else {
                    continue;
                };
                let key = (ns, app);
                if !wanted.contains_key(&key) {
                    continue;
                }
                let set = ready.entry(key).or_default();
                match pod_ready(&pod) {
                    Some(reported) if pod.metadata.deletion_timestamp.is_none() => {
                        if set.insert(name) && seen.first_ready.is_none() {
                            seen.first_ready = Some(now);
                            seen.first_ready_reported = Some(reported);
                            on_first(now, reported);
                        }
                    }
                    _ => {
                        set.remove(&name);
                    }
                }
            }
            if done(&ready) {
                seen.all_ready = Some(now);
                on_all(now);
                return true;
            }
        }
        false
    };
    match clock.timeout_at(deadline, watch).await {
        Ok(true) => Ok(seen),
        _ => Err(KubeError::NotReady {
            context: context.to_owned(),
            within: crate::drill::clock::format_duration(deadline.saturating_since(began)),
            waiting: wanted
                .iter()
                .filter(|(k, n)| ready.get(*k).map_or(0, BTreeSet::len) < **n)
                .map(|((ns, name), n)| {
                    format!(
                        "{ns}/{name} {}/{n} Ready",
                        ready
                            .get(&(ns.clone(), name.clone()))
                            .map_or(0, BTreeSet::len)
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Pods of `namespace` that were created after `since` or whose containers restarted: a
/// namespace the drill must not touch shows none.
///
/// # Errors
///
/// [`KubeError`] for the list.
pub async fn touched_since(
    client: &::kube::Client,
    context: &str,
    namespace: &str,
    since: SystemTime,
) -> Result<Vec<String>, KubeError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pods = api.list(&ListParams::default()).await.map_err(|e| {
        Call {
            context,
            namespace,
            kind: "pods",
            object: "",
            verb: "list",
        }
        .error(&e)
    })?;
    // creationTimestamp has second precision: a pod created in the start's own second counts
    // as touched (a false alarm is safer than a missed replacement).
    let since_secs = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut out = Vec::new();
    for pod in pods.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let created = pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| SystemTime::from(t.0))
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        if created >= since_secs {
            out.push(format!("{namespace}/{name} was created during the drill"));
        }
        if pod.metadata.deletion_timestamp.is_some() {
            out.push(format!("{namespace}/{name} is being deleted"));
        }
        let restarts: i32 = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map_or(0, |c| c.iter().map(|c| c.restart_count).sum());
        if restarts > 0 {
            out.push(format!("{namespace}/{name} restarted {restarts} times"));
        }
    }
    Ok(out)
}

/// What a drill needs of one cluster, checked before anything is injected.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    /// Namespaces that must exist.
    pub namespaces: BTreeSet<String>,
    /// Zones that must have nodes.
    pub zones: BTreeSet<String>,
    /// `(verb, resource)` pairs that must be allowed (`("patch", "nodes")`).
    pub verbs: BTreeSet<(String, String)>,
}

/// Preflight for one context: the context is allowed, the API answers, the namespaces exist,
/// the zones have nodes and every verb is allowed (SelfSubjectAccessReview). Every problem
/// at once.
pub async fn preflight(platform: &Platform, context: &str, need: &Requirement) -> Vec<KubeError> {
    let client = match client(platform, context).await {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in &need.namespaces {
        if let Err(e) = namespaces.get(ns).await {
            problems.push(
                Call {
                    context,
                    namespace: ns,
                    kind: "namespaces",
                    object: ns,
                    verb: "get",
                }
                .error(&e),
            );
            if !matches!(e, ::kube::Error::Api(_)) {
                // Unreachable: every other check would fail the same way.
                return problems;
            }
        }
    }
    for zone in &need.zones {
        if let Err(e) = zone_nodes(&client, context, zone).await {
            problems.push(e);
        }
    }
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    for (verb, resource) in &need.verbs {
        let (resource_name, sub) = match resource.split_once('/') {
            Some((r, s)) => (r.to_owned(), Some(s.to_owned())),
            None => (resource.clone(), None),
        };
        let group = match resource_name.as_str() {
            "deployments" => Some("apps".to_owned()),
            _ => None,
        };
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.clone()),
                    resource: Some(resource_name),
                    subresource: sub,
                    group,
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        match reviews.create(&PostParams::default(), &review).await {
            Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {}
            Ok(_) => problems.push(KubeError::Forbidden {
                call: Box::new(ObjectCall {
                    context: context.to_owned(),
                    namespace: String::new(),
                    kind: resource.clone(),
                    object: String::new(),
                    verb: verb.clone(),
                }),
                message: "SelfSubjectAccessReview answered allowed=false".to_owned(),
            }),
            Err(e) => problems.push(
                Call {
                    context,
                    namespace: "",
                    kind: "selfsubjectaccessreviews",
                    object: "",
                    verb: "create",
                }
                .error(&e),
            ),
        }
    }
    problems
}
