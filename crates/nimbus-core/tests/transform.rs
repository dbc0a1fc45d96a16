//! EventBridge target input: the examples of the user guide's "Amazon EventBridge input
//! transformation" page and the InputTransformer API reference, outputs recorded from AWS, and
//! the settings PutTargets rejects.

use nimbus_core::transform::{
    JsonPath, JsonPathError, TargetInput, TransformContext, TransformError, Transformer,
};
use serde_json::{json, Map, Value};

/// The user guide's sample EC2 event.
const EC2_EVENT: &str = r#"{
  "version": "0",
  "id": "7bf73129-1428-4cd3-a780-95db273d1602",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "2015-11-11T21:29:54Z",
  "region": "us-east-1",
  "resources": [
    "arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"
  ],
  "detail": {
    "instance-id": "i-0123456789",
    "state": "RUNNING"
  }
}"#;

/// The user guide's input paths for the EC2 event.
const EC2_PATHS: &str = r#"{
  "timestamp" : "$.time",
  "instance" : "$.detail.instance-id",
  "state" : "$.detail.state",
  "resource" : "$.resources[0]"
}"#;

const CTX: TransformContext<'static> = TransformContext {
    rule_arn: "arn:aws:events:us-east-2:123456789012:rule/example",
    rule_name: "example",
    ingestion_time: "2015-11-11T21:29:55Z",
};

fn ec2_event() -> Value {
    serde_json::from_str(EC2_EVENT).unwrap()
}

fn paths(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        other => panic!("bad test paths {text}: {other:?}"),
    }
}

fn transformer(paths_json: &str, template: &str) -> TargetInput {
    let map = paths(paths_json);
    TargetInput::parse(None, None, Some((&map, template)))
        .unwrap_or_else(|e| panic!("template {template} should parse: {e}"))
}

fn transformer_err(paths_json: &str, template: &str) -> TransformError {
    let map = paths(paths_json);
    match TargetInput::parse(None, None, Some((&map, template))) {
        Ok(t) => panic!("template {template} should be rejected, got {t:?}"),
        Err(e) => e,
    }
}

/// The EC2 sample's output for `template`.
fn ec2(template: &str) -> String {
    transformer(EC2_PATHS, template).apply(&ec2_event(), &CTX)
}

fn as_json(payload: &str) -> Value {
    serde_json::from_str(payload)
        .unwrap_or_else(|e| panic!("payload should be valid JSON: {e}\n{payload}"))
}

fn path_err(text: &str) -> JsonPathError {
    match JsonPath::parse(text) {
        Ok(p) => panic!("path {text} should be rejected, got {p:?}"),
        Err(e) => e,
    }
}

// --- no setting, Input -------------------------------------------------------------------------

#[test]
fn without_settings_the_target_gets_the_whole_event() {
    let input = TargetInput::parse(None, None, None).unwrap();
    assert!(matches!(input, TargetInput::Event));
    assert_eq!(as_json(&input.apply(&ec2_event(), &CTX)), ec2_event());
}

#[test]
fn input_is_delivered_exactly_as_written_whatever_the_event() {
    let text = "{ \"hello\" : [1, 2] }";
    let input = TargetInput::parse(Some(text), None, None).unwrap();
    assert_eq!(input.apply(&ec2_event(), &CTX), text);
    assert_eq!(input.apply(&json!({"other": true}), &CTX), text);
}

#[test]
fn input_may_be_any_json_value() {
    for text in ["\"just a string\"", "42", "null", "[]"] {
        let input = TargetInput::parse(Some(text), None, None).unwrap();
        assert_eq!(input.apply(&ec2_event(), &CTX), text);
    }
}

#[test]
fn input_that_is_not_json_is_rejected() {
    for text in ["", "{hello}", "plain words", "{\"a\": 1} trailing"] {
        let err = TargetInput::parse(Some(text), None, None).unwrap_err();
        assert!(
            matches!(err, TransformError::InputNotJson(_)),
            "{text}: {err}"
        );
    }
}

