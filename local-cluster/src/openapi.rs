//! Minimal OpenAPI documents. v3: no schemas, only the PATCH operations
//! of each type with their `fieldValidation` parameter, which is what
//! kubectl reads to decide that the server validates fields itself. v2: an
//! empty document (no paths, no definitions), which is what kubectl 1.27
//! and 1.28 need to `apply` and `diff` at all (they fetch it first and
//! stop on a 404); with no schema in it they merge with the types built
//! into kubectl, as for any type the document does not name. Neither has
//! the types' schemas, so `kubectl explain` finds none.

use serde_json::{Map, Value, json};

use crate::resources::RESOURCES;

pub fn root() -> Value {
    json!({"paths": {
        "api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=kubesh-local-1"},
        "apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=kubesh-local-1"},
    }})
}

pub fn group_version(group: &str) -> Option<Value> {
    if !(group.is_empty() || group == "apps") {
        return None;
    }
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
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
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
