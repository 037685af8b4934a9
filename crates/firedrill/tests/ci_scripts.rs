//! ci/scripts/e2e.sh with stand-ins for docker, kind, kubectl, curl and the firedrill binary
//! it copies out of the image: every program call is recorded, so the order (clusters, image,
//! deploy, wait, expose, drills, reports, delete), the arguments and the env file written for
//! the platform file are checked without Docker. What the real programs do with those calls is
//! the kind run's to show.

mod ci_support;

use std::path::Path;
use std::process::Command;

use ci_support::{root, run, text};

/// One stand-in: appends `name args…` to $STUB_LOG, then does what the script needs of it.
const STUB: &str = r#"#!/usr/bin/env bash
set -euo pipefail
name="$(basename "$0")"
printf '%s %s\n' "$name" "$*" >> "$STUB_LOG"
case "$name $*" in
  "docker inspect"*primary-control-plane) echo 172.18.0.2 ;;
  "docker inspect"*failover-control-plane) echo 172.18.0.3 ;;
  "docker create"*) echo stub-container ;;
  "docker cp"*)
    target="${*: -1}"
    cp "$STUB_DIR/firedrill" "$target"
    chmod +x "$target"
    ;;
  "kubectl "*" create "*) echo "kind: Stub" ;;
  "kubectl "*" apply -f -"*) cat > /dev/null ;;
  "firedrill run"*) exit "${STUB_RUN_EXIT:-0}" ;;
esac
"#;

fn stubs(dir: &Path) {
    for name in ["docker", "kind", "kubectl", "curl", "firedrill"] {
        let path = dir.join(name);
        std::fs::write(&path, STUB).expect("write a stub");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("make the stub executable");
        }
    }
}

struct Run {
    code: Option<i32>,
    output: String,
    calls: Vec<String>,
    out_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn e2e(run_exit: i32) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("create the stub folder");
    stubs(&bin);
    let log = dir.path().join("calls.log");
    let out_dir = dir.path().join("out");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run(Command::new(root().join("ci/scripts/e2e.sh"))
        .current_dir(root())
        .env("PATH", path)
        .env("STUB_LOG", &log)
        .env("STUB_DIR", &bin)
        .env("STUB_RUN_EXIT", run_exit.to_string())
        .env("FIREDRILL_CI_OUT", &out_dir)
        .env("KUBECONFIG", "/stub/kubeconfig")
        .env_remove("FIREDRILL_CI_TAGS")
        .env_remove("FIREDRILL_BIN")
        .env_remove("KEEP_CLUSTERS")
        .env_remove("PORT_FORWARD"));
    let calls = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.replace(&root().display().to_string(), "ROOT"))
        .map(|l| l.replace(&out_dir.display().to_string(), "OUT"))
        .collect();
    Run {
        code: out.status.code(),
        output: text(&out),
        calls,
        out_dir,
        _dir: dir,
    }
}

/// The index of the first call starting with `prefix` after `from`, failing when none.
fn find(run: &Run, from: usize, prefix: &str) -> usize {
    run.calls[from..]
        .iter()
        .position(|c| c.starts_with(prefix))
        .map(|i| i + from)
        .unwrap_or_else(|| {
            panic!(
                "no call `{prefix}…` after call {from}:\n{}\n{}",
                run.calls.join("\n"),
                run.output
            )
        })
}

