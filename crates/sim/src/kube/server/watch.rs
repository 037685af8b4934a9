//! Watches: the initial ADDED events (or the changes since a resourceVersion), then every change
//! that passes the filter, bookmarks, `410 Gone` for a version the history no longer covers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::super::error::ApiError;
use super::super::resources::{RESOURCES, ResourceId};
use super::super::selector::{FieldSelector, LabelSelector};
use super::super::store::{Change, ChangeKind, labels_of, rv_of};
use super::super::table;
use super::{Answer, Request, Shared, error_response, flag, now_secs, wants_table};
use firedrill_core::clock::Clock;

/// A watch to serve.
pub struct WatchRequest {
    res: ResourceId,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    since: Option<u64>,
    bookmarks: bool,
    send_initial_events: bool,
    timeout: Duration,
    table: bool,
}

/// `GET …?watch=true` (or the `/watch/` path): parses the watch's parameters.
///
/// # Errors
///
/// `400` for an invalid resourceVersion.
pub fn start(req: &Request<'_>) -> Result<Answer, ApiError> {
    let (query, t) = (req.query, &req.target);
    let mut fields = req.fields.clone();
    if let Some(name) = t.name.as_deref() {
        fields = FieldSelector::parse(&format!("metadata.name={name}"))
            .map_err(ApiError::bad_request)?;
    }
    let since = match query.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {v:?}")))?,
        ),
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(Duration::from_secs(1_800), Duration::from_secs);
    Ok(Answer::Watch(WatchRequest {
        res: t.res,
        namespace: t.namespace.clone(),
        labels: req.labels.clone(),
        fields,
        since,
        bookmarks: flag(query, "allowWatchBookmarks"),
        send_initial_events: flag(query, "sendInitialEvents"),
        timeout,
        table: wants_table(req.headers),
    }))
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

struct Filter {
    res: ResourceId,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    table: bool,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| super::super::store::namespace_of(obj) == ns)
            && self.labels.matches(labels_of(obj))
            && self.fields.matches(obj)
    }

    fn render(&self, obj: &Value, clock: &Clock) -> Value {
        if self.table {
            let rv = rv_of(obj).unwrap_or(0);
            table::table(self.res, &[Arc::new(obj.clone())], rv, now_secs(clock))
        } else {
            obj.clone()
        }
    }

    /// The event a watch with this filter sees for a change, if any: a change that moves an
    /// object into the filter is ADDED, out of it DELETED.
    fn event(&self, c: &Change, clock: &Clock) -> Option<Bytes> {
        if c.resource != self.res {
            return None;
        }
        let now = self.matches(&c.object);
        let before = c.previous.as_ref().is_some_and(|p| self.matches(p));
        let kind = match (c.kind, before, now) {
            (ChangeKind::Added, _, true) => "ADDED",
            (ChangeKind::Modified, true, true) => "MODIFIED",
            (ChangeKind::Modified, false, true) => "ADDED",
            (ChangeKind::Modified, true, false) => "DELETED",
            (ChangeKind::Deleted, _, true) => "DELETED",
            _ => return None,
        };
        Some(event_line(kind, &self.render(&c.object, clock)))
    }
}

fn bookmark(res: ResourceId, rv: u64, initial_end: bool) -> Bytes {
    let rt = &RESOURCES[res];
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        &json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": meta}),
    )
}

pub fn serve(shared: Arc<Shared>, req: WatchRequest) -> Response {
    let filter = Filter {
        res: req.res,
        namespace: req.namespace.clone(),
        labels: req.labels.clone(),
        fields: req.fields.clone(),
        table: req.table,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(1_024);
    let mut initial: Vec<Bytes> = Vec::new();
    let (sub, start_rv) = {
        let w = shared.lock();
        let rv = w.store.resource_version();
        match req.since {
            None => {
                for obj in w
                    .store
                    .list(req.res, req.namespace.as_deref())
                    .filter(|o| filter.matches(o))
                {
                    initial.push(event_line("ADDED", &filter.render(obj, &shared.clock)));
                }
                if req.send_initial_events && req.bookmarks {
                    initial.push(bookmark(req.res, rv, true));
                }
                (Some(w.store.subscribe()), rv)
            }
            Some(since) => match w.store.changes_since(since) {
                Ok(changes) => {
                    initial.extend(
                        changes
                            .iter()
                            .filter_map(|c| filter.event(c, &shared.clock)),
                    );
                    (Some(w.store.subscribe()), rv)
                }
                Err(e) => {
                    initial.push(event_line("ERROR", &e.status()));
                    (None, rv)
                }
            },
        }
    };
    let mut closed = shared.watch_epoch.subscribe();
    let clock = shared.clock;
    let bookmark_every = shared.bookmark_every;
    tokio::spawn(async move {
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let Some(mut sub) = sub else { return };
        let mut last_rv = start_rv;
        let deadline = tokio::time::sleep(req.timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(bookmark_every);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = tx.closed() => return,
                _ = closed.changed() => return,
                () = &mut deadline => return,
                _ = ticker.tick(), if req.bookmarks => {
                    if tx.send(bookmark(req.res, last_rv, false)).await.is_err() {
                        return;
                    }
                }
                msg = sub.recv() => match msg {
                    Ok(change) => {
                        if change.rv <= last_rv {
                            continue;
                        }
                        last_rv = change.rv;
                        if let Some(line) = filter.event(&change, &clock)
                            && tx.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    // A watcher that fell behind is closed; the client resumes from its last
                    // version, which the history still covers.
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| {
            error_response(&ApiError::bad_request(
                "cannot build the watch response".to_owned(),
            ))
        })
}
