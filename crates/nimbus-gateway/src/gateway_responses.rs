//! REST APIs' gateway responses: what API Gateway answers when it refuses or fails a request
//! itself (no route, a missing key, an authorizer's deny, throttling, a failed validation or
//! integration), customised per response type with a status, headers and a body template.
//! Declared as SAM's `GatewayResponses`, OpenAPI's `x-amazon-apigateway-gateway-responses` or
//! `AWS::ApiGateway::GatewayResponse`; the usual reason is CORS headers on 4XX answers, which a
//! browser needs to read them at all.

use std::collections::BTreeMap;

use nimbus_core::vtl::{Host, Template};
use serde_json::{json, Value};

/// One response type's customisation.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayResponse {
    pub status: Option<u16>,
    /// Header name -> `'literal'` or `method.request.header.x` (also `querystring`, `path`).
    pub headers: BTreeMap<String, String>,
    /// By content type; API Gateway renders `application/json`'s unless the request accepts
    /// another that is declared.
    pub templates: BTreeMap<String, Template>,
}

/// The response types, as API Gateway names them.
const TYPES: &[&str] = &[
    "ACCESS_DENIED",
    "API_CONFIGURATION_ERROR",
    "AUTHORIZER_CONFIGURATION_ERROR",
    "AUTHORIZER_FAILURE",
    "BAD_REQUEST_BODY",
    "BAD_REQUEST_PARAMETERS",
    "DEFAULT_4XX",
    "DEFAULT_5XX",
    "EXPIRED_TOKEN",
    "INTEGRATION_FAILURE",
    "INTEGRATION_TIMEOUT",
    "INVALID_API_KEY",
    "INVALID_SIGNATURE",
    "MISSING_AUTHENTICATION_TOKEN",
    "QUOTA_EXCEEDED",
    "REQUEST_TOO_LARGE",
    "RESOURCE_NOT_FOUND",
    "THROTTLED",
    "UNAUTHORIZED",
    "UNSUPPORTED_MEDIA_TYPE",
    "WAF_FILTERED",
];

/// Reads one declaration of `response_type` at `at`, in SAM's shape (`StatusCode`,
/// `ResponseParameters: {Headers: {...}}`, `ResponseTemplates`), CloudFormation's
/// (`ResponseParameters: {gatewayresponse.header.X: ...}`) or OpenAPI's (camel case).
pub fn read(
    response_type: &str,
    v: &Value,
    at: &str,
    errors: &mut Vec<String>,
) -> Option<GatewayResponse> {
    if !TYPES.contains(&response_type) {
        errors.push(format!(
            "{at}: {response_type:?} is not a gateway response type ({})",
            TYPES.join(", ")
        ));
        return None;
    }
    let field = |cfn: &str| crate::integration::get(v, cfn);
    let status = match field("StatusCode").clone() {
        Value::Null => None,
        s => match s.as_u64().or_else(|| s.as_str()?.parse().ok()) {
            Some(n @ 100..=599) => Some(n as u16),
            _ => {
                errors.push(format!("{at}.StatusCode: {s} is not an HTTP status"));
                return None;
            }
        },
    };
    let mut headers = BTreeMap::new();
    let params = field("ResponseParameters");
    for (k, value) in params.as_object().into_iter().flatten() {
        match (k.as_str(), value) {
            // SAM: {Headers: {Name: value}} (Paths and QueryStrings set nothing a client sees).
            ("Headers", Value::Object(m)) => {
                for (name, value) in m {
                    headers.insert(name.clone(), value.as_str().unwrap_or_default().to_owned());
                }
            }
            ("Paths" | "QueryStrings", _) => {}
            (k, Value::String(s)) => {
                if let Some(name) = k.strip_prefix("gatewayresponse.header.") {
                    headers.insert(name.to_owned(), s.clone());
                }
            }
            (k, other) => errors.push(format!(
                "{at}.ResponseParameters.{k}: expected a string, got {other}"
            )),
        }
    }
    let mut templates = BTreeMap::new();
    for (content_type, text) in field("ResponseTemplates").as_object().into_iter().flatten() {
        match Template::parse(text.as_str().unwrap_or_default()) {
            Ok(t) => {
                templates.insert(content_type.clone(), t);
            }
            Err(e) => errors.push(format!(
                "{at}.ResponseTemplates.{content_type}: the template does not parse: {e}"
            )),
        }
    }
    Some(GatewayResponse {
        status,
        headers,
        templates,
    })
}

