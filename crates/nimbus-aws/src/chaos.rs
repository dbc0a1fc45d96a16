//! Chaos on nimbus's AWS APIs, in LocalStack's chaos API shape so existing experiments port:
//! `/_nimbus/chaos/faults` (POST replaces the rules, PATCH adds, DELETE removes, GET lists)
//! and `/_nimbus/chaos/effects` (`{"latency": ms}` added to every AWS API call). A matching
//! fault answers in the protocol of the service it names (AWS JSON, query/XML, REST-JSON,
//! S3's XML), so SDKs see the error as they would from AWS. The rules are nimbus_core::chaos.
//! With no rule and no latency set, a request costs one read of an uncontended lock.

use std::sync::{Arc, RwLock};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use nimbus_core::chaos::{self, Fault};

/// What the faulted request is told; LocalStack's wording.
const MESSAGE: &str = "Operation failed due to a simulated fault";

#[derive(Clone, Default)]
pub struct Chaos {
    state: Arc<RwLock<Active>>,
    /// Counts rule changes, for what must react to one (the egress proxy's open tunnels).
    changes: Arc<Changes>,
    /// Called whenever rules for `egress` are installed: the binary gives functions the
    /// egress proxy from then on.
    on_egress: Arc<std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>>,
}

struct Changes(tokio::sync::watch::Sender<u64>);

impl Default for Changes {
    fn default() -> Self {
        Changes(tokio::sync::watch::Sender::new(0))
    }
}

#[derive(Default)]
struct Active {
    faults: Vec<Fault>,
    latency_ms: u64,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Protocol {
    Json10,
    Json11,
    Query,
    RestJson,
    RestXml,
}

impl Chaos {
    fn idle(&self) -> bool {
        let s = self.state.read().unwrap();
        s.faults.is_empty() && s.latency_ms == 0
    }

    /// Runs a request through the active effects and faults: `Ok(request)` to serve it (its
    /// body put back if it was read), `Err(answer)` when a fault answers instead.
    pub async fn apply(
        &self,
        req: Request,
        default_region: &str,
        telemetry: &nimbus_telemetry::Telemetry,
    ) -> Result<Request, Response> {
        if self.idle() || req.uri().path().starts_with("/_nimbus") || req.uri().path() == "/metrics"
        {
            return Ok(req);
        }
        let latency = self.state.read().unwrap().latency_ms;
        if latency > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
        }
        let (parts, body) = req.into_parts();
        // Query-protocol requests name their action in a form body: read it (as the service
        // would) and hand it on.
        let form = parts.method == Method::POST
            && parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        let (body, bytes) = if form {
            match http_body_util::Limited::new(body, super::JSON_PROTOCOL_BODY_LIMIT)
                .collect()
                .await
            {
                Ok(b) => {
                    let b = b.to_bytes();
                    (Body::from(b.clone()), Some(b))
                }
                Err(_) => return Err(StatusCode::PAYLOAD_TOO_LARGE.into_response()),
            }
        } else {
            (body, None)
        };
        let Some((service, operation, protocol)) =
            classify(&parts.method, &parts.uri, &parts.headers, bytes.as_ref())
        else {
            return Ok(Request::from_parts(parts, body));
        };
        let region = region_of(&parts.headers).unwrap_or_else(|| default_region.to_owned());
        let fault = {
            let s = self.state.read().unwrap();
            chaos::pick(
                &s.faults,
                service,
                &operation,
                &region,
                rand::random::<f64>(),
            )
            .cloned()
        };
        if let Some(ms) = fault.as_ref().map(|f| f.latency_ms).filter(|ms| *ms > 0) {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        match fault.filter(|f| f.fails) {
            None => Ok(Request::from_parts(parts, body)),
            Some(f) => {
                telemetry
                    .chaos_faults
                    .get_or_create(&nimbus_telemetry::FaultLabels {
                        service: service.to_owned(),
                        code: f.code.clone(),
                    })
                    .inc();
                Err(error_response(protocol, &f))
            }
        }
    }

    /// The rule for a request to an API Gateway route (`api`'s logical id, the route key), if
    /// one matches and wins its roll; its latency is the caller's to add. Counted like the AWS
    /// APIs' faults when it answers with an error.
    pub fn route_fault(
        &self,
        api: &str,
        route: &str,
        telemetry: &nimbus_telemetry::Telemetry,
    ) -> Option<Fault> {
        let s = self.state.read().unwrap();
        if s.faults.is_empty() {
            return None;
        }
        let f = chaos::pick_route(&s.faults, api, route, rand::random::<f64>()).cloned()?;
        if f.fails {
            telemetry
                .chaos_faults
                .get_or_create(&nimbus_telemetry::FaultLabels {
                    service: "apigateway".into(),
                    code: f.code.clone(),
                })
                .inc();
        }
        Some(f)
    }

