//! The Lambda proxy integration's input event: what API Gateway sends the function for one
//! request, in the three shapes AWS uses.
//!
//! - REST APIs (payload 1.0), [`rest_v1`]: `path` is the request path as sent (still
//!   percent-encoded) without the stage; `requestContext.path` has the stage in front. The body
//!   is base64-encoded when the request's `Content-Type` matches the API's
//!   `BinaryMediaTypes`, else passed as text.
//! - HTTP APIs with `PayloadFormatVersion: "1.0"`, [`http_v1`]: the REST shape with the HTTP API
//!   guide's differences: a top-level `version: "1.0"`, no API keys in `identity`,
//!   `resourceId: null`, `authorizer: {claims: null, scopes: null}` when no authorizer ran, and
//!   HTTP API paths and bodies (below).
//! - HTTP APIs with payload 2.0, [`http_v2`].
//!
//! HTTP APIs (both payloads) hand the function a percent-decoded path with the stage in front
//! unless the stage is `$default`, and base64-encode the body unless its content type is text:
//! `text/*`, `application/json`, `application/xml` or `application/javascript`. Everything else
//! is binary to them, a missing `Content-Type` and `application/x-www-form-urlencoded` included.
//! AWS does not document that list; it was measured against AWS (ministack PR 766). A body
//! that claims to be text but is not UTF-8 is base64-encoded as well, since a JSON string
//! cannot carry it.
//!
//! Query strings are decoded as forms (`+` is a space). Payload 1.0 keeps the last value of a
//! repeated header or parameter in the single-value map and all of them in the `multiValue`
//! one; payload 2.0 joins repeats with commas. Absent maps are `null` in 1.0 and omitted in 2.0,
//! as AWS sends them.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use nimbus_core::route::{form_decode, percent_decode, DEFAULT_ROUTE};
use serde_json::{json, Map, Value};

use crate::{GatewayRequest, MatchedRoute, RequestContext};

/// The stage name under which HTTP APIs serve paths without a stage prefix.
const DEFAULT_STAGE: &str = "$default";

/// Content types an HTTP API passes as text; everything else is base64-encoded.
const HTTP_API_TEXT_TYPES: [&str; 3] = [
    "application/json",
    "application/xml",
    "application/javascript",
];

/// The event of a REST API's Lambda proxy integration.
pub fn rest_v1(req: &GatewayRequest, route: &MatchedRoute, ctx: &RequestContext) -> Value {
    let binary =
        content_type(req).is_some_and(|ct| matches_media_type(ct, &ctx.binary_media_types));
    let (body, is_base64) = if req.body.is_empty() {
        (Value::Null, false)
    } else if binary {
        (base64_body(req).into(), true)
    } else {
        // REST passes everything else as text: bytes that are not UTF-8 do not survive that.
        (
            String::from_utf8_lossy(&req.body).into_owned().into(),
            false,
        )
    };
    let identity = json!({
        "accessKey": null,
        "accountId": null,
        "apiKey": ctx.api_key,
        "apiKeyId": ctx.api_key_id,
        "caller": null,
        "cognitoAuthenticationProvider": null,
        "cognitoAuthenticationType": null,
        "cognitoIdentityId": null,
        "cognitoIdentityPoolId": null,
        "principalOrgId": null,
        "sourceIp": req.source_ip,
        "user": null,
        "userAgent": header(req, "user-agent"),
        "userArn": null,
    });
    let mut request_context = v1_request_context(req, ctx, identity);
    let stage_path = match ctx.stage.is_empty() {
        true => req.raw_path.clone(),
        false => format!("/{}{}", ctx.stage, req.raw_path),
    };
    request_context.insert("path".into(), stage_path.into());
    request_context.insert(
        "resourceId".into(),
        resource_id(&route.resource_path).into(),
    );
    request_context.insert("resourcePath".into(), route.resource_path.clone().into());
    if let Some(authorizer) = &ctx.authorizer {
        request_context.insert("authorizer".into(), authorizer.clone());
    }
    v1_event(
        req,
        route,
        ctx,
        &route.resource_path,
        &req.raw_path,
        request_context,
        body,
        is_base64,
        true,
    )
}

/// The event of an HTTP API's Lambda proxy integration with payload format 1.0.
pub fn http_v1(req: &GatewayRequest, route: &MatchedRoute, ctx: &RequestContext) -> Value {
    let path = http_api_path(req, ctx);
    // The `$default` route has no template: AWS reports the request's own path as resource.
    let resource = match route.route_key == DEFAULT_ROUTE {
        true => percent_decode(&req.raw_path),
        false => route.resource_path.clone(),
    };
    let (body, is_base64) = http_api_body(req);
    let identity = json!({
        "accessKey": null,
        "accountId": null,
        "caller": null,
        "cognitoAuthenticationProvider": null,
        "cognitoAuthenticationType": null,
        "cognitoIdentityId": null,
        "cognitoIdentityPoolId": null,
        "principalOrgId": null,
        "sourceIp": req.source_ip,
        "user": null,
        "userAgent": header(req, "user-agent"),
        "userArn": null,
    });
    let mut request_context = v1_request_context(req, ctx, identity);
    request_context.insert("path".into(), path.clone().into());
    request_context.insert("resourceId".into(), Value::Null);
    request_context.insert("resourcePath".into(), resource.clone().into());
    request_context.insert(
        "authorizer".into(),
        ctx.authorizer
            .clone()
            .unwrap_or_else(|| json!({"claims": null, "scopes": null})),
    );
    let mut event = v1_event(
        req,
        route,
        ctx,
        &resource,
        &path,
        request_context,
        body.map_or(Value::Null, Value::String),
        is_base64,
        false,
    );
    if let Value::Object(map) = &mut event {
        map.insert("version".into(), "1.0".into());
    }
    event
}

