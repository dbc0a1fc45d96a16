//! The template's APIs, as the gateway serves them: implicit (`ServerlessRestApi`,
//! `ServerlessHttpApi`) and explicit (`AWS::Serverless::Api`, `AWS::Serverless::HttpApi`) APIs,
//! their routes from functions' `Api` / `HttpApi` events, stages, throttling, API keys and
//! usage plans.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use nimbus_core::quota::Period;
use nimbus_template::Stack;
use serde_json::Value;

use crate::{ApiKind, PayloadVersion};

/// One API and stage.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// The API's logical id (`ServerlessRestApi` / `ServerlessHttpApi` for implicit ones).
    pub logical_id: String,
    pub kind: ApiKind,
    pub stage: String,
    pub stage_variables: BTreeMap<String, String>,
    pub routes: Vec<RouteConfig>,
    /// REST `BinaryMediaTypes` (SAM's `~1` already turned back into `/`).
    pub binary_media_types: Vec<String>,
    /// Stage-wide throttling: REST `MethodSettings` for `*` `/*`, HTTP API
    /// `DefaultRouteSettings`.
    pub stage_throttle: Option<Throttle>,
    /// Per-route throttling: REST `MethodSettings` for one method and resource path (key
    /// `GET /items`), HTTP API `RouteSettings` (key = route key).
    pub route_throttles: BTreeMap<String, Throttle>,
    /// Usage plans that include this API's stage.
    pub usage_plans: Vec<UsagePlan>,
    /// `Cors` (REST) or `CorsConfiguration` (HTTP API) as written; `cors.rs` reads it.
    pub cors: Option<Value>,
    /// Authorizers by name (`Auth.Authorizers`).
    pub authorizers: BTreeMap<String, AuthorizerConfig>,
    /// `Auth.DefaultAuthorizer`: protects every route that does not say otherwise.
    pub default_authorizer: Option<String>,
    /// REST `Auth.ApiKeyRequired` on the API: the default for its routes.
    pub default_api_key_required: bool,
    /// REST `Auth.AddDefaultAuthorizerToCorsPreflight` (default true).
    pub authorizer_on_preflight: bool,
    /// REST `Auth.AddApiKeyRequiredToCorsPreflight` (default true).
    pub api_key_on_preflight: bool,
    /// REST `ApiKeySourceType: AUTHORIZER`: the key comes from a Lambda authorizer's
    /// `usageIdentifierKey` instead of the `x-api-key` header.
    pub api_key_from_authorizer: bool,
    /// REST `MethodSettings` caching, by route key (`GET /items`) or `*` for the stage, when
    /// `CacheClusterEnabled` is on: TTL in seconds.
    pub cache_ttls: BTreeMap<String, u64>,
    /// What nimbus does not serve of the API's definition, to say once at start-up.
    pub notes: Vec<String>,
    /// REST gateway responses by type (`DEFAULT_4XX`, `UNAUTHORIZED`, ...).
    pub gateway_responses: BTreeMap<String, crate::gateway_responses::GatewayResponse>,
}

/// An API Gateway authorizer.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizerConfig {
    /// HTTP API JWT authorizer.
    Jwt {
        issuer: String,
        audiences: Vec<String>,
        /// E.g. `$request.header.Authorization`.
        identity_source: String,
    },
    /// A Lambda authorizer.
    Lambda {
        /// The authorizer function's name.
        function: String,
        kind: LambdaAuthorizerKind,
        /// Where the identity comes from: REST `method.request.header.X` style, HTTP API
        /// `$request.header.X` style, normalised to `header:x`, `query:x`.
        identity_sources: Vec<String>,
        /// `ReauthorizeEvery` / result TTL in seconds (0: no cache).
        ttl_secs: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaAuthorizerKind {
    /// REST `TOKEN`: the identity header's value is the token.
    RestToken,
    /// REST `REQUEST`: a proxy-like event.
    RestRequest,
    /// HTTP API payload 2.0; `simple` for `EnableSimpleResponses`.
    HttpV2 { simple: bool },
    /// HTTP API payload 1.0 (IAM policy answers).
    HttpV1,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    /// `ANY` or an upper-case HTTP method; `ANY` for `$default`.
    pub method: String,
    /// E.g. `/items/{id}`, or `$default` (HTTP APIs).
    pub path: String,
    /// The function's name (what the platform invokes).
    pub function: String,
    pub payload: PayloadVersion,
    /// The integration timeout: 29 s (REST) / 30 s (HTTP API) unless `TimeoutInMillis`.
    pub timeout: Duration,
    /// REST `Auth.ApiKeyRequired`.
    pub api_key_required: bool,
    /// The authorizer protecting the route, by name; `None` for an open route.
    pub authorizer: Option<String>,
    /// HTTP API `AuthorizationScopes` a JWT must carry.
    pub authorization_scopes: Vec<String>,
    /// REST response cache TTL in seconds; 0 when not cached.
    pub cache_ttl: u64,
    /// Where it came from, for messages: `Resources.Fn.Properties.Events.Get`.
    pub source: String,
    /// What a REST request validator checks before the integration runs.
    pub validation: Option<RequestValidation>,
    /// Why the route's integration is not served yet (a service, HTTP or mock integration):
    /// it answers 500, as API Gateway does for a failing integration, and the reason is logged.
    pub unserved: Option<String>,
    /// An HTTP API's first-class AWS service integration, instead of a function.
    pub service: Option<crate::service::ServiceIntegration>,
    /// A REST API's MOCK or AWS service integration with mapping templates.
    pub rest: Option<Box<crate::integration::RestIntegration>>,
    /// An HTTP API integration's `ResponseParameters`: by the integration's status code, the
    /// mappings (`overwrite:header.x`, `append:header.x`, `remove:header.x`,
    /// `overwrite:statuscode`) to their values.
    pub response_parameters: BTreeMap<String, BTreeMap<String, String>>,
}

impl RouteConfig {
    /// An open route to `function`, with no key, authorizer, cache or validation.
    pub(crate) fn to_function(
        method: String,
        path: String,
        function: String,
        payload: PayloadVersion,
        timeout: Duration,
        source: &str,
    ) -> Self {
        RouteConfig {
            method,
            path,
            function,
            payload,
            timeout,
            api_key_required: false,
            authorizer: None,
            authorization_scopes: Vec::new(),
            cache_ttl: 0,
            source: source.to_owned(),
            validation: None,
            unserved: None,
            service: None,
            rest: None,
            response_parameters: BTreeMap::new(),
        }
    }
}

/// An open route to something other than a function (a service or REST integration, set by
/// the caller).
pub(crate) fn integration_route(method: &str, path: &str, source: &str) -> RouteConfig {
    RouteConfig::to_function(
        method.to_owned(),
        path.to_owned(),
        String::new(),
        PayloadVersion::V1,
        Duration::from_millis(29_000),
        source,
    )
}

/// A route whose integration nimbus does not serve yet (see [`RouteConfig::unserved`]).
pub(crate) fn unserved_route(method: &str, path: &str, source: &str, why: &str) -> RouteConfig {
    RouteConfig {
        unserved: Some(why.to_owned()),
        ..integration_route(method, path, source)
    }
}

/// A REST API's request validation of one route (`x-amazon-apigateway-request-validators`).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestValidation {
    /// The JSON schema (draft 4) a JSON body must match, with the definition's components
    /// beside it for `$ref`s.
    pub body_schema: Option<Value>,
    /// `(in, name)` of the required parameters: `query`, `header` or `path`.
    pub required: Vec<(String, String)>,
}

