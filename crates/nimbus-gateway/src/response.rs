//! The Lambda proxy integration's output: turning what the function returned into the HTTP
//! response API Gateway sends, or into the reason API Gateway answers 502 instead.
//!
//! Payload 1.0 (`{statusCode, headers, multiValueHeaders, body, isBase64Encoded}`):
//! - `statusCode` is required: an integer, or a string of digits (AWS's own Python blueprints
//!   return `'200'`); it must be a real HTTP status, 100 to 599.
//! - `body` is a string or absent; anything else is malformed (AWS: "Malformed Lambda proxy
//!   response" for an object body).
//! - `headers` and `multiValueHeaders` merge into one list; a name/value pair present in both
//!   appears once, as the AWS guide states. A `null` header value is no header, and a `null`
//!   `Content-Type` keeps API Gateway from adding its default (AWS SAM CLI issue 1218).
//! - REST APIs reject any other field ("cookies" in a REST response is a 502, sst issue 2760)
//!   and also read `base64Encoded`; HTTP APIs ignore other fields (AWS SAM CLI, from trials).
//! - Without a `Content-Type`, REST answers `application/json` and HTTP APIs
//!   `text/plain; charset=utf-8`.
//!
//! Payload 2.0 adds `cookies` (each becomes a `set-cookie` header) and inference: valid JSON
//! without `statusCode` is a 200 `application/json` response whose body is the output itself
//! (a JSON string's content, without its quotes, as in the guide's example).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use nimbus_core::json::kind;
use serde_json::{Map, Value};

use crate::event::matches_media_type;
use crate::GatewayResponse;

/// Why API Gateway would answer 502 `{"message":"Internal server error"}` to this output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedResponse {
    #[error("the response is not valid JSON: {0}")]
    NotJson(String),
    #[error("the response is {0}, not a JSON object")]
    NotAnObject(&'static str),
    #[error("statusCode is missing")]
    MissingStatusCode,
    #[error("statusCode must be an integer from 100 to 599, got {0}")]
    InvalidStatusCode(String),
    #[error("{field} must be {expected}, got {got}")]
    InvalidField {
        field: String,
        expected: &'static str,
        got: &'static str,
    },
    #[error("unexpected field {0:?}: a REST API accepts only statusCode, headers, multiValueHeaders, body and isBase64Encoded")]
    UnexpectedField(String),
    #[error("isBase64Encoded is true but the body is not base64: {0}")]
    InvalidBase64(String),
}

const REST_FIELDS: [&str; 6] = [
    "statusCode",
    "headers",
    "multiValueHeaders",
    "body",
    "isBase64Encoded",
    "base64Encoded",
];
const REST_DEFAULT_CONTENT_TYPE: &str = "application/json";
const HTTP_API_DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// A REST API's payload 1.0 output, with a base64 body always decoded. This is what a client
/// sees when the request's `Accept` matches the API's `BinaryMediaTypes` (always with `*/*`);
/// [`map_rest`] applies that rule.
pub fn map_v1(payload: &[u8]) -> Result<GatewayResponse, MalformedResponse> {
    map_rest(payload, None, &["*/*".to_string()])
}

/// A REST API's payload 1.0 output. REST decodes a base64 body only when the first media type
/// of the request's `Accept` header matches `binary_media_types` (a missing `Accept` matches
/// only `*/*`); otherwise the client receives the base64 text, as on AWS.
pub fn map_rest(
    payload: &[u8],
    accept: Option<&str>,
    binary_media_types: &[String],
) -> Result<GatewayResponse, MalformedResponse> {
    let output = object(parse(payload)?)?;
    if let Some(field) = output.keys().find(|k| !REST_FIELDS.contains(&k.as_str())) {
        return Err(MalformedResponse::UnexpectedField(field.clone()));
    }
    let is_base64 = match output.get("base64Encoded") {
        Some(v) if !v.is_null() => flag("base64Encoded", v)?,
        _ => flag(
            "isBase64Encoded",
            output.get("isBase64Encoded").unwrap_or(&Value::Null),
        )?,
    };
    let first_accept = accept.and_then(|a| a.split(',').next()).unwrap_or_default();
    let decode = is_base64 && matches_media_type(first_accept, binary_media_types);
    v1(&output, decode, REST_DEFAULT_CONTENT_TYPE)
}

