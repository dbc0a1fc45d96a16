//! AWS Secrets Manager, as nimbus serves it (AWS JSON 1.1, `secretsmanager.<Op>`).
//!
//! A secret has versions, each with its value and its staging labels: `AWSCURRENT` marks the
//! value readers get, and when a new value becomes current the one it replaces is labelled
//! `AWSPREVIOUS`. Deleting a secret schedules its deletion after a recovery window (7 to 30
//! days, or at once when forced); until then it can be restored, and any other use is refused
//! as Secrets Manager refuses it. Secrets live in `<state-dir>/secretsmanager.db`, each change
//! committed before it is answered.
//!
//! Secret values are returned only by `GetSecretValue`: never in errors, logs or listings.
//! Template secrets (`AWS::SecretsManager::Secret`) are created at start-up; a generated value
//! (`GenerateSecretString`) is generated once, and a `SecretString` is written again only when
//! the template's own value changes, so a value put later with the AWS CLI survives restarts.

pub mod password;

use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

pub use password::PasswordSpec;

/// Secrets Manager's own errors: the error code clients read from `__type`, and its message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SecretsError {
    #[error("{message}")]
    Service { code: &'static str, message: String },
    /// nimbus's own failure (its database): `InternalServiceError`.
    #[error("{0}")]
    Internal(String),
}

impl SecretsError {
    fn new(code: &'static str, message: impl Into<String>) -> SecretsError {
        SecretsError::Service {
            code,
            message: message.into(),
        }
    }

    fn invalid_parameter(message: impl Into<String>) -> SecretsError {
        SecretsError::new("InvalidParameterException", message)
    }

    pub fn code(&self) -> &'static str {
        match self {
            SecretsError::Service { code, .. } => code,
            SecretsError::Internal(_) => "InternalServiceError",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            SecretsError::Service { .. } => 400,
            SecretsError::Internal(_) => 500,
        }
    }

    pub fn body(&self) -> Value {
        json!({"__type": self.code(), "message": self.to_string()})
    }
}

impl From<rusqlite::Error> for SecretsError {
    fn from(e: rusqlite::Error) -> SecretsError {
        SecretsError::Internal(format!("the secrets database failed: {e}"))
    }
}

fn not_found() -> SecretsError {
    SecretsError::new(
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
}

fn marked_for_deletion() -> SecretsError {
    SecretsError::new(
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    )
}

const MIGRATIONS: &[&str] = &[
    // 1: secrets and their versions; `template_value` is what the template last wrote.
    "CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        arn TEXT NOT NULL UNIQUE,
        description TEXT,
        kms_key_id TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        created_ms INTEGER NOT NULL,
        changed_ms INTEGER NOT NULL,
        accessed_ms INTEGER,
        deleted_ms INTEGER,
        deletion_ms INTEGER,
        template_value TEXT
    ) WITHOUT ROWID;
    CREATE TABLE versions (
        name TEXT NOT NULL,
        version_id TEXT NOT NULL,
        string TEXT,
        binary BLOB,
        created_ms INTEGER NOT NULL,
        stages TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (name, version_id)
    ) WITHOUT ROWID;",
];

#[derive(Debug, Clone)]
pub struct SecretsConfig {
    pub region: String,
    pub account: String,
}

/// A secret as the template declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSecret {
    pub name: String,
    /// The ARN the template's `Ref` gave it (`nimbus_template::secret_arn`).
    pub arn: String,
    pub description: Option<String>,
    pub value: TemplateValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TemplateValue {
    String(String),
    /// `GenerateSecretString`: a password alone, or put under `key` of the JSON `template`.
    Generate {
        spec: PasswordSpec,
        template: Option<String>,
        key: Option<String>,
    },
    None,
}

/// Secrets Manager: cheap to clone, one database behind it.
#[derive(Clone)]
pub struct SecretsManager {
    inner: Arc<Inner>,
}

struct Inner {
    db: Mutex<Connection>,
    config: SecretsConfig,
}

/// A secret's row.
#[derive(Debug, Clone)]
struct Secret {
    name: String,
    arn: String,
    description: Option<String>,
    kms_key_id: Option<String>,
    tags: Value,
    created_ms: u64,
    changed_ms: u64,
    accessed_ms: Option<u64>,
    deleted_ms: Option<u64>,
    deletion_ms: Option<u64>,
}

#[derive(Debug, Clone)]
struct Version {
    id: String,
    string: Option<String>,
    binary: Option<Vec<u8>>,
    created_ms: u64,
    stages: Vec<String>,
}

fn random_below(n: usize) -> usize {
    (rand::random::<u64>() % n as u64) as usize
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn string<'a>(input: &'a Value, key: &str) -> Result<&'a str, SecretsError> {
    input[key].as_str().ok_or_else(|| {
        SecretsError::invalid_parameter(format!(
            "You must provide a value for the {key} parameter."
        ))
    })
}

