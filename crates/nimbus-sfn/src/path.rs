//! JSONPath as the Amazon States Language uses it (`InputPath`, `OutputPath`, `ResultPath`,
//! `ItemsPath`, Choice `Variable`, payload templates, intrinsic arguments).
//!
//! Written here rather than taken from a crate: Step Functions runs Jayway JsonPath, and the
//! Rust JSONPath crates follow RFC 9535 or their own dialects, which differ from Jayway exactly
//! where workflows notice (what a definite path returns, filters on objects, `[-1]`, a missing
//! property inside a wildcard). Owning the evaluator keeps those choices explicit and tested.
//!
//! Supported: `$`, `$$` (the context object), `.name`, `['name']` / `["name"]`, `['a','b']`,
//! `[n]` (negative counts from the end, as Jayway), `[n,m]`, `[*]` / `.*`, `[a:b]` slices,
//! `..` recursive descent, and `[?(...)]` filters with `==`, `!=`, `<`, `<=`, `>`, `>=`,
//! existence, `&&`, `||` and parentheses over `@`/`$` reference paths and JSON literals.

use serde_json::{Map, Value};

/// How deep filter expressions may nest; far beyond any real filter, and it keeps a hostile
/// definition from overflowing the stack while parsing.
const MAX_FILTER_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    text: String,
    context: bool,
    /// `$name...`: a path into the workflow variable `name`.
    variable: Option<String>,
    steps: Vec<Step>,
}

/// What paths start from: `$` the input, `$$` the context object, `$name` a workflow
/// variable.
#[derive(Clone, Copy)]
pub struct Roots<'a> {
    pub input: &'a Value,
    pub context: &'a Value,
    pub vars: &'a Map<String, Value>,
}

/// No variables: what paths see outside a workflow with `Assign`.
pub fn no_vars() -> &'static Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Map::new)
}

impl<'a> Roots<'a> {
    pub fn new(input: &'a Value, context: &'a Value) -> Roots<'a> {
        Roots {
            input,
            context,
            vars: no_vars(),
        }
    }

    /// The value `path` starts from; `None` for a variable that was never assigned.
    pub fn root(&self, path: &Path) -> Option<&'a Value> {
        match (&path.variable, path.context) {
            (Some(name), _) => self.vars.get(name),
            (None, true) => Some(self.context),
            (None, false) => Some(self.input),
        }
    }

    /// What `path` selects, from its root.
    pub fn select(&self, path: &Path) -> Option<Value> {
        path.select(self.root(path)?)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Name(String),
    Index(i64),
    Names(Vec<String>),
    Indexes(Vec<i64>),
    Wildcard,
    Slice(Option<i64>, Option<i64>),
    Filter(Filter),
    /// The node itself and every node below it, in document order; the next step applies to
    /// each (`$..b` is `[Descendants, Name("b")]`).
    Descendants,
}

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Or(Box<Filter>, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Exists(Operand),
    Compare(Operand, CmpOp, Operand),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `@...`: relative to the element being filtered; only name and index steps.
    Current(Vec<Step>),
    /// `$...` inside a filter: relative to the document root.
    Root(Vec<Step>),
    Literal(Value),
}

