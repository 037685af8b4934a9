//! The ledger: an append-only journal of every fault's undo (safety rules 2–5).
//!
//! Each fault's undo is appended and flushed to disk *before* the fault is applied, so a run
//! that dies at any instant — even by SIGKILL — leaves enough behind for `firedrill recover`.
//! The file is JSON lines, each carrying the format version (`"v":1`; a line without it was
//! written by an earlier release and is version 1). An undo is outstanding until an `undone`
//! entry names its id.
//!
//! Only a line without its newline is torn (its writer died mid-write, before the fault it
//! announces was applied). A complete line this build cannot read is never dropped: reading
//! gives it back as [`Unreadable`], next to the entries, so `recover` can name it and `run`
//! can refuse to start over it.
//!
//! A run or a `recover` holds an exclusive advisory lock on the file for as long as it has it
//! open ([`Ledger::open`]), so whether a run is alive is a fact the operating system keeps: the
//! lock ends with the process, however it ends.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use crate::undo::Undo;

/// The ledger format this build writes, and the only one it reads.
pub const VERSION: u64 = 1;

/// Why an in-process run's outstanding undos need no undo once that run has ended.
pub const IN_PROCESS_NOTE: &str =
    "its platform ran inside that firedrill process and ended with it";

/// One line of the ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "op",
    rename_all = "kebab-case",
    bound(deserialize = "U: DeserializeOwned")
)]
pub enum Entry<U> {
    /// A run started.
    Begin {
        /// The run id.
        run: String,
        /// The platform file, absolute, so `recover` can reconnect.
        platform: PathBuf,
        /// Whether the platform ran inside the drill's own process (its faults end with it).
        in_process: bool,
        /// The process id of the run (ledgers of earlier releases do not have it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
        /// Wall-clock start, RFC 3339.
        at: String,
    },
    /// A fault is about to be applied; this is how to undo it.
    Inject {
        /// Unique id: `<run>/<n>`.
        id: String,
        /// The run id.
        run: String,
        /// The scenario that injects it.
        scenario: String,
        /// What the fault is.
        fault: String,
        /// How to undo it.
        undo: U,
        /// Whether it is a remediation (failover) rather than a fault: remediations are undone
        /// after every fault, so failback happens once the broken region is whole again.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        remediation: bool,
        /// Wall-clock time, RFC 3339.
        at: String,
    },
    /// The undo for `id` succeeded (or was moot).
    Undone {
        /// The fault's id.
        id: String,
        /// Wall-clock time, RFC 3339.
        at: String,
        /// Why no undo was needed, when it was moot.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Line `line` had no newline when a later run opened the ledger: its writer died mid-write,
    /// before the fault it announced was applied. The later run ended it with a newline and
    /// wrote this, so the line is still known to be torn.
    Sealed {
        /// The torn line's number, from 1.
        line: usize,
        /// Wall-clock time, RFC 3339.
        at: String,
    },
}

/// An entry as it is written: the format version first, then the entry.
#[derive(Serialize)]
struct Versioned<'a, U: Serialize> {
    v: u64,
    #[serde(flatten)]
    entry: &'a Entry<U>,
}

/// A fault whose undo has not been applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Outstanding<U> {
    /// The fault's id.
    pub id: String,
    /// The run that injected it.
    pub run: String,
    /// What the fault is.
    pub fault: String,
    /// How to undo it.
    pub undo: U,
    /// Whether it is a remediation, undone after the faults.
    pub remediation: bool,
    /// The platform file of that run.
    pub platform: PathBuf,
    /// Whether that run's platform lived in its own process (its faults died with it).
    pub in_process: bool,
    /// When it was injected (wall clock, RFC 3339).
    pub at: String,
}

impl<U> fmt::Display for Outstanding<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" ({}) of run {}, injected {}",
            self.fault, self.id, self.run, self.at
        )
    }
}

/// Why a complete ledger line could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineProblem {
    /// The line is not JSON (a hand edit, or a damaged disk).
    NotJson {
        /// The parser's complaint.
        message: String,
    },
    /// The line was written in a ledger format this build does not know (a newer firedrill).
    UnknownVersion {
        /// The `v` it carries, as written.
        version: String,
    },
    /// JSON, but not an entry this build knows (an unknown `op`, a missing field).
    NotAnEntry {
        /// The parser's complaint.
        message: String,
    },
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineProblem::NotJson { message } => write!(f, "not JSON ({message})"),
            LineProblem::UnknownVersion { version } => write!(
                f,
                "ledger format version {version}, and this firedrill reads version {VERSION} (a newer firedrill wrote it)"
            ),
            LineProblem::NotAnEntry { message } => {
                write!(f, "not a ledger entry this firedrill knows ({message})")
            }
        }
    }
}

