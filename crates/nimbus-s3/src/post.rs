//! POST Object: a browser's form upload (`multipart/form-data` to the bucket's URL, what
//! `generate_presigned_post` prepares), its signed policy's expiration and conditions checked
//! as S3 checks them (signatures are not verified, as nowhere in nimbus), the file streamed
//! to disk like any upload.

use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use base64::Engine;
use serde_json::Value;

use crate::body;
use crate::error::S3Error;
use crate::http::{Answer, Req, MAX_PUT};
use crate::names;
use crate::objects::{announce, commit_object};
use crate::state::ObjectRow;
use crate::{now_ms, xml, Inner};

/// The form's fields before the file, together.
const MAX_FIELDS: u64 = 20 << 10;

fn malformed() -> S3Error {
    S3Error::new(
        400,
        "MalformedPOSTRequest",
        "The body of your POST request is not well-formed multipart/form-data.",
    )
}

fn policy_denied(why: String) -> S3Error {
    S3Error::new(
        403,
        "AccessDenied",
        format!("Invalid according to Policy: {why}"),
    )
}

/// The form fields S3 lets a policy leave out.
fn exempt(name: &str) -> bool {
    matches!(
        name,
        "x-amz-signature" | "signature" | "file" | "policy" | "awsaccesskeyid"
    ) || name.starts_with("x-ignore-")
}

/// Checks a policy document against the form's fields (names lowercase) and the bucket.
/// Returns the `content-length-range` it sets, if any.
pub(crate) fn check_policy(
    policy_b64: &str,
    fields: &[(String, String)],
    bucket: &str,
    now_ms: i64,
) -> Result<Option<(u64, u64)>, S3Error> {
    let invalid = || {
        S3Error::new(
            400,
            "InvalidPolicyDocument",
            "Invalid Policy: Invalid JSON.",
        )
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(policy_b64.trim())
        .map_err(|_| invalid())?;
    let doc: Value = serde_json::from_slice(&raw).map_err(|_| invalid())?;
    let expiration = doc["expiration"]
        .as_str()
        .and_then(|e| {
            time::OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339).ok()
        })
        .ok_or_else(|| {
            S3Error::new(
                400,
                "InvalidPolicyDocument",
                "Invalid Policy: Invalid 'expiration' value",
            )
        })?;
    if (expiration.unix_timestamp_nanos() / 1_000_000) as i64 <= now_ms {
        return Err(policy_denied("Policy expired.".into()));
    }
    let value = |name: &str| -> Option<&str> {
        let name = name.trim_start_matches('$').to_ascii_lowercase();
        if name == "bucket" {
            return Some(bucket);
        }
        fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };
    let mut covered: Vec<String> = vec!["bucket".into()];
    let mut range = None;
    for c in doc["conditions"].as_array().ok_or_else(invalid)? {
        let failed = || policy_denied(format!("Policy Condition failed: {c}"));
        match c {
            Value::Object(m) => {
                for (k, want) in m {
                    covered.push(k.to_ascii_lowercase());
                    if value(k) != want.as_str() {
                        return Err(failed());
                    }
                }
            }
            Value::Array(a) => match a.first().and_then(Value::as_str) {
                Some("content-length-range") => {
                    let n = |i: usize| {
                        a.get(i)
                            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                    };
                    range = Some((n(1).ok_or_else(invalid)?, n(2).ok_or_else(invalid)?));
                }
                Some(op @ ("eq" | "starts-with")) => {
                    let field = a.get(1).and_then(Value::as_str).ok_or_else(invalid)?;
                    let want = a.get(2).and_then(Value::as_str).ok_or_else(invalid)?;
                    covered.push(field.trim_start_matches('$').to_ascii_lowercase());
                    let got = value(field).unwrap_or("");
                    let ok = if op == "eq" {
                        got == want
                    } else {
                        got.starts_with(want)
                    };
                    if !ok {
                        return Err(failed());
                    }
                }
                _ => return Err(invalid()),
            },
            _ => return Err(invalid()),
        }
    }
    let extra: Vec<&str> = fields
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !exempt(n) && !covered.iter().any(|c| c == n))
        .collect();
    if !extra.is_empty() {
        return Err(policy_denied(format!(
            "Extra input fields: {}",
            extra.join(", ")
        )));
    }
    Ok(range)
}

