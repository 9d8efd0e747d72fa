//! Unknown fields, as the API server's strict decoding finds them, and the
//! `fieldValidation` directive (Strict, Warn, Ignore) that says what to do
//! with them.
//!
//! The fields each kind has come from its type in `k8s-openapi`, which is
//! generated from the Kubernetes OpenAPI schemas: the object is walked by a
//! serde deserializer over its JSON that the generated `Deserialize` code
//! drives. Every struct announces its field names when it asks for a map,
//! so a key it does not name is an unknown field, reported with its path in
//! the API server's words (`spec.containers[0].comand`). Values of the
//! wrong type are not this module's concern (the shape checks in
//! `validate` answer those): the walk only stops there.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceType;

/// What the API server does with unknown fields (`?fieldValidation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Refuse the request (400).
    Strict,
    /// Accept it without them, with a `Warning` header for each: the
    /// API server's default when a client sends nothing.
    Warn,
    /// Accept it without them, silently.
    Ignore,
}

impl Directive {
    /// The directive a request gives (its `fieldValidation` parameter).
    ///
    /// # Errors
    /// 400 for a value other than the three, as the API server says it.
    pub fn of(given: Option<&str>) -> ApiResult<Directive> {
        match given {
            None | Some("") | Some("Warn") => Ok(Directive::Warn),
            Some("Strict") => Ok(Directive::Strict),
            Some("Ignore") => Ok(Directive::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// One step of a path into an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Field(String),
    Index(usize),
}

/// Where an unknown field is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Step>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Field(name) if i == 0 => f.write_str(name)?,
                Step::Field(name) => write!(f, ".{name}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// The fields of `obj` that its kind does not have, in the order of the
/// object's keys.
pub fn unknown(rt: &ResourceType, obj: &Value) -> Vec<FieldPath> {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    match rt.plural {
        "pods" => walk::<core::Pod>(obj),
        "services" => walk::<core::Service>(obj),
        "endpoints" => walk::<core::Endpoints>(obj),
        "configmaps" => walk::<core::ConfigMap>(obj),
        "secrets" => walk::<core::Secret>(obj),
        "namespaces" => walk::<core::Namespace>(obj),
        "events" => walk::<core::Event>(obj),
        "resourcequotas" => walk::<core::ResourceQuota>(obj),
        "nodes" => walk::<core::Node>(obj),
        "deployments" => walk::<apps::Deployment>(obj),
        "replicasets" => walk::<apps::ReplicaSet>(obj),
        "jobs" => walk::<batch::Job>(obj),
        _ => Vec::new(),
    }
}

/// Removes the fields at `paths` (the API server decodes into its types,
/// so what they do not have is not stored).
pub fn remove(obj: &mut Value, paths: &[FieldPath]) {
    for path in paths {
        if let Some((Step::Field(last), parents)) = path.0.split_last()
            && let Some(fields) = at(obj, parents).and_then(Value::as_object_mut)
        {
            fields.remove(last);
        }
    }
}

/// The value at `steps` inside `value`.
fn at<'v>(value: &'v mut Value, steps: &[Step]) -> Option<&'v mut Value> {
    match steps.split_first() {
        None => Some(value),
        Some((Step::Field(name), rest)) => at(value.get_mut(name.as_str())?, rest),
        Some((Step::Index(index), rest)) => at(value.get_mut(*index)?, rest),
    }
}

/// The API server's words for unknown fields: `unknown field "a", unknown
/// field "b"`.
pub fn describe(paths: &[FieldPath]) -> String {
    paths
        .iter()
        .map(|path| format!("unknown field \"{path}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `Warning` header value for one unknown field, as the API server
/// sends it (code 299, quoted text).
pub fn warning(path: &FieldPath) -> String {
    let text = format!("unknown field \"{path}\"");
    format!(
        "299 - \"{}\"",
        text.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

fn walk<T: DeserializeOwned>(obj: &Value) -> Vec<FieldPath> {
    let found = RefCell::new(Vec::new());
    // A value of the wrong type ends the walk; what was found stands.
    let _ = T::deserialize(Walker {
        value: obj,
        path: Vec::new(),
        found: &found,
    });
    found.into_inner()
}

/// Why the walk stopped (a value of the wrong type).
#[derive(Debug)]
struct Stop(String);

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Stop(msg.to_string())
    }
}

/// A deserializer over one JSON value at `path`.
struct Walker<'a> {
    value: &'a Value,
    path: Vec<Step>,
    found: &'a RefCell<Vec<FieldPath>>,
}

impl<'a> Walker<'a> {
    fn child(&self, step: Step, value: &'a Value) -> Walker<'a> {
        let mut path = self.path.clone();
        path.push(step);
        Walker {
            value,
            path,
            found: self.found,
        }
    }
}

struct Seq<'a> {
    parent: Walker<'a>,
    items: std::iter::Enumerate<std::slice::Iter<'a, Value>>,
}

impl<'de, 'a: 'de> SeqAccess<'de> for Seq<'a> {
    type Error = Stop;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Stop> {
        match self.items.next() {
            None => Ok(None),
            Some((index, item)) => seed
                .deserialize(self.parent.child(Step::Index(index), item))
                .map(Some),
        }
    }
}

struct Map<'a> {
    parent: Walker<'a>,
    entries: serde_json::map::Iter<'a>,
    next: Option<(&'a String, &'a Value)>,
}

impl<'de, 'a: 'de> MapAccess<'de> for Map<'a> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        match self.entries.next() {
            None => Ok(None),
            Some((key, value)) => {
                self.next = Some((key, value));
                let key: de::value::BorrowedStrDeserializer<'de, Stop> =
                    de::value::BorrowedStrDeserializer::new(key.as_str());
                seed.deserialize(key).map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
        let (key, value) = self
            .next
            .take()
            .ok_or_else(|| Stop("a value without its key".into()))?;
        seed.deserialize(self.parent.child(Step::Field(key.clone()), value))
    }
}

impl<'a> Walker<'a> {
    fn map(self) -> Option<Map<'a>> {
        let entries = self.value.as_object()?.iter();
        Some(Map {
            parent: self,
            entries,
            next: None,
        })
    }
}