#[test]
fn input_longer_than_8192_characters_is_rejected() {
    let ok = format!("\"{}\"", "x".repeat(8190));
    assert!(TargetInput::parse(Some(&ok), None, None).is_ok());
    let long = format!("\"{}\"", "x".repeat(8191));
    let err = TargetInput::parse(Some(&long), None, None).unwrap_err();
    assert!(matches!(err, TransformError::InputTooLong(8193)), "{err}");
}

// --- only one setting --------------------------------------------------------------------------

#[test]
fn more_than_one_of_input_input_path_and_transformer_is_rejected() {
    let map = paths("{}");
    let cases: [(Option<&str>, Option<&str>, bool, &str); 4] = [
        (Some("{}"), Some("$.detail"), false, "Input and InputPath"),
        (Some("{}"), None, true, "Input and InputTransformer"),
        (
            None,
            Some("$.detail"),
            true,
            "InputPath and InputTransformer",
        ),
        (
            Some("{}"),
            Some("$.detail"),
            true,
            "Input, InputPath and InputTransformer",
        ),
    ];
    for (input, path, with_transformer, named) in cases {
        let t = with_transformer.then_some((&map, "\"x\""));
        match TargetInput::parse(input, path, t) {
            Err(TransformError::Conflicting(listed)) => assert_eq!(listed, named),
            other => panic!("{named}: expected a conflict, got {other:?}"),
        }
    }
}

#[test]
fn conflicts_are_reported_before_the_settings_are_checked() {
    let err = TargetInput::parse(Some("not json"), Some("bad path"), None).unwrap_err();
    assert!(matches!(err, TransformError::Conflicting(_)), "{err}");
}

// --- InputPath ---------------------------------------------------------------------------------

#[test]
fn input_path_delivers_the_selected_part_of_the_event() {
    let event = ec2_event();
    let cases = [
        (
            "$.detail",
            json!({"instance-id": "i-0123456789", "state": "RUNNING"}),
        ),
        ("$.detail.state", json!("RUNNING")),
        ("$.detail.instance-id", json!("i-0123456789")),
        ("$.resources", event["resources"].clone()),
        ("$", event.clone()),
    ];
    for (path, want) in cases {
        let input = TargetInput::parse(None, Some(path), None).unwrap();
        assert_eq!(as_json(&input.apply(&event, &CTX)), want, "{path}");
    }
}

#[test]
fn input_path_to_a_string_delivers_a_json_string() {
    // Recorded: InputPath `$.detail.payload.sf_id` gives the SQS body `"baz"`, quotes included.
    let event = json!({"detail": {"payload": {"sf_id": "baz"}}});
    let input = TargetInput::parse(None, Some("$.detail.payload.sf_id"), None).unwrap();
    assert_eq!(input.apply(&event, &CTX), "\"baz\"");
}

#[test]
fn input_path_indexes_arrays_and_reads_bracketed_names() {
    let event = json!({
        "detail": {
            "items": [{"id": 1}, {"id": 2, "tags": ["a", "b"]}],
            "odd name": {"x.y": "dotted", "it's": "quoted"},
            "a/b": "slashed"
        }
    });
    let cases = [
        ("$.detail.items[1].id", json!(2)),
        ("$.detail.items[1].tags[0]", json!("a")),
        ("$['detail']['odd name']['x.y']", json!("dotted")),
        (
            "$.detail[\"odd name\"]",
            json!({"x.y": "dotted", "it's": "quoted"}),
        ),
        ("$.detail['odd name']['it\\'s']", json!("quoted")),
        ("$.detail.a/b", json!("slashed")),
    ];
    for (path, want) in cases {
        let p = JsonPath::parse(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.select(&event).map(|v| v.into_owned()),
            Some(want),
            "{path}"
        );
        assert_eq!(p.as_str(), path);
    }
}

#[test]
fn input_path_that_selects_nothing_delivers_null() {
    let event = ec2_event();
    for path in [
        "$.detail.missing",
        "$.nothing.below",
        "$.resources[5]",
        "$.detail[0]",
        "$.resources.name",
        "$.detail.state.deeper",
    ] {
        let input = TargetInput::parse(None, Some(path), None).unwrap();
        assert_eq!(input.apply(&event, &CTX), "null", "{path}");
    }
}

