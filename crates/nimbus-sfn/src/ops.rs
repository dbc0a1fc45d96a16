//! The Step Functions API: one function per operation, taking the request's JSON.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::asl::{self, Diagnostic};
use crate::clock::{format_ms, now_ms};
use crate::engine::{Continued, Cursor, Event, NoJournal, Outcome, PartResume, Resume, Run};
use crate::error::StatesError;
use crate::state::{self, DbJournal, ExecutionRow, MachineRow};
use crate::{Inner, MachineEntry, SfnError, StepFunctions, TemplateMachine};

pub(crate) async fn dispatch(
    sfn: &StepFunctions,
    action: &str,
    input: &Value,
) -> Result<Value, SfnError> {
    match action {
        "CreateStateMachine" => create_state_machine(sfn, input),
        "DescribeStateMachine" => describe_state_machine(sfn, input),
        "ListStateMachines" => list_state_machines(sfn, input),
        "UpdateStateMachine" => update_state_machine(sfn, input),
        "DeleteStateMachine" => delete_state_machine(sfn, input),
        "ValidateStateMachineDefinition" => Ok(validate_definition(input)),
        "TestState" => test_state(sfn, input).await,
        "CreateActivity" => create_activity(sfn, input),
        "DescribeActivity" => describe_activity(sfn, input),
        "ListActivities" => list_activities(sfn, input),
        "DeleteActivity" => delete_activity(sfn, input),
        "GetActivityTask" => get_activity_task(sfn, input).await,
        "StartExecution" => start_execution(sfn, input).await,
        "StartSyncExecution" => start_sync_execution(sfn, input).await,
        "DescribeExecution" => describe_execution(sfn, input),
        "DescribeStateMachineForExecution" => describe_machine_for_execution(sfn, input),
        "StopExecution" => stop_execution(sfn, input).await,
        "RedriveExecution" => redrive_execution(sfn, input).await,
        "GetExecutionHistory" => get_execution_history(sfn, input),
        "ListExecutions" => list_executions(sfn, input),
        "TagResource" => tag_resource(sfn, input, true),
        "UntagResource" => tag_resource(sfn, input, false),
        "ListTagsForResource" => list_tags(sfn, input),
        "PublishStateMachineVersion" => publish_state_machine_version(sfn, input),
        "ListStateMachineVersions" => list_state_machine_versions(sfn, input),
        "DeleteStateMachineVersion" => delete_state_machine_version(sfn, input),
        "CreateStateMachineAlias" => create_state_machine_alias(sfn, input),
        "DescribeStateMachineAlias" => describe_state_machine_alias(sfn, input),
        "UpdateStateMachineAlias" => update_state_machine_alias(sfn, input),
        "DeleteStateMachineAlias" => delete_state_machine_alias(sfn, input),
        "ListStateMachineAliases" => list_state_machine_aliases(sfn, input),
        "DescribeMapRun" => crate::maprun::describe_map_run(sfn, input),
        "ListMapRuns" => crate::maprun::list_map_runs(sfn, input),
        "UpdateMapRun" => crate::maprun::update_map_run(sfn, input).await,
        "SendTaskSuccess" => send_task(sfn, input, "success").await,
        "SendTaskFailure" => send_task(sfn, input, "failure").await,
        "SendTaskHeartbeat" => send_task(sfn, input, "heartbeat").await,
        _ => Err(SfnError::new(
            "UnknownOperationException",
            format!("nimbus's Step Functions does not serve the operation {action} yet"),
        )),
    }
}

pub(crate) fn seconds(ms: u64) -> Value {
    json!(ms as f64 / 1000.0)
}

fn required<'a>(input: &'a Value, key: &str) -> Result<&'a str, SfnError> {
    match &input[key] {
        Value::String(s) => Ok(s),
        Value::Null => Err(SfnError::new(
            "ValidationException",
            format!("1 validation error detected: Value null at '{key}' failed to satisfy constraint: Member must not be null"),
        )),
        _ => Err(SfnError::new(
            "ValidationException",
            format!("1 validation error detected: Value at '{key}' failed to satisfy constraint: Member must be a string"),
        )),
    }
}

/// Step Functions' name rule for state machines and executions.
fn check_name(name: &str) -> Result<(), SfnError> {
    let bad = |c: char| {
        c.is_whitespace()
            || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c)
            || ('\u{0}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || c == '\u{fffe}'
            || c == '\u{ffff}'
    };
    if name.chars().count() > 80 {
        return Err(SfnError::new(
            "ValidationException",
            format!("1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must have length less than or equal to 80"),
        ));
    }
    if name.is_empty() || name.chars().any(bad) {
        return Err(SfnError::new(
            "InvalidName",
            format!("Invalid Name: '{name}'"),
        ));
    }
    Ok(())
}

fn check_arn(arn: &str) -> Result<(), SfnError> {
    if !arn.starts_with("arn:") {
        return Err(SfnError::new(
            "InvalidArn",
            format!("Invalid Arn: 'Invalid ARN prefix: {arn}'"),
        ));
    }
    Ok(())
}

fn machine_entry(sfn: &StepFunctions, arn: &str) -> Result<Arc<MachineEntry>, SfnError> {
    check_arn(arn)?;
    lock(&sfn.inner.machines).get(arn).cloned().ok_or_else(|| {
        SfnError::new(
            "StateMachineDoesNotExist",
            format!("State Machine Does Not Exist: '{arn}'"),
        )
    })
}

pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn parse_definition(text: &str) -> Result<asl::Machine, SfnError> {
    asl::parse(text)
        .map_err(|d| SfnError::new("InvalidDefinition", asl::invalid_definition_message(&d)))
}

fn machine_kind(input: &Value) -> Result<String, SfnError> {
    match input["type"].as_str().unwrap_or("STANDARD") {
        k @ ("STANDARD" | "EXPRESS") => Ok(k.to_owned()),
        k => Err(SfnError::new(
            "ValidationException",
            format!("1 validation error detected: Value '{k}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]"),
        )),
    }
}

fn settings_of(input: &Value) -> Value {
    let mut s = Map::new();
    s.insert(
        "loggingConfiguration".into(),
        input
            .get("loggingConfiguration")
            .cloned()
            .unwrap_or(json!({"level": "OFF", "includeExecutionData": false})),
    );
    s.insert(
        "tracingConfiguration".into(),
        input
            .get("tracingConfiguration")
            .cloned()
            .unwrap_or(json!({"enabled": false})),
    );
    if let Some(d) = input.get("description") {
        s.insert("description".into(), d.clone());
    }
    Value::Object(s)
}

fn tags_of(input: &Value) -> Value {
    let mut tags = Map::new();
    for t in input["tags"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (t["key"].as_str(), t["value"].as_str()) {
            tags.insert(k.to_owned(), json!(v));
        }
    }
    Value::Object(tags)
}

fn install(inner: &Inner, row: MachineRow, machine: asl::Machine) {
    lock(&inner.machines).insert(
        row.arn.clone(),
        Arc::new(MachineEntry {
            row,
            machine: Arc::new(machine),
            version_arn: None,
            alias_arn: None,
        }),
    );
}

/// What a state machine ARN names: the machine, a version (`...:stateMachine:name:3`) or an
/// alias (`...:stateMachine:name:prod`, one of its versions picked by the routing weights).
fn resolve(sfn: &StepFunctions, arn: &str) -> Result<Arc<MachineEntry>, SfnError> {
    check_arn(arn)?;
    if arn.split(':').count() != 8 {
        return machine_entry(sfn, arn);
    }
    let (base_arn, qualifier) = split_qualified(arn)?;
    let base = machine_entry(sfn, &base_arn)?;
    let qualifier = qualifier.as_str();
    let missing = || {
        SfnError::new(
            "StateMachineDoesNotExist",
            format!("State Machine Does Not Exist: '{arn}'"),
        )
    };
    let (version, alias_arn) = match qualifier.parse::<u64>() {
        Ok(v) => (v, None),
        Err(_) => {
            let alias = state::aliases(&sfn.inner.db, &base_arn)?
                .into_iter()
                .find(|a| a.name == qualifier)
                .ok_or_else(missing)?;
            (
                pick_version(&alias.routing).ok_or_else(missing)?,
                Some(arn.to_owned()),
            )
        }
    };
    let v = state::versions(&sfn.inner.db, &base_arn)?
        .into_iter()
        .find(|v| v.version == version)
        .ok_or_else(missing)?;
    let machine = parse_definition(&v.definition)?;
    let mut row = base.row.clone();
    row.definition = v.definition;
    row.role_arn = v.role_arn;
    Ok(Arc::new(MachineEntry {
        row,
        machine: Arc::new(machine),
        version_arn: Some(format!("{base_arn}:{version}")),
        alias_arn,
    }))
}

/// The version an alias sends this execution to, by its routing weights.
fn pick_version(routing: &Value) -> Option<u64> {
    let routes: Vec<(u64, u64)> = routing
        .as_array()?
        .iter()
        .filter_map(|r| {
            let v = r["stateMachineVersionArn"]
                .as_str()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()?;
            Some((v, r["weight"].as_u64().unwrap_or(0)))
        })
        .collect();
    let total: u64 = routes.iter().map(|(_, w)| w).sum();
    let mut roll = if total == 0 {
        0
    } else {
        rand::random::<u64>() % total
    };
    for (v, w) in &routes {
        if roll < *w {
            return Some(*v);
        }
        roll -= w;
    }
    routes.first().map(|(v, _)| *v)
}

/// Publishes the machine's current definition as a new version, unless the newest version
/// already is it (then that one is answered, as on AWS).
fn publish_version(
    sfn: &StepFunctions,
    entry: &MachineEntry,
    description: Option<&str>,
) -> Result<(String, u64), SfnError> {
    let versions = state::versions(&sfn.inner.db, &entry.row.arn)?;
    if let Some(v) = versions.first() {
        if v.definition == entry.row.definition && v.role_arn == entry.row.role_arn {
            return Ok((format!("{}:{}", entry.row.arn, v.version), v.created_ms));
        }
    }
    let version = versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
    let now = now_ms();
    state::put_version(
        &sfn.inner.db,
        &state::VersionRow {
            machine_arn: entry.row.arn.clone(),
            version,
            definition: entry.row.definition.clone(),
            role_arn: entry.row.role_arn.clone(),
            description: description.map(str::to_owned),
            created_ms: now,
        },
    )?;
    Ok((format!("{}:{version}", entry.row.arn), now))
}

fn publish_state_machine_version(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "stateMachineArn")?;
    let entry = machine_entry(sfn, arn)?;
    if let Some(rev) = input["revisionId"].as_str() {
        if rev != entry.row.revision {
            return Err(SfnError::new(
                "ConflictException",
                format!("Failed to publish the State Machine version for revision {rev}. The current State Machine revision is {}.", entry.row.revision),
            ));
        }
    }
    let (version_arn, created) = publish_version(sfn, &entry, input["description"].as_str())?;
    Ok(json!({"stateMachineVersionArn": version_arn, "creationDate": seconds(created)}))
}

fn list_state_machine_versions(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "stateMachineArn")?;
    machine_entry(sfn, arn)?;
    let items: Vec<Value> = state::versions(&sfn.inner.db, arn)?
        .iter()
        .map(|v| json!({"stateMachineVersionArn": format!("{arn}:{}", v.version), "creationDate": seconds(v.created_ms)}))
        .collect();
    Ok(json!({ "stateMachineVersions": items }))
}

/// `(machine ARN, qualifier)` of a version or alias ARN.
fn split_qualified(arn: &str) -> Result<(String, String), SfnError> {
    check_arn(arn)?;
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() != 8 || parts[5] != "stateMachine" {
        return Err(SfnError::new("InvalidArn", format!("Invalid Arn: '{arn}'")));
    }
    Ok((parts[..7].join(":"), parts[7].to_owned()))
}

fn delete_state_machine_version(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "stateMachineVersionArn")?;
    let (machine, version) = split_qualified(arn)?;
    let Ok(version) = version.parse::<u64>() else {
        return Err(SfnError::new("InvalidArn", format!("Invalid Arn: '{arn}'")));
    };
    let used = state::aliases(&sfn.inner.db, &machine)?
        .into_iter()
        .find(|a| a.routing.to_string().contains(&format!("\"{arn}\"")));
    if let Some(a) = used {
        return Err(SfnError::new(
            "ConflictException",
            format!("Version to be deleted must not be referenced by an alias. Current list of aliases referencing this version: [{machine}:{}]", a.name),
        ));
    }
    state::delete_version(&sfn.inner.db, &machine, version)?;
    Ok(json!({}))
}

/// An alias's `routingConfiguration`: one or two existing versions of `machine`, weights
/// adding up to 100.
fn routing(sfn: &StepFunctions, machine: &str, v: &Value) -> Result<Value, SfnError> {
    let invalid = |why: &str| SfnError::new("ValidationException", why.to_owned());
    let Some(routes) = v.as_array().filter(|r| (1..=2).contains(&r.len())) else {
        return Err(invalid(
            "routingConfiguration must name one or two versions",
        ));
    };
    let versions = state::versions(&sfn.inner.db, machine)?;
    let mut total = 0;
    for r in routes {
        let (m, q) = split_qualified(r["stateMachineVersionArn"].as_str().unwrap_or(""))?;
        let exists = q
            .parse::<u64>()
            .ok()
            .is_some_and(|n| m == machine && versions.iter().any(|v| v.version == n));
        if !exists {
            return Err(SfnError::new(
                "ResourceNotFound",
                format!(
                    "Resource not found: '{}'",
                    r["stateMachineVersionArn"].as_str().unwrap_or("")
                ),
            ));
        }
        total += r["weight"]
            .as_u64()
            .filter(|w| *w <= 100)
            .ok_or_else(|| invalid("weight must be 0 to 100"))?;
    }
    if total != 100 {
        return Err(invalid(
            "The weights of routingConfiguration must add up to 100",
        ));
    }
    Ok(v.clone())
}

