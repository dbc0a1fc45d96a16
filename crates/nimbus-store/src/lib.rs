//! nimbus's durable state: one SQLite database in the state directory.
//!
//! Every message nimbus acknowledges is committed here before the acknowledgement. The database
//! runs in WAL mode with `synchronous=NORMAL`: a commit survives the process being killed
//! (`kill -9`) at any point; only an operating-system crash or power loss can lose the last
//! commits, a trade SQS users make no different locally. The schema is versioned with SQLite's
//! `user_version` and upgraded by [`MIGRATIONS`] when a newer nimbus opens an older database.
//!
//! Time is always passed in (`now_ms`, Unix milliseconds), so the queue rules are tested with
//! controlled time. This is the only crate that touches the data directory's database.

mod group;
pub mod jobs;
pub mod queue;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rusqlite::Connection;

pub use group::CommitStats;
pub use jobs::{Job, NewJob};
pub use queue::{
    Message, NewMessage, QueueAttributes, QueueCounts, QueueError, Received, Redrive, Sent,
    DEDUPLICATION_WINDOW_MS, RECEIPT_PREFIX,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("database {path} is in use by another process (is another nimbus running with this --state-dir?)")]
    InUse { path: String },
    #[error("database {path} has schema version {found}; this nimbus knows up to {known}: use a newer nimbus or another --state-dir")]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The commit that carried a write failed (a full disk, say): the write was not kept.
    #[error("database commit: {0}")]
    Commit(String),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Schema versions, in order: `MIGRATIONS[i]` upgrades version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: SQS queues and messages.
    "CREATE TABLE queues (
        name TEXT PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        attributes TEXT NOT NULL
    );
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        id TEXT NOT NULL,
        body TEXT NOT NULL,
        md5_body TEXT NOT NULL,
        attributes TEXT,
        md5_attributes TEXT,
        system_attributes TEXT,
        sent_ms INTEGER NOT NULL,
        visible_ms INTEGER NOT NULL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        first_receive_ms INTEGER,
        receipt TEXT
    );
    CREATE INDEX messages_ready ON messages(queue, visible_ms, seq);
    CREATE INDEX messages_sent ON messages(queue, sent_ms);
    CREATE INDEX messages_receipt ON messages(receipt);",
    // 2: durable scheduled work (asynchronous invocations, rule deliveries).
    "CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        lane TEXT NOT NULL,
        id TEXT NOT NULL,
        payload TEXT NOT NULL,
        meta TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        due_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        throttles INTEGER NOT NULL DEFAULT 0,
        leased INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_due ON jobs(lane, due_ms, seq);",
    // 3: FIFO queues: message groups and the five-minute deduplication window.
    "ALTER TABLE messages ADD COLUMN group_id TEXT;
    ALTER TABLE messages ADD COLUMN dedup_id TEXT;
    CREATE INDEX messages_group ON messages(queue, group_id);
    CREATE TABLE fifo_dedup (
        queue TEXT NOT NULL,
        dedup_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        sequence TEXT NOT NULL,
        sent_ms INTEGER NOT NULL,
        PRIMARY KEY (queue, dedup_id)
    );",
    // 4: receive walks a queue in send order without sorting its backlog (queue.rs).
    "CREATE INDEX messages_order ON messages(queue, seq, visible_ms);",
    // 5: fewer pages per send (group commit's other half). A receipt handle carries its
    // message's row, so deletes and visibility changes seek the row and the receipt index
    // goes; the oldest message and retention walk `messages_order` (send order), so
    // `messages_sent` goes; FIFO's in-flight check reads only received messages, so a send
    // touches no group index; each queue keeps its message count, so a count reads no messages.
    "DROP INDEX messages_receipt;
    DROP INDEX messages_sent;
    DROP INDEX messages_group;
    CREATE INDEX messages_inflight ON messages(queue, group_id) WHERE receipt IS NOT NULL;
    ALTER TABLE queues ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
    UPDATE queues SET depth = (SELECT COUNT(*) FROM messages WHERE messages.queue = queues.name);",
    // 6: three pages fewer per send. AUTOINCREMENT wrote `sqlite_sequence` at every insert and
    // the count wrote the queue's row: messages take SQLite's plain row numbers (a FIFO queue
    // keeps the last sequence number it gave, so its numbers still only grow; every queue here
    // at the migration starts above the highest number ever taken) and the counts live in
    // memory, counted at open. `messages_ready` indexed every message by visibility; only
    // messages held back (delayed, or received) can be invisible, so `messages_held` indexes
    // those alone and a plain send writes no entry to it.
    "ALTER TABLE queues ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
    UPDATE queues SET last_seq = COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0);
    ALTER TABLE queues DROP COLUMN depth;
    CREATE TABLE messages_new (
        seq INTEGER PRIMARY KEY,
        queue TEXT NOT NULL,
        id TEXT NOT NULL,
        body TEXT NOT NULL,
        md5_body TEXT NOT NULL,
        attributes TEXT,
        md5_attributes TEXT,
        system_attributes TEXT,
        sent_ms INTEGER NOT NULL,
        visible_ms INTEGER NOT NULL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        first_receive_ms INTEGER,
        receipt TEXT,
        group_id TEXT,
        dedup_id TEXT
    );
    INSERT INTO messages_new (seq, queue, id, body, md5_body, attributes, md5_attributes,
            system_attributes, sent_ms, visible_ms, receive_count, first_receive_ms, receipt,
            group_id, dedup_id)
        SELECT seq, queue, id, body, md5_body, attributes, md5_attributes, system_attributes,
            sent_ms, visible_ms, receive_count, first_receive_ms, receipt, group_id, dedup_id
        FROM messages;
    DROP TABLE messages;
    ALTER TABLE messages_new RENAME TO messages;
    CREATE INDEX messages_held ON messages(queue, visible_ms, seq)
        WHERE receipt IS NOT NULL OR visible_ms > sent_ms;
    CREATE INDEX messages_order ON messages(queue, seq, visible_ms);
    CREATE INDEX messages_inflight ON messages(queue, group_id) WHERE receipt IS NOT NULL;",
];

