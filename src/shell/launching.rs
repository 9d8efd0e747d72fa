//! From a command to a launch: the program it names, the request its
//! prefixes and the shell's variables make, the plan; the launch itself
//! (`crate::launch::start`); then, in one place, what the shell keeps of
//! it (the cluster env, hot reload, clean-up at exit).

use std::io::Write;
use std::time::Instant;

use k8s_openapi::api::core::v1::Service;

use super::{Invocation, Shell};
use crate::cluster::dprocs::Launched;
use crate::cluster::nodes;
use crate::launch::program::{Program, ProgramError};
use crate::launch::{self, Outcome, Request, bundle, objects, plan, program};
use crate::runtimes::Runtime;
use crate::status::STATUS_USAGE;
use crate::syntax::quote_all;

/// Variables that steer kubesh rather than the program: not passed on.
const SETTINGS: &[&str] = &[
    "SERVICE_NAME",
    "SERVICE_PORT",
    "REPLICAS",
    "HOTRELOAD",
    "BUNDLE_MAX_MB",
    "BUNDLE_MAX_FILES",
    "KEEP_POD",
    "POD_SECURITY",
    "CPU_REQUEST",
    "MEMORY_REQUEST",
    "BUILD",
    "BUILD_ARGS",
    launch::delivery::REGISTRY,
];

/// The program an invocation names, if it names one: a runtime's command
/// with its file, or a file kubesh can run. `Ok(None)`: neither.
pub fn resolve(shell: &Shell, invocation: &Invocation) -> Result<Option<Program>, ProgramError> {
    let image_for = |runtime: &Runtime| {
        setting(
            shell,
            invocation,
            &format!("{}_IMAGE", runtime.name.to_uppercase()),
        )
    };
    program::resolve(&invocation.args, &shell.runtimes, &image_for)
}

/// The architectures of the cluster's nodes, for a binary: `None` when they
/// cannot be known — a cluster that does not let this user list nodes, as
/// many namespaced roles do not. Nothing is said then: the user can do
/// nothing about it, and the binary runs unpinned.
fn node_archs(shell: &mut Shell) -> Option<std::collections::BTreeSet<String>> {
    let debug = shell.debug;
    let connection = shell.connect().ok()?;
    let listed = connection.block_on(nodes::architectures(&connection.client, &connection.server));
    match listed {
        Ok(archs) => archs,
        Err(error) => {
            if debug {
                report!("debug: the nodes' architectures are not known: {error}");
            }
            None
        }
    }
}

