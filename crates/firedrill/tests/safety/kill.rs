//! Safety rule 4, randomized: SIGKILL a run at a random instant, or right after a random
//! ledger line appears; then `firedrill recover`; nothing may be left on the platform and the
//! ledger must have nothing outstanding.
//!
//! Seeded: the seed is printed (`--nocapture`) and every failure message carries it; replay with
//! `FIREDRILL_KILL_SEED=<seed>`. `FIREDRILL_KILL_RUNS` sets how many kills (default
//! [`DEFAULT_RUNS`], about 20 s on two cores; e.g. 200 for a soak). Every run appends to one
//! ledger, as runs on one estate do, so a kill's torn or stray line meets the next run.

use std::time::{Duration, Instant};

use rand::{Rng as _, SeedableRng as _};

use crate::support::{ALONE, DEADLINE, Sim, Started, drill, ended, run_to_end};

/// Kills per `cargo test`: enough to cover early, mid-fault and mid-undo instants over a few
/// commits, short enough for CI.
pub const DEFAULT_RUNS: usize = 4;

#[derive(Clone, Copy, Debug)]
enum Kill {
    /// This long after the run was started.
    At(Duration),
    /// As soon as the ledger has this many more lines than before the run.
    AfterLine(usize),
}

fn ledger_lines(sim: &Sim, name: &str) -> usize {
    std::fs::read(sim.dir().join(name))
        .map(|bytes| bytes.iter().filter(|b| **b == b'\n').count())
        .unwrap_or(0)
}

fn from_env(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_a_random_instant_then_recover_leaves_nothing_behind() {
    let _alone = ALONE.lock().await;
    let runs = from_env("FIREDRILL_KILL_RUNS").map_or(DEFAULT_RUNS, |n| n as usize);
    let seed = from_env("FIREDRILL_KILL_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    println!(
        "randomized SIGKILL: seed {seed}, {runs} runs (replay: FIREDRILL_KILL_SEED={seed} FIREDRILL_KILL_RUNS={runs})"
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let sim = Sim::up().await;
    let before = sim.settled().await;
    let drill = sim.drill_file("faults.feature", &drill("1m"));

    // One run to its end: how long a run lasts and how many ledger lines it writes.
    let started = Instant::now();
    let (status, output) =
        run_to_end(&mut sim.run(&drill, "calibrate.jsonl", "calibrate.json")).await;
    let full = started.elapsed();
    assert_eq!(status.code(), Some(0), "the drill itself passes: {output}");
    let lines = ledger_lines(&sim, "calibrate.jsonl");
    assert_eq!(lines, 9, "begin, 4 injects, 4 undos");
    sim.assert_as_before(&before, "the unkilled run").await;
    println!("a whole run: {full:?}, {lines} ledger lines");

    for i in 0..runs {
        let kill = if rng.random_bool(0.5) {
            Kill::At(full.mul_f64(rng.random::<f64>()))
        } else {
            Kill::AfterLine(rng.random_range(1..=lines))
        };
        let case = format!("seed {seed}, run {i}: SIGKILL {kill:?}");
        println!("{case}");
        let first = ledger_lines(&sim, "ledger.jsonl");
        let run = Started::spawn(&mut sim.run(&drill, "ledger.jsonl", "killed.json"));
        match kill {
            // The random instant is what is under test, not a wait for something to settle.
            Kill::At(after) => tokio::time::sleep(after).await,
            Kill::AfterLine(n) => {
                let deadline = Instant::now() + DEADLINE;
                while ledger_lines(&sim, "ledger.jsonl") < first + n {
                    assert!(Instant::now() < deadline, "{case}: line {n} never came");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        run.signal(libc::SIGKILL);
        let (status, output) = ended(run).await;
        let written = ledger_lines(&sim, "ledger.jsonl") - first;
        println!("  killed after {written} ledger line(s) ({status})");

        let (status, recovered) = run_to_end(&mut sim.recover("ledger.jsonl")).await;
        assert_eq!(
            status.code(),
            Some(0),
            "{case}: recover failed:\n{recovered}\nthe killed run said:\n{output}"
        );
        sim.assert_as_before(&before, &case).await;
        assert_eq!(sim.outstanding("ledger.jsonl"), 0, "{case}:\n{recovered}");
        // The next run starts from a settled platform (recover does not wait for readiness).
        sim.settled().await;
    }
}
