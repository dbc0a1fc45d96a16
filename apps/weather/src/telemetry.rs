//! One JSON line per request: the request's log record and, in the same object, its metrics in
//! CloudWatch Embedded Metric Format. On AWS, CloudWatch Logs extracts the metrics from it; on
//! nimbus, the same line reaches nimbus's log pipeline.

use serde_json::{json, Map, Value};

/// What the upstream side of one request cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UpstreamStats {
    pub attempts: u32,
    pub retries: u32,
    pub errors: u32,
    pub latency_ms: f64,
}

/// Where the answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
    Stale,
    /// The request never reached the cache (rejected, or not a weather route).
    Bypass,
}

impl CacheOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Stale => "stale",
            CacheOutcome::Bypass => "bypass",
        }
    }
}

pub struct RequestRecord<'a> {
    pub timestamp_ms: u64,
    pub request_id: &'a str,
    pub api_request_id: Option<&'a str>,
    pub route: &'a str,
    pub city: Option<&'a str>,
    pub country: Option<&'a str>,
    pub units: Option<&'a str>,
    pub status: u16,
    pub error_code: Option<&'a str>,
    pub cache: CacheOutcome,
    pub provider: &'a str,
    pub upstream: UpstreamStats,
    pub latency_ms: f64,
}

const METRICS: [(&str, &str); 11] = [
    ("Requests", "Count"),
    ("Latency", "Milliseconds"),
    ("CacheHits", "Count"),
    ("CacheMisses", "Count"),
    ("StaleResponses", "Count"),
    ("UpstreamCalls", "Count"),
    ("UpstreamErrors", "Count"),
    ("UpstreamRetries", "Count"),
    ("UpstreamLatency", "Milliseconds"),
    ("ClientErrors", "Count"),
    ("ServerErrors", "Count"),
];

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The line for `r`, metrics under `namespace` with the provider as their dimension.
pub fn line(namespace: &str, r: &RequestRecord<'_>) -> String {
    let count = |b: bool| if b { 1.0 } else { 0.0 };
    let values: [f64; 11] = [
        1.0,
        round3(r.latency_ms),
        count(r.cache == CacheOutcome::Hit),
        count(r.cache == CacheOutcome::Miss),
        count(r.cache == CacheOutcome::Stale),
        r.upstream.attempts.into(),
        r.upstream.errors.into(),
        r.upstream.retries.into(),
        round3(r.upstream.latency_ms),
        count((400..500).contains(&r.status)),
        count(r.status >= 500),
    ];
    // Each line declares only the metrics it has a non-zero value for (EMF allows a different
    // set per line; sums and counts come out the same): a cache hit's line stays short, and
    // the log pipeline carries a third of the bytes.
    let mut declared = Vec::new();
    let mut o = Map::new();
    for (i, ((name, unit), v)) in METRICS.iter().zip(values).enumerate() {
        if v != 0.0 || i < 2 {
            declared.push(json!({"Name": name, "Unit": unit}));
            let v = if v.fract() == 0.0 {
                json!(v as u64)
            } else {
                json!(v)
            };
            o.insert((*name).into(), v);
        }
    }
    o.insert(
        "_aws".into(),
        json!({
            "Timestamp": r.timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Provider"]],
                "Metrics": declared,
            }],
        }),
    );
    o.insert("Provider".into(), r.provider.into());
    let log = json!({
        "level": if r.status >= 500 { "ERROR" } else { "INFO" },
        "message": "request",
        "requestId": r.request_id,
        "apiRequestId": r.api_request_id,
        "route": r.route,
        "city": r.city,
        "country": r.country,
        "units": r.units,
        "status": r.status,
        "errorCode": r.error_code,
        "cache": r.cache.as_str(),
        "upstreamAttempts": r.upstream.attempts,
        "upstreamLatencyMs": round3(r.upstream.latency_ms),
        "latencyMs": round3(r.latency_ms),
    });
    if let Value::Object(fields) = log {
        o.extend(fields.into_iter().filter(|(_, v)| !v.is_null()));
    }
    Value::Object(o).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_valid_emf_and_carries_the_request_fields() {
        let l = line(
            "WeatherApi",
            &RequestRecord {
                timestamp_ms: 1_700_000_000_000,
                request_id: "r-1",
                api_request_id: Some("a-1"),
                route: "/weather",
                city: Some("Melbourne\n\"x\""),
                country: Some("AU"),
                units: Some("metric"),
                status: 503,
                error_code: Some("provider_unavailable"),
                cache: CacheOutcome::Miss,
                provider: "open-meteo",
                upstream: UpstreamStats {
                    attempts: 3,
                    retries: 2,
                    errors: 3,
                    latency_ms: 12.34567,
                },
                latency_ms: 20.0,
            },
        );
        assert!(
            !l.contains('\n'),
            "one line even with a newline in the city"
        );
        let v: Value = serde_json::from_str(&l).unwrap();
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "WeatherApi");
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000u64);
        // Every declared metric and dimension has a value in the root, as EMF requires.
        for m in directive["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(v[name].is_number(), "{name}");
        }
        assert_eq!(v["Provider"], "open-meteo");
        assert_eq!(v["UpstreamRetries"], 2);
        assert_eq!(v["ServerErrors"], 1);
        assert_eq!(v["CacheMisses"], 1);
        assert!(v.get("CacheHits").is_none(), "zero metrics are left out");
        assert_eq!(v["Requests"], 1);
        assert_eq!(v["UpstreamLatency"], 12.346);
        assert_eq!(v["requestId"], "r-1");
        assert_eq!(v["city"], "Melbourne\n\"x\"");
        assert_eq!(v["status"], 503);
    }
}
