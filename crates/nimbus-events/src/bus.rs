//! EventBridge: buses, rules, target deliveries with retries, and schedules.
//!
//! `PutEvents` validates each entry, wraps it in EventBridge's envelope, matches it against
//! the bus's enabled rules and delivers it to every target of every matching rule before it
//! answers: a function target becomes a durable asynchronous invocation, a queue target a
//! durable message, a bus target the same event put on that bus. A delivery that fails is
//! stored as a job in the target's lane (`rule:<bus>/<rule>#<target>`) and retried with the
//! target's `RetryPolicy`; given up, it goes to the target's dead-letter queue with
//! EventBridge's message attributes (`RULE_ARN`, `TARGET_ARN`, `ERROR_CODE`, `ERROR_MESSAGE`).

use std::collections::BTreeSet;
use std::time::Duration;

use nimbus_core::retry::Next;
use nimbus_core::transform::TransformContext;
use nimbus_lambda::epoch_us;
use nimbus_store::NewJob;
use nimbus_telemetry::traces::SpanKind;
use nimbus_telemetry::{BusLabels, RuleLabels, TargetLabels};
use serde_json::{json, Map, Value};

use nimbus_core::arn::rule_arn;

use crate::config::{bus_name, Dest, RuleSpec, TargetSpec};
use crate::{message, now_ms, Hub, Settings};

/// EventBridge's limit on one entry (and on a whole request).
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;

/// How deep bus-to-bus forwarding may go: a rule that sends events back to its own bus must
/// not loop for ever.
const MAX_BUS_HOPS: u32 = 5;

/// One `PutEvents` entry, as the request gives it.
#[derive(Debug, Clone, Default)]
pub struct PutEventsEntry {
    pub source: Option<String>,
    pub detail_type: Option<String>,
    /// JSON text of an object.
    pub detail: Option<String>,
    /// Name or ARN; `default` when absent.
    pub event_bus_name: Option<String>,
    pub resources: Vec<String>,
    /// RFC 3339; the time of the call when absent.
    pub time: Option<String>,
    pub trace_header: Option<String>,
}

/// An entry's failure, as `PutEvents` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PutEntryError {
    pub code: String,
    pub message: String,
}

impl PutEntryError {
    fn new(code: &str, message: impl Into<String>) -> PutEntryError {
        PutEntryError {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

pub(crate) struct Buses {
    names: BTreeSet<String>,
    rules: Vec<Rule>,
}

struct Rule {
    spec: RuleSpec,
    arn: String,
}

impl Buses {
    pub(crate) fn new(
        settings: &Settings,
        mut names: BTreeSet<String>,
        rules: Vec<RuleSpec>,
    ) -> Buses {
        names.insert("default".into());
        let rules = rules
            .into_iter()
            .map(|spec| Rule {
                arn: rule_arn(&settings.region, &settings.account, &spec.bus, &spec.name),
                spec,
            })
            .collect();
        Buses { names, rules }
    }

    pub(crate) fn rules(&self) -> impl Iterator<Item = &RuleSpec> {
        self.rules.iter().map(|r| &r.spec)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    pub(crate) fn start(&self, hub: &Hub) {
        for (i, rule) in self.rules.iter().enumerate() {
            for t in 0..rule.spec.targets.len() {
                tokio::spawn(retry_worker(hub.clone(), i, t));
            }
            if rule.spec.enabled && rule.spec.schedule.is_some() {
                tokio::spawn(scheduler(hub.clone(), i));
            }
        }
    }
}

fn lane(rule: &Rule, target: &TargetSpec) -> String {
    format!("rule:{}/{}#{}", rule.spec.bus, rule.spec.name, target.id)
}

/// `2017-10-02T16:24:49Z`: EventBridge's envelope time has whole seconds.
fn seconds_timestamp(ms: u64) -> String {
    let mut t = nimbus_core::report::timestamp_millis(ms);
    // `...:49.727Z` -> `...:49Z`
    if let Some(dot) = t.rfind('.') {
        t.replace_range(dot..t.len() - 1, "");
    }
    t
}

fn check_entry(hub: &Hub, e: &PutEventsEntry) -> Result<(String, Value), PutEntryError> {
    fn required<'a>(v: &'a Option<String>, name: &str) -> Result<&'a str, PutEntryError> {
        match v.as_deref() {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(PutEntryError::new(
                "InvalidArgument",
                format!("Parameter {name} is not valid. Reason: {name} is a required argument."),
            )),
        }
    }
    let source = required(&e.source, "Source")?;
    let detail_type = required(&e.detail_type, "DetailType")?;
    let detail_text = required(&e.detail, "Detail")?;
    let size = source.len()
        + detail_type.len()
        + detail_text.len()
        + e.resources.iter().map(String::len).sum::<usize>();
    if size > MAX_ENTRY_BYTES {
        return Err(PutEntryError::new(
            "InvalidArgument",
            format!("Event entry is {size} bytes; the limit is {MAX_ENTRY_BYTES} bytes."),
        ));
    }
    let detail: Value = match serde_json::from_str(detail_text) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return Err(PutEntryError::new(
                "MalformedDetail",
                "Detail is malformed.",
            ))
        }
    };
    let bus = bus_name(e.event_bus_name.as_deref().unwrap_or("default"));
    if !hub.inner.buses.names.contains(bus) {
        return Err(PutEntryError::new(
            "ResourceNotFoundException",
            format!("Event bus {bus} does not exist."),
        ));
    }
    let now = now_ms();
    let time = match &e.time {
        None => seconds_timestamp(now),
        Some(t) => {
            match time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339) {
                Ok(parsed) => seconds_timestamp((parsed.unix_timestamp().max(0) as u64) * 1000),
                Err(_) => {
                    return Err(PutEntryError::new(
                        "InvalidArgument",
                        format!("Parameter Time is not valid: {t:?} is not an RFC 3339 timestamp."),
                    ))
                }
            }
        }
    };
    let s = hub.settings();
    let envelope = json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": detail_type,
        "source": source,
        "account": s.account,
        "time": time,
        "region": s.region,
        "resources": e.resources,
        "detail": detail,
    });
    Ok((bus.to_owned(), envelope))
}

