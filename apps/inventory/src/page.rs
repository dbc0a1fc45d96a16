//! `GET /cars` pages: `limit` (1-100, default 20) and `next`, an opaque token that is the
//! table's `LastEvaluatedKey` (plain JSON, base64url). A token is checked to hold only key
//! attributes with string values, so a forged one is a 400 rather than a DynamoDB error.

use base64::Engine;
use serde_json::{Map, Value};

use crate::ApiError;

pub const DEFAULT_LIMIT: i32 = 20;
pub const MAX_LIMIT: i32 = 100;

/// The attributes a key of the table or its `by-status` index has.
const KEY_ATTRIBUTES: &[&str] = &["id", "status", "created_at"];

pub fn limit(raw: Option<&str>) -> Result<i32, ApiError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<i32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::new(
                400,
                "invalid_query",
                format!("limit must be an integer from 1 to {MAX_LIMIT}, got {s:?}"),
            )),
        },
    }
}

pub fn encode(key: &Map<String, Value>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Value::Object(key.clone()).to_string())
}

pub fn decode(token: &str) -> Result<Map<String, Value>, ApiError> {
    let bad = || {
        ApiError::new(
            400,
            "invalid_query",
            format!("next is not a token this API gave out: {token:?}"),
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .map_err(|_| bad())?;
    let key: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let ok = !key.is_empty()
        && key.contains_key("id")
        && key
            .iter()
            .all(|(k, v)| KEY_ATTRIBUTES.contains(&k.as_str()) && v.is_string());
    if ok {
        Ok(key)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_round_trip_and_forged_ones_are_refused() {
        let key = json!({"id": "c1", "status": "sold", "created_at": "2026-01-01T00:00:00Z"});
        let key = key.as_object().unwrap();
        assert_eq!(&decode(&encode(key)).unwrap(), key);
        for bad in [
            "",
            "!!",
            "e30",
            &encode(json!({"id": 1}).as_object().unwrap()),
            &encode(json!({"id": "x", "price": "1"}).as_object().unwrap()),
        ] {
            assert_eq!(decode(bad).unwrap_err().status, 400, "{bad}");
        }
        assert_eq!(limit(None), Ok(20));
        assert_eq!(limit(Some("100")), Ok(100));
        assert_eq!(
            limit(Some("0")).unwrap_err().message,
            "limit must be an integer from 1 to 100, got \"0\""
        );
    }
}
