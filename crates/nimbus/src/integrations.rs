//! The gateway's first-class AWS service integrations, connected to nimbus's own SQS and
//! EventBridge. The gateway and the AWS protocol crate know nothing of each other; the binary
//! joins them here.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use nimbus_gateway::service::{ServiceAnswer, Services};
use serde_json::{json, Map, Value};

pub struct NimbusServices {
    pub sqs: nimbus_aws::Sqs,
    pub hub: nimbus_events::Hub,
    pub sfn: nimbus_sfn::StepFunctions,
    /// The chaos API's rules, which may name API routes.
    pub chaos: nimbus_aws::Chaos,
}

impl Services for NimbusServices {
    fn route_fault(&self, api: &str, route: &str) -> Option<nimbus_gateway::service::RouteFault> {
        let f = self.chaos.route_fault(api, route, self.hub.telemetry())?;
        Some(nimbus_gateway::service::RouteFault {
            latency_ms: f.latency_ms,
            error: f.fails.then_some((f.status, f.code)),
        })
    }

    fn aws<'a>(
        &'a self,
        service: &'a str,
        target: &'a str,
        headers: BTreeMap<String, String>,
        body: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = ServiceAnswer> + Send + 'a>> {
        Box::pin(self.rest_aws(service, target, headers, body))
    }

    fn call<'a>(
        &'a self,
        subtype: &'a str,
        parameters: BTreeMap<String, String>,
    ) -> Pin<Box<dyn Future<Output = ServiceAnswer> + Send + 'a>> {
        Box::pin(async move {
            let answer = match subtype {
                "SQS-SendMessage" => {
                    nimbus_aws::sqs_send_message(&self.sqs, sqs_input(&parameters)?).await
                }
                "EventBridge-PutEvents" => {
                    nimbus_aws::events_put_events(&self.hub, events_input(&parameters)?).await
                }
                step if step.starts_with("StepFunctions-") => {
                    let action = &step["StepFunctions-".len()..];
                    let input = states_input(&parameters);
                    return self.states(action, input).await;
                }
                other => return Err(format!("{other} is not served by nimbus yet")),
            };
            match answer {
                Ok(v) => Ok((200, v.to_string().into_bytes())),
                // API Gateway passes the service's failure on as its own status and error.
                Err((status, message)) => {
                    Ok((status, json!({"message": message}).to_string().into_bytes()))
                }
            }
        })
    }
}

impl NimbusServices {
    async fn rest_aws(
        &self,
        service: &str,
        target: &str,
        headers: BTreeMap<String, String>,
        body: Vec<u8>,
    ) -> ServiceAnswer {
        match (service, target.split_once('/')) {
            // SQS's query API at the queue's path, as such integrations call it.
            ("sqs", Some(("path", path))) => {
                let json_target = headers
                    .get("x-amz-target")
                    .and_then(|t| t.strip_prefix("AmazonSQS."));
                if let Some(action) = json_target {
                    let input: Value = serde_json::from_slice(&body)
                        .map_err(|e| format!("the SQS request is not JSON: {e}"))?;
                    return match self.sqs.dispatch(action, input).await {
                        Ok(v) => Ok((200, v.to_string().into_bytes())),
                        Err(e) => {
                            let (status, message) = e.status_and_message();
                            Ok((status, json!({"message": message}).to_string().into_bytes()))
                        }
                    };
                }
                let params: Vec<(String, String)> = form_urlencoded::parse(&body)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let queue = path.split_once('/');
                let resp = self.sqs.query(params, queue).await;
                let status = resp.status().as_u16();
                let bytes = axum::body::to_bytes(resp.into_body(), 1024 * 1024)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((status, bytes.to_vec()))
            }
            ("events", Some(("action", "PutEvents"))) => {
                let input: Value = serde_json::from_slice(&body)
                    .map_err(|e| format!("the PutEvents request is not JSON: {e}"))?;
                match nimbus_aws::events_put_events(&self.hub, input).await {
                    Ok(v) => Ok((200, v.to_string().into_bytes())),
                    Err((status, message)) => {
                        Ok((status, json!({"message": message}).to_string().into_bytes()))
                    }
                }
            }
            ("states", Some(("action", action))) => {
                let input: Value = serde_json::from_slice(&body)
                    .map_err(|e| format!("the Step Functions request is not JSON: {e}"))?;
                self.states(action, input).await
            }
            _ => Err(format!("{service} {target} is not served by nimbus yet")),
        }
    }
}

impl NimbusServices {
    /// A Step Functions call: its answer, or its error with Step Functions' status and body.
    async fn states(&self, action: &str, input: Value) -> ServiceAnswer {
        match self.sfn.dispatch(action, &input).await {
            Ok(v) => Ok((200, v.to_string().into_bytes())),
            Err(e) => Ok((e.status(), e.body().to_string().into_bytes())),
        }
    }
}

/// `RequestParameters` of the `StepFunctions-*` integrations (`StateMachineArn`, `Name`,
/// `Input`, `ExecutionArn`, `Error`, `Cause`) as the API's input (`stateMachineArn`, ...).
fn states_input(p: &BTreeMap<String, String>) -> Value {
    let mut input = Map::new();
    for (k, v) in p {
        if k == "Region" || (k == "TraceHeader" && v.is_empty()) {
            continue;
        }
        input.insert(nimbus_sfn::camel(k), Value::from(v.clone()));
    }
    Value::Object(input)
}

/// The parameters among `keys` that are set, as JSON strings.
fn strings(p: &BTreeMap<String, String>, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| Some(((*k).to_owned(), Value::from(p.get(*k)?.clone()))))
        .collect()
}

/// `RequestParameters` of `SQS-SendMessage` as SendMessage's input: `QueueUrl`,
/// `MessageBody`, `DelaySeconds`, `MessageGroupId`, `MessageDeduplicationId`,
/// `MessageAttributes` (a JSON map).
fn sqs_input(p: &BTreeMap<String, String>) -> Result<Value, String> {
    let mut input = strings(
        p,
        &[
            "QueueUrl",
            "MessageBody",
            "MessageGroupId",
            "MessageDeduplicationId",
        ],
    );
    if let Some(d) = p.get("DelaySeconds") {
        let d: u64 = d
            .trim()
            .parse()
            .map_err(|_| format!("DelaySeconds {d:?} is not a number"))?;
        input.insert("DelaySeconds".into(), d.into());
    }
    if let Some(a) = p.get("MessageAttributes") {
        let a: Value =
            serde_json::from_str(a).map_err(|e| format!("MessageAttributes is not JSON: {e}"))?;
        input.insert("MessageAttributes".into(), a);
    }
    Ok(Value::Object(input))
}

/// `RequestParameters` of `EventBridge-PutEvents` as one entry: `Detail`, `DetailType`,
/// `Source`, `EventBusName`, `Resources` (comma-separated), `Time`, `TraceHeader`.
fn events_input(p: &BTreeMap<String, String>) -> Result<Value, String> {
    let mut entry = strings(
        p,
        &[
            "Detail",
            "DetailType",
            "Source",
            "EventBusName",
            "Time",
            "TraceHeader",
        ],
    );
    if let Some(r) = p.get("Resources") {
        let list: Vec<Value> = r.split(',').map(|s| s.trim().to_owned().into()).collect();
        entry.insert("Resources".into(), list.into());
    }
    Ok(json!({"Entries": [entry]}))
}
