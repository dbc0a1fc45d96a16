//! SQS queues: their attributes (validated as SQS does) and their messages' life cycle.
//!
//! A message is *delayed* until its `DelaySeconds` pass, then *visible*; a receive makes it *in
//! flight* for the visibility timeout under a new receipt handle; deleting with the latest
//! handle removes it, otherwise it becomes visible again. With a `RedrivePolicy`, a message
//! that has been received `maxReceiveCount` times moves to the dead-letter queue instead of
//! being received again. Messages older than `MessageRetentionPeriod` are dropped.
//!
//! FIFO queues (`FifoQueue`, a name ending in `.fifo`): every message has a message group; a
//! receive hands out messages in the order they were sent and never a message of a group that
//! has one in flight, so each group is processed in order by one consumer at a time. A send
//! whose deduplication id was seen in the last five minutes is accepted and dropped, answering
//! with the first message's id. A FIFO message's sequence number is its row number, taken above
//! the last one its queue gave out, so a queue's sequence numbers only grow.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use rusqlite::{params, Connection, OptionalExtension};

use crate::{Store, StoreError};

/// A standard queue's next messages, oldest first. `messages_order` walks the queue in send
/// order and stops after `LIMIT` visible ones, so a receive costs the batch plus the in-flight
/// or delayed messages ahead of it, not the backlog (sorting the visible ones, as the
/// visibility range would, costs the whole backlog).
pub(crate) const RECEIVE_STANDARD: &str =
    "SELECT seq, id, body, md5_body, attributes, md5_attributes, system_attributes,
            sent_ms, receive_count, first_receive_ms, group_id, dedup_id
     FROM messages INDEXED BY messages_order
     WHERE queue = ?1 AND visible_ms <= ?2 ORDER BY seq LIMIT ?3";

/// A FIFO queue's next messages: in send order, never from a group with one in flight.
pub(crate) const RECEIVE_FIFO: &str =
    "SELECT seq, id, body, md5_body, attributes, md5_attributes, system_attributes,
            sent_ms, receive_count, first_receive_ms, group_id, dedup_id
     FROM messages m INDEXED BY messages_order WHERE queue = ?1 AND visible_ms <= ?2
       AND NOT EXISTS (SELECT 1 FROM messages i INDEXED BY messages_inflight WHERE i.queue = ?1
           AND i.group_id = m.group_id AND i.receipt IS NOT NULL AND i.visible_ms > ?2)
     ORDER BY seq LIMIT ?3";

/// Every queue's message count, read once when the store opens (an index walk; afterwards
/// [`Depths`] keeps them).
const COUNT_ALL: &str = "SELECT queue, COUNT(*) FROM messages GROUP BY queue";

/// A FIFO queue's newest sequence number, and the highest row number taken: a FIFO message's
/// row number is its sequence number, above both.
const FIFO_FLOOR: &str = "SELECT last_seq, (SELECT COALESCE(MAX(seq), 0) FROM messages)
     FROM queues WHERE name = ?1";

/// Only a message held back can be invisible: delayed (visible after it was sent) or received
/// (it has a receipt). `messages_held` indexes those alone, so a plain send adds no entry to
/// it; a query names the same condition for SQLite to use that partial index.
macro_rules! held {
    () => {
        "(receipt IS NOT NULL OR visible_ms > sent_ms)"
    };
}

/// In-flight and delayed messages: an index range over the invisible ones only; the visible
/// ones are the depth less these.
pub(crate) const COUNT_INVISIBLE: &str = concat!(
    "SELECT COALESCE(SUM(receipt IS NOT NULL), 0), COALESCE(SUM(receipt IS NULL), 0)
     FROM messages INDEXED BY messages_held WHERE queue = ?1 AND visible_ms > ?2 AND ",
    held!()
);

/// The oldest message's send time: the first message in send order, one seek in
/// `messages_order`.
pub(crate) const OLDEST_SENT: &str = "SELECT sent_ms FROM messages INDEXED BY messages_order
     WHERE queue = ?1 ORDER BY seq LIMIT 1";

/// When the next invisible message becomes visible: one seek in `messages_held`, past `now`
/// (?2). A message visible already is not waited for: a FIFO message blocked behind its group's
/// in-flight one becomes receivable when that one does, so a waiter wakes for that instead of
/// polling at once.
pub(crate) const NEXT_VISIBLE: &str = concat!(
    "SELECT visible_ms FROM messages INDEXED BY messages_held
     WHERE queue = ?1 AND visible_ms > ?2 AND ",
    held!(),
    " ORDER BY visible_ms LIMIT 1"
);

/// The message a receipt handle was issued for: its row (the handle carries it), and only while
/// the handle is the latest one.
pub(crate) const DELETE_BY_RECEIPT: &str =
    "DELETE FROM messages WHERE seq = ?1 AND receipt = ?2 AND queue = ?3";
pub(crate) const CHANGE_VISIBILITY: &str = "UPDATE messages SET visible_ms = ?5
     WHERE seq = ?1 AND receipt = ?2 AND queue = ?3 AND visible_ms > ?4";
