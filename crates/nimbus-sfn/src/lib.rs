//! AWS Step Functions, as nimbus serves it (AWS JSON 1.0, `AWSStepFunctions.<Op>`).
//!
//! The Amazon States Language is interpreted natively: `asl` parses and validates definitions,
//! `path`, `payload`, `intrinsic` and `choice` are the pure JSONPath processing, `engine` runs
//! an execution state by state. Standard executions keep their history and a cursor in
//! `<state-dir>/stepfunctions.db` (`state`), every event durable before the execution moves
//! on, and continue after a restart where they were. Express executions run in memory and keep
//! no history, as on AWS. `ops` is the API, one function per operation.

pub mod asl;
pub mod choice;
pub mod clock;
pub mod engine;
pub mod error;
pub mod intrinsic;
pub mod items;
pub mod jsonata;
mod logging;
mod maprun;
mod ops;
pub mod path;
pub mod payload;
mod state;
pub mod tokens;

use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex, OnceLock};

use nimbus_store::Database;
use serde_json::{json, Value};

pub use engine::{Integrations, Invoked};
pub use error::StatesError;

/// `Name` -> `name`: an SDK's PascalCase member name as the JSON APIs spell it (Step Functions'
/// task parameters, CloudFormation's properties).
pub fn camel(name: &str) -> String {
    let mut c = name.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

/// `name` -> `Name`: a JSON API's member name as the SDKs (and task results) spell it.
pub fn pascal(name: &str) -> String {
    let mut c = name.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The service's own errors: the code clients read from `__type`, and its message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SfnError {
    #[error("{message}")]
    Service { code: &'static str, message: String },
    /// nimbus's own failure (its database).
    #[error("{0}")]
    Internal(String),
}

impl SfnError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> SfnError {
        SfnError::Service {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            SfnError::Service { code, .. } => code,
            SfnError::Internal(_) => "InternalServerError",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            SfnError::Service { .. } => 400,
            SfnError::Internal(_) => 500,
        }
    }

    /// The JSON body of the error: `__type` in Step Functions' namespace (the SDKs read what
    /// follows `#`), `message` lower-case.
    pub fn body(&self) -> Value {
        let ns = match self.code() {
            "ValidationException" => "com.amazon.coral.validate",
            _ => "com.amazonaws.swf.service.v2.model",
        };
        json!({"__type": format!("{ns}#{}", self.code()), "message": self.to_string()})
    }
}

impl From<nimbus_store::StoreError> for SfnError {
    fn from(e: nimbus_store::StoreError) -> SfnError {
        SfnError::Internal(e.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct SfnConfig {
    pub region: String,
    pub account: String,
    /// Multiplies every wait: `--delay-scale`.
    pub delay_scale: f64,
}

/// A state machine from the template (`AWS::Serverless::StateMachine`,
/// `AWS::StepFunctions::StateMachine`), its definition already substituted.
#[derive(Debug, Clone)]
pub struct TemplateMachine {
    pub name: String,
    /// `STANDARD` or `EXPRESS`.
    pub kind: String,
    pub definition: String,
    pub role_arn: String,
    /// `loggingConfiguration`, `tracingConfiguration` as DescribeStateMachine shows them.
    pub settings: Value,
}

/// A state machine as the service holds it: its row and its parsed definition.
pub(crate) struct MachineEntry {
    pub row: state::MachineRow,
    pub machine: Arc<asl::Machine>,
    /// Set when the entry is a published version (reached by its ARN or through an alias).
    pub version_arn: Option<String>,
    pub alias_arn: Option<String>,
}

/// Step Functions: cheap to clone, one per process.
#[derive(Clone)]
pub struct StepFunctions {
    inner: Arc<Inner>,
}

/// Writes one line to a log group (`group`, `stream`, `line`).
pub type LogSink = Box<dyn Fn(&str, &str, String) + Send + Sync>;

pub(crate) struct Inner {
    pub db: Arc<Database>,
    pub config: SfnConfig,
    pub integrations: OnceLock<Arc<dyn Integrations>>,
    /// State machines by ARN.
    pub machines: Mutex<HashMap<String, Arc<MachineEntry>>>,
    /// Running executions (Standard and Express) by ARN: stopping one aborts its task.
    pub running: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// Tokens of `.waitForTaskToken` tasks waiting for an answer.
    pub tokens: Arc<tokens::Tokens>,
    pub telemetry: OnceLock<Arc<nimbus_telemetry::Telemetry>>,
    /// Where executions' logs go (`loggingConfiguration` destinations): a log group, a stream,
    /// a line.
    pub log_sink: OnceLock<LogSink>,
    /// Tasks waiting for a Standard execution to end (`states:startExecution.sync`).
    pub waiters: Mutex<HashMap<String, Vec<tokio::sync::oneshot::Sender<()>>>>,
    /// Distributed Maps' Map Runs while they run.
    pub map_runs: maprun::LiveRuns,
}

impl StepFunctions {
    /// Opens `<state-dir>/stepfunctions.db` (or a database in memory when `path` is `None`).
    pub fn open(path: Option<&FsPath>, config: SfnConfig) -> Result<StepFunctions, SfnError> {
        let db = match path {
            Some(p) => Database::open(p, state::MIGRATIONS)?,
            None => Database::in_memory(state::MIGRATIONS)?,
        };
        let db = Arc::new(db);
        // Closed executions are kept 90 days, as on AWS.
        const RETENTION_MS: u64 = 90 * 24 * 3600 * 1000;
        state::purge_closed(&db, clock::now_ms().saturating_sub(RETENTION_MS))?;
        let mut machines = HashMap::new();
        for row in state::machines(&db)? {
            // A definition was valid when stored; one that no longer parses (an older nimbus
            // accepted it) is kept but cannot start executions.
            if let Ok(m) = asl::parse(&row.definition) {
                machines.insert(
                    row.arn.clone(),
                    Arc::new(MachineEntry {
                        row,
                        machine: Arc::new(m),
                        version_arn: None,
                        alias_arn: None,
                    }),
                );
            }
        }
        Ok(StepFunctions {
            inner: Arc::new(Inner {
                db,
                config,
                integrations: OnceLock::new(),
                machines: Mutex::new(machines),
                running: Mutex::new(HashMap::new()),
                tokens: Arc::default(),
                telemetry: OnceLock::new(),
                log_sink: OnceLock::new(),
                waiters: Mutex::new(HashMap::new()),
                map_runs: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Connects tasks to the functions and services nimbus runs. Set once, before
    /// [`StepFunctions::resume`]; tasks started before it fail with `States.TaskFailed`.
    pub fn set_integrations(&self, integrations: Arc<dyn Integrations>) {
        let _ = self.inner.integrations.set(integrations);
    }

    /// Counts executions and transitions on `/metrics`. Set once, before executions start.
    pub fn set_telemetry(&self, telemetry: Arc<nimbus_telemetry::Telemetry>) {
        let _ = self.inner.telemetry.set(telemetry);
    }

    /// Lets executions log to CloudWatch Logs log groups, as a machine's
    /// `loggingConfiguration` asks; the binary, which owns the log files, sets it once.
    pub fn set_log_sink(&self, sink: LogSink) {
        let _ = self.inner.log_sink.set(sink);
    }

    /// Serves one API call.
    pub async fn dispatch(&self, action: &str, input: &Value) -> Result<Value, SfnError> {
        ops::dispatch(self, action, input).await
    }

    /// Creates or updates the template's state machines; machines a previous run's template
    /// had and this one does not are deleted. Errors name the machine and the definition's
    /// problems.
    pub fn apply_template(&self, machines: &[TemplateMachine]) -> Result<(), String> {
        ops::apply_template(self, machines)
    }

    /// Continues the Standard executions a previous run left running. Call once the
    /// integrations are set.
    pub fn resume(&self) -> Result<usize, SfnError> {
        ops::resume(self)
    }

    /// Starts an execution of the state machine named `machine` with `input` (JSON text), as an
    /// EventBridge rule's target does; the execution is committed before this returns. Needs a
    /// tokio runtime (the execution runs on it).
    pub fn start_now(&self, machine: &str, input: &str) -> Result<String, SfnError> {
        ops::start_now(self, machine, input)
    }

    /// The ARN of the state machine named `name`.
    pub fn machine_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:stateMachine:{name}",
            self.inner.config.region, self.inner.config.account
        )
    }

    /// Commits and writes of the service's database (group commit at work).
    pub fn commit_stats(&self) -> nimbus_store::CommitStats {
        self.inner.db.commit_stats()
    }
}