impl RouteConfig {
    /// `GET /items`, or `$default`: how AWS names a route in logs and route settings.
    pub fn key(&self) -> String {
        if self.path == "$default" {
            self.path.clone()
        } else {
            format!("{} {}", self.method, self.path)
        }
    }
}

/// A token bucket: `rate` requests per second on average, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    pub rate: f64,
    pub burst: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UsagePlan {
    pub id: String,
    pub throttle: Option<Throttle>,
    pub quota: Option<QuotaConfig>,
    pub keys: Vec<ApiKey>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaConfig {
    pub limit: u64,
    pub period: Period,
    pub offset: u64,
}

#[derive(Clone, PartialEq)]
pub struct ApiKey {
    /// The key's id: its logical id.
    pub id: String,
    /// The secret the client sends in `x-api-key`. Never logged.
    pub value: String,
    pub enabled: bool,
    /// Generated by nimbus (no `Value` in the template): printed at start-up so the user can
    /// call the API.
    pub generated: bool,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("value", &"<redacted>")
            .field("enabled", &self.enabled)
            .field("generated", &self.generated)
            .finish()
    }
}

/// Makes the value of a generated API key. The caller supplies randomness, so this stays pure.
pub type KeyGenerator<'a> = &'a mut dyn FnMut() -> String;

