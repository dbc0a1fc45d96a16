//! Amazon SQS over its JSON protocol (`X-Amz-Target: AmazonSQS.<Action>`, AWS JSON 1.0), the
//! protocol current SDKs, boto3 and the AWS CLI speak. Queues and messages live in
//! `nimbus-store`; this module is the wire format, validation, MD5s and long polling.
//!
//! The store's calls are short synchronous SQLite transactions (WAL, no fsync per commit), made
//! directly on the async task: cheaper than a hop to a blocking thread for tens of microseconds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use nimbus_events::message::{md5_hex, sha256_hex, trace_of};
use nimbus_events::{now_ms, Signals};
use nimbus_store::{NewMessage, QueueAttributes, QueueError, Received, Sent, Store, StoreError};
use serde_json::{json, Map, Value};
use tokio::sync::Notify;

pub(crate) mod query;

/// Where the queues are reachable, for the URLs and ARNs nimbus hands out.
#[derive(Debug, Clone)]
pub struct SqsConfig {
    /// The AWS endpoint's base URL, e.g. `http://127.0.0.1:4566`.
    pub endpoint: String,
    pub region: String,
    pub account: String,
}

#[derive(Clone)]
pub struct Sqs {
    store: Arc<Store>,
    config: Arc<SqsConfig>,
    /// Wakes long polls when a queue gets a message.
    wakers: Signals,
}

/// An SQS error in the JSON protocol's shape.
#[derive(Debug)]
pub struct SqsError {
    status: StatusCode,
    /// `__type` without its namespace.
    shape: &'static str,
    /// The query-protocol code SDKs map errors by (`x-amzn-query-error`).
    query_code: &'static str,
    message: String,
}

impl SqsError {
    /// The HTTP status and message, for callers outside the SQS protocol.
    pub fn status_and_message(&self) -> (u16, String) {
        (
            self.status.as_u16(),
            format!("{}: {}", self.shape, self.message),
        )
    }

    /// SQS's error code (`__type` without its namespace), e.g. `QueueDoesNotExist`.
    pub fn code(&self) -> &'static str {
        self.shape
    }

    fn invalid(message: impl Into<String>) -> SqsError {
        SqsError {
            status: StatusCode::BAD_REQUEST,
            shape: "InvalidParameterValueException",
            query_code: "InvalidParameterValue",
            message: message.into(),
        }
    }

    /// `Sender` (the caller's fault) or `Receiver`, as SQS's error documents say.
    fn fault(&self) -> &'static str {
        if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        }
    }

    fn new(shape: &'static str, query_code: &'static str, message: impl Into<String>) -> SqsError {
        SqsError {
            status: StatusCode::BAD_REQUEST,
            shape,
            query_code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for SqsError {
    fn from(e: StoreError) -> SqsError {
        let message = e.to_string();
        let q = match e {
            StoreError::Queue(q) => q,
            other => {
                tracing::error!("sqs: {other}");
                return SqsError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    shape: "InternalError",
                    query_code: "InternalError",
                    message,
                };
            }
        };
        let (shape, query_code) = match q {
            QueueError::NonExistentQueue => (
                "QueueDoesNotExist",
                "AWS.SimpleQueueService.NonExistentQueue",
            ),
            QueueError::QueueAlreadyExists(_) => ("QueueNameExists", "QueueAlreadyExists"),
            QueueError::InvalidAttributeValue { .. } => {
                ("InvalidAttributeValue", "InvalidAttributeValue")
            }
            QueueError::InvalidAttributeName(_) => ("InvalidAttributeName", "InvalidAttributeName"),
            QueueError::ReceiptHandleIsInvalid(_) => {
                ("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid")
            }
            QueueError::MessageNotInflight => (
                "MessageNotInflight",
                "AWS.SimpleQueueService.MessageNotInflight",
            ),
            QueueError::Unsupported(_) => (
                "UnsupportedOperation",
                "AWS.SimpleQueueService.UnsupportedOperation",
            ),
            QueueError::InvalidParameterValue(_) => {
                ("InvalidParameterValueException", "InvalidParameterValue")
            }
        };
        SqsError::new(shape, query_code, message)
    }
}

impl IntoResponse for SqsError {
    fn into_response(self) -> Response {
        let fault = self.fault();
        let body = json!({
            "__type": format!("com.amazonaws.sqs#{}", self.shape),
            "message": self.message,
        });
        let mut resp = (
            self.status,
            [("content-type", "application/x-amz-json-1.0")],
            body.to_string(),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("{};{fault}", self.query_code)) {
            resp.headers_mut().insert("x-amzn-query-error", v);
        }
        resp
    }
}

type Result<T> = std::result::Result<T, SqsError>;

/// Queue names: 1-80 of alphanumerics, `-` and `_` (and `.fifo` at the end of FIFO queues).
fn check_queue_name(name: &str) -> Result<()> {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    if base.is_empty()
        || name.len() > 80
        || !base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(SqsError::invalid(format!(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length: {name:?}"
        )));
    }
    Ok(())
}

