//! Intrinsic functions (`States.Format(...)`, `States.Hash(...)`, ...), the small expression
//! language of `.$` payload-template values and of `ErrorPath`/`CausePath`.
//!
//! Parsing happens once, when a definition is accepted; evaluation is pure apart from
//! `States.UUID` and unseeded `States.MathRandom`, which draw on the thread RNG.
//!
//! Where the AWS documentation and AWS's recorded behaviour disagree, the behaviour wins:
//! `States.Format` renders objects and arrays Java-style (`{a=1, b=[]}`) rather than refusing
//! them, `States.MathAdd` (and every other integer argument) accepts a float and rounds it
//! half-up as Java's `Math.round` does, and `States.StringToJson` of a blank string is `null`.

use base64::Engine as _;
use md5::Digest as _;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Number, Value};

use crate::error::StatesError;
use crate::path::Path;

/// AWS allows up to 10 intrinsic functions nested within one field.
const MAX_NESTING: usize = 10;
/// `States.ArrayRange` may build at most this many items.
const MAX_RANGE_ITEMS: i128 = 1000;
/// `States.Base64Encode`, `States.Base64Decode` and `States.Hash` take at most this many
/// characters.
const MAX_STRING_CHARS: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Intrinsic {
    text: String,
    call: Call,
}

#[derive(Debug, Clone, PartialEq)]
struct Call {
    func: Func,
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Str(StrLit),
    Number(Number),
    Bool(bool),
    Null,
    Path(Path),
    Call(Box<Call>),
}

/// A quoted literal: its value with escapes resolved, and (for `States.Format`) where its
/// unescaped `{}` placeholders are. An escape AWS does not define makes the call fail when
/// it runs, as the documentation says, so the literal keeps that reason.
#[derive(Debug, Clone, PartialEq)]
struct StrLit {
    value: String,
    template: Vec<Piece>,
    bad_escape: Option<char>,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Hole,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "States.Format" => Func::Format,
            "States.StringToJson" => Func::StringToJson,
            "States.JsonToString" => Func::JsonToString,
            "States.Array" => Func::Array,
            "States.ArrayPartition" => Func::ArrayPartition,
            "States.ArrayContains" => Func::ArrayContains,
            "States.ArrayRange" => Func::ArrayRange,
            "States.ArrayGetItem" => Func::ArrayGetItem,
            "States.ArrayLength" => Func::ArrayLength,
            "States.ArrayUnique" => Func::ArrayUnique,
            "States.Base64Encode" => Func::Base64Encode,
            "States.Base64Decode" => Func::Base64Decode,
            "States.Hash" => Func::Hash,
            "States.JsonMerge" => Func::JsonMerge,
            "States.MathRandom" => Func::MathRandom,
            "States.MathAdd" => Func::MathAdd,
            "States.StringSplit" => Func::StringSplit,
            "States.UUID" => Func::Uuid,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Func::Format => "States.Format",
            Func::StringToJson => "States.StringToJson",
            Func::JsonToString => "States.JsonToString",
            Func::Array => "States.Array",
            Func::ArrayPartition => "States.ArrayPartition",
            Func::ArrayContains => "States.ArrayContains",
            Func::ArrayRange => "States.ArrayRange",
            Func::ArrayGetItem => "States.ArrayGetItem",
            Func::ArrayLength => "States.ArrayLength",
            Func::ArrayUnique => "States.ArrayUnique",
            Func::Base64Encode => "States.Base64Encode",
            Func::Base64Decode => "States.Base64Decode",
            Func::Hash => "States.Hash",
            Func::JsonMerge => "States.JsonMerge",
            Func::MathRandom => "States.MathRandom",
            Func::MathAdd => "States.MathAdd",
            Func::StringSplit => "States.StringSplit",
            Func::Uuid => "States.UUID",
        }
    }

    /// Allowed argument counts, inclusive; `None` is unbounded.
    fn arity(self) -> (usize, Option<usize>) {
        match self {
            Func::Format => (1, None),
            Func::Array => (0, None),
            Func::Uuid => (0, Some(0)),
            Func::StringToJson
            | Func::JsonToString
            | Func::ArrayLength
            | Func::ArrayUnique
            | Func::Base64Encode
            | Func::Base64Decode => (1, Some(1)),
            Func::ArrayPartition
            | Func::ArrayContains
            | Func::ArrayGetItem
            | Func::Hash
            | Func::MathAdd
            | Func::StringSplit => (2, Some(2)),
            Func::MathRandom => (2, Some(3)),
            Func::ArrayRange | Func::JsonMerge => (3, Some(3)),
        }
    }
}

/// Whether a `.$` value is meant as an intrinsic call rather than a path.
pub fn looks_like_intrinsic(text: &str) -> bool {
    text.starts_with("States.")
}

/// Why an evaluation failed, before it is phrased as AWS phrases it.
enum Failure {
    /// A path argument matched nothing: `States.Runtime`.
    Missing { path: String, input: String },
    /// Anything else: `States.IntrinsicFailure`.
    Invalid(String),
}

type Eval<T> = Result<T, Failure>;