/// Reads every API of the stack. Problems are returned all together, each naming where it is.
pub fn apis(stack: &Stack, new_key: KeyGenerator<'_>) -> Result<Vec<ApiConfig>, Vec<String>> {
    let mut errors = Vec::new();
    let mut apis: BTreeMap<String, ApiConfig> = BTreeMap::new();

    for (id, r) in &stack.resources {
        let kind = match r.resource_type.as_str() {
            "AWS::Serverless::Api" => ApiKind::Rest,
            "AWS::Serverless::HttpApi" => ApiKind::Http,
            _ => continue,
        };
        let mut api = api_from_properties(id, kind, &r.properties, &mut errors);
        let body = &r.properties["DefinitionBody"];
        if !body.is_null() {
            let read = crate::openapi::read(
                id,
                kind,
                body,
                &format!("Resources.{id}.Properties.DefinitionBody"),
                &|f| stack.function(f.split(':').next().unwrap_or(f)).is_some(),
                &mut errors,
            );
            api.routes = read.routes;
            api.notes = read.warnings;
            api.authorizers.extend(read.authorizers);
            api.gateway_responses.extend(read.gateway_responses);
            api.binary_media_types.extend(read.binary_media_types);
            if api.cors.is_none() {
                api.cors = read.cors;
            }
        }
        apis.insert(id.clone(), api);
    }

    apis.extend(crate::cfn::apis(stack, &mut errors));

    for f in &stack.functions {
        for (event_id, event) in &f.events {
            let source = format!("Resources.{}.Properties.Events.{event_id}", f.logical_id);
            let kind = match event["Type"].as_str() {
                Some("Api") => ApiKind::Rest,
                Some("HttpApi") => ApiKind::Http,
                _ => continue,
            };
            let props = &event["Properties"];
            let (api_field, implicit) = match kind {
                ApiKind::Rest => ("RestApiId", "ServerlessRestApi"),
                ApiKind::Http => ("ApiId", "ServerlessHttpApi"),
            };
            let api_id = match &props[api_field] {
                Value::Null => implicit.to_owned(),
                Value::String(s) => s.clone(),
                other => {
                    errors.push(format!("{source}.Properties.{api_field}: expected a reference to an API (!Ref MyApi), got {other}"));
                    continue;
                }
            };
            let api = match apis.get_mut(&api_id) {
                Some(api) if api.kind == kind => api,
                Some(_) => {
                    errors.push(format!(
                        "{source}.Properties.{api_field}: {api_id} is not an {} API",
                        if kind == ApiKind::Rest {
                            "AWS::Serverless::Api (REST)"
                        } else {
                            "AWS::Serverless::HttpApi"
                        }
                    ));
                    continue;
                }
                None if api_id == implicit => apis.entry(api_id.clone()).or_insert_with(|| {
                    api_from_properties(&api_id, kind, &Value::Null, &mut Vec::new())
                }),
                None => {
                    errors.push(format!(
                        "{source}.Properties.{api_field}: no API named {api_id} in the template"
                    ));
                    continue;
                }
            };
            match route_from_event(kind, props, &f.event_target(), &source, api) {
                Ok(route) => {
                    // SAM refuses a template whose event declares a method the definition
                    // already integrates; nimbus serves the event's and says so.
                    let before = api.routes.len();
                    api.routes.retain(|r| {
                        !(r.key() == route.key() && r.source.contains(".DefinitionBody."))
                    });
                    if api.routes.len() < before {
                        api.notes.push(format!(
                            "{source}: {} is also integrated in the DefinitionBody of {}; `sam deploy` refuses this (API method defined multiple times); nimbus serves the event's function",
                            route.key(),
                            api.logical_id
                        ));
                    }
                    api.routes.push(route)
                }
                Err(e) => errors.push(e),
            }
        }
    }

    // SAM's `Api` events on state machines: a REST route whose AWS integration starts an
    // execution with the request body as input, as the SAM transform writes it.
    for (id, r) in &stack.resources {
        if r.resource_type != "AWS::Serverless::StateMachine" {
            continue;
        }
        let name = r.properties["Name"].as_str().unwrap_or(id);
        let arn = format!(
            "arn:aws:states:{}:{}:stateMachine:{name}",
            stack.region, stack.account_id
        );
        for (event_id, event) in r.properties["Events"].as_object().into_iter().flatten() {
            if event["Type"].as_str() != Some("Api") {
                continue;
            }
            let source = format!("Resources.{id}.Properties.Events.{event_id}");
            let props = &event["Properties"];
            let api_id = props["RestApiId"]
                .as_str()
                .unwrap_or("ServerlessRestApi")
                .to_owned();
            let api = match apis.get_mut(&api_id) {
                Some(api) if api.kind == ApiKind::Rest => api,
                Some(_) => {
                    errors.push(format!(
                        "{source}.Properties.RestApiId: {api_id} is not an AWS::Serverless::Api (REST)"
                    ));
                    continue;
                }
                None if api_id == "ServerlessRestApi" => {
                    apis.entry(api_id.clone()).or_insert_with(|| {
                        api_from_properties(&api_id, ApiKind::Rest, &Value::Null, &mut Vec::new())
                    })
                }
                None => {
                    errors.push(format!(
                        "{source}.Properties.RestApiId: no API named {api_id} in the template"
                    ));
                    continue;
                }
            };
            let integration = serde_json::json!({
                "Type": "AWS",
                "Uri": format!("arn:aws:apigateway:{}:states:action/StartExecution", stack.region),
                "RequestTemplates": {"application/json": format!(
                    "{{\"input\": \"$util.escapeJavaScript($input.json('$'))\", \"stateMachineArn\": \"{arn}\"}}"
                )},
                "IntegrationResponses": [
                    {"StatusCode": "200"},
                    {"StatusCode": "400", "SelectionPattern": "4\\d{2}"}
                ],
            });
            match route_from_event(ApiKind::Rest, props, "", &source, api) {
                Ok(mut route) => {
                    match crate::integration::read(&integration, &source, &mut errors) {
                        Ok(rest) => route.rest = Some(Box::new(rest)),
                        Err(e) => errors.push(e),
                    }
                    api.routes.push(route);
                }
                Err(e) => errors.push(e),
            }
        }
    }

    attach_usage_plans(stack, &mut apis, new_key, &mut errors);

    for api in apis.values() {
        let mut seen = BTreeMap::new();
        for r in &api.routes {
            if let Some(first) = seen.insert(r.key(), &r.source) {
                errors.push(format!(
                    "{}: route {} of {} is also declared by {first}",
                    r.source,
                    r.key(),
                    api.logical_id
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(apis
            .into_values()
            .filter(|a| !a.routes.is_empty())
            .collect())
    } else {
        Err(errors)
    }
}

pub(crate) fn api_from_properties(
    id: &str,
    kind: ApiKind,
    props: &Value,
    errors: &mut Vec<String>,
) -> ApiConfig {
    let source = format!("Resources.{id}.Properties");
    let stage = props["StageName"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| match kind {
            // SAM's defaults for implicit APIs.
            ApiKind::Rest => "Prod".into(),
            ApiKind::Http => "$default".into(),
        });
    let variables_key = match kind {
        ApiKind::Rest => "Variables",
        ApiKind::Http => "StageVariables",
    };
    let stage_variables = string_map(
        &props[variables_key],
        &format!("{source}.{variables_key}"),
        errors,
    );
    let binary_media_types = strings(&props["BinaryMediaTypes"])
        .iter()
        .map(|t| t.replace("~1", "/"))
        .collect();

    let mut stage_throttle = None;
    let mut route_throttles = BTreeMap::new();
    match kind {
        ApiKind::Rest => {
            for (i, m) in props["MethodSettings"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let Some(t) = throttle(
                    m,
                    "ThrottlingRateLimit",
                    "ThrottlingBurstLimit",
                    &format!("{source}.MethodSettings[{i}]"),
                    errors,
                ) else {
                    continue;
                };
                let method = m["HttpMethod"].as_str().unwrap_or("*");
                let path = m["ResourcePath"].as_str().unwrap_or("/*");
                if method == "*" && path == "/*" {
                    stage_throttle = Some(t);
                } else {
                    let path = method_settings_path(path);
                    route_throttles.insert(format!("{} {path}", method.to_uppercase()), t);
                }
            }
        }
        ApiKind::Http => {
            stage_throttle = throttle(
                &props["DefaultRouteSettings"],
                "ThrottlingRateLimit",
                "ThrottlingBurstLimit",
                &format!("{source}.DefaultRouteSettings"),
                errors,
            );
            if let Some(routes) = props["RouteSettings"].as_object() {
                for (key, settings) in routes {
                    if let Some(t) = throttle(
                        settings,
                        "ThrottlingRateLimit",
                        "ThrottlingBurstLimit",
                        &format!("{source}.RouteSettings.{key}"),
                        errors,
                    ) {
                        route_throttles.insert(key.clone(), t);
                    }
                }
            }
        }
    }

    let cors = match kind {
        ApiKind::Rest => &props["Cors"],
        ApiKind::Http => &props["CorsConfiguration"],
    };
    let cors = (!cors.is_null() && cors != &Value::Bool(false)).then(|| cors.clone());

    let auth = &props["Auth"];
    let mut authorizers = BTreeMap::new();
    if let Some(map) = auth["Authorizers"].as_object() {
        for (name, a) in map {
            let path = format!("{source}.Auth.Authorizers.{name}");
            match authorizer(kind, a, &path) {
                Ok(a) => {
                    authorizers.insert(name.clone(), a);
                }
                Err(e) => errors.push(e),
            }
        }
    }
    let default_authorizer = match auth["DefaultAuthorizer"].as_str() {
        None | Some("NONE") => None,
        Some(name) if authorizers.contains_key(name) => Some(name.to_owned()),
        Some(name) => {
            errors.push(format!(
                "{source}.Auth.DefaultAuthorizer: no authorizer named {name:?} in Auth.Authorizers"
            ));
            None
        }
    };

    let mut cache_ttls = BTreeMap::new();
    if kind == ApiKind::Rest && props["CacheClusterEnabled"].as_bool() == Some(true) {
        for m in props["MethodSettings"].as_array().into_iter().flatten() {
            if m["CachingEnabled"].as_bool() != Some(true) {
                continue;
            }
            // API Gateway's default TTL is 300 s, at most 3600.
            let ttl = as_u64(&m["CacheTtlInSeconds"]).unwrap_or(300).min(3600);
            let method = m["HttpMethod"].as_str().unwrap_or("*").to_uppercase();
            let path = method_settings_path(m["ResourcePath"].as_str().unwrap_or("/*"));
            let key = if path == "/*" && method == "*" {
                "*".to_owned()
            } else {
                format!("{method} {path}")
            };
            cache_ttls.insert(key, ttl);
        }
    }

    ApiConfig {
        logical_id: id.to_owned(),
        kind,
        stage,
        stage_variables,
        routes: Vec::new(),
        binary_media_types,
        stage_throttle,
        route_throttles,
        usage_plans: Vec::new(),
        cors,
        authorizers,
        default_authorizer,
        default_api_key_required: kind == ApiKind::Rest
            && auth["ApiKeyRequired"].as_bool().unwrap_or(false),
        api_key_from_authorizer: kind == ApiKind::Rest
            && props["ApiKeySourceType"].as_str() == Some("AUTHORIZER"),
        authorizer_on_preflight: auth["AddDefaultAuthorizerToCorsPreflight"]
            .as_bool()
            .unwrap_or(true),
        api_key_on_preflight: auth["AddApiKeyRequiredToCorsPreflight"]
            .as_bool()
            .unwrap_or(true),
        cache_ttls,
        notes: Vec::new(),
        gateway_responses: gateway_responses(
            &props["GatewayResponses"],
            &format!("{source}.GatewayResponses"),
            errors,
        ),
    }
}

/// A map of response type to declaration (SAM's `GatewayResponses`, OpenAPI's
/// `x-amazon-apigateway-gateway-responses`).
pub(crate) fn gateway_responses(
    v: &Value,
    at: &str,
    errors: &mut Vec<String>,
) -> BTreeMap<String, crate::gateway_responses::GatewayResponse> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(ty, r)| {
            let read = crate::gateway_responses::read(ty, r, &format!("{at}.{ty}"), errors)?;
            Some((ty.clone(), read))
        })
        .collect()
}

/// `MethodSettings` paths are `/` followed by the resource path with its `/` escaped as `~1`:
/// `/~1items~1{id}` is `/items/{id}`; `/*` stands for every resource.
fn method_settings_path(p: &str) -> String {
    if p == "/*" {
        return p.to_owned();
    }
    let escaped = p.strip_prefix('/').unwrap_or(p);
    if escaped.starts_with("~1") {
        escaped.replace("~1", "/")
    } else {
        p.to_owned()
    }
}

/// A whole-number property. CloudFormation takes numbers written as strings, which is also
/// what a `Number` parameter's `Ref` gives.
fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// A number property, as [`as_u64`].
fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// The strings of a list property; anything else counts as none.
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// The function name in a Lambda ARN (`...:function:Name`), or the value itself.
fn function_name(arn: &str) -> String {
    match arn.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest).to_owned(),
        None => arn.to_owned(),
    }
}

