use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use serde_json::json;

use super::*;
use crate::config::vars_from;

const P: RetryPolicy = RetryPolicy {
    min_wait_ms: 3000,
    max_wait_ms: 8000,
    max_attempts: 5,
    attempt_timeout_ms: 5000,
};

fn event(detail: Value) -> Value {
    json!({
        "version": "0", "id": "ev-1", "detail-type": "order-notify", "source": "orders.notify",
        "account": "123456789012", "time": "2024-01-02T03:04:05Z", "region": "us-east-1",
        "resources": [], "detail": detail
    })
}

fn order_event(id: &str) -> Value {
    event(json!({"order_id": format!("o-{id}"), "meta_data": {"correlation_id": id}}))
}

fn record(message_id: &str, body: &str) -> Value {
    json!({
        "messageId": message_id, "receiptHandle": "rh", "body": body, "md5OfBody": "x",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "s",
                       "ApproximateFirstReceiveTimestamp": "1"},
        "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"
    })
}

// ---- the order and the two input shapes ----

#[test]
fn the_order_loses_meta_data_and_keeps_its_correlation_id() {
    let o = order_from_detail(
        json!({"order_id":"o-1","email":"a@example.com","meta_data":{"correlation_id":"c-1","x":1}}),
        Some("ev-1"),
    )
    .unwrap();
    assert_eq!(o.correlation_id, "c-1");
    assert_eq!(
        Value::Object(o.body),
        json!({"order_id":"o-1","email":"a@example.com"})
    );
    // Put on the bus by something other than Notify: the event id stands in.
    let o = order_from_detail(json!({"order_id":"o-2"}), Some("ev-2")).unwrap();
    assert_eq!(o.correlation_id, "ev-2");
    assert_eq!(
        order_from_detail(
            json!({"order_id":"o-3","meta_data":{"correlation_id":""}}),
            None
        ),
        Err("the order has no meta_data.correlation_id and the event no id".into())
    );
    assert_eq!(
        order_from_detail(json!([1]), Some("ev")),
        Err("the event's detail must be the order (a JSON object), got an array".into())
    );
}

#[test]
fn an_eventbridge_event_is_one_order() {
    let input = parse_input(order_event("c-1")).unwrap();
    let Input::Event(o) = input else {
        panic!("{input:?}")
    };
    assert_eq!(o.correlation_id, "c-1");
    assert_eq!(Value::Object(o.body), json!({"order_id":"o-c-1"}));

    let e = parse_input(json!({"hello": "world"})).unwrap_err();
    assert_eq!(
        e,
        "the input is neither an SQS event (no Records) nor an EventBridge event: missing field `detail-type`"
    );
}

