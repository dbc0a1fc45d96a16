//! Routes from an API's OpenAPI (3.x) or Swagger (2.0) definition (`DefinitionBody`, or the
//! file `DefinitionUri` names, which the binary reads): each path and method with an
//! `x-amazon-apigateway-integration` of type `aws_proxy` becomes a route to that function;
//! `security` with an `apiKey` scheme (`x-api-key`) requires a key; the
//! `x-amazon-apigateway-request-validators` in force give the body's JSON schema and the
//! required parameters to check. Pure: the definition is already a JSON value.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::config::{AuthorizerConfig, RequestValidation, RouteConfig};
use crate::{ApiKind, PayloadVersion};

/// OpenAPI's operation keys, and the method each serves.
const METHODS: &[(&str, &str)] = &[
    ("get", "GET"),
    ("put", "PUT"),
    ("post", "POST"),
    ("delete", "DELETE"),
    ("options", "OPTIONS"),
    ("head", "HEAD"),
    ("patch", "PATCH"),
    ("x-amazon-apigateway-any-method", "ANY"),
];

/// What a definition yields: routes, and what nimbus does not serve of it (said once).
#[derive(Debug, Default)]
pub struct Read {
    pub routes: Vec<RouteConfig>,
    pub warnings: Vec<String>,
    /// `x-amazon-apigateway-binary-media-types` (REST).
    pub binary_media_types: Vec<String>,
    /// `x-amazon-apigateway-cors` (HTTP API), in the shape of SAM's `CorsConfiguration`.
    pub cors: Option<Value>,
    /// Security schemes with `x-amazon-apigateway-authorizer`, by scheme name; the routes
    /// whose `security` names one are protected by it.
    pub authorizers: BTreeMap<String, AuthorizerConfig>,
    /// `x-amazon-apigateway-gateway-responses` (REST).
    pub gateway_responses: BTreeMap<String, crate::gateway_responses::GatewayResponse>,
}

