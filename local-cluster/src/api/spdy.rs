//! SPDY/3.1, the multiplexed connection kubectl opens for exec and attach
//! up to 1.29 and for port-forward up to 1.30 (from 1.31 tunnelled inside a
//! WebSocket): the server's side of the frames such a client uses. The
//! client opens every stream (SYN_STREAM, answered at once with SYN_REPLY),
//! both sides send data and half-close with FIN, either may reset a stream,
//! pings are answered, and the server ends with GOAWAY. Header blocks are
//! zlib streams with SPDY's dictionary, one per direction and connection.
//! There is no flow control: kubectl's SPDY library neither sends window
//! updates nor waits for them, so they are read and ignored.

mod dictionary;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The `Upgrade` header value of a SPDY connection.
pub const UPGRADE: &str = "SPDY/3.1";

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const FLAG_FIN: u8 = 1;
/// RST_STREAM status CANCEL.
const CANCEL: u32 = 5;
/// The largest frame accepted or sent (a frame's length has 24 bits).
const MAX_FRAME: usize = (1 << 24) - 1;
/// Data is sent in frames of at most this size.
const DATA_CHUNK: usize = 32 * 1024;
/// A header block may not inflate to more than this.
const MAX_HEADERS: usize = 256 * 1024;
/// How long, after the server has said all, the client has to close its
/// side before the connection is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Why a SPDY connection ended before the client closed it.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("reading the SPDY connection failed")]
    Read(#[source] std::io::Error),
    #[error("writing the SPDY connection failed")]
    Write(#[source] std::io::Error),
    #[error("the client speaks SPDY version {0}; only 3 (SPDY/3.1) is served")]
    Version(u16),
    #[error("a SPDY frame of {0} bytes is larger than {MAX_FRAME}")]
    TooLarge(usize),
    #[error("a SPDY frame is shorter than its kind requires")]
    Short,
    #[error("a SPDY header block is malformed")]
    Headers,
    #[error("a SPDY header block cannot be decompressed")]
    Inflate(#[source] flate2::DecompressError),
    #[error("a SPDY header block cannot be compressed")]
    Deflate(#[source] flate2::CompressError),
}

/// A stream's headers (names in lower case, as SPDY sends them).
pub type Headers = BTreeMap<String, String>;

/// What the client did.
pub enum Event {
    /// It opened a stream, which the server has accepted.
    Opened { id: u32, headers: Headers },
    /// Data on a stream.
    Data { id: u32, data: Bytes },
    /// It will send nothing more on the stream.
    Finished { id: u32 },
    /// It gave up the stream: nothing more is read or sent on it.
    Reset { id: u32 },
}

enum Out {
    Reply(u32),
    Data { id: u32, data: Bytes, fin: bool },
    Reset(u32),
    Pong(u32),
}

/// Sends on the connection's streams; the connection ends (GOAWAY) once
/// every clone is gone.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::Sender<Out>,
}

impl Sender {
    /// Sends data on a stream; false once the connection is gone.
    pub async fn data(&self, id: u32, data: Bytes) -> bool {
        for start in (0..data.len()).step_by(DATA_CHUNK) {
            let end = (start + DATA_CHUNK).min(data.len());
            let chunk = data.slice(start..end);
            let out = Out::Data {
                id,
                data: chunk,
                fin: false,
            };
            if self.tx.send(out).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Half-closes a stream: the server sends nothing more on it.
    pub async fn finish(&self, id: u32) -> bool {
        let out = Out::Data {
            id,
            data: Bytes::new(),
            fin: true,
        };
        self.tx.send(out).await.is_ok()
    }

    /// Resets a stream.
    pub async fn reset(&self, id: u32) -> bool {
        self.tx.send(Out::Reset(id)).await.is_ok()
    }
}

/// A SPDY connection being served.
pub struct Session {
    /// What the client does, until it closes the connection (then None).
    pub events: mpsc::Receiver<Event>,
    pub sender: Sender,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Session {
    /// Starts serving a connection.
    pub fn start<IO>(io: IO) -> Session
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read_half, write_half) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel::<Out>(64);
        let (event_tx, events) = mpsc::channel::<Event>(64);
        let writer = tokio::spawn(async move {
            // The client sees the connection end; there is nobody else to tell.
            let _ = write_frames(write_half, out_rx).await;
        });
        let replies = out_tx.downgrade();
        let reader = tokio::spawn(async move {
            let _ = read_frames(read_half, event_tx, replies).await;
        });
        Session {
            events,
            sender: Sender { tx: out_tx },
            reader,
            writer,
        }
    }

    /// Ends the connection: what was sent is flushed, GOAWAY follows, and
    /// the client has [`CLOSE_GRACE`] to close its side (so the last data
    /// is read before the connection goes, never lost to a reset).
    pub async fn close(self) {
        let Session {
            events,
            sender,
            mut reader,
            writer,
        } = self;
        drop(sender);
        let _ = tokio::time::timeout(CLOSE_GRACE, writer).await;
        // Reading on lets the client's last frames arrive; nobody needs them.
        let drain = tokio::spawn(async move {
            let mut events = events;
            while events.recv().await.is_some() {}
        });
        if tokio::time::timeout(CLOSE_GRACE, &mut reader)
            .await
            .is_err()
        {
            reader.abort();
        }
        drain.abort();
    }
}

/// The zlib stream that header blocks are written to (one per connection).
struct Deflater(Compress);

impl Deflater {
    fn new() -> Result<Deflater, SpdyError> {
        let mut compress = Compress::new(Compression::default(), true);
        compress
            .set_dictionary(dictionary::DICTIONARY)
            .map_err(SpdyError::Deflate)?;
        Ok(Deflater(compress))
    }

    fn block(&mut self, headers: &[(&str, &str)]) -> Result<Vec<u8>, SpdyError> {
        let mut plain = Vec::new();
        plain.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, value) in headers {
            for part in [name, value] {
                plain.extend_from_slice(&(part.len() as u32).to_be_bytes());
                plain.extend_from_slice(part.as_bytes());
            }
        }
        let mut out = Vec::with_capacity(plain.len() + 64);
        let mut consumed = 0usize;
        loop {
            let before = self.0.total_in();
            self.0
                .compress_vec(&plain[consumed..], &mut out, FlushCompress::Sync)
                .map_err(SpdyError::Deflate)?;
            consumed += (self.0.total_in() - before) as usize;
            // Done once everything is in and the flush fit in the buffer.
            if consumed == plain.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            out.reserve(256);
        }
    }
}

/// The zlib stream header blocks are read from (one per connection).
struct Inflater(Decompress);

impl Inflater {
    fn block(&mut self, compressed: &[u8]) -> Result<Headers, SpdyError> {
        let mut out: Vec<u8> = Vec::with_capacity(compressed.len() * 4 + 64);
        let mut consumed = 0usize;
        loop {
            let before = self.0.total_in();
            let result =
                self.0
                    .decompress_vec(&compressed[consumed..], &mut out, FlushDecompress::Sync);
            consumed += (self.0.total_in() - before) as usize;
            match result {
                Ok(Status::Ok | Status::BufError | Status::StreamEnd) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.0
                        .set_dictionary(dictionary::DICTIONARY)
                        .map_err(SpdyError::Inflate)?;
                    continue;
                }
                Err(e) => return Err(SpdyError::Inflate(e)),
            }
            if consumed == compressed.len() && out.len() < out.capacity() {
                break;
            }
            if out.len() >= MAX_HEADERS {
                return Err(SpdyError::Headers);
            }
            out.reserve(4096);
        }
        parse_header_block(&out)
    }
}

fn parse_header_block(block: &[u8]) -> Result<Headers, SpdyError> {
    let mut pos = 0usize;
    let mut next = |len: usize| -> Result<&[u8], SpdyError> {
        let end = pos.checked_add(len).ok_or(SpdyError::Headers)?;
        let part = block.get(pos..end).ok_or(SpdyError::Headers)?;
        pos = end;
        Ok(part)
    };
    let word = |bytes: &[u8]| u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let count = word(next(4)?);
    let mut headers = Headers::new();
    for _ in 0..count {
        let name_len = word(next(4)?);
        let name = String::from_utf8_lossy(next(name_len)?).to_lowercase();
        let value_len = word(next(4)?);
        let value = String::from_utf8_lossy(next(value_len)?).into_owned();
        headers.insert(name, value);
    }
    Ok(headers)
}

fn be32(bytes: &[u8], at: usize) -> Result<u32, SpdyError> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(SpdyError::Short)
}