/// `method.request.header.Authorization` or `$request.header.Authorization` -> `header:authorization`.
fn identity_source(s: &str) -> Option<String> {
    let s = s.trim();
    let rest = s
        .strip_prefix("method.request.")
        .or_else(|| s.strip_prefix("$request."))?;
    let (kind, name) = rest.split_once('.')?;
    match kind {
        "header" => Some(format!("header:{}", name.to_lowercase())),
        "querystring" => Some(format!("query:{name}")),
        _ => None,
    }
}

pub(crate) fn authorizer(kind: ApiKind, a: &Value, path: &str) -> Result<AuthorizerConfig, String> {
    if !a["UserPoolArn"].is_null() {
        return Err(format!("{path}: Cognito user pool authorizers are not supported by nimbus; use a JWT authorizer on an HTTP API or a Lambda authorizer"));
    }
    if let Some(jwt) = a.get("JwtConfiguration") {
        if kind != ApiKind::Http {
            return Err(format!(
                "{path}.JwtConfiguration: JWT authorizers exist on HTTP APIs only"
            ));
        }
        let issuer = jwt["issuer"]
            .as_str()
            .ok_or_else(|| format!("{path}.JwtConfiguration.issuer: required"))?;
        let audiences = strings(&jwt["audience"]);
        return Ok(AuthorizerConfig::Jwt {
            issuer: issuer.to_owned(),
            audiences,
            identity_source: a["IdentitySource"]
                .as_str()
                .unwrap_or("$request.header.Authorization")
                .to_owned(),
        });
    }
    let function = a["FunctionArn"]
        .as_str()
        .map(function_name)
        .ok_or_else(|| {
            format!(
                "{path}: an authorizer needs FunctionArn (a Lambda authorizer) or JwtConfiguration"
            )
        })?;
    let identity = &a["Identity"];
    let ttl_secs = as_u64(&identity["ReauthorizeEvery"])
        .unwrap_or(300)
        .min(3600);
    let lambda_kind = match kind {
        ApiKind::Rest => match a["FunctionPayloadType"].as_str().unwrap_or("TOKEN") {
            "TOKEN" => LambdaAuthorizerKind::RestToken,
            "REQUEST" => LambdaAuthorizerKind::RestRequest,
            other => {
                return Err(format!(
                    "{path}.FunctionPayloadType: {other:?} is not TOKEN or REQUEST"
                ))
            }
        },
        ApiKind::Http => match a["AuthorizerPayloadFormatVersion"]
            .as_str()
            .or_else(|| a["AuthorizerPayloadFormatVersion"].as_f64().map(|_| "2.0"))
        {
            Some("1.0") => LambdaAuthorizerKind::HttpV1,
            Some("2.0") | None => LambdaAuthorizerKind::HttpV2 {
                simple: a["EnableSimpleResponses"].as_bool().unwrap_or(false),
            },
            Some(other) => {
                return Err(format!(
                    "{path}.AuthorizerPayloadFormatVersion: {other:?} is not 1.0 or 2.0"
                ))
            }
        },
    };
    let mut identity_sources = Vec::new();
    match lambda_kind {
        LambdaAuthorizerKind::RestToken => {
            let header = identity["Header"].as_str().unwrap_or("Authorization");
            identity_sources.push(format!("header:{}", header.to_lowercase()));
        }
        _ => {
            // SAM's `Identity` lists, in the `kind:name` form `auth::identity_values` reads.
            for (field, kind) in [
                ("Headers", "header"),
                ("QueryStrings", "query"),
                ("StageVariables", "stage"),
                ("Context", "context"),
            ] {
                for name in strings(&identity[field]) {
                    // Header names are case-insensitive; the others are not.
                    let name = if kind == "header" {
                        name.to_lowercase()
                    } else {
                        name
                    };
                    identity_sources.push(format!("{kind}:{name}"));
                }
            }
        }
    }
    if let Some(raw) = a["IdentitySource"].as_str() {
        identity_sources.extend(raw.split(',').filter_map(identity_source));
    }
    Ok(AuthorizerConfig::Lambda {
        function,
        kind: lambda_kind,
        identity_sources,
        ttl_secs,
    })
}