impl SecretsManager {
    /// Opens (creating if needed) the database at `path`; `None` keeps it in memory (tests).
    pub fn open(
        path: Option<&Path>,
        config: SecretsConfig,
    ) -> Result<SecretsManager, SecretsError> {
        let conn = match path {
            Some(p) => nimbus_store::open_database(p, MIGRATIONS),
            None => Connection::open_in_memory()
                .map_err(nimbus_store::StoreError::from)
                .and_then(|c| nimbus_store::migrate(c, ":memory:", MIGRATIONS)),
        }
        .map_err(|e| SecretsError::Internal(e.to_string()))?;
        Ok(SecretsManager {
            inner: Arc::new(Inner {
                db: Mutex::new(conn),
                config,
            }),
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.inner.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_arn(&self, name: &str) -> String {
        const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let suffix: String = (0..6)
            .map(|_| ALNUM[random_below(ALNUM.len())] as char)
            .collect();
        let c = &self.inner.config;
        format!(
            "arn:aws:secretsmanager:{}:{}:secret:{name}-{suffix}",
            c.region, c.account
        )
    }

    /// The names of every secret, for the dashboard and start-up output (never values).
    pub fn names(&self) -> Result<Vec<String>, SecretsError> {
        Ok(self
            .db()
            .prepare_cached("SELECT name FROM secrets ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    /// How many secrets AWS would bill for: those not marked for deletion.
    pub fn billed_count(&self) -> Result<u64, SecretsError> {
        Ok(self
            .db()
            .prepare_cached("SELECT COUNT(*) FROM secrets WHERE deleted_ms IS NULL")?
            .query_row([], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Creates the template's secrets (see the crate docs); returns `(name, ARN)` of each.
    pub fn apply_template(
        &self,
        secrets: &[TemplateSecret],
        now_ms: u64,
    ) -> Result<Vec<(String, String)>, SecretsError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let mut out = Vec::new();
        purge_expired(&tx, now_ms)?;
        for s in secrets {
            check_name(&s.name)?;
            let existing = secret(&tx, &s.name)?;
            let template_value = match &s.value {
                TemplateValue::String(v) => Some(v.clone()),
                _ => None,
            };
            let arn = match existing {
                Some(e) => {
                    let last: Option<String> = tx
                        .prepare_cached("SELECT template_value FROM secrets WHERE name = ?1")?
                        .query_row([&s.name], |r| r.get(0))?;
                    if let (Some(v), true) = (&template_value, template_value != last) {
                        put_current(&tx, &e.name, &new_version_id(), Some(v), None, now_ms)?;
                    }
                    e.arn
                }
                None => {
                    let arn = s.arn.clone();
                    tx.prepare_cached(
                        "INSERT INTO secrets (name, arn, description, created_ms, changed_ms)
                         VALUES (?1, ?2, ?3, ?4, ?4)",
                    )?
                    .execute(params![
                        s.name,
                        arn,
                        s.description,
                        now_ms as i64
                    ])?;
                    let value = match &s.value {
                        TemplateValue::String(v) => Some(v.clone()),
                        TemplateValue::Generate {
                            spec,
                            template,
                            key,
                        } => Some(generated(spec, template.as_deref(), key.as_deref())?),
                        TemplateValue::None => None,
                    };
                    if let Some(v) = value {
                        put_current(&tx, &s.name, &new_version_id(), Some(&v), None, now_ms)?;
                    }
                    arn
                }
            };
            tx.prepare_cached("UPDATE secrets SET template_value = ?2 WHERE name = ?1")?
                .execute(params![s.name, template_value])?;
            out.push((s.name.clone(), arn));
        }
        tx.commit()?;
        Ok(out)
    }

    /// Runs one action; `input` is the request's JSON body.
    pub fn dispatch(
        &self,
        action: &str,
        input: &Value,
        now_ms: u64,
    ) -> Result<Value, SecretsError> {
        if action == "GetRandomPassword" {
            return get_random_password(input);
        }
        let mut db = self.db();
        let tx = db.transaction()?;
        purge_expired(&tx, now_ms)?;
        let answer = match action {
            "CreateSecret" => self.create_secret(&tx, input, now_ms),
            "GetSecretValue" => get_secret_value(&tx, input, now_ms),
            "PutSecretValue" => put_secret_value(&tx, input, now_ms),
            "UpdateSecret" => update_secret(&tx, input, now_ms),
            "DescribeSecret" => describe_secret(&tx, input),
            "ListSecrets" => list_secrets(&tx, input),
            "DeleteSecret" => delete_secret(&tx, input, now_ms),
            "RestoreSecret" => restore_secret(&tx, input, now_ms),
            "ListSecretVersionIds" => list_secret_version_ids(&tx, input),
            "TagResource" => tag_resource(&tx, input, true),
            "UntagResource" => tag_resource(&tx, input, false),
            other => Err(SecretsError::new(
                "UnknownOperationException",
                format!("nimbus's Secrets Manager does not serve {other}"),
            )),
        }?;
        tx.commit()?;
        Ok(answer)
    }

    fn create_secret(
        &self,
        tx: &Connection,
        input: &Value,
        now_ms: u64,
    ) -> Result<Value, SecretsError> {
        let name = string(input, "Name")?;
        check_name(name)?;
        if let Some(existing) = secret(tx, name)? {
            return Err(match existing.deleted_ms {
                Some(_) => SecretsError::new(
                    "InvalidRequestException",
                    "You can't create this secret because a secret with this name is already scheduled for deletion.",
                ),
                None => SecretsError::new(
                    "ResourceExistsException",
                    format!("The operation failed because the secret {name} already exists."),
                ),
            });
        }
        let arn = self.new_arn(name);
        let tags = input.get("Tags").cloned().unwrap_or_else(|| json!([]));
        tx.prepare_cached(
            "INSERT INTO secrets (name, arn, description, kms_key_id, tags, created_ms, changed_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        )?
        .execute(params![
            name,
            arn,
            input["Description"].as_str(),
            input["KmsKeyId"].as_str(),
            tags.to_string(),
            now_ms as i64
        ])?;
        // A bad value fails the call after the insert: the transaction keeps neither.
        let mut answer = json!({"ARN": arn, "Name": name});
        if let Some(id) = put_given_value(tx, name, input, now_ms)? {
            answer["VersionId"] = id.into();
        }
        Ok(answer)
    }
}

/// The request's `SecretString` or `SecretBinary`, if it has one, as the new current version:
/// its version id.
fn put_given_value(
    db: &Connection,
    name: &str,
    input: &Value,
    now_ms: u64,
) -> Result<Option<String>, SecretsError> {
    let (string_value, binary_value) = value_of(input)?;
    if string_value.is_none() && binary_value.is_none() {
        return Ok(None);
    }
    let id = version_id(input)?;
    put_current(
        db,
        name,
        &id,
        string_value.as_deref(),
        binary_value.as_deref(),
        now_ms,
    )?;
    Ok(Some(id))
}

/// A new version labelled `AWSCURRENT` (the one it replaces becomes `AWSPREVIOUS`).
fn put_current(
    db: &Connection,
    name: &str,
    id: &str,
    string: Option<&str>,
    binary: Option<&[u8]>,
    now_ms: u64,
) -> Result<(), SecretsError> {
    put_version(db, name, id, string, binary, &["AWSCURRENT".into()], now_ms)
}

fn new_version_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The strings of a JSON array (anything else in it, or no array, gives none).
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn check_name(name: &str) -> Result<(), SecretsError> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    match ok {
        true => Ok(()),
        false => Err(SecretsError::new(
            "ValidationException",
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
        )),
    }
}

fn version_id(input: &Value) -> Result<String, SecretsError> {
    match input["ClientRequestToken"].as_str() {
        None => Ok(new_version_id()),
        Some(t) if (32..=64).contains(&t.len()) => Ok(t.to_owned()),
        Some(_) => Err(SecretsError::invalid_parameter(
            "ClientRequestToken must be 32-64 characters long.",
        )),
    }
}

/// `SecretString` or `SecretBinary` (base64 in JSON), at most one, each at most 64 KB.
#[allow(clippy::type_complexity)]
fn value_of(input: &Value) -> Result<(Option<String>, Option<Vec<u8>>), SecretsError> {
    let s = input["SecretString"].as_str().map(str::to_owned);
    let b = match input["SecretBinary"].as_str() {
        None => None,
        Some(b64) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| {
                    SecretsError::invalid_parameter("SecretBinary is not valid base64.")
                })?,
        ),
    };
    if s.is_some() && b.is_some() {
        return Err(SecretsError::invalid_parameter(
            "You can't specify both a binary secret value and a string secret value in the same secret.",
        ));
    }
    let len = s.as_ref().map_or(0, String::len) + b.as_ref().map_or(0, Vec::len);
    if len > 65_536 {
        return Err(SecretsError::invalid_parameter(
            "The secret value is larger than 65536 bytes.",
        ));
    }
    Ok((s, b))
}

fn secret_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Secret> {
    let ms = |v: Option<i64>| v.map(|v| v as u64);
    let tags: String = r.get(4)?;
    Ok(Secret {
        name: r.get(0)?,
        arn: r.get(1)?,
        description: r.get(2)?,
        kms_key_id: r.get(3)?,
        tags: serde_json::from_str(&tags).unwrap_or_else(|_| json!([])),
        created_ms: r.get::<_, i64>(5)? as u64,
        changed_ms: r.get::<_, i64>(6)? as u64,
        accessed_ms: ms(r.get(7)?),
        deleted_ms: ms(r.get(8)?),
        deletion_ms: ms(r.get(9)?),
    })
}

const SECRET_COLUMNS: &str = "name, arn, description, kms_key_id, tags, created_ms, changed_ms,
     accessed_ms, deleted_ms, deletion_ms";

/// The secret a `SecretId` names: its name, its ARN, or its ARN without the random suffix.
fn secret(db: &Connection, id: &str) -> Result<Option<Secret>, SecretsError> {
    let name = match id.strip_prefix("arn:") {
        Some(_) => {
            let by_arn = db
                .prepare_cached(&format!(
                    "SELECT {SECRET_COLUMNS} FROM secrets WHERE arn = ?1"
                ))?
                .query_row([id], secret_of)
                .optional()?;
            if by_arn.is_some() {
                return Ok(by_arn);
            }
            id.split_once(":secret:").map_or(id, |(_, n)| n)
        }
        None => id,
    };
    Ok(db
        .prepare_cached(&format!(
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE name = ?1"
        ))?
        .query_row([name], secret_of)
        .optional()?)
}

/// The secret, which must exist and not be marked for deletion.
fn live_secret(db: &Connection, input: &Value) -> Result<Secret, SecretsError> {
    let s = secret(db, string(input, "SecretId")?)?.ok_or_else(not_found)?;
    match s.deleted_ms {
        Some(_) => Err(marked_for_deletion()),
        None => Ok(s),
    }
}

fn versions(db: &Connection, name: &str) -> Result<Vec<Version>, SecretsError> {
    Ok(db
        .prepare_cached(
            "SELECT version_id, string, binary, created_ms, stages FROM versions
             WHERE name = ?1 ORDER BY created_ms, version_id",
        )?
        .query_map([name], |r| {
            let stages: String = r.get(4)?;
            Ok(Version {
                id: r.get(0)?,
                string: r.get(1)?,
                binary: r.get(2)?,
                created_ms: r.get::<_, i64>(3)? as u64,
                stages: serde_json::from_str(&stages).unwrap_or_default(),
            })
        })?
        .collect::<Result<_, _>>()?)
}

fn set_stages(
    db: &Connection,
    name: &str,
    id: &str,
    stages: &[String],
) -> Result<(), SecretsError> {
    db.prepare_cached("UPDATE versions SET stages = ?3 WHERE name = ?1 AND version_id = ?2")?
        .execute(params![
            name,
            id,
            serde_json::to_string(stages).expect("strings")
        ])?;
    Ok(())
}

/// Stores a version carrying `stages`, moving each of them off the version that had it; when
/// `AWSCURRENT` moves, the version it leaves becomes `AWSPREVIOUS`. Versions left with no label
/// are dropped (Secrets Manager deprecates them).
fn put_version(
    db: &Connection,
    name: &str,
    id: &str,
    string: Option<&str>,
    binary: Option<&[u8]>,
    stages: &[String],
    now_ms: u64,
) -> Result<(), SecretsError> {
    let all = versions(db, name)?;
    if let Some(same) = all.iter().find(|v| v.id == id) {
        // The same request again (a retry with its token): fine if it carries the same value.
        return match (
            same.string.as_deref() == string,
            same.binary.as_deref() == binary,
        ) {
            (true, true) => Ok(()),
            _ => {
                let arn: String = db
                    .prepare_cached("SELECT arn FROM secrets WHERE name = ?1")?
                    .query_row([name], |r| r.get(0))?;
                Err(SecretsError::new(
                    "ResourceExistsException",
                    format!("You can't use ClientRequestToken {id} because that value is already in use for a version of secret {arn}."),
                ))
            }
        };
    }
    // The first value of a secret is its current one, whatever labels it was given.
    let mut stages = stages.to_vec();
    if all.is_empty() && !stages.iter().any(|s| s == "AWSCURRENT") {
        stages.push("AWSCURRENT".into());
    }
    let stages = &stages[..];
    let moves_current = stages.iter().any(|s| s == "AWSCURRENT");
    for v in &all {
        let mut kept: Vec<String> = v
            .stages
            .iter()
            .filter(|s| !(stages.contains(s) || moves_current && *s == "AWSPREVIOUS"))
            .cloned()
            .collect();
        if moves_current && v.stages.iter().any(|s| s == "AWSCURRENT") {
            kept.push("AWSPREVIOUS".into());
        }
        if kept != v.stages {
            match kept.is_empty() {
                true => {
                    db.prepare_cached("DELETE FROM versions WHERE name = ?1 AND version_id = ?2")?
                        .execute(params![name, v.id])?;
                }
                false => set_stages(db, name, &v.id, &kept)?,
            }
        }
    }
    db.prepare_cached(
        "INSERT INTO versions (name, version_id, string, binary, created_ms, stages)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        name,
        id,
        string,
        binary,
        now_ms as i64,
        serde_json::to_string(stages).expect("strings")
    ])?;
    db.prepare_cached("UPDATE secrets SET changed_ms = ?2 WHERE name = ?1")?
        .execute(params![name, now_ms as i64])?;
    Ok(())
}

/// Deletes the secrets whose recovery window has passed.
fn purge_expired(db: &Connection, now_ms: u64) -> Result<(), SecretsError> {
    let gone: Vec<String> = db
        .prepare_cached(
            "SELECT name FROM secrets WHERE deletion_ms IS NOT NULL AND deletion_ms <= ?1",
        )?
        .query_map([now_ms as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for name in gone {
        db.prepare_cached("DELETE FROM versions WHERE name = ?1")?
            .execute([&name])?;
        db.prepare_cached("DELETE FROM secrets WHERE name = ?1")?
            .execute([&name])?;
    }
    Ok(())
}

fn get_secret_value(db: &Connection, input: &Value, now_ms: u64) -> Result<Value, SecretsError> {
    let s = live_secret(db, input)?;
    let by_id = input["VersionId"].as_str();
    let stage = input["VersionStage"].as_str();
    let all = versions(db, &s.name)?;
    if let (Some(id), Some(st)) = (by_id, stage) {
        if all
            .iter()
            .any(|v| v.id == id && !v.stages.iter().any(|x| x == st))
        {
            return Err(SecretsError::new(
                "InvalidRequestException",
                "You provided a VersionStage that is not associated to the provided VersionId.",
            ));
        }
    }
    let found = all.iter().find(|v| match (by_id, stage) {
        (Some(id), _) => v.id == id,
        (None, st) => v.stages.iter().any(|x| x == st.unwrap_or("AWSCURRENT")),
    });
    let v = found.ok_or_else(|| {
        SecretsError::new(
            "ResourceNotFoundException",
            match by_id {
                Some(id) => format!(
                    "Secrets Manager can't find the specified secret value for VersionId: {id}"
                ),
                None => format!(
                    "Secrets Manager can't find the specified secret value for staging label: {}",
                    stage.unwrap_or("AWSCURRENT")
                ),
            },
        )
    })?;
    db.prepare_cached("UPDATE secrets SET accessed_ms = ?2 WHERE name = ?1")?
        .execute(params![s.name, (now_ms / 86_400_000 * 86_400_000) as i64])?;
    let mut answer = json!({
        "ARN": s.arn,
        "Name": s.name,
        "VersionId": v.id,
        "VersionStages": v.stages,
        "CreatedDate": seconds(v.created_ms),
    });
    if let Some(st) = &v.string {
        answer["SecretString"] = st.clone().into();
    }
    if let Some(b) = &v.binary {
        answer["SecretBinary"] = base64::engine::general_purpose::STANDARD.encode(b).into();
    }
    Ok(answer)
}

fn put_secret_value(db: &Connection, input: &Value, now_ms: u64) -> Result<Value, SecretsError> {
    let s = live_secret(db, input)?;
    let (string_value, binary_value) = value_of(input)?;
    if string_value.is_none() && binary_value.is_none() {
        return Err(SecretsError::new(
            "InvalidRequestException",
            "You must provide either SecretString or SecretBinary.",
        ));
    }
    let stages: Vec<String> = match input["VersionStages"].is_array() {
        true => strings(&input["VersionStages"]),
        false => vec!["AWSCURRENT".into()],
    };
    let id = version_id(input)?;
    put_version(
        db,
        &s.name,
        &id,
        string_value.as_deref(),
        binary_value.as_deref(),
        &stages,
        now_ms,
    )?;
    Ok(json!({"ARN": s.arn, "Name": s.name, "VersionId": id, "VersionStages": stages}))
}

fn update_secret(db: &Connection, input: &Value, now_ms: u64) -> Result<Value, SecretsError> {
    let s = live_secret(db, input)?;
    if let Some(d) = input["Description"].as_str() {
        db.prepare_cached("UPDATE secrets SET description = ?2, changed_ms = ?3 WHERE name = ?1")?
            .execute(params![s.name, d, now_ms as i64])?;
    }
    if let Some(k) = input["KmsKeyId"].as_str() {
        db.prepare_cached("UPDATE secrets SET kms_key_id = ?2 WHERE name = ?1")?
            .execute(params![s.name, k])?;
    }
    let mut answer = json!({"ARN": s.arn, "Name": s.name});
    if let Some(id) = put_given_value(db, &s.name, input, now_ms)? {
        answer["VersionId"] = id.into();
    }
    Ok(answer)
}

fn description(db: &Connection, s: &Secret) -> Result<Value, SecretsError> {
    let mut stages = Map::new();
    for v in versions(db, &s.name)? {
        stages.insert(v.id, json!(v.stages));
    }
    let mut d = json!({
        "ARN": s.arn,
        "Name": s.name,
        "LastChangedDate": seconds(s.changed_ms),
        "CreatedDate": seconds(s.created_ms),
        "RotationEnabled": false,
        "Tags": s.tags,
        "VersionIdsToStages": stages,
    });
    for (key, v) in [
        ("Description", s.description.clone().map(Value::from)),
        ("KmsKeyId", s.kms_key_id.clone().map(Value::from)),
        ("LastAccessedDate", s.accessed_ms.map(|t| seconds(t).into())),
        // The date the deletion takes effect, as Secrets Manager shows it.
        ("DeletedDate", s.deletion_ms.map(|t| seconds(t).into())),
    ] {
        if let Some(v) = v {
            d[key] = v;
        }
    }
    Ok(d)
}

fn describe_secret(db: &Connection, input: &Value) -> Result<Value, SecretsError> {
    let s = secret(db, string(input, "SecretId")?)?.ok_or_else(not_found)?;
    description(db, &s)
}

fn list_secrets(db: &Connection, input: &Value) -> Result<Value, SecretsError> {
    let max = match &input["MaxResults"] {
        Value::Null => 100,
        v => v
            .as_u64()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                SecretsError::invalid_parameter("MaxResults must be between 1 and 100.")
            })? as usize,
    };
    let after = match input["NextToken"].as_str() {
        None => String::new(),
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                SecretsError::new(
                    "InvalidNextTokenException",
                    "The NextToken value isn't valid.",
                )
            })?,
    };
    let include_deleted = input["IncludePlannedDeletion"].as_bool().unwrap_or(false);
    let filters: Vec<(String, Vec<String>)> = input["Filters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["Key"].as_str().unwrap_or("").to_owned(),
                strings(&f["Values"]),
            )
        })
        .collect();
    let all: Vec<Secret> = db
        .prepare_cached(&format!(
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE name > ?1 ORDER BY name"
        ))?
        .query_map([&after], secret_of)?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    let mut next = None;
    for s in all {
        if s.deleted_ms.is_some() && !include_deleted {
            continue;
        }
        let matches = filters.iter().all(|(key, values)| {
            values.iter().any(|v| match key.as_str() {
                "name" => s.name.starts_with(v.as_str()),
                "description" => s
                    .description
                    .as_deref()
                    .is_some_and(|d| d.starts_with(v.as_str())),
                "tag-key" => s
                    .tags
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t["Key"] == v.as_str()),
                "tag-value" => s
                    .tags
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t["Value"] == v.as_str()),
                "all" => s.name.contains(v.as_str()),
                _ => false,
            })
        });
        if !matches {
            continue;
        }
        if out.len() == max {
            next = Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
                    out.last()
                        .and_then(|d: &Value| d["Name"].as_str())
                        .unwrap_or(""),
                ),
            );
            break;
        }
        let mut d = description(db, &s)?;
        if let Some(stages) = d
            .as_object_mut()
            .and_then(|m| m.remove("VersionIdsToStages"))
        {
            d["SecretVersionsToStages"] = stages;
        }
        out.push(d);
    }
    let mut answer = json!({"SecretList": out});
    if let Some(t) = next {
        answer["NextToken"] = t.into();
    }
    Ok(answer)
}

