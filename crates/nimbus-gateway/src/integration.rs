//! REST API integrations other than Lambda proxy: `MOCK`, and `AWS` service integrations to
//! the services nimbus serves (SQS, EventBridge), with request and response mapping templates
//! (Velocity, `nimbus_core::vtl`), `IntegrationResponses` chosen by `SelectionPattern`, and
//! static or integration-header `ResponseParameters`. Read from CloudFormation's `Integration`
//! (capitalised keys) or OpenAPI's `x-amazon-apigateway-integration` (camel case). Pure: the
//! service call goes through [`crate::service::Services`].

use std::collections::BTreeMap;

use nimbus_core::vtl::Template;
use serde_json::Value;

/// What the integration calls.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    Mock,
    /// Lambda non-proxy: the function gets the mapped body as its event.
    Lambda {
        function: String,
    },
    /// `HTTP_PROXY`: the request goes to this URL (`{name}` filled from path parameters) and
    /// the answer comes back as it is.
    HttpProxy {
        url: String,
    },
    /// `HTTP` (non-proxy): the mapped request to this URL (`{name}` filled from
    /// `integration.request.path.*`), its answer through the integration responses.
    Http {
        url: String,
    },
    /// `arn:aws:apigateway:REGION:SERVICE:path/...` or `...:action/NAME`: the service and the
    /// rest (`path/123456789012/queue`, `action/PutEvents`).
    Aws {
        service: String,
        target: String,
    },
}

/// The services an `AWS` integration may name: those nimbus serves on its AWS endpoint (by
/// their name in `arn:aws:apigateway:REGION:SERVICE:...`).
pub const AWS_SERVICES: &[&str] = &[
    "sqs",
    "sns",
    "events",
    "states",
    "dynamodb",
    "ssm",
    "secretsmanager",
    "s3",
    "logs",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// A Java regular expression the integration's status (or error) must match; `None` for
    /// the default response.
    pub selection_pattern: Option<RegexEq>,
    pub status: u16,
    pub templates: BTreeMap<String, Template>,
    /// `method.response.header.X` -> `'literal'` or `integration.response.header.y`.
    pub parameters: BTreeMap<String, String>,
    /// `ContentHandling`: `CONVERT_TO_TEXT`, `CONVERT_TO_BINARY`, or none (passthrough).
    pub content_handling: Option<String>,
}

/// `regex::Regex` compared by its source, so configurations stay comparable.
#[derive(Debug, Clone)]
pub struct RegexEq(pub regex::Regex);

impl PartialEq for RegexEq {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// How a request body reaches the integration (`PassthroughBehavior`).
pub enum RequestBody<'a> {
    Template(&'a Template),
    Passthrough,
    /// No template for the content type, and passing it through is not allowed: 415.
    Unsupported,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RestIntegration {
    pub backend: Backend,
    /// By content type.
    pub request_templates: BTreeMap<String, Template>,
    /// `WHEN_NO_MATCH` (the default), `WHEN_NO_TEMPLATES` or `NEVER`.
    pub passthrough: String,
    /// `integration.request.header.X` -> `'literal'` or `method.request.header.y` (and
    /// `querystring`, `path`).
    pub request_parameters: BTreeMap<String, String>,
    /// `IntegrationHttpMethod` (OpenAPI `httpMethod`): how an `AWS` integration calls the
    /// service.
    pub http_method: String,
    /// `ContentHandling` of the integration request.
    pub content_handling: Option<String>,
    pub responses: Vec<Response>,
}

/// Looks a key up in CloudFormation's casing, then OpenAPI's.
pub(crate) fn get<'v>(v: &'v Value, cfn: &str) -> &'v Value {
    let mut camel = cfn.to_owned();
    if let Some(first) = camel.get_mut(0..1) {
        first.make_ascii_lowercase();
    }
    if v[cfn].is_null() {
        &v[camel.as_str()]
    } else {
        &v[cfn]
    }
}

