//! The AWS APIs nimbus serves on its one endpoint, so the AWS CLI, boto3 and the AWS SDKs work
//! against it with `--endpoint-url`: Lambda's Invoke, ListFunctions, GetFunction and
//! GetFunctionConfiguration (restJson1), and SQS (AWS JSON 1.0, `X-Amz-Target: AmazonSQS.*`).

mod error;
mod lambda;
pub mod sqs;

pub use error::AwsError;
pub use lambda::router as lambda_router;
pub use sqs::{Sqs, SqsConfig};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use nimbus_lambda::Platform;

/// SQS messages are up to 1 MiB, a batch too; JSON escaping can double that.
const JSON_PROTOCOL_BODY_LIMIT: usize = 4 << 20;

/// Every AWS API nimbus serves, as one router for the AWS endpoint.
pub fn router(platform: Platform, sqs: Sqs) -> Router {
    // JSON-protocol services post to `/` (SDKs) or to the queue URL's path (some clients).
    let json_protocol = Router::new()
        .route("/", post(json_protocol))
        .route("/{account}/{queue}", post(json_protocol))
        .layer(DefaultBodyLimit::max(JSON_PROTOCOL_BODY_LIMIT))
        .with_state(sqs);
    lambda_router(platform)
        .merge(json_protocol)
        .fallback(error::unknown_operation)
}

/// Routes an AWS JSON protocol request by its `X-Amz-Target`.
async fn json_protocol(State(sqs): State<Sqs>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(action) = target.strip_prefix("AmazonSQS.") else {
        return AwsError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!(
                "nimbus serves no operation {target:?} here; SQS needs X-Amz-Target: AmazonSQS.<Action> (the query protocol is not supported)"
            ),
        )
        .into_response();
    };
    let input: serde_json::Value = match body.is_empty() {
        true => serde_json::json!({}),
        false => match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let body = serde_json::json!({
                    "__type": "com.amazon.coral.service#SerializationException",
                    "message": format!("the request body is not JSON: {e}"),
                });
                return (
                    StatusCode::BAD_REQUEST,
                    [("content-type", "application/x-amz-json-1.0")],
                    body.to_string(),
                )
                    .into_response();
            }
        },
    };
    match sqs.dispatch(action, input).await {
        Ok(out) => (
            StatusCode::OK,
            [("content-type", "application/x-amz-json-1.0")],
            out.to_string(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