pub(crate) const UNRECEIVE: &str = "UPDATE messages SET visible_ms = ?4, receipt = NULL,
         receive_count = MAX(receive_count - 1, 0),
         first_receive_ms = CASE WHEN receive_count <= 1 THEN NULL ELSE first_receive_ms END
     WHERE seq = ?1 AND receipt = ?2 AND queue = ?3";

/// Messages older than the retention period are a prefix of send order: the walk to drop them
/// stops at the first one still kept, so a receive that finds none expired costs one seek.
pub(crate) const OLDEST_FIRST: &str = "SELECT seq, sent_ms FROM messages INDEXED BY messages_order
     WHERE queue = ?1 ORDER BY seq LIMIT ?2";

/// Most expired messages one receive drops: expiry never makes a receive slow.
const EXPIRE_PER_RECEIVE: i64 = 1000;

/// SQS's own errors, by the name of AWS's error code (the wire layer maps them).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueueError {
    #[error("The specified queue does not exist.")]
    NonExistentQueue,
    #[error("A queue already exists with the same name and a different value for attribute {0}")]
    QueueAlreadyExists(String),
    #[error("Invalid value for the parameter {name}: {reason}")]
    InvalidAttributeValue { name: String, reason: String },
    #[error("Unknown Attribute {0}.")]
    InvalidAttributeName(String),
    #[error("The input receipt handle \"{0}\" is not a valid receipt handle.")]
    ReceiptHandleIsInvalid(String),
    #[error("Message does not exist or is not available for visibility timeout change.")]
    MessageNotInflight,
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    InvalidParameterValue(String),
}

/// How long a FIFO queue remembers a deduplication id.
pub const DEDUPLICATION_WINDOW_MS: u64 = 5 * 60 * 1000;

/// A queue's settings, parsed from its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueAttributes {
    pub visibility_timeout_s: u32,
    pub delay_s: u32,
    pub maximum_message_size: u32,
    pub retention_s: u32,
    pub receive_wait_s: u32,
    pub redrive: Option<Redrive>,
    pub fifo: bool,
    pub content_based_deduplication: bool,
    /// The attributes as given (AWS's names, string values), for GetQueueAttributes.
    pub raw: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Redrive {
    /// The dead-letter queue's name (from `deadLetterTargetArn`).
    pub dead_letter_queue: String,
    pub dead_letter_arn: String,
    pub max_receive_count: u32,
}

fn number(name: &str, v: &str, min: u32, max: u32) -> Result<u32, QueueError> {
    match v.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(QueueError::InvalidAttributeValue {
            name: name.to_owned(),
            reason: format!("expected a whole number from {min} to {max}, got {v:?}"),
        }),
    }
}

impl QueueAttributes {
    /// Checks `raw` as `CreateQueue` / `SetQueueAttributes` do and fills in SQS's defaults.
    pub fn parse(raw: BTreeMap<String, String>) -> Result<QueueAttributes, QueueError> {
        let mut a = QueueAttributes {
            visibility_timeout_s: 30,
            delay_s: 0,
            maximum_message_size: 262_144,
            retention_s: 345_600,
            receive_wait_s: 0,
            redrive: None,
            fifo: false,
            content_based_deduplication: false,
            raw: BTreeMap::new(),
        };
        let boolean = |name: &str, v: &str| match v.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(QueueError::InvalidAttributeValue {
                name: name.to_owned(),
                reason: format!("expected true or false, got {v:?}"),
            }),
        };
        let mut fifo_only = None;
        for (name, value) in &raw {
            match name.as_str() {
                "VisibilityTimeout" => a.visibility_timeout_s = number(name, value, 0, 43_200)?,
                "DelaySeconds" => a.delay_s = number(name, value, 0, 900)?,
                "MaximumMessageSize" => {
                    a.maximum_message_size = number(name, value, 1_024, 1_048_576)?
                }
                "MessageRetentionPeriod" => a.retention_s = number(name, value, 60, 1_209_600)?,
                "ReceiveMessageWaitTimeSeconds" => a.receive_wait_s = number(name, value, 0, 20)?,
                "RedrivePolicy" => {
                    a.redrive = if value.trim().is_empty() {
                        None
                    } else {
                        Some(parse_redrive(value)?)
                    }
                }
                "FifoQueue" => a.fifo = boolean(name, value)?,
                "ContentBasedDeduplication" => {
                    a.content_based_deduplication = boolean(name, value)?;
                    fifo_only = Some(name);
                }
                "DeduplicationScope" | "FifoThroughputLimit" => {
                    let allowed: &[&str] = if name == "DeduplicationScope" {
                        &["messageGroup", "queue"]
                    } else {
                        &["perQueue", "perMessageGroupId"]
                    };
                    if !allowed.contains(&value.as_str()) {
                        return Err(QueueError::InvalidAttributeValue {
                            name: name.to_owned(),
                            reason: format!("expected {}, got {value:?}", allowed.join(" or ")),
                        });
                    }
                    fifo_only = Some(name);
                }
                // Accepted and kept, with no effect locally.
                "Policy"
                | "KmsMasterKeyId"
                | "KmsDataKeyReusePeriodSeconds"
                | "SqsManagedSseEnabled"
                | "RedriveAllowPolicy" => {}
                other => return Err(QueueError::InvalidAttributeName(other.to_owned())),
            }
        }
        if let (Some(name), false) = (fifo_only, a.fifo) {
            return Err(QueueError::InvalidAttributeName(name.to_owned()));
        }
        a.raw = raw;
        Ok(a)
    }
}

