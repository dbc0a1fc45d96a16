//! SQS event source mappings: Lambda's poller for one queue and one function.
//!
//! The poller takes a concurrency slot, gathers a batch (up to `BatchSize`, waiting up to
//! `MaximumBatchingWindowInSeconds` for more once it has some), drops the messages no filter
//! matches (deleted, as Lambda does), and invokes the function with the rest while it gathers
//! the next batch. Slots bound the mapping's concurrent invocations to
//! `ScalingConfig.MaximumConcurrency`. Success deletes the batch, or with
//! `ReportBatchItemFailures` all but the reported items; a function error deletes nothing, so
//! the messages come back after their visibility timeout and end in the queue's dead-letter
//! queue after `maxReceiveCount`. A throttle hands the messages back without using up a
//! receive and slows the poller down (`nimbus_core::poller`: fewer batches at once, then pauses).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use nimbus_core::poller::{PollerScale, Start};
use nimbus_lambda::{epoch_us, InvokeError, InvokeRequest};
use nimbus_store::{QueueError, Received, StoreError};
use nimbus_telemetry::traces::SpanKind;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::config::MappingSpec;
use crate::{message, now_ms, Hub};

/// Concurrent batches of a mapping without `MaximumConcurrency`, beyond the function's own
/// limit: Lambda scales further (to 1250), but on one machine each is a process.
const DEFAULT_CONCURRENCY: u32 = 64;

/// An empty queue is polled again after this (or as soon as a message arrives).
const IDLE_WAIT: Duration = Duration::from_secs(20);

/// The mapping's batches in flight and how many it may have.
struct Scaling {
    state: Mutex<(PollerScale, u32)>,
    /// Signalled when a batch ends.
    ended: Notify,
}

impl Scaling {
    fn lock(&self) -> std::sync::MutexGuard<'_, (PollerScale, u32)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One batch in flight (and the scaling generation it started in); ending it (dropping) frees
/// its place.
struct Slot(Arc<Scaling>, u64);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.lock().1 -= 1;
        self.0.ended.notify_waiters();
    }
}

