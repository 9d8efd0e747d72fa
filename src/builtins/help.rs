//! `help [NAME]`: list the builtins, or print one builtin's page.

use super::{Failure, Outcome, Streams, at_most};
use crate::pages;
use crate::shell::Shell;

pub fn run(_shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    at_most(args, 1, "help [NAME]")?;
    let out = &mut *streams.out;
    if let Some(name) = args.first() {
        let page = pages::find(name).ok_or_else(|| {
            Failure::Failed(format!("{name}: no such builtin; `help` lists them"))
        })?;
        write!(out, "{}", page.text)?;
        return Ok(0);
    }
    writeln!(out, "kubesh builtins (`help NAME` for one):\n")?;
    let width = pages::all()
        .iter()
        .map(|p| p.synopsis.chars().count())
        .max()
        .unwrap_or(0);
    for page in pages::all() {
        writeln!(out, "  {:<8} {:<width$}", page.scope.label(), page.synopsis)?;
    }
    writeln!(
        out,
        "\nPrograms: `node service.js &` runs in the background as a Deployment and a \
         Service,\n`python job.py` runs in the foreground as a Pod (`runtimes` lists the \
         runtimes).\nVariables: NAME=value, export NAME=value, $NAME, ${{NAME:-default}}, $?, $1…, $#, $@."
    )?;
    Ok(0)
}
