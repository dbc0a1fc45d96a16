//! API Gateway route matching: which route of an API a request path and method select.
//!
//! One table serves both flavours of API Gateway. REST APIs have resources (path templates)
//! with methods; HTTP APIs have route keys (`GET /items/{id}`) and an optional `$default`
//! route. Both pick the most specific route the same way:
//!
//! - segments are compared left to right, and at the first difference a literal segment beats
//!   `{var}`, which beats `{proxy+}` (REST walks its resource tree this way; HTTP APIs document
//!   "most specific match" with the same order);
//! - a route is only a candidate when its method is the request's or `ANY`, so a more specific
//!   path without the method falls through to a less specific one that has it (the HTTP API
//!   guide's own example: `POST /pets/dog/1` goes to `ANY /{proxy+}` although
//!   `GET /pets/dog/{id}` exists);
//! - at the same path, an exact method beats `ANY`;
//! - `$default` (HTTP APIs) only when no route matched.
//!
//! A request path and its template are compared without one trailing slash: API Gateway routes
//! `/hello/` to the `/hello` route (REST deploys a `/hello/` resource as `/hello`, and HTTP
//! APIs refuse route paths that end in `/`), while the event still carries the path as sent.
//! Path parameters are percent-decoded, segment by segment, so an encoded `%2F` stays inside
//! its segment instead of splitting the path.

use std::collections::BTreeMap;

/// The HTTP methods API Gateway accepts in a route, besides `ANY`.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// Why a route could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("invalid method {0:?}: expected ANY, GET, POST, PUT, DELETE, PATCH, HEAD or OPTIONS")]
    InvalidMethod(String),
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("duplicate route {method} {path} (same as {existing})")]
    Duplicate {
        method: String,
        path: String,
        existing: String,
    },
    #[error("duplicate $default route")]
    DuplicateDefault,
    #[error("invalid route key {0:?}: expected \"$default\" or \"METHOD /path\"")]
    InvalidRouteKey(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Var(String),
    Greedy(String),
}

impl Segment {
    /// Higher is more specific.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 2,
            Segment::Var(_) => 1,
            Segment::Greedy(_) => 0,
        }
    }

    /// Two templates with the same shape match the same requests whatever their variables are
    /// called, so the shape is what duplicate detection compares.
    fn same_shape(&self, other: &Segment) -> bool {
        match (self, other) {
            (Segment::Literal(a), Segment::Literal(b)) => a == b,
            (Segment::Var(_), Segment::Var(_)) | (Segment::Greedy(_), Segment::Greedy(_)) => true,
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
struct Route<T> {
    method: String,
    template: String,
    segments: Vec<Segment>,
    value: T,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteHit<'a, T> {
    /// The path template as inserted, e.g. `/items/{id}`; `$default` for the default route.
    pub template: &'a str,
    /// The method the route was inserted with: the request's, or `ANY` (also for `$default`).
    pub method: &'a str,
    /// Percent-decoded path parameters by variable name (`proxy` for `{proxy+}`).
    pub params: BTreeMap<String, String>,
    pub value: &'a T,
}

impl<T> RouteHit<'_, T> {
    pub fn is_default(&self) -> bool {
        self.template == DEFAULT_ROUTE
    }

    /// The HTTP API route key: `GET /items/{id}`, `ANY /{proxy+}` or `$default`.
    pub fn route_key(&self) -> String {
        if self.is_default() {
            DEFAULT_ROUTE.to_string()
        } else {
            format!("{} {}", self.method, self.template)
        }
    }
}

/// The HTTP API catch-all route key.
pub const DEFAULT_ROUTE: &str = "$default";

/// The routes of one API.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    routes: Vec<Route<T>>,
    default: Option<T>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            default: None,
        }
    }
}