pub(crate) fn put_events(
    hub: &Hub,
    entries: &[PutEventsEntry],
) -> Vec<Result<String, PutEntryError>> {
    entries
        .iter()
        .map(|e| {
            let (bus, envelope) = check_entry(hub, e)?;
            hub.platform()
                .telemetry()
                .events
                .put_events_entries
                .get_or_create(&BusLabels { bus: bus.clone() })
                .inc();
            let id = envelope["id"].as_str().unwrap_or_default().to_owned();
            let traces = &hub.telemetry().traces;
            let span = traces.open(
                e.trace_header.as_deref(),
                SpanKind::Bus,
                format!("bus:{bus}"),
                "PutEvents",
                epoch_us(),
            );
            let header = span.as_ref().map(|s| s.header());
            dispatch(
                hub,
                &bus,
                &envelope,
                header.as_deref().or(e.trace_header.as_deref()),
                0,
            );
            if let Some(mut s) = span {
                s.attr("event_id", id.clone());
                s.attr("source", envelope["source"].as_str().unwrap_or_default());
                s.attr(
                    "detail_type",
                    envelope["detail-type"].as_str().unwrap_or_default(),
                );
                traces.close(s, epoch_us());
            }
            Ok(id)
        })
        .collect()
}

/// Delivers an event to the targets of every enabled rule of `bus` it matches.
fn dispatch(hub: &Hub, bus: &str, event: &Value, trace: Option<&str>, hops: u32) {
    let ingestion_time = seconds_timestamp(now_ms());
    for rule in hub
        .inner
        .buses
        .rules
        .iter()
        .filter(|r| r.spec.enabled && r.spec.bus == bus)
    {
        let Some(pattern) = &rule.spec.pattern else {
            continue;
        };
        if !pattern.matches(event) {
            continue;
        }
        tracing::debug!(rule = %rule.spec.name, id = %event["id"], "event matched");
        hub.platform()
            .telemetry()
            .events
            .matched
            .get_or_create(&RuleLabels {
                bus: bus.to_owned(),
                rule: rule.spec.name.clone(),
            })
            .inc();
        deliver_to_targets(hub, rule, event, trace, &ingestion_time, hops);
    }
}

