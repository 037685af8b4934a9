//! Discovery documents in the plain (unaggregated) formats: `/api`, `/apis`, `/apis/<group>`,
//! `/api/v1`, `/apis/<group>/<version>` and `/version`. Clients asking for aggregated discovery
//! (`as=APIGroupDiscoveryList`) fall back to these when the answer is a plain `APIGroupList`.

use std::net::SocketAddr;

use serde_json::{Value, json};

use super::resources::{GROUPS, RESOURCES, REVIEWS};

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The version the server reports; kube-rs and kubectl only check that it parses.
#[must_use]
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "emulationMajor": "1",
        "emulationMinor": "34",
        "gitVersion": "v1.34.0-firedrill",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
#[must_use]
pub fn api_versions(addr: SocketAddr) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr.to_string()}],
    })
}

fn group(name: &str) -> Value {
    let gv = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({"name": name, "versions": [gv], "preferredVersion": gv})
}

/// `/apis`.
#[must_use]
pub fn group_list() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": GROUPS.iter().map(|g| group(g)).collect::<Vec<_>>()})
}

/// `/apis/<group>`, or None for a group the server does not serve.
#[must_use]
pub fn api_group(name: &str) -> Option<Value> {
    GROUPS.contains(&name).then(|| {
        let mut g = group(name);
        g["kind"] = json!("APIGroup");
        g["apiVersion"] = json!("v1");
        g
    })
}

fn sub(
    name: String,
    kind: &str,
    namespaced: bool,
    verbs: &[&str],
    group_version: Option<(&str, &str)>,
) -> Value {
    let mut r = json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": verbs});
    if let Some((g, v)) = group_version {
        r["group"] = json!(g);
        r["version"] = json!(v);
    }
    r
}

/// `/api/v1` (group "") or `/apis/<group>/<version>`, or None when not served.
#[must_use]
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    if version != "v1" || !(group.is_empty() || GROUPS.contains(&group)) {
        return None;
    }
    let mut resources = Vec::new();
    for rt in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut r = json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": VERBS,
            "storageVersionHash": "",
        });
        if !rt.short_names.is_empty() {
            r["shortNames"] = json!(rt.short_names);
        }
        if matches!(
            rt.plural,
            "pods" | "services" | "deployments" | "replicasets"
        ) {
            r["categories"] = json!(["all"]);
        }
        resources.push(r);
        if rt.has_status {
            resources.push(sub(
                format!("{}/status", rt.plural),
                rt.kind,
                rt.namespaced,
                &["get", "patch", "update"],
                None,
            ));
        }
        if rt.has_scale {
            resources.push(sub(
                format!("{}/scale", rt.plural),
                "Scale",
                rt.namespaced,
                &["get", "patch", "update"],
                Some(("autoscaling", "v1")),
            ));
        }
        if rt.plural == "pods" {
            resources.push(sub(
                "pods/eviction".to_owned(),
                "Eviction",
                true,
                &["create"],
                Some(("policy", "v1")),
            ));
        }
    }
    for (g, plural, kind, namespaced) in REVIEWS {
        if *g == group {
            resources.push(sub(
                (*plural).to_owned(),
                kind,
                *namespaced,
                &["create"],
                None,
            ));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}
