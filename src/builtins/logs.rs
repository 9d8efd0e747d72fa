//! `logs [-f] [--tail N] NAME|DPID`: a dproc's output from all its pods,
//! each line prefixed with its pod when there is more than one.

use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};

use super::{Failure, Outcome, Streams};
use crate::cluster::{ClusterError, dprocs};
use crate::labels::LABEL_DPROC;
use crate::shell::Shell;
use crate::status::STATUS_INTERRUPTED;

const USAGE: &str = "usage: logs [-f] [--tail N] NAME|DPID";

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let mut follow = false;
    let mut tail = None;
    let mut key = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-f" | "--follow" => follow = true,
            "--tail" | "-n" => {
                let n = args.next().and_then(|n| n.parse::<i64>().ok());
                tail =
                    Some(n.ok_or_else(|| {
                        Failure::Usage(format!("--tail takes a number; {USAGE}"))
                    })?);
            }
            other if key.is_none() && !other.starts_with('-') => key = Some(other.to_string()),
            other => return Err(Failure::Usage(format!("{other:?}: {USAGE}"))),
        }
    }
    let key = key.ok_or_else(|| Failure::Usage(USAGE.to_string()))?;
    let namespace = shell.target.namespace.clone();
    let interrupt = shell.interrupt.clone();
    let connection = shell.connect()?;
    let list = dprocs::list(connection, &namespace, None)?;
    let dproc = dprocs::matching(&list, &key)
        .last()
        .copied()
        .ok_or_else(|| {
            Failure::Failed(format!(
                "{key}: no dproc with that name or id; `ps -a` lists them"
            ))
        })?;
    let pods: Api<Pod> = Api::namespaced(connection.client.clone(), &namespace);
    let selector = format!("{LABEL_DPROC}={}", dproc.id);
    let names: Vec<String> = connection
        .block_on(pods.list(&ListParams::default().labels(&selector)))
        .map_err(|e| connection.explain(e))?
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    if names.is_empty() {
        return Err(Failure::Failed(format!("{key}: has no pods yet")));
    }
    let prefixed = names.len() > 1;
    let params = LogParams {
        follow,
        tail_lines: tail,
        container: Some("main".to_string()),
        ..LogParams::default()
    };
    // The pods' streams take turns writing whole lines.
    let out = std::cell::RefCell::new(&mut *streams.out);
    let out = &out;
    let per_pod = names.into_iter().map(|name| {
        let pods = pods.clone();
        let params = params.clone();
        async move {
            let stream = pods.log_stream(&name, &params).await?;
            let mut lines = std::pin::pin!(stream.lines());
            while let Some(line) = lines.next().await {
                let line = line.map_err(kube::Error::ReadEvents)?;
                let mut out = out.borrow_mut();
                let _ = if prefixed {
                    writeln!(out, "[{name}] {line}")
                } else {
                    writeln!(out, "{line}")
                };
            }
            Ok::<(), kube::Error>(())
        }
    });
    match connection.until_interrupted(&interrupt, futures_util::future::join_all(per_pod)) {
        Ok(results) => {
            for result in results {
                result.map_err(|e| connection.explain(e))?;
            }
            Ok(0)
        }
        Err(ClusterError::Interrupted) => Ok(STATUS_INTERRUPTED),
        Err(error) => Err(error.into()),
    }
}