    /// The rule for a function's outbound connection to `host:port`, if one matches and wins
    /// its roll; counted when it breaks the connection or answers an error.
    pub fn egress_fault(
        &self,
        host: &str,
        port: u16,
        telemetry: &nimbus_telemetry::Telemetry,
    ) -> Option<Fault> {
        let s = self.state.read().unwrap();
        if s.faults.is_empty() {
            return None;
        }
        let f = chaos::pick_egress(&s.faults, host, port, rand::random::<f64>()).cloned()?;
        if f.fails {
            let code = match f.connection {
                Some(c) => format!("connection-{}", c.as_str()),
                None => f.code.clone(),
            };
            telemetry
                .chaos_faults
                .get_or_create(&nimbus_telemetry::FaultLabels {
                    service: "egress".into(),
                    code,
                })
                .inc();
        }
        Some(f)
    }

    /// The rules that apply to outbound connections to `host:port`, whatever their
    /// probability.
    pub fn egress_rules_for(&self, host: &str, port: u16) -> Vec<Fault> {
        let s = self.state.read().unwrap();
        s.faults
            .iter()
            .filter(|f| f.matches_egress(host, port))
            .cloned()
            .collect()
    }

    /// Wakes on every change of the rules.
    pub fn rules_changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.0.subscribe()
    }

    /// Runs `hook` each time egress rules are installed (once set; later calls are ignored).
    pub fn on_egress(&self, hook: impl Fn() + Send + Sync + 'static) {
        let _ = self.on_egress.set(Box::new(hook));
    }

    fn installed(&self, rules: &[Fault]) {
        self.changes.0.send_modify(|n| *n += 1);
        self.announce();
        if rules.iter().any(|f| f.service.as_deref() == Some("egress")) {
            if let Some(hook) = self.on_egress.get() {
                hook();
            }
        }
    }

    /// Replaces the rules, as `POST /_nimbus/chaos/faults` does.
    pub fn set_rules(&self, rules: Vec<Fault>) {
        self.state.write().unwrap().faults = rules.clone();
        self.installed(&rules);
    }

    /// `/_nimbus/chaos/faults` and `/_nimbus/chaos/effects`.
    pub fn routes(&self) -> Router {
        Router::new()
            .route(
                "/_nimbus/chaos/faults",
                get(list).post(replace).patch(add).delete(remove),
            )
            .route("/_nimbus/chaos/effects", get(effects).post(set_effects))
            .with_state(self.clone())
    }

    fn announce(&self) {
        let s = self.state.read().unwrap();
        if s.faults.is_empty() {
            tracing::info!("chaos: no fault rules active; AWS APIs answer normally");
        } else {
            let rules: Vec<String> = s.faults.iter().map(|f| f.to_json().to_string()).collect();
            tracing::warn!(count = s.faults.len(), rules = %rules.join(" "), "chaos: fault rules active");
        }
    }
}

fn region_of(h: &HeaderMap) -> Option<String> {
    let auth = h.get("authorization")?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    cred.split('/').nth(2).map(str::to_owned)
}

