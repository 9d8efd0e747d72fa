//! `kubesh local-cluster start|stop|status|reset`: the user's local
//! cluster, managed from any terminal. Each returns kubesh's exit status.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use super::{LocalError, Place, Running};
use crate::cli::LocalAction;
use crate::cluster::trace::RequestLog;
use crate::cluster::{ClusterError, ClusterTarget, Connection};

/// The exit status of `status` when the cluster is not running (as
/// `systemctl status` says "inactive").
const NOT_RUNNING: i32 = 3;

pub fn run(action: &LocalAction) -> i32 {
    let place = match Place::user() {
        Ok(place) => place,
        Err(error) => {
            report!("kubesh: local-cluster: {error}");
            return 1;
        }
    };
    let outcome = match action {
        LocalAction::Start => start(&place),
        LocalAction::Stop => stop(&place),
        LocalAction::Status => status(&place),
        LocalAction::Reset { yes } => reset(&place, *yes),
    };
    outcome.unwrap_or_else(|error| {
        report!("kubesh: local-cluster: {error}");
        1
    })
}

fn start(place: &Place) -> Result<i32, LocalError> {
    let running = super::ensure(place)?;
    let mut out = std::io::stdout().lock();
    if running.started_now {
        for line in &running.banner {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(
            out,
            "started the local cluster (pid {})",
            running.record.pid
        );
    } else {
        let _ = writeln!(
            out,
            "the local cluster is already running (pid {}, up {})",
            running.record.pid,
            super::duration_words(running.record.uptime())
        );
        for unapplied in running.unapplied_settings() {
            report!("kubesh: local-cluster: warning: {unapplied}");
        }
    }
    describe(&mut out, place, &running);
    let _ = writeln!(
        out,
        "try: KUBECONFIG={} kubectl get pods -A",
        running.record.kubeconfig.display()
    );
    Ok(0)
}

fn stop(place: &Place) -> Result<i32, LocalError> {
    let mut out = std::io::stdout().lock();
    match super::stop(place)? {
        Some(record) => {
            let _ = writeln!(
                out,
                "stopped the local cluster (pid {}) and its pods; `kubesh local-cluster start` or `kubesh --local` starts it again",
                record.pid
            );
        }
        None => {
            let _ = writeln!(out, "the local cluster is not running");
        }
    }
    Ok(0)
}

fn status(place: &Place) -> Result<i32, LocalError> {
    let mut out = std::io::stdout().lock();
    let Some(running) = super::find(place)? else {
        let _ = writeln!(
            out,
            "the local cluster is not running (`kubesh local-cluster start` or `kubesh --local` starts it)"
        );
        return Ok(NOT_RUNNING);
    };
    let _ = writeln!(out, "the local cluster is running");
    describe(&mut out, place, &running);
    let _ = writeln!(
        out,
        "  uptime      {}",
        super::duration_words(running.record.uptime())
    );
    match pods(&running.record.kubeconfig) {
        Ok(pods) if pods.is_empty() => {
            let _ = writeln!(out, "  pods        none");
        }
        Ok(pods) => {
            let _ = writeln!(out, "  pods        {}", pods.len());
            let width = pods.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
            for (name, phase) in pods {
                let _ = writeln!(out, "    {name:<width$}  {phase}");
            }
        }
        Err(error) => {
            let _ = writeln!(out, "  pods        unknown: {error}");
        }
    }
    Ok(0)
}

/// Address, kubeconfig, pid and log, one per line.
fn describe(out: &mut impl Write, place: &Place, running: &Running) {
    let _ = writeln!(out, "  address     {}", running.server);
    let _ = writeln!(out, "  kubeconfig  {}", running.record.kubeconfig.display());
    let _ = writeln!(out, "  pid         {}", running.record.pid);
    let _ = writeln!(out, "  log         {}", place.log().display());
}

/// Every pod, `NAMESPACE/NAME` and its phase.
fn pods(kubeconfig: &Path) -> Result<Vec<(String, String)>, ClusterError> {
    let target = ClusterTarget::from_kubeconfig_file(kubeconfig, None, None);
    let connection = Connection::open(&target, &RequestLog::default())?;
    let api: Api<Pod> = Api::all(connection.client.clone());
    let list = connection
        .block_on(api.list(&ListParams::default()))
        .map_err(|error| connection.explain(error))?;
    Ok(list
        .items
        .into_iter()
        .map(|pod| {
            let name = format!(
                "{}/{}",
                pod.metadata.namespace.unwrap_or_default(),
                pod.metadata.name.unwrap_or_default()
            );
            let phase = pod
                .status
                .and_then(|s| s.phase)
                .unwrap_or_else(|| "Pending".to_string());
            (name, phase)
        })
        .collect())
}

fn reset(place: &Place, yes: bool) -> Result<i32, LocalError> {
    let what = format!(
        "the local cluster's state in {}: every object and program in it",
        place.dir().display()
    );
    if !yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            report!(
                "kubesh: local-cluster reset deletes {what}; nothing deleted, as there is no terminal to ask on (`kubesh local-cluster reset --yes` deletes without asking)"
            );
            return Ok(1);
        }
        let running = super::find(place)?
            .map(|r| {
                format!(
                    " (it is running, pid {}, and will be stopped)",
                    r.record.pid
                )
            })
            .unwrap_or_default();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "Delete {what}{running}? [y/N] ");
        let _ = err.flush();
        let mut answer = String::new();
        let _ = stdin.lock().read_line(&mut answer);
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            report!("kubesh: nothing deleted");
            return Ok(1);
        }
    }
    let stopped = super::reset(place)?;
    let mut out = std::io::stdout().lock();
    if let Some(record) = stopped {
        let _ = writeln!(out, "stopped the local cluster (pid {})", record.pid);
    }
    let _ = writeln!(out, "deleted {what}; `kubesh --local` starts an empty one");
    Ok(0)
}

