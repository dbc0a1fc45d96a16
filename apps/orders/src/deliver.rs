//! Deliver: orders from the bus to the slow downstream API, with retries.
//!
//! Two ways in, one way out. A rule can invoke the function asynchronously with the
//! EventBridge event itself (`detail` is the order), or send the event to an SQS queue whose
//! event source mapping invokes the function with a batch of records (each record's `body` is
//! the event as JSON text). Either way each order is posted to `SLOW_API_URL` without its
//! `meta_data`, with the correlation id in `x-correlation-id`.
//!
//! What a give-up means depends on the way in: an async invocation fails (so Lambda's async
//! retries and the DLQ or on-failure destination apply); a batch reports the record in
//! `batchItemFailures` (so SQS makes it visible again and, after `maxReceiveCount`
//! receives, moves it to the queue's DLQ).
//!
//! The retry loop runs against [`Effects`], so its tests post, sleep, read the clock and draw
//! random numbers by hand.

use std::fmt;
use std::future::Future;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use lambda_runtime::Diagnostic;
use serde_json::{json, Map, Value};

use crate::config::{required, u64_or, ConfigError, Vars};
use crate::log;
use crate::notify::kind;

/// Time kept back before the function's deadline to log and answer.
pub const DEADLINE_MARGIN_MS: u64 = 500;

/// A value that is never shown: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// When to try again and how long to wait first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub min_wait_ms: u64,
    pub max_wait_ms: u64,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The longest one attempt may take.
    pub attempt_timeout_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min_wait_ms: 3000,
            max_wait_ms: 8000,
            max_attempts: 5,
            attempt_timeout_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub url: String,
    pub api_key: Secret,
    pub retry: RetryPolicy,
}

impl Config {
    pub fn from_vars(vars: Vars<'_>) -> Result<Self, ConfigError> {
        let url = required(vars, "SLOW_API_URL")?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError(format!(
                "SLOW_API_URL must be an http:// or https:// URL, got {url:?}"
            )));
        }
        let d = RetryPolicy::default();
        let retry = RetryPolicy {
            min_wait_ms: u64_or(vars, "DELIVER_RETRY_MIN_MS", d.min_wait_ms, 0)?,
            max_wait_ms: u64_or(vars, "DELIVER_RETRY_MAX_MS", d.max_wait_ms, 0)?,
            max_attempts: u64_or(vars, "DELIVER_MAX_ATTEMPTS", d.max_attempts.into(), 1)?
                .try_into()
                .map_err(|_| ConfigError("DELIVER_MAX_ATTEMPTS is too large".into()))?,
            attempt_timeout_ms: u64_or(
                vars,
                "DELIVER_ATTEMPT_TIMEOUT_MS",
                d.attempt_timeout_ms,
                1,
            )?,
        };
        if retry.min_wait_ms > retry.max_wait_ms {
            return Err(ConfigError(format!(
                "DELIVER_RETRY_MIN_MS ({}) is more than DELIVER_RETRY_MAX_MS ({})",
                retry.min_wait_ms, retry.max_wait_ms
            )));
        }
        Ok(Config {
            url,
            api_key: Secret(required(vars, "SLOW_API_KEY")?),
            retry,
        })
    }
}

/// An order to deliver: the body to post (without `meta_data`) and its correlation id.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub correlation_id: String,
    pub body: Map<String, Value>,
}

/// The order in an EventBridge event's `detail`, without its `meta_data`. The correlation id
/// is `meta_data.correlation_id`, or the event's id for an order that came without one.
pub fn order_from_detail(detail: Value, event_id: Option<&str>) -> Result<Order, String> {
    let Value::Object(mut body) = detail else {
        return Err(format!(
            "the event's detail must be the order (a JSON object), got {}",
            kind(&detail)
        ));
    };
    let meta = body.remove("meta_data");
    let from_meta = meta
        .as_ref()
        .and_then(|m| m.get("correlation_id"))
        .and_then(Value::as_str);
    let Some(correlation_id) = from_meta
        .filter(|s| !s.is_empty())
        .or(event_id.filter(|s| !s.is_empty()))
    else {
        return Err("the order has no meta_data.correlation_id and the event no id".to_owned());
    };
    let correlation_id = correlation_id.to_owned();
    Ok(Order {
        correlation_id,
        body,
    })
}

