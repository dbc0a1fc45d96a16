//! The parameter database: every version of every parameter, one row each.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::SsmError;

/// Schema versions, in order (see `nimbus_store::migrate`).
const MIGRATIONS: &[&str] = &[
    // 1: parameters, each version a row; the newest is the parameter's value. The values the
    // template last set, so a restart changes only what the template changed.
    "CREATE TABLE versions (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        type TEXT NOT NULL,
        value TEXT NOT NULL,
        description TEXT,
        allowed_pattern TEXT,
        tier TEXT NOT NULL,
        data_type TEXT NOT NULL,
        modified_ms INTEGER NOT NULL,
        labels TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (name, version)
    ) WITHOUT ROWID;
    CREATE TABLE template_values (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;",
];

pub(crate) fn open(path: Option<&Path>) -> Result<Connection, SsmError> {
    let opened = match path {
        Some(p) => nimbus_store::open_database(p, MIGRATIONS),
        None => Connection::open_in_memory()
            .map_err(nimbus_store::StoreError::from)
            .and_then(|c| nimbus_store::migrate(c, ":memory:", MIGRATIONS)),
    };
    opened.map_err(|e| SsmError::Internal(e.to_string()))
}

/// One version of a parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Version {
    pub name: String,
    pub version: i64,
    pub kind: String,
    pub value: String,
    pub description: Option<String>,
    pub allowed_pattern: Option<String>,
    pub tier: String,
    pub data_type: String,
    pub modified_ms: u64,
    pub labels: Vec<String>,
}

const COLUMNS: &str = "name, version, type, value, description, allowed_pattern, tier, data_type,
     modified_ms, labels";

fn version_of(r: &Row<'_>) -> rusqlite::Result<Version> {
    let labels: String = r.get(9)?;
    Ok(Version {
        name: r.get(0)?,
        version: r.get(1)?,
        kind: r.get(2)?,
        value: r.get(3)?,
        description: r.get(4)?,
        allowed_pattern: r.get(5)?,
        tier: r.get(6)?,
        data_type: r.get(7)?,
        modified_ms: r.get::<_, i64>(8)? as u64,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
    })
}

/// The newest version of `name`.
pub(crate) fn latest(db: &Connection, name: &str) -> Result<Option<Version>, SsmError> {
    Ok(db
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM versions WHERE name = ?1 ORDER BY version DESC LIMIT 1"
        ))?
        .query_row([name], version_of)
        .optional()?)
}

/// Every version of `name`, oldest first.
pub(crate) fn history(db: &Connection, name: &str) -> Result<Vec<Version>, SsmError> {
    Ok(db
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM versions WHERE name = ?1 ORDER BY version"
        ))?
        .query_map([name], version_of)?
        .collect::<Result<_, _>>()?)
}

/// The newest version of every parameter whose name is after `after`, in name order.
pub(crate) fn latest_after(
    db: &Connection,
    after: &str,
) -> Result<impl Iterator<Item = Version>, SsmError> {
    let rows: Vec<Version> = db
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM versions v WHERE name > ?1
               AND version = (SELECT MAX(version) FROM versions WHERE name = v.name)
             ORDER BY name"
        ))?
        .query_map([after], version_of)?
        .collect::<Result<_, _>>()?;
    Ok(rows.into_iter())
}

pub(crate) fn insert(db: &Connection, v: &Version) -> Result<(), SsmError> {
    db.prepare_cached(&format!(
        "INSERT INTO versions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        v.name,
        v.version,
        v.kind,
        v.value,
        v.description,
        v.allowed_pattern,
        v.tier,
        v.data_type,
        v.modified_ms as i64,
        serde_json::to_string(&v.labels).expect("strings"),
    ])?;
    Ok(())
}

pub(crate) fn set_labels(
    db: &Connection,
    name: &str,
    version: i64,
    labels: &[String],
) -> Result<(), SsmError> {
    db.prepare_cached("UPDATE versions SET labels = ?3 WHERE name = ?1 AND version = ?2")?
        .execute(params![
            name,
            version,
            serde_json::to_string(labels).expect("strings")
        ])?;
    Ok(())
}

pub(crate) fn delete_version(db: &Connection, name: &str, version: i64) -> Result<(), SsmError> {
    db.prepare_cached("DELETE FROM versions WHERE name = ?1 AND version = ?2")?
        .execute(params![name, version])?;
    Ok(())
}

/// Deletes every version of `name`; false when there was none.
pub(crate) fn delete(db: &Connection, name: &str) -> Result<bool, SsmError> {
    Ok(db
        .prepare_cached("DELETE FROM versions WHERE name = ?1")?
        .execute([name])?
        > 0)
}

pub(crate) fn names(db: &Connection) -> Result<Vec<String>, SsmError> {
    Ok(db
        .prepare_cached("SELECT DISTINCT name FROM versions ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// A parameter as the template declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateParameter {
    pub name: String,
    pub kind: String,
    pub value: String,
    pub description: Option<String>,
    pub allowed_pattern: Option<String>,
    pub tier: Option<String>,
    pub data_type: Option<String>,
}

pub(crate) fn apply_template(
    db: &mut Connection,
    params: &[TemplateParameter],
    now_ms: u64,
) -> Result<Vec<String>, SsmError> {
    let tx = db.transaction()?;
    let mut out = Vec::new();
    for p in params {
        crate::names::check_name(&p.name)?;
        let last: Option<String> = tx
            .prepare_cached("SELECT value FROM template_values WHERE name = ?1")?
            .query_row([&p.name], |r| r.get(0))
            .optional()?;
        let current = latest(&tx, &p.name)?;
        let changed = last.as_deref() != Some(p.value.as_str());
        if current.is_none() || changed {
            let version = current.as_ref().map_or(1, |c| c.version + 1);
            insert(
                &tx,
                &Version {
                    name: p.name.clone(),
                    version,
                    kind: p.kind.clone(),
                    value: p.value.clone(),
                    description: p.description.clone(),
                    allowed_pattern: p.allowed_pattern.clone(),
                    tier: p.tier.clone().unwrap_or_else(|| "Standard".into()),
                    data_type: p.data_type.clone().unwrap_or_else(|| "text".into()),
                    modified_ms: now_ms,
                    labels: Vec::new(),
                },
            )?;
        }
        tx.prepare_cached("INSERT OR REPLACE INTO template_values (name, value) VALUES (?1, ?2)")?
            .execute(params![p.name, p.value])?;
        out.push(p.name.clone());
    }
    tx.commit()?;
    Ok(out)
}
