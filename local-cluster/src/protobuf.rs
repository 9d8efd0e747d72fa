//! Just enough of the Kubernetes protobuf encoding to accept the bodies
//! kubectl sends as protobuf: its generator commands (`kubectl create
//! namespace|configmap|secret|quota|deployment|job|service`, `kubectl run`,
//! `kubectl expose`) and `kubectl auth can-i`. The `k8s\0` envelope,
//! ObjectMeta, Namespace, ConfigMap, Secret and ResourceQuota by hand;
//! Deployment, Job, Pod, Service and the self-reviews field by field from
//! [`types`]. Other kinds, and a field of a type [`types`] does not list,
//! get 415 with what was not understood: the body is never stored with
//! part of it missing.

mod types;

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Other,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.pos)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// The next (field number, value), None at the end; Err if malformed.
    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, ()> {
        if self.pos >= self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint().ok_or(())?;
        let (num, wt) = (key >> 3, key & 7);
        let field = match wt {
            0 => Field::Varint(self.varint().ok_or(())?),
            1 => {
                self.pos = self
                    .pos
                    .checked_add(8)
                    .filter(|&i| i <= self.bytes.len())
                    .ok_or(())?;
                Field::Other
            }
            2 => {
                let len = usize::try_from(self.varint().ok_or(())?).map_err(|_| ())?;
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|&e| e <= self.bytes.len())
                    .ok_or(())?;
                let payload = &self.bytes[self.pos..end];
                self.pos = end;
                Field::Bytes(payload)
            }
            5 => {
                self.pos = self
                    .pos
                    .checked_add(4)
                    .filter(|&i| i <= self.bytes.len())
                    .ok_or(())?;
                Field::Other
            }
            _ => return Err(()),
        };
        Ok(Some((num, field)))
    }
}

fn bad() -> ApiError {
    ApiError::bad_request("malformed protobuf body")
}

fn string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fields(bytes: &[u8]) -> ApiResult<Vec<(u64, Field<'_>)>> {
    let mut reader = Reader::new(bytes);
    let mut out = Vec::new();
    while let Some(field) = reader.next().map_err(|_| bad())? {
        out.push(field);
    }
    Ok(out)
}

/// A map entry message {1: key, 2: value}.
fn entry(bytes: &[u8], bytes_value: bool) -> ApiResult<(String, Value)> {
    let (mut key, mut value) = (String::new(), json!(""));
    for (number, field) in fields(bytes)? {
        if let Field::Bytes(payload) = field {
            match number {
                1 => key = string(payload),
                2 => {
                    value = if bytes_value {
                        json!(crate::base64::encode(payload))
                    } else {
                        json!(string(payload))
                    }
                }
                _ => {}
            }
        }
    }
    Ok((key, value))
}

