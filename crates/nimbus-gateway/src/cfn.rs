//! CloudFormation's own API resources, as CDK and hand-written templates declare them:
//! `AWS::ApiGateway::RestApi` with its `Resource` tree, `Method`s and `Stage` (or a `Body`
//! OpenAPI definition), and `AWS::ApiGatewayV2::Api` with `Route`s, `Integration`s and `Stage`
//! (or `Body`, or quick-create `Target`). Lambda proxy integrations are served; other
//! integration types are named once and not served yet. Pure: reads the resolved stack.

use std::collections::BTreeMap;
use std::time::Duration;

use nimbus_template::{Resource, Stack};
use serde_json::Value;

use crate::config::{ApiConfig, RouteConfig};
use crate::{ApiKind, PayloadVersion};

/// The REST and HTTP APIs declared with CloudFormation's resources, by logical id.
pub fn apis(stack: &Stack, errors: &mut Vec<String>) -> BTreeMap<String, ApiConfig> {
    let mut out = BTreeMap::new();
    let of_type = |ty: &'static str| {
        stack
            .resources
            .values()
            .filter(move |r| r.resource_type == ty)
    };
    // A qualified name (`name:alias`) names the function's version or alias.
    let function_named = |f: &str| stack.function(f.split(':').next().unwrap_or(f)).is_some();
    // A definition in S3 cannot be read here; serving the API without its routes would hide
    // that.
    for api in of_type("AWS::ApiGateway::RestApi").chain(of_type("AWS::ApiGatewayV2::Api")) {
        if !api.properties["BodyS3Location"].is_null() && api.properties["Body"].is_null() {
            errors.push(format!(
                "Resources.{}.Properties.BodyS3Location: the definition is in S3, which nimbus cannot read; inline it as Body, or write Body: {{Fn::Transform: {{Name: AWS::Include, Parameters: {{Location: ./api.yaml}}}}}} with the file beside the template",
                api.logical_id
            ));
        }
    }
    for api in of_type("AWS::ApiGateway::RestApi") {
        if let Some(config) = rest_api(stack, api, &function_named, errors) {
            out.insert(api.logical_id.clone(), config);
        }
    }
    for api in of_type("AWS::ApiGatewayV2::Api") {
        if api.properties["ProtocolType"].as_str() == Some("WEBSOCKET") {
            errors.push(format!(
                "Resources.{}.Properties.ProtocolType: WebSocket APIs are not served by nimbus yet",
                api.logical_id
            ));
            continue;
        }
        if let Some(config) = http_api(stack, api, &function_named, errors) {
            out.insert(api.logical_id.clone(), config);
        }
    }
    out
}

/// Whether `value` refers to the resource `id` (a `Ref` gives the logical id).
fn names(value: &Value, id: &str) -> bool {
    value.as_str() == Some(id)
}

/// The resources of type `ty` whose `field` names the API `api`.
fn members<'s>(
    stack: &'s Stack,
    ty: &'s str,
    field: &'s str,
    api: &'s str,
) -> impl Iterator<Item = &'s Resource> + 's {
    stack
        .resources
        .values()
        .filter(move |r| r.resource_type == ty && names(&r.properties[field], api))
}

fn empty_api(id: &str, kind: ApiKind, stage: String) -> ApiConfig {
    // A SAM API with no properties has every default this one needs.
    ApiConfig {
        stage,
        ..crate::config::api_from_properties(id, kind, &Value::Null, &mut Vec::new())
    }
}

/// The first `Stage` of the API (its name and variables), else a `Deployment`'s `StageName`.
fn stage_of(
    stack: &Stack,
    api: &str,
    stage_type: &str,
    deployment_type: &str,
    api_field: &str,
) -> Option<(String, BTreeMap<String, String>, Vec<String>)> {
    let mut stages = members(stack, stage_type, api_field, api);
    if let Some(first) = stages.next() {
        let name = first.properties["StageName"].as_str()?.to_owned();
        let variables_key = if stage_type.contains("V2") {
            "StageVariables"
        } else {
            "Variables"
        };
        let variables = first.properties[variables_key]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        let others = stages
            .map(|s| {
                format!(
                    "Resources.{}: another stage of {api}; nimbus serves the first, {name}",
                    s.logical_id
                )
            })
            .collect();
        return Some((name, variables, others));
    }
    members(stack, deployment_type, api_field, api)
        .find_map(|d| d.properties["StageName"].as_str())
        .map(|s| (s.to_owned(), BTreeMap::new(), Vec::new()))
}