#[test]
fn an_sqs_event_is_a_batch_whose_bad_records_carry_their_reason() {
    let good = order_event("c-1").to_string();
    let input = json!({"Records": [
        record("m-1", &good),
        record("m-2", "not json"),
        record("m-3", r#"{"detail":{}}"#),
        record("m-4", &event(json!("a string")).to_string()),
    ]});
    let Input::Batch(records) = parse_input(input).unwrap() else {
        panic!()
    };
    let ids: Vec<&str> = records.iter().map(|r| r.message_id.as_str()).collect();
    assert_eq!(ids, ["m-1", "m-2", "m-3", "m-4"]);
    assert_eq!(records[0].order.as_ref().unwrap().correlation_id, "c-1");
    assert_eq!(
        records[1].order,
        Err("the record's body is not JSON: expected ident at line 1 column 2".into())
    );
    assert_eq!(
        records[2].order,
        Err("the record's body is not an EventBridge event: missing field `detail-type`".into())
    );
    assert_eq!(
        records[3].order,
        Err("the event's detail must be the order (a JSON object), got a string".into())
    );
}

#[test]
fn a_record_without_a_message_id_fails_the_whole_batch() {
    let mut r = record("m-1", "{}");
    r.as_object_mut().unwrap().remove("messageId");
    assert_eq!(
        parse_input(json!({"Records": [r]})),
        Err("Records[0] has no messageId, so it cannot be reported as a batch item failure".into())
    );
    assert_eq!(
        parse_input(json!({"Records": {}})),
        Err("the SQS event's Records must be an array, got an object".into())
    );
}

// ---- the retry policy ----

#[test]
fn which_answers_are_retried() {
    for s in [200, 201, 204] {
        assert_eq!(classify(&Attempt::Status(s)), Verdict::Delivered, "{s}");
    }
    for s in [429, 500, 502, 503, 504, 599] {
        assert_eq!(classify(&Attempt::Status(s)), Verdict::Retry, "{s}");
    }
    for s in [301, 400, 401, 403, 404, 413, 422] {
        assert_eq!(classify(&Attempt::Status(s)), Verdict::Permanent, "{s}");
    }
    assert_eq!(
        classify(&Attempt::TimedOut { after_ms: 5000 }),
        Verdict::Retry
    );
    assert_eq!(
        classify(&Attempt::Failed("connection refused".into())),
        Verdict::Retry
    );
}

#[test]
fn the_wait_is_uniform_over_min_to_max_inclusive() {
    assert_eq!(wait_ms(&P, 0.0), 3000);
    assert_eq!(wait_ms(&P, 0.5), 5500);
    assert_eq!(wait_ms(&P, 0.999_999_99), 8000);
    assert_eq!(wait_ms(&P, 1.0), 8000);
    let fixed = RetryPolicy {
        min_wait_ms: 10,
        max_wait_ms: 10,
        ..P
    };
    assert_eq!(wait_ms(&fixed, 0.7), 10);
}

#[test]
fn next_step_waits_gives_up_on_permanent_answers_and_after_the_last_attempt() {
    let s = |n, a: Attempt| next_step(&P, n, &a, 0.0, 0, None);
    assert_eq!(s(1, Attempt::Status(200)), Step::Delivered);
    assert_eq!(s(1, Attempt::Status(503)), Step::Wait(3000));
    assert_eq!(s(4, Attempt::Status(429)), Step::Wait(3000));
    assert_eq!(
        s(5, Attempt::Status(429)),
        Step::GiveUp("5 attempt(s) made, the most allowed".into())
    );
    assert_eq!(
        s(1, Attempt::Status(403)),
        Step::GiveUp("HTTP 403 is not retried".into())
    );
    // Delivered on the last attempt is delivered.
    assert_eq!(s(5, Attempt::Status(200)), Step::Delivered);
}

#[test]
fn next_step_gives_up_when_another_attempt_would_not_fit_before_the_deadline() {
    // 3000 wait + 5000 attempt + 500 margin = 8500 needed.
    let at = |now| next_step(&P, 1, &Attempt::Status(500), 0.0, now, Some(10_000));
    assert_eq!(at(1500), Step::Wait(3000));
    assert_eq!(
        at(1501),
        Step::GiveUp(
            "no time for another attempt before the function's deadline (8499 ms left)".into()
        )
    );
    assert_eq!(attempt_budget_ms(&P, 0, Some(10_000)), 5000);
    assert_eq!(attempt_budget_ms(&P, 8000, Some(10_000)), 1500);
    assert_eq!(attempt_budget_ms(&P, 9900, Some(10_000)), 1);
    assert_eq!(attempt_budget_ms(&P, 9900, None), 5000);
}

#[test]
fn configuration_defaults_and_checks() {
    let base = [
        ("SLOW_API_URL", "http://127.0.0.1:3001/slow"),
        ("SLOW_API_KEY", "k-0123456789abcdefghij"),
    ];
    let c = Config::from_vars(&vars_from(&base)).unwrap();
    assert_eq!(c.retry, RetryPolicy::default());
    assert_eq!(c.url, "http://127.0.0.1:3001/slow");
    assert_eq!(format!("{:?}", c.api_key), "Secret(***)");

    let mut vars = base.to_vec();
    vars.extend([
        ("DELIVER_RETRY_MIN_MS", "10"),
        ("DELIVER_RETRY_MAX_MS", "20"),
        ("DELIVER_MAX_ATTEMPTS", "2"),
        ("DELIVER_ATTEMPT_TIMEOUT_MS", "300"),
    ]);
    assert_eq!(
        Config::from_vars(&vars_from(&vars)).unwrap().retry,
        RetryPolicy {
            min_wait_ms: 10,
            max_wait_ms: 20,
            max_attempts: 2,
            attempt_timeout_ms: 300
        }
    );

    let err = |extra: &[(&str, &str)]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        Config::from_vars(&vars_from(&v)).unwrap_err().to_string()
    };
    assert_eq!(
        err(&[("DELIVER_RETRY_MIN_MS", "9000")]),
        "DELIVER_RETRY_MIN_MS (9000) is more than DELIVER_RETRY_MAX_MS (8000)"
    );
    assert_eq!(
        err(&[("DELIVER_MAX_ATTEMPTS", "0")]),
        "DELIVER_MAX_ATTEMPTS must be at least 1, got 0"
    );
    assert_eq!(
        err(&[("SLOW_API_URL", "slow.example.com")]),
        "SLOW_API_URL must be an http:// or https:// URL, got \"slow.example.com\""
    );
    assert_eq!(
        Config::from_vars(&vars_from(&base[..1]))
            .unwrap_err()
            .to_string(),
        "SLOW_API_KEY is not set"
    );
}

