//! AWS Fault Injection Service (REST-JSON), the part that drives nimbus's Lambda faults:
//! experiment templates (create, get, list, delete) and experiments (start, get, list, stop)
//! with the Lambda actions `aws:lambda:invocation-add-delay`, `aws:lambda:invocation-error`
//! and `aws:lambda:invocation-http-integration-response`, their parameters checked as FIS
//! checks them, each action lifted after its `duration`, and stop conditions on nimbus's
//! CloudWatch alarms (an alarm in ALARM stops the experiment and lifts its faults). Kept in
//! memory: an experiment does not outlive the run, and no fault stays after shutdown.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use nimbus_events::Hub;
use nimbus_lambda::faults::{Fault, FaultKind};
use nimbus_lambda::Platform;
use serde_json::{json, Value};

#[derive(Clone)]
pub(crate) struct Fis {
    platform: Platform,
    hub: Hub,
    state: Arc<Mutex<Experiments>>,
    /// `<state-dir>/fis.json`.
    path: Arc<std::path::PathBuf>,
}

#[derive(Default)]
struct Experiments {
    templates: BTreeMap<String, Value>,
    experiments: BTreeMap<String, Value>,
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    let mut r = (
        status,
        [("content-type", "application/json")],
        json!({"message": message}).to_string(),
    )
        .into_response();
    if let Ok(v) = code.parse() {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

fn invalid(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, "ValidationException", message)
}

fn not_found(what: &str, id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        format!("{what} {id} not found"),
    )
}

fn now_s() -> f64 {
    nimbus_events::now_ms() as f64 / 1000.0
}

/// `PT1M`, `PT30S`, `PT1H30M`: ISO 8601 durations as FIS takes them.
fn parse_duration(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix("PT")?;
    let mut total = 0f64;
    let mut num = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' | '.' => num.push(c),
            'H' | 'M' | 'S' => {
                let n: f64 = num.parse().ok()?;
                num.clear();
                total += n * match c {
                    'H' => 3600.0,
                    'M' => 60.0,
                    _ => 1.0,
                };
            }
            _ => return None,
        }
    }
    (num.is_empty() && total > 0.0 && total <= 43_200.0).then(|| Duration::from_secs_f64(total))
}

/// The parameters each action takes (FIS's own names).
fn action_parameters(action: &str) -> Option<&'static [&'static str]> {
    Some(match action {
        "aws:lambda:invocation-add-delay" => &[
            "duration",
            "invocationPercentage",
            "startupDelayMilliseconds",
        ],
        "aws:lambda:invocation-error" => &["duration", "invocationPercentage", "preventExecution"],
        "aws:lambda:invocation-http-integration-response" => &[
            "duration",
            "invocationPercentage",
            "statusCode",
            "contentTypeHeader",
            "preventExecution",
        ],
        _ => return None,
    })
}

