//! Functions: defaults, limits and what nimbus cannot run.

use std::collections::BTreeMap;

use serde_json::json;

use nimbus_template::Code;

use crate::{check_err, check_ok};

#[test]
fn a_minimal_function_gets_lambdas_defaults() {
    check_ok(
        r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      CodeUri: ./hello
"#,
        |stack| {
            let f = &stack.functions[0];
            assert_eq!(f.logical_id, "Hello");
            assert_eq!(f.name, "Hello");
            assert_eq!(f.runtime, "provided.al2023");
            assert_eq!(f.handler, None);
            assert_eq!(f.code, Code::Uri("./hello".into()));
            assert_eq!((f.memory_size, f.timeout), (128, 3));
            assert_eq!(f.architectures, ["x86_64"]);
            assert!(f.environment.is_empty() && f.events.is_empty());
            assert_eq!(f.line, 3);
            assert_eq!(stack.resources["Hello"].line, 3);
            assert!(stack.warnings.is_empty());
        },
    );
}

#[test]
fn every_function_setting_is_read() {
    check_ok(
        r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Weather:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties: {Binary: weather}
    Properties:
      FunctionName: weather-api
      Runtime: provided.al2023
      Handler: bootstrap
      CodeUri: .
      MemorySize: 512
      Timeout: "30"
      Architectures: [arm64]
      ReservedConcurrentExecutions: 0
      AutoPublishAlias: live
      ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: 2}
      Tracing: Active
      Environment:
        Variables: {RATE: 10, DEBUG: true, RATIO: 0.5, NAME: w}
      Events:
        Get:
          Type: HttpApi
          Properties: {Path: /weather, Method: GET}
"#,
        |stack| {
            let f = &stack.functions[0];
            assert_eq!(f.name, "weather-api");
            assert_eq!(f.handler.as_deref(), Some("bootstrap"));
            assert_eq!((f.memory_size, f.timeout), (512, 30));
            assert_eq!(f.architectures, ["arm64"]);
            assert_eq!(f.reserved_concurrent_executions, Some(0));
            assert_eq!(f.provisioned_concurrency, Some(2));
            assert_eq!(f.auto_publish_alias.as_deref(), Some("live"));
            assert_eq!(f.tracing.as_deref(), Some("Active"));
            assert_eq!(f.build_method.as_deref(), Some("rust-cargolambda"));
            assert_eq!(f.build_binary.as_deref(), Some("weather"));
            let env: BTreeMap<&str, &str> = f
                .environment
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(
                env,
                BTreeMap::from([
                    ("DEBUG", "true"),
                    ("NAME", "w"),
                    ("RATE", "10"),
                    ("RATIO", "0.5")
                ])
            );
            assert_eq!(
                f.events["Get"],
                json!({"Type": "HttpApi", "Properties": {"Path": "/weather", "Method": "GET"}})
            );
            assert_eq!(f.properties["MemorySize"], json!(512));
        },
    );
}

#[test]
fn a_plain_lambda_function_with_zipfile_is_inline_code() {
    check_ok(
        r#"Resources:
  Inline:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Code:
        ZipFile: |
          def handler(event, context):
              return event
      TracingConfig: {Mode: PassThrough}
"#,
        |stack| {
            let f = &stack.functions[0];
            assert_eq!(
                f.code,
                Code::Inline("def handler(event, context):\n    return event\n".into())
            );
            assert_eq!(f.tracing.as_deref(), Some("PassThrough"));
        },
    );
}

#[test]
fn layers_resolve_to_version_arns_and_code_uri_defaults_to_the_template_folder() {
    check_ok(
        r#"Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Layers: [arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV2:79]
Resources:
  Shared:
    Type: AWS::Serverless::LayerVersion
    Metadata: {BuildMethod: python3.12}
    Properties:
      ContentUri: layers/shared
  Named:
    Type: AWS::Lambda::LayerVersion
    Properties:
      LayerName: tools
      Content: {S3Bucket: b, S3Key: k}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Layers: [!Ref Shared, !Ref Named]
"#,
        |stack| {
            let f = &stack.functions[0];
            assert_eq!(f.code, Code::Uri(".".into()));
            // Globals' list entries come first, as SAM merges lists.
            assert_eq!(
                f.layers,
                [
                    "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV2:79",
                    "arn:aws:lambda:us-east-1:123456789012:layer:Shared:1",
                    "arn:aws:lambda:us-east-1:123456789012:layer:tools:1",
                ]
            );
            assert_eq!(
                stack.resources["Shared"].metadata,
                json!({"BuildMethod": "python3.12"})
            );
            assert!(stack.warnings.is_empty(), "{:?}", stack.warnings);
        },
    );
}

