//! Step Functions joined to the rest of nimbus: the template's state machines (definitions
//! read from the template, a `DefinitionUri` file, substitutions applied), and the task
//! integrations (Lambda through the platform; SQS, SNS, DynamoDB and EventBridge through their
//! own crates), which `nimbus-sfn` reaches only through its `Integrations` trait.

use std::path::Path;

use nimbus_sfn::engine::BoxFuture;
use nimbus_sfn::{Invoked, StatesError, TemplateMachine};
use nimbus_template::Stack;
use serde_json::{json, Value};

pub struct NimbusTasks {
    pub platform: nimbus_lambda::Platform,
    pub sqs: nimbus_aws::Sqs,
    pub hub: nimbus_events::Hub,
    pub dynamodb: nimbus_dynamodb::DynamoDb,
    pub sns: nimbus_sns::Sns,
    pub ssm: nimbus_ssm::ParameterStore,
    pub secrets: nimbus_secrets::SecretsManager,
    pub s3: nimbus_s3::S3,
    /// The stack's APIs as the gateway serves them (id, stage, base URL), so that an
    /// `execute-api` endpoint of the template reaches the local gateway.
    pub local_apis: Vec<(String, String, String)>,
}

impl nimbus_sfn::Integrations for NimbusTasks {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Vec<u8>,
        trace: Option<String>,
    ) -> BoxFuture<'a, Result<Invoked, StatesError>> {
        Box::pin(async move {
            let cfg = self.platform.config();
            // `name` may carry its qualifier (`name:live`); an unqualified one is `$LATEST`.
            let not_found = |name: &str| {
                let qualified = match name.contains(':') {
                    true => name.to_owned(),
                    false => format!("{name}:$LATEST"),
                };
                StatesError::new(
                    "Lambda.ResourceNotFoundException",
                    format!(
                        "Function not found: {} (Service: AWSLambda; Status Code: 404; Error Code: ResourceNotFoundException; Proxy: null)",
                        nimbus_core::arn::function_arn(&cfg.region, &cfg.account_id, &qualified),
                    ),
                )
            };
            let Some(r) = nimbus_core::arn::parse_function_ref(function) else {
                return Err(not_found(function));
            };
            let target = match r.qualifier {
                None | Some("$LATEST") => r.name.to_owned(),
                Some(q) => format!("{}:{q}", r.name),
            };
            let req = nimbus_lambda::InvokeRequest {
                payload: payload.into(),
                client_context: None,
                trace_header: trace,
                tail_log: false,
                request_id: None,
            };
            match self.platform.invoke(&target, req).await {
                Ok(answer) => Ok(Invoked {
                    payload: answer.payload.to_vec(),
                    function_error: answer.function_error.map(str::to_owned),
                    executed_version: answer.executed_version,
                    request_id: answer.request_id,
                }),
                Err(nimbus_lambda::InvokeError::NotFound(name)) => Err(not_found(&name)),
                Err(nimbus_lambda::InvokeError::Throttled(why)) => Err(StatesError::new(
                    "Lambda.TooManyRequestsException",
                    format!(
                        "Rate Exceeded. (Service: AWSLambda; Status Code: 429; Error Code: TooManyRequestsException; Reason: {})",
                        why.as_str()
                    ),
                )),
                Err(e) => Err(StatesError::new(
                    "Lambda.ServiceException",
                    format!("{e} (Service: AWSLambda; Status Code: 500; Error Code: ServiceException)"),
                )),
            }
        })
    }

    fn call<'a>(
        &'a self,
        service: &'a str,
        action: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, (String, String)>> {
        Box::pin(async move {
            match service {
                "sqs" => self
                    .sqs
                    .dispatch(action, input)
                    .await
                    .map_err(|e| (e.code().to_owned(), e.status_and_message().1)),
                "events" | "eventbridge" => nimbus_aws::events_call(&self.hub, action, input).await,
                "sns" => self
                    .sns
                    .dispatch(action, &input)
                    .map_err(|e| (e.code().to_owned(), e.to_string())),
                "ssm" => self
                    .ssm
                    .dispatch(action, &input, nimbus_events::now_ms())
                    .map_err(|e| (e.code().to_owned(), e.to_string())),
                "secretsmanager" => self
                    .secrets
                    .dispatch(action, &input, nimbus_events::now_ms())
                    .map_err(|e| (e.code().to_owned(), e.to_string())),
                // `aws-sdk:lambda:invoke`: the SDK's answer, the payload as text.
                "lambda" if action == "Invoke" => {
                    let function = input["FunctionName"].as_str().unwrap_or_default();
                    let payload = match &input["Payload"] {
                        Value::Null => b"{}".to_vec(),
                        Value::String(s) => s.clone().into_bytes(),
                        other => other.to_string().into_bytes(),
                    };
                    match self.invoke(function, payload, None).await {
                        Ok(a) => {
                            let mut out = json!({"StatusCode": 200, "ExecutedVersion": a.executed_version,
                                                 "Payload": String::from_utf8_lossy(&a.payload)});
                            if let Some(e) = a.function_error {
                                out["FunctionError"] = json!(e);
                            }
                            Ok(out)
                        }
                        Err(e) => Err((e.error.trim_start_matches("Lambda.").to_owned(), e.cause)),
                    }
                }
                "dynamodb" => {
                    let db = self.dynamodb.clone();
                    let action = action.to_owned();
                    tokio::task::spawn_blocking(move || db.dispatch(&action, &input))
                        .await
                        .map_err(|e| ("InternalServerError".to_owned(), e.to_string()))?
                        .map_err(|e| (e.code().to_owned(), e.to_string()))
                }
                "s3" => self
                    .s3
                    .sdk_call(action, &input)
                    .await
                    .map_err(|e| (e.code.to_owned(), e.message)),
                "http" if action == "Invoke" => self.http_invoke(&input).await,
                "apigateway" if action == "Invoke" => self.apigateway_invoke(&input).await,
                other => Err((
                    "UnknownService".to_owned(),
                    format!("nimbus does not serve {other} yet, so a task cannot call it"),
                )),
            }
        })
    }
}

