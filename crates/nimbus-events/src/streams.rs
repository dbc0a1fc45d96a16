//! DynamoDB stream event source mappings: Lambda's poller for one table's stream and one
//! function.
//!
//! The poller reads the stream in order from its checkpoint, gathers a batch (up to `BatchSize`,
//! waiting up to `MaximumBatchingWindowInSeconds` for more), skips the records no filter
//! matches, and invokes the function synchronously with the rest. Only success moves the
//! checkpoint on, so a function error retries the same records, in order, blocking the stream
//! as Lambda blocks a shard: halving the batch with `BisectBatchOnFunctionError`, until
//! `MaximumRetryAttempts` or `MaximumRecordAgeInSeconds` gives up on it, when a description of
//! the batch goes to the `OnFailure` destination and the poller moves past it. With
//! `ReportBatchItemFailures` the checkpoint moves to just before the first failed record.
//! The checkpoint is kept in DynamoDB's database, so a restart resumes where the last run
//! stopped and a record is handed to the function again only if its batch had not succeeded.
//!
//! `ParallelizationFactor` N runs N pollers over the stream, each taking the records whose key
//! hashes to it and keeping its own checkpoint: up to N batches at once, each key's records in
//! order, a failing batch blocking only its own lane. `TumblingWindowInSeconds` groups records
//! into windows by their creation time: each invocation gets the window, the `state` the last
//! one returned, and when the window is over (a record of a later window arrives, or its end
//! passes) a final invocation with `isFinalInvokeForWindow`; a state over 1 MB ends the window
//! early. The state lives in the poller: a restart mid-window starts that window's state afresh.

use std::time::Duration;

use bytes::Bytes;
use nimbus_dynamodb::DynamoDb;
use nimbus_lambda::{InvokeError, InvokeRequest};
use serde_json::{json, Value};

use crate::config::StreamMappingSpec;
use crate::{now_ms, Hub};

/// A stream with nothing new is read again after this (or as soon as a record is written).
const IDLE_WAIT: Duration = Duration::from_secs(5);

/// The longest pause between two attempts at a failing batch.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Lambda's synchronous invocation payload limit: a batch stops growing before it.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// A tumbling window's state limit: past it, Lambda ends the window early.
const MAX_WINDOW_STATE: usize = 1024 * 1024;

type Record = (u64, Value);

/// Runs a blocking call on DynamoDB's state off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, nimbus_dynamodb::DdbError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

fn seq_of(r: &Value) -> Option<u64> {
    r["dynamodb"]["SequenceNumber"].as_str()?.parse().ok()
}

fn created_ms(r: &Value) -> u64 {
    r["dynamodb"]["ApproximateCreationDateTime"]
        .as_f64()
        .map_or(now_ms(), |s| (s * 1000.0) as u64)
}

/// Where lane `lane` of a mapping keeps its checkpoint: lane 0 where the mapping always has.
fn lane_id(m: &StreamMappingSpec, lane: u32) -> String {
    match lane {
        0 => m.id.clone(),
        n => format!("{}#lane{n}", m.id),
    }
}

/// The lane a record belongs to: its key hashed (FNV-1a, stable across runs and builds, which
/// the standard library's hasher does not promise), so one key's records stay in one lane.
fn lane_of(record: &Value, lanes: u32) -> u32 {
    if lanes <= 1 {
        return 0;
    }
    let key = record["dynamodb"]["Keys"].to_string();
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % lanes
}

/// Each lane's first position, fixed (and saved) before any lane runs.
pub(crate) fn start_positions(
    ddb: &DynamoDb,
    m: &StreamMappingSpec,
) -> Result<Vec<u64>, nimbus_dynamodb::DdbError> {
    let latest = ddb.stream_latest(&m.table)?;
    let lanes = m.parallelization.max(1);
    // Keys move between lanes when the factor changes: every lane then starts where the
    // slowest old lane was, so no key's record is skipped (some are handed over again).
    let factor_id = format!("{}#factor", m.id);
    let old = ddb.checkpoint(&factor_id)?.unwrap_or(1).max(1) as u32;
    let mut slowest = None;
    for lane in 0..old {
        if let Some(seq) = ddb.checkpoint(&lane_id(m, lane))? {
            slowest = Some(slowest.map_or(seq, |s: u64| s.min(seq)));
        }
    }
    let mut starts = Vec::new();
    for lane in 0..lanes {
        let id = lane_id(m, lane);
        let own = match old == lanes {
            true => ddb.checkpoint(&id)?,
            false => slowest,
        };
        let at = match own.or(slowest) {
            // Past the stream's end: its records were trimmed away with the table; read what
            // is kept from the start, as Lambda does after a trim.
            Some(seq) if seq > latest => 0,
            Some(seq) => seq,
            None if m.from_start => 0,
            None => latest,
        };
        ddb.set_checkpoint(&id, at)?;
        starts.push(at);
    }
    ddb.set_checkpoint(&factor_id, u64::from(lanes))?;
    Ok(starts)
}

