//! nimbus's egress proxy. Functions given it (`HTTP_PROXY`, `HTTPS_PROXY`) send their
//! outbound HTTP(S) through here, so `egress` fault rules can break it per destination: added
//! latency, a refused connection, a connection reset mid-response, or (plain HTTP only) an
//! error status such as 503 or 429. HTTPS is tunnelled with `CONNECT` and never decrypted: a
//! status rule answers the `CONNECT` with that status, which the client sees as a failed
//! connection. With no rule matching, the proxy only copies bytes.
//!
//! Bounded: at most [`MAX_CONNECTIONS`] client connections at once (more wait to be accepted),
//! a request head must arrive within [`HEAD_TIMEOUT`], an upstream must accept within
//! [`CONNECT_TIMEOUT`]; bodies and tunnels are streamed, never buffered.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use nimbus_core::chaos::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::Chaos;

pub const MAX_CONNECTIONS: usize = 512;
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type ProxyBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;
type Upstream = Client<hyper_util::client::legacy::connect::HttpConnector, Incoming>;

struct Proxy {
    chaos: Chaos,
    telemetry: Arc<nimbus_telemetry::Telemetry>,
    client: Upstream,
}

/// Binds the proxy on `addr` (loopback, port 0 for any) and serves it until the runtime
/// stops. Returns the address functions are given.
pub async fn start(
    addr: SocketAddr,
    chaos: Chaos,
    telemetry: Arc<nimbus_telemetry::Telemetry>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    let proxy = Arc::new(Proxy {
        chaos,
        telemetry,
        client: Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector),
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
            let proxy = proxy.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let proxy = proxy.clone();
                    async move { Ok::<_, Infallible>(proxy.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
                drop(permit);
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

impl Proxy {
    /// What the rules make of a connection to `host:port`, after any latency they add: the
    /// proxy's own answer instead of the destination's (`Err`), or whether to reset it partway.
    async fn verdict(&self, host: &str, port: u16) -> Result<bool, Response<ProxyBody>> {
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

    async fn handle(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        if req.method() == Method::CONNECT {
            return self.tunnel(req).await;
        }
        let uri = req.uri().clone();
        let (Some(host), Some("http")) = (uri.host(), uri.scheme_str()) else {
            return text(
                StatusCode::BAD_REQUEST,
                "nimbus's egress proxy takes absolute http:// URLs and CONNECT\n".into(),
            );
        };
        let host = host.to_owned();
        let port = uri.port_u16().unwrap_or(80);
        let reset = match self.verdict(&host, port).await {
            Ok(reset) => reset,
            Err(answer) => return answer,
        };
        let (mut parts, body) = req.into_parts();
        for h in HOP_BY_HOP {
            parts.headers.remove(*h);
        }
        let upstream = match self.client.request(Request::from_parts(parts, body)).await {
            Ok(r) => r,
            Err(e) => {
                let mut why = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    why = format!("{why}: {s}");
                    source = s.source();
                }
                return text(
                    StatusCode::BAD_GATEWAY,
                    format!("nimbus's egress proxy could not reach {host}:{port}: {why}\n"),
                );
            }
        };
        let (mut parts, body) = upstream.into_parts();
        for h in HOP_BY_HOP {
            parts.headers.remove(*h);
        }
        let body = if reset {
            cut_short(body)
        } else {
            body.map_err(|e| Box::new(e) as _).boxed()
        };
        Response::from_parts(parts, body)
    }

    async fn tunnel(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        let Some(authority) = req.uri().authority().cloned() else {
            return text(StatusCode::BAD_REQUEST, "CONNECT takes host:port\n".into());
        };
        let host = authority.host().to_owned();
        let port = authority.port_u16().unwrap_or(443);
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
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            // The client's own socket, so a reset can be a real one (RST, not FIN).
            let Ok(parts) = upgraded.downcast::<TokioIo<TcpStream>>() else {
                return;
            };
            let client = parts.io.into_inner();
            let _ = relay(client, parts.read_buf, upstream, reset).await;
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

/// Copies both ways until either side closes. With `reset`, the tunnel carries the exchange
/// up to the client's request (for TLS: the handshake and what follows it), lets half of the
/// destination's next chunk through, then resets the client's connection.
async fn relay(
    mut client: TcpStream,
    early: Bytes,
    mut upstream: TcpStream,
    reset: bool,
) -> std::io::Result<()> {
    if !early.is_empty() {
        upstream.write_all(&early).await?;
    }
    if !reset {
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    // TLS: the first answer is the server's handshake; the client's next write finishes it
    // and carries the request, and the answer to that is what gets cut.
    let mut tls: Option<bool> = (!early.is_empty()).then(|| early[0] == 0x16);
    let mut upstream_chunks = 0u32;
    let mut armed = tls == Some(false);
    let mut from_client = vec![0u8; 16 * 1024];
    let mut from_upstream = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            n = client.read(&mut from_client) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                if tls.is_none() {
                    tls = Some(from_client[0] == 0x16);
                }
                if tls == Some(false) || upstream_chunks > 0 {
                    armed = true;
                }
                upstream.write_all(&from_client[..n]).await?;
            }
            n = upstream.read(&mut from_upstream) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                if armed {
                    client.write_all(&from_upstream[..n / 2]).await?;
                    client.set_zero_linger()?;
                    return Ok(());
                }
                upstream_chunks += 1;
                client.write_all(&from_upstream[..n]).await?;
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
