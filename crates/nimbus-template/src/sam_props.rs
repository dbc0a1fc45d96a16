//! The property names SAM knows, so a typo such as `ApiKeysRequired` is reported instead of
//! silently changing what a template means. Unknown property names are warnings (SAM keeps
//! growing, and a newer property must not stop a template from loading); an unknown event
//! type is an error, since SAM itself refuses it.

use crate::diag::{child, did_you_mean, Diags};
use crate::yaml::Node;

const FUNCTION: &[&str] = &[
    "Architectures",
    "AssumeRolePolicyDocument",
    "AutoPublishAlias",
    "AutoPublishAliasAllProperties",
    "AutoPublishCodeSha256",
    "CapacityProviderConfig",
    "CodeSigningConfigArn",
    "CodeUri",
    "DeadLetterQueue",
    "DeploymentPreference",
    "Description",
    "DurableConfig",
    "Environment",
    "EphemeralStorage",
    "EventInvokeConfig",
    "Events",
    "FileSystemConfigs",
    "FunctionName",
    "FunctionScalingConfig",
    "FunctionUrlConfig",
    "Handler",
    "ImageConfig",
    "ImageUri",
    "InlineCode",
    "KmsKeyArn",
    "Layers",
    "LoggingConfig",
    "MemorySize",
    "PackageType",
    "PermissionsBoundary",
    "Policies",
    "PropagateTags",
    "ProvisionedConcurrencyConfig",
    "PublishToLatestPublished",
    "RecursiveLoop",
    "ReservedConcurrentExecutions",
    "Role",
    "RolePath",
    "Runtime",
    "RuntimeManagementConfig",
    "SnapStart",
    "SourceKMSKeyArn",
    "Tags",
    "TenancyConfig",
    "Timeout",
    "Tracing",
    "VersionDeletionPolicy",
    "VersionDescription",
    "VpcConfig",
];

const API: &[&str] = &[
    "AccessLogSetting",
    "AlwaysDeploy",
    "ApiKeySourceType",
    "Auth",
    "BinaryMediaTypes",
    "CacheClusterEnabled",
    "CacheClusterSize",
    "CanarySetting",
    "Cors",
    "DefinitionBody",
    "DefinitionUri",
    "Description",
    "DisableExecuteApiEndpoint",
    "Domain",
    "EndpointConfiguration",
    "FailOnWarnings",
    "GatewayResponses",
    "MergeDefinitions",
    "MethodSettings",
    "MinimumCompressionSize",
    "Mode",
    "Models",
    "Name",
    "OpenApiVersion",
    "Policy",
    "PropagateTags",
    "StageName",
    "Tags",
    "TracingEnabled",
    "Variables",
];

const API_AUTH: &[&str] = &[
    "AddApiKeyRequiredToCorsPreflight",
    "AddDefaultAuthorizerToCorsPreflight",
    "ApiKeyRequired",
    "Authorizers",
    "DefaultAuthorizer",
    "InvokeRole",
    "ResourcePolicy",
    "UsagePlan",
];

const HTTP_API: &[&str] = &[
    "AccessLogSettings",
    "Auth",
    "CorsConfiguration",
    "DefaultRouteSettings",
    "DefinitionBody",
    "DefinitionUri",
    "Description",
    "DisableExecuteApiEndpoint",
    "Domain",
    "FailOnWarnings",
    "Name",
    "PropagateTags",
    "RouteSettings",
    "StageName",
    "StageVariables",
    "Tags",
];

const HTTP_API_AUTH: &[&str] = &["Authorizers", "DefaultAuthorizer", "EnableIamAuthorizer"];

const API_EVENT: &[&str] = &[
    "Auth",
    "Method",
    "Path",
    "RequestModel",
    "RequestParameters",
    "ResponseTransferMode",
    "RestApiId",
    "TimeoutInMillis",
];

const API_EVENT_AUTH: &[&str] = &[
    "ApiKeyRequired",
    "AuthorizationScopes",
    "Authorizer",
    "InvokeRole",
    "OverrideApiAuth",
    "ResourcePolicy",
];

