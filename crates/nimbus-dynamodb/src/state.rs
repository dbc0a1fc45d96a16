//! The tables, held in memory in key order with their secondary indexes, and written through to
//! SQLite (`dynamodb.db` in the state directory) before a write is acknowledged.
//!
//! Why memory plus a write-through log rather than queries on SQLite: DynamoDB's reads are key
//! seeks and ordered range walks over typed keys (numbers by exact decimal value, strings and
//! binaries by bytes), which a `BTreeMap` of typed keys gives directly, while SQLite would need
//! an order-preserving encoding of 38-digit decimals. The database holds every table's
//! definition, every item and the stream records; memory is rebuilt from it at start. The cost
//! is that a table's items must fit in memory, which a local run's data does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

/// A stored stream record, parsed.
pub fn parse_record(text: &str) -> Result<Json, DdbError> {
    serde_json::from_str(text)
        .map_err(|e| DdbError::Internal(format!("a stored stream record: {e}")))
}
use serde_json::{json, Map, Value as Json};

use crate::error::DdbError;
use crate::table::{PrimaryKey, TableDef};
use crate::value::{item_from_json, item_size, item_to_json, AttrValue, Item, KeyVal};

/// Schema versions of `dynamodb.db`: `MIGRATIONS[i]` upgrades version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: tables, items by (table, key), stream records by (table, sequence number).
    "CREATE TABLE tables (name TEXT PRIMARY KEY, def TEXT NOT NULL);
    CREATE TABLE items (
        tbl TEXT NOT NULL,
        key TEXT NOT NULL,
        item TEXT NOT NULL,
        PRIMARY KEY (tbl, key)
    ) WITHOUT ROWID;
    CREATE TABLE stream_records (
        tbl TEXT NOT NULL,
        seq INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (tbl, seq)
    ) WITHOUT ROWID;
    CREATE TABLE stream_checkpoints (mapping TEXT PRIMARY KEY, seq INTEGER NOT NULL);",
    // 2: each table's last stream sequence number, kept apart from the records so trimming
    // them (24-hour retention) or deleting and recreating the table never reuses a number a
    // mapping's checkpoint has passed (numbers need not be consecutive, so a table starts past
    // every checkpoint); trimming by age through an index.
    "CREATE TABLE stream_seqs (tbl TEXT PRIMARY KEY, seq INTEGER NOT NULL);
    INSERT INTO stream_seqs (tbl, seq)
        SELECT name, MAX(
            COALESCE((SELECT MAX(seq) FROM stream_records WHERE tbl = name), 0),
            COALESCE((SELECT MAX(seq) FROM stream_checkpoints), 0))
        FROM tables;
    CREATE INDEX stream_records_age ON stream_records(created_ms);",
];

/// An index entry: the index's key, then the table's key (unique per item), in index order.
pub type IndexEntry = (KeyVal, Option<KeyVal>, PrimaryKey);

pub struct TableState {
    pub def: TableDef,
    pub items: BTreeMap<PrimaryKey, Item>,
    pub indexes: BTreeMap<String, BTreeSet<IndexEntry>>,
    pub bytes: u64,
    /// The last stream record's sequence number.
    pub stream_seq: u64,
    /// Items by expiry (whole Unix seconds of the TTL attribute), so a TTL sweep reads only
    /// what has expired rather than every item.
    pub expiries: BTreeSet<(i64, PrimaryKey)>,
}

impl TableState {
    fn new(def: TableDef) -> TableState {
        let indexes = def
            .gsis
            .iter()
            .chain(&def.lsis)
            .map(|i| (i.name.clone(), BTreeSet::new()))
            .collect();
        TableState {
            def,
            items: BTreeMap::new(),
            indexes,
            bytes: 0,
            stream_seq: 0,
            expiries: BTreeSet::new(),
        }
    }

    fn index_item(&mut self, key: &PrimaryKey, item: &Item, add: bool) {
        if let Some(exp) = self
            .def
            .ttl_attribute
            .as_deref()
            .and_then(|a| ttl_expiry(item, a))
        {
            let entry = (exp.floor() as i64, key.clone());
            if add {
                self.expiries.insert(entry);
            } else {
                self.expiries.remove(&entry);
            }
        }
        for index in self.def.gsis.iter().chain(&self.def.lsis) {
            if let Some((h, r)) = self.def.index_key(index, item) {
                let set = self.indexes.entry(index.name.clone()).or_default();
                if add {
                    set.insert((h, r, key.clone()));
                } else {
                    set.remove(&(h, r, key.clone()));
                }
            }
        }
    }