#[test]
fn a_cdk_function_runs_its_asset_folder() {
    check_ok(
        r#"Resources:
  HandlerFn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: nodejs20.x
      Handler: index.handler
      Code:
        S3Bucket: cdk-hnb659fds-assets-123456789012-us-east-1
        S3Key: 5f0c.zip
    Metadata:
      aws:cdk:path: Stack/HandlerFn/Resource
      aws:asset:path: asset.5f0c
      aws:asset:property: Code
"#,
        |stack| {
            let f = &stack.functions[0];
            assert_eq!(f.code, Code::Uri("asset.5f0c".into()));
            assert_eq!(f.metadata["aws:cdk:path"], "Stack/HandlerFn/Resource");
        },
    );
}

#[test]
fn inline_code_on_a_serverless_function() {
    check_ok(
        r#"Transform: AWS::Serverless-2016-10-31
Resources:
  Inline:
    Type: AWS::Serverless::Function
    Properties: {Runtime: nodejs20.x, Handler: index.handler, InlineCode: "exports.handler = async () => 1;"}
"#,
        |stack| {
            assert_eq!(
                stack.functions[0].code,
                Code::Inline("exports.handler = async () => 1;".into())
            )
        },
    );
}

#[test]
fn functions_are_listed_in_logical_id_order() {
    check_ok(
        r#"Resources:
  Zed:
    Type: AWS::Lambda::Function
    Properties: {Runtime: provided.al2023, Code: {ZipFile: x}}
  Alpha:
    Type: AWS::Lambda::Function
    Properties: {Runtime: provided.al2023, Code: {ZipFile: x}}
"#,
        |stack| {
            let ids: Vec<&str> = stack
                .functions
                .iter()
                .map(|f| f.logical_id.as_str())
                .collect();
            assert_eq!(ids, ["Alpha", "Zed"]);
        },
    );
}

/// Wraps function properties (indented six spaces) in a SAM template. The first property is on
/// line 6.
fn sam_function(props: &str) -> String {
    format!(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Hello:\n    Type: AWS::Serverless::Function\n    Properties:\n{props}"
    )
}

