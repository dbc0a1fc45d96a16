//! JSONata, the query language of states with `QueryLanguage: "JSONata"`: the subset Step
//! Functions users write, as a pure module (no I/O; the clock, randomness and UUIDs are passed
//! in through [`Env`]).
//!
//! Covered: literals, paths with JSONata's sequence semantics (`a.b.c` maps over arrays and
//! flattens, a singleton sequence is its value, `[]` keeps an array), `$`, `$$`, variables,
//! predicates `[expr]` and indexes `[0]`/`[-1]`, `*`, `**`, arithmetic, comparison, `in`,
//! `and`/`or`, `&`, `? :`, `?:`, `??`, ranges, array and object constructors, group-by
//! `expr{k: v}`, order-by `expr^(<a, >b)`, blocks `( ; )` with `:=`, lambdas
//! `function($x){ ... }` (closures, recursion), `~>`, and the common functions plus Step
//! Functions' own (`$partition`, `$range`, `$hash`, `$random`, `$uuid`, `$parse`).
//!
//! Functions are not first-class values: a lambda or a built-in can be bound with `:=`, passed
//! as an argument and called, but an expression never evaluates to a function.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use base64::Engine as _;
use serde_json::{Map, Number, Value};
use sha2::Digest as _;

const MAX_PARSE_DEPTH: usize = 100;
const MAX_EVAL_DEPTH: usize = 300;
const MAX_STEPS: u64 = 5_000_000;
const MAX_SEQUENCE: f64 = 10_000_000.0;
const MAX_STRING: f64 = 10_000_000.0;
/// Stack an evaluation may use below where it started, whatever the depth: debug builds have
/// large frames, and Tokio's worker threads 2 MiB of stack.
const STACK_BUDGET: usize = 768 * 1024;

/// Where the stack is now (an address, only compared, never dereferenced).
fn stack_mark() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// A JSONata error: its code (`S0201`, `T2001`, `D3030`, ...) and message, as Step Functions
/// reports them in a `States.QueryEvaluationError` cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: &'static str,
    pub message: String,
}

impl Error {
    fn new(code: &'static str, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

type R<T> = Result<T, Error>;

fn fail<T>(code: &'static str, message: impl Into<String>) -> R<T> {
    Err(Error::new(code, message))
}

/// What `$name` variables resolve to: `states` is bound as `$states`, plus workflow variables.
/// A missing variable evaluates to undefined.
pub struct Env<'a> {
    pub vars: &'a dyn Fn(&str) -> Option<Value>,
    pub now_ms: u64,
    pub random: &'a dyn Fn() -> f64,
    pub uuid: &'a dyn Fn() -> String,
}

/// A parsed JSONata expression.
#[derive(Debug, Clone)]
pub struct Expr {
    node: Node,
}

impl Expr {
    /// Parses `text` (without the `{% %}`). The error names the problem and the character
    /// offset, e.g. `S0202: Expected ")", got end of expression at character 7`.
    pub fn parse(text: &str) -> Result<Expr, String> {
        Expr::parse_detailed(text).map_err(String::from)
    }

    /// [`Expr::parse`] with the error's code kept apart.
    pub fn parse_detailed(text: &str) -> Result<Expr, Error> {
        let toks = lex(text)?;
        let mut p = Parser {
            toks,
            i: 0,
            depth: 0,
        };
        let node = p.expr(0)?;
        let t = p.peek();
        if t.tok != Tok::End {
            return fail(
                "S0201",
                format!(
                    "Syntax error: unexpected {} at character {}",
                    describe(&t.tok),
                    t.pos
                ),
            );
        }
        Ok(Expr { node })
    }
}

/// Whether a string is a JSONata expression: `{% ... %}`.
pub fn is_expression(s: &str) -> bool {
    s.len() >= 4 && s.starts_with("{%") && s.ends_with("%}")
}

/// Evaluates with no context document (`$` is undefined, as in Step Functions, where the
/// state's input is `$states.input`). `Ok(None)` is JSONata's undefined.
pub fn eval(expr: &Expr, env: &Env) -> Result<Option<Value>, Error> {
    eval_with_input(expr, None, env)
}

/// Evaluates against a context document, bound as `$` and `$$`.
pub fn eval_with_input(
    expr: &Expr,
    input: Option<&Value>,
    env: &Env,
) -> Result<Option<Value>, Error> {
    let ev = Evaluator {
        env,
        root: input,
        depth: Cell::new(0),
        steps: Cell::new(0),
        stack_base: stack_mark(),
    };
    let scope = Rc::new(Scope::default());
    let r = ev.ev(&expr.node, input, &scope);
    scope.clear();
    Ok(r?.0)
}

/// A field value of a JSONata state: a string `{% expr %}` is evaluated, other strings are
/// literals, objects and arrays are walked (keys are not evaluated). A member that evaluates to
/// undefined is dropped from its object or array; a template that is undefined as a whole is
/// `null` (see [`render_opt`]).
pub fn render(template: &Value, env: &Env) -> Result<Value, Error> {
    Ok(render_opt(template, env)?.unwrap_or(Value::Null))
}

/// [`render`], keeping a whole undefined result as `None`.
pub fn render_opt(template: &Value, env: &Env) -> Result<Option<Value>, Error> {
    match template {
        Value::String(s) if is_expression(s) => {
            let expr = Expr::parse_detailed(&s[2..s.len() - 2])?;
            eval(&expr, env)
        }
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if let Some(r) = render_opt(v, env)? {
                    out.insert(k.clone(), r);
                }
            }
            Ok(Some(Value::Object(out)))
        }
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for v in a {
                if let Some(r) = render_opt(v, env)? {
                    out.push(r);
                }
            }
            Ok(Some(Value::Array(out)))
        }
        other => Ok(Some(other.clone())),
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    /// A name; the flag says it was quoted with backticks (never a keyword).
    Name(String, bool),
    Var(String),
    Op(&'static str),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
}

const TWO_CHAR_OPS: [&str; 9] = ["..", ":=", "!=", ">=", "<=", "**", "~>", "?:", "??"];
const ONE_CHAR_OPS: [&str; 25] = [
    ".", "[", "]", "{", "}", "(", ")", ",", "@", "#", ";", ":", "?", "+", "-", "*", "/", "%", "|",
    "=", "<", ">", "^", "&", "!",
];

fn is_name_char(c: char) -> bool {
    !c.is_whitespace() && !".[]{}(),@#;:?+-*/%|=<>^&!~\"'`".contains(c)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number {}", fmt_num(*n)),
        Tok::Str(s) => format!("string \"{s}\""),
        Tok::Name(n, _) => format!("name \"{n}\""),
        Tok::Var(n) => format!("variable \"${n}\""),
        Tok::Op(o) => format!("\"{o}\""),
        Tok::End => "end of expression".into(),
    }
}

fn lex(text: &str) -> R<Vec<Token>> {
    let cs: Vec<char> = text.chars().collect();
    let n = cs.len();
    let mut i = 0;
    let mut out = Vec::new();
    while i < n {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let pos = i;
        if c == '/' && cs.get(i + 1) == Some(&'*') {
            i += 2;
            loop {
                if i + 1 >= n {
                    return fail(
                        "S0106",
                        format!("Comment has no closing tag at character {pos}"),
                    );
                }
                if cs[i] == '*' && cs[i + 1] == '/' {
                    i += 2;
                    break;
                }
                i += 1;
            }
            continue;
        }
        if i + 1 < n {
            let two: String = cs[i..i + 2].iter().collect();
            if let Some(op) = TWO_CHAR_OPS.iter().find(|o| **o == two) {
                out.push(Token {
                    tok: Tok::Op(op),
                    pos,
                });
                i += 2;
                continue;
            }
        }
        if let Some(op) = ONE_CHAR_OPS.iter().find(|o| o.starts_with(c)) {
            out.push(Token {
                tok: Tok::Op(op),
                pos,
            });
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let mut j = i;
            while j < n && cs[j].is_ascii_digit() {
                j += 1;
            }
            if j + 1 < n && cs[j] == '.' && cs[j + 1].is_ascii_digit() {
                j += 1;
                while j < n && cs[j].is_ascii_digit() {
                    j += 1;
                }
            }
            if j < n && (cs[j] == 'e' || cs[j] == 'E') {
                let mut k = j + 1;
                if k < n && (cs[k] == '+' || cs[k] == '-') {
                    k += 1;
                }
                if k < n && cs[k].is_ascii_digit() {
                    while k < n && cs[k].is_ascii_digit() {
                        k += 1;
                    }
                    j = k;
                }
            }
            let s: String = cs[i..j].iter().collect();
            let v: f64 = s.parse().unwrap_or(f64::INFINITY);
            if !v.is_finite() {
                return fail(
                    "S0102",
                    format!("Number out of range: {s} at character {pos}"),
                );
            }
            out.push(Token {
                tok: Tok::Num(v),
                pos,
            });
            i = j;
            continue;
        }
        if c == '"' || c == '\'' {
            let (s, j) = lex_string(&cs, i)?;
            out.push(Token {
                tok: Tok::Str(s),
                pos,
            });
            i = j;
            continue;
        }
        if c == '`' {
            let mut j = i + 1;
            while j < n && cs[j] != '`' {
                j += 1;
            }
            if j >= n {
                return fail(
                    "S0105",
                    format!(
                        "Quoted property name must be terminated with a backquote (`) at character {pos}"
                    ),
                );
            }
            out.push(Token {
                tok: Tok::Name(cs[i + 1..j].iter().collect(), true),
                pos,
            });
            i = j + 1;
            continue;
        }
        if c == '$' {
            let mut j = i + 1;
            while j < n && is_name_char(cs[j]) {
                j += 1;
            }
            out.push(Token {
                tok: Tok::Var(cs[i + 1..j].iter().collect()),
                pos,
            });
            i = j;
            continue;
        }
        if is_name_char(c) {
            let mut j = i;
            while j < n && is_name_char(cs[j]) {
                j += 1;
            }
            out.push(Token {
                tok: Tok::Name(cs[i..j].iter().collect(), false),
                pos,
            });
            i = j;
            continue;
        }
        return fail(
            "S0204",
            format!("Unknown operator: \"{c}\" at character {pos}"),
        );
    }
    out.push(Token {
        tok: Tok::End,
        pos: n,
    });
    Ok(out)
}

fn lex_string(cs: &[char], start: usize) -> R<(String, usize)> {
    let quote = cs[start];
    let mut s = String::new();
    let mut j = start + 1;
    let unterminated = || {
        Error::new(
            "S0101",
            format!("String literal must be terminated by a matching quote at character {start}"),
        )
    };
    loop {
        let c = *cs.get(j).ok_or_else(unterminated)?;
        if c == quote {
            return Ok((s, j + 1));
        }
        if c != '\\' {
            s.push(c);
            j += 1;
            continue;
        }
        let e = *cs.get(j + 1).ok_or_else(unterminated)?;
        j += 2;
        match e {
            '"' => s.push('"'),
            '\'' => s.push('\''),
            '\\' => s.push('\\'),
            '/' => s.push('/'),
            'b' => s.push('\u{8}'),
            'f' => s.push('\u{c}'),
            'n' => s.push('\n'),
            'r' => s.push('\r'),
            't' => s.push('\t'),
            'u' => {
                let hi = hex4(cs, j).ok_or_else(|| {
                    Error::new(
                        "S0104",
                        format!(
                            "The escape sequence \\u must be followed by 4 hex digits at character {}",
                            j - 2
                        ),
                    )
                })?;
                j += 4;
                if (0xD800..0xDC00).contains(&hi)
                    && cs.get(j) == Some(&'\\')
                    && cs.get(j + 1) == Some(&'u')
                {
                    if let Some(lo) = hex4(cs, j + 2).filter(|lo| (0xDC00..0xE000).contains(lo)) {
                        let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                        s.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                        j += 6;
                        continue;
                    }
                }
                s.push(char::from_u32(hi).unwrap_or('\u{FFFD}'));
            }
            other => {
                return fail(
                    "S0103",
                    format!(
                        "Unsupported escape sequence: \\{other} at character {}",
                        j - 2
                    ),
                )
            }
        }
    }
}

fn hex4(cs: &[char], at: usize) -> Option<u32> {
    let s: String = cs.get(at..at + 4)?.iter().collect();
    if s.chars().all(|c| c.is_ascii_hexdigit()) {
        u32::from_str_radix(&s, 16).ok()
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Parser

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Concat,
    In,
    And,
    Or,
    Elvis,
    Coalesce,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Mod => "%",
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Concat => "&",
            Op::In => "in",
            Op::And => "and",
            Op::Or => "or",
            Op::Elvis => "?:",
            Op::Coalesce => "??",
        }
    }
}

#[derive(Debug, Clone)]
struct Step {
    node: Node,
    stages: Vec<Node>,
}

#[derive(Debug)]
struct LambdaDef {
    params: Vec<String>,
    body: Node,
}

#[derive(Debug, Clone)]
enum Node {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
    Path {
        steps: Vec<Step>,
        keep_array: bool,
    },
    Name(String),
    Wildcard,
    Descendants,
    Var(String),
    Filter {
        expr: Box<Node>,
        preds: Vec<Node>,
        keep_array: bool,
    },
    Neg(Box<Node>),
    Bin(Op, Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Option<Box<Node>>),
    Array(Vec<Node>),
    Range(Box<Node>, Box<Node>),
    Object(Vec<(Node, Node)>),
    Group(Box<Node>, Vec<(Node, Node)>),
    Sort(Box<Node>, Vec<(Node, bool)>),
    Block(Vec<Node>),
    Bind(String, Box<Node>),
    Call(Box<Node>, Vec<Node>),
    Lambda(Rc<LambdaDef>),
    Apply(Box<Node>, Box<Node>),
}

fn step(node: Node) -> Step {
    Step {
        node,
        stages: Vec::new(),
    }
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
}

