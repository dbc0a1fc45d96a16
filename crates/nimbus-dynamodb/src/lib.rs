//! Amazon DynamoDB in nimbus: the DynamoDB API (AWS JSON 1.0, `X-Amz-Target:
//! DynamoDB_20120810.<Action>`) and DynamoDB Streams (`DynamoDBStreams_20120810.<Action>`), over
//! tables held in memory and written through to SQLite before each acknowledgement.
//!
//! Layout, as DESIGN.md lays out a service: [`value`] (attribute values and numbers),
//! [`expr`] (the expression language), [`table`] (definitions and keys) are pure; [`state`] is
//! the durable state; [`items`], [`queries`], [`tables`] and [`streams`] are the operations, one
//! function each, taking the request's JSON and answering JSON or DynamoDB's error; [`partiql`]
//! rewrites PartiQL statements into those operations' requests.

pub mod error;
pub mod expr;
pub mod items;
pub mod legacy;
pub mod partiql;
pub mod queries;
pub mod reserved;
pub mod state;
pub mod streams;
pub mod table;
pub mod tables;
pub mod value;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value as Json;
use tokio::sync::Notify;

pub use error::{CancellationReason, DdbError};
use table::PrimaryKey;
pub use table::TableDef;
pub use value::{AttrValue, Item, KeyVal, Number};

use state::State;

/// The most items one TTL sweep deletes (in one write), so a sweep never holds the tables long;
/// the next sweep takes the rest.
const MAX_TTL_DELETES: usize = 1000;

/// Operations on one item (and table metadata), short enough to run on the caller's task.
pub fn is_single_item(action: &str) -> bool {
    matches!(
        action,
        "PutItem"
            | "GetItem"
            | "UpdateItem"
            | "DeleteItem"
            | "DescribeTable"
            | "ListTables"
            | "DescribeLimits"
            | "DescribeEndpoints"
            | "DescribeTimeToLive"
    )
}

/// Whether `action` consumes capacity it can report (`ReturnConsumedCapacity`), and whether it
/// is a write (write units) rather than a read. A PartiQL statement is a read when it selects.
pub fn capacity_kind(action: &str, input: &Json) -> Option<bool> {
    let selects = |s: &Json| {
        s["Statement"].as_str().is_some_and(|t| {
            t.trim_start()
                .get(..6)
                .is_some_and(|w| w.eq_ignore_ascii_case("select"))
        })
    };
    match action {
        "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems" => Some(false),
        "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems" => {
            Some(true)
        }
        "ExecuteStatement" => Some(!selects(input)),
        "ExecuteTransaction" => Some(
            !input["TransactStatements"]
                .as_array()
                .is_some_and(|all| all.iter().all(selects)),
        ),
        _ => None,
    }
}

