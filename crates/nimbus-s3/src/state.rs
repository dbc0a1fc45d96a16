//! S3's durable state: object bodies as files under `<state-dir>/s3/`, everything else in
//! `<state-dir>/s3.db`.
//!
//! A body is written to `tmp/`, renamed to `data/<xx>/<id>` once complete, and only then named
//! by a row; the row's commit is what makes the object exist. So an upload cut short (a closed
//! connection, a bad checksum, `kill -9`) is never visible, and a visible object is always
//! whole. `tmp/` is emptied at start-up. A file is unlinked after the commit that stops naming
//! it; a crash between the two leaves an unnamed file, never a named missing one.

use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension, Transaction};

use crate::checksum::Algorithm;
use crate::error::S3Error;

pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE buckets (
    name TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    region TEXT NOT NULL,
    -- '' (never set), 'Enabled' or 'Suspended'
    versioning TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
-- A bucket's subresource configurations (tagging, cors, policy, notification, ...) as the XML
-- or JSON text they are answered with.
CREATE TABLE bucket_configs (
    bucket TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (bucket, kind)
) WITHOUT ROWID;
-- Every version of every object; seq orders versions (newest is largest).
CREATE TABLE objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    version_id TEXT NOT NULL,
    latest INTEGER NOT NULL,
    delete_marker INTEGER NOT NULL DEFAULT 0,
    file TEXT,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified_ms INTEGER NOT NULL,
    headers TEXT NOT NULL,
    meta TEXT NOT NULL,
    tags TEXT NOT NULL,
    checksum TEXT,
    parts INTEGER
);
-- Listings and reads of the current version: a seek on (bucket, key).
CREATE UNIQUE INDEX objects_latest ON objects (bucket, key) WHERE latest = 1;
-- Versions of a key, newest last; ListObjectVersions walks it.
CREATE INDEX objects_versions ON objects (bucket, key, seq);
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    headers TEXT NOT NULL,
    meta TEXT NOT NULL,
    tags TEXT NOT NULL,
    algorithm TEXT
) WITHOUT ROWID;
CREATE INDEX uploads_key ON uploads (bucket, key, created_ms);
CREATE TABLE parts (
    upload TEXT NOT NULL,
    number INTEGER NOT NULL,
    file TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    checksum TEXT,
    modified_ms INTEGER NOT NULL,
    PRIMARY KEY (upload, number)
) WITHOUT ROWID;
"#,
    // A multipart object's part sizes (JSON), so `GetObject?partNumber=` can serve one part.
    "ALTER TABLE objects ADD COLUMN part_sizes TEXT;",
    // Each bucket's stored bytes (every version and uploaded part, as S3 bills storage),
    // maintained by triggers in the transaction that changes them: storage is read without a
    // scan of the objects.
    r#"
CREATE TABLE bucket_bytes (bucket TEXT PRIMARY KEY, bytes INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO bucket_bytes (bucket, bytes) SELECT bucket, SUM(size) FROM objects WHERE true GROUP BY bucket;
INSERT INTO bucket_bytes (bucket, bytes)
    SELECT u.bucket, SUM(p.size) FROM parts p JOIN uploads u ON u.id = p.upload WHERE true GROUP BY u.bucket
    ON CONFLICT (bucket) DO UPDATE SET bytes = bytes + excluded.bytes;
CREATE TRIGGER objects_bytes_insert AFTER INSERT ON objects BEGIN
    INSERT INTO bucket_bytes (bucket, bytes) VALUES (NEW.bucket, NEW.size)
        ON CONFLICT (bucket) DO UPDATE SET bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER objects_bytes_delete AFTER DELETE ON objects BEGIN
    UPDATE bucket_bytes SET bytes = bytes - OLD.size WHERE bucket = OLD.bucket;
END;
CREATE TRIGGER parts_bytes_insert AFTER INSERT ON parts BEGIN
    INSERT INTO bucket_bytes (bucket, bytes) SELECT bucket, NEW.size FROM uploads WHERE id = NEW.upload
        ON CONFLICT (bucket) DO UPDATE SET bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER parts_bytes_update AFTER UPDATE OF size ON parts BEGIN
    UPDATE bucket_bytes SET bytes = bytes + NEW.size - OLD.size
        WHERE bucket = (SELECT bucket FROM uploads WHERE id = NEW.upload);
END;
CREATE TRIGGER parts_bytes_delete AFTER DELETE ON parts BEGIN
    UPDATE bucket_bytes SET bytes = bytes - OLD.size
        WHERE bucket = (SELECT bucket FROM uploads WHERE id = OLD.upload);
END;
CREATE TRIGGER buckets_bytes_delete AFTER DELETE ON buckets BEGIN
    DELETE FROM bucket_bytes WHERE bucket = OLD.name;
END;
"#,
];

