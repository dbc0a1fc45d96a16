//! The AWS APIs nimbus serves on its one endpoint, so the AWS CLI, boto3 and the AWS SDKs work
//! against it with `--endpoint-url`: Lambda's Invoke, ListFunctions, GetFunction and
//! GetFunctionConfiguration (restJson1), SQS (AWS JSON 1.0, `X-Amz-Target: AmazonSQS.*`),
//! EventBridge (AWS JSON 1.1, `X-Amz-Target: AWSEvents.*`), CloudWatch Logs' reads of the
//! functions' logs (AWS JSON 1.1, `X-Amz-Target: Logs_20140328.*`), DynamoDB and DynamoDB
//! Streams (AWS JSON 1.0, `DynamoDB_20120810.*`, `DynamoDBStreams_20120810.*`, served by
//! `nimbus-dynamodb`), and SQS's older query protocol (form-encoded `Action=...`, XML answers).
//! In front of them all: the chaos layer (`chaos.rs`: faults and latency on any of these APIs,
//! LocalStack's chaos API shape) and S3's routing (its REST paths overlap every other API's).
//! AWS FIS's API (`fis.rs`) drives the Lambda platform's injected faults.

mod chaos;
pub mod egress;
pub mod error;
mod events;
mod fis;
mod lambda;
mod logs;
mod query_json;
mod sns;
pub mod sqs;

pub use chaos::Chaos;
pub use error::AwsError;
pub use lambda::router as lambda_router;
pub use sqs::{Sqs, SqsConfig};

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use nimbus_events::Hub;
use nimbus_lambda::Platform;

/// DynamoDB's largest request (BatchWriteItem, TransactWriteItems) is 16 MB; SQS messages are up
/// to 1 MiB, a batch too, and JSON escaping can double that.
const JSON_PROTOCOL_BODY_LIMIT: usize = 17 << 20;

#[derive(Clone)]
struct JsonServices {
    sqs: Sqs,
    events: Hub,
    logs: logs::Logs,
    dynamodb: nimbus_dynamodb::DynamoDb,
    ssm: nimbus_ssm::ParameterStore,
    secrets: nimbus_secrets::SecretsManager,
    sns: nimbus_sns::Sns,
    sfn: nimbus_sfn::StepFunctions,
    codedeploy: nimbus_codedeploy::Deployments,
}

/// The services behind the AWS endpoint.
pub struct Services {
    pub platform: Platform,
    pub sqs: Sqs,
    pub events: Hub,
    pub dynamodb: nimbus_dynamodb::DynamoDb,
    pub ssm: nimbus_ssm::ParameterStore,
    pub secrets: nimbus_secrets::SecretsManager,
    pub sns: nimbus_sns::Sns,
    pub sfn: nimbus_sfn::StepFunctions,
    pub s3: nimbus_s3::S3,
    pub codedeploy: nimbus_codedeploy::Deployments,
    /// The chaos rules, shared with the API Gateway (route faults).
    pub chaos: Chaos,
}

/// Every AWS API nimbus serves, as one router for the AWS endpoint.
pub fn router(services: Services) -> Router {
    let Services {
        platform,
        sqs,
        events,
        dynamodb,
        ssm,
        secrets,
        sns,
        sfn,
        s3,
        codedeploy,
        chaos,
    } = services;
    let dynamodb_for_metrics = dynamodb.clone();
    let front = Front {
        s3,
        chaos,
        region: platform.config().region.clone(),
        telemetry: std::sync::Arc::clone(events.telemetry()),
    };
    // JSON-protocol services post to `/` (SDKs) or to the queue URL's path (some clients).
    let json_protocol = Router::new()
        .route("/", post(json_protocol).get(query_get))
        .route("/{account}/{queue}", post(json_protocol).get(query_get))
        .route(
            "/SimpleNotificationService-nimbus.pem",
            axum::routing::get(sns_signing_cert),
        )
        .layer(DefaultBodyLimit::max(JSON_PROTOCOL_BODY_LIMIT))
        .with_state(JsonServices {
            sqs,
            events: events.clone(),
            logs: logs::Logs::new(platform.clone()),
            dynamodb,
            ssm,
            secrets,
            sns,
            sfn,
            codedeploy,
        });
    let metrics = Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state((events.clone(), dynamodb_for_metrics));
    let fis = fis::Fis::new(platform.clone(), events.clone());
    let apis = lambda_router(platform, events)
        .merge(fis.routes())
        .merge(json_protocol)
        .merge(metrics)
        .fallback(error::unknown_operation);
    // Chaos faults and S3 are decided before routing: a fault answers in any API's stead, and
    // S3's paths (`/<bucket>/<key>`, any method) overlap every other API's.
    Router::new()
        .merge(front.chaos.routes())
        .fallback_service(apis)
        .layer(axum::middleware::from_fn_with_state(front, front_door))
}