fn strings(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

fn templates(v: &Value, at: &str, errors: &mut Vec<String>) -> BTreeMap<String, Template> {
    let mut out = BTreeMap::new();
    for (content_type, text) in strings(v) {
        match Template::parse(&text) {
            Ok(t) => {
                out.insert(content_type, t);
            }
            Err(e) => errors.push(format!(
                "{at}.{content_type}: the mapping template does not parse: {e}"
            )),
        }
    }
    out
}

/// The integration at `at` (`Resources.M.Properties.Integration` or an OpenAPI path), when it
/// is a MOCK or an AWS integration to a service nimbus serves. `Err` carries why it is not
/// served (said once; the route answers 500).
pub fn read(
    integration: &Value,
    at: &str,
    errors: &mut Vec<String>,
) -> Result<RestIntegration, String> {
    // REST and OpenAPI say `Type`; AWS::ApiGatewayV2::Integration says `IntegrationType`.
    let ty = get(integration, "Type")
        .as_str()
        .or_else(|| integration["IntegrationType"].as_str())
        .unwrap_or_default()
        .to_ascii_uppercase();
    let backend = match ty.as_str() {
        "MOCK" => Backend::Mock,
        "HTTP_PROXY" | "HTTP" => {
            let url = get(integration, "Uri")
                .as_str()
                .or_else(|| get(integration, "IntegrationUri").as_str())
                .unwrap_or_default();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "{at}.Uri: {url:?} is not an http:// or https:// URL (a VPC link or Cloud Map integration is not served by nimbus)"
                ));
            }
            let url = url.to_owned();
            match ty.as_str() {
                "HTTP" => Backend::Http { url },
                _ => Backend::HttpProxy { url },
            }
        }
        "AWS"
            if get(integration, "Uri")
                .as_str()
                .is_some_and(|u| u.contains(":lambda:path/")) =>
        {
            let uri = get(integration, "Uri").as_str().unwrap_or_default();
            match crate::openapi::function_of_uri(uri) {
                Some(function) => Backend::Lambda { function },
                None => return Err(format!("{at}.Uri: {uri:?} names no Lambda function")),
            }
        }
        "AWS" => {
            let uri = get(integration, "Uri").as_str().unwrap_or_default();
            // arn:aws:apigateway:REGION:SERVICE:path/... | action/...
            let parts: Vec<&str> = uri.splitn(6, ':').collect();
            match parts.as_slice() {
                [_, _, "apigateway", _, service, target]
                    if AWS_SERVICES.contains(service)
                        && (target.starts_with("path/") || target.starts_with("action/")) =>
                {
                    Backend::Aws {
                        service: (*service).to_owned(),
                        target: (*target).to_owned(),
                    }
                }
                [_, _, "apigateway", _, service, target]
                    if AWS_SERVICES.contains(service) =>
                {
                    return Err(format!("{at}.Uri: {target:?} is neither path/... nor action/NAME"))
                }
                [_, _, "apigateway", _, service, _] => {
                    return Err(format!(
                        "{at}.Type: AWS integrations with {service} are not served by nimbus yet (it serves {})",
                        AWS_SERVICES.join(", ")
                    ))
                }
                _ => return Err(format!("{at}.Uri: {uri:?} is not an arn:aws:apigateway:REGION:SERVICE:path/... or action/... URI")),
            }
        }
        other => {
            return Err(format!(
                "{at}.Type: {other} integrations are not served by nimbus yet"
            ))
        }
    };
    let mut responses = Vec::new();
    match get(integration, "IntegrationResponses") {
        // CloudFormation: a list with SelectionPattern.
        Value::Array(items) => {
            for (i, r) in items.iter().enumerate() {
                let rat = format!("{at}.IntegrationResponses[{i}]");
                responses.extend(response(
                    r,
                    get(r, "SelectionPattern").as_str(),
                    &rat,
                    errors,
                ));
            }
        }
        // OpenAPI: `responses` keyed by the pattern (`default` for the default).
        _ => {
            for (pattern, r) in integration["responses"].as_object().into_iter().flatten() {
                let rat = format!("{at}.responses.{pattern}");
                let pattern = (pattern != "default").then_some(pattern.as_str());
                responses.extend(response(r, pattern, &rat, errors));
            }
        }
    }
    Ok(RestIntegration {
        backend,
        request_templates: templates(
            get(integration, "RequestTemplates"),
            &format!("{at}.RequestTemplates"),
            errors,
        ),
        passthrough: get(integration, "PassthroughBehavior")
            .as_str()
            .unwrap_or("WHEN_NO_MATCH")
            .to_ascii_uppercase(),
        request_parameters: strings(get(integration, "RequestParameters")),
        http_method: get(integration, "IntegrationHttpMethod")
            .as_str()
            .or_else(|| integration["httpMethod"].as_str())
            .unwrap_or("POST")
            .to_ascii_uppercase(),
        content_handling: content_handling(integration, at, errors),
        responses,
    })
}

