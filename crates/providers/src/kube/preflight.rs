//! Preflight: what a drill needs of a cluster is there and allowed, before anything is
//! injected.

use std::collections::BTreeSet;

use ::kube::api::{Api, PostParams};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;

use super::{Backoff, Call, Conn, KubeError, ObjectCall};
use firedrill_core::diagnostic::{Problem, Problems};
use firedrill_platform::Platform;

/// What a drill needs of one cluster, checked before anything is injected.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    /// Namespaces that must exist.
    pub namespaces: BTreeSet<String>,
    /// Zones that must have nodes.
    pub zones: BTreeSet<String>,
    /// `(verb, resource)` pairs that must be allowed (`("patch", "nodes")`); a namespaced
    /// resource in each of `namespaces`.
    pub verbs: BTreeSet<(String, String)>,
}

/// Preflight for [`Need::Kube`](crate::preflight::Need::Kube): every failure of [`preflight`]
/// as a problem at `safety.allow.kube-contexts`, the list that lets firedrill near a context.
pub async fn preflight_into(
    platform: &Platform,
    context: &str,
    need: &Requirement,
    problems: &mut Problems,
) {
    for e in preflight(platform, context, need).await {
        problems.push(Problem::at(
            platform.locate("safety.allow.kube-contexts"),
            e.to_string(),
        ));
    }
}

/// Preflight for one context: the context is allowed, the API answers, the namespaces exist,
/// the zones have nodes and every verb is allowed (SelfSubjectAccessReview: per namespace
/// for namespaced resources, cluster-wide for nodes). Every problem at once.
///
/// Nothing here changes the cluster.
pub async fn preflight(platform: &Platform, context: &str, need: &Requirement) -> Vec<KubeError> {
    let conn = match Conn::connect(platform, context).await {
        // Preflight asks once: an unreachable API server is reported, not waited for.
        Ok(c) => c.with_backoff(Backoff {
            attempts: 1,
            ..Backoff::default()
        }),
        Err(e) => return vec![e],
    };
    let client = conn.client().clone();
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
        if let Err(e) = conn.zone_nodes(zone).await {
            problems.push(e);
        }
    }
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    for (verb, resource) in &need.verbs {
        let (resource_name, sub) = match resource.split_once('/') {
            Some((r, s)) => (r.to_owned(), Some(s.to_owned())),
            None => (resource.clone(), None),
        };
        // Nodes and namespaces are cluster-scoped; everything else is asked per namespace,
        // since a Role may grant a verb in one namespace and not another.
        let scopes: Vec<Option<&String>> = if cluster_scoped(&resource_name) {
            vec![None]
        } else {
            need.namespaces.iter().map(Some).collect()
        };
        for namespace in scopes {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        verb: Some(verb.clone()),
                        resource: Some(resource_name.clone()),
                        subresource: sub.clone(),
                        group: api_group(&resource_name).map(str::to_owned),
                        namespace: namespace.cloned(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let ns = namespace.map_or("", String::as_str);
            match reviews.create(&PostParams::default(), &review).await {
                Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {}
                Ok(_) => problems.push(KubeError::Forbidden {
                    call: Box::new(ObjectCall {
                        context: context.to_owned(),
                        namespace: ns.to_owned(),
                        kind: resource.clone(),
                        object: String::new(),
                        verb: verb.clone(),
                    }),
                    message: "SelfSubjectAccessReview answered allowed=false".to_owned(),
                }),
                Err(e) => problems.push(
                    Call {
                        context,
                        namespace: ns,
                        kind: "selfsubjectaccessreviews",
                        object: "",
                        verb: "create",
                    }
                    .error(&e),
                ),
            }
        }
    }
    problems
}

/// Whether a resource is cluster-scoped (asked about without a namespace).
#[must_use]
pub fn cluster_scoped(resource: &str) -> bool {
    matches!(resource, "nodes" | "namespaces")
}

/// The API group of a resource firedrill uses ("" is the core group).
#[must_use]
pub fn api_group(resource: &str) -> Option<&'static str> {
    match resource {
        "deployments" | "replicasets" => Some("apps"),
        "ingresses" => Some("networking.k8s.io"),
        _ => None,
    }
}
