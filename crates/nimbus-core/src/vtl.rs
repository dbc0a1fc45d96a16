//! API Gateway's mapping templates: the part of Apache Velocity (1.7) that templates use.
//! References (`$x`, `${x}`, `$!x`, `$a.b`, `$a.b(c)`, `$a[0]`), `#set`, `#if` / `#elseif` /
//! `#else` / `#end`, `#foreach` (with `$foreach.hasNext`, `$foreach.index`, `$velocityCount`),
//! `##` and `#* *#` comments, `\$` escapes; expressions with string, number, boolean, list
//! (`[a, b]`, `[1..3]`) and map (`{"k": v}`) literals, `== != < > <= >= && || !` and `and or
//! not`, `+ - * / %`. Values are JSON values. No crate implements Velocity, so this is
//! written here; what it does not know is a parse error with its line and column.
//!
//! The names API Gateway binds (`$input`, `$util`, `$context`, `$stageVariables`) come from a
//! [`Host`] the caller implements, so this module does no I/O.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

/// A mapping template that does not parse: where, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct VtlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What `$input` and `$util` answer; API Gateway's objects live with the caller.
pub trait Host {
    /// `$input.body`.
    fn body(&self) -> &str;
    /// `$input.params()`: `{"path": {..}, "querystring": {..}, "header": {..}}`.
    fn params(&self) -> Value;
    /// Other top-level names (`$context`, `$stageVariables`, `$method`...).
    fn variable(&self, name: &str) -> Option<Value>;
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    /// `$!ref` renders nothing when null; `$ref` renders its own text.
    Ref(Reference, bool, String),
    Set(Reference, Expr),
    If(Vec<(Expr, Vec<Node>)>, Vec<Node>),
    Foreach(String, Expr, Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
struct Reference {
    root: String,
    chain: Vec<Access>,
}

#[derive(Debug, Clone, PartialEq)]
enum Access {
    Prop(String),
    Call(String, Vec<Expr>),
    Index(Expr),
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Lit(Value),
    /// A double-quoted string: interpolated.
    Interp(Vec<Node>),
    Ref(Reference),
    List(Vec<Expr>),
    Range(Box<Expr>, Box<Expr>),
    Map(Vec<(Expr, Expr)>),
    Not(Box<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Node>);

impl Template {
    pub fn parse(src: &str) -> Result<Template, VtlError> {
        let mut p = Parser {
            s: src.as_bytes(),
            src,
            i: 0,
        };
        let (nodes, end) = p.block(&[])?;
        if let Some(end) = end {
            return Err(p.error(format!("#{end} without a matching #if or #foreach")));
        }
        Ok(Template(nodes))
    }

    /// Renders with `host` bound to `$input`, `$util` and the host's variables.
    pub fn render(&self, host: &dyn Host) -> Result<String, String> {
        let mut cx = Cx {
            host,
            vars: BTreeMap::new(),
            out: String::new(),
            steps: 0,
        };
        cx.nodes(&self.0)?;
        Ok(cx.out)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

impl Parser<'_> {
    fn error(&self, message: String) -> VtlError {
        let before = &self.src[..self.i.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        VtlError {
            line,
            column,
            message,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn starts(&self, t: &str) -> bool {
        self.s[self.i..].starts_with(t.as_bytes())
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.i;
        if !self.peek().is_some_and(is_ident_start) {
            return None;
        }
        while self.peek().is_some_and(is_ident) {
            self.i += 1;
        }
        // A trailing hyphen is text (`$a-` in `"$a-$b"`), not part of the name.
        while self.i > start + 1 && self.s[self.i - 1] == b'-' {
            self.i -= 1;
        }
        Some(self.src[start..self.i].to_owned())
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn expect(&mut self, t: &str) -> Result<(), VtlError> {
        self.skip_ws();
        if self.starts(t) {
            self.i += t.len();
            Ok(())
        } else {
            Err(self.error(format!("expected {t:?}")))
        }
    }

    /// Nodes up to one of `ends` (a directive name such as `end`), which is consumed and
    /// returned.
    fn block(&mut self, ends: &[&str]) -> Result<(Vec<Node>, Option<String>), VtlError> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        let flush = |text: &mut String, nodes: &mut Vec<Node>| {
            if !text.is_empty() {
                nodes.push(Node::Text(std::mem::take(text)));
            }
        };
        while let Some(c) = self.peek() {
            if c == b'\\' && matches!(self.s.get(self.i + 1), Some(b'$' | b'#')) {
                text.push(self.s[self.i + 1] as char);
                self.i += 2;
                continue;
            }
            if self.starts("##") {
                while self.peek().is_some_and(|c| c != b'\n') {
                    self.i += 1;
                }
                continue;
            }
            if self.starts("#*") {
                match self.src[self.i..].find("*#") {
                    Some(n) => self.i += n + 2,
                    None => return Err(self.error("#* comment is not closed with *#".into())),
                }
                continue;
            }
            if c == b'#' {
                let save = self.i;
                self.i += 1;
                let braced = self.peek() == Some(b'{');
                if braced {
                    self.i += 1;
                }
                if let Some(name) = self.ident() {
                    if braced {
                        self.expect("}")?;
                    }
                    if ends.contains(&name.as_str()) {
                        flush(&mut text, &mut nodes);
                        return Ok((nodes, Some(name)));
                    }
                    match name.as_str() {
                        "set" => {
                            flush(&mut text, &mut nodes);
                            self.expect("(")?;
                            self.skip_ws();
                            if self.peek() != Some(b'$') {
                                return Err(self.error("#set needs ($name = value)".into()));
                            }
                            self.i += 1;
                            let target = self.reference()?;
                            self.expect("=")?;
                            let value = self.expr()?;
                            self.expect(")")?;
                            nodes.push(Node::Set(target, value));
                            continue;
                        }
                        "if" => {
                            flush(&mut text, &mut nodes);
                            nodes.push(self.if_chain()?);
                            continue;
                        }
                        "foreach" => {
                            flush(&mut text, &mut nodes);
                            self.expect("(")?;
                            self.expect("$")?;
                            let var = self
                                .ident()
                                .ok_or_else(|| self.error("#foreach needs a variable".into()))?;
                            self.expect("in")?;
                            let list = self.expr()?;
                            self.expect(")")?;
                            let (body, end) = self.block(&["end"])?;
                            if end.is_none() {
                                return Err(self.error("#foreach is not closed with #end".into()));
                            }
                            nodes.push(Node::Foreach(var, list, body));
                            continue;
                        }
                        "end" | "else" | "elseif" => {
                            return Err(
                                self.error(format!("#{name} without a matching #if or #foreach"))
                            )
                        }
                        "break" | "stop" | "macro" | "parse" | "include" | "define"
                        | "evaluate" => {
                            return Err(self.error(format!(
                                "#{name} is not supported in mapping templates by nimbus"
                            )))
                        }
                        _ => {}
                    }
                }
                // Not a directive: a plain `#`.
                self.i = save + 1;
                text.push('#');
                continue;
            }
            if c == b'$' {
                let save = self.i;
                self.i += 1;
                let quiet = self.peek() == Some(b'!');
                if quiet {
                    self.i += 1;
                }
                let braced = self.peek() == Some(b'{');
                if braced {
                    self.i += 1;
                }
                if self.peek().is_some_and(is_ident_start) {
                    let r = self.reference()?;
                    if braced {
                        self.expect("}")?;
                    }
                    flush(&mut text, &mut nodes);
                    let raw = self.src[save..self.i].to_owned();
                    nodes.push(Node::Ref(r, quiet, raw));
                    continue;
                }
                self.i = save + 1;
                text.push('$');
                continue;
            }
            let ch = self.src[self.i..].chars().next().unwrap_or('\0');
            text.push(ch);
            self.i += ch.len_utf8();
        }
        flush(&mut text, &mut nodes);
        Ok((nodes, None))
    }

    fn if_chain(&mut self) -> Result<Node, VtlError> {
        let mut branches = Vec::new();
        let mut otherwise = Vec::new();
        let mut cond = self.paren_expr()?;
        loop {
            let (body, end) = self.block(&["end", "else", "elseif"])?;
            branches.push((cond, body));
            match end.as_deref() {
                Some("end") => break,
                Some("elseif") => cond = self.paren_expr()?,
                Some(_) => {
                    let (body, end) = self.block(&["end"])?;
                    if end.is_none() {
                        return Err(self.error("#if is not closed with #end".into()));
                    }
                    otherwise = body;
                    break;
                }
                None => return Err(self.error("#if is not closed with #end".into())),
            }
        }
        Ok(Node::If(branches, otherwise))
    }

    fn paren_expr(&mut self) -> Result<Expr, VtlError> {
        self.expect("(")?;
        let e = self.expr()?;
        self.expect(")")?;
        Ok(e)
    }

    /// After `$`: a name and its accesses.
    fn reference(&mut self) -> Result<Reference, VtlError> {
        let root = self
            .ident()
            .ok_or_else(|| self.error("expected a name after $".into()))?;
        let mut chain = Vec::new();
        loop {
            if self.peek() == Some(b'.')
                && self.s.get(self.i + 1).copied().is_some_and(is_ident_start)
            {
                self.i += 1;
                let name = self.ident().unwrap_or_default();
                if self.peek() == Some(b'(') {
                    self.i += 1;
                    let mut args = Vec::new();
                    self.skip_ws();
                    if self.peek() != Some(b')') {
                        loop {
                            args.push(self.expr()?);
                            self.skip_ws();
                            if self.peek() == Some(b',') {
                                self.i += 1;
                                continue;
                            }
                            break;
                        }
                    }
                    self.expect(")")?;
                    chain.push(Access::Call(name, args));
                } else {
                    chain.push(Access::Prop(name));
                }
            } else if self.peek() == Some(b'[') {
                self.i += 1;
                let index = self.expr()?;
                self.expect("]")?;
                chain.push(Access::Index(index));
            } else {
                break;
            }
        }
        Ok(Reference { root, chain })
    }

    fn expr(&mut self) -> Result<Expr, VtlError> {
        self.binary(0)
    }

    fn binary(&mut self, level: usize) -> Result<Expr, VtlError> {
        const LEVELS: &[&[(&str, &str)]] = &[
            &[("||", "||"), ("or ", "||")],
            &[("&&", "&&"), ("and ", "&&")],
            &[
                ("==", "=="),
                ("!=", "!="),
                ("<=", "<="),
                (">=", ">="),
                ("<", "<"),
                (">", ">"),
            ],
            &[("+", "+"), ("-", "-")],
            &[("*", "*"), ("/", "/"), ("%", "%")],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        'more: loop {
            self.skip_ws();
            for (token, op) in LEVELS[level] {
                if self.starts(token) {
                    self.i += token.len();
                    let right = self.binary(level + 1)?;
                    left = Expr::Bin(op, Box::new(left), Box::new(right));
                    continue 'more;
                }
            }
            return Ok(left);
        }
    }

    fn unary(&mut self) -> Result<Expr, VtlError> {
        self.skip_ws();
        if self.starts("!") && !self.starts("!=") {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.starts("not ") {
            self.i += 4;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, VtlError> {
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Err(self.error("expected a value, got the end of the template".into()));
        };
        match c {
            b'$' => {
                self.i += 1;
                if self.peek() == Some(b'!') {
                    self.i += 1;
                }
                let braced = self.peek() == Some(b'{');
                if braced {
                    self.i += 1;
                }
                let r = self.reference()?;
                if braced {
                    self.expect("}")?;
                }
                Ok(Expr::Ref(r))
            }
            b'\'' | b'"' => {
                self.i += 1;
                let start = self.i;
                while self.peek().is_some_and(|x| x != c) {
                    self.i += 1;
                }
                if self.peek().is_none() {
                    return Err(self.error("a string is not closed".into()));
                }
                let body = &self.src[start..self.i];
                self.i += 1;
                if c == b'\'' {
                    Ok(Expr::Lit(Value::String(body.to_owned())))
                } else {
                    let inner = Template::parse(body).map_err(|e| self.error(e.message))?;
                    Ok(Expr::Interp(inner.0))
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Expr::List(items));
                }
                let first = self.expr()?;
                self.skip_ws();
                if self.starts("..") {
                    self.i += 2;
                    let last = self.expr()?;
                    self.expect("]")?;
                    return Ok(Expr::Range(Box::new(first), Box::new(last)));
                }
                items.push(first);
                loop {
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => {
                            self.i += 1;
                            items.push(self.expr()?);
                        }
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Expr::List(items));
                        }
                        _ => return Err(self.error("expected , or ] in a list".into())),
                    }
                }
            }
            b'{' => {
                self.i += 1;
                let mut entries = Vec::new();
                loop {
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Expr::Map(entries));
                    }
                    let k = self.expr()?;
                    self.expect(":")?;
                    let v = self.expr()?;
                    entries.push((k, v));
                    self.skip_ws();
                    if self.peek() == Some(b',') {
                        self.i += 1;
                    }
                }
            }
            b'(' => {
                self.i += 1;
                let e = self.expr()?;
                self.expect(")")?;
                Ok(e)
            }
            c if c.is_ascii_digit() || c == b'-' => {
                let start = self.i;
                self.i += 1;
                while self.peek().is_some_and(|x| x.is_ascii_digit() || x == b'.')
                    && !self.starts("..")
                {
                    self.i += 1;
                }
                let text = &self.src[start..self.i];
                let n: f64 = text
                    .parse()
                    .map_err(|_| self.error(format!("{text:?} is not a number")))?;
                Ok(Expr::Lit(number(n)))
            }
            _ => {
                for (word, v) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ] {
                    if self.starts(word) {
                        self.i += word.len();
                        return Ok(Expr::Lit(v));
                    }
                }
                Err(self.error(format!("unexpected {:?}", c as char)))
            }
        }
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        Value::from(n as i64)
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// Guards a template against running away (a `#foreach` over a huge range).
const MAX_STEPS: usize = 1_000_000;
const MAX_OUTPUT: usize = 10 * 1024 * 1024;

struct Cx<'a> {
    host: &'a dyn Host,
    vars: BTreeMap<String, Value>,
    out: String,
    steps: usize,
}

/// Text of a value as Velocity writes it (objects and lists as JSON).
pub fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
}

impl Cx<'_> {
    fn nodes(&mut self, nodes: &[Node]) -> Result<(), String> {
        for n in nodes {
            self.steps += 1;
            if self.steps > MAX_STEPS || self.out.len() > MAX_OUTPUT {
                return Err("the template ran too long or wrote too much".into());
            }
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Ref(r, quiet, raw) => match self.reference(r)? {
                    Value::Null if *quiet => {}
                    Value::Null => self.out.push_str(raw),
                    v => self.out.push_str(&text_of(&v)),
                },
                Node::Set(target, e) => {
                    let v = self.eval(e)?;
                    if target.chain.is_empty() {
                        self.vars.insert(target.root.clone(), v);
                    } else if let (Some(Access::Prop(key)), Some(Value::Object(map))) =
                        (target.chain.last(), self.vars.get_mut(&target.root))
                    {
                        if target.chain.len() == 1 {
                            map.insert(key.clone(), v);
                        }
                    }
                }
                Node::If(branches, otherwise) => {
                    let mut taken = false;
                    for (cond, body) in branches {
                        if truthy(&self.eval(cond)?) {
                            self.nodes(body)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.nodes(otherwise)?;
                    }
                }
                Node::Foreach(var, list, body) => {
                    let items: Vec<Value> = match self.eval(list)? {
                        Value::Array(items) => items,
                        Value::Object(map) => map.into_values().collect(),
                        Value::Null => Vec::new(),
                        other => vec![other],
                    };
                    let saved = (
                        self.vars.get(var).cloned(),
                        self.vars.get("foreach").cloned(),
                    );
                    let n = items.len();
                    for (i, item) in items.into_iter().enumerate() {
                        self.vars.insert(var.clone(), item);
                        let mut state = Map::new();
                        state.insert("index".into(), Value::from(i));
                        state.insert("count".into(), Value::from(i + 1));
                        state.insert("hasNext".into(), Value::Bool(i + 1 < n));
                        state.insert("first".into(), Value::Bool(i == 0));
                        state.insert("last".into(), Value::Bool(i + 1 == n));
                        self.vars.insert("foreach".into(), Value::Object(state));
                        self.vars.insert("velocityCount".into(), Value::from(i + 1));
                        self.vars
                            .insert("velocityHasNext".into(), Value::Bool(i + 1 < n));
                        self.nodes(body)?;
                    }
                    for (k, v) in [(var.as_str(), saved.0), ("foreach", saved.1)] {
                        match v {
                            Some(v) => self.vars.insert(k.to_owned(), v),
                            None => self.vars.remove(k),
                        };
                    }
                }
            }
        }
        Ok(())
    }

    fn eval(&mut self, e: &Expr) -> Result<Value, String> {
        Ok(match e {
            Expr::Lit(v) => v.clone(),
            Expr::Interp(nodes) => {
                let outer = std::mem::take(&mut self.out);
                let r = self.nodes(nodes);
                let inner = std::mem::replace(&mut self.out, outer);
                r?;
                Value::String(inner)
            }
            Expr::Ref(r) => self.reference(r)?,
            Expr::List(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.eval(i))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Range(a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                let (a, b) = (a.as_i64().unwrap_or(0), b.as_i64().unwrap_or(0));
                if (b - a).unsigned_abs() > 100_000 {
                    return Err("a range of more than 100000 numbers".into());
                }
                let items: Vec<Value> = if a <= b {
                    (a..=b).map(Value::from).collect()
                } else {
                    (b..=a).rev().map(Value::from).collect()
                };
                Value::Array(items)
            }
            Expr::Map(entries) => {
                let mut m = Map::new();
                for (k, v) in entries {
                    let k = text_of(&self.eval(k)?);
                    let v = self.eval(v)?;
                    m.insert(k, v);
                }
                Value::Object(m)
            }
            Expr::Not(inner) => Value::Bool(!truthy(&self.eval(inner)?)),
            Expr::Bin(op, a, b) => {
                let a = self.eval(a)?;
                if *op == "&&" {
                    return Ok(Value::Bool(truthy(&a) && truthy(&self.eval(b)?)));
                }
                if *op == "||" {
                    return Ok(Value::Bool(truthy(&a) || truthy(&self.eval(b)?)));
                }
                let b = self.eval(b)?;
                binary(op, &a, &b)
            }
        })
    }

    fn reference(&mut self, r: &Reference) -> Result<Value, String> {
        let mut chain = r.chain.iter();
        let mut v = match r.root.as_str() {
            name if self.vars.contains_key(name) => self.vars[name].clone(),
            "input" => match chain.next() {
                None => Value::Null,
                Some(Access::Prop(p)) if p == "body" => Value::String(self.host.body().to_owned()),
                Some(Access::Call(m, args)) => {
                    let args: Vec<Value> = args
                        .iter()
                        .map(|a| self.eval(a))
                        .collect::<Result<_, _>>()?;
                    self.input(m, &args)?
                }
                Some(_) => Value::Null,
            },
            "util" => match chain.next() {
                Some(Access::Call(m, args)) => {
                    let args: Vec<Value> = args
                        .iter()
                        .map(|a| self.eval(a))
                        .collect::<Result<_, _>>()?;
                    util(m, &args)?
                }
                _ => Value::Null,
            },
            name => self.host.variable(name).unwrap_or(Value::Null),
        };
        for a in chain {
            v = match a {
                Access::Prop(p) => property(&v, p),
                Access::Index(i) => {
                    let i = self.eval(i)?;
                    index(&v, &i)
                }
                Access::Call(m, args) => {
                    let args: Vec<Value> = args
                        .iter()
                        .map(|a| self.eval(a))
                        .collect::<Result<_, _>>()?;
                    method(&v, m, &args)
                }
            };
        }
        Ok(v)
    }

    /// `$input.json(p)`, `$input.path(p)`, `$input.params()`, `$input.params(name)`.
    fn input(&self, m: &str, args: &[Value]) -> Result<Value, String> {
        let arg = args.first().map(text_of).unwrap_or_default();
        Ok(match m {
            "json" | "path" => {
                let body: Value = serde_json::from_str(self.host.body()).unwrap_or(Value::Null);
                let found = json_path(&body, &arg).unwrap_or(Value::Null);
                if m == "json" {
                    Value::String(found.to_string())
                } else {
                    found
                }
            }
            "params" => {
                let all = self.host.params();
                if args.is_empty() {
                    all
                } else {
                    // API Gateway looks in the path, then the query string, then the headers.
                    ["path", "querystring", "header"]
                        .iter()
                        .find_map(|place| {
                            all[place].as_object().and_then(|m| {
                                m.iter()
                                    .find(|(k, _)| {
                                        *k == &arg
                                            || (*place == "header" && k.eq_ignore_ascii_case(&arg))
                                    })
                                    .map(|(_, v)| v.clone())
                            })
                        })
                        .unwrap_or(Value::String(String::new()))
                }
            }
            other => return Err(format!("$input.{other}() is not one of json, path, params")),
        })
    }
}

/// A small JSONPath: `$`, `.name`, `['name']`, `[n]`.
fn json_path(root: &Value, path: &str) -> Option<Value> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut v = root;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            v = v.get(&r[..end])?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let key = r[..end].trim();
            v = match key.trim_matches(['\'', '"']) {
                k if key.starts_with(['\'', '"']) => v.get(k)?,
                n => v.get(n.parse::<usize>().ok()?)?,
            };
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(v.clone())
}

