//! One observation of a service over HTTP: the probe's client, a request judged against what
//! the probe expects, and waiting until the service answers from a region.

use std::time::Duration;

use firedrill_core::clock::Clock;
use firedrill_core::observed::Observation;
use firedrill_platform::Probe;

/// The shortest wall-clock time a probe request is given, whatever the time scale.
const MIN_WALL_TIMEOUT: Duration = Duration::from_millis(500);

/// Builds the HTTP client probes use (no proxy from the environment: probes must reach the
/// service directly, and tests only talk to loopback).
///
/// # Errors
///
/// When the TLS backend cannot initialise.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(4)
        .build()
}

/// Sends one request now and judges the answer.
pub async fn observe(client: &reqwest::Client, probe: &Probe, clock: &Clock) -> Observation {
    let at = clock.now();
    let request = async {
        let response = client.get(&probe.url).send().await?;
        let status = response.status().as_u16();
        let region = probe
            .region_header
            .as_ref()
            .and_then(|h| response.headers().get(h))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await?;
        Ok::<_, reqwest::Error>((status, region, body))
    };
    // In compressed time a probe's timeout is a few wall milliseconds, less than a loaded
    // machine may take to schedule a loopback request; a floor of wall time keeps scheduling
    // noise from counting as an outage (the latency is still reported in platform time).
    let deadline = clock.to_wall(probe.timeout).max(MIN_WALL_TIMEOUT);
    let outcome = tokio::time::timeout(deadline, request).await;
    let latency = clock.now().saturating_since(at);
    match outcome {
        Ok(Ok((status, region, body))) => {
            let status_ok = probe.expect_status.contains(&status);
            let body_ok = probe
                .body_contains
                .as_ref()
                .is_none_or(|needle| body.contains(needle));
            let error = match (status_ok, body_ok) {
                (false, _) => Some(format!(
                    "status {status}, expected {:?}",
                    probe.expect_status
                )),
                (true, false) => Some("body lacks the expected text".to_owned()),
                (true, true) => None,
            };
            Observation {
                at,
                good: error.is_none(),
                status: Some(status),
                region,
                latency,
                error,
            }
        }
        Ok(Err(e)) => Observation {
            at,
            good: false,
            status: None,
            region: None,
            latency,
            error: Some(describe(&e)),
        },
        Err(_) => Observation {
            at,
            good: false,
            status: None,
            region: None,
            latency,
            error: Some("timed out".to_owned()),
        },
    }
}

/// A request's failure in a few words: refused, timed out, or the error and its causes.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "connection refused or unreachable".to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else {
        crate::error_chain::error_chain(e)
    }
}

/// Probes now and then at the probe's interval until a good answer comes from `region`, for at
/// most `within` (platform time).
///
/// # Errors
///
/// The last observation, described (`503 from us-west1`), when no good answer came from
/// `region` by the deadline.
pub async fn await_region(
    client: &reqwest::Client,
    probe: &Probe,
    region: &str,
    within: Duration,
    clock: &Clock,
) -> Result<(), String> {
    crate::poll::until(clock, probe.interval, within, || async {
        let obs = observe(client, probe, clock).await;
        if obs.good && obs.region.as_deref() == Some(region) {
            return Ok(());
        }
        Err(Some(format!(
            "{} from {}",
            obs.status
                .map_or_else(|| obs.error.unwrap_or_default(), |s| s.to_string()),
            obs.region.unwrap_or_else(|| "no region".into())
        )))
    })
    .await
    .map_err(|last| last.unwrap_or_else(|| "no answer yet".to_owned()))
}