/// An HTTP API's payload 1.0 output.
pub fn map_v1_http(payload: &[u8]) -> Result<GatewayResponse, MalformedResponse> {
    let output = object(parse(payload)?)?;
    let is_base64 = flag(
        "isBase64Encoded",
        output.get("isBase64Encoded").unwrap_or(&Value::Null),
    )?;
    v1(&output, is_base64, HTTP_API_DEFAULT_CONTENT_TYPE)
}

/// An HTTP API's payload 2.0 output.
pub fn map_v2(payload: &[u8]) -> Result<GatewayResponse, MalformedResponse> {
    let output = parse(payload)?;
    let output = match output {
        Value::Object(map) if map.contains_key("statusCode") => map,
        inferred => {
            let body = match inferred {
                Value::String(s) => s.into_bytes(),
                _ => payload.to_vec(),
            };
            return Ok(GatewayResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body,
            });
        }
    };
    let status = status_code(&output)?;
    let mut headers = Vec::new();
    let mut content_type_suppressed = false;
    for (name, value) in header_map(&output, "headers")? {
        match value {
            Some(value) => headers.push((name, value)),
            None => content_type_suppressed |= name.eq_ignore_ascii_case("content-type"),
        }
    }
    match output.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cookies)) => {
            for (i, cookie) in cookies.iter().enumerate() {
                match cookie {
                    Value::String(c) => headers.push(("set-cookie".into(), c.clone())),
                    other => return Err(invalid(format!("cookies[{i}]"), "a string", other)),
                }
            }
        }
        Some(other) => return Err(invalid("cookies".into(), "an array of strings", other)),
    }
    add_default_content_type(
        &mut headers,
        content_type_suppressed,
        HTTP_API_DEFAULT_CONTENT_TYPE,
    );
    let is_base64 = flag(
        "isBase64Encoded",
        output.get("isBase64Encoded").unwrap_or(&Value::Null),
    )?;
    Ok(GatewayResponse {
        status,
        headers,
        body: body(&output, is_base64)?,
    })
}

fn v1(
    output: &Map<String, Value>,
    decode: bool,
    default_content_type: &str,
) -> Result<GatewayResponse, MalformedResponse> {
    let status = status_code(output)?;
    let single = header_map(output, "headers")?;
    let multi = multi_header_map(output)?;
    let mut content_type_suppressed = false;
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in &multi {
        match value {
            Some(value) => headers.push((name.clone(), value.clone())),
            None => content_type_suppressed |= name.eq_ignore_ascii_case("content-type"),
        }
    }
    for (name, value) in single {
        let Some(value) = value else {
            content_type_suppressed |= name.eq_ignore_ascii_case("content-type");
            continue;
        };
        let in_multi = multi
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(&name) && v.as_deref() == Some(value.as_str()));
        if !in_multi {
            headers.push((name, value));
        }
    }
    add_default_content_type(&mut headers, content_type_suppressed, default_content_type);
    Ok(GatewayResponse {
        status,
        headers,
        body: body(output, decode)?,
    })
}

fn parse(payload: &[u8]) -> Result<Value, MalformedResponse> {
    serde_json::from_slice(payload).map_err(|e| MalformedResponse::NotJson(e.to_string()))
}

fn object(value: Value) -> Result<Map<String, Value>, MalformedResponse> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(MalformedResponse::NotAnObject(kind(&other))),
    }
}

fn status_code(output: &Map<String, Value>) -> Result<u16, MalformedResponse> {
    let value = match output.get("statusCode") {
        None | Some(Value::Null) => return Err(MalformedResponse::MissingStatusCode),
        Some(v) => v,
    };
    let code = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    };
    match code {
        Some(c @ 100..=599) => Ok(c as u16),
        _ => Err(MalformedResponse::InvalidStatusCode(value.to_string())),
    }
}

/// `headers`: an object whose values are strings (numbers and booleans are taken as their
/// text, as JavaScript handlers often send them); `None` for a `null` value.
fn header_map(
    output: &Map<String, Value>,
    field: &str,
) -> Result<Vec<(String, Option<String>)>, MalformedResponse> {
    let map = match output.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(invalid(field.into(), "an object", other)),
    };
    map.iter()
        .map(|(name, value)| {
            Ok((
                name.clone(),
                scalar(value)
                    .map_err(|got| invalid_kind(format!("{field}.{name}"), "a string", got))?,
            ))
        })
        .collect()
}

