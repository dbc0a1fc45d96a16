//! CloudFormation's dynamic references in function environments: `{{resolve:ssm:name}}`,
//! `{{resolve:ssm:name:version}}` and
//! `{{resolve:secretsmanager:secret-id:SecretString:json-key:version-stage:version-id}}`,
//! resolved from nimbus's own Parameter Store and Secrets Manager when `up` starts, as
//! CloudFormation resolves them when it deploys. A reference that cannot be resolved stops the
//! start, as it fails a deployment.

use serde_json::{json, Value};

/// One dynamic reference, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum DynRef {
    Ssm {
        name: String,
        version: Option<String>,
    },
    SsmSecure,
    Secret {
        id: String,
        json_key: Option<String>,
        stage: Option<String>,
        version_id: Option<String>,
    },
}

/// The references in `text`, each with its byte range; an error names a malformed one.
pub fn find(text: &str) -> Result<Vec<(std::ops::Range<usize>, DynRef)>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(start) = text[at..].find("{{resolve:").map(|i| at + i) {
        let end = text[start..]
            .find("}}")
            .map(|i| start + i + 2)
            .ok_or_else(|| format!("{:?} has no closing }}}}", &text[start..]))?;
        let body = &text[start + "{{resolve:".len()..end - 2];
        out.push((start..end, parse(body)?));
        at = end;
    }
    Ok(out)
}

fn parse(body: &str) -> Result<DynRef, String> {
    let (service, rest) = body
        .split_once(':')
        .ok_or_else(|| format!("{{{{resolve:{body}}}}} names no service"))?;
    match service {
        "ssm" => {
            let (name, version) = match rest.rsplit_once(':') {
                Some((n, v)) if v.chars().all(|c| c.is_ascii_digit()) && !v.is_empty() => {
                    (n, Some(v.to_owned()))
                }
                _ => (rest, None),
            };
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
            match ok {
                true => Ok(DynRef::Ssm {
                    name: name.to_owned(),
                    version,
                }),
                false => Err(format!(
                    "{{{{resolve:ssm:{rest}}}}}: a parameter name of letters, digits and _.-/, then :version if any"
                )),
            }
        }
        "ssm-secure" => Ok(DynRef::SsmSecure),
        "secretsmanager" => {
            // An ARN holds colons of its own: the id ends where `:SecretString:` begins.
            let (id, tail) = match rest.split_once(":SecretString") {
                Some((id, tail)) => (id, tail.strip_prefix(':').unwrap_or(tail)),
                None => (rest.trim_end_matches(':'), ""),
            };
            let mut parts = tail.split(':').map(|s| (!s.is_empty()).then(|| s.to_owned()));
            let (json_key, stage, version_id) = (
                parts.next().flatten(),
                parts.next().flatten(),
                parts.next().flatten(),
            );
            if id.is_empty() {
                return Err(format!("{{{{resolve:secretsmanager:{rest}}}}} names no secret"));
            }
            if stage.is_some() && version_id.is_some() {
                return Err(format!(
                    "{{{{resolve:secretsmanager:{rest}}}}}: give a version stage or a version id, not both"
                ));
            }
            Ok(DynRef::Secret {
                id: id.to_owned(),
                json_key,
                stage,
                version_id,
            })
        }
        other => Err(format!(
            "{{{{resolve:{other}:...}}}} is not a dynamic reference CloudFormation knows (ssm, ssm-secure, secretsmanager)"
        )),
    }
}

