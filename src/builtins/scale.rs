//! `scale NAME N`: set the number of replicas of a background dproc, and
//! wait until that many are ready (Ctrl-C stops waiting).

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};

use super::{Failure, Outcome, Streams};
use crate::cluster::dprocs;
use crate::launch::wait::{self, Replicas};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let [key, count] = args else {
        return Err(Failure::Usage("usage: scale NAME N".into()));
    };
    let replicas: i32 = count
        .parse()
        .ok()
        .filter(|n| (0..=100).contains(n))
        .ok_or_else(|| Failure::Usage(format!("{count:?} is not a number of replicas (0–100)")))?;
    let namespace = shell.target.namespace.clone();
    let interrupt = shell.interrupt.clone();
    let connection = shell.connect()?;
    let dproc = dprocs::lookup(connection, &namespace, key)?;
    if dproc.kind != "deployment" {
        return Err(Failure::Failed(format!(
            "{key}: runs in the foreground (a pod); only background dprocs scale"
        )));
    }
    if dproc.id.is_empty() {
        return Err(Failure::Failed(format!(
            "{key}: its Deployment has no dproc id label, so its pods cannot be found; \
             `kill {key}` and launch it again"
        )));
    }
    let api: Api<Deployment> = Api::namespaced(connection.client.clone(), &namespace);
    let patch = serde_json::json!({ "spec": { "replicas": replicas } });
    connection
        .block_on(api.patch_scale(&dproc.name, &PatchParams::default(), &Patch::Merge(&patch)))
        .map_err(|e| connection.explain(e))?;
    let wanted = Replicas {
        namespace: &namespace,
        name: &dproc.name,
        dproc_id: &dproc.id,
        count: replicas,
    };
    let took = wait::scaled(connection, &interrupt, &wanted)?;
    let out = &mut *streams.out;
    match replicas {
        0 => writeln!(out, "{} scaled to 0", dproc.name)?,
        n => writeln!(
            out,
            "{} scaled to {n}, all ready in {:.1} s",
            dproc.name,
            took.as_secs_f64()
        )?,
    }
    Ok(0)
}
