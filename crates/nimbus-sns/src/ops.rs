//! SNS's operations: administration, and a publish planned (validated, matched, shaped) under
//! the database lock, then delivered.

use base64::Engine;
use nimbus_core::pattern::Pattern;
use rusqlite::Connection;
use serde_json::{json, Map, Value};

use crate::state::{self, Subscription, Topic};
use crate::{empty, string_map, Sns, SnsError};

/// A message's size limit, attributes included.
const MAX_MESSAGE_BYTES: usize = 262_144;

fn string<'a>(input: &'a Value, key: &str) -> Result<&'a str, SnsError> {
    input[key]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            SnsError::invalid(format!(
                "Invalid parameter: {key} Reason: no value for required parameter"
            ))
        })
}

pub(crate) fn check_topic_name(
    name: &str,
    attributes: &Map<String, Value>,
) -> Result<(), SnsError> {
    let fifo = attributes.get("FifoTopic").and_then(Value::as_str) == Some("true");
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    let ok = !base.is_empty()
        && name.len() <= 256
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && fifo == name.ends_with(".fifo");
    match ok {
        true => Ok(()),
        false => Err(SnsError::invalid(match fifo != name.ends_with(".fifo") {
            true => "Invalid parameter: Fifo Topic names must end with .fifo and Standard Topic cannot end with .fifo",
            false => "Invalid parameter: Topic Name",
        })),
    }
}

/// The queue name of an SQS ARN.
fn queue_of(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", _, _, name] if !name.is_empty() => Some(name),
        _ => None,
    }
}

/// The dead-letter queue a subscription's `RedrivePolicy` names
/// (`{"deadLetterTargetArn": "arn:aws:sqs:...:name"}`), or SNS's message for a bad one.
fn redrive_queue(policy: &str) -> Result<String, SnsError> {
    let bad = |why: &str| SnsError::invalid(format!("Invalid parameter: RedrivePolicy: {why}"));
    let doc: Value =
        serde_json::from_str(policy).map_err(|_| bad("Invalid RedrivePolicy: not valid JSON"))?;
    let arn = doc["deadLetterTargetArn"]
        .as_str()
        .ok_or_else(|| bad("deadLetterTargetArn is required"))?;
    queue_of(arn).map(str::to_owned).ok_or_else(|| {
        bad(&format!(
            "deadLetterTargetArn {arn} is not an SQS queue ARN"
        ))
    })
}

/// The function of a Lambda ARN, with its version or alias (`name:live`) if it names one.
fn function_of(arn: &str) -> Option<&str> {
    arn.split_once(":function:")
        .filter(|(p, _)| p.starts_with("arn:"))
        .map(|(_, rest)| rest.strip_suffix(":$LATEST").unwrap_or(rest))
        .filter(|n| !n.is_empty() && !n.starts_with(':'))
}

pub(crate) fn check_subscription(
    protocol: &str,
    endpoint: &str,
    attributes: &Map<String, Value>,
) -> Result<(), SnsError> {
    match protocol {
        "sqs" if queue_of(endpoint).is_some() => {}
        "lambda" if function_of(endpoint).is_some() => {}
        "sqs" | "lambda" => {
            return Err(SnsError::invalid(format!(
                "Invalid parameter: {protocol} endpoint ARN: {endpoint}"
            )))
        }
        "http" | "https" => {
            let host = endpoint
                .strip_prefix(protocol)
                .and_then(|r| r.strip_prefix("://"))
                .map(|r| r.split(['/', '?', '#']).next().unwrap_or(""))
                .map(|a| a.rsplit('@').next().unwrap_or(""));
            let valid = host.is_some_and(|h| !h.is_empty())
                && !endpoint.chars().any(|c| c.is_whitespace() || c.is_control());
            if !valid {
                return Err(SnsError::invalid(
                    "Invalid parameter: Endpoint must match the specified protocol",
                ));
            }
        }
        "email" | "email-json" | "sms" | "application" | "firehose" => {
            return Err(SnsError::invalid(format!(
                "Invalid parameter: Protocol Reason: nimbus delivers sqs, lambda, http and https subscriptions; {protocol} is not served yet"
            )))
        }
        other => {
            return Err(SnsError::invalid(format!(
                "Invalid parameter: Amazon SNS does not support this protocol string: {other}"
            )))
        }
    }
    check_subscription_attributes(attributes)
}

fn check_subscription_attributes(attributes: &Map<String, Value>) -> Result<(), SnsError> {
    for (k, v) in attributes {
        let v = v.as_str().unwrap_or("");
        match k.as_str() {
            "FilterPolicy" => {
                Pattern::parse(v).map_err(|e| {
                    SnsError::invalid(format!("Invalid parameter: FilterPolicy: {e}"))
                })?;
            }
            "FilterPolicyScope" if !matches!(v, "MessageAttributes" | "MessageBody") => {
                return Err(SnsError::invalid(
                    "Invalid parameter: Attributes Reason: FilterPolicyScope: Invalid value [".to_owned()
                        + v
                        + "]. Please use either MessageBody or MessageAttributes",
                ))
            }
            "RawMessageDelivery" if !matches!(v, "true" | "false") => {
                return Err(SnsError::invalid(
                    "Invalid parameter: Attributes Reason: RawMessageDelivery: Invalid value. Must be true or false.",
                ))
            }
            "RedrivePolicy" => {
                redrive_queue(v)?;
            }
            "DeliveryPolicy" => crate::http::check_subscription_policy(v)?,
            "FilterPolicyScope" | "RawMessageDelivery" | "SubscriptionRoleArn" => {}
            other => {
                return Err(SnsError::invalid(format!(
                    "Invalid parameter: Attributes Reason: Unknown attribute {other}"
                )))
            }
        }
    }
    Ok(())
}

