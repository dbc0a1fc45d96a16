//! The interpreter: runs a [`Machine`] state by state, recording each step in the execution's
//! history through a [`Journal`], calling functions and services through [`Integrations`].
//!
//! A Standard execution's journal makes every event durable before the execution moves on, and
//! keeps a [`Cursor`] (the top-level state being run, its input, its retry counts, when its
//! wait ends): after a restart the execution continues from the cursor without repeating a
//! history event. A task that had been started when nimbus stopped is not started again
//! (Standard workflows start a task at most once): it fails with `States.TaskFailed`, which its
//! `Retry` and `Catch` may handle.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::asl::{Kind, Lang, Machine, Retrier, Seconds, Sel, State, Text, WaitFor};
use crate::clock::{format_ms, now_ms, parse_timestamp};
use crate::error::StatesError;
use crate::path::{Path, Roots};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The largest input or output a state may have: 256 KiB.
pub const PAYLOAD_LIMIT: usize = 262_144;

/// A function's answer to a task.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub payload: Vec<u8>,
    /// `Unhandled` or `Handled` when the function failed.
    pub function_error: Option<String>,
    pub executed_version: String,
    pub request_id: String,
}

/// What tasks reach: the functions and services nimbus runs. The binary implements it; this
/// crate depends on no other service.
pub trait Integrations: Send + Sync + 'static {
    /// Invokes a function (a name, a name with `:qualifier`, or an ARN) and waits for it.
    /// `Err` when the platform refused (no such function, throttled): Lambda's own errors.
    /// `trace` is the X-Ray header of the task's span, for the invocation to continue.
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Vec<u8>,
        trace: Option<String>,
    ) -> BoxFuture<'a, Result<Invoked, StatesError>>;

    /// Calls an AWS API nimbus serves: `service` as Step Functions names it (`sqs`, `sns`,
    /// `dynamodb`, `eventbridge`), `action` in PascalCase. `Err` carries the service's error
    /// code and message.
    fn call<'a>(
        &'a self,
        service: &'a str,
        action: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, (String, String)>>;
}

/// One iteration of a `Map`: its outcome, its input (kept only for a `ResultWriter`), when it
/// started and stopped (ms), and the child execution it was (a distributed Map's).
struct ChildOutcome {
    index: usize,
    result: Result<Value, StatesError>,
    input: Option<Value>,
    started: u64,
    stopped: u64,
    arn: Option<String>,
}

/// How a child workflow execution of a Map Run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildEnd {
    pub result: Result<Value, StatesError>,
    pub arn: String,
    pub started_ms: u64,
    pub stopped_ms: u64,
}

/// A distributed `Map`'s Map Run, as its state opens it.
#[derive(Debug, Clone, PartialEq)]
pub struct MapRunSpec {
    pub arn: String,
    /// The execution that runs the `Map` state.
    pub execution_arn: String,
    /// The children's state machine: the parent's, `/` and the label.
    pub machine_arn: String,
    pub label: String,
    /// What each child runs (the item processor as a definition of its own).
    pub definition: String,
    pub express: bool,
    /// 0: as many at once as there are items.
    pub max_concurrency: usize,
    pub tolerated_percentage: Option<f64>,
    pub tolerated_count: Option<u64>,
    /// The trace header of the Map state's span: each child's trace continues it.
    pub trace: Option<String>,
}

/// Where a distributed `Map` runs its items as child workflow executions of a Map Run: the
/// service that keeps executions (`ops.rs`). A run without it (an Express execution,
/// `TestState`) runs a distributed Map's items inline, as iterations.
pub trait MapRuns: Send + Sync {
    /// Opens the Map Run, or finds it again after a restart (`spec.arn` is derived from the
    /// execution and the state's `MapStateStarted`, so it is the same). A run found already
    /// ended without success answers the error it ended with: its state fails with it, and no
    /// child starts.
    fn open<'a>(
        &'a self,
        spec: MapRunSpec,
    ) -> BoxFuture<'a, Result<Option<StatesError>, StatesError>>;

    /// The Map Run has `total` children, `items` items.
    fn set_total<'a>(
        &'a self,
        map_run: &'a str,
        total: usize,
        items: usize,
    ) -> BoxFuture<'a, Result<(), StatesError>>;

    /// Runs child `index` (with `items` items) to its end: a new child execution, or the one
    /// a restart cut short (it goes on), or the one that had ended (its end is answered).
    /// A child still running when its run closes is aborted then.
    fn child<'a>(
        &'a self,
        map_run: &'a str,
        index: usize,
        items: usize,
        input: Value,
    ) -> BoxFuture<'a, ChildEnd>;

    /// A redriven execution's Map state entered again: the run its failed attempt had, open
    /// again with its redrive counted (its unsuccessful children are redriven, its succeeded
    /// ones stand); one already reopened answers as it is. `None` when it cannot be redriven
    /// (it succeeded): the state starts a new run.
    fn redrive<'a>(
        &'a self,
        map_run: &'a str,
    ) -> BoxFuture<'a, Result<Option<(String, u64)>, StatesError>>;

    /// The tolerated failures as they are now (`UpdateMapRun` may change them).
    fn tolerated(&self, map_run: &str) -> (Option<f64>, Option<u64>);

    /// The Map Run ended: children still running are aborted (and their own runs with them).
    /// Closing a run that has ended does nothing.
    fn close<'a>(&'a self, map_run: &'a str, end: RunEnd)
        -> BoxFuture<'a, Result<(), StatesError>>;
}

/// How a Map Run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    Succeeded,
    Failed(StatesError),
    /// Its Map state was dropped before it ended, or its execution stopped.
    Aborted,
}

/// Aborts a Map Run whose Map state is dropped while it runs (an enclosing `Parallel` or
/// `Map` failed elsewhere, the execution stopped or timed out), so its children stop too.
struct AbortRunOnDrop {
    runs: Arc<dyn MapRuns>,
    arn: String,
    armed: bool,
}

impl Drop for AbortRunOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // No runtime (the process is ending): a restart finds the run and goes on with it.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (runs, arn) = (Arc::clone(&self.runs), std::mem::take(&mut self.arn));
            rt.spawn(async move {
                let _ = runs.close(&arn, RunEnd::Aborted).await;
            });
        }
    }
}

/// One event of an execution's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: u64,
    pub previous: u64,
    pub ts_ms: u64,
    pub kind: String,
    /// `(field, details)`: e.g. `("stateEnteredEventDetails", {"name": .., "input": ..})`.
    pub details: Option<(String, Value)>,
}

/// Where a Standard execution is, kept with its history so a restart continues from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub state: String,
    /// The state's raw input.
    pub input: Value,
    /// The id of the state's `...StateEntered` event.
    pub entered: u64,
    /// Attempts used so far, one count per retrier.
    pub retries: Vec<u32>,
    /// When the state's wait (a `Wait` state, or the delay before a retry) ends.
    pub wake_at_ms: Option<u64>,
    /// The task token of a `.waitForTaskToken` task, kept so the task waits on the same
    /// token after a restart.
    pub token: Option<String>,
    /// The workflow variables (`Assign`) of the execution's own flow; for a Map iteration's or
    /// Parallel branch's state, only those its own states assigned (its parent's are added).
    pub vars: Value,
    /// A redriven execution's distributed `Map`, entered again: the Map Run its failed attempt
    /// had, which its first attempt now redrives (kept here so a restart still does).
    pub redrive_run: Option<String>,
}

impl Cursor {
    pub fn to_json(&self) -> Value {
        json!({"state": self.state, "input": self.input, "entered": self.entered,
               "retries": self.retries, "wake_at_ms": self.wake_at_ms, "token": self.token,
               "vars": self.vars, "redrive_run": self.redrive_run})
    }

    pub fn from_json(v: &Value) -> Option<Cursor> {
        Some(Cursor {
            state: v["state"].as_str()?.to_owned(),
            input: v["input"].clone(),
            entered: v["entered"].as_u64()?,
            retries: v["retries"]
                .as_array()?
                .iter()
                .map(|n| n.as_u64().unwrap_or(0) as u32)
                .collect(),
            wake_at_ms: v["wake_at_ms"].as_u64(),
            token: v["token"].as_str().map(str::to_owned),
            vars: v["vars"].clone(),
            redrive_run: v["redrive_run"].as_str().map(str::to_owned),
        })
    }
}

/// Where history goes: the database for Standard executions (durable before the call returns),
/// nowhere for Express ones.
pub trait Journal: Send + Sync {
    /// Records `events` and, for a top-level step, the new cursor. `Err` when they could not be
    /// kept: the execution stops where it is (and continues from the cursor after a restart).
    fn record<'a>(
        &'a self,
        events: Vec<Event>,
        cursor: Option<Cursor>,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// Whether it keeps anything. One that does not spares the interpreter rendering each
    /// state's input and output into its events and copying them into cursors.
    fn keeps(&self) -> bool {
        true
    }
}

/// A journal that keeps nothing (Express executions).
pub struct NoJournal;

impl Journal for NoJournal {
    fn record<'a>(&'a self, _: Vec<Event>, _: Option<Cursor>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn keeps(&self) -> bool {
        false
    }
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded(Value),
    Failed(StatesError),
    TimedOut,
    /// The journal could not keep the history: the execution stopped without an end and
    /// continues after a restart.
    Suspended(String),
}

/// Where a resumed execution (or a Map iteration or Parallel branch of one) picks up.
#[derive(Debug, Clone, PartialEq)]
pub struct Resume {
    pub cursor: Cursor,
    /// The start event (`TaskStarted`, `LambdaFunctionStarted`, `ActivityStarted`) of the
    /// cursor's task when it had been started and had not answered.
    pub task_in_flight: Option<Event>,
    /// The result of the cursor's task when it had answered before the restart: the state
    /// goes on from it rather than starting the task again.
    pub task_result: Option<Result<Value, StatesError>>,
    /// When that answer, a failure, was recorded: a retry waits its interval from then, not
    /// from the restart.
    pub failed_ms: Option<u64>,
    /// A `.waitForTaskToken` task had handed its token out (`TaskSubmitted`): it waits on the
    /// cursor's token again rather than calling its resource again.
    pub waiting: bool,
    /// A redrive: the cursor's state is entered again (a new `...StateEntered`), from its input.
    pub reenter: bool,
    /// The cursor's state is a `Map` or `Parallel` whose attempt had started: the attempt goes
    /// on, its finished parts are not run again, the others go on where they were.
    pub continued: Option<Continued>,
    /// When the cursor's state was entered, for a state of a Map iteration or Parallel branch,
    /// which keeps no cursor of its own: a `Wait` of seconds counts from then, not from the
    /// restart.
    pub entered_ms: Option<u64>,
}

/// A `Map` or `Parallel` attempt cut short by a restart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Continued {
    /// The id of the attempt's `MapStateStarted` or `ParallelStateStarted`: the parts run
    /// again continue its flow, as they would have.
    pub started: u64,
    /// The parts that had finished (Map iterations by index, Parallel branches by position),
    /// with their outputs.
    pub outputs: std::collections::BTreeMap<usize, Value>,
    /// The parts that had started and not finished: where each goes on.
    pub started_parts: std::collections::BTreeMap<usize, PartResume>,
    /// A distributed Map's Map Run, when its `MapRunStarted` was recorded.
    pub map_run: Option<String>,
}

/// A Map iteration or Parallel branch that a restart cut short.
#[derive(Debug, Clone, PartialEq)]
pub struct PartResume {
    /// The id of its flow's latest event: its next event follows it.
    pub last: u64,
    /// The state it was in, as [`Resume`] says; `None` when it had not entered a state yet
    /// (it starts from its first, without saying again that it started).
    pub resume: Option<Resume>,
}

/// One execution's run.
pub struct Run {
    pub integrations: Arc<dyn Integrations>,
    pub journal: Arc<dyn Journal>,
    /// The context object's `Execution` and `StateMachine` members.
    pub context: Value,
    pub region: String,
    /// Multiplies every wait (`Wait` states, retry intervals): `--delay-scale`.
    pub delay_scale: f64,
    /// The id of the last event recorded.
    pub last_event: AtomicU64,
    /// Where `.waitForTaskToken` tasks wait for `SendTaskSuccess`/`SendTaskFailure`.
    pub tokens: Arc<crate::tokens::Tokens>,
    /// Where executions and transitions are counted (`/metrics`), when nimbus measures.
    pub telemetry: Option<Arc<nimbus_telemetry::Telemetry>>,
    /// The X-Ray header the execution continues (`traceHeader`, or a new root); its spans
    /// (the execution, each state) go to the telemetry's trace store.
    pub trace: Option<String>,
    /// An Express execution: its duration is billed (`nimbus cost`).
    pub express: bool,
    /// Where a distributed `Map` runs its child executions (see [`MapRuns`]).
    pub map_runs: Option<Arc<dyn MapRuns>>,
}

