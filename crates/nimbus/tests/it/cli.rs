use std::process::Command;
use std::time::Duration;

use crate::harness::Nimbus;

fn nimbus(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nimbus"))
        .args(args)
        .output()
        .expect("run nimbus");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_accepts_the_hello_app_and_lists_its_functions() {
    // The directory `cargo test` gives at run time, not the one the binary was built in.
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    let template = format!("{dir}/../../apps/hello/template.yaml");
    let (code, stdout, stderr) = nimbus(&["validate", &template]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("valid; 2 function(s)"), "{stdout}");
    assert!(stdout.contains("HelloPython"), "{stdout}");
}

#[test]
fn validate_reports_every_error_with_file_line_and_path_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: x\n      Runtime: python3.12\n      Handler: app.h\n      Timeout: 901\n      Environment:\n        Variables:\n          AB: !Ref Nope\n",
    )
    .unwrap();
    let (code, _, stderr) = nimbus(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    let file = path.display().to_string();
    assert!(stderr.contains(&format!("error: {file}:9:")), "{stderr}");
    assert!(
        stderr.contains("Resources.F.Properties.Timeout"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("error: {file}:12:")), "{stderr}");
    assert!(stderr.contains("Nope"), "{stderr}");
    assert!(stderr.contains("2 error(s)"), "{stderr}");
}

#[test]
fn validate_reports_broken_openapi_definitions_with_the_property_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.yaml");
    std::fs::write(
        &path,
        r##"Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: x, Runtime: python3.12, Handler: app.h}
  Broken:
    Type: AWS::Serverless::Api
    Properties:
      StageName: Prod
      DefinitionUri: broken.yaml
  Dangling:
    Type: AWS::Serverless::Api
    Properties:
      StageName: Prod
      DefinitionBody:
        paths:
          /a:
            post:
              requestBody: {$ref: "#/components/requestBodies/Nope"}
              x-amazon-apigateway-integration:
                type: aws_proxy
                uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Other.Arn}/invocations
  Other:
    Type: AWS::SQS::Queue
"##,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "paths:
  /a: [unclosed
",
    )
    .unwrap();
    let (code, _, stderr) = nimbus(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    for want in [
        "Resources.Broken.Properties.DefinitionUri: ",
        "broken.yaml: ",
        "line 3",
    ] {
        assert!(stderr.contains(want), "{want} in {stderr}");
    }
    // The second API's problems are reported only once the file reads; fix the file and see.
    std::fs::write(
        dir.path().join("broken.yaml"),
        "paths: {}
",
    )
    .unwrap();
    let (code, _, stderr) = nimbus(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    for want in [
        "Resources.Dangling.Properties.DefinitionBody.paths./a.post.requestBody.$ref: \"#/components/requestBodies/Nope\" does not resolve within the document",
        "Resources.Dangling.Properties.DefinitionBody.paths./a.post.x-amazon-apigateway-integration.uri: ",
    ] {
        assert!(stderr.contains(want), "{want} in {stderr}");
    }
}

#[test]
fn validate_names_a_missing_template_file() {
    let (code, _, stderr) = nimbus(&["validate", "/nonexistent/template.yaml"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot read template /nonexistent/template.yaml"),
        "{stderr}"
    );
}

#[test]
fn the_invoke_command_prints_the_result_and_fails_on_a_function_error() {
    let nimbus_up = Nimbus::start(crate::invoke::TEMPLATE, &[]);
    let ep = nimbus_up.endpoint.clone();
    let (code, stdout, stderr) = nimbus(&[
        "invoke",
        "Echo",
        "--payload",
        r#"{"action":"echo","x":5}"#,
        "--endpoint-url",
        &ep,
        "--tail",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(r#""x":5"#), "{stdout}");
    assert!(stderr.contains("REPORT RequestId: "), "{stderr}");
    let (code, stdout, stderr) = nimbus(&[
        "invoke",
        "Echo",
        "--payload",
        r#"{"action":"error"}"#,
        "--endpoint-url",
        &ep,
    ]);
    assert_eq!(code, 1);
    assert!(stdout.contains("something went wrong"), "{stdout}");
    assert!(stderr.contains("function error: Unhandled"), "{stderr}");
    let (code, _, stderr) = nimbus(&["invoke", "Nope", "--endpoint-url", &ep]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("ResourceNotFoundException (404 Not Found): Function not found"),
        "{stderr}"
    );
    drop(nimbus_up);
    let (code, _, stderr) = nimbus(&["invoke", "Echo", "--endpoint-url", &ep]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is `nimbus up` running?"), "{stderr}");
    let _ = Duration::ZERO;
}

#[test]
fn validate_checks_the_apis_as_up_would_and_warns_about_misspelled_properties() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.yaml");
    std::fs::write(
        &path,
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: f\n      Runtime: python3.12\n      Handler: app.h\n      Events:\n        G:\n          Type: Api\n          Properties: {Pth: /x, Method: get}\n",
    )
    .unwrap();
    let (code, _, stderr) = nimbus(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("\"Pth\" is not a property of an Api event (did you mean \"Path\"?)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Resources.F.Properties.Events.G.Properties.Path: required"),
        "{stderr}"
    );
}
