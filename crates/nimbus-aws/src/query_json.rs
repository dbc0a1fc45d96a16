//! The query protocol's JSON answers: what SQS and SNS send a caller that asks for them with
//! `Accept: application/json` (API Gateway's `AWS` integrations do, which is why mapping
//! templates read `$input.path('$.SendMessageResponse.SendMessageResult.MessageId')`).

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Whether the caller asked for JSON instead of XML.
pub(crate) fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

/// `{"<Action>Response": {"<Action>Result": ..., "ResponseMetadata": {"RequestId": ...}}}`;
/// an action with nothing to say has no result member, as in XML.
pub(crate) fn answer(action: &str, output: &Value, request_id: &str) -> Value {
    let mut inner = json!({"ResponseMetadata": {"RequestId": request_id}});
    if output.as_object().is_some_and(|m| !m.is_empty()) {
        inner[format!("{action}Result")] = output.clone();
    }
    json!({ format!("{action}Response"): inner })
}

/// SQS's result members as the query protocol's JSON names them: every member of the action's
/// result present (`null` when absent), and `ReceiveMessage`'s list as `messages`, which is
/// what mapping templates read
/// (`$input.path('$.ReceiveMessageResponse.ReceiveMessageResult.messages')`).
pub(crate) fn sqs_result(action: &str, out: &Value) -> Value {
    let with_members = |v: &Value, members: &[&str]| {
        let mut m = serde_json::Map::new();
        for k in members {
            m.insert((*k).to_owned(), v.get(*k).cloned().unwrap_or(Value::Null));
        }
        Value::Object(m)
    };
    match action {
        "SendMessage" => with_members(
            out,
            &[
                "MD5OfMessageAttributes",
                "MD5OfMessageBody",
                "MD5OfMessageSystemAttributes",
                "MessageId",
                "SequenceNumber",
            ],
        ),
        "ReceiveMessage" => {
            let messages = out["Messages"].as_array().map(|list| {
                list.iter()
                    .map(|m| {
                        with_members(
                            m,
                            &[
                                "Attributes",
                                "Body",
                                "MD5OfBody",
                                "MD5OfMessageAttributes",
                                "MessageAttributes",
                                "MessageId",
                                "ReceiptHandle",
                            ],
                        )
                    })
                    .collect::<Vec<_>>()
            });
            json!({ "messages": messages })
        }
        _ => out.clone(),
    }
}

/// A service's error, as the query protocol's JSON reports it.
pub(crate) struct Fault<'a> {
    pub status: StatusCode,
    /// `Sender` or `Receiver`.
    pub fault: &'a str,
    pub code: &'a str,
    pub message: &'a str,
}

/// The JSON answer to `action`: its result nested as XML nests it, or
/// `{"Error": {"Type", "Code", "Message"}, "RequestId"}`.
pub(crate) fn reply(action: &str, result: Result<Value, Fault<'_>>, request_id: &str) -> Response {
    let (status, body) = match result {
        Ok(out) => (StatusCode::OK, answer(action, &out, request_id)),
        Err(f) => (
            f.status,
            json!({
                "Error": {"Type": f.fault, "Code": f.code, "Message": f.message},
                "RequestId": request_id,
            }),
        ),
    };
    (
        status,
        [
            ("content-type", "application/json"),
            ("x-amzn-requestid", request_id),
        ],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqs_results_name_every_member_and_lower_case_messages() {
        assert_eq!(
            sqs_result(
                "SendMessage",
                &json!({"MessageId": "m", "MD5OfMessageBody": "x"})
            ),
            json!({"MD5OfMessageAttributes": null, "MD5OfMessageBody": "x",
                   "MD5OfMessageSystemAttributes": null, "MessageId": "m", "SequenceNumber": null})
        );
        assert_eq!(
            sqs_result(
                "ReceiveMessage",
                &json!({"Messages": [{"Body": "b", "MessageId": "m"}]})
            ),
            json!({"messages": [{"Attributes": null, "Body": "b", "MD5OfBody": null,
                   "MD5OfMessageAttributes": null, "MessageAttributes": null, "MessageId": "m",
                   "ReceiptHandle": null}]})
        );
    }

    #[test]
    fn answers_nest_the_result_under_the_action_as_xml_does() {
        assert_eq!(
            answer("SendMessage", &json!({"MessageId": "m"}), "r"),
            json!({"SendMessageResponse": {
                "SendMessageResult": {"MessageId": "m"},
                "ResponseMetadata": {"RequestId": "r"},
            }})
        );
        assert_eq!(
            answer("DeleteMessage", &json!({}), "r"),
            json!({"DeleteMessageResponse": {"ResponseMetadata": {"RequestId": "r"}}})
        );
    }
}