/// Opens (creating if needed) a database at `path` with nimbus's durability settings (WAL,
/// `synchronous=NORMAL`: a commit survives `kill -9`) and brings its schema up to date with
/// `migrations`, where `migrations[i]` upgrades version `i` to `i + 1`. Services that keep a
/// database of their own (DynamoDB) open it here, so every database nimbus writes behaves alike.
pub fn open_database(path: &Path, migrations: &[&str]) -> Result<Connection, StoreError> {
    let shown = path.display().to_string();
    let open_err = |source| StoreError::Open {
        path: shown.clone(),
        source,
    };
    let in_use =
        |e: &rusqlite::Error| e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy);
    let conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(std::time::Duration::from_millis(500))
        .map_err(open_err)?;
    // One process owns a state directory: holding the lock for good spares every transaction
    // its file-lock system calls (and the WAL's shared-memory index), and a second nimbus on
    // the same directory is refused at once instead of sharing the file.
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
        .map_err(open_err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| match in_use(&e) {
            true => StoreError::InUse {
                path: shown.clone(),
            },
            false => open_err(e),
        })?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_err)?;
    // Appends rewrite the same few hot pages in every commit; checkpointing every 10,000 pages
    // (40 MB of WAL) instead of SQLite's 1,000 copies each of them back (and syncs) a tenth as
    // often.
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)
        .map_err(open_err)?;
    // Group commit runs each write in a savepoint of the batch's transaction: their undo
    // journals (what a rollback to the savepoint needs, never what a crash needs) stay in
    // memory instead of a temporary file written at every write.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(open_err)?;
    match migrate(conn, &shown, migrations) {
        Err(StoreError::Sql(e)) if in_use(&e) => Err(StoreError::InUse { path: shown }),
        other => other,
    }
}

/// Runs the `migrations` a database has not had yet, each in its own transaction.
pub fn migrate(
    mut conn: Connection,
    path: &str,
    migrations: &[&str],
) -> Result<Connection, StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = migrations.len() as i64;
    if version > known {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            known,
        });
    }
    for (i, sql) in migrations.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(conn)
}

