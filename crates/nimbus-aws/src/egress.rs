//! nimbus's egress proxy. Functions given it (`HTTP_PROXY`, `HTTPS_PROXY`) send their
//! outbound HTTP(S) through here, so `egress` fault rules can break it per destination: added
//! latency, a refused connection, a reset connection, or (plain HTTP only) an error status such
//! as 503 or 429. HTTPS is tunnelled with `CONNECT` and never decrypted: a status rule answers
//! the `CONNECT` with that status, which the client sees as a failed connection, and a reset
//! comes after the TLS handshake. A tunnel open when a rule for its destination arrives is
//! reset, so the client's next connection meets the rule (HTTP clients keep tunnels open for
//! reuse). With no rule matching, the proxy only copies bytes; calls to nimbus's own endpoint
//! and APIs are never faulted (their faults are the chaos API's AWS and route rules).
//!
//! Bounded: at most [`MAX_CONNECTIONS`] client connections, tunnels included, at once (more
//! wait to be accepted), a request head must arrive within [`HEAD_TIMEOUT`], an upstream must
//! accept within [`CONNECT_TIMEOUT`], a tunnel idle for [`TUNNEL_IDLE`] is closed; bodies and
//! tunnels are streamed, never buffered.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use nimbus_core::chaos::Connection;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;

use crate::Chaos;

pub const MAX_CONNECTIONS: usize = 512;
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const TUNNEL_IDLE: Duration = Duration::from_secs(300);

type ProxyBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;
type Upstream = Client<hyper_util::client::legacy::connect::HttpConnector, Incoming>;

struct Proxy {
    chaos: Chaos,
    telemetry: Arc<nimbus_telemetry::Telemetry>,
    client: Upstream,
    /// nimbus's own endpoint and APIs (host, port): passed through untouched.
    own: Vec<(String, u16)>,
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A client's connection. With `reset` set it is reset (RST) when dropped rather than closed,
/// which is what a connection broken mid-answer looks like to the client.
struct ClientConn {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ClientConn {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Acquire) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ClientConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// What one client connection's requests share: its reset switch, and its permit, which a
/// tunnel takes over (the connection lives on as the tunnel).
struct PerConn {
    reset: Arc<AtomicBool>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
}

/// Binds the proxy on `addr` (loopback, port 0 for any) and serves it until the runtime
/// stops. `own` lists nimbus's own endpoint and APIs as `host:port`. Returns the address
/// functions are given.
pub async fn start(
    addr: SocketAddr,
    chaos: Chaos,
    telemetry: Arc<nimbus_telemetry::Telemetry>,
    own: Vec<String>,
) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    let proxy = Arc::new(Proxy {
        chaos,
        telemetry,
        client: Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(16)
            .build(connector),
        own: own
            .iter()
            .filter_map(|o| {
                let (h, p) = o.rsplit_once(':')?;
                Some((h.to_ascii_lowercase(), p.parse().ok()?))
            })
            .collect(),
    });
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (stream, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "egress proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let conn = Arc::new(PerConn {
                reset: Arc::default(),
                permit: Mutex::new(Some(permit)),
            });
            let io = ClientConn {
                stream,
                reset: conn.reset.clone(),
            };
            let proxy = proxy.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let (proxy, conn) = (proxy.clone(), conn.clone());
                    async move { Ok::<_, Infallible>(proxy.handle(req, &conn).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .serve_connection(TokioIo::new(io), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Ok(bound)
}

fn text(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut r = Response::new(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "text/plain; charset=utf-8".parse().unwrap());
    r
}

/// Headers that belong to one hop (RFC 9110 section 7.6.1) and the proxy's own.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes the hop-by-hop headers, and those the `Connection` header names as such.
fn strip_hop_by_hop(headers: &mut hyper::HeaderMap) {
    let named: Vec<String> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    for h in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(h);
    }
}

fn why(e: &dyn std::error::Error) -> String {
    let mut why = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        why = format!("{why}: {s}");
        source = s.source();
    }
    why
}

impl Proxy {
    /// Whether `host:port` is nimbus itself: one of its addresses, or any loopback name for
    /// one of its loopback ports.
    fn is_own(&self, host: &str, port: u16) -> bool {
        self.own.iter().any(|(h, p)| {
            *p == port && (h.eq_ignore_ascii_case(host) || (is_loopback(h) && is_loopback(host)))
        })
    }