/// A complete ledger line this build cannot read: it may hold an undo nobody can apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// The ledger file.
    pub path: PathBuf,
    /// Line number, from 1.
    pub line: usize,
    /// Why it cannot be read.
    pub problem: LineProblem,
    /// What the line seems to be: its `op`, `fault`, `id` and `run` when it has them, else a
    /// short excerpt.
    pub what: String,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.path.display(),
            self.line,
            self.problem,
            self.what
        )
    }
}

/// Everything a ledger file holds: the entries this build reads, the lines it cannot, and a
/// torn tail.
#[derive(Clone, Debug, PartialEq)]
pub struct Scan<U> {
    /// The entries, in file order.
    pub entries: Vec<Entry<U>>,
    /// Complete lines that are not entries this build can read, in file order.
    pub unreadable: Vec<Unreadable>,
    /// The number of the last line when it has no newline (its writer died mid-write).
    pub torn: Option<usize>,
}

impl<U> Default for Scan<U> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            unreadable: Vec::new(),
            torn: None,
        }
    }
}

impl<U: Clone> Scan<U> {
    /// The faults not yet undone, oldest first (unreadable lines are not among them).
    #[must_use]
    pub fn outstanding(&self) -> Vec<Outstanding<U>> {
        outstanding_in(&self.entries)
    }

    /// The newest run the ledger records: (run, pid, start).
    #[must_use]
    pub fn newest_run(&self) -> Option<(&str, Option<u32>, &str)> {
        self.entries.iter().rev().find_map(|e| match e {
            Entry::Begin { run, pid, at, .. } => Some((run.as_str(), *pid, at.as_str())),
            _ => None,
        })
    }
}

/// Ledger failures. A ledger that cannot be written stops the drill before any fault.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Opening, creating or reading the file.
    #[error(
        "cannot open the ledger {path}: {source} (hint: check the folder exists and is writable, or pass --ledger)"
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Appending or flushing.
    #[error(
        "cannot write the ledger {path}: {source} (hint: free disk space; no fault is injected without its undo on disk)"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another firedrill holds the ledger's lock: a run is alive (or a `recover` is working).
    #[error(
        "the ledger {path} is locked by a firedrill that is still running{} (hint: drills on one estate must not overlap; that firedrill undoes its own faults when it ends; to stop it early, send it SIGTERM{})",
        newest.as_ref().map_or_else(String::new, |n| format!("; the newest run it records is {n}")),
        newest.as_ref().and_then(|n| n.pid).map_or_else(String::new, |pid| format!(" (`kill -TERM {pid}`, once you have checked that pid is that firedrill)"))
    )]
    Busy {
        /// The file.
        path: PathBuf,
        /// The newest run the ledger records (the lock holder, unless it has not written its
        /// first line yet).
        newest: Option<RunRecord>,
    },
    /// Undos of another run are outstanding, or lines cannot be read: a run must not start.
    #[error(
        "the ledger {path} holds what another run left behind; nothing was injected:{}{} (hint: run `firedrill recover --ledger {path}` first, then the drill again)",
        outstanding.iter().map(|o| format!("\n  outstanding: {o}")).collect::<String>(),
        unreadable.iter().map(|u| format!("\n  unreadable: {u}")).collect::<String>()
    )]
    NotClear {
        /// The file.
        path: PathBuf,
        /// Undos not applied, oldest first, as [`Outstanding`] shows them.
        outstanding: Vec<String>,
        /// Lines that may hold undos nobody can apply.
        unreadable: Vec<Unreadable>,
    },
}

/// A run as its `begin` entry records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    /// The run id.
    pub run: String,
    /// Its process id, when recorded.
    pub pid: Option<u32>,
    /// When it started (wall clock, RFC 3339).
    pub at: String,
}

impl fmt::Display for RunRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "{} (pid {pid}, started {})", self.run, self.at),
            None => write!(f, "{} (started {})", self.run, self.at),
        }
    }
}

