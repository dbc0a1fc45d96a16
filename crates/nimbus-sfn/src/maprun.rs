//! Distributed Maps' Map Runs: each item (or batch) of a distributed `Map` is a child
//! workflow execution. Standard children are executions of their own (a row, a history, a
//! cursor: `ListExecutions` with `mapRunArn`, `DescribeExecution`, `GetExecutionHistory`, and a
//! restart resumes them through their parent's Map state); Express children run in memory and
//! are only counted. `DescribeMapRun`, `ListMapRuns` and `UpdateMapRun` answer from the
//! `map_runs` table and, while a run is open, from [`LiveMapRun`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::clock::now_ms;
use crate::engine::{BoxFuture, ChildEnd, MapRunSpec, MapRuns, Outcome, RunEnd};
use crate::error::StatesError;
use crate::ops::{lock, seconds};
use crate::state::{self, ExecutionRow, MachineRow, MapRunRow, RunClosing};
use crate::{asl, Inner, SfnError, StepFunctions};

/// Permits that stand for "no limit" (`MaxConcurrency: 0`): more children than any run has,
/// and few enough that lowering the limit can take back the difference at once.
const UNLIMITED: usize = 1 << 30;

fn permits_for(max_concurrency: u64) -> usize {
    match max_concurrency {
        0 => UNLIMITED,
        n => (n as usize).min(UNLIMITED),
    }
}

/// Children counted by how they stand, as `DescribeMapRun` says them.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    running: u64,
    succeeded: u64,
    failed: u64,
    timed_out: u64,
    aborted: u64,
}

impl Counts {
    fn add(&mut self, status: &str, n: u64) {
        match status {
            "RUNNING" => self.running += n,
            "SUCCEEDED" => self.succeeded += n,
            "FAILED" => self.failed += n,
            "TIMED_OUT" => self.timed_out += n,
            _ => self.aborted += n,
        }
    }

    fn to_json(self, total: u64) -> Value {
        let closed = self.succeeded + self.failed + self.timed_out + self.aborted;
        json!({
            "pending": total.saturating_sub(closed + self.running),
            "running": self.running,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "timedOut": self.timed_out,
            "aborted": self.aborted,
            "total": total,
            "resultsWritten": closed,
            "failuresNotRedrivable": 0,
            "pendingRedrive": 0,
        })
    }

    fn from_json(v: &Value) -> Counts {
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        Counts {
            running: 0,
            succeeded: n("succeeded"),
            failed: n("failed"),
            timed_out: n("timedOut"),
            aborted: n("aborted") + n("running"),
        }
    }
}

/// A Map Run while its Map state runs it.
pub(crate) struct LiveMapRun {
    row: Mutex<MapRunRow>,
    /// What each child runs, and the children's state machine (for their context and logs).
    machine: Arc<asl::Machine>,
    machine_row: MachineRow,
    role_arn: String,
    /// One permit per child running at once (`maxConcurrency`).
    permits: Arc<Semaphore>,
    /// Children running now, by ARN: a run that ends early aborts them.
    running: Mutex<HashSet<String>>,
    /// Express children, which have no rows to count: executions and items.
    express: Mutex<(Counts, Counts)>,
    total: AtomicU64,
    /// The Map state's span: the children's traces continue it.
    trace: Option<String>,
}

impl LiveMapRun {
    fn row(&self) -> MapRunRow {
        lock(&self.row).clone()
    }
}

/// The service side of [`MapRuns`]: Map Runs and their children kept in the database.
pub(crate) struct DbMapRuns {
    /// Weak: executions must not keep the service alive.
    pub inner: Weak<Inner>,
}

fn stopping() -> StatesError {
    StatesError::suspended("Step Functions is stopping")
}

fn store_error(e: impl std::fmt::Display) -> StatesError {
    StatesError::suspended(format!("the Map Run could not be kept: {e}"))
}