#[test]
fn log_lines_have_the_documented_shapes() {
    assert_eq!(
        attempt_line("c-1", 2, &Attempt::Status(503), 7),
        r#"{"event":"attempt","correlation_id":"c-1","attempt":2,"status":503,"error":"HTTP 503","ts_ms":7}"#
    );
    assert_eq!(
        attempt_line("c-1", 1, &Attempt::Status(200), 7),
        r#"{"event":"attempt","correlation_id":"c-1","attempt":1,"status":200,"error":null,"ts_ms":7}"#
    );
    assert_eq!(
        attempt_line("c-1", 3, &Attempt::TimedOut { after_ms: 5000 }, 7),
        r#"{"event":"attempt","correlation_id":"c-1","attempt":3,"status":null,"error":"no answer within 5000 ms","ts_ms":7}"#
    );
    assert_eq!(
        delivered_line("c-1", 3, 7),
        r#"{"event":"delivered","correlation_id":"c-1","attempts":3,"ts_ms":7}"#
    );
    assert_eq!(
        gave_up_line("c-1", 5, "5 attempt(s) made, the most allowed", 7),
        r#"{"event":"gave_up","correlation_id":"c-1","attempts":5,"reason":"5 attempt(s) made, the most allowed","ts_ms":7}"#
    );
    assert_eq!(
        bad_record_line("m-2", "the record has no body", 7),
        r#"{"event":"bad_record","message_id":"m-2","error":"the record has no body","ts_ms":7}"#
    );
}

#[test]
fn describe_walks_the_error_sources_without_repeating_them() {
    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }
    let e = E(
        "error sending request",
        Some(Box::new(E(
            "client error (Connect)",
            Some(Box::new(E("Connection refused (os error 111)", None))),
        ))),
    );
    assert_eq!(
        describe(&e),
        "error sending request: client error (Connect): Connection refused (os error 111)"
    );
}

// ---- the delivery loop, with a scripted world ----

/// Answers each correlation id's posts from a script (then 200s); time moves only when a
/// post takes time or the loop sleeps.
struct World {
    now: RefCell<u64>,
    scripts: RefCell<HashMap<String, VecDeque<(Attempt, u64)>>>,
    posts: RefCell<Vec<(String, Value, u64)>>,
    sleeps: RefCell<Vec<u64>>,
    randoms: RefCell<VecDeque<f64>>,
    lines: RefCell<Vec<Value>>,
}

impl World {
    fn new(scripts: &[(&str, Vec<(Attempt, u64)>)]) -> Self {
        World {
            now: RefCell::new(1_000_000),
            scripts: RefCell::new(
                scripts
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.iter().cloned().collect()))
                    .collect(),
            ),
            posts: RefCell::default(),
            sleeps: RefCell::default(),
            randoms: RefCell::new(VecDeque::from([0.0, 1.0, 0.5])),
            lines: RefCell::default(),
        }
    }

    fn events(&self) -> Vec<String> {
        self.lines
            .borrow()
            .iter()
            .map(|l| match l["event"].as_str().unwrap() {
                "attempt" => format!("attempt {} {}", l["attempt"], l["status"]),
                other => other.to_owned(),
            })
            .collect()
    }
}

impl Effects for World {
    async fn post(&self, order: &Order, timeout_ms: u64) -> Attempt {
        let next = self
            .scripts
            .borrow_mut()
            .get_mut(&order.correlation_id)
            .and_then(VecDeque::pop_front);
        let (a, took) = next.unwrap_or((Attempt::Status(200), 10));
        self.posts.borrow_mut().push((
            order.correlation_id.clone(),
            Value::Object(order.body.clone()),
            timeout_ms,
        ));
        *self.now.borrow_mut() += took.min(timeout_ms);
        a
    }

    async fn sleep(&self, ms: u64) {
        self.sleeps.borrow_mut().push(ms);
        *self.now.borrow_mut() += ms;
    }

    fn now_ms(&self) -> u64 {
        *self.now.borrow()
    }

    fn random(&self) -> f64 {
        let mut r = self.randoms.borrow_mut();
        let u = r.pop_front().unwrap_or(0.0);
        r.push_back(u);
        u
    }

    fn log(&self, line: String) {
        self.lines
            .borrow_mut()
            .push(serde_json::from_str(&line).expect("a log line is JSON"));
    }
}

fn run<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn an_event_is_retried_with_random_waits_until_delivered() {
    let w = World::new(&[(
        "c-1",
        vec![
            (Attempt::Status(503), 50),
            (Attempt::TimedOut { after_ms: 5000 }, 5000),
            (Attempt::Failed("connection refused".into()), 1),
            (Attempt::Status(429), 5),
        ],
    )]);
    let out = run(handle(&w, &P, order_event("c-1"), None)).unwrap();
    assert_eq!(out, json!({"correlation_id": "c-1", "attempts": 5}));
    assert_eq!(
        w.events(),
        [
            "attempt 1 503",
            "attempt 2 null",
            "attempt 3 null",
            "attempt 4 429",
            "attempt 5 200",
            "delivered"
        ]
    );
    // The random source picks each wait in [3000, 8000].
    assert_eq!(*w.sleeps.borrow(), [3000, 8000, 5500, 3000]);
    // What was posted: the order without meta_data, each time.
    for (id, body, timeout) in w.posts.borrow().iter() {
        assert_eq!(
            (id.as_str(), body, *timeout),
            ("c-1", &json!({"order_id":"o-c-1"}), 5000)
        );
    }
    let lines = w.lines.borrow();
    assert_eq!(lines[1]["error"], "no answer within 5000 ms");
    assert_eq!(lines[2]["error"], "connection refused");
    assert_eq!(lines[5]["attempts"], 5);
}