fn create_state_machine_alias(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let name = required(input, "name")?;
    check_name(name)?;
    if name.parse::<u64>().is_ok() {
        return Err(SfnError::new(
            "ValidationException",
            format!("Invalid alias name: '{name}' (an alias name is not a number)"),
        ));
    }
    let first = input["routingConfiguration"][0]["stateMachineVersionArn"]
        .as_str()
        .unwrap_or("");
    let (machine, _) = split_qualified(first)?;
    machine_entry(sfn, &machine)?;
    let routing = routing(sfn, &machine, &input["routingConfiguration"])?;
    let arn = format!("{machine}:{name}");
    if let Some(existing) = state::aliases(&sfn.inner.db, &machine)?
        .into_iter()
        .find(|a| a.name == name)
    {
        if existing.routing == routing {
            return Ok(
                json!({"stateMachineAliasArn": arn, "creationDate": seconds(existing.created_ms)}),
            );
        }
        return Err(SfnError::new(
            "ConflictException",
            format!("Alias already exists: '{arn}'"),
        ));
    }
    let now = now_ms();
    state::put_alias(
        &sfn.inner.db,
        &state::AliasRow {
            machine_arn: machine,
            name: name.to_owned(),
            description: input["description"].as_str().map(str::to_owned),
            routing,
            created_ms: now,
            updated_ms: now,
        },
    )?;
    Ok(json!({"stateMachineAliasArn": arn, "creationDate": seconds(now)}))
}

fn alias(sfn: &StepFunctions, arn: &str) -> Result<state::AliasRow, SfnError> {
    let (machine, name) = split_qualified(arn)?;
    state::aliases(&sfn.inner.db, &machine)?
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| SfnError::new("ResourceNotFound", format!("Resource not found: '{arn}'")))
}

fn describe_state_machine_alias(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "stateMachineAliasArn")?;
    let a = alias(sfn, arn)?;
    let mut out = json!({"stateMachineAliasArn": arn, "name": a.name, "routingConfiguration": a.routing,
                         "creationDate": seconds(a.created_ms), "updateDate": seconds(a.updated_ms)});
    if let Some(d) = a.description {
        out["description"] = json!(d);
    }
    Ok(out)
}

fn update_state_machine_alias(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "stateMachineAliasArn")?;
    let mut a = alias(sfn, arn)?;
    if let Some(r) = input.get("routingConfiguration") {
        a.routing = routing(sfn, &a.machine_arn, r)?;
    }
    if let Some(d) = input["description"].as_str() {
        a.description = Some(d.to_owned());
    }
    a.updated_ms = now_ms();
    state::put_alias(&sfn.inner.db, &a)?;
    Ok(json!({ "updateDate": seconds(a.updated_ms) }))
}

fn delete_state_machine_alias(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "stateMachineAliasArn")?;
    let (machine, name) = split_qualified(arn)?;
    state::delete_alias(&sfn.inner.db, &machine, &name)?;
    Ok(json!({}))
}

fn list_state_machine_aliases(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "stateMachineArn")?;
    machine_entry(sfn, arn)?;
    let items: Vec<Value> = state::aliases(&sfn.inner.db, arn)?
        .iter()
        .map(|a| json!({"stateMachineAliasArn": format!("{arn}:{}", a.name), "creationDate": seconds(a.created_ms)}))
        .collect();
    Ok(json!({ "stateMachineAliases": items }))
}

fn create_state_machine(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let name = required(input, "name")?;
    let definition = required(input, "definition")?;
    let role_arn = required(input, "roleArn")?;
    check_name(name)?;
    let kind = machine_kind(input)?;
    let machine = parse_definition(definition)?;
    let arn = sfn.machine_arn(name);
    let settings = settings_of(input);
    if let Some(existing) = lock(&sfn.inner.machines).get(&arn) {
        let r = &existing.row;
        if r.definition == definition
            && r.role_arn == role_arn
            && r.kind == kind
            && r.settings == settings
        {
            return Ok(json!({"stateMachineArn": arn, "creationDate": seconds(r.created_ms)}));
        }
        return Err(SfnError::new(
            "StateMachineAlreadyExists",
            format!("State Machine Already Exists: '{arn}'"),
        ));
    }
    let now = now_ms();
    let row = MachineRow {
        arn: arn.clone(),
        name: name.to_owned(),
        kind,
        definition: definition.to_owned(),
        role_arn: role_arn.to_owned(),
        created_ms: now,
        updated_ms: None,
        revision: uuid::Uuid::new_v4().to_string(),
        from_template: false,
        settings,
        tags: tags_of(input),
    };
    state::put_machine(&sfn.inner.db, &row)?;
    install(&sfn.inner, row, machine);
    let mut out = json!({"stateMachineArn": arn, "creationDate": seconds(now)});
    published(sfn, &arn, input, &mut out)?;
    Ok(out)
}

/// `publish: true` on CreateStateMachine / UpdateStateMachine: a version of what was just
/// written, its ARN in the answer.
fn published(
    sfn: &StepFunctions,
    arn: &str,
    input: &Value,
    out: &mut Value,
) -> Result<(), SfnError> {
    if input["publish"].as_bool() != Some(true) {
        if input.get("versionDescription").is_some() {
            return Err(SfnError::new(
                "ValidationException",
                "Version description can only be set when publish is true",
            ));
        }
        return Ok(());
    }
    let entry = machine_entry(sfn, arn)?;
    let (version_arn, _) = publish_version(sfn, &entry, input["versionDescription"].as_str())?;
    out["stateMachineVersionArn"] = json!(version_arn);
    Ok(())
}

fn describe_row(r: &MachineRow) -> Value {
    let mut out = json!({
        "stateMachineArn": r.arn,
        "name": r.name,
        "status": "ACTIVE",
        "definition": r.definition,
        "roleArn": r.role_arn,
        "type": r.kind,
        "creationDate": seconds(r.created_ms),
        "loggingConfiguration": r.settings["loggingConfiguration"],
        "tracingConfiguration": r.settings["tracingConfiguration"],
    });
    if let Some(d) = r.settings.get("description") {
        out["description"] = d.clone();
    }
    if r.updated_ms.is_some() {
        out["revisionId"] = json!(r.revision);
    }
    out
}

fn describe_state_machine(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "stateMachineArn")?;
    let entry = resolve(sfn, arn)?;
    let mut out = describe_row(&entry.row);
    // A version describes itself under its own ARN.
    if let Some(v) = &entry.version_arn {
        out["stateMachineArn"] = json!(v);
    }
    Ok(out)
}

/// A page token: the offset of the page's first item.
pub(crate) fn page(input: &Value, max: usize, default: usize) -> Result<(usize, usize), SfnError> {
    let limit = match input["maxResults"].as_u64() {
        None | Some(0) => default,
        Some(n) if n as usize <= max => n as usize,
        Some(n) => {
            return Err(SfnError::new(
                "ValidationException",
                format!("1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {max}"),
            ))
        }
    };
    let offset = match input["nextToken"].as_str() {
        None => 0,
        Some(t) => base64::engine::general_purpose::STANDARD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("nimbus:").and_then(|n| n.parse().ok()))
            .ok_or_else(|| SfnError::new("InvalidToken", format!("Invalid Token: '{t}'")))?,
    };
    Ok((offset, limit))
}

pub(crate) fn token(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("nimbus:{offset}"))
}

fn list_state_machines(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let (offset, limit) = page(input, 1000, 100)?;
    let mut all: Vec<Arc<MachineEntry>> = lock(&sfn.inner.machines).values().cloned().collect();
    all.sort_by(|a, b| a.row.name.cmp(&b.row.name));
    let items: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|m| {
            json!({"stateMachineArn": m.row.arn, "name": m.row.name, "type": m.row.kind,
                   "creationDate": seconds(m.row.created_ms)})
        })
        .collect();
    let mut out = json!({ "stateMachines": items });
    if all.len() > offset + limit {
        out["nextToken"] = json!(token(offset + limit));
    }
    Ok(out)
}

fn update_state_machine(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "stateMachineArn")?;
    let entry = machine_entry(sfn, arn)?;
    let changes = [
        "definition",
        "roleArn",
        "loggingConfiguration",
        "tracingConfiguration",
    ];
    if changes.iter().all(|k| input.get(*k).is_none()) {
        return Err(SfnError::new(
            "MissingRequiredParameter",
            "Either the definition, the role ARN, the LoggingConfiguration, or the TracingConfiguration must be specified",
        ));
    }
    let mut row = entry.row.clone();
    let machine = match input["definition"].as_str() {
        Some(d) => {
            let m = parse_definition(d)?;
            row.definition = d.to_owned();
            m
        }
        None => (*entry.machine).clone(),
    };
    if let Some(r) = input["roleArn"].as_str() {
        row.role_arn = r.to_owned();
    }
    for key in ["loggingConfiguration", "tracingConfiguration"] {
        if let Some(v) = input.get(key) {
            row.settings[key] = v.clone();
        }
    }
    let now = now_ms();
    row.updated_ms = Some(now);
    row.revision = uuid::Uuid::new_v4().to_string();
    state::put_machine(&sfn.inner.db, &row)?;
    let revision = row.revision.clone();
    install(&sfn.inner, row, machine);
    let mut out = json!({"updateDate": seconds(now), "revisionId": revision});
    published(sfn, arn, input, &mut out)?;
    Ok(out)
}

fn delete_state_machine(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "stateMachineArn")?;
    check_arn(arn)?;
    // Idempotent, as on AWS; running executions finish on the definition they started with.
    state::delete_machine(&sfn.inner.db, arn)?;
    lock(&sfn.inner.machines).remove(arn);
    Ok(json!({}))
}

fn diagnostics_json(d: &[Diagnostic]) -> Vec<Value> {
    d.iter()
        .map(|d| {
            let mut v = json!({"severity": "ERROR", "code": d.code, "message": d.message});
            if d.location != "null" && !d.location.is_empty() {
                v["location"] = json!(d.location);
            }
            v
        })
        .collect()
}

fn validate_definition(input: &Value) -> Value {
    let text = input["definition"].as_str().unwrap_or("");
    if text.trim().is_empty() {
        return json!({"result": "FAIL", "truncated": false, "diagnostics": [
            {"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": "Definition must be a valid JSON object"}]});
    }
    match asl::parse(text) {
        Ok(_) => json!({"result": "OK", "diagnostics": [], "truncated": false}),
        Err(d) => {
            json!({"result": "FAIL", "diagnostics": diagnostics_json(&d), "truncated": false})
        }
    }
}

/// The execution's input: JSON text, at most 256 KiB; `{}` when absent.
fn execution_input(input: &Value) -> Result<(String, Value), SfnError> {
    let text = match &input["input"] {
        Value::Null => "{}".to_owned(),
        Value::String(s) => s.clone(),
        _ => {
            return Err(SfnError::new(
                "InvalidExecutionInput",
                "Invalid State Machine Execution Input: 'Invalid execution input.'",
            ))
        }
    };
    if text.len() > crate::engine::PAYLOAD_LIMIT {
        return Err(SfnError::new(
            "ValidationException",
            format!("1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have length less than or equal to {}", crate::engine::PAYLOAD_LIMIT),
        ));
    }
    if text.trim().is_empty() {
        return Err(SfnError::new(
            "InvalidExecutionInput",
            "Invalid State Machine Execution Input: 'Invalid execution input.'",
        ));
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        SfnError::new(
            "InvalidExecutionInput",
            format!("Invalid State Machine Execution Input: '{e}'"),
        )
    })?;
    Ok((text, value))
}

fn context(
    execution_arn: &str,
    name: &str,
    input: &Value,
    role: &str,
    start_ms: u64,
    redrive_count: u64,
    machine: &MachineRow,
) -> Value {
    json!({
        "Execution": {"Id": execution_arn, "Input": input, "Name": name, "RoleArn": role,
                      "StartTime": format_ms(start_ms), "RedriveCount": redrive_count},
        "StateMachine": {"Id": machine.arn, "Name": machine.name},
    })
}

struct NoIntegrations;

impl crate::engine::Integrations for NoIntegrations {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        _: Vec<u8>,
        _: Option<String>,
    ) -> crate::engine::BoxFuture<'a, Result<crate::engine::Invoked, StatesError>> {
        Box::pin(async move {
            Err(StatesError::new(
                "Lambda.ResourceNotFoundException",
                format!("Function not found: {function} (nimbus has no functions here)"),
            ))
        })
    }

    fn call<'a>(
        &'a self,
        service: &'a str,
        _: &'a str,
        _: Value,
    ) -> crate::engine::BoxFuture<'a, Result<Value, (String, String)>> {
        Box::pin(async move {
            Err((
                "ServiceUnavailable".to_owned(),
                format!("nimbus serves no {service} here"),
            ))
        })
    }
}