fn delete_secret(db: &Connection, input: &Value, now_ms: u64) -> Result<Value, SecretsError> {
    let s = secret(db, string(input, "SecretId")?)?.ok_or_else(not_found)?;
    let force = input["ForceDeleteWithoutRecovery"]
        .as_bool()
        .unwrap_or(false);
    let window = input["RecoveryWindowInDays"].as_i64();
    if force && window.is_some() {
        return Err(SecretsError::invalid_parameter(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
        ));
    }
    let days = window.unwrap_or(30);
    if !force && !(7..=30).contains(&days) {
        return Err(SecretsError::invalid_parameter(
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
        ));
    }
    if s.deleted_ms.is_some() && !force {
        return Err(SecretsError::new(
            "InvalidRequestException",
            "You tried to perform the operation on a secret that's currently marked deleted.",
        ));
    }
    let deletion_ms = match force {
        true => now_ms,
        false => now_ms + days as u64 * 86_400_000,
    };
    if force {
        db.prepare_cached("DELETE FROM versions WHERE name = ?1")?
            .execute([&s.name])?;
        db.prepare_cached("DELETE FROM secrets WHERE name = ?1")?
            .execute([&s.name])?;
    } else {
        db.prepare_cached("UPDATE secrets SET deleted_ms = ?2, deletion_ms = ?3 WHERE name = ?1")?
            .execute(params![s.name, now_ms as i64, deletion_ms as i64])?;
    }
    Ok(json!({"ARN": s.arn, "Name": s.name, "DeletionDate": seconds(deletion_ms)}))
}