    /// What the rules make of a connection to `host:port`, after any latency they add: the
    /// proxy's own answer instead of the destination's (`Err`), or whether to reset it partway.
    async fn verdict(&self, host: &str, port: u16) -> Result<bool, Response<ProxyBody>> {
        if self.is_own(host, port) {
            return Ok(false);
        }
        let Some(f) = self.chaos.egress_fault(host, port, &self.telemetry) else {
            return Ok(false);
        };
        if f.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(f.latency_ms)).await;
        }
        match f.connection {
            Some(Connection::Refuse) => Err(refused(host, port)),
            Some(Connection::Reset) => Ok(true),
            None if f.fails => {
                let mut r = text(
                    StatusCode::from_u16(f.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                    format!("{}: a fault injected by nimbus's egress proxy\n", f.code),
                );
                r.headers_mut()
                    .insert("x-nimbus-chaos", "egress".parse().unwrap());
                Err(r)
            }
            None => Ok(false),
        }
    }

    async fn handle(&self, req: Request<Incoming>, conn: &PerConn) -> Response<ProxyBody> {
        if req.method() == Method::CONNECT {
            return self.tunnel(req, conn).await;
        }
        let uri = req.uri().clone();
        let (Some(authority), Some("http")) = (uri.authority(), uri.scheme_str()) else {
            return text(
                StatusCode::BAD_REQUEST,
                "nimbus's egress proxy takes absolute http:// URLs and CONNECT\n".into(),
            );
        };
        let host = authority.host().to_owned();
        let port = authority.port_u16().unwrap_or(80);
        let reset = match self.verdict(&host, port).await {
            Ok(reset) => reset,
            Err(answer) => return answer,
        };
        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        // The absolute URL names the destination; a client's Host says the same or is wrong.
        if let Ok(v) = authority.as_str().parse() {
            parts.headers.insert("host", v);
        }
        let upstream = match self.client.request(Request::from_parts(parts, body)).await {
            Ok(r) => r,
            Err(e) => {
                return text(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "nimbus's egress proxy could not reach {host}:{port}: {}\n",
                        why(&e)
                    ),
                )
            }
        };
        let (mut parts, body) = upstream.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let body = if reset {
            conn.reset.store(true, Ordering::Release);
            cut_short(body)
        } else {
            body.map_err(|e| Box::new(e) as _).boxed()
        };
        Response::from_parts(parts, body)
    }

    async fn tunnel(&self, req: Request<Incoming>, conn: &PerConn) -> Response<ProxyBody> {
        let Some(authority) = req.uri().authority().cloned() else {
            return text(StatusCode::BAD_REQUEST, "CONNECT takes host:port\n".into());
        };
        let host = authority.host().to_owned();
        let port = authority.port_u16().unwrap_or(443);
        // Watching starts before the rules are read, so no rule installed from now on is missed.
        let watch = (!self.is_own(&host, port)).then(|| Watch {
            rules: self.chaos.rules_changed(),
            known: self.chaos.egress_rules_for(&host, port),
            chaos: self.chaos.clone(),
            host: host.clone(),
            port,
        });
        let reset = match self.verdict(&host, port).await {
            Ok(reset) => reset,
            Err(answer) => return answer,
        };
        let target = host.trim_start_matches('[').trim_end_matches(']');
        let upstream =
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((target, port))).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    return text(
                        StatusCode::BAD_GATEWAY,
                        format!("nimbus's egress proxy could not reach {host}:{port}: {e}\n"),
                    )
                }
                Err(_) => {
                    return text(
                        StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "nimbus's egress proxy: {host}:{port} did not accept within {} s\n",
                            CONNECT_TIMEOUT.as_secs()
                        ),
                    )
                }
            };
        let _ = upstream.set_nodelay(true);
        let permit = conn.permit.lock().unwrap().take();
        tokio::spawn(async move {
            let _permit = permit;
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let Ok(parts) = upgraded.downcast::<TokioIo<ClientConn>>() else {
                return;
            };
            let client = parts.io.into_inner();
            let _ = relay(client, parts.read_buf, upstream, reset, watch).await;
        });
        Response::new(Empty::new().map_err(|e| match e {}).boxed())
    }
}

fn refused(host: &str, port: u16) -> Response<ProxyBody> {
    let mut r = text(
        StatusCode::BAD_GATEWAY,
        format!("nimbus's egress proxy: connection to {host}:{port} refused (an injected fault)\n"),
    );
    r.headers_mut()
        .insert("x-nimbus-chaos", "egress".parse().unwrap());
    r
}

/// A plain HTTP answer that stops halfway through its first chunk: the client has the status
/// and headers, then the connection goes.
fn cut_short(body: Incoming) -> ProxyBody {
    BoxBody::new(CutShort {
        body: Some(body),
        pause: None,
        done: false,
    })
}

struct CutShort {
    body: Option<Incoming>,
    /// Between the half chunk and the reset, so the server writes what it has first (an
    /// error at once would abort the connection before the head went out).
    pause: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    done: bool,
}

