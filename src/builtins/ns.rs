//! `ns [-c] [NAMESPACE]`: list the namespaces, or switch this shell to one;
//! a missing namespace is created with `-c`, or after asking at a terminal.

use std::io::{BufRead, IsTerminal, Write};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};

use super::{Failure, Outcome, Streams};
use crate::cluster::connection::status_code;
use crate::launch::names::is_rfc1035_label;
use crate::shell::Shell;

const USAGE: &str = "usage: ns [-c] [NAMESPACE]";

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let (create, name) = match args {
        [] => (false, None),
        [flag, name] if flag == "-c" || flag == "--create" => (true, Some(name)),
        [name] if !name.starts_with('-') => (false, Some(name)),
        _ => return Err(Failure::Usage(USAGE.to_string())),
    };
    let current = shell.target.namespace.clone();
    let connection = shell.connect()?;
    let api: Api<Namespace> = Api::all(connection.client.clone());
    let Some(name) = name else {
        let list = connection
            .block_on(api.list(&ListParams::default()))
            .map_err(|e| connection.explain(e))?;
        let out = &mut *streams.out;
        for namespace in list.items {
            let name = namespace.metadata.name.unwrap_or_default();
            let mark = if name == current { "*" } else { " " };
            writeln!(out, "{mark} {name}")?;
        }
        return Ok(0);
    };
    if !is_rfc1035_label(name)
        && !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(Failure::Usage(format!(
            "{name:?} is not a valid namespace name"
        )));
    }
    match connection.block_on(api.get(name)) {
        Ok(_) => {}
        Err(error) if status_code(&error) == Some(404) => {
            if !create
                && !confirm(
                    &format!("namespace {name} does not exist; create it? [y/N] "),
                    streams.err,
                )
            {
                return Err(Failure::Failed(format!(
                    "namespace {name} does not exist; `ns -c {name}` creates it"
                )));
            }
            let namespace = Namespace {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            connection
                .block_on(api.create(&PostParams::default(), &namespace))
                .map_err(|e| connection.explain(e))?;
            writeln!(streams.out, "namespace {name} created")?;
        }
        Err(error) => return Err(connection.explain(error).into()),
    }
    shell.target.namespace = name.clone();
    writeln!(streams.out, "namespace {name}")?;
    Ok(0)
}

/// Asks a yes/no question when a person is at the terminal.
fn confirm(question: &str, err: &mut dyn Write) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    let _ = write!(err, "{question}");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok()
        && matches!(answer.trim(), "y" | "Y" | "yes")
}
