//! `img [prune [NAME…]]`: the images kubesh built (programs with a
//! Dockerfile) that the local Docker engine has, each with its size, its
//! age and the dprocs of the current namespace that run it; `prune` removes
//! those no dproc runs.

use std::collections::BTreeSet;

use super::{Failure, Outcome, Streams};
use crate::cluster::dprocs::{self, human_age};
use crate::launch::built::{self, BuiltImage, built_part};
use crate::pages;
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    if matches!(args, [flag] if flag == "--help" || flag == "-h") {
        if let Some(page) = pages::find("img") {
            write!(streams.out, "{}", page.text)?;
        }
        return Ok(0);
    }
    match args.split_first() {
        None => list(shell, streams),
        Some((first, names)) if first == "prune" => prune(shell, names, streams),
        Some((other, _)) => Err(Failure::Usage(format!("{other:?}: {USAGE}"))),
    }
}

const USAGE: &str = "usage: img [prune [NAME…]]";

fn list(shell: &mut Shell, streams: &mut Streams<'_>) -> Outcome {
    let images = built::list_now()?;
    if images.is_empty() {
        writeln!(
            streams.out,
            "no images built by kubesh on the Docker engine at {} (a program whose directory \
             has a Dockerfile is built there when it is launched)",
            kubesh_engine::engine_address()
        )?;
        return Ok(0);
    }
    let namespace = shell.target.namespace.clone();
    let users = shell
        .connect()
        .and_then(|connection| dprocs::list(connection, &namespace, None));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let users = match users {
        Ok(list) => Some(
            list.into_iter()
                .map(|dproc| (dproc.name, dproc.image))
                .collect::<Vec<_>>(),
        ),
        Err(error) => {
            writeln!(
                streams.err,
                "kubesh: img: the dprocs of namespace {namespace} could not be looked up, so \
                 DPROCS shows ?: {error}"
            )?;
            None
        }
    };
    write!(streams.out, "{}", table(&images, now, users.as_deref()))?;
    Ok(0)
}

/// `img prune [NAME…]`: removes the built images (of the programs NAME…
/// only, when given) that no dproc of any namespace runs, saying which.
fn prune(shell: &mut Shell, names: &[String], streams: &mut Streams<'_>) -> Outcome {
    let images = built::list_now()?;
    let connection = shell.connect().map_err(Failure::ImagesInUse)?;
    let in_use = dprocs::images_in_use(connection).map_err(Failure::ImagesInUse)?;
    let unused = unused(&images, &in_use, names);
    if !names.is_empty() && unused.is_empty() && !images.iter().any(|image| named(image, names)) {
        writeln!(
            streams.out,
            "nothing to remove: the Docker engine has no image kubesh built for {}",
            names.join(", ")
        )?;
        return Ok(0);
    }
    if unused.is_empty() {
        writeln!(
            streams.out,
            "nothing to remove: every image kubesh built{} is run by a dproc",
            if names.is_empty() {
                String::new()
            } else {
                format!(" for {}", names.join(", "))
            }
        )?;
        return Ok(0);
    }
    let mut status = 0;
    for removal in built::remove_now(&unused)? {
        match removal.kept {
            None => writeln!(streams.out, "removed {}", removal.reference)?,
            Some(why) => {
                status = 1;
                writeln!(
                    streams.err,
                    "kubesh: img: kept {}: the Docker engine did not remove it ({why})",
                    removal.reference
                )?;
            }
        }
    }
    Ok(status)
}

/// The references among `images` whose `kubesh-build/NAME:HASH` no image
/// in `in_use` has, with or without a registry; only those of the
/// programs `names` when any are given.
/// Whether `image` was built for one of the programs `names`.
fn named(image: &BuiltImage, names: &[String]) -> bool {
    built_part(&image.reference)
        .and_then(|part| part.strip_prefix("kubesh-build/"))
        .and_then(|rest| rest.split(':').next())
        .is_some_and(|name| names.iter().any(|n| n == name))
}

fn unused(images: &[BuiltImage], in_use: &BTreeSet<String>, names: &[String]) -> Vec<String> {
    let used: BTreeSet<&str> = in_use.iter().filter_map(|i| built_part(i)).collect();
    images
        .iter()
        .filter_map(|image| {
            let part = built_part(&image.reference)?;
            let name = part.strip_prefix("kubesh-build/")?.split(':').next()?;
            let wanted = names.is_empty() || names.iter().any(|n| n == name);
            (wanted && !used.contains(part)).then(|| image.reference.clone())
        })
        .collect()
}

