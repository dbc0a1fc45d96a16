//! The template's buckets: `AWS::S3::Bucket` (name, `VersioningConfiguration`,
//! `NotificationConfiguration`) and SAM functions' `S3` events, which become the bucket's
//! Lambda notifications as the SAM transform makes them.

use serde_json::Value;

use crate::notify::{Notification, Rule, TargetKind};
use crate::state::Versioning;

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateBucket {
    pub logical_id: String,
    pub name: String,
    pub versioning: Option<Versioning>,
    pub notification: Notification,
    /// `CorsConfiguration` as the XML `GetBucketCors` answers with.
    pub cors: Option<String>,
    /// `LifecycleConfiguration` as the XML `GetBucketLifecycleConfiguration` answers with.
    pub lifecycle: Option<String>,
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// `Filter: {S3Key: {Rules: [{Name, Value}]}}`.
fn filter_rules(filter: &Value) -> Vec<(String, String)> {
    filter["S3Key"]["Rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["Name"].as_str().unwrap_or_default().to_owned(),
                r["Value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The template's buckets, or every problem found (each naming the resource and property).
pub fn template_buckets(
    stack: &nimbus_template::Stack,
) -> Result<Vec<TemplateBucket>, Vec<String>> {
    let mut buckets = Vec::new();
    let mut errors = Vec::new();
    for (id, r) in &stack.resources {
        if r.resource_type != "AWS::S3::Bucket" {
            continue;
        }
        let p = &r.properties;
        let at = |prop: &str| {
            let line = r.property_lines.get(prop).copied().unwrap_or(r.line);
            format!("Resources.{id}.Properties.{prop} (line {line})")
        };
        let name = match p["BucketName"].as_str() {
            Some(n) => n.to_owned(),
            None => crate::names::default_bucket_name(id),
        };
        if let Some(problem) = crate::names::bucket_problem(&name) {
            errors.push(format!(
                "{}: {name:?} is not a valid bucket name: {problem}",
                at("BucketName")
            ));
            continue;
        }
        let versioning = match p["VersioningConfiguration"]["Status"].as_str() {
            None => None,
            Some("Enabled") => Some(Versioning::Enabled),
            Some("Suspended") => Some(Versioning::Suspended),
            Some(other) => {
                errors.push(format!(
                    "{}.Status: {other:?} is not Enabled or Suspended",
                    at("VersioningConfiguration")
                ));
                None
            }
        };
        let nc = &p["NotificationConfiguration"];
        let mut notification = Notification {
            eventbridge: nc["EventBridgeConfiguration"]["EventBridgeEnabled"]
                .as_bool()
                .or_else(|| {
                    nc["EventBridgeConfiguration"]["EventBridgeEnabled"]
                        .as_str()
                        .map(|s| s == "true")
                })
                .unwrap_or(false),
            ..Notification::default()
        };
        for (list, kind, arn_key) in [
            ("LambdaConfigurations", TargetKind::Function, "Function"),
            ("QueueConfigurations", TargetKind::Queue, "Queue"),
            ("TopicConfigurations", TargetKind::Topic, "Topic"),
        ] {
            for (i, c) in nc[list].as_array().into_iter().flatten().enumerate() {
                let path = format!("{}.{list}[{i}]", at("NotificationConfiguration"));
                let Some(arn) = c[arn_key].as_str() else {
                    errors.push(format!("{path}.{arn_key}: an ARN is required"));
                    continue;
                };
                match Rule::new(
                    None,
                    kind,
                    arn.to_owned(),
                    strings(&c["Event"]),
                    filter_rules(&c["Filter"]),
                ) {
                    Ok(rule) => notification.rules.push(rule),
                    Err(e) => errors.push(format!("{path}: {}", e.message)),
                }
            }
        }
        let cors = match &p["CorsConfiguration"] {
            Value::Null => None,
            c => match crate::cors::template_xml(c) {
                Ok(x) => Some(x),
                Err(why) => {
                    errors.push(format!("{}: {why}", at("CorsConfiguration")));
                    None
                }
            },
        };
        let lifecycle = match &p["LifecycleConfiguration"] {
            Value::Null => None,
            c => match crate::lifecycle::template_xml(c) {
                Ok(x) => Some(x),
                Err(why) => {
                    errors.push(format!("{}: {why}", at("LifecycleConfiguration")));
                    None
                }
            },
        };
        buckets.push(TemplateBucket {
            logical_id: id.clone(),
            name,
            versioning,
            notification,
            cors,
            lifecycle,
        });
    }
    // SAM's S3 events: the bucket must be in the same template (SAM says so too).
    for f in &stack.functions {
        for (event_id, ev) in &f.events {
            if ev["Type"] != "S3" {
                continue;
            }
            let p = &ev["Properties"];
            let at = format!(
                "Resources.{}.Properties.Events.{event_id} (line {})",
                f.logical_id, f.line
            );
            let Some(bucket) = p["Bucket"].as_str() else {
                errors.push(format!("{at}.Properties.Bucket: a !Ref to an AWS::S3::Bucket of this template is required"));
                continue;
            };
            let Some(b) = buckets.iter_mut().find(|b| b.name == bucket) else {
                errors.push(format!("{at}.Properties.Bucket: {bucket:?} is not an AWS::S3::Bucket of this template (SAM's S3 events need the bucket in the same template)"));
                continue;
            };
            let arn = format!(
                "arn:aws:lambda:{}:{}:function:{}",
                stack.region,
                stack.account_id,
                f.event_target()
            );
            match Rule::new(
                Some(format!("{}{event_id}", f.logical_id)),
                TargetKind::Function,
                arn,
                strings(&p["Events"]),
                filter_rules(&p["Filter"]),
            ) {
                Ok(rule) => b.notification.rules.push(rule),
                Err(e) => errors.push(format!("{at}.Properties: {}", e.message)),
            }
        }
    }
    if errors.is_empty() {
        Ok(buckets)
    } else {
        Err(errors)
    }
}