/// A service's own database (`<state-dir>/<service>.db`) with nimbus's durability settings and
/// the same group commit as nimbus's queues: concurrent [`Database::write`]s share a commit, and
/// each is answered only once the commit holding it is durable.
pub struct Database {
    db: group::Group,
}

impl Database {
    /// Opens (creating if needed) the database at `path` and runs `migrations` it has not had.
    pub fn open(path: &Path, migrations: &[&str]) -> Result<Database, StoreError> {
        Ok(Database {
            db: group::Group::new(open_database(path, migrations)?),
        })
    }

    /// A database in memory (tests, and services' state that need not survive a restart).
    pub fn in_memory(migrations: &[&str]) -> Result<Database, StoreError> {
        Ok(Database {
            db: group::Group::new(migrate(
                Connection::open_in_memory()?,
                ":memory:",
                migrations,
            )?),
        })
    }

    /// The connection, for reads and for writes that must not wait for a group commit.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.db.lock()
    }

    /// Runs `write` in the next group commit: answered once the commit holding it is durable.
    pub async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.db.write(write).await
    }

    /// Commits so far and the writes they carried.
    pub fn commit_stats(&self) -> CommitStats {
        self.db.stats()
    }
}

/// nimbus's database. Reads and administration take the connection ([`Store::lock`]); the hot
/// writes (sends, receives, deletes, visibility changes, jobs) go through group commit
/// ([`group`]), so concurrent writers share one commit and each is answered after it.
pub struct Store {
    db: group::Group,
    /// Queues' attributes and creation times (queue.rs), filled on first read and dropped by
    /// whatever changes them. Shared, so a request takes them without copying the attribute map.
    queues: RwLock<HashMap<String, (Arc<QueueAttributes>, u64)>>,
    /// Each queue's message count, counted once at open and then moved by every kept write
    /// (queue.rs): kept in memory so that a send commits no page for it.
    depths: Arc<queue::Depths>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::over(open_database(path, MIGRATIONS)?)
    }

    /// A database in memory, for tests.
    pub fn in_memory() -> Result<Store, StoreError> {
        Store::over(migrate(
            Connection::open_in_memory()?,
            ":memory:",
            MIGRATIONS,
        )?)
    }

    fn over(conn: Connection) -> Result<Store, StoreError> {
        let depths = Arc::new(queue::Depths::count(&conn)?);
        Ok(Store {
            db: group::Group::new(conn),
            queues: RwLock::default(),
            depths,
        })
    }

    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Commits so far and the writes they carried.
    pub fn commit_stats(&self) -> CommitStats {
        self.db.stats()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.db.lock()
    }

    fn queue_cache(&self) -> RwLockReadGuard<'_, HashMap<String, (Arc<QueueAttributes>, u64)>> {
        self.queues.read().unwrap_or_else(|e| e.into_inner())
    }

    fn queue_cache_mut(
        &self,
    ) -> RwLockWriteGuard<'_, HashMap<String, (Arc<QueueAttributes>, u64)>> {
        self.queues.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `write` in a commit of its own at once, for callers that cannot await a group
    /// commit; the queue counts it moved follow once it is kept.
    fn write_now<T>(
        &self,
        write: impl FnOnce(&rusqlite::Transaction<'_>, &mut queue::Moves) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut moves = queue::Moves::default();
        let out = write(&tx, &mut moves)?;
        tx.commit()?;
        self.depths.apply(&moves);
        Ok(out)
    }

    /// Runs `write` in the next group commit: answered once the commit holding it is durable,
    /// and the queue counts it moved follow it then.
    async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, &mut queue::Moves) -> Result<T, StoreError>
            + Send
            + 'static,
    {
        let depths = Arc::clone(&self.depths);
        let (out, _) = self
            .db
            .write_then(
                move |tx| {
                    let mut moves = queue::Moves::default();
                    Ok((write(tx, &mut moves)?, moves))
                },
                move |(_, moves): &(T, queue::Moves)| depths.apply(moves),
            )
            .await?;
        Ok(out)
    }
}
