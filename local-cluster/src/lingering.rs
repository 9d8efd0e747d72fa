//! Closing a client connection without losing the last answer.
//!
//! When the server answers before it has read the whole request (413 for a
//! body over the limit, an error for a request whose body it never reads)
//! and closes the connection, the client may still be sending. Closing a
//! socket with unread input makes the kernel reset the connection, and a
//! reset can reach the client before it reads the answer, or make its
//! next write fail: the client sees "connection reset" instead of the
//! answer. So, like Go's net/http (`closeWriteAndWait`) and nginx
//! (`lingering_close`), the server closes in two steps: it shuts down its
//! sending side (the client reads the answer, then end of stream), then
//! reads and discards what the client still sends until the client closes
//! too or a bound passes ([`LINGER_TIMEOUT`] for the API server).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How long a closing connection keeps reading and discarding what the
/// client still sends (the rest of a refused body) before it is closed for
/// good; nginx's `lingering_timeout` is the same 5 s. On this machine's
/// loopback a client sends megabytes in milliseconds, so this is reached
/// only by a client that keeps the connection open after its end.
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes read (and discarded) at a time while lingering.
const DISCARD_CHUNK: usize = 16 * 1024;

/// A connection whose shutdown lingers: `poll_shutdown` shuts down the
/// sending side, then discards input until end of stream or its linger
/// timeout. Shutting down is how the HTTP server closes a
/// connection (TLS sends its close_notify first, then shuts this down), so
/// nothing reads the connection afterwards.
pub struct LingeringClose<S> {
    inner: S,
    /// How long to discard input after shutting down the sending side.
    linger_timeout: Duration,
    /// Set once the sending side is shut down: when discarding input ends.
    linger_deadline: Option<Pin<Box<Sleep>>>,
    /// The client closed, went away, or the deadline passed.
    finished: bool,
}

impl<S> LingeringClose<S> {
    pub fn new(inner: S, linger_timeout: Duration) -> Self {
        LingeringClose {
            inner,
            linger_timeout,
            linger_deadline: None,
            finished: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LingeringClose<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for LingeringClose<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(Ok(()));
        }
        let deadline = match &mut this.linger_deadline {
            Some(deadline) => deadline,
            None => {
                ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
                this.linger_deadline
                    .insert(Box::pin(tokio::time::sleep(this.linger_timeout)))
            }
        };
        let mut discarded = [0u8; DISCARD_CHUNK];
        loop {
            if deadline.as_mut().poll(cx).is_ready() {
                this.finished = true;
                return Poll::Ready(Ok(()));
            }
            let mut input = ReadBuf::new(&mut discarded);
            match Pin::new(&mut this.inner).poll_read(cx, &mut input) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if !input.filled().is_empty() => continue,
                // End of stream, or the client is gone: nothing is left
                // to protect.
                Poll::Ready(_) => {
                    this.finished = true;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn shutdown_sends_end_of_stream_then_discards_input_until_the_peer_closes() {
        let (server_end, mut client_end) = tokio::io::duplex(64);
        let mut server = LingeringClose::new(server_end, LINGER_TIMEOUT);
        server.write_all(b"answer").await.expect("write");
        let shutdown = tokio::spawn(async move { server.shutdown().await });
        let mut answer = Vec::new();
        let mut chunk = [0u8; 16];
        loop {
            // The client keeps sending while it reads; the server takes it.
            client_end
                .write_all(&[b'x'; 100])
                .await
                .expect("client write");
            let read = client_end.read(&mut chunk).await.expect("client read");
            if read == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..read]);
        }
        assert_eq!(answer, b"answer");
        drop(client_end);
        tokio::time::timeout(Duration::from_secs(1), shutdown)
            .await
            .expect("shutdown ends once the client closes")
            .expect("task")
            .expect("shutdown");
    }

    #[tokio::test]
    async fn shutdown_ends_after_the_linger_timeout_when_the_peer_stays() {
        let linger_timeout = Duration::from_millis(200);
        let (server_end, _client_end) = tokio::io::duplex(64);
        let mut server = LingeringClose::new(server_end, linger_timeout);
        let started = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(5), server.shutdown())
            .await
            .expect("shutdown ends at the linger timeout")
            .expect("shutdown");
        assert!(started.elapsed() >= linger_timeout);
    }
}