#[derive(Clone)]
struct Front {
    s3: nimbus_s3::S3,
    chaos: Chaos,
    region: String,
    telemetry: std::sync::Arc<nimbus_telemetry::Telemetry>,
}

/// Applies the chaos effects and faults, then sends S3's requests to S3: signed for `s3`,
/// addressed to a virtual-hosted bucket, or unsigned (a browser, curl) and naming an existing
/// bucket as the first path segment.
async fn front_door(
    State(front): State<Front>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let req = match front
        .chaos
        .apply(req, &front.region, &front.telemetry)
        .await
    {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let s3 = &front.s3;
    let (uri, h) = (req.uri(), req.headers());
    let for_s3 = nimbus_s3::is_s3_request(uri, h)
        || (!h.contains_key("authorization")
            && !h.contains_key("x-amz-target")
            && !uri.query().is_some_and(|q| q.contains("Action="))
            && uri
                .path()
                .trim_start_matches('/')
                .split('/')
                .next()
                .is_some_and(|b| !b.is_empty() && s3.has_bucket(b)));
    if for_s3 {
        return s3.handle(req).await;
    }
    next.run(req).await
}

/// Every metric in the OpenMetrics text format (which Prometheus scrapes), the store's gauges
/// read at this moment.
async fn metrics(State((hub, dynamodb)): State<(Hub, nimbus_dynamodb::DynamoDb)>) -> Response {
    let tables = tokio::task::spawn_blocking(move || dynamodb.table_stats())
        .await
        .unwrap_or_default();
    hub.telemetry().set_tables(&tables);
    (
        StatusCode::OK,
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        hub.scrape_metrics(),
    )
        .into_response()
}

/// The certificate of SNS's signing key, where its HTTP/HTTPS messages' `SigningCertURL` points.
async fn sns_signing_cert(State(services): State<JsonServices>) -> Response {
    let sns = services.sns.clone();
    // The first call may generate the key: off the async threads.
    match tokio::task::spawn_blocking(move || sns.signing_cert_pem()).await {
        Ok(Ok(pem)) => (
            StatusCode::OK,
            [("content-type", "application/x-pem-file")],
            pem,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "SNS's signing certificate");
            AwsError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                e.to_string(),
            )
            .into_response()
        }
        Err(e) => AwsError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            e.to_string(),
        )
        .into_response(),
    }
}

/// The `{account}/{queue}` of a request sent to a queue URL.
fn path_queue(uri: &Uri) -> Option<(&str, &str)> {
    let mut parts = uri.path().trim_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(q), None) if !a.is_empty() => Some((a, q)),
        _ => None,
    }
}

/// An SQS query-protocol request sent as a GET with its parameters in the query string.
async fn query_get(
    State(services): State<JsonServices>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let json = query_json::wanted(&headers);
    if sns::is_sns(&headers, &params) {
        return sns::answer(&services.sns, params, json);
    }
    services.sqs.query(params, path_queue(&uri), json).await
}