    /// Rebuilds every index and the expiries from the items (after `UpdateTable` adds an
    /// index, or TTL is turned on or moved to another attribute).
    pub fn reindex(&mut self) {
        self.expiries.clear();
        self.indexes = self
            .def
            .gsis
            .iter()
            .chain(&self.def.lsis)
            .map(|i| (i.name.clone(), BTreeSet::new()))
            .collect();
        let items: Vec<(PrimaryKey, Item)> = self
            .items
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, item) in items {
            self.index_item(&k, &item, true);
        }
    }

    fn put_mem(&mut self, key: PrimaryKey, item: Item) {
        self.remove_mem(&key);
        self.index_item(&key, &item, true);
        self.bytes += item_size(&item) as u64;
        self.items.insert(key, item);
    }

    fn remove_mem(&mut self, key: &PrimaryKey) {
        if let Some(old) = self.items.remove(key) {
            self.index_item(key, &old, false);
            self.bytes = self.bytes.saturating_sub(item_size(&old) as u64);
        }
    }
}

/// One item's change within a write: the new item, or `None` to delete it.
pub struct Change {
    pub table: String,
    pub key: PrimaryKey,
    pub new: Option<Item>,
    /// Stream records of TTL deletions name DynamoDB's service principal.
    pub by_ttl: bool,
}

impl Change {
    /// A caller's write (not TTL's) of `new` (`None`: a delete).
    pub fn by_caller(table: &str, key: PrimaryKey, new: Option<Item>) -> Change {
        Change {
            table: table.to_string(),
            key,
            new,
            by_ttl: false,
        }
    }
}

pub struct State {
    conn: Connection,
    pub tables: BTreeMap<String, TableState>,
    pub region: String,
    pub account: String,
    /// TransactWriteItems' `ClientRequestToken`s of the last ten minutes: the request they came
    /// with and when. Kept in memory: a restart forgets them, which can only re-apply a
    /// transaction retried across the restart.
    pub tokens: std::collections::HashMap<String, (u64, u64)>,
}

/// The key as stored: its wire form, which is stable for equal keys (numbers are normalized).
fn key_text(table: &TableDef, key: &PrimaryKey) -> String {
    Json::Object(item_to_json(&key.to_item(&table.key))).to_string()
}

impl State {
    pub fn open(path: Option<&Path>, region: &str, account: &str) -> Result<State, DdbError> {
        let conn = match path {
            Some(p) => nimbus_store::open_database(p, MIGRATIONS),
            None => Connection::open_in_memory()
                .map_err(nimbus_store::StoreError::from)
                .and_then(|c| nimbus_store::migrate(c, ":memory:", MIGRATIONS)),
        }
        .map_err(|e| DdbError::Internal(e.to_string()))?;
        let mut state = State {
            conn,
            tables: BTreeMap::new(),
            region: region.to_string(),
            account: account.to_string(),
            tokens: Default::default(),
        };
        state.load()?;
        Ok(state)
    }

    fn load(&mut self) -> Result<(), DdbError> {
        let mut defs = Vec::new();
        {
            let mut stmt = self.conn.prepare("SELECT def FROM tables")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            for def in rows {
                let def: TableDef = serde_json::from_str(&def?)
                    .map_err(|e| DdbError::Internal(format!("a stored table definition: {e}")))?;
                defs.push(def);
            }
        }
        for def in defs {
            let name = def.name.clone();
            let mut t = TableState::new(def);
            let mut stmt = self.conn.prepare("SELECT item FROM items WHERE tbl = ?1")?;
            let rows = stmt.query_map([&name], |r| r.get::<_, String>(0))?;
            for text in rows {
                let json: Map<String, Json> = serde_json::from_str(&text?)
                    .map_err(|e| DdbError::Internal(format!("a stored item of {name}: {e}")))?;
                let item = item_from_json(&json)?;
                let key = t.def.primary_key(&item, true)?;
                t.put_mem(key, item);
            }
            t.stream_seq = self.last_seq(&name)?;
            self.tables.insert(name, t);
        }
        Ok(())
    }