fn parse_redrive(value: &str) -> Result<Redrive, QueueError> {
    let bad = |reason: String| QueueError::InvalidAttributeValue {
        name: "RedrivePolicy".into(),
        reason,
    };
    let v: serde_json::Value =
        serde_json::from_str(value).map_err(|e| bad(format!("not JSON ({e})")))?;
    let arn = v["deadLetterTargetArn"]
        .as_str()
        .ok_or_else(|| bad("deadLetterTargetArn is required".into()))?;
    let name = arn
        .strip_prefix("arn:")
        .and_then(|_| arn.rsplit(':').next())
        .filter(|n| !n.is_empty() && arn.split(':').nth(2) == Some("sqs"))
        .ok_or_else(|| {
            bad(format!(
                "deadLetterTargetArn {arn:?} is not an SQS queue ARN"
            ))
        })?;
    let count = match &v["maxReceiveCount"] {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .filter(|n| (1..=1000).contains(n))
    .ok_or_else(|| bad("maxReceiveCount must be from 1 to 1000".into()))?;
    Ok(Redrive {
        dead_letter_queue: name.to_owned(),
        dead_letter_arn: arn.to_owned(),
        max_receive_count: count as u32,
    })
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewMessage {
    pub id: String,
    pub body: String,
    pub md5_body: String,
    /// Message attributes as the client sent them (JSON), and their MD5.
    pub attributes: Option<String>,
    pub md5_attributes: Option<String>,
    /// System attributes (`AWSTraceHeader`), JSON.
    pub system_attributes: Option<String>,
    /// Overrides the queue's `DelaySeconds`.
    pub delay_s: Option<u32>,
    /// FIFO queues: the message group (required) and the deduplication id (given, or the
    /// body's SHA-256 with `ContentBasedDeduplication`).
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
}

/// What a send stored (or found already stored, for a duplicate).
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub id: String,
    /// FIFO queues only.
    pub sequence_number: Option<String>,
}

/// A message as a receive hands it out.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub message: Message,
    pub receipt: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: String,
    pub body: String,
    pub md5_body: String,
    pub attributes: Option<String>,
    pub md5_attributes: Option<String>,
    pub system_attributes: Option<String>,
    pub sent_ms: u64,
    pub receive_count: u32,
    pub first_receive_ms: Option<u64>,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    /// FIFO queues only.
    pub sequence_number: Option<String>,
}

fn sequence_number(seq: i64) -> String {
    format!("{seq:020}")
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QueueCounts {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
    pub oldest_sent_ms: Option<u64>,
}

/// Receipt handles start with this, so that a handle from elsewhere is told apart from a stale
/// one (which SQS accepts silently).
pub const RECEIPT_PREFIX: &str = "nimbus-";

fn new_receipt(seq: i64) -> String {
    let raw = format!("{seq}:{:032x}", rand::random::<u128>());
    format!(
        "{RECEIPT_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

/// The row a receipt handle was issued for, or SQS's error for a handle that is not one of ours.
fn receipt_seq(receipt: &str) -> Result<i64, QueueError> {
    receipt
        .strip_prefix(RECEIPT_PREFIX)
        .and_then(|b| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b)
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|s| {
            s.split_once(':')
                .and_then(|(seq, _)| seq.parse::<i64>().ok())
        })
        .ok_or_else(|| QueueError::ReceiptHandleIsInvalid(receipt.to_owned()))
}

fn attributes_of(tx: &Connection, queue: &str) -> Result<QueueAttributes, StoreError> {
    let raw: Option<String> = tx
        .prepare_cached("SELECT attributes FROM queues WHERE name = ?1")?
        .query_row([queue], |r| r.get(0))
        .optional()?;
    let raw = raw.ok_or(QueueError::NonExistentQueue)?;
    let map: BTreeMap<String, String> = serde_json::from_str(&raw).unwrap_or_default();
    Ok(QueueAttributes::parse(map)?)
}

fn queue_exists(tx: &Connection, queue: &str) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM queues WHERE name = ?1")?
        .exists([queue])?)
}

/// Each queue's message count, in memory: a count kept in the queue's row cost every send a
/// page of its own in the commit. Counted at open, then moved only by writes that were kept
/// (their [`Moves`] are applied after their commit), and set by purges and queue deletion
/// while they hold the connection.
#[derive(Debug, Default)]
pub(crate) struct Depths(Mutex<HashMap<String, i64>>);