/// A ResourceQuotaSpec: `hard` (a map of Quantity messages, each {1:
/// string}) and `scopes`.
fn quota_spec(bytes: &[u8]) -> ApiResult<Value> {
    let mut hard = Map::new();
    let mut scopes = Vec::new();
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(payload)) => {
                let mut key = String::new();
                let mut quantity = String::new();
                for (number, field) in fields(payload)? {
                    match (number, field) {
                        (1, Field::Bytes(text)) => key = string(text),
                        (2, Field::Bytes(message)) => {
                            for (number, field) in fields(message)? {
                                if let (1, Field::Bytes(text)) = (number, field) {
                                    quantity = string(text);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                hard.insert(key, json!(quantity));
            }
            (2, Field::Bytes(text)) => scopes.push(json!(string(text))),
            _ => {}
        }
    }
    let mut spec = json!({"hard": hard});
    if !scopes.is_empty() {
        spec["scopes"] = json!(scopes);
    }
    Ok(spec)
}

fn object_meta(bytes: &[u8]) -> ApiResult<Value> {
    let mut meta = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    let mut owners = Vec::new();
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(payload)) if !payload.is_empty() => {
                meta.insert("name".into(), json!(string(payload)));
            }
            (2, Field::Bytes(payload)) if !payload.is_empty() => {
                meta.insert("generateName".into(), json!(string(payload)));
            }
            (3, Field::Bytes(payload)) if !payload.is_empty() => {
                meta.insert("namespace".into(), json!(string(payload)));
            }
            (6, Field::Bytes(payload)) if !payload.is_empty() => {
                meta.insert("resourceVersion".into(), json!(string(payload)));
            }
            (11, Field::Bytes(payload)) => {
                let (key, value) = entry(payload, false)?;
                labels.insert(key, value);
            }
            (12, Field::Bytes(payload)) => {
                let (key, value) = entry(payload, false)?;
                annotations.insert(key, value);
            }
            (13, Field::Bytes(payload)) => {
                let mut owner = Map::new();
                for (number, field) in fields(payload)? {
                    match (number, field) {
                        (1, Field::Bytes(text)) => {
                            owner.insert("kind".into(), json!(string(text)));
                        }
                        (3, Field::Bytes(text)) => {
                            owner.insert("name".into(), json!(string(text)));
                        }
                        (4, Field::Bytes(text)) => {
                            owner.insert("uid".into(), json!(string(text)));
                        }
                        (5, Field::Bytes(text)) => {
                            owner.insert("apiVersion".into(), json!(string(text)));
                        }
                        (6, Field::Varint(flag)) => {
                            owner.insert("controller".into(), json!(flag != 0));
                        }
                        (7, Field::Varint(flag)) => {
                            owner.insert("blockOwnerDeletion".into(), json!(flag != 0));
                        }
                        _ => {}
                    }
                }
                owners.push(Value::Object(owner));
            }
            (14, Field::Bytes(payload)) => finalizers.push(json!(string(payload))),
            _ => {}
        }
    }
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), json!(finalizers));
    }
    if !owners.is_empty() {
        meta.insert("ownerReferences".into(), json!(owners));
    }
    Ok(Value::Object(meta))
}

