//! The HTTP side: one listener per API, each request routed, admitted, turned into a proxy
//! event, invoked, and mapped back, with API Gateway's error responses and an access-log line.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use governor::clock::DefaultClock;
use nimbus_core::route::RouteTable;
use nimbus_core::trace::TraceHeader;
use nimbus_lambda::{InvokeError, InvokeRequest, LogSink, Platform};
use nimbus_telemetry::traces::SpanKind;
use serde_json::json;
use std::collections::BTreeMap;

use crate::admission::{Admission, Bucket, Verdict};
use crate::authorize::{AnswerCache, JwksStore};
use crate::cache::{self, ResponseCache};
use crate::config::{ApiConfig, RouteConfig, Throttle};
use crate::cors::{self, CorsConfig};
use crate::{
    event, response, ApiKind, GatewayRequest, GatewayResponse, MatchedRoute, PayloadVersion,
    RequestContext,
};
use nimbus_telemetry::{RouteLabels, RouteStatusLabels};

/// Largest request body API Gateway accepts: 10 MB.
pub const MAX_BODY: usize = 10 * 1024 * 1024;
/// A client that stops sending its body is not waited on for ever.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Everything one API needs to answer requests.
pub struct ApiState {
    pub config: ApiConfig,
    table: RouteTable<usize>,
    admission: Admission<DefaultClock>,
    cors: Option<CorsConfig>,
    /// The stage's response cache, when any route caches.
    cache: Option<Mutex<ResponseCache>>,
    pub(crate) platform: Platform,
    logs: Arc<LogSink>,
    pub(crate) jwks: Arc<JwksStore>,
    pub(crate) answers: AnswerCache,
    /// `api:<logical id>`, the service its spans name.
    service: Arc<str>,
    /// Each route's compiled body schema (REST request validators), by route index.
    body_schemas: Vec<Option<jsonschema::Validator>>,
    /// nimbus's services, for first-class AWS service integrations.
    services: Option<Arc<dyn crate::service::Services>>,
}

/// Bytes a stage's response cache may hold (API Gateway's smallest cache is 0.5 GB; a local
/// run needs far less).
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Settings shared by every API.
#[derive(Debug, Clone, Copy)]
pub struct AccountLimits {
    /// The account-wide throttle (AWS: 10,000 requests per second, burst 5,000).
    pub throttle: Throttle,
}

impl Default for AccountLimits {
    fn default() -> Self {
        Self {
            throttle: Throttle {
                rate: 10_000.0,
                burst: 5_000,
            },
        }
    }
}

/// Where JWT authorizers' keys come from: `--jwks ISSUER=FILE`, else the issuer itself.
pub type JwksFiles = std::collections::HashMap<String, std::path::PathBuf>;

/// Builds the state of every API; fails on routes that clash or cannot be parsed.
pub fn build(
    apis: Vec<ApiConfig>,
    platform: &Platform,
    logs: &Arc<LogSink>,
    limits: AccountLimits,
    jwks_files: JwksFiles,
    services: Option<Arc<dyn crate::service::Services>>,
) -> Result<Vec<Arc<ApiState>>, String> {
    let clock = DefaultClock::default();
    let jwks = Arc::new(JwksStore::new(jwks_files));
    let account = Arc::new(Bucket::new(limits.throttle, &clock));
    apis.into_iter()
        .map(|config| {
            let mut table = RouteTable::new();
            for (i, r) in config.routes.iter().enumerate() {
                let inserted = if r.path == "$default" {
                    table.insert_default(i)
                } else {
                    table.insert(&r.method, &r.path, i)
                };
                inserted.map_err(|e| format!("{}: {e}", r.source))?;
            }
            let cors = match (&config.cors, config.kind) {
                (None, _) => Ok(None),
                (Some(v), ApiKind::Rest) => cors::from_sam_rest(v),
                (Some(v), ApiKind::Http) => cors::from_sam_http(v),
            }
            .map_err(|e| format!("Resources.{}.Properties: {e}", config.logical_id))?;
            let cache = config
                .routes
                .iter()
                .any(|r| r.cache_ttl > 0)
                .then(|| Mutex::new(ResponseCache::new(CACHE_BYTES)));
            // API Gateway's models are JSON Schema draft 4.
            let body_schemas = config
                .routes
                .iter()
                .map(|r| {
                    let schema = r.validation.as_ref()?.body_schema.as_ref()?;
                    Some(jsonschema::draft4::new(schema).map_err(|e| {
                        format!(
                            "{}: the request body's schema is not valid JSON Schema draft 4: {e}",
                            r.source
                        )
                    }))
                })
                .map(Option::transpose)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(ApiState {
                body_schemas,
                services: services.clone(),
                service: format!("api:{}", config.logical_id).into(),
                admission: Admission::new(&config, account.clone(), &clock),
                cors,
                cache,
                config,
                table,
                platform: platform.clone(),
                logs: logs.clone(),
                jwks: jwks.clone(),
                answers: AnswerCache::default(),
            }))
        })
        .collect()
}

/// The router of one API: every path and method goes through [`handle`].
pub fn router(api: Arc<ApiState>) -> Router {
    Router::new().fallback(handle).with_state(api)
}

use nimbus_lambda::epoch_ms;

