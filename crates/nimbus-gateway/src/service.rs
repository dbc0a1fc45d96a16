//! HTTP APIs' first-class AWS service integrations (`IntegrationSubtype`, e.g.
//! `SQS-SendMessage`, `EventBridge-PutEvents`, `StepFunctions-StartExecution`): the integration's `RequestParameters` are
//! evaluated against the request (pure, here), then the service call itself goes to nimbus's
//! own services through [`Services`], which the binary implements: the gateway knows no other
//! service's crate.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use crate::GatewayRequest;

/// What a first-class integration calls.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceIntegration {
    /// E.g. `SQS-SendMessage`.
    pub subtype: String,
    /// `RequestParameters` as written: a static value or a selection expression.
    pub parameters: BTreeMap<String, String>,
}

/// The subtypes nimbus serves.
pub const SERVED: &[&str] = &[
    "SQS-SendMessage",
    "SQS-ReceiveMessage",
    "SQS-DeleteMessage",
    "SQS-PurgeQueue",
    "EventBridge-PutEvents",
    "StepFunctions-StartExecution",
    "StepFunctions-StartSyncExecution",
    "StepFunctions-StopExecution",
];

/// An integration's answer: the status and body API Gateway passes on.
pub type ServiceAnswer = Result<(u16, Vec<u8>), String>;

/// nimbus's services, as the gateway's integrations call them.
pub trait Services: Send + Sync {
    /// Calls `subtype` with the evaluated parameters.
    fn call<'a>(
        &'a self,
        subtype: &'a str,
        parameters: BTreeMap<String, String>,
    ) -> Pin<Box<dyn Future<Output = ServiceAnswer> + Send + 'a>>;

    /// A REST API's `AWS` integration request, sent to the service as API Gateway sends it.
    fn aws<'a>(
        &'a self,
        request: AwsRequest,
    ) -> Pin<Box<dyn Future<Output = Result<AwsAnswer, String>> + Send + 'a>>;

    /// A chaos rule for this request to `route` (its key) of the API `api` (logical id): the
    /// latency to add, and the error to answer with, if any.
    fn route_fault(&self, _api: &str, _route: &str) -> Option<RouteFault> {
        None
    }
}

/// A REST API's `AWS` integration request: what API Gateway sends the service after the
/// request template and the `integration.request.*` parameters have been applied.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AwsRequest {
    /// The service's name in the integration URI (`sqs`, `sns`, `dynamodb`, `states`, `s3`).
    pub service: String,
    /// `IntegrationHttpMethod`.
    pub method: String,
    /// `path/...` (path parameters filled in) or `action/NAME`.
    pub target: String,
    /// `integration.request.querystring.*`, decoded.
    pub query: Vec<(String, String)>,
    /// `integration.request.header.*`, names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// A service's answer to an `AWS` integration: what `integration.response.*` reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AwsAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a chaos rule does to a request of an API route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteFault {
    pub latency_ms: u64,
    /// `(status, code)` to answer with instead of the integration.
    pub error: Option<(u16, String)>,
}

/// What the selection expressions of an HTTP API's parameter mapping may read.
pub struct Context<'a> {
    pub request: &'a GatewayRequest,
    pub path_parameters: &'a BTreeMap<String, String>,
    pub request_id: &'a str,
    pub stage: &'a str,
    pub stage_variables: &'a BTreeMap<String, String>,
}

/// Evaluates each parameter: `$request.body` (the whole body), `$request.body.a.b` (a JSON
/// field of it), `$request.header.name`, `$request.querystring.name`, `$request.path.name`,
/// `$context.requestId` / `stage` / `httpMethod` / `path`, `$stageVariables.name`; anything
/// else is a static value. A selection that finds nothing gives an empty string, as API
/// Gateway does.
pub fn evaluate(
    parameters: &BTreeMap<String, String>,
    cx: &Context<'_>,
) -> BTreeMap<String, String> {
    parameters
        .iter()
        .map(|(k, v)| (k.clone(), select(v, cx)))
        .collect()
}