async fn read_frames(
    mut reader: impl AsyncRead + Unpin,
    events: mpsc::Sender<Event>,
    replies: mpsc::WeakSender<Out>,
) -> Result<(), SpdyError> {
    let mut inflater = Inflater(Decompress::new(true));
    let reply = |out: Out| {
        let replies = replies.clone();
        async move {
            if let Some(tx) = replies.upgrade() {
                let _ = tx.send(out).await;
            }
        }
    };
    loop {
        let mut head = [0u8; 8];
        match reader.read_exact(&mut head).await {
            Ok(_) => {}
            // The client closed the connection.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(SpdyError::Read(e)),
        }
        let flags = head[4];
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        if len > MAX_FRAME {
            return Err(SpdyError::TooLarge(len));
        }
        let mut body = vec![0u8; len];
        reader
            .read_exact(&mut body)
            .await
            .map_err(SpdyError::Read)?;
        let fin = flags & FLAG_FIN != 0;
        if head[0] & 0x80 == 0 {
            let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            if !body.is_empty() {
                let data = Bytes::from(body);
                if events.send(Event::Data { id, data }).await.is_err() {
                    return Ok(());
                }
            }
            if fin && events.send(Event::Finished { id }).await.is_err() {
                return Ok(());
            }
            continue;
        }
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != VERSION {
            return Err(SpdyError::Version(version));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let event = match kind {
            SYN_STREAM => {
                let id = be32(&body, 0)? & 0x7fff_ffff;
                let headers = inflater.block(body.get(10..).ok_or(SpdyError::Short)?)?;
                reply(Out::Reply(id)).await;
                let opened = Event::Opened { id, headers };
                if fin {
                    if events.send(opened).await.is_err() {
                        return Ok(());
                    }
                    Some(Event::Finished { id })
                } else {
                    Some(opened)
                }
            }
            HEADERS => {
                let id = be32(&body, 0)? & 0x7fff_ffff;
                // Read to keep the zlib stream in step; nothing uses them.
                inflater.block(body.get(4..).ok_or(SpdyError::Short)?)?;
                fin.then_some(Event::Finished { id })
            }
            RST_STREAM => Some(Event::Reset {
                id: be32(&body, 0)? & 0x7fff_ffff,
            }),
            PING => {
                reply(Out::Pong(be32(&body, 0)?)).await;
                None
            }
            GOAWAY => return Ok(()),
            // SETTINGS, WINDOW_UPDATE, a SYN_REPLY to nothing: ignored.
            _ => None,
        };
        if let Some(event) = event
            && events.send(event).await.is_err()
        {
            return Ok(());
        }
    }
}

fn control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + body.len());
    frame.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    frame.extend_from_slice(&kind.to_be_bytes());
    frame.push(flags);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    frame.extend_from_slice(body);
    frame
}

