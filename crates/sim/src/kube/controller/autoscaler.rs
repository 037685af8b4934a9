//! The cluster autoscaler: pools whose pods are unschedulable get nodes (in the zone with the
//! fewest nodes of the pool, up to its maximum per zone), which join Ready after the seeded
//! provisioning delay.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::super::resources::NODES;
use super::super::store::Store;
use super::super::{POOL_LABEL, ZONE_LABEL};
use super::{Controller, draw, fnv, node_object};
use firedrill_core::clock::PlatformTime;
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

impl Controller {
    /// The cluster autoscaler: asks for enough nodes of each autoscaled pool to hold its
    /// unschedulable pods, in the zone with the fewest nodes of the pool, up to the maximum.
    pub(super) fn request_nodes(
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
    pub(super) fn finish_provisioning(&mut self, store: &mut Store, now: PlatformTime) {
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
}