#[test]
fn an_event_that_is_not_delivered_fails_the_invocation() {
    let w = World::new(&[("c-1", vec![(Attempt::Status(500), 1); 5])]);
    let e = run(handle(&w, &P, order_event("c-1"), None)).unwrap_err();
    assert_eq!(
        e,
        DeliverError {
            error_type: "DeliveryFailed",
            message: "gave up delivering order c-1 after 5 attempt(s): 5 attempt(s) made, the most allowed".into()
        }
    );
    assert_eq!(w.posts.borrow().len(), 5);
    assert_eq!(w.sleeps.borrow().len(), 4);
    assert_eq!(w.events().last().unwrap(), "gave_up");

    // A 4xx other than 429 is not retried.
    let w = World::new(&[("c-1", vec![(Attempt::Status(403), 1)])]);
    let e = run(handle(&w, &P, order_event("c-1"), None)).unwrap_err();
    assert_eq!(
        e.message,
        "gave up delivering order c-1 after 1 attempt(s): HTTP 403 is not retried"
    );
    assert_eq!(w.events(), ["attempt 1 403", "gave_up"]);
    let d: Diagnostic = e.into();
    assert_eq!(d.error_type, "DeliveryFailed");
}

#[test]
fn the_loop_stops_before_the_functions_deadline() {
    let w = World::new(&[("c-1", vec![(Attempt::Status(500), 100); 5])]);
    // 20 s left: attempt (100 ms), wait 3000; attempt, wait 8000; attempt, then 8.5+ s needed
    // with about 8.7 s left... and the random 0.5 wait (5500) does not fit.
    let deadline = w.now_ms() + 20_000;
    let e = run(handle(&w, &P, order_event("c-1"), Some(deadline))).unwrap_err();
    assert_eq!(
        e.message,
        "gave up delivering order c-1 after 3 attempt(s): no time for another attempt before the function's deadline (8700 ms left)"
    );
    assert!(w.now_ms() < deadline);
}

#[test]
fn a_batch_reports_the_records_that_were_not_delivered() {
    let w = World::new(&[
        ("c-2", vec![(Attempt::Status(400), 1)]),
        (
            "c-3",
            vec![(Attempt::Status(502), 1), (Attempt::Status(200), 1)],
        ),
    ]);
    let input = json!({"Records": [
        record("m-1", &order_event("c-1").to_string()),
        record("m-2", &order_event("c-2").to_string()),
        record("m-3", &order_event("c-3").to_string()),
        record("m-4", "{"),
    ]});
    let out = run(handle(&w, &P, input, None)).unwrap();
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-4"}]})
    );
    let lines = w.lines.borrow();
    let bad = lines.iter().find(|l| l["event"] == "bad_record").unwrap();
    assert_eq!(bad["message_id"], "m-4");
    assert_eq!(
        bad["error"],
        "the record's body is not JSON: EOF while parsing an object at line 1 column 1"
    );
    let outcome = |id: &str| {
        lines
            .iter()
            .find(|l| l["correlation_id"] == id && l["event"] != "attempt")
            .unwrap()["event"]
            .clone()
    };
    assert_eq!(outcome("c-1"), "delivered");
    assert_eq!(outcome("c-2"), "gave_up");
    assert_eq!(outcome("c-3"), "delivered");
}

#[test]
fn a_batch_where_all_are_delivered_reports_no_failures() {
    let w = World::new(&[]);
    let input = json!({"Records": [record("m-1", &order_event("c-1").to_string())]});
    assert_eq!(
        run(handle(&w, &P, input, None)).unwrap(),
        json!({"batchItemFailures": []})
    );
}

#[test]
fn an_unusable_invocation_is_an_error_with_a_log_line() {
    let w = World::new(&[]);
    let e = run(handle(&w, &P, json!([1, 2]), None)).unwrap_err();
    assert_eq!(e.error_type, "InvalidInput");
    assert!(
        e.message.starts_with(
            "the input is neither an SQS event (no Records) nor an EventBridge event: "
        ),
        "{}",
        e.message
    );
    assert_eq!(w.events(), ["bad_input"]);
    assert!(w.posts.borrow().is_empty());
}
