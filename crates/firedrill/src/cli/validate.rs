//! `firedrill validate` and `firedrill plan`: static checks and the injection plan.

use std::collections::BTreeSet;

use super::{Drills, Exit, load, render};

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// What to check.
    #[command(flatten)]
    pub drills: Drills,
    /// Also check that every endpoint and program the drills need is reachable (no fault is injected).
    #[arg(long)]
    pub preflight: bool,
}

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// What to plan.
    #[command(flatten)]
    pub drills: Drills,
}

/// Checks drills and platform; with `--preflight`, also reachability and whether a run may
/// start now (not halted, not in a blackout).
pub async fn validate(args: ValidateArgs) -> Exit {
    if args.preflight && args.drills.platform.is_none() {
        // The embedded platform only exists inside `firedrill run`; its endpoints here are
        // placeholders, so reaching them would only report what is already known.
        errln!(
            "error: --preflight needs --platform: the embedded platform runs only inside `firedrill run` (hint: `firedrill run --dry-run` preflights it)"
        );
        return Exit::Usage;
    }
    let loaded = match load::checked(&args.drills) {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    if args.preflight {
        let needs: BTreeSet<_> = loaded
            .checked
            .iter()
            .flat_map(|c| c.needs.iter().cloned())
            .collect();
        let clock = firedrill_core::clock::Clock::real();
        let http = match firedrill_providers::http::client() {
            Ok(c) => c,
            Err(e) => {
                errln!("error: cannot build the HTTP client: {e}");
                return Exit::Usage;
            }
        };
        if let Err(problems) =
            firedrill_providers::preflight::check(&needs, &loaded.platform, &http, &clock).await
        {
            render::problems(&problems);
            return Exit::Usage;
        }
        // Whether a run would start now: a halted estate or a blackout refuses it the same way.
        if let Err(exit) = super::stop::clear_for_run(&loaded.platform, None).await {
            return exit;
        }
    }
    let steps: usize = loaded
        .features
        .iter()
        .map(|f| f.scenarios.iter().map(|s| s.steps.len()).sum::<usize>())
        .sum();
    outln!(
        "ok: {} scenario(s) in {} file(s), {steps} step(s), valid against platform \"{}\"",
        loaded.checked.len(),
        loaded.features.len(),
        loaded.platform.name
    );
    Exit::Passed
}

/// Prints what each scenario would inject and how it would be undone.
pub fn plan(args: PlanArgs) -> Exit {
    let loaded = match load::checked(&args.drills) {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    outln!(
        "Plan against platform \"{}\" (nothing is touched):",
        loaded.platform.name
    );
    for scenario in &loaded.checked {
        outln!(
            "\n{} — {}\n  ({})",
            scenario.feature,
            scenario.scenario,
            scenario.location
        );
        if scenario.effects.is_empty() {
            outln!("  injects nothing (observes only)");
        }
        for (i, effect) in scenario.effects.iter().enumerate() {
            outln!("  {}. {}\n     undo: {}", i + 1, effect.what, effect.undo);
        }
    }
    Exit::Passed
}
