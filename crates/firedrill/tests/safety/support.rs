//! What every safety test shares: `firedrill sim up` in another process, a firedrill run in a
//! third, what the platform looks like through its own APIs, and waits with deadlines.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firedrill_testkit::{SimUp, Wait};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

pub const BIN: firedrill_testkit::Binary = firedrill_testkit::firedrill!();

/// How long any wait of these tests may take before it fails with what it saw.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The tests share two cores with everything else: one platform and one drill at a time.
pub static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Four faults of three kinds — a Toxiproxy toxic, a link cut (proxy disabled), a zone taint,
/// a region gone dark (its deployments at 0) — then `wait` of platform time.
#[must_use]
pub fn drill(wait: &str) -> String {
    format!(
        "Feature: faults of three kinds\n  Scenario: a toxic, a cut link, a zone taint and a dark region, then a wait\n    When the link \"front-door-to-us-west1\" has 300ms latency (±0ms) downstream\n    And the link \"us-west1-to-prod-2-db\" is cut\n    And zone \"us-west1-b\" goes down\n    And region \"us-west1\" goes dark\n    And {wait} pass\n"
    )
}

/// The console line once every fault of [`drill`] is in.
pub const FAULTS_IN: &str = "✔ And region \"us-west1\" goes dark";

/// `firedrill sim up --time-scale 200` in its own process, stopped when dropped.
pub struct Sim {
    sim: SimUp,
    toxiproxy: String,
    kubeconfig: PathBuf,
    platform: PathBuf,
    http: reqwest::Client,
}

impl Sim {
    /// Starts it and waits for its env file.
    pub async fn up() -> Self {
        let sim = SimUp::start_async(BIN, &["--time-scale", "200"]).await;
        Self {
            toxiproxy: sim.var("FIREDRILL_TOXIPROXY_URL").to_owned(),
            kubeconfig: PathBuf::from(sim.var("FIREDRILL_KUBECONFIG")),
            platform: PathBuf::from(sim.var("FIREDRILL_PLATFORM")),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            sim,
        }
    }

    /// The folder runs work in (drills, ledger, reports).
    pub fn dir(&self) -> &Path {
        self.sim.dir()
    }

    /// Writes `drills/<name>` and returns its path.
    pub fn drill_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir().join("drills").join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("drills/");
        std::fs::write(&path, text).expect("drill");
        path
    }

    /// `firedrill run DRILL --platform <sim's> --ledger LEDGER --json REPORT`, in the folder.
    pub fn run(&self, drill: &Path, ledger: &str, report: &str) -> Command {
        let mut cmd = firedrill(self.dir());
        cmd.arg("run")
            .arg(drill)
            .arg("--platform")
            .arg(&self.platform)
            .args(["--ledger", ledger, "--json", report, "--yes"]);
        cmd
    }

    /// `firedrill recover --ledger LEDGER`, in the folder.
    pub fn recover(&self, ledger: &str) -> Command {
        let mut cmd = firedrill(self.dir());
        cmd.args(["recover", "--ledger", ledger]);
        cmd
    }

    /// Faults this ledger still lists.
    pub fn outstanding(&self, ledger: &str) -> usize {
        firedrill_engine::ledger::Ledger::<firedrill_providers::Undo>::outstanding(
            &self.dir().join(ledger),
        )
        .unwrap_or_else(|e| panic!("read the ledger {ledger}: {e}"))
        .len()
    }

    /// The JSON report a run wrote.
    pub fn report(&self, name: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir().join(name))
            .unwrap_or_else(|e| panic!("report {name}: {e}"));
        serde_json::from_str(&text).expect("report is JSON")
    }

    /// What the platform looks like through its own APIs.
    pub async fn state(&self) -> State {
        let proxies: serde_json::Value = self
            .http
            .get(format!("{}/proxies", self.toxiproxy))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("GET /proxies")
            .json()
            .await
            .expect("proxies JSON");
        let proxies = proxies
            .as_object()
            .expect("proxies object")
            .iter()
            .map(|(name, p)| {
                let toxics = p["toxics"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t["name"].as_str().map(str::to_owned))
                    .collect();
                (
                    name.clone(),
                    Proxy {
                        enabled: p["enabled"].as_bool().unwrap_or(false),
                        toxics,
                    },
                )
            })
            .collect();
        let mut replicas = BTreeMap::new();
        let mut ready = BTreeMap::new();
        let mut taints = BTreeMap::new();
        for context in ["us-west1", "us-west2"] {
            let client = self.kube(context).await;
            let deployments: Api<Deployment> = Api::all(client.clone());
            for d in deployments
                .list(&ListParams::default())
                .await
                .expect("list deployments")
            {
                let name = format!(
                    "{context}/{}/{}",
                    d.metadata.namespace.clone().unwrap_or_default(),
                    d.metadata.name.clone().unwrap_or_default()
                );
                replicas.insert(
                    name.clone(),
                    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                );
                ready.insert(
                    name,
                    d.status
                        .as_ref()
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0),
                );
            }
            let nodes: Api<Node> = Api::all(client);
            for n in nodes
                .list(&ListParams::default())
                .await
                .expect("list nodes")
            {
                let set: BTreeSet<String> = n
                    .spec
                    .and_then(|s| s.taints)
                    .into_iter()
                    .flatten()
                    .map(|t| format!("{}={}:{}", t.key, t.value.unwrap_or_default(), t.effect))
                    .collect();
                taints.insert(
                    format!("{context}/{}", n.metadata.name.unwrap_or_default()),
                    set,
                );
            }
        }
        State {
            proxies,
            replicas,
            taints,
            ready,
        }
    }

    /// The platform before a drill: no toxic, every proxy enabled, every deployment Ready.
    pub async fn settled(&self) -> State {
        Wait::new("the platform settles", DEADLINE)
            .every(Duration::from_millis(50))
            .until_async(|| async {
                let state = self.state().await;
                if state.is_untouched() && state.is_ready() {
                    Ok(state)
                } else {
                    Err(state)
                }
            })
            .await
    }

    /// Asserts the platform is as it was (no toxics, proxies enabled, replica counts and
    /// taints as before); `what` says which case left it otherwise.
    pub async fn assert_as_before(&self, before: &State, what: &str) {
        let after = self.state().await;
        assert!(
            after.is_untouched(),
            "{what}: faults left on Toxiproxy: {:#?}",
            after.proxies
        );
        assert_eq!(
            after.replicas, before.replicas,
            "{what}: replica counts differ"
        );
        assert_eq!(after.taints, before.taints, "{what}: node taints differ");
    }

    /// Asserts every fault of [`drill`] is in, so an "as before" afterwards means undone.
    pub async fn assert_faults_in(&self) {
        if let Err(missing) = faults_in(&self.state().await) {
            panic!("{missing}");
        }
    }

    /// Waits until every fault of [`drill`] is in (for a run whose output is closed).
    pub async fn wait_faults_in(&self) {
        Wait::new("every fault of the drill in", DEADLINE)
            .every(Duration::from_millis(20))
            .until_async(|| async { faults_in(&self.state().await) })
            .await;
    }

    async fn kube(&self, context: &str) -> kube::Client {
        firedrill_testkit::kube::client_from_kubeconfig(&self.kubeconfig, context).await
    }
}