/// The service, operation and protocol of an AWS API request; `None` for what is not one.
fn classify(
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    form: Option<&Bytes>,
) -> Option<(&'static str, String, Protocol)> {
    if nimbus_s3::is_s3_request(uri, headers) {
        let op = nimbus_s3::operation(method, uri, headers);
        return Some(("s3", op.to_owned(), Protocol::RestXml));
    }
    if let Some(target) = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
    {
        let (prefix, op) = target.split_once('.')?;
        let (service, protocol) = match prefix {
            "AmazonSQS" => ("sqs", Protocol::Json10),
            "AWSEvents" => ("events", Protocol::Json11),
            "Logs_20140328" => ("logs", Protocol::Json11),
            "DynamoDB_20120810" => ("dynamodb", Protocol::Json10),
            "DynamoDBStreams_20120810" => ("dynamodbstreams", Protocol::Json10),
            "AmazonSSM" => ("ssm", Protocol::Json11),
            "secretsmanager" => ("secretsmanager", Protocol::Json11),
            "AWSStepFunctions" => ("stepfunctions", Protocol::Json10),
            "CodeDeploy_20141006" => ("codedeploy", Protocol::Json11),
            _ => return None,
        };
        return Some((service, op.to_owned(), protocol));
    }
    let params: Vec<(String, String)> = match form {
        Some(b) => form_urlencoded::parse(b).into_owned().collect(),
        None => form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect(),
    };
    if let Some((_, action)) = params.iter().find(|(k, _)| k == "Action") {
        let service = if super::sns::is_sns(headers, &params) {
            "sns"
        } else {
            "sqs"
        };
        return Some((service, action.clone(), Protocol::Query));
    }
    // Lambda's REST paths: `/<api version>/functions[/<name>[/<resource>[/<id>]]]`.
    let path = uri.path();
    let rest = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .filter(|(version, _)| version.starts_with("20"))
        .and_then(|(_, rest)| rest.strip_prefix("functions"))?;
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let op = match (method.as_str(), parts.as_slice()) {
        ("GET", [""]) => "ListFunctions",
        ("POST", [_, "invocations"]) => "Invoke",
        ("GET", [_]) => "GetFunction",
        ("DELETE", [_]) => "DeleteFunction",
        ("GET", [_, "configuration"]) => "GetFunctionConfiguration",
        ("PUT", [_, "configuration"]) => "UpdateFunctionConfiguration",
        ("PUT", [_, "code"]) => "UpdateFunctionCode",
        ("POST", [_, "versions"]) => "PublishVersion",
        ("GET", [_, "versions"]) => "ListVersionsByFunction",
        ("POST", [_, "aliases"]) => "CreateAlias",
        ("GET", [_, "aliases"]) => "ListAliases",
        ("GET", [_, "aliases", _]) => "GetAlias",
        ("PUT", [_, "aliases", _]) => "UpdateAlias",
        ("DELETE", [_, "aliases", _]) => "DeleteAlias",
        ("PUT", [_, "concurrency"]) => "PutFunctionConcurrency",
        ("DELETE", [_, "concurrency"]) => "DeleteFunctionConcurrency",
        ("GET", [_, "concurrency"]) => "GetFunctionConcurrency",
        ("PUT", [_, "provisioned-concurrency"]) => "PutProvisionedConcurrencyConfig",
        ("GET", [_, "provisioned-concurrency"]) => "GetProvisionedConcurrencyConfig",
        ("DELETE", [_, "provisioned-concurrency"]) => "DeleteProvisionedConcurrencyConfig",
        ("PUT", [_, "event-invoke-config"]) => "PutFunctionEventInvokeConfig",
        ("POST", [_, "event-invoke-config"]) => "UpdateFunctionEventInvokeConfig",
        ("GET", [_, "event-invoke-config"]) => "GetFunctionEventInvokeConfig",
        ("DELETE", [_, "event-invoke-config"]) => "DeleteFunctionEventInvokeConfig",
        ("GET", [_, "event-invoke-config", "list"]) => "ListFunctionEventInvokeConfigs",
        _ => return None,
    };
    Some(("lambda", op.to_owned(), Protocol::RestJson))
}

fn error_response(protocol: Protocol, f: &Fault) -> Response {
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let json = |content_type: &'static str| {
        let body = serde_json::json!({"__type": f.code, "message": MESSAGE}).to_string();
        let mut r = (status, [("content-type", content_type)], body).into_response();
        if let Ok(v) = format!("{};Sender", f.code).parse() {
            r.headers_mut().insert("x-amzn-query-error", v);
        }
        if let Ok(v) = f.code.parse() {
            r.headers_mut().insert("x-amzn-errortype", v);
        }
        r
    };
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let id = uuid::Uuid::new_v4().to_string();
    match protocol {
        Protocol::Json10 => json("application/x-amz-json-1.0"),
        Protocol::Json11 => json("application/x-amz-json-1.1"),
        Protocol::RestJson => json("application/json"),
        Protocol::Query => (
            status,
            [("content-type", "text/xml")],
            format!(
                "<?xml version=\"1.0\"?><ErrorResponse><Error><Type>Sender</Type><Code>{}</Code><Message>{MESSAGE}</Message></Error><RequestId>{id}</RequestId></ErrorResponse>",
                esc(&f.code)
            ),
        )
            .into_response(),
        Protocol::RestXml => (
            status,
            [("content-type", "application/xml")],
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{MESSAGE}</Message><RequestId>{id}</RequestId></Error>",
                esc(&f.code)
            ),
        )
            .into_response(),
    }
}

fn listing(chaos: &Chaos) -> Response {
    let s = chaos.state.read().unwrap();
    let v: Vec<serde_json::Value> = s.faults.iter().map(Fault::to_json).collect();
    axum::Json(v).into_response()
}

fn bad(why: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({"error": "ValidationException", "message": why})),
    )
        .into_response()
}

fn rules_of(body: &Bytes) -> Result<Vec<Fault>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    chaos::parse(&doc)
}

