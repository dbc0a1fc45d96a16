//! Every intrinsic function, long and short form, and every pseudo parameter, evaluated as an
//! output value against one fixture template.

use serde_json::{json, Value};

use nimbus_template::LoadOptions;

use crate::{check_err, check_err_with, check_ok, check_ok_with};

/// A template with one of each referenced kind of thing; `EXPR` becomes the output's value.
const FIXTURE: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Env: {Type: String, Default: dev}
  Sizes: {Type: CommaDelimitedList, Default: "a, b,c"}
  Num: {Type: Number, Default: 42}
Mappings:
  RegionMap:
    us-east-1: {Ami: ami-1, Zones: [x, y]}
Conditions:
  IsDev: !Equals [!Ref Env, dev]
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: hello-fn
      Runtime: provided.al2023
      Handler: bootstrap
      CodeUri: ./hello
      AutoPublishAlias: live
      Events:
        Get: {Type: Api, Properties: {Path: /, Method: get}}
  Queue:
    Type: AWS::SQS::Queue
  Fifo:
    Type: AWS::SQS::Queue
    Properties: {FifoQueue: true}
  Bus:
    Type: AWS::Events::EventBus
    Properties: {Name: orders}
  Rule:
    Type: AWS::Events::Rule
    Properties: {Name: on-order, EventBusName: !Ref Bus}
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties: {Name: flow, Definition: {}}
  Topic:
    Type: AWS::SNS::Topic
  Table:
    Type: AWS::DynamoDB::Table
    Properties: {TableName: items}
  Key:
    Type: AWS::KMS::Key
    DependsOn: [MyApiGammaStage, MyApiDeployment926eeb5ff1, HelloVersion640128d35d]
  MyApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: Gamma
      Auth: {UsagePlan: {CreateUsagePlan: PER_API}}
  MyHttp:
    Type: AWS::Serverless::HttpApi
    Properties: {StageName: !Ref Env}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      CodeUri: ./worker
      Events:
        Tick: {Type: Schedule, Properties: {Schedule: rate(1 minute)}}
        Jobs: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
        Call: {Type: HttpApi, Properties: {ApiId: !Ref MyHttp, Path: /w, Method: get}}
        Open: {Type: HttpApi, Properties: {Path: /open, Method: get}}
Outputs:
  Out:
    Value: EXPR
"#;

fn eval(expr: &str) -> Value {
    let yaml = FIXTURE.replace("EXPR", expr);
    let mut out = Value::Null;
    check_ok(&yaml, |stack| out = stack.outputs["Out"].clone());
    out
}

