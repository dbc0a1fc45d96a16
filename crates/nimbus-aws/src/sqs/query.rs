//! SQS's query protocol: form-encoded `Action=...&Version=2012-11-05` requests and XML answers,
//! what SDKs released before SQS gained its JSON protocol (late 2023) still send.
//!
//! It is a codec around the JSON protocol's dispatcher, so both protocols share every rule: the
//! flattened parameters (`Attribute.1.Name`, `SendMessageBatchRequestEntry.2.MessageBody`, ...)
//! become the JSON request's members, and the JSON answer's members become the query protocol's
//! elements (`Messages` -> repeated `<Message>`, `Attributes` -> `<Attribute><Name/><Value/>`).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Map, Value};

use super::SqsError;

pub const NAMESPACE: &str = "http://queue.amazonaws.com/doc/2012-11-05/";

/// The SQS actions of API version 2012-11-05; any other name is `InvalidAction`, as in SQS.
const ACTIONS: &[&str] = &[
    "AddPermission",
    "CancelMessageMoveTask",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "CreateQueue",
    "DeleteMessage",
    "DeleteMessageBatch",
    "DeleteQueue",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "ListMessageMoveTasks",
    "ListQueueTags",
    "ListQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "RemovePermission",
    "SendMessage",
    "SendMessageBatch",
    "SetQueueAttributes",
    "StartMessageMoveTask",
    "TagQueue",
    "UntagQueue",
];

/// Parameters every query request may carry that are not the action's input (signature V2 and
/// the envelope); signatures are not checked, as for the JSON protocol.
const ENVELOPE: &[&str] = &[
    "Action",
    "Version",
    "AWSAccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "Timestamp",
    "Expires",
    "SecurityToken",
];

/// The deepest SQS parameter has 7 parts
/// (`SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringListValue.1`).
const MAX_DEPTH: usize = 8;
/// A batch of 10 entries with 10 attributes of 4 parameters each is about 500.
const MAX_PARAMETERS: usize = 1000;

/// How a flattened request parameter maps onto the JSON protocol's member.
enum Flat {
    /// `Name.N` -> `[..]`; each item a string or an object.
    List(&'static str),
    /// `Name.N.Key` / `Name.N.Value` -> `{Key: Value}`.
    Map(&'static str, &'static str, &'static str),
}

fn flattened(param: &str) -> Option<Flat> {
    Some(match param {
        "Attribute" => Flat::Map("Attributes", "Name", "Value"),
        "Tag" => Flat::Map("tags", "Key", "Value"),
        "MessageAttribute" => Flat::Map("MessageAttributes", "Name", "Value"),
        "MessageSystemAttribute" => Flat::Map("MessageSystemAttributes", "Name", "Value"),
        "AttributeName" => Flat::List("AttributeNames"),
        "MessageAttributeName" => Flat::List("MessageAttributeNames"),
        "MessageSystemAttributeName" => Flat::List("MessageSystemAttributeNames"),
        "TagKey" => Flat::List("TagKeys"),
        "SendMessageBatchRequestEntry"
        | "DeleteMessageBatchRequestEntry"
        | "ChangeMessageVisibilityBatchRequestEntry" => Flat::List("Entries"),
        _ => return None,
    })
}

#[derive(Debug)]
enum Node {
    Leaf(String),
    Branch(BTreeMap<String, Node>),
}

fn malformed(message: String) -> SqsError {
    SqsError::new("MalformedQueryString", "MalformedQueryString", message)
}

/// A query request's action and its input as the JSON protocol's request body (the values,
/// message bodies among them, are moved, not copied).
pub fn parse(params: Vec<(String, String)>) -> Result<(String, Value), SqsError> {
    let action = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| {
            SqsError::new(
                "MissingAction",
                "MissingAction",
                "The request must contain the parameter Action.",
            )
        })?;
    if !ACTIONS.contains(&action.as_str()) {
        return Err(SqsError::new(
            "InvalidAction",
            "InvalidAction",
            format!("The action {action} is not valid for this endpoint."),
        ));
    }
    if params.len() > MAX_PARAMETERS {
        return Err(malformed(format!(
            "{} parameters; at most {MAX_PARAMETERS}",
            params.len()
        )));
    }
    let mut root = BTreeMap::new();
    for (key, value) in params {
        if ENVELOPE.contains(&key.as_str()) {
            continue;
        }
        insert(&mut root, &key, value)?;
    }
    Ok((action, object(root, "")?))
}

fn insert(root: &mut BTreeMap<String, Node>, key: &str, value: String) -> Result<(), SqsError> {
    let parts: Vec<&str> = key.split('.').collect();
    // Bounds the tree's depth, which the conversion walks recursively.
    if parts.len() > MAX_DEPTH {
        return Err(malformed(format!(
            "the parameter name {:?}... has more than {MAX_DEPTH} parts",
            parts[..MAX_DEPTH].join(".")
        )));
    }
    if parts.iter().any(|p| p.is_empty()) {
        return Err(malformed(format!(
            "the parameter name {key:?} is not valid"
        )));
    }
    let mut here = root;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let entry = here.entry((*part).to_owned());
        if last {
            match entry {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(Node::Leaf(value));
                    return Ok(());
                }
                std::collections::btree_map::Entry::Occupied(_) => {
                    return Err(malformed(format!("the parameter {key} is given twice")));
                }
            }
        }
        match entry.or_insert_with(|| Node::Branch(BTreeMap::new())) {
            Node::Branch(b) => here = b,
            Node::Leaf(_) => {
                return Err(malformed(format!(
                    "the parameter {key} conflicts with {}",
                    parts[..=i].join(".")
                )))
            }
        }
    }
    Ok(())
}

