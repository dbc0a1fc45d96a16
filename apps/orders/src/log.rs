//! The functions' log lines: one JSON object per line on stdout, which Lambda (and nimbus)
//! captures into the function's log stream. Each line has `event` first and `ts_ms` (Unix
//! milliseconds, passed in by the caller) last.

use serde_json::Value;

/// One JSON line: `{"event": event, ...fields, "ts_ms": ts_ms}` (keys in that order).
pub fn line(event: &str, fields: &[(&str, Value)], ts_ms: u64) -> String {
    // serde_json's Map is sorted without the `preserve_order` feature, so the line is written
    // by hand from serialized parts to keep `event` first and `ts_ms` last.
    let mut out = String::with_capacity(128);
    out.push_str("{\"event\":");
    out.push_str(&Value::from(event).to_string());
    for (k, v) in fields {
        out.push(',');
        out.push_str(&Value::from(*k).to_string());
        out.push(':');
        out.push_str(&v.to_string());
    }
    out.push_str(",\"ts_ms\":");
    out.push_str(&ts_ms.to_string());
    out.push('}');
    out
}

/// `Some(text)` as a JSON string, `None` as `null`.
pub fn opt(v: Option<&str>) -> Value {
    v.map_or(Value::Null, Value::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_is_one_json_object_with_event_first_and_ts_ms_last() {
        let l = line(
            "attempt",
            &[
                ("correlation_id", json!("c-\"1\"")),
                ("status", Value::Null),
            ],
            1_700_000_000_123,
        );
        assert_eq!(
            l,
            r#"{"event":"attempt","correlation_id":"c-\"1\"","status":null,"ts_ms":1700000000123}"#
        );
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["correlation_id"], "c-\"1\"");
        assert!(!l.contains('\n'));
    }
}
