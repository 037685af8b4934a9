//! Services as the API server's service registry writes them: a cluster IP from the service
//! range (`10.96.0.0/12`, kubeadm's default), node ports from 30000–32767 for NodePort and
//! LoadBalancer services, and the defaults a real server fills (`clusterIPs`, `ipFamilies`,
//! `sessionAffinity`, each port's `protocol` and `targetPort`). A cluster IP cannot change.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::error::ApiError;
use super::resources::{RESOURCES, SERVICES};
use super::store::Store;

/// The service IP range.
pub const SERVICE_RANGE: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 96, 0, 0), 12);
/// The IP of the `kubernetes` service in `default` (the first of the range).
pub const API_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);
/// The node port range.
pub const NODE_PORTS: std::ops::RangeInclusive<u16> = 30_000..=32_767;

fn in_range(ip: Ipv4Addr) -> bool {
    let (base, bits) = SERVICE_RANGE;
    let mask = u32::MAX << (32 - u32::from(bits));
    u32::from(ip) & mask == u32::from(base)
}

fn invalid(name: &str, field: &str, value: &Value, why: &str) -> ApiError {
    ApiError::invalid(&RESOURCES[SERVICES], name, field, value, why)
}

fn go_list(ips: &[&str]) -> Value {
    // The real message prints the Go value: []string{"10.96.0.10"}.
    let inner: Vec<String> = ips.iter().map(|ip| format!("{ip:?}")).collect();
    Value::String(format!("[]string{{{}}}", inner.join(", ")))
}

/// Fills a new service's cluster IP, node ports and defaults.
///
/// # Errors
///
/// `422 Invalid` for a cluster IP outside the range or already allocated, a node port
/// outside 30000–32767 or taken, or an ExternalName service without `externalName`.
pub fn on_create(store: &Store, name: &str, obj: &mut Value) -> Result<(), ApiError> {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        *spec = json!({});
    }
    if spec.get("type").is_none() {
        spec["type"] = json!("ClusterIP");
    }
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_owned();
    if ty == "ExternalName" {
        if spec["externalName"].as_str().is_none_or(str::is_empty) {
            return Err(invalid(
                name,
                "spec.externalName",
                &json!(""),
                "Required value",
            ));
        }
    } else {
        let used: BTreeSet<Ipv4Addr> = store
            .list(SERVICES, None)
            .filter_map(|s| s["spec"]["clusterIP"].as_str()?.parse().ok())
            .collect();
        let asked = spec["clusterIP"].as_str().unwrap_or_default().to_owned();
        let ip = match asked.as_str() {
            "" => (u32::from(SERVICE_RANGE.0) + 10..u32::from(SERVICE_RANGE.0) + (1 << 20) - 1)
                .map(Ipv4Addr::from)
                .find(|ip| !used.contains(ip))
                .map(|ip| ip.to_string())
                .ok_or_else(|| invalid(name, "spec.clusterIPs", &go_list(&[]), "range is full"))?,
            "None" => "None".to_owned(),
            other => {
                let parsed: Ipv4Addr = other.parse().map_err(|_| {
                    invalid(
                        name,
                        "spec.clusterIPs[0]",
                        &json!(other),
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    )
                })?;
                if !in_range(parsed) {
                    return Err(invalid(
                        name,
                        "spec.clusterIPs",
                        &go_list(&[other]),
                        &format!(
                            "failed to allocate IP {other}: the provided IP ({other}) is not in the valid range. The range of valid IPs is {}/{}",
                            SERVICE_RANGE.0, SERVICE_RANGE.1
                        ),
                    ));
                }
                if used.contains(&parsed) {
                    return Err(invalid(
                        name,
                        "spec.clusterIPs",
                        &go_list(&[other]),
                        &format!("failed to allocate IP {other}: provided IP is already allocated"),
                    ));
                }
                other.to_owned()
            }
        };
        spec["clusterIP"] = json!(ip);
        spec["clusterIPs"] = json!([ip]);
        if ip != "None" || spec.get("ipFamilies").is_none() {
            spec["ipFamilies"] = json!(["IPv4"]);
        }
        if spec.get("ipFamilyPolicy").is_none() {
            spec["ipFamilyPolicy"] = json!("SingleStack");
        }
        if spec.get("internalTrafficPolicy").is_none() {
            spec["internalTrafficPolicy"] = json!("Cluster");
        }
    }
    if spec.get("sessionAffinity").is_none() {
        spec["sessionAffinity"] = json!("None");
    }
    let node_ports = ty == "NodePort" || ty == "LoadBalancer";
    if node_ports {
        if spec.get("externalTrafficPolicy").is_none() {
            spec["externalTrafficPolicy"] = json!("Cluster");
        }
        if ty == "LoadBalancer" && spec.get("allocateLoadBalancerNodePorts").is_none() {
            spec["allocateLoadBalancerNodePorts"] = json!(true);
        }
    }
    let mut used_ports: BTreeSet<u64> = store
        .list(SERVICES, None)
        .flat_map(|s| {
            s["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["nodePort"].as_u64())
                .collect::<Vec<_>>()
        })
        .collect();
    for (i, port) in spec["ports"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .enumerate()
    {
        default_port(port);
        if !node_ports {
            continue;
        }
        match port["nodePort"].as_u64() {
            None | Some(0) => {
                let free = NODE_PORTS
                    .map(u64::from)
                    .find(|p| !used_ports.contains(p))
                    .ok_or_else(|| {
                        invalid(
                            name,
                            &format!("spec.ports[{i}].nodePort"),
                            &json!(0),
                            "range is full",
                        )
                    })?;
                port["nodePort"] = json!(free);
                used_ports.insert(free);
            }
            Some(n) if !NODE_PORTS.contains(&u16::try_from(n).unwrap_or(0)) => {
                return Err(invalid(
                    name,
                    &format!("spec.ports[{i}].nodePort"),
                    &json!(n),
                    &format!(
                        "provided port is not in the valid range. The range of valid ports is {}-{}",
                        NODE_PORTS.start(),
                        NODE_PORTS.end()
                    ),
                ));
            }
            Some(n) if used_ports.contains(&n) => {
                return Err(invalid(
                    name,
                    &format!("spec.ports[{i}].nodePort"),
                    &json!(n),
                    "provided port is already allocated",
                ));
            }
            Some(n) => {
                used_ports.insert(n);
            }
        }
    }
    if ty == "LoadBalancer" {
        obj["status"] = json!({"loadBalancer": {}});
    }
    Ok(())
}

fn default_port(port: &mut Value) {
    if port.get("protocol").is_none() {
        port["protocol"] = json!("TCP");
    }
    if port.get("targetPort").is_none_or(Value::is_null) {
        port["targetPort"] = port["port"].clone();
    }
}

/// Keeps an updated service's cluster IP (an update that leaves it empty keeps it, as
/// `kubectl apply` of a manifest without one expects) and node ports, and fills port defaults.
///
/// # Errors
///
/// `422 Invalid` when the update changes the cluster IP.
pub fn on_update(old: &Value, name: &str, new: &mut Value) -> Result<(), ApiError> {
    let old_spec = &old["spec"];
    let spec = &mut new["spec"];
    if !spec.is_object() {
        *spec = json!({});
    }
    for keep in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        let empty = spec
            .get(keep)
            .is_none_or(|v| v.is_null() || v == "" || v.as_array().is_some_and(Vec::is_empty));
        if empty && let Some(v) = old_spec.get(keep) {
            spec[keep] = v.clone();
        }
    }
    if spec["clusterIP"] != old_spec["clusterIP"] && old_spec.get("clusterIP").is_some() {
        let value = spec["clusterIP"].as_str().unwrap_or_default().to_owned();
        return Err(invalid(
            name,
            "spec.clusterIPs[0]",
            &go_list(&[&value]),
            "may not change once set",
        ));
    }
    let old_ports = old_spec["ports"].as_array().cloned().unwrap_or_default();
    for port in spec["ports"].as_array_mut().into_iter().flatten() {
        default_port(port);
        if port.get("nodePort").is_none()
            && let Some(n) = old_ports
                .iter()
                .find(|o| o["port"] == port["port"] && o["protocol"] == port["protocol"])
                .and_then(|o| o.get("nodePort"))
        {
            port["nodePort"] = n.clone();
        }
    }
    Ok(())
}