/// Events of one flow (the execution, a branch, a Map iteration): each names the previous
/// event of its own flow.
struct Flow {
    last: AtomicU64,
    top: bool,
    /// Workflow variables (`Assign`) visible in this flow: a branch or iteration starts with a
    /// copy of its parent's, and its own assignments stay inside it.
    vars: std::sync::Mutex<Map<String, Value>>,
    /// What the running state has assigned: said in its exit event (`assignedVariables`),
    /// from which a resumed Map iteration or Parallel branch gets its variables back.
    assigned: std::sync::Mutex<Map<String, Value>>,
    /// The trace header the flow's state spans are children of.
    parent_span: Option<String>,
    /// The trace header of the state running now (its tasks and child flows continue it).
    current_span: std::sync::Mutex<Option<String>>,
}

impl Flow {
    fn new(last: u64, top: bool, vars: Map<String, Value>) -> Flow {
        Flow {
            last: AtomicU64::new(last),
            top,
            vars: std::sync::Mutex::new(vars),
            assigned: std::sync::Mutex::new(Map::new()),
            parent_span: None,
            current_span: std::sync::Mutex::new(None),
        }
    }

    /// A branch or Map iteration of this flow.
    fn child(&self) -> Flow {
        let mut f = Flow::new(self.last.load(Ordering::SeqCst), false, self.vars());
        f.parent_span = self.current_span();
        f
    }

    fn current_span(&self) -> Option<String> {
        self.current_span
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_current_span(&self, header: Option<String>) {
        *self.current_span.lock().unwrap_or_else(|e| e.into_inner()) = header;
    }

    fn vars(&self) -> Map<String, Value> {
        self.vars.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn assign(&self, values: Map<String, Value>) {
        self.assigned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.restore(values);
    }

    /// Variables assigned before a restart: in scope again, but not assigned anew.
    fn restore(&self, values: Map<String, Value>) {
        self.vars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(values);
    }

    /// A Map iteration or Parallel branch resumed after a restart: its cursor's variables are
    /// what its own states had assigned, on top of its parent's.
    fn restore_part(&self, resume: Option<&Resume>) {
        if let Some(Value::Object(v)) = resume.map(|r| &r.cursor.vars) {
            self.restore(v.clone());
        }
    }

    /// What the state that is ending assigned, as its exit event says it (`assignedVariables`:
    /// each value as JSON text).
    fn take_assigned(&self) -> Option<Value> {
        let taken = std::mem::take(&mut *self.assigned.lock().unwrap_or_else(|e| e.into_inner()));
        (!taken.is_empty()).then(|| {
            Value::Object(
                taken
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v.to_string())))
                    .collect(),
            )
        })
    }
}

/// However a token's wait ends (an answer, a timeout that drops the future, a stop), the
/// token stops being answerable.
struct ForgetToken<'a>(&'a crate::tokens::Tokens, &'a str);

impl Drop for ForgetToken<'_> {
    fn drop(&mut self) {
        self.0.forget(self.1);
    }
}

/// The end events of a task that waits on a token: `Task...` (with the task's `resourceType`
/// and `resource` in each) or `Activity...`.
struct TokenEvents {
    prefix: &'static str,
    fields: Value,
}

impl TokenEvents {
    /// `TaskSucceeded`, `ActivityTimedOut`, ...
    fn kind(&self, end: &str) -> String {
        format!("{}{end}", self.prefix)
    }

    /// `taskSucceededEventDetails`, `activityTimedOutEventDetails`, ...
    fn field(&self, end: &str) -> String {
        format!("{}{end}EventDetails", self.prefix.to_ascii_lowercase())
    }

    fn details(&self, mut det: Value) -> Value {
        if let (Some(d), Some(f)) = (det.as_object_mut(), self.fields.as_object()) {
            for (k, v) in f {
                d.insert(k.clone(), v.clone());
            }
        }
        det
    }
}

/// What one attempt of a task state starts from, besides its input.
struct Attempt {
    /// The task's answer from before a restart: used instead of running the task again.
    known: Option<Result<Value, StatesError>>,
    /// A `.waitForTaskToken` task's token, and whether it was already handed out.
    callback: Option<(String, bool)>,
    /// A Map or Parallel attempt continued after a restart (see [`Resume`]).
    continued: Option<Continued>,
    /// The Map Run a redriven execution's distributed Map redrives (see [`Cursor`]).
    redrive_run: Option<String>,
}

enum Step {
    Next(String, Value),
    End(Value),
}

/// An error the interpreter raises, and whether `States.ALL` may catch it.
fn catchable(e: &StatesError) -> bool {
    !e.is_suspended() && e.error != "States.Runtime" && e.error != "States.DataLimitExceeded"
}

pub(crate) fn matches(errors: &[String], e: &StatesError) -> bool {
    errors.iter().any(|name| match name.as_str() {
        "States.ALL" => catchable(e),
        // "A wildcard that matches any known error name except for States.Timeout".
        "States.TaskFailed" => catchable(e) && e.error != "States.Timeout",
        n => n == e.error,
    })
}

/// Counts what is written to it: a payload's size without building its text.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn size_check(v: &Value, what: &str) -> Result<(), StatesError> {
    let mut n = ByteCount(0);
    let _ = serde_json::to_writer(&mut n, v);
    if n.0 > PAYLOAD_LIMIT {
        return Err(StatesError::new(
            "States.DataLimitExceeded",
            format!("The state/task '{what}' returned a result with a size exceeding the maximum number of bytes service limit."),
        ));
    }
    Ok(())
}

/// `InputPath`, `OutputPath`, `ItemsPath`: what the path selects, or `States.Runtime` with
/// Jayway's words for what was missing.
fn apply_input(sel: &Sel, r: Roots<'_>) -> Result<Value, StatesError> {
    match sel {
        Sel::Default => Ok(r.input.clone()),
        Sel::Null => Ok(json!({})),
        Sel::Path(p) => r.select(p).ok_or_else(|| {
            let root = r.root(p).unwrap_or(r.input);
            StatesError::runtime(p.not_found_cause(root))
        }),
    }
}

/// `OutputPath` over an output the caller gives up: `$` keeps it as it is, without a copy.
fn apply_output(
    sel: &Sel,
    output: Value,
    context: &Value,
    vars: &Map<String, Value>,
) -> Result<Value, StatesError> {
    match sel {
        Sel::Default => Ok(output),
        _ => apply_input(
            sel,
            Roots {
                input: &output,
                context,
                vars,
            },
        ),
    }
}

fn select(p: &Path, input: &Value, context: &Value, vars: &Map<String, Value>) -> Option<Value> {
    Roots {
        input,
        context,
        vars,
    }
    .select(p)
}

fn apply_result(sel: &Sel, raw: Value, result: Value) -> Result<Value, StatesError> {
    match sel {
        Sel::Default => Ok(result),
        Sel::Null => Ok(raw),
        Sel::Path(p) => p
            .set(raw, result)
            .map_err(|cause| StatesError::new("States.ResultPathMatchFailure", cause)),
    }
}

fn details(field: &str, v: Value) -> Option<(String, Value)> {
    Some((field.to_owned(), v))
}

fn text(v: &Value) -> String {
    v.to_string()
}

impl Run {
    fn new_event(&self, flow: &Flow, kind: &str, det: Option<(String, Value)>) -> Event {
        let id = self.last_event.fetch_add(1, Ordering::SeqCst) + 1;
        let previous = flow.last.swap(id, Ordering::SeqCst);
        Event {
            id,
            previous,
            ts_ms: now_ms(),
            kind: kind.to_owned(),
            details: det,
        }
    }

    async fn emit(
        &self,
        flow: &Flow,
        kind: &str,
        det: Option<(String, Value)>,
    ) -> Result<u64, StatesError> {
        let e = self.new_event(flow, kind, det);
        let id = e.id;
        self.journal
            .record(vec![e], None)
            .await
            .map_err(suspended)?;
        Ok(id)
    }

    async fn save_cursor(&self, flow: &Flow, cursor: Cursor) -> Result<(), StatesError> {
        if flow.top {
            self.journal
                .record(Vec::new(), Some(cursor))
                .await
                .map_err(suspended)?;
        }
        Ok(())
    }

    fn machine_name(&self) -> &str {
        self.context["StateMachine"]["Name"].as_str().unwrap_or("")
    }

    /// Counts an execution's end on `/metrics`.
    fn ended(&self, outcome: &Outcome) {
        let status = match outcome {
            Outcome::Succeeded(_) => "SUCCEEDED",
            Outcome::Failed(_) => "FAILED",
            Outcome::TimedOut => "TIMED_OUT",
            Outcome::Suspended(_) => return,
        };
        if let Some(t) = &self.telemetry {
            let start = self.context["Execution"]["StartTime"]
                .as_str()
                .and_then(parse_timestamp)
                .unwrap_or(i128::from(now_ms()));
            let ms = (i128::from(now_ms()) - start).max(0) as u64;
            t.record_execution_ended(self.machine_name(), status, ms as f64 / 1000.0);
            if self.express {
                // Express duration is billed rounded up to the next 100 ms.
                t.record_express_billed(self.machine_name(), ms.div_ceil(100).max(1) * 100);
            }
        }
    }

    /// A wait scaled by `--delay-scale`, at most Step Functions' own limit (99999999 s), so
    /// no input can overflow it.
    fn scaled(&self, d: Duration) -> Duration {
        let max = Duration::from_secs(99_999_999);
        d.min(max)
            .mul_f64(self.delay_scale.clamp(0.0, 1_000.0))
            .min(max)
    }