/// A tumbling window in progress: its start, the state the function last returned, and the
/// stream's ARN (for the final invocation, which carries no records).
struct Window {
    start_ms: u64,
    state: Value,
    source_arn: String,
}

/// The window a record belongs to.
fn window_of(r: &Value, width_ms: u64) -> u64 {
    created_ms(r) / width_ms * width_ms
}

/// `2020-12-09T07:04:00Z`, as Lambda writes a window's bounds.
fn window_time(ms: u64) -> String {
    let t = nimbus_core::report::timestamp_millis(ms);
    match t.split_once('.') {
        Some((whole, _)) => format!("{whole}Z"),
        None => t,
    }
}

/// The event of a windowed invocation.
fn window_event(
    records: &[&Value],
    w: &Window,
    width_ms: u64,
    shard: &str,
    is_final: bool,
    early: bool,
) -> Value {
    json!({
        "Records": records,
        "window": {"start": window_time(w.start_ms), "end": window_time(w.start_ms + width_ms)},
        "state": w.state,
        "shardId": shard,
        "eventSourceARN": w.source_arn,
        "isFinalInvokeForWindow": is_final,
        "isWindowTerminatedEarly": early,
    })
}

/// The final invocation of a window, retried until it succeeds (Lambda holds the stream
/// until it does); false when nimbus is stopping.
async fn final_invoke(
    hub: &Hub,
    m: &StreamMappingSpec,
    w: &Window,
    shard: &str,
    early: bool,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let event = window_event(&[], w, m.tumbling_window_ms, shard, true, early);
    let mut attempts = 0u32;
    loop {
        let req = InvokeRequest {
            payload: Bytes::from(event.to_string()),
            ..InvokeRequest::default()
        };
        match hub.platform().invoke(&m.function, req).await {
            Ok(out) if out.function_error.is_none() => return true,
            Err(InvokeError::ShuttingDown) => return false,
            _ => attempts += 1,
        }
        tracing::info!(function = %m.function, table = %m.table, attempts, "a tumbling window's final invocation failed; retrying it");
        let backoff = Duration::from_millis(500 << attempts.min(5)).min(MAX_BACKOFF);
        tokio::select! {
            _ = tokio::time::sleep(backoff.mul_f64(hub.settings().delay_scale.max(0.0))) => {}
            _ = stop.changed() => return false,
        }
    }
}