fn property(v: &Value, p: &str) -> Value {
    match v {
        Value::Object(m) => m.get(p).cloned().unwrap_or(Value::Null),
        // Java bean getters: `$list.size` is `$list.size()`, `$s.empty` is `isEmpty()`.
        _ => method(v, p, &[]),
    }
}

fn index(v: &Value, i: &Value) -> Value {
    match (v, i) {
        (Value::Array(items), Value::Number(n)) => n
            .as_u64()
            .and_then(|n| items.get(n as usize))
            .cloned()
            .unwrap_or(Value::Null),
        (Value::Object(m), k) => m.get(&text_of(k)).cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn method(v: &Value, m: &str, args: &[Value]) -> Value {
    let arg = |i: usize| args.get(i).map(text_of).unwrap_or_default();
    match (v, m) {
        (Value::String(s), "length" | "size") => Value::from(s.chars().count()),
        (Value::String(s), "isEmpty" | "empty") => Value::Bool(s.is_empty()),
        (Value::String(s), "toLowerCase") => Value::String(s.to_lowercase()),
        (Value::String(s), "toUpperCase") => Value::String(s.to_uppercase()),
        (Value::String(s), "trim") => Value::String(s.trim().to_owned()),
        (Value::String(s), "contains") => Value::Bool(s.contains(&arg(0))),
        (Value::String(s), "startsWith") => Value::Bool(s.starts_with(&arg(0))),
        (Value::String(s), "endsWith") => Value::Bool(s.ends_with(&arg(0))),
        (Value::String(s), "equals") => Value::Bool(*s == arg(0)),
        (Value::String(s), "indexOf") => Value::from(s.find(&arg(0)).map_or(-1, |i| i as i64)),
        (Value::String(s), "replace" | "replaceAll") => Value::String(s.replace(&arg(0), &arg(1))),
        (Value::String(s), "split") => Value::Array(
            s.split(&arg(0))
                .map(|p| Value::String(p.to_owned()))
                .collect(),
        ),
        (Value::String(s), "substring") => {
            let chars: Vec<char> = s.chars().collect();
            let a = args.first().and_then(Value::as_u64).unwrap_or(0) as usize;
            let b = args
                .get(1)
                .and_then(Value::as_u64)
                .map_or(chars.len(), |b| b as usize);
            Value::String(
                chars
                    .get(a.min(b)..b.min(chars.len()))
                    .unwrap_or_default()
                    .iter()
                    .collect(),
            )
        }
        (Value::String(s), "toString") => Value::String(s.clone()),
        (Value::Array(items), "size") => Value::from(items.len()),
        (Value::Array(items), "isEmpty" | "empty") => Value::Bool(items.is_empty()),
        (Value::Array(_), "get") => index(v, args.first().unwrap_or(&Value::Null)),
        (Value::Array(items), "contains") => {
            Value::Bool(items.contains(args.first().unwrap_or(&Value::Null)))
        }
        (Value::Object(map), "size") => Value::from(map.len()),
        (Value::Object(map), "isEmpty" | "empty") => Value::Bool(map.is_empty()),
        (Value::Object(map), "get") => map.get(&arg(0)).cloned().unwrap_or(Value::Null),
        (Value::Object(map), "containsKey") => Value::Bool(map.contains_key(&arg(0))),
        (Value::Object(map), "keySet") => {
            Value::Array(map.keys().map(|k| Value::String(k.clone())).collect())
        }
        (Value::Object(map), "values") => Value::Array(map.values().cloned().collect()),
        (Value::Object(map), "entrySet") => Value::Array(
            map.iter()
                .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
                .collect(),
        ),
        (_, "toString") => Value::String(text_of(v)),
        _ => Value::Null,
    }
}

fn util(m: &str, args: &[Value]) -> Result<Value, String> {
    use base64::Engine;
    let arg = args.first().map(text_of).unwrap_or_default();
    Ok(Value::String(match m {
        "escapeJavaScript" => {
            let mut out = String::with_capacity(arg.len());
            for c in arg.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\'' => out.push_str("\\'"),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '/' => out.push_str("\\/"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
                    c => out.push(c),
                }
            }
            out
        }
        "base64Encode" => base64::engine::general_purpose::STANDARD.encode(arg.as_bytes()),
        "base64Decode" => String::from_utf8_lossy(
            &base64::engine::general_purpose::STANDARD
                .decode(arg.trim())
                .map_err(|e| format!("$util.base64Decode: {e}"))?,
        )
        .into_owned(),
        "urlEncode" => form_urlencoded::byte_serialize(arg.as_bytes()).collect(),
        "urlDecode" => form_urlencoded::parse(format!("x={arg}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default(),
        "parseJson" => {
            return serde_json::from_str(&arg).map_err(|e| format!("$util.parseJson: {e}"))
        }
        other => return Err(format!("$util.{other}() is not one of escapeJavaScript, base64Encode, base64Decode, urlEncode, urlDecode, parseJson")),
    }))
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn binary(op: &str, a: &Value, b: &Value) -> Value {
    match op {
        "==" | "!=" => {
            let same = match (a, b) {
                (Value::Number(_), _) | (_, Value::Number(_)) => match (as_f64(a), as_f64(b)) {
                    (Some(x), Some(y)) => x == y,
                    _ => false,
                },
                (Value::String(x), y) | (y, Value::String(x)) if !y.is_string() && !y.is_null() => {
                    *x == text_of(y)
                }
                _ => a == b,
            };
            Value::Bool(same == (op == "=="))
        }
        "<" | ">" | "<=" | ">=" => {
            let ord = match (as_f64(a), as_f64(b)) {
                (Some(x), Some(y)) => x.partial_cmp(&y),
                _ => Some(text_of(a).cmp(&text_of(b))),
            };
            Value::Bool(ord.is_some_and(|o| match op {
                "<" => o.is_lt(),
                ">" => o.is_gt(),
                "<=" => o.is_le(),
                _ => o.is_ge(),
            }))
        }
        "+" => match (a, b) {
            (Value::String(_), _) | (_, Value::String(_)) => {
                Value::String(text_of(a) + &text_of(b))
            }
            _ => number(as_f64(a).unwrap_or(0.0) + as_f64(b).unwrap_or(0.0)),
        },
        _ => {
            let (x, y) = (as_f64(a).unwrap_or(0.0), as_f64(b).unwrap_or(0.0));
            match op {
                "-" => number(x - y),
                "*" => number(x * y),
                "/" if y != 0.0 => number(if a.is_i64() && b.is_i64() {
                    (x / y).trunc()
                } else {
                    x / y
                }),
                "%" if y != 0.0 => number(x % y),
                _ => Value::Null,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Req {
        body: String,
    }

    impl Host for Req {
        fn body(&self) -> &str {
            &self.body
        }
        fn params(&self) -> Value {
            json!({"path": {"id": "7"}, "querystring": {"q": "x y"}, "header": {"X-Trace": "t"}})
        }
        fn variable(&self, name: &str) -> Option<Value> {
            match name {
                "context" => Some(
                    json!({"requestId": "rid", "stage": "prod", "identity": {"sourceIp": "1.2.3.4"}}),
                ),
                "stageVariables" => Some(json!({"queue": "orders"})),
                _ => None,
            }
        }
    }

    fn render(template: &str, body: &str) -> String {
        let t = Template::parse(template).unwrap_or_else(|e| panic!("{template}: {e}"));
        t.render(&Req { body: body.into() }).unwrap()
    }

    #[test]
    fn api_gateway_documentation_examples_render() {
        let body = r#"{"name": "Ada", "items": [{"sku": "a", "n": 2}, {"sku": "b", "n": 1}], "note": "say \"hi\"\n"}"#;
        let cases: &[(&str, &str)] = &[
            ("$input.body", body),
            ("$input.json('$.name')", "\"Ada\""),
            ("$input.path('$.name')", "Ada"),
            ("$input.path('$.items[1].sku')", "b"),
            ("$input.path('$.items').size()", "2"),
            ("$input.json('$.items[0]')", r#"{"n":2,"sku":"a"}"#),
            ("$input.params('id') $input.params('q') $input.params('x-trace')", "7 x y t"),
            ("$input.params().header.get('X-Trace')", "t"),
            ("$util.escapeJavaScript($input.path('$.note'))", "say \\\"hi\\\"\\n"),
            ("$util.urlEncode('a b&c')", "a+b%26c"),
            ("$util.base64Encode('hi')", "aGk="),
            ("$util.parseJson('{\"a\":[1,2]}').a[1]", "2"),
            ("$context.requestId/$context.identity.sourceIp/${stageVariables.queue}", "rid/1.2.3.4/orders"),
            ("#set($n = $input.path('$.items').size())#if($n > 1)many#elseif($n == 1)one#{else}none#end", "many"),
            (
                "[#foreach($i in $input.path('$.items')){\"sku\":\"$i.sku\"}#if($foreach.hasNext),#end#end]",
                r#"[{"sku":"a"},{"sku":"b"}]"#,
            ),
            ("#foreach($x in [1..3])$x$velocityCount #end", "11 22 33 "),
            ("#set($m = {\"a\": 1})$m.a $m.size() #set($m.b = 2)$m.b", "1 1 2"),
            ("$missing $!missing|\\$escaped ## a comment", "$missing |$escaped "),
            ("#* block *#kept #not-a-directive", "kept #not-a-directive"),
            ("#if($input.path('$.name') == \"Ada\" && !$input.path('$.none'))yes#end", "yes"),
            ("#set($s = \"Hello $input.path('$.name')\")$s.toUpperCase()", "HELLO ADA"),
            ("{\"statusCode\": 200}", "{\"statusCode\": 200}"),
        ];
        for (template, want) in cases {
            assert_eq!(render(template, body), *want, "{template}");
        }
    }

    #[test]
    fn templates_that_do_not_parse_say_where() {
        for (template, want) in [
            (
                "line one\n#if($a == 1)\nno end",
                "line 3, column 7: #if is not closed with #end",
            ),
            (
                "#end",
                "line 1, column 5: #end without a matching #if or #foreach",
            ),
            (
                "#set(x = 1)",
                "line 1, column 6: #set needs ($name = value)",
            ),
            ("$input.json('$.a'", "line 1, column 18: expected \")\""),
            (
                "#foreach($i in [1, 2)",
                "line 1, column 21: expected , or ] in a list",
            ),
            (
                "#parse('x.vm')",
                "line 1, column 7: #parse is not supported in mapping templates by nimbus",
            ),
        ] {
            let err = Template::parse(template).unwrap_err().to_string();
            assert_eq!(err, want, "{template}");
        }
    }

    #[test]
    fn runaway_templates_stop() {
        let t = Template::parse("#foreach($i in [1..100000])#foreach($j in [1..100000])x#end#end")
            .unwrap();
        assert!(t
            .render(&Req {
                body: String::new()
            })
            .is_err());
    }
}
