//! The conformance suite of the embedded Toxiproxy: two client libraries (toxiproxy-python from
//! PyPI, toxiproxy-node-client from npm, both installed by scripts/test) run their cases in
//! conformance/toxiproxy-python/ and conformance/toxiproxy-node/ against `firedrill sim up
//! --only toxiproxy`. A failing case fails the test with the client's own output.

mod conformance_support;

use std::time::Duration;

use conformance_support::{root, run_client, sim_up};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxiproxy_python() {
    let sim = sim_up(&["--only", "toxiproxy", "--listen", "127.0.0.1:0"]).await;
    run_client(
        "toxiproxy-python",
        "python3",
        &root().join("conformance/toxiproxy-python/test_client.py"),
        &sim.env,
        Duration::from_secs(60),
        "pip install toxiproxy-python (scripts/test does)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxiproxy_node() {
    let sim = sim_up(&["--only", "toxiproxy", "--listen", "127.0.0.1:0"]).await;
    let modules = root().join("conformance/toxiproxy-node/node_modules/toxiproxy-node-client");
    assert!(
        modules.is_dir(),
        "{} is missing (hint: scripts/test runs npm ci in conformance/toxiproxy-node)",
        modules.display()
    );
    run_client(
        "toxiproxy-node-client",
        "node",
        &root().join("conformance/toxiproxy-node/test.js"),
        &sim.env,
        Duration::from_secs(60),
        "node and npm must be installed (scripts/test runs npm ci)",
    )
    .await;
}