impl Depths {
    pub(crate) fn count(conn: &Connection) -> Result<Depths, StoreError> {
        let mut all: HashMap<String, i64> = conn
            .prepare("SELECT name FROM queues")?
            .query_map([], |r| Ok((r.get(0)?, 0)))?
            .collect::<Result<_, _>>()?;
        let mut counted = conn.prepare(COUNT_ALL)?;
        let rows = counted.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (queue, n) = row?;
            all.insert(queue, n);
        }
        Ok(Depths(Mutex::new(all)))
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, i64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn apply(&self, moves: &Moves) {
        if moves.0.is_empty() {
            return;
        }
        let mut map = self.map();
        for (queue, by) in &moves.0 {
            // A queue deleted meanwhile has no count left to move.
            if let Some(n) = map.get_mut(queue) {
                *n = (*n + by).max(0);
            }
        }
    }

    fn get(&self, queue: &str) -> i64 {
        self.map().get(queue).copied().unwrap_or(0)
    }

    /// An empty queue: created, or purged.
    fn empty(&self, queue: &str) {
        self.map().insert(queue.to_owned(), 0);
    }

    fn forget(&self, queue: &str) {
        self.map().remove(queue);
    }
}

/// The messages a write moved into or out of queues, applied to [`Depths`] once it is kept.
#[derive(Debug, Default)]
pub(crate) struct Moves(Vec<(String, i64)>);

impl Moves {
    fn add(&mut self, queue: &str, by: i64) {
        if by != 0 {
            self.0.push((queue.to_owned(), by));
        }
    }
}

impl Store {
    /// Creates `name`; `Ok(false)` when it exists with the same attributes (SQS's answer is the
    /// same), an error when they differ.
    pub fn create_queue(
        &self,
        name: &str,
        attributes: BTreeMap<String, String>,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let parsed = QueueAttributes::parse(attributes.clone())?;
        if parsed.fifo != name.ends_with(".fifo") {
            return Err(QueueError::InvalidParameterValue(if parsed.fifo {
                format!("The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length: {name}")
            } else {
                format!("Queue {name} ends with .fifo: set the FifoQueue attribute to true to create a FIFO queue")
            })
            .into());
        }
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT attributes FROM queues WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(existing) = existing {
            let existing: BTreeMap<String, String> =
                serde_json::from_str(&existing).unwrap_or_default();
            for (k, v) in &attributes {
                if existing.get(k) != Some(v) {
                    return Err(QueueError::QueueAlreadyExists(k.clone()).into());
                }
            }
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO queues (name, created_ms, attributes) VALUES (?1, ?2, ?3)",
            params![
                name,
                now_ms as i64,
                serde_json::to_string(&attributes).expect("strings")
            ],
        )?;
        tx.commit()?;
        self.depths.empty(name);
        Ok(true)
    }

    pub fn queue_attributes(&self, name: &str) -> Result<Arc<QueueAttributes>, StoreError> {
        Ok(self.queue_settings(name)?.0)
    }

    pub fn queue_created_ms(&self, name: &str) -> Result<u64, StoreError> {
        Ok(self.queue_settings(name)?.1)
    }

    /// A queue's attributes and creation time, from memory after the first read: every request
    /// asks for them, and they must not wait behind a commit for the connection (nor be read
    /// and parsed again on the writer thread, where every send would wait for them).
    fn queue_settings(&self, name: &str) -> Result<(Arc<QueueAttributes>, u64), StoreError> {
        if let Some(hit) = self.queue_cache().get(name) {
            return Ok(hit.clone());
        }
        let conn = self.lock();
        let created: Option<i64> = conn
            .prepare_cached("SELECT created_ms FROM queues WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        let created = created.ok_or(QueueError::NonExistentQueue)? as u64;
        let settings = (Arc::new(attributes_of(&conn, name)?), created);
        // Filled while holding the connection, so no change to the queue can slip in between.
        self.queue_cache_mut()
            .insert(name.to_owned(), settings.clone());
        Ok(settings)
    }

    /// Merges `changes` into the queue's attributes (an empty value removes one).
    pub fn set_queue_attributes(
        &self,
        name: &str,
        changes: BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut raw = attributes_of(&tx, name)?.raw;
        for (k, v) in changes {
            if v.is_empty() && k == "RedrivePolicy" {
                raw.remove(&k);
            } else {
                raw.insert(k, v);
            }
        }
        QueueAttributes::parse(raw.clone())?;
        tx.execute(
            "UPDATE queues SET attributes = ?2 WHERE name = ?1",
            params![name, serde_json::to_string(&raw).expect("strings")],
        )?;
        tx.commit()?;
        self.queue_cache_mut().remove(name);
        Ok(())
    }

    pub fn list_queues(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached("SELECT name FROM queues ORDER BY name")?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .filter_map(Result::ok)
            .filter(|n| n.starts_with(prefix))
            .collect();
        Ok(names)
    }

    pub fn delete_queue(&self, name: &str) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        if !queue_exists(&tx, name)? {
            return Err(QueueError::NonExistentQueue.into());
        }
        tx.execute("DELETE FROM messages WHERE queue = ?1", [name])?;
        tx.execute("DELETE FROM fifo_dedup WHERE queue = ?1", [name])?;
        tx.execute("DELETE FROM queues WHERE name = ?1", [name])?;
        tx.commit()?;
        self.queue_cache_mut().remove(name);
        self.depths.forget(name);
        Ok(())
    }