fn string<'a>(input: &'a Value, name: &str) -> Result<&'a str> {
    match &input[name] {
        Value::String(s) => Ok(s),
        Value::Null => Err(SqsError::new(
            "MissingParameter",
            "MissingParameter",
            format!("The request must contain the parameter {name}."),
        )),
        _ => Err(SqsError::invalid(format!("{name} must be a string"))),
    }
}

fn opt_u32(input: &Value, name: &str, min: u32, max: u32) -> Result<Option<u32>> {
    match &input[name] {
        Value::Null => Ok(None),
        v => match v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(n) if (min as u64..=max as u64).contains(&n) => Ok(Some(n as u32)),
            _ => Err(SqsError::invalid(format!(
                "Value {v} for parameter {name} is invalid. Reason: must be between {min} and {max}."
            ))),
        },
    }
}

fn string_map(v: &Value, what: &str) -> Result<BTreeMap<String, String>> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(SqsError::invalid(format!("{what}.{k} must be a string"))),
            })
            .collect(),
        _ => Err(SqsError::invalid(format!("{what} must be a map"))),
    }
}

/// Checks message attributes and computes their MD5 as SQS does.
pub fn message_attributes_md5(attrs: &Map<String, Value>) -> Result<String> {
    nimbus_events::message::attributes_md5(attrs).map_err(SqsError::invalid)
}

impl Sqs {
    pub fn new(store: Arc<Store>, config: SqsConfig, wakers: Signals) -> Sqs {
        Sqs {
            store,
            config: Arc::new(config),
            wakers,
        }
    }

    pub fn queue_url(&self, name: &str) -> String {
        format!(
            "{}/{}/{}",
            self.config.endpoint.trim_end_matches('/'),
            self.config.account,
            name
        )
    }

    pub fn queue_arn(&self, name: &str) -> String {
        nimbus_core::arn::queue_arn(&self.config.region, &self.config.account, name)
    }

    fn waker(&self, queue: &str) -> Arc<Notify> {
        self.wakers.waker(queue)
    }

    /// The queue a `QueueUrl` names: its last path segment (any host, as SDKs may rewrite it).
    fn queue_of(&self, input: &Value) -> Result<String> {
        let url = string(input, "QueueUrl")?;
        let name = url.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        check_queue_name(name).map_err(|_| {
            SqsError::new(
                "QueueDoesNotExist",
                "AWS.SimpleQueueService.NonExistentQueue",
                format!("The specified queue does not exist: {url}"),
            )
        })?;
        Ok(name.to_owned())
    }

