//! `env`: list the shell's variables and where each comes from; and
//! environments — named groups of dprocs in one namespace, kept as a label
//! on their objects: `env list|create|select|delete`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};

use super::{Failure, Outcome, Streams};
use crate::cluster::dprocs;
use crate::labels::{GLOBAL_ENVIRONMENT, LABEL_ENVIRONMENT};
use crate::launch::names::{LabelProblem, MAX_LABEL, label_problem};
use crate::launch::objects::EnvSource;
use crate::shell::Shell;
use crate::syntax::quote;

const USAGE: &str =
    "usage: env, env list, env create NAME, env select [NAME], env delete [--purge] NAME";

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    match args.first().map(String::as_str) {
        None => {
            shell.refresh_cluster_env();
            variables(shell, streams)
        }
        Some("list") => list(shell, streams),
        Some("create") => create(shell, &args[1..], streams),
        Some("select") => select(shell, &args[1..], streams),
        Some("delete") => delete(shell, &args[1..], streams),
        Some(other) => Err(Failure::Usage(format!("{other:?}: {USAGE}"))),
    }
}

fn variables(shell: &Shell, streams: &mut Streams<'_>) -> Outcome {
    let out = &mut *streams.out;
    for (name, variable) in shell.vars.iter() {
        writeln!(
            out,
            "{:<9}{name}={}",
            variable.origin.label(),
            quote(&variable.value)
        )?;
    }
    for source in &shell.env_from {
        match source {
            EnvSource::ConfigMap(name) => {
                writeln!(out, "{:<9}every key of configmap {name}", "exported")?
            }
            EnvSource::Secret(name) => writeln!(
                out,
                "{:<9}every key of secret {name} (values not shown)",
                "exported"
            )?,
        }
    }
    Ok(0)
}

fn list(shell: &mut Shell, streams: &mut Streams<'_>) -> Outcome {
    let namespace = shell.target.namespace.clone();
    let selected = shell.target.environment_label();
    let connection = shell.connect()?;
    let all = dprocs::list(connection, &namespace, None)?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    counts.insert(GLOBAL_ENVIRONMENT.to_string(), 0);
    counts.insert(selected.clone(), 0);
    for dproc in &all {
        *counts.entry(dproc.environment.clone()).or_default() += 1;
    }
    let out = &mut *streams.out;
    for (name, count) in counts {
        let mark = if name == selected { "*" } else { " " };
        writeln!(out, "{mark} {name:<20} {count} dproc(s)")?;
    }
    Ok(0)
}

fn valid_name(name: &str) -> Result<(), Failure> {
    match label_problem(name) {
        None => Ok(()),
        Some(LabelProblem::TooLong(length)) => Err(Failure::Usage(format!(
            "{name:?} is too long for an environment name ({length} characters; at most {MAX_LABEL})"
        ))),
        Some(LabelProblem::BadCharacters) => Err(Failure::Usage(format!(
            "{name:?} is not a valid environment name: lower-case letters, digits and `-`, starting with a letter"
        ))),
    }
}

fn create(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let [name] = args else {
        return Err(Failure::Usage(format!("usage: env create NAME; {USAGE}")));
    };
    valid_name(name)?;
    shell.target.environment = (name != GLOBAL_ENVIRONMENT).then(|| name.clone());
    shell.refresh_cluster_env();
    writeln!(
        streams.out,
        "environment {name} selected: programs launched from now on belong to it"
    )?;
    Ok(0)
}

fn select(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    match args {
        [] => {
            shell.target.environment = None;
            writeln!(streams.out, "environment {GLOBAL_ENVIRONMENT} selected")?;
            Ok(0)
        }
        [name] => {
            valid_name(name)?;
            shell.target.environment = (name != GLOBAL_ENVIRONMENT).then(|| name.clone());
            shell.refresh_cluster_env();
            writeln!(streams.out, "environment {name} selected")?;
            Ok(0)
        }
        _ => Err(Failure::Usage(format!("usage: env select [NAME]; {USAGE}"))),
    }
}

fn delete(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let (purge, name) = match args {
        [flag, name] if flag == "--purge" => (true, name),
        [name] => (false, name),
        _ => {
            return Err(Failure::Usage(format!(
                "usage: env delete [--purge] NAME; {USAGE}"
            )));
        }
    };
    valid_name(name)?;
    if name == GLOBAL_ENVIRONMENT {
        return Err(Failure::Failed(format!(
            "the {GLOBAL_ENVIRONMENT} environment cannot be deleted"
        )));
    }
    let namespace = shell.target.namespace.clone();
    let selected = shell.target.environment.as_deref() == Some(name.as_str());
    let connection = shell.connect()?;
    let members = dprocs::list(connection, &namespace, Some(name))?;
    // An environment is its dprocs (and the selected one, before any).
    if members.is_empty() && !selected {
        return Err(Failure::Failed(format!(
            "{name}: no such environment in namespace {namespace}: no dproc belongs to it; \
             `env list` lists them"
        )));
    }
    let out = &mut *streams.out;
    for dproc in &members {
        if purge {
            dprocs::delete(connection, &namespace, dproc).map_err(|source| Failure::About {
                name: dproc.name.clone(),
                source,
            })?;
            writeln!(out, "killed {} ({})", dproc.name, dproc.id)?;
            continue;
        }
        // Only the objects' own labels change: the pods keep running.
        let patch = serde_json::json!({ "metadata": { "labels": { LABEL_ENVIRONMENT: GLOBAL_ENVIRONMENT } } });
        let params = PatchParams::default();
        let result = if dproc.kind == "deployment" {
            let api: Api<Deployment> = Api::namespaced(connection.client.clone(), &namespace);
            connection
                .block_on(api.patch(&dproc.name, &params, &Patch::Merge(&patch)))
                .map(|_| ())
        } else {
            let api: Api<Pod> = Api::namespaced(connection.client.clone(), &namespace);
            connection
                .block_on(api.patch(&dproc.name, &params, &Patch::Merge(&patch)))
                .map(|_| ())
        };
        result.map_err(|e| Failure::About {
            name: dproc.name.clone(),
            source: connection.explain(e),
        })?;
        writeln!(
            out,
            "moved {} ({}) to {GLOBAL_ENVIRONMENT}",
            dproc.name, dproc.id
        )?;
    }
    if shell.target.environment.as_deref() == Some(name.as_str()) {
        shell.target.environment = None;
    }
    writeln!(out, "environment {name} deleted")?;
    Ok(0)
}