/// What an execution's tasks reach: Step Functions itself (`states:startExecution`, with
/// `.sync` and `.sync:2`, and `aws-sdk:sfn:*`) and, through the binary, everything else.
fn integrations(inner: &Arc<Inner>) -> Arc<dyn crate::engine::Integrations> {
    Arc::new(WithStates {
        others: inner
            .integrations
            .get()
            .cloned()
            .unwrap_or_else(|| Arc::new(NoIntegrations)),
        sfn: Arc::downgrade(inner),
    })
}

struct WithStates {
    others: Arc<dyn crate::engine::Integrations>,
    /// Weak: executions must not keep the service alive.
    sfn: std::sync::Weak<Inner>,
}

impl crate::engine::Integrations for WithStates {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Vec<u8>,
        trace: Option<String>,
    ) -> crate::engine::BoxFuture<'a, Result<crate::engine::Invoked, StatesError>> {
        self.others.invoke(function, payload, trace)
    }

    fn call<'a>(
        &'a self,
        service: &'a str,
        action: &'a str,
        input: Value,
    ) -> crate::engine::BoxFuture<'a, Result<Value, (String, String)>> {
        if !matches!(service, "states" | "sfn") {
            return self.others.call(service, action, input);
        }
        Box::pin(async move {
            let Some(inner) = self.sfn.upgrade() else {
                return Err((
                    "ServiceUnavailable".into(),
                    "Step Functions is stopping".into(),
                ));
            };
            states_call(&StepFunctions { inner }, action, input).await
        })
    }
}

/// A task's call of Step Functions: the SDK's PascalCase shapes on both sides; `.sync` waits
/// for the started execution to end (its output as text), `.sync:2` likewise with the output
/// as JSON.
async fn states_call(
    sfn: &StepFunctions,
    action: &str,
    input: Value,
) -> Result<Value, (String, String)> {
    let (action, wait) = match action.split_once(".sync") {
        Some((a, rest)) => (a, Some(rest == ":2")),
        None => (action, None),
    };
    let mut request = Map::new();
    for (k, v) in input.as_object().into_iter().flatten() {
        let key = crate::camel(k);
        // Step Functions takes an object as the child's input and sends it as text.
        let v = match (key.as_str(), v) {
            ("input" | "output", v) if !v.is_string() => Value::String(v.to_string()),
            (_, v) => v.clone(),
        };
        request.insert(key, v);
    }
    let request = Value::Object(request);
    let fail = |e: SfnError| (e.code().to_owned(), e.to_string());
    // An Express child keeps no history to wait on: `.sync` runs it to its end here.
    if wait.is_some() && action == "StartExecution" {
        let child = request["stateMachineArn"].as_str().unwrap_or_default();
        if resolve(sfn, child).map_err(fail)?.row.kind == "EXPRESS" {
            let answer = start_sync_execution(sfn, &request).await.map_err(fail)?;
            let mut out = pascal(&answer);
            if wait == Some(true) {
                if let Some(o) = answer["output"].as_str() {
                    out["Output"] = serde_json::from_str(o).unwrap_or(Value::Null);
                }
            }
            return match answer["status"].as_str() {
                Some("SUCCEEDED") => Ok(out),
                _ => Err(("States.TaskFailed".into(), out.to_string())),
            };
        }
    }
    let answer = dispatch(sfn, action, &request).await.map_err(fail)?;
    let Some(json_output) = wait else {
        return Ok(pascal(&answer));
    };
    if action != "StartExecution" {
        return Err((
            "ValidationException".into(),
            format!("{action}.sync is not an integration Step Functions offers"),
        ));
    }
    let arn = answer["executionArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let ended = wait_for_end(sfn, &arn).await;
    let described = describe_execution(sfn, &json!({ "executionArn": arn })).map_err(fail)?;
    let mut out = pascal(&described);
    if json_output {
        if let Some(o) = described["output"].as_str() {
            out["Output"] = serde_json::from_str(o).unwrap_or(Value::Null);
        }
    }
    match (ended, described["status"].as_str()) {
        (_, Some("SUCCEEDED")) => Ok(out),
        _ => Err(("States.TaskFailed".into(), out.to_string())),
    }
}

/// Waits until the Standard execution `arn` has ended.
pub(crate) async fn wait_for_end(sfn: &StepFunctions, arn: &str) -> bool {
    let (tx, rx) = tokio::sync::oneshot::channel();
    lock(&sfn.inner.waiters)
        .entry(arn.to_owned())
        .or_default()
        .push(tx);
    // It may have ended before the waiter was in place.
    if !lock(&sfn.inner.running).contains_key(arn) {
        lock(&sfn.inner.waiters).remove(arn);
        return true;
    }
    rx.await.is_ok()
}

/// Top-level keys in the SDK's PascalCase, as Step Functions' tasks give API answers.
fn pascal(v: &Value) -> Value {
    match v.as_object() {
        Some(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (crate::pascal(k), v.clone()))
                .collect(),
        ),
        None => v.clone(),
    }
}

/// When an execution's task ends (or panics), its entry in `running` is removed, unless a
/// redrive has replaced it meanwhile, and whoever waits for it (`.sync`) is answered.
struct RunDone {
    inner: Arc<Inner>,
    arn: String,
}

impl Drop for RunDone {
    fn drop(&mut self) {
        let me = tokio::task::try_id();
        let mut running = lock(&self.inner.running);
        if running.get(&self.arn).map(|h| h.id()) == me {
            running.remove(&self.arn);
            drop(running);
            for waiter in lock(&self.inner.waiters)
                .remove(&self.arn)
                .unwrap_or_default()
            {
                let _ = waiter.send(());
            }
        }
    }
}

/// Starts a Standard execution's task: runs it to its end (or from `resume`).
pub(crate) fn spawn_standard(
    sfn: &StepFunctions,
    row: &ExecutionRow,
    machine: Arc<asl::Machine>,
    machine_row: &MachineRow,
    input: Value,
    resume: Option<Resume>,
    upstream: Option<&str>,
) {
    let inner = Arc::clone(&sfn.inner);
    let run = Run {
        integrations: integrations(&inner),
        journal: crate::logging::journal(
            &inner,
            Arc::new(DbJournal {
                db: Arc::clone(&inner.db),
                execution: row.id,
            }),
            machine_row,
            &row.arn,
            row.start_ms,
        ),
        context: context(
            &row.arn,
            &row.name,
            &input,
            &row.role_arn,
            row.start_ms,
            row.redrive_count,
            machine_row,
        ),
        region: inner.config.region.clone(),
        delay_scale: inner.config.delay_scale,
        last_event: AtomicU64::new(row.last_event),
        tokens: Arc::clone(&inner.tokens),
        telemetry: inner.telemetry.get().cloned(),
        trace: execution_trace(machine_row, upstream),
        express: false,
        map_runs: Some(Arc::new(crate::maprun::DbMapRuns {
            inner: Arc::downgrade(&inner),
        })),
    };
    let arn = row.arn.clone();
    let mut running = lock(&inner.running);
    let task_inner = Arc::clone(&inner);
    let task_arn = arn.clone();
    let handle = tokio::spawn(async move {
        let _done = RunDone {
            inner: Arc::clone(&task_inner),
            arn: task_arn.clone(),
        };
        let outcome = run.execute(&machine, input, resume).await;
        if let Outcome::Suspended(why) = &outcome {
            tracing::error!(execution = %task_arn, "the execution's history could not be written, so it stops here and continues after a restart: {why}");
        } else {
            // An execution that ended inside a distributed Map (it timed out) ends its Map
            // Run, and the run's children, with it.
            crate::maprun::close_runs_left_open(&task_inner, &task_arn).await;
        }
    });
    running.insert(arn, handle.abort_handle());
}