impl hyper::body::Body for CutShort {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        let reset = || "connection reset by nimbus's egress proxy (an injected fault)".into();
        let Some(body) = this.body.as_mut() else {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(pause) = this.pause.as_mut() {
                if pause.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            this.done = true;
            return Poll::Ready(Some(Err(reset())));
        };
        match std::pin::Pin::new(body).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) if frame.is_data() => {
                this.body = None;
                this.pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(20))));
                let d = frame.into_data().unwrap_or_default();
                Poll::Ready(Some(Ok(Frame::data(d.slice(..d.len() / 2)))))
            }
            Poll::Ready(_) => {
                this.body = None;
                this.done = true;
                Poll::Ready(Some(Err(reset())))
            }
        }
    }
}

/// What a tunnel watches: the rules for its destination when it opened, and their changes.
struct Watch {
    rules: tokio::sync::watch::Receiver<u64>,
    known: Vec<nimbus_core::chaos::Fault>,
    chaos: Chaos,
    host: String,
    port: u16,
}

impl Watch {
    /// Whether a rule that breaks or slows the destination arrived since the tunnel opened,
    /// and wins its roll: the tunnel is reset so the client's next connection meets it.
    fn struck(&self) -> bool {
        self.chaos
            .egress_rules_for(&self.host, self.port)
            .iter()
            .filter(|f| !self.known.contains(f))
            .any(|f| (f.fails || f.latency_ms > 0) && rand::random::<f64>() < f.probability)
    }
}