fn lbp(t: &Tok) -> u8 {
    match t {
        Tok::Op("[") | Tok::Op("(") => 80,
        Tok::Op(".") => 75,
        Tok::Op("{") => 70,
        Tok::Op("*") | Tok::Op("/") | Tok::Op("%") => 60,
        Tok::Op("+") | Tok::Op("-") | Tok::Op("&") => 50,
        Tok::Op("=")
        | Tok::Op("!=")
        | Tok::Op("<")
        | Tok::Op("<=")
        | Tok::Op(">")
        | Tok::Op(">=")
        | Tok::Op("~>")
        | Tok::Op("?:")
        | Tok::Op("??")
        | Tok::Op("^") => 40,
        Tok::Name(n, false) if n == "in" => 40,
        Tok::Name(n, false) if n == "and" => 30,
        Tok::Name(n, false) if n == "or" => 25,
        Tok::Op("?") => 20,
        Tok::Op(":=") => 10,
        _ => 0,
    }
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn is(&self, op: &str) -> bool {
        matches!(&self.peek().tok, Tok::Op(o) if *o == op)
    }

    fn expect(&mut self, op: &'static str) -> R<()> {
        if self.is(op) {
            self.advance();
            return Ok(());
        }
        let t = self.peek();
        if t.tok == Tok::End {
            return fail(
                "S0203",
                format!(
                    "Expected \"{op}\" before end of expression at character {}",
                    t.pos
                ),
            );
        }
        fail(
            "S0202",
            format!(
                "Expected \"{op}\", got {} at character {}",
                describe(&t.tok),
                t.pos
            ),
        )
    }

    fn expr(&mut self, rbp: u8) -> R<Node> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return fail(
                "S0301",
                format!(
                    "Expression nested too deeply (more than {MAX_PARSE_DEPTH} levels) at character {}",
                    self.peek().pos
                ),
            );
        }
        let t = self.advance();
        let mut left = self.nud(t)?;
        while rbp < lbp(&self.peek().tok) {
            let t = self.advance();
            left = self.led(t, left)?;
        }
        self.depth -= 1;
        Ok(left)
    }

    fn nud(&mut self, t: Token) -> R<Node> {
        match t.tok {
            Tok::Num(n) => Ok(Node::Num(n)),
            Tok::Str(s) => Ok(Node::Str(s)),
            Tok::Name(s, quoted) => {
                if !quoted {
                    match s.as_str() {
                        "true" => return Ok(Node::Bool(true)),
                        "false" => return Ok(Node::Bool(false)),
                        "null" => return Ok(Node::Null),
                        "function" | "λ" if self.is("(") => return self.lambda(),
                        _ => {}
                    }
                }
                Ok(Node::Path {
                    steps: vec![step(Node::Name(s))],
                    keep_array: false,
                })
            }
            Tok::Var(s) => Ok(Node::Var(s)),
            Tok::Op("-") => {
                let e = self.expr(70)?;
                Ok(match e {
                    Node::Num(n) => Node::Num(-n),
                    other => Node::Neg(Box::new(other)),
                })
            }
            Tok::Op("*") => Ok(Node::Path {
                steps: vec![step(Node::Wildcard)],
                keep_array: false,
            }),
            Tok::Op("**") => Ok(Node::Path {
                steps: vec![step(Node::Descendants)],
                keep_array: false,
            }),
            Tok::Op("(") => {
                let mut items = Vec::new();
                while !self.is(")") {
                    items.push(self.expr(0)?);
                    if !self.is(";") {
                        break;
                    }
                    self.advance();
                }
                self.expect(")")?;
                Ok(Node::Block(items))
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                while !self.is("]") {
                    let mut item = self.expr(0)?;
                    if self.is("..") {
                        self.advance();
                        let hi = self.expr(0)?;
                        item = Node::Range(Box::new(item), Box::new(hi));
                    }
                    items.push(item);
                    if !self.is(",") {
                        break;
                    }
                    self.advance();
                }
                self.expect("]")?;
                Ok(Node::Array(items))
            }
            Tok::Op("{") => Ok(Node::Object(self.pairs()?)),
            Tok::End => fail(
                "S0207",
                format!("Unexpected end of expression at character {}", t.pos),
            ),
            other => fail(
                "S0211",
                format!(
                    "The symbol {} cannot be used as a unary operator at character {}",
                    describe(&other),
                    t.pos
                ),
            ),
        }
    }

    fn pairs(&mut self) -> R<Vec<(Node, Node)>> {
        let mut pairs = Vec::new();
        while !self.is("}") {
            let k = self.expr(0)?;
            self.expect(":")?;
            let v = self.expr(0)?;
            pairs.push((k, v));
            if !self.is(",") {
                break;
            }
            self.advance();
        }
        self.expect("}")?;
        Ok(pairs)
    }

    fn lambda(&mut self) -> R<Node> {
        self.expect("(")?;
        let mut params = Vec::new();
        while !self.is(")") {
            let t = self.advance();
            match t.tok {
                Tok::Var(v) if !v.is_empty() => params.push(v),
                other => {
                    return fail(
                        "S0208",
                        format!(
                            "Parameter {} of function definition must be a variable name (start with $), got {} at character {}",
                            params.len() + 1,
                            describe(&other),
                            t.pos
                        ),
                    )
                }
            }
            if !self.is(",") {
                break;
            }
            self.advance();
        }
        self.expect(")")?;
        if self.is("<") {
            // A signature: skipped, not checked.
            let mut depth = 0usize;
            loop {
                let t = self.advance();
                match t.tok {
                    Tok::Op("<") => depth += 1,
                    Tok::Op(">") => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Tok::End => {
                        return fail(
                            "S0203",
                            format!(
                                "Expected \">\" before end of expression at character {}",
                                t.pos
                            ),
                        )
                    }
                    _ => {}
                }
            }
        }
        self.expect("{")?;
        let body = self.expr(0)?;
        self.expect("}")?;
        Ok(Node::Lambda(Rc::new(LambdaDef { params, body })))
    }

    fn led(&mut self, t: Token, left: Node) -> R<Node> {
        let bin = |op: Op, p: &mut Parser, bp: u8| -> R<Node> {
            let rhs = p.expr(bp)?;
            Ok(Node::Bin(op, Box::new(left.clone()), Box::new(rhs)))
        };
        match &t.tok {
            Tok::Op(".") => {
                let rhs = self.expr(75)?;
                make_path(left, rhs, t.pos)
            }
            Tok::Op("[") => {
                if self.is("]") {
                    self.advance();
                    return Ok(attach(left, None));
                }
                let pred = self.expr(0)?;
                self.expect("]")?;
                Ok(attach(left, Some(pred)))
            }
            Tok::Op("(") => {
                let mut args = Vec::new();
                while !self.is(")") {
                    args.push(self.expr(0)?);
                    if !self.is(",") {
                        break;
                    }
                    self.advance();
                }
                self.expect(")")?;
                Ok(Node::Call(Box::new(left), args))
            }
            Tok::Op("{") => Ok(Node::Group(Box::new(left), self.pairs()?)),
            Tok::Op("^") => {
                self.expect("(")?;
                let mut terms = Vec::new();
                loop {
                    let mut desc = false;
                    if self.is("<") {
                        self.advance();
                    } else if self.is(">") {
                        self.advance();
                        desc = true;
                    }
                    terms.push((self.expr(0)?, desc));
                    if !self.is(",") {
                        break;
                    }
                    self.advance();
                }
                self.expect(")")?;
                Ok(Node::Sort(Box::new(left), terms))
            }
            Tok::Op("?") => {
                let then = self.expr(0)?;
                let otherwise = if self.is(":") {
                    self.advance();
                    Some(Box::new(self.expr(0)?))
                } else {
                    None
                };
                Ok(Node::Cond(Box::new(left), Box::new(then), otherwise))
            }
            Tok::Op(":=") => {
                let rhs = self.expr(9)?;
                match left {
                    Node::Var(n) if !n.is_empty() && n != "$" => {
                        Ok(Node::Bind(n, Box::new(rhs)))
                    }
                    _ => fail(
                        "S0212",
                        format!(
                            "The left side of := must be a variable name (start with $) at character {}",
                            t.pos
                        ),
                    ),
                }
            }
            Tok::Op("~>") => {
                let rhs = self.expr(40)?;
                Ok(Node::Apply(Box::new(left), Box::new(rhs)))
            }
            Tok::Op("*") => bin(Op::Mul, self, 60),
            Tok::Op("/") => bin(Op::Div, self, 60),
            Tok::Op("%") => bin(Op::Mod, self, 60),
            Tok::Op("+") => bin(Op::Add, self, 50),
            Tok::Op("-") => bin(Op::Sub, self, 50),
            Tok::Op("&") => bin(Op::Concat, self, 50),
            Tok::Op("=") => bin(Op::Eq, self, 40),
            Tok::Op("!=") => bin(Op::Ne, self, 40),
            Tok::Op("<") => bin(Op::Lt, self, 40),
            Tok::Op("<=") => bin(Op::Le, self, 40),
            Tok::Op(">") => bin(Op::Gt, self, 40),
            Tok::Op(">=") => bin(Op::Ge, self, 40),
            Tok::Op("?:") => bin(Op::Elvis, self, 40),
            Tok::Op("??") => bin(Op::Coalesce, self, 40),
            Tok::Name(n, false) if n == "in" => bin(Op::In, self, 40),
            Tok::Name(n, false) if n == "and" => bin(Op::And, self, 30),
            Tok::Name(n, false) if n == "or" => bin(Op::Or, self, 25),
            other => fail(
                "S0201",
                format!(
                    "Syntax error: unexpected {} at character {}",
                    describe(other),
                    t.pos
                ),
            ),
        }
    }
}

fn literal_step_error(n: &Node, pos: usize) -> R<()> {
    let v = match n {
        Node::Num(x) => fmt_num(*x),
        Node::Bool(b) => b.to_string(),
        Node::Null => "null".into(),
        _ => return Ok(()),
    };
    fail(
        "S0213",
        format!("The literal value {v} cannot be used as a step within a path expression at character {pos}"),
    )
}

fn make_path(lhs: Node, rhs: Node, pos: usize) -> R<Node> {
    literal_step_error(&lhs, pos)?;
    literal_step_error(&rhs, pos)?;
    let (mut steps, mut keep) = match lhs {
        Node::Path { steps, keep_array } => (steps, keep_array),
        Node::Str(s) => (vec![step(Node::Name(s))], false),
        other => (vec![step(other)], false),
    };
    match rhs {
        Node::Path {
            steps: more,
            keep_array,
        } => {
            steps.extend(more);
            keep |= keep_array;
        }
        Node::Str(s) => steps.push(step(Node::Name(s))),
        other => steps.push(step(other)),
    }
    Ok(Node::Path {
        steps,
        keep_array: keep,
    })
}

fn attach(left: Node, pred: Option<Node>) -> Node {
    match left {
        Node::Path {
            mut steps,
            mut keep_array,
        } => {
            match pred {
                None => keep_array = true,
                Some(p) => {
                    if let Some(last) = steps.last_mut() {
                        last.stages.push(p);
                    }
                }
            }
            Node::Path { steps, keep_array }
        }
        Node::Filter {
            expr,
            mut preds,
            mut keep_array,
        } => {
            match pred {
                None => keep_array = true,
                Some(p) => preds.push(p),
            }
            Node::Filter {
                expr,
                preds,
                keep_array,
            }
        }
        other => Node::Filter {
            expr: Box::new(other),
            keep_array: pred.is_none(),
            preds: pred.into_iter().collect(),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Values

/// How an array result came about: JSONata flattens sequences (and data arrays met on a path)
/// but not arrays built with `[...]`, and a singleton sequence is its only member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Seq,
    SeqKeep,
    Cons,
}

type Out = (Option<Value>, Kind);

fn plain(v: Option<Value>) -> R<Out> {
    Ok((v, Kind::Plain))
}

fn seq(v: Vec<Value>) -> R<Out> {
    Ok((Some(Value::Array(v)), Kind::Seq))
}

fn collapse(out: Out) -> Out {
    match out {
        (Some(Value::Array(mut a)), k @ (Kind::Seq | Kind::SeqKeep)) => {
            if a.is_empty() {
                (None, Kind::Plain)
            } else if a.len() == 1 && k == Kind::Seq {
                (a.pop(), Kind::Plain)
            } else {
                (Some(Value::Array(a)), k)
            }
        }
        other => other,
    }
}

fn to_seq(v: Option<Value>) -> Vec<Value> {
    match v {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(v) => vec![v],
    }
}

fn num(f: f64) -> R<Value> {
    if !f.is_finite() {
        return fail("D1001", format!("Number out of range: {f}"));
    }
    if f.fract() == 0.0 && f.abs() < 9.2e18 {
        return Ok(Value::from(f as i64));
    }
    Ok(Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null))
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn is_int(f: f64) -> bool {
    f.is_finite() && f.fract() == 0.0
}

fn deep_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| deep_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_eq(v, w)))
        }
        _ => a == b,
    }
}

/// JSONata's `$boolean` cast; undefined is false here.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
        Some(Value::Array(a)) => match a.len() {
            0 => false,
            1 => truthy(a.first()),
            _ => a.iter().any(|x| truthy(Some(x))),
        },
    }
}

/// A number as JavaScript prints it after JSONata's 15-significant-digit rounding.
fn fmt_num(f: f64) -> String {
    let r: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    if r == 0.0 {
        return "0".into();
    }
    if r.fract() == 0.0 && r.abs() < 1e21 {
        return format!("{r:.0}");
    }
    if r.abs() >= 1e21 || r.abs() < 1e-6 {
        let s = format!("{r:e}");
        return match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        };
    }
    format!("{r}")
}

/// Numbers rounded as `$string` prints them, for JSON text.
fn round_numbers(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            let r: f64 = fmt_num(f).parse().unwrap_or(f);
            num(r).unwrap_or(Value::Null)
        }
        Value::Array(a) => Value::Array(a.iter().map(round_numbers).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), round_numbers(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn stringify(v: &Value, pretty: bool) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => fmt_num(n.as_f64().unwrap_or(0.0)),
        other => {
            let r = round_numbers(other);
            let s = if pretty {
                serde_json::to_string_pretty(&r)
            } else {
                serde_json::to_string(&r)
            };
            s.unwrap_or_default()
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn lookup(v: Option<&Value>, key: &str) -> Out {
    match v {
        Some(Value::Object(m)) => (m.get(key).cloned(), Kind::Plain),
        Some(Value::Array(a)) => {
            let mut res = Vec::new();
            for item in a {
                lookup_into(item, key, &mut res);
            }
            (Some(Value::Array(res)), Kind::Seq)
        }
        _ => (None, Kind::Plain),
    }
}

fn lookup_into(v: &Value, key: &str, out: &mut Vec<Value>) {
    match v {
        Value::Object(m) => match m.get(key) {
            Some(Value::Array(xs)) => out.extend(xs.iter().cloned()),
            Some(x) => out.push(x.clone()),
            None => {}
        },
        Value::Array(a) => {
            for item in a {
                lookup_into(item, key, out);
            }
        }
        _ => {}
    }
}

fn wildcard(input: Option<&Value>) -> R<Out> {
    let mut res = Vec::new();
    match input {
        Some(Value::Object(m)) => m.values().for_each(|v| flatten_into(v, &mut res)),
        Some(Value::Array(a)) => a.iter().for_each(|v| flatten_into(v, &mut res)),
        _ => {}
    }
    seq(res)
}

fn flatten_into(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(a) => {
            for x in a {
                flatten_into(x, out);
            }
        }
        other => out.push(other.clone()),
    }
}

fn descendants(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(a) => {
            for x in a {
                descendants(x, out);
            }
        }
        Value::Object(m) => {
            out.push(v.clone());
            for x in m.values() {
                descendants(x, out);
            }
        }
        other => out.push(other.clone()),
    }
}

