//! Event notifications: a bucket's `NotificationConfiguration` (from the template or
//! `PutBucketNotificationConfiguration`), which events match which destination, and the records
//! S3 sends: the `Records` document to Lambda, SQS and SNS, the `Object Created` /
//! `Object Deleted` events to EventBridge's default bus. Pure except [`deliver`].

use nimbus_events::{Dest, Hub};

use crate::error::S3Error;
use crate::xml;

/// The event types S3 notifies (`s3:ObjectCreated:*` and its members, ...).
const EVENT_TYPES: &[&str] = &[
    "s3:TestEvent",
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:ObjectAcl:Put",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ReducedRedundancyLostObject",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:Replication:OperationNotTracked",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Function,
    Queue,
    Topic,
}

impl TargetKind {
    fn element(self) -> (&'static str, &'static str) {
        match self {
            TargetKind::Function => ("CloudFunctionConfiguration", "CloudFunction"),
            TargetKind::Queue => ("QueueConfiguration", "Queue"),
            TargetKind::Topic => ("TopicConfiguration", "Topic"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub kind: TargetKind,
    pub arn: String,
    pub events: Vec<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notification {
    pub rules: Vec<Rule>,
    pub eventbridge: bool,
}

impl Rule {
    /// Builds a rule, checking its event types and ARN as S3 does.
    pub fn new(
        id: Option<String>,
        kind: TargetKind,
        arn: String,
        events: Vec<String>,
        filters: Vec<(String, String)>,
    ) -> Result<Rule, S3Error> {
        if events.is_empty() {
            return Err(S3Error::malformed_xml());
        }
        for e in &events {
            if !EVENT_TYPES.contains(&e.as_str()) {
                return Err(S3Error::invalid_argument(
                    "The event is not supported for notifications",
                    "Event",
                    e,
                ));
            }
        }
        let service = match kind {
            TargetKind::Function => "lambda",
            TargetKind::Queue => "sqs",
            TargetKind::Topic => "sns",
        };
        if arn.split(':').nth(2) != Some(service) || dest_of(kind, &arn).is_none() {
            return Err(S3Error::invalid_argument(
                "Unable to validate the following destination configurations",
                kind.element().1,
                &arn,
            ));
        }
        let (mut prefix, mut suffix) = (None, None);
        for (name, value) in filters {
            let slot = match name.to_ascii_lowercase().as_str() {
                "prefix" => &mut prefix,
                "suffix" => &mut suffix,
                _ => {
                    return Err(S3Error::invalid_argument(
                        "filter rule name must be either prefix or suffix",
                        "FilterRule",
                        &name,
                    ))
                }
            };
            if slot.is_some() {
                return Err(S3Error::invalid_argument(
                    "Cannot specify more than one prefix rule in a filter.",
                    "FilterRule",
                    &name,
                ));
            }
            *slot = Some(value);
        }
        Ok(Rule {
            id: id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            kind,
            arn,
            events,
            prefix,
            suffix,
        })
    }

    /// Whether an event (`s3:ObjectCreated:Put`) on `key` goes to this rule's destination.
    pub fn matches(&self, event: &str, key: &str) -> bool {
        let event_ok = self.events.iter().any(|e| match e.strip_suffix('*') {
            Some(family) => event.starts_with(family),
            None => e == event,
        });
        event_ok
            && self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self.suffix.as_deref().is_none_or(|s| key.ends_with(s))
    }
}

/// Where an ARN of this kind delivers in nimbus.
fn dest_of(kind: TargetKind, arn: &str) -> Option<Dest> {
    let resource = arn.splitn(6, ':').nth(5).filter(|r| !r.is_empty())?;
    Some(match kind {
        TargetKind::Function => {
            // A qualified ARN invokes that version or alias.
            let name = resource.strip_prefix("function:")?;
            Dest::Function(name.strip_suffix(":$LATEST").unwrap_or(name).to_owned())
        }
        TargetKind::Queue => Dest::Queue(resource.to_owned()),
        TargetKind::Topic => Dest::Topic(resource.to_owned()),
    })
}

impl Notification {
    /// `PutBucketNotificationConfiguration`'s body.
    pub fn from_xml(body: &str) -> Result<Notification, S3Error> {
        let doc = xml::parse(body, "NotificationConfiguration")?;
        let root = doc.root_element();
        let mut n = Notification::default();
        for c in root.children().filter(|c| c.is_element()) {
            let kind = match c.tag_name().name() {
                "CloudFunctionConfiguration" => TargetKind::Function,
                "QueueConfiguration" => TargetKind::Queue,
                "TopicConfiguration" => TargetKind::Topic,
                "EventBridgeConfiguration" => {
                    n.eventbridge = true;
                    continue;
                }
                _ => return Err(S3Error::malformed_xml()),
            };
            let arn = xml::child_text(c, kind.element().1).ok_or_else(S3Error::malformed_xml)?;
            let events = xml::children(c, "Event")
                .map(|e| e.text().unwrap_or_default().to_owned())
                .collect();
            let mut filters = Vec::new();
            for f in xml::children(c, "Filter") {
                for k in xml::children(f, "S3Key") {
                    for r in xml::children(k, "FilterRule") {
                        filters.push((
                            xml::child_text(r, "Name").unwrap_or_default().to_owned(),
                            xml::child_text(r, "Value").unwrap_or_default().to_owned(),
                        ));
                    }
                }
            }
            let id = xml::child_text(c, "Id").map(str::to_owned);
            n.rules
                .push(Rule::new(id, kind, arn.to_owned(), events, filters)?);
        }
        Ok(n)
    }

    /// `GetBucketNotificationConfiguration`'s answer.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        xml::root(&mut out, "NotificationConfiguration");
        for r in &self.rules {
            let (outer, target) = r.kind.element();
            out.push_str(&format!("<{outer}>"));
            xml::element(&mut out, "Id", &r.id);
            xml::element(&mut out, target, &r.arn);
            for e in &r.events {
                xml::element(&mut out, "Event", e);
            }
            if r.prefix.is_some() || r.suffix.is_some() {
                out.push_str("<Filter><S3Key>");
                for (name, v) in [("prefix", &r.prefix), ("suffix", &r.suffix)] {
                    if let Some(v) = v {
                        out.push_str("<FilterRule>");
                        xml::element(&mut out, "Name", name);
                        xml::element(&mut out, "Value", v);
                        out.push_str("</FilterRule>");
                    }
                }
                out.push_str("</S3Key></Filter>");
            }
            out.push_str(&format!("</{outer}>"));
        }
        if self.eventbridge {
            out.push_str("<EventBridgeConfiguration></EventBridgeConfiguration>");
        }
        out.push_str("</NotificationConfiguration>");
        out
    }
}

/// What happened to an object, for its records.
#[derive(Debug, Clone)]
pub struct ObjectEvent {
    /// `ObjectCreated:Put`, `ObjectRemoved:Delete`, ...
    pub name: &'static str,
    pub bucket: String,
    pub key: String,
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: i64,
    pub request_id: String,
    pub source_ip: String,
    pub time_ms: i64,
}

/// The `Records` document S3 sends to functions, queues and topics.
pub fn record(e: &ObjectEvent, rule_id: &str, region: &str, account: &str) -> serde_json::Value {
    let mut object = serde_json::json!({
        // Keys are URL-encoded in records (spaces as '+', slashes kept), as S3 sends them.
        "key": form_urlencoded::byte_serialize(e.key.as_bytes()).collect::<String>().replace("%2F", "/"),
        "sequencer": format!("{:016X}", e.sequencer),
    });
    if let Some(size) = e.size {
        object["size"] = size.into();
    }
    if let Some(etag) = &e.etag {
        object["eTag"] = etag.as_str().into();
    }
    if let Some(v) = &e.version_id {
        object["versionId"] = v.as_str().into();
    }
    serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": crate::iso_time(e.time_ms),
        "eventName": e.name,
        "userIdentity": {"principalId": format!("AWS:{account}")},
        "requestParameters": {"sourceIPAddress": e.source_ip},
        "responseElements": {"x-amz-request-id": e.request_id, "x-amz-id-2": e.request_id},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": rule_id,
            "bucket": {
                "name": e.bucket,
                "ownerIdentity": {"principalId": account},
                "arn": format!("arn:aws:s3:::{}", e.bucket),
            },
            "object": object,
        },
    }]})
}