/// Routes an AWS JSON protocol request by its `X-Amz-Target`, and a form-encoded one to SQS's
/// query protocol.
async fn json_protocol(
    State(services): State<JsonServices>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if target.is_empty() && form {
        // The query protocol takes parameters from the URL's query string as well as the
        // body (API Gateway's integrations put them in either).
        let params: Vec<(String, String)> =
            form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
                .chain(form_urlencoded::parse(&body))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        let json = query_json::wanted(&headers);
        let action = params
            .iter()
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if sns::is_sns(&headers, &params) {
            count_call(&services.events, "sns", action);
            return sns::answer(&services.sns, params, json);
        }
        count_call(&services.events, "sqs", action);
        let payload = params
            .iter()
            .filter(|(k, _)| {
                k.ends_with("MessageBody")
                    || ((k.contains("MessageAttribute.") || k.contains("MessageSystemAttribute."))
                        && !k.contains("MessageAttributeName"))
            })
            .map(|(k, v)| match k.ends_with("BinaryValue") {
                true => base64_len(v),
                false => v.len(),
            })
            .sum();
        bill_sqs(&services.events, payload);
        return services.sqs.query(params, path_queue(&uri), json).await;
    }
    let Some((service, action)) = Service::ALL.into_iter().find_map(|s| {
        let action = target.strip_prefix(s.target_prefix())?.strip_prefix('.')?;
        Some((s, action))
    }) else {
        return AwsError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!(
                "nimbus serves no operation {target:?} here; use X-Amz-Target AmazonSQS.<Action> (SQS), AWSEvents.<Action> (EventBridge), Logs_20140328.<Action> (CloudWatch Logs), DynamoDB_20120810.<Action> or DynamoDBStreams_20120810.<Action> (DynamoDB), AmazonSSM.<Action> (Parameter Store), secretsmanager.<Action> (Secrets Manager), AWSStepFunctions.<Action> (Step Functions), CodeDeploy_20141006.<Action> (CodeDeploy), or a form-encoded Action=<Action> body (SQS query protocol)"
            ),
        )
        .into_response();
    };
    let content_type = service.content_type();
    let input: serde_json::Value = match body.is_empty() {
        true => serde_json::json!({}),
        false => match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let body = serde_json::json!({
                    "__type": "com.amazon.coral.service#SerializationException",
                    "message": format!("the request body is not JSON: {e}"),
                });
                return (
                    StatusCode::BAD_REQUEST,
                    [("content-type", content_type)],
                    body.to_string(),
                )
                    .into_response();
            }
        },
    };
    let mut input = input;
    if let Some(trace) = headers.get("x-amzn-trace-id").and_then(|v| v.to_str().ok()) {
        carry_trace_header(&mut input, action, trace);
    }
    count_call(&services.events, service.botocore_name(), action);
    if matches!(service, Service::Sqs) {
        bill_sqs(&services.events, sqs_payload(&input));
    }
    let answer = match service {
        Service::Sqs => services
            .sqs
            .dispatch(action, input)
            .await
            .map_err(IntoResponse::into_response),
        Service::Events => events::dispatch(&services.events, action, input)
            .await
            .map_err(IntoResponse::into_response),
        Service::Logs => services
            .logs
            .dispatch(action, input)
            .await
            .map_err(IntoResponse::into_response),
        // Parameter Store and Secrets Manager: a row or two per call, answered on this task.
        Service::Ssm => services
            .ssm
            .dispatch(action, &input, nimbus_events::now_ms())
            .map_err(|e| json_error(e.status(), e.body())),
        Service::Secrets => services
            .secrets
            .dispatch(action, &input, nimbus_events::now_ms())
            .map_err(|e| json_error(e.status(), e.body())),
        Service::CodeDeploy => services
            .codedeploy
            .dispatch(action, &input)
            .map_err(|e| json_error(e.status(), e.body())),
        Service::StepFunctions => services
            .sfn
            .dispatch(action, &input)
            .await
            .map_err(|e| json10_error(e.status(), e.body())),
        Service::DynamoDb | Service::DynamoDbStreams => {
            let db = services.dynamodb.clone();
            let started = std::time::Instant::now();
            // Calls on one table are labelled with it; batches and transactions span several.
            let input_table = input["TableName"].as_str().map(str::to_owned);
            // Capacity is counted for the metrics whether or not the caller asked for it; it
            // is answered only when asked.
            let telemetry = services.events.telemetry();
            let capacity = match service {
                Service::DynamoDb => nimbus_dynamodb::capacity_kind(action, &input),
                _ => None,
            };
            let asked = input["ReturnConsumedCapacity"]
                .as_str()
                .is_some_and(|v| v != "NONE");
            if let (Some(_), false, Some(o)) = (capacity, asked, input.as_object_mut()) {
                o.insert("ReturnConsumedCapacity".into(), "TOTAL".into());
            }
            // A function's SDK call carries its trace: the call is a span of it.
            let mut span = telemetry.traces.open(
                headers.get("x-amzn-trace-id").and_then(|v| v.to_str().ok()),
                nimbus_telemetry::traces::SpanKind::DynamoDb,
                format!("table:{}", input_table.as_deref().unwrap_or("*")),
                action.to_owned(),
                nimbus_lambda::epoch_us(),
            );
            let answer = if matches!(service, Service::DynamoDb)
                && nimbus_dynamodb::is_single_item(action)
                && db.is_idle()
            {
                // One item with the tables free: tens of microseconds, cheaper on this task
                // than a hop to a blocking thread and back (as SQS's calls are). Behind a long
                // page, batch or TTL sweep it waits on a blocking thread instead, so the async
                // workers never wait on the lock.
                db.dispatch(action, &input)
            } else {
                // A page of a query or scan reads up to 1 MB, a batch writes up to 16 MB:
                // off the async workers.
                let action = action.to_owned();
                tokio::task::spawn_blocking(move || match service {
                    Service::DynamoDb => db.dispatch(&action, &input),
                    _ => db.dispatch_streams(&action, &input),
                })
                .await
                .unwrap_or_else(|e| {
                    Err(nimbus_dynamodb::DdbError::Internal(format!(
                        "the operation failed: {e}"
                    )))
                })
            };
            let outcome = match &answer {
                Ok(_) => "ok",
                Err(e) => e.code(),
            };
            // Labels stay bounded: a table that does not exist and an action DynamoDB does not
            // have are not labels a caller can mint.
            let table = input_table
                .as_deref()
                .filter(|t| outcome == "ok" || services.dynamodb.has_table_now(t))
                .unwrap_or("");
            let operation = match (service, outcome) {
                (Service::DynamoDbStreams, _) => "Streams",
                (_, "UnknownOperationException") => "unknown",
                _ => action,
            };
            telemetry.record_dynamodb(table, operation, outcome, started.elapsed().as_secs_f64());
            let mut answer = answer;
            if let (Some(write), Ok(out)) = (capacity, answer.as_mut()) {
                for (table, units) in nimbus_dynamodb::consumed_capacity(out) {
                    telemetry.record_dynamodb_capacity(&table, units, write);
                }
                if !asked {
                    if let Some(o) = out.as_object_mut() {
                        o.remove("ConsumedCapacity");
                    }
                }
            }
            if let Some(mut s) = span.take() {
                if let Err(e) = &answer {
                    s.fail(e.code());
                }
                telemetry.traces.close(s, nimbus_lambda::epoch_us());
            }
            answer.map_err(dynamodb_error)
        }
    };
    match answer {
        Ok(out) => (
            StatusCode::OK,
            [("content-type", content_type)],
            out.to_string(),
        )
            .into_response(),
        Err(resp) => resp,
    }
}

