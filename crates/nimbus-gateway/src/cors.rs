//! CORS as each API flavour does it, from the template's `Cors` / `CorsConfiguration`.
//!
//! REST APIs (`AWS::Serverless::Api` `Cors`): SAM adds, to every path of the definition that has
//! no `OPTIONS` method yet, an `OPTIONS` method whose mock integration answers 200 with the
//! configured values as static headers (samtranslator `SwaggerEditor.add_cors`). Nothing else:
//! SAM's own comment says that with the `aws_proxy` integration it cannot put the headers into
//! the function's responses, "this is something customers have to implement themselves". So the
//! preflight ignores `Origin` entirely, and [`apply`] adds nothing to a REST response. Every value
//! is an API Gateway mapping expression, so a literal must be single-quoted (`"'GET,POST'"`); an
//! unquoted one fails the deployment with "Invalid mapping expression specified".
//!
//! HTTP APIs (`AWS::Serverless::HttpApi` `CorsConfiguration`): API Gateway itself answers a
//! preflight (an `OPTIONS` request with `Origin` and `Access-Control-Request-Method`) even
//! without an `OPTIONS` route, adds the configured headers to integration responses of requests
//! that carry `Origin`, and ignores CORS headers the integration returned
//! (<https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-cors.html>). Origins
//! match exactly, or by `*`, `https://*` or `http://*`, the only patterns that page lists.
//!
//! Where AWS documents no detail, these choices hold (each is what browsers need, so a page
//! that works here works there): the HTTP API preflight answers 204 with an empty body; it
//! echoes the request's origin unless `*` is configured; it sends `Access-Control-Allow-Methods`
//! / `-Headers` (the configured lists, comma-joined) only when the requested method / every
//! requested header is allowed, and no CORS header at all for an origin that is not allowed;
//! origins, methods and header names compare ASCII case-insensitively; a response that echoes
//! an origin also gets `Vary: Origin`, so a shared cache never serves one origin's answer to
//! another.

use serde_json::{Map, Value};

use crate::{GatewayRequest, GatewayResponse};

/// The CORS settings of one API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsConfig {
    Rest(RestCors),
    Http(HttpCors),
}

/// `AWS::Serverless::Api` `Cors`: the static header values of the generated `OPTIONS` method,
/// with SAM's quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestCors {
    /// Sent verbatim: SAM passes a comma-separated list through as one header value, which
    /// browsers reject (SAM issue 3769); nimbus does the same so the bug shows up locally.
    pub allow_origin: String,
    pub allow_headers: Option<String>,
    /// `None`: SAM lists the methods of each path plus `OPTIONS`; see [`CorsConfig::for_path`].
    pub allow_methods: Option<String>,
    pub max_age: Option<String>,
    pub allow_credentials: bool,
}

/// `AWS::Serverless::HttpApi` `CorsConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpCors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    /// Seconds, -1 to 86400 (the API's `IntegerWithLengthBetweenMinus1And86400`).
    pub max_age: Option<i32>,
    pub allow_credentials: bool,
}

/// What SAM answers for a path with `ANY`: `_ALL_HTTP_METHODS`, sorted.
const ALL_METHODS: &str = "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT";

const REST_KEYS: [&str; 5] = [
    "AllowMethods",
    "AllowHeaders",
    "AllowOrigin",
    "MaxAge",
    "AllowCredentials",
];
const HTTP_KEYS: [&str; 6] = [
    "AllowMethods",
    "AllowHeaders",
    "AllowOrigins",
    "MaxAge",
    "ExposeHeaders",
    "AllowCredentials",
];