/// An action's fault and duration from its parameters, or FIS's validation message.
fn action_fault(name: &str, action: &Value) -> Result<(FaultKind, f64, Duration), String> {
    let id = action["actionId"].as_str().unwrap_or("");
    let Some(allowed) = action_parameters(id) else {
        return Err(format!(
            "Action {name}: actionId {id:?} is not supported; nimbus runs aws:lambda:invocation-add-delay, aws:lambda:invocation-error and aws:lambda:invocation-http-integration-response"
        ));
    };
    let params = action["parameters"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for k in params.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!(
                "Unknown parameter {k} for action {name} ({id}); it takes {}",
                allowed.join(", ")
            ));
        }
    }
    let text = |k: &str| params.get(k).and_then(Value::as_str);
    let duration = text("duration")
        .and_then(parse_duration)
        .ok_or_else(|| format!("Action {name}: parameter duration must be an ISO 8601 duration such as PT5M, up to PT12H"))?;
    let percentage = match text("invocationPercentage") {
        None => 100.0,
        Some(p) => p
            .parse::<f64>()
            .ok()
            .filter(|p| (0.0..=100.0).contains(p))
            .ok_or_else(|| {
                format!(
                    "Action {name}: invocationPercentage must be a number from 0 to 100, got {p:?}"
                )
            })?,
    };
    let boolean = |k: &str| -> Result<bool, String> {
        match text(k) {
            None | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(format!(
                "Action {name}: {k} must be true or false, got {v:?}"
            )),
        }
    };
    let kind = match id {
        "aws:lambda:invocation-add-delay" => FaultKind::Delay {
            ms: match text("startupDelayMilliseconds") {
                None => 1000,
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| *ms <= 900_000)
                    .ok_or_else(|| format!("Action {name}: startupDelayMilliseconds must be 0 to 900000, got {v:?}"))?,
            },
        },
        "aws:lambda:invocation-error" => FaultKind::Error {
            prevent: boolean("preventExecution")?,
        },
        _ => FaultKind::HttpResponse {
            status: text("statusCode")
                .and_then(|s| s.parse::<u16>().ok())
                .filter(|s| (100..=599).contains(s))
                .ok_or_else(|| format!("Action {name}: statusCode must be an HTTP status (100-599)"))?,
            content_type: text("contentTypeHeader")
                .ok_or_else(|| format!("Action {name}: parameter contentTypeHeader is required"))?
                .to_owned(),
            prevent: boolean("preventExecution")?,
        },
    };
    Ok((kind, percentage, duration))
}