#[test]
fn function_property_errors_name_the_fix() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "timeout out of range",
            "      Runtime: provided.al2023\n      CodeUri: .\n      Timeout: abc\n",
            "template.yaml:8:16: Resources.Hello.Properties.Timeout: expected an integer between 1 and 900 (seconds), got \"abc\"",
        ),
        (
            "timeout too long",
            "      Runtime: provided.al2023\n      CodeUri: .\n      Timeout: 901\n",
            "template.yaml:8:16: Resources.Hello.Properties.Timeout: expected an integer between 1 and 900 (seconds), got 901",
        ),
        (
            "memory too small",
            "      Runtime: provided.al2023\n      CodeUri: .\n      MemorySize: 64\n",
            "template.yaml:8:19: Resources.Hello.Properties.MemorySize: expected an integer between 128 and 10240 (MB), got 64",
        ),
        (
            "negative reserved concurrency",
            "      Runtime: provided.al2023\n      CodeUri: .\n      ReservedConcurrentExecutions: -1\n",
            "template.yaml:8:37: Resources.Hello.Properties.ReservedConcurrentExecutions: expected an integer of 0 or more, got -1",
        ),
        (
            "missing runtime",
            "      CodeUri: .\n",
            "template.yaml:5:5: Resources.Hello.Properties: missing Runtime; set it on the function or in Globals.Function, e.g. \"Runtime: provided.al2023\"",
        ),
        (
            "python without handler",
            "      Runtime: python3.12\n      CodeUri: .\n",
            "template.yaml:5:5: Resources.Hello.Properties: missing Handler; runtime python3.12 needs one, e.g. \"Handler: app.handler\"",
        ),
        (
            "container image",
            "      PackageType: Image\n      ImageUri: repo:latest\n",
            "template.yaml:6:20: Resources.Hello.Properties.PackageType: container image functions are not supported; package the function as a zip (PackageType: Zip)",
        ),
        (
            "S3 code as a map",
            "      Runtime: provided.al2023\n      CodeUri: {Bucket: b, Key: k}\n",
            "template.yaml:7:16: Resources.Hello.Properties.CodeUri: CodeUri with Bucket and Key points at S3, which nimbus cannot read; use a local path, e.g. \"CodeUri: ./hello\"",
        ),
        (
            "both code kinds",
            "      Runtime: provided.al2023\n      CodeUri: .\n      InlineCode: x\n",
            "template.yaml:8:19: Resources.Hello.Properties.InlineCode: set either CodeUri or InlineCode, not both",
        ),
        (
            "two architectures",
            "      Runtime: provided.al2023\n      CodeUri: .\n      Architectures: [x86_64, arm64]\n",
            "template.yaml:8:22: Resources.Hello.Properties.Architectures: expected a list of exactly one architecture, [x86_64] or [arm64], got a list of 2 values",
        ),
        (
            "unknown tracing mode",
            "      Runtime: provided.al2023\n      CodeUri: .\n      Tracing: On\n",
            "template.yaml:8:16: Resources.Hello.Properties.Tracing: expected one of Active, PassThrough, Disabled, got \"On\"",
        ),
        (
            "reserved environment variable",
            "      Runtime: provided.al2023\n      CodeUri: .\n      Environment: {Variables: {AWS_REGION: x}}\n",
            "template.yaml:8:33: Resources.Hello.Properties.Environment.Variables.AWS_REGION: environment variable AWS_REGION is reserved: Lambda sets it itself; choose another name",
        ),
        (
            "environment variable value that is a list",
            "      Runtime: provided.al2023\n      CodeUri: .\n      Environment: {Variables: {LIST: [a]}}\n",
            "template.yaml:8:39: Resources.Hello.Properties.Environment.Variables.LIST: expected a string value, got a list of 1 value",
        ),
        (
            "provisioned concurrency without an alias",
            "      Runtime: provided.al2023\n      CodeUri: .\n      ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: 1}\n",
            "template.yaml:8:37: Resources.Hello.Properties.ProvisionedConcurrencyConfig: ProvisionedConcurrencyConfig needs AutoPublishAlias: provisioned concurrency is set on an alias",
        ),
        (
            "layers that are not a list",
            "      Runtime: python3.12\n      Handler: app.handler\n      Layers: arn:aws:lambda:us-east-1:1:layer:L:1\n",
            "template.yaml:8:15: Resources.Hello.Properties.Layers: expected a list of layer ARNs, got \"arn:aws:lambda:us-east-1:1:layer:L:1\"",
        ),
        (
            "a layer that is not a string",
            "      Runtime: python3.12\n      Handler: app.handler\n      Layers: [{Name: x}]\n",
            "template.yaml:8:16: Resources.Hello.Properties.Layers[0]: expected a layer version ARN, got a map",
        ),
        (
            "more than five layers",
            "      Runtime: python3.12\n      Handler: app.handler\n      Layers: [a, b, c, d, e, f]\n",
            "template.yaml:8:15: Resources.Hello.Properties.Layers: a function can use at most 5 layers, got 6",
        ),
        (
            "invalid function name",
            "      FunctionName: hello world\n      Runtime: provided.al2023\n      CodeUri: .\n",
            "template.yaml:6:21: Resources.Hello.Properties.FunctionName: function name \"hello world\" is invalid: use 1 to 64 letters, digits, hyphens or underscores",
        ),
    ];
    for (what, props, expected) in cases {
        let err = crate::load_with(&sam_function(props), &Default::default()).expect_err(what);
        let got: Vec<String> = err.errors.iter().map(ToString::to_string).collect();
        assert_eq!(got, [expected.to_string()], "{what}");
    }
}

#[test]
fn environment_over_4_kb_is_an_error() {
    let big = "x".repeat(4000);
    let yaml = sam_function(&format!(
        "      Runtime: provided.al2023\n      CodeUri: .\n      Environment:\n        Variables:\n          BIG: {big}\n          MORE: {big}\n"
    ));
    check_err(
        &yaml,
        &["template.yaml:10:11: Resources.Hello.Properties.Environment.Variables: environment variables take 8007 bytes; Lambda allows 4 KB (4096 bytes) for all names and values together"],
    );
}

#[test]
fn duplicate_function_names_are_an_error() {
    check_err(
        r#"Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Runtime: provided.al2023, CodeUri: .}
Resources:
  A:
    Type: AWS::Serverless::Function
    Properties: {FunctionName: api}
  B:
    Type: AWS::Serverless::Function
    Properties: {FunctionName: api}
  api:
    Type: AWS::Serverless::Function
"#,
        &[
            "template.yaml:10:32: Resources.B.Properties.FunctionName: function name \"api\" is already used by Resources.A; function names must be unique",
            "template.yaml:11:3: Resources.api: function name \"api\" is already used by Resources.A; function names must be unique",
        ],
    );
}

#[test]
fn s3_code_on_a_plain_lambda_function_is_an_error() {
    check_err(
        r#"Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: provided.al2023
      Code: {S3Bucket: b, S3Key: k.zip}
"#,
        &["template.yaml:6:34: Resources.Fn.Properties.Code.S3Key: Code.S3Key points at S3, which nimbus cannot read; inline the code with Code.ZipFile, point Metadata.aws:asset:path at the code's local folder (as CDK does), or use an AWS::Serverless::Function with a local CodeUri"],
    );
}