impl<T> RouteTable<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `method path_template`. `method` is `ANY` or an HTTP method (any case); the
    /// template is `/`, or `/`-separated segments that are each a literal, `{name}`, or, as the
    /// last one only, `{name+}`.
    pub fn insert(
        &mut self,
        method: &str,
        path_template: &str,
        value: T,
    ) -> Result<(), RouteError> {
        let method = method.to_ascii_uppercase();
        if method != "ANY" && !METHODS.contains(&method.as_str()) {
            return Err(RouteError::InvalidMethod(method));
        }
        let segments = parse_template(path_template)?;
        if let Some(existing) = self.routes.iter().find(|r| {
            r.method == method
                && r.segments.len() == segments.len()
                && r.segments
                    .iter()
                    .zip(&segments)
                    .all(|(a, b)| a.same_shape(b))
        }) {
            return Err(RouteError::Duplicate {
                method,
                path: path_template.to_string(),
                existing: existing.template.clone(),
            });
        }
        self.routes.push(Route {
            method,
            template: path_template.to_string(),
            segments,
            value,
        });
        Ok(())
    }

    /// Sets the HTTP API `$default` route, chosen only when no other route matches.
    pub fn insert_default(&mut self, value: T) -> Result<(), RouteError> {
        if self.default.is_some() {
            return Err(RouteError::DuplicateDefault);
        }
        self.default = Some(value);
        Ok(())
    }

    /// Adds an HTTP API route by its route key: `$default` or `METHOD /path`.
    pub fn insert_route_key(&mut self, route_key: &str, value: T) -> Result<(), RouteError> {
        if route_key == DEFAULT_ROUTE {
            return self.insert_default(value);
        }
        match route_key.split_once(' ') {
            Some((method, path)) if !method.is_empty() && path.starts_with('/') => {
                self.insert(method, path, value)
            }
            _ => Err(RouteError::InvalidRouteKey(route_key.to_string())),
        }
    }

    /// The route a request selects, or `None` (REST answers 403 `Missing Authentication
    /// Token`, HTTP APIs 404 `Not Found`). `path` is the request path as received,
    /// percent-encoded, without the query string.
    pub fn lookup(&self, method: &str, path: &str) -> Option<RouteHit<'_, T>> {
        let segments = split_path(path);
        let mut best: Option<(Vec<u8>, bool, &Route<T>)> = None;
        for route in &self.routes {
            let exact = route.method.eq_ignore_ascii_case(method);
            if !exact && route.method != "ANY" {
                continue;
            }
            let Some(ranks) = match_ranks(&route.segments, &segments) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((best_ranks, best_exact, _)) => (&ranks, exact) > (best_ranks, *best_exact),
            };
            if better {
                best = Some((ranks, exact, route));
            }
        }
        if let Some((_, _, route)) = best {
            return Some(RouteHit {
                template: &route.template,
                method: &route.method,
                params: capture(&route.segments, &segments),
                value: &route.value,
            });
        }
        self.default.as_ref().map(|value| RouteHit {
            template: DEFAULT_ROUTE,
            method: "ANY",
            params: BTreeMap::new(),
            value,
        })
    }

    /// Whether some route's path matches, whatever its method. API Gateway answers a path
    /// that exists with another method exactly as it answers an unknown path (REST: 403
    /// `Missing Authentication Token`; HTTP API: 404 `Not Found`); this is for logs only.
    pub fn path_exists(&self, path: &str) -> bool {
        let segments = split_path(path);
        self.routes
            .iter()
            .any(|r| match_ranks(&r.segments, &segments).is_some())
    }
}

fn parse_template(template: &str) -> Result<Vec<Segment>, RouteError> {
    let invalid = |reason| RouteError::InvalidPath {
        path: template.to_string(),
        reason,
    };
    if !template.starts_with('/') {
        return Err(invalid("must start with /"));
    }
    let raw = split_raw(template);
    let mut segments = Vec::with_capacity(raw.len());
    let mut names: Vec<&str> = Vec::new();
    for (i, part) in raw.iter().enumerate() {
        if part.is_empty() {
            return Err(invalid("empty path segment"));
        }
        let segment = if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
        {
            let (name, greedy) = match inner.strip_suffix('+') {
                Some(name) => (name, true),
                None => (inner, false),
            };
            if name.is_empty() {
                return Err(invalid("empty variable name"));
            }
            if name.contains(['{', '}', '+']) {
                return Err(invalid("a variable name may not contain {, } or +"));
            }
            if names.contains(&name) {
                return Err(invalid("variable name used twice"));
            }
            names.push(name);
            if greedy {
                if i + 1 != raw.len() {
                    return Err(invalid("a greedy variable must be the last segment"));
                }
                Segment::Greedy(name.to_string())
            } else {
                Segment::Var(name.to_string())
            }
        } else if part.contains(['{', '}']) {
            return Err(invalid("a variable must be a whole segment"));
        } else {
            Segment::Literal(part.to_string())
        };
        segments.push(segment);
    }
    Ok(segments)
}