impl Path {
    pub fn parse(text: &str) -> Result<Path, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut p = Parser {
            chars: &chars,
            pos: 0,
        };
        if !p.eat('$') {
            return Err("a path must begin with '$'".to_string());
        }
        let context = p.eat('$');
        // `$name`: a workflow variable (letters, digits and `_`, not starting with a digit).
        let mut variable = None;
        if !context && p.peek().is_some_and(|c| c.is_alphabetic() || c == '_') {
            let mut name = String::new();
            while let Some(c) = p.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
                name.push(c);
                p.pos += 1;
            }
            variable = Some(name);
        }
        let steps = p.steps(false)?;
        if let Some(c) = p.peek() {
            return Err(format!("unexpected '{c}' at position {}", p.pos));
        }
        Ok(Path {
            text: text.to_string(),
            context,
            variable,
            steps,
        })
    }

    /// True for `$$...` paths.
    pub fn is_context(&self) -> bool {
        self.context
    }

    /// The workflow variable a `$name...` path reads.
    pub fn variable(&self) -> Option<&str> {
        self.variable.as_deref()
    }

    /// A reference path: only `.name`, `['name']` and `[n]` steps.
    pub fn is_reference(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s, Step::Name(_) | Step::Index(_)))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value the path selects from `root`. A reference path gives the node or `None`;
    /// any other path gives the array of its matches, possibly empty, as Jayway does.
    pub fn select(&self, root: &Value) -> Option<Value> {
        if self.is_reference() {
            return walk(&self.steps, root).cloned();
        }
        let mut found = Vec::new();
        collect(&self.steps, root, root, &mut found);
        Some(Value::Array(found.into_iter().cloned().collect()))
    }

    /// Jayway's explanation of why a reference path selected nothing, as AWS quotes it for
    /// `InputPath`, `OutputPath`, `ItemsPath` and the `...SecondsPath` fields:
    /// `Invalid path '$.x' : No results for path: $['x']`, or `Missing property in path
    /// $['a']` when a step before the last is missing.
    pub fn not_found_cause(&self, root: &Value) -> String {
        let mut rendered = String::from("$");
        let mut node = Some(root);
        let last = self.steps.len().saturating_sub(1);
        for (i, step) in self.steps.iter().enumerate() {
            rendered.push_str(&render_step(step));
            node = node.and_then(|n| apply_definite(step, n));
            if node.is_none() && i < last {
                if let Step::Name(_) = step {
                    return format!(
                        "Invalid path '{}' : Missing property in path {rendered}",
                        self.text
                    );
                }
            }
        }
        let full: String = std::iter::once("$".to_string())
            .chain(self.steps.iter().map(render_step))
            .collect();
        format!("Invalid path '{}' : No results for path: {full}", self.text)
    }

    /// `ResultPath`: `root` with `value` placed at this reference path, missing objects on the
    /// way created. Fails, with the cause AWS gives `States.ResultPathMatchFailure`, when a step
    /// meets a value it cannot descend into (a field of a non-object, an index of a non-array
    /// or past its end).
    pub fn set(&self, mut root: Value, value: Value) -> Result<Value, String> {
        if self.context || !self.is_reference() {
            return Err(self.set_failure(&root));
        }
        // Check first, then write, so a failure reports the input as it arrived rather than
        // with the objects created before the failing step.
        if !can_set(&self.steps, Some(&root)) {
            return Err(self.set_failure(&root));
        }
        match place(&self.steps, &mut root, value) {
            true => Ok(root),
            false => Err(self.set_failure(&root)),
        }
    }

    fn set_failure(&self, root: &Value) -> String {
        format!(
            "Unable to apply ReferencePath {} to input {}",
            self.text,
            serde_json::to_string(root).unwrap_or_default()
        )
    }
}

fn render_step(step: &Step) -> String {
    match step {
        Step::Name(n) => format!("['{n}']"),
        Step::Index(i) => format!("[{i}]"),
        Step::Names(ns) => {
            let inner: Vec<String> = ns.iter().map(|n| format!("'{n}'")).collect();
            format!("[{}]", inner.join(","))
        }
        Step::Indexes(is) => {
            let inner: Vec<String> = is.iter().map(|i| i.to_string()).collect();
            format!("[{}]", inner.join(","))
        }
        Step::Wildcard => "[*]".to_string(),
        Step::Slice(a, b) => format!(
            "[{}:{}]",
            a.map(|v| v.to_string()).unwrap_or_default(),
            b.map(|v| v.to_string()).unwrap_or_default()
        ),
        Step::Filter(_) => "[?]".to_string(),
        Step::Descendants => "..".to_string(),
    }
}

fn array_index(len: usize, i: i64) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let idx = if i < 0 { len.checked_add(i)? } else { i };
    if (0..len).contains(&idx) {
        usize::try_from(idx).ok()
    } else {
        None
    }
}

fn apply_definite<'a>(step: &Step, node: &'a Value) -> Option<&'a Value> {
    match (step, node) {
        (Step::Name(n), Value::Object(m)) => m.get(n),
        (Step::Index(i), Value::Array(a)) => array_index(a.len(), *i).and_then(|i| a.get(i)),
        _ => None,
    }
}

fn walk<'a>(steps: &[Step], root: &'a Value) -> Option<&'a Value> {
    steps
        .iter()
        .try_fold(root, |node, step| apply_definite(step, node))
}