fn route_from_event(
    kind: ApiKind,
    props: &Value,
    function: &str,
    source: &str,
    api: &ApiConfig,
) -> Result<RouteConfig, String> {
    let path = props["Path"].as_str();
    let method = props["Method"].as_str();
    let (method, path) = match (kind, method, path) {
        (_, Some(m), Some(p)) => (normalise_method(m, source)?, p.to_owned()),
        // An HttpApi event without Path and Method is the API's $default route.
        (ApiKind::Http, None, None) => ("ANY".to_owned(), "$default".to_owned()),
        (_, None, _) => {
            return Err(format!(
                "{source}.Properties.Method: required (e.g. get, post, any)"
            ))
        }
        (_, _, None) => {
            return Err(format!(
                "{source}.Properties.Path: required (e.g. /items/{{id}})"
            ))
        }
    };
    if path != "$default" && !path.starts_with('/') {
        return Err(format!(
            "{source}.Properties.Path: {path:?} must start with /"
        ));
    }
    let payload = match (kind, props["PayloadFormatVersion"].as_str()) {
        (ApiKind::Rest, _) => PayloadVersion::V1,
        (ApiKind::Http, None | Some("2.0")) => PayloadVersion::V2,
        (ApiKind::Http, Some("1.0")) => PayloadVersion::V1,
        (ApiKind::Http, Some(other)) => {
            return Err(format!(
                "{source}.Properties.PayloadFormatVersion: {other:?} is not 1.0 or 2.0"
            ))
        }
    };
    let default_timeout = match kind {
        ApiKind::Rest => Duration::from_millis(29_000),
        ApiKind::Http => Duration::from_millis(30_000),
    };
    let timeout = match &props["TimeoutInMillis"] {
        Value::Null => default_timeout,
        v => match as_u64(v) {
            Some(ms) if (50..=30_000).contains(&ms) => Duration::from_millis(ms),
            _ => {
                return Err(format!(
                    "{source}.Properties.TimeoutInMillis: expected 50 to 30000, got {v}"
                ))
            }
        },
    };
    let auth = &props["Auth"];
    let authorizer = match auth["Authorizer"].as_str() {
        Some("NONE") => None,
        Some(name) if api.authorizers.contains_key(name) => Some(name.to_owned()),
        Some(name) => {
            return Err(format!(
                "{source}.Properties.Auth.Authorizer: {} has no authorizer named {name:?}; declare it in Auth.Authorizers of the API",
                api.logical_id
            ))
        }
        None => api.default_authorizer.clone(),
    };
    let authorization_scopes = strings(&auth["AuthorizationScopes"]);
    let key = format!("{method} {path}");
    // Caching is GET-only unless MethodSettings names the method explicitly.
    let cache_ttl = api
        .cache_ttls
        .get(&key)
        .or_else(|| api.cache_ttls.get(&format!("* {path}")))
        .copied()
        .or_else(|| {
            (method == "GET")
                .then(|| api.cache_ttls.get("*").copied())
                .flatten()
        })
        .unwrap_or(0);
    Ok(RouteConfig {
        method,
        path,
        function: function.to_owned(),
        payload,
        timeout,
        api_key_required: auth["ApiKeyRequired"]
            .as_bool()
            .unwrap_or(api.default_api_key_required),
        authorizer,
        authorization_scopes,
        cache_ttl,
        source: source.to_owned(),
        validation: None,
        unserved: None,
        service: None,
        rest: None,
        response_parameters: BTreeMap::new(),
    })
}

fn normalise_method(m: &str, source: &str) -> Result<String, String> {
    let upper = m.to_uppercase();
    const METHODS: [&str; 8] = [
        "ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
    ];
    if METHODS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(format!("{source}.Properties.Method: {m:?} is not an HTTP method (use get, post, put, patch, delete, head, options or any)"))
    }
}

fn string_map(v: &Value, path: &str, errors: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match v {
        Value::Null => {}
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) => {
                        out.insert(k.clone(), s.clone());
                    }
                    Value::Number(n) => {
                        out.insert(k.clone(), n.to_string());
                    }
                    Value::Bool(b) => {
                        out.insert(k.clone(), b.to_string());
                    }
                    other => errors.push(format!("{path}.{k}: expected a string, got {other}")),
                }
            }
        }
        other => errors.push(format!(
            "{path}: expected a map of names to strings, got {other}"
        )),
    }
    out
}