/// Whether a protocol's subscriptions wait for the endpoint to confirm them.
pub(crate) fn needs_confirmation(protocol: &str) -> bool {
    matches!(protocol, "http" | "https")
}

/// A confirmation token: long and random, as SNS's are.
pub(crate) fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A topic attribute checked as SNS checks it.
pub(crate) fn check_topic_attribute(name: &str, value: &str) -> Result<(), SnsError> {
    match name {
        "DeliveryPolicy" => crate::http::check_topic_policy(value),
        "SignatureVersion" if !matches!(value, "1" | "2") => Err(SnsError::invalid(
            "Invalid parameter: Attributes Reason: SignatureVersion: Invalid value. Must be 1 or 2.",
        )),
        _ => Ok(()),
    }
}

/// The `SubscriptionConfirmation` message of a pending HTTP/HTTPS subscription, as a delivery
/// job (it is retried like a notification).
pub(crate) fn confirmation_job(
    sns: &Sns,
    topic: &Topic,
    sub: &Subscription,
    now_ms: u64,
) -> nimbus_store::NewJob {
    let token = sub.token.clone().unwrap_or_default();
    let message_id = uuid::Uuid::new_v4().to_string();
    let subscribe_url = format!(
        "{}/?Action=ConfirmSubscription&TopicArn={}&Token={token}",
        sns.config().endpoint,
        topic.arn
    );
    let doc = json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": message_id,
        "Token": token,
        "TopicArn": topic.arn,
        "Message": format!(
            "You have chosen to subscribe to the topic {}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
            topic.arn
        ),
        "SubscribeURL": subscribe_url,
        "Timestamp": nimbus_core::report::timestamp_millis(now_ms),
    });
    let (retry, content_type) = crate::http::effective_policy(
        topic.attribute("DeliveryPolicy"),
        sub.attribute("DeliveryPolicy"),
    );
    crate::http::job(
        crate::http::Delivery {
            kind: "SubscriptionConfirmation",
            message_id: &message_id,
            url: &sub.endpoint,
            topic_arn: &topic.arn,
            subscription_arn: &sub.arn,
            raw: false,
            signature_version: topic.signature_version(),
            retry: &retry,
            content_type: &content_type,
            dlq: None,
        },
        doc.to_string(),
    )
}

fn topic_or_404(db: &Connection, arn: &str) -> Result<Topic, SnsError> {
    state::topic(db, arn)?.ok_or_else(|| SnsError::not_found("Topic does not exist"))
}

fn subscription_json(s: &Subscription, account: &str) -> Value {
    json!({
        "SubscriptionArn": if s.pending { "PendingConfirmation" } else { s.arn.as_str() },
        "Owner": account,
        "Protocol": s.protocol,
        "Endpoint": s.endpoint,
        "TopicArn": s.topic_arn,
    })
}

fn tags_of(input: &Value) -> Vec<Value> {
    input["Tags"].as_array().cloned().unwrap_or_default()
}