/// `HTTP_PROXY`: the request, with its method, headers, query and body, to the integration's
/// URL (each `{name}` filled from the path parameter its `RequestParameters` map, else the one of
/// that name), and the backend's answer back as it is.
async fn http_proxy(
    url: &str,
    rest: &crate::integration::RestIntegration,
    route: &RouteConfig,
    cx: &crate::service::Context<'_>,
    matched: &MatchedRoute,
    access: &mut Access,
) -> Response {
    let request = cx.request;
    // HTTP APIs' parameter mapping: `append|overwrite|remove:header.x`,
    // `append|overwrite|remove:querystring.x`, `overwrite:path`.
    let mut headers: Vec<(String, String)> = request.headers.clone();
    let mut query: Vec<(String, String)> = request
        .raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let mut path_override = None;
    for (key, value) in &rest.request_parameters {
        let Some((action, place)) = key.split_once(':') else {
            continue;
        };
        let value = crate::service::select(value, cx);
        match (action, place.split_once('.')) {
            ("overwrite", None) if place == "path" => path_override = Some(value),
            (action, Some(("header", name))) => {
                if action != "append" {
                    headers.retain(|(h, _)| !h.eq_ignore_ascii_case(name));
                }
                if action != "remove" {
                    headers.push((name.to_ascii_lowercase(), value));
                }
            }
            (action, Some(("querystring", name))) => {
                if action != "append" {
                    query.retain(|(q, _)| q != name);
                }
                if action != "remove" {
                    let encoded: String =
                        form_urlencoded::byte_serialize(value.as_bytes()).collect();
                    query.push((name.to_owned(), encoded));
                }
            }
            _ => {}
        }
    }
    let mut target = url.to_owned();
    if let Some(path) = path_override {
        // The integration URI keeps its scheme and host; the path is replaced.
        let after_scheme = target.find("://").map_or(0, |i| i + 3);
        let host_end = target[after_scheme..]
            .find('/')
            .map_or(target.len(), |i| after_scheme + i);
        target = format!("{}{}", &target[..host_end], path);
    }
    for (name, value) in &matched.path_parameters {
        let mapped = rest
            .request_parameters
            .iter()
            .find(|(_, v)| v.as_str() == format!("method.request.path.{name}"))
            .and_then(|(k, _)| k.strip_prefix("integration.request.path."))
            .unwrap_or(name);
        target = target.replace(&format!("{{{mapped}}}"), value);
        target = target.replace(&format!("{{{mapped}+}}"), value);
    }
    if !query.is_empty() {
        target.push(if target.contains('?') { '&' } else { '?' });
        let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        target.push_str(&pairs.join("&"));
    }
    let started = Instant::now();
    let answer = crate::outbound::send(
        &request.method,
        &target,
        &headers,
        request.body.clone(),
        route.timeout,
    )
    .await;
    access.integration_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    let answer = match answer {
        Ok(a) => a,
        Err(f) => {
            access.error = Some(format!("HTTP_PROXY to {}", f.why));
            return gateway_error(
                ApiKind::Rest,
                f.status,
                ("InternalServerErrorException", "Internal server error"),
                "Internal Server Error",
            );
        }
    };
    let mut out = Response::new(axum::body::Body::from(answer.body));
    *out.status_mut() = answer.status;
    *out.headers_mut() = answer.headers;
    out
}

/// What a path parameter keeps unencoded in a URI path segment (RFC 3986's unreserved).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What a REST mapping template sees as `$input`, `$context` and `$stageVariables`.
struct MappingHost<'a> {
    body: String,
    request: &'a GatewayRequest,
    matched: &'a MatchedRoute,
    ctx: &'a RequestContext,
}

impl MappingHost<'_> {
    /// The value of a REST `RequestParameters` source: `'literal'`,
    /// `method.request.{header,querystring,path}.NAME`, `method.request.body` (or a JSON
    /// path into it, `method.request.body.a.b`), `context.NAME`, `stageVariables.NAME`.
    fn parameter(&self, source: &str) -> Option<String> {
        if let Some(literal) = source.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            return Some(literal.to_owned());
        }
        let r = self.request;
        if let Some(rest) = source.strip_prefix("method.request.") {
            let (place, name) = rest.split_once('.').unwrap_or((rest, ""));
            return match place {
                "header" => r
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone()),
                "multivalueheader" => {
                    let values: Vec<&str> = r
                        .headers
                        .iter()
                        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.as_str())
                        .collect();
                    (!values.is_empty()).then(|| values.join(","))
                }
                "querystring" | "multivaluequerystring" => {
                    let values: Vec<String> = crate::event::query_pairs(&r.raw_query)
                        .into_iter()
                        .filter(|(k, _)| k == name)
                        .map(|(_, v)| v)
                        .collect();
                    match place {
                        "querystring" => values.into_iter().last(),
                        _ => (!values.is_empty()).then(|| values.join(",")),
                    }
                }
                "path" => self.matched.path_parameters.get(name).cloned(),
                "body" if name.is_empty() => Some(self.body.clone()),
                "body" => {
                    let body: serde_json::Value = serde_json::from_str(&self.body).ok()?;
                    let pointer = format!("/{}", name.trim_start_matches("$.").replace('.', "/"));
                    match body.pointer(&pointer)? {
                        serde_json::Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    }
                }
                _ => None,
            };
        }
        let (root, path) = source.split_once('.')?;
        let mut v = nimbus_core::vtl::Host::variable(self, root)?;
        for part in path.split('.') {
            v = v.get(part)?.clone();
        }
        match v {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// The `AWS` integration's request: `integration.request.{header,querystring,path}.*`
    /// evaluated, the path parameters filled into the URI's `{name}`s.
    fn aws_request(
        &self,
        rest: &crate::integration::RestIntegration,
        service: &str,
        target: &str,
        body: Vec<u8>,
    ) -> crate::service::AwsRequest {
        let mut call = crate::service::AwsRequest {
            service: service.to_owned(),
            method: rest.http_method.clone(),
            target: target.to_owned(),
            body,
            ..Default::default()
        };
        let mut path = BTreeMap::new();
        for (key, source) in &rest.request_parameters {
            let Some(dest) = key.strip_prefix("integration.request.") else {
                continue;
            };
            let Some((place, name)) = dest.split_once('.') else {
                continue;
            };
            let value = self.parameter(source).unwrap_or_default();
            match place {
                "header" => {
                    call.headers.insert(name.to_ascii_lowercase(), value);
                }
                "querystring" | "multivaluequerystring" => {
                    call.query.push((name.to_owned(), value))
                }
                "path" => {
                    path.insert(name.to_owned(), value);
                }
                _ => {}
            }
        }
        // A `{name}` the parameters do not map takes the method's path parameter of that name.
        for (name, value) in path.iter().chain(&self.matched.path_parameters) {
            let encoded = percent_encoding::utf8_percent_encode(value, PATH_SEGMENT).to_string();
            // A greedy `{name+}` keeps its slashes; each segment between them is encoded.
            let greedy: Vec<String> = value
                .split('/')
                .map(|s| percent_encoding::utf8_percent_encode(s, PATH_SEGMENT).to_string())
                .collect();
            call.target = call
                .target
                .replace(&format!("{{{name}}}"), &encoded)
                .replace(&format!("{{{name}+}}"), &greedy.join("/"));
        }
        call
    }
}