/// An AWS JSON 1.1 service's error: its status, `__type` and `message` in the body.
fn json_error(status: u16, body: serde_json::Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

/// An AWS JSON 1.0 service's error (Step Functions): its status, `__type` and `message`.
fn json10_error(status: u16, body: serde_json::Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
        .into_response()
}

/// A DynamoDB error as its AWS JSON 1.0 clients read it: `__type` and `message` in the body.
fn dynamodb_error(e: nimbus_dynamodb::DdbError) -> Response {
    json10_error(e.status(), e.body())
}

/// The request's `X-Amzn-Trace-Id` (what an SDK in a traced function sends) applies to every
/// message of `SendMessage` / `SendMessageBatch`, every `PutEvents` entry and every execution
/// started that does not set its own (`AWSTraceHeader`, `TraceHeader`, `traceHeader`), which
/// wins, as SQS documents for X-Ray.
fn carry_trace_header(input: &mut serde_json::Value, action: &str, trace: &str) {
    let sqs_attribute = || serde_json::json!({"DataType": "String", "StringValue": trace});
    // A malformed `MessageSystemAttributes` is left for validation to refuse.
    let set_sqs = |m: &mut serde_json::Value| {
        let Some(m) = m.as_object_mut() else {
            return;
        };
        match m.get_mut("MessageSystemAttributes") {
            Some(attrs) if attrs.is_object() && attrs.get("AWSTraceHeader").is_none() => {
                attrs["AWSTraceHeader"] = sqs_attribute();
            }
            None => {
                m.insert(
                    "MessageSystemAttributes".into(),
                    serde_json::json!({"AWSTraceHeader": sqs_attribute()}),
                );
            }
            _ => {}
        }
    };
    match action {
        "SendMessage" => set_sqs(input),
        "SendMessageBatch" => {
            if let Some(entries) = input["Entries"].as_array_mut() {
                entries.iter_mut().for_each(set_sqs);
            }
        }
        "PutEvents" => {
            if let Some(entries) = input["Entries"].as_array_mut() {
                for e in entries.iter_mut().filter(|e| e.is_object()) {
                    if e["TraceHeader"].is_null() {
                        e["TraceHeader"] = trace.into();
                    }
                }
            }
        }
        // An execution started by a traced caller continues its trace, unless the request
        // names another (`traceHeader` wins, as Step Functions reads it first).
        "StartExecution" | "StartSyncExecution" => {
            if let Some(o) = input.as_object_mut() {
                if o.get("traceHeader").is_none_or(serde_json::Value::is_null) {
                    o.insert("traceHeader".into(), trace.into());
                }
            }
        }
        _ => {}
    }
}

/// One AWS API call, for `nimbus cost` (what AWS bills per request).
fn count_call(hub: &Hub, service: &str, operation: &str) {
    hub.telemetry()
        .api_calls
        .get_or_create(&nimbus_telemetry::ApiCallLabels {
            service: service.to_owned(),
            operation: operation.to_owned(),
        })
        .inc();
}

/// Counts an SQS request as AWS bills it: one per 64 KB chunk of its payload, at least one.
fn bill_sqs(hub: &Hub, payload: usize) {
    let chunks = payload.div_ceil(64 * 1024).max(1);
    hub.telemetry().sqs.billed_requests.inc_by(chunks as u64);
}

/// The length of what base64 text `b64` decodes to (a binary attribute's bytes).
fn base64_len(b64: &str) -> usize {
    let padding = b64.bytes().rev().take_while(|b| *b == b'=').count();
    (b64.len() / 4 * 3).saturating_sub(padding)
}

/// The message payload of an SQS JSON request: the bodies and message attributes (names,
/// types and values) of a send or a batch; nothing for other actions.
fn sqs_payload(input: &serde_json::Value) -> usize {
    let message = |m: &serde_json::Value| -> usize {
        let body = m["MessageBody"].as_str().map_or(0, str::len);
        let attrs: usize = ["MessageAttributes", "MessageSystemAttributes"]
            .iter()
            .filter_map(|k| m[*k].as_object())
            .flatten()
            .map(|(name, v)| {
                name.len()
                    + v["DataType"].as_str().map_or(0, str::len)
                    + v["StringValue"].as_str().map_or(0, str::len)
                    + v["BinaryValue"].as_str().map_or(0, base64_len)
            })
            .sum();
        body + attrs
    };
    match input["Entries"].as_array() {
        Some(entries) => entries.iter().map(message).sum(),
        None => message(input),
    }
}

/// The `X-Amz-Target` prefix of the AWS JSON protocol service named `service` in ARNs
/// (`dynamodb` -> `DynamoDB_20120810`, `states` -> `AWSStepFunctions`), for callers that
/// build such requests (API Gateway's `AWS` integrations).
pub fn json_target_prefix(service: &str) -> Option<&'static str> {
    let s = match service {
        "sqs" => Service::Sqs,
        "events" => Service::Events,
        "logs" => Service::Logs,
        "dynamodb" => Service::DynamoDb,
        "ssm" => Service::Ssm,
        "secretsmanager" => Service::Secrets,
        "states" => Service::StepFunctions,
        "codedeploy" => Service::CodeDeploy,
        _ => return None,
    };
    Some(s.target_prefix())
}