fn collect<'a>(steps: &[Step], node: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
    let Some((step, rest)) = steps.split_first() else {
        out.push(node);
        return;
    };
    match step {
        Step::Name(_) | Step::Index(_) => {
            if let Some(child) = apply_definite(step, node) {
                collect(rest, child, root, out);
            }
        }
        Step::Names(names) => {
            if let Value::Object(m) = node {
                for child in names.iter().filter_map(|n| m.get(n)) {
                    collect(rest, child, root, out);
                }
            }
        }
        Step::Indexes(indexes) => {
            if let Value::Array(a) = node {
                for i in indexes {
                    if let Some(child) = array_index(a.len(), *i).and_then(|i| a.get(i)) {
                        collect(rest, child, root, out);
                    }
                }
            }
        }
        Step::Wildcard => match node {
            Value::Object(m) => m.values().for_each(|c| collect(rest, c, root, out)),
            Value::Array(a) => a.iter().for_each(|c| collect(rest, c, root, out)),
            _ => {}
        },
        Step::Slice(start, end) => {
            if let Value::Array(a) = node {
                let (from, to) = slice_bounds(a.len(), *start, *end);
                for child in a.iter().take(to).skip(from) {
                    collect(rest, child, root, out);
                }
            }
        }
        Step::Filter(f) => match node {
            // Jayway applies a filter to an object as a whole, not to its members.
            Value::Object(_) if f.matches(node, root) => collect(rest, node, root, out),
            Value::Array(a) => {
                for child in a.iter().filter(|c| f.matches(c, root)) {
                    collect(rest, child, root, out);
                }
            }
            _ => {}
        },
        Step::Descendants => {
            collect(rest, node, root, out);
            match node {
                Value::Object(m) => m.values().for_each(|c| collect(steps, c, root, out)),
                Value::Array(a) => a.iter().for_each(|c| collect(steps, c, root, out)),
                _ => {}
            }
        }
    }
}

/// Jayway's slice bounds: negatives count from the end, everything clamps to the array.
fn slice_bounds(len: usize, start: Option<i64>, end: Option<i64>) -> (usize, usize) {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let clamp = |v: i64| -> usize {
        let v = if v < 0 { len_i.saturating_add(v) } else { v };
        usize::try_from(v.clamp(0, len_i)).unwrap_or(0)
    };
    let from = start.map(clamp).unwrap_or(0);
    let to = end.map(clamp).unwrap_or(len);
    (from, to.max(from))
}

fn can_set(steps: &[Step], node: Option<&Value>) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return true;
    };
    match (step, node) {
        // A missing field, or one holding null, becomes a fresh object.
        (Step::Name(_), None | Some(Value::Null)) => can_set(rest, None),
        (Step::Name(n), Some(Value::Object(m))) => can_set(rest, m.get(n)),
        (Step::Index(i), Some(Value::Array(a))) => match array_index(a.len(), *i) {
            Some(idx) => can_set(rest, a.get(idx)),
            None => false,
        },
        _ => false,
    }
}

fn place(steps: &[Step], node: &mut Value, value: Value) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        *node = value;
        return true;
    };
    if node.is_null() {
        *node = Value::Object(serde_json::Map::new());
    }
    match (step, node) {
        (Step::Name(n), Value::Object(m)) => {
            let child = m.entry(n.clone()).or_insert(Value::Null);
            place(rest, child, value)
        }
        (Step::Index(i), Value::Array(a)) => match array_index(a.len(), *i) {
            Some(idx) => match a.get_mut(idx) {
                Some(child) => place(rest, child, value),
                None => false,
            },
            None => false,
        },
        _ => false,
    }
}

impl Filter {
    fn matches(&self, current: &Value, root: &Value) -> bool {
        match self {
            Filter::Or(a, b) => a.matches(current, root) || b.matches(current, root),
            Filter::And(a, b) => a.matches(current, root) && b.matches(current, root),
            Filter::Exists(op) => op.resolve(current, root).is_some(),
            Filter::Compare(l, op, r) => {
                compare(l.resolve(current, root), *op, r.resolve(current, root))
            }
        }
    }
}

impl Operand {
    fn resolve<'a>(&'a self, current: &'a Value, root: &'a Value) -> Option<&'a Value> {
        match self {
            Operand::Current(steps) => walk(steps, current),
            Operand::Root(steps) => walk(steps, root),
            Operand::Literal(v) => Some(v),
        }
    }
}