fn restore_secret(db: &Connection, input: &Value, now_ms: u64) -> Result<Value, SecretsError> {
    let s = secret(db, string(input, "SecretId")?)?.ok_or_else(not_found)?;
    db.prepare_cached(
        "UPDATE secrets SET deleted_ms = NULL, deletion_ms = NULL, changed_ms = ?2 WHERE name = ?1",
    )?
    .execute(params![s.name, now_ms as i64])?;
    Ok(json!({"ARN": s.arn, "Name": s.name}))
}

fn list_secret_version_ids(db: &Connection, input: &Value) -> Result<Value, SecretsError> {
    let s = secret(db, string(input, "SecretId")?)?.ok_or_else(not_found)?;
    let list: Vec<Value> = versions(db, &s.name)?
        .into_iter()
        .map(|v| json!({"VersionId": v.id, "VersionStages": v.stages, "CreatedDate": seconds(v.created_ms), "KmsKeyIds": ["DefaultEncryptionKey"]}))
        .collect();
    Ok(json!({"ARN": s.arn, "Name": s.name, "Versions": list}))
}

fn tag_resource(db: &Connection, input: &Value, add: bool) -> Result<Value, SecretsError> {
    let s = live_secret(db, input)?;
    let mut tags: Vec<Value> = s.tags.as_array().cloned().unwrap_or_default();
    if add {
        for t in input["Tags"].as_array().into_iter().flatten() {
            tags.retain(|x| x["Key"] != t["Key"]);
            tags.push(t.clone());
        }
    } else {
        let keys: Vec<&Value> = input["TagKeys"].as_array().into_iter().flatten().collect();
        tags.retain(|x| !keys.contains(&&x["Key"]));
    }
    db.prepare_cached("UPDATE secrets SET tags = ?2 WHERE name = ?1")?
        .execute(params![s.name, Value::Array(tags).to_string()])?;
    Ok(json!({}))
}