fn invalid<T>(message: impl Into<String>) -> Eval<T> {
    Err(Failure::Invalid(message.into()))
}

impl Intrinsic {
    pub fn parse(text: &str) -> Result<Intrinsic, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut p = Parser {
            chars: &chars,
            pos: 0,
        };
        let call = p.call(1)?;
        if p.pos != chars.len() {
            return Err(format!(
                "unexpected text after the closing parenthesis at position {}",
                p.pos
            ));
        }
        Ok(Intrinsic {
            text: text.to_string(),
            call,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Evaluates with `input` (what `$` refers to) and `context` (what `$$` refers to).
    pub fn eval(&self, input: &Value, context: &Value) -> Result<Value, StatesError> {
        self.eval_in(&crate::path::Roots::new(input, context))
    }

    /// [`Intrinsic::eval`] with workflow variables.
    pub fn eval_in(&self, roots: &crate::path::Roots<'_>) -> Result<Value, StatesError> {
        eval_call(&self.call, roots).map_err(|f| match f {
            Failure::Missing { path, input } => StatesError::runtime(format!(
                "The function '{}' had the following error: The JsonPath argument for the field '{path}' could not be found in the input '{input}'",
                self.text
            )),
            Failure::Invalid(message) => StatesError::new(
                "States.IntrinsicFailure",
                format!(
                    "The function '{}' had the following error: {message}",
                    self.text
                ),
            ),
        })
    }
}

fn eval_call(call: &Call, r: &crate::path::Roots<'_>) -> Eval<Value> {
    let name = call.func.name();
    if call.func == Func::Format {
        return format(call, r);
    }
    let mut args = Vec::with_capacity(call.args.len());
    for arg in &call.args {
        args.push(eval_arg(arg, r)?);
    }
    match (call.func, args.as_slice()) {
        (Func::Array, _) => Ok(Value::Array(args)),
        (Func::StringToJson, [v]) => {
            let s = string_arg(v, name, 1)?;
            // AWS returns null for an empty or blank string rather than failing.
            if s.trim().is_empty() {
                return Ok(Value::Null);
            }
            match serde_json::from_str(s) {
                Ok(v) => Ok(without_negative_zero(v)),
                Err(e) => invalid(format!("{name} could not parse its argument as JSON: {e}")),
            }
        }
        (Func::JsonToString, [v]) => serde_json::to_string(v)
            .map(Value::String)
            .or_else(|e| invalid(e.to_string())),
        (Func::ArrayPartition, [a, n]) => {
            let array = array_arg(a, name, 1)?;
            let size = int_arg(n, name, 2)?;
            let size = match usize::try_from(size) {
                Ok(s) if s > 0 => s,
                _ => return invalid(format!("{name} requires a positive chunk size, got {size}")),
            };
            Ok(Value::Array(
                array
                    .chunks(size)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            ))
        }
        (Func::ArrayContains, [a, v]) => {
            let array = array_arg(a, name, 1)?;
            Ok(Value::Bool(array.iter().any(|item| json_eq(item, v))))
        }
        (Func::ArrayRange, [s, e, st]) => {
            let (start, end, step) = (
                int_arg(s, name, 1)?,
                int_arg(e, name, 2)?,
                int_arg(st, name, 3)?,
            );
            array_range(start, end, step)
        }
        (Func::ArrayGetItem, [a, i]) => {
            let array = array_arg(a, name, 1)?;
            let index = int_arg(i, name, 2)?;
            usize::try_from(index)
                .ok()
                .and_then(|i| array.get(i))
                .cloned()
                .map_or_else(
                    || {
                        invalid(format!(
                            "{name} index {index} is out of bounds for an array of length {}",
                            array.len()
                        ))
                    },
                    Ok,
                )
        }
        (Func::ArrayLength, [a]) => Ok(Value::from(array_arg(a, name, 1)?.len())),
        (Func::ArrayUnique, [a]) => {
            let mut unique: Vec<Value> = Vec::new();
            for item in array_arg(a, name, 1)? {
                if !unique.iter().any(|u| json_eq(u, item)) {
                    unique.push(item.clone());
                }
            }
            Ok(Value::Array(unique))
        }
        (Func::Base64Encode, [v]) => {
            let s = limited_string_arg(v, name, 1)?;
            Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(s.as_bytes()),
            ))
        }
        (Func::Base64Decode, [v]) => {
            let s = limited_string_arg(v, name, 1)?;
            let bytes = match base64::engine::general_purpose::STANDARD.decode(s.as_bytes()) {
                Ok(b) => b,
                Err(e) => return invalid(format!("{name} received invalid Base64: {e}")),
            };
            String::from_utf8(bytes)
                .map(Value::String)
                .or_else(|_| invalid(format!("{name} decoded to bytes that are not UTF-8 text")))
        }
        (Func::Hash, [d, a]) => {
            let data = limited_string_arg(d, name, 1)?;
            let algorithm = string_arg(a, name, 2)?;
            hash(data, algorithm).map(Value::String)
        }
        (Func::JsonMerge, [l, r, deep]) => {
            let (Value::Object(left), Value::Object(right)) = (l, r) else {
                return invalid(format!("{name} requires two JSON objects to merge"));
            };
            match deep {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    return invalid(
                        "Currently, Step Functions only supports the shallow merging mode; therefore, you must specify the boolean value as false.",
                    )
                }
                _ => return invalid(format!("{name} requires a boolean as its third argument")),
            }
            let mut merged = left.clone();
            for (k, v) in right {
                merged.insert(k.clone(), v.clone());
            }
            Ok(Value::Object(merged))
        }
        (Func::MathRandom, [s, e, rest @ ..]) => {
            let (start, end) = (int_arg(s, name, 1)?, int_arg(e, name, 2)?);
            if start > end {
                return invalid(format!(
                    "{name} requires a start ({start}) no greater than its end ({end})"
                ));
            }
            let value = match rest.first() {
                Some(seed) => {
                    // A seed must give the same number every time; the value itself need
                    // not match AWS's (Java's) generator.
                    let seed = int_arg(seed, name, 3)?;
                    rand::rngs::StdRng::seed_from_u64(seed as u64).random_range(start..=end)
                }
                None => rand::rng().random_range(start..=end),
            };
            Ok(Value::from(value))
        }
        (Func::MathAdd, [a, b]) => {
            let (a, b) = (int_arg(a, name, 1)?, int_arg(b, name, 2)?);
            a.checked_add(b).map(Value::from).map_or_else(
                || invalid(format!("{name} overflowed adding {a} and {b}")),
                Ok,
            )
        }
        (Func::StringSplit, [s, d]) => {
            let (text, delimiters) = (string_arg(s, name, 1)?, string_arg(d, name, 2)?);
            // Every character of the second argument is a delimiter, and empty pieces are
            // dropped, as AWS does (`",,a"` split on `","` is `["a"]`).
            let parts = text
                .split(|c| delimiters.contains(c))
                .filter(|p| !p.is_empty())
                .map(|p| Value::String(p.to_string()))
                .collect();
            Ok(Value::Array(parts))
        }
        (Func::Uuid, []) => Ok(Value::String(uuid::Uuid::new_v4().to_string())),
        // Arity is checked when parsing, so this is unreachable for a parsed call; answering
        // with an error keeps a future mismatch from panicking.
        (func, _) => invalid(format!("{} received {} arguments", func.name(), args.len())),
    }
}

