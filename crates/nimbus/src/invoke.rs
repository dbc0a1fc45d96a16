//! `nimbus invoke`: a small Lambda Invoke API client for a running nimbus.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::cli::InvokeArgs;

pub async fn invoke(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    let payload = match args.payload.strip_prefix('@') {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read payload file {path}"))?
        }
        None => args.payload.clone().into_bytes(),
    };
    let uri = format!(
        "{}/2015-03-31/functions/{}/invocations",
        args.endpoint_url.trim_end_matches('/'),
        args.function
    );
    let request = hyper::Request::post(&uri)
        .header("content-type", "application/json")
        .header("x-amz-invocation-type", &args.invocation_type)
        .header("x-amz-log-type", if args.tail { "Tail" } else { "None" })
        .body(Full::new(Bytes::from(payload)))
        .with_context(|| format!("invalid function name or endpoint: {uri}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.with_context(|| {
        format!(
            "cannot reach nimbus at {}; is `nimbus up` running? (set --endpoint-url or NIMBUS_ENDPOINT)",
            args.endpoint_url
        )
    })?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await?.to_bytes();

    if let Some(log) = headers
        .get("x-amz-log-result")
        .and_then(|v| v.to_str().ok())
    {
        if let Ok(text) = base64::engine::general_purpose::STANDARD.decode(log) {
            eprint!("{}", String::from_utf8_lossy(&text));
        }
    }
    if !status.is_success() {
        let code = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("error");
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        eprintln!("error: {code} ({status}): {message}");
        return Ok(ExitCode::from(2));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&body)?;
    if !body.is_empty() {
        writeln!(out)?;
    }
    match headers.get("x-amz-function-error") {
        Some(kind) => {
            eprintln!("function error: {}", kind.to_str().unwrap_or("Unhandled"));
            Ok(ExitCode::FAILURE)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}