/// Launches `program` as `invocation` asks and records what came of it;
/// returns its exit status.
pub fn launch(shell: &mut Shell, invocation: &Invocation, mut program: Program) -> i32 {
    if !shell.dry_run
        && let Err(error) = shell.connect()
    {
        report!("kubesh: {}: {error}", invocation.args[0]);
        return 1;
    }
    // `--dry-run` asks no cluster: a binary is shown unpinned.
    if program.built_for.is_some() && !shell.dry_run {
        let nodes = node_archs(shell);
        if let Err(error) = program::place(&mut program, nodes.as_ref()) {
            report!("kubesh: {error}");
            return error.status();
        }
    }
    let mut request = request(shell, invocation, program);
    // Unless POD_SECURITY says, the namespace decides the profile.
    if request.settings.pod_security.is_none()
        && !shell.dry_run
        && let Ok(connection) = shell.connect()
    {
        request.settings.namespace_restricted =
            launch::profile::namespace_restricted(connection, &request.settings.namespace);
    }
    let planning = Instant::now();
    let (mut spec, bundle) = match request.plan() {
        Ok(planned) => planned,
        Err(error) => {
            report!("kubesh: {error}");
            return STATUS_USAGE;
        }
    };
    // A Dockerfile: the program runs in the image built from it.
    let build_setting = setting(shell, invocation, "BUILD");
    let build_args = setting(shell, invocation, "BUILD_ARGS");
    let build = match launch::image::wanted(
        &request.program,
        build_setting.as_deref(),
        build_args.as_deref(),
        &bundle,
    ) {
        Ok(build) => build,
        Err(error) => {
            report!("kubesh: {error}");
            return STATUS_USAGE;
        }
    };
    // Where the image goes: the registry KUBESH_REGISTRY names, else the
    // cluster's nodes as they are found.
    let registry = setting(shell, invocation, launch::delivery::REGISTRY)
        .filter(|value| !value.trim().is_empty());
    if let Some(build) = &build {
        let image = match launch::delivery::reference(&build.tag, registry.as_deref()) {
            Ok(image) => image,
            Err(error) => {
                report!("kubesh: {error}");
                return STATUS_USAGE;
            }
        };
        // The unpack step runs in the program's image unless UNPACK_IMAGE
        // names another.
        if request
            .settings
            .unpack_image
            .as_deref()
            .is_none_or(|image| image.trim().is_empty())
        {
            spec.unpack_image = image.clone();
        }
        spec.program.image = image.clone();
        request.program.image = image;
        spec.build = Some(launch::image::Rebuild {
            build: build.clone(),
            registry: registry.clone(),
            cluster: cluster_name(shell),
            server: shell
                .connection
                .as_ref()
                .map(|connection| connection.server.clone())
                .unwrap_or_default(),
        });
        if !shell.dry_run {
            let built = match shell.connect() {
                Ok(connection) => connection.block_on(launch::image::build(
                    request.program.shown(),
                    build,
                    &bundle,
                    launch::image::Progress::Line,
                )),
                Err(error) => {
                    report!("kubesh: {}: {error}", invocation.args[0]);
                    return 1;
                }
            };
            match built {
                Ok(launch::image::Built::Now(took)) => report!(
                    "kubesh: built {} from {} in {:.1} s",
                    build.tag,
                    build.dockerfile,
                    took.as_secs_f64()
                ),
                Ok(launch::image::Built::AlreadyThere) => {}
                Err(error) => {
                    report!("kubesh: {error}");
                    return 1;
                }
            }
            if let Err(status) = deliver(shell, &build.tag, registry.as_deref()) {
                return status;
            }
        }
    }
    if shell.debug {
        report!(
            "debug: {} planned in {:.1} ms: {} file(s), bundle {} in {} ConfigMap(s)",
            spec.name,
            planning.elapsed().as_secs_f64() * 1000.0,
            bundle.files.len(),
            bundle::human(bundle.archive.len() as u64),
            spec.chunks
        );
    }
    if !bundle.credentials_left_out.is_empty() {
        report!(
            "kubesh: left out of the bundle, as they look like credentials: {}; pass \
             secrets with `export --from-secret`, or name the file as the program to ship it",
            bundle
                .credentials_left_out
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !bundle.links_left_out.is_empty() {
        report!(
            "kubesh: left out of the bundle, as they point outside the program's directory: {}",
            bundle.links_left_out.join(", ")
        );
    }
    if shell.dry_run {
        if let Some(build) = &build {
            let args = match build.shown_args() {
                args if args.is_empty() => String::new(),
                args => format!(", with the build arguments {args}"),
            };
            println!(
                "# {}: image {} would be built from {} through the Docker engine{args}",
                spec.name, build.tag, build.dockerfile
            );
            println!(
                "# {}: {}",
                spec.name,
                launch::delivery::dry_run_note(&build.tag, registry.as_deref())
            );
        }
        return print_objects(&spec, &bundle, &request.settings);
    }
    // Known before it starts: a launch that fails or is interrupted may
    // leave objects that clean-up at exit removes.
    shell.launched.push(Launched {
        name: spec.name.clone(),
        namespace: spec.namespace.clone(),
        background: spec.background,
    });
    let interrupt = shell.interrupt.clone();
    let requests_before = shell.requests.count();
    let outcome = match shell.connect() {
        Ok(connection) => launch::start(connection, &interrupt, &request, &spec, &bundle),
        Err(error) => Err(error.into()),
    };
    let watch = hot_reload(shell, invocation);
    match outcome {
        Ok(Outcome::Ready {
            service,
            took,
            listen_port,
        }) => {
            if shell.debug {
                report!(
                    "debug: {} ready after {} API request(s), watches not counted",
                    spec.name,
                    shell.requests.count() - requests_before
                );
            }
            let spec = objects::Spec {
                listen_port,
                ..spec
            };
            after_ready(shell, &spec, &bundle, *service, took, watch);
            0
        }
        Ok(Outcome::Ended { status, reruns }) => {
            shell.launched.extend(reruns);
            status
        }
        Err(error) => {
            report!("kubesh: {error}");
            // One rule for every failed launch: what it created stays, to
            // be looked at, and the user is told so.
            if error.leaves_dproc() {
                let name = &spec.name;
                // Completed after `kill`, `logs` and `watch` like any other.
                if !shell.known_dprocs.contains(name) {
                    shell.known_dprocs.push(name.clone());
                }
                let reload = if error.fixed_by_a_change_of_code() && spec.background {
                    reload_a_fix(shell, &spec, &bundle, watch)
                } else {
                    String::new()
                };
                report!(
                    "kubesh: {name} ({}) stays: `ps` shows it, `logs {name}` its output, `kill {name}` removes it{reload}",
                    spec.dproc_id,
                );
            }
            1
        }
    }
}

/// Delivers the built image `tag` to the cluster (pushed to `registry`
/// when set), saying what was done; `Err` holds the exit status when it
/// cannot be, nothing having been created.
fn deliver(shell: &mut Shell, tag: &str, registry: Option<&str>) -> Result<(), i32> {
    let cluster = cluster_name(shell);
    let interrupt = shell.interrupt.clone();
    let connection = shell.connect().map_err(|error| {
        report!("kubesh: {error}");
        1
    })?;
    let delivery = launch::delivery::deliver(
        &connection.client,
        &connection.server,
        &cluster,
        tag,
        registry,
        true,
    );
    let delivered = match connection.until_interrupted(&interrupt, delivery) {
        Ok(delivered) => delivered,
        Err(_) => Err(launch::delivery::DeliveryError::Interrupted(
            tag.to_string(),
        )),
    };
    match delivered {
        Ok(delivered) => {
            if let Some(line) = delivered.said(tag) {
                report!("kubesh: {line}");
            }
            Ok(())
        }
        Err(error) => {
            report!("kubesh: {error}");
            Err(1)
        }
    }
}

/// The cluster of the current context, as messages name it.
fn cluster_name(shell: &Shell) -> String {
    match &shell.target.context {
        Some(context) => format!("the cluster of context {context}"),
        None => "the cluster kubesh runs in".to_string(),
    }
}

/// The launch an invocation asks for: its settings from the command's
/// prefixes, then the shell's variables.
fn request(shell: &Shell, invocation: &Invocation, program: Program) -> Request {
    let mut env: Vec<(String, String)> = shell
        .vars
        .for_programs()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    env.extend(invocation.prefixes.iter().cloned());
    env.retain(|(name, _)| !SETTINGS.contains(&name.as_str()) && !name.ends_with("_IMAGE"));
    let mut command_line = quote_all(&invocation.args);
    if invocation.background {
        command_line.push_str(" &");
    }
    let settings = plan::Settings {
        service_name: setting(shell, invocation, "SERVICE_NAME"),
        service_port: setting(shell, invocation, "SERVICE_PORT"),
        replicas: setting(shell, invocation, "REPLICAS"),
        bundle_max_mb: setting(shell, invocation, "BUNDLE_MAX_MB"),
        bundle_max_files: setting(shell, invocation, "BUNDLE_MAX_FILES"),
        namespace: shell.target.namespace.clone(),
        environment: shell.target.environment.clone(),
        env,
        env_from: shell.env_from.clone(),
        command_line,
        stdin: !shell.stdin_is_script,
        keep_pod: matches!(
            setting(shell, invocation, "KEEP_POD").as_deref(),
            Some("true" | "1" | "yes" | "on")
        ),
        pod_security: setting(shell, invocation, "POD_SECURITY"),
        namespace_restricted: None,
        cpu_request: setting(shell, invocation, "CPU_REQUEST"),
        memory_request: setting(shell, invocation, "MEMORY_REQUEST"),
        unpack_image: setting(shell, invocation, "UNPACK_IMAGE"),
    };
    // A foreground program runs again on changes until Ctrl-C: at the
    // prompt whenever hot reload is on, in a script only when asked for on
    // that very command (`HOTRELOAD=true python job.py`), so that `--watch`
    // never stops a script at its first program; never when it has no
    // files of its own (`python -c CODE`).
    let rerun = !invocation.background
        && program.files.is_some()
        && hot_reload(shell, invocation)
        && (shell.interactive || invocation.prefixes.iter().any(|(n, _)| n == "HOTRELOAD"));
    Request {
        program,
        background: invocation.background,
        rerun,
        settings,
    }
}

/// What follows a background dproc becoming ready: its variables in the
/// After a background launch that failed for a fault of the program's
/// own: its dproc can be hot-reloaded, and is when hot reload is on, so
/// that a saved fix reaches it without a new launch. What the line that
/// says the dproc stays adds about it.
fn reload_a_fix(
    shell: &mut Shell,
    spec: &objects::Spec,
    bundle: &bundle::Bundle,
    watch: bool,
) -> String {
    // A program without files of its own has nothing to watch.
    if spec.program.files.is_none() {
        return String::new();
    }
    shell
        .watchable
        .insert(spec.name.clone(), (spec.clone(), bundle.digests.clone()));
    if !watch {
        // At the prompt, `watch` is there to type; a script ends first.
        return match shell.interactive {
            true => format!("; after `watch {}` a saved fix reloads it", spec.name),
            false => String::new(),
        };
    }
    match shell.watch(&spec.name) {
        Ok(()) => "; it is watched: a saved fix reloads it".to_string(),
        Err(error) => format!("; it is not watched: {error}"),
    }
}

/// cluster env, hot reload if asked for, and the line saying where it is.
fn after_ready(
    shell: &mut Shell,
    spec: &objects::Spec,
    bundle: &bundle::Bundle,
    service: Service,
    took: std::time::Duration,
    watch: bool,
) {
    shell.known_dprocs.push(spec.name.clone());
    // The new Service's variables, without asking the cluster again.
    let mut cluster_env: Vec<(String, String)> = shell
        .vars
        .iter()
        .filter(|(_, v)| v.origin == super::vars::Origin::Cluster)
        .map(|(n, v)| (n.to_string(), v.value.clone()))
        .collect();
    cluster_env.extend(crate::cluster::cluster_env::variables(&[service]));
    shell.vars.set_cluster(cluster_env);
    shell
        .watchable
        .insert(spec.name.clone(), (spec.clone(), bundle.digests.clone()));
    // A program without files of its own has nothing to watch.
    if watch
        && spec.program.files.is_some()
        && let Err(error) = shell.watch(&spec.name)
    {
        report!("kubesh: {}: not watched: {error}", spec.name);
    }
    let url = format!("http://{}:{}", spec.name, spec.port);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}  {}  ready in {:.1} s  {url}",
        spec.dproc_id,
        spec.name,
        took.as_secs_f64()
    );
}

