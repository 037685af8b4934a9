//! Server-side printing: the `meta.k8s.io/v1` `Table` that kubectl asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, with the columns the real server
//! prints for nodes, pods and deployments (other kinds get NAME and AGE).

use std::sync::Arc;

use serde_json::{Value, json};

use super::resources::{DEPLOYMENTS, NAMESPACES, NODES, PODS, ResourceId};
use super::store::parse_rfc3339;

fn col(name: &str, ty: &str, format: &str, priority: u8) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority})
}

/// Column definitions of a kind's table.
#[must_use]
pub fn columns(res: ResourceId) -> Value {
    let name = col("Name", "string", "name", 0);
    let age = col("Age", "string", "", 0);
    match res {
        NODES => json!([
            name,
            col("Status", "string", "", 0),
            col("Roles", "string", "", 0),
            age,
            col("Version", "string", "", 0),
            col("Zone", "string", "", 1)
        ]),
        PODS => json!([
            name,
            col("Ready", "string", "", 0),
            col("Status", "string", "", 0),
            col("Restarts", "string", "", 0),
            age,
            col("IP", "string", "", 1),
            col("Node", "string", "", 1)
        ]),
        DEPLOYMENTS => json!([
            name,
            col("Ready", "string", "", 0),
            col("Up-to-date", "string", "", 0),
            col("Available", "string", "", 0),
            age
        ]),
        NAMESPACES => json!([name, col("Status", "string", "", 0), age]),
        _ => json!([name, age]),
    }
}

/// kubectl's short human duration (`45s`, `3m20s`, `5h`, `2d3h`).
#[must_use]
pub fn human_duration(secs: i64) -> String {
    if secs < 0 {
        return "0s".to_owned();
    }
    let (m, h, d) = (secs / 60, secs / 3_600, secs / 86_400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        if secs % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", secs % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 730 {
        format!("{d}d")
    } else {
        format!("{}y{}d", d / 365, d % 365)
    }
}

fn age(obj: &Value, now_secs: u64) -> String {
    let created = obj["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(parse_rfc3339)
        .unwrap_or(now_secs);
    human_duration(i64::try_from(now_secs).unwrap_or(0) - i64::try_from(created).unwrap_or(0))
}

fn condition<'a>(obj: &'a Value, ty: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}

/// The `STATUS` column of a node: `Ready`, `NotReady`, `Unknown`, plus `,SchedulingDisabled`.
#[must_use]
pub fn node_status(node: &Value) -> String {
    let mut s = match condition(node, "Ready").and_then(|c| c["status"].as_str()) {
        Some("True") => "Ready".to_owned(),
        Some("False") => "NotReady".to_owned(),
        _ => "Unknown".to_owned(),
    };
    if node["spec"]["unschedulable"].as_bool() == Some(true) {
        s.push_str(",SchedulingDisabled");
    }
    s
}

/// The `STATUS` column of a pod: `Terminating`, the waiting reason, or the phase.
#[must_use]
pub fn pod_status(pod: &Value) -> String {
    if pod["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        return "Terminating".to_owned();
    }
    let waiting = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|c| c["state"]["waiting"]["reason"].as_str());
    match waiting {
        Some(reason) => reason.to_owned(),
        None => pod["status"]["phase"]
            .as_str()
            .unwrap_or("Pending")
            .to_owned(),
    }
}

fn cells(res: ResourceId, obj: &Value, now_secs: u64) -> Value {
    let name = obj["metadata"]["name"].clone();
    let age = age(obj, now_secs);
    match res {
        NODES => {
            let roles: Vec<&str> = obj["metadata"]["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
                .collect();
            let roles = if roles.is_empty() {
                "<none>".to_owned()
            } else {
                roles.join(",")
            };
            json!([
                name,
                node_status(obj),
                roles,
                age,
                obj["status"]["nodeInfo"]["kubeletVersion"]
                    .as_str()
                    .unwrap_or(""),
                obj["metadata"]["labels"]["topology.kubernetes.io/zone"]
                    .as_str()
                    .unwrap_or("<none>")
            ])
        }
        PODS => {
            let statuses = obj["status"]["containerStatuses"].as_array();
            let total = obj["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses
                .into_iter()
                .flatten()
                .filter(|c| c["ready"] == true)
                .count();
            let restarts: i64 = statuses
                .into_iter()
                .flatten()
                .filter_map(|c| c["restartCount"].as_i64())
                .sum();
            json!([
                name,
                format!("{ready}/{total}"),
                pod_status(obj),
                restarts.to_string(),
                age,
                obj["status"]["podIP"].as_str().unwrap_or("<none>"),
                obj["spec"]["nodeName"].as_str().unwrap_or("<none>")
            ])
        }
        DEPLOYMENTS => {
            let s = &obj["status"];
            let n = |v: &Value| v.as_i64().unwrap_or(0);
            json!([
                name,
                format!("{}/{}", n(&s["readyReplicas"]), n(&obj["spec"]["replicas"])),
                n(&s["updatedReplicas"]),
                n(&s["availableReplicas"]),
                age
            ])
        }
        NAMESPACES => json!([
            name,
            obj["status"]["phase"].as_str().unwrap_or("Active"),
            age
        ]),
        _ => json!([name, age]),
    }
}

/// One table row, carrying the whole object (as with `includeObject=Object`).
#[must_use]
pub fn row(res: ResourceId, obj: &Value, now_secs: u64) -> Value {
    json!({"cells": cells(res, obj, now_secs), "object": obj})
}

/// A `Table` of objects.
#[must_use]
pub fn table(res: ResourceId, items: &[Arc<Value>], resource_version: u64, now_secs: u64) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": columns(res),
        "rows": items.iter().map(|o| row(res, o, now_secs)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_kubectl() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(900), "15m");
        assert_eq!(human_duration(5 * 3_600 + 120), "5h2m");
        assert_eq!(human_duration(3 * 86_400 + 7_200), "3d2h");
    }

    #[test]
    fn node_status_shows_cordon() {
        let node = json!({"spec": {"unschedulable": true}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(node_status(&node), "Ready,SchedulingDisabled");
    }
}
