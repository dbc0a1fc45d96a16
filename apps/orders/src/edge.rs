//! What the three `src/bin/` programs share at their edge with the world: the clock, a JSON
//! response, and stopping on bad configuration. The rest of the crate stays free of I/O.

use std::fmt::Display;
use std::time::{SystemTime, UNIX_EPOCH};

use lambda_http::{Body, Response};

/// Milliseconds since the epoch, for log lines.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An API Gateway proxy response with a JSON body.
pub fn json_response(status: u16, body: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("static header names and values are valid")
}

/// The configuration, or exit status 2 with the reason: a function that cannot be configured
/// fails its init, as on Lambda.
pub fn or_exit<T, E: Display>(function: &str, config: Result<T, E>) -> T {
    config.unwrap_or_else(|e| {
        eprintln!("{function}: bad configuration: {e}");
        std::process::exit(2)
    })
}
