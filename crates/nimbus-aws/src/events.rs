//! Amazon EventBridge over AWS JSON 1.1 (`X-Amz-Target: AWSEvents.<Action>`): `PutEvents`, and
//! the read-only calls that show what the template declared (`ListEventBuses`, `ListRules`,
//! `DescribeRule`, `ListTargetsByRule`). Rules come from the template; the engine is
//! `nimbus-events`.

use axum::http::StatusCode;
use nimbus_events::{Dest, Hub, PutEventsEntry, RuleSpec};
use serde_json::{json, Value};

use crate::AwsError;

/// PutEvents takes at most this many entries.
const MAX_ENTRIES: usize = 10;

fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new(StatusCode::BAD_REQUEST, "ValidationException", message)
}

pub async fn dispatch(hub: &Hub, action: &str, input: Value) -> Result<Value, AwsError> {
    match action {
        "PutEvents" => put_events(hub, &input),
        "ListEventBuses" => {
            let s = hub.settings();
            let buses: Vec<Value> = hub
                .buses()
                .map(|b| json!({"Name": b, "Arn": Dest::Bus(b.to_owned()).arn(&s.region, &s.account)}))
                .collect();
            Ok(json!({ "EventBuses": buses }))
        }
        "ListRules" => {
            let bus = bus_name(&input);
            let prefix = input["NamePrefix"].as_str().unwrap_or("");
            let rules: Vec<Value> = hub
                .rules()
                .filter(|r| r.bus == bus && r.name.starts_with(prefix))
                .map(|r| describe(hub, r))
                .collect();
            Ok(json!({ "Rules": rules }))
        }
        "DescribeRule" => Ok(describe(hub, rule(hub, &input, "Name")?)),
        "ListTargetsByRule" => {
            let r = rule(hub, &input, "Rule")?;
            let s = hub.settings();
            let targets: Vec<Value> = r
                .targets
                .iter()
                .map(|t| json!({"Id": t.id, "Arn": t.dest.arn(&s.region, &s.account)}))
                .collect();
            Ok(json!({ "Targets": targets }))
        }
        other => Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("nimbus serves PutEvents, ListEventBuses, ListRules, DescribeRule and ListTargetsByRule; rules come from the template, not {other}"),
        )),
    }
}

fn bus_name(input: &Value) -> &str {
    nimbus_events::config::bus_name(input["EventBusName"].as_str().unwrap_or("default"))
}

/// The rule `input[key]` names on the bus `EventBusName` names.
fn rule<'h>(hub: &'h Hub, input: &Value, key: &str) -> Result<&'h RuleSpec, AwsError> {
    let name = input[key]
        .as_str()
        .ok_or_else(|| validation(format!("{key} is required")))?;
    let bus = bus_name(input);
    hub.rules()
        .find(|r| r.name == name && r.bus == bus)
        .ok_or_else(|| {
            AwsError::new(
                StatusCode::BAD_REQUEST,
                "ResourceNotFoundException",
                format!("Rule {name} does not exist on EventBus {bus}."),
            )
        })
}

fn describe(hub: &Hub, r: &RuleSpec) -> Value {
    let s = hub.settings();
    let arn = nimbus_core::arn::rule_arn(&s.region, &s.account, &r.bus, &r.name);
    let mut out = json!({
        "Name": r.name,
        "Arn": arn,
        "EventBusName": r.bus,
        "State": if r.enabled { "ENABLED" } else { "DISABLED" },
    });
    if let Some(p) = &r.pattern_text {
        out["EventPattern"] = p.clone().into();
    }
    if let Some(sch) = &r.schedule_expression {
        out["ScheduleExpression"] = sch.clone().into();
    }
    out
}

fn put_events(hub: &Hub, input: &Value) -> Result<Value, AwsError> {
    let entries = match &input["Entries"] {
        Value::Array(a) => a,
        Value::Null => return Err(validation("1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null")),
        _ => return Err(validation("Entries must be a list")),
    };
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return Err(validation(format!(
            "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to {MAX_ENTRIES} and greater than or equal to 1 (got {})",
            entries.len()
        )));
    }
    let text = |e: &Value, k: &str| e[k].as_str().map(str::to_owned);
    let parsed: Vec<PutEventsEntry> = entries
        .iter()
        .map(|e| PutEventsEntry {
            source: text(e, "Source"),
            detail_type: text(e, "DetailType"),
            detail: text(e, "Detail"),
            event_bus_name: text(e, "EventBusName"),
            resources: e["Resources"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            time: match &e["Time"] {
                // SDKs send the timestamp as epoch seconds in JSON 1.1.
                Value::Number(n) => n.as_f64().and_then(|secs| {
                    time::OffsetDateTime::from_unix_timestamp(secs as i64)
                        .ok()
                        .and_then(|t| {
                            t.format(&time::format_description::well_known::Rfc3339)
                                .ok()
                        })
                }),
                Value::String(s) => Some(s.clone()),
                _ => None,
            },
            trace_header: text(e, "TraceHeader"),
        })
        .collect();
    let results = hub.put_events(&parsed);
    let failed = results.iter().filter(|r| r.is_err()).count();
    let out: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Ok(id) => json!({ "EventId": id }),
            Err(e) => json!({ "ErrorCode": e.code, "ErrorMessage": e.message }),
        })
        .collect();
    Ok(json!({ "FailedEntryCount": failed, "Entries": out }))
}
