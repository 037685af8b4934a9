//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! Every client write records which fields its manager set: an `Update` entry for create, PUT
//! and patch (the manager is `fieldManager`, else the User-Agent's program name, as the real
//! server derives it), an `Apply` entry for an apply patch. An apply then behaves as the real
//! one: it needs a `fieldManager`; it fails with `409 Conflict` when it changes a field another
//! manager owns (unless `force=true`, which takes the field over); and a field the manager
//! applied before but no longer applies is removed, unless another manager owns it.
//!
//! Field sets are kept as in `FieldsV1`: `f:<field>` for a field, `k:{"<key>":<value>}` for an
//! item of a list merged by key (the lists [`super::patch`] merges by key), `.` for an item
//! itself; every other list is atomic (owned whole).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::patch;
use super::resources::ResourceType;

/// One step of a field path.
type Path = Vec<String>;

fn item_key(key: &str, item: &Value) -> Option<String> {
    item.get(key).map(|v| format!("k:{{\"{key}\":{v}}}"))
}

/// The leaf paths a value sets, under `prefix`.
fn leaves(value: &Value, field: Option<&str>, prefix: &Path, out: &mut BTreeSet<Path>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let mut p = prefix.clone();
                p.push(format!("f:{k}"));
                leaves(v, Some(k), &p, out);
            }
        }
        Value::Array(items) => match field.and_then(patch::merge_key_of) {
            Some(key) if items.iter().all(|i| i.get(key).is_some()) && !items.is_empty() => {
                for item in items {
                    let Some(k) = item_key(key, item) else {
                        continue;
                    };
                    let mut p = prefix.clone();
                    p.push(k);
                    let mut dot = p.clone();
                    dot.push(".".to_owned());
                    out.insert(dot);
                    leaves(item, None, &p, out);
                }
            }
            _ => {
                out.insert(prefix.clone());
            }
        },
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// The fields a written object (or an applied configuration) sets; `metadata.name`,
/// `namespace`, `uid`, `resourceVersion`, `managedFields`, `apiVersion` and `kind` are
/// identity, not fields anyone owns.
#[must_use]
pub fn field_set(obj: &Value) -> BTreeSet<Path> {
    let mut obj = obj.clone();
    if let Some(o) = obj.as_object_mut() {
        o.remove("apiVersion");
        o.remove("kind");
        o.remove("status");
    }
    if let Some(m) = obj["metadata"].as_object_mut() {
        for identity in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
        ] {
            m.remove(identity);
        }
        if m.is_empty()
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("metadata");
        }
    }
    let mut out = BTreeSet::new();
    if obj.as_object().is_some_and(|o| !o.is_empty()) {
        leaves(&obj, None, &Vec::new(), &mut out);
    }
    out
}

/// `FieldsV1` of a path set.
fn to_fields_v1(set: &BTreeSet<Path>) -> Value {
    fn insert(node: &mut Map<String, Value>, path: &[String]) {
        if let Some((first, rest)) = path.split_first() {
            let child = node.entry(first.clone()).or_insert_with(|| json!({}));
            if !child.is_object() {
                *child = json!({});
            }
            if let Value::Object(m) = child {
                insert(m, rest);
            }
        }
    }
    let mut root = Map::new();
    for path in set {
        insert(&mut root, path);
    }
    Value::Object(root)
}

fn from_fields_v1(v: &Value, prefix: &Path, out: &mut BTreeSet<Path>) {
    match v.as_object() {
        Some(map) if !map.is_empty() => {
            for (k, child) in map {
                let mut p = prefix.clone();
                p.push(k.clone());
                from_fields_v1(child, &p, out);
            }
        }
        _ => {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
        }
    }
}

/// A manager's entry: (manager, operation, subresource).
type Owner = (String, String, String);

fn entries(obj: &Value) -> BTreeMap<Owner, (Value, BTreeSet<Path>)> {
    let mut out = BTreeMap::new();
    for e in obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let owner = (
            e["manager"].as_str().unwrap_or_default().to_owned(),
            e["operation"].as_str().unwrap_or_default().to_owned(),
            e["subresource"].as_str().unwrap_or_default().to_owned(),
        );
        let mut set = BTreeSet::new();
        from_fields_v1(&e["fieldsV1"], &Vec::new(), &mut set);
        out.insert(owner, (e.clone(), set));
    }
    out
}

fn write_entries(
    obj: &mut Value,
    rt: &ResourceType,
    entries: BTreeMap<Owner, (Value, BTreeSet<Path>)>,
) {
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|(_, (_, set))| !set.is_empty())
        .map(|((manager, operation, sub), (old, set))| {
            let mut e = json!({
                "manager": manager,
                "operation": operation,
                "apiVersion": rt.api_version(),
                "time": old["time"],
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&set),
            });
            if !sub.is_empty() {
                e["subresource"] = json!(sub);
            }
            e
        })
        .collect();
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    if list.is_empty() {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
    } else {
        obj["metadata"]["managedFields"] = Value::Array(list);
    }
}

