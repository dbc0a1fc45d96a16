//! The platform lines Lambda writes around each invocation, and the platform's own error bodies.

use std::time::Duration;

/// `START RequestId: <id> Version: $LATEST`
pub fn start_line(request_id: &str, version: &str) -> String {
    format!("START RequestId: {request_id} Version: {version}")
}

/// `END RequestId: <id>`
pub fn end_line(request_id: &str) -> String {
    format!("END RequestId: {request_id}")
}

/// What a REPORT line states about one invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub duration: Duration,
    pub memory_size_mb: u32,
    pub max_memory_used_mb: u32,
    /// Only on the first invocation of an on-demand environment.
    pub init_duration: Option<Duration>,
    /// `Status: timeout` / `Status: error` as Lambda adds for platform failures.
    pub status: Option<&'static str>,
    /// For a function with active tracing: the invocation's trace, which Lambda states at the
    /// end of the line (`XRAY TraceId: ... SegmentId: ... Sampled: true`).
    pub xray: Option<crate::trace::TraceHeader>,
}

/// Lambda's tab-separated REPORT line. Billing rounds the duration up to the next millisecond.
pub fn report_line(request_id: &str, r: &Report) -> String {
    let ms = r.duration.as_secs_f64() * 1000.0;
    let billed = r.duration.as_nanos().div_ceil(1_000_000).max(1);
    let mut line = format!(
        "REPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
        r.memory_size_mb, r.max_memory_used_mb
    );
    if let Some(init) = r.init_duration {
        line.push_str(&format!(
            "Init Duration: {:.2} ms\t",
            init.as_secs_f64() * 1000.0
        ));
    }
    if let Some(status) = r.status {
        line.push_str(&format!("Status: {status}\t"));
    }
    if let Some(t) = &r.xray {
        line.push_str(&format!(
            "XRAY TraceId: {}\tSegmentId: {}\tSampled: {}\t",
            t.root,
            t.parent.as_deref().unwrap_or(""),
            t.sampled.as_deref() == Some("1")
        ));
    }
    line
}

/// `2019-04-23T21:10:07.727Z`, the timestamp style of Lambda's platform messages.
pub fn timestamp_millis(epoch_ms: u64) -> String {
    TimestampMillis(epoch_ms).to_string()
}

/// [`timestamp_millis`] as a `Display`, to write a time without allocating it first.
#[derive(Debug, Clone, Copy)]
pub struct TimestampMillis(pub u64);

impl std::fmt::Display for TimestampMillis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = time::OffsetDateTime::UNIX_EPOCH + Duration::from_millis(self.0);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

/// The invoke payload Lambda returns when a function runs past its timeout.
pub fn timeout_error_body(epoch_ms: u64, request_id: &str, timeout: Duration) -> String {
    let message = format!(
        "{} {request_id} Task timed out after {:.2} seconds",
        timestamp_millis(epoch_ms),
        timeout.as_secs_f64()
    );
    error_body(&message, "Sandbox.Timedout")
}

/// Lambda's error document, `{"errorMessage":..,"errorType":..}`.
pub fn error_body(message: &str, error_type: &str) -> String {
    serde_json::json!({ "errorMessage": message, "errorType": error_type }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_line_matches_lambda_format_on_a_cold_start() {
        let r = Report {
            duration: Duration::from_micros(4_157_160),
            memory_size_mb: 256,
            max_memory_used_mb: 99,
            init_duration: Some(Duration::from_micros(841_600)),
            status: None,
            xray: None,
        };
        assert_eq!(
            report_line("abc", &r),
            "REPORT RequestId: abc\tDuration: 4157.16 ms\tBilled Duration: 4158 ms\tMemory Size: 256 MB\tMax Memory Used: 99 MB\tInit Duration: 841.60 ms\t"
        );
    }

    #[test]
    fn billed_duration_rounds_up_and_is_at_least_one_ms() {
        let mut r = Report {
            duration: Duration::from_micros(2_000),
            memory_size_mb: 128,
            max_memory_used_mb: 10,
            init_duration: None,
            status: Some("timeout"),
            xray: None,
        };
        assert!(report_line("x", &r).contains("Billed Duration: 2 ms\t"));
        assert!(report_line("x", &r).ends_with("Status: timeout\t"));
        r.duration = Duration::from_nanos(10);
        assert!(report_line("x", &r).contains("Billed Duration: 1 ms\t"));
    }

    #[test]
    fn active_tracing_ends_the_line_with_the_xray_segment() {
        let r = Report {
            duration: Duration::from_millis(2),
            memory_size_mb: 128,
            max_memory_used_mb: 10,
            init_duration: None,
            status: None,
            xray: crate::trace::TraceHeader::parse(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            ),
        };
        assert!(report_line("x", &r).ends_with(
            "Max Memory Used: 10 MB\tXRAY TraceId: 1-5759e988-bd862e3fe1be46a994272793\tSegmentId: 53995c3f42cd8ad8\tSampled: true\t"
        ));
    }

    #[test]
    fn timeout_body_is_the_sandbox_timedout_error() {
        assert_eq!(
            timeout_error_body(1_556_053_807_727, "req-1", Duration::from_secs(3)),
            r#"{"errorMessage":"2019-04-23T21:10:07.727Z req-1 Task timed out after 3.00 seconds","errorType":"Sandbox.Timedout"}"#
        );
    }

    #[test]
    fn error_body_escapes_quotes_and_control_characters() {
        assert_eq!(
            error_body("a \"b\"\n\u{1}", "T"),
            r#"{"errorMessage":"a \"b\"\n\u0001","errorType":"T"}"#
        );
    }
}
