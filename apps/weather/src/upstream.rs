//! One HTTP attempt at a provider, bounded in time and size, and what its failure means for
//! retrying. Error texts never carry the URL's query (reqwest's would: it holds the key).

use std::time::{Duration, SystemTime};

use reqwest::{StatusCode, Url};

use crate::retry::FailureClass;

/// Provider answers are a few KB; anything past this is not one.
pub const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub class: FailureClass,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    pub detail: String,
}

pub async fn get(
    client: &reqwest::Client,
    url: &Url,
    timeout: Duration,
) -> Result<Vec<u8>, Failure> {
    match tokio::time::timeout(timeout, fetch(client, url)).await {
        Ok(r) => r,
        Err(_) => Err(Failure {
            class: FailureClass::Transient { retry_after: None },
            status: None,
            detail: format!("no answer within {} ms", timeout.as_millis()),
        }),
    }
}

async fn fetch(client: &reqwest::Client, url: &Url) -> Result<Vec<u8>, Failure> {
    let transient = |detail: String| Failure {
        class: FailureClass::Transient { retry_after: None },
        status: None,
        detail,
    };
    let mut resp = client
        .get(url.clone())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| transient(describe(e)))?;
    let status = resp.status();
    if !status.is_success() {
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let class = if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            FailureClass::Transient { retry_after }
        } else {
            FailureClass::Permanent
        };
        return Err(Failure {
            class,
            status: Some(status.as_u16()),
            detail: format!("HTTP {}", status.as_u16()),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| transient(format!("the answer broke off ({})", describe(e))))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Failure {
                class: FailureClass::Permanent,
                status: Some(status.as_u16()),
                detail: format!("the answer is larger than {MAX_BODY} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    let e = e.without_url();
    // The innermost cause is the useful part ("Connection refused", "dns error", ...).
    let mut cause: &dyn std::error::Error = &e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    format!("{kind}: {cause}")
}

/// `Retry-After` as delay-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 22 Nov 2026 10:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 10:00:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
