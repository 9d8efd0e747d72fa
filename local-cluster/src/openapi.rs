//! The OpenAPI documents. v3: for each served group version, the PATCH
//! operations of each type with their `fieldValidation` parameter (what
//! kubectl reads to decide that the server validates fields itself) and
//! the schemas of the served kinds and every type they use, with their
//! descriptions, generated from the Kubernetes OpenAPI schemas that
//! `k8s-openapi` carries (its `schemars` impls) and named as the API
//! server names them (`io.k8s.api.core.v1.Pod`), each kind marked with its
//! `x-kubernetes-group-version-kind`: what `kubectl explain` reads. v2: an
//! empty document (no paths, no definitions), which is what kubectl 1.27
//! and 1.28 need to `apply` and `diff` at all (they fetch it first and
//! stop on a 404); with no schema in it they merge with the types built
//! into kubectl, as for any type the document does not name.

use std::sync::OnceLock;

use schemars::JsonSchema;
use serde_json::{Map, Value, json};

use crate::resources::{GROUPS, RESOURCES};

/// The hash in each group version's URL: it changes with the schemas.
const HASH: &str = "kubesh-local-2";

pub fn root() -> Value {
    let mut paths = Map::new();
    paths.insert(
        "api/v1".into(),
        json!({"serverRelativeURL": format!("/openapi/v3/api/v1?hash={HASH}")}),
    );
    for group in GROUPS
        .iter()
        .filter(|group| RESOURCES.iter().any(|rt| rt.group == **group))
    {
        paths.insert(
            format!("apis/{group}/v1"),
            json!({"serverRelativeURL": format!("/openapi/v3/apis/{group}/v1?hash={HASH}")}),
        );
    }
    json!({ "paths": paths })
}

/// Adds the schema of `T`, and of every type it uses, to `generator`.
fn add<T: JsonSchema>(generator: &mut schemars::SchemaGenerator) {
    generator.subschema_for::<T>();
}

/// The schemas of a group's kinds and every type they use, by the API
/// server's names.
fn schemas(group: &str) -> Map<String, Value> {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    for rt in RESOURCES.iter().filter(|rt| rt.group == group) {
        match rt.plural {
            "pods" => add::<core::Pod>(&mut generator),
            "services" => add::<core::Service>(&mut generator),
            "endpoints" => add::<core::Endpoints>(&mut generator),
            "configmaps" => add::<core::ConfigMap>(&mut generator),
            "secrets" => add::<core::Secret>(&mut generator),
            "namespaces" => add::<core::Namespace>(&mut generator),
            "events" => add::<core::Event>(&mut generator),
            "resourcequotas" => add::<core::ResourceQuota>(&mut generator),
            "nodes" => add::<core::Node>(&mut generator),
            "deployments" => add::<apps::Deployment>(&mut generator),
            "replicasets" => add::<apps::ReplicaSet>(&mut generator),
            "jobs" => add::<batch::Job>(&mut generator),
            _ => {}
        }
    }
    let mut definitions = generator.take_definitions(true);
    for (name, schema) in definitions.iter_mut() {
        mark_patch_strategies(name, schema);
    }
    for rt in RESOURCES.iter().filter(|rt| rt.group == group) {
        let prefix = match rt.group {
            "" => "io.k8s.api.core.v1".to_string(),
            other => format!("io.k8s.api.{other}.v1"),
        };
        if let Some(schema) = definitions.get_mut(&format!("{prefix}.{}", rt.kind)) {
            schema["x-kubernetes-group-version-kind"] =
                json!([{"group": rt.group, "version": rt.version, "kind": rt.kind}]);
        }
    }
    definitions
}

/// Marks the list fields that strategic merge patches merge (by a key, or
/// as a set), as the API server's schemas mark them
/// (`x-kubernetes-patch-merge-key`, `x-kubernetes-patch-strategy`), with
/// the keys this server merges by: kubectl computes its patches from them.
fn mark_patch_strategies(schema_name: &str, schema: &mut Value) {
    let Some(properties) = schema["properties"].as_object_mut() else {
        return;
    };
    for (field, property) in properties.iter_mut() {
        if property["type"] != "array" {
            continue;
        }
        let key = match field.as_str() {
            "containers"
            | "initContainers"
            | "ephemeralContainers"
            | "env"
            | "volumes"
            | "imagePullSecrets"
            | "resourceClaims" => Some("name"),
            "volumeMounts" => Some("mountPath"),
            "volumeDevices" => Some("devicePath"),
            "hostAliases" => Some("ip"),
            "conditions" => Some("type"),
            "ownerReferences" => Some("uid"),
            "topologySpreadConstraints" => Some("topologyKey"),
            "ports"
                if schema_name.ends_with(".Container")
                    || schema_name.ends_with(".EphemeralContainer") =>
            {
                Some("containerPort")
            }
            "ports" if schema_name.ends_with(".ServiceSpec") => Some("port"),
            "finalizers" if schema_name.ends_with(".ObjectMeta") => None,
            _ => continue,
        };
        let strategy = if field == "volumes" {
            "merge,retainKeys"
        } else {
            "merge"
        };
        property["x-kubernetes-patch-strategy"] = json!(strategy);
        if let Some(key) = key {
            property["x-kubernetes-patch-merge-key"] = json!(key);
        }
    }
}

/// The v3 document of a group version (`""` for the core group), made
/// once.
pub fn group_version(group: &str) -> Option<Value> {
    static DOCUMENTS: OnceLock<Map<String, Value>> = OnceLock::new();
    let documents = DOCUMENTS.get_or_init(|| {
        std::iter::once("")
            .chain(GROUPS.iter().copied())
            .filter(|group| RESOURCES.iter().any(|rt| rt.group == *group))
            .map(|group| (group.to_string(), document(group)))
            .collect()
    });
    documents.get(group).cloned()
}

fn document(group: &str) -> Value {
    let mut paths = Map::new();
    for rt in RESOURCES.iter().filter(|rt| rt.group == group) {
        let prefix = if group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{group}/v1")
        };
        let path = if rt.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", rt.plural)
        } else {
            format!("{prefix}/{}/{{name}}", rt.plural)
        };
        let params: Vec<Value> = ["dryRun", "fieldManager", "fieldValidation", "force"]
            .iter()
            .map(|p| json!({"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
            .collect();
        paths.insert(
            path,
            json!({"patch": {
                "operationId": format!("patch{}", rt.kind),
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
            }}),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas(group)},
    })
}

/// The media type of the OpenAPI v2 document in protobuf, which kubectl
/// asks for.
const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// `/openapi/v2` in the form asked for: protobuf (the `Document` message
/// with only `swagger: "2.0"`, field 1) or JSON.
pub fn v2(accept: &str) -> (&'static str, Vec<u8>) {
    if accept.contains("protobuf") {
        let mut document = vec![0x0a, 3];
        document.extend_from_slice(b"2.0");
        return (V2_PROTOBUF, document);
    }
    let document = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": {},
        "definitions": {},
    });
    (
        "application/json",
        serde_json::to_vec(&document).unwrap_or_default(),
    )
}
