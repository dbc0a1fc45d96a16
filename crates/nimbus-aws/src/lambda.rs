//! Lambda's control-plane and Invoke APIs (`/2015-03-31/functions/...`).

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use bytes::Bytes;
use nimbus_core::arn::{function_arn, parse_function_ref};
use nimbus_events::{EventsError, Hub};
use nimbus_lambda::versions::version_number;
use nimbus_lambda::{
    AliasInfo, AliasUpdate, FunctionSpec, InvokeError, InvokeRequest, Platform, VersionError,
    MAX_ASYNC_PAYLOAD, MAX_SYNC_PAYLOAD,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

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
        .route(
            "/2015-03-31/functions/{name}",
            get(get_function).delete(delete_function),
        )
        .route(
            "/2015-03-31/functions/{name}/configuration",
            get(get_function_configuration).put(update_function_configuration),
        )
        .route(
            "/2015-03-31/functions/{name}/code",
            put(update_function_code).layer(DefaultBodyLimit::max(MAX_ZIP * 4 / 3 + 4096)),
        )
        .route(
            "/2015-03-31/functions/{name}/versions",
            get(list_versions).post(publish_version),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases",
            get(list_aliases).post(create_alias),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases/{alias}",
            get(get_alias).put(update_alias).delete(delete_alias),
        )
        .route(
            "/2017-10-31/functions/{name}/concurrency",
            put(put_concurrency).delete(delete_concurrency),
        )
        .route(
            "/2019-09-30/functions/{name}/concurrency",
            get(get_concurrency),
        )
        .route(
            "/2019-09-25/functions/{name}/event-invoke-config",
            get(get_invoke_config)
                .put(put_invoke_config)
                .post(update_invoke_config)
                .delete(delete_invoke_config),
        )
        .route(
            "/2019-09-25/functions/{name}/event-invoke-config/list",
            get(list_invoke_configs),
        )
        .route(
            "/2019-09-30/functions/{name}/provisioned-concurrency",
            get(get_provisioned)
                .put(put_provisioned)
                .delete(delete_provisioned),
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

fn invalid_name(raw: &str) -> AwsError {
    AwsError::new(
        StatusCode::BAD_REQUEST,
        "ValidationException",
        format!("1 validation error detected: Value '{raw}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"),
    )
}

/// The `FunctionName` path segment and `Qualifier` parameter, checked: the function's name and
/// the qualifier, if any. The two ways of qualifying must agree, as on Lambda.
fn target<'a>(
    platform: &Platform,
    raw: &'a str,
    query_qualifier: Option<&'a str>,
) -> Result<(&'a str, Option<&'a str>), AwsError> {
    let r = parse_function_ref(raw).ok_or_else(|| invalid_name(raw))?;
    let qualifier = match (r.qualifier, query_qualifier) {
        (Some(a), Some(b)) if a != b => return Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            "The derived qualifier from the function name does not match the specified qualifier.",
        )),
        (a, b) => a.or(b),
    };
    if platform.function(r.name).is_none() {
        return Err(not_found(platform, r.name, qualifier));
    }
    Ok((r.name, qualifier))
}

/// An unqualified function name (the operations on a function as a whole).
fn unqualified<'a>(platform: &Platform, raw: &'a str) -> Result<&'a str, AwsError> {
    let r = parse_function_ref(raw).ok_or_else(|| invalid_name(raw))?;
    if platform.function(r.name).is_none() {
        return Err(not_found(platform, r.name, None));
    }
    Ok(r.name)
}

fn version_error(e: VersionError) -> AwsError {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    AwsError::new(status, e.code(), e.to_string())
}