/// The execution's `name`, checked, or a new UUID as on AWS.
fn execution_name(input: &Value) -> Result<String, SfnError> {
    match input["name"].as_str() {
        Some(n) => check_name(n).map(|_| n.to_owned()),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

/// An Express execution's ARN: its name and a UUID after the machine's name.
fn express_arn(cfg: &crate::SfnConfig, machine: &str, name: &str) -> String {
    format!(
        "arn:aws:states:{}:{}:express:{machine}:{name}:{}",
        cfg.region,
        cfg.account,
        uuid::Uuid::new_v4()
    )
}

async fn start_execution(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let machine_arn = required(input, "stateMachineArn")?;
    let entry = resolve(sfn, machine_arn)?;
    let name = execution_name(input)?;
    let (text, value) = execution_input(input)?;
    let upstream = trace_header(input)?;
    let start = match prepare_start(sfn, &entry, &name, &text, value)? {
        Start::Running(arn, start_ms) => {
            return Ok(json!({"executionArn": arn, "startDate": seconds(start_ms)}))
        }
        s => s,
    };
    if let Start::Standard(first, _) = &start {
        let (row, started) = (**first).clone();
        let inserted = state::start_execution(&sfn.inner.db, row, started).await;
        return finish_start(sfn, &entry, start, inserted, upstream);
    }
    finish_start(sfn, &entry, start, Ok(0), upstream)
}

/// Starts an execution of the state machine `machine` (a name) for an EventBridge rule's
/// target, from synchronous code: the execution is committed before this returns.
pub(crate) fn start_now(
    sfn: &StepFunctions,
    machine: &str,
    input: &str,
) -> Result<String, SfnError> {
    let entry = resolve(sfn, &sfn.machine_arn(machine))?;
    let name = uuid::Uuid::new_v4().to_string();
    let (text, value) = execution_input(&json!({ "input": input }))?;
    let start = prepare_start(sfn, &entry, &name, &text, value)?;
    let inserted = match &start {
        Start::Standard(first, _) => {
            let (row, started) = (**first).clone();
            state::start_execution_now(&sfn.inner.db, row, started)
        }
        _ => Ok(0),
    };
    let answer = finish_start(sfn, &entry, start, inserted, None)?;
    Ok(answer["executionArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// A start, checked and ready to be written (Standard) or run (Express).
enum Start {
    /// The same execution is already running: the start is answered with it.
    Running(String, u64),
    Express(String, Value, u64),
    Standard(Box<(ExecutionRow, Event)>, Value),
}

fn prepare_start(
    sfn: &StepFunctions,
    entry: &MachineEntry,
    name: &str,
    text: &str,
    value: Value,
) -> Result<Start, SfnError> {
    let cfg = &sfn.inner.config;
    let start_ms = now_ms();
    if entry.row.kind == "EXPRESS" {
        return Ok(Start::Express(
            express_arn(cfg, &entry.row.name, name),
            value,
            start_ms,
        ));
    }
    let arn = format!(
        "arn:aws:states:{}:{}:execution:{}:{name}",
        cfg.region, cfg.account, entry.row.name
    );
    if let Some(existing) = state::execution(&sfn.inner.db, &arn)? {
        // Idempotent for the same input while it runs, as on AWS.
        if existing.status == "RUNNING" && existing.input == text {
            return Ok(Start::Running(arn, existing.start_ms));
        }
        return Err(SfnError::new(
            "ExecutionAlreadyExists",
            format!("Execution Already Exists: '{arn}'"),
        ));
    }
    let row = ExecutionRow {
        id: 0,
        arn,
        machine_arn: entry.row.arn.clone(),
        name: name.to_owned(),
        status: "RUNNING".into(),
        input: text.to_owned(),
        output: None,
        error: None,
        cause: None,
        start_ms,
        stop_ms: None,
        definition: entry.row.definition.clone(),
        role_arn: entry.row.role_arn.clone(),
        cursor: None,
        last_event: 1,
        redrive_count: 0,
        redrive_ms: None,
        version_arn: entry.version_arn.clone(),
        alias_arn: entry.alias_arn.clone(),
        map_run: None,
        map_index: None,
        map_items: None,
    };
    let started = execution_started(&row);
    Ok(Start::Standard(Box::new((row, started)), value))
}

/// A new Standard execution's first event, kept with its row.
pub(crate) fn execution_started(row: &ExecutionRow) -> Event {
    Event {
        id: 1,
        previous: 0,
        ts_ms: row.start_ms,
        kind: "ExecutionStarted".into(),
        details: Some((
            "executionStartedEventDetails".into(),
            json!({"input": row.input, "inputDetails": {"truncated": false}, "roleArn": row.role_arn}),
        )),
    }
}

/// Runs a prepared start once a Standard execution's row is written (`inserted`).
fn finish_start(
    sfn: &StepFunctions,
    entry: &MachineEntry,
    start: Start,
    inserted: Result<i64, nimbus_store::StoreError>,
    upstream: Option<&str>,
) -> Result<Value, SfnError> {
    if !matches!(start, Start::Running(..)) && inserted.is_ok() {
        if let Some(t) = sfn.inner.telemetry.get() {
            t.record_execution_started(&entry.row.name, &entry.row.kind);
        }
    }
    match start {
        Start::Running(arn, start_ms) => {
            Ok(json!({"executionArn": arn, "startDate": seconds(start_ms)}))
        }
        Start::Express(arn, value, start_ms) => {
            let run = express_run(
                sfn,
                &arn,
                &arn_name(&arn),
                &value,
                &entry.row,
                start_ms,
                upstream,
            );
            let machine = Arc::clone(&entry.machine);
            let inner = Arc::clone(&sfn.inner);
            let task_arn = arn.clone();
            let mut running = lock(&sfn.inner.running);
            let handle = tokio::spawn(async move {
                let _ = run.execute(&machine, value, None).await;
                lock(&inner.running).remove(&task_arn);
            });
            running.insert(arn.clone(), handle.abort_handle());
            Ok(json!({"executionArn": arn, "startDate": seconds(start_ms)}))
        }
        Start::Standard(first, value) => {
            let (mut row, started) = *first;
            row.id = match inserted {
                Ok(id) => id,
                // Two starts of one name at once: the second finds the first's row.
                Err(_) if state::execution(&sfn.inner.db, &row.arn)?.is_some() => {
                    return Err(SfnError::new(
                        "ExecutionAlreadyExists",
                        format!("Execution Already Exists: '{}'", row.arn),
                    ))
                }
                Err(e) => return Err(e.into()),
            };
            // The first event is kept with the row, not by the journal: logged here.
            if let Some(dest) =
                crate::logging::destination(&sfn.inner, &entry.row, &row.arn, row.start_ms)
            {
                crate::logging::write(&sfn.inner, &dest, std::slice::from_ref(&started));
            }
            spawn_standard(
                sfn,
                &row,
                Arc::clone(&entry.machine),
                &entry.row,
                value,
                None,
                upstream,
            );
            Ok(json!({"executionArn": row.arn, "startDate": seconds(row.start_ms)}))
        }
    }
}

/// An Express execution's name: the part after the machine's name in its ARN.
fn arn_name(arn: &str) -> String {
    arn.split(':').nth(7).unwrap_or_default().to_owned()
}

pub(crate) fn express_run(
    sfn: &StepFunctions,
    arn: &str,
    name: &str,
    input: &Value,
    machine: &MachineRow,
    start_ms: u64,
    upstream: Option<&str>,
) -> Run {
    Run {
        integrations: integrations(&sfn.inner),
        journal: crate::logging::journal(&sfn.inner, Arc::new(NoJournal), machine, arn, start_ms),
        context: context(arn, name, input, &machine.role_arn, start_ms, 0, machine),
        region: sfn.inner.config.region.clone(),
        delay_scale: sfn.inner.config.delay_scale,
        last_event: AtomicU64::new(0),
        tokens: Arc::clone(&sfn.inner.tokens),
        telemetry: sfn.inner.telemetry.get().cloned(),
        trace: execution_trace(machine, upstream),
        express: true,
        // Express executions keep nothing: a distributed Map's items run inline.
        map_runs: None,
    }
}

/// Whether the machine's executions are traced: X-Ray tracing is opt-in on AWS
/// (`tracingConfiguration.enabled`, SAM's `Tracing: {Enabled: true}`).
fn traced(machine: &MachineRow) -> bool {
    machine.settings["tracingConfiguration"]["enabled"] == true
}

/// The `traceHeader` a start request names (or the caller's `X-Amzn-Trace-Id`, which nimbus's
/// endpoint puts there): at most 256 characters, as Step Functions checks it.
fn trace_header(input: &Value) -> Result<Option<&str>, SfnError> {
    match &input["traceHeader"] {
        Value::Null => Ok(None),
        Value::String(h) if h.len() <= 256 => Ok(Some(h)),
        Value::String(_) => Err(SfnError::new(
            "ValidationException",
            "1 validation error detected: Value at 'traceHeader' failed to satisfy constraint: Member must have length less than or equal to 256",
        )),
        _ => Err(SfnError::new(
            "ValidationException",
            "traceHeader must be a string",
        )),
    }
}

/// The trace an execution's spans go to: the caller's when it sent one that is sampled or the
/// machine is traced (its spans join the caller's trace), else a new root when the machine is
/// traced, else none.
fn execution_trace(machine: &MachineRow, upstream: Option<&str>) -> Option<String> {
    let parsed = upstream.and_then(nimbus_core::trace::TraceHeader::parse);
    match (upstream, parsed) {
        (Some(h), Some(p))
            if p.sampled.as_deref() != Some("0")
                && (traced(machine) || p.sampled.as_deref() == Some("1")) =>
        {
            Some(h.to_owned())
        }
        _ => traced(machine).then(trace_root),
    }
}

/// A new X-Ray trace for an execution, sampled.
fn trace_root() -> String {
    let secs = now_ms() / 1000;
    let random: [u8; 12] = rand::random();
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("Root=1-{secs:08x}-{hex};Sampled=1")
}

async fn start_sync_execution(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let machine_arn = required(input, "stateMachineArn")?;
    let entry = resolve(sfn, machine_arn)?;
    if entry.row.kind != "EXPRESS" {
        return Err(SfnError::new(
            "StateMachineTypeNotSupported",
            "This operation is not supported by this type of state machine",
        ));
    }
    let name = execution_name(input)?;
    let (text, value) = execution_input(input)?;
    let cfg = &sfn.inner.config;
    let start_ms = now_ms();
    let arn = express_arn(cfg, &entry.row.name, &name);
    let run = express_run(
        sfn,
        &arn,
        &name,
        &value,
        &entry.row,
        start_ms,
        trace_header(input)?,
    );
    if let Some(t) = sfn.inner.telemetry.get() {
        t.record_execution_started(&entry.row.name, "EXPRESS");
    }
    let outcome = run.execute(&entry.machine, value, None).await;
    let stop_ms = now_ms();
    let mut out = json!({
        "executionArn": arn,
        "stateMachineArn": machine_arn,
        "name": name,
        "startDate": seconds(start_ms),
        "stopDate": seconds(stop_ms),
        "input": text,
        "inputDetails": {"included": true},
        "billingDetails": {
            "billedMemoryUsedInMB": 64,
            // Express workflows are billed in 100 ms steps.
            "billedDurationInMilliseconds": (stop_ms.saturating_sub(start_ms)).div_ceil(100).max(1) * 100,
        },
    });
    match outcome {
        Outcome::Succeeded(v) => {
            out["status"] = json!("SUCCEEDED");
            out["output"] = json!(v.to_string());
            out["outputDetails"] = json!({"included": true});
        }
        Outcome::Failed(e) => {
            out["status"] = json!("FAILED");
            if !e.error.is_empty() {
                out["error"] = json!(e.error);
            }
            if !e.cause.is_empty() {
                out["cause"] = json!(e.cause);
            }
        }
        Outcome::TimedOut => out["status"] = json!("TIMED_OUT"),
        Outcome::Suspended(why) => return Err(SfnError::Internal(why)),
    }
    Ok(out)
}

fn execution_row(sfn: &StepFunctions, arn: &str) -> Result<ExecutionRow, SfnError> {
    check_arn(arn)?;
    if arn.split(':').nth(5) == Some("express") {
        return Err(SfnError::new(
            "InvalidArn",
            "Invalid Arn: 'Resource type not valid in this context: express'",
        ));
    }
    state::execution(&sfn.inner.db, arn)?.ok_or_else(|| {
        SfnError::new(
            "ExecutionDoesNotExist",
            format!("Execution Does Not Exist: '{arn}'"),
        )
    })
}

fn describe_execution(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "executionArn")?;
    let r = execution_row(sfn, arn)?;
    let mut out = json!({
        "executionArn": r.arn,
        "stateMachineArn": r.machine_arn,
        "name": r.name,
        "status": r.status,
        "startDate": seconds(r.start_ms),
        "input": r.input,
        "inputDetails": {"included": true},
        "redriveCount": r.redrive_count,
    });
    if let Some(v) = &r.version_arn {
        out["stateMachineVersionArn"] = json!(v);
    }
    if let Some(a) = &r.alias_arn {
        out["stateMachineAliasArn"] = json!(a);
    }
    if let Some(m) = &r.map_run {
        out["mapRunArn"] = json!(m);
    }
    if let Some(ms) = r.redrive_ms {
        out["redriveDate"] = seconds(ms);
    }
    if let Some(stop) = r.stop_ms {
        out["stopDate"] = seconds(stop);
    }
    if let Some(o) = &r.output {
        out["output"] = json!(o);
        out["outputDetails"] = json!({"included": true});
    }
    if let Some(e) = r.error.as_deref().filter(|e| !e.is_empty()) {
        out["error"] = json!(e);
    }
    if let Some(c) = r.cause.as_deref().filter(|c| !c.is_empty()) {
        out["cause"] = json!(c);
    }
    match r.status.as_str() {
        "RUNNING" | "SUCCEEDED" => {
            out["redriveStatus"] = json!("NOT_REDRIVABLE");
            out["redriveStatusReason"] =
                json!(format!("Execution is {} and cannot be redriven", r.status));
        }
        // A Map Run's child is redriven with its run, by redriving its parent.
        _ if r.map_run.is_some() => out["redriveStatus"] = json!("REDRIVABLE_BY_MAP_RUN"),
        _ => out["redriveStatus"] = json!("REDRIVABLE"),
    }
    Ok(out)
}

fn describe_machine_for_execution(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "executionArn")?;
    let r = execution_row(sfn, arn)?;
    let name = r
        .machine_arn
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let current = lock(&sfn.inner.machines)
        .get(root_machine(&r.machine_arn))
        .cloned();
    let (settings, created) = match &current {
        Some(m) => (
            m.row.settings.clone(),
            m.row.updated_ms.unwrap_or(m.row.created_ms),
        ),
        None => (settings_of(&json!({})), r.start_ms),
    };
    let mut out = json!({
        "stateMachineArn": r.machine_arn,
        "name": name,
        "definition": r.definition,
        "roleArn": r.role_arn,
        "updateDate": seconds(created),
        "loggingConfiguration": settings["loggingConfiguration"],
        "tracingConfiguration": settings["tracingConfiguration"],
    });
    // A Map Run's child runs its Map state's item processor, named by the run's label.
    if let Some(m) = r.map_run.as_deref() {
        out["mapRunArn"] = json!(m);
        if let Some(run) = state::map_run(&sfn.inner.db, m)? {
            out["label"] = json!(run.label);
        }
    }
    Ok(out)
}

/// Where a redriven execution goes on: the state its cursor names, entered again from its
/// input; `None` when it stopped before its first state.
pub(crate) fn redrive_resume(row: &ExecutionRow) -> Option<Resume> {
    let cursor = row
        .cursor
        .as_deref()
        .and_then(|c| serde_json::from_str::<Value>(c).ok())
        .and_then(|c| Cursor::from_json(&c))
        .filter(|c| !c.state.is_empty())?;
    Some(Resume {
        cursor,
        task_in_flight: None,
        task_result: None,
        failed_ms: None,
        waiting: false,
        reenter: true,
        continued: None,
        entered_ms: None,
    })
}

/// `RedriveExecution`: a failed, timed-out or aborted Standard execution runs again from the
/// state where it stopped (that state entered again with its input; what came before is not
/// repeated).
async fn redrive_execution(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "executionArn")?;
    let r = execution_row(sfn, arn)?;
    let not_redrivable = |why: String| SfnError::new("ExecutionNotRedrivable", why);
    if let Some(run) = &r.map_run {
        return Err(not_redrivable(format!(
            "Execution '{arn}' is a child execution of the Map Run '{run}': redrive its parent execution"
        )));
    }
    let resume = redrive_resume(&r);
    let Some(mut resume) = resume.filter(|_| r.status != "RUNNING" && r.status != "SUCCEEDED")
    else {
        return Err(not_redrivable(format!(
            "Execution '{arn}' is {} and cannot be redriven",
            r.status
        )));
    };
    let machine = asl::parse(&r.definition)
        .map_err(|d| SfnError::Internal(asl::invalid_definition_message(&d)))?;
    // A distributed Map that failed redrives its Map Run: the last one its attempt said.
    resume.cursor.redrive_run = None;
    if let Some(asl::Kind::Map {
        distributed: Some(_),
        ..
    }) = machine.states.get(&resume.cursor.state).map(|s| &s.kind)
    {
        let (events, _) =
            state::history(&sfn.inner.db, r.id, resume.cursor.entered, false, 100_000)?;
        resume.cursor.redrive_run = events
            .iter()
            .rev()
            .find(|e| e.kind == "MapRunStarted" || e.kind == "MapRunRedriven")
            .and_then(|e| e.details.as_ref())
            .and_then(|(_, d)| d["mapRunArn"].as_str())
            .map(str::to_owned);
    }
    let now = now_ms();
    let event = Event {
        id: 0,
        previous: 0,
        ts_ms: now,
        kind: "ExecutionRedriven".into(),
        details: None,
    };
    let Some(last) = state::redrive(&sfn.inner.db, r.id, event).await? else {
        return Err(not_redrivable(format!(
            "Execution '{arn}' cannot be redriven now"
        )));
    };
    let mut row = r;
    row.last_event = last;
    row.redrive_count += 1;
    let machine_row = lock(&sfn.inner.machines)
        .get(&row.machine_arn)
        .map(|m| m.row.clone())
        .ok_or_else(|| {
            SfnError::new(
                "StateMachineDoesNotExist",
                format!("State Machine Does Not Exist: '{}'", row.machine_arn),
            )
        })?;
    let input_value: Value = serde_json::from_str(&row.input).unwrap_or(json!({}));
    spawn_standard(
        sfn,
        &row,
        Arc::new(machine),
        &machine_row,
        input_value,
        Some(resume),
        None,
    );
    Ok(json!({ "redriveDate": seconds(now) }))
}

async fn stop_execution(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "executionArn")?;
    let r = execution_row(sfn, arn)?;
    if let Some(h) = lock(&sfn.inner.running).remove(arn) {
        h.abort();
    }
    let now = now_ms();
    let mut det = Map::new();
    for key in ["error", "cause"] {
        if let Some(v) = input[key].as_str() {
            det.insert(key.into(), json!(v));
        }
    }
    let event = Event {
        id: 0,
        previous: 0,
        ts_ms: now,
        kind: "ExecutionAborted".into(),
        details: Some(("executionAbortedEventDetails".into(), Value::Object(det))),
    };
    let stopped = state::abort(&sfn.inner.db, r.id, event).await?;
    // Its distributed Maps' children stop with it.
    crate::maprun::abort_runs_of(&sfn.inner, arn).await?;
    // An aborted execution's task never reaches its own end: whoever waits for it (a
    // parent's `.sync` task) is answered here, once the abort is committed.
    for waiter in lock(&sfn.inner.waiters).remove(arn).unwrap_or_default() {
        let _ = waiter.send(());
    }
    if let (true, Some(t)) = (stopped, sfn.inner.telemetry.get()) {
        let machine = r.machine_arn.rsplit(':').next().unwrap_or_default();
        let secs = now.saturating_sub(r.start_ms) as f64 / 1000.0;
        t.record_execution_ended(machine, "ABORTED", secs);
    }
    let stop_ms = if stopped {
        now
    } else {
        execution_row(sfn, arn)?.stop_ms.unwrap_or(now)
    };
    Ok(json!({ "stopDate": seconds(stop_ms) }))
}

fn event_json(e: &Event, include_data: bool) -> Value {
    let mut v = json!({"timestamp": seconds(e.ts_ms), "type": e.kind, "id": e.id,
                       "previousEventId": e.previous});
    if let Some((k, d)) = &e.details {
        v[k.as_str()] = crate::engine::shown_details(d, include_data);
    }
    v
}

fn get_execution_history(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "executionArn")?;
    let r = execution_row(sfn, arn)?;
    let (offset, limit) = page(input, 1000, 100)?;
    let reverse = input["reverseOrder"].as_bool().unwrap_or(false);
    let include = input["includeExecutionData"].as_bool().unwrap_or(true);
    // The token is the last event id handed out: the next page starts after it (or before it,
    // in reverse order).
    let (events, more) = state::history(&sfn.inner.db, r.id, offset as u64, reverse, limit)?;
    let mut out =
        json!({"events": events.iter().map(|e| event_json(e, include)).collect::<Vec<_>>()});
    if more {
        if let Some(last) = events.last() {
            out["nextToken"] = json!(token(last.id as usize));
        }
    }
    Ok(out)
}

