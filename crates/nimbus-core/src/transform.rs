//! EventBridge target input: how a rule target reshapes a matched event before delivery
//! (`Input`, `InputPath` and `InputTransformer` of `AWS::Events::Rule` targets and PutTargets).
//!
//! The rules follow the EventBridge API reference (`Target`, `InputTransformer`) and the user
//! guide's "Amazon EventBridge input transformation" page. Where the two are silent or disagree,
//! nimbus follows responses recorded from AWS in LocalStack's AWS-validated input tests
//! (`test_events_inputs.snapshot.json`); those cases are marked "recorded" below.
//!
//! - At most one of `Input`, `InputPath` and `InputTransformer` may be set. With none, the target
//!   gets the whole event as compact JSON.
//! - `Input` (at most 8192 characters) must be valid JSON and is delivered exactly as written.
//! - `InputPath` (at most 256 characters) is a JSONPath: `$`, then any of `.name`, `['name']`,
//!   `["name"]`, `[3]`, `.*` and `[*]`. A dotted name may hold dashes, slashes, colons and any
//!   other character but whitespace, quotes, `.`, `[`, `]` and `*`. Recursive descent (`..`),
//!   filters, slices, unions and negative indexes are refused: EventBridge supports "dot notation,
//!   array indices and wildcards" only. A path without a wildcard selects one value or nothing; a
//!   path with one selects an array of every match (possibly empty), as JSONPath libraries do.
//!   When the path selects nothing, AWS does not document what the target gets; nimbus delivers
//!   `null`, so every target still receives valid JSON.
//! - `InputTransformer`: `InputPathsMap` has at most 100 entries; keys are 1 to 256 characters of
//!   `[A-Za-z0-9_-]` (the API's key pattern, so no key can shadow a predefined `aws.*` variable);
//!   values are JSONPaths as above. `InputTemplate` is 1 to 8192 characters. Every `<name>` in the
//!   template must be a key of the map or a predefined variable, or PutTargets fails ("contains
//!   invalid placeholder", recorded). A `<` that does not start `<name>` (name characters
//!   `[A-Za-z0-9_.-]`) is plain text.
//! - Predefined variables: `aws.events.rule-arn`, `aws.events.rule-name`,
//!   `aws.events.event.ingestion-time` (strings given by the caller), `aws.events.event.json` (the
//!   whole event) and `aws.events.event` (the event without `detail`, with `detail-type` renamed
//!   `detailType`, recorded).
//!
//! How a placeholder is filled depends on where it stands. A template whose first non-blank
//! character is `{`, `[` or `"`, or that is one placeholder alone, is treated as JSON and scanned
//! for string literals:
//!
//! - Outside a string literal the value is inserted as JSON: strings quoted, objects and arrays as
//!   compact JSON. A path that selects nothing inserts `""` (recorded: `{"command": <command>}`
//!   with a missing path delivers `{"command": ""}`).
//! - Inside a string literal the value's text is inserted: a string without its quotes, anything
//!   else as compact JSON text. Either way it is escaped (`"`, `\`, control characters) so the
//!   payload stays valid JSON. A path that selects nothing inserts nothing (recorded). AWS says it
//!   does not escape extracted values and that the two event variables work only outside strings;
//!   nimbus escapes them all rather than deliver broken JSON.
//! - A placeholder may not be an object key, quoted or not (API reference).
//! - A template that is a JSON string literal is delivered with its quotes:
//!   `"instance <instance> is in <state>"` gives `"instance i-0123456789 is in RUNNING"`
//!   (recorded: the SQS body keeps the quotes).
//! - Templates starting with `{` or `[` are minified: blanks outside string literals are dropped
//!   ("the JSON that is passed to the target is minified"). Other templates keep their spacing.
//!
//! Any other template is plain text (the API reference's `<instance> is in state <status>`): each
//! placeholder inserts the value's text as is, strings unquoted and objects as compact JSON, with
//! no escaping; a path that selects nothing inserts nothing.
//!
//! Everything is checked once by [`TargetInput::parse`]; [`TargetInput::apply`] cannot fail.