impl Service {
    const ALL: [Service; 9] = [
        Service::Sqs,
        Service::Events,
        Service::Logs,
        Service::DynamoDb,
        Service::DynamoDbStreams,
        Service::Ssm,
        Service::Secrets,
        Service::StepFunctions,
        Service::CodeDeploy,
    ];

    fn target_prefix(self) -> &'static str {
        match self {
            Service::Sqs => "AmazonSQS",
            Service::Events => "AWSEvents",
            Service::Logs => "Logs_20140328",
            Service::DynamoDb => "DynamoDB_20120810",
            Service::DynamoDbStreams => "DynamoDBStreams_20120810",
            Service::Ssm => "AmazonSSM",
            Service::Secrets => "secretsmanager",
            Service::StepFunctions => "AWSStepFunctions",
            Service::CodeDeploy => "CodeDeploy_20141006",
        }
    }

    /// AWS JSON 1.0 or 1.1, as each service's model says.
    fn content_type(self) -> &'static str {
        match self {
            Service::Sqs
            | Service::DynamoDb
            | Service::DynamoDbStreams
            | Service::StepFunctions => "application/x-amz-json-1.0",
            _ => "application/x-amz-json-1.1",
        }
    }

    fn botocore_name(self) -> &'static str {
        match self {
            Service::Sqs => "sqs",
            Service::Events => "events",
            Service::Logs => "logs",
            Service::DynamoDb => "dynamodb",
            Service::DynamoDbStreams => "dynamodbstreams",
            Service::Ssm => "ssm",
            Service::Secrets => "secretsmanager",
            Service::StepFunctions => "stepfunctions",
            Service::CodeDeploy => "codedeploy",
        }
    }
}