/// Reads `AWS::Serverless::Api` `Cors`: a quoted origin (`"'*'"`) or an object. `Ok(None)`: no
/// CORS, as SAM skips a value that Python finds false (`null`, `""`, `{}`).
pub fn from_sam_rest(v: &Value) -> Result<Option<CorsConfig>, String> {
    let props = match v {
        Value::Null => return Ok(None),
        Value::String(s) if s.is_empty() => return Ok(None),
        Value::String(s) => {
            return Ok(Some(CorsConfig::Rest(RestCors {
                allow_origin: unquote(s, "Cors")?,
                allow_headers: None,
                allow_methods: None,
                max_age: None,
                allow_credentials: false,
            })))
        }
        Value::Object(m) if m.is_empty() => return Ok(None),
        Value::Object(m) => m,
        _ => return Err("Cors must be a quoted origin such as \"'*'\" or an object".into()),
    };
    check_keys(props, &REST_KEYS, "Cors")?;
    let quoted = |key: &str| -> Result<Option<String>, String> {
        match props.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => unquote(s, &format!("Cors.{key}")).map(Some),
            Some(_) => Err(format!(
                "Cors.{key} must be a quoted string such as \"'value'\""
            )),
        }
    };
    // SAM's default origin is "'*'".
    let allow_origin = quoted("AllowOrigin")?.unwrap_or_else(|| "*".to_owned());
    let max_age = match props.get("MaxAge") {
        // SAM's own tests write `MaxAge: 600`; it reaches the header as the number.
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => quoted("MaxAge")?,
    };
    let allow_credentials = credentials(props, "Cors")?;
    if allow_credentials && allow_origin == "*" {
        return Err(
            "Cors.AllowCredentials cannot be true when Cors.AllowOrigin is \"'*'\" or \
                    not set (SAM rejects it; browsers refuse credentials with a wildcard origin)"
                .into(),
        );
    }
    Ok(Some(CorsConfig::Rest(RestCors {
        allow_origin,
        allow_headers: quoted("AllowHeaders")?,
        allow_methods: quoted("AllowMethods")?,
        max_age,
        allow_credentials,
    })))
}

/// Reads `AWS::Serverless::HttpApi` `CorsConfiguration`: `true` (every origin) or an object of
/// lists. `Ok(None)`: no CORS (`false`, `null`, `{}`).
pub fn from_sam_http(v: &Value) -> Result<Option<CorsConfig>, String> {
    let props = match v {
        Value::Null | Value::Bool(false) => return Ok(None),
        Value::Bool(true) => {
            return Ok(Some(CorsConfig::Http(HttpCors {
                allow_origins: vec!["*".into()],
                ..HttpCors::default()
            })))
        }
        Value::Object(m) if m.is_empty() => return Ok(None),
        Value::Object(m) => m,
        _ => return Err("CorsConfiguration must be true, false or an object".into()),
    };
    check_keys(props, &HTTP_KEYS, "CorsConfiguration")?;
    let list = |key: &str| -> Result<Vec<String>, String> {
        match props.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
                    _ => Err(format!(
                        "CorsConfiguration.{key} must be a list of non-empty strings"
                    )),
                })
                .collect(),
            Some(_) => Err(format!("CorsConfiguration.{key} must be a list of strings")),
        }
    };
    let allow_methods = list("AllowMethods")?;
    if let Some(m) = allow_methods.iter().find(|m| m.len() > 64) {
        return Err(format!(
            "CorsConfiguration.AllowMethods: {m:?} is longer than 64 characters"
        ));
    }
    let max_age = match props.get("MaxAge") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(s @ -1..=86400) => Some(s as i32),
            _ => {
                return Err(format!(
                    "CorsConfiguration.MaxAge must be an integer from -1 to 86400, got {n}"
                ))
            }
        },
        Some(_) => return Err("CorsConfiguration.MaxAge must be an integer".into()),
    };
    let cors = HttpCors {
        allow_origins: list("AllowOrigins")?,
        allow_methods,
        allow_headers: list("AllowHeaders")?,
        expose_headers: list("ExposeHeaders")?,
        max_age,
        allow_credentials: credentials(props, "CorsConfiguration")?,
    };
    if cors.allow_credentials && cors.allow_origins.iter().any(|o| o == "*") {
        // API Gateway: "allow-credentials is not supported if 'allow-origin' is *".
        return Err("CorsConfiguration.AllowCredentials cannot be true when \
                    CorsConfiguration.AllowOrigins contains \"*\""
            .into());
    }
    Ok(Some(CorsConfig::Http(cors)))
}

