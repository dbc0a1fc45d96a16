//! The car-inventory service's three functions, as pure policy: what each one accepts, stores,
//! answers and publishes, tested without sockets or clocks. The `src/bin/` programs do the I/O
//! (lambda_http / lambda_runtime and the AWS SDK for Rust), with what they share at that edge in
//! [`edge`].
//!
//! - [`car`]: validation of a car as `POST /cars` and `PUT /cars/{id}` accept it.
//! - [`attrs`]: a car as DynamoDB attributes and back (the SDK's `AttributeValue`, and the
//!   wire JSON a stream record carries).
//! - [`page`]: `GET /cars` pagination tokens.
//! - [`events`]: stream records to `CarCreated` / `CarUpdated` / `CarDeleted` events, and the
//!   per-status count changes an event makes.

pub mod attrs;
pub mod car;
pub mod edge;
pub mod events;
pub mod page;

use serde_json::{json, Value};

/// An error answer: `{"error": {"code", "message"}}` with its HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Extra fields, e.g. the current version on a conflict.
    pub extra: Option<(&'static str, Value)>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "invalid_car", message)
    }

    pub fn not_found(id: &str) -> ApiError {
        ApiError::new(404, "not_found", format!("no car with id {id:?}"))
    }

    pub fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some((k, v)) = &self.extra {
            error[*k] = v.clone();
        }
        json!({ "error": error })
    }
}

/// The JSON kind of `v`, with its article, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