#[test]
fn intrinsics_and_short_forms_resolve_like_cloudformation() {
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:hello-fn";
    let cases: &[(&str, &str, Value)] = &[
        ("Ref of a String parameter", "!Ref Env", json!("dev")),
        ("Ref long form", "{Ref: Env}", json!("dev")),
        (
            "Ref of a Number parameter is a string",
            "!Ref Num",
            json!("42"),
        ),
        (
            "Ref of a CommaDelimitedList is a trimmed list",
            "!Ref Sizes",
            json!(["a", "b", "c"]),
        ),
        (
            "Ref of a function is its name",
            "!Ref Hello",
            json!("hello-fn"),
        ),
        (
            "Ref of a queue is its URL",
            "!Ref Queue",
            json!("http://127.0.0.1:4566/123456789012/Queue"),
        ),
        (
            "a FIFO queue without a name gets .fifo",
            "!GetAtt Fifo.QueueName",
            json!("Fifo.fifo"),
        ),
        (
            "Ref of an event bus is its name",
            "!Ref Bus",
            json!("orders"),
        ),
        ("Ref of a rule is its name", "!Ref Rule", json!("on-order")),
        (
            "Ref of a state machine is its ARN",
            "!Ref Machine",
            json!("arn:aws:states:us-east-1:123456789012:stateMachine:flow"),
        ),
        (
            "Ref of a topic is its ARN",
            "!Ref Topic",
            json!("arn:aws:sns:us-east-1:123456789012:Topic"),
        ),
        ("Ref of a table is its name", "!Ref Table", json!("items")),
        (
            "Ref of an unmodeled type is the logical id",
            "!Ref Key",
            json!("Key"),
        ),
        (
            "Ref of a function's .Alias is the alias ARN",
            "!Ref Hello.Alias",
            json!(format!("{arn}:live")),
        ),
        (
            "Ref of a generated stage is its name",
            "!Ref MyApiGammaStage",
            json!("Gamma"),
        ),
        ("Ref of an API's .Stage", "!Ref MyApi.Stage", json!("Gamma")),
        (
            "the implicit REST API's stage is Prod",
            "!Ref ServerlessRestApiProdStage",
            json!("Prod"),
        ),
        (
            "a StageName from a parameter names the stage",
            "!Join [',', [!Ref MyHttp.Stage, !Ref MyHttpdevStage]]",
            json!("dev,dev"),
        ),
        (
            "the implicit HTTP API has the $default stage",
            "!Ref ServerlessHttpApi.Stage",
            json!("$default"),
        ),
        (
            "SAM's hashed deployment id names the one deployment",
            "!Ref MyApiDeployment926eeb5ff1",
            json!("MyApiDeployment"),
        ),
        (
            "an API's .Deployment",
            "!Ref MyApi.Deployment",
            json!("MyApiDeployment"),
        ),
        (
            "a function's generated alias resource is the alias ARN",
            "!Ref HelloAliaslive",
            json!(format!("{arn}:live")),
        ),
        (
            "a PER_API usage plan and its key",
            "!Join [',', [!Ref MyApiUsagePlan, !Ref MyApi.ApiKey, !Ref MyApiUsagePlanKey]]",
            json!("MyApiUsagePlan,MyApiApiKey,MyApiUsagePlanKey"),
        ),
        (
            "event resources: permissions, rule, mapping",
            "!Join [',', [!Ref HelloGetPermissionProd, !Ref HelloGetPermission, !Ref WorkerTick, !Ref WorkerJobs, !Ref WorkerCallPermission]]",
            json!("HelloGetPermissionProd,HelloGetPermission,WorkerTick,WorkerJobs,WorkerCallPermission"),
        ),
        (
            "a state machine's generated role",
            "!GetAtt MachineRole.Arn",
            json!("arn:aws:iam::123456789012:role/MachineRole"),
        ),
        (
            "Ref of the implicit SAM API",
            "!Ref ServerlessRestApi",
            json!("ServerlessRestApi"),
        ),
        ("GetAtt short scalar form", "!GetAtt Hello.Arn", json!(arn)),
        (
            "GetAtt short sequence form",
            "!GetAtt [Hello, Arn]",
            json!(arn),
        ),
        (
            "GetAtt long form",
            "{\"Fn::GetAtt\": [Hello, Arn]}",
            json!(arn),
        ),
        (
            "GetAtt long string form",
            "{\"Fn::GetAtt\": Hello.Arn}",
            json!(arn),
        ),
        (
            "queue Arn",
            "!GetAtt Queue.Arn",
            json!("arn:aws:sqs:us-east-1:123456789012:Queue"),
        ),
        ("queue QueueName", "!GetAtt Queue.QueueName", json!("Queue")),
        (
            "queue QueueUrl",
            "!GetAtt Queue.QueueUrl",
            json!("http://127.0.0.1:4566/123456789012/Queue"),
        ),
        (
            "event bus Arn",
            "!GetAtt Bus.Arn",
            json!("arn:aws:events:us-east-1:123456789012:event-bus/orders"),
        ),
        ("event bus Name", "!GetAtt Bus.Name", json!("orders")),
        (
            "a rule on a custom bus has the bus in its ARN",
            "!GetAtt Rule.Arn",
            json!("arn:aws:events:us-east-1:123456789012:rule/orders/on-order"),
        ),
        ("state machine Name", "!GetAtt Machine.Name", json!("flow")),
        (
            "table Arn",
            "!GetAtt Table.Arn",
            json!("arn:aws:dynamodb:us-east-1:123456789012:table/items"),
        ),
        (
            "implicit function role Arn",
            "!GetAtt HelloRole.Arn",
            json!("arn:aws:iam::123456789012:role/HelloRole"),
        ),
        (
            "unmodeled type Arn",
            "!GetAtt Key.Arn",
            json!("arn:aws:kms:us-east-1:123456789012:key/Key"),
        ),
        (
            "unmodeled type other attribute",
            "!GetAtt Key.KeyId",
            json!("Key.KeyId"),
        ),
        (
            "Sub with parameters, pseudo parameters, attributes and an escape",
            r#"!Sub "${Env}-${AWS::Region}-${Hello.Arn}-${!Literal}""#,
            json!(format!("dev-us-east-1-{arn}-${{Literal}}")),
        ),
        (
            "Sub list form with variables",
            r#"!Sub ["${A}/${Env}", {A: !Ref Num}]"#,
            json!("42/dev"),
        ),
        (
            "Sub long form",
            r#"{"Fn::Sub": "${AWS::StackName}"}"#,
            json!("nimbus"),
        ),
        (
            "Sub of the implicit API's URL",
            r#"!Sub "https://${ServerlessRestApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/Prod/""#,
            json!("https://ServerlessRestApi.execute-api.us-east-1.amazonaws.com/Prod/"),
        ),
        (
            "Join with numbers and Refs",
            "!Join [\"-\", [a, !Ref Env, 3]]",
            json!("a-dev-3"),
        ),
        (
            "Join of a list parameter",
            "!Join [\",\", !Ref Sizes]",
            json!("a,b,c"),
        ),
        (
            "Join long form",
            "{\"Fn::Join\": [\"\", [x, y]]}",
            json!("xy"),
        ),
        (
            "Select from a list parameter",
            "!Select [1, !Ref Sizes]",
            json!("b"),
        ),
        (
            "Select with a string index",
            "!Select [\"0\", [x, y]]",
            json!("x"),
        ),
        ("Split", "!Split [\",\", \"a,b\"]", json!(["a", "b"])),
        (
            "Select of Split",
            "!Select [1, !Split [\"/\", \"p/q/r\"]]",
            json!("q"),
        ),
        (
            "If picks the true branch",
            "!If [IsDev, on, off]",
            json!("on"),
        ),
        (
            "If long form",
            "{\"Fn::If\": [IsDev, on, off]}",
            json!("on"),
        ),
        (
            "FindInMap with a Ref key",
            "!FindInMap [RegionMap, !Ref \"AWS::Region\", Ami]",
            json!("ami-1"),
        ),
        (
            "FindInMap of a list value",
            "!FindInMap [RegionMap, us-east-1, Zones]",
            json!(["x", "y"]),
        ),
        ("Base64", "!Base64 hello", json!("aGVsbG8=")),
        (
            "Base64 of Sub",
            "!Base64 {\"Fn::Sub\": \"${Env}\"}",
            json!("ZGV2"),
        ),
        (
            "GetAZs of the current region",
            "!GetAZs \"\"",
            json!(["us-east-1a", "us-east-1b", "us-east-1c"]),
        ),
        (
            "GetAZs of a Ref region",
            "!GetAZs {Ref: \"AWS::Region\"}",
            json!(["us-east-1a", "us-east-1b", "us-east-1c"]),
        ),
        (
            "Select of GetAZs",
            "!Select [0, !GetAZs \"\"]",
            json!("us-east-1a"),
        ),
        (
            "AWS::AccountId",
            "!Ref AWS::AccountId",
            json!("123456789012"),
        ),
        ("AWS::Region", "!Ref AWS::Region", json!("us-east-1")),
        ("AWS::StackName", "!Ref AWS::StackName", json!("nimbus")),
        ("AWS::Partition", "!Ref AWS::Partition", json!("aws")),
        (
            "AWS::URLSuffix",
            "!Ref AWS::URLSuffix",
            json!("amazonaws.com"),
        ),
        (
            "AWS::NotificationARNs",
            "!Ref AWS::NotificationARNs",
            json!([]),
        ),
        (
            "NoValue drops a list element",
            "[a, !Ref AWS::NoValue, b]",
            json!(["a", "b"]),
        ),
        (
            "NoValue drops a map key",
            "{a: 1, b: !Ref AWS::NoValue}",
            json!({"a": 1}),
        ),
    ];
    for (what, expr, expected) in cases {
        assert_eq!(&eval(expr), expected, "{what}: {expr}");
    }
}