/// Whether every fault of [`drill`] shows on the platform; else which one does not.
fn faults_in(state: &State) -> Result<(), String> {
    let toxics = state
        .proxies
        .get("front-door-to-us-west1")
        .map_or(0, |p| p.toxics.len());
    if toxics != 1 {
        return Err(format!("the latency toxic is not in: {state:#?}"));
    }
    if state
        .proxies
        .get("us-west1-to-prod-2-db")
        .is_none_or(|p| p.enabled)
    {
        return Err(format!("the cut is not in: {state:#?}"));
    }
    if !state
        .replicas
        .iter()
        .filter(|(k, _)| k.starts_with("us-west1/"))
        .all(|(_, r)| *r == 0)
    {
        return Err(format!("us-west1 is not dark: {:#?}", state.replicas));
    }
    let zone: Vec<_> = state
        .taints
        .iter()
        .filter(|(k, _)| k.starts_with("us-west1/us-west1-b"))
        .collect();
    if zone.is_empty()
        || !zone
            .iter()
            .all(|(_, t)| t.iter().any(|t| t.starts_with("firedrill")))
    {
        return Err(format!(
            "zone us-west1-b is not tainted: {:#?}",
            state.taints
        ));
    }
    Ok(())
}

/// A proxy as Toxiproxy's API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    pub enabled: bool,
    pub toxics: Vec<String>,
}

/// The platform through its own APIs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// Toxiproxy proxies by name.
    pub proxies: BTreeMap<String, Proxy>,
    /// `context/namespace/deployment` → spec.replicas.
    pub replicas: BTreeMap<String, i32>,
    /// `context/node` → taints as `key=value:effect`.
    pub taints: BTreeMap<String, BTreeSet<String>>,
    /// `context/namespace/deployment` → status.readyReplicas.
    pub ready: BTreeMap<String, i32>,
}

impl State {
    /// No toxic anywhere, every proxy enabled.
    pub fn is_untouched(&self) -> bool {
        !self.proxies.is_empty()
            && self
                .proxies
                .values()
                .all(|p| p.enabled && p.toxics.is_empty())
    }

    fn is_ready(&self) -> bool {
        self.replicas
            .iter()
            .all(|(k, r)| self.ready.get(k).copied().unwrap_or(0) >= *r)
    }
}

/// A firedrill command in `dir`, its output piped to the test, with nothing inherited that
/// would pick its platform, ledger, kubeconfig or log level.
pub fn firedrill(dir: &Path) -> Command {
    BIN.command(dir, &[])
}

