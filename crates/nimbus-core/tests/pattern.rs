//! EventBridge event patterns: examples from aws/event-ruler's README and the EventBridge user
//! guide (content filtering, null values and empty strings, arrays, comparison operators), each
//! with events that match and events that do not, plus patterns EventBridge rejects.

use nimbus_core::pattern::{Pattern, PatternError};
use serde_json::{json, Value};

/// The sample event of event-ruler's README.
const README_EVENT: &str = r#"{
  "version": "0",
  "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "012345679012",
  "time": "2017-10-02T16:24:49Z",
  "region": "us-east-1",
  "resources": [
    "arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"
  ],
  "detail": {
    "c-count": 5,
    "d-count": 3,
    "x-limit": 301.8,
    "source-ip": "10.0.0.33",
    "instance-id": "i-000000aaaaaa00000",
    "state": "running"
  }
}"#;

/// The user guide's event with an empty string and a null.
const NULL_VALUES_EVENT: &str = r#"{
  "version": "0",
  "id": "3e3c153a-8339-4e30-8c35-687ebef853fe",
  "detail-type": "EC2 Instance Launch Successful",
  "source": "aws.autoscaling",
  "account": "123456789012",
  "time": "2015-11-11T21:31:47Z",
  "region": "us-east-1",
  "resources": [],
  "detail": {
    "eventVersion": "",
    "responseElements": null
  }
}"#;

/// The README's array example.
const EMPLOYEES_EVENT: &str = r#"{
  "employees": [
    { "firstName": "John", "lastName": "Doe" },
    { "firstName": "Anna", "lastName": "Smith" },
    { "firstName": "Peter", "lastName": "Jones" }
  ]
}"#;

fn compile(text: &str) -> Pattern {
    Pattern::parse(text).unwrap_or_else(|e| panic!("pattern {text} should compile: {e}"))
}

fn event(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad test event {text}: {e}"))
}

/// `base` with the value at a JSON pointer replaced or added.
fn with(base: &str, pointer: &str, value: Value) -> String {
    let mut doc = event(base);
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    doc.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent object")
        .insert(key.to_string(), value);
    doc.to_string()
}

/// `base` without the field at a JSON pointer.
fn without(base: &str, pointer: &str) -> String {
    let mut doc = event(base);
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    doc.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent object")
        .remove(key)
        .expect("field to remove");
    doc.to_string()
}

/// A test: the pattern compiles, matches every event in `yes` and none in `no`.
macro_rules! case {
    ($name:ident, $pattern:expr, yes: [$($yes:expr),+ $(,)?], no: [$($no:expr),+ $(,)?] $(,)?) => {
        #[test]
        fn $name() {
            let text: &str = $pattern;
            let pattern = compile(text);
            $(
                let owned = $yes;
                let e: &str = owned.as_ref();
                assert!(pattern.matches(&event(e)), "pattern {text}\nshould match {e}");
            )+
            $(
                let owned = $no;
                let e: &str = owned.as_ref();
                assert!(!pattern.matches(&event(e)), "pattern {text}\nshould not match {e}");
            )+
        }
    };
}

