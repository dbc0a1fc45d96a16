//! Authorizers declared outside SAM's `Auth`: OpenAPI security schemes with
//! `x-amazon-apigateway-authorizer`, and CloudFormation's `AWS::ApiGateway::Authorizer` /
//! `AWS::ApiGatewayV2::Authorizer`. Each is rewritten into SAM's `Auth.Authorizers` shape and
//! read by [`crate::config::authorizer`], so every way of declaring an authorizer runs the same
//! code. Pure: reads JSON.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::config::AuthorizerConfig;
use crate::ApiKind;

/// An OpenAPI document's security schemes (`components.securitySchemes`, Swagger's
/// `securityDefinitions`).
pub(crate) fn schemes(doc: &Value) -> &Value {
    if doc["components"]["securitySchemes"].is_object() {
        &doc["components"]["securitySchemes"]
    } else {
        &doc["securityDefinitions"]
    }
}

/// The authorizers among `doc`'s security schemes, by scheme name. A Cognito user pool
/// authorizer is not served: its routes stay open, said in `warnings`.
pub(crate) fn from_openapi(
    kind: ApiKind,
    doc: &Value,
    source: &str,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, AuthorizerConfig> {
    let mut out = BTreeMap::new();
    let at = if doc["components"]["securitySchemes"].is_object() {
        format!("{source}.components.securitySchemes")
    } else {
        format!("{source}.securityDefinitions")
    };
    for (name, scheme) in schemes(doc).as_object().into_iter().flatten() {
        let a = &scheme["x-amazon-apigateway-authorizer"];
        if a.is_null() {
            continue;
        }
        let path = format!("{at}.{name}.x-amazon-apigateway-authorizer");
        let ty = a["type"].as_str().unwrap_or_default().to_ascii_lowercase();
        let ttl = a["authorizerResultTtlInSeconds"].clone();
        let sam = match ty.as_str() {
            "cognito_user_pools" => {
                warnings.push(format!("{path}: Cognito user pool authorizers are not served by nimbus; the routes {name} protects are open"));
                continue;
            }
            "jwt" => json!({
                "JwtConfiguration": a["jwtConfiguration"],
                "IdentitySource": a["identitySource"],
            }),
            "token" | "request" => {
                let uri = a["authorizerUri"].as_str().unwrap_or_default();
                let Some(function) = crate::openapi::function_of_uri(uri) else {
                    errors.push(format!("{path}.authorizerUri: {uri:?} names no Lambda function; use arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/FUNCTION_ARN/invocations"));
                    continue;
                };
                let mut sam =
                    json!({"FunctionArn": function, "Identity": {"ReauthorizeEvery": ttl}});
                match kind {
                    ApiKind::Rest => {
                        sam["FunctionPayloadType"] = ty.to_ascii_uppercase().into();
                        // A token authorizer reads the header the scheme names.
                        let header = a["identitySource"]
                            .as_str()
                            .and_then(|s| s.trim().strip_prefix("method.request.header."))
                            .or_else(|| scheme["name"].as_str());
                        if ty == "token" {
                            sam["Identity"]["Header"] = header.unwrap_or("Authorization").into();
                        } else {
                            sam["IdentitySource"] = a["identitySource"].clone();
                        }
                    }
                    ApiKind::Http => {
                        sam["AuthorizerPayloadFormatVersion"] =
                            a["authorizerPayloadFormatVersion"].clone();
                        sam["EnableSimpleResponses"] = a["enableSimpleResponses"].clone();
                        sam["IdentitySource"] = a["identitySource"].clone();
                    }
                }
                sam
            }
            other => {
                errors.push(format!(
                    "{path}.type: {other:?} is not token, request, jwt or cognito_user_pools"
                ));
                continue;
            }
        };
        match crate::config::authorizer(kind, &clean(sam), &path) {
            Ok(a) => {
                out.insert(name.clone(), a);
            }
            Err(e) => errors.push(e),
        }
    }
    out
}

/// The authorizer and scopes an operation's `security` (else the document's) asks for, when
/// one of its schemes is an authorizer.
pub(crate) fn of_operation(
    doc: &Value,
    op: &Value,
    authorizers: &BTreeMap<String, AuthorizerConfig>,
) -> Option<(String, Vec<String>)> {
    let security = if op["security"].is_array() {
        &op["security"]
    } else {
        &doc["security"]
    };
    security.as_array()?.iter().find_map(|req| {
        req.as_object()?.iter().find_map(|(name, scopes)| {
            authorizers.contains_key(name).then(|| {
                let scopes = scopes
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| Some(s.as_str()?.to_owned()))
                    .collect();
                (name.clone(), scopes)
            })
        })
    })
}