/// EventBridge's `detail-type` and `detail` for an event S3 sends there, if it is one.
pub fn eventbridge_detail(
    e: &ObjectEvent,
    account: &str,
) -> Option<(&'static str, serde_json::Value)> {
    let (detail_type, reason, deletion) = match e.name {
        "ObjectCreated:Put" => ("Object Created", "PutObject", None),
        "ObjectCreated:Post" => ("Object Created", "POST Object", None),
        "ObjectCreated:Copy" => ("Object Created", "CopyObject", None),
        "ObjectCreated:CompleteMultipartUpload" => {
            ("Object Created", "CompleteMultipartUpload", None)
        }
        "ObjectRemoved:Delete" => (
            "Object Deleted",
            "DeleteObject",
            Some("Permanently Deleted"),
        ),
        "ObjectRemoved:DeleteMarkerCreated" => (
            "Object Deleted",
            "DeleteObject",
            Some("Delete Marker Created"),
        ),
        "LifecycleExpiration:Delete" => (
            "Object Deleted",
            "Lifecycle Expiration",
            Some("Permanently Deleted"),
        ),
        "LifecycleExpiration:DeleteMarkerCreated" => (
            "Object Deleted",
            "Lifecycle Expiration",
            Some("Delete Marker Created"),
        ),
        "ObjectTagging:Put" => ("Object Tags Added", "PutObjectTagging", None),
        "ObjectTagging:Delete" => ("Object Tags Deleted", "DeleteObjectTagging", None),
        _ => return None,
    };
    let mut object =
        serde_json::json!({"key": e.key, "sequencer": format!("{:016X}", e.sequencer)});
    if let Some(size) = e.size {
        object["size"] = size.into();
    }
    if let Some(etag) = &e.etag {
        object["etag"] = etag.as_str().into();
    }
    if let Some(v) = &e.version_id {
        object["version-id"] = v.as_str().into();
    }
    let mut detail = serde_json::json!({
        "version": "0",
        "bucket": {"name": e.bucket},
        "object": object,
        "request-id": e.request_id,
        "requester": account,
        "source-ip-address": e.source_ip,
        "reason": reason,
    });
    if let Some(d) = deletion {
        detail["deletion-type"] = d.into();
    }
    Some((detail_type, detail))
}