/// Decodes a protobuf request body into the JSON form of the object.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let Some(rest) = body.strip_prefix(b"k8s\0") else {
        return Err(bad());
    };
    let (mut api_version, mut kind, mut raw): (String, String, &[u8]) =
        (String::new(), String::new(), &[]);
    for (number, field) in fields(rest)? {
        match (number, field) {
            (1, Field::Bytes(type_meta)) => {
                for (number, field) in fields(type_meta)? {
                    match (number, field) {
                        (1, Field::Bytes(payload)) => api_version = string(payload),
                        (2, Field::Bytes(payload)) => kind = string(payload),
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(payload)) => raw = payload,
            _ => {}
        }
    }
    if types::fields(&kind).is_some() {
        let mut obj = message(&kind, raw)?;
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(kind);
        return Ok(obj);
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    let mut data = Map::new();
    let mut binary = Map::new();
    let mut string_data = Map::new();
    match kind.as_str() {
        "Namespace" | "ConfigMap" | "Secret" | "ResourceQuota" => {}
        other => {
            return Err(ApiError::unsupported_media(&format!(
                "application/vnd.kubernetes.protobuf ({other})"
            )));
        }
    }
    for (number, field) in fields(raw)? {
        match (kind.as_str(), number, field) {
            (_, 1, Field::Bytes(payload)) => {
                obj.insert("metadata".into(), object_meta(payload)?);
            }
            ("Namespace", 2, Field::Bytes(payload)) => {
                let fins: Vec<Value> = fields(payload)?
                    .into_iter()
                    .filter_map(|(number, field)| match (number, field) {
                        (1, Field::Bytes(text)) => Some(json!(string(text))),
                        _ => None,
                    })
                    .collect();
                obj.insert("spec".into(), json!({"finalizers": fins}));
            }
            ("ConfigMap", 2, Field::Bytes(payload)) => {
                let (key, value) = entry(payload, false)?;
                data.insert(key, value);
            }
            ("ConfigMap", 3, Field::Bytes(payload)) => {
                let (key, value) = entry(payload, true)?;
                binary.insert(key, value);
            }
            ("ConfigMap", 4, Field::Varint(flag)) | ("Secret", 5, Field::Varint(flag)) => {
                obj.insert("immutable".into(), json!(flag != 0));
            }
            ("Secret", 2, Field::Bytes(payload)) => {
                let (key, value) = entry(payload, true)?;
                data.insert(key, value);
            }
            ("Secret", 3, Field::Bytes(payload)) => {
                obj.insert("type".into(), json!(string(payload)));
            }
            ("ResourceQuota", 2, Field::Bytes(payload)) => {
                obj.insert("spec".into(), quota_spec(payload)?);
            }
            ("Secret", 4, Field::Bytes(payload)) => {
                let (key, value) = entry(payload, false)?;
                string_data.insert(key, value);
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Object(binary));
    }
    if !string_data.is_empty() {
        obj.insert("stringData".into(), Value::Object(string_data));
    }
    Ok(Value::Object(obj))
}

/// How a field is read (`Ptr`: a pointer in the Go type, so a zero value
/// is kept; otherwise a zero value is left out, as the API server's JSON
/// leaves it out).
#[derive(Clone, Copy)]
pub enum Kind {
    Str,
    StrPtr,
    Int,
    IntPtr,
    Bool,
    BoolPtr,
    Strs,
    StrMap,
    QuantityMap,
    IntOrStr,
    Selector,
    Meta,
    Msg(&'static str),
    Msgs(&'static str),
    /// Status: the server ignores it on the writes kubectl sends.
    Ignored,
}

fn unsupported(message: &str, number: u64) -> ApiError {
    ApiError::unsupported_media(&format!(
        "application/vnd.kubernetes.protobuf (field {number} of {message}, which the local cluster does not decode: send the object as JSON, with kubectl apply -f or kubectl create -f)"
    ))
}

/// A Quantity message: {1: string}.
fn quantity(bytes: &[u8]) -> ApiResult<Value> {
    let mut text = String::new();
    for (number, field) in fields(bytes)? {
        if let (1, Field::Bytes(payload)) = (number, field) {
            text = string(payload);
        }
    }
    Ok(json!(text))
}

/// A LabelSelector: matchLabels (1, map) and matchExpressions (2).
fn selector(bytes: &[u8]) -> ApiResult<Value> {
    let mut labels = Map::new();
    let mut expressions = Vec::new();
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(payload)) => {
                let (key, value) = entry(payload, false)?;
                labels.insert(key, value);
            }
            (2, Field::Bytes(payload)) => {
                let mut requirement = Map::new();
                let mut values = Vec::new();
                for (number, field) in fields(payload)? {
                    match (number, field) {
                        (1, Field::Bytes(text)) => {
                            requirement.insert("key".into(), json!(string(text)));
                        }
                        (2, Field::Bytes(text)) => {
                            requirement.insert("operator".into(), json!(string(text)));
                        }
                        (3, Field::Bytes(text)) => values.push(json!(string(text))),
                        _ => return Err(unsupported("LabelSelectorRequirement", number)),
                    }
                }
                if !values.is_empty() {
                    requirement.insert("values".into(), json!(values));
                }
                expressions.push(Value::Object(requirement));
            }
            _ => return Err(unsupported("LabelSelector", number)),
        }
    }
    let mut out = Map::new();
    if !labels.is_empty() {
        out.insert("matchLabels".into(), Value::Object(labels));
    }
    if !expressions.is_empty() {
        out.insert("matchExpressions".into(), json!(expressions));
    }
    Ok(Value::Object(out))
}

/// An IntOrString: {1: type (0 int, 1 string), 2: intVal, 3: strVal}.
fn int_or_string(bytes: &[u8]) -> ApiResult<Value> {
    let (mut is_string, mut int, mut text) = (false, 0i64, String::new());
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Varint(kind)) => is_string = kind == 1,
            (2, Field::Varint(value)) => int = value as i64,
            (3, Field::Bytes(payload)) => text = string(payload),
            _ => return Err(unsupported("IntOrString", number)),
        }
    }
    Ok(if is_string { json!(text) } else { json!(int) })
}

