//! nimbus's event engine: everything that moves an event without a caller waiting for it.
//!
//! - Asynchronous invocation ([`Hub::invoke_async`]): a durable job per event in the function's
//!   lane, run by one worker per function with Lambda's retry timing, `EventInvokeConfig`,
//!   dead-letter queues and destinations.
//! - EventBridge ([`Hub::put_events`]): buses, rules matched with `nimbus_core::pattern`,
//!   targets (functions asynchronously, queues, other buses) with their input reshaped, rule
//!   retries with `RetryPolicy` and the target's dead-letter queue, and schedules.
//! - SQS event source mappings: a poller per mapping that batches, filters, bounds its
//!   concurrency and deletes or keeps messages by the function's answer.
//! - DynamoDB stream event source mappings (`streams`): a poller per mapping that reads the
//!   table's stream in order from a durable checkpoint and moves it only on success.
//!
//! Invariants: what the engine accepts is in the store before the call that accepted it
//! returns; the engine never holds events only in memory. Policy (retry timing, patterns,
//! input transforms, schedules) lives in `nimbus-core`; this crate is the I/O around it.

mod alarms;
mod asyncq;
mod bus;
pub mod config;
mod esm;
pub mod message;
mod streams;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use nimbus_lambda::Platform;
use nimbus_store::{NewMessage, Store, StoreError};
use nimbus_telemetry::{AsyncSnapshot, QueueSnapshot};
use tokio::sync::Notify;

pub use bus::{PutEntryError, PutEventsEntry};
pub use config::{
    dest_from_arn, AlarmSpec, AsyncConfig, Dest, EventsSpec, MappingSpec, RuleSpec, TargetSpec,
};

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Function not found: {0}")]
    FunctionNotFound(String),
}

/// Settings shared by the engine.
#[derive(Debug, Clone)]
pub struct Settings {
    pub region: String,
    pub account: String,
    /// Multiplies every retry and backoff delay (not event age limits): 1.0 is AWS's timing.
    pub delay_scale: f64,
}

