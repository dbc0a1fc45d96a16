use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;

use crate::harness::Nimbus;

pub const TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: fn
    Handler: bootstrap
    Runtime: provided.al2023
    Timeout: 2
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      MemorySize: 256
      Environment:
        Variables:
          CUSTOM: from-template
  Limited:
    Type: AWS::Serverless::Function
    Properties:
      ReservedConcurrentExecutions: 1
  Disabled:
    Type: AWS::Serverless::Function
    Properties:
      ReservedConcurrentExecutions: 0
  BrokenInit:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          TESTFN_INIT: fail
  NoBootstrap:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: nowhere
"#;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn invoke_returns_the_result_with_the_lambda_context_and_environment() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let client_context =
        base64::engine::general_purpose::STANDARD.encode(r#"{"custom":{"k":"v"},"env":{"e":"1"}}"#);
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let before = now_ms();
    let r = nimbus.invoke_with(
        "Echo",
        r#"{"action":"echo","n":1}"#,
        &[
            ("X-Amz-Client-Context", &client_context),
            ("X-Amzn-Trace-Id", trace),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-amz-executed-version"), Some("$LATEST"));
    assert_eq!(r.header("x-amz-function-error"), None);
    let body = r.json();
    assert_eq!(body["event"]["n"], 1);
    assert_eq!(body["request_id"].as_str(), r.header("x-amzn-requestid"));
    let deadline = body["deadline_ms"].as_u64().unwrap();
    assert!(
        deadline > before && deadline <= now_ms() + 2_000,
        "deadline {deadline} is not ~2 s ahead"
    );
    assert_eq!(
        body["arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:Echo"
    );
    // Same trace, same sampling; the parent is now the function's own segment, as on Lambda.
    let seen = body["trace_id"].as_str().unwrap();
    assert!(
        seen.starts_with("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=")
            && seen.ends_with(";Sampled=1")
            && !seen.contains("53995c3f42cd8ad8"),
        "{seen}"
    );
    assert_eq!(body["client_context"]["custom"]["k"], "v");
    assert_eq!(body["env"]["name"], "Echo");
    assert_eq!(body["env"]["memory"], "256");
    assert_eq!(body["env"]["version"], "$LATEST");
    assert_eq!(body["env"]["region"], "us-east-1");
    assert_eq!(
        body["env"]["endpoint"].as_str(),
        Some(nimbus.endpoint.as_str())
    );
    assert_eq!(body["env"]["log_group"], "/aws/lambda/Echo");
    assert_eq!(body["env"]["init_type"], "on-demand");
    assert_eq!(body["env"]["custom"], "from-template");
}

#[test]
fn warm_environment_is_reused_and_only_the_cold_start_reports_init_duration() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let first = nimbus.invoke("Echo", "{}").json();
    let second = nimbus.invoke("Echo", "{}").json();
    assert_eq!(
        first["pid"], second["pid"],
        "the second invoke should reuse the warm environment"
    );
    let id1 = first["request_id"].as_str().unwrap();
    let id2 = second["request_id"].as_str().unwrap();
    let report1 = nimbus.wait_for_line(&format!("REPORT RequestId: {id1}"), Duration::from_secs(5));
    let report2 = nimbus.wait_for_line(&format!("REPORT RequestId: {id2}"), Duration::from_secs(5));
    assert!(
        report1.starts_with("Echo | REPORT RequestId: "),
        "{report1}"
    );
    assert!(report1.contains("\tInit Duration: "), "{report1}");
    assert!(!report2.contains("Init Duration"), "{report2}");
    assert!(
        report2.contains("\tMemory Size: 256 MB\tMax Memory Used: "),
        "{report2}"
    );
    let lines = nimbus.lines();
    let start = lines
        .iter()
        .position(|l| l == &format!("Echo | START RequestId: {id2} Version: $LATEST"));
    let end = lines
        .iter()
        .position(|l| l == &format!("Echo | END RequestId: {id2}"));
    assert!(
        start.is_some() && end.is_some() && start < end,
        "START/END missing or out of order"
    );
    // The log file is written by its own thread, after the console line: read it until the
    // second REPORT has reached it (bounded).
    let path = nimbus.state_dir().join("logs/Echo.log");
    let want = format!("REPORT RequestId: {id2}\tDuration: ");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let file = loop {
        let file = std::fs::read_to_string(&path).unwrap_or_default();
        if file.contains(&want) || std::time::Instant::now() > deadline {
            break file;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(file.contains(&format!("START RequestId: {id1} Version: $LATEST")));
    assert!(file.contains(&want), "{file}");
}

#[test]
fn function_errors_and_panics_are_200_with_unhandled() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let r = nimbus.invoke("Echo", r#"{"action":"error"}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(r.json()["errorMessage"], "something went wrong");

    let r = nimbus.invoke("Echo", r#"{"action":"panic"}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    assert!(
        r.json()["errorMessage"]
            .as_str()
            .unwrap()
            .contains("kaboom"),
        "{}",
        r.body
    );
}

#[test]
fn a_timed_out_invocation_gets_sandbox_timedout_and_its_environment_is_replaced() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let first = nimbus.invoke("Echo", "{}").json();
    let pid = first["pid"].as_u64().unwrap() as u32;
    let tmpdir = std::path::PathBuf::from(first["env"]["tmpdir"].as_str().unwrap());
    assert!(tmpdir.is_dir(), "each environment has its own TMPDIR");
    let r = nimbus.invoke("Echo", r#"{"action":"sleep","ms":10000}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    let body = r.json();
    assert_eq!(body["errorType"], "Sandbox.Timedout");
    let message = body["errorMessage"].as_str().unwrap();
    let id = r.header("x-amzn-requestid").unwrap();
    assert!(
        message.ends_with(&format!(" {id} Task timed out after 2.00 seconds")),
        "{message}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !crate::harness::alive(pid),
        "the timed-out environment must be killed"
    );
    let next = nimbus.invoke("Echo", "{}").json();
    assert_ne!(next["pid"].as_u64(), Some(u64::from(pid)));
    let report = nimbus.wait_for_line(&format!("REPORT RequestId: {id}"), Duration::from_secs(5));
    assert!(report.ends_with("Status: timeout\t"), "{report}");
}

#[test]
fn a_process_that_dies_mid_invoke_gives_runtime_exit_error() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let r = nimbus.invoke("Echo", r#"{"action":"exit","code":7}"#);
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    let body = r.json();
    assert_eq!(body["errorType"], "Runtime.ExitError");
    let id = r.header("x-amzn-requestid").unwrap();
    assert_eq!(
        body["errorMessage"],
        format!("RequestId: {id} Error: Runtime exited with error: exit status 7")
    );
    // The line the function printed before exiting is in its log, inside the invocation, and
    // the invocation still gets its END and REPORT lines.
    nimbus.wait_for_line("Echo | exiting on purpose", Duration::from_secs(5));
    nimbus.wait_for_line(
        &format!("Echo | RequestId: {id} Error: Runtime exited with error: exit status 7"),
        Duration::from_secs(5),
    );
    nimbus.wait_for_line(
        &format!("Echo | END RequestId: {id}"),
        Duration::from_secs(5),
    );
    let report = nimbus.wait_for_line(
        &format!("Echo | REPORT RequestId: {id}"),
        Duration::from_secs(5),
    );
    assert!(report.ends_with("Status: error\t"), "{report}");
    assert_eq!(nimbus.invoke("Echo", "{}").status, 200);
}

#[test]
fn a_failed_init_gives_runtime_exit_error_and_other_functions_keep_serving() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let r = nimbus.invoke("BrokenInit", "{}");
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    let body = r.json();
    assert_eq!(body["errorType"], "Runtime.ExitError");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("Runtime exited with error: exit status 3"),
        "{body}"
    );
    nimbus.wait_for_line(
        "BrokenInit | init failed on purpose",
        Duration::from_secs(5),
    );

    let r = nimbus.invoke("NoBootstrap", "{}");
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    let body = r.json();
    assert_eq!(body["errorType"], "Runtime.InvalidEntrypoint");
    assert!(
        body["errorMessage"].as_str().unwrap().contains("CodeUri"),
        "{body}"
    );

    assert_eq!(nimbus.invoke("Echo", "{}").status, 200);
}

#[test]
fn an_oversized_response_gives_function_response_size_too_large() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let r = nimbus.invoke("Echo", r#"{"action":"big","bytes":7000000}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(r.json()["errorType"], "Function.ResponseSizeTooLarge");
    assert_eq!(nimbus.invoke("Echo", "{}").status, 200);
}

#[test]
fn a_function_over_its_memory_size_is_killed_with_runtime_out_of_memory() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    // Echo has MemorySize 256.
    let ok = nimbus.invoke("Echo", r#"{"action":"alloc","mb":64,"hold_ms":200}"#);
    assert_eq!(ok.header("x-amz-function-error"), None, "{}", ok.body);
    let r = nimbus.invoke("Echo", r#"{"action":"alloc","mb":400,"hold_ms":2000}"#);
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    let body = r.json();
    assert_eq!(body["errorType"], "Runtime.OutOfMemory");
    let id = r.header("x-amzn-requestid").unwrap();
    assert_eq!(
        body["errorMessage"],
        format!("RequestId: {id} Error: Runtime exited with error: signal: killed")
    );
    assert_eq!(nimbus.invoke("Echo", "{}").status, 200);
}

#[test]
fn reserved_concurrency_throttles_with_429_and_the_reason() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let r = nimbus.invoke("Disabled", "{}");
    assert_eq!(r.status, 429);
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("TooManyRequestsException")
    );
    assert_eq!(
        r.json()["Reason"],
        "ReservedFunctionConcurrentInvocationLimitExceeded"
    );
    assert!(r.header("retry-after").is_some());

    std::thread::scope(|s| {
        let busy = s.spawn(|| nimbus.invoke("Limited", r#"{"action":"sleep","ms":1500}"#));
        std::thread::sleep(Duration::from_millis(500));
        let r = nimbus.invoke("Limited", "{}");
        assert_eq!(r.status, 429, "{}", r.body);
        assert_eq!(
            r.json()["Reason"],
            "ReservedFunctionConcurrentInvocationLimitExceeded"
        );
        assert_eq!(busy.join().unwrap().status, 200);
    });
    assert_eq!(nimbus.invoke("Limited", "{}").status, 200);
}

#[test]
fn account_concurrency_limit_throttles_unreserved_functions() {
    let nimbus = Nimbus::start(TEMPLATE, &["--account-concurrency", "2"]);
    std::thread::scope(|s| {
        // Limited reserves 1 of the 2, so Echo has one slot.
        let busy = s.spawn(|| nimbus.invoke("Echo", r#"{"action":"sleep","ms":1500}"#));
        std::thread::sleep(Duration::from_millis(500));
        let r = nimbus.invoke("Echo", "{}");
        assert_eq!(r.status, 429);
        assert_eq!(r.json()["Reason"], "ConcurrentInvocationLimitExceeded");
        assert_eq!(nimbus.invoke("Limited", "{}").status, 200);
        assert_eq!(busy.join().unwrap().status, 200);
    });
}

#[test]
fn bad_requests_get_the_invoke_api_error_shapes() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let r = nimbus.invoke("Nope", "{}");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
    assert_eq!(
        r.json()["message"],
        "Function not found: arn:aws:lambda:us-east-1:123456789012:function:Nope"
    );

    let r = nimbus.invoke("Echo", "{not json");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("InvalidRequestContentException")
    );
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("Could not parse request body into json"));

    let big = format!("\"{}\"", "x".repeat(6 * 1024 * 1024 + 1));
    let r = nimbus.invoke("Echo", &big);
    assert_eq!(r.status, 413);
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("RequestTooLargeException")
    );

    let r = nimbus.invoke("Echo:live", "{}");
    assert_eq!(r.status, 404);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .ends_with("function:Echo:live"));

    let r = nimbus.invoke_with("Echo", "{}", &[("X-Amz-Client-Context", "%%%")]);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("InvalidRequestContentException")
    );

    let r = nimbus.invoke_with("Echo", "{}", &[("X-Amz-Invocation-Type", "Sometimes")]);
    assert_eq!(r.status, 400);
}

