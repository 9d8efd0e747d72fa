//! A minimal OpenAPI v3 document: no schemas, only the PATCH operations of
//! each type with their `fieldValidation` parameter, which is what kubectl
//! reads to decide that the server validates fields itself.

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