#[test]
fn stack_id_is_a_stable_cloudformation_arn() {
    let a = eval("!Ref AWS::StackId");
    let b = eval("!Ref AWS::StackId");
    assert_eq!(a, b);
    let id = a.as_str().unwrap();
    assert!(
        id.starts_with("arn:aws:cloudformation:us-east-1:123456789012:stack/nimbus/"),
        "{id}"
    );
    assert_eq!(id.rsplit('/').next().unwrap().len(), 36, "{id}");
}

#[test]
fn region_decides_partition_and_url_suffix() {
    let opts = nimbus_template::LoadOptions {
        region: "cn-north-1".into(),
        ..Default::default()
    };
    let yaml = FIXTURE.replace(
        "EXPR",
        "!Sub \"${AWS::Partition} ${AWS::URLSuffix} ${Hello.Arn}\"",
    );
    crate::check_ok_with(&yaml, &opts, |stack| {
        assert_eq!(
            stack.outputs["Out"],
            json!("aws-cn amazonaws.com.cn arn:aws-cn:lambda:cn-north-1:123456789012:function:hello-fn")
        );
    });
}

#[test]
fn queue_urls_name_the_endpoint_nimbus_listens_on() {
    let yaml = FIXTURE.replace("EXPR", "!Join [' ', [!Ref Queue, !GetAtt Queue.QueueUrl]]");
    let opts = nimbus_template::LoadOptions {
        endpoint_url: "http://127.0.0.1:39001/".into(),
        ..Default::default()
    };
    crate::check_ok_with(&yaml, &opts, |stack| {
        assert_eq!(
            stack.outputs["Out"],
            json!("http://127.0.0.1:39001/123456789012/Queue http://127.0.0.1:39001/123456789012/Queue")
        );
    });
}