/// Sends an event to every destination of `config` it matches. Each delivery is durable (a
/// queue message, an asynchronous invocation job, a publish, a bus event) when this returns;
/// a destination that fails is logged, as S3 drops what it cannot deliver.
pub fn deliver(hub: &Hub, config: &Notification, e: &ObjectEvent, region: &str, account: &str) {
    let event = format!("s3:{}", e.name);
    for r in config.rules.iter().filter(|r| r.matches(&event, &e.key)) {
        let Some(dest) = dest_of(r.kind, &r.arn) else {
            continue;
        };
        let payload = record(e, &r.id, region, account).to_string();
        if let Err(err) = hub.deliver(&dest, &payload, None, ("", "", "")) {
            tracing::warn!(bucket = %e.bucket, destination = %r.arn, error = %err, "S3 event notification not delivered");
        }
    }
    if config.eventbridge {
        if let Some((detail_type, detail)) = eventbridge_detail(e, account) {
            let arn = format!("arn:aws:s3:::{}", e.bucket);
            let dest = Dest::Bus("default".into());
            if let Err(err) = hub.deliver(
                &dest,
                &detail.to_string(),
                None,
                ("aws.s3", detail_type, &arn),
            ) {
                tracing::warn!(bucket = %e.bucket, error = %err, "S3 event not put on the default bus");
            }
        }
    }
}

