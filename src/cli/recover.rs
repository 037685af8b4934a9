//! `firedrill recover`: applies every undo a crashed run left in the ledger.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Exit, render};
use crate::drill::clock::Clock;
use crate::drill::ledger::{Entry, Ledger, wall_now};
use crate::drill::undo;

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
}

/// Undoes what is outstanding, newest first; idempotent.
pub async fn recover(args: RecoverArgs) -> Exit {
    let outstanding = match Ledger::outstanding(&args.ledger) {
        Ok(o) => o,
        Err(e) => {
            errln!("error: {e}");
            return Exit::Usage;
        }
    };
    if outstanding.is_empty() {
        outln!(
            "nothing to recover: every fault in {} has been undone",
            args.ledger.display()
        );
        return Exit::Passed;
    }
    let mut ledger = match Ledger::open(&args.ledger) {
        Ok(l) => l,
        Err(e) => {
            errln!("error: {e}");
            return Exit::UndoIncomplete;
        }
    };
    outln!(
        "{} fault(s) outstanding in {}",
        outstanding.len(),
        args.ledger.display()
    );
    let mut platforms = BTreeMap::new();
    let mut remaining = 0;
    for fault in &crate::drill::ledger::undo_order(outstanding.clone()) {
        if fault.in_process {
            let note = "its platform ran inside the crashed firedrill process and ended with it"
                .to_owned();
            outln!(
                "  ✔ {} ({}): nothing to undo: {note}",
                fault.fault,
                fault.id
            );
            if let Err(e) = ledger.append(&Entry::Undone {
                id: fault.id.clone(),
                at: wall_now(),
                note: Some(note),
            }) {
                errln!("error: {e}");
                remaining += 1;
            }
            continue;
        }
        let path = args
            .platform
            .clone()
            .unwrap_or_else(|| fault.platform.clone());
        let platform = platforms
            .entry(path.clone())
            .or_insert_with(|| crate::platform::load(&path));
        let platform = match platform {
            Ok(p) => p,
            Err(problems) => {
                errln!(
                    "  ✘ {} ({}): cannot load its platform {}:",
                    fault.fault,
                    fault.id,
                    path.display()
                );
                render::problems(problems);
                remaining += 1;
                continue;
            }
        };
        let clock = Clock::scaled(platform.time_scale).unwrap_or_else(|_| Clock::real());
        match undo::apply(&fault.undo, platform, &clock).await {
            Ok(()) => match ledger.append(&Entry::Undone {
                id: fault.id.clone(),
                at: wall_now(),
                note: None,
            }) {
                Ok(()) => outln!(
                    "  ✔ {} ({}): undone ({})",
                    fault.fault,
                    fault.id,
                    fault.undo.describe()
                ),
                Err(e) => {
                    errln!(
                        "  ✘ {} ({}): undone, but the ledger could not record it: {e}",
                        fault.fault,
                        fault.id
                    );
                    remaining += 1;
                }
            },
            Err(e) => {
                errln!("  ✘ {} ({}): {e}", fault.fault, fault.id);
                remaining += 1;
            }
        }
    }
    if remaining == 0 {
        outln!("recovered: nothing outstanding");
        Exit::Passed
    } else {
        errln!(
            "{remaining} fault(s) could not be undone; fix the cause above and run `firedrill recover` again"
        );
        Exit::UndoIncomplete
    }
}
