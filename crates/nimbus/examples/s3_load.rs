//! A keep-alive Rust load client for S3's REST API (bench/s3.sh), path-style and signed-looking
//! (a SigV4 header for the `s3` service that neither nimbus nor moto checks).
//!
//! Usage:
//!   s3_load put URL SIZE CONNECTIONS SECONDS   PUTs of SIZE bytes to URL-<task>-<n>
//!   s3_load get URL CONNECTIONS SECONDS        GETs of URL, each body read to its end
//!     both print `requests/s p50_ms p99_ms errors` on one line
//!   s3_load put-file URL FILE                  one PUT of FILE's bytes, streamed from disk
//!   s3_load get-file URL                       one GET, its body counted and dropped
//!     both print `MiB/s seconds bytes` on one line
//!
//! A request counts as an error unless it answers 200; the first error is printed to stderr.

use std::time::{Duration, Instant};

#[path = "common/load.rs"]
mod load;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=bench/20261206/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000";

fn request(method: &str, url: &str) -> hyper::http::request::Builder {
    hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("x-amz-date", "20261206T000000Z")
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .header("authorization", AUTHORIZATION)
}

async fn drain(body: hyper::body::Incoming) -> Result<u64, String> {
    let mut body = body;
    let mut n = 0;
    while let Some(f) = body.frame().await {
        if let Ok(d) = f.map_err(|e| e.to_string())?.into_data() {
            n += d.len() as u64;
        }
    }
    Ok(n)
}

async fn many(put: bool, url: String, size: usize, conns: usize, secs: f64) {
    let body = Bytes::from(vec![b'x'; size]);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..conns {
        // One client per task: one connection each, reused for every request.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .build_http::<Full<Bytes>>();
        let (url, body) = (url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = load::Tally::default();
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let req = if put {
                    request("PUT", &format!("{url}-{task}-{i}"))
                        .header("content-length", body.len())
                        .body(Full::new(body.clone()))
                } else {
                    request("GET", &url).body(Full::new(Bytes::new()))
                }
                .expect("a valid request");
                let t = Instant::now();
                let outcome = match client.request(req).await {
                    Ok(resp) => {
                        let status = resp.status();
                        match drain(resp.into_body()).await {
                            Ok(_) if status == 200 => Ok(()),
                            Ok(_) => Err(format!("status {status}")),
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                tally.record(t, outcome.map_err(|e| format!("request failed: {e}")));
            }
            tally
        }));
    }
    load::report(tasks, started, 3).await;
}

async fn put_file(url: &str, path: &str) -> Result<u64, String> {
    use tokio::io::AsyncReadExt;
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.to_string())?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    tokio::spawn(async move {
        loop {
            let mut buf = vec![0; 1 << 20];
            match file.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(Frame::data(Bytes::from(buf)))).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    let body = StreamBody::new(tokio_stream_from(rx));
    let client = Client::builder(TokioExecutor::new()).build_http();
    let req = request("PUT", url)
        .header("content-length", len)
        .body(body)
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    drain(resp.into_body()).await?;
    if status != 200 {
        return Err(format!("status {status}"));
    }
    Ok(len)
}

/// The receiver as a stream of frames (what `StreamBody` takes), without another crate.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn get_file(url: &str) -> Result<u64, String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = request("GET", url)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let n = drain(resp.into_body()).await?;
    if status != 200 {
        return Err(format!("status {status}"));
    }
    Ok(n)
}

/// Times one transfer and prints `MiB/s seconds bytes`.
async fn once(transfer: impl std::future::Future<Output = Result<u64, String>>) {
    let t = Instant::now();
    match transfer.await {
        Ok(n) => {
            let s = t.elapsed().as_secs_f64();
            println!("{:.1} {s:.3} {n}", n as f64 / s / (1 << 20) as f64);
        }
        Err(e) => {
            eprintln!("request failed: {e}");
            std::process::exit(1);
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!("usage: s3_load put URL SIZE CONNECTIONS SECONDS | get URL CONNECTIONS SECONDS | put-file URL FILE | get-file URL");
        std::process::exit(2)
    };
    let num = |s: &String| s.parse::<f64>().unwrap_or_else(|_| usage());
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["put", url, ..] if args.len() == 5 => {
            many(
                true,
                url.to_string(),
                num(&args[2]) as usize,
                num(&args[3]) as usize,
                num(&args[4]),
            )
            .await
        }
        ["get", url, ..] if args.len() == 4 => {
            many(
                false,
                url.to_string(),
                0,
                num(&args[2]) as usize,
                num(&args[3]),
            )
            .await
        }
        ["put-file", url, file] => once(put_file(url, file)).await,
        ["get-file", url] => once(get_file(url)).await,
        _ => usage(),
    }
}