/// `$append`: undefined is nothing, a non-array is a singleton.
fn append(a: Option<Value>, b: Option<Value>) -> Option<Value> {
    match (a, b) {
        (None, b) => b,
        (a, None) => a,
        (Some(a), Some(b)) => {
            let mut v = to_seq(Some(a));
            v.extend(to_seq(Some(b)));
            Some(Value::Array(v))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluator

#[derive(Clone)]
enum Func {
    Lambda(Rc<Closure>),
    Builtin(&'static str),
}

struct Closure {
    def: Rc<LambdaDef>,
    scope: Rc<Scope>,
    input: Option<Value>,
}

#[derive(Clone)]
enum Binding {
    Val(Option<Value>),
    Func(Func),
}

enum Arg {
    V(Option<Value>),
    F(Func),
}

#[derive(Default)]
struct Scope {
    vars: RefCell<HashMap<String, Binding>>,
    parent: Option<Rc<Scope>>,
}

impl Scope {
    fn child(parent: &Rc<Scope>) -> Rc<Scope> {
        Rc::new(Scope {
            vars: RefCell::default(),
            parent: Some(parent.clone()),
        })
    }

    fn lookup(&self, name: &str) -> Option<Binding> {
        if let Some(b) = self.vars.borrow().get(name) {
            return Some(b.clone());
        }
        self.parent.as_ref().and_then(|p| p.lookup(name))
    }

    fn set(&self, name: &str, b: Binding) {
        self.vars.borrow_mut().insert(name.to_string(), b);
    }

    /// Drops the bindings, breaking the cycles recursive closures make with their scope.
    fn clear(&self) {
        let vars = std::mem::take(&mut *self.vars.borrow_mut());
        drop(vars);
    }
}

const BUILTINS: &[&str] = &[
    "string",
    "number",
    "boolean",
    "not",
    "exists",
    "count",
    "sum",
    "max",
    "min",
    "average",
    "length",
    "substring",
    "substringBefore",
    "substringAfter",
    "uppercase",
    "lowercase",
    "trim",
    "pad",
    "contains",
    "split",
    "join",
    "replace",
    "keys",
    "lookup",
    "merge",
    "append",
    "reverse",
    "sort",
    "distinct",
    "shuffle",
    "zip",
    "each",
    "spread",
    "sift",
    "map",
    "filter",
    "reduce",
    "single",
    "round",
    "floor",
    "ceil",
    "abs",
    "power",
    "sqrt",
    "random",
    "uuid",
    "now",
    "millis",
    "toMillis",
    "fromMillis",
    "type",
    "formatNumber",
    "base64encode",
    "base64decode",
    "partition",
    "range",
    "hash",
    "parse",
    "error",
    "assert",
];

fn builtin(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|b| **b == name).copied()
}

/// Functions whose first argument defaults to the context: (min args, max args, whether the
/// first parameter is a string, so a non-string first argument means the context goes first).
fn context_sig(name: &str) -> Option<(usize, usize, bool)> {
    Some(match name {
        "string" => (1, 2, false),
        "number" | "boolean" | "not" => (1, 1, false),
        "length" | "uppercase" | "lowercase" | "trim" | "base64encode" | "base64decode" => {
            (1, 1, true)
        }
        "substring" => (2, 3, true),
        "substringBefore" | "substringAfter" | "contains" => (2, 2, true),
        "split" | "pad" => (2, 3, true),
        "replace" => (3, 4, true),
        _ => return None,
    })
}

struct Evaluator<'e, 'a> {
    env: &'e Env<'a>,
    root: Option<&'e Value>,
    depth: Cell<usize>,
    steps: Cell<u64>,
    stack_base: usize,
}

fn sig_err(name: &str, i: usize) -> Error {
    Error::new(
        "T0410",
        format!(
            "Argument {} of function \"{name}\" does not match function signature",
            i + 1
        ),
    )
}

fn av(args: &[Arg], i: usize) -> Option<&Value> {
    match args.get(i) {
        Some(Arg::V(Some(v))) => Some(v),
        _ => None,
    }
}

fn afn(args: &[Arg], i: usize) -> Option<&Func> {
    match args.get(i) {
        Some(Arg::F(f)) => Some(f),
        _ => None,
    }
}

fn arg_str<'v>(args: &'v [Arg], i: usize, name: &str) -> R<Option<&'v str>> {
    match av(args, i) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(sig_err(name, i)),
    }
}

fn arg_num(args: &[Arg], i: usize, name: &str) -> R<Option<f64>> {
    match av(args, i) {
        None => Ok(None),
        Some(v) => as_f64(v).map(Some).ok_or_else(|| sig_err(name, i)),
    }
}

fn arg_arr(args: &[Arg], i: usize) -> Option<Vec<Value>> {
    av(args, i).map(|v| to_seq(Some(v.clone())))
}

fn numbers(items: &[Value], name: &str) -> R<Vec<f64>> {
    items
        .iter()
        .map(|v| {
            as_f64(v).ok_or_else(|| {
                Error::new(
                    "T0412",
                    format!("Argument 1 of function \"{name}\" must be an array of numbers"),
                )
            })
        })
        .collect()
}

fn sfn_err(message: impl Into<String>) -> Error {
    Error::new("States.QueryEvaluationError", message)
}

impl Evaluator<'_, '_> {
    fn enter(&self) -> R<()> {
        let d = self.depth.get() + 1;
        if d > MAX_EVAL_DEPTH || self.stack_base.abs_diff(stack_mark()) > STACK_BUDGET {
            return fail(
                "U1001",
                "Stack overflow error: Check for non-terminating recursive function.  Consider rewriting as tail-recursive.",
            );
        }
        let s = self.steps.get() + 1;
        if s > MAX_STEPS {
            return fail(
                "U1001",
                "Expression evaluation timeout: Check for infinite loop",
            );
        }
        self.steps.set(s);
        self.depth.set(d);
        Ok(())
    }

    fn leave(&self) {
        self.depth.set(self.depth.get().saturating_sub(1));
    }

    fn ev(&self, node: &Node, input: Option<&Value>, scope: &Rc<Scope>) -> R<Out> {
        self.enter()?;
        let r = self.ev_inner(node, input, scope);
        self.leave();
        Ok(collapse(r?))
    }

    fn val(&self, node: &Node, input: Option<&Value>, scope: &Rc<Scope>) -> R<Option<Value>> {
        Ok(self.ev(node, input, scope)?.0)
    }

    fn ev_inner(&self, node: &Node, input: Option<&Value>, scope: &Rc<Scope>) -> R<Out> {
        match node {
            Node::Num(n) => plain(Some(num(*n)?)),
            Node::Str(s) => plain(Some(Value::String(s.clone()))),
            Node::Bool(b) => plain(Some(Value::Bool(*b))),
            Node::Null => plain(Some(Value::Null)),
            Node::Path { steps, keep_array } => self.path(steps, *keep_array, input, scope),
            Node::Name(n) => Ok(lookup(input, n)),
            Node::Wildcard => wildcard(input),
            Node::Descendants => {
                let mut res = Vec::new();
                if let Some(v) = input {
                    descendants(v, &mut res);
                }
                seq(res)
            }
            Node::Var(name) => self.var(name, input, scope),
            Node::Filter {
                expr,
                preds,
                keep_array,
            } => self.ev_filter(expr, preds, *keep_array, input, scope),
            Node::Neg(e) => self.neg(e, input, scope),
            Node::Bin(op, l, r) => self.binary(*op, l, r, input, scope),
            Node::Cond(c, a, b) => self.cond(c, a, b.as_deref(), input, scope),
            Node::Array(items) => self.array(items, input, scope),
            Node::Range(lo, hi) => {
                let mut res = Vec::new();
                self.range_into(lo, hi, input, scope, &mut res)?;
                Ok((Some(Value::Array(res)), Kind::Cons))
            }
            Node::Object(pairs) => self.group(pairs, input.cloned(), scope),
            Node::Group(lhs, pairs) => {
                let v = self.val(lhs, input, scope)?;
                self.group(pairs, v, scope)
            }
            Node::Sort(lhs, terms) => self.order_by(lhs, terms, input, scope),
            Node::Block(items) => self.block(items, input, scope),
            Node::Bind(name, rhs) => self.bind(name, rhs, input, scope),
            Node::Call(callee, args) => self.call(callee, None, args, input, scope),
            Node::Lambda(_) => plain(None),
            Node::Apply(lhs, rhs) => {
                let v = self.val(lhs, input, scope)?;
                match rhs.as_ref() {
                    Node::Call(callee, args) => self.call(callee, Some(v), args, input, scope),
                    other => self.call(other, Some(v), &[], input, scope),
                }
            }
        }
    }

    #[inline(never)]
    fn var(&self, name: &str, input: Option<&Value>, scope: &Rc<Scope>) -> R<Out> {
        if name.is_empty() {
            return plain(input.cloned());
        }
        if name == "$" {
            return plain(self.root.cloned());
        }
        match scope.lookup(name) {
            Some(Binding::Val(v)) => plain(v),
            Some(Binding::Func(_)) => plain(None),
            None => plain((self.env.vars)(name)),
        }
    }

    #[inline(never)]
    fn ev_filter(
        &self,
        expr: &Node,
        preds: &[Node],
        keep_array: bool,
        input: Option<&Value>,
        scope: &Rc<Scope>,
    ) -> R<Out> {
        let mut out = self.ev(expr, input, scope)?;
        for p in preds {
            out = self.filter(p, out, scope)?;
        }
        if keep_array {
            out = match out {
                (Some(Value::Array(a)), Kind::Seq) => (Some(Value::Array(a)), Kind::SeqKeep),
                (Some(Value::Array(a)), k) => (Some(Value::Array(a)), k),
                (Some(v), _) => (Some(Value::Array(vec![v])), Kind::SeqKeep),
                (None, k) => (None, k),
            };
        }
        Ok(out)
    }

    #[inline(never)]
    fn neg(&self, e: &Node, input: Option<&Value>, scope: &Rc<Scope>) -> R<Out> {
        match self.val(e, input, scope)? {
            None => plain(None),
            Some(Value::Number(n)) => plain(Some(num(-n.as_f64().unwrap_or(0.0))?)),
            Some(_) => fail("D1002", "Cannot negate a non-numeric value"),
        }
    }

    #[inline(never)]
    fn cond(
        &self,
        c: &Node,
        a: &Node,
        b: Option<&Node>,
        input: Option<&Value>,
        scope: &Rc<Scope>,
    ) -> R<Out> {
        if truthy(self.val(c, input, scope)?.as_ref()) {
            self.ev(a, input, scope)
        } else if let Some(b) = b {
            self.ev(b, input, scope)
        } else {
            plain(None)
        }
    }

    #[inline(never)]
    fn array(&self, items: &[Node], input: Option<&Value>, scope: &Rc<Scope>) -> R<Out> {
        let mut res = Vec::new();
        for item in items {
            match item {
                Node::Range(lo, hi) => self.range_into(lo, hi, input, scope, &mut res)?,
                Node::Array(_) => {
                    if let Some(v) = self.val(item, input, scope)? {
                        res.push(v);
                    }
                }
                _ => match self.val(item, input, scope)? {
                    Some(Value::Array(a)) => res.extend(a),
                    Some(v) => res.push(v),
                    None => {}
                },
            }
        }
        Ok((Some(Value::Array(res)), Kind::Cons))
    }