/// `multiValueHeaders`: an object of arrays of header values, flattened in order.
fn multi_header_map(
    output: &Map<String, Value>,
) -> Result<Vec<(String, Option<String>)>, MalformedResponse> {
    let map = match output.get("multiValueHeaders") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(invalid("multiValueHeaders".into(), "an object", other)),
    };
    let mut out = Vec::new();
    for (name, values) in map {
        match values {
            Value::Null => {}
            Value::Array(values) => {
                for (i, value) in values.iter().enumerate() {
                    let value = scalar(value).map_err(|got| {
                        invalid_kind(format!("multiValueHeaders.{name}[{i}]"), "a string", got)
                    })?;
                    out.push((name.clone(), value));
                }
            }
            other => {
                return Err(invalid(
                    format!("multiValueHeaders.{name}"),
                    "an array",
                    other,
                ))
            }
        }
    }
    Ok(out)
}

fn scalar(value: &Value) -> Result<Option<String>, &'static str> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(kind(other)),
    }
}

/// `isBase64Encoded`: a boolean, or `"true"`/`"false"` in any case, which API Gateway also
/// accepts (AWS SAM CLI, from trials); absent or `null` is false.
fn flag(field: &str, value: &Value) -> Result<bool, MalformedResponse> {
    match value {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(invalid(field.into(), "a boolean", other)),
    }
}

fn body(output: &Map<String, Value>, decode: bool) -> Result<Vec<u8>, MalformedResponse> {
    let text = match output.get("body") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => s,
        Some(other) => return Err(invalid("body".into(), "a string", other)),
    };
    if !decode {
        return Ok(text.as_bytes().to_vec());
    }
    // Lenient about padding only: a missing `=` loses no data, so it is not worth a 502.
    const BASE64: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    BASE64
        .decode(text)
        .map_err(|e| MalformedResponse::InvalidBase64(e.to_string()))
}

fn add_default_content_type(headers: &mut Vec<(String, String)>, suppressed: bool, default: &str) {
    if !suppressed
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("content-type".into(), default.into()));
    }
}

fn invalid(field: String, expected: &'static str, got: &Value) -> MalformedResponse {
    invalid_kind(field, expected, kind(got))
}