const HTTP_API_EVENT: &[&str] = &[
    "ApiId",
    "Auth",
    "Method",
    "Path",
    "PayloadFormatVersion",
    "RouteSettings",
    "TimeoutInMillis",
];

const HTTP_API_EVENT_AUTH: &[&str] = &["AuthorizationScopes", "Authorizer"];

/// Every event type of `AWS::Serverless::Function`.
const EVENT_TYPES: &[&str] = &[
    "AlexaSkill",
    "Api",
    "CloudWatchEvent",
    "CloudWatchLogs",
    "Cognito",
    "DocumentDB",
    "DynamoDB",
    "EventBridgeRule",
    "HttpApi",
    "IoTRule",
    "Kinesis",
    "MQ",
    "MSK",
    "S3",
    "Schedule",
    "ScheduleV2",
    "SelfManagedKafka",
    "SNS",
    "SQS",
];

/// Warns about property names of `props` that are not in `known`.
fn check_names(props: &Node, known: &[&str], path: &str, what: &str, diags: &mut Diags) {
    for e in props.entries().unwrap_or_default() {
        if !known.contains(&e.key.as_str()) {
            diags.warn(
                &child(path, &e.key),
                e.key_pos,
                format!(
                    "{:?} is not a property of {what}{}; nimbus ignores it",
                    e.key,
                    did_you_mean(&e.key, known.iter().copied())
                ),
            );
        }
    }
}

/// Checks the properties of one resource of a SAM type (before intrinsics are resolved, so
/// positions are exact).
pub(crate) fn check(resource_type: &str, props: &Node, path: &str, diags: &mut Diags) {
    match resource_type {
        "AWS::Serverless::Function" => {
            check_names(props, FUNCTION, path, "AWS::Serverless::Function", diags);
            if let Some(events) = props.get("Events") {
                for ev in events.entries().unwrap_or_default() {
                    check_event(&ev.value, &child(&child(path, "Events"), &ev.key), diags);
                }
            }
        }
        "AWS::Serverless::Api" => {
            check_names(props, API, path, "AWS::Serverless::Api", diags);
            if let Some(auth) = props.get("Auth") {
                check_names(auth, API_AUTH, &child(path, "Auth"), "an Api's Auth", diags);
            }
        }
        "AWS::Serverless::HttpApi" => {
            check_names(props, HTTP_API, path, "AWS::Serverless::HttpApi", diags);
            if let Some(auth) = props.get("Auth") {
                check_names(
                    auth,
                    HTTP_API_AUTH,
                    &child(path, "Auth"),
                    "an HttpApi's Auth",
                    diags,
                );
            }
        }
        _ => {}
    }
}

fn check_event(event: &Node, path: &str, diags: &mut Diags) {
    let Some(ty) = event.entry("Type") else {
        return;
    };
    let Some(name) = ty.value.as_str() else {
        return;
    };
    if !EVENT_TYPES.contains(&name) {
        diags.error(
            &child(path, "Type"),
            ty.value.pos,
            format!(
                "unknown event type {name:?}{}; SAM's event types are {}",
                did_you_mean(name, EVENT_TYPES.iter().copied()),
                EVENT_TYPES.join(", ")
            ),
        );
        return;
    }
    let (known, auth_known, what) = match name {
        "Api" => (API_EVENT, API_EVENT_AUTH, "an Api event"),
        "HttpApi" => (HTTP_API_EVENT, HTTP_API_EVENT_AUTH, "an HttpApi event"),
        _ => return,
    };
    let Some(props) = event.get("Properties") else {
        return;
    };
    let props_path = child(path, "Properties");
    check_names(props, known, &props_path, what, diags);
    if let Some(auth) = props.get("Auth") {
        check_names(
            auth,
            auth_known,
            &child(&props_path, "Auth"),
            &format!("{what}'s Auth"),
            diags,
        );
    }
}