use serde_json::{Map, Value};
use std::borrow::Cow;

use crate::json::kind;

/// Longest `Input`, in characters.
pub const MAX_INPUT_CHARS: usize = 8192;
/// Longest `InputPath` or `InputPathsMap` value, in characters.
pub const MAX_PATH_CHARS: usize = 256;
/// Most entries an `InputPathsMap` may have.
pub const MAX_PATHS: usize = 100;
/// Longest `InputPathsMap` key, in characters.
pub const MAX_KEY_CHARS: usize = 256;
/// Longest `InputTemplate`, in characters.
pub const MAX_TEMPLATE_CHARS: usize = 8192;

const RULE_ARN: &str = "aws.events.rule-arn";
const RULE_NAME: &str = "aws.events.rule-name";
const INGESTION_TIME: &str = "aws.events.event.ingestion-time";
const EVENT: &str = "aws.events.event";
const EVENT_JSON: &str = "aws.events.event.json";

/// Why a JSONPath was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JSONPath {path:?}, character {at}: {reason}")]
pub struct JsonPathError {
    /// The path as written.
    pub path: String,
    /// Where the problem starts, counted in characters from 0.
    pub at: usize,
    pub reason: String,
}

/// Why a target's input settings were rejected.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// More than one of the three settings was given; names them (`"Input and InputPath"`).
    #[error("only one of Input, InputPath or InputTransformer may be set, but {0} are")]
    Conflicting(String),
    #[error("Input is not valid JSON: {0}")]
    InputNotJson(#[source] serde_json::Error),
    #[error("Input is {0} characters long; EventBridge allows at most {MAX_INPUT_CHARS}")]
    InputTooLong(usize),
    #[error("InputPath: {0}")]
    InputPath(#[source] JsonPathError),
    #[error("InputPathsMap has {0} entries; EventBridge allows at most {MAX_PATHS}")]
    TooManyPaths(usize),
    #[error("InputPathsMap key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("InputPathsMap value of {key:?} is {kind}, not a JSONPath string")]
    PathNotString { key: String, kind: &'static str },
    #[error("InputPathsMap value of {key:?}: {source}")]
    InvalidMapPath { key: String, source: JsonPathError },
    #[error(
        "InputTemplate is {0} characters long; EventBridge requires 1 to {MAX_TEMPLATE_CHARS}"
    )]
    TemplateLength(usize),
    /// `at` counts characters from 0 and points at the `<`.
    #[error(
        "InputTemplate placeholder <{name}> (character {at}) is neither an InputPathsMap key nor \
         a predefined variable"
    )]
    UnknownPlaceholder { name: String, at: usize },
    #[error(
        "InputTemplate placeholder <{name}> (character {at}) is used as an object key, which \
         EventBridge does not allow"
    )]
    PlaceholderAsKey { name: String, at: usize },
}

/// What a rule's delivery knows besides the event: the values of the predefined variables.
#[derive(Debug, Clone, Copy)]
pub struct TransformContext<'a> {
    pub rule_arn: &'a str,
    pub rule_name: &'a str,
    /// When EventBridge received the event, ISO 8601 (`2015-11-11T21:29:54Z`).
    pub ingestion_time: &'a str,
}

/// What a target receives, parsed and validated.
#[derive(Debug, Clone)]
pub enum TargetInput {
    /// No setting: the whole event.
    Event,
    /// `Input`: this JSON text, whatever the event.
    Constant(String),
    /// `InputPath`: the part of the event the path selects.
    Path(JsonPath),
    /// `InputTransformer`.
    Transformer(Transformer),
}

