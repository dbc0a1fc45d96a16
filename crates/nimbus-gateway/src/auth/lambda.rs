//! Lambda authorizers: the event API Gateway sends the authorizer function, what it makes of
//! the answer, and the key its results are cached under.
//!
//! - REST `TOKEN`: `{type, authorizationToken, methodArn}`; REST `REQUEST`: the proxy event
//!   without the body, plus `type` and `methodArn` (AWS guide, "Input to an API Gateway Lambda
//!   authorizer").
//! - HTTP APIs, authorizer payload 2.0: the payload 2.0 proxy event without the body, plus
//!   `type`, `routeArn` and `identitySource` (the identity values, in order); payload 1.0: the
//!   1.0 proxy event without the body, plus `type`, `methodArn`, and the identity values
//!   comma-joined as both `identitySource` and `authorizationToken` (AWS guide, "Control access
//!   to HTTP APIs with AWS Lambda authorizers").
//!
//! Identity sources must all be present and non-empty, or API Gateway answers 401 without
//! calling the function (REST `CreateAuthorizer` `identitySource`; the HTTP API guide). Their
//! values are the cache key. A cached answer is judged again for each request's method ARN,
//! since one answer serves every method that uses the authorizer: cache the
//! [`AuthorizerAnswer`], not the [`Authorized`].

use nimbus_core::route::form_decode;
use serde_json::{json, Map, Value};

use super::policy::{Decision, Policy};
use super::AuthError;
use crate::{event, ApiKind, GatewayRequest, MatchedRoute, PayloadVersion, RequestContext};

/// The ARN of a method or route as authorizers see it:
/// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}`, where `path` is the
/// request's path without its leading `/` (so the root is `.../GET/`).
pub fn method_arn(
    region: &str,
    account: &str,
    api_id: &str,
    stage: &str,
    method: &str,
    resource_path: &str,
) -> String {
    let path = resource_path.strip_prefix('/').unwrap_or(resource_path);
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{method}/{path}")
}

/// The event of a REST `TOKEN` authorizer.
pub fn rest_token_event(token: &str, method_arn: &str) -> Value {
    json!({
        "type": "TOKEN",
        "authorizationToken": token,
        "methodArn": method_arn,
    })
}

/// The event of a REST `REQUEST` authorizer.
pub fn rest_request_event(
    req: &GatewayRequest,
    route: &MatchedRoute,
    ctx: &RequestContext,
    method_arn: &str,
) -> Value {
    let mut event = authorizer_input(event::rest_v1(req, route, ctx));
    event.insert("type".into(), "REQUEST".into());
    event.insert("methodArn".into(), method_arn.into());
    event.into()
}

/// The event of an HTTP API Lambda authorizer with payload format 1.0; `identity` comes from
/// [`identity_values`].
pub fn http_v1_request_event(
    req: &GatewayRequest,
    route: &MatchedRoute,
    ctx: &RequestContext,
    method_arn: &str,
    identity: &[String],
) -> Value {
    let mut event = authorizer_input(event::http_v1(req, route, ctx));
    let joined = identity.join(",");
    event.insert("type".into(), "REQUEST".into());
    event.insert("methodArn".into(), method_arn.into());
    event.insert("identitySource".into(), joined.clone().into());
    event.insert("authorizationToken".into(), joined.into());
    event.into()
}

/// The event of an HTTP API Lambda authorizer with payload format 2.0; `identity` comes from
/// [`identity_values`]. `identitySource` is left out when the authorizer has no identity
/// sources (AWS does not document that case).
pub fn http_v2_request_event(
    req: &GatewayRequest,
    route: &MatchedRoute,
    ctx: &RequestContext,
    route_arn: &str,
    identity: &[String],
) -> Value {
    let mut event = authorizer_input(event::http_v2(req, route, ctx));
    event.insert("type".into(), "REQUEST".into());
    event.insert("routeArn".into(), route_arn.into());
    if !identity.is_empty() {
        event.insert("identitySource".into(), identity.into());
    }
    event.into()
}

