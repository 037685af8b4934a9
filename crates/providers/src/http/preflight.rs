//! What preflight asks of a probe: its endpoint answers HTTP at all. Whether it is *healthy*
//! is a step of the drill ("the platform is healthy"), not a precondition.

use std::time::Duration;

use super::{HttpError, describe};
use crate::preflight::split_hint;
use firedrill_core::clock::Clock;
use firedrill_core::diagnostic::{Problem, Problems};
use firedrill_platform::Platform;

/// Reachability is a wall-clock question: at least this long, whatever the time scale.
const MIN_WALL_REACH: Duration = Duration::from_secs(2);

/// Preflight for [`Need::Probe`](crate::preflight::Need::Probe): a problem at
/// `probes.<name>.url` unless the probe's URL gives any HTTP answer within the probe's
/// timeout. A probe the platform does not define is left to validation.
pub async fn preflight(
    name: &str,
    platform: &Platform,
    http: &reqwest::Client,
    clock: &Clock,
    problems: &mut Problems,
) {
    let Some(probe) = platform.probes.get(name) else {
        return;
    };
    let deadline = clock.to_wall(probe.timeout).max(MIN_WALL_REACH);
    let message = match tokio::time::timeout(deadline, http.get(&probe.url).send()).await {
        Ok(Ok(_)) => return,
        Ok(Err(e)) => describe(&e),
        Err(_) => "no answer before the probe's timeout".to_owned(),
    };
    let error = HttpError::Unreachable {
        probe: name.to_owned(),
        url: probe.url.clone(),
        message,
    }
    .to_string();
    let (message, hint) = split_hint(&error);
    let mut problem = Problem::at(platform.locate(&format!("probes.{name}.url")), message);
    if let Some(hint) = hint {
        problem = problem.hint(hint);
    }
    problems.push(problem);
}
