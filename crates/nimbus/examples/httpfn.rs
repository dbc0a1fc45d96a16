//! A function built with the unmodified `lambda_http` crate, for nimbus's gateway tests: it
//! answers with what `lambda_http` made of the request, which proves nimbus's events are
//! complete enough for it to parse.

use lambda_http::{run, service_fn, Body, Error, Request, RequestExt, Response};
use serde_json::json;

async fn handler(req: Request) -> Result<Response<Body>, Error> {
    let context = serde_json::to_value(req.request_context()).unwrap_or_default();
    let body = match req.body() {
        Body::Empty => String::new(),
        Body::Text(t) => t.clone(),
        Body::Binary(b) => format!("{} bytes", b.len()),
        _ => String::new(),
    };
    let out = json!({
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "raw_http_path": req.raw_http_path(),
        "query": req.query_string_parameters().iter().collect::<Vec<_>>(),
        "path_parameters": req.path_parameters().iter().collect::<Vec<_>>(),
        "stage_variables": req.stage_variables().iter().collect::<Vec<_>>(),
        "header_x_test": req.headers().get("x-test").and_then(|v| v.to_str().ok()),
        "body": body,
        "context_kind": match &context { serde_json::Value::Object(m) => m.keys().next().cloned(), _ => None },
    });
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::Text(out.to_string()))?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(handler)).await
}
