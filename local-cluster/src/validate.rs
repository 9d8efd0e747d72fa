//! Validation as the real API server applies it to the types served here:
//! name formats (RFC 1123 / RFC 1035), required fields, immutable fields and
//! size limits. Failures are 422 Invalid with one cause per field.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceType;
use crate::selectors::LabelSelector;

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

pub fn is_dns1123_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// As the API server checks it: at most 253 characters in all, each
/// dot-separated part a label of any length (not limited to 63 as a
/// label alone is).
pub fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

pub fn is_dns1035_label(name: &str) -> bool {
    is_dns1123_label(name) && name.as_bytes()[0].is_ascii_lowercase()
}

type Causes = Vec<(String, String)>;

fn check_name(rt: &ResourceType, name: &str, causes: &mut Causes) {
    if name.is_empty() {
        causes.push((
            "metadata.name".into(),
            "Required value: name or generateName is required".into(),
        ));
        return;
    }
    let (ok, msg, max) = match rt.plural {
        "namespaces" => (is_dns1123_label(name), DNS1123_LABEL_MSG, 63),
        "services" => (is_dns1035_label(name), DNS1035_LABEL_MSG, 63),
        _ => (is_dns1123_subdomain(name), DNS1123_SUBDOMAIN_MSG, 253),
    };
    if !ok {
        if name.len() > max {
            causes.push((
                "metadata.name".into(),
                format!("Invalid value: \"{name}\": must be no more than {max} characters"),
            ));
        } else {
            causes.push((
                "metadata.name".into(),
                format!("Invalid value: \"{name}\": {msg}"),
            ));
        }
    }
}

fn check_labels(obj: &Value, causes: &mut Causes) {
    if let Some(labels) = obj["metadata"]["labels"].as_object() {
        for (key, value) in labels {
            let Some(value) = value.as_str() else {
                causes.push((
                    format!("metadata.labels.{key}"),
                    "Invalid value: label values must be strings".into(),
                ));
                continue;
            };
            let name = key.rsplit('/').next().unwrap_or(key);
            let key_ok = !name.is_empty()
                && name.len() <= 63
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && name.as_bytes()[0].is_ascii_alphanumeric()
                && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
            if !key_ok {
                causes.push(("metadata.labels".into(), format!("Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")));
            }
            let val_ok = value.is_empty()
                || (value.len() <= 63
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                    && value.as_bytes()[0].is_ascii_alphanumeric()
                    && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric());
            if !val_ok {
                causes.push(("metadata.labels".into(), format!("Invalid value: \"{value}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")));
            }
        }
    }
}

fn check_containers(spec: &Value, path: &str, causes: &mut Causes) {
    let containers = spec["containers"].as_array();
    if containers.is_none_or(|c| c.is_empty()) {
        causes.push((format!("{path}.containers"), "Required value".into()));
    }
    for field in ["initContainers", "containers"] {
        for (i, container) in spec[field].as_array().into_iter().flatten().enumerate() {
            let field_path = format!("{path}.{field}[{i}]");
            match container["name"].as_str() {
                None | Some("") => {
                    causes.push((format!("{field_path}.name"), "Required value".into()))
                }
                Some(name) if !is_dns1123_label(name) => causes.push((
                    format!("{field_path}.name"),
                    format!("Invalid value: \"{name}\": {DNS1123_LABEL_MSG}"),
                )),
                _ => {}
            }
            if container["image"].as_str().is_none_or(|s| s.is_empty()) {
                causes.push((format!("{field_path}.image"), "Required value".into()));
            }
        }
    }
    if let Some(policy) = spec["restartPolicy"].as_str()
        && !["Always", "OnFailure", "Never"].contains(&policy)
    {
        causes.push((
            format!("{path}.restartPolicy"),
            format!("Unsupported value: \"{policy}\": supported values: \"Always\", \"OnFailure\", \"Never\""),
        ));
    }
}

