//! The three patch formats the API server accepts: JSON merge patch (RFC 7386), strategic merge
//! patch (for the fields the drills and kubectl touch) and JSON patch (RFC 6902).

use serde_json::{Map, Value};

/// A patch that cannot be applied; becomes a `422` (or `400` when malformed).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PatchError(pub String);

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The merge key of the lists that strategic merge patch merges element-wise; other lists are
/// replaced (as `tolerations` and `spec.taints` are in the real type definitions).
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "containerStatuses"
        | "initContainerStatuses" => "name",
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "addresses" => "type",
        _ => return None,
    })
}

/// The key a list field is merged by in a strategic merge patch (None: the list is atomic).
#[must_use]
pub fn merge_key_of(field: &str) -> Option<&'static str> {
    merge_key(field)
}

/// Strategic merge patch: like a merge patch, but lists with a merge key merge element-wise,
/// `$patch: replace|delete` directives apply, and `$setElementOrder/` and
/// `$deleteFromPrimitiveList/` keys are honoured as far as the drills need.
///
/// # Errors
///
/// [`PatchError`] for an unknown `$patch` directive.
pub fn strategic(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = p.clone();
            replaced.remove("$patch");
            *target = Value::Object(replaced);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some(other) => return Err(PatchError(format!("unknown patch type found: {other:?}"))),
        None => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else {
        return Ok(());
    };
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(gone)) = (t.get_mut(field), v) {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (merge_key(k), v) {
            (Some(key), Value::Array(items)) => {
                let slot = t
                    .entry(k.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                if let Value::Array(list) = slot {
                    merge_list(list, items, key)?;
                }
            }
            (_, Value::Object(_)) => {
                let slot = t.entry(k.clone()).or_insert(Value::Null);
                strategic(slot, v)?;
                if slot.is_null() {
                    t.remove(k);
                }
            }
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

fn merge_list(list: &mut Vec<Value>, items: &[Value], key: &str) -> Result<(), PatchError> {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *list = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        return Ok(());
    }
    for item in items {
        let id = item.get(key).cloned();
        let pos = id
            .as_ref()
            .and_then(|id| list.iter().position(|e| e.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic(&mut list[i], item)?,
            (None, false) => list.push(item.clone()),
        }
    }
    Ok(())
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<(Vec<String>, String), PatchError> {
    if path.is_empty() {
        return Err(PatchError(
            "the root of a document cannot be patched here".to_owned(),
        ));
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| PatchError(format!("JSON pointer {path:?} must start with '/'")))?;
    let mut parts: Vec<String> = rest.split('/').map(unescape).collect();
    let last = parts.pop().unwrap_or_default();
    Ok((parts, last))
}

fn parent_mut<'a>(
    doc: &'a mut Value,
    parents: &[String],
    path: &str,
) -> Result<&'a mut Value, PatchError> {
    let mut cur = doc;
    for seg in parents {
        cur = match cur {
            Value::Object(m) => m.get_mut(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| PatchError(format!("doc is missing path: {path:?}")))?;
    }
    Ok(cur)
}

fn get_at(doc: &Value, path: &str) -> Result<Value, PatchError> {
    doc.pointer(path)
        .cloned()
        .ok_or_else(|| PatchError(format!("doc is missing path: {path:?}")))
}

fn remove_at(doc: &mut Value, path: &str) -> Result<Value, PatchError> {
    let (parents, last) = split_pointer(path)?;
    let missing = || PatchError(format!("doc is missing path: {path:?}"));
    match parent_mut(doc, &parents, path)? {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => {
            let i = last.parse::<usize>().map_err(|_| missing())?;
            if i < a.len() {
                Ok(a.remove(i))
            } else {
                Err(missing())
            }
        }
        _ => Err(missing()),
    }
}

fn add_at(doc: &mut Value, path: &str, value: Value, replace: bool) -> Result<(), PatchError> {
    let (parents, last) = split_pointer(path)?;
    match parent_mut(doc, &parents, path)? {
        Value::Object(m) => {
            if replace && !m.contains_key(&last) {
                return Err(PatchError(format!("doc is missing key: {path:?}")));
            }
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" && !replace {
                a.push(value);
                return Ok(());
            }
            let i = last
                .parse::<usize>()
                .map_err(|_| PatchError(format!("invalid array index in {path:?}")))?;
            if replace {
                let slot = a
                    .get_mut(i)
                    .ok_or_else(|| PatchError(format!("index out of range in {path:?}")))?;
                *slot = value;
            } else if i <= a.len() {
                a.insert(i, value);
            } else {
                return Err(PatchError(format!("index out of range in {path:?}")));
            }
            Ok(())
        }
        _ => Err(PatchError(format!("doc is missing path: {path:?}"))),
    }
}

/// RFC 6902 JSON patch: `add`, `remove`, `replace`, `move`, `copy`, `test`.
///
/// # Errors
///
/// [`PatchError`] for a malformed operation, a missing path or a failed `test`.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), PatchError> {
    let ops = ops
        .as_array()
        .ok_or_else(|| PatchError("a JSON patch must be an array of operations".to_owned()))?;
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| PatchError(format!("operation {kind} on {path:?} has no value")))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| PatchError(format!("operation {kind} on {path:?} has no from")))
        };
        match kind {
            "add" => add_at(doc, path, value()?, false)?,
            "replace" => add_at(doc, path, value()?, true)?,
            "remove" => {
                remove_at(doc, path)?;
            }
            "move" => {
                let v = remove_at(doc, from()?)?;
                add_at(doc, path, v, false)?;
            }
            "copy" => {
                let v = get_at(doc, from()?)?;
                add_at(doc, path, v, false)?;
            }
            "test" => {
                if get_at(doc, path)? != value()? {
                    return Err(PatchError(format!("testing value {path:?} failed")));
                }
            }
            other => return Err(PatchError(format!("unexpected operation {other:?}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_with_null_and_replaces_lists() {
        let mut doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"taints": [{"key": "x"}]}});
        merge(
            &mut doc,
            &json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"taints": []}}),
        );
        assert_eq!(
            doc,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"taints": []}})
        );
    }

    #[test]
    fn strategic_patch_merges_keyed_lists_and_honours_directives() {
        let mut doc = json!({"spec": {"unschedulable": true, "containers": [{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}]}});
        let patch = json!({
            "$setElementOrder/containers": [{"name": "app"}],
            "spec": {"unschedulable": null, "containers": [{"name": "app", "image": "a:2"}, {"name": "side", "$patch": "delete"}]}
        });
        strategic(&mut doc, &patch).expect("applies");
        assert_eq!(
            doc,
            json!({"spec": {"containers": [{"name": "app", "image": "a:2"}]}})
        );
        let mut node = json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}});
        strategic(
            &mut node,
            &json!({"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}}),
        )
        .expect("applies");
        assert_eq!(
            node["spec"]["taints"],
            json!([{"key": "b", "effect": "NoExecute"}])
        );
    }

    #[test]
    fn json_patch_applies_operations_in_order() {
        let mut doc = json!({"spec": {"replicas": 1, "taints": [{"key": "a"}]}, "metadata": {"labels": {"x/y": "1"}}});
        let ops = json!([
            {"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/spec/taints/-", "value": {"key": "b"}},
            {"op": "remove", "path": "/spec/taints/0"},
            {"op": "remove", "path": "/metadata/labels/x~1y"},
            {"op": "copy", "from": "/spec/replicas", "path": "/spec/copy"},
        ]);
        json_patch(&mut doc, &ops).expect("applies");
        assert_eq!(
            doc,
            json!({"spec": {"replicas": 3, "taints": [{"key": "b"}], "copy": 3}, "metadata": {"labels": {}}})
        );
        assert!(
            json_patch(
                &mut doc,
                &json!([{"op": "test", "path": "/spec/replicas", "value": 9}])
            )
            .is_err()
        );
        assert!(
            json_patch(
                &mut doc,
                &json!([{"op": "replace", "path": "/nope", "value": 9}])
            )
            .is_err()
        );
    }
}
