//! `Conditions`: evaluation, dropped resources and outputs, `Fn::If` with `AWS::NoValue`.

use serde_json::json;

use crate::{check_err, check_ok, check_ok_with, overrides};

const TEMPLATE: &str = r#"Parameters:
  Env: {Type: String, Default: dev}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsDev: !Not [!Condition IsProd]
  Both: !And [!Condition IsDev, !Equals [a, a]]
  Either: !Or [!Condition IsProd, {"Fn::Equals": [1, "1"]}]
  Never: {"Fn::And": [{Condition: IsProd}, {Condition: IsDev}]}
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: provided.al2023
      Code: {ZipFile: x}
      Tags: [!If [IsProd, {Key: tier, Value: prod}, !Ref AWS::NoValue], {Key: team, Value: a}]
      ReservedConcurrentExecutions: !If [IsProd, 10, !Ref AWS::NoValue]
      Description: !If [Both, both, neither]
  ProdQueue:
    Type: AWS::SQS::Queue
    Condition: IsProd
Outputs:
  QueueUrl:
    Condition: IsProd
    Value: !Ref ProdQueue
  Flags:
    Value: !Join [",", [!If [IsDev, dev, x], !If [Either, either, x], !If [Never, never, none]]]
"#;

#[test]
fn conditions_combine_with_and_or_not_and_condition() {
    check_ok(TEMPLATE, |stack| {
        assert_eq!(stack.outputs["Flags"], json!("dev,either,none"));
        assert_eq!(
            stack.resources["Fn"].properties["Description"],
            json!("both")
        );
    });
}

#[test]
fn a_false_condition_drops_the_resource_and_its_output() {
    check_ok(TEMPLATE, |stack| {
        assert!(!stack.resources.contains_key("ProdQueue"));
        assert!(!stack.outputs.contains_key("QueueUrl"));
        assert!(stack.warnings.is_empty(), "{:?}", stack.warnings);
    });
}

#[test]
fn if_with_novalue_removes_the_key_and_the_list_element() {
    check_ok(TEMPLATE, |stack| {
        let props = &stack.resources["Fn"].properties;
        assert_eq!(props["Tags"], json!([{"Key": "team", "Value": "a"}]));
        assert!(props.get("ReservedConcurrentExecutions").is_none());
        assert_eq!(stack.functions[0].reserved_concurrent_executions, None);
    });
}

#[test]
fn a_true_condition_keeps_the_resource_and_takes_the_other_branch() {
    check_ok_with(TEMPLATE, &overrides(&[("Env", "prod")]), |stack| {
        assert!(stack.resources.contains_key("ProdQueue"));
        assert_eq!(
            stack.outputs["QueueUrl"],
            json!("http://127.0.0.1:4566/123456789012/ProdQueue")
        );
        assert_eq!(stack.functions[0].reserved_concurrent_executions, Some(10));
        assert_eq!(
            stack.resources["Fn"].properties["Tags"],
            json!([{"Key": "tier", "Value": "prod"}, {"Key": "team", "Value": "a"}])
        );
        assert_eq!(stack.outputs["Flags"], json!("x,either,none"));
        // The queue is served: nothing to warn about.
        assert_eq!(stack.warnings.len(), 0);
    });
}

#[test]
fn ref_to_a_dropped_resource_is_an_error() {
    check_err(
        r#"Conditions:
  Off: !Equals [a, b]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Condition: Off
  Topic:
    Type: AWS::SNS::Topic
    DependsOn: Queue
    Properties:
      DisplayName: !GetAtt Queue.QueueName
"#,
        &[
            "template.yaml:9:16: Resources.Topic.DependsOn: DependsOn names Resources.Queue, which is not created because its condition is false",
            "template.yaml:11:20: Resources.Topic.Properties.DisplayName: Fn::GetAtt to Resources.Queue, which is not created because its condition \"Off\" is false; guard this value with Fn::If [Off, ...]",
        ],
    );
}

#[test]
fn condition_mistakes_are_reported() {
    check_err(
        r#"Conditions:
  Loop: !Condition Loop
  UsesResource: !Equals [!Ref Queue, x]
  NotACondition: !Ref Queue
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Condition: Missing
"#,
        &[
            "template.yaml:2:9: Conditions.Loop.Condition: condition \"Loop\" depends on itself",
            "template.yaml:3:26: Conditions.UsesResource.Fn::Equals[0]: conditions can only use parameters and pseudo parameters, not the resource \"Queue\"",
            "template.yaml:4:18: Conditions.NotACondition: Ref cannot be used as a condition; use Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition",
            "template.yaml:8:16: Resources.Queue.Condition: unknown condition \"Missing\"; declare it under Conditions",
        ],
    );
}
