//! S3's REST API: a request addressed path-style (`/<bucket>/<key>`) or virtual-host-style
//! (`<bucket>.s3.localhost`, `<bucket>.localhost`) is told apart by method, bucket, key and
//! subresource (`?uploads`, `?tagging`, ...) and answered by one function per operation.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;

use crate::body;
use crate::buckets::*;
use crate::checksum::{self};
use crate::error::S3Error;
use crate::multipart::*;
use crate::names;
use crate::objects::*;
use crate::state::{self, Versioning};
use crate::xml;
use crate::{iso_time, now_ms, Inner};

/// S3's limit on a single PUT (and a part).
pub(crate) const MAX_PUT: u64 = 5 << 30;
/// Every part but the last is at least this big.
pub(crate) const MIN_PART: u64 = 5 << 20;
/// XML request bodies (a DeleteObjects of 1,000 long keys is about 1.1 MB).
pub(crate) const MAX_XML: usize = 2 << 20;
/// Answers up to this size are read at once; larger ones stream from the file.
pub(crate) const INLINE_READ: u64 = 256 << 10;

/// The bucket a virtual-hosted request names in its `Host`: `<bucket>.s3.localhost`,
/// `<bucket>.localhost`, `<bucket>.s3.<region>.amazonaws.com`, `<bucket>.s3.amazonaws.com`.
pub fn bucket_of_host(host: &str) -> Option<&str> {
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let bucket = if let Some(b) = host.strip_suffix(".localhost") {
        b.strip_suffix(".s3").unwrap_or(b)
    } else if let Some(i) = host.find(".s3.").or_else(|| host.find(".s3-")) {
        &host[..i]
    } else {
        return None;
    };
    (!bucket.is_empty() && bucket != "s3").then_some(bucket)
}

/// Whether a request on the AWS endpoint is for S3: signed for `s3` (header or presigned
/// query), signed with S3's older scheme, or addressed to a virtual-hosted bucket.
pub fn is_s3_request(uri: &Uri, headers: &HeaderMap) -> bool {
    if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        if let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256") {
            return rest
                .split("Credential=")
                .nth(1)
                .and_then(|c| c.split([',', ' ']).next())
                .and_then(|c| c.split('/').nth(3))
                == Some("s3");
        }
        return auth.starts_with("AWS ");
    }
    if let Some(q) = uri.query() {
        if q.contains("X-Amz-Credential=") {
            return form_urlencoded::parse(q.as_bytes())
                .any(|(k, v)| k == "X-Amz-Credential" && v.split('/').nth(3) == Some("s3"));
        }
        if q.contains("AWSAccessKeyId=") && q.contains("Signature=") {
            return true;
        }
    }
    headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| bucket_of_host(h).is_some())
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) bucket: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) request_id: String,
    pub(crate) host: String,
}

impl Req {
    pub(crate) fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    pub(crate) fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub(crate) fn request_id() -> String {
    let raw = uuid::Uuid::new_v4();
    checksum::hex(&raw.as_bytes()[..8]).to_uppercase()
}

/// The answer being built: status, headers, body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Body,
    pub(crate) bytes_out: u64,
}

impl Answer {
    pub(crate) fn new(status: StatusCode) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Body::empty(),
            bytes_out: 0,
        }
    }

    pub(crate) fn xml(body: String) -> Answer {
        let mut a = Answer::new(StatusCode::OK);
        a.set("content-type", "application/xml");
        a.body = Body::from(body);
        a
    }

    /// Sets a header; a value HTTP cannot carry (metadata S3 would have encoded) is skipped.
    pub(crate) fn set(&mut self, name: &str, value: &str) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.push((n, v));
        }
    }
}

