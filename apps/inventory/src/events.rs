//! The table's stream is the outbox: every committed change of a car becomes one event on the
//! inventory bus, whichever code path made it, and none is published for a write that did not
//! commit. `CarCreated`, `CarUpdated` and `CarDeleted`, with the car as it is now and as it was.

use serde_json::{json, Map, Value};

use crate::attrs::image_from_wire;

pub const SOURCE: &str = "inventory.cars";

/// One event to put on the bus, from one stream record.
#[derive(Debug, Clone, PartialEq)]
pub struct CarEvent {
    pub detail_type: &'static str,
    pub detail: Value,
    /// The record's sequence number, for `batchItemFailures`.
    pub sequence_number: String,
}

fn image(record: &Value, which: &str) -> Option<Map<String, Value>> {
    record["dynamodb"][which].as_object().map(image_from_wire)
}

/// The event a DynamoDB stream record (as Lambda delivers it) stands for.
pub fn from_record(record: &Value) -> Result<CarEvent, String> {
    let detail_type = match record["eventName"].as_str() {
        Some("INSERT") => "CarCreated",
        Some("MODIFY") => "CarUpdated",
        Some("REMOVE") => "CarDeleted",
        other => {
            return Err(format!(
                "not a DynamoDB stream record (eventName {other:?})"
            ))
        }
    };
    let sequence_number = record["dynamodb"]["SequenceNumber"]
        .as_str()
        .ok_or("the record has no dynamodb.SequenceNumber")?
        .to_string();
    let car = image(record, "NewImage");
    let previous = image(record, "OldImage");
    let id = car
        .as_ref()
        .or(previous.as_ref())
        .and_then(|c| c.get("id").cloned())
        .or_else(|| {
            record["dynamodb"]["Keys"]["id"]["S"]
                .as_str()
                .map(Value::from)
        })
        .ok_or("the record has no car id")?;
    let mut detail = json!({"id": id});
    if let Some(car) = car {
        detail["car"] = Value::Object(car);
    }
    if let Some(previous) = previous {
        detail["previous"] = Value::Object(previous);
    }
    Ok(CarEvent {
        detail_type,
        detail,
        sequence_number,
    })
}

/// How an event changes the count of cars per status: `(status, +1 | -1)` pairs.
pub fn status_changes(detail_type: &str, detail: &Value) -> Vec<(String, i64)> {
    let status = |which: &str| detail[which]["status"].as_str().map(str::to_owned);
    match detail_type {
        "CarCreated" => status("car").map(|s| vec![(s, 1)]).unwrap_or_default(),
        "CarDeleted" => status("previous")
            .map(|s| vec![(s, -1)])
            .unwrap_or_default(),
        "CarUpdated" => match (status("previous"), status("car")) {
            (Some(old), Some(new)) if old != new => vec![(old, -1), (new, 1)],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, old: Option<&str>, new: Option<&str>) -> Value {
        let img = |s: &str| json!({"id": {"S": "c1"}, "status": {"S": s}, "year": {"N": "2020"}});
        let mut d = json!({"Keys": {"id": {"S": "c1"}}, "SequenceNumber": "000000000000000000042"});
        if let Some(o) = old {
            d["OldImage"] = img(o);
        }
        if let Some(n) = new {
            d["NewImage"] = img(n);
        }
        json!({"eventName": name, "dynamodb": d})
    }

    #[test]
    fn stream_records_become_events_and_count_changes() {
        type Case = (Value, &'static str, Vec<(&'static str, i64)>);
        let cases: &[Case] = &[
            (
                record("INSERT", None, Some("available")),
                "CarCreated",
                vec![("available", 1)],
            ),
            (
                record("MODIFY", Some("available"), Some("sold")),
                "CarUpdated",
                vec![("available", -1), ("sold", 1)],
            ),
            (
                record("MODIFY", Some("sold"), Some("sold")),
                "CarUpdated",
                vec![],
            ),
            (
                record("REMOVE", Some("sold"), None),
                "CarDeleted",
                vec![("sold", -1)],
            ),
        ];
        for (r, want_type, want_changes) in cases {
            let e = from_record(r).unwrap();
            assert_eq!(e.detail_type, *want_type);
            assert_eq!(e.sequence_number, "000000000000000000042");
            assert_eq!(e.detail["id"], "c1");
            let changes = status_changes(e.detail_type, &e.detail);
            let want: Vec<(String, i64)> = want_changes
                .iter()
                .map(|(s, d)| (s.to_string(), *d))
                .collect();
            assert_eq!(changes, want, "{r}");
        }
        assert_eq!(
            from_record(&record("INSERT", None, Some("sold")))
                .unwrap()
                .detail["car"]["year"],
            2020
        );
        assert!(from_record(&json!({"eventName": "X"})).is_err());
    }
}
