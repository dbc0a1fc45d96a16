//! The topic database: topics with their attributes and tags, subscriptions with theirs.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use crate::{Sns, SnsError};

const MIGRATIONS: &[&str] = &[
    // 1: topics and subscriptions; `from_template` marks what the template declared.
    "CREATE TABLE topics (
        arn TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        attributes TEXT NOT NULL DEFAULT '{}',
        tags TEXT NOT NULL DEFAULT '[]'
    ) WITHOUT ROWID;
    CREATE TABLE subscriptions (
        arn TEXT PRIMARY KEY,
        topic_arn TEXT NOT NULL,
        protocol TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        attributes TEXT NOT NULL DEFAULT '{}',
        from_template INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE INDEX subscriptions_topic ON subscriptions(topic_arn);",
    // 2: HTTP/HTTPS subscriptions wait for confirmation with the token they were sent.
    "ALTER TABLE subscriptions ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE subscriptions ADD COLUMN token TEXT;",
];

pub(crate) fn open(path: Option<&Path>) -> Result<Connection, SnsError> {
    match path {
        Some(p) => nimbus_store::open_database(p, MIGRATIONS),
        None => Connection::open_in_memory()
            .map_err(nimbus_store::StoreError::from)
            .and_then(|c| nimbus_store::migrate(c, ":memory:", MIGRATIONS)),
    }
    .map_err(|e| SnsError::Internal(e.to_string()))
}

#[derive(Debug, Clone)]
pub(crate) struct Topic {
    pub arn: String,
    pub name: String,
    pub attributes: Map<String, Value>,
    pub tags: Vec<Value>,
}

impl Topic {
    pub fn fifo(&self) -> bool {
        self.attributes.get("FifoTopic").and_then(Value::as_str) == Some("true")
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(Value::as_str)
    }

    /// The signature version of its messages to HTTP/HTTPS endpoints: "1" (SHA1withRSA) unless
    /// the topic's `SignatureVersion` is "2" (SHA256withRSA).
    pub fn signature_version(&self) -> &str {
        match self.attribute("SignatureVersion") {
            Some("2") => "2",
            _ => "1",
        }
    }

    pub fn content_based_dedup(&self) -> bool {
        self.attributes
            .get("ContentBasedDeduplication")
            .and_then(Value::as_str)
            == Some("true")
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub arn: String,
    pub topic_arn: String,
    pub protocol: String,
    pub endpoint: String,
    pub attributes: Map<String, Value>,
    /// An HTTP/HTTPS subscription not yet confirmed: nothing is delivered to it.
    pub pending: bool,
    /// The token its confirmation message carried.
    pub token: Option<String>,
}

impl Subscription {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(Value::as_str)
    }
}

fn object(text: String) -> Map<String, Value> {
    serde_json::from_str(&text).unwrap_or_default()
}

fn topic_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Topic> {
    Ok(Topic {
        arn: r.get(0)?,
        name: r.get(1)?,
        attributes: object(r.get(2)?),
        tags: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
    })
}

pub(crate) fn topic(db: &Connection, arn: &str) -> Result<Option<Topic>, SnsError> {
    Ok(db
        .prepare_cached("SELECT arn, name, attributes, tags FROM topics WHERE arn = ?1")?
        .query_row([arn], topic_of)
        .optional()?)
}

pub(crate) fn topics(db: &Connection) -> Result<Vec<Topic>, SnsError> {
    Ok(db
        .prepare_cached("SELECT arn, name, attributes, tags FROM topics ORDER BY arn")?
        .query_map([], topic_of)?
        .collect::<Result<_, _>>()?)
}

