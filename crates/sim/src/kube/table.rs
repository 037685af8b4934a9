//! Server-side printing: the `meta.k8s.io/v1` `Table` that kubectl asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, with the columns the real server's
//! printers (`pkg/printers/internalversion`) print for nodes, pods, deployments, replica sets,
//! services, config maps, secrets, events, endpoints, service accounts, claims, leases and
//! disruption budgets (other kinds get NAME and AGE, as the real default printer does).

use std::sync::Arc;

use serde_json::{Value, json};

use super::resources::{
    CONFIGMAPS, DEPLOYMENTS, ENDPOINTS, EVENTS, NAMESPACES, NODES, PDBS, PODS, PVCS, REPLICASETS,
    RESOURCES, ResourceId, SECRETS, SERVICES,
};
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
        REPLICASETS => json!([
            name,
            col("Desired", "integer", "", 0),
            col("Current", "integer", "", 0),
            col("Ready", "integer", "", 0),
            age,
            col("Containers", "string", "", 1),
            col("Images", "string", "", 1),
            col("Selector", "string", "", 1)
        ]),
        SERVICES => json!([
            name,
            col("Type", "string", "", 0),
            col("Cluster-IP", "string", "", 0),
            col("External-IP", "string", "", 0),
            col("Port(s)", "string", "", 0),
            age,
            col("Selector", "string", "", 1)
        ]),
        CONFIGMAPS => json!([name, col("Data", "integer", "", 0), age]),
        SECRETS => json!([
            name,
            col("Type", "string", "", 0),
            col("Data", "string", "", 0),
            age
        ]),
        ENDPOINTS => json!([name, col("Endpoints", "string", "", 0), age]),
        EVENTS => json!([
            col("Last Seen", "string", "", 0),
            col("Type", "string", "", 0),
            col("Reason", "string", "", 0),
            col("Object", "string", "", 0),
            col("Subobject", "string", "", 1),
            col("Source", "string", "", 1),
            col("Message", "string", "", 0),
            col("First Seen", "string", "", 1),
            col("Count", "string", "", 1),
            col("Name", "string", "name", 1)
        ]),
        PDBS => json!([
            name,
            col("Min Available", "string", "", 0),
            col("Max Unavailable", "string", "", 0),
            col("Allowed Disruptions", "integer", "", 0),
            age
        ]),
        PVCS => json!([
            name,
            col("Status", "string", "", 0),
            col("Volume", "string", "", 0),
            col("Capacity", "string", "", 0),
            col("Access Modes", "string", "", 0),
            col("StorageClass", "string", "", 0),
            col("VolumeAttributesClass", "string", "", 0),
            age,
            col("VolumeMode", "string", "", 1)
        ]),
        _ if RESOURCES[res].plural == "serviceaccounts" => {
            json!([name, col("Secrets", "string", "", 0), age])
        }
        _ if RESOURCES[res].plural == "leases" => {
            json!([name, col("Holder", "string", "", 0), age])
        }
        _ => json!([name, age]),
    }
}

fn containers_and_images(template_spec: &Value) -> (String, String) {
    let containers = template_spec["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let images: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["image"].as_str())
        .collect();
    (names.join(","), images.join(","))
}

fn selector_text(selector: &Value) -> String {
    let text = super::selector::LabelSelector::from_object(selector).render();
    if text.is_empty() {
        "<none>".to_owned()
    } else {
        text
    }
}

fn map_selector(selector: &Value) -> String {
    let mut pairs: Vec<String> = selector
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".to_owned()
    } else {
        pairs.join(",")
    }
}

/// The `PORT(S)` column of a service: `80/TCP,443:30443/TCP`.
fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64().filter(|n| *n > 0) {
                Some(n) => format!("{}:{n}/{proto}", p["port"]),
                None => format!("{}/{proto}", p["port"]),
            }
        })
        .collect();
    if ports.is_empty() {
        "<none>".to_owned()
    } else {
        ports.join(",")
    }
}

/// The `EXTERNAL-IP` column: external IPs, a load balancer's ingress or `<pending>`.
fn service_external_ip(svc: &Value) -> String {
    let spec = &svc["spec"];
    let mut ips: Vec<String> = spec["externalIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    match spec["type"].as_str() {
        Some("ExternalName") => {
            return spec["externalName"].as_str().unwrap_or("<none>").to_owned();
        }
        Some("LoadBalancer") => {
            for ing in svc["status"]["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(v) = ing["ip"].as_str().or_else(|| ing["hostname"].as_str()) {
                    ips.push(v.to_owned());
                }
            }
            if ips.is_empty() {
                return "<pending>".to_owned();
            }
        }
        _ => {}
    }
    if ips.is_empty() {
        "<none>".to_owned()
    } else {
        ips.join(",")
    }
}

