//! Amazon SNS, as nimbus serves it: topics and subscriptions in `<state-dir>/sns.db`, and a
//! publish fanned out to every subscription whose filter policy matches.
//!
//! Deliveries go through nimbus's durable paths before `Publish` answers: a message for an SQS
//! subscription is sent to the queue (the SNS envelope, or the bare message with
//! `RawMessageDelivery`), a Lambda subscription becomes an asynchronous invocation (Lambda's SNS
//! event), an HTTP/HTTPS subscription a durable delivery job (`http.rs`: confirmation first,
//! signed messages, the delivery policy's retries). So an accepted publish survives `kill -9`.
//! Email, SMS and mobile push subscriptions are refused: nimbus does not deliver them.
//!
//! Filter policies use EventBridge's matcher (`nimbus_core::pattern`), which reads the same
//! syntax: on the message attributes (`FilterPolicyScope: MessageAttributes`, the default, with
//! `String.Array` attributes as arrays and `Number` ones as numbers) or on the message body
//! (`MessageBody`).
//!
//! Messages to HTTP/HTTPS endpoints are signed with nimbus's own key (`signing.rs`), its
//! certificate served at their `SigningCertURL`. The envelopes SQS and Lambda subscriptions get
//! carry a placeholder `Signature` instead: signing every fan-out with RSA would cost more than
//! the rest of a publish, and nothing reads those signatures that would not also have to be
//! pointed at nimbus's certificate.

mod http;
mod ops;
mod signing;
mod state;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nimbus_events::Hub;
use serde_json::{json, Value};

pub use http::{HttpRequest, HttpSender};
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
    /// Where the signing key is kept (beside the database); `None` in memory.
    state_dir: Option<PathBuf>,
    /// Made on first use: generating an RSA key takes a moment.
    signer: Mutex<Option<Arc<signing::Signer>>>,
    /// Wakes the HTTP delivery worker when a job is added.
    http_wake: Arc<tokio::sync::Notify>,
}

impl Sns {
    /// Opens (creating if needed) the database at `path`; `None` keeps it in memory (tests).
    pub fn open(path: Option<&Path>, hub: Hub, config: SnsConfig) -> Result<Sns, SnsError> {
        Ok(Sns {
            inner: Arc::new(Inner {
                db: Mutex::new(state::open(path)?),
                hub,
                config,
                state_dir: path.and_then(Path::parent).map(Path::to_path_buf),
                signer: Mutex::new(None),
                http_wake: Arc::new(tokio::sync::Notify::new()),
            }),
        })
    }

    /// Starts delivering to HTTP/HTTPS subscriptions (deliveries queued before, and after a
    /// restart, included) with `send`, until the hub stops. Needs a Tokio runtime.
    pub fn start_http_delivery(&self, send: HttpSender) {
        tokio::spawn(http::worker(self.clone(), send));
    }

    /// The certificate of the key HTTP/HTTPS messages are signed with (PEM), served at their
    /// `SigningCertURL`. The first call may generate the key: call it off the async threads.
    pub fn signing_cert_pem(&self) -> Result<String, SnsError> {
        Ok(self.signer()?.cert_pem().to_owned())
    }

    pub(crate) fn signer(&self) -> Result<Arc<signing::Signer>, SnsError> {
        let mut slot = self.inner.signer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = slot.as_ref() {
            return Ok(Arc::clone(s));
        }
        let signer = Arc::new(signing::Signer::load_or_create(
            self.inner.state_dir.as_deref(),
        )?);
        *slot = Some(Arc::clone(&signer));
        Ok(signer)
    }

    /// At the endpoint's root, as SNS's own certificates are (`/SimpleNotificationService-<id>.pem`).
    pub(crate) fn cert_url(&self) -> String {
        format!(
            "{}/SimpleNotificationService-nimbus.pem",
            self.inner.config.endpoint
        )
    }

    pub(crate) fn http_wake(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.inner.http_wake)
    }

    /// Makes HTTP/HTTPS deliveries durable, then wakes their worker.
    pub(crate) fn queue_http(&self, jobs: &[nimbus_store::NewJob]) -> Result<(), SnsError> {
        self.hub()
            .store()
            .add_jobs_now(jobs, nimbus_events::now_ms())
            .map_err(|e| SnsError::Internal(format!("cannot queue an HTTP delivery: {e}")))?;
        self.inner.http_wake.notify_one();
        Ok(())
    }

    pub(crate) fn db(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
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
        let (arns, to_confirm) = state::apply_template(self, &mut db, topics, subscriptions, now)?;
        let mut jobs = Vec::new();
        for sub in &to_confirm {
            if let Some(topic) = state::topic(&db, &sub.topic_arn)? {
                jobs.push(ops::confirmation_job(self, &topic, sub, now));
            }
        }
        drop(db);
        if !jobs.is_empty() {
            self.queue_http(&jobs)?;
        }
        Ok(arns)
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

    /// Publishes `message` (with `attributes`, `Publish`'s `MessageAttributes`) to the topic
    /// named `topic`, as a rule target, destination or dead-letter topic does: the same fan-out
    /// as `Publish`.
    pub fn publish(
        &self,
        topic: &str,
        message: &str,
        attributes: Option<&serde_json::Map<String, Value>>,
    ) -> Result<String, SnsError> {
        let mut input = json!({"TopicArn": self.topic_arn(topic), "Message": message});
        if let Some(a) = attributes {
            input["MessageAttributes"] = Value::Object(a.clone());
        }
        let out = self.dispatch("Publish", &input)?;
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
