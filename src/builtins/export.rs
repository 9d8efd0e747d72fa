//! `export [NAME[=value]…]`: mark variables for the programs kubesh launches
//! afterwards; without arguments, list the exported ones.
//! `export --from-configmap NAME` / `--from-secret NAME`: every key of a
//! ConfigMap or Secret becomes a variable of later programs, by reference —
//! kubesh never reads a Secret's values.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;

use super::{Failure, Outcome, Streams};
use crate::cluster::connection::status_code;
use crate::launch::objects::EnvSource;
use crate::shell::Shell;
use crate::shell::vars::is_valid_name;
use crate::syntax::quote;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    if args.is_empty() {
        let out = &mut *streams.out;
        for (name, value) in shell.vars.exported() {
            writeln!(out, "export {name}={}", quote(value))?;
        }
        for source in &shell.env_from {
            match source {
                EnvSource::ConfigMap(name) => writeln!(out, "export --from-configmap {name}")?,
                EnvSource::Secret(name) => writeln!(out, "export --from-secret {name}")?,
            }
        }
        return Ok(0);
    }
    if let [flag, name] = args
        && (flag == "--from-configmap" || flag == "--from-secret")
    {
        return from_object(shell, flag == "--from-secret", name);
    }
    for arg in args {
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (arg.as_str(), None),
        };
        if !is_valid_name(name) {
            return Err(Failure::Usage(format!(
                "{name:?} is not a variable name (letters, digits and `_`, not starting \
                 with a digit); usage: export NAME[=VALUE]… or export --from-configmap|--from-secret NAME"
            )));
        }
        if !shell.vars.export(name, value) {
            return Err(Failure::Failed(format!(
                "{name} is not set; give it a value: export {name}=VALUE"
            )));
        }
    }
    Ok(0)
}

/// Checks the object exists (a Secret by its metadata only) and records it.
fn from_object(shell: &mut Shell, secret: bool, name: &str) -> Outcome {
    let namespace = shell.target.namespace.clone();
    let connection = shell.connect()?;
    let found = if secret {
        let api: Api<Secret> = Api::namespaced(connection.client.clone(), &namespace);
        connection.block_on(api.get_metadata(name)).map(|_| ())
    } else {
        let api: Api<ConfigMap> = Api::namespaced(connection.client.clone(), &namespace);
        connection.block_on(api.get_metadata(name)).map(|_| ())
    };
    let kind = if secret { "secret" } else { "configmap" };
    match found {
        Ok(()) => {}
        Err(error) if status_code(&error) == Some(404) => {
            return Err(Failure::Failed(format!(
                "no {kind} named {name} in namespace {namespace}"
            )));
        }
        Err(error) => return Err(connection.explain(error).into()),
    }
    let source = if secret {
        EnvSource::Secret(name.to_string())
    } else {
        EnvSource::ConfigMap(name.to_string())
    };
    if !shell.env_from.contains(&source) {
        shell.env_from.push(source);
    }
    Ok(0)
}