impl TargetInput {
    /// Validates a target's `Input`, `InputPath` and `InputTransformer` (its `InputPathsMap`, empty
    /// when absent, and its `InputTemplate`).
    pub fn parse(
        input: Option<&str>,
        input_path: Option<&str>,
        transformer: Option<(&Map<String, Value>, &str)>,
    ) -> Result<TargetInput, TransformError> {
        let given: Vec<&str> = [
            input.map(|_| "Input"),
            input_path.map(|_| "InputPath"),
            transformer.map(|_| "InputTransformer"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() > 1 {
            let listed = match given.as_slice() {
                [a, b] => format!("{a} and {b}"),
                _ => "Input, InputPath and InputTransformer".to_string(),
            };
            return Err(TransformError::Conflicting(listed));
        }
        if let Some(text) = input {
            let len = text.chars().count();
            if len > MAX_INPUT_CHARS {
                return Err(TransformError::InputTooLong(len));
            }
            serde_json::from_str::<Value>(text).map_err(TransformError::InputNotJson)?;
            return Ok(TargetInput::Constant(text.to_string()));
        }
        if let Some(path) = input_path {
            return JsonPath::parse(path)
                .map(TargetInput::Path)
                .map_err(TransformError::InputPath);
        }
        if let Some((paths, template)) = transformer {
            return Transformer::parse(paths, template).map(TargetInput::Transformer);
        }
        Ok(TargetInput::Event)
    }

    /// The payload text delivered to the target for `event`.
    pub fn apply(&self, event: &Value, ctx: &TransformContext<'_>) -> String {
        match self {
            TargetInput::Event => event.to_string(),
            TargetInput::Constant(text) => text.clone(),
            TargetInput::Path(path) => match path.select(event) {
                Some(v) => v.to_string(),
                None => "null".to_string(),
            },
            TargetInput::Transformer(t) => t.apply(event, ctx),
        }
    }
}

/// A parsed JSONPath of the subset EventBridge supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
    /// No wildcard: the path names at most one value.
    definite: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(usize),
    Wildcard,
}

impl JsonPath {
    /// Parses `text` (`$.detail`, `$.resources[0]`, `$['a b']`, `$.items[*].id`).
    pub fn parse(text: &str) -> Result<JsonPath, JsonPathError> {
        let err = |at: usize, reason: &str| JsonPathError {
            path: text.to_string(),
            at,
            reason: reason.to_string(),
        };
        let chars: Vec<char> = text.chars().collect();
        if chars.len() > MAX_PATH_CHARS {
            return Err(err(
                MAX_PATH_CHARS,
                &format!("longer than {MAX_PATH_CHARS} characters"),
            ));
        }
        if chars.first() != Some(&'$') {
            return Err(err(0, "a JSONPath starts with `$`"));
        }
        let mut steps = Vec::new();
        let mut i = 1;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    i += 1;
                    match chars.get(i) {
                        Some('.') => {
                            return Err(err(i - 1, "recursive descent `..` is not supported"))
                        }
                        Some('*') => {
                            steps.push(Step::Wildcard);
                            i += 1;
                            continue;
                        }
                        _ => {}
                    }
                    let start = i;
                    while i < chars.len() && is_name_char(chars[i]) {
                        i += 1;
                    }
                    if i == start {
                        return Err(err(start, "expected a field name after `.`"));
                    }
                    steps.push(Step::Field(chars[start..i].iter().collect()));
                }
                '[' => {
                    let open = i;
                    i += 1;
                    let step = match chars.get(i) {
                        Some('*') => {
                            i += 1;
                            Step::Wildcard
                        }
                        Some(&quote @ ('\'' | '"')) => {
                            let mut name = String::new();
                            i += 1;
                            loop {
                                match chars.get(i) {
                                    None => return Err(err(open, "unclosed quoted name")),
                                    Some(&c) if c == quote => break,
                                    Some('\\') => {
                                        match chars.get(i + 1) {
                                            Some(&c @ ('\\' | '\'' | '"')) => {
                                                name.push(c);
                                                i += 2;
                                            }
                                            _ => return Err(err(
                                                i,
                                                "only \\\\, \\' and \\\" may be escaped in a name",
                                            )),
                                        }
                                    }
                                    Some(&c) => {
                                        name.push(c);
                                        i += 1;
                                    }
                                }
                            }
                            i += 1;
                            Step::Field(name)
                        }
                        Some(c) if c.is_ascii_digit() => {
                            let start = i;
                            while chars.get(i).is_some_and(char::is_ascii_digit) {
                                i += 1;
                            }
                            let digits: String = chars[start..i].iter().collect();
                            match digits.parse() {
                                Ok(n) => Step::Index(n),
                                Err(_) => return Err(err(start, "array index is too large")),
                            }
                        }
                        Some('-') => {
                            return Err(err(i, "negative array indexes are not supported"))
                        }
                        Some('?') => return Err(err(i, "filter expressions are not supported")),
                        Some(':') => return Err(err(i, "array slices are not supported")),
                        None => return Err(err(open, "unclosed `[`")),
                        Some(_) => {
                            return Err(err(
                                i,
                                "expected an array index, `*` or a quoted name after `[`",
                            ))
                        }
                    };
                    match chars.get(i) {
                        Some(']') => i += 1,
                        Some(':') => return Err(err(i, "array slices are not supported")),
                        Some(',') => return Err(err(i, "unions are not supported")),
                        _ => return Err(err(open, "expected `]` to close `[`")),
                    }
                    steps.push(step);
                }
                c => {
                    return Err(err(
                        i,
                        &format!("unexpected character {c:?}; expected `.` or `[`"),
                    ))
                }
            }
        }
        Ok(JsonPath {
            text: text.to_string(),
            definite: !steps.contains(&Step::Wildcard),
            steps,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// What the path selects in `value`: for a path without wildcards the value, if there is one;
    /// for a path with wildcards an array of every match, in document order.
    pub fn select<'v>(&self, value: &'v Value) -> Option<Cow<'v, Value>> {
        if self.definite {
            let mut current = value;
            for step in &self.steps {
                current = step_into(current, step)?;
            }
            return Some(Cow::Borrowed(current));
        }
        let mut current = vec![value];
        for step in &self.steps {
            let mut next = Vec::new();
            for v in current {
                match (step, v) {
                    (Step::Wildcard, Value::Object(map)) => next.extend(map.values()),
                    (Step::Wildcard, Value::Array(items)) => next.extend(items),
                    (Step::Wildcard, _) => {}
                    _ => next.extend(step_into(v, step)),
                }
            }
            current = next;
        }
        Some(Cow::Owned(Value::Array(
            current.into_iter().cloned().collect(),
        )))
    }
}

