//! `runtimes`: the runtimes kubesh knows: how each kind of file runs.

use super::{Outcome, Streams, at_most};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    at_most(args, 0, "runtimes")?;
    let out = &mut *streams.out;
    for runtime in shell.runtimes.iter() {
        let extensions: Vec<String> = runtime.extensions.iter().map(|e| format!(".{e}")).collect();
        writeln!(out, "{} — {}", runtime.name, runtime.description)?;
        if !runtime.commands.is_empty() || !extensions.is_empty() {
            let mut selectors = runtime.commands.clone();
            selectors.extend(extensions);
            writeln!(out, "  selected by   {}", selectors.join(" "))?;
        }
        writeln!(out, "  runs          {}", runtime.run.join(" "))?;
        if let Some(command) = runtime.commands.first() {
            let inline = runtime.inline.iter().map(|o| format!("{command} {o} CODE"));
            let module = runtime
                .module
                .iter()
                .map(|o| format!("{command} {o} MODULE"));
            let forms: Vec<String> = inline.chain(module).collect();
            if !forms.is_empty() {
                writeln!(out, "  also runs     {}", forms.join(", "))?;
            }
        }
        match &runtime.elf_images {
            Some(images) => writeln!(
                out,
                "  image         {} (static), {} (glibc), {} (musl)",
                images.static_linked, images.glibc, images.musl
            )?,
            None => writeln!(out, "  image         {}", runtime.image)?,
        }
        writeln!(out, "  port          {}", runtime.port)?;
        writeln!(
            out,
            "  requests      cpu {}, memory {}",
            runtime.requests.cpu, runtime.requests.memory
        )?;
        if !runtime.env.is_empty() {
            let env: Vec<String> = runtime
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            writeln!(out, "  environment   {}", env.join(" "))?;
        }
        if let Some(dependencies) = &runtime.dependencies {
            writeln!(
                out,
                "  dependencies  {} → {}",
                dependencies.files.join(", "),
                dependencies.install.join(" ")
            )?;
        }
    }
    Ok(0)
}
