//! SNS's query protocol (form-encoded `Action=...`, XML answers: SNS has no JSON protocol) as a
//! codec around `nimbus-sns`, which takes and gives JSON.
//!
//! Parameters are flattened as the query protocol flattens them: lists as `Name.member.N`, maps
//! as `Name.entry.N.key` / `.value` (attributes) or `.Name` / `.Value` (message attributes).

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::sqs::query::escape;

const NAMESPACE: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// SNS's actions: how a form-encoded request without a signature scope is told from SQS's.
const ACTIONS: &[&str] = &[
    "ConfirmSubscription",
    "CreateTopic",
    "DeleteTopic",
    "GetSubscriptionAttributes",
    "GetTopicAttributes",
    "ListSubscriptions",
    "ListSubscriptionsByTopic",
    "ListTagsForResource",
    "ListTopics",
    "Publish",
    "PublishBatch",
    "SetSubscriptionAttributes",
    "SetTopicAttributes",
    "Subscribe",
    "TagResource",
    "Unsubscribe",
    "UntagResource",
];

/// Whether a query-protocol request is for SNS: the SigV4 credential scope names the service
/// (`.../sns/aws4_request`); unsigned, the action does.
pub fn is_sns(headers: &HeaderMap, params: &[(String, String)]) -> bool {
    let scope = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .map(|c| c.split(',').next().unwrap_or(c));
    match scope {
        Some(c) if c.contains("/sns/aws4_request") => true,
        Some(c) if c.contains("/sqs/aws4_request") => false,
        _ => params
            .iter()
            .any(|(k, v)| k == "Action" && ACTIONS.contains(&v.as_str())),
    }
}

#[derive(Default)]
struct Node {
    text: Option<String>,
    children: BTreeMap<String, Node>,
}

fn to_json(node: Node) -> Value {
    if let Some(t) = node.text {
        if node.children.is_empty() {
            return Value::String(t);
        }
    }
    let mut children = node.children;
    if children.len() == 1 {
        if let Some(list) = children.remove("member") {
            let mut items: Vec<(u32, Node)> = list
                .children
                .into_iter()
                .map(|(i, n)| (i.parse().unwrap_or(u32::MAX), n))
                .collect();
            items.sort_by_key(|(i, _)| *i);
            return Value::Array(items.into_iter().map(|(_, n)| to_json(n)).collect());
        }
        if let Some(entries) = children.remove("entry") {
            let mut map = Map::new();
            for (_, mut e) in entries.children {
                let key = e
                    .children
                    .remove("key")
                    .or_else(|| e.children.remove("Name"))
                    .and_then(|k| k.text);
                let value = e
                    .children
                    .remove("value")
                    .or_else(|| e.children.remove("Value"));
                if let (Some(k), Some(v)) = (key, value) {
                    map.insert(k, to_json(v));
                }
            }
            return Value::Object(map);
        }
    }
    Value::Object(children.into_iter().map(|(k, n)| (k, to_json(n))).collect())
}

/// The action and its input as JSON.
pub fn parse(params: Vec<(String, String)>) -> (String, Value) {
    let mut action = String::new();
    let mut root = Node::default();
    for (key, value) in params {
        match key.as_str() {
            "Action" => action = value,
            "Version" | "AWSAccessKeyId" | "Signature" | "SignatureMethod" | "SignatureVersion"
            | "Timestamp" | "Expires" | "SecurityToken" => {}
            _ => {
                let mut node = &mut root;
                for part in key.split('.') {
                    node = node.children.entry(part.to_owned()).or_default();
                }
                node.text = Some(value);
            }
        }
    }
    (action, to_json(root))
}

