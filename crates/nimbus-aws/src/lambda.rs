//! Lambda's control-plane and Invoke APIs (`/2015-03-31/functions/...`).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use bytes::Bytes;
use nimbus_core::arn::{function_arn, parse_function_ref};
use nimbus_events::{EventsError, Hub};
use nimbus_lambda::{
    FunctionSpec, InvokeError, InvokeRequest, Platform, MAX_ASYNC_PAYLOAD, MAX_SYNC_PAYLOAD,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::AwsError;

/// `X-Amz-Client-Context` is limited to 3583 bytes (base64) by Lambda.
const MAX_CLIENT_CONTEXT: usize = 3583;

#[derive(Clone)]
struct Api {
    platform: Platform,
    /// `Event` invocations go to the event engine's durable queue.
    events: Hub,
}

pub fn router(platform: Platform, events: Hub) -> Router {
    let api = Api { platform, events };
    Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .route("/2015-03-31/functions", get(list_functions))
        .route("/2015-03-31/functions/", get(list_functions))
        .route("/2015-03-31/functions/{name}", get(get_function))
        .route(
            "/2015-03-31/functions/{name}/configuration",
            get(get_function_configuration),
        )
        .with_state(api)
}

#[derive(Deserialize, Default)]
struct QualifierQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
}

fn not_found(platform: &Platform, name: &str, qualifier: Option<&str>) -> AwsError {
    let cfg = platform.config();
    let mut arn = function_arn(&cfg.region, &cfg.account_id, name);
    if let Some(q) = qualifier {
        arn = format!("{arn}:{q}");
    }
    AwsError::new(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        format!("Function not found: {arn}"),
    )
}

/// Resolves the `FunctionName` path segment and `Qualifier` to a served function.
fn resolve<'p>(
    platform: &'p Platform,
    raw: &str,
    query_qualifier: Option<&str>,
) -> Result<&'p FunctionSpec, AwsError> {
    let Some(r) = parse_function_ref(raw) else {
        return Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            format!("1 validation error detected: Value '{raw}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"),
        ));
    };
    let qualifier = r.qualifier.or(query_qualifier);
    let spec = platform
        .function(r.name)
        .ok_or_else(|| not_found(platform, r.name, qualifier))?;
    // Versions and aliases come with the deployments work; until then only $LATEST exists.
    match qualifier {
        None | Some("$LATEST") => Ok(spec),
        Some(q) => Err(not_found(platform, r.name, Some(q))),
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn invoke(
    State(Api { platform, events }): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AwsError> {
    let invocation_type = header(&headers, "x-amz-invocation-type").unwrap_or("RequestResponse");
    let limit = match invocation_type {
        "RequestResponse" | "DryRun" => MAX_SYNC_PAYLOAD,
        "Event" => MAX_ASYNC_PAYLOAD,
        other => {
            return Err(AwsError::new(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                format!(
                    "invalid X-Amz-Invocation-Type {other:?}: use RequestResponse, Event or DryRun"
                ),
            ))
        }
    };
    let spec = resolve(&platform, &name, query.qualifier.as_deref())?;
    let function = spec.name.clone();

    let payload = axum::body::to_bytes(body, limit).await.map_err(|_| {
        AwsError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            format!("Request must be smaller than {limit} bytes for the InvokeFunction operation"),
        )
    })?;
    let payload = if payload.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
            return Err(AwsError::new(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                format!("Could not parse request body into json: Could not parse payload into json: {e}"),
            ));
        }
        payload
    };

    let client_context = match header(&headers, "x-amz-client-context") {
        None => None,
        Some(b64) => Some(decode_client_context(b64)?),
    };
    let tail_log = match header(&headers, "x-amz-log-type") {
        None | Some("None") => false,
        Some("Tail") => true,
        Some(other) => {
            return Err(AwsError::new(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                format!("invalid X-Amz-Log-Type {other:?}: use None or Tail"),
            ))
        }
    };
    let req = InvokeRequest {
        payload,
        client_context,
        trace_header: header(&headers, "x-amzn-trace-id").map(str::to_owned),
        tail_log: tail_log && invocation_type == "RequestResponse",
        request_id: None,
    };

    match invocation_type {
        "DryRun" => Ok(StatusCode::NO_CONTENT.into_response()),
        "Event" => {
            // Valid JSON is UTF-8, so the payload is text.
            let payload = std::str::from_utf8(&req.payload).unwrap_or("{}");
            let request_id = events
                .invoke_async(&function, payload, req.trace_header.as_deref())
                .map_err(|e| match e {
                    EventsError::FunctionNotFound(name) => not_found(&platform, &name, None),
                    other => AwsError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "ServiceException",
                        format!("nimbus could not store the event: {other}"),
                    ),
                })?;
            let mut resp = StatusCode::ACCEPTED.into_response();
            set(&mut resp, "x-amzn-requestid", &request_id);
            Ok(resp)
        }
        _ => {
            let out = platform
                .invoke(&function, req)
                .await
                .map_err(|e| invoke_error(&platform, e))?;
            let mut resp = (StatusCode::OK, out.payload).into_response();
            set(&mut resp, "content-type", "application/json");
            set(&mut resp, "x-amzn-requestid", &out.request_id);
            set(&mut resp, "x-amz-executed-version", &out.executed_version);
            if let Some(kind) = out.function_error {
                set(&mut resp, "x-amz-function-error", kind);
            }
            if let Some(tail) = out.log_tail {
                let encoded = base64::engine::general_purpose::STANDARD.encode(tail);
                set(&mut resp, "x-amz-log-result", &encoded);
            }
            Ok(resp)
        }
    }
}