/// `kubesh local-cluster [--port P] [--kubeconfig FILE] [--state DIR]
/// [--images-cache DIR]`: a
/// cluster in the foreground until Ctrl-C or SIGTERM. Without `--state`,
/// on the user's state, so that `kubesh --local` uses it too; a second
/// cluster on the same state is refused.
pub fn foreground(
    port: u16,
    kubeconfig: Option<std::path::PathBuf>,
    state: Option<std::path::PathBuf>,
    images_cache: Option<std::path::PathBuf>,
) -> i32 {
    let (kubeconfig, state, images_cache) = match (kubeconfig, state) {
        (Some(kubeconfig), Some(state)) => (kubeconfig, state, images_cache),
        (kubeconfig, state) => match Place::user() {
            Ok(place) => {
                // On the user's state, the user's cache of images.
                let images_cache = match &state {
                    None => images_cache.or_else(|| Some(place.images_cache().to_path_buf())),
                    Some(_) => images_cache,
                };
                (
                    kubeconfig.unwrap_or_else(|| place.kubeconfig()),
                    state.unwrap_or_else(|| place.state_dir()),
                    images_cache,
                )
            }
            Err(error) => {
                report!("kubesh: local-cluster: {error}");
                return 1;
            }
        },
    };
    let claim = match super::Claim::take(&state, &kubeconfig) {
        Ok(claim) => claim,
        Err(error) => {
            report!("kubesh: local-cluster: {error}");
            return 1;
        }
    };
    let images = match local_cluster::ImagesSetting::from_env() {
        Ok(images) => images,
        Err(error) => {
            report!("kubesh: local-cluster: {error}");
            return 1;
        }
    };
    let options = local_cluster::Options {
        port,
        kubeconfig: Some(kubeconfig),
        state_dir: Some(state),
        images,
        images_cache,
    };
    let status = match local_cluster::run_standalone(options) {
        Ok(()) => 0,
        Err(error) => {
            report!("kubesh: local-cluster: {error:#}");
            1
        }
    };
    // Held until the process has ended (the kernel closes the file then),
    // every pod with it: only then may another cluster start on this
    // state, and only then does `stop` return.
    std::mem::forget(claim);
    status
}