/// Authorizers run before the integration: they get no body, and no authorizer result.
fn authorizer_input(proxy_event: Value) -> Map<String, Value> {
    let Value::Object(mut event) = proxy_event else {
        unreachable!("proxy events are JSON objects")
    };
    event.remove("body");
    event.remove("isBase64Encoded");
    if let Some(Value::Object(rc)) = event.get_mut("requestContext") {
        rc.remove("authorizer");
    }
    event
}

/// The values of an authorizer's identity sources for this request, in order. A source is
/// written as the template does (`method.request.header.Auth`, `$request.querystring.q`,
/// `stageVariables.v`, `$context.routeKey`) or as config.rs normalises it (`header:auth`,
/// `query:q`, `stage:v`, `context:routeKey`). Header names are case-insensitive, query names
/// are not. A repeated header or parameter gives its last value on REST APIs (as the REST
/// event's single-value maps do) and its values comma-joined on HTTP APIs (as payload 2.0
/// does).
pub fn identity_values(
    sources: &[String],
    kind: ApiKind,
    req: &GatewayRequest,
    route: &MatchedRoute,
    ctx: &RequestContext,
) -> Result<Vec<String>, AuthError> {
    sources
        .iter()
        .map(|source| {
            let value = match parse_source(source) {
                Some(Source::Header(name)) => pick(
                    kind,
                    req.headers
                        .iter()
                        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone()),
                ),
                Some(Source::Query(name)) => pick(
                    kind,
                    req.raw_query.split('&').filter_map(|pair| {
                        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
                        (form_decode(n) == name).then(|| form_decode(v))
                    }),
                ),
                Some(Source::Stage(name)) => ctx.stage_variables.get(name).cloned(),
                Some(Source::Context(name)) => context_variable(name, req, route, ctx)
                    .ok_or_else(|| AuthError::UnsupportedIdentitySource(source.clone()))?,
                None => return Err(AuthError::UnsupportedIdentitySource(source.clone())),
            };
            match value {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(AuthError::MissingIdentity(source.clone())),
            }
        })
        .collect()
}

/// The cache key of an authorizer's result: its identity values, unambiguously joined.
/// `None` when there are none, since AWS caches only authorizers with identity sources.
/// Scoping the cache per authorizer and expiring entries is the caller's.
pub fn cache_key(identity: &[String]) -> Option<String> {
    (!identity.is_empty()).then(|| Value::from(identity).to_string())
}

