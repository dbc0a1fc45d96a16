//! Fault rules for nimbus's AWS APIs and API Gateway routes, in the shape of LocalStack's chaos
//! API so existing experiments port: `[{"service", "region", "operation", "probability",
//! "error": {"statusCode", "code"}}]`. A rule's absent field matches anything; the first rule
//! that matches a request and wins its roll decides the error. nimbus adds two fields:
//! `"latency"` (milliseconds added to a matching request; a rule with a latency and no `error`
//! only slows requests down) and, for `"service": "apigateway"` (whose `operation` is a route
//! key such as `GET /weather/{city}`), `"api"` (the API's logical id). Rules for
//! `"service": "egress"` apply to functions' outbound HTTP(S) through nimbus's egress proxy:
//! `"host"` names the destination (`api.example.com`, `127.0.0.1:8099`, `*.example.com`) and
//! `"connection"` (`"refuse"` or `"reset"`) breaks the connection instead of answering with the
//! rule's status. Pure: the caller rolls the dice.

use serde_json::{json, Value};

/// The services a rule may name (botocore's service names, as LocalStack takes them).
pub const SERVICES: &[&str] = &[
    "apigateway",
    "codedeploy",
    "dynamodb",
    "dynamodbstreams",
    "egress",
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
    /// An API Gateway API's logical id (rules for `apigateway` only).
    pub api: Option<String>,
    /// 0 to 1.
    pub probability: f64,
    /// Milliseconds added before the request is answered (or failed).
    pub latency_ms: u64,
    /// Whether the rule answers with the error (a latency-only rule does not).
    pub fails: bool,
    pub status: u16,
    pub code: String,
    /// An outbound destination (rules for `egress` only): a host, `host:port`, or `*.suffix`.
    pub host: Option<String>,
    /// How an egress rule breaks the connection instead of answering with `status`.
    pub connection: Option<Connection>,
}

/// A broken connection on a function's way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// The destination cannot be reached: the proxy answers 502, as a proxy whose upstream
    /// refused the connection does.
    Refuse,
    /// The answer starts, then the connection is dropped mid-response.
    Reset,
}

impl Connection {
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::Refuse => "refuse",
            Connection::Reset => "reset",
        }
    }
}

impl Fault {
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "probability": self.probability });
        if let Some(c) = self.connection {
            v["connection"] = c.as_str().into();
        } else if self.fails {
            v["error"] = json!({"statusCode": self.status, "code": self.code});
        }
        if self.latency_ms > 0 {
            v["latency"] = self.latency_ms.into();
        }
        for (k, f) in [
            ("service", &self.service),
            ("region", &self.region),
            ("operation", &self.operation),
            ("api", &self.api),
            ("host", &self.host),
        ] {
            if let Some(s) = f {
                v[k] = s.as_str().into();
            }
        }
        v
    }

    pub fn matches(&self, service: &str, operation: &str, region: &str) -> bool {
        let is = |rule: &Option<String>, v: &str| rule.as_deref().is_none_or(|r| r == v);
        // A rule for one API's routes never matches an AWS API call.
        self.api.is_none()
            && is(&self.service, service)
            && is(&self.operation, operation)
            && is(&self.region, region)
    }

    /// Whether the rule applies to a request for `route` (its key, `GET /items/{id}`) of the
    /// API `api`: a rule naming the `apigateway` service, or no service at all.
    pub fn matches_route(&self, api: &str, route: &str) -> bool {
        let is = |rule: &Option<String>, v: &str| rule.as_deref().is_none_or(|r| r == v);
        self.service.as_deref().is_none_or(|s| s == "apigateway")
            && is(&self.api, api)
            && is(&self.operation, route)
    }

    /// Whether the egress rule applies to a connection to `host` on `port`. Only rules that
    /// name the `egress` service do: a rule for every service would otherwise cut every
    /// function off from the world.
    pub fn matches_egress(&self, host: &str, port: u16) -> bool {
        if self.service.as_deref() != Some("egress") {
            return false;
        }
        let Some(want) = self.host.as_deref() else {
            return true;
        };
        let Ok((want_host, want_port)) = split_host(want) else {
            return false;
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let want_host = want_host.to_ascii_lowercase();
        let host_ok = match want_host.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.')),
            None => want_host == host,
        };
        host_ok && want_port.is_none_or(|p| p == port)
    }
}