/// The `(table, capacity units)` an answer's `ConsumedCapacity` reports (one object, or one
/// per table for batches and transactions).
pub fn consumed_capacity(out: &Json) -> Vec<(String, f64)> {
    let one = |c: &Json| {
        Some((
            c["TableName"].as_str()?.to_owned(),
            c["CapacityUnits"].as_f64()?,
        ))
    };
    match &out["ConsumedCapacity"] {
        Json::Array(all) => all.iter().filter_map(one).collect(),
        c @ Json::Object(_) => one(c).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// Where the tables are, for the ARNs DynamoDB hands out.
#[derive(Debug, Clone)]
pub struct DdbConfig {
    pub region: String,
    pub account: String,
}

/// The DynamoDB service: cheap to clone, shared by the endpoint and the stream pollers.
#[derive(Clone)]
pub struct DynamoDb {
    state: Arc<Mutex<State>>,
    /// Wakes stream pollers when a record is written.
    pub records: Arc<Notify>,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
}

fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl DynamoDb {
    /// Opens the tables kept in the database at `path` (`None`: in memory, for tests).
    pub fn open(path: Option<&Path>, config: &DdbConfig) -> Result<DynamoDb, DdbError> {
        Ok(DynamoDb {
            state: Arc::new(Mutex::new(State::open(
                path,
                &config.region,
                &config.account,
            )?)),
            records: Arc::new(Notify::new()),
            clock: Arc::new(system_now_ms),
        })
    }

    /// The same service with time from `clock` (Unix milliseconds), for tests.
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> DynamoDb {
        self.clock = Arc::new(clock);
        self
    }

    pub(crate) fn now_ms(&self) -> u64 {
        (self.clock)()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic mid-operation happens before `State::write` commits or after it applied
        // everything, so the state behind a poisoned lock is consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a template's table, or brings an existing one's settings in line with the
    /// template (its items stay). A changed key schema is refused: DynamoDB cannot change one
    /// either, and replacing the table would drop its items.
    pub fn ensure_table(&self, def: TableDef) -> Result<(), DdbError> {
        let mut st = self.lock();
        match st.tables.get(&def.name) {
            None => st.create_table(def),
            Some(t)
                if t.def.key != def.key
                    || t.def.key.names().any(|k| t.def.attributes.get(k) != def.attributes.get(k)) =>
            {
                Err(DdbError::validation(format!(
                    "table {} already exists in the state directory with another key schema; delete it (aws dynamodb delete-table) or use another --state-dir",
                    def.name
                )))
            }
            Some(t) => {
                let mut merged = def;
                merged.created_ms = t.def.created_ms;
                merged.table_id = t.def.table_id.clone();
                // Tags added through the API stay; the template's own win.
                let template_tags = std::mem::take(&mut merged.tags);
                merged.tags = t.def.tags.clone();
                merged.tags.extend(template_tags);
                // A stream the template turned off keeps its label, as DynamoDB keeps
                // LatestStreamArn.
                if merged.stream.is_none() {
                    merged.stream_label = t.def.stream_label.clone();
                }
                if merged == t.def {
                    return Ok(());
                }
                st.redefine(merged)
            }
        }
    }

    /// Whether no operation holds the tables now: a caller on an async task answers a
    /// single-item call itself only then, rather than wait there behind a long page or batch.
    pub fn is_idle(&self) -> bool {
        self.state.try_lock().is_ok()
    }

    /// Answers one DynamoDB API call.
    pub fn dispatch(&self, action: &str, input: &Json) -> Result<Json, DdbError> {
        if !input.is_object() {
            return Err(DdbError::Serialization(
                "the request body must be a JSON object".into(),
            ));
        }
        let rewritten = legacy::rewrite(action, input)?;
        let input = rewritten.as_ref().unwrap_or(input);
        match action {
            "CreateTable" => tables::create_table(self, input),
            "DeleteTable" => tables::delete_table(self, input),
            "DescribeTable" => tables::describe_table(self, input),
            "ListTables" => tables::list_tables(self, input),
            "UpdateTable" => tables::update_table(self, input),
            "DescribeTimeToLive" => tables::describe_ttl(self, input),
            "UpdateTimeToLive" => tables::update_ttl(self, input),
            "TagResource" => tables::tag_resource(self, input),
            "UntagResource" => tables::untag_resource(self, input),
            "ListTagsOfResource" => tables::list_tags(self, input),
            "DescribeLimits" => Ok(tables::describe_limits()),
            "DescribeEndpoints" => Ok(tables::describe_endpoints(self)),
            "PutItem" => items::put_item(self, input),
            "GetItem" => items::get_item(self, input),
            "UpdateItem" => items::update_item(self, input),
            "DeleteItem" => items::delete_item(self, input),
            "BatchGetItem" => items::batch_get(self, input),
            "BatchWriteItem" => items::batch_write(self, input),
            "TransactWriteItems" => items::transact_write(self, input),
            "TransactGetItems" => items::transact_get(self, input),
            "Query" => queries::query(self, input),
            "Scan" => queries::scan(self, input),
            "ExecuteStatement" => partiql::execute_statement(self, input),
            "BatchExecuteStatement" => partiql::batch_execute_statement(self, input),
            "ExecuteTransaction" => partiql::execute_transaction(self, input),
            other => Err(DdbError::UnknownOperation(format!(
                "nimbus's DynamoDB does not serve {other} yet; see the README for the operations it serves"
            ))),
        }
    }

    /// Answers one DynamoDB Streams API call.
    pub fn dispatch_streams(&self, action: &str, input: &Json) -> Result<Json, DdbError> {
        match action {
            "ListStreams" => streams::list_streams(self, input),
            "DescribeStream" => streams::describe_stream(self, input),
            "GetShardIterator" => streams::get_shard_iterator(self, input),
            "GetRecords" => streams::get_records(self, input),
            other => Err(DdbError::UnknownOperation(format!(
                "DynamoDB Streams has no operation {other}"
            ))),
        }
    }

    /// Deletes the items whose TTL attribute has passed, with `REMOVE` stream records that name
    /// DynamoDB's service principal, as DynamoDB's background TTL process does. Returns how many.
    pub fn sweep_ttl(&self) -> Result<usize, DdbError> {
        let now = self.now_ms();
        let mut st = self.lock();
        let mut changes = Vec::new();
        let now_s = (now / 1000) as i64;
        // DynamoDB ignores TTL values more than five years in the past.
        let oldest = now_s - 5 * 365 * 86_400;
        for (name, t) in &st.tables {
            if t.def.ttl_attribute.is_none() {
                continue;
            }
            let expired = t
                .expiries
                .range((oldest + 1, PrimaryKey::MIN)..(now_s, PrimaryKey::MIN))
                .take(MAX_TTL_DELETES - changes.len());
            for (_, key) in expired {
                changes.push(state::Change {
                    table: name.clone(),
                    key: key.clone(),
                    new: None,
                    by_ttl: true,
                });
            }
        }
        let n = changes.len();
        if n > 0 {
            st.write(changes, now)?;
        }
        st.trim_streams(now)?;
        drop(st);
        if n > 0 {
            self.records.notify_waiters();
        }
        Ok(n)
    }

    /// Stream records of `table` after sequence number `after`, at most `limit`, as JSON text
    /// (for event source mappings, which parse them off the lock). Blocking: call it from a
    /// blocking thread.
    pub fn stream_records(
        &self,
        table: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String)>, DdbError> {
        self.lock().stream_records_raw(table, after, limit)
    }

    /// An event source mapping's checkpoint (the last sequence number it finished), kept with
    /// the stream so both survive a restart together.
    pub fn checkpoint(&self, mapping: &str) -> Result<Option<u64>, DdbError> {
        self.lock().checkpoint(mapping)
    }

    pub fn set_checkpoint(&self, mapping: &str, seq: u64) -> Result<(), DdbError> {
        self.lock().set_checkpoint(mapping, seq)
    }

    /// The one shard of `table`'s stream.
    pub fn shard_id(&self, table: &str) -> Result<String, DdbError> {
        streams::shard_id(&self.lock(), table)
    }

    /// The newest stream sequence number of `table` (where `LATEST` starts).
    pub fn stream_latest(&self, table: &str) -> Result<u64, DdbError> {
        Ok(self.lock().table(table)?.stream_seq)
    }

    /// Whether `table` exists and has a stream enabled.
    pub fn has_stream(&self, table: &str) -> bool {
        self.lock()
            .tables
            .get(table)
            .is_some_and(|t| t.def.stream.is_some())
    }

    /// Whether `table` exists, if that can be told without waiting for the lock (for labels
    /// on an async task; `false` when a long operation holds the tables).
    pub fn has_table_now(&self, table: &str) -> bool {
        self.state
            .try_lock()
            .is_ok_and(|st| st.tables.contains_key(table))
    }

    /// `(table, items, bytes)` of every table, for the metrics.
    pub fn table_stats(&self) -> Vec<(String, u64, u64)> {
        self.lock()
            .tables
            .iter()
            .map(|(name, t)| (name.clone(), t.items.len() as u64, t.bytes))
            .collect()
    }

    /// The names of the tables, in order.
    pub fn table_names(&self) -> Vec<String> {
        self.lock().tables.keys().cloned().collect()
    }
}
