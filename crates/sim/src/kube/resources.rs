//! The resource kinds the embedded API server serves: one static table that drives routing,
//! discovery, storage and the `Status` messages (which name the resource the way the real server
//! does: `pods`, `deployments.apps`).

/// One served resource kind.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version inside the group.
    pub version: &'static str,
    /// Plural resource name used in paths (`pods`).
    pub plural: &'static str,
    /// Singular resource name (`pod`).
    pub singular: &'static str,
    /// Kind of one object (`Pod`).
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// kubectl short names (`po`).
    pub short_names: &'static [&'static str],
    /// Whether the kind has a `status` subresource (writes to the main resource keep status).
    pub has_status: bool,
    /// Whether the kind has a `scale` subresource.
    pub has_scale: bool,
}

impl ResourceType {
    /// `apiVersion` of objects of this kind (`v1`, `apps/v1`).
    #[must_use]
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The resource as the real server names it in messages: `pods`, `deployments.apps`.
    #[must_use]
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The kind as the real server names it in `Invalid` messages: `Pod`, `Deployment.apps`.
    #[must_use]
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_owned()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

// One row of the table below; positional arguments keep the table readable.
#[allow(clippy::too_many_arguments)]
const fn rt(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    has_status: bool,
    has_scale: bool,
) -> ResourceType {
    ResourceType {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        has_status,
        has_scale,
    }
}

/// Index of a kind in [`RESOURCES`].
pub type ResourceId = usize;

/// Every served kind. The order is the storage index ([`ResourceId`]). DaemonSets and
/// StatefulSets are not served: no controller here would turn them into pods, and an object a
/// client writes that then does nothing is a silent wrong answer; their paths answer `404` as
/// an unknown resource of `apps/v1`.
pub static RESOURCES: &[ResourceType] = &[
    rt(
        "",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        true,
        false,
    ),
    rt("", "nodes", "node", "Node", false, &["no"], true, false),
    rt("", "pods", "pod", "Pod", true, &["po"], true, false),
    rt(
        "",
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        true,
        false,
    ),
    rt(
        "",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        false,
        false,
    ),
    rt("", "events", "event", "Event", true, &["ev"], false, false),
    rt(
        "",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        false,
        false,
    ),
    rt("", "secrets", "secret", "Secret", true, &[], false, false),
    rt(
        "apps",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        true,
        true,
    ),
    rt(
        "apps",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        true,
        true,
    ),
    rt(
        "networking.k8s.io",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        &["ing"],
        true,
        false,
    ),
    rt(
        "policy",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        true,
        false,
    ),
    rt(
        "",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
        false,
        false,
    ),
    rt(
        "discovery.k8s.io",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
        &[],
        false,
        false,
    ),
    rt(
        "",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
        true,
        false,
    ),
    rt(
        "coordination.k8s.io",
        "leases",
        "lease",
        "Lease",
        true,
        &[],
        false,
        false,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "roles",
        "role",
        "Role",
        true,
        &[],
        false,
        false,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        &[],
        false,
        false,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        &[],
        false,
        false,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        &[],
        false,
        false,
    ),
];

/// Storage index of namespaces.
pub const NAMESPACES: ResourceId = 0;
/// Storage index of nodes.
pub const NODES: ResourceId = 1;
/// Storage index of pods.
pub const PODS: ResourceId = 2;
/// Storage index of events.
pub const EVENTS: ResourceId = 5;
/// Storage index of deployments.
pub const DEPLOYMENTS: ResourceId = 8;
/// Storage index of replica sets.
pub const REPLICASETS: ResourceId = 9;
/// Storage index of pod disruption budgets.
pub const PDBS: ResourceId = 11;
/// Storage index of services.
pub const SERVICES: ResourceId = 3;
/// Storage index of config maps.
pub const CONFIGMAPS: ResourceId = 4;
/// Storage index of secrets.
pub const SECRETS: ResourceId = 7;
/// Storage index of endpoints.
pub const ENDPOINTS: ResourceId = 12;
/// Storage index of endpoint slices.
pub const ENDPOINTSLICES: ResourceId = 13;
/// Storage index of persistent volume claims.
pub const PVCS: ResourceId = 14;

/// The groups served under `/apis`, in discovery order. Every other group (batch, autoscaling,
/// apiextensions.k8s.io ...) is not served: its paths answer as a real server answers a group it
/// does not have (see `server::route`).
pub const GROUPS: &[&str] = &[
    "apps",
    "networking.k8s.io",
    "policy",
    "discovery.k8s.io",
    "coordination.k8s.io",
    "rbac.authorization.k8s.io",
    "authorization.k8s.io",
    "authentication.k8s.io",
];

/// The review kinds (create-only, never stored): (group, plural, kind, namespaced).
pub const REVIEWS: &[(&str, &str, &str, bool)] = &[
    (
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        false,
    ),
    (
        "authentication.k8s.io",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
    ),
];

/// Finds a kind by group, version and plural.
#[must_use]
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<ResourceId> {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.plural == plural)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_point_at_their_kinds() {
        assert_eq!(RESOURCES[NAMESPACES].kind, "Namespace");
        assert_eq!(RESOURCES[NODES].kind, "Node");
        assert_eq!(RESOURCES[PODS].kind, "Pod");
        assert_eq!(RESOURCES[EVENTS].kind, "Event");
        assert_eq!(RESOURCES[DEPLOYMENTS].kind, "Deployment");
        assert_eq!(RESOURCES[REPLICASETS].kind, "ReplicaSet");
        assert_eq!(RESOURCES[PDBS].kind, "PodDisruptionBudget");
        assert_eq!(RESOURCES[SERVICES].kind, "Service");
        assert_eq!(RESOURCES[CONFIGMAPS].kind, "ConfigMap");
        assert_eq!(RESOURCES[SECRETS].kind, "Secret");
        assert_eq!(RESOURCES[ENDPOINTS].kind, "Endpoints");
        assert_eq!(RESOURCES[ENDPOINTSLICES].kind, "EndpointSlice");
        assert_eq!(RESOURCES[PVCS].kind, "PersistentVolumeClaim");
        for rt in RESOURCES {
            assert!(
                rt.group.is_empty() || GROUPS.contains(&rt.group),
                "{} is in no served group",
                rt.plural
            );
        }
        assert_eq!(lookup("apps", "v1", "deployments"), Some(DEPLOYMENTS));
        assert_eq!(RESOURCES[DEPLOYMENTS].qualified(), "deployments.apps");
    }
}