/// The segments of a path, without the leading slash and without one trailing slash: `/` and
/// `` are no segments, `/a/` is `["a"]`, `/a//b` is `["a", "", "b"]`.
fn split_raw(path: &str) -> Vec<&str> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    }
}

/// A request path's segments, each as received (encoded) and decoded.
fn split_path(path: &str) -> Vec<(&str, String)> {
    split_raw(path)
        .into_iter()
        .map(|s| (s, percent_decode(s)))
        .collect()
}

/// The specificity of `template` against `path`, segment by segment, or `None` when it does
/// not match. A variable needs a non-empty segment and a greedy variable at least one.
fn match_ranks(template: &[Segment], path: &[(&str, String)]) -> Option<Vec<u8>> {
    let mut ranks = Vec::with_capacity(template.len());
    for (i, segment) in template.iter().enumerate() {
        match segment {
            Segment::Greedy(_) => {
                let rest = &path[i.min(path.len())..];
                if rest.is_empty() || rest.iter().all(|(raw, _)| raw.is_empty()) {
                    return None;
                }
                ranks.push(segment.rank());
                return Some(ranks);
            }
            Segment::Literal(literal) => {
                if path.get(i)?.1 != *literal {
                    return None;
                }
            }
            Segment::Var(_) => {
                if path.get(i)?.0.is_empty() {
                    return None;
                }
            }
        }
        ranks.push(segment.rank());
    }
    (template.len() == path.len()).then_some(ranks)
}