    pub fn purge_queue(&self, name: &str) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        if !queue_exists(&tx, name)? {
            return Err(QueueError::NonExistentQueue.into());
        }
        tx.execute("DELETE FROM messages WHERE queue = ?1", [name])?;
        tx.commit()?;
        self.depths.empty(name);
        Ok(())
    }

    /// Stores `messages`, all or none: all of them are durable when this returns.
    pub async fn send(
        &self,
        queue: &str,
        messages: Vec<NewMessage>,
        now_ms: u64,
    ) -> Result<Vec<Sent>, StoreError> {
        let settings = self.queue_settings(queue)?;
        let queue = queue.to_owned();
        self.write(move |tx, moves| send_in(tx, &queue, &settings.0, &messages, now_ms, moves))
            .await
    }

    /// [`Store::send`] in a commit of its own, for callers that cannot wait on a group commit
    /// (nimbus's own deliveries from synchronous code).
    pub fn send_now(
        &self,
        queue: &str,
        messages: &[NewMessage],
        now_ms: u64,
    ) -> Result<Vec<Sent>, StoreError> {
        let settings = self.queue_settings(queue)?;
        self.write_now(|tx, moves| send_in(tx, queue, &settings.0, messages, now_ms, moves))
    }

    /// Receives up to `max` visible messages, oldest first, making them invisible for
    /// `visibility_s` (the queue's timeout when `None`). Moves messages past the redrive
    /// policy's `maxReceiveCount` to the dead-letter queue, and drops expired ones.
    pub async fn receive(
        &self,
        queue: &str,
        max: u32,
        visibility_s: Option<u32>,
        now_ms: u64,
    ) -> Result<Vec<Received>, StoreError> {
        let settings = self.queue_settings(queue)?;
        let queue = queue.to_owned();
        self.write(move |tx, moves| {
            receive_in(tx, &queue, &settings.0, max, visibility_s, now_ms, moves)
        })
        .await
    }

    /// Deletes the message `receipt` was issued for, if it is still the latest handle; a stale
    /// handle is accepted and does nothing, as in SQS.
    pub async fn delete_message(&self, queue: &str, receipt: &str) -> Result<(), StoreError> {
        let mut each = self
            .delete_messages(queue, vec![receipt.to_owned()])
            .await?;
        Ok(each.remove(0)?)
    }

    /// [`Store::delete_message`] for each of `receipts`, in one write: each entry's outcome.
    pub async fn delete_messages(
        &self,
        queue: &str,
        receipts: Vec<String>,
    ) -> Result<Vec<Result<(), QueueError>>, StoreError> {
        let queue = queue.to_owned();
        self.write(move |tx, moves| {
            if !queue_exists(tx, &queue)? {
                return Err(QueueError::NonExistentQueue.into());
            }
            let mut delete = tx.prepare_cached(DELETE_BY_RECEIPT)?;
            let mut gone = 0;
            let mut out = Vec::with_capacity(receipts.len());
            for receipt in &receipts {
                out.push(match receipt_seq(receipt) {
                    Ok(seq) => {
                        gone += delete.execute(params![seq, receipt, queue])?;
                        Ok(())
                    }
                    Err(e) => Err(e),
                });
            }
            moves.add(&queue, -(gone as i64));
            Ok(out)
        })
        .await
    }

    /// Makes an in-flight message visible again after `timeout_s` from now.
    pub async fn change_visibility(
        &self,
        queue: &str,
        receipt: &str,
        timeout_s: u32,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut each = self
            .change_visibilities(queue, vec![(receipt.to_owned(), timeout_s)], now_ms)
            .await?;
        Ok(each.remove(0)?)
    }

    /// [`Store::change_visibility`] for each `(receipt, timeout_s)`, in one write: each entry's
    /// outcome.
    pub async fn change_visibilities(
        &self,
        queue: &str,
        changes: Vec<(String, u32)>,
        now_ms: u64,
    ) -> Result<Vec<Result<(), QueueError>>, StoreError> {
        let queue = queue.to_owned();
        self.write(move |tx, _| {
            if !queue_exists(tx, &queue)? {
                return Err(QueueError::NonExistentQueue.into());
            }
            let mut change = tx.prepare_cached(CHANGE_VISIBILITY)?;
            let mut out = Vec::with_capacity(changes.len());
            for (receipt, timeout_s) in &changes {
                let seq = match receipt_seq(receipt) {
                    Ok(seq) => seq,
                    Err(e) => {
                        out.push(Err(e));
                        continue;
                    }
                };
                if *timeout_s > 43_200 {
                    out.push(Err(QueueError::InvalidAttributeValue {
                        name: "VisibilityTimeout".into(),
                        reason: format!("expected 0 to 43200, got {timeout_s}"),
                    }));
                    continue;
                }
                let changed = change.execute(params![
                    seq,
                    receipt,
                    queue,
                    now_ms as i64,
                    (now_ms + *timeout_s as u64 * 1000) as i64
                ])?;
                out.push(match changed {
                    0 => Err(QueueError::MessageNotInflight),
                    _ => Ok(()),
                });
            }
            Ok(out)
        })
        .await
    }

    /// Hands in-flight messages back as if they had never been received: visible at once, and
    /// their receive count as before. For an event source mapping whose function was throttled:
    /// Lambda's poller backs off without using up the messages' `maxReceiveCount`.
    pub async fn unreceive(
        &self,
        queue: &str,
        receipts: Vec<String>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let queue = queue.to_owned();
        self.write(move |tx, _| {
            let mut undo = tx.prepare_cached(UNRECEIVE)?;
            for r in &receipts {
                if let Ok(seq) = receipt_seq(r) {
                    undo.execute(params![seq, r, queue, now_ms as i64])?;
                }
            }
            Ok(())
        })
        .await
    }

    pub fn counts(&self, queue: &str, now_ms: u64) -> Result<QueueCounts, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        if !queue_exists(&tx, queue)? {
            return Err(QueueError::NonExistentQueue.into());
        }
        let at = params![queue, now_ms as i64];
        let depth = self.depths.get(queue);
        let (in_flight, delayed): (i64, i64) = tx
            .prepare_cached(COUNT_INVISIBLE)?
            .query_row(at, |r| Ok((r.get(0)?, r.get(1)?)))?;
        let oldest: Option<i64> = tx
            .prepare_cached(OLDEST_SENT)?
            .query_row([queue], |r| r.get(0))
            .optional()?;
        Ok(QueueCounts {
            visible: (depth - in_flight - delayed).max(0) as u64,
            in_flight: in_flight as u64,
            delayed: delayed as u64,
            oldest_sent_ms: oldest.map(|v| v as u64),
        })
    }

    /// When the next message of `queue` invisible at `now_ms` becomes visible, if any is.
    pub fn next_visible_ms(&self, queue: &str, now_ms: u64) -> Result<Option<u64>, StoreError> {
        let v: Option<i64> = self
            .lock()
            .prepare_cached(NEXT_VISIBLE)?
            .query_row(params![queue, now_ms as i64], |r| r.get(0))
            .optional()?;
        Ok(v.map(|v| v as u64))
    }

    /// Queues whose redrive policy names `dead_letter_queue`.
    pub fn dead_letter_sources(&self, dead_letter_queue: &str) -> Result<Vec<String>, StoreError> {
        let mut sources = Vec::new();
        for name in self.list_queues("")? {
            if let Ok(a) = self.queue_attributes(&name) {
                if a.redrive
                    .as_ref()
                    .is_some_and(|r| r.dead_letter_queue == dead_letter_queue)
                {
                    sources.push(name);
                }
            }
        }
        Ok(sources)
    }
}

