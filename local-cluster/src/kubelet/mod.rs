//! The process runner ("kubelet"): runs each pod's containers as local
//! processes and reports their state in the pod status.

use std::path::PathBuf;
use std::sync::Arc;

use crate::Shared;

pub const NODE_NAME: &str = "kubesh-local";

pub struct Kubelet {
    pub root: PathBuf,
}

impl Kubelet {
    pub fn new(root: PathBuf) -> Kubelet {
        Kubelet { root }
    }
    pub async fn stop_all(&self) {}
    pub fn all_pids(&self) -> Vec<u32> {
        Vec::new()
    }
}

pub async fn run(shared: Arc<Shared>) {
    let _ = shared;
}