fn spec_of(input: &Value) -> Result<PasswordSpec, SecretsError> {
    let d = PasswordSpec::default();
    let flag = |k: &str, default: bool| input[k].as_bool().unwrap_or(default);
    Ok(PasswordSpec {
        length: match &input["PasswordLength"] {
            Value::Null => d.length,
            v => v
                .as_u64()
                .filter(|n| (1..=4096).contains(n))
                .ok_or_else(|| {
                    SecretsError::invalid_parameter("PasswordLength must be between 1 and 4096.")
                })? as usize,
        },
        exclude_characters: input["ExcludeCharacters"].as_str().unwrap_or("").to_owned(),
        exclude_numbers: flag("ExcludeNumbers", false),
        exclude_punctuation: flag("ExcludePunctuation", false),
        exclude_uppercase: flag("ExcludeUppercase", false),
        exclude_lowercase: flag("ExcludeLowercase", false),
        include_space: flag("IncludeSpace", false),
        require_each_included_type: flag("RequireEachIncludedType", true),
    })
}

/// A `GenerateSecretString` spec from a template (the same option names as the API).
pub fn template_spec(props: &Value) -> Result<PasswordSpec, String> {
    spec_of(props).map_err(|e| e.to_string())
}

fn generated(
    spec: &PasswordSpec,
    template: Option<&str>,
    key: Option<&str>,
) -> Result<String, SecretsError> {
    let password = spec
        .generate(&mut random_below)
        .map_err(SecretsError::invalid_parameter)?;
    match (template, key) {
        (Some(t), Some(k)) => {
            let mut doc: Value = serde_json::from_str(t).map_err(|e| {
                SecretsError::invalid_parameter(format!("SecretStringTemplate is not JSON: {e}"))
            })?;
            doc.as_object_mut()
                .ok_or_else(|| {
                    SecretsError::invalid_parameter("SecretStringTemplate must be a JSON object.")
                })?
                .insert(k.to_owned(), password.into());
            Ok(doc.to_string())
        }
        _ => Ok(password),
    }
}

