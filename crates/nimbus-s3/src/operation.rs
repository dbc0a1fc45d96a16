//! The S3 API operation a request is, by S3's own names (`GetObject`, `PutBucketCors`,
//! `ListObjectsV2`, `UploadPartCopy`, ...), from its method, bucket, key and subresource alone:
//! what chaos rules name a request by, before it is served. The subresources' precedence
//! follows http.rs's routing; http.rs's own labels (the `s3_requests` metric) are coarser in
//! places (`BucketConfiguration` for every stored configuration).

use axum::http::{HeaderMap, Method, Uri};

/// Bucket subresources with a Get/Put/Delete trio of operations.
const CONFIGS: &[(&str, [&str; 3])] = &[
    (
        "cors",
        ["GetBucketCors", "PutBucketCors", "DeleteBucketCors"],
    ),
    (
        "lifecycle",
        [
            "GetBucketLifecycleConfiguration",
            "PutBucketLifecycleConfiguration",
            "DeleteBucketLifecycle",
        ],
    ),
    (
        "policy",
        ["GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"],
    ),
    (
        "encryption",
        [
            "GetBucketEncryption",
            "PutBucketEncryption",
            "DeleteBucketEncryption",
        ],
    ),
    (
        "publicAccessBlock",
        [
            "GetPublicAccessBlock",
            "PutPublicAccessBlock",
            "DeletePublicAccessBlock",
        ],
    ),
    (
        "ownershipControls",
        [
            "GetBucketOwnershipControls",
            "PutBucketOwnershipControls",
            "DeleteBucketOwnershipControls",
        ],
    ),
    (
        "website",
        [
            "GetBucketWebsite",
            "PutBucketWebsite",
            "DeleteBucketWebsite",
        ],
    ),
    (
        "tagging",
        [
            "GetBucketTagging",
            "PutBucketTagging",
            "DeleteBucketTagging",
        ],
    ),
    (
        "versioning",
        ["GetBucketVersioning", "PutBucketVersioning", ""],
    ),
    (
        "notification",
        [
            "GetBucketNotificationConfiguration",
            "PutBucketNotificationConfiguration",
            "",
        ],
    ),
    ("acl", ["GetBucketAcl", "PutBucketAcl", ""]),
    ("location", ["GetBucketLocation", "", ""]),
];