fn eval_arg(arg: &Arg, r: &crate::path::Roots<'_>) -> Eval<Value> {
    match arg {
        Arg::Str(lit) => match lit.bad_escape {
            Some(c) => invalid(format!("the escape sequence '\\{c}' is not supported")),
            None => Ok(Value::String(lit.value.clone())),
        },
        Arg::Number(n) => Ok(Value::Number(n.clone())),
        Arg::Bool(b) => Ok(Value::Bool(*b)),
        Arg::Null => Ok(Value::Null),
        Arg::Call(call) => eval_call(call, r),
        Arg::Path(path) => {
            let root = r.root(path);
            root.and_then(|root| path.select(root))
                .ok_or_else(|| Failure::Missing {
                    path: path.as_str().to_string(),
                    input: serde_json::to_string(root.unwrap_or(r.input)).unwrap_or_default(),
                })
        }
    }
}

fn format(call: &Call, r: &crate::path::Roots<'_>) -> Eval<Value> {
    let name = Func::Format.name();
    let Some((first, rest)) = call.args.split_first() else {
        return invalid(format!("{name} requires a template string"));
    };
    // A literal template knows its escaped braces; a template that comes from the input or
    // another function has no escapes, so every `{}` in it is a placeholder.
    let template = match first {
        Arg::Str(lit) => {
            if let Some(c) = lit.bad_escape {
                return invalid(format!("the escape sequence '\\{c}' is not supported"));
            }
            lit.template.clone()
        }
        other => match eval_arg(other, r)? {
            Value::String(s) => split_placeholders(&s),
            _ => return invalid(format!("{name} requires a string as its first argument")),
        },
    };
    let holes = template.iter().filter(|p| matches!(p, Piece::Hole)).count();
    if holes != rest.len() {
        return invalid(format!(
            "{name} has {holes} placeholders but {} arguments to fill them",
            rest.len()
        ));
    }
    let mut values = Vec::with_capacity(rest.len());
    for arg in rest {
        values.push(eval_arg(arg, r)?);
    }
    let mut values = values.iter();
    let mut out = String::new();
    for piece in &template {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Hole => {
                if let Some(v) = values.next() {
                    out.push_str(&format_value(v));
                }
            }
        }
    }
    Ok(Value::String(out))
}

fn split_placeholders(s: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.find("{}") {
        if at > 0 {
            pieces.push(Piece::Text(rest[..at].to_string()));
        }
        pieces.push(Piece::Hole);
        rest = &rest[at + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    pieces
}

/// How `States.Format` writes a value: strings bare, scalars as JSON, and containers the way
/// Java's `toString` writes lists and maps, which is what AWS produces.
fn format_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(format_value).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", format_value(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        other => other.to_string(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string_arg<'a>(v: &'a Value, name: &str, position: usize) -> Eval<&'a str> {
    match v {
        Value::String(s) => Ok(s),
        other => invalid(format!(
            "{name} requires a string as argument {position}, got {}",
            type_name(other)
        )),
    }
}

fn limited_string_arg<'a>(v: &'a Value, name: &str, position: usize) -> Eval<&'a str> {
    let s = string_arg(v, name, position)?;
    let chars = s.chars().count();
    if chars > MAX_STRING_CHARS {
        return invalid(format!(
            "{name} accepts at most {MAX_STRING_CHARS} characters, got {chars}"
        ));
    }
    Ok(s)
}