/// An open ledger file, whose inject entries carry undos of type `U`.
#[derive(Debug)]
pub struct Ledger<U> {
    path: PathBuf,
    file: File,
    /// Whether this handle holds the exclusive lock (else another firedrill does).
    exclusive: bool,
    undo: PhantomData<fn() -> U>,
}

impl<U: Undo> Ledger<U> {
    /// Opens (creating if needed) the ledger at `path`, creating its folder, and takes its
    /// exclusive lock for as long as the `Ledger` lives. A torn last line is ended with a
    /// newline (flushed) and recorded as [`Entry::Sealed`], so the next line starts fresh.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Busy`] when another firedrill holds the lock; [`LedgerError::Open`];
    /// [`LedgerError::Write`] when the torn line cannot be ended.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let mut ledger = Self::open_file(path)?;
        if !ledger.exclusive {
            let newest = ledger.scan_own().ok().and_then(|s| {
                s.newest_run().map(|(run, pid, at)| RunRecord {
                    run: run.to_owned(),
                    pid,
                    at: at.to_owned(),
                })
            });
            return Err(LedgerError::Busy {
                path: path.to_path_buf(),
                newest,
            });
        }
        ledger.seal_torn_tail()?;
        Ok(ledger)
    }

    /// Opens the ledger like [`Ledger::open`], but goes on when another firedrill holds the
    /// lock (`recover --ignore-lock`). Then the torn-tail check is skipped: a line without its
    /// newline may be one that firedrill is writing.
    ///
    /// # Errors
    ///
    /// As [`Ledger::open`], but never [`LedgerError::Busy`].
    pub fn open_ignoring_lock(path: &Path) -> Result<Self, LedgerError> {
        let mut ledger = Self::open_file(path)?;
        if ledger.exclusive {
            ledger.seal_torn_tail()?;
        }
        Ok(ledger)
    }

    fn open_file(path: &Path) -> Result<Self, LedgerError> {
        let open_err = |source| LedgerError::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(open_err)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).read(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(open_err)?;
        let exclusive = match file.try_lock() {
            Ok(()) => true,
            Err(std::fs::TryLockError::WouldBlock) => false,
            Err(std::fs::TryLockError::Error(e)) => return Err(open_err(e)),
        };
        Ok(Self {
            path: path.to_path_buf(),
            file,
            exclusive,
            undo: PhantomData,
        })
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this handle holds the lock: false only from [`Ledger::open_ignoring_lock`] while
    /// another firedrill runs.
    #[must_use]
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// Appends one entry and waits until it is on disk.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Write`]; the caller must not apply the fault then.
    pub fn append(&mut self, entry: &Entry<U>) -> Result<(), LedgerError> {
        let write_err = |source| LedgerError::Write {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(&Versioned { v: VERSION, entry })
            .map_err(|e| write_err(std::io::Error::other(e)))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(write_err)?;
        self.file.sync_data().map_err(write_err)
    }

    /// What this ledger holds now, read through this handle.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Open`] when the file cannot be read.
    pub fn scan_own(&mut self) -> Result<Scan<U>, LedgerError> {
        let bytes = read_all(&mut self.file).map_err(|source| LedgerError::Open {
            path: self.path.clone(),
            source,
        })?;
        Ok(parse(&self.path, &bytes))
    }

    fn seal_torn_tail(&mut self) -> Result<(), LedgerError> {
        let scan = self.scan_own()?;
        let Some(line) = scan.torn else {
            return Ok(());
        };
        let write_err = |source| LedgerError::Write {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(b"\n").map_err(write_err)?;
        self.file.sync_data().map_err(write_err)?;
        self.append(&Entry::Sealed {
            line,
            at: wall_now(),
        })
    }

    /// Makes the ledger ready for a run (the caller holds the lock, so no run is alive): the
    /// outstanding undos of runs whose platform lived in their own process are moot — that
    /// platform ended with its process — and are marked undone with [`IN_PROCESS_NOTE`]. Any
    /// other outstanding undo, or a line that cannot be read, refuses the run.
    ///
    /// Returns the undos marked moot.
    ///
    /// # Errors
    ///
    /// [`LedgerError::NotClear`] (nothing is written then); [`LedgerError::Busy`] on a handle
    /// without the lock; [`LedgerError::Open`] or [`LedgerError::Write`].
    pub fn clear_for_run(&mut self) -> Result<Vec<Outstanding<U>>, LedgerError> {
        if !self.exclusive {
            return Err(LedgerError::Busy {
                path: self.path.clone(),
                newest: None,
            });
        }
        let scan = self.scan_own()?;
        let (moot, left): (Vec<_>, Vec<_>) =
            scan.outstanding().into_iter().partition(|o| o.in_process);
        if !left.is_empty() || !scan.unreadable.is_empty() {
            return Err(LedgerError::NotClear {
                path: self.path.clone(),
                outstanding: left.iter().map(ToString::to_string).collect(),
                unreadable: scan.unreadable,
            });
        }
        for o in &moot {
            self.append(&Entry::Undone {
                id: o.id.clone(),
                at: wall_now(),
                note: Some(IN_PROCESS_NOTE.to_owned()),
            })?;
        }
        Ok(moot)
    }

    /// Everything in the file at `path`, without taking its lock (a missing file is empty).
    ///
    /// # Errors
    ///
    /// [`LedgerError::Open`] when it exists but cannot be read. A line that cannot be read is
    /// not an error: it is in [`Scan::unreadable`].
    pub fn scan(path: &Path) -> Result<Scan<U>, LedgerError> {
        let open_err = |source| LedgerError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Scan::default()),
            Err(e) => return Err(open_err(e)),
        };
        let bytes = read_all(&mut file).map_err(open_err)?;
        Ok(parse(path, &bytes))
    }

    /// The entries this build can read, in order. Lines it cannot read are skipped here: use
    /// [`Ledger::scan`] wherever they must be reported (a run undoing its own faults reads only
    /// its own lines, which this build wrote).
    ///
    /// # Errors
    ///
    /// As [`Ledger::scan`].
    pub fn read(path: &Path) -> Result<Vec<Entry<U>>, LedgerError> {
        Ok(Self::scan(path)?.entries)
    }

    /// The faults not yet undone among the entries this build can read, oldest first.
    ///
    /// # Errors
    ///
    /// As [`Ledger::scan`].
    pub fn outstanding(path: &Path) -> Result<Vec<Outstanding<U>>, LedgerError> {
        Ok(Self::scan(path)?.outstanding())
    }
}

