//! S3 operations in the JSON shapes the AWS SDKs give them (`Bucket`, `Key`, `Body`, ...), for
//! services that call S3 inside nimbus: Step Functions' `aws-sdk:s3:*` tasks and distributed
//! `Map`'s `ItemReader` and `ResultWriter`.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::error::S3Error;
use crate::{iso_time, S3};

/// Objects larger than this are not read into a state's JSON (Step Functions' 256 KiB limit
/// applies to what a task returns; an `ItemReader` file may be larger, up to 10 GB on AWS).
const MAX_READ: u64 = 64 << 20;

fn text<'a>(input: &'a Value, field: &str) -> Result<&'a str, S3Error> {
    input[field].as_str().ok_or_else(|| {
        S3Error::new(
            400,
            "InvalidParameter",
            format!("The parameter {field} is required and must be a string"),
        )
    })
}

impl S3 {
    /// `GetObject`, `PutObject`, `DeleteObject`, `HeadObject`, `ListObjectsV2`.
    pub async fn sdk_call(&self, action: &str, input: &Value) -> Result<Value, S3Error> {
        let inner = &self.inner;
        match action {
            // `GetObjectBase64`: nimbus's own, for Step Functions' item readers, which read
            // gzip'd inventory files that a text body would garble.
            "GetObject" | "HeadObject" | "GetObjectBase64" => {
                let (bucket, key) = (text(input, "Bucket")?, text(input, "Key")?);
                let row = self.inner.current(bucket, key)?;
                let mut out = json!({
                    "ContentLength": row.size,
                    "ContentType": row.header("content-type").unwrap_or("binary/octet-stream"),
                    "ETag": row.quoted_etag(),
                    "LastModified": iso_time(row.modified_ms),
                    "Metadata": row.meta.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
                });
                if action != "HeadObject" {
                    let bytes = inner.read_object(bucket, key, MAX_READ).await?;
                    out["Body"] = match action {
                        "GetObject" => String::from_utf8_lossy(&bytes).into(),
                        _ => base64::engine::general_purpose::STANDARD
                            .encode(&bytes)
                            .into(),
                    };
                }
                Ok(out)
            }
            "PutObject" => {
                let (bucket, key) = (text(input, "Bucket")?, text(input, "Key")?);
                let (body, content_type) = match &input["Body"] {
                    Value::String(s) => (s.clone().into_bytes(), "text/plain"),
                    Value::Null => (Vec::new(), "binary/octet-stream"),
                    other => (other.to_string().into_bytes(), "application/json"),
                };
                let content_type = input["ContentType"].as_str().unwrap_or(content_type);
                let row = crate::objects::put_bytes(inner, bucket, key, body, content_type).await?;
                Ok(json!({"ETag": row.quoted_etag()}))
            }
            "DeleteObject" => {
                let (bucket, key) = (text(input, "Bucket")?, text(input, "Key")?);
                crate::objects::delete_key(inner, bucket, key).await?;
                Ok(json!({}))
            }
            "ListObjectsV2" => {
                let bucket = text(input, "Bucket")?;
                if inner.bucket(bucket).is_none() {
                    return Err(S3Error::no_such_bucket(bucket));
                }
                let prefix = input["Prefix"].as_str().unwrap_or("");
                let delimiter = input["Delimiter"].as_str().unwrap_or("");
                let max = input["MaxKeys"].as_u64().unwrap_or(1000).min(1000) as usize;
                let after = input["ContinuationToken"]
                    .as_str()
                    .or(input["StartAfter"].as_str());
                let listing = inner.list_current(bucket, prefix, delimiter, after, max)?;
                let contents: Vec<Value> = listing
                    .objects
                    .iter()
                    .map(|o| {
                        json!({"Key": o.key, "Size": o.size, "ETag": o.quoted_etag(),
                               "LastModified": iso_time(o.modified_ms), "StorageClass": "STANDARD"})
                    })
                    .collect();
                let mut out = json!({
                    "Name": bucket,
                    "Prefix": prefix,
                    "KeyCount": contents.len() + listing.prefixes.len(),
                    "MaxKeys": max,
                    "IsTruncated": listing.truncated,
                    "Contents": contents,
                    "CommonPrefixes": listing.prefixes.iter().map(|p| json!({"Prefix": p})).collect::<Vec<_>>(),
                });
                if listing.truncated {
                    // The token is the last key listed, which is what `after` reads back.
                    out["NextContinuationToken"] = listing.last.into();
                }
                Ok(out)
            }
            other => Err(S3Error::new(
                400,
                "UnknownOperation",
                format!("nimbus's S3 does not serve {other} to other services; GetObject, HeadObject, PutObject, DeleteObject and ListObjectsV2 it does"),
            )),
        }
    }
}