/// Reads the routes of `doc`, the definition of the API `api_id`, found at `source` (a property
/// path such as `Resources.Api.Properties.DefinitionBody`). `function_named` says whether the
/// template has a function of that name.
pub fn read(
    api_id: &str,
    kind: ApiKind,
    doc: &Value,
    source: &str,
    function_named: &dyn Fn(&str) -> bool,
    errors: &mut Vec<String>,
) -> Read {
    let mut out = Read::default();
    if !doc.is_object() {
        errors.push(format!(
            "{source}: expected an OpenAPI document (a map), got {doc}"
        ));
        return out;
    }
    check_refs(doc, doc, source, errors);
    let Some(paths) = doc["paths"].as_object() else {
        errors.push(format!(
            "{source}.paths: required; an OpenAPI document lists its routes under paths"
        ));
        return out;
    };
    out.binary_media_types = doc["x-amazon-apigateway-binary-media-types"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some(t.as_str()?.replace("~1", "/")))
        .collect();
    // The extension's keys are SAM's CorsConfiguration keys with a lower-case first letter.
    if let Some(cors) = doc["x-amazon-apigateway-cors"].as_object() {
        let sam: serde_json::Map<String, Value> = cors
            .iter()
            .map(|(k, v)| {
                let mut key = k.clone();
                if let Some(first) = key.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                (key, v.clone())
            })
            .collect();
        out.cors = Some(Value::Object(sam));
    }
    out.authorizers =
        crate::authorizers::from_openapi(kind, doc, source, errors, &mut out.warnings);
    let responses_at = format!("{source}.x-amazon-apigateway-gateway-responses");
    match kind {
        ApiKind::Rest => {
            out.gateway_responses = crate::config::gateway_responses(
                &doc["x-amazon-apigateway-gateway-responses"],
                &responses_at,
                errors,
            );
        }
        ApiKind::Http if !doc["x-amazon-apigateway-gateway-responses"].is_null() => {
            out.warnings.push(format!(
                "{responses_at}: gateway responses are a REST API feature; HTTP APIs ignore them"
            ));
        }
        ApiKind::Http => {}
    }
    for unserved in ["x-amazon-apigateway-api-key-source"] {
        if !doc[unserved].is_null() {
            out.warnings
                .push(format!("{source}.{unserved}: not served by nimbus yet"));
        }
    }
    let validators = doc["x-amazon-apigateway-request-validators"].as_object();
    let default_validator = doc["x-amazon-apigateway-request-validator"].as_str();
    for (path, item) in paths {
        let item_source = format!("{source}.paths.{path}");
        if !(path.starts_with('/') || (kind == ApiKind::Http && path == "$default")) {
            errors.push(format!("{item_source}: a path must start with /"));
            continue;
        }
        for (key, method) in METHODS {
            let Some(op) = item.get(*key) else { continue };
            let op_source = format!("{item_source}.{key}");
            let integration = &op["x-amazon-apigateway-integration"];
            if integration.is_null() {
                out.warnings.push(format!(
                    "{op_source}: no x-amazon-apigateway-integration; {method} {path} of {api_id} is not served"
                ));
                continue;
            }
            let int_source = format!("{op_source}.x-amazon-apigateway-integration");
            let validator = op["x-amazon-apigateway-request-validator"]
                .as_str()
                .or(default_validator);
            let validation = match validator {
                None => None,
                Some(name) => match validators.and_then(|v| v.get(name)) {
                    Some(v) => request_validation(doc, item, op, v),
                    None => {
                        errors.push(format!(
                            "{op_source}.x-amazon-apigateway-request-validator: no validator named {name:?} in x-amazon-apigateway-request-validators"
                        ));
                        continue;
                    }
                },
            };

            let ty = integration["type"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let subtype = integration["integrationSubtype"].as_str();
            if let (ApiKind::Http, Some(sub)) = (kind, subtype) {
                if crate::service::SERVED.contains(&sub) {
                    let mut route = crate::config::integration_route(method, path, &op_source);
                    route.service = Some(crate::service::ServiceIntegration {
                        subtype: sub.to_owned(),
                        parameters: integration["requestParameters"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                            .collect(),
                    });
                    out.routes
                        .push(protect(route, doc, op, integration, kind, &out.authorizers));
                    continue;
                }
            }
            if (kind == ApiKind::Rest && ty != "aws_proxy") || ty == "http_proxy" {
                if let Ok(rest) = crate::integration::read(integration, &int_source, errors) {
                    let mut route = crate::config::integration_route(method, path, &op_source);
                    route.rest = Some(Box::new(rest));
                    route.api_key_required = requires_api_key(doc, op);
                    route.validation = validation;
                    out.routes
                        .push(protect(route, doc, op, integration, kind, &out.authorizers));
                    continue;
                }
            }
            if ty != "aws_proxy" || subtype.is_some() {
                let ty = subtype.map_or(ty, str::to_owned);
                let why = format!(
                    "{int_source}.type: {} integrations are not served by nimbus yet; {method} {path} of {api_id} answers 500, as a failing integration does",
                    if ty.is_empty() { "untyped" } else { &ty }
                );
                out.routes.push(crate::config::unserved_route(
                    method, path, &op_source, &why,
                ));
                out.warnings.push(why);
                continue;
            }
            let uri = integration["uri"].as_str().unwrap_or_default();
            let Some(function) = function_of_uri(uri) else {
                errors.push(format!(
                    "{int_source}.uri: {uri:?} names no Lambda function; use \
                     arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/FUNCTION_ARN/invocations"
                ));
                continue;
            };
            // A qualified name (`name:alias`) invokes that alias of the template's function.
            if !function_named(function.split(':').next().unwrap_or(&function)) {
                errors.push(format!(
                    "{int_source}.uri: names the function {function:?}, which is not in the template"
                ));
                continue;
            }
            let payload = match (kind, integration["payloadFormatVersion"].as_str()) {
                (ApiKind::Rest, _) => PayloadVersion::V1,
                (ApiKind::Http, None | Some("2.0")) => PayloadVersion::V2,
                (ApiKind::Http, Some("1.0")) => PayloadVersion::V1,
                (ApiKind::Http, Some(other)) => {
                    errors.push(format!(
                        "{int_source}.payloadFormatVersion: {other:?} is not 1.0 or 2.0"
                    ));
                    continue;
                }
            };
            let timeout = integration["timeoutInMillis"]
                .as_u64()
                .or_else(|| integration["timeoutInMillis"].as_str()?.parse().ok())
                .map(Duration::from_millis)
                .unwrap_or(match kind {
                    ApiKind::Rest => Duration::from_millis(29_000),
                    ApiKind::Http => Duration::from_millis(30_000),
                });
            let route = RouteConfig {
                method: (*method).to_owned(),
                path: path.clone(),
                function,
                payload,
                timeout,
                api_key_required: requires_api_key(doc, op),
                authorizer: None,
                authorization_scopes: Vec::new(),
                cache_ttl: 0,
                source: op_source,
                validation,
                unserved: None,
                service: None,
                rest: None,
                response_parameters: BTreeMap::new(),
            };
            out.routes
                .push(protect(route, doc, op, integration, kind, &out.authorizers));
        }
    }
    out
}

/// The route with the authorizer (and scopes) its operation's `security` names, and (HTTP
/// APIs) its integration's response parameter mapping.
fn protect(
    mut route: RouteConfig,
    doc: &Value,
    op: &Value,
    integration: &Value,
    kind: ApiKind,
    authorizers: &BTreeMap<String, AuthorizerConfig>,
) -> RouteConfig {
    if kind == ApiKind::Http {
        route.response_parameters =
            crate::service::response_parameters(&integration["responseParameters"]);
    }
    if let Some((name, scopes)) = crate::authorizers::of_operation(doc, op, authorizers) {
        route.authorizer = Some(name);
        route.authorization_scopes = scopes;
    }
    route
}

/// The function name in a Lambda integration URI (API Gateway's `.../functions/ARN/invocations`
/// form, or an HTTP API's bare function ARN), with its alias or version (`name:live`) when the
/// ARN is qualified: the integration invokes that alias or version.
pub(crate) fn function_of_uri(uri: &str) -> Option<String> {
    let arn = match uri.split_once("/functions/") {
        Some((_, rest)) => rest.strip_suffix("/invocations").unwrap_or(rest),
        None => uri,
    };
    // In a URI only an ARN names a function, not a bare word.
    if !arn.contains(":function:") {
        return None;
    }
    nimbus_core::arn::parse_function_ref(arn).map(|f| match f.qualifier {
        None | Some("$LATEST") => f.name.to_owned(),
        Some(q) => format!("{}:{q}", f.name),
    })
}

/// Whether `security` (the operation's, else the document's) names an API key scheme in the
/// `x-api-key` header.
fn requires_api_key(doc: &Value, op: &Value) -> bool {
    let security = if op["security"].is_array() {
        &op["security"]
    } else {
        &doc["security"]
    };
    let schemes = crate::authorizers::schemes(doc);
    security.as_array().into_iter().flatten().any(|req| {
        req.as_object().into_iter().flatten().any(|(name, _)| {
            let s = &schemes[name];
            s["type"] == "apiKey"
                && s["in"] == "header"
                && s["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case("x-api-key"))
        })
    })
}

/// What a validator checks on this operation: its JSON body schema (OpenAPI 3 `requestBody`,
/// Swagger 2's `in: body` parameter) and its required query, header and path parameters.
fn request_validation(
    doc: &Value,
    item: &Value,
    op: &Value,
    v: &Value,
) -> Option<RequestValidation> {
    let body = v["validateRequestBody"].as_bool() == Some(true);
    let params = v["validateRequestParameters"].as_bool() == Some(true);
    let parameters: Vec<&Value> = item["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(op["parameters"].as_array().into_iter().flatten())
        .map(|p| deref(doc, p))
        .collect();
    let body_schema = body
        .then(|| {
            let content = &deref(doc, &op["requestBody"])["content"];
            content
                .get("application/json")
                .or_else(|| content.as_object().and_then(|c| c.values().next()))
                .map(|c| c["schema"].clone())
                .or_else(|| {
                    parameters
                        .iter()
                        .find(|p| p["in"] == "body")
                        .map(|p| p["schema"].clone())
                })
                .filter(|s| !s.is_null())
        })
        .flatten();
    let required = if params {
        parameters
            .iter()
            .filter(|p| p["required"] == true)
            .filter_map(|p| {
                let location = p["in"].as_str()?;
                let name = p["name"].as_str()?;
                matches!(location, "query" | "header" | "path")
                    .then(|| (location.to_owned(), name.to_owned()))
            })
            .collect()
    } else {
        Vec::new()
    };
    if body_schema.is_none() && required.is_empty() {
        return None;
    }
    Some(RequestValidation {
        // The schema keeps the document's components and definitions beside it, so its local
        // `$ref`s resolve.
        body_schema: body_schema.map(|schema| {
            let mut root = serde_json::Map::new();
            root.insert("allOf".into(), Value::Array(vec![schema]));
            for key in ["components", "definitions"] {
                if !doc[key].is_null() {
                    root.insert(key.into(), doc[key].clone());
                }
            }
            Value::Object(root)
        }),
        required,
    })
}

/// Follows a local `$ref` (one level), else the value itself.
fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => doc.pointer(pointer).unwrap_or(v),
        None => v,
    }
}

/// Every local `$ref` in the document must name something in it.
fn check_refs(doc: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let here = format!("{at}.{k}");
                if k == "$ref" {
                    if let Some(r) = child.as_str() {
                        let resolves = match r.strip_prefix('#') {
                            Some(pointer) => doc.pointer(pointer).is_some(),
                            // A reference to another file: API Gateway rejects those too.
                            None => false,
                        };
                        if !resolves {
                            errors.push(format!(
                                "{here}: {r:?} does not resolve within the document"
                            ));
                        }
                    }
                } else {
                    check_refs(doc, child, &here, errors);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                check_refs(doc, child, &format!("{at}[{i}]"), errors);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn uri(f: &str) -> String {
        format!("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:{f}/invocations")
    }

    fn read_doc(kind: ApiKind, doc: &Value) -> (Read, Vec<String>) {
        let mut errors = Vec::new();
        let read = read(
            "Api",
            kind,
            doc,
            "Resources.Api.Properties.DefinitionBody",
            &|f| f == "Echo",
            &mut errors,
        );
        (read, errors)
    }

    #[test]
    fn lambda_proxy_operations_become_routes() {
        let doc = json!({
            "openapi": "3.0.1",
            "paths": {
                "/items/{id}": {
                    "get": {"x-amazon-apigateway-integration": {"type": "aws_proxy", "httpMethod": "POST", "uri": uri("Echo")}},
                    "x-amazon-apigateway-any-method": {"x-amazon-apigateway-integration": {"type": "AWS_PROXY", "uri": uri("Echo:live")}},
                    "delete": {"x-amazon-apigateway-integration": {"type": "mock"}},
                },
                "/{proxy+}": {"post": {"x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": uri("Echo"), "timeoutInMillis": 5000}}},
            }
        });
        let (read, errors) = read_doc(ApiKind::Rest, &doc);
        assert!(errors.is_empty(), "{errors:?}");
        let keys: Vec<(String, String, Duration)> = read
            .routes
            .iter()
            .map(|r| (r.key(), r.function.clone(), r.timeout))
            .collect();
        assert_eq!(
            keys,
            [
                (
                    "GET /items/{id}".into(),
                    "Echo".into(),
                    Duration::from_secs(29)
                ),
                (
                    "DELETE /items/{id}".into(),
                    String::new(),
                    Duration::from_secs(29)
                ),
                (
                    "ANY /items/{id}".into(),
                    "Echo:live".into(),
                    Duration::from_secs(29)
                ),
                (
                    "POST /{proxy+}".into(),
                    "Echo".into(),
                    Duration::from_secs(5)
                ),
            ]
        );
        assert!(
            read.routes[1].rest.is_some(),
            "MOCK is served with its templates"
        );
        assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    }

    #[test]
    fn http_api_payload_version_and_bare_function_arns() {
        let doc = json!({"openapi": "3.0.1", "paths": {
            "/a": {"get": {"x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": "arn:aws:lambda:us-east-1:1:function:Echo", "payloadFormatVersion": "1.0"}}},
            "$default": {"x-amazon-apigateway-any-method": {"x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": uri("Echo")}}},
        }});
        let (read, errors) = read_doc(ApiKind::Http, &doc);
        assert!(errors.is_empty(), "{errors:?}");
        let got: Vec<(String, PayloadVersion)> =
            read.routes.iter().map(|r| (r.key(), r.payload)).collect();
        assert_eq!(
            got,
            [
                ("$default".to_owned(), PayloadVersion::V2),
                ("GET /a".to_owned(), PayloadVersion::V1)
            ]
        );
    }

    #[test]
    fn api_keys_and_validators_are_read() {
        let doc = json!({
            "openapi": "3.0.1",
            "security": [{"api_key": []}],
            "components": {
                "securitySchemes": {"api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"}},
                "schemas": {"Thing": {"type": "object", "required": ["name"]}},
                "parameters": {"Trace": {"name": "X-Trace", "in": "header", "required": true}},
            },
            "x-amazon-apigateway-request-validators": {
                "all": {"validateRequestBody": true, "validateRequestParameters": true},
            },
            "x-amazon-apigateway-request-validator": "all",
            "paths": {"/things": {"post": {
                "security": [],
                "parameters": [{"name": "q", "in": "query", "required": true}, {"$ref": "#/components/parameters/Trace"}],
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                "x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": uri("Echo")},
            }, "get": {
                "x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": uri("Echo")},
            }}},
        });
        let (read, errors) = read_doc(ApiKind::Rest, &doc);
        assert!(errors.is_empty(), "{errors:?}");
        let post = read.routes.iter().find(|r| r.method == "POST").unwrap();
        let get = read.routes.iter().find(|r| r.method == "GET").unwrap();
        assert!(!post.api_key_required, "an operation's empty security wins");
        assert!(get.api_key_required);
        let v = post.validation.as_ref().unwrap();
        assert_eq!(
            v.required,
            [
                ("query".to_owned(), "q".to_owned()),
                ("header".to_owned(), "X-Trace".to_owned())
            ]
        );
        let schema = v.body_schema.as_ref().unwrap();
        assert_eq!(schema["allOf"][0]["$ref"], "#/components/schemas/Thing");
        assert_eq!(
            schema["components"]["schemas"]["Thing"]["required"][0],
            "name"
        );
        assert!(
            get.validation.is_none(),
            "nothing to check on a GET without parameters"
        );
    }

    #[test]
    fn cors_and_binary_media_types_come_from_the_extensions() {
        let doc = json!({
            "openapi": "3.0.1",
            "x-amazon-apigateway-cors": {"allowOrigins": ["https://a.example"], "allowMethods": ["GET"], "maxAge": 60},
            "x-amazon-apigateway-binary-media-types": ["image~1png", "*/*"],
            "x-amazon-apigateway-gateway-responses": {"DEFAULT_4XX": {}},
            "paths": {},
        });
        let (read, errors) = read_doc(ApiKind::Http, &doc);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            read.cors,
            Some(
                json!({"AllowOrigins": ["https://a.example"], "AllowMethods": ["GET"], "MaxAge": 60})
            )
        );
        assert!(crate::cors::from_sam_http(read.cors.as_ref().unwrap())
            .unwrap()
            .is_some());
        assert_eq!(read.binary_media_types, ["image/png", "*/*"]);
        assert_eq!(
            read.warnings,
            ["Resources.Api.Properties.DefinitionBody.x-amazon-apigateway-gateway-responses: gateway responses are a REST API feature; HTTP APIs ignore them"]
        );
    }

    #[test]
    fn broken_definitions_say_where() {
        let cases: &[(Value, &str)] = &[
            (json!("nope"), "Resources.Api.Properties.DefinitionBody: expected an OpenAPI document (a map), got \"nope\""),
            (json!({"openapi": "3.0.1"}), "Resources.Api.Properties.DefinitionBody.paths: required; an OpenAPI document lists its routes under paths"),
            (
                json!({"paths": {"/a": {"get": {"x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": uri("Nope")}}}}}),
                "Resources.Api.Properties.DefinitionBody.paths./a.get.x-amazon-apigateway-integration.uri: names the function \"Nope\", which is not in the template",
            ),
            (
                json!({"paths": {"/a": {"get": {"x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": "https://example.com"}}}}}),
                "Resources.Api.Properties.DefinitionBody.paths./a.get.x-amazon-apigateway-integration.uri: \"https://example.com\" names no Lambda function; use arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/FUNCTION_ARN/invocations",
            ),
            (
                json!({"paths": {"/a": {"get": {"requestBody": {"$ref": "#/components/requestBodies/Missing"}, "x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": uri("Echo")}}}}}),
                "Resources.Api.Properties.DefinitionBody.paths./a.get.requestBody.$ref: \"#/components/requestBodies/Missing\" does not resolve within the document",
            ),
            (
                json!({"paths": {"/a": {"get": {"x-amazon-apigateway-request-validator": "strict", "x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": uri("Echo")}}}}}),
                "Resources.Api.Properties.DefinitionBody.paths./a.get.x-amazon-apigateway-request-validator: no validator named \"strict\" in x-amazon-apigateway-request-validators",
            ),
            (json!({"paths": {"a": {}}}), "Resources.Api.Properties.DefinitionBody.paths.a: a path must start with /"),
        ];
        for (doc, want) in cases {
            let (_, errors) = read_doc(ApiKind::Rest, doc);
            assert_eq!(errors, [want.to_string()], "{doc}");
        }
    }
}
