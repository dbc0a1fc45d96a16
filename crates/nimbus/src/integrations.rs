//! The gateway's AWS service integrations, connected to nimbus's own services: HTTP APIs'
//! first-class subtypes, and REST `AWS` integrations through nimbus's AWS endpoint. The
//! gateway and the AWS protocol crate know nothing of each other; the binary joins them here.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use std::sync::{Arc, OnceLock};

use nimbus_gateway::service::{AwsAnswer, AwsRequest, ServiceAnswer, Services};
use serde_json::{json, Map, Value};

pub struct NimbusServices {
    pub sqs: nimbus_aws::Sqs,
    pub hub: nimbus_events::Hub,
    pub sfn: nimbus_sfn::StepFunctions,
    /// The chaos API's rules, which may name API routes.
    pub chaos: nimbus_aws::Chaos,
    /// nimbus's AWS endpoint, set once it is built (after the gateway's APIs): REST `AWS`
    /// integrations call it.
    pub aws: Arc<OnceLock<axum::Router>>,
    pub region: String,
}

impl Services for NimbusServices {
    fn route_fault(&self, api: &str, route: &str) -> Option<nimbus_gateway::service::RouteFault> {
        let f = self.chaos.route_fault(api, route, self.hub.telemetry())?;
        Some(nimbus_gateway::service::RouteFault {
            latency_ms: f.latency_ms,
            error: f.fails.then_some((f.status, f.code)),
        })
    }

    fn aws<'a>(
        &'a self,
        call: AwsRequest,
    ) -> Pin<Box<dyn Future<Output = Result<AwsAnswer, String>> + Send + 'a>> {
        Box::pin(self.rest_aws(call))
    }

    fn call<'a>(
        &'a self,
        subtype: &'a str,
        parameters: BTreeMap<String, String>,
    ) -> Pin<Box<dyn Future<Output = ServiceAnswer> + Send + 'a>> {
        Box::pin(async move {
            let answer = match subtype {
                sqs if sqs.starts_with("SQS-") => {
                    let action = &sqs["SQS-".len()..];
                    let input = sqs_input(action, &parameters)?;
                    nimbus_aws::sqs_call(&self.sqs, action, input).await
                }
                "EventBridge-PutEvents" => {
                    nimbus_aws::events_put_events(&self.hub, events_input(&parameters)?).await
                }
                step if step.starts_with("StepFunctions-") => {
                    let action = &step["StepFunctions-".len()..];
                    let input = states_input(&parameters);
                    return self.states(action, input).await;
                }
                other => return Err(format!("{other} is not served by nimbus yet")),
            };
            match answer {
                Ok(v) => Ok((200, v.to_string().into_bytes())),
                // API Gateway passes the service's failure on as its own status and error.
                Err((status, message)) => {
                    Ok((status, json!({"message": message}).to_string().into_bytes()))
                }
            }
        })
    }
}

impl NimbusServices {
    /// A REST `AWS` integration: the request API Gateway would send the service, sent to
    /// nimbus's own AWS endpoint in-process, so every service nimbus serves is reachable and
    /// answers exactly as it answers the SDKs (chaos rules and cost counting included).
    async fn rest_aws(&self, call: AwsRequest) -> Result<AwsAnswer, String> {
        let Some(endpoint) = self.aws.get() else {
            return Err("the AWS endpoint is not serving yet".into());
        };
        let request = aws_http_request(&call, &self.region)?;
        let response = tower::ServiceExt::oneshot(endpoint.clone(), request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = nimbus_gateway::outbound::header_pairs(response.headers());
        let body = axum::body::to_bytes(response.into_body(), nimbus_gateway::outbound::MAX_ANSWER)
            .await
            .map_err(|e| format!("the {} answer: {e}", call.service))?;
        Ok(AwsAnswer {
            status,
            headers,
            body: body.to_vec(),
        })
    }
}

/// The HTTP request an `AWS` integration makes: JSON-protocol services get their
/// `X-Amz-Target` for `action/NAME`; SQS and SNS (query protocol) a form with `Action`, the
/// query string's parameters and the body's, asking for JSON as API Gateway does; `path/...`
/// goes to that path (S3's buckets and keys, SQS's queue URLs). Signed for the service as
/// API Gateway signs it, so the endpoint routes it as it routes the SDKs' calls.
fn aws_http_request(call: &AwsRequest, region: &str) -> Result<axum::extract::Request, String> {
    let service = call.service.as_str();
    let (kind, rest) = call
        .target
        .split_once('/')
        .ok_or_else(|| format!("{:?} is neither path/... nor action/NAME", call.target))?;
    let date = time::OffsetDateTime::now_utc();
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential=APIGATEWAY/{:04}{:02}{:02}/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0",
        date.year(),
        u8::from(date.month()),
        date.day()
    );
    let query_protocol = matches!(service, "sqs" | "sns")
        && !call.headers.contains_key("x-amz-target")
        && (kind == "action" || call.method == "POST" || call.method == "GET");
    let mut builder = axum::http::Request::builder().header("authorization", authorization);
    for (k, v) in &call.headers {
        // The query protocol's form and JSON answer are set below, in their place.
        let replaced = query_protocol && (k == "content-type" || k == "accept");
        if k != "authorization" && k != "host" && k != "content-length" && !replaced {
            builder = builder.header(k.as_str(), v.as_str());
        }
    }
    let (method, uri, body) = if query_protocol {
        // A body that is a form (as mapped, or as the template wrote it) joins the parameters.
        let form = call
            .headers
            .get("content-type")
            .is_none_or(|c| c.starts_with("application/x-www-form-urlencoded"))
            && form_urlencoded::parse(&call.body).any(|(k, _)| !k.is_empty());
        let mut params = form_urlencoded::Serializer::new(String::new());
        if kind == "action" {
            params.append_pair("Action", rest);
        }
        for (k, v) in &call.query {
            params.append_pair(k, v);
        }
        if form {
            for (k, v) in form_urlencoded::parse(&call.body) {
                params.append_pair(&k, &v);
            }
        }
        builder = builder
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json");
        let path = match kind {
            "path" => format!("/{rest}"),
            _ => "/".to_owned(),
        };
        ("POST", path, params.finish().into_bytes())
    } else if kind == "action" {
        let prefix = nimbus_aws::json_target_prefix(service)
            .ok_or_else(|| format!("{service} is not called by action (use path/...)"))?;
        builder = builder.header("x-amz-target", format!("{prefix}.{rest}"));
        if !call.headers.contains_key("content-type") {
            builder = builder.header("content-type", "application/x-amz-json-1.0");
        }
        ("POST", "/".to_owned(), call.body.clone())
    } else {
        let uri = nimbus_gateway::outbound::with_query(format!("/{rest}"), &call.query);
        (call.method.as_str(), uri, call.body.clone())
    };
    builder
        .method(method)
        .uri(uri)
        .body(axum::body::Body::from(body))
        .map_err(|e| format!("the {service} request: {e}"))
}

