//! `img`: the images of the running dprocs, and of every runtime.

use std::collections::BTreeMap;

use super::{Outcome, Streams, at_most};
use crate::cluster::dprocs;
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    at_most(args, 0, "img")?;
    let out = &mut *streams.out;
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
    match shell
        .vars
        .get("UNPACK_IMAGE")
        .filter(|image| !image.trim().is_empty())
    {
        Some(image) => writeln!(out, "unpacking files: {image} (UNPACK_IMAGE)")?,
        None => writeln!(out, "unpacking files: the program's image (UNPACK_IMAGE)")?,
    }
    let namespace = shell.target.namespace.clone();
    let listed = shell
        .connect()
        .map_err(super::Failure::from)
        .and_then(|connection| {
            dprocs::list(connection, &namespace, None).map_err(super::Failure::from)
        });
    let out = &mut *streams.out;
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