/// Which response type a gateway error is, from its `x-amzn-errortype`, status and message.
pub fn response_type(error_type: &str, status: u16, message: &str) -> &'static str {
    match (error_type, status) {
        ("MissingAuthenticationTokenException", _) => "MISSING_AUTHENTICATION_TOKEN",
        ("ForbiddenException", 403) => "INVALID_API_KEY",
        ("UnauthorizedException", _) => "UNAUTHORIZED",
        ("AccessDeniedException", _) => "ACCESS_DENIED",
        ("AuthorizerConfigurationException", _) => "AUTHORIZER_CONFIGURATION_ERROR",
        ("TooManyRequestsException", _) => "THROTTLED",
        ("LimitExceededException", _) => "QUOTA_EXCEEDED",
        ("UnsupportedMediaTypeException", _) => "UNSUPPORTED_MEDIA_TYPE",
        ("RequestTooLargeException", _) => "REQUEST_TOO_LARGE",
        ("BadRequestException", _) if message.starts_with("Invalid request body") => {
            "BAD_REQUEST_BODY"
        }
        ("BadRequestException", _) if message.starts_with("Missing required request") => {
            "BAD_REQUEST_PARAMETERS"
        }
        (_, 504) => "INTEGRATION_TIMEOUT",
        ("InternalServerErrorException", _) => "INTEGRATION_FAILURE",
        (_, 400..=499) => "DEFAULT_4XX",
        _ => "DEFAULT_5XX",
    }
}

/// The customisation that applies to a response of `ty` with `status`: its own, else the
/// default of its class.
pub fn lookup<'a>(
    responses: &'a BTreeMap<String, GatewayResponse>,
    ty: &str,
    status: u16,
) -> Option<&'a GatewayResponse> {
    responses.get(ty).or_else(|| {
        responses.get(if status >= 500 {
            "DEFAULT_5XX"
        } else {
            "DEFAULT_4XX"
        })
    })
}

/// What a gateway response's template and parameters may read.
pub struct Request<'a> {
    pub request_id: &'a str,
    pub stage: &'a str,
    pub api_id: &'a str,
    pub headers: &'a [(String, String)],
    pub query: &'a [(String, String)],
    pub stage_variables: &'a BTreeMap<String, String>,
    pub response_type: &'a str,
    pub message: Option<&'a str>,
}

impl Request<'_> {
    /// A header parameter's value: `'literal'`, `method.request.header.x`,
    /// `method.request.querystring.x`, `stageVariables.x`.
    pub fn parameter(&self, source: &str) -> Option<String> {
        if let Some(l) = source.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            return Some(l.to_owned());
        }
        let find = |list: &[(String, String)], name: &str, fold: bool| {
            list.iter()
                .find(|(k, _)| {
                    if fold {
                        k.eq_ignore_ascii_case(name)
                    } else {
                        k == name
                    }
                })
                .map(|(_, v)| v.clone())
        };
        if let Some(h) = source.strip_prefix("method.request.header.") {
            return find(self.headers, h, true);
        }
        if let Some(q) = source.strip_prefix("method.request.querystring.") {
            return find(self.query, q, false);
        }
        if let Some(s) = source.strip_prefix("stageVariables.") {
            return self.stage_variables.get(s).cloned();
        }
        None
    }
}