#[test]
fn dry_run_event_and_log_tail_invocation_types() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let r = nimbus.invoke_with("Echo", "{}", &[("X-Amz-Invocation-Type", "DryRun")]);
    assert_eq!(r.status, 204);

    let r = nimbus.invoke_with(
        "Echo",
        r#"{"action":"print","lines":["async-marker"]}"#,
        &[("X-Amz-Invocation-Type", "Event")],
    );
    assert_eq!(r.status, 202);
    let id = r.header("x-amzn-requestid").unwrap();
    // The 202's request id is the invocation's own.
    nimbus.wait_for_line(
        &format!("Echo | START RequestId: {id}"),
        Duration::from_secs(10),
    );
    nimbus.wait_for_line("Echo | async-marker", Duration::from_secs(10));

    let r = nimbus.invoke_with(
        "Echo",
        r#"{"action":"print","lines":["tail-one","tail-two"]}"#,
        &[("X-Amz-Log-Type", "Tail")],
    );
    assert_eq!(r.status, 200);
    let id = r.header("x-amzn-requestid").unwrap().to_owned();
    let log = base64::engine::general_purpose::STANDARD
        .decode(r.header("x-amz-log-result").expect("X-Amz-Log-Result"))
        .unwrap();
    let log = String::from_utf8(log).unwrap();
    let expected_start = format!("START RequestId: {id} Version: $LATEST\ntail-one\ntail-two\nEND RequestId: {id}\nREPORT RequestId: {id}\t");
    assert!(log.starts_with(&expected_start), "{log}");
}

#[test]
fn list_and_get_function_describe_the_template_functions() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let r = nimbus.get("/2015-03-31/functions/");
    assert_eq!(r.status, 200);
    let names: Vec<String> = r.json()["Functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["FunctionName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["BrokenInit", "Disabled", "Echo", "Limited", "NoBootstrap"]
    );
    let r = nimbus.get("/2015-03-31/functions/Limited");
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["Configuration"]["Timeout"], 2);
    assert_eq!(body["Configuration"]["Runtime"], "provided.al2023");
    assert_eq!(body["Concurrency"]["ReservedConcurrentExecutions"], 1);
    assert_eq!(nimbus.get("/2015-03-31/functions/Nope").status, 404);
}