fn check_deploymentish(obj: &Value, causes: &mut Causes) {
    let spec = &obj["spec"];
    if spec["selector"].is_null() {
        causes.push(("spec.selector".into(), "Required value".into()));
    } else {
        let sel = LabelSelector::from_object(&spec["selector"]);
        if sel.is_empty() {
            causes.push((
                "spec.selector".into(),
                "Invalid value: {}: empty selector is invalid for deployment".into(),
            ));
        } else if !sel.matches(&spec["template"]["metadata"]["labels"]) {
            causes.push((
                "spec.template.metadata.labels".into(),
                format!(
                    "Invalid value: {}: `selector` does not match template `labels`",
                    spec["template"]["metadata"]["labels"]
                ),
            ));
        }
    }
    if let Some(replicas) = spec.get("replicas")
        && replicas.as_i64().is_none_or(|count| count < 0)
    {
        causes.push((
            "spec.replicas".into(),
            format!("Invalid value: {replicas}: must be greater than or equal to 0"),
        ));
    }
    check_containers(&spec["template"]["spec"], "spec.template.spec", causes);
}

/// The keys and the size of a ConfigMap's or Secret's data, as the API
/// server measures it: keys and values in bytes, the `encoded` fields
/// (a ConfigMap's `binaryData`, a Secret's `data`) once decoded from base64,
/// at most 1 MiB in all.
fn check_data_size(obj: &Value, encoded: &[&str], causes: &mut Causes) {
    let mut total = 0usize;
    for field in ["data", "binaryData", "stringData"] {
        if let Some(entries) = obj[field].as_object() {
            for (key, value) in entries {
                let text = value.as_str().unwrap_or_default();
                let size = if encoded.contains(&field) {
                    decoded_len(text)
                } else {
                    text.len()
                };
                total += key.len() + size;
                if key.is_empty()
                    || key.len() > 253
                    || !key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                {
                    causes.push((format!("{field}[{key}]"), format!("Invalid value: \"{key}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")));
                }
                if !value.is_string() {
                    causes.push((
                        format!("{field}[{key}]"),
                        "Invalid value: must be a string".into(),
                    ));
                }
            }
        }
    }
    if total > 1024 * 1024 {
        causes.push((
            "[]".into(),
            "Too long: must have at most 1048576 bytes".into(),
        ));
    }
}

/// How many bytes base64 `text` decodes to.
fn decoded_len(text: &str) -> usize {
    let padding = text.bytes().rev().take_while(|b| *b == b'=').count().min(2);
    (text.len() / 4 * 3 + (text.len() % 4) * 3 / 4).saturating_sub(padding)
}

#[derive(Clone, Copy)]
enum Shape {
    Obj,
    ListOfObj,
    ListOfStr,
    Str,
    MapOfStr,
}

fn shape_ok(value: &Value, shape: Shape) -> bool {
    match shape {
        Shape::Obj => value.is_object(),
        Shape::ListOfObj => value
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_object)),
        Shape::ListOfStr => value
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string)),
        Shape::Str => value.is_string(),
        Shape::MapOfStr => value
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string)),
    }
}

fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::Obj => "an object",
        Shape::ListOfObj => "a list of objects",
        Shape::ListOfStr => "a list of strings",
        Shape::Str => "a string",
        Shape::MapOfStr => "a map of strings",
    }
}

fn check_fields(value: &Value, path: &str, fields: &[(&str, Shape)]) -> ApiResult<()> {
    for (field, shape) in fields {
        let found = &value[*field];
        if !found.is_null() && !shape_ok(found, *shape) {
            return Err(ApiError::bad_request(format!(
                "the body does not match its type: {path}{field} must be {}",
                shape_name(*shape)
            )));
        }
    }
    Ok(())
}