fn list_executions(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let of = match (
        input["stateMachineArn"].as_str(),
        input["mapRunArn"].as_str(),
    ) {
        (Some(_), Some(_)) => {
            return Err(SfnError::new(
                "ValidationException",
                "Only one of stateMachineArn and mapRunArn can be given",
            ))
        }
        (None, Some(map_run)) => {
            crate::maprun::describe_map_run(sfn, &json!({ "mapRunArn": map_run }))?;
            state::Of::MapRun(map_run)
        }
        _ => {
            let machine_arn = required(input, "stateMachineArn")?;
            let entry = machine_entry(sfn, machine_arn)?;
            if entry.row.kind == "EXPRESS" {
                return Err(SfnError::new(
                    "StateMachineTypeNotSupported",
                    "This operation is not supported by this type of state machine",
                ));
            }
            state::Of::Machine(machine_arn)
        }
    };
    let of_map_run = matches!(of, state::Of::MapRun(_));
    let status = match input["statusFilter"].as_str() {
        None => None,
        Some(s @ ("RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED" | "PENDING_REDRIVE")) => Some(s),
        Some(s) => {
            return Err(SfnError::new(
                "ValidationException",
                format!("1 validation error detected: Value '{s}' at 'statusFilter' failed to satisfy constraint: Member must satisfy enum value set: [SUCCEEDED, TIMED_OUT, PENDING_REDRIVE, ABORTED, FAILED, RUNNING]"),
            ))
        }
    };
    let (offset, limit) = page(input, 1000, 100)?;
    let (rows, more) = state::list_executions(&sfn.inner.db, of, status, offset, limit)?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = json!({"executionArn": r.arn, "stateMachineArn": r.machine_arn, "name": r.name,
                               "status": r.status, "startDate": seconds(r.start_ms), "redriveCount": r.redrive_count});
            if let Some(s) = r.stop_ms {
                v["stopDate"] = seconds(s);
            }
            // A Map Run's children say it, and how many items each got, only when listed by it.
            if of_map_run {
                v["mapRunArn"] = json!(r.map_run);
                v["itemCount"] = json!(r.map_items.unwrap_or(1));
            }
            v
        })
        .collect();
    let mut out = json!({ "executions": items });
    if more {
        out["nextToken"] = json!(token(offset + limit));
    }
    Ok(out)
}

fn tag_resource(sfn: &StepFunctions, input: &Value, add: bool) -> Result<Value, SfnError> {
    let arn = required(input, "resourceArn")?;
    let entry = machine_entry(sfn, arn)
        .map_err(|_| SfnError::new("ResourceNotFound", format!("Resource not found: '{arn}'")))?;
    let mut row = entry.row.clone();
    let tags = row.tags.as_object_mut().expect("tags are an object");
    if add {
        for t in input["tags"].as_array().into_iter().flatten() {
            if let (Some(k), Some(v)) = (t["key"].as_str(), t["value"].as_str()) {
                tags.insert(k.to_owned(), json!(v));
            }
        }
    } else {
        for k in input["tagKeys"].as_array().into_iter().flatten() {
            if let Some(k) = k.as_str() {
                tags.remove(k);
            }
        }
    }
    state::put_machine(&sfn.inner.db, &row)?;
    install(&sfn.inner, row, (*entry.machine).clone());
    Ok(json!({}))
}

fn list_tags(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "resourceArn")?;
    let entry = machine_entry(sfn, arn)
        .map_err(|_| SfnError::new("ResourceNotFound", format!("Resource not found: '{arn}'")))?;
    let tags: Vec<Value> = entry
        .row
        .tags
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    Ok(json!({ "tags": tags }))
}

/// A journal that keeps the events in memory (TestState reads them back).
#[derive(Default)]
struct MemoryJournal(std::sync::Mutex<Vec<Event>>);

impl crate::engine::Journal for MemoryJournal {
    fn record<'a>(
        &'a self,
        events: Vec<Event>,
        _: Option<Cursor>,
    ) -> crate::engine::BoxFuture<'a, Result<(), String>> {
        lock(&self.0).extend(events);
        Box::pin(async { Ok(()) })
    }
}

/// `TestState`: one state run on its own with the given input, its tasks called for real.
/// Retries are not run (as on AWS): an error a retrier would catch answers `RETRIABLE`.
async fn test_state(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let text = required(input, "definition")?;
    let mut state: Value = serde_json::from_str(text).map_err(|e| {
        SfnError::new(
            "InvalidDefinition",
            format!("Invalid State Machine Definition: 'INVALID_JSON_DESCRIPTION: {e}'"),
        )
    })?;
    let retry = state.as_object_mut().and_then(|s| s.remove("Retry"));
    // Each state it may go to is a Succeed of its own, so the run stops there.
    let mut states = Map::new();
    let mut targets: Vec<String> = Vec::new();
    targets.extend(state["Next"].as_str().map(str::to_owned));
    targets.extend(state["Default"].as_str().map(str::to_owned));
    for list in ["Choices", "Catch"] {
        for c in state[list].as_array().into_iter().flatten() {
            targets.extend(c["Next"].as_str().map(str::to_owned));
        }
    }
    const NAME: &str = "TestState";
    for t in &targets {
        states.insert(t.clone(), json!({"Type": "Succeed"}));
    }
    states.insert(NAME.to_owned(), state.clone());
    let mut machine_def = json!({"StartAt": NAME, "States": states});
    if let Some(q) = state.get("QueryLanguage") {
        machine_def["QueryLanguage"] = q.clone();
    }
    let machine = asl::parse_value(&machine_def)
        .map_err(|d| SfnError::new("InvalidDefinition", asl::invalid_definition_message(&d)))?;
    let (_, value) = execution_input(input)?;
    let journal = Arc::new(MemoryJournal::default());
    let start_ms = now_ms();
    let row = MachineRow {
        arn: sfn.machine_arn("TestState"),
        name: "TestState".into(),
        kind: "STANDARD".into(),
        definition: machine_def.to_string(),
        role_arn: input["roleArn"].as_str().unwrap_or_default().to_owned(),
        created_ms: start_ms,
        updated_ms: None,
        revision: String::new(),
        from_template: false,
        settings: json!({}),
        tags: json!({}),
    };
    let arn = express_arn(&sfn.inner.config, "TestState", "TestState");
    let mut run = express_run(sfn, &arn, "TestState", &value, &row, start_ms, None);
    run.journal = journal.clone();
    run.telemetry = None;
    let outcome = run.execute(&machine, value, None).await;
    let events = lock(&journal.0).clone();
    let entered: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind.ends_with("StateEntered"))
        .collect();
    let next = entered.get(1).and_then(|e| {
        e.details
            .as_ref()
            .and_then(|(_, d)| d["name"].as_str().map(str::to_owned))
    });
    let exited = events.iter().find(|e| {
        e.kind.ends_with("StateExited")
            && e.details.as_ref().is_some_and(|(_, d)| d["name"] == NAME)
    });
    let output = exited
        .and_then(|e| e.details.as_ref())
        .and_then(|(_, d)| d["output"].as_str().map(str::to_owned));
    let caught = events
        .iter()
        .any(|e| e.kind.ends_with("Failed") && !e.kind.starts_with("Execution"));
    let mut out = Map::new();
    match outcome {
        Outcome::Succeeded(_) => {
            out.insert(
                "status".into(),
                json!(if caught { "CAUGHT_ERROR" } else { "SUCCEEDED" }),
            );
            if let Some(o) = output {
                out.insert("output".into(), json!(o));
            }
            if let Some(n) = next {
                out.insert("nextState".into(), json!(n));
            }
        }
        Outcome::Failed(e) => {
            let retriable = retry.as_ref().and_then(Value::as_array).is_some_and(|rs| {
                rs.iter().any(|r| {
                    r["ErrorEquals"].as_array().into_iter().flatten().any(|n| {
                        n == "States.ALL" && e.error != "States.Runtime"
                            || n.as_str() == Some(&e.error)
                    })
                })
            });
            out.insert(
                "status".into(),
                json!(if retriable { "RETRIABLE" } else { "FAILED" }),
            );
            out.insert("error".into(), json!(e.error));
            out.insert("cause".into(), json!(e.cause));
        }
        Outcome::TimedOut => {
            out.insert("status".into(), json!("FAILED"));
            out.insert("error".into(), json!("States.Timeout"));
        }
        Outcome::Suspended(why) => return Err(SfnError::Internal(why)),
    }
    if input["inspectionLevel"]
        .as_str()
        .is_some_and(|l| l != "INFO")
    {
        let first = entered
            .first()
            .and_then(|e| e.details.as_ref())
            .map(|(_, d)| d.clone());
        out.insert(
            "inspectionData".into(),
            json!({"input": first.as_ref().and_then(|d| d["input"].as_str())}),
        );
    }
    Ok(Value::Object(out))
}

fn activity_arn(sfn: &StepFunctions, name: &str) -> String {
    let cfg = &sfn.inner.config;
    format!(
        "arn:aws:states:{}:{}:activity:{name}",
        cfg.region, cfg.account
    )
}

fn create_activity(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let name = required(input, "name")?;
    check_name(name)?;
    let arn = activity_arn(sfn, name);
    let created = state::create_activity(&sfn.inner.db, &arn, name, now_ms())?;
    Ok(json!({"activityArn": arn, "creationDate": seconds(created)}))
}

/// The activity `arn` names: `(name, created_ms)`.
fn activity(sfn: &StepFunctions, arn: &str) -> Result<(String, u64), SfnError> {
    check_arn(arn)?;
    state::activities(&sfn.inner.db)?
        .into_iter()
        .find(|(a, _, _)| a == arn)
        .map(|(_, name, created)| (name, created))
        .ok_or_else(|| {
            SfnError::new(
                "ActivityDoesNotExist",
                format!("Activity Does Not Exist: '{arn}'"),
            )
        })
}

fn describe_activity(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "activityArn")?;
    let (name, created) = activity(sfn, arn)?;
    Ok(json!({"activityArn": arn, "name": name, "creationDate": seconds(created)}))
}

fn list_activities(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let (offset, limit) = page(input, 1000, 100)?;
    let all = state::activities(&sfn.inner.db)?;
    let items: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(arn, name, created)| json!({"activityArn": arn, "name": name, "creationDate": seconds(*created)}))
        .collect();
    let mut out = json!({ "activities": items });
    if all.len() > offset + limit {
        out["nextToken"] = json!(token(offset + limit));
    }
    Ok(out)
}

fn delete_activity(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "activityArn")?;
    check_arn(arn)?;
    state::delete_activity(&sfn.inner.db, arn)?;
    Ok(json!({}))
}

/// `GetActivityTask`: a task of the activity, waiting up to 60 s for one, as the service
/// long-polls; `{}` when none came.
async fn get_activity_task(sfn: &StepFunctions, input: &Value) -> Result<Value, SfnError> {
    let arn = required(input, "activityArn")?;
    activity(sfn, arn)?;
    let worker = input["workerName"].as_str().unwrap_or_default();
    let wait = std::time::Duration::from_secs(60);
    Ok(match sfn.inner.tokens.take(arn, worker, wait).await {
        Some((token, task_input)) => json!({"taskToken": token, "input": task_input}),
        None => json!({}),
    })
}