/// The table `img` prints: a header, then one aligned row per image with
/// the names of the dprocs (given as name and image) that run it, `-` for
/// none and `?` when the dprocs are not known.
fn table(images: &[BuiltImage], now: i64, users: Option<&[(String, String)]>) -> String {
    let rows: Vec<[String; 4]> = images
        .iter()
        .map(|image| {
            let dprocs = match users {
                None => "?".to_string(),
                Some(users) => {
                    let names: BTreeSet<&str> = users
                        .iter()
                        .filter(|(_, used)| {
                            built_part(used).is_some()
                                && built_part(used) == built_part(&image.reference)
                        })
                        .map(|(name, _)| name.as_str())
                        .collect();
                    if names.is_empty() {
                        "-".to_string()
                    } else {
                        names.into_iter().collect::<Vec<_>>().join(",")
                    }
                }
            };
            [
                image.reference.clone(),
                human_size(image.size),
                format!("{} ago", human_age((now - image.created).max(0))),
                dprocs,
            ]
        })
        .collect();
    let header = ["IMAGE", "SIZE", "BUILT", "DPROCS"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// A size for people, in the engine's units: `812 B`, `4.2 MB`, `1.3 GB`.
fn human_size(bytes: i64) -> String {
    let mut value = bytes.max(0) as f64;
    for unit in ["B", "kB", "MB", "GB"] {
        if value < 1000.0 {
            return if unit == "B" {
                format!("{value} {unit}")
            } else {
                format!("{value:.1} {unit}")
            };
        }
        value /= 1000.0;
    }
    format!("{value:.1} TB")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(reference: &str, size: i64, created: i64) -> BuiltImage {
        BuiltImage {
            reference: reference.into(),
            size,
            created,
        }
    }

    #[test]
    fn the_table_names_the_dprocs_of_each_image_registry_tagged_or_not() {
        let images = [
            image("kubesh-build/web:0a1b2c3d", 4_200_000, 1_000 - 300),
            image(
                "registry.example:5000/kubesh-build/web:0a1b2c3d",
                4_200_000,
                1_000 - 300,
            ),
            image("kubesh-build/job:99887766", 812, 1_000 - 7_300),
        ];
        let users = [
            (
                "web".to_string(),
                "registry.example:5000/kubesh-build/web:0a1b2c3d".to_string(),
            ),
            ("api".to_string(), "kubesh-build/web:0a1b2c3d".to_string()),
            ("other".to_string(), "python:3.12-slim".to_string()),
        ];
        assert_eq!(
            table(&images, 1_000, Some(&users)),
            "IMAGE                                            SIZE    BUILT   DPROCS\n\
             kubesh-build/web:0a1b2c3d                        4.2 MB  5m ago  api,web\n\
             registry.example:5000/kubesh-build/web:0a1b2c3d  4.2 MB  5m ago  api,web\n\
             kubesh-build/job:99887766                        812 B   2h ago  -\n"
        );
        assert_eq!(
            table(&images[2..], 1_000, None),
            "IMAGE                      SIZE   BUILT   DPROCS\n\
             kubesh-build/job:99887766  812 B  2h ago  ?\n"
        );
    }

    #[test]
    fn prune_takes_the_images_no_dproc_runs_registry_tagged_or_not() {
        let images = [
            image("kubesh-build/web:aaaa", 1, 1),
            image("registry.example/kubesh-build/web:aaaa", 1, 1),
            image("kubesh-build/web:bbbb", 1, 1),
            image("registry.example/kubesh-build/web:bbbb", 1, 1),
            image("kubesh-build/job:cccc", 1, 1),
        ];
        let in_use: BTreeSet<String> = [
            "registry.example/kubesh-build/web:aaaa".to_string(),
            "python:3.12-slim".to_string(),
        ]
        .into();
        assert_eq!(
            unused(&images, &in_use, &[]),
            [
                "kubesh-build/web:bbbb",
                "registry.example/kubesh-build/web:bbbb",
                "kubesh-build/job:cccc"
            ]
        );
        assert_eq!(
            unused(&images, &in_use, &["job".to_string()]),
            ["kubesh-build/job:cccc"]
        );
        assert!(unused(&images, &in_use, &["other".to_string()]).is_empty());
    }

    #[test]
    fn sizes_read_as_the_engine_shows_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_500), "1.5 kB");
        assert_eq!(human_size(108_300_000), "108.3 MB");
        assert_eq!(human_size(2_000_000_000), "2.0 GB");
    }
}