fn deliver_to_targets(
    hub: &Hub,
    rule: &Rule,
    event: &Value,
    trace: Option<&str>,
    ingestion_time: &str,
    hops: u32,
) {
    let ctx = TransformContext {
        rule_arn: &rule.arn,
        rule_name: &rule.spec.name,
        ingestion_time,
    };
    for target in &rule.spec.targets {
        let payload = target.input.apply(event, &ctx);
        if let Err(error) = traced(hub, rule, target, trace, |trace| {
            counted(hub, rule, target, || {
                deliver(hub, target, &payload, event, trace, hops)
            })
        }) {
            // Stored for the retry worker: accepted means durable, even when the target is not.
            let job = NewJob {
                lane: lane(rule, target),
                id: event["id"].as_str().unwrap_or_default().to_owned(),
                payload,
                // The event itself only for a bus target, which matches the event again.
                meta: match target.dest {
                    Dest::Bus(_) => json!({"trace": trace, "error": error, "event": event}),
                    _ => json!({"trace": trace, "error": error}),
                }
                .to_string(),
                due_ms: Some(now_ms() + 1000),
            };
            tracing::warn!(rule = %rule.spec.name, target = %target.id, %error, "delivery failed; will retry");
            if let Err(e) = hub.store().add_jobs_now(&[job], now_ms()) {
                tracing::error!(rule = %rule.spec.name, target = %target.id, error = %e, "cannot store the failed delivery; the event is lost for this target");
            }
        }
    }
}

/// One delivery to a target as a span of the event's trace (when it has one); `deliver` gets
/// the header to pass on.
fn traced(
    hub: &Hub,
    rule: &Rule,
    target: &TargetSpec,
    trace: Option<&str>,
    deliver: impl FnOnce(Option<&str>) -> Result<(), String>,
) -> Result<(), String> {
    let traces = &hub.telemetry().traces;
    let Some(mut span) = traces.open(
        trace,
        SpanKind::Target,
        format!("rule:{}", rule.spec.name),
        format!("{} -> {}", rule.spec.name, target.id),
        epoch_us(),
    ) else {
        return deliver(trace);
    };
    let result = deliver(Some(&span.header()));
    if let Err(e) = &result {
        span.fail(e.clone());
    }
    traces.close(span, epoch_us());
    result
}

/// One delivery to a target, counted in the target's metrics.
fn counted(
    hub: &Hub,
    rule: &Rule,
    target: &TargetSpec,
    deliver: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    let m = &hub.platform().telemetry().events;
    let labels = TargetLabels {
        bus: rule.spec.bus.clone(),
        rule: rule.spec.name.clone(),
        target: target.id.clone(),
    };
    m.target_invocations.get_or_create(&labels).inc();
    let result = deliver();
    if result.is_err() {
        m.target_failures.get_or_create(&labels).inc();
    }
    result
}

fn deliver(
    hub: &Hub,
    target: &TargetSpec,
    payload: &str,
    event: &Value,
    trace: Option<&str>,
    hops: u32,
) -> Result<(), String> {
    match &target.dest {
        Dest::Bus(b) => {
            if hops >= MAX_BUS_HOPS {
                return Err(format!(
                    "event went through {MAX_BUS_HOPS} buses; not forwarded again"
                ));
            }
            // The receiving bus matches its own rules against the (possibly reshaped) event.
            let forwarded: Value = serde_json::from_str(payload).unwrap_or_else(|_| event.clone());
            dispatch(hub, b, &forwarded, trace, hops + 1);
            Ok(())
        }
        Dest::Queue(q) if target.message_group_id.is_some() => {
            // EventBridge sets no deduplication id: a FIFO target needs content-based
            // deduplication, the SHA-256 of the body, as SQS computes it.
            let attrs = hub.store().queue_attributes(q).map_err(|e| e.to_string())?;
            if !attrs.content_based_deduplication {
                return Err(format!(
                    "the FIFO queue {q} must have ContentBasedDeduplication enabled to be an EventBridge target"
                ));
            }
            let mut m = message::internal(payload.to_owned(), None, trace);
            m.group_id = target.message_group_id.clone();
            m.deduplication_id = Some(message::sha256_hex(payload.as_bytes()));
            hub.send(q, &[m]).map_err(|e| e.to_string())
        }
        other => hub.deliver(other, payload, trace, ("", "", "")),
    }
}

