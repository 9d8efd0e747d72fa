//! The architectures of the cluster's nodes, from the `kubernetes.io/arch`
//! label every kubelet sets: what a binary must be built for, and what its
//! pods are pinned to; and each node's name and container runtime, which
//! tell where a built image must be delivered. Listing nodes is a
//! cluster-wide permission a user of one namespace often lacks; then
//! neither is known.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use super::connection::{ClusterError, explain, status_code};

/// What a node says of itself that tells where its images come from: its
/// name and its container runtime (`containerd://1.7.13`, `docker://27.1.1`,
/// the local cluster's `kubesh-local://…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub runtime: String,
}

/// The cluster's nodes, each with its runtime. `Ok(None)` when listing
/// nodes is forbidden.
///
/// # Errors
/// The list failed for another reason (the connection, the API server).
pub async fn facts(
    client: &kube::Client,
    server: &str,
) -> Result<Option<Vec<NodeFacts>>, ClusterError> {
    let nodes: Api<Node> = Api::all(client.clone());
    match nodes.list(&ListParams::default()).await {
        Ok(list) => Ok(Some(list.items.iter().map(facts_of).collect())),
        Err(error) if status_code(&error) == Some(403) => Ok(None),
        Err(error) => Err(explain(server, error)),
    }
}

/// A node's name and runtime, as its status says them.
fn facts_of(node: &Node) -> NodeFacts {
    NodeFacts {
        name: node.metadata.name.clone().unwrap_or_default(),
        runtime: node
            .status
            .as_ref()
            .and_then(|status| status.node_info.as_ref())
            .map(|info| info.container_runtime_version.clone())
            .unwrap_or_default(),
    }
}

/// The label a kubelet sets to its node's architecture (`amd64`, `arm64`).
pub const ARCH_LABEL: &str = "kubernetes.io/arch";

/// The architectures of the cluster's nodes. `Ok(None)` when they cannot
/// be known: listing nodes is forbidden, or no node says its architecture
/// (a cluster whose nodes are added on demand may have none yet).
///
/// # Errors
/// The list failed for another reason (the connection, the API server).
pub async fn architectures(
    client: &kube::Client,
    server: &str,
) -> Result<Option<BTreeSet<String>>, ClusterError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let listed = nodes.list(&ListParams::default()).await;
    answer(server, listed.map(|list| list.items))
}

/// What the node list says of the architectures (see [`architectures`]).
fn answer(
    server: &str,
    listed: Result<Vec<Node>, kube::Error>,
) -> Result<Option<BTreeSet<String>>, ClusterError> {
    match listed {
        Ok(nodes) => Ok(of(&nodes)),
        Err(error) if status_code(&error) == Some(403) => Ok(None),
        Err(error) => Err(explain(server, error)),
    }
}

/// The architectures `nodes` are labelled with; `None` when none is.
fn of(nodes: &[Node]) -> Option<BTreeSet<String>> {
    let found: BTreeSet<String> = nodes
        .iter()
        .filter_map(|node| node.metadata.labels.as_ref()?.get(ARCH_LABEL).cloned())
        .filter(|arch| !arch.is_empty())
        .collect();
    (!found.is_empty()).then_some(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn node(arch: Option<&str>) -> Node {
        Node {
            metadata: ObjectMeta {
                labels: arch.map(|a| [(ARCH_LABEL.to_string(), a.to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Node::default()
        }
    }

    #[test]
    fn the_architectures_are_the_labels_of_the_nodes_that_have_one() {
        let nodes = [
            node(Some("arm64")),
            node(None),
            node(Some("amd64")),
            node(Some("arm64")),
        ];
        assert_eq!(
            of(&nodes),
            Some(BTreeSet::from(["amd64".to_string(), "arm64".to_string()]))
        );
        assert_eq!(of(&[node(None)]), None, "no node says: not known");
        assert_eq!(of(&[]), None, "no node yet: not known");
    }

    #[test]
    fn a_user_who_may_not_list_nodes_does_not_know_their_architectures() {
        let forbidden = kube::core::Status::failure(
            "nodes is forbidden: User \"dev\" cannot list resource \"nodes\" in API group \"\" at the cluster scope",
            "Forbidden",
        )
        .with_code(403);
        let answered = answer("https://c", Err(kube::Error::Api(forbidden.boxed())));
        assert!(matches!(answered, Ok(None)), "{answered:?}");
        let broken = kube::core::Status::failure("etcd is down", "InternalError").with_code(500);
        let answered = answer("https://c", Err(kube::Error::Api(broken.boxed())));
        assert!(
            matches!(answered, Err(ClusterError::Refused(_))),
            "{answered:?}"
        );
        let answered = answer("https://c", Ok(vec![node(Some("arm64"))]));
        assert_eq!(
            answered.ok().flatten(),
            Some(BTreeSet::from(["arm64".to_string()]))
        );
    }
}
