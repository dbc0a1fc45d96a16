//! `POST /notify`: the order in, the order with its correlation id on the bus out.
//!
//! The correlation id is API Gateway's request id: the one a client can quote from the
//! response, and the one in API Gateway's own access logs. It travels in the order's
//! `meta_data.correlation_id` to Deliver, and from there to the downstream API as the
//! `x-correlation-id` header.

use serde_json::{json, Map, Value};

use crate::log;

/// What the PutEvents entry says.
pub const SOURCE: &str = "orders.notify";
pub const DETAIL_TYPE: &str = "order-notify";

/// An error answer: `{"error":{"code","message"}}` with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    fn invalid(message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            code: "invalid_order",
            message: message.into(),
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

/// The JSON kind of `v`, with its article, for messages: "an array", "a string", ...
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

/// The order to publish: `body` parsed, checked to be a JSON object, with
/// `meta_data.correlation_id` set (other `meta_data` fields are kept).
pub fn prepare(body: &[u8], correlation_id: &str) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "the body is empty; send the order as a JSON object",
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the body is not JSON: {e}")))?;
    let Value::Object(mut order) = value else {
        return Err(ApiError::invalid(format!(
            "the body must be a JSON object, got {}",
            kind(&value)
        )));
    };
    let meta = order
        .entry("meta_data")
        .or_insert_with(|| Value::Object(Map::new()));
    match meta {
        Value::Object(m) => {
            m.insert("correlation_id".into(), Value::from(correlation_id));
        }
        other => {
            return Err(ApiError::invalid(format!(
                "meta_data must be a JSON object, got {}",
                kind(other)
            )))
        }
    }
    Ok(order)
}

/// One PutEvents result entry, as the SDK gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryResult {
    pub event_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// Whether PutEvents took our one entry: `Ok(event id)`, or the 502 to answer.
pub fn check_put_events(
    failed_entry_count: i32,
    entries: &[EntryResult],
) -> Result<String, ApiError> {
    let rejected = |message: String| ApiError {
        status: 502,
        code: "event_rejected",
        message,
    };
    match entries.first() {
        Some(EntryResult {
            error_code: Some(code),
            error_message,
            ..
        }) => Err(rejected(format!(
            "EventBridge rejected the order: {code}: {}",
            error_message.as_deref().unwrap_or("(no message)")
        ))),
        _ if failed_entry_count > 0 => Err(rejected(format!(
            "EventBridge reports {failed_entry_count} failed entry without an error code"
        ))),
        Some(EntryResult {
            event_id: Some(id), ..
        }) => Ok(id.clone()),
        _ => Err(rejected(
            "EventBridge answered without an event id for the order".into(),
        )),
    }
}

/// The 502 when the PutEvents call itself failed (network, credentials, throttling...).
pub fn bus_unavailable(detail: &str) -> ApiError {
    ApiError {
        status: 502,
        code: "event_bus_unavailable",
        message: format!("could not put the order on the event bus: {detail}"),
    }
}

/// The 200 answer.
pub fn accepted_body(correlation_id: &str) -> Value {
    json!({ "correlation_id": correlation_id })
}

/// `{"event":"accepted","correlation_id","ts_ms"}`
pub fn accepted_line(correlation_id: &str, ts_ms: u64) -> String {
    log::line(
        "accepted",
        &[("correlation_id", Value::from(correlation_id))],
        ts_ms,
    )
}

