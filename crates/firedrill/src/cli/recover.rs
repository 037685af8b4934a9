//! `firedrill recover`: applies every undo a crashed run left in the ledger.
//!
//! It takes the same path as a drill's own undo ([`undo::apply`], which waits for each undo's
//! observable effect with a deadline), so "recovered" means the effects were seen, not that the
//! calls returned. An undo is marked undone only then; one still settling at its deadline stays
//! outstanding for the next `recover`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Exit, render};
use firedrill_core::clock::Clock;
use firedrill_engine::ledger::{
    Entry, IN_PROCESS_NOTE, Ledger, LedgerError, Outstanding, undo_order, wall_now,
};
use firedrill_platform::Platform;
use firedrill_providers::{Undo, undo};

/// Arguments of `recover`.
#[derive(Debug, clap::Args)]
pub struct RecoverArgs {
    /// The ledger file.
    #[arg(
        long,
        env = "FIREDRILL_LEDGER",
        default_value = ".firedrill/ledger.jsonl"
    )]
    pub ledger: PathBuf,
    /// The platform file to undo against (default: the one each run recorded).
    #[arg(long, short = 'p')]
    pub platform: Option<PathBuf>,
    /// Undo even while a running firedrill holds the ledger's lock. That run undoes its own
    /// faults when it ends; use this only when it hangs and cannot be stopped, since both then
    /// act on the same faults.
    #[arg(long)]
    pub ignore_lock: bool,
}

/// What became of one outstanding undo.
enum Fate {
    /// Applied and its effect seen (or moot), and recorded in the ledger.
    Undone,
    /// Applied, but its effect was not seen by the deadline: it stays outstanding.
    Settling,
    /// Not applied, or not recorded: it stays outstanding. `retry` when trying again may help
    /// (the undo itself failed), not when it cannot (its platform does not load).
    Failed {
        /// Whether another attempt may succeed.
        retry: bool,
    },
}

/// Undoes what is outstanding, newest first; idempotent.
pub async fn recover(args: RecoverArgs) -> Exit {
    if !args.ledger.exists() {
        outln!(
            "nothing to recover: there is no ledger at {}",
            args.ledger.display()
        );
        return Exit::Passed;
    }
    let opened = if args.ignore_lock {
        Ledger::open_ignoring_lock(&args.ledger)
    } else {
        Ledger::open(&args.ledger)
    };
    let mut ledger = match opened {
        Ok(l) => l,
        Err(e @ LedgerError::Busy { .. }) => {
            errln!("error: {e}");
            errln!(
                "recover does not race a running drill: nothing was undone. If that firedrill hangs and cannot be stopped, `firedrill recover --ledger {} --ignore-lock` undoes anyway.",
                args.ledger.display()
            );
            return Exit::Usage;
        }
        Err(e) => {
            errln!("error: {e}");
            return Exit::UndoIncomplete;
        }
    };
    let scan = match ledger.scan_own() {
        Ok(scan) => scan,
        Err(e) => {
            errln!("error: {e}");
            return Exit::UndoIncomplete;
        }
    };
    let outstanding = scan.outstanding();
    if outstanding.is_empty() && scan.unreadable.is_empty() {
        outln!(
            "nothing to recover: every fault in {} has been undone",
            args.ledger.display()
        );
        return Exit::Passed;
    }
    outln!(
        "{} fault(s) outstanding in {}",
        outstanding.len(),
        args.ledger.display()
    );
    if !ledger.is_exclusive() {
        errln!(
            "warning: a running firedrill holds {}; undoing anyway (--ignore-lock)",
            args.ledger.display()
        );
    }
    for line in &scan.unreadable {
        errln!("  ✘ {line}: cannot read it, so its undo (if any) was NOT applied");
    }

    let mut recovery = Recovery {
        args: &args,
        ledger: &mut ledger,
        platforms: BTreeMap::new(),
    };
    let order = undo_order(outstanding);
    let mut fates = Vec::with_capacity(order.len());
    for fault in &order {
        fates.push(recovery.undo(fault).await);
    }
    // As a drill does after its scenario: an undo that failed before a later one succeeded is
    // tried once more, since the later one may have unblocked it (scaled-back pods cannot start
    // while their zone is still tainted).
    let last_undone = fates.iter().rposition(|f| matches!(f, Fate::Undone));
    for (i, fault) in order.iter().enumerate() {
        let retry = matches!(fates[i], Fate::Settling | Fate::Failed { retry: true });
        if retry && last_undone.is_some_and(|last| i < last) {
            outln!("  retrying {} ({})", fault.fault, fault.id);
            fates[i] = recovery.undo(fault).await;
        }
    }

    let settling = fates.iter().filter(|f| matches!(f, Fate::Settling)).count();
    let failed = fates
        .iter()
        .filter(|f| matches!(f, Fate::Failed { .. }))
        .count();
    let unreadable = scan.unreadable.len();
    if settling + failed + unreadable == 0 {
        outln!("recovered: every undo applied and its effect seen; nothing outstanding");
        return Exit::Passed;
    }
    let mut parts = Vec::new();
    if settling > 0 {
        parts.push(format!("{settling} undo(s) applied but still settling"));
    }
    if failed > 0 {
        parts.push(format!("{failed} undo(s) not done"));
    }
    if unreadable > 0 {
        parts.push(format!(
            "{unreadable} ledger line(s) unreadable (a newer firedrill reads newer lines; otherwise check by hand what each one injected, then move the ledger aside)"
        ));
    }
    errln!(
        "UNDO INCOMPLETE: {}; faults may remain. Fix the cause above and run `firedrill recover --ledger {}` again.",
        parts.join(", "),
        args.ledger.display()
    );
    Exit::UndoIncomplete
}

