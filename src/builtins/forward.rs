//! `forward NAME [LOCAL:]PORT`: forward 127.0.0.1:LOCAL to a dproc's port,
//! in the background, as job `%N`.

use std::sync::Arc;

use super::{Failure, Outcome, Streams};
use crate::cluster::{dprocs, forward};
use crate::shell::Shell;
use crate::shell::jobs::Job;

const USAGE: &str = "usage: forward NAME [LOCAL:]PORT";

pub fn run(shell: &mut Shell, args: &[String], streams: &mut Streams<'_>) -> Outcome {
    let [key, ports] = args else {
        return Err(Failure::Usage(USAGE.to_string()));
    };
    let (local, port) = parse_ports(ports).map_err(Failure::Usage)?;
    let namespace = shell.target.namespace.clone();
    let number = shell.jobs.next_number();
    let printer = shell.printer.clone();
    let connection = shell.connect()?;
    let dproc = dprocs::lookup(connection, &namespace, key)?;
    let pod_port = if dproc.kind == "deployment" {
        forward::pod_port(connection, &namespace, &dproc.name, port)
    } else {
        port
    };
    let listener = std::net::TcpListener::bind(("127.0.0.1", local))
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|error| Failure::Failed(bind_problem(local, port, key, &error)))?;
    let bound = listener.local_addr().map(|a| a.port()).unwrap_or(local);
    let target = forward::Target {
        namespace,
        name: dproc.name.clone(),
        dproc_id: dproc.id.clone(),
        port: pod_port,
        job: format!("%{number}"),
    };
    let ended = forward::Ended::default();
    let task = connection
        .handle()
        .spawn(forward::serve(
            connection.client.clone(),
            connection.server.clone(),
            listener,
            target,
            printer,
            Arc::clone(&ended),
        ))
        .abort_handle();
    let name = dproc.name.clone();
    shell.jobs.add(Job {
        number,
        description: format!("forward {name} {port} -> 127.0.0.1:{bound}"),
        ended,
        task,
    });
    writeln!(
        streams.out,
        "forwarding 127.0.0.1:{bound} -> {name}:{port}  (job %{number})"
    )?;
    Ok(0)
}

/// `PORT`, `LOCAL:PORT`, `:PORT` or `0:PORT` (a free local port) as
/// `(local, port)`.
fn parse_ports(text: &str) -> Result<(u16, u16), String> {
    let number = |part: &str, zero_ok: bool| -> Result<u16, String> {
        part.parse::<u16>()
            .ok()
            .filter(|n| zero_ok || *n > 0)
            .ok_or_else(|| format!("{part:?} is not a port (1–65535); {USAGE}"))
    };
    match text.split_once(':') {
        None => {
            let port = number(text, false)?;
            Ok((port, port))
        }
        Some(("", port)) => Ok((0, number(port, false)?)),
        Some((local, port)) => Ok((number(local, true)?, number(port, false)?)),
    }
}

fn bind_problem(local: u16, port: u16, key: &str, error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "127.0.0.1:{local} is in use by another program; forward from another local \
             port (`forward {key} LOCAL:{port}`), or from a free one (`forward {key} :{port}`)"
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "127.0.0.1:{local} needs privileges to listen on; pick a port above 1023 \
             (`forward {key} :{port}` picks a free one)"
        ),
        _ => format!("cannot listen on 127.0.0.1:{local}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_ports("9999"), Ok((9999, 9999)));
        assert_eq!(parse_ports("8080:9999"), Ok((8080, 9999)));
        assert_eq!(parse_ports(":9999"), Ok((0, 9999)));
        assert_eq!(parse_ports("0:9999"), Ok((0, 9999)));
        for bad in ["0", "x", "70000", "1:0", "a:1", "9999:", ""] {
            assert!(parse_ports(bad).is_err(), "{bad}");
        }
    }
}
