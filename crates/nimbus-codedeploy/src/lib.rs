//! CodeDeploy's Lambda deployments, as SAM's `DeploymentPreference` sets them up: when a
//! function with `AutoPublishAlias` gets a new version, traffic on the alias moves to it by the
//! configuration's steps (`config.rs`), after the `PreTraffic` hook and before the
//! `PostTraffic` hook; an alarm in ALARM or a failed hook rolls the alias back to the version
//! it had. Waits are scaled by `--delay-scale`.
//!
//! Durable: every deployment is a row of `<state-dir>/codedeploy.db`, written at each change
//! before it takes effect on the alias. A deployment that was running when nimbus stopped is
//! rolled back at the next start ([`Deployments::resume`]), so no alias is left at a weight
//! nobody chose.
//!
//! The API is CodeDeploy's JSON 1.1 (`X-Amz-Target: CodeDeploy_20141006.*`): `GetDeployment`,
//! `ListDeployments`, `ListApplications`, `ListDeploymentGroups`, `StopDeployment` and the hooks'
//! `PutLifecycleEventHookExecutionStatus`.

pub mod config;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nimbus_lambda::{AliasUpdate, InvokeRequest, Platform};
use nimbus_store::Database;
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub use config::{Preference, Routing};

/// SAM's CodeDeploy application for a template's deployments.
pub const APPLICATION: &str = "ServerlessDeploymentApplication";
/// CodeDeploy waits this long for a hook to report (one hour), scaled.
const HOOK_TIMEOUT: Duration = Duration::from_secs(3600);
/// How often a running deployment looks at its alarms.
const ALARM_TICK: Duration = Duration::from_millis(50);

