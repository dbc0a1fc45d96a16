//! A corpus of whole executions taken from the AWS Step Functions Developer Guide: each case is
//! a definition, an execution input and the outcome the guide documents (or, where the guide
//! names only the behaviour, the outcome that behaviour implies). Tasks reach a fake
//! [`Integrations`] whose functions behave by name; histories go to a recording [`Journal`].
//!
//! Sources (JSONPath pages of the guide, <https://docs.aws.amazon.com/step-functions/latest/dg/>):
//! `input-output-inputpath-params.html`, `input-output-example.html`,
//! `input-output-resultpath.html`, `input-output-itemspath.html`,
//! `input-output-contextobject.html`, `state-pass.html`, `state-choice.html`,
//! `state-wait.html`, `state-fail.html`, `state-parallel.html`, `state-map-inline.html`,
//! `intrinsic-functions.html`, `concepts-error-handling.html`,
//! `tutorial-get-started-configure-output.html`; and the Amazon States Language specification
//! (<https://states-language.net/>).
//!
//! Cases where nimbus once disagreed with the guide are kept in a table of their own, each
//! naming the page and the sentence.

#![recursion_limit = "512"]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nimbus_sfn::asl;
use nimbus_sfn::clock::{format_ms, now_ms};
use nimbus_sfn::engine::{
    retry_delay, BoxFuture, Cursor, Event, Integrations, Invoked, Journal, NoJournal, Outcome, Run,
};
use nimbus_sfn::StatesError;
use serde_json::{json, Value};

const REGION: &str = "us-east-1";
const EXECUTION_NAME: &str = "corpus-execution";
const MACHINE_NAME: &str = "CorpusMachine";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/corpus-role";

// ---------------------------------------------------------------------------------------------
// The fake integrations
// ---------------------------------------------------------------------------------------------

/// Functions by name (the name of an ARN, without its qualifier):
/// - `echo`, `ship-val`: return their payload;
/// - `HelloFunction`: `"Hello, <who>!"` (the guide's tutorial function);
/// - `double`: twice a number;
/// - `Add` / `Subtract`: the sum of an array's (or object's) numbers / `a[0] - a[1]`;
/// - `AddressFinder`, `PhoneFinder`, `check-identity`, `create-cluster`: fixed answers;
/// - `fail`: an unhandled `CustomError` ("boom");
/// - `crash`: an unhandled error without `errorType` (a function timeout);
/// - `flaky-N`: fails (`Flaky`) on its first N calls of the execution, then echoes;
/// - `errors-A-B-...`: call k fails with the k-th name, then answers `{"calls": k}`;
/// - `big`: a result over 256 KiB;
/// - `slow`: answers after 3 s;
/// - `concurrency`: how many `concurrency` calls are running, itself included.
///
/// Service calls answer `{"service", "action", "input"}`.
#[derive(Default)]
struct Fake {
    calls: Mutex<HashMap<String, u32>>,
    running: AtomicU32,
}

const CUSTOM_ERROR: &str = r#"{"errorType":"CustomError","errorMessage":"boom"}"#;

fn function_name(function: &str) -> &str {
    if function.starts_with("arn:") {
        function.split(':').nth(6).unwrap_or(function)
    } else {
        function.split(':').next().unwrap_or(function)
    }
}

fn answer(v: Value) -> Result<Invoked, StatesError> {
    Ok(Invoked {
        payload: serde_json::to_vec(&v).unwrap(),
        function_error: None,
        executed_version: "$LATEST".to_owned(),
        request_id: "6f6b2a4e-0000-4000-8000-000000000000".to_owned(),
    })
}

fn unhandled(payload: String) -> Result<Invoked, StatesError> {
    Ok(Invoked {
        payload: payload.into_bytes(),
        function_error: Some("Unhandled".to_owned()),
        executed_version: "$LATEST".to_owned(),
        request_id: "6f6b2a4e-0000-4000-8000-000000000001".to_owned(),
    })
}

fn thrown(error_type: &str, message: &str) -> Result<Invoked, StatesError> {
    unhandled(json!({"errorType": error_type, "errorMessage": message}).to_string())
}

fn numbers(v: &Value) -> Vec<i64> {
    match v {
        Value::Array(a) => a.iter().filter_map(Value::as_i64).collect(),
        Value::Object(o) => o.values().filter_map(Value::as_i64).collect(),
        _ => Vec::new(),
    }
}

impl Fake {
    fn count(&self, name: &str) -> u32 {
        let mut calls = self.calls.lock().unwrap();
        let n = calls.entry(name.to_owned()).or_insert(0);
        *n += 1;
        *n
    }

    async fn run(&self, function: &str, input: Value) -> Result<Invoked, StatesError> {
        let name = function_name(function);
        let call = self.count(name);
        match name {
            "echo" | "ship-val" => answer(input),
            "HelloFunction" => answer(json!(format!(
                "Hello, {}!",
                input["who"].as_str().unwrap_or("World")
            ))),
            "double" => match input.as_i64() {
                Some(n) => answer(json!(n * 2)),
                None => thrown("TypeError", "not a number"),
            },
            "Add" => answer(json!(numbers(&input).iter().sum::<i64>())),
            "Subtract" => {
                let n = numbers(&input);
                answer(json!(n[0] - n[1]))
            }
            "AddressFinder" => answer(json!({"address": "123 Main St"})),
            "PhoneFinder" => answer(json!({"phone": "555-0100"})),
            "check-identity" => answer(json!({
                "statusCode": 200,
                "body": "{\"approved\":true,\"message\":\"identity validation passed\"}"
            })),
            "create-cluster" => answer(json!({
                "resourceType": "elasticmapreduce",
                "resource": "createCluster.sync",
                "output": {
                    "SdkHttpMetadata": {
                        "HttpHeaders": {
                            "Content-Length": "1112",
                            "Content-Type": "application/x-amz-JSON-1.1",
                            "Date": "Mon, 25 Nov 2019 19:41:29 GMT",
                            "x-amzn-RequestId": "1234-5678-9012"
                        },
                        "HttpStatusCode": 200
                    },
                    "SdkResponseMetadata": {"RequestId": "1234-5678-9012"},
                    "ClusterId": "AKIAIOSFODNN7EXAMPLE"
                }
            })),
            "fail" => unhandled(CUSTOM_ERROR.to_owned()),
            "crash" => {
                unhandled(r#"{"errorMessage":"Task timed out after 3.00 seconds"}"#.to_owned())
            }
            "big" => answer(json!("x".repeat(300 * 1024))),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                answer(input)
            }
            "concurrency" => {
                let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.running.fetch_sub(1, Ordering::SeqCst);
                answer(json!(now))
            }
            n if n.starts_with("flaky-") => {
                let failures: u32 = n["flaky-".len()..].parse().unwrap();
                if call <= failures {
                    thrown("Flaky", &format!("call {call} of {n}"))
                } else {
                    answer(input)
                }
            }
            n if n.starts_with("errors-") => {
                let names: Vec<&str> = n["errors-".len()..].split('-').collect();
                match names.get(call as usize - 1) {
                    Some(e) => thrown(e, &format!("call {call}")),
                    None => answer(json!({"calls": call})),
                }
            }
            _ => Err(StatesError::new(
                "Lambda.ResourceNotFoundException",
                format!("Function not found: {function}"),
            )),
        }
    }
}

impl Integrations for Fake {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Vec<u8>,
        _trace: Option<String>,
    ) -> BoxFuture<'a, Result<Invoked, StatesError>> {
        Box::pin(async move {
            let input: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
            self.run(function, input).await
        })
    }

    fn call<'a>(
        &'a self,
        service: &'a str,
        action: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, (String, String)>> {
        Box::pin(async move { Ok(json!({"service": service, "action": action, "input": input})) })
    }
}

/// Keeps every event it is given.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Journal for Recorder {
    fn record<'a>(
        &'a self,
        events: Vec<Event>,
        _: Option<Cursor>,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.events.lock().unwrap().extend(events);
        Box::pin(async { Ok(()) })
    }
}

impl Recorder {
    fn kinds(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.kind.clone())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------------

enum Expect {
    Succeeded(Value),
    /// The error name, and a part of the cause.
    Failed(&'static str, &'static str),
}
use Expect::{Failed, Succeeded};

struct Case {
    name: &'static str,
    definition: Value,
    input: Value,
    expect: Expect,
}

fn case(name: &'static str, definition: Value, input: Value, expect: Expect) -> Case {
    Case {
        name,
        definition,
        input,
        expect,
    }
}

/// The context object as `ops.rs` builds it for an execution.
fn context(input: &Value) -> Value {
    json!({
        "Execution": {
            "Id": format!("arn:aws:states:{REGION}:123456789012:execution:{MACHINE_NAME}:{EXECUTION_NAME}"),
            "Input": input,
            "Name": EXECUTION_NAME,
            "RoleArn": ROLE_ARN,
            "StartTime": format_ms(now_ms()),
            "RedriveCount": 0
        },
        "StateMachine": {
            "Id": format!("arn:aws:states:{REGION}:123456789012:stateMachine:{MACHINE_NAME}"),
            "Name": MACHINE_NAME
        }
    })
}

/// Runs `definition` on `input`; the context object the run used comes back with the outcome.
async fn execute(
    definition: &Value,
    input: Value,
    journal: Arc<dyn Journal>,
    delay_scale: f64,
) -> Result<(Outcome, Value), String> {
    let machine = asl::parse(&definition.to_string()).map_err(|d| {
        format!(
            "the definition was refused: {}",
            asl::invalid_definition_message(&d)
        )
    })?;
    let ctx = context(&input);
    let run = Run {
        integrations: Arc::new(Fake::default()),
        journal,
        context: ctx.clone(),
        region: REGION.to_owned(),
        delay_scale,
        last_event: AtomicU64::new(0),
        tokens: Arc::default(),
        telemetry: None,
        trace: None,
        express: false,
        // The corpus runs distributed Maps' items inline, as an Express parent would.
        map_runs: None,
    };
    Ok((run.execute(&machine, input, None).await, ctx))
}

/// `"<ctx:/Execution/Name>"` in an expected output stands for that member of the context object.
fn fill(expected: &Value, ctx: &Value) -> Value {
    match expected {
        Value::String(s) => match s.strip_prefix("<ctx:").and_then(|p| p.strip_suffix('>')) {
            Some(pointer) => ctx.pointer(pointer).cloned().unwrap_or(Value::Null),
            None => expected.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(|v| fill(v, ctx)).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), fill(v, ctx))).collect())
        }
        other => other.clone(),
    }
}

