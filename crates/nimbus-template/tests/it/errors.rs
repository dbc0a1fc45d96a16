//! YAML-level errors and the collection of many errors in one report.

use crate::check_err;

#[test]
fn yaml_syntax_errors_have_line_and_column() {
    check_err(
        r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
   Properties: {}
"#,
        &["template.yaml:5:14: Resources: invalid YAML: while parsing a block mapping, did not find expected key"],
    );
}

#[test]
fn unclosed_flow_sequence_is_a_syntax_error() {
    check_err(
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    DependsOn: [A, B\n",
        &["template.yaml:5:1: Resources.Q.DependsOn[2]: invalid YAML: while parsing a flow sequence, expected ',' or ']'"],
    );
}

#[test]
fn duplicate_keys_are_errors() {
    check_err(
        r#"Resources:
  Q:
    Type: AWS::SQS::Queue
  Q:
    Type: AWS::SNS::Topic
"#,
        &["template.yaml:4:3: Resources.Q: duplicate key \"Q\": it is already set on line 2; keep only one"],
    );
}

#[test]
fn unknown_short_form_tags_are_errors() {
    check_err(
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: !Reff x}\n",
        &["template.yaml:4:29: Resources.Q.Properties.QueueName: unknown tag \"!Reff\"; CloudFormation's short forms are !Ref, !Condition, !GetAtt, !Sub, !Join, !Select, !Split, !If, !Equals, !And, !Or, !Not, !FindInMap, !Base64, !GetAZs, !ImportValue, !Cidr, !Length, !ToJsonString, !Transform"],
    );
}

#[test]
fn getatt_short_form_needs_a_dot() {
    check_err(
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: !GetAtt Q}\n",
        &["template.yaml:4:29: Resources.Q.Properties.QueueName: !GetAtt expects \"Resource.Attribute\", got \"Q\""],
    );
}

#[test]
fn all_errors_are_reported_together_in_line_order() {
    check_err(
        r#"Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String}
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Timeout: 0
      Environment:
        Variables:
          QUEUE: !Ref Queue
Outputs:
  Arn:
    Value: !GetAtt Hello.Name
"#,
        &[
            "template.yaml:7:5: Resources.Hello.Properties: missing Runtime; set it on the function or in Globals.Function, e.g. \"Runtime: provided.al2023\"",
            "template.yaml:9:16: Resources.Hello.Properties.Timeout: expected an integer between 1 and 900 (seconds), got 0",
            "template.yaml:12:18: Resources.Hello.Properties.Environment.Variables.QUEUE: Ref to \"Queue\", which is not a parameter, resource or pseudo parameter",
            "template.yaml:15:12: Outputs.Arn.Value: Resources.Hello (AWS::Serverless::Function) has no attribute \"Name\"; it has Arn",
        ],
    );
}

#[test]
fn warnings_found_before_a_failure_are_kept_on_the_error() {
    let err = crate::load_with(
        "Resources:\n  Q: {Type: AWS::SQS::Queue}\n  T:\n    Type: AWS::Kinesis::Stream\n    Properties: {Name: !Ref Nope}\n",
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(err.errors.len(), 1);
    // The stream is not served (the queue is).
    assert_eq!(err.warnings.len(), 1);
    assert!(
        err.to_string()
            .starts_with("1 error(s) in template:\n  template.yaml:5:24: "),
        "{err}"
    );
}

#[test]
fn malformed_input_yields_diagnostics_not_panics() {
    let cases = [
        "",
        "---\n---\n",
        "Resources:\n",
        "Resources: [a]\n",
        "Resources: {Q: null}\n",
        "Resources: {Q: {Type: 5}}\n",
        "Resources: {Q: {Type: AWS::SQS::Queue, Properties: [a]}}\n",
        "Resources: {Q: {Type: AWS::SQS::Queue, DependsOn: {a: b}}}\n",
        "Parameters: x\nOutputs: [a]\nConditions: 1\nMappings: [a]\nResources: {Q: {Type: AWS::SQS::Queue}}\n",
        "Resources: {Q: {Type: AWS::SQS::Queue, Properties: {A: !GetAtt , B: !Sub [x], C: !If [a], D: !Ref [a], E: {\"Fn::GetAtt\": [Q]}, F: !Select [0], G: !Split [\"\", x], H: !FindInMap [a, b, c, d], I: !GetAZs [a], J: !Base64 [a], K: !Join [a]}}}}\n",
        "Resources: {Q: {Type: AWS::SQS::Queue, Properties: {200: x, ? [a]: b}}}\n",
        "Resources: {Q: {Type: AWS::SQS::Queue, Properties: {A: *nope}}}\n",
        "Resources:\n\tQ: 1\n",
        "Conditions: {A: !Equals [a], B: !And [!Condition A], C: !Not [a, b], D: {Condition: [x]}}\nResources: {Q: {Type: AWS::SQS::Queue, Condition: B}}\n",
        "Resources: {F: {Type: AWS::Serverless::Function, Properties: {Runtime: 5, CodeUri: [x], Handler: {a: b}, Events: [x], Environment: x}}}\n",
        "Transform: [AWS::Serverless-2016-10-31, 5]\nResources: {F: {Type: AWS::Lambda::Function, Properties: {Code: x, Runtime: provided.al2023}}}\n",
    ];
    for yaml in cases {
        match crate::load_with(yaml, &Default::default()) {
            Ok(_) => panic!("expected errors for {yaml:?}"),
            Err(e) => assert!(!e.errors.is_empty(), "{yaml:?}"),
        }
    }
}