/// The file's bytes from the start, as long as it was when asked (a device like `/dev/full`
/// reports 0 and is read as empty, instead of forever).
fn read_all(file: &mut File) -> std::io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    file.rewind()?;
    let mut bytes = Vec::new();
    std::io::Read::by_ref(file)
        .take(len)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Splits `bytes` into lines and reads each complete one.
fn parse<U: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Scan<U> {
    let mut segments: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // `split` always yields what follows the last newline: empty, or a torn line.
    let tail = segments.pop().unwrap_or_default();
    let torn = (!tail.trim_ascii().is_empty()).then_some(segments.len() + 1);
    let lines: Vec<(usize, Result<Entry<U>, Unreadable>)> = segments
        .iter()
        .enumerate()
        .filter(|(_, line)| !line.trim_ascii().is_empty())
        .map(|(i, line)| (i + 1, parse_line(path, i + 1, line)))
        .collect();
    let sealed: BTreeSet<usize> = lines
        .iter()
        .filter_map(|(_, l)| match l {
            Ok(Entry::Sealed { line, .. }) => Some(*line),
            _ => None,
        })
        .collect();
    let mut scan = Scan {
        torn,
        ..Scan::default()
    };
    for (n, line) in lines {
        // A sealed line was torn: whatever it says, its fault was never applied.
        if sealed.contains(&n) {
            continue;
        }
        match line {
            Ok(entry) => scan.entries.push(entry),
            Err(unreadable) => scan.unreadable.push(unreadable),
        }
    }
    scan
}