pub(crate) fn admin(
    sns: &Sns,
    db: &mut Connection,
    action: &str,
    input: &Value,
    now_ms: u64,
) -> Result<Value, SnsError> {
    let account = sns.config().account.clone();
    match action {
        "CreateTopic" => {
            let name = string(input, "Name")?;
            let attributes = string_map(&input["Attributes"])?;
            check_topic_name(name, &attributes)?;
            for (k, v) in &attributes {
                check_topic_attribute(k, v.as_str().unwrap_or(""))?;
            }
            let arn = sns.topic_arn(name);
            match state::topic(db, &arn)? {
                Some(existing) => {
                    for (k, v) in &attributes {
                        if existing.attributes.get(k) != Some(v) {
                            return Err(SnsError::invalid(
                                "Invalid parameter: Attributes Reason: Topic already exists with different attributes",
                            ));
                        }
                    }
                }
                None => state::put_topic(
                    db,
                    &Topic {
                        arn: arn.clone(),
                        name: name.to_owned(),
                        attributes,
                        tags: tags_of(input),
                    },
                )?,
            }
            Ok(json!({"TopicArn": arn}))
        }
        "DeleteTopic" => {
            // SNS answers a delete of a topic that is not there with success.
            state::delete_topic(db, string(input, "TopicArn")?)?;
            Ok(empty())
        }
        "ListTopics" => {
            let after = input["NextToken"].as_str().unwrap_or("");
            let all: Vec<Topic> = state::topics(db)?
                .into_iter()
                .filter(|t| t.arn.as_str() > after)
                .collect();
            let page: Vec<Value> = all
                .iter()
                .take(100)
                .map(|t| json!({"TopicArn": t.arn}))
                .collect();
            let mut out = json!({"Topics": page});
            if all.len() > 100 {
                out["NextToken"] = all[99].arn.clone().into();
            }
            Ok(out)
        }
        "GetTopicAttributes" => {
            let t = topic_or_404(db, string(input, "TopicArn")?)?;
            let subs = state::subscriptions(db, Some(&t.arn))?;
            let mut attrs = Map::new();
            for (k, v) in [
                ("TopicArn", t.arn.clone()),
                ("Owner", account.clone()),
                ("DisplayName", String::new()),
                (
                    "SubscriptionsConfirmed",
                    subs.iter().filter(|s| !s.pending).count().to_string(),
                ),
                (
                    "SubscriptionsPending",
                    subs.iter().filter(|s| s.pending).count().to_string(),
                ),
                ("SubscriptionsDeleted", "0".into()),
                (
                    "Policy",
                    json!({"Version": "2008-10-17", "Id": "__default_policy_ID", "Statement": []})
                        .to_string(),
                ),
            ] {
                attrs.insert(k.into(), v.into());
            }
            attrs.extend(t.attributes.clone());
            Ok(json!({"Attributes": attrs}))
        }
        "SetTopicAttributes" => {
            let mut t = topic_or_404(db, string(input, "TopicArn")?)?;
            let name = string(input, "AttributeName")?;
            if matches!(name, "FifoTopic") {
                return Err(SnsError::invalid(
                    "Invalid parameter: AttributeName Reason: FifoTopic cannot be changed",
                ));
            }
            let value = input["AttributeValue"].as_str().unwrap_or("");
            check_topic_attribute(name, value)?;
            t.attributes.insert(name.to_owned(), value.into());
            state::put_topic(db, &t)?;
            Ok(empty())
        }
        "Subscribe" => {
            let topic = topic_or_404(db, string(input, "TopicArn")?)?;
            let protocol = string(input, "Protocol")?;
            let endpoint = input["Endpoint"].as_str().unwrap_or("");
            let attributes = string_map(&input["Attributes"])?;
            check_subscription(protocol, endpoint, &attributes)?;
            // A pending subscription's ARN is answered only when asked for.
            let arn_answer = |s: &Subscription| {
                let wanted = match &input["ReturnSubscriptionArn"] {
                    Value::Bool(b) => *b,
                    Value::String(t) => t.eq_ignore_ascii_case("true"),
                    _ => false,
                };
                match s.pending && !wanted {
                    true => json!({"SubscriptionArn": "pending confirmation"}),
                    false => json!({"SubscriptionArn": s.arn}),
                }
            };
            // Subscribing the same endpoint again answers the existing subscription (and sends
            // a pending one its confirmation again).
            if let Some(existing) = state::subscriptions(db, Some(&topic.arn))?
                .into_iter()
                .find(|s| s.protocol == protocol && s.endpoint == endpoint)
            {
                if existing.pending {
                    sns.queue_http(&[confirmation_job(sns, &topic, &existing, now_ms)])?;
                }
                return Ok(arn_answer(&existing));
            }
            let pending = needs_confirmation(protocol);
            let sub = Subscription {
                arn: format!("{}:{}", topic.arn, uuid::Uuid::new_v4()),
                topic_arn: topic.arn.clone(),
                protocol: protocol.to_owned(),
                endpoint: endpoint.to_owned(),
                attributes,
                pending,
                token: pending.then(new_token),
            };
            state::put_subscription(db, &sub, false)?;
            if pending {
                sns.queue_http(&[confirmation_job(sns, &topic, &sub, now_ms)])?;
            }
            Ok(arn_answer(&sub))
        }
        "ConfirmSubscription" => {
            let topic = topic_or_404(db, string(input, "TopicArn")?)?;
            let token = string(input, "Token")?;
            let mut sub = state::subscription_by_token(db, &topic.arn, token)?
                .ok_or_else(|| SnsError::invalid("Invalid parameter: Token"))?;
            if sub.pending {
                sub.pending = false;
                let from_template = state::is_from_template(db, &sub.arn)?;
                state::put_subscription(db, &sub, from_template)?;
                tracing::info!(subscription = %sub.arn, endpoint = %crate::http::redacted(&sub.endpoint), "SNS subscription confirmed");
            }
            Ok(json!({"SubscriptionArn": sub.arn}))
        }
        "Unsubscribe" => match state::delete_subscription(db, string(input, "SubscriptionArn")?)? {
            true => Ok(empty()),
            false => Err(SnsError::not_found("Subscription does not exist")),
        },
        "ListSubscriptions" | "ListSubscriptionsByTopic" => {
            let topic = match action {
                "ListSubscriptionsByTopic" => {
                    Some(topic_or_404(db, string(input, "TopicArn")?)?.arn)
                }
                _ => None,
            };
            let subs: Vec<Value> = state::subscriptions(db, topic.as_deref())?
                .iter()
                .map(|s| subscription_json(s, &account))
                .collect();
            Ok(json!({"Subscriptions": subs}))
        }
        "GetSubscriptionAttributes" => {
            let s = state::subscription(db, string(input, "SubscriptionArn")?)?
                .ok_or_else(|| SnsError::not_found("Subscription does not exist"))?;
            let mut attrs = Map::new();
            for (k, v) in [
                ("SubscriptionArn", s.arn.as_str()),
                ("TopicArn", s.topic_arn.as_str()),
                ("Owner", account.as_str()),
                ("Protocol", s.protocol.as_str()),
                ("Endpoint", s.endpoint.as_str()),
                (
                    "ConfirmationWasAuthenticated",
                    if s.pending { "false" } else { "true" },
                ),
                (
                    "PendingConfirmation",
                    if s.pending { "true" } else { "false" },
                ),
                ("RawMessageDelivery", "false"),
            ] {
                attrs.insert(k.into(), v.into());
            }
            if s.attributes.contains_key("FilterPolicy") {
                attrs.insert("FilterPolicyScope".into(), "MessageAttributes".into());
            }
            if needs_confirmation(&s.protocol) {
                let topic = state::topic(db, &s.topic_arn)?;
                let (retry, content_type) = crate::http::effective_policy(
                    topic.as_ref().and_then(|t| t.attribute("DeliveryPolicy")),
                    s.attribute("DeliveryPolicy"),
                );
                attrs.insert(
                    "EffectiveDeliveryPolicy".into(),
                    json!({
                        "healthyRetryPolicy": retry.to_json(),
                        "requestPolicy": {"headerContentType": content_type},
                    })
                    .to_string()
                    .into(),
                );
            }
            attrs.extend(s.attributes.clone());
            Ok(json!({"Attributes": attrs}))
        }
        "SetSubscriptionAttributes" => {
            let mut s = state::subscription(db, string(input, "SubscriptionArn")?)?
                .ok_or_else(|| SnsError::not_found("Subscription does not exist"))?;
            let name = string(input, "AttributeName")?;
            let value = input["AttributeValue"].as_str().unwrap_or("");
            let mut one = Map::new();
            one.insert(name.to_owned(), value.into());
            check_subscription_attributes(&one)?;
            match (name, value) {
                ("FilterPolicy", "") => {
                    s.attributes.remove(name);
                }
                _ => {
                    s.attributes.insert(name.to_owned(), value.into());
                }
            }
            let from_template = state::is_from_template(db, &s.arn)?;
            state::put_subscription(db, &s, from_template)?;
            Ok(empty())
        }
        "TagResource" | "UntagResource" | "ListTagsForResource" => {
            let mut t = state::topic(db, string(input, "ResourceArn")?)?.ok_or_else(|| {
                SnsError::Service {
                    code: "ResourceNotFound",
                    status: 404,
                    message: "Resource does not exist".into(),
                }
            })?;
            match action {
                "ListTagsForResource" => return Ok(json!({"Tags": t.tags})),
                "TagResource" => {
                    for tag in tags_of(input) {
                        t.tags.retain(|x| x["Key"] != tag["Key"]);
                        t.tags.push(tag);
                    }
                }
                _ => {
                    let keys = input["TagKeys"].as_array().cloned().unwrap_or_default();
                    t.tags.retain(|x| !keys.contains(&x["Key"]));
                }
            }
            state::put_topic(db, &t)?;
            Ok(empty())
        }
        other => Err(SnsError::Service {
            code: "InvalidAction",
            status: 400,
            message: format!("The action {other} is not valid for this endpoint."),
        }),
    }
}