fn capture(template: &[Segment], path: &[(&str, String)]) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    for (i, segment) in template.iter().enumerate() {
        match segment {
            Segment::Literal(_) => {}
            Segment::Var(name) => {
                params.insert(name.clone(), path[i].1.clone());
            }
            Segment::Greedy(name) => {
                let rest: Vec<&str> = path[i..].iter().map(|(_, d)| d.as_str()).collect();
                params.insert(name.clone(), rest.join("/"));
            }
        }
    }
    params
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+` in a path). A `%` not followed by two
/// hex digits is kept as is, and bytes that are not UTF-8 become U+FFFD, because API Gateway
/// passes strings, not bytes, to the function.
pub fn percent_decode(s: &str) -> String {
    decode(s, false)
}

/// Decodes one `application/x-www-form-urlencoded` name or value: `+` is a space, then `%XX`
/// escapes as in [`percent_decode`]. API Gateway decodes query strings this way
/// (`?sort=-+createdAt` reaches the function as `- createdAt`).
pub fn form_decode(s: &str) -> String {
    decode(s, true)
}

fn decode(s: &str, plus_is_space: bool) -> String {
    if !(s.contains('%') || plus_is_space && s.contains('+')) {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && bytes[i] == b'+' {
            b' '
        } else {
            bytes[i]
        });
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The route a request selects, as `route key` plus `name=value` parameters.
    fn check(table: &RouteTable<u32>, method: &str, path: &str) -> Option<String> {
        table.lookup(method, path).map(|hit| {
            let mut out = hit.route_key();
            for (k, v) in &hit.params {
                out.push_str(&format!(" {k}={v}"));
            }
            out
        })
    }

    fn table(keys: &[&str]) -> RouteTable<u32> {
        let mut t = RouteTable::new();
        for (i, key) in keys.iter().enumerate() {
            t.insert_route_key(key, i as u32).unwrap();
        }
        t
    }

    #[test]
    fn precedence_follows_the_http_api_guide_example() {
        // The routes and requests of "Routing API requests" in the HTTP API developer guide.
        let t = table(&[
            "GET /pets/dog/1",
            "GET /pets/dog/{id}",
            "GET /pets/{proxy+}",
            "ANY /{proxy+}",
            "$default",
        ]);
        let cases = [
            ("GET", "/pets/dog/1", "GET /pets/dog/1"),
            ("GET", "/pets/dog/2", "GET /pets/dog/{id} id=2"),
            ("GET", "/pets/cat/1", "GET /pets/{proxy+} proxy=cat/1"),
            ("POST", "/test/5", "ANY /{proxy+} proxy=test/5"),
            ("POST", "/pets/dog/1", "ANY /{proxy+} proxy=pets/dog/1"),
            // A greedy variable needs at least one segment, so only `$default` catches `/`.
            ("GET", "/", "$default"),
        ];
        for (method, path, want) in cases {
            assert_eq!(
                check(&t, method, path).as_deref(),
                Some(want),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn literal_beats_variable_beats_greedy_segment_by_segment() {
        let t = table(&[
            "GET /a/{x}/c",
            "GET /{y}/b/c",
            "GET /{y}/b/d",
            "GET /a/{proxy+}",
            "GET /{z}",
            "GET /{proxy+}",
        ]);
        let cases = [
            // The first segment decides: literal `a` wins over `{y}`.
            ("/a/b/c", "GET /a/{x}/c x=b"),
            // The literal `a` branch still wins through its greedy route.
            ("/a/b/d", "GET /a/{proxy+} proxy=b/d"),
            ("/a/q/r/s", "GET /a/{proxy+} proxy=q/r/s"),
            ("/solo", "GET /{z} z=solo"),
            ("/x/y", "GET /{proxy+} proxy=x/y"),
        ];
        for (path, want) in cases {
            assert_eq!(check(&t, "GET", path).as_deref(), Some(want), "{path}");
        }
        // Without a route under the literal branch, the match falls back to the `{y}` one.
        let t = table(&["GET /a/{x}/c", "GET /{y}/b/d"]);
        assert_eq!(
            check(&t, "GET", "/a/b/d").as_deref(),
            Some("GET /{y}/b/d y=a")
        );
    }

    #[test]
    fn exact_method_beats_any_and_missing_methods_fall_through() {
        let t = table(&["ANY /items", "POST /items", "GET /items/{id}"]);
        assert_eq!(check(&t, "POST", "/items").as_deref(), Some("POST /items"));
        assert_eq!(check(&t, "DELETE", "/items").as_deref(), Some("ANY /items"));
        assert_eq!(
            check(&t, "get", "/items/7").as_deref(),
            Some("GET /items/{id} id=7")
        );
        assert_eq!(check(&t, "PUT", "/items/7"), None);
        assert!(t.path_exists("/items/7"));
        assert!(!t.path_exists("/nope"));
    }

    #[test]
    fn default_route_only_when_nothing_else_matches() {
        let t = table(&["GET /a", "$default"]);
        assert_eq!(check(&t, "GET", "/a").as_deref(), Some("GET /a"));
        assert_eq!(check(&t, "POST", "/a").as_deref(), Some("$default"));
        let hit = t.lookup("GET", "/zzz").unwrap();
        assert!(hit.is_default());
        assert_eq!(
            (hit.template, hit.method, *hit.value),
            ("$default", "ANY", 1)
        );
        assert_eq!(check(&table(&["GET /a"]), "GET", "/b"), None);
    }

    #[test]
    fn path_parameters_are_percent_decoded_per_segment() {
        let t = table(&["GET /items/{id}", "GET /files/{path+}"]);
        let cases = [
            ("/items/a%20b", "GET /items/{id} id=a b"),
            // `+` is only a space in query strings.
            ("/items/a+b", "GET /items/{id} id=a+b"),
            // An encoded slash is data inside its segment, not a separator.
            ("/items/a%2Fb", "GET /items/{id} id=a/b"),
            ("/items/caf%C3%A9", "GET /items/{id} id=café"),
            ("/items/100%", "GET /items/{id} id=100%"),
            (
                "/files/a/b%20c/d.txt",
                "GET /files/{path+} path=a/b c/d.txt",
            ),
            ("/files/a%2Fb/c", "GET /files/{path+} path=a/b/c"),
        ];
        for (path, want) in cases {
            assert_eq!(check(&t, "GET", path).as_deref(), Some(want), "{path}");
        }
    }

    #[test]
    fn one_trailing_slash_is_ignored_for_matching() {
        let t = table(&[
            "GET /",
            "GET /items",
            "GET /items/{id}",
            "GET /files/{proxy+}",
        ]);
        let cases = [
            ("/", Some("GET /")),
            ("", Some("GET /")),
            ("/items", Some("GET /items")),
            ("/items/", Some("GET /items")),
            ("/items/7/", Some("GET /items/{id} id=7")),
            ("/items//", None),
            ("/items//7", None),
            ("/files", None),
            ("/files/", None),
            ("/files/a/", Some("GET /files/{proxy+} proxy=a")),
            ("/ITEMS", None),
        ];
        for (path, want) in cases {
            assert_eq!(check(&t, "GET", path).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn invalid_templates_and_methods_are_rejected_with_a_reason() {
        let cases = [
            ("GET", "items", "invalid path \"items\": must start with /"),
            ("GET", "/a/{proxy+}/b", "invalid path \"/a/{proxy+}/b\": a greedy variable must be the last segment"),
            ("GET", "/a/{}", "invalid path \"/a/{}\": empty variable name"),
            ("GET", "/a/{+}", "invalid path \"/a/{+}\": empty variable name"),
            ("GET", "/a/x{id}", "invalid path \"/a/x{id}\": a variable must be a whole segment"),
            ("GET", "/a/{id", "invalid path \"/a/{id\": a variable must be a whole segment"),
            ("GET", "/a//b", "invalid path \"/a//b\": empty path segment"),
            ("GET", "/{id}/{id}", "invalid path \"/{id}/{id}\": variable name used twice"),
            ("GET", "/{a+b}", "invalid path \"/{a+b}\": a variable name may not contain {, } or +"),
            ("FETCH", "/a", "invalid method \"FETCH\": expected ANY, GET, POST, PUT, DELETE, PATCH, HEAD or OPTIONS"),
        ];
        for (method, path, want) in cases {
            let err = RouteTable::new().insert(method, path, 0).unwrap_err();
            assert_eq!(err.to_string(), want, "{method} {path}");
        }
    }

    #[test]
    fn duplicate_routes_are_rejected_whatever_their_variables_are_called() {
        let mut t = table(&[
            "GET /items/{id}",
            "ANY /items/{id}",
            "GET /items",
            "$default",
        ]);
        let cases = [
            (
                "GET /items/{name}",
                "duplicate route GET /items/{name} (same as /items/{id})",
            ),
            (
                "get /items/",
                "duplicate route GET /items/ (same as /items)",
            ),
            ("$default", "duplicate $default route"),
            (
                "GET",
                "invalid route key \"GET\": expected \"$default\" or \"METHOD /path\"",
            ),
            (
                "GET items",
                "invalid route key \"GET items\": expected \"$default\" or \"METHOD /path\"",
            ),
        ];
        for (key, want) in cases {
            assert_eq!(
                t.insert_route_key(key, 9).unwrap_err().to_string(),
                want,
                "{key}"
            );
        }
    }

    #[test]
    fn decoding_keeps_malformed_escapes_and_replaces_invalid_utf8() {
        let cases = [
            ("a%20b", "a b", "a b"),
            ("a+b", "a+b", "a b"),
            ("%2B", "+", "+"),
            ("%zz%4", "%zz%4", "%zz%4"),
            ("%", "%", "%"),
            ("%ff", "\u{fffd}", "\u{fffd}"),
            ("%E2%82%AC", "€", "€"),
        ];
        for (input, path, form) in cases {
            assert_eq!(percent_decode(input), path, "{input}");
            assert_eq!(form_decode(input), form, "{input}");
        }
    }
}