async fn list(State(chaos): State<Chaos>) -> Response {
    listing(&chaos)
}

async fn replace(State(chaos): State<Chaos>, body: Bytes) -> Response {
    match rules_of(&body) {
        Ok(rules) => {
            chaos.set_rules(rules);
            listing(&chaos)
        }
        Err(why) => bad(why),
    }
}

async fn add(State(chaos): State<Chaos>, body: Bytes) -> Response {
    match rules_of(&body) {
        Ok(rules) => {
            chaos
                .state
                .write()
                .unwrap()
                .faults
                .extend(rules.iter().cloned());
            chaos.installed(&rules);
            listing(&chaos)
        }
        Err(why) => bad(why),
    }
}

async fn remove(State(chaos): State<Chaos>, body: Bytes) -> Response {
    match rules_of(&body) {
        Ok(rules) => {
            chaos
                .state
                .write()
                .unwrap()
                .faults
                .retain(|f| !rules.contains(f));
            chaos.changes.0.send_modify(|n| *n += 1);
            chaos.announce();
            listing(&chaos)
        }
        Err(why) => bad(why),
    }
}

async fn effects(State(chaos): State<Chaos>) -> Response {
    let ms = chaos.state.read().unwrap().latency_ms;
    axum::Json(serde_json::json!({"latency": ms})).into_response()
}

async fn set_effects(State(chaos): State<Chaos>, body: Bytes) -> Response {
    let doc: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(d) => d,
        Err(e) => return bad(format!("the body is not JSON: {e}")),
    };
    match chaos::parse_effects(&doc) {
        Ok(ms) => {
            chaos.state.write().unwrap().latency_ms = ms;
            if ms > 0 {
                tracing::warn!(
                    latency_ms = ms,
                    "chaos: latency added to every AWS API call"
                );
            } else {
                tracing::info!("chaos: no latency effect");
            }
            axum::Json(serde_json::json!({"latency": ms})).into_response()
        }
        Err(why) => bad(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classified_by_target_action_path_or_signature() {
        let h = |pairs: &[(&'static str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        let uri = |u: &str| u.parse::<axum::http::Uri>().unwrap();
        type Case<'a> = (
            Method,
            &'a str,
            HeaderMap,
            Option<&'a str>,
            Option<(&'a str, &'a str, Protocol)>,
        );
        let cases: Vec<Case<'_>> = vec![
            (Method::POST, "/", h(&[("x-amz-target", "AmazonSQS.SendMessage")]), None, Some(("sqs", "SendMessage", Protocol::Json10))),
            (Method::POST, "/", h(&[("x-amz-target", "DynamoDB_20120810.PutItem")]), None, Some(("dynamodb", "PutItem", Protocol::Json10))),
            (Method::POST, "/", h(&[]), Some("Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3At"), Some(("sns", "Publish", Protocol::Query))),
            (Method::GET, "/123456789012/q?Action=ReceiveMessage", h(&[]), None, Some(("sqs", "ReceiveMessage", Protocol::Query))),
            (Method::POST, "/2015-03-31/functions/f/invocations", h(&[]), None, Some(("lambda", "Invoke", Protocol::RestJson))),
            (Method::PUT, "/2015-03-31/functions/f/aliases/live", h(&[]), None, Some(("lambda", "UpdateAlias", Protocol::RestJson))),
            (Method::PUT, "/2017-10-31/functions/f/concurrency", h(&[]), None, Some(("lambda", "PutFunctionConcurrency", Protocol::RestJson))),
            (Method::GET, "/2015-03-31/functions/", h(&[]), None, Some(("lambda", "ListFunctions", Protocol::RestJson))),
            (Method::POST, "/", h(&[("x-amz-target", "CodeDeploy_20141006.GetDeployment")]), None, Some(("codedeploy", "GetDeployment", Protocol::Json11))),
            (Method::GET, "/b/k", h(&[("authorization", "AWS4-HMAC-SHA256 Credential=a/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x")]), None, Some(("s3", "GetObject", Protocol::RestXml))),
            (Method::GET, "/_nimbus/", h(&[]), None, None),
        ];
        for (m, u, headers, form, want) in cases {
            let form = form.map(|f| Bytes::from(f.to_owned()));
            let got = classify(&m, &uri(u), &headers, form.as_ref());
            assert_eq!(
                got.as_ref().map(|(s, o, p)| (*s, o.as_str(), *p)),
                want,
                "{m} {u}"
            );
        }
        assert_eq!(
            region_of(&h(&[(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=a/20260101/eu-west-1/sqs/aws4_request, x"
            )]))
            .as_deref(),
            Some("eu-west-1")
        );
    }
}
