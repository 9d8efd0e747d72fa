//! `cat [FILE…]`: print files (`-` or no file: standard input).

use std::fs::File;
use std::io::{self, Read, Write};

use super::{Failure, Outcome, Streams};
use crate::shell::Shell;

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let stdin = ["-".to_string()];
    let files = if args.is_empty() { &stdin[..] } else { args };
    let mut status = 0;
    for name in files {
        let copied = if name == "-" && shell.stdin_is_script {
            let _ = writeln!(
                streams.err,
                "kubesh: cat: standard input is the script kubesh is running, not data; \
                 name a file (`cat FILE`), or run the script as `kubesh FILE`"
            );
            status = 1;
            continue;
        } else if name == "-" {
            io::copy(&mut io::stdin().lock(), streams.out).map(|_| ())
        } else {
            match open(name) {
                Ok(mut file) => copy(&mut file, streams.out, shell),
                Err(reason) => {
                    let _ = writeln!(streams.err, "kubesh: cat: {name}: {reason}");
                    status = 1;
                    continue;
                }
            }
        };
        if let Err(error) = copied {
            if error.kind() == io::ErrorKind::BrokenPipe {
                return Err(error.into());
            }
            let _ = writeln!(streams.err, "kubesh: cat: {name}: {error}");
            status = 1;
        }
    }
    streams.out.flush().map_err(Failure::from)?;
    Ok(status)
}

/// Why `cat` cannot read a file.
#[derive(Debug, thiserror::Error)]
enum NotOpened {
    #[error("is a directory; `ls` lists it")]
    Directory,
    #[error("no such file")]
    Missing,
    #[error("permission denied")]
    Denied,
    #[error("{0}")]
    Other(#[source] io::Error),
}

fn open(name: &str) -> Result<File, NotOpened> {
    let path = std::path::Path::new(name);
    if path.is_dir() {
        return Err(NotOpened::Directory);
    }
    File::open(path).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => NotOpened::Missing,
        io::ErrorKind::PermissionDenied => NotOpened::Denied,
        _ => NotOpened::Other(error),
    })
}

/// Copies a file to `out` until its end or Ctrl-C.
fn copy(file: &mut File, out: &mut dyn Write, shell: &Shell) -> io::Result<()> {
    let mut buffer = vec![0; 64 * 1024];
    while !shell.interrupt.is_set() {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(());
        }
        out.write_all(&buffer[..read])?;
    }
    Ok(())
}