async fn check(c: Case) -> Result<(), String> {
    let (outcome, ctx) = execute(&c.definition, c.input, Arc::new(NoJournal), 0.0).await?;
    match (&c.expect, &outcome) {
        (Succeeded(want), Outcome::Succeeded(got)) if fill(want, &ctx) == *got => Ok(()),
        (Failed(error, cause), Outcome::Failed(e))
            if e.error == *error && e.cause.contains(cause) =>
        {
            Ok(())
        }
        (Succeeded(want), _) => Err(format!(
            "expected Succeeded({}), got {outcome:?}",
            fill(want, &ctx)
        )),
        (Failed(error, cause), _) => Err(format!(
            "expected Failed({error:?}, cause containing {cause:?}), got {outcome:?}"
        )),
    }
}

/// Runs every case (concurrently: some wait on real time) and reports all that disagree.
async fn run_table(cases: Vec<Case>) {
    let total = cases.len();
    let mut names = std::collections::HashSet::new();
    for c in &cases {
        assert!(names.insert(c.name), "two cases are named {:?}", c.name);
    }
    let handles: Vec<_> = cases
        .into_iter()
        .map(|c| {
            let name = c.name;
            (name, tokio::spawn(check(c)))
        })
        .collect();
    let mut failures = Vec::new();
    for (name, h) in handles {
        match h.await {
            Ok(Ok(())) => {}
            Ok(Err(why)) => failures.push(format!("{name}: {why}")),
            Err(panic) => failures.push(format!("{name}: panicked: {panic}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Definition helpers
// ---------------------------------------------------------------------------------------------

/// A machine of one state named `name`.
fn single(name: &str, state: Value) -> Value {
    json!({"StartAt": name, "States": {name: state}})
}

fn lambda_arn(function: &str) -> String {
    format!("arn:aws:lambda:us-east-1:123456789012:function:{function}")
}

/// A Task calling `function` through its plain ARN.
fn lambda_task(function: &str, extra: Value) -> Value {
    let mut s = json!({"Type": "Task", "Resource": lambda_arn(function), "End": true});
    merge(&mut s, extra);
    s
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), extra) {
        for (k, v) in b {
            a.insert(k, v);
        }
    }
}

/// A Choice over `rule` that goes to "Yes" (output "yes") or by default to "No" (output "no").
fn choice(rule: Value) -> Value {
    let mut rule = rule;
    merge(&mut rule, json!({"Next": "Yes"}));
    json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [rule], "Default": "No"},
        "Yes": {"Type": "Pass", "Result": "yes", "End": true},
        "No": {"Type": "Pass", "Result": "no", "End": true}
    }})
}

/// A Pass whose `Parameters` are `params`.
fn pass_params(params: Value) -> Value {
    single(
        "P",
        json!({"Type": "Pass", "Parameters": params, "End": true}),
    )
}

