//! Versions and aliases: what Lambda's `PublishVersion` and `CreateAlias` make.
//!
//! A published version is a snapshot: its code is copied under
//! `<state-dir>/versions/<function>/<n>/`, its configuration is frozen, and it runs in
//! environments of its own, so later edits of `$LATEST` (the working tree) never reach it. An
//! alias names one version, or two with a weight for the second. Versions, aliases and each
//! function's next version number live in `<state-dir>/lambda.db`: they outlive a restart, as
//! they outlive a deploy on AWS.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine;
use nimbus_store::Database;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pool::FunctionPool;
use crate::{FunctionSpec, LaunchSpec};

/// What the versions and aliases API refuses, with Lambda's error codes.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Store(String),
}

impl VersionError {
    /// Lambda's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "ResourceNotFoundException",
            Self::Conflict(_) => "ResourceConflictException",
            Self::Precondition(_) => "PreconditionFailedException",
            Self::Invalid(_) => "InvalidParameterValueException",
            Self::Validation(_) => "ValidationException",
            Self::Store(_) => "ServiceException",
        }
    }

    /// The HTTP status Lambda answers it with.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::Precondition(_) => 412,
            Self::Invalid(_) | Self::Validation(_) => 400,
            Self::Store(_) => 500,
        }
    }
}

impl From<nimbus_store::StoreError> for VersionError {
    fn from(e: nimbus_store::StoreError) -> Self {
        Self::Store(format!("nimbus could not store the change: {e}"))
    }
}

impl From<rusqlite::Error> for VersionError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(format!("nimbus could not store the change: {e}"))
    }
}

const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE functions (
        name TEXT PRIMARY KEY,
        next_version INTEGER NOT NULL
    );
    CREATE TABLE versions (
        function TEXT NOT NULL,
        version INTEGER NOT NULL,
        config TEXT NOT NULL,
        code_sha256 TEXT NOT NULL,
        config_sha256 TEXT NOT NULL,
        PRIMARY KEY (function, version)
    );
    CREATE TABLE aliases (
        function TEXT NOT NULL,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        additional TEXT,
        weight REAL,
        description TEXT NOT NULL,
        revision_id TEXT NOT NULL,
        PRIMARY KEY (function, name)
    );",
    "
    CREATE TABLE provisioned (
        function TEXT NOT NULL,
        qualifier TEXT NOT NULL,
        count INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (function, qualifier)
    );",
    "
    CREATE TABLE version_refs (
        function TEXT NOT NULL,
        logical_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (function, logical_id)
    );",
];

/// A published version, as the API describes it.
#[derive(Clone)]
pub struct VersionInfo {
    pub spec: Arc<FunctionSpec>,
    /// Base64 SHA-256 of the code (every file of the task root, by relative path).
    pub code_sha256: String,
}

/// An alias, as the API describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct AliasInfo {
    pub function: String,
    pub name: String,
    /// A version number, or `$LATEST`.
    pub version: String,
    /// `RoutingConfig.AdditionalVersionWeights`: Lambda allows one additional version.
    pub additional: Option<(String, f64)>,
    pub description: String,
    pub revision_id: String,
}