#[test]
fn import_value_takes_import_values_else_a_placeholder_with_a_warning_or_refuses_with_strict() {
    let yaml = FIXTURE.replace("EXPR", "!ImportValue {\"Fn::Sub\": \"${Env}-vpc\"}");
    let given = nimbus_template::LoadOptions {
        import_values: [("dev-vpc".to_owned(), "vpc-123".to_owned())].into(),
        ..Default::default()
    };
    crate::check_ok_with(&yaml, &given, |stack| {
        assert_eq!(stack.outputs["Out"], json!("vpc-123"));
        assert!(!stack
            .warnings
            .iter()
            .any(|w| w.message.contains("ImportValue")));
    });
    crate::check_ok(&yaml, |stack| {
        assert_eq!(stack.outputs["Out"], json!("dev-vpc"));
        assert!(stack.warnings.iter().any(|w| w.message.contains(
            "Fn::ImportValue of \"dev-vpc\": no other stack exports it here; using the placeholder"
        )));
    });
    let strict = nimbus_template::LoadOptions {
        strict: true,
        ..Default::default()
    };
    let err = crate::load_with(&yaml, &strict).expect_err("strict refuses");
    assert_eq!(
        err.errors[0].message,
        "Fn::ImportValue of \"dev-vpc\": no other stack exports it here; pass --import-values dev-vpc=VALUE"
    );
}