/// The guide's Choice example (`state-choice.html`), its Task states replaced by Pass states
/// that name themselves.
fn choice_state_x() -> Value {
    json!({"StartAt": "ChoiceStateX", "States": {
        "ChoiceStateX": {
            "Type": "Choice",
            "Choices": [
                {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
                {"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"},
                {"And": [
                    {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                    {"Variable": "$.value", "NumericLessThan": 30}
                ], "Next": "ValueInTwenties"}
            ],
            "Default": "DefaultState"
        },
        "Public": {"Type": "Pass", "Result": "Public", "End": true},
        "ValueIsZero": {"Type": "Pass", "Result": "ValueIsZero", "End": true},
        "ValueInTwenties": {"Type": "Pass", "Result": "ValueInTwenties", "End": true},
        "DefaultState": {"Type": "Fail", "Cause": "No Matches!"}
    }})
}

fn hello_input() -> Value {
    json!({
        "comment": "This is a test of the input and output of a Task state.",
        "details": "Default example",
        "who": "AWS Step Functions"
    })
}

fn shipment() -> Value {
    json!({
        "ship-date": "2016-03-14T01:59:00Z",
        "detail": {
            "delivery-partner": "UQS",
            "shipped": [
                {"prod": "R31", "dest-code": 9511, "quantity": 1344},
                {"prod": "S39", "dest-code": 9511, "quantity": 40},
                {"prod": "R31", "dest-code": 9833, "quantity": 12},
                {"prod": "R40", "dest-code": 9860, "quantity": 887},
                {"prod": "R40", "dest-code": 9511, "quantity": 1220}
            ]
        }
    })
}

/// A Map over `items` whose iteration fails (`ItemFailed`) for an item `{"ok": false}`.
fn map_of_checks(extra: Value) -> Value {
    let mut m = json!({
        "Type": "Map",
        "ItemProcessor": {"StartAt": "Check", "States": {
            "Check": {"Type": "Choice", "Choices": [
                {"Variable": "$.ok", "BooleanEquals": true, "Next": "Good"}
            ], "Default": "Bad"},
            "Good": {"Type": "Succeed"},
            "Bad": {"Type": "Fail", "Error": "ItemFailed", "Cause": "the item is not ok"}
        }},
        "End": true
    });
    merge(&mut m, extra);
    single("M", m)
}

// ---------------------------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------------------------

/// `input-output-inputpath-params.html`, `input-output-example.html`,
/// `input-output-resultpath.html`, `state-pass.html`, `tutorial-get-started-configure-output.html`.
fn input_output_cases() -> Vec<Case> {
    vec![
        case(
            "InputPath selects dataset2",
            single("P", json!({"Type": "Pass", "InputPath": "$.dataset2", "End": true})),
            json!({
                "comment": "Example for InputPath.",
                "dataset1": {"val1": 1, "val2": 2, "val3": 3},
                "dataset2": {"val1": "a", "val2": "b", "val3": "c"}
            }),
            Succeeded(json!({"val1": "a", "val2": "b", "val3": "c"})),
        ),
        case(
            "InputPath slice $.a[0:2] yields the first two elements",
            single("P", json!({"Type": "Pass", "InputPath": "$.a[0:2]", "End": true})),
            json!({"a": [1, 2, 3, 4]}),
            Succeeded(json!([1, 2])),
        ),
        case(
            "Parameters select from the input and keep static values",
            pass_params(json!({
                "comment": "Selecting what I care about.",
                "MyDetails": {
                    "size.$": "$.product.details.size",
                    "exists.$": "$.product.availability",
                    "StaticValue": "foo"
                }
            })),
            json!({
                "comment": "Example for Parameters.",
                "product": {
                    "details": {"color": "blue", "size": "small", "material": "cotton"},
                    "availability": "in stock",
                    "sku": "2317",
                    "cost": "$23"
                }
            }),
            Succeeded(json!({
                "comment": "Selecting what I care about.",
                "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"}
            })),
        ),
        case(
            "ResultSelector picks from the result and ResultPath merges it into the input",
            single(
                "Create Cluster",
                lambda_task(
                    "create-cluster",
                    json!({
                        "ResultSelector": {
                            "ClusterId.$": "$.output.ClusterId",
                            "ResourceType.$": "$.resourceType"
                        },
                        "ResultPath": "$.EMROutput"
                    }),
                ),
            ),
            json!({"OtherDataFromInput": {}}),
            Succeeded(json!({
                "OtherDataFromInput": {},
                "EMROutput": {"ResourceType": "elasticmapreduce", "ClusterId": "AKIAIOSFODNN7EXAMPLE"}
            })),
        ),
        case(
            "InputPath ResultPath OutputPath keep only the data node with the result",
            json!({
                "Comment": "A Hello World example of the Amazon States Language using an AWS Lambda function",
                "StartAt": "HelloWorld",
                "States": {"HelloWorld": {
                    "Type": "Task",
                    "Resource": "arn:aws:lambda:us-east-1:123456789012:function:HelloFunction",
                    "InputPath": "$.lambda",
                    "ResultPath": "$.data.lambdaresult",
                    "OutputPath": "$.data",
                    "End": true
                }}
            }),
            json!({
                "comment": "An input comment.",
                "data": {"val1": 23, "val2": 17},
                "extra": "foo",
                "lambda": {"who": "AWS Step Functions"}
            }),
            Succeeded(json!({"val1": 23, "val2": 17, "lambdaresult": "Hello, AWS Step Functions!"})),
        ),
        case(
            "the whole pipeline InputPath Parameters ResultSelector ResultPath OutputPath",
            single(
                "Verify identity",
                json!({
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "InputPath": "$.data",
                    "Parameters": {
                        "FunctionName": "arn:aws:lambda:us-east-2:111122223333:function:check-identity:$LATEST",
                        "Payload.$": "$.identity"
                    },
                    "ResultSelector": {"identity.$": "States.StringToJson($.Payload.body)"},
                    "ResultPath": "$.results",
                    "OutputPath": "$.results",
                    "End": true
                }),
            ),
            json!({"data": {
                "firstname": "Jane",
                "lastname": "Doe",
                "identity": {"email": "jdoe@example.com", "ssn": "123-45-6789"}
            }}),
            Succeeded(json!({"identity": {"approved": true, "message": "identity validation passed"}})),
        ),
        case(
            "no ResultPath replaces the input with the result",
            single("HelloWorld", lambda_task("HelloFunction", json!({}))),
            hello_input(),
            Succeeded(json!("Hello, AWS Step Functions!")),
        ),
        case(
            "ResultPath $ replaces the input with the result",
            single("HelloWorld", lambda_task("HelloFunction", json!({"ResultPath": "$"}))),
            hello_input(),
            Succeeded(json!("Hello, AWS Step Functions!")),
        ),
        case(
            "ResultPath null discards the result and keeps the input",
            single("HelloWorld", lambda_task("HelloFunction", json!({"ResultPath": null}))),
            hello_input(),
            Succeeded(hello_input()),
        ),
        case(
            "ResultPath $.taskresult adds the result to the input",
            single("HelloWorld", lambda_task("HelloFunction", json!({"ResultPath": "$.taskresult"}))),
            hello_input(),
            Succeeded(json!({
                "comment": "This is a test of the input and output of a Task state.",
                "details": "Default example",
                "who": "AWS Step Functions",
                "taskresult": "Hello, AWS Step Functions!"
            })),
        ),
        case(
            "ResultPath $.strings.lambdaresult inserts the result as a child node",
            single(
                "HelloWorld",
                lambda_task("HelloFunction", json!({"ResultPath": "$.strings.lambdaresult"})),
            ),
            json!({
                "comment": "An input comment.",
                "strings": {"string1": "foo", "string2": "bar", "string3": "baz"},
                "who": "AWS Step Functions"
            }),
            Succeeded(json!({
                "comment": "An input comment.",
                "strings": {
                    "string1": "foo",
                    "string2": "bar",
                    "string3": "baz",
                    "lambdaresult": "Hello, AWS Step Functions!"
                },
                "who": "AWS Step Functions"
            })),
        ),
        case(
            "ResultPath $.comment overwrites an existing node",
            single("HelloWorld", lambda_task("HelloFunction", json!({"ResultPath": "$.comment"}))),
            hello_input(),
            Succeeded(json!({
                "comment": "Hello, AWS Step Functions!",
                "details": "Default example",
                "who": "AWS Step Functions"
            })),
        ),
        case(
            "ResultPath creates the missing objects of a nested path",
            single(
                "P",
                json!({"Type": "Pass", "Result": 7, "ResultPath": "$.a.b.c", "End": true}),
            ),
            json!({"keep": true}),
            Succeeded(json!({"keep": true, "a": {"b": {"c": 7}}})),
        ),
        case(
            "ResultPath into a string fails with States.ResultPathMatchFailure",
            single(
                "P",
                json!({"Type": "Pass", "Result": 7, "ResultPath": "$.a.b", "End": true}),
            ),
            json!({"a": "not an object"}),
            Failed("States.ResultPathMatchFailure", "$.a.b"),
        ),
        case(
            "Pass Result with ResultPath injects fixed data",
            single(
                "No-op",
                json!({
                    "Type": "Pass",
                    "Result": {"x-datum": 0.381018, "y-datum": 622.2269926397355},
                    "ResultPath": "$.coords",
                    "End": true
                }),
            ),
            json!({"georefOf": "Home"}),
            Succeeded(json!({
                "georefOf": "Home",
                "coords": {"x-datum": 0.381018, "y-datum": 622.2269926397355}
            })),
        ),
        case(
            "Pass without fields passes its input through",
            single("P", json!({"Type": "Pass", "End": true})),
            json!({"a": [1, {"b": null}]}),
            Succeeded(json!({"a": [1, {"b": null}]})),
        ),
        case(
            "Pass Parameters with ResultPath keep the input",
            single(
                "P",
                json!({"Type": "Pass", "Parameters": {"n.$": "$.n", "static": 1}, "ResultPath": "$.made", "End": true}),
            ),
            json!({"n": 5}),
            Succeeded(json!({"n": 5, "made": {"n": 5, "static": 1}})),
        ),
        case(
            "InputPath null gives the state an empty object",
            single("P", json!({"Type": "Pass", "InputPath": null, "End": true})),
            json!({"a": 1}),
            Succeeded(json!({})),
        ),
        case(
            "OutputPath null gives the next state an empty object",
            single("P", json!({"Type": "Pass", "OutputPath": null, "End": true})),
            json!({"a": 1}),
            Succeeded(json!({})),
        ),
        case(
            "OutputPath selects a part of the output",
            single("P", json!({"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.r", "OutputPath": "$.r.x", "End": true})),
            json!({"a": 1}),
            Succeeded(json!(1)),
        ),
        case(
            "a missing InputPath is a States.Runtime error naming the state",
            single("A", json!({"Type": "Pass", "InputPath": "$.missing", "End": true})),
            json!({"present": 1}),
            Failed(
                "States.Runtime",
                "An error occurred while executing the state 'A' (entered at the event id #2). Invalid path '$.missing'",
            ),
        ),
        case(
            "a missing OutputPath is a States.Runtime error",
            single("A", json!({"Type": "Pass", "OutputPath": "$.missing", "End": true})),
            json!({"present": 1}),
            Failed("States.Runtime", "An error occurred while executing the state 'A'"),
        ),
        case(
            "a missing Parameters path is a States.Runtime error",
            pass_params(json!({"x.$": "$.missing"})),
            json!({"present": 1}),
            Failed("States.Runtime", "An error occurred while executing the state 'P'"),
        ),
    ]
}

/// `input-output-contextobject.html`.
fn context_cases() -> Vec<Case> {
    vec![
        case(
            "context object execution start time and name in a Pass",
            json!({
                "Comment": "Accessing context object in a state machine",
                "StartAt": "Get execution context data",
                "States": {"Get execution context data": {
                    "Type": "Pass",
                    "Parameters": {
                        "startTime.$": "$$.Execution.StartTime",
                        "execName.$": "$$.Execution.Name"
                    },
                    "ResultPath": "$.executionContext",
                    "End": true
                }}
            }),
            json!({"k": "v"}),
            Succeeded(json!({"k": "v", "executionContext": {
                "startTime": "<ctx:/Execution/StartTime>",
                "execName": EXECUTION_NAME
            }})),
        ),
        case(
            "context object State.Name, Execution.Input, StateMachine.Name and Execution.Id",
            pass_params(json!({
                "state.$": "$$.State.Name",
                "input.$": "$$.Execution.Input",
                "machine.$": "$$.StateMachine.Name",
                "id.$": "$$.Execution.Id",
                "role.$": "$$.Execution.RoleArn",
                "retries.$": "$$.State.RetryCount"
            })),
            json!({"key": "value"}),
            Succeeded(json!({
                "state": "P",
                "input": {"key": "value"},
                "machine": MACHINE_NAME,
                "id": "<ctx:/Execution/Id>",
                "role": ROLE_ARN,
                "retries": 0
            })),
        ),
        case(
            "context object execution ARN passed to an SQS message",
            single(
                "Order Flight Ticket Queue",
                json!({
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sqs:sendMessage",
                    "Parameters": {
                        "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/flight-purchase",
                        "MessageBody": {"From": "YVR", "To": "SEA", "Execution.$": "$$.Execution.Id"}
                    },
                    "ResultSelector": {
                        "service.$": "$.service",
                        "action.$": "$.action",
                        "queue.$": "$.input.QueueUrl",
                        "body.$": "States.StringToJson($.input.MessageBody)"
                    },
                    "End": true
                }),
            ),
            json!({}),
            Succeeded(json!({
                "service": "sqs",
                "action": "SendMessage",
                "queue": "https://sqs.us-east-1.amazonaws.com/123456789012/flight-purchase",
                "body": {"From": "YVR", "To": "SEA", "Execution": "<ctx:/Execution/Id>"}
            })),
        ),
        case(
            "a $$ path in InputPath reads the context object",
            single(
                "P",
                json!({"Type": "Pass", "InputPath": "$$.Execution.Name", "End": true}),
            ),
            json!({}),
            Succeeded(json!(EXECUTION_NAME)),
        ),
        case(
            "Map context index and value in ItemSelector",
            json!({"StartAt": "ExampleMapState", "States": {"ExampleMapState": {
                "Type": "Map",
                "ItemSelector": {
                    "ContextIndex.$": "$$.Map.Item.Index",
                    "ContextValue.$": "$$.Map.Item.Value"
                },
                "ItemProcessor": {"StartAt": "TestPass", "States": {
                    "TestPass": {"Type": "Pass", "End": true}
                }},
                "End": true
            }}}),
            json!([{"who": "bob"}, {"who": "meg"}, {"who": "joe"}]),
            Succeeded(json!([
                {"ContextIndex": 0, "ContextValue": {"who": "bob"}},
                {"ContextIndex": 1, "ContextValue": {"who": "meg"}},
                {"ContextIndex": 2, "ContextValue": {"who": "joe"}}
            ])),
        ),
    ]
}

/// `state-choice.html`.
fn choice_cases() -> Vec<Case> {
    vec![
        case(
            "Choice example: And range picks ValueInTwenties",
            choice_state_x(),
            json!({"type": "Private", "value": 22}),
            Succeeded(json!("ValueInTwenties")),
        ),
        case(
            "Choice example: NumericEquals 0 picks ValueIsZero",
            choice_state_x(),
            json!({"type": "Private", "value": 0}),
            Succeeded(json!("ValueIsZero")),
        ),
        case(
            "Choice example: Not StringEquals picks Public",
            choice_state_x(),
            json!({"type": "Public", "value": 22}),
            Succeeded(json!("Public")),
        ),
        case(
            "Choice example: no rule matches so Default runs its Fail",
            choice_state_x(),
            json!({"type": "Private", "value": 5}),
            Failed("", "No Matches!"),
        ),
        case(
            "Choice without Default and no match fails with States.NoChoiceMatched",
            json!({"StartAt": "C", "States": {
                "C": {"Type": "Choice", "Choices": [
                    {"Variable": "$.value", "NumericEquals": 1, "Next": "One"}
                ]},
                "One": {"Type": "Succeed"}
            }}),
            json!({"value": 2}),
            Failed("States.NoChoiceMatched", ""),
        ),
        case(
            "Choice Or matches its second rule",
            choice(json!({"Or": [
                {"Variable": "$.value", "NumericLessThan": 20},
                {"Variable": "$.value", "NumericGreaterThanEquals": 30}
            ]})),
            json!({"value": 31}),
            Succeeded(json!("yes")),
        ),
        case(
            "Choice Or matches none",
            choice(json!({"Or": [
                {"Variable": "$.value", "NumericLessThan": 20},
                {"Variable": "$.value", "NumericGreaterThanEquals": 30}
            ]})),
            json!({"value": 25}),
            Succeeded(json!("no")),
        ),
        case(
            "Choice IsPresent guards a comparison of a missing field",
            choice(json!({"And": [
                {"Variable": "$.keyThatMightNotExist", "IsPresent": true},
                {"Variable": "$.keyThatMightNotExist", "StringEquals": "foo"}
            ]})),
            json!({"other": 1}),
            Succeeded(json!("no")),
        ),
        case(
            "Choice StringMatches with a wildcard",
            choice(json!({"Variable": "$.foo", "StringMatches": "log-*.txt"})),
            json!({"foo": "log-2024-01.txt"}),
            Succeeded(json!("yes")),
        ),
        case(
            "Choice StringMatches with an escaped star matches a literal star",
            choice(json!({"Variable": "$.foo", "StringMatches": "a\\*b"})),
            json!({"foo": "axxb"}),
            Succeeded(json!("no")),
        ),
        case(
            "Choice IsNull",
            choice(json!({"Variable": "$.possiblyNullValue", "IsNull": true})),
            json!({"possiblyNullValue": null}),
            Succeeded(json!("yes")),
        ),
        case(
            "Choice TimestampEquals",
            choice(json!({"Variable": "$.foo", "TimestampEquals": "2001-01-01T12:00:00Z"})),
            json!({"foo": "2001-01-01T12:00:00Z"}),
            Succeeded(json!("yes")),
        ),
        case(
            "Choice StringEqualsPath compares two input values",
            choice(json!({"Variable": "$.foo", "StringEqualsPath": "$.bar"})),
            json!({"foo": "same", "bar": "same"}),
            Succeeded(json!("yes")),
        ),
        case(
            "Choice StringGreaterThan compares like Java compareTo",
            choice(json!({"Variable": "$.foo", "StringGreaterThan": "MyStringABC"})),
            json!({"foo": "MyStringABD"}),
            Succeeded(json!("yes")),
        ),
        case(
            "Choice does not match a numeric field with a string value",
            choice(json!({"Variable": "$.foo", "StringEquals": "1"})),
            json!({"foo": 1}),
            Succeeded(json!("no")),
        ),
        case(
            "Choice BooleanEquals",
            choice(json!({"Variable": "$.flag", "BooleanEquals": false})),
            json!({"flag": false}),
            Succeeded(json!("yes")),
        ),
        case(
            "Choice InputPath and OutputPath apply to the Choice state",
            json!({"StartAt": "C", "States": {
                "C": {"Type": "Choice", "InputPath": "$.inner", "OutputPath": "$.n", "Choices": [
                    {"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Done"}
                ]},
                "Done": {"Type": "Succeed"}
            }}),
            json!({"inner": {"n": 2}}),
            Succeeded(json!(2)),
        ),
    ]
}

/// `state-wait.html`, `state-succeed.html`, `state-fail.html`.
fn wait_succeed_fail_cases() -> Vec<Case> {
    vec![
        case(
            "Wait Seconds 0 passes its input on",
            json!({"StartAt": "W", "States": {
                "W": {"Type": "Wait", "Seconds": 0, "Next": "S"},
                "S": {"Type": "Succeed"}
            }}),
            json!({"a": 1}),
            Succeeded(json!({"a": 1})),
        ),
        case(
            "Wait SecondsPath reads the seconds from the input",
            single(
                "W",
                json!({"Type": "Wait", "SecondsPath": "$.wait", "End": true}),
            ),
            json!({"wait": 0, "b": 2}),
            Succeeded(json!({"wait": 0, "b": 2})),
        ),
        case(
            "Wait Timestamp in the past continues at once",
            single(
                "wait_until",
                json!({"Type": "Wait", "Timestamp": "2016-03-14T01:59:00Z", "End": true}),
            ),
            json!({"x": 1}),
            Succeeded(json!({"x": 1})),
        ),
        case(
            "Wait TimestampPath reads the timestamp from the input",
            single(
                "wait_until",
                json!({"Type": "Wait", "TimestampPath": "$.expirydate", "End": true}),
            ),
            json!({"expirydate": "2016-03-14T01:59:00Z"}),
            Succeeded(json!({"expirydate": "2016-03-14T01:59:00Z"})),
        ),
        case(
            "Wait SecondsPath to a string is a States.Runtime error",
            single(
                "W",
                json!({"Type": "Wait", "SecondsPath": "$.wait", "End": true}),
            ),
            json!({"wait": "soon"}),
            Failed("States.Runtime", "SecondsPath"),
        ),
        case(
            "Succeed with InputPath and OutputPath",
            single(
                "S",
                json!({"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}),
            ),
            json!({"a": {"b": "done"}}),
            Succeeded(json!("done")),
        ),
        case(
            "Fail with Error and Cause",
            single(
                "FailState",
                json!({"Type": "Fail", "Cause": "Invalid response.", "Error": "ErrorA"}),
            ),
            json!({}),
            Failed("ErrorA", "Invalid response."),
        ),
        case(
            "Fail ErrorPath and CausePath read the input",
            single(
                "FailState",
                json!({"Type": "Fail", "Comment": "my error comment", "ErrorPath": "$.Error", "CausePath": "$.Cause"}),
            ),
            json!({"Error": "CustomError", "Cause": "the cause from the input"}),
            Failed("CustomError", "the cause from the input"),
        ),
        case(
            "Fail CausePath with States.Format",
            single(
                "FailState",
                json!({
                    "Type": "Fail",
                    "ErrorPath": "$.Error",
                    "CausePath": "States.Format('this is the error: {}, and this is the cause: {}', $.Error, $.Cause)"
                }),
            ),
            json!({"Error": "CustomError", "Cause": "bad input"}),
            Failed(
                "CustomError",
                "this is the error: CustomError, and this is the cause: bad input",
            ),
        ),
    ]
}

/// `state-parallel.html`, `input-output-inputpath-params.html` (flattening).
fn parallel_cases() -> Vec<Case> {
    vec![
        case(
            "Parallel branches get the same input and output an array",
            json!({"Comment": "Parallel Example.", "StartAt": "FunWithMath", "States": {"FunWithMath": {
                "Type": "Parallel",
                "End": true,
                "Branches": [
                    {"StartAt": "Add", "States": {"Add": {"Type": "Task", "Resource": lambda_arn("Add"), "End": true}}},
                    {"StartAt": "Subtract", "States": {"Subtract": {"Type": "Task", "Resource": lambda_arn("Subtract"), "End": true}}}
                ]
            }}}),
            json!([3, 2]),
            Succeeded(json!([5, 1])),
        ),
        case(
            "Parallel LookupCustomerInfo runs both lookups",
            json!({"StartAt": "LookupCustomerInfo", "States": {"LookupCustomerInfo": {
                "Type": "Parallel",
                "End": true,
                "Branches": [
                    {"StartAt": "LookupAddress", "States": {"LookupAddress": {"Type": "Task", "Resource": lambda_arn("AddressFinder"), "End": true}}},
                    {"StartAt": "LookupPhone", "States": {"LookupPhone": {"Type": "Task", "Resource": lambda_arn("PhoneFinder"), "End": true}}}
                ]
            }}}),
            json!({"customer": 1}),
            Succeeded(json!([{"address": "123 Main St"}, {"phone": "555-0100"}])),
        ),
        case(
            "Parallel ResultSelector flattens an array of arrays",
            json!({"StartAt": "P", "States": {"P": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": [1, 2, 3], "End": true}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": [4, 5, 6], "End": true}}}
                ],
                "ResultSelector": {"flattenArray.$": "$[*][*]"},
                "End": true
            }}}),
            json!({}),
            Succeeded(json!({"flattenArray": [1, 2, 3, 4, 5, 6]})),
        ),
        case(
            "Parallel with InputPath Parameters and ResultPath",
            json!({"StartAt": "P", "States": {"P": {
                "Type": "Parallel",
                "InputPath": "$.numbers",
                "Parameters": {"pair.$": "States.Array($.a, $.b)"},
                "Branches": [
                    {"StartAt": "Add", "States": {"Add": {"Type": "Task", "Resource": lambda_arn("Add"), "InputPath": "$.pair", "End": true}}},
                    {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": true}}}
                ],
                "ResultPath": "$.results",
                "End": true
            }}}),
            json!({"numbers": {"a": 3, "b": 4}}),
            Succeeded(json!({"numbers": {"a": 3, "b": 4}, "results": [7, {"pair": [3, 4]}]})),
        ),
        case(
            "a failing Parallel branch fails the execution with its error",
            json!({"StartAt": "P", "States": {"P": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Ok", "States": {"Ok": {"Type": "Pass", "End": true}}},
                    {"StartAt": "Bad", "States": {"Bad": {"Type": "Fail", "Error": "BranchError", "Cause": "branch two broke"}}}
                ],
                "End": true
            }}}),
            json!({}),
            Failed("BranchError", "branch two broke"),
        ),
        case(
            "a Parallel Catch handles a branch's error",
            json!({"StartAt": "P", "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [
                        {"StartAt": "Bad", "States": {"Bad": {"Type": "Fail", "Error": "BranchError", "Cause": "branch broke"}}}
                    ],
                    "Catch": [{"ErrorEquals": ["BranchError"], "ResultPath": "$.caught", "Next": "Recovered"}],
                    "End": true
                },
                "Recovered": {"Type": "Pass", "End": true}
            }}),
            json!({"in": 1}),
            Succeeded(
                json!({"in": 1, "caught": {"Error": "BranchError", "Cause": "branch broke"}}),
            ),
        ),
        case(
            "a Parallel Retry runs the branches again",
            json!({"StartAt": "P", "States": {"P": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": lambda_arn("flaky-1"), "End": true}}}
                ],
                "Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 1}],
                "End": true
            }}}),
            json!({"v": 1}),
            Succeeded(json!([{"v": 1}])),
        ),
    ]
}

