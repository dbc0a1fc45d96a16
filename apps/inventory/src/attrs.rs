//! Cars as DynamoDB attributes: plain JSON to the SDK's `AttributeValue` and back, and the
//! DynamoDB JSON (`{"S": "Ford"}`) a stream record's images carry, to plain JSON.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use serde_json::{Map, Number, Value};

/// A number as DynamoDB's text gives it, as JSON: an integer when it is one, else a float.
fn number(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or_else(|| Value::String(text.to_string()), Value::Number)
}

pub fn to_sdk(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_sdk).collect()),
        Value::Object(m) => AttributeValue::M(item_to_sdk(m)),
    }
}

pub fn item_to_sdk(m: &Map<String, Value>) -> HashMap<String, AttributeValue> {
    m.iter().map(|(k, v)| (k.clone(), to_sdk(v))).collect()
}

pub fn from_sdk(v: &AttributeValue) -> Value {
    let b64 = |b: &[u8]| Value::String(base64::engine::general_purpose::STANDARD.encode(b));
    match v {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::B(b) => b64(b.as_ref()),
        AttributeValue::Ss(v) => v.iter().cloned().map(Value::String).collect(),
        AttributeValue::Ns(v) => v.iter().map(|n| number(n)).collect(),
        AttributeValue::Bs(v) => v.iter().map(|b| b64(b.as_ref())).collect(),
        AttributeValue::L(l) => l.iter().map(from_sdk).collect(),
        AttributeValue::M(m) => Value::Object(item_from_sdk(m)),
        // A type newer than this SDK release: kept visible rather than dropped.
        _ => Value::String(format!("{v:?}")),
    }
}

pub fn item_from_sdk(m: &HashMap<String, AttributeValue>) -> Map<String, Value> {
    m.iter().map(|(k, v)| (k.clone(), from_sdk(v))).collect()
}

/// One DynamoDB JSON value (`{"N": "1"}`) as plain JSON.
pub fn from_wire(v: &Value) -> Value {
    let Some((ty, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return Value::Null;
    };
    match (ty.as_str(), inner) {
        ("S" | "B", Value::String(s)) => Value::String(s.clone()),
        ("N", Value::String(n)) => number(n),
        ("BOOL", b @ Value::Bool(_)) => b.clone(),
        ("SS" | "BS", Value::Array(a)) => Value::Array(a.clone()),
        ("NS", Value::Array(a)) => a
            .iter()
            .map(|n| number(n.as_str().unwrap_or("0")))
            .collect(),
        ("L", Value::Array(a)) => a.iter().map(from_wire).collect(),
        ("M", Value::Object(m)) => Value::Object(image_from_wire(m)),
        _ => Value::Null,
    }
}

/// A stream record's `NewImage` / `OldImage` as plain JSON.
pub fn image_from_wire(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter().map(|(k, v)| (k.clone(), from_wire(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cars_round_trip_through_attributes_and_stream_images() {
        let car = json!({"id": "c1", "make": "Ford", "year": 1925, "price": 9.5, "sold": false,
                         "note": null, "tags": ["a"], "specs": {"doors": 2}});
        let sdk = item_to_sdk(car.as_object().unwrap());
        assert_eq!(sdk["year"], AttributeValue::N("1925".into()));
        assert_eq!(Value::Object(item_from_sdk(&sdk)), car);
        let wire = json!({"id": {"S": "c1"}, "year": {"N": "1925"}, "price": {"N": "9.5"},
                          "sold": {"BOOL": false}, "specs": {"M": {"doors": {"N": "2"}}},
                          "tags": {"L": [{"S": "a"}]}, "set": {"NS": ["1", "2"]}});
        assert_eq!(
            Value::Object(image_from_wire(wire.as_object().unwrap())),
            json!({"id": "c1", "year": 1925, "price": 9.5, "sold": false, "specs": {"doors": 2},
                   "tags": ["a"], "set": [1, 2]})
        );
    }
}