    /// Runs the execution from its start, or from `resume`. A new Standard execution's
    /// `ExecutionStarted` is already recorded (with the execution's row) when `last_event` is 1.
    pub async fn execute(
        &self,
        machine: &Machine,
        input: Value,
        resume: Option<Resume>,
    ) -> Outcome {
        let traces = self.telemetry.as_ref().map(|t| &t.traces);
        let mut span = traces.and_then(|t| {
            t.open(
                self.trace.as_deref(),
                nimbus_telemetry::traces::SpanKind::StateMachine,
                format!("statemachine:{}", self.machine_name()),
                self.context["Execution"]["Name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                now_us(),
            )
        });
        let header = span.as_ref().map(|s| s.header());
        let outcome = self.execute_inner(machine, input, resume, header).await;
        self.ended(&outcome);
        if let (Some(t), Some(mut s)) = (traces, span.take()) {
            match &outcome {
                Outcome::Failed(e) => s.fail(format!("{}: {}", e.error, e.cause)),
                Outcome::TimedOut => s.fail("States.Timeout"),
                _ => {}
            }
            t.close(s, now_us());
        }
        outcome
    }

    async fn execute_inner(
        &self,
        machine: &Machine,
        input: Value,
        resume: Option<Resume>,
        span: Option<String>,
    ) -> Outcome {
        if self.last_event.load(Ordering::SeqCst) == 0 {
            let started = json!({"input": text(&input), "inputDetails": {"truncated": false},
                                 "roleArn": self.context["Execution"]["RoleArn"]});
            let first = Flow::new(0, false, Map::new());
            if let Err(e) = self
                .emit(
                    &first,
                    "ExecutionStarted",
                    details("executionStartedEventDetails", started),
                )
                .await
            {
                return Outcome::Suspended(e.cause);
            }
        }
        // The first state's entry names no previous event, as on AWS.
        let mut flow = match &resume {
            Some(r) => Flow::new(
                self.last_event.load(Ordering::SeqCst),
                true,
                r.cursor.vars.as_object().cloned().unwrap_or_default(),
            ),
            None => Flow::new(0, true, Map::new()),
        };
        flow.parent_span = span;
        let finished = resume
            .as_ref()
            .filter(|r| r.cursor.state.is_empty())
            .map(|r| r.cursor.input.clone());
        let run = async {
            match finished {
                Some(output) => Ok(output),
                None => self.machine(&flow, machine, input, resume).await,
            }
        };
        let result = match machine.timeout_seconds {
            Some(s) => {
                let left = match self.context["Execution"]["StartTime"]
                    .as_str()
                    .and_then(parse_timestamp)
                {
                    Some(start) => {
                        let end = start + i128::from(s) * 1000;
                        Duration::from_millis((end - i128::from(now_ms())).max(0) as u64)
                    }
                    None => Duration::from_secs(s),
                };
                match tokio::time::timeout(left, run).await {
                    Ok(r) => r,
                    Err(_) => {
                        let det = json!({"error": "States.Timeout"});
                        let last = Flow::new(0, false, Map::new());
                        let _ = self
                            .emit(
                                &last,
                                "ExecutionTimedOut",
                                details("executionTimedOutEventDetails", det),
                            )
                            .await;
                        return Outcome::TimedOut;
                    }
                }
            }
            None => run.await,
        };
        match result {
            Ok(output) => {
                let det = json!({"output": text(&output), "outputDetails": {"truncated": false}});
                match self
                    .emit(
                        &flow,
                        "ExecutionSucceeded",
                        details("executionSucceededEventDetails", det),
                    )
                    .await
                {
                    Ok(_) => Outcome::Succeeded(output),
                    Err(e) => Outcome::Suspended(e.cause),
                }
            }
            Err(e) if e.is_suspended() => Outcome::Suspended(e.cause),
            Err(e) => {
                let mut det = serde_json::Map::new();
                if !e.error.is_empty() {
                    det.insert("error".into(), json!(e.error));
                }
                if !e.cause.is_empty() {
                    det.insert("cause".into(), json!(e.cause));
                }
                match self
                    .emit(
                        &flow,
                        "ExecutionFailed",
                        details("executionFailedEventDetails", Value::Object(det)),
                    )
                    .await
                {
                    Ok(_) => Outcome::Failed(e),
                    Err(s) => Outcome::Suspended(s.cause),
                }
            }
        }
    }

    fn entered_event(&self, flow: &Flow, name: &str, state: &State, input: &Value) -> Event {
        let det = self.journal.keeps().then(|| {
            let det =
                json!({"name": name, "input": text(input), "inputDetails": {"truncated": false}});
            ("stateEnteredEventDetails".to_owned(), det)
        });
        self.new_event(flow, &format!("{}StateEntered", state.type_name()), det)
    }

    /// A cursor to keep with a step of the execution's own flow, when the journal keeps one.
    fn keeps_cursor(&self, flow: &Flow) -> bool {
        flow.top && self.journal.keeps()
    }

    /// Runs `machine` (the execution's, a branch, an iteration's) to its end. A state's exit
    /// and the next state's entry are recorded in one write with the cursor that points at the
    /// next state, so a restart finds the execution either before or after the transition.
    fn machine<'a>(
        &'a self,
        flow: &'a Flow,
        machine: &'a Machine,
        input: Value,
        resume: Option<Resume>,
    ) -> BoxFuture<'a, Result<Value, StatesError>> {
        Box::pin(async move {
            let (mut name, mut input, mut entered, mut resume) = match resume {
                Some(r) if r.reenter => {
                    let name = r.cursor.state.clone();
                    let Some(state) = machine.states.get(&name) else {
                        return Err(StatesError::runtime(format!("no state named {name}")));
                    };
                    let e = self.entered_event(flow, &name, state, &r.cursor.input);
                    let id = e.id;
                    let cursor = Cursor {
                        entered: id,
                        retries: vec![0; state.retry.len()],
                        wake_at_ms: None,
                        token: None,
                        ..r.cursor.clone()
                    };
                    // The state's first attempt redrives the Map Run it had.
                    let again = cursor.redrive_run.is_some().then(|| Resume {
                        cursor: cursor.clone(),
                        task_in_flight: None,
                        task_result: None,
                        failed_ms: None,
                        waiting: false,
                        reenter: false,
                        continued: None,
                        entered_ms: None,
                    });
                    self.journal
                        .record(vec![e], flow.top.then_some(cursor))
                        .await
                        .map_err(suspended)?;
                    (name, r.cursor.input, id, again)
                }
                Some(r) => (
                    r.cursor.state.clone(),
                    r.cursor.input.clone(),
                    r.cursor.entered,
                    Some(r),
                ),
                None => {
                    let name = machine.start_at.clone();
                    let Some(state) = machine.states.get(&name) else {
                        return Err(StatesError::runtime(format!("no state named {name}")));
                    };
                    let e = self.entered_event(flow, &name, state, &input);
                    let id = e.id;
                    let cursor = self.keeps_cursor(flow).then(|| Cursor {
                        state: name.clone(),
                        input: input.clone(),
                        entered: id,
                        retries: vec![0; state.retry.len()],
                        wake_at_ms: None,
                        token: None,
                        vars: Value::Object(flow.vars()),
                        redrive_run: None,
                    });
                    self.journal
                        .record(vec![e], cursor)
                        .await
                        .map_err(suspended)?;
                    (name, input, id, None)
                }
            };
            loop {
                let Some(state) = machine.states.get(&name) else {
                    return Err(StatesError::runtime(format!("no state named {name}")));
                };
                size_check(&input, &name)?;
                if let Some(t) = &self.telemetry {
                    t.record_state_transition(self.machine_name());
                }
                // Only what this state assigns is said at its exit.
                flow.take_assigned();
                let step = self
                    .state(flow, &name, state, input, entered, resume.take())
                    .await?;
                let output = match &step {
                    Step::Next(_, o) | Step::End(o) => o,
                };
                size_check(output, &name)?;
                let assigned = flow.take_assigned();
                let det = self.journal.keeps().then(|| {
                    let mut det = json!({"name": name, "output": text(output), "outputDetails": {"truncated": false}});
                    if let Some(a) = assigned {
                        det["assignedVariables"] = a;
                        det["assignedVariablesDetails"] = json!({"truncated": false});
                    }
                    ("stateExitedEventDetails".to_owned(), det)
                });
                let exited =
                    self.new_event(flow, &format!("{}StateExited", state.type_name()), det);
                match step {
                    Step::Next(next, output) => {
                        let Some(next_state) = machine.states.get(&next) else {
                            return Err(StatesError::runtime(format!("no state named {next}")));
                        };
                        let e = self.entered_event(flow, &next, next_state, &output);
                        let id = e.id;
                        let cursor = self.keeps_cursor(flow).then(|| Cursor {
                            state: next.clone(),
                            input: output.clone(),
                            entered: id,
                            retries: vec![0; next_state.retry.len()],
                            wake_at_ms: None,
                            token: None,
                            vars: Value::Object(flow.vars()),
                            redrive_run: None,
                        });
                        self.journal
                            .record(vec![exited, e], cursor)
                            .await
                            .map_err(suspended)?;
                        name = next;
                        input = output;
                        entered = id;
                    }
                    Step::End(output) => {
                        // The cursor's empty state means "finished with this output".
                        let cursor = self.keeps_cursor(flow).then(|| Cursor {
                            state: String::new(),
                            input: output.clone(),
                            entered: 0,
                            retries: Vec::new(),
                            wake_at_ms: None,
                            token: None,
                            vars: Value::Object(flow.vars()),
                            redrive_run: None,
                        });
                        self.journal
                            .record(vec![exited], cursor)
                            .await
                            .map_err(suspended)?;
                        return Ok(output);
                    }
                }
            }
        })
    }

    /// Runs one state; the interpreter's own errors name the state and its entered event.
    async fn state(
        &self,
        flow: &Flow,
        name: &str,
        state: &State,
        raw: Value,
        entered: u64,
        resume: Option<Resume>,
    ) -> Result<Step, StatesError> {
        let traces = self.telemetry.as_ref().map(|t| &t.traces);
        let mut span = traces.and_then(|t| {
            t.open(
                flow.parent_span.as_deref(),
                nimbus_telemetry::traces::SpanKind::State,
                format!("statemachine:{}", self.machine_name()),
                name.to_owned(),
                now_us(),
            )
        });
        if let Some(s) = &mut span {
            s.attr("type", state.type_name());
        }
        flow.set_current_span(span.as_ref().map(|s| s.header()));
        let result = self
            .state_inner(flow, name, state, raw, entered, resume)
            .await;
        flow.set_current_span(None);
        if let (Some(t), Some(mut s)) = (traces, span) {
            if let Err(e) = &result {
                s.fail(format!("{}: {}", e.error, e.cause));
            }
            t.close(s, now_us());
        }
        result.map_err(|mut e| {
                if e.error == "States.Runtime" && !e.cause.starts_with("An error occurred") {
                    e.cause = format!(
                        "An error occurred while executing the state '{name}' (entered at the event id #{entered}). {}",
                        e.cause
                    );
                }
                e
            })
    }

    async fn state_inner(
        &self,
        flow: &Flow,
        name: &str,
        state: &State,
        raw: Value,
        entered: u64,
        resume: Option<Resume>,
    ) -> Result<Step, StatesError> {
        let since = resume
            .as_ref()
            .and_then(|r| r.entered_ms)
            .unwrap_or_else(now_ms);
        let mut failed_ms = resume.as_ref().and_then(|r| r.failed_ms);
        let mut redrive_run = resume.as_ref().and_then(|r| r.cursor.redrive_run.clone());
        let (mut retries, wake_at, task_in_flight, task_result, mut waiting, mut continued) =
            match resume {
                Some(r) => {
                    let waiting = r.waiting.then_some(r.cursor.token).flatten();
                    (
                        r.cursor.retries,
                        r.cursor.wake_at_ms,
                        r.task_in_flight,
                        r.task_result,
                        waiting,
                        r.continued,
                    )
                }
                None => (vec![0; state.retry.len()], None, None, None, None, None),
            };
        if retries.len() != state.retry.len() {
            retries = vec![0; state.retry.len()];
        }
        let entered_at = now_ms();
        let context = |retry: u32| {
            let mut c = self.context.clone();
            c["State"] =
                json!({"Name": name, "EnteredTime": format_ms(entered_at), "RetryCount": retry});
            c
        };
        let jsonata = state.lang == Lang::Jsonata;
        // Variables as the state found them: its own `Assign` takes effect when it ends.
        let vars = flow.vars();
        let cursor = |retries: &Vec<u32>, wake: Option<u64>| Cursor {
            state: name.to_owned(),
            input: raw.clone(),
            entered,
            retries: retries.clone(),
            wake_at_ms: wake,
            token: None,
            vars: Value::Object(flow.vars()),
            // Only the first attempt redrives; a retry runs a new Map Run.
            redrive_run: None,
        };
        let step = match &state.kind {
            Kind::Choice { rules, default } if jsonata => {
                let ctx = context(0);
                let states = json!({"input": raw, "context": ctx});
                let choices = state.def["Choices"].as_array().cloned().unwrap_or_default();
                let mut chosen = None;
                for (i, (rule, next)) in rules.iter().enumerate() {
                    let crate::choice::Rule::Condition(cond) = rule else {
                        continue;
                    };
                    match self.query(flow, &json!(cond), &states)? {
                        Value::Bool(true) => {
                            chosen = Some((next.clone(), choices.get(i).cloned()));
                            break;
                        }
                        Value::Bool(false) => {}
                        other => {
                            return Err(StatesError::new(
                                "States.QueryEvaluationError",
                                format!("The Condition of Choices[{i}] must evaluate to a boolean, but evaluated to {other}"),
                            ))
                        }
                    }
                }
                let (next, rule) = match chosen {
                    Some(c) => c,
                    None => match default {
                        Some(d) => (d.clone(), None),
                        None => {
                            return Err(StatesError::new(
                                "States.NoChoiceMatched",
                                format!("No Matches! at state: {name}"),
                            ))
                        }
                    },
                };
                // A matching rule's own Output and Assign win over the state's.
                let fields = rule.unwrap_or_else(|| state.def.clone());
                let output = self.finish_jsonata(flow, &fields, &states, raw.clone())?;
                Step::Next(next, output)
            }
            Kind::Succeed | Kind::Pass { .. } if jsonata => {
                let ctx = context(0);
                let states = json!({"input": raw, "context": ctx});
                let output = self.finish_jsonata(flow, &state.def, &states, raw.clone())?;
                match &state.kind {
                    Kind::Succeed => Step::End(output),
                    _ => self.transition(state, output),
                }
            }
            Kind::Fail { .. } if jsonata => {
                let ctx = context(0);
                let states = json!({"input": raw, "context": ctx});
                let text = |key: &str| -> Result<String, StatesError> {
                    Ok(match self.query(flow, &state.def[key], &states)? {
                        Value::Null => String::new(),
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                };
                return Err(StatesError::new(text("Error")?, text("Cause")?));
            }
            Kind::Wait(_) if jsonata => {
                let ctx = context(0);
                let states = json!({"input": raw, "context": ctx});
                let wake = match wake_at {
                    Some(t) => t,
                    None => {
                        let t = match (state.def.get("Seconds"), state.def.get("Timestamp")) {
                            (Some(v), _) => match self.query(flow, v, &states)?.as_u64() {
                                Some(secs) => since + self.scaled(Duration::from_secs(secs)).as_millis() as u64,
                                None => {
                                    return Err(StatesError::new(
                                        "States.QueryEvaluationError",
                                        "The Seconds field must evaluate to a non-negative integer",
                                    ))
                                }
                            },
                            (None, Some(v)) => match self.query(flow, v, &states)? {
                                Value::String(t) => self.until(&t)?,
                                _ => {
                                    return Err(StatesError::new(
                                        "States.QueryEvaluationError",
                                        "The Timestamp field must evaluate to an ISO-8601 timestamp string",
                                    ))
                                }
                            },
                            _ => now_ms(),
                        };
                        self.save_cursor(flow, cursor(&retries, Some(t))).await?;
                        t
                    }
                };
                tokio::time::sleep(Duration::from_millis(wake.saturating_sub(now_ms()))).await;
                let output = self.finish_jsonata(flow, &state.def, &states, raw.clone())?;
                self.transition(state, output)
            }
            Kind::Choice { rules, default } => {
                let ctx = context(0);
                let effective = apply_input(
                    &state.input_path,
                    Roots {
                        input: &raw,
                        context: &ctx,
                        vars: &vars,
                    },
                )?;
                let mut chosen = None;
                for (i, (rule, next)) in rules.iter().enumerate() {
                    if crate::choice::eval_in(
                        rule,
                        &Roots {
                            input: &effective,
                            context: &ctx,
                            vars: &vars,
                        },
                    )? {
                        chosen = Some((next.clone(), Some(i)));
                        break;
                    }
                }
                let Some((next, rule)) = chosen.or_else(|| default.clone().map(|d| (d, None)))
                else {
                    return Err(StatesError::new(
                        "States.NoChoiceMatched",
                        format!("No Matches! at state: {name}"),
                    ));
                };
                // A matching rule's own Assign, else the state's.
                let assign = match rule {
                    Some(i) => state.def["Choices"][i].get("Assign"),
                    None => state.assign.as_ref(),
                };
                self.assign_jsonpath(flow, assign, &effective, &ctx, &vars)?;
                let output = apply_output(&state.output_path, effective, &ctx, &vars)?;
                Step::Next(next, output)
            }
            Kind::Succeed => {
                let ctx = context(0);
                let effective = apply_input(
                    &state.input_path,
                    Roots {
                        input: &raw,
                        context: &ctx,
                        vars: &vars,
                    },
                )?;
                Step::End(apply_output(&state.output_path, effective, &ctx, &vars)?)
            }
            Kind::Fail { error, cause } => {
                let ctx = context(0);
                let resolve = |t: &Option<Text>| -> Result<String, StatesError> {
                    Ok(match t {
                        None => String::new(),
                        Some(Text::Literal(s)) => s.clone(),
                        Some(Text::Path(p)) => match select(p, &raw, &ctx, &vars) {
                            Some(Value::String(s)) => s,
                            Some(v) => v.to_string(),
                            None => {
                                return Err(StatesError::runtime(format!(
                                    "Invalid path '{}': The Fail state's path could not be found in the input '{raw}'",
                                    p.as_str()
                                )))
                            }
                        },
                        Some(Text::Intrinsic(f)) => match f.eval_in(&Roots { input: &raw, context: &ctx, vars: &vars })? {
                            Value::String(s) => s,
                            v => v.to_string(),
                        },
                    })
                };
                return Err(StatesError::new(resolve(error)?, resolve(cause)?));
            }
            Kind::Wait(w) => {
                let ctx = context(0);
                let effective = apply_input(
                    &state.input_path,
                    Roots {
                        input: &raw,
                        context: &ctx,
                        vars: &vars,
                    },
                )?;
                let wake = match wake_at {
                    Some(t) => t,
                    None => {
                        let t = self.wake_time(w, &effective, &ctx, &vars, since)?;
                        self.save_cursor(flow, cursor(&retries, Some(t))).await?;
                        t
                    }
                };
                let left = wake.saturating_sub(now_ms());
                tokio::time::sleep(Duration::from_millis(left)).await;
                self.assign_jsonpath(flow, state.assign.as_ref(), &effective, &ctx, &vars)?;
                let output = apply_output(&state.output_path, effective, &ctx, &vars)?;
                self.transition(state, output)
            }
            Kind::Pass { result } => {
                // The context object only when a field could read it (`ResultPath` cannot):
                // a Pass of a literal `Result` is the commonest state and the cheapest.
                let reads_context = !matches!(state.input_path, Sel::Default | Sel::Null)
                    || !matches!(state.output_path, Sel::Default | Sel::Null)
                    || (result.is_none() && state.parameters.is_some())
                    || state.assign.is_some();
                let ctx = match reads_context {
                    true => context(0),
                    false => Value::Null,
                };
                let effective = match (result, &state.input_path) {
                    // Not read: the `Result` stands for it.
                    (Some(_), Sel::Default) => Value::Null,
                    _ => apply_input(
                        &state.input_path,
                        Roots {
                            input: &raw,
                            context: &ctx,
                            vars: &vars,
                        },
                    )?,
                };
                let value = match (result, &state.parameters) {
                    (Some(r), _) => r.clone(),
                    (None, Some(p)) => crate::payload::render_in(
                        p,
                        &Roots {
                            input: &effective,
                            context: &ctx,
                            vars: &vars,
                        },
                    )?,
                    (None, None) => effective,
                };
                self.assign_jsonpath(flow, state.assign.as_ref(), &value, &ctx, &vars)?;
                let output = apply_result(&state.result_path, raw, value)?;
                let output = apply_output(&state.output_path, output, &ctx, &vars)?;
                self.transition(state, output)
            }
            Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map { .. } => {
                let mut in_flight = task_in_flight;
                let mut known = task_result;
                let mut wake = wake_at;
                loop {
                    if let Some(t) = wake.take() {
                        let left = t.saturating_sub(now_ms());
                        tokio::time::sleep(Duration::from_millis(left)).await;
                        // The wait is over: a restart from here on must read the next
                        // attempt's events, not think the last failure still unhandled.
                        self.save_cursor(flow, cursor(&retries, None)).await?;
                    }
                    let attempt: u32 = retries.iter().sum();
                    let ctx = context(attempt);
                    // A callback task's token is kept with the cursor before it is handed out.
                    let callback = match (&state.kind, waiting.take()) {
                        (_, Some(token)) => Some((token, true)),
                        (Kind::Task { resource, .. }, None)
                            if resource.ends_with(".waitForTaskToken")
                                && known.is_none()
                                && in_flight.is_none() =>
                        {
                            let token = crate::tokens::Tokens::new_token();
                            let mut c = cursor(&retries, None);
                            c.token = Some(token.clone());
                            self.save_cursor(flow, c).await?;
                            Some((token, false))
                        }
                        _ => None,
                    };
                    let result = if let Some(start) = in_flight.take() {
                        let e = StatesError::new(
                            "States.TaskFailed",
                            "nimbus stopped while this task was running; a Standard workflow starts a task at most once, so it was not started again",
                        );
                        // Said in the history as the task's failure, so the task's events
                        // pair up and a later restart reads this attempt as over.
                        let (kind, key, mut det) = match start.kind.as_str() {
                            "LambdaFunctionStarted" => (
                                "LambdaFunctionFailed",
                                "lambdaFunctionFailedEventDetails",
                                json!({}),
                            ),
                            "ActivityStarted" => {
                                ("ActivityFailed", "activityFailedEventDetails", json!({}))
                            }
                            _ => {
                                let d = start.details.map(|(_, d)| d).unwrap_or_default();
                                let det = json!({"resourceType": d["resourceType"], "resource": d["resource"]});
                                ("TaskFailed", "taskFailedEventDetails", det)
                            }
                        };
                        det["error"] = json!(e.error);
                        det["cause"] = json!(e.cause);
                        self.emit(flow, kind, details(key, det)).await?;
                        Err(e)
                    } else {
                        self.work(
                            flow,
                            name,
                            state,
                            &raw,
                            &ctx,
                            Attempt {
                                known: known.take(),
                                callback,
                                continued: continued.take(),
                                redrive_run: redrive_run.take(),
                            },
                        )
                        .await
                    };
                    match result {
                        Ok(output) => break self.transition(state, output),
                        Err(e) if e.is_suspended() => return Err(e),
                        Err(e) => {
                            // A failure recorded before a restart had its interval running
                            // since then.
                            let failed_at = failed_ms.take().unwrap_or_else(now_ms);
                            if let Some(i) = state.retry.iter().position(|r| matches(&r.errors, &e))
                            {
                                if retries[i] < state.retry[i].max_attempts {
                                    let delay =
                                        self.scaled(retry_delay(&state.retry[i], retries[i]));
                                    retries[i] += 1;
                                    let t = failed_at + delay.as_millis() as u64;
                                    self.save_cursor(flow, cursor(&retries, Some(t))).await?;
                                    wake = Some(t);
                                    continue;
                                }
                            }
                            if let Some(i) = state.catch.iter().position(|c| matches(&c.errors, &e))
                            {
                                let c = &state.catch[i];
                                let err = json!({"Error": e.error, "Cause": e.cause});
                                let output = if jsonata {
                                    let states = json!({"input": raw, "context": context(0), "errorOutput": err});
                                    let fields = state.def["Catch"][i].clone();
                                    self.finish_jsonata(flow, &fields, &states, err.clone())?
                                } else {
                                    let assign = state.def["Catch"][i].get("Assign");
                                    self.assign_jsonpath(flow, assign, &err, &context(0), &vars)?;
                                    apply_result(&c.result_path, raw.clone(), err)?
                                };
                                break Step::Next(c.next.clone(), output);
                            }
                            return Err(e);
                        }
                    }
                }
            }
        };
        Ok(step)
    }

    /// A JSONPath state's `Assign`: a payload template whose `$` is `root` (the state's
    /// result, or its effective input when it has none), taking effect as the state ends.
    fn assign_jsonpath(
        &self,
        flow: &Flow,
        template: Option<&Value>,
        root: &Value,
        ctx: &Value,
        vars: &Map<String, Value>,
    ) -> Result<(), StatesError> {
        let Some(template) = template else {
            return Ok(());
        };
        let roots = Roots {
            input: root,
            context: ctx,
            vars,
        };
        match crate::payload::render_in(template, &roots)? {
            Value::Object(values) => {
                flow.assign(values);
                Ok(())
            }
            other => Err(StatesError::runtime(format!(
                "Assign must be an object, but is {other}"
            ))),
        }
    }

    /// Evaluates a JSONata field (`{% %}` strings, inside objects and arrays too) with
    /// `$states` and the flow's variables.
    fn query(&self, flow: &Flow, template: &Value, states: &Value) -> Result<Value, StatesError> {
        let vars = flow.vars();
        let lookup = |name: &str| match name {
            "states" => Some(states.clone()),
            other => vars.get(other).cloned(),
        };
        let random = || rand::random::<f64>();
        let uuid = || uuid::Uuid::new_v4().to_string();
        let env = crate::jsonata::Env {
            vars: &lookup,
            now_ms: now_ms(),
            random: &random,
            uuid: &uuid,
        };
        crate::jsonata::render(template, &env)
            .map_err(|e| StatesError::new("States.QueryEvaluationError", e.to_string()))
    }

    /// A JSONata state's end: its `Output` (else `default`) and its `Assign`, both evaluated
    /// before either takes effect, as Step Functions does.
    fn finish_jsonata(
        &self,
        flow: &Flow,
        fields: &Value,
        states: &Value,
        default: Value,
    ) -> Result<Value, StatesError> {
        let output = match fields.get("Output") {
            Some(o) => self.query(flow, o, states)?,
            None => default,
        };
        if let Some(assign) = fields.get("Assign") {
            match self.query(flow, assign, states)? {
                Value::Object(values) => flow.assign(values),
                other => {
                    return Err(StatesError::new(
                        "States.QueryEvaluationError",
                        format!("Assign must be an object, but evaluated to {other}"),
                    ))
                }
            }
        }
        Ok(output)
    }

    fn transition(&self, state: &State, output: Value) -> Step {
        match &state.next {
            Some(n) => Step::Next(n.clone(), output),
            None => Step::End(output),
        }
    }

    /// When a `Wait` entered at `since` ends.
    fn wake_time(
        &self,
        w: &WaitFor,
        input: &Value,
        ctx: &Value,
        vars: &Map<String, Value>,
        since: u64,
    ) -> Result<u64, StatesError> {
        let seconds = |s: u64| since + self.scaled(Duration::from_secs(s)).as_millis() as u64;
        Ok(match w {
            WaitFor::Seconds(Seconds::Fixed(s)) => seconds(*s),
            WaitFor::Seconds(Seconds::Path(p)) => match select(p, input, ctx, vars).and_then(|v| v.as_u64()) {
                Some(s) => seconds(s),
                None => {
                    return Err(StatesError::runtime(format!(
                        "The SecondsPath parameter does not reference a valid non-negative integer: '{}'",
                        p.as_str()
                    )))
                }
            },
            WaitFor::Timestamp(t) => self.until(t)?,
            WaitFor::TimestampPath(p) => match select(p, input, ctx, vars) {
                Some(Value::String(t)) => self.until(&t)?,
                _ => {
                    return Err(StatesError::runtime(format!(
                        "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: '{}'",
                        p.as_str()
                    )))
                }
            },
        })
    }

    /// A `Timestamp` wait ends at that time; `--delay-scale` shortens what is left of it.
    fn until(&self, t: &str) -> Result<u64, StatesError> {
        let Some(at) = parse_timestamp(t) else {
            return Err(StatesError::runtime(format!(
                "The Timestamp '{t}' is not a valid ISO-8601 extended offset date-time"
            )));
        };
        let now = now_ms();
        let left = (at - i128::from(now)).max(0) as u64;
        Ok(now + self.scaled(Duration::from_millis(left)).as_millis() as u64)
    }

    /// One attempt of a Task, Parallel or Map state: input processing, the work, result
    /// processing. Returns the state's output.
    async fn work(
        &self,
        flow: &Flow,
        name: &str,
        state: &State,
        raw: &Value,
        ctx: &Value,
        attempt: Attempt,
    ) -> Result<Value, StatesError> {
        let Attempt {
            known,
            callback,
            continued,
            redrive_run,
        } = attempt;
        let jsonata = state.lang == Lang::Jsonata;
        let vars = flow.vars();
        // JSONata states have no paths: `Arguments` (or a Map's `ItemSelector`) is evaluated
        // with `$states.input`; JSONPath states render `Parameters` over the effective input.
        let effective = match jsonata {
            true => raw.clone(),
            false => apply_input(
                &state.input_path,
                Roots {
                    input: raw,
                    context: ctx,
                    vars: &vars,
                },
            )?,
        };
        let arguments =
            |template: Option<&Value>, input: &Value, ctx: &Value| match (template, jsonata) {
                (None, _) => Ok(input.clone()),
                (Some(t), true) => self.query(flow, t, &json!({"input": raw, "context": ctx})),
                (Some(t), false) => crate::payload::render_in(
                    t,
                    &Roots {
                        input,
                        context: ctx,
                        vars: &vars,
                    },
                ),
            };
        let template = match jsonata {
            true => state.arguments.as_ref(),
            false => state.parameters.as_ref(),
        };
        let result = match &state.kind {
            Kind::Task {
                resource,
                timeout,
                heartbeat,
            } => {
                let task_ctx;
                let ctx = match &callback {
                    Some((token, _)) => {
                        let mut c = ctx.clone();
                        c["Task"] = json!({ "Token": token });
                        task_ctx = c;
                        &task_ctx
                    }
                    None => ctx,
                };
                let params = arguments(template, &effective, ctx)?;
                size_check(&params, name)?;
                let heartbeat = match heartbeat {
                    Some(Seconds::Fixed(s)) => Some(*s),
                    Some(Seconds::Path(p)) => select(p, raw, ctx, &vars).and_then(|v| v.as_u64()),
                    None => None,
                };
                let timeout = match timeout {
                    None => None,
                    Some(Seconds::Fixed(s)) => Some(*s),
                    Some(Seconds::Path(p)) => match select(p, raw, ctx, &vars).and_then(|v| v.as_u64()) {
                        Some(s) if s > 0 => Some(s),
                        _ => {
                            return Err(StatesError::runtime(format!(
                                "The TimeoutSecondsPath parameter does not reference a positive integer: '{}'",
                                p.as_str()
                            )))
                        }
                    },
                };
                match known {
                    Some(answer) => answer?,
                    None => {
                        let task = self.task(flow, resource, params, callback, heartbeat);
                        match timeout {
                            Some(s) => {
                                match tokio::time::timeout(Duration::from_secs(s), task).await {
                                    Ok(r) => r?,
                                    Err(_) => {
                                        let e = StatesError::new("States.Timeout", "");
                                        let (rt, r) = task_kind(resource);
                                        let det = json!({"resourceType": rt, "resource": r, "error": e.error});
                                        self.emit(
                                            flow,
                                            "TaskTimedOut",
                                            details("taskTimedOutEventDetails", det),
                                        )
                                        .await?;
                                        return Err(e);
                                    }
                                }
                            }
                            None => task.await?,
                        }
                    }
                }
            }
            Kind::Parallel { branches } => {
                let input = arguments(template, &effective, ctx)?;
                // An attempt continued after a restart already said it started.
                let (finished, mut started_parts) = match continued {
                    Some(c) => {
                        flow.last.store(c.started, Ordering::SeqCst);
                        (c.outputs, c.started_parts)
                    }
                    None => {
                        self.emit(flow, "ParallelStateStarted", None).await?;
                        Default::default()
                    }
                };
                let runs = branches.iter().enumerate().map(|(i, b)| {
                    let input = input.clone();
                    // Finished before a restart: its output stands, it does not run again.
                    let done = finished.get(&i).cloned();
                    let part = started_parts.remove(&i);
                    async move {
                        if let Some(out) = done {
                            return Ok(out);
                        }
                        let sub = flow.child();
                        // Cut short by a restart: it goes on where it was.
                        let resume = part.and_then(|p| {
                            sub.last.store(p.last, Ordering::SeqCst);
                            p.resume
                        });
                        sub.restore_part(resume.as_ref());
                        self.machine(&sub, b, input, resume).await
                    }
                });
                match futures_util::future::try_join_all(runs).await {
                    Ok(outputs) => {
                        self.emit(flow, "ParallelStateSucceeded", None).await?;
                        Value::Array(outputs)
                    }
                    Err(e) => {
                        if !e.is_suspended() {
                            self.emit(flow, "ParallelStateFailed", None).await?;
                        }
                        return Err(e);
                    }
                }
            }
            Kind::Map {
                processor,
                items_path,
                items,
                max_concurrency,
                tolerated_percentage,
                tolerated_count,
                batcher,
                reader,
                writer,
                distributed,
            } => {
                // Distributed, with a service to keep its children: a Map Run, opened (with
                // `MapStateStarted` and `MapRunStarted`) before the items are read, as on AWS.
                let mut continued = continued;
                let map_run = match (distributed, &self.map_runs) {
                    (Some(d), Some(runs)) => {
                        let max_concurrency = match max_concurrency {
                            None => 0,
                            Some(Seconds::Fixed(n)) => *n as usize,
                            Some(Seconds::Path(p)) => select(p, &effective, ctx, &vars)
                                .and_then(|v| v.as_u64())
                                .map(|n| n as usize)
                                .ok_or_else(|| StatesError::runtime(format!(
                                    "The MaxConcurrencyPath field refers to value that is not a non-negative integer: '{}'",
                                    p.as_str()
                                )))?,
                        };
                        let spec = MapRunPlan {
                            d,
                            max_concurrency,
                            tolerated_percentage: *tolerated_percentage,
                            tolerated_count: *tolerated_count,
                            redrive_run: redrive_run.clone(),
                        };
                        let (arn, ended) = self
                            .open_map_run(flow, name, ctx, spec, runs.as_ref(), continued.take())
                            .await?;
                        Some((arn, Arc::clone(runs), ended))
                    }
                    _ => None,
                };
                // `ItemSelector` over each item, with `$$.Map.Item`: one context whose `Map` is
                // replaced per item (a copy per item would copy the execution's input each time).
                let select_items = |list: Vec<Value>| -> Result<Vec<Value>, StatesError> {
                    let Some(t) = state.parameters.as_ref() else {
                        return Ok(list);
                    };
                    let item = |index: usize, item: Value| json!({"Item": {"Index": index, "Value": item}});
                    if jsonata {
                        let mut states = json!({"input": raw, "context": ctx});
                        return list
                            .into_iter()
                            .enumerate()
                            .map(|(index, v)| {
                                states["context"]["Map"] = item(index, v);
                                self.query(flow, t, &states)
                            })
                            .collect();
                    }
                    let mut ictx = ctx.clone();
                    list.into_iter()
                        .enumerate()
                        .map(|(index, v)| {
                            ictx["Map"] = item(index, v);
                            crate::payload::render_in(
                                t,
                                &Roots {
                                    input: &effective,
                                    context: &ictx,
                                    vars: &vars,
                                },
                            )
                        })
                        .collect()
                };
                let listed = async {
                    let list = match (reader, items, jsonata) {
                        (Some(r), _, _) => {
                            let params = match &r.template {
                                Some(t) => arguments(Some(t), &effective, ctx)?,
                                None => json!({}),
                            };
                            let max = match &r.max_items {
                                None | Some(Seconds::Fixed(0)) => None,
                                Some(Seconds::Fixed(n)) => Some(*n as usize),
                                Some(Seconds::Path(p)) => select(p, &effective, ctx, &vars)
                                    .and_then(|v| v.as_u64())
                                    .filter(|n| *n > 0)
                                    .map(|n| n as usize),
                            };
                            Value::Array(self.read_items(r, params, max).await?)
                        }
                        (None, items, jsonata) => match (items, jsonata) {
                            (Some(Value::Array(a)), _) => Value::Array(a.clone()),
                            (Some(expr), true) => {
                                self.query(flow, expr, &json!({"input": raw, "context": ctx}))?
                            }
                            (_, true) => raw.clone(),
                            _ => apply_input(
                                items_path,
                                Roots {
                                    input: &effective,
                                    context: ctx,
                                    vars: &vars,
                                },
                            )?,
                        },
                    };
                    let Value::Array(list) = list else {
                        return Err(StatesError::runtime(format!(
                            "Map state input must be an array, but got: {list}"
                        )));
                    };
                    // `ItemBatcher`: each item selected first, then batches of them, each with
                    // the batch input, are what the iterations get.
                    match batcher {
                        None => Ok((list, false)),
                        Some(b) => {
                            let picked = select_items(list)?;
                            let batch_input = match &b.batch_input {
                                Some(t) => Some(arguments(Some(t), &effective, ctx)?),
                                None => None,
                            };
                            Ok((batches(picked, b, batch_input), true))
                        }
                    }
                };
                if let Some((arn, runs, ended)) = map_run {
                    // Dropped before it ends (an enclosing Parallel or Map failed elsewhere,
                    // the execution stopped): the run is aborted with its children.
                    let mut guard = AbortRunOnDrop {
                        runs: Arc::clone(&runs),
                        arn: arn.clone(),
                        armed: true,
                    };
                    let runs = runs.as_ref();
                    let run = async {
                        // The run had ended before a restart, without its state ending.
                        if let Some(e) = ended {
                            return Err(e);
                        }
                        let (list, selected) = listed.await?;
                        let inputs = if selected { list } else { select_items(list)? };
                        let outcomes = self
                            .map_run_children(&arn, runs, inputs, selected, writer.is_some())
                            .await?;
                        match writer {
                            Some(w) => {
                                let params = match &w.template {
                                    Some(t) => arguments(Some(t), &effective, ctx)?,
                                    None => json!({}),
                                };
                                self.write_results(w, params, name, ctx, outcomes, Some(&arn))
                                    .await
                            }
                            None => Ok(results_array(outcomes)),
                        }
                    };
                    let result = match run.await {
                        Ok(v) => v,
                        Err(e) => {
                            let e = self.fail_map_run(flow, &arn, runs, e).await;
                            guard.armed = false;
                            return Err(e);
                        }
                    };
                    let closed = runs.close(&arn, RunEnd::Succeeded).await;
                    guard.armed = false;
                    closed?;
                    // Both ends in one write: a restart never finds the run ended and the
                    // state not.
                    let events = vec![
                        self.new_event(flow, "MapRunSucceeded", None),
                        self.new_event(flow, "MapStateSucceeded", None),
                    ];
                    self.journal.record(events, None).await.map_err(suspended)?;
                    result
                } else {
                    let (list, selected) = listed.await?;
                    let limit = match max_concurrency {
                        None | Some(Seconds::Fixed(0)) => list.len().max(1),
                        Some(Seconds::Fixed(n)) => *n as usize,
                        Some(Seconds::Path(p)) => match select(p, &effective, ctx, &vars).and_then(|v| v.as_u64()) {
                            Some(0) => list.len().max(1),
                            Some(n) => n as usize,
                            None => {
                                return Err(StatesError::runtime(format!(
                                    "The MaxConcurrencyPath field refers to value that is not a non-negative integer: '{}'",
                                    p.as_str()
                                )))
                            }
                        },
                    };
                    // An attempt continued after a restart already said it started.
                    let (finished, mut started_parts) = match continued {
                        Some(c) => {
                            flow.last.store(c.started, Ordering::SeqCst);
                            (c.outputs, c.started_parts)
                        }
                        None => {
                            self.emit(
                                flow,
                                "MapStateStarted",
                                details(
                                    "mapStateStartedEventDetails",
                                    json!({"length": list.len()}),
                                ),
                            )
                            .await?;
                            (Default::default(), Default::default())
                        }
                    };
                    // No more permits than iterations (a path may ask for any number).
                    let permits = tokio::sync::Semaphore::new(limit.clamp(1, list.len().max(1)));
                    let tolerant = tolerated_percentage.is_some() || tolerated_count.is_some();
                    let total = list.len();
                    let inputs = match selected {
                        true => list,
                        false => match select_items(list) {
                            Ok(inputs) => inputs,
                            Err(e) => {
                                self.emit(flow, "MapStateFailed", None).await?;
                                return Err(e);
                            }
                        },
                    };
                    let runs = inputs.into_iter().enumerate().map(|(index, input)| {
                        let permits = &permits;
                        let done = finished.get(&index).cloned();
                        let part = started_parts.remove(&index);
                        async move {
                            let child_input = writer.as_ref().map(|_| input.clone());
                            let outcome = |result, started, stopped| ChildOutcome {
                                index,
                                result,
                                input: child_input.clone(),
                                started,
                                stopped,
                                arn: None,
                            };
                            // Finished before a restart: its output stands, it does not run again.
                            if let Some(out) = done {
                                let now = now_ms();
                                return Ok(outcome(Ok(out), now, now));
                            }
                            let _permit = permits.acquire().await;
                            let started = now_ms();
                            let sub = flow.child();
                            let it = json!({"name": name, "index": index});
                            // Cut short by a restart: it goes on where it was.
                            let resume = match part {
                                Some(p) => {
                                    sub.last.store(p.last, Ordering::SeqCst);
                                    sub.restore_part(p.resume.as_ref());
                                    p.resume
                                }
                                None => {
                                    self.emit(
                                        &sub,
                                        "MapIterationStarted",
                                        details("mapIterationStartedEventDetails", it.clone()),
                                    )
                                    .await?;
                                    None
                                }
                            };
                            let r = self.machine(&sub, processor, input, resume).await;
                            match r {
                                Ok(out) => {
                                    self.emit(
                                        &sub,
                                        "MapIterationSucceeded",
                                        details("mapIterationSucceededEventDetails", it),
                                    )
                                    .await?;
                                    Ok(outcome(Ok(out), started, now_ms()))
                                }
                                Err(e) if e.is_suspended() => Err(e),
                                Err(e) => {
                                    self.emit(
                                        &sub,
                                        "MapIterationFailed",
                                        details("mapIterationFailedEventDetails", it),
                                    )
                                    .await?;
                                    if tolerant {
                                        Ok(outcome(Err(e), started, now_ms()))
                                    } else {
                                        Err(e)
                                    }
                                }
                            }
                        }
                    });
                    let outcomes = match futures_util::future::try_join_all(runs).await {
                        Ok(o) => o,
                        Err(e) => {
                            if !e.is_suspended() {
                                self.emit(flow, "MapStateFailed", None).await?;
                            }
                            return Err(e);
                        }
                    };
                    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
                    if over_tolerance(failed, total, *tolerated_percentage, *tolerated_count) {
                        self.emit(flow, "MapStateFailed", None).await?;
                        return Err(threshold_exceeded());
                    }
                    let result = match writer {
                        Some(w) => {
                            let params = match &w.template {
                                Some(t) => arguments(Some(t), &effective, ctx)?,
                                None => json!({}),
                            };
                            match self
                                .write_results(w, params, name, ctx, outcomes, None)
                                .await
                            {
                                Ok(v) => v,
                                Err(e) => {
                                    self.emit(flow, "MapStateFailed", None).await?;
                                    return Err(e);
                                }
                            }
                        }
                        None => results_array(outcomes),
                    };
                    self.emit(flow, "MapStateSucceeded", None).await?;
                    result
                }
            }
            _ => unreachable!("work() runs only Task, Parallel and Map states"),
        };
        if jsonata {
            size_check(&result, name)?;
            let states = json!({"input": raw, "context": ctx, "result": result});
            return self.finish_jsonata(flow, &state.def, &states, result);
        }
        let result = match &state.result_selector {
            Some(sel) => crate::payload::render_in(
                sel,
                &Roots {
                    input: &result,
                    context: ctx,
                    vars: &vars,
                },
            )?,
            None => result,
        };
        size_check(&result, name)?;
        self.assign_jsonpath(flow, state.assign.as_ref(), &result, ctx, &vars)?;
        let output = apply_result(&state.result_path, raw.clone(), result)?;
        apply_output(&state.output_path, output, ctx, &vars)
    }

    /// Opens a distributed `Map`'s Map Run: says `MapStateStarted` (its length 0: the items
    /// are the Map Run's) and `MapRunStarted`, unless a restart finds them said already.
    async fn open_map_run(
        &self,
        flow: &Flow,
        name: &str,
        ctx: &Value,
        plan: MapRunPlan<'_>,
        runs: &dyn MapRuns,
        continued: Option<Continued>,
    ) -> Result<(String, Option<StatesError>), StatesError> {
        let (started, known) = match continued {
            Some(c) => {
                flow.last.store(c.started, Ordering::SeqCst);
                (c.started, c.map_run)
            }
            None => {
                let det = details("mapStateStartedEventDetails", json!({"length": 0}));
                (self.emit(flow, "MapStateStarted", det).await?, None)
            }
        };
        let (region, account, machine) = arn_parts(ctx);
        let execution = ctx["Execution"]["Id"].as_str().unwrap_or_default();
        let label = plan
            .d
            .label
            .clone()
            .unwrap_or_else(|| stable_uuid(&format!("{}\n{name}", ctx["StateMachine"]["Id"])));
        let machine_arn =
            format!("arn:aws:states:{region}:{account}:stateMachine:{machine}/{label}");
        // A redriven execution redrives the run its failed Map state had (idempotently: a
        // restart before `MapRunRedriven` was said finds it reopened).
        let redriven = match (&known, plan.redrive_run) {
            (None, Some(run)) => runs.redrive(&run).await?,
            _ => None,
        };
        // The run's id follows from the execution and its MapStateStarted: a restart between
        // opening the run and saying so finds the same run.
        let arn = match (&known, &redriven) {
            (Some(arn), _) | (None, Some((arn, _))) => arn.clone(),
            (None, None) => format!(
                "arn:aws:states:{region}:{account}:mapRun:{machine}/{label}:{}",
                stable_uuid(&format!("{execution}\n{started}"))
            ),
        };
        let ended = runs
            .open(MapRunSpec {
                arn: arn.clone(),
                execution_arn: execution.to_owned(),
                machine_arn,
                label,
                definition: plan.d.definition.clone(),
                express: plan.d.express,
                max_concurrency: plan.max_concurrency,
                tolerated_percentage: plan.tolerated_percentage,
                tolerated_count: plan.tolerated_count,
                trace: flow.current_span(),
            })
            .await?;
        match (known, redriven) {
            (Some(_), _) => {}
            (None, Some((_, count))) => {
                let det = json!({ "mapRunArn": arn, "redriveCount": count });
                self.emit(
                    flow,
                    "MapRunRedriven",
                    details("mapRunRedrivenEventDetails", det),
                )
                .await?;
            }
            (None, None) => {
                let det = details("mapRunStartedEventDetails", json!({ "mapRunArn": arn }));
                self.emit(flow, "MapRunStarted", det).await?;
            }
        }
        Ok((arn, ended))
    }

    /// Ends a Map Run that failed with `e`: its running children aborted, `MapRunFailed` and
    /// `MapStateFailed` said in one write. Answers the error the state fails with.
    async fn fail_map_run(
        &self,
        flow: &Flow,
        arn: &str,
        runs: &dyn MapRuns,
        e: StatesError,
    ) -> StatesError {
        if e.is_suspended() {
            return e;
        }
        if let Err(s) = runs.close(arn, RunEnd::Failed(e.clone())).await {
            return s;
        }
        let mut det = Map::new();
        if !e.error.is_empty() {
            det.insert("error".into(), json!(e.error));
        }
        if !e.cause.is_empty() {
            det.insert("cause".into(), json!(e.cause));
        }
        let events = vec![
            self.new_event(
                flow,
                "MapRunFailed",
                details("mapRunFailedEventDetails", Value::Object(det)),
            ),
            self.new_event(flow, "MapStateFailed", None),
        ];
        match self.journal.record(events, None).await {
            Ok(()) => e,
            Err(why) => suspended(why),
        }
    }

    /// Runs a Map Run's children, as many at once as it allows, and stops (the others
    /// aborted) once more have failed than it tolerates.
    async fn map_run_children(
        &self,
        arn: &str,
        runs: &dyn MapRuns,
        inputs: Vec<Value>,
        batched: bool,
        keep_input: bool,
    ) -> Result<Vec<ChildOutcome>, StatesError> {
        use futures_util::StreamExt as _;
        let items_of = |v: &Value| match batched {
            true => v["Items"].as_array().map_or(1, Vec::len),
            false => 1,
        };
        let total = inputs.len();
        runs.set_total(arn, total, inputs.iter().map(items_of).sum())
            .await?;
        let mut pending: futures_util::stream::FuturesUnordered<_> = inputs
            .into_iter()
            .enumerate()
            .map(|(index, input)| {
                let kept = keep_input.then(|| input.clone());
                let items = items_of(&input);
                async move {
                    let end = runs.child(arn, index, items, input).await;
                    ChildOutcome {
                        index,
                        result: end.result,
                        input: kept,
                        started: end.started_ms,
                        stopped: end.stopped_ms,
                        arn: Some(end.arn),
                    }
                }
            })
            .collect();
        let mut out = Vec::with_capacity(total);
        let mut failed = 0;
        while let Some(o) = pending.next().await {
            if let Err(e) = &o.result {
                // The child (or its Map Run) could not be kept: the parent stops too.
                if e.is_suspended() {
                    return Err(e.clone());
                }
                failed += 1;
                let (pct, count) = runs.tolerated(arn);
                if over_tolerance(failed, total, pct, count) {
                    return Err(threshold_exceeded());
                }
            }
            out.push(o);
        }
        out.sort_by_key(|o| o.index);
        Ok(out)
    }

    /// A distributed `Map`'s items from S3: one object parsed as its `ReaderConfig` says, or
    /// every object of a listing, page after page; at most `max`.
    async fn read_items(
        &self,
        r: &crate::asl::ItemReader,
        params: Value,
        max: Option<usize>,
    ) -> Result<Vec<Value>, StatesError> {
        let fail = |why: String| StatesError::new("States.ItemReaderFailed", why);
        let limit = max.unwrap_or(usize::MAX);
        let mut items = Vec::new();
        if r.listing {
            let mut input = params;
            loop {
                let page = self
                    .integrations
                    .call("s3", "ListObjectsV2", input.clone())
                    .await
                    .map_err(|(code, m)| fail(format!("{code}: {m}")))?;
                for o in page["Contents"].as_array().into_iter().flatten() {
                    if items.len() < limit {
                        items.push(crate::items::listing_item(o));
                    }
                }
                match page["NextContinuationToken"].as_str() {
                    Some(t) if page["IsTruncated"] == true && items.len() < limit => {
                        input["ContinuationToken"] = t.into();
                    }
                    _ => break,
                }
            }
            return Ok(items);
        }
        if r.input_type == crate::asl::InputType::Parquet {
            let object = self
                .integrations
                .call("s3", "GetObjectBase64", params)
                .await
                .map_err(|(code, m)| fail(format!("{code}: {m}")))?;
            use base64::Engine as _;
            let file = base64::engine::general_purpose::STANDARD
                .decode(object["Body"].as_str().unwrap_or(""))
                .map_err(|e| fail(format!("the object could not be read: {e}")))?;
            // Decoding is CPU work, and a file nimbus cannot convert may panic in the
            // reader: off the runtime, a panic is this Map's failure, not the execution's end.
            return tokio::task::spawn_blocking(move || crate::items::parquet_rows(file, limit))
                .await
                .map_err(|_| fail("the Parquet file has a column nimbus cannot convert".into()))?
                .map_err(fail);
        }
        let object = self
            .integrations
            .call("s3", "GetObject", params)
            .await
            .map_err(|(code, m)| fail(format!("{code}: {m}")))?;
        let text = object["Body"].as_str().unwrap_or("");
        if r.input_type == crate::asl::InputType::Manifest {
            let inventory = crate::items::inventory(text).map_err(fail)?;
            for key in &inventory.keys {
                if items.len() >= limit {
                    break;
                }
                let file = self
                    .integrations
                    .call(
                        "s3",
                        "GetObjectBase64",
                        json!({"Bucket": inventory.bucket, "Key": key}),
                    )
                    .await
                    .map_err(|(code, m)| fail(format!("{code}: {m} ({key})")))?;
                let text = inventory_text(file["Body"].as_str().unwrap_or(""))
                    .map_err(|why| fail(format!("{key}: {why}")))?;
                items.extend(
                    crate::items::inventory_rows(&text, &inventory.schema)
                        .map_err(|why| fail(format!("{key}: {why}")))?,
                );
            }
        } else {
            items = crate::items::parse(r, text).map_err(fail)?;
        }
        items.truncate(limit);
        Ok(items)
    }

    /// A distributed `Map`'s results through its `ResultWriter`: shaped by `WriterConfig`, and
    /// with a `Resource` written to S3 as Step Functions lays them out
    /// (`<Prefix>/<run>/SUCCEEDED_0.json`, `FAILED_0.json`, `manifest.json`), the state's
    /// result then naming the manifest.
    async fn write_results(
        &self,
        w: &crate::asl::ResultWriter,
        params: Value,
        state_name: &str,
        ctx: &Value,
        outcomes: Vec<ChildOutcome>,
        map_run: Option<&str>,
    ) -> Result<Value, StatesError> {
        use crate::asl::Transformation;
        let fail = |why: String| StatesError::new("States.ResultWriterFailed", why);
        let (region, account, machine) = arn_parts(ctx);
        // Inline iterations (an Express parent) name a Map Run and children of their own.
        let map_run_arn = match map_run {
            Some(arn) => arn.to_owned(),
            None => format!(
                "arn:aws:states:{region}:{account}:mapRun:{machine}/{state_name}:{}",
                uuid::Uuid::new_v4()
            ),
        };
        let run = map_run_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let children_machine = match map_run_arn.split_once(":mapRun:") {
            Some((head, tail)) => format!(
                "{head}:stateMachine:{}",
                tail.rsplit_once(':').map_or(tail, |(m, _)| m)
            ),
            None => String::new(),
        };
        let (mut succeeded, mut failed) = (Vec::new(), Vec::new());
        for o in outcomes {
            let ok = o.result.is_ok();
            let list = if ok { &mut succeeded } else { &mut failed };
            let value = match o.result {
                Ok(v) => v,
                Err(e) => json!({"Error": e.error, "Cause": e.cause}),
            };
            match w.transformation {
                Transformation::Compact => list.push(value),
                Transformation::Flatten => match value {
                    Value::Array(a) => list.extend(a),
                    v => list.push(v),
                },
                Transformation::None => {
                    let arn = o.arn.unwrap_or_else(|| {
                        format!(
                            "arn:aws:states:{region}:{account}:execution:{machine}/{state_name}:{}",
                            uuid::Uuid::new_v4()
                        )
                    });
                    let name = arn.rsplit(':').next().unwrap_or_default().to_owned();
                    let mut entry = json!({
                        "ExecutionArn": arn,
                        "Input": o.input.unwrap_or(Value::Null).to_string(),
                        "InputDetails": {"Included": true},
                        "Name": name,
                        "RedriveCount": 0,
                        "RedriveStatus": "NOT_REDRIVABLE",
                        "StartDate": crate::clock::format_ms(o.started),
                        "StateMachineArn": children_machine,
                        "Status": if ok { "SUCCEEDED" } else { "FAILED" },
                        "StopDate": crate::clock::format_ms(o.stopped),
                    });
                    if ok {
                        entry["Output"] = value.to_string().into();
                        entry["OutputDetails"] = json!({"Included": true});
                        entry["RedriveStatusReason"] =
                            "Execution is SUCCEEDED and cannot be redriven".into();
                    } else {
                        entry["Error"] = value["Error"].clone();
                        entry["Cause"] = value["Cause"].clone();
                        entry["RedriveStatusReason"] =
                            "Execution is FAILED and cannot be redriven".into();
                    }
                    list.push(entry);
                }
            }
        }
        if !w.to_s3 {
            succeeded.extend(failed);
            return Ok(Value::Array(succeeded));
        }
        let Some(bucket) = params["Bucket"].as_str() else {
            return Err(fail("The ResultWriter's Parameters need a Bucket".into()));
        };
        let prefix = params["Prefix"]
            .as_str()
            .unwrap_or("")
            .trim_end_matches('/');
        let base = if prefix.is_empty() {
            run.clone()
        } else {
            format!("{prefix}/{run}")
        };
        let mut files = json!({"FAILED": [], "PENDING": [], "SUCCEEDED": []});
        for (kind, list) in [("SUCCEEDED", succeeded), ("FAILED", failed)] {
            if list.is_empty() {
                continue;
            }
            let body = if w.jsonl {
                list.iter()
                    .map(|v| v.to_string() + "\n")
                    .collect::<String>()
            } else {
                Value::Array(list).to_string()
            };
            let key = format!("{base}/{kind}_0.json");
            let size = body.len();
            self.put_result(bucket, &key, body).await.map_err(fail)?;
            files[kind] = json!([{"Key": key, "Size": size}]);
        }
        let manifest_key = format!("{base}/manifest.json");
        let manifest = json!({
            "DestinationBucket": bucket,
            "MapRunArn": map_run_arn,
            "ResultFiles": files,
        });
        self.put_result(bucket, &manifest_key, manifest.to_string())
            .await
            .map_err(fail)?;
        Ok(json!({
            "MapRunArn": map_run_arn,
            "ResultWriterDetails": {"Bucket": bucket, "Key": manifest_key},
        }))
    }

    async fn put_result(&self, bucket: &str, key: &str, body: String) -> Result<(), String> {
        let input =
            json!({"Bucket": bucket, "Key": key, "Body": body, "ContentType": "application/json"});
        self.integrations
            .call("s3", "PutObject", input)
            .await
            .map(|_| ())
            .map_err(|(code, m)| format!("{code}: {m}"))
    }

    /// Runs a task's resource with its (rendered) parameters, recording the task's events.
    async fn task(
        &self,
        flow: &Flow,
        resource: &str,
        params: Value,
        callback: Option<(String, bool)>,
        heartbeat: Option<u64>,
    ) -> Result<Value, StatesError> {
        if let Some((token, submitted)) = callback {
            return self
                .callback_task(flow, resource, params, &token, submitted, heartbeat)
                .await;
        }
        if resource.split(':').nth(5) == Some("activity") {
            return self.activity_task(flow, resource, params, heartbeat).await;
        }
        if let Some(function) = plain_function(resource) {
            let det = json!({"resource": resource, "input": text(&params), "inputDetails": {"truncated": false}});
            self.emit(
                flow,
                "LambdaFunctionScheduled",
                details("lambdaFunctionScheduledEventDetails", det),
            )
            .await?;
            self.emit(flow, "LambdaFunctionStarted", None).await?;
            let answer = self
                .invoke(function, &params, false, flow.current_span())
                .await
                .map(|(v, _)| v);
            return match answer {
                Ok(out) => {
                    let det = json!({"output": text(&out), "outputDetails": {"truncated": false}});
                    self.emit(
                        flow,
                        "LambdaFunctionSucceeded",
                        details("lambdaFunctionSucceededEventDetails", det),
                    )
                    .await?;
                    Ok(out)
                }
                Err(e) => {
                    let det = json!({"error": e.error, "cause": e.cause});
                    self.emit(
                        flow,
                        "LambdaFunctionFailed",
                        details("lambdaFunctionFailedEventDetails", det),
                    )
                    .await?;
                    Err(e)
                }
            };
        }
        let (resource_type, short) = task_kind(resource);
        let det = json!({"resourceType": resource_type, "resource": short, "region": self.region,
                         "parameters": text(&params)});
        self.emit(
            flow,
            "TaskScheduled",
            details("taskScheduledEventDetails", det),
        )
        .await?;
        let started = json!({"resourceType": resource_type, "resource": short});
        self.emit(
            flow,
            "TaskStarted",
            details("taskStartedEventDetails", started),
        )
        .await?;
        let result = self
            .integration(resource, params, flow.current_span())
            .await;
        match result {
            Ok(out) => {
                let det = json!({"resourceType": resource_type, "resource": short,
                                 "output": text(&out), "outputDetails": {"truncated": false}});
                self.emit(
                    flow,
                    "TaskSucceeded",
                    details("taskSucceededEventDetails", det),
                )
                .await?;
                Ok(out)
            }
            Err(e) => {
                let det = json!({"resourceType": resource_type, "resource": short,
                                 "error": e.error, "cause": e.cause});
                self.emit(flow, "TaskFailed", details("taskFailedEventDetails", det))
                    .await?;
                Err(e)
            }
        }
    }

    /// An activity task: queued for the activity's workers (`GetActivityTask`), answered with
    /// `SendTaskSuccess`/`SendTaskFailure`, kept alive with `SendTaskHeartbeat`.
    async fn activity_task(
        &self,
        flow: &Flow,
        resource: &str,
        params: Value,
        heartbeat: Option<u64>,
    ) -> Result<Value, StatesError> {
        let token = crate::tokens::Tokens::new_token();
        let (mut answer, beat) = self.tokens.register(&token);
        let _forget = ForgetToken(&self.tokens, &token);
        let mut det = json!({"resource": resource, "input": text(&params), "inputDetails": {"truncated": false}});
        if let Some(h) = heartbeat {
            det["heartbeatInSeconds"] = json!(h);
        }
        self.emit(
            flow,
            "ActivityScheduled",
            details("activityScheduledEventDetails", det),
        )
        .await?;
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        self.tokens.schedule(
            resource,
            crate::tokens::ActivityTask {
                token: token.clone(),
                input: text(&params),
                started: started_tx,
            },
        );
        // The heartbeat clock runs from the moment a worker has the task.
        let worker = started_rx.await.unwrap_or_default();
        self.emit(
            flow,
            "ActivityStarted",
            details(
                "activityStartedEventDetails",
                json!({ "workerName": worker }),
            ),
        )
        .await?;
        let events = TokenEvents {
            prefix: "Activity",
            fields: json!({}),
        };
        self.wait_token(flow, &mut answer, &beat, heartbeat, &events)
            .await
    }

    /// A `.waitForTaskToken` task: the resource is called with the token in its parameters,
    /// then the task waits for `SendTaskSuccess`/`SendTaskFailure` (or a missed heartbeat).
    async fn callback_task(
        &self,
        flow: &Flow,
        resource: &str,
        params: Value,
        token: &str,
        submitted: bool,
        heartbeat: Option<u64>,
    ) -> Result<Value, StatesError> {
        let (resource_type, short) = task_kind(resource);
        let (mut answer, beat) = self.tokens.register(token);
        let _forget = ForgetToken(&self.tokens, token);
        let base = resource.trim_end_matches(".waitForTaskToken");
        if !submitted {
            let mut det = json!({"resourceType": resource_type, "resource": short, "region": self.region,
                                 "parameters": text(&params), TOKEN_FIELD: token});
            if let Some(h) = heartbeat {
                det["heartbeatInSeconds"] = json!(h);
            }
            self.emit(
                flow,
                "TaskScheduled",
                details("taskScheduledEventDetails", det),
            )
            .await?;
            let started = json!({"resourceType": resource_type, "resource": short});
            self.emit(
                flow,
                "TaskStarted",
                details("taskStartedEventDetails", started),
            )
            .await?;
            match self.integration(base, params, flow.current_span()).await {
                Ok(out) => {
                    let det = json!({"resourceType": resource_type, "resource": short,
                                     "output": text(&out), "outputDetails": {"truncated": false}});
                    self.emit(
                        flow,
                        "TaskSubmitted",
                        details("taskSubmittedEventDetails", det),
                    )
                    .await?;
                }
                Err(e) => {
                    let det = json!({"resourceType": resource_type, "resource": short,
                                     "error": e.error, "cause": e.cause});
                    self.emit(flow, "TaskFailed", details("taskFailedEventDetails", det))
                        .await?;
                    return Err(e);
                }
            }
        }
        let events = TokenEvents {
            prefix: "Task",
            fields: json!({"resourceType": resource_type, "resource": short}),
        };
        self.wait_token(flow, &mut answer, &beat, heartbeat, &events)
            .await
    }

    /// Waits for a task token's answer (`SendTaskSuccess`/`SendTaskFailure`), kept alive by
    /// heartbeats, and records how the task ended; the `SendTask*` call is answered only once
    /// that record is durable.
    async fn wait_token(
        &self,
        flow: &Flow,
        answer: &mut tokio::sync::oneshot::Receiver<crate::tokens::Answered>,
        beat: &tokio::sync::Notify,
        heartbeat: Option<u64>,
        events: &TokenEvents,
    ) -> Result<Value, StatesError> {
        let mut recorded = None;
        let result = loop {
            let missed = async {
                match heartbeat {
                    Some(h) => tokio::time::sleep(Duration::from_secs(h)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                a = &mut *answer => match a {
                    Ok((r, ack)) => {
                        recorded = Some(ack);
                        break r;
                    }
                    Err(_) => break Err(StatesError::new("States.TaskFailed", "the task's token was dropped")),
                },
                _ = beat.notified() => continue,
                _ = missed => {
                    let det = events.details(json!({"error": "States.HeartbeatTimeout"}));
                    self.emit(flow, &events.kind("TimedOut"), details(&events.field("TimedOut"), det)).await?;
                    return Err(StatesError::new("States.HeartbeatTimeout", ""));
                }
            }
        };
        let (end, det) = match &result {
            Ok(out) => (
                "Succeeded",
                json!({"output": text(out), "outputDetails": {"truncated": false}}),
            ),
            Err(e) => ("Failed", json!({"error": e.error, "cause": e.cause})),
        };
        let det = events.details(det);
        self.emit(flow, &events.kind(end), details(&events.field(end), det))
            .await?;
        if let Some(ack) = recorded {
            let _ = ack.send(());
        }
        result
    }

    /// A function's answer as the task's result; its error (the function's `errorType`) as
    /// the task's error. `lambda:invoke` gives the error document compacted as the cause, the
    /// older function-ARN form gives it as the function wrote it.
    async fn invoke(
        &self,
        function: &str,
        payload: &Value,
        compact_cause: bool,
        trace: Option<String>,
    ) -> Result<(Value, Invoked), StatesError> {
        let bytes = serde_json::to_vec(payload).unwrap_or_default();
        let answer = self.integrations.invoke(function, bytes, trace).await?;
        let parsed: Value = serde_json::from_slice(&answer.payload).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(&answer.payload).into_owned())
        });
        if answer.function_error.is_some() {
            let error = parsed["errorType"]
                .as_str()
                .filter(|t| !t.is_empty())
                .unwrap_or("Lambda.Unknown")
                .to_owned();
            let cause = match compact_cause && parsed.is_object() {
                true => parsed.to_string(),
                false => String::from_utf8_lossy(&answer.payload).into_owned(),
            };
            return Err(StatesError::new(error, cause));
        }
        Ok((parsed, answer))
    }

    async fn integration(
        &self,
        resource: &str,
        params: Value,
        trace: Option<String>,
    ) -> Result<Value, StatesError> {
        let rest = resource.strip_prefix("arn:aws:states:::").unwrap_or("");
        match rest {
            "lambda:invoke" => {
                let Some(function) = params["FunctionName"].as_str() else {
                    return Err(StatesError::runtime(
                        "The field 'FunctionName' is required by arn:aws:states:::lambda:invoke",
                    ));
                };
                let function = match params["Qualifier"].as_str() {
                    Some(q) if !function.contains(':') => format!("{function}:{q}"),
                    _ => function.to_owned(),
                };
                let payload = params.get("Payload").cloned().unwrap_or(json!({}));
                let (parsed, answer) = self.invoke(&function, &payload, true, trace).await?;
                let headers = json!({"Connection": "keep-alive", "Content-Type": "application/json",
                                     "X-Amz-Executed-Version": answer.executed_version,
                                     "x-amzn-Remapped-Content-Length": "0",
                                     "x-amzn-RequestId": answer.request_id});
                Ok(json!({
                    "ExecutedVersion": answer.executed_version,
                    "Payload": parsed,
                    "SdkHttpMetadata": {
                        "AllHttpHeaders": headers.as_object().map(|h| h.iter().map(|(k, v)| (k.clone(), json!([v]))).collect::<serde_json::Map<_, _>>()),
                        "HttpHeaders": headers,
                        "HttpStatusCode": 200
                    },
                    "SdkResponseMetadata": {"RequestId": answer.request_id},
                    "StatusCode": 200
                }))
            }
            _ => {
                let Some((service, action)) = service_action(rest) else {
                    return Err(StatesError::new(
                        "States.TaskFailed",
                        format!("nimbus does not serve the integration {resource} yet"),
                    ));
                };
                let input = shape_service_input(&service, &action, params);
                match self.integrations.call(&service, &action, input).await {
                    Ok(v) => Ok(v),
                    // A child execution's failure (`.sync`) is already a States error.
                    // So is an `apigateway:invoke` answer's (`ApiGateway.403`, the body as cause).
                    Err((code, message))
                        if code.starts_with("States.") || code.starts_with("ApiGateway.") =>
                    {
                        Err(StatesError::new(code, message))
                    }
                    Err((code, message)) => Err(StatesError::new(
                        format!("{}.{code}", service_error_prefix(&service)),
                        format!(
                            "{message} (Service: {service}, Status Code: 400, Error Code: {code})"
                        ),
                    )),
                }
            }
        }
    }
}

