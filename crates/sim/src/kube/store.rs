//! The object store: every object as JSON, one global monotonically increasing resourceVersion,
//! and a bounded history of changes that watches replay from (older versions answer `410 Gone`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::error::ApiError;
use super::resources::{NAMESPACES, PODS, RESOURCES, ResourceId, SERVICES};
use super::selector::LabelSelector;
use firedrill_core::clock::Clock;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
}

/// One change, as watches see it.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// The kind of the object.
    pub resource: ResourceId,
    /// Created, updated or deleted.
    pub kind: ChangeKind,
    /// The object after the change (for a delete: its last state, with the delete's version).
    pub object: Arc<Value>,
    /// The object before the change (lets a filtered watch turn a change that leaves its
    /// selector into `DELETED`, as the real watch cache does).
    pub previous: Option<Arc<Value>>,
}

/// Objects of one kind: namespace → name → object (cluster-scoped kinds use namespace "").
type Objects = BTreeMap<String, BTreeMap<String, Arc<Value>>>;

/// The store of one API server.
#[derive(Debug)]
pub struct Store {
    clock: Clock,
    rv: u64,
    uid_counter: u64,
    uid_prefix: u32,
    objects: Vec<Objects>,
    history: VecDeque<Arc<Change>>,
    history_capacity: usize,
    /// Every change with a version above this is in `history`.
    history_floor: u64,
    changes: broadcast::Sender<Arc<Change>>,
}

/// RFC 3339 with second precision (`2026-11-26T09:31:17Z`), the format of metav1.Time.
#[must_use]
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// The wall-clock time now, on the platform clock: what object timestamps (creationTimestamp,
/// condition transition times, event times) carry.
///
/// Timestamps are wall time, not platform time, also under compression: clients compare them
/// with their own clock (kubectl's AGE, a controller's staleness checks), and platform time runs
/// ahead of any client's clock (25 platform minutes after 15 wall seconds at 100x), which made
/// every age `<invalid>`. So the interval between two timestamps is the wall interval; the
/// platform interval is it times the time scale. The controllers keep their own deadlines
/// (tolerationSeconds, progressDeadlineSeconds) in platform time, never from timestamps.
#[must_use]
pub fn wall_now(clock: &Clock) -> SystemTime {
    clock.wall_origin() + clock.to_wall(clock.now().offset())
}

/// Parses the RFC 3339 timestamps this server writes back to seconds since the epoch.
#[must_use]
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3_600 + mm * 60 + ss).ok()
}