pub(crate) async fn handle(inner: &Arc<Inner>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let request_id = request_id();
    let host = parts
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let raw_path = parts.uri.path();
    let (bucket, key) = match bucket_of_host(&host) {
        Some(b) => (
            Some(b.to_owned()),
            raw_path.strip_prefix('/').unwrap_or(raw_path).to_owned(),
        ),
        None => {
            let p = raw_path.strip_prefix('/').unwrap_or(raw_path);
            match p.split_once('/') {
                Some((b, k)) => (Some(b.to_owned()), k.to_owned()),
                None => ((!p.is_empty()).then(|| p.to_owned()), String::new()),
            }
        }
    };
    let decoded = (bucket.as_deref().map(percent_decode), percent_decode(&key));
    let (bucket, key) = match decoded {
        (Some(None), _) | (_, None) => {
            let e = S3Error::new(400, "InvalidURI", "Couldn't parse the specified URI.")
                .with("URI", parts.uri.to_string());
            return error_response(&parts.method, &e, &request_id);
        }
        (b, Some(k)) => (b.flatten(), (!k.is_empty()).then_some(k)),
    };
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    let dec = |s: &str| {
                        percent_decode(&s.replace('+', "%20")).unwrap_or_else(|| s.to_owned())
                    };
                    (dec(k), dec(v))
                })
                .collect()
        })
        .unwrap_or_default();
    let req = Req {
        method: parts.method,
        bucket,
        key,
        query,
        headers: parts.headers,
        request_id,
        host,
    };
    let (operation, result) = match (expired(&req), req.method == Method::OPTIONS) {
        (Some(e), _) => ("Presigned", Err(e)),
        (None, true) => ("Preflight", preflight(inner, &req)),
        (None, false) => route(inner, &req, body).await,
    };
    let result = result.map(|mut a| {
        if req.method != Method::OPTIONS {
            cors_headers(inner, &req, &mut a);
        }
        a
    });
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    if let Some(t) = inner.telemetry.get() {
        // Only buckets that exist label a series: names a caller makes up do not.
        let label = req
            .bucket
            .as_deref()
            .filter(|b| inner.bucket(b).is_some())
            .unwrap_or("");
        t.record_s3(label, operation, outcome);
        if let Ok(a) = &result {
            t.record_s3_bytes(label, 0, a.bytes_out);
        }
    }
    match result {
        Ok(a) => {
            let mut resp = Response::new(a.body);
            *resp.status_mut() = a.status;
            let h = resp.headers_mut();
            for (n, v) in a.headers {
                h.append(n, v);
            }
            if let Ok(v) = HeaderValue::from_str(&req.request_id) {
                h.insert("x-amz-request-id", v.clone());
                h.insert("x-amz-id-2", v);
            }
            resp
        }
        Err(e) => error_response(&req.method, &e, &req.request_id),
    }
}

