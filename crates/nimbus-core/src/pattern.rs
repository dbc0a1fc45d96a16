//! EventBridge event patterns: parse and validate a pattern once, then match events against it.
//!
//! The rules follow the EventBridge user guide's content filtering and, where the guide is
//! silent, aws/event-ruler (the matching library EventBridge's patterns come from):
//!
//! - A pattern is a JSON object. Its fields AND together; a nested object descends into the
//!   event's object of the same name; every leaf is a non-empty array of conditions, and one
//!   matching condition is enough.
//! - The event's value at a leaf may be an array: the leaf matches when any element does
//!   (nested arrays are flattened). Objects are not leaf values: a field whose value is an object,
//!   an empty array or an array of objects counts as absent for the conditions of that leaf.
//! - When a nested pattern object meets an array of objects in the event, all its fields must
//!   be satisfied by one and the same element (event-ruler's array-consistent matching). A nested
//!   object whose only conditions are `{"exists": false}` requires the fields to be absent from
//!   every element.
//! - Conditions: exact strings, numbers (compared numerically: `300` matches `3.0e2` and
//!   `300.0`), `true`, `false`, `null`; `prefix`, `suffix` (each optionally
//!   `{"equals-ignore-case": ..}`), `equals-ignore-case`, `wildcard` (`*` is any run of
//!   characters, `\*` a literal asterisk, `\\` a backslash), `anything-but` (a string, a number,
//!   a list of strings or of numbers, or `{"prefix"|"suffix"|"equals-ignore-case"|"wildcard": a
//!   string or a list of strings}`), `numeric` (`["=", n]` or a range with at most one lower and
//!   one upper bound), `cidr` (IPv4 or IPv6) and `exists`.
//! - String operators only match strings. `anything-but` matches any present leaf value that is
//!   not excluded, including `null` and values of other types; like every condition except
//!   `{"exists": false}`, it never matches an absent field. `{"exists": true}` matches any leaf
//!   value, `null` included.
//! - Numeric operands, in `numeric` and in `anything-but`, must lie within ±5e9 and have at
//!   most six digits after the decimal point; event values outside ±5e9 never satisfy `numeric`.
//! - `"$or": [ {..}, {..}, .. ]` (two or more non-empty objects) may appear in any object of the
//!   pattern; each alternative is matched at that same level. Operator names are not allowed as
//!   field names inside `$or`.
//! - An exact string that is an IP address also matches the same address written differently
//!   (`"2001:db8::1"` matches `"2001:0db8:0:0:0:0:0:1"`), as in event-ruler.
//! - `cidr` takes a prefix length below 32 (IPv4) or 128 (IPv6) and, as event-ruler does, covers
//!   the base address as written up to the base with all host bits set.
//!
//! Not modelled: event-ruler's equivalence of `{"a": {"b": ..}}` and `{"a.b": ..}` (its README
//! says not to rely on it), and EventBridge's "rule is too complex" refusal of patterns with many
//! wildcards.
//!
//! Matching allocates nothing and uses no regular expressions.