/// The event of an HTTP API's Lambda proxy integration with payload format 2.0.
pub fn http_v2(req: &GatewayRequest, route: &MatchedRoute, ctx: &RequestContext) -> Value {
    let path = http_api_path(req, ctx);
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &req.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(String::from),
            );
            continue;
        }
        join_into(&mut headers, name, value);
    }
    let mut query = Map::new();
    for (name, value) in query_pairs(&req.raw_query) {
        join_into(&mut query, name, &value);
    }

    let mut http = Map::new();
    http.insert("method".into(), req.method.clone().into());
    http.insert("path".into(), path.clone().into());
    http.insert("protocol".into(), req.protocol.clone().into());
    http.insert("sourceIp".into(), req.source_ip.clone().into());
    http.insert(
        "userAgent".into(),
        header(req, "user-agent").unwrap_or_default().into(),
    );

    let mut request_context = Map::new();
    request_context.insert("accountId".into(), ctx.account_id.clone().into());
    request_context.insert("apiId".into(), ctx.api_id.clone().into());
    if let Some(authorizer) = &ctx.authorizer {
        request_context.insert("authorizer".into(), authorizer.clone());
    }
    request_context.insert("domainName".into(), ctx.domain_name.clone().into());
    request_context.insert(
        "domainPrefix".into(),
        domain_prefix(&ctx.domain_name).into(),
    );
    request_context.insert("http".into(), http.into());
    request_context.insert("requestId".into(), ctx.request_id.clone().into());
    request_context.insert("routeKey".into(), route.route_key.clone().into());
    request_context.insert("stage".into(), ctx.stage.clone().into());
    request_context.insert(
        "time".into(),
        request_time(ctx.request_time_epoch_ms).into(),
    );
    request_context.insert("timeEpoch".into(), ctx.request_time_epoch_ms.into());

    let mut event = Map::new();
    event.insert("version".into(), "2.0".into());
    event.insert("routeKey".into(), route.route_key.clone().into());
    event.insert("rawPath".into(), path.into());
    event.insert("rawQueryString".into(), req.raw_query.clone().into());
    if !cookies.is_empty() {
        event.insert("cookies".into(), cookies.into());
    }
    event.insert("headers".into(), headers.into());
    if !query.is_empty() {
        event.insert("queryStringParameters".into(), query.into());
    }
    if !route.path_parameters.is_empty() {
        event.insert(
            "pathParameters".into(),
            string_map(route.path_parameters.iter()),
        );
    }
    if !ctx.stage_variables.is_empty() {
        event.insert(
            "stageVariables".into(),
            string_map(ctx.stage_variables.iter()),
        );
    }
    event.insert("requestContext".into(), request_context.into());
    let (body, is_base64) = http_api_body(req);
    if let Some(body) = body {
        event.insert("body".into(), body.into());
    }
    event.insert("isBase64Encoded".into(), is_base64.into());
    event.into()
}