/// How a child execution's row says it ended.
fn end_of(row: &ExecutionRow) -> ChildEnd {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let result = match row.status.as_str() {
        "SUCCEEDED" => Ok(row
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or(Value::Null)),
        "TIMED_OUT" => Err(StatesError::new("States.Timeout", text(&row.cause))),
        "ABORTED" => Err(StatesError::new(
            "States.Aborted",
            format!("The child execution {} was aborted", row.arn),
        )),
        _ => Err(StatesError::new(text(&row.error), text(&row.cause))),
    };
    ChildEnd {
        result,
        arn: row.arn.clone(),
        started_ms: row.start_ms,
        stopped_ms: row.stop_ms.unwrap_or_else(now_ms),
    }
}

impl DbMapRuns {
    fn live(inner: &Inner, arn: &str) -> Option<Arc<LiveMapRun>> {
        lock(&inner.map_runs).get(arn).cloned()
    }

    /// A Standard child: started (its row and `ExecutionStarted` in one commit), or resumed,
    /// or read; run to its end.
    async fn standard_child(
        inner: Arc<Inner>,
        live: &LiveMapRun,
        map_run: &str,
        index: usize,
        items: usize,
        input: Value,
    ) -> Result<ChildEnd, StatesError> {
        let sfn = StepFunctions {
            inner: Arc::clone(&inner),
        };
        let (row, resume, input) =
            match state::map_child(&inner.db, map_run, index as u64).map_err(store_error)? {
                // Ended without success before its run was redriven: redriven with it, from
                // the state where it stopped. (One that failed after, in this redrive, stands.)
                Some(mut row)
                    if !matches!(row.status.as_str(), "RUNNING" | "SUCCEEDED")
                        && row.stop_ms.unwrap_or(0) < lock(&live.row).redrive_ms.unwrap_or(0) =>
                {
                    let event = crate::engine::Event {
                        id: 0,
                        previous: 0,
                        ts_ms: now_ms(),
                        kind: "ExecutionRedriven".into(),
                        details: None,
                    };
                    let Some(last) = state::redrive(&inner.db, row.id, event)
                        .await
                        .map_err(store_error)?
                    else {
                        return Ok(end_of(&row));
                    };
                    row.last_event = last;
                    row.redrive_count += 1;
                    let resume = crate::ops::redrive_resume(&row);
                    let input = serde_json::from_str(&row.input).unwrap_or(Value::Null);
                    (row, resume, input)
                }
                Some(row) if row.status != "RUNNING" => return Ok(end_of(&row)),
                Some(row) => {
                    let resume = crate::ops::resume_of(&sfn, &live.machine, &row)
                        .map_err(|e| store_error(e.to_string()))?;
                    let input = serde_json::from_str(&row.input).unwrap_or(Value::Null);
                    (row, resume, input)
                }
                None => {
                    let text = input.to_string();
                    let start_ms = now_ms();
                    let name = uuid::Uuid::new_v4().to_string();
                    let prefix = live
                        .machine_row
                        .arn
                        .replacen(":stateMachine:", ":execution:", 1);
                    let mut row = ExecutionRow {
                        id: 0,
                        arn: format!("{prefix}:{name}"),
                        machine_arn: live.machine_row.arn.clone(),
                        name,
                        status: "RUNNING".into(),
                        input: text.clone(),
                        output: None,
                        error: None,
                        cause: None,
                        start_ms,
                        stop_ms: None,
                        definition: live.machine_row.definition.clone(),
                        role_arn: live.role_arn.clone(),
                        cursor: None,
                        last_event: 1,
                        redrive_count: 0,
                        redrive_ms: None,
                        version_arn: None,
                        alias_arn: None,
                        map_run: Some(map_run.to_owned()),
                        map_index: Some(index as u64),
                        map_items: Some(items as u64),
                    };
                    let started = crate::ops::execution_started(&row);
                    row.id = state::start_execution(&inner.db, row.clone(), started)
                        .await
                        .map_err(store_error)?;
                    (row, None, input)
                }
            };
        if let (None, Some(t)) = (&resume, inner.telemetry.get()) {
            t.record_execution_started(&live.machine_row.name, "STANDARD");
        }
        lock(&live.running).insert(row.arn.clone());
        crate::ops::spawn_standard(
            &sfn,
            &row,
            Arc::clone(&live.machine),
            &live.machine_row,
            input,
            resume,
            live.trace.as_deref(),
        );
        let ended = wait_ended(&inner, &row.arn).await;
        lock(&live.running).remove(&row.arn);
        match ended.map_err(store_error)? {
            Some(row) => Ok(end_of(&row)),
            // Its task stopped without an end (its history could not be written): it goes
            // on after a restart, and so does this run.
            None => Err(StatesError::suspended(format!(
                "the child execution {} stopped before its end",
                row.arn
            ))),
        }
    }