/// A missing operand only satisfies `!=`; values of different JSON types are unequal and
/// unordered, as in Jayway.
fn compare(left: Option<&Value>, op: CmpOp, right: Option<&Value>) -> bool {
    let (Some(l), Some(r)) = (left, right) else {
        return op == CmpOp::Ne;
    };
    let ordering = match (l, r) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => None,
        },
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    };
    let equal = match ordering {
        Some(o) => o.is_eq(),
        None => l == r,
    };
    match op {
        CmpOp::Eq => equal,
        CmpOp::Ne => !equal,
        CmpOp::Lt => ordering.is_some_and(|o| o.is_lt()),
        CmpOp::Le => ordering.is_some_and(|o| o.is_le()),
        CmpOp::Gt => ordering.is_some_and(|o| o.is_gt()),
        CmpOp::Ge => ordering.is_some_and(|o| o.is_ge()),
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

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            match self.peek() {
                Some(found) => Err(format!(
                    "expected '{c}' at position {} but found '{found}'",
                    self.pos
                )),
                None => Err(format!("expected '{c}' but the path ended")),
            }
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Steps until something that cannot continue a path. Inside a filter (`nested`) the
    /// steps stop at an operator, parenthesis or whitespace instead of rejecting them.
    fn steps(&mut self, nested: bool) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    if self.eat('.') {
                        steps.push(Step::Descendants);
                        match self.peek() {
                            Some('[') => continue,
                            Some('*') => {
                                self.pos += 1;
                                steps.push(Step::Wildcard);
                            }
                            _ => steps.push(Step::Name(self.dot_name(nested)?)),
                        }
                    } else if self.eat('*') {
                        steps.push(Step::Wildcard);
                    } else {
                        steps.push(Step::Name(self.dot_name(nested)?));
                    }
                }
                Some('[') => {
                    self.pos += 1;
                    steps.push(self.bracket(nested)?);
                }
                _ => return Ok(steps),
            }
        }
    }

    fn dot_name(&mut self, nested: bool) -> Result<String, String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            let stop = matches!(c, '.' | '[')
                || (nested
                    && (c.is_whitespace() || matches!(c, ')' | '=' | '!' | '<' | '>' | '&' | '|')));
            if stop {
                break;
            }
            if c.is_whitespace() {
                // Jayway's rule: blanks need bracket notation (`$['my field']`).
                return Err(format!(
                    "blank in a field name at position {}; use bracket notation ['my field']",
                    self.pos
                ));
            }
            if matches!(c, ']' | '(' | ')' | '\'' | '"') {
                return Err(format!(
                    "unexpected '{c}' in a field name at position {} (path functions are not supported)",
                    self.pos
                ));
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(format!("empty field name at position {start}"));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn bracket(&mut self, nested: bool) -> Result<Step, String> {
        self.skip_ws();
        let step = match self.peek() {
            Some('\'' | '"') => {
                let mut names = vec![self.quoted()?];
                self.skip_ws();
                while self.eat(',') {
                    self.skip_ws();
                    names.push(self.quoted()?);
                    self.skip_ws();
                }
                if names.len() == 1 {
                    Step::Name(names.remove(0))
                } else {
                    Step::Names(names)
                }
            }
            Some('*') => {
                self.pos += 1;
                Step::Wildcard
            }
            Some('?') => {
                if nested {
                    return Err("filters cannot be nested inside filters".to_string());
                }
                self.pos += 1;
                self.skip_ws();
                self.expect('(')?;
                let f = self.filter_or(0)?;
                self.skip_ws();
                self.expect(')')?;
                Step::Filter(f)
            }
            Some(c) if c == '-' || c == ':' || c.is_ascii_digit() => self.indexes()?,
            Some(c) => {
                return Err(format!(
                    "unexpected '{c}' in brackets at position {}",
                    self.pos
                ))
            }
            None => return Err("unclosed '['".to_string()),
        };
        self.skip_ws();
        self.expect(']')?;
        Ok(step)
    }

    fn quoted(&mut self) -> Result<String, String> {
        let Some(quote) = self.peek().filter(|c| *c == '\'' || *c == '"') else {
            return Err(format!("expected a quoted name at position {}", self.pos));
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted name".to_string()),
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) => out.push(c),
                        None => return Err("unterminated quoted name".to_string()),
                    }
                    self.pos += 1;
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn integer(&mut self) -> Result<Option<i64>, String> {
        self.skip_ws();
        let start = self.pos;
        self.eat('-');
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        self.skip_ws();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse::<i64>()
            .map(Some)
            .map_err(|_| format!("invalid array index '{text}'"))
    }

    fn indexes(&mut self) -> Result<Step, String> {
        let first = self.integer()?;
        if self.eat(':') {
            let end = self.integer()?;
            return Ok(Step::Slice(first, end));
        }
        let Some(first) = first else {
            return Err(format!("expected an array index at position {}", self.pos));
        };
        let mut all = vec![first];
        while self.eat(',') {
            match self.integer()? {
                Some(i) => all.push(i),
                None => return Err(format!("expected an array index at position {}", self.pos)),
            }
        }
        Ok(if all.len() == 1 {
            Step::Index(first)
        } else {
            Step::Indexes(all)
        })
    }

    fn filter_or(&mut self, depth: usize) -> Result<Filter, String> {
        let mut left = self.filter_and(depth)?;
        loop {
            self.skip_ws();
            if self.peek() == Some('|') && self.peek_at(1) == Some('|') {
                self.pos += 2;
                let right = self.filter_and(depth)?;
                left = Filter::Or(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn filter_and(&mut self, depth: usize) -> Result<Filter, String> {
        let mut left = self.filter_atom(depth)?;
        loop {
            self.skip_ws();
            if self.peek() == Some('&') && self.peek_at(1) == Some('&') {
                self.pos += 2;
                let right = self.filter_atom(depth)?;
                left = Filter::And(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn filter_atom(&mut self, depth: usize) -> Result<Filter, String> {
        if depth >= MAX_FILTER_DEPTH {
            return Err("filter expression nested too deeply".to_string());
        }
        self.skip_ws();
        if self.eat('(') {
            let inner = self.filter_or(depth + 1)?;
            self.skip_ws();
            self.expect(')')?;
            return Ok(inner);
        }
        let left = self.operand()?;
        self.skip_ws();
        let op = match (self.peek(), self.peek_at(1)) {
            (Some('='), Some('=')) => Some((CmpOp::Eq, 2)),
            (Some('!'), Some('=')) => Some((CmpOp::Ne, 2)),
            (Some('<'), Some('=')) => Some((CmpOp::Le, 2)),
            (Some('>'), Some('=')) => Some((CmpOp::Ge, 2)),
            (Some('<'), _) => Some((CmpOp::Lt, 1)),
            (Some('>'), _) => Some((CmpOp::Gt, 1)),
            _ => None,
        };
        let Some((op, width)) = op else {
            return match left {
                Operand::Literal(_) => Err("a filter needs a comparison or an @ path".to_string()),
                path => Ok(Filter::Exists(path)),
            };
        };
        self.pos += width;
        self.skip_ws();
        let right = self.operand()?;
        Ok(Filter::Compare(left, op, right))
    }

    fn operand(&mut self) -> Result<Operand, String> {
        self.skip_ws();
        match self.peek() {
            Some('@') => {
                self.pos += 1;
                Ok(Operand::Current(self.definite_steps()?))
            }
            Some('$') => {
                self.pos += 1;
                Ok(Operand::Root(self.definite_steps()?))
            }
            Some('\'' | '"') => Ok(Operand::Literal(Value::String(self.quoted()?))),
            Some(_) => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'))
                {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match serde_json::from_str::<Value>(&word) {
                    Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => {
                        Ok(Operand::Literal(v))
                    }
                    _ => Err(format!("invalid filter operand '{word}'")),
                }
            }
            None => Err("the filter ended early".to_string()),
        }
    }

    fn definite_steps(&mut self) -> Result<Vec<Step>, String> {
        let steps = self.steps(true)?;
        if steps
            .iter()
            .all(|s| matches!(s, Step::Name(_) | Step::Index(_)))
        {
            Ok(steps)
        } else {
            Err("paths inside filters may only use field names and indexes".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_paths_start_from_the_variable() {
        let vars: Map<String, Value> = serde_json::from_value(
            serde_json::json!({"order": {"id": 7, "items": [1, 2]}, "n": 3}),
        )
        .unwrap();
        let input = serde_json::json!({"order": "from the input"});
        let context = serde_json::json!({"Execution": {"Name": "e"}});
        let roots = Roots {
            input: &input,
            context: &context,
            vars: &vars,
        };
        let cases = [
            ("$order.id", Some(serde_json::json!(7))),
            ("$order.items[1]", Some(serde_json::json!(2))),
            ("$n", Some(serde_json::json!(3))),
            ("$missing", None),
            ("$.order", Some(serde_json::json!("from the input"))),
            ("$$.Execution.Name", Some(serde_json::json!("e"))),
        ];
        for (text, want) in cases {
            let p = Path::parse(text).unwrap();
            assert_eq!(roots.select(&p), want, "{text}");
        }
        assert_eq!(Path::parse("$order.id").unwrap().variable(), Some("order"));
        assert!(
            Path::parse("$9x").is_err(),
            "a variable name does not start with a digit"
        );
    }
    use serde_json::json;

    fn store() -> Value {
        json!({
            "foo": 123,
            "bar": ["a", "b", "c"],
            "car": {"cdr": true},
            "a b": {"c": 1},
            "items": [
                {"id": 1, "kind": "x", "price": 5, "tags": ["t1"]},
                {"id": 2, "kind": "y", "price": 15},
                {"id": 3, "kind": "x", "price": 25, "flag": false},
                {"id": 4, "kind": "z", "price": 10.0, "flag": null}
            ],
            "nested": {"b": 1, "deeper": {"b": 2, "list": [{"b": 3}]}}
        })
    }

    #[test]
    fn parse_accepts_the_forms_step_functions_uses() {
        let ok = [
            "$",
            "$$",
            "$.foo",
            "$.a.b.c",
            "$['a b']",
            "$[\"a b\"]",
            "$.bar[0]",
            "$.bar[-1]",
            "$.bar[*]",
            "$.items[*].id",
            "$..b",
            "$..*",
            "$..[0]",
            "$.bar[0:2]",
            "$.bar[1:]",
            "$.bar[:2]",
            "$.bar[0,2]",
            "$['foo','bar']",
            "$.items[?(@.id == 1)]",
            "$.items[?(@.flag)]",
            "$.items[?(@.price >= 10 && @.kind != 'z')]",
            "$.items[?(@.kind == \"x\" || (@.id < 2))]",
            "$$.Execution.Id",
            "$$.Map.Item.Value",
            "$.aws:region",
            "$.my-field_1",
            "$[0]",
        ];
        for text in ok {
            let parsed = Path::parse(text);
            assert!(parsed.is_ok(), "{text}: {parsed:?}");
            assert_eq!(
                parsed.map(|p| p.as_str().to_string()).ok().as_deref(),
                Some(text)
            );
        }
    }

    #[test]
    fn parse_rejects_malformed_paths_with_a_reason() {
        let bad = [
            "",
            "foo",
            "$.",
            "$..",
            "$.a..",
            "$[",
            "$[0",
            "$['a]",
            "$['a'",
            "$[]",
            "$[x]",
            "$[1.5]",
            "$.list.length()",
            "$.a b)",
            "$ .a",
            "$.a ",
            "$[?(@.a ==)]",
            "$[?(@.a == 1]",
            "$[?(1)]",
            "$[?(@.a[*] == 1)]",
            "$[99999999999999999999]",
            "$.a]",
            "$$$",
        ];
        for text in bad {
            let parsed = Path::parse(text);
            assert!(parsed.is_err(), "{text} parsed as {parsed:?}");
            assert!(!parsed.err().unwrap_or_default().is_empty());
        }
    }

    #[test]
    fn parse_survives_weird_text() {
        let weird = [
            "$['\\",
            "$[?(",
            "$[?(@",
            "$[?(@.a ==",
            "$[?(@.a == 'x",
            "$[-",
            "$[:",
            "$[1:2:3]",
            "$.é",
            "$['é']",
            "$\u{0}",
            "$..[?(@)]",
            "$[?((@.a)]",
            "$[?(@.a) && ]",
            "$['a','",
            "$[0,]",
            "$[,0]",
            "$.*.*",
            "$[?(@ <= -)]",
            "$[?($)]",
        ];
        for text in weird {
            if let Ok(path) = Path::parse(text) {
                let _ = path.select(&json!({"a": [1]}));
                let _ = path.set(json!({"a": [1]}), json!(1));
            }
        }
    }

    #[test]
    fn parse_limits_filter_nesting_instead_of_overflowing() {
        let deep = format!("$[?({}@.a{})]", "(".repeat(500), ")".repeat(500));
        assert!(Path::parse(&deep).is_err());
        let fine = format!("$[?({}@.a{})]", "(".repeat(5), ")".repeat(5));
        assert!(Path::parse(&fine).is_ok());
    }

    #[test]
    fn context_paths_are_flagged() {
        let cases = [
            ("$", false),
            ("$.a", false),
            ("$$", true),
            ("$$.Execution.Id", true),
        ];
        for (text, expected) in cases {
            assert_eq!(
                Path::parse(text).map(|p| p.is_context()),
                Ok(expected),
                "{text}"
            );
        }
    }

    #[test]
    fn reference_paths_are_only_names_and_indexes() {
        let cases = [
            ("$", true),
            ("$.a.b", true),
            ("$['a b'].c", true),
            ("$.a[0].b", true),
            ("$.a[-1]", true),
            ("$$.Execution.Input", true),
            ("$.a[*]", false),
            ("$.a.*", false),
            ("$..a", false),
            ("$.a[0:1]", false),
            ("$.a[0,1]", false),
            ("$['a','b']", false),
            ("$.a[?(@.x)]", false),
        ];
        for (text, expected) in cases {
            assert_eq!(
                Path::parse(text).map(|p| p.is_reference()),
                Ok(expected),
                "{text}"
            );
        }
    }

    #[test]
    fn select_follows_jayway() {
        let cases: Vec<(&str, Option<Value>)> = vec![
            ("$", Some(store())),
            ("$.foo", Some(json!(123))),
            ("$.bar", Some(json!(["a", "b", "c"]))),
            ("$.car.cdr", Some(json!(true))),
            ("$['a b'].c", Some(json!(1))),
            ("$.bar[0]", Some(json!("a"))),
            ("$.bar[-1]", Some(json!("c"))),
            ("$.bar[-3]", Some(json!("a"))),
            // Missing pieces of a reference path select nothing.
            ("$.missing", None),
            ("$.car.missing", None),
            ("$.foo.bar", None),
            ("$.bar[3]", None),
            ("$.bar[-4]", None),
            ("$.car[0]", None),
            ("$.bar.x", None),
            // Everything else is a list of matches.
            ("$.bar[*]", Some(json!(["a", "b", "c"]))),
            ("$.car.*", Some(json!([true]))),
            ("$.items[*].id", Some(json!([1, 2, 3, 4]))),
            ("$.items[*].flag", Some(json!([false, null]))),
            ("$.missing[*]", Some(json!([]))),
            ("$.bar[0:2]", Some(json!(["a", "b"]))),
            ("$.bar[1:]", Some(json!(["b", "c"]))),
            ("$.bar[:1]", Some(json!(["a"]))),
            ("$.bar[-2:]", Some(json!(["b", "c"]))),
            ("$.bar[2:1]", Some(json!([]))),
            ("$.bar[0:100]", Some(json!(["a", "b", "c"]))),
            ("$.bar[0,2]", Some(json!(["a", "c"]))),
            ("$.bar[0,9]", Some(json!(["a"]))),
            ("$['foo','car']", Some(json!([123, {"cdr": true}]))),
            ("$.nested..b", Some(json!([1, 2, 3]))),
            ("$..list[0].b", Some(json!([3]))),
            (
                "$.nested.deeper..*",
                Some(json!([2, [{"b": 3}], {"b": 3}, 3])),
            ),
            ("$.items[?(@.id == 2)].kind", Some(json!(["y"]))),
            ("$.items[?(@.kind == 'x')].id", Some(json!([1, 3]))),
            ("$.items[?(@.kind != 'x')].id", Some(json!([2, 4]))),
            ("$.items[?(@.price < 10)].id", Some(json!([1]))),
            ("$.items[?(@.price <= 10)].id", Some(json!([1, 4]))),
            ("$.items[?(@.price > 10)].id", Some(json!([2, 3]))),
            ("$.items[?(@.price >= 15)].id", Some(json!([2, 3]))),
            ("$.items[?(@.price == 10)].id", Some(json!([4]))),
            ("$.items[?(@.flag)].id", Some(json!([3, 4]))),
            ("$.items[?(@.flag == false)].id", Some(json!([3]))),
            ("$.items[?(@.flag == null)].id", Some(json!([4]))),
            ("$.items[?(@.tags[0] == 't1')].id", Some(json!([1]))),
            (
                "$.items[?(@.kind == 'x' && @.price > 10)].id",
                Some(json!([3])),
            ),
            (
                "$.items[?(@.kind == 'y' || @.kind == 'z')].id",
                Some(json!([2, 4])),
            ),
            ("$.items[?(@.id > $.foo)].id", Some(json!([]))),
            ("$.items[?(@.id < $.foo)].id", Some(json!([1, 2, 3, 4]))),
            // Different types never compare equal or ordered.
            ("$.items[?(@.id == '1')].id", Some(json!([]))),
            ("$.items[?(@.kind > 1)].id", Some(json!([]))),
            // Strings order lexicographically.
            ("$.items[?(@.kind >= 'y')].id", Some(json!([2, 4]))),
            // A filter on an object tests the object itself.
            ("$.car[?(@.cdr == true)]", Some(json!([{"cdr": true}]))),
            ("$.foo[?(@.x)]", Some(json!([]))),
        ];
        let root = store();
        for (text, expected) in cases {
            let path = Path::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(path.select(&root), expected, "{text}");
        }
    }

    #[test]
    fn select_over_the_context_object_is_plain_selection() {
        let context = json!({"Execution": {"Id": "arn:x", "Input": {"k": 1}}});
        let cases = [
            ("$$", Some(context.clone())),
            ("$$.Execution.Id", Some(json!("arn:x"))),
            ("$$.Execution.Input.k", Some(json!(1))),
            ("$$.Execution.Nope", None),
        ];
        for (text, expected) in cases {
            let path = Path::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(path.select(&context), expected, "{text}");
        }
    }

    #[test]
    fn select_never_panics_on_odd_documents() {
        let docs = [
            json!(null),
            json!(1),
            json!("s"),
            json!([]),
            json!({}),
            json!([[[]]]),
        ];
        let paths = [
            "$",
            "$.a",
            "$[0]",
            "$[-1]",
            "$[*]",
            "$..a",
            "$..*",
            "$[0:]",
            "$[-9:-1]",
            "$[?(@.a)]",
            "$[?(@ == 1)]",
            "$['a','b']",
            "$[1,2]",
        ];
        for text in paths {
            let path = Path::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            for doc in &docs {
                let _ = path.select(doc);
            }
        }
    }

    #[test]
    fn not_found_cause_matches_jayway_wording() {
        let cases = [
            (
                "$.NoSuchInputPath",
                json!({}),
                "Invalid path '$.NoSuchInputPath' : No results for path: $['NoSuchInputPath']",
            ),
            (
                "$.no.such.result.path",
                json!({"a": 1}),
                "Invalid path '$.no.such.result.path' : Missing property in path $['no']",
            ),
            (
                "$.a.b",
                json!({"a": {}}),
                "Invalid path '$.a.b' : No results for path: $['a']['b']",
            ),
            (
                "$.a[3]",
                json!({"a": [1]}),
                "Invalid path '$.a[3]' : No results for path: $['a'][3]",
            ),
        ];
        for (text, input, expected) in cases {
            let path = Path::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(path.not_found_cause(&input), expected, "{text}");
        }
    }

    #[test]
    fn set_places_results_like_result_path() {
        let input = json!({"comment": "x", "a": {"b": 1}, "list": [1, {"k": 2}], "n": null});
        let cases: Vec<(&str, Value)> = vec![
            ("$", json!("R")),
            (
                "$.taskresult",
                json!({"comment": "x", "a": {"b": 1}, "list": [1, {"k": 2}], "n": null, "taskresult": "R"}),
            ),
            (
                "$.a.b",
                json!({"comment": "x", "a": {"b": "R"}, "list": [1, {"k": 2}], "n": null}),
            ),
            (
                "$.a.c.d",
                json!({"comment": "x", "a": {"b": 1, "c": {"d": "R"}}, "list": [1, {"k": 2}], "n": null}),
            ),
            (
                "$.new.deep.er",
                json!({"comment": "x", "a": {"b": 1}, "list": [1, {"k": 2}], "n": null, "new": {"deep": {"er": "R"}}}),
            ),
            (
                "$.list[0]",
                json!({"comment": "x", "a": {"b": 1}, "list": ["R", {"k": 2}], "n": null}),
            ),
            (
                "$.list[-1].k",
                json!({"comment": "x", "a": {"b": 1}, "list": [1, {"k": "R"}], "n": null}),
            ),
            (
                "$['a']['z']",
                json!({"comment": "x", "a": {"b": 1, "z": "R"}, "list": [1, {"k": 2}], "n": null}),
            ),
            (
                "$.n.m",
                json!({"comment": "x", "a": {"b": 1}, "list": [1, {"k": 2}], "n": {"m": "R"}}),
            ),
        ];
        for (text, expected) in cases {
            let path = Path::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(path.set(input.clone(), json!("R")), Ok(expected), "{text}");
        }
    }

    #[test]
    fn set_fails_where_the_input_cannot_hold_the_result() {
        let cases = [
            (
                "$.a",
                json!("text"),
                "Unable to apply ReferencePath $.a to input \"text\"",
            ),
            (
                "$.a.b",
                json!({"a": 1}),
                "Unable to apply ReferencePath $.a.b to input {\"a\":1}",
            ),
            (
                "$.a[0]",
                json!({"a": {}}),
                "Unable to apply ReferencePath $.a[0] to input {\"a\":{}}",
            ),
            (
                "$.a[5]",
                json!({"a": [1]}),
                "Unable to apply ReferencePath $.a[5] to input {\"a\":[1]}",
            ),
            (
                "$.m[0]",
                json!({}),
                "Unable to apply ReferencePath $.m[0] to input {}",
            ),
            (
                "$.a[*]",
                json!({"a": [1]}),
                "Unable to apply ReferencePath $.a[*] to input {\"a\":[1]}",
            ),
            (
                "$$.Execution",
                json!({}),
                "Unable to apply ReferencePath $$.Execution to input {}",
            ),
        ];
        for (text, input, expected) in cases {
            let path = Path::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                path.set(input, json!("R")),
                Err(expected.to_string()),
                "{text}"
            );
        }
    }
}