enum Source<'a> {
    Header(&'a str),
    Query(&'a str),
    Stage(&'a str),
    Context(&'a str),
}

fn parse_source(source: &str) -> Option<Source<'_>> {
    let s = source.trim();
    let s = s.strip_prefix('$').unwrap_or(s);
    let named = |prefixes: &[&str]| {
        prefixes
            .iter()
            .find_map(|p| s.strip_prefix(p))
            .filter(|name| !name.is_empty())
    };
    if let Some(name) = named(&["header:", "method.request.header.", "request.header."]) {
        Some(Source::Header(name))
    } else if let Some(name) = named(&[
        "query:",
        "method.request.querystring.",
        "request.querystring.",
    ]) {
        Some(Source::Query(name))
    } else if let Some(name) = named(&["stage:", "stageVariables."]) {
        Some(Source::Stage(name))
    } else {
        named(&["context:", "context."]).map(Source::Context)
    }
}

fn pick(kind: ApiKind, values: impl Iterator<Item = String>) -> Option<String> {
    match kind {
        ApiKind::Rest => values.last(),
        ApiKind::Http => values.reduce(|joined, v| joined + "," + &v),
    }
}

/// The context variables an identity source can name; `None` for the others. `Some(None)`
/// when the request has no value for it.
fn context_variable(
    name: &str,
    req: &GatewayRequest,
    route: &MatchedRoute,
    ctx: &RequestContext,
) -> Option<Option<String>> {
    let value = match name {
        "httpMethod" => req.method.clone(),
        "routeKey" => route.route_key.clone(),
        "resourcePath" => route.resource_path.clone(),
        "stage" => ctx.stage.clone(),
        "apiId" => ctx.api_id.clone(),
        "accountId" => ctx.account_id.clone(),
        "domainName" => ctx.domain_name.clone(),
        "requestId" => ctx.request_id.clone(),
        "identity.sourceIp" => req.source_ip.clone(),
        "identity.userAgent" => {
            return Some(
                req.headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
                    .map(|(_, v)| v.clone()),
            )
        }
        "identity.apiKey" => return Some(ctx.api_key.clone()),
        _ => return None,
    };
    Some(Some(value))
}

/// The shape of an authorizer function's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFormat {
    /// `{principalId, policyDocument, context, usageIdentifierKey}`: REST authorizers, and HTTP
    /// API authorizers unless they enable simple responses.
    IamPolicy,
    /// `{isAuthorized, context}`: HTTP API payload 2.0 with `EnableSimpleResponses`.
    Simple,
}

/// A Lambda authorizer's answer, checked: what can be cached and judged per request.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizerAnswer {
    kind: ApiKind,
    verdict: Verdict,
    principal_id: Option<String>,
    context: Map<String, Value>,
    usage_identifier_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Policy(Policy),
    Simple(bool),
}

/// A request the authorizer lets through, and what it tells the integration.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorized {
    kind: ApiKind,
    pub principal_id: Option<String>,
    /// The answer's `context`, as returned.
    pub context: Map<String, Value>,
    /// REST: the API key to meter when the API's key source is `AUTHORIZER`.
    pub usage_identifier_key: Option<String>,
}

impl AuthorizerAnswer {
    /// Checks the function's output. Anything AWS would not accept is an error that API
    /// Gateway answers with 500: output that is not a JSON object, a missing or malformed
    /// policy or `isAuthorized`, a REST answer without `principalId`, or a REST `context`
    /// value that is an object or an array (REST allows strings, numbers and booleans;
    /// HTTP APIs pass any JSON through, as their guide's example returns arrays and maps).
    pub fn parse(
        payload: &[u8],
        format: AnswerFormat,
        kind: ApiKind,
    ) -> Result<AuthorizerAnswer, AuthError> {
        let malformed = |why: &str| AuthError::MalformedAnswer(why.to_string());
        let answer: Value =
            serde_json::from_slice(payload).map_err(|_| malformed("the output is not JSON"))?;
        let Value::Object(answer) = answer else {
            return Err(malformed("the output is not a JSON object"));
        };
        let text = |name: &str| match answer.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(AuthError::MalformedAnswer(format!(
                "{name} is not a string"
            ))),
        };
        let (verdict, principal_id) = match format {
            AnswerFormat::Simple => match answer.get("isAuthorized") {
                Some(Value::Bool(b)) => (Verdict::Simple(*b), None),
                _ => return Err(malformed("isAuthorized must be a boolean")),
            },
            AnswerFormat::IamPolicy => {
                let document = answer
                    .get("policyDocument")
                    .ok_or_else(|| malformed("there is no policyDocument"))?;
                let policy = Policy::parse(document).map_err(AuthError::MalformedAnswer)?;
                let principal_id = text("principalId")?;
                if kind == ApiKind::Rest && principal_id.is_none() {
                    return Err(malformed("there is no principalId"));
                }
                (Verdict::Policy(policy), principal_id)
            }
        };
        let context = match answer.get("context") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(malformed("context is not an object")),
        };
        if kind == ApiKind::Rest {
            if let Some((key, _)) = context.iter().find(|(_, v)| v.is_object() || v.is_array()) {
                return Err(AuthError::ContextValueNotAllowed(key.clone()));
            }
        }
        Ok(AuthorizerAnswer {
            kind,
            verdict,
            principal_id,
            context,
            usage_identifier_key: text("usageIdentifierKey")?,
        })
    }

    /// Judges the answer for one request: its method ARN (REST) or route ARN (HTTP API).
    pub fn authorize(&self, method_arn: &str) -> Result<Authorized, AuthError> {
        match &self.verdict {
            Verdict::Simple(true) => {}
            Verdict::Simple(false) => return Err(AuthError::NotAllowed(method_arn.into())),
            Verdict::Policy(policy) => match policy.decide(method_arn) {
                Decision::Allow => {}
                Decision::ExplicitDeny => return Err(AuthError::ExplicitDeny(method_arn.into())),
                Decision::ImplicitDeny => return Err(AuthError::NotAllowed(method_arn.into())),
            },
        }
        Ok(Authorized {
            kind: self.kind,
            principal_id: self.principal_id.clone(),
            context: self.context.clone(),
            usage_identifier_key: self.usage_identifier_key.clone(),
        })
    }
}