fn element(xml: &mut String, name: &str, v: &Value) {
    let _ = write!(xml, "<{name}>");
    match (name, v) {
        ("Attributes", Value::Object(m)) => {
            for (k, v) in m {
                let _ = write!(
                    xml,
                    "<entry><key>{}</key><value>{}</value></entry>",
                    escape(k),
                    escape(v.as_str().unwrap_or(""))
                );
            }
        }
        (_, Value::Object(m)) => {
            for (k, v) in m {
                element(xml, k, v);
            }
        }
        (_, Value::Array(items)) => {
            for item in items {
                element(xml, "member", item);
            }
        }
        (_, Value::String(s)) => xml.push_str(&escape(s)),
        (_, Value::Null) => {}
        (_, other) => xml.push_str(&other.to_string()),
    }
    let _ = write!(xml, "</{name}>");
}

/// Answers one SNS request, in XML or in the query protocol's JSON when `json`.
pub fn answer(sns: &nimbus_sns::Sns, params: Vec<(String, String)>, json: bool) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (action, input) = parse(params);
    if json {
        let answer = sns.dispatch(&action, &input);
        let message = answer.as_ref().err().map(ToString::to_string);
        let result = match &answer {
            Ok(out) => Ok(out.clone()),
            Err(e) => Err(crate::query_json::Fault {
                status: StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
                fault: e.fault(),
                code: e.code(),
                message: message.as_deref().unwrap_or_default(),
            }),
        };
        return crate::query_json::reply(&action, result, &request_id);
    }
    let xml_response = |status: StatusCode, body: String| {
        (
            status,
            [
                ("content-type", "text/xml"),
                ("x-amzn-requestid", request_id.as_str()),
            ],
            body,
        )
            .into_response()
    };
    match sns.dispatch(&action, &input) {
        Ok(out) => {
            let mut xml = format!(r#"<?xml version="1.0"?><{action}Response xmlns="{NAMESPACE}">"#);
            if out.as_object().is_some_and(|m| !m.is_empty()) {
                element(&mut xml, &format!("{action}Result"), &out);
            }
            let _ = write!(
                xml,
                "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
            );
            xml_response(StatusCode::OK, xml)
        }
        Err(e) => {
            if e.status() >= 500 {
                tracing::error!(%action, error = %e, "sns");
            }
            let body = format!(
                r#"<?xml version="1.0"?><ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"#,
                e.fault(),
                e.code(),
                escape(&e.to_string())
            );
            xml_response(
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
                body,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattened_parameters_become_the_json_request() {
        let params = [
            ("Action", "Publish"),
            ("TopicArn", "arn:aws:sns:us-east-1:123456789012:t"),
            ("Message", "hello"),
            ("MessageAttributes.entry.1.Name", "color"),
            ("MessageAttributes.entry.1.Value.DataType", "String"),
            ("MessageAttributes.entry.1.Value.StringValue", "red"),
            ("MessageAttributes.entry.2.Name", "n"),
            ("MessageAttributes.entry.2.Value.DataType", "Number"),
            ("MessageAttributes.entry.2.Value.StringValue", "7"),
            ("Attributes.entry.1.key", "RawMessageDelivery"),
            ("Attributes.entry.1.value", "true"),
            ("Tags.member.2.Key", "b"),
            ("Tags.member.2.Value", "2"),
            ("Tags.member.1.Key", "a"),
            ("Tags.member.1.Value", "1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec();
        let (action, input) = parse(params);
        assert_eq!(action, "Publish");
        assert_eq!(
            input,
            json!({
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
                "Message": "hello",
                "MessageAttributes": {
                    "color": {"DataType": "String", "StringValue": "red"},
                    "n": {"DataType": "Number", "StringValue": "7"},
                },
                "Attributes": {"RawMessageDelivery": "true"},
                "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}],
            })
        );
    }

    #[test]
    fn answers_are_sns_xml() {
        let mut xml = String::new();
        element(
            &mut xml,
            "ListTopicsResult",
            &json!({"Topics": [{"TopicArn": "a<b"}], "Attributes": {"k": "v"}}),
        );
        assert_eq!(
            xml,
            "<ListTopicsResult><Attributes><entry><key>k</key><value>v</value></entry></Attributes><Topics><member><TopicArn>a&lt;b</TopicArn></member></Topics></ListTopicsResult>"
        );
    }
}