/// The largest HTTP answer a task takes: Step Functions' payload limit.
const HTTP_TASK_BODY_LIMIT: usize = 256 * 1024;

impl NimbusTasks {
    /// `url` with an `execute-api` URL of one of the stack's APIs pointed at the local
    /// gateway, as functions' environments are.
    fn local(&self, url: &str) -> String {
        let region = &self.platform.config().region;
        let apis: Vec<nimbus_core::local_url::LocalApi<'_>> = self
            .local_apis
            .iter()
            .map(|(id, stage, base)| nimbus_core::local_url::LocalApi { id, stage, base })
            .collect();
        nimbus_core::local_url::rewrite(url, region, &apis).unwrap_or_else(|| url.to_owned())
    }

    /// `arn:aws:states:::http:invoke`: `ApiEndpoint`, `Method`, `Headers`, `QueryParameters`,
    /// `RequestBody` (`Transform.RequestBodyEncoding: URL_ENCODED` form-encodes an object). The
    /// answer as Step Functions gives it (`StatusCode`, `StatusText`, `Headers`,
    /// `ResponseBody`); a status outside 2xx is the error `States.Http.StatusCode.<code>`.
    /// `Authentication` (an EventBridge connection) is accepted and not applied: nimbus has no
    /// connections. `https://` (the system's roots) or `http://`; an `execute-api` URL of the
    /// stack's own APIs reaches the local gateway.
    async fn http_invoke(&self, input: &Value) -> Result<Value, (String, String)> {
        let fail = |why: String| ("States.Http.Socket".to_owned(), why);
        let Some(endpoint) = input["ApiEndpoint"].as_str() else {
            return Err((
                "States.Runtime".to_owned(),
                "The field 'ApiEndpoint' is required by arn:aws:states:::http:invoke".to_owned(),
            ));
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(fail(format!("{endpoint} is not an http(s) URL")));
        }
        let mut url = self.local(endpoint);
        if let Some(q) = input["QueryParameters"]
            .as_object()
            .filter(|q| !q.is_empty())
        {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&form(q));
        }
        let url_encoded = input["Transform"]["RequestBodyEncoding"] == "URL_ENCODED";
        let (body, content_type) = match &input["RequestBody"] {
            Value::Null => (Vec::new(), None),
            Value::Object(m) if url_encoded => (
                form(m).into_bytes(),
                Some("application/x-www-form-urlencoded"),
            ),
            Value::String(s) => (s.clone().into_bytes(), Some("text/plain")),
            other => (other.to_string().into_bytes(), Some("application/json")),
        };
        let mut headers: Vec<(String, String)> = content_type
            .map(|ct| ("content-type".to_owned(), ct.to_owned()))
            .into_iter()
            .collect();
        for (k, v) in input["Headers"].as_object().into_iter().flatten() {
            headers.push((
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            ));
        }
        let method = input["Method"]
            .as_str()
            .unwrap_or("GET")
            .to_ascii_uppercase();
        let answer = send(&method, &url, &headers, body).await.map_err(fail)?;
        let (out, status) = http_output(answer)?;
        if status.is_success() {
            Ok(out)
        } else {
            Err((
                format!("States.Http.StatusCode.{}", status.as_u16()),
                out.to_string(),
            ))
        }
    }

    /// `arn:aws:states:::apigateway:invoke`: `ApiEndpoint` (`<id>.execute-api.<region>.
    /// amazonaws.com`), `Method`, `Stage`, `Path`, `QueryParameters` and `Headers` (lists of
    /// values), `RequestBody`, `AuthType` (accepted; nimbus's gateway checks no IAM). An API of
    /// the stack is called on the local gateway. The answer is `ResponseBody`, `Headers`,
    /// `StatusCode`, `StatusText`; any other status is the error `ApiGateway.<status>` with the
    /// body as its cause, as Step Functions reports it.
    async fn apigateway_invoke(&self, input: &Value) -> Result<Value, (String, String)> {
        let required = |field: &str| {
            (
                "States.Runtime".to_owned(),
                format!("The field '{field}' is required by arn:aws:states:::apigateway:invoke"),
            )
        };
        let endpoint = input["ApiEndpoint"]
            .as_str()
            .ok_or_else(|| required("ApiEndpoint"))?;
        let method = input["Method"].as_str().ok_or_else(|| required("Method"))?;
        const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
        if !METHODS.contains(&method) {
            return Err((
                "States.Runtime".to_owned(),
                format!(
                    "The value of the field 'Method' must be one of {METHODS:?}, got {method:?}"
                ),
            ));
        }
        let mut url = format!("https://{}", endpoint.trim_end_matches('/'));
        for part in [input["Stage"].as_str(), input["Path"].as_str()]
            .into_iter()
            .flatten()
            .filter(|p| !p.is_empty() && *p != "$default")
        {
            url.push('/');
            url.push_str(part.trim_matches('/'));
        }
        // The serializer is not `Send`: it must not live across the call below.
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (k, values) in input["QueryParameters"].as_object().into_iter().flatten() {
                for v in values.as_array().into_iter().flatten() {
                    query.append_pair(k, &v.as_str().map_or_else(|| v.to_string(), str::to_owned));
                }
            }
            query.finish()
        };
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        let url = self.local(&url);
        let mut headers = Vec::new();
        for (k, values) in input["Headers"].as_object().into_iter().flatten() {
            let lower = k.to_ascii_lowercase();
            if FORBIDDEN_HEADERS.contains(&lower.as_str())
                || ["x-forwarded", "x-amz", "x-amzn"]
                    .iter()
                    .any(|p| lower.starts_with(p))
            {
                return Err((
                    "States.Runtime".to_owned(),
                    format!(
                        "The header {k:?} is not permitted in arn:aws:states:::apigateway:invoke"
                    ),
                ));
            }
            let joined: Vec<String> = values
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect();
            headers.push((k.clone(), joined.join(",")));
        }
        let body = match &input["RequestBody"] {
            Value::Null => Vec::new(),
            Value::String(s) => s.clone().into_bytes(),
            other => {
                headers.push(("content-type".into(), "application/json".into()));
                other.to_string().into_bytes()
            }
        };
        let answer = send(method, &url, &headers, body)
            .await
            .map_err(|why| ("ApiGateway.IOException".to_owned(), why))?;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        let (out, status) = http_output(answer)?;
        if status.is_success() {
            Ok(out)
        } else {
            Err((format!("ApiGateway.{}", status.as_u16()), text))
        }
    }
}

