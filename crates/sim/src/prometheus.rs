//! What a Prometheus needs to watch the embedded platform, handed over as files: a scrape
//! configuration naming the front door's and the applications' `/metrics`, and the platform
//! file's `prometheus:` and `guards:` sections for that Prometheus.
//!
//! Prometheus samples wall time and the embedded platform may run compressed: at time scale
//! `S`, one wall second is `S` platform seconds. So the scrape interval and every PromQL range
//! written here are platform durations converted to wall time ([`wall_millis`]); the guards'
//! `interval` stays in platform time, as every duration of the platform file does.

/// How often Prometheus scrapes the embedded platform, in platform time.
pub const SCRAPE_EVERY_SECS: f64 = 5.0;

/// The range the shipped queries rate over, in platform time.
pub const RANGE_SECS: f64 = 60.0;

/// The fastest scrape interval written, in wall milliseconds: faster would only load the
/// machine, not sharpen the guard.
const MIN_SCRAPE_MS: u64 = 100;

/// `platform_secs` of platform time in wall milliseconds at time scale `scale`.
#[must_use]
pub fn wall_millis(platform_secs: f64, scale: f64) -> u64 {
    let scale = if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        1.0
    };
    // Rounded to whole milliseconds, the finest unit PromQL durations take.
    (platform_secs * 1000.0 / scale).round().max(1.0) as u64
}

/// The scrape interval at `scale`, in wall milliseconds.
#[must_use]
pub fn scrape_millis(scale: f64) -> u64 {
    wall_millis(SCRAPE_EVERY_SECS, scale).max(MIN_SCRAPE_MS)
}

/// The queries' range at `scale`, in wall milliseconds: [`RANGE_SECS`] of platform time, and at
/// least four scrapes, so `rate` always has samples to work with.
#[must_use]
pub fn range_millis(scale: f64) -> u64 {
    wall_millis(RANGE_SECS, scale).max(4 * scrape_millis(scale))
}

/// A Prometheus configuration scraping `targets` (`host:port`, each serving `/metrics`) at
/// [`scrape_millis`].
#[must_use]
pub fn scrape_config(targets: &[String], scale: f64) -> String {
    let every = scrape_millis(scale);
    let quoted: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        "# Written by `firedrill sim up --prometheus`: the embedded platform's /metrics, scraped\n\
         # every {SCRAPE_EVERY_SECS} s of platform time (time scale {scale}).\n\
         global:\n  scrape_interval: {every}ms\n  scrape_timeout: {every}ms\n  evaluation_interval: {every}ms\n\
         scrape_configs:\n  - job_name: embedded\n    static_configs:\n      - targets: [{}]\n",
        quoted.join(", ")
    )
}

/// The bystanders' error rate: the percentage of prod-2's and prod-3's answers at the front
/// door that were 5xx over the range, one series per namespace (0 while none failed).
#[must_use]
pub fn bystander_errors(scale: f64) -> String {
    let range = range_millis(scale);
    let all = format!(
        "sum by (namespace) (rate(http_requests_total{{service=\"front-door\",namespace=~\"prod-2|prod-3\"}}[{range}ms]))"
    );
    let failed = format!(
        "sum by (namespace) (rate(http_requests_total{{service=\"front-door\",namespace=~\"prod-2|prod-3\",code=~\"5..\"}}[{range}ms]))"
    );
    format!("100 * ({failed} or 0 * {all}) / {all}")
}

/// The 99th percentile of prod-1's checkout latency at the front door, in platform seconds.
#[must_use]
pub fn checkout_p99(scale: f64) -> String {
    let range = range_millis(scale);
    format!(
        "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{service=\"front-door\",namespace=\"prod-1\"}}[{range}ms])))"
    )
}

/// The platform file's `prometheus:` and `guards:` sections for the Prometheus at `url`
/// scraping this platform at `scale`. The `bystanders` guard keeps its name and meaning (the
/// bystanders' error rate above 20 %, twice in a row) but is measured by Prometheus.
#[must_use]
pub fn platform_sections(url: &str, scale: f64) -> String {
    let errors = bystander_errors(scale);
    format!(
        "\n# Written by `firedrill sim up --prometheus`. Prometheus samples wall time: the queries'\n\
         # ranges are {RANGE_SECS} s of platform time at time scale {scale}; `interval` is platform time.\n\
         prometheus:\n  url: {url}\n  interval: 15s\n  queries:\n    bystander-errors: '{errors}'\n    checkout-p99: '{}'\n\
         \n\
         guards:\n  bystanders:\n    description: prod-2's and prod-3's users keep checking out while a drill runs elsewhere\n    query: '{errors}'\n    abort-if: \"> 20\"\n    for: 2\n    interval: 15s\n",
        checkout_p99(scale)
    )
}

/// `platform` (the embedded platform file's text, whose `guards:` section comes last) with its
/// guards replaced by [`platform_sections`].
#[must_use]
pub fn with_prometheus(platform: &str, url: &str, scale: f64) -> String {
    let kept = platform
        .find("\nguards:")
        .map_or(platform, |at| &platform[..at]);
    format!("{}\n{}", kept.trim_end(), platform_sections(url, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_platform_time_in_wall_milliseconds() {
        assert_eq!(scrape_millis(1.0), 5000);
        assert_eq!(range_millis(1.0), 60_000);
        assert_eq!(scrape_millis(20.0), 250);
        assert_eq!(range_millis(20.0), 3000);
        // Faster than 100 ms is not scraped; the range still spans four scrapes.
        assert_eq!(scrape_millis(200.0), 100);
        assert_eq!(range_millis(200.0), 400);
        assert!(bystander_errors(20.0).contains("[3000ms]"));
    }

    #[test]
    fn the_prometheus_sections_replace_the_probe_guards() {
        let platform =
            "name: embedded\nprobes:\n  p: {}\n\nguards:\n  bystanders:\n    probes: [p]\n";
        let text = with_prometheus(platform, "http://127.0.0.1:9090", 20.0);
        assert!(
            text.starts_with("name: embedded\nprobes:\n  p: {}\n"),
            "{text}"
        );
        assert_eq!(text.matches("\nguards:").count(), 1, "{text}");
        assert!(!text.contains("probes: [p]"), "{text}");
        assert!(
            text.contains("prometheus:\n  url: http://127.0.0.1:9090\n"),
            "{text}"
        );
        assert!(
            text.contains("    query: '100 * (sum by (namespace)"),
            "{text}"
        );
    }

    #[test]
    fn the_scrape_config_names_every_target() {
        let text = scrape_config(&["127.0.0.1:1".into(), "127.0.0.1:2".into()], 20.0);
        assert!(text.contains("scrape_interval: 250ms"), "{text}");
        assert!(
            text.contains("targets: [\"127.0.0.1:1\", \"127.0.0.1:2\"]"),
            "{text}"
        );
    }
}
