//! A request audit of the embedded API servers: one JSON line per resource request, in the
//! terms RBAC decides on (verb, API group, resource, subresource, namespace), so a test can check
//! a Role against what firedrill really calls.
//!
//! Off unless [`enable`] is called (by `firedrill sim up --audit-log FILE`). It is one sink per
//! process, like the real API server's audit log is one per server: every cluster of the process
//! writes to it, each line naming its cluster.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::resources::ResourceType;

/// One audited request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The cluster (its region) that served it.
    pub cluster: String,
    /// The RBAC verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// The API group; empty for the core group.
    pub api_group: String,
    /// The resource (plural).
    pub resource: String,
    /// The subresource (`scale`, `eviction`, `status`); empty for none.
    pub subresource: String,
    /// The namespace RBAC checks the request in; empty for a cluster-wide request. As in the
    /// real API server, a request on a namespace object itself is in that namespace.
    pub namespace: String,
    /// The object name; empty for lists, watches and creates.
    pub name: String,
    /// For a SelfSubjectAccessReview: the question asked (its `resourceAttributes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Value>,
}

/// Why the audit log cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot open the audit log {path}: {source} (hint: check that its folder exists and is writable)"
)]
pub struct AuditError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

static SINK: Mutex<Option<File>> = Mutex::new(None);

/// Whether [`SINK`] is set: read on every request, so a server without an audit takes no lock.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Starts writing every request of every embedded API server in this process to `path`
/// (created or truncated), one JSON [`Entry`] per line.
///
/// # Errors
///
/// [`AuditError`] when the file cannot be created.
pub fn enable(path: &Path) -> Result<(), AuditError> {
    let file = File::create(path).map_err(|source| AuditError {
        path: path.to_owned(),
        source,
    })?;
    *SINK.lock().unwrap_or_else(PoisonError::into_inner) = Some(file);
    ENABLED.store(true, Ordering::Release);
    Ok(())
}

fn write(entry: &Entry) {
    let mut sink = SINK.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(file) = sink.as_mut() else {
        return;
    };
    if let Ok(mut line) = serde_json::to_vec(entry) {
        line.push(b'\n');
        // One write per line, so a reader never sees half an entry; a failed write loses only
        // the audit line, never the request.
        let _ = file.write_all(&line);
    }
}

fn enabled() -> bool {
    SINK.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_some()
}

/// Records a resource request (called by the server before the role check, so refused calls
/// are audited too).
pub(super) fn resource(
    cluster: &str,
    verb: &str,
    rt: &ResourceType,
    namespace: Option<&str>,
    name: Option<&str>,
    sub: Option<&str>,
) {
    if !enabled() {
        return;
    }
    // The real server's request info puts a request on `namespaces/<name>` in that namespace.
    let namespace = match (namespace, rt.plural, name) {
        (Some(ns), _, _) => ns,
        (None, "namespaces", Some(name)) => name,
        _ => "",
    };
    write(&Entry {
        cluster: cluster.to_owned(),
        verb: verb.to_owned(),
        api_group: rt.group.to_owned(),
        resource: rt.plural.to_owned(),
        subresource: sub.unwrap_or_default().to_owned(),
        namespace: namespace.to_owned(),
        name: name.unwrap_or_default().to_owned(),
        review: None,
    });
}

/// Records a SelfSubjectAccessReview and the question it asks.
pub(super) fn access_review(cluster: &str, attributes: &Value) {
    if !enabled() {
        return;
    }
    write(&Entry {
        cluster: cluster.to_owned(),
        verb: "create".to_owned(),
        api_group: "authorization.k8s.io".to_owned(),
        resource: "selfsubjectaccessreviews".to_owned(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
        review: Some(attributes.clone()),
    });
}

/// Reads an audit log back.
///
/// # Errors
///
/// The read error, or a line that is not an [`Entry`] (as `InvalidData`).
pub fn read(path: &Path) -> std::io::Result<Vec<Entry>> {
    std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_one_json_line_in_rbac_terms() {
        let entry = Entry {
            cluster: "us-west1".into(),
            verb: "patch".into(),
            api_group: "apps".into(),
            resource: "deployments".into(),
            subresource: "scale".into(),
            namespace: "prod-1".into(),
            name: "storefront".into(),
            review: None,
        };
        let line = serde_json::to_string(&entry).expect("serialize");
        assert_eq!(
            line,
            r#"{"cluster":"us-west1","verb":"patch","apiGroup":"apps","resource":"deployments","subresource":"scale","namespace":"prod-1","name":"storefront"}"#
        );
        let back: Entry = serde_json::from_str(&line).expect("parse");
        assert_eq!(back, entry);
    }
}
