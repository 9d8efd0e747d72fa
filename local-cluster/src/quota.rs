//! ResourceQuota admission, as the API server does it for pods: a quota
//! on `pods`, `requests.cpu` (`cpu`), `requests.memory` (`memory`),
//! `limits.cpu` or `limits.memory` refuses a pod that does not say how
//! much of a limited resource each of its containers takes, and one that
//! would take the namespace over the limit, in the API server's words.
//! Pods in a terminal phase do not count.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::resources;
use crate::store::Store;

/// Refuses `pod` (to be created in `namespace`) when a ResourceQuota of
/// the namespace does.
///
/// # Errors
/// 403 Forbidden: `failed quota` (a container does not set a limited
/// resource) or `exceeded quota` (the namespace would go over).
pub fn admit(store: &Store, namespace: &str, pod: &Value) -> ApiResult<()> {
    let (quotas, _) = store.list(resources::resourcequotas(), Some(namespace));
    if quotas.is_empty() {
        return Ok(());
    }
    let name = pod["metadata"]["name"]
        .as_str()
        .or_else(|| pod["metadata"]["generateName"].as_str())
        .unwrap_or("");
    let forbidden = |why: String| {
        ApiError::new(
            403,
            "Forbidden",
            format!("pods \"{name}\" is forbidden: {why}"),
        )
    };
    let (pods, _) = store.list(resources::pods(), Some(namespace));
    let live: Vec<&Value> = pods
        .iter()
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
        .collect();
    for quota in &quotas {
        let quota_name = quota["metadata"]["name"].as_str().unwrap_or("");
        let Some(hard) = quota["spec"]["hard"].as_object() else {
            continue;
        };
        let limited: Vec<(&str, i128)> = hard
            .iter()
            .filter_map(|(key, value)| Some((key.as_str(), parse(value.as_str()?)?)))
            .filter(|(key, _)| resource_of(key).is_some())
            .collect();
        let missing: Vec<String> = limited
            .iter()
            .filter_map(|(key, _)| {
                let (kind, resource) = resource_of(key)?;
                let resource = resource?;
                let lacking: Vec<&str> = containers(pod)
                    .filter(|c| c["resources"][kind][resource].is_null())
                    .filter_map(|c| c["name"].as_str())
                    .collect();
                (!lacking.is_empty()).then(|| format!("{key} for: {}", lacking.join(",")))
            })
            .collect();
        if !missing.is_empty() {
            return Err(forbidden(format!(
                "failed quota: {quota_name}: must specify {}",
                missing.join("; ")
            )));
        }
        let mut requested = Vec::new();
        let mut used = Vec::new();
        let mut limits = Vec::new();
        for (key, limit) in &limited {
            let wanted = amount(pod, key);
            let taken: i128 = live.iter().map(|p| amount(p, key)).sum();
            if taken + wanted > *limit {
                requested.push(format!("{key}={}", show(key, wanted)));
                used.push(format!("{key}={}", show(key, taken)));
                limits.push(format!("{key}={}", show(key, *limit)));
            }
        }
        if !requested.is_empty() {
            return Err(forbidden(format!(
                "exceeded quota: {quota_name}, requested: {}, used: {}, limited: {}",
                requested.join(","),
                used.join(","),
                limits.join(",")
            )));
        }
    }
    Ok(())
}

/// What a quota key limits: `pods` (no resource), or a resource of
/// containers' `requests` or `limits`.
fn resource_of(key: &str) -> Option<(&'static str, Option<&'static str>)> {
    match key {
        "pods" | "count/pods" => Some(("", None)),
        "requests.cpu" | "cpu" => Some(("requests", Some("cpu"))),
        "requests.memory" | "memory" => Some(("requests", Some("memory"))),
        "limits.cpu" => Some(("limits", Some("cpu"))),
        "limits.memory" => Some(("limits", Some("memory"))),
        _ => None,
    }
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers"]
        .into_iter()
        .flat_map(|list| pod["spec"][list].as_array().into_iter().flatten())
}

/// How much of `key` the pod takes, in thousandths: 1000 for a pod, and
/// for a resource the larger of its containers' sum and its largest init
/// container, as the scheduler counts a pod.
fn amount(pod: &Value, key: &str) -> i128 {
    match resource_of(key) {
        Some((_, None)) => 1000,
        Some((kind, Some(resource))) => {
            let of = |list: &str| {
                pod["spec"][list]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        c["resources"][kind][resource]
                            .as_str()
                            .and_then(parse)
                            .unwrap_or(0)
                    })
                    .collect::<Vec<i128>>()
            };
            let sum: i128 = of("containers").iter().sum();
            let init = of("initContainers").into_iter().max().unwrap_or(0);
            sum.max(init)
        }
        None => 0,
    }
}

/// A Kubernetes quantity (`500m`, `0.5`, `128Mi`, `1G`, `2`) in
/// thousandths of its unit.
fn parse(text: &str) -> Option<i128> {
    let text = text.trim();
    let suffixes: [(&str, i128); 13] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
        ("m", 0),
    ];
    let (number, factor) = suffixes
        .iter()
        .find_map(|(suffix, factor)| Some((text.strip_suffix(suffix)?, *factor)))
        .unwrap_or((text, 1));
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    // Thousandths of the number, from up to three decimals.
    let mut thousandths = whole.checked_mul(1000)?;
    for (place, digit) in fraction.bytes().take(3).enumerate() {
        thousandths += i128::from(digit - b'0') * [100, 10, 1][place];
    }
    if factor == 0 {
        // `m`: the number is in thousandths already.
        return Some(thousandths / 1000);
    }
    thousandths.checked_mul(factor)
}

/// An amount in thousandths, as the API server shows it for `key`.
fn show(key: &str, thousandths: i128) -> String {
    let memory = key.ends_with("memory");
    if memory {
        let bytes = thousandths / 1000;
        for (suffix, size) in [("Gi", 1i128 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
            if bytes >= size && bytes % size == 0 {
                return format!("{}{suffix}", bytes / size);
            }
        }
        return bytes.to_string();
    }
    if thousandths % 1000 == 0 {
        (thousandths / 1000).to_string()
    } else {
        format!("{thousandths}m")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse("500m"), Some(500));
        assert_eq!(parse("0.5"), Some(500));
        assert_eq!(parse("2"), Some(2000));
        assert_eq!(parse("128Mi"), Some(128 * 1024 * 1024 * 1000));
        assert_eq!(parse("1G"), Some(1_000_000_000_000));
        assert_eq!(parse("x"), None);
        assert_eq!(show("requests.cpu", 1500), "1500m");
        assert_eq!(show("limits.memory", 64 * 1024 * 1024 * 1000), "64Mi");
        assert_eq!(show("pods", 2000), "2");
    }

    #[test]
    fn a_pod_counts_its_containers_or_its_largest_init_container() {
        let pod = json!({"spec": {
            "initContainers": [{"resources": {"requests": {"cpu": "1"}}}],
            "containers": [{"resources": {"requests": {"cpu": "200m"}}},
                           {"resources": {"requests": {"cpu": "300m"}}}]}});
        assert_eq!(amount(&pod, "requests.cpu"), 1000);
        assert_eq!(amount(&pod, "pods"), 1000);
    }
}