/// A test: the pattern is rejected, naming `path`, with a message containing `reason`.
macro_rules! rejected {
    ($name:ident, $pattern:expr, path: $path:expr, reason: $reason:expr $(,)?) => {
        #[test]
        fn $name() {
            let text: &str = $pattern;
            match Pattern::parse(text) {
                Ok(_) => panic!("pattern {text} should be rejected"),
                Err(e) => {
                    let message = e.to_string();
                    assert_eq!(e.path(), Some($path), "path of {message:?} for {text}");
                    assert!(
                        message.contains($reason),
                        "message {message:?} for {text} should contain {:?}",
                        $reason
                    );
                }
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// event-ruler README: Ruler by example

case!(
    readme_simple_match_ands_fields_and_ors_values,
    r#"{
      "detail-type": [ "EC2 Instance State-change Notification" ],
      "resources": [ "arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000" ],
      "detail": { "state": [ "initializing", "running" ] }
    }"#,
    yes: [
        README_EVENT,
        with(README_EVENT, "/detail/state", json!("initializing")),
        with(README_EVENT, "/resources", json!(["arn:other", "arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"])),
    ],
    no: [
        with(README_EVENT, "/detail/state", json!("stopped")),
        with(README_EVENT, "/detail-type", json!("Other")),
        with(README_EVENT, "/resources", json!(["arn:other"])),
        without(README_EVENT, "/detail/state"),
    ],
);

case!(
    readme_prefix_matches_the_start_of_a_string,
    r#"{ "time": [ { "prefix": "2017-10-02" } ] }"#,
    yes: [README_EVENT],
    no: [
        with(README_EVENT, "/time", json!("2017-10-03T16:24:49Z")),
        with(README_EVENT, "/time", json!("x2017-10-02")),
        without(README_EVENT, "/time"),
    ],
);

case!(
    readme_suffix_matches_the_end_of_a_string,
    r#"{ "source": [ { "suffix": "ec2" } ] }"#,
    yes: [README_EVENT],
    no: [
        with(README_EVENT, "/source", json!("aws.ec2.x")),
        with(README_EVENT, "/source", json!("aws.EC2")),
    ],
);

case!(
    readme_equals_ignore_case_matches_whole_strings_in_any_case,
    r#"{ "source": [ { "equals-ignore-case": "EC2" } ] }"#,
    yes: [r#"{"source": "ec2"}"#, r#"{"source": "Ec2"}"#, r#"{"source": "EC2"}"#],
    no: [README_EVENT, r#"{"source": "ec2 "}"#],
);

case!(
    readme_wildcard_star_matches_any_run_of_characters,
    r#"{ "source": [ { "wildcard": "Simple*Service" } ] }"#,
    yes: [
        r#"{"source": "SimpleQueueService"}"#,
        r#"{"source": "SimpleNotificationService"}"#,
        r#"{"source": "SimpleService"}"#,
    ],
    no: [
        r#"{"source": "SimpleQueue"}"#,
        r#"{"source": "simpleQueueService"}"#,
        r#"{"source": "ASimpleQueueService"}"#,
    ],
);

case!(
    readme_anything_but_string_excludes_one_value,
    r#"{ "detail": { "state": [ { "anything-but": "initializing" } ] } }"#,
    yes: [README_EVENT, with(README_EVENT, "/detail/state", json!("INITIALIZING"))],
    no: [with(README_EVENT, "/detail/state", json!("initializing"))],
);

case!(
    readme_anything_but_number_compares_numerically,
    r#"{ "detail": { "x-limit": [ { "anything-but": 123 } ] } }"#,
    yes: [README_EVENT, with(README_EVENT, "/detail/x-limit", json!("123"))],
    no: [
        with(README_EVENT, "/detail/x-limit", json!(123)),
        r#"{"detail": {"x-limit": 123.0}}"#,
        r#"{"detail": {"x-limit": 1.23e2}}"#,
    ],
);

case!(
    readme_anything_but_string_list_excludes_each_value,
    r#"{ "detail": { "state": [ { "anything-but": [ "stopped", "overloaded" ] } ] } }"#,
    yes: [README_EVENT],
    no: [
        with(README_EVENT, "/detail/state", json!("stopped")),
        with(README_EVENT, "/detail/state", json!("overloaded")),
    ],
);

case!(
    readme_anything_but_number_list_excludes_each_value,
    r#"{ "detail": { "x-limit": [ { "anything-but": [ 100, 200, 300 ] } ] } }"#,
    yes: [README_EVENT],
    no: [
        with(README_EVENT, "/detail/x-limit", json!(200)),
        r#"{"detail": {"x-limit": 3e2}}"#,
    ],
);

case!(
    readme_anything_but_prefix_excludes_strings_starting_with_it,
    r#"{ "detail": { "state": [ { "anything-but": { "prefix": "init" } } ] } }"#,
    yes: [README_EVENT, with(README_EVENT, "/detail/state", json!("re-init"))],
    no: [
        with(README_EVENT, "/detail/state", json!("initializing")),
        with(README_EVENT, "/detail/state", json!("init")),
    ],
);

case!(
    readme_numeric_ranges_and_equality_on_several_fields,
    r#"{
      "detail": {
        "c-count": [ { "numeric": [ ">", 0, "<=", 5 ] } ],
        "d-count": [ { "numeric": [ "<", 10 ] } ],
        "x-limit": [ { "numeric": [ "=", 3.018e2 ] } ]
      }
    }"#,
    yes: [README_EVENT, with(README_EVENT, "/detail/c-count", json!(0.000001))],
    no: [
        with(README_EVENT, "/detail/c-count", json!(0)),
        with(README_EVENT, "/detail/c-count", json!(5.5)),
        with(README_EVENT, "/detail/d-count", json!(10)),
        with(README_EVENT, "/detail/x-limit", json!(301.9)),
        with(README_EVENT, "/detail/c-count", json!("3")),
    ],
);

case!(
    readme_cidr_matches_ipv4_addresses_in_the_block,
    r#"{ "detail": { "source-ip": [ { "cidr": "10.0.0.0/24" } ] } }"#,
    yes: [
        README_EVENT,
        with(README_EVENT, "/detail/source-ip", json!("10.0.0.0")),
        with(README_EVENT, "/detail/source-ip", json!("10.0.0.255")),
    ],
    no: [
        with(README_EVENT, "/detail/source-ip", json!("10.0.1.0")),
        with(README_EVENT, "/detail/source-ip", json!("9.255.255.255")),
        with(README_EVENT, "/detail/source-ip", json!("not an ip")),
    ],
);

case!(
    readme_exists_true_needs_the_leaf,
    r#"{ "detail": { "c-count": [ { "exists": true } ] } }"#,
    yes: [README_EVENT],
    no: [
        without(README_EVENT, "/detail/c-count"),
        with(README_EVENT, "/detail/c-count", json!({"c1": 100})),
    ],
);

case!(
    readme_exists_false_matches_absent_fields_and_non_leaf_objects,
    r#"{ "detail": { "c-count": [ { "exists": false } ] } }"#,
    yes: [
        without(README_EVENT, "/detail/c-count"),
        with(README_EVENT, "/detail/c-count", json!({"c1": 100})),
        r#"{"source": "aws.ec2"}"#,
    ],
    no: [README_EVENT],
);

case!(
    readme_complex_example_combines_every_kind_of_condition,
    r#"{
      "time": [ { "prefix": "2017-10-02" } ],
      "detail": {
        "state": [ { "anything-but": "initializing" } ],
        "c-count": [ { "numeric": [ ">", 0, "<=", 5 ] } ],
        "d-count": [ { "numeric": [ "<", 10 ] } ],
        "x-limit": [ { "anything-but": [ 100, 200, 300 ] } ],
        "source-ip": [ { "cidr": "10.0.0.0/8" } ]
      }
    }"#,
    yes: [README_EVENT, with(README_EVENT, "/detail/source-ip", json!("10.255.0.1"))],
    no: [
        with(README_EVENT, "/detail/state", json!("initializing")),
        with(README_EVENT, "/detail/x-limit", json!(300)),
        with(README_EVENT, "/detail/source-ip", json!("11.0.0.1")),
        without(README_EVENT, "/detail/x-limit"),
    ],
);

// ---------------------------------------------------------------------------------------------
// event-ruler README: $or

case!(
    readme_or_source_and_either_metric_name_or_namespace,
    r#"{
      "source": [ "aws.cloudwatch" ],
      "$or": [
        { "metricName": [ "CPUUtilization", "ReadLatency" ] },
        { "namespace": [ "AWS/EC2", "AWS/ES" ] }
      ]
    }"#,
    yes: [
        r#"{"source": "aws.cloudwatch", "metricName": "ReadLatency"}"#,
        r#"{"source": "aws.cloudwatch", "namespace": "AWS/ES"}"#,
        r#"{"source": "aws.cloudwatch", "metricName": "Other", "namespace": "AWS/EC2"}"#,
    ],
    no: [
        r#"{"source": "aws.cloudwatch", "metricName": "Other"}"#,
        r#"{"source": "aws.cloudwatch"}"#,
        r#"{"source": "aws.ec2", "metricName": "CPUUtilization"}"#,
    ],
);

case!(
    readme_parallel_or_at_two_levels,
    r#"{
      "$or": [
        { "metricName": [ "CPUUtilization", "ReadLatency" ] },
        { "namespace": [ "AWS/EC2", "AWS/ES" ] }
      ],
      "detail": {
        "$or": [
          { "source": [ "aws.cloudwatch" ] },
          { "detail-type": [ "CloudWatch Alarm State Change" ] }
        ]
      }
    }"#,
    yes: [
        r#"{"metricName": "CPUUtilization", "detail": {"source": "aws.cloudwatch"}}"#,
        r#"{"namespace": "AWS/ES", "detail": {"detail-type": "CloudWatch Alarm State Change"}}"#,
    ],
    no: [
        r#"{"metricName": "CPUUtilization", "detail": {"source": "aws.ec2"}}"#,
        r#"{"metricName": "Other", "detail": {"source": "aws.cloudwatch"}}"#,
        r#"{"metricName": "CPUUtilization", "source": "aws.cloudwatch"}"#,
    ],
);

case!(
    readme_or_alternative_may_and_several_fields,
    r#"{
      "source": [ "aws.cloudwatch" ],
      "$or": [
        { "metricName": [ "CPUUtilization", "ReadLatency" ] },
        { "metricType": [ "MetricType" ], "namespace": [ "AWS/EC2", "AWS/ES" ] },
        { "scope": [ "Service" ] }
      ]
    }"#,
    yes: [
        r#"{"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/EC2"}"#,
        r#"{"source": "aws.cloudwatch", "scope": "Service"}"#,
    ],
    no: [
        r#"{"source": "aws.cloudwatch", "metricType": "MetricType"}"#,
        r#"{"source": "aws.cloudwatch", "namespace": "AWS/EC2"}"#,
    ],
);

