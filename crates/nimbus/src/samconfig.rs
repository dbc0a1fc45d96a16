//! `samconfig.toml` / `samconfig.yaml` beside the template, read as `sam` reads it: an
//! environment (`--config-env`, default `default`) with per-command tables whose `parameters`
//! give `parameter_overrides`, `stack_name` and `region`. nimbus takes the `global` table, then
//! `deploy` over it, then `local_start_api` over that (what a user runs the stack with
//! locally wins); `--parameter-overrides`, `--stack-name` and `--region` win over the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::cli::TemplateArgs;

/// The commands whose settings apply to `nimbus up`, weakest first.
const COMMANDS: &[&str] = &["global", "deploy", "local_start_api"];
const FILE_NAMES: &[&str] = &["samconfig.toml", "samconfig.yaml", "samconfig.yml"];

/// What the template is loaded with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub parameter_overrides: BTreeMap<String, String>,
    pub stack_name: String,
    pub region: String,
    /// The configuration file read, if any.
    pub file: Option<PathBuf>,
}

/// Merges the configuration file (if there is one) with the command line.
pub fn settings(args: &TemplateArgs) -> anyhow::Result<Settings> {
    let file = match &args.config_file {
        Some(f) => Some(f.clone()),
        None => {
            let dir = match args.template.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            };
            FILE_NAMES.iter().map(|n| dir.join(n)).find(|p| p.is_file())
        }
    };
    let mut from_file = FileSettings::default();
    if let Some(path) = &file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        from_file = parse(path, &text, &args.config_env)?;
    }
    let mut parameter_overrides = from_file.parameter_overrides;
    parameter_overrides.extend(args.parameter_overrides.iter().cloned());
    Ok(Settings {
        parameter_overrides,
        stack_name: args
            .stack_name
            .clone()
            .or(from_file.stack_name)
            .unwrap_or_else(|| "nimbus".into()),
        region: args
            .region
            .clone()
            .or(from_file.region)
            .unwrap_or_else(|| "us-east-1".into()),
        file,
    })
}

#[derive(Debug, Default, PartialEq, Eq)]
struct FileSettings {
    parameter_overrides: BTreeMap<String, String>,
    stack_name: Option<String>,
    region: Option<String>,
}

/// One environment's settings from a samconfig file's text.
fn parse(path: &Path, text: &str, env: &str) -> anyhow::Result<FileSettings> {
    let is_toml = path.extension().is_none_or(|e| e == "toml");
    let doc: serde_json::Value = if is_toml {
        let value: toml::Value = toml::from_str(text)
            .with_context(|| format!("{} is not valid TOML", path.display()))?;
        serde_json::to_value(value)?
    } else {
        yaml_to_json(text).with_context(|| format!("{} is not valid YAML", path.display()))?
    };
    let mut out = FileSettings::default();
    let Some(environment) = doc.get(env) else {
        // A named environment that is not there is a mistake; no default one is fine.
        if env != "default" {
            bail!(
                "{} has no environment {env:?} (--config-env)",
                path.display()
            );
        }
        return Ok(out);
    };
    for command in COMMANDS {
        let params = &environment[*command]["parameters"];
        let at = |key: &str| format!("{}: {env}.{command}.parameters.{key}", path.display());
        match &params["parameter_overrides"] {
            serde_json::Value::Null => {}
            serde_json::Value::String(s) => {
                out.parameter_overrides
                    .extend(overrides(s).with_context(|| at("parameter_overrides"))?);
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    let s = item.as_str().with_context(|| {
                        format!(
                            "{}: expected strings of Key=Value",
                            at("parameter_overrides")
                        )
                    })?;
                    out.parameter_overrides
                        .extend(overrides(s).with_context(|| at("parameter_overrides"))?);
                }
            }
            _ => bail!(
                "{}: expected a string or a list of strings",
                at("parameter_overrides")
            ),
        }
        for (key, slot) in [
            ("stack_name", &mut out.stack_name),
            ("region", &mut out.region),
        ] {
            match &params[key] {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => *slot = Some(s.clone()),
                _ => bail!("{}: expected a string", at(key)),
            }
        }
    }
    Ok(out)
}

/// SAM's `parameter_overrides` text: `Key=Value` pairs separated by spaces, values optionally in
/// double quotes (with `\"` inside), or CloudFormation's `ParameterKey=K,ParameterValue=V`.
fn overrides(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    // Values may be secrets (NoEcho parameters): messages name keys and positions only.
    if quoted {
        bail!("a double quote is not closed");
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
        .into_iter()
        .map(|t| {
            if let Some(rest) = t.strip_prefix("ParameterKey=") {
                if let Some((k, v)) = rest.split_once(",ParameterValue=") {
                    return Ok((k.to_owned(), v.to_owned()));
                }
            }
            match t.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
                Some(_) => bail!("expected Key=Value, got a value without a key"),
                None => bail!("expected Key=Value, got a word without \"=\" (a value with spaces needs double quotes)"),
            }
        })
        .collect()
}