/// The order in an EventBridge event; `what` begins the message when `v` is not an event.
fn order_from_event(v: Value, what: &str) -> Result<Order, String> {
    let event: EventBridgeEvent<Value> =
        serde_json::from_value(v).map_err(|e| format!("{what}: {e}"))?;
    order_from_detail(event.detail, event.id.as_deref())
}

/// One SQS record: its message id and its order, or why it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub message_id: String,
    pub order: Result<Order, String>,
}

/// What the function was invoked with.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An EventBridge event (asynchronous invocation by a rule).
    Event(Order),
    /// An SQS batch (event source mapping).
    Batch(Vec<Record>),
}

/// Tells the two shapes apart (`Records` is SQS). `Err` when the invocation as a whole is
/// unusable: not an event, or a record without the message id a failure is reported by.
pub fn parse_input(v: Value) -> Result<Input, String> {
    let Some(records) = v.get("Records") else {
        return order_from_event(
            v,
            "the input is neither an SQS event (no Records) nor an EventBridge event",
        )
        .map(Input::Event);
    };
    let Value::Array(records) = records else {
        return Err(format!(
            "the SQS event's Records must be an array, got {}",
            kind(records)
        ));
    };
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let message: SqsMessage = serde_json::from_value(r.clone())
            .map_err(|e| format!("Records[{i}] is not an SQS message: {e}"))?;
        let Some(message_id) = message.message_id.filter(|m| !m.is_empty()) else {
            return Err(format!(
                "Records[{i}] has no messageId, so it cannot be reported as a batch item failure"
            ));
        };
        let order = match message.body {
            None => Err("the record has no body".to_owned()),
            Some(body) => serde_json::from_str::<Value>(&body)
                .map_err(|e| format!("the record's body is not JSON: {e}"))
                .and_then(|v| order_from_event(v, "the record's body is not an EventBridge event")),
        };
        out.push(Record { message_id, order });
    }
    Ok(Input::Batch(out))
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The API answered with this status.
    Status(u16),
    /// No answer within the attempt's time.
    TimedOut { after_ms: u64 },
    /// No answer: the connection failed or broke.
    Failed(String),
}

impl Attempt {
    pub fn status(&self) -> Option<u16> {
        match self {
            Attempt::Status(s) => Some(*s),
            _ => None,
        }
    }