fn response(
    r: &Value,
    pattern: Option<&str>,
    at: &str,
    errors: &mut Vec<String>,
) -> Option<Response> {
    let status = get(r, "StatusCode");
    let status = status
        .as_u64()
        .or_else(|| status.as_str()?.parse().ok())
        .unwrap_or(200) as u16;
    let selection_pattern = match pattern.filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(re) => Some(RegexEq(re)),
            Err(e) => {
                errors.push(format!(
                    "{at}.SelectionPattern: {p:?} is not a regular expression: {e}"
                ));
                return None;
            }
        },
    };
    Some(Response {
        selection_pattern,
        status,
        templates: templates(
            get(r, "ResponseTemplates"),
            &format!("{at}.ResponseTemplates"),
            errors,
        ),
        parameters: strings(get(r, "ResponseParameters")),
        content_handling: content_handling(r, at, errors),
    })
}

/// `ContentHandling` (`contentHandling`): one of API Gateway's two conversions, or none.
fn content_handling(v: &Value, at: &str, errors: &mut Vec<String>) -> Option<String> {
    let h = get(v, "ContentHandling").as_str()?;
    match h {
        "CONVERT_TO_TEXT" | "CONVERT_TO_BINARY" => Some(h.to_owned()),
        other => {
            errors.push(format!(
                "{at}.ContentHandling: {other:?} is not CONVERT_TO_TEXT or CONVERT_TO_BINARY"
            ));
            None
        }
    }
}

/// The integration request's payload, as API Gateway converts it ("Content type conversions
/// in API Gateway"): `binary` is whether the request's `Content-Type` is one of the API's
/// binary media types. Text with `CONVERT_TO_BINARY` is base64-decoded (`Err` if it is not
/// base64); binary with `CONVERT_TO_TEXT` is base64-encoded; anything else passes as it is.
pub fn convert_request(
    body: &[u8],
    binary: bool,
    handling: Option<&str>,
) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    match (binary, handling) {
        (false, Some("CONVERT_TO_BINARY")) => b64
            .decode(body.trim_ascii())
            .map_err(|e| format!("CONVERT_TO_BINARY: the request body is not base64: {e}")),
        (true, Some("CONVERT_TO_TEXT")) => Ok(b64.encode(body).into_bytes()),
        _ => Ok(body.to_vec()),
    }
}

/// The method response's payload from the integration's, as API Gateway converts it:
/// `integration_binary` is whether the integration's answer is of a binary media type,
/// `accept_binary` whether the request's (first) `Accept` type is, `types_set` whether the
/// API has binary media types at all. Base64 that does not decode passes as it is.
pub fn convert_response(
    body: Vec<u8>,
    integration_binary: bool,
    accept_binary: bool,
    types_set: bool,
    handling: Option<&str>,
) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let decode = |body: Vec<u8>| b64.decode(body.trim_ascii()).unwrap_or(body);
    let encode = |body: Vec<u8>| b64.encode(body).into_bytes();
    if !types_set {
        return match handling {
            Some("CONVERT_TO_BINARY") => decode(body),
            _ => body,
        };
    }
    match (integration_binary, accept_binary, handling) {
        (false, false, Some("CONVERT_TO_BINARY")) => decode(body),
        (false, false, _) | (false, true, Some("CONVERT_TO_TEXT")) => body,
        (false, true, _) => decode(body),
        (true, false, Some("CONVERT_TO_BINARY")) => body,
        (true, false, _) | (true, true, Some("CONVERT_TO_TEXT")) => encode(body),
        (true, true, _) => body,
    }
}

