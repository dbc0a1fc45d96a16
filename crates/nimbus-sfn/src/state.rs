//! Durable state: state machines, Standard executions and their histories in
//! `<state-dir>/stepfunctions.db`. Every history event and every cursor move of a running
//! execution is written through the database's group commit and is durable before the
//! execution goes on.

use std::sync::Arc;

use nimbus_store::{Database, StoreError};
use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use crate::engine::{BoxFuture, Cursor, Event, Journal};

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: machines, executions, history.
    "CREATE TABLE machines (
        arn TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        definition TEXT NOT NULL,
        role_arn TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER,
        revision TEXT NOT NULL,
        from_template INTEGER NOT NULL DEFAULT 0,
        settings TEXT NOT NULL DEFAULT '{}',
        tags TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE executions (
        id INTEGER PRIMARY KEY,
        arn TEXT NOT NULL UNIQUE,
        machine_arn TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        input TEXT NOT NULL,
        output TEXT,
        error TEXT,
        cause TEXT,
        start_ms INTEGER NOT NULL,
        stop_ms INTEGER,
        definition TEXT NOT NULL,
        role_arn TEXT NOT NULL,
        cursor TEXT,
        last_event INTEGER NOT NULL DEFAULT 0,
        redrive_count INTEGER NOT NULL DEFAULT 0,
        redrive_ms INTEGER
    );
    CREATE INDEX executions_machine ON executions (machine_arn, start_ms);
    CREATE INDEX executions_running ON executions (status) WHERE status = 'RUNNING';
    CREATE TABLE history (
        execution INTEGER NOT NULL,
        id INTEGER NOT NULL,
        previous INTEGER NOT NULL,
        ts_ms INTEGER NOT NULL,
        type TEXT NOT NULL,
        details TEXT,
        PRIMARY KEY (execution, id)
    ) WITHOUT ROWID;
    CREATE TABLE activities (
        arn TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL
    );",
    // 2: state machine versions and aliases; the version or alias an execution started from.
    "CREATE TABLE versions (
        machine_arn TEXT NOT NULL,
        version INTEGER NOT NULL,
        definition TEXT NOT NULL,
        role_arn TEXT NOT NULL,
        description TEXT,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (machine_arn, version)
    ) WITHOUT ROWID;
    CREATE TABLE aliases (
        machine_arn TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        routing TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (machine_arn, name)
    ) WITHOUT ROWID;
    ALTER TABLE executions ADD COLUMN version_arn TEXT;
    ALTER TABLE executions ADD COLUMN alias_arn TEXT;",
    // 3: distributed Maps' Map Runs; a child execution names its Map Run, its place in it and
    // how many items it got.
    "CREATE TABLE map_runs (
        arn TEXT PRIMARY KEY,
        execution_arn TEXT NOT NULL,
        machine_arn TEXT NOT NULL,
        label TEXT NOT NULL,
        definition TEXT NOT NULL,
        express INTEGER NOT NULL,
        status TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        stop_ms INTEGER,
        max_concurrency INTEGER NOT NULL,
        tolerated_percentage REAL,
        tolerated_count INTEGER,
        total INTEGER,
        items INTEGER,
        counts TEXT,
        error TEXT,
        cause TEXT,
        redrive_count INTEGER NOT NULL DEFAULT 0,
        redrive_ms INTEGER
    );
    CREATE INDEX map_runs_execution ON map_runs (execution_arn, start_ms);
    ALTER TABLE executions ADD COLUMN map_run TEXT;
    ALTER TABLE executions ADD COLUMN map_index INTEGER;
    ALTER TABLE executions ADD COLUMN map_items INTEGER;
    CREATE INDEX executions_map_run ON executions (map_run, map_index) WHERE map_run IS NOT NULL;",
];

/// A published version of a state machine.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRow {
    pub machine_arn: String,
    pub version: u64,
    pub definition: String,
    pub role_arn: String,
    pub description: Option<String>,
    pub created_ms: u64,
}

/// An alias: a name routing executions to one or two versions by weight.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasRow {
    pub machine_arn: String,
    pub name: String,
    pub description: Option<String>,
    /// `[{"stateMachineVersionArn", "weight"}]`.
    pub routing: Value,
    pub created_ms: u64,
    pub updated_ms: u64,
}

