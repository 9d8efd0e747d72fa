//! Label selectors (equality and set-based, as query strings and as
//! `LabelSelector` objects) and field selectors.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<Req>,
    /// A LabelSelector object with an unknown operator matches nothing.
    nothing: bool,
}

fn split_top(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for character in text.chars() {
        match character {
            '(' => {
                depth += 1;
                cur.push(character)
            }
            ')' => {
                depth -= 1;
                cur.push(character)
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(character),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn parse_set(rest: &str) -> Option<Vec<String>> {
    let rest = rest.trim();
    let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

impl LabelSelector {
    pub fn parse(text: &str) -> ApiResult<LabelSelector> {
        let bad = |part: &str| {
            ApiError::bad_request(format!(
                "unable to parse requirement: invalid label selector: {part}"
            ))
        };
        let mut reqs = Vec::new();
        for part in split_top(text) {
            let req = if let Some(key) = part.strip_prefix('!') {
                Req::NotExists(key.trim().to_string())
            } else if let Some((key, value)) = part.split_once("!=") {
                Req::Ne(key.trim().to_string(), value.trim().to_string())
            } else if let Some((key, value)) = part.split_once("==") {
                Req::Eq(key.trim().to_string(), value.trim().to_string())
            } else if let Some((key, value)) = part.split_once('=') {
                Req::Eq(key.trim().to_string(), value.trim().to_string())
            } else if let Some(idx) = part.find(" notin ") {
                Req::NotIn(
                    part[..idx].trim().to_string(),
                    parse_set(&part[idx + 7..]).ok_or_else(|| bad(&part))?,
                )
            } else if let Some(idx) = part.find(" in ") {
                Req::In(
                    part[..idx].trim().to_string(),
                    parse_set(&part[idx + 4..]).ok_or_else(|| bad(&part))?,
                )
            } else {
                Req::Exists(part.trim().to_string())
            };
            let key = match &req {
                Req::Eq(key, _)
                | Req::Ne(key, _)
                | Req::In(key, _)
                | Req::NotIn(key, _)
                | Req::Exists(key)
                | Req::NotExists(key) => key,
            };
            if !valid_key(key) {
                return Err(bad(&part));
            }
            reqs.push(req);
        }
        Ok(LabelSelector {
            reqs,
            nothing: false,
        })
    }

    /// From a `LabelSelector` object (`matchLabels`, `matchExpressions`).
    pub fn from_object(sel: &Value) -> LabelSelector {
        let mut reqs = Vec::new();
        let mut nothing = false;
        if let Some(labels) = sel["matchLabels"].as_object() {
            for (key, value) in labels {
                reqs.push(Req::Eq(
                    key.clone(),
                    value.as_str().unwrap_or("").to_string(),
                ));
            }
        }
        if let Some(exprs) = sel["matchExpressions"].as_array() {
            for expr in exprs {
                let key = expr["key"].as_str().unwrap_or("").to_string();
                let values: Vec<String> = expr["values"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                match expr["operator"].as_str().unwrap_or("") {
                    "In" => reqs.push(Req::In(key, values)),
                    "NotIn" => reqs.push(Req::NotIn(key, values)),
                    "Exists" => reqs.push(Req::Exists(key)),
                    "DoesNotExist" => reqs.push(Req::NotExists(key)),
                    _ => nothing = true,
                }
            }
        }
        LabelSelector { reqs, nothing }
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty() && !self.nothing
    }

    pub fn matches(&self, labels: &Value) -> bool {
        if self.nothing {
            return false;
        }
        let get = |key: &str| labels.get(key).and_then(Value::as_str);
        self.reqs.iter().all(|req| match req {
            Req::Eq(key, value) => get(key) == Some(value.as_str()),
            Req::Ne(key, value) => get(key) != Some(value.as_str()),
            Req::In(key, values) => {
                get(key).is_some_and(|found| values.iter().any(|value| value == found))
            }
            Req::NotIn(key, values) => {
                get(key).is_none_or(|found| !values.iter().any(|value| value == found))
            }
            Req::Exists(key) => get(key).is_some(),
            Req::NotExists(key) => get(key).is_none(),
        })
    }

    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches(&obj["metadata"]["labels"])
    }
}

/// A parsed field selector: a conjunction of `path=value` / `path!=value`.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

const FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "status.phase",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.podIP",
    "status.nominatedNodeName",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    "status.replicas",
    "type",
];

impl FieldSelector {
    pub fn parse(text: &str) -> ApiResult<FieldSelector> {
        let mut reqs = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, neg, value) = if let Some((key, value)) = part.split_once("!=") {
                (key, true, value)
            } else if let Some((key, value)) = part.split_once("==") {
                (key, false, value)
            } else if let Some((key, value)) = part.split_once('=') {
                (key, false, value)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                )));
            };
            let key = key.trim();
            if !FIELDS.contains(&key) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {key}"
                )));
            }
            reqs.push((key.to_string(), neg, value.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(path, neg, want)| {
            let mut cur = obj;
            for segment in path.split('.') {
                cur = &cur[segment];
            }
            let have = match cur {
                Value::String(text) => text.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (have == *want) != *neg
        })
    }
}

/// A `LabelSelector` object as a query string (`app=web,tier in (a,b)`).
pub fn to_query(sel: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(labels) = sel["matchLabels"].as_object() {
        for (key, value) in labels {
            parts.push(format!("{key}={}", value.as_str().unwrap_or("")));
        }
    }
    if let Some(exprs) = sel["matchExpressions"].as_array() {
        for expr in exprs {
            let key = expr["key"].as_str().unwrap_or("");
            let vals: Vec<&str> = expr["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match expr["operator"].as_str().unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", vals.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", vals.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let labels = json!({"app": "web", "tier": "front"});
        assert!(LabelSelector::parse("app=web").unwrap().matches(&labels));
        assert!(
            LabelSelector::parse("app==web,tier")
                .unwrap()
                .matches(&labels)
        );
        assert!(!LabelSelector::parse("app!=web").unwrap().matches(&labels));
        assert!(
            LabelSelector::parse("app in (web, api),!missing")
                .unwrap()
                .matches(&labels)
        );
        assert!(
            !LabelSelector::parse("tier notin (front)")
                .unwrap()
                .matches(&labels)
        );
        assert!(LabelSelector::parse("a b c").is_err());
    }

    #[test]
    fn field_selectors() {
        let object = json!({"metadata": {"name": "x"}, "status": {"phase": "Running"}});
        assert!(
            FieldSelector::parse("metadata.name=x,status.phase!=Failed")
                .unwrap()
                .matches(&object)
        );
        assert!(FieldSelector::parse("spec.bogus=1").is_err());
    }
}