fn rest_api(
    stack: &Stack,
    api: &Resource,
    function_named: &dyn Fn(&str) -> bool,
    errors: &mut Vec<String>,
) -> Option<ApiConfig> {
    let id = &api.logical_id;
    let Some((stage, variables, others)) = stage_of(
        stack,
        id,
        "AWS::ApiGateway::Stage",
        "AWS::ApiGateway::Deployment",
        "RestApiId",
    ) else {
        errors.push(format!(
            "Resources.{id}: the REST API has no AWS::ApiGateway::Stage (or Deployment with a StageName), so it is not deployed; add one"
        ));
        return None;
    };
    let mut config = empty_api(id, ApiKind::Rest, stage);
    config.stage_variables = variables;
    config.notes = others;
    authorizers(
        stack,
        &mut config,
        "AWS::ApiGateway::Authorizer",
        "RestApiId",
        errors,
    );
    config.binary_media_types = api.properties["BinaryMediaTypes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some(t.as_str()?.replace("~1", "/")))
        .collect();
    if !api.properties["Body"].is_null() {
        let read = crate::openapi::read(
            id,
            ApiKind::Rest,
            &api.properties["Body"],
            &format!("Resources.{id}.Properties.Body"),
            function_named,
            errors,
        );
        config.routes = read.routes;
        config.notes.extend(read.warnings);
        config.binary_media_types.extend(read.binary_media_types);
        config.authorizers.extend(read.authorizers);
        config.gateway_responses.extend(read.gateway_responses);
        gateway_responses(stack, &mut config, errors);
        return Some(config);
    }

    // The resource tree: each resource's path from its parents up to the root.
    let root = format!("{id}.RootResourceId");
    let resources: BTreeMap<&str, &Resource> =
        members(stack, "AWS::ApiGateway::Resource", "RestApiId", id)
            .map(|r| (r.logical_id.as_str(), r))
            .collect();
    let mut paths: BTreeMap<&str, String> = BTreeMap::new();
    for start in resources.keys() {
        let mut chain = vec![*start];
        let path = loop {
            let current = chain[chain.len() - 1];
            let r = resources[current];
            let parent = r.properties["ParentId"].as_str().unwrap_or_default();
            if parent == root {
                break Some(String::new());
            }
            if let Some(known) = paths.get(parent) {
                break Some(known.clone());
            }
            if chain.contains(&parent) {
                errors.push(format!(
                    "Resources.{current}.Properties.ParentId: the resource tree of {id} has a cycle ({})",
                    chain.join(" -> ")
                ));
                break None;
            }
            if !resources.contains_key(parent) {
                errors.push(format!(
                    "Resources.{current}.Properties.ParentId: {parent:?} is neither a resource of {id} nor its root (!GetAtt {id}.RootResourceId)"
                ));
                break None;
            }
            chain.push(parent);
        };
        let Some(mut path) = path else { continue };
        // Down the chain from the known ancestor to `start`.
        for r in chain.iter().rev() {
            let part = resources[r].properties["PathPart"]
                .as_str()
                .unwrap_or_default();
            path = format!("{path}/{part}");
            paths.insert(r, path.clone());
        }
    }

    for m in members(stack, "AWS::ApiGateway::Method", "RestApiId", id) {
        let source = format!("Resources.{}.Properties", m.logical_id);
        let p = &m.properties;
        let resource = p["ResourceId"].as_str().unwrap_or_default();
        let path = if resource == root {
            "/".to_owned()
        } else {
            match paths.get(resource) {
                Some(path) => path.clone(),
                None => {
                    if !resources.contains_key(resource) {
                        errors.push(format!(
                            "{source}.ResourceId: {resource:?} is neither a resource of {id} nor its root"
                        ));
                    }
                    continue;
                }
            }
        };
        let method = p["HttpMethod"].as_str().unwrap_or_default().to_uppercase();
        if method.is_empty() {
            errors.push(format!(
                "{source}.HttpMethod: required (GET, POST, ANY, ...)"
            ));
            continue;
        }
        let integration = &p["Integration"];
        let ty = integration["Type"].as_str().unwrap_or_default();
        if ty != "AWS_PROXY" {
            if let Ok(rest) =
                crate::integration::read(integration, &format!("{source}.Integration"), errors)
            {
                let mut route = crate::config::integration_route(&method, &path, &source);
                route.rest = Some(Box::new(rest));
                route.api_key_required = p["ApiKeyRequired"].as_bool() == Some(true);
                config.routes.push(route);
                continue;
            }
            let why = format!(
                "{source}.Integration.Type: {} integrations are not served by nimbus yet; {method} {path} of {id} answers 500, as a failing integration does",
                if ty.is_empty() { "untyped" } else { ty }
            );
            config
                .routes
                .push(crate::config::unserved_route(&method, &path, &source, &why));
            config.notes.push(why);
            continue;
        }
        let Some(function) =
            crate::openapi::function_of_uri(integration["Uri"].as_str().unwrap_or_default())
        else {
            errors.push(format!(
                "{source}.Integration.Uri: names no Lambda function; use arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/FUNCTION_ARN/invocations"
            ));
            continue;
        };
        if !function_named(&function) {
            errors.push(format!(
                "{source}.Integration.Uri: names the function {function:?}, which is not in the template"
            ));
            continue;
        }
        config.routes.push(RouteConfig {
            api_key_required: p["ApiKeyRequired"].as_bool() == Some(true)
                || p["ApiKeyRequired"].as_str() == Some("true"),
            ..RouteConfig::to_function(
                method,
                path,
                function,
                PayloadVersion::V1,
                timeout(&integration["TimeoutInMillis"], 29_000),
                &source,
            )
        });
    }
    protect(
        stack,
        &mut config,
        "AWS::ApiGateway::Method",
        "RestApiId",
        errors,
    );
    gateway_responses(stack, &mut config, errors);
    validators(stack, &mut config, errors);
    Some(config)
}

/// Each method's `RequestValidatorId` (an `AWS::ApiGateway::RequestValidator`) with its
/// `RequestParameters` (`method.request.querystring.x: true` is required) and `RequestModels`
/// (an `AWS::ApiGateway::Model`'s schema, by `Ref` or name), as an OpenAPI request validator
/// would check them.
fn validators(stack: &Stack, config: &mut ApiConfig, errors: &mut Vec<String>) {
    let api = config.logical_id.clone();
    let validators: BTreeMap<&str, &Resource> = members(
        stack,
        "AWS::ApiGateway::RequestValidator",
        "RestApiId",
        &api,
    )
    .map(|r| (r.logical_id.as_str(), r))
    .collect();
    // Models by logical id and by name; a schema's `$ref` to another model's URL
    // (`https://apigateway.amazonaws.com/restapis/API/models/NAME`) points into `definitions`.
    let models: Vec<&Resource> =
        members(stack, "AWS::ApiGateway::Model", "RestApiId", &api).collect();
    let name_of = |m: &Resource| {
        m.properties["Name"]
            .as_str()
            .unwrap_or(&m.logical_id)
            .to_owned()
    };
    // CloudFormation takes a schema as JSON or as a string of JSON.
    let schema_of = |m: &Resource, errors: &mut Vec<String>| match &m.properties["Schema"] {
        Value::String(text) => serde_json::from_str(text).unwrap_or_else(|e| {
            errors.push(format!(
                "Resources.{}.Properties.Schema: not JSON: {e}",
                m.logical_id
            ));
            Value::Null
        }),
        other => other.clone(),
    };
    let schemas: BTreeMap<String, Value> = models
        .iter()
        .map(|m| (m.logical_id.clone(), model_refs(&schema_of(m, errors))))
        .collect();
    let definitions: serde_json::Map<String, Value> = models
        .iter()
        .map(|m| (name_of(m), schemas[&m.logical_id].clone()))
        .collect();
    for m in members(stack, "AWS::ApiGateway::Method", "RestApiId", &api) {
        let p = &m.properties;
        let source = format!("Resources.{}.Properties", m.logical_id);
        let Some(id) = p["RequestValidatorId"].as_str() else {
            continue;
        };
        let Some(v) = validators.get(id) else {
            errors.push(format!(
                "{source}.RequestValidatorId: {id:?} names no AWS::ApiGateway::RequestValidator of {api}"
            ));
            continue;
        };
        let yes = |v: &Value| v.as_bool() == Some(true) || v.as_str() == Some("true");
        let required = if yes(&v.properties["ValidateRequestParameters"]) {
            p["RequestParameters"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, required)| yes(required))
                .filter_map(|(k, _)| {
                    let (place, name) = k.strip_prefix("method.request.")?.split_once('.')?;
                    let place = match place {
                        "querystring" | "multivaluequerystring" => "query",
                        "header" | "multivalueheader" => "header",
                        "path" => "path",
                        _ => return None,
                    };
                    Some((place.to_owned(), name.to_owned()))
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut body_schema = None;
        if yes(&v.properties["ValidateRequestBody"]) {
            let model = p["RequestModels"]
                .get("application/json")
                .or_else(|| {
                    p["RequestModels"]
                        .as_object()
                        .and_then(|m| m.values().next())
                })
                .and_then(Value::as_str);
            // Every REST API has the built-in models `Empty` and `Error`: `Empty` asks nothing
            // of the body.
            if let Some(model) = model.filter(|m| !matches!(*m, "Empty" | "Error")) {
                let Some(found) = models
                    .iter()
                    .find(|m| m.logical_id == model || name_of(m) == model)
                else {
                    errors.push(format!(
                        "{source}.RequestModels: {model:?} names no AWS::ApiGateway::Model of {api}"
                    ));
                    continue;
                };
                body_schema = Some(serde_json::json!({
                    "allOf": [schemas[&found.logical_id]],
                    "definitions": definitions,
                }));
            }
        }
        if body_schema.is_none() && required.is_empty() {
            continue;
        }
        let validation = crate::config::RequestValidation {
            body_schema,
            required,
        };
        for route in config.routes.iter_mut().filter(|r| r.source == source) {
            route.validation = Some(validation.clone());
        }
    }
}

/// A model's schema with `$ref`s to other models' URLs made local (`#/definitions/NAME`).
fn model_refs(schema: &Value) -> Value {
    match schema {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v.as_str()) {
                        ("$ref", Some(url)) if url.contains("/models/") => {
                            let name = url.rsplit("/models/").next().unwrap_or_default();
                            Value::from(format!("#/definitions/{name}"))
                        }
                        _ => model_refs(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(model_refs).collect()),
        other => other.clone(),
    }
}

/// The API's `AWS::ApiGateway::GatewayResponse`s.
fn gateway_responses(stack: &Stack, config: &mut ApiConfig, errors: &mut Vec<String>) {
    let api = config.logical_id.clone();
    for r in members(stack, "AWS::ApiGateway::GatewayResponse", "RestApiId", &api) {
        let at = format!("Resources.{}.Properties", r.logical_id);
        let Some(ty) = r.properties["ResponseType"].as_str() else {
            errors.push(format!(
                "{at}.ResponseType: required (DEFAULT_4XX, UNAUTHORIZED, ...)"
            ));
            continue;
        };
        if let Some(g) = crate::gateway_responses::read(ty, &r.properties, &at, errors) {
            config.gateway_responses.insert(ty.to_owned(), g);
        }
    }
}

fn http_api(
    stack: &Stack,
    api: &Resource,
    function_named: &dyn Fn(&str) -> bool,
    errors: &mut Vec<String>,
) -> Option<ApiConfig> {
    let id = &api.logical_id;
    let p = &api.properties;
    let quick_target = p["Target"].as_str();
    // Quick create makes the $default stage itself.
    let (stage, variables, others) = stage_of(
        stack,
        id,
        "AWS::ApiGatewayV2::Stage",
        "AWS::ApiGatewayV2::Deployment",
        "ApiId",
    )
    .unwrap_or_else(|| ("$default".into(), BTreeMap::new(), Vec::new()));
    let mut config = empty_api(id, ApiKind::Http, stage);
    config.stage_variables = variables;
    config.notes = others;
    if !p["CorsConfiguration"].is_null() {
        config.cors = Some(p["CorsConfiguration"].clone());
    }
    if !p["Body"].is_null() {
        let read = crate::openapi::read(
            id,
            ApiKind::Http,
            &p["Body"],
            &format!("Resources.{id}.Properties.Body"),
            function_named,
            errors,
        );
        config.routes = read.routes;
        config.notes.extend(read.warnings);
        config.authorizers.extend(read.authorizers);
        if config.cors.is_none() {
            config.cors = read.cors;
        }
    }
    authorizers(
        stack,
        &mut config,
        "AWS::ApiGatewayV2::Authorizer",
        "ApiId",
        errors,
    );
    let source = format!("Resources.{id}.Properties");
    if let Some(target) = quick_target {
        match crate::openapi::function_of_uri(target) {
            Some(function) if function_named(&function) => {
                let key = p["RouteKey"].as_str().unwrap_or("$default");
                if let Some(route) = http_route(key, function, PayloadVersion::V2, 30_000, &source, errors) {
                    config.routes.push(route);
                }
            }
            _ => errors.push(format!(
                "{source}.Target: {target:?} names no Lambda function of the template (quick create serves a Lambda target)"
            )),
        }
    }
    let integrations: BTreeMap<&str, &Resource> =
        members(stack, "AWS::ApiGatewayV2::Integration", "ApiId", id)
            .map(|r| (r.logical_id.as_str(), r))
            .collect();
    for route in members(stack, "AWS::ApiGatewayV2::Route", "ApiId", id) {
        let source = format!("Resources.{}.Properties", route.logical_id);
        let key = route.properties["RouteKey"].as_str().unwrap_or_default();
        let target = route.properties["Target"].as_str().unwrap_or_default();
        let Some(integration) = target
            .strip_prefix("integrations/")
            .and_then(|i| integrations.get(i))
        else {
            errors.push(format!(
                "{source}.Target: {target:?} names no AWS::ApiGatewayV2::Integration of {id}; write integrations/<integration id> (!Sub integrations/${{MyIntegration}})"
            ));
            continue;
        };
        let ip = &integration.properties;
        // A route whose integration is not a function (a service, an HTTP proxy, or one nimbus
        // does not serve).
        let no_function = |payload, ms, errors: &mut Vec<String>| {
            http_route(key, String::new(), payload, ms, &source, errors)
        };
        let ty = ip["IntegrationType"].as_str().unwrap_or_default();
        let subtype = ip["IntegrationSubtype"].as_str();
        if let Some(subtype) = subtype.filter(|s| crate::service::SERVED.contains(s)) {
            let parameters = ip["RequestParameters"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect();
            let ms = ip["TimeoutInMillis"].as_u64().unwrap_or(30_000);
            if let Some(mut r) = no_function(PayloadVersion::V1, ms, errors) {
                r.service = Some(crate::service::ServiceIntegration {
                    subtype: subtype.to_owned(),
                    parameters,
                });
                config.routes.push(r);
            }
            continue;
        }
        if ty == "HTTP_PROXY" {
            if let Ok(rest) = crate::integration::read(
                ip,
                &format!("Resources.{}.Properties", integration.logical_id),
                errors,
            ) {
                if let Some(mut r) = no_function(PayloadVersion::V2, 30_000, errors) {
                    r.rest = Some(Box::new(rest));
                    config.routes.push(r);
                }
                continue;
            }
        }
        if ty != "AWS_PROXY" || subtype.is_some() {
            let what = subtype.unwrap_or(ty);
            let why = format!(
                "Resources.{}.Properties.IntegrationType: {what} integrations are not served by nimbus yet; route {key} of {id} answers 500, as a failing integration does",
                integration.logical_id
            );
            if let Some(mut r) = no_function(PayloadVersion::V2, 30_000, errors) {
                r.unserved = Some(why.clone());
                config.routes.push(r);
            }
            config.notes.push(why);
            continue;
        }
        let uri = ip["IntegrationUri"].as_str().unwrap_or_default();
        let function = match crate::openapi::function_of_uri(uri) {
            Some(f) if function_named(&f) => f,
            _ => {
                errors.push(format!(
                    "Resources.{}.Properties.IntegrationUri: {uri:?} names no Lambda function of the template",
                    integration.logical_id
                ));
                continue;
            }
        };
        let payload = match ip["PayloadFormatVersion"].as_str() {
            None | Some("2.0") => PayloadVersion::V2,
            Some("1.0") => PayloadVersion::V1,
            Some(other) => {
                errors.push(format!(
                    "Resources.{}.Properties.PayloadFormatVersion: {other:?} is not 1.0 or 2.0",
                    integration.logical_id
                ));
                continue;
            }
        };
        let ms = ip["TimeoutInMillis"].as_u64().unwrap_or(30_000);
        if let Some(r) = http_route(key, function, payload, ms, &source, errors) {
            config.routes.push(r);
        }
    }
    protect(
        stack,
        &mut config,
        "AWS::ApiGatewayV2::Route",
        "ApiId",
        errors,
    );
    // Each route's integration's response parameter mapping.
    for route in members(stack, "AWS::ApiGatewayV2::Route", "ApiId", id) {
        let source = format!("Resources.{}.Properties", route.logical_id);
        let target = route.properties["Target"].as_str().unwrap_or_default();
        let Some(integration) = target
            .strip_prefix("integrations/")
            .and_then(|i| integrations.get(i))
        else {
            continue;
        };
        let mapping =
            crate::service::response_parameters(&integration.properties["ResponseParameters"]);
        for r in config.routes.iter_mut().filter(|r| r.source == source) {
            r.response_parameters = mapping.clone();
        }
    }
    Some(config)
}

/// The API's authorizers of type `ty` (`AWS::ApiGateway::Authorizer`,
/// `AWS::ApiGatewayV2::Authorizer`), by logical id (what a method's `AuthorizerId: !Ref X`
/// gives).
fn authorizers(
    stack: &Stack,
    config: &mut ApiConfig,
    ty: &str,
    field: &str,
    errors: &mut Vec<String>,
) {
    let api = config.logical_id.clone();
    for a in members(stack, ty, field, &api) {
        let path = format!("Resources.{}.Properties", a.logical_id);
        match crate::authorizers::from_cfn(config.kind, &a.properties, &path) {
            Ok(Some(authorizer)) => {
                config.authorizers.insert(a.logical_id.clone(), authorizer);
            }
            Ok(None) => config.notes.push(format!(
                "{path}.Type: Cognito user pool authorizers are not served by nimbus; the methods {} protects are open",
                a.logical_id
            )),
            Err(e) => errors.push(e),
        }
    }
}

/// Puts each method's (route's) `AuthorizationType` and `AuthorizerId` on the routes read
/// from it: `CUSTOM` and `JWT` run that authorizer; `AWS_IAM` and Cognito are not checked,
/// which is said once.
fn protect(stack: &Stack, config: &mut ApiConfig, ty: &str, field: &str, errors: &mut Vec<String>) {
    let api = config.logical_id.clone();
    for m in members(stack, ty, field, &api) {
        let p = &m.properties;
        let source = format!("Resources.{}.Properties", m.logical_id);
        let auth = p["AuthorizationType"]
            .as_str()
            .unwrap_or("NONE")
            .to_ascii_uppercase();
        let name = match auth.as_str() {
            "NONE" => continue,
            "CUSTOM" | "JWT" | "COGNITO_USER_POOLS" => {
                let id = p["AuthorizerId"].as_str().unwrap_or_default();
                if config.authorizers.contains_key(id) {
                    id.to_owned()
                } else if auth == "COGNITO_USER_POOLS" {
                    continue;
                } else {
                    errors.push(format!(
                        "{source}.AuthorizerId: {id:?} names no authorizer of {api} (write !Ref MyAuthorizer, an {} of the API)",
                        if config.kind == ApiKind::Rest { "AWS::ApiGateway::Authorizer" } else { "AWS::ApiGatewayV2::Authorizer" }
                    ));
                    continue;
                }
            }
            other => {
                config.notes.push(format!(
                    "{source}.AuthorizationType: {other} is not checked by nimbus; the route is open"
                ));
                continue;
            }
        };
        let scopes: Vec<String> = p["AuthorizationScopes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| Some(s.as_str()?.to_owned()))
            .collect();
        for route in config.routes.iter_mut().filter(|r| r.source == source) {
            route.authorizer = Some(name.clone());
            route.authorization_scopes = scopes.clone();
        }
    }
}

/// An HTTP API route from its route key (`GET /items/{id}`, `ANY /x`, `$default`).
fn http_route(
    key: &str,
    function: String,
    payload: PayloadVersion,
    timeout_ms: u64,
    source: &str,
    errors: &mut Vec<String>,
) -> Option<RouteConfig> {
    let (method, path) = if key == "$default" {
        ("ANY".to_owned(), "$default".to_owned())
    } else {
        match key.split_once(' ') {
            Some((m, p)) if p.starts_with('/') => (m.to_uppercase(), p.to_owned()),
            _ => {
                errors.push(format!(
                    "{source}.RouteKey: {key:?} is not \"METHOD /path\" or $default"
                ));
                return None;
            }
        }
    };
    Some(RouteConfig::to_function(
        method,
        path,
        function,
        payload,
        Duration::from_millis(timeout_ms.clamp(50, 30_000)),
        source,
    ))
}

fn timeout(v: &Value, default_ms: u64) -> Duration {
    let ms = v
        .as_u64()
        .or_else(|| v.as_str()?.parse().ok())
        .unwrap_or(default_ms);
    Duration::from_millis(ms.clamp(50, default_ms.max(29_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "!Sub \"arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations\"";

    fn load(resources: &str) -> (BTreeMap<String, ApiConfig>, Vec<String>) {
        let yaml = format!(
            "Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties: {{Runtime: python3.12, Handler: index.h, Code: {{ZipFile: x}}}}\n{resources}"
        );
        let stack = nimbus_template::load(&yaml, "t.yaml", &Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(stack.warnings.is_empty(), "{:?}", stack.warnings);
        let mut errors = Vec::new();
        let apis = apis(&stack, &mut errors);
        (apis, errors)
    }

    fn rest(methods: &str) -> String {
        format!(
            r#"  Api:
    Type: AWS::ApiGateway::RestApi
    Properties: {{Name: api}}
  Items:
    Type: AWS::ApiGateway::Resource
    Properties: {{RestApiId: !Ref Api, ParentId: !GetAtt Api.RootResourceId, PathPart: items}}
  Item:
    Type: AWS::ApiGateway::Resource
    Properties: {{RestApiId: !Ref Api, ParentId: !Ref Items, PathPart: "{{id}}"}}
  Deployment:
    Type: AWS::ApiGateway::Deployment
    Properties: {{RestApiId: !Ref Api}}
  Stage:
    Type: AWS::ApiGateway::Stage
    Properties: {{RestApiId: !Ref Api, DeploymentId: !Ref Deployment, StageName: v1, Variables: {{table: t1}}}}
{methods}"#
        )
    }

    fn method(id: &str, resource: &str, verb: &str, integration: &str) -> String {
        format!("  {id}:\n    Type: AWS::ApiGateway::Method\n    Properties: {{RestApiId: !Ref Api, ResourceId: {resource}, HttpMethod: {verb}, AuthorizationType: NONE, Integration: {integration}}}\n")
    }

    #[test]
    fn a_rest_api_resource_tree_gives_paths_stage_and_lambda_routes() {
        let proxy = format!("{{Type: AWS_PROXY, IntegrationHttpMethod: POST, Uri: {URI}}}");
        let methods = [
            method("GetItem", "!Ref Item", "GET", &proxy),
            method("AnyRoot", "!GetAtt Api.RootResourceId", "ANY", &proxy),
            method("MockItems", "!Ref Items", "OPTIONS", "{Type: MOCK}"),
        ]
        .concat();
        let (apis, errors) = load(&rest(&methods));
        assert!(errors.is_empty(), "{errors:?}");
        let api = &apis["Api"];
        assert_eq!((api.kind, api.stage.as_str()), (ApiKind::Rest, "v1"));
        assert_eq!(api.stage_variables["table"], "t1");
        let routes: Vec<(String, &str, bool)> = api
            .routes
            .iter()
            .map(|r| (r.key(), r.function.as_str(), r.unserved.is_some()))
            .collect();
        assert_eq!(
            routes,
            [
                ("ANY /".to_owned(), "Fn", false),
                ("GET /items/{id}".to_owned(), "Fn", false),
                ("OPTIONS /items".to_owned(), "", false),
            ]
        );
        assert!(
            api.routes[2].rest.is_some(),
            "MOCK is served with its templates"
        );
        assert!(api.notes.is_empty(), "{:?}", api.notes);
    }

    #[test]
    fn mapping_templates_that_do_not_parse_are_errors_with_line_and_column() {
        let bad = method(
            "Mock",
            "!Ref Items",
            "GET",
            "{Type: MOCK, RequestTemplates: {application/json: \"{\\n #if($x\"}}",
        );
        let (apis, errors) = load(&rest(&bad));
        assert_eq!(
            errors,
            ["Resources.Mock.Properties.Integration.RequestTemplates.application/json: the mapping template does not parse: line 2, column 8: expected \")\""]
        );
        assert!(apis["Api"].routes[0].rest.is_some());
    }

    #[test]
    fn broken_rest_trees_are_errors_naming_the_property() {
        let cases = [
            (
                "  Loop1:\n    Type: AWS::ApiGateway::Resource\n    Properties: {RestApiId: !Ref Api, ParentId: !Ref Loop2, PathPart: a}\n  Loop2:\n    Type: AWS::ApiGateway::Resource\n    Properties: {RestApiId: !Ref Api, ParentId: !Ref Loop1, PathPart: b}\n",
                "Resources.Loop2.Properties.ParentId: the resource tree of Api has a cycle (Loop1 -> Loop2)",
            ),
            (
                "  Orphan:\n    Type: AWS::ApiGateway::Resource\n    Properties: {RestApiId: !Ref Api, ParentId: nowhere, PathPart: a}\n",
                "Resources.Orphan.Properties.ParentId: \"nowhere\" is neither a resource of Api nor its root (!GetAtt Api.RootResourceId)",
            ),
        ];
        for (extra, want) in cases {
            let (_, errors) = load(&rest(extra));
            assert!(errors.iter().any(|e| e == want), "{want}\n{errors:#?}");
        }
        let (_, errors) =
            load("  Api:\n    Type: AWS::ApiGateway::RestApi\n    Properties: {Name: a}\n");
        assert_eq!(errors, ["Resources.Api: the REST API has no AWS::ApiGateway::Stage (or Deployment with a StageName), so it is not deployed; add one"]);
    }

    #[test]
    fn http_apis_from_routes_integrations_or_quick_create() {
        let (apis, errors) = load(
            r#"  Http:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: h, ProtocolType: HTTP}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Http, IntegrationType: AWS_PROXY, IntegrationUri: !GetAtt Fn.Arn, PayloadFormatVersion: "1.0"}
  Route:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Http, RouteKey: "GET /things/{id}", Target: !Sub "integrations/${Integration}"}
  Sqs:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Http, IntegrationType: AWS_PROXY, IntegrationSubtype: Kinesis-PutRecord}
  SqsRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Http, RouteKey: "POST /send", Target: !Sub "integrations/${Sqs}"}
  Quick:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: q, ProtocolType: HTTP, Target: !GetAtt Fn.Arn}
"#,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let http = &apis["Http"];
        assert_eq!(http.stage, "$default");
        let r = &http.routes[0];
        assert_eq!(
            (r.key(), r.payload),
            ("GET /things/{id}".to_owned(), PayloadVersion::V1)
        );
        assert_eq!(http.routes.len(), 2);
        assert!(http.routes[1].unserved.is_some());
        assert!(
            http.notes[0].contains("Kinesis-PutRecord integrations are not served by nimbus yet"),
            "{:?}",
            http.notes
        );
        assert_eq!(apis["Quick"].routes[0].key(), "$default");
    }
}