/// The value at a field path, if set.
fn get<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut v = obj;
    for step in path {
        if step == "." {
            return Some(v);
        }
        if let Some(f) = step.strip_prefix("f:") {
            v = v.get(f)?;
        } else if let Some(k) = step.strip_prefix("k:") {
            let key: Value = serde_json::from_str(k).ok()?;
            let (name, want) = key.as_object()?.iter().next()?;
            v = v.as_array()?.iter().find(|i| i.get(name) == Some(want))?;
        }
    }
    Some(v)
}

fn remove(obj: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    if last == "." {
        // The item itself: remove it from its list.
        remove(obj, parent);
        return;
    }
    let mut v = obj;
    for step in parent {
        let next = if let Some(f) = step.strip_prefix("f:") {
            v.get_mut(f)
        } else if let Some(k) = step.strip_prefix("k:") {
            let Ok(Value::Object(key)) = serde_json::from_str::<Value>(k) else {
                return;
            };
            let Some((name, want)) = key.iter().next() else {
                return;
            };
            v.as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| i.get(name) == Some(want)))
        } else {
            None
        };
        match next {
            Some(n) => v = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(o) = v.as_object_mut() {
            o.remove(f);
        }
    } else if let Some(k) = last.strip_prefix("k:")
        && let Ok(Value::Object(key)) = serde_json::from_str::<Value>(k)
        && let Some((name, want)) = key.iter().next()
        && let Some(a) = v.as_array_mut()
    {
        a.retain(|i| i.get(name) != Some(want));
    }
}

fn dotted(path: &[String]) -> String {
    path.iter()
        .filter(|s| *s != ".")
        .map(|s| {
            s.strip_prefix("f:").map_or_else(
                || format!("[{}]", s.trim_start_matches("k:")),
                |f| format!(".{f}"),
            )
        })
        .collect()
}

/// Records an `Update` by `manager` of `new` (over `old`, None for a create): the fields whose
/// value it changed (all it sets, for a create) become the manager's.
pub fn record_update(
    rt: &ResourceType,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    let mut owners = entries(old.unwrap_or(&Value::Null));
    let changed: BTreeSet<Path> = field_set(new)
        .into_iter()
        .filter(|p| old.is_none_or(|o| get(o, p) != get(new, p)))
        .collect();
    // Fields that are gone are nobody's.
    let present = field_set(new);
    for (_, set) in owners.values_mut() {
        set.retain(|p| present.contains(p) && !changed.contains(p));
    }
    if !changed.is_empty() {
        let key = (
            manager.to_owned(),
            "Update".to_owned(),
            subresource.unwrap_or_default().to_owned(),
        );
        let entry = owners
            .entry(key)
            .or_insert_with(|| (json!({}), BTreeSet::new()));
        entry.0 = json!({"time": now});
        entry.1.extend(changed);
    }
    write_entries(new, rt, owners);
}