/// `SendTaskSuccess`, `SendTaskFailure`, `SendTaskHeartbeat`.
async fn send_task(sfn: &StepFunctions, input: &Value, what: &str) -> Result<Value, SfnError> {
    use crate::tokens::TokenError;
    let token = required(input, "taskToken")?;
    let tokens = &sfn.inner.tokens;
    let outcome = match what {
        "success" => {
            let text = required(input, "output")?;
            let output: Value = serde_json::from_str(text)
                .map_err(|e| SfnError::new("InvalidOutput", format!("Invalid Output: '{e}'")))?;
            tokens.answer(token, Ok(output))
        }
        "failure" => tokens.answer(
            token,
            Err(StatesError::new(
                input["error"].as_str().unwrap_or(""),
                input["cause"].as_str().unwrap_or(""),
            )),
        ),
        _ => tokens.heartbeat(token).map(|()| {
            let (done, rx) = tokio::sync::oneshot::channel();
            let _ = done.send(());
            rx
        }),
    };
    match outcome {
        // Answered once the task has recorded the answer: an acknowledged SendTaskSuccess
        // survives a kill -9. A task that went away first (stopped) answers at once.
        Ok(recorded) => {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), recorded).await;
            Ok(json!({}))
        }
        Err(TokenError::Invalid) => Err(SfnError::new(
            "InvalidToken",
            "Invalid Token: 'Invalid token'",
        )),
        Err(TokenError::Gone) => Err(SfnError::new(
            "TaskTimedOut",
            "Task Timed Out: 'Provided task does not exist anymore'",
        )),
    }
}

pub(crate) fn apply_template(
    sfn: &StepFunctions,
    machines: &[TemplateMachine],
) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut keep = std::collections::BTreeSet::new();
    for t in machines {
        let machine = match asl::parse(&t.definition) {
            Ok(m) => m,
            Err(d) => {
                errors.push(format!(
                    "state machine {}: {}",
                    t.name,
                    asl::invalid_definition_message(&d)
                ));
                continue;
            }
        };
        let arn = sfn.machine_arn(&t.name);
        keep.insert(arn.clone());
        let existing = lock(&sfn.inner.machines).get(&arn).cloned();
        let now = now_ms();
        let row = match existing {
            Some(e)
                if e.row.definition == t.definition
                    && e.row.kind == t.kind
                    && e.row.role_arn == t.role_arn
                    && e.row.settings == t.settings =>
            {
                continue
            }
            Some(e) => MachineRow {
                definition: t.definition.clone(),
                kind: t.kind.clone(),
                role_arn: t.role_arn.clone(),
                settings: t.settings.clone(),
                updated_ms: Some(now),
                revision: uuid::Uuid::new_v4().to_string(),
                from_template: true,
                ..e.row.clone()
            },
            None => MachineRow {
                arn: arn.clone(),
                name: t.name.clone(),
                kind: t.kind.clone(),
                definition: t.definition.clone(),
                role_arn: t.role_arn.clone(),
                created_ms: now,
                updated_ms: None,
                revision: uuid::Uuid::new_v4().to_string(),
                from_template: true,
                settings: t.settings.clone(),
                tags: json!({}),
            },
        };
        state::put_machine(&sfn.inner.db, &row).map_err(|e| e.to_string())?;
        install(&sfn.inner, row, machine);
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    let gone: Vec<String> = lock(&sfn.inner.machines)
        .values()
        .filter(|m| m.row.from_template && !keep.contains(&m.row.arn))
        .map(|m| m.row.arn.clone())
        .collect();
    for arn in gone {
        state::delete_machine(&sfn.inner.db, &arn).map_err(|e| e.to_string())?;
        lock(&sfn.inner.machines).remove(&arn);
    }
    Ok(())
}

/// The events that start and end a task, to tell whether a task was left running.
const TASK_STARTS: &[&str] = &["TaskStarted", "LambdaFunctionStarted", "ActivityStarted"];
const TASK_ENDS: &[&str] = &[
    "TaskSucceeded",
    "TaskFailed",
    "TaskTimedOut",
    "LambdaFunctionSucceeded",
    "LambdaFunctionFailed",
    "LambdaFunctionTimedOut",
    "ActivitySucceeded",
    "ActivityFailed",
    "ActivityTimedOut",
];

/// Where the state entered at `cursor` goes on after a restart. `events` follow its entry:
/// its own and everything nested below it. Only the execution's own flow keeps a cursor (retry
/// counts, a wait's end, a callback's token); a Map iteration's or Parallel branch's state,
/// `entered_ms` being when it was entered, counts its retries from its history and its wait
/// from its entry, and has no token to wait on again (see the README).
fn resume_state(
    machine: &asl::Machine,
    cursor: Cursor,
    entered_ms: Option<u64>,
    events: &[&Event],
) -> Resume {
    // The latest task event tells whether a task is running (a start) or answered (an end).
    // Counts would not: a task found running at a restart fails without an event of its own.
    let last_task = events.iter().rposition(|e| is_task_event(e));
    let running = last_task.is_some_and(|i| is_task_start(events[i]));
    // A retry already scheduled means the last failure was dealt with.
    let handled = cursor.wake_at_ms.is_some();
    let state = machine.states.get(&cursor.state);
    // A task that answered: go on from its answer, do not run it again.
    let task_result = match (state, last_task) {
        (Some(s), Some(i)) if matches!(s.kind, asl::Kind::Task { .. }) && !running && !handled => {
            let e = &events[i];
            Some(match task_failure(e) {
                Some(error) => Err(error),
                None => Ok(e
                    .details
                    .as_ref()
                    .and_then(|(_, d)| d["output"].as_str())
                    .and_then(|o| serde_json::from_str(o).ok())
                    .unwrap_or(Value::Null)),
            })
        }
        _ => None,
    };
    // A callback task that handed its token out waits for it again. The execution's own
    // flow kept the token with its cursor; a part's task finds it in its latest
    // `TaskScheduled`, which keeps it (unseen) for this.
    let submitted =
        running && last_task.is_some_and(|i| events[i..].iter().any(|e| e.kind == "TaskSubmitted"));
    let mut cursor = cursor;
    if submitted && cursor.token.is_none() && entered_ms.is_some() {
        cursor.token = events
            .iter()
            .rev()
            .find(|e| e.kind == "TaskScheduled")
            .and_then(|e| e.details.as_ref())
            .and_then(|(_, d)| d[crate::engine::TOKEN_FIELD].as_str())
            .map(str::to_owned);
    }
    let waiting = submitted && cursor.token.is_some();
    // A part's state keeps no cursor with its retry counts: each failure that a later attempt
    // followed was retried by the first retrier that matches it (a failure not yet followed is
    // the task's answer, and is retried, or not, when the state goes on); an attempt that a
    // restart found running, and that another followed, failed with `States.TaskFailed`.
    if let (Some(s), Some(_)) = (state, entered_ms) {
        if matches!(s.kind, asl::Kind::Task { .. }) && !s.retry.is_empty() {
            let restarted = StatesError::new("States.TaskFailed", "nimbus stopped");
            let mut counts = vec![0u32; s.retry.len()];
            let tasks: Vec<&Event> = events
                .iter()
                .copied()
                .filter(|e| is_task_event(e))
                .collect();
            for (at, e) in tasks.iter().enumerate() {
                let later_start = tasks[at + 1..].iter().any(|l| is_task_start(l));
                let next_is_start = tasks.get(at + 1).is_some_and(|n| is_task_start(n));
                let error = match task_failure(e) {
                    Some(error) if later_start => error,
                    None if is_task_start(e) && next_is_start => restarted.clone(),
                    _ => continue,
                };
                if let Some(i) = s
                    .retry
                    .iter()
                    .position(|r| crate::engine::matches(&r.errors, &error))
                {
                    counts[i] += 1;
                }
            }
            cursor.retries = counts;
        }
    }
    // A Map or Parallel runs no task of its own: a task left running is its part's, which
    // answers for it when it goes on.
    let continued = match state.map(|s| &s.kind) {
        _ if handled => None,
        Some(asl::Kind::Map { processor, .. }) => {
            continued_attempt(cursor.entered, events, Parts::Iterations(processor))
        }
        Some(asl::Kind::Parallel { branches }) => {
            continued_attempt(cursor.entered, events, Parts::Branches(branches))
        }
        _ => None,
    };
    let own_tasks = !matches!(
        state.map(|s| &s.kind),
        Some(asl::Kind::Map { .. } | asl::Kind::Parallel { .. })
    );
    Resume {
        cursor,
        task_in_flight: last_task
            .filter(|_| own_tasks && running && !waiting)
            .map(|i| events[i].clone()),
        failed_ms: task_result
            .as_ref()
            .filter(|r| r.is_err())
            .and(last_task)
            .map(|i| events[i].ts_ms),
        task_result,
        waiting,
        reenter: false,
        continued,
        entered_ms,
    }
}

fn is_task_start(e: &Event) -> bool {
    TASK_STARTS.contains(&e.kind.as_str())
}

fn is_task_event(e: &Event) -> bool {
    is_task_start(e) || TASK_ENDS.contains(&e.kind.as_str())
}

/// The error of a task's failure or time-out event.
fn task_failure(e: &Event) -> Option<StatesError> {
    let timed_out = e.kind.ends_with("TimedOut");
    if !TASK_ENDS.contains(&e.kind.as_str()) || !(timed_out || e.kind.ends_with("Failed")) {
        return None;
    }
    let text = |key: &str| e.details.as_ref().and_then(|(_, d)| d[key].as_str());
    let default = if timed_out {
        "States.Timeout"
    } else {
        "States.TaskFailed"
    };
    Some(StatesError::new(
        text("error").unwrap_or(default),
        text("cause").unwrap_or(""),
    ))
}

