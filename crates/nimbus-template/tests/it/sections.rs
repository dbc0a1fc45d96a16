//! Top-level sections, resources, outputs, mappings and JSON templates.

use serde_json::json;

use crate::{check_err, check_ok, warnings};

#[test]
fn json_templates_load_like_yaml() {
    check_ok(
        r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Transform": "AWS::Serverless-2016-10-31",
  "Description": "json",
  "Parameters": {"Stage": {"Type": "String", "Default": "dev"}},
  "Resources": {
    "Hello": {
      "Type": "AWS::Serverless::Function",
      "Properties": {
        "Runtime": "provided.al2023",
        "CodeUri": "./hello",
        "Timeout": 20,
        "Environment": {"Variables": {"STAGE": {"Ref": "Stage"}}}
      }
    }
  },
  "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Hello", "Arn"]}}}
}"#,
        |stack| {
            let f = &stack.functions[0];
            assert_eq!(f.timeout, 20);
            assert_eq!(f.environment["STAGE"], "dev");
            assert_eq!(f.line, 7);
            assert_eq!(
                stack.outputs["Arn"],
                json!("arn:aws:lambda:us-east-1:123456789012:function:Hello")
            );
        },
    );
}

#[test]
fn json_errors_have_lines_too() {
    check_err(
        r#"{
  "Resources": {
    "Hello": {
      "Type": "AWS::Lambda::Function",
      "Properties": {"Runtime": "provided.al2023", "Code": {"ZipFile": "x"}, "Timeout": 0}
    }
  }
}"#,
        &["template.yaml:5:89: Resources.Hello.Properties.Timeout: expected an integer between 1 and 900 (seconds), got 0"],
    );
}

#[test]
fn yaml_scalars_keep_their_types_in_resolved_properties() {
    check_ok(
        r#"Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      Tags: {Int: 123, Quoted: "123", Bool: true, Float: 1.5, Null: ~, Octal: 0o10}
"#,
        |stack| {
            assert_eq!(
                stack.resources["Topic"].properties["Tags"],
                json!({"Int": 123, "Quoted": "123", "Bool": true, "Float": 1.5, "Null": null, "Octal": 8})
            );
        },
    );
}

#[test]
fn resources_a_local_run_needs_nothing_from_are_accepted_without_warnings() {
    check_ok(
        r#"Resources:
  Role:
    Type: AWS::IAM::Role
  Vpc:
    Type: AWS::EC2::VPC
  Key:
    Type: AWS::KMS::Key
  Allow:
    Type: AWS::Lambda::Permission
  Policy:
    Type: AWS::SQS::QueuePolicy
  Cert:
    Type: AWS::CertificateManager::Certificate
  Domain:
    Type: AWS::ApiGateway::DomainName
  Group:
    Type: AWS::ResourceGroups::Group
"#,
        |stack| {
            assert!(warnings(stack).is_empty(), "{:?}", warnings(stack));
            let ids: Vec<&str> = stack
                .not_emulated
                .iter()
                .map(|(id, _)| id.as_str())
                .collect();
            assert_eq!(
                ids,
                ["Allow", "Cert", "Domain", "Group", "Key", "Policy", "Role", "Vpc"]
            );
            assert_eq!(stack.resources.len(), 8);
        },
    );
}

#[test]
fn unserved_resources_warn_but_stay_in_the_model_resolved() {
    check_ok(
        r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Stream:
    Type: AWS::Kinesis::Stream
    Properties: {Name: !Sub "${AWS::StackName}-jobs"}
  Pool:
    Type: AWS::Cognito::UserPool
    Properties: {UserPoolName: orders}
  Custom:
    Type: Custom::Seeder
"#,
        |stack| {
            assert_eq!(
                warnings(stack),
                [
                    "template.yaml:3:3: Resources.Stream: resource type AWS::Kinesis::Stream is not served by nimbus yet; ignoring Resources.Stream",
                    "template.yaml:6:3: Resources.Pool: resource type AWS::Cognito::UserPool is not served by nimbus yet; ignoring Resources.Pool",
                    "template.yaml:9:3: Resources.Custom: resource type Custom::Seeder is not served by nimbus yet; ignoring Resources.Custom",
                ]
            );
            let t = &stack.resources["Stream"];
            assert_eq!(t.resource_type, "AWS::Kinesis::Stream");
            assert_eq!(t.properties, json!({"Name": "nimbus-jobs"}));
            assert_eq!(stack.resources["Custom"].properties, json!({}));
            assert_eq!(stack.resources["Custom"].metadata, json!({}));
            assert!(stack.functions.is_empty());
        },
    );
}