/// `state-map-inline.html`, `input-output-itemspath.html`.
fn map_cases() -> Vec<Case> {
    vec![
        case(
            "Map ItemsPath chooses the array to iterate",
            json!({"StartAt": "PiratesSay", "States": {"PiratesSay": {
                "Type": "Map",
                "ItemsPath": "$.ThingsPiratesSay",
                "ItemProcessor": {"StartAt": "SayWord", "States": {"SayWord": {"Type": "Pass", "End": true}}},
                "End": true
            }}}),
            json!({
                "ThingsPiratesSay": [{"say": "Avast!"}, {"say": "Yar!"}, {"say": "Walk the Plank!"}],
                "ThingsGiantsSay": [{"say": "Fee!"}, {"say": "Fi!"}, {"say": "Fo!"}, {"say": "Fum!"}]
            }),
            Succeeded(json!([{"say": "Avast!"}, {"say": "Yar!"}, {"say": "Walk the Plank!"}])),
        ),
        case(
            "Map InputPath ItemsPath and ResultPath overwrite the shipped array",
            json!({"StartAt": "Validate-All", "States": {"Validate-All": {
                "Type": "Map",
                "InputPath": "$.detail",
                "ItemsPath": "$.shipped",
                "MaxConcurrency": 0,
                "ItemProcessor": {"StartAt": "Validate", "States": {"Validate": {
                    "Type": "Task",
                    "Resource": "arn:aws:lambda:us-east-1:123456789012:function:ship-val",
                    "End": true
                }}},
                "ResultPath": "$.detail.shipped",
                "End": true
            }}}),
            shipment(),
            Succeeded(shipment()),
        ),
        case(
            "Map ItemSelector combines the item with the courier",
            json!({"StartAt": "Validate-All", "States": {"Validate-All": {
                "Type": "Map",
                "InputPath": "$.detail",
                "ItemsPath": "$.shipped",
                "MaxConcurrency": 0,
                "ResultPath": "$.detail.shipped",
                "ItemSelector": {"parcel.$": "$$.Map.Item.Value", "courier.$": "$.delivery-partner"},
                "ItemProcessor": {"StartAt": "Validate", "States": {"Validate": {
                    "Type": "Task",
                    "Resource": "arn:aws:lambda:us-east-1:123456789012:function:ship-val",
                    "End": true
                }}},
                "End": true
            }}}),
            json!({"ship-date": "2016-03-14T01:59:00Z", "detail": {"delivery-partner": "UQS", "shipped": [
                {"prod": "R31", "dest-code": 9511, "quantity": 1344},
                {"prod": "S39", "dest-code": 9511, "quantity": 40}
            ]}}),
            Succeeded(
                json!({"ship-date": "2016-03-14T01:59:00Z", "detail": {"delivery-partner": "UQS", "shipped": [
                    {"parcel": {"prod": "R31", "dest-code": 9511, "quantity": 1344}, "courier": "UQS"},
                    {"parcel": {"prod": "S39", "dest-code": 9511, "quantity": 40}, "courier": "UQS"}
                ]}}),
            ),
        ),
        case(
            "Map Parameters (the older name of ItemSelector) with the item index",
            json!({"StartAt": "M", "States": {"M": {
                "Type": "Map",
                "Parameters": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value"},
                "Iterator": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
                "End": true
            }}}),
            json!(["a", "b"]),
            Succeeded(json!([{"i": 0, "v": "a"}, {"i": 1, "v": "b"}])),
        ),
        case(
            "Map over a Task doubles each number and keeps the order",
            json!({"StartAt": "M", "States": {"M": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "D", "States": {"D": {"Type": "Task", "Resource": lambda_arn("double"), "End": true}}},
                "End": true
            }}}),
            json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            Succeeded(json!([2, 4, 6, 8, 10, 12, 14, 16, 18, 20])),
        ),
        case(
            "Map of an empty array outputs an empty array",
            json!({"StartAt": "M", "States": {"M": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "D", "States": {"D": {"Type": "Task", "Resource": lambda_arn("double"), "End": true}}},
                "End": true
            }}}),
            json!([]),
            Succeeded(json!([])),
        ),
        case(
            "Map MaxConcurrency 1 runs one iteration at a time",
            json!({"StartAt": "M", "States": {"M": {
                "Type": "Map",
                "MaxConcurrency": 1,
                "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": lambda_arn("concurrency"), "End": true}}},
                "End": true
            }}}),
            json!([1, 2, 3, 4]),
            Succeeded(json!([1, 1, 1, 1])),
        ),
        case(
            "Map MaxConcurrencyPath reads the limit from the input",
            json!({"StartAt": "M", "States": {"M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrencyPath": "$.limit",
                "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": lambda_arn("concurrency"), "End": true}}},
                "End": true
            }}}),
            json!({"items": [1, 2, 3], "limit": 1}),
            Succeeded(json!([1, 1, 1])),
        ),
        case(
            "Map ResultSelector over the iterations' outputs",
            json!({"StartAt": "M", "States": {"M": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "D", "States": {"D": {"Type": "Task", "Resource": lambda_arn("double"), "End": true}}},
                "ResultSelector": {"count.$": "States.ArrayLength($)", "first.$": "$[0]"},
                "End": true
            }}}),
            json!([5, 6, 7]),
            Succeeded(json!({"count": 3, "first": 10})),
        ),
        case(
            "a failing Map iteration fails the Map with its error",
            map_of_checks(json!({})),
            json!([{"ok": true}, {"ok": false}, {"ok": true}]),
            Failed("ItemFailed", "the item is not ok"),
        ),
        case(
            "Map ToleratedFailureCount tolerates that many failed iterations",
            map_of_checks(json!({"ToleratedFailureCount": 1, "ResultPath": null})),
            json!([{"ok": true}, {"ok": false}, {"ok": true}]),
            Succeeded(json!([{"ok": true}, {"ok": false}, {"ok": true}])),
        ),
        case(
            "Map ToleratedFailureCount exceeded fails with States.ExceedToleratedFailureThreshold",
            map_of_checks(json!({"ToleratedFailureCount": 1, "ResultPath": null})),
            json!([{"ok": false}, {"ok": false}, {"ok": true}]),
            Failed("States.ExceedToleratedFailureThreshold", ""),
        ),
        case(
            "Map ToleratedFailurePercentage 50 tolerates one failure in three",
            map_of_checks(json!({"ToleratedFailurePercentage": 50, "ResultPath": null})),
            json!([{"ok": true}, {"ok": false}, {"ok": true}]),
            Succeeded(json!([{"ok": true}, {"ok": false}, {"ok": true}])),
        ),
        case(
            "a Map Catch handles an iteration's error",
            json!({"StartAt": "M", "States": {
                "M": {
                    "Type": "Map",
                    "ItemProcessor": {"StartAt": "D", "States": {"D": {"Type": "Task", "Resource": lambda_arn("double"), "End": true}}},
                    "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}],
                    "End": true
                },
                "Caught": {"Type": "Pass", "InputPath": "$.Error", "End": true}
            }}),
            json!([1, "two", 3]),
            Succeeded(json!("TypeError")),
        ),
    ]
}

