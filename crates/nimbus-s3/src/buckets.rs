//! Bucket operations: create, delete, list, versioning, tagging, notification configuration,
//! and the listings of a bucket's objects, versions and uploads.

use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;

use crate::body;
use crate::error::S3Error;
use crate::http::*;
use crate::list;
use crate::names;
use crate::notify::Notification;
use crate::state::{self, ObjectRow, Versioning};
use crate::xml;
use crate::{iso_time, now_ms, BucketState, Inner};

pub(crate) fn list_buckets(inner: &Inner) -> Result<Answer, S3Error> {
    let rows = state::buckets(&inner.db.lock())?;
    let mut out = String::new();
    xml::root(&mut out, "ListAllMyBucketsResult");
    owner(&mut out, inner);
    out.push_str("<Buckets>");
    for b in rows {
        out.push_str("<Bucket>");
        xml::element(&mut out, "Name", &b.name);
        xml::element(&mut out, "CreationDate", &iso_time(b.created_ms));
        xml::element(&mut out, "BucketRegion", &b.region);
        out.push_str("</Bucket>");
    }
    out.push_str("</Buckets></ListAllMyBucketsResult>");
    Ok(Answer::xml(out))
}

pub(crate) async fn create_bucket(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    body: Body,
) -> Result<Answer, S3Error> {
    names::check_bucket(bucket)?;
    let doc = body::read_small(body, &req.headers, MAX_XML).await?;
    if !doc.trim().is_empty() {
        let d = xml::parse(&doc, "CreateBucketConfiguration")?;
        if let Some(loc) = xml::child_text(d.root_element(), "LocationConstraint") {
            if loc != inner.config.region && !(loc.is_empty() && inner.config.region == "us-east-1")
            {
                return Err(S3Error::new(
                    400,
                    "IllegalLocationConstraintException",
                    format!("The {loc} location constraint is incompatible for the region specific endpoint this request was sent to."),
                ));
            }
        }
    }
    if inner.bucket(bucket).is_some() {
        // us-east-1 answers 200 to the owner creating its bucket again; other regions 409.
        if inner.config.region != "us-east-1" {
            return Err(S3Error::new(
                409,
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already own it.",
            )
            .with("BucketName", bucket));
        }
    } else {
        inner.db.lock().execute(
            "INSERT INTO buckets (name, created_ms, region) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
            rusqlite::params![bucket, now_ms(), inner.config.region],
        )?;
        inner.buckets.write().unwrap().insert(
            bucket.to_owned(),
            BucketState {
                versioning: Versioning::Unversioned,
                notification: Arc::default(),
                cors: Arc::default(),
            },
        );
    }
    let mut a = Answer::new(StatusCode::OK);
    a.set("location", &format!("/{bucket}"));
    Ok(a)
}

pub(crate) fn delete_bucket(inner: &Inner, bucket: &str) -> Result<Answer, S3Error> {
    let conn = inner.db.lock();
    if !state::bucket_is_empty(&conn, bucket)? {
        return Err(S3Error::new(
            409,
            "BucketNotEmpty",
            "The bucket you tried to delete is not empty",
        )
        .with("BucketName", bucket));
    }
    conn.execute("DELETE FROM buckets WHERE name = ?1", [bucket])?;
    conn.execute("DELETE FROM bucket_configs WHERE bucket = ?1", [bucket])?;
    inner.buckets.write().unwrap().remove(bucket);
    Ok(Answer::new(StatusCode::NO_CONTENT))
}

pub(crate) async fn put_versioning(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    body: Body,
) -> Result<Answer, S3Error> {
    let doc = body::read_small(body, &req.headers, MAX_XML).await?;
    let d = xml::parse(&doc, "VersioningConfiguration")?;
    let v = match xml::child_text(d.root_element(), "Status") {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        _ => return Err(S3Error::malformed_xml()),
    };
    inner.db.lock().execute(
        "UPDATE buckets SET versioning = ?2 WHERE name = ?1",
        rusqlite::params![bucket, v.as_str()],
    )?;
    if let Some(b) = inner.buckets.write().unwrap().get_mut(bucket) {
        b.versioning = v;
    }
    Ok(Answer::new(StatusCode::OK))
}

/// `<Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging>`.
pub(crate) fn parse_tagging(doc: &str, max: usize) -> Result<Vec<(String, String)>, S3Error> {
    let d = xml::parse(doc, "Tagging")?;
    let set = xml::children(d.root_element(), "TagSet")
        .next()
        .ok_or_else(S3Error::malformed_xml)?;
    let tags: Vec<(String, String)> = xml::children(set, "Tag")
        .map(|t| {
            Ok((
                xml::child_text(t, "Key")
                    .ok_or_else(S3Error::malformed_xml)?
                    .to_owned(),
                xml::child_text(t, "Value").unwrap_or_default().to_owned(),
            ))
        })
        .collect::<Result<_, S3Error>>()?;
    names::check_tags(&tags, max)?;
    Ok(tags)
}

