//! Reading what an estate runs, before it has a platform file (`firedrill init`): the nodes'
//! region and zone labels, the namespaces, and the deployments with their replicas. Read only:
//! it lists and never writes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ::kube::Api;
use ::kube::api::{ListParams, ObjectList};
use k8s_openapi::api::apps::v1::Deployment as KubeDeployment;
use k8s_openapi::api::core::v1::{Namespace, Node};
use serde::de::DeserializeOwned;

use firedrill_core::clock::Clock;

use super::{Conn, KubeError, ZONE_LABEL};

/// The node label naming a node's region.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";

/// Objects per page of a list, so a large cluster is read in bounded answers.
const PAGE: u32 = 500;

/// What one kube context's cluster runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cluster {
    /// The kube context it was read through.
    pub context: String,
    /// Region label → the zone labels of its nodes (a node without a region label is under
    /// "", one without a zone label adds no zone).
    pub regions: BTreeMap<String, BTreeSet<String>>,
    /// How many nodes it has.
    pub nodes: usize,
    /// Every namespace.
    pub namespaces: Vec<String>,
    /// Every deployment, by namespace then name.
    pub deployments: Vec<Deployment>,
}

/// A deployment and the replicas its spec asks for now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `spec.replicas` (Kubernetes' default, 1, when unset).
    pub replicas: i32,
}

/// Reads the nodes, namespaces and deployments of `context` in the kubeconfig at `kubeconfig`.
/// Nothing is checked against an allow-list (there is no platform yet) and nothing is written.
///
/// # Errors
///
/// [`KubeError::Kubeconfig`] or [`KubeError::Context`] when the context cannot be used, and the
/// list call's [`KubeError`] (forbidden, unreachable) naming the resource.
pub async fn discover(kubeconfig: &Path, context: &str) -> Result<Cluster, KubeError> {
    let conn = Conn::open(kubeconfig, context, Clock::real()).await?;
    let nodes: Vec<Node> = conn
        .list_all(Api::all(conn.client.clone()), "nodes")
        .await?;
    let mut regions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in &nodes {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let zones = regions
            .entry(labels.get(REGION_LABEL).cloned().unwrap_or_default())
            .or_default();
        if let Some(zone) = labels.get(ZONE_LABEL) {
            zones.insert(zone.clone());
        }
    }
    let namespaces: Vec<Namespace> = conn
        .list_all(Api::all(conn.client.clone()), "namespaces")
        .await?;
    let mut namespaces: Vec<String> = namespaces
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    namespaces.sort();
    let deployments: Vec<KubeDeployment> = conn
        .list_all(Api::all(conn.client.clone()), "deployments")
        .await?;
    let mut deployments: Vec<Deployment> = deployments
        .into_iter()
        .filter_map(|d| {
            Some(Deployment {
                namespace: d.metadata.namespace?,
                name: d.metadata.name?,
                replicas: d.spec.and_then(|s| s.replicas).unwrap_or(1),
            })
        })
        .collect();
    deployments.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(Cluster {
        context: context.to_owned(),
        regions,
        nodes: nodes.len(),
        namespaces,
        deployments,
    })
}

impl Conn {
    /// Every object of `api`, page by page (`limit` and `continue`).
    async fn list_all<K>(&self, api: Api<K>, kind: &str) -> Result<Vec<K>, KubeError>
    where
        K: Clone + DeserializeOwned + std::fmt::Debug,
    {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = ListParams::default().limit(PAGE);
            if let Some(token) = &token {
                params = params.continue_token(token);
            }
            let page: ObjectList<K> = self
                .call_api(self.call("", kind, "", "list"), || api.list(&params))
                .await?;
            items.extend(page.items);
            match page.metadata.continue_.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => return Ok(items),
            }
        }
    }
}