/// One message to deliver: already validated and shaped, with the subscriptions it goes to.
pub(crate) struct Plan {
    message_id: String,
    /// The topic's name, for the metrics.
    topic: String,
    deliveries: Vec<Delivery>,
    /// Subscriptions whose filter policy did not match.
    filtered_out: u64,
}

/// A batch entry's id and its plan, or why it failed.
pub(crate) type BatchEntry = (String, Result<Plan, SnsError>);

enum Delivery {
    Queue {
        queue: String,
        body: String,
        attributes: Option<Map<String, Value>>,
        group_id: Option<String>,
        dedup_id: Option<String>,
        /// The subscription's dead-letter queue and what it is sent when delivery fails.
        dlq: Option<(String, String)>,
    },
    Function {
        function: String,
        payload: String,
        dlq: Option<(String, String)>,
    },
    /// An HTTP/HTTPS POST, made durable as a job before the publish is answered.
    Http(nimbus_store::NewJob),
}

/// A publish's message attributes, checked: `{name: {DataType, StringValue|BinaryValue}}`.
fn message_attributes(input: &Value) -> Result<Map<String, Value>, SnsError> {
    let Some(m) = input["MessageAttributes"].as_object() else {
        return Ok(Map::new());
    };
    if m.len() > 10 {
        return Err(SnsError::invalid(
            "Invalid parameter: MessageAttributes Reason: a message can have at most 10 attributes",
        ));
    }
    for (name, v) in m {
        let data_type = v["DataType"].as_str().unwrap_or("");
        let base = data_type.split('.').next().unwrap_or("");
        let has_value = v["StringValue"].is_string() || v["BinaryValue"].is_string();
        if !matches!(base, "String" | "Number" | "Binary") || !has_value {
            return Err(SnsError::invalid(format!(
                "Invalid parameter: MessageAttributes Reason: The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            )));
        }
        if data_type == "String.Array"
            && serde_json::from_str::<Vec<Value>>(v["StringValue"].as_str().unwrap_or("")).is_err()
        {
            return Err(SnsError::invalid(format!(
                "Invalid parameter: MessageAttributes Reason: The message attribute '{name}' with type 'String.Array' must be a JSON array"
            )));
        }
    }
    Ok(m.clone())
}

/// What an attribute-scoped filter policy sees: each attribute's value, typed.
fn attribute_doc(attrs: &Map<String, Value>) -> Value {
    let mut doc = Map::new();
    for (name, v) in attrs {
        let text = v["StringValue"].as_str().unwrap_or("");
        let value = match v["DataType"].as_str().unwrap_or("") {
            t if t.starts_with("Number") => serde_json::from_str::<serde_json::Number>(text)
                .map(Value::Number)
                .unwrap_or_else(|_| text.into()),
            "String.Array" => serde_json::from_str(text).unwrap_or_else(|_| text.into()),
            t if t.starts_with("Binary") => continue,
            _ => text.into(),
        };
        doc.insert(name.clone(), value);
    }
    Value::Object(doc)
}

fn matches(sub: &Subscription, attrs: &Map<String, Value>, message: &str) -> bool {
    let Some(policy) = sub.attribute("FilterPolicy").filter(|p| !p.is_empty()) else {
        return true;
    };
    let Ok(pattern) = Pattern::parse(policy) else {
        return false;
    };
    match sub.attribute("FilterPolicyScope") {
        Some("MessageBody") => serde_json::from_str::<Value>(message)
            .map(|body| pattern.matches(&body))
            .unwrap_or(false),
        _ => pattern.matches(&attribute_doc(attrs)),
    }
}

/// The envelope attributes: `{name: {Type, Value}}`.
fn envelope_attributes(attrs: &Map<String, Value>) -> Map<String, Value> {
    attrs
        .iter()
        .map(|(name, v)| {
            let value = v["StringValue"]
                .as_str()
                .or_else(|| v["BinaryValue"].as_str())
                .unwrap_or("");
            (
                name.clone(),
                json!({"Type": v["DataType"].as_str().unwrap_or("String"), "Value": value}),
            )
        })
        .collect()
}

/// One publish entry, validated and matched against the topic's subscriptions.
fn plan_one(
    sns: &Sns,
    topic: &Topic,
    subs: &[Subscription],
    entry: &Value,
    now_ms: u64,
) -> Result<Plan, SnsError> {
    let message = entry["Message"].as_str().unwrap_or("");
    if message.is_empty() {
        return Err(SnsError::invalid("Invalid parameter: Empty message"));
    }
    let attrs = message_attributes(entry)?;
    let size = message.len() + serde_json::to_string(&attrs).map_or(0, |s| s.len());
    if size > MAX_MESSAGE_BYTES {
        return Err(SnsError::invalid("Invalid parameter: Message too long"));
    }
    let subject = entry["Subject"].as_str();
    if subject.is_some_and(|s| s.is_empty() || s.len() > 100) {
        return Err(SnsError::invalid("Invalid parameter: Subject"));
    }
    let per_protocol: Option<Map<String, Value>> = match entry["MessageStructure"].as_str() {
        None => None,
        Some("json") => {
            let doc: Map<String, Value> = serde_json::from_str(message).map_err(|_| {
                SnsError::invalid(
                    "Invalid parameter: Message Structure - JSON message body failed to parse",
                )
            })?;
            if !doc.get("default").is_some_and(Value::is_string) {
                return Err(SnsError::invalid(
                    "Invalid parameter: Message Structure - No default entry in JSON message body",
                ));
            }
            Some(doc)
        }
        Some(other) => {
            return Err(SnsError::invalid(format!(
                "Invalid parameter: MessageStructure Reason: {other} is not json"
            )))
        }
    };
    let group_id = entry["MessageGroupId"].as_str().map(str::to_owned);
    let mut dedup_id = entry["MessageDeduplicationId"].as_str().map(str::to_owned);
    if topic.fifo() {
        if group_id.is_none() {
            return Err(SnsError::invalid(
                "Invalid parameter: The MessageGroupId parameter is required for FIFO topics",
            ));
        }
        if dedup_id.is_none() {
            if !topic.content_based_dedup() {
                return Err(SnsError::invalid(
                    "Invalid parameter: The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ));
            }
            dedup_id = Some(nimbus_events::message::sha256_hex(message.as_bytes()));
        }
    } else if group_id.is_some() {
        return Err(SnsError::invalid(
            "Invalid parameter: MessageGroupId Reason: The request includes MessageGroupId parameter that is not valid for this topic type",
        ));
    }
    let message_id = uuid::Uuid::new_v4().to_string();
    let timestamp = nimbus_core::report::timestamp_millis(now_ms);
    let endpoint = &sns.config().endpoint;
    let signature = base64::engine::general_purpose::STANDARD.encode(
        nimbus_events::message::sha256_hex(format!("{message_id}{message}").as_bytes()),
    );
    let cert = sns.cert_url();
    let mut deliveries = Vec::new();
    let mut filtered_out = 0;
    for sub in subs.iter().filter(|s| !s.pending) {
        let text = per_protocol
            .as_ref()
            .and_then(|m| m.get(&sub.protocol).or_else(|| m.get("default")))
            .and_then(Value::as_str)
            .unwrap_or(message);
        if !matches(sub, &attrs, text) {
            filtered_out += 1;
            continue;
        }
        let unsubscribe = format!("{endpoint}/?Action=Unsubscribe&SubscriptionArn={}", sub.arn);
        let mut sns_doc = json!({
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic.arn,
            "Message": text,
            "Timestamp": timestamp,
            "SignatureVersion": "1",
            "Signature": signature,
        });
        if let Some(s) = subject {
            sns_doc["Subject"] = s.into();
        }
        // A delivery that fails goes to the subscription's DLQ as the SNS envelope, with the
        // message attributes, as SNS sends it.
        let dlq = sub
            .attribute("RedrivePolicy")
            .and_then(|p| redrive_queue(p).ok())
            .map(|q| {
                let mut doc = sns_doc.clone();
                if !attrs.is_empty() {
                    doc["MessageAttributes"] = Value::Object(envelope_attributes(&attrs));
                }
                (q, doc.to_string())
            });
        match sub.protocol.as_str() {
            "sqs" => {
                let Some(queue) = queue_of(&sub.endpoint) else {
                    continue;
                };
                let raw = sub.attribute("RawMessageDelivery") == Some("true");
                let (body, attributes) = match raw {
                    true => (text.to_owned(), (!attrs.is_empty()).then(|| attrs.clone())),
                    false => {
                        sns_doc["SigningCertURL"] = cert.clone().into();
                        sns_doc["UnsubscribeURL"] = unsubscribe.into();
                        if !attrs.is_empty() {
                            sns_doc["MessageAttributes"] =
                                Value::Object(envelope_attributes(&attrs));
                        }
                        (sns_doc.to_string(), None)
                    }
                };
                deliveries.push(Delivery::Queue {
                    queue: queue.to_owned(),
                    body,
                    attributes,
                    group_id: group_id.clone(),
                    dedup_id: dedup_id.clone(),
                    dlq,
                });
            }
            "lambda" => {
                let Some(function) = function_of(&sub.endpoint) else {
                    continue;
                };
                sns_doc["Subject"] = subject.map_or(Value::Null, Value::from);
                sns_doc["SigningCertUrl"] = cert.clone().into();
                sns_doc["UnsubscribeUrl"] = unsubscribe.into();
                sns_doc["MessageAttributes"] = Value::Object(envelope_attributes(&attrs));
                let event = json!({"Records": [{
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": sub.arn,
                    "Sns": sns_doc,
                }]});
                deliveries.push(Delivery::Function {
                    function: function.to_owned(),
                    payload: event.to_string(),
                    dlq,
                });
            }
            "http" | "https" => {
                let raw = sub.attribute("RawMessageDelivery") == Some("true");
                let body = match raw {
                    true => text.to_owned(),
                    false => {
                        // Signed when sent: see http.rs.
                        if let Some(doc) = sns_doc.as_object_mut() {
                            doc.remove("SignatureVersion");
                            doc.remove("Signature");
                        }
                        sns_doc["UnsubscribeURL"] = unsubscribe.into();
                        if !attrs.is_empty() {
                            sns_doc["MessageAttributes"] =
                                Value::Object(envelope_attributes(&attrs));
                        }
                        sns_doc.to_string()
                    }
                };
                let (retry, content_type) = crate::http::effective_policy(
                    topic.attribute("DeliveryPolicy"),
                    sub.attribute("DeliveryPolicy"),
                );
                deliveries.push(Delivery::Http(crate::http::job(
                    crate::http::Delivery {
                        kind: "Notification",
                        message_id: &message_id,
                        url: &sub.endpoint,
                        topic_arn: &topic.arn,
                        subscription_arn: &sub.arn,
                        raw,
                        signature_version: topic.signature_version(),
                        retry: &retry,
                        content_type: &content_type,
                        dlq,
                    },
                    body,
                )));
            }
            _ => {}
        }
    }
    Ok(Plan {
        message_id,
        topic: topic.name.clone(),
        deliveries,
        filtered_out,
    })
}

fn target_topic(db: &Connection, input: &Value) -> Result<(Topic, Vec<Subscription>), SnsError> {
    let arn = input["TopicArn"]
        .as_str()
        .or_else(|| input["TargetArn"].as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            SnsError::invalid(
                "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter",
            )
        })?;
    let topic = topic_or_404(db, arn)?;
    let subs = state::subscriptions(db, Some(&topic.arn))?;
    Ok((topic, subs))
}

pub(crate) fn publish_plan(
    sns: &Sns,
    db: &Connection,
    input: &Value,
    now_ms: u64,
) -> Result<Plan, SnsError> {
    if input["PhoneNumber"].is_string() {
        return Err(SnsError::invalid(
            "Invalid parameter: PhoneNumber Reason: nimbus does not send SMS",
        ));
    }
    let (topic, subs) = target_topic(db, input)?;
    plan_one(sns, &topic, &subs, input, now_ms)
}

pub(crate) fn publish_batch_plans(
    sns: &Sns,
    db: &Connection,
    input: &Value,
    now_ms: u64,
) -> Result<Vec<BatchEntry>, SnsError> {
    let (topic, subs) = target_topic(db, input)?;
    let entries = input["PublishBatchRequestEntries"]
        .as_array()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| SnsError::Service {
            code: "EmptyBatchRequest",
            status: 400,
            message: "The batch request doesn't contain any entries".into(),
        })?;
    if entries.len() > 10 {
        return Err(SnsError::Service {
            code: "TooManyEntriesInBatchRequest",
            status: 400,
            message: "The batch request contains more entries than permissible".into(),
        });
    }
    let mut ids = std::collections::HashSet::new();
    let mut out = Vec::new();
    for e in entries {
        let id = e["Id"].as_str().unwrap_or("").to_owned();
        if !ids.insert(id.clone()) {
            return Err(SnsError::Service {
                code: "BatchEntryIdsNotDistinct",
                status: 400,
                message: "Two or more batch entries in the request have the same Id".into(),
            });
        }
        out.push((id, plan_one(sns, &topic, &subs, e, now_ms)));
    }
    Ok(out)
}

fn run(sns: &Sns, plan: &Plan) -> Result<(), SnsError> {
    let telemetry = sns.hub().telemetry();
    let jobs: Vec<nimbus_store::NewJob> = plan
        .deliveries
        .iter()
        .filter_map(|d| match d {
            Delivery::Http(job) => Some(job.clone()),
            _ => None,
        })
        .collect();
    if !jobs.is_empty() {
        sns.queue_http(&jobs)?;
    }
    telemetry.record_sns_publish(&plan.topic, plan.filtered_out);
    for d in &plan.deliveries {
        match d {
            Delivery::Http(_) => {}
            Delivery::Queue {
                queue,
                body,
                attributes,
                group_id,
                dedup_id,
                dlq,
            } => {
                let mut m =
                    nimbus_events::message::internal(body.clone(), attributes.clone(), None);
                if queue.ends_with(".fifo") {
                    m.group_id = group_id.clone().or_else(|| Some("sns".into()));
                    m.deduplication_id = dedup_id
                        .clone()
                        .or_else(|| Some(nimbus_events::message::sha256_hex(body.as_bytes())));
                }
                // A queue that was deleted after it subscribed: the delivery fails for good,
                // to the subscription's DLQ if it has one, else dropped, as SNS does.
                match sns.hub().send(queue, &[m]) {
                    Ok(()) => telemetry.record_sns_delivery(&plan.topic, "sqs", true),
                    Err(nimbus_store::StoreError::Queue(
                        nimbus_store::QueueError::NonExistentQueue,
                    )) => {
                        telemetry.record_sns_delivery(&plan.topic, "sqs", false);
                        dead_letter(sns, dlq, &format!("queue {queue} does not exist"))?
                    }
                    Err(e) => {
                        return Err(SnsError::Internal(format!("delivering to {queue}: {e}")))
                    }
                }
            }
            Delivery::Function {
                function,
                payload,
                dlq,
            } => match sns.hub().invoke_async(function, payload, None) {
                Ok(_) => telemetry.record_sns_delivery(&plan.topic, "lambda", true),
                Err(nimbus_events::EventsError::FunctionNotFound(_)) => {
                    telemetry.record_sns_delivery(&plan.topic, "lambda", false);
                    dead_letter(sns, dlq, &format!("function {function} does not exist"))?
                }
                Err(e) => return Err(SnsError::Internal(format!("invoking {function}: {e}"))),
            },
        }
    }
    Ok(())
}

/// A delivery that cannot succeed: to the subscription's dead-letter queue, if it has one.
pub(crate) fn dead_letter(
    sns: &Sns,
    dlq: &Option<(String, String)>,
    why: &str,
) -> Result<(), SnsError> {
    let Some((queue, body)) = dlq else {
        tracing::warn!(reason = %why, "SNS delivery failed and the subscription has no dead-letter queue: dropped");
        return Ok(());
    };
    let m = nimbus_events::message::internal(body.clone(), None, None);
    match sns.hub().send(queue, &[m]) {
        Ok(()) => {
            tracing::warn!(reason = %why, dlq = %queue, "SNS delivery failed: sent to the subscription's dead-letter queue");
            Ok(())
        }
        Err(e) => {
            tracing::error!(reason = %why, dlq = %queue, error = %e, "SNS delivery failed and its dead-letter queue refused it: dropped");
            Ok(())
        }
    }
}

pub(crate) fn deliver(sns: &Sns, plan: Plan) -> Result<Value, SnsError> {
    run(sns, &plan)?;
    Ok(json!({"MessageId": plan.message_id}))
}

pub(crate) fn deliver_batch(sns: &Sns, plans: Vec<BatchEntry>) -> Result<Value, SnsError> {
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for (id, plan) in plans {
        match plan.and_then(|p| run(sns, &p).map(|()| p.message_id)) {
            Ok(message_id) => successful.push(json!({"Id": id, "MessageId": message_id})),
            Err(e) => failed.push(json!({
                "Id": id,
                "Code": e.code(),
                "Message": e.to_string(),
                "SenderFault": e.fault() == "Sender",
            })),
        }
    }
    Ok(json!({"Successful": successful, "Failed": failed}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(policy: Option<&str>, scope: Option<&str>) -> Subscription {
        let mut attributes = Map::new();
        if let Some(p) = policy {
            attributes.insert("FilterPolicy".into(), p.into());
        }
        if let Some(s) = scope {
            attributes.insert("FilterPolicyScope".into(), s.into());
        }
        Subscription {
            arn: "arn:aws:sns:us-east-1:123456789012:t:1".into(),
            topic_arn: "arn:aws:sns:us-east-1:123456789012:t".into(),
            protocol: "sqs".into(),
            endpoint: "arn:aws:sqs:us-east-1:123456789012:q".into(),
            attributes,
            pending: false,
            token: None,
        }
    }

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn filter_policies_match_attributes_by_type_and_bodies_by_content() {
        let red = attrs(
            json!({"color": {"DataType": "String", "StringValue": "red"},
                               "size": {"DataType": "Number", "StringValue": "7"},
                               "tags": {"DataType": "String.Array", "StringValue": "[\"a\",\"b\"]"}}),
        );
        let none = Map::new();
        for (policy, scope, attributes, body, want) in [
            (None, None, &none, "x", true),
            (Some(r#"{"color": ["red"]}"#), None, &red, "x", true),
            (Some(r#"{"color": ["blue"]}"#), None, &red, "x", false),
            (Some(r#"{"color": ["red"]}"#), None, &none, "x", false),
            (
                Some(r#"{"size": [{"numeric": [">", 5]}]}"#),
                None,
                &red,
                "x",
                true,
            ),
            (Some(r#"{"tags": ["b"]}"#), None, &red, "x", true),
            (
                Some(r#"{"color": [{"exists": false}]}"#),
                None,
                &none,
                "x",
                true,
            ),
            (
                Some(r#"{"kind": ["order"]}"#),
                Some("MessageBody"),
                &none,
                r#"{"kind": "order"}"#,
                true,
            ),
            (
                Some(r#"{"kind": ["order"]}"#),
                Some("MessageBody"),
                &none,
                "not json",
                false,
            ),
        ] {
            assert_eq!(
                matches(&sub(policy, scope), attributes, body),
                want,
                "{policy:?} {scope:?} {body}"
            );
        }
    }

    #[test]
    fn subscriptions_are_checked_as_sns_checks_them() {
        let ok = Map::new();
        assert!(check_subscription("sqs", "arn:aws:sqs:us-east-1:123456789012:q", &ok).is_ok());
        assert!(check_subscription(
            "lambda",
            "arn:aws:lambda:us-east-1:123456789012:function:f",
            &ok
        )
        .is_ok());
        assert!(check_subscription("sqs", "not-an-arn", &ok).is_err());
        for (protocol, endpoint, ok_or_error) in [
            ("https", "https://example.com/hook", None),
            ("http", "http://user:pw@127.0.0.1:8080/", None),
            (
                "https",
                "http://example.com",
                Some("Invalid parameter: Endpoint must match the specified protocol"),
            ),
            (
                "http",
                "http://",
                Some("Invalid parameter: Endpoint must match the specified protocol"),
            ),
            (
                "http",
                "http://a b",
                Some("Invalid parameter: Endpoint must match the specified protocol"),
            ),
            ("email", "a@example.com", Some("not served yet")),
        ] {
            let got = check_subscription(protocol, endpoint, &ok);
            match ok_or_error {
                None => assert!(got.is_ok(), "{endpoint}: {got:?}"),
                Some(want) => {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains(want), "{endpoint}: {e}");
                }
            }
        }
        assert!(check_subscription("pigeon", "x", &ok)
            .unwrap_err()
            .to_string()
            .contains("does not support this protocol"));
        let mut bad = Map::new();
        bad.insert("FilterPolicy".into(), "{not json".into());
        let e =
            check_subscription("sqs", "arn:aws:sqs:us-east-1:123456789012:q", &bad).unwrap_err();
        assert!(
            e.to_string().starts_with("Invalid parameter: FilterPolicy"),
            "{e}"
        );
        for (arn, want) in [
            ("arn:aws:lambda:us-east-1:1:function:f:live", Some("f:live")),
            ("arn:aws:lambda:us-east-1:1:function:f:$LATEST", Some("f")),
            ("arn:aws:lambda:us-east-1:1:function:f", Some("f")),
            ("arn:aws:lambda:us-east-1:1:function:", None),
        ] {
            assert_eq!(function_of(arn), want, "{arn}");
        }
    }
}
