//! Small helpers for messages about JSON input.

use serde_json::Value;

/// What kind of JSON value `v` is, as an error message says it ("a string", "an array", ...).
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
