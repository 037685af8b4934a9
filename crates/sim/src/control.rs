//! The embedded estate's control API: what a real estate's operators do by hand or through
//! their cloud's API, served over HTTP so that a command in the platform file can do it — the
//! same way a real estate's platform file names `systemctl start mongod` or a cloud CLI.
//!
//! - `POST /mongo/members/{host}/restart` starts a member that was shut down (`shutdown` kill):
//!   `204` when it is back, `404` when no replica set of the estate has that member, `409` when
//!   it is already up (its state in the body, as `{"error": …}`).
//!
//! `firedrill sim restart-member --control URL HOST` is its client; the embedded platform file
//! names that command as each database's way back from a kill.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use crate::mongo;

/// A running control API.
#[derive(Debug)]
pub struct Control {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Control {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Control {
    /// Serves the control API for `sets` on a loopback port of its own.
    ///
    /// # Errors
    ///
    /// When it cannot listen.
    pub async fn start(sets: Vec<Arc<mongo::ReplicaSet>>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let router = Router::new()
            .route("/mongo/members/{host}/restart", post(restart))
            .with_state(Arc::new(sets));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { url, task })
    }
}

async fn restart(
    State(sets): State<Arc<Vec<Arc<mongo::ReplicaSet>>>>,
    Path(host): Path<String>,
) -> Response {
    let Some(set) = sets.iter().find(|s| s.hosts().contains(&host)) else {
        return refusal(
            StatusCode::NOT_FOUND,
            format!("no replica set of the embedded estate has a member {host}"),
        );
    };
    match set.restart(&host).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e @ mongo::Error::MemberState { .. }) => refusal(StatusCode::CONFLICT, e.to_string()),
        Err(e) => refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn refusal(status: StatusCode, error: String) -> Response {
    (status, Json(serde_json::json!({ "error": error }))).into_response()
}