#[test]
fn a_present_null_is_selected_as_null() {
    let p = JsonPath::parse("$.detail.value").unwrap();
    let event = json!({"detail": {"value": null}});
    assert_eq!(p.select(&event).map(|v| v.into_owned()), Some(Value::Null));
}

#[test]
fn wildcards_collect_every_match_into_an_array() {
    let event = json!({
        "detail": {
            "items": [{"id": 1}, {"name": "no id"}, {"id": 3}],
            "sizes": {"a": 10, "b": 20}
        }
    });
    let cases = [
        ("$.detail.items[*].id", json!([1, 3])),
        ("$.detail.sizes.*", json!([10, 20])),
        ("$.detail.items[*].missing", json!([])),
        ("$.detail.nothing[*]", json!([])),
    ];
    for (path, want) in cases {
        let input = TargetInput::parse(None, Some(path), None).unwrap();
        assert_eq!(as_json(&input.apply(&event, &CTX)), want, "{path}");
    }
}

#[test]
fn invalid_jsonpaths_are_rejected_with_where_and_why() {
    let cases = [
        ("", 0, "starts with `$`"),
        ("detail.state", 0, "starts with `$`"),
        ("$detail", 1, "unexpected character"),
        ("$.", 2, "expected a field name"),
        ("$.detail.", 9, "expected a field name"),
        ("$..state", 1, "recursive descent"),
        ("$.items[?(@.id > 1)]", 8, "filter"),
        ("$.items[-1]", 8, "negative"),
        ("$.items[0:2]", 9, "slices"),
        ("$.items[0,1]", 9, "unions"),
        ("$.items[0", 7, "expected `]`"),
        ("$.items[", 7, "unclosed `[`"),
        ("$['open", 1, "unclosed quoted name"),
        ("$.items[x]", 8, "expected an array index"),
        ("$.a b", 3, "unexpected character"),
        ("$.items[99999999999999999999999]", 8, "too large"),
    ];
    for (path, at, reason) in cases {
        let err = path_err(path);
        assert_eq!(err.path, path);
        assert_eq!(err.at, at, "{path}: {err}");
        assert!(err.reason.contains(reason), "{path}: {err}");
    }
}

#[test]
fn invalid_input_path_errors_name_the_setting_and_the_path() {
    let err = TargetInput::parse(None, Some("$..x"), None).unwrap_err();
    assert!(matches!(err, TransformError::InputPath(_)), "{err}");
    let message = err.to_string();
    assert!(message.starts_with("InputPath: "), "{message}");
    assert!(message.contains("\"$..x\""), "{message}");
}

#[test]
fn input_path_longer_than_256_characters_is_rejected() {
    let ok = format!("$.{}", "a".repeat(254));
    assert!(JsonPath::parse(&ok).is_ok());
    let long = format!("$.{}", "a".repeat(255));
    assert!(path_err(&long).reason.contains("256"));
}

// --- the user guide's examples -----------------------------------------------------------------