/// The configuration of `$LATEST`, of a version, or of the version an alias routes to first.
fn resolve(
    platform: &Platform,
    name: &str,
    qualifier: Option<&str>,
) -> Result<Arc<FunctionSpec>, AwsError> {
    let missing = || not_found(platform, name, qualifier);
    match qualifier {
        None | Some("$LATEST") => platform.function(name).ok_or_else(missing),
        Some(q) => match version_number(q) {
            Some(n) => platform
                .version(name, n)
                .map(|v| v.spec)
                .ok_or_else(missing),
            None => {
                let alias = platform.alias(name, q).map_err(|_| missing())?;
                match version_number(&alias.version) {
                    Some(n) => platform
                        .version(name, n)
                        .map(|v| v.spec)
                        .ok_or_else(missing),
                    None => platform.function(name).ok_or_else(missing),
                }
            }
        },
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
    // A missing version or alias is Invoke's (or the async queue's) ResourceNotFoundException.
    let (function, qualifier) = target(&platform, &name, query.qualifier.as_deref())?;
    let function = match qualifier {
        Some(q) => format!("{function}:{q}"),
        None => function.to_owned(),
    };

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
        "DryRun" => match platform.exists(&function) {
            true => Ok(StatusCode::NO_CONTENT.into_response()),
            false => {
                let (name, q) = function.split_once(':').unzip();
                Err(not_found(&platform, name.unwrap_or(&function), q))
            }
        },
        "Event" => {
            // Valid JSON is UTF-8, so the payload is text.
            let payload = std::str::from_utf8(&req.payload).unwrap_or("{}");
            let request_id = events
                .invoke_async(&function, payload, req.trace_header.as_deref())
                .map_err(|e| match e {
                    EventsError::FunctionNotFound(_) => {
                        let (name, q) = function.split_once(':').unzip();
                        not_found(&platform, name.unwrap_or(&function), q)
                    }
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
        InvokeError::NotFound(name) => match name.split_once(':') {
            Some((name, q)) => not_found(platform, name, Some(q)),
            None => not_found(platform, &name, None),
        },
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

/// `2019-08-14T22:26:11.234+0000`, Lambda's `LastModified`.
fn last_modified(ms: u64) -> String {
    nimbus_core::alarm::state_timestamp(ms)
}

/// A `FunctionConfiguration`. `qualified_arn` gives `$LATEST` its `:$LATEST` ARN, as
/// `ListVersionsByFunction` does; a version's ARN always carries its number.
fn configuration(
    platform: &Platform,
    f: &FunctionSpec,
    code_sha256: Option<&str>,
    qualified_arn: bool,
) -> Value {
    let cfg = platform.config();
    let arn = if f.version != "$LATEST" || qualified_arn {
        format!("{}:{}", f.arn, f.version)
    } else {
        f.arn.clone()
    };
    let mut out = json!({
        "FunctionName": f.name,
        "FunctionArn": arn,
        "Runtime": f.runtime,
        "Role": format!("arn:aws:iam::{}:role/nimbus-{}", cfg.account_id, f.name),
        "Handler": f.handler.clone().unwrap_or_else(|| "bootstrap".into()),
        "CodeSize": 0,
        "Description": f.description,
        "Timeout": f.timeout.as_secs(),
        "MemorySize": f.memory_mb,
        "LastModified": last_modified(f.last_modified_ms),
        "Version": f.version,
        "Environment": { "Variables": f.environment },
        "TracingConfig": { "Mode": if f.tracing_active { "Active" } else { "PassThrough" } },
        "RevisionId": f.revision_id,
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "State": if f.launch.is_ok() { "Active" } else { "Failed" },
        "LastUpdateStatus": "Successful",
        "EphemeralStorage": { "Size": 512 },
    });
    if let Err(reason) = &f.launch {
        out["StateReason"] = json!(reason);
        out["StateReasonCode"] = json!("InvalidEntrypoint");
    }
    if let Some(sha) = code_sha256 {
        out["CodeSha256"] = json!(sha);
    }
    out
}

#[derive(Deserialize, Default)]
struct Page {
    #[serde(rename = "Marker")]
    marker: Option<String>,
    #[serde(rename = "MaxItems")]
    max_items: Option<usize>,
    #[serde(rename = "FunctionVersion")]
    function_version: Option<String>,
}

/// One page of `items` from `Marker` (an index, as nimbus issues them): the page and the
/// next marker.
fn page<T>(items: Vec<T>, p: &Page) -> Result<(Vec<T>, Option<String>), AwsError> {
    let start = match &p.marker {
        None => 0,
        Some(m) => m.parse::<usize>().map_err(|_| {
            AwsError::new(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                format!("Invalid Marker: {m}"),
            )
        })?,
    };
    let max = p.max_items.unwrap_or(50).clamp(1, 10_000);
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(max).collect();
    let next = (start + max < total).then(|| (start + max).to_string());
    Ok((page, next))
}

async fn list_functions(
    State(Api { platform, .. }): State<Api>,
    Query(p): Query<Page>,
) -> Result<Json<Value>, AwsError> {
    let functions: Vec<Value> = platform
        .functions()
        .map(|f| configuration(&platform, &f, None, false))
        .collect();
    let (functions, next) = page(functions, &p)?;
    let mut out = json!({ "Functions": functions });
    if let Some(next) = next {
        out["NextMarker"] = json!(next);
    }
    Ok(Json(out))
}

async fn get_function(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
) -> Result<Json<Value>, AwsError> {
    let (name, qualifier) = target(&platform, &name, query.qualifier.as_deref())?;
    let f = resolve(&platform, name, qualifier)?;
    let sha = platform.code_sha256(f.clone()).await;
    let mut out = json!({
        "Configuration": configuration(&platform, &f, sha.as_deref(), false),
        "Code": { "RepositoryType": "Local" },
    });
    if let Some(reserved) = platform.function(name).and_then(|l| l.reserved_concurrency) {
        out["Concurrency"] = json!({ "ReservedConcurrentExecutions": reserved });
    }
    Ok(Json(out))
}

async fn get_function_configuration(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
) -> Result<Json<Value>, AwsError> {
    let (name, qualifier) = target(&platform, &name, query.qualifier.as_deref())?;
    let f = resolve(&platform, name, qualifier)?;
    let sha = platform.code_sha256(f.clone()).await;
    Ok(Json(configuration(&platform, &f, sha.as_deref(), false)))
}

/// A JSON request body (`{}` when empty), or Lambda's answer to one it cannot read.
fn body(raw: &Bytes) -> Result<Value, AwsError> {
    if raw.is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json",
        )),
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

async fn publish_version(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    raw: Bytes,
) -> Result<Response, AwsError> {
    let name = unqualified(&platform, &name)?;
    let b = body(&raw)?;
    let v = platform
        .publish_version(
            name,
            text(&b, "Description"),
            text(&b, "CodeSha256"),
            text(&b, "RevisionId"),
        )
        .await
        .map_err(version_error)?;
    let config = configuration(&platform, &v.spec, Some(&v.code_sha256), false);
    Ok((StatusCode::CREATED, Json(config)).into_response())
}

async fn list_versions(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    Query(p): Query<Page>,
) -> Result<Json<Value>, AwsError> {
    let name = unqualified(&platform, &name)?;
    let latest = platform
        .function(name)
        .ok_or_else(|| not_found(&platform, name, None))?;
    let latest_sha = platform.code_sha256(latest.clone()).await;
    let mut all = vec![configuration(
        &platform,
        &latest,
        latest_sha.as_deref(),
        true,
    )];
    all.extend(
        platform
            .versions(name)
            .map_err(version_error)?
            .iter()
            .map(|v| configuration(&platform, &v.spec, Some(&v.code_sha256), false)),
    );
    let (versions, next) = page(all, &p)?;
    let mut out = json!({ "Versions": versions });
    if let Some(next) = next {
        out["NextMarker"] = json!(next);
    }
    Ok(Json(out))
}

fn alias_json(platform: &Platform, a: &AliasInfo) -> Value {
    let cfg = platform.config();
    let mut out = json!({
        "AliasArn": format!("{}:{}", function_arn(&cfg.region, &cfg.account_id, &a.function), a.name),
        "Name": a.name,
        "FunctionVersion": a.version,
        "Description": a.description,
        "RevisionId": a.revision_id,
    });
    if let Some((v, w)) = &a.additional {
        out["RoutingConfig"] = json!({ "AdditionalVersionWeights": { v.clone(): w } });
    }
    out
}

/// `RoutingConfig` as the request gives it: `None` when absent, `Some(None)` for no weights.
fn routing(b: &Value) -> Result<Option<Option<(String, f64)>>, AwsError> {
    let Some(rc) = b.get("RoutingConfig") else {
        return Ok(None);
    };
    let weights = match rc.get("AdditionalVersionWeights") {
        None | Some(Value::Null) => return Ok(Some(None)),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(AwsError::new(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "RoutingConfig.AdditionalVersionWeights must be a map of version to weight",
            ))
        }
    };
    if weights.len() > 1 {
        return Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            "Number of items in AdditionalVersionWeights cannot be greater than 1",
        ));
    }
    Ok(Some(
        weights
            .iter()
            .next()
            .map(|(v, w)| (v.clone(), w.as_f64().unwrap_or(f64::NAN))),
    ))
}

async fn create_alias(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    raw: Bytes,
) -> Result<Response, AwsError> {
    let name = unqualified(&platform, &name)?;
    let b = body(&raw)?;
    let required = |key: &str| {
        text(&b, key).ok_or_else(|| {
            AwsError::new(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                format!("1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null", lower_first(key)),
            )
        })
    };
    let alias = AliasInfo {
        function: name.to_owned(),
        name: required("Name")?,
        version: required("FunctionVersion")?,
        additional: routing(&b)?.flatten(),
        description: text(&b, "Description").unwrap_or_default(),
        revision_id: String::new(),
    };
    let a = platform.create_alias(alias).map_err(version_error)?;
    Ok((StatusCode::CREATED, Json(alias_json(&platform, &a))).into_response())
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

async fn get_alias(
    State(Api { platform, .. }): State<Api>,
    Path((name, alias)): Path<(String, String)>,
) -> Result<Json<Value>, AwsError> {
    let name = unqualified(&platform, &name)?;
    let a = platform.alias(name, &alias).map_err(version_error)?;
    Ok(Json(alias_json(&platform, &a)))
}

async fn update_alias(
    State(Api { platform, .. }): State<Api>,
    Path((name, alias)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<Value>, AwsError> {
    let name = unqualified(&platform, &name)?;
    let b = body(&raw)?;
    let update = AliasUpdate {
        version: text(&b, "FunctionVersion"),
        description: text(&b, "Description"),
        additional: routing(&b)?,
        revision_id: text(&b, "RevisionId"),
    };
    let a = platform
        .update_alias(name, &alias, update)
        .map_err(version_error)?;
    Ok(Json(alias_json(&platform, &a)))
}

async fn delete_alias(
    State(Api { platform, .. }): State<Api>,
    Path((name, alias)): Path<(String, String)>,
) -> Result<StatusCode, AwsError> {
    let name = unqualified(&platform, &name)?;
    platform.delete_alias(name, &alias).map_err(version_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_aliases(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    Query(p): Query<Page>,
) -> Result<Json<Value>, AwsError> {
    let name = unqualified(&platform, &name)?;
    let aliases: Vec<Value> = platform
        .aliases(name)
        .map_err(version_error)?
        .iter()
        .filter(|a| {
            p.function_version.as_deref().is_none_or(|v| {
                a.version == v || a.additional.as_ref().is_some_and(|(o, _)| o == v)
            })
        })
        .map(|a| alias_json(&platform, a))
        .collect();
    let (aliases, next) = page(aliases, &p)?;
    let mut out = json!({ "Aliases": aliases });
    if let Some(next) = next {
        out["NextMarker"] = json!(next);
    }
    Ok(Json(out))
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(
        StatusCode::BAD_REQUEST,
        "InvalidParameterValueException",
        message,
    )
}

async fn update_function_configuration(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>, AwsError> {
    let name = unqualified(&platform, &name)?;
    let b = body(&raw)?;
    let memory = match b.get("MemorySize") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(m @ 128..=10240) => Some(m as u32),
            _ => return Err(AwsError::new(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                format!("1 validation error detected: Value '{v}' at 'memorySize' failed to satisfy constraint: Member must have value less than or equal to 10240, Member must have value greater than or equal to 128"),
            )),
        },
    };
    let timeout = match b.get("Timeout") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(t @ 1..=900) => Some(t),
            _ => return Err(AwsError::new(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                format!("1 validation error detected: Value '{v}' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1"),
            )),
        },
    };
    let environment = match b.get("Environment") {
        None => None,
        Some(e) => {
            let mut vars = std::collections::BTreeMap::new();
            if let Some(map) = e.get("Variables").and_then(Value::as_object) {
                for (k, v) in map {
                    let Some(v) = v.as_str() else {
                        return Err(invalid(format!(
                            "Environment variable {k} must be a string"
                        )));
                    };
                    let valid = k.len() >= 2
                        && k.starts_with(|c: char| c.is_ascii_alphabetic())
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid {
                        return Err(AwsError::new(
                            StatusCode::BAD_REQUEST,
                            "ValidationException",
                            format!("1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+] (the key {k:?})"),
                        ));
                    }
                    if nimbus_lambda::RESERVED_ENV.contains(&k.as_str()) {
                        return Err(invalid(format!(
                            "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {k}"
                        )));
                    }
                    vars.insert(k.clone(), v.to_owned());
                }
            }
            Some(vars)
        }
    };
    let current = platform
        .function(name)
        .ok_or_else(|| not_found(&platform, name, None))?;
    if let Some(runtime) = text(&b, "Runtime").filter(|r| *r != current.runtime) {
        return Err(invalid(format!(
            "nimbus runs {name} as {} from its template: change Runtime there (asked for {runtime})",
            current.runtime
        )));
    }
    let f = platform
        .update_configuration(name, text(&b, "RevisionId").as_deref(), |spec| {
            if let Some(m) = memory {
                spec.memory_mb = m;
            }
            if let Some(t) = timeout {
                spec.timeout = std::time::Duration::from_secs(t);
            }
            if let Some(vars) = environment {
                spec.environment = vars;
            }
            if let Some(d) = text(&b, "Description") {
                spec.description = d;
            }
            if let Some(h) = text(&b, "Handler") {
                spec.handler = Some(h);
            }
        })
        .map_err(version_error)?;
    Ok(Json(configuration(&platform, &f, None, false)))
}

async fn update_function_code(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>, AwsError> {
    let name = unqualified(&platform, &name)?;
    let b = body(&raw)?;
    let Some(zip) = text(&b, "ZipFile") else {
        return Err(invalid(
            "nimbus takes new code as ZipFile (S3Bucket/S3Key and ImageUri are not served); or run `nimbus up --watch` and edit the function's folder",
        ));
    };
    let zip = base64::engine::general_purpose::STANDARD
        .decode(zip)
        .map_err(|_| invalid("ZipFile is not valid base64"))?;
    if zip.len() > MAX_ZIP {
        return Err(AwsError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!(
                "Request must be smaller than {MAX_ZIP} bytes for the UpdateFunctionCode operation"
            ),
        ));
    }
    let f = platform
        .update_code(name, Bytes::from(zip), text(&b, "RevisionId"))
        .await
        .map_err(version_error)?;
    if b.get("Publish").and_then(Value::as_bool) == Some(true) {
        let v = platform
            .publish_version(name, None, None, None)
            .await
            .map_err(version_error)?;
        return Ok(Json(configuration(
            &platform,
            &v.spec,
            Some(&v.code_sha256),
            false,
        )));
    }
    let sha = platform.code_sha256(f.clone()).await;
    Ok(Json(configuration(&platform, &f, sha.as_deref(), false)))
}

/// Lambda's limit on a directly uploaded deployment package.
const MAX_ZIP: usize = 50 * 1024 * 1024;

async fn delete_function(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
) -> Result<StatusCode, AwsError> {
    let (name, qualifier) = target(&platform, &name, query.qualifier.as_deref())?;
    match qualifier.map(|q| (q, version_number(q))) {
        Some((_, Some(n))) => match platform.delete_version(name, n).map_err(version_error)? {
            true => Ok(StatusCode::NO_CONTENT),
            false => Err(not_found(&platform, name, qualifier)),
        },
        Some((q, None)) if q != "$LATEST" => Err(invalid(
            "Deletion of aliases is not supported by DeleteFunction: use DeleteAlias",
        )),
        _ => Err(invalid(format!(
            "nimbus serves {name} from the template: remove it there (DeleteFunction deletes published versions: pass Qualifier)"
        ))),
    }
}

async fn put_concurrency(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>, AwsError> {
    let name = unqualified(&platform, &name)?;
    let b = body(&raw)?;
    let Some(reserved) = b
        .get("ReservedConcurrentExecutions")
        .and_then(Value::as_u64)
    else {
        return Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null",
        ));
    };
    let reserved = u32::try_from(reserved)
        .map_err(|_| invalid("ReservedConcurrentExecutions is too large"))?;
    platform
        .set_reserved_concurrency(name, Some(reserved))
        .map_err(version_error)?;
    Ok(Json(json!({ "ReservedConcurrentExecutions": reserved })))
}

async fn delete_concurrency(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
) -> Result<StatusCode, AwsError> {
    let name = unqualified(&platform, &name)?;
    platform
        .set_reserved_concurrency(name, None)
        .map_err(version_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_concurrency(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
) -> Result<Json<Value>, AwsError> {
    let name = unqualified(&platform, &name)?;
    let f = platform
        .function(name)
        .ok_or_else(|| not_found(&platform, name, None))?;
    Ok(Json(match f.reserved_concurrency {
        Some(r) => json!({ "ReservedConcurrentExecutions": r }),
        None => json!({}),
    }))
}

/// The `Qualifier` that provisioned concurrency needs.
fn provisioned_qualifier(q: &QualifierQuery) -> Result<&str, AwsError> {
    q.qualifier.as_deref().ok_or_else(|| {
        AwsError::new(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "1 validation error detected: Value null at 'qualifier' failed to satisfy constraint: Member must not be null",
        )
    })
}

fn provisioned_json(platform: &Platform, name: &str, qualifier: &str) -> Result<Value, AwsError> {
    let (requested, ready, modified) = platform.provisioned(name, qualifier).ok_or_else(|| {
        AwsError::new(
            StatusCode::NOT_FOUND,
            "ProvisionedConcurrencyConfigNotFoundException",
            "No Provisioned Concurrency Config found for this function",
        )
    })?;
    Ok(json!({
        "RequestedProvisionedConcurrentExecutions": requested,
        "AvailableProvisionedConcurrentExecutions": ready,
        "AllocatedProvisionedConcurrentExecutions": ready,
        "Status": if ready >= requested { "READY" } else { "IN_PROGRESS" },
        "LastModified": last_modified(modified),
    }))
}

async fn put_provisioned(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
    raw: Bytes,
) -> Result<Response, AwsError> {
    let name = unqualified(&platform, &name)?;
    let qualifier = provisioned_qualifier(&query)?;
    let b = body(&raw)?;
    let count = b
        .get("ProvisionedConcurrentExecutions")
        .and_then(Value::as_u64)
        .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
        .ok_or_else(|| {
            AwsError::new(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "1 validation error detected: Value at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 1",
            )
        })?;
    platform
        .put_provisioned(name, qualifier, Some(count as u32))
        .map_err(version_error)?;
    let out = provisioned_json(&platform, name, qualifier)?;
    Ok((StatusCode::ACCEPTED, Json(out)).into_response())
}

async fn get_provisioned(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
) -> Result<Json<Value>, AwsError> {
    let name = unqualified(&platform, &name)?;
    let qualifier = provisioned_qualifier(&query)?;
    Ok(Json(provisioned_json(&platform, name, qualifier)?))
}

async fn delete_provisioned(
    State(Api { platform, .. }): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
) -> Result<StatusCode, AwsError> {
    let name = unqualified(&platform, &name)?;
    let qualifier = provisioned_qualifier(&query)?;
    provisioned_json(&platform, name, qualifier)?;
    platform
        .put_provisioned(name, qualifier, None)
        .map_err(version_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The function or `function:qualifier` an event invoke configuration belongs to.
fn invoke_config_target(
    platform: &Platform,
    raw: &str,
    q: &QualifierQuery,
) -> Result<String, AwsError> {
    let (name, qualifier) = target(platform, raw, q.qualifier.as_deref())?;
    match qualifier {
        None | Some("$LATEST") => Ok(name.to_owned()),
        Some(q) if platform.exists(&format!("{name}:{q}")) => Ok(format!("{name}:{q}")),
        Some(q) => Err(not_found(platform, name, Some(q))),
    }
}

/// `name:$LATEST` for an unqualified name, as event invoke configurations name their function.
fn with_qualifier(target: &str) -> String {
    match target.contains(':') {
        true => target.to_owned(),
        false => format!("{target}:$LATEST"),
    }
}

fn invoke_config_json(
    platform: &Platform,
    target: &str,
    c: &nimbus_events::AsyncConfig,
    set_ms: u64,
) -> Value {
    let cfg = platform.config();
    let qualified = with_qualifier(target);
    let dest = |d: &Option<nimbus_events::Dest>| match d {
        Some(d) => json!({ "Destination": d.arn(&cfg.region, &cfg.account_id) }),
        None => json!({}),
    };
    json!({
        "LastModified": set_ms as f64 / 1000.0,
        "FunctionArn": function_arn(&cfg.region, &cfg.account_id, &qualified),
        "MaximumRetryAttempts": c.policy.maximum_retry_attempts,
        "MaximumEventAgeInSeconds": c.policy.maximum_event_age_s,
        "DestinationConfig": { "OnSuccess": dest(&c.on_success), "OnFailure": dest(&c.on_failure) },
    })
}

/// `PutFunctionEventInvokeConfig` (a fresh configuration) or `Update...` (over the current one).
fn read_invoke_config(
    b: &Value,
    mut c: nimbus_events::AsyncConfig,
) -> Result<nimbus_events::AsyncConfig, AwsError> {
    let range = |key: &str, lo: u64, hi: u64| -> Result<Option<u32>, AwsError> {
        match b.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64().filter(|n| (lo..=hi).contains(n)) {
                Some(n) => Ok(Some(n as u32)),
                None => Err(AwsError::new(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    format!("1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must have value between {lo} and {hi}", lower_first(key)),
                )),
            },
        }
    };
    if let Some(n) = range("MaximumRetryAttempts", 0, 2)? {
        c.policy.maximum_retry_attempts = n;
    }
    if let Some(n) = range("MaximumEventAgeInSeconds", 60, 21_600)? {
        c.policy.maximum_event_age_s = n;
    }
    let dc = &b["DestinationConfig"];
    for (key, slot) in [
        ("OnSuccess", &mut c.on_success),
        ("OnFailure", &mut c.on_failure),
    ] {
        match dc[key]["Destination"].as_str() {
            None if dc.get(key).is_some() => *slot = None,
            None => {}
            Some(arn) => match nimbus_events::dest_from_arn(arn) {
                Some(d) => *slot = Some(d),
                None => {
                    return Err(invalid(format!(
                        "The destination ARN {arn} is invalid: use an SQS queue, SNS topic, Lambda function or EventBridge event bus ARN"
                    )))
                }
            },
        }
    }
    Ok(c)
}

async fn put_invoke_config(
    State(Api { platform, events }): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
    raw: Bytes,
) -> Result<Json<Value>, AwsError> {
    let target = invoke_config_target(&platform, &name, &query)?;
    let c = read_invoke_config(&body(&raw)?, nimbus_events::AsyncConfig::default())?;
    events.set_event_invoke_config(&target, Some(c));
    get_invoke_config_of(&platform, &events, &target)
}

async fn update_invoke_config(
    State(Api { platform, events }): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
    raw: Bytes,
) -> Result<Json<Value>, AwsError> {
    let target = invoke_config_target(&platform, &name, &query)?;
    let current = events
        .event_invoke_config(&target)
        .map(|(c, _)| c)
        .unwrap_or_default();
    let c = read_invoke_config(&body(&raw)?, current)?;
    events.set_event_invoke_config(&target, Some(c));
    get_invoke_config_of(&platform, &events, &target)
}

fn get_invoke_config_of(
    platform: &Platform,
    events: &Hub,
    target: &str,
) -> Result<Json<Value>, AwsError> {
    let (c, set_ms) = events.event_invoke_config(target).ok_or_else(|| {
        let cfg = platform.config();
        let qualified = with_qualifier(target);
        AwsError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!(
                "The function {} doesn't have an EventInvokeConfig",
                function_arn(&cfg.region, &cfg.account_id, &qualified)
            ),
        )
    })?;
    Ok(Json(invoke_config_json(platform, target, &c, set_ms)))
}

async fn get_invoke_config(
    State(Api { platform, events }): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
) -> Result<Json<Value>, AwsError> {
    let target = invoke_config_target(&platform, &name, &query)?;
    get_invoke_config_of(&platform, &events, &target)
}

async fn delete_invoke_config(
    State(Api { platform, events }): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
) -> Result<StatusCode, AwsError> {
    let target = invoke_config_target(&platform, &name, &query)?;
    // Deleting what is not there is Get's ResourceNotFoundException.
    let _exists = get_invoke_config_of(&platform, &events, &target)?;
    events.set_event_invoke_config(&target, None);
    Ok(StatusCode::NO_CONTENT)
}

async fn list_invoke_configs(
    State(Api { platform, events }): State<Api>,
    Path(name): Path<String>,
    Query(p): Query<Page>,
) -> Result<Json<Value>, AwsError> {
    let name = unqualified(&platform, &name)?;
    let all: Vec<Value> = events
        .event_invoke_configs(name)
        .iter()
        .map(|(t, c, ms)| invoke_config_json(&platform, t, c, *ms))
        .collect();
    let (configs, next) = page(all, &p)?;
    let mut out = json!({ "FunctionEventInvokeConfigs": configs });
    if let Some(next) = next {
        out["NextMarker"] = json!(next);
    }
    Ok(Json(out))
}