fn meta(obj: &Value) -> Option<&serde_json::Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// `metadata.name` of an object.
#[must_use]
pub fn name_of(obj: &Value) -> &str {
    meta(obj)
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `metadata.namespace` of an object.
#[must_use]
pub fn namespace_of(obj: &Value) -> &str {
    meta(obj)
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `metadata.labels` of an object.
#[must_use]
pub fn labels_of(obj: &Value) -> Option<&serde_json::Map<String, Value>> {
    meta(obj)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
}

/// `metadata.resourceVersion` parsed.
#[must_use]
pub fn rv_of(obj: &Value) -> Option<u64> {
    meta(obj)?.get("resourceVersion")?.as_str()?.parse().ok()
}

impl Store {
    /// An empty store whose timestamps come from `clock`; `history_capacity` bounds how many
    /// changes watches can resume across.
    #[must_use]
    pub fn new(clock: Clock, uid_prefix: u32, history_capacity: usize) -> Self {
        let (changes, _) = broadcast::channel(8_192);
        Self {
            clock,
            rv: 1,
            uid_counter: 0,
            uid_prefix,
            objects: RESOURCES.iter().map(|_| BTreeMap::new()).collect(),
            history: VecDeque::new(),
            history_capacity: history_capacity.max(16),
            history_floor: 1,
            changes,
        }
    }

    /// A copy of the objects that records no history and notifies no watch (for dry runs).
    #[must_use]
    pub fn scratch_copy(&self) -> Self {
        let (changes, _) = broadcast::channel(1);
        Self {
            clock: self.clock,
            rv: self.rv,
            uid_counter: self.uid_counter,
            uid_prefix: self.uid_prefix,
            objects: self.objects.clone(),
            history: VecDeque::new(),
            history_capacity: 16,
            history_floor: self.rv,
            changes,
        }
    }

    /// The current (latest) resourceVersion.
    #[must_use]
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Now, as a metav1.Time string: the wall-clock time of the write (see [`wall_now`]).
    #[must_use]
    pub fn now_rfc3339(&self) -> String {
        rfc3339(wall_now(&self.clock))
    }

    /// Subscribes to changes after the current version (call with the store locked, after
    /// replaying history, so nothing falls in between).
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    /// The changes after `rv` (oldest first), or `410 Expired` if the history no longer covers them.
    ///
    /// # Errors
    ///
    /// [`ApiError::expired`] when `rv` is older than the history.
    pub fn changes_since(&self, rv: u64) -> Result<Vec<Arc<Change>>, ApiError> {
        if rv < self.history_floor {
            return Err(ApiError::expired(rv, self.history_floor));
        }
        let start = self.history.partition_point(|c| c.rv <= rv);
        Ok(self.history.iter().skip(start).cloned().collect())
    }

    /// Objects of a kind as they were at version `rv` (current objects with every later change
    /// undone from the history), ordered as etcd orders keys (`namespace/name`).
    ///
    /// # Errors
    ///
    /// [`ApiError::expired`] when the history no longer reaches back to `rv`.
    pub fn list_at(
        &self,
        res: ResourceId,
        ns: Option<&str>,
        rv: u64,
    ) -> Result<Vec<Arc<Value>>, ApiError> {
        if rv < self.history_floor {
            return Err(ApiError::expired(rv, self.history_floor));
        }
        let key = |o: &Value| format!("{}/{}", namespace_of(o), name_of(o));
        let mut objects: BTreeMap<String, Arc<Value>> =
            self.list(res, ns).map(|o| (key(o), o.clone())).collect();
        let start = self.history.partition_point(|c| c.rv <= rv);
        for change in self.history.iter().skip(start).rev() {
            if change.resource != res || ns.is_some_and(|ns| namespace_of(&change.object) != ns) {
                continue;
            }
            let k = key(&change.object);
            match (change.kind, &change.previous) {
                (ChangeKind::Added, _) => {
                    objects.remove(&k);
                }
                (_, Some(previous)) => {
                    objects.insert(k, previous.clone());
                }
                (_, None) => {}
            }
        }
        Ok(objects.into_values().collect())
    }

    /// Forgets the history and moves the version on: every watch resuming from an older version
    /// gets `410 Gone` and must re-list (what etcd compaction does to a real cluster).
    pub fn compact(&mut self) {
        self.rv += 1;
        self.history.clear();
        self.history_floor = self.rv;
    }

    /// One object.
    #[must_use]
    pub fn get(&self, res: ResourceId, ns: &str, name: &str) -> Option<&Arc<Value>> {
        self.objects.get(res)?.get(ns)?.get(name)
    }

    fn insert(&mut self, res: ResourceId, ns: &str, name: &str, obj: Arc<Value>) {
        if let Some(kind) = self.objects.get_mut(res) {
            kind.entry(ns.to_owned())
                .or_default()
                .insert(name.to_owned(), obj);
        }
    }

    fn remove(&mut self, res: ResourceId, ns: &str, name: &str) {
        if let Some(kind) = self.objects.get_mut(res)
            && let Some(names) = kind.get_mut(ns)
        {
            names.remove(name);
            if names.is_empty() {
                kind.remove(ns);
            }
        }
    }

    /// Objects of a kind, in one namespace or (None) all, ordered by namespace and name.
    pub fn list<'a>(
        &'a self,
        res: ResourceId,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<Value>> + 'a {
        let kind = self.objects.get(res);
        let namespaces: Box<dyn Iterator<Item = &'a BTreeMap<String, Arc<Value>>> + 'a> = match ns {
            Some(ns) => Box::new(kind.and_then(|k| k.get(ns)).into_iter()),
            None => Box::new(kind.into_iter().flat_map(|k| k.values())),
        };
        namespaces.flat_map(|names| names.values())
    }

    fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        format!(
            "{:08x}-{:04x}-4{:03x}-8000-{:012x}",
            self.uid_prefix,
            (self.uid_counter >> 40) & 0xffff,
            (self.uid_counter >> 28) & 0xfff,
            self.uid_counter & 0xffff_ffff_ffff
        )
    }

    fn record(
        &mut self,
        res: ResourceId,
        kind: ChangeKind,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            resource: res,
            kind,
            object,
            previous,
        });
        if self.history.len() >= self.history_capacity
            && let Some(old) = self.history.pop_front()
        {
            self.history_floor = old.rv;
        }
        self.history.push_back(change.clone());
        // No receiver is fine: nobody watches.
        let _ = self.changes.send(change);
    }

    /// Creates an object; fills metadata (uid, timestamps, version, generation) and defaults.
    ///
    /// # Errors
    ///
    /// `409 AlreadyExists`, `404` for a missing namespace, `422 Invalid`, `400` for a name clash
    /// with the request.
    pub fn create(
        &mut self,
        res: ResourceId,
        ns: &str,
        mut obj: Value,
    ) -> Result<Arc<Value>, ApiError> {
        let rt = &RESOURCES[res];
        if !obj.is_object() {
            return Err(ApiError::bad_request(format!(
                "the body of a {} create must be a JSON object",
                rt.kind
            )));
        }
        let body_ns = namespace_of(&obj).to_owned();
        if rt.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request".to_owned(),
            ));
        }
        if rt.namespaced && self.get(NAMESPACES, "", ns).is_none() {
            return Err(ApiError::not_found(&RESOURCES[NAMESPACES], ns));
        }
        let mut name = name_of(&obj).to_owned();
        if name.is_empty() {
            let prefix = meta(&obj)
                .and_then(|m| m.get("generateName"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    rt,
                    "",
                    "metadata.name",
                    &json!(""),
                    "name or generateName is required",
                ));
            }
            name = format!(
                "{prefix}{}",
                suffix(
                    self.uid_counter.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        ^ u64::from(self.uid_prefix)
                )
            );
        }
        let key_ns = if rt.namespaced {
            ns.to_owned()
        } else {
            String::new()
        };
        if self.get(res, &key_ns, &name).is_some() {
            return Err(ApiError::already_exists(rt, &name));
        }
        super::objects::normalize(res, &name, &mut obj)?;
        if res == SERVICES {
            super::services::on_create(self, &name, &mut obj)?;
        }
        super::objects::validate(res, &name, &obj)?;
        self.rv += 1;
        let uid = self.next_uid();
        let now = self.now_rfc3339();
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        let m = obj
            .as_object_mut()
            .map(|o| o.entry("metadata").or_insert_with(|| json!({})))
            .ok_or_else(|| ApiError::bad_request("metadata must be an object".to_owned()))?;
        if !m.is_object() {
            *m = json!({});
        }
        m["name"] = json!(name);
        if rt.namespaced {
            m["namespace"] = json!(key_ns);
        }
        m["uid"] = json!(uid);
        m["resourceVersion"] = json!(self.rv.to_string());
        m["creationTimestamp"] = json!(now);
        m["generation"] = json!(1);
        super::objects::default_object(res, &mut obj, &now);
        let obj = Arc::new(obj);
        self.insert(res, &key_ns, &name, obj.clone());
        self.record(res, ChangeKind::Added, obj.clone(), None);
        Ok(obj)
    }

    /// Replaces an object with `new` (a PUT, or the result of a patch).
    ///
    /// `subresource` is `Some("status")` for a status write (only status changes), `None` for the
    /// main resource (status is kept when the kind has a status subresource). A non-empty
    /// resourceVersion in `new` is a precondition. `metadata.generation` moves when spec does.
    ///
    /// # Errors
    ///
    /// `404`, `409 Conflict` on a stale version, `422 Invalid`, `400` on a name mismatch.
    pub fn update(
        &mut self,
        res: ResourceId,
        ns: &str,
        name: &str,
        new: Value,
        subresource: Option<&str>,
    ) -> Result<Arc<Value>, ApiError> {
        let rt = &RESOURCES[res];
        let key_ns = if rt.namespaced { ns } else { "" };
        let old = self
            .get(res, key_ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        if !new.is_object() {
            return Err(ApiError::bad_request(format!(
                "the body of a {} update must be a JSON object",
                rt.kind
            )));
        }
        let new_name = name_of(&new);
        if !new_name.is_empty() && new_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({new_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(want) = meta(&new)
            .and_then(|m| m.get("resourceVersion"))
            .and_then(Value::as_str)
            && !want.is_empty()
            && Some(want)
                != meta(&old)
                    .and_then(|m| m.get("resourceVersion"))
                    .and_then(Value::as_str)
        {
            return Err(ApiError::modified(rt, name));
        }
        let mut merged = if subresource == Some("status") {
            let mut m = (*old).clone();
            m["status"] = new.get("status").cloned().unwrap_or_else(|| json!({}));
            m
        } else {
            let mut m = new;
            if rt.has_status {
                match old.get("status") {
                    Some(s) => m["status"] = s.clone(),
                    None => {
                        if let Some(o) = m.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            m
        };
        if subresource.is_none() {
            super::objects::normalize(res, name, &mut merged)?;
            if res == SERVICES {
                super::services::on_update(&old, name, &mut merged)?;
            }
        }
        super::objects::validate(res, name, &merged)?;
        let mut generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
        if subresource.is_none() && merged.get("spec") != old.get("spec") {
            generation += 1;
        }
        // Fields the client cannot change.
        merged["apiVersion"] = json!(rt.api_version());
        merged["kind"] = json!(rt.kind);
        if !merged.get("metadata").is_some_and(Value::is_object) {
            merged["metadata"] = json!({});
        }
        for keep in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
        ] {
            match old["metadata"].get(keep) {
                Some(v) => merged["metadata"][keep] = v.clone(),
                None => {
                    if let Some(m) = merged["metadata"].as_object_mut() {
                        m.remove(keep);
                    }
                }
            }
        }
        merged["metadata"]["generation"] = json!(generation);
        merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if merged == *old {
            // A no-op write does not move the version (as on a real server).
            return Ok(old);
        }
        self.rv += 1;
        merged["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let obj = Arc::new(merged);
        self.insert(res, key_ns, name, obj.clone());
        self.record(res, ChangeKind::Modified, obj.clone(), Some(old));
        Ok(obj)
    }

    /// Applies `f` to a copy of an object and stores it if it changed (the controller's and the
    /// control API's own writes: no precondition, status may change).
    ///
    /// # Errors
    ///
    /// `404` when the object is gone; whatever `f` returns.
    pub fn modify(
        &mut self,
        res: ResourceId,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Arc<Value>, ApiError> {
        let rt = &RESOURCES[res];
        let old = self
            .get(res, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        let mut new = (*old).clone();
        f(&mut new)?;
        if new == *old {
            return Ok(old);
        }
        if new.get("spec") != old.get("spec") {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(generation + 1);
        }
        self.rv += 1;
        new["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let obj = Arc::new(new);
        self.insert(res, ns, name, obj.clone());
        self.record(res, ChangeKind::Modified, obj.clone(), Some(old));
        Ok(obj)
    }

    /// Deletes an object at once (no graceful termination is modelled) and returns its last state.
    ///
    /// # Errors
    ///
    /// `404` when it does not exist; `409` when `uid` is given and differs (a precondition).
    pub fn delete(
        &mut self,
        res: ResourceId,
        ns: &str,
        name: &str,
        uid: Option<&str>,
    ) -> Result<Arc<Value>, ApiError> {
        let rt = &RESOURCES[res];
        let key_ns = if rt.namespaced { ns } else { "" };
        let old = self
            .get(res, key_ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        if let Some(uid) = uid
            && old["metadata"]["uid"].as_str() != Some(uid)
        {
            return Err(ApiError::conflict(
                rt,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    old["metadata"]["uid"].as_str().unwrap_or_default()
                ),
            ));
        }
        self.remove(res, key_ns, name);
        self.rv += 1;
        let mut last = (*old).clone();
        last["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let last = Arc::new(last);
        self.record(res, ChangeKind::Deleted, last.clone(), Some(old));
        if res == NAMESPACES {
            for (r, rt) in RESOURCES.iter().enumerate() {
                if !rt.namespaced {
                    continue;
                }
                let names: Vec<String> = self
                    .list(r, Some(name))
                    .map(|o| name_of(o).to_owned())
                    .collect();
                for n in names {
                    self.delete(r, name, &n, None)?;
                }
            }
        }
        Ok(last)
    }

    /// Pods matching a selector in a namespace (the deployment controller's and eviction's view).
    pub fn pods_matching<'a>(
        &'a self,
        ns: &'a str,
        selector: &'a LabelSelector,
    ) -> impl Iterator<Item = &'a Arc<Value>> + 'a {
        self.list(PODS, Some(ns))
            .filter(move |p| selector.matches(labels_of(p)))
    }
}

/// Five characters from the alphabet Kubernetes uses for generated names (no vowels, no
/// look-alike digits).
#[must_use]
pub fn suffix(mut n: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::with_capacity(5);
    for _ in 0..5 {
        out.push(char::from(ALPHABET[(n % ALPHABET.len() as u64) as usize]));
        n /= ALPHABET.len() as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_round_trip() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let s = rfc3339(t);
        assert_eq!(s, "2026-11-18T11:06:40Z");
        assert_eq!(parse_rfc3339(&s), Some(1_795_000_000));
    }

    #[test]
    fn versions_move_and_history_answers_gone_when_compacted() {
        let mut store = Store::new(Clock::real(), 1, 100);
        let ns = store
            .create(NAMESPACES, "", json!({"metadata": {"name": "prod-1"}}))
            .expect("creates");
        let rv = rv_of(&ns).expect("has a version");
        store
            .create(5, "prod-1", json!({"metadata": {"name": "e"}}))
            .expect("creates");
        assert_eq!(store.changes_since(rv).expect("in history").len(), 1);
        assert!(
            store
                .create(NAMESPACES, "", json!({"metadata": {"name": "prod-1"}}))
                .is_err_and(|e| e.code == 409)
        );
        store.compact();
        assert!(store.changes_since(rv).is_err_and(|e| e.code == 410));
        assert!(store.changes_since(store.resource_version()).is_ok());
    }

    #[test]
    fn stale_versions_conflict_and_no_op_writes_keep_the_version() {
        let mut store = Store::new(Clock::real(), 1, 100);
        let ns = store
            .create(NAMESPACES, "", json!({"metadata": {"name": "a"}}))
            .expect("creates");
        let same = store
            .update(NAMESPACES, "", "a", (*ns).clone(), None)
            .expect("no-op update");
        assert_eq!(rv_of(&same), rv_of(&ns));
        let mut labelled = (*ns).clone();
        labelled["metadata"]["labels"] = json!({"x": "1"});
        store
            .update(NAMESPACES, "", "a", labelled.clone(), None)
            .expect("updates");
        let err = store
            .update(NAMESPACES, "", "a", labelled, None)
            .expect_err("stale version");
        assert_eq!((err.code, err.reason), (409, "Conflict"));
    }
}