impl nimbus_core::vtl::Host for MappingHost<'_> {
    fn body(&self) -> &str {
        &self.body
    }

    fn params(&self) -> serde_json::Value {
        let query: serde_json::Map<String, serde_json::Value> =
            crate::event::query_pairs(&self.request.raw_query)
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect();
        let mut header = serde_json::Map::new();
        for (k, v) in &self.request.headers {
            header.insert(k.clone(), v.clone().into());
        }
        json!({"path": self.matched.path_parameters, "querystring": query, "header": header})
    }

    fn variable(&self, name: &str) -> Option<serde_json::Value> {
        let r = self.request;
        match name {
            "context" => Some(json!({
                "requestId": self.ctx.request_id,
                "extendedRequestId": self.ctx.request_id,
                "accountId": self.ctx.account_id,
                "apiId": self.ctx.api_id,
                "stage": self.ctx.stage,
                "httpMethod": r.method,
                "resourcePath": self.matched.resource_path,
                "path": format!("/{}{}", self.ctx.stage, r.raw_path),
                "domainName": self.ctx.domain_name,
                "requestTimeEpoch": self.ctx.request_time_epoch_ms,
                "identity": {
                    "sourceIp": r.source_ip,
                    "userAgent": r.headers.iter().find(|(k, _)| k == "user-agent").map(|(_, v)| v.clone()),
                    "apiKey": self.ctx.api_key,
                    "apiKeyId": self.ctx.api_key_id,
                },
                "authorizer": self.ctx.authorizer,
            })),
            "stageVariables" => Some(json!(self.ctx.stage_variables)),
            _ => None,
        }
    }
}

/// A REST API's MOCK or AWS integration: the request template, the call, the integration
/// response chosen by its status, the response template and parameters.
async fn run_rest(
    api: &ApiState,
    rest: &crate::integration::RestIntegration,
    request: &GatewayRequest,
    matched: &MatchedRoute,
    ctx: &RequestContext,
    route_timeout: Duration,
    access: &mut Access,
) -> Response {
    let internal = |access: &mut Access, why: String| {
        access.error = Some(why);
        gateway_error(
            ApiKind::Rest,
            StatusCode::INTERNAL_SERVER_ERROR,
            ("InternalServerErrorException", "Internal server error"),
            "",
        )
    };
    // API Gateway's answer when the integration outlasts its timeout (29 s unless set).
    let timed_out = |access: &mut Access, what: String| {
        access.error = Some(format!(
            "{what}: timed out after {} ms",
            route_timeout.as_millis()
        ));
        gateway_error(
            ApiKind::Rest,
            StatusCode::GATEWAY_TIMEOUT,
            ("InternalServerErrorException", "Endpoint request timed out"),
            "",
        )
    };
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let content_type = header("content-type");
    let binary_types = &api.config.binary_media_types;
    let payload = match crate::integration::convert_request(
        &request.body,
        crate::event::matches_media_type(content_type, binary_types),
        rest.content_handling.as_deref(),
    ) {
        Ok(p) => p,
        Err(why) => return internal(access, why),
    };
    let mut host = MappingHost {
        body: String::from_utf8_lossy(&payload).into_owned(),
        request,
        matched,
        ctx,
    };
    let body: Vec<u8> = match rest.request_body(content_type) {
        crate::integration::RequestBody::Unsupported => {
            access.error = Some("no request template for the content type".into());
            return gateway_error(
                ApiKind::Rest,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ("UnsupportedMediaTypeException", "Unsupported Media Type"),
                "",
            );
        }
        crate::integration::RequestBody::Passthrough => payload,
        crate::integration::RequestBody::Template(t) => match t.render(&host) {
            Ok(b) => b.into_bytes(),
            Err(e) => return internal(access, format!("request template: {e}")),
        },
    };
    let started = Instant::now();
    // The integration's status (or, for Lambda, its error message), answer and headers.
    let (status, integration_body, headers): (String, Vec<u8>, BTreeMap<String, String>) =
        match &rest.backend {
            crate::integration::Backend::Mock => {
                // A MOCK integration answers with the statusCode its request template wrote.
                let status = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["statusCode"].as_u64())
                    .unwrap_or(200) as u16;
                (status.to_string(), Vec::new(), BTreeMap::new())
            }
            // Answered by `http_proxy` before templates are involved.
            crate::integration::Backend::HttpProxy { url } => {
                return internal(
                    access,
                    format!("HTTP_PROXY to {url} reached the template path"),
                );
            }
            crate::integration::Backend::Lambda { function } => {
                let invoke = InvokeRequest {
                    payload: body.into(),
                    ..InvokeRequest::default()
                };
                let invoked =
                    tokio::time::timeout(route_timeout, api.platform.invoke(function, invoke))
                        .await;
                let Ok(invoked) = invoked else {
                    return timed_out(access, format!("invoking {function}"));
                };
                match invoked {
                    // A function error selects by its errorMessage; a success by "" (the
                    // default).
                    Ok(out) => {
                        let selector = match out.function_error {
                            Some(_) => serde_json::from_slice::<serde_json::Value>(&out.payload)
                                .ok()
                                .and_then(|v| v["errorMessage"].as_str().map(str::to_owned))
                                .unwrap_or_default(),
                            None => String::new(),
                        };
                        (selector, out.payload.to_vec(), BTreeMap::new())
                    }
                    Err(e) => return internal(access, format!("invoking {function}: {e}")),
                }
            }
            crate::integration::Backend::Http { url } => {
                let call = host.aws_request(rest, "http", url, body);
                let target = crate::outbound::with_query(call.target, &call.query);
                let mut headers: Vec<(String, String)> = call.headers.into_iter().collect();
                if !headers.iter().any(|(k, _)| k == "content-type") {
                    headers.push(("content-type".into(), content_type.to_owned()));
                }
                let answer = crate::outbound::send(
                    &rest.http_method,
                    &target,
                    &headers,
                    call.body.into(),
                    route_timeout,
                )
                .await;
                match answer {
                    Ok(a) => {
                        let headers = crate::outbound::header_pairs(&a.headers)
                            .into_iter()
                            .collect();
                        (a.status.as_u16().to_string(), a.body.to_vec(), headers)
                    }
                    Err(f) if f.status == StatusCode::GATEWAY_TIMEOUT => {
                        return timed_out(access, format!("HTTP integration to {}", f.why));
                    }
                    Err(f) => return internal(access, format!("HTTP integration to {}", f.why)),
                }
            }
            crate::integration::Backend::Aws { service, target } => {
                let call = host.aws_request(rest, service, target, body);
                let answer = match &api.services {
                    Some(s) => match tokio::time::timeout(route_timeout, s.aws(call)).await {
                        Ok(a) => a,
                        Err(_) => return timed_out(access, format!("{service} integration")),
                    },
                    None => Err("no services are connected to the gateway".into()),
                };
                match answer {
                    Ok(a) => (
                        a.status.to_string(),
                        a.body,
                        a.headers
                            .into_iter()
                            .map(|(k, v)| (k.to_ascii_lowercase(), v))
                            .collect(),
                    ),
                    Err(e) => return internal(access, format!("{service} integration: {e}")),
                }
            }
        };
    access.integration_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    let Some(chosen) = rest.response_for(&status) else {
        return internal(
            access,
            format!("no integration response matches status {status} and there is no default"),
        );
    };
    let template = chosen
        .templates
        .get("application/json")
        .or_else(|| chosen.templates.values().next());
    // A template's output is text; an answer passed through is binary when its content type
    // is one of the API's binary media types.
    let (payload, integration_binary) = match template {
        Some(t) => {
            host.body = String::from_utf8_lossy(&integration_body).into_owned();
            match t.render(&host) {
                Ok(b) => (b.into_bytes(), false),
                Err(e) => return internal(access, format!("response template: {e}")),
            }
        }
        None => {
            let binary = headers
                .get("content-type")
                .is_some_and(|c| crate::event::matches_media_type(c, binary_types));
            (integration_body, binary)
        }
    };
    let accept = header("accept").split(',').next().unwrap_or_default();
    let payload = crate::integration::convert_response(
        payload,
        integration_binary,
        !accept.is_empty() && crate::event::matches_media_type(accept, binary_types),
        !binary_types.is_empty(),
        chosen.content_handling.as_deref(),
    );
    let mut resp = (
        StatusCode::from_u16(chosen.status).unwrap_or(StatusCode::OK),
        [("content-type", "application/json")],
        payload,
    )
        .into_response();
    let integration_headers: &BTreeMap<String, String> = &headers;
    for (k, v) in &chosen.parameters {
        let Some(name) = k.strip_prefix("method.response.header.") else {
            continue;
        };
        let value = match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            Some(literal) => Some(literal.to_owned()),
            None => v
                .strip_prefix("integration.response.header.")
                .and_then(|h| integration_headers.get(&h.to_ascii_lowercase()).cloned()),
        };
        if let (Some(value), Ok(name)) =
            (value, axum::http::HeaderName::from_bytes(name.as_bytes()))
        {
            if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, value);
            }
        }
    }
    resp
}