fn array_arg<'a>(v: &'a Value, name: &str, position: usize) -> Eval<&'a Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        other => invalid(format!(
            "{name} requires an array as argument {position}, got {}",
            type_name(other)
        )),
    }
}

/// An integer argument. AWS rounds a float half-up (Java's `Math.round`) instead of refusing
/// it, so `1.5` is 2 and `-1.5` is -1.
fn int_arg(v: &Value, name: &str, position: usize) -> Eval<i64> {
    let fail = || {
        invalid(format!(
            "{name} requires an integer as argument {position}, got {}",
            match v {
                Value::Number(n) => n.to_string(),
                other => type_name(other).to_string(),
            }
        ))
    };
    let Value::Number(n) = v else {
        return fail();
    };
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.is_finite() => {
            let rounded = (f + 0.5).floor();
            // i64::MAX is not exactly representable; staying strictly below 2^63 keeps the
            // cast exact.
            if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&rounded) {
                Ok(rounded as i64)
            } else {
                fail()
            }
        }
        _ => fail(),
    }
}

fn array_range(start: i64, end: i64, step: i64) -> Eval<Value> {
    let name = Func::ArrayRange.name();
    if step == 0 {
        return invalid(format!("{name} requires a non-zero step"));
    }
    let (s, e, st) = (i128::from(start), i128::from(end), i128::from(step));
    let count = if (st > 0 && s <= e) || (st < 0 && s >= e) {
        (e - s) / st + 1
    } else {
        0
    };
    if count > MAX_RANGE_ITEMS {
        return invalid(format!(
            "{name} can create at most {MAX_RANGE_ITEMS} items, this range has {count}"
        ));
    }
    let items = (0..count)
        .filter_map(|k| i64::try_from(s + k * st).ok())
        .map(Value::from)
        .collect();
    Ok(Value::Array(items))
}

fn hash(data: &str, algorithm: &str) -> Eval<String> {
    let bytes = data.as_bytes();
    let digest: Vec<u8> = match algorithm {
        "MD5" => md5::Md5::digest(bytes).to_vec(),
        "SHA-1" => sha1_smol::Sha1::from(bytes).digest().bytes().to_vec(),
        "SHA-256" => sha2::Sha256::digest(bytes).to_vec(),
        "SHA-384" => sha2::Sha384::digest(bytes).to_vec(),
        "SHA-512" => sha2::Sha512::digest(bytes).to_vec(),
        other => {
            return invalid(format!(
                "States.Hash does not support the algorithm '{other}'; use MD5, SHA-1, SHA-256, SHA-384 or SHA-512"
            ))
        }
    };
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// serde_json reads `-0` as the float -0.0 where AWS (Jackson) reads the integer 0.
fn without_negative_zero(v: Value) -> Value {
    match v {
        Value::Number(n) if n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative()) => {
            Value::from(0)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(without_negative_zero).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, without_negative_zero(v)))
                .collect(),
        ),
        other => other,
    }
}