/// One `recover`'s state: the ledger it records into and the platforms it loaded.
struct Recovery<'a> {
    args: &'a RecoverArgs,
    ledger: &'a mut Ledger<Undo>,
    platforms: BTreeMap<PathBuf, Result<Platform, firedrill_core::diagnostic::Problems>>,
}

impl Recovery<'_> {
    async fn undo(&mut self, fault: &Outstanding<Undo>) -> Fate {
        if fault.in_process {
            if !self.ledger.is_exclusive() {
                // The lock is held, so the in-process runs that ended were closed by the run
                // that holds it: this fault's platform is alive inside that run.
                errln!(
                    "  ✘ {} ({}): not undone: its platform lives inside the running firedrill that holds the ledger, which undoes it",
                    fault.fault,
                    fault.id
                );
                return Fate::Failed { retry: false };
            }
            outln!(
                "  ✔ {} ({}): nothing to undo: {IN_PROCESS_NOTE}",
                fault.fault,
                fault.id
            );
            return self.record(fault, Some(IN_PROCESS_NOTE.to_owned()));
        }
        let path = self
            .args
            .platform
            .clone()
            .unwrap_or_else(|| fault.platform.clone());
        let platform = self
            .platforms
            .entry(path.clone())
            .or_insert_with(|| firedrill_platform::load(&path));
        let platform = match platform {
            Ok(p) => p,
            Err(problems) => {
                errln!(
                    "  ✘ {} ({}): not undone: cannot load its platform {}:",
                    fault.fault,
                    fault.id,
                    path.display()
                );
                render::problems_found(problems);
                return Fate::Failed { retry: false };
            }
        };
        let clock = Clock::scaled(platform.time_scale).unwrap_or_else(|_| Clock::real());
        match undo::apply(&fault.undo, platform, &clock).await {
            Ok(()) => {
                let fate = self.record(fault, None);
                if matches!(fate, Fate::Undone) {
                    outln!(
                        "  ✔ {} ({}): undone ({})",
                        fault.fault,
                        fault.id,
                        fault.undo.describe()
                    );
                }
                fate
            }
            Err(e) if e.is_settling() => {
                errln!(
                    "  … {} ({}): applied, but still settling: {e}",
                    fault.fault,
                    fault.id
                );
                Fate::Settling
            }
            Err(e) => {
                errln!("  ✘ {} ({}): {e}", fault.fault, fault.id);
                Fate::Failed { retry: true }
            }
        }
    }

    /// Marks `fault` undone; an entry that cannot be written leaves it outstanding.
    fn record(&mut self, fault: &Outstanding<Undo>, note: Option<String>) -> Fate {
        match self.ledger.append(&Entry::Undone {
            id: fault.id.clone(),
            at: wall_now(),
            note,
        }) {
            Ok(()) => Fate::Undone,
            Err(e) => {
                errln!(
                    "  ✘ {} ({}): undone, but the ledger could not record it, so it stays outstanding: {e}",
                    fault.fault,
                    fault.id
                );
                Fate::Failed { retry: false }
            }
        }
    }
}