    /// Answers a query-protocol request (form parameters; `path_queue` is the queue URL when the
    /// request was sent to it rather than to `/`).
    /// Answers in XML, or in the query protocol's JSON when `json` (the caller's `Accept`).
    pub async fn query(
        &self,
        params: Vec<(String, String)>,
        path_queue: Option<(&str, &str)>,
        json: bool,
    ) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (action, answer) = match query::parse(params) {
            Ok((action, mut input)) => {
                if let Some((account, queue)) = path_queue {
                    if input.get("QueueUrl").is_none() {
                        input["QueueUrl"] =
                            format!("{}/{account}/{queue}", self.config.endpoint).into();
                    }
                }
                let answer = self.dispatch(&action, input).await;
                (action, answer)
            }
            Err(e) => (String::new(), Err(e)),
        };
        if json {
            let result = match &answer {
                Ok(out) => Ok(crate::query_json::sqs_result(&action, out)),
                Err(e) => Err(crate::query_json::Fault {
                    status: e.status,
                    fault: e.fault(),
                    code: e.query_code,
                    message: &e.message,
                }),
            };
            return crate::query_json::reply(&action, result, &request_id);
        }
        let (status, body) = match answer {
            Ok(out) => (StatusCode::OK, query::response(&action, &out, &request_id)),
            Err(e) => (e.status, query::error(&e, &request_id)),
        };
        let mut resp = (status, [("content-type", "text/xml")], body).into_response();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert("x-amzn-requestid", v);
        }
        resp
    }

    /// Runs one action; `input` is the request's JSON body.
    pub async fn dispatch(&self, action: &str, input: Value) -> Result<Value> {
        match action {
            "CreateQueue" => self.create_queue(&input),
            "GetQueueUrl" => {
                let name = string(&input, "QueueName")?;
                self.store.queue_created_ms(name)?;
                Ok(json!({"QueueUrl": self.queue_url(name)}))
            }
            "ListQueues" => {
                let prefix = input["QueueNamePrefix"].as_str().unwrap_or("");
                let max = opt_u32(&input, "MaxResults", 1, 1000)?.unwrap_or(1000) as usize;
                let urls: Vec<String> = self
                    .store
                    .list_queues(prefix)?
                    .iter()
                    .take(max)
                    .map(|n| self.queue_url(n))
                    .collect();
                Ok(json!({"QueueUrls": urls}))
            }
            "DeleteQueue" => {
                self.store.delete_queue(&self.queue_of(&input)?)?;
                Ok(json!({}))
            }
            "PurgeQueue" => {
                self.store.purge_queue(&self.queue_of(&input)?)?;
                Ok(json!({}))
            }
            "GetQueueAttributes" => self.get_queue_attributes(&input),
            "SetQueueAttributes" => {
                let queue = self.queue_of(&input)?;
                let attrs = string_map(&input["Attributes"], "Attributes")?;
                self.store.set_queue_attributes(&queue, attrs)?;
                Ok(json!({}))
            }
            "SendMessage" => {
                let queue = self.queue_of(&input)?;
                let attrs = self.store.queue_attributes(&queue)?;
                let (msg, mut out) = new_message(&input, &attrs)?;
                let sent = self.store.send(&queue, vec![msg], now_ms()).await?;
                self.wakers.wake(&queue);
                answer_sent(&mut out, &sent[0]);
                Ok(out)
            }
            "SendMessageBatch" => self.send_batch(&input).await,
            "ReceiveMessage" => self.receive(&input).await,
            "DeleteMessage" => {
                let queue = self.queue_of(&input)?;
                self.store
                    .delete_message(&queue, string(&input, "ReceiptHandle")?)
                    .await?;
                Ok(json!({}))
            }
            "DeleteMessageBatch" => {
                let (queue, ids, receipts) =
                    self.batch_entries(&input, |e| Ok(string(e, "ReceiptHandle")?.to_owned()))?;
                let done = self.store.delete_messages(&queue, receipts).await?;
                Ok(Sqs::batch_answer(ids, done))
            }
            "ChangeMessageVisibility" => {
                let queue = self.queue_of(&input)?;
                let timeout = opt_u32(&input, "VisibilityTimeout", 0, 43_200)?
                    .ok_or_else(|| SqsError::invalid("VisibilityTimeout is required"))?;
                self.store
                    .change_visibility(&queue, string(&input, "ReceiptHandle")?, timeout, now_ms())
                    .await?;
                self.wakers.wake(&queue);
                Ok(json!({}))
            }
            "ChangeMessageVisibilityBatch" => {
                let (queue, ids, changes) = self.batch_entries(&input, |e| {
                    let timeout = opt_u32(e, "VisibilityTimeout", 0, 43_200)?
                        .ok_or_else(|| SqsError::invalid("VisibilityTimeout is required"))?;
                    Ok((string(e, "ReceiptHandle")?.to_owned(), timeout))
                })?;
                let done = self
                    .store
                    .change_visibilities(&queue, changes, now_ms())
                    .await?;
                self.wakers.wake(&queue);
                Ok(Sqs::batch_answer(ids, done))
            }
            "ListDeadLetterSourceQueues" => {
                let queue = self.queue_of(&input)?;
                self.store.queue_created_ms(&queue)?;
                let urls: Vec<String> = self
                    .store
                    .dead_letter_sources(&queue)?
                    .iter()
                    .map(|n| self.queue_url(n))
                    .collect();
                Ok(json!({"queueUrls": urls}))
            }
            other => Err(SqsError::new(
                "UnsupportedOperation",
                "AWS.SimpleQueueService.UnsupportedOperation",
                format!("nimbus does not support the SQS action {other}"),
            )),
        }
    }

    fn create_queue(&self, input: &Value) -> Result<Value> {
        let name = string(input, "QueueName")?;
        check_queue_name(name)?;
        let attrs = string_map(&input["Attributes"], "Attributes")?;
        self.store.create_queue(name, attrs, now_ms())?;
        Ok(json!({"QueueUrl": self.queue_url(name)}))
    }

    fn get_queue_attributes(&self, input: &Value) -> Result<Value> {
        let queue = self.queue_of(input)?;
        let a = self.store.queue_attributes(&queue)?;
        let created_s = self.store.queue_created_ms(&queue)? / 1000;
        let c = self.store.counts(&queue, now_ms())?;
        let mut all: BTreeMap<&str, String> = BTreeMap::new();
        all.insert("QueueArn", self.queue_arn(&queue));
        all.insert("ApproximateNumberOfMessages", c.visible.to_string());
        all.insert(
            "ApproximateNumberOfMessagesNotVisible",
            c.in_flight.to_string(),
        );
        all.insert("ApproximateNumberOfMessagesDelayed", c.delayed.to_string());
        all.insert("CreatedTimestamp", created_s.to_string());
        all.insert("LastModifiedTimestamp", created_s.to_string());
        all.insert("VisibilityTimeout", a.visibility_timeout_s.to_string());
        all.insert("MaximumMessageSize", a.maximum_message_size.to_string());
        all.insert("MessageRetentionPeriod", a.retention_s.to_string());
        all.insert("DelaySeconds", a.delay_s.to_string());
        all.insert(
            "ReceiveMessageWaitTimeSeconds",
            a.receive_wait_s.to_string(),
        );
        all.insert("SqsManagedSseEnabled", "false".into());
        if let Some(r) = &a.redrive {
            all.insert(
                "RedrivePolicy",
                json!({"deadLetterTargetArn": r.dead_letter_arn, "maxReceiveCount": r.max_receive_count})
                    .to_string(),
            );
        }
        let wanted: Vec<&str> = input["AttributeNames"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let out: Map<String, Value> = all
            .into_iter()
            .filter(|(k, _)| wanted.iter().any(|w| *w == "All" || w == k))
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect();
        Ok(json!({"Attributes": out}))
    }

    fn entries(input: &Value) -> Result<&Vec<Value>> {
        let entries = input["Entries"]
            .as_array()
            .filter(|e| !e.is_empty())
            .ok_or_else(|| {
                SqsError::new(
                    "EmptyBatchRequest",
                    "AWS.SimpleQueueService.EmptyBatchRequest",
                    "There should be at least one SendMessageBatchRequestEntry in the request.",
                )
            })?;
        if entries.len() > 10 {
            return Err(SqsError::new(
                "TooManyEntriesInBatchRequest",
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                format!(
                    "Maximum number of entries per request are 10. You have sent {}.",
                    entries.len()
                ),
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for e in entries {
            let id = e["Id"].as_str().unwrap_or("");
            if id.is_empty()
                || id.len() > 80
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(SqsError::new(
                    "InvalidBatchEntryId",
                    "AWS.SimpleQueueService.InvalidBatchEntryId",
                    format!("A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long: {id:?}"),
                ));
            }
            if !ids.insert(id) {
                return Err(SqsError::new(
                    "BatchEntryIdsNotDistinct",
                    "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                    format!("Id {id} repeated."),
                ));
            }
        }
        Ok(entries)
    }

    fn failed(id: &str, e: SqsError) -> Value {
        json!({"Id": id, "SenderFault": e.fault() == "Sender", "Code": e.query_code, "Message": e.message})
    }

    async fn send_batch(&self, input: &Value) -> Result<Value> {
        let queue = self.queue_of(input)?;
        let entries = Sqs::entries(input)?;
        let attrs = self.store.queue_attributes(&queue)?;
        let max = attrs.maximum_message_size as usize;
        let mut messages = Vec::new();
        let mut successful = Vec::new();
        let mut failed = Vec::new();
        let mut total = 0usize;
        for e in entries {
            let id = e["Id"].as_str().unwrap_or("");
            match new_message(e, &attrs) {
                Ok((m, mut out)) => {
                    total += m.body.len();
                    out["Id"] = id.into();
                    messages.push(m);
                    successful.push(out);
                }
                Err(err) => failed.push(Sqs::failed(id, err)),
            }
        }
        if total > max.max(262_144) {
            return Err(SqsError::new(
                "BatchRequestTooLong",
                "AWS.SimpleQueueService.BatchRequestTooLong",
                format!(
                    "Batch requests cannot be longer than {} bytes. You have sent {total} bytes.",
                    max.max(262_144)
                ),
            ));
        }
        // All the accepted entries commit together, before the answer.
        let sent = self.store.send(&queue, messages, now_ms()).await?;
        self.wakers.wake(&queue);
        for (out, s) in successful.iter_mut().zip(&sent) {
            answer_sent(out, s);
        }
        Ok(json!({"Successful": successful, "Failed": failed}))
    }

    /// A batch's queue and its entries, each either checked into what the store needs or
    /// already failed (its id with SQS's error).
    #[allow(clippy::type_complexity)]
    fn batch_entries<T>(
        &self,
        input: &Value,
        check: impl Fn(&Value) -> Result<T>,
    ) -> Result<(String, Vec<(String, Option<SqsError>)>, Vec<T>)> {
        let queue = self.queue_of(input)?;
        self.store.queue_created_ms(&queue)?;
        let mut ids = Vec::new();
        let mut checked = Vec::new();
        for e in Sqs::entries(input)? {
            let id = e["Id"].as_str().unwrap_or("").to_owned();
            match check(e) {
                Ok(t) => {
                    checked.push(t);
                    ids.push((id, None));
                }
                Err(err) => ids.push((id, Some(err))),
            }
        }
        Ok((queue, ids, checked))
    }

    /// The answer to a batch: the entries that failed their check, and the store's outcome for
    /// the others, in order.
    fn batch_answer(
        ids: Vec<(String, Option<SqsError>)>,
        done: Vec<std::result::Result<(), QueueError>>,
    ) -> Value {
        let mut done = done.into_iter();
        let mut successful = Vec::new();
        let mut failed = Vec::new();
        for (id, checked) in ids {
            let outcome = match checked {
                Some(err) => Err(err),
                None => done
                    .next()
                    .unwrap_or(Ok(()))
                    .map_err(|e| SqsError::from(StoreError::from(e))),
            };
            match outcome {
                Ok(()) => successful.push(json!({"Id": id})),
                Err(err) => failed.push(Sqs::failed(&id, err)),
            }
        }
        json!({"Successful": successful, "Failed": failed})
    }

    async fn receive(&self, input: &Value) -> Result<Value> {
        let queue = self.queue_of(input)?;
        let max = opt_u32(input, "MaxNumberOfMessages", 1, 10)?.unwrap_or(1);
        let visibility = opt_u32(input, "VisibilityTimeout", 0, 43_200)?;
        let attrs = self.store.queue_attributes(&queue)?;
        let wait = opt_u32(input, "WaitTimeSeconds", 0, 20)?.unwrap_or(attrs.receive_wait_s);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait as u64);
        let waker = self.waker(&queue);
        let got = loop {
            // Registered before looking, so a send between the look and the wait still wakes us.
            let notified = waker.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = now_ms();
            let got = self.store.receive(&queue, max, visibility, now).await?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !got.is_empty() || left.is_zero() {
                break got;
            }
            // Delayed or in-flight messages become visible without a send: wake for the next.
            let next = self
                .store
                .next_visible_ms(&queue, now)?
                .map(|t| Duration::from_millis(t.saturating_sub(now).max(1)))
                .unwrap_or(left);
            let _ = tokio::time::timeout(left.min(next), notified).await;
        };
        let wanted_system = names(input, &["AttributeNames", "MessageSystemAttributeNames"]);
        let wanted_attrs = names(input, &["MessageAttributeNames"]);
        let messages: Vec<Value> = got
            .into_iter()
            .map(|r| self.render(r, &wanted_system, &wanted_attrs))
            .collect();
        Ok(json!({"Messages": messages}))
    }

    fn render(&self, r: Received, system: &[String], wanted: &[String]) -> Value {
        let trace = trace_of(&r);
        let m = r.message;
        let mut out = json!({
            "MessageId": m.id,
            "ReceiptHandle": r.receipt,
            "MD5OfBody": m.md5_body,
            "Body": m.body,
        });
        let mut all = Map::new();
        all.insert("SenderId".into(), self.config.account.clone().into());
        all.insert("SentTimestamp".into(), m.sent_ms.to_string().into());
        for (k, v) in [
            ("MessageGroupId", &m.group_id),
            ("MessageDeduplicationId", &m.deduplication_id),
            ("SequenceNumber", &m.sequence_number),
        ] {
            if let Some(v) = v {
                all.insert(k.into(), v.clone().into());
            }
        }
        all.insert(
            "ApproximateReceiveCount".into(),
            m.receive_count.to_string().into(),
        );
        if let Some(t) = m.first_receive_ms {
            all.insert(
                "ApproximateFirstReceiveTimestamp".into(),
                t.to_string().into(),
            );
        }
        if let Some(trace) = trace {
            all.insert("AWSTraceHeader".into(), trace.into());
        }
        let chosen: Map<String, Value> = all
            .into_iter()
            .filter(|(k, _)| system.iter().any(|w| w == "All" || w == k))
            .collect();
        if !chosen.is_empty() {
            out["Attributes"] = Value::Object(chosen);
        }
        if let Some(attrs) = m
            .attributes
            .as_deref()
            .and_then(|s| serde_json::from_str::<Map<String, Value>>(s).ok())
        {
            let chosen: Map<String, Value> = attrs
                .into_iter()
                .filter(|(k, _)| {
                    wanted.iter().any(|w| {
                        w == "All"
                            || w == ".*"
                            || w == k
                            || w.strip_suffix(".*")
                                .is_some_and(|p| k.starts_with(&format!("{p}.")))
                    })
                })
                .collect();
            // The MD5 covers every attribute sent, as in SQS, whichever are returned.
            if let Some(md5) = m.md5_attributes {
                out["MD5OfMessageAttributes"] = md5.into();
            }
            if !chosen.is_empty() {
                out["MessageAttributes"] = Value::Object(chosen);
            }
        }
        out
    }
}

/// A stored send's id (the first message's, for a FIFO duplicate) and sequence number.
fn answer_sent(out: &mut Value, sent: &Sent) {
    out["MessageId"] = sent.id.clone().into();
    if let Some(n) = &sent.sequence_number {
        out["SequenceNumber"] = n.clone().into();
    }
}

/// Validates one message of a send against its queue and works out its MD5s (and, for a FIFO
/// queue with content-based deduplication, its deduplication id); the answer fields for it.
fn new_message(input: &Value, queue: &QueueAttributes) -> Result<(NewMessage, Value)> {
    let max = queue.maximum_message_size as usize;
    let body = string(input, "MessageBody")?;
    if body.is_empty() {
        return Err(SqsError::invalid(
            "The request must contain the parameter MessageBody.",
        ));
    }
    if body.len() > max {
        return Err(SqsError::invalid(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {max} bytes."
        )));
    }
    // SQS's allowed characters: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
    if body.chars().any(|c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }) {
        return Err(SqsError::invalid(
            "Invalid binary character in the message body: SQS allows #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD, #x10000-#x10FFFF",
        ));
    }
    let delay = opt_u32(input, "DelaySeconds", 0, 900)?;
    let text = |k: &str| input[k].as_str().map(str::to_owned);
    let (group_id, deduplication_id) = if queue.fifo {
        if delay.is_some() {
            return Err(SqsError::invalid(
                "Value for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.",
            ));
        }
        let group = text("MessageGroupId")
            .filter(|g| !g.is_empty())
            .ok_or_else(|| {
                SqsError::new(
                    "MissingParameter",
                    "MissingParameter",
                    "The request must contain the parameter MessageGroupId.",
                )
            })?;
        let dedup = match text("MessageDeduplicationId") {
            Some(d) => d,
            None if queue.content_based_deduplication => sha256_hex(body.as_bytes()),
            None => {
                return Err(SqsError::invalid(
                    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ))
            }
        };
        for (name, v) in [
            ("MessageGroupId", &group),
            ("MessageDeduplicationId", &dedup),
        ] {
            if v.len() > 128 || !v.chars().all(|c| c.is_ascii_graphic()) {
                return Err(SqsError::invalid(format!(
                    "Value {v} for parameter {name} is invalid. Reason: it must be 1 to 128 characters from alphanumeric and punctuation characters."
                )));
            }
        }
        (Some(group), Some(dedup))
    } else {
        if input.get("MessageGroupId").is_some() || input.get("MessageDeduplicationId").is_some() {
            return Err(SqsError::invalid(
                "The request include parameter MessageGroupId or MessageDeduplicationId that is not valid for this queue type (a standard queue)",
            ));
        }
        (None, None)
    };
    let (attributes, md5_attributes) = match &input["MessageAttributes"] {
        Value::Object(m) if !m.is_empty() => (
            serde_json::to_string(m).ok(),
            Some(message_attributes_md5(m)?),
        ),
        _ => (None, None),
    };
    let trace = input["MessageSystemAttributes"]["AWSTraceHeader"]["StringValue"]
        .as_str()
        .map(|t| json!({"AWSTraceHeader": t}).to_string());
    let id = uuid::Uuid::new_v4().to_string();
    let md5_body = md5_hex(body.as_bytes());
    let mut out = json!({"MessageId": id, "MD5OfMessageBody": md5_body});
    if let Some(m) = &md5_attributes {
        out["MD5OfMessageAttributes"] = m.clone().into();
    }
    Ok((
        NewMessage {
            id,
            body: body.to_owned(),
            md5_body,
            attributes,
            md5_attributes,
            system_attributes: trace,
            delay_s: delay,
            group_id,
            deduplication_id,
        },
        out,
    ))
}