    /// An Express child: in memory, at least once (a restart runs it again), only counted.
    async fn express_child(
        inner: Arc<Inner>,
        live: &LiveMapRun,
        items: u64,
        input: Value,
    ) -> ChildEnd {
        let sfn = StepFunctions { inner };
        let start_ms = now_ms();
        let name = uuid::Uuid::new_v4().to_string();
        let prefix = live
            .machine_row
            .arn
            .replacen(":stateMachine:", ":express:", 1);
        let arn = format!("{prefix}:{name}:{}", uuid::Uuid::new_v4());
        {
            let mut c = lock(&live.express);
            c.0.add("RUNNING", 1);
            c.1.add("RUNNING", items);
        }
        if let Some(t) = sfn.inner.telemetry.get() {
            t.record_execution_started(&live.machine_row.name, "EXPRESS");
        }
        let run = crate::ops::express_run(
            &sfn,
            &arn,
            &name,
            &input,
            &live.machine_row,
            start_ms,
            live.trace.as_deref(),
        );
        let outcome = run.execute(&live.machine, input, None).await;
        let (status, result) = match outcome {
            Outcome::Succeeded(v) => ("SUCCEEDED", Ok(v)),
            Outcome::Failed(e) => ("FAILED", Err(e)),
            Outcome::TimedOut => ("TIMED_OUT", Err(StatesError::new("States.Timeout", ""))),
            Outcome::Suspended(why) => ("ABORTED", Err(StatesError::new("States.Aborted", why))),
        };
        {
            let mut c = lock(&live.express);
            c.0.running = c.0.running.saturating_sub(1);
            c.0.add(status, 1);
            c.1.running = c.1.running.saturating_sub(items);
            c.1.add(status, items);
        }
        ChildEnd {
            result,
            arn,
            started_ms: start_ms,
            stopped_ms: now_ms(),
        }
    }
}