/// `intrinsic-functions.html`.
fn intrinsic_cases() -> Vec<Case> {
    vec![
        case(
            "States.Format with a literal template",
            pass_params(json!({"greeting.$": "States.Format('Hello, my name is {}.', $.name)"})),
            json!({"name": "Arnav", "template": "Hello, my name is {}."}),
            Succeeded(json!({"greeting": "Hello, my name is Arnav."})),
        ),
        case(
            "States.Format with the template from the input",
            pass_params(json!({"greeting.$": "States.Format($.template, $.name)"})),
            json!({"name": "Arnav", "template": "Hello, my name is {}."}),
            Succeeded(json!({"greeting": "Hello, my name is Arnav."})),
        ),
        case(
            "States.StringToJson parses an escaped JSON string",
            pass_params(json!({"parsed.$": "States.StringToJson($.escapedJsonString)"})),
            json!({"escapedJsonString": "{\"foo\": \"bar\"}"}),
            Succeeded(json!({"parsed": {"foo": "bar"}})),
        ),
        case(
            "States.JsonToString then States.StringToJson round-trips",
            json!({"StartAt": "ToString", "States": {
                "ToString": {"Type": "Pass", "Parameters": {"s.$": "States.JsonToString($.unescapedJson)"}, "Next": "Check"},
                "Check": {"Type": "Pass", "Parameters": {"isString.$": "States.ArrayContains(States.Array($.s), $.s)", "back.$": "States.StringToJson($.s)"}, "End": true}
            }}),
            json!({"unescapedJson": {"foo": "bar"}}),
            Succeeded(json!({"isString": true, "back": {"foo": "bar"}})),
        ),
        case(
            "States.Array builds an array of literals and paths",
            pass_params(json!({"foo.$": "States.Array('Foo', 2020, $.someJson, null)"})),
            json!({"someJson": {"random": "abcdefg"}, "zebra": "stripe"}),
            Succeeded(json!({"foo": ["Foo", 2020, {"random": "abcdefg"}, null]})),
        ),
        case(
            "States.ArrayPartition chunks an array",
            pass_params(json!({"inputArray.$": "States.ArrayPartition($.inputArray,4)"})),
            json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]}),
            Succeeded(json!({"inputArray": [[1, 2, 3, 4], [5, 6, 7, 8], [9]]})),
        ),
        case(
            "States.ArrayContains finds a value",
            pass_params(json!({"contains.$": "States.ArrayContains($.inputArray, $.lookingFor)"})),
            json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "lookingFor": 5}),
            Succeeded(json!({"contains": true})),
        ),
        case(
            "States.ArrayRange counts in steps",
            pass_params(json!({"array.$": "States.ArrayRange(1, 9, 2)"})),
            json!({}),
            Succeeded(json!({"array": [1, 3, 5, 7, 9]})),
        ),
        case(
            "States.ArrayGetItem reads an index",
            pass_params(json!({"item.$": "States.ArrayGetItem($.inputArray, $.index)"})),
            json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5}),
            Succeeded(json!({"item": 6})),
        ),
        case(
            "States.ArrayLength counts",
            pass_params(json!({"length.$": "States.ArrayLength($.inputArray)"})),
            json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]}),
            Succeeded(json!({"length": 9})),
        ),
        case(
            "States.ArrayUnique removes duplicates",
            pass_params(json!({"unique.$": "States.ArrayUnique($.inputArray)"})),
            json!({"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]}),
            Succeeded(json!({"unique": [1, 2, 3, 4]})),
        ),
        case(
            "States.Base64Encode",
            pass_params(json!({"base64.$": "States.Base64Encode($.input)"})),
            json!({"input": "Data to encode"}),
            Succeeded(json!({"base64": "RGF0YSB0byBlbmNvZGU="})),
        ),
        case(
            "States.Base64Decode",
            pass_params(json!({"data.$": "States.Base64Decode($.base64)"})),
            json!({"base64": "RGVjb2RlZCBkYXRh"}),
            Succeeded(json!({"data": "Decoded data"})),
        ),
        case(
            "States.Hash SHA-1",
            pass_params(json!({"output.$": "States.Hash($.Data, $.Algorithm)"})),
            json!({"Data": "input data", "Algorithm": "SHA-1"}),
            Succeeded(json!({"output": "aaff4a450a104cd177d28d18d74485e8cae074b7"})),
        ),
        case(
            "States.JsonMerge shallow merge takes the second object's keys",
            pass_params(json!({"output.$": "States.JsonMerge($.json1, $.json2, false)"})),
            json!({"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}}),
            Succeeded(json!({"output": {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}})),
        ),
        case(
            "States.MathAdd",
            pass_params(json!({"value1.$": "States.MathAdd($.value1, $.step)"})),
            json!({"value1": 111, "step": -1}),
            Succeeded(json!({"value1": 110})),
        ),
        case(
            "States.StringSplit on one character",
            pass_params(json!({"array.$": "States.StringSplit($.inputString, $.splitter)"})),
            json!({"inputString": "1,2,3,4,5", "splitter": ","}),
            Succeeded(json!({"array": ["1", "2", "3", "4", "5"]})),
        ),
        case(
            "States.StringSplit on any of several characters",
            pass_params(json!({"array.$": "States.StringSplit($.inputString, $.splitter)"})),
            json!({"inputString": "This.is+a,test=string", "splitter": ".+,="}),
            Succeeded(json!({"array": ["This", "is", "a", "test", "string"]})),
        ),
        case(
            "States.UUID is a version 4 UUID",
            json!({"StartAt": "U", "States": {
                "U": {"Type": "Pass", "Parameters": {"uuid.$": "States.UUID()"}, "Next": "C"},
                "C": {"Type": "Choice", "Choices": [
                    {"Variable": "$.uuid", "StringMatches": "*-*-4*-*-*", "Next": "Yes"}
                ], "Default": "No"},
                "Yes": {"Type": "Pass", "Result": "v4", "End": true},
                "No": {"Type": "Fail", "Error": "NotAUuid"}
            }}),
            json!({}),
            Succeeded(json!("v4")),
        ),
        case(
            "States.MathRandom stays within its start and end, both included",
            json!({"StartAt": "R", "States": {
                "R": {"Type": "Pass", "Parameters": {"n.$": "States.MathRandom($.start, $.end)"}, "Next": "C"},
                "C": {"Type": "Choice", "Choices": [{"And": [
                    {"Variable": "$.n", "NumericGreaterThanEquals": 1},
                    {"Variable": "$.n", "NumericLessThanEquals": 999}
                ], "Next": "Yes"}], "Default": "No"},
                "Yes": {"Type": "Pass", "Result": "in range", "End": true},
                "No": {"Type": "Fail", "Error": "OutOfRange"}
            }}),
            json!({"start": 1, "end": 999}),
            Succeeded(json!("in range")),
        ),
        case(
            "nested intrinsics build an ARN part",
            pass_params(
                json!({"myArn.$": "States.Format('{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1))"}),
            ),
            json!({"ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/recipe/1.2.3"}}),
            Succeeded(json!({"myArn": "1.2"})),
        ),
        case(
            "escaped reserved characters in an intrinsic string",
            pass_params(json!({"s.$": "States.Format('it\\'s \\{literally\\} {}', $.x)"})),
            json!({"x": "here"}),
            Succeeded(json!({"s": "it's {literally} here"})),
        ),
        case(
            "intrinsics in a Task's Parameters and ResultSelector",
            single(
                "T",
                json!({
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "echo", "Payload": {"sum.$": "States.MathAdd($.a, $.b)"}},
                    "ResultSelector": {"text.$": "States.Format('sum is {}', $.Payload.sum)"},
                    "End": true
                }),
            ),
            json!({"a": 2, "b": 40}),
            Succeeded(json!({"text": "sum is 42"})),
        ),
        case(
            "an intrinsic on the wrong type fails with States.IntrinsicFailure",
            pass_params(json!({"n.$": "States.MathAdd($.a, 1)"})),
            json!({"a": "not a number"}),
            Failed("States.IntrinsicFailure", ""),
        ),
    ]
}