/// Items grouped as `ItemBatcher` says: at most `max_items` a batch and at most `max_bytes` of
/// items (a single larger item is a batch of its own).
/// Where a callback task's `TaskScheduled` keeps its token, so that the task, in a Map
/// iteration or Parallel branch (which keep no cursor), waits on it again after a restart:
/// nimbus's own field, never shown (see [`shown_details`]).
pub(crate) const TOKEN_FIELD: &str = "nimbusTaskToken";

/// An event's details as the history API and the logs show them: without nimbus's own fields,
/// and without the data (`input`, `output`, `parameters`) unless it is included.
pub(crate) fn shown_details(details: &Value, include_data: bool) -> Value {
    let mut d = details.clone();
    if let Some(obj) = d.as_object_mut() {
        obj.remove(TOKEN_FIELD);
        if !include_data {
            for key in ["input", "output", "parameters"] {
                obj.remove(key);
            }
        }
    }
    d
}

/// The largest inventory file a `MANIFEST` reader unpacks.
const INVENTORY_FILE_LIMIT: u64 = 256 << 20;

/// An S3 Inventory file's text: gzip'd, as S3 writes CSV inventories, or plain.
fn inventory_text(body_base64: &str) -> Result<String, String> {
    use base64::Engine as _;
    use std::io::Read as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body_base64)
        .map_err(|e| format!("the file could not be read: {e}"))?;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return String::from_utf8(bytes).map_err(|_| "the file is not UTF-8 text".to_owned());
    }
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .take(INVENTORY_FILE_LIMIT + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("the file is not gzip'd UTF-8 text: {e}"))?;
    if text.len() as u64 > INVENTORY_FILE_LIMIT {
        return Err(format!(
            "the file unpacks to more than {} MiB",
            INVENTORY_FILE_LIMIT >> 20
        ));
    }
    Ok(text)
}