/// A REST request validator's checks, with API Gateway's messages: the required parameters
/// first, then the body against its model.
fn validate(
    v: &crate::config::RequestValidation,
    schema: Option<&jsonschema::Validator>,
    request: &GatewayRequest,
    matched: &MatchedRoute,
) -> Result<(), String> {
    let query: Vec<String> = crate::event::query_pairs(&request.raw_query)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let missing: Vec<&str> = v
        .required
        .iter()
        .filter(|(location, name)| match location.as_str() {
            "query" => !query.iter().any(|q| q == name),
            "header" => !request
                .headers
                .iter()
                .any(|(h, _)| h.eq_ignore_ascii_case(name)),
            "path" => !matched.path_parameters.iter().any(|(p, _)| p == name),
            _ => false,
        })
        .map(|(_, name)| name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "Missing required request parameters: [{}]",
            missing.join(", ")
        ));
    }
    if let Some(schema) = schema {
        let valid = serde_json::from_slice::<serde_json::Value>(&request.body)
            .is_ok_and(|body| schema.is_valid(&body));
        if !valid {
            return Err("Invalid request body".into());
        }
    }
    Ok(())
}

/// Why the gateway itself refused a request (not the function's own 403s and 429s).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// API key or authorizer.
    Forbidden,
    /// Throttle or quota.
    Throttled,
}

/// What the access log says about one request.
struct Access {
    refused: Option<Refusal>,
    cache_hit: bool,
    route_key: Option<String>,
    api_key_id: Option<String>,
    integration_ms: Option<f64>,
    error: Option<String>,
}