impl MapRuns for DbMapRuns {
    fn open<'a>(
        &'a self,
        spec: MapRunSpec,
    ) -> BoxFuture<'a, Result<Option<StatesError>, StatesError>> {
        Box::pin(async move {
            let inner = self.inner.upgrade().ok_or_else(stopping)?;
            if Self::live(&inner, &spec.arn).is_some() {
                return Ok(None);
            }
            let machine = asl::parse(&spec.definition).map_err(|d| {
                StatesError::runtime(format!(
                    "The ItemProcessor cannot run as a child execution: {}",
                    d.first().map(|d| d.message.as_str()).unwrap_or("")
                ))
            })?;
            let parent = state::execution(&inner.db, &spec.execution_arn).map_err(store_error)?;
            let role_arn = parent
                .as_ref()
                .map(|p| p.role_arn.clone())
                .unwrap_or_default();
            // A child's own runs take their settings from the root of the tree too.
            let parent_machine = parent.as_ref().and_then(|p| {
                lock(&inner.machines)
                    .get(crate::ops::root_machine(&p.machine_arn))
                    .map(|m| m.row.clone())
            });
            let now = now_ms();
            let row = state::open_map_run(
                &inner.db,
                MapRunRow {
                    arn: spec.arn.clone(),
                    execution_arn: spec.execution_arn.clone(),
                    machine_arn: spec.machine_arn.clone(),
                    label: spec.label.clone(),
                    definition: spec.definition.clone(),
                    express: spec.express,
                    status: "RUNNING".into(),
                    start_ms: now,
                    stop_ms: None,
                    max_concurrency: spec.max_concurrency as u64,
                    tolerated_percentage: spec.tolerated_percentage,
                    tolerated_count: spec.tolerated_count,
                    total: None,
                    items: None,
                    counts: None,
                    error: None,
                    cause: None,
                    redrive_count: 0,
                    redrive_ms: None,
                },
            )
            .await
            .map_err(store_error)?;
            // Ended before a restart, and its state did not say so: it fails with the run's
            // error (a run that succeeded goes on: its children answer their ends).
            if !matches!(row.status.as_str(), "RUNNING" | "SUCCEEDED") {
                return Ok(Some(run_error(&row)));
            }
            let machine_row = MachineRow {
                arn: spec.machine_arn.clone(),
                name: spec
                    .machine_arn
                    .rsplit(':')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                kind: if spec.express { "EXPRESS" } else { "STANDARD" }.into(),
                definition: spec.definition.clone(),
                role_arn: role_arn.clone(),
                created_ms: row.start_ms,
                updated_ms: None,
                revision: String::new(),
                from_template: false,
                // Children log and trace as their parent's state machine says.
                settings: parent_machine
                    .as_ref()
                    .map(|m| m.settings.clone())
                    .unwrap_or_else(|| json!({})),
                tags: json!({}),
            };
            let live = LiveMapRun {
                permits: Arc::new(Semaphore::new(permits_for(row.max_concurrency))),
                total: AtomicU64::new(row.total.unwrap_or(0)),
                row: Mutex::new(row),
                machine: Arc::new(machine),
                machine_row,
                role_arn,
                running: Mutex::new(HashSet::new()),
                express: Mutex::new(Default::default()),
                trace: spec.trace.clone(),
            };
            lock(&inner.map_runs).insert(spec.arn, Arc::new(live));
            Ok(None)
        })
    }

    fn set_total<'a>(
        &'a self,
        map_run: &'a str,
        total: usize,
        items: usize,
    ) -> BoxFuture<'a, Result<(), StatesError>> {
        Box::pin(async move {
            let inner = self.inner.upgrade().ok_or_else(stopping)?;
            if let Some(live) = Self::live(&inner, map_run) {
                live.total.store(total as u64, Ordering::SeqCst);
                let mut row = lock(&live.row);
                row.total = Some(total as u64);
                row.items = Some(items as u64);
            }
            state::set_map_run_total(&inner.db, map_run.to_owned(), total as u64, items as u64)
                .await
                .map_err(store_error)
        })
    }

    fn child<'a>(
        &'a self,
        map_run: &'a str,
        index: usize,
        items: usize,
        input: Value,
    ) -> BoxFuture<'a, ChildEnd> {
        Box::pin(async move {
            let failed = |e: StatesError| ChildEnd {
                result: Err(e),
                arn: String::new(),
                started_ms: now_ms(),
                stopped_ms: now_ms(),
            };
            let Some(inner) = self.inner.upgrade() else {
                return failed(stopping());
            };
            let Some(live) = Self::live(&inner, map_run) else {
                return failed(StatesError::runtime(format!("no open Map Run {map_run}")));
            };
            let Ok(_permit) = Arc::clone(&live.permits).acquire_owned().await else {
                return failed(stopping());
            };
            if live.machine_row.kind == "EXPRESS" {
                return Self::express_child(inner, &live, items as u64, input).await;
            }
            match Self::standard_child(inner, &live, map_run, index, items, input).await {
                Ok(end) => end,
                Err(e) => failed(e),
            }
        })
    }

    fn redrive<'a>(
        &'a self,
        map_run: &'a str,
    ) -> BoxFuture<'a, Result<Option<(String, u64)>, StatesError>> {
        Box::pin(async move {
            let inner = self.inner.upgrade().ok_or_else(stopping)?;
            state::redrive_map_run(&inner.db, map_run.to_owned(), now_ms())
                .await
                .map_err(store_error)
        })
    }

    fn tolerated(&self, map_run: &str) -> (Option<f64>, Option<u64>) {
        let live = self
            .inner
            .upgrade()
            .and_then(|inner| Self::live(&inner, map_run));
        match live {
            Some(l) => {
                let row = l.row();
                (row.tolerated_percentage, row.tolerated_count)
            }
            None => (None, None),
        }
    }

    fn close<'a>(
        &'a self,
        map_run: &'a str,
        end: RunEnd,
    ) -> BoxFuture<'a, Result<(), StatesError>> {
        Box::pin(async move {
            let inner = self.inner.upgrade().ok_or_else(stopping)?;
            close(&inner, map_run, end).await.map_err(store_error)
        })
    }
}