#[derive(Clone, Copy)]
enum Service {
    Sqs,
    Events,
    Logs,
    DynamoDb,
    DynamoDbStreams,
    Ssm,
    Secrets,
    StepFunctions,
    CodeDeploy,
}

/// An SQS action as API Gateway's first-class `SQS-*` integrations call it: the answer in
/// the query protocol's JSON shape those integrations return
/// (`{"SendMessageResponse": {"SendMessageResult": ...}}`), or the status and message of
/// SQS's error.
pub async fn sqs_call(
    sqs: &Sqs,
    action: &str,
    input: serde_json::Value,
) -> Result<serde_json::Value, (u16, String)> {
    match sqs.dispatch(action, input).await {
        Ok(r) => Ok(query_json::answer(
            action,
            &query_json::sqs_result(action, &r),
            &uuid::Uuid::new_v4().to_string(),
        )),
        Err(e) => Err(e.status_and_message()),
    }
}

/// An EventBridge API call from another service (a Step Functions task): the answer, or the
/// error's code and message.
pub async fn events_call(
    hub: &nimbus_events::Hub,
    action: &str,
    input: serde_json::Value,
) -> Result<serde_json::Value, (String, String)> {
    events::dispatch(hub, action, input)
        .await
        .map_err(|e| (e.code.to_owned(), e.message))
}

/// EventBridge `PutEvents` as the `EventBridge-PutEvents` integration calls it.
pub async fn events_put_events(
    hub: &nimbus_events::Hub,
    input: serde_json::Value,
) -> Result<serde_json::Value, (u16, String)> {
    events::dispatch(hub, "PutEvents", input)
        .await
        .map_err(|e| (e.status.as_u16(), e.message))
}