/// Headers `apigateway:invoke` does not permit (besides `X-Forwarded*`, `X-Amz*`).
const FORBIDDEN_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "content-md5",
    "expect",
    "host",
    "max-forwards",
    "proxy-authenticate",
    "server",
    "te",
    "transfer-encoding",
    "trailer",
    "upgrade",
    "via",
    "www-authenticate",
];

/// One HTTP call of a task, through the gateway's client (http and https, 60 s at most).
async fn send(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<nimbus_gateway::outbound::Answer, String> {
    nimbus_gateway::outbound::send(
        method,
        url,
        headers,
        body.into(),
        std::time::Duration::from_secs(60),
    )
    .await
    .map_err(|f| f.why)
}

/// A task's view of an HTTP answer (`StatusCode`, `StatusText`, `Headers` as lists,
/// `ResponseBody` as JSON when it parses), refused over Step Functions' 256 KiB payload limit.
fn http_output(
    answer: nimbus_gateway::outbound::Answer,
) -> Result<(Value, hyper::StatusCode), (String, String)> {
    if answer.body.len() > HTTP_TASK_BODY_LIMIT {
        return Err((
            "States.DataLimitExceeded".to_owned(),
            format!("the answer is {} bytes, over 256 KiB", answer.body.len()),
        ));
    }
    let mut headers = serde_json::Map::new();
    for (k, v) in &answer.headers {
        if let Ok(v) = v.to_str() {
            let values = headers
                .entry(k.as_str().to_owned())
                .or_insert_with(|| json!([]));
            if let Some(list) = values.as_array_mut() {
                list.push(v.into());
            }
        }
    }
    let body = serde_json::from_slice::<Value>(&answer.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer.body).into_owned()));
    let status = answer.status;
    Ok((
        json!({
            "StatusCode": status.as_u16(),
            "StatusText": status.canonical_reason().unwrap_or_default(),
            "Headers": headers,
            "ResponseBody": body,
        }),
        status,
    ))
}