pub(crate) async fn poller(hub: Hub, m: MappingSpec) {
    let m = Arc::new(m);
    let arn = hub.queue_arn(&m.queue);
    let reserved = hub
        .platform()
        .function(m.function.split(':').next().unwrap_or(&m.function))
        .and_then(|f| f.reserved_concurrency);
    let limit = m
        .max_concurrency
        .or(reserved)
        .unwrap_or(DEFAULT_CONCURRENCY);
    let scaling = Arc::new(Scaling {
        state: Mutex::new((PollerScale::new(limit), 0)),
        ended: Notify::new(),
    });
    let mut stop = hub.stopping();
    let mut missing_reported = false;
    loop {
        let slot = loop {
            // Registered before looking, so a batch ending in between still wakes us.
            let ended = scaling.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let (start, generation) = {
                let mut state = scaling.lock();
                let start = state.0.may_start(state.1, now_ms());
                if start == Start::Now {
                    state.1 += 1;
                }
                (start, state.0.generation())
            };
            match start {
                Start::Now => break Slot(scaling.clone(), generation),
                Start::PausedUntil(t) => tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(t.saturating_sub(now_ms()))) => {}
                    _ = stop.changed() => return,
                },
                Start::WhenOneEnds => tokio::select! {
                    _ = &mut ended => {}
                    _ = stop.changed() => return,
                },
            }
        };
        let batch = match gather(&hub, &m, &mut stop).await {
            Ok(Some(b)) => {
                missing_reported = false;
                b
            }
            Ok(None) => return,
            Err(e) => {
                if !missing_reported {
                    tracing::error!(queue = %m.queue, function = %m.function, error = %e, "event source mapping cannot read its queue; trying again every 5 s");
                    missing_reported = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        let (batch, records) = filter(&hub, &m, &arn, batch).await;
        if batch.is_empty() {
            continue;
        }
        tokio::spawn(invoke(hub.clone(), m.clone(), batch, records, slot));
    }
}

/// One batch, or `None` when stopping.
async fn gather(
    hub: &Hub,
    m: &MappingSpec,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Option<Vec<Received>>, StoreError> {
    let waker = hub.queues().waker(&m.queue);
    let mut batch: Vec<Received> = Vec::new();
    let mut window_end: Option<tokio::time::Instant> = None;
    loop {
        if *stop.borrow() {
            return Ok(None);
        }
        let notified = waker.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let want = (m.batch_size as usize - batch.len()).min(10) as u32;
        let now = now_ms();
        let got = hub.store().receive(&m.queue, want, None, now).await?;
        let got_some = !got.is_empty();
        batch.extend(got);
        if batch.len() >= m.batch_size as usize || (!batch.is_empty() && m.window_ms == 0) {
            return Ok(Some(batch));
        }
        if !batch.is_empty() && window_end.is_none() {
            window_end = Some(tokio::time::Instant::now() + Duration::from_millis(m.window_ms));
        }
        if let Some(end) = window_end {
            if tokio::time::Instant::now() >= end {
                return Ok(Some(batch));
            }
        }
        if got_some {
            continue;
        }
        let mut wait = IDLE_WAIT;
        if let Some(next) = hub.store().next_visible_ms(&m.queue, now)? {
            wait = wait.min(Duration::from_millis(next.saturating_sub(now).max(1)));
        }
        if let Some(end) = window_end {
            wait = wait.min(end.saturating_duration_since(tokio::time::Instant::now()));
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return Ok(None),
        }
    }
}

/// The messages to invoke with and their Lambda records, built once. Drops (deletes) the
/// messages no filter matches; filters see the record with its body parsed when the body is
/// JSON, as Lambda's do.
async fn filter(
    hub: &Hub,
    m: &MappingSpec,
    arn: &str,
    batch: Vec<Received>,
) -> (Vec<Received>, Vec<Value>) {
    let s = hub.settings();
    let mut keep = Vec::with_capacity(batch.len());
    let mut records = Vec::with_capacity(batch.len());
    for r in batch {
        let mut record = message::lambda_record(&r, arn, &s.region, &s.account);
        let matched = m.filters.is_empty() || {
            match serde_json::from_str::<Value>(&r.message.body) {
                Ok(body) => {
                    let raw = std::mem::replace(&mut record["body"], body);
                    let matched = m.filters.iter().any(|f| f.matches(&record));
                    record["body"] = raw;
                    matched
                }
                Err(_) => m.filters.iter().any(|f| f.matches(&record)),
            }
        };
        if matched {
            keep.push(r);
            records.push(record);
        } else if let Err(e) = hub.store().delete_message(&m.queue, &r.receipt).await {
            tracing::error!(queue = %m.queue, error = %e, "cannot delete a filtered-out message");
        }
    }
    (keep, records)
}

async fn invoke(
    hub: Hub,
    m: Arc<MappingSpec>,
    batch: Vec<Received>,
    records: Vec<Value>,
    slot: Slot,
) {
    let trace = batch.first().and_then(message::trace_of);
    let traces = &hub.telemetry().traces;
    // The first message's wait between its send and this receive.
    let wait = batch.first().and_then(|first| {
        traces.open(
            trace.as_deref(),
            SpanKind::QueueWait,
            format!("queue:{}", m.queue),
            format!("{} -> {}", m.queue, m.function),
            first.message.sent_ms * 1000,
        )
    });
    let header = wait.as_ref().map(|w| w.header()).or(trace);
    if let Some(mut w) = wait {
        w.attr("messages", batch.len().to_string());
        traces.close(w, epoch_us());
    }
    let req = InvokeRequest {
        payload: Bytes::from(json!({ "Records": records }).to_string()),
        trace_header: header,
        ..InvokeRequest::default()
    };
    match hub.platform().invoke(&m.function, req).await {
        Ok(out) if out.function_error.is_none() => {
            slot.0.lock().0.succeeded();
            let failed = if m.report_batch_item_failures {
                match failed_items(&out.payload, &batch) {
                    Ok(ids) => ids,
                    Err(why) => {
                        tracing::warn!(function = %m.function, request_id = %out.request_id, %why, "the whole batch counts as failed");
                        batch.iter().map(|r| r.message.id.clone()).collect()
                    }
                }
            } else {
                Vec::new()
            };
            for r in batch.iter().filter(|r| !failed.contains(&r.message.id)) {
                if let Err(e) = hub.store().delete_message(&m.queue, &r.receipt).await {
                    if !matches!(e, StoreError::Queue(QueueError::NonExistentQueue)) {
                        tracing::error!(queue = %m.queue, error = %e, "cannot delete a processed message");
                    }
                }
            }
        }
        Ok(out) => {
            tracing::info!(function = %m.function, request_id = %out.request_id, messages = batch.len(), "batch failed; its messages return after their visibility timeout");
        }
        Err(InvokeError::Throttled(_)) | Err(InvokeError::NotFound(_)) => {
            let receipts: Vec<String> = batch.iter().map(|r| r.receipt.clone()).collect();
            let _ = hub.store().unreceive(&m.queue, receipts, now_ms()).await;
            slot.0
                .lock()
                .0
                .throttled(slot.1, now_ms(), hub.settings().delay_scale);
        }
        // The messages come back after their visibility timeout, after the restart.
        Err(InvokeError::ShuttingDown) => {}
    }
    drop(slot);
}

/// The message ids a `ReportBatchItemFailures` answer names. An empty or null answer, or an
/// empty list, means all succeeded; an answer Lambda cannot read fails the whole batch.
fn failed_items(payload: &[u8], batch: &[Received]) -> Result<Vec<String>, String> {
    let doc: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(_) if payload.iter().all(u8::is_ascii_whitespace) => return Ok(Vec::new()),
        Err(e) => return Err(format!("the answer is not JSON: {e}")),
    };
    let list = match &doc {
        Value::Null => return Ok(Vec::new()),
        Value::Object(o) => match o.get("batchItemFailures") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(other) => return Err(format!("batchItemFailures is not a list: {other}")),
        },
        _ => return Ok(Vec::new()),
    };
    let mut ids = Vec::new();
    for item in list {
        match item["itemIdentifier"].as_str() {
            Some(id) if !id.is_empty() && batch.iter().any(|r| r.message.id == id) => {
                ids.push(id.to_owned())
            }
            _ => {
                return Err(format!(
                    "itemIdentifier {} is not a message id of the batch",
                    item["itemIdentifier"]
                ))
            }
        }
    }
    Ok(ids)
}
