//! The gateway's listener: a TCP listener whose connections remember each request's header
//! names as the client wrote them.
//!
//! REST APIs (payload 1.0) hand functions the header names in the client's case
//! (`event["headers"]["Authorization"]`), but hyper, like every HTTP/1 server library, keeps
//! only lower-cased names and gives no public access to the original ones. So each connection's
//! bytes are followed as hyper reads them: each request head is parsed once more (with
//! `httparse`, hyper's own parser) for its names, and bodies are skipped by `Content-Length` or
//! by their chunks. A handler takes the names of its request by method and target. This is
//! written here because no crate offers it; it reads bytes hyper already has and copies none
//! but the head.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head followed; a longer one stops the following (names fall back to
/// lower case) rather than growing a buffer.
const MAX_HEAD: usize = 64 * 1024;
/// Heads kept per connection for handlers that have not taken theirs.
const MAX_QUEUED: usize = 16;
const MAX_HEADERS: usize = 128;

/// One request head as the client wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub target: String,
    /// Header names in the client's case, in the order sent.
    pub names: Vec<String>,
}

/// The heads of one connection's requests not yet taken by a handler.
#[derive(Debug, Default)]
pub struct Heads(Mutex<VecDeque<Head>>);

impl Heads {
    /// The head of the request `method target`, dropping older heads that no handler took.
    pub fn take(&self, method: &str, target: &str) -> Option<Head> {
        let mut queue = self.0.lock().ok()?;
        let at = queue
            .iter()
            .position(|h| h.method.eq_ignore_ascii_case(method) && h.target == target)?;
        queue.drain(..at);
        queue.pop_front()
    }

    fn push(&self, head: Head) {
        if let Ok(mut queue) = self.0.lock() {
            if queue.len() == MAX_QUEUED {
                queue.pop_front();
            }
            queue.push_back(head);
        }
    }
}

/// A connection's peer: what handlers get as `ConnectInfo`.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub heads: Arc<Heads>,
}

impl Connected<IncomingStream<'_, CaseListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, CaseListener>) -> Self {
        stream.remote_addr().clone()
    }
}

pub struct CaseListener(pub TcpListener);

impl axum::serve::Listener for CaseListener {
    type Io = CaseStream;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let heads = Arc::new(Heads::default());
                    let io = CaseStream {
                        inner: stream,
                        tracker: Tracker::default(),
                        heads: heads.clone(),
                    };
                    return (io, Peer { addr, heads });
                }
                // Out of file descriptors and the like: wait instead of spinning, as axum's
                // own listener does.
                Err(e) => {
                    tracing::warn!("gateway: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Peer {
            addr: self.0.local_addr()?,
            heads: Arc::default(),
        })
    }
}

pub struct CaseStream {
    inner: TcpStream,
    tracker: Tracker,
    heads: Arc<Heads>,
}

impl AsyncRead for CaseStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            for head in this.tracker.feed(&buf.filled()[before..]) {
                this.heads.push(head);
            }
        }
        polled
    }
}

impl AsyncWrite for CaseStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Where in the byte stream of a connection the tracker is.
#[derive(Debug, Default, PartialEq, Eq)]
enum State {
    /// Collecting a request head.
    #[default]
    Head,
    /// Skipping this many body bytes.
    Body(u64),
    /// A chunked body: collecting a chunk-size line.
    ChunkSize,
    /// Skipping a chunk's data and the CRLF after it.
    ChunkData(u64),
    /// After the last chunk: collecting trailer lines up to an empty one.
    Trailers,
    /// Something not followed (an upgrade, an oversized head, a parse error): stop.
    Off,
}

/// Follows one connection's HTTP/1 requests; pure, so it is tested on bytes alone.
#[derive(Debug, Default)]
struct Tracker {
    state: State,
    buf: Vec<u8>,
}

impl Tracker {
    /// Takes the next bytes the connection read; returns the heads they complete.
    fn feed(&mut self, mut data: &[u8]) -> Vec<Head> {
        let mut heads = Vec::new();
        while !data.is_empty() {
            match self.state {
                State::Off => return heads,
                State::Body(n) => {
                    let k = n.min(data.len() as u64);
                    data = &data[k as usize..];
                    self.state = if n == k {
                        State::Head
                    } else {
                        State::Body(n - k)
                    };
                }
                State::ChunkData(n) => {
                    let k = n.min(data.len() as u64);
                    data = &data[k as usize..];
                    self.state = if n == k {
                        State::ChunkSize
                    } else {
                        State::ChunkData(n - k)
                    };
                }
                State::Head if self.buf.is_empty() && matches!(data[0], b'\r' | b'\n') => {
                    // Blank lines before a request are allowed (RFC 9112, 2.2).
                    data = &data[1..];
                }
                State::Head => {
                    // httparse says where the head ends, as hyper's parser will (bare LF line
                    // ends included), so the two never disagree about the next request.
                    self.buf.extend_from_slice(data);
                    match parse_head(&self.buf) {
                        Parsed::Complete(head, next, len) => {
                            let used = data.len() - (self.buf.len() - len);
                            data = &data[used..];
                            self.buf.clear();
                            heads.push(head);
                            self.state = next;
                        }
                        Parsed::Partial if self.buf.len() <= MAX_HEAD => return heads,
                        Parsed::Partial | Parsed::Invalid => {
                            self.stop();
                            return heads;
                        }
                    }
                }
                State::ChunkSize | State::Trailers => {
                    let start = self.buf.len();
                    self.buf.extend_from_slice(data);
                    let Some(at) = self.buf[start..].iter().position(|b| *b == b'\n') else {
                        if self.buf.len() > MAX_HEAD {
                            self.stop();
                        }
                        return heads;
                    };
                    let at = start + at + 1;
                    // What followed the line goes round again.
                    let used = data.len() - (self.buf.len() - at);
                    data = &data[used..];
                    let line = std::mem::take(&mut self.buf);
                    let line = String::from_utf8_lossy(&line[..at]);
                    let line = line.trim_end_matches(['\r', '\n']);
                    if self.state == State::ChunkSize {
                        let size = line.split(';').next().unwrap_or_default().trim();
                        match u64::from_str_radix(size, 16) {
                            Ok(0) => self.state = State::Trailers,
                            // The data, then its CRLF.
                            Ok(n) => self.state = State::ChunkData(n.saturating_add(2)),
                            Err(_) => self.stop(),
                        }
                    } else if line.is_empty() {
                        self.state = State::Head;
                    }
                }
            }
        }
        heads
    }

