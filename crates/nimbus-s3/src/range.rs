//! `Range` and the conditional headers of `GetObject` / `HeadObject` (pure), with S3's answers.

use crate::error::S3Error;

/// What a `Range` header asks of an object of `size` bytes: `None` for the whole object (no
/// header, or one S3 ignores: not `bytes=`, several ranges, unparseable), the inclusive byte
/// range, or S3's `InvalidRange`.
pub fn resolve(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, S3Error> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let unsatisfiable = || {
        S3Error::new(
            416,
            "InvalidRange",
            "The requested range is not satisfiable",
        )
        .with("RangeRequested", format!("bytes={spec}"))
        .with("ActualObjectSize", size.to_string())
    };
    let range = match (a.parse::<u64>(), b.parse::<u64>()) {
        // bytes=-N: the last N bytes.
        _ if a.is_empty() => match b.parse::<u64>() {
            Ok(0) => return Err(unsatisfiable()),
            Ok(n) if size > 0 => (size.saturating_sub(n), size - 1),
            Ok(_) => return Err(unsatisfiable()),
            Err(_) => return Ok(None),
        },
        (Ok(start), _) if b.is_empty() => (start, size.saturating_sub(1)),
        (Ok(start), Ok(end)) if start <= end => (start, end.min(size.saturating_sub(1))),
        _ => return Ok(None),
    };
    if range.0 >= size {
        return Err(unsatisfiable());
    }
    Ok(Some(range))
}

/// The outcome of the conditional headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Proceed,
    /// 304, no body.
    NotModified,
    /// 412 `PreconditionFailed`, naming the header that failed.
    Failed(&'static str),
}

pub struct Conditions<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
}

fn etag_listed(list: &str, etag: &str) -> bool {
    let etag = etag.trim_matches('"');
    list.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/").trim_matches('"') == etag)
}

/// RFC 7232's order, which gives S3's documented pairs: `If-Match` true with
/// `If-Unmodified-Since` false proceeds; `If-None-Match` false with `If-Modified-Since` true is
/// 304. Times are compared in whole seconds, as `Last-Modified` carries them. An unparseable
/// date is ignored, as HTTP says.
pub fn evaluate(c: &Conditions<'_>, etag: &str, modified_s: u64) -> Condition {
    let date = |v: &str| {
        httpdate::parse_http_date(v)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    match (c.if_match, c.if_unmodified_since.and_then(date)) {
        (Some(list), _) if !etag_listed(list, etag) => return Condition::Failed("If-Match"),
        (None, Some(t)) if modified_s > t => return Condition::Failed("If-Unmodified-Since"),
        _ => {}
    }
    match (c.if_none_match, c.if_modified_since.and_then(date)) {
        (Some(list), _) if etag_listed(list, etag) => Condition::NotModified,
        (None, Some(t)) if modified_s <= t => Condition::NotModified,
        _ => Condition::Proceed,
    }
}

pub fn precondition_failed(header: &'static str) -> S3Error {
    S3Error::new(
        412,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
    )
    .with("Condition", header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_s3_reads_them() {
        type Case<'a> = (Option<&'a str>, u64, Result<Option<(u64, u64)>, &'a str>);
        let cases: &[Case<'_>] = &[
            (None, 10, Ok(None)),
            (Some("bytes=0-4"), 10, Ok(Some((0, 4)))),
            (Some("bytes=5-9"), 10, Ok(Some((5, 9)))),
            (Some("bytes=5-100"), 10, Ok(Some((5, 9)))),
            (Some("bytes=7-"), 10, Ok(Some((7, 9)))),
            (Some("bytes=-3"), 10, Ok(Some((7, 9)))),
            (Some("bytes=-30"), 10, Ok(Some((0, 9)))),
            (Some("bytes=10-"), 10, Err("InvalidRange")),
            (Some("bytes=10-20"), 10, Err("InvalidRange")),
            (Some("bytes=0-0"), 0, Err("InvalidRange")),
            (Some("bytes=-0"), 10, Err("InvalidRange")),
            (Some("bytes=4-2"), 10, Ok(None)),
            (Some("bytes=0-1,4-5"), 10, Ok(None)),
            (Some("items=0-1"), 10, Ok(None)),
            (Some("bytes=x-y"), 10, Ok(None)),
        ];
        for (h, size, want) in cases {
            let got = resolve(*h, *size).map_err(|e| e.code);
            assert_eq!(&got, want, "{h:?} of {size}");
        }
        assert_eq!(resolve(Some("bytes=10-"), 10).unwrap_err().status, 416);
    }

    #[test]
    fn conditions_follow_rfc_7232_and_s3s_pairs() {
        let t = 1_700_000_000u64;
        let before =
            httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t - 60));
        let after =
            httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t + 60));
        let c = |m, n, ms, us| Conditions {
            if_match: m,
            if_none_match: n,
            if_modified_since: ms,
            if_unmodified_since: us,
        };
        let e = "\"abc\"";
        let cases = [
            (c(None, None, None, None), Condition::Proceed),
            (c(Some("\"abc\""), None, None, None), Condition::Proceed),
            (c(Some("*"), None, None, None), Condition::Proceed),
            (
                c(Some("\"x\""), None, None, None),
                Condition::Failed("If-Match"),
            ),
            (c(None, Some("\"abc\""), None, None), Condition::NotModified),
            (c(None, Some("\"x\""), None, None), Condition::Proceed),
            (c(None, None, Some(&after), None), Condition::NotModified),
            (c(None, None, Some(&before), None), Condition::Proceed),
            (
                c(None, None, None, Some(&before)),
                Condition::Failed("If-Unmodified-Since"),
            ),
            (c(None, None, None, Some(&after)), Condition::Proceed),
            // S3: If-Match true and If-Unmodified-Since false -> 200.
            (
                c(Some("\"abc\""), None, None, Some(&before)),
                Condition::Proceed,
            ),
            // S3: If-None-Match false and If-Modified-Since true -> 304.
            (
                c(None, Some("\"abc\""), Some(&before), None),
                Condition::NotModified,
            ),
            (c(None, None, Some("not a date"), None), Condition::Proceed),
        ];
        for (i, (cond, want)) in cases.iter().enumerate() {
            assert_eq!(evaluate(cond, e, t), *want, "case {i}");
        }
    }
}