fn object(branch: BTreeMap<String, Node>, at: &str) -> Result<Value, SqsError> {
    let mut out = Map::new();
    for (key, node) in branch {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        match flattened(&key) {
            Some(Flat::List(member)) => {
                let mut items = Vec::new();
                for (_, item) in indexed(node, &path)? {
                    items.push(match item {
                        Node::Leaf(s) => Value::String(s),
                        Node::Branch(b) => object(b, &path)?,
                    });
                }
                out.insert(member.into(), Value::Array(items));
            }
            Some(Flat::Map(member, key_name, value_name)) => {
                let mut map = Map::new();
                for (n, item) in indexed(node, &path)? {
                    let Node::Branch(mut fields) = item else {
                        return Err(malformed(format!(
                            "{path}.{n} needs .{key_name} and .{value_name}"
                        )));
                    };
                    let Some(Node::Leaf(k)) = fields.remove(key_name) else {
                        return Err(malformed(format!("{path}.{n}.{key_name} is missing")));
                    };
                    let v = match fields.remove(value_name) {
                        Some(Node::Leaf(s)) => Value::String(s),
                        Some(Node::Branch(b)) => object(b, &format!("{path}.{n}.{value_name}"))?,
                        None => {
                            return Err(malformed(format!("{path}.{n}.{value_name} is missing")))
                        }
                    };
                    map.insert(k, v);
                }
                out.insert(member.into(), Value::Object(map));
            }
            None => {
                let v = match node {
                    Node::Leaf(s) => Value::String(s),
                    Node::Branch(b) => object(b, &path)?,
                };
                out.insert(key, v);
            }
        }
    }
    Ok(Value::Object(out))
}

/// The members of a flattened list in the order of their 1-based indices.
fn indexed(node: Node, path: &str) -> Result<Vec<(u32, Node)>, SqsError> {
    let Node::Branch(children) = node else {
        return Err(malformed(format!(
            "{path} is a list: give it as {path}.1, {path}.2, ..."
        )));
    };
    let mut items = Vec::with_capacity(children.len());
    for (k, v) in children {
        match k.parse::<u32>() {
            Ok(n) if n >= 1 => items.push((n, v)),
            _ => {
                return Err(malformed(format!(
                    "{path}.{k}: list members are numbered from 1"
                )))
            }
        }
    }
    items.sort_by_key(|(n, _)| *n);
    Ok(items)
}

