//! The kubelet's log writer: what a running container prints goes, line by
//! line, to the log file of that run in the CRI format (`TIMESTAMP STREAM
//! TAG TEXT`, tag `F` for a full line and `P` for a partial one). It owns
//! the reading of a process's stdout and stderr (one task per stream, which
//! cuts the output into lines and, when it pauses mid-line, into partial
//! lines) and the one task that appends those lines to the file, in the
//! order they arrive; the runner only starts it and waits for it to finish.

use std::path::Path;
use std::time::Duration;

use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long output without a newline waits for the rest of its line before
/// it is logged as a partial line (a prompt waiting for input).
const PARTIAL_AFTER: Duration = Duration::from_millis(100);

/// Takes the child's stdout and stderr (where they are piped) and writes
/// them, line by line with timestamps, to `log`. The task it returns ends
/// once both streams are closed and every line is written.
pub fn start(child: &mut Child, log: &Path) -> JoinHandle<()> {
    let (tx, mut rx) = mpsc::channel::<(&'static str, Vec<u8>)>(256);
    for (stream, reader) in [
        (
            "stdout",
            child
                .stdout
                .take()
                .map(|out| Box::new(out) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ),
        (
            "stderr",
            child
                .stderr
                .take()
                .map(|err| Box::new(err) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ),
    ] {
        let Some(reader) = reader else { continue };
        let tx = tx.clone();
        tokio::spawn(log_lines(stream, reader, tx));
    }
    drop(tx);
    let log = log.to_path_buf();
    tokio::spawn(async move {
        // Plain writes: appending a line to the page cache does not block,
        // and it keeps log traffic off the blocking thread pool.
        use std::io::Write;
        let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
        else {
            return;
        };
        while let Some((stream, mut line)) = rx.recv().await {
            let tag = if line.ends_with(b"\n") {
                line.pop();
                "F"
            } else {
                "P"
            };
            let ts = jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%S.%9fZ")
                .to_string();
            let mut out = format!("{ts} {stream} {tag} ").into_bytes();
            out.extend_from_slice(&line);
            out.push(b'\n');
            let _ = file.write_all(&out);
        }
    })
}

/// The first read of a stream's output, in bytes.
const READ_FIRST: usize = 1024;
/// The largest read, once reads fill the buffer.
const READ_MOST: usize = 64 * 1024;

/// Sends a stream's output as lines (ending in `\n`) and, when the output
/// pauses mid-line, as partial lines (without).
async fn log_lines(
    stream: &'static str,
    mut reader: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    tx: mpsc::Sender<(&'static str, Vec<u8>)>,
) {
    use tokio::io::AsyncReadExt;
    let mut pending: Vec<u8> = Vec::new();
    // Small while the program is quiet (most are, and every container has
    // two of these), larger while it writes a lot.
    let mut buf = vec![0u8; READ_FIRST];
    loop {
        let read = if pending.is_empty() {
            reader.read(&mut buf).await
        } else {
            // `read` is cancel-safe: nothing is lost when the wait ends first.
            match tokio::time::timeout(PARTIAL_AFTER, reader.read(&mut buf)).await {
                Ok(read) => read,
                Err(_) => {
                    if tx
                        .send((stream, std::mem::take(&mut pending)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
            }
        };
        let count = match read {
            Ok(0) | Err(_) => {
                if !pending.is_empty() {
                    let _ = tx.send((stream, pending)).await;
                }
                return;
            }
            Ok(count) => count,
        };
        pending.extend_from_slice(&buf[..count]);
        if count == buf.len() && buf.len() < READ_MOST {
            buf.resize(buf.len() * 4, 0);
        }
        while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if tx.send((stream, line)).await.is_err() {
                return;
            }
        }
    }
}
