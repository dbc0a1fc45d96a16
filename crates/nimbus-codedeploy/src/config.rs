//! What a function's `DeploymentPreference` asks for: how traffic moves from the alias's version
//! to the new one, and what may stop it. Pure: the template's resolved properties in, a
//! [`Preference`] or a message naming the property out.

use std::collections::BTreeMap;

use serde_json::Value;

/// How a deployment moves traffic to the new version.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Routing {
    /// `percent` at once, the rest after `interval_min` minutes.
    Canary {
        percent: u32,
        interval_min: u32,
    },
    /// `percent` more every `interval_min` minutes.
    Linear {
        percent: u32,
        interval_min: u32,
    },
    AllAtOnce,
}

/// One move of traffic: `after_ms` from the start of shifting, the new version gets `weight`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub after_ms: u64,
    pub weight: f64,
}

/// CodeDeploy's predefined Lambda deployment configurations, as SAM's `Type` names them.
pub const PREDEFINED: &[(&str, Routing)] = &[
    ("Canary10Percent30Minutes", canary(10, 30)),
    ("Canary10Percent5Minutes", canary(10, 5)),
    ("Canary10Percent10Minutes", canary(10, 10)),
    ("Canary10Percent15Minutes", canary(10, 15)),
    ("Linear10PercentEvery10Minutes", linear(10, 10)),
    ("Linear10PercentEvery1Minute", linear(10, 1)),
    ("Linear10PercentEvery2Minutes", linear(10, 2)),
    ("Linear10PercentEvery3Minutes", linear(10, 3)),
    ("AllAtOnce", Routing::AllAtOnce),
];

const fn canary(percent: u32, interval_min: u32) -> Routing {
    Routing::Canary {
        percent,
        interval_min,
    }
}

const fn linear(percent: u32, interval_min: u32) -> Routing {
    Routing::Linear {
        percent,
        interval_min,
    }
}

impl Routing {
    /// The moves of traffic, the first at the start of shifting, the last to weight 1.
    pub fn steps(&self) -> Vec<Step> {
        let minute = 60_000;
        match *self {
            Routing::AllAtOnce => vec![Step {
                after_ms: 0,
                weight: 1.0,
            }],
            Routing::Canary {
                percent,
                interval_min,
            } => vec![
                Step {
                    after_ms: 0,
                    weight: f64::from(percent.min(100)) / 100.0,
                },
                Step {
                    after_ms: u64::from(interval_min) * minute,
                    weight: 1.0,
                },
            ],
            Routing::Linear {
                percent,
                interval_min,
            } => {
                let percent = percent.clamp(1, 100);
                let mut steps = Vec::new();
                let mut share = percent;
                let mut i = 0u64;
                while share < 100 {
                    steps.push(Step {
                        after_ms: i * u64::from(interval_min) * minute,
                        weight: f64::from(share) / 100.0,
                    });
                    share += percent;
                    i += 1;
                }
                steps.push(Step {
                    after_ms: i * u64::from(interval_min) * minute,
                    weight: 1.0,
                });
                steps
            }
        }
    }
}

/// A function's `DeploymentPreference`.
#[derive(Debug, Clone, PartialEq)]
pub struct Preference {
    /// CodeDeploy's name of the configuration, e.g. `CodeDeployDefault.LambdaCanary10Percent5Minutes`.
    pub config_name: String,
    pub routing: Routing,
    /// Alarm names: any in ALARM stops the deployment and rolls it back.
    pub alarms: Vec<String>,
    /// `Hooks.PreTraffic` / `Hooks.PostTraffic`: function names.
    pub pre_traffic: Option<String>,
    pub post_traffic: Option<String>,
}

/// The template's `AWS::CodeDeploy::DeploymentConfig`s for Lambda: name to routing, from their
/// resolved properties by name (`DeploymentConfigName`, or the logical id).
pub fn custom_config(props: &Value) -> Result<Routing, String> {
    let t = &props["TrafficRoutingConfig"];
    let int = |v: &Value, what: &str| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .map(|n| n as u32)
            .ok_or_else(|| format!("TrafficRoutingConfig.{what} must be a number"))
    };
    match t["Type"].as_str() {
        Some("TimeBasedCanary") => Ok(Routing::Canary {
            percent: int(
                &t["TimeBasedCanary"]["CanaryPercentage"],
                "TimeBasedCanary.CanaryPercentage",
            )?,
            interval_min: int(
                &t["TimeBasedCanary"]["CanaryInterval"],
                "TimeBasedCanary.CanaryInterval",
            )?,
        }),
        Some("TimeBasedLinear") => Ok(Routing::Linear {
            percent: int(
                &t["TimeBasedLinear"]["LinearPercentage"],
                "TimeBasedLinear.LinearPercentage",
            )?,
            interval_min: int(
                &t["TimeBasedLinear"]["LinearInterval"],
                "TimeBasedLinear.LinearInterval",
            )?,
        }),
        Some("AllAtOnce") | None => Ok(Routing::AllAtOnce),
        Some(other) => Err(format!(
            "TrafficRoutingConfig.Type {other:?} is not one of TimeBasedCanary, TimeBasedLinear, AllAtOnce"
        )),
    }
}

