//! What the embedded applications and front door export on `/metrics`, in the Prometheus text
//! format, as a real storefront and load balancer would: requests by namespace, region and
//! status code, and latency histograms. Latencies are platform seconds (the embedded platform
//! may run compressed); Prometheus stamps samples with wall time when it scrapes them.

use std::time::Duration;

use prometheus::{Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// The request counter: `http_requests_total{service, namespace, region, code}`.
pub const REQUESTS: &str = "http_requests_total";

/// The latency histogram: `http_request_duration_seconds{service, namespace, region}`.
pub const LATENCY: &str = "http_request_duration_seconds";

/// The `namespace` label of a request that names none (`/`, `/healthz`).
pub const NO_NAMESPACE: &str = "none";

/// Latency buckets, in platform seconds: a storefront answers in milliseconds, a checkout
/// behind a slow database link in seconds, a backend timeout at 30 s.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The traffic metrics of one service (`front-door`, `storefront`).
#[derive(Clone, Debug)]
pub struct Traffic {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl Traffic {
    /// The metrics of `service`, which labels every series it exports.
    ///
    /// # Errors
    ///
    /// When `service` is not a valid label value.
    pub fn new(service: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                REQUESTS,
                "HTTP requests answered, by namespace, region and status code.",
            )
            .const_label("service", service),
            &["namespace", "region", "code"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                LATENCY,
                "Time to answer an HTTP request, in platform seconds.",
            )
            .const_label("service", service)
            .buckets(BUCKETS.to_vec()),
            &["namespace", "region"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
        })
    }

    /// Counts one answered request.
    pub fn observe(&self, namespace: Option<&str>, region: &str, code: u16, latency: Duration) {
        let namespace = namespace.unwrap_or(NO_NAMESPACE);
        self.requests
            .with_label_values(&[namespace, region, &code.to_string()])
            .inc();
        self.latency
            .with_label_values(&[namespace, region])
            .observe(latency.as_secs_f64());
    }

    /// The text exposition of everything counted so far.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        // Encoding a gathered registry into memory only fails on invalid metric families,
        // which the constructor rules out.
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The `/metrics` answer: the exposition with its content type.
#[must_use]
pub fn exposition(traffic: &Traffic) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        traffic.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_namespace_region_and_code() {
        let traffic = Traffic::new("front-door").expect("metrics");
        traffic.observe(Some("prod-2"), "us-west1", 502, Duration::from_millis(30));
        traffic.observe(Some("prod-2"), "us-west1", 502, Duration::from_millis(30));
        traffic.observe(None, "us-west1", 200, Duration::from_millis(2));
        let text = traffic.encode();
        assert!(
            text.contains(
                r#"http_requests_total{code="502",namespace="prod-2",region="us-west1",service="front-door"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"http_requests_total{code="200",namespace="none",region="us-west1",service="front-door"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"http_request_duration_seconds_bucket{namespace="prod-2",region="us-west1",service="front-door",le="0.05"} 2"#),
            "{text}"
        );
    }
}
