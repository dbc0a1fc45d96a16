//! The hello app's Rust function: a greeting, built with the unmodified `lambda_runtime` crate,
//! exactly as it would be deployed to AWS Lambda.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Request {
    name: Option<String>,
}

#[derive(Serialize)]
struct Response {
    message: String,
    request_id: String,
}

async fn handler(event: LambdaEvent<Request>) -> Result<Response, Error> {
    let name = event.payload.name.unwrap_or_else(|| "world".to_owned());
    if name.trim().is_empty() {
        return Err("name must not be empty".into());
    }
    println!("greeting {name}");
    Ok(Response {
        message: format!("Hello, {name}!"),
        request_id: event.context.request_id,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