/// `09/Apr/2015:12:34:56 +0000`, the `requestTime` / `time` format of both payloads.
pub fn request_time(epoch_ms: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = time::OffsetDateTime::UNIX_EPOCH + Duration::from_millis(epoch_ms);
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
        t.day(),
        MONTHS[t.month() as usize - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Whether `content_type` (parameters such as `; charset=utf-8` ignored) matches one of
/// `patterns`, API Gateway's `BinaryMediaTypes`: `*/*` matches everything, `image/*` every
/// `image/` type, anything else itself, all case-insensitively.
pub fn matches_media_type(content_type: &str, patterns: &[String]) -> bool {
    let media = media_type(content_type);
    patterns.iter().any(|p| {
        let p = media_type(p);
        p == "*/*"
            || p == media
            || p.strip_suffix("/*")
                .is_some_and(|kind| media.split('/').next() == Some(kind))
    })
}

fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The fields payload 1.0 shares between REST and HTTP APIs.
#[allow(clippy::too_many_arguments)]
fn v1_event(
    req: &GatewayRequest,
    route: &MatchedRoute,
    ctx: &RequestContext,
    resource: &str,
    path: &str,
    request_context: Map<String, Value>,
    body: Value,
    is_base64: bool,
    client_case: bool,
) -> Value {
    // REST APIs keep header names as the client wrote them; HTTP APIs lower-case them.
    let case: HashMap<String, &str> = match client_case {
        true => req
            .header_names
            .iter()
            .rev()
            .map(|n| (n.to_ascii_lowercase(), n.as_str()))
            .collect(),
        false => HashMap::new(),
    };
    let mut headers = Map::new();
    let mut multi_headers = Map::new();
    for (name, value) in &req.headers {
        let name = case
            .get(name)
            .map_or_else(|| name.clone(), |n| (*n).to_owned());
        headers.insert(name.clone(), value.clone().into());
        push_into(&mut multi_headers, name, value.clone());
    }
    let mut query = Map::new();
    let mut multi_query = Map::new();
    for (name, value) in query_pairs(&req.raw_query) {
        query.insert(name.clone(), value.clone().into());
        push_into(&mut multi_query, name, value);
    }
    let or_null = |m: Map<String, Value>| if m.is_empty() { Value::Null } else { m.into() };
    let path_parameters = match route.path_parameters.is_empty() {
        true => Value::Null,
        false => string_map(route.path_parameters.iter()),
    };
    let stage_variables = match ctx.stage_variables.is_empty() {
        true => Value::Null,
        false => string_map(ctx.stage_variables.iter()),
    };
    json!({
        "resource": resource,
        "path": path,
        "httpMethod": req.method,
        "headers": or_null(headers),
        "multiValueHeaders": or_null(multi_headers),
        "queryStringParameters": or_null(query),
        "multiValueQueryStringParameters": or_null(multi_query),
        "pathParameters": path_parameters,
        "stageVariables": stage_variables,
        "requestContext": request_context,
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// The `requestContext` fields payload 1.0 shares between REST and HTTP APIs.
fn v1_request_context(
    req: &GatewayRequest,
    ctx: &RequestContext,
    identity: Value,
) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("accountId".into(), ctx.account_id.clone().into());
    c.insert("apiId".into(), ctx.api_id.clone().into());
    c.insert("domainName".into(), ctx.domain_name.clone().into());
    c.insert(
        "domainPrefix".into(),
        domain_prefix(&ctx.domain_name).into(),
    );
    c.insert(
        "extendedRequestId".into(),
        extended_request_id(&ctx.request_id).into(),
    );
    c.insert("httpMethod".into(), req.method.clone().into());
    c.insert("identity".into(), identity);
    c.insert("protocol".into(), req.protocol.clone().into());
    c.insert("requestId".into(), ctx.request_id.clone().into());
    c.insert(
        "requestTime".into(),
        request_time(ctx.request_time_epoch_ms).into(),
    );
    c.insert("requestTimeEpoch".into(), ctx.request_time_epoch_ms.into());
    c.insert("stage".into(), ctx.stage.clone().into());
    c
}

/// HTTP APIs pass the decoded path, with the stage in front unless it is `$default` (the
/// stage is part of the URL there, and the function sees the whole URL path).
fn http_api_path(req: &GatewayRequest, ctx: &RequestContext) -> String {
    let path = percent_decode(&req.raw_path);
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        path
    };
    if ctx.stage.is_empty() || ctx.stage == DEFAULT_STAGE {
        path
    } else {
        format!("/{}{}", ctx.stage, path)
    }
}

/// The body as an HTTP API passes it (`None` when there is none) and whether it is base64.
fn http_api_body(req: &GatewayRequest) -> (Option<String>, bool) {
    if req.body.is_empty() {
        return (None, false);
    }
    let text = content_type(req).is_some_and(|ct| {
        let media = media_type(ct);
        media.starts_with("text/") || HTTP_API_TEXT_TYPES.contains(&media.as_str())
    });
    match std::str::from_utf8(&req.body) {
        Ok(body) if text => (Some(body.to_string()), false),
        _ => (Some(base64_body(req)), true),
    }
}

fn base64_body(req: &GatewayRequest) -> String {
    base64::engine::general_purpose::STANDARD.encode(&req.body)
}

/// The first value of a header (names are lower-case in `GatewayRequest`).
fn header<'a>(req: &'a GatewayRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn content_type(req: &GatewayRequest) -> Option<&str> {
    header(req, "content-type")
}

/// Decoded `name=value` pairs in order; a name without `=` has the value `""`, and a value
/// without a name (`=x`) is dropped, there being no parameter to give it to.
/// A query string's `(name, value)` pairs, form-decoded, in order.
pub(crate) fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (!name.is_empty()).then(|| (form_decode(name), form_decode(value)))
        })
        .collect()
}

fn push_into(map: &mut Map<String, Value>, name: String, value: String) {
    match map.entry(name).or_insert_with(|| Value::Array(Vec::new())) {
        Value::Array(values) => values.push(value.into()),
        other => *other = Value::Array(vec![value.into()]),
    }
}

fn join_into(map: &mut Map<String, Value>, name: String, value: &str) {
    match map.get_mut(&name) {
        Some(Value::String(joined)) => {
            joined.push(',');
            joined.push_str(value);
        }
        _ => {
            map.insert(name, value.into());
        }
    }
}

