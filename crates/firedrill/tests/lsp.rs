//! `firedrill lsp` driven by a real LSP client library: pygls's `LanguageClient` runs the
//! cases in tests/lsp/client.py against the built binary (diagnostics as the buffer changes,
//! completion of steps and of the platform's names, hover, shutdown).

use std::process::Stdio;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pygls_client_gets_diagnostics_completion_and_hover() {
    let root = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let script =
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lsp/client.py"));
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("python3")
            .arg(&script)
            .env("FIREDRILL_BIN", env!("CARGO_BIN_EXE_firedrill"))
            .current_dir(&root)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the pygls client finishes within 120 s")
    .expect("python3 runs (hint: scripts/test installs pygls)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pygls client failed ({}):\n{stdout}\n{stderr}\n(hint: `python3 -m pip install pygls`)",
        out.status
    );
    assert!(
        stdout.lines().any(|l| l == "9 passed, 0 failed"),
        "every case ran and passed:\n{stdout}\n{stderr}"
    );
}
