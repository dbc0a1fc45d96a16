use std::time::{Duration, Instant};

use crate::harness::{alive, descendants, Nimbus};

const ONE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: bootstrap
      Runtime: provided.al2023
      Timeout: 10
  Warm:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Runtime: provided.al2023
      AutoPublishAlias: live
      ProvisionedConcurrencyConfig:
        ProvisionedConcurrentExecutions: 2
"#;

#[test]
fn idle_environments_are_stopped_after_the_idle_timeout() {
    let nimbus = Nimbus::start(ONE, &["--idle-timeout", "1"]);
    let pid = nimbus.invoke("Echo", "{}").json()["pid"].as_u64().unwrap() as u32;
    assert!(alive(pid));
    let start = Instant::now();
    while alive(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "idle environment {pid} still running"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The next invocation is a cold start again.
    let r = nimbus.invoke("Echo", "{}");
    let id = r.header("x-amzn-requestid").unwrap().to_owned();
    let report = nimbus.wait_for_line(&format!("REPORT RequestId: {id}"), Duration::from_secs(5));
    assert!(report.contains("Init Duration"), "{report}");
}

#[test]
fn provisioned_environments_of_the_alias_start_before_the_first_invoke_and_report_no_init() {
    let nimbus = Nimbus::start(ONE, &[]);
    let before: Vec<u32> = descendants(nimbus.pid());
    assert_eq!(
        before.len(),
        2,
        "two provisioned environments expected, found {before:?}"
    );
    // As on Lambda, provisioned concurrency serves the alias it is configured on.
    let r = nimbus.invoke("Warm:live", "{}");
    let body = r.json();
    assert_eq!(body["env"]["init_type"], "provisioned-concurrency");
    assert!(before.contains(&(body["pid"].as_u64().unwrap() as u32)));
    let id = r.header("x-amzn-requestid").unwrap().to_owned();
    let report = nimbus.wait_for_line(&format!("REPORT RequestId: {id}"), Duration::from_secs(5));
    assert!(!report.contains("Init Duration"), "{report}");
}

#[test]
fn sigterm_leaves_no_function_process_behind_not_even_a_grandchild() {
    let mut nimbus = Nimbus::start(ONE, &[]);
    let spawned = nimbus.invoke("Echo", r#"{"action":"spawn"}"#).json();
    let grandchild = spawned["child_pid"].as_u64().unwrap() as u32;
    let function_pid = spawned["pid"].as_u64().unwrap() as u32;
    assert!(alive(grandchild) && alive(function_pid));
    let status = nimbus.stop();
    assert!(status.success(), "nimbus exited with {status}");
    for pid in [function_pid, grandchild] {
        assert!(!alive(pid), "process {pid} outlived nimbus");
    }
}

#[test]
fn sigterm_waits_for_an_invocation_in_flight() {
    let mut nimbus = Nimbus::start(ONE, &[]);
    let endpoint = nimbus.endpoint.clone();
    let call = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .post(&format!("{endpoint}/2015-03-31/functions/Echo/invocations"))
            .send(r#"{"action":"sleep","ms":1500}"#)
            .unwrap();
        (
            resp.status().as_u16(),
            resp.body_mut().read_to_string().unwrap(),
        )
    });
    std::thread::sleep(Duration::from_millis(700));
    let pids = descendants(nimbus.pid());
    assert!(!pids.is_empty());
    assert!(nimbus.stop().success());
    let (status, body) = call.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"slept_ms\":1500"), "{body}");
    for pid in pids {
        assert!(!alive(pid), "process {pid} outlived nimbus");
    }
}

/// A `provided` runtime written by hand against the Runtime API, to check what the official
/// clients never do: a second response, an unknown request id, an unknown path.
const RAW_BOOTSTRAP: &str = r#"#!/usr/bin/env python3
import http.client, os
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
def call(method, path, body=None):
    c = http.client.HTTPConnection(api)
    c.request(method, "/2018-06-01" + path, body=body)
    r = c.getresponse()
    return r.status, r.read(), r