impl NimbusServices {
    /// A Step Functions call: its answer, or its error with Step Functions' status and body.
    async fn states(&self, action: &str, input: Value) -> ServiceAnswer {
        match self.sfn.dispatch(action, &input).await {
            Ok(v) => Ok((200, v.to_string().into_bytes())),
            Err(e) => Ok((e.status(), e.body().to_string().into_bytes())),
        }
    }
}

/// `RequestParameters` of the `StepFunctions-*` integrations (`StateMachineArn`, `Name`,
/// `Input`, `ExecutionArn`, `Error`, `Cause`) as the API's input (`stateMachineArn`, ...).
fn states_input(p: &BTreeMap<String, String>) -> Value {
    let mut input = Map::new();
    for (k, v) in p {
        if k == "Region" || (k == "TraceHeader" && v.is_empty()) {
            continue;
        }
        input.insert(nimbus_sfn::camel(k), Value::from(v.clone()));
    }
    Value::Object(input)
}

/// The parameters among `keys` that are set, as JSON strings.
fn strings(p: &BTreeMap<String, String>, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| Some(((*k).to_owned(), Value::from(p.get(*k)?.clone()))))
        .collect()
}

/// `RequestParameters` of an `SQS-*` integration as the action's input: strings as they are,
/// numbers where SQS takes numbers (`DelaySeconds`, `MaxNumberOfMessages`,
/// `VisibilityTimeout`, `WaitTimeSeconds`), lists where it takes lists (`AttributeNames`,
/// `MessageAttributeNames`, comma-separated), and `MessageAttributes` as a JSON map.
fn sqs_input(action: &str, p: &BTreeMap<String, String>) -> Result<Value, String> {
    const NUMBERS: &[&str] = &[
        "DelaySeconds",
        "MaxNumberOfMessages",
        "VisibilityTimeout",
        "WaitTimeSeconds",
    ];
    const LISTS: &[&str] = &["AttributeNames", "MessageAttributeNames"];
    let mut input = Map::new();
    for (k, v) in p {
        let value = if NUMBERS.contains(&k.as_str()) {
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| format!("{action}: {k} {v:?} is not a number"))?;
            n.into()
        } else if LISTS.contains(&k.as_str()) {
            v.split(',')
                .map(|s| Value::from(s.trim()))
                .collect::<Vec<_>>()
                .into()
        } else if k == "MessageAttributes" {
            serde_json::from_str(v)
                .map_err(|e| format!("{action}: MessageAttributes is not JSON: {e}"))?
        } else if k == "Region" {
            continue;
        } else {
            Value::from(v.clone())
        };
        input.insert(k.clone(), value);
    }
    Ok(Value::Object(input))
}

/// `RequestParameters` of `EventBridge-PutEvents` as one entry: `Detail`, `DetailType`,
/// `Source`, `EventBusName`, `Resources` (comma-separated), `Time`, `TraceHeader`.
fn events_input(p: &BTreeMap<String, String>) -> Result<Value, String> {
    let mut entry = strings(
        p,
        &[
            "Detail",
            "DetailType",
            "Source",
            "EventBusName",
            "Time",
            "TraceHeader",
        ],
    );
    if let Some(r) = p.get("Resources") {
        let list: Vec<Value> = r.split(',').map(|s| s.trim().to_owned().into()).collect();
        entry.insert("Resources".into(), list.into());
    }
    Ok(json!({"Entries": [entry]}))
}