/// What `UpdateAlias` changes; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct AliasUpdate {
    pub version: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` removes the routing configuration.
    pub additional: Option<Option<(String, f64)>>,
    pub revision_id: Option<String>,
}

struct Version {
    pool: Arc<FunctionPool>,
    code_sha256: String,
    config_sha256: String,
}

#[derive(Default)]
struct Versions {
    versions: BTreeMap<u32, Version>,
    aliases: BTreeMap<String, AliasInfo>,
    /// The ARN an invocation by each qualifier sees (`...:function:f:live`), made once rather
    /// than per invocation.
    arns: HashMap<String, Arc<str>>,
    /// Provisioned concurrency by version or alias: `(count, last modified ms)`.
    provisioned: BTreeMap<String, (u32, u64)>,
    /// The template's `AWS::Lambda::Version`s: logical id to the version published for it (its
    /// `Ref` and `GetAtt Version` name the id, which is served as that version).
    refs: HashMap<String, u32>,
}

impl Versions {
    fn remember(&mut self, function_arn: &str, qualifier: &str) {
        if !self.arns.contains_key(qualifier) {
            self.arns.insert(
                qualifier.to_owned(),
                format!("{function_arn}:{qualifier}").into(),
            );
        }
    }
}

/// The versions and aliases of every function, in memory for the invoke path and in
/// `lambda.db` for restarts.
pub(crate) struct Registry {
    db: Database,
    /// `<state-dir>/versions`: one folder per function, one per version inside.
    dir: PathBuf,
    state_dir: PathBuf,
    functions: RwLock<HashMap<String, Versions>>,
    /// Publishes one at a time: a version number and its snapshot go together.
    publishing: Mutex<()>,
}

/// A version's configuration and code location as `lambda.db` keeps them.
#[derive(Serialize, Deserialize)]
struct Frozen {
    runtime: String,
    handler: Option<String>,
    memory_mb: u32,
    timeout_ms: u64,
    environment: BTreeMap<String, String>,
    description: String,
    tracing_active: bool,
    revision_id: String,
    last_modified_ms: u64,
    launch: Result<FrozenLaunch, String>,
}

#[derive(Serialize, Deserialize)]
struct FrozenLaunch {
    program: PathBuf,
    args: Vec<String>,
    task_root: PathBuf,
    env: BTreeMap<String, String>,
}

impl Registry {
    /// Opens `<state-dir>/lambda.db` and loads the versions and aliases of the functions
    /// served now (those of functions no longer in the template stay stored, unserved).
    pub fn open(
        state_dir: &Path,
        latest: &BTreeMap<String, Arc<FunctionPool>>,
    ) -> Result<Self, VersionError> {
        let db = Database::open(&state_dir.join("lambda.db"), MIGRATIONS)?;
        let mut functions: HashMap<String, Versions> = HashMap::new();
        {
            let conn = db.lock();
            let mut stmt = conn.prepare(
                "SELECT function, version, config, code_sha256, config_sha256 FROM versions
                 ORDER BY function, version",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })?;
            for row in rows {
                let (function, n, config, code_sha256, config_sha256) = row?;
                let Some(pool) = latest.get(&function) else {
                    continue;
                };
                let frozen: Frozen = serde_json::from_str(&config).map_err(|e| {
                    VersionError::Store(format!("version {n} of {function} is unreadable: {e}"))
                })?;
                let spec = thaw(&pool.spec, n, frozen);
                let entry = functions.entry(function).or_default();
                entry.remember(&pool.spec.arn, &n.to_string());
                entry.versions.insert(
                    n,
                    Version {
                        pool: FunctionPool::new(spec),
                        code_sha256,
                        config_sha256,
                    },
                );
            }
            let mut stmt = conn.prepare(
                "SELECT function, name, version, additional, weight, description, revision_id
                 FROM aliases",
            )?;
            let rows = stmt.query_map([], |r| {
                let additional: Option<String> = r.get(3)?;
                let weight: Option<f64> = r.get(4)?;
                Ok(AliasInfo {
                    function: r.get(0)?,
                    name: r.get(1)?,
                    version: r.get(2)?,
                    additional: additional.zip(weight),
                    description: r.get(5)?,
                    revision_id: r.get(6)?,
                })
            })?;
            for alias in rows {
                let alias = alias?;
                if let Some(pool) = latest.get(&alias.function) {
                    let entry = functions.entry(alias.function.clone()).or_default();
                    entry.remember(&pool.spec.arn, &alias.name);
                    entry.aliases.insert(alias.name.clone(), alias);
                }
            }
            let mut stmt =
                conn.prepare("SELECT function, qualifier, count, updated_ms FROM provisioned")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, u64>(3)?,
                ))
            })?;
            for row in rows {
                let (function, qualifier, count, ms) = row?;
                if latest.contains_key(&function) {
                    functions
                        .entry(function)
                        .or_default()
                        .provisioned
                        .insert(qualifier, (count, ms));
                }
            }
            let mut stmt =
                conn.prepare("SELECT function, logical_id, version FROM version_refs")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                ))
            })?;
            for row in rows {
                let (function, id, n) = row?;
                if let Some(pool) = latest.get(&function) {
                    let entry = functions.entry(function).or_default();
                    if entry.versions.contains_key(&n) {
                        entry
                            .arns
                            .insert(id.clone(), format!("{}:{n}", pool.spec.arn).into());
                        entry.refs.insert(id, n);
                    }
                }
            }
        }
        Ok(Self {
            db,
            dir: state_dir.join("versions"),
            state_dir: state_dir.to_owned(),
            functions: RwLock::new(functions),
            publishing: Mutex::new(()),
        })
    }

    /// The environments pool a qualifier names: a version number, or an alias (one of its
    /// versions picked by the routing weight), and the ARN the function sees it invoked by.
    /// `None` when neither exists.
    pub fn resolve(
        &self,
        function: &str,
        qualifier: &str,
        latest: &Arc<FunctionPool>,
    ) -> Option<(Arc<FunctionPool>, Arc<str>)> {
        let functions = self.functions.read().expect("versions poisoned");
        let f = functions.get(function)?;
        let arn = f.arns.get(qualifier)?.clone();
        if let Some(n) = version_number(qualifier) {
            return f.versions.get(&n).map(|v| (v.pool.clone(), arn));
        }
        let Some(alias) = f.aliases.get(qualifier) else {
            let n = f.refs.get(qualifier)?;
            return f.versions.get(n).map(|v| (v.pool.clone(), arn));
        };
        let target = match &alias.additional {
            Some((other, weight)) if rand::random::<f64>() < *weight => other,
            _ => &alias.version,
        };
        match version_number(target) {
            Some(n) => f.versions.get(&n).map(|v| (v.pool.clone(), arn)),
            None => Some((latest.clone(), arn)),
        }
    }

    /// Publishes `$LATEST` as a new version, unless neither its code nor its configuration
    /// changed since the newest version: then that version is the answer, as on Lambda.
    /// Blocking: it hashes and copies the code.
    pub fn publish(
        &self,
        latest: &FunctionPool,
        description: Option<&str>,
        expect_code_sha256: Option<&str>,
        expect_revision: Option<&str>,
    ) -> Result<VersionInfo, VersionError> {
        let _one = self.publishing.lock().expect("publishing poisoned");
        let (_, spec) = latest.current();
        let name = spec.name.clone();
        if let Some(expected) = expect_revision {
            if expected != spec.revision_id {
                return Err(stale_revision());
            }
        }
        let launch = spec.launch.as_ref().map_err(|e| {
            VersionError::Conflict(format!(
                "The function {name} cannot be published: its code does not start ({e})"
            ))
        })?;
        let code_sha256 = code_sha256(launch)
            .map_err(|e| VersionError::Store(format!("cannot read the code of {name}: {e}")))?;
        if let Some(expected) = expect_code_sha256 {
            if expected != code_sha256 {
                return Err(VersionError::Invalid(format!(
                    "CodeSHA256 ({expected}) is different from current CodeSHA256 in $LATEST ({code_sha256}). Please try again with the CodeSHA256 in $LATEST."
                )));
            }
        }
        let config_sha256 = config_sha256(&spec);
        {
            let functions = self.functions.read().expect("versions poisoned");
            if let Some((_, newest)) = functions
                .get(&name)
                .and_then(|f| f.versions.iter().next_back())
            {
                if newest.code_sha256 == code_sha256 && newest.config_sha256 == config_sha256 {
                    return Ok(VersionInfo {
                        spec: newest.pool.spec.clone(),
                        code_sha256,
                    });
                }
            }
        }
        let n: u32 = self
            .db
            .lock()
            .query_row(
                "SELECT next_version FROM functions WHERE name = ?1",
                [&name],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(1);
        let dest = self.dir.join(&name).join(n.to_string());
        let _ = std::fs::remove_dir_all(&dest);
        let snapshot = snapshot(launch, &self.state_dir, &dest).map_err(|e| {
            VersionError::Store(format!(
                "cannot copy the code of {name} to {}: {e}",
                dest.display()
            ))
        })?;
        let mut version = FunctionSpec::clone(&spec);
        version.version = n.to_string();
        version.description = description.map_or(spec.description.clone(), str::to_owned);
        version.revision_id = uuid::Uuid::new_v4().to_string();
        version.last_modified_ms = crate::epoch_ms();
        version.launch = Ok(snapshot);
        version.provisioned_concurrency = 0;
        let frozen = serde_json::to_string(&freeze(&version)).expect("a version serialises");
        {
            let mut conn = self.db.lock();
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO versions (function, version, config, code_sha256, config_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, n, frozen, code_sha256, config_sha256],
            )?;
            tx.execute(
                "INSERT INTO functions (name, next_version) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET next_version = excluded.next_version",
                params![name, n + 1],
            )?;
            tx.commit()?;
        }
        let pool = FunctionPool::new(version);
        let info = VersionInfo {
            spec: pool.spec.clone(),
            code_sha256: code_sha256.clone(),
        };
        let mut functions = self.functions.write().expect("versions poisoned");
        let entry = functions.entry(name).or_default();
        entry.remember(&spec.arn, &n.to_string());
        entry.versions.insert(
            n,
            Version {
                pool,
                code_sha256,
                config_sha256,
            },
        );
        Ok(info)
    }

    /// The published versions of `function`, oldest first.
    pub fn versions(&self, function: &str) -> Vec<VersionInfo> {
        let functions = self.functions.read().expect("versions poisoned");
        functions
            .get(function)
            .map(|f| {
                f.versions
                    .values()
                    .map(|v| VersionInfo {
                        spec: v.pool.spec.clone(),
                        code_sha256: v.code_sha256.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn version(&self, function: &str, n: u32) -> Option<VersionInfo> {
        let functions = self.functions.read().expect("versions poisoned");
        let v = functions.get(function)?.versions.get(&n)?;
        Some(VersionInfo {
            spec: v.pool.spec.clone(),
            code_sha256: v.code_sha256.clone(),
        })
    }

    pub(crate) fn pools(&self) -> Vec<Arc<FunctionPool>> {
        let functions = self.functions.read().expect("versions poisoned");
        functions
            .values()
            .flat_map(|f| f.versions.values().map(|v| v.pool.clone()))
            .collect()
    }

    /// Deletes a published version; refused while an alias routes to it.
    pub fn delete_version(
        &self,
        function: &str,
        arn: &str,
        n: u32,
    ) -> Result<Option<Arc<FunctionPool>>, VersionError> {
        let mut functions = self.functions.write().expect("versions poisoned");
        let Some(f) = functions.get_mut(function) else {
            return Ok(None);
        };
        let users: Vec<&str> = f
            .aliases
            .values()
            .filter(|a| {
                a.version == n.to_string()
                    || a.additional
                        .as_ref()
                        .is_some_and(|(v, _)| *v == n.to_string())
            })
            .map(|a| a.name.as_str())
            .collect();
        if !users.is_empty() {
            return Err(VersionError::Conflict(format!(
                "Unable to delete version because the following aliases reference it: [{}]",
                users
                    .iter()
                    .map(|a| format!("{arn}:{a}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if !f.versions.contains_key(&n) {
            return Ok(None);
        }
        self.db.lock().execute(
            "DELETE FROM versions WHERE function = ?1 AND version = ?2",
            params![function, n],
        )?;
        let gone = f.versions.remove(&n).map(|v| v.pool);
        f.arns.remove(&n.to_string());
        let _ = std::fs::remove_dir_all(self.dir.join(function).join(n.to_string()));
        Ok(gone)
    }

    pub fn aliases(&self, function: &str) -> Vec<AliasInfo> {
        let functions = self.functions.read().expect("versions poisoned");
        functions
            .get(function)
            .map(|f| f.aliases.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn alias(&self, function: &str, name: &str) -> Option<AliasInfo> {
        let functions = self.functions.read().expect("versions poisoned");
        functions.get(function)?.aliases.get(name).cloned()
    }

    /// Creates an alias. `arn` is the function's unqualified ARN, for messages.
    pub fn create_alias(&self, arn: &str, alias: AliasInfo) -> Result<AliasInfo, VersionError> {
        check_alias_name(&alias.name)?;
        let mut functions = self.functions.write().expect("versions poisoned");
        let f = functions.entry(alias.function.clone()).or_default();
        if f.aliases.contains_key(&alias.name) {
            return Err(VersionError::Conflict(format!(
                "Alias already exists: {arn}:{}",
                alias.name
            )));
        }
        check_routing(f, arn, &alias)?;
        let mut alias = alias;
        alias.revision_id = uuid::Uuid::new_v4().to_string();
        self.store_alias(&alias)?;
        f.remember(arn, &alias.name);
        f.aliases.insert(alias.name.clone(), alias.clone());
        Ok(alias)
    }

    /// Changes an alias; a `RevisionId` that is not the alias's current one is refused.
    pub fn update_alias(
        &self,
        arn: &str,
        function: &str,
        name: &str,
        update: AliasUpdate,
    ) -> Result<AliasInfo, VersionError> {
        let mut functions = self.functions.write().expect("versions poisoned");
        let f = functions.entry(function.to_owned()).or_default();
        let Some(current) = f.aliases.get(name) else {
            return Err(alias_not_found(arn, name));
        };
        if update
            .revision_id
            .as_deref()
            .is_some_and(|r| r != current.revision_id)
        {
            return Err(stale_revision());
        }
        let mut alias = current.clone();
        if let Some(v) = update.version {
            alias.version = v;
        }
        if let Some(d) = update.description {
            alias.description = d;
        }
        if let Some(a) = update.additional {
            alias.additional = a;
        }
        check_routing(f, arn, &alias)?;
        alias.revision_id = uuid::Uuid::new_v4().to_string();
        self.store_alias(&alias)?;
        f.aliases.insert(alias.name.clone(), alias.clone());
        Ok(alias)
    }

    pub fn delete_alias(&self, function: &str, name: &str) -> Result<(), VersionError> {
        let mut functions = self.functions.write().expect("versions poisoned");
        self.db.lock().execute(
            "DELETE FROM aliases WHERE function = ?1 AND name = ?2",
            params![function, name],
        )?;
        if let Some(f) = functions.get_mut(function) {
            f.aliases.remove(name);
            f.arns.remove(name);
        }
        Ok(())
    }

    /// Whether `qualifier` names a version, an alias or a template version of `function`.
    pub fn knows(&self, function: &str, qualifier: &str) -> bool {
        let functions = self.functions.read().expect("versions poisoned");
        let Some(f) = functions.get(function) else {
            return false;
        };
        match version_number(qualifier) {
            Some(n) => f.versions.contains_key(&n),
            None => f.aliases.contains_key(qualifier) || f.refs.contains_key(qualifier),
        }
    }

    /// The version published for the template's `AWS::Lambda::Version` `logical_id`, if it
    /// still exists.
    pub fn version_ref(&self, function: &str, logical_id: &str) -> Option<u32> {
        let functions = self.functions.read().expect("versions poisoned");
        let f = functions.get(function)?;
        f.refs
            .get(logical_id)
            .copied()
            .filter(|n| f.versions.contains_key(n))
    }

    /// Serves `logical_id` (an `AWS::Lambda::Version` of the template) as version `n`.
    pub fn bind_version_ref(
        &self,
        function: &str,
        arn: &str,
        logical_id: &str,
        n: u32,
    ) -> Result<(), VersionError> {
        self.db.lock().execute(
            "INSERT OR REPLACE INTO version_refs (function, logical_id, version) VALUES (?1, ?2, ?3)",
            params![function, logical_id, n],
        )?;
        let mut functions = self.functions.write().expect("versions poisoned");
        let f = functions.entry(function.to_owned()).or_default();
        f.arns
            .insert(logical_id.to_owned(), format!("{arn}:{n}").into());
        f.refs.insert(logical_id.to_owned(), n);
        Ok(())
    }

    /// A version's or alias's provisioned concurrency: `(count, last modified ms)`.
    pub fn provisioned(&self, function: &str, qualifier: &str) -> Option<(u32, u64)> {
        let functions = self.functions.read().expect("versions poisoned");
        functions.get(function)?.provisioned.get(qualifier).copied()
    }

    /// Sets (or with `None` removes) a version's or alias's provisioned concurrency.
    pub fn set_provisioned(
        &self,
        function: &str,
        qualifier: &str,
        count: Option<u32>,
    ) -> Result<(), VersionError> {
        let mut functions = self.functions.write().expect("versions poisoned");
        let f = functions.entry(function.to_owned()).or_default();
        let now = crate::epoch_ms();
        let conn = self.db.lock();
        match count {
            Some(n) => {
                conn.execute(
                    "INSERT OR REPLACE INTO provisioned (function, qualifier, count, updated_ms)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![function, qualifier, n, now],
                )?;
                f.provisioned.insert(qualifier.to_owned(), (n, now));
            }
            None => {
                conn.execute(
                    "DELETE FROM provisioned WHERE function = ?1 AND qualifier = ?2",
                    params![function, qualifier],
                )?;
                f.provisioned.remove(qualifier);
            }
        }
        Ok(())
    }

    /// How many provisioned environments each published version of `function` should keep:
    /// a version's own configuration plus its share of each alias's (split by the alias's
    /// routing weight, as Lambda splits it).
    pub fn provisioned_targets(&self, function: &str) -> Vec<(Arc<FunctionPool>, usize)> {
        let functions = self.functions.read().expect("versions poisoned");
        let Some(f) = functions.get(function) else {
            return Vec::new();
        };
        let mut want: BTreeMap<u32, usize> = f.versions.keys().map(|n| (*n, 0)).collect();
        for (qualifier, (count, _)) in &f.provisioned {
            let count = *count as usize;
            if let Some(n) = version_number(qualifier).or_else(|| f.refs.get(qualifier).copied()) {
                *want.entry(n).or_default() += count;
            } else if let Some(a) = f.aliases.get(qualifier) {
                let extra = a.additional.as_ref().and_then(|(v, w)| {
                    Some((version_number(v)?, (count as f64 * w).round() as usize))
                });
                if let Some((n, share)) = extra {
                    *want.entry(n).or_default() += share;
                }
                if let Some(n) = version_number(&a.version) {
                    *want.entry(n).or_default() +=
                        count - extra.map_or(0, |(_, share)| share.min(count));
                }
            }
        }
        want.into_iter()
            .filter_map(|(n, count)| Some((f.versions.get(&n)?.pool.clone(), count)))
            .collect()
    }

    fn store_alias(&self, a: &AliasInfo) -> Result<(), VersionError> {
        self.db.lock().execute(
            "INSERT OR REPLACE INTO aliases
             (function, name, version, additional, weight, description, revision_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                a.function,
                a.name,
                a.version,
                a.additional.as_ref().map(|(v, _)| v),
                a.additional.as_ref().map(|(_, w)| w),
                a.description,
                a.revision_id
            ],
        )?;
        Ok(())
    }
}

/// A version qualifier: digits only, as Lambda numbers versions.
pub fn version_number(q: &str) -> Option<u32> {
    (!q.is_empty() && q.bytes().all(|b| b.is_ascii_digit()))
        .then(|| q.parse().ok())
        .flatten()
}

/// Lambda's answer to a `RevisionId` that is not the current one.
pub(crate) fn stale_revision() -> VersionError {
    VersionError::Precondition(
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id".into(),
    )
}

pub fn alias_not_found(arn: &str, name: &str) -> VersionError {
    VersionError::NotFound(format!("Alias not found: {arn}:{name}"))
}

fn check_alias_name(name: &str) -> Result<(), VersionError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && version_number(name).is_none()
        && !name.bytes().all(|b| b.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(VersionError::Validation(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
        )))
    }
}

/// Lambda's checks of an alias's version and routing configuration.
fn check_routing(f: &Versions, arn: &str, alias: &AliasInfo) -> Result<(), VersionError> {
    let exists = |v: &str| match version_number(v) {
        Some(n) => f.versions.contains_key(&n),
        None => v == "$LATEST",
    };
    if !exists(&alias.version) {
        return Err(VersionError::NotFound(format!(
            "Function not found: {arn}:{}",
            alias.version
        )));
    }
    if let Some((other, weight)) = &alias.additional {
        if !(0.0..=1.0).contains(weight) || weight.is_nan() {
            return Err(VersionError::Validation(format!(
                "1 validation error detected: Value '{{{other}={weight}}}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]"
            )));
        }
        if alias.version == "$LATEST" || other == "$LATEST" {
            return Err(VersionError::Invalid(
                "$LATEST is not supported for an alias pointing to more than 1 version".into(),
            ));
        }
        if *other == alias.version {
            return Err(VersionError::Invalid(format!(
                "Invalid function version {other}. Function version {other} is already included in routing configuration."
            )));
        }
        if !exists(other) {
            return Err(VersionError::NotFound(format!(
                "Function not found: {arn}:{other}"
            )));
        }
    }
    Ok(())
}

fn freeze(spec: &FunctionSpec) -> Frozen {
    Frozen {
        runtime: spec.runtime.clone(),
        handler: spec.handler.clone(),
        memory_mb: spec.memory_mb,
        timeout_ms: spec.timeout.as_millis() as u64,
        environment: spec.environment.clone(),
        description: spec.description.clone(),
        tracing_active: spec.tracing_active,
        revision_id: spec.revision_id.clone(),
        last_modified_ms: spec.last_modified_ms,
        launch: spec
            .launch
            .as_ref()
            .map(|l| FrozenLaunch {
                program: l.program.clone(),
                args: l
                    .args
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                task_root: l.task_root.clone(),
                env: l.env.clone(),
            })
            .map_err(Clone::clone),
    }
}

/// A stored version as the platform runs it: the function's identity from `latest`, the rest
/// from the snapshot.
fn thaw(latest: &FunctionSpec, n: u32, f: Frozen) -> FunctionSpec {
    let launch = f.launch.and_then(|l| {
        if l.task_root.is_dir() && l.program.exists() {
            Ok(LaunchSpec {
                program: l.program,
                args: l.args.into_iter().map(Into::into).collect(),
                task_root: l.task_root,
                env: l.env,
            })
        } else {
            Err(format!(
                "the code of version {n} is gone from {}: publish a new version",
                l.task_root.display()
            ))
        }
    });
    FunctionSpec {
        name: latest.name.clone(),
        arn: latest.arn.clone(),
        runtime: f.runtime,
        handler: f.handler,
        memory_mb: f.memory_mb,
        timeout: Duration::from_millis(f.timeout_ms),
        environment: f.environment,
        reserved_concurrency: latest.reserved_concurrency,
        provisioned_concurrency: 0,
        tracing_active: f.tracing_active,
        version: n.to_string(),
        description: f.description,
        revision_id: f.revision_id,
        last_modified_ms: f.last_modified_ms,
        launch,
    }
}

/// What makes two versions' configurations the same, hashed.
fn config_sha256(spec: &FunctionSpec) -> String {
    let text = serde_json::json!({
        "runtime": spec.runtime,
        "handler": spec.handler,
        "memory": spec.memory_mb,
        "timeout_ms": spec.timeout.as_millis() as u64,
        "environment": spec.environment,
        "tracing": spec.tracing_active,
    })
    .to_string();
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// The code's SHA-256: every file under the task root (by relative path and content), and the
/// program when it lives elsewhere under nimbus's build folders (a cargo-built bootstrap).
pub fn code_sha256(launch: &LaunchSpec) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut files = Vec::new();
    walk(&launch.task_root, &launch.task_root, &mut files)?;
    files.sort();
    for rel in files {
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0]);
        let path = launch.task_root.join(&rel);
        match std::fs::symlink_metadata(&path)?.file_type().is_symlink() {
            true => hasher.update(std::fs::read_link(&path)?.to_string_lossy().as_bytes()),
            false => {
                let mut file = std::fs::File::open(&path)?;
                std::io::copy(&mut file, &mut hasher)?;
            }
        }
        hasher.update([0]);
    }
    if !launch.program.starts_with(&launch.task_root) && launch.program.is_file() {
        let mut file = std::fs::File::open(&launch.program)?;
        std::io::copy(&mut file, &mut hasher)?;
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(hasher.finalize()))
}

/// Files (and symlinks) under `dir`, relative to `root`. Python's bytecode caches are left
/// out: they change when code runs, not when it is edited.
fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if entry.file_name() != "__pycache__" {
                walk(root, &path, out)?;
            }
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_owned());
        }
    }
    Ok(())
}

/// Copies what `launch` runs into `dest` and returns the launch pointed at the copies: the
/// task root, the program when it is a build output elsewhere under the state directory, and
/// the folders under the state directory its search paths name (template layers, builds).
/// Search paths outside the state directory (the content-keyed dependency cache, the
/// interpreter's own) are kept as they are: nothing rewrites them in place.
fn snapshot(launch: &LaunchSpec, state_dir: &Path, dest: &Path) -> std::io::Result<LaunchSpec> {
    let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
    let task = dest.join("task");
    copy_tree(&launch.task_root, &task)?;
    moved.push((launch.task_root.clone(), task));
    let runtime_dir = state_dir.join("runtime");
    let movable = |p: &Path, moved: &[(PathBuf, PathBuf)]| {
        p.starts_with(state_dir)
            && !p.starts_with(&runtime_dir)
            && !p.starts_with(dest)
            && !moved.iter().any(|(from, _)| p.starts_with(from))
    };
    if movable(&launch.program, &moved) && launch.program.is_file() {
        let copy = dest.join("bin").join(
            launch
                .program
                .file_name()
                .unwrap_or_else(|| "bootstrap".as_ref()),
        );
        std::fs::create_dir_all(copy.parent().expect("has a parent"))?;
        std::fs::copy(&launch.program, &copy)?;
        moved.push((launch.program.clone(), copy));
    }
    for value in launch.env.values() {
        for part in value.split(':') {
            let p = Path::new(part);
            if p.is_absolute() && p.exists() && movable(p, &moved) {
                let copy = dest.join("paths").join(moved.len().to_string());
                copy_tree(p, &copy)?;
                moved.push((p.to_owned(), copy));
            }
        }
    }
    let task_root = dest.join("task");
    Ok(relocate(launch, moved, &task_root))
}

/// `launch` run from `root` instead of its task root: `UpdateFunctionCode`'s new code, started
/// the way the function's code was (same runtime, dependencies and layers).
pub(crate) fn rebase(launch: &LaunchSpec, root: &Path) -> LaunchSpec {
    relocate(
        launch,
        vec![(launch.task_root.clone(), root.to_owned())],
        root,
    )
}

/// `launch` with every path under a `moved` source pointed at its copy.
fn relocate(
    launch: &LaunchSpec,
    mut moved: Vec<(PathBuf, PathBuf)>,
    task_root: &Path,
) -> LaunchSpec {
    // The longest source first, so a path inside another moved one maps to its own copy.
    moved.sort_by_key(|(from, _)| std::cmp::Reverse(from.as_os_str().len()));
    let rewrite = |s: &str| -> String {
        let p = Path::new(s);
        for (from, to) in &moved {
            if let Ok(rest) = p.strip_prefix(from) {
                return join(to, rest);
            }
        }
        s.to_owned()
    };
    LaunchSpec {
        program: PathBuf::from(rewrite(&launch.program.display().to_string())),
        args: launch
            .args
            .iter()
            .map(|a| rewrite(&a.to_string_lossy()).into())
            .collect(),
        task_root: task_root.to_owned(),
        env: launch
            .env
            .iter()
            .map(|(k, v)| {
                let parts: Vec<String> = v.split(':').map(rewrite).collect();
                (k.clone(), parts.join(":"))
            })
            .collect(),
    }
}

/// Extracts an uploaded code archive into `out`. The zip crate refuses entries whose names
/// would leave `out` and keeps Unix modes, so a `bootstrap` stays executable.
pub(crate) fn extract_zip(zip: &[u8], out: &Path) -> Result<(), VersionError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|e| {
        VersionError::Invalid(format!("Could not unzip uploaded file. Please check your file, then try to upload again. ({e})"))
    })?;
    std::fs::create_dir_all(out)
        .map_err(|e| VersionError::Store(format!("cannot create {}: {e}", out.display())))?;
    archive.extract(out).map_err(|e| {
        VersionError::Invalid(format!("Could not unzip uploaded file. Please check your file, then try to upload again. ({e})"))
    })
}

/// `base/rest` as text; `base` itself when `rest` is empty (`Path::join("")` would add a `/`).
fn join(base: &Path, rest: &Path) -> String {
    match rest.as_os_str().is_empty() {
        true => base.display().to_string(),
        false => base.join(rest).display().to_string(),
    }
}

/// Copies a file or a folder tree, keeping permissions and symlinks.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        return std::os::unix::fs::symlink(std::fs::read_link(from)?, to);
    }
    if meta.is_file() {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from, to)?;
        return Ok(());
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name() == "__pycache__" {
            continue;
        }
        copy_tree(&entry.path(), &to.join(entry.file_name()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(root: &Path, state: &Path) -> LaunchSpec {
        LaunchSpec {
            program: state.join("build/f/bootstrap"),
            args: vec![root.join("app.py").into_os_string()],
            task_root: root.to_owned(),
            env: BTreeMap::from([(
                "PYTHONPATH".into(),
                format!(
                    "{}:{}:/usr/lib/python3",
                    root.display(),
                    state.join("layers/l1/python").display()
                ),
            )]),
        }
    }

    #[test]
    fn a_snapshot_copies_the_code_build_outputs_and_layers_and_points_the_launch_at_them() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, state) = (tmp.path().join("src"), tmp.path().join("state"));
        for (path, text) in [
            (src.join("app.py"), "one"),
            (src.join("__pycache__/app.pyc"), "bytecode"),
            (state.join("build/f/bootstrap"), "binary"),
            (state.join("layers/l1/python/lib.py"), "layer"),
        ] {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let l = launch(&src, &state);
        let before = code_sha256(&l).unwrap();
        let dest = state.join("versions/f/1");
        let snap = snapshot(&l, &state, &dest).unwrap();
        // Edits of the working tree after the snapshot do not reach it.
        std::fs::write(src.join("app.py"), "two").unwrap();
        std::fs::write(state.join("layers/l1/python/lib.py"), "changed").unwrap();
        assert_eq!(
            std::fs::read_to_string(snap.task_root.join("app.py")).unwrap(),
            "one"
        );
        assert!(!snap.task_root.join("__pycache__").exists());
        assert!(snap.program.starts_with(&dest), "{:?}", snap.program);
        assert_eq!(std::fs::read_to_string(&snap.program).unwrap(), "binary");
        assert_eq!(snap.args, vec![dest.join("task/app.py").into_os_string()]);
        let path = &snap.env["PYTHONPATH"];
        let parts: Vec<&str> = path.split(':').collect();
        assert_eq!(parts[0], dest.join("task").display().to_string());
        assert!(parts[1].starts_with(&dest.display().to_string()), "{path}");
        assert_eq!(
            std::fs::read_to_string(Path::new(parts[1]).join("lib.py")).unwrap(),
            "layer"
        );
        assert_eq!(parts[2], "/usr/lib/python3");
        // The snapshot hashes as the code it was taken from.
        assert_eq!(code_sha256(&snap).unwrap(), before);
        assert_ne!(code_sha256(&l).unwrap(), before);
    }

    #[test]
    fn routing_checks_give_lambdas_errors() {
        let f = Versions::default();
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:f";
        let alias = |version: &str, additional: Option<(&str, f64)>| AliasInfo {
            function: "f".into(),
            name: "live".into(),
            version: version.into(),
            additional: additional.map(|(v, w)| (v.into(), w)),
            description: String::new(),
            revision_id: String::new(),
        };
        let cases: &[(AliasInfo, &str)] = &[
            (alias("$LATEST", None), ""),
            (alias("7", None), "ResourceNotFoundException"),
            (
                alias("$LATEST", Some(("$LATEST", 0.5))),
                "InvalidParameterValueException",
            ),
            (alias("$LATEST", Some(("1", 1.5))), "ValidationException"),
        ];
        for (a, want) in cases {
            let got = check_routing(&f, arn, a)
                .err()
                .map(|e| e.code())
                .unwrap_or("");
            assert_eq!(got, *want, "{a:?}");
        }
        for (name, ok) in [
            ("live", true),
            ("12", false),
            ("a b", false),
            ("v-1_x", true),
        ] {
            assert_eq!(check_alias_name(name).is_ok(), ok, "{name}");
        }
    }
}
