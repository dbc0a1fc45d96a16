//! Multipart uploads: create, upload a part (or copy one), complete, abort, list.

use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;

use crate::body;
use crate::buckets::*;
use crate::checksum::{self, Algorithm};
use crate::error::S3Error;
use crate::http::*;
use crate::list;
use crate::names;
use crate::objects::*;
use crate::range;
use crate::state::{self, ObjectRow, PartRow, UploadRow};
use crate::xml;
use crate::{iso_time, now_ms, Inner};

pub(crate) fn find_upload(
    inner: &Inner,
    req: &Req,
    bucket: &str,
    key: &str,
) -> Result<UploadRow, S3Error> {
    let id = req.q("uploadId").unwrap_or("");
    state::upload(&inner.db.lock(), id)?
        .filter(|u| u.bucket == bucket && u.key == key)
        .ok_or_else(|| S3Error::no_such_upload(id))
}

pub(crate) fn create_upload(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    key: &str,
) -> Result<Answer, S3Error> {
    let (headers, meta) = object_headers(&req.headers)?;
    let tags = match req.header("x-amz-tagging") {
        Some(t) => names::parse_tagging_header(t)?,
        None => Vec::new(),
    };
    let algorithm = match req.header("x-amz-checksum-algorithm") {
        Some(a) => Some(Algorithm::parse(a).ok_or_else(|| {
            S3Error::invalid_argument("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]", "x-amz-checksum-algorithm", a)
        })?),
        None => None,
    };
    let u = UploadRow {
        id: format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        created_ms: now_ms(),
        headers,
        meta,
        tags,
        algorithm,
    };
    state::insert_upload(&inner.db.lock(), &u)?;
    let mut out = String::new();
    xml::root(&mut out, "InitiateMultipartUploadResult");
    xml::element(&mut out, "Bucket", bucket);
    xml::element(&mut out, "Key", key);
    xml::element(&mut out, "UploadId", &u.id);
    out.push_str("</InitiateMultipartUploadResult>");
    let mut a = Answer::xml(out);
    if let Some(alg) = algorithm {
        a.set("x-amz-checksum-algorithm", alg.name());
    }
    Ok(a)
}

pub(crate) fn part_number(req: &Req) -> Result<u32, S3Error> {
    let raw = req.q("partNumber").unwrap_or("");
    match raw.parse::<u32>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err(S3Error::invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive",
            "partNumber",
            raw,
        )),
    }
}

pub(crate) async fn upload_part(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    key: &str,
    body: Body,
) -> Result<Answer, S3Error> {
    let number = part_number(req)?;
    let upload = find_upload(inner, req, bucket, key)?;
    let (stored, checksum) = if req.header("x-amz-copy-source").is_some() {
        let src = source_row(inner, req, "x-amz-copy-source")?;
        let span = match req.header("x-amz-copy-source-range") {
            Some(r) => Some(range::resolve(Some(r), src.size)?.ok_or_else(|| {
                S3Error::invalid_argument("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy", "x-amz-copy-source-range", r)
            })?),
            None => None,
        };
        let file = src
            .file
            .clone()
            .ok_or_else(|| S3Error::internal("object without a body file"))?;
        let (start, len) = span.map(|(s, e)| (s, e - s + 1)).unwrap_or((0, src.size));
        let from = inner.files.data(&file);
        let algorithm = upload.algorithm;
        let (id, digested) = body::write_file(&inner.files, move |into| {
            use std::io::{Read, Seek, Write};
            let mut f = std::fs::File::open(from)?;
            f.seek(std::io::SeekFrom::Start(start))?;
            let mut f = f.take(len);
            let mut out = std::fs::File::create(into)?;
            let mut d = checksum::Digests::new(algorithm);
            let mut buf = vec![0; 256 << 10];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                d.update(&buf[..n]);
                out.write_all(&buf[..n])?;
            }
            Ok(d.finish())
        })
        .await?;
        let checksum = digested.checksum.clone();
        (body::Stored { file: id, digested }, checksum)
    } else {
        let mut expect = body::expect(&req.headers)?;
        if expect.algorithm.is_none() {
            expect.algorithm = upload.algorithm;
        }
        let stored = body::receive(&inner.files, body, &expect, MAX_PUT).await?;
        let checksum = stored.digested.checksum.clone();
        (stored, checksum)
    };
    let part = PartRow {
        number,
        file: stored.file.clone(),
        size: stored.digested.len,
        etag: stored.digested.md5_hex(),
        checksum: checksum.as_ref().map(|(_, v)| v.clone()),
        modified_ms: now_ms(),
    };
    let upload_id = upload.id.clone();
    let p = part.clone();
    let written = inner
        .db
        .write(move |tx| {
            // The upload may have been completed or aborted while the part streamed in.
            Ok(match state::upload(tx, &upload_id) {
                Ok(Some(_)) => state::put_part(tx, &upload_id, &p),
                Ok(None) => Err(S3Error::no_such_upload(&upload_id)),
                Err(e) => Err(e),
            })
        })
        .await?;
    match written {
        Ok(old) => inner.files.remove(&old.into_iter().collect::<Vec<_>>()),
        Err(e) => {
            inner.files.remove(&[part.file]);
            return Err(e);
        }
    }
    if let Some(t) = inner.telemetry.get() {
        t.record_s3_bytes(bucket, part.size, 0);
    }
    if req.header("x-amz-copy-source").is_some() {
        let mut out = String::new();
        xml::root(&mut out, "CopyPartResult");
        xml::element(&mut out, "LastModified", &iso_time(part.modified_ms));
        xml::element(&mut out, "ETag", &format!("\"{}\"", part.etag));
        if let Some((alg, v)) = &checksum {
            xml::element(&mut out, alg.element(), v);
        }
        out.push_str("</CopyPartResult>");
        return Ok(Answer::xml(out));
    }
    let mut a = Answer::new(StatusCode::OK);
    a.set("etag", &format!("\"{}\"", part.etag));
    a.set("x-amz-server-side-encryption", "AES256");
    if let Some((alg, v)) = &checksum {
        a.set(alg.header(), v);
    }
    Ok(a)
}

