//! Amazon SNS, as nimbus serves it: topics and subscriptions in `<state-dir>/sns.db`, and a
//! publish fanned out to every subscription whose filter policy matches.
//!
//! Deliveries go through nimbus's durable paths before `Publish` answers: a message for an SQS
//! subscription is sent to the queue (the SNS envelope, or the bare message with
//! `RawMessageDelivery`), a Lambda subscription becomes an asynchronous invocation (Lambda's SNS
//! event). So an accepted publish survives `kill -9`. HTTP/HTTPS, email and SMS subscriptions
//! are refused: nimbus does not deliver them yet.
//!
//! Filter policies use EventBridge's matcher (`nimbus_core::pattern`), which reads the same
//! syntax: on the message attributes (`FilterPolicyScope: MessageAttributes`, the default, with
//! `String.Array` attributes as arrays and `Number` ones as numbers) or on the message body
//! (`MessageBody`).
//!
//! The envelope's `Signature` is not AWS's (nimbus has no SNS signing key): it is present, so
//! code that reads it finds it, and it cannot be verified against AWS's certificate.

mod ops;
mod state;

use std::path::Path;
use std::sync::{Arc, Mutex};

use nimbus_events::Hub;
use serde_json::{json, Value};

pub use state::{TemplateSubscription, TemplateTopic};

/// SNS's errors: the query protocol's code, its HTTP status and message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SnsError {
    #[error("{message}")]
    Service {
        code: &'static str,
        status: u16,
        message: String,
    },
    /// nimbus's own failure (its database, a queue it could not write): SNS's `InternalError`.
    #[error("{0}")]
    Internal(String),
}

impl SnsError {
    pub(crate) fn invalid(message: impl Into<String>) -> SnsError {
        SnsError::Service {
            code: "InvalidParameter",
            status: 400,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> SnsError {
        SnsError::Service {
            code: "NotFound",
            status: 404,
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            SnsError::Service { code, .. } => code,
            SnsError::Internal(_) => "InternalError",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            SnsError::Service { status, .. } => *status,
            SnsError::Internal(_) => 500,
        }
    }

    /// Whether the caller is at fault (`Sender`) or SNS (`Receiver`).
    pub fn fault(&self) -> &'static str {
        match self.status() {
            500.. => "Receiver",
            _ => "Sender",
        }
    }
}

impl From<rusqlite::Error> for SnsError {
    fn from(e: rusqlite::Error) -> SnsError {
        SnsError::Internal(format!("the topic database failed: {e}"))
    }
}

/// Where ARNs and URLs point.
#[derive(Debug, Clone)]
pub struct SnsConfig {
    pub region: String,
    pub account: String,
    /// nimbus's AWS endpoint (the envelope's `UnsubscribeURL`).
    pub endpoint: String,
}

/// The SNS service: cheap to clone.
#[derive(Clone)]
pub struct Sns {
    inner: Arc<Inner>,
}

struct Inner {
    db: Mutex<rusqlite::Connection>,
    hub: Hub,
    config: SnsConfig,
}

impl Sns {
    /// Opens (creating if needed) the database at `path`; `None` keeps it in memory (tests).
    pub fn open(path: Option<&Path>, hub: Hub, config: SnsConfig) -> Result<Sns, SnsError> {
        Ok(Sns {
            inner: Arc::new(Inner {
                db: Mutex::new(state::open(path)?),
                hub,
                config,
            }),
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.inner.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn config(&self) -> &SnsConfig {
        &self.inner.config
    }

    pub(crate) fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub fn topic_arn(&self, name: &str) -> String {
        let c = &self.inner.config;
        format!("arn:aws:sns:{}:{}:{name}", c.region, c.account)
    }

    /// Creates the template's topics and subscriptions (kept across runs; a subscription the
    /// template no longer declares is removed). Returns the topics' ARNs.
    pub fn apply_template(
        &self,
        topics: &[TemplateTopic],
        subscriptions: &[TemplateSubscription],
    ) -> Result<Vec<String>, SnsError> {
        let now = nimbus_events::now_ms();
        let mut db = self.db();
        state::apply_template(self, &mut db, topics, subscriptions, now)
    }

    /// Runs one action; `input` is the request as JSON (the query protocol's parameters, decoded).
    pub fn dispatch(&self, action: &str, input: &Value) -> Result<Value, SnsError> {
        let now = nimbus_events::now_ms();
        match action {
            "Publish" => {
                let plan = {
                    let db = self.db();
                    ops::publish_plan(self, &db, input, now)?
                };
                ops::deliver(self, plan)
            }
            "PublishBatch" => {
                let plans = {
                    let db = self.db();
                    ops::publish_batch_plans(self, &db, input, now)?
                };
                ops::deliver_batch(self, plans)
            }
            _ => {
                let mut db = self.db();
                ops::admin(self, &mut db, action, input, now)
            }
        }
    }

    /// Publishes `message` to the topic named `topic`, as a rule target, destination or
    /// dead-letter queue does: the same fan-out as `Publish`.
    pub fn publish(&self, topic: &str, message: &str) -> Result<String, SnsError> {
        let out = self.dispatch(
            "Publish",
            &json!({"TopicArn": self.topic_arn(topic), "Message": message}),
        )?;
        Ok(out["MessageId"].as_str().unwrap_or("").to_owned())
    }

    /// Names of the topics, for start-up output and the dashboard.
    pub fn topics(&self) -> Result<Vec<String>, SnsError> {
        state::topic_names(&self.db())
    }
}

/// The `Attributes` of a request as a string map (`{"entry": ...}` already decoded).
pub(crate) fn string_map(v: &Value) -> Result<serde_json::Map<String, Value>, SnsError> {
    match v {
        Value::Null => Ok(serde_json::Map::new()),
        Value::Object(m) => {
            for (k, v) in m {
                if !v.is_string() {
                    return Err(SnsError::invalid(format!(
                        "Invalid parameter: Attributes Reason: {k} must be a string"
                    )));
                }
            }
            Ok(m.clone())
        }
        _ => Err(SnsError::invalid("Invalid parameter: Attributes")),
    }
}

/// A JSON answer with nothing in it: most administrative actions.
pub(crate) fn empty() -> Value {
    json!({})
}
