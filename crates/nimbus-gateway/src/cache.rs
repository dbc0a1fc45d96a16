//! The REST API stage cache (`CacheClusterEnabled`, `MethodSettings` `CachingEnabled` /
//! `CacheTtlInSeconds`), as described in
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-caching.html>:
//!
//! - One cache per stage; HTTP APIs have none.
//! - Enabling it caches `GET` methods only ([`cached_by_default`]); other methods need a method
//!   override.
//! - TTL 300 s by default, at most 3600 s; 0 disables caching.
//! - A response over 1,048,576 bytes is not cached.
//! - The guide puts no condition on the status code, and users report cached 429s from their
//!   backends (Stack Overflow 45883323, "Prevent caching of non-200 responses in AWS API
//!   Gateway"), so [`ResponseCache::put`] stores any status. What to store is the caller's
//!   call: the integration's response, not API Gateway's own errors (502, 504, 429), which
//!   never came from the integration.
//! - The lookup happens after the method request: API keys, throttling and authorizers still
//!   run for a cached answer, and per-request headers (`x-amzn-RequestId`) are added after.
//!
//! Keys: AWS keys an entry on the method and resource plus the parameters declared as cache
//! keys; without any, `/items/1` and `/items/2` share the `/items/{id}` entry. SAM has no
//! property for cache key parameters, so nimbus keys on everything that can vary the answer
//! (method, path, query) rather than serve one item's response for another.
//!
//! Hand-written rather than moka: the TTL must follow a clock the tests move by hand, and the
//! whole thing is a map and a recency list.

use std::collections::{BTreeMap, HashMap};

use crate::GatewayResponse;

/// The largest response the cache stores.
pub const MAX_ENTRY_BYTES: usize = 1_048_576;
/// API Gateway's default TTL (`CacheTtlInSeconds`).
pub const DEFAULT_TTL_MS: u64 = 300_000;
/// The largest TTL API Gateway accepts.
pub const MAX_TTL_MS: u64 = 3_600_000;

/// Whether enabling the stage cache caches this method without a method override.
pub fn cached_by_default(method: &str) -> bool {
    method == "GET"
}

/// The cache key of a request. Query parameters are sorted, as AWS keys on parameter values by
/// name and their order in the URL does not matter there.
pub fn key(method: &str, path: &str, raw_query: &str) -> String {
    let mut pairs: Vec<&str> = raw_query.split('&').filter(|p| !p.is_empty()).collect();
    pairs.sort_unstable();
    format!("{method} {path}?{}", pairs.join("&"))
}

/// Whether the client asks to bypass and refresh the entry with `Cache-Control: max-age=0`.
///
/// On AWS the header works only for a caller allowed `execute-api:InvalidateCache` when the
/// stage requires authorization (the default; unauthorized requests are then served from the
/// cache with a warning header, or refused with 403). nimbus has no IAM and every local caller
/// is the developer, so the server honours the header for everyone: fetch afresh and `put` the
/// new response over the old one.
pub fn cache_control_bypass(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cache-control"))
        .flat_map(|(_, v)| v.split(','))
        .any(|directive| {
            let Some((name, value)) = directive.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("max-age") && value.trim().trim_matches('"') == "0"
        })
}

struct Entry {
    response: GatewayResponse,
    expires_at_ms: u64,
    size: usize,
    /// The entry's place in `recency`.
    stamp: u64,
}

/// One stage's cache, bounded in bytes; the least recently used entries go first.
pub struct ResponseCache {
    max_bytes_total: usize,
    used: usize,
    entries: HashMap<String, Entry>,
    /// Stamp of last use -> key; the first is the least recently used.
    recency: BTreeMap<u64, String>,
    next_stamp: u64,
}

impl ResponseCache {
    /// `max_bytes_total`: the cache's capacity (`CacheClusterSize` is in GB on AWS).
    pub fn new(max_bytes_total: usize) -> Self {
        Self {
            max_bytes_total,
            used: 0,
            entries: HashMap::new(),
            recency: BTreeMap::new(),
            next_stamp: 0,
        }
    }

    /// The cached response, if there is one that has not expired at `now_ms`.
    pub fn get(&mut self, key: &str, now_ms: u64) -> Option<GatewayResponse> {
        let expired = now_ms >= self.entries.get(key)?.expires_at_ms;
        if expired {
            self.remove(key);
            return None;
        }
        let stamp = self.stamp();
        let entry = self.entries.get_mut(key)?;
        self.recency.remove(&entry.stamp);
        entry.stamp = stamp;
        self.recency.insert(stamp, key.to_owned());
        Some(entry.response.clone())
    }