case!(
    readme_nested_or_inside_an_or_alternative,
    r#"{
      "source": [ "aws.cloudwatch" ],
      "$or": [
        { "metricName": [ "CPUUtilization", "ReadLatency" ] },
        {
          "metricType": [ "MetricType" ],
          "namespace": [ "AWS/EC2", "AWS/ES" ],
          "$or": [ { "metricId": [ 1234 ] }, { "spaceId": [ 1000 ] } ]
        },
        { "scope": [ "Service" ] }
      ]
    }"#,
    yes: [
        r#"{"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/ES", "metricId": 1234}"#,
        r#"{"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/ES", "spaceId": 1000.0}"#,
        r#"{"source": "aws.cloudwatch", "metricName": "ReadLatency"}"#,
    ],
    no: [
        r#"{"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/ES"}"#,
        r#"{"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/ES", "metricId": "1234"}"#,
    ],
);

// ---------------------------------------------------------------------------------------------
// event-ruler README and user guide: arrays

case!(
    readme_array_of_objects_is_crushed_into_its_parent_field,
    r#"{ "employees": { "firstName": [ "Anna" ] } }"#,
    yes: [EMPLOYEES_EVENT],
    no: [r#"{"employees": [{"firstName": "Bob"}]}"#, r#"{"employees": []}"#],
);

case!(
    readme_array_consistency_needs_both_fields_from_one_element,
    r#"{ "employees": { "firstName": [ "Anna" ], "lastName": [ "Jones" ] } }"#,
    yes: [r#"{"employees": [{"firstName": "John"}, {"firstName": "Anna", "lastName": "Jones"}]}"#],
    no: [EMPLOYEES_EVENT],
);

case!(
    readme_multi_level_arrays_are_searched_too,
    r#"{ "employees": { "firstName": [ "Peter" ], "lastName": [ "Jones" ] } }"#,
    yes: [r#"{
      "employees": [
        [ { "firstName": "John", "lastName": "Doe" }, { "firstName": "Anna", "lastName": "Smith" } ],
        [ { "firstName": "Peter", "lastName": "Jones" } ]
      ]
    }"#],
    no: [r#"{"employees": [[{"firstName": "Peter"}], [{"lastName": "Jones"}]]}"#],
);

case!(
    guide_array_value_matches_when_the_intersection_is_not_empty,
    r#"{ "resources": [ "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f", "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f" ] }"#,
    yes: [r#"{"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f", "arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"]}"#],
    no: [r#"{"resources": ["arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"]}"#],
);

case!(
    nested_arrays_of_scalars_are_flattened,
    r#"{ "resources": [ "b" ] }"#,
    yes: [r#"{"resources": [["a"], ["b", ["c"]]]}"#],
    no: [r#"{"resources": [["a"], [{"b": "b"}]]}"#],
);

case!(
    exists_true_finds_a_field_in_any_array_element,
    r#"{ "detail": { "automations": { "id": [ { "exists": true } ] } } }"#,
    yes: [r#"{"detail": {"automations": [{"key1": "value1"}, {"id": "match-does-exist"}, {"key2": "value2"}]}}"#],
    no: [r#"{"detail": {"automations": [{"key1": "value1"}, {"key2": "value2"}]}}"#],
);

case!(
    exists_false_under_an_array_needs_the_field_absent_from_every_element,
    r#"{ "items": { "discount": [ { "exists": false } ] } }"#,
    yes: [
        r#"{"items": [{"sku": "a"}, {"sku": "b"}]}"#,
        r#"{"items": []}"#,
        r#"{"items": [1, 2]}"#,
    ],
    no: [r#"{"items": [{"sku": "a"}, {"sku": "b", "discount": 5}]}"#],
);

case!(
    exists_false_next_to_a_value_condition_is_checked_in_the_same_element,
    r#"{ "items": { "sku": [ "b" ], "discount": [ { "exists": false } ] } }"#,
    yes: [r#"{"items": [{"sku": "a", "discount": 5}, {"sku": "b"}]}"#],
    no: [r#"{"items": [{"sku": "a"}, {"sku": "b", "discount": 5}]}"#],
);

case!(
    or_alternatives_under_an_array_are_matched_per_element,
    r#"{ "items": { "$or": [ { "sku": [ "a" ] }, { "qty": [ { "numeric": [ ">", 10 ] } ] } ] } }"#,
    yes: [r#"{"items": [{"sku": "z", "qty": 1}, {"sku": "z", "qty": 11}]}"#],
    no: [r#"{"items": [{"sku": "z", "qty": 1}, {"sku": "y", "qty": 2}]}"#],
);

// ---------------------------------------------------------------------------------------------
// User guide: null values and empty strings

case!(
    guide_empty_string_matches_only_an_empty_string,
    r#"{ "detail": { "eventVersion": [ "" ] } }"#,
    yes: [NULL_VALUES_EVENT],
    no: [
        with(NULL_VALUES_EVENT, "/detail/eventVersion", Value::Null),
        with(NULL_VALUES_EVENT, "/detail/eventVersion", json!(" ")),
        without(NULL_VALUES_EVENT, "/detail/eventVersion"),
    ],
);

case!(
    guide_null_matches_only_null,
    r#"{ "detail": { "responseElements": [ null ] } }"#,
    yes: [NULL_VALUES_EVENT],
    no: [
        with(NULL_VALUES_EVENT, "/detail/responseElements", json!("")),
        with(NULL_VALUES_EVENT, "/detail/responseElements", json!("null")),
        without(NULL_VALUES_EVENT, "/detail/responseElements"),
    ],
);

case!(
    null_does_not_match_an_empty_array,
    r#"{ "resources": [ null ] }"#,
    yes: [r#"{"resources": [null, "x"]}"#],
    no: [NULL_VALUES_EVENT],
);

case!(
    exists_counts_a_null_value_as_present,
    r#"{ "detail": { "responseElements": [ { "exists": true } ] } }"#,
    yes: [NULL_VALUES_EVENT],
    no: [without(NULL_VALUES_EVENT, "/detail/responseElements")],
);

case!(
    exists_false_does_not_match_a_null_value,
    r#"{ "detail": { "responseElements": [ { "exists": false } ] } }"#,
    yes: [without(NULL_VALUES_EVENT, "/detail/responseElements")],
    no: [NULL_VALUES_EVENT],
);

case!(
    exists_false_matches_an_empty_array,
    r#"{ "resources": [ { "exists": false } ] }"#,
    yes: [NULL_VALUES_EVENT],
    no: [README_EVENT],
);

// ---------------------------------------------------------------------------------------------
// User guide: content filtering and comparison operators

case!(
    guide_and_needs_every_field,
    r#"{ "Location": [ "New York" ], "Day": [ "Monday" ] }"#,
    yes: [r#"{"Location": "New York", "Day": "Monday", "Other": 1}"#],
    no: [r#"{"Location": "New York", "Day": "Tuesday"}"#, r#"{"Location": "New York"}"#],
);

case!(
    guide_or_on_values_of_one_field,
    r#"{ "PaymentType": [ "Credit", "Debit" ] }"#,
    yes: [r#"{"PaymentType": "Credit"}"#, r#"{"PaymentType": "Debit"}"#],
    no: [r#"{"PaymentType": "Cash"}"#],
);

case!(
    guide_or_across_fields,
    r#"{ "$or": [ { "Location": [ "New York" ] }, { "Day": [ "Monday" ] } ] }"#,
    yes: [r#"{"Location": "New York", "Day": "Sunday"}"#, r#"{"Location": "Paris", "Day": "Monday"}"#],
    no: [r#"{"Location": "Paris", "Day": "Sunday"}"#],
);

case!(
    guide_prefix_equals_ignore_case,
    r#"{ "detail": { "service": [ { "prefix": { "equals-ignore-case": "EventB" } } ] } }"#,
    yes: [
        r#"{"detail": {"service": "EventBridge"}}"#,
        r#"{"detail": {"service": "eventbridge"}}"#,
        r#"{"detail": {"service": "EVENTB"}}"#,
    ],
    no: [r#"{"detail": {"service": "Event"}}"#, r#"{"detail": {"service": "MyEventBridge"}}"#],
);

case!(
    guide_suffix_is_case_sensitive,
    r#"{ "FileName": [ { "suffix": ".png" } ] }"#,
    yes: [r#"{"FileName": "image.png"}"#, r#"{"FileName": ".png"}"#],
    no: [r#"{"FileName": "image.PNG"}"#, r#"{"FileName": "image.png.bak"}"#],
);

case!(
    guide_suffix_equals_ignore_case,
    r#"{ "detail": { "FileName": [ { "suffix": { "equals-ignore-case": ".png" } } ] } }"#,
    yes: [r#"{"detail": {"FileName": "image.PNG"}}"#, r#"{"detail": {"FileName": "a.Png"}}"#],
    no: [r#"{"detail": {"FileName": "image.jpg"}}"#, r#"{"detail": {"FileName": "png"}}"#],
);

case!(
    guide_equals_ignore_case_on_a_name,
    r#"{ "Name": [ { "equals-ignore-case": "alice" } ] }"#,
    yes: [r#"{"Name": "Alice"}"#, r#"{"Name": "ALICE"}"#],
    no: [r#"{"Name": "Alicia"}"#, r#"{"Name": ["Bob", "Al"]}"#],
);

case!(
    equals_ignore_case_folds_non_ascii_letters,
    r#"{ "city": [ { "equals-ignore-case": "ÉTÉ À Zürich" } ] }"#,
    yes: [r#"{"city": "été à zürich"}"#],
    no: [r#"{"city": "ete a zurich"}"#],
);

case!(
    guide_anything_but_suffix,
    r#"{ "FileName": [ { "anything-but": { "suffix": ".png" } } ] }"#,
    yes: [r#"{"FileName": "file.txt"}"#, r#"{"FileName": "image.PNG"}"#],
    no: [r#"{"FileName": "image.png"}"#],
);

case!(
    guide_anything_but_equals_ignore_case,
    r#"{ "detail": { "state": [ { "anything-but": { "equals-ignore-case": "initializing" } } ] } }"#,
    yes: [r#"{"detail": {"state": "running"}}"#],
    no: [r#"{"detail": {"state": "INITIALIZING"}}"#, r#"{"detail": {"state": "Initializing"}}"#],
);

case!(
    guide_anything_but_equals_ignore_case_list,
    r#"{ "detail": { "state": [ { "anything-but": { "equals-ignore-case": [ "initializing", "stopped" ] } } ] } }"#,
    yes: [r#"{"detail": {"state": "running"}}"#],
    no: [r#"{"detail": {"state": "STOPPED"}}"#, r#"{"detail": {"state": "initializing"}}"#],
);

case!(
    guide_anything_but_wildcard,
    r#"{ "FilePath": [ { "anything-but": { "wildcard": "*/lib/*" } } ] }"#,
    yes: [r#"{"FilePath": "/user/dir/main.py"}"#, r#"{"FilePath": "lib/main.py"}"#],
    no: [r#"{"FilePath": "/user/lib/main.py"}"#],
);

case!(
    guide_anything_but_wildcard_list,
    r#"{ "FilePath": [ { "anything-but": { "wildcard": [ "*/lib/*", "*/bin/*" ] } } ] }"#,
    yes: [r#"{"FilePath": "/user/src/main.py"}"#],
    no: [r#"{"FilePath": "/user/bin/tool"}"#, r#"{"FilePath": "/opt/lib/x.so"}"#],
);

case!(
    guide_anything_but_prefix_list,
    r#"{ "detail": { "state": [ { "anything-but": { "prefix": [ "init", "test" ] } } ] } }"#,
    yes: [r#"{"detail": {"state": "post-init"}}"#],
    no: [r#"{"detail": {"state": "testing"}}"#, r#"{"detail": {"state": "initial"}}"#],
);

case!(
    guide_anything_but_prefix_region_not_in_the_us,
    r#"{ "Region": [ { "anything-but": { "prefix": "us-" } } ] }"#,
    yes: [r#"{"Region": "eu-west-1"}"#],
    no: [r#"{"Region": "us-east-1"}"#],
);

case!(
    guide_wildcard_file_in_a_folder,
    r#"{ "FileName": [ { "wildcard": "dir/*.png" } ] }"#,
    yes: [r#"{"FileName": "dir/image.png"}"#, r#"{"FileName": "dir/sub/image.png"}"#, r#"{"FileName": "dir/.png"}"#],
    no: [r#"{"FileName": "other/image.png"}"#, r#"{"FileName": "dir/image.jpg"}"#],
);

case!(
    wildcard_with_several_stars,
    r#"{ "EventBusArn": [ { "wildcard": "arn:aws:events:*:123456789012:event-bus/*" } ] }"#,
    yes: [r#"{"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/myEventBus"}"#],
    no: [r#"{"EventBusArn": "arn:aws:events:us-east-1:210987654321:event-bus/myEventBus"}"#],
);

case!(
    wildcard_escaped_star_is_a_literal_asterisk,
    r#"{ "name": [ { "wildcard": "a\\*b*" } ] }"#,
    yes: [r#"{"name": "a*b"}"#, r#"{"name": "a*bc"}"#],
    no: [r#"{"name": "axb"}"#, r#"{"name": "ab"}"#],
);

case!(
    wildcard_escaped_backslash_is_a_literal_backslash,
    r#"{ "path": [ { "wildcard": "C:\\\\*" } ] }"#,
    yes: [r#"{"path": "C:\\Windows"}"#],
    no: [r#"{"path": "C:/Windows"}"#],
);

case!(
    wildcard_star_alone_matches_every_string_but_nothing_else,
    r#"{ "name": [ { "wildcard": "*" } ] }"#,
    yes: [r#"{"name": ""}"#, r#"{"name": "anything"}"#],
    no: [r#"{"name": 5}"#, r#"{"name": null}"#, r#"{"other": "x"}"#],
);

case!(
    guide_numeric_equals,
    r#"{ "Price": [ { "numeric": [ "=", 100 ] } ] }"#,
    yes: [r#"{"Price": 100}"#, r#"{"Price": 100.0}"#, r#"{"Price": 1e2}"#],
    no: [r#"{"Price": 100.5}"#, r#"{"Price": "100"}"#],
);

case!(
    guide_numeric_range_open_below_closed_above,
    r#"{ "Price": [ { "numeric": [ ">", 10, "<=", 20 ] } ] }"#,
    yes: [r#"{"Price": 10.000001}"#, r#"{"Price": 20}"#, r#"{"Price": [5, 15]}"#],
    no: [r#"{"Price": 10}"#, r#"{"Price": 20.5}"#, r#"{"Price": [5, 25]}"#],
);

case!(
    numeric_range_closed_below_open_above,
    r#"{ "n": [ { "numeric": [ ">=", -10, "<", 0 ] } ] }"#,
    yes: [r#"{"n": -10}"#, r#"{"n": -0.5}"#],
    no: [r#"{"n": 0}"#, r#"{"n": -10.5}"#],
);

case!(
    numeric_does_not_match_events_beyond_five_billion,
    r#"{ "n": [ { "numeric": [ ">", 0 ] } ] }"#,
    yes: [r#"{"n": 5e9}"#, r#"{"n": 1}"#],
    no: [r#"{"n": 5.1e9}"#, r#"{"n": true}"#],
);

case!(
    guide_exists_and_does_not_exist,
    r#"{ "ProductName": [ { "exists": true } ], "Discount": [ { "exists": false } ] }"#,
    yes: [r#"{"ProductName": "Widget"}"#, r#"{"ProductName": ""}"#],
    no: [r#"{"ProductName": "Widget", "Discount": 0}"#, r#"{"Discount": 0}"#],
);

case!(
    guide_exists_false_holds_when_intermediate_objects_are_missing,
    r#"{ "detail": { "level1": { "level2": { "level3": { "level4": [ { "exists": false } ] } } } } }"#,
    yes: [r#"{"detail": {"level1": {"level2": "l2 value"}}}"#, r#"{"detail": "text"}"#],
    no: [r#"{"detail": {"level1": {"level2": {"level3": {"level4": "l4 value"}}}}}"#],
);

case!(
    guide_exists_true_on_the_state_field,
    r#"{ "detail": { "state": [ { "exists": true } ] } }"#,
    yes: [r#"{"detail": {"instance-id": "i-abcd1111", "state": "pending"}}"#],
    no: [r#"{"detail": {"c-count": {"c1": 100}}}"#],
);

case!(
    guide_cidr_ipv6,
    r#"{ "detail": { "sourceIPAddress": [ { "cidr": "2001:db8:1234:1a00::/64" } ] } }"#,
    yes: [
        r#"{"detail": {"sourceIPAddress": "2001:0db8:1234:1a00:0000:0000:0000:0000"}}"#,
        r#"{"detail": {"sourceIPAddress": "2001:db8:1234:1a00:ffff:ffff:ffff:ffff"}}"#,
    ],
    no: [
        r#"{"detail": {"sourceIPAddress": "2001:0db8:123f:1a01:0000:0000:0000:0000"}}"#,
        r#"{"detail": {"sourceIPAddress": "10.0.0.1"}}"#,
    ],
);

case!(
    cidr_needs_an_ip_string,
    r#"{ "detail": { "sourceIPAddress": [ { "cidr": "10.0.0.0/24" } ] } }"#,
    yes: [r#"{"detail": {"sourceIPAddress": ["192.168.0.1", "10.0.0.7"]}}"#],
    no: [
        r#"{"detail": {"sourceIPAddress": 123}}"#,
        r#"{"detail": {"sourceIPAddress": "::ffff:10.0.0.1"}}"#,
        r#"{"detail": {"sourceIPAddress": "10.0.0.1 "}}"#,
    ],
);

case!(
    exact_ip_string_matches_the_same_address_written_differently,
    r#"{ "ip": [ "2001:db8::1" ] }"#,
    yes: [r#"{"ip": "2001:0db8:0000:0000:0000:0000:0000:0001"}"#, r#"{"ip": "2001:DB8::1"}"#],
    no: [r#"{"ip": "2001:db8::2"}"#],
);

case!(
    guide_complex_example_with_multiple_matching,
    r#"{
      "time": [ { "prefix": "2017-10-02" } ],
      "detail": {
        "state": [ { "anything-but": "initializing" } ],
        "c-count": [ { "numeric": [ ">", 0, "<=", 5 ] } ],
        "d-count": [ { "numeric": [ "<", 10 ] } ],
        "x-limit": [ { "anything-but": [ 100, 200, 300 ] } ]
      }
    }"#,
    yes: [README_EVENT],
    no: [with(README_EVENT, "/detail/d-count", json!(10))],
);

case!(
    guide_duplicate_key_the_last_one_counts,
    r#"{ "detail": { "location": [ { "prefix": "us-" } ], "location": [ { "anything-but": "us-east" } ] } }"#,
    yes: [r#"{"detail": {"location": "eu-west"}}"#],
    no: [r#"{"detail": {"location": "us-east"}}"#],
);

// ---------------------------------------------------------------------------------------------
// Types and absence

case!(
    numbers_match_numerically_whatever_their_spelling,
    r#"{ "number": [ 300 ] }"#,
    yes: [r#"{"number": 300}"#, r#"{"number": 300.0}"#, r#"{"number": 3.0e2}"#, r#"{"number": 3E+2}"#],
    no: [r#"{"number": "300"}"#, r#"{"number": 300.1}"#],
);

case!(
    large_integers_such_as_account_ids_match_exactly,
    r#"{ "account": [ 123456789012 ] }"#,
    yes: [r#"{"account": 123456789012}"#],
    no: [r#"{"account": 123456789013}"#, r#"{"account": "123456789012"}"#],
);

case!(
    strings_do_not_match_numbers,
    r#"{ "code": [ "5" ] }"#,
    yes: [r#"{"code": "5"}"#],
    no: [r#"{"code": 5}"#],
);

case!(
    booleans_match_booleans_only,
    r#"{ "enabled": [ true ] }"#,
    yes: [r#"{"enabled": true}"#, r#"{"enabled": [false, true]}"#],
    no: [r#"{"enabled": false}"#, r#"{"enabled": "true"}"#, r#"{"enabled": 1}"#],
);

case!(
    field_names_are_case_sensitive,
    r#"{ "source": [ "aws.ec2" ] }"#,
    yes: [r#"{"source": "aws.ec2"}"#],
    no: [r#"{"Source": "aws.ec2"}"#],
);

case!(
    a_string_holding_json_is_not_descended_into,
    r#"{ "detail": { "my-key": [ "my-value" ] } }"#,
    yes: [r#"{"detail": {"my-key": "my-value"}}"#],
    no: [r#"{"detail": "{\"my-key\": \"my-value\"}"}"#],
);

case!(
    a_leaf_does_not_match_an_object_value,
    r#"{ "detail": [ "x" ] }"#,
    yes: [r#"{"detail": ["y", "x"]}"#],
    no: [r#"{"detail": {"x": "x"}}"#, r#"{"detail": [{"x": "x"}]}"#],
);

case!(
    one_leaf_may_mix_condition_kinds,
    r#"{ "v": [ "exact", { "prefix": "pre" }, { "numeric": [ ">", 5 ] }, null ] }"#,
    yes: [r#"{"v": "exact"}"#, r#"{"v": "prefixed"}"#, r#"{"v": 6}"#, r#"{"v": null}"#],
    no: [r#"{"v": "other"}"#, r#"{"v": 5}"#, r#"{}"#],
);

case!(
    empty_prefix_matches_every_string_but_not_other_types,
    r#"{ "source": [ { "prefix": "" } ] }"#,
    yes: [r#"{"source": "aws.ec2"}"#, r#"{"source": ""}"#],
    no: [r#"{"source": 12}"#, r#"{"source": null}"#, r#"{"other": "x"}"#],
);

case!(
    anything_but_never_matches_an_absent_field,
    r#"{ "detail": { "state": [ { "anything-but": "initializing" } ] } }"#,
    yes: [r#"{"detail": {"state": "running"}}"#],
    no: [r#"{"detail": {}}"#, r#"{"detail": {"state": {"nested": 1}}}"#, r#"{"detail": {"state": []}}"#],
);

case!(
    anything_but_matches_null_and_values_of_other_types,
    r#"{ "detail": { "command": [ { "anything-but": [ "no-message" ] } ] } }"#,
    yes: [
        r#"{"detail": {"command": null}}"#,
        r#"{"detail": {"command": 7}}"#,
        r#"{"detail": {"command": "display-message"}}"#,
    ],
    no: [r#"{"detail": {"command": "no-message"}}"#],
);

case!(
    anything_but_prefix_matches_non_strings,
    r#"{ "detail": { "state": [ { "anything-but": { "prefix": "1" } } ] } }"#,
    yes: [r#"{"detail": {"state": 12}}"#, r#"{"detail": {"state": null}}"#, r#"{"detail": {"state": "21"}}"#],
    no: [r#"{"detail": {"state": "12"}}"#],
);

case!(
    anything_but_on_an_array_matches_when_any_element_is_not_excluded,
    r#"{ "price": [ { "anything-but": [ 100, 500 ] } ] }"#,
    yes: [r#"{"price": [100, 50]}"#, r#"{"price": 100.1}"#],
    no: [r#"{"price": [100, 500]}"#, r#"{"price": 100}"#],
);

case!(
    anything_but_empty_wildcard_excludes_only_the_empty_string,
    r#"{ "FilePath": [ { "anything-but": { "wildcard": "" } } ] }"#,
    yes: [r#"{"FilePath": "dir/init/file"}"#, r#"{"FilePath": 123}"#],
    no: [r#"{"FilePath": ""}"#],
);

case!(
    or_with_anything_but_or_exists_false_on_an_absent_parent,
    r#"{ "dynamodb": { "NewImage": { "homemade": { "S": [ { "anything-but": [ "roses" ] }, { "exists": false } ] } } } }"#,
    yes: [
        r#"{"dynamodb": {"NewImage": {"purchased": {"N": "789"}}}}"#,
        r#"{"dynamodb": {"NewImage": {"homemade": {"S": "ABCD"}}}}"#,
    ],
    no: [r#"{"dynamodb": {"NewImage": {"homemade": {"S": "roses"}}}}"#],
);

case!(
    operator_names_are_ordinary_field_names_outside_or,
    r#"{ "detail": { "prefix": [ "x" ], "numeric": { "exists": [ 1 ] } } }"#,
    yes: [r#"{"detail": {"prefix": "x", "numeric": {"exists": 1}}}"#],
    no: [r#"{"detail": {"prefix": "x"}}"#],
);

case!(
    an_event_that_is_not_an_object_only_matches_absence,
    r#"{ "source": [ { "exists": false } ] }"#,
    yes: ["[]", "\"text\""],
    no: [r#"[{"source": "a"}]"#],
);

// ---------------------------------------------------------------------------------------------
// Invalid patterns

#[test]
fn text_that_is_not_json_is_a_json_error_without_a_path() {
    let e = Pattern::parse("{ \"source\": [ ").unwrap_err();
    assert!(matches!(e, PatternError::Json(_)), "{e:?}");
    assert_eq!(e.path(), None);
    assert!(e.to_string().starts_with("event pattern is not valid JSON"));
}

#[test]
fn error_messages_start_with_the_path_of_the_bad_field() {
    let e = Pattern::parse(r#"{ "detail": { "price": [ { "numeric": [ 5 ] } ] } }"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "detail.price: numeric: expected an operator (\"=\", \"<\", \"<=\", \">\" or \">=\") at position 0, found 5"
    );
    let root = Pattern::parse("{}").unwrap_err();
    assert_eq!(root.to_string(), "(root): empty objects are not allowed");
}

#[test]
fn from_value_accepts_an_already_parsed_pattern() {
    let p = Pattern::from_value(&json!({"source": ["aws.ec2"]})).unwrap();
    assert!(p.matches(&json!({"source": "aws.ec2"})));
    assert!(!p.matches(&json!({"source": "aws.s3"})));
    let e = Pattern::from_value(&json!(["aws.ec2"])).unwrap_err();
    assert_eq!(e.path(), Some(""));
}

rejected!(pattern_must_be_an_object, r#"[ "aws.ec2" ]"#, path: "", reason: "must be a JSON object, found an array");
rejected!(empty_pattern_is_rejected, "{}", path: "", reason: "empty objects are not allowed");
rejected!(empty_nested_object_is_rejected, r#"{ "detail": {} }"#, path: "detail", reason: "empty objects are not allowed");
rejected!(leaf_must_be_an_array_not_a_string, r#"{ "string": "my-value" }"#, path: "string", reason: "must be an array of conditions or a nested object, found a string");
rejected!(leaf_must_be_an_array_not_a_number, r#"{ "int": 42 }"#, path: "int", reason: "found a number");
rejected!(leaf_must_not_be_null, r#"{ "detail": { "x": null } }"#, path: "detail.x", reason: "found null");
rejected!(empty_arrays_are_rejected, r#"{ "resources": [] }"#, path: "resources", reason: "empty arrays are not allowed");
rejected!(nested_arrays_in_a_leaf_are_rejected, r#"{ "a": [ [ "x" ] ] }"#, path: "a", reason: "found an array");
rejected!(operator_names_are_case_sensitive, r#"{ "detail": { "equal": [ { "NUMERIC": [ "=", 5 ] } ] } }"#, path: "detail.equal", reason: "unknown operator \"NUMERIC\"");
rejected!(exists_in_capitals_is_unknown, r#"{ "my_key": [ { "EXISTS": true } ] }"#, path: "my_key", reason: "unknown operator \"EXISTS\"");
rejected!(operator_object_needs_exactly_one_key, r#"{ "a": [ { "prefix": "x", "suffix": "y" } ] }"#, path: "a", reason: "exactly one key, found prefix, suffix");
rejected!(empty_operator_object_is_rejected, r#"{ "a": [ {} ] }"#, path: "a", reason: "must not be empty");
rejected!(prefix_needs_a_string, r#"{ "a": [ { "prefix": 5 } ] }"#, path: "a", reason: "prefix: expected a string or {\"equals-ignore-case\": string}, found a number");
rejected!(prefix_object_only_takes_equals_ignore_case, r#"{ "a": [ { "prefix": { "suffix": "x" } } ] }"#, path: "a", reason: "prefix: unsupported operator \"suffix\"");
rejected!(suffix_equals_ignore_case_needs_a_string, r#"{ "a": [ { "suffix": { "equals-ignore-case": [ "x" ] } } ] }"#, path: "a", reason: "suffix: equals-ignore-case: expected a string, found an array");
rejected!(equals_ignore_case_does_not_take_a_list, r#"{ "detail-type": [ { "equals-ignore-case": [ "ec2 instance state-change notification" ] } ] }"#, path: "detail-type", reason: "equals-ignore-case: expected a string, found an array");
rejected!(equals_ignore_case_does_not_take_an_operator, r#"{ "detail-type": [ { "equals-ignore-case": { "prefix": "ec2" } } ] }"#, path: "detail-type", reason: "equals-ignore-case: expected a string, found an object");
rejected!(wildcard_rejects_consecutive_stars, r#"{ "a": [ { "wildcard": "a**b" } ] }"#, path: "a", reason: "wildcard: consecutive wildcard characters at position 1");
rejected!(wildcard_rejects_other_escapes, r#"{ "a": [ { "wildcard": "a\\d" } ] }"#, path: "a", reason: "wildcard: invalid escape at position 1");
rejected!(wildcard_rejects_a_trailing_backslash, r#"{ "a": [ { "wildcard": "a\\" } ] }"#, path: "a", reason: "invalid escape");
rejected!(wildcard_needs_a_string, r#"{ "a": [ { "wildcard": [ "a*" ] } ] }"#, path: "a", reason: "wildcard: expected a string, found an array");
rejected!(anything_but_null_is_rejected, r#"{ "detail": { "state": [ { "anything-but": null } ] } }"#, path: "detail.state", reason: "anything-but: expected a string, a number, a list of strings or of numbers, or an operator object, found null");
rejected!(anything_but_boolean_is_rejected, r#"{ "s": [ { "anything-but": true } ] }"#, path: "s", reason: "found a boolean");
rejected!(anything_but_list_with_null_is_rejected, r#"{ "detail": { "state": [ { "anything-but": [ "stopped", null ] } ] } }"#, path: "detail.state", reason: "only strings or only numbers, found null");
rejected!(anything_but_list_must_not_mix_types, r#"{ "s": [ { "anything-but": [ "a", 1 ] } ] }"#, path: "s", reason: "only strings or only numbers, not both");
rejected!(anything_but_list_must_not_be_empty, r#"{ "s": [ { "anything-but": [] } ] }"#, path: "s", reason: "must not be empty");
rejected!(anything_but_rejects_unsupported_operators, r#"{ "s": [ { "anything-but": { "numeric": [ ">", 1 ] } } ] }"#, path: "s", reason: "anything-but: unsupported operator \"numeric\"");
rejected!(anything_but_prefix_must_not_be_empty, r#"{ "detail": { "FileName": [ { "anything-but": { "prefix": "" } } ] } }"#, path: "detail.FileName", reason: "anything-but: prefix: must not be empty");
rejected!(anything_but_suffix_list_must_not_hold_an_empty_string, r#"{ "f": [ { "anything-but": { "suffix": [ ".png", "" ] } } ] }"#, path: "f", reason: "suffix: must not be empty");
rejected!(anything_but_prefix_takes_no_equals_ignore_case, r#"{ "f": [ { "anything-but": { "prefix": { "equals-ignore-case": "file" } } } ] }"#, path: "f", reason: "prefix: expected a string or a list of strings, found an object");
rejected!(anything_but_prefix_needs_strings, r#"{ "s": [ { "anything-but": { "prefix": 123 } } ] }"#, path: "s", reason: "prefix: expected a string or a list of strings, found a number");
rejected!(anything_but_wildcard_needs_strings, r#"{ "f": [ { "anything-but": { "wildcard": 123 } } ] }"#, path: "f", reason: "wildcard: expected a string or a list of strings, found a number");
rejected!(anything_but_wildcard_list_needs_strings, r#"{ "f": [ { "anything-but": { "wildcard": [ "*/lib/*", 1 ] } } ] }"#, path: "f", reason: "a list with a non-string element");
rejected!(anything_but_wildcard_is_validated, r#"{ "f": [ { "anything-but": { "wildcard": [ "ok*", "bad**" ] } } ] }"#, path: "f", reason: "anything-but: wildcard: consecutive wildcard characters");
rejected!(anything_but_equals_ignore_case_needs_strings, r#"{ "s": [ { "anything-but": { "equals-ignore-case": 123 } } ] }"#, path: "s", reason: "equals-ignore-case: expected a string or a list of strings, found a number");
rejected!(anything_but_operator_object_needs_one_key, r#"{ "s": [ { "anything-but": { "prefix": "a", "suffix": "b" } } ] }"#, path: "s", reason: "expected an object with one of prefix, suffix");
rejected!(anything_but_numbers_are_range_checked, r#"{ "n": [ { "anything-but": [ 1, 6e9 ] } ] }"#, path: "n", reason: "out of range");
rejected!(numeric_needs_an_array, r#"{ "n": [ { "numeric": ">" } ] }"#, path: "n", reason: "numeric: expected an array such as");
rejected!(numeric_needs_an_operator_first, r#"{ "n": [ { "numeric": [] } ] }"#, path: "n", reason: "numeric: expected an operator");
rejected!(numeric_rejects_unknown_operators, r#"{ "n": [ { "numeric": [ "==", 5 ] } ] }"#, path: "n", reason: "found \"==\"");
rejected!(numeric_operand_must_be_a_number, r#"{ "n": [ { "numeric": [ ">", "5" ] } ] }"#, path: "n", reason: "the value of \">\" must be a number, found \"5\"");
rejected!(numeric_second_bound_needs_a_value, r#"{ "detail": { "c-count": [ { "numeric": [ ">", 0, "<" ] } ] } }"#, path: "detail.c-count", reason: "numeric: the value of \"<\" is missing");
rejected!(numeric_rejects_two_lower_bounds, r#"{ "detail": { "c-count": [ { "numeric": [ ">", 0, ">", 0 ] } ] } }"#, path: "detail.c-count", reason: "numeric: bad range operator \">\"");
rejected!(numeric_upper_bound_must_come_last, r#"{ "n": [ { "numeric": [ "<", 10, ">", 0 ] } ] }"#, path: "n", reason: "too many elements: an upper bound must come last");
rejected!(numeric_equals_takes_one_number, r#"{ "n": [ { "numeric": [ "=", 5, "<", 10 ] } ] }"#, path: "n", reason: "too many elements: \"=\" takes a single number");
rejected!(numeric_range_has_at_most_two_bounds, r#"{ "n": [ { "numeric": [ ">", 0, "<", 10, "<", 20 ] } ] }"#, path: "n", reason: "at most one lower and one upper bound");
rejected!(numeric_lower_bound_must_be_below_the_upper, r#"{ "n": [ { "numeric": [ ">=", 10, "<=", 10 ] } ] }"#, path: "n", reason: "lower bound (10) must be less than the upper bound (10)");
rejected!(numeric_operands_are_limited_to_five_billion, r#"{ "n": [ { "numeric": [ ">", 6e9 ] } ] }"#, path: "n", reason: "out of range");
rejected!(numeric_operands_have_at_most_six_decimals, r#"{ "n": [ { "numeric": [ "=", 0.1234567 ] } ] }"#, path: "n", reason: "more than 6 digits after the decimal point");
rejected!(cidr_rejects_text_that_is_not_an_address, r#"{ "detail": { "sourceIPAddress": [ { "cidr": "bad-filter" } ] } }"#, path: "detail.sourceIPAddress", reason: "cidr: malformed CIDR \"bad-filter\"");
rejected!(cidr_rejects_a_bad_address_before_the_mask, r#"{ "ip": [ { "cidr": "bad-/64filter" } ] }"#, path: "ip", reason: "is not an IP address");
rejected!(cidr_rejects_bad_ipv6, r#"{ "ip": [ { "cidr": "xxxx:db8:1234:1a00::/64" } ] }"#, path: "ip", reason: "is not an IP address");
rejected!(cidr_needs_a_string, r#"{ "ip": [ { "cidr": [ "bad-type" ] } ] }"#, path: "ip", reason: "cidr: expected a string");
rejected!(cidr_needs_a_prefix_length, r#"{ "ip": [ { "cidr": "10.0.0.0" } ] }"#, path: "ip", reason: "expected address/prefix-length");
rejected!(cidr_rejects_two_slashes, r#"{ "ip": [ { "cidr": "10.0.0.0/8/8" } ] }"#, path: "ip", reason: "expected address/prefix-length");
rejected!(cidr_prefix_length_must_be_an_integer, r#"{ "ip": [ { "cidr": "10.0.0.0/x" } ] }"#, path: "ip", reason: "must be an integer");
rejected!(cidr_ipv4_prefix_length_is_below_32, r#"{ "ip": [ { "cidr": "10.0.0.1/32" } ] }"#, path: "ip", reason: "an IPv4 prefix length must be less than 32");
rejected!(cidr_ipv6_prefix_length_is_below_128, r#"{ "ip": [ { "cidr": "2001:db8::/200" } ] }"#, path: "ip", reason: "an IPv6 prefix length must be less than 128");
rejected!(exists_needs_a_boolean, r#"{ "a": [ { "exists": "true" } ] }"#, path: "a", reason: "exists: expected true or false, found a string");
rejected!(or_needs_two_alternatives, r#"{ "$or": [ { "a": [ 1 ] } ] }"#, path: "$or", reason: "at least 2 objects, found 1 element");
rejected!(or_must_not_be_empty, r#"{ "source": [ "x" ], "$or": [] }"#, path: "$or", reason: "found 0 elements");
rejected!(or_must_be_an_array, r#"{ "$or": { "a": [ 1 ] } }"#, path: "$or", reason: "must be an array of at least 2 objects, found an object");
rejected!(or_alternatives_must_be_objects, r#"{ "detail": { "$or": [ { "a": [ 1 ] }, [ "b" ] ] } }"#, path: "detail.$or[1]", reason: "$or elements must be objects, found an array");
rejected!(or_alternatives_must_not_be_empty, r#"{ "$or": [ { "a": [ 1 ] }, {} ] }"#, path: "$or[1]", reason: "empty objects are not allowed");
rejected!(or_alternatives_cannot_use_operator_names_as_fields, r#"{ "$or": [ { "numeric": [ 123 ] }, { "prefix": [ "abc" ] } ] }"#, path: "$or[0].numeric", reason: "\"numeric\" is an operator name and cannot be a field name inside $or");
rejected!(or_reserved_names_apply_to_nested_objects_too, r#"{ "$or": [ { "a": { "exists": [ 1 ] } }, { "b": [ 2 ] } ] }"#, path: "$or[0].a.exists", reason: "operator name");
rejected!(errors_inside_or_name_the_alternative, r#"{ "detail": { "$or": [ { "a": [ 1 ] }, { "price": [ { "numeric": [ ">", "x" ] } ] } ] } }"#, path: "detail.$or[1].price", reason: "numeric: the value of \">\" must be a number");