    /// The last stream sequence number `table` has had (0 if none), surviving trims and
    /// re-creation of the table.
    fn last_seq(&self, table: &str) -> Result<u64, DdbError> {
        Ok(self
            .conn
            .query_row("SELECT seq FROM stream_seqs WHERE tbl = ?1", [table], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .unwrap_or(0) as u64)
    }

    pub fn table(&self, name: &str) -> Result<&TableState, DdbError> {
        self.tables.get(name).ok_or_else(DdbError::not_found)
    }

    /// A table as the table operations look it up: their message names the table.
    pub fn described(&self, name: &str) -> Result<&TableState, DdbError> {
        self.tables.get(name).ok_or_else(|| {
            DdbError::ResourceNotFound(format!(
                "Requested resource not found: Table: {name} not found"
            ))
        })
    }

    /// `DescribeTable`'s shape of a table, with its item count and size now.
    pub fn describe(&self, name: &str, status: &str) -> Result<Json, DdbError> {
        let t = self.described(name)?;
        Ok(t.def.describe(
            &self.region,
            &self.account,
            t.items.len() as u64,
            t.bytes,
            status,
        ))
    }

    pub fn create_table(&mut self, def: TableDef) -> Result<(), DdbError> {
        if self.tables.contains_key(&def.name) {
            return Err(DdbError::ResourceInUse(format!(
                "Table already exists: {}",
                def.name
            )));
        }
        self.save_def(&def)?;
        let mut t = TableState::new(def);
        t.stream_seq = self.last_seq(&t.def.name)?;
        self.tables.insert(t.def.name.clone(), t);
        Ok(())
    }

    pub fn save_def(&mut self, def: &TableDef) -> Result<(), DdbError> {
        let text = serde_json::to_string(def).expect("a table definition serializes");
        self.conn.execute(
            "INSERT INTO tables (name, def) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET def = excluded.def",
            params![def.name, text],
        )?;
        Ok(())
    }

    /// Replaces a table's definition (UpdateTable, a template's changed settings), its items kept.
    pub fn redefine(&mut self, def: TableDef) -> Result<(), DdbError> {
        self.save_def(&def)?;
        let t = self
            .tables
            .get_mut(&def.name)
            .ok_or_else(DdbError::not_found)?;
        let reindex = t.def.gsis != def.gsis
            || t.def.lsis != def.lsis
            || t.def.attributes != def.attributes
            || t.def.ttl_attribute != def.ttl_attribute;
        t.def = def;
        if reindex {
            t.reindex();
        }
        Ok(())
    }

    pub fn delete_table(&mut self, name: &str) -> Result<TableState, DdbError> {
        if !self.tables.contains_key(name) {
            return Err(DdbError::not_found());
        }
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM tables WHERE name = ?1", [name])?;
        tx.execute("DELETE FROM items WHERE tbl = ?1", [name])?;
        tx.execute("DELETE FROM stream_records WHERE tbl = ?1", [name])?;
        tx.commit()?;
        Ok(self.tables.remove(name).expect("checked above"))
    }

    /// Writes `changes` atomically: one SQLite transaction holding the items and their stream
    /// records, committed before memory changes and before the caller answers.
    pub fn write(&mut self, changes: Vec<Change>, now_ms: u64) -> Result<(), DdbError> {
        let tx = self.conn.transaction()?;
        let mut records: Vec<(String, u64)> = Vec::new();
        for c in &changes {
            let t = self.tables.get(&c.table).ok_or_else(DdbError::not_found)?;
            let key = key_text(&t.def, &c.key);
            match &c.new {
                Some(item) => {
                    let text = Json::Object(item_to_json(item)).to_string();
                    tx.execute(
                        "INSERT INTO items (tbl, key, item) VALUES (?1, ?2, ?3)
                         ON CONFLICT (tbl, key) DO UPDATE SET item = excluded.item",
                        params![c.table, key, text],
                    )?;
                }
                None => {
                    tx.execute(
                        "DELETE FROM items WHERE tbl = ?1 AND key = ?2",
                        params![c.table, key],
                    )?;
                }
            }
            let old = t.items.get(&c.key);
            if let Some(view) = &t.def.stream {
                if old.is_none() && c.new.is_none() || old == c.new.as_ref() {
                    // DynamoDB writes no stream record for a write that changes nothing.
                    continue;
                }
                let already = records.iter().filter(|(n, _)| n == &c.table).count() as u64;
                let seq = t.stream_seq + already + 1;
                let record =
                    stream_record(&self.region, &self.account, t, c, old, view, seq, now_ms);
                tx.execute(
                    "INSERT INTO stream_records (tbl, seq, created_ms, record) VALUES (?1, ?2, ?3, ?4)",
                    params![c.table, seq as i64, now_ms as i64, record.to_string()],
                )?;
                records.push((c.table.clone(), seq));
            }
        }
        for (table, seq) in &records {
            tx.execute(
                "INSERT INTO stream_seqs (tbl, seq) VALUES (?1, ?2)
                 ON CONFLICT (tbl) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                params![table, *seq as i64],
            )?;
        }
        tx.commit()?;
        for c in changes {
            let t = self.tables.get_mut(&c.table).expect("checked above");
            match c.new {
                Some(item) => t.put_mem(c.key, item),
                None => t.remove_mem(&c.key),
            }
        }
        for (table, seq) in records {
            if let Some(t) = self.tables.get_mut(&table) {
                t.stream_seq = t.stream_seq.max(seq);
            }
        }
        Ok(())
    }

    /// Stream records of `table` after sequence number `after`, oldest first, at most `limit`,
    /// as stored (JSON text), so callers parse them after letting go of the lock.
    pub fn stream_records_raw(
        &self,
        table: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String)>, DdbError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, record FROM stream_records WHERE tbl = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![table, after as i64, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The first sequence number still kept for `table` (records older than 24 hours are trimmed).
    pub fn stream_first(&self, table: &str) -> Result<Option<u64>, DdbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT MIN(seq) FROM stream_records WHERE tbl = ?1",
                [table],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten()
            .map(|s| s as u64))
    }