fn string_map<'a>(entries: impl Iterator<Item = (&'a String, &'a String)>) -> Value {
    entries
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect::<Map<_, _>>()
        .into()
}

/// The first label of the host, as AWS defines `domainPrefix`: `abc123` for
/// `abc123.execute-api.us-east-1.amazonaws.com`, `localhost` for `localhost:3000`. An IPv6
/// literal is kept whole, having no labels.
fn domain_prefix(domain: &str) -> String {
    if domain.starts_with('[') {
        return domain
            .split_inclusive(']')
            .next()
            .unwrap_or(domain)
            .to_string();
    }
    let host = domain.split(':').next().unwrap_or(domain);
    host.split('.').next().unwrap_or(host).to_string()
}

/// API Gateway's extended request id looks like `LV7fzHbLvHcFs3w=`: 11 bytes, base64. Derived
/// from the request id so that both appear together in logs and stay stable in tests.
fn extended_request_id(request_id: &str) -> String {
    let digits: Vec<u8> = request_id.bytes().filter(u8::is_ascii_hexdigit).collect();
    let mut bytes: Vec<u8> = digits
        .chunks_exact(2)
        .filter_map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect();
    if bytes.len() < 11 {
        bytes = request_id.as_bytes().to_vec();
    }
    bytes.resize(11, 0);
    base64::engine::general_purpose::STANDARD.encode(&bytes[..11])
}