fn get_random_password(input: &Value) -> Result<Value, SecretsError> {
    let password = spec_of(input)?
        .generate(&mut random_below)
        .map_err(SecretsError::invalid_parameter)?;
    Ok(json!({"RandomPassword": password}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sm() -> SecretsManager {
        SecretsManager::open(
            None,
            SecretsConfig {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
        )
        .unwrap()
    }

    #[test]
    fn a_new_current_value_makes_the_old_one_previous_and_drops_the_older() {
        let s = sm();
        s.dispatch(
            "CreateSecret",
            &json!({"Name": "db", "SecretString": "v1"}),
            1,
        )
        .unwrap();
        for (v, t) in [("v2", 2), ("v3", 3)] {
            s.dispatch(
                "PutSecretValue",
                &json!({"SecretId": "db", "SecretString": v}),
                t,
            )
            .unwrap();
        }
        let get = |stage: &str| {
            s.dispatch(
                "GetSecretValue",
                &json!({"SecretId": "db", "VersionStage": stage}),
                4,
            )
            .map(|a| a["SecretString"].as_str().unwrap().to_owned())
        };
        assert_eq!(get("AWSCURRENT").unwrap(), "v3");
        assert_eq!(get("AWSPREVIOUS").unwrap(), "v2");
        let d = s
            .dispatch("DescribeSecret", &json!({"SecretId": "db"}), 4)
            .unwrap();
        assert_eq!(d["VersionIdsToStages"].as_object().unwrap().len(), 2, "{d}");
        assert!(
            d.to_string().find("v3").is_none(),
            "no value in a description: {d}"
        );
    }

    #[test]
    fn deletion_waits_for_its_window_and_can_be_undone() {
        let s = sm();
        let arn = s
            .dispatch(
                "CreateSecret",
                &json!({"Name": "k", "SecretString": "x"}),
                0,
            )
            .unwrap()["ARN"]
            .as_str()
            .unwrap()
            .to_owned();
        let bad = s
            .dispatch(
                "DeleteSecret",
                &json!({"SecretId": "k", "RecoveryWindowInDays": 3}),
                1,
            )
            .unwrap_err();
        assert_eq!(bad.code(), "InvalidParameterException");
        let both = s
            .dispatch("DeleteSecret", &json!({"SecretId": "k", "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": true}), 1)
            .unwrap_err();
        assert_eq!(both.code(), "InvalidParameterException");
        s.dispatch(
            "DeleteSecret",
            &json!({"SecretId": arn, "RecoveryWindowInDays": 7}),
            1,
        )
        .unwrap();
        let refused = s
            .dispatch("GetSecretValue", &json!({"SecretId": "k"}), 2)
            .unwrap_err();
        assert_eq!(refused.code(), "InvalidRequestException");
        s.dispatch("RestoreSecret", &json!({"SecretId": "k"}), 3)
            .unwrap();
        assert_eq!(
            s.dispatch("GetSecretValue", &json!({"SecretId": "k"}), 4)
                .unwrap()["SecretString"],
            "x"
        );
        s.dispatch(
            "DeleteSecret",
            &json!({"SecretId": "k", "RecoveryWindowInDays": 7}),
            5,
        )
        .unwrap();
        let later = 5 + 7 * 86_400_000;
        let gone = s
            .dispatch("GetSecretValue", &json!({"SecretId": "k"}), later)
            .unwrap_err();
        assert_eq!(gone.code(), "ResourceNotFoundException");
        s.dispatch(
            "CreateSecret",
            &json!({"Name": "k", "SecretString": "again"}),
            later,
        )
        .unwrap();
    }

    #[test]
    fn template_secrets_keep_values_set_later_and_generate_once() {
        let s = sm();
        let declared = [
            TemplateSecret {
                name: "api-key".into(),
                arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:api-key-abcdef".into(),
                description: None,
                value: TemplateValue::String("placeholder".into()),
            },
            TemplateSecret {
                name: "db".into(),
                arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-abcdef".into(),
                description: None,
                value: TemplateValue::Generate {
                    spec: PasswordSpec::default(),
                    template: Some(r#"{"username":"app"}"#.into()),
                    key: Some("password".into()),
                },
            },
        ];
        s.apply_template(&declared, 1).unwrap();
        let value = |id: &str| {
            s.dispatch("GetSecretValue", &json!({"SecretId": id}), 9)
                .unwrap()["SecretString"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let generated: Value = serde_json::from_str(&value("db")).unwrap();
        assert_eq!(generated["username"], "app");
        assert_eq!(generated["password"].as_str().unwrap().len(), 32);
        s.dispatch(
            "PutSecretValue",
            &json!({"SecretId": "api-key", "SecretString": "real"}),
            2,
        )
        .unwrap();
        s.apply_template(&declared, 3).unwrap();
        assert_eq!(
            value("api-key"),
            "real",
            "a restart keeps the value set with the CLI"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&value("db")).unwrap(),
            generated
        );
    }
}