/// Characters allowed in a dotted name. Everything else either has a JSONPath meaning or is
/// more likely a typo than a field name.
fn is_name_char(c: char) -> bool {
    !matches!(c, '.' | '[' | ']' | '\'' | '"' | '*') && !c.is_whitespace() && !c.is_control()
}

fn step_into<'v>(v: &'v Value, step: &Step) -> Option<&'v Value> {
    match (step, v) {
        (Step::Field(name), Value::Object(map)) => map.get(name),
        (Step::Index(n), Value::Array(items)) => items.get(*n),
        _ => None,
    }
}

/// An `InputTransformer`, parsed and checked against its template.
#[derive(Debug, Clone)]
pub struct Transformer {
    template: String,
    paths: Vec<(String, JsonPath)>,
    pieces: Vec<Piece>,
    mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The template is JSON (or meant to be): placeholders are filled by position.
    Json,
    /// The template is plain text: placeholders insert raw text.
    Text,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Var { var: Var, in_string: bool },
}

#[derive(Debug, Clone, Copy)]
enum Var {
    /// Index into `Transformer::paths`.
    Path(usize),
    RuleArn,
    RuleName,
    IngestionTime,
    Event,
    EventJson,
}

#[derive(Debug, Clone, Copy)]
enum Container {
    Object { expect_key: bool },
    Array,
}

