//! `ps [-a] [-o json|yaml]`: the dprocs of the current environment (`-a`:
//! all), read from the cluster.

use super::{Failure, Outcome, Streams};
use crate::cluster::dprocs::{self, human_age};
use crate::shell::Shell;

const USAGE: &str = "usage: ps [-a] [-o json|yaml]";

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let mut all = false;
    let mut format = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-a" | "--all" => all = true,
            "-o" | "--output" => match args.next().map(String::as_str) {
                Some(f @ ("json" | "yaml")) => format = Some(f.to_string()),
                _ => return Err(Failure::Usage(format!("-o takes json or yaml; {USAGE}"))),
            },
            other => return Err(Failure::Usage(format!("{other:?}: {USAGE}"))),
        }
    }
    let namespace = shell.target.namespace.clone();
    let environment = if all {
        None
    } else {
        Some(shell.target.environment_label())
    };
    let connection = shell.connect()?;
    let list = dprocs::list(connection, &namespace, environment.as_deref())?;
    shell.known_dprocs = list
        .iter()
        .flat_map(|d| [d.name.clone(), d.id.clone()])
        .collect();
    let out = &mut *streams.out;
    match format.as_deref() {
        Some("json") => {
            let text = serde_json::to_string_pretty(&list).map_err(|e| Failure::Encode {
                format: "JSON",
                source: e.into(),
            })?;
            writeln!(out, "{text}")?;
        }
        Some(_) => {
            let text = serde_saphyr::to_string(&list).map_err(|e| Failure::Encode {
                format: "YAML",
                source: e.into(),
            })?;
            write!(out, "{text}")?;
        }
        None => {
            let rows: Vec<[String; 9]> = list
                .iter()
                .map(|d| {
                    [
                        d.id.clone(),
                        d.environment.clone(),
                        d.source.clone(),
                        d.kind.clone(),
                        d.status.clone(),
                        d.ready.clone(),
                        d.restarts.to_string(),
                        human_age(d.age_seconds),
                        d.url.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            let header = [
                "DPID", "ENV", "SOURCE", "KIND", "STATUS", "READY", "RESTARTS", "AGE", "URL",
            ]
            .map(String::from);
            let mut widths = header.clone().map(|h| h.chars().count());
            for row in &rows {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.chars().count());
                }
            }
            for row in std::iter::once(&header).chain(&rows) {
                let cells: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                writeln!(out, "{}", cells.join("  ").trim_end())?;
            }
        }
    }
    Ok(0)
}
