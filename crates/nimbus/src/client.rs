//! A small HTTP client for the commands that talk to a running nimbus (`cost`, `chaos`).

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// `method url` with an optional JSON body: the status and the answer's text.
pub async fn call(
    endpoint: &str,
    method: &str,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<(u16, String)> {
    call_with(endpoint, method, path, body, &[]).await
}

/// [`call`] with extra headers.
pub async fn call_with(
    endpoint: &str,
    method: &str,
    path: &str,
    body: Option<String>,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String)> {
    let uri = format!("{}{path}", endpoint.trim_end_matches('/'));
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(&uri)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .with_context(|| format!("invalid endpoint: {uri}"))?;
    let resp = client.request(req).await.with_context(|| {
        format!("cannot reach nimbus at {endpoint}; is `nimbus up` running? (set --endpoint-url or NIMBUS_ENDPOINT)")
    })?;
    let status = resp.status().as_u16();
    let text = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
}

/// A GET that must succeed.
pub async fn get(endpoint: &str, path: &str) -> anyhow::Result<String> {
    let (status, text) = call(endpoint, "GET", path, None).await?;
    if !(200..300).contains(&status) {
        anyhow::bail!("{path} answered {status}: {text}");
    }
    Ok(text)
}
