//! Live `/metrics` (and `/healthz`) during a run, so a 25-minute drill can be watched.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;

use super::Metrics;

/// The metrics listener could not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot serve metrics on {addr}: {source} (hint: pick a free address with --metrics-addr, e.g. 127.0.0.1:9464)"
)]
pub struct ServeError {
    /// The address.
    pub addr: SocketAddr,
    /// Why.
    pub source: std::io::Error,
}

/// Serves `/metrics` and `/healthz` until the returned task is aborted; returns the bound address.
///
/// # Errors
///
/// [`ServeError`] when the address cannot be bound.
pub async fn serve(
    metrics: Metrics,
    addr: SocketAddr,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError { addr, source })?;
    let app = Router::new()
        .route("/metrics", get(exposition))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(metrics);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((bound, task))
}

async fn exposition(
    State(metrics): State<Metrics>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics.encode(),
    )
}
