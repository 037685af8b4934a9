//! Killing a replica-set member and bringing it back, the way the platform reaches it
//! (`databases.<db>.kill`): by cutting its Toxiproxy link, by deleting its pod (the
//! StatefulSet re-creates it), or by `shutdown` followed by the platform's restart command.
//! The embedded platform declares its way back in its platform file like any estate: a restart
//! command that goes through its control API.
//!
//! "How to make it happen" only: seeing the primary go and a new one come is the
//! [`observer`](super::observer)'s job, whichever way the member went down.

use std::time::Duration;

use ::kube::api::{Api, DeleteParams};
use k8s_openapi::api::core::v1::Pod;

use super::{MongoError, Target};
use crate::toxiproxy::{Stream, ToxicKind, ToxicSpec, ToxiproxyClient};
use firedrill_core::clock::Clock;
use firedrill_platform::{MemberPods, Platform};

/// How long (platform time) a restarted member may take to answer `hello` again.
const BACK_WITHIN: Duration = Duration::from_secs(120);
/// How often (platform time) the way back looks again.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// How one member is killed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Way {
    /// Hold every byte of its Toxiproxy link with a `timeout` toxic (timeout 0).
    Link {
        /// The link (a key of `toxiproxy.links`).
        link: String,
        /// Its proxy on the server.
        proxy: String,
        /// The Toxiproxy API.
        url: String,
    },
    /// Delete its pod; the StatefulSet re-creates it.
    Pod {
        /// The kube context.
        context: String,
        /// The pod's namespace.
        namespace: String,
        /// The pod.
        pod: String,
    },
    /// `shutdown`, then the platform's restart command (a key of `commands`).
    ShutdownAndCommand {
        /// The command.
        command: String,
    },
}

impl Way {
    /// One line for plans and messages.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Way::Link { link, proxy, .. } => {
                format!("cut Toxiproxy link \"{link}\" (proxy \"{proxy}\") with a timeout toxic")
            }
            Way::Pod {
                context,
                namespace,
                pod,
            } => format!("delete pod {namespace}/{pod} in context \"{context}\""),
            Way::ShutdownAndCommand { command } => {
                format!("shutdown; restarted by command \"{command}\"")
            }
        }
    }
}

/// How `host` of `database` is killed: its link, then its pod, then `shutdown` with the
/// restart command.
///
/// # Errors
///
/// [`MongoError::NoWayBack`] when none applies: a kill would leave the member down.
pub fn way(platform: &Platform, database: &str, host: &str) -> Result<Way, MongoError> {
    let kill = platform
        .databases
        .get(database)
        .and_then(|d| d.kill.as_ref());
    if let Some(kill) = kill {
        if let Some(link) = kill.links.get(host)
            && let Some(toxiproxy) = &platform.toxiproxy
            && let Some(l) = toxiproxy.links.get(link)
        {
            return Ok(Way::Link {
                link: link.clone(),
                proxy: l.proxy.clone(),
                url: toxiproxy.url.clone(),
            });
        }
        if let Some(MemberPods {
            context,
            namespace,
            members,
            ..
        }) = &kill.pods
            && let Some(pod) = members.get(host)
        {
            return Ok(Way::Pod {
                context: context.clone(),
                namespace: namespace.clone(),
                pod: pod.clone(),
            });
        }
        if let Some(command) = &kill.restart {
            return Ok(Way::ShutdownAndCommand {
                command: command.clone(),
            });
        }
    }
    Err(MongoError::NoWayBack {
        database: database.to_owned(),
        host: host.to_owned(),
    })
}

/// Adds the `timeout` toxic (timeout 0: nothing passes until it is removed) named `toxic` to
/// the upstream of `proxy`.
///
/// # Errors
///
/// [`MongoError::Toxiproxy`].
pub async fn cut_link(
    database: &str,
    host: &str,
    url: &str,
    proxy: &str,
    toxic: &str,
) -> Result<(), MongoError> {
    let err = |source| MongoError::Toxiproxy {
        database: database.to_owned(),
        host: host.to_owned(),
        proxy: proxy.to_owned(),
        source: Box::new(source),
    };
    let client = ToxiproxyClient::new(url).map_err(err)?;
    let spec = ToxicSpec::new(toxic, Stream::Upstream, ToxicKind::timeout(Duration::ZERO));
    client.add_toxic(proxy, &spec).await.map_err(err)?;
    Ok(())
}

async fn pods(platform: &Platform, context: &str, namespace: &str) -> Result<Api<Pod>, String> {
    crate::kube::Conn::connect(platform, context)
        .await
        .map(|c| Api::namespaced(c.client().clone(), namespace))
        .map_err(|e| e.to_string())
}

/// A [`MongoError::Pod`] about `namespace/pod` of `database` in `context`, from a message.
fn pod_error<'a>(
    database: &'a str,
    context: &'a str,
    namespace: &'a str,
    pod: &'a str,
) -> impl Fn(String) -> MongoError + Copy + 'a {
    move |message| MongoError::Pod {
        database: database.to_owned(),
        pod: format!("{namespace}/{pod}"),
        context: context.to_owned(),
        message,
    }
}