/// The `ENDPOINTS` column: the first three `ip:port`, then `+ N more...`.
fn endpoints_text(ep: &Value) -> String {
    let mut all = Vec::new();
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        let ports: Vec<i64> = subset["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["port"].as_i64())
            .collect();
        for a in subset["addresses"].as_array().into_iter().flatten() {
            let ip = a["ip"].as_str().unwrap_or_default();
            if ports.is_empty() {
                all.push(ip.to_owned());
            }
            for p in &ports {
                all.push(format!("{ip}:{p}"));
            }
        }
    }
    match all.len() {
        0 => "<none>".to_owned(),
        n if n > 3 => format!("{} + {} more...", all[..3].join(","), n - 3),
        _ => all.join(","),
    }
}

fn since(stamp: &Value, now_secs: u64) -> String {
    match stamp.as_str().and_then(parse_rfc3339) {
        Some(t) => {
            human_duration(i64::try_from(now_secs).unwrap_or(0) - i64::try_from(t).unwrap_or(0))
        }
        None => "<unknown>".to_owned(),
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
        REPLICASETS => {
            let (containers, images) = containers_and_images(&obj["spec"]["template"]["spec"]);
            let n = |v: &Value| v.as_i64().unwrap_or(0);
            json!([
                name,
                n(&obj["spec"]["replicas"]),
                n(&obj["status"]["replicas"]),
                n(&obj["status"]["readyReplicas"]),
                age,
                containers,
                images,
                selector_text(&obj["spec"]["selector"])
            ])
        }
        SERVICES => json!([
            name,
            obj["spec"]["type"].as_str().unwrap_or("ClusterIP"),
            obj["spec"]["clusterIP"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("<none>"),
            service_external_ip(obj),
            service_ports(obj),
            age,
            map_selector(&obj["spec"]["selector"])
        ]),
        CONFIGMAPS => {
            let count = |k: &str| obj[k].as_object().map_or(0, serde_json::Map::len);
            json!([name, count("data") + count("binaryData"), age])
        }
        SECRETS => json!([
            name,
            obj["type"].as_str().unwrap_or("Opaque"),
            obj["data"].as_object().map_or(0, serde_json::Map::len),
            age
        ]),
        ENDPOINTS => json!([name, endpoints_text(obj), age]),
        EVENTS => {
            let involved = &obj["involvedObject"];
            let object = format!(
                "{}/{}",
                involved["kind"].as_str().unwrap_or_default().to_lowercase(),
                involved["name"].as_str().unwrap_or_default()
            );
            let source = &obj["source"];
            let mut source_text = source["component"].as_str().unwrap_or_default().to_owned();
            if let Some(host) = source["host"].as_str().filter(|h| !h.is_empty()) {
                source_text = format!("{source_text}, {host}");
            }
            let count = obj["count"].as_i64().unwrap_or(1);
            let mut last_seen = since(&obj["lastTimestamp"], now_secs);
            if count > 1 {
                last_seen = format!(
                    "{last_seen} (x{count} over {})",
                    since(&obj["firstTimestamp"], now_secs)
                );
            }
            json!([
                last_seen,
                obj["type"].as_str().unwrap_or_default(),
                obj["reason"].as_str().unwrap_or_default(),
                object,
                involved["fieldPath"].as_str().unwrap_or_default(),
                source_text,
                obj["message"].as_str().unwrap_or_default().trim(),
                since(&obj["firstTimestamp"], now_secs),
                count.to_string(),
                name
            ])
        }
        PDBS => {
            let or_na = |v: &Value| match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => "N/A".to_owned(),
            };
            json!([
                name,
                or_na(&obj["spec"]["minAvailable"]),
                or_na(&obj["spec"]["maxUnavailable"]),
                obj["status"]["disruptionsAllowed"].as_i64().unwrap_or(0),
                age
            ])
        }
        PVCS => {
            let modes: Vec<&str> = obj["status"]["accessModes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            json!([
                name,
                obj["status"]["phase"].as_str().unwrap_or("Pending"),
                obj["spec"]["volumeName"].as_str().unwrap_or_default(),
                obj["status"]["capacity"]["storage"]
                    .as_str()
                    .unwrap_or_default(),
                modes.join(","),
                obj["spec"]["storageClassName"]
                    .as_str()
                    .unwrap_or("<unset>"),
                obj["spec"]["volumeAttributesClassName"]
                    .as_str()
                    .unwrap_or("<unset>"),
                age,
                obj["spec"]["volumeMode"].as_str().unwrap_or("Filesystem")
            ])
        }
        _ if RESOURCES[res].plural == "serviceaccounts" => {
            json!([name, obj["secrets"].as_array().map_or(0, Vec::len), age])
        }
        _ if RESOURCES[res].plural == "leases" => json!([
            name,
            obj["spec"]["holderIdentity"].as_str().unwrap_or_default(),
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