impl CorsConfig {
    /// The configuration one REST path answers with: SAM fills a missing `AllowMethods` with the
    /// path's methods plus `OPTIONS`, sorted, or every method when the path has `ANY`.
    /// `methods` are those of the routes on that path (`GET`, `ANY`, ...).
    pub fn for_path(&self, methods: &[&str]) -> CorsConfig {
        match self {
            CorsConfig::Rest(r) if r.allow_methods.is_none() => {
                let value = if methods.iter().any(|m| m.eq_ignore_ascii_case("ANY")) {
                    ALL_METHODS.to_owned()
                } else {
                    let mut all: Vec<String> = methods
                        .iter()
                        .map(|m| m.to_ascii_uppercase())
                        .chain(std::iter::once("OPTIONS".to_owned()))
                        .collect();
                    all.sort();
                    all.dedup();
                    all.join(",")
                };
                CorsConfig::Rest(RestCors {
                    allow_methods: Some(value),
                    ..r.clone()
                })
            }
            _ => self.clone(),
        }
    }
}

/// The answer to an `OPTIONS` request, or `None` when this flavour does not answer it itself
/// (the request then goes through routing like any other).
///
/// REST: any `OPTIONS` request, Origin or not, gets the mock's 200 with the static headers;
/// call it only for paths without an `OPTIONS` route of their own (SAM then skips the path),
/// and with [`CorsConfig::for_path`] applied (otherwise every method is listed). SAM applies a
/// default authorizer and a required API key to these methods too unless
/// `AddDefaultAuthorizerToCorsPreflight` / `AddApiKeyRequiredToCorsPreflight` is false.
///
/// HTTP API: only a real preflight (`Origin` and `Access-Control-Request-Method`) is answered,
/// 204, without invoking any integration. Authorization of the route it matches still applies
/// on AWS: the guide's `$default` caveat, where an authorizer on `$default` catches preflights.
pub fn preflight(cors: &CorsConfig, req: &GatewayRequest) -> Option<GatewayResponse> {
    if req.method != "OPTIONS" {
        return None;
    }
    match cors {
        CorsConfig::Rest(r) => Some(rest_preflight(r)),
        CorsConfig::Http(h) => {
            let origin = header(req, "origin")?;
            let method = header(req, "access-control-request-method")?;
            let mut resp = GatewayResponse {
                status: 204,
                headers: Vec::new(),
                body: Vec::new(),
            };
            let Some(allow_origin) = allowed_origin(h, origin) else {
                return Some(resp);
            };
            let headers = &mut resp.headers;
            push_allow_origin(headers, &allow_origin);
            if h.allow_credentials {
                headers.push(("access-control-allow-credentials".into(), "true".into()));
            }
            if contains(&h.allow_methods, method.trim()) {
                headers.push((
                    "access-control-allow-methods".into(),
                    h.allow_methods.join(","),
                ));
            }
            let requested = header(req, "access-control-request-headers").unwrap_or_default();
            let all_allowed = requested
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .all(|n| contains(&h.allow_headers, n));
            if !h.allow_headers.is_empty() && all_allowed {
                headers.push((
                    "access-control-allow-headers".into(),
                    h.allow_headers.join(","),
                ));
            }
            if let Some(age) = h.max_age {
                headers.push(("access-control-max-age".into(), age.to_string()));
            }
            Some(resp)
        }
    }
}