/// Each bucket's stored bytes (the triggers' maintained counts).
pub(crate) fn stored_bytes(conn: &rusqlite::Connection) -> Result<Vec<(String, u64)>, S3Error> {
    let mut st = conn.prepare_cached("SELECT bucket, bytes FROM bucket_bytes ORDER BY bucket")?;
    let rows = st.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Where bodies live.
#[derive(Debug, Clone)]
pub(crate) struct Files {
    root: PathBuf,
}

impl Files {
    pub fn open(root: &Path) -> Result<Files, std::io::Error> {
        let tmp = root.join("tmp");
        // Whatever is in tmp/ was never committed.
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        std::fs::create_dir_all(root.join("data"))?;
        Ok(Files {
            root: root.to_owned(),
        })
    }

    /// A fresh file id and its temporary path.
    pub fn new_tmp(&self) -> (String, PathBuf) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let path = self.root.join("tmp").join(&id);
        (id, path)
    }

    pub fn data(&self, id: &str) -> PathBuf {
        self.root.join("data").join(&id[..2]).join(id)
    }

    /// Moves a complete temporary file to its place.
    pub fn publish(&self, id: &str, tmp: &Path) -> Result<PathBuf, std::io::Error> {
        let dest = self.data(id);
        match std::fs::rename(tmp, &dest) {
            Ok(()) => Ok(dest),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dest.parent().expect("data/<xx>"))?;
                std::fs::rename(tmp, &dest)?;
                Ok(dest)
            }
            Err(e) => Err(e),
        }
    }

    /// Unlinks files no row names any more; a missing file is not an error.
    pub fn remove(&self, ids: &[String]) {
        for id in ids {
            if let Err(e) = std::fs::remove_file(self.data(id)) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, file = id, "cannot remove an S3 body file");
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    Unversioned,
    Enabled,
    Suspended,
}