async fn write_frames(
    mut writer: impl AsyncWrite + Unpin,
    mut out: mpsc::Receiver<Out>,
) -> Result<(), SpdyError> {
    let mut deflater = Deflater::new()?;
    let mut last_stream = 0u32;
    while let Some(next) = out.recv().await {
        let frame = match next {
            Out::Reply(id) => {
                last_stream = last_stream.max(id);
                let mut body = id.to_be_bytes().to_vec();
                body.extend(deflater.block(&[])?);
                control(SYN_REPLY, 0, &body)
            }
            Out::Data { id, data, fin } => {
                let mut frame = Vec::with_capacity(8 + data.len());
                frame.extend_from_slice(&(id & 0x7fff_ffff).to_be_bytes());
                frame.push(if fin { FLAG_FIN } else { 0 });
                frame.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
                frame.extend_from_slice(&data);
                frame
            }
            Out::Reset(id) => {
                let mut body = id.to_be_bytes().to_vec();
                body.extend_from_slice(&CANCEL.to_be_bytes());
                control(RST_STREAM, 0, &body)
            }
            Out::Pong(id) => control(PING, 0, &id.to_be_bytes()),
        };
        writer.write_all(&frame).await.map_err(SpdyError::Write)?;
        // Frames queued behind this one go out together.
        if out.is_empty() {
            writer.flush().await.map_err(SpdyError::Write)?;
        }
    }
    let mut body = last_stream.to_be_bytes().to_vec();
    body.extend_from_slice(&0u32.to_be_bytes());
    writer
        .write_all(&control(GOAWAY, 0, &body))
        .await
        .map_err(SpdyError::Write)?;
    // No shutdown of the sending side: under TLS it would start the
    // connection's lingering close, which discards what the client still
    // sends while the reader is reading it. The client closes, having
    // read GOAWAY, and the connection goes with the session.
    writer.flush().await.map_err(SpdyError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_spdy3s() {
        // Its Adler-32, the dictionary id in a SPDY/3 zlib header.
        let (mut a, mut b) = (1u32, 0u32);
        for byte in dictionary::DICTIONARY {
            a = (a + u32::from(*byte)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
        assert_eq!(dictionary::DICTIONARY.len(), 1423);
    }

    #[test]
    fn header_blocks_round_trip_through_one_zlib_stream_each_way() {
        let mut deflater = Deflater::new().expect("deflater");
        let mut inflater = Inflater(Decompress::new(true));
        for (name, value) in [
            ("streamtype", "error"),
            ("port", "8080"),
            ("requestid", "0"),
        ] {
            let block = deflater.block(&[(name, value)]).expect("deflate");
            let headers = inflater.block(&block).expect("inflate");
            assert_eq!(headers.get(name).map(String::as_str), Some(value));
        }
        let empty = deflater.block(&[]).expect("deflate");
        assert!(inflater.block(&empty).expect("inflate").is_empty());
    }

    #[test]
    fn malformed_header_blocks_are_refused() {
        assert!(parse_header_block(&[0, 0, 0, 1, 0, 0, 0, 9, b'a']).is_err());
        let mut inflater = Inflater(Decompress::new(true));
        assert!(inflater.block(b"not zlib at all").is_err());
    }
}