/// `concepts-error-handling.html`, `input-output-resultpath.html` (Catch), and the Lambda
/// integration (`connect-lambda.html`).
fn task_and_error_cases() -> Vec<Case> {
    vec![
        case(
            "lambda:invoke returns Payload and StatusCode 200",
            single(
                "Invoke",
                json!({
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
                    "ResultSelector": {"Payload.$": "$.Payload", "StatusCode.$": "$.StatusCode"},
                    "End": true
                }),
            ),
            json!({"x": [1, 2]}),
            Succeeded(json!({"Payload": {"x": [1, 2]}, "StatusCode": 200})),
        ),
        case(
            "lambda:invoke with a function ARN and qualifier",
            single(
                "Invoke",
                json!({
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:double:$LATEST", "Payload.$": "$.n"},
                    "OutputPath": "$.Payload",
                    "End": true
                }),
            ),
            json!({"n": 21}),
            Succeeded(json!(42)),
        ),
        case(
            "a plain function ARN returns the payload itself",
            single("T", lambda_task("echo", json!({}))),
            json!({"hello": "world"}),
            Succeeded(json!({"hello": "world"})),
        ),
        case(
            "a service integration passes its parameters",
            single(
                "Put",
                json!({
                    "Type": "Task",
                    "Resource": "arn:aws:states:::dynamodb:putItem",
                    "Parameters": {"TableName": "t", "Item": {"id": {"S.$": "$.id"}}},
                    "End": true
                }),
            ),
            json!({"id": "42"}),
            Succeeded(json!({"service": "dynamodb", "action": "PutItem", "input": {"TableName": "t", "Item": {"id": {"S": "42"}}}})),
        ),
        case(
            "an unhandled function error fails the execution with its errorType",
            single("T", lambda_task("fail", json!({}))),
            json!({}),
            Failed("CustomError", "boom"),
        ),
        case(
            "a lambda:invoke function error fails with its errorType",
            single(
                "T",
                json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "fail"}, "End": true}),
            ),
            json!({}),
            Failed("CustomError", "boom"),
        ),
        case(
            "an unhandled function error without errorType is Lambda.Unknown",
            single("T", lambda_task("crash", json!({}))),
            json!({}),
            Failed("Lambda.Unknown", "Task timed out after 3.00 seconds"),
        ),
        case(
            "a missing function fails with the platform's error",
            single("T", lambda_task("no-such-function", json!({}))),
            json!({}),
            Failed("Lambda.ResourceNotFoundException", "no-such-function"),
        ),
        case(
            "Catch without ResultPath outputs Error and Cause",
            json!({"StartAt": "HelloWorld", "States": {
                "HelloWorld": {
                    "Type": "Task",
                    "Resource": lambda_arn("fail"),
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "fallback"}],
                    "End": true
                },
                "fallback": {"Type": "Pass", "End": true}
            }}),
            json!({"foo": "bar"}),
            Succeeded(json!({"Error": "CustomError", "Cause": CUSTOM_ERROR})),
        ),
        case(
            "Catch ResultPath $.error keeps the input with the error",
            json!({"StartAt": "T", "States": {
                "T": {
                    "Type": "Task",
                    "Resource": lambda_arn("fail"),
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "NextTask", "ResultPath": "$.error"}],
                    "End": true
                },
                "NextTask": {"Type": "Pass", "End": true}
            }}),
            json!({"foo": "bar"}),
            Succeeded(json!({"foo": "bar", "error": {"Error": "CustomError", "Cause": CUSTOM_ERROR}})),
        ),
        case(
            "Catch States.TaskFailed handles a function error",
            json!({"StartAt": "HelloWorld", "States": {
                "HelloWorld": {
                    "Type": "Task",
                    "Resource": lambda_arn("fail"),
                    "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "fallback"}],
                    "End": true
                },
                "fallback": {"Type": "Pass", "Result": "Hello, AWS Step Functions!", "End": true}
            }}),
            json!({}),
            Succeeded(json!("Hello, AWS Step Functions!")),
        ),
        case(
            "catchers are scanned in order",
            json!({"StartAt": "T", "States": {
                "T": {
                    "Type": "Task",
                    "Resource": lambda_arn("fail"),
                    "Catch": [
                        {"ErrorEquals": ["java.lang.Exception"], "ResultPath": "$.error-info", "Next": "RecoveryState"},
                        {"ErrorEquals": ["CustomError"], "Next": "CustomState"},
                        {"ErrorEquals": ["States.ALL"], "Next": "EndState"}
                    ],
                    "End": true
                },
                "RecoveryState": {"Type": "Pass", "Result": "recovery", "End": true},
                "CustomState": {"Type": "Pass", "Result": "custom", "End": true},
                "EndState": {"Type": "Pass", "Result": "end", "End": true}
            }}),
            json!({}),
            Succeeded(json!("custom")),
        ),
        case(
            "Catch on a Fail state's error in a Parallel uses States.ALL",
            json!({"StartAt": "P", "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [{"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "ErrorA", "Cause": "Kaiju attack"}}}],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}],
                    "End": true
                },
                "H": {"Type": "Pass", "End": true}
            }}),
            json!({}),
            Succeeded(json!({"Error": "ErrorA", "Cause": "Kaiju attack"})),
        ),
        case(
            "Retry MaxAttempts 2 recovers a function that fails twice",
            single(
                "T",
                lambda_task(
                    "flaky-2",
                    json!({
                        "Parameters": {"retries.$": "$$.State.RetryCount"},
                        "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0}]
                    }),
                ),
            ),
            json!({}),
            Succeeded(json!({"retries": 2})),
        ),
        case(
            "Retry MaxAttempts 2 gives up on a function that fails three times",
            single(
                "T",
                lambda_task(
                    "flaky-3",
                    json!({"Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 2}]}),
                ),
            ),
            json!({}),
            Failed("Flaky", "call 3 of flaky-3"),
        ),
        case(
            "Retry default MaxAttempts is 3",
            single(
                "T",
                lambda_task("flaky-3", json!({"Retry": [{"ErrorEquals": ["States.ALL"]}]})),
            ),
            json!({"ok": 1}),
            Succeeded(json!({"ok": 1})),
        ),
        case(
            "Retry MaxAttempts 0 never retries",
            single(
                "T",
                lambda_task("flaky-1", json!({"Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 0}]})),
            ),
            json!({}),
            Failed("Flaky", "call 1 of flaky-1"),
        ),
        case(
            "Retry uses the first matching retrier even when a later one would retry",
            single(
                "T",
                lambda_task(
                    "flaky-1",
                    json!({"Retry": [
                        {"ErrorEquals": ["Flaky"], "MaxAttempts": 0},
                        {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}
                    ]}),
                ),
            ),
            json!({}),
            Failed("Flaky", "call 1 of flaky-1"),
        ),
        case(
            "Retry States.TaskFailed retries a function error",
            single(
                "T",
                lambda_task(
                    "flaky-2",
                    json!({"Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0}]}),
                ),
            ),
            json!({"v": 1}),
            Succeeded(json!({"v": 1})),
        ),
        case(
            "a retrier's attempts count across all its errors, then Catch takes over",
            json!({"StartAt": "X", "States": {
                "X": {
                    "Type": "Task",
                    "Resource": lambda_arn("errors-ErrorA-ErrorB-ErrorC-ErrorB"),
                    "Next": "Y",
                    "Retry": [
                        {"ErrorEquals": ["ErrorA", "ErrorB"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 2},
                        {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5}
                    ],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Z"}]
                },
                "Y": {"Type": "Pass", "Result": "Y", "End": true},
                "Z": {"Type": "Pass", "InputPath": "$.Error", "End": true}
            }}),
            json!({}),
            Succeeded(json!("ErrorB")),
        ),
        case(
            "a retried Task then Catch sees the last error",
            json!({"StartAt": "T", "States": {
                "T": {
                    "Type": "Task",
                    "Resource": lambda_arn("fail"),
                    "Retry": [{"ErrorEquals": ["CustomError"], "MaxAttempts": 2}],
                    "Catch": [{"ErrorEquals": ["CustomError"], "ResultPath": "$.err", "Next": "H"}],
                    "End": true
                },
                "H": {"Type": "Pass", "OutputPath": "$.err.Error", "End": true}
            }}),
            json!({}),
            Succeeded(json!("CustomError")),
        ),
        case(
            "a Task TimeoutSeconds is caught as States.Timeout",
            json!({"StartAt": "HelloWorld", "States": {
                "HelloWorld": {
                    "Type": "Task",
                    "Resource": lambda_arn("slow"),
                    "TimeoutSeconds": 1,
                    "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "fallback"}],
                    "End": true
                },
                "fallback": {"Type": "Pass", "Result": "Hello, AWS Step Functions!", "End": true}
            }}),
            json!({}),
            Succeeded(json!("Hello, AWS Step Functions!")),
        ),
        case(
            "States.TaskFailed does not catch States.Timeout",
            json!({"StartAt": "T", "States": {
                "T": {
                    "Type": "Task",
                    "Resource": lambda_arn("slow"),
                    "TimeoutSeconds": 1,
                    "Catch": [
                        {"ErrorEquals": ["States.TaskFailed"], "Next": "TaskFailed"},
                        {"ErrorEquals": ["States.ALL"], "Next": "All"}
                    ],
                    "End": true
                },
                "TaskFailed": {"Type": "Pass", "Result": "TaskFailed", "End": true},
                "All": {"Type": "Pass", "Result": "All", "End": true}
            }}),
            json!({}),
            Succeeded(json!("All")),
        ),
        case(
            "States.ALL does not catch a States.Runtime error",
            json!({"StartAt": "A", "States": {
                "A": {
                    "Type": "Task",
                    "Resource": lambda_arn("echo"),
                    "InputPath": "$.missing",
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}],
                    "End": true
                },
                "H": {"Type": "Pass", "End": true}
            }}),
            json!({"present": true}),
            Failed("States.Runtime", "An error occurred while executing the state 'A'"),
        ),
        case(
            "a task result over 256 KiB fails with States.DataLimitExceeded, which States.ALL does not catch",
            json!({"StartAt": "T", "States": {
                "T": {
                    "Type": "Task",
                    "Resource": lambda_arn("big"),
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}],
                    "End": true
                },
                "H": {"Type": "Pass", "End": true}
            }}),
            json!({}),
            Failed("States.DataLimitExceeded", ""),
        ),
        case(
            "a Pass output over 256 KiB fails with States.DataLimitExceeded",
            pass_params(json!({"a.$": "$.s", "b.$": "$.s", "c.$": "$.s"})),
            json!({"s": "y".repeat(100 * 1024)}),
            Failed("States.DataLimitExceeded", ""),
        ),
    ]
}

/// Cases nimbus once got wrong; each names the page and the sentence.
fn disagreement_cases() -> Vec<Case> {
    vec![
        // state-choice.html: "You must specify the `$.type` field. If the state input doesn't
        // contain the `$.type` field, the execution fails and an error is displayed in the
        // execution history." (AWS: States.Runtime, "Invalid path '$.type': The choice state's
        // condition path references an invalid value.") nimbus treats the missing variable as
        // a comparison that is false, so `Not` makes it true and the execution goes to Public.
        case(
            "Choice example: a missing $.type fails the execution",
            choice_state_x(),
            json!({"value": 22}),
            Failed("States.Runtime", "$.type"),
        ),
        // concepts-error-handling.html, States.DataLimitExceeded: "thrown ... When, after
        // Parameters processing, the input of a state is larger than the payload size quota."
        // nimbus checks the task's result but not its rendered Parameters: the task runs.
        case(
            "Task Parameters over 256 KiB fail with States.DataLimitExceeded",
            single(
                "T",
                lambda_task(
                    "AddressFinder",
                    json!({"Parameters": {"a.$": "$.s", "b.$": "$.s", "c.$": "$.s"}}),
                ),
            ),
            json!({"s": "y".repeat(100 * 1024)}),
            Failed("States.DataLimitExceeded", ""),
        ),
        // concepts-error-handling.html, States.TaskFailed: "When used in a retry or catch,
        // States.TaskFailed acts as a wildcard that matches any known error name except for
        // States.Timeout." (the ASL specification says the same). nimbus matches only names
        // outside `States.` (and States.TaskFailed itself), so a branch's
        // States.NoChoiceMatched is not caught.
        case(
            "Catch States.TaskFailed matches States.NoChoiceMatched from a branch",
            json!({"StartAt": "P", "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [{"StartAt": "C", "States": {
                        "C": {"Type": "Choice", "Choices": [
                            {"Variable": "$.n", "NumericEquals": 1, "Next": "One"}
                        ]},
                        "One": {"Type": "Succeed"}
                    }}],
                    "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}],
                    "End": true
                },
                "Caught": {"Type": "Pass", "InputPath": "$.Error", "End": true}
            }}),
            json!({"n": 2}),
            Succeeded(json!("States.NoChoiceMatched")),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn input_output_processing_matches_the_guide() {
    run_table(input_output_cases()).await;
}