/// A mapping value: a selection expression, or text with `${...}` or `$request.…` /
/// `$context.…` / `$stageVariables.…` inside it (`prefix-${request.header.x}`).
pub(crate) fn select(expr: &str, cx: &Context<'_>) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(inner) = tail.strip_prefix("${") {
            if let Some(end) = inner.find('}') {
                out.push_str(&select_one(&tail[..end + 3], cx));
                rest = &inner[end + 1..];
                continue;
            }
        }
        let known = ["$request.", "$context.", "$stageVariables."]
            .iter()
            .any(|p| tail.starts_with(p));
        if known {
            let end = tail[1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
                .map_or(tail.len(), |i| i + 1);
            out.push_str(&select_one(&tail[..end], cx));
            rest = &tail[end..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn select_one(expr: &str, cx: &Context<'_>) -> String {
    // `${request.header.x}` is `$request.header.x` written with braces.
    let braced = expr
        .strip_prefix("${")
        .and_then(|e| e.strip_suffix('}'))
        .map(|e| format!("${e}"));
    let expr = braced.as_deref().unwrap_or(expr);
    let req = cx.request;
    if expr == "$request.body" {
        return String::from_utf8_lossy(&req.body).into_owned();
    }
    if let Some(path) = expr.strip_prefix("$request.body.") {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let found = path.split('.').try_fold(&body, |v, k| v.get(k));
        return match found {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
    }
    if let Some(name) = expr.strip_prefix("$request.header.") {
        return req
            .headers
            .iter()
            .filter(|(h, _)| h.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(",");
    }
    if let Some(name) = expr.strip_prefix("$request.querystring.") {
        return crate::event::query_pairs(&req.raw_query)
            .into_iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
            .join(",");
    }
    if let Some(name) = expr.strip_prefix("$request.path.") {
        return cx.path_parameters.get(name).cloned().unwrap_or_default();
    }
    if let Some(name) = expr.strip_prefix("$stageVariables.") {
        return cx.stage_variables.get(name).cloned().unwrap_or_default();
    }
    match expr {
        "$request.path" => req.raw_path.clone(),
        "$context.requestId" => cx.request_id.to_owned(),
        "$context.stage" => cx.stage.to_owned(),
        "$context.httpMethod" => req.method.clone(),
        "$context.path" => req.raw_path.clone(),
        _ => expr.to_owned(),
    }
}

/// An HTTP API integration's `ResponseParameters`: OpenAPI's `{"200": {"overwrite:header.x":
/// "..."}}`, or CloudFormation's `{"200": {"ResponseParameters": [{"Destination":
/// "overwrite:header.x", "Source": "..."}]}}`.
pub(crate) fn response_parameters(v: &Value) -> BTreeMap<String, BTreeMap<String, String>> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(status, m)| {
            let m = match m["ResponseParameters"].as_array() {
                Some(list) => list
                    .iter()
                    .filter_map(|p| {
                        Some((
                            p["Destination"].as_str()?.to_owned(),
                            p["Source"].as_str()?.to_owned(),
                        ))
                    })
                    .collect(),
                None => m
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect(),
            };
            (status.clone(), m)
        })
        .collect()
}

/// What a response mapping's values may read besides the integration's response.
pub struct ResponseContext<'a> {
    pub request_id: &'a str,
    pub stage: &'a str,
    pub stage_variables: &'a BTreeMap<String, String>,
}

/// Applies the mappings for the integration's status (HTTP APIs' "transforming API
/// responses"): `overwrite:statuscode`, and `append|overwrite|remove:header.name` with values
/// `$response.header.name`, `$response.body` or `$response.body.a.b`, `$context.requestId`,
/// `$context.stage`, `$stageVariables.name`, or static text.
pub(crate) fn map_response(
    mappings: &BTreeMap<String, String>,
    status: &mut axum::http::StatusCode,
    headers: &mut axum::http::HeaderMap,
    body: &[u8],
    cx: &ResponseContext<'_>,
) {
    let original = headers.clone();
    let value = |v: &str| -> String {
        let v = v
            .strip_prefix("${")
            .and_then(|e| e.strip_suffix('}'))
            .map_or_else(|| v.to_owned(), |e| format!("${e}"));
        if let Some(name) = v.strip_prefix("$response.header.") {
            return original
                .get_all(name)
                .iter()
                .filter_map(|h| h.to_str().ok())
                .collect::<Vec<_>>()
                .join(",");
        }
        if v == "$response.body" {
            return String::from_utf8_lossy(body).into_owned();
        }
        if let Some(path) = v.strip_prefix("$response.body.") {
            let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            return match path.split('.').try_fold(&body, |b, k| b.get(k)) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
        }
        if let Some(name) = v.strip_prefix("$stageVariables.") {
            return cx.stage_variables.get(name).cloned().unwrap_or_default();
        }
        match v.as_str() {
            "$context.requestId" => cx.request_id.to_owned(),
            "$context.stage" => cx.stage.to_owned(),
            _ => v,
        }
    };
    for (key, v) in mappings {
        let Some((action, place)) = key.split_once(':') else {
            continue;
        };
        if place.eq_ignore_ascii_case("statuscode") {
            if let Some(s) = value(v)
                .trim()
                .parse::<u16>()
                .ok()
                .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
            {
                *status = s;
            }
            continue;
        }
        let Some(name) = place
            .strip_prefix("header.")
            .and_then(|n| axum::http::HeaderName::from_bytes(n.as_bytes()).ok())
        else {
            continue;
        };
        match action {
            "remove" => {
                headers.remove(&name);
            }
            "overwrite" | "append" => {
                if let Ok(v) = axum::http::HeaderValue::from_str(&value(v)) {
                    if action == "overwrite" {
                        headers.insert(name, v);
                    } else {
                        headers.append(name, v);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_expressions_read_the_request() {
        let request = GatewayRequest {
            method: "POST".into(),
            raw_path: "/send/7".into(),
            raw_query: "q=1&q=2&x=a%20b".into(),
            headers: vec![("x-group".into(), "g1".into())],
            body: bytes::Bytes::from_static(br#"{"message":{"text":"hi","n":3},"tag":null}"#),
            ..GatewayRequest::default()
        };
        let vars = BTreeMap::from([("queue".to_owned(), "http://q".to_owned())]);
        let path = BTreeMap::from([("id".to_owned(), "7".to_owned())]);
        let cx = Context {
            request: &request,
            path_parameters: &path,
            request_id: "rid",
            stage: "$default",
            stage_variables: &vars,
        };
        for (expr, want) in [
            (
                "$request.body",
                r#"{"message":{"text":"hi","n":3},"tag":null}"#,
            ),
            ("$request.body.message.text", "hi"),
            ("$request.body.message", r#"{"n":3,"text":"hi"}"#),
            ("$request.body.tag", ""),
            ("$request.body.missing.deeper", ""),
            ("$request.header.X-Group", "g1"),
            ("$request.querystring.q", "1,2"),
            ("$request.querystring.x", "a b"),
            ("$request.path.id", "7"),
            ("$stageVariables.queue", "http://q"),
            ("$context.requestId", "rid"),
            ("static-value", "static-value"),
            (
                "prefix-${request.header.x-group}-suffix",
                "prefix-g1-suffix",
            ),
            ("/v2/$request.path.id/items", "/v2/7/items"),
            ("${request.querystring.x}", "a b"),
            ("price: $5", "price: $5"),
        ] {
            assert_eq!(select(expr, &cx), want, "{expr}");
        }
    }
}
