//! `Globals`, merged by SAM's rules.

use serde_json::json;

use crate::{check_err, check_ok};

const TEMPLATE: &str = r#"Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    Handler: app.handler
    CodeUri: ./src
    Timeout: 10
    MemorySize: 256
    Layers: [global-layer]
    Environment:
      Variables:
        TABLE: global-table
        STAGE: dev
    Tags: {Team: core}
  Api:
    Cors: "'*'"
Resources:
  Plain:
    Type: AWS::Serverless::Function
  Custom:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 30
      Layers: [own-layer]
      Environment:
        Variables:
          STAGE: prod
          EXTRA: "1"
      Tags: {Owner: me}
  Intrinsic:
    Type: AWS::Serverless::Function
    Properties:
      Environment: !If [Never, {Variables: {A1: x}}, {Variables: {B1: y}}]
  Ignoring:
    Type: AWS::Serverless::Function
    IgnoreGlobals: "*"
    Properties: {Runtime: provided.al2023, CodeUri: ./own}
  Partial:
    Type: AWS::Serverless::Function
    IgnoreGlobals: [Timeout, Layers]
  Api:
    Type: AWS::Serverless::Api
    Properties: {StageName: prod}
Conditions:
  Never: !Equals [a, b]
"#;

fn function<'a>(stack: &'a nimbus_template::Stack, id: &str) -> &'a nimbus_template::Function {
    stack.functions.iter().find(|f| f.logical_id == id).unwrap()
}

#[test]
fn globals_fill_in_what_the_resource_leaves_out() {
    check_ok(TEMPLATE, |stack| {
        let f = function(stack, "Plain");
        assert_eq!(f.runtime, "python3.12");
        assert_eq!(f.handler.as_deref(), Some("app.handler"));
        assert_eq!(f.code, nimbus_template::Code::Uri("./src".into()));
        assert_eq!((f.timeout, f.memory_size), (10, 256));
        assert_eq!(f.properties["Layers"], json!(["global-layer"]));
    });
}

#[test]
fn a_scalar_on_the_resource_wins() {
    check_ok(TEMPLATE, |stack| {
        let f = function(stack, "Custom");
        assert_eq!(f.timeout, 30);
        assert_eq!(f.memory_size, 256);
    });
}

#[test]
fn maps_merge_key_by_key_with_the_resource_winning() {
    check_ok(TEMPLATE, |stack| {
        let f = function(stack, "Custom");
        let env: Vec<(&str, &str)> = f
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            env,
            [("EXTRA", "1"), ("STAGE", "prod"), ("TABLE", "global-table")]
        );
        assert_eq!(f.properties["Tags"], json!({"Team": "core", "Owner": "me"}));
    });
}

#[test]
fn lists_get_the_global_entries_first() {
    check_ok(TEMPLATE, |stack| {
        assert_eq!(
            function(stack, "Custom").properties["Layers"],
            json!(["global-layer", "own-layer"])
        );
    });
}

#[test]
fn an_intrinsic_on_the_resource_counts_as_a_scalar_and_replaces_the_global_map() {
    check_ok(TEMPLATE, |stack| {
        let f = function(stack, "Intrinsic");
        assert_eq!(f.environment.keys().collect::<Vec<_>>(), ["B1"]);
    });
}

#[test]
fn ignore_globals_leaves_out_all_or_the_named_globals() {
    check_ok(TEMPLATE, |stack| {
        let f = function(stack, "Ignoring");
        assert_eq!((f.timeout, f.memory_size), (3, 128));
        assert!(f.environment.is_empty());
        let p = function(stack, "Partial");
        assert_eq!((p.timeout, p.memory_size), (3, 256));
        assert!(p.properties.get("Layers").is_none());
    });
}

#[test]
fn api_globals_apply_to_serverless_apis() {
    check_ok(TEMPLATE, |stack| {
        assert_eq!(
            stack.resources["Api"].properties,
            json!({"Cors": "'*'", "StageName": "prod"})
        );
    });
}

#[test]
fn events_and_other_non_global_keys_are_errors() {
    check_err(
        r#"Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Events:
      Tick: {Type: Schedule, Properties: {Schedule: rate(1 minute)}}
    FunctionName: shared
    Timeuot: 5
  Table:
    SSESpecification: {}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {Runtime: provided.al2023, CodeUri: .}
"#,
        &[
            "template.yaml:4:5: Globals.Function.Events: \"Events\" cannot be set in Globals.Function: each function declares its own events; move them to Resources.<Function>.Properties.Events",
            "template.yaml:6:5: Globals.Function.FunctionName: \"FunctionName\" cannot be set in Globals.Function; set it on each AWS::Serverless::Function instead",
            "template.yaml:7:5: Globals.Function.Timeuot: \"Timeuot\" is not a property of Globals.Function (did you mean \"Timeout\"?)",
            "template.yaml:8:3: Globals.Table: unknown Globals section \"Table\" (did you mean \"SimpleTable\"?); use Function, Api, HttpApi, SimpleTable, StateMachine, LayerVersion",
        ],
    );
}

#[test]
fn globals_without_the_sam_transform_is_an_error() {
    check_err(
        r#"Globals:
  Function: {Timeout: 5}
Resources:
  Queue:
    Type: AWS::SQS::Queue
"#,
        &["template.yaml:1:1: Globals: Globals is a SAM section; add \"Transform: AWS::Serverless-2016-10-31\" to the template"],
    );
}

#[test]
fn api_globals_apply_to_the_apis_sam_generates_for_events() {
    let yaml = r#"Transform: AWS::Serverless-2016-10-31
Globals:
  Api:
    Variables:
      color: !Sub "${AWS::Region}-blue"
  HttpApi:
    StageVariables:
      mode: fast
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: f
      Runtime: python3.12
      Handler: app.h
      Events:
        Get:
          Type: Api
          Properties: {Path: /x, Method: get}
        Http:
          Type: HttpApi
"#;
    check_ok(yaml, |stack| {
        let rest = &stack.resources["ServerlessRestApi"];
        assert_eq!(rest.resource_type, "AWS::Serverless::Api");
        assert_eq!(rest.properties["Variables"]["color"], "us-east-1-blue");
        let http = &stack.resources["ServerlessHttpApi"];
        assert_eq!(http.properties["StageVariables"]["mode"], "fast");
        // Served resource types are not reported as ignored.
        assert!(stack.warnings.is_empty(), "{:?}", stack.warnings);
    });
}