/// The uid of the running pod (recorded in the undo before it is deleted, so the undo knows
/// the re-created pod from the deleted one).
///
/// # Errors
///
/// [`MongoError::Pod`] when the pod cannot be read.
pub async fn pod_uid(
    platform: &Platform,
    database: &str,
    context: &str,
    namespace: &str,
    pod: &str,
) -> Result<String, MongoError> {
    let err = pod_error(database, context, namespace, pod);
    let api = pods(platform, context, namespace).await.map_err(err)?;
    let found = api.get(pod).await.map_err(|e| err(e.to_string()))?;
    Ok(found.metadata.uid.unwrap_or_default())
}

/// Deletes the pod.
///
/// # Errors
///
/// [`MongoError::Pod`].
pub async fn delete_pod(
    platform: &Platform,
    database: &str,
    context: &str,
    namespace: &str,
    pod: &str,
) -> Result<(), MongoError> {
    let err = pod_error(database, context, namespace, pod);
    let api = pods(platform, context, namespace).await.map_err(err)?;
    api.delete(pod, &DeleteParams::default())
        .await
        .map_err(|e| err(e.to_string()))?;
    Ok(())
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Waits until a pod named `pod` that is not the deleted one (`deleted_uid`) is Ready, within
/// the platform's `kill.pods.ready-within`.
///
/// # Errors
///
/// [`MongoError::NotBack`] naming the last state seen, [`MongoError::Pod`] when the cluster
/// cannot be asked.
pub async fn wait_pod_back(
    platform: &Platform,
    database: &str,
    host: &str,
    pod_ref: (&str, &str, &str),
    deleted_uid: &str,
    clock: &Clock,
) -> Result<(), MongoError> {
    let (context, namespace, pod) = pod_ref;
    let within = platform
        .databases
        .get(database)
        .and_then(|d| d.kill.as_ref())
        .and_then(|k| k.pods.as_ref())
        .map_or(Duration::from_secs(300), |p| p.ready_within);
    let api = pods(platform, context, namespace)
        .await
        .map_err(pod_error(database, context, namespace, pod))?;
    crate::poll::until(clock, LOOK_EVERY, within, || async {
        Err(Some(match api.get_opt(pod).await {
            Ok(Some(p)) if p.metadata.uid.as_deref() == Some(deleted_uid) => {
                "the deleted pod is still terminating".to_owned()
            }
            Ok(Some(p)) if ready(&p) => return Ok(()),
            Ok(Some(_)) => "re-created, not Ready yet".to_owned(),
            Ok(None) => "no pod of that name (is it part of a StatefulSet?)".to_owned(),
            Err(e) => e.to_string(),
        }))
    })
    .await
    .map_err(|last| MongoError::NotBack {
        database: database.to_owned(),
        host: host.to_owned(),
        within: firedrill_core::clock::format_duration(within),
        last: last.unwrap_or_default(),
    })
}

/// Runs the platform's restart command for `host`, then waits until it answers `hello`.
///
/// # Errors
///
/// [`MongoError::Restart`] when the command fails, [`MongoError::NotBack`] when the member
/// does not answer in time.
pub async fn restart_by_command(
    platform: &Platform,
    database: &str,
    host: &str,
    command: &str,
    clock: &Clock,
) -> Result<(), MongoError> {
    let restart_err = |message: String| MongoError::Restart {
        database: database.to_owned(),
        host: host.to_owned(),
        command: command.to_owned(),
        message,
    };
    let cmd = platform
        .commands
        .get(command)
        .ok_or_else(|| restart_err("it is not defined under `commands:`".to_owned()))?;
    let what = format!("restart of member {host} of database {database}");
    crate::command::run(
        &what,
        cmd,
        &[("host".to_owned(), host.to_owned())],
        &platform.base_dir(),
        clock,
    )
    .await
    .map_err(|e| restart_err(crate::preflight::split_hint(&e.to_string()).0.to_owned()))?;
    let target = Target::resolve(platform, database)?;
    wait_answers(&target, host, clock).await
}

/// Waits until `host` answers `hello` (a member back after a restart).
///
/// # Errors
///
/// [`MongoError::NotBack`].
pub async fn wait_answers(target: &Target, host: &str, clock: &Clock) -> Result<(), MongoError> {
    crate::poll::until(clock, LOOK_EVERY, BACK_WITHIN, || async {
        match target.hello(host).await {
            Ok(_) => Ok(()),
            Err(e) => Err(Some(target.clean(&e.to_string()))),
        }
    })
    .await
    .map_err(|last| MongoError::NotBack {
        database: target.database.clone(),
        host: host.to_owned(),
        within: firedrill_core::clock::format_duration(BACK_WITHIN),
        last: last.unwrap_or_default(),
    })
}
