//! `ls [-a] [-l] [PATH…]`: list directories, directories marked with `/`.

use std::fs;
use std::path::Path;

use super::{Failure, Outcome, Streams};
use crate::shell::Shell;

#[derive(Default)]
struct Options {
    all: bool,
    long: bool,
}

pub fn run(_shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let mut options = Options::default();
    let mut paths = Vec::new();
    for arg in args {
        match arg.strip_prefix('-') {
            Some(flags) if !flags.is_empty() => {
                for flag in flags.chars() {
                    match flag {
                        'a' => options.all = true,
                        'l' => options.long = true,
                        '1' => {}
                        _ => {
                            return Err(Failure::Usage(format!(
                                "-{flag}: unknown option; usage: ls [-a] [-l] [PATH…]"
                            )));
                        }
                    }
                }
            }
            _ => paths.push(arg.as_str()),
        }
    }
    if paths.is_empty() {
        paths.push(".");
    }
    let mut status = 0;
    let out = &mut *streams.out;
    for (index, path) in paths.iter().enumerate() {
        let path = Path::new(path);
        let metadata = match fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(_) => {
                let _ = writeln!(
                    streams.err,
                    "kubesh: ls: {}: no such file or directory",
                    path.display()
                );
                status = 1;
                continue;
            }
        };
        if !metadata.is_dir() {
            writeln!(
                out,
                "{}",
                line(&path.display().to_string(), &metadata, &options)
            )?;
            continue;
        }
        if paths.len() > 1 {
            if index > 0 {
                writeln!(out)?;
            }
            writeln!(out, "{}:", path.display())?;
        }
        let entries = match fs::read_dir(path) {
            Ok(entries) => entries,
            Err(error) => {
                let _ = writeln!(streams.err, "kubesh: ls: {}: {error}", path.display());
                status = 1;
                continue;
            }
        };
        let mut listed: Vec<(String, fs::Metadata)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let metadata = fs::metadata(entry.path())
                    .or_else(|_| entry.metadata())
                    .ok()?;
                Some((name, metadata))
            })
            .filter(|(name, _)| options.all || !name.starts_with('.'))
            .collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, metadata) in &listed {
            writeln!(out, "{}", line(name, metadata, &options))?;
        }
    }
    Ok(status)
}

fn line(name: &str, metadata: &fs::Metadata, options: &Options) -> String {
    let marked = if metadata.is_dir() {
        format!("{name}/")
    } else {
        name.to_string()
    };
    if !options.long {
        return marked;
    }
    let kind = if metadata.is_dir() { 'd' } else { '-' };
    format!("{kind} {:>10}  {marked}", metadata.len())
}