/// Adds the CORS headers API Gateway adds to an integration's response. REST: nothing (the
/// function must set them). HTTP API: drops the integration's own `Access-Control-*` headers,
/// then, for a request whose `Origin` is allowed, sets `Access-Control-Allow-Origin`,
/// `-Allow-Credentials` and `-Expose-Headers`.
pub fn apply(cors: &CorsConfig, req: &GatewayRequest, resp: &mut GatewayResponse) {
    let CorsConfig::Http(h) = cors else {
        return;
    };
    resp.headers.retain(|(name, _)| {
        !name
            .get(..15)
            .is_some_and(|p| p.eq_ignore_ascii_case("access-control-"))
    });
    let Some(allow_origin) = header(req, "origin").and_then(|o| allowed_origin(h, o)) else {
        return;
    };
    push_allow_origin(&mut resp.headers, &allow_origin);
    if h.allow_credentials {
        resp.headers
            .push(("access-control-allow-credentials".into(), "true".into()));
    }
    if !h.expose_headers.is_empty() {
        resp.headers.push((
            "access-control-expose-headers".into(),
            h.expose_headers.join(","),
        ));
    }
}

fn rest_preflight(r: &RestCors) -> GatewayResponse {
    let mut headers = vec![
        ("Content-Type".to_owned(), "application/json".to_owned()),
        (
            "Access-Control-Allow-Origin".to_owned(),
            r.allow_origin.clone(),
        ),
    ];
    // SAM skips the optional headers whose value is not given.
    if let Some(v) = &r.allow_headers {
        headers.push(("Access-Control-Allow-Headers".into(), v.clone()));
    }
    let methods = r.allow_methods.as_deref().unwrap_or(ALL_METHODS);
    headers.push(("Access-Control-Allow-Methods".into(), methods.to_owned()));
    if let Some(v) = &r.max_age {
        headers.push(("Access-Control-Max-Age".into(), v.clone()));
    }
    if r.allow_credentials {
        headers.push(("Access-Control-Allow-Credentials".into(), "true".into()));
    }
    GatewayResponse {
        status: 200,
        headers,
        // The mock's response template, `{}` and a newline, rendered as is.
        body: b"{}\n".to_vec(),
    }
}

/// How the response names the allowed origin.
enum AllowOrigin {
    Any,
    Echo(String),
}

fn allowed_origin(h: &HttpCors, origin: &str) -> Option<AllowOrigin> {
    if h.allow_origins.iter().any(|o| o == "*") {
        return Some(AllowOrigin::Any);
    }
    h.allow_origins
        .iter()
        .any(|allowed| match allowed.strip_suffix('*') {
            Some(scheme @ ("https://" | "http://")) => origin
                .get(..scheme.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(scheme)),
            _ => allowed.eq_ignore_ascii_case(origin),
        })
        .then(|| AllowOrigin::Echo(origin.to_owned()))
}

fn push_allow_origin(headers: &mut Vec<(String, String)>, allow: &AllowOrigin) {
    match allow {
        AllowOrigin::Any => headers.push(("access-control-allow-origin".into(), "*".into())),
        AllowOrigin::Echo(origin) => {
            headers.push(("access-control-allow-origin".into(), origin.clone()));
            let varies = headers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("vary")
                    && v.split(',')
                        .any(|t| t.trim().eq_ignore_ascii_case("origin"))
            });
            if !varies {
                headers.push(("vary".into(), "Origin".into()));
            }
        }
    }
}

fn contains(list: &[String], item: &str) -> bool {
    list.iter()
        .any(|v| v == "*" || v.eq_ignore_ascii_case(item))
}

fn header<'a>(req: &'a GatewayRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn unquote(s: &str, what: &str) -> Result<String, String> {
    match s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(inner) => Ok(inner.to_owned()),
        None => Err(format!(
            "{what}: {s:?} must be quoted, e.g. \"'{s}'\": API Gateway reads an unquoted value \
             as a mapping expression and rejects it (\"Invalid mapping expression specified\")"
        )),
    }
}