/// Server-side apply of `applied` by `manager` onto `current` (None: the object is created).
///
/// # Errors
///
/// `409 Conflict` when the apply changes fields other managers own and `force` is not set,
/// in the real server's words; `422` when the configuration does not merge.
pub fn apply(
    rt: &ResourceType,
    current: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApiError> {
    let base = current.cloned().unwrap_or_else(|| json!({}));
    let mut owners = entries(&base);
    let me: Owner = (manager.to_owned(), "Apply".to_owned(), String::new());
    let new_set = field_set(applied);
    let mut conflicts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in &new_set {
        for ((m, _, _), (_, set)) in &owners {
            if m != manager && set.contains(path) && get(&base, path) != get(applied, path) {
                conflicts.entry(m.clone()).or_default().push(dotted(path));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        let count: usize = conflicts.values().map(Vec::len).sum();
        let parts: Vec<String> = conflicts
            .iter()
            .map(|(m, fields)| {
                if fields.len() == 1 {
                    format!(
                        "conflict with \"{m}\" using {}: {}",
                        rt.api_version(),
                        fields[0]
                    )
                } else {
                    format!(
                        "conflicts with \"{m}\" using {}:\n- {}",
                        rt.api_version(),
                        fields.join("\n- ")
                    )
                }
            })
            .collect();
        let plural = if count == 1 { "" } else { "s" };
        let mut err = ApiError::conflict(rt, "", "");
        err.message = format!(
            "Apply failed with {count} conflict{plural}: {}",
            parts.join("\n")
        );
        return Err(err);
    }
    let previous = owners.get(&me).map(|(_, s)| s.clone()).unwrap_or_default();
    // Taken over (force): the other managers lose the applied fields.
    for (owner, (_, set)) in &mut owners {
        if *owner != me {
            set.retain(|p| !new_set.contains(p));
        }
    }
    let mut merged = base.clone();
    patch::strategic(&mut merged, applied).map_err(|e| ApiError {
        code: 422,
        reason: "Invalid",
        message: e.0,
        details: None,
    })?;
    for path in previous.difference(&new_set) {
        let owned_elsewhere = owners
            .iter()
            .any(|(o, (_, set))| *o != me && set.contains(path));
        if !owned_elsewhere {
            remove(&mut merged, path);
        }
    }
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
        v
    };
    if current.is_some() && previous == new_set && strip(&merged) == strip(&base) {
        // A no-op apply changes nothing, not even its entry's time (so no new version).
        return Ok(base);
    }
    owners.insert(me, (json!({"time": now}), new_set));
    write_entries(&mut merged, rt, owners);
    Ok(merged)
}

/// The manager of a write: `fieldManager`, else the User-Agent's program name (what the real
/// server derives: `kubectl`, `OpenAPI-Generator`).
#[must_use]
pub fn manager_of(field_manager: Option<&str>, user_agent: Option<&str>) -> String {
    if let Some(m) = field_manager.filter(|m| !m.is_empty()) {
        return m.to_owned();
    }
    user_agent
        .and_then(|ua| ua.split('/').next())
        .filter(|p| !p.is_empty())
        .unwrap_or("unknown")
        .chars()
        .take(128)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> &'static ResourceType {
        &super::super::resources::RESOURCES[super::super::resources::DEPLOYMENTS]
    }

    #[test]
    fn an_apply_records_its_fields_and_a_second_apply_removes_what_it_dropped() {
        let first = json!({"metadata": {"name": "web", "labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 2}});
        let obj = apply(rt(), None, &first, "ci", false, "t1").expect("applies");
        let mf = &obj["metadata"]["managedFields"][0];
        assert_eq!(
            (mf["manager"].as_str(), mf["operation"].as_str()),
            (Some("ci"), Some("Apply"))
        );
        assert_eq!(
            mf["fieldsV1"],
            json!({"f:metadata": {"f:labels": {"f:a": {}, "f:b": {}}}, "f:spec": {"f:replicas": {}}})
        );
        let again = apply(rt(), Some(&obj), &first, "ci", false, "t2").expect("applies");
        assert_eq!(
            again, obj,
            "a no-op apply changes nothing, not even the entry's time"
        );
        let second =
            json!({"metadata": {"name": "web", "labels": {"a": "1"}}, "spec": {"replicas": 2}});
        let obj = apply(rt(), Some(&obj), &second, "ci", false, "t2").expect("applies");
        assert_eq!(
            obj["metadata"]["labels"],
            json!({"a": "1"}),
            "b was removed"
        );
    }

    #[test]
    fn changing_another_managers_field_conflicts_unless_forced() {
        let mut obj = json!({"metadata": {"name": "web"}, "spec": {"replicas": 2}});
        record_update(rt(), None, &mut obj, "kubectl-scale", None, "t1");
        let applied = json!({"metadata": {"name": "web"}, "spec": {"replicas": 5}});
        let err = apply(rt(), Some(&obj), &applied, "ci", false, "t2").expect_err("conflict");
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
        );
        let same = json!({"metadata": {"name": "web"}, "spec": {"replicas": 2}});
        assert!(
            apply(rt(), Some(&obj), &same, "ci", false, "t2").is_ok(),
            "same value, no conflict"
        );
        let forced = apply(rt(), Some(&obj), &applied, "ci", true, "t2").expect("forced");
        assert_eq!(forced["spec"]["replicas"], 5);
        let managers: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(managers, ["ci"], "the update manager lost its only field");
    }

    #[test]
    fn containers_are_owned_by_name() {
        let applied = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:1"}]}}}});
        let set = field_set(&applied);
        assert!(set.contains(&vec![
            "f:spec".to_owned(),
            "f:template".to_owned(),
            "f:spec".to_owned(),
            "f:containers".to_owned(),
            "k:{\"name\":\"app\"}".to_owned(),
            "f:image".to_owned()
        ]));
    }

    #[test]
    fn the_manager_defaults_to_the_user_agents_program() {
        assert_eq!(
            manager_of(Some("kubectl-create"), Some("kubectl/v1.32")),
            "kubectl-create"
        );
        assert_eq!(
            manager_of(None, Some("OpenAPI-Generator/33.1.0/python")),
            "OpenAPI-Generator"
        );
        assert_eq!(manager_of(None, None), "unknown");
    }
}