async fn handle(
    State(api): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<crate::listener::Peer>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let request_time_epoch_ms = epoch_ms();
    let request_id = uuid::Uuid::new_v4().to_string();
    let header = req
        .headers()
        .get("x-amzn-trace-id")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceHeader::parse)
        .unwrap_or_else(|| {
            TraceHeader::new_root(
                request_time_epoch_ms / 1000,
                uuid::Uuid::new_v4().as_bytes()[..12]
                    .try_into()
                    .unwrap_or_default(),
                true,
            )
        });
    let trace = header.to_string();
    let method = req.method().as_str().to_owned();
    let raw_path = req.uri().path().to_owned();
    let traces = &api.platform.telemetry().traces;
    let mut span = traces
        .open_header(
            header,
            SpanKind::Gateway,
            api.service.clone(),
            "",
            nimbus_lambda::epoch_us(),
        )
        .ok();
    // The function sees the gateway's segment as its parent, as on AWS.
    let downstream = span
        .as_ref()
        .map(|s| s.header())
        .unwrap_or_else(|| trace.clone());
    let mut access = Access {
        refused: None,
        cache_hit: false,
        route_key: None,
        api_key_id: None,
        integration_ms: None,
        error: None,
    };
    let ip = peer.addr.ip();
    // What a customised gateway response may read of the request.
    let asked = (!api.config.gateway_responses.is_empty()).then(|| {
        (
            crate::outbound::header_pairs(req.headers()),
            crate::event::query_pairs(req.uri().query().unwrap_or_default()),
        )
    });
    let mut resp = answer(
        &api,
        req,
        peer,
        &request_id,
        &downstream,
        request_time_epoch_ms,
        &mut access,
    )
    .await;
    if let Some((headers, query)) = asked {
        resp = customise(&api.config, resp, &request_id, &headers, &query).await;
    }
    let integration_answer = resp.extensions().get::<GatewayMade>().is_none();
    if let Some(route) = access
        .route_key
        .as_ref()
        .filter(|_| integration_answer)
        .and_then(|k| {
            api.config
                .routes
                .iter()
                .find(|r| !r.response_parameters.is_empty() && &r.key() == k)
        })
    {
        resp = map_response(&api.config, route, resp, &request_id).await;
    }

    record_metrics(&api, &access, resp.status().as_u16(), started.elapsed());
    if let Some(mut s) = span.take() {
        let status = resp.status().as_u16();
        match &access.route_key {
            Some(k) => s.rename(k.as_str()),
            None => s.rename(format!("{method} {raw_path}")),
        }
        s.attr("http.method", method.as_str());
        s.attr("http.target", raw_path.as_str());
        s.attr("http.status_code", status.to_string());
        s.attr("request_id", request_id.clone());
        // X-Ray calls 5xx a fault of the service; 4xx are the caller's and stay plain.
        if status >= 500 {
            s.fail(
                access
                    .error
                    .clone()
                    .unwrap_or_else(|| format!("HTTP {status}")),
            );
        }
        traces.close(s, nimbus_lambda::epoch_us());
    }
    let headers = resp.headers_mut();
    match api.config.kind {
        ApiKind::Rest => {
            put(headers, "x-amzn-requestid", &request_id);
            put(headers, "x-amzn-trace-id", &trace);
        }
        ApiKind::Http => put(headers, "apigw-requestid", &request_id),
    }
    let line = json!({
        "requestId": request_id,
        "ip": ip.to_string(),
        "requestTime": nimbus_core::report::timestamp_millis(request_time_epoch_ms),
        "httpMethod": method,
        "path": raw_path,
        "routeKey": access.route_key,
        "status": resp.status().as_u16(),
        "latencyMs": (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
        "integrationLatencyMs": access.integration_ms.map(|ms| (ms * 100.0).round() / 100.0),
        "apiKeyId": access.api_key_id,
        "cacheHit": access.cache_hit,
        "error": access.error,
        "xrayTraceId": trace,
    });
    api.logs
        .try_access_line(&api.config.logical_id, line.to_string());
    resp
}

/// Counts a request under its route (declared routes only, so labels stay bounded).
fn record_metrics(api: &ApiState, access: &Access, status: u16, latency: std::time::Duration) {
    let m = &api.platform.telemetry().gateway;
    let route = RouteLabels {
        api: api.config.logical_id.clone(),
        route: access
            .route_key
            .clone()
            .unwrap_or_else(|| "(no route)".into()),
    };
    m.requests
        .get_or_create(&RouteStatusLabels {
            api: route.api.clone(),
            route: route.route.clone(),
            status_class: nimbus_telemetry::status_class(status),
        })
        .inc();
    m.latency
        .get_or_create(&route)
        .observe(latency.as_secs_f64());
    if let Some(ms) = access.integration_ms {
        m.integration_latency
            .get_or_create(&route)
            .observe(ms / 1000.0);
    }
    if access.cache_hit {
        m.cache_hits.get_or_create(&route).inc();
    }
    match access.refused {
        Some(Refusal::Throttled) => m.throttled.get_or_create(&route).inc(),
        Some(Refusal::Forbidden) => m.forbidden.get_or_create(&route).inc(),
        None => 0,
    };
}