/// Stores `messages` in `queue`, whose settings (`attrs`) the caller read from the cache.
fn send_in(
    tx: &Connection,
    queue: &str,
    attrs: &QueueAttributes,
    messages: &[NewMessage],
    now_ms: u64,
    moves: &mut Moves,
) -> Result<Vec<Sent>, StoreError> {
    if !queue_exists(tx, queue)? {
        return Err(QueueError::NonExistentQueue.into());
    }
    // Row numbers are SQLite's (the largest so far plus one), so one freed at the end is taken
    // again; a FIFO queue's sequence numbers must only grow, so its messages take numbers above
    // the last one the queue gave out. A standard queue never shows its row numbers, and a
    // receipt handle names its message by row and handle both, so a reused row is never
    // mistaken for the message that had it.
    let mut next_fifo = match attrs.fifo {
        true => {
            let (last, top): (i64, i64) = tx
                .prepare_cached(FIFO_FLOOR)?
                .query_row([queue], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Some(last.max(top) + 1)
        }
        false => None,
    };
    if attrs.fifo {
        tx.prepare_cached("DELETE FROM fifo_dedup WHERE queue = ?1 AND sent_ms <= ?2")?
            .execute(params![
                queue,
                now_ms.saturating_sub(DEDUPLICATION_WINDOW_MS) as i64
            ])?;
    }
    let mut out = Vec::with_capacity(messages.len());
    let mut stored = 0;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (queue, id, body, md5_body, attributes, md5_attributes,
                     system_attributes, sent_ms, visible_ms, group_id, dedup_id, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        let mut seen = tx.prepare_cached(
            "SELECT message_id, sequence FROM fifo_dedup WHERE queue = ?1 AND dedup_id = ?2",
        )?;
        let mut remember = tx.prepare_cached(
            "INSERT INTO fifo_dedup (queue, dedup_id, message_id, sequence, sent_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for m in messages {
            let dedup = match (attrs.fifo, &m.group_id, &m.deduplication_id) {
                    (false, _, _) => None,
                    (true, None, _) => {
                        return Err(QueueError::InvalidParameterValue(
                            "The request must contain the parameter MessageGroupId.".into(),
                        )
                        .into())
                    }
                    (true, Some(_), None) => {
                        return Err(QueueError::InvalidParameterValue(
                            "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly".into(),
                        )
                        .into())
                    }
                    (true, Some(_), Some(d)) => Some(d),
                };
            if let Some(d) = dedup {
                let earlier: Option<(String, String)> = seen
                    .query_row(params![queue, d], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((id, sequence)) = earlier {
                    out.push(Sent {
                        id,
                        sequence_number: Some(sequence),
                    });
                    continue;
                }
            }
            let delay = m.delay_s.unwrap_or(attrs.delay_s) as u64;
            insert.execute(params![
                queue,
                m.id,
                m.body,
                m.md5_body,
                m.attributes,
                m.md5_attributes,
                m.system_attributes,
                now_ms as i64,
                (now_ms + delay * 1000) as i64,
                m.group_id,
                m.deduplication_id,
                next_fifo,
            ])?;
            let sequence = next_fifo.map(sequence_number);
            next_fifo = next_fifo.map(|n| n + 1);
            if let (Some(d), Some(sq)) = (dedup, &sequence) {
                remember.execute(params![queue, d, m.id, sq, now_ms as i64])?;
            }
            out.push(Sent {
                id: m.id.clone(),
                sequence_number: sequence,
            });
            stored += 1;
        }
    }
    if let Some(next) = next_fifo {
        tx.prepare_cached("UPDATE queues SET last_seq = ?2 WHERE name = ?1")?
            .execute(params![queue, next - 1])?;
    }
    moves.add(queue, stored);
    Ok(out)
}

fn receive_in(
    tx: &Connection,
    queue: &str,
    attrs: &QueueAttributes,
    max: u32,
    visibility_s: Option<u32>,
    now_ms: u64,
    moves: &mut Moves,
) -> Result<Vec<Received>, StoreError> {
    let expired_before = now_ms.saturating_sub(attrs.retention_s as u64 * 1000);
    expire(tx, queue, expired_before, moves)?;
    let dead_letter = match &attrs.redrive {
        Some(r) if queue_exists(tx, &r.dead_letter_queue)? => Some(r),
        _ => None,
    };
    let visible_until = now_ms + visibility_s.unwrap_or(attrs.visibility_timeout_s) as u64 * 1000;
    let mut out = Vec::new();
    // Candidates beyond `max`, so that messages moved to the DLQ do not shrink the batch.
    // FIFO: never a message of a group that has one in flight, so each group goes in order.
    let mut candidates = tx.prepare_cached(if attrs.fifo {
        RECEIVE_FIFO
    } else {
        RECEIVE_STANDARD
    })?;
    let fifo = attrs.fifo;
    let rows: Vec<(i64, Message)> = candidates
        .query_map(params![queue, now_ms as i64, (max as i64) * 2 + 10], |r| {
            Ok((
                r.get(0)?,
                Message {
                    id: r.get(1)?,
                    body: r.get(2)?,
                    md5_body: r.get(3)?,
                    attributes: r.get(4)?,
                    md5_attributes: r.get(5)?,
                    system_attributes: r.get(6)?,
                    sent_ms: r.get::<_, i64>(7)? as u64,
                    receive_count: r.get::<_, i64>(8)? as u32,
                    first_receive_ms: r.get::<_, Option<i64>>(9)?.map(|v| v as u64),
                    group_id: r.get(10)?,
                    deduplication_id: r.get(11)?,
                    sequence_number: None,
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    drop(candidates);
    for (seq, mut m) in rows {
        if out.len() as u32 >= max {
            break;
        }
        if fifo {
            m.sequence_number = Some(sequence_number(seq));
        }
        if let Some(r) = dead_letter {
            if m.receive_count >= r.max_receive_count {
                tx.prepare_cached(
                    "UPDATE messages SET queue = ?2, visible_ms = ?3, receipt = NULL,
                             receive_count = 0, first_receive_ms = NULL WHERE seq = ?1",
                )?
                .execute(params![seq, r.dead_letter_queue, now_ms as i64])?;
                // The row keeps its number in the dead-letter queue: a FIFO one must not give
                // that number out again once the row is gone.
                tx.prepare_cached(
                    "UPDATE queues SET last_seq = MAX(last_seq, ?2) WHERE name = ?1",
                )?
                .execute(params![r.dead_letter_queue, seq])?;
                moves.add(queue, -1);
                moves.add(&r.dead_letter_queue, 1);
                continue;
            }
        }
        let receipt = new_receipt(seq);
        m.receive_count += 1;
        m.first_receive_ms = m.first_receive_ms.or(Some(now_ms));
        tx.prepare_cached(
            "UPDATE messages SET receive_count = ?2, first_receive_ms = ?3, receipt = ?4,
                     visible_ms = ?5 WHERE seq = ?1",
        )?
        .execute(params![
            seq,
            m.receive_count as i64,
            m.first_receive_ms.map(|v| v as i64),
            receipt,
            visible_until as i64
        ])?;
        out.push(Received {
            message: m,
            receipt,
        });
    }
    Ok(out)
}

/// Drops the queue's messages sent before `before_ms` (at most [`EXPIRE_PER_RECEIVE`]).
fn expire(
    tx: &Connection,
    queue: &str,
    before_ms: u64,
    moves: &mut Moves,
) -> Result<(), StoreError> {
    let expired: Vec<i64> = tx
        .prepare_cached(OLDEST_FIRST)?
        .query_map(params![queue, EXPIRE_PER_RECEIVE], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?
        .map_while(|row| match row {
            Ok((seq, sent_ms)) if (sent_ms as u64) < before_ms => Some(Ok(seq)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()?;
    let mut drop_one = tx.prepare_cached("DELETE FROM messages WHERE seq = ?1")?;
    for seq in &expired {
        drop_one.execute([seq])?;
    }
    moves.add(queue, -(expired.len() as i64));
    Ok(())
}

#[cfg(test)]
mod plans {
    use super::*;

    /// SQLite's plan for `sql`, one line per step.
    fn plan(store: &Store, sql: &str, args: usize) -> Vec<String> {
        let conn = store.lock();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let values: Vec<i64> = vec![0; args];
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// Each hot query with the index it must seek: a plan that picked another index (a
    /// search on `queue` alone walks the whole queue) fails here, not in a benchmark.
    #[test]
    fn the_hot_queries_seek_their_index_and_never_scan_or_sort_the_queue() {
        let store = Store::in_memory().unwrap();
        let rowid = "USING INTEGER PRIMARY KEY (rowid=?)";
        for (name, sql, args, uses) in [
            (
                "receive (standard)",
                RECEIVE_STANDARD,
                3,
                &["messages_order"][..],
            ),
            (
                "receive (FIFO)",
                RECEIVE_FIFO,
                3,
                &["messages_order", "messages_inflight"][..],
            ),
            (
                "FIFO floor",
                FIFO_FLOOR,
                1,
                &["sqlite_autoindex_queues_1"][..],
            ),
            (
                "in-flight and delayed counts",
                COUNT_INVISIBLE,
                2,
                &["messages_held (queue=? AND visible_ms>?)"][..],
            ),
            (
                "oldest message",
                OLDEST_SENT,
                1,
                &["messages_order (queue=?)"][..],
            ),
            (
                "expiry walk",
                OLDEST_FIRST,
                2,
                &["messages_order (queue=?)"][..],
            ),
            (
                "next visible",
                NEXT_VISIBLE,
                2,
                &["messages_held (queue=? AND visible_ms>?)"][..],
            ),
            ("delete by receipt", DELETE_BY_RECEIPT, 3, &[rowid][..]),
            ("change visibility", CHANGE_VISIBILITY, 5, &[rowid][..]),
            ("unreceive", UNRECEIVE, 4, &[rowid][..]),
        ] {
            let steps = plan(&store, sql, args);
            for index in uses {
                assert!(
                    steps
                        .iter()
                        .any(|s| s.starts_with("SEARCH") && s.contains(index)),
                    "{name} does not seek {index}: {steps:?}"
                );
            }
            assert!(
                !steps
                    .iter()
                    .any(|s| s.starts_with("SCAN") || s.contains("TEMP B-TREE")),
                "{name} scans or sorts: {steps:?}"
            );
        }
    }
}

#[cfg(test)]
mod disk_full {
    use super::*;

    fn message(i: usize) -> NewMessage {
        NewMessage {
            id: i.to_string(),
            body: "x".repeat(4000),
            md5_body: "m".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_full_disk_fails_the_send_keeps_everything_acknowledged_and_passes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("nimbus.db")).unwrap();
        s.create_queue("q", BTreeMap::new(), 0).unwrap();
        // SQLite's page limit stands in for the disk filling up: the same SQLITE_FULL, raised
        // at the same place (a page the commit cannot add).
        let pages: i64 = s
            .lock()
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        s.lock()
            .pragma_update(None, "max_page_count", pages + 8)
            .unwrap();
        let mut acknowledged = 0;
        let full = loop {
            match s.send("q", vec![message(acknowledged)], 1).await {
                Ok(_) => acknowledged += 1,
                Err(e) => break e,
            }
            assert!(acknowledged < 1000, "the page limit never bit");
        };
        assert!(acknowledged > 0);
        assert!(full.to_string().contains("full"), "{full}");
        assert!(
            !matches!(full, StoreError::Queue(_)),
            "a full disk is not the caller's fault: {full:?}"
        );
        assert_eq!(s.counts("q", 1).unwrap().visible, acknowledged as u64);

        s.lock()
            .pragma_update(None, "max_page_count", 1_000_000)
            .unwrap();
        s.send("q", vec![message(acknowledged)], 1).await.unwrap();
        let mut got = 0;
        loop {
            let batch = s.receive("q", 10, Some(60), 1).await.unwrap();
            if batch.is_empty() {
                break;
            }
            got += batch.len();
        }
        assert_eq!(
            got,
            acknowledged + 1,
            "every acknowledged message, and the new one"
        );
    }
}