/// The region, account and state machine name of the execution's state machine.
fn arn_parts(ctx: &Value) -> (&str, &str, &str) {
    let machine_arn = ctx["StateMachine"]["Id"].as_str().unwrap_or("");
    let parts: Vec<&str> = machine_arn.splitn(7, ':').collect();
    match parts.as_slice() {
        [_, _, _, region, account, _, machine] => (*region, *account, *machine),
        _ => ("us-east-1", "123456789012", "machine"),
    }
}

/// A UUID-shaped name that is the same for the same `seed`: a Map Run's ARN must be found
/// again after a restart, from what the history already says.
fn stable_uuid(seed: &str) -> String {
    use sha2::Digest as _;
    let mut b: [u8; 16] = sha2::Sha256::digest(seed.as_bytes())[..16]
        .try_into()
        .unwrap_or_default();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// More failed children than a Map tolerates: with no tolerance set, any.
fn over_tolerance(failed: usize, total: usize, pct: Option<f64>, count: Option<u64>) -> bool {
    if failed == 0 {
        return false;
    }
    if pct.is_none() && count.is_none() {
        return true;
    }
    count.is_some_and(|n| failed as u64 > n)
        || pct.is_some_and(|p| total > 0 && (failed as f64) * 100.0 / (total as f64) > p)
}

fn threshold_exceeded() -> StatesError {
    StatesError::new(
        "States.ExceedToleratedFailureThreshold",
        "The specified tolerated failure threshold was exceeded",
    )
}

/// A Map's result without a `ResultWriter`: each iteration's output, or its error.
fn results_array(outcomes: Vec<ChildOutcome>) -> Value {
    Value::Array(
        outcomes
            .into_iter()
            .map(|o| {
                o.result
                    .unwrap_or_else(|e| json!({"Error": e.error, "Cause": e.cause}))
            })
            .collect(),
    )
}

/// What a distributed `Map` state asks of its Map Run.
struct MapRunPlan<'a> {
    d: &'a crate::asl::Distributed,
    max_concurrency: usize,
    tolerated_percentage: Option<f64>,
    tolerated_count: Option<u64>,
    /// The run a redriven execution's first attempt of this state redrives.
    redrive_run: Option<String>,
}