impl Versioning {
    pub fn as_str(self) -> &'static str {
        match self {
            Versioning::Unversioned => "",
            Versioning::Enabled => "Enabled",
            Versioning::Suspended => "Suspended",
        }
    }

    pub fn parse(s: &str) -> Versioning {
        match s {
            "Enabled" => Versioning::Enabled,
            "Suspended" => Versioning::Suspended,
            _ => Versioning::Unversioned,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BucketRow {
    pub name: String,
    pub created_ms: i64,
    pub region: String,
    pub versioning: Versioning,
}

pub(crate) fn buckets(conn: &rusqlite::Connection) -> Result<Vec<BucketRow>, S3Error> {
    let mut st = conn
        .prepare_cached("SELECT name, created_ms, region, versioning FROM buckets ORDER BY name")?;
    let rows = st.query_map([], |r| {
        Ok(BucketRow {
            name: r.get(0)?,
            created_ms: r.get(1)?,
            region: r.get(2)?,
            versioning: Versioning::parse(&r.get::<_, String>(3)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One version of an object (or a delete marker) as stored.
#[derive(Debug, Clone, Default)]
pub struct ObjectRow {
    pub seq: i64,
    pub key: String,
    pub version_id: String,
    pub latest: bool,
    pub delete_marker: bool,
    pub file: Option<String>,
    pub size: u64,
    /// The MD5 hex (or multipart form), without quotes.
    pub etag: String,
    pub modified_ms: i64,
    /// Content-Type and the other stored representation headers, lowercase names.
    pub headers: Vec<(String, String)>,
    /// User metadata, names without `x-amz-meta-`, lowercase.
    pub meta: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub checksum: Option<(Algorithm, String)>,
    pub parts: Option<u32>,
    /// A multipart object's part sizes, in order.
    pub part_sizes: Vec<u64>,
}

impl ObjectRow {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn quoted_etag(&self) -> String {
        format!("\"{}\"", self.etag)
    }
}

pub(crate) fn pairs_json(pairs: &[(String, String)]) -> String {
    serde_json::Value::Array(
        pairs
            .iter()
            .map(|(k, v)| serde_json::json!([k, v]))
            .collect(),
    )
    .to_string()
}

pub(crate) fn pairs_from_json(text: &str) -> Vec<(String, String)> {
    serde_json::from_str::<Vec<(String, String)>>(text).unwrap_or_default()
}

fn checksum_text(c: &Option<(Algorithm, String)>) -> Option<String> {
    c.as_ref().map(|(a, v)| format!("{}:{v}", a.name()))
}

pub(crate) fn checksum_from_text(t: Option<String>) -> Option<(Algorithm, String)> {
    let t = t?;
    let (a, v) = t.split_once(':')?;
    Some((Algorithm::parse(a)?, v.to_owned()))
}

const OBJECT_COLUMNS: &str = "seq, key, version_id, latest, delete_marker, file, size, etag, modified_ms, headers, meta, tags, checksum, parts, part_sizes";

fn object_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectRow> {
    Ok(ObjectRow {
        seq: r.get(0)?,
        key: r.get(1)?,
        version_id: r.get(2)?,
        latest: r.get(3)?,
        delete_marker: r.get(4)?,
        file: r.get(5)?,
        size: r.get::<_, i64>(6)? as u64,
        etag: r.get(7)?,
        modified_ms: r.get(8)?,
        headers: pairs_from_json(&r.get::<_, String>(9)?),
        meta: pairs_from_json(&r.get::<_, String>(10)?),
        tags: pairs_from_json(&r.get::<_, String>(11)?),
        checksum: checksum_from_text(r.get(12)?),
        parts: r.get(13)?,
        part_sizes: r
            .get::<_, Option<String>>(14)?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
    })
}

/// The current version of a key (possibly a delete marker).
pub(crate) fn latest(
    conn: &rusqlite::Connection,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectRow>, S3Error> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1 AND key = ?2 AND latest = 1"
    ))?;
    Ok(st
        .query_row(params![bucket, key], object_from_row)
        .optional()?)
}

pub(crate) fn version(
    conn: &rusqlite::Connection,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> Result<Option<ObjectRow>, S3Error> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1 AND key = ?2 AND version_id = ?3"
    ))?;
    Ok(st
        .query_row(params![bucket, key, version_id], object_from_row)
        .optional()?)
}

/// From `start` (inclusive) on, in key order, at most `limit` rows: the current version of
/// each key (delete markers included; the caller skips them), or with `versions` every version,
/// newest first within a key.
pub(crate) fn rows_from(
    conn: &rusqlite::Connection,
    bucket: &str,
    start: &str,
    limit: usize,
    versions: bool,
) -> Result<Vec<ObjectRow>, S3Error> {
    let query = if versions {
        "WHERE bucket = ?1 AND key >= ?2 ORDER BY key, seq DESC LIMIT ?3"
    } else {
        "WHERE bucket = ?1 AND latest = 1 AND key >= ?2 ORDER BY key LIMIT ?3"
    };
    let mut st = conn.prepare_cached(&format!("SELECT {OBJECT_COLUMNS} FROM objects {query}"))?;
    let rows = st.query_map(params![bucket, start, limit as i64], object_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn bucket_is_empty(conn: &rusqlite::Connection, bucket: &str) -> Result<bool, S3Error> {
    let mut st = conn.prepare_cached("SELECT 1 FROM objects WHERE bucket = ?1 LIMIT 1")?;
    let any: Option<i64> = st.query_row(params![bucket], |r| r.get(0)).optional()?;
    let mut st = conn.prepare_cached("SELECT 1 FROM uploads WHERE bucket = ?1 LIMIT 1")?;
    let uploads: Option<i64> = st.query_row(params![bucket], |r| r.get(0)).optional()?;
    Ok(any.is_none() && uploads.is_none())
}

/// A version id S3 would hand out: 32 URL-safe characters.
pub(crate) fn new_version_id() -> String {
    use base64::Engine;
    let mut raw = [0u8; 24];
    raw[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    raw[16..].copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Makes `row` the current version of its key, as the bucket's versioning says: a new version
/// (Enabled) or the `null` version replaced (unversioned, Suspended). Returns the files no
/// longer named.
pub(crate) fn put_version(
    tx: &Transaction<'_>,
    bucket: &str,
    versioning: Versioning,
    row: &mut ObjectRow,
) -> Result<Vec<String>, S3Error> {
    let mut freed = Vec::new();
    row.version_id = match versioning {
        Versioning::Enabled => new_version_id(),
        _ => "null".into(),
    };
    if row.version_id == "null" {
        let mut st = tx.prepare_cached(
            "DELETE FROM objects WHERE bucket = ?1 AND key = ?2 AND version_id = 'null' RETURNING file",
        )?;
        let files = st.query_map(params![bucket, row.key], |r| r.get::<_, Option<String>>(0))?;
        for f in files {
            freed.extend(f?);
        }
    }
    tx.prepare_cached(
        "UPDATE objects SET latest = 0 WHERE bucket = ?1 AND key = ?2 AND latest = 1",
    )?
    .execute(params![bucket, row.key])?;
    tx.prepare_cached(
        "INSERT INTO objects (bucket, key, version_id, latest, delete_marker, file, size, etag, modified_ms, headers, meta, tags, checksum, parts, part_sizes)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        bucket,
        row.key,
        row.version_id,
        row.delete_marker,
        row.file,
        row.size as i64,
        row.etag,
        row.modified_ms,
        pairs_json(&row.headers),
        pairs_json(&row.meta),
        pairs_json(&row.tags),
        checksum_text(&row.checksum),
        row.parts,
        (!row.part_sizes.is_empty()).then(|| serde_json::to_string(&row.part_sizes).unwrap_or_default()),
    ])?;
    row.seq = tx.last_insert_rowid();
    row.latest = true;
    Ok(freed)
}

/// Removes one version; when it was the current one, the newest remaining version becomes
/// current. Returns the removed row.
pub(crate) fn remove_version(
    tx: &Transaction<'_>,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> Result<Option<ObjectRow>, S3Error> {
    let Some(row) = version(tx, bucket, key, version_id)? else {
        return Ok(None);
    };
    tx.prepare_cached("DELETE FROM objects WHERE seq = ?1")?
        .execute(params![row.seq])?;
    if row.latest {
        tx.prepare_cached(
            "UPDATE objects SET latest = 1 WHERE seq = (SELECT max(seq) FROM objects WHERE bucket = ?1 AND key = ?2)",
        )?
        .execute(params![bucket, key])?;
    }
    Ok(Some(row))
}

pub(crate) fn set_tags(
    tx: &Transaction<'_>,
    seq: i64,
    tags: &[(String, String)],
) -> Result<(), S3Error> {
    tx.prepare_cached("UPDATE objects SET tags = ?2 WHERE seq = ?1")?
        .execute(params![seq, pairs_json(tags)])?;
    Ok(())
}

pub(crate) fn config(
    conn: &rusqlite::Connection,
    bucket: &str,
    kind: &str,
) -> Result<Option<String>, S3Error> {
    let mut st =
        conn.prepare_cached("SELECT body FROM bucket_configs WHERE bucket = ?1 AND kind = ?2")?;
    Ok(st
        .query_row(params![bucket, kind], |r| r.get(0))
        .optional()?)
}

pub(crate) fn set_config(
    conn: &rusqlite::Connection,
    bucket: &str,
    kind: &str,
    body: Option<&str>,
) -> Result<(), S3Error> {
    match body {
        Some(b) => conn.execute(
            "INSERT INTO bucket_configs (bucket, kind, body) VALUES (?1, ?2, ?3)
             ON CONFLICT (bucket, kind) DO UPDATE SET body = excluded.body",
            params![bucket, kind, b],
        )?,
        None => conn.execute(
            "DELETE FROM bucket_configs WHERE bucket = ?1 AND kind = ?2",
            params![bucket, kind],
        )?,
    };
    Ok(())
}

/// A multipart upload in progress.
#[derive(Debug, Clone)]
pub struct UploadRow {
    pub id: String,
    pub bucket: String,
    pub key: String,
    pub created_ms: i64,
    pub headers: Vec<(String, String)>,
    pub meta: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub algorithm: Option<Algorithm>,
}

fn upload_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UploadRow> {
    Ok(UploadRow {
        id: r.get(0)?,
        bucket: r.get(1)?,
        key: r.get(2)?,
        created_ms: r.get(3)?,
        headers: pairs_from_json(&r.get::<_, String>(4)?),
        meta: pairs_from_json(&r.get::<_, String>(5)?),
        tags: pairs_from_json(&r.get::<_, String>(6)?),
        algorithm: r
            .get::<_, Option<String>>(7)?
            .and_then(|a| Algorithm::parse(&a)),
    })
}

pub(crate) fn upload(conn: &rusqlite::Connection, id: &str) -> Result<Option<UploadRow>, S3Error> {
    let mut st = conn.prepare_cached(
        "SELECT id, bucket, key, created_ms, headers, meta, tags, algorithm FROM uploads WHERE id = ?1",
    )?;
    Ok(st.query_row(params![id], upload_from_row).optional()?)
}

pub(crate) fn insert_upload(conn: &rusqlite::Connection, u: &UploadRow) -> Result<(), S3Error> {
    conn.execute(
        "INSERT INTO uploads (id, bucket, key, created_ms, headers, meta, tags, algorithm) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            u.id,
            u.bucket,
            u.key,
            u.created_ms,
            pairs_json(&u.headers),
            pairs_json(&u.meta),
            pairs_json(&u.tags),
            u.algorithm.map(Algorithm::name),
        ],
    )?;
    Ok(())
}

/// Uploads of a bucket in key order then start time, from `(key, id)` on.
pub(crate) fn uploads_from(
    conn: &rusqlite::Connection,
    bucket: &str,
    start_key: &str,
    limit: usize,
) -> Result<Vec<UploadRow>, S3Error> {
    let mut st = conn.prepare_cached(
        "SELECT id, bucket, key, created_ms, headers, meta, tags, algorithm FROM uploads
         WHERE bucket = ?1 AND key >= ?2 ORDER BY key, created_ms, id LIMIT ?3",
    )?;
    let rows = st.query_map(params![bucket, start_key, limit as i64], upload_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[derive(Debug, Clone)]
pub struct PartRow {
    pub number: u32,
    pub file: String,
    pub size: u64,
    pub etag: String,
    pub checksum: Option<String>,
    pub modified_ms: i64,
}

pub(crate) fn parts(conn: &rusqlite::Connection, upload: &str) -> Result<Vec<PartRow>, S3Error> {
    let mut st = conn.prepare_cached(
        "SELECT number, file, size, etag, checksum, modified_ms FROM parts WHERE upload = ?1 ORDER BY number",
    )?;
    let rows = st.query_map(params![upload], |r| {
        Ok(PartRow {
            number: r.get(0)?,
            file: r.get(1)?,
            size: r.get::<_, i64>(2)? as u64,
            etag: r.get(3)?,
            checksum: r.get(4)?,
            modified_ms: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records a part, replacing one with the same number; returns the replaced part's file.
pub(crate) fn put_part(
    tx: &Transaction<'_>,
    upload: &str,
    p: &PartRow,
) -> Result<Option<String>, S3Error> {
    let old: Option<String> = tx
        .prepare_cached("SELECT file FROM parts WHERE upload = ?1 AND number = ?2")?
        .query_row(params![upload, p.number], |r| r.get(0))
        .optional()?;
    tx.prepare_cached(
        "INSERT INTO parts (upload, number, file, size, etag, checksum, modified_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (upload, number) DO UPDATE SET file = excluded.file, size = excluded.size, etag = excluded.etag,
           checksum = excluded.checksum, modified_ms = excluded.modified_ms",
    )?
    .execute(params![
        upload,
        p.number,
        p.file,
        p.size as i64,
        p.etag,
        p.checksum,
        p.modified_ms
    ])?;
    Ok(old)
}

/// Forgets an upload and its parts; returns the parts' files.
pub(crate) fn drop_upload(tx: &Transaction<'_>, upload: &str) -> Result<Vec<String>, S3Error> {
    let files = parts(tx, upload)?.into_iter().map(|p| p.file).collect();
    tx.execute("DELETE FROM parts WHERE upload = ?1", params![upload])?;
    tx.execute("DELETE FROM uploads WHERE id = ?1", params![upload])?;
    Ok(files)
}