/// JSON equality with numbers compared by value, so `1` and `1.0` are the same item.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.chars.get(self.pos + i) == Some(&c))
    }

    fn call(&mut self, depth: usize) -> Result<Call, String> {
        if depth > MAX_NESTING {
            return Err(format!(
                "intrinsic functions can be nested at most {MAX_NESTING} deep"
            ));
        }
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        let func = Func::from_name(&name).ok_or_else(|| {
            if name.is_empty() {
                "expected an intrinsic function name".to_string()
            } else {
                format!("unknown intrinsic function '{name}'")
            }
        })?;
        if self.peek() != Some('(') {
            return Err(format!("expected '(' after {name}"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
        } else {
            loop {
                args.push(self.arg(depth)?);
                self.skip_ws();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    Some(c) => {
                        return Err(format!(
                            "unexpected '{c}' at position {} in {name}",
                            self.pos
                        ))
                    }
                    None => return Err(format!("missing ')' closing {name}")),
                }
            }
        }
        let (min, max) = func.arity();
        if args.len() < min || max.is_some_and(|m| args.len() > m) {
            let expected = match max {
                Some(m) if m == min => format!("{min}"),
                Some(m) => format!("{min} to {m}"),
                None => format!("at least {min}"),
            };
            return Err(format!(
                "{name} takes {expected} arguments, got {}",
                args.len()
            ));
        }
        Ok(Call { func, args })
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, String> {
        self.skip_ws();
        match self.peek() {
            Some('\'') => self.string().map(Arg::Str),
            Some('$') => {
                let text = self.path_text()?;
                Path::parse(&text)
                    .map(Arg::Path)
                    .map_err(|e| format!("invalid path '{text}': {e}"))
            }
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let word = self.word(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'));
                match serde_json::from_str::<Value>(&word) {
                    Ok(Value::Number(n)) => Ok(Arg::Number(n)),
                    _ => Err(format!("invalid number '{word}'")),
                }
            }
            Some(_) if self.starts_with("States.") => {
                self.call(depth + 1).map(|c| Arg::Call(Box::new(c)))
            }
            Some(_) => {
                let word = self.word(|c| c.is_ascii_alphanumeric());
                match word.as_str() {
                    "true" => Ok(Arg::Bool(true)),
                    "false" => Ok(Arg::Bool(false)),
                    "null" => Ok(Arg::Null),
                    "" => Err(format!("expected an argument at position {}", self.pos)),
                    other => Err(format!("invalid argument '{other}'")),
                }
            }
            None => Err("the call ended before its arguments".to_string()),
        }
    }

    fn word(&mut self, allowed: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&allowed) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// A path runs to the next `,` or `)` outside brackets and quotes, so `$['a,b']` and
    /// filters with parentheses stay whole.
    fn path_text(&mut self) -> Result<String, String> {
        let start = self.pos;
        let mut brackets = 0usize;
        let mut parens = 0usize;
        let mut quote: Option<char> = None;
        while let Some(c) = self.peek() {
            if let Some(q) = quote {
                if c == '\\' {
                    self.pos += 1;
                } else if c == q {
                    quote = None;
                }
            } else {
                match c {
                    '\'' | '"' => quote = Some(c),
                    '[' => brackets += 1,
                    ']' => brackets = brackets.saturating_sub(1),
                    '(' => parens += 1,
                    ')' if parens > 0 => parens -= 1,
                    ')' | ',' if brackets == 0 => break,
                    _ => {}
                }
            }
            self.pos += 1;
        }
        if quote.is_some() {
            return Err("unterminated quote in a path argument".to_string());
        }
        let end = self.pos.min(self.chars.len());
        Ok(self.chars[start..end]
            .iter()
            .collect::<String>()
            .trim_end()
            .to_string())
    }

    fn string(&mut self) -> Result<StrLit, String> {
        self.pos += 1; // the opening quote
        let mut value = String::new();
        let mut template = Vec::new();
        let mut text = String::new();
        let mut bad_escape = None;
        loop {
            let Some(c) = self.peek() else {
                return Err("unterminated string literal".to_string());
            };
            self.pos += 1;
            match c {
                '\'' => break,
                '\\' => {
                    let Some(next) = self.peek() else {
                        return Err("unterminated string literal".to_string());
                    };
                    self.pos += 1;
                    if !matches!(next, '\'' | '{' | '}' | '\\') && bad_escape.is_none() {
                        bad_escape = Some(next);
                    }
                    value.push(next);
                    text.push(next);
                }
                '{' if self.peek() == Some('}') => {
                    self.pos += 1;
                    value.push_str("{}");
                    if !text.is_empty() {
                        template.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    template.push(Piece::Hole);
                }
                other => {
                    value.push(other);
                    text.push(other);
                }
            }
        }
        if !text.is_empty() {
            template.push(Piece::Text(text));
        }
        Ok(StrLit {
            value,
            template,
            bad_escape,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input() -> Value {
        json!({
            "name": "Arnav",
            "template": "Hello, my name is {}.",
            "Id": 123456,
            "escapedJsonString": "{\"foo\": \"bar\"}",
            "unescapedJson": {"foo": "bar"},
            "inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9],
            "dupes": [1, 2, 3, 3, 3, 3, 3, 3, 4],
            "index": 5,
            "lookingFor": 5,
            "data": "input data",
            "base64": "RGF0YSB0byBlbmNvZGU=",
            "json1": {"a": {"a1": 1, "a2": 2}, "b": 2},
            "json2": {"a": {"a3": 1, "a4": 2}, "c": 3},
            "value1": 111,
            "step": -1,
            "inputString": "1,2,3,4,5",
            "splitter": ",",
            "obj": {"Arg1": 1, "Arg2": []},
            "nested": [1, "two", [3], {"k": null}],
            "half": 1.5,
            "negHalf": -1.5,
            "text": "x",
            "ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:123:image-recipe/my-recipe.v1/1.0.0"}
        })
    }

    fn context() -> Value {
        json!({"Execution": {"Id": "arn:aws:states:us-east-1:123:execution:sm:run-1", "Name": "run-1"}})
    }

    fn run(text: &str) -> Result<Value, StatesError> {
        let parsed = Intrinsic::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        parsed.eval(&input(), &context())
    }

    #[test]
    fn evaluates_aws_documented_and_recorded_examples() {
        let cases: Vec<(&str, Value)> = vec![
            ("States.Format('Hello, my name is {}.', $.name)", json!("Hello, my name is Arnav.")),
            ("States.Format($.template, $.name)", json!("Hello, my name is Arnav.")),
            ("States.Format('Your name is {}, we are in the year {}', $.name, 2020)", json!("Your name is Arnav, we are in the year 2020")),
            ("States.Format('no placeholders')", json!("no placeholders")),
            ("States.Format('{} {} {} {}', null, 1.1, true, $.Id)", json!("null 1.1 true 123456")),
            ("States.Format('fst={}.', $.obj)", json!("fst={Arg1=1, Arg2=[]}.")),
            ("States.Format('{}', $.nested)", json!("[1, two, [3], {k=null}]")),
            ("States.Format('{}', $$.Execution.Name)", json!("run-1")),
            ("States.Format('{}{}', 'a', 'b')", json!("ab")),
            ("States.StringToJson($.escapedJsonString)", json!({"foo": "bar"})),
            ("States.StringToJson('')", json!(null)),
            ("States.StringToJson(' ')", json!(null)),
            ("States.StringToJson('-0')", json!(0)),
            ("States.StringToJson('[-0, {\"a\": -0}]')", json!([0, {"a": 0}])),
            ("States.StringToJson('[1, 2, \"HelloWorld\"]')", json!([1, 2, "HelloWorld"])),
            ("States.JsonToString($.unescapedJson)", json!("{\"foo\":\"bar\"}")),
            ("States.JsonToString($.obj)", json!("{\"Arg1\":1,\"Arg2\":[]}")),
            ("States.JsonToString($.text)", json!("\"x\"")),
            ("States.Array($.Id)", json!([123456])),
            ("States.Array()", json!([])),
            ("States.Array('Foo', 2020, $.unescapedJson, null, true, -1.5)", json!(["Foo", 2020, {"foo": "bar"}, null, true, -1.5])),
            ("States.ArrayPartition($.inputArray,4)", json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]])),
            ("States.ArrayPartition(States.Array(), 2)", json!([])),
            ("States.ArrayContains($.inputArray, $.lookingFor)", json!(true)),
            ("States.ArrayContains($.inputArray, 10)", json!(false)),
            ("States.ArrayContains($.inputArray, 5.0)", json!(true)),
            ("States.ArrayContains($.nested, States.Array(3))", json!(true)),
            ("States.ArrayRange(1, 9, 2)", json!([1, 3, 5, 7, 9])),
            ("States.ArrayRange(0, 10, 3)", json!([0, 3, 6, 9])),
            ("States.ArrayRange(1, 9, 9)", json!([1])),
            ("States.ArrayRange(5, 1, -2)", json!([5, 3, 1])),
            ("States.ArrayRange(5, 1, 1)", json!([])),
            ("States.ArrayRange(1, 1000, 1)", Value::Array((1..=1000).map(Value::from).collect())),
            ("States.ArrayGetItem($.inputArray, $.index)", json!(6)),
            ("States.ArrayLength($.inputArray)", json!(9)),
            ("States.ArrayUnique($.dupes)", json!([1, 2, 3, 4])),
            ("States.ArrayUnique(States.Array(1, 1.0, 'a', 'a', null, null))", json!([1, "a", null])),
            ("States.Base64Encode('Data to encode')", json!("RGF0YSB0byBlbmNvZGU=")),
            ("States.Base64Encode('')", json!("")),
            ("States.Base64Decode($.base64)", json!("Data to encode")),
            ("States.Hash($.data, 'MD5')", json!("812f45842bc6d66ee14572ce20db8e86")),
            ("States.Hash($.data, 'SHA-1')", json!("aaff4a450a104cd177d28d18d74485e8cae074b7")),
            ("States.Hash($.data, 'SHA-256')", json!("b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3")),
            ("States.Hash($.data, 'SHA-384')", json!("d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562")),
            ("States.Hash($.data, 'SHA-512')", json!("6ce4adb348546d4f449c4d25aad9a7c9cb711d9e91982d3f0b29ca2f3f47d4ce2deba23bf2954f0f1d593fc50283731a533d30d425402d4f91316d871303aac4")),
            ("States.JsonMerge($.json1, $.json2, false)", json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3})),
            ("States.JsonMerge(States.StringToJson('{\"k\": \"false\"}'), $.json2, false)", json!({"k": "false", "a": {"a3": 1, "a4": 2}, "c": 3})),
            ("States.MathAdd($.value1, $.step)", json!(110)),
            ("States.MathAdd(-9, 3)", json!(-6)),
            ("States.MathAdd($.half, 0)", json!(2)),
            ("States.MathAdd($.negHalf, 0)", json!(-1)),
            ("States.MathAdd(1.49, 1.5)", json!(3)),
            ("States.MathAdd(-1.5, -1.51)", json!(-3)),
            ("States.MathAdd(-0.5, 0.5)", json!(1)),
            ("States.MathAdd(2.5, 0)", json!(3)),
            ("States.StringSplit($.inputString, $.splitter)", json!(["1", "2", "3", "4", "5"])),
            ("States.StringSplit('This.is+a,test=string', '.+,=')", json!(["This", "is", "a", "test", "string"])),
            ("States.StringSplit(',,,,', ',')", json!([])),
            ("States.StringSplit(', , ,', ',')", json!([" ", " "])),
            ("States.StringSplit('Hello\nWorld', '\n')", json!(["Hello", "World"])),
            ("States.StringSplit('abc', '')", json!(["abc"])),
            ("States.ArrayGetItem(States.StringSplit($$.Execution.Name, '-'), 0)", json!("run")),
            (
                "States.Format('{}.{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1), 'x')",
                json!("1.0.x"),
            ),
            ("States.ArrayLength($.inputArray[*])", json!(9)),
            ("States.ArrayLength($['inputArray'])", json!(9)),
            ("States.Array($)", json!([input()])),
        ];
        for (text, expected) in cases {
            assert_eq!(run(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn string_literal_escapes_follow_aws() {
        // Intrinsic-level text, after the JSON layer's own unescaping.
        let cases = [
            (r"States.Format('It\'s {}', 'me')", "It's me"),
            (r"States.Format('\{\} is {}', 'literal')", "{} is literal"),
            (r"States.Format('back\\slash {}', 1)", r"back\slash 1"),
            (r"States.Format('\{{}\}', 'x')", "{x}"),
            (r"States.Array('a\'b')", "[\"a'b\"]"),
        ];
        for (text, expected) in cases {
            let got = run(text).map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            });
            assert_eq!(got.as_deref(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn random_and_uuid_stay_in_range() {
        for _ in 0..50 {
            let v = run("States.MathRandom(1, 3)").ok().and_then(|v| v.as_i64());
            assert!(v.is_some_and(|n| (1..=3).contains(&n)), "{v:?}");
            let f = run("States.MathRandom(12.5, 44.51)")
                .ok()
                .and_then(|v| v.as_i64());
            assert!(f.is_some_and(|n| (13..=45).contains(&n)), "{f:?}");
        }
        assert_eq!(run("States.MathRandom(7, 7)"), Ok(json!(7)));
        let seeded = run("States.MathRandom(0, 999, 3)");
        assert_eq!(seeded, run("States.MathRandom(0, 999, 3)"));
        assert!(seeded
            .ok()
            .and_then(|v| v.as_i64())
            .is_some_and(|n| (0..=999).contains(&n)));
        let uuid = run("States.UUID()").ok();
        let text = uuid.as_ref().and_then(Value::as_str).unwrap_or_default();
        let parsed = uuid::Uuid::parse_str(text).ok();
        assert_eq!(parsed.map(|u| u.get_version_num()), Some(4), "{text}");
        assert_ne!(run("States.UUID()"), run("States.UUID()"));
    }

    #[test]
    fn argument_errors_are_intrinsic_failures() {
        let cases = [
            "States.Format('{} {}', 1)",
            "States.Format('{}', 1, 2)",
            "States.Format($.Id)",
            r"States.Format('bad \n escape')",
            r"States.Array('bad \q')",
            "States.StringToJson($.Id)",
            "States.StringToJson('{nope')",
            "States.ArrayPartition($.text, 2)",
            "States.ArrayPartition($.inputArray, 0)",
            "States.ArrayPartition($.inputArray, -1)",
            "States.ArrayPartition($.inputArray, 'x')",
            "States.ArrayContains($.obj, 1)",
            "States.ArrayRange(1, 2, 0)",
            "States.ArrayRange(1, 1001, 1)",
            "States.ArrayRange(-9223372036854775808, 9223372036854775807, 1)",
            "States.ArrayRange('1', 2, 1)",
            "States.ArrayGetItem($.inputArray, 9)",
            "States.ArrayGetItem($.inputArray, -1)",
            "States.ArrayGetItem($.obj, 0)",
            "States.ArrayLength($.text)",
            "States.ArrayUnique($.Id)",
            "States.Base64Encode($.Id)",
            "States.Base64Decode('not base64!')",
            "States.Base64Decode('/w==')",
            "States.Hash($.data, 'sha-256')",
            "States.Hash($.data, 'CRC32')",
            "States.Hash($.obj, 'MD5')",
            "States.JsonMerge($.json1, $.json2, true)",
            "States.JsonMerge($.json1, $.json2, 'false')",
            "States.JsonMerge($.json1, $.inputArray, false)",
            "States.MathRandom(5, 1)",
            "States.MathRandom('a', 1)",
            "States.MathAdd($.text, 1)",
            "States.MathAdd(9223372036854775807, 1)",
            "States.MathAdd(1e300, 1)",
            "States.StringSplit($.Id, ',')",
            "States.StringSplit('a', 1)",
        ];
        for text in cases {
            match run(text) {
                Err(e) => {
                    assert_eq!(e.error, "States.IntrinsicFailure", "{text}: {}", e.cause);
                    assert!(
                        e.cause.starts_with(&format!(
                            "The function '{text}' had the following error: "
                        )),
                        "{text}: {}",
                        e.cause
                    );
                }
                Ok(v) => panic!("{text} gave {v}"),
            }
        }
    }

    #[test]
    fn long_strings_are_refused_by_encode_decode_and_hash() {
        let long = "a".repeat(MAX_STRING_CHARS + 1);
        let just_fits = "a".repeat(MAX_STRING_CHARS);
        let doc = json!({"long": long, "fits": just_fits});
        for func in ["States.Base64Encode($.long)", "States.Hash($.long, 'MD5')"] {
            let got = Intrinsic::parse(func).map(|i| i.eval(&doc, &json!({})));
            assert!(
                matches!(got, Ok(Err(ref e)) if e.error == "States.IntrinsicFailure"),
                "{func}: {got:?}"
            );
        }
        let ok = Intrinsic::parse("States.Base64Encode($.fits)")
            .map(|i| i.eval(&doc, &json!({})).is_ok());
        assert_eq!(ok, Ok(true));
    }

    #[test]
    fn a_missing_path_argument_is_a_runtime_error_naming_the_path() {
        let input = json!({"other": 1});
        let cases = [
            (
                "States.Format('{}', $.nope)",
                "The function 'States.Format('{}', $.nope)' had the following error: The JsonPath argument for the field '$.nope' could not be found in the input '{\"other\":1}'",
            ),
            (
                "States.Array(States.ArrayLength($.a.b))",
                "The function 'States.Array(States.ArrayLength($.a.b))' had the following error: The JsonPath argument for the field '$.a.b' could not be found in the input '{\"other\":1}'",
            ),
            (
                "States.Array($$.Nope)",
                "The function 'States.Array($$.Nope)' had the following error: The JsonPath argument for the field '$$.Nope' could not be found in the input '{\"Execution\":{\"Id\":\"e\"}}'",
            ),
        ];
        for (text, cause) in cases {
            let got =
                Intrinsic::parse(text).map(|i| i.eval(&input, &json!({"Execution": {"Id": "e"}})));
            assert_eq!(got, Ok(Err(StatesError::runtime(cause))), "{text}");
        }
    }

    #[test]
    fn parse_rejects_bad_syntax_unknown_functions_and_wrong_arity() {
        let cases = [
            "",
            "States",
            "States.",
            "States.Nope()",
            "States.format('x')",
            "States.Format",
            "States.Format(",
            "States.Format('x'",
            "States.Format('x') extra",
            "States.Format('x',)",
            "States.Format(,'x')",
            "States.Format('unterminated)",
            "States.Format()",
            "States.UUID(1)",
            "States.ArrayLength()",
            "States.ArrayLength($.a, $.b)",
            "States.MathRandom(1)",
            "States.MathRandom(1, 2, 3, 4)",
            "States.JsonMerge($.a, $.b)",
            "States.ArrayRange(1, 2)",
            "States.Array(x)",
            "States.Array(TRUE)",
            "States.Array(1.2.3)",
            "States.Array(--1)",
            "States.Array($.)",
            "States.Array($.a[)",
            "States.Array($['a)",
            "States.Array(\"double quoted\")",
            "  States.Array()",
        ];
        for text in cases {
            assert!(Intrinsic::parse(text).is_err(), "{text} parsed");
        }
    }

    #[test]
    fn parse_accepts_spacing_nesting_and_tricky_paths() {
        let input = json!({"a,b": 1, "items": [{"x": 1}, {"x": 2}]});
        let cases = [
            ("States.Array( 1 ,  $['a,b'] , 'x' )", json!([1, 1, "x"])),
            ("States.Array($.items[?(@.x == 2)].x)", json!([[2]])),
            (
                "States.Array(true, false, null)",
                json!([true, false, null]),
            ),
            ("States.Array(-1, 2.5, 1e2)", json!([-1, 2.5, 100.0])),
        ];
        for (text, expected) in cases {
            let got = Intrinsic::parse(text).map(|i| i.eval(&input, &json!({})));
            assert_eq!(got, Ok(Ok(expected)), "{text}");
        }
    }

    #[test]
    fn parse_and_eval_survive_weird_text() {
        let weird = [
            "States.Format('\\",
            "States.Format('{",
            "States.Format('}{')",
            "States.Array($['",
            "States.Array($[?(@.a == ')]",
            "States.Array(é)",
            "States.Array('é', 'ü')",
            "States.Array(States.)",
            "States.Array(States.Array(",
            "States.Array(1)(2)",
            "States.Array(-)",
            "States.Array(1e999)",
            "States.MathAdd(1e308, 1e308)",
            "States.ArrayRange(-1e30, 1e30, 1)",
            "States.StringSplit('', '')",
        ];
        for text in weird {
            if let Ok(parsed) = Intrinsic::parse(text) {
                let _ = parsed.eval(&input(), &context());
            }
        }
    }

    #[test]
    fn nesting_is_limited_to_ten_functions() {
        let nest = |n: usize| format!("{}1{}", "States.Array(".repeat(n), ")".repeat(n));
        assert!(Intrinsic::parse(&nest(10)).is_ok());
        assert!(Intrinsic::parse(&nest(11)).is_err());
        // Far past the limit must fail cleanly, not overflow the stack.
        assert!(Intrinsic::parse(&nest(100_000)).is_err());
    }

    #[test]
    fn looks_like_intrinsic_checks_the_prefix() {
        let cases = [
            ("States.Format('x')", true),
            ("States.Anything", true),
            ("$.States", false),
            ("states.Format('x')", false),
            ("", false),
        ];
        for (text, expected) in cases {
            assert_eq!(looks_like_intrinsic(text), expected, "{text}");
        }
    }
}