/// An object's members form-encoded (`a=1&b=x`), non-string values as JSON text.
fn form(m: &serde_json::Map<String, Value>) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in m {
        let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        form.append_pair(k, &text);
    }
    form.finish()
}

/// The template's state machines: `AWS::Serverless::StateMachine` (`Definition`,
/// `DefinitionUri` to a local file) and `AWS::StepFunctions::StateMachine` (`Definition`,
/// `DefinitionString`), with `DefinitionSubstitutions` applied. Errors name the resource, its
/// line and the property.
pub fn template_machines(
    stack: &Stack,
    template_dir: &Path,
    account: &str,
) -> Result<Vec<TemplateMachine>, Vec<String>> {
    let mut machines = Vec::new();
    let mut errors = Vec::new();
    for (id, r) in &stack.resources {
        let sam = match r.resource_type.as_str() {
            "AWS::Serverless::StateMachine" => true,
            "AWS::StepFunctions::StateMachine" => false,
            _ => continue,
        };
        let p = &r.properties;
        let at = |key: &str| {
            let line = r.property_lines.get(key).copied().unwrap_or(r.line);
            format!("Resources.{id}.Properties.{key} (line {line})")
        };
        let name_key = if sam { "Name" } else { "StateMachineName" };
        let name = p[name_key].as_str().unwrap_or(id).to_owned();
        let definition = if let Some(d) = p.get("Definition").filter(|d| !d.is_null()) {
            Ok(d.to_string())
        } else if let Some(s) = p.get("DefinitionString").and_then(Value::as_str) {
            Ok(s.to_owned())
        } else if let Some(uri) = p.get("DefinitionUri") {
            match uri.as_str() {
                Some(file) if !file.starts_with("s3://") => {
                    let path = template_dir.join(file);
                    std::fs::read_to_string(&path)
                        .map_err(|e| {
                            format!(
                                "{}: cannot read {}: {e}",
                                at("DefinitionUri"),
                                path.display()
                            )
                        })
                        .and_then(|text| {
                            crate::definitions::document(&text, &path)
                                // A JSON file is kept as written; YAML becomes JSON text.
                                .map(|doc| match text.trim_start().starts_with('{') {
                                    true => text.clone(),
                                    false => doc.to_string(),
                                })
                                .map_err(|e| format!("{}: {e}", at("DefinitionUri")))
                        })
                }
                _ => Err(format!(
                    "{}: nimbus reads a definition from a local file; an S3 location is not served",
                    at("DefinitionUri")
                )),
            }
        } else if p.get("DefinitionS3Location").is_some() {
            Err(format!(
                "{}: nimbus reads a definition from the template or a local file; an S3 location is not served",
                at("DefinitionS3Location")
            ))
        } else {
            Err(format!(
                "Resources.{id} (line {}): a state machine needs Definition, DefinitionString or DefinitionUri",
                r.line
            ))
        };
        let definition = match definition {
            Ok(d) => substitute(&d, &p["DefinitionSubstitutions"]),
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let kind = match p["Type"].as_str().or(p["StateMachineType"].as_str()) {
            None => "STANDARD".to_owned(),
            Some(k @ ("STANDARD" | "EXPRESS")) => k.to_owned(),
            Some(k) => {
                let key = if sam { "Type" } else { "StateMachineType" };
                errors.push(format!("{}: {k:?} is not STANDARD or EXPRESS", at(key)));
                continue;
            }
        };
        let role_arn = p["Role"]
            .as_str()
            .or(p["RoleArn"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("arn:aws:iam::{account}:role/{id}Role"));
        let logging = match &p["Logging"] {
            Value::Null => match &p["LoggingConfiguration"] {
                Value::Null => json!({"level": "OFF", "includeExecutionData": false}),
                l => lower_keys(l),
            },
            l => lower_keys(l),
        };
        let tracing = match (&p["Tracing"], &p["TracingConfiguration"]) {
            (Value::Null, Value::Null) => json!({"enabled": false}),
            (Value::Null, t) | (t, _) => {
                json!({"enabled": t["Enabled"].as_bool().unwrap_or(false)})
            }
        };
        machines.push(TemplateMachine {
            name,
            kind,
            definition,
            role_arn,
            settings: json!({"loggingConfiguration": logging, "tracingConfiguration": tracing}),
        });
    }
    if errors.is_empty() {
        Ok(machines)
    } else {
        Err(errors)
    }
}

/// `DefinitionSubstitutions`: each `${Key}` in the definition replaced by its value.
fn substitute(definition: &str, subs: &Value) -> String {
    let Some(map) = subs.as_object() else {
        return definition.to_owned();
    };
    let mut out = definition.to_owned();
    for (k, v) in map {
        let value = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out = out.replace(&format!("${{{k}}}"), &value);
    }
    out
}

/// CloudFormation's `LoggingConfiguration` (`Level`, `IncludeExecutionData`, `Destinations`)
/// as the API shows it (`level`, `includeExecutionData`, `destinations`).
fn lower_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (nimbus_sfn::camel(k), lower_keys(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_keys).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutions_replace_every_placeholder() {
        let subs = json!({"Fn": "arn:aws:lambda:us-east-1:1:function:f", "N": 3});
        let got = substitute(
            r#"{"a":"${Fn}","b":"${Fn}","c":"${N}","d":"${Other}"}"#,
            &subs,
        );
        assert_eq!(
            got,
            r#"{"a":"arn:aws:lambda:us-east-1:1:function:f","b":"arn:aws:lambda:us-east-1:1:function:f","c":"3","d":"${Other}"}"#
        );
    }
}