while True:
    status, event, r = call("GET", "/runtime/invocation/next")
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    deadline = int(r.getheader("Lambda-Runtime-Deadline-Ms"))
    unknown = call("POST", "/runtime/invocation/not-a-request/response", b"{}")[0]
    bogus = call("GET", "/runtime/bogus")[0]
    first = call("POST", "/runtime/invocation/%s/response" % rid, b'{"ok":true}')[0]
    second = call("POST", "/runtime/invocation/%s/response" % rid, b'{"again":true}')[0]
    late_error = call("POST", "/runtime/invocation/%s/error" % rid, b'not json')[0]
    late_init = call("POST", "/runtime/init/error", b'{}')[0]
    print("statuses unknown=%d bogus=%d first=%d second=%d late_error=%d late_init=%d deadline_ok=%s" % (unknown, bogus, first, second, late_error, late_init, deadline > 0), flush=True)
"#;

#[test]
fn runtime_api_answers_misuse_with_the_documented_status_codes() {
    let template = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Raw:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: raw
      Runtime: provided.al2
"#;
    let nimbus = Nimbus::start_with_files(template, &[], &[("raw/bootstrap", RAW_BOOTSTRAP, true)]);
    let r = nimbus.invoke("Raw", "{}");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, r#"{"ok":true}"#);
    let line = nimbus.wait_for_line("statuses ", Duration::from_secs(10));
    assert!(
        line.ends_with("statuses unknown=400 bogus=404 first=202 second=403 late_error=403 late_init=403 deadline_ok=True"),
        "{line}"
    );
}

#[test]
fn a_caller_that_disconnects_does_not_abandon_the_environment() {
    let nimbus = Nimbus::start(ONE, &[]);
    let pid = nimbus.invoke("Echo", "{}").json()["pid"].as_u64().unwrap();
    let impatient: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(300)))
        .build()
        .into();
    let gone = impatient
        .post(&format!(
            "{}/2015-03-31/functions/Echo/invocations",
            nimbus.endpoint
        ))
        .send(r#"{"action":"sleep","ms":800}"#);
    assert!(gone.is_err(), "the client should have timed out");
    // The invocation runs to completion and the environment goes back to the pool.
    std::thread::sleep(Duration::from_millis(1200));
    let again = nimbus.invoke("Echo", "{}").json();
    assert_eq!(
        again["pid"].as_u64(),
        Some(pid),
        "the environment should be warm and reused"
    );
}

#[test]
fn json_log_format_writes_one_object_per_line_to_console_and_file() {
    let nimbus = Nimbus::start(ONE, &["--log-format", "json"]);
    let r = nimbus.invoke("Echo", r#"{"action":"print","lines":["hello \"json\""]}"#);
    let id = r.header("x-amzn-requestid").unwrap().to_owned();
    let line = nimbus.wait_for_line("hello \\\"json\\\"", Duration::from_secs(5));
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(v["function"], "Echo");
    assert_eq!(v["requestId"], id.as_str());
    assert_eq!(v["type"], "function");
    assert_eq!(v["message"], "hello \"json\"");
    let report = nimbus.wait_for_line(&format!("REPORT RequestId: {id}"), Duration::from_secs(5));
    let v: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(v["type"], "platform");
    let file = std::fs::read_to_string(nimbus.state_dir().join("logs/Echo.log")).unwrap();
    for l in file.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
}

#[test]
fn an_init_that_never_finishes_times_out_after_ten_seconds_plus_the_function_timeout() {
    let template = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Hang:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Runtime: provided.al2023
      Timeout: 2
      Environment:
        Variables:
          TESTFN_INIT: hang
"#;
    let nimbus = Nimbus::start(template, &[]);
    let started = Instant::now();
    let r = nimbus.invoke("Hang", "{}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    let body = r.json();
    assert_eq!(body["errorType"], "Sandbox.Timedout");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("Task timed out after 2.00 seconds"),
        "{body}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        descendants(nimbus.pid()).is_empty(),
        "the hung environment must be killed"
    );
}