impl Fis {
    /// Templates and experiments are kept in `<state-dir>/fis.json`. An experiment that was
    /// running when nimbus stopped is `stopped` at the next start: its faults lived in the
    /// stopped process, and none is injected again without a new `StartExperiment`.
    pub(crate) fn new(platform: Platform, hub: Hub) -> Fis {
        let path = platform.config().state_dir.join("fis.json");
        let mut state = Experiments::default();
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(doc) => {
                    let map = |k: &str| -> BTreeMap<String, Value> {
                        doc[k]
                            .as_object()
                            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                            .unwrap_or_default()
                    };
                    state.templates = map("templates");
                    state.experiments = map("experiments");
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "the FIS state file is unreadable; starting without it")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot read the FIS state file")
            }
        }
        let fis = Fis {
            platform,
            hub,
            state: Arc::new(Mutex::new(state)),
            path: Arc::new(path),
        };
        let interrupted: Vec<String> = {
            let s = fis.state.lock().unwrap();
            s.experiments
                .iter()
                .filter(|(_, e)| {
                    matches!(
                        e["state"]["status"].as_str(),
                        Some("running" | "initiating" | "pending")
                    )
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in &interrupted {
            set_status(
                &fis,
                id,
                "stopped",
                "nimbus stopped while the experiment ran; its faults were lifted with it.",
            );
            tracing::warn!(experiment = %id, "FIS experiment interrupted by a restart: stopped");
        }
        fis
    }

    /// Writes the templates and experiments to `fis.json` (a new file renamed over the old, so
    /// a crash leaves one or the other whole).
    fn save(&self) {
        let doc = {
            let s = self.state.lock().unwrap();
            json!({"templates": s.templates, "experiments": s.experiments})
        };
        let tmp = self.path.with_extension("json.tmp");
        let written = (|| -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(doc.to_string().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &*self.path)
        })();
        if let Err(e) = written {
            tracing::error!(path = %self.path.display(), error = %e, "cannot keep the FIS state");
        }
    }

    pub(crate) fn routes(&self) -> Router {
        Router::new()
            .route(
                "/experimentTemplates",
                post(create_template).get(list_templates),
            )
            .route(
                "/experimentTemplates/{id}",
                get(get_template).delete(delete_template),
            )
            .route("/experiments", post(start).get(list_experiments))
            .route("/experiments/{id}", get(get_experiment).delete(stop))
            .with_state(self.clone())
    }

    /// The function names a template's target selects (by ARN or name).
    fn functions(&self, target: &Value) -> Result<Vec<String>, String> {
        if target["resourceType"] != "aws:lambda:function" {
            return Err(format!(
                "Target resourceType {} is not served; nimbus's FIS targets aws:lambda:function",
                target["resourceType"]
            ));
        }
        let arns = target["resourceArns"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if arns.is_empty() {
            return Err(
                "A target needs resourceArns (nimbus does not select functions by tag)".into(),
            );
        }
        arns.iter()
            .map(|a| {
                let a = a.as_str().unwrap_or("");
                let name = a.rsplit_once(":function:").map_or(a, |(_, n)| n);
                let name = name.split(':').next().unwrap_or(name);
                match self.platform.function(name) {
                    Some(_) => Ok(name.to_owned()),
                    None => Err(format!(
                        "Target resource {a} is not a function of this stack"
                    )),
                }
            })
            .collect()
    }
}

async fn create_template(State(fis): State<Fis>, body: Bytes) -> Response {
    let Ok(input) = serde_json::from_slice::<Value>(&body) else {
        return invalid("the request body is not JSON".into());
    };
    let targets = input["targets"].as_object().cloned().unwrap_or_default();
    for (name, t) in &targets {
        if let Err(why) = fis.functions(t) {
            return invalid(format!("Target {name}: {why}"));
        }
    }
    let actions = input["actions"].as_object().cloned().unwrap_or_default();
    if actions.is_empty() {
        return invalid("An experiment template needs at least one action".into());
    }
    for (name, a) in &actions {
        if let Err(why) = action_fault(name, a) {
            return invalid(why);
        }
        for t in a["targets"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            let t = t.as_str().unwrap_or("");
            if !targets.contains_key(t) {
                return invalid(format!(
                    "Action {name} names target {t:?}, which the template does not define"
                ));
            }
        }
    }
    for s in input["stopConditions"].as_array().into_iter().flatten() {
        match s["source"].as_str() {
            Some("none") => {}
            Some("aws:cloudwatch:alarm") if s["value"].is_string() => {}
            _ => {
                return invalid(format!(
                    "stopConditions: source must be none or aws:cloudwatch:alarm with the alarm's ARN as value, got {s}"
                ))
            }
        }
    }
    let id = format!("EXT{}", &uuid::Uuid::new_v4().simple().to_string()[..14]);
    let t = json!({
        "id": id,
        "description": input["description"],
        "targets": input["targets"],
        "actions": input["actions"],
        "stopConditions": input["stopConditions"],
        "roleArn": input["roleArn"],
        "tags": input["tags"],
        "creationTime": now_s(),
        "lastUpdateTime": now_s(),
    });
    fis.state.lock().unwrap().templates.insert(id, t.clone());
    fis.save();
    axum::Json(json!({"experimentTemplate": t})).into_response()
}

async fn get_template(State(fis): State<Fis>, Path(id): Path<String>) -> Response {
    match fis.state.lock().unwrap().templates.get(&id) {
        Some(t) => axum::Json(json!({"experimentTemplate": t})).into_response(),
        None => not_found("Experiment template", &id),
    }
}

async fn list_templates(State(fis): State<Fis>) -> Response {
    let s = fis.state.lock().unwrap();
    let list: Vec<&Value> = s.templates.values().collect();
    axum::Json(json!({"experimentTemplates": list})).into_response()
}

async fn delete_template(State(fis): State<Fis>, Path(id): Path<String>) -> Response {
    let removed = fis.state.lock().unwrap().templates.remove(&id);
    match removed {
        Some(t) => {
            fis.save();
            axum::Json(json!({"experimentTemplate": t})).into_response()
        }
        None => not_found("Experiment template", &id),
    }
}

fn set_status(fis: &Fis, id: &str, status: &str, reason: &str) {
    set_status_unsaved(fis, id, status, reason);
    fis.save();
}

fn set_status_unsaved(fis: &Fis, id: &str, status: &str, reason: &str) {
    if let Some(e) = fis.state.lock().unwrap().experiments.get_mut(id) {
        e["state"] = json!({"status": status, "reason": reason});
        if matches!(status, "completed" | "stopped" | "failed") {
            e["endTime"] = now_s().into();
            if let Some(actions) = e["actions"].as_object_mut() {
                for a in actions.values_mut() {
                    if a["state"]["status"] == "running" {
                        a["state"] = json!({"status": status, "reason": reason});
                        a["endTime"] = now_s().into();
                    }
                }
            }
        }
    }
}

async fn start(State(fis): State<Fis>, body: Bytes) -> Response {
    let Ok(input) = serde_json::from_slice::<Value>(&body) else {
        return invalid("the request body is not JSON".into());
    };
    let tid = input["experimentTemplateId"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let Some(t) = fis.state.lock().unwrap().templates.get(&tid).cloned() else {
        return not_found("Experiment template", &tid);
    };
    let id = format!("EXP{}", &uuid::Uuid::new_v4().simple().to_string()[..14]);
    // Each action's faults, owned by "<experiment>/<action>" so each is lifted at its end.
    let mut plan = Vec::new();
    let mut actions = serde_json::Map::new();
    for (name, a) in t["actions"].as_object().cloned().unwrap_or_default() {
        let (kind, percentage, duration) = match action_fault(&name, &a) {
            Ok(x) => x,
            Err(why) => return invalid(why),
        };
        let mut functions = Vec::new();
        for target in a["targets"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            match fis.functions(&t["targets"][target.as_str().unwrap_or("")]) {
                Ok(f) => functions.extend(f),
                Err(why) => return invalid(why),
            }
        }
        let owner = format!("{id}/{name}");
        plan.push((
            owner.clone(),
            duration,
            Fault {
                owner,
                functions,
                percentage,
                kind,
            },
        ));
        let mut shown = a.clone();
        shown["state"] = json!({"status": "running", "reason": "Action is running."});
        shown["startTime"] = now_s().into();
        actions.insert(name, shown);
    }
    let alarms: Vec<String> = t["stopConditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["source"] == "aws:cloudwatch:alarm")
        .filter_map(|s| s["value"].as_str())
        .map(|arn| {
            arn.rsplit_once(":alarm:")
                .map_or(arn, |(_, n)| n)
                .to_owned()
        })
        .collect();
    let e = json!({
        "id": id,
        "experimentTemplateId": tid,
        "roleArn": t["roleArn"],
        "state": {"status": "running", "reason": "Experiment is running."},
        "targets": t["targets"],
        "actions": actions,
        "stopConditions": t["stopConditions"],
        "creationTime": now_s(),
        "startTime": now_s(),
        "tags": input["tags"],
    });
    fis.state
        .lock()
        .unwrap()
        .experiments
        .insert(id.clone(), e.clone());
    fis.save();
    let faults = fis.platform.faults().clone();
    faults.install(plan.iter().map(|(_, _, f)| f.clone()).collect());
    tracing::warn!(experiment = %id, template = %tid, "FIS experiment started: faults injected into Lambda invocations");
    let runner = fis.clone();
    let exp = id.clone();
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut left: Vec<(String, Duration)> = plan.into_iter().map(|(o, d, _)| (o, d)).collect();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let status = runner.state.lock().unwrap().experiments[&exp]["state"]["status"].clone();
            if status != "running" {
                break; // stopped through the API: its handler lifted the faults
            }
            let firing = runner.hub.alarm_states()["alarms"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["state"] == "ALARM" && alarms.iter().any(|n| a["name"] == n.as_str()))
                .and_then(|a| a["name"].as_str().map(str::to_owned));
            if let Some(alarm) = firing {
                for (owner, _) in &left {
                    faults.lift(owner);
                }
                set_status(
                    &runner,
                    &exp,
                    "stopped",
                    &format!("Experiment stopped by stop condition: alarm {alarm} is in ALARM."),
                );
                tracing::warn!(experiment = %exp, alarm = %alarm, "FIS experiment stopped by its stop condition; faults lifted");
                break;
            }
            let elapsed = started.elapsed();
            let before = left.len();
            left.retain(|(owner, d)| {
                if elapsed >= *d {
                    faults.lift(owner);
                    if let Some(a) = runner.state.lock().unwrap().experiments.get_mut(&exp) {
                        let name = owner.split_once('/').map_or("", |(_, n)| n);
                        a["actions"][name]["state"] =
                            json!({"status": "completed", "reason": "Action was completed."});
                        a["actions"][name]["endTime"] = now_s().into();
                    }
                    false
                } else {
                    true
                }
            });
            if left.len() != before && !left.is_empty() {
                runner.save();
            }
            if left.is_empty() {
                set_status(&runner, &exp, "completed", "Experiment completed.");
                tracing::info!(experiment = %exp, "FIS experiment completed; faults lifted");
                break;
            }
        }
    });
    axum::Json(json!({"experiment": e})).into_response()
}

