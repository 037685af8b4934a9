//! Faults injected by platform commands, and named commands (e.g. a Terraform apply that moves
//! the Atlas primary region).

use cucumber::when;

use super::{Analysis, Args, Effect, Failure, Need, ResultExt, StepDoc, StepError, param};
use crate::world::Drill;
use firedrill_core::names::MilestoneName;
use firedrill_engine::events::Event;
use firedrill_engine::scenario::Change;
use firedrill_platform::Platform;
use firedrill_providers::Undo;
use firedrill_providers::command::{self, CommandRef, CommandUndo};

/// The fault and command steps.
pub const DOCS: &[StepDoc] = &[
    StepDoc {
        keyword: "When",
        pattern: "the fault {fault} is injected",
        example: "the fault \"us-west1-dark\" is injected",
        doc: "Runs the inject command of a fault defined under `faults:` in the platform, after writing its undo command to the ledger. The first fault of a scenario is the milestone `fault injected` (\"the fault\").",
        domain: "faults",
        analyze: analyze_fault,
    },
    StepDoc {
        keyword: "When",
        pattern: "the fault {fault} is removed",
        example: "the fault \"us-west1-dark\" is removed",
        doc: "Runs the fault's undo now instead of at the end of the scenario; milestone `fault removed: {fault}`.",
        domain: "faults",
        analyze: analyze_fault,
    },
    StepDoc {
        keyword: "When",
        pattern: "the command {command} is run",
        example: "the command \"atlas-primary-to-us-west2\" is run",
        doc: "Runs a command defined under `commands:` (no undo: use a fault for changes that must be taken back); milestone `command {command} finished` at its exit.",
        domain: "faults",
        analyze: analyze_command,
    },
];

fn analyze_fault(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let name = args.get("fault");
    match platform.faults.get(name) {
        Some(fault) => {
            for cmd in [&fault.inject, &fault.undo] {
                if let Some(program) = cmd.run.first() {
                    a.needs.push(Need::Program(program.clone()));
                }
            }
            a.effects.push(Effect {
                what: format!(
                    "fault \"{name}\" ({}): {}",
                    fault.description,
                    fault.inject.run.join(" ")
                ),
                undo: fault.undo.run.join(" "),
            });
        }
        None => a.problem(
            "fault",
            format!("fault \"{name}\" is not defined in the platform"),
            format!(
                "known faults: {}",
                firedrill_core::diagnostic::one_of(&platform.faults.keys().collect::<Vec<_>>())
            ),
        ),
    }
    a
}

fn analyze_command(args: &Args, platform: &Platform) -> Analysis {
    let mut a = Analysis::default();
    let name = args.get("command");
    match platform.commands.get(name) {
        Some(cmd) => {
            if let Some(program) = cmd.run.first() {
                a.needs.push(Need::Program(program.clone()));
            }
            a.effects.push(Effect {
                what: format!("run command \"{name}\": {}", cmd.run.join(" ")),
                undo: "none (a command, not a fault)".into(),
            });
        }
        None => a.problem(
            "command",
            format!("command \"{name}\" is not defined in the platform"),
            format!(
                "known commands: {}",
                firedrill_core::diagnostic::one_of(&platform.commands.keys().collect::<Vec<_>>())
            ),
        ),
    }
    a
}

#[when(expr = "the fault {fault} is injected")]
async fn fault_is_injected(world: &mut Drill, fault: param::Fault) -> Result<(), Failure> {
    let fault = fault.0;
    let spec = world
        .platform()
        .faults
        .get(&fault)
        .cloned()
        .ok_or_else(|| {
            StepError::platform(
                format!("fault \"{fault}\" is not defined in the platform"),
                format!(
                    "define faults.{fault} with its inject and undo commands in the platform file"
                ),
            )
        })?;
    let undo = Undo::Command(CommandUndo {
        command: CommandRef::FaultUndo {
            fault: fault.clone(),
        },
        run: spec.undo.run.clone(),
        settle: None,
    });
    let clock = world.clock();
    let base = world.platform().base_dir();
    let inject_ref = CommandRef::FaultInject {
        fault: fault.clone(),
    };
    let finished = world
        .inject(
            Change::Fault,
            &format!("{fault}: {}", spec.description),
            undo,
            &[MilestoneName::FaultInjectedAs(fault.clone())],
            command::run(&inject_ref.describe(), &spec.inject, &[], &base, &clock),
        )
        .await
        .acting(|| format!("inject the fault \"{fault}\""))?;
    world.run.events.emit(&Event::CommandFinished(finished));
    Ok(())
}

#[when(expr = "the fault {fault} is removed")]
async fn fault_is_removed(world: &mut Drill, fault: param::Fault) -> Result<(), Failure> {
    let prefix = format!("{fault}: ");
    let id = world.outstanding(&prefix).ok_or_else(|| {
        StepError::precondition(
            format!(
                "fault \"{fault}\" was not injected in this scenario, so there is nothing to remove"
            ),
            format!("add `When the fault \"{fault}\" is injected` before this step"),
        )
    })?;
    world
        .undo_now(&id)
        .await
        .acting(|| format!("remove the fault \"{fault}\""))?;
    let now = world.clock().now();
    world.milestone(MilestoneName::FaultRemoved(fault.0), now, "engine");
    Ok(())
}

#[when(expr = "the command {command} is run")]
async fn command_is_run(world: &mut Drill, name: param::Command) -> Result<(), Failure> {
    let name = name.0;
    let cmd = world
        .platform()
        .commands
        .get(&name)
        .cloned()
        .ok_or_else(|| {
            StepError::platform(
                format!("command \"{name}\" is not defined in the platform"),
                format!("define commands.{name} in the platform file"),
            )
        })?;
    let what = CommandRef::Named { name: name.clone() }.describe();
    let result = command::run(
        &what,
        &cmd,
        &[],
        &world.platform().base_dir(),
        &world.clock(),
    )
    .await;
    match result {
        Ok(finished) => {
            world.milestone(
                MilestoneName::CommandFinished(name),
                finished.finished,
                "command",
            );
            world.run.events.emit(&Event::CommandFinished(finished));
            Ok(())
        }
        Err(command::CommandError::Failed {
            finished,
            what,
            argv,
            code,
            stderr_tail,
        }) => {
            world.run.events.emit(&Event::CommandFinished(*finished));
            Err(StepError::unmet(
                format!("{what} to succeed"),
                format!("`{argv}` exited with {code}: {stderr_tail}"),
                "the report holds its whole output",
            ))
        }
        Err(e) => Err(StepError::action(format!("run the command \"{name}\""), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fault_milestone_follows_the_ledger;

    #[tokio::test]
    async fn a_fault_is_stamped_by_the_engine_once_its_undo_is_on_disk_and_never_otherwise() {
        for name in ["fault injected: marker", "fault injected"] {
            fault_milestone_follows_the_ledger(name, |w| {
                Box::pin(fault_is_injected(w, param::Fault("marker".into())))
            })
            .await;
        }
    }
}