#[test]
fn mappings_and_yaml_anchors_resolve() {
    check_ok(
        r#"Mappings:
  Sizes:
    small: {Memory: 256}
Resources:
  A:
    Type: AWS::Lambda::Function
    Properties: &common
      Runtime: provided.al2023
      Code: {ZipFile: x}
      MemorySize: !FindInMap [Sizes, small, Memory]
  B:
    Type: AWS::Lambda::Function
    Properties: *common
"#,
        |stack| {
            assert_eq!(stack.functions[0].memory_size, 256);
            assert_eq!(stack.functions[1].memory_size, 256);
        },
    );
}

#[test]
fn outputs_resolve_and_metadata_is_kept() {
    check_ok(
        r#"Resources:
  Queue:
    Type: AWS::SQS::Queue
    Metadata: {Owner: !Ref AWS::AccountId}
Outputs:
  Url:
    Description: the queue
    Value: !Ref Queue
    Export: {Name: !Sub "${AWS::StackName}-url"}
"#,
        |stack| {
            assert_eq!(
                stack.outputs["Url"],
                json!("http://127.0.0.1:4566/123456789012/Queue")
            );
            assert_eq!(
                stack.resources["Queue"].metadata,
                json!({"Owner": "123456789012"})
            );
        },
    );
}

#[test]
fn template_structure_errors_are_reported() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "unknown top-level section",
            "Resource:\n  Q: {Type: AWS::SQS::Queue}\n",
            &[
                "template.yaml:1:1: Resource: unknown top-level section \"Resource\" (did you mean \"Resources\"?); a template has AWSTemplateFormatVersion, Transform, Description, Metadata, Parameters, Rules, Mappings, Conditions, Globals, Resources, Outputs",
                "template.yaml:1:1: Resources: missing Resources section; a template needs at least one resource",
            ],
        ),
        (
            "empty resources",
            "Resources: {}\n",
            &["template.yaml:1:1: Resources: Resources is empty; declare at least one resource"],
        ),
        (
            "SAM resource without the transform",
            "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {Runtime: provided.al2023, CodeUri: .}\n",
            &["template.yaml:2:3: Resources.Fn.Type: AWS::Serverless::Function needs \"Transform: AWS::Serverless-2016-10-31\" at the top of the template; CloudFormation refuses SAM resources without it"],
        ),
        (
            "unsupported transform",
            "Transform: AWS::LanguageExtensions\nResources:\n  Q: {Type: AWS::SQS::Queue}\n",
            &["template.yaml:1:12: Transform: transform \"AWS::LanguageExtensions\" is not supported by nimbus; only AWS::Serverless-2016-10-31 is"],
        ),
        (
            "wrong format version",
            "AWSTemplateFormatVersion: 2012-01-01\nResources:\n  Q: {Type: AWS::SQS::Queue}\n",
            &["template.yaml:1:27: AWSTemplateFormatVersion: expected \"2010-09-09\", the only template format version, got \"2012-01-01\""],
        ),
        (
            "resource without a type and with an unknown attribute",
            "Resources:\n  Q:\n    Properties: {}\n    Condtion: X\n",
            &[
                "template.yaml:2:3: Resources.Q: missing Type; add e.g. \"Type: AWS::Serverless::Function\"",
                "template.yaml:4:5: Resources.Q.Condtion: unknown resource attribute \"Condtion\" (did you mean \"Condition\"?); resources take Type, Properties, Metadata, Condition, DependsOn, DeletionPolicy, UpdateReplacePolicy, UpdatePolicy, CreationPolicy, IgnoreGlobals, Connectors",
            ],
        ),
        (
            "malformed type and non-alphanumeric logical id",
            "Resources:\n  My-Queue: {Type: SQS::Queue}\n",
            &[
                "template.yaml:2:3: Resources.My-Queue: a logical id must be alphanumeric (A-Z, a-z, 0-9)",
                "template.yaml:2:20: Resources.My-Queue.Type: \"SQS::Queue\" is not a resource type; types look like AWS::Service::Resource",
            ],
        ),
        (
            "DependsOn an unknown resource",
            "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    DependsOn: [Topc]\n  Topic: {Type: AWS::SNS::Topic}\n",
            &["template.yaml:4:17: Resources.Q.DependsOn[0]: DependsOn names \"Topc\", which is not a resource (did you mean \"Topic\"?)"],
        ),
        (
            "a name used as parameter and resource",
            "Parameters:\n  Q: {Type: String, Default: x}\nResources:\n  Q: {Type: AWS::SQS::Queue}\n",
            &["template.yaml:4:3: Resources.Q: \"Q\" is both a parameter and a resource; logical ids must be unique"],
        ),
        (
            "output without a value",
            "Resources:\n  Q: {Type: AWS::SQS::Queue}\nOutputs:\n  Url: {Description: x}\n",
            &["template.yaml:4:3: Outputs.Url: missing Value"],
        ),
        (
            "empty template",
            "# nothing here\n",
            &["template.yaml:1:1: (template): the template is empty; it needs at least a Resources section"],
        ),
        (
            "a template that is not a map",
            "- a\n- b\n",
            &["template.yaml:1:1: (template): a template must be a map of sections (AWSTemplateFormatVersion, Resources, ...), got a list of 2 values"],
        ),
    ];
    for (what, yaml, expected) in cases {
        let err = crate::load_with(yaml, &Default::default()).expect_err(what);
        let got: Vec<String> = err.errors.iter().map(ToString::to_string).collect();
        assert_eq!(got, *expected, "{what}");
    }
}