fn put(headers: &mut axum::http::HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// An HTTP API route's response parameter mapping, for the status its integration answered.
async fn map_response(
    config: &crate::config::ApiConfig,
    route: &RouteConfig,
    resp: Response,
    request_id: &str,
) -> Response {
    let Some(mappings) = route.response_parameters.get(resp.status().as_str()) else {
        return resp;
    };
    let (mut parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, crate::outbound::MAX_ANSWER)
        .await
        .unwrap_or_default();
    let cx = crate::service::ResponseContext {
        request_id,
        stage: &config.stage,
        stage_variables: &config.stage_variables,
    };
    crate::service::map_response(mappings, &mut parts.status, &mut parts.headers, &body, &cx);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// A REST gateway error (one carrying `x-amzn-errortype`) as the API's gateway responses
/// customise it: status, headers and the body its template renders.
async fn customise(
    config: &crate::config::ApiConfig,
    resp: Response,
    request_id: &str,
    headers: &[(String, String)],
    query: &[(String, String)],
) -> Response {
    if resp.extensions().get::<GatewayMade>().is_none() {
        return resp;
    }
    let Some(error_type) = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return resp;
    };
    let status = resp.status().as_u16();
    let (mut parts, body) = resp.into_parts();
    // The gateway's own errors are a line of JSON.
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let message: Option<String> = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let m = if v["message"].is_null() {
                &v["Message"]
            } else {
                &v["message"]
            };
            m.as_str().map(str::to_owned)
        });
    let ty = crate::gateway_responses::response_type(
        &error_type,
        status,
        message.as_deref().unwrap_or(""),
    );
    let Some(custom) = crate::gateway_responses::lookup(&config.gateway_responses, ty, status)
    else {
        return Response::from_parts(parts, axum::body::Body::from(body));
    };
    let request = crate::gateway_responses::Request {
        request_id,
        stage: &config.stage,
        api_id: &config.logical_id,
        headers,
        query,
        stage_variables: &config.stage_variables,
        response_type: ty,
        message: message.as_deref(),
    };
    if let Some(s) = custom.status.and_then(|s| StatusCode::from_u16(s).ok()) {
        parts.status = s;
    }
    for (name, source) in &custom.headers {
        let value = request.parameter(source).unwrap_or_default();
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            parts.headers.insert(n, v);
        }
    }
    let template = custom
        .templates
        .get("application/json")
        .or_else(|| custom.templates.values().next());
    let body = match template.map(|t| t.render(&request)) {
        Some(Ok(rendered)) => axum::body::Bytes::from(rendered),
        // A template that fails at run time leaves API Gateway's default body.
        Some(Err(e)) => {
            tracing::warn!(api = %config.logical_id, error = %e, "gateway response template");
            body
        }
        None => body,
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Marks a response API Gateway made itself (an error, a refusal), not an integration's: only
/// these get gateway responses, and only the others get response parameter mapping.
#[derive(Clone, Copy)]
struct GatewayMade;

fn gateway_made(mut resp: Response) -> Response {
    resp.extensions_mut().insert(GatewayMade);
    resp
}

/// API Gateway's own error responses, as each API flavour words them.
fn gateway_error(
    kind: ApiKind,
    status: StatusCode,
    rest: (&str, &str),
    http_message: &str,
) -> Response {
    let (error_type, rest_message) = rest;
    let message = match kind {
        ApiKind::Rest => rest_message,
        ApiKind::Http => http_message,
    };
    let mut resp = (
        status,
        [("content-type", "application/json")],
        json!({ "message": message }).to_string(),
    )
        .into_response();
    if kind == ApiKind::Rest {
        put(resp.headers_mut(), "x-amzn-errortype", error_type);
    }
    gateway_made(resp)
}

#[allow(clippy::too_many_arguments)]
async fn answer(
    api: &ApiState,
    req: Request,
    peer: crate::listener::Peer,
    request_id: &str,
    trace: &str,
    request_time_epoch_ms: u64,
    access: &mut Access,
) -> Response {
    let kind = api.config.kind;
    let (parts, body) = req.into_parts();
    let body = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await
    {
        Ok(Ok(b)) => b,
        Err(_) => {
            access.error = Some(format!(
                "request body not received within {} s",
                BODY_TIMEOUT.as_secs()
            ));
            return gateway_error(
                kind,
                StatusCode::BAD_REQUEST,
                ("BadRequestException", "Request body not received in time"),
                "Bad Request",
            );
        }
        Ok(Err(_)) => {
            access.error = Some("request body over 10 MB".into());
            return gateway_error(
                kind,
                StatusCode::PAYLOAD_TOO_LARGE,
                ("RequestTooLargeException", "Request Too Long"),
                "Request Entity Too Large",
            );
        }
    };
    let request = GatewayRequest {
        method: parts.method.as_str().to_uppercase(),
        raw_path: parts.uri.path().to_owned(),
        raw_query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        header_names: match api.config.kind {
            ApiKind::Rest => {
                let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                peer.heads
                    .take(parts.method.as_str(), target)
                    .map(|h| h.names)
                    .unwrap_or_default()
            }
            ApiKind::Http => Vec::new(),
        },
        body,
        source_ip: peer.addr.ip().to_string(),
        protocol: format!("{:?}", parts.version),
    };

    // HTTP APIs answer CORS preflights themselves, before any route.
    if let (Some(cors), ApiKind::Http) = (&api.cors, kind) {
        if let Some(r) = cors::preflight(cors, &request) {
            access.route_key = Some("(CORS preflight)".into());
            return to_http(r);
        }
    }

    let mut ctx = RequestContext {
        account_id: api.platform.config().account_id.clone(),
        api_id: api.config.logical_id.to_lowercase(),
        stage: api.config.stage.clone(),
        stage_variables: api.config.stage_variables.clone(),
        request_id: request_id.to_owned(),
        domain_name: parts
            .headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost")
            .to_owned(),
        request_time_epoch_ms,
        api_key: None,
        api_key_id: None,
        authorizer: None,
        binary_media_types: api.config.binary_media_types.clone(),
    };

    // SAM gives every REST path without its own OPTIONS method a CORS mock, which wins over
    // an ANY route on the same path.
    let explicit_options = api
        .table
        .lookup(&request.method, &request.raw_path)
        .is_some_and(|hit| hit.method == "OPTIONS");
    if !explicit_options {
        if let Some((r, matched)) = rest_preflight(api, &request) {
            access.route_key = Some("(CORS preflight)".into());
            return match guard_rest_preflight(api, &request, &matched, &ctx).await {
                Ok(()) => to_http(r),
                Err((resp, why)) => {
                    access.error = Some(format!("CORS preflight: {why}"));
                    resp
                }
            };
        }
    }
    let Some(hit) = api.table.lookup(&request.method, &request.raw_path) else {
        let stage_prefix = format!("/{}/", api.config.stage);
        access.error = Some(if request.raw_path.starts_with(&stage_prefix) {
            format!(
                "no route; nimbus serves paths without the stage prefix {}",
                stage_prefix.trim_end_matches('/')
            )
        } else {
            "no route".into()
        });
        return match kind {
            ApiKind::Rest => gateway_error(
                kind,
                StatusCode::FORBIDDEN,
                (
                    "MissingAuthenticationTokenException",
                    "Missing Authentication Token",
                ),
                "",
            ),
            ApiKind::Http => gateway_error(kind, StatusCode::NOT_FOUND, ("", ""), "Not Found"),
        };
    };
    let route: &RouteConfig = &api.config.routes[*hit.value];
    access.route_key = Some(route.key());
    if let Some(f) = api
        .services
        .as_ref()
        .and_then(|s| s.route_fault(&api.config.logical_id, &route.key()))
    {
        if f.latency_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(f.latency_ms)).await;
        }
        if let Some((status, code)) = f.error {
            access.error = Some(format!("chaos fault: {code}"));
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            // LocalStack's wording for a simulated fault, in each API flavour's error shape.
            let mut resp = gateway_error(
                kind,
                status,
                ("", "Operation failed due to a simulated fault"),
                "Operation failed due to a simulated fault",
            );
            if let Ok(v) = HeaderValue::from_str(&code) {
                resp.headers_mut().insert("x-amzn-errortype", v);
            }
            return resp;
        }
    }
    let matched = MatchedRoute {
        route_key: match kind {
            ApiKind::Rest => route.path.clone(),
            ApiKind::Http => route.key(),
        },
        resource_path: route.path.clone(),
        path_parameters: hit.params.into_iter().collect(),
    };

    let mut usage_key = None;
    if let Some(name) = &route.authorizer {
        match crate::authorize::authorize(api, name, route, &request, &matched, &ctx).await {
            Ok(granted) => {
                ctx.authorizer = Some(granted.context);
                usage_key = granted.usage_key;
            }
            Err((resp, why)) => {
                access.error = Some(format!("authorizer {name}: {why}"));
                access.refused = Some(Refusal::Forbidden);
                return gateway_made(to_http(resp));
            }
        }
    }

    // `ApiKeySourceType: AUTHORIZER` meters the key the authorizer named, not a header.
    let api_key_header = if api.config.api_key_from_authorizer {
        usage_key.as_deref()
    } else {
        parts.headers.get("x-api-key").and_then(|v| v.to_str().ok())
    };
    let api_key = match api
        .admission
        .check(route, api_key_header, time::OffsetDateTime::now_utc())
    {
        Verdict::Allow { api_key } => api_key,
        Verdict::Forbidden => {
            access.error = Some("api key missing or invalid".into());
            access.refused = Some(Refusal::Forbidden);
            return gateway_error(
                kind,
                StatusCode::FORBIDDEN,
                ("ForbiddenException", "Forbidden"),
                "Forbidden",
            );
        }
        Verdict::TooManyRequests => {
            access.error = Some("throttled".into());
            access.refused = Some(Refusal::Throttled);
            return gateway_error(
                kind,
                StatusCode::TOO_MANY_REQUESTS,
                ("TooManyRequestsException", "Too Many Requests"),
                "Too Many Requests",
            );
        }
        Verdict::LimitExceeded => {
            access.error = Some("quota exceeded".into());
            access.refused = Some(Refusal::Throttled);
            return gateway_error(
                kind,
                StatusCode::TOO_MANY_REQUESTS,
                ("LimitExceededException", "Limit Exceeded"),
                "Limit Exceeded",
            );
        }
    };
    access.api_key_id = api_key.as_ref().map(|(_, id)| id.clone());
    ctx.api_key = api_key.as_ref().map(|(v, _)| v.clone());
    ctx.api_key_id = api_key.map(|(_, id)| id);

    if let Some(why) = &route.unserved {
        access.error = Some(why.clone());
        return gateway_error(
            kind,
            StatusCode::INTERNAL_SERVER_ERROR,
            ("InternalServerErrorException", "Internal server error"),
            "Internal Server Error",
        );
    }
    // Request validation comes before any integration, as on API Gateway.
    if let (ApiKind::Rest, Some(validation)) = (kind, &route.validation) {
        let schema = api.body_schemas.get(*hit.value).and_then(Option::as_ref);
        if let Err(message) = validate(validation, schema, &request, &matched) {
            access.error = Some(message.clone());
            return gateway_error(
                kind,
                StatusCode::BAD_REQUEST,
                ("BadRequestException", &message),
                "Bad Request",
            );
        }
    }
    // What HTTP proxies and service integrations map their parameters from.
    let cx = crate::service::Context {
        request: &request,
        path_parameters: &matched.path_parameters,
        request_id: &ctx.request_id,
        stage: &api.config.stage,
        stage_variables: &api.config.stage_variables,
    };
    if let Some(rest) = &route.rest {
        if let crate::integration::Backend::HttpProxy { url } = &rest.backend {
            return http_proxy(url, rest, route, &cx, &matched, access).await;
        }
        return run_rest(api, rest, &request, &matched, &ctx, route.timeout, access).await;
    }
    if let Some(integration) = &route.service {
        let parameters = crate::service::evaluate(&integration.parameters, &cx);
        let started = Instant::now();
        let answer = match &api.services {
            Some(services) => tokio::time::timeout(
                route.timeout,
                services.call(&integration.subtype, parameters),
            )
            .await
            .unwrap_or_else(|_| Err(format!("{} timed out", integration.subtype))),
            None => Err("no services are connected to the gateway".into()),
        };
        access.integration_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        return match answer {
            Ok((status, body)) => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                [("content-type", "application/json")],
                body,
            )
                .into_response(),
            Err(why) => {
                access.error = Some(format!("{}: {why}", integration.subtype));
                gateway_error(
                    kind,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ("InternalServerErrorException", "Internal server error"),
                    "Internal Server Error",
                )
            }
        };
    }

    // The stage cache answers after authorization and throttling, as API Gateway's does.
    let cache_key = (route.cache_ttl > 0)
        .then(|| cache::key(&request.method, &request.raw_path, &request.raw_query));
    // `Cache-Control: max-age=0` skips the lookup; the fresh answer replaces the entry.
    let bypass = cache::cache_control_bypass(&request.headers);
    if let (Some(cache), Some(key), false) = (&api.cache, &cache_key, bypass) {
        let cached = cache.lock().expect("cache poisoned").get(key, epoch_ms());
        if let Some(r) = cached {
            access.cache_hit = true;
            return to_http(r);
        }
    }

    let event = match (kind, route.payload) {
        (ApiKind::Rest, _) => event::rest_v1(&request, &matched, &ctx),
        (ApiKind::Http, PayloadVersion::V1) => event::http_v1(&request, &matched, &ctx),
        (ApiKind::Http, PayloadVersion::V2) => event::http_v2(&request, &matched, &ctx),
    };
    let invoke = InvokeRequest {
        payload: serde_json::to_vec(&event).unwrap_or_default().into(),
        trace_header: Some(trace.to_owned()),
        ..InvokeRequest::default()
    };
    let integration_started = Instant::now();
    let outcome =
        tokio::time::timeout(route.timeout, api.platform.invoke(&route.function, invoke)).await;
    access.integration_ms = Some(integration_started.elapsed().as_secs_f64() * 1000.0);
    // A failed or malformed integration: REST answers 502, HTTP APIs 500.
    let internal = |access: &mut Access, why: String| {
        access.error = Some(why);
        let status = match kind {
            ApiKind::Rest => StatusCode::BAD_GATEWAY,
            ApiKind::Http => StatusCode::INTERNAL_SERVER_ERROR,
        };
        gateway_error(
            kind,
            status,
            ("InternalServerErrorException", "Internal server error"),
            "Internal Server Error",
        )
    };
    let out = match outcome {
        Err(_) => {
            access.error = Some(format!(
                "integration timed out after {} ms",
                route.timeout.as_millis()
            ));
            return gateway_error(
                kind,
                StatusCode::GATEWAY_TIMEOUT,
                ("InternalServerErrorException", "Endpoint request timed out"),
                "Service Unavailable",
            );
        }
        // Lambda refused the invocation itself: API Gateway answers 500.
        Ok(Err(
            e @ (InvokeError::Throttled(_) | InvokeError::NotFound(_) | InvokeError::ShuttingDown),
        )) => {
            access.error = Some(format!("lambda refused the invocation: {e}"));
            return gateway_error(
                kind,
                StatusCode::INTERNAL_SERVER_ERROR,
                ("InternalServerErrorException", "Internal server error"),
                "Internal Server Error",
            );
        }
        Ok(Ok(out)) => out,
    };
    if out.function_error.is_some() {
        return internal(access, "function error".into());
    }
    let accept = request
        .headers
        .iter()
        .find(|(k, _)| k == "accept")
        .map(|(_, v)| v.as_str());
    let mapped = match (kind, route.payload) {
        (ApiKind::Rest, _) => {
            response::map_rest(&out.payload, accept, &api.config.binary_media_types)
        }
        (ApiKind::Http, PayloadVersion::V1) => response::map_v1_http(&out.payload),
        (ApiKind::Http, PayloadVersion::V2) => response::map_v2(&out.payload),
    };
    let mut mapped = match mapped {
        Ok(r) => r,
        Err(e) => return internal(access, format!("malformed Lambda proxy response: {e}")),
    };
    if let Some(cors) = &api.cors {
        cors::apply(cors, &request, &mut mapped);
    }
    if let (Some(cache), Some(key)) = (&api.cache, &cache_key) {
        cache
            .lock()
            .expect("cache poisoned")
            .put(key, &mapped, route.cache_ttl * 1000, epoch_ms());
    }
    to_http(mapped)
}

