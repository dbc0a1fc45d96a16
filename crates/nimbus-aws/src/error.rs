//! AWS restJson1 errors: header `x-amzn-ErrorType`, body `{"Type","message"}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An AWS API error as the SDKs parse it.
#[derive(Debug, Clone)]
pub struct AwsError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// `User` (the caller's fault) or `Service`.
    pub fault: &'static str,
    /// Extra top-level body fields, e.g. `Reason` for throttles.
    pub extra: Vec<(&'static str, String)>,
    pub retry_after: Option<u32>,
}

impl AwsError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fault: if status.is_server_error() {
                "Service"
            } else {
                "User"
            },
            extra: Vec::new(),
            retry_after: None,
        }
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("Type".into(), self.fault.into());
        // AWS JSON protocol clients (EventBridge) read the code from `__type`.
        body.insert("__type".into(), self.code.into());
        body.insert("message".into(), self.message.into());
        for (k, v) in self.extra {
            body.insert(k.into(), v.into());
        }
        let mut resp = (
            self.status,
            [("content-type", "application/json")],
            serde_json::Value::Object(body).to_string(),
        )
            .into_response();
        resp.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        resp
    }
}

pub(crate) async fn unknown_operation(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    AwsError::new(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        format!(
            "nimbus does not serve {method} {}; see the README for the AWS APIs it speaks",
            uri.path()
        ),
    )
    .into_response()
}