/// A browser's CORS preflight, answered from the bucket's CORS configuration.
pub(crate) fn preflight(inner: &Inner, req: &Req) -> Result<Answer, S3Error> {
    let bucket = req.bucket.as_deref().unwrap_or("");
    let state = inner
        .bucket(bucket)
        .ok_or_else(|| S3Error::no_such_bucket(bucket))?;
    let (Some(origin), Some(method)) = (
        req.header("origin"),
        req.header("access-control-request-method"),
    ) else {
        return Err(S3Error::new(
            400,
            "BadRequest",
            "Insufficient information. Origin request header needed.",
        ));
    };
    if state.cors.is_empty() {
        return Err(crate::cors::not_enabled());
    }
    let asked: Vec<String> = req
        .header("access-control-request-headers")
        .map(|h| {
            h.split(',')
                .map(|x| x.trim().to_ascii_lowercase())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let headers = crate::cors::answer(&state.cors, origin, method, &asked, true)
        .ok_or_else(crate::cors::not_allowed)?;
    let mut a = Answer::new(StatusCode::OK);
    for (n, v) in headers {
        a.set(n, &v);
    }
    Ok(a)
}

/// An actual request from a browser (`Origin`) gets the matching rule's CORS headers.
fn cors_headers(inner: &Inner, req: &Req, a: &mut Answer) {
    let (Some(origin), Some(bucket)) = (req.header("origin"), req.bucket.as_deref()) else {
        return;
    };
    let Some(state) = inner.bucket(bucket).filter(|b| !b.cors.is_empty()) else {
        return;
    };
    if let Some(headers) = crate::cors::answer(&state.cors, origin, req.method.as_str(), &[], false)
    {
        for (n, v) in headers {
            a.set(n, &v);
        }
    }
}

pub(crate) fn error_response(method: &Method, e: &S3Error, request_id: &str) -> Response {
    let body = if *method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(e.to_xml(request_id))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amz-request-id", v.clone());
        h.insert("x-amz-id-2", v);
    }
    resp
}

/// A presigned URL past its expiry: S3's 403. Signatures themselves are not checked.
pub(crate) fn expired(req: &Req) -> Option<S3Error> {
    let now = now_ms() / 1000;
    let (expires_at, expires_text) = match (req.q("X-Amz-Date"), req.q("X-Amz-Expires")) {
        (Some(date), Some(secs)) => {
            let at = amz_date(date)? + secs.parse::<i64>().ok()?;
            (at, at)
        }
        _ => {
            let at = req.q("Expires")?.parse::<i64>().ok()?;
            req.q("Signature")?;
            (at, at)
        }
    };
    (now > expires_at).then(|| {
        S3Error::new(403, "AccessDenied", "Request has expired")
            .with("Expires", iso_time(expires_text * 1000))
            .with("ServerTime", iso_time(now * 1000))
    })
}

/// `20260101T120000Z` (SigV4's `X-Amz-Date`) as Unix seconds.
pub(crate) fn amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let month = time::Month::try_from(n(4..6)? as u8).ok()?;
    let date = time::Date::from_calendar_date(n(0..4)? as i32, month, n(6..8)? as u8).ok()?;
    let t = time::Time::from_hms(n(9..11)? as u8, n(11..13)? as u8, n(13..15)? as u8).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

pub(crate) type Outcome = (&'static str, Result<Answer, S3Error>);

pub(crate) async fn route(inner: &Arc<Inner>, req: &Req, body: Body) -> Outcome {
    let m = &req.method;
    let Some(bucket) = req.bucket.as_deref() else {
        return match *m {
            Method::GET => ("ListBuckets", list_buckets(inner)),
            _ => ("Unknown", Err(method_not_allowed(m, "SERVICE"))),
        };
    };
    let Some(key) = req.key.as_deref() else {
        return bucket_route(inner, req, bucket, body).await;
    };
    if let Err(e) = names::check_key(key) {
        return ("Object", Err(e));
    }
    if inner.bucket(bucket).is_none() {
        return ("Object", Err(S3Error::no_such_bucket(bucket)));
    }
    match *m {
        Method::PUT if req.has("tagging") => (
            "PutObjectTagging",
            put_object_tagging(inner, req, bucket, key, body).await,
        ),
        Method::PUT if req.has("uploadId") => (
            "UploadPart",
            upload_part(inner, req, bucket, key, body).await,
        ),
        Method::PUT if req.header("x-amz-copy-source").is_some() => {
            ("CopyObject", copy_object(inner, req, bucket, key).await)
        }
        Method::PUT => ("PutObject", put_object(inner, req, bucket, key, body).await),
        Method::GET if req.has("tagging") => (
            "GetObjectTagging",
            get_object_tagging(inner, req, bucket, key),
        ),
        Method::GET if req.has("uploadId") => ("ListParts", list_parts(inner, req, bucket, key)),
        Method::GET | Method::HEAD => {
            let op = if *m == Method::GET {
                "GetObject"
            } else {
                "HeadObject"
            };
            (op, get_object(inner, req, bucket, key).await)
        }
        Method::DELETE if req.has("tagging") => (
            "DeleteObjectTagging",
            delete_object_tagging(inner, req, bucket, key).await,
        ),
        Method::DELETE if req.has("uploadId") => (
            "AbortMultipartUpload",
            abort_upload(inner, req, bucket, key).await,
        ),
        Method::DELETE => ("DeleteObject", delete_object(inner, req, bucket, key).await),
        Method::POST if req.has("uploads") => (
            "CreateMultipartUpload",
            create_upload(inner, req, bucket, key),
        ),
        Method::POST if req.has("uploadId") => (
            "CompleteMultipartUpload",
            complete_upload(inner, req, bucket, key, body).await,
        ),
        _ => ("Unknown", Err(method_not_allowed(m, "OBJECT"))),
    }
}

pub(crate) fn method_not_allowed(m: &Method, resource: &str) -> S3Error {
    S3Error::new(
        405,
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
    )
    .with("Method", m.as_str())
    .with("ResourceType", resource)
}

/// Bucket subresources kept as the document the client sent, answered as sent, with the error
/// S3 gives when there is none.
pub(crate) const STORED_CONFIGS: &[(&str, &str, &str, &str)] = &[
    (
        "cors",
        "NoSuchCORSConfiguration",
        "The CORS configuration does not exist",
        "CORSConfiguration",
    ),
    (
        "lifecycle",
        "NoSuchLifecycleConfiguration",
        "The lifecycle configuration does not exist",
        "LifecycleConfiguration",
    ),
    (
        "policy",
        "NoSuchBucketPolicy",
        "The bucket policy does not exist",
        "",
    ),
    (
        "encryption",
        "ServerSideEncryptionConfigurationNotFoundError",
        "The server side encryption configuration was not found",
        "ServerSideEncryptionConfiguration",
    ),
    (
        "publicAccessBlock",
        "NoSuchPublicAccessBlockConfiguration",
        "The public access block configuration was not found",
        "PublicAccessBlockConfiguration",
    ),
    (
        "ownershipControls",
        "OwnershipControlsNotFoundError",
        "The bucket ownership controls were not found",
        "OwnershipControls",
    ),
    (
        "website",
        "NoSuchWebsiteConfiguration",
        "The specified bucket does not have a website configuration",
        "WebsiteConfiguration",
    ),
];

pub(crate) async fn bucket_route(
    inner: &Arc<Inner>,
    req: &Req,
    bucket: &str,
    body: Body,
) -> Outcome {
    let m = &req.method;
    if *m == Method::PUT && req.query.is_empty() {
        return (
            "CreateBucket",
            create_bucket(inner, req, bucket, body).await,
        );
    }
    let Some(state) = inner.bucket(bucket) else {
        let op = match *m {
            Method::HEAD => "HeadBucket",
            Method::DELETE => "DeleteBucket",
            _ => "Bucket",
        };
        return (op, Err(S3Error::no_such_bucket(bucket)));
    };
    for (sub, code, message, root) in STORED_CONFIGS {
        if !req.has(sub) {
            continue;
        }
        let r = match *m {
            Method::GET => {
                let conn = inner.db.lock();
                match state::config(&conn, bucket, sub) {
                    Ok(Some(doc)) => {
                        let mut a = Answer::xml(doc);
                        if *sub == "policy" {
                            a.headers.clear();
                            a.set("content-type", "application/json");
                        }
                        Ok(a)
                    }
                    Ok(None) => Err(S3Error::new(404, code, *message).with("BucketName", bucket)),
                    Err(e) => Err(e),
                }
            }
            Method::PUT => {
                match body::read_small(body, &req.headers, MAX_XML).await {
                    Ok(doc) => {
                        let valid = match *root {
                            "" => serde_json::from_str::<serde_json::Value>(&doc)
                                .map(|_| ())
                                .map_err(|_| S3Error::new(400, "MalformedPolicy", "Policies must be valid JSON and the first byte must be '{'")),
                            "CORSConfiguration" => crate::cors::from_xml(&doc).map(|_| ()),
                            "LifecycleConfiguration" => crate::lifecycle::from_xml(&doc).map(|_| ()),
                            root => xml::parse(&doc, root).map(|_| ()),
                        };
                        valid.and_then(|()| {
                            state::set_config(&inner.db.lock(), bucket, sub, Some(&doc))?;
                            inner.set_cors(bucket, (*sub == "cors").then_some(doc.as_str()), sub);
                            Ok(Answer::new(StatusCode::OK))
                        })
                    }
                    Err(e) => Err(e),
                }
            }
            Method::DELETE => state::set_config(&inner.db.lock(), bucket, sub, None).map(|()| {
                inner.set_cors(bucket, None, sub);
                Answer::new(StatusCode::NO_CONTENT)
            }),
            _ => Err(method_not_allowed(m, "BUCKET")),
        };
        return ("BucketConfiguration", r);
    }
    match *m {
        Method::HEAD => ("HeadBucket", {
            let mut a = Answer::new(StatusCode::OK);
            a.set("x-amz-bucket-region", &inner.config.region);
            Ok(a)
        }),
        Method::DELETE if req.has("tagging") => (
            "DeleteBucketTagging",
            state::set_config(&inner.db.lock(), bucket, "tagging", None)
                .map(|()| Answer::new(StatusCode::NO_CONTENT)),
        ),
        Method::DELETE => ("DeleteBucket", delete_bucket(inner, bucket)),
        Method::GET if req.has("location") => ("GetBucketLocation", {
            let mut out = String::new();
            xml::root(&mut out, "LocationConstraint");
            // us-east-1 is the empty location constraint.
            if inner.config.region != "us-east-1" {
                xml::escape(&mut out, &inner.config.region);
            }
            out.push_str("</LocationConstraint>");
            Ok(Answer::xml(out))
        }),
        Method::GET if req.has("versioning") => ("GetBucketVersioning", {
            let mut out = String::new();
            xml::root(&mut out, "VersioningConfiguration");
            if state.versioning != Versioning::Unversioned {
                xml::element(&mut out, "Status", state.versioning.as_str());
            }
            out.push_str("</VersioningConfiguration>");
            Ok(Answer::xml(out))
        }),
        Method::PUT if req.has("versioning") => (
            "PutBucketVersioning",
            put_versioning(inner, req, bucket, body).await,
        ),
        Method::GET if req.has("tagging") => ("GetBucketTagging", {
            match state::config(&inner.db.lock(), bucket, "tagging") {
                Ok(Some(doc)) => Ok(Answer::xml(doc)),
                Ok(None) => Err(
                    S3Error::new(404, "NoSuchTagSet", "The TagSet does not exist")
                        .with("BucketName", bucket),
                ),
                Err(e) => Err(e),
            }
        }),
        Method::PUT if req.has("tagging") => (
            "PutBucketTagging",
            put_bucket_tagging(inner, req, bucket, body).await,
        ),
        Method::GET if req.has("notification") => (
            "GetBucketNotificationConfiguration",
            Ok(Answer::xml(state.notification.to_xml())),
        ),
        Method::PUT if req.has("notification") => (
            "PutBucketNotificationConfiguration",
            put_notification(inner, req, bucket, body).await,
        ),
        Method::GET if req.has("acl") => ("GetBucketAcl", Ok(Answer::xml(acl(inner)))),
        Method::PUT if req.has("acl") => ("PutBucketAcl", Ok(Answer::new(StatusCode::OK))),
        Method::GET if req.has("uploads") => {
            ("ListMultipartUploads", list_uploads(inner, req, bucket))
        }
        Method::GET if req.has("versions") => {
            ("ListObjectVersions", list_versions(inner, req, bucket))
        }
        Method::GET if req.q("list-type") == Some("2") => {
            ("ListObjectsV2", list_objects(inner, req, bucket, true))
        }
        Method::GET
            if !req
                .query
                .iter()
                .any(|(k, _)| SUBRESOURCES.contains(&k.as_str())) =>
        {
            ("ListObjects", list_objects(inner, req, bucket, false))
        }
        Method::POST if req.has("delete") => (
            "DeleteObjects",
            delete_objects(inner, req, bucket, body).await,
        ),
        Method::POST
            if req
                .header("content-type")
                .is_some_and(|c| c.starts_with("multipart/form-data")) =>
        {
            (
                "PostObject",
                crate::post::post_object(inner, req, bucket, body).await,
            )
        }
        _ => ("Unknown", Err(not_implemented())),
    }
}

/// Subresources nimbus does not serve: asking for one is S3's `NotImplemented`, not a listing.
pub(crate) const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "analytics",
    "intelligent-tiering",
    "inventory",
    "logging",
    "metrics",
    "object-lock",
    "replication",
    "requestPayment",
    "metadataTable",
    "attributes",
];

pub(crate) fn not_implemented() -> S3Error {
    S3Error::new(
        501,
        "NotImplemented",
        "A header you provided implies functionality that is not implemented",
    )
}

pub(crate) fn owner(out: &mut String, inner: &Inner) {
    out.push_str("<Owner>");
    xml::element(out, "ID", &inner.config.account);
    xml::element(out, "DisplayName", "nimbus");
    out.push_str("</Owner>");
}

pub(crate) fn acl(inner: &Inner) -> String {
    let mut out = String::new();
    xml::root(&mut out, "AccessControlPolicy");
    owner(&mut out, inner);
    out.push_str("<AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">");
    xml::element(&mut out, "ID", &inner.config.account);
    xml::element(&mut out, "DisplayName", "nimbus");
    out.push_str("</Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_hosts_name_their_bucket() {
        let cases = [
            ("photos.s3.localhost:4566", Some("photos")),
            ("photos.localhost", Some("photos")),
            ("my.bucket.s3.localhost:80", Some("my.bucket")),
            ("photos.s3.us-east-1.amazonaws.com", Some("photos")),
            ("s3.localhost:4566", None),
            ("localhost:4566", None),
            ("127.0.0.1:4566", None),
        ];
        for (host, want) in cases {
            assert_eq!(bucket_of_host(host), want, "{host}");
        }
    }

    #[test]
    fn s3_requests_are_told_by_signature_or_host() {
        let req = |auth: Option<&str>, uri: &str, host: &str| {
            let mut h = HeaderMap::new();
            if let Some(a) = auth {
                h.insert("authorization", a.parse().unwrap());
            }
            h.insert("host", host.parse().unwrap());
            is_s3_request(&uri.parse().unwrap(), &h)
        };
        let sig = |svc: &str| {
            format!("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/{svc}/aws4_request, SignedHeaders=host, Signature=x")
        };
        assert!(req(Some(&sig("s3")), "/b/k", "127.0.0.1:4566"));
        assert!(!req(Some(&sig("sqs")), "/123456789012/q", "127.0.0.1:4566"));
        assert!(req(Some("AWS AKID:sig"), "/b/k", "127.0.0.1"));
        assert!(req(None, "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=x", "127.0.0.1"));
        assert!(req(None, "/k", "b.s3.localhost:4566"));
        assert!(!req(None, "/_nimbus/", "127.0.0.1:4566"));
    }
}
