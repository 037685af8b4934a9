//! What the command provider reads from the platform file, resolved: which command a step or
//! an undo names ([`CommandRef`]), and the argv it runs with its `{placeholder}`s filled in.

use serde::{Deserialize, Serialize};

use super::CommandError;
use firedrill_platform::{Command, Platform};

/// `{placeholder}` → value pairs for a command's arguments.
pub type Substitutions = Vec<(String, String)>;

/// Which platform command an undo runs. Stored by reference, not by value: the environment of
/// a command may hold secrets, so `recover` resolves it again from the platform file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CommandRef {
    /// `faults.<fault>.inject`.
    FaultInject {
        /// The fault's name.
        fault: String,
    },
    /// `faults.<fault>.undo`.
    FaultUndo {
        /// The fault's name.
        fault: String,
    },
    /// `traffic.switch` with `{region}` = `region`.
    TrafficSwitch {
        /// The region traffic goes to.
        region: String,
    },
    /// `commands.<name>`.
    Named {
        /// The command's name.
        name: String,
    },
}

impl CommandRef {
    /// The command and its `{placeholder}` substitutions.
    ///
    /// # Errors
    ///
    /// [`CommandError::Unknown`] when the platform does not define it.
    pub fn resolve<'p>(
        &self,
        platform: &'p Platform,
    ) -> Result<(&'p Command, Substitutions), CommandError> {
        let unknown = || CommandError::Unknown {
            what: self.describe(),
        };
        match self {
            CommandRef::FaultInject { fault } => platform
                .faults
                .get(fault)
                .map(|f| (&f.inject, vec![]))
                .ok_or_else(unknown),
            CommandRef::FaultUndo { fault } => platform
                .faults
                .get(fault)
                .map(|f| (&f.undo, vec![]))
                .ok_or_else(unknown),
            CommandRef::TrafficSwitch { region } => platform
                .traffic
                .as_ref()
                .map(|t| (&t.switch, vec![("region".to_owned(), region.clone())]))
                .ok_or_else(unknown),
            CommandRef::Named { name } => platform
                .commands
                .get(name)
                .map(|c| (c, vec![]))
                .ok_or_else(unknown),
        }
    }

    /// `the undo command of fault "x"` and the like.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            CommandRef::FaultInject { fault } => format!("the inject command of fault \"{fault}\""),
            CommandRef::FaultUndo { fault } => format!("the undo command of fault \"{fault}\""),
            CommandRef::TrafficSwitch { region } => format!("the traffic switch to \"{region}\""),
            CommandRef::Named { name } => format!("command \"{name}\""),
        }
    }
}

/// Replaces `{name}` placeholders.
pub(super) fn substitute(text: &str, substitutions: &[(String, String)]) -> String {
    substitutions
        .iter()
        .fold(text.to_owned(), |acc, (name, value)| {
            acc.replace(&format!("{{{name}}}"), value)
        })
}

/// The argv a command will run with.
#[must_use]
pub fn argv(command: &Command, substitutions: &[(String, String)]) -> Vec<String> {
    command
        .run
        .iter()
        .map(|a| substitute(a, substitutions))
        .collect()
}