/// Line of `Value: EXPR` in the fixture, where every output error points.
const OUT_LINE: usize = 65;

#[test]
fn intrinsic_misuse_is_reported_at_the_expression() {
    assert_eq!(FIXTURE.lines().nth(OUT_LINE - 1), Some("    Value: EXPR"));
    let cases: &[(&str, &str)] = &[
        ("!Ref Nope", "Ref to \"Nope\", which is not a parameter, resource or pseudo parameter"),
        ("!Ref Helo", "Ref to \"Helo\", which is not a parameter, resource or pseudo parameter (did you mean \"Hello\"?)"),
        ("!Ref AWS::Regoin", "unknown pseudo parameter \"AWS::Regoin\" (did you mean \"AWS::Region\"?)"),
        ("!GetAtt Nope.Arn", "Fn::GetAtt of \"Nope\", which is not a resource"),
        (
            "!GetAtt Queue.Nope",
            "Resources.Queue (AWS::SQS::Queue) has no attribute \"Nope\"; it has Arn, QueueName, QueueUrl",
        ),
        ("!GetAtt Hello.arn", "Resources.Hello (AWS::Serverless::Function) has no attribute \"arn\" (did you mean \"Arn\"?); it has Arn"),
        ("!Sub \"${Nope}\"", "Ref to \"Nope\", which is not a parameter, resource or pseudo parameter"),
        ("!Sub \"${Sizes}\"", "Fn::Sub cannot insert ${Sizes}: it is a list of 3 values; use Fn::Join for lists"),
        ("!Select [5, [a]]", "Fn::Select index 5 is out of range for the list"),
        ("!Select [x, [a]]", "the Fn::Select index must be a non-negative integer, got \"x\""),
        ("!Join [\"-\", [[a]]]", "Fn::Join can only join strings, got a list of 1 value"),
        ("!If [Nope, a, b]", "unknown condition \"Nope\"; declare it under Conditions"),
        ("!FindInMap [RegionMap, eu-west-1, Ami]", "Fn::FindInMap: Mappings.RegionMap has no key \"eu-west-1\""),
        ("!FindInMap [Nope, a, b]", "Fn::FindInMap: there is no mapping \"Nope\" under Mappings"),
        (
            "!Equals [a, b]",
            "Fn::Equals can only be used under Conditions; declare a condition there and use Fn::If",
        ),
        ("{\"Fn::Nope\": 1}", "unknown intrinsic function \"Fn::Nope\""),
        ("!Cidr [\"10.0.0.0/16\", 2, 8]", "Fn::Cidr is not supported by nimbus; write the value out"),
    ];
    for (expr, message) in cases {
        let yaml = FIXTURE.replace("EXPR", expr);
        let err = crate::load_with(&yaml, &Default::default()).expect_err(expr);
        let got: Vec<String> = err.errors.iter().map(|d| d.message.clone()).collect();
        assert_eq!(got, vec![message.to_string()], "{expr}");
        assert!(
            err.errors[0].path.starts_with("Outputs.Out.Value"),
            "{expr}: {}",
            err.errors[0].path
        );
        assert_eq!(err.errors[0].line, OUT_LINE, "{expr}");
    }
}

#[test]
fn unknown_ref_names_path_and_line() {
    check_err(
        r#"Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Code: {ZipFile: "def handler(e, c): pass"}
      Environment:
        Variables:
          TABLE: !Ref Tabel
"#,
        &["template.yaml:10:18: Resources.Fn.Properties.Environment.Variables.TABLE: Ref to \"Tabel\", which is not a parameter, resource or pseudo parameter"],
    );
}

#[test]
fn bad_getatt_names_path_and_line() {
    check_err(
        r#"Resources:
  Queue:
    Type: AWS::SQS::Queue
Outputs:
  QueueArn:
    Value: !GetAtt Queue.Url
"#,
        &["template.yaml:6:12: Outputs.QueueArn.Value: Resources.Queue (AWS::SQS::Queue) has no attribute \"Url\" (did you mean \"QueueUrl\"?); it has Arn, QueueName, QueueUrl"],
    );
}