fn batches(items: Vec<Value>, b: &crate::asl::Batcher, batch_input: Option<Value>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut bytes = 0u64;
    let batch = |items: Vec<Value>| {
        let mut v = json!({ "Items": items });
        if let Some(i) = &batch_input {
            v["BatchInput"] = i.clone();
        }
        v
    };
    for item in items {
        let size = serde_json::to_vec(&item)
            .map(|v| v.len() as u64)
            .unwrap_or(0);
        let full = current.len() as u64 >= b.max_items || bytes + size > b.max_bytes;
        if !current.is_empty() && full {
            out.push(batch(std::mem::take(&mut current)));
            bytes = 0;
        }
        bytes += size;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(batch(current));
    }
    out
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn suspended(why: String) -> StatesError {
    StatesError::suspended(why)
}

/// Step Functions' task event `resourceType`/`resource` for a service integration ARN:
/// `arn:aws:states:::lambda:invoke` is `("lambda", "invoke")`.
fn task_kind(resource: &str) -> (String, String) {
    let rest = resource
        .strip_prefix("arn:aws:states:::")
        .unwrap_or(resource);
    let rest = rest.strip_prefix("aws-sdk:").unwrap_or(rest);
    match rest.split_once(':') {
        Some((t, r)) => (t.to_owned(), r.to_owned()),
        None => (rest.to_owned(), String::new()),
    }
}

/// The function of a `Resource` that is a Lambda function's ARN (the older task form).
fn plain_function(resource: &str) -> Option<&str> {
    let parts: Vec<&str> = resource.splitn(7, ':').collect();
    (parts.len() >= 7 && parts[2] == "lambda" && parts[5] == "function").then_some(resource)
}

/// `sqs:sendMessage` -> `("sqs", "SendMessage")`; `aws-sdk:dynamodb:getItem` likewise.
fn service_action(rest: &str) -> Option<(String, String)> {
    let rest = rest.strip_prefix("aws-sdk:").unwrap_or(rest);
    let (service, action) = rest.split_once(':')?;
    // `.sync` is served for Step Functions' own executions; other services' `.sync` jobs
    // (Batch, ECS, Glue, ...) are not in nimbus.
    if action.contains('.') && service != "states" {
        return None;
    }
    (!action.is_empty()).then(|| (service.to_owned(), crate::pascal(action)))
}

/// Step Functions' optimized integrations accept JSON where the API wants text (an SQS body,
/// an SNS message, an event's detail) and serialize it.
fn shape_service_input(service: &str, action: &str, mut params: Value) -> Value {
    let stringify = |v: &mut Value| {
        if !v.is_string() && !v.is_null() {
            *v = Value::String(v.to_string());
        }
    };
    match (service, action) {
        ("sqs", "SendMessage") => {
            if let Some(b) = params.get_mut("MessageBody") {
                stringify(b)
            }
        }
        ("sns", "Publish") => {
            if let Some(m) = params.get_mut("Message") {
                stringify(m)
            }
        }
        ("events" | "eventbridge", "PutEvents") => {
            if let Some(entries) = params.get_mut("Entries").and_then(Value::as_array_mut) {
                for e in entries {
                    if let Some(d) = e.get_mut("Detail") {
                        stringify(d)
                    }
                }
            }
        }
        _ => {}
    }
    params
}

/// The prefix of a service's errors in Step Functions: `DynamoDB.ConditionalCheckFailedException`.
fn service_error_prefix(service: &str) -> &str {
    match service {
        "dynamodb" => "DynamoDB",
        "sqs" => "SQS",
        "sns" => "SNS",
        "events" | "eventbridge" => "EventBridge",
        "states" | "sfn" => "Sfn",
        "ssm" => "Ssm",
        "secretsmanager" => "SecretsManager",
        "lambda" => "Lambda",
        other => other,
    }
}

/// The delay before retry number `attempt + 1`: `IntervalSeconds * BackoffRate^attempt`, at
/// most `MaxDelaySeconds`, and with `JitterStrategy: FULL` a random part of it.
pub fn retry_delay(r: &Retrier, attempt: u32) -> Duration {
    let mut s = r.interval_seconds * r.backoff_rate.powi(attempt as i32);
    if let Some(max) = r.max_delay_seconds {
        s = s.min(max);
    }
    if r.full_jitter {
        s *= rand::random::<f64>();
    }
    Duration::from_secs_f64(s.clamp(0.0, 99_999_999.0))
}
