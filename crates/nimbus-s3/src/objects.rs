//! Object operations: put, get, head, delete (one or many), copy, tagging.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode};

use crate::body;
use crate::buckets::*;
use crate::error::S3Error;
use crate::http::*;
use crate::names;
use crate::notify::{self, ObjectEvent};
use crate::range::{self, Condition, Conditions};
use crate::state::{self, ObjectRow, Versioning};
use crate::xml;
use crate::{http_date, iso_time, now_ms, BucketState, Inner};

/// Header or tag names and values, in order.
pub(crate) type Pairs = Vec<(String, String)>;

/// The representation headers S3 stores with an object and answers with.
pub(crate) const STORED_HEADERS: &[&str] = &[
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "x-amz-website-redirect-location",
];

pub(crate) fn object_headers(h: &HeaderMap) -> Result<(Pairs, Pairs), S3Error> {
    let mut headers = Vec::new();
    for name in STORED_HEADERS {
        if let Some(v) = h.get(*name).and_then(|v| v.to_str().ok()) {
            let v = if *name == "content-encoding" {
                // aws-chunked is how the body travelled, not what it is.
                let kept: Vec<&str> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty() && *p != "aws-chunked")
                    .collect();
                if kept.is_empty() {
                    continue;
                }
                kept.join(",")
            } else {
                v.to_owned()
            };
            headers.push((name.to_string(), v));
        }
    }
    if !headers.iter().any(|(n, _)| n == "content-type") {
        headers.insert(0, ("content-type".into(), "binary/octet-stream".into()));
    }
    let mut meta = Vec::new();
    for (name, v) in h {
        if let Some(m) = name.as_str().strip_prefix("x-amz-meta-") {
            meta.push((
                m.to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ));
        }
    }
    names::check_metadata(&meta)?;
    Ok((headers, meta))
}

pub(crate) fn version_header(a: &mut Answer, versioning: Versioning, version_id: &str) {
    if versioning != Versioning::Unversioned {
        a.set("x-amz-version-id", version_id);
    }
}

pub(crate) fn notify(inner: &Inner, bucket: &BucketState, event: ObjectEvent) {
    if bucket.notification.rules.is_empty() && !bucket.notification.eventbridge {
        return;
    }
    if let Some(hub) = inner.hub.get() {
        notify::deliver(
            hub,
            &bucket.notification,
            &event,
            &inner.config.region,
            &inner.config.account,
        );
    }
}

pub(crate) fn event(
    request_id: &str,
    name: &'static str,
    bucket: &str,
    row: &ObjectRow,
    versioning: Versioning,
) -> ObjectEvent {
    let created = !row.delete_marker && name.starts_with("ObjectCreated");
    ObjectEvent {
        name,
        bucket: bucket.to_owned(),
        key: row.key.clone(),
        size: created.then_some(row.size),
        etag: created.then(|| row.etag.clone()),
        version_id: (versioning != Versioning::Unversioned).then(|| row.version_id.clone()),
        sequencer: row.seq,
        request_id: request_id.to_owned(),
        source_ip: "127.0.0.1".into(),
        time_ms: row.modified_ms,
    }
}

/// The conditional headers of a read (`prefix` "") or of a copy's source
/// (`x-amz-copy-source-`).
fn conditions<'a>(req: &'a Req, prefix: &str) -> Conditions<'a> {
    let h = |name: &str| req.header(&format!("{prefix}{name}"));
    Conditions {
        if_match: h("if-match"),
        if_none_match: h("if-none-match"),
        if_modified_since: h("if-modified-since"),
        if_unmodified_since: h("if-unmodified-since"),
    }
}

/// Notifies what a write did to `row`, if the bucket has destinations for it.
pub(crate) fn announce(
    inner: &Inner,
    bucket: &str,
    request_id: &str,
    name: &'static str,
    row: &ObjectRow,
    versioning: Versioning,
) {
    if let Some(b) = inner.bucket(bucket) {
        notify(inner, &b, event(request_id, name, bucket, row, versioning));
    }
}