/// `text` with its references replaced by their values; `at` says where it is, for messages.
pub fn resolve(
    text: &str,
    at: &str,
    ssm: &nimbus_ssm::ParameterStore,
    secrets: &nimbus_secrets::SecretsManager,
    now_ms: u64,
) -> Result<String, String> {
    let refs = find(text).map_err(|e| format!("{at}: {e}"))?;
    if refs.is_empty() {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (range, r) in refs {
        out.push_str(&text[last..range.start]);
        let value = match r {
            DynRef::Ssm { name, version } => {
                let selector = match &version {
                    Some(v) => format!("{name}:{v}"),
                    None => name.clone(),
                };
                ssm.dispatch("GetParameter", &json!({"Name": selector}), now_ms)
                    .map(|a| a["Parameter"]["Value"].as_str().unwrap_or("").to_owned())
                    .map_err(|e| {
                        format!("{at}: {{{{resolve:ssm:{selector}}}}}: {} {e}", e.code())
                    })?
            }
            DynRef::SsmSecure => {
                return Err(format!(
                    "{at}: SSM Secure reference is not supported in a function's environment (CloudFormation allows {{{{resolve:ssm-secure:...}}}} only in the properties it lists)"
                ))
            }
            DynRef::Secret {
                id,
                json_key,
                stage,
                version_id,
            } => {
                let mut input = json!({"SecretId": id});
                if let Some(s) = &stage {
                    input["VersionStage"] = s.clone().into();
                }
                if let Some(v) = &version_id {
                    input["VersionId"] = v.clone().into();
                }
                let answer = secrets
                    .dispatch("GetSecretValue", &input, now_ms)
                    .map_err(|e| format!("{at}: secret {id}: {} {e}", e.code()))?;
                let string = answer["SecretString"].as_str().unwrap_or("");
                match &json_key {
                    None => string.to_owned(),
                    Some(k) => {
                        let doc: Value = serde_json::from_str(string).map_err(|_| {
                            format!("{at}: secret {id} is not JSON, so it has no key {k:?}")
                        })?;
                        match &doc[k] {
                            Value::String(s) => s.clone(),
                            Value::Null => {
                                return Err(format!("{at}: secret {id} has no key {k:?}"))
                            }
                            other => other.to_string(),
                        }
                    }
                }
            }
        };
        out.push_str(&value);
        last = range.end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_cloudformation_writes_them() {
        let table = [
            (
                "{{resolve:ssm:/app/url}}",
                DynRef::Ssm {
                    name: "/app/url".into(),
                    version: None,
                },
            ),
            (
                "{{resolve:ssm:plain:3}}",
                DynRef::Ssm {
                    name: "plain".into(),
                    version: Some("3".into()),
                },
            ),
            (
                "{{resolve:secretsmanager:MySecret}}",
                DynRef::Secret {
                    id: "MySecret".into(),
                    json_key: None,
                    stage: None,
                    version_id: None,
                },
            ),
            (
                "{{resolve:secretsmanager:MySecret:SecretString:password:AWSPREVIOUS}}",
                DynRef::Secret {
                    id: "MySecret".into(),
                    json_key: Some("password".into()),
                    stage: Some("AWSPREVIOUS".into()),
                    version_id: None,
                },
            ),
            (
                "{{resolve:secretsmanager:arn:aws:secretsmanager:us-west-2:123456789012:secret:MySecret-a1b2c3:SecretString:password}}",
                DynRef::Secret {
                    id: "arn:aws:secretsmanager:us-west-2:123456789012:secret:MySecret-a1b2c3".into(),
                    json_key: Some("password".into()),
                    stage: None,
                    version_id: None,
                },
            ),
            (
                "{{resolve:secretsmanager:MySecret::::}}",
                DynRef::Secret {
                    id: "MySecret".into(),
                    json_key: None,
                    stage: None,
                    version_id: None,
                },
            ),
        ];
        for (text, want) in table {
            let found = find(&format!("pre-{text}-post")).unwrap();
            assert_eq!(found.len(), 1, "{text}");
            assert_eq!(found[0].1, want, "{text}");
        }
        assert!(find("no references here").unwrap().is_empty());
        for bad in [
            "{{resolve:ssm:bad name}}",
            "{{resolve:s3:x}}",
            "{{resolve:ssm:/a",
            "{{resolve:secretsmanager:S:SecretString:k:AWSCURRENT:v1}}",
        ] {
            assert!(find(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references_resolve_from_nimbus_stores_and_unknown_ones_stop_the_start() {
        let ssm = nimbus_ssm::ParameterStore::open(
            None,
            nimbus_ssm::SsmConfig {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
        )
        .unwrap();
        let secrets = nimbus_secrets::SecretsManager::open(
            None,
            nimbus_secrets::SecretsConfig {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
        )
        .unwrap();
        for v in ["one", "two"] {
            ssm.dispatch(
                "PutParameter",
                &json!({"Name": "/app/url", "Value": v, "Type": "String", "Overwrite": true}),
                1,
            )
            .unwrap();
        }
        secrets
            .dispatch(
                "CreateSecret",
                &json!({"Name": "db", "SecretString": "{\"password\": \"pw\", \"port\": 5432}"}),
                1,
            )
            .unwrap();
        let r = |t: &str| resolve(t, "Functions.F.Environment.X", &ssm, &secrets, 2);
        assert_eq!(r("{{resolve:ssm:/app/url}}").unwrap(), "two");
        assert_eq!(r("v={{resolve:ssm:/app/url:1}}!").unwrap(), "v=one!");
        assert_eq!(
            r("{{resolve:secretsmanager:db:SecretString:password}}@{{resolve:secretsmanager:db:SecretString:port}}").unwrap(),
            "pw@5432"
        );
        let missing = r("{{resolve:ssm:/nope}}").unwrap_err();
        assert!(
            missing.contains("Functions.F.Environment.X") && missing.contains("ParameterNotFound"),
            "{missing}"
        );
        assert!(r("{{resolve:secretsmanager:db:SecretString:user}}")
            .unwrap_err()
            .contains("no key"));
        assert!(r("{{resolve:ssm-secure:/x:1}}")
            .unwrap_err()
            .contains("not supported"));
    }
}
