//! Amazon S3 in nimbus: buckets and objects on one machine, in S3's REST/XML shapes, so the AWS
//! CLI, boto3 and the SDKs work against nimbus's endpoint unchanged.
//!
//! - Pure: `names.rs` (naming and size rules), `checksum.rs` (MD5 ETags and the additional
//!   checksums), `chunked.rs` (the aws-chunked upload encoding), `range.rs` (`Range` and the
//!   conditional headers), `list.rs` (listings), `notify.rs` (notification configurations,
//!   matching and record shapes), `xml.rs`, `error.rs`.
//! - Durable: `state.rs` (bodies as files under `<state-dir>/s3/`, metadata in
//!   `<state-dir>/s3.db` through `nimbus_store::Database`).
//! - For other services: `sdk.rs` (operations in the SDKs' JSON shapes).
//! - Wire: `http.rs` (addressing and dispatch), `buckets.rs`, `objects.rs` and `multipart.rs`
//!   (one function per operation), `body.rs` (streaming an upload to disk while
//!   hashing it), `template.rs` (the template's buckets and their notifications).

mod body;
mod buckets;
pub mod checksum;
pub mod chunked;
pub mod cors;
mod error;
mod http;
pub mod lifecycle;
pub mod list;
mod multipart;
pub mod names;
pub mod notify;
mod objects;
mod operation;
mod post;
pub mod range;
mod sdk;
mod state;
mod template;
pub mod xml;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

pub use error::S3Error;
pub use http::{bucket_of_host, is_s3_request};
pub use operation::operation;
pub use state::Versioning;
pub use template::{template_buckets, TemplateBucket};

use notify::Notification;

#[derive(Debug, Clone)]
pub struct S3Config {
    pub region: String,
    pub account: String,
    /// A lifecycle day in milliseconds: 86,400,000, or scaled by `--delay-scale`.
    pub day_ms: u64,
}

/// S3's state and handlers; cheap to clone.
#[derive(Clone)]
pub struct S3 {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    db: nimbus_store::Database,
    files: state::Files,
    config: S3Config,
    /// Each bucket's versioning state and notification configuration, kept in memory so a
    /// request checks its bucket without a query; changed only with the row that stores them.
    buckets: RwLock<HashMap<String, BucketState>>,
    hub: OnceLock<nimbus_events::Hub>,
    telemetry: OnceLock<Arc<nimbus_telemetry::Telemetry>>,
}

#[derive(Debug, Clone)]
pub(crate) struct BucketState {
    versioning: Versioning,
    notification: Arc<Notification>,
    cors: Arc<Vec<cors::Rule>>,
}

impl S3 {
    /// Opens S3's state under `state_dir` (`s3.db` and the `s3/` folder of bodies).
    pub fn open(state_dir: &Path, config: S3Config) -> Result<S3, S3Error> {
        let db = nimbus_store::Database::open(&state_dir.join("s3.db"), state::MIGRATIONS)?;
        let files = state::Files::open(&state_dir.join("s3"))?;
        let mut buckets = HashMap::new();
        {
            let conn = db.lock();
            for b in state::buckets(&conn)? {
                let notification = match state::config(&conn, &b.name, "notification")? {
                    Some(x) => Notification::from_xml(&x).unwrap_or_default(),
                    None => Notification::default(),
                };
                let cors = state::config(&conn, &b.name, "cors")?
                    .and_then(|x| cors::from_xml(&x).ok())
                    .unwrap_or_default();
                buckets.insert(
                    b.name,
                    BucketState {
                        versioning: b.versioning,
                        notification: Arc::new(notification),
                        cors: Arc::new(cors),
                    },
                );
            }
        }
        Ok(S3 {
            inner: Arc::new(Inner {
                db,
                files,
                config,
                buckets: RwLock::new(buckets),
                hub: OnceLock::new(),
                telemetry: OnceLock::new(),
            }),
        })
    }

    /// Lets S3 deliver event notifications through the event engine.
    pub fn set_hub(&self, hub: nimbus_events::Hub) {
        let _ = self.inner.telemetry.set(Arc::clone(hub.telemetry()));
        let _ = self.inner.hub.set(hub);
    }

