//! Embedded Metric Format parsing on documented examples and malformed lines, and the
//! Prometheus exposition's names, labels and values.

use nimbus_telemetry::emf::{self, EmfMetric};
use nimbus_telemetry::{function, AsyncSnapshot, QueueSnapshot, RouteStatusLabels, Telemetry};

fn fixture(name: &str) -> String {
    // The directory `cargo test` gives at run time: a test binary reused from a checkout
    // elsewhere (a shared target directory) would carry that checkout's path.
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    let path = format!("{dir}/tests/fixtures/emf/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_specification_example_gives_its_metric() {
    let got = emf::parse(&fixture("spec_example.json")).unwrap().unwrap();
    assert_eq!(
        got,
        vec![EmfMetric {
            namespace: "lambda-function-metrics".into(),
            name: "time".into(),
            unit: "Milliseconds".into(),
            dimensions: vec![("functionVersion".into(), "$LATEST".into())],
            values: vec![100.0],
            timestamp_ms: 1574109732004,
        }]
    );
}

#[test]
fn every_dimension_set_gives_a_series_and_arrays_are_several_values() {
    let got = emf::parse(&fixture("multiple_dimension_sets.json"))
        .unwrap()
        .unwrap();
    let summary: Vec<(String, usize, Vec<f64>)> = got
        .iter()
        .map(|m| (m.name.clone(), m.dimensions.len(), m.values.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("Latency".into(), 1, vec![12.5, 7.5]),
            ("Latency".into(), 2, vec![12.5, 7.5]),
            ("Latency".into(), 0, vec![12.5, 7.5]),
            ("Orders".into(), 1, vec![1.0]),
            ("Orders".into(), 2, vec![1.0]),
            ("Orders".into(), 0, vec![1.0]),
        ]
    );
    let hr = emf::parse(&fixture("high_resolution_no_unit.json"))
        .unwrap()
        .unwrap();
    assert_eq!(hr[0].unit, "None");
}

#[test]
fn lines_that_are_not_emf_are_ignored_and_broken_emf_says_why() {
    for plain in ["hello", "{\"level\":\"info\"}", "[1,2]", "{not json"] {
        assert_eq!(emf::parse(plain), Ok(None), "{plain}");
    }
    let base = fixture("spec_example.json");
    let broken = [
        (
            base.replace("\"Timestamp\":1574109732004,", ""),
            "_aws.Timestamp",
        ),
        (
            base.replace("\"Namespace\":\"lambda-function-metrics\",", ""),
            "Namespace",
        ),
        (
            base.replace("\"Milliseconds\"", "\"Millis\""),
            "is not a CloudWatch unit",
        ),
        (
            base.replace("\"time\":100,", ""),
            "metric time is not a member",
        ),
        (
            base.replace("\"time\":100", "\"time\":\"100\""),
            "must be a number",
        ),
        (
            base.replace("\"functionVersion\":\"$LATEST\",", ""),
            "dimension functionVersion",
        ),
        (
            base.replace("\"StorageResolution\":60", "\"StorageResolution\":5"),
            "StorageResolution",
        ),
        (r#"{"_aws": 5}"#.to_owned(), "_aws must be an object"),
    ];
    for (line, why) in broken {
        let err = emf::parse(&line).expect_err(&line);
        assert!(err.0.contains(why), "{} does not mention {why}", err.0);
    }
}

#[test]
fn the_exposition_has_nimbus_names_bounded_labels_and_exact_values() {
    let t = Telemetry::new();
    let hello = function("hello");
    for _ in 0..3 {
        t.lambda.invocations.get_or_create(&hello).inc();
    }
    t.lambda.duration.get_or_create(&hello).observe(0.004);
    t.lambda.duration.get_or_create(&hello).observe(0.2);
    t.gateway
        .requests
        .get_or_create(&RouteStatusLabels {
            api: "Api".into(),
            route: "GET /hello".into(),
            status_class: nimbus_telemetry::status_class(429),
        })
        .inc();
    t.set_queues(&[QueueSnapshot {
        queue: "jobs".into(),
        visible: 4,
        in_flight: 1,
        delayed: 0,
        oldest_age_s: 2.5,
    }]);
    t.set_async_queues(&[AsyncSnapshot {
        function: "hello".into(),
        queued: 7,
        oldest_age_s: 61.0,
    }]);
    t.record_log_line("hello", &fixture("spec_example.json"));
    t.record_log_line("hello", "{\"_aws\": {}}");
    t.record_log_line("hello", "plain text");

    let text = t.encode();
    for line in [
        "# TYPE nimbus_lambda_invocations counter",
        "nimbus_lambda_invocations_total{function=\"hello\"} 3",
        "nimbus_lambda_duration_seconds_count{function=\"hello\"} 2",
        "nimbus_lambda_duration_seconds_bucket{le=\"0.005\",function=\"hello\"} 1",
        "nimbus_lambda_duration_seconds_bucket{le=\"0.25\",function=\"hello\"} 2",
        "nimbus_apigateway_requests_total{api=\"Api\",route=\"GET /hello\",status_class=\"4xx\"} 1",
        "nimbus_sqs_messages_visible{queue=\"jobs\"} 4",
        "nimbus_sqs_oldest_message_age_seconds{queue=\"jobs\"} 2.5",
        "nimbus_lambda_async_events_queued{function=\"hello\"} 7",
        "nimbus_emf_observations_total{function=\"hello\",namespace=\"lambda-function-metrics\",metric=\"time\",unit=\"Milliseconds\",dimensions=\"functionVersion=$LATEST\"} 1",
        "nimbus_emf_last{function=\"hello\",namespace=\"lambda-function-metrics\",metric=\"time\",unit=\"Milliseconds\",dimensions=\"functionVersion=$LATEST\"} 100.0",
        "nimbus_emf_invalid_lines_total{function=\"hello\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    assert!(!text.contains("989ffbf8"), "a request id became a label");

    // A queue deleted since the last scrape disappears.
    t.set_queues(&[]);
    assert!(!t.encode().contains("queue=\"jobs\""));
}

#[test]
fn emf_series_are_bounded() {
    let t = Telemetry::new();
    for i in 0..(nimbus_telemetry::MAX_EMF_SERIES + 50) {
        let line = format!(
            r#"{{"_aws":{{"Timestamp":1,"CloudWatchMetrics":[{{"Namespace":"n","Dimensions":[["RequestId"]],"Metrics":[{{"Name":"m"}}]}}]}},"RequestId":"r{i}","m":1}}"#
        );
        t.record_log_line("f", &line);
    }
    let series = t
        .encode()
        .lines()
        .filter(|l| l.starts_with("nimbus_emf_observations_total{"))
        .count();
    assert_eq!(series, nimbus_telemetry::MAX_EMF_SERIES);
}