/// An `AWS::ApiGateway::Authorizer` (REST) or `AWS::ApiGatewayV2::Authorizer` (HTTP API), read
/// as its SAM equivalent. `Ok(None)`: a Cognito authorizer, which nimbus does not serve.
pub(crate) fn from_cfn(
    kind: ApiKind,
    p: &Value,
    path: &str,
) -> Result<Option<AuthorizerConfig>, String> {
    let ty = p["Type"]
        .as_str()
        .or_else(|| p["AuthorizerType"].as_str())
        .unwrap_or_default()
        .to_ascii_uppercase();
    let ttl = p["AuthorizerResultTtlInSeconds"].clone();
    let lambda = || {
        let uri = p["AuthorizerUri"].as_str().unwrap_or_default();
        crate::openapi::function_of_uri(uri).ok_or_else(|| {
            format!("{path}.AuthorizerUri: {uri:?} names no Lambda function; use arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/FUNCTION_ARN/invocations")
        })
    };
    let sources = match &p["IdentitySource"] {
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        v => v.as_str().unwrap_or_default().to_owned(),
    };
    let sam = match (kind, ty.as_str()) {
        (_, "COGNITO_USER_POOLS") => return Ok(None),
        (ApiKind::Rest, "TOKEN") => {
            let header = sources
                .trim()
                .strip_prefix("method.request.header.")
                .unwrap_or("Authorization");
            json!({"FunctionArn": lambda()?, "FunctionPayloadType": "TOKEN",
                   "Identity": {"Header": header, "ReauthorizeEvery": ttl}})
        }
        (ApiKind::Rest, "REQUEST") => json!({
            "FunctionArn": lambda()?, "FunctionPayloadType": "REQUEST",
            "IdentitySource": sources, "Identity": {"ReauthorizeEvery": ttl},
        }),
        (ApiKind::Http, "REQUEST") => json!({
            "FunctionArn": lambda()?,
            "AuthorizerPayloadFormatVersion": p["AuthorizerPayloadFormatVersion"],
            "EnableSimpleResponses": p["EnableSimpleResponses"],
            "IdentitySource": sources, "Identity": {"ReauthorizeEvery": ttl},
        }),
        (ApiKind::Http, "JWT") => json!({
            "JwtConfiguration": {
                "issuer": p["JwtConfiguration"]["Issuer"],
                "audience": p["JwtConfiguration"]["Audience"],
            },
            "IdentitySource": sources,
        }),
        (ApiKind::Rest, other) => {
            return Err(format!(
                "{path}.Type: {other:?} is not TOKEN, REQUEST or COGNITO_USER_POOLS"
            ))
        }
        (ApiKind::Http, other) => {
            return Err(format!(
                "{path}.AuthorizerType: {other:?} is not REQUEST or JWT"
            ))
        }
    };
    crate::config::authorizer(kind, &clean(sam), path).map(Some)
}

/// Drops the nulls a translation leaves for properties the source did not set, so SAM's
/// defaults apply.
fn clean(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
                .map(|(k, v)| (k, clean(v)))
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LambdaAuthorizerKind;

    const URI: &str = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:Auth/invocations";

    #[test]
    fn cloudformation_authorizers_read_as_their_sam_equivalents() {
        let table = [
            (
                ApiKind::Rest,
                json!({"Type": "TOKEN", "AuthorizerUri": URI, "IdentitySource": "method.request.header.X-Token", "AuthorizerResultTtlInSeconds": 0}),
                AuthorizerConfig::Lambda {
                    function: "Auth".into(),
                    kind: LambdaAuthorizerKind::RestToken,
                    identity_sources: vec!["header:x-token".into()],
                    ttl_secs: 0,
                },
            ),
            (
                ApiKind::Rest,
                json!({"Type": "REQUEST", "AuthorizerUri": URI, "IdentitySource": "method.request.header.A, method.request.querystring.b"}),
                AuthorizerConfig::Lambda {
                    function: "Auth".into(),
                    kind: LambdaAuthorizerKind::RestRequest,
                    identity_sources: vec!["header:a".into(), "query:b".into()],
                    ttl_secs: 300,
                },
            ),
            (
                ApiKind::Http,
                json!({"AuthorizerType": "JWT", "IdentitySource": ["$request.header.Authorization"], "JwtConfiguration": {"Issuer": "https://i", "Audience": ["app"]}}),
                AuthorizerConfig::Jwt {
                    issuer: "https://i".into(),
                    audiences: vec!["app".into()],
                    identity_source: "$request.header.Authorization".into(),
                },
            ),
        ];
        for (kind, props, want) in table {
            assert_eq!(from_cfn(kind, &props, "P"), Ok(Some(want)), "{props}");
        }
        assert_eq!(
            from_cfn(ApiKind::Rest, &json!({"Type": "COGNITO_USER_POOLS"}), "P"),
            Ok(None)
        );
    }

    #[test]
    fn bad_authorizers_are_refused_naming_the_property() {
        let table = [
            (
                ApiKind::Rest,
                json!({"Type": "TOKEN", "AuthorizerUri": "arn:aws:lambda:nothing"}),
                "P.AuthorizerUri: \"arn:aws:lambda:nothing\" names no Lambda function",
            ),
            (
                ApiKind::Rest,
                json!({"Type": "AWS_IAM"}),
                "P.Type: \"AWS_IAM\" is not TOKEN, REQUEST or COGNITO_USER_POOLS",
            ),
            (
                ApiKind::Http,
                json!({"AuthorizerType": "TOKEN"}),
                "P.AuthorizerType: \"TOKEN\" is not REQUEST or JWT",
            ),
        ];
        for (kind, props, want) in table {
            let e = from_cfn(kind, &props, "P").unwrap_err();
            assert!(e.starts_with(want), "{e}");
        }
        let mut errors = Vec::new();
        let doc = json!({"components": {"securitySchemes": {"s": {"x-amazon-apigateway-authorizer": {"type": "token", "authorizerUri": "nope"}}}}});
        let read = from_openapi(ApiKind::Rest, &doc, "D", &mut errors, &mut Vec::new());
        assert!(read.is_empty());
        assert!(
            errors[0].starts_with("D.components.securitySchemes.s.x-amazon-apigateway-authorizer.authorizerUri: \"nope\" names no Lambda function"),
            "{errors:?}"
        );
    }
}