    /// The bytes each bucket holds (every version and uploaded part), as S3 bills storage.
    pub fn stored_bytes(&self) -> Result<Vec<(String, u64)>, S3Error> {
        state::stored_bytes(&self.inner.db.lock())
    }

    /// Whether a bucket of this name exists.
    pub fn has_bucket(&self, name: &str) -> bool {
        self.inner.bucket(name).is_some()
    }

    /// The buckets' names, sorted.
    pub fn bucket_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.buckets.read().unwrap().keys().cloned().collect();
        names.sort();
        names
    }

    /// Creates the template's buckets that do not exist yet and sets the versioning and
    /// notification configuration the template gives each (the template is the configuration
    /// of its buckets, as a CloudFormation update would make it). Objects are kept.
    pub fn apply_template(&self, buckets: &[TemplateBucket]) -> Result<(), S3Error> {
        let inner = &self.inner;
        let conn = inner.db.lock();
        for b in buckets {
            names::check_bucket(&b.name)?;
            conn.execute(
                "INSERT INTO buckets (name, created_ms, region) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
                rusqlite::params![b.name, now_ms(), inner.config.region],
            )?;
            if let Some(v) = b.versioning {
                conn.execute(
                    "UPDATE buckets SET versioning = ?2 WHERE name = ?1",
                    rusqlite::params![b.name, v.as_str()],
                )?;
            }
            let xml = (b.notification != Notification::default()).then(|| b.notification.to_xml());
            // Setting a configuration sends S3's test event; running the same template again
            // sets nothing new.
            if let (Some(x), Some(hub)) = (&xml, inner.hub.get()) {
                if state::config(&conn, &b.name, "notification")?.as_deref() != Some(x.as_str()) {
                    notify::send_test_event(
                        hub,
                        &b.notification,
                        &b.name,
                        &http::request_id(),
                        now_ms(),
                    );
                }
            }
            state::set_config(&conn, &b.name, "notification", xml.as_deref())?;
            if let Some(c) = &b.cors {
                state::set_config(&conn, &b.name, "cors", Some(c))?;
            }
            if let Some(l) = &b.lifecycle {
                state::set_config(&conn, &b.name, "lifecycle", Some(l))?;
            }
            let cors = state::config(&conn, &b.name, "cors")?
                .and_then(|x| cors::from_xml(&x).ok())
                .unwrap_or_default();
            let versioning = state::buckets(&conn)?
                .into_iter()
                .find(|r| r.name == b.name)
                .map(|r| r.versioning)
                .unwrap_or(Versioning::Unversioned);
            inner.buckets.write().unwrap().insert(
                b.name.clone(),
                BucketState {
                    versioning,
                    notification: Arc::new(b.notification.clone()),
                    cors: Arc::new(cors),
                },
            );
        }
        Ok(())
    }

    /// Applies every bucket's lifecycle rules once, at `now_ms`: current versions past their
    /// expiration deleted (a delete marker in a versioned bucket), noncurrent versions past
    /// theirs removed, multipart uploads past `DaysAfterInitiation` aborted. Walks each bucket
    /// with rules in key order, a thousand rows a query; returns what it expired.
    pub async fn sweep_lifecycle(&self, now_ms: i64) -> Result<usize, S3Error> {
        let inner = &self.inner;
        let day = inner.config.day_ms;
        let mut expired = 0;
        for bucket in self.bucket_names() {
            let rules = match state::config(&inner.db.lock(), &bucket, "lifecycle")? {
                Some(x) => lifecycle::from_xml(&x).unwrap_or_default(),
                None => continue,
            };
            if !rules.iter().any(|r| r.enabled) {
                continue;
            }
            // What to expire is found first and then deleted, so no database lock is held
            // across a delete.
            let mut due: Vec<lifecycle::Due> = Vec::new();
            let mut start = String::new();
            loop {
                let mut rows = state::rows_from(&inner.db.lock(), &bucket, &start, 1000, true)?;
                let full = rows.len() == 1000;
                if full {
                    // Keep whole keys only (their versions are needed together), unless one key
                    // fills the batch.
                    let last = rows.last().map(|r| r.key.clone()).unwrap_or_default();
                    if rows.iter().any(|r| r.key != last) {
                        rows.retain(|r| r.key != last);
                    }
                }
                due.extend(lifecycle::due(&rows, &rules, now_ms, day));
                match rows.last() {
                    Some(r) if full => start = format!("{}\u{0}", r.key),
                    _ => break,
                }
            }
            for (key, version, seq) in due {
                let rid = http::request_id();
                if let (Some(_), _) =
                    objects::delete_as(inner, &rid, &bucket, &key, version, Some(seq)).await?
                {
                    expired += 1;
                }
            }
            let uploads = state::uploads_from(&inner.db.lock(), &bucket, "", usize::MAX >> 1)?;
            for u in uploads {
                if rules.iter().any(|l| {
                    u.key.starts_with(&l.prefix) && l.aborts_upload(u.created_ms, now_ms, day)
                }) {
                    let freed = inner
                        .db
                        .write(move |tx| Ok(state::drop_upload(tx, &u.id)))
                        .await??;
                    inner.files.remove(&freed);
                    expired += 1;
                }
            }
        }
        Ok(expired)
    }

    /// Serves one S3 REST request.
    pub async fn handle(&self, req: axum::extract::Request) -> axum::response::Response {
        http::handle(&self.inner, req).await
    }

    /// An object's bytes (at most `limit`; more is an error), for services that read objects
    /// (Step Functions' `ItemReader`).
    pub async fn read_object(
        &self,
        bucket: &str,
        key: &str,
        limit: u64,
    ) -> Result<Vec<u8>, S3Error> {
        self.inner.read_object(bucket, key, limit).await
    }
}

