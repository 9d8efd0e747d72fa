//! Controllers: the loops that make the cluster converge (deployments,
//! replica sets, garbage collection, namespaces, endpoints).

use std::sync::Arc;

use crate::Shared;

pub async fn run(shared: Arc<Shared>) {
    let _ = shared;
}