/// A message of a type [`types`] lists, as its JSON object.
fn message(name: &str, bytes: &[u8]) -> ApiResult<Value> {
    let Some(known) = types::fields(name) else {
        return Err(unsupported(name, 0));
    };
    let mut obj = Map::new();
    for (number, field) in fields(bytes)? {
        let Some((_, json_name, kind)) = known.iter().find(|(n, _, _)| *n == number) else {
            return Err(unsupported(name, number));
        };
        let key = json_name.to_string();
        let value = match (*kind, field) {
            (Kind::Ignored, _) => continue,
            (Kind::Str, Field::Bytes([])) => continue,
            (Kind::Str | Kind::StrPtr, Field::Bytes(payload)) => json!(string(payload)),
            (Kind::Int, Field::Varint(0)) | (Kind::Bool, Field::Varint(0)) => continue,
            // Negative int32 and int64 alike are sign-extended to 64 bits.
            (Kind::Int | Kind::IntPtr, Field::Varint(value)) => json!(value as i64),
            (Kind::Bool | Kind::BoolPtr, Field::Varint(value)) => json!(value != 0),
            (Kind::Strs, Field::Bytes(payload)) => {
                push(&mut obj, &key, json!(string(payload)));
                continue;
            }
            (Kind::StrMap, Field::Bytes(payload)) => {
                let (entry_key, entry_value) = entry(payload, false)?;
                insert(&mut obj, &key, entry_key, entry_value);
                continue;
            }
            (Kind::QuantityMap, Field::Bytes(payload)) => {
                let (mut entry_key, mut entry_value) = (String::new(), json!(""));
                for (number, field) in fields(payload)? {
                    match (number, field) {
                        (1, Field::Bytes(text)) => entry_key = string(text),
                        (2, Field::Bytes(inner)) => entry_value = quantity(inner)?,
                        _ => return Err(unsupported("ResourceList", number)),
                    }
                }
                insert(&mut obj, &key, entry_key, entry_value);
                continue;
            }
            (Kind::IntOrStr, Field::Bytes(payload)) => int_or_string(payload)?,
            (Kind::Selector, Field::Bytes(payload)) => selector(payload)?,
            (Kind::Meta, Field::Bytes(payload)) => object_meta(payload)?,
            (Kind::Msg(inner), Field::Bytes(payload)) => message(inner, payload)?,
            (Kind::Msgs(inner), Field::Bytes(payload)) => {
                push(&mut obj, &key, message(inner, payload)?);
                continue;
            }
            _ => return Err(bad()),
        };
        obj.insert(key, value);
    }
    Ok(Value::Object(obj))
}

/// Appends to a list field (a repeated field comes one element at a time).
fn push(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if let Some(list) = obj
        .entry(key.to_string())
        .or_insert_with(|| json!([]))
        .as_array_mut()
    {
        list.push(value);
    }
}

/// Adds an entry to a map field (a map comes one entry at a time).
fn insert(obj: &mut Map<String, Value>, key: &str, entry_key: String, value: Value) {
    if let Some(map) = obj
        .entry(key.to_string())
        .or_insert_with(|| json!({}))
        .as_object_mut()
    {
        map.insert(entry_key, value);
    }
}

#[cfg(test)]
mod tests {
    /// A length-delimited field.
    fn field(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3 | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    fn pod_with_container(container: &[u8]) -> Vec<u8> {
        let mut type_meta = field(1, b"v1");
        type_meta.extend(field(2, b"Pod"));
        let pod = [field(1, &field(1, b"p")), field(2, &field(2, container))].concat();
        [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &pod)].concat()
    }

    #[test]
    fn a_pod_is_decoded_field_by_field() {
        let container = [field(1, b"main"), field(2, b"busybox"), field(3, b"sleep")].concat();
        let pod = super::decode(&pod_with_container(&container)).expect("decoded");
        assert_eq!(pod["kind"], "Pod");
        assert_eq!(pod["metadata"]["name"], "p");
        assert_eq!(
            pod["spec"]["containers"],
            serde_json::json!([{"name": "main", "image": "busybox", "command": ["sleep"]}])
        );
    }

    #[test]
    fn a_field_not_decoded_refuses_the_body_instead_of_dropping_the_field() {
        // Field 10 of Container: livenessProbe.
        let container = [field(1, b"main"), field(10, b"")].concat();
        let error = super::decode(&pod_with_container(&container)).expect_err("refused");
        assert_eq!(error.code, 415);
        assert!(
            error.message.contains("field 10 of Container"),
            "{}",
            error.message
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert!(super::decode(b"nope").is_err());
        assert!(super::decode(b"k8s\0\x0a\xff\xff\xff").is_err());
        assert!(super::decode(b"k8s\0\x12\x05ab").is_err());
    }
}
