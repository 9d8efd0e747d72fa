//! Container logs: `pods/log` with follow, container, tailLines,
//! sinceSeconds, sinceTime, timestamps, limitBytes and previous, read from
//! the CRI-format files the runner writes (one per container run).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::message::{Body, Query, channel_body, full};
use crate::Shared;
use crate::error::{ApiError, ApiResult};
use crate::resources;
use crate::store::parse_time;

struct Opts {
    timestamps: bool,
    since: Option<i64>,
}

/// Renders one stored line (`TS STREAM TAG TEXT`) for the client.
fn render(line: &str, opts: &Opts) -> Option<String> {
    let mut parts = line.splitn(4, ' ');
    let ts = parts.next()?;
    let _stream = parts.next()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or("");
    if let Some(since) = opts.since
        && parse_time(ts).is_some_and(|t| t < since)
    {
        return None;
    }
    let nl = if tag == "P" { "" } else { "\n" };
    Some(if opts.timestamps {
        format!("{ts} {text}{nl}")
    } else {
        format!("{text}{nl}")
    })
}

pub async fn serve(
    shared: Arc<Shared>,
    ns: &str,
    name: &str,
    query: &Query,
) -> ApiResult<Response<Body>> {
    let pod = shared.store.get(resources::pods(), ns, name)?;
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(String::from))
            .collect()
    };
    let (mains, inits) = (names("containers"), names("initContainers"));
    let container = match query.get("container").filter(|c| !c.is_empty()) {
        Some(named) => named.clone(),
        None if mains.len() == 1 => mains[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                mains.join(" ")
            )));
        }
    };
    if !mains.contains(&container) && !inits.contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let waiting = || {
        let reason = pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                pod["status"]["initContainerStatuses"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
            .find(|status| status["name"] == container.as_str())
            .and_then(|status| status["state"]["waiting"]["reason"].as_str())
            .unwrap_or("ContainerCreating")
            .to_string();
        ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
        ))
    };
    let Some(handle) = shared.kubelet.handle(uid) else {
        return Err(waiting());
    };
    let files = handle.log_files(&container);
    let previous = query.get("previous").is_some_and(|p| p == "true");
    let file: PathBuf = if previous {
        match files.len() {
            count if count >= 2 => files[count - 2].clone(),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                )));
            }
        }
    } else {
        match files.last() {
            Some(last) => last.clone(),
            None => return Err(waiting()),
        }
    };
    let opts = Opts {
        timestamps: query.get("timestamps").is_some_and(|t| t == "true"),
        since: query
            .get("sinceSeconds")
            .and_then(|s| s.parse::<i64>().ok())
            .map(|s| crate::store::epoch_now() - s)
            .or_else(|| query.get("sinceTime").and_then(|t| parse_time(t))),
    };
    let tail: Option<usize> = query
        .get("tailLines")
        .and_then(|t| t.parse::<i64>().ok())
        .filter(|t| *t >= 0)
        .map(|t| t as usize);
    let limit: Option<usize> = query.get("limitBytes").and_then(|t| t.parse().ok());
    let follow = query.get("follow").is_some_and(|f| f == "true") && !previous;
    let content = tokio::fs::read(&file).await.unwrap_or_default();
    // Only whole lines are served; a line being written is picked up later.
    let complete = content
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&content[..complete]);
    let mut lines: Vec<String> = text.lines().filter_map(|l| render(l, &opts)).collect();
    if let Some(tail) = tail {
        let skip = lines.len().saturating_sub(tail);
        lines.drain(..skip);
    }
    let mut out: String = lines.concat();
    if let Some(limit) = limit
        && out.len() > limit
    {
        let mut cut = limit;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    let mut resp = if !follow {
        Response::new(full(out))
    } else {
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let _ = tx.try_send(Bytes::from(out));
        let mut shutdown = shared.shutdown.clone();
        let mut ended = handle.ended.subscribe();
        tokio::spawn(async move {
            let mut offset = complete as u64;
            let mut partial = Vec::new();
            loop {
                let running = handle.is_running(&container)
                    || handle.log_files(&container).last() != Some(&file);
                let still_current = handle.log_files(&container).last() == Some(&file);
                if let Ok(mut log_file) = tokio::fs::File::open(&file).await
                    && log_file
                        .seek(std::io::SeekFrom::Start(offset))
                        .await
                        .is_ok()
                {
                    let mut buf = Vec::new();
                    if log_file.read_to_end(&mut buf).await.is_ok() && !buf.is_empty() {
                        offset += buf.len() as u64;
                        partial.extend_from_slice(&buf);
                        if let Some(end) = partial.iter().rposition(|b| *b == b'\n') {
                            let chunk: Vec<u8> = partial.drain(..=end).collect();
                            let text = String::from_utf8_lossy(&chunk);
                            let rendered: String =
                                text.lines().filter_map(|l| render(l, &opts)).collect();
                            if !rendered.is_empty() && tx.send(Bytes::from(rendered)).await.is_err()
                            {
                                return;
                            }
                        }
                        continue;
                    }
                }
                if !running || !still_current || *shutdown.borrow() {
                    return;
                }
                // New lines are looked for every 50 ms; the container's
                // end is seen at once.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = tx.closed() => return,
                    _ = shutdown.changed() => {}
                    _ = ended.changed() => {}
                }
            }
        });
        Response::new(channel_body(rx))
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}
