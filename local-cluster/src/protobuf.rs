//! Just enough of the Kubernetes protobuf encoding to accept the bodies
//! kubectl's generator commands send (`kubectl create namespace|configmap|
//! secret|quota`): the `k8s\0` envelope, ObjectMeta, Namespace, ConfigMap,
//! Secret and ResourceQuota. Other kinds get 415, after which clients use
//! JSON.

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

#[cfg(test)]
mod tests {
    #[test]
    fn malformed_bodies_are_refused() {
        assert!(super::decode(b"nope").is_err());
        assert!(super::decode(b"k8s\0\x0a\xff\xff\xff").is_err());
        assert!(super::decode(b"k8s\0\x12\x05ab").is_err());
    }
}