/// Conditional writes (`If-None-Match: *`, `If-Match`) checked against the current version
/// inside the write's transaction.
pub(crate) fn write_condition(req: &Req) -> (bool, Option<String>) {
    (
        req.header("if-none-match").is_some_and(|v| v.trim() == "*"),
        req.header("if-match").map(str::to_owned),
    )
}

pub(crate) fn check_write_condition(
    tx: &rusqlite::Transaction<'_>,
    bucket: &str,
    key: &str,
    cond: &(bool, Option<String>),
) -> Result<(), S3Error> {
    if !cond.0 && cond.1.is_none() {
        return Ok(());
    }
    let current = state::latest(tx, bucket, key)?.filter(|r| !r.delete_marker);
    if cond.0 && current.is_some() {
        return Err(range::precondition_failed("If-None-Match"));
    }
    if let Some(want) = &cond.1 {
        match current {
            None => return Err(S3Error::no_such_key(key)),
            Some(r) if want.trim() != "*" && want.trim().trim_matches('"') != r.etag => {
                return Err(range::precondition_failed("If-Match"))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Commits `row` as the key's new current version and removes what it replaced.
pub(crate) async fn commit_object(
    inner: &Arc<Inner>,
    bucket: &str,
    row: ObjectRow,
    cond: (bool, Option<String>),
    also: Option<String>,
) -> Result<(ObjectRow, Versioning), S3Error> {
    let state = inner
        .bucket(bucket)
        .ok_or_else(|| S3Error::no_such_bucket(bucket))?;
    let versioning = state.versioning;
    let b = bucket.to_owned();
    let new_file = row.file.clone();
    let committed = inner
        .db
        .write(move |tx| {
            let mut row = row;
            let r = (|| {
                check_write_condition(tx, &b, &row.key, &cond)?;
                let mut freed = state::put_version(tx, &b, versioning, &mut row)?;
                if let Some(upload) = &also {
                    freed.extend(state::drop_upload(tx, upload)?);
                }
                Ok::<_, S3Error>(freed)
            })();
            Ok(r.map(|freed| (row, freed)))
        })
        .await?;
    match committed {
        Ok((row, freed)) => {
            inner.files.remove(&freed);
            Ok((row, versioning))
        }
        Err(e) => {
            if let Some(f) = new_file {
                inner.files.remove(&[f]);
            }
            Err(e)
        }
    }
}

pub(crate) async fn put_object(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    key: &str,
    body: Body,
) -> Result<Answer, S3Error> {
    let (headers, meta) = object_headers(&req.headers)?;
    let tags = match req.header("x-amz-tagging") {
        Some(t) => names::parse_tagging_header(t)?,
        None => Vec::new(),
    };
    let expect = body::expect(&req.headers)?;
    let stored = body::receive(&inner.files, body, &expect, MAX_PUT).await?;
    let size = stored.digested.len;
    let row = ObjectRow {
        key: key.to_owned(),
        file: Some(stored.file),
        size,
        etag: stored.digested.md5_hex(),
        modified_ms: now_ms(),
        headers,
        meta,
        tags,
        checksum: stored.digested.checksum.clone(),
        ..ObjectRow::default()
    };
    let (row, versioning) = commit_object(inner, bucket, row, write_condition(req), None).await?;
    if let Some(t) = inner.telemetry.get() {
        t.record_s3_bytes(bucket, size, 0);
    }
    let mut a = Answer::new(StatusCode::OK);
    a.set("etag", &row.quoted_etag());
    a.set("x-amz-server-side-encryption", "AES256");
    version_header(&mut a, versioning, &row.version_id);
    if let Some((alg, v)) = &row.checksum {
        a.set(alg.header(), v);
    }
    announce(
        inner,
        bucket,
        &req.request_id,
        "ObjectCreated:Put",
        &row,
        versioning,
    );
    Ok(a)
}

/// Stores `data` as an object, for other services (a Step Functions `ResultWriter`, an
/// `aws-sdk:s3:putObject` task), with the notifications a PUT gets.
pub(crate) async fn put_bytes(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    data: Vec<u8>,
    content_type: &str,
) -> Result<ObjectRow, S3Error> {
    names::check_key(key)?;
    if inner.bucket(bucket).is_none() {
        return Err(S3Error::no_such_bucket(bucket));
    }
    let size = data.len() as u64;
    let (file, digested) = body::write_file(&inner.files, move |into| {
        std::fs::write(into, &data)?;
        let mut d = crate::checksum::Digests::new(None);
        d.update(&data);
        Ok(d.finish())
    })
    .await?;
    let row = ObjectRow {
        key: key.to_owned(),
        file: Some(file),
        size,
        etag: digested.md5_hex(),
        modified_ms: now_ms(),
        headers: vec![("content-type".into(), content_type.to_owned())],
        ..ObjectRow::default()
    };
    let (row, versioning) = commit_object(inner, bucket, row, (false, None), None).await?;
    announce(
        inner,
        bucket,
        &crate::http::request_id(),
        "ObjectCreated:Put",
        &row,
        versioning,
    );
    Ok(row)
}

/// Deletes a key as `DeleteObject` without a version does, for other services.
pub(crate) async fn delete_key(inner: &Arc<Inner>, bucket: &str, key: &str) -> Result<(), S3Error> {
    delete_one(inner, &crate::http::request_id(), bucket, key, None).await?;
    Ok(())
}

/// The bytes of part `n` (`GetObject` / `HeadObject` with `partNumber`): a multipart object's
/// part, or part 1 of a single-part object, which is all of it.
pub(crate) fn part_span(row: &ObjectRow, n: &str) -> Result<(u64, u64), S3Error> {
    let bad = || {
        S3Error::invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive",
            "partNumber",
            n,
        )
    };
    let n: usize = n
        .parse()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(bad)?;
    let sizes: Vec<u64> = match row.parts {
        Some(_) if !row.part_sizes.is_empty() => row.part_sizes.clone(),
        _ => vec![row.size],
    };
    if n > sizes.len() {
        return Err(S3Error::new(
            416,
            "InvalidPartNumber",
            "The requested partnumber is not satisfiable",
        )
        .with("PartNumberRequested", n.to_string())
        .with("ActualPartCount", sizes.len().to_string()));
    }
    let start: u64 = sizes[..n - 1].iter().sum();
    let len = sizes[n - 1];
    if len == 0 {
        return Err(S3Error::new(
            416,
            "InvalidRange",
            "The requested range is not satisfiable",
        ));
    }
    Ok((start, start + len - 1))
}

/// The version a read names (`?versionId=`), or the current one; S3's errors for neither.
pub(crate) fn find_object(
    inner: &Inner,
    req: &Req,
    bucket: &str,
    key: &str,
) -> Result<ObjectRow, S3Error> {
    let conn = inner.db.lock();
    match req.q("versionId") {
        Some(v) => {
            let row = state::version(&conn, bucket, key, v)?;
            match row {
                Some(r) if r.delete_marker => Err(S3Error::new(
                    405,
                    "MethodNotAllowed",
                    "The specified method is not allowed against this resource.",
                )
                .with("Method", req.method.as_str())
                .with("ResourceType", "DeleteMarker")),
                Some(r) => Ok(r),
                None => Err(if v.len() > 64 || v.is_empty() {
                    S3Error::invalid_argument("Invalid version id specified", "versionId", v)
                } else {
                    S3Error::no_such_version(key, v)
                }),
            }
        }
        None => match state::latest(&conn, bucket, key)? {
            Some(r) if !r.delete_marker => Ok(r),
            _ => Err(S3Error::no_such_key(key)),
        },
    }
}

pub(crate) fn describe_object(a: &mut Answer, row: &ObjectRow, versioning: Versioning, req: &Req) {
    a.set("etag", &row.quoted_etag());
    a.set("last-modified", &http_date(row.modified_ms));
    a.set("accept-ranges", "bytes");
    a.set("x-amz-server-side-encryption", "AES256");
    for (name, v) in &row.headers {
        let over = format!("response-{name}");
        let v = req.q(&over).unwrap_or(v);
        a.set(name, v);
    }
    for name in [
        "cache-control",
        "content-disposition",
        "content-encoding",
        "content-language",
        "expires",
    ] {
        if row.header(name).is_none() {
            if let Some(v) = req.q(&format!("response-{name}")) {
                a.set(name, v);
            }
        }
    }
    for (k, v) in &row.meta {
        a.set(&format!("x-amz-meta-{k}"), v);
    }
    if !row.tags.is_empty() {
        a.set("x-amz-tagging-count", &row.tags.len().to_string());
    }
    if versioning != Versioning::Unversioned || row.version_id != "null" {
        a.set("x-amz-version-id", &row.version_id);
    }
}

pub(crate) async fn get_object(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    key: &str,
) -> Result<Answer, S3Error> {
    let versioning = inner
        .bucket(bucket)
        .map(|b| b.versioning)
        .unwrap_or(Versioning::Unversioned);
    let row = find_object(inner, req, bucket, key)?;
    let cond = conditions(req, "");
    match range::evaluate(&cond, &row.etag, (row.modified_ms / 1000) as u64) {
        Condition::Proceed => {}
        Condition::NotModified => {
            let mut a = Answer::new(StatusCode::NOT_MODIFIED);
            a.set("etag", &row.quoted_etag());
            a.set("last-modified", &http_date(row.modified_ms));
            return Ok(a);
        }
        Condition::Failed(h) => return Err(range::precondition_failed(h)),
    }
    let span = match req.q("partNumber") {
        None => range::resolve(req.header("range"), row.size)?,
        Some(n) => Some(part_span(&row, n)?),
    };
    let mut a = Answer::new(if span.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    });
    describe_object(&mut a, &row, versioning, req);
    if req.q("partNumber").is_some() {
        a.set("x-amz-mp-parts-count", &row.parts.unwrap_or(1).to_string());
    }
    let (start, len) = match span {
        Some((s, e)) => {
            a.set("content-range", &format!("bytes {s}-{e}/{}", row.size));
            (s, e - s + 1)
        }
        None => {
            if req
                .header("x-amz-checksum-mode")
                .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"))
            {
                if let Some((alg, v)) = &row.checksum {
                    a.set(alg.header(), v);
                    a.set(
                        "x-amz-checksum-type",
                        if v.contains('-') {
                            "COMPOSITE"
                        } else {
                            "FULL_OBJECT"
                        },
                    );
                }
            }
            (0, row.size)
        }
    };
    a.set("content-length", &len.to_string());
    if req.method == Method::HEAD || len == 0 {
        return Ok(a);
    }
    let file = row
        .file
        .as_deref()
        .ok_or_else(|| S3Error::internal("object without a body file"))?;
    let path = inner.files.data(file);
    a.bytes_out = len;
    if len <= INLINE_READ {
        use std::io::{Read, Seek};
        let mut f = std::fs::File::open(&path)?;
        f.seek(std::io::SeekFrom::Start(start))?;
        let mut buf = vec![0; len as usize];
        f.read_exact(&mut buf)?;
        a.body = Body::from(buf);
    } else {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut f = tokio::fs::File::open(&path).await?;
        f.seek(std::io::SeekFrom::Start(start)).await?;
        let stream = tokio_util::io::ReaderStream::with_capacity(f.take(len), 256 << 10);
        a.body = Body::from_stream(stream);
    }
    Ok(a)
}

pub(crate) async fn delete_object(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    key: &str,
) -> Result<Answer, S3Error> {
    let (outcome, versioning) = delete_one(
        inner,
        &req.request_id,
        bucket,
        key,
        req.q("versionId").map(str::to_owned),
    )
    .await?;
    let mut a = Answer::new(StatusCode::NO_CONTENT);
    if let Some(d) = outcome {
        if versioning != Versioning::Unversioned || d.version_id != "null" {
            a.set("x-amz-version-id", &d.version_id);
        }
        if d.delete_marker {
            a.set("x-amz-delete-marker", "true");
        }
    }
    Ok(a)
}

/// Deletes a key (a delete marker when versioning is on) or one version; the removed or
/// created row, if any.
pub(crate) async fn delete_one(
    inner: &Arc<Inner>,
    request_id: &str,
    bucket: &str,
    key: &str,
    version_id: Option<String>,
) -> Result<(Option<ObjectRow>, Versioning), S3Error> {
    delete_as(inner, request_id, bucket, key, version_id, None).await
}

/// [`delete_one`], or with `expiring` (the sequence number of the version a lifecycle rule
/// expired) a lifecycle expiration: it does nothing if that version is no longer the one it
/// names (a newer PUT won), and notifies `LifecycleExpiration:*` events.
pub(crate) async fn delete_as(
    inner: &Arc<Inner>,
    request_id: &str,
    bucket: &str,
    key: &str,
    version_id: Option<String>,
    expiring: Option<i64>,
) -> Result<(Option<ObjectRow>, Versioning), S3Error> {
    names::check_key(key)?;
    let state = inner
        .bucket(bucket)
        .ok_or_else(|| S3Error::no_such_bucket(bucket))?;
    let versioning = state.versioning;
    let (b, k) = (bucket.to_owned(), key.to_owned());
    let (row, freed, event_name) = inner
        .db
        .write(move |tx| {
            if let Some(seq) = expiring {
                let target = match &version_id {
                    Some(v) => state::version(tx, &b, &k, v),
                    None => state::latest(tx, &b, &k),
                };
                match target {
                    Ok(Some(r)) if r.seq == seq && !(version_id.is_none() && r.delete_marker) => {}
                    Ok(_) => return Ok(Ok((None, Vec::new(), ""))),
                    Err(e) => return Ok(Err(e)),
                }
            }
            let r = (|| match version_id {
                Some(v) => {
                    let row = state::remove_version(tx, &b, &k, &v)?;
                    let freed: Vec<String> = row.iter().filter_map(|r| r.file.clone()).collect();
                    Ok::<_, S3Error>((row, freed, "ObjectRemoved:Delete"))
                }
                // Enabled: a new marker version; Suspended: the marker is the `null` version.
                None if versioning != Versioning::Unversioned => {
                    let mut marker = ObjectRow {
                        key: k.clone(),
                        delete_marker: true,
                        modified_ms: now_ms(),
                        ..ObjectRow::default()
                    };
                    let freed = state::put_version(tx, &b, versioning, &mut marker)?;
                    Ok((Some(marker), freed, "ObjectRemoved:DeleteMarkerCreated"))
                }
                None => {
                    let row = state::remove_version(tx, &b, &k, "null")?;
                    let freed: Vec<String> = row.iter().filter_map(|r| r.file.clone()).collect();
                    Ok((row, freed, "ObjectRemoved:Delete"))
                }
            })();
            Ok(r)
        })
        .await??;
    inner.files.remove(&freed);
    let event_name = match (expiring, event_name) {
        (Some(_), "ObjectRemoved:Delete") => "LifecycleExpiration:Delete",
        (Some(_), "ObjectRemoved:DeleteMarkerCreated") => "LifecycleExpiration:DeleteMarkerCreated",
        (_, name) => name,
    };
    if let Some(r) = &row {
        let mut e = event(request_id, event_name, bucket, r, versioning);
        e.time_ms = now_ms();
        notify(inner, &state, e);
    }
    Ok((row, versioning))
}

pub(crate) async fn delete_objects(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    body: Body,
) -> Result<Answer, S3Error> {
    let doc = body::read_small(body, &req.headers, MAX_XML).await?;
    let d = xml::parse(&doc, "Delete")?;
    let quiet = xml::child_text(d.root_element(), "Quiet") == Some("true");
    let objects: Vec<(String, Option<String>)> = xml::children(d.root_element(), "Object")
        .map(|o| {
            Ok((
                xml::child_text(o, "Key")
                    .ok_or_else(S3Error::malformed_xml)?
                    .to_owned(),
                xml::child_text(o, "VersionId").map(str::to_owned),
            ))
        })
        .collect::<Result<_, S3Error>>()?;
    if objects.is_empty() || objects.len() > 1000 {
        return Err(S3Error::malformed_xml());
    }
    let mut out = String::new();
    xml::root(&mut out, "DeleteResult");
    for (key, version) in objects {
        match delete_one(inner, &req.request_id, bucket, &key, version.clone()).await {
            Ok((row, _)) => {
                if quiet {
                    continue;
                }
                out.push_str("<Deleted>");
                xml::element(&mut out, "Key", &key);
                if let Some(v) = &version {
                    xml::element(&mut out, "VersionId", v);
                }
                if let Some(r) = row.filter(|r| r.delete_marker) {
                    xml::element(&mut out, "DeleteMarker", "true");
                    xml::element(&mut out, "DeleteMarkerVersionId", &r.version_id);
                }
                out.push_str("</Deleted>");
            }
            Err(e) => {
                out.push_str("<Error>");
                xml::element(&mut out, "Key", &key);
                if let Some(v) = &version {
                    xml::element(&mut out, "VersionId", v);
                }
                xml::element(&mut out, "Code", e.code);
                xml::element(&mut out, "Message", &e.message);
                out.push_str("</Error>");
            }
        }
    }
    out.push_str("</DeleteResult>");
    Ok(Answer::xml(out))
}

/// `x-amz-copy-source: /bucket/key?versionId=...` (URL-encoded, leading slash optional).
pub(crate) fn copy_source(
    req: &Req,
    header: &'static str,
) -> Result<(String, String, Option<String>), S3Error> {
    let raw = req.header(header).unwrap_or("");
    let bad = || S3Error::invalid_argument("Invalid copy source object key", header, raw);
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    let path = percent_decode(path.trim_start_matches('/')).ok_or_else(bad)?;
    let (b, k) = path.split_once('/').ok_or_else(bad)?;
    if k.is_empty() {
        return Err(bad());
    }
    let version = form_urlencoded::parse(query.as_bytes())
        .find(|(n, _)| n == "versionId")
        .map(|(_, v)| v.into_owned());
    Ok((b.to_owned(), k.to_owned(), version))
}

pub(crate) fn source_row(
    inner: &Inner,
    req: &Req,
    header: &'static str,
) -> Result<ObjectRow, S3Error> {
    let (sb, sk, sv) = copy_source(req, header)?;
    if inner.bucket(&sb).is_none() {
        return Err(S3Error::no_such_bucket(&sb));
    }
    let conn = inner.db.lock();
    let row = match &sv {
        Some(v) => {
            state::version(&conn, &sb, &sk, v)?.ok_or_else(|| S3Error::no_such_version(&sk, v))?
        }
        None => state::latest(&conn, &sb, &sk)?
            .filter(|r| !r.delete_marker)
            .ok_or_else(|| S3Error::no_such_key(&sk))?,
    };
    drop(conn);
    let cond = conditions(req, "x-amz-copy-source-");
    match range::evaluate(&cond, &row.etag, (row.modified_ms / 1000) as u64) {
        Condition::Proceed => Ok(row),
        // For copies a failed If-None-Match / If-Modified-Since is 412 as well.
        Condition::NotModified => Err(range::precondition_failed(
            "x-amz-copy-source-If-None-Match",
        )),
        Condition::Failed(h) => Err(range::precondition_failed(h)),
    }
}

/// A new file with the same bytes: a hard link (bodies are never written after they are
/// published), or a copy where links are not possible.
pub(crate) fn clone_file(inner: &Inner, file: &str) -> Result<String, S3Error> {
    let (id, tmp) = inner.files.new_tmp();
    let src = inner.files.data(file);
    if std::fs::hard_link(&src, &tmp).is_err() {
        std::fs::copy(&src, &tmp)?;
    }
    inner.files.publish(&id, &tmp)?;
    Ok(id)
}

pub(crate) async fn copy_object(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    key: &str,
) -> Result<Answer, S3Error> {
    let src = source_row(inner, req, "x-amz-copy-source")?;
    let replace_meta = req
        .header("x-amz-metadata-directive")
        .is_some_and(|d| d.eq_ignore_ascii_case("REPLACE"));
    let replace_tags = req
        .header("x-amz-tagging-directive")
        .is_some_and(|d| d.eq_ignore_ascii_case("REPLACE"));
    let (sb, sk, _) = copy_source(req, "x-amz-copy-source")?;
    if sb == bucket && sk == key && !replace_meta && req.q("versionId").is_none() {
        return Err(S3Error::invalid_request("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."));
    }
    let (headers, meta) = if replace_meta {
        object_headers(&req.headers)?
    } else {
        (src.headers.clone(), src.meta.clone())
    };
    let tags = if replace_tags {
        names::parse_tagging_header(req.header("x-amz-tagging").unwrap_or(""))?
    } else {
        src.tags.clone()
    };
    let file = match &src.file {
        Some(f) => Some(clone_file(inner, f)?),
        None => None,
    };
    let row = ObjectRow {
        key: key.to_owned(),
        file,
        size: src.size,
        etag: src.etag.clone(),
        modified_ms: now_ms(),
        headers,
        meta,
        tags,
        checksum: src.checksum.clone(),
        parts: src.parts,
        part_sizes: src.part_sizes.clone(),
        ..ObjectRow::default()
    };
    let (row, versioning) = commit_object(inner, bucket, row, (false, None), None).await?;
    let mut out = String::new();
    xml::root(&mut out, "CopyObjectResult");
    xml::element(&mut out, "LastModified", &iso_time(row.modified_ms));
    etag_and_checksum(&mut out, &row);
    out.push_str("</CopyObjectResult>");
    let mut a = Answer::xml(out);
    version_header(&mut a, versioning, &row.version_id);
    if src.version_id != "null" {
        a.set("x-amz-copy-source-version-id", &src.version_id);
    }
    announce(
        inner,
        bucket,
        &req.request_id,
        "ObjectCreated:Copy",
        &row,
        versioning,
    );
    Ok(a)
}

/// The `ETag` and checksum elements of a copy's or a completed upload's result.
pub(crate) fn etag_and_checksum(out: &mut String, row: &ObjectRow) {
    xml::element(out, "ETag", &row.quoted_etag());
    if let Some((alg, v)) = &row.checksum {
        xml::element(out, alg.element(), v);
    }
}

pub(crate) fn get_object_tagging(
    inner: &Inner,
    req: &Req,
    bucket: &str,
    key: &str,
) -> Result<Answer, S3Error> {
    let row = find_object(inner, req, bucket, key)?;
    let mut a = Answer::xml(tagging_xml(&row.tags));
    if row.version_id != "null" {
        a.set("x-amz-version-id", &row.version_id);
    }
    Ok(a)
}

pub(crate) async fn set_object_tags(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    key: &str,
    tags: Vec<(String, String)>,
    event_name: &'static str,
) -> Result<Answer, S3Error> {
    let row = find_object(inner, req, bucket, key)?;
    let seq = row.seq;
    inner
        .db
        .write(move |tx| Ok(state::set_tags(tx, seq, &tags)))
        .await??;
    let mut a = Answer::new(if event_name == "ObjectTagging:Put" {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    });
    if row.version_id != "null" {
        a.set("x-amz-version-id", &row.version_id);
    }
    if let Some(b) = inner.bucket(bucket) {
        let mut e = event(&req.request_id, event_name, bucket, &row, b.versioning);
        e.time_ms = now_ms();
        notify(inner, &b, e);
    }
    Ok(a)
}

pub(crate) async fn put_object_tagging(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    key: &str,
    body: Body,
) -> Result<Answer, S3Error> {
    let doc = body::read_small(body, &req.headers, MAX_XML).await?;
    let tags = parse_tagging(&doc, 10)?;
    set_object_tags(inner, req, bucket, key, tags, "ObjectTagging:Put").await
}

pub(crate) async fn delete_object_tagging(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    key: &str,
) -> Result<Answer, S3Error> {
    set_object_tags(inner, req, bucket, key, Vec::new(), "ObjectTagging:Delete").await
}