/// Whether this launch is hot-reloaded: `HOTRELOAD` as a prefix or variable.
fn hot_reload(shell: &Shell, invocation: &Invocation) -> bool {
    matches!(
        setting(shell, invocation, "HOTRELOAD").as_deref(),
        Some("true" | "1" | "yes" | "on")
    )
}

/// A setting for this launch: a per-command prefix, else a shell variable.
fn setting(shell: &Shell, invocation: &Invocation, name: &str) -> Option<String> {
    invocation
        .prefixes
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .or_else(|| shell.vars.get(name))
}

/// `--dry-run`: the objects as YAML documents, nothing created, after a
/// comment saying which security profile and requests the launch uses.
fn print_objects(spec: &objects::Spec, bundle: &bundle::Bundle, settings: &plan::Settings) -> i32 {
    let chunks: Vec<&[u8]> = bundle.chunks().collect();
    let mut documents = Vec::new();
    let mut push = |yaml: Result<String, serde_saphyr::ser::Error>| match yaml {
        Ok(text) => documents.push(text),
        Err(error) => report!("kubesh: an object cannot be shown as YAML: {error}"),
    };
    if spec.background {
        push(serde_saphyr::to_string(&objects::deployment(spec)));
        push(serde_saphyr::to_string(&objects::service(spec, None)));
    } else {
        push(serde_saphyr::to_string(&objects::pod(spec)));
    }
    for config_map in objects::config_maps(spec, &chunks, None) {
        push(serde_saphyr::to_string(&config_map));
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "# {}: security profile {} ({}); requests per container: {} ({} defaults; \
         CPU_REQUEST, MEMORY_REQUEST)",
        spec.name,
        spec.profile.name(),
        settings.profile_reason(),
        spec.requests.describe(),
        spec.program.runtime.name
    );
    for document in documents {
        let _ = write!(out, "---\n{document}");
    }
    0
}
