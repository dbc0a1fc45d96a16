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
                "http" if action == "Invoke" => http_invoke(&input).await,
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

/// `arn:aws:states:::http:invoke`: `ApiEndpoint`, `Method`, `Headers`, `QueryParameters`,
/// `RequestBody` (`Transform.RequestBodyEncoding: URL_ENCODED` form-encodes an object). The
/// answer as Step Functions gives it (`StatusCode`, `StatusText`, `Headers`, `ResponseBody`);
/// a status outside 2xx is the error `States.Http.StatusCode.<code>`. `Authentication` (an
/// EventBridge connection) is accepted and not applied: nimbus has no connections. Plain
/// http:// only (a local service or mock), as the gateway's HTTP proxy.
async fn http_invoke(input: &Value) -> Result<Value, (String, String)> {
    use http_body_util::{BodyExt, Full, Limited};
    let fail = |why: String| ("States.Http.Socket".to_owned(), why);
    let Some(endpoint) = input["ApiEndpoint"].as_str() else {
        return Err((
            "States.Runtime".to_owned(),
            "The field 'ApiEndpoint' is required by arn:aws:states:::http:invoke".to_owned(),
        ));
    };
    if !endpoint.starts_with("http://") {
        return Err(fail(format!(
            "nimbus calls http:// endpoints (a local service); {endpoint} is not one"
        )));
    }
    let mut url = endpoint.to_owned();
    if let Some(q) = input["QueryParameters"]
        .as_object()
        .filter(|q| !q.is_empty())
    {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&form(q));
    }
    let method = input["Method"]
        .as_str()
        .unwrap_or("GET")
        .to_ascii_uppercase();
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
    let mut req = hyper::Request::builder().method(method.as_str()).uri(&url);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    for (k, v) in input["Headers"].as_object().into_iter().flatten() {
        req = req.header(
            k.as_str(),
            v.as_str().map_or_else(|| v.to_string(), str::to_owned),
        );
    }
    let req = req
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| fail(format!("the request to {url} is not valid: {e}")))?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(60), client.request(req))
        .await
        .map_err(|_| fail(format!("{url} did not answer within 60 s")))?
        .map_err(|e| fail(format!("cannot reach {url}: {e}")))?;
    let status = resp.status();
    let mut headers = serde_json::Map::new();
    for (k, v) in resp.headers() {
        if let Ok(v) = v.to_str() {
            headers.insert(k.as_str().to_owned(), json!([v]));
        }
    }
    let bytes = Limited::new(resp.into_body(), HTTP_TASK_BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| {
            (
                "States.DataLimitExceeded".to_owned(),
                format!("the answer of {url} is over 256 KiB or broke off: {e}"),
            )
        })?
        .to_bytes();
    let body = serde_json::from_slice::<Value>(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    let out = json!({
        "StatusCode": status.as_u16(),
        "StatusText": status.canonical_reason().unwrap_or_default(),
        "Headers": headers,
        "ResponseBody": body,
    });
    if status.is_success() {
        Ok(out)
    } else {
        Err((
            format!("States.Http.StatusCode.{}", status.as_u16()),
            out.to_string(),
        ))
    }
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
