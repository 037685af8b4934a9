//! `firedrill init` against the embedded Kubernetes API servers (crates/sim, in process): the
//! platform file it writes holds the estate's regions, zones, namespaces and replicas, `validate`
//! refuses it naming every placeholder, and accepts it once they are filled in.

use std::path::Path;
use std::process::Output;

use firedrill_core::clock::Clock;
use firedrill_platform::Role;
use firedrill_sim::KubeEstate;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_firedrill");

async fn firedrill(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("FIREDRILL_PLATFORM")
        .output()
        .await
        .expect("run firedrill");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

async fn estate() -> KubeEstate {
    KubeEstate::start(
        Clock::real(),
        11,
        &|region| format!("gke_shop_{region}"),
        firedrill_sim::temp_kubeconfig(),
    )
    .await
    .expect("embedded kube estate starts")
}

/// Every placeholder outside comments, in file order.
fn placeholders(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"<fill:[^>]*>").expect("regex");
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| re.find_iter(l).map(|m| m.as_str().to_owned()))
        .collect()
}

/// Fills every placeholder the way an operator would, by the key it stands under.
fn fill(text: &str) -> String {
    let re = regex::Regex::new(r#""<fill:[^>]*>""#).expect("regex");
    let mut replica_set = 0;
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with('#') {
                return format!("{line}\n");
            }
            let key = line.trim_start().split(':').next().unwrap_or_default();
            let mut nth = 0;
            let filled = re.replace_all(line, |_: &regex::Captures| {
                nth += 1;
                let value = match (key, nth) {
                    ("replica-set", _) => {
                        replica_set += 1;
                        format!("rs-{replica_set}")
                    }
                    ("url", _) => "http://127.0.0.1:8474/healthz".to_owned(),
                    ("proxy", _) => "mongo".to_owned(),
                    ("zones", _) => "us-west2-a".to_owned(),
                    ("region-header", _) => "x-served-by".to_owned(),
                    ("run", 1) => "switch-traffic".to_owned(),
                    ("run", _) => "--to={region}".to_owned(),
                    (other, _) => panic!("no filling for a placeholder under `{other}`: {line}"),
                };
                format!("\"{value}\"")
            });
            format!("{filled}\n")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_the_estate_and_validate_names_each_placeholder_until_filled() {
    let estate = estate().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = estate.kubeconfig.display().to_string();
    let (code, _, stderr) = firedrill(
        dir.path(),
        &[
            "init",
            "--context",
            "gke_shop_us-west1",
            "--context",
            "gke_shop_us-west2",
            "--kubeconfig",
            &kubeconfig,
            "--region",
            "gke_shop_us-west2=us-west2",
            "--output",
            "platform.yaml",
        ],
    )
    .await;
    assert_eq!(code, 0, "init failed: {stderr}");
    let text = std::fs::read_to_string(dir.path().join("platform.yaml")).expect("written");

    // Refused until filled, each placeholder named with its position.
    let expected = placeholders(&text);
    assert!(
        expected.len() >= 10,
        "databases, links, switch and probes are placeholders:\n{text}"
    );
    assert!(
        stderr.contains(&format!("{} placeholder(s) to fill in", expected.len())),
        "{stderr}"
    );
    let (code, _, stderr) =
        firedrill(dir.path(), &["validate", "--platform", "platform.yaml"]).await;
    assert_eq!(code, 2, "an unfilled file is refused:\n{stderr}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("error: ") && l.contains("is not filled in"))
            .count(),
        expected.len(),
        "{stderr}"
    );
    for placeholder in &expected {
        assert!(
            stderr.contains(&format!("placeholder \"{placeholder}\" is not filled in")),
            "{placeholder} not named:\n{stderr}"
        );
    }
    assert!(stderr.contains("platform.yaml:"), "located: {stderr}");

    // Filled in, it is accepted, and it describes the estate.
    let filled = fill(&text);
    std::fs::write(dir.path().join("platform.yaml"), &filled).expect("write");
    let (code, stdout, stderr) =
        firedrill(dir.path(), &["validate", "--platform", "platform.yaml"]).await;
    assert_eq!(code, 0, "filled file refused:\n{stderr}\n{filled}");
    assert!(stdout.starts_with("ok:"), "{stdout}");

    let platform = firedrill_platform::load_str(Path::new("platform.yaml"), &filled, &|_| None)
        .unwrap_or_else(|p| panic!("{p}"));
    let west1 = &platform.regions["us-west1"];
    assert_eq!(west1.role, Role::Primary);
    assert_eq!(west1.kube_context.as_deref(), Some("gke_shop_us-west1"));
    assert_eq!(west1.zones, ["us-west1-a", "us-west1-b", "us-west1-c"]);
    let west2 = &platform.regions["us-west2"];
    assert_eq!(west2.role, Role::Failover);
    assert!(
        text.contains("role: failover                 # passive: runs 0 replicas now"),
        "{text}"
    );
    assert_eq!(
        platform.namespaces.keys().collect::<Vec<_>>(),
        ["prod-1", "prod-2", "prod-3"]
    );
    for namespace in platform.namespaces.values() {
        assert_eq!(namespace.services["storefront"].failover_replicas, 3);
    }
    assert_eq!(
        platform.safety.allow.kube_contexts,
        ["gke_shop_us-west1", "gke_shop_us-west2"]
    );
    assert_eq!(
        platform.safety.allow.namespaces,
        ["prod-1", "prod-2", "prod-3"]
    );
    assert_eq!(platform.safety.allow.replica_sets, ["rs-1", "rs-2", "rs-3"]);
    assert_eq!(platform.databases["prod-2"].replica_set, "rs-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_its_nodes_do_not_name_is_a_placeholder_and_an_unknown_context_writes_nothing() {
    let estate = estate().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = estate.kubeconfig.display().to_string();
    // us-west2's node pools are at 0 nodes: nothing tells its region or zones.
    let (code, text, stderr) = firedrill(
        dir.path(),
        &[
            "init",
            "-c",
            "gke_shop_us-west1",
            "-c",
            "gke_shop_us-west2",
            "--kubeconfig",
            &kubeconfig,
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        text.contains("\"<fill: the region of kube context gke_shop_us-west2 (its nodes carry no topology.kubernetes.io/region label; or pass --region gke_shop_us-west2=REGION)>\":"),
        "{text}"
    );
    assert!(text.contains("<fill: the zones of"), "{text}");

    let (code, _, stderr) = firedrill(
        dir.path(),
        &[
            "init",
            "-c",
            "gke_shop_us-east1",
            "--kubeconfig",
            &kubeconfig,
            "-o",
            "platform.yaml",
        ],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cannot read kube context \"gke_shop_us-east1\"")
            && stderr.contains("no such context"),
        "{stderr}"
    );
    assert!(!dir.path().join("platform.yaml").exists());
}