    #[inline(never)]
    fn block(&self, items: &[Node], input: Option<&Value>, scope: &Rc<Scope>) -> R<Out> {
        let sc = Scope::child(scope);
        let mut last = (None, Kind::Plain);
        let mut result = Ok(());
        for item in items {
            match self.ev(item, input, &sc) {
                Ok(o) => last = o,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        sc.clear();
        result.map(|()| last)
    }

    #[inline(never)]
    fn bind(&self, name: &str, rhs: &Node, input: Option<&Value>, scope: &Rc<Scope>) -> R<Out> {
        let b = match rhs {
            Node::Lambda(def) => Binding::Func(self.closure(def, input, scope)),
            Node::Var(v) if self.is_func_var(v, scope) => match self.arg(rhs, input, scope)? {
                Arg::F(f) => Binding::Func(f),
                Arg::V(v) => Binding::Val(v),
            },
            _ => Binding::Val(self.val(rhs, input, scope)?),
        };
        let out = match &b {
            Binding::Val(v) => v.clone(),
            Binding::Func(_) => None,
        };
        scope.set(name, b);
        plain(out)
    }

    /// `callee(args)`, or with `~>` the left side as the first argument.
    #[inline(never)]
    fn call(
        &self,
        callee: &Node,
        first: Option<Option<Value>>,
        args: &[Node],
        input: Option<&Value>,
        scope: &Rc<Scope>,
    ) -> R<Out> {
        let f = self.resolve(callee, input, scope)?;
        let mut argv = Vec::with_capacity(args.len() + 1);
        if let Some(v) = first {
            argv.push(Arg::V(v));
        }
        for a in args {
            argv.push(self.arg(a, input, scope)?);
        }
        self.apply(&f, argv, input)
    }

    fn is_func_var(&self, name: &str, scope: &Rc<Scope>) -> bool {
        match scope.lookup(name) {
            Some(Binding::Func(_)) => true,
            Some(Binding::Val(_)) => false,
            None => (self.env.vars)(name).is_none() && builtin(name).is_some(),
        }
    }

    fn closure(&self, def: &Rc<LambdaDef>, input: Option<&Value>, scope: &Rc<Scope>) -> Func {
        Func::Lambda(Rc::new(Closure {
            def: def.clone(),
            scope: scope.clone(),
            input: input.cloned(),
        }))
    }

    fn resolve(&self, callee: &Node, input: Option<&Value>, scope: &Rc<Scope>) -> R<Func> {
        match callee {
            Node::Var(name) => match scope.lookup(name) {
                Some(Binding::Func(f)) => Ok(f),
                Some(Binding::Val(_)) => fail(
                    "T1006",
                    format!("Attempted to invoke a non-function: ${name}"),
                ),
                None => builtin(name).map(Func::Builtin).ok_or_else(|| {
                    Error::new(
                        "T1006",
                        format!("Attempted to invoke a non-function: ${name}"),
                    )
                }),
            },
            Node::Lambda(def) => Ok(self.closure(def, input, scope)),
            Node::Block(items) if items.len() == 1 => self.resolve(&items[0], input, scope),
            Node::Path { steps, .. } => match steps.as_slice() {
                [Step {
                    node: Node::Name(n),
                    ..
                }] if builtin(n).is_some() => fail(
                    "T1005",
                    format!("Attempted to invoke a non-function. Did you mean ${n}?"),
                ),
                _ => fail("T1006", "Attempted to invoke a non-function"),
            },
            _ => fail("T1006", "Attempted to invoke a non-function"),
        }
    }

    fn arg(&self, node: &Node, input: Option<&Value>, scope: &Rc<Scope>) -> R<Arg> {
        match node {
            Node::Lambda(def) => Ok(Arg::F(self.closure(def, input, scope))),
            Node::Var(name) if !name.is_empty() && name != "$" => match scope.lookup(name) {
                Some(Binding::Func(f)) => Ok(Arg::F(f)),
                Some(Binding::Val(v)) => Ok(Arg::V(v)),
                None => match (self.env.vars)(name) {
                    Some(v) => Ok(Arg::V(Some(v))),
                    None => Ok(match builtin(name) {
                        Some(b) => Arg::F(Func::Builtin(b)),
                        None => Arg::V(None),
                    }),
                },
            },
            _ => Ok(Arg::V(self.val(node, input, scope)?)),
        }
    }

    fn apply(&self, f: &Func, args: Vec<Arg>, input: Option<&Value>) -> R<Out> {
        match f {
            Func::Lambda(c) => {
                self.enter()?;
                let sc = Scope::child(&c.scope);
                let mut args = args.into_iter();
                for p in &c.def.params {
                    let b = match args.next() {
                        Some(Arg::V(v)) => Binding::Val(v),
                        Some(Arg::F(f)) => Binding::Func(f),
                        None => Binding::Val(None),
                    };
                    sc.set(p, b);
                }
                let r = self.ev(&c.def.body, c.input.as_ref(), &sc);
                sc.clear();
                self.leave();
                r
            }
            Func::Builtin(name) => {
                self.enter()?;
                let r = self.builtin(name, args, input);
                self.leave();
                Ok(collapse(r?))
            }
        }
    }

    /// Calls a function argument of a higher-order function: a lambda gets all of `args`
    /// (it binds as many as it declares), a built-in the first `builtin_arity`.
    fn call_fn(&self, f: &Func, args: Vec<Value>, builtin_arity: usize) -> R<Option<Value>> {
        let mut argv: Vec<Arg> = args.into_iter().map(|v| Arg::V(Some(v))).collect();
        if matches!(f, Func::Builtin(_)) {
            argv.truncate(builtin_arity);
        }
        Ok(self.apply(f, argv, None)?.0)
    }

    #[inline(never)]
    fn path(&self, steps: &[Step], keep: bool, input: Option<&Value>, scope: &Rc<Scope>) -> R<Out> {
        let Some(first) = steps.first() else {
            return plain(None);
        };
        let n = steps.len();
        let mut cur = if matches!(first.node, Node::Array(_)) && first.stages.is_empty() {
            let out = self.ev(&first.node, input, scope)?;
            if n == 1 {
                return Ok(out);
            }
            (Some(Value::Array(to_seq(out.0))), Kind::Seq)
        } else {
            let initial: Vec<Option<&Value>> = match input {
                Some(Value::Array(a)) if !matches!(first.node, Node::Var(_)) => {
                    a.iter().map(Some).collect()
                }
                other => vec![other],
            };
            self.step(first, &initial, scope, n == 1)?
        };
        for (i, st) in steps.iter().enumerate().skip(1) {
            let items = to_seq(cur.0.take());
            if items.is_empty() {
                cur = (None, Kind::Plain);
                break;
            }
            let ctxs: Vec<Option<&Value>> = items.iter().map(Some).collect();
            cur = self.step(st, &ctxs, scope, i == n - 1)?;
        }
        if keep && cur.1 == Kind::Seq {
            cur.1 = Kind::SeqKeep;
        }
        Ok(cur)
    }

    #[inline(never)]
    fn step(&self, st: &Step, ctxs: &[Option<&Value>], scope: &Rc<Scope>, last: bool) -> R<Out> {
        let mut results: Vec<Out> = Vec::new();
        for ctx in ctxs {
            let mut out = self.ev(&st.node, *ctx, scope)?;
            for stage in &st.stages {
                out = self.filter(stage, out, scope)?;
            }
            if out.0.is_some() {
                results.push(out);
            }
        }
        if last
            && results.len() == 1
            && matches!(
                results[0],
                (Some(Value::Array(_)), Kind::Plain | Kind::Cons)
            )
        {
            if let Some(r) = results.pop() {
                return Ok(r);
            }
        }
        let mut out = Vec::new();
        for (v, k) in results {
            match v {
                Some(Value::Array(a)) if k != Kind::Cons => out.extend(a),
                Some(v) => out.push(v),
                None => {}
            }
        }
        seq(out)
    }

    #[inline(never)]
    fn filter(&self, pred: &Node, out: Out, scope: &Rc<Scope>) -> R<Out> {
        let mut items = to_seq(out.0);
        let len = items.len() as i64;
        let index_of = |f: f64| {
            let i = f.floor() as i64;
            if i < 0 {
                i.saturating_add(len)
            } else {
                i
            }
        };
        if let Node::Num(n) = pred {
            let i = index_of(*n);
            if i >= 0 && i < len {
                return match items.swap_remove(i as usize) {
                    a @ Value::Array(_) => Ok((Some(a), Kind::Plain)),
                    v => seq(vec![v]),
                };
            }
            return seq(Vec::new());
        }
        let mut res = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let r = self.val(pred, Some(item), scope)?;
            let keep = match &r {
                Some(Value::Number(n)) => index_of(n.as_f64().unwrap_or(f64::NAN)) == i as i64,
                Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_number) => a
                    .iter()
                    .any(|x| index_of(as_f64(x).unwrap_or(f64::NAN)) == i as i64),
                other => truthy(other.as_ref()),
            };
            if keep {
                res.push(item.clone());
            }
        }
        seq(res)
    }

    #[inline(never)]
    fn range_into(
        &self,
        lo: &Node,
        hi: &Node,
        input: Option<&Value>,
        scope: &Rc<Scope>,
        res: &mut Vec<Value>,
    ) -> R<()> {
        let l = self.val(lo, input, scope)?;
        let h = self.val(hi, input, scope)?;
        let l = match l {
            None => None,
            Some(v) => match as_f64(&v) {
                Some(f) if is_int(f) => Some(f),
                _ => {
                    return fail(
                        "T2003",
                        "The left side of the range operator (..) must evaluate to an integer",
                    )
                }
            },
        };
        let h = match h {
            None => None,
            Some(v) => match as_f64(&v) {
                Some(f) if is_int(f) => Some(f),
                _ => {
                    return fail(
                        "T2004",
                        "The right side of the range operator (..) must evaluate to an integer",
                    )
                }
            },
        };
        if let (Some(l), Some(h)) = (l, h) {
            if l > h {
                return Ok(());
            }
            if h - l + 1.0 > MAX_SEQUENCE {
                return fail(
                    "D2014",
                    format!(
                        "The size of the sequence allocated by the range operator (..) must not exceed 1e7.  Attempted to allocate {}.",
                        fmt_num(h - l + 1.0)
                    ),
                );
            }
            let (l, h) = (l as i64, h as i64);
            res.extend((l..=h).map(Value::from));
        }
        Ok(())
    }

    #[inline(never)]
    fn binary(
        &self,
        op: Op,
        l: &Node,
        r: &Node,
        input: Option<&Value>,
        scope: &Rc<Scope>,
    ) -> R<Out> {
        match op {
            Op::And => {
                let lb = truthy(self.val(l, input, scope)?.as_ref());
                let res = lb && truthy(self.val(r, input, scope)?.as_ref());
                return plain(Some(Value::Bool(res)));
            }
            Op::Or => {
                let lb = truthy(self.val(l, input, scope)?.as_ref());
                let res = lb || truthy(self.val(r, input, scope)?.as_ref());
                return plain(Some(Value::Bool(res)));
            }
            Op::Elvis => {
                let lv = self.val(l, input, scope)?;
                if truthy(lv.as_ref()) {
                    return plain(lv);
                }
                return self.ev(r, input, scope);
            }
            Op::Coalesce => {
                let lv = self.val(l, input, scope)?;
                if lv.is_some() {
                    return plain(lv);
                }
                return self.ev(r, input, scope);
            }
            _ => {}
        }
        let lv = self.val(l, input, scope)?;
        let rv = self.val(r, input, scope)?;
        combine(op, lv, rv)
    }