fn decode_client_context(b64: &str) -> Result<String, AwsError> {
    let invalid = || {
        AwsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Client context must be a valid Base64-encoded JSON object.",
        )
    };
    if b64.len() > MAX_CLIENT_CONTEXT {
        return Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            format!("Client context must be at most {MAX_CLIENT_CONTEXT} bytes."),
        ));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(_)) => Ok(text),
        _ => Err(invalid()),
    }
}

fn invoke_error(platform: &Platform, e: InvokeError) -> AwsError {
    match e {
        InvokeError::NotFound(name) => not_found(platform, &name, None),
        InvokeError::Throttled(reason) => {
            let mut err = AwsError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Rate Exceeded.",
            );
            err.extra.push(("Reason", reason.as_str().to_owned()));
            err.retry_after = Some(1);
            err
        }
        InvokeError::ShuttingDown => AwsError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            "nimbus is shutting down",
        ),
    }
}

fn set(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

fn configuration(platform: &Platform, f: &FunctionSpec) -> Value {
    let cfg = platform.config();
    json!({
        "FunctionName": f.name,
        "FunctionArn": f.arn,
        "Runtime": f.runtime,
        "Role": format!("arn:aws:iam::{}:role/nimbus-{}", cfg.account_id, f.name),
        "Handler": f.handler.clone().unwrap_or_else(|| "bootstrap".into()),
        "CodeSize": 0,
        "Description": "",
        "Timeout": f.timeout.as_secs(),
        "MemorySize": f.memory_mb,
        "Version": "$LATEST",
        "Environment": { "Variables": f.environment },
        "TracingConfig": { "Mode": "PassThrough" },
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "EphemeralStorage": { "Size": 512 },
    })
}

async fn list_functions(State(Api { platform, .. }): State<Api>) -> Json<Value> {
    let functions: Vec<Value> = platform
        .functions()
        .map(|f| configuration(&platform, f))
        .collect();
    Json(json!({ "Functions": functions }))
}

async fn get_function(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
) -> Result<Json<Value>, AwsError> {
    let f = resolve(&platform, &name, query.qualifier.as_deref())?;
    let mut out = json!({
        "Configuration": configuration(&platform, f),
        "Code": { "RepositoryType": "Local" },
    });
    if let Some(reserved) = f.reserved_concurrency {
        out["Concurrency"] = json!({ "ReservedConcurrentExecutions": reserved });
    }
    Ok(Json(out))
}

async fn get_function_configuration(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
) -> Result<Json<Value>, AwsError> {
    let f = resolve(&platform, &name, query.qualifier.as_deref())?;
    Ok(Json(configuration(&platform, f)))
}