/// `{"event":"rejected","correlation_id","status","error","ts_ms"}`: an order not accepted.
pub fn rejected_line(correlation_id: &str, e: &ApiError, ts_ms: u64) -> String {
    log::line(
        "rejected",
        &[
            ("correlation_id", Value::from(correlation_id)),
            ("status", Value::from(e.status)),
            ("error", Value::from(format!("{}: {}", e.code, e.message))),
        ],
        ts_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> String {
        let e = prepare(body.as_bytes(), "req-1").unwrap_err();
        assert_eq!((e.status, e.code), (400, "invalid_order"));
        e.message
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_refused_with_the_precise_reason() {
        assert_eq!(
            message("order"),
            "the body is not JSON: expected value at line 1 column 1"
        );
        assert_eq!(
            message(r#"{"order_id": "o-1",}"#),
            "the body is not JSON: trailing comma at line 1 column 20"
        );
        assert_eq!(
            message("[1, 2]"),
            "the body must be a JSON object, got an array"
        );
        assert_eq!(
            message(r#""o-1""#),
            "the body must be a JSON object, got a string"
        );
        assert_eq!(message("null"), "the body must be a JSON object, got null");
        assert_eq!(
            message("42"),
            "the body must be a JSON object, got a number"
        );
        assert_eq!(
            message(" \n"),
            "the body is empty; send the order as a JSON object"
        );
        assert_eq!(
            message(""),
            "the body is empty; send the order as a JSON object"
        );
    }

    #[test]
    fn meta_data_must_be_an_object_when_present() {
        assert_eq!(
            message(r#"{"order_id":"o-1","meta_data":"x"}"#),
            "meta_data must be a JSON object, got a string"
        );
        assert_eq!(
            message(r#"{"meta_data":null}"#),
            "meta_data must be a JSON object, got null"
        );
    }

    #[test]
    fn the_correlation_id_is_added_to_meta_data_keeping_everything_else() {
        let order = prepare(br#"{"order_id":"o-1","email":"a@example.com"}"#, "req-1").unwrap();
        assert_eq!(
            Value::Object(order),
            json!({"order_id":"o-1","email":"a@example.com","meta_data":{"correlation_id":"req-1"}})
        );
        // An existing meta_data keeps its fields; a client-sent correlation id is replaced.
        let order = prepare(
            br#"{"order_id":"o-2","meta_data":{"channel":"web","correlation_id":"spoofed"}}"#,
            "req-2",
        )
        .unwrap();
        assert_eq!(
            order["meta_data"],
            json!({"channel":"web","correlation_id":"req-2"})
        );
    }

    #[test]
    fn a_failed_put_events_entry_is_a_502_with_its_code_and_message() {
        let ok = EntryResult {
            event_id: Some("e-1".into()),
            ..Default::default()
        };
        assert_eq!(check_put_events(0, &[ok]), Ok("e-1".into()));

        let failed = EntryResult {
            error_code: Some("InternalFailure".into()),
            error_message: Some("try again".into()),
            ..Default::default()
        };
        let e = check_put_events(1, &[failed]).unwrap_err();
        assert_eq!((e.status, e.code), (502, "event_rejected"));
        assert_eq!(
            e.message,
            "EventBridge rejected the order: InternalFailure: try again"
        );
        assert_eq!(
            e.body(),
            json!({"error":{"code":"event_rejected","message":"EventBridge rejected the order: InternalFailure: try again"}})
        );

        let e = check_put_events(1, &[EntryResult::default()]).unwrap_err();
        assert_eq!(
            e.message,
            "EventBridge reports 1 failed entry without an error code"
        );
        let e = check_put_events(0, &[]).unwrap_err();
        assert_eq!(
            e.message,
            "EventBridge answered without an event id for the order"
        );
    }

    #[test]
    fn log_lines_have_the_documented_shape() {
        assert_eq!(
            accepted_line("req-1", 1000),
            r#"{"event":"accepted","correlation_id":"req-1","ts_ms":1000}"#
        );
        assert_eq!(
            rejected_line("req-1", &bus_unavailable("dispatch failure"), 1000),
            r#"{"event":"rejected","correlation_id":"req-1","status":502,"error":"event_bus_unavailable: could not put the order on the event bus: dispatch failure","ts_ms":1000}"#
        );
        assert_eq!(accepted_body("req-1"), json!({"correlation_id":"req-1"}));
    }
}