fn throttle(
    v: &Value,
    rate_key: &str,
    burst_key: &str,
    path: &str,
    errors: &mut Vec<String>,
) -> Option<Throttle> {
    let rate = &v[rate_key];
    let burst = &v[burst_key];
    if rate.is_null() && burst.is_null() {
        return None;
    }
    let rate_value = match rate {
        Value::Null => f64::MAX,
        r => match as_f64(r) {
            Some(r) if r >= 0.0 => r,
            _ => {
                errors.push(format!(
                    "{path}.{rate_key}: expected a number of requests per second, got {r}"
                ));
                return None;
            }
        },
    };
    let burst_value = match burst {
        Value::Null => u32::MAX,
        b => match as_u64(b).and_then(|b| u32::try_from(b).ok()) {
            Some(b) => b,
            None => {
                errors.push(format!(
                    "{path}.{burst_key}: expected a whole number of requests, got {b}"
                ));
                return None;
            }
        },
    };
    Some(Throttle {
        rate: rate_value,
        burst: burst_value,
    })
}

fn quota(v: &Value, path: &str, errors: &mut Vec<String>) -> Option<QuotaConfig> {
    if v.is_null() {
        return None;
    }
    let limit = as_u64(&v["Limit"]);
    let period = v["Period"].as_str().and_then(Period::parse);
    match (limit, period) {
        (Some(limit), Some(period)) => Some(QuotaConfig {
            limit,
            period,
            offset: as_u64(&v["Offset"]).unwrap_or(0),
        }),
        _ => {
            errors.push(format!("{path}: a quota needs Limit (a whole number) and Period (DAY, WEEK or MONTH), got {v}"));
            None
        }
    }
}

