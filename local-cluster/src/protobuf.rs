//! Just enough of the Kubernetes protobuf encoding to accept the bodies
//! kubectl's generator commands send (`kubectl create namespace|configmap|
//! secret`): the `k8s\0` envelope, ObjectMeta, Namespace, ConfigMap and
//! Secret. Other kinds get 415, after which clients use JSON.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Other,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { b, i: 0 }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.i)?;
            self.i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// The next (field number, value), None at the end; Err if malformed.
    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, ()> {
        if self.i >= self.b.len() {
            return Ok(None);
        }
        let key = self.varint().ok_or(())?;
        let (num, wt) = (key >> 3, key & 7);
        let f = match wt {
            0 => Field::Varint(self.varint().ok_or(())?),
            1 => {
                self.i = self
                    .i
                    .checked_add(8)
                    .filter(|&i| i <= self.b.len())
                    .ok_or(())?;
                Field::Other
            }
            2 => {
                let len = usize::try_from(self.varint().ok_or(())?).map_err(|_| ())?;
                let end = self
                    .i
                    .checked_add(len)
                    .filter(|&e| e <= self.b.len())
                    .ok_or(())?;
                let s = &self.b[self.i..end];
                self.i = end;
                Field::Bytes(s)
            }
            5 => {
                self.i = self
                    .i
                    .checked_add(4)
                    .filter(|&i| i <= self.b.len())
                    .ok_or(())?;
                Field::Other
            }
            _ => return Err(()),
        };
        Ok(Some((num, f)))
    }
}

fn bad() -> ApiError {
    ApiError::bad_request("malformed protobuf body")
}

fn string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn fields(b: &[u8]) -> ApiResult<Vec<(u64, Field<'_>)>> {
    let mut r = Reader::new(b);
    let mut out = Vec::new();
    while let Some(f) = r.next().map_err(|_| bad())? {
        out.push(f);
    }
    Ok(out)
}

/// A map entry message {1: key, 2: value}.
fn entry(b: &[u8], bytes_value: bool) -> ApiResult<(String, Value)> {
    let (mut k, mut v) = (String::new(), json!(""));
    for (n, f) in fields(b)? {
        if let Field::Bytes(s) = f {
            match n {
                1 => k = string(s),
                2 => {
                    v = if bytes_value {
                        json!(crate::base64::encode(s))
                    } else {
                        json!(string(s))
                    }
                }
                _ => {}
            }
        }
    }
    Ok((k, v))
}

fn object_meta(b: &[u8]) -> ApiResult<Value> {
    let mut m = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    let mut owners = Vec::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(s)) if !s.is_empty() => {
                m.insert("name".into(), json!(string(s)));
            }
            (2, Field::Bytes(s)) if !s.is_empty() => {
                m.insert("generateName".into(), json!(string(s)));
            }
            (3, Field::Bytes(s)) if !s.is_empty() => {
                m.insert("namespace".into(), json!(string(s)));
            }
            (6, Field::Bytes(s)) if !s.is_empty() => {
                m.insert("resourceVersion".into(), json!(string(s)));
            }
            (11, Field::Bytes(s)) => {
                let (k, v) = entry(s, false)?;
                labels.insert(k, v);
            }
            (12, Field::Bytes(s)) => {
                let (k, v) = entry(s, false)?;
                annotations.insert(k, v);
            }
            (13, Field::Bytes(s)) => {
                let mut o = Map::new();
                for (n, f) in fields(s)? {
                    match (n, f) {
                        (1, Field::Bytes(x)) => {
                            o.insert("kind".into(), json!(string(x)));
                        }
                        (3, Field::Bytes(x)) => {
                            o.insert("name".into(), json!(string(x)));
                        }
                        (4, Field::Bytes(x)) => {
                            o.insert("uid".into(), json!(string(x)));
                        }
                        (5, Field::Bytes(x)) => {
                            o.insert("apiVersion".into(), json!(string(x)));
                        }
                        (6, Field::Varint(x)) => {
                            o.insert("controller".into(), json!(x != 0));
                        }
                        (7, Field::Varint(x)) => {
                            o.insert("blockOwnerDeletion".into(), json!(x != 0));
                        }
                        _ => {}
                    }
                }
                owners.push(Value::Object(o));
            }
            (14, Field::Bytes(s)) => finalizers.push(json!(string(s))),
            _ => {}
        }
    }
    if !labels.is_empty() {
        m.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), json!(finalizers));
    }
    if !owners.is_empty() {
        m.insert("ownerReferences".into(), json!(owners));
    }
    Ok(Value::Object(m))
}

/// Decodes a protobuf request body into the JSON form of the object.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let Some(rest) = body.strip_prefix(b"k8s\0") else {
        return Err(bad());
    };
    let (mut api_version, mut kind, mut raw): (String, String, &[u8]) =
        (String::new(), String::new(), &[]);
    for (n, f) in fields(rest)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (n, f) in fields(tm)? {
                    match (n, f) {
                        (1, Field::Bytes(s)) => api_version = string(s),
                        (2, Field::Bytes(s)) => kind = string(s),
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(s)) => raw = s,
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
        "Namespace" | "ConfigMap" | "Secret" => {}
        other => {
            return Err(ApiError::unsupported_media(&format!(
                "application/vnd.kubernetes.protobuf ({other})"
            )));
        }
    }
    for (n, f) in fields(raw)? {
        match (kind.as_str(), n, f) {
            (_, 1, Field::Bytes(s)) => {
                obj.insert("metadata".into(), object_meta(s)?);
            }
            ("Namespace", 2, Field::Bytes(s)) => {
                let fins: Vec<Value> = fields(s)?
                    .into_iter()
                    .filter_map(|(n, f)| match (n, f) {
                        (1, Field::Bytes(x)) => Some(json!(string(x))),
                        _ => None,
                    })
                    .collect();
                obj.insert("spec".into(), json!({"finalizers": fins}));
            }
            ("ConfigMap", 2, Field::Bytes(s)) => {
                let (k, v) = entry(s, false)?;
                data.insert(k, v);
            }
            ("ConfigMap", 3, Field::Bytes(s)) => {
                let (k, v) = entry(s, true)?;
                binary.insert(k, v);
            }
            ("ConfigMap", 4, Field::Varint(x)) | ("Secret", 5, Field::Varint(x)) => {
                obj.insert("immutable".into(), json!(x != 0));
            }
            ("Secret", 2, Field::Bytes(s)) => {
                let (k, v) = entry(s, true)?;
                data.insert(k, v);
            }
            ("Secret", 3, Field::Bytes(s)) => {
                obj.insert("type".into(), json!(string(s)));
            }
            ("Secret", 4, Field::Bytes(s)) => {
                let (k, v) = entry(s, false)?;
                string_data.insert(k, v);
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