/// The operation `method` on `uri` is, or `""` when it is none S3 has.
pub fn operation(method: &Method, uri: &Uri, headers: &HeaderMap) -> &'static str {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let path = uri.path().trim_start_matches('/');
    let (bucket, key) = match crate::bucket_of_host(host) {
        Some(_) => (true, !path.is_empty()),
        None => match path.split_once('/') {
            Some((_, k)) => (true, !k.is_empty()),
            None => (!path.is_empty(), false),
        },
    };
    let keys: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or(p, |(k, _)| k))
        // A presigned URL's signature and the SDKs' `x-id` are not subresources.
        .filter(|k| !k.starts_with("X-Amz-") && *k != "x-id")
        .collect();
    let has = |k: &str| keys.contains(&k);
    let copy = headers.contains_key("x-amz-copy-source");
    let m = method;
    if !bucket {
        return if *m == Method::GET { "ListBuckets" } else { "" };
    }
    if key {
        return match *m {
            Method::PUT if has("tagging") => "PutObjectTagging",
            Method::PUT if has("acl") => "PutObjectAcl",
            Method::PUT if has("uploadId") && copy => "UploadPartCopy",
            Method::PUT if has("uploadId") => "UploadPart",
            Method::PUT if copy => "CopyObject",
            Method::PUT => "PutObject",
            Method::GET if has("tagging") => "GetObjectTagging",
            Method::GET if has("acl") => "GetObjectAcl",
            Method::GET if has("uploadId") => "ListParts",
            Method::GET => "GetObject",
            Method::HEAD => "HeadObject",
            Method::DELETE if has("tagging") => "DeleteObjectTagging",
            Method::DELETE if has("uploadId") => "AbortMultipartUpload",
            Method::DELETE => "DeleteObject",
            Method::POST if has("uploads") => "CreateMultipartUpload",
            Method::POST if has("uploadId") => "CompleteMultipartUpload",
            _ => "",
        };
    }
    if *m == Method::PUT && keys.is_empty() {
        return "CreateBucket";
    }
    let verb = match *m {
        Method::GET => 0,
        Method::PUT => 1,
        Method::DELETE => 2,
        _ => 3,
    };
    if let Some((_, ops)) = CONFIGS.iter().find(|(sub, _)| has(sub)) {
        return ops.get(verb).copied().unwrap_or("");
    }
    match *m {
        Method::HEAD => "HeadBucket",
        Method::DELETE => "DeleteBucket",
        Method::GET if has("uploads") => "ListMultipartUploads",
        Method::GET if has("versions") => "ListObjectVersions",
        Method::GET
            if uri
                .query()
                .is_some_and(|q| q.split('&').any(|p| p == "list-type=2")) =>
        {
            "ListObjectsV2"
        }
        Method::GET => "ListObjects",
        Method::POST if has("delete") => "DeleteObjects",
        Method::POST => "PostObject",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_named_by_s3s_operation_names() {
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case<'_>] = &[
            ("GET", "/", &[], "ListBuckets"),
            ("PUT", "/b", &[], "CreateBucket"),
            (
                "PUT",
                "/b?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=x",
                &[],
                "CreateBucket",
            ),
            ("GET", "/b/k?x-id=GetObject", &[], "GetObject"),
            ("HEAD", "/b", &[], "HeadBucket"),
            ("DELETE", "/b", &[], "DeleteBucket"),
            ("GET", "/b?list-type=2&prefix=a", &[], "ListObjectsV2"),
            ("GET", "/b", &[], "ListObjects"),
            ("GET", "/b?versions", &[], "ListObjectVersions"),
            ("GET", "/b?uploads", &[], "ListMultipartUploads"),
            ("PUT", "/b?cors", &[], "PutBucketCors"),
            ("DELETE", "/b?lifecycle", &[], "DeleteBucketLifecycle"),
            ("GET", "/b?policy", &[], "GetBucketPolicy"),
            ("PUT", "/b?versioning", &[], "PutBucketVersioning"),
            ("GET", "/b?location", &[], "GetBucketLocation"),
            ("DELETE", "/b?tagging", &[], "DeleteBucketTagging"),
            (
                "PUT",
                "/b?notification",
                &[],
                "PutBucketNotificationConfiguration",
            ),
            ("POST", "/b?delete", &[], "DeleteObjects"),
            ("PUT", "/b/k", &[], "PutObject"),
            (
                "PUT",
                "/b/a/b/c.txt",
                &[("x-amz-copy-source", "/b/k")],
                "CopyObject",
            ),
            ("GET", "/b/k", &[], "GetObject"),
            ("HEAD", "/b/k", &[], "HeadObject"),
            ("DELETE", "/b/k", &[], "DeleteObject"),
            ("POST", "/b/k?uploads", &[], "CreateMultipartUpload"),
            ("PUT", "/b/k?partNumber=1&uploadId=u", &[], "UploadPart"),
            (
                "PUT",
                "/b/k?partNumber=1&uploadId=u",
                &[("x-amz-copy-source", "/b/j")],
                "UploadPartCopy",
            ),
            ("POST", "/b/k?uploadId=u", &[], "CompleteMultipartUpload"),
            ("DELETE", "/b/k?uploadId=u", &[], "AbortMultipartUpload"),
            ("GET", "/b/k?uploadId=u", &[], "ListParts"),
            ("PUT", "/b/k?tagging", &[], "PutObjectTagging"),
            // Virtual-hosted: the bucket is in the host, the path is the key.
            ("GET", "/k", &[("host", "b.s3.localhost:4566")], "GetObject"),
            (
                "GET",
                "/?list-type=2",
                &[("host", "b.s3.localhost:4566")],
                "ListObjectsV2",
            ),
            ("PATCH", "/b/k", &[], ""),
        ];
        for (method, uri, headers, want) in cases {
            let mut h = HeaderMap::new();
            for (k, v) in *headers {
                h.insert(*k, v.parse().unwrap());
            }
            let got = operation(&method.parse().unwrap(), &uri.parse().unwrap(), &h);
            assert_eq!(got, *want, "{method} {uri}");
        }
    }
}