/// What a `Map` or `Parallel` state runs: one machine per item, or one per branch.
#[derive(Clone, Copy)]
enum Parts<'a> {
    Iterations(&'a asl::Machine),
    Branches(&'a [asl::Machine]),
}

/// A `Map` or `Parallel` attempt cut short by a restart: its start, the parts that had
/// finished with their outputs, and where each part that had started goes on. `entered` is the
/// state's `...StateEntered`; `events` follow it. Each event names the previous event of its
/// own flow, so one pass sorts them into the state's own flow, the flows of its parts and what
/// is nested below each. A Map iteration begins with a `MapIterationStarted` naming the
/// attempt's `MapStateStarted` and ends with `MapIterationSucceeded`, which names its final
/// state's exit (carrying the output). A Parallel branch begins with its first state's entry
/// naming the attempt's `ParallelStateStarted`, and has finished when its last event is a
/// state's exit: a state that goes on records its exit and the next state's entry together.
/// An unfinished part goes on from the last state it entered, as the execution does from its
/// cursor. `None` when the attempt had not started or had ended: the state then runs as usual.
fn continued_attempt(entered: u64, events: &[&Event], parts: Parts<'_>) -> Option<Continued> {
    #[derive(Clone, Copy, PartialEq)]
    enum Owner {
        Own,
        Part(usize),
        /// Below a part (a Map or Parallel of its own), or below nothing of this state's.
        Nested(Option<usize>),
    }
    let part_of = |o: Owner| match o {
        Owner::Part(i) | Owner::Nested(Some(i)) => Some(i),
        _ => None,
    };
    let (start_kind, end_kinds) = match parts {
        Parts::Branches(_) => (
            "ParallelStateStarted",
            ["ParallelStateFailed", "ParallelStateSucceeded"],
        ),
        Parts::Iterations(_) => ("MapStateStarted", ["MapStateFailed", "MapStateSucceeded"]),
    };
    let output_of = |e: &Event| -> Option<Value> {
        let (_, d) = e.details.as_ref()?;
        serde_json::from_str(d["output"].as_str()?).ok()
    };
    #[derive(Default)]
    struct Track<'e> {
        /// The part's latest event of its own flow.
        last: u64,
        /// The part's latest state entry (of its own flow), and every event below the part
        /// since.
        entry: Option<(&'e Event, Vec<&'e Event>)>,
        /// Its output, when the part has finished.
        output: Option<Value>,
        /// A Map iteration that failed runs again from its start.
        failed: bool,
        /// What its own states assigned (`assignedVariables` of their exits), in order.
        vars: serde_json::Map<String, Value>,
    }
    let mut owner = std::collections::HashMap::from([(entered, Owner::Own)]);
    let mut by_id: std::collections::HashMap<u64, &Event> = std::collections::HashMap::new();
    let mut attempt: Option<u64> = None;
    let mut map_run: Option<String> = None;
    let mut ended = false;
    let mut track: std::collections::BTreeMap<usize, Track> = Default::default();
    for &e in events {
        by_id.insert(e.id, e);
        let before = owner
            .get(&e.previous)
            .copied()
            .unwrap_or(Owner::Nested(None));
        let previous_kind = by_id.get(&e.previous).map_or("", |p| p.kind.as_str());
        let opens_part = before == Owner::Own && attempt == Some(e.previous);
        let detail = |key: &str| e.details.as_ref().map(|(_, d)| &d[key]);
        let mine = match (e.kind.as_str(), parts) {
            ("MapIterationStarted", Parts::Iterations(_)) if opens_part => detail("index")
                .and_then(|i| i.as_u64())
                .map_or(Owner::Nested(None), |i| Owner::Part(i as usize)),
            ("MapIterationStarted", _) => Owner::Nested(part_of(before)),
            // Branches are told apart by their first state: the first unclaimed branch that
            // starts there. Branches may share a first state's name; their first entries are
            // then told apart by order, which is the branches' (the engine polls the branches
            // in order, and each records its first entry before it first waits).
            (k, Parts::Branches(branches)) if k.ends_with("StateEntered") && opens_part => {
                let name = detail("name").and_then(|n| n.as_str());
                branches
                    .iter()
                    .enumerate()
                    .position(|(i, b)| Some(b.start_at.as_str()) == name && !track.contains_key(&i))
                    .map_or(Owner::Nested(None), Owner::Part)
            }
            // Any other Parallel's branches begin with their first state's entry.
            (k, _) if k.ends_with("StateEntered") && previous_kind == "ParallelStateStarted" => {
                Owner::Nested(part_of(before))
            }
            _ => before,
        };
        owner.insert(e.id, mine);
        match (mine, e.kind.as_str()) {
            (Owner::Own, k) if k == start_kind => {
                attempt = Some(e.id);
                map_run = None;
                ended = false;
                track.clear();
            }
            (Owner::Own, k) if end_kinds.contains(&k) => ended = true,
            // A distributed Map's children are executions of their own: its flow goes on
            // from the run's start, which names the run.
            (Owner::Own, "MapRunStarted" | "MapRunRedriven") if attempt.is_some() => {
                attempt = Some(e.id);
                map_run = detail("mapRunArn")
                    .and_then(|a| a.as_str())
                    .map(str::to_owned);
            }
            (Owner::Part(i), k) => {
                // A Map iteration run again (after it failed, in a tolerant Map) starts over.
                if k == "MapIterationStarted" {
                    track.remove(&i);
                }
                let t = track.entry(i).or_default();
                t.last = e.id;
                // A part has finished when its latest event is a state's exit (then, for an
                // iteration, its MapIterationSucceeded, which names that exit).
                match k {
                    "MapIterationSucceeded" => {
                        t.output = by_id
                            .get(&e.previous)
                            .filter(|l| l.kind.ends_with("StateExited"))
                            .and_then(|l| output_of(l));
                    }
                    "MapIterationFailed" => {
                        t.failed = true;
                        t.output = None;
                    }
                    k if k.ends_with("StateExited") => {
                        t.output = output_of(e);
                        if let Some(Value::Object(a)) = detail("assignedVariables") {
                            for (name, text) in a {
                                let value =
                                    text.as_str().and_then(|t| serde_json::from_str(t).ok());
                                t.vars.insert(name.clone(), value.unwrap_or(Value::Null));
                            }
                        }
                    }
                    k => {
                        t.output = None;
                        if k.ends_with("StateEntered") {
                            t.entry = Some((e, Vec::new()));
                        } else if let Some((_, below)) = &mut t.entry {
                            below.push(e);
                        }
                    }
                }
            }
            (Owner::Nested(Some(i)), _) => {
                if let Some((_, below)) = track.get_mut(&i).and_then(|t| t.entry.as_mut()) {
                    below.push(e);
                }
            }
            _ => {}
        }
    }
    let started = match attempt {
        Some(started) if !ended => started,
        _ => return None,
    };
    let mut c = Continued {
        started,
        map_run,
        ..Continued::default()
    };
    for (i, t) in track {
        let machine = match parts {
            Parts::Iterations(m) => Some(m),
            Parts::Branches(b) => b.get(i),
        };
        match (t.output, t.failed, machine) {
            (Some(out), _, _) => {
                c.outputs.insert(i, out);
            }
            (None, false, Some(machine)) => {
                let resume = t.entry.and_then(|(e, below)| {
                    let d = &e.details.as_ref()?.1;
                    let cursor = Cursor {
                        state: d["name"].as_str()?.to_owned(),
                        input: serde_json::from_str(d["input"].as_str()?).ok()?,
                        entered: e.id,
                        retries: Vec::new(),
                        wake_at_ms: None,
                        token: None,
                        vars: Value::Object(t.vars),
                        redrive_run: None,
                    };
                    Some(resume_state(machine, cursor, Some(e.ts_ms), &below))
                });
                c.started_parts.insert(
                    i,
                    PartResume {
                        last: t.last,
                        resume,
                    },
                );
            }
            _ => {}
        }
    }
    Some(c)
}

/// The state machine a Map Run's child belongs to in the end: its children's machines are
/// named `<machine>/<label>` (a machine's own name has no `/`).
pub(crate) fn root_machine(machine_arn: &str) -> &str {
    machine_arn.split('/').next().unwrap_or(machine_arn)
}

/// Where a Standard execution found running at start-up goes on: from its cursor, with what
/// its history says since.
pub(crate) fn resume_of(
    sfn: &StepFunctions,
    machine: &asl::Machine,
    row: &ExecutionRow,
) -> Result<Option<Resume>, SfnError> {
    let cursor = row
        .cursor
        .as_deref()
        .and_then(|c| serde_json::from_str::<Value>(c).ok())
        .and_then(|c| Cursor::from_json(&c));
    Ok(match cursor {
        None => None,
        Some(cursor) => {
            let (events, _) =
                state::history(&sfn.inner.db, row.id, cursor.entered, false, 100_000)?;
            let events: Vec<&Event> = events.iter().collect();
            Some(resume_state(machine, cursor, None, &events))
        }
    })
}