const MIGRATIONS: &[&str] = &["
    CREATE TABLE deployments (
        id TEXT PRIMARY KEY,
        function TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX deployments_by_time ON deployments (created_ms);"];

#[derive(Debug, thiserror::Error)]
pub enum CodeDeployError {
    #[error("{message}")]
    Api { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] nimbus_store::StoreError),
    #[error("codedeploy.db: {0}")]
    Sql(#[from] rusqlite::Error),
}

impl CodeDeployError {
    fn api(code: &'static str, message: impl Into<String>) -> Self {
        Self::Api {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Api { .. } => 400,
            _ => 500,
        }
    }

    /// The AWS JSON 1.1 error body.
    pub fn body(&self) -> Value {
        let code = match self {
            Self::Api { code, .. } => code,
            _ => "InternalFailure",
        };
        json!({ "__type": code, "message": self.to_string() })
    }
}

/// Which alarms are in ALARM now (the binary reads nimbus's alarm evaluators).
pub type AlarmStates = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The deployments of one nimbus. Cheap to clone.
#[derive(Clone)]
pub struct Deployments {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    platform: Platform,
    alarms: AlarmStates,
    scale: f64,
    /// Hook executions waiting for `PutLifecycleEventHookExecutionStatus`, by execution id.
    hooks: Mutex<HashMap<String, Hook>>,
    /// `StopDeployment` requests, by deployment id.
    stops: Mutex<HashMap<String, oneshot::Sender<()>>>,
}

struct Hook {
    deployment: String,
    answer: Option<oneshot::Sender<String>>,
}

/// A deployment as stored and as `GetDeployment` describes it.
#[derive(Debug, Clone)]
struct Record {
    id: String,
    function: String,
    alias: String,
    from: String,
    to: String,
    config_name: String,
    /// `InProgress`, `Succeeded`, `Failed` or `Stopped`.
    status: String,
    created_ms: u64,
    completed_ms: Option<u64>,
    error: Option<(String, String)>,
    rolled_back: bool,
    /// What happened, in order: `(time ms, text)`.
    events: Vec<(u64, String)>,
    /// The alias over time: `(time ms, weight of the new version)`.
    weights: Vec<(u64, f64)>,
}

impl Record {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id, "function": self.function, "alias": self.alias, "from": self.from,
            "to": self.to, "config": self.config_name, "status": self.status,
            "created_ms": self.created_ms, "completed_ms": self.completed_ms,
            "error": self.error.as_ref().map(|(c, m)| json!({"code": c, "message": m})),
            "rolled_back": self.rolled_back,
            "events": self.events.iter().map(|(t, e)| json!({"time_ms": t, "text": e})).collect::<Vec<_>>(),
            "weights": self.weights.iter().map(|(t, w)| json!({"time_ms": t, "weight": w})).collect::<Vec<_>>(),
        })
    }

    fn from_json(v: &Value) -> Option<Record> {
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        Some(Record {
            id: s("id")?,
            function: s("function")?,
            alias: s("alias")?,
            from: s("from")?,
            to: s("to")?,
            config_name: s("config")?,
            status: s("status")?,
            created_ms: v["created_ms"].as_u64()?,
            completed_ms: v["completed_ms"].as_u64(),
            error: v["error"]["code"].as_str().map(|c| {
                (
                    c.to_owned(),
                    v["error"]["message"].as_str().unwrap_or("").to_owned(),
                )
            }),
            rolled_back: v["rolled_back"].as_bool().unwrap_or(false),
            events: v["events"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| {
                            Some((e["time_ms"].as_u64()?, e["text"].as_str()?.to_owned()))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            weights: v["weights"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| Some((e["time_ms"].as_u64()?, e["weight"].as_f64()?)))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    fn event(&mut self, text: impl Into<String>) {
        self.events.push((now_ms(), text.into()));
    }
}

fn now_ms() -> u64 {
    nimbus_lambda::epoch_ms()
}

/// A CodeDeploy deployment id: `d-` and nine characters.
fn deployment_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let tail: String = (0..9)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("d-{tail}")
}

/// Why a deployment stops early.
enum Stop {
    Alarm(String),
    Hook(String),
    Requested,
}

impl Deployments {
    /// Opens `<state-dir>/codedeploy.db` (`None`: in memory).
    pub fn open(
        path: Option<&std::path::Path>,
        platform: Platform,
        alarms: AlarmStates,
        scale: f64,
    ) -> Result<Self, CodeDeployError> {
        let db = match path {
            Some(p) => Database::open(p, MIGRATIONS)?,
            None => Database::in_memory(MIGRATIONS)?,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                platform,
                alarms,
                scale,
                hooks: Mutex::new(HashMap::new()),
                stops: Mutex::new(HashMap::new()),
            }),
        })
    }

    fn save(&self, r: &Record) -> Result<(), CodeDeployError> {
        self.inner.db.lock().execute(
            "INSERT OR REPLACE INTO deployments (id, function, created_ms, status, body)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                r.id,
                r.function,
                r.created_ms,
                r.status,
                r.to_json().to_string()
            ],
        )?;
        Ok(())
    }

    fn load(&self, id: &str) -> Result<Option<Record>, CodeDeployError> {
        let body: Option<String> = self
            .inner
            .db
            .lock()
            .query_row("SELECT body FROM deployments WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(body
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .and_then(|v| Record::from_json(&v)))
    }

    fn all(&self) -> Result<Vec<Record>, CodeDeployError> {
        let conn = self.inner.db.lock();
        let mut stmt = conn.prepare("SELECT body FROM deployments ORDER BY created_ms")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in rows {
            if let Some(r) = serde_json::from_str::<Value>(&body?)
                .ok()
                .and_then(|v| Record::from_json(&v))
            {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Rolls back the deployments that were running when nimbus stopped. Returns how many.
    pub fn resume(&self) -> Result<usize, CodeDeployError> {
        let mut n = 0;
        for mut r in self.all()? {
            if r.status != "InProgress" {
                continue;
            }
            n += 1;
            let why = "nimbus stopped during the deployment";
            self.roll_back(&mut r, "Stopped", "DEPLOYMENT_STOPPED", why);
        }
        Ok(n)
    }

    /// The deployment of `alias` to version `to` is running: shifting from `from` by
    /// `preference`. Returns its id; the deployment runs in a task of its own.
    pub fn start(
        &self,
        function: &str,
        alias: &str,
        from: &str,
        to: &str,
        preference: Preference,
    ) -> Result<String, CodeDeployError> {
        let mut r = Record {
            id: deployment_id(),
            function: function.to_owned(),
            alias: alias.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            config_name: preference.config_name.clone(),
            status: "InProgress".into(),
            created_ms: now_ms(),
            completed_ms: None,
            error: None,
            rolled_back: false,
            events: Vec::new(),
            weights: vec![(now_ms(), 0.0)],
        };
        r.event(format!(
            "deployment of {function}:{alias} from version {from} to {to} ({}) started",
            preference.config_name
        ));
        self.save(&r)?;
        tracing::info!(deployment = %r.id, %function, %alias, %from, %to, config = %preference.config_name, "deployment started");
        let (stop_tx, stop_rx) = oneshot::channel();
        self.inner
            .stops
            .lock()
            .expect("stops poisoned")
            .insert(r.id.clone(), stop_tx);
        let id = r.id.clone();
        let this = self.clone();
        tokio::spawn(async move { this.run(r, preference, stop_rx).await });
        Ok(id)
    }

    /// Whether a deployment of `function` is running.
    pub fn running(&self, function: &str) -> bool {
        self.all()
            .map(|all| {
                all.iter()
                    .any(|r| r.function == function && r.status == "InProgress")
            })
            .unwrap_or(false)
    }

    fn scaled(&self, d: Duration) -> Duration {
        Duration::from_secs_f64(d.as_secs_f64() * self.inner.scale)
    }

    /// The first of `alarms` in ALARM, if any.
    fn alarm(&self, alarms: &[String]) -> Option<String> {
        alarms
            .iter()
            .find(|a| (self.inner.alarms)(a).as_deref() == Some("ALARM"))
            .cloned()
    }

    /// Waits `d`, watching the alarms and for a stop request.
    async fn watch(
        &self,
        d: Duration,
        alarms: &[String],
        stop: &mut oneshot::Receiver<()>,
    ) -> Result<(), Stop> {
        let until = tokio::time::Instant::now() + d;
        loop {
            if let Some(a) = self.alarm(alarms) {
                return Err(Stop::Alarm(a));
            }
            let now = tokio::time::Instant::now();
            if now >= until {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep((until - now).min(ALARM_TICK)) => {}
                _ = &mut *stop => return Err(Stop::Requested),
            }
        }
    }

    async fn run(self, mut r: Record, p: Preference, mut stop: oneshot::Receiver<()>) {
        let outcome = self.shift(&mut r, &p, &mut stop).await;
        self.inner
            .stops
            .lock()
            .expect("stops poisoned")
            .remove(&r.id);
        match outcome {
            Ok(()) => {
                r.status = "Succeeded".into();
                r.completed_ms = Some(now_ms());
                r.event(format!(
                    "succeeded: {}:{} is version {}",
                    r.function, r.alias, r.to
                ));
                tracing::info!(deployment = %r.id, function = %r.function, version = %r.to, "deployment succeeded");
                if let Err(e) = self.save(&r) {
                    tracing::error!(deployment = %r.id, error = %e, "cannot record the deployment's success");
                }
            }
            Err(Stop::Alarm(a)) => {
                let why = format!("alarm {a} is in ALARM");
                self.roll_back(&mut r, "Failed", "ALARM_ACTIVE", &why);
            }
            Err(Stop::Hook(why)) => {
                self.roll_back(&mut r, "Failed", "HOOK_EXECUTION_FAILURE", &why)
            }
            Err(Stop::Requested) => self.roll_back(
                &mut r,
                "Stopped",
                "DEPLOYMENT_STOPPED",
                "StopDeployment was called",
            ),
        }
    }

    async fn shift(
        &self,
        r: &mut Record,
        p: &Preference,
        stop: &mut oneshot::Receiver<()>,
    ) -> Result<(), Stop> {
        if let Some(a) = self.alarm(&p.alarms) {
            return Err(Stop::Alarm(a));
        }
        if let Some(hook) = &p.pre_traffic {
            self.hook(r, hook, "BeforeAllowTraffic", &p.alarms, stop)
                .await?;
        }
        let started = tokio::time::Instant::now();
        for step in p.routing.steps() {
            let at = started + self.scaled(Duration::from_millis(step.after_ms));
            let now = tokio::time::Instant::now();
            self.watch(at.saturating_duration_since(now), &p.alarms, stop)
                .await?;
            let additional = (step.weight < 1.0).then(|| (r.to.clone(), step.weight));
            let version = if step.weight < 1.0 { &r.from } else { &r.to };
            let update = AliasUpdate {
                version: Some(version.clone()),
                additional: Some(additional),
                ..AliasUpdate::default()
            };
            if let Err(e) = self
                .inner
                .platform
                .update_alias(&r.function, &r.alias, update)
            {
                return Err(Stop::Hook(format!("the alias cannot be updated: {e}")));
            }
            r.weights.push((now_ms(), step.weight));
            r.event(format!(
                "{}:{} sends {:.0}% of its traffic to version {}",
                r.function,
                r.alias,
                step.weight * 100.0,
                r.to
            ));
            tracing::info!(deployment = %r.id, function = %r.function, alias = %r.alias, weight = step.weight, version = %r.to, "traffic shifted");
            let _ = self.save(r);
        }
        if let Some(hook) = &p.post_traffic {
            self.hook(r, hook, "AfterAllowTraffic", &p.alarms, stop)
                .await?;
        }
        Ok(())
    }

    /// Runs a lifecycle hook: invokes the hook function with the deployment's ids and waits for
    /// its `PutLifecycleEventHookExecutionStatus`, watching the alarms meanwhile.
    async fn hook(
        &self,
        r: &mut Record,
        function: &str,
        event: &str,
        alarms: &[String],
        stop: &mut oneshot::Receiver<()>,
    ) -> Result<(), Stop> {
        let execution = format!(
            "{}{}",
            r.id,
            (0..20)
                .map(|_| char::from(b'a' + rand::random_range(0..26u8)))
                .collect::<String>()
        );
        let (tx, mut rx) = oneshot::channel();
        self.inner.hooks.lock().expect("hooks poisoned").insert(
            execution.clone(),
            Hook {
                deployment: r.id.clone(),
                answer: Some(tx),
            },
        );
        r.event(format!("{event} hook {function} invoked"));
        let _ = self.save(r);
        let payload = json!({"DeploymentId": r.id, "LifecycleEventHookExecutionId": execution});
        let platform = self.inner.platform.clone();
        let target = function.to_owned();
        let mut invoked = tokio::spawn(async move {
            let req = InvokeRequest {
                payload: payload.to_string().into(),
                ..InvokeRequest::default()
            };
            platform.invoke(&target, req).await
        });
        let deadline = tokio::time::Instant::now() + self.scaled(HOOK_TIMEOUT);
        let mut invocation_done = false;
        let outcome = loop {
            if let Some(a) = self.alarm(alarms) {
                break Err(Stop::Alarm(a));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break Err(Stop::Hook(format!(
                    "the {event} hook {function} did not report its status within {} s (CodeDeploy's hook timeout of one hour, scaled)",
                    self.scaled(HOOK_TIMEOUT).as_secs_f64().round()
                )));
            }
            tokio::select! {
                status = &mut rx => break match status.as_deref() {
                    Ok("Succeeded") => Ok(()),
                    Ok(other) => Err(Stop::Hook(format!("the {event} hook {function} reported {other}"))),
                    Err(_) => Err(Stop::Hook(format!("the {event} hook {function} was abandoned"))),
                },
                done = &mut invoked, if !invocation_done => {
                    invocation_done = true;
                    match done {
                        Ok(Ok(out)) if out.function_error.is_some() => {
                            let text = String::from_utf8_lossy(&out.payload).chars().take(300).collect::<String>();
                            break Err(Stop::Hook(format!("the {event} hook {function} failed: {text}")));
                        }
                        Ok(Err(e)) => break Err(Stop::Hook(format!("the {event} hook {function} could not be invoked: {e}"))),
                        _ => {}
                    }
                }
                _ = tokio::time::sleep((deadline - now).min(ALARM_TICK)) => {}
                _ = &mut *stop => break Err(Stop::Requested),
            }
        };
        self.inner
            .hooks
            .lock()
            .expect("hooks poisoned")
            .remove(&execution);
        if outcome.is_ok() {
            r.event(format!("{event} hook {function} succeeded"));
            let _ = self.save(r);
        }
        outcome
    }

    fn roll_back(&self, r: &mut Record, status: &str, code: &str, why: &str) {
        let update = AliasUpdate {
            version: Some(r.from.clone()),
            additional: Some(None),
            ..AliasUpdate::default()
        };
        let moved = self
            .inner
            .platform
            .update_alias(&r.function, &r.alias, update);
        r.status = status.into();
        r.completed_ms = Some(now_ms());
        r.rolled_back = moved.is_ok();
        r.error = Some((code.into(), why.to_owned()));
        r.weights.push((now_ms(), 0.0));
        match moved {
            Ok(_) => {
                r.event(format!(
                    "{why}: rolled back {}:{} to version {}",
                    r.function, r.alias, r.from
                ));
                tracing::warn!(deployment = %r.id, function = %r.function, alias = %r.alias, version = %r.from, reason = %why, "deployment rolled back");
            }
            Err(e) => {
                r.event(format!("{why}; the rollback failed: {e}"));
                tracing::error!(deployment = %r.id, function = %r.function, reason = %why, error = %e, "deployment failed and could not be rolled back");
            }
        }
        if let Err(e) = self.save(r) {
            tracing::error!(deployment = %r.id, error = %e, "cannot record the rollback");
        }
    }

    /// Every deployment, newest first, as nimbus's dashboard and `nimbus deployments` show them.
    pub fn describe(&self) -> Result<Value, CodeDeployError> {
        let mut all = self.all()?;
        all.reverse();
        Ok(json!({ "deployments": all.iter().map(Record::to_json).collect::<Vec<_>>() }))
    }

    /// One CodeDeploy API call.
    pub fn dispatch(&self, action: &str, input: &Value) -> Result<Value, CodeDeployError> {
        match action {
            "GetDeployment" => {
                let id = required(input, "deploymentId")?;
                let r = self.load(id)?.ok_or_else(|| not_found(id))?;
                Ok(json!({ "deploymentInfo": deployment_info(&r) }))
            }
            "ListDeployments" => {
                let statuses: Vec<&str> = input["includeOnlyStatuses"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let group = input["deploymentGroupName"].as_str();
                let mut all = self.all()?;
                all.reverse();
                let ids: Vec<&str> = all
                    .iter()
                    .filter(|r| statuses.is_empty() || statuses.contains(&r.status.as_str()))
                    .filter(|r| group.is_none_or(|g| g == group_name(&r.function)))
                    .map(|r| r.id.as_str())
                    .collect();
                Ok(json!({ "deployments": ids }))
            }
            "ListApplications" => Ok(json!({ "applications": [APPLICATION] })),
            "ListDeploymentGroups" => {
                let mut groups: Vec<String> =
                    self.all()?.iter().map(|r| group_name(&r.function)).collect();
                groups.sort();
                groups.dedup();
                Ok(json!({ "applicationName": APPLICATION, "deploymentGroups": groups }))
            }
            "StopDeployment" => {
                let id = required(input, "deploymentId")?;
                let r = self.load(id)?.ok_or_else(|| not_found(id))?;
                let stop = self.inner.stops.lock().expect("stops poisoned").remove(id);
                match stop {
                    Some(tx) if r.status == "InProgress" => {
                        let _ = tx.send(());
                        Ok(json!({"status": "Pending", "statusMessage": "Stopping the deployment and rolling back"}))
                    }
                    _ => Err(CodeDeployError::api(
                        "DeploymentAlreadyCompletedException",
                        format!("The deployment {id} has already completed."),
                    )),
                }
            }
            "PutLifecycleEventHookExecutionStatus" => {
                let id = required(input, "deploymentId")?;
                let execution = required(input, "lifecycleEventHookExecutionId")?;
                let status = required(input, "status")?;
                if !matches!(status, "Succeeded" | "Failed") {
                    return Err(CodeDeployError::api(
                        "InvalidLifecycleEventHookExecutionStatusException",
                        format!("The status {status} is not valid: use Succeeded or Failed"),
                    ));
                }
                if self.load(id)?.is_none() {
                    return Err(not_found(id));
                }
                let mut hooks = self.inner.hooks.lock().expect("hooks poisoned");
                match hooks.get_mut(execution) {
                    Some(h) if h.deployment == id => match h.answer.take() {
                        Some(tx) => {
                            let _ = tx.send(status.to_owned());
                            Ok(json!({ "lifecycleEventHookExecutionId": execution }))
                        }
                        None => Err(CodeDeployError::api(
                            "LifecycleEventAlreadyCompletedException",
                            format!("The lifecycle event hook execution {execution} has already completed."),
                        )),
                    },
                    _ => Err(CodeDeployError::api(
                        "InvalidLifecycleEventHookExecutionIdException",
                        format!("The lifecycle event hook execution id {execution} is not valid for deployment {id}, or its hook has already completed."),
                    )),
                }
            }
            other => Err(CodeDeployError::api(
                "UnknownOperationException",
                format!("nimbus serves no CodeDeploy operation {other:?}; it serves GetDeployment, ListDeployments, ListApplications, ListDeploymentGroups, StopDeployment and PutLifecycleEventHookExecutionStatus"),
            )),
        }
    }
}

fn required<'a>(input: &'a Value, key: &str) -> Result<&'a str, CodeDeployError> {
    input[key].as_str().ok_or_else(|| {
        let code = match key {
            "deploymentId" => "DeploymentIdRequiredException",
            "lifecycleEventHookExecutionId" => "InvalidLifecycleEventHookExecutionIdException",
            _ => "InvalidLifecycleEventHookExecutionStatusException",
        };
        CodeDeployError::api(code, format!("{key} is required"))
    })
}

fn not_found(id: &str) -> CodeDeployError {
    CodeDeployError::api(
        "DeploymentDoesNotExistException",
        format!("The deployment {id} could not be found."),
    )
}

/// SAM's deployment group of a function: `<Function>DeploymentGroup`.
fn group_name(function: &str) -> String {
    format!("{function}DeploymentGroup")
}

fn deployment_info(r: &Record) -> Value {
    let mut info = json!({
        "applicationName": APPLICATION,
        "deploymentGroupName": group_name(&r.function),
        "deploymentConfigName": r.config_name,
        "deploymentId": r.id,
        "status": r.status,
        "createTime": r.created_ms as f64 / 1000.0,
        "creator": "user",
        "computePlatform": "Lambda",
        "description": format!("{}:{} from version {} to {}", r.function, r.alias, r.from, r.to),
        "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": json!({
            "version": 0.0,
            "Resources": [{ r.function.clone(): {"Type": "AWS::Lambda::Function", "Properties": {
                "Name": r.function, "Alias": r.alias, "CurrentVersion": r.from, "TargetVersion": r.to}}}]
        }).to_string()}},
    });
    if let Some(t) = r.completed_ms {
        info["completeTime"] = json!(t as f64 / 1000.0);
    }
    if let Some((code, message)) = &r.error {
        info["errorInformation"] = json!({"code": code, "message": message});
    }
    if r.rolled_back {
        info["rollbackInfo"] =
            json!({"rollbackMessage": format!("rolled back to version {}", r.from)});
    }
    info
}
