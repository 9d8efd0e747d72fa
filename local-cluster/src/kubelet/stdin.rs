//! A process's stdin fed from a channel, for container stdin (attach) and
//! the streams of exec and port-forward alike.

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Feeds stdin from a channel; closing the channel closes stdin.
pub fn stdin_task(
    mut writer: impl tokio::io::AsyncWrite + Unpin + Send + 'static,
) -> mpsc::Sender<Bytes> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if writer.write_all(&chunk).await.is_err() || writer.flush().await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    });
    tx
}
