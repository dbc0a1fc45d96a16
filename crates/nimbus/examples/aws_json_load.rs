//! A keep-alive Rust load client for AWS JSON protocol APIs (bench/sqs.sh, bench/events.sh):
//! `C` tasks, each with its own kept-alive HTTP/1.1 connection, post the same request for `D`
//! seconds; prints `requests/s p50_ms p99_ms errors` on one line.
//!
//! Usage: aws_json_load URL X-AMZ-TARGET CONTENT-TYPE BODY CONNECTIONS SECONDS
//!
//! A request counts as an error unless it answers 200; the first error body is printed to stderr.

use std::time::{Duration, Instant};

#[path = "common/load.rs"]
mod load;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The signature's credential scope names a service (`AWS_LOAD_SERVICE`, default `dynamodb`):
/// peers that route by it (moto's server) need the right one.
fn authorization() -> String {
    let service = std::env::var("AWS_LOAD_SERVICE").unwrap_or_else(|_| "dynamodb".into());
    format!("AWS4-HMAC-SHA256 Credential=bench/20261206/us-east-1/{service}/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, target, content_type, body, conns, secs] = args.as_slice() else {
        eprintln!("usage: aws_json_load URL X-AMZ-TARGET CONTENT-TYPE BODY CONNECTIONS SECONDS");
        std::process::exit(2);
    };
    let conns: usize = conns.parse().expect("CONNECTIONS is a number");
    let secs: f64 = secs.parse().expect("SECONDS is a number");
    let body = Bytes::from(body.clone());
    let authorization = authorization();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        // One client per task: one connection each, reused for every request.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .build_http::<Full<Bytes>>();
        let (url, target, content_type, body, authorization) = (
            url.clone(),
            target.clone(),
            content_type.clone(),
            body.clone(),
            authorization.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut tally = load::Tally::default();
            while Instant::now() < deadline {
                let req = hyper::Request::post(&url)
                    .header("content-type", &content_type)
                    .header("x-amz-target", &target)
                    // Peers that insist on a signed-looking request (dynalite) get one; nimbus
                    // does not check signatures, like most local emulators.
                    .header("x-amz-date", "20261206T000000Z")
                    .header("authorization", &authorization)
                    .body(Full::new(body.clone()))
                    .expect("a valid request");
                let t = Instant::now();
                let outcome = match client.request(req).await {
                    Ok(resp) => {
                        let ok = resp.status() == 200;
                        let bytes = resp.into_body().collect().await.map(|b| b.to_bytes());
                        if ok && bytes.is_ok() {
                            Ok(())
                        } else {
                            Err(format!("error answer: {bytes:?}"))
                        }
                    }
                    Err(e) => Err(format!("request failed: {e}")),
                };
                tally.record(t, outcome);
            }
            tally
        }));
    }
    load::report(tasks, started, 2).await;
}