    /// The error text for the log, `None` for a 2xx.
    pub fn error(&self) -> Option<String> {
        match self {
            Attempt::Status(s) if (200..300).contains(s) => None,
            Attempt::Status(s) => Some(format!("HTTP {s}")),
            Attempt::TimedOut { after_ms } => Some(format!("no answer within {after_ms} ms")),
            Attempt::Failed(e) => Some(e.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Worth another attempt: 429, 5xx, a timeout, a connection error.
    Retry,
    /// Another attempt would get the same answer: any other status.
    Permanent,
}

pub fn classify(a: &Attempt) -> Verdict {
    match a {
        Attempt::Status(s) if (200..300).contains(s) => Verdict::Delivered,
        Attempt::Status(429) | Attempt::Status(500..=599) => Verdict::Retry,
        Attempt::Status(_) => Verdict::Permanent,
        Attempt::TimedOut { .. } | Attempt::Failed(_) => Verdict::Retry,
    }
}

/// The wait before the next attempt: uniform in [min, max] from `u` in [0, 1).
pub fn wait_ms(p: &RetryPolicy, u: f64) -> u64 {
    let span = p.max_wait_ms - p.min_wait_ms;
    let offset = (u.clamp(0.0, 1.0) * (span as f64 + 1.0)).floor() as u64;
    p.min_wait_ms + offset.min(span)
}

/// The time the next attempt may take: the policy's, or what is left before the deadline.
pub fn attempt_budget_ms(p: &RetryPolicy, now_ms: u64, deadline_ms: Option<u64>) -> u64 {
    match deadline_ms {
        Some(d) => p
            .attempt_timeout_ms
            .min(d.saturating_sub(now_ms + DEADLINE_MARGIN_MS))
            .max(1),
        None => p.attempt_timeout_ms,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Delivered,
    /// Wait this long, then try again.
    Wait(u64),
    GiveUp(String),
}

/// After attempt number `attempts` (1-based) ended as `last`: deliver, wait, or give up.
/// Gives up rather than start an attempt that could not finish before the function's deadline
/// (less [`DEADLINE_MARGIN_MS`]), so a give-up is reported instead of the function timing out.
pub fn next_step(
    p: &RetryPolicy,
    attempts: u32,
    last: &Attempt,
    u: f64,
    now_ms: u64,
    deadline_ms: Option<u64>,
) -> Step {
    match classify(last) {
        Verdict::Delivered => Step::Delivered,
        Verdict::Permanent => Step::GiveUp(format!(
            "{} is not retried",
            last.error().unwrap_or_default()
        )),
        Verdict::Retry if attempts >= p.max_attempts => {
            Step::GiveUp(format!("{attempts} attempt(s) made, the most allowed"))
        }
        Verdict::Retry => {
            let wait = wait_ms(p, u);
            match deadline_ms {
                Some(d) if now_ms + wait + p.attempt_timeout_ms + DEADLINE_MARGIN_MS > d => {
                    Step::GiveUp(format!(
                        "no time for another attempt before the function's deadline ({} ms left)",
                        d.saturating_sub(now_ms)
                    ))
                }
                _ => Step::Wait(wait),
            }
        }
    }
}

/// `{"event":"attempt","correlation_id","attempt","status","error","ts_ms"}`
pub fn attempt_line(correlation_id: &str, n: u32, a: &Attempt, ts_ms: u64) -> String {
    log::line(
        "attempt",
        &[
            ("correlation_id", Value::from(correlation_id)),
            ("attempt", Value::from(n)),
            ("status", a.status().map_or(Value::Null, Value::from)),
            ("error", log::opt(a.error().as_deref())),
        ],
        ts_ms,
    )
}

/// `{"event":"delivered","correlation_id","attempts","ts_ms"}`
pub fn delivered_line(correlation_id: &str, attempts: u32, ts_ms: u64) -> String {
    log::line(
        "delivered",
        &[
            ("correlation_id", Value::from(correlation_id)),
            ("attempts", Value::from(attempts)),
        ],
        ts_ms,
    )
}

/// `{"event":"gave_up","correlation_id","attempts","reason","ts_ms"}`
pub fn gave_up_line(correlation_id: &str, attempts: u32, reason: &str, ts_ms: u64) -> String {
    log::line(
        "gave_up",
        &[
            ("correlation_id", Value::from(correlation_id)),
            ("attempts", Value::from(attempts)),
            ("reason", Value::from(reason)),
        ],
        ts_ms,
    )
}

/// `{"event":"bad_record","message_id","error","ts_ms"}`: a record that holds no order.
pub fn bad_record_line(message_id: &str, error: &str, ts_ms: u64) -> String {
    log::line(
        "bad_record",
        &[
            ("message_id", Value::from(message_id)),
            ("error", Value::from(error)),
        ],
        ts_ms,
    )
}

/// `{"event":"bad_input","error","ts_ms"}`: an invocation that holds no order at all.
pub fn bad_input_line(error: &str, ts_ms: u64) -> String {
    log::line("bad_input", &[("error", Value::from(error))], ts_ms)
}

/// The outside world, as the delivery loop sees it.
pub trait Effects {
    /// Posts the order once, taking at most `timeout_ms`.
    fn post(&self, order: &Order, timeout_ms: u64) -> impl Future<Output = Attempt>;
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
    fn now_ms(&self) -> u64;
    /// A uniform random number in [0, 1).
    fn random(&self) -> f64;
    fn log(&self, line: String);
}

/// How one order's delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub attempts: u32,
    /// `None` when delivered, else why it gave up.
    pub gave_up: Option<String>,
}

/// Posts `order` until it is delivered or the policy gives up; logs every attempt and the
/// outcome.
pub async fn deliver<E: Effects>(
    e: &E,
    p: &RetryPolicy,
    order: &Order,
    deadline_ms: Option<u64>,
) -> Outcome {
    let id = order.correlation_id.as_str();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let budget = attempt_budget_ms(p, e.now_ms(), deadline_ms);
        let result = e.post(order, budget).await;
        let now = e.now_ms();
        e.log(attempt_line(id, attempts, &result, now));
        match next_step(p, attempts, &result, e.random(), now, deadline_ms) {
            Step::Delivered => {
                e.log(delivered_line(id, attempts, now));
                return Outcome {
                    attempts,
                    gave_up: None,
                };
            }
            Step::GiveUp(reason) => {
                e.log(gave_up_line(id, attempts, &reason, now));
                return Outcome {
                    attempts,
                    gave_up: Some(reason),
                };
            }
            Step::Wait(ms) => e.sleep(ms).await,
        }
    }
}

/// A failed invocation, as Lambda reports it (`errorType`, `errorMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverError {
    pub error_type: &'static str,
    pub message: String,
}

impl fmt::Display for DeliverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl std::error::Error for DeliverError {}

impl From<DeliverError> for Diagnostic {
    fn from(e: DeliverError) -> Self {
        Diagnostic {
            error_type: e.error_type.to_owned(),
            error_message: e.message,
        }
    }
}

/// The whole invocation: an event's order delivered (or an error), or a batch's records
/// delivered concurrently and the ones that were not reported as batch item failures.
pub async fn handle<E: Effects>(
    e: &E,
    p: &RetryPolicy,
    input: Value,
    deadline_ms: Option<u64>,
) -> Result<Value, DeliverError> {
    let input = match parse_input(input) {
        Ok(i) => i,
        Err(message) => {
            e.log(bad_input_line(&message, e.now_ms()));
            return Err(DeliverError {
                error_type: "InvalidInput",
                message,
            });
        }
    };
    match input {
        Input::Event(order) => {
            let outcome = deliver(e, p, &order, deadline_ms).await;
            match outcome.gave_up {
                None => Ok(json!({
                    "correlation_id": order.correlation_id,
                    "attempts": outcome.attempts,
                })),
                Some(reason) => Err(DeliverError {
                    error_type: "DeliveryFailed",
                    message: format!(
                        "gave up delivering order {} after {} attempt(s): {reason}",
                        order.correlation_id, outcome.attempts
                    ),
                }),
            }
        }
        Input::Batch(records) => {
            let jobs = records.iter().map(|r| async move {
                match &r.order {
                    Err(why) => {
                        e.log(bad_record_line(&r.message_id, why, e.now_ms()));
                        false
                    }
                    Ok(order) => deliver(e, p, order, deadline_ms).await.gave_up.is_none(),
                }
            });
            let delivered = futures_util::future::join_all(jobs).await;
            let mut response = SqsBatchResponse::default();
            for (r, ok) in records.iter().zip(delivered) {
                if !ok {
                    let mut f = BatchItemFailure::default();
                    f.item_identifier = r.message_id.clone();
                    response.batch_item_failures.push(f);
                }
            }
            serde_json::to_value(&response).map_err(|e| DeliverError {
                error_type: "InternalError",
                message: format!("could not write the batch response: {e}"),
            })
        }
    }
}

/// An error and its sources, `a: b: c`, without repeats (for reqwest's nested errors).
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests;
