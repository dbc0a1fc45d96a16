//! The gateway's requests to HTTP backends (`HTTP_PROXY` and `HTTP` integrations): one client
//! for the process, keeping connections alive, speaking `http://` and `https://`. TLS trusts the
//! system's roots (and `SSL_CERT_FILE` / `SSL_CERT_DIR`, which `rustls-native-certs` reads), as
//! a backend on the user's machine or network is reached by what that machine trusts.
//! `hyper-rustls` with `ring`: the TLS stack the workspace's apps already build (reqwest).

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Largest answer a backend may give (API Gateway's payload limit).
pub const MAX_ANSWER: usize = 10 * 1024 * 1024;

/// Headers about one connection (and the body's framing, which hyper sets anew): not passed
/// through in either direction.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

fn client() -> &'static Client<Https, Full<Bytes>> {
    static CLIENT: OnceLock<Client<Https, Full<Bytes>>> = OnceLock::new();
    CLIENT.get_or_init(|| {
        // Without a readable system store, Mozilla's roots (webpki-roots) still reach public
        // https backends.
        let connector = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
            Ok(b) => b.https_or_http().enable_http1().build(),
            Err(e) => {
                tracing::warn!(error = %e, "no system TLS roots; https backends are checked against Mozilla's");
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_webpki_roots()
                    .https_or_http()
                    .enable_http1()
                    .build()
            }
        };
        Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector)
    })
}

/// The headers whose values are text, as `(name, value)` pairs.
pub fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// `url` with `pairs` form-encoded onto its query string.
pub fn with_query(mut url: String, pairs: &[(String, String)]) -> String {
    if !pairs.is_empty() {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.extend_pairs(pairs);
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&q.finish());
    }
    url
}

/// A backend's answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a backend gave no answer, and the status API Gateway answers the client with.
pub struct Failure {
    pub why: String,
    pub status: StatusCode,
}

/// Sends one request; `headers` are sent as given except hop-by-hop ones and `host`.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Bytes,
    timeout: Duration,
) -> Result<Answer, Failure> {
    let fail = |why: String, status| Failure { why, status };
    let mut builder = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        if k != "host" && !HOP_BY_HOP.contains(&k.as_str()) {
            builder = builder.header(k.as_str(), v.as_str());
        }
    }
    let request = builder.body(Full::new(body)).map_err(|e| {
        fail(
            format!("{url:?} is not a valid request URL: {e}"),
            StatusCode::INTERNAL_SERVER_ERROR,
        )
    })?;
    let deadline = tokio::time::Instant::now() + timeout;
    let response = match tokio::time::timeout_at(deadline, client().request(request)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            // The connector's error says why (refused, TLS handshake, certificate).
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            return Err(fail(
                format!("{url}: {why}"),
                StatusCode::INTERNAL_SERVER_ERROR,
            ));
        }
        Err(_) => {
            return Err(fail(
                format!("{url}: timed out"),
                StatusCode::GATEWAY_TIMEOUT,
            ))
        }
    };
    let (parts, body) = response.into_parts();
    // The deadline covers the body too: a backend that trickles it is cut off.
    let body = match tokio::time::timeout_at(
        deadline,
        http_body_util::Limited::new(body, MAX_ANSWER).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) => {
            return Err(fail(
                format!("the answer from {url}: {e}"),
                StatusCode::BAD_GATEWAY,
            ))
        }
        Err(_) => {
            return Err(fail(
                format!("{url}: timed out"),
                StatusCode::GATEWAY_TIMEOUT,
            ))
        }
    };
    let mut headers = parts.headers;
    for h in HOP_BY_HOP {
        headers.remove(*h);
    }
    Ok(Answer {
        status: parts.status,
        headers,
        body,
    })
}