pub(crate) fn topic_names(db: &Connection) -> Result<Vec<String>, SnsError> {
    Ok(db
        .prepare_cached("SELECT name FROM topics ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

pub(crate) fn put_topic(db: &Connection, t: &Topic) -> Result<(), SnsError> {
    db.prepare_cached(
        "INSERT OR REPLACE INTO topics (arn, name, attributes, tags) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        t.arn,
        t.name,
        Value::Object(t.attributes.clone()).to_string(),
        Value::Array(t.tags.clone()).to_string()
    ])?;
    Ok(())
}

pub(crate) fn delete_topic(db: &Connection, arn: &str) -> Result<(), SnsError> {
    db.prepare_cached("DELETE FROM subscriptions WHERE topic_arn = ?1")?
        .execute([arn])?;
    db.prepare_cached("DELETE FROM topics WHERE arn = ?1")?
        .execute([arn])?;
    Ok(())
}

fn subscription_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Subscription> {
    Ok(Subscription {
        arn: r.get(0)?,
        topic_arn: r.get(1)?,
        protocol: r.get(2)?,
        endpoint: r.get(3)?,
        attributes: object(r.get(4)?),
        pending: r.get(5)?,
        token: r.get(6)?,
    })
}

const SUB_COLUMNS: &str = "arn, topic_arn, protocol, endpoint, attributes, pending, token";

pub(crate) fn subscriptions(
    db: &Connection,
    topic_arn: Option<&str>,
) -> Result<Vec<Subscription>, SnsError> {
    let rows = match topic_arn {
        Some(t) => db
            .prepare_cached(&format!(
                "SELECT {SUB_COLUMNS} FROM subscriptions WHERE topic_arn = ?1 ORDER BY arn"
            ))?
            .query_map([t], subscription_of)?
            .collect::<Result<_, _>>()?,
        None => db
            .prepare_cached(&format!(
                "SELECT {SUB_COLUMNS} FROM subscriptions ORDER BY arn"
            ))?
            .query_map([], subscription_of)?
            .collect::<Result<_, _>>()?,
    };
    Ok(rows)
}

pub(crate) fn subscription(db: &Connection, arn: &str) -> Result<Option<Subscription>, SnsError> {
    Ok(db
        .prepare_cached(&format!(
            "SELECT {SUB_COLUMNS} FROM subscriptions WHERE arn = ?1"
        ))?
        .query_row([arn], subscription_of)
        .optional()?)
}

pub(crate) fn put_subscription(
    db: &Connection,
    s: &Subscription,
    from_template: bool,
) -> Result<(), SnsError> {
    db.prepare_cached(
        "INSERT OR REPLACE INTO subscriptions
         (arn, topic_arn, protocol, endpoint, attributes, from_template, pending, token)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        s.arn,
        s.topic_arn,
        s.protocol,
        s.endpoint,
        Value::Object(s.attributes.clone()).to_string(),
        from_template,
        s.pending,
        s.token
    ])?;
    Ok(())
}

/// The subscription to `topic_arn` that was sent `token`.
pub(crate) fn subscription_by_token(
    db: &Connection,
    topic_arn: &str,
    token: &str,
) -> Result<Option<Subscription>, SnsError> {
    Ok(db
        .prepare_cached(&format!(
            "SELECT {SUB_COLUMNS} FROM subscriptions WHERE topic_arn = ?1 AND token = ?2"
        ))?
        .query_row([topic_arn, token], subscription_of)
        .optional()?)
}

/// Whether a subscription was made by the template: `Subscribe` keeps the mark.
pub(crate) fn is_from_template(db: &Connection, arn: &str) -> Result<bool, SnsError> {
    Ok(db
        .prepare_cached("SELECT from_template FROM subscriptions WHERE arn = ?1")?
        .query_row([arn], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

pub(crate) fn delete_subscription(db: &Connection, arn: &str) -> Result<bool, SnsError> {
    Ok(db
        .prepare_cached("DELETE FROM subscriptions WHERE arn = ?1")?
        .execute([arn])?
        > 0)
}

/// A topic as the template declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateTopic {
    pub name: String,
    pub attributes: Map<String, Value>,
}

/// A subscription as the template declares it (`AWS::SNS::Subscription`, a topic's
/// `Subscription` list, a SAM `SNS` event).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSubscription {
    pub topic_arn: String,
    pub protocol: String,
    pub endpoint: String,
    pub attributes: Map<String, Value>,
}

pub(crate) fn apply_template(
    sns: &Sns,
    db: &mut Connection,
    topics: &[TemplateTopic],
    subs: &[TemplateSubscription],
    _now_ms: u64,
) -> Result<(Vec<String>, Vec<Subscription>), SnsError> {
    let tx = db.transaction()?;
    let mut arns = Vec::new();
    for t in topics {
        crate::ops::check_topic_name(&t.name, &t.attributes)?;
        for (k, v) in &t.attributes {
            crate::ops::check_topic_attribute(k, v.as_str().unwrap_or(""))?;
        }
        let arn = sns.topic_arn(&t.name);
        let mut topic = topic(&tx, &arn)?.unwrap_or_else(|| Topic {
            arn: arn.clone(),
            name: t.name.clone(),
            attributes: Map::new(),
            tags: Vec::new(),
        });
        for (k, v) in &t.attributes {
            topic.attributes.insert(k.clone(), v.clone());
        }
        put_topic(&tx, &topic)?;
        arns.push(arn);
    }
    // The template's subscriptions, replaced as a whole: a stable ARN from what they connect.
    // An HTTP/HTTPS one keeps its confirmation across runs; a pending one is sent a confirmation.
    let before: std::collections::HashMap<String, Subscription> = tx
        .prepare_cached(&format!(
            "SELECT {SUB_COLUMNS} FROM subscriptions WHERE from_template = 1"
        ))?
        .query_map([], subscription_of)?
        .map(|r| r.map(|s| (s.arn.clone(), s)))
        .collect::<Result<_, _>>()?;
    tx.prepare_cached("DELETE FROM subscriptions WHERE from_template = 1")?
        .execute([])?;
    let mut to_confirm = Vec::new();
    for s in subs {
        if topic(&tx, &s.topic_arn)?.is_none() {
            return Err(SnsError::not_found(format!(
                "Topic does not exist: {} (subscription to {})",
                s.topic_arn, s.endpoint
            )));
        }
        crate::ops::check_subscription(&s.protocol, &s.endpoint, &s.attributes)?;
        let id = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("{}|{}|{}", s.topic_arn, s.protocol, s.endpoint).as_bytes(),
        );
        let arn = format!("{}:{id}", s.topic_arn);
        let (pending, token) = match before.get(&arn) {
            Some(old) => (old.pending, old.token.clone()),
            None if crate::ops::needs_confirmation(&s.protocol) => {
                (true, Some(crate::ops::new_token()))
            }
            None => (false, None),
        };
        let sub = Subscription {
            arn,
            topic_arn: s.topic_arn.clone(),
            protocol: s.protocol.clone(),
            endpoint: s.endpoint.clone(),
            attributes: s.attributes.clone(),
            pending,
            token,
        };
        put_subscription(&tx, &sub, true)?;
        // Still pending (new, or its confirmation lost to a crash before it was queued): sent
        // again, as a second Subscribe would send it.
        if sub.pending {
            to_confirm.push(sub);
        }
    }
    tx.commit()?;
    Ok((arns, to_confirm))
}
