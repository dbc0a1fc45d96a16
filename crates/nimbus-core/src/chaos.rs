//! Fault rules for nimbus's AWS APIs, in the shape of LocalStack's chaos API so existing
//! experiments port: `[{"service", "region", "operation", "probability", "error":
//! {"statusCode", "code"}}]`. A rule's absent field matches anything; the first rule that
//! matches a request and wins its roll decides the error. Pure: the caller rolls the dice.

use serde_json::{json, Value};

/// The services a rule may name (botocore's service names, as LocalStack takes them).
pub const SERVICES: &[&str] = &[
    "dynamodb",
    "dynamodbstreams",
    "events",
    "lambda",
    "logs",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "stepfunctions",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub service: Option<String>,
    pub region: Option<String>,
    pub operation: Option<String>,
    /// 0 to 1.
    pub probability: f64,
    pub status: u16,
    pub code: String,
}

impl Fault {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "probability": self.probability,
            "error": {"statusCode": self.status, "code": self.code},
        });
        for (k, f) in [
            ("service", &self.service),
            ("region", &self.region),
            ("operation", &self.operation),
        ] {
            if let Some(s) = f {
                v[k] = s.as_str().into();
            }
        }
        v
    }

    pub fn matches(&self, service: &str, operation: &str, region: &str) -> bool {
        let is = |rule: &Option<String>, v: &str| rule.as_deref().is_none_or(|r| r == v);
        is(&self.service, service) && is(&self.operation, operation) && is(&self.region, region)
    }
}

/// Reads a list of rules, or says what is wrong with the first bad one.
pub fn parse(doc: &Value) -> Result<Vec<Fault>, String> {
    let rules = doc
        .as_array()
        .ok_or("the body must be a JSON array of fault rules")?;
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = format!("rule {i}");
            let obj = r.as_object().ok_or(format!("{at}: a rule is a JSON object"))?;
            for k in obj.keys() {
                if !["service", "region", "operation", "probability", "error"].contains(&k.as_str()) {
                    return Err(format!(
                        "{at}: unknown field {k:?} (a rule has service, region, operation, probability and error)"
                    ));
                }
            }
            let text = |k: &str| -> Result<Option<String>, String> {
                match &r[k] {
                    Value::Null => Ok(None),
                    Value::String(s) => Ok(Some(s.clone())),
                    other => Err(format!("{at}: {k} must be a string, got {other}")),
                }
            };
            let service = text("service")?;
            if let Some(s) = &service {
                if !SERVICES.contains(&s.as_str()) {
                    return Err(format!(
                        "{at}: nimbus serves no service {s:?}; it serves {}",
                        SERVICES.join(", ")
                    ));
                }
            }
            let probability = match &r["probability"] {
                Value::Null => 1.0,
                v => v
                    .as_f64()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or(format!("{at}: probability must be a number from 0 to 1, got {v}"))?,
            };
            let error = &r["error"];
            let status = match &error["statusCode"] {
                Value::Null => 503,
                v => v
                    .as_u64()
                    .filter(|s| (400..=599).contains(s))
                    .ok_or(format!("{at}: error.statusCode must be an HTTP error status (400-599), got {v}"))?
                    as u16,
            };
            let code = match &error["code"] {
                Value::Null => "ServiceUnavailable".to_owned(),
                Value::String(s) if !s.is_empty() => s.clone(),
                v => return Err(format!("{at}: error.code must be a non-empty string, got {v}")),
            };
            Ok(Fault {
                service,
                region: text("region")?,
                operation: text("operation")?,
                probability,
                status,
                code,
            })
        })
        .collect()
}

/// The fault for a request, if a rule matches and `roll` (uniform in [0, 1)) is under its
/// probability.
pub fn pick<'a>(
    faults: &'a [Fault],
    service: &str,
    operation: &str,
    region: &str,
    roll: f64,
) -> Option<&'a Fault> {
    faults
        .iter()
        .find(|f| f.matches(service, operation, region))
        .filter(|f| roll < f.probability)
}

/// The latency effect: `{"latency": ms}`.
pub fn parse_effects(doc: &Value) -> Result<u64, String> {
    match &doc["latency"] {
        Value::Null => Ok(0),
        v => v.as_u64().filter(|ms| *ms <= 600_000).ok_or(format!(
            "latency must be a whole number of milliseconds up to 600000, got {v}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_by_service_operation_and_region_with_their_probability() {
        let faults = parse(&json!([
            {"service": "sqs", "operation": "SendMessage", "error": {"statusCode": 503, "code": "ServiceUnavailable"}},
            {"service": "dynamodb", "probability": 0.5, "error": {"statusCode": 400, "code": "ProvisionedThroughputExceededException"}},
            {"region": "eu-west-1"},
        ]))
        .unwrap();
        let cases = [
            (
                "sqs",
                "SendMessage",
                "us-east-1",
                0.99,
                Some("ServiceUnavailable"),
            ),
            ("sqs", "ReceiveMessage", "us-east-1", 0.0, None),
            (
                "dynamodb",
                "PutItem",
                "us-east-1",
                0.49,
                Some("ProvisionedThroughputExceededException"),
            ),
            ("dynamodb", "PutItem", "us-east-1", 0.5, None),
            (
                "s3",
                "GetObject",
                "eu-west-1",
                0.9,
                Some("ServiceUnavailable"),
            ),
        ];
        for (s, o, r, roll, want) in cases {
            assert_eq!(
                pick(&faults, s, o, r, roll).map(|f| f.code.as_str()),
                want,
                "{s} {o} {r} {roll}"
            );
        }
        assert_eq!(
            parse(&faults.iter().map(Fault::to_json).collect()).unwrap(),
            faults
        );
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        let cases = [
            (json!({}), "JSON array"),
            (
                json!([{"service": "kinesis"}]),
                "nimbus serves no service \"kinesis\"",
            ),
            (
                json!([{"probability": 1.5}]),
                "probability must be a number from 0 to 1",
            ),
            (json!([{"error": {"statusCode": 200}}]), "HTTP error status"),
            (json!([{"servce": "sqs"}]), "unknown field \"servce\""),
        ];
        for (doc, want) in cases {
            let e = parse(&doc).unwrap_err();
            assert!(e.contains(want), "{doc}: {e}");
        }
        assert_eq!(parse_effects(&json!({"latency": 250})), Ok(250));
        assert!(parse_effects(&json!({"latency": -1})).is_err());
    }
}