/// Plain YAML (maps, lists, scalars; what samconfig.yaml and OpenAPI files hold) as JSON,
/// with the YAML parser the template crate uses.
pub fn yaml_to_json(text: &str) -> anyhow::Result<serde_json::Value> {
    use yaml_rust2::{Yaml, YamlLoader};
    fn convert(y: &Yaml) -> serde_json::Value {
        match y {
            Yaml::Hash(h) => serde_json::Value::Object(
                h.iter()
                    .filter_map(|(k, v)| {
                        let key = match k {
                            Yaml::String(s) => s.clone(),
                            Yaml::Integer(i) => i.to_string(),
                            Yaml::Real(r) => r.clone(),
                            Yaml::Boolean(b) => b.to_string(),
                            _ => return None,
                        };
                        Some((key, convert(v)))
                    })
                    .collect(),
            ),
            Yaml::Array(a) => serde_json::Value::Array(a.iter().map(convert).collect()),
            Yaml::String(s) => serde_json::Value::String(s.clone()),
            Yaml::Real(r) => r
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(
                    || serde_json::Value::String(r.clone()),
                    serde_json::Value::Number,
                ),
            Yaml::Integer(i) => serde_json::Value::from(*i),
            Yaml::Boolean(b) => serde_json::Value::Bool(*b),
            _ => serde_json::Value::Null,
        }
    }
    let docs = YamlLoader::load_from_str(text)?;
    Ok(docs.first().map(convert).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_overrides_parse_as_sam_writes_them() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("Greeting=\"from-config\"", &[("Greeting", "from-config")]),
            (
                "A=1 B=\"two words\"  C=",
                &[("A", "1"), ("B", "two words"), ("C", "")],
            ),
            ("Url=https://x/?a=b", &[("Url", "https://x/?a=b")]),
            ("Q=\"say \\\"hi\\\"\"", &[("Q", "say \"hi\"")]),
            (
                "ParameterKey=Env,ParameterValue=prod ParameterKey=N,ParameterValue=2",
                &[("Env", "prod"), ("N", "2")],
            ),
        ];
        for (text, want) in cases {
            let got = overrides(text).unwrap();
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(got, want, "{text}");
        }
        for bad in ["NoEquals", "=x", "A=\"open"] {
            assert!(overrides(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn later_commands_win_and_environments_are_separate() {
        let toml = r#"version = 0.1
[default.global.parameters]
stack_name = "from-global"
parameter_overrides = "A=global B=global"
[default.deploy.parameters]
region = "eu-west-1"
parameter_overrides = ["B=deploy", "C=\"c c\""]
[prod.deploy.parameters]
stack_name = "prod-stack"
"#;
        let path = Path::new("samconfig.toml");
        let got = parse(path, toml, "default").unwrap();
        assert_eq!(got.stack_name.as_deref(), Some("from-global"));
        assert_eq!(got.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            got.parameter_overrides,
            BTreeMap::from([
                ("A".into(), "global".into()),
                ("B".into(), "deploy".into()),
                ("C".into(), "c c".into()),
            ])
        );
        let prod = parse(path, toml, "prod").unwrap();
        assert_eq!(prod.stack_name.as_deref(), Some("prod-stack"));
        assert!(parse(path, toml, "staging")
            .unwrap_err()
            .to_string()
            .contains("has no environment \"staging\""));
    }

    #[test]
    fn yaml_files_read_the_same() {
        let yaml = "version: 0.1\ndefault:\n  deploy:\n    parameters:\n      stack_name: y\n      parameter_overrides: A=1 B=2\n";
        let got = parse(Path::new("samconfig.yaml"), yaml, "default").unwrap();
        assert_eq!(got.stack_name.as_deref(), Some("y"));
        assert_eq!(got.parameter_overrides.len(), 2);
    }

    #[test]
    fn bad_files_say_where() {
        let err = parse(Path::new("samconfig.toml"), "[default", "default").unwrap_err();
        assert!(
            format!("{err:#}").starts_with("samconfig.toml is not valid TOML"),
            "{err:#}"
        );
        let err = parse(
            Path::new("samconfig.toml"),
            "[default.deploy.parameters]\nparameter_overrides = 3\n",
            "default",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "samconfig.toml: default.deploy.parameters.parameter_overrides: expected a string or a list of strings"
        );
    }
}