#[test]
fn e2e_makes_the_clusters_deploys_runs_the_drills_and_deletes_the_clusters() {
    let run = e2e(0);
    assert_eq!(
        run.code,
        Some(0),
        "{}\n{}",
        run.output,
        run.calls.join("\n")
    );
    let mut at = 0;
    for step in [
        "kind create cluster --config ROOT/ci/kind/primary.yaml",
        "kind create cluster --config ROOT/ci/kind/failover.yaml",
        "docker build --tag firedrill:ci ROOT",
        "docker cp stub-container:/usr/local/bin/firedrill OUT/bin/firedrill",
        "firedrill --version",
        "kind load docker-image firedrill:ci --name primary",
        "kind load docker-image firedrill:ci --name failover",
        "kubectl --context kind-primary -n mongo create configmap kind-network --from-literal=PRIMARY_NODE_IP=172.18.0.2 --from-literal=FAILOVER_NODE_IP=172.18.0.3",
        "kubectl --context kind-failover -n prod-3 create configmap kind-network --from-literal=PRIMARY_NODE_IP=172.18.0.2 --from-literal=FAILOVER_NODE_IP=172.18.0.3",
        "kubectl --context kind-primary apply -k ROOT/ci/k8s/overlays/primary",
        "kubectl --context kind-failover apply -k ROOT/ci/k8s/overlays/failover",
        "kubectl --context kind-primary -n mongo wait job/mongo-init --for condition=complete",
        "curl -fsS --max-time 2 -o /dev/null http://172.18.0.2:30000/",
        "curl -fsS --max-time 2 -o /dev/null http://172.18.0.2:30474/version",
        "firedrill validate --platform ci/platform.kind.yaml --tags @ci and not @member-kill",
        "firedrill run --platform ci/platform.kind.yaml --tags @ci and not @member-kill --yes --junit OUT/reports/junit.xml --json OUT/reports/firedrill.json --html OUT/reports/firedrill.html",
        "kubectl --context kind-primary get nodes,pods",
        "kind delete cluster --name primary",
        "kind delete cluster --name failover",
    ] {
        at = find(&run, at, step) + 1;
    }
    // Every namespace that reads the node addresses gets them, in both clusters.
    for (context, namespaces) in [
        (
            "kind-primary",
            &["prod-1", "prod-2", "prod-3", "firedrill", "mongo"][..],
        ),
        ("kind-failover", &["prod-1", "prod-2", "prod-3"][..]),
    ] {
        for ns in namespaces {
            find(
                &run,
                0,
                &format!("kubectl --context {context} -n {ns} create configmap kind-network"),
            );
        }
    }
    let env = std::fs::read_to_string(run.out_dir.join("kind.env")).expect("read kind.env");
    let env = firedrill_testkit::sim_up::parse_env(&env);
    let var = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{name} is not in kind.env: {env:?}"))
    };
    assert_eq!(var("FIREDRILL_FRONT_DOOR_URL"), "http://172.18.0.2:30000");
    assert_eq!(var("FIREDRILL_TOXIPROXY_URL"), "http://172.18.0.2:30474");
    assert_eq!(
        var("FIREDRILL_MONGO_URI_PROD_1"),
        "mongodb://172.18.0.2:30017,172.18.0.2:30018,172.18.0.2:30019/?replicaSet=rs-prod-1"
    );
    assert_eq!(var("FIREDRILL_KUBECONFIG"), "/stub/kubeconfig");
    assert!(var("FIREDRILL_BIN").ends_with("/bin/firedrill"));
    // Every variable the platform file reads without a default is set.
    let platform =
        std::fs::read_to_string(root().join("ci/platform.kind.yaml")).expect("read platform");
    let required = regex::Regex::new(r"\$\{([A-Z0-9_]+)\}").expect("regex");
    for name in required.captures_iter(&platform).map(|c| c[1].to_owned()) {
        var(&name);
    }
}

#[test]
fn a_failed_drill_fails_e2e_and_the_clusters_are_still_deleted() {
    let run = e2e(1);
    assert_eq!(
        run.code,
        Some(1),
        "{}\n{}",
        run.output,
        run.calls.join("\n")
    );
    let ran = find(&run, 0, "firedrill run ");
    let collected = find(&run, ran, "kubectl --context kind-primary get nodes,pods");
    find(&run, collected, "kind delete cluster --name primary");
    find(&run, collected, "kind delete cluster --name failover");
}