    #[inline(never)]
    fn group(&self, pairs: &[(Node, Node)], input: Option<Value>, scope: &Rc<Scope>) -> R<Out> {
        let mut items: Vec<Option<Value>> = match input {
            Some(Value::Array(a)) => a.into_iter().map(Some).collect(),
            other => vec![other],
        };
        if items.is_empty() {
            items.push(None);
        }
        let mut order: Vec<(String, usize, Option<Value>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for item in items {
            for (pi, (k, _)) in pairs.iter().enumerate() {
                let key = match self.val(k, item.as_ref(), scope)? {
                    None => continue,
                    Some(Value::String(s)) => s,
                    Some(other) => {
                        return fail(
                            "T1003",
                            format!(
                                "Key in object structure must evaluate to a string; got: {}",
                                stringify_json(&other)
                            ),
                        )
                    }
                };
                match index.get(&key) {
                    Some(&gi) => {
                        let g = &mut order[gi];
                        if g.1 != pi {
                            return fail(
                                "D1009",
                                format!("Multiple key definitions evaluate to same key: \"{key}\""),
                            );
                        }
                        g.2 = append(g.2.take(), item.clone());
                    }
                    None => {
                        index.insert(key.clone(), order.len());
                        order.push((key, pi, item.clone()));
                    }
                }
            }
        }
        let mut out = Map::new();
        for (key, pi, data) in order {
            if let Some(v) = self.val(&pairs[pi].1, data.as_ref(), scope)? {
                out.insert(key, v);
            }
        }
        plain(Some(Value::Object(out)))
    }

    #[inline(never)]
    fn order_by(
        &self,
        lhs: &Node,
        terms: &[(Node, bool)],
        input: Option<&Value>,
        scope: &Rc<Scope>,
    ) -> R<Out> {
        let items = to_seq(self.val(lhs, input, scope)?);
        let mut keyed = Vec::with_capacity(items.len());
        for item in items {
            let mut keys = Vec::with_capacity(terms.len());
            for (t, _) in terms {
                let k = self.val(t, Some(&item), scope)?;
                if !matches!(k, None | Some(Value::Number(_)) | Some(Value::String(_))) {
                    return fail(
                        "T2008",
                        "The expressions within an order-by clause must evaluate to numeric or string values",
                    );
                }
                keys.push(k);
            }
            keyed.push((keys, item));
        }
        let mut cmp =
            |a: &(Vec<Option<Value>>, Value), b: &(Vec<Option<Value>>, Value)| -> R<bool> {
                for (i, (_, desc)) in terms.iter().enumerate() {
                    let ord = match (&a.0[i], &b.0[i]) {
                        (None, None) => continue,
                        (None, Some(_)) => return Ok(true),
                        (Some(_), None) => return Ok(false),
                        (Some(Value::Number(x)), Some(Value::Number(y))) => x
                            .as_f64()
                            .unwrap_or(0.0)
                            .partial_cmp(&y.as_f64().unwrap_or(0.0))
                            .unwrap_or(std::cmp::Ordering::Equal),
                        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
                        _ => {
                            return fail(
                                "T2007",
                                "Type mismatch when comparing values in order-by clause",
                            )
                        }
                    };
                    let ord = if *desc { ord.reverse() } else { ord };
                    match ord {
                        std::cmp::Ordering::Equal => continue,
                        o => return Ok(o == std::cmp::Ordering::Greater),
                    }
                }
                Ok(false)
            };
        let sorted = merge_sort(keyed, &mut cmp)?;
        seq(sorted.into_iter().map(|(_, v)| v).collect())
    }

    #[inline(never)]
    fn builtin(&self, name: &'static str, mut args: Vec<Arg>, input: Option<&Value>) -> R<Out> {
        if let Some((min, max, str_first)) = context_sig(name) {
            let non_str_first = matches!(args.first(), Some(Arg::V(Some(v))) if !v.is_string());
            if args.len() < min || (args.len() < max && str_first && non_str_first) {
                args.insert(0, Arg::V(input.cloned()));
            }
        }
        let a = &args;
        match name {
            "string" => {
                let pretty = truthy(av(a, 1));
                plain(av(a, 0).map(|v| Value::String(stringify(v, pretty))))
            }
            "number" => match av(a, 0) {
                None => plain(None),
                Some(Value::Number(n)) => plain(Some(Value::Number(n.clone()))),
                Some(Value::Bool(b)) => plain(Some(Value::from(u8::from(*b)))),
                Some(Value::String(s)) => match parse_number(s) {
                    Some(f) => plain(Some(num(f)?)),
                    None => fail(
                        "D3030",
                        format!("Unable to cast value to a number: \"{s}\""),
                    ),
                },
                Some(v) => fail(
                    "D3030",
                    format!("Unable to cast value to a number: {}", stringify_json(v)),
                ),
            },
            "boolean" => plain(av(a, 0).map(|v| Value::Bool(truthy(Some(v))))),
            "not" => plain(av(a, 0).map(|v| Value::Bool(!truthy(Some(v))))),
            "exists" => plain(Some(Value::Bool(matches!(
                a.first(),
                Some(Arg::V(Some(_))) | Some(Arg::F(_))
            )))),
            "count" => plain(Some(Value::from(arg_arr(a, 0).map_or(0, |v| v.len())))),
            "sum" | "max" | "min" | "average" => {
                let Some(items) = arg_arr(a, 0) else {
                    return plain(None);
                };
                let ns = numbers(&items, name)?;
                let r = match name {
                    "sum" => Some(ns.iter().sum()),
                    "max" => ns.iter().copied().reduce(f64::max),
                    "min" => ns.iter().copied().reduce(f64::min),
                    _ => (!ns.is_empty()).then(|| ns.iter().sum::<f64>() / ns.len() as f64),
                };
                plain(r.map(num).transpose()?)
            }
            "length" => match av(a, 0) {
                None => plain(None),
                Some(Value::String(s)) => plain(Some(Value::from(s.chars().count()))),
                Some(_) => Err(sig_err(name, 0)),
            },
            "substring" => {
                let Some(s) = arg_str(a, 0, name)? else {
                    return plain(None);
                };
                let start = arg_num(a, 1, name)?.ok_or_else(|| sig_err(name, 1))?;
                let len = arg_num(a, 2, name)?;
                plain(Some(Value::String(substring(s, start, len))))
            }
            "substringBefore" | "substringAfter" => {
                let Some(s) = arg_str(a, 0, name)? else {
                    return plain(None);
                };
                let chars = arg_str(a, 1, name)?.ok_or_else(|| sig_err(name, 1))?;
                let r = match s.find(chars) {
                    None => s.to_string(),
                    Some(i) if name == "substringBefore" => s[..i].to_string(),
                    Some(i) => s[i + chars.len()..].to_string(),
                };
                plain(Some(Value::String(r)))
            }
            "uppercase" | "lowercase" | "trim" | "base64encode" | "base64decode" => {
                let Some(s) = arg_str(a, 0, name)? else {
                    return plain(None);
                };
                let r = match name {
                    "uppercase" => s.to_uppercase(),
                    "lowercase" => s.to_lowercase(),
                    "trim" => s.split_whitespace().collect::<Vec<_>>().join(" "),
                    "base64encode" => base64::engine::general_purpose::STANDARD.encode(s),
                    _ => {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(s.trim())
                            .map_err(|e| sfn_err(format!("Invalid base64 string: {e}")))?;
                        String::from_utf8_lossy(&bytes).into_owned()
                    }
                };
                plain(Some(Value::String(r)))
            }
            "pad" => {
                let Some(s) = arg_str(a, 0, name)? else {
                    return plain(None);
                };
                let width = arg_num(a, 1, name)?.ok_or_else(|| sig_err(name, 1))?;
                if width.abs() > MAX_STRING {
                    return fail("D3001", "The width of $pad is too large");
                }
                let fill = arg_str(a, 2, name)?
                    .filter(|f| !f.is_empty())
                    .unwrap_or(" ");
                let have = s.chars().count();
                let want = width.abs().trunc() as usize;
                if want <= have {
                    return plain(Some(Value::String(s.to_string())));
                }
                let padding: String = fill.chars().cycle().take(want - have).collect();
                let r = if width > 0.0 {
                    format!("{s}{padding}")
                } else {
                    format!("{padding}{s}")
                };
                plain(Some(Value::String(r)))
            }
            "contains" => {
                let Some(s) = arg_str(a, 0, name)? else {
                    return plain(None);
                };
                let p = arg_str(a, 1, name)?.ok_or_else(|| sig_err(name, 1))?;
                plain(Some(Value::Bool(s.contains(p))))
            }
            "split" => {
                let Some(s) = arg_str(a, 0, name)? else {
                    return plain(None);
                };
                let sep = arg_str(a, 1, name)?.ok_or_else(|| sig_err(name, 1))?;
                let limit =
                    match arg_num(a, 2, name)? {
                        Some(l) if l < 0.0 => return fail(
                            "D3020",
                            "Third argument of split function must evaluate to a positive number",
                        ),
                        Some(l) => l.floor() as usize,
                        None => usize::MAX,
                    };
                let parts: Vec<Value> = if sep.is_empty() {
                    s.chars()
                        .take(limit)
                        .map(|c| Value::String(c.to_string()))
                        .collect()
                } else {
                    s.split(sep)
                        .take(limit)
                        .map(|p| Value::String(p.to_string()))
                        .collect()
                };
                plain(Some(Value::Array(parts)))
            }
            "join" => {
                let Some(items) = arg_arr(a, 0) else {
                    return plain(None);
                };
                let sep = arg_str(a, 1, name)?.unwrap_or("");
                let mut parts = Vec::with_capacity(items.len());
                for v in &items {
                    match v {
                        Value::String(s) => parts.push(s.as_str()),
                        _ => return Err(sig_err(name, 0)),
                    }
                }
                plain(Some(Value::String(parts.join(sep))))
            }
            "replace" => {
                let Some(s) = arg_str(a, 0, name)? else {
                    return plain(None);
                };
                let pat = arg_str(a, 1, name)?.ok_or_else(|| sig_err(name, 1))?;
                if pat.is_empty() {
                    return fail(
                        "D3010",
                        "Second argument of replace function cannot be an empty string",
                    );
                }
                let rep = arg_str(a, 2, name)?.ok_or_else(|| sig_err(name, 2))?;
                let r = match arg_num(a, 3, name)? {
                    Some(l) if l < 0.0 => return fail(
                        "D3011",
                        "Fourth argument of replace function must evaluate to a positive number",
                    ),
                    Some(l) => s.replacen(pat, rep, l.floor() as usize),
                    None => s.replace(pat, rep),
                };
                plain(Some(Value::String(r)))
            }
            "keys" => {
                let mut keys: Vec<String> = Vec::new();
                let mut add = |m: &Map<String, Value>| {
                    for k in m.keys() {
                        if !keys.contains(k) {
                            keys.push(k.clone());
                        }
                    }
                };
                match av(a, 0) {
                    Some(Value::Object(m)) => add(m),
                    Some(Value::Array(items)) => items.iter().for_each(|v| {
                        if let Value::Object(m) = v {
                            add(m)
                        }
                    }),
                    _ => {}
                }
                seq(keys.into_iter().map(Value::String).collect())
            }
            "lookup" => {
                let key = arg_str(a, 1, name)?.ok_or_else(|| sig_err(name, 1))?;
                Ok(lookup(av(a, 0), key))
            }
            "merge" => {
                let Some(items) = arg_arr(a, 0) else {
                    return plain(None);
                };
                let mut out = Map::new();
                for v in items {
                    match v {
                        Value::Object(m) => out.extend(m),
                        _ => return Err(sig_err(name, 0)),
                    }
                }
                plain(Some(Value::Object(out)))
            }
            "append" => plain(append(av(a, 0).cloned(), av(a, 1).cloned())),
            "reverse" => plain(arg_arr(a, 0).map(|mut v| {
                v.reverse();
                Value::Array(v)
            })),
            "sort" => {
                let Some(items) = arg_arr(a, 0) else {
                    return plain(None);
                };
                if let Some(f) = afn(a, 1) {
                    let mut cmp = |x: &Value, y: &Value| -> R<bool> {
                        Ok(truthy(
                            self.call_fn(f, vec![x.clone(), y.clone()], 2)?.as_ref(),
                        ))
                    };
                    return plain(Some(Value::Array(merge_sort(items, &mut cmp)?)));
                }
                let all_num = items.iter().all(Value::is_number);
                let all_str = items.iter().all(Value::is_string);
                if !all_num && !all_str {
                    return fail("D3070", "The single argument form of the sort function can only be applied to an array of strings or an array of numbers.  Use the second argument to specify a comparison function");
                }
                let mut cmp = |x: &Value, y: &Value| -> R<bool> {
                    Ok(match (x, y) {
                        (Value::String(p), Value::String(q)) => p > q,
                        _ => as_f64(x) > as_f64(y),
                    })
                };
                plain(Some(Value::Array(merge_sort(items, &mut cmp)?)))
            }
            "distinct" => match av(a, 0) {
                Some(Value::Array(items)) => {
                    let mut out: Vec<Value> = Vec::new();
                    for v in items {
                        if !out.iter().any(|x| deep_eq(x, v)) {
                            out.push(v.clone());
                        }
                    }
                    seq(out)
                }
                other => plain(other.cloned()),
            },
            "shuffle" => {
                let Some(mut items) = arg_arr(a, 0) else {
                    return plain(None);
                };
                for i in (1..items.len()).rev() {
                    let j = (((self.env.random)() * (i + 1) as f64).floor() as usize).min(i);
                    items.swap(i, j);
                }
                plain(Some(Value::Array(items)))
            }
            "zip" => {
                let arrays: Vec<Vec<Value>> = (0..a.len())
                    .map(|i| arg_arr(a, i).unwrap_or_default())
                    .collect();
                let n = arrays.iter().map(Vec::len).min().unwrap_or(0);
                let out = (0..n)
                    .map(|i| Value::Array(arrays.iter().map(|arr| arr[i].clone()).collect()))
                    .collect();
                plain(Some(Value::Array(out)))
            }
            "each" | "sift" => {
                let Some(Value::Object(m)) = av(a, 0) else {
                    return plain(None);
                };
                let f = afn(a, 1).ok_or_else(|| sig_err(name, 1))?;
                let mut list = Vec::new();
                let mut obj = Map::new();
                for (k, v) in m {
                    let r = self.call_fn(
                        f,
                        vec![
                            v.clone(),
                            Value::String(k.clone()),
                            Value::Object(m.clone()),
                        ],
                        1,
                    )?;
                    if name == "each" {
                        list.extend(r);
                    } else if truthy(r.as_ref()) {
                        obj.insert(k.clone(), v.clone());
                    }
                }
                if name == "each" {
                    seq(list)
                } else {
                    plain((!obj.is_empty()).then_some(Value::Object(obj)))
                }
            }
            "spread" => {
                fn spread(v: &Value, out: &mut Vec<Value>) {
                    match v {
                        Value::Object(m) => {
                            for (k, x) in m {
                                let mut one = Map::new();
                                one.insert(k.clone(), x.clone());
                                out.push(Value::Object(one));
                            }
                        }
                        Value::Array(items) => items.iter().for_each(|x| spread(x, out)),
                        other => out.push(other.clone()),
                    }
                }
                let Some(v) = av(a, 0) else {
                    return plain(None);
                };
                let mut out = Vec::new();
                spread(v, &mut out);
                seq(out)
            }
            "map" | "filter" | "single" => {
                let Some(items) = arg_arr(a, 0) else {
                    return plain(None);
                };
                let f = afn(a, 1);
                if f.is_none() && name != "single" {
                    return Err(sig_err(name, 1));
                }
                let whole = Value::Array(items.clone());
                let mut out = Vec::new();
                for (i, v) in items.into_iter().enumerate() {
                    let r = match f {
                        Some(f) => {
                            self.call_fn(f, vec![v.clone(), Value::from(i), whole.clone()], 1)?
                        }
                        None => Some(Value::Bool(true)),
                    };
                    if name == "map" {
                        out.extend(r);
                    } else if truthy(r.as_ref()) {
                        out.push(v);
                    }
                }
                if name == "single" {
                    return match out.len() {
                        1 => plain(out.pop()),
                        0 => fail("D3139", "The $single() function expected exactly 1 matching result.  Instead it matched 0."),
                        _ => fail("D3138", "The $single() function expected exactly 1 matching result.  Instead it matched more."),
                    };
                }
                seq(out)
            }
            "reduce" => {
                let Some(items) = arg_arr(a, 0) else {
                    return plain(None);
                };
                let f = afn(a, 1).ok_or_else(|| sig_err(name, 1))?;
                if let Func::Lambda(c) = f {
                    if c.def.params.len() < 2 {
                        return fail("D3050", "The second argument of reduce function must be a function with at least two arguments");
                    }
                }
                let whole = Value::Array(items.clone());
                let mut it = items.into_iter().enumerate();
                let mut acc = match a.get(2) {
                    Some(Arg::V(Some(init))) => Some(init.clone()),
                    _ => it.next().map(|(_, v)| v),
                };
                for (i, v) in it {
                    let prev = acc.take().unwrap_or(Value::Null);
                    acc = self.call_fn(f, vec![prev, v, Value::from(i), whole.clone()], 2)?;
                }
                plain(acc)
            }
            "round" => {
                let Some(x) = arg_num(a, 0, name)? else {
                    return plain(None);
                };
                let p = arg_num(a, 1, name)?.unwrap_or(0.0);
                plain(Some(num(round_half_even(x, p as i64))?))
            }
            "floor" | "ceil" | "abs" | "sqrt" => {
                let Some(x) = arg_num(a, 0, name)? else {
                    return plain(None);
                };
                if name == "sqrt" && x < 0.0 {
                    return fail(
                        "D3060",
                        format!(
                            "The sqrt function cannot be applied to a negative number: {}",
                            fmt_num(x)
                        ),
                    );
                }
                let r = match name {
                    "floor" => x.floor(),
                    "ceil" => x.ceil(),
                    "abs" => x.abs(),
                    _ => x.sqrt(),
                };
                plain(Some(num(r)?))
            }
            "power" => {
                let Some(b) = arg_num(a, 0, name)? else {
                    return plain(None);
                };
                let e = arg_num(a, 1, name)?.ok_or_else(|| sig_err(name, 1))?;
                let r = b.powf(e);
                if !r.is_finite() {
                    return fail("D3061", format!("The power function has resulted in a value that cannot be represented as a JSON number: base={}, exponent={}", fmt_num(b), fmt_num(e)));
                }
                plain(Some(num(r)?))
            }
            "random" => {
                let r = match av(a, 0) {
                    None => (self.env.random)(),
                    Some(seed) => seeded_random(seed),
                };
                plain(Some(num(r.clamp(0.0, 1.0 - f64::EPSILON))?))
            }
            "uuid" => plain(Some(Value::String((self.env.uuid)()))),
            "now" => plain(Some(Value::String(iso_millis(self.env.now_ms as i128)?))),
            "millis" => plain(Some(Value::from(self.env.now_ms))),
            "fromMillis" => {
                let Some(ms) = arg_num(a, 0, name)? else {
                    return plain(None);
                };
                plain(Some(Value::String(iso_millis(ms.floor() as i128)?)))
            }
            "toMillis" => {
                let Some(s) = arg_str(a, 0, name)? else {
                    return plain(None);
                };
                match parse_iso(s) {
                    Some(ms) => plain(Some(Value::from(ms))),
                    None => fail(
                        "D3110",
                        format!("The timestamp \"{s}\" is not in ISO 8601 format"),
                    ),
                }
            }
            "type" => plain(match a.first() {
                Some(Arg::F(_)) => Some(Value::String("function".into())),
                _ => av(a, 0).map(|v| Value::String(type_name(v).into())),
            }),
            "formatNumber" => {
                let Some(x) = arg_num(a, 0, name)? else {
                    return plain(None);
                };
                let pic = arg_str(a, 1, name)?.ok_or_else(|| sig_err(name, 1))?;
                plain(Some(Value::String(format_number(x, pic))))
            }
            "partition" => {
                let Some(items) = arg_arr(a, 0) else {
                    return plain(None);
                };
                let size = match av(a, 1).and_then(as_f64) {
                    Some(s) if is_int(s) && s >= 1.0 => s as usize,
                    _ => {
                        return Err(sfn_err(
                            "The second argument of $partition must be a positive integer",
                        ))
                    }
                };
                let out = items
                    .chunks(size)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect();
                plain(Some(Value::Array(out)))
            }
            "range" => {
                let get = |i: usize| av(a, i).and_then(as_f64).filter(|f| is_int(*f));
                let (Some(start), Some(end), Some(step)) = (get(0), get(1), get(2)) else {
                    return Err(sfn_err("The arguments of $range must be integers"));
                };
                if step == 0.0 {
                    return Err(sfn_err("The step of $range must not be 0"));
                }
                let count = ((end - start) / step).floor() + 1.0;
                if count > MAX_SEQUENCE {
                    return Err(sfn_err("$range would make more than 1e7 values"));
                }
                let out = (0..count.max(0.0) as i64)
                    .map(|k| num(start + k as f64 * step))
                    .collect::<R<Vec<_>>>()?;
                plain(Some(Value::Array(out)))
            }
            "hash" => {
                let Some(data) = av(a, 0) else {
                    return plain(None);
                };
                let Value::String(data) = data else {
                    return Err(sfn_err("The first argument of $hash must be a string"));
                };
                let alg = arg_str(a, 1, name)?.unwrap_or("SHA-256");
                let bytes = data.as_bytes();
                let digest: Vec<u8> = match alg {
                    "MD5" => md5::Md5::digest(bytes).to_vec(),
                    "SHA-1" => sha1_smol::Sha1::from(bytes).digest().bytes().to_vec(),
                    "SHA-256" => sha2::Sha256::digest(bytes).to_vec(),
                    "SHA-384" => sha2::Sha384::digest(bytes).to_vec(),
                    "SHA-512" => sha2::Sha512::digest(bytes).to_vec(),
                    other => return Err(sfn_err(format!("$hash does not support the algorithm '{other}'; use MD5, SHA-1, SHA-256, SHA-384 or SHA-512"))),
                };
                plain(Some(Value::String(
                    digest.iter().map(|b| format!("{b:02x}")).collect(),
                )))
            }
            "parse" => {
                let Some(s) = arg_str(a, 0, name)? else {
                    return plain(None);
                };
                serde_json::from_str(s)
                    .map(|v| (Some(v), Kind::Plain))
                    .map_err(|e| sfn_err(format!("$parse: invalid JSON: {e}")))
            }
            "error" => fail(
                "D3137",
                arg_str(a, 0, name)?
                    .unwrap_or("$error() function evaluated")
                    .to_string(),
            ),
            "assert" => {
                let ok = match av(a, 0) {
                    Some(Value::Bool(b)) => *b,
                    _ => return Err(sig_err(name, 0)),
                };
                if ok {
                    plain(None)
                } else {
                    fail(
                        "D3141",
                        arg_str(a, 1, name)?
                            .unwrap_or("$assert() statement failed")
                            .to_string(),
                    )
                }
            }
            _ => fail(
                "T1006",
                format!("Attempted to invoke a non-function: ${name}"),
            ),
        }
    }
}

#[inline(never)]
fn combine(op: Op, lv: Option<Value>, rv: Option<Value>) -> R<Out> {
    let sym = op.symbol();
    match op {
        Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod => {
            let ln = match &lv {
                None => None,
                Some(v) => Some(as_f64(v).ok_or_else(|| {
                    Error::new(
                        "T2001",
                        format!(
                            "The left side of the \"{sym}\" operator must evaluate to a number"
                        ),
                    )
                })?),
            };
            let rn = match &rv {
                None => None,
                Some(v) => Some(as_f64(v).ok_or_else(|| {
                    Error::new(
                        "T2002",
                        format!(
                            "The right side of the \"{sym}\" operator must evaluate to a number"
                        ),
                    )
                })?),
            };
            let (Some(a), Some(b)) = (ln, rn) else {
                return plain(None);
            };
            let res = match op {
                Op::Add => a + b,
                Op::Sub => a - b,
                Op::Mul => a * b,
                Op::Div => a / b,
                _ => a % b,
            };
            plain(Some(num(res)?))
        }
        Op::Eq | Op::Ne => {
            let (Some(a), Some(b)) = (&lv, &rv) else {
                return plain(Some(Value::Bool(false)));
            };
            let eq = deep_eq(a, b);
            plain(Some(Value::Bool(if op == Op::Eq { eq } else { !eq })))
        }
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let comparable = |v: &Option<Value>| {
                matches!(v, None | Some(Value::Number(_)) | Some(Value::String(_)))
            };
            if !comparable(&lv) || !comparable(&rv) {
                return fail(
                    "T2010",
                    format!("The expressions either side of operator \"{sym}\" must evaluate to numeric or string values"),
                );
            }
            let (Some(a), Some(b)) = (&lv, &rv) else {
                return plain(Some(Value::Bool(false)));
            };
            let ord = match (a, b) {
                (Value::Number(x), Value::Number(y)) => x
                    .as_f64()
                    .unwrap_or(0.0)
                    .partial_cmp(&y.as_f64().unwrap_or(0.0)),
                (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
                _ => {
                    return fail(
                        "T2009",
                        format!(
                            "The values {} and {} either side of operator \"{sym}\" must be of the same data type",
                            stringify_json(a),
                            stringify_json(b)
                        ),
                    )
                }
            };
            let Some(ord) = ord else {
                return plain(Some(Value::Bool(false)));
            };
            use std::cmp::Ordering::*;
            let res = match op {
                Op::Lt => ord == Less,
                Op::Le => ord != Greater,
                Op::Gt => ord == Greater,
                _ => ord != Less,
            };
            plain(Some(Value::Bool(res)))
        }
        Op::Concat => {
            let a = lv.map(|v| stringify(&v, false)).unwrap_or_default();
            let b = rv.map(|v| stringify(&v, false)).unwrap_or_default();
            plain(Some(Value::String(a + &b)))
        }
        Op::In => {
            let Some(a) = lv else {
                return plain(Some(Value::Bool(false)));
            };
            let found = to_seq(rv).iter().any(|x| deep_eq(&a, x));
            plain(Some(Value::Bool(found)))
        }
        _ => plain(None),
    }
}

fn stringify_json(v: &Value) -> String {
    serde_json::to_string(&round_numbers(v)).unwrap_or_default()
}

/// A stable merge sort with a fallible "a goes after b" comparator, as JSONata's `$sort`.
fn merge_sort<T>(mut items: Vec<T>, after: &mut dyn FnMut(&T, &T) -> R<bool>) -> R<Vec<T>> {
    if items.len() <= 1 {
        return Ok(items);
    }
    let right = items.split_off(items.len() / 2);
    let left = merge_sort(items, after)?;
    let right = merge_sort(right, after)?;
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut l = left.into_iter().peekable();
    let mut r = right.into_iter().peekable();
    loop {
        let take_right = match (l.peek(), r.peek()) {
            (Some(x), Some(y)) => after(x, y)?,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (None, None) => break,
        };
        let next = if take_right { r.next() } else { l.next() };
        out.extend(next);
    }
    Ok(out)
}

fn substring(s: &str, start: f64, len: Option<f64>) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as i64;
    let mut start = if start.is_nan() {
        0
    } else {
        start.trunc() as i64
    };
    if n.saturating_add(start) < 0 {
        start = 0;
    }
    let from = if start < 0 { n + start } else { start.min(n) };
    let to = match len {
        None => n,
        Some(l) => {
            if l.is_nan() || l <= 0.0 {
                return String::new();
            }
            let l = l.trunc().min(n as f64) as i64;
            from.saturating_add(l).min(n)
        }
    };
    if from >= to {
        return String::new();
    }
    chars[from as usize..to as usize].iter().collect()
}

fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let radix = |p: &str, r: u32| {
        body.strip_prefix(p)
            .or_else(|| body.strip_prefix(&p.to_uppercase()))
            .and_then(|d| u64::from_str_radix(d, r).ok())
    };
    if let Some(v) = radix("0x", 16)
        .or_else(|| radix("0b", 2))
        .or_else(|| radix("0o", 8))
    {
        let f = v as f64;
        return Some(if neg { -f } else { f });
    }
    let ok = !t.is_empty()
        && t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        && t.chars().any(|c| c.is_ascii_digit());
    if !ok {
        return None;
    }
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn round_half_even(x: f64, precision: i64) -> f64 {
    let p = precision.clamp(-300, 300);
    let shifted: f64 = format!("{x}e{p}").parse().unwrap_or(f64::NAN);
    if !shifted.is_finite() {
        return x;
    }
    let mut r = (shifted + 0.5).floor();
    let diff = r - shifted;
    if diff.abs() == 0.5 && (r % 2.0).abs() == 1.0 {
        r -= 1.0;
    }
    let back: f64 = format!("{r}e{}", -p).parse().unwrap_or(f64::NAN);
    if back.is_finite() {
        back
    } else {
        x
    }
}

fn seeded_random(seed: &Value) -> f64 {
    let text = stringify_json(seed);
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        x ^= u64::from(b);
        x = x.wrapping_mul(0x0100_0000_01b3);
    }
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn iso_millis(ms: i128) -> R<String> {
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(ms.saturating_mul(1_000_000))
        .map_err(|_| Error::new("D3110", format!("The timestamp {ms} is out of range")))?;
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        dt.month() as u8,
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    ))
}

fn parse_iso(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let ms = |dt: time::OffsetDateTime| i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok();
    if let Ok(dt) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return ms(dt);
    }
    if s.len() > 10 && !s.ends_with('Z') {
        if let Ok(dt) = time::OffsetDateTime::parse(&format!("{s}Z"), &Rfc3339) {
            return ms(dt);
        }
    }
    let parts: Vec<&str> = s.split('-').collect();
    if let [y, m, d] = parts.as_slice() {
        let y: i32 = y.parse().ok()?;
        let m: u8 = m.parse().ok()?;
        let d: u8 = d.parse().ok()?;
        let month = time::Month::try_from(m).ok()?;
        let date = time::Date::from_calendar_date(y, month, d).ok()?;
        return ms(date.midnight().assume_utc());
    }
    None
}