pub(crate) async fn post_object(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    body: Body,
) -> Result<Answer, S3Error> {
    let boundary = req
        .header("content-type")
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(malformed)?;
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(MAX_PUT + MAX_FIELDS)
            .per_field(MAX_PUT),
    );
    let mut form =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut size = 0u64;
    let stored = loop {
        let Some(field) = form.next_field().await.map_err(|_| malformed())? else {
            return Err(S3Error::invalid_argument(
                "POST requires exactly one file upload per request.",
                "file",
                "0",
            ));
        };
        let name = field.name().unwrap_or("").to_ascii_lowercase();
        if name == "file" {
            let key_field = fields
                .iter()
                .find(|(n, _)| n == "key")
                .map(|(_, v)| v.clone());
            let Some(key) = key_field else {
                return Err(S3Error::invalid_argument(
                    "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
                    "key",
                    "",
                ));
            };
            let file_name = field.file_name().unwrap_or("").to_owned();
            let key = key.replace("${filename}", &file_name);
            if let Some((_, v)) = fields.iter_mut().find(|(n, _)| n == "key") {
                *v = key;
            }
            let range = match fields.iter().find(|(n, _)| n == "policy") {
                Some((_, p)) => check_policy(p, &fields, bucket, now_ms())?,
                None => None,
            };
            let max = range.map_or(MAX_PUT, |(_, max)| max);
            let stream = Body::from_stream(field);
            let stored = body::receive(&inner.files, stream, &body::Expect::default(), max)
                .await
                .map_err(|e| match (e.code, range) {
                    ("EntityTooLarge", Some(_)) => S3Error::new(
                        400,
                        "EntityTooLarge",
                        "Your proposed upload exceeds the maximum allowed size",
                    )
                    .with("MaxSizeAllowed", max.to_string()),
                    _ => e,
                })?;
            if let Some((min, _)) = range.filter(|(min, _)| stored.digested.len < *min) {
                inner.files.remove(&[stored.file]);
                return Err(S3Error::new(
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size",
                )
                .with("MinSizeAllowed", min.to_string()));
            }
            break stored;
        }
        let text = field.text().await.map_err(|_| malformed())?;
        size += (name.len() + text.len()) as u64;
        if size > MAX_FIELDS {
            return Err(S3Error::new(
                400,
                "MaxPostPreDataLengthExceeded",
                "Your POST request fields preceding the upload file were too large.",
            ));
        }
        fields.push((name, text));
    };
    let field = |n: &str| fields.iter().find(|(f, _)| f == n).map(|(_, v)| v.as_str());
    let key = field("key").unwrap_or("").to_owned();
    let fail = |e: S3Error| {
        inner.files.remove(std::slice::from_ref(&stored.file));
        e
    };
    names::check_key(&key).map_err(fail)?;
    let mut headers = Vec::new();
    for name in [
        "content-type",
        "cache-control",
        "content-disposition",
        "content-encoding",
        "expires",
    ] {
        if let Some(v) = field(name) {
            headers.push((name.to_owned(), v.to_owned()));
        }
    }
    if !headers.iter().any(|(n, _)| n == "content-type") {
        headers.insert(0, ("content-type".into(), "binary/octet-stream".into()));
    }
    let meta: Vec<(String, String)> = fields
        .iter()
        .filter_map(|(n, v)| {
            n.strip_prefix("x-amz-meta-")
                .map(|m| (m.to_owned(), v.clone()))
        })
        .collect();
    names::check_metadata(&meta).map_err(fail)?;
    let tags = match field("tagging") {
        Some(doc) => crate::buckets::parse_tagging(doc, 10).map_err(fail)?,
        None => Vec::new(),
    };
    let row = ObjectRow {
        key: key.clone(),
        file: Some(stored.file.clone()),
        size: stored.digested.len,
        etag: stored.digested.md5_hex(),
        modified_ms: now_ms(),
        headers,
        meta,
        tags,
        ..ObjectRow::default()
    };
    let (row, versioning) = commit_object(inner, bucket, row, (false, None), None).await?;
    if let Some(t) = inner.telemetry.get() {
        t.record_s3_bytes(bucket, row.size, 0);
    }
    announce(
        inner,
        bucket,
        &req.request_id,
        "ObjectCreated:Post",
        &row,
        versioning,
    );
    let location = format!(
        "http://{}/{bucket}/{}",
        req.host,
        crate::list::encode_url(&key)
    );
    if let Some(url) = field("success_action_redirect").filter(|u| !u.is_empty()) {
        let sep = if url.contains('?') { '&' } else { '?' };
        let target = format!(
            "{url}{sep}bucket={}&key={}&etag={}",
            crate::list::encode_url(bucket),
            crate::list::encode_url(&key),
            crate::list::encode_url(&row.quoted_etag())
        );
        let mut a = Answer::new(StatusCode::SEE_OTHER);
        a.set("location", &target);
        return Ok(a);
    }
    let status = match field("success_action_status") {
        Some("200") => StatusCode::OK,
        Some("201") => StatusCode::CREATED,
        _ => StatusCode::NO_CONTENT,
    };
    let mut a = if status == StatusCode::CREATED {
        let mut out = String::new();
        xml::root(&mut out, "PostResponse");
        xml::element(&mut out, "Location", &location);
        xml::element(&mut out, "Bucket", bucket);
        xml::element(&mut out, "Key", &key);
        xml::element(&mut out, "ETag", &row.quoted_etag());
        out.push_str("</PostResponse>");
        let mut a = Answer::xml(out);
        a.status = StatusCode::CREATED;
        a
    } else {
        Answer::new(status)
    };
    a.set("etag", &row.quoted_etag());
    a.set("location", &location);
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(expiration: &str, conditions: Value) -> String {
        base64::engine::general_purpose::STANDARD.encode(
            serde_json::json!({"expiration": expiration, "conditions": conditions}).to_string(),
        )
    }

    #[test]
    fn policies_are_checked_as_s3_checks_them() {
        let fields: Vec<(String, String)> = [
            ("key", "uploads/a.txt"),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("policy", "..."),
            ("x-amz-signature", "sig"),
            ("content-type", "text/plain"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let future = "2099-01-01T00:00:00Z";
        let ok = policy(
            future,
            serde_json::json!([{"bucket": "b"}, ["starts-with", "$key", "uploads/"], {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                               ["eq", "$Content-Type", "text/plain"], ["content-length-range", 1, 1000]]),
        );
        assert_eq!(check_policy(&ok, &fields, "b", 0).unwrap(), Some((1, 1000)));
        let cases: &[(String, &str)] = &[
            (
                policy("2000-01-01T00:00:00Z", serde_json::json!([])),
                "Policy expired.",
            ),
            (
                policy(future, serde_json::json!([{"bucket": "other"}])),
                "Policy Condition failed",
            ),
            (
                policy(
                    future,
                    serde_json::json!([["starts-with", "$key", "private/"]]),
                ),
                "Policy Condition failed",
            ),
            (
                policy(
                    future,
                    serde_json::json!([{"bucket": "b"}, ["starts-with", "$key", ""]]),
                ),
                "Extra input fields: x-amz-algorithm, content-type",
            ),
        ];
        for (p, want) in cases {
            let e = check_policy(p, &fields, "b", 1_800_000_000_000).unwrap_err();
            assert_eq!(e.code, "AccessDenied");
            assert!(e.message.contains(want), "{}", e.message);
        }
        assert_eq!(
            check_policy("%%%", &fields, "b", 0).unwrap_err().code,
            "InvalidPolicyDocument"
        );
    }
}
