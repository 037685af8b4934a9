//! The conformance suite of the embedded Kubernetes API server: kubectl and the Python
//! `kubernetes` client (both installed by scripts/test) run their cases in
//! conformance/kubectl/ and conformance/kubernetes-python/ against `firedrill sim up --only
//! kube`. A failing case fails the test with the client's own output.

mod conformance_support;

use std::time::Duration;

use conformance_support::{root, run_client, sim_up};

/// Platform seconds per wall second: pods of new deployments turn Ready in about a second.
const SCALE: &str = "100";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl() {
    let sim = sim_up(&["--only", "kube", "--time-scale", SCALE]).await;
    let mut env = sim.env.clone();
    env.insert("CONTEXT".into(), "us-west1".into());
    run_client(
        "kubectl",
        "bash",
        &root().join("conformance/kubectl/run.sh"),
        &env,
        Duration::from_secs(120),
        "kubectl must be on PATH: scripts/test installs it",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_python() {
    let sim = sim_up(&["--only", "kube", "--time-scale", SCALE]).await;
    let mut env = sim.env.clone();
    env.insert("CONTEXT".into(), "us-west1".into());
    run_client(
        "the Python kubernetes client",
        "python3",
        &root().join("conformance/kubernetes-python/test_client.py"),
        &env,
        Duration::from_secs(120),
        "pip install kubernetes (scripts/test does)",
    )
    .await;
}
