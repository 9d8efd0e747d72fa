//! Patches: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and the
//! strategic merge patch that `kubectl apply` and `kubectl patch` send, with
//! the merge keys of the core and apps types.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// RFC 7386 merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> ApiResult<(String, String)> {
    if path.is_empty() {
        return Ok((String::new(), String::new()));
    }
    if !path.starts_with('/') {
        return Err(ApiError::bad_request(format!(
            "invalid JSON pointer: {path}"
        )));
    }
    let idx = path.rfind('/').unwrap_or(0);
    Ok((path[..idx].to_string(), unescape(&path[idx + 1..])))
}

fn rejected(msg: impl Into<String>) -> ApiError {
    ApiError::new(422, "Invalid", msg)
}

fn add(doc: &mut Value, path: &str, value: Value) -> ApiResult<()> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let Some(p) = doc.pointer_mut(&parent) else {
        return Err(rejected(format!(
            "add operation does not apply: doc is missing path: \"{path}\""
        )));
    };
    match p {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            match last.parse::<usize>() {
                Ok(i) if i <= a.len() => {
                    a.insert(i, value);
                    Ok(())
                }
                _ => Err(rejected(format!(
                    "add operation does not apply: index out of range: \"{path}\""
                ))),
            }
        }
        _ => Err(rejected(format!(
            "add operation does not apply: doc is missing path: \"{path}\""
        ))),
    }
}

fn remove(doc: &mut Value, path: &str) -> ApiResult<Value> {
    let (parent, last) = split_pointer(path)?;
    let missing = || {
        rejected(format!(
            "remove operation does not apply: doc is missing path: \"{path}\""
        ))
    };
    match doc.pointer_mut(&parent) {
        Some(Value::Object(m)) => m.remove(&last).ok_or_else(missing),
        Some(Value::Array(a)) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(missing()),
        },
        _ => Err(missing()),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(doc: &mut Value, patch: &Value) -> ApiResult<()> {
    let Some(ops) = patch.as_array() else {
        return Err(ApiError::bad_request(
            "a JSON patch must be a list of operations",
        ));
    };
    for op in ops {
        let path = op["path"]
            .as_str()
            .ok_or_else(|| ApiError::bad_request("JSON patch operation without a path"))?;
        match op["op"].as_str().unwrap_or("") {
            "add" => add(doc, path, op.get("value").cloned().unwrap_or(Value::Null))?,
            "remove" => {
                remove(doc, path)?;
            }
            "replace" => {
                if doc.pointer(path).is_none() {
                    return Err(rejected(format!(
                        "replace operation does not apply: doc is missing key: {path}"
                    )));
                }
                if let Some(t) = doc.pointer_mut(path) {
                    *t = op.get("value").cloned().unwrap_or(Value::Null);
                }
            }
            "move" => {
                let from = op["from"]
                    .as_str()
                    .ok_or_else(|| ApiError::bad_request("move without from"))?;
                let v = remove(doc, from)?;
                add(doc, path, v)?;
            }
            "copy" => {
                let from = op["from"]
                    .as_str()
                    .ok_or_else(|| ApiError::bad_request("copy without from"))?;
                let v = doc
                    .pointer(from)
                    .cloned()
                    .ok_or_else(|| rejected(format!("copy from missing path: {from}")))?;
                add(doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != op.get("value") {
                    return Err(rejected(format!("testing value {path} failed")));
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unexpected JSON patch operation: {other:?}"
                )));
            }
        }
    }
    Ok(())
}

/// The merge key of a list field, as the Go types declare it.
fn merge_key(field: &str, patch_items: &[Value], target_items: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        "ports" => {
            let has = |items: &[Value]| items.iter().any(|i| i.get("containerPort").is_some());
            if has(patch_items) || has(target_items) {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    })
}

fn is_directive(k: &str) -> bool {
    k.starts_with('$')
}

/// Removes patch directives from a value that is being inserted.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !is_directive(k) && !v.is_null())
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
        other => other.clone(),
    }
}

/// Strategic merge patch of one object.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> ApiResult<()> {
    let Value::Object(p) = patch else {
        return Err(ApiError::bad_request(
            "a strategic merge patch must be a JSON object",
        ));
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    smp_map(target.as_object_mut().expect("object"), p)
}

fn smp_map(t: &mut Map<String, Value>, p: &Map<String, Value>) -> ApiResult<()> {
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *t = match clean(&Value::Object(p.clone())) {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            return Ok(());
        }
        Some("delete") => {
            t.clear();
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown patch type: {other}"
            )));
        }
    }
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (t.get_mut(field), v.as_array()) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if is_directive(k) {
            continue;
        }
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(pm) => {
                if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
                    t.remove(k);
                    continue;
                }
                match t.get_mut(k) {
                    Some(Value::Object(tm)) => smp_map(tm, pm)?,
                    _ => {
                        let mut m = Map::new();
                        smp_map(&mut m, pm)?;
                        t.insert(k.clone(), Value::Object(m));
                    }
                }
            }
            Value::Array(pa) => {
                let current = t
                    .get(k)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let merged = smp_list(k, current, pa)?;
                t.insert(k.clone(), Value::Array(merged));
            }
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
    if let Some(Value::Array(keep)) = p.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(())
}

fn smp_list(field: &str, mut current: Vec<Value>, patch: &[Value]) -> ApiResult<Vec<Value>> {
    if field == "finalizers" {
        for v in patch {
            if !current.contains(v) {
                current.push(v.clone());
            }
        }
        return Ok(current);
    }
    let Some(key) = merge_key(field, patch, &current) else {
        return Ok(patch.iter().map(clean).collect());
    };
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(clean)
            .collect());
    }
    for item in patch {
        let Some(pm) = item.as_object() else {
            return Ok(patch.iter().map(clean).collect());
        };
        let kv = pm.get(key);
        let pos = kv.and_then(|kv| current.iter().position(|c| c.get(key) == Some(kv)));
        if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(kv) = kv {
                current.retain(|c| c.get(key) != Some(kv));
            }
            continue;
        }
        match pos {
            Some(i) => {
                if let Some(tm) = current[i].as_object_mut() {
                    smp_map(tm, pm)?;
                }
            }
            None => current.push(clean(item)),
        }
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut t = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let p = json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b", "image": "z"}, {"name": "a", "$patch": "delete"}]}});
        strategic_merge(&mut t, &p).unwrap();
        assert_eq!(
            t,
            json!({"spec": {"containers": [{"name": "b", "image": "z"}]}})
        );
    }

    #[test]
    fn retain_keys() {
        let mut t =
            json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}});
        let p = json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}});
        strategic_merge(&mut t, &p).unwrap();
        assert_eq!(t, json!({"strategy": {"type": "Recreate"}}));
    }

    #[test]
    fn json_patch_ops() {
        let mut d = json!({"a": [1, 2], "b": {"c": 1}});
        json_patch(
            &mut d,
            &json!([{"op": "add", "path": "/a/-", "value": 3}, {"op": "remove", "path": "/b/c"},
            {"op": "replace", "path": "/a/0", "value": 0}]),
        )
        .unwrap();
        assert_eq!(d, json!({"a": [0, 2, 3], "b": {}}));
        assert!(json_patch(&mut d, &json!([{"op": "test", "path": "/a/0", "value": 9}])).is_err());
    }

    #[test]
    fn merge_patch_nulls() {
        let mut d = json!({"a": 1, "b": {"c": 2}});
        merge_patch(&mut d, &json!({"a": null, "b": {"d": 3}}));
        assert_eq!(d, json!({"b": {"c": 2, "d": 3}}));
    }
}