pub(crate) async fn complete_upload(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    key: &str,
    body: Body,
) -> Result<Answer, S3Error> {
    let upload = find_upload(inner, req, bucket, key)?;
    let doc = body::read_small(body, &req.headers, MAX_XML).await?;
    let d = xml::parse(&doc, "CompleteMultipartUpload")?;
    let wanted: Vec<(u32, String)> = xml::children(d.root_element(), "Part")
        .map(|p| {
            let n = xml::child_text(p, "PartNumber")
                .and_then(|n| n.trim().parse().ok())
                .ok_or_else(S3Error::malformed_xml)?;
            let etag = xml::child_text(p, "ETag").ok_or_else(S3Error::malformed_xml)?;
            Ok((n, etag.trim().trim_matches('"').to_owned()))
        })
        .collect::<Result<_, S3Error>>()?;
    if wanted.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    if wanted.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(S3Error::new(400, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number."));
    }
    let stored = state::parts(&inner.db.lock(), &upload.id)?;
    let mut chosen = Vec::with_capacity(wanted.len());
    for (i, (n, etag)) in wanted.iter().enumerate() {
        let part = stored
            .iter()
            .find(|p| p.number == *n && p.etag == *etag)
            .ok_or_else(|| {
                S3Error::new(400, "InvalidPart", "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
                    .with("UploadId", &upload.id)
                    .with("PartNumber", n.to_string())
                    .with("ETag", format!("\"{etag}\""))
            })?;
        if i + 1 < wanted.len() && part.size < MIN_PART {
            return Err(S3Error::new(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
            )
            .with("ProposedSize", part.size.to_string())
            .with("MinSizeAllowed", MIN_PART.to_string())
            .with("PartNumber", n.to_string())
            .with("ETag", format!("\"{etag}\"")));
        }
        chosen.push(part.clone());
    }
    let etag = checksum::multipart_etag(&chosen.iter().map(|p| p.etag.clone()).collect::<Vec<_>>());
    let checksum = upload.algorithm.and_then(|alg| {
        let values: Option<Vec<String>> = chosen.iter().map(|p| p.checksum.clone()).collect();
        values.and_then(|v| alg.composite(&v)).map(|c| (alg, c))
    });
    // The object is the parts' bytes in order, written to one new file off the async workers.
    let sources: Vec<std::path::PathBuf> =
        chosen.iter().map(|p| inner.files.data(&p.file)).collect();
    let (id, size) = body::write_file(&inner.files, move |into| {
        let mut out = std::fs::File::create(into)?;
        let mut total = 0;
        for s in sources {
            total += std::io::copy(&mut std::fs::File::open(s)?, &mut out)?;
        }
        Ok(total)
    })
    .await?;
    let row = ObjectRow {
        key: key.to_owned(),
        file: Some(id),
        size,
        etag,
        modified_ms: now_ms(),
        headers: upload.headers.clone(),
        meta: upload.meta.clone(),
        tags: upload.tags.clone(),
        checksum,
        parts: Some(chosen.len() as u32),
        part_sizes: chosen.iter().map(|p| p.size).collect(),
        ..ObjectRow::default()
    };
    let (row, versioning) = commit_object(
        inner,
        bucket,
        row,
        write_condition(req),
        Some(upload.id.clone()),
    )
    .await?;
    let mut out = String::new();
    xml::root(&mut out, "CompleteMultipartUploadResult");
    xml::element(
        &mut out,
        "Location",
        &format!("http://{}/{bucket}/{}", req.host, list::encode_url(key)),
    );
    xml::element(&mut out, "Bucket", bucket);
    xml::element(&mut out, "Key", key);
    etag_and_checksum(&mut out, &row);
    out.push_str("</CompleteMultipartUploadResult>");
    let mut a = Answer::xml(out);
    version_header(&mut a, versioning, &row.version_id);
    announce(
        inner,
        bucket,
        &req.request_id,
        "ObjectCreated:CompleteMultipartUpload",
        &row,
        versioning,
    );
    Ok(a)
}

pub(crate) async fn abort_upload(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    key: &str,
) -> Result<Answer, S3Error> {
    let upload = find_upload(inner, req, bucket, key)?;
    let freed = inner
        .db
        .write(move |tx| Ok(state::drop_upload(tx, &upload.id)))
        .await??;
    inner.files.remove(&freed);
    Ok(Answer::new(StatusCode::NO_CONTENT))
}

pub(crate) fn list_parts(
    inner: &Inner,
    req: &Req,
    bucket: &str,
    key: &str,
) -> Result<Answer, S3Error> {
    let upload = find_upload(inner, req, bucket, key)?;
    let max = max_keys(req, "max-parts")?;
    let marker: u32 = req
        .q("part-number-marker")
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let parts: Vec<PartRow> = state::parts(&inner.db.lock(), &upload.id)?
        .into_iter()
        .filter(|p| p.number > marker)
        .collect();
    let truncated = parts.len() > max;
    let mut out = String::new();
    xml::root(&mut out, "ListPartsResult");
    xml::element(&mut out, "Bucket", bucket);
    xml::element(&mut out, "Key", key);
    xml::element(&mut out, "UploadId", &upload.id);
    xml::element(&mut out, "PartNumberMarker", &marker.to_string());
    if let Some(last) = parts.iter().take(max).next_back() {
        xml::element(&mut out, "NextPartNumberMarker", &last.number.to_string());
    }
    xml::element(&mut out, "MaxParts", &max.to_string());
    xml::element(
        &mut out,
        "IsTruncated",
        if truncated { "true" } else { "false" },
    );
    if let Some(alg) = upload.algorithm {
        xml::element(&mut out, "ChecksumAlgorithm", alg.name());
    }
    for p in parts.iter().take(max) {
        out.push_str("<Part>");
        xml::element(&mut out, "PartNumber", &p.number.to_string());
        xml::element(&mut out, "LastModified", &iso_time(p.modified_ms));
        xml::element(&mut out, "ETag", &format!("\"{}\"", p.etag));
        xml::element(&mut out, "Size", &p.size.to_string());
        if let (Some(alg), Some(v)) = (upload.algorithm, &p.checksum) {
            xml::element(&mut out, alg.element(), v);
        }
        out.push_str("</Part>");
    }
    owner(&mut out, inner);
    out.push_str("</ListPartsResult>");
    Ok(Answer::xml(out))
}

pub(crate) fn list_uploads(inner: &Inner, req: &Req, bucket: &str) -> Result<Answer, S3Error> {
    let prefix = req.q("prefix").unwrap_or("");
    let max = max_keys(req, "max-uploads")?;
    let key_marker = req.q("key-marker").unwrap_or("");
    let id_marker = req.q("upload-id-marker").unwrap_or("");
    let rows: Vec<UploadRow> = state::uploads_from(
        &inner.db.lock(),
        bucket,
        key_marker.max(prefix),
        max + 1 + 1000,
    )?
    .into_iter()
    .filter(|u| u.key.starts_with(prefix))
    .filter(|u| {
        key_marker.is_empty()
            || u.key.as_str() > key_marker
            || (u.key == key_marker && !id_marker.is_empty() && u.id.as_str() > id_marker)
    })
    .collect();
    let truncated = rows.len() > max;
    let mut out = String::new();
    xml::root(&mut out, "ListMultipartUploadsResult");
    xml::element(&mut out, "Bucket", bucket);
    xml::element(&mut out, "KeyMarker", key_marker);
    xml::element(&mut out, "UploadIdMarker", id_marker);
    if let Some(last) = rows.iter().take(max).next_back() {
        xml::element(&mut out, "NextKeyMarker", &last.key);
        xml::element(&mut out, "NextUploadIdMarker", &last.id);
    }
    xml::element(&mut out, "Prefix", prefix);
    xml::element(&mut out, "MaxUploads", &max.to_string());
    xml::element(
        &mut out,
        "IsTruncated",
        if truncated { "true" } else { "false" },
    );
    for u in rows.iter().take(max) {
        out.push_str("<Upload>");
        xml::element(&mut out, "Key", &u.key);
        xml::element(&mut out, "UploadId", &u.id);
        owner(&mut out, inner);
        xml::element(&mut out, "StorageClass", "STANDARD");
        xml::element(&mut out, "Initiated", &iso_time(u.created_ms));
        if let Some(alg) = u.algorithm {
            xml::element(&mut out, "ChecksumAlgorithm", alg.name());
        }
        out.push_str("</Upload>");
    }
    out.push_str("</ListMultipartUploadsResult>");
    Ok(Answer::xml(out))
}
