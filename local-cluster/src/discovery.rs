//! API discovery documents: `/version`, the legacy `/api`, `/apis`,
//! `/api/v1`, `/apis/GROUP/v1` (apps, batch, authorization.k8s.io) and
//! the aggregated discovery format
//! (`apidiscovery.k8s.io/v2`) that current kubectl asks for.

use serde_json::{Value, json};

use crate::resources::{GROUPS, RESOURCES, REVIEWS, ResourceType};

pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
pub const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0+kubesh-local",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else if cfg!(target_arch = "aarch64") { "arm64" } else { std::env::consts::ARCH }),
    })
}

pub fn api_versions(addr: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}],
    })
}

fn group_entry(group: &str) -> Value {
    let gv = format!("{group}/v1");
    json!({
        "name": group,
        "versions": [{"groupVersion": gv, "version": "v1"}],
        "preferredVersion": {"groupVersion": gv, "version": "v1"},
    })
}

pub fn api_group_list() -> Value {
    let groups: Vec<Value> = GROUPS.iter().map(|group| group_entry(group)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn api_group(group: &str) -> Option<Value> {
    GROUPS.contains(&group).then(|| {
        let mut entry = group_entry(group);
        entry["kind"] = json!("APIGroup");
        entry["apiVersion"] = json!("v1");
        entry
    })
}

fn of_group(group: &str) -> impl Iterator<Item = &'static ResourceType> + '_ {
    RESOURCES
        .iter()
        .chain(REVIEWS)
        .filter(move |r| r.group == group)
}

/// The legacy `APIResourceList` of a group version.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    if version != "v1" || !(group.is_empty() || GROUPS.contains(&group)) {
        return None;
    }
    let mut resources = Vec::new();
    for rt in of_group(group) {
        let mut entry = json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": rt.verbs(),
        });
        if !rt.short_names.is_empty() {
            entry["shortNames"] = json!(rt.short_names);
        }
        if !rt.categories.is_empty() {
            entry["categories"] = json!(rt.categories);
        }
        resources.push(entry);
        for (sub, kind, verbs) in rt.subresources {
            let mut sub_entry = json!({
                "name": format!("{}/{}", rt.plural, sub),
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if *kind == "Scale" {
                sub_entry["group"] = json!("autoscaling");
                sub_entry["version"] = json!("v1");
            }
            resources.push(sub_entry);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn aggregated_group(group: &str) -> Value {
    let mut resources = Vec::new();
    for rt in of_group(group) {
        let mut entry = json!({
            "resource": rt.plural,
            "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
            "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
            "singularResource": rt.singular,
            "verbs": rt.verbs(),
        });
        if !rt.short_names.is_empty() {
            entry["shortNames"] = json!(rt.short_names);
        }
        if !rt.categories.is_empty() {
            entry["categories"] = json!(rt.categories);
        }
        let subs: Vec<Value> = rt
            .subresources
            .iter()
            .map(|(sub, kind, verbs)| {
                let (group_name, version_name) = if *kind == "Scale" { ("autoscaling", "v1") } else { (rt.group, rt.version) };
                json!({"subresource": sub, "responseKind": {"group": group_name, "version": version_name, "kind": kind}, "verbs": verbs})
            })
            .collect();
        if !subs.is_empty() {
            entry["subresources"] = json!(subs);
        }
        resources.push(entry);
    }
    json!({
        "metadata": {"name": group, "creationTimestamp": null},
        "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}],
    })
}

/// The aggregated discovery document for `/api` (core) or `/apis` (groups).
pub fn aggregated(core: bool, api_version: &str) -> Value {
    let items = if core {
        vec![aggregated_group("")]
    } else {
        GROUPS.iter().map(|group| aggregated_group(group)).collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items})
}

/// Which aggregated format the Accept header asks for, if any.
pub fn wants_aggregated(accept: &str) -> Option<(&'static str, &'static str)> {
    for part in accept.split(',') {
        let media = part.replace(' ', "");
        if media.contains("as=APIGroupDiscoveryList") {
            if media.contains("v=v2beta1") {
                return Some((AGGREGATED_V2BETA1, "apidiscovery.k8s.io/v2beta1"));
            }
            if media.contains("v=v2") {
                return Some((AGGREGATED_V2, "apidiscovery.k8s.io/v2"));
            }
        }
    }
    None
}
