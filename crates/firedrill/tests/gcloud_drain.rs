//! fixtures/platforms/gcloud-backend-drain.sh, the production example's `us-west1-dark` fault,
//! against a stand-in `gcloud` that records its calls and describes a backend service with
//! NEG backends in us-west1 (scalers 0.8 and 1) and us-west2: the drain sets each us-west1
//! backend's capacity scaler to 0 after recording it, and the restore sets back the recorded
//! values, once.

use std::path::{Path, PathBuf};
use std::process::Command;

const GCLOUD: &str = r#"#!/usr/bin/env bash
set -euo pipefail
printf '%s\n' "$*" >> "$GCLOUD_LOG"
case "$*" in
  "compute backend-services describe"*)
    p=https://www.googleapis.com/compute/v1/projects/shop/zones
    echo "$p/us-west1-a/networkEndpointGroups/shop-neg-a,0.8"
    echo "$p/us-west1-b/networkEndpointGroups/shop-neg-b,1"
    echo "$p/us-west2-a/networkEndpointGroups/shop-neg-w2a,1"
    ;;
esac
"#;

fn script() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("fixtures/platforms/gcloud-backend-drain.sh")
}

struct Stand {
    dir: tempfile::TempDir,
}

impl Stand {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).expect("bin");
        let gcloud = bin.join("gcloud");
        std::fs::write(&gcloud, GCLOUD).expect("write gcloud");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&gcloud, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        Self { dir }
    }

    fn record(&self) -> PathBuf {
        self.dir.path().join("state/shop-us-west1.capacity")
    }

    /// Runs the script; returns the gcloud calls it made.
    fn run(&self, args: &[&str]) -> Vec<String> {
        let log = self.dir.path().join("calls.log");
        let _ = std::fs::remove_file(&log);
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new(script())
            .args(args)
            .env("PATH", path)
            .env("GCLOUD_LOG", &log)
            .output()
            .expect("run the script");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn update(neg: &str, zone: &str, scaler: &str) -> String {
    format!(
        "compute backend-services update-backend shop --global --network-endpoint-group={neg} --network-endpoint-group-zone={zone} --capacity-scaler={scaler} --quiet"
    )
}

#[test]
fn a_drain_zeroes_each_us_west1_backend_and_the_restore_puts_the_recorded_scalers_back() {
    let stand = Stand::new();
    let record = stand.record();
    let record_arg = record.to_str().expect("utf-8 path");

    let drained = stand.run(&["drain", "shop", "us-west1", record_arg]);
    assert_eq!(
        drained[1..],
        [
            update("shop-neg-a", "us-west1-a", "0"),
            update("shop-neg-b", "us-west1-b", "0"),
        ],
        "{drained:#?}"
    );
    assert!(drained[0].starts_with("compute backend-services describe shop --global"));
    let recorded = std::fs::read_to_string(&record).expect("the record");
    assert_eq!(
        recorded,
        "us-west1-a shop-neg-a 0.8\nus-west1-b shop-neg-b 1\n"
    );

    // A second drain before the restore keeps the record (it does not record the zeros).
    let again = stand.run(&["drain", "shop", "us-west1", record_arg]);
    assert!(again.iter().all(|c| !c.contains("describe")), "{again:#?}");
    assert_eq!(std::fs::read_to_string(&record).expect("record"), recorded);

    let restored = stand.run(&["restore", "shop", record_arg]);
    assert_eq!(
        restored,
        [
            update("shop-neg-a", "us-west1-a", "0.8"),
            update("shop-neg-b", "us-west1-b", "1"),
        ]
    );
    assert!(!record.exists(), "the record outlived the restore");
    // Restoring twice is harmless: nothing is recorded any more.
    assert_eq!(
        stand.run(&["restore", "shop", record_arg]),
        Vec::<String>::new()
    );
}

#[test]
fn a_region_with_no_backend_is_an_error_and_records_nothing() {
    let stand = Stand::new();
    let record = stand.record();
    let out = Command::new(script())
        .args([
            "drain",
            "shop",
            "europe-west1",
            record.to_str().expect("utf-8"),
        ])
        .env(
            "PATH",
            format!(
                "{}:{}",
                stand.dir.path().join("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("GCLOUD_LOG", stand.dir.path().join("calls.log"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no NEG backend in europe-west1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!record.exists());
}