fn check_pod_spec_shape(spec: &Value, path: &str) -> ApiResult<()> {
    use Shape::*;
    if !spec.is_null() && !spec.is_object() {
        return Err(ApiError::bad_request(format!(
            "the body does not match its type: {path} must be an object"
        )));
    }
    check_fields(
        spec,
        &format!("{path}."),
        &[
            ("containers", ListOfObj),
            ("initContainers", ListOfObj),
            ("volumes", ListOfObj),
            ("restartPolicy", Str),
        ],
    )?;
    for field in ["containers", "initContainers"] {
        for (i, c) in spec[field].as_array().into_iter().flatten().enumerate() {
            check_fields(
                c,
                &format!("{path}.{field}[{i}]."),
                &[
                    ("name", Str),
                    ("image", Str),
                    ("workingDir", Str),
                    ("command", ListOfStr),
                    ("args", ListOfStr),
                    ("env", ListOfObj),
                    ("envFrom", ListOfObj),
                    ("ports", ListOfObj),
                    ("volumeMounts", ListOfObj),
                    ("readinessProbe", Obj),
                    ("livenessProbe", Obj),
                    ("startupProbe", Obj),
                    ("resources", Obj),
                    ("securityContext", Obj),
                ],
            )?;
        }
    }
    Ok(())
}

/// Type checks a real server does while decoding: 400 on a mismatch.
pub fn check_shape(rt: &ResourceType, obj: &Value) -> ApiResult<()> {
    use Shape::*;
    check_fields(
        &obj["metadata"],
        "metadata.",
        &[
            ("labels", MapOfStr),
            ("annotations", MapOfStr),
            ("finalizers", ListOfStr),
            ("ownerReferences", ListOfObj),
        ],
    )?;
    match rt.plural {
        "pods" => check_pod_spec_shape(&obj["spec"], "spec"),
        "deployments" | "replicasets" => {
            check_fields(obj, "", &[("spec", Obj)])?;
            check_fields(
                &obj["spec"],
                "spec.",
                &[("selector", Obj), ("template", Obj), ("strategy", Obj)],
            )?;
            check_fields(
                &obj["spec"]["template"],
                "spec.template.",
                &[("metadata", Obj)],
            )?;
            check_pod_spec_shape(&obj["spec"]["template"]["spec"], "spec.template.spec")
        }
        "services" => {
            check_fields(obj, "", &[("spec", Obj)])?;
            check_fields(
                &obj["spec"],
                "spec.",
                &[("ports", ListOfObj), ("selector", MapOfStr), ("type", Str)],
            )
        }
        "configmaps" => check_fields(obj, "", &[("data", MapOfStr), ("binaryData", MapOfStr)]),
        "secrets" => check_fields(
            obj,
            "",
            &[("data", MapOfStr), ("stringData", MapOfStr), ("type", Str)],
        ),
        "namespaces" => check_fields(obj, "", &[("spec", Obj)]),
        _ => Ok(()),
    }
}