pub(crate) fn resume(sfn: &StepFunctions) -> Result<usize, SfnError> {
    // Map Runs whose execution ended before they were closed (a restart came in between).
    state::close_orphan_runs(&sfn.inner.db, now_ms())?;
    let rows = state::running(&sfn.inner.db)?;
    let n = rows.len();
    for row in rows {
        // A Map Run's child goes on when its parent's Map state does.
        if row.map_run.is_some() {
            continue;
        }
        let Ok(machine) = asl::parse(&row.definition) else {
            continue;
        };
        let input: Value = serde_json::from_str(&row.input).unwrap_or(json!({}));
        let resume = resume_of(sfn, &machine, &row)?;
        let machine_row = lock(&sfn.inner.machines)
            .get(&row.machine_arn)
            .map(|m| m.row.clone())
            .unwrap_or_else(|| MachineRow {
                arn: row.machine_arn.clone(),
                name: row
                    .machine_arn
                    .rsplit(':')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                kind: "STANDARD".into(),
                definition: row.definition.clone(),
                role_arn: row.role_arn.clone(),
                created_ms: row.start_ms,
                updated_ms: None,
                revision: String::new(),
                from_template: false,
                settings: json!({}),
                tags: json!({}),
            });
        spawn_standard(
            sfn,
            &row,
            Arc::new(machine),
            &machine_row,
            input,
            resume,
            None,
        );
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: u64, previous: u64, kind: &str, detail: Value) -> Event {
        Event {
            id,
            previous,
            ts_ms: 0,
            kind: kind.to_owned(),
            details: (!detail.is_null()).then(|| ("d".to_owned(), detail)),
        }
    }

    fn refs(events: &[Event]) -> Vec<&Event> {
        events.iter().collect()
    }

    fn entered(name: &str, input: &str) -> Value {
        json!({"name": name, "input": input})
    }

    fn exited(name: &str, output: &str) -> Value {
        json!({"name": name, "output": output})
    }

    fn cursor(state: &str, input: Value, entered: u64) -> Cursor {
        Cursor {
            state: state.to_owned(),
            input,
            entered,
            retries: Vec::new(),
            wake_at_ms: None,
            token: None,
            vars: json!({}),
            redrive_run: None,
        }
    }

    /// A part's resume; the test events are all stamped 0.
    fn resume(cursor: Cursor, continued: Option<Continued>) -> Resume {
        Resume {
            cursor,
            task_in_flight: None,
            task_result: None,
            failed_ms: None,
            waiting: false,
            reenter: false,
            continued,
            entered_ms: Some(0),
        }
    }

    /// The machine a test's `Map` or `Parallel` state (named `S`) belongs to.
    fn parsed(state: Value) -> asl::Machine {
        asl::parse(&json!({"StartAt": "S", "States": {"S": state}}).to_string()).expect("valid")
    }

    #[test]
    fn a_resumed_map_keeps_its_finished_iterations_and_continues_the_others_where_they_were() {
        let machine = parsed(json!({"Type": "Map", "End": true, "ItemProcessor": {
            "StartAt": "Which", "States": {
                "Which": {"Type": "Choice", "Default": "P",
                          "Choices": [{"Variable": "$.inner", "IsPresent": true, "Next": "Inner"}]},
                "P": {"Type": "Pass", "End": true},
                "Inner": {"Type": "Map", "End": true, "ItemProcessor": {
                    "StartAt": "Q", "States": {"Q": {"Type": "Pass", "End": true}}}}}}}));
        let it = |i: u64| json!({"name": "S", "index": i});
        let mut events = vec![
            ev(6, 5, "MapStateStarted", Value::Null),
            ev(7, 6, "MapIterationStarted", it(0)),
            ev(8, 6, "MapIterationStarted", it(1)),
            ev(9, 7, "PassStateEntered", entered("P", "{}")),
            ev(10, 9, "PassStateExited", exited("P", "{\"a\":0}")),
            ev(11, 10, "MapIterationSucceeded", it(0)),
            // Iteration 1 runs a Map of its own, whose one iteration finishes.
            ev(12, 8, "MapStateEntered", entered("Inner", "{\"inner\":1}")),
            ev(13, 12, "MapStateStarted", Value::Null),
            ev(14, 13, "MapIterationStarted", it(0)),
            ev(15, 14, "PassStateEntered", entered("Q", "{\"inner\":1}")),
            ev(16, 15, "PassStateExited", exited("Q", "{\"inner\":1}")),
            ev(17, 16, "MapIterationSucceeded", it(0)),
            // Iteration 2 had only started.
            ev(18, 6, "MapIterationStarted", it(2)),
        ];
        let asl::Kind::Map { processor, .. } = &machine.states["S"].kind else {
            unreachable!()
        };
        let inner = Continued {
            map_run: None,
            started: 13,
            outputs: [(0, json!({"inner": 1}))].into(),
            ..Continued::default()
        };
        let want = Continued {
            map_run: None,
            started: 6,
            outputs: [(0, json!({"a": 0}))].into(),
            started_parts: [
                (
                    1,
                    PartResume {
                        last: 13,
                        resume: Some(resume(
                            cursor("Inner", json!({"inner": 1}), 12),
                            Some(inner),
                        )),
                    },
                ),
                (
                    2,
                    PartResume {
                        last: 18,
                        resume: None,
                    },
                ),
            ]
            .into(),
        };
        assert_eq!(
            continued_attempt(5, &refs(&events), Parts::Iterations(processor)),
            Some(want)
        );
        // A retried attempt starts afresh; an ended one is not resumed.
        events.push(ev(19, 6, "MapStateFailed", Value::Null));
        assert_eq!(
            continued_attempt(5, &refs(&events), Parts::Iterations(processor)),
            None
        );
        events.push(ev(20, 19, "MapStateStarted", Value::Null));
        let afresh = Continued {
            started: 20,
            ..Continued::default()
        };
        assert_eq!(
            continued_attempt(5, &refs(&events), Parts::Iterations(processor)),
            Some(afresh)
        );
        assert_eq!(
            continued_attempt(5, &[], Parts::Iterations(processor)),
            None
        );
    }

    #[test]
    fn a_task_left_running_in_one_iteration_fails_that_iteration_not_the_whole_map() {
        let machine = parsed(json!({"Type": "Map", "End": true, "ItemProcessor": {
            "StartAt": "T", "States": {"T": {"Type": "Task", "Next": "W",
                "Resource": "arn:aws:states:::sqs:sendMessage"},
                "W": {"Type": "Wait", "Seconds": 5, "End": true}}}}));
        let it = |i: u64| json!({"name": "S", "index": i});
        let events = vec![
            ev(6, 5, "MapStateStarted", Value::Null),
            // 0: its task answered, and its last state's exit was recorded, not yet its
            // MapIterationSucceeded.
            ev(7, 6, "MapIterationStarted", it(0)),
            ev(8, 7, "TaskStateEntered", entered("T", "0")),
            ev(9, 8, "TaskScheduled", Value::Null),
            ev(10, 9, "TaskStarted", Value::Null),
            ev(11, 10, "TaskSucceeded", json!({"output": "10"})),
            ev(12, 11, "TaskStateExited", exited("T", "0")),
            ev(13, 12, "WaitStateEntered", entered("W", "0")),
            ev(14, 13, "WaitStateExited", exited("W", "0")),
            // 1: failed once (a tolerant Map goes on), then ran again: its task is running.
            ev(15, 6, "MapIterationStarted", it(1)),
            ev(16, 15, "TaskStateEntered", entered("T", "1")),
            ev(17, 16, "TaskScheduled", Value::Null),
            ev(18, 17, "TaskStarted", Value::Null),
            ev(19, 18, "TaskFailed", json!({"error": "E", "cause": ""})),
            ev(20, 19, "MapIterationFailed", it(1)),
            ev(21, 6, "MapIterationStarted", it(1)),
            ev(22, 21, "TaskStateEntered", entered("T", "1")),
            ev(23, 22, "TaskScheduled", Value::Null),
            ev(24, 23, "TaskStarted", Value::Null),
        ];
        let got = resume_state(
            &machine,
            cursor("S", json!([0, 1]), 5),
            None,
            &refs(&events),
        );
        assert!(
            got.task_in_flight.is_none() && got.task_result.is_none(),
            "{got:?}"
        );
        let mut running = resume(cursor("T", json!(1), 22), None);
        running.task_in_flight = Some(ev(24, 23, "TaskStarted", Value::Null));
        let want = Continued {
            map_run: None,
            started: 6,
            outputs: [(0, json!(0))].into(),
            started_parts: [(
                1,
                PartResume {
                    last: 24,
                    resume: Some(running),
                },
            )]
            .into(),
        };
        assert_eq!(got.continued, Some(want));
    }

    #[test]
    fn a_resumed_branch_task_counts_the_retries_its_history_shows() {
        let machine = parsed(json!({"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "T", "States": {"T": {"Type": "Task", "End": true,
                "Resource": "arn:aws:states:::sqs:sendMessage",
                "Retry": [{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 5},
                          {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}]}}}]}));
        let asl::Kind::Parallel { branches } = &machine.states["S"].kind else {
            unreachable!()
        };
        let events = vec![
            ev(6, 5, "ParallelStateStarted", Value::Null),
            ev(7, 6, "TaskStateEntered", entered("T", "{}")),
            ev(8, 7, "TaskScheduled", Value::Null),
            ev(9, 8, "TaskStarted", Value::Null),
            ev(10, 9, "TaskFailed", json!({"error": "Boom", "cause": ""})),
            ev(11, 10, "TaskScheduled", Value::Null),
            ev(12, 11, "TaskStarted", Value::Null),
            ev(13, 12, "TaskTimedOut", json!({"error": "States.Timeout"})),
            ev(14, 13, "TaskScheduled", Value::Null),
            ev(15, 14, "TaskStarted", Value::Null),
            // A restart found this attempt running: it failed (no event) and was retried.
            ev(16, 15, "TaskScheduled", Value::Null),
            ev(17, 16, "TaskStarted", Value::Null),
            ev(
                18,
                17,
                "TaskFailed",
                json!({"error": "Boom", "cause": "again"}),
            ),
        ];
        let got =
            continued_attempt(5, &refs(&events), Parts::Branches(branches)).expect("continued");
        let part = got.started_parts[&0].resume.clone().expect("entered");
        // The last failure is not counted yet: it is the answer the state goes on from.
        assert_eq!(part.cursor.retries, vec![1, 2]);
        assert!(part.task_in_flight.is_none());
        assert_eq!(
            part.task_result,
            Some(Err(StatesError::new("Boom", "again")))
        );
    }

    #[test]
    fn a_resumed_distributed_map_goes_on_with_the_map_run_its_history_names() {
        let machine = parsed(json!({"Type": "Map", "End": true, "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED"},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}));
        let asl::Kind::Map { processor, .. } = &machine.states["S"].kind else {
            unreachable!()
        };
        let arn = "arn:aws:states:us-east-1:123456789012:mapRun:m/l:u";
        let started = ev(6, 5, "MapStateStarted", json!({"length": 0}));
        let run = ev(7, 6, "MapRunStarted", json!({ "mapRunArn": arn }));
        let cases = [
            // Cut before the run was said: a run named from event 6 is opened (again).
            (vec![started.clone()], Some((6, None))),
            (vec![started.clone(), run.clone()], Some((7, Some(arn)))),
            (
                vec![
                    started.clone(),
                    run.clone(),
                    ev(8, 7, "MapRunSucceeded", Value::Null),
                    ev(9, 8, "MapStateSucceeded", Value::Null),
                ],
                None,
            ),
        ];
        for (events, want) in cases {
            let got = continued_attempt(5, &refs(&events), Parts::Iterations(processor));
            let got = got.map(|c| (c.started, c.map_run));
            let want = want.map(|(s, a)| (s, a.map(str::to_owned)));
            assert_eq!(got, want, "{events:?}");
        }
    }

    #[test]
    fn a_resumed_branch_gets_back_the_variables_its_own_states_assigned_and_not_a_nested_ones() {
        let machine = parsed(json!({"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "A", "States": {
                "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "N"},
                "N": {"Type": "Parallel", "Next": "B", "Branches": [
                    {"StartAt": "I", "States": {"I": {"Type": "Pass", "Assign": {"x": 99}, "End": true}}}]},
                "B": {"Type": "Pass", "Assign": {"y": "two"}, "Next": "W"},
                "W": {"Type": "Wait", "Seconds": 5, "End": true}}}]}));
        let asl::Kind::Parallel { branches } = &machine.states["S"].kind else {
            unreachable!()
        };
        let assigned = |name: &str, vars: Value| {
            json!({"name": name, "output": "{}", "assignedVariables": vars,
                   "assignedVariablesDetails": {"truncated": false}})
        };
        let events = vec![
            ev(6, 5, "ParallelStateStarted", Value::Null),
            ev(7, 6, "PassStateEntered", entered("A", "{}")),
            ev(8, 7, "PassStateExited", assigned("A", json!({"x": "1"}))),
            ev(9, 8, "ParallelStateEntered", entered("N", "{}")),
            ev(10, 9, "ParallelStateStarted", Value::Null),
            ev(11, 10, "PassStateEntered", entered("I", "{}")),
            ev(12, 11, "PassStateExited", assigned("I", json!({"x": "99"}))),
            ev(13, 10, "ParallelStateSucceeded", Value::Null),
            ev(14, 13, "ParallelStateExited", exited("N", "[{}]")),
            ev(15, 14, "PassStateEntered", entered("B", "[{}]")),
            ev(
                16,
                15,
                "PassStateExited",
                assigned("B", json!({"y": "\"two\""})),
            ),
            ev(17, 16, "WaitStateEntered", entered("W", "[{}]")),
        ];
        let got =
            continued_attempt(5, &refs(&events), Parts::Branches(branches)).expect("continued");
        let part = got.started_parts[&0].resume.clone().expect("entered");
        assert_eq!(part.cursor.state, "W");
        // The nested branch's x stayed inside it.
        assert_eq!(part.cursor.vars, json!({"x": 1, "y": "two"}));
    }

    #[test]
    fn a_resumed_iterations_callback_task_waits_again_on_the_token_it_handed_out() {
        let machine = parsed(json!({"Type": "Map", "End": true, "ItemProcessor": {
            "StartAt": "T", "States": {"T": {"Type": "Task", "End": true,
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": "q", "MessageBody": {"token.$": "$$.Task.Token"}}}}}}));
        let asl::Kind::Map { processor, .. } = &machine.states["S"].kind else {
            unreachable!()
        };
        let token = crate::tokens::Tokens::new_token();
        // The item carries another task's token (its caller's), first in the parameters.
        let callers = crate::tokens::Tokens::new_token();
        let params =
            json!({"QueueUrl": "q", "MessageBody": format!("{callers} {token}")}).to_string();
        let events = |submitted: bool| {
            let mut e = vec![
                ev(6, 5, "MapStateStarted", json!({"length": 1})),
                ev(7, 6, "MapIterationStarted", json!({"index": 0})),
                ev(8, 7, "TaskStateEntered", entered("T", "{}")),
                ev(
                    9,
                    8,
                    "TaskScheduled",
                    json!({"parameters": params, crate::engine::TOKEN_FIELD: token}),
                ),
                ev(10, 9, "TaskStarted", Value::Null),
            ];
            if submitted {
                e.push(ev(11, 10, "TaskSubmitted", json!({"output": "{}"})));
            }
            e
        };
        let got = continued_attempt(5, &refs(&events(true)), Parts::Iterations(processor))
            .expect("continued");
        let part = got.started_parts[&0].resume.clone().expect("entered");
        assert!(part.waiting);
        assert_eq!(part.cursor.token.as_deref(), Some(token.as_str()));
        assert!(part.task_in_flight.is_none());
        // Cut before the token was handed out: the task was running, and is not started again.
        let got = continued_attempt(5, &refs(&events(false)), Parts::Iterations(processor))
            .expect("continued");
        let part = got.started_parts[&0].resume.clone().expect("entered");
        assert!(!part.waiting);
        assert!(part.task_in_flight.is_some());
    }

    #[test]
    fn a_resumed_task_failure_says_when_it_failed_so_its_retry_waits_only_what_is_left() {
        let machine = parsed(json!({"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "T", "States": {"T": {"Type": "Task", "End": true,
                "Resource": "arn:aws:states:::sqs:sendMessage",
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 60}]}}}]}));
        let asl::Kind::Parallel { branches } = &machine.states["S"].kind else {
            unreachable!()
        };
        let mut failed = ev(10, 9, "TaskFailed", json!({"error": "Boom", "cause": ""}));
        failed.ts_ms = 1_234;
        let events = vec![
            ev(6, 5, "ParallelStateStarted", Value::Null),
            ev(7, 6, "TaskStateEntered", entered("T", "{}")),
            ev(8, 7, "TaskScheduled", Value::Null),
            ev(9, 8, "TaskStarted", Value::Null),
            failed,
        ];
        let got =
            continued_attempt(5, &refs(&events), Parts::Branches(branches)).expect("continued");
        let part = got.started_parts[&0].resume.clone().expect("entered");
        assert_eq!(part.failed_ms, Some(1_234));
        assert!(part.task_result.is_some_and(|r| r.is_err()));
    }

    #[test]
    fn a_resumed_parallel_keeps_its_finished_branches_and_continues_the_others_where_they_were() {
        let pass_end = json!({"Type": "Pass", "End": true});
        let machine = parsed(json!({"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "A1", "States": {"A1": pass_end}},
            {"StartAt": "B1", "States": {"B1": {"Type": "Pass", "Next": "B2"},
                                         "B2": {"Type": "Wait", "Seconds": 5, "End": true}}},
            {"StartAt": "C1", "States": {"C1": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "X", "States": {"X": pass_end}},
                {"StartAt": "Z", "States": {"Z": {"Type": "Wait", "Seconds": 5, "End": true}}}]}}},
            {"StartAt": "D1", "States": {"D1": {"Type": "Map", "End": true, "ItemProcessor": {
                "StartAt": "Y", "States": {"Y": pass_end}}}}},
            {"StartAt": "E1", "States": {"E1": {"Type": "Task", "End": true,
                "Resource": "arn:aws:states:::sqs:sendMessage"}}},
        ]}));
        let asl::Kind::Parallel { branches } = &machine.states["S"].kind else {
            unreachable!()
        };
        let events = vec![
            ev(6, 5, "ParallelStateStarted", Value::Null),
            // A: one state, ended.
            ev(7, 6, "PassStateEntered", entered("A1", "{}")),
            ev(8, 7, "PassStateExited", exited("A1", "\"a\"")),
            // B: went on to its second state (exit and entry together), which had not ended.
            ev(9, 6, "PassStateEntered", entered("B1", "{}")),
            ev(10, 9, "PassStateExited", exited("B1", "1")),
            ev(11, 10, "WaitStateEntered", entered("B2", "1")),
            // C: runs a Parallel of its own, one of whose branches ends; C itself had not.
            ev(12, 6, "ParallelStateEntered", entered("C1", "{}")),
            ev(13, 12, "ParallelStateStarted", Value::Null),
            ev(14, 13, "PassStateEntered", entered("X", "{}")),
            ev(15, 14, "PassStateExited", exited("X", "\"x\"")),
            ev(16, 13, "WaitStateEntered", entered("Z", "{}")),
            // D: a Map whose iteration ended, then D itself.
            ev(17, 6, "MapStateEntered", entered("D1", "[2]")),
            ev(18, 17, "MapStateStarted", Value::Null),
            ev(
                19,
                18,
                "MapIterationStarted",
                json!({"name": "D1", "index": 0}),
            ),
            ev(20, 19, "PassStateEntered", entered("Y", "2")),
            ev(21, 20, "PassStateExited", exited("Y", "2")),
            ev(
                22,
                21,
                "MapIterationSucceeded",
                json!({"name": "D1", "index": 0}),
            ),
            ev(23, 18, "MapStateSucceeded", Value::Null),
            ev(24, 17, "MapStateExited", exited("D1", "[2]")),
            // E: its task answered; the state had not exited.
            ev(25, 6, "TaskStateEntered", entered("E1", "{}")),
            ev(26, 25, "TaskScheduled", Value::Null),
            ev(27, 26, "TaskStarted", Value::Null),
            ev(28, 27, "TaskSucceeded", json!({"output": "5"})),
        ];
        let inner = Continued {
            map_run: None,
            started: 13,
            outputs: [(0, json!("x"))].into(),
            started_parts: [(
                1,
                PartResume {
                    last: 16,
                    resume: Some(resume(cursor("Z", json!({}), 16), None)),
                },
            )]
            .into(),
        };
        let mut answered = resume(cursor("E1", json!({}), 25), None);
        answered.task_result = Some(Ok(json!(5)));
        let want = Continued {
            map_run: None,
            started: 6,
            outputs: [(0, json!("a")), (3, json!([2]))].into(),
            started_parts: [
                (
                    1,
                    PartResume {
                        last: 11,
                        resume: Some(resume(cursor("B2", json!(1), 11), None)),
                    },
                ),
                (
                    2,
                    PartResume {
                        last: 13,
                        resume: Some(resume(cursor("C1", json!({}), 12), Some(inner))),
                    },
                ),
                (
                    4,
                    PartResume {
                        last: 28,
                        resume: Some(answered),
                    },
                ),
            ]
            .into(),
        };
        let got = continued_attempt(5, &refs(&events), Parts::Branches(branches));
        assert_eq!(got, Some(want));
        let mut ended = events.clone();
        ended.push(ev(29, 6, "ParallelStateFailed", Value::Null));
        assert_eq!(
            continued_attempt(5, &refs(&ended), Parts::Branches(branches)),
            None
        );
    }
}