/// Wakes whoever waits on a queue (long polls, pollers) when messages arrive.
#[derive(Clone, Default)]
pub struct Signals {
    wakers: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

impl Signals {
    pub fn waker(&self, key: &str) -> Arc<Notify> {
        self.wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    pub fn wake(&self, key: &str) {
        self.waker(key).notify_waiters();
    }
}

/// The engine's handle; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    platform: Platform,
    settings: Settings,
    queues: Signals,
    lanes: Signals,
    /// By function, or by `function:qualifier` for a version's or alias's own settings
    /// (`PutFunctionEventInvokeConfig` with a `Qualifier`), with the time each was set.
    async_configs: std::sync::RwLock<BTreeMap<String, (AsyncConfig, u64)>>,
    buses: bus::Buses,
    mappings: Vec<MappingSpec>,
    stream_mappings: Vec<config::StreamMappingSpec>,
    alarms: Vec<Arc<alarms::Alarm>>,
    stop: tokio::sync::watch::Sender<bool>,
    /// Publishes to an SNS topic (`topic name, message, message attributes`); set once SNS
    /// exists, which is built on this hub.
    topics: std::sync::OnceLock<TopicPublisher>,
    machines: std::sync::OnceLock<MachineStarter>,
    log_writer: std::sync::OnceLock<LogWriter>,
}

/// What publishes a message to an SNS topic for the engine: `(topic name, message, message
/// attributes)`, the attributes in `Publish`'s shape (`{name: {DataType, StringValue}}`).
pub type TopicPublisher = Box<
    dyn Fn(&str, &str, Option<&serde_json::Map<String, serde_json::Value>>) -> Result<(), String>
        + Send
        + Sync,
>;
/// Starts an execution of a state machine (by name) with an input; set by the binary.
pub type MachineStarter = Box<dyn Fn(&str, &str) -> Result<(), String> + Send + Sync>;
/// Writes an event (JSON text) to a log group, by name.
pub type LogWriter = Box<dyn Fn(&str, &str) -> Result<(), String> + Send + Sync>;

/// Unix milliseconds: the time the engine and the SQS layer pass to the store.
pub use nimbus_lambda::epoch_ms as now_ms;

impl Hub {
    pub fn new(
        store: Arc<Store>,
        platform: Platform,
        settings: Settings,
        queues: Signals,
        spec: EventsSpec,
    ) -> Hub {
        let (stop, _) = tokio::sync::watch::channel(false);
        let buses = bus::Buses::new(&settings, spec.buses, spec.rules);
        Hub {
            inner: Arc::new(Inner {
                store,
                platform,
                settings,
                queues,
                lanes: Signals::default(),
                async_configs: std::sync::RwLock::new(
                    spec.async_configs
                        .into_iter()
                        .map(|(k, v)| (k, (v, now_ms())))
                        .collect(),
                ),
                buses,
                mappings: spec.mappings,
                stream_mappings: spec.stream_mappings,
                alarms: spec
                    .alarms
                    .into_iter()
                    .map(|a| Arc::new(alarms::Alarm::new(a)))
                    .collect(),
                stop,
                topics: std::sync::OnceLock::new(),
                machines: std::sync::OnceLock::new(),
                log_writer: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Starts the workers: one per function (asynchronous queue), per rule target lane, per
    /// schedule and per event source mapping. Jobs leased by a previous run are released
    /// first: nothing is running yet, so they were cut short by a crash.
    pub fn start(&self) -> Result<(), EventsError> {
        let released = self.inner.store.release_leases(now_ms())?;
        if released > 0 {
            tracing::info!(
                released,
                "resuming asynchronous work interrupted by the last stop"
            );
        }
        for f in self.inner.platform.functions() {
            tokio::spawn(asyncq::worker(self.clone(), f.name.clone()));
        }
        self.inner.buses.start(self);
        for m in self.inner.mappings.iter().filter(|m| m.enabled) {
            tokio::spawn(esm::poller(self.clone(), m.clone()));
        }
        for a in &self.inner.alarms {
            tokio::spawn(alarms::evaluator(self.clone(), a.clone()));
        }
        Ok(())
    }

    /// Starts the pollers of each DynamoDB stream event source mapping: one per
    /// `ParallelizationFactor` lane, each from its checkpoint.
    pub fn start_streams(&self, ddb: &nimbus_dynamodb::DynamoDb) {
        for m in self.inner.stream_mappings.iter().filter(|m| m.enabled) {
            // Every lane's start is fixed before any lane runs: a lane new to this run starts
            // where the mapping as a whole had got to, not where another lane gets to now.
            match streams::start_positions(ddb, m) {
                Ok(starts) => {
                    for (lane, start) in starts.into_iter().enumerate() {
                        tokio::spawn(streams::poller(
                            self.clone(),
                            ddb.clone(),
                            m.clone(),
                            lane as u32,
                            start,
                        ));
                    }
                }
                Err(e) => {
                    tracing::error!(table = %m.table, function = %m.function, error = %e, "cannot read the stream mapping's checkpoint; the mapping does not run")
                }
            }
        }
    }

    pub fn stream_mappings(&self) -> &[config::StreamMappingSpec] {
        &self.inner.stream_mappings
    }

    /// Stops the workers; running invocations finish in the platform's own shutdown.
    pub fn stop(&self) {
        let _ = self.inner.stop.send(true);
    }

    /// Changes when nimbus stops: workers of other crates (SNS's HTTP deliveries) end with it.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.stop.subscribe()
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    pub(crate) fn platform(&self) -> &Platform {
        &self.inner.platform
    }

    pub fn rules(&self) -> impl Iterator<Item = &RuleSpec> {
        self.inner.buses.rules()
    }

    pub fn buses(&self) -> impl Iterator<Item = &str> {
        self.inner.buses.names()
    }

    /// The template's alarms and their states: `{"alarms": [...]}` as the dashboard's API
    /// shows them.
    pub fn alarm_states(&self) -> serde_json::Value {
        let alarms: Vec<serde_json::Value> =
            self.inner.alarms.iter().map(|a| a.describe()).collect();
        serde_json::json!({ "alarms": alarms })
    }

    /// The state of the template's alarm `name` now (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    pub fn alarm_state(&self, name: &str) -> Option<&'static str> {
        self.inner
            .alarms
            .iter()
            .find(|a| a.spec.name == name)
            .map(|a| a.state())
    }

    pub fn alarms(&self) -> impl Iterator<Item = &AlarmSpec> {
        self.inner.alarms.iter().map(|a| &a.spec)
    }

    pub fn mappings(&self) -> &[MappingSpec] {
        &self.inner.mappings
    }

    /// Every metric as the OpenMetrics text, with the store's gauges read at this moment
    /// (`GET /metrics`, the dashboard and alarms all read this). A store that cannot be read
    /// leaves the gauges as they were, with an error logged.
    pub fn scrape_metrics(&self) -> String {
        self.telemetry().scrape(|| {
            if let Err(e) = self.refresh_metrics() {
                tracing::error!(error = %e, "cannot read queue depths for the metrics");
            }
        })
    }

    /// Fills the metrics that are read from the store (queue depths and ages, asynchronous
    /// queues) with their current values: called when metrics are scraped.
    fn refresh_metrics(&self) -> Result<(), StoreError> {
        let store = self.store();
        let now = now_ms();
        let age =
            |oldest: Option<u64>| oldest.map_or(0.0, |t| now.saturating_sub(t) as f64 / 1000.0);
        let mut queues = Vec::new();
        for q in store.list_queues("")? {
            match store.counts(&q, now) {
                Ok(c) => queues.push(QueueSnapshot {
                    queue: q,
                    visible: c.visible as i64,
                    in_flight: c.in_flight as i64,
                    delayed: c.delayed as i64,
                    oldest_age_s: age(c.oldest_sent_ms),
                }),
                // Deleted between the listing and the count.
                Err(StoreError::Queue(nimbus_store::QueueError::NonExistentQueue)) => {}
                Err(e) => return Err(e),
            }
        }
        let lanes = store.job_lane_stats(asyncq::LANE_PREFIX)?;
        let functions: Vec<AsyncSnapshot> = lanes
            .into_iter()
            .map(|(lane, jobs, oldest)| AsyncSnapshot {
                function: lane[asyncq::LANE_PREFIX.len()..].to_owned(),
                queued: jobs as i64,
                oldest_age_s: age(Some(oldest)),
            })
            .collect();
        let t = self.platform().telemetry();
        t.set_queues(&queues);
        let commits = store.commit_stats();
        t.set_store_commits(commits.commits, commits.writes);
        t.set_async_queues(&functions);
        Ok(())
    }

    /// The metrics the engine and the platform record into.
    pub fn telemetry(&self) -> &std::sync::Arc<nimbus_telemetry::Telemetry> {
        self.platform().telemetry()
    }

    pub fn queue_arn(&self, queue: &str) -> String {
        let s = &self.inner.settings;
        nimbus_core::arn::queue_arn(&s.region, &s.account, queue)
    }

    /// Sends messages nimbus produces (DLQ entries, records, rule deliveries) and wakes the
    /// queue's readers.
    pub fn send(&self, queue: &str, messages: &[NewMessage]) -> Result<(), StoreError> {
        self.inner.store.send_now(queue, messages, now_ms())?;
        self.inner.queues.wake(queue);
        Ok(())
    }

    /// Accepts an `Event` invocation: durable when this returns. Returns the request id.
    pub fn invoke_async(
        &self,
        function: &str,
        payload: &str,
        trace_header: Option<&str>,
    ) -> Result<String, EventsError> {
        if !self.inner.platform.exists(function) {
            return Err(EventsError::FunctionNotFound(function.to_owned()));
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        asyncq::enqueue(self, function, &request_id, payload, trace_header)?;
        Ok(request_id)
    }

    /// `PutEvents`: each entry's result, in order. Accepted entries are durable (their target
    /// deliveries stored) when this returns.
    pub fn put_events(&self, entries: &[PutEventsEntry]) -> Vec<Result<String, PutEntryError>> {
        bus::put_events(self, entries)
    }

    /// A function's asynchronous invocation settings (Lambda's defaults when it declared none).
    pub fn async_config(&self, function: &str) -> AsyncConfig {
        let configs = self.inner.async_configs.read().expect("configs poisoned");
        let base = function.split(':').next().unwrap_or(function);
        configs
            .get(function)
            .or_else(|| configs.get(base))
            .map(|(c, _)| c.clone())
            .unwrap_or_default()
    }

    /// The settings `PutFunctionEventInvokeConfig` (or the template) gave exactly `target` (a
    /// function, or `function:qualifier`), and when.
    pub fn event_invoke_config(&self, target: &str) -> Option<(AsyncConfig, u64)> {
        let configs = self.inner.async_configs.read().expect("configs poisoned");
        configs.get(target).cloned()
    }

    /// Every function's and qualifier's own asynchronous settings starting with `function`.
    pub fn event_invoke_configs(&self, function: &str) -> Vec<(String, AsyncConfig, u64)> {
        let configs = self.inner.async_configs.read().expect("configs poisoned");
        configs
            .iter()
            .filter(|(k, _)| k.split(':').next() == Some(function))
            .map(|(k, (c, t))| (k.clone(), c.clone(), *t))
            .collect()
    }

    /// Sets (`None`: removes) `target`'s own asynchronous settings; the DLQ stays the
    /// function's.
    pub fn set_event_invoke_config(&self, target: &str, config: Option<AsyncConfig>) {
        let mut configs = self.inner.async_configs.write().expect("configs poisoned");
        match config {
            Some(mut c) => {
                let base = target.split(':').next().unwrap_or(target);
                let function = configs
                    .get(base)
                    .map(|(b, _)| b.clone())
                    .unwrap_or_default();
                c.dead_letter_queue = function.dead_letter_queue;
                c.dead_letter_topic = function.dead_letter_topic;
                configs.insert(target.to_owned(), (c, now_ms()));
            }
            None => {
                configs.remove(target);
            }
        }
    }

    pub(crate) fn lanes(&self) -> &Signals {
        &self.inner.lanes
    }

    pub(crate) fn queues(&self) -> &Signals {
        &self.inner.queues
    }

    /// Lets the engine publish to SNS topics (rule targets, a function's destinations); the
    /// binary sets it once SNS is built on this hub. A second call is ignored. The publisher
    /// holds SNS, which holds this hub: both live as long as the process.
    pub fn set_topic_publisher(&self, publish: TopicPublisher) {
        let _ = self.inner.topics.set(publish);
    }

    /// Publishes `message` (with `attributes`) to the SNS topic named `topic`.
    pub fn publish_to_topic(
        &self,
        topic: &str,
        message: &str,
        attributes: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<(), String> {
        match self.inner.topics.get() {
            Some(publish) => publish(topic, message, attributes),
            None => Err(format!("topic {topic}: SNS is not running")),
        }
    }

    /// Lets the engine start Step Functions executions (rule targets); set like the topic
    /// publisher, once Step Functions is built.
    pub fn set_machine_starter(&self, start: MachineStarter) {
        let _ = self.inner.machines.set(start);
    }

    /// Lets the engine write events to CloudWatch Logs log groups (rule targets); set once by
    /// the binary, which owns the log files.
    pub fn set_log_writer(&self, write: LogWriter) {
        let _ = self.inner.log_writer.set(write);
    }

    /// Delivers a payload to a destination: a queue message, an asynchronous invocation, or an
    /// event on a bus (`detail_type`/`source` used only then).
    pub fn deliver(
        &self,
        dest: &Dest,
        payload: &str,
        trace: Option<&str>,
        as_event: (&str, &str, &str),
    ) -> Result<(), String> {
        match dest {
            Dest::Queue(q) => self
                .send(q, &[message::internal(payload.to_owned(), None, trace)])
                .map_err(|e| e.to_string()),
            Dest::Function(f) => self
                .invoke_async(f, payload, trace)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Dest::Topic(t) => self.publish_to_topic(t, payload, None),
            Dest::StateMachine(m) => match self.inner.machines.get() {
                Some(start) => start(m, payload),
                None => Err(format!("state machine {m}: Step Functions is not running")),
            },
            Dest::LogGroup(g) => match self.inner.log_writer.get() {
                Some(write) => write(g, payload),
                None => Err(format!("log group {g}: no log writer is set")),
            },
            Dest::Bus(b) => {
                let (source, detail_type, resource) = as_event;
                let entry = PutEventsEntry {
                    source: Some(source.to_owned()),
                    detail_type: Some(detail_type.to_owned()),
                    detail: Some(payload.to_owned()),
                    event_bus_name: Some(b.clone()),
                    resources: vec![resource.to_owned()],
                    time: None,
                    trace_header: trace.map(str::to_owned),
                };
                match bus::put_events(self, std::slice::from_ref(&entry)).remove(0) {
                    Ok(_) => Ok(()),
                    Err(e) => Err(e.message),
                }
            }
        }
    }
}