/// Reads a function's `DeploymentPreference` (its properties after `Globals`). `Ok(None)` when
/// it has none or it is `Enabled: false`.
pub fn preference(
    props: &Value,
    customs: &BTreeMap<String, Routing>,
) -> Result<Option<Preference>, String> {
    let Some(p) = props.get("DeploymentPreference") else {
        return Ok(None);
    };
    let enabled = match &p["Enabled"] {
        Value::Null => true,
        Value::Bool(b) => *b,
        Value::String(s) if s.eq_ignore_ascii_case("false") => false,
        Value::String(s) if s.eq_ignore_ascii_case("true") => true,
        other => {
            return Err(format!(
                "DeploymentPreference.Enabled must be true or false, got {other}"
            ))
        }
    };
    if !enabled {
        return Ok(None);
    }
    if props.get("AutoPublishAlias").is_none() {
        return Err("'DeploymentPreference' needs 'AutoPublishAlias' property to be specified: a deployment shifts the traffic of that alias".into());
    }
    let Some(kind) = p["Type"].as_str() else {
        return Err("DeploymentPreference.Type is required (e.g. Canary10Percent5Minutes, Linear10PercentEvery1Minute, AllAtOnce)".into());
    };
    let (config_name, routing) = match PREDEFINED.iter().find(|(name, _)| *name == kind) {
        Some((name, routing)) => (format!("CodeDeployDefault.Lambda{name}"), *routing),
        None => match customs.get(kind) {
            Some(routing) => (kind.to_owned(), *routing),
            None => {
                let known: Vec<&str> = PREDEFINED.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "DeploymentPreference.Type {kind:?} is neither a predefined configuration ({}) nor an AWS::CodeDeploy::DeploymentConfig of the template",
                    known.join(", ")
                ));
            }
        },
    };
    let names = |v: &Value, what: &str| -> Result<Vec<String>, String> {
        match v {
            Value::Null => Ok(vec![]),
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{what} must list names, got {i}"))
                })
                .collect(),
            other => Err(format!("{what} must be a list, got {other}")),
        }
    };
    let hook = |key: &str| -> Result<Option<String>, String> {
        match &p["Hooks"][key] {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            other => Err(format!(
                "DeploymentPreference.Hooks.{key} must name a function, got {other}"
            )),
        }
    };
    Ok(Some(Preference {
        config_name,
        routing,
        alarms: names(&p["Alarms"], "DeploymentPreference.Alarms")?,
        pre_traffic: hook("PreTraffic")?,
        post_traffic: hook("PostTraffic")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn predefined_configurations_shift_as_codedeploy_documents() {
        let m = 60_000;
        let weights = |r: Routing| -> Vec<(u64, f64)> {
            r.steps()
                .iter()
                .map(|s| (s.after_ms / m, s.weight))
                .collect()
        };
        let table: &[(&str, Vec<(u64, f64)>)] = &[
            ("Canary10Percent5Minutes", vec![(0, 0.1), (5, 1.0)]),
            ("Canary10Percent30Minutes", vec![(0, 0.1), (30, 1.0)]),
            ("AllAtOnce", vec![(0, 1.0)]),
        ];
        for (name, want) in table {
            let r = PREDEFINED.iter().find(|(n, _)| n == name).unwrap().1;
            assert_eq!(&weights(r), want, "{name}");
        }
        let every_minute = weights(linear(10, 1));
        assert_eq!(every_minute.len(), 10);
        assert_eq!(every_minute[0], (0, 0.1));
        assert_eq!(every_minute[9], (9, 1.0));
        assert_eq!(
            weights(linear(30, 2)),
            vec![(0, 0.3), (2, 0.6), (4, 0.9), (6, 1.0)]
        );
    }

    #[test]
    fn preferences_are_read_or_refused_with_the_property_named() {
        let customs = BTreeMap::from([("Quick".to_owned(), canary(50, 1))]);
        let ok = preference(
            &json!({"AutoPublishAlias": "live", "DeploymentPreference": {
                "Type": "Canary10Percent5Minutes", "Alarms": ["Errors"],
                "Hooks": {"PreTraffic": "PreHook"}}}),
            &customs,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            ok.config_name,
            "CodeDeployDefault.LambdaCanary10Percent5Minutes"
        );
        assert_eq!(ok.alarms, ["Errors"]);
        assert_eq!(ok.pre_traffic.as_deref(), Some("PreHook"));
        let custom = preference(
            &json!({"AutoPublishAlias": "live", "DeploymentPreference": {"Type": "Quick"}}),
            &customs,
        )
        .unwrap()
        .unwrap();
        assert_eq!(custom.routing, canary(50, 1));
        let disabled = json!({"AutoPublishAlias": "live", "DeploymentPreference": {"Type": "AllAtOnce", "Enabled": false}});
        assert_eq!(preference(&disabled, &customs), Ok(None));
        let bad: &[(Value, &str)] = &[
            (
                json!({"DeploymentPreference": {"Type": "AllAtOnce"}}),
                "AutoPublishAlias",
            ),
            (
                json!({"AutoPublishAlias": "a", "DeploymentPreference": {"Type": "Canary5"}}),
                "neither a predefined",
            ),
            (
                json!({"AutoPublishAlias": "a", "DeploymentPreference": {}}),
                "Type is required",
            ),
            (
                json!({"AutoPublishAlias": "a", "DeploymentPreference": {"Type": "AllAtOnce", "Alarms": "x"}}),
                "must be a list",
            ),
        ];
        for (props, want) in bad {
            let err = preference(props, &customs).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }
}