/// The XML answer to `action` for the JSON protocol's answer `output`.
pub fn response(action: &str, output: &Value, request_id: &str) -> String {
    let mut xml = String::with_capacity(512);
    let _ = write!(
        xml,
        r#"<?xml version="1.0"?><{action}Response xmlns="{NAMESPACE}">"#
    );
    if let Value::Object(members) = output {
        if !members.is_empty() {
            let _ = write!(xml, "<{action}Result>");
            for (name, v) in members {
                member(&mut xml, action, name, v);
            }
            let _ = write!(xml, "</{action}Result>");
        }
    }
    let _ = write!(
        xml,
        "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    );
    xml
}

/// The query protocol's `ErrorResponse` for an error.
pub fn error(e: &SqsError, request_id: &str) -> String {
    let fault = e.fault();
    format!(
        r#"<?xml version="1.0"?><ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{fault}</Type><Code>{}</Code><Message>{}</Message><Detail/></Error><RequestId>{request_id}</RequestId></ErrorResponse>"#,
        e.query_code,
        escape(&e.message)
    )
}

fn member(xml: &mut String, action: &str, name: &str, v: &Value) {
    match (name, v) {
        ("Messages", Value::Array(items)) => repeated(xml, action, "Message", items),
        ("QueueUrls" | "queueUrls", Value::Array(items)) => {
            repeated(xml, action, "QueueUrl", items)
        }
        ("Successful", Value::Array(items)) => {
            repeated(xml, action, &format!("{action}ResultEntry"), items)
        }
        ("Failed", Value::Array(items)) => repeated(xml, action, "BatchResultErrorEntry", items),
        ("Attributes", Value::Object(m)) => pairs(xml, action, "Attribute", "Name", "Value", m),
        ("MessageAttributes", Value::Object(m)) => {
            pairs(xml, action, "MessageAttribute", "Name", "Value", m)
        }
        ("Tags", Value::Object(m)) => pairs(xml, action, "Tag", "Key", "Value", m),
        ("nextToken", v) => member(xml, action, "NextToken", v),
        (name, v) => element(xml, action, name, v),
    }
}

fn repeated(xml: &mut String, action: &str, name: &str, items: &[Value]) {
    for item in items {
        element(xml, action, name, item);
    }
}

fn pairs(
    xml: &mut String,
    action: &str,
    name: &str,
    key: &str,
    value: &str,
    map: &Map<String, Value>,
) {
    for (k, v) in map {
        let _ = write!(xml, "<{name}><{key}>{}</{key}>", escape(k));
        element(xml, action, value, v);
        let _ = write!(xml, "</{name}>");
    }
}

fn element(xml: &mut String, action: &str, name: &str, v: &Value) {
    let _ = write!(xml, "<{name}>");
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                member(xml, action, k, v);
            }
        }
        Value::Array(items) => repeated(xml, action, "member", items),
        Value::String(s) => xml.push_str(&escape(s)),
        Value::Null => {}
        other => xml.push_str(&other.to_string()),
    }
    let _ = write!(xml, "</{name}>");
}

