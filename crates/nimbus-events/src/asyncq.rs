//! Lambda's asynchronous invocation queue, one durable lane per function.
//!
//! An accepted event is a job in `fn:<name>`. The function's worker claims due jobs while it has
//! concurrency to spare (the function's reserved concurrency, else the account's, at most
//! [`MAX_IN_FLIGHT`]) and runs each: success sends the `OnSuccess` record; a function error is
//! retried with Lambda's timing; a throttle is backed off without counting as an attempt;
//! giving up sends the `OnFailure` record and/or the raw event to the dead-letter queue.
//! Retries keep the request id, as Lambda's do.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nimbus_core::retry::{GiveUp, Next};
use nimbus_lambda::{epoch_us, InvokeError, InvokeRequest, InvokeResponse};
use nimbus_store::{Job, NewJob, StoreError};
use nimbus_telemetry::traces::SpanKind;
use serde_json::{json, Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{message, now_ms, Hub};

/// Events of one function running at once, whatever its concurrency: beyond this a burst is
/// throttled by the platform anyway and only costs processes.
const MAX_IN_FLIGHT: usize = 256;

/// How long past the function's own limits a claimed job stays leased. An invocation ends
/// (answer or timeout) well inside its lease; the lease only matters after a crash, and start-up
/// releases those at once.
const LEASE_MARGIN: Duration = Duration::from_secs(60);

/// The most of a function's error message a dead-letter message carries (as Lambda: 1 KB).
const DLQ_MESSAGE_LIMIT: usize = 1024;

/// A function's asynchronous events are the jobs of lane `fn:<function>`.
pub(crate) const LANE_PREFIX: &str = "fn:";

pub(crate) fn lane(function: &str) -> String {
    format!("{LANE_PREFIX}{function}")
}

pub(crate) fn enqueue(
    hub: &Hub,
    function: &str,
    request_id: &str,
    payload: &str,
    trace: Option<&str>,
) -> Result<(), StoreError> {
    // A version's or an alias's events share the function's lane (one queue per function, as
    // Lambda's), the qualifier riding with each event.
    let (function, qualifier) = match function.split_once(':') {
        Some((name, q)) => (name, Some(q)),
        None => (function, None),
    };
    let lane = lane(function);
    hub.store().add_jobs_now(
        &[NewJob {
            lane: lane.clone(),
            id: request_id.to_owned(),
            payload: payload.to_owned(),
            meta: json!({ "trace": trace, "qualifier": qualifier }).to_string(),
            due_ms: None,
        }],
        now_ms(),
    )?;
    hub.lanes().wake(&lane);
    Ok(())
}

pub(crate) async fn worker(hub: Hub, function: String) {
    let Some(spec) = hub.platform().function(&function) else {
        return;
    };
    let lane = lane(&function);
    let limit = spec
        .reserved_concurrency
        .unwrap_or(hub.platform().config().account_concurrency)
        .clamp(1, MAX_IN_FLIGHT as u32) as usize;
    let slots = Arc::new(Semaphore::new(limit));
    let lease = hub.platform().config().init_timeout + spec.timeout + LEASE_MARGIN;
    let waker = hub.lanes().waker(&lane);
    let mut stop = hub.stopping();
    loop {
        if *stop.borrow() {
            return;
        }
        let notified = waker.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let free = slots.available_permits();
        let now = now_ms();
        let mut wait = Duration::from_secs(3600);
        if free > 0 {
            match hub
                .store()
                .claim_jobs(&lane, free as u32, now, now + lease.as_millis() as u64)
            {
                Ok(jobs) if !jobs.is_empty() => {
                    for job in jobs {
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            break;
                        };
                        tokio::spawn(run(hub.clone(), function.clone(), job, slot));
                    }
                    continue;
                }
                Ok(_) => {
                    if let Ok(Some(due)) = hub.store().next_job_due_ms(&lane) {
                        wait = Duration::from_millis(due.saturating_sub(now).max(1));
                    }
                }
                Err(e) => {
                    tracing::error!(%function, error = %e, "cannot read the asynchronous queue; trying again in 1 s");
                    wait = Duration::from_secs(1);
                }
            }
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn run(hub: Hub, function: String, job: Job, slot: OwnedSemaphorePermit) {
    let meta: Value = serde_json::from_str(&job.meta).unwrap_or_default();
    let trace = meta["trace"].as_str().map(str::to_owned);
    let target = match meta["qualifier"].as_str() {
        Some(q) => format!("{function}:{q}"),
        None => function.clone(),
    };
    // A version's or alias's own settings, else the function's.
    let cfg = hub.async_config(&target);
    let scale = hub.settings().delay_scale;
    let outcome = if !cfg.policy.alive(job.created_ms, now_ms()) {
        Outcome::GiveUp(GiveUp::EventAgeExceeded, None, job.attempts)
    } else {
        // The event's time in the queue, as Lambda's async "Dwell time".
        let traces = &hub.telemetry().traces;
        let wait = traces.open(
            trace.as_deref(),
            SpanKind::AsyncQueue,
            format!("function:{function}"),
            "Async event queue",
            job.created_ms * 1000,
        );
        let header = wait.as_ref().map(|w| w.header()).or_else(|| trace.clone());
        if let Some(mut w) = wait {
            w.attr("attempt", (job.attempts + 1).to_string());
            traces.close(w, epoch_us());
        }
        let req = InvokeRequest {
            payload: Bytes::from(job.payload.clone()),
            trace_header: header,
            request_id: Some(job.id.clone()),
            ..InvokeRequest::default()
        };
        match hub.platform().invoke(&target, req).await {
            Ok(out) if out.function_error.is_none() => Outcome::Success(out, job.attempts + 1),
            Ok(out) => {
                let attempts = job.attempts + 1;
                match cfg
                    .policy
                    .after_function_error(attempts, job.created_ms, now_ms(), scale)
                {
                    Next::RetryAt(t) => {
                        tracing::info!(%function, request_id = %job.id, attempts, retry_in_ms = t.saturating_sub(now_ms()), "asynchronous invocation failed; will retry");
                        Outcome::Retry(t, attempts, 0)
                    }
                    Next::GiveUp(why) => Outcome::GiveUp(why, Some(out), attempts),
                }
            }
            Err(InvokeError::Throttled(_))
                if hub
                    .platform()
                    .function(&function)
                    .is_some_and(|f| f.reserved_concurrency == Some(0)) =>
            {
                // Lambda sends these straight to the DLQ or on-failure destination.
                Outcome::GiveUp(GiveUp::RetriesExhausted, None, job.attempts)
            }
            Err(InvokeError::Throttled(_)) => {
                let throttles = job.throttles + 1;
                match cfg
                    .policy
                    .after_throttle(throttles, job.created_ms, now_ms(), scale)
                {
                    Next::RetryAt(t) => Outcome::Retry(t, job.attempts, throttles),
                    Next::GiveUp(why) => Outcome::GiveUp(why, None, job.attempts),
                }
            }
            Err(InvokeError::NotFound(_)) => {
                Outcome::GiveUp(GiveUp::RetriesExhausted, None, job.attempts)
            }
            // Left leased: the next start releases it.
            Err(InvokeError::ShuttingDown) => return,
        }
    };
    let result = match outcome {
        Outcome::Retry(at, attempts, throttles) => {
            hub.store()
                .reschedule_job(job.seq, at, attempts, throttles)
                .await
        }
        Outcome::Success(out, attempts) => {
            if let Some(dest) = &cfg.on_success {
                let record = record(&hub, &target, &job, "Success", Some(&out), attempts);
                send_record(&hub, &target, dest, &record, trace.as_deref(), true);
            }
            hub.store().finish_job(job.seq).await
        }
        Outcome::GiveUp(why, out, attempts) => {
            give_up(
                &hub,
                &function,
                &target,
                &job,
                &cfg,
                why,
                out.as_ref(),
                attempts,
                trace.as_deref(),
            );
            hub.store().finish_job(job.seq).await
        }
    };
    if let Err(e) = result {
        tracing::error!(%function, request_id = %job.id, error = %e, "cannot update the asynchronous queue");
    }
    drop(slot);
    hub.lanes().wake(&lane(&function));
}

enum Outcome {
    Retry(u64, u32, u32),
    Success(InvokeResponse, u32),
    GiveUp(GiveUp, Option<InvokeResponse>, u32),
}

#[allow(clippy::too_many_arguments)]
fn give_up(
    hub: &Hub,
    function: &str,
    target: &str,
    job: &Job,
    cfg: &crate::AsyncConfig,
    why: GiveUp,
    out: Option<&InvokeResponse>,
    attempts: u32,
    trace: Option<&str>,
) {
    tracing::warn!(%function, request_id = %job.id, attempts, reason = why.as_str(), "asynchronous invocation given up");
    let dead_letter = cfg.dead_letter_queue.is_some() || cfg.dead_letter_topic.is_some();
    if cfg.on_failure.is_some() || dead_letter {
        hub.platform()
            .telemetry()
            .lambda
            .dead_letter_sends
            .get_or_create(&nimbus_telemetry::function(function))
            .inc();
    }
    if let Some(dest) = &cfg.on_failure {
        let record = record(hub, target, job, why.as_str(), out, attempts);
        send_record(hub, target, dest, &record, trace, false);
    }
    if dead_letter {
        // Lambda's dead-letter message: the event, with why it failed as message attributes,
        // to the queue and to the topic alike.
        let (code, message) = match out {
            Some(o) => {
                let doc: Value = serde_json::from_slice(&o.payload).unwrap_or_default();
                let text = doc["errorMessage"].as_str().unwrap_or("").to_owned();
                ("200", text)
            }
            None => ("429", format!("{}: the event was not run", why.as_str())),
        };
        let mut attrs = Map::new();
        attrs.insert(
            "RequestID".into(),
            json!({"DataType": "String", "StringValue": job.id}),
        );
        attrs.insert(
            "ErrorCode".into(),
            json!({"DataType": "Number", "StringValue": code}),
        );
        if !message.is_empty() {
            let cut = floor_char_boundary(&message, DLQ_MESSAGE_LIMIT);
            attrs.insert(
                "ErrorMessage".into(),
                json!({"DataType": "String", "StringValue": &message[..cut]}),
            );
        }
        if let Some(queue) = &cfg.dead_letter_queue {
            let msg = message::internal(job.payload.clone(), Some(attrs.clone()), trace);
            if let Err(e) = hub.send(queue, &[msg]) {
                tracing::error!(%function, request_id = %job.id, queue, error = %e, "cannot send the failed event to the dead-letter queue; it is dropped");
            }
        }
        if let Some(topic) = &cfg.dead_letter_topic {
            if let Err(e) = hub.publish_to_topic(topic, &job.payload, Some(&attrs)) {
                tracing::error!(%function, request_id = %job.id, topic, error = %e, "cannot publish the failed event to the dead-letter topic; it is dropped");
            }
        }
    }
    if cfg.on_failure.is_none() && !dead_letter {
        tracing::warn!(%function, request_id = %job.id, "the event is dropped: the function has no OnFailure destination or DeadLetterQueue");
    }
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The ARN of what was invoked: `function:$LATEST`, or the version or alias it named.
fn invoked_arn(hub: &Hub, target: &str) -> String {
    let s = hub.settings();
    let arn = nimbus_core::arn::function_arn(&s.region, &s.account, target);
    match target.contains(':') {
        true => arn,
        false => format!("{arn}:$LATEST"),
    }
}

/// The record Lambda sends to a destination. `target` is what was invoked (`name` or
/// `name:qualifier`).
fn record(
    hub: &Hub,
    target: &str,
    job: &Job,
    condition: &str,
    out: Option<&InvokeResponse>,
    attempts: u32,
) -> Value {
    let mut record = json!({
        "version": "1.0",
        "timestamp": nimbus_core::report::timestamp_millis(now_ms()),
        "requestContext": {
            "requestId": job.id,
            "functionArn": invoked_arn(hub, target),
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": serde_json::from_str::<Value>(&job.payload).unwrap_or(Value::Null),
    });
    if let Some(o) = out {
        let mut ctx = json!({"statusCode": 200, "executedVersion": o.executed_version});
        if let Some(kind) = o.function_error {
            ctx["functionError"] = kind.into();
        }
        record["responseContext"] = ctx;
        record["responsePayload"] = serde_json::from_slice::<Value>(&o.payload)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&o.payload).into_owned()));
    }
    record
}

fn send_record(
    hub: &Hub,
    function: &str,
    dest: &crate::Dest,
    record: &Value,
    trace: Option<&str>,
    success: bool,
) {
    let detail_type = if success {
        "Lambda Function Invocation Result - Success"
    } else {
        "Lambda Function Invocation Result - Failure"
    };
    let resource = invoked_arn(hub, function);
    if let Err(e) = hub.deliver(
        dest,
        &record.to_string(),
        trace,
        ("lambda", detail_type, &resource),
    ) {
        tracing::error!(%function, destination = ?dest, error = %e, "cannot send the invocation record to its destination");
    }
}