    /// Stores `response` under `key` until `now_ms + ttl_ms`, replacing any entry there. A TTL
    /// of 0, or a response over [`MAX_ENTRY_BYTES`] or over the whole capacity, stores nothing
    /// (and leaves the old entry alone: AWS simply does not cache such a response).
    pub fn put(&mut self, key: &str, response: &GatewayResponse, ttl_ms: u64, now_ms: u64) {
        let size = size_of(key, response);
        if ttl_ms == 0 || size > MAX_ENTRY_BYTES || size > self.max_bytes_total {
            return;
        }
        self.remove(key);
        if self.used + size > self.max_bytes_total {
            self.drop_expired(now_ms);
        }
        while self.used + size > self.max_bytes_total {
            let Some((_, oldest)) = self.recency.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.used -= e.size;
            }
        }
        let stamp = self.stamp();
        self.recency.insert(stamp, key.to_owned());
        self.used += size;
        self.entries.insert(
            key.to_owned(),
            Entry {
                response: response.clone(),
                expires_at_ms: now_ms.saturating_add(ttl_ms),
                size,
                stamp,
            },
        );
    }

    /// Empties the cache, as `FlushStageCache` does.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.recency.clear();
        self.used = 0;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held, as counted against the capacity.
    pub fn bytes_used(&self) -> usize {
        self.used
    }

    fn stamp(&mut self) -> u64 {
        self.next_stamp += 1;
        self.next_stamp
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.recency.remove(&e.stamp);
            self.used -= e.size;
        }
    }

    /// Expired entries still count against the capacity until touched; before evicting a live
    /// entry for room, drop them all.
    fn drop_expired(&mut self, now_ms: u64) {
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| now_ms >= e.expires_at_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            self.remove(&k);
        }
    }
}