/// The error a Map Run that did not succeed ended with.
fn run_error(row: &MapRunRow) -> StatesError {
    match (&row.error, row.status.as_str()) {
        (Some(e), _) => StatesError::new(e.clone(), row.cause.clone().unwrap_or_default()),
        (None, "ABORTED") => StatesError::new("States.Aborted", "The Map Run was aborted"),
        (None, _) => StatesError::new(
            "States.ExceedToleratedFailureThreshold",
            "The specified tolerated failure threshold was exceeded",
        ),
    }
}

/// Waits until the child execution `arn` has ended and answers its row; `None` when its task
/// stopped without an end (its history could not be written: it goes on after a restart).
async fn wait_ended(inner: &Arc<Inner>, arn: &str) -> Result<Option<ExecutionRow>, SfnError> {
    // A StopExecution takes the task out of `running` before it commits the abort, and
    // answers the waiters after: a child found RUNNING without a task is waited for a while.
    for _ in 0..2 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&inner.waiters)
            .entry(arn.to_owned())
            .or_default()
            .push(tx);
        let has_task = lock(&inner.running).contains_key(arn);
        if let Some(row) = state::execution(&inner.db, arn)?.filter(|r| r.status != "RUNNING") {
            return Ok(Some(row));
        }
        if has_task {
            let _ = rx.await;
        } else {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), rx).await;
        }
    }
    Ok(state::execution(&inner.db, arn)?.filter(|r| r.status != "RUNNING"))
}

/// Takes an ended run out of memory: its children's tasks stopped, whoever waited for them
/// (their parent's `.sync`) answered.
fn forget_live(inner: &Arc<Inner>, map_run: &str) -> Option<Arc<LiveMapRun>> {
    let live = lock(&inner.map_runs).remove(map_run)?;
    let children: Vec<String> = lock(&live.running).drain().collect();
    for arn in children {
        if let Some(h) = lock(&inner.running).remove(&arn) {
            h.abort();
        }
        for waiter in lock(&inner.waiters).remove(&arn).unwrap_or_default() {
            let _ = waiter.send(());
        }
    }
    Some(live)
}

/// Ends a Map Run: its children still running stopped and aborted (their own runs with
/// them), its Express counts kept. A run that has ended stays as it ended.
async fn close(inner: &Arc<Inner>, map_run: &str, end: RunEnd) -> Result<(), SfnError> {
    let live = forget_live(inner, map_run);
    let counts = live
        .as_ref()
        .filter(|l| l.machine_row.kind == "EXPRESS")
        .map(|l| {
            let (e, i) = *lock(&l.express);
            let total = l.total.load(Ordering::SeqCst);
            let items = lock(&l.row).items.unwrap_or(total);
            json!({"executions": e.to_json(total), "items": i.to_json(items)})
        });
    let (status, error) = match end {
        RunEnd::Succeeded => ("SUCCEEDED", None),
        RunEnd::Failed(e) => ("FAILED", Some(e)),
        RunEnd::Aborted => ("ABORTED", None),
    };
    let closing = RunClosing {
        status,
        stop_ms: now_ms(),
        counts,
        error: error.as_ref().map(|e| e.error.clone()),
        cause: error.map(|e| e.cause),
    };
    for nested in state::close_map_run(&inner.db, map_run.to_owned(), closing).await? {
        forget_live(inner, &nested);
    }
    Ok(())
}