pub(crate) async fn poller(hub: Hub, ddb: DynamoDb, m: StreamMappingSpec, lane: u32, start: u64) {
    let mut stop = hub.stopping();
    let lanes = m.parallelization.max(1);
    let id = lane_id(&m, lane);
    let mut after = start;
    let shard = {
        let (db, table) = (ddb.clone(), m.table.clone());
        blocking(move || db.shard_id(&table))
            .await
            .unwrap_or_default()
    };
    let mut window: Option<Window> = None;
    // A failing range (up to this sequence number) is retried on its own, halved with
    // BisectBatchOnFunctionError, until it succeeds or is given up on; new records wait.
    let mut pinned: Option<u64> = None;
    let mut limit = m.batch_size as usize;
    let mut attempts = 0u32;
    loop {
        // An open window ends with its time, even when no record of a later one arrives.
        let window_end = window.as_ref().map(|w| w.start_ms + m.tumbling_window_ms);
        let Some(Gathered {
            mut batch,
            scanned,
            caught_up,
        }) = gather(
            &ddb,
            &m,
            after,
            limit,
            pinned,
            (lane, lanes),
            window_end,
            &mut stop,
        )
        .await
        else {
            return;
        };
        if m.tumbling_window_ms > 0 {
            // The records of one window at a time: a record of a later window ends this one.
            let next = batch
                .first()
                .map(|(_, r)| window_of(r, m.tumbling_window_ms));
            let ended = match (&window, next) {
                (Some(w), Some(start)) => start != w.start_ms,
                // On time only once this lane has read everything: a backlog may still hold
                // records of the window.
                (Some(_), None) => caught_up && window_end.is_some_and(|end| now_ms() >= end),
                (None, _) => false,
            };
            if let Some(w) = window.take_if(|_| ended) {
                if !final_invoke(&hub, &m, &w, &shard, false, &mut stop).await {
                    return;
                }
            }
            if let Some(start) = next {
                let keep = batch
                    .iter()
                    .take_while(|(_, r)| window_of(r, m.tumbling_window_ms) == start)
                    .count();
                batch.truncate(keep);
            }
        }
        if batch.is_empty() {
            // Only other lanes' records (or nothing): this lane has read past them, within a
            // failing range too (the range's records of this lane were handled).
            if scanned > after {
                after = scanned;
                save(&ddb, &id, &m, after).await;
                leave_range(&mut pinned, &mut limit, after, &m);
            }
            continue;
        }
        if let Some(max_age) = m.max_record_age_s {
            let cutoff = now_ms().saturating_sub(max_age * 1000);
            let old = batch
                .iter()
                .take_while(|(_, r)| created_ms(r) < cutoff)
                .count();
            if old > 0 {
                let expired: Vec<Record> = batch.drain(..old).collect();
                give_up(&hub, &ddb, &m, &expired, attempts, true).await;
                after = expired.last().map_or(after, |(s, _)| *s);
                save(&ddb, &id, &m, after).await;
                attempts = 0;
                leave_range(&mut pinned, &mut limit, after, &m);
                if batch.is_empty() {
                    continue;
                }
            }
        }
        // With a window, the batch ends at its last record; without, the read went past the
        // other lanes' records too.
        let last_seq = match m.tumbling_window_ms {
            0 => batch.last().map_or(after, |(s, _)| *s).max(scanned),
            _ => batch.last().map_or(after, |(s, _)| *s),
        };
        let records: Vec<&Value> = batch
            .iter()
            .map(|(_, r)| r)
            .filter(|r| m.filters.is_empty() || m.filters.iter().any(|f| f.matches(r)))
            .collect();
        if m.tumbling_window_ms > 0 && window.is_none() {
            if let Some((_, first)) = batch.first() {
                window = Some(Window {
                    start_ms: window_of(first, m.tumbling_window_ms),
                    state: json!({}),
                    source_arn: first["eventSourceARN"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                });
            }
        }
        let failed_from = if records.is_empty() {
            None
        } else {
            let payload = match &window {
                Some(w) => window_event(&records, w, m.tumbling_window_ms, &shard, false, false),
                None => json!({ "Records": records }),
            };
            let req = InvokeRequest {
                payload: Bytes::from(payload.to_string()),
                ..InvokeRequest::default()
            };
            match hub.platform().invoke(&m.function, req).await {
                Ok(out) if out.function_error.is_none() => match window.as_mut() {
                    // A windowed answer must carry the state; without it the call failed.
                    Some(w) => match serde_json::from_slice::<Value>(&out.payload)
                        .ok()
                        .filter(|doc| doc["state"].is_object())
                    {
                        Some(doc) => {
                            w.state = doc["state"].clone();
                            if m.report_batch_item_failures {
                                first_failed(&out.payload, &records)
                            } else {
                                None
                            }
                        }
                        None => {
                            tracing::warn!(function = %m.function, "a tumbling window's invocation answered no state object: the batch failed");
                            Some(after)
                        }
                    },
                    None if m.report_batch_item_failures => first_failed(&out.payload, &records),
                    None => None,
                },
                Ok(_) => Some(after),
                Err(InvokeError::Throttled(_)) | Err(InvokeError::NotFound(_)) => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = stop.changed() => return,
                    }
                }
                Err(InvokeError::ShuttingDown) => return,
            }
        };
        let Some(failed_after) = failed_from else {
            after = last_seq;
            save(&ddb, &id, &m, after).await;
            // A state past 1 MB ends the window early: its final invocation now, then the same
            // window goes on with a fresh state.
            let too_big = window
                .as_ref()
                .is_some_and(|w| w.state.to_string().len() > MAX_WINDOW_STATE);
            if too_big {
                let Some(w) = window.as_mut() else { continue };
                if !final_invoke(&hub, &m, w, &shard, true, &mut stop).await {
                    return;
                }
                w.state = json!({});
            }
            // Retries are counted per batch: a part that succeeded leaves none behind.
            attempts = 0;
            leave_range(&mut pinned, &mut limit, after, &m);
            continue;
        };
        // Records before the first reported failure are done, and the rest is a new batch.
        if failed_after > after {
            after = failed_after;
            save(&ddb, &id, &m, after).await;
            attempts = 0;
        }
        pinned = Some(pinned.unwrap_or(last_seq).max(last_seq));
        let failing = batch.iter().filter(|(s, _)| *s > after).count();
        if m.bisect && failing > 1 {
            // Splitting is not a retry: Lambda does not count it against MaximumRetryAttempts.
            limit = failing / 2;
        } else {
            attempts += 1;
        }
        if m.max_retries.is_some_and(|max| attempts > max) {
            let failed: Vec<Record> = batch.into_iter().filter(|(s, _)| *s > after).collect();
            give_up(&hub, &ddb, &m, &failed, attempts, false).await;
            after = last_seq;
            save(&ddb, &id, &m, after).await;
            leave_range(&mut pinned, &mut limit, after, &m);
            attempts = 0;
            continue;
        }
        let scale = hub.settings().delay_scale.max(0.0);
        let backoff = Duration::from_millis(500 << attempts.min(5)).min(MAX_BACKOFF);
        tracing::info!(function = %m.function, table = %m.table, attempts, records = failing, "stream batch failed; retrying it");
        tokio::select! {
            _ = tokio::time::sleep(backoff.mul_f64(scale)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// A failing range is behind once the checkpoint passes its end: new records flow again, in
/// full batches (the range is the only time a batch is cut smaller).
fn leave_range(pinned: &mut Option<u64>, limit: &mut usize, after: u64, m: &StreamMappingSpec) {
    if pinned.is_some_and(|end| after >= end) {
        *pinned = None;
        *limit = m.batch_size as usize;
    }
}

async fn save(ddb: &DynamoDb, id: &str, m: &StreamMappingSpec, after: u64) {
    let (db, id) = (ddb.clone(), id.to_owned());
    if let Err(e) = blocking(move || db.set_checkpoint(&id, after)).await {
        tracing::error!(table = %m.table, function = %m.function, error = %e, "cannot keep the stream mapping's checkpoint");
    }
}

/// What one read of the stream found for a lane.
struct Gathered {
    batch: Vec<Record>,
    /// The last sequence number read, other lanes' records included.
    scanned: u64,
    /// The read reached the stream's end (or the pinned range's): nothing of this lane waits.
    caught_up: bool,
}

/// Records a lane reads past at most, per read, looking for its own: reads stay short when
/// other lanes' records fill the stream.
const MAX_SCAN: usize = 10_000;

/// The next batch of this lane's records after `after` (within the pinned failing range, if
/// any), at most `limit` of them and 6 MB, read page by page past other lanes' records; an
/// empty batch when `until` (a tumbling window's end) comes first, or when only other lanes'
/// records were read; `None` when stopping.
#[allow(clippy::too_many_arguments)]
async fn gather(
    ddb: &DynamoDb,
    m: &StreamMappingSpec,
    after: u64,
    limit: usize,
    pinned: Option<u64>,
    (lane, lanes): (u32, u32),
    until: Option<u64>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<Gathered> {
    let mut window_end: Option<tokio::time::Instant> = None;
    let mut pinned = pinned;
    loop {
        if *stop.borrow() {
            return None;
        }
        let notified = ddb.records.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (db, table) = (ddb.clone(), m.table.clone());
        let read = blocking(move || {
            let mut out = Vec::new();
            let (mut size, mut read, mut scanned) = (0, 0, after);
            let (mut full, mut caught_up) = (false, false);
            'pages: while read < MAX_SCAN {
                let raw = db.stream_records(&table, scanned, limit)?;
                if raw.len() < limit {
                    caught_up = true;
                }
                if raw.is_empty() {
                    break;
                }
                for (seq, text) in raw {
                    if pinned.is_some_and(|end| seq > end) {
                        caught_up = true;
                        break 'pages;
                    }
                    read += 1;
                    let record = nimbus_dynamodb::state::parse_record(&text)?;
                    if lane_of(&record, lanes) != lane {
                        scanned = seq;
                        continue;
                    }
                    size += text.len() + 1; // and its comma in {"Records":[...]}
                    if size > MAX_PAYLOAD && !out.is_empty() {
                        full = true;
                        break 'pages;
                    }
                    scanned = seq;
                    out.push((seq, record));
                    if out.len() >= limit {
                        full = true;
                        break 'pages;
                    }
                }
                if caught_up {
                    break;
                }
            }
            Ok((out, scanned, full, caught_up))
        })
        .await;
        let (batch, scanned, full, caught_up) = match read {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(table = %m.table, function = %m.function, error = %e, "the stream mapping cannot read its stream; trying again in 5 s");
                (Vec::new(), after, false, false)
            }
        };
        // Only other lanes' records: the caller moves this lane's checkpoint past them.
        if batch.is_empty() && scanned > after {
            return Some(Gathered {
                batch,
                scanned,
                caught_up,
            });
        }
        if pinned.is_some() && batch.is_empty() {
            // The failing range's records are gone (trimmed with their table): move on.
            pinned = None;
            continue;
        }
        // A pinned (failing) range is already all there: no window to wait for.
        let full = full || pinned.is_some();
        let done = |batch| Gathered {
            batch,
            scanned,
            caught_up,
        };
        if !batch.is_empty() && (full || m.window_ms == 0) {
            return Some(done(batch));
        }
        if batch.is_empty() && until.is_some_and(|end| now_ms() >= end) {
            return Some(done(batch));
        }
        if !batch.is_empty() && window_end.is_none() {
            window_end = Some(tokio::time::Instant::now() + Duration::from_millis(m.window_ms));
        }
        let mut wait = IDLE_WAIT;
        if let Some(end) = window_end {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Some(done(batch));
            }
            wait = wait.min(left);
        }
        if let (true, Some(end)) = (batch.is_empty(), until) {
            wait = wait.min(Duration::from_millis(end.saturating_sub(now_ms()).max(1)));
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return None,
        }
    }
}

/// With `ReportBatchItemFailures`: the sequence number just before the first failed record the
/// answer names, or `None` when all succeeded. An answer Lambda cannot read fails the batch.
fn first_failed(payload: &[u8], records: &[&Value]) -> Option<u64> {
    let whole = records
        .first()
        .and_then(|r| seq_of(r))
        .map(|s| s.saturating_sub(1));
    let doc: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(_) if payload.iter().all(u8::is_ascii_whitespace) => return None,
        Err(_) => return whole,
    };
    let list = match &doc["batchItemFailures"] {
        Value::Null => return None,
        Value::Array(a) if a.is_empty() => return None,
        Value::Array(a) => a,
        _ => return whole,
    };
    let mut first: Option<u64> = None;
    for item in list {
        let Some(seq) = item["itemIdentifier"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
        else {
            return whole;
        };
        if !records.iter().any(|r| seq_of(r) == Some(seq)) {
            return whole;
        }
        first = Some(first.map_or(seq, |f| f.min(seq)));
    }
    first.map(|s| s.saturating_sub(1))
}

/// Gives up on records: their description (not the records) goes to the `OnFailure`
/// destination, in the shape Lambda sends for stream sources.
async fn give_up(
    hub: &Hub,
    ddb: &DynamoDb,
    m: &StreamMappingSpec,
    failed: &[Record],
    attempts: u32,
    too_old: bool,
) {
    let s = hub.settings();
    tracing::warn!(function = %m.function, table = %m.table, records = failed.len(), attempts, too_old, "stream records given up on");
    let Some(dest) = &m.on_failure else { return };
    let (Some(first), Some(last)) = (failed.first(), failed.last()) else {
        return;
    };
    let time = |r: &Value| nimbus_core::report::timestamp_millis(created_ms(r));
    let stream_arn = first.1["eventSourceARN"].as_str().unwrap_or_default();
    let (db, table) = (ddb.clone(), m.table.clone());
    let shard = blocking(move || db.shard_id(&table))
        .await
        .unwrap_or_default();
    let info = json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": nimbus_core::arn::function_arn(&s.region, &s.account, &m.function),
            "condition": if too_old { "RecordAgeExceeded" } else { "RetryAttemptsExhausted" },
            "approximateInvokeCount": attempts,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": nimbus_core::report::timestamp_millis(now_ms()),
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": first.1["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": last.1["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": time(&first.1),
            "approximateArrivalOfLastRecord": time(&last.1),
            "batchSize": failed.len(),
            "streamArn": stream_arn,
        },
    });
    let as_event = (
        "aws.lambda",
        "Lambda Function Invocation Result - Failure",
        stream_arn,
    );
    if let Err(e) = hub.deliver(dest, &info.to_string(), None, as_event) {
        tracing::error!(function = %m.function, error = %e, "cannot send the failed stream batch to its OnFailure destination");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_failures_move_the_checkpoint_to_just_before_the_first() {
        let rec = |seq: u64| json!({"dynamodb": {"SequenceNumber": format!("{seq:021}")}});
        let owned = [rec(5), rec(6), rec(7)];
        let records: Vec<&Value> = owned.iter().collect();
        let cases: &[(&str, Option<u64>)] = &[
            ("", None),
            ("null", None),
            (r#"{"batchItemFailures": []}"#, None),
            (
                r#"{"batchItemFailures": [{"itemIdentifier": "000000000000000000007"}, {"itemIdentifier": "000000000000000000006"}]}"#,
                Some(5),
            ),
            (
                r#"{"batchItemFailures": [{"itemIdentifier": "99"}]}"#,
                Some(4),
            ),
            (r#"{"batchItemFailures": "x"}"#, Some(4)),
            ("not json", Some(4)),
        ];
        for (payload, want) in cases {
            assert_eq!(
                first_failed(payload.as_bytes(), &records),
                *want,
                "{payload}"
            );
        }
    }
}

#[cfg(test)]
mod lane_tests {
    use super::*;

    fn mapping(parallelization: u32) -> StreamMappingSpec {
        StreamMappingSpec {
            id: "m".into(),
            function: "f".into(),
            table: "cars".into(),
            from_start: true,
            batch_size: 10,
            window_ms: 0,
            max_retries: None,
            max_record_age_s: None,
            bisect: false,
            report_batch_item_failures: false,
            on_failure: None,
            filters: Vec::new(),
            enabled: true,
            parallelization,
            tumbling_window_ms: 0,
        }
    }

    fn table_with_records(n: u64) -> DynamoDb {
        let config = nimbus_dynamodb::DdbConfig {
            region: "us-east-1".into(),
            account: "123456789012".into(),
        };
        let db = DynamoDb::open(None, &config).unwrap();
        db.dispatch(
            "CreateTable",
            &json!({"TableName": "cars", "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                    "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "KEYS_ONLY"}}),
        )
        .unwrap();
        for i in 0..n {
            db.dispatch(
                "PutItem",
                &json!({"TableName": "cars", "Item": {"id": {"S": format!("k{i}")}}}),
            )
            .unwrap();
        }
        db
    }

    #[test]
    fn a_changed_factor_starts_every_lane_where_the_slowest_old_lane_was() {
        let db = table_with_records(6);
        let latest = db.stream_latest("cars").unwrap();
        assert!(latest >= 6);
        // First run with two lanes: both from the start.
        assert_eq!(start_positions(&db, &mapping(2)).unwrap(), vec![0, 0]);
        db.set_checkpoint("m", latest).unwrap();
        db.set_checkpoint("m#lane1", 2).unwrap();
        // The same factor again: each lane resumes from its own checkpoint.
        assert_eq!(start_positions(&db, &mapping(2)).unwrap(), vec![latest, 2]);
        // Raised to four: keys move between lanes, so every lane starts at the slowest, 2.
        assert_eq!(start_positions(&db, &mapping(4)).unwrap(), vec![2, 2, 2, 2]);
        // Lowered to one: the same rule.
        db.set_checkpoint("m#lane3", 1).unwrap();
        assert_eq!(start_positions(&db, &mapping(1)).unwrap(), vec![1]);
    }

    #[test]
    fn one_keys_records_always_fall_in_one_lane() {
        let rec = |k: &str| json!({"dynamodb": {"Keys": {"id": {"S": k}}}});
        for lanes in [1, 2, 4, 10] {
            let mut used = std::collections::BTreeSet::new();
            for i in 0..100 {
                let k = format!("key{i}");
                let lane = lane_of(&rec(&k), lanes);
                assert!(lane < lanes);
                assert_eq!(lane, lane_of(&rec(&k), lanes), "{k} moved");
                used.insert(lane);
            }
            // A hundred keys reach every lane.
            assert_eq!(used.len() as u32, lanes);
        }
    }
}