    fn stop(&mut self) {
        self.state = State::Off;
        self.buf = Vec::new();
    }
}

enum Parsed {
    /// The head, what follows it, and its length in bytes.
    Complete(Head, State, usize),
    Partial,
    Invalid,
}

/// The request head at the start of `bytes`, if it is all there.
fn parse_head(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Invalid,
    };
    match head_of(&req) {
        Some((head, next)) => Parsed::Complete(head, next, len),
        None => Parsed::Invalid,
    }
}

fn head_of(req: &httparse::Request<'_, '_>) -> Option<(Head, State)> {
    let mut length = 0u64;
    let mut chunked = false;
    let mut upgrade = false;
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().ok()?;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    let method = req.method?.to_owned();
    let next = if upgrade || method == "CONNECT" {
        State::Off
    } else if chunked {
        State::ChunkSize
    } else if length > 0 {
        State::Body(length)
    } else {
        State::Head
    };
    let head = Head {
        method,
        target: req.path?.to_owned(),
        names: req.headers.iter().map(|h| h.name.to_owned()).collect(),
    };
    Some((head, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(heads: &[Head]) -> Vec<(String, Vec<String>)> {
        heads
            .iter()
            .map(|h| (format!("{} {}", h.method, h.target), h.names.clone()))
            .collect()
    }

    const TWO_REQUESTS: &str =
        "POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX-Thing: t\r\n\r\nhello\
GET /b HTTP/1.1\r\nhost: h\r\nAuthorization: Bearer x\r\n\r\n";

    #[test]
    fn heads_are_found_whatever_the_read_sizes() {
        let want = vec![
            (
                "POST /a?x=1".to_owned(),
                vec!["Host".into(), "Content-Length".into(), "X-Thing".into()],
            ),
            (
                "GET /b".to_owned(),
                vec!["host".into(), "Authorization".into()],
            ),
        ];
        for size in [1, 2, 3, 7, 16, 64, 4096] {
            let mut t = Tracker::default();
            let mut heads = Vec::new();
            for chunk in TWO_REQUESTS.as_bytes().chunks(size) {
                heads.extend(t.feed(chunk));
            }
            assert_eq!(names(&heads), want, "reads of {size} bytes");
        }
    }

    #[test]
    fn chunked_bodies_are_skipped() {
        let bytes = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
5;ext=1\r\nhello\r\n3\r\n\r\n\r\r\n0\r\nTrailer-One: x\r\n\r\n\r\nGET /d HTTP/1.1\r\nX-After: y\r\n\r\n";
        for size in [1, 5, 1000] {
            let mut t = Tracker::default();
            let heads: Vec<Head> = bytes
                .as_bytes()
                .chunks(size)
                .flat_map(|c| t.feed(c))
                .collect();
            assert_eq!(
                names(&heads),
                vec![
                    ("POST /c".to_owned(), vec!["Transfer-Encoding".to_owned()]),
                    ("GET /d".to_owned(), vec!["X-After".to_owned()]),
                ],
                "reads of {size} bytes"
            );
        }
    }

    #[test]
    fn bare_lf_heads_and_huge_chunk_sizes_stay_in_step() {
        let mut t = Tracker::default();
        let heads = t.feed(b"GET /lf HTTP/1.1\nX-Lf: 1\n\nGET /next HTTP/1.1\r\nX-Next: 2\r\n\r\n");
        assert_eq!(
            names(&heads),
            vec![
                ("GET /lf".to_owned(), vec!["X-Lf".to_owned()]),
                ("GET /next".to_owned(), vec!["X-Next".to_owned()]),
            ]
        );
        let mut t = Tracker::default();
        t.feed(b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n");
        assert_eq!(t.state, State::ChunkData(u64::MAX));
    }

    #[test]
    fn garbage_and_upgrades_stop_the_following() {
        for bytes in [
            "NOT HTTP AT ALL\r\n\u{1}\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        ] {
            let mut t = Tracker::default();
            let heads = t.feed(bytes.as_bytes());
            assert!(heads.len() <= 1, "{heads:?}");
            assert_eq!(t.state, State::Off);
        }
        let mut t = Tracker::default();
        assert!(t.feed(&vec![b'a'; MAX_HEAD + 10]).is_empty());
        assert_eq!(t.state, State::Off);
    }

    #[test]
    fn a_handler_takes_its_own_head_and_skips_untaken_ones() {
        let heads = Heads::default();
        for (m, t) in [("GET", "/x"), ("POST", "/y"), ("GET", "/z")] {
            heads.push(Head {
                method: m.into(),
                target: t.into(),
                names: vec![t.into()],
            });
        }
        assert_eq!(heads.take("POST", "/y").unwrap().names, ["/y"]);
        assert!(heads.take("GET", "/x").is_none(), "an older head is gone");
        assert!(heads.take("GET", "/unknown").is_none());
        assert_eq!(heads.take("get", "/z").unwrap().names, ["/z"]);
    }
}