#[tokio::test]
async fn context_object_matches_the_guide() {
    run_table(context_cases()).await;
}

#[tokio::test]
async fn choice_states_match_the_guide() {
    run_table(choice_cases()).await;
}

#[tokio::test]
async fn wait_succeed_and_fail_states_match_the_guide() {
    run_table(wait_succeed_fail_cases()).await;
}

#[tokio::test]
async fn parallel_states_match_the_guide() {
    run_table(parallel_cases()).await;
}

#[tokio::test]
async fn map_states_match_the_guide() {
    run_table(map_cases()).await;
}

#[tokio::test]
async fn intrinsic_functions_match_the_guide() {
    run_table(intrinsic_cases()).await;
}

#[tokio::test]
async fn tasks_retry_and_catch_match_the_guide() {
    run_table(task_and_error_cases()).await;
}

/// Cases the engine once got wrong, now kept as they are in the guide.
#[tokio::test]
async fn choice_on_a_missing_field_oversized_parameters_and_task_failed_as_the_guide_says() {
    run_table(disagreement_cases()).await;
}

/// Case names identify failures, so they are unique across the whole corpus.
#[test]
fn the_corpus_has_unique_names() {
    let all: Vec<Case> = [
        input_output_cases(),
        context_cases(),
        choice_cases(),
        wait_succeed_fail_cases(),
        parallel_cases(),
        map_cases(),
        intrinsic_cases(),
        task_and_error_cases(),
        disagreement_cases(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut seen = std::collections::HashSet::new();
    for c in &all {
        assert!(seen.insert(c.name), "two cases are named {:?}", c.name);
    }
}

#[tokio::test]
async fn execution_timeout_seconds_times_the_execution_out() {
    let definition = json!({
        "TimeoutSeconds": 1,
        "StartAt": "W",
        "States": {"W": {"Type": "Wait", "Seconds": 30, "End": true}}
    });
    let journal = Arc::new(Recorder::default());
    let started = Instant::now();
    let (outcome, _) = execute(&definition, json!({}), journal.clone(), 1.0)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let kinds = journal.kinds();
    assert_eq!(
        kinds,
        ["ExecutionStarted", "WaitStateEntered", "ExecutionTimedOut"],
        "{kinds:?}"
    );
}

#[tokio::test]
async fn history_of_one_lambda_invoke_task() {
    let definition = single(
        "Invoke",
        json!({
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
            "End": true
        }),
    );
    let journal = Arc::new(Recorder::default());
    let (outcome, _) = execute(&definition, json!({"a": 1}), journal.clone(), 0.0)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Succeeded(_)), "{outcome:?}");
    let events = journal.events.lock().unwrap().clone();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=7).collect::<Vec<u64>>());
    // Each event after the state's entry follows the one before it.
    for e in &events[2..] {
        assert_eq!(e.previous, e.id - 1, "{e:?}");
    }
    let (field, entered) = events[1].details.clone().unwrap();
    assert_eq!(field, "stateEnteredEventDetails");
    assert_eq!(entered["name"], "Invoke");
    assert_eq!(
        serde_json::from_str::<Value>(entered["input"].as_str().unwrap()).unwrap(),
        json!({"a": 1})
    );
    let (field, scheduled) = events[2].details.clone().unwrap();
    assert_eq!(field, "taskScheduledEventDetails");
    assert_eq!(scheduled["resourceType"], "lambda");
    assert_eq!(scheduled["resource"], "invoke");
    assert_eq!(scheduled["region"], REGION);
    assert_eq!(
        serde_json::from_str::<Value>(scheduled["parameters"].as_str().unwrap()).unwrap(),
        json!({"FunctionName": "echo", "Payload": {"a": 1}})
    );
    let (field, succeeded) = events[6].details.clone().unwrap();
    assert_eq!(field, "executionSucceededEventDetails");
    let output: Value = serde_json::from_str(succeeded["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["Payload"], json!({"a": 1}));
    assert_eq!(output["StatusCode"], 200);
}

#[tokio::test]
async fn history_of_a_plain_function_arn_task_uses_lambda_events() {
    let definition = single("T", lambda_task("echo", json!({})));
    let journal = Arc::new(Recorder::default());
    execute(&definition, json!({}), journal.clone(), 0.0)
        .await
        .unwrap();
    assert_eq!(
        journal.kinds(),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[tokio::test]
async fn history_of_a_retried_task_schedules_it_again() {
    let definition = single(
        "Invoke",
        json!({
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "flaky-1", "Payload.$": "$"},
            "Retry": [{"ErrorEquals": ["Flaky"]}],
            "End": true
        }),
    );
    let journal = Arc::new(Recorder::default());
    execute(&definition, json!({}), journal.clone(), 0.0)
        .await
        .unwrap();
    assert_eq!(
        journal.kinds(),
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskFailed",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[tokio::test]
async fn history_of_a_map_has_its_iteration_events() {
    let definition = single(
        "M",
        json!({
            "Type": "Map",
            "MaxConcurrency": 1,
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
            "End": true
        }),
    );
    let journal = Arc::new(Recorder::default());
    let (outcome, _) = execute(&definition, json!(["a", "b"]), journal.clone(), 0.0)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Succeeded(json!(["a", "b"])));
    let events = journal.events.lock().unwrap().clone();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "MapStateEntered",
            "MapStateStarted",
            "MapIterationStarted",
            "PassStateEntered",
            "PassStateExited",
            "MapIterationSucceeded",
            "MapIterationStarted",
            "PassStateEntered",
            "PassStateExited",
            "MapIterationSucceeded",
            "MapStateSucceeded",
            "MapStateExited",
            "ExecutionSucceeded"
        ]
    );
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=14).collect::<Vec<u64>>());
    let (field, started) = events[2].details.clone().unwrap();
    assert_eq!(field, "mapStateStartedEventDetails");
    assert_eq!(started["length"], 2);
    for (event, index) in [(3, 0), (6, 0), (7, 1), (10, 1)] {
        let (_, it) = events[event].details.clone().unwrap();
        assert_eq!(
            it,
            json!({"name": "M", "index": index}),
            "{:?}",
            events[event]
        );
    }
}

