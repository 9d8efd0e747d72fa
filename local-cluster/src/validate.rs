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

/// What is wrong with a name of the given rule, as the API server's
/// validation functions say it (each a separate cause).
fn name_errors(name: &str, max: usize, ok: bool, msg: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if name.len() > max {
        errors.push(format!("must be no more than {max} characters"));
    }
    if !ok {
        errors.push(msg.to_string());
    }
    errors
}

fn check_name(rt: &ResourceType, name: &str, field: &str, causes: &mut Causes) {
    if name.is_empty() {
        causes.push((
            "metadata.name".into(),
            "Required value: name or generateName is required".into(),
        ));
        return;
    }
    // A generateName prefix may end with '-' (the suffix follows).
    let judged = if field == "metadata.generateName" {
        format!("{}a", name.strip_suffix('-').unwrap_or(name))
    } else {
        name.to_string()
    };
    let errors = match rt.plural {
        "namespaces" => {
            let ok = is_dns1123_label(&judged);
            let msg = if !ok && is_dns1123_subdomain(&judged) && judged.len() <= 63 {
                "must not contain dots"
            } else {
                DNS1123_LABEL_MSG
            };
            name_errors(
                &judged,
                63,
                ok || judged.len() > 63 && label_chars(&judged),
                msg,
            )
        }
        "services" => name_errors(
            &judged,
            63,
            is_dns1035_label(&judged) || judged.len() > 63 && dns1035_chars(&judged),
            DNS1035_LABEL_MSG,
        ),
        _ => name_errors(
            &judged,
            253,
            is_dns1123_subdomain(&judged) || judged.len() > 253 && subdomain_chars(&judged),
            DNS1123_SUBDOMAIN_MSG,
        ),
    };
    for error in errors {
        causes.push((field.into(), format!("Invalid value: \"{name}\": {error}")));
    }
}

/// A label's characters, whatever its length.
fn label_chars(name: &str) -> bool {
    is_dns1123_label(&name[..name.len().min(63)])
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-')
}

fn dns1035_chars(name: &str) -> bool {
    label_chars(name) && name.as_bytes()[0].is_ascii_lowercase()
}

fn subdomain_chars(name: &str) -> bool {
    is_dns1123_subdomain(&name[..name.len().min(253)])
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

const LABEL_KEY_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_label_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
}

/// What is wrong with a label key (a qualified name), in the API
/// server's words.
fn label_key_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                for error in name_errors(
                    prefix,
                    253,
                    is_dns1123_subdomain(prefix),
                    DNS1123_SUBDOMAIN_MSG,
                ) {
                    errors.push(format!("prefix part {error}"));
                }
            }
            name
        }
        _ => {
            return vec![format!(
                "a valid label key {LABEL_KEY_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_string());
    }
    if !is_label_name(name) {
        errors.push(format!("name part {LABEL_KEY_MSG}"));
    }
    errors
}

fn check_labels_at(labels: &Value, field: &str, causes: &mut Causes) {
    let Some(labels) = labels.as_object() else {
        return;
    };
    for (key, value) in labels {
        for error in label_key_errors(key) {
            causes.push((field.into(), format!("Invalid value: \"{key}\": {error}")));
        }
        let value = value.as_str().unwrap_or_default();
        if value.len() > 63 {
            causes.push((
                field.into(),
                format!("Invalid value: \"{value}\": must be no more than 63 characters"),
            ));
        }
        if !value.is_empty() && !is_label_name(value) {
            causes.push((
                field.into(),
                format!("Invalid value: \"{value}\": {LABEL_VALUE_MSG}"),
            ));
        }
    }
}

fn check_labels(obj: &Value, causes: &mut Causes) {
    check_labels_at(&obj["metadata"]["labels"], "metadata.labels", causes);
}

/// `IsValidPortName`: an IANA service name.
fn port_name_errors(name: &str) -> Vec<&'static str> {
    let mut errors = Vec::new();
    if name.len() > 15 {
        errors.push("must be no more than 15 characters");
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errors.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        errors.push("must contain at least one letter (a-z)");
    }
    if name.contains("--") {
        errors.push("must not contain consecutive hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        errors.push("must not begin or end with a hyphen");
    }
    errors
}

const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";

fn check_container_ports(container: &Value, path: &str, causes: &mut Causes) {
    let mut names = Vec::new();
    for (i, port) in container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{path}.ports[{i}]");
        match port["containerPort"].as_i64() {
            None | Some(0) => causes.push((format!("{at}.containerPort"), "Required value".into())),
            Some(number) if !(1..=65535).contains(&number) => causes.push((
                format!("{at}.containerPort"),
                format!("Invalid value: {number}: {PORT_RANGE}"),
            )),
            Some(_) => {}
        }
        if let Some(number) = port["hostPort"].as_i64()
            && number != 0
            && !(1..=65535).contains(&number)
        {
            causes.push((
                format!("{at}.hostPort"),
                format!("Invalid value: {number}: {PORT_RANGE}"),
            ));
        }
        if let Some(protocol) = port["protocol"].as_str()
            && !["SCTP", "TCP", "UDP"].contains(&protocol)
        {
            causes.push((
                format!("{at}.protocol"),
                format!("Unsupported value: \"{protocol}\": supported values: \"SCTP\", \"TCP\", \"UDP\""),
            ));
        }
        if let Some(name) = port["name"].as_str().filter(|n| !n.is_empty()) {
            for error in port_name_errors(name) {
                causes.push((
                    format!("{at}.name"),
                    format!("Invalid value: \"{name}\": {error}"),
                ));
            }
            if names.contains(&name) {
                causes.push((format!("{at}.name"), format!("Duplicate value: \"{name}\"")));
            }
            names.push(name);
        }
    }
}