/// The `s3:TestEvent` S3 sends to each queue and topic of a configuration when it is set
/// (functions get none).
pub fn send_test_event(
    hub: &Hub,
    config: &Notification,
    bucket: &str,
    request_id: &str,
    time_ms: i64,
) {
    let payload = serde_json::json!({
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": crate::iso_time(time_ms),
        "Bucket": bucket,
        "RequestId": request_id,
        "HostId": request_id,
    })
    .to_string();
    let mut sent: Vec<&str> = Vec::new();
    for r in config
        .rules
        .iter()
        .filter(|r| r.kind != TargetKind::Function)
    {
        if sent.contains(&r.arn.as_str()) {
            continue;
        }
        sent.push(&r.arn);
        if let Some(dest) = dest_of(r.kind, &r.arn) {
            if let Err(err) = hub.deliver(&dest, &payload, None, ("", "", "")) {
                tracing::warn!(bucket, destination = %r.arn, error = %err, "S3 test event not delivered");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(events: &[&str], filters: &[(&str, &str)]) -> Rule {
        Rule::new(
            Some("r".into()),
            TargetKind::Function,
            "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            events.iter().map(|e| e.to_string()).collect(),
            filters
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn rules_match_event_families_prefix_and_suffix() {
        let cases: &[(Rule, &str, &str, bool)] = &[
            (
                rule(&["s3:ObjectCreated:*"], &[]),
                "s3:ObjectCreated:Put",
                "a",
                true,
            ),
            (
                rule(&["s3:ObjectCreated:*"], &[]),
                "s3:ObjectCreated:CompleteMultipartUpload",
                "a",
                true,
            ),
            (
                rule(&["s3:ObjectCreated:*"], &[]),
                "s3:ObjectRemoved:Delete",
                "a",
                false,
            ),
            (
                rule(&["s3:ObjectCreated:Copy"], &[]),
                "s3:ObjectCreated:Put",
                "a",
                false,
            ),
            (
                rule(&["s3:ObjectCreated:*"], &[("suffix", ".txt")]),
                "s3:ObjectCreated:Put",
                "a.txt",
                true,
            ),
            (
                rule(&["s3:ObjectCreated:*"], &[("suffix", ".txt")]),
                "s3:ObjectCreated:Put",
                "b.csv",
                false,
            ),
            (
                rule(
                    &["s3:ObjectCreated:*"],
                    &[("Prefix", "in/"), ("suffix", ".jpg")],
                ),
                "s3:ObjectCreated:Put",
                "in/x.jpg",
                true,
            ),
            (
                rule(
                    &["s3:ObjectCreated:*"],
                    &[("prefix", "in/"), ("suffix", ".jpg")],
                ),
                "s3:ObjectCreated:Put",
                "out/x.jpg",
                false,
            ),
        ];
        for (i, (r, event, key, want)) in cases.iter().enumerate() {
            assert_eq!(r.matches(event, key), *want, "case {i}");
        }
    }

    #[test]
    fn bad_rules_get_s3s_errors() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:f".to_owned();
        let e = Rule::new(
            None,
            TargetKind::Function,
            arn.clone(),
            vec!["s3:Nope".into()],
            vec![],
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "InvalidArgument",
                "The event is not supported for notifications"
            )
        );
        let e = Rule::new(
            None,
            TargetKind::Queue,
            arn.clone(),
            vec!["s3:ObjectCreated:*".into()],
            vec![],
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidArgument");
        let e = Rule::new(
            None,
            TargetKind::Function,
            arn,
            vec!["s3:ObjectCreated:*".into()],
            vec![("middle".into(), "x".into())],
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidArgument");
    }

    #[test]
    fn configuration_round_trips_through_xml() {
        let body = r#"<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <QueueConfiguration><Id>q</Id><Queue>arn:aws:sqs:us-east-1:123456789012:uploads</Queue>
              <Event>s3:ObjectCreated:*</Event><Event>s3:ObjectRemoved:*</Event>
              <Filter><S3Key><FilterRule><Name>prefix</Name><Value>in/</Value></FilterRule></S3Key></Filter>
            </QueueConfiguration><EventBridgeConfiguration/></NotificationConfiguration>"#;
        let n = Notification::from_xml(body).unwrap();
        assert!(n.eventbridge);
        assert_eq!(n.rules[0].kind, TargetKind::Queue);
        assert_eq!(n.rules[0].prefix.as_deref(), Some("in/"));
        assert_eq!(Notification::from_xml(&n.to_xml()).unwrap(), n);
        assert_eq!(
            dest_of(TargetKind::Queue, &n.rules[0].arn),
            Some(Dest::Queue("uploads".into()))
        );
    }

    #[test]
    fn records_have_s3s_shape() {
        let e = ObjectEvent {
            name: "ObjectCreated:Put",
            bucket: "b".into(),
            key: "dir/a b.txt".into(),
            size: Some(3),
            etag: Some("abc".into()),
            version_id: None,
            sequencer: 255,
            request_id: "R".into(),
            source_ip: "127.0.0.1".into(),
            time_ms: 0,
        };
        let r = &record(&e, "cfg", "us-east-1", "123456789012")["Records"][0];
        assert_eq!(r["eventSource"], "aws:s3");
        assert_eq!(r["eventName"], "ObjectCreated:Put");
        assert_eq!(r["eventTime"], "1970-01-01T00:00:00.000Z");
        assert_eq!(r["s3"]["object"]["key"], "dir/a+b.txt");
        assert_eq!(r["s3"]["object"]["sequencer"], "00000000000000FF");
        assert_eq!(r["s3"]["bucket"]["arn"], "arn:aws:s3:::b");
        let (t, d) = eventbridge_detail(&e, "123456789012").unwrap();
        assert_eq!(t, "Object Created");
        assert_eq!(d["object"]["key"], "dir/a b.txt");
        assert_eq!(d["reason"], "PutObject");
    }
}