fn check_keys(props: &Map<String, Value>, known: &[&str], what: &str) -> Result<(), String> {
    match props.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{what}: unknown property {k:?} (expected one of {})",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

fn credentials(props: &Map<String, Value>, what: &str) -> Result<bool, String> {
    match props.get("AllowCredentials") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{what}.AllowCredentials must be true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Headers<'a> = &'a [(&'a str, &'a str)];

    fn req(method: &str, headers: Headers) -> GatewayRequest {
        GatewayRequest {
            header_names: Vec::new(),
            method: method.into(),
            raw_path: "/items".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..GatewayRequest::default()
        }
    }

    /// `status [headers in order] body`.
    fn render(r: &GatewayResponse) -> String {
        let headers: Vec<String> = r.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!(
            "{} [{}] {:?}",
            r.status,
            headers.join(" | "),
            String::from_utf8_lossy(&r.body)
        )
    }

    fn rest(v: Value) -> CorsConfig {
        from_sam_rest(&v).unwrap().unwrap()
    }

    fn http(v: Value) -> CorsConfig {
        from_sam_http(&v).unwrap().unwrap()
    }

    #[test]
    fn rest_parser_unquotes_values_and_applies_sam_defaults() {
        let cases: &[(Value, RestCors)] = &[
            (
                json!("'https://a.example'"),
                RestCors {
                    allow_origin: "https://a.example".into(),
                    allow_headers: None,
                    allow_methods: None,
                    max_age: None,
                    allow_credentials: false,
                },
            ),
            (
                json!({"AllowMethods": "'GET,POST'"}),
                RestCors {
                    allow_origin: "*".into(),
                    allow_headers: None,
                    allow_methods: Some("GET,POST".into()),
                    max_age: None,
                    allow_credentials: false,
                },
            ),
            (
                json!({"AllowOrigin": "'https://a.example'", "AllowHeaders": "'Content-Type,X-Api-Key'",
                       "MaxAge": 600, "AllowCredentials": true}),
                RestCors {
                    allow_origin: "https://a.example".into(),
                    allow_headers: Some("Content-Type,X-Api-Key".into()),
                    allow_methods: None,
                    max_age: Some("600".into()),
                    allow_credentials: true,
                },
            ),
            (
                json!({"MaxAge": "'300'", "AllowCredentials": false}),
                RestCors {
                    allow_origin: "*".into(),
                    allow_headers: None,
                    allow_methods: None,
                    max_age: Some("300".into()),
                    allow_credentials: false,
                },
            ),
        ];
        for (v, want) in cases {
            assert_eq!(
                from_sam_rest(v),
                Ok(Some(CorsConfig::Rest(want.clone()))),
                "{v}"
            );
        }
    }

    #[test]
    fn rest_parser_treats_falsy_values_as_no_cors() {
        for v in [json!(null), json!(""), json!({})] {
            assert_eq!(from_sam_rest(&v), Ok(None), "{v}");
        }
    }

    #[test]
    fn rest_parser_errors_name_the_property() {
        let cases: &[(Value, &str)] = &[
            (json!("*"), "Cors: \"*\" must be quoted"),
            (
                json!({"AllowMethods": "GET"}),
                "Cors.AllowMethods: \"GET\" must be quoted",
            ),
            (
                json!({"AllowHeaders": ["a"]}),
                "Cors.AllowHeaders must be a quoted string",
            ),
            (
                json!({"AllowOrigins": "'*'"}),
                "Cors: unknown property \"AllowOrigins\"",
            ),
            (
                json!({"AllowCredentials": "yes", "AllowOrigin": "'https://a'"}),
                "Cors.AllowCredentials must be true or false",
            ),
            (
                json!({"AllowCredentials": true}),
                "Cors.AllowCredentials cannot be true",
            ),
            (
                json!({"AllowCredentials": true, "AllowOrigin": "'*'"}),
                "Cors.AllowCredentials cannot be true",
            ),
            (json!(true), "Cors must be a quoted origin"),
        ];
        for (v, want) in cases {
            let err = from_sam_rest(v).unwrap_err();
            assert!(err.starts_with(want), "{v}: {err}");
        }
    }

    #[test]
    fn http_parser_reads_true_and_objects() {
        let cases: &[(Value, HttpCors)] = &[
            (
                json!(true),
                HttpCors {
                    allow_origins: vec!["*".into()],
                    ..HttpCors::default()
                },
            ),
            (
                json!({"AllowOrigins": ["https://a.example", "http://*"], "AllowMethods": ["GET", "POST"],
                       "AllowHeaders": ["authorization"], "ExposeHeaders": ["x-id"], "MaxAge": 600,
                       "AllowCredentials": true}),
                HttpCors {
                    allow_origins: vec!["https://a.example".into(), "http://*".into()],
                    allow_methods: vec!["GET".into(), "POST".into()],
                    allow_headers: vec!["authorization".into()],
                    expose_headers: vec!["x-id".into()],
                    max_age: Some(600),
                    allow_credentials: true,
                },
            ),
            (
                json!({"AllowMethods": ["*"], "MaxAge": -1}),
                HttpCors {
                    allow_methods: vec!["*".into()],
                    max_age: Some(-1),
                    ..HttpCors::default()
                },
            ),
        ];
        for (v, want) in cases {
            assert_eq!(
                from_sam_http(v),
                Ok(Some(CorsConfig::Http(want.clone()))),
                "{v}"
            );
        }
        for v in [json!(false), json!(null), json!({})] {
            assert_eq!(from_sam_http(&v), Ok(None), "{v}");
        }
    }

    #[test]
    fn http_parser_errors_name_the_property() {
        let long = "X".repeat(65);
        let cases: &[(Value, &str)] = &[
            (
                json!("*"),
                "CorsConfiguration must be true, false or an object",
            ),
            (
                json!({"AllowOrigins": "*"}),
                "CorsConfiguration.AllowOrigins must be a list of strings",
            ),
            (
                json!({"AllowHeaders": [1]}),
                "CorsConfiguration.AllowHeaders must be a list of non-empty strings",
            ),
            (
                json!({"AllowMethods": [long]}),
                "CorsConfiguration.AllowMethods: ",
            ),
            (
                json!({"MaxAge": 86401}),
                "CorsConfiguration.MaxAge must be an integer from -1 to 86400",
            ),
            (
                json!({"MaxAge": "600"}),
                "CorsConfiguration.MaxAge must be an integer",
            ),
            (
                json!({"AllowOrigin": ["*"]}),
                "CorsConfiguration: unknown property \"AllowOrigin\"",
            ),
            (
                json!({"AllowOrigins": ["https://a", "*"], "AllowCredentials": true}),
                "CorsConfiguration.AllowCredentials cannot be true",
            ),
        ];
        for (v, want) in cases {
            let err = from_sam_http(v).unwrap_err();
            assert!(err.starts_with(want), "{v}: {err}");
        }
    }

    #[test]
    fn rest_allow_methods_default_to_the_paths_methods_plus_options() {
        let base = rest(json!("'*'"));
        let cases: &[(&[&str], &str)] = &[
            (&["GET"], "GET,OPTIONS"),
            (&["post", "GET", "POST"], "GET,OPTIONS,POST"),
            (&["GET", "ANY"], ALL_METHODS),
        ];
        for (methods, want) in cases {
            let CorsConfig::Rest(r) = base.for_path(methods) else {
                unreachable!()
            };
            assert_eq!(r.allow_methods.as_deref(), Some(*want), "{methods:?}");
        }
        let explicit = rest(json!({"AllowMethods": "'GET'"}));
        assert_eq!(explicit.for_path(&["ANY"]), explicit);
    }

    #[test]
    fn rest_preflight_is_the_mocks_static_200_whatever_the_origin() {
        let full = rest(
            json!({"AllowOrigin": "'https://a.example'", "AllowHeaders": "'X-Api-Key'",
                               "MaxAge": "'600'", "AllowCredentials": true}),
        )
        .for_path(&["GET"]);
        let cases: &[(CorsConfig, GatewayRequest, &str)] = &[
            (
                rest(json!("'*'")).for_path(&["POST"]),
                req("OPTIONS", &[]),
                "200 [Content-Type: application/json | Access-Control-Allow-Origin: * | \
                 Access-Control-Allow-Methods: OPTIONS,POST] \"{}\\n\"",
            ),
            (
                full.clone(),
                req("OPTIONS", &[("origin", "https://elsewhere.example")]),
                "200 [Content-Type: application/json | Access-Control-Allow-Origin: https://a.example | \
                 Access-Control-Allow-Headers: X-Api-Key | Access-Control-Allow-Methods: GET,OPTIONS | \
                 Access-Control-Max-Age: 600 | Access-Control-Allow-Credentials: true] \"{}\\n\"",
            ),
            (
                rest(json!("'https://a.example,https://b.example'")),
                req("OPTIONS", &[("origin", "https://b.example")]),
                "200 [Content-Type: application/json | \
                 Access-Control-Allow-Origin: https://a.example,https://b.example | \
                 Access-Control-Allow-Methods: DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT] \"{}\\n\"",
            ),
        ];
        for (cors, r, want) in cases {
            assert_eq!(render(&preflight(cors, r).unwrap()), *want);
        }
        assert_eq!(
            preflight(&full, &req("GET", &[("origin", "https://a.example")])),
            None
        );
    }

    #[test]
    fn rest_apply_leaves_the_functions_response_alone() {
        let cors = rest(json!({"AllowOrigin": "'https://a.example'"}));
        let mut resp = GatewayResponse {
            status: 200,
            headers: vec![(
                "Access-Control-Allow-Origin".into(),
                "https://fn.example".into(),
            )],
            body: b"x".to_vec(),
        };
        let before = resp.clone();
        apply(
            &cors,
            &req("GET", &[("origin", "https://a.example")]),
            &mut resp,
        );
        assert_eq!(resp, before);
    }

    #[test]
    fn http_preflight_answers_204_with_only_what_matches() {
        let specific = http(json!({"AllowOrigins": ["https://a.example", "http://*"],
                                   "AllowMethods": ["GET", "POST"], "AllowHeaders": ["authorization", "content-type"],
                                   "ExposeHeaders": ["x-id"], "MaxAge": 300, "AllowCredentials": true}));
        let star =
            http(json!({"AllowOrigins": ["*"], "AllowMethods": ["*"], "AllowHeaders": ["*"]}));
        let pre = |origin: &str, method: &str, headers: &str| {
            let mut h = vec![
                ("origin", origin),
                ("access-control-request-method", method),
            ];
            if !headers.is_empty() {
                h.push(("access-control-request-headers", headers));
            }
            req("OPTIONS", &h)
        };
        let cases: &[(&CorsConfig, GatewayRequest, &str)] = &[
            (
                &specific,
                pre("https://a.example", "POST", "Content-Type, Authorization"),
                "204 [access-control-allow-origin: https://a.example | vary: Origin | \
                 access-control-allow-credentials: true | access-control-allow-methods: GET,POST | \
                 access-control-allow-headers: authorization,content-type | access-control-max-age: 300] \"\"",
            ),
            (
                &specific,
                pre("HTTP://localhost:3000", "get", ""),
                "204 [access-control-allow-origin: HTTP://localhost:3000 | vary: Origin | \
                 access-control-allow-credentials: true | access-control-allow-methods: GET,POST | \
                 access-control-allow-headers: authorization,content-type | access-control-max-age: 300] \"\"",
            ),
            (
                &specific,
                pre("https://a.example", "DELETE", "x-other"),
                "204 [access-control-allow-origin: https://a.example | vary: Origin | \
                 access-control-allow-credentials: true | access-control-max-age: 300] \"\"",
            ),
            (&specific, pre("https://b.example", "GET", ""), "204 [] \"\""),
            (&specific, pre("https://a.example.evil", "GET", ""), "204 [] \"\""),
            (
                &star,
                pre("https://any.example", "PATCH", "x-anything"),
                "204 [access-control-allow-origin: * | access-control-allow-methods: * | \
                 access-control-allow-headers: *] \"\"",
            ),
        ];
        for (cors, r, want) in cases {
            assert_eq!(
                render(&preflight(cors, r).unwrap()),
                *want,
                "{:?}",
                r.headers
            );
        }
    }

    #[test]
    fn http_preflight_needs_origin_and_request_method() {
        let cors = http(json!(true));
        let cases = [
            req("OPTIONS", &[]),
            req("OPTIONS", &[("origin", "https://a.example")]),
            req("OPTIONS", &[("access-control-request-method", "GET")]),
            req(
                "GET",
                &[
                    ("origin", "https://a.example"),
                    ("access-control-request-method", "GET"),
                ],
            ),
        ];
        for r in &cases {
            assert_eq!(preflight(&cors, r), None, "{} {:?}", r.method, r.headers);
        }
    }

    #[test]
    fn http_apply_replaces_the_integrations_cors_headers() {
        let specific = http(
            json!({"AllowOrigins": ["https://a.example"], "ExposeHeaders": ["x-id", "date"],
                                   "AllowCredentials": true}),
        );
        let star = http(json!(true));
        let from_function = || GatewayResponse {
            status: 201,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                (
                    "Access-Control-Allow-Origin".into(),
                    "https://fn.example".into(),
                ),
                ("access-control-allow-methods".into(), "DELETE".into()),
            ],
            body: b"{}".to_vec(),
        };
        let cases: &[(&CorsConfig, Headers, &str)] = &[
            (
                &specific,
                &[("origin", "https://a.example")],
                "201 [Content-Type: application/json | access-control-allow-origin: https://a.example | \
                 vary: Origin | access-control-allow-credentials: true | \
                 access-control-expose-headers: x-id,date] \"{}\"",
            ),
            (&specific, &[("origin", "https://b.example")], "201 [Content-Type: application/json] \"{}\""),
            (&specific, &[], "201 [Content-Type: application/json] \"{}\""),
            (
                &star,
                &[("origin", "https://b.example")],
                "201 [Content-Type: application/json | access-control-allow-origin: *] \"{}\"",
            ),
        ];
        for (cors, headers, want) in cases {
            let mut resp = from_function();
            apply(cors, &req("POST", headers), &mut resp);
            assert_eq!(render(&resp), *want, "{headers:?}");
        }
    }

    #[test]
    fn http_apply_does_not_repeat_a_vary_origin_the_function_set() {
        let cors = http(json!({"AllowOrigins": ["https://a.example"]}));
        let mut resp = GatewayResponse {
            status: 200,
            headers: vec![("Vary".into(), "Accept-Encoding, Origin".into())],
            body: Vec::new(),
        };
        apply(
            &cors,
            &req("GET", &[("origin", "https://a.example")]),
            &mut resp,
        );
        assert_eq!(
            render(&resp),
            "200 [Vary: Accept-Encoding, Origin | access-control-allow-origin: https://a.example] \"\""
        );
    }

    #[test]
    fn origin_patterns_match_exactly_or_by_scheme() {
        let cors = HttpCors {
            allow_origins: vec![
                "https://a.example".into(),
                "http://*".into(),
                "https://*.b.example".into(),
            ],
            ..HttpCors::default()
        };
        let cases = [
            ("https://a.example", true),
            ("https://A.Example", true),
            ("https://a.example:8443", false),
            ("http://anything:3000", true),
            ("https://anything", false),
            // Only `*`, `https://*` and `http://*` are patterns; anything else is literal.
            ("https://x.b.example", false),
            ("https://*.b.example", true),
            ("null", false),
        ];
        for (origin, want) in cases {
            assert_eq!(allowed_origin(&cors, origin).is_some(), want, "{origin}");
        }
    }
}