pub(crate) fn tagging_xml(tags: &[(String, String)]) -> String {
    let mut out = String::new();
    xml::root(&mut out, "Tagging");
    out.push_str("<TagSet>");
    for (k, v) in tags {
        out.push_str("<Tag>");
        xml::element(&mut out, "Key", k);
        xml::element(&mut out, "Value", v);
        out.push_str("</Tag>");
    }
    out.push_str("</TagSet></Tagging>");
    out
}

pub(crate) async fn put_bucket_tagging(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    body: Body,
) -> Result<Answer, S3Error> {
    let doc = body::read_small(body, &req.headers, MAX_XML).await?;
    let tags = parse_tagging(&doc, 50)?;
    state::set_config(
        &inner.db.lock(),
        bucket,
        "tagging",
        Some(&tagging_xml(&tags)),
    )?;
    Ok(Answer::new(StatusCode::NO_CONTENT))
}

pub(crate) async fn put_notification(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    body: Body,
) -> Result<Answer, S3Error> {
    let doc = body::read_small(body, &req.headers, MAX_XML).await?;
    let n = Notification::from_xml(&doc)?;
    let stored = (n != Notification::default()).then(|| n.to_xml());
    state::set_config(&inner.db.lock(), bucket, "notification", stored.as_deref())?;
    if let Some(hub) = inner.hub.get() {
        crate::notify::send_test_event(hub, &n, bucket, &req.request_id, now_ms());
    }
    if let Some(b) = inner.buckets.write().unwrap().get_mut(bucket) {
        b.notification = Arc::new(n);
    }
    Ok(Answer::new(StatusCode::OK))
}

// ---------------------------------------------------------------- listings

pub(crate) fn max_keys(req: &Req, name: &'static str) -> Result<usize, S3Error> {
    match req.q(name) {
        None => Ok(1000),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok((n as usize).min(1000)),
            _ => Err(S3Error::invalid_argument(
                "Provided max-keys not an integer or within integer range",
                name,
                v,
            )),
        },
    }
}

pub(crate) fn object_contents(out: &mut String, o: &ObjectRow, enc: &dyn Fn(&str) -> String) {
    xml::element(out, "Key", &enc(&o.key));
    xml::element(out, "LastModified", &iso_time(o.modified_ms));
    xml::element(out, "ETag", &o.quoted_etag());
    xml::element(out, "Size", &o.size.to_string());
    xml::element(out, "StorageClass", "STANDARD");
    if let Some((a, _)) = &o.checksum {
        xml::element(out, "ChecksumAlgorithm", a.name());
    }
}

/// How a listing writes keys: as they are, or URL-encoded.
pub(crate) type Encoder = Box<dyn Fn(&str) -> String>;

pub(crate) fn encoder(req: &Req) -> Result<Encoder, S3Error> {
    match req.q("encoding-type") {
        None => Ok(Box::new(str::to_owned)),
        Some("url") => Ok(Box::new(list::encode_url)),
        Some(other) => Err(S3Error::invalid_argument(
            "Invalid Encoding Method specified in Request",
            "encoding-type",
            other,
        )),
    }
}

pub(crate) fn list_objects(
    inner: &Inner,
    req: &Req,
    bucket: &str,
    v2: bool,
) -> Result<Answer, S3Error> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let prefix = req.q("prefix").unwrap_or("");
    let delimiter = req.q("delimiter").unwrap_or("");
    let max = max_keys(req, "max-keys")?;
    let enc = encoder(req)?;
    let token = match req.q("continuation-token").filter(|_| v2) {
        Some(t) => Some(
            b64.decode(t)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .ok_or_else(|| {
                    S3Error::invalid_argument(
                        "The continuation token provided is incorrect",
                        "continuation-token",
                        t,
                    )
                })?,
        ),
        None => None,
    };
    let after = if v2 {
        token.as_deref().or(req.q("start-after"))
    } else {
        req.q("marker")
    };
    let listing = inner.list_current(
        bucket,
        prefix,
        delimiter,
        after.filter(|a| !a.is_empty()),
        max,
    )?;
    let mut out = String::new();
    xml::root(&mut out, "ListBucketResult");
    xml::element(&mut out, "Name", bucket);
    xml::element(&mut out, "Prefix", &enc(prefix));
    if v2 {
        xml::element(
            &mut out,
            "KeyCount",
            &(listing.objects.len() + listing.prefixes.len()).to_string(),
        );
        if let Some(t) = req.q("continuation-token") {
            xml::element(&mut out, "ContinuationToken", t);
        }
        if let Some(s) = req.q("start-after") {
            xml::element(&mut out, "StartAfter", &enc(s));
        }
    } else {
        xml::element(&mut out, "Marker", &enc(req.q("marker").unwrap_or("")));
    }
    xml::element(&mut out, "MaxKeys", &max.to_string());
    if !delimiter.is_empty() {
        xml::element(&mut out, "Delimiter", &enc(delimiter));
    }
    if req.q("encoding-type").is_some() {
        xml::element(&mut out, "EncodingType", "url");
    }
    xml::element(
        &mut out,
        "IsTruncated",
        if listing.truncated { "true" } else { "false" },
    );
    if listing.truncated {
        if let Some(last) = &listing.last {
            if v2 {
                xml::element(&mut out, "NextContinuationToken", &b64.encode(last));
            } else if !delimiter.is_empty() {
                xml::element(&mut out, "NextMarker", &enc(last));
            }
        }
    }
    let fetch_owner = !v2 || req.q("fetch-owner") == Some("true");
    for o in &listing.objects {
        out.push_str("<Contents>");
        object_contents(&mut out, o, &enc);
        if fetch_owner {
            owner(&mut out, inner);
        }
        out.push_str("</Contents>");
    }
    for p in &listing.prefixes {
        out.push_str("<CommonPrefixes>");
        xml::element(&mut out, "Prefix", &enc(p));
        out.push_str("</CommonPrefixes>");
    }
    out.push_str("</ListBucketResult>");
    Ok(Answer::xml(out))
}