/// Validates an object for create (`old` is None) or update.
pub fn validate(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> ApiResult<()> {
    check_shape(rt, obj)?;
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let mut causes = Causes::new();
    if !obj["metadata"].is_object() && !obj["metadata"].is_null() {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    if old.is_none() {
        if name.is_empty() {
            match obj["metadata"]["generateName"].as_str() {
                Some(prefix) if !prefix.is_empty() => {
                    check_name(rt, &format!("{prefix}a"), &mut causes)
                }
                _ => causes.push((
                    "metadata.name".into(),
                    "Required value: name or generateName is required".into(),
                )),
            }
        } else {
            check_name(rt, name, &mut causes);
        }
    }
    check_labels(obj, &mut causes);
    match rt.plural {
        "pods" => check_containers(&obj["spec"], "spec", &mut causes),
        "deployments" | "replicasets" => check_deploymentish(obj, &mut causes),
        "configmaps" => check_data_size(obj, &["binaryData"], &mut causes),
        "secrets" => check_data_size(obj, &["data"], &mut causes),
        "services" => {
            let external = obj["spec"]["type"] == "ExternalName";
            let ports = obj["spec"]["ports"].as_array();
            if !external && ports.is_none_or(|p| p.is_empty()) && obj["spec"]["clusterIP"] != "None"
            {
                causes.push(("spec.ports".into(), "Required value".into()));
            }
            for (i, port) in ports.into_iter().flatten().enumerate() {
                match port["port"].as_i64() {
                    Some(number) if (1..=65535).contains(&number) => {}
                    Some(number) => causes.push((
                        format!("spec.ports[{i}].port"),
                        format!("Invalid value: {number}: must be between 1 and 65535, inclusive"),
                    )),
                    None => causes.push((format!("spec.ports[{i}].port"), "Required value".into())),
                }
                if ports.is_some_and(|a| a.len() > 1)
                    && port["name"].as_str().is_none_or(|s| s.is_empty())
                {
                    causes.push((format!("spec.ports[{i}].name"), "Required value".into()));
                }
            }
        }
        _ => {}
    }
    if let Some(old) = old {
        check_immutable(rt, obj, old, &mut causes);
    }
    if causes.is_empty() {
        Ok(())
    } else {
        let display = if name.is_empty() {
            obj["metadata"]["generateName"].as_str().unwrap_or("")
        } else {
            name
        };
        Err(ApiError::invalid(rt.kind, rt.group, display, causes))
    }
}

fn strip_images(spec: &Value) -> Value {
    let mut stripped = spec.clone();
    for field in ["containers", "initContainers"] {
        if let Some(containers) = stripped[field].as_array_mut() {
            for container in containers {
                if let Some(fields) = container.as_object_mut() {
                    fields.remove("image");
                }
            }
        }
    }
    if let Some(fields) = stripped.as_object_mut() {
        fields.remove("activeDeadlineSeconds");
        fields.remove("tolerations");
        fields.remove("terminationGracePeriodSeconds");
    }
    stripped
}

#[allow(clippy::collapsible_match)]
fn check_immutable(rt: &ResourceType, new: &Value, old: &Value, causes: &mut Causes) {
    match rt.plural {
        "pods" => {
            if strip_images(&new["spec"]) != strip_images(&old["spec"]) {
                causes.push(("spec".into(), "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)".into()));
            }
        }
        "deployments" | "replicasets" => {
            if new["spec"]["selector"] != old["spec"]["selector"] {
                causes.push((
                    "spec.selector".into(),
                    format!(
                        "Invalid value: {}: field is immutable",
                        new["spec"]["selector"]
                    ),
                ));
            }
        }
        "services" => {
            let (new_ip, old_ip) = (&new["spec"]["clusterIP"], &old["spec"]["clusterIP"]);
            if !new_ip.is_null() && new_ip != "" && new_ip != old_ip {
                causes.push((
                    "spec.clusterIPs[0]".into(),
                    "Invalid value: field is immutable".into(),
                ));
            }
        }
        "configmaps" | "secrets" => {
            if old["immutable"] == true
                && (new["data"] != old["data"]
                    || new["binaryData"] != old["binaryData"]
                    || new["immutable"] != true)
            {
                causes.push((
                    "data".into(),
                    "Forbidden: field is immutable when `immutable` is set".into(),
                ));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns1123_label("a-1"));
        assert!(!is_dns1123_label("A"));
        assert!(!is_dns1035_label("1a"));
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(!is_dns1123_subdomain("a..b"));
        // A 72-character name without dots is a valid ConfigMap name.
        assert!(is_dns1123_subdomain(&"a".repeat(72)));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
    }

    #[test]
    fn binary_data_is_measured_decoded_as_the_api_server_does() {
        for (encoded, bytes) in [
            ("", 0),
            ("YQ==", 1),
            ("YWI=", 2),
            ("YWJj", 3),
            ("YWJjZA", 4),
        ] {
            assert_eq!(decoded_len(encoded), bytes, "{encoded}");
        }
        // 900 KiB of bytes is 1.2 MB of base64: within the limit.
        let chunk = "A".repeat(900 * 1024 / 3 * 4);
        let config_map = serde_json::json!({"binaryData": {"bundle.tgz": chunk}});
        let mut causes = Vec::new();
        check_data_size(&config_map, &["binaryData"], &mut causes);
        assert!(causes.is_empty(), "{causes:?}");
        // As text (a Secret's stringData, a ConfigMap's data), it is too long.
        let config_map = serde_json::json!({"data": {"bundle.txt": chunk}});
        check_data_size(&config_map, &["binaryData"], &mut causes);
        assert_eq!(causes.len(), 1);
    }
}