impl Transformer {
    /// Validates an `InputPathsMap` (JSONPath strings by variable name) and an `InputTemplate`.
    pub fn parse(paths_map: &Map<String, Value>, template: &str) -> Result<Self, TransformError> {
        if paths_map.len() > MAX_PATHS {
            return Err(TransformError::TooManyPaths(paths_map.len()));
        }
        let mut paths = Vec::with_capacity(paths_map.len());
        for (key, value) in paths_map {
            check_key(key)?;
            let Value::String(text) = value else {
                return Err(TransformError::PathNotString {
                    key: key.clone(),
                    kind: kind(value),
                });
            };
            let path = JsonPath::parse(text).map_err(|source| TransformError::InvalidMapPath {
                key: key.clone(),
                source,
            })?;
            paths.push((key.clone(), path));
        }

        let chars: Vec<char> = template.chars().collect();
        if chars.is_empty() || chars.len() > MAX_TEMPLATE_CHARS {
            return Err(TransformError::TemplateLength(chars.len()));
        }
        let trimmed = template.trim();
        let lone_placeholder = trimmed.starts_with('<')
            && placeholder_len(&trimmed.chars().skip(1).collect::<Vec<_>>())
                .is_some_and(|n| n + 2 == trimmed.chars().count());
        let mode = if trimmed.starts_with(['{', '[', '"']) || lone_placeholder {
            Mode::Json
        } else {
            Mode::Text
        };
        let minify = trimmed.starts_with(['{', '[']);

        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut in_string = false;
        let mut string_is_key = false;
        let mut stack: Vec<Container> = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '<' {
                if let Some(len) = placeholder_len(&chars[i + 1..]) {
                    let name: String = chars[i + 1..i + 1 + len].iter().collect();
                    let Some(var) = resolve(&name, &paths) else {
                        return Err(TransformError::UnknownPlaceholder { name, at: i });
                    };
                    let as_key = if in_string {
                        string_is_key
                    } else {
                        matches!(stack.last(), Some(Container::Object { expect_key: true }))
                    };
                    if mode == Mode::Json && as_key {
                        return Err(TransformError::PlaceholderAsKey { name, at: i });
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Var {
                        var,
                        in_string: mode == Mode::Json && in_string,
                    });
                    i += len + 2;
                    continue;
                }
            }
            if mode == Mode::Json {
                if in_string {
                    match c {
                        // An escaped quote or backslash must not end the string or escape the
                        // next character.
                        '\\' if matches!(chars.get(i + 1), Some('"' | '\\')) => {
                            text.push(c);
                            text.push(chars[i + 1]);
                            i += 2;
                            continue;
                        }
                        '"' => in_string = false,
                        _ => {}
                    }
                } else {
                    match c {
                        '"' => {
                            in_string = true;
                            string_is_key = matches!(
                                stack.last(),
                                Some(Container::Object { expect_key: true })
                            );
                        }
                        '{' => stack.push(Container::Object { expect_key: true }),
                        '[' => stack.push(Container::Array),
                        '}' | ']' => {
                            stack.pop();
                        }
                        ':' | ',' => {
                            if let Some(Container::Object { expect_key }) = stack.last_mut() {
                                *expect_key = c == ',';
                            }
                        }
                        c if minify && c.is_whitespace() => {
                            i += 1;
                            continue;
                        }
                        _ => {}
                    }
                }
            }
            text.push(c);
            i += 1;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Transformer {
            template: template.to_string(),
            paths,
            pieces,
            mode,
        })
    }

    /// The template as written.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The `InputPathsMap` entries, by variable name.
    pub fn paths(&self) -> impl Iterator<Item = (&str, &JsonPath)> {
        self.paths.iter().map(|(k, p)| (k.as_str(), p))
    }

    /// The filled-in template for `event`.
    pub fn apply(&self, event: &Value, ctx: &TransformContext<'_>) -> String {
        let mut out = String::with_capacity(self.template.len());
        // Built on first use: most templates never mention `<aws.events.event>`.
        let mut event_without_detail: Option<Value> = None;
        for piece in &self.pieces {
            let (var, in_string) = match piece {
                Piece::Text(text) => {
                    out.push_str(text);
                    continue;
                }
                Piece::Var { var, in_string } => (*var, *in_string),
            };
            let value = match var {
                Var::RuleArn => Some(Cow::Owned(Value::String(ctx.rule_arn.to_string()))),
                Var::RuleName => Some(Cow::Owned(Value::String(ctx.rule_name.to_string()))),
                Var::IngestionTime => {
                    Some(Cow::Owned(Value::String(ctx.ingestion_time.to_string())))
                }
                Var::EventJson => Some(Cow::Borrowed(event)),
                Var::Event => Some(Cow::Borrowed(
                    &*event_without_detail.get_or_insert_with(|| strip_detail(event)),
                )),
                Var::Path(n) => self.paths[n].1.select(event),
            };
            self.insert(&mut out, value.as_deref(), in_string);
        }
        out
    }

    fn insert(&self, out: &mut String, value: Option<&Value>, in_string: bool) {
        match (self.mode, in_string, value) {
            // Recorded AWS behaviour: a missing value outside quotes becomes an empty string.
            (Mode::Json, false, None) => out.push_str("\"\""),
            (_, _, None) => {}
            (Mode::Json, false, Some(v)) => out.push_str(&v.to_string()),
            (Mode::Json, true, Some(Value::String(s))) => push_escaped(out, s),
            (Mode::Json, true, Some(v)) => push_escaped(out, &v.to_string()),
            (Mode::Text, _, Some(Value::String(s))) => out.push_str(s),
            (Mode::Text, _, Some(v)) => out.push_str(&v.to_string()),
        }
    }
}