fn parse_line<U: DeserializeOwned>(
    path: &Path,
    line: usize,
    bytes: &[u8],
) -> Result<Entry<U>, Unreadable> {
    let unreadable = |problem, what| Unreadable {
        path: path.to_path_buf(),
        line,
        problem,
        what,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        unreadable(
            LineProblem::NotJson {
                message: e.to_string(),
            },
            excerpt(bytes),
        )
    })?;
    let what = identify(&value).unwrap_or_else(|| excerpt(bytes));
    let Some(object) = value.as_object() else {
        return Err(unreadable(
            LineProblem::NotAnEntry {
                message: "not a JSON object".to_owned(),
            },
            what,
        ));
    };
    match object.get("v") {
        None => {}
        Some(v) if v.as_u64() == Some(VERSION) => {}
        Some(v) => {
            return Err(unreadable(
                LineProblem::UnknownVersion {
                    version: cap(&v.to_string(), 20),
                },
                what,
            ));
        }
    }
    serde_json::from_value(value).map_err(|e| {
        unreadable(
            LineProblem::NotAnEntry {
                message: e.to_string(),
            },
            what,
        )
    })
}

/// `op "inject", fault "latency", id "r1/3", run "r1"`: the fields that say what a line is.
fn identify(value: &serde_json::Value) -> Option<String> {
    let parts: Vec<String> = ["op", "fault", "id", "run"]
        .iter()
        .filter_map(|key| {
            let v = value.get(key)?;
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            Some(format!("{key} \"{}\"", cap(&text, 80)))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// At most 60 characters of a line, control characters shown as `?`, in backquotes.
fn excerpt(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    format!("`{}`", cap(text.trim(), 60))
}

fn cap(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// The order undos run in: faults newest first, then remediations newest first.
#[must_use]
pub fn undo_order<U>(mut outstanding: Vec<Outstanding<U>>) -> Vec<Outstanding<U>> {
    outstanding.reverse();
    outstanding.sort_by_key(|o| o.remediation);
    outstanding
}

/// The faults in `entries` with no `undone` entry, oldest first.
#[must_use]
pub fn outstanding_in<U: Clone>(entries: &[Entry<U>]) -> Vec<Outstanding<U>> {
    let undone: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Undone { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let mut runs = HashMap::new();
    let mut out = Vec::new();
    for entry in entries {
        match entry {
            Entry::Begin {
                run,
                platform,
                in_process,
                ..
            } => {
                runs.insert(run.as_str(), (platform.clone(), *in_process));
            }
            Entry::Inject {
                id,
                run,
                fault,
                undo,
                remediation,
                at,
                ..
            } if !undone.contains(id.as_str()) => {
                let (platform, in_process) = runs.get(run.as_str()).cloned().unwrap_or_default();
                out.push(Outstanding {
                    id: id.clone(),
                    run: run.clone(),
                    fault: fault.clone(),
                    undo: undo.clone(),
                    remediation: *remediation,
                    platform,
                    in_process,
                    at: at.clone(),
                });
            }
            _ => {}
        }
    }
    out
}

/// Wall-clock now as RFC 3339, for ledger entries.
#[must_use]
pub fn wall_now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::undo::Marker;

    type Entry = super::Entry<Marker>;
    type Ledger = super::Ledger<Marker>;

    fn undo(name: &str) -> Marker {
        Marker { fault: name.into() }
    }

    fn inject(id: &str, fault: &str) -> Entry {
        Entry::Inject {
            id: id.into(),
            run: "r1".into(),
            scenario: "s".into(),
            fault: fault.into(),
            undo: undo(fault),
            remediation: fault.starts_with("switch"),
            at: wall_now(),
        }
    }

    fn begin(run: &str, in_process: bool) -> Entry {
        Entry::Begin {
            run: run.into(),
            platform: "/p.yaml".into(),
            in_process,
            pid: Some(42),
            at: wall_now(),
        }
    }

    fn line(entry: &Entry) -> String {
        serde_json::to_string(&Versioned { v: VERSION, entry }).expect("json")
    }

    fn ids(outstanding: &[Outstanding<Marker>]) -> Vec<&str> {
        outstanding.iter().map(|o| o.id.as_str()).collect()
    }

    #[test]
    fn every_append_is_readable_at_once_and_outstanding_until_undone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/ledger.jsonl");
        let mut ledger = Ledger::open(&path).expect("open");
        ledger.append(&begin("r1", false)).expect("begin");
        ledger.append(&inject("r1/1", "a")).expect("inject a");
        ledger.append(&inject("r1/2", "b")).expect("inject b");
        // A second handle (another process) sees both without any close.
        let outstanding = Ledger::outstanding(&path).expect("read");
        assert_eq!(ids(&outstanding), ["r1/1", "r1/2"]);
        assert_eq!(outstanding[0].platform, PathBuf::from("/p.yaml"));
        ledger
            .append(&Entry::Undone {
                id: "r1/2".into(),
                at: wall_now(),
                note: None,
            })
            .expect("undone");
        let outstanding = Ledger::outstanding(&path).expect("read");
        assert_eq!(outstanding.len(), 1);
        assert_eq!(outstanding[0].fault, "a");
    }

    #[test]
    fn every_line_carries_the_version_first_and_lines_without_one_are_version_1() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        let mut ledger = Ledger::open(&path).expect("open");
        ledger.append(&inject("r1/1", "a")).expect("inject");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with(r#"{"v":1,"op":"inject","#), "{text}");
        // An earlier release wrote no `v` and no pid.
        let old = r#"{"op":"begin","run":"r0","platform":"/old.yaml","in_process":false,"at":"2025-01-01T00:00:00Z"}
{"op":"inject","id":"r0/1","run":"r0","scenario":"s","fault":"old","undo":{"fault":"old"},"at":"2025-01-01T00:00:01Z"}
"#;
        std::fs::write(&path, old).expect("write");
        let scan = Ledger::scan(&path).expect("scan");
        assert!(scan.unreadable.is_empty(), "{:?}", scan.unreadable);
        assert_eq!(ids(&scan.outstanding()), ["r0/1"]);
        assert_eq!(scan.outstanding()[0].platform, PathBuf::from("/old.yaml"));
    }

    #[test]
    fn only_a_line_without_its_newline_is_torn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        let good = line(&inject("r1/1", "a"));
        std::fs::write(&path, format!("{good}\n{{\"v\":1,\"op\":\"inj")).expect("write");
        let scan = Ledger::scan(&path).expect("torn tail tolerated");
        assert_eq!((scan.outstanding().len(), scan.torn), (1, Some(2)));
        assert!(scan.unreadable.is_empty());
        // The same bytes with their newline are a complete line that does not parse.
        std::fs::write(&path, format!("{good}\n{{\"v\":1,\"op\":\"inj\n")).expect("write");
        let scan = Ledger::scan(&path).expect("scan");
        assert_eq!(scan.torn, None);
        assert_eq!(scan.unreadable.len(), 1, "{scan:?}");
        assert_eq!(scan.unreadable[0].line, 2);
        assert!(
            matches!(scan.unreadable[0].problem, LineProblem::NotJson { .. }),
            "{scan:?}"
        );
    }

    #[test]
    fn a_bad_line_in_the_middle_is_reported_by_line_and_blocks_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        let text = format!(
            "{}\ngarbage that is not json\n{}\n{}\n{}\n",
            line(&inject("r1/1", "a")),
            r#"{"v":2,"op":"inject","id":"r1/2","fault":"from the future"}"#,
            r#"{"v":1,"op":"teleport","id":"r1/3"}"#,
            line(&inject("r1/4", "b")),
        );
        std::fs::write(&path, text).expect("write");
        let scan = Ledger::scan(&path).expect("a bad line is not an error");
        assert_eq!(ids(&scan.outstanding()), ["r1/1", "r1/4"]);
        let reported: Vec<String> = scan.unreadable.iter().map(ToString::to_string).collect();
        assert_eq!(reported.len(), 3, "{reported:#?}");
        assert!(
            reported[0].contains("ledger.jsonl:2: not JSON")
                && reported[0].contains("`garbage that is not json`"),
            "{}",
            reported[0]
        );
        assert!(
            reported[1].contains("ledger.jsonl:3: ledger format version 2")
                && reported[1].contains(r#"op "inject", fault "from the future", id "r1/2""#),
            "{}",
            reported[1]
        );
        assert!(
            reported[2].contains("ledger.jsonl:4: not a ledger entry")
                && reported[2].contains(r#"op "teleport""#),
            "{}",
            reported[2]
        );
    }

    #[test]
    fn an_excerpt_of_a_huge_line_is_capped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        std::fs::write(&path, format!("{}\n", "x".repeat(1_000_000))).expect("write");
        let scan = Ledger::scan(&path).expect("scan");
        let shown = scan.unreadable[0].to_string();
        assert!(shown.len() < 300, "{} characters", shown.len());
    }

    #[test]
    fn opening_after_a_torn_tail_starts_a_fresh_line_and_the_torn_line_stays_torn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        let good = line(&inject("r1/1", "a"));
        std::fs::write(&path, format!("{good}\n{{\"v\":1,\"op\":\"inj")).expect("write");
        let mut ledger = Ledger::open(&path).expect("open");
        ledger.append(&inject("r1/2", "b")).expect("append");
        drop(ledger);
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], r#"{"v":1,"op":"inj"#, "{text}");
        assert!(lines[2].contains(r#""op":"sealed","line":2"#), "{text}");
        let scan = Ledger::scan(&path).expect("scan");
        assert!(scan.unreadable.is_empty(), "{:?}", scan.unreadable);
        assert_eq!(ids(&scan.outstanding()), ["r1/1", "r1/2"]);
        assert_eq!(scan.torn, None);
        // A ledger that ends with its newline is left as it is.
        let before = std::fs::read(&path).expect("read");
        drop(Ledger::open(&path).expect("open"));
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn a_second_open_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        let mut first = Ledger::open(&path).expect("open");
        first.append(&begin("r1", false)).expect("begin");
        let err = Ledger::open(&path).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(
            err.contains("locked by a firedrill that is still running")
                && err.contains("r1 (pid 42")
                && err.contains("kill -TERM 42"),
            "{err}"
        );
        let mut forced = Ledger::open_ignoring_lock(&path).expect("ignoring the lock");
        assert!(!forced.is_exclusive());
        assert!(matches!(
            forced.clear_for_run(),
            Err(LedgerError::Busy { .. })
        ));
        drop(first);
        assert!(Ledger::open(&path).expect("free again").is_exclusive());
    }

    #[test]
    fn a_run_is_refused_over_outstanding_undos_and_unreadable_lines_but_not_moot_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        let mut ledger = Ledger::open(&path).expect("open");
        ledger.append(&begin("emb", true)).expect("begin");
        let mut moot = inject("emb/1", "in-process");
        if let Entry::Inject { run, .. } = &mut moot {
            *run = "emb".into();
        }
        ledger.append(&moot).expect("inject");
        ledger.append(&begin("r1", false)).expect("begin");
        ledger.append(&inject("r1/1", "left")).expect("inject");
        let err = ledger.clear_for_run().err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(
            err.contains("outstanding: \"left\" (r1/1) of run r1, injected ")
                && err.contains("firedrill recover --ledger ")
                && !err.contains("in-process"),
            "{err}"
        );
        // Refused: nothing was written, the moot undo is still outstanding.
        assert_eq!(Ledger::outstanding(&path).expect("read").len(), 2);
        ledger
            .append(&Entry::Undone {
                id: "r1/1".into(),
                at: wall_now(),
                note: None,
            })
            .expect("undone");
        let marked = ledger.clear_for_run().expect("clear");
        assert_eq!(ids(&marked), ["emb/1"]);
        assert!(Ledger::outstanding(&path).expect("read").is_empty());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"v\":7}\n"))
            .expect("append");
        let err = ledger.clear_for_run().err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(
                |e| e.contains("unreadable: ") && e.contains("ledger format version 7")
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_ledger_on_a_full_disk_opens_reads_as_empty_and_refuses_every_write() {
        let path = Path::new("/dev/full");
        if !path.exists() {
            return;
        }
        let mut ledger = Ledger::open(path).expect("open");
        assert_eq!(ledger.scan_own().expect("scan"), Scan::default());
        let err = ledger.append(&inject("r1/1", "a")).err();
        assert!(matches!(err, Some(LedgerError::Write { .. })), "{err:?}");
    }

    #[test]
    fn undo_runs_faults_newest_first_then_remediations() {
        let entries = vec![
            inject("r1/1", "dark-a"),
            inject("r1/2", "switch-away"),
            inject("r1/3", "dark-b"),
            inject("r1/4", "switch-again"),
        ];
        let order: Vec<String> = undo_order(outstanding_in(&entries))
            .into_iter()
            .map(|o| o.fault)
            .collect();
        assert_eq!(order, ["dark-b", "dark-a", "switch-again", "switch-away"]);
    }

    #[test]
    fn a_missing_ledger_has_nothing_outstanding() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            Ledger::outstanding(&dir.path().join("none.jsonl"))
                .expect("ok")
                .is_empty()
        );
    }
}
