//! `Parameters`: types, defaults, overrides and constraints.

use nimbus_template::LoadOptions;
use serde_json::json;

use crate::{check_err, check_err_with, check_ok, check_ok_with, overrides, warnings};

const TEMPLATE: &str = r#"Parameters:
  Stage:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  Name:
    Type: String
    Default: orders
    AllowedPattern: "[a-z][a-z0-9-]*"
    ConstraintDescription: lowercase letters, digits and hyphens
    MinLength: 3
    MaxLength: 10
  Count:
    Type: Number
    Default: 2
    MinValue: 1
    MaxValue: 5
  Secret:
    Type: String
    NoEcho: true
    Default: hunter2
    MinLength: 8
  Ids:
    Type: List<Number>
    Default: "1, 2"
  Image:
    Type: AWS::SSM::Parameter::Value<String>
    Default: /app/image
  Subnets:
    Type: List<AWS::EC2::Subnet::Id>
    Default: subnet-1,subnet-2
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${Name}-${Stage}"
"#;

#[test]
fn defaults_fill_in_values_as_ref_sees_them() {
    let mut no_echo = TEMPLATE.replace("    MinLength: 8\n", "");
    no_echo.push('\n');
    check_ok(&no_echo, |stack| {
        let p = &stack.parameters;
        assert_eq!(p["Stage"].value, json!("dev"));
        assert_eq!(p["Count"].value, json!("2"));
        assert_eq!(p["Ids"].value, json!(["1", "2"]));
        assert_eq!(p["Subnets"].value, json!(["subnet-1", "subnet-2"]));
        assert!(p["Secret"].no_echo);
        assert!(!p["Stage"].no_echo);
        assert_eq!(
            stack.resources["Queue"].properties["QueueName"],
            json!("orders-dev")
        );
    });
}

#[test]
fn ssm_parameters_warn_and_use_the_default_text() {
    let yaml = TEMPLATE.replace("    MinLength: 8\n", "");
    check_ok(&yaml, |stack| {
        assert_eq!(stack.parameters["Image"].value, json!("/app/image"));
        assert_eq!(
            warnings(stack)[0],
            "template.yaml:25:3: Parameters.Image: parameter \"Image\" reads the SSM parameter \"/app/image\", which nimbus's Parameter Store does not have; using its name as the value. Put it there (aws ssm put-parameter --endpoint-url ...) for the real value; --strict refuses instead"
        );
    });
}

#[test]
fn ssm_parameters_read_the_parameter_store_their_default_or_override_names() {
    let yaml = TEMPLATE.replace("    MinLength: 8\n", "");
    let store = nimbus_template::Reader(std::sync::Arc::new(|name: &str| match name {
        "/app/image" => Ok("repo:7".to_owned()),
        "/app/other" => Ok("repo:8".to_owned()),
        _ => Err("ParameterNotFound".to_owned()),
    }));
    // (override, value): the Default's parameter, an override's, an override naming none
    // (taken as the value itself).
    let table = [
        (None, "repo:7"),
        (Some("/app/other"), "repo:8"),
        (Some("repo:1"), "repo:1"),
    ];
    for (given, want) in table {
        let mut opts = overrides(&given.map(|g| ("Image", g)).into_iter().collect::<Vec<_>>());
        opts.parameter_store = Some(store.clone());
        check_ok_with(&yaml, &opts, |stack| {
            assert_eq!(stack.parameters["Image"].value, json!(want), "{given:?}");
            assert_eq!(warnings(stack).len(), 0, "{:?}", warnings(stack));
        });
    }
    let strict = LoadOptions {
        strict: true,
        parameter_store: Some(nimbus_template::Reader(std::sync::Arc::new(|_: &str| {
            Err("ParameterNotFound".to_owned())
        }))),
        ..LoadOptions::default()
    };
    check_err_with(
        &yaml,
        &strict,
        &["template.yaml:27:14: Parameters.Image.Default: parameter \"Image\" reads the SSM parameter \"/app/image\", which nimbus's Parameter Store does not have; put it there (aws ssm put-parameter --endpoint-url ...) and start again"],
    );
}

#[test]
fn overrides_replace_defaults() {
    let yaml = TEMPLATE.replace("    MinLength: 8\n", "");
    let opts = overrides(&[("Stage", "prod"), ("Count", "5"), ("Image", "repo:1")]);
    check_ok_with(&yaml, &opts, |stack| {
        assert_eq!(stack.parameters["Stage"].value, json!("prod"));
        assert_eq!(stack.parameters["Count"].value, json!("5"));
        assert_eq!(stack.parameters["Image"].value, json!("repo:1"));
        assert_eq!(
            stack.resources["Queue"].properties["QueueName"],
            json!("orders-prod")
        );
        // An override is the real value, so there is nothing to warn about.
        assert_eq!(warnings(stack).len(), 0, "{:?}", warnings(stack));
    });
}