/// The `kubernetes` service of `default`, pointing at the API server.
#[must_use]
pub fn api_service() -> Value {
    json!({
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "clusterIP": API_SERVICE_IP.to_string(),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            "type": "ClusterIP",
        },
    })
}

/// The Endpoints of the `kubernetes` service: the API server's own address.
#[must_use]
pub fn api_endpoints(addr: std::net::SocketAddr) -> Value {
    json!({
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [{
            "addresses": [{"ip": addr.ip().to_string()}],
            "ports": [{"name": "https", "port": addr.port(), "protocol": "TCP"}],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_kubeadms() {
        assert!(in_range(Ipv4Addr::new(10, 96, 0, 1)));
        assert!(in_range(Ipv4Addr::new(10, 111, 255, 254)));
        assert!(!in_range(Ipv4Addr::new(10, 112, 0, 1)));
        assert!(!in_range(Ipv4Addr::new(192, 168, 0, 1)));
    }

    #[test]
    fn a_changed_cluster_ip_is_refused_and_an_empty_one_kept() {
        let old = json!({"spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}});
        let mut kept = json!({"spec": {"ports": [{"port": 80}]}});
        on_update(&old, "web", &mut kept).expect("an empty clusterIP keeps the old one");
        assert_eq!(kept["spec"]["clusterIP"], "10.96.0.10");
        assert_eq!(kept["spec"]["ports"][0]["targetPort"], 80);
        let mut changed = json!({"spec": {"clusterIP": "10.96.0.11"}});
        let err = on_update(&old, "web", &mut changed).expect_err("immutable");
        assert_eq!(err.code, 422);
        assert!(
            err.message.contains("may not change once set"),
            "{}",
            err.message
        );
    }
}