pub(crate) fn versions(db: &Database, machine_arn: &str) -> Result<Vec<VersionRow>, StoreError> {
    let conn = db.lock();
    let mut stmt = conn.prepare(
        "SELECT machine_arn, version, definition, role_arn, description, created_ms FROM versions
         WHERE machine_arn = ?1 ORDER BY version DESC",
    )?;
    let rows = stmt.query_map([machine_arn], |r| {
        Ok(VersionRow {
            machine_arn: r.get(0)?,
            version: r.get::<_, i64>(1)? as u64,
            definition: r.get(2)?,
            role_arn: r.get(3)?,
            description: r.get(4)?,
            created_ms: r.get::<_, i64>(5)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn put_version(db: &Database, v: &VersionRow) -> Result<(), StoreError> {
    db.lock().execute(
        "INSERT INTO versions (machine_arn, version, definition, role_arn, description, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            v.machine_arn,
            v.version as i64,
            v.definition,
            v.role_arn,
            v.description,
            v.created_ms as i64
        ],
    )?;
    Ok(())
}

pub(crate) fn delete_version(
    db: &Database,
    machine_arn: &str,
    version: u64,
) -> Result<(), StoreError> {
    db.lock().execute(
        "DELETE FROM versions WHERE machine_arn = ?1 AND version = ?2",
        params![machine_arn, version as i64],
    )?;
    Ok(())
}

pub(crate) fn aliases(db: &Database, machine_arn: &str) -> Result<Vec<AliasRow>, StoreError> {
    let conn = db.lock();
    let mut stmt = conn.prepare(
        "SELECT machine_arn, name, description, routing, created_ms, updated_ms FROM aliases
         WHERE machine_arn = ?1 ORDER BY name",
    )?;
    let rows = stmt.query_map([machine_arn], |r| {
        Ok(AliasRow {
            machine_arn: r.get(0)?,
            name: r.get(1)?,
            description: r.get(2)?,
            routing: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
            created_ms: r.get::<_, i64>(4)? as u64,
            updated_ms: r.get::<_, i64>(5)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn put_alias(db: &Database, a: &AliasRow) -> Result<(), StoreError> {
    db.lock().execute(
        "INSERT OR REPLACE INTO aliases (machine_arn, name, description, routing, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            a.machine_arn,
            a.name,
            a.description,
            a.routing.to_string(),
            a.created_ms as i64,
            a.updated_ms as i64
        ],
    )?;
    Ok(())
}

pub(crate) fn delete_alias(db: &Database, machine_arn: &str, name: &str) -> Result<(), StoreError> {
    db.lock().execute(
        "DELETE FROM aliases WHERE machine_arn = ?1 AND name = ?2",
        params![machine_arn, name],
    )?;
    Ok(())
}

/// Forgets executions that ended before `cutoff_ms`, with their histories (Step Functions
/// keeps a closed Standard execution's history for 90 days). Returns how many.
pub(crate) fn purge_closed(db: &Database, cutoff_ms: u64) -> Result<usize, StoreError> {
    let mut conn = db.lock();
    let tx = conn.transaction()?;
    tx.execute(
        "DELETE FROM history WHERE execution IN
           (SELECT id FROM executions WHERE status != 'RUNNING' AND stop_ms < ?1)",
        [cutoff_ms as i64],
    )?;
    let n = tx.execute(
        "DELETE FROM executions WHERE status != 'RUNNING' AND stop_ms < ?1",
        [cutoff_ms as i64],
    )?;
    tx.execute(
        "DELETE FROM map_runs WHERE status != 'RUNNING' AND stop_ms < ?1",
        [cutoff_ms as i64],
    )?;
    tx.commit()?;
    Ok(n)
}

/// Activities: `(arn, name, created_ms)`, by name.
pub(crate) fn activities(db: &Database) -> Result<Vec<(String, String, u64)>, StoreError> {
    let conn = db.lock();
    let mut stmt = conn.prepare("SELECT arn, name, created_ms FROM activities ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Creates the activity unless it exists; its creation time either way.
pub(crate) fn create_activity(
    db: &Database,
    arn: &str,
    name: &str,
    now_ms: u64,
) -> Result<u64, StoreError> {
    let conn = db.lock();
    conn.execute(
        "INSERT OR IGNORE INTO activities (arn, name, created_ms) VALUES (?1, ?2, ?3)",
        params![arn, name, now_ms as i64],
    )?;
    Ok(conn.query_row(
        "SELECT created_ms FROM activities WHERE arn = ?1",
        [arn],
        |r| r.get::<_, i64>(0),
    )? as u64)
}

pub(crate) fn delete_activity(db: &Database, arn: &str) -> Result<(), StoreError> {
    db.lock()
        .execute("DELETE FROM activities WHERE arn = ?1", [arn])?;
    Ok(())
}

/// A state machine's row.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineRow {
    pub arn: String,
    pub name: String,
    pub kind: String,
    pub definition: String,
    pub role_arn: String,
    pub created_ms: u64,
    pub updated_ms: Option<u64>,
    pub revision: String,
    pub from_template: bool,
    /// `loggingConfiguration`, `tracingConfiguration`, `description`.
    pub settings: Value,
    pub tags: Value,
}

/// An execution's row (without its history).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRow {
    pub id: i64,
    pub arn: String,
    pub machine_arn: String,
    pub name: String,
    pub status: String,
    pub input: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub start_ms: u64,
    pub stop_ms: Option<u64>,
    pub definition: String,
    pub role_arn: String,
    pub cursor: Option<String>,
    pub last_event: u64,
    pub redrive_count: u64,
    pub redrive_ms: Option<u64>,
    /// The version or alias ARN the execution was started with.
    pub version_arn: Option<String>,
    pub alias_arn: Option<String>,
    /// A child of a distributed Map: its Map Run, its index there, how many items it got.
    pub map_run: Option<String>,
    pub map_index: Option<u64>,
    pub map_items: Option<u64>,
}

const MACHINE_COLUMNS: &str =
    "arn, name, type, definition, role_arn, created_ms, updated_ms, revision, from_template, settings, tags";

fn machine_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MachineRow> {
    Ok(MachineRow {
        arn: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        definition: r.get(3)?,
        role_arn: r.get(4)?,
        created_ms: r.get::<_, i64>(5)? as u64,
        updated_ms: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
        revision: r.get(7)?,
        from_template: r.get::<_, i64>(8)? != 0,
        settings: serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default(),
        tags: serde_json::from_str(&r.get::<_, String>(10)?).unwrap_or_default(),
    })
}

const EXECUTION_COLUMNS: &str = "id, arn, machine_arn, name, status, input, output, error, cause, start_ms, stop_ms, definition, role_arn, cursor, last_event, redrive_count, redrive_ms, version_arn, alias_arn, map_run, map_index, map_items";

fn execution_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExecutionRow> {
    Ok(ExecutionRow {
        id: r.get(0)?,
        arn: r.get(1)?,
        machine_arn: r.get(2)?,
        name: r.get(3)?,
        status: r.get(4)?,
        input: r.get(5)?,
        output: r.get(6)?,
        error: r.get(7)?,
        cause: r.get(8)?,
        start_ms: r.get::<_, i64>(9)? as u64,
        stop_ms: r.get::<_, Option<i64>>(10)?.map(|v| v as u64),
        definition: r.get(11)?,
        role_arn: r.get(12)?,
        cursor: r.get(13)?,
        last_event: r.get::<_, i64>(14)? as u64,
        redrive_count: r.get::<_, i64>(15)? as u64,
        redrive_ms: r.get::<_, Option<i64>>(16)?.map(|v| v as u64),
        version_arn: r.get(17)?,
        alias_arn: r.get(18)?,
        map_run: r.get(19)?,
        map_index: r.get::<_, Option<i64>>(20)?.map(|v| v as u64),
        map_items: r.get::<_, Option<i64>>(21)?.map(|v| v as u64),
    })
}

pub(crate) fn machines(db: &Database) -> Result<Vec<MachineRow>, StoreError> {
    let conn = db.lock();
    let mut stmt = conn.prepare(&format!(
        "SELECT {MACHINE_COLUMNS} FROM machines ORDER BY name"
    ))?;
    let rows = stmt.query_map([], machine_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn put_machine(db: &Database, m: &MachineRow) -> Result<(), StoreError> {
    let conn = db.lock();
    conn.execute(
        &format!("INSERT OR REPLACE INTO machines ({MACHINE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
        params![
            m.arn,
            m.name,
            m.kind,
            m.definition,
            m.role_arn,
            m.created_ms as i64,
            m.updated_ms.map(|v| v as i64),
            m.revision,
            m.from_template as i64,
            m.settings.to_string(),
            m.tags.to_string()
        ],
    )?;
    Ok(())
}

pub(crate) fn delete_machine(db: &Database, arn: &str) -> Result<(), StoreError> {
    db.lock()
        .execute("DELETE FROM machines WHERE arn = ?1", [arn])?;
    Ok(())
}

pub(crate) fn execution(db: &Database, arn: &str) -> Result<Option<ExecutionRow>, StoreError> {
    let conn = db.lock();
    Ok(conn
        .query_row(
            &format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE arn = ?1"),
            [arn],
            execution_row,
        )
        .optional()?)
}

pub(crate) fn running(db: &Database) -> Result<Vec<ExecutionRow>, StoreError> {
    let conn = db.lock();
    let mut stmt = conn.prepare(&format!(
        "SELECT {EXECUTION_COLUMNS} FROM executions WHERE status = 'RUNNING' ORDER BY id"
    ))?;
    let rows = stmt.query_map([], execution_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Which executions a listing is of.
pub(crate) enum Of<'a> {
    Machine(&'a str),
    MapRun(&'a str),
}

/// A page of a machine's executions (or a Map Run's children), newest first: `(rows, more)`.
pub(crate) fn list_executions(
    db: &Database,
    of: Of<'_>,
    status: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<(Vec<ExecutionRow>, bool), StoreError> {
    let conn = db.lock();
    let (column, arn) = match of {
        Of::Machine(arn) => ("machine_arn", arn),
        Of::MapRun(arn) => ("map_run", arn),
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {EXECUTION_COLUMNS} FROM executions WHERE {column} = ?1 AND (?2 IS NULL OR status = ?2)
         ORDER BY start_ms DESC, id DESC LIMIT ?3 OFFSET ?4"
    ))?;
    let rows: Vec<ExecutionRow> = stmt
        .query_map(
            params![arn, status, (limit + 1) as i64, offset as i64],
            execution_row,
        )?
        .collect::<Result<_, _>>()?;
    let more = rows.len() > limit;
    Ok((rows.into_iter().take(limit).collect(), more))
}

/// Inserts a new execution with its `ExecutionStarted` event, in one commit.
pub(crate) async fn start_execution(
    db: &Database,
    row: ExecutionRow,
    started: Event,
) -> Result<i64, StoreError> {
    db.write(move |tx| insert_execution(tx, &row, &started))
        .await
}

/// [`start_execution`] for synchronous callers: a commit of its own, at once.
pub(crate) fn start_execution_now(
    db: &Database,
    row: ExecutionRow,
    started: Event,
) -> Result<i64, StoreError> {
    let mut conn = db.lock();
    let tx = conn.transaction()?;
    let id = insert_execution(&tx, &row, &started)?;
    tx.commit()?;
    Ok(id)
}

fn insert_execution(
    tx: &rusqlite::Transaction<'_>,
    row: &ExecutionRow,
    started: &Event,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO executions (arn, machine_arn, name, status, input, start_ms, definition, role_arn, last_event, version_arn, alias_arn, map_run, map_index, map_items)
         VALUES (?1, ?2, ?3, 'RUNNING', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            row.arn,
            row.machine_arn,
            row.name,
            row.input,
            row.start_ms as i64,
            row.definition,
            row.role_arn,
            started.id as i64,
            row.version_arn,
            row.alias_arn,
            row.map_run,
            row.map_index.map(|v| v as i64),
            row.map_items.map(|v| v as i64)
        ],
    )?;
    let id = tx.last_insert_rowid();
    insert_event(tx, id, started)?;
    Ok(id)
}

fn insert_event(tx: &rusqlite::Transaction<'_>, execution: i64, e: &Event) -> rusqlite::Result<()> {
    let details = e
        .details
        .as_ref()
        .map(|(k, v)| serde_json::json!({ k.as_str(): v }).to_string());
    tx.prepare_cached(
        "INSERT OR REPLACE INTO history (execution, id, previous, ts_ms, type, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        execution,
        e.id as i64,
        e.previous as i64,
        e.ts_ms as i64,
        e.kind,
        details
    ])?;
    Ok(())
}

/// A page of an execution's history: `(events, more)`.
pub(crate) fn history(
    db: &Database,
    execution: i64,
    after: u64,
    reverse: bool,
    limit: usize,
) -> Result<(Vec<Event>, bool), StoreError> {
    let conn = db.lock();
    let sql = if reverse {
        "SELECT id, previous, ts_ms, type, details FROM history WHERE execution = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
    } else {
        "SELECT id, previous, ts_ms, type, details FROM history WHERE execution = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
    };
    let bound = if reverse && after == 0 {
        i64::MAX
    } else {
        after as i64
    };
    let mut stmt = conn.prepare(sql)?;
    let rows: Vec<Event> = stmt
        .query_map(params![execution, bound, (limit + 1) as i64], |r| {
            let details: Option<String> = r.get(4)?;
            Ok(Event {
                id: r.get::<_, i64>(0)? as u64,
                previous: r.get::<_, i64>(1)? as u64,
                ts_ms: r.get::<_, i64>(2)? as u64,
                kind: r.get(3)?,
                details: details
                    .and_then(|d| serde_json::from_str::<Value>(&d).ok())
                    .and_then(|v| match v {
                        Value::Object(m) => m.into_iter().next(),
                        _ => None,
                    }),
            })
        })?
        .collect::<Result<_, _>>()?;
    let more = rows.len() > limit;
    Ok((rows.into_iter().take(limit).collect(), more))
}

/// How an execution ends: written with its last event.
#[derive(Debug, Clone)]
pub(crate) struct Closing {
    pub status: &'static str,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// A Standard execution's journal: each call is one group-committed write.
pub(crate) struct DbJournal {
    pub db: Arc<Database>,
    pub execution: i64,
}

fn closing_of(e: &Event) -> Option<Closing> {
    let det = e
        .details
        .as_ref()
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let s = |k: &str| det[k].as_str().map(str::to_owned);
    Some(match e.kind.as_str() {
        "ExecutionSucceeded" => Closing {
            status: "SUCCEEDED",
            output: s("output"),
            error: None,
            cause: None,
        },
        "ExecutionFailed" => Closing {
            status: "FAILED",
            output: None,
            error: s("error"),
            cause: s("cause"),
        },
        "ExecutionTimedOut" => Closing {
            status: "TIMED_OUT",
            output: None,
            error: s("error"),
            cause: s("cause"),
        },
        "ExecutionAborted" => Closing {
            status: "ABORTED",
            output: None,
            error: s("error"),
            cause: s("cause"),
        },
        _ => return None,
    })
}

impl Journal for DbJournal {
    fn record<'a>(
        &'a self,
        events: Vec<Event>,
        cursor: Option<Cursor>,
    ) -> BoxFuture<'a, Result<(), String>> {
        let execution = self.execution;
        Box::pin(async move {
            self.db
                .write(move |tx| {
                    write_events(tx, execution, &events, cursor.as_ref())?;
                    Ok(())
                })
                .await
                .map_err(|e| e.to_string())
        })
    }
}

fn write_events(
    tx: &rusqlite::Transaction<'_>,
    execution: i64,
    events: &[Event],
    cursor: Option<&Cursor>,
) -> Result<(), StoreError> {
    // An execution already ended (stopped while its task still had a write queued) takes no
    // more events: the end stays the last event.
    let status: Option<String> = tx
        .prepare_cached("SELECT status FROM executions WHERE id = ?1")?
        .query_row([execution], |r| r.get(0))
        .optional()?;
    if status.as_deref() != Some("RUNNING") {
        return Ok(());
    }
    for e in events {
        insert_event(tx, execution, e)?;
    }
    if let Some(last) = events.iter().map(|e| e.id).max() {
        tx.prepare_cached("UPDATE executions SET last_event = max(last_event, ?2) WHERE id = ?1")?
            .execute(params![execution, last as i64])?;
    }
    if let Some(c) = cursor {
        tx.prepare_cached("UPDATE executions SET cursor = ?2 WHERE id = ?1")?
            .execute(params![execution, c.to_json().to_string()])?;
    }
    for e in events {
        if let Some(c) = closing_of(e) {
            tx.prepare_cached(
                "UPDATE executions SET status = ?2, output = ?3, error = ?4, cause = ?5, stop_ms = ?6
                 WHERE id = ?1 AND status = 'RUNNING'",
            )?
            .execute(params![
                execution,
                c.status,
                c.output,
                c.error,
                c.cause,
                e.ts_ms as i64
            ])?;
        }
    }
    Ok(())
}

/// Runs a closed execution again (`RedriveExecution`): back to `RUNNING` with its
/// `ExecutionRedriven` event, unless it is running or succeeded meanwhile. Says whether it did.
pub(crate) async fn redrive(
    db: &Database,
    execution: i64,
    event: Event,
) -> Result<Option<u64>, StoreError> {
    db.write(move |tx| {
        let (status, last, count): (String, i64, i64) = tx.query_row(
            "SELECT status, last_event, redrive_count FROM executions WHERE id = ?1",
            [execution],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        if !matches!(status.as_str(), "FAILED" | "TIMED_OUT" | "ABORTED") {
            return Ok(None);
        }
        let count = count as u64 + 1;
        let mut e = event;
        e.id = last as u64 + 1;
        e.previous = last as u64;
        e.details = Some((
            "executionRedrivenEventDetails".into(),
            serde_json::json!({ "redriveCount": count }),
        ));
        insert_event(tx, execution, &e)?;
        tx.execute(
            "UPDATE executions SET status = 'RUNNING', output = NULL, error = NULL, cause = NULL,
             stop_ms = NULL, last_event = ?2, redrive_count = ?3, redrive_ms = ?4 WHERE id = ?1",
            params![execution, e.id as i64, count as i64, e.ts_ms as i64],
        )?;
        Ok(Some(e.id))
    })
    .await
}

/// Ends a running execution with `event` (`ExecutionAborted`) unless it has ended already;
/// says whether it did.
pub(crate) async fn abort(db: &Database, execution: i64, event: Event) -> Result<bool, StoreError> {
    db.write(move |tx| {
        let status: String = tx.query_row(
            "SELECT status FROM executions WHERE id = ?1",
            [execution],
            |r| r.get(0),
        )?;
        if status != "RUNNING" {
            return Ok(false);
        }
        let last: i64 = tx.query_row(
            "SELECT last_event FROM executions WHERE id = ?1",
            [execution],
            |r| r.get(0),
        )?;
        let mut e = event;
        e.id = last as u64 + 1;
        e.previous = last as u64;
        write_events(tx, execution, &[e], None)?;
        Ok(true)
    })
    .await
}
/// A distributed Map's Map Run.
#[derive(Debug, Clone, PartialEq)]
pub struct MapRunRow {
    pub arn: String,
    pub execution_arn: String,
    /// The children's state machine ARN (the parent's, `/`, the label).
    pub machine_arn: String,
    pub label: String,
    pub definition: String,
    pub express: bool,
    pub status: String,
    pub start_ms: u64,
    pub stop_ms: Option<u64>,
    pub max_concurrency: u64,
    pub tolerated_percentage: Option<f64>,
    pub tolerated_count: Option<u64>,
    /// Children and items, once the items are read.
    pub total: Option<u64>,
    pub items: Option<u64>,
    /// Express children's counts, kept when the run ends (Standard children are counted from
    /// their rows).
    pub counts: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
    pub cause: Option<String>,
    /// Redriven with its parent execution: how often, and when last.
    pub redrive_count: u64,
    pub redrive_ms: Option<u64>,
}

const MAP_RUN_COLUMNS: &str = "arn, execution_arn, machine_arn, label, definition, express, status, start_ms, stop_ms, max_concurrency, tolerated_percentage, tolerated_count, total, items, counts, error, cause, redrive_count, redrive_ms";

fn map_run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MapRunRow> {
    Ok(MapRunRow {
        arn: r.get(0)?,
        execution_arn: r.get(1)?,
        machine_arn: r.get(2)?,
        label: r.get(3)?,
        definition: r.get(4)?,
        express: r.get::<_, i64>(5)? != 0,
        status: r.get(6)?,
        start_ms: r.get::<_, i64>(7)? as u64,
        stop_ms: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
        max_concurrency: r.get::<_, i64>(9)? as u64,
        tolerated_percentage: r.get(10)?,
        tolerated_count: r.get::<_, Option<i64>>(11)?.map(|v| v as u64),
        total: r.get::<_, Option<i64>>(12)?.map(|v| v as u64),
        items: r.get::<_, Option<i64>>(13)?.map(|v| v as u64),
        counts: r
            .get::<_, Option<String>>(14)?
            .and_then(|c| serde_json::from_str(&c).ok()),
        error: r.get(15)?,
        cause: r.get(16)?,
        redrive_count: r.get::<_, i64>(17)? as u64,
        redrive_ms: r.get::<_, Option<i64>>(18)?.map(|v| v as u64),
    })
}

/// Keeps a new Map Run; one already kept (found again after a restart) stays as it is.
pub(crate) async fn open_map_run(db: &Database, m: MapRunRow) -> Result<MapRunRow, StoreError> {
    db.write(move |tx| {
        tx.execute(
            &format!("INSERT OR IGNORE INTO map_runs ({MAP_RUN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9, ?10, ?11, NULL, NULL, NULL, NULL, NULL, 0, NULL)"),
            params![
                m.arn,
                m.execution_arn,
                m.machine_arn,
                m.label,
                m.definition,
                m.express as i64,
                m.status,
                m.start_ms as i64,
                m.max_concurrency as i64,
                m.tolerated_percentage,
                m.tolerated_count.map(|v| v as i64)
            ],
        )?;
        Ok(tx.query_row(
            &format!("SELECT {MAP_RUN_COLUMNS} FROM map_runs WHERE arn = ?1"),
            [&m.arn],
            map_run_row,
        )?)
    })
    .await
}

pub(crate) fn map_run(db: &Database, arn: &str) -> Result<Option<MapRunRow>, StoreError> {
    Ok(db
        .lock()
        .query_row(
            &format!("SELECT {MAP_RUN_COLUMNS} FROM map_runs WHERE arn = ?1"),
            [arn],
            map_run_row,
        )
        .optional()?)
}

/// A page of an execution's Map Runs, oldest first: `(rows, more)`.
pub(crate) fn map_runs_of(
    db: &Database,
    execution_arn: &str,
    offset: usize,
    limit: usize,
) -> Result<(Vec<MapRunRow>, bool), StoreError> {
    let conn = db.lock();
    let mut stmt = conn.prepare(&format!(
        "SELECT {MAP_RUN_COLUMNS} FROM map_runs WHERE execution_arn = ?1 ORDER BY start_ms, arn LIMIT ?2 OFFSET ?3"
    ))?;
    let rows: Vec<MapRunRow> = stmt
        .query_map(
            params![execution_arn, (limit + 1) as i64, offset as i64],
            map_run_row,
        )?
        .collect::<Result<_, _>>()?;
    let more = rows.len() > limit;
    Ok((rows.into_iter().take(limit).collect(), more))
}

/// A redriven execution's Map Run, open again: back to `RUNNING` with its redrive counted.
/// Idempotent: a run already reopened (a restart came before its `MapRunRedriven` was said)
/// answers as it is. Answers its ARN and redrive count; `None` for a run that succeeded.
pub(crate) async fn redrive_map_run(
    db: &Database,
    arn: String,
    now_ms: u64,
) -> Result<Option<(String, u64)>, StoreError> {
    db.write(move |tx| {
        let run: Option<(String, i64)> = tx
            .query_row(
                "SELECT status, redrive_count FROM map_runs WHERE arn = ?1",
                [&arn],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match run {
            Some((status, count)) if status == "FAILED" || status == "ABORTED" => {
                tx.execute(
                    "UPDATE map_runs SET status = 'RUNNING', stop_ms = NULL, error = NULL,
                     cause = NULL, counts = NULL, redrive_count = redrive_count + 1,
                     redrive_ms = ?2 WHERE arn = ?1",
                    params![arn, now_ms as i64],
                )?;
                Some((arn, count as u64 + 1))
            }
            Some((status, count)) if status == "RUNNING" => Some((arn, count as u64)),
            _ => None,
        })
    })
    .await
}

/// `UpdateMapRun`: the settings given replace the kept ones.
pub(crate) async fn update_map_run(
    db: &Database,
    arn: String,
    max_concurrency: Option<u64>,
    tolerated_percentage: Option<f64>,
    tolerated_count: Option<u64>,
) -> Result<(), StoreError> {
    db.write(move |tx| {
        tx.execute(
            "UPDATE map_runs SET max_concurrency = coalesce(?2, max_concurrency),
             tolerated_percentage = coalesce(?3, tolerated_percentage),
             tolerated_count = coalesce(?4, tolerated_count) WHERE arn = ?1",
            params![
                arn,
                max_concurrency.map(|v| v as i64),
                tolerated_percentage,
                tolerated_count.map(|v| v as i64)
            ],
        )?;
        Ok(())
    })
    .await
}

pub(crate) async fn set_map_run_total(
    db: &Database,
    arn: String,
    total: u64,
    items: u64,
) -> Result<(), StoreError> {
    db.write(move |tx| {
        tx.execute(
            "UPDATE map_runs SET total = ?2, items = ?3 WHERE arn = ?1",
            params![arn, total as i64, items as i64],
        )?;
        Ok(())
    })
    .await
}

/// How a Map Run is ended.
#[derive(Debug, Clone)]
pub(crate) struct RunClosing {
    pub status: &'static str,
    pub stop_ms: u64,
    pub counts: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// Ends a Map Run in one commit: its status and why, its Express children's counts, each
/// child still running aborted (`ExecutionAborted`), and those children's own open runs
/// aborted likewise, down the tree. Answers the nested runs it ended.
pub(crate) async fn close_map_run(
    db: &Database,
    arn: String,
    closing: RunClosing,
) -> Result<Vec<String>, StoreError> {
    db.write(move |tx| {
        let mut nested = Vec::new();
        close_tree(tx, &arn, &closing, &mut nested)?;
        Ok(nested)
    })
    .await
}

/// At start-up: Map Runs still open whose execution has ended (a restart came between the
/// end and the runs' closing) are aborted, with their children. Answers how many.
pub(crate) fn close_orphan_runs(db: &Database, stop_ms: u64) -> Result<usize, StoreError> {
    let mut conn = db.lock();
    let tx = conn.transaction()?;
    let orphans: Vec<String> = tx
        .prepare(
            "SELECT m.arn FROM map_runs m LEFT JOIN executions e ON e.arn = m.execution_arn
             WHERE m.status = 'RUNNING' AND (e.status IS NULL OR e.status != 'RUNNING')",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let closing = RunClosing {
        status: "ABORTED",
        stop_ms,
        counts: None,
        error: None,
        cause: None,
    };
    let mut nested = Vec::new();
    for arn in &orphans {
        close_tree(&tx, arn, &closing, &mut nested)?;
    }
    tx.commit()?;
    Ok(orphans.len())
}

fn close_tree(
    tx: &rusqlite::Transaction<'_>,
    arn: &str,
    closing: &RunClosing,
    nested: &mut Vec<String>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE map_runs SET status = ?2, stop_ms = ?3, counts = coalesce(?4, counts), error = ?5,
         cause = ?6 WHERE arn = ?1 AND status = 'RUNNING'",
        params![
            arn,
            closing.status,
            closing.stop_ms as i64,
            closing.counts.as_ref().map(|c| c.to_string()),
            closing.error,
            closing.cause
        ],
    )?;
    let running: Vec<(i64, i64, String)> = tx
        .prepare(
            "SELECT id, last_event, arn FROM executions WHERE map_run = ?1 AND status = 'RUNNING'",
        )?
        .query_map([arn], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let aborted = RunClosing {
        status: "ABORTED",
        stop_ms: closing.stop_ms,
        counts: None,
        error: None,
        cause: None,
    };
    for (id, last, child) in running {
        let e = Event {
            id: last as u64 + 1,
            previous: last as u64,
            ts_ms: closing.stop_ms,
            kind: "ExecutionAborted".into(),
            details: Some(("executionAbortedEventDetails".into(), serde_json::json!({}))),
        };
        write_events(tx, id, &[e], None)?;
        let runs: Vec<String> = tx
            .prepare("SELECT arn FROM map_runs WHERE execution_arn = ?1 AND status = 'RUNNING'")?
            .query_map([&child], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for run in runs {
            nested.push(run.clone());
            close_tree(tx, &run, &aborted, nested)?;
        }
    }
    Ok(())
}

/// A Map Run's child at `index`, when it was started.
pub(crate) fn map_child(
    db: &Database,
    map_run: &str,
    index: u64,
) -> Result<Option<ExecutionRow>, StoreError> {
    Ok(db
        .lock()
        .query_row(
            &format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions WHERE map_run = ?1 AND map_index = ?2"
            ),
            params![map_run, index as i64],
            execution_row,
        )
        .optional()?)
}

/// A Map Run's Standard children by status: `(status, executions, items)`.
pub(crate) fn map_child_counts(
    db: &Database,
    map_run: &str,
) -> Result<Vec<(String, u64, u64)>, StoreError> {
    let conn = db.lock();
    let mut stmt = conn.prepare(
        "SELECT status, count(*), sum(coalesce(map_items, 1)) FROM executions WHERE map_run = ?1 GROUP BY status",
    )?;
    let rows = stmt.query_map([map_run], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)? as u64,
            r.get::<_, i64>(2)? as u64,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