/// A stream whose reading end is already closed: every write to it fails with EPIPE.
pub fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Stdio::from(writer)
}

pub use firedrill_testkit::Started;
pub use firedrill_testkit::process::send;

/// Waits (with the deadline) for `run` to exit; its status and everything it printed.
pub async fn ended(run: Started) -> (ExitStatus, String) {
    let out = run.exit(DEADLINE).await;
    (out.status, out.text())
}

/// Waits for `child` to exit, with the deadline.
pub async fn wait_exit(child: &mut Child) -> ExitStatus {
    firedrill_testkit::Wait::new("firedrill to exit", DEADLINE)
        .until(|| child.try_wait().expect("wait"))
        .await
}

/// Runs `cmd` to the end with the deadline; its status and whatever output it pipes here.
pub async fn run_to_end(cmd: &mut Command) -> (ExitStatus, String) {
    ended(Started::spawn(cmd)).await
}

/// A firedrill on a pseudo-terminal of its own, as in an SSH session: it is the session
/// leader and the terminal is its controlling terminal, so closing the terminal's other end
/// hangs it up (SIGHUP, then EIO on every write), and typing Ctrl-C signals its foreground
/// process group.
pub struct Terminal {
    pub child: Child,
    writer: Option<std::fs::File>,
    seen: Arc<Mutex<String>>,
    hang_up: Arc<std::sync::atomic::AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Terminal {
    /// Starts `cmd` with a new pseudo-terminal as its stdin, stdout and stderr.
    pub fn spawn(mut cmd: Command) -> Self {
        use std::os::fd::{FromRawFd as _, OwnedFd};
        use std::os::unix::fs::OpenOptionsExt as _;
        use std::os::unix::process::CommandExt as _;
        // SAFETY: plain libc calls on a descriptor this function owns; ptsname_r writes
        // within the buffer it is given.
        let (master, slave_path) = unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
            let master = std::fs::File::from(OwnedFd::from_raw_fd(fd));
            assert_eq!(libc::grantpt(fd), 0, "grantpt");
            assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(
                libc::ptsname_r(fd, name.as_mut_ptr(), name.len()),
                0,
                "ptsname_r"
            );
            let path = std::ffi::CStr::from_ptr(name.as_ptr())
                .to_string_lossy()
                .into_owned();
            (master, path)
        };
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&slave_path)
            .expect("open the terminal's slave end");
        cmd.stdin(slave.try_clone().expect("dup"))
            .stdout(slave.try_clone().expect("dup"))
            .stderr(slave);
        // SAFETY: setsid and ioctl are async-signal-safe, as pre_exec requires.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start firedrill on a terminal");
        // The test keeps no slave end open: the terminal is the child's alone.
        drop(cmd);
        let seen = Arc::new(Mutex::new(String::new()));
        let hang_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = master.try_clone().expect("dup master");
        let reader = {
            let seen = Arc::clone(&seen);
            let hang_up = Arc::clone(&hang_up);
            std::thread::spawn(move || read_terminal(master, &seen, &hang_up))
        };
        Self {
            child,
            writer: Some(writer),
            seen,
            hang_up,
            reader: Some(reader),
        }
    }

    /// Everything shown on the terminal so far.
    pub fn output(&self) -> String {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until the terminal shows `text`.
    pub async fn wait_for(&mut self, text: &str) {
        Wait::new(format!("\"{text}\" on the terminal"), DEADLINE)
            .until(|| {
                let seen = self.output();
                if seen.contains(text) {
                    return Ok(());
                }
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!("firedrill exited {status} before \"{text}\" appeared:\n{seen}");
                }
                Err(seen)
            })
            .await;
    }

    /// Types `text` (`\u{3}` is Ctrl-C).
    pub fn type_in(&mut self, text: &str) {
        use std::io::Write as _;
        let writer = self.writer.as_mut().expect("the terminal is open");
        writer
            .write_all(text.as_bytes())
            .expect("type on the terminal");
    }

    /// Closes the terminal, as an SSH disconnect does: every descriptor of its master end.
    pub fn hang_up(&mut self) {
        self.writer = None;
        self.hang_up
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// Waits for it to exit.
    pub async fn exit(mut self) -> (ExitStatus, String) {
        let status = wait_exit(&mut self.child).await;
        self.hang_up();
        (status, self.output())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.hang_up();
    }
}

/// Reads the master end until the child is gone or the test hangs up (then it drops the last
/// master descriptor); polls so a blocked read never keeps the terminal open.
fn read_terminal(
    mut master: std::fs::File,
    seen: &Mutex<String>,
    hang_up: &std::sync::atomic::AtomicBool,
) {
    use std::os::fd::AsRawFd as _;
    let mut buf = [0u8; 4096];
    while !hang_up.load(std::sync::atomic::Ordering::SeqCst) {
        let mut poll = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&raw mut poll, 1, 20) };
        if ready <= 0 {
            continue;
        }
        match master.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Ok(mut s) = seen.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        }
    }
}
