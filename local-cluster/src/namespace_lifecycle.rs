//! The NamespaceLifecycle admission: nothing new in a namespace that does
//! not exist (404) or is being terminated (403), whoever makes it (a
//! client, a controller, the kubelet's events).

use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::resources::{self, ResourceType};
use crate::store::Store;

/// Whether a new object `name` of type `rt` may be made in `ns`, as the
/// NamespaceLifecycle admission plugin judges it: 404 when the namespace
/// does not exist, 403 while it is being terminated.
///
/// # Errors
/// The API server's refusal.
pub fn admit(store: &Store, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<()> {
    if !rt.namespaced {
        return Ok(());
    }
    match store.try_get(resources::namespaces(), "", ns) {
        None => Err(ApiError::not_found("namespaces", ns)),
        Some(namespace)
            if namespace["metadata"]
                .get("deletionTimestamp")
                .is_some_and(|v| !v.is_null()) =>
        {
            let mut error = ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    rt.qualified()
                ),
            );
            error.details = Some(json!({
                "name": name, "group": rt.group, "kind": rt.plural,
                "causes": [{"reason": "NamespaceTerminating",
                            "message": format!("namespace {ns} is being terminated"),
                            "field": "metadata.namespace"}],
            }));
            Err(error)
        }
        Some(_) => Ok(()),
    }
}