/// An egress rule's `host` as (host, port): `name`, `name:port`, `*.suffix[:port]`, an IPv4
/// address with or without a port, an IPv6 address bare or in brackets (`[::1]:8080`).
fn split_host(rule: &str) -> Result<(&str, Option<u16>), String> {
    let bad =
        || format!("host must be a host name or address, host:port, or *.suffix, got {rule:?}");
    if rule.is_empty() || rule.contains(['/', ' ', '@']) {
        return Err(bad());
    }
    if let Some(rest) = rule.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(bad)?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((addr, Some(p.parse().map_err(|_| bad())?))),
            None if after.is_empty() => Ok((addr, None)),
            None => Err(bad()),
        };
    }
    match rule.split_once(':') {
        // More than one colon: a bare IPv6 address.
        Some((_, rest)) if rest.contains(':') => Ok((rule, None)),
        Some((h, p)) if !h.is_empty() => Ok((h, Some(p.parse().map_err(|_| bad())?))),
        Some(_) => Err(bad()),
        None => Ok((rule, None)),
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
                if !["service", "region", "operation", "api", "probability", "latency", "error", "host", "connection"]
                    .contains(&k.as_str())
                {
                    return Err(format!(
                        "{at}: unknown field {k:?} (a rule has service, region, operation, api, host, probability, latency, error and connection)"
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
            let api = text("api")?;
            if api.is_some() && service.as_deref() != Some("apigateway") {
                return Err(format!(
                    "{at}: api names an API Gateway API: give the rule \"service\": \"apigateway\""
                ));
            }
            let egress = service.as_deref() == Some("egress");
            for k in ["host", "connection"] {
                if !egress && !r[k].is_null() {
                    return Err(format!(
                        "{at}: {k} is for a function's outbound calls: give the rule \"service\": \"egress\""
                    ));
                }
            }
            for k in ["region", "operation"] {
                if egress && !r[k].is_null() {
                    return Err(format!(
                        "{at}: an egress rule matches by host, not {k}"
                    ));
                }
            }
            let host = text("host")?;
            if let Some(h) = &host {
                split_host(h).map_err(|why| format!("{at}: {why}"))?;
            }
            let connection = match &r["connection"] {
                Value::Null => None,
                Value::String(s) if s == "refuse" => Some(Connection::Refuse),
                Value::String(s) if s == "reset" => Some(Connection::Reset),
                v => {
                    return Err(format!(
                        "{at}: connection must be \"refuse\" or \"reset\", got {v}"
                    ))
                }
            };
            if connection.is_some() && !error.is_null() {
                return Err(format!(
                    "{at}: a rule either breaks the connection or answers an error, not both"
                ));
            }
            let latency_ms = match &r["latency"] {
                Value::Null => 0,
                v => v.as_u64().filter(|ms| *ms <= 600_000).ok_or(format!(
                    "{at}: latency must be a whole number of milliseconds up to 600000, got {v}"
                ))?,
            };
            Ok(Fault {
                service,
                region: text("region")?,
                operation: text("operation")?,
                api,
                probability,
                latency_ms,
                // A rule that only adds latency answers normally after it.
                fails: !error.is_null() || connection.is_some() || latency_ms == 0,
                status,
                code,
                host,
                connection,
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

/// The fault for a request to an API Gateway route, if a rule matches and `roll` is under its
/// probability.
pub fn pick_route<'a>(faults: &'a [Fault], api: &str, route: &str, roll: f64) -> Option<&'a Fault> {
    faults
        .iter()
        .find(|f| f.matches_route(api, route))
        .filter(|f| roll < f.probability)
}

/// The rule for a function's connection to `host:port` through the egress proxy, if one
/// matches and `roll` is under its probability.
pub fn pick_egress<'a>(faults: &'a [Fault], host: &str, port: u16, roll: f64) -> Option<&'a Fault> {
    faults
        .iter()
        .find(|f| f.matches_egress(host, port))
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
    fn route_rules_match_by_api_and_route_key_and_may_only_add_latency() {
        let faults = parse(&json!([
            {"service": "apigateway", "api": "Orders", "operation": "POST /orders", "error": {"statusCode": 502, "code": "BadGateway"}},
            {"service": "apigateway", "operation": "GET /weather/{city}", "latency": 300},
            {"service": "sqs"},
        ]))
        .unwrap();
        let cases = [
            ("Orders", "POST /orders", Some(("BadGateway", true, 0))),
            ("Other", "POST /orders", None),
            (
                "Weather",
                "GET /weather/{city}",
                Some(("ServiceUnavailable", false, 300)),
            ),
            ("Weather", "GET /other", None),
        ];
        for (api, route, want) in cases {
            let got = pick_route(&faults, api, route, 0.5)
                .map(|f| (f.code.as_str(), f.fails, f.latency_ms));
            assert_eq!(got, want, "{api} {route}");
        }
        // An API rule never matches an AWS API call; an SQS rule never matches a route.
        assert!(pick(&faults, "apigateway", "POST /orders", "us-east-1", 0.0).is_none());
        assert_eq!(
            parse(&faults.iter().map(Fault::to_json).collect()).unwrap(),
            faults
        );
        let bad = parse(&json!([{"service": "sqs", "api": "Orders"}])).unwrap_err();
        assert!(bad.contains("apigateway"), "{bad}");
    }

    #[test]
    fn egress_rules_match_by_host_port_or_suffix_and_only_when_they_name_egress() {
        let faults = parse(&json!([
            {"service": "egress", "host": "127.0.0.1:8099", "connection": "refuse"},
            {"service": "egress", "host": "*.Open-Meteo.com", "error": {"statusCode": 429, "code": "TooManyRequests"}},
            {"service": "egress", "host": "slow.example.com", "latency": 500},
            {"service": "egress", "host": "[::1]:9000", "connection": "reset"},
            {"service": "egress", "host": "fe80::1:2", "connection": "refuse"},
            {"probability": 1},
        ]))
        .unwrap();
        let cases = [
            ("127.0.0.1", 8099, Some(("refuse", 0))),
            ("127.0.0.1", 8098, None),
            ("api.open-meteo.com", 443, Some(("429", 0))),
            ("API.open-meteo.com", 80, Some(("429", 0))),
            ("open-meteo.com", 443, None),
            ("evilopen-meteo.com", 443, None),
            ("slow.example.com", 80, Some(("latency", 500))),
            ("::1", 9000, Some(("reset", 0))),
            ("fe80::1:2", 80, Some(("refuse", 0))),
            ("example.com", 80, None),
        ];
        for (host, port, want) in cases {
            let got = pick_egress(&faults, host, port, 0.5).map(|f| {
                let what = match (f.connection, f.fails) {
                    (Some(c), _) => c.as_str().to_owned(),
                    (None, true) => f.status.to_string(),
                    (None, false) => "latency".to_owned(),
                };
                (what, f.latency_ms)
            });
            assert_eq!(
                got.as_ref().map(|(w, l)| (w.as_str(), *l)),
                want,
                "{host}:{port}"
            );
        }
        // Egress rules never match AWS API calls or routes.
        assert!(pick(&faults[..5], "sqs", "SendMessage", "us-east-1", 0.0).is_none());
        assert!(pick_route(&faults[..5], "Api", "GET /", 0.0).is_none());
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
            (
                json!([{"service": "sqs", "host": "x"}]),
                "give the rule \"service\": \"egress\"",
            ),
            (
                json!([{"service": "egress", "operation": "GET"}]),
                "matches by host, not operation",
            ),
            (
                json!([{"service": "egress", "connection": "drop"}]),
                "connection must be \"refuse\" or \"reset\"",
            ),
            (
                json!([{"service": "egress", "connection": "reset", "error": {"statusCode": 503}}]),
                "not both",
            ),
            (
                json!([{"service": "egress", "host": "http://x/"}]),
                "host must be a host name",
            ),
            (
                json!([{"service": "egress", "host": "x:https"}]),
                "host must be a host name",
            ),
        ];
        for (doc, want) in cases {
            let e = parse(&doc).unwrap_err();
            assert!(e.contains(want), "{doc}: {e}");
        }
        assert_eq!(parse_effects(&json!({"latency": 250})), Ok(250));
        assert!(parse_effects(&json!({"latency": -1})).is_err());
    }
}