/// REST APIs with `Cors`: SAM adds a mock `OPTIONS` method to every path that has routes but
/// no `OPTIONS` of its own.
fn rest_preflight(
    api: &ApiState,
    request: &GatewayRequest,
) -> Option<(GatewayResponse, MatchedRoute)> {
    let cors = api.cors.as_ref()?;
    if api.config.kind != ApiKind::Rest || request.method != "OPTIONS" {
        return None;
    }
    let mut matched = None;
    let methods: Vec<&str> = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "ANY"]
        .into_iter()
        .filter(|m| match api.table.lookup(m, &request.raw_path) {
            Some(hit) if hit.method == *m => {
                matched.get_or_insert_with(|| MatchedRoute {
                    route_key: hit.template.to_owned(),
                    resource_path: hit.template.to_owned(),
                    path_parameters: hit.params.clone(),
                });
                true
            }
            _ => false,
        })
        .collect();
    let response = cors::preflight(&cors.for_path(&methods), request)?;
    Some((response, matched?))
}

/// SAM puts the API's default authorizer and its API-key requirement on the OPTIONS methods it
/// generates, unless `AddDefaultAuthorizerToCorsPreflight` / `AddApiKeyRequiredToCorsPreflight`
/// is false: a preflight is then refused as any request would be.
async fn guard_rest_preflight(
    api: &ApiState,
    request: &GatewayRequest,
    matched: &MatchedRoute,
    ctx: &RequestContext,
) -> Result<(), (Response, String)> {
    let cfg = &api.config;
    let route = RouteConfig {
        method: "OPTIONS".into(),
        path: matched.resource_path.clone(),
        function: String::new(),
        payload: PayloadVersion::V1,
        timeout: std::time::Duration::from_secs(29),
        api_key_required: cfg.default_api_key_required && cfg.api_key_on_preflight,
        authorizer: cfg
            .default_authorizer
            .clone()
            .filter(|_| cfg.authorizer_on_preflight),
        authorization_scopes: Vec::new(),
        cache_ttl: 0,
        source: "(CORS preflight)".into(),
        validation: None,
        unserved: None,
        service: None,
        rest: None,
        response_parameters: BTreeMap::new(),
    };
    if let Some(name) = &route.authorizer {
        if let Err((resp, why)) =
            crate::authorize::authorize(api, name, &route, request, matched, ctx).await
        {
            return Err((gateway_made(to_http(resp)), why));
        }
    }
    if route.api_key_required {
        let key = request
            .headers
            .iter()
            .find(|(k, _)| k == "x-api-key")
            .map(|(_, v)| v.as_str());
        if api
            .admission
            .check(&route, key, time::OffsetDateTime::now_utc())
            == Verdict::Forbidden
        {
            let resp = gateway_error(
                ApiKind::Rest,
                StatusCode::FORBIDDEN,
                ("ForbiddenException", "Forbidden"),
                "Forbidden",
            );
            return Err((resp, "api key missing or invalid".into()));
        }
    }
    Ok(())
}

fn to_http(r: GatewayResponse) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    for (k, v) in r.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            headers.append(name, value);
        }
    }
    resp
}