#[test]
fn guide_simple_string() {
    assert_eq!(
        ec2(r#""instance <instance> is in <state>""#),
        r#""instance i-0123456789 is in RUNNING""#
    );
}

#[test]
fn guide_string_with_escaped_quotes() {
    let out = ec2(r#""instance \"<instance>\" is in <state>""#);
    assert_eq!(out, r#""instance \"i-0123456789\" is in RUNNING""#);
    assert_eq!(
        as_json(&out),
        json!("instance \"i-0123456789\" is in RUNNING")
    );
}

#[test]
fn guide_simple_json() {
    let out = ec2("{\n  \"instance\" : <instance>,\n  \"state\": <state>\n}");
    assert_eq!(out, r#"{"instance":"i-0123456789","state":"RUNNING"}"#);
}

#[test]
fn guide_json_with_strings_and_variables() {
    let out = ec2(r#"{
 "instance" : <instance>,
 "state": "<state>",
 "instanceStatus": "instance \"<instance>\" is in <state>"
}"#);
    assert_eq!(
        as_json(&out),
        json!({
            "instance": "i-0123456789",
            "state": "RUNNING",
            "instanceStatus": "instance \"i-0123456789\" is in RUNNING"
        })
    );
}

#[test]
fn guide_json_with_a_mix_of_variables_and_static_information() {
    let out = ec2(r#"{
  "instance" : <instance>,
  "state": [ 9, <state>, true ],
  "Transformed" : "Yes"
}"#);
    assert_eq!(
        out,
        r#"{"instance":"i-0123456789","state":[9,"RUNNING",true],"Transformed":"Yes"}"#
    );
}

#[test]
fn guide_reserved_variables_in_json() {
    let out = ec2(r#"{
  "instance" : <instance>,
  "state": <state>,
  "ruleArn" : <aws.events.rule-arn>,
  "ruleName" : <aws.events.rule-name>,
  "originalEvent" : <aws.events.event.json>
}"#);
    assert_eq!(
        as_json(&out),
        json!({
            "instance": "i-0123456789",
            "state": "RUNNING",
            "ruleArn": "arn:aws:events:us-east-2:123456789012:rule/example",
            "ruleName": "example",
            "originalEvent": ec2_event()
        })
    );
}

#[test]
fn guide_reserved_variables_in_a_string() {
    assert_eq!(
        ec2(r#""<aws.events.rule-name> triggered""#),
        r#""example triggered""#
    );
}

#[test]
fn guide_cloudwatch_log_group_template_gives_valid_json() {
    // The guide prints an unquoted timestamp and unbalanced quotes here; the placeholder is
    // outside quotes, so nimbus inserts the string quoted and escapes nothing the template wrote.
    let out = ec2(r#"{
  "timestamp" : <timestamp>,
  "message": "instance \"<instance>\" is in <state>"
}"#);
    assert_eq!(
        as_json(&out),
        json!({
            "timestamp": "2015-11-11T21:29:54Z",
            "message": "instance \"i-0123456789\" is in RUNNING"
        })
    );
}

#[test]
fn guide_array_element_variable() {
    assert_eq!(
        ec2("{\"resource\": <resource>}"),
        r#"{"resource":"arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"}"#
    );
}

// --- the API reference's examples --------------------------------------------------------------

const API_PATHS: &str = r#"{"instance": "$.detail.instance", "status": "$.detail.status"}"#;

fn api(template: &str) -> String {
    let event = json!({"detail": {"instance": "i-42", "status": "stopped"}});
    transformer(API_PATHS, template).apply(&event, &CTX)
}

#[test]
fn api_reference_plain_text_template_inserts_raw_text() {
    assert_eq!(
        api("<instance> is in state <status>"),
        "i-42 is in state stopped"
    );
    assert_eq!(
        api(r#"<instance> is in state "<status>""#),
        r#"i-42 is in state "stopped""#
    );
}

#[test]
fn api_reference_json_template_with_variables_in_quotes_and_out() {
    let out =
        api(r#"{"myInstance": <instance>,"myStatus": "<instance> is in state \"<status>\""}"#);
    assert_eq!(
        out,
        r#"{"myInstance":"i-42","myStatus":"i-42 is in state \"stopped\""}"#
    );
    assert_eq!(
        as_json(&out),
        json!({"myInstance": "i-42", "myStatus": "i-42 is in state \"stopped\""})
    );
}

// --- outputs recorded from AWS -----------------------------------------------------------------

fn recorded_event() -> Value {
    json!({
        "version": "0",
        "id": "1b7ee2a1-4a34-4c4a-a6b0-7e8bda1c2e2a",
        "detail-type": "core.update-account-command",
        "source": "core.update-account-command",
        "account": "111111111111",
        "time": "date",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "command": "update-account",
            "payload": {"acc_id": "0a787ecb-4015", "sf_id": "baz"}
        }
    })
}

const RECORDED_PATHS: &str =
    r#"{"detail-type": "$.detail-type", "timestamp": "$.time", "command": "$.detail.command"}"#;
const RECORDED_MISSING_PATHS: &str = r#"{"detail-type": "$.detail-type", "timestamp": "$.time", "command": "$.detail.notinmessage"}"#;

#[test]
fn recorded_string_template_keeps_its_quotes() {
    let template = r#""Event of <detail-type> type, at time <timestamp>, info extracted from detail <command>""#;
    let out = transformer(RECORDED_PATHS, template).apply(&recorded_event(), &CTX);
    assert_eq!(
        out,
        r#""Event of core.update-account-command type, at time date, info extracted from detail update-account""#
    );
}

#[test]
fn recorded_missing_path_inside_a_string_inserts_nothing() {
    let template = r#""Event of <detail-type> type, at time <timestamp>, info extracted from detail <command>""#;
    let out = transformer(RECORDED_MISSING_PATHS, template).apply(&recorded_event(), &CTX);
    assert_eq!(
        out,
        r#""Event of core.update-account-command type, at time date, info extracted from detail ""#
    );
}

#[test]
fn recorded_string_template_may_start_with_json_punctuation() {
    let template = r#""{[/Check with special starting characters for event of <detail-type> type""#;
    let out = transformer(RECORDED_PATHS, template).apply(&recorded_event(), &CTX);
    assert_eq!(
        out,
        r#""{[/Check with special starting characters for event of core.update-account-command type""#
    );
}

#[test]
fn recorded_json_template_quotes_strings() {
    let template = r#"{"detailType": <detail-type>,  "time": <timestamp>, "command": <command>}"#;
    let out = transformer(RECORDED_PATHS, template).apply(&recorded_event(), &CTX);
    assert_eq!(
        as_json(&out),
        json!({"detailType": "core.update-account-command", "time": "date", "command": "update-account"})
    );
}

#[test]
fn recorded_missing_path_outside_quotes_inserts_an_empty_string() {
    let template = r#"{"detailType": <detail-type>,  "time": <timestamp>, "command": <command>}"#;
    let out = transformer(RECORDED_MISSING_PATHS, template).apply(&recorded_event(), &CTX);
    assert_eq!(
        as_json(&out),
        json!({"detailType": "core.update-account-command", "time": "date", "command": ""})
    );
}

#[test]
fn recorded_predefined_variables_in_a_string() {
    let template = r#""Message containing all pre defined variables <aws.events.rule-arn> <aws.events.rule-name> <aws.events.event.ingestion-time>""#;
    let out = TargetInput::parse(None, None, Some((&Map::new(), template)))
        .unwrap()
        .apply(&recorded_event(), &CTX);
    assert_eq!(
        out,
        "\"Message containing all pre defined variables \
         arn:aws:events:us-east-2:123456789012:rule/example example 2015-11-11T21:29:55Z\""
    );
}

#[test]
fn recorded_event_variable_drops_detail_and_renames_detail_type() {
    let template =
        r#"{"originalEvent": <aws.events.event>, "originalEventJson": <aws.events.event.json>}"#;
    let out = transformer("{}", template).apply(&recorded_event(), &CTX);
    assert_eq!(
        as_json(&out),
        json!({
            "originalEvent": {
                "version": "0",
                "id": "1b7ee2a1-4a34-4c4a-a6b0-7e8bda1c2e2a",
                "detailType": "core.update-account-command",
                "source": "core.update-account-command",
                "account": "111111111111",
                "time": "date",
                "region": "us-east-1",
                "resources": []
            },
            "originalEventJson": recorded_event()
        })
    );
}

// --- filling placeholders ----------------------------------------------------------------------

#[test]
fn strings_with_quotes_and_newlines_are_escaped_inside_strings() {
    let event = json!({"detail": {"msg": "say \"hi\"\nback\\slash\ttab\u{1}"}});
    let out =
        transformer(r#"{"m": "$.detail.msg"}"#, r#"{"text": "got: <m>!"}"#).apply(&event, &CTX);
    assert_eq!(
        out,
        r#"{"text":"got: say \"hi\"\nback\\slash\ttab\u0001!"}"#
    );
    assert_eq!(
        as_json(&out),
        json!({"text": "got: say \"hi\"\nback\\slash\ttab\u{1}!"})
    );
}

#[test]
fn strings_with_quotes_are_quoted_and_escaped_outside_strings() {
    let event = json!({"detail": {"msg": "say \"hi\"\n"}});
    let out = transformer(r#"{"m": "$.detail.msg"}"#, r#"{"text": <m>}"#).apply(&event, &CTX);
    assert_eq!(out, r#"{"text":"say \"hi\"\n"}"#);
}

#[test]
fn objects_and_arrays_inside_strings_become_escaped_json_text() {
    let event = json!({"detail": {"order": {"id": "o-1", "lines": [1, 2]}, "tags": ["a", "b\"c"]}});
    let out = transformer(
        r#"{"o": "$.detail.order", "t": "$.detail.tags"}"#,
        r#"{"summary": "order <o> tags <t>"}"#,
    )
    .apply(&event, &CTX);
    assert_eq!(
        as_json(&out),
        json!({"summary": "order {\"id\":\"o-1\",\"lines\":[1,2]} tags [\"a\",\"b\\\"c\"]"})
    );
}

#[test]
fn objects_and_arrays_outside_strings_are_inserted_as_json() {
    let event = json!({"detail": {"order": {"id": "o-1", "lines": [1, 2]}}});
    let out = transformer(
        r#"{"o": "$.detail.order", "l": "$.detail.order.lines"}"#,
        r#"{"order": <o>, "lines": <l>}"#,
    )
    .apply(&event, &CTX);
    assert_eq!(out, r#"{"order":{"id":"o-1","lines":[1,2]},"lines":[1,2]}"#);
}

#[test]
fn numbers_booleans_and_null_keep_their_json_form() {
    let event = json!({"detail": {"n": 12.5, "b": false, "z": null}});
    let map = r#"{"n": "$.detail.n", "b": "$.detail.b", "z": "$.detail.z"}"#;
    let out = transformer(map, r#"{"n": <n>, "b": <b>, "z": <z>, "s": "<n> <b> <z>"}"#)
        .apply(&event, &CTX);
    assert_eq!(
        as_json(&out),
        json!({"n": 12.5, "b": false, "z": null, "s": "12.5 false null"})
    );
}

#[test]
fn a_placeholder_may_be_used_many_times() {
    let out = ec2(r#"["<state>", <state>, "<state><state>"]"#);
    assert_eq!(out, r#"["RUNNING","RUNNING","RUNNINGRUNNING"]"#);
}

#[test]
fn a_template_that_is_one_placeholder_delivers_the_value_as_json() {
    assert_eq!(ec2("<state>"), "\"RUNNING\"");
    assert_eq!(ec2("  <instance>\n"), "  \"i-0123456789\"\n");
    let out = transformer(r#"{"d": "$.detail"}"#, "<d>").apply(&ec2_event(), &CTX);
    assert_eq!(as_json(&out), ec2_event()["detail"]);
}

#[test]
fn a_template_that_is_the_event_variable_delivers_the_event() {
    let out = transformer("{}", "<aws.events.event.json>").apply(&ec2_event(), &CTX);
    assert_eq!(as_json(&out), ec2_event());
}

#[test]
fn plain_text_templates_insert_values_unquoted_and_unescaped() {
    let event = json!({"detail": {"id": "o-\"7\"", "n": 3, "o": {"a": 1}}});
    let out = transformer(
        r#"{"id": "$.detail.id", "n": "$.detail.n", "o": "$.detail.o", "gone": "$.nope"}"#,
        "Order <id> shipped <n> items, meta <o>, missing [<gone>]",
    )
    .apply(&event, &CTX);
    assert_eq!(
        out,
        r#"Order o-"7" shipped 3 items, meta {"a":1}, missing []"#
    );
}

#[test]
fn event_variables_inside_strings_are_escaped_json_text() {
    let out = transformer(
        "{}",
        r#"{"raw": "<aws.events.event.json>", "short": "<aws.events.event>"}"#,
    )
    .apply(&ec2_event(), &CTX);
    let v = as_json(&out);
    let raw: Value = serde_json::from_str(v["raw"].as_str().unwrap()).unwrap();
    assert_eq!(raw, ec2_event());
    let short: Value = serde_json::from_str(v["short"].as_str().unwrap()).unwrap();
    assert_eq!(
        short["detailType"],
        "EC2 Instance State-change Notification"
    );
    assert!(short.get("detail").is_none());
}

#[test]
fn reserved_string_variables_are_quoted_outside_strings() {
    let out = transformer(
        "{}",
        "{\"arn\": <aws.events.rule-arn>, \"at\": <aws.events.event.ingestion-time>}",
    )
    .apply(&ec2_event(), &CTX);
    assert_eq!(
        as_json(&out),
        json!({"arn": CTX.rule_arn, "at": CTX.ingestion_time})
    );
}

#[test]
fn missing_paths_in_arrays_and_nested_objects() {
    let out = transformer(
        r#"{"gone": "$.detail.gone"}"#,
        r#"{"list": [<gone>, 1], "nested": {"x": <gone>, "y": "a<gone>b"}}"#,
    )
    .apply(&ec2_event(), &CTX);
    assert_eq!(
        as_json(&out),
        json!({"list": ["", 1], "nested": {"x": "", "y": "ab"}})
    );
}

#[test]
fn wildcard_paths_insert_arrays() {
    let event = json!({"detail": {"items": [{"id": "a"}, {"id": "b"}]}});
    let out = transformer(
        r#"{"ids": "$.detail.items[*].id"}"#,
        r#"{"ids": <ids>, "text": "ids <ids>"}"#,
    )
    .apply(&event, &CTX);
    assert_eq!(
        as_json(&out),
        json!({"ids": ["a", "b"], "text": "ids [\"a\",\"b\"]"})
    );
}

#[test]
fn json_templates_are_minified_but_spaces_inside_strings_stay() {
    let out = ec2("{\n  \"a b\" : \"  <state>  \",\n\t\"c\" : [ 1 , 2 ]\n}");
    assert_eq!(out, r#"{"a b":"  RUNNING  ","c":[1,2]}"#);
}

#[test]
fn string_and_text_templates_keep_their_spacing() {
    assert_eq!(ec2("  \"a  <state>\"  "), "  \"a  RUNNING\"  ");
    assert_eq!(ec2("state:  <state>\n"), "state:  RUNNING\n");
}

#[test]
fn angle_brackets_that_are_not_placeholders_are_text() {
    assert_eq!(
        ec2(r#""a < b and c > d, x <= <state>, <>, < state>""#),
        r#""a < b and c > d, x <= RUNNING, <>, < state>""#
    );
}

#[test]
fn escaped_quotes_in_templates_do_not_end_strings() {
    // `\"<state>\"` stays inside the string, and `\\` before a quote does not escape it.
    let out = ec2(r#"{"a": "x\\", "b": <state>, "c": "\"<state>\""}"#);
    assert_eq!(
        as_json(&out),
        json!({"a": "x\\", "b": "RUNNING", "c": "\"RUNNING\""})
    );
}

// --- InputTransformer validation ---------------------------------------------------------------

#[test]
fn undefined_placeholders_are_rejected_with_name_and_position() {
    let err = transformer_err(
        RECORDED_PATHS,
        r#""Event of <detail-type> type, with not defined key <notdefinedkey>""#,
    );
    match &err {
        TransformError::UnknownPlaceholder { name, at } => {
            assert_eq!(name, "notdefinedkey");
            assert_eq!(*at, 51);
        }
        other => panic!("expected an unknown placeholder, got {other}"),
    }
    assert!(err.to_string().contains("<notdefinedkey>"), "{err}");
}

#[test]
fn unknown_aws_variables_are_rejected() {
    let err = transformer_err("{}", "\"<aws.events.rule-id>\"");
    assert!(
        matches!(&err, TransformError::UnknownPlaceholder { name, .. } if name == "aws.events.rule-id"),
        "{err}"
    );
}

#[test]
fn placeholders_cannot_be_object_keys() {
    for (template, at) in [
        (r#"{<instance>: 1}"#, 1),
        (r#"{"a": 1, <state>: 2}"#, 9),
        (r#"{"<instance>": 1}"#, 2),
        (r#"{"a": {"k-<state>": 1}}"#, 10),
        (r#"[{"x": 1}, {<state>: 2}]"#, 12),
    ] {
        let err = transformer_err(EC2_PATHS, template);
        match err {
            TransformError::PlaceholderAsKey { at: got, .. } => assert_eq!(got, at, "{template}"),
            other => panic!("{template}: expected a key error, got {other}"),
        }
    }
}

#[test]
fn placeholders_may_be_values_after_keys_and_in_arrays() {
    let out =
        ec2(r#"{"k": {"inner": <state>}, "list": [<state>, {"x": "<state>"}], "z": <state>}"#);
    assert_eq!(
        as_json(&out),
        json!({"k": {"inner": "RUNNING"}, "list": ["RUNNING", {"x": "RUNNING"}], "z": "RUNNING"})
    );
}

#[test]
fn more_than_100_paths_are_rejected() {
    let mut map = Map::new();
    for n in 0..100 {
        map.insert(format!("v{n}"), json!("$.detail"));
    }
    assert!(Transformer::parse(&map, "\"<v99>\"").is_ok());
    map.insert("v100".to_string(), json!("$.detail"));
    let err = Transformer::parse(&map, "\"x\"").unwrap_err();
    assert!(matches!(err, TransformError::TooManyPaths(101)), "{err}");
}

#[test]
fn keys_must_be_letters_digits_underscores_and_dashes() {
    let good = paths(r#"{"a_b-C9": "$.detail"}"#);
    assert!(Transformer::parse(&good, "<a_b-C9>").is_ok());
    for (key, reason) in [
        ("", "empty"),
        ("a b", "' ' is not allowed"),
        ("a.b", "'.' is not allowed"),
        ("aws.events.rule-name", "reserved"),
        ("AWS.custom", "reserved"),
    ] {
        let mut map = Map::new();
        map.insert(key.to_string(), json!("$.detail"));
        match Transformer::parse(&map, "\"x\"").unwrap_err() {
            TransformError::InvalidKey { key: k, reason: r } => {
                assert_eq!(k, key);
                assert!(r.contains(reason), "{key}: {r}");
            }
            other => panic!("{key}: expected a key error, got {other}"),
        }
    }
    let mut long = Map::new();
    long.insert("k".repeat(257), json!("$.detail"));
    assert!(matches!(
        Transformer::parse(&long, "\"x\"").unwrap_err(),
        TransformError::InvalidKey { .. }
    ));
}

#[test]
fn path_map_values_must_be_valid_jsonpath_strings() {
    let err = transformer_err(r#"{"id": 5}"#, "\"x\"");
    assert!(
        matches!(&err, TransformError::PathNotString { key, kind } if key == "id" && *kind == "a number"),
        "{err}"
    );

    let err = transformer_err(r#"{"ok": "$.detail", "bad": "detail.id"}"#, "\"x\"");
    match &err {
        TransformError::InvalidMapPath { key, source } => {
            assert_eq!(key, "bad");
            assert_eq!(source.path, "detail.id");
        }
        other => panic!("expected a path error, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("\"bad\"") && message.contains("\"detail.id\""),
        "{message}"
    );
}

#[test]
fn template_must_be_1_to_8192_characters() {
    let err = transformer_err("{}", "");
    assert!(matches!(err, TransformError::TemplateLength(0)), "{err}");
    let max = format!("\"{}\"", "é".repeat(8190));
    assert!(Transformer::parse(&Map::new(), &max).is_ok());
    let over = format!("\"{}\"", "é".repeat(8191));
    let err = transformer_err("{}", &over);
    assert!(matches!(err, TransformError::TemplateLength(8193)), "{err}");
}

#[test]
fn transformer_exposes_its_template_and_paths() {
    let map = paths(EC2_PATHS);
    let t = Transformer::parse(&map, "<state>").unwrap();
    assert_eq!(t.template(), "<state>");
    let names: Vec<(&str, &str)> = t.paths().map(|(k, p)| (k, p.as_str())).collect();
    assert!(names.contains(&("state", "$.detail.state")), "{names:?}");
    assert_eq!(names.len(), 4);
}

#[test]
fn unused_paths_are_allowed_and_templates_need_no_paths() {
    let out = transformer(EC2_PATHS, r#"{"fixed": true}"#).apply(&ec2_event(), &CTX);
    assert_eq!(out, r#"{"fixed":true}"#);
}
