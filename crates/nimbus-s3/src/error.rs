//! S3's errors: the code, status and message S3 documents for each, and the XML body they
//! travel in (`<Error><Code>…</Code><Message>…</Message>…</Error>`).

use crate::xml;

/// An S3 error answer. `extra` carries the fields S3 adds for some codes (`BucketName`, `Key`,
/// `RangeRequested`, …), in the order they are written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct S3Error {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub extra: Vec<(&'static str, String)>,
}

impl S3Error {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error {
            status,
            code,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    /// Adds a field S3 puts in this error's body.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.extra.push((name, value.into()));
        self
    }

    pub fn no_such_bucket(bucket: &str) -> S3Error {
        S3Error::new(404, "NoSuchBucket", "The specified bucket does not exist")
            .with("BucketName", bucket)
    }

    pub fn no_such_key(key: &str) -> S3Error {
        S3Error::new(404, "NoSuchKey", "The specified key does not exist.").with("Key", key)
    }

    pub fn no_such_version(key: &str, version: &str) -> S3Error {
        S3Error::new(
            404,
            "NoSuchVersion",
            "The specified version does not exist.",
        )
        .with("Key", key)
        .with("VersionId", version)
    }

    pub fn no_such_upload(upload: &str) -> S3Error {
        S3Error::new(
            404,
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
        .with("UploadId", upload)
    }

    pub fn malformed_xml() -> S3Error {
        S3Error::new(
            400,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    }

    pub fn invalid_argument(
        message: impl Into<String>,
        name: &'static str,
        value: &str,
    ) -> S3Error {
        S3Error::new(400, "InvalidArgument", message)
            .with("ArgumentName", name)
            .with("ArgumentValue", value)
    }

    pub fn invalid_request(message: impl Into<String>) -> S3Error {
        S3Error::new(400, "InvalidRequest", message)
    }

    pub fn internal(message: impl Into<String>) -> S3Error {
        S3Error::new(
            500,
            "InternalError",
            format!(
                "We encountered an internal error. Please try again. ({})",
                message.into()
            ),
        )
    }

    /// The XML body, with the request's id as S3 gives it.
    pub fn to_xml(&self, request_id: &str) -> String {
        let mut out = String::with_capacity(256);
        out.push_str(xml::DECLARATION);
        out.push_str("<Error>");
        xml::element(&mut out, "Code", self.code);
        xml::element(&mut out, "Message", &self.message);
        for (name, value) in &self.extra {
            xml::element(&mut out, name, value);
        }
        xml::element(&mut out, "RequestId", request_id);
        xml::element(&mut out, "HostId", request_id);
        out.push_str("</Error>");
        out
    }
}

impl From<nimbus_store::StoreError> for S3Error {
    fn from(e: nimbus_store::StoreError) -> S3Error {
        S3Error::internal(e.to_string())
    }
}

impl From<rusqlite::Error> for S3Error {
    fn from(e: rusqlite::Error) -> S3Error {
        S3Error::internal(e.to_string())
    }
}

impl From<std::io::Error> for S3Error {
    fn from(e: std::io::Error) -> S3Error {
        S3Error::internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_names_code_message_fields_and_request() {
        let body = S3Error::no_such_key("a&b").to_xml("R1");
        assert_eq!(
            body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>a&amp;b</Key><RequestId>R1</RequestId><HostId>R1</HostId></Error>"
        );
    }
}