fn check_containers(spec: &Value, path: &str, causes: &mut Causes) {
    let containers = spec["containers"].as_array();
    if containers.is_none_or(|c| c.is_empty()) {
        causes.push((format!("{path}.containers"), "Required value".into()));
    }
    let mut volumes = Vec::new();
    for (i, volume) in spec["volumes"].as_array().into_iter().flatten().enumerate() {
        let at = format!("{path}.volumes[{i}].name");
        match volume["name"].as_str() {
            None | Some("") => causes.push((at, "Required value".into())),
            Some(name) => {
                if !is_dns1123_label(name) {
                    for error in name_errors(name, 63, label_chars(name), DNS1123_LABEL_MSG) {
                        causes.push((at.clone(), format!("Invalid value: \"{name}\": {error}")));
                    }
                }
                if volumes.contains(&name) {
                    causes.push((at, format!("Duplicate value: \"{name}\"")));
                }
                volumes.push(name);
            }
        }
    }
    let mut names = Vec::new();
    for field in ["initContainers", "containers"] {
        for (i, container) in spec[field].as_array().into_iter().flatten().enumerate() {
            let field_path = format!("{path}.{field}[{i}]");
            match container["name"].as_str() {
                None | Some("") => {
                    causes.push((format!("{field_path}.name"), "Required value".into()))
                }
                Some(name) => {
                    if !is_dns1123_label(name) {
                        for error in name_errors(name, 63, label_chars(name), DNS1123_LABEL_MSG) {
                            causes.push((
                                format!("{field_path}.name"),
                                format!("Invalid value: \"{name}\": {error}"),
                            ));
                        }
                    }
                    if names.contains(&name) {
                        causes.push((
                            format!("{field_path}.name"),
                            format!("Duplicate value: \"{name}\""),
                        ));
                    }
                    names.push(name);
                }
            }
            if container["image"].as_str().is_none_or(|s| s.is_empty()) {
                causes.push((format!("{field_path}.image"), "Required value".into()));
            }
            check_container_ports(container, &field_path, causes);
            for (j, var) in container["env"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                if var["name"].as_str().is_none_or(str::is_empty) {
                    causes.push((
                        format!("{field_path}.env[{j}].name"),
                        "Required value".into(),
                    ));
                }
            }
            for (j, mount) in container["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let at = format!("{field_path}.volumeMounts[{j}]");
                match mount["name"].as_str() {
                    None | Some("") => causes.push((format!("{at}.name"), "Required value".into())),
                    Some(name) if !volumes.contains(&name) => {
                        causes.push((format!("{at}.name"), format!("Not found: \"{name}\"")))
                    }
                    Some(_) => {}
                }
                if mount["mountPath"].as_str().is_none_or(str::is_empty) {
                    causes.push((format!("{at}.mountPath"), "Required value".into()));
                }
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
    check_labels_at(
        &spec["template"]["metadata"]["labels"],
        "spec.template.metadata.labels",
        causes,
    );
    check_containers(&spec["template"]["spec"], "spec.template.spec", causes);
}

/// A Job's spec: counts not negative, a selector that matches the
/// template's labels, and a restart policy a Job can finish with.
fn check_job(obj: &Value, causes: &mut Causes) {
    let spec = &obj["spec"];
    for field in [
        "parallelism",
        "completions",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        if let Some(count) = spec.get(field).filter(|v| !v.is_null())
            && count.as_i64().is_none_or(|count| count < 0)
        {
            causes.push((
                format!("spec.{field}"),
                format!("Invalid value: {count}: must be greater than or equal to 0"),
            ));
        }
    }
    if let Some(deadline) = spec.get("activeDeadlineSeconds").filter(|v| !v.is_null())
        && deadline.as_i64().is_none_or(|seconds| seconds <= 0)
    {
        causes.push((
            "spec.activeDeadlineSeconds".into(),
            format!("Invalid value: {deadline}: must be greater than 0"),
        ));
    }
    if spec["selector"].is_null() {
        causes.push(("spec.selector".into(), "Required value".into()));
    } else if !LabelSelector::from_object(&spec["selector"])
        .matches(&spec["template"]["metadata"]["labels"])
    {
        causes.push((
            "spec.template.metadata.labels".into(),
            format!(
                "Invalid value: {}: `selector` does not match template `labels`",
                spec["template"]["metadata"]["labels"]
            ),
        ));
    }
    let policy = spec["template"]["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or_default();
    if policy != "OnFailure" && policy != "Never" {
        causes.push((
            "spec.template.spec.restartPolicy".into(),
            format!("Unsupported value: \"{policy}\": supported values: \"OnFailure\", \"Never\""),
        ));
    }
    match spec["completionMode"].as_str() {
        None | Some("NonIndexed") => {}
        Some("Indexed") => causes.push((
            "spec.completionMode".into(),
            "Forbidden: Indexed Jobs are not run by the local cluster: use NonIndexed, with \
             the index passed in each Job's own arguments"
                .into(),
        )),
        Some(other) => causes.push((
            "spec.completionMode".into(),
            format!(
                "Unsupported value: \"{other}\": supported values: \"NonIndexed\", \"Indexed\""
            ),
        )),
    }
    check_labels_at(
        &spec["template"]["metadata"]["labels"],
        "spec.template.metadata.labels",
        causes,
    );
    check_containers(&spec["template"]["spec"], "spec.template.spec", causes);
}

/// The keys and the size of a ConfigMap's or Secret's data, as the API
/// server measures it: the values in bytes, the `encoded` fields (a
/// ConfigMap's `binaryData`, a Secret's `data`) once decoded from base64,
/// at most 1 MiB in all; `size_field` is where a Too long is said.
fn check_data_size(obj: &Value, encoded: &[&str], size_field: &str, causes: &mut Causes) {
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
                total += size;
                let at = format!("{field}[{key}]");
                if key.len() > 253 {
                    causes.push((
                        at.clone(),
                        format!("Invalid value: \"{key}\": must be no more than 253 characters"),
                    ));
                }
                if key.is_empty()
                    || !key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                {
                    causes.push((at.clone(), format!("Invalid value: \"{key}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")));
                }
                match key.as_str() {
                    "." => {
                        causes.push((at.clone(), "Invalid value: \".\": must not be '.'".into()))
                    }
                    ".." => {
                        causes.push((at.clone(), "Invalid value: \"..\": must not be '..'".into()))
                    }
                    other if other.starts_with("..") => causes.push((
                        at.clone(),
                        format!("Invalid value: \"{key}\": must not start with '..'"),
                    )),
                    _ => {}
                }
                if field == "binaryData" && obj["data"].get(key).is_some() {
                    causes.push((
                        at.clone(),
                        format!("Invalid value: \"{key}\": duplicate of key present in data"),
                    ));
                }
                if !value.is_string() {
                    causes.push((at, "Invalid value: must be a string".into()));
                }
            }
        }
    }
    if total > 1024 * 1024 {
        causes.push((
            size_field.into(),
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
        "deployments" | "replicasets" | "jobs" => {
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
                    check_name(rt, prefix, "metadata.generateName", &mut causes)
                }
                _ => causes.push((
                    "metadata.name".into(),
                    "Required value: name or generateName is required".into(),
                )),
            }
        } else {
            check_name(rt, name, "metadata.name", &mut causes);
        }
    }
    check_labels(obj, &mut causes);
    match rt.plural {
        "pods" => check_containers(&obj["spec"], "spec", &mut causes),
        "deployments" | "replicasets" => check_deploymentish(obj, &mut causes),
        "jobs" => check_job(obj, &mut causes),
        "configmaps" => check_data_size(obj, &["binaryData"], "", &mut causes),
        "secrets" => check_data_size(obj, &["data"], "data", &mut causes),
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
                match &port["targetPort"] {
                    Value::Number(number) => match number.as_i64() {
                        Some(1..=65535) => {}
                        _ => causes.push((
                            format!("spec.ports[{i}].targetPort"),
                            format!("Invalid value: {number}: {PORT_RANGE}"),
                        )),
                    },
                    Value::String(name) => {
                        for error in port_name_errors(name) {
                            causes.push((
                                format!("spec.ports[{i}].targetPort"),
                                format!("Invalid value: \"{name}\": {error}"),
                            ));
                        }
                    }
                    _ => {}
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

/// A label selector as Go prints it (`%#v`), which is how the API server
/// shows one in an error.
fn go_selector(selector: &Value) -> String {
    let strings = |values: &Value| -> String {
        match values.as_array() {
            None => "[]string(nil)".into(),
            Some(items) => format!(
                "[]string{{{}}}",
                items
                    .iter()
                    .map(|v| format!("{:?}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    };
    let labels = match selector["matchLabels"].as_object() {
        None => "map[string]string(nil)".to_string(),
        Some(labels) => format!(
            "map[string]string{{{}}}",
            labels
                .iter()
                .map(|(k, v)| format!("{k:?}:{:?}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let expressions = match selector["matchExpressions"].as_array() {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(items) => format!(
            "[]v1.LabelSelectorRequirement{{{}}}",
            items
                .iter()
                .map(|e| format!(
                    "v1.LabelSelectorRequirement{{Key:{:?}, Operator:{:?}, Values:{}}}",
                    e["key"].as_str().unwrap_or_default(),
                    e["operator"].as_str().unwrap_or_default(),
                    strings(&e["values"])
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{expressions}}}")
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
                        go_selector(&new["spec"]["selector"])
                    ),
                ));
            }
        }
        "jobs" => {
            if new["spec"]["selector"] != old["spec"]["selector"] {
                causes.push((
                    "spec.selector".into(),
                    format!(
                        "Invalid value: {}: field is immutable",
                        go_selector(&new["spec"]["selector"])
                    ),
                ));
            }
            if new["spec"]["template"] != old["spec"]["template"] {
                causes.push((
                    "spec.template".into(),
                    "Invalid value: the pod template: field is immutable".into(),
                ));
            }
            if new["spec"]["completions"] != old["spec"]["completions"] {
                causes.push((
                    "spec.completions".into(),
                    format!(
                        "Invalid value: {}: field is immutable",
                        new["spec"]["completions"]
                    ),
                ));
            }
        }
        "services" => {
            let (new_ip, old_ip) = (&new["spec"]["clusterIP"], &old["spec"]["clusterIP"]);
            if old["spec"]["type"] != "ExternalName"
                && new["spec"]["type"] != "ExternalName"
                && !new_ip.is_null()
                && new_ip != ""
                && new_ip != old_ip
            {
                causes.push((
                    "spec.clusterIPs[0]".into(),
                    format!(
                        "Invalid value: []string{{{:?}}}: may not change once set",
                        new_ip.as_str().unwrap_or_default()
                    ),
                ));
            }
        }
        "configmaps" | "secrets" => {
            if old["immutable"] == true {
                const HELD: &str = "Forbidden: field is immutable when `immutable` is set";
                if new["immutable"] != true {
                    causes.push(("immutable".into(), HELD.into()));
                }
                if new["data"] != old["data"] {
                    causes.push(("data".into(), HELD.into()));
                }
                if rt.plural == "configmaps" && new["binaryData"] != old["binaryData"] {
                    causes.push(("binaryData".into(), HELD.into()));
                }
            }
            if rt.plural == "secrets" && new["type"] != old["type"] {
                causes.push((
                    "type".into(),
                    format!(
                        "Invalid value: {:?}: field is immutable",
                        new["type"].as_str().unwrap_or_default()
                    ),
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
        check_data_size(&config_map, &["binaryData"], "", &mut causes);
        assert!(causes.is_empty(), "{causes:?}");
        // As text (a Secret's stringData, a ConfigMap's data), it is too long.
        let config_map = serde_json::json!({"data": {"bundle.txt": chunk}});
        check_data_size(&config_map, &["binaryData"], "", &mut causes);
        assert_eq!(causes.len(), 1);
    }
}