/// Usage plans and keys: SAM's `Auth.UsagePlan` on `AWS::Serverless::Api` (which creates a
/// plan and a key), and `AWS::ApiGateway::UsagePlan` / `ApiKey` / `UsagePlanKey` resources.
fn attach_usage_plans(
    stack: &Stack,
    apis: &mut BTreeMap<String, ApiConfig>,
    new_key: KeyGenerator<'_>,
    errors: &mut Vec<String>,
) {
    // SAM-generated plans. SHARED puts every such API under one plan and key.
    let mut shared: Option<(UsagePlan, Vec<String>)> = None;
    for (id, r) in &stack.resources {
        if r.resource_type != "AWS::Serverless::Api" {
            continue;
        }
        let plan = &r.properties["Auth"]["UsagePlan"];
        let path = format!("Resources.{id}.Properties.Auth.UsagePlan");
        let make = |plan_id: String,
                    key_id: String,
                    errors: &mut Vec<String>,
                    new_key: KeyGenerator<'_>| UsagePlan {
            id: plan_id,
            throttle: throttle(
                &plan["Throttle"],
                "RateLimit",
                "BurstLimit",
                &format!("{path}.Throttle"),
                errors,
            ),
            quota: quota(&plan["Quota"], &format!("{path}.Quota"), errors),
            keys: vec![ApiKey {
                id: key_id,
                value: new_key(),
                enabled: true,
                generated: true,
            }],
        };
        match plan["CreateUsagePlan"].as_str() {
            None | Some("NONE") => {}
            Some("PER_API") => {
                let p = make(
                    format!("{id}UsagePlan"),
                    format!("{id}ApiKey"),
                    errors,
                    new_key,
                );
                if let Some(api) = apis.get_mut(id) {
                    api.usage_plans.push(p);
                }
            }
            Some("SHARED") => match &mut shared {
                Some((_, members)) => members.push(id.clone()),
                None => {
                    let p = make(
                        "ServerlessUsagePlan".into(),
                        "ServerlessApiKey".into(),
                        errors,
                        new_key,
                    );
                    shared = Some((p, vec![id.clone()]));
                }
            },
            Some(other) => errors.push(format!(
                "{path}.CreateUsagePlan: {other:?} is not PER_API, SHARED or NONE"
            )),
        }
    }
    if let Some((plan, members)) = shared {
        for id in members {
            if let Some(api) = apis.get_mut(&id) {
                api.usage_plans.push(plan.clone());
            }
        }
    }

    // CloudFormation resources.
    let mut keys: BTreeMap<String, ApiKey> = BTreeMap::new();
    for (id, r) in &stack.resources {
        if r.resource_type == "AWS::ApiGateway::ApiKey" {
            let value = match r.properties["Value"].as_str() {
                Some(v) if v.len() >= 20 => v.to_owned(),
                Some(_) => {
                    errors.push(format!("Resources.{id}.Properties.Value: API key values are at least 20 characters"));
                    continue;
                }
                None => new_key(),
            };
            keys.insert(
                id.clone(),
                ApiKey {
                    id: id.clone(),
                    generated: r.properties["Value"].is_null(),
                    value,
                    enabled: r.properties["Enabled"].as_bool().unwrap_or(false),
                },
            );
        }
    }
    let mut plan_keys: BTreeMap<String, Vec<(String, ApiKey)>> = BTreeMap::new();
    for (id, r) in &stack.resources {
        if r.resource_type == "AWS::ApiGateway::UsagePlanKey" {
            let key_id = r.properties["KeyId"].as_str().unwrap_or_default();
            let plan_id = r.properties["UsagePlanId"].as_str().unwrap_or_default();
            match keys.get(key_id) {
                Some(k) => plan_keys
                    .entry(plan_id.to_owned())
                    .or_default()
                    .push((id.clone(), k.clone())),
                None => errors.push(format!(
                    "Resources.{id}.Properties.KeyId: no AWS::ApiGateway::ApiKey named {key_id:?}"
                )),
            }
        }
    }
    // Keys the template adds to SAM's own plans (`UsagePlanId: !Ref MyApiUsagePlan`).
    let sam_plans: BTreeSet<String> = apis
        .values()
        .flat_map(|a| a.usage_plans.iter().map(|p| p.id.clone()))
        .collect();
    for api in apis.values_mut() {
        for plan in &mut api.usage_plans {
            if let Some(extra) = plan_keys.get(&plan.id) {
                plan.keys.extend(extra.iter().map(|(_, k)| k.clone()));
            }
        }
    }
    for (plan_id, entries) in &plan_keys {
        let declared = sam_plans.contains(plan_id)
            || stack
                .resources
                .get(plan_id)
                .is_some_and(|r| r.resource_type == "AWS::ApiGateway::UsagePlan");
        if !declared {
            for (id, _) in entries {
                errors.push(format!(
                    "Resources.{id}.Properties.UsagePlanId: no usage plan named {plan_id:?} (an AWS::ApiGateway::UsagePlan, or the {{Api}}UsagePlan SAM creates for Auth.UsagePlan)"
                ));
            }
        }
    }
    let mut plan_keys: BTreeMap<String, Vec<ApiKey>> = plan_keys
        .into_iter()
        .map(|(plan, entries)| (plan, entries.into_iter().map(|(_, k)| k).collect()))
        .collect();
    for (id, r) in &stack.resources {
        if r.resource_type != "AWS::ApiGateway::UsagePlan" || sam_plans.contains(id) {
            continue;
        }
        let path = format!("Resources.{id}.Properties");
        let plan = UsagePlan {
            id: id.clone(),
            throttle: throttle(
                &r.properties["Throttle"],
                "RateLimit",
                "BurstLimit",
                &format!("{path}.Throttle"),
                errors,
            ),
            quota: quota(&r.properties["Quota"], &format!("{path}.Quota"), errors),
            keys: plan_keys.remove(id).unwrap_or_default(),
        };
        for (i, stage) in r.properties["ApiStages"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            // `ApiId: !Ref MyApi` resolves to the API's logical id.
            let api_id = stage["ApiId"].as_str().unwrap_or_default();
            match apis.get_mut(api_id) {
                Some(api) if api.kind == ApiKind::Rest => {
                    if stage["Stage"].as_str().is_some_and(|s| s != api.stage) {
                        errors.push(format!("{path}.ApiStages[{i}].Stage: {api_id} has stage {:?}, not {}", api.stage, stage["Stage"]));
                    }
                    api.usage_plans.push(plan.clone());
                }
                _ => errors.push(format!("{path}.ApiStages[{i}].ApiId: no REST API (AWS::Serverless::Api) named {api_id:?}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<Vec<ApiConfig>, Vec<String>> {
        let stack = nimbus_template::load(yaml, "t.yaml", &Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut n = 0;
        apis(&stack, &mut || {
            n += 1;
            format!("generated-key-{n:0>26}")
        })
    }

    const HEAD: &str = "Transform: AWS::Serverless-2016-10-31\nResources:\n";

    fn function(events: &str) -> String {
        format!("  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: f\n      Runtime: provided.al2023\n      Events:\n{events}")
    }

    #[test]
    fn events_without_an_api_go_to_the_implicit_apis_with_sams_defaults() {
        let yaml = format!(
            "{HEAD}{}",
            function("        A:\n          Type: Api\n          Properties: {Path: /a, Method: get}\n        H:\n          Type: HttpApi\n          Properties: {Path: /h, Method: post, TimeoutInMillis: 500}\n        D:\n          Type: HttpApi\n")
        );
        let apis = load(&yaml).unwrap();
        let rest = apis
            .iter()
            .find(|a| a.logical_id == "ServerlessRestApi")
            .unwrap();
        assert_eq!((rest.kind, rest.stage.as_str()), (ApiKind::Rest, "Prod"));
        assert_eq!(rest.routes[0].key(), "GET /a");
        assert_eq!(rest.routes[0].payload, PayloadVersion::V1);
        assert_eq!(rest.routes[0].timeout, Duration::from_secs(29));
        let http = apis
            .iter()
            .find(|a| a.logical_id == "ServerlessHttpApi")
            .unwrap();
        assert_eq!(http.stage, "$default");
        let keys: Vec<String> = http.routes.iter().map(RouteConfig::key).collect();
        assert_eq!(keys, ["$default", "POST /h"]);
        assert_eq!(http.routes[1].payload, PayloadVersion::V2);
        assert_eq!(http.routes[1].timeout, Duration::from_millis(500));
    }

    #[test]
    fn numbers_from_number_parameters_are_accepted() {
        // A `Number` parameter's Ref resolves to a string, as in CloudFormation.
        let yaml = format!(
            "{HEAD}  Api:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: live\n      Auth:\n        ApiKeyRequired: true\n        UsagePlan:\n          CreateUsagePlan: PER_API\n          Throttle: {{RateLimit: '2.5', BurstLimit: '4'}}\n          Quota: {{Limit: '100', Period: DAY}}\n{}",
            function("        A:\n          Type: Api\n          Properties: {RestApiId: !Ref Api, Path: /a, Method: get}\n")
        );
        let apis = load(&yaml).unwrap();
        let plan = &apis[0].usage_plans[0];
        assert_eq!(
            plan.throttle,
            Some(Throttle {
                rate: 2.5,
                burst: 4
            })
        );
        assert_eq!(plan.quota.as_ref().map(|q| q.limit), Some(100));
    }

    #[test]
    fn usage_plans_throttles_and_cache_settings_are_read() {
        let yaml = format!(
            "{HEAD}  Api:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: live\n      CacheClusterEnabled: true\n      MethodSettings:\n        - {{HttpMethod: '*', ResourcePath: '/*', ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10, CachingEnabled: true, CacheTtlInSeconds: 30}}\n        - {{HttpMethod: GET, ResourcePath: '/~1hot', ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100}}\n      Auth:\n        ApiKeyRequired: true\n        UsagePlan:\n          CreateUsagePlan: PER_API\n          Throttle: {{RateLimit: 1, BurstLimit: 2}}\n          Quota: {{Limit: 100, Period: WEEK}}\n{}",
            function("        A:\n          Type: Api\n          Properties: {RestApiId: !Ref Api, Path: /hot, Method: get}\n        B:\n          Type: Api\n          Properties: {RestApiId: !Ref Api, Path: /cold, Method: post, Auth: {ApiKeyRequired: false}}\n")
        );
        let apis = load(&yaml).unwrap();
        let api = &apis[0];
        assert_eq!(api.stage, "live");
        assert_eq!(
            api.stage_throttle,
            Some(Throttle {
                rate: 5.0,
                burst: 10
            })
        );
        assert_eq!(
            api.route_throttles["GET /hot"],
            Throttle {
                rate: 50.0,
                burst: 100
            }
        );
        let plan = &api.usage_plans[0];
        assert_eq!(plan.id, "ApiUsagePlan");
        assert_eq!(plan.keys[0].id, "ApiApiKey");
        assert!(plan.keys[0].generated);
        assert_eq!(
            plan.quota,
            Some(QuotaConfig {
                limit: 100,
                period: Period::Week,
                offset: 0
            })
        );
        let hot = api.routes.iter().find(|r| r.path == "/hot").unwrap();
        let cold = api.routes.iter().find(|r| r.path == "/cold").unwrap();
        assert!(hot.api_key_required && !cold.api_key_required);
        assert_eq!(
            (hot.cache_ttl, cold.cache_ttl),
            (30, 0),
            "only GET is cached by default"
        );
    }

    #[test]
    fn mistakes_are_reported_together_with_where_they_are() {
        let yaml = format!(
            "{HEAD}{}",
            function("        A:\n          Type: Api\n          Properties: {RestApiId: Missing, Path: /a, Method: get}\n        B:\n          Type: Api\n          Properties: {Path: /b, Method: fetch}\n        C:\n          Type: HttpApi\n          Properties: {Path: /c, Method: get, PayloadFormatVersion: '3.0'}\n        D:\n          Type: Api\n          Properties: {Path: nope, Method: get}\n        E:\n          Type: Api\n          Properties: {Method: get}\n")
        );
        let errors = load(&yaml).unwrap_err();
        assert_eq!(
            errors,
            [
                "Resources.F.Properties.Events.A.Properties.RestApiId: no API named Missing in the template",
                "Resources.F.Properties.Events.B.Properties.Method: \"fetch\" is not an HTTP method (use get, post, put, patch, delete, head, options or any)",
                "Resources.F.Properties.Events.C.Properties.PayloadFormatVersion: \"3.0\" is not 1.0 or 2.0",
                "Resources.F.Properties.Events.D.Properties.Path: \"nope\" must start with /",
                "Resources.F.Properties.Events.E.Properties.Path: required (e.g. /items/{id})",
            ]
        );
    }

    #[test]
    fn the_same_route_twice_is_an_error() {
        let yaml = format!(
            "{HEAD}{}",
            function("        A:\n          Type: Api\n          Properties: {Path: /a, Method: get}\n        B:\n          Type: Api\n          Properties: {Path: /a, Method: GET}\n")
        );
        let errors = load(&yaml).unwrap_err();
        assert_eq!(
            errors,
            ["Resources.F.Properties.Events.B: route GET /a of ServerlessRestApi is also declared by Resources.F.Properties.Events.A"]
        );
    }

    #[test]
    fn authorizers_are_read_and_routes_get_the_default_unless_they_opt_out() {
        let yaml = format!(
            "{HEAD}  Api:\n    Type: AWS::Serverless::HttpApi\n    Properties:\n      Auth:\n        DefaultAuthorizer: L\n        Authorizers:\n          L:\n            FunctionArn: arn:aws:lambda:us-east-1:123456789012:function:Auth\n            EnableSimpleResponses: true\n            Identity: {{Headers: [X-Token], ReauthorizeEvery: 60}}\n{}",
            function("        A:\n          Type: HttpApi\n          Properties: {ApiId: !Ref Api, Path: /a, Method: get}\n        B:\n          Type: HttpApi\n          Properties: {ApiId: !Ref Api, Path: /b, Method: get, Auth: {Authorizer: NONE}}\n")
        );
        let api = &load(&yaml).unwrap()[0];
        assert_eq!(
            api.authorizers["L"],
            AuthorizerConfig::Lambda {
                function: "Auth".into(),
                kind: LambdaAuthorizerKind::HttpV2 { simple: true },
                identity_sources: vec!["header:x-token".into()],
                ttl_secs: 60,
            }
        );
        let by_path = |p: &str| {
            api.routes
                .iter()
                .find(|r| r.path == p)
                .unwrap()
                .authorizer
                .clone()
        };
        assert_eq!(by_path("/a"), Some("L".into()));
        assert_eq!(by_path("/b"), None);
    }

    #[test]
    fn a_template_key_joins_the_usage_plan_sam_creates_for_an_api() {
        let yaml = format!(
            "{HEAD}  Slow:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: Prod\n      Auth:\n        ApiKeyRequired: true\n        UsagePlan: {{CreateUsagePlan: PER_API}}\n  Key:\n    Type: AWS::ApiGateway::ApiKey\n    Properties: {{Value: abcdefghijklmnopqrstuvwxyz, Enabled: true}}\n  InPlan:\n    Type: AWS::ApiGateway::UsagePlanKey\n    Properties: {{KeyId: !Ref Key, KeyType: API_KEY, UsagePlanId: !Ref SlowUsagePlan}}\n{}",
            function("        A:\n          Type: Api\n          Properties: {RestApiId: !Ref Slow, Path: /a, Method: post}\n")
        );
        let apis = load(&yaml).unwrap();
        let plan = &apis[0].usage_plans[0];
        assert_eq!(plan.id, "SlowUsagePlan");
        let keys: Vec<&str> = plan.keys.iter().map(|k| k.value.as_str()).collect();
        assert_eq!(
            keys,
            [
                "generated-key-00000000000000000000000001",
                "abcdefghijklmnopqrstuvwxyz"
            ]
        );

        let wrong = yaml.replace("!Ref SlowUsagePlan", "nope");
        assert_eq!(
            load(&wrong).unwrap_err(),
            ["Resources.InPlan.Properties.UsagePlanId: no usage plan named \"nope\" (an AWS::ApiGateway::UsagePlan, or the {Api}UsagePlan SAM creates for Auth.UsagePlan)"]
        );
    }
}