use crate::json::kind;
use serde_json::{Map, Number, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Numeric matching is limited to this magnitude, as in EventBridge.
const NUMERIC_LIMIT: f64 = 5e9;

/// Digits after the decimal point a numeric operand may have.
const NUMERIC_DECIMALS: usize = 6;

/// Names that cannot be field names inside `$or` (event-ruler's reserved words).
const RESERVED_IN_OR: [&str; 25] = [
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "html",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

/// Why an event pattern was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    /// The text is not JSON at all.
    #[error("event pattern is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The JSON is not a valid event pattern. `path` names the offending field, dot-separated
    /// (`detail.price`, `$or[1].source`); it is empty for the pattern itself.
    #[error("{}: {reason}", shown_path(.path))]
    Invalid { path: String, reason: String },
}

impl PatternError {
    /// The dot-separated path of the offending field, when the JSON parsed.
    pub fn path(&self) -> Option<&str> {
        match self {
            PatternError::Json(_) => None,
            PatternError::Invalid { path, .. } => Some(path),
        }
    }
}

fn shown_path(path: &str) -> &str {
    if path.is_empty() {
        "(root)"
    } else {
        path
    }
}

fn invalid(path: &str, reason: impl Into<String>) -> PatternError {
    PatternError::Invalid {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// A compiled EventBridge event pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    root: Node,
}

impl Pattern {
    /// Parses and validates an EventBridge event pattern (JSON text). When a key appears twice in
    /// one object, the last one counts, as in EventBridge.
    pub fn parse(json: &str) -> Result<Pattern, PatternError> {
        let value: Value = serde_json::from_str(json).map_err(PatternError::Json)?;
        Pattern::from_value(&value)
    }

    /// Validates an event pattern already parsed as JSON.
    pub fn from_value(v: &Value) -> Result<Pattern, PatternError> {
        let Value::Object(map) = v else {
            return Err(invalid(
                "",
                format!("an event pattern must be a JSON object, found {}", kind(v)),
            ));
        };
        Ok(Pattern {
            root: compile_node(map, "", false)?,
        })
    }

    /// Whether `event` (an EventBridge event, or any JSON document) matches the pattern.
    pub fn matches(&self, event: &Value) -> bool {
        self.root.matches_value(Some(event))
    }
}

/// One object level of a pattern.
#[derive(Debug, Clone)]
struct Node {
    fields: Vec<(Box<str>, Field)>,
    /// The alternatives of this level's `$or`; empty when there is none.
    any_of: Vec<Node>,
    /// Every condition below is `{"exists": false}`.
    absence_only: bool,
}

#[derive(Debug, Clone)]
enum Field {
    Leaf(Vec<Condition>),
    Nested(Node),
}

#[derive(Debug, Clone)]
enum Condition {
    String { text: Box<str>, ip: Option<IpAddr> },
    Number(Number),
    Bool(bool),
    Null,
    Prefix(Box<str>),
    PrefixIgnoreCase(Box<str>),
    Suffix(Box<str>),
    SuffixIgnoreCase(Box<str>),
    EqualsIgnoreCase(Box<str>),
    Wildcard(Wildcard),
    Numeric(Numeric),
    Cidr(Cidr),
    Exists(bool),
    AnythingBut(AnythingBut),
}

#[derive(Debug, Clone)]
enum AnythingBut {
    Strings(Vec<Box<str>>),
    Numbers(Vec<f64>),
    Prefixes(Vec<Box<str>>),
    Suffixes(Vec<Box<str>>),
    /// Lowercased.
    IgnoreCase(Vec<Box<str>>),
    Wildcards(Vec<Wildcard>),
}

#[derive(Debug, Clone, Copy)]
enum Numeric {
    Equals(f64),
    Range {
        low: f64,
        low_open: bool,
        high: f64,
        high_open: bool,
    },
}

/// A wildcard pattern split at its unescaped `*`s: the event string must start with the first
/// piece, end with the last, and contain the middle ones in order.
#[derive(Debug, Clone)]
struct Wildcard {
    pieces: Vec<Box<str>>,
}

/// An address range: the base address as written up to the base with all host bits set (as in
/// event-ruler, the base is not masked first).
#[derive(Debug, Clone, Copy)]
struct Cidr {
    v6: bool,
    low: u128,
    high: u128,
}

// ---------------------------------------------------------------------------------------------
// Compiling

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn compile_node(map: &Map<String, Value>, path: &str, in_or: bool) -> Result<Node, PatternError> {
    if map.is_empty() {
        return Err(invalid(path, "empty objects are not allowed"));
    }
    let mut fields = Vec::with_capacity(map.len());
    let mut any_of = Vec::new();
    for (key, value) in map {
        let field_path = child(path, key);
        if key == "$or" {
            any_of = compile_or(value, &field_path)?;
            continue;
        }
        if in_or && RESERVED_IN_OR.contains(&key.as_str()) {
            return Err(invalid(
                &field_path,
                format!("{key:?} is an operator name and cannot be a field name inside $or"),
            ));
        }
        let field = match value {
            Value::Object(inner) => Field::Nested(compile_node(inner, &field_path, in_or)?),
            Value::Array(items) => Field::Leaf(compile_leaf(items, &field_path)?),
            other => {
                return Err(invalid(
                    &field_path,
                    format!(
                        "must be an array of conditions or a nested object, found {}",
                        kind(other)
                    ),
                ))
            }
        };
        fields.push((key.as_str().into(), field));
    }
    let absence_only = fields.iter().all(|(_, f)| match f {
        Field::Leaf(conds) => conds.iter().all(|c| matches!(c, Condition::Exists(false))),
        Field::Nested(node) => node.absence_only,
    }) && any_of.iter().all(|n| n.absence_only);
    Ok(Node {
        fields,
        any_of,
        absence_only,
    })
}

fn compile_or(value: &Value, path: &str) -> Result<Vec<Node>, PatternError> {
    let Value::Array(items) = value else {
        return Err(invalid(
            path,
            format!(
                "$or must be an array of at least 2 objects, found {}",
                kind(value)
            ),
        ));
    };
    if items.len() < 2 {
        return Err(invalid(
            path,
            format!(
                "$or must be an array of at least 2 objects, found {} element{}",
                items.len(),
                if items.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let item_path = format!("{path}[{i}]");
            match item {
                Value::Object(map) => compile_node(map, &item_path, true),
                other => Err(invalid(
                    &item_path,
                    format!("$or elements must be objects, found {}", kind(other)),
                )),
            }
        })
        .collect()
}

fn compile_leaf(items: &[Value], path: &str) -> Result<Vec<Condition>, PatternError> {
    if items.is_empty() {
        return Err(invalid(path, "empty arrays are not allowed"));
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(Condition::String {
                text: s.as_str().into(),
                ip: parse_ip(s),
            }),
            Value::Number(n) => Ok(Condition::Number(n.clone())),
            Value::Bool(b) => Ok(Condition::Bool(*b)),
            Value::Null => Ok(Condition::Null),
            Value::Object(op) => compile_operator(op, path),
            Value::Array(_) => Err(invalid(
                path,
                "a condition must be a string, number, boolean, null or an operator object, found an array",
            )),
        })
        .collect()
}

fn compile_operator(op: &Map<String, Value>, path: &str) -> Result<Condition, PatternError> {
    let mut entries = op.iter();
    let (name, arg) = match (entries.next(), entries.next()) {
        (Some(entry), None) => entry,
        (None, _) => return Err(invalid(path, "an operator object must not be empty")),
        (Some(_), Some(_)) => {
            let names: Vec<&str> = op.keys().map(String::as_str).collect();
            return Err(invalid(
                path,
                format!(
                    "an operator object must have exactly one key, found {}",
                    names.join(", ")
                ),
            ));
        }
    };
    let err = |reason: String| invalid(path, format!("{name}: {reason}"));
    match name.as_str() {
        "prefix" | "suffix" => {
            let prefix = name == "prefix";
            match arg {
                Value::String(s) => Ok(if prefix {
                    Condition::Prefix(s.as_str().into())
                } else {
                    Condition::Suffix(s.as_str().into())
                }),
                Value::Object(inner) => {
                    let s = ignore_case_operand(inner).map_err(err)?;
                    Ok(if prefix {
                        Condition::PrefixIgnoreCase(s)
                    } else {
                        Condition::SuffixIgnoreCase(s)
                    })
                }
                other => Err(err(format!(
                    "expected a string or {{\"equals-ignore-case\": string}}, found {}",
                    kind(other)
                ))),
            }
        }
        "equals-ignore-case" => match arg {
            Value::String(s) => Ok(Condition::EqualsIgnoreCase(lowercase(s))),
            other => Err(err(format!("expected a string, found {}", kind(other)))),
        },
        "wildcard" => match arg {
            Value::String(s) => Ok(Condition::Wildcard(Wildcard::compile(s).map_err(err)?)),
            other => Err(err(format!("expected a string, found {}", kind(other)))),
        },
        "anything-but" => Ok(Condition::AnythingBut(
            compile_anything_but(arg).map_err(err)?,
        )),
        "numeric" => Ok(Condition::Numeric(compile_numeric(arg).map_err(err)?)),
        "cidr" => match arg {
            Value::String(s) => Ok(Condition::Cidr(Cidr::compile(s).map_err(err)?)),
            other => Err(err(format!(
                "expected a string such as \"10.0.0.0/24\", found {}",
                kind(other)
            ))),
        },
        "exists" => match arg {
            Value::Bool(b) => Ok(Condition::Exists(*b)),
            other => Err(err(format!(
                "expected true or false, found {}",
                kind(other)
            ))),
        },
        other => Err(invalid(
            path,
            format!(
                "unknown operator {other:?} (expected prefix, suffix, equals-ignore-case, \
                 wildcard, anything-but, numeric, cidr or exists)"
            ),
        )),
    }
}

/// The operand of `{"prefix": {"equals-ignore-case": "x"}}`, lowercased.
fn ignore_case_operand(inner: &Map<String, Value>) -> Result<Box<str>, String> {
    let mut entries = inner.iter();
    match (entries.next(), entries.next()) {
        (Some((key, Value::String(s))), None) if key == "equals-ignore-case" => Ok(lowercase(s)),
        (Some((key, other)), None) if key == "equals-ignore-case" => Err(format!(
            "equals-ignore-case: expected a string, found {}",
            kind(other)
        )),
        (Some((key, _)), None) => Err(format!(
            "unsupported operator {key:?} (only equals-ignore-case may appear here)"
        )),
        _ => Err("expected an object with the single key \"equals-ignore-case\"".to_string()),
    }
}

fn compile_anything_but(arg: &Value) -> Result<AnythingBut, String> {
    match arg {
        Value::String(s) => Ok(AnythingBut::Strings(vec![s.as_str().into()])),
        Value::Number(n) => Ok(AnythingBut::Numbers(vec![numeric_operand(n)?])),
        Value::Array(items) => {
            if items.iter().all(Value::is_string) && !items.is_empty() {
                Ok(AnythingBut::Strings(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(Into::into)
                        .collect(),
                ))
            } else if items.iter().all(Value::is_number) && !items.is_empty() {
                items
                    .iter()
                    .filter_map(|v| match v {
                        Value::Number(n) => Some(numeric_operand(n)),
                        _ => None,
                    })
                    .collect::<Result<_, _>>()
                    .map(AnythingBut::Numbers)
            } else if let Some(bad) = items.iter().find(|v| !v.is_string() && !v.is_number()) {
                Err(format!(
                    "a list must hold only strings or only numbers, found {}",
                    kind(bad)
                ))
            } else if items.is_empty() {
                Err("the list must not be empty".to_string())
            } else {
                Err("a list must hold only strings or only numbers, not both".to_string())
            }
        }
        Value::Object(op) => {
            let mut entries = op.iter();
            let (name, operand) = match (entries.next(), entries.next()) {
                (Some(entry), None) => entry,
                _ => return Err(
                    "expected an object with one of prefix, suffix, equals-ignore-case or wildcard"
                        .to_string(),
                ),
            };
            if !matches!(
                name.as_str(),
                "prefix" | "suffix" | "equals-ignore-case" | "wildcard"
            ) {
                return Err(format!(
                    "unsupported operator {name:?} (expected prefix, suffix, equals-ignore-case or wildcard)"
                ));
            }
            let strings: Vec<&str> = match operand {
                Value::String(s) => vec![s.as_str()],
                Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => {
                    items.iter().filter_map(Value::as_str).collect()
                }
                Value::Array(items) if items.is_empty() => {
                    return Err(format!("{name}: the list must not be empty"))
                }
                other => {
                    return Err(format!(
                        "{name}: expected a string or a list of strings, found {}",
                        match other {
                            Value::Array(_) => "a list with a non-string element",
                            v => kind(v),
                        }
                    ))
                }
            };
            match name.as_str() {
                "prefix" | "suffix" => {
                    if strings.iter().any(|s| s.is_empty()) {
                        return Err(format!("{name}: must not be empty"));
                    }
                    let set = strings.into_iter().map(Into::into).collect();
                    Ok(if name == "prefix" {
                        AnythingBut::Prefixes(set)
                    } else {
                        AnythingBut::Suffixes(set)
                    })
                }
                "equals-ignore-case" => Ok(AnythingBut::IgnoreCase(
                    strings.into_iter().map(lowercase).collect(),
                )),
                "wildcard" => strings
                    .into_iter()
                    .map(|s| Wildcard::compile(s).map_err(|e| format!("wildcard: {e}")))
                    .collect::<Result<_, _>>()
                    .map(AnythingBut::Wildcards),
                _ => unreachable!("operator names are checked above"),
            }
        }
        other => Err(format!(
            "expected a string, a number, a list of strings or of numbers, or an operator \
             object, found {}",
            kind(other)
        )),
    }
}

/// A number operand of `numeric` or `anything-but`: within ±5e9, at most six decimals.
fn numeric_operand(n: &Number) -> Result<f64, String> {
    let Some(x) = n.as_f64() else {
        return Err(format!("{n} is not a representable number"));
    };
    if !(-NUMERIC_LIMIT..=NUMERIC_LIMIT).contains(&x) {
        return Err(format!(
            "{n} is out of range (numbers must lie within -5e9..=5e9)"
        ));
    }
    if n.is_f64() {
        // Display prints the shortest decimal that round-trips, without an exponent.
        let text = x.to_string();
        if text
            .split_once('.')
            .is_some_and(|(_, d)| d.len() > NUMERIC_DECIMALS)
        {
            return Err(format!(
                "{n} has more than {NUMERIC_DECIMALS} digits after the decimal point"
            ));
        }
    }
    Ok(x)
}

fn compile_numeric(arg: &Value) -> Result<Numeric, String> {
    let Value::Array(items) = arg else {
        return Err(format!(
            "expected an array such as [\">\", 0, \"<=\", 5], found {}",
            kind(arg)
        ));
    };
    let operator = |i: usize| -> Result<&str, String> {
        match items.get(i) {
            Some(Value::String(s)) if matches!(s.as_str(), "=" | "<" | "<=" | ">" | ">=") => {
                Ok(s.as_str())
            }
            Some(other) => Err(format!(
                "expected an operator (\"=\", \"<\", \"<=\", \">\" or \">=\") at position {i}, found {other}"
            )),
            None => Err(format!(
                "expected an operator (\"=\", \"<\", \"<=\", \">\" or \">=\") at position {i}, found the end of the array"
            )),
        }
    };
    let operand = |i: usize, op: &str| -> Result<f64, String> {
        match items.get(i) {
            Some(Value::Number(n)) => numeric_operand(n),
            Some(other) => Err(format!(
                "the value of {op:?} must be a number, found {other}"
            )),
            None => Err(format!("the value of {op:?} is missing")),
        }
    };
    let end = |len: usize, what: &str| -> Result<(), String> {
        if items.len() > len {
            Err(format!("too many elements: {what}"))
        } else {
            Ok(())
        }
    };
    let range = |low: f64, low_open: bool, high: f64, high_open: bool| {
        if low < high {
            Ok(Numeric::Range {
                low,
                low_open,
                high,
                high_open,
            })
        } else {
            Err(format!(
                "the lower bound ({low}) must be less than the upper bound ({high})"
            ))
        }
    };
    let first = operator(0)?;
    let x = operand(1, first)?;
    match first {
        "=" => {
            end(2, "\"=\" takes a single number")?;
            Ok(Numeric::Equals(x))
        }
        "<" | "<=" => {
            end(
                2,
                "an upper bound must come last (write the lower bound first)",
            )?;
            range(-NUMERIC_LIMIT, false, x, first == "<")
        }
        _ => {
            if items.len() == 2 {
                return range(x, first == ">", NUMERIC_LIMIT, false);
            }
            let second = operator(2)?;
            if !matches!(second, "<" | "<=") {
                return Err(format!(
                    "bad range operator {second:?}: after a lower bound only \"<\" or \"<=\" may follow"
                ));
            }
            let y = operand(3, second)?;
            end(4, "a range has at most one lower and one upper bound")?;
            range(x, first == ">", y, second == "<")
        }
    }
}

/// Lowercases character by character (no final-sigma rule), the same way events are folded.
fn lowercase(s: &str) -> Box<str> {
    s.chars()
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .into()
}

impl Wildcard {
    fn compile(pattern: &str) -> Result<Wildcard, String> {
        let mut pieces = Vec::new();
        let mut current = String::new();
        let mut chars = pattern.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '*' => {
                    if matches!(chars.peek(), Some((_, '*'))) {
                        return Err(format!(
                            "consecutive wildcard characters at position {i} of {pattern:?}"
                        ));
                    }
                    pieces.push(std::mem::take(&mut current).into_boxed_str());
                }
                '\\' => match chars.next() {
                    Some((_, next @ ('*' | '\\'))) => current.push(next),
                    _ => {
                        return Err(format!(
                            "invalid escape at position {i} of {pattern:?} (only \\* and \\\\ are allowed)"
                        ))
                    }
                },
                _ => current.push(c),
            }
        }
        pieces.push(current.into_boxed_str());
        Ok(Wildcard { pieces })
    }

    fn matches(&self, s: &str) -> bool {
        let (first, rest) = match self.pieces.split_first() {
            Some(split) => split,
            None => return false,
        };
        let Some((last, middle)) = rest.split_last() else {
            return s == &**first;
        };
        if s.len() < first.len() + last.len() || !s.starts_with(&**first) || !s.ends_with(&**last) {
            return false;
        }
        let mut hay = &s[first.len()..s.len() - last.len()];
        for piece in middle {
            match hay.find(&**piece) {
                Some(at) => hay = &hay[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

/// Parses an IP address literal the way event-ruler recognises one: dotted decimal IPv4, or
/// IPv6 made only of hex digits and colons.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let b = s.as_bytes();
    if b.contains(&b':') {
        if b.iter().all(|c| c.is_ascii_hexdigit() || *c == b':') {
            return s.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
        }
        return None;
    }
    if b.first().is_some_and(u8::is_ascii_digit)
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'.')
    {
        return s.parse::<Ipv4Addr>().ok().map(IpAddr::V4);
    }
    None
}

fn ip_bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(v4) => (false, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (true, u128::from(v6)),
    }
}

impl Cidr {
    fn compile(s: &str) -> Result<Cidr, String> {
        let mut parts = s.split('/');
        let (Some(addr), Some(bits), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "malformed CIDR {s:?}: expected address/prefix-length"
            ));
        };
        let Some(ip) = parse_ip(addr) else {
            return Err(format!(
                "malformed CIDR {s:?}: {addr:?} is not an IP address"
            ));
        };
        let bits: u32 = bits
            .parse()
            .map_err(|_| format!("malformed CIDR {s:?}: the prefix length must be an integer"))?;
        let (v6, base) = ip_bits(ip);
        // event-ruler's limits: IPv4 masks below 32 bits, IPv6 below 128.
        let width = if v6 { 128 } else { 32 };
        if bits >= width {
            return Err(format!(
                "malformed CIDR {s:?}: {} prefix length must be less than {width}",
                if v6 { "an IPv6" } else { "an IPv4" }
            ));
        }
        let host_bits = width - bits;
        let host_mask = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        Ok(Cidr {
            v6,
            low: base,
            high: base | host_mask,
        })
    }

    fn contains(&self, s: &str) -> bool {
        parse_ip(s).is_some_and(|ip| {
            let (v6, bits) = ip_bits(ip);
            v6 == self.v6 && (self.low..=self.high).contains(&bits)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Matching

/// Calls `pred` on the objects of an event array, looking through nested arrays; true when
/// `pred` is true for any.
fn any_object(items: &[Value], pred: &mut impl FnMut(&Map<String, Value>) -> bool) -> bool {
    items.iter().any(|item| match item {
        Value::Object(map) => pred(map),
        Value::Array(inner) => any_object(inner, pred),
        _ => false,
    })
}

/// Calls `pred` on the leaf values (strings, numbers, booleans, null) at a field, looking
/// through arrays; true when `pred` is true for any.
fn any_leaf(v: Option<&Value>, pred: &mut impl FnMut(&Value) -> bool) -> bool {
    match v {
        None | Some(Value::Object(_)) => false,
        Some(Value::Array(items)) => items.iter().any(|item| any_leaf(Some(item), pred)),
        Some(leaf) => pred(leaf),
    }
}

impl Node {
    /// `v` is the event's value where this level of the pattern sits.
    fn matches_value(&self, v: Option<&Value>) -> bool {
        match v {
            Some(Value::Object(map)) => self.matches_object(Some(map)),
            Some(Value::Array(items)) => {
                if self.absence_only {
                    !any_object(items, &mut |map| !self.matches_object(Some(map)))
                } else {
                    any_object(items, &mut |map| self.matches_object(Some(map)))
                        || (!any_object(items, &mut |_| true) && self.matches_object(None))
                }
            }
            _ => self.matches_object(None),
        }
    }

    fn matches_object(&self, map: Option<&Map<String, Value>>) -> bool {
        self.fields.iter().all(|(key, field)| {
            let v = map.and_then(|m| m.get(&**key));
            match field {
                Field::Leaf(conditions) => conditions.iter().any(|c| c.matches_field(v)),
                Field::Nested(node) => node.matches_value(v),
            }
        }) && (self.any_of.is_empty() || self.any_of.iter().any(|n| n.matches_object(map)))
    }
}

impl Condition {
    fn matches_field(&self, v: Option<&Value>) -> bool {
        match self {
            Condition::Exists(want) => any_leaf(v, &mut |_| true) == *want,
            _ => any_leaf(v, &mut |leaf| self.matches_leaf(leaf)),
        }
    }

    fn matches_leaf(&self, v: &Value) -> bool {
        match (self, v) {
            (Condition::String { text, ip }, Value::String(s)) => {
                **text == **s || ip.is_some_and(|ip| parse_ip(s) == Some(ip))
            }
            (Condition::Number(n), Value::Number(m)) => numbers_equal(n, m),
            (Condition::Bool(b), Value::Bool(c)) => b == c,
            (Condition::Null, Value::Null) => true,
            (Condition::Prefix(p), Value::String(s)) => s.starts_with(&**p),
            (Condition::PrefixIgnoreCase(p), Value::String(s)) => starts_with_ignore_case(s, p),
            (Condition::Suffix(p), Value::String(s)) => s.ends_with(&**p),
            (Condition::SuffixIgnoreCase(p), Value::String(s)) => ends_with_ignore_case(s, p),
            (Condition::EqualsIgnoreCase(p), Value::String(s)) => equals_ignore_case(s, p),
            (Condition::Wildcard(w), Value::String(s)) => w.matches(s),
            (Condition::Numeric(n), Value::Number(m)) => m.as_f64().is_some_and(|x| n.contains(x)),
            (Condition::Cidr(c), Value::String(s)) => c.contains(s),
            (Condition::AnythingBut(a), v) => a.matches(v),
            _ => false,
        }
    }
}

impl AnythingBut {
    fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            (AnythingBut::Strings(set), Value::String(s)) => !set.iter().any(|x| **x == **s),
            (AnythingBut::Numbers(set), Value::Number(n)) => {
                n.as_f64().is_none_or(|x| !set.contains(&x))
            }
            (AnythingBut::Prefixes(set), Value::String(s)) => {
                !set.iter().any(|p| s.starts_with(&**p))
            }
            (AnythingBut::Suffixes(set), Value::String(s)) => {
                !set.iter().any(|p| s.ends_with(&**p))
            }
            (AnythingBut::IgnoreCase(set), Value::String(s)) => {
                !set.iter().any(|p| equals_ignore_case(s, p))
            }
            (AnythingBut::Wildcards(set), Value::String(s)) => !set.iter().any(|w| w.matches(s)),
            // A value of another type (or null) is never one of the excluded values.
            _ => true,
        }
    }
}

impl Numeric {
    fn contains(&self, x: f64) -> bool {
        match *self {
            Numeric::Equals(y) => x == y,
            Numeric::Range {
                low,
                low_open,
                high,
                high_open,
            } => (x > low || (!low_open && x == low)) && (x < high || (!high_open && x == high)),
        }
    }
}

/// Numeric equality of two JSON numbers: exact for integers, as doubles otherwise, so `300`,
/// `300.0` and `3.0e2` are equal.
fn numbers_equal(a: &Number, b: &Number) -> bool {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x == y;
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn equals_ignore_case(s: &str, lower: &str) -> bool {
    s.chars().flat_map(char::to_lowercase).eq(lower.chars())
}

fn starts_with_ignore_case(s: &str, lower_prefix: &str) -> bool {
    let mut folded = s.chars().flat_map(char::to_lowercase);
    lower_prefix.chars().all(|c| folded.next() == Some(c))
}

fn ends_with_ignore_case(s: &str, lower_suffix: &str) -> bool {
    let mut folded = s.chars().rev().flat_map(|c| c.to_lowercase().rev());
    lower_suffix.chars().rev().all(|c| folded.next() == Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_pieces_split_at_unescaped_stars() {
        let w = Wildcard::compile(r"a\*b*c\\d*").unwrap();
        let pieces: Vec<&str> = w.pieces.iter().map(|p| &**p).collect();
        assert_eq!(pieces, ["a*b", r"c\d", ""]);
    }

    #[test]
    fn wildcard_prefix_and_suffix_must_not_overlap() {
        let w = Wildcard::compile("ab*ba").unwrap();
        assert!(w.matches("abba"));
        assert!(w.matches("ab-ba"));
        assert!(!w.matches("aba"));
    }

    #[test]
    fn cidr_range_runs_from_the_base_to_the_base_with_host_bits_set() {
        let c = Cidr::compile("10.0.0.0/24").unwrap();
        assert_eq!((c.low, c.high), (0x0a00_0000, 0x0a00_00ff));
        let all = Cidr::compile("::/0").unwrap();
        assert_eq!((all.low, all.high), (0, u128::MAX));
    }

    #[test]
    fn ignore_case_folding_handles_multi_char_lowercase() {
        // 'İ' lowercases to "i\u{307}".
        assert!(equals_ignore_case(
            "İstanbul",
            &lowercase("i\u{307}STANBUL")
        ));
        assert!(ends_with_ignore_case("xİ", &lowercase("İ")));
        assert!(starts_with_ignore_case("İx", &lowercase("İ")));
    }
}