async fn retry_worker(hub: Hub, rule_index: usize, target_index: usize) {
    let rule = &hub.inner.buses.rules[rule_index];
    let target = &rule.spec.targets[target_index];
    let lane = lane(rule, target);
    let mut stop = hub.stopping();
    loop {
        let now = now_ms();
        match hub.store().claim_jobs(&lane, 16, now, now + 60_000) {
            Ok(jobs) => {
                for job in jobs {
                    let meta: Value = serde_json::from_str(&job.meta).unwrap_or_default();
                    let trace = meta["trace"].as_str();
                    let attempts = job.attempts + 1;
                    let result = match traced(&hub, rule, target, trace, |trace| {
                        counted(&hub, rule, target, || {
                            deliver(&hub, target, &job.payload, &meta["event"], trace, 0)
                        })
                    }) {
                        Ok(()) => hub.store().finish_job(job.seq).await,
                        Err(error) => {
                            let jitter: f64 = rand::random();
                            match target.retry.after_delivery_failure(
                                attempts,
                                job.created_ms,
                                now_ms(),
                                jitter,
                                hub.settings().delay_scale,
                            ) {
                                Next::RetryAt(t) => {
                                    hub.store().reschedule_job(job.seq, t, attempts, 0).await
                                }
                                Next::GiveUp(why) => {
                                    dead_letter(
                                        &hub,
                                        rule,
                                        target,
                                        &job.payload,
                                        trace,
                                        &error,
                                        why.as_str(),
                                    );
                                    hub.store().finish_job(job.seq).await
                                }
                            }
                        }
                    };
                    if let Err(e) = result {
                        tracing::error!(%lane, error = %e, "cannot update a rule delivery");
                    }
                }
            }
            Err(e) => tracing::error!(%lane, error = %e, "cannot read rule deliveries"),
        }
        let wait = match hub.store().next_job_due_ms(&lane) {
            Ok(Some(due)) => Duration::from_millis(due.saturating_sub(now_ms()).clamp(10, 1000)),
            _ => Duration::from_secs(1),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

fn dead_letter(
    hub: &Hub,
    rule: &Rule,
    target: &TargetSpec,
    payload: &str,
    trace: Option<&str>,
    error: &str,
    why: &str,
) {
    let s = hub.settings();
    let Some(queue) = &target.dead_letter_queue else {
        tracing::error!(rule = %rule.spec.name, target = %target.id, %error, reason = why, "delivery given up and dropped: the target has no DeadLetterConfig");
        return;
    };
    let string = |v: &str| json!({"DataType": "String", "StringValue": v});
    let mut attrs = Map::new();
    attrs.insert("RULE_ARN".into(), string(&rule.arn));
    attrs.insert(
        "TARGET_ARN".into(),
        string(&target.dest.arn(&s.region, &s.account)),
    );
    attrs.insert("ERROR_CODE".into(), string(why));
    attrs.insert("ERROR_MESSAGE".into(), string(error));
    if let Err(e) = hub.send(
        queue,
        &[message::internal(payload.to_owned(), Some(attrs), trace)],
    ) {
        tracing::error!(rule = %rule.spec.name, target = %target.id, error = %e, "cannot send to the target's dead-letter queue; the event is lost");
    }
}

async fn scheduler(hub: Hub, rule_index: usize) {
    let rule = &hub.inner.buses.rules[rule_index];
    let Some(schedule) = &rule.spec.schedule else {
        return;
    };
    let anchor = now_ms() as i64;
    let mut after = anchor;
    let mut stop = hub.stopping();
    while let Some(next) = schedule.next_after(after, anchor) {
        let wait = Duration::from_millis((next - now_ms() as i64).max(0) as u64);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        after = next;
        let s = hub.settings();
        let event = json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": s.account,
            "time": seconds_timestamp(next as u64),
            "region": s.region,
            "resources": [rule.arn],
            "detail": {},
        });
        tracing::debug!(rule = %rule.spec.name, "schedule fired");
        deliver_to_targets(&hub, rule, &event, None, &seconds_timestamp(now_ms()), 0);
    }
}