/// Map Runs still open when their execution has ended: ended as `ABORTED`, with their
/// children.
pub(crate) async fn close_runs_left_open(inner: &Arc<Inner>, execution_arn: &str) {
    let open: Vec<String> = lock(&inner.map_runs)
        .iter()
        .filter(|(_, live)| lock(&live.row).execution_arn == execution_arn)
        .map(|(arn, _)| arn.clone())
        .collect();
    for arn in open {
        if let Err(e) = close(inner, &arn, RunEnd::Aborted).await {
            tracing::error!(map_run = %arn, "the Map Run could not be ended: {e}");
        }
    }
}

/// Map Runs of an execution that is being stopped: ended as `ABORTED`, with their children.
pub(crate) async fn abort_runs_of(inner: &Arc<Inner>, execution_arn: &str) -> Result<(), SfnError> {
    let (runs, _) = state::map_runs_of(&inner.db, execution_arn, 0, 10_000)?;
    for run in runs.into_iter().filter(|r| r.status == "RUNNING") {
        close(inner, &run.arn, RunEnd::Aborted).await?;
    }
    Ok(())
}

fn map_run_arn(input: &Value) -> Result<&str, SfnError> {
    let arn = input["mapRunArn"].as_str().ok_or_else(|| {
        SfnError::new(
            "ValidationException",
            "1 validation error detected: Value null at 'mapRunArn' failed to satisfy constraint: Member must not be null",
        )
    })?;
    if arn.split(':').nth(5) != Some("mapRun") || !arn.starts_with("arn:") {
        return Err(SfnError::new("InvalidArn", format!("Invalid Arn: '{arn}'")));
    }
    Ok(arn)
}

fn map_run_row(sfn: &StepFunctions, arn: &str) -> Result<MapRunRow, SfnError> {
    state::map_run(&sfn.inner.db, arn)?
        .ok_or_else(|| SfnError::new("ResourceNotFound", format!("Resource not found: '{arn}'")))
}

pub(crate) fn describe_map_run(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = map_run_arn(input)?;
    let row = map_run_row(sfn, arn)?;
    let live = lock(&sfn.inner.map_runs).get(arn).cloned();
    let row = live.as_ref().map(|l| l.row()).unwrap_or(row);
    let total = row.total.unwrap_or(0);
    let items = row.items.unwrap_or(total);
    let (executions, item_counts) = if row.express {
        let (e, i) = match (&live, &row.counts) {
            (Some(l), _) => *lock(&l.express),
            (None, Some(c)) => (
                Counts::from_json(&c["executions"]),
                Counts::from_json(&c["items"]),
            ),
            (None, None) => Default::default(),
        };
        (e.to_json(total), i.to_json(items))
    } else {
        let (mut e, mut i) = (Counts::default(), Counts::default());
        for (status, n, items) in state::map_child_counts(&sfn.inner.db, arn)? {
            e.add(&status, n);
            i.add(&status, items);
        }
        (e.to_json(total), i.to_json(items))
    };
    let mut out = json!({
        "mapRunArn": row.arn,
        "executionArn": row.execution_arn,
        "status": row.status,
        "startDate": seconds(row.start_ms),
        "maxConcurrency": row.max_concurrency,
        "toleratedFailurePercentage": row.tolerated_percentage.unwrap_or(0.0),
        "toleratedFailureCount": row.tolerated_count.unwrap_or(0),
        "itemCounts": item_counts,
        "executionCounts": executions,
        "redriveCount": row.redrive_count,
    });
    if let Some(stop) = row.stop_ms {
        out["stopDate"] = seconds(stop);
    }
    if let Some(ms) = row.redrive_ms {
        out["redriveDate"] = seconds(ms);
    }
    Ok(out)
}

