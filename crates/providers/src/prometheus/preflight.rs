//! What preflight asks of Prometheus before anything is injected.

use super::{Client, Error};
use firedrill_core::diagnostic::{Problem, Problems};
use firedrill_platform::Platform;

fn located(platform: &Platform, at: &str, error: &Error) -> Problem {
    let text = error.to_string();
    let (message, hint) = match text.rsplit_once(" (hint: ") {
        Some((m, h)) => (m.to_owned(), h.trim_end_matches(')').to_owned()),
        None => (text, String::new()),
    };
    Problem::at(platform.locate(at), message).hint(format!("{hint}; nothing was injected"))
}

/// The platform's Prometheus answers `/-/ready` and a test query (`vector(1)`) with its
/// credentials: it is there, it is Prometheus, and it lets firedrill in.
pub async fn preflight(platform: &Platform, problems: &mut Problems) -> bool {
    let client = match Client::from_platform(platform) {
        Ok(client) => client,
        Err(e) => {
            problems.push(located(platform, "prometheus", &e));
            return false;
        }
    };
    if let Err(e) = client.ready().await {
        problems.push(located(platform, "prometheus.url", &e));
        return false;
    }
    match client.query("vector(1)", None).await {
        Ok(samples) if samples.len() == 1 && (samples[0].value - 1.0).abs() < f64::EPSILON => true,
        Ok(samples) => {
            problems.push(
                Problem::at(
                    platform.locate("prometheus.url"),
                    format!(
                        "Prometheus at {} answered the test query vector(1) with {} series, not one sample of 1",
                        client.url(),
                        samples.len()
                    ),
                )
                .hint("is prometheus.url a Prometheus (or a compatible API)? Nothing was injected"),
            );
            false
        }
        Err(e) => {
            problems.push(located(platform, "prometheus.url", &e));
            false
        }
    }
}

/// `query` (a guard's, or an SLO step's) is accepted by the platform's Prometheus: a syntax
/// error is found before the drill, not at its first evaluation. `at` locates the problem.
pub async fn preflight_query(platform: &Platform, query: &str, at: &str, problems: &mut Problems) {
    let Ok(client) = Client::from_platform(platform) else {
        return;
    };
    if let Err(e @ (Error::Query { .. } | Error::Answer { .. })) = client.query(query, None).await {
        problems.push(located(platform, at, &e));
    }
}