fn invalid_kind(field: String, expected: &'static str, got: &'static str) -> MalformedResponse {
    MalformedResponse::InvalidField {
        field,
        expected,
        got,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Mapper = fn(&[u8]) -> Result<GatewayResponse, MalformedResponse>;

    /// `status headers… body` with headers sorted, so JSON object order does not matter.
    fn render(r: Result<GatewayResponse, MalformedResponse>) -> String {
        match r {
            Ok(r) => {
                let mut headers: Vec<String> =
                    r.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                headers.sort();
                format!(
                    "{} [{}] {}",
                    r.status,
                    headers.join(" | "),
                    String::from_utf8_lossy(&r.body)
                )
            }
            Err(e) => format!("error: {e}"),
        }
    }

    fn check(map: Mapper, cases: &[(&str, &str)]) {
        for (payload, want) in cases {
            assert_eq!(render(map(payload.as_bytes())), *want, "{payload}");
        }
    }

    #[test]
    fn rest_responses_map_as_aws_documents() {
        check(
            map_v1,
            &[
                (r#"{"statusCode":200,"body":"hi"}"#, "200 [content-type: application/json] hi"),
                (r#"{"statusCode":"201","headers":{"Content-Type":"text/plain"},"body":"x"}"#, "201 [Content-Type: text/plain] x"),
                (r#"{"statusCode":204}"#, "204 [content-type: application/json] "),
                (r#"{"statusCode":200,"body":null,"headers":null,"multiValueHeaders":null}"#, "200 [content-type: application/json] "),
                (
                    r#"{"statusCode":200,"headers":{"X-A":"1","X-B":"2"},"multiValueHeaders":{"X-A":["1","3"],"Set-Cookie":["a=1","b=2"]}}"#,
                    "200 [Set-Cookie: a=1 | Set-Cookie: b=2 | X-A: 1 | X-A: 3 | X-B: 2 | content-type: application/json] ",
                ),
                (r#"{"statusCode":200,"headers":{"x-a":"9"},"multiValueHeaders":{"X-A":["1"]}}"#, "200 [X-A: 1 | content-type: application/json | x-a: 9] "),
                (r#"{"statusCode":200,"headers":{"X-N":5,"X-T":true}}"#, "200 [X-N: 5 | X-T: true | content-type: application/json] "),
                // A null Content-Type is how a function asks for no Content-Type at all.
                (r#"{"statusCode":200,"headers":{"Content-Type":null,"X-Gone":null}}"#, "200 [] "),
                (r#"{"statusCode":200,"body":"aGk=","isBase64Encoded":true}"#, "200 [content-type: application/json] hi"),
                (r#"{"statusCode":200,"body":"aGk","isBase64Encoded":"True"}"#, "200 [content-type: application/json] hi"),
                (r#"{"statusCode":200,"body":"aGk=","base64Encoded":true,"isBase64Encoded":false}"#, "200 [content-type: application/json] hi"),
                (r#"{"statusCode":200,"body":"aGk=","isBase64Encoded":false}"#, "200 [content-type: application/json] aGk="),
                (r#"{"statusCode":599}"#, "599 [content-type: application/json] "),
                (r#"{"statusCode":100}"#, "100 [content-type: application/json] "),
            ],
        );
    }

    #[test]
    fn malformed_v1_responses_say_why() {
        check(
            map_v1,
            &[
                ("not json", "error: the response is not valid JSON: expected ident at line 1 column 2"),
                ("", "error: the response is not valid JSON: EOF while parsing a value at line 1 column 0"),
                (r#""hello""#, "error: the response is a string, not a JSON object"),
                ("[]", "error: the response is an array, not a JSON object"),
                (r#"{"body":"x"}"#, "error: statusCode is missing"),
                (r#"{"statusCode":null}"#, "error: statusCode is missing"),
                (r#"{"statusCode":"abc"}"#, r#"error: statusCode must be an integer from 100 to 599, got "abc""#),
                (r#"{"statusCode":"20 0"}"#, r#"error: statusCode must be an integer from 100 to 599, got "20 0""#),
                (r#"{"statusCode":99}"#, "error: statusCode must be an integer from 100 to 599, got 99"),
                (r#"{"statusCode":600}"#, "error: statusCode must be an integer from 100 to 599, got 600"),
                (r#"{"statusCode":-200}"#, "error: statusCode must be an integer from 100 to 599, got -200"),
                (r#"{"statusCode":200.5}"#, "error: statusCode must be an integer from 100 to 599, got 200.5"),
                (r#"{"statusCode":true}"#, "error: statusCode must be an integer from 100 to 599, got true"),
                (r#"{"statusCode":200,"body":{"a":1}}"#, "error: body must be a string, got an object"),
                (r#"{"statusCode":200,"body":42}"#, "error: body must be a string, got a number"),
                (r#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#, "error: isBase64Encoded is true but the body is not base64: Invalid symbol 37, offset 0."),
                (r#"{"statusCode":200,"isBase64Encoded":"yes"}"#, "error: isBase64Encoded must be a boolean, got a string"),
                (r#"{"statusCode":200,"headers":"x"}"#, "error: headers must be an object, got a string"),
                (r#"{"statusCode":200,"headers":{"X":{"a":1}}}"#, "error: headers.X must be a string, got an object"),
                (r#"{"statusCode":200,"multiValueHeaders":{"X":"a"}}"#, "error: multiValueHeaders.X must be an array, got a string"),
                (r#"{"statusCode":200,"multiValueHeaders":{"X":["a",[1]]}}"#, "error: multiValueHeaders.X[1] must be a string, got an array"),
                (
                    r#"{"statusCode":200,"cookies":["a=1"]}"#,
                    r#"error: unexpected field "cookies": a REST API accepts only statusCode, headers, multiValueHeaders, body and isBase64Encoded"#,
                ),
            ],
        );
    }

    #[test]
    fn http_api_v1_responses_ignore_unknown_fields_and_default_to_text() {
        check(
            map_v1_http,
            &[
                (
                    r#"{"statusCode":200,"body":"hi","cookies":["a=1"],"extra":1}"#,
                    "200 [content-type: text/plain; charset=utf-8] hi",
                ),
                (
                    r#"{"statusCode":200,"body":"aGk=","isBase64Encoded":true}"#,
                    "200 [content-type: text/plain; charset=utf-8] hi",
                ),
                // HTTP APIs read only `isBase64Encoded`.
                (
                    r#"{"statusCode":200,"body":"aGk=","base64Encoded":true}"#,
                    "200 [content-type: text/plain; charset=utf-8] aGk=",
                ),
                (r#"{"body":"x"}"#, "error: statusCode is missing"),
                ("17", "error: the response is a number, not a JSON object"),
            ],
        );
    }

    #[test]
    fn rest_decodes_base64_only_for_a_binary_accept() {
        let types = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let payload = br#"{"statusCode":200,"headers":{"Content-Type":"image/png"},"body":"aGk=","isBase64Encoded":true}"#;
        let cases = [
            (Some("image/png"), types(&["image/*"]), "hi"),
            (Some("image/png, text/html"), types(&["image/png"]), "hi"),
            // Only the first Accept type counts, as the REST guide says for browsers.
            (Some("text/html,image/png"), types(&["image/png"]), "aGk="),
            (None, types(&["*/*"]), "hi"),
            (None, types(&["image/png"]), "aGk="),
            (Some("image/png"), types(&[]), "aGk="),
        ];
        for (accept, binary, want) in cases {
            let r = map_rest(payload, accept, &binary).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&r.body),
                want,
                "{accept:?} {binary:?}"
            );
        }
    }

    #[test]
    fn v2_responses_map_and_infer_as_aws_documents() {
        check(
            map_v2,
            &[
                // The guide's inference examples: no statusCode, so 200 and the output is the body.
                (r#""Hello from Lambda!""#, "200 [content-type: application/json] Hello from Lambda!"),
                (r#"{ "message": "Hello from Lambda!" }"#, r#"200 [content-type: application/json] { "message": "Hello from Lambda!" }"#),
                ("42", "200 [content-type: application/json] 42"),
                ("[1, 2]", "200 [content-type: application/json] [1, 2]"),
                ("null", "200 [content-type: application/json] null"),
                (
                    r#"{"statusCode":201,"body":"made","headers":{"X-List":"a,b"},"cookies":["a=1; Path=/","b=2"]}"#,
                    "201 [X-List: a,b | content-type: text/plain; charset=utf-8 | set-cookie: a=1; Path=/ | set-cookie: b=2] made",
                ),
                (r#"{"statusCode":"200","headers":{"content-type":"text/html"},"body":"<p>"}"#, "200 [content-type: text/html] <p>"),
                (r#"{"statusCode":200,"body":"aGk=","isBase64Encoded":true,"extra":[1]}"#, "200 [content-type: text/plain; charset=utf-8] hi"),
                (r#"{"statusCode":302,"headers":{"Location":"/x","Content-Type":null}}"#, "302 [Location: /x] "),
            ],
        );
    }

    #[test]
    fn malformed_v2_responses_say_why() {
        check(
            map_v2,
            &[
                ("{oops", "error: the response is not valid JSON: key must be a string at line 1 column 2"),
                (r#"{"statusCode":"abc"}"#, r#"error: statusCode must be an integer from 100 to 599, got "abc""#),
                (r#"{"statusCode":700}"#, "error: statusCode must be an integer from 100 to 599, got 700"),
                (r#"{"statusCode":null,"body":"x"}"#, "error: statusCode is missing"),
                (r#"{"statusCode":200,"body":{"a":1}}"#, "error: body must be a string, got an object"),
                (r#"{"statusCode":200,"cookies":"a=1"}"#, "error: cookies must be an array of strings, got a string"),
                (r#"{"statusCode":200,"cookies":["a=1",2]}"#, "error: cookies[1] must be a string, got a number"),
                (r#"{"statusCode":200,"body":"!!","isBase64Encoded":true}"#, "error: isBase64Encoded is true but the body is not base64: Invalid symbol 33, offset 0."),
            ],
        );
    }
}