/// What a response weighs: body, headers and key. The 1 MB limit is AWS's on the response;
/// counting the key too keeps the capacity an honest bound on memory.
fn size_of(key: &str, r: &GatewayResponse) -> usize {
    key.len()
        + r.body.len()
        + r.headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(body: &str) -> GatewayResponse {
        GatewayResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn body(r: Option<GatewayResponse>) -> Option<String> {
        r.map(|r| String::from_utf8(r.body).unwrap())
    }

    #[test]
    fn key_separates_method_path_and_query_but_not_query_order() {
        let cases = [
            (("GET", "/items/1", ""), "GET /items/1?"),
            (("GET", "/items/1", "b=2&a=1"), "GET /items/1?a=1&b=2"),
            (("GET", "/items/1", "a=1&&b=2&"), "GET /items/1?a=1&b=2"),
            (("POST", "/items/1", "a=1"), "POST /items/1?a=1"),
        ];
        for ((m, p, q), want) in cases {
            assert_eq!(key(m, p, q), want);
        }
        assert_ne!(key("GET", "/items/1", ""), key("GET", "/items/2", ""));
        assert_eq!(key("GET", "/a", "x=1&y=2"), key("GET", "/a", "y=2&x=1"));
    }

    #[test]
    fn only_get_is_cached_by_default() {
        for (method, want) in [
            ("GET", true),
            ("HEAD", false),
            ("POST", false),
            ("get", false),
        ] {
            assert_eq!(cached_by_default(method), want, "{method}");
        }
    }

    #[test]
    fn entries_live_until_their_ttl_and_are_dropped_when_read_after() {
        let mut c = ResponseCache::new(10_000);
        c.put("k", &resp("one"), DEFAULT_TTL_MS, 1_000);
        let cases = [
            (1_000, Some("one")),
            (300_999, Some("one")),
            (301_000, None),
            (1_000, None),
        ];
        for (now, want) in cases {
            assert_eq!(body(c.get("k", now)).as_deref(), want, "at {now} ms");
        }
        assert!(c.is_empty());
        assert_eq!(c.bytes_used(), 0);
    }

    #[test]
    fn ttl_zero_disables_caching() {
        let mut c = ResponseCache::new(10_000);
        c.put("k", &resp("one"), 0, 0);
        assert_eq!(c.get("k", 0), None);
        assert!(c.is_empty());
    }

    #[test]
    fn responses_over_one_mebibyte_are_not_cached() {
        let mut c = ResponseCache::new(4 * MAX_ENTRY_BYTES);
        let k = key("GET", "/big", "");
        let headers_and_key = size_of(&k, &resp(""));
        let fits = "x".repeat(MAX_ENTRY_BYTES - headers_and_key);
        let over = "x".repeat(MAX_ENTRY_BYTES - headers_and_key + 1);
        c.put(&k, &resp(&over), MAX_TTL_MS, 0);
        assert_eq!(c.get(&k, 0), None);
        c.put(&k, &resp(&fits), MAX_TTL_MS, 0);
        assert_eq!(c.get(&k, 0).map(|r| r.body.len()), Some(fits.len()));
        c.put(&k, &resp(&over), MAX_TTL_MS, 1);
        assert_eq!(
            c.get(&k, 2).map(|r| r.body.len()),
            Some(fits.len()),
            "an uncacheable response leaves the old entry"
        );
    }

    #[test]
    fn put_replaces_an_entry_and_keeps_the_size_count() {
        let mut c = ResponseCache::new(10_000);
        c.put("k", &resp("one"), 1_000, 0);
        let one = c.bytes_used();
        c.put("k", &resp("three"), 1_000, 10);
        assert_eq!(body(c.get("k", 500)).as_deref(), Some("three"));
        assert_eq!(c.len(), 1);
        assert_eq!(c.bytes_used(), one + 2);
        assert_eq!(c.get("k", 1_010), None, "the TTL restarts at the new put");
    }

    #[test]
    fn any_status_is_cached() {
        let mut c = ResponseCache::new(10_000);
        for status in [200, 404, 429, 500] {
            let r = GatewayResponse {
                status,
                ..resp("x")
            };
            let k = format!("GET /{status}?");
            c.put(&k, &r, 1_000, 0);
            assert_eq!(c.get(&k, 1).map(|r| r.status), Some(status));
        }
    }

    #[test]
    fn the_least_recently_used_entry_is_evicted_when_full() {
        let entry = size_of("a", &resp("0123456789"));
        let mut c = ResponseCache::new(3 * entry);
        for k in ["a", "b", "c"] {
            c.put(k, &resp("0123456789"), 10_000, 0);
        }
        assert!(c.get("a", 1).is_some(), "a is now the most recently used");
        c.put("d", &resp("0123456789"), 10_000, 2);
        let present: Vec<&str> = ["a", "b", "c", "d"]
            .into_iter()
            .filter(|k| c.get(k, 3).is_some())
            .collect();
        assert_eq!(present, ["a", "c", "d"]);
        assert!(c.bytes_used() <= 3 * entry);
    }

    #[test]
    fn expired_entries_make_room_before_live_ones_are_evicted() {
        let entry = size_of("a", &resp("0123456789"));
        let mut c = ResponseCache::new(2 * entry);
        c.put("a", &resp("0123456789"), 10_000, 0);
        c.put("b", &resp("0123456789"), 100, 0);
        c.put("c", &resp("0123456789"), 10_000, 500);
        assert!(
            c.get("a", 501).is_some(),
            "live a survives; expired b made room"
        );
        assert!(c.get("c", 501).is_some());
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_response_larger_than_the_capacity_evicts_nothing() {
        let mut c = ResponseCache::new(100);
        c.put("a", &resp("small"), 1_000, 0);
        c.put("b", &resp(&"x".repeat(200)), 1_000, 0);
        assert!(c.get("a", 1).is_some());
        assert_eq!(c.get("b", 1), None);
    }

    #[test]
    fn clear_empties_the_stage_cache() {
        let mut c = ResponseCache::new(10_000);
        c.put("a", &resp("1"), 1_000, 0);
        c.put("b", &resp("2"), 1_000, 0);
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.bytes_used(), 0);
        assert_eq!(c.get("a", 1), None);
    }

    #[test]
    fn cache_control_max_age_zero_asks_for_a_fresh_response() {
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[("cache-control", "max-age=0")], true),
            (&[("Cache-Control", "no-transform, MAX-AGE = \"0\"")], true),
            (
                &[
                    ("accept", "*/*"),
                    ("cache-control", "public"),
                    ("cache-control", "max-age=0"),
                ],
                true,
            ),
            (&[("cache-control", "max-age=60")], false),
            (&[("cache-control", "no-cache")], false),
            (&[("cache-control", "s-maxage=0")], false),
            (&[("x-cache-control", "max-age=0")], false),
            (&[], false),
        ];
        for (headers, want) in cases {
            let headers: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(cache_control_bypass(&headers), *want, "{headers:?}");
        }
    }
}