/// What `<aws.events.event>` holds: AWS drops `detail` and spells `detail-type` as `detailType`.
fn strip_detail(event: &Value) -> Value {
    let Value::Object(map) = event else {
        return event.clone();
    };
    let stripped = map
        .iter()
        .filter(|(k, _)| k.as_str() != "detail")
        .map(|(k, v)| {
            let key = if k == "detail-type" { "detailType" } else { k };
            (key.to_string(), v.clone())
        })
        .collect();
    Value::Object(stripped)
}

fn check_key(key: &str) -> Result<(), TransformError> {
    let invalid = |reason: String| TransformError::InvalidKey {
        key: key.to_string(),
        reason,
    };
    let len = key.chars().count();
    if len == 0 {
        return Err(invalid("a key must not be empty".to_string()));
    }
    if len > MAX_KEY_CHARS {
        return Err(invalid(format!(
            "{len} characters long; EventBridge allows at most {MAX_KEY_CHARS}"
        )));
    }
    if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws.")) {
        return Err(invalid(
            "names starting with \"aws.\" are reserved for predefined variables".to_string(),
        ));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(invalid(format!(
            "{c:?} is not allowed; keys use letters, digits, `_` and `-`"
        )));
    }
    Ok(())
}

/// The length of the name when `rest` (what follows a `<`) is `name>`.
fn placeholder_len(rest: &[char]) -> Option<usize> {
    let len = rest
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .count();
    (len > 0 && rest.get(len) == Some(&'>')).then_some(len)
}

fn resolve(name: &str, paths: &[(String, JsonPath)]) -> Option<Var> {
    Some(match name {
        RULE_ARN => Var::RuleArn,
        RULE_NAME => Var::RuleName,
        INGESTION_TIME => Var::IngestionTime,
        EVENT => Var::Event,
        EVENT_JSON => Var::EventJson,
        _ => Var::Path(paths.iter().position(|(k, _)| k == name)?),
    })
}

/// Appends `s` escaped for the inside of a JSON string literal.
fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
}