/// `$formatNumber` for the common pictures: `#,##0.00`, `0.0`, `000`, `#%`, with literal
/// prefixes and suffixes.
fn format_number(x: f64, picture: &str) -> String {
    let chars: Vec<char> = picture.chars().collect();
    let active = |c: char| c.is_ascii_digit() || c == '#' || c == ',' || c == '.';
    let first = chars.iter().position(|c| active(*c)).unwrap_or(chars.len());
    let last = chars
        .iter()
        .rposition(|c| active(*c))
        .map_or(first, |l| l + 1);
    let prefix: String = chars[..first].iter().collect();
    let suffix: String = chars[last.max(first)..].iter().collect();
    let body: String = chars[first..last.max(first)].iter().collect();
    let mut x = x;
    if prefix.contains('%') || suffix.contains('%') {
        x *= 100.0;
    } else if prefix.contains('‰') || suffix.contains('‰') {
        x *= 1000.0;
    }
    let (int_pic, frac_pic) = body.split_once('.').unwrap_or((&body, ""));
    let min_int = int_pic.chars().filter(char::is_ascii_digit).count();
    let group = int_pic
        .rfind(',')
        .map(|i| int_pic[i + 1..].chars().filter(|c| *c != ',').count())
        .filter(|g| *g > 0);
    let min_frac = frac_pic.chars().filter(char::is_ascii_digit).count();
    let max_frac = frac_pic
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '#')
        .count();
    let rounded = round_half_even(x.abs(), max_frac as i64);
    let text = format!("{rounded:.max_frac$}");
    let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
    let mut frac = frac_part.to_string();
    while frac.len() > min_frac && frac.ends_with('0') {
        frac.pop();
    }
    let mut int = int_part.trim_start_matches('0').to_string();
    while int.len() < min_int {
        int.insert(0, '0');
    }
    if let Some(g) = group {
        let digits: Vec<char> = int.chars().collect();
        let mut grouped = String::new();
        for (i, c) in digits.iter().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(g) {
                grouped.push(',');
            }
            grouped.push(*c);
        }
        int = grouped;
    }
    if int.is_empty() && frac.is_empty() {
        int.push('0');
    }
    let sign = if x < 0.0 && (rounded != 0.0) { "-" } else { "" };
    let dot = if frac.is_empty() { "" } else { "." };
    format!("{sign}{prefix}{int}{dot}{frac}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_env<T>(vars: Value, f: impl FnOnce(&Env) -> T) -> T {
        let lookup = move |name: &str| vars.get(name).cloned();
        let random = || 0.25;
        let uuid = || "3f2504e0-4f89-41d3-9a0c-0305e82c3301".to_string();
        let env = Env {
            vars: &lookup,
            now_ms: 1_700_000_000_123,
            random: &random,
            uuid: &uuid,
        };
        f(&env)
    }

    fn run(expr: &str, input: Option<&Value>, vars: Value) -> Result<Option<Value>, Error> {
        let e = Expr::parse_detailed(expr)?;
        with_env(vars, |env| eval_with_input(&e, input, env))
    }

    fn address() -> Value {
        json!({
          "FirstName": "Fred",
          "Surname": "Smith",
          "Age": 28,
          "Address": {"Street": "Hursley Park", "City": "Winchester", "Postcode": "SO21 2JN"},
          "Phone": [
            {"type": "home", "number": "0203 544 1234"},
            {"type": "office", "number": "01962 001234"},
            {"type": "office", "number": "01962 001235"},
            {"type": "mobile", "number": "077 7700 1234"}
          ],
          "Email": [
            {"type": "work", "address": ["fred.smith@my-work.com", "fsmith@my-work.com"]},
            {"type": "home", "address": ["freddy@my-social.com", "frederic.smith@very-serious.com"]}
          ],
          "Other": {"Over 18 ?": true, "Misc": null, "Alternative.Address": {"Street": "Brick Lane", "City": "London", "Postcode": "E1 6RF"}}
        })
    }

    fn orders() -> Value {
        json!({"Account": {
        "Account Name": "Firefly",
        "Order": [
          {"OrderID": "order103", "Product": [
            {"Product Name": "Bowler Hat", "ProductID": 858383, "SKU": "0406654608", "Price": 34.45, "Quantity": 2},
            {"Product Name": "Trilby hat", "ProductID": 858236, "SKU": "0406634348", "Price": 21.67, "Quantity": 1}]},
          {"OrderID": "order104", "Product": [
            {"Product Name": "Bowler Hat", "ProductID": 858383, "SKU": "040657863", "Price": 34.45, "Quantity": 4},
            {"ProductID": 345664, "SKU": "0406654603", "Product Name": "Cloak", "Price": 107.99, "Quantity": 1}]}
        ]}})
    }

    /// (expression, expected JSON text or "undefined") against the address document.
    const ADDRESS_CASES: &[(&str, &str)] = &[
        ("Surname", r#""Smith""#),
        ("Age", "28"),
        ("Address.City", r#""Winchester""#),
        ("Other.Misc", "null"),
        ("Other.Nothing", "undefined"),
        ("Other.`Over 18 ?`", "true"),
        ("Phone[0]", r#"{"type": "home", "number": "0203 544 1234"}"#),
        (
            "Phone[1]",
            r#"{"type": "office", "number": "01962 001234"}"#,
        ),
        (
            "Phone[-1]",
            r#"{"type": "mobile", "number": "077 7700 1234"}"#,
        ),
        (
            "Phone[-2]",
            r#"{"type": "office", "number": "01962 001235"}"#,
        ),
        ("Phone[8]", "undefined"),
        ("Phone[0].number", r#""0203 544 1234""#),
        (
            "Phone.number",
            r#"["0203 544 1234", "01962 001234", "01962 001235", "077 7700 1234"]"#,
        ),
        (
            "Phone.number[0]",
            r#"["0203 544 1234", "01962 001234", "01962 001235", "077 7700 1234"]"#,
        ),
        ("(Phone.number)[0]", r#""0203 544 1234""#),
        (
            "Phone[type='mobile']",
            r#"{"type": "mobile", "number": "077 7700 1234"}"#,
        ),
        ("Phone[type='mobile'].number", r#""077 7700 1234""#),
        (
            "Phone[type='office'].number",
            r#"["01962 001234", "01962 001235"]"#,
        ),
        ("Phone[type='office'][1].number", r#""01962 001235""#),
        // Objects keep their keys sorted (serde_json without preserve_order).
        ("Address.*", r#"["Winchester", "SO21 2JN", "Hursley Park"]"#),
        ("*.Postcode", r#""SO21 2JN""#),
        ("**.Postcode", r#"["SO21 2JN", "E1 6RF"]"#),
        (
            "Email.address",
            r#"["fred.smith@my-work.com", "fsmith@my-work.com", "freddy@my-social.com", "frederic.smith@very-serious.com"]"#,
        ),
        (
            "Email[type='home'].address[1]",
            r#""frederic.smith@very-serious.com""#,
        ),
        ("FirstName & ' ' & Surname", r#""Fred Smith""#),
        (
            "Address.(Street & ', ' & City)",
            r#""Hursley Park, Winchester""#,
        ),
        ("Age > 18 ? 'adult' : 'minor'", r#""adult""#),
        ("Age < 18 ? 'minor'", "undefined"),
        ("Age = 28 and Surname = 'Smith'", "true"),
        ("Age = 27 or Surname = 'Jones'", "false"),
        ("'home' in Phone.type", "true"),
        (
            "Phone[type in ['home', 'mobile']].type",
            r#"["home", "mobile"]"#,
        ),
        ("$count(Phone)", "4"),
        ("$count(Phone[type='office'])", "2"),
        ("$count(Nothing)", "0"),
        (
            "Phone.{type: number}",
            r#"[{"home": "0203 544 1234"}, {"office": "01962 001234"}, {"office": "01962 001235"}, {"mobile": "077 7700 1234"}]"#,
        ),
        (
            "Phone{type: number}",
            r#"{"home": "0203 544 1234", "office": ["01962 001234", "01962 001235"], "mobile": "077 7700 1234"}"#,
        ),
        (
            "Phone{type: $count(number)}",
            r#"{"home": 1, "office": 2, "mobile": 1}"#,
        ),
        (
            "{'name': FirstName, 'missing': Nope}",
            r#"{"name": "Fred"}"#,
        ),
        (
            "[Address, Other.`Alternative.Address`].City",
            r#"["Winchester", "London"]"#,
        ),
        (
            "Phone.[type]",
            r#"[["home"], ["office"], ["office"], ["mobile"]]"#,
        ),
        ("$.Age", "28"),
        ("$$.Address.City", r#""Winchester""#),
        (
            "Phone[0][]",
            r#"[{"type": "home", "number": "0203 544 1234"}]"#,
        ),
        ("Address.City[]", r#"["Winchester"]"#),
        ("$keys(Address)", r#"["City", "Postcode", "Street"]"#),
        ("$lookup(Address, 'City')", r#""Winchester""#),
        ("$string(Address.Postcode)", r#""SO21 2JN""#),
        (
            "Phone^(>number).type",
            r#"["mobile", "home", "office", "office"]"#,
        ),
        (
            "Phone.$uppercase(type)",
            r#"["HOME", "OFFICE", "OFFICE", "MOBILE"]"#,
        ),
        (
            "Phone.type.$substring(0, 3)",
            r#"["hom", "off", "off", "mob"]"#,
        ),
        ("Surname ~> $uppercase()", r#""SMITH""#),
        ("Surname ~> $substring(1, 2)", r#""mi""#),
        ("$exists(Other.Misc)", "true"),
        ("$exists(Other.Nope)", "false"),
        ("$type(Phone)", r#""array""#),
        ("$type(Nope)", "undefined"),
    ];

    const ORDER_CASES: &[(&str, &str)] = &[
        ("Account.Order[0].OrderID", r#""order103""#),
        (
            "Account.Order.Product.Price",
            "[34.45, 21.67, 34.45, 107.99]",
        ),
        ("$sum(Account.Order.Product.(Price * Quantity))", "336.36"),
        (
            "Account.Order.$sum(Product.(Price * Quantity))",
            "[90.57, 245.79]",
        ),
        (
            "Account.Order[0].Product[0].`Product Name`",
            r#""Bowler Hat""#,
        ),
        (
            "Account.Order.Product[0].`Product Name`",
            r#"["Bowler Hat", "Bowler Hat"]"#,
        ),
        ("$max(Account.Order.Product.Price)", "107.99"),
        ("$min(Account.Order.Product.Price)", "21.67"),
        ("$count(Account.Order.Product)", "4"),
        (
            "$distinct(Account.Order.Product.`Product Name`)",
            r#"["Bowler Hat", "Trilby hat", "Cloak"]"#,
        ),
        (
            "Account.Order.Product{`Product Name`: $sum(Quantity)}",
            r#"{"Bowler Hat": 6, "Trilby hat": 1, "Cloak": 1}"#,
        ),
        (
            "Account.Order.Product[Price > 30].SKU",
            r#"["0406654608", "040657863", "0406654603"]"#,
        ),
        (
            "Account.Order.Product^(Price).ProductID",
            "[858236, 858383, 858383, 345664]",
        ),
        (
            "Account.Order.Product^(>Price, Quantity).Quantity",
            "[1, 2, 4, 1]",
        ),
        (
            "$map(Account.Order, function($o){ $o.OrderID })",
            r#"["order103", "order104"]"#,
        ),
        (
            "$filter(Account.Order.Product, function($p){ $p.Quantity > 1 }).SKU",
            r#"["0406654608", "040657863"]"#,
        ),
        (
            "$reduce(Account.Order.Product.Quantity, function($a, $b){ $a + $b })",
            "8",
        ),
        ("$reduce([1,2,3], function($a, $b){ $a + $b }, 10)", "16"),
        (
            "Account.Order.{'id': OrderID, 'n': $count(Product)}",
            r#"[{"id": "order103", "n": 2}, {"id": "order104", "n": 2}]"#,
        ),
        ("**.OrderID", r#"["order103", "order104"]"#),
    ];

    /// Self-contained expressions (no context).
    const PURE_CASES: &[(&str, &str)] = &[
        ("1", "1"),
        ("2 + 3", "5"),
        ("2.5 * 2", "5"),
        ("7 / 2", "3.5"),
        ("7 % 3", "1"),
        ("-7 % 3", "-1"),
        ("-(2 + 3)", "-5"),
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("0.1 + 0.2", "0.30000000000000004"),
        ("'a' & 1 & true & null", r#""a1truenull""#),
        ("\"it's\" & 'say \"hi\"'", r#""it'ssay \"hi\"""#),
        ("'\\u00e9\\n'", r#""é\n""#),
        ("1 = 1.0", "true"),
        ("'a' < 'b'", "true"),
        ("2 >= 3", "false"),
        ("[1,2] = [1,2]", "true"),
        ("{'a': 1} != {'a': 1}", "false"),
        ("nothing = 1", "false"),
        ("nothing + 1", "undefined"),
        ("[1..5]", "[1, 2, 3, 4, 5]"),
        ("[1..3, 7, [8]]", "[1, 2, 3, 7, [8]]"),
        ("[5..1]", "[]"),
        ("[1..5][$ > 2]", "[3, 4, 5]"),
        ("[1..5][[0, -1]]", "[1, 5]"),
        ("[]", "[]"),
        ("[[1]]", "[[1]]"),
        ("[1,2,3][1]", "2"),
        ("{}", "{}"),
        ("{'a': [1]}", r#"{"a": [1]}"#),
        ("($x := 5; $y := $x * 2; $x + $y)", "15"),
        ("($x := 1; ($x := 2); $x)", "1"),
        ("()", "undefined"),
        ("true ? 1 : 2", "1"),
        ("null ?: 'dflt'", r#""dflt""#),
        ("nothing ?? 'dflt'", r#""dflt""#),
        ("0 ?? 'dflt'", "0"),
        ("/* comment */ 42", "42"),
        ("$string(5)", r#""5""#),
        ("$string(0.1 + 0.2)", r#""0.3""#),
        ("$string(1e21)", r#""1e+21""#),
        (
            "$string({'a': [1, 'x', true]})",
            r#""{\"a\":[1,\"x\",true]}""#,
        ),
        ("$string('x')", r#""x""#),
        ("$number('42')", "42"),
        ("$number('-1.5e2')", "-150"),
        ("$number('0x1F')", "31"),
        ("$number(true)", "1"),
        ("$boolean('')", "false"),
        ("$boolean([0, 1])", "true"),
        ("$boolean({})", "false"),
        ("$not(0)", "true"),
        ("$sum([1, 2, 3])", "6"),
        ("$sum([])", "0"),
        ("$sum(5)", "5"),
        ("$max([])", "undefined"),
        ("$average([1, 2, 3, 4])", "2.5"),
        ("$length('héllo')", "5"),
        ("$substring('Hello World', 3)", r#""lo World""#),
        ("$substring('Hello World', 3, 5)", r#""lo Wo""#),
        ("$substring('Hello World', -4)", r#""orld""#),
        ("$substring('Hello World', -4, 1)", r#""o""#),
        ("$substringBefore('Hello World', ' ')", r#""Hello""#),
        ("$substringAfter('Hello World', ' ')", r#""World""#),
        ("$substringAfter('Hello', 'x')", r#""Hello""#),
        ("$uppercase('Hello')", r#""HELLO""#),
        ("$lowercase('Hello')", r#""hello""#),
        ("$trim('  Hello \n  World  ')", r#""Hello World""#),
        ("$pad('foo', 5)", r#""foo  ""#),
        ("$pad('foo', -5, '#')", r###""##foo""###),
        ("$contains('abracadabra', 'bra')", "true"),
        ("$split('so many words', ' ')", r#"["so", "many", "words"]"#),
        ("$split('so many words', ' ', 2)", r#"["so", "many"]"#),
        ("$split('abc', '')", r#"["a", "b", "c"]"#),
        ("$join(['a', 'b', 'c'])", r#""abc""#),
        ("$join(['a', 'b', 'c'], ', ')", r#""a, b, c""#),
        (
            "$replace('John Smith and John Jones', 'John', 'Mr')",
            r#""Mr Smith and Mr Jones""#,
        ),
        (
            "$replace('John Smith and John Jones', 'John', 'Mr', 1)",
            r#""Mr Smith and John Jones""#,
        ),
        (
            "$merge([{'a': 1}, {'b': 2}, {'a': 3}])",
            r#"{"a": 3, "b": 2}"#,
        ),
        ("$append([1, 2], [3])", "[1, 2, 3]"),
        ("$append(1, 2)", "[1, 2]"),
        ("$append([1], nothing)", "[1]"),
        ("$reverse([1, 2, 3])", "[3, 2, 1]"),
        ("$sort([3, 1, 2])", "[1, 2, 3]"),
        ("$sort(['b', 'c', 'a'])", r#"["a", "b", "c"]"#),
        ("$sort([3, 1, 2], function($a, $b){ $a < $b })", "[3, 2, 1]"),
        (
            "$distinct([1, 2, 2, 'a', 'a', [1], [1]])",
            r#"[1, 2, "a", [1]]"#,
        ),
        ("$zip([1, 2, 3], [4, 5, 6])", "[[1, 4], [2, 5], [3, 6]]"),
        ("$zip([1, 2, 3], [4, 5])", "[[1, 4], [2, 5]]"),
        (
            "$each({'a': 1, 'b': 2}, function($v, $k){ $k & '=' & $v })",
            r#"["a=1", "b=2"]"#,
        ),
        ("$spread({'a': 1, 'b': 2})", r#"[{"a": 1}, {"b": 2}]"#),
        (
            "$sift({'a': 1, 'b': 2}, function($v){ $v > 1 })",
            r#"{"b": 2}"#,
        ),
        ("$map([1, 2, 3], function($v, $i){ $v * $i })", "[0, 2, 6]"),
        ("$map([1, 2, 3], $string)", r#"["1", "2", "3"]"#),
        ("$map([1], function($v){ $v })", "1"),
        (
            "$filter([1, 2, 3, 4], function($v){ $v % 2 = 0 })",
            "[2, 4]",
        ),
        ("$round(123.456)", "123"),
        ("$round(123.456, 2)", "123.46"),
        ("$round(123.456, -1)", "120"),
        ("$round(11.5)", "12"),
        ("$round(12.5)", "12"),
        ("$round(-12.5)", "-12"),
        ("$round(2.675, 2)", "2.68"),
        ("$floor(-1.5)", "-2"),
        ("$ceil(1.2)", "2"),
        ("$abs(-5)", "5"),
        ("$power(2, 10)", "1024"),
        ("$sqrt(16)", "4"),
        ("$now()", r#""2023-11-14T22:13:20.123Z""#),
        ("$millis()", "1700000000123"),
        (
            "$fromMillis(1510067557121)",
            r#""2017-11-07T15:12:37.121Z""#,
        ),
        ("$toMillis('2017-11-07T15:12:37.121Z')", "1510067557121"),
        ("$toMillis('2017-11-07')", "1510012800000"),
        ("$type(1)", r#""number""#),
        ("$type('x')", r#""string""#),
        ("$type(null)", r#""null""#),
        ("$type({})", r#""object""#),
        ("$formatNumber(12345.6, '#,###.00')", r#""12,345.60""#),
        ("$formatNumber(1234.5678, '00.000')", r#""1234.568""#),
        ("$formatNumber(0.14, '01%')", r#""14%""#),
        ("$formatNumber(-6, '000')", r#""-006""#),
        (
            "$base64encode('myuser:mypass')",
            r#""bXl1c2VyOm15cGFzcw==""#,
        ),
        (
            "$base64decode('bXl1c2VyOm15cGFzcw==')",
            r#""myuser:mypass""#,
        ),
        ("$partition([1, 2, 3, 4], 2)", "[[1, 2], [3, 4]]"),
        ("$partition([1, 2, 3, 4, 5], 2)", "[[1, 2], [3, 4], [5]]"),
        ("$range(0, 10, 5)", "[0, 5, 10]"),
        ("$range(0, 10, 3)", "[0, 3, 6, 9]"),
        ("$range(10, 0, -5)", "[10, 5, 0]"),
        (
            "$hash('input', 'SHA-256')",
            r#""c96c6d5be8d08a12e7b5cdc1b207fa6b2430974c86803d8891675e76fd992c20""#,
        ),
        (
            "$hash('input', 'MD5')",
            r#""a43c1b0aa53a0c908810c06ab1ff3967""#,
        ),
        (
            "$hash('input', 'SHA-1')",
            r#""140f86aae51ab9e1cda9b4254fe98a74eb54c1a1""#,
        ),
        ("$random()", "0.25"),
        ("$random(7) = $random(7)", "true"),
        ("$uuid()", r#""3f2504e0-4f89-41d3-9a0c-0305e82c3301""#),
        ("$parse('{\"a\": [1, 2]}').a[1]", "2"),
        (
            "($f := function($n){ $n <= 1 ? 1 : $n * $f($n - 1) }; $f(5))",
            "120",
        ),
        ("($add := function($a, $b){ $a + $b }; 3 ~> $add(4))", "7"),
        ("function($x){ $x * 2 }(21)", "42"),
        ("(function($x){ $x * 2 })(21)", "42"),
        ("($up := $uppercase; $up('x'))", r#""X""#),
        ("['a', 'b'] ~> $join('-')", r#""a-b""#),
        ("'abc' ~> $length", "3"),
        ("$assert(true, 'no')", "undefined"),
    ];

    /// Equality with numbers compared to 1e-9 (the docs print sums JavaScript computes as
    /// 90.57000000000001).
    fn approx_eq(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                (x - y).abs() <= 1e-9 * x.abs().max(1.0)
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| approx_eq(p, q))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .all(|(k, v)| y.get(k).is_some_and(|w| approx_eq(v, w)))
            }
            _ => a == b,
        }
    }

    fn check(cases: &[(&str, &str)], input: Option<&Value>) {
        for (expr, want) in cases {
            let got = run(expr, input, json!({}))
                .unwrap_or_else(|e| panic!("{expr}: unexpected error {e}"));
            let want: Option<Value> = if *want == "undefined" {
                None
            } else {
                Some(serde_json::from_str(want).unwrap_or_else(|e| panic!("{expr}: bad want: {e}")))
            };
            let same = match (&got, &want) {
                (Some(g), Some(w)) => approx_eq(g, w),
                (None, None) => true,
                _ => false,
            };
            assert!(same, "{expr}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn jsonata_docs_address() {
        check(ADDRESS_CASES, Some(&address()));
    }

    #[test]
    fn jsonata_docs_orders() {
        check(ORDER_CASES, Some(&orders()));
    }

    #[test]
    fn jsonata_pure_expressions() {
        check(PURE_CASES, None);
    }

    #[test]
    fn jsonata_whole_numbers_are_integers() {
        let v = run("2 + 3", None, json!({})).unwrap().unwrap();
        assert_eq!(v.to_string(), "5");
        let v = run("10 / 4 * 2", None, json!({})).unwrap().unwrap();
        assert_eq!(v.to_string(), "5");
        let v = run("$sum([1.5, 1.5])", None, json!({})).unwrap().unwrap();
        assert_eq!(v.to_string(), "3");
    }

    fn states(input: Value) -> Value {
        json!({"states": {"input": input, "context": {"Execution": {"Id": "arn:x"}}}, "counter": 3})
    }

    #[test]
    fn jsonata_step_functions_examples() {
        let items = json!({"items": [
            {"name": "pen", "price": 5},
            {"name": "book", "price": 15},
            {"name": "lamp", "price": 30}
        ]});
        let cases: &[(&str, Value, &str)] = &[
            (
                "$states.input.a + $states.input.b",
                json!({"a": 2, "b": 3}),
                "5",
            ),
            ("$states.input * 10", json!(5), "50"),
            ("$count($states.input.items)", items.clone(), "3"),
            (
                "$states.input.items[price > 10].name",
                items.clone(),
                r#"["book", "lamp"]"#,
            ),
            (
                "$states.input.items[price > 20].name",
                items.clone(),
                r#""lamp""#,
            ),
            (
                "$states.input.items[price > 100].name",
                items.clone(),
                "undefined",
            ),
            (
                "{\"total\": $sum($states.input.items.price)}",
                items.clone(),
                r#"{"total": 50}"#,
            ),
            ("$states.input.items[0].name", items.clone(), r#""pen""#),
            ("$states.input.items[-1].price", items.clone(), "30"),
            (
                "$states.input.items.name",
                items.clone(),
                r#"["pen", "book", "lamp"]"#,
            ),
            ("$states.context.Execution.Id", json!(null), r#""arn:x""#),
            ("$counter + 1", json!(null), "4"),
            ("$missing", json!(null), "undefined"),
            ("$states.input.missing.deeper", json!({}), "undefined"),
            ("$states.input.x ? 'yes' : 'no'", json!({"x": 0}), r#""no""#),
            (
                "$states.input.status = 'ok'",
                json!({"status": "ok"}),
                "true",
            ),
            (
                "$map($states.input.items, function($i){ $i.price * 2 })",
                items.clone(),
                "[10, 30, 60]",
            ),
            ("$states.input.items.price ~> $sum()", items.clone(), "50"),
            ("$", json!(null), "undefined"),
        ];
        for (expr, input, want) in cases {
            let got =
                run(expr, None, states(input.clone())).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let want: Option<Value> =
                (*want != "undefined").then(|| serde_json::from_str(want).unwrap());
            assert_eq!(got, want, "{expr}");
        }
    }

    #[test]
    fn jsonata_render_templates() {
        let vars = states(json!({"a": 2, "b": 3, "name": "x"}));
        let template = json!({
            "sum": "{% $states.input.a + $states.input.b %}",
            "literal": "plain {% not an expression",
            "gone": "{% $states.input.nothing %}",
            "nested": {"list": ["{% $states.input.name %}", 1, "{% $nope %}"], "k": true}
        });
        let out = with_env(vars.clone(), |env| render(&template, env)).unwrap();
        assert_eq!(
            out,
            json!({"sum": 5, "literal": "plain {% not an expression", "nested": {"list": ["x", 1], "k": true}})
        );
        assert!(is_expression("{% 1 %}"));
        assert!(!is_expression("{% 1"));
        assert!(!is_expression("x{% 1 %}"));
        let err = with_env(vars.clone(), |env| render(&json!("{% 1 + %}"), env)).unwrap_err();
        assert_eq!(err.code, "S0207");
        let err = with_env(vars, |env| render(&json!({"x": "{% 'a' + 1 %}"}), env)).unwrap_err();
        assert_eq!(err.code, "T2001");
    }

    #[test]
    fn jsonata_errors() {
        let cases: &[(&str, &str)] = &[
            ("'a' + 1", "T2001"),
            ("1 + 'a'", "T2002"),
            ("1 < 'a'", "T2009"),
            ("{} < 1", "T2010"),
            ("-'a'", "D1002"),
            ("1 / 0", "D1001"),
            ("[1..'a']", "T2004"),
            ("[1.5..2]", "T2003"),
            ("[1..100000000]", "D2014"),
            ("{1: 2}", "T1003"),
            ("$nosuch(1)", "T1006"),
            ("count(1)", "T1005"),
            ("($x := 1; $x(2))", "T1006"),
            ("$number('abc')", "D3030"),
            ("$length(1)", "T0410"),
            ("$sum(['a'])", "T0412"),
            ("$sort([1, 'a'])", "D3070"),
            ("$replace('abc', '', 'x')", "D3010"),
            ("$sqrt(-1)", "D3060"),
            ("$power(10, 1000)", "D3061"),
            ("$error('boom')", "D3137"),
            ("$assert(false, 'bad')", "D3141"),
            ("$hash('x', 'SHA-3')", "States.QueryEvaluationError"),
            ("$parse('{')", "States.QueryEvaluationError"),
            ("$partition([1], 0)", "States.QueryEvaluationError"),
            ("$range(0, 1, 0)", "States.QueryEvaluationError"),
            ("($f := function($n){ $f($n + 1) }; $f(0))", "U1001"),
            (
                "($f := function($n){ $n = 0 ? 0 : $f($n - 1) + $f($n - 1) }; $f(60))",
                "U1001",
            ),
            ("$toMillis('yesterday')", "D3110"),
            ("{'a': 1, 'a': 2}", "D1009"),
        ];
        for (expr, code) in cases {
            match run(expr, None, json!({})) {
                Err(e) => assert_eq!(e.code, *code, "{expr}: {e}"),
                Ok(v) => panic!("{expr}: expected {code}, got {v:?}"),
            }
        }
    }

    #[test]
    fn jsonata_parse_errors_say_where() {
        let cases: &[(&str, &str, &str)] = &[
            ("1 +", "S0207", "character 3"),
            ("(1 + 2", "S0203", "character 6"),
            ("[1, 2", "S0203", "character 5"),
            ("'abc", "S0101", "character 0"),
            ("a b", "S0201", "character 2"),
            ("1 2", "S0201", "character 2"),
            ("{'a' 1}", "S0202", "character 5"),
            ("1 := 2", "S0212", "character 2"),
            ("'\\q'", "S0103", "character 1"),
            ("`name", "S0105", "character 0"),
            ("/* never closed", "S0106", "character 0"),
            ("function($x, 1){1}", "S0208", "character 13"),
            ("a.1", "S0213", "character 1"),
            (")", "S0211", "character 0"),
            ("", "S0207", "character 0"),
            ("1e999", "S0102", "character 0"),
        ];
        for (text, code, at) in cases {
            let err = Expr::parse_detailed(text).unwrap_err();
            assert_eq!(err.code, *code, "{text}: {err}");
            assert!(err.message.contains(at), "{text}: {err}");
            let s = Expr::parse(text).unwrap_err();
            assert!(s.starts_with(code) && s.contains(at), "{text}: {s}");
        }
    }

    #[test]
    fn jsonata_adversarial_inputs_do_not_panic() {
        let deep_parens = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        let deep_arrays = "[".repeat(100_000);
        let deep_neg = "-".repeat(10_000) + "1";
        let long_path = vec!["a"; 3000].join(".");
        let texts = [
            deep_parens.as_str(),
            deep_arrays.as_str(),
            deep_neg.as_str(),
            long_path.as_str(),
            "$substring('abc', -1e300, 1e300)",
            "$substring('abc', 1e300)",
            "$pad('x', 1e300)",
            "$round(1.5, 1e18)",
            "$round(1e308, -400)",
            "$range(0, 1e300, 1)",
            "$range(-1e300, 1e300, 1e299)",
            "$split('abc', '', -1)",
            "$fromMillis(1e300)",
            "$formatNumber(1e300, '#,##0.00')",
            "$formatNumber(1, '')",
            "$formatNumber(1, '%')",
            "[1,2,3][1e300]",
            "[1,2,3][-1e300]",
            "$power(-8, 0.5)",
            "$number('1e999')",
            "'\\ud800'",
            "'\\ud800\\udc00'",
            "$sort([], function($a){ $a })",
            "$reduce([], function($a, $b){ $a })",
            "$zip()",
            "$partition([], 1)",
            "$toMillis('2020-13-45')",
            "$base64decode('***')",
            "function(){1}()",
            "$map(1, 2)",
            "λ($x){$x}(1)",
            "**",
            "*",
            "$$",
            "a[",
            "a{",
            "a^(",
            "function($x)<n:n",
            "function($x)<n:n>{$x}(1)",
            "$string(function($x){1})",
            "1 ~> 2",
            "%",
            "@",
            "#",
            "|",
            "!",
            "~",
            "ÿ.ü",
            "$x := 1",
            "[1..3] ~> $map(function($v){ $v })",
        ];
        let doc = json!({"a": {"a": [1, {"a": 2}]}});
        for text in texts {
            if let Ok(e) = Expr::parse_detailed(text) {
                let _ = with_env(json!({}), |env| eval_with_input(&e, Some(&doc), env));
                let _ = with_env(json!({}), |env| eval(&e, env));
            }
        }
        let err = Expr::parse_detailed(&deep_parens).unwrap_err();
        assert_eq!(err.code, "S0301");
    }

    #[test]
    fn jsonata_deep_recursion_fits_a_small_stack() {
        // Tokio's worker threads have 2 MiB of stack; the depth limit must fit in that.
        let handle = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(|| {
                let r = run(
                    "($f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000))",
                    None,
                    json!({}),
                );
                assert_eq!(r.unwrap_err().code, "U1001");
                let r = run(
                    "($f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(50))",
                    None,
                    json!({}),
                );
                assert_eq!(r.unwrap(), Some(json!(50)));
                let nested = format!("{}1{}", "[".repeat(99), "]".repeat(99));
                assert!(run(&nested, None, json!({})).unwrap().is_some());
            })
            .unwrap();
        handle.join().unwrap();
    }
}