pub(crate) fn list_map_runs(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let execution = input["executionArn"].as_str().ok_or_else(|| {
        SfnError::new(
            "ValidationException",
            "1 validation error detected: Value null at 'executionArn' failed to satisfy constraint: Member must not be null",
        )
    })?;
    if state::execution(&sfn.inner.db, execution)?.is_none() {
        return Err(SfnError::new(
            "ExecutionDoesNotExist",
            format!("Execution Does Not Exist: '{execution}'"),
        ));
    }
    let (offset, limit) = crate::ops::page(input, 1000, 100)?;
    let (rows, more) = state::map_runs_of(&sfn.inner.db, execution, offset, limit)?;
    let runs: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = json!({"executionArn": r.execution_arn, "mapRunArn": r.arn,
                               "stateMachineArn": r.machine_arn, "startDate": seconds(r.start_ms)});
            if let Some(stop) = r.stop_ms {
                v["stopDate"] = seconds(stop);
            }
            v
        })
        .collect();
    let mut out = json!({ "mapRuns": runs });
    if more {
        out["nextToken"] = json!(crate::ops::token(offset + limit));
    }
    Ok(out)
}

/// `UpdateMapRun`: a running Map Run's concurrency and tolerated failures, applied at once
/// (a lower concurrency as running children end).
pub(crate) async fn update_map_run(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = map_run_arn(input)?;
    let invalid = |field: &str, rule: &str, v: &Value| {
        SfnError::new(
            "ValidationException",
            format!("1 validation error detected: Value '{v}' at '{field}' failed to satisfy constraint: {rule}"),
        )
    };
    let max = match &input["maxConcurrency"] {
        Value::Null => None,
        v => Some(v.as_u64().ok_or_else(|| {
            invalid(
                "maxConcurrency",
                "Member must have value greater than or equal to 0",
                v,
            )
        })?),
    };
    let pct = match &input["toleratedFailurePercentage"] {
        Value::Null => None,
        v => Some(
            v.as_f64()
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| {
                    invalid(
                        "toleratedFailurePercentage",
                        "Member must have value between 0 and 100",
                        v,
                    )
                })?,
        ),
    };
    let count = match &input["toleratedFailureCount"] {
        Value::Null => None,
        v => Some(v.as_u64().ok_or_else(|| {
            invalid(
                "toleratedFailureCount",
                "Member must have value greater than or equal to 0",
                v,
            )
        })?),
    };
    if max.is_none() && pct.is_none() && count.is_none() {
        return Err(SfnError::new(
            "ValidationException",
            "At least one of maxConcurrency, toleratedFailurePercentage and toleratedFailureCount must be given",
        ));
    }
    let row = map_run_row(sfn, arn)?;
    if row.status != "RUNNING" {
        return Err(SfnError::new(
            "ValidationException",
            format!(
                "Map Run '{arn}' is {} and can no longer be updated",
                row.status
            ),
        ));
    }
    state::update_map_run(&sfn.inner.db, arn.to_owned(), max, pct, count).await?;
    if let Some(live) = lock(&sfn.inner.map_runs).get(arn).cloned() {
        let mut row = lock(&live.row);
        if let Some(new) = max {
            let (before, after) = (permits_for(row.max_concurrency), permits_for(new));
            if after > before {
                live.permits.add_permits(after - before);
            } else if before > after {
                // Taken back as running children hand theirs in.
                let permits = Arc::clone(&live.permits);
                let n = (before - after) as u32;
                tokio::spawn(async move {
                    if let Ok(p) = permits.acquire_many_owned(n).await {
                        p.forget();
                    }
                });
            }
            row.max_concurrency = new;
        }
        if pct.is_some() {
            row.tolerated_percentage = pct;
        }
        if count.is_some() {
            row.tolerated_count = count;
        }
    }
    Ok(json!({}))
}

/// Open Map Runs by ARN (kept in [`Inner`]).
pub(crate) type LiveRuns = Mutex<HashMap<String, Arc<LiveMapRun>>>;