/// XML text; carriage returns as references so parsers do not fold them into line feeds.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(s: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(s.as_bytes()).into_owned().collect()
    }

    #[test]
    fn flattened_parameters_become_the_json_members() {
        let (action, input) = parse(params(
            "Action=SendMessageBatch&Version=2012-11-05&QueueUrl=http%3A%2F%2Fh%2F1%2Fq\
             &SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=two\
             &SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=one%20%26\
             &SendMessageBatchRequestEntry.1.DelaySeconds=5\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=kind\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=x\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String",
        ))
        .unwrap();
        assert_eq!(action, "SendMessageBatch");
        assert_eq!(
            input,
            json!({
                "QueueUrl": "http://h/1/q",
                "Entries": [
                    {"Id": "a", "MessageBody": "one &", "DelaySeconds": "5",
                     "MessageAttributes": {"kind": {"StringValue": "x", "DataType": "String"}}},
                    {"Id": "b", "MessageBody": "two"}
                ]
            })
        );
        let (_, input) = parse(params(
            "Action=CreateQueue&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=40\
             &Attribute.2.Name=DelaySeconds&Attribute.2.Value=0&Tag.1.Key=team&Tag.1.Value=a",
        ))
        .unwrap();
        assert_eq!(
            input,
            json!({"QueueName": "q", "Attributes": {"VisibilityTimeout": "40", "DelaySeconds": "0"},
                   "tags": {"team": "a"}})
        );
        let (_, input) = parse(params(
            "Action=ReceiveMessage&QueueUrl=u&AttributeName.1=All&MessageAttributeName.1=kind\
             &MessageAttributeName.2=other&MaxNumberOfMessages=10",
        ))
        .unwrap();
        assert_eq!(
            input,
            json!({"QueueUrl": "u", "AttributeNames": ["All"],
                   "MessageAttributeNames": ["kind", "other"], "MaxNumberOfMessages": "10"})
        );
    }

    #[test]
    fn bad_requests_name_the_parameter() {
        let code = |s: &str| parse(params(s)).unwrap_err().query_code;
        assert_eq!(code("QueueName=q"), "MissingAction");
        assert_eq!(code("Action=Frobnicate"), "InvalidAction");
        assert_eq!(
            code("Action=CreateQueue&Attribute.1.Value=3"),
            "MalformedQueryString"
        );
        let e = parse(params(
            "Action=CreateQueue&Attribute.0.Name=a&Attribute.0.Value=b",
        ))
        .unwrap_err();
        assert!(e.message.contains("Attribute.0"), "{}", e.message);
        let e = parse(params("Action=ReceiveMessage&AttributeName=All")).unwrap_err();
        assert!(e.message.contains("AttributeName.1"), "{}", e.message);
        let e = parse(params("Action=SendMessage&QueueUrl=a&QueueUrl.x=b")).unwrap_err();
        assert!(e.message.contains("QueueUrl"), "{}", e.message);
        let deep = format!("Action=SendMessage&{}=1", vec!["a"; 100_000].join("."));
        assert_eq!(
            parse(params(&deep)).unwrap_err().query_code,
            "MalformedQueryString"
        );
        let many: String = (0..1001).map(|i| format!("&p{i}=1")).collect();
        assert_eq!(
            parse(params(&format!("Action=ListQueues{many}")))
                .unwrap_err()
                .query_code,
            "MalformedQueryString"
        );
    }

    #[test]
    fn answers_use_the_query_protocol_element_names() {
        let out = json!({"Messages": [{
            "MessageId": "m1", "ReceiptHandle": "r1", "MD5OfBody": "d", "Body": "a<b>&\r\n",
            "Attributes": {"SenderId": "123", "ApproximateReceiveCount": "1"},
            "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "x"}}
        }]});
        let xml = response("ReceiveMessage", &out, "req-1");
        assert!(xml.starts_with(
            r#"<?xml version="1.0"?><ReceiveMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><ReceiveMessageResult><Message>"#
        ));
        assert!(xml.contains("<Body>a&lt;b&gt;&amp;&#xD;\n</Body>"));
        assert!(xml.contains(
            "<Attribute><Name>ApproximateReceiveCount</Name><Value>1</Value></Attribute>"
        ));
        assert!(xml.contains("<MessageAttribute><Name>kind</Name><Value><DataType>String</DataType><StringValue>x</StringValue></Value></MessageAttribute>"));
        assert!(xml.ends_with(
            "</ReceiveMessageResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></ReceiveMessageResponse>"
        ));
        let xml = response(
            "DeleteMessageBatch",
            &json!({"Successful": [{"Id": "a"}],
                    "Failed": [{"Id": "b", "SenderFault": true, "Code": "ReceiptHandleIsInvalid", "Message": "m"}]}),
            "r",
        );
        assert!(xml
            .contains("<DeleteMessageBatchResultEntry><Id>a</Id></DeleteMessageBatchResultEntry>"));
        assert!(xml.contains("<BatchResultErrorEntry><Code>ReceiptHandleIsInvalid</Code><Id>b</Id><Message>m</Message><SenderFault>true</SenderFault></BatchResultErrorEntry>"));
        let xml = response("ListQueues", &json!({"QueueUrls": ["u1", "u2"]}), "r");
        assert!(xml.contains(
            "<ListQueuesResult><QueueUrl>u1</QueueUrl><QueueUrl>u2</QueueUrl></ListQueuesResult>"
        ));
        let xml = response("DeleteQueue", &json!({}), "r");
        assert!(!xml.contains("DeleteQueueResult"));
    }

    #[test]
    fn errors_are_error_responses_with_the_query_code() {
        let e = SqsError::new(
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            "The specified queue does not exist: <q>",
        );
        let xml = error(&e, "r9");
        assert!(xml.contains("<Error><Type>Sender</Type><Code>AWS.SimpleQueueService.NonExistentQueue</Code><Message>The specified queue does not exist: &lt;q&gt;</Message><Detail/></Error><RequestId>r9</RequestId></ErrorResponse>"));
    }
}