/// `concepts-error-handling.html`: the waits between retries (run at `delay_scale` 0 above).
#[test]
fn retry_intervals_follow_the_guide() {
    let retriers = |def: Value| -> Vec<asl::Retrier> {
        let machine =
            asl::parse(&single("T", lambda_task("echo", json!({"Retry": def}))).to_string())
                .unwrap();
        machine.states["T"].retry.clone()
    };
    let secs = |r: &asl::Retrier, attempts: u32| -> Vec<f64> {
        (0..attempts)
            .map(|a| retry_delay(r, a).as_secs_f64())
            .collect()
    };
    // "This example of a Retry makes 2 retry attempts after waiting for 3 and 4.5 seconds."
    let r = retriers(
        json!([{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 3, "MaxAttempts": 2, "BackoffRate": 1.5}]),
    );
    assert_eq!(r[0].max_attempts, 2);
    assert_eq!(secs(&r[0], 2), [3.0, 4.5]);
    // The defaults: IntervalSeconds 1, MaxAttempts 3, BackoffRate 2.0.
    let r = retriers(json!([{"ErrorEquals": ["States.ALL"]}]));
    assert_eq!(r[0].max_attempts, 3);
    assert_eq!(secs(&r[0], 3), [1.0, 2.0, 4.0]);
    // The complex scenario: the first retrier waits 1 and 2 s, the second 5 s.
    let r = retriers(json!([
        {"ErrorEquals": ["ErrorA", "ErrorB"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 2},
        {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5}
    ]));
    assert_eq!(secs(&r[0], 2), [1.0, 2.0]);
    assert_eq!(secs(&r[1], 1), [5.0]);
    // MaxDelaySeconds caps the backoff.
    let r = retriers(
        json!([{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "BackoffRate": 3.0, "MaxDelaySeconds": 50, "MaxAttempts": 4}]),
    );
    assert_eq!(secs(&r[0], 4), [10.0, 30.0, 50.0, 50.0]);
}

// ---------------------------------------------------------------------------------------------
// Definitions `asl::parse` refuses
// ---------------------------------------------------------------------------------------------

/// A diagnostic's code and location.
type Diag = (&'static str, &'static str);

fn diagnostics(text: &str) -> Vec<(String, String)> {
    match asl::parse(text) {
        Ok(_) => Vec::new(),
        Err(d) => d
            .into_iter()
            .map(|d| (d.code.to_owned(), d.location))
            .collect(),
    }
}

#[test]
fn invalid_definitions_are_refused_with_code_and_location() {
    let pass_end = json!({"Type": "Pass", "End": true});
    let cases: Vec<(&str, String, Vec<Diag>)> = vec![
        (
            "not JSON",
            "{\"StartAt\": ".to_owned(),
            vec![("INVALID_JSON_DESCRIPTION", "")],
        ),
        (
            "a Parallel branch state without Next or End",
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "X", "States": {"X": {"Type": "Pass"}}}
            ]}}})
            .to_string(),
            vec![("MISSING_TRANSITION_TARGET", "/States/P/Branches[0]/States/X")],
        ),
        (
            "a Parallel branch transitioning out of the branch",
            json!({"StartAt": "P", "States": {
                "P": {"Type": "Parallel", "Next": "Done", "Branches": [
                    {"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Done"}}}
                ]},
                "Done": {"Type": "Succeed"}
            }})
            .to_string(),
            vec![
                ("MISSING_TRANSITION_TARGET", "/States/P/Branches[0]/States/X/Next"),
                ("MISSING_END_STATE", "null"),
            ],
        ),
        (
            "a Parallel whose second branch has an unknown state type",
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "A", "States": {"A": pass_end}},
                {"StartAt": "B", "States": {"B": {"Type": "Nap", "End": true}}}
            ]}}})
            .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/P/Branches[1]/States/B/Type")],
        ),
        (
            "a Parallel with no branches",
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": []}}})
                .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/P/Branches")],
        ),
        (
            "a Parallel branch whose StartAt names no state",
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "Nope", "States": {"A": pass_end}}
            ]}}})
            .to_string(),
            vec![("MISSING_TRANSITION_TARGET", "/States/P/Branches[0]/StartAt")],
        ),
        (
            "a Map without ItemProcessor",
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true}}}).to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/M")],
        ),
        (
            "a Map ItemProcessor state with a bad Parameters path",
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "ItemProcessor": {
                "StartAt": "X", "States": {"X": {"Type": "Pass", "End": true, "Parameters": {"a.$": "$.b["}}}
            }}}})
            .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/M/ItemProcessor/States/X/Parameters")],
        ),
        (
            "a Map nested in a Parallel with an unreachable state",
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "ItemProcessor": {
                    "StartAt": "X", "States": {"X": pass_end, "Orphan": pass_end}
                }}}}
            ]}}})
            .to_string(),
            vec![(
                "MISSING_TRANSITION_TARGET",
                "/States/P/Branches[0]/States/M/ItemProcessor/States/Orphan",
            )],
        ),
        (
            "a Map ItemsPath that is not a JSONPath",
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "ItemsPath": "items",
                "ItemProcessor": {"StartAt": "X", "States": {"X": pass_end}}}}})
            .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/M/ItemsPath")],
        ),
        (
            "a Map ItemSelector with a .$ key holding a plain string",
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "ItemSelector": {"v.$": "value"},
                "ItemProcessor": {"StartAt": "X", "States": {"X": pass_end}}}}})
            .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/M/ItemSelector")],
        ),
        (
            "a Map with both Parameters and ItemSelector",
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
                "Parameters": {"a": 1}, "ItemSelector": {"a": 1},
                "ItemProcessor": {"StartAt": "X", "States": {"X": pass_end}}}}})
            .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/M")],
        ),
        (
            "an InputPath with an unclosed bracket",
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "InputPath": "$.a["}}})
                .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/A/InputPath")],
        ),
        (
            "an InputPath not starting with $",
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "InputPath": "a.b"}}})
                .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/A/InputPath")],
        ),
        (
            "an OutputPath that is a number",
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "OutputPath": 3}}})
                .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/A/OutputPath")],
        ),
        (
            "a ResultPath into the context object",
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "ResultPath": "$$.Execution"}}})
                .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/A/ResultPath")],
        ),
        (
            "a Parameters .$ key with a value that is not a path",
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "Parameters": {"x.$": "hello"}}}})
                .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/A/Parameters")],
        ),
        (
            "a nested Parameters .$ key with a number",
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "Parameters": {"outer": {"x.$": 5}}}}})
                .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/A/Parameters")],
        ),
        (
            "a ResultSelector .$ key calling an unknown intrinsic",
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "End": true, "ResultSelector": {"x.$": "States.Nope($.a)"}}}})
            .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/A/ResultSelector")],
        ),
        (
            "a Choice without Choices",
            json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Default": "D"}, "D": {"Type": "Succeed"}}})
                .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/C")],
        ),
        (
            "a Choice with empty Choices",
            json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [], "Default": "D"}, "D": {"Type": "Succeed"}}})
                .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/C/Choices")],
        ),
        (
            "a Choice rule without Next",
            json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [
                {"Variable": "$.a", "NumericEquals": 1}
            ], "Default": "D"}, "D": {"Type": "Succeed"}}})
            .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/C/Choices[0]")],
        ),
        (
            "a Choice rule whose Next names no state",
            json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [
                {"Variable": "$.a", "NumericEquals": 1, "Next": "Gone"}
            ], "Default": "D"}, "D": {"Type": "Succeed"}}})
            .to_string(),
            vec![("MISSING_TRANSITION_TARGET", "/States/C/Choices[0]/Next")],
        ),
        (
            "Retry on a Choice",
            json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [
                {"Variable": "$.a", "NumericEquals": 1, "Next": "D"}
            ], "Retry": [{"ErrorEquals": ["States.ALL"]}]}, "D": {"Type": "Succeed"}}})
            .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/C")],
        ),
        (
            "End on a Choice",
            json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "End": true, "Choices": [
                {"Variable": "$.a", "NumericEquals": 1, "Next": "D"}
            ]}, "D": {"Type": "Succeed"}}})
            .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/C")],
        ),
        (
            "ResultPath on a Choice",
            json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "ResultPath": "$.r", "Choices": [
                {"Variable": "$.a", "NumericEquals": 1, "Next": "D"}
            ]}, "D": {"Type": "Succeed"}}})
            .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/C")],
        ),
        (
            "Parameters on a Wait",
            json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": true, "Parameters": {}}}})
                .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/W")],
        ),
        (
            "InputPath on a Fail",
            json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "InputPath": "$.a"}}}).to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/F")],
        ),
        (
            "a Catch whose Next names no state",
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "End": true, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Nowhere"}]}}})
            .to_string(),
            vec![("MISSING_TRANSITION_TARGET", "/States/A/Catch[0]/Next")],
        ),
        (
            "a Catch without Next",
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "End": true, "Catch": [{"ErrorEquals": ["States.ALL"]}]}}})
            .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/A/Catch[0]")],
        ),
        (
            "States.ALL together with another error name",
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "End": true, "Retry": [{"ErrorEquals": ["States.ALL", "CustomError"]}]}}})
            .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/A/Retry[0]/ErrorEquals")],
        ),
        (
            "a Fail with both Error and ErrorPath",
            json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}}})
                .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/F")],
        ),
        (
            "a Wait with a negative Seconds",
            json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": -1, "End": true}}})
                .to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/States/W/Seconds")],
        ),
        (
            "a top-level TimeoutSeconds of 0",
            json!({"TimeoutSeconds": 0, "StartAt": "A", "States": {"A": pass_end}}).to_string(),
            vec![("SCHEMA_VALIDATION_FAILED", "/TimeoutSeconds")],
        ),
    ];
    let mut failures = Vec::new();
    for (what, text, want) in &cases {
        let got = diagnostics(text);
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(c, l)| ((*c).to_owned(), (*l).to_owned()))
            .collect();
        if got != want {
            failures.push(format!("{what}: expected {want:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} definitions:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
