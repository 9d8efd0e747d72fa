//! `img`: the images of the running dprocs, and of every runtime.

use std::collections::BTreeMap;
use std::io::Write;

use super::{Outcome, at_most};
use crate::cluster::dprocs;
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String]) -> Outcome {
    at_most(args, 0, "img")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "runtimes:")?;
    for runtime in shell.runtimes.iter() {
        match &runtime.elf_images {
            Some(images) => writeln!(
                out,
                "  {:<8} {} (static), {} (glibc), {} (musl)",
                runtime.name, images.static_linked, images.glibc, images.musl
            )?,
            None => writeln!(out, "  {:<8} {}", runtime.name, runtime.image)?,
        }
    }
    drop(out);
    let namespace = shell.target.namespace.clone();
    let listed = shell
        .connect()
        .map_err(|e| e.to_string())
        .and_then(|connection| {
            dprocs::list(connection, &namespace, None).map_err(|e| e.to_string())
        });
    let mut out = std::io::stdout().lock();
    match listed {
        Ok(list) => {
            let mut by_image: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for dproc in &list {
                by_image
                    .entry(dproc.image.as_str())
                    .or_default()
                    .push(dproc.name.as_str());
            }
            writeln!(out, "dprocs in namespace {namespace}:")?;
            for (image, names) in by_image {
                writeln!(out, "  {image:<32} {}", names.join(", "))?;
            }
            Ok(0)
        }
        Err(error) => {
            writeln!(out, "dprocs: unknown ({error})")?;
            Ok(1)
        }
    }
}