    /// An event source mapping's checkpoint: the last sequence number it finished.
    pub fn checkpoint(&self, mapping: &str) -> Result<Option<u64>, DdbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq FROM stream_checkpoints WHERE mapping = ?1",
                [mapping],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|s| s as u64))
    }

    pub fn set_checkpoint(&self, mapping: &str, seq: u64) -> Result<(), DdbError> {
        self.conn.execute(
            "INSERT INTO stream_checkpoints (mapping, seq) VALUES (?1, ?2)
             ON CONFLICT (mapping) DO UPDATE SET seq = excluded.seq",
            params![mapping, seq as i64],
        )?;
        Ok(())
    }

    /// Drops stream records older than DynamoDB Streams' 24-hour retention.
    pub fn trim_streams(&mut self, now_ms: u64) -> Result<usize, DdbError> {
        let cutoff = now_ms.saturating_sub(24 * 3600 * 1000) as i64;
        Ok(self
            .conn
            .execute("DELETE FROM stream_records WHERE created_ms < ?1", [cutoff])?)
    }
}

/// A stream record in the shape DynamoDB Streams and Lambda's event source mapping give it.
#[allow(clippy::too_many_arguments)]
fn stream_record(
    region: &str,
    account: &str,
    t: &TableState,
    c: &Change,
    old: Option<&Item>,
    view: &str,
    seq: u64,
    now_ms: u64,
) -> Json {
    let name = match (old, &c.new) {
        (None, _) => "INSERT",
        (Some(_), Some(_)) => "MODIFY",
        (Some(_), None) => "REMOVE",
    };
    let keys = c.key.to_item(&t.def.key);
    let mut d = json!({
        "ApproximateCreationDateTime": (now_ms / 1000) as f64,
        "Keys": item_to_json(&keys),
        "SequenceNumber": format!("{seq:021}"),
        "StreamViewType": view,
    });
    let mut size = item_size(&keys);
    if matches!(view, "NEW_IMAGE" | "NEW_AND_OLD_IMAGES") {
        if let Some(new) = &c.new {
            d["NewImage"] = Json::Object(item_to_json(new));
            size += item_size(new);
        }
    }
    if matches!(view, "OLD_IMAGE" | "NEW_AND_OLD_IMAGES") {
        if let Some(old) = old {
            d["OldImage"] = Json::Object(item_to_json(old));
            size += item_size(old);
        }
    }
    d["SizeBytes"] = json!(size);
    let mut r = json!({
        "eventID": uuid::Uuid::new_v4().simple().to_string(),
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": d,
        "eventSourceARN": t.def.stream_arn(region, account).unwrap_or_default(),
    });
    if c.by_ttl {
        r["userIdentity"] = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
    }
    r
}

/// The value of a TTL attribute as an expiry in Unix seconds: a number, else never.
pub fn ttl_expiry(item: &Item, attribute: &str) -> Option<f64> {
    match item.get(attribute) {
        Some(AttrValue::N(n)) => n.as_str().parse().ok(),
        _ => None,
    }
}