impl Authorized {
    /// `requestContext.authorizer` of the integration's event. REST: the context with every
    /// string, number and boolean as a string (AWS: "Their values are stringified"; `null`
    /// stays `null`, as measured), plus `principalId` and `integrationLatency`. HTTP API
    /// payload 2.0: `{"lambda": context}`. HTTP API payload 1.0, which AWS does not show:
    /// REST's shape without stringifying.
    pub fn authorizer_value(&self, payload: PayloadVersion, integration_latency_ms: u64) -> Value {
        if self.kind == ApiKind::Http && payload == PayloadVersion::V2 {
            return json!({ "lambda": self.context });
        }
        let mut out: Map<String, Value> = self
            .context
            .iter()
            .map(|(k, v)| {
                let v = match (self.kind, v) {
                    (ApiKind::Rest, Value::Number(n)) => n.to_string().into(),
                    (ApiKind::Rest, Value::Bool(b)) => b.to_string().into(),
                    _ => v.clone(),
                };
                (k.clone(), v)
            })
            .collect();
        if let Some(principal_id) = &self.principal_id {
            out.insert("principalId".into(), principal_id.clone().into());
        }
        out.insert("integrationLatency".into(), integration_latency_ms.into());
        out.into()
    }
}

/// What API Gateway makes of an authorizer function that failed with `error_message` (its
/// `errorMessage`): on REST APIs the message `Unauthorized` is the documented way to answer
/// 401 ("callback('Unauthorized')" in AWS's example authorizer); any other failure is a 500.
pub fn function_error(kind: ApiKind, error_message: &str) -> AuthError {
    if kind == ApiKind::Rest && error_message == "Unauthorized" {
        AuthError::Unauthorized
    } else {
        AuthError::AuthorizerFailed(error_message.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aws_lambda_events::apigw::{
        ApiGatewayCustomAuthorizerRequest, ApiGatewayCustomAuthorizerRequestTypeRequest,
        ApiGatewayProxyRequest, ApiGatewayV2CustomAuthorizerV1Request,
        ApiGatewayV2CustomAuthorizerV2Request, ApiGatewayV2httpRequest,
    };

    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets/a1b2";

    fn request(target: &str, headers: &[(&str, &str)]) -> GatewayRequest {
        let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
        GatewayRequest {
            header_names: Vec::new(),
            method: "GET".into(),
            raw_path: raw_path.into(),
            raw_query: raw_query.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: bytes::Bytes::from_static(b"{\"secret\":1}"),
            source_ip: "192.0.2.7".into(),
            protocol: "HTTP/1.1".into(),
        }
    }

    fn route() -> MatchedRoute {
        MatchedRoute {
            route_key: "GET /pets/{id}".into(),
            resource_path: "/pets/{id}".into(),
            path_parameters: BTreeMap::from([("id".to_string(), "a1b2".to_string())]),
        }
    }

    fn context(stage: &str) -> RequestContext {
        RequestContext {
            account_id: "123456789012".into(),
            api_id: "abc123".into(),
            stage: stage.into(),
            stage_variables: BTreeMap::from([("tier".to_string(), "gold".to_string())]),
            request_id: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef".into(),
            domain_name: "127.0.0.1:3000".into(),
            request_time_epoch_ms: 1_700_000_000_000,
            // Left over from an earlier authorizer: must not reach the next one.
            authorizer: Some(json!({"stale": true})),
            ..RequestContext::default()
        }
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    fn answer(
        value: Value,
        format: AnswerFormat,
        kind: ApiKind,
    ) -> Result<AuthorizerAnswer, AuthError> {
        AuthorizerAnswer::parse(value.to_string().as_bytes(), format, kind)
    }

    fn rest_policy(effect: &str, resource: &str) -> Value {
        json!({
            "principalId": "user-1",
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
            },
            "context": {"stringKey": "value", "numberKey": 1, "booleanKey": true, "nullKey": null},
            "usageIdentifierKey": "key-123",
        })
    }

    #[test]
    fn method_arns_follow_the_documented_format() {
        assert_eq!(
            method_arn(
                "us-east-1",
                "123456789012",
                "abc123",
                "prod",
                "GET",
                "/pets/a1b2"
            ),
            ARN
        );
        assert_eq!(
            method_arn(
                "us-east-1",
                "123456789012",
                "abc123",
                "$default",
                "POST",
                "/"
            ),
            "arn:aws:execute-api:us-east-1:123456789012:abc123/$default/POST/"
        );
    }

    #[test]
    fn the_token_event_is_the_documented_triple() {
        let e = rest_token_event("allow", ARN);
        assert_eq!(
            e,
            json!({"type": "TOKEN", "authorizationToken": "allow", "methodArn": ARN})
        );
        let parsed: ApiGatewayCustomAuthorizerRequest = serde_json::from_value(e).unwrap();
        assert_eq!(parsed.method_arn.as_deref(), Some(ARN));
    }

    #[test]
    fn the_rest_request_event_is_the_proxy_event_without_body() {
        let req = request("/pets/a1b2?q=1", &[("authorization", "t"), ("host", "h")]);
        let e = rest_request_event(&req, &route(), &context("prod"), ARN);
        assert_eq!(e["type"], "REQUEST");
        assert_eq!(e["methodArn"], ARN);
        assert_eq!(e["resource"], "/pets/{id}");
        assert_eq!(e["path"], "/pets/a1b2");
        assert_eq!(e["httpMethod"], "GET");
        assert_eq!(e["headers"]["authorization"], "t");
        assert_eq!(e["multiValueQueryStringParameters"]["q"], json!(["1"]));
        assert_eq!(e["pathParameters"]["id"], "a1b2");
        assert_eq!(e["stageVariables"]["tier"], "gold");
        assert_eq!(e["requestContext"]["resourcePath"], "/pets/{id}");
        for absent in ["body", "isBase64Encoded"] {
            assert!(e.get(absent).is_none(), "{absent}");
        }
        assert!(e["requestContext"].get("authorizer").is_none());
        let parsed: ApiGatewayCustomAuthorizerRequestTypeRequest =
            serde_json::from_value(e).unwrap();
        assert_eq!(parsed.method_arn.as_deref(), Some(ARN));
        assert_eq!(parsed.request_context.apiid.as_deref(), Some("abc123"));
    }

    #[test]
    fn the_http_v2_event_has_every_documented_field() {
        let req = request(
            "/pets/a1b2?q=1&q=2",
            &[("authorization", "t"), ("cookie", "a=1; b=2")],
        );
        let arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/$default/GET/pets/a1b2";
        let e = http_v2_request_event(&req, &route(), &context("$default"), arn, &strings(&["t"]));
        for key in [
            "version",
            "type",
            "routeArn",
            "identitySource",
            "routeKey",
            "rawPath",
            "rawQueryString",
            "cookies",
            "headers",
            "queryStringParameters",
            "requestContext",
            "pathParameters",
            "stageVariables",
        ] {
            assert!(e.get(key).is_some(), "{key}");
        }
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["type"], "REQUEST");
        assert_eq!(e["routeArn"], arn);
        assert_eq!(e["identitySource"], json!(["t"]));
        assert_eq!(e["queryStringParameters"]["q"], "1,2");
        assert_eq!(e["cookies"], json!(["a=1", "b=2"]));
        assert!(e.get("body").is_none());
        assert!(e["requestContext"].get("authorizer").is_none());
        let parsed: ApiGatewayV2CustomAuthorizerV2Request = serde_json::from_value(e).unwrap();
        assert_eq!(parsed.identity_source, Some(strings(&["t"])));
        assert_eq!(parsed.route_key.as_deref(), Some("GET /pets/{id}"));
    }

    #[test]
    fn the_http_v2_event_omits_identity_source_without_sources() {
        let e = http_v2_request_event(
            &request("/", &[]),
            &route(),
            &context("$default"),
            "arn",
            &[],
        );
        assert!(e.get("identitySource").is_none());
    }

    #[test]
    fn the_http_v1_event_joins_the_identity_values() {
        let req = request("/pets/a1b2", &[("x-user", "user1")]);
        let e = http_v1_request_event(
            &req,
            &route(),
            &context("$default"),
            ARN,
            &strings(&["user1", "123"]),
        );
        assert_eq!(e["version"], "1.0");
        assert_eq!(e["type"], "REQUEST");
        assert_eq!(e["methodArn"], ARN);
        assert_eq!(e["identitySource"], "user1,123");
        assert_eq!(e["authorizationToken"], "user1,123");
        assert!(e.get("body").is_none());
        assert!(e["requestContext"].get("authorizer").is_none());
        let parsed: ApiGatewayV2CustomAuthorizerV1Request = serde_json::from_value(e).unwrap();
        assert_eq!(parsed.authorization_token.as_deref(), Some("user1,123"));
    }

    #[test]
    fn identity_values_come_from_headers_queries_stage_and_context() {
        let req = request("/pets/a1b2?Token=abc&token=lower", &[("X-Api-Auth", "h1")]);
        let sources = strings(&[
            "method.request.header.x-api-auth",
            "query:Token",
            "$request.querystring.token",
            "stageVariables.tier",
            "$context.routeKey",
            "context:httpMethod",
        ]);
        let values = identity_values(
            &sources,
            ApiKind::Http,
            &req,
            &route(),
            &context("$default"),
        );
        assert_eq!(
            values.unwrap(),
            strings(&["h1", "abc", "lower", "gold", "GET /pets/{id}", "GET"])
        );
    }

    #[test]
    fn repeated_identity_values_follow_each_payload() {
        let req = request("/?k=1&k=2", &[("auth", "a"), ("Auth", "b")]);
        let sources = strings(&["header:auth", "query:k"]);
        let rest = identity_values(&sources, ApiKind::Rest, &req, &route(), &context("prod"));
        assert_eq!(rest.unwrap(), strings(&["b", "2"]));
        let http = identity_values(
            &sources,
            ApiKind::Http,
            &req,
            &route(),
            &context("$default"),
        );
        assert_eq!(http.unwrap(), strings(&["a,b", "1,2"]));
    }

    #[test]
    fn a_missing_or_empty_identity_source_is_a_401_before_any_call() {
        let req = request("/?empty=", &[("auth", "")]);
        for source in [
            "header:auth",
            "header:absent",
            "query:empty",
            "query:absent",
            "stage:absent",
        ] {
            let r = identity_values(
                &strings(&[source]),
                ApiKind::Rest,
                &req,
                &route(),
                &context("prod"),
            );
            assert_eq!(r, Err(AuthError::MissingIdentity(source.into())));
            assert_eq!(r.unwrap_err().status(), 401);
        }
    }

    #[test]
    fn an_unknown_identity_source_is_a_configuration_error() {
        let req = request("/", &[]);
        for source in ["body.token", "context:nope", "header:"] {
            let r = identity_values(
                &strings(&[source]),
                ApiKind::Rest,
                &req,
                &route(),
                &context("prod"),
            );
            assert_eq!(r, Err(AuthError::UnsupportedIdentitySource(source.into())));
        }
    }

    #[test]
    fn cache_keys_are_unambiguous_and_need_an_identity() {
        assert_eq!(cache_key(&[]), None);
        assert_ne!(
            cache_key(&strings(&["a,b"])),
            cache_key(&strings(&["a", "b"]))
        );
        assert_eq!(cache_key(&strings(&["t"])), cache_key(&strings(&["t"])));
    }

    #[test]
    fn a_rest_allow_passes_the_stringified_context() {
        let a = answer(
            rest_policy("Allow", "arn:aws:execute-api:us-east-1:*:abc123/*/GET/*"),
            AnswerFormat::IamPolicy,
            ApiKind::Rest,
        )
        .unwrap();
        let ok = a.authorize(ARN).unwrap();
        assert_eq!(ok.principal_id.as_deref(), Some("user-1"));
        assert_eq!(ok.usage_identifier_key.as_deref(), Some("key-123"));
        let value = ok.authorizer_value(PayloadVersion::V1, 12);
        assert_eq!(
            value,
            json!({
                "stringKey": "value",
                "numberKey": "1",
                "booleanKey": "true",
                "nullKey": null,
                "principalId": "user-1",
                "integrationLatency": 12,
            })
        );
        // It lands where lambda_http reads the REST event's authorizer.
        let mut ctx = context("prod");
        ctx.authorizer = Some(value);
        let event = crate::event::rest_v1(&request("/pets/a1b2", &[]), &route(), &ctx);
        let parsed: ApiGatewayProxyRequest = serde_json::from_value(event).unwrap();
        assert_eq!(parsed.request_context.stage.as_deref(), Some("prod"));
    }

    #[test]
    fn a_cached_answer_is_judged_again_for_each_method() {
        let a = answer(
            rest_policy("Allow", ARN),
            AnswerFormat::IamPolicy,
            ApiKind::Rest,
        )
        .unwrap();
        assert!(a.authorize(ARN).is_ok());
        let other = ARN.replace("a1b2", "c3d4");
        assert_eq!(
            a.authorize(&other),
            Err(AuthError::NotAllowed(other.clone()))
        );
    }

    #[test]
    fn a_rest_deny_is_an_explicit_deny() {
        let a = answer(
            rest_policy("Deny", "*"),
            AnswerFormat::IamPolicy,
            ApiKind::Rest,
        )
        .unwrap();
        let e = a.authorize(ARN).unwrap_err();
        assert_eq!(e, AuthError::ExplicitDeny(ARN.into()));
        assert_eq!(e.status(), 403);
    }

    #[test]
    fn rest_context_objects_and_arrays_are_refused() {
        for bad in [json!({"a": 1}), json!([1])] {
            let mut value = rest_policy("Allow", "*");
            value["context"]["nested"] = bad;
            let e = answer(value, AnswerFormat::IamPolicy, ApiKind::Rest).unwrap_err();
            assert_eq!(e, AuthError::ContextValueNotAllowed("nested".into()));
            assert_eq!(e.status(), 500);
        }
    }

    #[test]
    fn malformed_answers_are_errors() {
        let mut no_principal = rest_policy("Allow", "*");
        no_principal.as_object_mut().unwrap().remove("principalId");
        let mut numeric_principal = rest_policy("Allow", "*");
        numeric_principal["principalId"] = json!(7);
        let mut no_policy = rest_policy("Allow", "*");
        no_policy.as_object_mut().unwrap().remove("policyDocument");
        let mut list_context = rest_policy("Allow", "*");
        list_context["context"] = json!(["x"]);
        for value in [
            no_principal,
            numeric_principal,
            no_policy,
            list_context,
            json!(null),
            json!("Allow"),
            json!({"principalId": "u", "policyDocument": {"Statement": [{"Effect": "Allow"}]}}),
        ] {
            let r = answer(value.clone(), AnswerFormat::IamPolicy, ApiKind::Rest);
            assert!(matches!(r, Err(AuthError::MalformedAnswer(_))), "{value}");
        }
        let r = AuthorizerAnswer::parse(b"not json", AnswerFormat::IamPolicy, ApiKind::Rest);
        assert!(matches!(r, Err(AuthError::MalformedAnswer(_))));
    }

    #[test]
    fn http_simple_responses_decide_for_every_route() {
        let yes = answer(
            json!({"isAuthorized": true, "context": {"arrayKey": ["a", "b"], "mapKey": {"k": "v"}, "n": 1}}),
            AnswerFormat::Simple,
            ApiKind::Http,
        )
        .unwrap();
        let ok = yes.authorize("any-route-arn").unwrap();
        let value = ok.authorizer_value(PayloadVersion::V2, 5);
        assert_eq!(
            value,
            json!({"lambda": {"arrayKey": ["a", "b"], "mapKey": {"k": "v"}, "n": 1}})
        );
        // It lands where lambda_http reads payload 2.0's Lambda authorizer context.
        let mut ctx = context("$default");
        ctx.authorizer = Some(value);
        let event = crate::event::http_v2(&request("/pets/a1b2", &[]), &route(), &ctx);
        let parsed: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
        let fields = parsed.request_context.authorizer.unwrap().fields;
        assert_eq!(fields["n"], json!(1));

        let no = answer(
            json!({"isAuthorized": false}),
            AnswerFormat::Simple,
            ApiKind::Http,
        )
        .unwrap();
        let e = no.authorize("arn").unwrap_err();
        assert_eq!(e.status(), 403);
        assert_eq!(
            e.response(ApiKind::Http).body,
            br#"{"message":"Forbidden"}"#
        );
    }

    #[test]
    fn a_simple_response_needs_a_boolean() {
        for value in [
            json!({}),
            json!({"isAuthorized": "true"}),
            json!({"isAuthorized": 1}),
        ] {
            let r = answer(value.clone(), AnswerFormat::Simple, ApiKind::Http);
            assert!(matches!(r, Err(AuthError::MalformedAnswer(_))), "{value}");
        }
    }

    #[test]
    fn http_policy_answers_need_no_principal() {
        let value = json!({
            "policyDocument": {"Version": "2012-10-17", "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": ARN}]},
            "context": {"list": [1, 2]},
        });
        let a = answer(value, AnswerFormat::IamPolicy, ApiKind::Http).unwrap();
        let ok = a.authorize(ARN).unwrap();
        assert_eq!(ok.principal_id, None);
        assert_eq!(
            ok.authorizer_value(PayloadVersion::V1, 3),
            json!({"list": [1, 2], "integrationLatency": 3})
        );
    }

    #[test]
    fn unauthorized_from_a_rest_authorizer_function_is_a_401() {
        assert_eq!(
            function_error(ApiKind::Rest, "Unauthorized"),
            AuthError::Unauthorized
        );
        let e = function_error(ApiKind::Rest, "Error: Invalid token");
        assert_eq!(e.status(), 500);
        assert_eq!(function_error(ApiKind::Http, "Unauthorized").status(), 500);
    }
}
