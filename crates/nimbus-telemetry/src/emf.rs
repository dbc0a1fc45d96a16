//! CloudWatch Embedded Metric Format: a JSON log line with an `_aws` member that declares which
//! of the line's other members are metrics, in which namespace, with which dimensions. Parsed
//! as CloudWatch does: a line that declares `_aws` but breaks the specification yields no
//! metric (and a reason), never an error for the function.
//!
//! Specification: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

use serde_json::{Map, Value};

/// Metrics one directive may declare, and values one metric may carry.
pub const MAX_METRICS: usize = 100;
pub const MAX_VALUES: usize = 100;
/// Dimensions in one dimension set.
pub const MAX_DIMENSIONS: usize = 30;

/// CloudWatch's standard units (`None` when a metric names none).
pub const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// One metric of one dimension set, with the values the line gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmfMetric {
    pub namespace: String,
    pub name: String,
    pub unit: String,
    /// `(dimension, value)` in the order the dimension set names them.
    pub dimensions: Vec<(String, String)>,
    pub values: Vec<f64>,
    pub timestamp_ms: u64,
}

/// Why a line that declares `_aws` gives no metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid embedded metric format: {0}")]
pub struct EmfError(pub String);

/// Cheap test for a line worth parsing: a JSON object mentioning `"_aws"`.
pub fn looks_like_emf(line: &str) -> bool {
    line.trim_start().starts_with('{') && line.contains("\"_aws\"")
}

/// The metrics of a log line: `Ok(None)` for a line that is not EMF (not a JSON object, or no
/// `_aws` member), `Err` for one that declares `_aws` but breaks the specification.
pub fn parse(line: &str) -> Result<Option<Vec<EmfMetric>>, EmfError> {
    let doc: Map<String, Value> = match serde_json::from_str(line.trim()) {
        Ok(Value::Object(m)) => m,
        _ => return Ok(None),
    };
    let Some(aws) = doc.get("_aws") else {
        return Ok(None);
    };
    let err = |m: String| Err(EmfError(m));
    let Some(aws) = aws.as_object() else {
        return err("_aws must be an object".into());
    };
    let timestamp_ms = match aws.get("Timestamp").and_then(Value::as_u64) {
        Some(t) => t,
        None => {
            return err("_aws.Timestamp must be a number of milliseconds since the epoch".into())
        }
    };
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        return err("_aws.CloudWatchMetrics must be an array".into());
    };
    let mut out = Vec::new();
    for (i, d) in directives.iter().enumerate() {
        let at = format!("_aws.CloudWatchMetrics[{i}]");
        let namespace = match d.get("Namespace").and_then(Value::as_str) {
            Some(n) if !n.is_empty() && n.len() <= 1024 => n,
            _ => {
                return err(format!(
                    "{at}.Namespace must be a string of 1 to 1024 characters"
                ))
            }
        };
        let Some(sets) = d.get("Dimensions").and_then(Value::as_array) else {
            return err(format!(
                "{at}.Dimensions must be an array of dimension sets"
            ));
        };
        let Some(metrics) = d.get("Metrics").and_then(Value::as_array) else {
            return err(format!("{at}.Metrics must be an array"));
        };
        if metrics.len() > MAX_METRICS {
            return err(format!(
                "{at}.Metrics declares {} metrics; at most {MAX_METRICS}",
                metrics.len()
            ));
        }
        let mut dimension_sets = Vec::new();
        for (j, set) in sets.iter().enumerate() {
            let Some(names) = set.as_array() else {
                return err(format!(
                    "{at}.Dimensions[{j}] must be an array of member names"
                ));
            };
            if names.len() > MAX_DIMENSIONS {
                return err(format!(
                    "{at}.Dimensions[{j}] has {} dimensions; at most {MAX_DIMENSIONS}",
                    names.len()
                ));
            }
            let mut dims = Vec::new();
            for name in names {
                let Some(name) = name.as_str() else {
                    return err(format!(
                        "{at}.Dimensions[{j}] must hold member names (strings)"
                    ));
                };
                match doc.get(name) {
                    Some(Value::String(v)) => dims.push((name.to_owned(), v.clone())),
                    Some(_) => {
                        return err(format!(
                            "dimension {name} must be a string member of the line"
                        ))
                    }
                    None => return err(format!("dimension {name} is not a member of the line")),
                }
            }
            dimension_sets.push(dims);
        }
        // A directive without dimension sets still yields its metrics, undimensioned.
        if dimension_sets.is_empty() {
            dimension_sets.push(Vec::new());
        }
        for (k, m) in metrics.iter().enumerate() {
            let name = match m.get("Name").and_then(Value::as_str) {
                Some(n) if !n.is_empty() && n.len() <= 1024 => n,
                _ => {
                    return err(format!(
                        "{at}.Metrics[{k}].Name must be a string of 1 to 1024 characters"
                    ))
                }
            };
            let unit = match m.get("Unit") {
                None | Some(Value::Null) => "None",
                Some(Value::String(u)) if UNITS.contains(&u.as_str()) => u.as_str(),
                Some(other) => {
                    return err(format!(
                        "{at}.Metrics[{k}].Unit {other} is not a CloudWatch unit"
                    ))
                }
            };
            if let Some(r) = m.get("StorageResolution") {
                if r.as_u64() != Some(1) && r.as_u64() != Some(60) {
                    return err(format!(
                        "{at}.Metrics[{k}].StorageResolution must be 1 or 60"
                    ));
                }
            }
            let values = match doc.get(name) {
                Some(Value::Number(n)) => vec![n.as_f64().unwrap_or(f64::NAN)],
                Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_VALUES => {
                    let vs: Option<Vec<f64>> = a.iter().map(Value::as_f64).collect();
                    match vs {
                        Some(vs) => vs,
                        None => return err(format!("metric {name}: every value must be a number")),
                    }
                }
                Some(Value::Array(a)) => {
                    return err(format!(
                        "metric {name}: 1 to {MAX_VALUES} values, got {}",
                        a.len()
                    ))
                }
                Some(_) => {
                    return err(format!(
                        "metric {name} must be a number or an array of numbers"
                    ))
                }
                None => return err(format!("metric {name} is not a member of the line")),
            };
            if values.iter().any(|v| !v.is_finite()) {
                return err(format!("metric {name}: values must be finite numbers"));
            }
            for dims in &dimension_sets {
                out.push(EmfMetric {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    unit: unit.to_owned(),
                    dimensions: dims.clone(),
                    values: values.clone(),
                    timestamp_ms,
                });
            }
        }
    }
    Ok(Some(out))
}
