//! The readiness watch of a failover scale-up: milestones stamped as the API's watch events
//! arrive, not when a poll happens to look.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use ::kube::api::Api;
use ::kube::runtime::watcher;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;

use super::retry::WatchRetry;
use super::{Conn, KubeError, Replicas};
use firedrill_core::clock::{Clock, PlatformTime, format_duration};

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
impl Conn {
    /// Watches the pods of `want` (deployment → Ready pods wanted, pods labelled `app=<name>`,
    /// one watch per namespace) until every deployment has that many Ready pods or `deadline`
    /// passes. Calls `on_first` and `on_all` as the watch events arrive, with the platform time of
    /// their arrival. Pods Ready before the watch started count as Ready at their reported
    /// transition time. A watch that keeps failing (the API server is gone) is retried per the
    /// connection's [`super::Backoff`], then ends the wait.
    ///
    /// # Errors
    ///
    /// [`KubeError::NotReady`] at the deadline, naming what was still waiting;
    /// [`KubeError::Unreachable`] when the watch kept failing.
    pub async fn watch_ready(
        &self,
        want: &[Replicas],
        clock: &Clock,
        deadline: PlatformTime,
        mut on_first: impl FnMut(PlatformTime, SystemTime),
        mut on_all: impl FnMut(PlatformTime),
    ) -> Result<Readiness, KubeError> {
        let context = self.context.as_str();
        let began = clock.now();
        let namespaces: BTreeSet<String> = want.iter().map(|r| r.namespace.clone()).collect();
        let streams = namespaces.iter().map(|ns| {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            watcher(api, watcher::Config::default()).boxed()
        });
        let stream = futures::stream::select_all(streams);
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
        let mut retry = WatchRetry::new(self, clock);
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
                    // Init markers carry nothing.
                    Ok(_) => continue,
                    // The watcher re-lists on its next poll; pause first, in platform time.
                    Err(e) => {
                        retry.failed("", &e).await?;
                        continue;
                    }
                };
                retry.succeeded();
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
                    return Ok(true);
                }
            }
            Ok(false)
        };
        match clock.timeout_at(deadline, watch).await {
            Ok(Ok(true)) => Ok(seen),
            Ok(Err(e)) => Err(e),
            _ => Err(KubeError::NotReady {
                context: context.to_owned(),
                within: format_duration(deadline.saturating_since(began)),
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
}

impl Conn {
    /// Watches the pods of `namespaces` until none is left on `nodes` (a zone's nodes after a
    /// taint or a drain), or `deadline`. Returns the platform time of the watch event that
    /// emptied the zone (or of the initial list, if it already was empty).
    ///
    /// # Errors
    ///
    /// [`KubeError::NotReady`] at the deadline, naming how many pods were left;
    /// [`KubeError::Unreachable`] when the watch kept failing.
    pub async fn watch_drained(
        &self,
        namespaces: &[String],
        nodes: &[String],
        clock: &Clock,
        deadline: PlatformTime,
    ) -> Result<PlatformTime, KubeError> {
        let began = clock.now();
        let nodes: BTreeSet<&str> = nodes.iter().map(String::as_str).collect();
        let streams = namespaces.iter().map(|ns| {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            let ns = ns.clone();
            watcher(api, watcher::Config::default())
                .map(move |e| (ns.clone(), e))
                .boxed()
        });
        let mut stream = futures::stream::select_all(streams);
        // (namespace, pod) still on the zone's nodes, and namespaces whose initial list is in.
        let mut left: BTreeSet<(String, String)> = BTreeSet::new();
        let mut listed: BTreeSet<String> = BTreeSet::new();
        let mut retry = WatchRetry::new(self, clock);
        let watch = async {
            while let Some((ns, event)) = stream.next().await {
                let now = clock.now();
                match event {
                    Ok(watcher::Event::Init) => {
                        left.retain(|(n, _)| *n != ns);
                        listed.remove(&ns);
                    }
                    Ok(watcher::Event::InitDone) => {
                        listed.insert(ns);
                    }
                    Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                        let on = p
                            .spec
                            .as_ref()
                            .and_then(|s| s.node_name.as_deref())
                            .is_some_and(|n| nodes.contains(n));
                        if let Some(name) = p.metadata.name {
                            if on {
                                left.insert((ns, name));
                            } else {
                                left.remove(&(ns, name));
                            }
                        }
                    }
                    Ok(watcher::Event::Delete(p)) => {
                        if let Some(name) = p.metadata.name {
                            left.remove(&(ns, name));
                        }
                    }
                    Err(e) => {
                        retry.failed(&ns, &e).await?;
                        continue;
                    }
                }
                retry.succeeded();
                if left.is_empty() && listed.len() == namespaces.len() {
                    return Ok(now);
                }
            }
            Ok(clock.now())
        };
        match clock.timeout_at(deadline, watch).await {
            Ok(result) => result,
            Err(_) => Err(KubeError::NotReady {
                context: self.context.clone(),
                within: format_duration(deadline.saturating_since(began)),
                waiting: format!("{} pods still on the zone's nodes", left.len()),
            }),
        }
    }
}
