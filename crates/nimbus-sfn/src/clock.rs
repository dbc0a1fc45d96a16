//! Timestamps as Step Functions writes and compares them (ISO 8601 / RFC 3339).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the epoch of an RFC 3339 timestamp (`2026-01-01T00:00:00Z`,
/// `2026-01-01T00:00:00.5+01:00`).
pub fn parse_timestamp(text: &str) -> Option<i128> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() / 1_000_000)
}

/// A time in milliseconds since the epoch as Step Functions' context object writes it:
/// `2026-12-06T11:22:33.123Z`.
pub fn format_ms(ms: u64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (h, m, s) = t.to_hms();
    format!(
        "{:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.millisecond()
    )
}

/// The time now, in milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_with_offsets_and_fractions() {
        let cases = [
            ("2026-01-01T00:00:00Z", Some(1_767_225_600_000)),
            ("2026-01-01T01:00:00+01:00", Some(1_767_225_600_000)),
            ("2026-01-01T00:00:00.250Z", Some(1_767_225_600_250)),
            ("2026-01-01", None),
            ("yesterday", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_timestamp(text), want, "{text}");
        }
    }

    #[test]
    fn times_format_with_milliseconds_in_utc() {
        assert_eq!(format_ms(1_767_225_600_250), "2026-01-01T00:00:00.250Z");
    }
}