impl Host for Request<'_> {
    fn body(&self) -> &str {
        ""
    }

    fn params(&self) -> Value {
        let map = |list: &[(String, String)]| {
            list.iter()
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect::<serde_json::Map<_, _>>()
        };
        json!({"header": map(self.headers), "querystring": map(self.query), "path": {}})
    }

    fn variable(&self, name: &str) -> Option<Value> {
        match name {
            "context" => Some(json!({
                "requestId": self.request_id,
                "extendedRequestId": self.request_id,
                "stage": self.stage,
                "apiId": self.api_id,
                "error": {
                    "message": self.message,
                    // `messageString` is the message as a JSON string literal, quotes
                    // included: `{"message":$context.error.messageString}`.
                    "messageString": Value::from(self.message).to_string(),
                    "responseType": self.response_type,
                    "validationErrorString": self.message.filter(|_| self.response_type.starts_with("BAD_REQUEST")),
                },
            })),
            "stageVariables" => Some(json!(self.stage_variables)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_errors_map_to_their_response_types() {
        let table = [
            (
                "MissingAuthenticationTokenException",
                403,
                "Missing Authentication Token",
                "MISSING_AUTHENTICATION_TOKEN",
            ),
            ("ForbiddenException", 403, "Forbidden", "INVALID_API_KEY"),
            ("UnauthorizedException", 401, "Unauthorized", "UNAUTHORIZED"),
            (
                "AccessDeniedException",
                403,
                "User is not authorized",
                "ACCESS_DENIED",
            ),
            (
                "TooManyRequestsException",
                429,
                "Too Many Requests",
                "THROTTLED",
            ),
            (
                "LimitExceededException",
                429,
                "Limit Exceeded",
                "QUOTA_EXCEEDED",
            ),
            (
                "BadRequestException",
                400,
                "Invalid request body",
                "BAD_REQUEST_BODY",
            ),
            (
                "BadRequestException",
                400,
                "Missing required request parameters: [a]",
                "BAD_REQUEST_PARAMETERS",
            ),
            (
                "InternalServerErrorException",
                504,
                "Endpoint request timed out",
                "INTEGRATION_TIMEOUT",
            ),
            (
                "InternalServerErrorException",
                500,
                "Internal server error",
                "INTEGRATION_FAILURE",
            ),
            ("ServiceUnavailable", 503, "simulated", "DEFAULT_5XX"),
        ];
        for (error_type, status, message, want) in table {
            assert_eq!(
                response_type(error_type, status, message),
                want,
                "{error_type}"
            );
        }
    }

    #[test]
    fn each_declaration_shape_reads_the_same() {
        let sam = json!({"StatusCode": 400, "ResponseParameters": {"Headers": {"Access-Control-Allow-Origin": "'*'"}}, "ResponseTemplates": {"application/json": "{\"m\":$context.error.messageString}"}});
        let cfn = json!({"StatusCode": "400", "ResponseParameters": {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"}, "ResponseTemplates": {"application/json": "{\"m\":$context.error.messageString}"}});
        let openapi = json!({"statusCode": 400, "responseParameters": {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"}, "responseTemplates": {"application/json": "{\"m\":$context.error.messageString}"}});
        let mut errors = Vec::new();
        let a = read("DEFAULT_4XX", &sam, "S", &mut errors);
        assert_eq!(a, read("DEFAULT_4XX", &cfn, "C", &mut errors));
        assert_eq!(a, read("DEFAULT_4XX", &openapi, "O", &mut errors));
        assert!(errors.is_empty(), "{errors:?}");
        let a = a.unwrap();
        assert_eq!(a.status, Some(400));
        let req = Request {
            request_id: "r",
            stage: "v1",
            api_id: "a",
            headers: &[],
            query: &[],
            stage_variables: &BTreeMap::new(),
            response_type: "DEFAULT_4XX",
            message: Some("say \"hi\""),
        };
        assert_eq!(
            a.templates["application/json"].render(&req).unwrap(),
            r#"{"m":"say \"hi\""}"#
        );
    }

    #[test]
    fn bad_declarations_name_the_property() {
        let mut errors = Vec::new();
        assert!(read("DEFAULT_4X", &json!({}), "G", &mut errors).is_none());
        assert!(read("THROTTLED", &json!({"StatusCode": 42}), "T", &mut errors).is_none());
        read(
            "UNAUTHORIZED",
            &json!({"ResponseTemplates": {"application/json": "#if("}}),
            "U",
            &mut errors,
        );
        assert!(
            errors[0].starts_with("G: \"DEFAULT_4X\" is not a gateway response type"),
            "{errors:?}"
        );
        assert_eq!(errors[1], "T.StatusCode: 42 is not an HTTP status");
        assert!(
            errors[2]
                .starts_with("U.ResponseTemplates.application/json: the template does not parse"),
            "{errors:?}"
        );
    }
}