async fn get_experiment(State(fis): State<Fis>, Path(id): Path<String>) -> Response {
    match fis.state.lock().unwrap().experiments.get(&id) {
        Some(e) => axum::Json(json!({"experiment": e})).into_response(),
        None => not_found("Experiment", &id),
    }
}

async fn list_experiments(State(fis): State<Fis>) -> Response {
    let s = fis.state.lock().unwrap();
    let list: Vec<Value> = s
        .experiments
        .values()
        .map(|e| json!({"id": e["id"], "experimentTemplateId": e["experimentTemplateId"], "state": e["state"], "creationTime": e["creationTime"], "tags": e["tags"]}))
        .collect();
    axum::Json(json!({"experiments": list})).into_response()
}

async fn stop(State(fis): State<Fis>, Path(id): Path<String>) -> Response {
    let owners: Vec<String> = {
        let s = fis.state.lock().unwrap();
        let Some(e) = s.experiments.get(&id) else {
            return not_found("Experiment", &id);
        };
        e["actions"]
            .as_object()
            .map(|m| m.keys().map(|k| format!("{id}/{k}")).collect())
            .unwrap_or_default()
    };
    for o in &owners {
        fis.platform.faults().lift(o);
    }
    set_status(&fis, &id, "stopped", "Experiment stopped by user.");
    tracing::info!(experiment = %id, "FIS experiment stopped; faults lifted");
    let e = fis.state.lock().unwrap().experiments[&id].clone();
    axum::Json(json!({"experiment": e})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_action_parameters_as_fis_reads_them() {
        assert_eq!(parse_duration("PT1M"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("PT1H30M"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("PT0.5S"), Some(Duration::from_millis(500)));
        for bad in ["1M", "PT", "PT5X", "PT13H"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        let a = |id: &str, params: Value| json!({"actionId": id, "parameters": params});
        let (kind, pct, d) = action_fault("x", &a("aws:lambda:invocation-error", json!({"duration": "PT1M", "invocationPercentage": "50", "preventExecution": "true"}))).unwrap();
        assert_eq!(
            (kind, pct, d),
            (
                FaultKind::Error { prevent: true },
                50.0,
                Duration::from_secs(60)
            )
        );
        let cases = [
            (
                a(
                    "aws:lambda:invocation-add-delay",
                    json!({"duration": "PT1M", "delayMilliseconds": "300"}),
                ),
                "Unknown parameter delayMilliseconds",
            ),
            (
                a(
                    "aws:lambda:invocation-error",
                    json!({"duration": "PT1M", "invocationPercentage": "150"}),
                ),
                "invocationPercentage must be a number from 0 to 100",
            ),
            (
                a(
                    "aws:lambda:invocation-error",
                    json!({"duration": "five minutes"}),
                ),
                "ISO 8601",
            ),
            (a("aws:ec2:stop-instances", json!({})), "not supported"),
            (
                a(
                    "aws:lambda:invocation-http-integration-response",
                    json!({"duration": "PT1M", "statusCode": "503"}),
                ),
                "contentTypeHeader is required",
            ),
        ];
        for (action, want) in cases {
            let e = action_fault("act", &action).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }
}