#[test]
fn rules_are_accepted_with_a_warning() {
    check_ok(
        "Rules:\n  R: {Assertions: []}\nResources:\n  Q: {Type: AWS::SQS::Queue}\n",
        |stack| {
            assert_eq!(
                warnings(stack)[0],
                "template.yaml:1:1: Rules: Rules are not evaluated by nimbus; their assertions are not checked"
            );
        },
    );
}

#[test]
fn misspelled_sam_properties_are_warned_about_with_a_suggestion() {
    let yaml = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageNme: prod
      Auth:
        ApiKeysRequired: true
  F:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: f
      Runtime: python3.12
      Handler: app.h
      Timout: 3
      Events:
        Get:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Pth: /x
            Method: get
"#;
    check_ok(yaml, |stack| {
        assert_eq!(
            warnings(stack),
            [
                "template.yaml:6:7: Resources.Api.Properties.StageNme: \"StageNme\" is not a property of AWS::Serverless::Api (did you mean \"StageName\"?); nimbus ignores it",
                "template.yaml:8:9: Resources.Api.Properties.Auth.ApiKeysRequired: \"ApiKeysRequired\" is not a property of an Api's Auth (did you mean \"ApiKeyRequired\"?); nimbus ignores it",
                "template.yaml:15:7: Resources.F.Properties.Timout: \"Timout\" is not a property of AWS::Serverless::Function (did you mean \"Timeout\"?); nimbus ignores it",
                "template.yaml:21:13: Resources.F.Properties.Events.Get.Properties.Pth: \"Pth\" is not a property of an Api event (did you mean \"Path\"?); nimbus ignores it",
            ]
        );
    });
}

#[test]
fn an_unknown_event_type_is_an_error() {
    let yaml = r#"Transform: AWS::Serverless-2016-10-31
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: f
      Runtime: python3.12
      Handler: app.h
      Events:
        Get:
          Type: HttpAPI
"#;
    check_err(
        yaml,
        &["template.yaml:11:17: Resources.F.Properties.Events.Get.Type: unknown event type \"HttpAPI\" (did you mean \"HttpApi\"?); SAM's event types are AlexaSkill, Api, CloudWatchEvent, CloudWatchLogs, Cognito, DocumentDB, DynamoDB, EventBridgeRule, HttpApi, IoTRule, Kinesis, MQ, MSK, S3, Schedule, ScheduleV2, SelfManagedKafka, SNS, SQS"],
    );
}