/// Copies both ways, each direction on its own so a side that stops reading never stalls the
/// other or the watch, until both sides have closed (a half-close is passed on), the tunnel
/// idles for [`TUNNEL_IDLE`], or a rule for the destination arrives (`watch`): then the
/// client's connection is reset. With `reset`, the tunnel carries the exchange up to the
/// client's first write after the destination's first answer (for TLS: the handshake), lets
/// half of the destination's next chunk through, then resets the client's connection. A
/// destination that resets its connection has the client's reset too.
async fn relay(
    mut client: ClientConn,
    early: Bytes,
    mut upstream: TcpStream,
    reset: bool,
    mut watch: Option<Watch>,
) -> io::Result<()> {
    use std::sync::atomic::{AtomicU64, AtomicU8};
    if !early.is_empty() {
        upstream.write_all(&early).await?;
    }
    let start = tokio::time::Instant::now();
    let since_start = || start.elapsed().as_millis() as u64;
    let last = AtomicU64::new(0);
    // 0: not known yet, 1: TLS, 2: something else.
    let tls = AtomicU8::new(match early.first() {
        None => 0,
        Some(0x16) => 1,
        Some(_) => 2,
    });
    let answered = AtomicBool::new(false);
    let armed = AtomicBool::new(reset && tls.load(Ordering::Relaxed) == 2);
    let reset_client = client.reset.clone();
    let (mut cr, mut cw) = client.stream.split();
    let (mut ur, mut uw) = upstream.split();
    let to_upstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                let _ = uw.shutdown().await;
                return Ok::<_, io::Error>(());
            }
            last.store(since_start(), Ordering::Relaxed);
            if tls.load(Ordering::Relaxed) == 0 {
                tls.store(if buf[0] == 0x16 { 1 } else { 2 }, Ordering::Relaxed);
            }
            if reset && (tls.load(Ordering::Relaxed) == 2 || answered.load(Ordering::Relaxed)) {
                armed.store(true, Ordering::Relaxed);
            }
            uw.write_all(&buf[..n]).await?;
        }
    };
    let to_client = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match ur.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    reset_client.store(true, Ordering::Release);
                    return Err(e);
                }
            };
            if n == 0 {
                let _ = cw.shutdown().await;
                return Ok(());
            }
            last.store(since_start(), Ordering::Relaxed);
            if armed.load(Ordering::Relaxed) {
                cw.write_all(&buf[..n / 2]).await?;
                reset_client.store(true, Ordering::Release);
                return Err(io::Error::other("reset by an injected fault"));
            }
            answered.store(true, Ordering::Relaxed);
            cw.write_all(&buf[..n]).await?;
        }
    };
    let copy = async { tokio::try_join!(to_upstream, to_client).map(|_| ()) };
    tokio::pin!(copy);
    loop {
        let idle_for = Duration::from_millis(since_start() - last.load(Ordering::Relaxed));
        tokio::select! {
            r = &mut copy => return r,
            () = tokio::time::sleep(TUNNEL_IDLE.saturating_sub(idle_for)) => {
                let idle_for = since_start() - last.load(Ordering::Relaxed);
                if idle_for >= TUNNEL_IDLE.as_millis() as u64 {
                    return Ok(());
                }
            }
            Some(changed) = async {
                match watch.as_mut() {
                    Some(w) => Some(w.rules.changed().await),
                    None => None,
                }
            } => {
                match changed {
                    Err(_) => watch = None,
                    Ok(()) if watch.as_ref().is_some_and(Watch::struck) => {
                        reset_client.store(true, Ordering::Release);
                        return Ok(());
                    }
                    Ok(()) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve_once(answer: &'static [u8]) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(answer).await;
                });
            }
        });
        addr
    }

    async fn through(proxy: SocketAddr, request: String) -> (String, Option<std::io::Error>) {
        let mut s = TcpStream::connect(proxy).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; 4096];
        let err = loop {
            match s.read(&mut buf).await {
                Ok(0) => break None,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => break Some(e),
            }
        };
        (String::from_utf8_lossy(&out).into_owned(), err)
    }

    #[tokio::test]
    async fn rules_break_plain_http_and_tunnels_per_host_and_pass_the_rest() {
        let upstream = serve_once(
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\n0123456789",
        )
        .await;
        let chaos = Chaos::default();
        let proxy = start(
            "127.0.0.1:0".parse().unwrap(),
            chaos.clone(),
            Arc::default(),
            vec!["127.0.0.1:1".into()],
        )
        .await
        .unwrap();
        let get = format!(
            "GET http://{upstream}/x HTTP/1.1\r\nhost: {upstream}\r\nconnection: close\r\n\r\n"
        );
        let connect = format!("CONNECT {upstream} HTTP/1.1\r\nhost: {upstream}\r\n\r\n");
        let port = upstream.port();
        type Case = (serde_json::Value, &'static str, &'static str, &'static str);
        let cases: Vec<Case> = vec![
            (serde_json::json!([]), "200 OK", "0123456789", "none"),
            (
                serde_json::json!([{"service": "egress", "host": format!("127.0.0.1:{port}"), "error": {"statusCode": 429, "code": "TooManyRequests"}}]),
                "429 Too Many Requests",
                "TooManyRequests: a fault injected",
                "none",
            ),
            (
                serde_json::json!([{"service": "egress", "host": "127.0.0.1", "connection": "refuse"}]),
                "502 Bad Gateway",
                "refused (an injected fault)",
                "none",
            ),
            (
                serde_json::json!([{"service": "egress", "host": "other.example", "connection": "refuse"}]),
                "200 OK",
                "0123456789",
                "none",
            ),
            (
                serde_json::json!([{"service": "egress", "connection": "reset"}]),
                "200 OK",
                "01234",
                "cut",
            ),
        ];
        for (rules, status, body, how) in cases {
            chaos.set_rules(nimbus_core::chaos::parse(&rules).unwrap());
            let (out, _) = through(proxy, get.clone()).await;
            assert!(out.contains(status), "{rules}: {out}");
            assert!(out.contains(body), "{rules}: {out}");
            if how == "cut" {
                assert!(!out.contains("0123456789"), "{rules}: {out}");
            }
        }
        // A tunnel: the proxy's 200, then the upstream's bytes; reset cuts them at half.
        chaos.set_rules(Vec::new());
        let (out, _) = through(proxy, connect.clone() + "hello").await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with("0123456789"), "{out}");
        chaos.set_rules(
            nimbus_core::chaos::parse(
                &serde_json::json!([{"service": "egress", "connection": "reset"}]),
            )
            .unwrap(),
        );
        let (out, err) = through(proxy, connect.clone() + "hello").await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(!out.ends_with("0123456789"), "{out}");
        assert_eq!(
            err.map(|e| e.kind()),
            Some(std::io::ErrorKind::ConnectionReset),
            "{out}"
        );
        // A tunnel open before a rule for its destination arrives is reset by it.
        chaos.set_rules(Vec::new());
        let echo = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            tokio::spawn(async move {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = vec![0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            addr
        };
        let mut s = TcpStream::connect(proxy).await.unwrap();
        s.write_all(format!("CONNECT {echo} HTTP/1.1\r\nhost: {echo}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        s.write_all(b"ping").await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ping");
        chaos.set_rules(
            nimbus_core::chaos::parse(&serde_json::json!([{"service": "egress", "host": echo.to_string(), "connection": "refuse"}]))
                .unwrap(),
        );
        assert_eq!(
            s.read(&mut buf).await.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::ConnectionReset)
        );
        chaos.set_rules(
            nimbus_core::chaos::parse(
                &serde_json::json!([{"service": "egress", "error": {"statusCode": 503}}]),
            )
            .unwrap(),
        );
        let refused =
            format!("CONNECT {upstream} HTTP/1.1\r\nhost: {upstream}\r\nconnection: close\r\n\r\n");
        let (out, _) = through(proxy, refused).await;
        assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    }
}
