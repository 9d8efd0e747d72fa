//! Patches: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and the
//! strategic merge patch that `kubectl apply` and `kubectl patch` send, with
//! the merge keys of the core and apps types.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// RFC 7386 merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(patch_fields) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let target_fields = target.as_object_mut().expect("object");
            for (key, value) in patch_fields {
                if value.is_null() {
                    target_fields.remove(key);
                } else {
                    merge_patch(
                        target_fields.entry(key.clone()).or_insert(Value::Null),
                        value,
                    );
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
    let Some(parent_value) = doc.pointer_mut(&parent) else {
        return Err(rejected(format!(
            "add operation does not apply: doc is missing path: \"{path}\""
        )));
    };
    match parent_value {
        Value::Object(fields) => {
            fields.insert(last, value);
            Ok(())
        }
        Value::Array(items) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            match last.parse::<usize>() {
                Ok(index) if index <= items.len() => {
                    items.insert(index, value);
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
        Some(Value::Object(fields)) => fields.remove(&last).ok_or_else(missing),
        Some(Value::Array(items)) => match last.parse::<usize>() {
            Ok(index) if index < items.len() => Ok(items.remove(index)),
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
                if let Some(slot) = doc.pointer_mut(path) {
                    *slot = op.get("value").cloned().unwrap_or(Value::Null);
                }
            }
            "move" => {
                let from = op["from"]
                    .as_str()
                    .ok_or_else(|| ApiError::bad_request("move without from"))?;
                let value = remove(doc, from)?;
                add(doc, path, value)?;
            }
            "copy" => {
                let from = op["from"]
                    .as_str()
                    .ok_or_else(|| ApiError::bad_request("copy without from"))?;
                let value = doc
                    .pointer(from)
                    .cloned()
                    .ok_or_else(|| rejected(format!("copy from missing path: {from}")))?;
                add(doc, path, value)?;
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

fn is_directive(key: &str) -> bool {
    key.starts_with('$')
}

/// Removes patch directives from a value that is being inserted.
fn clean(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(k, v)| !is_directive(k) && !v.is_null())
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(clean).collect()),
        other => other.clone(),
    }
}

/// Strategic merge patch of one object.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> ApiResult<()> {
    let Value::Object(patch_fields) = patch else {
        return Err(ApiError::bad_request(
            "a strategic merge patch must be a JSON object",
        ));
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    smp_map(target.as_object_mut().expect("object"), patch_fields)
}

fn smp_map(target: &mut Map<String, Value>, patch: &Map<String, Value>) -> ApiResult<()> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = match clean(&Value::Object(patch.clone())) {
                Value::Object(fields) => fields,
                _ => Map::new(),
            };
            return Ok(());
        }
        Some("delete") => {
            target.clear();
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown patch type: {other}"
            )));
        }
    }
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (target.get_mut(field), value.as_array())
            {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if is_directive(key) {
            continue;
        }
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(patch_fields) => {
                if patch_fields.get("$patch").and_then(Value::as_str) == Some("delete") {
                    target.remove(key);
                    continue;
                }
                match target.get_mut(key) {
                    Some(Value::Object(target_fields)) => smp_map(target_fields, patch_fields)?,
                    _ => {
                        let mut fields = Map::new();
                        smp_map(&mut fields, patch_fields)?;
                        target.insert(key.clone(), Value::Object(fields));
                    }
                }
            }
            Value::Array(patch_items) => {
                let current = target
                    .get(key)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let merged = smp_list(key, current, patch_items)?;
                target.insert(key.clone(), Value::Array(merged));
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        target.retain(|key, _| keep.contains(&key.as_str()));
    }
    Ok(())
}

fn smp_list(field: &str, mut current: Vec<Value>, patch: &[Value]) -> ApiResult<Vec<Value>> {
    if field == "finalizers" {
        for value in patch {
            if !current.contains(value) {
                current.push(value.clone());
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
        let Some(patch_fields) = item.as_object() else {
            return Ok(patch.iter().map(clean).collect());
        };
        let key_value = patch_fields.get(key);
        let pos =
            key_value.and_then(|wanted| current.iter().position(|c| c.get(key) == Some(wanted)));
        if patch_fields.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(key_value) = key_value {
                current.retain(|c| c.get(key) != Some(key_value));
            }
            continue;
        }
        match pos {
            Some(index) => {
                if let Some(target_fields) = current[index].as_object_mut() {
                    smp_map(target_fields, patch_fields)?;
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
        let mut target = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b", "image": "z"}, {"name": "a", "$patch": "delete"}]}});
        strategic_merge(&mut target, &patch).unwrap();
        assert_eq!(
            target,
            json!({"spec": {"containers": [{"name": "b", "image": "z"}]}})
        );
    }

    #[test]
    fn retain_keys() {
        let mut target =
            json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}});
        let patch = json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}});
        strategic_merge(&mut target, &patch).unwrap();
        assert_eq!(target, json!({"strategy": {"type": "Recreate"}}));
    }

    #[test]
    fn json_patch_ops() {
        let mut doc = json!({"a": [1, 2], "b": {"c": 1}});
        json_patch(
            &mut doc,
            &json!([{"op": "add", "path": "/a/-", "value": 3}, {"op": "remove", "path": "/b/c"},
            {"op": "replace", "path": "/a/0", "value": 0}]),
        )
        .unwrap();
        assert_eq!(doc, json!({"a": [0, 2, 3], "b": {}}));
        assert!(
            json_patch(
                &mut doc,
                &json!([{"op": "test", "path": "/a/0", "value": 9}])
            )
            .is_err()
        );
    }

    #[test]
    fn merge_patch_nulls() {
        let mut doc = json!({"a": 1, "b": {"c": 2}});
        merge_patch(&mut doc, &json!({"a": null, "b": {"d": 3}}));
        assert_eq!(doc, json!({"b": {"c": 2, "d": 3}}));
    }
}