impl<'de, 'a: 'de> de::Deserializer<'de> for Walker<'a> {
    type Error = Stop;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or_default())
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => {
                let items = items.iter().enumerate();
                visitor.visit_seq(Seq {
                    parent: self,
                    items,
                })
            }
            Value::Object(_) => match self.map() {
                Some(map) => visitor.visit_map(map),
                None => Err(Stop("not an object".into())),
            },
        }
    }

    fn deserialize_option<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        if self.value.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_str<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        match self.value {
            // A number where text is expected (a Quantity written `cpu: 1`)
            // is read as its text, as the API server reads quantities.
            Value::Number(n) => visitor.visit_string(n.to_string()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        self.deserialize_str(visitor)
    }

    fn deserialize_struct<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        if let Some(object) = self.value.as_object() {
            let mut found = self.found.borrow_mut();
            for key in object.keys() {
                if !fields.contains(&key.as_str()) {
                    let mut path = self.path.clone();
                    path.push(Step::Field(key.clone()));
                    found.push(FieldPath(path));
                }
            }
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_enum<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        match self.value {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            _ => Err(Stop("not an enum".into())),
        }
    }

    fn deserialize_ignored_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map identifier
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;
    use serde_json::json;

    fn names(paths: &[FieldPath]) -> Vec<String> {
        paths.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn unknown_fields_are_named_by_their_path() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}, "colour": "red"},
            "spec": {
                "containers": [
                    {"name": "a", "image": "x", "command": ["sh"]},
                    {"name": "b", "image": "x", "comand": ["sh"],
                     "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                     "ports": [{"containerPort": 80, "hostport": 80}]},
                ],
                "volumes": [{"name": "v", "configMap": {"name": "c", "itmes": []}}],
            },
            "extra": {"deep": {"x": 1}},
        });
        assert_eq!(
            names(&unknown(resources::pods(), &pod)),
            [
                "extra",
                "metadata.colour",
                "spec.containers[1].comand",
                "spec.containers[1].ports[0].hostport",
                "spec.volumes[0].configMap.itmes",
            ]
        );
    }

    #[test]
    fn objects_the_cluster_writes_have_no_unknown_fields() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "creationTimestamp": "2024-01-01T00:00:00Z",
                         "managedFields": [{"manager": "k", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"selector": {"matchLabels": {"a": "b"}},
                     "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                     "template": {"metadata": {"creationTimestamp": null, "labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "a", "image": "x"}]}}},
            "status": {"conditions": [{"type": "Available", "status": "True", "lastUpdateTime": "2024-01-01T00:00:00Z"}]},
        });
        assert!(unknown(resources::deployments(), &deployment).is_empty());
        let config_map = json!({"metadata": {"name": "c"}, "binaryData": {"a": "YQ=="}, "data": {"b": "c"}, "immutable": true});
        assert!(unknown(resources::configmaps(), &config_map).is_empty());
    }

    #[test]
    fn removing_leaves_the_rest() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "comand": ["x"]}]}, "extra": 1});
        let paths = unknown(resources::pods(), &pod);
        remove(&mut pod, &paths);
        assert_eq!(pod, json!({"spec": {"containers": [{"name": "a"}]}}));
        assert_eq!(
            warning(&paths[1]),
            r#"299 - "unknown field \"spec.containers[0].comand\"""#
        );
        assert_eq!(
            describe(&paths),
            r#"unknown field "extra", unknown field "spec.containers[0].comand""#
        );
    }
}
