//! A car as the API accepts it. `POST /cars` takes the car's fields; `PUT /cars/{id}` takes
//! them again (a full replacement) with the `version` the client last read, for optimistic
//! locking. Unknown fields are refused, so a typo (`modle`) is a 400 rather than lost data.

use serde_json::{Map, Value};

use crate::{kind, ApiError};

/// The statuses a car may have; the table's `by-status` index lists cars by them.
pub const STATUSES: &[&str] = &["available", "reserved", "sold"];

/// The first car was built in 1886; a year far past today is a typo.
const YEARS: std::ops::RangeInclusive<i64> = 1886..=2100;

/// A validated car: the fields a client may set, normalized (status lower-case, VIN upper-case).
pub type Fields = Map<String, Value>;

fn text(
    body: &Map<String, Value>,
    field: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(ApiError::invalid(format!("{field} is required"))),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(ApiError::invalid(format!("{field} must not be empty")))
        }
        Some(Value::String(s)) if s.chars().count() > max => Err(ApiError::invalid(format!(
            "{field} must be at most {max} characters, got {}",
            s.chars().count()
        ))),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(other) => Err(ApiError::invalid(format!(
            "{field} must be a string, got {}",
            kind(other)
        ))),
    }
}

fn whole(
    body: &Map<String, Value>,
    field: &str,
    range: std::ops::RangeInclusive<i64>,
    required: bool,
) -> Result<Option<i64>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(ApiError::invalid(format!("{field} is required"))),
        Some(v) => match v.as_i64() {
            Some(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::invalid(format!(
                "{field} must be an integer from {} to {}, got {v}",
                range.start(),
                range.end()
            ))),
        },
    }
}

/// The body of `POST /cars` or `PUT /cars/{id}`, validated. `with_version`: `PUT`'s required
/// `version` (returned separately; it is not a field the client sets).
pub fn parse(body: &[u8], with_version: bool) -> Result<(Fields, Option<i64>), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "the body is empty; send the car as a JSON object",
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the body is not JSON: {e}")))?;
    let Value::Object(body) = value else {
        return Err(ApiError::invalid(format!(
            "the body must be a JSON object, got {}",
            kind(&value)
        )));
    };
    const KNOWN: &[&str] = &[
        "make", "model", "year", "color", "price", "mileage", "vin", "status", "version",
    ];
    if let Some(unknown) = body.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        let hint = if unknown == "id" {
            " (the id is given by the service, in the URL)"
        } else {
            ""
        };
        return Err(ApiError::invalid(format!(
            "unknown field {unknown:?}{hint}; a car has make, model, year, color, price, mileage, vin and status"
        )));
    }
    let mut fields = Map::new();
    fields.insert("make".into(), text(&body, "make", 64, true)?.into());
    fields.insert("model".into(), text(&body, "model", 64, true)?.into());
    fields.insert("year".into(), whole(&body, "year", YEARS, true)?.into());
    if let Some(c) = text(&body, "color", 32, false)? {
        fields.insert("color".into(), c.into());
    }
    match body.get("price") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_f64().is_some_and(|p| (0.0..=1e9).contains(&p)) => {
            fields.insert("price".into(), Value::Number(n.clone()));
        }
        Some(v) => {
            return Err(ApiError::invalid(format!(
                "price must be a number from 0 to 1000000000, got {v}"
            )))
        }
    }
    if let Some(m) = whole(&body, "mileage", 0..=10_000_000, false)? {
        fields.insert("mileage".into(), m.into());
    }
    if let Some(vin) = text(&body, "vin", 17, false)? {
        let vin = vin.to_ascii_uppercase();
        // ISO 3779: 17 characters, digits and letters without I, O and Q.
        let ok = vin.len() == 17
            && vin
                .bytes()
                .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"IOQ".contains(&b)));
        if !ok {
            return Err(ApiError::invalid(format!(
                "vin must be 17 letters and digits (no I, O or Q), got {vin:?}"
            )));
        }
        fields.insert("vin".into(), vin.into());
    }
    let status = text(&body, "status", 16, false)?
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_else(|| "available".into());
    if !STATUSES.contains(&status.as_str()) {
        return Err(ApiError::invalid(format!(
            "status must be one of {}, got {status:?}",
            STATUSES.join(", ")
        )));
    }
    fields.insert("status".into(), status.into());
    let version = if with_version {
        Some(whole(&body, "version", 1..=i64::MAX, true)?.expect("required"))
    } else {
        if body.contains_key("version") {
            return Err(ApiError::invalid(
                "version is set by the service; send it only with PUT, as the version you last read",
            ));
        }
        None
    };
    Ok((fields, version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cars_are_validated_with_clear_messages() {
        let cases: &[(&str, bool, Result<Value, &str>)] = &[
            (r#"{"make":"Ford","model":"T","year":1925}"#, false,
             Ok(json!({"make":"Ford","model":"T","year":1925,"status":"available"}))),
            (r#"{"make":" Ford ","model":"T","year":1925,"status":"SOLD","vin":"1hgcm82633a004352","price":9.5,"mileage":3,"color":"black"}"#, false,
             Ok(json!({"make":"Ford","model":"T","year":1925,"status":"sold","vin":"1HGCM82633A004352","price":9.5,"mileage":3,"color":"black"}))),
            ("", false, Err("the body is empty; send the car as a JSON object")),
            ("[1]", false, Err("the body must be a JSON object, got an array")),
            (r#"{"model":"T","year":1925}"#, false, Err("make is required")),
            (r#"{"make":"","model":"T","year":1925}"#, false, Err("make must not be empty")),
            (r#"{"make":"F","model":"T","year":"1925"}"#, false, Err("year must be an integer from 1886 to 2100, got \"1925\"")),
            (r#"{"make":"F","model":"T","year":1800}"#, false, Err("year must be an integer from 1886 to 2100, got 1800")),
            (r#"{"make":"F","model":"T","year":1925,"status":"gone"}"#, false, Err("status must be one of available, reserved, sold, got \"gone\"")),
            (r#"{"make":"F","model":"T","year":1925,"vin":"123"}"#, false, Err("vin must be 17 letters and digits (no I, O or Q), got \"123\"")),
            (r#"{"make":"F","model":"T","year":1925,"price":-1}"#, false, Err("price must be a number from 0 to 1000000000, got -1")),
            (r#"{"make":"F","model":"T","year":1925,"modle":"x"}"#, false, Err("unknown field \"modle\"; a car has make, model, year, color, price, mileage, vin and status")),
            (r#"{"make":"F","model":"T","year":1925,"version":1}"#, false, Err("version is set by the service; send it only with PUT, as the version you last read")),
            (r#"{"make":"F","model":"T","year":1925}"#, true, Err("version is required")),
        ];
        for (body, put, want) in cases {
            let got = parse(body.as_bytes(), *put)
                .map(|(f, _)| Value::Object(f))
                .map_err(|e| e.message);
            assert_eq!(got, want.clone().map_err(str::to_owned), "{body}");
        }
        let (_, version) =
            parse(br#"{"make":"F","model":"T","year":1925,"version":3}"#, true).unwrap();
        assert_eq!(version, Some(3));
    }
}