impl RestIntegration {
    /// What becomes of a request body of `content_type`.
    pub fn request_body(&self, content_type: &str) -> RequestBody<'_> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let media = if media.is_empty() {
            "application/json".to_owned()
        } else {
            media
        };
        if let Some(t) = self.request_templates.get(&media) {
            return RequestBody::Template(t);
        }
        match self.passthrough.as_str() {
            "NEVER" => RequestBody::Unsupported,
            "WHEN_NO_TEMPLATES" if !self.request_templates.is_empty() => RequestBody::Unsupported,
            _ => RequestBody::Passthrough,
        }
    }

    /// The integration response for an integration status (for Lambda: a function error's
    /// `errorMessage`, else empty): the first whose pattern matches, else the default. As on
    /// API Gateway, a function error that no pattern matches gets the default response.
    pub fn response_for(&self, selector: &str) -> Option<&Response> {
        self.responses
            .iter()
            .filter(|_| !selector.is_empty())
            .find(|r| {
                r.selection_pattern
                    .as_ref()
                    .is_some_and(|p| p.0.is_match(selector))
            })
            .or_else(|| {
                self.responses
                    .iter()
                    .find(|r| r.selection_pattern.is_none())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (binary content type, contentHandling, body in, body out).
    type RequestCase = (bool, Option<&'static str>, &'static [u8], &'static [u8]);
    /// (integration answer binary, Accept binary, contentHandling, body in, body out).
    type ResponseCase = (
        bool,
        bool,
        Option<&'static str>,
        &'static [u8],
        &'static [u8],
    );

    const TO_TEXT: Option<&str> = Some("CONVERT_TO_TEXT");
    const TO_BINARY: Option<&str> = Some("CONVERT_TO_BINARY");

    #[test]
    fn request_payloads_convert_as_api_gateways_table_says() {
        let table: [RequestCase; 6] = [
            (false, None, b"aGk=", b"aGk="),
            (false, TO_BINARY, b"aGk=", b"hi"),
            (false, TO_TEXT, b"hi", b"hi"),
            (true, None, b"\xff\x00", b"\xff\x00"),
            (true, TO_BINARY, b"\xff\x00", b"\xff\x00"),
            (true, TO_TEXT, b"\xff\x00", b"/wA="),
        ];
        for (binary, handling, body, want) in table {
            assert_eq!(
                convert_request(body, binary, handling).unwrap(),
                want,
                "{binary} {handling:?}"
            );
        }
        assert!(convert_request(b"not base64!", false, TO_BINARY)
            .unwrap_err()
            .starts_with("CONVERT_TO_BINARY: the request body is not base64"));
    }

    #[test]
    fn response_payloads_convert_by_the_answer_the_accept_header_and_content_handling() {
        // With binary media types set.
        let table: [ResponseCase; 12] = [
            (false, false, None, b"aGk=", b"aGk="),
            (false, false, TO_BINARY, b"aGk=", b"hi"),
            (false, false, TO_TEXT, b"aGk=", b"aGk="),
            (false, true, None, b"aGk=", b"hi"),
            (false, true, TO_BINARY, b"aGk=", b"hi"),
            (false, true, TO_TEXT, b"aGk=", b"aGk="),
            (true, false, None, b"hi", b"aGk="),
            (true, false, TO_BINARY, b"hi", b"hi"),
            (true, false, TO_TEXT, b"hi", b"aGk="),
            (true, true, None, b"hi", b"hi"),
            (true, true, TO_BINARY, b"hi", b"hi"),
            (true, true, TO_TEXT, b"hi", b"aGk="),
        ];
        for (answer, accept, handling, body, want) in table {
            assert_eq!(
                convert_response(body.to_vec(), answer, accept, true, handling),
                want,
                "{answer} {accept} {handling:?}"
            );
        }
        // Without binary media types only CONVERT_TO_BINARY converts.
        assert_eq!(
            convert_response(b"aGk=".to_vec(), false, false, false, TO_BINARY),
            b"hi"
        );
        assert_eq!(
            convert_response(b"hi".to_vec(), true, false, false, TO_TEXT),
            b"hi"
        );
    }
}