fn names(input: &Value, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .flat_map(|k| input[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_attribute_md5_matches_a_published_value() {
        // The MD5 SQS returns for this attribute, as recorded in public SQS client test suites.
        let attrs: Map<String, Value> = serde_json::from_value(json!({
            "timestamp": {"DataType": "Number", "StringValue": "1493147359900"}
        }))
        .unwrap();
        assert_eq!(
            message_attributes_md5(&attrs).unwrap(),
            "235c5c510d26fb653d073faed50ae77c"
        );
        let bad: Map<String, Value> =
            serde_json::from_value(json!({"a": {"DataType": "Float", "StringValue": "1"}}))
                .unwrap();
        assert!(message_attributes_md5(&bad).is_err());
        let nan: Map<String, Value> =
            serde_json::from_value(json!({"a": {"DataType": "Number", "StringValue": "x"}}))
                .unwrap();
        assert!(message_attributes_md5(&nan).is_err());
    }

    #[test]
    fn a_store_that_cannot_commit_answers_sqs_internal_error_as_the_receivers_fault() {
        let e = SqsError::from(StoreError::Commit("database or disk is full".into()));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!((e.shape, e.query_code), ("InternalError", "InternalError"));
        assert_eq!(e.fault(), "Receiver");
        assert!(e.message.contains("disk is full"), "{}", e.message);
    }

    #[test]
    fn queue_names_follow_sqs_rules() {
        assert!(check_queue_name("orders-dlq_1").is_ok());
        assert!(check_queue_name("jobs.fifo").is_ok());
        assert!(check_queue_name("").is_err());
        assert!(check_queue_name("a b").is_err());
        assert!(check_queue_name(&"x".repeat(81)).is_err());
    }
}