impl Inner {
    pub(crate) fn bucket(&self, name: &str) -> Option<BucketState> {
        self.buckets.read().unwrap().get(name).cloned()
    }

    /// Keeps the cached CORS rules in step with a stored configuration that changed
    /// (`kind` is the subresource; only `cors` matters).
    pub(crate) fn set_cors(&self, bucket: &str, xml: Option<&str>, kind: &str) {
        if kind != "cors" {
            return;
        }
        let rules = xml.and_then(|x| cors::from_xml(x).ok()).unwrap_or_default();
        if let Some(b) = self.buckets.write().unwrap().get_mut(bucket) {
            b.cors = Arc::new(rules);
        }
    }

    /// A page of the current objects of `bucket` (a listing's walk over `objects_latest`).
    pub(crate) fn list_current(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: &str,
        after: Option<&str>,
        max: usize,
    ) -> Result<list::Listing, S3Error> {
        let conn = self.db.lock();
        list::walk(
            &list::Params {
                prefix,
                delimiter,
                after,
                max,
                versions: false,
                after_seq: None,
            },
            |start, n| state::rows_from(&conn, bucket, start, n, false),
        )
    }

    /// The current version of a key (not a delete marker), or S3's error.
    pub(crate) fn current(&self, bucket: &str, key: &str) -> Result<state::ObjectRow, S3Error> {
        if self.bucket(bucket).is_none() {
            return Err(S3Error::no_such_bucket(bucket));
        }
        let row = state::latest(&self.db.lock(), bucket, key)?;
        row.filter(|r| !r.delete_marker)
            .ok_or_else(|| S3Error::no_such_key(key))
    }

    async fn read_object(&self, bucket: &str, key: &str, limit: u64) -> Result<Vec<u8>, S3Error> {
        let row = self.current(bucket, key)?;
        if row.size > limit {
            return Err(S3Error::new(
                400,
                "EntityTooLarge",
                format!("the object is {} bytes; at most {limit} are read", row.size),
            ));
        }
        match &row.file {
            Some(f) => Ok(tokio::fs::read(self.files.data(f)).await?),
            None => Ok(Vec::new()),
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `2026-12-06T13:00:00.000Z`, as S3's XML and records carry times.
pub(crate) fn iso_time(ms: i64) -> String {
    nimbus_core::report::TimestampMillis(ms.max(0) as u64).to_string()
}

/// `Sun, 06 Dec 2026 13:00:00 GMT`, as `Last-Modified` carries times.
pub(crate) fn http_date(ms: i64) -> String {
    httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64),
    )
}
