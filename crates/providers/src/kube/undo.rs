//! [`KubeUndo`]: how each Kubernetes fault is taken back, stored by object reference (context,
//! names, what to restore) so `firedrill recover` can apply it from another process, and the
//! records it keeps ([`Replicas`], [`ReadyPods`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Conn, KubeError, SCALED_BACK_WITHIN, Switch, ZONE_OUTAGE_TAINT};
use firedrill_platform::Platform;

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
