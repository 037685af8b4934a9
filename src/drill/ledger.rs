//! The ledger: an append-only journal of every fault's undo (safety rules 2–5).
//!
//! Each fault's undo is appended and flushed to disk *before* the fault is applied, so a run
//! that dies at any instant — even by SIGKILL — leaves enough behind for `firedrill recover`.
//! The file is JSON lines; an undo is outstanding until an `undone` entry names its id.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::providers::command::CommandUndo;
use crate::providers::toxiproxy::ToxiproxyUndo;

/// How to take one fault back. Each variant belongs to the provider that injects it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "kebab-case")]
pub enum Undo {
    /// Run a command from the platform file (a fault's undo, a traffic switch back).
    Command(CommandUndo),
    /// A MongoDB action (unfreeze, restart, restore the saved priorities).
    Mongo(crate::providers::mongo::MongoUndo),
    /// Remove a toxic or re-enable a proxy on the platform's Toxiproxy.
    Toxiproxy(ToxiproxyUndo),
    /// Take a Kubernetes fault back (untaint, uncordon, scale back), by object reference.
    Kube(crate::providers::kube::KubeUndo),
}

impl Undo {
    /// One line for plans, logs and reports.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Undo::Command(undo) => undo.describe(),
            Undo::Mongo(undo) => undo.describe(),
            Undo::Toxiproxy(undo) => undo.describe(),
            Undo::Kube(undo) => undo.describe(),
        }
    }
}

/// One line of the ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Entry {
    /// A run started.
    Begin {
        /// The run id.
        run: String,
        /// The platform file, absolute, so `recover` can reconnect.
        platform: PathBuf,
        /// Whether the platform ran inside the drill's own process (its faults end with it).
        in_process: bool,
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
        undo: Undo,
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
}

/// A fault whose undo has not been applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Outstanding {
    /// The fault's id.
    pub id: String,
    /// The run that injected it.
    pub run: String,
    /// What the fault is.
    pub fault: String,
    /// How to undo it.
    pub undo: Undo,
    /// Whether it is a remediation, undone after the faults.
    pub remediation: bool,
    /// The platform file of that run.
    pub platform: PathBuf,
    /// Whether that run's platform lived in its own process (its faults died with it).
    pub in_process: bool,
}

/// Ledger I/O failures. A ledger that cannot be written stops the drill before any fault.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Opening or creating the file.
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
    /// A line that is not a ledger entry.
    #[error(
        "{path}:{line}: not a ledger entry: {message} (hint: the ledger is append-only JSON lines; do not edit it by hand)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Line number from 1.
        line: usize,
        /// The parser's complaint.
        message: String,
    },
}

/// An open ledger file.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: File,
}

impl Ledger {
    /// Opens (creating if needed) the ledger at `path`, creating its folder.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Open`].
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let open_err = |source| LedgerError::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(open_err)?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(open_err)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and waits until it is on disk.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Write`]; the caller must not apply the fault then.
    pub fn append(&mut self, entry: &Entry) -> Result<(), LedgerError> {
        let write_err = |source| LedgerError::Write {
            path: self.path.clone(),
            source,
        };
        let mut line =
            serde_json::to_vec(entry).map_err(|e| write_err(std::io::Error::other(e)))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(write_err)?;
        self.file.sync_data().map_err(write_err)
    }

    /// Every entry in the file, in order.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Open`] or [`LedgerError::Corrupt`]. A torn last line (the process died
    /// mid-write) is ignored: its fault was never applied, because applying waits for the flush.
    pub fn read(path: &Path) -> Result<Vec<Entry>, LedgerError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(LedgerError::Open {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let lines: Vec<String> = BufReader::new(file)
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|source| LedgerError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let last = lines.len();
        let mut entries = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(line) {
                Ok(entry) => entries.push(entry),
                Err(_) if i + 1 == last => break,
                Err(e) => {
                    return Err(LedgerError::Corrupt {
                        path: path.to_path_buf(),
                        line: i + 1,
                        message: e.to_string(),
                    });
                }
            }
        }
        Ok(entries)
    }

    /// The faults not yet undone, oldest first.
    ///
    /// # Errors
    ///
    /// As [`Ledger::read`].
    pub fn outstanding(path: &Path) -> Result<Vec<Outstanding>, LedgerError> {
        Ok(outstanding_in(&Self::read(path)?))
    }
}

/// The order undos run in: faults newest first, then remediations newest first.
#[must_use]
pub fn undo_order(mut outstanding: Vec<Outstanding>) -> Vec<Outstanding> {
    outstanding.reverse();
    outstanding.sort_by_key(|o| o.remediation);
    outstanding
}

/// The faults in `entries` with no `undone` entry, oldest first.
#[must_use]
pub fn outstanding_in(entries: &[Entry]) -> Vec<Outstanding> {
    let undone: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Undone { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let mut runs = std::collections::HashMap::new();
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
    use crate::providers::command::CommandRef;

    fn undo(name: &str) -> Undo {
        Undo::Command(CommandUndo {
            command: CommandRef::FaultUndo { fault: name.into() },
            run: vec!["true".into()],
            settle: None,
        })
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

    #[test]
    fn every_append_is_readable_at_once_and_outstanding_until_undone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/ledger.jsonl");
        let mut ledger = Ledger::open(&path).expect("open");
        ledger
            .append(&Entry::Begin {
                run: "r1".into(),
                platform: "/p.yaml".into(),
                in_process: false,
                at: wall_now(),
            })
            .expect("begin");
        ledger.append(&inject("r1/1", "a")).expect("inject a");
        ledger.append(&inject("r1/2", "b")).expect("inject b");
        // A second handle (another process) sees both without any close.
        let outstanding = Ledger::outstanding(&path).expect("read");
        assert_eq!(
            outstanding
                .iter()
                .map(|o| o.id.as_str())
                .collect::<Vec<_>>(),
            ["r1/1", "r1/2"]
        );
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
    fn a_torn_last_line_is_ignored_but_corruption_elsewhere_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.jsonl");
        let good = serde_json::to_string(&inject("r1/1", "a")).expect("json");
        std::fs::write(&path, format!("{good}\n{{\"op\":\"inj")).expect("write");
        assert_eq!(
            Ledger::outstanding(&path)
                .expect("torn tail tolerated")
                .len(),
            1
        );
        std::fs::write(&path, format!("garbage\n{good}\n")).expect("write");
        let err = Ledger::read(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("ledger.jsonl:1: not a ledger entry"), "{err}");
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
