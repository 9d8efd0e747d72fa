//! Which security profile a launch needs, as the target namespace says:
//! a namespace labelled `pod-security.kubernetes.io/enforce: restricted`
//! admits only pods that run as Pod Security `restricted` asks, so kubesh
//! launches there with its restricted profile unless `POD_SECURITY` says
//! otherwise. A namespace kubesh may not read (a Role without `get` on
//! namespaces) leaves the choice to the setting.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;

use crate::cluster::connection::Connection;

/// The label that sets the Pod Security level a namespace enforces.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// How long the namespace's labels are waited for.
const ASK_LIMIT: Duration = Duration::from_secs(5);

/// Whether `namespace` enforces Pod Security `restricted`; `None` when it
/// cannot be read (not allowed, gone, or no answer within 5 s).
pub fn namespace_restricted(connection: &Connection, namespace: &str) -> Option<bool> {
    let namespaces: Api<Namespace> = Api::all(connection.client.clone());
    let read = connection.block_on(async {
        tokio::time::timeout(ASK_LIMIT, namespaces.get_metadata(namespace)).await
    });
    let meta = read.ok()?.ok()?;
    let level = meta
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(ENFORCE_LABEL));
    Some(level.is_some_and(|level| level == "restricted"))
}
