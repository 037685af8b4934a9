//! What the domains' tests share: a [`Drill`] world on a small platform, with a ledger that
//! works, one that cannot be written (`/dev/full`), or a GameDay prompt that declines, and a
//! record of every milestone together with whether the ledger held an inject line when it
//! was stamped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use firedrill_core::clock::Clock;
use firedrill_engine::events::{Bus, Event, FnSink};
use firedrill_engine::ledger::Ledger;
use firedrill_engine::scenario::RunContext;

use crate::world::Drill;

/// A platform with a fault, a traffic switch and probe (on a port nothing listens on), and a
/// Toxiproxy link; every command is `true`.
pub const PLATFORM: &str = r#"name: t
regions:
  a: { role: primary }
  b: { role: failover }
faults:
  marker:
    description: a marker
    inject: { run: ["true"] }
    undo: { run: ["true"] }
traffic:
  probe: front
  switch: { run: ["true", "{region}"] }
probes:
  front:
    url: http://127.0.0.1:9/
    region-header: x-served-by
    interval: 1s
    timeout: 200ms
toxiproxy:
  url: http://127.0.0.1:9
  links:
    l: { proxy: p }
"#;

/// How the ledger or the person at the prompt treats the step's change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// The ledger is a file; no GameDay.
    Written,
    /// The ledger is `/dev/full`: the undo cannot be recorded.
    LedgerFull,
    /// A @gameday scenario whose prompt answers `n`.
    Declined,
}

/// Each milestone's name, and whether the ledger held an inject line when it went out.
pub type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// A world for `case`, with what it saw; `None` where `/dev/full` does not exist.
pub fn world(case: Case, dir: &Path) -> Option<(Drill, Seen)> {
    let path: PathBuf = match case {
        Case::LedgerFull => PathBuf::from("/dev/full"),
        Case::Written | Case::Declined => dir.join("ledger.jsonl"),
    };
    if !path.exists() && case == Case::LedgerFull {
        return None;
    }
    // Tests run in parallel and several open /dev/full: none may wait for its lock.
    let ledger = if case == Case::LedgerFull {
        Ledger::open_ignoring_lock(&path)
    } else {
        Ledger::open(&path)
    }
    .unwrap_or_else(|e| panic!("ledger: {e}"));
    let platform = firedrill_platform::load_str(&dir.join("platform.yaml"), PLATFORM, &|_| None)
        .unwrap_or_else(|p| panic!("platform: {p}"));
    let seen = Seen::default();
    let events = Bus::default();
    let (sink_seen, ledger_path) = (Arc::clone(&seen), path.clone());
    events.subscribe(Box::new(FnSink(move |event: &Event| {
        if let Event::Milestone(m) = event {
            let on_disk = std::fs::read_to_string(&ledger_path)
                .is_ok_and(|text| text.contains("\"op\":\"inject\""));
            if let Ok(mut seen) = sink_seen.lock() {
                seen.push((m.name.clone(), on_disk));
            }
        }
    })));
    let mut run = RunContext::new(
        "r".into(),
        Arc::new(platform),
        Clock::real(),
        ledger,
        events,
    );
    run.prompt = Arc::new(|_: &str| Some("n\n".to_owned()));
    let mut drill = Drill::with_run(Arc::new(run)).unwrap_or_else(|e| panic!("world: {e}"));
    drill.gameday = case == Case::Declined;
    Some((drill, seen))
}

/// Runs `step` in a world for each case and checks the fault milestone `name`: stamped once
/// the undo was on disk when the ledger works, and not at all when it cannot be written or
/// the prompt declines. The step may fail after the milestone (nothing listens at its
/// endpoints); it must fail in the two other cases.
pub async fn fault_milestone_follows_the_ledger<F>(name: &str, step: F)
where
    F: for<'a> Fn(&'a mut Drill) -> futures::future::LocalBoxFuture<'a, Result<(), crate::Failure>>,
{
    for case in [Case::Written, Case::LedgerFull, Case::Declined] {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some((mut drill, seen)) = world(case, dir.path()) else {
            continue;
        };
        let outcome = step(&mut drill).await;
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        let stamped: Vec<bool> = seen
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, on_disk)| *on_disk)
            .collect();
        match case {
            Case::Written => assert_eq!(
                stamped,
                [true],
                "{case:?}: \"{name}\" must be stamped once, with its undo on disk (saw {seen:?})"
            ),
            Case::LedgerFull | Case::Declined => {
                assert!(outcome.is_err(), "{case:?}: the step must fail");
                assert_eq!(
                    stamped,
                    Vec::<bool>::new(),
                    "{case:?}: \"{name}\" stamped for a change that never acted (saw {seen:?})"
                );
                assert!(drill.faults.is_empty(), "{case:?}: {:?}", drill.faults);
            }
        }
    }
}