pub(crate) fn list_versions(inner: &Inner, req: &Req, bucket: &str) -> Result<Answer, S3Error> {
    let prefix = req.q("prefix").unwrap_or("");
    let delimiter = req.q("delimiter").unwrap_or("");
    let max = max_keys(req, "max-keys")?;
    let enc = encoder(req)?;
    let key_marker = req.q("key-marker").filter(|k| !k.is_empty());
    let conn = inner.db.lock();
    let after_seq = match (
        key_marker,
        req.q("version-id-marker").filter(|v| !v.is_empty()),
    ) {
        (Some(k), Some(v)) if v != "null" => Some(
            state::version(&conn, bucket, k, v)?
                .ok_or_else(|| {
                    S3Error::invalid_argument(
                        "Invalid version id specified",
                        "version-id-marker",
                        v,
                    )
                })?
                .seq,
        ),
        (Some(k), Some(_)) => state::version(&conn, bucket, k, "null")?.map(|r| r.seq),
        _ => None,
    };
    let listing = list::walk(
        &list::Params {
            prefix,
            delimiter,
            after: key_marker,
            max,
            versions: true,
            after_seq,
        },
        |start, n| state::rows_from(&conn, bucket, start, n, true),
    )?;
    drop(conn);
    let mut out = String::new();
    xml::root(&mut out, "ListVersionsResult");
    xml::element(&mut out, "Name", bucket);
    xml::element(&mut out, "Prefix", &enc(prefix));
    xml::element(&mut out, "KeyMarker", &enc(key_marker.unwrap_or("")));
    xml::element(
        &mut out,
        "VersionIdMarker",
        req.q("version-id-marker").unwrap_or(""),
    );
    xml::element(&mut out, "MaxKeys", &max.to_string());
    if !delimiter.is_empty() {
        xml::element(&mut out, "Delimiter", &enc(delimiter));
    }
    xml::element(
        &mut out,
        "IsTruncated",
        if listing.truncated { "true" } else { "false" },
    );
    if listing.truncated {
        if let Some(last) = listing.objects.last() {
            xml::element(&mut out, "NextKeyMarker", &enc(&last.key));
            xml::element(&mut out, "NextVersionIdMarker", &last.version_id);
        } else if let Some(last) = &listing.last {
            xml::element(&mut out, "NextKeyMarker", &enc(last));
        }
    }
    for o in &listing.objects {
        let tag = if o.delete_marker {
            "DeleteMarker"
        } else {
            "Version"
        };
        out.push_str(&format!("<{tag}>"));
        xml::element(&mut out, "Key", &enc(&o.key));
        xml::element(&mut out, "VersionId", &o.version_id);
        xml::element(
            &mut out,
            "IsLatest",
            if o.latest { "true" } else { "false" },
        );
        xml::element(&mut out, "LastModified", &iso_time(o.modified_ms));
        if !o.delete_marker {
            xml::element(&mut out, "ETag", &o.quoted_etag());
            xml::element(&mut out, "Size", &o.size.to_string());
            xml::element(&mut out, "StorageClass", "STANDARD");
        }
        owner(&mut out, inner);
        out.push_str(&format!("</{tag}>"));
    }
    for p in &listing.prefixes {
        out.push_str("<CommonPrefixes>");
        xml::element(&mut out, "Prefix", &enc(p));
        out.push_str("</CommonPrefixes>");
    }
    out.push_str("</ListVersionsResult>");
    Ok(Answer::xml(out))
}