#[test]
fn circular_names_are_reported_not_looped() {
    check_err(
        r#"Resources:
  A:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !GetAtt B.QueueName}
  B:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !GetAtt A.QueueName}
"#,
        &["template.yaml:5:3: Resources.B: the name of this resource depends on itself; break the cycle of Ref/Fn::GetAtt"],
    );
}

#[test]
fn ref_to_a_number_parameter_feeds_integer_properties() {
    check_ok(
        r#"Parameters:
  Seconds: {Type: Number, Default: 45}
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: provided.al2023
      Code: {ZipFile: x}
      Timeout: !Ref Seconds
"#,
        |stack| assert_eq!(stack.functions[0].timeout, 45),
    );
}

/// Options whose include reader serves `files` (location -> text).
fn with_files(files: &[(&'static str, &'static str)]) -> LoadOptions {
    let files: std::collections::BTreeMap<&str, &str> = files.iter().copied().collect();
    LoadOptions {
        include: Some(nimbus_template::Reader(std::sync::Arc::new(
            move |location: &str| {
                files
                    .get(location)
                    .map(|t| (*t).to_owned())
                    .ok_or_else(|| "No such file or directory (os error 2)".to_owned())
            },
        ))),
        ..LoadOptions::default()
    }
}

const INCLUDING: &str = r#"Resources:
  Q:
    Type: AWS::SQS::Queue
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties:
      Body:
        Fn::Transform:
          Name: AWS::Include
          Parameters: {Location: LOCATION}
"#;

#[test]
fn aws_include_inserts_the_local_file_and_resolves_its_intrinsics() {
    let opts = with_files(&[(
        "api.yaml",
        "openapi: 3.0.1\npaths:\n  /q:\n    get:\n      x-queue: !GetAtt Q.Arn\n      x-region: !Sub '${AWS::Region}'\n",
    )]);
    check_ok_with(&INCLUDING.replace("LOCATION", "api.yaml"), &opts, |stack| {
        let body = &stack.resources["Api"].properties["Body"];
        assert_eq!(body["openapi"], "3.0.1");
        assert_eq!(
            body["paths"]["/q"]["get"]["x-queue"],
            "arn:aws:sqs:us-east-1:123456789012:Q"
        );
        assert_eq!(body["paths"]["/q"]["get"]["x-region"], "us-east-1");
    });
}

#[test]
fn aws_include_refuses_what_it_cannot_insert_naming_the_include() {
    let opts = with_files(&[
        ("broken.yaml", "a: [1, 2\n"),
        (
            "self.yaml",
            "Fn::Transform: {Name: AWS::Include, Parameters: {Location: self.yaml}}\n",
        ),
    ]);
    let at = "template.yaml:8:9: Resources.Api.Properties.Body.Fn::Transform";
    let table = [
        ("s3://bucket/api.yaml", format!("{at}: Location \"s3://bucket/api.yaml\" is in S3, which nimbus cannot read; point it at a file beside the template")),
        ("missing.yaml", format!("{at}: cannot read \"missing.yaml\": No such file or directory (os error 2)")),
        ("broken.yaml", format!("{at}: broken.yaml:2:1: invalid YAML: while parsing a flow sequence, expected ',' or ']'")),
        ("self.yaml", format!("{at}: includes nest deeper than 8 (does \"self.yaml\" include itself?)")),
    ];
    for (location, want) in table {
        check_err_with(
            &INCLUDING.replace("LOCATION", location),
            &opts,
            &[want.as_str()],
        );
    }
    check_err_with(
        &INCLUDING.replace("AWS::Include", "MyMacro"),
        &opts,
        &[&format!("{at}: only the AWS::Include transform is run by nimbus (macros are not), got Name \"MyMacro\"")],
    );
}
