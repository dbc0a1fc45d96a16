//! SQS messages as nimbus itself sends them (DLQs, destinations, rule targets) and as an event
//! source mapping hands them to a function.

use base64::Engine;
use md5::{Digest, Md5};
use nimbus_store::{NewMessage, Received};
use serde_json::{json, Map, Value};

/// SQS's content-based deduplication id: the SHA-256 of the body, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn md5_hex(bytes: &[u8]) -> String {
    let digest = Md5::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks message attributes and computes their MD5 the way SQS (and the SDKs that verify it)
/// do: by name, each as length-prefixed name, data type, a transport byte (1 string, 2 binary)
/// and length-prefixed value. The error is SQS's message for the first bad attribute.
pub fn attributes_md5(attrs: &Map<String, Value>) -> Result<String, String> {
    if attrs.len() > 10 {
        return Err(
            "Number of message attributes [>10] exceeds the allowed maximum [10].".to_owned(),
        );
    }
    let mut buf = Vec::new();
    let mut names: Vec<&String> = attrs.keys().collect();
    names.sort();
    let put = |buf: &mut Vec<u8>, b: &[u8]| {
        buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
        buf.extend_from_slice(b);
    };
    for name in names {
        let a = &attrs[name];
        let data_type = a["DataType"].as_str().unwrap_or("");
        let base = data_type.split('.').next().unwrap_or("");
        if !matches!(base, "String" | "Number" | "Binary") {
            return Err(format!(
                "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            ));
        }
        put(&mut buf, name.as_bytes());
        put(&mut buf, data_type.as_bytes());
        if base == "Binary" {
            let value = a["BinaryValue"]
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .ok_or_else(|| {
                    format!("The message attribute '{name}' must contain a non-empty message attribute value for message attribute type 'Binary'.")
                })?;
            buf.push(2);
            put(&mut buf, &value);
        } else {
            let value = a["StringValue"].as_str().ok_or_else(|| {
                format!("The message attribute '{name}' must contain a non-empty message attribute value for message attribute type '{base}'.")
            })?;
            if base == "Number" && value.trim().parse::<f64>().is_err() {
                return Err(format!(
                    "Can't cast the value of message attribute '{name}' to a number."
                ));
            }
            buf.push(1);
            put(&mut buf, value.as_bytes());
        }
    }
    Ok(md5_hex(&buf))
}

/// A message nimbus sends on its own behalf. `attributes` are SQS message attributes
/// (`{"Name": {"DataType", "StringValue"}}`), already valid.
pub fn internal(
    body: String,
    attributes: Option<Map<String, Value>>,
    trace: Option<&str>,
) -> NewMessage {
    let md5_attributes = attributes.as_ref().and_then(|a| attributes_md5(a).ok());
    NewMessage {
        id: uuid::Uuid::new_v4().to_string(),
        md5_body: md5_hex(body.as_bytes()),
        body,
        attributes: attributes.map(|a| Value::Object(a).to_string()),
        md5_attributes,
        system_attributes: trace.map(|t| json!({ "AWSTraceHeader": t }).to_string()),
        delay_s: None,
        group_id: None,
        deduplication_id: None,
    }
}

/// The trace header a message carries (`AWSTraceHeader`), if any.
pub fn trace_of(r: &Received) -> Option<String> {
    r.message
        .system_attributes
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| v["AWSTraceHeader"].as_str().map(str::to_owned))
}

/// One record of the event Lambda's SQS poller sends (`{"Records": [..]}`): message attributes
/// with lower-case keys and list fields, as in the `aws_lambda_events` SqsMessage type.
pub fn lambda_record(r: &Received, queue_arn: &str, region: &str, account: &str) -> Value {
    let m = &r.message;
    let mut attributes = json!({
        "ApproximateReceiveCount": m.receive_count.to_string(),
        "SentTimestamp": m.sent_ms.to_string(),
        "SenderId": account,
        "ApproximateFirstReceiveTimestamp": m.first_receive_ms.unwrap_or(m.sent_ms).to_string(),
    });
    if let Some(t) = trace_of(r) {
        attributes["AWSTraceHeader"] = t.into();
    }
    for (k, v) in [
        ("MessageGroupId", &m.group_id),
        ("MessageDeduplicationId", &m.deduplication_id),
        ("SequenceNumber", &m.sequence_number),
    ] {
        if let Some(v) = v {
            attributes[k] = v.clone().into();
        }
    }
    let mut message_attributes = Map::new();
    if let Some(attrs) = m
        .attributes
        .as_deref()
        .and_then(|s| serde_json::from_str::<Map<String, Value>>(s).ok())
    {
        for (name, a) in attrs {
            message_attributes.insert(
                name,
                json!({
                    "stringValue": a.get("StringValue"),
                    "binaryValue": a.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": a["DataType"],
                }),
            );
        }
    }
    let mut record = json!({
        "messageId": m.id,
        "receiptHandle": r.receipt,
        "body": m.body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": m.md5_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    });
    if let Some(md5) = &m.md5_attributes {
        record["md5OfMessageAttributes"] = md5.clone().into();
    }
    record
}