/// REST resources have ids like `roq9wj`; nimbus has no resource ids, so one is derived from
/// the resource path: stable across restarts and distinct per resource (FNV-1a, base 36).
fn resource_id(resource_path: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in resource_path.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..6)
        .map(|_| {
            let d = DIGITS[(hash % 36) as usize] as char;
            hash /= 36;
            d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};

    use super::*;

    fn request(
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> GatewayRequest {
        let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
        GatewayRequest {
            header_names: Vec::new(),
            method: method.into(),
            raw_path: raw_path.into(),
            raw_query: raw_query.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: bytes::Bytes::copy_from_slice(body),
            source_ip: "192.0.2.7".into(),
            protocol: "HTTP/1.1".into(),
        }
    }

    fn route(route_key: &str, resource_path: &str, params: &[(&str, &str)]) -> MatchedRoute {
        MatchedRoute {
            route_key: route_key.into(),
            resource_path: resource_path.into(),
            path_parameters: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn context(stage: &str, stage_variables: &[(&str, &str)]) -> RequestContext {
        RequestContext {
            account_id: "123456789012".into(),
            api_id: "myapi".into(),
            stage: stage.into(),
            stage_variables: stage_variables
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            request_id: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef".into(),
            domain_name: "127.0.0.1:3000".into(),
            request_time_epoch_ms: 1_428_582_896_789,
            ..RequestContext::default()
        }
    }

    fn keys(v: &Value) -> BTreeSet<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
        names.iter().copied().collect()
    }

    /// The POST of the REST guide's "Input format" example, against `/{proxy+}` in `testStage`.
    fn rest_example() -> Value {
        let req = request(
            "POST",
            "/hello/world?name=me&multivalueName=you&multivalueName=me",
            &[
                ("host", "127.0.0.1:3000"),
                ("content-type", "application/json"),
                ("user-agent", "curl/8.5.0"),
                ("x-multi", "a"),
                ("x-multi", "b"),
            ],
            b"{\r\n\t\"a\": 1\r\n}",
        );
        let mut ctx = context("testStage", &[("stageVariableName", "stageVariableValue")]);
        ctx.api_key = Some("key-value".into());
        ctx.api_key_id = Some("key-id".into());
        rest_v1(
            &req,
            &route("/{proxy+}", "/{proxy+}", &[("proxy", "hello/world")]),
            &ctx,
        )
    }

    #[test]
    fn rest_event_has_every_field_of_the_documented_input_format() {
        let e = rest_example();
        // Top-level keys of "Input format of a Lambda function for proxy integration".
        assert_eq!(
            keys(&e),
            set(&[
                "resource",
                "path",
                "httpMethod",
                "headers",
                "multiValueHeaders",
                "queryStringParameters",
                "multiValueQueryStringParameters",
                "pathParameters",
                "stageVariables",
                "requestContext",
                "body",
                "isBase64Encoded",
            ])
        );
        assert_eq!(
            keys(&e["requestContext"]),
            set(&[
                "accountId",
                "apiId",
                "domainName",
                "domainPrefix",
                "extendedRequestId",
                "httpMethod",
                "identity",
                "path",
                "protocol",
                "requestId",
                "requestTime",
                "requestTimeEpoch",
                "resourceId",
                "resourcePath",
                "stage",
            ])
        );
        assert_eq!(
            keys(&e["requestContext"]["identity"]),
            set(&[
                "accessKey",
                "accountId",
                "apiKey",
                "apiKeyId",
                "caller",
                "cognitoAuthenticationProvider",
                "cognitoAuthenticationType",
                "cognitoIdentityId",
                "cognitoIdentityPoolId",
                "principalOrgId",
                "sourceIp",
                "user",
                "userAgent",
                "userArn",
            ])
        );
    }

    #[test]
    fn rest_event_carries_the_request_as_aws_does() {
        let e = rest_example();
        let checks: &[(&str, Value)] = &[
            ("/resource", json!("/{proxy+}")),
            ("/path", json!("/hello/world")),
            ("/httpMethod", json!("POST")),
            ("/headers/content-type", json!("application/json")),
            ("/headers/x-multi", json!("b")),
            ("/multiValueHeaders/x-multi", json!(["a", "b"])),
            (
                "/queryStringParameters",
                json!({"name": "me", "multivalueName": "me"}),
            ),
            (
                "/multiValueQueryStringParameters",
                json!({"name": ["me"], "multivalueName": ["you", "me"]}),
            ),
            ("/pathParameters", json!({"proxy": "hello/world"})),
            (
                "/stageVariables",
                json!({"stageVariableName": "stageVariableValue"}),
            ),
            ("/body", json!("{\r\n\t\"a\": 1\r\n}")),
            ("/isBase64Encoded", json!(false)),
            ("/requestContext/accountId", json!("123456789012")),
            ("/requestContext/apiId", json!("myapi")),
            ("/requestContext/path", json!("/testStage/hello/world")),
            ("/requestContext/resourcePath", json!("/{proxy+}")),
            ("/requestContext/stage", json!("testStage")),
            (
                "/requestContext/requestId",
                json!("c6af9ac6-7b61-11e6-9a41-93e8deadbeef"),
            ),
            (
                "/requestContext/extendedRequestId",
                json!("xq+axnthEeaaQZM="),
            ),
            (
                "/requestContext/requestTime",
                json!("09/Apr/2015:12:34:56 +0000"),
            ),
            (
                "/requestContext/requestTimeEpoch",
                json!(1_428_582_896_789_u64),
            ),
            ("/requestContext/protocol", json!("HTTP/1.1")),
            ("/requestContext/domainName", json!("127.0.0.1:3000")),
            ("/requestContext/domainPrefix", json!("127")),
            ("/requestContext/identity/sourceIp", json!("192.0.2.7")),
            ("/requestContext/identity/userAgent", json!("curl/8.5.0")),
            ("/requestContext/identity/apiKey", json!("key-value")),
            ("/requestContext/identity/apiKeyId", json!("key-id")),
            ("/requestContext/identity/accessKey", Value::Null),
        ];
        for (pointer, want) in checks {
            assert_eq!(e.pointer(pointer), Some(want), "{pointer}");
        }
        assert_eq!(e["requestContext"]["resourceId"].as_str().unwrap().len(), 6);
    }

    #[test]
    fn rest_event_parses_as_lambda_http_reads_it() {
        let parsed: ApiGatewayProxyRequest = serde_json::from_value(rest_example()).unwrap();
        assert_eq!(parsed.http_method, "POST");
        assert_eq!(parsed.path.as_deref(), Some("/hello/world"));
        assert_eq!(parsed.headers["content-type"], "application/json");
        assert_eq!(
            parsed.multi_value_headers.get_all("x-multi").iter().count(),
            2
        );
        assert_eq!(
            parsed
                .multi_value_query_string_parameters
                .all("multivalueName"),
            Some(vec!["you", "me"])
        );
        assert_eq!(parsed.path_parameters["proxy"], "hello/world");
        assert_eq!(parsed.request_context.stage.as_deref(), Some("testStage"));
        assert_eq!(parsed.request_context.request_time_epoch, 1_428_582_896_789);
        assert_eq!(
            parsed.request_context.identity.api_key_id.as_deref(),
            Some("key-id")
        );
    }

    #[test]
    fn rest_event_sends_null_for_absent_maps_and_body() {
        let e = rest_v1(
            &request("GET", "/", &[], b""),
            &route("/", "/", &[]),
            &context("prod", &[]),
        );
        for field in [
            "headers",
            "multiValueHeaders",
            "queryStringParameters",
            "multiValueQueryStringParameters",
            "pathParameters",
            "stageVariables",
            "body",
        ] {
            assert_eq!(e[field], Value::Null, "{field}");
        }
        assert_eq!(e["requestContext"]["path"], "/prod/");
        assert_eq!(e["requestContext"]["identity"]["userAgent"], Value::Null);
        assert!(e["requestContext"].get("authorizer").is_none());
        let parsed: ApiGatewayProxyRequest = serde_json::from_value(e).unwrap();
        assert!(parsed.query_string_parameters.is_empty() && parsed.body.is_none());
    }

    #[test]
    fn rest_event_keeps_the_path_encoded_and_passes_the_authorizer_context() {
        let mut ctx = context("prod", &[]);
        ctx.authorizer = Some(json!({"principalId": "user-1", "tier": "gold"}));
        let req = request("GET", "/items/a%20b", &[], b"");
        let e = rest_v1(
            &req,
            &route("/items/{id}", "/items/{id}", &[("id", "a b")]),
            &ctx,
        );
        assert_eq!(e["path"], "/items/a%20b");
        assert_eq!(e["requestContext"]["path"], "/prod/items/a%20b");
        assert_eq!(e["pathParameters"]["id"], "a b");
        assert_eq!(e["requestContext"]["authorizer"]["principalId"], "user-1");
    }

    #[test]
    fn rest_base64_encodes_only_binary_media_types() {
        let png: &[u8] = &[0x89, b'P', b'N', b'G', 0xff];
        // (content type, BinaryMediaTypes, body, expected body JSON)
        let cases = [
            (
                "image/png",
                vec!["image/png"],
                png,
                json!({"b64": "iVBOR/8="}),
            ),
            (
                "image/png",
                vec!["image/*"],
                png,
                json!({"b64": "iVBOR/8="}),
            ),
            (
                "application/json",
                vec!["*/*"],
                b"{}".as_slice(),
                json!({"b64": "e30="}),
            ),
            (
                "IMAGE/PNG; q=1",
                vec!["image/png"],
                png,
                json!({"b64": "iVBOR/8="}),
            ),
            (
                "text/plain",
                vec!["image/*"],
                b"hi".as_slice(),
                json!({"text": "hi"}),
            ),
            // Not binary to REST, so the bytes go as text and what is not UTF-8 is lost.
            (
                "image/png",
                vec![],
                png,
                json!({"text": "\u{fffd}PNG\u{fffd}"}),
            ),
        ];
        for (content_type, types, body, want) in cases {
            let mut ctx = context("prod", &[]);
            ctx.binary_media_types = types.iter().map(|t| t.to_string()).collect();
            let req = request("POST", "/up", &[("content-type", content_type)], body);
            let e = rest_v1(&req, &route("/up", "/up", &[]), &ctx);
            let got = match e["isBase64Encoded"].as_bool() {
                Some(true) => json!({"b64": e["body"]}),
                _ => json!({"text": e["body"]}),
            };
            assert_eq!(got, want, "{content_type} {types:?}");
        }
    }

    #[test]
    fn query_strings_are_decoded_as_forms() {
        let req = request(
            "GET",
            "/q?a=1+2&b=%26%3D&c&d=&=orphan&a=3&&e=caf%C3%A9",
            &[],
            b"",
        );
        let e = rest_v1(&req, &route("/q", "/q", &[]), &context("prod", &[]));
        assert_eq!(
            e["queryStringParameters"],
            json!({"a": "3", "b": "&=", "c": "", "d": "", "e": "café"})
        );
        assert_eq!(
            e["multiValueQueryStringParameters"]["a"],
            json!(["1 2", "3"])
        );
        let e = http_v2(&req, &route("GET /q", "/q", &[]), &context("$default", &[]));
        assert_eq!(e["queryStringParameters"]["a"], "1 2,3");
        assert_eq!(
            e["rawQueryString"],
            "a=1+2&b=%26%3D&c&d=&=orphan&a=3&&e=caf%C3%A9"
        );
    }

    /// A request like the HTTP API guide's payload examples: `$default` route and stage.
    fn http_example_request() -> GatewayRequest {
        request(
            "POST",
            "/my/path?parameter1=value1&parameter1=value2&parameter2=value",
            &[
                ("header1", "value1"),
                ("header2", "value1"),
                ("header2", "value2"),
                ("cookie", "cookie1=a; cookie2=b"),
                ("cookie", "cookie3=c"),
                ("user-agent", "agent"),
                ("content-type", "text/plain"),
            ],
            b"Hello from Lambda",
        )
    }

    #[test]
    fn http_v2_event_matches_the_documented_payload() {
        let ctx = context("$default", &[("stageVariable1", "value1")]);
        let e = http_v2(&http_example_request(), &route("$default", "/", &[]), &ctx);
        // The 2.0 example's keys, less `pathParameters` (the `$default` route has none).
        assert_eq!(
            keys(&e),
            set(&[
                "version",
                "routeKey",
                "rawPath",
                "rawQueryString",
                "cookies",
                "headers",
                "queryStringParameters",
                "requestContext",
                "body",
                "isBase64Encoded",
                "stageVariables",
            ])
        );
        // Less `authentication` (mutual TLS) and `authorizer` (none ran).
        assert_eq!(
            keys(&e["requestContext"]),
            set(&[
                "accountId",
                "apiId",
                "domainName",
                "domainPrefix",
                "http",
                "requestId",
                "routeKey",
                "stage",
                "time",
                "timeEpoch",
            ])
        );
        let checks: &[(&str, Value)] = &[
            ("/version", json!("2.0")),
            ("/routeKey", json!("$default")),
            ("/rawPath", json!("/my/path")),
            (
                "/rawQueryString",
                json!("parameter1=value1&parameter1=value2&parameter2=value"),
            ),
            ("/cookies", json!(["cookie1=a", "cookie2=b", "cookie3=c"])),
            (
                "/headers",
                json!({"header1": "value1", "header2": "value1,value2", "user-agent": "agent", "content-type": "text/plain"}),
            ),
            (
                "/queryStringParameters",
                json!({"parameter1": "value1,value2", "parameter2": "value"}),
            ),
            ("/stageVariables", json!({"stageVariable1": "value1"})),
            ("/body", json!("Hello from Lambda")),
            ("/isBase64Encoded", json!(false)),
            (
                "/requestContext/http",
                json!({"method": "POST", "path": "/my/path", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.7", "userAgent": "agent"}),
            ),
            ("/requestContext/routeKey", json!("$default")),
            ("/requestContext/stage", json!("$default")),
            ("/requestContext/time", json!("09/Apr/2015:12:34:56 +0000")),
            ("/requestContext/timeEpoch", json!(1_428_582_896_789_u64)),
            ("/requestContext/domainPrefix", json!("127")),
        ];
        for (pointer, want) in checks {
            assert_eq!(e.pointer(pointer), Some(want), "{pointer}");
        }
        let parsed: ApiGatewayV2httpRequest = serde_json::from_value(e).unwrap();
        assert_eq!(parsed.request_context.http.method, "POST");
        assert_eq!(parsed.raw_path.as_deref(), Some("/my/path"));
        assert_eq!(parsed.cookies.unwrap().len(), 3);
        assert_eq!(
            parsed.query_string_parameters.all("parameter1"),
            Some(vec!["value1", "value2"])
        );
    }

    #[test]
    fn http_v2_event_omits_what_the_request_lacks() {
        let req = request("GET", "/items/a%20b", &[("host", "localhost:3000")], b"");
        let mut ctx = context("dev", &[]);
        ctx.authorizer = Some(json!({"lambda": {"user": "u1"}}));
        let e = http_v2(
            &req,
            &route("GET /items/{id}", "/items/{id}", &[("id", "a b")]),
            &ctx,
        );
        for absent in ["cookies", "queryStringParameters", "stageVariables", "body"] {
            assert!(e.get(absent).is_none(), "{absent}");
        }
        // HTTP APIs decode the path and put a named stage in front of it.
        assert_eq!(e["rawPath"], "/dev/items/a b");
        assert_eq!(e["requestContext"]["http"]["path"], "/dev/items/a b");
        assert_eq!(e["requestContext"]["http"]["userAgent"], "");
        assert_eq!(e["pathParameters"], json!({"id": "a b"}));
        assert_eq!(e["requestContext"]["authorizer"]["lambda"]["user"], "u1");
        assert_eq!(e["isBase64Encoded"], false);
        let parsed: ApiGatewayV2httpRequest = serde_json::from_value(e).unwrap();
        assert_eq!(
            parsed.request_context.authorizer.unwrap().fields["user"],
            "u1"
        );
    }

    #[test]
    fn http_v1_event_matches_the_documented_payload() {
        let e = http_v1(
            &http_example_request(),
            &route("$default", "/", &[]),
            &context("$default", &[]),
        );
        // The 1.0 example's keys.
        assert_eq!(
            keys(&e),
            set(&[
                "version",
                "resource",
                "path",
                "httpMethod",
                "headers",
                "multiValueHeaders",
                "queryStringParameters",
                "multiValueQueryStringParameters",
                "requestContext",
                "pathParameters",
                "stageVariables",
                "body",
                "isBase64Encoded",
            ])
        );
        assert_eq!(
            keys(&e["requestContext"]),
            set(&[
                "accountId",
                "apiId",
                "authorizer",
                "domainName",
                "domainPrefix",
                "extendedRequestId",
                "httpMethod",
                "identity",
                "path",
                "protocol",
                "requestId",
                "requestTime",
                "requestTimeEpoch",
                "resourceId",
                "resourcePath",
                "stage",
            ])
        );
        // Less `clientCert` (mutual TLS only).
        assert_eq!(
            keys(&e["requestContext"]["identity"]),
            set(&[
                "accessKey",
                "accountId",
                "caller",
                "cognitoAuthenticationProvider",
                "cognitoAuthenticationType",
                "cognitoIdentityId",
                "cognitoIdentityPoolId",
                "principalOrgId",
                "sourceIp",
                "user",
                "userAgent",
                "userArn",
            ])
        );
        let checks: &[(&str, Value)] = &[
            ("/version", json!("1.0")),
            ("/resource", json!("/my/path")),
            ("/path", json!("/my/path")),
            ("/headers/header2", json!("value2")),
            ("/multiValueHeaders/header2", json!(["value1", "value2"])),
            ("/headers/cookie", json!("cookie3=c")),
            (
                "/queryStringParameters",
                json!({"parameter1": "value2", "parameter2": "value"}),
            ),
            (
                "/multiValueQueryStringParameters/parameter1",
                json!(["value1", "value2"]),
            ),
            ("/pathParameters", Value::Null),
            ("/stageVariables", Value::Null),
            (
                "/requestContext/authorizer",
                json!({"claims": null, "scopes": null}),
            ),
            ("/requestContext/resourceId", Value::Null),
            ("/requestContext/resourcePath", json!("/my/path")),
            ("/requestContext/path", json!("/my/path")),
            ("/body", json!("Hello from Lambda")),
        ];
        for (pointer, want) in checks {
            assert_eq!(e.pointer(pointer), Some(want), "{pointer}");
        }
        let parsed: ApiGatewayProxyRequest = serde_json::from_value(e).unwrap();
        assert_eq!(parsed.resource.as_deref(), Some("/my/path"));
    }

    #[test]
    fn http_v1_event_uses_the_route_template_and_the_decoded_staged_path() {
        let req = request("GET", "/items/a%2Fb", &[], b"");
        let e = http_v1(
            &req,
            &route("GET /items/{id}", "/items/{id}", &[("id", "a/b")]),
            &context("v1", &[]),
        );
        assert_eq!(e["resource"], "/items/{id}");
        assert_eq!(e["path"], "/v1/items/a/b");
        assert_eq!(e["requestContext"]["resourcePath"], "/items/{id}");
        assert_eq!(e["pathParameters"], json!({"id": "a/b"}));
        assert_eq!(e["body"], Value::Null);
    }

    #[test]
    fn http_apis_base64_encode_everything_but_text() {
        let cases: &[(Option<&str>, &[u8], bool)] = &[
            (Some("text/plain"), b"hi", false),
            (Some("text/html; charset=utf-8"), b"hi", false),
            (Some("application/json"), b"{}", false),
            (Some("Application/JSON; charset=UTF-8"), b"{}", false),
            (Some("application/xml"), b"<a/>", false),
            (Some("application/javascript"), b"x", false),
            (Some("application/x-www-form-urlencoded"), b"a=1", true),
            (Some("application/vnd.api+json"), b"{}", true),
            (Some("application/octet-stream"), b"hi", true),
            (None, b"hi", true),
            (Some("text/plain"), &[0xff, 0xfe], true),
        ];
        for (content_type, body, want_b64) in cases {
            let headers: Vec<(&str, &str)> = content_type
                .iter()
                .map(|ct| ("content-type", *ct))
                .collect();
            let req = request("POST", "/", &headers, body);
            let want_body = match want_b64 {
                true => base64::engine::general_purpose::STANDARD.encode(body),
                false => String::from_utf8(body.to_vec()).unwrap(),
            };
            for e in [
                http_v2(
                    &req,
                    &route("$default", "/", &[]),
                    &context("$default", &[]),
                ),
                http_v1(
                    &req,
                    &route("$default", "/", &[]),
                    &context("$default", &[]),
                ),
            ] {
                assert_eq!(
                    (&e["body"], &e["isBase64Encoded"]),
                    (&json!(want_body), &json!(want_b64)),
                    "{content_type:?}"
                );
            }
        }
    }

    #[test]
    fn binary_media_type_patterns_match_like_api_gateway() {
        let types = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases = [
            ("image/png", types(&["image/png"]), true),
            ("image/png; charset=binary", types(&["image/png"]), true),
            ("image/jpeg", types(&["image/*"]), true),
            ("imagex/png", types(&["image/*"]), false),
            ("text/plain", types(&["*/*"]), true),
            ("", types(&["*/*"]), true),
            (
                "application/pdf",
                types(&["image/*", "application/octet-stream"]),
                false,
            ),
            ("application/octet-stream", types(&[]), false),
        ];
        for (content_type, patterns, want) in cases {
            assert_eq!(
                matches_media_type(content_type, &patterns),
                want,
                "{content_type} {patterns:?}"
            );
        }
    }

    #[test]
    fn request_time_uses_the_clf_format_in_utc() {
        assert_eq!(
            request_time(1_428_582_896_789),
            "09/Apr/2015:12:34:56 +0000"
        );
        assert_eq!(
            request_time(1_584_039_838_390),
            "12/Mar/2020:19:03:58 +0000"
        );
        assert_eq!(request_time(0), "01/Jan/1970:00:00:00 +0000");
    }

    #[test]
    fn derived_ids_are_stable_and_shaped_like_aws_ones() {
        let cases = [
            ("abc123.execute-api.us-east-1.amazonaws.com", "abc123"),
            ("localhost:3000", "localhost"),
            ("[::1]:3000", "[::1]"),
            ("api.example.com", "api"),
        ];
        for (domain, want) in cases {
            assert_eq!(domain_prefix(domain), want, "{domain}");
        }
        assert_eq!(extended_request_id("not-a-uuid").len(), 16);
        assert_eq!(resource_id("/items/{id}"), resource_id("/items/{id}"));
        assert_ne!(resource_id("/items/{id}"), resource_id("/items"));
        let ids: BTreeMap<_, _> = ["/", "/a", "/b"]
            .iter()
            .map(|p| (resource_id(p), p))
            .collect();
        assert_eq!(ids.len(), 3);
    }
}