#[test]
fn constraint_violations_name_the_constraint_and_hide_no_echo_values() {
    let opts = overrides(&[
        ("Stage", "qa"),
        ("Name", "Orders_1"),
        ("Count", "9"),
        ("Ids", "1,x"),
    ]);
    check_err_with(
        TEMPLATE,
        &opts,
        &[
            "template.yaml:2:3: Parameters.Stage: override \"qa\" is not one of the AllowedValues: dev, prod",
            "template.yaml:6:3: Parameters.Name: override \"Orders_1\" does not match AllowedPattern \"[a-z][a-z0-9-]*\" (lowercase letters, digits and hyphens)",
            "template.yaml:13:3: Parameters.Count: override \"9\" is greater than MaxValue 5",
            "template.yaml:21:14: Parameters.Secret.Default: default (hidden by NoEcho) is shorter than MinLength 8",
            "template.yaml:23:3: Parameters.Ids: override \"x\" is not a number",
        ],
    );
}

#[test]
fn with_strict_a_parameter_without_default_or_override_is_an_error() {
    check_err_with(
        r#"Parameters:
  ApiKey: {Type: String}
Resources:
  Queue:
    Type: AWS::SQS::Queue
"#,
        &LoadOptions {
            strict: true,
            ..LoadOptions::default()
        },
        &["template.yaml:2:3: Parameters.ApiKey: parameter \"ApiKey\" has no Default and no override; add a Default or pass --parameter-overrides ApiKey=VALUE"],
    );
}

#[test]
fn a_parameter_without_default_or_override_gets_a_placeholder_its_constraints_accept() {
    let cases: &[(&str, serde_json::Value)] = &[
        ("{Type: String}", json!("placeholder")),
        ("{Type: String, AllowedValues: [dev, prod]}", json!("dev")),
        ("{Type: String, MinLength: 16}", json!("placeholderxxxxx")),
        (
            "{Type: String, AllowedPattern: '^[^@]+@[^@]+$'}",
            json!("placeholder@example.com"),
        ),
        ("{Type: String, AllowedPattern: '[0-9]+'}", json!("0")),
        ("{Type: Number, MinValue: 5, MaxValue: 9}", json!("5")),
        ("{Type: Number, MaxValue: -3}", json!("-3")),
        (
            "{Type: 'AWS::EC2::VPC::Id'}",
            json!("vpc-0123456789abcdef0"),
        ),
        (
            "{Type: 'List<AWS::EC2::Subnet::Id>'}",
            json!(["subnet-0123456789abcdef0"]),
        ),
        ("{Type: CommaDelimitedList}", json!(["placeholder"])),
        ("{Type: String, NoEcho: true}", json!("placeholder")),
        ("{Type: String, MaxLength: 4}", json!("a")),
    ];
    for (decl, want) in cases {
        let yaml = format!(
            "Parameters:\n  P: {decl}\nResources:\n  Queue:\n    Type: AWS::SQS::Queue\nOutputs:\n  Out:\n    Value: !Ref P\n"
        );
        check_ok(&yaml, |stack| {
            assert_eq!(&stack.parameters["P"].value, want, "{decl}");
            let warning = stack
                .warnings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>();
            assert!(
                warning.len() == 1 && warning[0].contains("has no Default and no override; using"),
                "{decl}: {warning:?}"
            );
            if decl.contains("NoEcho") {
                assert!(!warning[0].contains("\"placeholder\""), "{warning:?}");
            }
        });
    }
    for decl in [
        "{Type: String, AllowedPattern: 'z{3}[0-9]{2}'}",
        "{Type: String, MinLength: 9999999999}",
    ] {
        check_err(
            &format!("Parameters:\n  P: {decl}\nResources:\n  Q:\n    Type: AWS::SQS::Queue\n"),
            &["template.yaml:2:3: Parameters.P: parameter \"P\" has no Default and no override, and nimbus cannot make up a value its constraints accept; pass --parameter-overrides P=VALUE"],
        );
    }
}

#[test]
fn an_override_for_an_undeclared_parameter_is_an_error() {
    check_err_with(
        r#"Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Queue:
    Type: AWS::SQS::Queue
"#,
        &overrides(&[("Stag", "prod")]),
        &["template.yaml:1:1: Parameters: --parameter-overrides sets \"Stag\", which is not a parameter of this template (did you mean \"Stage\"?)"],
    );
}

#[test]
fn declaration_mistakes_are_reported() {
    check_err(
        r#"Parameters:
  A: {Type: Strin, Default: x}
  B: {Type: String, Defualt: x, Default: y}
  C: {Type: String, Default: [x]}
  D: {Type: String, Default: x, AllowedPattern: "(?=x)"}
Resources:
  Queue:
    Type: AWS::SQS::Queue
"#,
        &[
            "template.yaml:2:13: Parameters.A.Type: unknown parameter type \"Strin\"; use String, Number, List<Number>, CommaDelimitedList, an AWS-specific type or AWS::SSM::Parameter::Value<...>",
            "template.yaml:3:21: Parameters.B.Defualt: unknown parameter property \"Defualt\" (did you mean \"Default\"?); parameters take Type, Default, AllowedValues, AllowedPattern, ConstraintDescription, Description, MaxLength, MaxValue, MinLength, MinValue, NoEcho",
            "template.yaml:4:30: Parameters.C.Default: expected a string Default (lists are written \"a,b,c\"), got a list of 1 value",
            "template.yaml:5:49: Parameters.D.AllowedPattern: AllowedPattern \"(?=x)\" uses regex syntax nimbus cannot check: look-around, including look-ahead and look-behind, is not supported",
        ],
    );
}
