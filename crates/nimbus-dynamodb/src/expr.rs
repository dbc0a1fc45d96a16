//! DynamoDB's expression language: condition, filter, key-condition, update and projection
//! expressions, parsed and evaluated as Amazon DynamoDB does, with its ValidationException texts.
//!
//! The parser is hand-written recursive descent. No crate implements DynamoDB's grammar, and the
//! parts that matter to a caller are the ones a generated parser would not give: which token a
//! syntax error names and what is "near" it, and which message wins when an expression breaks
//! several rules at once. Parsing therefore builds a raw tree and reports only syntax errors;
//! the rules about names, values, functions and paths run over that tree afterwards, each kind
//! of failure kept in its own slot, and the slot DynamoDB ranks first is the one reported.
//!
//! Work is bounded before anything recursive runs: an expression over 4 KB is refused, and the
//! nesting depth (parentheses, `NOT`, function calls) is capped so hostile input cannot exhaust
//! the stack.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value as Json;

use crate::error::DdbError;
use crate::reserved::is_reserved;
use crate::value::{AttrValue, Item};

/// DynamoDB's limit on the length of any expression string, in bytes.
const MAX_EXPRESSION_BYTES: usize = 4096;
/// DynamoDB's limit on operators and functions in one expression.
const MAX_OPERATORS: usize = 300;
/// DynamoDB's limit on the operands of one `IN`.
const MAX_IN_OPERANDS: usize = 100;
/// How deep parentheses, `NOT`s and function calls may nest. Within DynamoDB's own limits
/// (300 operators, no doubled parentheses) an expression cannot nest deeper than about 2 x 300,
/// so this refuses nothing DynamoDB accepts while keeping the parser's recursion small.
const MAX_DEPTH: usize = 640;

/// Which expression a message is about: "Invalid ConditionExpression: ...", etc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Condition,
    Filter,
    KeyCondition,
    Update,
    Projection,
}

impl Kind {
    /// The request parameter's name, as DynamoDB's messages spell it.
    pub fn param_name(self) -> &'static str {
        match self {
            Kind::Condition => "ConditionExpression",
            Kind::Filter => "FilterExpression",
            Kind::KeyCondition => "KeyConditionExpression",
            Kind::Update => "UpdateExpression",
            Kind::Projection => "ProjectionExpression",
        }
    }

    fn error(self, msg: impl fmt::Display) -> DdbError {
        DdbError::validation(format!("Invalid {}: {msg}", self.param_name()))
    }
}

// ---------------------------------------------------------------------------------------------
// ExpressionAttributeNames / ExpressionAttributeValues
// ---------------------------------------------------------------------------------------------

/// ExpressionAttributeNames / ExpressionAttributeValues of ONE request, with usage tracking
/// across all the expressions of that request.
#[derive(Clone, Debug, Default)]
pub struct Params {
    names: BTreeMap<String, String>,
    values: BTreeMap<String, AttrValue>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
    /// Expressions nimbus wrote from legacy parameters: DynamoDB's limits on expression size
    /// and operators are limits on what a caller writes, so they do not apply to them.
    generated: bool,
}

/// The member `legacy::rewrite` marks a rewritten request with. Not a name AWS members can
/// have; a caller who sends it only lifts the expression size limits of its own request.
pub const GENERATED_MARK: &str = "nimbus:generated";

/// DynamoDB accepts placeholder keys of the prefix and at least one letter, digit or `_`.
fn valid_placeholder(key: &str, prefix: char) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(is_name_byte))
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Params {
    /// Reads `ExpressionAttributeNames` and `ExpressionAttributeValues` from the request JSON
    /// object (either may be absent), validating them as DynamoDB does.
    pub fn from_request(input: &Json) -> Result<Params, DdbError> {
        let mut params = Params {
            generated: input.get(GENERATED_MARK).is_some(),
            ..Params::default()
        };
        let object = |field: &str| -> Result<Option<&serde_json::Map<String, Json>>, DdbError> {
            match input.get(field) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::Object(m)) => Ok(Some(m)),
                Some(other) => Err(DdbError::Serialization(format!(
                    "Unexpected value type for {field}: expected a map, got {other}"
                ))),
            }
        };
        if let Some(names) = object("ExpressionAttributeNames")? {
            if names.is_empty() {
                return Err(DdbError::validation(
                    "ExpressionAttributeNames must not be empty",
                ));
            }
            for (key, value) in names {
                if !valid_placeholder(key, '#') {
                    return Err(DdbError::validation(format!(
                        "ExpressionAttributeNames contains invalid key: Syntax error; key: \"{key}\""
                    )));
                }
                let name = value.as_str().ok_or_else(|| {
                    DdbError::Serialization(format!(
                        "Unexpected value type for ExpressionAttributeNames: expected a string, got {value}"
                    ))
                })?;
                params.names.insert(key.clone(), name.to_owned());
            }
        }
        if let Some(values) = object("ExpressionAttributeValues")? {
            if values.is_empty() {
                return Err(DdbError::validation(
                    "ExpressionAttributeValues must not be empty",
                ));
            }
            // DynamoDB checks every key before it looks at any value.
            if let Some(key) = values.keys().find(|k| !valid_placeholder(k, ':')) {
                return Err(DdbError::validation(format!(
                    "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{key}\""
                )));
            }
            for (key, value) in values {
                let v = AttrValue::from_json(value).map_err(|e| match e {
                    DdbError::Validation(msg) => DdbError::validation(format!(
                        "ExpressionAttributeValues contains invalid value: {msg} for key {key}"
                    )),
                    other => other,
                })?;
                params.values.insert(key.clone(), v);
            }
        }
        Ok(params)
    }

    /// Params built directly, for callers that already hold parsed names and values.
    pub fn new(
        names: impl IntoIterator<Item = (String, String)>,
        values: impl IntoIterator<Item = (String, AttrValue)>,
    ) -> Params {
        Params {
            names: names.into_iter().collect(),
            values: values.into_iter().collect(),
            ..Params::default()
        }
    }

    /// After all expressions of a request were parsed: DynamoDB refuses names and values that
    /// no expression used.
    pub fn check_all_used(&self) -> Result<(), DdbError> {
        let names: Vec<&str> = self
            .names
            .keys()
            .filter(|k| !self.used_names.contains(*k))
            .map(String::as_str)
            .collect();
        if !names.is_empty() {
            return Err(DdbError::validation(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                names.join(", ")
            )));
        }
        let values: Vec<&str> = self
            .values
            .keys()
            .filter(|k| !self.used_values.contains(*k))
            .map(String::as_str)
            .collect();
        if !values.is_empty() {
            return Err(DdbError::validation(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                values.join(", ")
            )));
        }
        Ok(())
    }

    fn name(&mut self, key: &str) -> Option<String> {
        let name = self.names.get(key)?.clone();
        self.used_names.insert(key.to_owned());
        Some(name)
    }

    fn value(&mut self, key: &str) -> Option<AttrValue> {
        let value = self.values.get(key)?.clone();
        self.used_values.insert(key.to_owned());
        Some(value)
    }
}

// ---------------------------------------------------------------------------------------------
// Document paths
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathElem {
    Attr(String),
    Index(usize),
}

/// A document path, names already substituted: `a.b[2].c` is `[Attr a, Attr b, Index 2, Attr c]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElem>);

impl Path {
    pub fn get<'a>(&self, item: &'a Item) -> Option<&'a AttrValue> {
        let (first, rest) = self.0.split_first()?;
        let mut cur = match first {
            PathElem::Attr(name) => item.get(name)?,
            PathElem::Index(_) => return None,
        };
        for elem in rest {
            cur = match (elem, cur) {
                (PathElem::Attr(name), AttrValue::M(m)) => m.get(name)?,
                (PathElem::Index(i), AttrValue::L(l)) => l.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// The first element's attribute name.
    pub fn top(&self) -> &str {
        match self.0.first() {
            Some(PathElem::Attr(name)) => name,
            _ => "",
        }
    }
}

impl fmt::Display for Path {
    /// DynamoDB's form in messages: `[a, b, [2], c]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, elem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match elem {
                PathElem::Attr(name) => f.write_str(name)?,
                PathElem::Index(ix) => write!(f, "[{ix}]")?,
            }
        }
        f.write_str("]")
    }
}

enum PathRelation {
    Overlap,
    Conflict,
}

/// Two paths overlap when one is a prefix of the other; they conflict when, after a common
/// prefix, one indexes a list where the other names a map key.
fn path_relation(a: &Path, b: &Path) -> Option<PathRelation> {
    for (x, y) in a.0.iter().zip(&b.0) {
        match (x, y) {
            (PathElem::Attr(x), PathElem::Attr(y)) if x != y => return None,
            (PathElem::Index(x), PathElem::Index(y)) if x != y => return None,
            (PathElem::Attr(_), PathElem::Index(_)) | (PathElem::Index(_), PathElem::Attr(_)) => {
                return Some(PathRelation::Conflict)
            }
            _ => {}
        }
    }
    Some(PathRelation::Overlap)
}

/// The first overlapping and the first conflicting pair among `paths`, each later path compared
/// with every earlier one; DynamoDB names the earlier path first.
fn check_paths(paths: &[Path], checks: &mut Checks) {
    for (i, later) in paths.iter().enumerate() {
        for earlier in &paths[..i] {
            let slot = match path_relation(earlier, later) {
                None => continue,
                Some(PathRelation::Overlap) => (&mut checks.overlap, "overlap"),
                Some(PathRelation::Conflict) => (&mut checks.conflict, "conflict"),
            };
            first(
                slot.0,
                format!(
                    "Two document paths {} with each other; must remove or rewrite one of these paths; path one: {earlier}, path two: {later}",
                    slot.1
                ),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum T {
    Ident,
    /// `#name`
    Name,
    /// `:value`
    Value,
    Num,
    LParen,
    RParen,
    LBrack,
    RBrack,
    Comma,
    Dot,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    /// Anything DynamoDB's grammar has no place for; the parser reports it as the bad token.
    Other,
    Eof,
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    t: T,
    start: usize,
    end: usize,
}

fn lex(src: &str) -> Vec<Tok> {
    let bytes = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let run = |from: usize, pred: fn(u8) -> bool| {
        let mut j = from;
        while j < bytes.len() && pred(bytes[j]) {
            j += 1;
        }
        j
    };
    while i < bytes.len() {
        let b = bytes[i];
        let (t, end) = match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => (T::Ident, run(i + 1, is_name_byte)),
            b'0'..=b'9' => (T::Num, run(i + 1, |b| b.is_ascii_digit())),
            b'#' | b':' => {
                let end = run(i + 1, is_name_byte);
                match (end > i + 1, b) {
                    (true, b'#') => (T::Name, end),
                    (true, _) => (T::Value, end),
                    (false, _) => (T::Other, i + 1),
                }
            }
            b'(' => (T::LParen, i + 1),
            b')' => (T::RParen, i + 1),
            b'[' => (T::LBrack, i + 1),
            b']' => (T::RBrack, i + 1),
            b',' => (T::Comma, i + 1),
            b'.' => (T::Dot, i + 1),
            b'=' => (T::Eq, i + 1),
            b'+' => (T::Plus, i + 1),
            b'-' => (T::Minus, i + 1),
            b'<' => match bytes.get(i + 1) {
                Some(b'=') => (T::Le, i + 2),
                Some(b'>') => (T::Ne, i + 2),
                _ => (T::Lt, i + 1),
            },
            b'>' => match bytes.get(i + 1) {
                Some(b'=') => (T::Ge, i + 2),
                _ => (T::Gt, i + 1),
            },
            _ => {
                // One whole character, so the message never splits a UTF-8 sequence.
                let len = src[i..].chars().next().map_or(1, char::len_utf8);
                (T::Other, i + len)
            }
        };
        toks.push(Tok { t, start: i, end });
        i = end;
    }
    toks.push(Tok {
        t: T::Eof,
        start: src.len(),
        end: src.len(),
    });
    toks
}

// ---------------------------------------------------------------------------------------------
// Raw syntax trees (names and values not yet resolved)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum RElem {
    Ident(String),
    Name(String),
    Index(usize),
}

#[derive(Clone, Debug)]
struct RFunc {
    name: String,
    args: Vec<ROp>,
}

#[derive(Clone, Debug)]
enum ROp {
    Path(Vec<RElem>),
    Value(String),
    Func(RFunc),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The same comparison with its operands swapped: `:v < k` is `k > :v`.
    fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }
}

#[derive(Clone, Debug)]
enum RCond {
    Cmp(CmpOp, ROp, ROp),
    Between(ROp, ROp, ROp),
    In(ROp, Vec<ROp>),
    Func(RFunc),
    And(Box<RCond>, Box<RCond>),
    Or(Box<RCond>, Box<RCond>),
    Not(Box<RCond>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    Set,
    Remove,
    Add,
    Delete,
}

impl Section {
    fn keyword(self) -> &'static str {
        match self {
            Section::Set => "SET",
            Section::Remove => "REMOVE",
            Section::Add => "ADD",
            Section::Delete => "DELETE",
        }
    }
}

#[derive(Clone, Debug)]
enum RSetValue {
    Single(ROp),
    Plus(ROp, ROp),
    Minus(ROp, ROp),
}

#[derive(Clone, Debug)]
enum RAction {
    Set(Vec<RElem>, RSetValue),
    Remove(Vec<RElem>),
    Add(Vec<RElem>, String),
    Delete(Vec<RElem>, String),
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

/// Why a parse attempt stopped: a syntax error (the parser keeps the furthest failing token,
/// as DynamoDB reports the token where no alternative could go on), or a limit that ends the
/// parse outright.
enum PErr {
    Syntax,
    Fatal(String),
}

type PResult<R> = Result<R, PErr>;

const CONDITION_KEYWORDS: &[&str] = &["AND", "OR", "NOT", "BETWEEN", "IN"];
const UPDATE_KEYWORDS: &[&str] = &["SET", "REMOVE", "ADD", "DELETE"];

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    furthest: usize,
    /// Words that are the grammar's own in this kind of expression, never attribute names.
    keywords: &'static [&'static str],
    /// Doubled parentheses (`((a))`): DynamoDB refuses them once the expression parses.
    redundant_parens: bool,
    /// Operators and functions parsed so far. Counting while parsing stops a chain of `NOT`s or
    /// nested calls at DynamoDB's limit, before it costs deep recursion.
    operators: usize,
    /// No operator limit: the expression was generated from legacy parameters.
    unlimited: bool,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, keywords: &'static [&'static str]) -> Parser<'a> {
        Parser {
            src,
            toks: lex(src),
            pos: 0,
            depth: 0,
            furthest: 0,
            keywords,
            redundant_parens: false,
            operators: 0,
            unlimited: false,
        }
    }

    fn peek(&self) -> Tok {
        self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> Tok {
        self.toks[(self.pos + ahead).min(self.toks.len() - 1)]
    }

    fn text(&self, tok: Tok) -> &'a str {
        &self.src[tok.start..tok.end]
    }

    fn bump(&mut self) -> Tok {
        let tok = self.peek();
        if tok.t != T::Eof {
            self.pos += 1;
        }
        tok
    }

    fn fail<R>(&mut self) -> PResult<R> {
        self.furthest = self.furthest.max(self.pos);
        Err(PErr::Syntax)
    }

    fn expect(&mut self, t: T) -> PResult<Tok> {
        if self.peek().t == t {
            Ok(self.bump())
        } else {
            self.fail()
        }
    }

    fn is_keyword(&self, tok: Tok, kw: &str) -> bool {
        tok.t == T::Ident && self.text(tok).eq_ignore_ascii_case(kw)
    }

    fn at_keyword(&self, kw: &str) -> bool {
        self.is_keyword(self.peek(), kw)
    }

    fn is_any_keyword(&self, tok: Tok) -> bool {
        self.keywords.iter().any(|kw| self.is_keyword(tok, kw))
    }

    /// An identifier that can name an attribute or a function here.
    fn at_identifier(&self) -> bool {
        let tok = self.peek();
        tok.t == T::Ident && !self.is_any_keyword(tok)
    }

    /// Runs `f` one nesting level deeper, refusing input nested beyond [`MAX_DEPTH`].
    fn nested<R>(&mut self, f: impl FnOnce(&mut Self) -> PResult<R>) -> PResult<R> {
        if self.depth >= MAX_DEPTH {
            return Err(PErr::Fatal(self.too_deep()));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    /// Counts one operator or function, refusing the expression past DynamoDB's limit.
    fn operator(&mut self) -> PResult<()> {
        self.operators += 1;
        if self.operators > MAX_OPERATORS && !self.unlimited {
            return Err(PErr::Fatal(self.too_many_operators()));
        }
        Ok(())
    }

    /// DynamoDB's message names the whole expression's count, so count every operator token,
    /// not just those parsed before the limit was reached.
    fn too_many_operators(&self) -> String {
        let update = std::ptr::eq(self.keywords, UPDATE_KEYWORDS);
        let operators = self
            .toks
            .iter()
            .enumerate()
            .filter(|(i, tok)| match tok.t {
                T::Plus | T::Minus => update,
                T::Eq | T::Ne | T::Lt | T::Le | T::Gt | T::Ge => !update,
                T::Ident => {
                    // BETWEEN's own AND is not counted, so count every AND and no BETWEEN.
                    (!update
                        && ["AND", "OR", "NOT", "IN"]
                            .iter()
                            .any(|kw| self.is_keyword(**tok, kw)))
                        || self.toks.get(i + 1).is_some_and(|next| next.t == T::LParen)
                }
                _ => false,
            })
            .count();
        format!("The expression contains too many operators; operator count: {operators}")
    }

    /// Input nested this deep within DynamoDB's operator limit must double its parentheses.
    fn too_deep(&self) -> String {
        "The expression has redundant parentheses;".to_owned()
    }

    /// DynamoDB's syntax error: the bad token, and the source from the token before it to the
    /// token after it.
    fn syntax_message(&self) -> String {
        let idx = self.furthest.min(self.toks.len() - 1);
        let tok = self.toks[idx];
        let token = if tok.t == T::Eof {
            "<EOF>"
        } else {
            self.text(tok)
        };
        let start = if idx > 0 {
            self.toks[idx - 1].start
        } else {
            tok.start
        };
        let end = match self.toks.get(idx + 1) {
            Some(next) => next.end,
            None => tok.end,
        };
        format!(
            "Syntax error; token: \"{token}\", near: \"{}\"",
            &self.src[start..end]
        )
    }

    fn finish<R>(&self, result: PResult<R>) -> Result<R, String> {
        match result {
            Ok(r) => Ok(r),
            Err(PErr::Fatal(msg)) => Err(msg),
            Err(PErr::Syntax) => Err(self.syntax_message()),
        }
    }

    fn expect_eof(&mut self) -> PResult<()> {
        if self.peek().t == T::Eof {
            Ok(())
        } else {
            self.fail()
        }
    }

    // --- paths -------------------------------------------------------------------------------

    fn path_head(&mut self) -> PResult<RElem> {
        let tok = self.peek();
        match tok.t {
            T::Ident if !self.is_any_keyword(tok) => {
                self.bump();
                Ok(RElem::Ident(self.text(tok).to_owned()))
            }
            T::Name => {
                self.bump();
                Ok(RElem::Name(self.text(tok).to_owned()))
            }
            _ => self.fail(),
        }
    }

    /// `.name`, `.#name` and `[n]` after a path's head.
    fn path_tail(&mut self, path: &mut Vec<RElem>) -> PResult<()> {
        loop {
            match self.peek().t {
                T::Dot => {
                    self.bump();
                    path.push(self.path_head()?);
                }
                T::LBrack => {
                    self.bump();
                    let tok = self.peek();
                    let index = match tok.t {
                        T::Num => self.text(tok).parse::<usize>().ok(),
                        _ => None,
                    };
                    let Some(index) = index else {
                        return self.fail();
                    };
                    self.bump();
                    self.expect(T::RBrack)?;
                    path.push(RElem::Index(index));
                }
                _ => return Ok(()),
            }
        }
    }

    fn path(&mut self) -> PResult<Vec<RElem>> {
        let mut path = vec![self.path_head()?];
        self.path_tail(&mut path)?;
        Ok(path)
    }

    // --- operands ----------------------------------------------------------------------------

    /// A value placeholder, a function call or a path.
    fn operand(&mut self) -> PResult<ROp> {
        self.operand_with(|p| Ok(p.operand_parens()?.0))
    }

    /// A value placeholder, a function call whose arguments `arg` reads, or a path: the shape
    /// condition and update operands share; only what an argument may be differs.
    fn operand_with(&mut self, arg: fn(&mut Self) -> PResult<ROp>) -> PResult<ROp> {
        let tok = self.peek();
        if tok.t == T::Value {
            self.bump();
            return Ok(ROp::Value(self.text(tok).to_owned()));
        }
        if self.at_identifier() && self.peek_at(1).t == T::LParen {
            return self.nested(|p| {
                let tok = p.bump();
                let name = p.text(tok).to_owned();
                p.bump();
                p.operator()?;
                let mut args = vec![arg(p)?];
                while p.peek().t == T::Comma {
                    p.bump();
                    args.push(arg(p)?);
                }
                p.expect(T::RParen)?;
                Ok(ROp::Func(RFunc { name, args }))
            });
        }
        Ok(ROp::Path(self.path()?))
    }

    /// An operand, possibly in parentheses; also says whether it was exactly a parenthesized
    /// group, so that a second pair around it can be refused as redundant.
    fn operand_parens(&mut self) -> PResult<(ROp, bool)> {
        if self.peek().t != T::LParen {
            return Ok((self.operand()?, false));
        }
        self.nested(|p| {
            p.bump();
            let (inner, wrapped) = p.operand_parens()?;
            p.expect(T::RParen)?;
            if wrapped {
                p.redundant_parens = true;
            }
            // Condition expressions accept a parenthesized path with more path after it.
            match inner {
                ROp::Path(mut path) if matches!(p.peek().t, T::Dot | T::LBrack) => {
                    p.path_tail(&mut path)?;
                    Ok((ROp::Path(path), false))
                }
                other => Ok((other, true)),
            }
        })
    }

    // --- conditions --------------------------------------------------------------------------

    fn condition_expression(&mut self) -> PResult<RCond> {
        let (cond, _) = self.or()?;
        self.expect_eof()?;
        Ok(cond)
    }

    /// Returns the condition and whether it is exactly one parenthesized group.
    fn or(&mut self) -> PResult<(RCond, bool)> {
        let (mut left, mut wrapped) = self.and()?;
        while self.at_keyword("OR") {
            self.bump();
            self.operator()?;
            let (right, _) = self.and()?;
            left = RCond::Or(Box::new(left), Box::new(right));
            wrapped = false;
        }
        Ok((left, wrapped))
    }

    fn and(&mut self) -> PResult<(RCond, bool)> {
        let (mut left, mut wrapped) = self.not()?;
        while self.at_keyword("AND") {
            self.bump();
            self.operator()?;
            let (right, _) = self.not()?;
            left = RCond::And(Box::new(left), Box::new(right));
            wrapped = false;
        }
        Ok((left, wrapped))
    }

    fn not(&mut self) -> PResult<(RCond, bool)> {
        if self.at_keyword("NOT") {
            return self.nested(|p| {
                p.bump();
                p.operator()?;
                let (inner, _) = p.not()?;
                Ok((RCond::Not(Box::new(inner)), false))
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> PResult<(RCond, bool)> {
        if self.peek().t != T::LParen {
            return Ok((self.simple_condition()?, false));
        }
        // `(` opens either an operand, as in `(a) = b`, or a condition, as in `(a = b)`: try the
        // operand first, as DynamoDB's grammar does, then the condition.
        let (pos, redundant, operators) = (self.pos, self.redundant_parens, self.operators);
        match self.simple_condition() {
            Ok(cond) => return Ok((cond, false)),
            Err(PErr::Fatal(msg)) => return Err(PErr::Fatal(msg)),
            Err(PErr::Syntax) => {
                self.pos = pos;
                self.redundant_parens = redundant;
                self.operators = operators;
            }
        }
        self.nested(|p| {
            p.bump();
            let (inner, wrapped) = p.or()?;
            p.expect(T::RParen)?;
            if wrapped {
                p.redundant_parens = true;
            }
            Ok((inner, true))
        })
    }

    fn comparator(&self) -> Option<CmpOp> {
        Some(match self.peek().t {
            T::Eq => CmpOp::Eq,
            T::Ne => CmpOp::Ne,
            T::Lt => CmpOp::Lt,
            T::Le => CmpOp::Le,
            T::Gt => CmpOp::Gt,
            T::Ge => CmpOp::Ge,
            _ => return None,
        })
    }

    fn simple_condition(&mut self) -> PResult<RCond> {
        let (left, wrapped) = self.operand_parens()?;
        if let Some(op) = self.comparator() {
            self.bump();
            self.operator()?;
            let (right, _) = self.operand_parens()?;
            return Ok(RCond::Cmp(op, left, right));
        }
        if self.at_keyword("BETWEEN") {
            self.bump();
            self.operator()?;
            let (low, _) = self.operand_parens()?;
            if !self.at_keyword("AND") {
                return self.fail();
            }
            self.bump();
            let (high, _) = self.operand_parens()?;
            return Ok(RCond::Between(left, low, high));
        }
        if self.at_keyword("IN") {
            self.bump();
            self.operator()?;
            self.expect(T::LParen)?;
            let mut list = vec![self.operand_parens()?.0];
            while self.peek().t == T::Comma {
                self.bump();
                list.push(self.operand_parens()?.0);
            }
            self.expect(T::RParen)?;
            return Ok(RCond::In(left, list));
        }
        match left {
            ROp::Func(f) if !wrapped => Ok(RCond::Func(f)),
            _ => self.fail(),
        }
    }

    // --- updates -----------------------------------------------------------------------------

    fn section_keyword(&self) -> Option<Section> {
        let tok = self.peek();
        [Section::Set, Section::Remove, Section::Add, Section::Delete]
            .into_iter()
            .find(|s| self.is_keyword(tok, s.keyword()))
    }

    fn update_expression(&mut self) -> PResult<Vec<(Section, Vec<RAction>)>> {
        let mut sections = Vec::new();
        loop {
            let Some(section) = self.section_keyword() else {
                return self.fail();
            };
            self.bump();
            let mut actions = vec![self.update_action(section)?];
            while self.peek().t == T::Comma {
                self.bump();
                actions.push(self.update_action(section)?);
            }
            sections.push((section, actions));
            if self.peek().t == T::Eof {
                return Ok(sections);
            }
        }
    }

    fn update_action(&mut self, section: Section) -> PResult<RAction> {
        let path = self.path()?;
        Ok(match section {
            Section::Set => {
                self.expect(T::Eq)?;
                RAction::Set(path, self.set_value()?)
            }
            Section::Remove => RAction::Remove(path),
            Section::Add | Section::Delete => {
                let tok = self.expect(T::Value)?;
                let value = self.text(tok).to_owned();
                if section == Section::Add {
                    RAction::Add(path, value)
                } else {
                    RAction::Delete(path, value)
                }
            }
        })
    }

    /// `operand`, `operand + operand` or `operand - operand`, the whole optionally in
    /// parentheses, each operand optionally in its own.
    fn set_value(&mut self) -> PResult<RSetValue> {
        if self.peek().t == T::LParen {
            let (pos, operators) = (self.pos, self.operators);
            let whole = self.nested(|p| {
                p.bump();
                let value = p.set_value_inner()?;
                p.expect(T::RParen)?;
                Ok(value)
            });
            match whole {
                Ok(value) if !matches!(self.peek().t, T::Plus | T::Minus) => return Ok(value),
                Err(PErr::Fatal(msg)) => return Err(PErr::Fatal(msg)),
                // `(a) + b`: the parentheses were the first operand's.
                _ => {
                    self.pos = pos;
                    self.operators = operators;
                }
            }
        }
        self.set_value_inner()
    }

    fn set_value_inner(&mut self) -> PResult<RSetValue> {
        let left = self.update_operand_parens()?;
        let plus = match self.peek().t {
            T::Plus => true,
            T::Minus => false,
            _ => return Ok(RSetValue::Single(left)),
        };
        self.bump();
        self.operator()?;
        let right = self.update_operand_parens()?;
        Ok(if plus {
            RSetValue::Plus(left, right)
        } else {
            RSetValue::Minus(left, right)
        })
    }

    /// Update expressions allow one pair of parentheses around an operand, and no path after it.
    fn update_operand_parens(&mut self) -> PResult<ROp> {
        if self.peek().t != T::LParen {
            return self.update_operand();
        }
        self.nested(|p| {
            p.bump();
            let op = p.update_operand()?;
            p.expect(T::RParen)?;
            Ok(op)
        })
    }

    fn update_operand(&mut self) -> PResult<ROp> {
        self.operand_with(Self::update_operand_parens)
    }

    // --- projections -------------------------------------------------------------------------

    fn projection_expression(&mut self) -> PResult<Vec<Vec<RElem>>> {
        let mut paths = vec![self.path()?];
        while self.peek().t == T::Comma {
            self.bump();
            paths.push(self.path()?);
        }
        self.expect_eof()?;
        Ok(paths)
    }
}

/// The checks every expression goes through before it is parsed.
fn precheck(kind: Kind, text: &str, generated: bool) -> Result<(), DdbError> {
    if text.is_empty() {
        return Err(kind.error("The expression can not be empty;"));
    }
    if text.len() > MAX_EXPRESSION_BYTES && !generated {
        return Err(kind.error(format!(
            "Expression size has exceeded the maximum allowed size; expression size: {}",
            text.len()
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Semantic checks
// ---------------------------------------------------------------------------------------------

/// Keeps `msg` in `slot` unless an earlier failure of the same kind is already there.
fn first(slot: &mut Option<String>, msg: String) {
    if slot.is_none() {
        *slot = Some(msg);
    }
}

/// One slot per kind of failure; each expression kind reports the slots in DynamoDB's order.
#[derive(Default)]
struct Checks {
    reserved: Option<String>,
    unknown_function: Option<String>,
    misused_function: Option<String>,
    section: Option<String>,
    /// The first undefined name or value, whichever came first.
    undefined: Option<String>,
    undefined_name: Option<String>,
    undefined_value: Option<String>,
    /// Operand counts of functions in conditions; ADD/DELETE operand types in updates.
    operand: Option<String>,
    distinct: Option<String>,
    function: Option<String>,
    /// In conditions: the first simple condition's failure among the four above.
    condition: Option<String>,
    overlap: Option<String>,
    conflict: Option<String>,
    in_operands: Option<usize>,
}

impl Checks {
    fn report(kind: Kind, slots: &[&Option<String>]) -> Result<(), DdbError> {
        match slots.iter().find_map(|s| s.as_ref()) {
            Some(msg) => Err(kind.error(msg)),
            None => Ok(()),
        }
    }

    /// DynamoDB's limit on `IN` operands comes before its other rules.
    fn limits(&self, kind: Kind) -> Result<(), DdbError> {
        if let Some(n) = self.in_operands {
            return Err(kind.error(format!(
                "The IN operator is provided with too many operands; number of operands: {n}"
            )));
        }
        Ok(())
    }

    fn path(&mut self, raw: &[RElem], p: &mut Params) -> Path {
        let elems = raw
            .iter()
            .map(|elem| match elem {
                RElem::Ident(name) => {
                    if is_reserved(name) {
                        first(
                            &mut self.reserved,
                            format!("Attribute name is a reserved keyword; reserved keyword: {name}"),
                        );
                    }
                    PathElem::Attr(name.clone())
                }
                RElem::Name(key) => PathElem::Attr(p.name(key).unwrap_or_else(|| {
                    let msg = format!(
                        "An expression attribute name used in the document path is not defined; attribute name: {key}"
                    );
                    first(&mut self.undefined, msg.clone());
                    first(&mut self.undefined_name, msg);
                    key.clone()
                })),
                RElem::Index(i) => PathElem::Index(*i),
            })
            .collect();
        Path(elems)
    }

    fn value(&mut self, key: &str, p: &mut Params) -> AttrValue {
        p.value(key).unwrap_or_else(|| {
            let msg = format!(
                "An expression attribute value used in expression is not defined; attribute value: {key}"
            );
            first(&mut self.undefined, msg.clone());
            first(&mut self.undefined_value, msg);
            AttrValue::Null
        })
    }

    /// Ends one simple condition: its first failure, if it has one and no earlier condition
    /// had, is what DynamoDB reports for the conditions.
    fn end_simple_condition(&mut self) {
        if self.condition.is_none() {
            self.condition = [
                &self.undefined,
                &self.operand,
                &self.distinct,
                &self.function,
            ]
            .into_iter()
            .find_map(Clone::clone);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Operand {
    Path(Path),
    Value(AttrValue),
    Size(Box<Operand>),
}

#[derive(Clone, Debug)]
enum Cond {
    Cmp(CmpOp, Operand, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Exists(Operand),
    NotExists(Operand),
    Type(Operand, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    /// Stands in for a call the checks refused; a refused expression is never evaluated.
    Refused,
}

/// A parsed ConditionExpression or FilterExpression.
#[derive(Clone, Debug)]
pub struct Condition {
    root: Cond,
}

/// The type DynamoDB knows an operand has before it sees any item: a value's own type, or the
/// type a function returns.
fn known_type(op: &ROp, lowered: &Operand) -> Option<&'static str> {
    match (op, lowered) {
        (ROp::Func(f), _) if f.name == "size" => Some("N"),
        (ROp::Func(_), _) => Some("BOOL"),
        (_, Operand::Value(v)) => Some(v.type_name()),
        _ => None,
    }
}

const TYPE_NAMES: &[&str] = &["S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"];

struct CondLowering<'p> {
    checks: Checks,
    params: &'p mut Params,
}

impl CondLowering<'_> {
    /// Kept small: `NOT`, `AND` and `OR` recurse through here, so simple conditions are
    /// handled in `simple`.
    fn cond(&mut self, raw: &RCond) -> Cond {
        match raw {
            RCond::And(a, b) => Cond::And(Box::new(self.cond(a)), Box::new(self.cond(b))),
            RCond::Or(a, b) => Cond::Or(Box::new(self.cond(a)), Box::new(self.cond(b))),
            RCond::Not(a) => Cond::Not(Box::new(self.cond(a))),
            simple => self.simple(simple),
        }
    }

    fn simple(&mut self, raw: &RCond) -> Cond {
        match raw {
            RCond::And(..) | RCond::Or(..) | RCond::Not(_) => self.cond(raw),
            RCond::Cmp(op, a, b) => {
                let (x, y) = (self.operand(a), self.operand(b));
                self.misused(&[a, b]);
                self.distinct(op.symbol(), a, b);
                self.checks.end_simple_condition();
                Cond::Cmp(*op, x, y)
            }
            RCond::Between(a, low, high) => {
                let (x, lo, hi) = (self.operand(a), self.operand(low), self.operand(high));
                self.misused(&[a, low, high]);
                self.between_bounds(&lo, &hi);
                self.checks.end_simple_condition();
                Cond::Between(x, lo, hi)
            }
            RCond::In(a, list) => {
                if list.len() > MAX_IN_OPERANDS && self.checks.in_operands.is_none() {
                    self.checks.in_operands = Some(list.len());
                }
                let x = self.operand(a);
                let items = list.iter().map(|op| self.operand(op)).collect();
                self.misused(&[a]);
                self.misused(&list.iter().collect::<Vec<_>>());
                self.checks.end_simple_condition();
                Cond::In(x, items)
            }
            RCond::Func(f) => {
                let cond = self.function(f);
                if f.name == "size" {
                    self.misuse(&f.name);
                }
                self.checks.end_simple_condition();
                match cond {
                    Lowered::Cond(c) => c,
                    Lowered::Operand(_) => Cond::Refused,
                }
            }
        }
    }

    fn operand(&mut self, raw: &ROp) -> Operand {
        match raw {
            ROp::Path(path) => Operand::Path(self.checks.path(path, self.params)),
            ROp::Value(key) => Operand::Value(self.checks.value(key, self.params)),
            ROp::Func(f) => match self.function(f) {
                Lowered::Operand(op) => op,
                Lowered::Cond(_) => Operand::Value(AttrValue::Null),
            },
        }
    }

    fn misuse(&mut self, name: &str) {
        first(
            &mut self.checks.misused_function,
            format!("The function is not allowed to be used this way in an expression; function: {name}"),
        );
    }

    /// Only `size` may stand where an operand is expected.
    fn misused(&mut self, ops: &[&ROp]) {
        for op in ops {
            if let ROp::Func(f) = op {
                if f.name != "size" {
                    self.misuse(&f.name);
                    return;
                }
            }
        }
    }

    /// Comparing a path with itself is refused.
    fn distinct(&mut self, operator: &str, a: &ROp, b: &ROp) {
        if self.checks.distinct.is_some() {
            return;
        }
        if let (ROp::Path(x), ROp::Path(y)) = (a, b) {
            let (x, y) = (self.resolve_quietly(x), self.resolve_quietly(y));
            if x == y {
                self.checks.distinct = Some(format!(
                    "The first operand must be distinct from the remaining operands for this operator or function; operator: {operator}, first operand: {x}"
                ));
            }
        }
    }

    /// A path with its names substituted, for comparing paths; undefined names stay as
    /// written (their own failure is reported first).
    fn resolve_quietly(&self, raw: &[RElem]) -> Path {
        Path(
            raw.iter()
                .map(|e| match e {
                    RElem::Ident(n) => PathElem::Attr(n.clone()),
                    RElem::Name(k) => {
                        PathElem::Attr(self.params.names.get(k).cloned().unwrap_or(k.clone()))
                    }
                    RElem::Index(i) => PathElem::Index(*i),
                })
                .collect(),
        )
    }

    fn between_bounds(&mut self, lo: &Operand, hi: &Operand) {
        if self.checks.function.is_some() {
            return;
        }
        let (Operand::Value(lo), Operand::Value(hi)) = (lo, hi) else {
            return;
        };
        let bounds = format!(
            "lower bound operand: AttributeValue: {{{}:{}}}, upper bound operand: AttributeValue: {{{}:{}}}",
            lo.type_name(),
            show_scalar(lo),
            hi.type_name(),
            show_scalar(hi)
        );
        if lo.type_name() != hi.type_name() {
            self.checks.function = Some(format!(
                "The BETWEEN operator requires same data type for lower and upper bounds; {bounds}"
            ));
        } else if lo.compare(hi) == Some(Ordering::Greater) {
            self.checks.function = Some(format!(
                "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; {bounds}"
            ));
        }
    }

    /// Kept small: nested calls recurse through here, so the checks live in `finish_function`.
    fn function(&mut self, f: &RFunc) -> Lowered {
        let args: Vec<Operand> = f.args.iter().map(|a| self.operand(a)).collect();
        self.finish_function(f, args)
    }

    fn finish_function(&mut self, f: &RFunc, args: Vec<Operand>) -> Lowered {
        self.misused(&f.args.iter().collect::<Vec<_>>());
        let arity = match f.name.as_str() {
            "attribute_exists" | "attribute_not_exists" | "size" => 1,
            "attribute_type" | "begins_with" | "contains" => 2,
            _ => {
                first(
                    &mut self.checks.unknown_function,
                    format!("Invalid function name; function: {}", f.name),
                );
                return Lowered::Cond(Cond::Refused);
            }
        };
        if self.checks.operand.is_none() && args.len() != arity {
            self.checks.operand = Some(format!(
                "Incorrect number of operands for operator or function; operator or function: {}, number of operands: {}",
                f.name,
                args.len()
            ));
        }
        if self.checks.operand.is_some() {
            return Lowered::Cond(Cond::Refused);
        }
        if arity == 2 {
            self.distinct(&f.name, &f.args[0], &f.args[1]);
        }
        if self.checks.function.is_none() {
            if let Some(msg) = self.function_types(f, &args) {
                self.checks.function = Some(msg);
            }
        }
        let mut args = args.into_iter();
        let (Some(a), b) = (args.next(), args.next()) else {
            return Lowered::Cond(Cond::Refused);
        };
        let b = b.unwrap_or(Operand::Value(AttrValue::Null));
        Lowered::Cond(match f.name.as_str() {
            "attribute_exists" => Cond::Exists(a),
            "attribute_not_exists" => Cond::NotExists(a),
            "attribute_type" => Cond::Type(a, b),
            "begins_with" => Cond::BeginsWith(a, b),
            "contains" => Cond::Contains(a, b),
            _ => return Lowered::Operand(Operand::Size(Box::new(a))),
        })
    }

    /// The operand rules of each function, for the operands whose type is known already.
    fn function_types(&self, f: &RFunc, args: &[Operand]) -> Option<String> {
        let bad_type = |ty: &str| {
            Some(format!(
                "Incorrect operand type for operator or function; operator or function: {}, operand type: {ty}",
                f.name
            ))
        };
        let ty = |i: usize| known_type(&f.args[i], &args[i]);
        match f.name.as_str() {
            "attribute_exists" | "attribute_not_exists" => match args[0] {
                Operand::Path(_) => None,
                _ => Some(format!(
                    "Operator or function requires a document path; operator or function: {}",
                    f.name
                )),
            },
            "begins_with" => (0..2)
                .filter_map(ty)
                .find(|t| *t != "S" && *t != "B")
                .and_then(bad_type),
            "size" => ty(0)
                .filter(|t| matches!(*t, "N" | "BOOL" | "NULL"))
                .and_then(bad_type),
            "attribute_type" => match (ty(1), &args[1]) {
                (Some("S"), Operand::Value(AttrValue::S(name))) => {
                    if TYPE_NAMES.contains(&name.as_str()) {
                        None
                    } else {
                        Some(format!(
                            "Invalid attribute type name found; type: {name}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
                        ))
                    }
                }
                (Some(t), _) => bad_type(t),
                (None, _) => bad_type("{NS,SS,L,BS,N,M,B,BOOL,NULL,S}"),
            },
            _ => None,
        }
    }
}

enum Lowered {
    Cond(Cond),
    Operand(Operand),
}

/// A scalar as DynamoDB prints it inside `AttributeValue: {N:6}`.
fn show_scalar(v: &AttrValue) -> String {
    use base64::Engine;
    match v {
        AttrValue::S(s) => s.clone(),
        AttrValue::N(n) => n.to_string(),
        AttrValue::B(b) => base64::engine::general_purpose::STANDARD.encode(b),
        other => serde_json::to_string(&other.to_json()).unwrap_or_default(),
    }
}

/// Parses and checks a condition; `kind` only chooses the messages' prefix.
fn parse_cond(kind: Kind, text: &str, p: &mut Params) -> Result<Cond, DdbError> {
    precheck(kind, text, p.generated)?;
    let mut parser = Parser::new(text, CONDITION_KEYWORDS);
    parser.unlimited = p.generated;
    let result = parser.condition_expression();
    let raw = parser.finish(result).map_err(|m| kind.error(m))?;
    let mut lowering = CondLowering {
        checks: Checks::default(),
        params: p,
    };
    let root = lowering.cond(&raw);
    let checks = lowering.checks;
    checks.limits(kind)?;
    let parens = parser
        .redundant_parens
        .then(|| "The expression has redundant parentheses;".to_owned());
    Checks::report(
        kind,
        &[
            &parens,
            &checks.unknown_function,
            &checks.misused_function,
            &checks.reserved,
            &checks.condition,
        ],
    )?;
    Ok(root)
}

/// For ConditionExpression (Kind::Condition) and FilterExpression (Kind::Filter).
pub fn parse_condition(kind: Kind, text: &str, p: &mut Params) -> Result<Condition, DdbError> {
    Ok(Condition {
        root: parse_cond(kind, text, p)?,
    })
}

impl Condition {
    /// The top-level attribute names the condition reads (Query refuses a filter on a key).
    pub fn top_level_names(&self) -> std::collections::BTreeSet<String> {
        fn operand(o: &Operand, out: &mut std::collections::BTreeSet<String>) {
            match o {
                Operand::Path(p) => {
                    out.insert(p.top().to_string());
                }
                Operand::Size(inner) => operand(inner, out),
                Operand::Value(_) => {}
            }
        }
        fn cond(c: &Cond, out: &mut std::collections::BTreeSet<String>) {
            match c {
                Cond::Cmp(_, a, b)
                | Cond::Type(a, b)
                | Cond::BeginsWith(a, b)
                | Cond::Contains(a, b) => {
                    operand(a, out);
                    operand(b, out);
                }
                Cond::Between(a, b, c) => {
                    operand(a, out);
                    operand(b, out);
                    operand(c, out);
                }
                Cond::In(a, list) => {
                    operand(a, out);
                    list.iter().for_each(|o| operand(o, out));
                }
                Cond::Exists(a) | Cond::NotExists(a) => operand(a, out),
                Cond::And(a, b) | Cond::Or(a, b) => {
                    cond(a, out);
                    cond(b, out);
                }
                Cond::Not(a) => cond(a, out),
                Cond::Refused => {}
            }
        }
        let mut out = std::collections::BTreeSet::new();
        cond(&self.root, &mut out);
        out
    }

    pub fn eval(&self, item: &Item) -> bool {
        eval_cond(&self.root, item)
    }
}

fn resolve<'a>(op: &'a Operand, item: &'a Item) -> Option<Cow<'a, AttrValue>> {
    match op {
        Operand::Path(path) => path.get(item).map(Cow::Borrowed),
        Operand::Value(v) => Some(Cow::Borrowed(v)),
        Operand::Size(inner) => {
            let n = match resolve(inner, item)?.as_ref() {
                // DynamoDB counts a string's UTF-16 code units.
                AttrValue::S(s) => s.encode_utf16().count(),
                AttrValue::B(b) => b.len(),
                AttrValue::Ss(v) => v.len(),
                AttrValue::Ns(v) => v.len(),
                AttrValue::Bs(v) => v.len(),
                AttrValue::L(v) => v.len(),
                AttrValue::M(m) => m.len(),
                AttrValue::N(_) | AttrValue::Bool(_) | AttrValue::Null => return None,
            };
            let n = i64::try_from(n).ok()?;
            Some(Cow::Owned(AttrValue::N(crate::value::Number::from_i64(n))))
        }
    }
}

fn compare_values(op: CmpOp, a: &AttrValue, b: &AttrValue) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a.compare(b) == Some(Ordering::Less),
        CmpOp::Le => matches!(a.compare(b), Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => a.compare(b) == Some(Ordering::Greater),
        CmpOp::Ge => matches!(a.compare(b), Some(Ordering::Greater | Ordering::Equal)),
    }
}

fn begins_with(v: &AttrValue, prefix: &AttrValue) -> bool {
    match (v, prefix) {
        (AttrValue::S(s), AttrValue::S(p)) => s.starts_with(p.as_str()),
        (AttrValue::B(b), AttrValue::B(p)) => b.starts_with(p),
        _ => false,
    }
}

fn contains(v: &AttrValue, x: &AttrValue) -> bool {
    match (v, x) {
        (AttrValue::S(s), AttrValue::S(sub)) => s.contains(sub.as_str()),
        (AttrValue::B(b), AttrValue::B(sub)) => {
            sub.is_empty() || b.windows(sub.len()).any(|w| w == sub.as_slice())
        }
        (AttrValue::Ss(set), AttrValue::S(e)) => set.contains(e),
        (AttrValue::Ns(set), AttrValue::N(e)) => set.contains(e),
        (AttrValue::Bs(set), AttrValue::B(e)) => set.contains(e),
        (AttrValue::L(list), e) => list.contains(e),
        _ => false,
    }
}

fn eval_cond(cond: &Cond, item: &Item) -> bool {
    let get = |op| resolve(op, item);
    match cond {
        Cond::And(a, b) => eval_cond(a, item) && eval_cond(b, item),
        Cond::Or(a, b) => eval_cond(a, item) || eval_cond(b, item),
        Cond::Not(a) => !eval_cond(a, item),
        // `<>` holds when the attribute is missing: nothing equals it.
        Cond::Cmp(CmpOp::Ne, a, b) => match (get(a), get(b)) {
            (Some(x), Some(y)) => x != y,
            _ => true,
        },
        Cond::Cmp(op, a, b) => match (get(a), get(b)) {
            (Some(x), Some(y)) => compare_values(*op, &x, &y),
            _ => false,
        },
        Cond::Between(a, lo, hi) => match (get(a), get(lo), get(hi)) {
            (Some(x), Some(lo), Some(hi)) => {
                compare_values(CmpOp::Ge, &x, &lo) && compare_values(CmpOp::Le, &x, &hi)
            }
            _ => false,
        },
        Cond::In(a, list) => match get(a) {
            Some(x) => list.iter().any(|op| get(op).is_some_and(|y| *x == *y)),
            None => false,
        },
        Cond::Exists(a) => get(a).is_some(),
        Cond::NotExists(a) => get(a).is_none(),
        Cond::Type(a, t) => match (get(a), get(t)) {
            (Some(x), Some(t)) => matches!(t.as_ref(), AttrValue::S(t) if t == x.type_name()),
            _ => false,
        },
        Cond::BeginsWith(a, p) => match (get(a), get(p)) {
            (Some(x), Some(p)) => begins_with(&x, &p),
            _ => false,
        },
        Cond::Contains(a, e) => match (get(a), get(e)) {
            (Some(x), Some(e)) => contains(&x, &e),
            _ => false,
        },
        Cond::Refused => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Update expressions
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum UOperand {
    Path(Path),
    Value(AttrValue),
    IfNotExists(Path, Box<UOperand>),
    ListAppend(Box<UOperand>, Box<UOperand>),
    /// Stands in for a call the checks refused; a refused expression is never applied.
    Refused,
}

#[derive(Clone, Debug)]
enum SetValue {
    Single(UOperand),
    Plus(UOperand, UOperand),
    Minus(UOperand, UOperand),
}

#[derive(Clone, Debug)]
enum Action {
    Set(Path, SetValue),
    Remove(Path),
    Add(Path, AttrValue),
    Delete(Path, AttrValue),
}

impl Action {
    fn path(&self) -> &Path {
        match self {
            Action::Set(p, _) | Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _) => p,
        }
    }
}

/// A parsed UpdateExpression.
#[derive(Clone, Debug)]
pub struct Update {
    actions: Vec<Action>,
}

struct UpdateLowering<'p> {
    checks: Checks,
    params: &'p mut Params,
}

impl UpdateLowering<'_> {
    fn action(&mut self, raw: &RAction) -> Action {
        match raw {
            RAction::Set(path, value) => {
                let path = self.checks.path(path, self.params);
                let value = match value {
                    RSetValue::Single(a) => SetValue::Single(self.operand(a)),
                    RSetValue::Plus(a, b) | RSetValue::Minus(a, b) => {
                        let plus = matches!(value, RSetValue::Plus(..));
                        let (x, y) = (self.operand(a), self.operand(b));
                        let op = if plus { "+" } else { "-" };
                        self.function_rule(self.arithmetic_rule(op, &[&x, &y]));
                        if plus {
                            SetValue::Plus(x, y)
                        } else {
                            SetValue::Minus(x, y)
                        }
                    }
                };
                Action::Set(path, value)
            }
            RAction::Remove(path) => Action::Remove(self.checks.path(path, self.params)),
            RAction::Add(path, key) | RAction::Delete(path, key) => {
                let add = matches!(raw, RAction::Add(..));
                let path = self.checks.path(path, self.params);
                let value = self.checks.value(key, self.params);
                let shown = match &value {
                    AttrValue::S(_) => Some("STRING"),
                    AttrValue::N(_) if !add => Some("NUMBER"),
                    AttrValue::B(_) => Some("BINARY"),
                    AttrValue::Null => Some("NULL"),
                    AttrValue::Bool(_) => Some("BOOLEAN"),
                    AttrValue::L(_) => Some("LIST"),
                    AttrValue::M(_) => Some("MAP"),
                    _ => None,
                };
                let keyword = if add { "ADD" } else { "DELETE" };
                if let Some(ty) = shown {
                    first(
                        &mut self.checks.operand,
                        format!("Incorrect operand type for operator or function; operator: {keyword}, operand type: {ty}"),
                    );
                }
                if add {
                    Action::Add(path, value)
                } else {
                    Action::Delete(path, value)
                }
            }
        }
    }

    fn operand(&mut self, raw: &ROp) -> UOperand {
        match raw {
            ROp::Path(path) => UOperand::Path(self.checks.path(path, self.params)),
            ROp::Value(key) => UOperand::Value(self.checks.value(key, self.params)),
            ROp::Func(f) => self.function(f),
        }
    }

    fn function_rule(&mut self, msg: Option<String>) {
        if let Some(msg) = msg {
            first(&mut self.checks.function, msg);
        }
    }

    /// `+`, `-` and `list_append` refuse a value placeholder of the wrong type outright.
    fn arithmetic_rule(&self, name: &str, args: &[&UOperand]) -> Option<String> {
        let wanted = if name == "list_append" { "L" } else { "N" };
        args.iter().find_map(|a| match a {
            UOperand::Value(v) if v.type_name() != wanted => Some(format!(
                "Incorrect operand type for operator or function; operator or function: {name}, operand type: {}",
                v.type_name()
            )),
            _ => None,
        })
    }

    /// Kept small: nested calls recurse through here, so the checks live in `finish_function`.
    fn function(&mut self, f: &RFunc) -> UOperand {
        let args: Vec<UOperand> = f.args.iter().map(|a| self.operand(a)).collect();
        self.finish_function(f, args)
    }

    fn finish_function(&mut self, f: &RFunc, mut args: Vec<UOperand>) -> UOperand {
        if !matches!(f.name.as_str(), "if_not_exists" | "list_append") {
            first(
                &mut self.checks.unknown_function,
                format!("Invalid function name; function: {}", f.name),
            );
            return UOperand::Refused;
        }
        if args.len() != 2 {
            self.function_rule(Some(format!(
                "Incorrect number of operands for operator or function; operator or function: {}, number of operands: {}",
                f.name,
                args.len()
            )));
            return UOperand::Refused;
        }
        let (Some(b), Some(a)) = (args.pop(), args.pop()) else {
            return UOperand::Refused;
        };
        if f.name == "list_append" {
            self.function_rule(self.arithmetic_rule("list_append", &[&a, &b]));
            return UOperand::ListAppend(Box::new(a), Box::new(b));
        }
        match a {
            UOperand::Path(path) => UOperand::IfNotExists(path, Box::new(b)),
            _ => {
                self.function_rule(Some(
                    "Operator or function requires a document path; operator or function: if_not_exists".to_owned(),
                ));
                UOperand::Refused
            }
        }
    }
}

pub fn parse_update(text: &str, p: &mut Params) -> Result<Update, DdbError> {
    let kind = Kind::Update;
    precheck(kind, text, p.generated)?;
    let mut parser = Parser::new(text, UPDATE_KEYWORDS);
    parser.unlimited = p.generated;
    let result = parser.update_expression();
    let sections = parser.finish(result).map_err(|m| kind.error(m))?;
    let mut lowering = UpdateLowering {
        checks: Checks::default(),
        params: p,
    };
    let mut seen = Vec::new();
    let mut actions = Vec::new();
    for (section, raw_actions) in &sections {
        if seen.contains(section) {
            first(
                &mut lowering.checks.section,
                format!(
                    "The \"{}\" section can only be used once in an update expression;",
                    section.keyword()
                ),
            );
        }
        seen.push(*section);
        actions.extend(raw_actions.iter().map(|a| lowering.action(a)));
    }
    let mut checks = lowering.checks;
    let paths: Vec<Path> = actions.iter().map(|a| a.path().clone()).collect();
    check_paths(&paths, &mut checks);
    checks.limits(kind)?;
    Checks::report(
        kind,
        &[
            &checks.reserved,
            &checks.unknown_function,
            &checks.section,
            &checks.undefined_name,
            &checks.undefined_value,
            &checks.overlap,
            &checks.conflict,
            &checks.operand,
            &checks.function,
        ],
    )?;
    Ok(Update { actions })
}

fn missing_attribute() -> DdbError {
    DdbError::validation(
        "The provided expression refers to an attribute that does not exist in the item",
    )
}

fn wrong_type() -> DdbError {
    DdbError::validation("An operand in the update expression has an incorrect data type")
}

fn invalid_path() -> DdbError {
    DdbError::validation(
        "The document path provided in the update expression is invalid for update",
    )
}

fn eval_update_operand(op: &UOperand, item: &Item) -> Result<AttrValue, DdbError> {
    match op {
        UOperand::Path(path) => path.get(item).cloned().ok_or_else(missing_attribute),
        UOperand::Value(v) => Ok(v.clone()),
        UOperand::IfNotExists(path, default) => match path.get(item) {
            Some(v) => Ok(v.clone()),
            None => eval_update_operand(default, item),
        },
        UOperand::ListAppend(a, b) => {
            match (eval_update_operand(a, item)?, eval_update_operand(b, item)?) {
                (AttrValue::L(mut a), AttrValue::L(b)) => {
                    a.extend(b);
                    Ok(AttrValue::L(a))
                }
                _ => Err(wrong_type()),
            }
        }
        UOperand::Refused => Err(wrong_type()),
    }
}

fn eval_set_value(value: &SetValue, item: &Item) -> Result<AttrValue, DdbError> {
    let (a, b, plus) = match value {
        SetValue::Single(op) => return eval_update_operand(op, item),
        SetValue::Plus(a, b) => (a, b, true),
        SetValue::Minus(a, b) => (a, b, false),
    };
    match (eval_update_operand(a, item)?, eval_update_operand(b, item)?) {
        (AttrValue::N(a), AttrValue::N(b)) => {
            Ok(AttrValue::N(if plus { a.add(&b)? } else { a.sub(&b)? }))
        }
        _ => Err(wrong_type()),
    }
}

fn union<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out = a.to_vec();
    for x in b {
        if !out.contains(x) {
            out.push(x.clone());
        }
    }
    out
}

fn difference<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    a.iter().filter(|x| !b.contains(x)).cloned().collect()
}

/// ADD: numbers are summed (a missing attribute counts as 0), sets are joined.
fn add_value(current: Option<&AttrValue>, v: &AttrValue) -> Result<AttrValue, DdbError> {
    Ok(match (current, v) {
        (None, v) => v.clone(),
        (Some(AttrValue::N(a)), AttrValue::N(b)) => AttrValue::N(a.add(b)?),
        (Some(AttrValue::Ss(a)), AttrValue::Ss(b)) => AttrValue::Ss(union(a, b)),
        (Some(AttrValue::Ns(a)), AttrValue::Ns(b)) => AttrValue::Ns(union(a, b)),
        (Some(AttrValue::Bs(a)), AttrValue::Bs(b)) => AttrValue::Bs(union(a, b)),
        _ => return Err(wrong_type()),
    })
}

/// DELETE: the set without `v`'s elements, or `None` when nothing is left (DynamoDB keeps no
/// empty sets, so the attribute goes).
fn delete_values(current: &AttrValue, v: &AttrValue) -> Result<Option<AttrValue>, DdbError> {
    let rest = match (current, v) {
        (AttrValue::Ss(a), AttrValue::Ss(b)) => AttrValue::Ss(difference(a, b)),
        (AttrValue::Ns(a), AttrValue::Ns(b)) => AttrValue::Ns(difference(a, b)),
        (AttrValue::Bs(a), AttrValue::Bs(b)) => AttrValue::Bs(difference(a, b)),
        _ => return Err(wrong_type()),
    };
    let empty = match &rest {
        AttrValue::Ss(s) => s.is_empty(),
        AttrValue::Ns(s) => s.is_empty(),
        AttrValue::Bs(s) => s.is_empty(),
        _ => false,
    };
    Ok((!empty).then_some(rest))
}

fn get_mut<'a>(item: &'a mut Item, elems: &[PathElem]) -> Option<&'a mut AttrValue> {
    let (first, rest) = elems.split_first()?;
    let mut cur = match first {
        PathElem::Attr(name) => item.get_mut(name)?,
        PathElem::Index(_) => return None,
    };
    for elem in rest {
        cur = match (elem, cur) {
            (PathElem::Attr(name), AttrValue::M(m)) => m.get_mut(name)?,
            (PathElem::Index(i), AttrValue::L(l)) => l.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// A nested path can be written or removed only where its parent exists as the right kind of
/// container: a map for `.name`, a list for `[n]`.
fn check_parent(item: &Item, path: &Path) -> Result<(), DdbError> {
    let Some((last, parents)) = path.0.split_last() else {
        return Err(invalid_path());
    };
    if parents.is_empty() {
        return Ok(());
    }
    match (last, Path(parents.to_vec()).get(item)) {
        (PathElem::Attr(_), Some(AttrValue::M(_)))
        | (PathElem::Index(_), Some(AttrValue::L(_))) => Ok(()),
        _ => Err(invalid_path()),
    }
}

fn write(item: &mut Item, path: &Path, value: AttrValue) -> Result<(), DdbError> {
    let Some((last, parents)) = path.0.split_last() else {
        return Err(invalid_path());
    };
    if parents.is_empty() {
        return match last {
            PathElem::Attr(name) => {
                item.insert(name.clone(), value);
                Ok(())
            }
            PathElem::Index(_) => Err(invalid_path()),
        };
    }
    match (last, get_mut(item, parents)) {
        (PathElem::Attr(name), Some(AttrValue::M(m))) => {
            m.insert(name.clone(), value);
        }
        // Past the end, SET appends.
        (PathElem::Index(i), Some(AttrValue::L(l))) => match l.get_mut(*i) {
            Some(slot) => *slot = value,
            None => l.push(value),
        },
        _ => return Err(invalid_path()),
    }
    Ok(())
}

fn remove(item: &mut Item, path: &Path) {
    let Some((last, parents)) = path.0.split_last() else {
        return;
    };
    if parents.is_empty() {
        if let PathElem::Attr(name) = last {
            item.remove(name);
        }
        return;
    }
    match (last, get_mut(item, parents)) {
        (PathElem::Attr(name), Some(AttrValue::M(m))) => {
            m.remove(name);
        }
        (PathElem::Index(i), Some(AttrValue::L(l))) if *i < l.len() => {
            l.remove(*i);
        }
        _ => {}
    }
}

impl Update {
    /// Applies every action to `item` (which may be empty for an item that does not exist yet).
    /// All operands are evaluated against the item as it was BEFORE the update, and list
    /// indexes mean positions in the list as it was; on error `item` is left unchanged.
    pub fn apply(&self, item: &mut Item) -> Result<(), DdbError> {
        let old: &Item = item;
        let mut writes: Vec<(&Path, AttrValue)> = Vec::new();
        let mut removes: Vec<&Path> = Vec::new();
        for action in &self.actions {
            match action {
                Action::Set(path, value) => writes.push((path, eval_set_value(value, old)?)),
                Action::Remove(path) => {
                    check_parent(old, path)?;
                    if path.get(old).is_some() {
                        removes.push(path);
                    }
                }
                Action::Add(path, v) => {
                    check_parent(old, path)?;
                    writes.push((path, add_value(path.get(old), v)?));
                }
                Action::Delete(path, v) => {
                    check_parent(old, path)?;
                    if let Some(current) = path.get(old) {
                        match delete_values(current, v)? {
                            Some(rest) => writes.push((path, rest)),
                            None => removes.push(path),
                        }
                    }
                }
            }
        }
        let mut new = old.clone();
        // In path order, several appends to one list land in index order, as DynamoDB documents.
        // No two paths overlap, so no write creates or replaces another's container.
        writes.sort_by(|a, b| a.0.cmp(b.0));
        for (path, value) in writes {
            write(&mut new, path, value)?;
        }
        // Highest index first, so each removal leaves the positions still to remove in place.
        removes.sort_by(|a, b| b.cmp(a));
        for path in removes {
            remove(&mut new, path);
        }
        *item = new;
        Ok(())
    }

    /// The paths this update writes or removes (for ReturnValues UPDATED_OLD/UPDATED_NEW and for
    /// refusing updates of key attributes).
    pub fn paths(&self) -> Vec<Path> {
        self.actions.iter().map(|a| a.path().clone()).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Projection expressions
// ---------------------------------------------------------------------------------------------

pub fn parse_projection(text: &str, p: &mut Params) -> Result<Vec<Path>, DdbError> {
    let kind = Kind::Projection;
    precheck(kind, text, p.generated)?;
    // A projection has no keywords of its own: every word is an attribute name.
    let mut parser = Parser::new(text, &[]);
    let result = parser.projection_expression();
    let raw = parser.finish(result).map_err(|m| kind.error(m))?;
    let mut checks = Checks::default();
    let paths: Vec<Path> = raw.iter().map(|path| checks.path(path, p)).collect();
    check_paths(&paths, &mut checks);
    Checks::report(
        kind,
        &[
            &checks.reserved,
            &checks.undefined_name,
            &checks.overlap,
            &checks.conflict,
        ],
    )?;
    Ok(paths)
}

enum Node {
    Whole(AttrValue),
    Map(BTreeMap<String, Node>),
    List(BTreeMap<usize, Node>),
}

impl Node {
    fn for_elem(elem: &PathElem) -> Node {
        match elem {
            PathElem::Attr(_) => Node::Map(BTreeMap::new()),
            PathElem::Index(_) => Node::List(BTreeMap::new()),
        }
    }

    fn into_value(self) -> AttrValue {
        match self {
            Node::Whole(v) => v,
            Node::Map(m) => AttrValue::M(m.into_iter().map(|(k, n)| (k, n.into_value())).collect()),
            Node::List(l) => AttrValue::L(l.into_values().map(Node::into_value).collect()),
        }
    }
}

/// The item reduced to these paths, nested maps and lists kept as DynamoDB returns them
/// (list elements picked by index are returned compacted in index order).
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut root = Node::Map(BTreeMap::new());
    for path in paths {
        let Some(value) = path.get(item) else {
            continue;
        };
        let mut node = &mut root;
        for (i, elem) in path.0.iter().enumerate() {
            let next = path.0.get(i + 1);
            let child = |next: Option<&PathElem>| match next {
                None => Node::Whole(value.clone()),
                Some(e) => Node::for_elem(e),
            };
            node = match (elem, node) {
                (PathElem::Attr(k), Node::Map(m)) if next.is_none() => {
                    m.insert(k.clone(), child(None));
                    break;
                }
                (PathElem::Index(ix), Node::List(l)) if next.is_none() => {
                    l.insert(*ix, child(None));
                    break;
                }
                (PathElem::Attr(k), Node::Map(m)) => {
                    m.entry(k.clone()).or_insert_with(|| child(next))
                }
                (PathElem::Index(ix), Node::List(l)) => l.entry(*ix).or_insert_with(|| child(next)),
                // Already taken whole by a shorter path, or (only for paths not checked by
                // parse_projection) a map and a list at the same place: the first one stays.
                _ => break,
            };
        }
    }
    match root.into_value() {
        AttrValue::M(m) => m,
        _ => Item::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Key condition expressions
// ---------------------------------------------------------------------------------------------

/// The condition a Query puts on the sort key (or, `Eq` only, on the partition key).
#[derive(Clone, Debug, PartialEq)]
pub enum RangeOp {
    Eq(AttrValue),
    Lt(AttrValue),
    Le(AttrValue),
    Gt(AttrValue),
    Ge(AttrValue),
    Between(AttrValue, AttrValue),
    BeginsWith(AttrValue),
}

impl RangeOp {
    pub fn matches(&self, v: &AttrValue) -> bool {
        match self {
            RangeOp::Eq(x) => v == x,
            RangeOp::Lt(x) => compare_values(CmpOp::Lt, v, x),
            RangeOp::Le(x) => compare_values(CmpOp::Le, v, x),
            RangeOp::Gt(x) => compare_values(CmpOp::Gt, v, x),
            RangeOp::Ge(x) => compare_values(CmpOp::Ge, v, x),
            RangeOp::Between(lo, hi) => {
                compare_values(CmpOp::Ge, v, lo) && compare_values(CmpOp::Le, v, hi)
            }
            RangeOp::BeginsWith(prefix) => begins_with(v, prefix),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct KeyCondition {
    pub hash: (String, AttrValue),
    pub range: Option<(String, RangeOp)>,
}

/// KeyConditionExpression, validated against the table's or index's key names, with DynamoDB's
/// messages. The key attributes' types are not known here; the caller checks the values'.
pub fn parse_key_condition(
    text: &str,
    p: &mut Params,
    hash_key: &str,
    range_key: Option<&str>,
) -> Result<KeyCondition, DdbError> {
    let cond = parse_cond(Kind::KeyCondition, text, p)?;
    let mut conds = Vec::new();
    key_conditions(&cond, &mut conds)?;
    if conds.len() != 1 && conds.len() != 2 {
        return Err(DdbError::validation(
            "Conditions can be of length 1 or 2 only",
        ));
    }
    let not_supported = || DdbError::validation("Query key condition not supported");
    let missed = |key: &str| {
        DdbError::validation(format!("Query condition missed key schema element: {key}"))
    };
    if range_key.is_none() && conds.len() > 1 {
        return Err(not_supported());
    }
    let several = conds.len() > 1;
    let take = |conds: &mut Vec<(String, RangeOp)>, key: &str| {
        let i = conds.iter().position(|(name, _)| name == key)?;
        Some(conds.swap_remove(i))
    };
    let hash = match take(&mut conds, hash_key) {
        Some((name, RangeOp::Eq(v))) => (name, v),
        Some(_) => return Err(not_supported()),
        None => return Err(missed(hash_key)),
    };
    let range = match range_key {
        None => None,
        Some(key) => match take(&mut conds, key) {
            Some(cond) => Some(cond),
            None if several => return Err(missed(key)),
            None => None,
        },
    };
    Ok(KeyCondition { hash, range })
}

fn key_conditions(cond: &Cond, out: &mut Vec<(String, RangeOp)>) -> Result<(), DdbError> {
    let invalid_operator = |name: &str| {
        Err(DdbError::validation(format!(
            "Invalid operator used in KeyConditionExpression: {name}"
        )))
    };
    let first_operand = |name: &str| {
        Err(DdbError::validation(format!(
            "Invalid condition in KeyConditionExpression: {name} operator must have the key attribute as its first operand"
        )))
    };
    match cond {
        Cond::And(a, b) => {
            key_conditions(a, out)?;
            key_conditions(b, out)
        }
        Cond::Or(..) => invalid_operator("OR"),
        Cond::Not(_) => invalid_operator("NOT"),
        Cond::In(..) => invalid_operator("IN"),
        Cond::Cmp(CmpOp::Ne, ..) => invalid_operator("<>"),
        Cond::Exists(_) => invalid_operator("attribute_exists"),
        Cond::NotExists(_) => invalid_operator("attribute_not_exists"),
        Cond::Type(..) => invalid_operator("attribute_type"),
        Cond::Contains(..) => invalid_operator("contains"),
        // Only a refused call leaves this, and parse_cond has reported it already.
        Cond::Refused => invalid_operator("size"),
        Cond::Between(a, lo, hi) => {
            if !matches!(a, Operand::Path(_)) {
                return first_operand("BETWEEN");
            }
            let (key, mut values) = key_operands(&[a, lo, hi], out)?;
            let hi = values.pop().unwrap_or(AttrValue::Null);
            let lo = values.pop().unwrap_or(AttrValue::Null);
            out.push((key, RangeOp::Between(lo, hi)));
            Ok(())
        }
        Cond::BeginsWith(a, prefix) => {
            if !matches!(a, Operand::Path(_)) {
                return first_operand("begins_with");
            }
            let (key, mut values) = key_operands(&[a, prefix], out)?;
            let prefix = values.pop().unwrap_or(AttrValue::Null);
            out.push((key, RangeOp::BeginsWith(prefix)));
            Ok(())
        }
        Cond::Cmp(op, a, b) => key_comparison(*op, a, b, out),
    }
}

fn key_comparison(
    op: CmpOp,
    a: &Operand,
    b: &Operand,
    out: &mut Vec<(String, RangeOp)>,
) -> Result<(), DdbError> {
    let key_on_right = matches!(b, Operand::Path(_)) && !matches!(a, Operand::Path(_));
    let (key, mut values) = key_operands(&[a, b], out)?;
    let op = if key_on_right { op.flipped() } else { op };
    let v = values.pop().unwrap_or(AttrValue::Null);
    out.push((
        key,
        match op {
            CmpOp::Eq | CmpOp::Ne => RangeOp::Eq(v),
            CmpOp::Lt => RangeOp::Lt(v),
            CmpOp::Le => RangeOp::Le(v),
            CmpOp::Gt => RangeOp::Gt(v),
            CmpOp::Ge => RangeOp::Ge(v),
        },
    ));
    Ok(())
}

/// The one key attribute a simple key condition names, and its values in order.
fn key_operands(
    operands: &[&Operand],
    out: &[(String, RangeOp)],
) -> Result<(String, Vec<AttrValue>), DdbError> {
    let mut key: Option<&Path> = None;
    let mut values = Vec::new();
    for op in operands {
        match op {
            Operand::Path(path) => {
                if key.is_some() {
                    return Err(DdbError::validation(
                        "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
                    ));
                }
                if path.0.len() > 1 {
                    return Err(DdbError::validation(
                        "KeyConditionExpressions cannot have conditions on nested attributes",
                    ));
                }
                key = Some(path);
            }
            Operand::Size(_) => {
                return Err(DdbError::validation(
                    "KeyConditionExpressions cannot contain nested operations",
                ))
            }
            Operand::Value(v) => values.push(v.clone()),
        }
    }
    let Some(key) = key else {
        return Err(DdbError::validation(
            "Invalid condition in KeyConditionExpression: No key attribute specified",
        ));
    };
    let name = key.top().to_owned();
    if out.iter().any(|(n, _)| *n == name) {
        return Err(DdbError::validation(
            "KeyConditionExpressions must only contain one condition per key",
        ));
    }
    Ok((name, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{item_from_json, item_to_json};
    use serde_json::json;

    fn item(v: Json) -> Item {
        item_from_json(v.as_object().expect("test items are objects"))
            .expect("test items are valid")
    }

    fn show(item: &Item) -> Json {
        Json::Object(item_to_json(item))
    }

    fn params(names: Json, values: Json) -> Params {
        let mut req = serde_json::Map::new();
        if !names.is_null() {
            req.insert("ExpressionAttributeNames".into(), names);
        }
        if !values.is_null() {
            req.insert("ExpressionAttributeValues".into(), values);
        }
        Params::from_request(&Json::Object(req)).expect("test params are valid")
    }

    fn message<R>(r: Result<R, DdbError>) -> String {
        match r {
            Ok(_) => "<ok>".to_owned(),
            Err(e) => e.to_string(),
        }
    }

    /// Names and values shared by the condition tables.
    fn condition_params() -> Params {
        params(
            json!({"#st": "status", "#k": "k", "#a": "a", "#m": "m"}),
            json!({
                ":s": {"S": "hello"}, ":hel": {"S": "hel"}, ":x": {"S": "x"}, ":a": {"S": "a"},
                ":v": {"S": "v"}, ":active": {"S": "active"},
                ":n1": {"N": "1"}, ":two": {"N": "2"}, ":n3": {"N": "3"}, ":n9": {"N": "9"},
                ":n10": {"N": "10"}, ":n11": {"N": "11"}, ":n6": {"N": "6"}, ":d": {"N": "1.5"},
                ":big0": {"N": "12345678901234567890123456789012345677"},
                ":b": {"B": "AQID"}, ":b1": {"B": "AQ=="}, ":ss": {"SS": ["b", "a"]},
                ":ns": {"NS": ["2", "1"]}, ":true": {"BOOL": true}, ":null": {"NULL": true},
                ":tS": {"S": "S"}, ":tN": {"S": "N"}, ":tL": {"S": "L"}, ":tX": {"S": "X"},
                ":m": {"M": {"k": {"S": "v"}}}, ":l": {"L": []},
            }),
        )
    }

    fn condition_item() -> Item {
        item(json!({
            "s": {"S": "hello"}, "n": {"N": "10"}, "d": {"N": "1.50"}, "b": {"B": "AQID"},
            "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]}, "bs": {"BS": ["AQ=="]},
            "l": {"L": [{"S": "x"}, {"N": "2"}, {"M": {"k": {"S": "v"}}}]},
            "m": {"M": {"k": {"S": "v"}, "deep": {"L": [{"N": "1"}]}}},
            "t": {"BOOL": true}, "z": {"NULL": true}, "status": {"S": "active"},
            "u": {"S": "\u{e9}\u{1d11e}"},
            "big": {"N": "12345678901234567890123456789012345678"},
        }))
    }

    #[test]
    fn conditions_evaluate_as_dynamodb_does() {
        let cases: &[(&str, bool)] = &[
            // Equality and inequality: types must match, numbers compare by value.
            ("s = :s", true),
            ("s = :hel", false),
            ("s <> :hel", true),
            ("d = :d", true),
            ("n = :s", false),
            ("n <> :s", true),
            ("ss = :ss", true),
            ("ns = :ns", true),
            ("t = :true", true),
            ("z = :null", true),
            ("m = :m", false),
            ("l[2] = :m", true),
            // A missing attribute makes a comparison false, and `<>` true.
            ("nope = :s", false),
            ("nope <> :s", true),
            ("nope < :n1", false),
            // Ordering only between strings, numbers and binaries of one type.
            ("n < :n11", true),
            ("n > :n11", false),
            ("n >= :n10", true),
            ("n <= :n9", false),
            ("s < :n10", false),
            ("s > :hel", true),
            ("t < :true", false),
            ("big > :big0", true),
            ("n BETWEEN :n9 AND :n11", true),
            ("n between :n11 and :n11", false),
            ("s BETWEEN :a AND :x", true),
            ("s BETWEEN :n1 AND :n11", false),
            ("n IN (:n9, :n10)", true),
            ("n in (:n9, :n11)", false),
            ("nope IN (:n9)", false),
            // Functions.
            ("attribute_exists(s)", true),
            ("attribute_exists(nope)", false),
            ("attribute_not_exists(nope)", true),
            ("attribute_exists(m.k)", true),
            ("attribute_exists(m.nope)", false),
            ("attribute_exists(l[2].k)", true),
            ("attribute_exists(l[3])", false),
            ("attribute_exists(s.k)", false),
            ("attribute_exists(s[0])", false),
            ("attribute_type(s, :tS)", true),
            ("attribute_type(n, :tN)", true),
            ("attribute_type(l, :tL)", true),
            ("attribute_type(m, :tS)", false),
            ("attribute_type(nope, :tS)", false),
            ("begins_with(s, :hel)", true),
            ("begins_with(s, :x)", false),
            ("begins_with(b, :b1)", true),
            ("begins_with(n, :hel)", false),
            ("contains(s, :hel)", true),
            ("contains(ss, :a)", true),
            ("contains(ss, :x)", false),
            ("contains(ns, :two)", true),
            ("contains(bs, :b1)", true),
            ("contains(l, :x)", true),
            ("contains(l, :m)", true),
            ("contains(l, :n3)", false),
            ("contains(n, :n1)", false),
            ("contains(b, :b1)", true),
            // size counts UTF-16 code units of strings, bytes, and elements.
            ("size(s) = :n1", false),
            ("size(u) = :n3", true),
            ("size(ss) = :two", true),
            ("size(l) = :n3", true),
            ("size(m) = :two", true),
            ("size(b) = :n3", true),
            ("size(n) = :n1", false),
            ("size(nope) < :n1", false),
            ("size(s) > size(ss)", true),
            // NOT binds tighter than AND, AND tighter than OR; keywords ignore case.
            ("NOT s = :s", false),
            ("NOT NOT s = :s", true),
            ("s = :s AND n = :n9", false),
            ("s = :s OR n = :n9", true),
            ("s = :s OR s = :hel AND n = :n9", true),
            ("NOT s = :s AND n = :n9", false),
            ("NOT (s = :s AND n = :n9)", true),
            ("(s = :s OR s = :hel) AND n = :n9", false),
            ("s = :s and not n = :n9", true),
            ("n BeTwEeN :n9 aNd :n11 AND s = :s", true),
            // Paths: placeholders, nesting, indexes, parentheses around operands.
            ("#st = :active", true),
            ("m.deep[0] = :n1", true),
            ("#m.#k = :v", true),
            ("m . deep [ 0 ] = :n1", true),
            ("l[1] = :two", true),
            ("(s) = :s", true),
            ("(m).k = :v", true),
            ("(size(s)) > :n1", true),
            ("(s = :s)", true),
        ];
        let item = condition_item();
        for (expr, want) in cases {
            let mut p = condition_params();
            let cond = parse_condition(Kind::Filter, expr, &mut p)
                .unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(cond.eval(&item), *want, "{expr}");
        }
    }

    #[test]
    fn bad_conditions_get_dynamodb_messages() {
        let big = format!("a = :v{}", " ".repeat(4091));
        let in_101 = format!(
            "a IN ({})",
            std::iter::repeat_n(":v", 101).collect::<Vec<_>>().join(",")
        );
        let ops_301 = std::iter::repeat_n("a = :v", 151)
            .collect::<Vec<_>>()
            .join(" AND ");
        let deep_not = format!("{}a = :v", "NOT ".repeat(700));
        let deep_parens = format!("{}a = :v{}", "(".repeat(1000), ")".repeat(1000));
        let cases: Vec<(Kind, &str, &str)> = vec![
            (Kind::Condition, "", "Invalid ConditionExpression: The expression can not be empty;"),
            (Kind::Filter, "   ", "Invalid FilterExpression: Syntax error; token: \"<EOF>\", near: \"\""),
            (Kind::Condition, &big, "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: 4097"),
            // Syntax errors name the token and the source around it.
            (Kind::Filter, "a > 4", "Invalid FilterExpression: Syntax error; token: \"4\", near: \"> 4\""),
            (Kind::Filter, "things are not gonna be ok", "Invalid FilterExpression: Syntax error; token: \"are\", near: \"things are not\""),
            (Kind::Condition, "a = ", "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"= \""),
            (Kind::Condition, "a = :v AND", "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"AND\""),
            (Kind::Filter, "attribute_exists(Pictures-RearView)", "Invalid FilterExpression: Syntax error; token: \"-\", near: \"Pictures-RearView\""),
            (Kind::Filter, "a in (b,c,)", "Invalid FilterExpression: Syntax error; token: \")\", near: \",)\""),
            (Kind::Filter, "a in b", "Invalid FilterExpression: Syntax error; token: \"b\", near: \"in b\""),
            (Kind::Filter, "\u{fc} > a", "Invalid FilterExpression: Syntax error; token: \"\u{fc}\", near: \"\u{fc} >\""),
            (Kind::Filter, "#articleId attribute_not_exists :v", "Invalid FilterExpression: Syntax error; token: \"attribute_not_exists\", near: \"#articleId attribute_not_exists :v\""),
            (Kind::Filter, "size(a).b > a", "Invalid FilterExpression: Syntax error; token: \".\", near: \").b\""),
            (Kind::Filter, "a = :v and = :v", "Invalid FilterExpression: Syntax error; token: \"=\", near: \"and = :v\""),
            (Kind::Filter, "b[:v] > a", "Invalid FilterExpression: Syntax error; token: \":v\", near: \"[:v]\""),
            // Redundant parentheses outrank every other rule.
            (Kind::Filter, "((a = :v))", "Invalid FilterExpression: The expression has redundant parentheses;"),
            (Kind::Filter, "a=a and a > ((views))", "Invalid FilterExpression: The expression has redundant parentheses;"),
            (Kind::Filter, "a=a OR ((a=a OR a=a)) OR a=a", "Invalid FilterExpression: The expression has redundant parentheses;"),
            (Kind::Filter, "a > whatever((:things), ((a)))", "Invalid FilterExpression: The expression has redundant parentheses;"),
            (Kind::Filter, &deep_parens, "Invalid FilterExpression: The expression has redundant parentheses;"),
            // Functions.
            (Kind::Filter, "a=a and whatever((:things)) > a", "Invalid FilterExpression: Invalid function name; function: whatever"),
            (Kind::Condition, "if_not_exists(a, :v)", "Invalid ConditionExpression: Invalid function name; function: if_not_exists"),
            (Kind::Filter, "attRIbute_exIsts((views), #a)", "Invalid FilterExpression: Invalid function name; function: attRIbute_exIsts"),
            (Kind::Filter, "a=a and attribute_exists((views), (#zz)) > b", "Invalid FilterExpression: The function is not allowed to be used this way in an expression; function: attribute_exists"),
            (Kind::Filter, "size(things)", "Invalid FilterExpression: The function is not allowed to be used this way in an expression; function: size"),
            (Kind::Filter, "size(contains(a, b)) > a", "Invalid FilterExpression: The function is not allowed to be used this way in an expression; function: contains"),
            (Kind::Filter, "a in (b, attribute_exists(c))", "Invalid FilterExpression: The function is not allowed to be used this way in an expression; function: attribute_exists"),
            // Reserved words, as written.
            (Kind::Condition, "status = :v", "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status"),
            (Kind::Filter, ":v < abOrT", "Invalid FilterExpression: Attribute name is a reserved keyword; reserved keyword: abOrT"),
            (Kind::Filter, "a.Size = :v", "Invalid FilterExpression: Attribute name is a reserved keyword; reserved keyword: Size"),
            (Kind::Filter, "attribute_exists(views, #zz)", "Invalid FilterExpression: Attribute name is a reserved keyword; reserved keyword: views"),
            // Undefined placeholders: the first one written.
            (Kind::Condition, ":undef = a", "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :undef"),
            (Kind::Condition, "#x = :v", "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #x"),
            (Kind::Filter, "begins_with(:hello, #zz, #b)", "Invalid FilterExpression: An expression attribute value used in expression is not defined; attribute value: :hello"),
            (Kind::Filter, "(#P between :lo and :hi) and (#PC in (:cat1, :cat2))", "Invalid FilterExpression: An expression attribute name used in the document path is not defined; attribute name: #P"),
            // Operand counts, distinct operands, operand types.
            (Kind::Filter, "begins_with(a)", "Invalid FilterExpression: Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1"),
            (Kind::Filter, "size(a, b) > c", "Invalid FilterExpression: Incorrect number of operands for operator or function; operator or function: size, number of operands: 2"),
            (Kind::Filter, "a = a", "Invalid FilterExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a]"),
            (Kind::Filter, "#a <> a", "Invalid FilterExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: <>, first operand: [a]"),
            (Kind::Filter, "contains(ab.bc[1].a, ab.bc[1].#a)", "Invalid FilterExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: [ab, bc, [1], a]"),
            (Kind::Condition, "begins_with(a, :n1)", "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
            (Kind::Condition, "begins_with(:ss, a)", "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: SS"),
            (Kind::Condition, "begins_with(a, size(b))", "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
            (Kind::Condition, "attribute_type(a, :n1)", "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N"),
            (Kind::Condition, "attribute_type(a, :tX)", "Invalid ConditionExpression: Invalid attribute type name found; type: X, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"),
            (Kind::Condition, "size(:true) > a", "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: size, operand type: BOOL"),
            (Kind::Condition, "size(size(a)) > :n1", "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: size, operand type: N"),
            (Kind::Condition, "attribute_exists(:v) and a = :v", "Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_exists"),
            (Kind::Condition, "a BETWEEN :n6 AND :two", "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:6}, upper bound operand: AttributeValue: {N:2}"),
            (Kind::Condition, "a BETWEEN :two AND :s", "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:2}, upper bound operand: AttributeValue: {S:hello}"),
            // The first simple condition with a failure decides.
            (Kind::Filter, "a = :v AND begins_with(a, :n1) AND #x = :v", "Invalid FilterExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
            // Limits.
            (Kind::Filter, &in_101, "Invalid FilterExpression: The IN operator is provided with too many operands; number of operands: 101"),
            (Kind::Filter, &ops_301, "Invalid FilterExpression: The expression contains too many operators; operator count: 301"),
            (Kind::Filter, &deep_not, "Invalid FilterExpression: The expression contains too many operators; operator count: 701"),
        ];
        for (kind, expr, want) in cases {
            let mut p = condition_params();
            assert_eq!(
                message(parse_condition(kind, expr, &mut p)),
                want,
                "{expr:?}"
            );
        }
    }

    #[test]
    fn hostile_nesting_is_refused_within_a_default_thread_stack() {
        let run = || {
            let item = condition_item();
            // Legal: as deep as 300 operators allow.
            let chained = std::iter::repeat_n("s = :s", 150)
                .collect::<Vec<_>>()
                .join(" AND ");
            let nested = format!("{}s = :s{}", "(s = :s AND ".repeat(149), ")".repeat(149));
            let nots = format!("{}s = :s", "NOT NOT ".repeat(149));
            for expr in [chained, nested, nots] {
                let mut p = condition_params();
                let cond = parse_condition(Kind::Filter, &expr, &mut p).expect("parses");
                assert!(cond.eval(&item), "{expr}");
            }
            // Hostile: refused before the recursion gets deep.
            let hostile = [
                format!("{}s = :s{}", "(".repeat(2000), ")".repeat(2000)),
                format!("{}s{} = :s", "(".repeat(2000), ")".repeat(2000)),
                format!("{}s = :s", "NOT ".repeat(1000)),
                format!("{}s{} > :n1", "size(".repeat(650), ")".repeat(650)),
            ];
            for expr in hostile {
                let mut p = condition_params();
                assert!(parse_condition(Kind::Filter, &expr, &mut p).is_err());
            }
            let mut p = update_params();
            let calls = format!("SET a = {}a{}", "f(".repeat(1000), ")".repeat(1000));
            assert_eq!(
                message(parse_update(&calls, &mut p)),
                "Invalid UpdateExpression: The expression contains too many operators; operator count: 1000"
            );
        };
        // 2 MiB: what std gives spawned threads and tokio gives its workers.
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(run)
            .expect("thread starts")
            .join()
            .expect("no stack overflow");
    }

    /// Names and values shared by the update tables.
    fn update_params() -> Params {
        params(
            json!({"#n": "n", "#l": "l", "#one": "1", "#d": "[3]"}),
            json!({
                ":one": {"N": "1"}, ":two": {"N": "2"}, ":s": {"S": "x"}, ":ss": {"SS": ["b", "c"]},
                ":ssa": {"SS": ["a"]}, ":ns": {"NS": ["1"]}, ":l": {"L": [{"S": "x"}]},
                ":el": {"L": []}, ":m": {"M": {}}, ":bs": {"BS": ["AQ=="]},
                ":big": {"N": "99999999999999999999999999999999999999"},
            }),
        )
    }

    #[test]
    fn updates_apply_as_dynamodb_does() {
        let ok = |v: Json| Ok(v);
        let err = |m: &str| Err(m.to_owned());
        let missing =
            "The provided expression refers to an attribute that does not exist in the item";
        let wrong = "An operand in the update expression has an incorrect data type";
        let invalid = "The document path provided in the update expression is invalid for update";
        let n = |v: &str| json!({"N": v});
        let s = |v: &str| json!({"S": v});
        let cases: Vec<(Json, &str, Result<Json, String>)> = vec![
            (json!({}), "SET a = :s", ok(json!({"a": s("x")}))),
            (
                json!({"n": n("5")}),
                "SET n = n + :one",
                ok(json!({"n": n("6")})),
            ),
            (
                json!({"n": n("5")}),
                "set #n = #n - :two",
                ok(json!({"n": n("3")})),
            ),
            (json!({}), "SET n = :one + :two", ok(json!({"n": n("3")}))),
            (json!({}), "SET n = (:one + :two)", ok(json!({"n": n("3")}))),
            (json!({}), "SET n = (:one) + :two", ok(json!({"n": n("3")}))),
            (json!({}), "SET n = n + :one", err(missing)),
            (json!({"s": s("a")}), "SET n = s + :one", err(wrong)),
            (
                json!({"n": n("1")}),
                "SET n = n + :big",
                ok(json!({"n": n("100000000000000000000000000000000000000")})),
            ),
            (
                json!({"n": n("2")}),
                "SET n = n + :big",
                err("Attempting to store more than 38 significant digits in a Number"),
            ),
            (
                json!({}),
                "SET n = if_not_exists(n, :one) + :one",
                ok(json!({"n": n("2")})),
            ),
            (
                json!({"n": n("5")}),
                "SET n = if_not_exists(n, :one) + :one",
                ok(json!({"n": n("6")})),
            ),
            (
                json!({"l": {"L": [s("a")]}}),
                "SET l = list_append(l, :l)",
                ok(json!({"l": {"L": [s("a"), s("x")]}})),
            ),
            (
                json!({"l": {"L": [s("a")]}}),
                "SET l = list_append(:l, l)",
                ok(json!({"l": {"L": [s("x"), s("a")]}})),
            ),
            (
                json!({}),
                "SET l = list_append(if_not_exists(l, :el), :l)",
                ok(json!({"l": {"L": [s("x")]}})),
            ),
            (json!({}), "SET l = list_append(l, :l)", err(missing)),
            (
                json!({"l": s("a")}),
                "SET l = list_append(l, :l)",
                err(wrong),
            ),
            // List elements: replaced in place; past the end appended, in index order.
            (
                json!({"l": {"L": [s("a"), s("b")]}}),
                "SET l[1] = :s",
                ok(json!({"l": {"L": [s("a"), s("x")]}})),
            ),
            (
                json!({"l": {"L": [s("a"), s("b")]}}),
                "SET l[5] = :s",
                ok(json!({"l": {"L": [s("a"), s("b"), s("x")]}})),
            ),
            (
                json!({"l": {"L": [s("a"), s("b")]}}),
                "SET l[9] = :s, l[7] = :one",
                ok(json!({"l": {"L": [s("a"), s("b"), n("1"), s("x")]}})),
            ),
            // Nested paths need their parent, of the right kind.
            (
                json!({"m": {"M": {}}}),
                "SET m.k = :s",
                ok(json!({"m": {"M": {"k": s("x")}}})),
            ),
            (
                json!({"m": {"M": {}}}),
                "SET m.#one = :s",
                ok(json!({"m": {"M": {"1": s("x")}}})),
            ),
            (json!({}), "SET m.k = :s", err(invalid)),
            (json!({}), "SET m[0] = :s", err(invalid)),
            (json!({"m": s("a")}), "SET m.k = :s", err(invalid)),
            (json!({"m": {"M": {}}}), "SET m[0] = :s", err(invalid)),
            (json!({"l": {"L": []}}), "SET l.k = :s", err(invalid)),
            // Every operand reads the item as it was before the update.
            (
                json!({"a": n("1"), "b": n("2")}),
                "SET a = b, b = a",
                ok(json!({"a": n("2"), "b": n("1")})),
            ),
            // REMOVE: missing attributes are no-ops; list removals shift what follows.
            (
                json!({"a": s("a"), "b": s("b")}),
                "REMOVE a",
                ok(json!({"b": s("b")})),
            ),
            (json!({}), "REMOVE a", ok(json!({}))),
            (
                json!({"l": {"L": [s("a"), s("b"), s("c"), s("d"), s("e")]}}),
                "REMOVE l[1], l[2]",
                ok(json!({"l": {"L": [s("a"), s("d"), s("e")]}})),
            ),
            (
                json!({"l": {"L": [s("a")]}}),
                "REMOVE l[9]",
                ok(json!({"l": {"L": [s("a")]}})),
            ),
            (
                json!({"m": {"M": {"k": s("v")}}}),
                "REMOVE m.k, m.z",
                ok(json!({"m": {"M": {}}})),
            ),
            (
                json!({"l": {"L": [s("a"), s("b"), s("c")]}}),
                "REMOVE l[0] SET l[2] = :s",
                ok(json!({"l": {"L": [s("b"), s("x")]}})),
            ),
            (json!({}), "REMOVE y.a", err(invalid)),
            (json!({"b": s("b")}), "REMOVE b.a", err(invalid)),
            (json!({"m": {"M": {}}}), "REMOVE m[1]", err(invalid)),
            // ADD: numbers from 0, sets joined.
            (json!({}), "ADD n :one", ok(json!({"n": n("1")}))),
            (json!({"n": n("5")}), "ADD n :two", ok(json!({"n": n("7")}))),
            (
                json!({"ss": {"SS": ["a"]}}),
                "ADD ss :ss",
                ok(json!({"ss": {"SS": ["a", "b", "c"]}})),
            ),
            (
                json!({"ss": {"SS": ["b"]}}),
                "ADD ss :ss",
                ok(json!({"ss": {"SS": ["b", "c"]}})),
            ),
            (json!({}), "ADD bs :bs", ok(json!({"bs": {"BS": ["AQ=="]}}))),
            (
                json!({"m": {"M": {}}}),
                "ADD m.c :one",
                ok(json!({"m": {"M": {"c": n("1")}}})),
            ),
            (json!({"n": s("a")}), "ADD n :one", err(wrong)),
            (json!({"ss": {"SS": ["a"]}}), "ADD ss :ns", err(wrong)),
            (json!({"n": n("1")}), "ADD n :ss", err(wrong)),
            (json!({}), "ADD m.c :one", err(invalid)),
            // DELETE: set difference; an emptied set goes.
            (
                json!({"ss": {"SS": ["a", "b", "c"]}}),
                "DELETE ss :ss",
                ok(json!({"ss": {"SS": ["a"]}})),
            ),
            (
                json!({"ss": {"SS": ["b"]}, "x": s("x")}),
                "DELETE ss :ss",
                ok(json!({"x": s("x")})),
            ),
            (json!({}), "DELETE ss :ss", ok(json!({}))),
            (json!({"ss": {"SS": ["a"]}}), "DELETE ss :ns", err(wrong)),
            (json!({"n": n("1")}), "DELETE n :ns", err(wrong)),
            (json!({"l": {"L": []}}), "DELETE l.x :ss", err(invalid)),
            // Clauses in any order, keywords in any case.
            (
                json!({"b": s("b"), "ss": {"SS": ["a", "z"]}}),
                "remove b add n :one SET a = :s DELETE ss :ssa",
                ok(json!({"a": s("x"), "n": n("1"), "ss": {"SS": ["z"]}})),
            ),
        ];
        for (before, expr, want) in cases {
            let mut p = update_params();
            let update = parse_update(expr, &mut p).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let mut it = item(before.clone());
            let got = update
                .apply(&mut it)
                .map(|()| show(&it))
                .map_err(|e| e.to_string());
            assert_eq!(got, want, "{expr} on {before}");
            if got.is_err() {
                assert_eq!(
                    show(&it),
                    before,
                    "{expr}: a failed update leaves the item alone"
                );
            }
        }
    }

    #[test]
    fn bad_updates_get_dynamodb_messages() {
        let cases: &[(&str, &str)] = &[
            ("", "Invalid UpdateExpression: The expression can not be empty;"),
            ("whatever", "Invalid UpdateExpression: Syntax error; token: \"whatever\", near: \"whatever\""),
            ("INVALID SYNTAX HERE", "Invalid UpdateExpression: Syntax error; token: \"INVALID\", near: \"INVALID SYNTAX\""),
            ("SET a", "Invalid UpdateExpression: Syntax error; token: \"<EOF>\", near: \"a\""),
            ("SET a = ", "Invalid UpdateExpression: Syntax error; token: \"<EOF>\", near: \"= \""),
            ("SET a = b +", "Invalid UpdateExpression: Syntax error; token: \"<EOF>\", near: \"+\""),
            ("ADD hits : incr", "Invalid UpdateExpression: Syntax error; token: \":\", near: \"hits : incr\""),
            ("SET numx = numx / :one", "Invalid UpdateExpression: Syntax error; token: \"/\", near: \"numx / :one\""),
            ("set a = b + c + d", "Invalid UpdateExpression: Syntax error; token: \"+\", near: \"c + d\""),
            ("remove a b", "Invalid UpdateExpression: Syntax error; token: \"b\", near: \"a b\""),
            ("set (a = (b + c))", "Invalid UpdateExpression: Syntax error; token: \"(\", near: \"set (a\""),
            ("set a[1] = \"eight\"", "Invalid UpdateExpression: Syntax error; token: \"\"\", near: \"= \"eight\""),
            ("SET a = :s SET b = :s", "Invalid UpdateExpression: The \"SET\" section can only be used once in an update expression;"),
            ("remove #n set a = :s remove e", "Invalid UpdateExpression: The \"REMOVE\" section can only be used once in an update expression;"),
            ("SET status = :s", "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status"),
            (" set #c = :c set abOrt = true ", "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: abOrt"),
            ("SET a = size(b)", "Invalid UpdateExpression: Invalid function name; function: size"),
            ("SET #zz = :s", "Invalid UpdateExpression: An expression attribute name used in the document path is not defined; attribute name: #zz"),
            ("SET a = :zz", "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :zz"),
            ("SET a = :s, a = :s", "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]"),
            ("SET a = :s REMOVE a.b", "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"),
            ("set d[1] = a, d.b = a, c[1].a = a, c = :s", "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [c, [1], a], path two: [c]"),
            ("remove a.#l set a[1] = :s", "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, l], path two: [a, [1]]"),
            ("set c[3].#d = a, c.#d[3] = :s", "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [c, [3], [3]], path two: [c, [3], [3]]"),
            ("ADD a :s", "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING"),
            ("ADD a :l", "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: LIST"),
            ("DELETE a :one", "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER"),
            ("DELETE a :m", "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: MAP"),
            ("SET a = list_append(:s, a)", "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: S"),
            ("SET a = a + :s", "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: S"),
            ("SET a = :ss - a", "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: -, operand type: SS"),
            ("SET a = if_not_exists(:s, a)", "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists"),
            ("SET a = if_not_exists(if_not_exists(a, b), c)", "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists"),
            ("SET a = if_not_exists(a)", "Invalid UpdateExpression: Incorrect number of operands for operator or function; operator or function: if_not_exists, number of operands: 1"),
        ];
        for (expr, want) in cases {
            let mut p = update_params();
            assert_eq!(message(parse_update(expr, &mut p)), *want, "{expr:?}");
        }
    }

    #[test]
    fn update_reports_the_paths_it_touches() {
        let mut p = update_params();
        let update =
            parse_update("SET a.b = :s, l[2] = :one REMOVE c ADD #n :one", &mut p).expect("parses");
        let shown: Vec<String> = update.paths().iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["[a, b]", "[l, [2]]", "[c]", "[n]"]);
        assert_eq!(update.paths()[0].top(), "a");
    }

    #[test]
    fn projections_keep_what_was_asked_for() {
        let source = item(json!({
            "a": {"N": "1"},
            "b": {"M": {"c": {"N": "1"}, "d": {"N": "2"}}},
            "l": {"L": [{"N": "0"}, {"N": "1"}, {"N": "2"}, {"N": "3"}]},
            "m": {"M": {"l": {"L": [{"M": {"x": {"N": "1"}, "y": {"N": "2"}}}, {"M": {"x": {"N": "3"}}}]}}},
            "status": {"S": "s"},
        }));
        let cases: &[(&str, Json)] = &[
            ("a", json!({"a": {"N": "1"}})),
            ("b.c", json!({"b": {"M": {"c": {"N": "1"}}}})),
            (
                "a, b.d, l[1], l[3]",
                json!({"a": {"N": "1"}, "b": {"M": {"d": {"N": "2"}}}, "l": {"L": [{"N": "1"}, {"N": "3"}]}}),
            ),
            ("l[3], l[1]", json!({"l": {"L": [{"N": "1"}, {"N": "3"}]}})),
            ("l[9]", json!({})),
            ("nope, a", json!({"a": {"N": "1"}})),
            (
                "m.l[1].x, m.l[0].y",
                json!({"m": {"M": {"l": {"L": [{"M": {"y": {"N": "2"}}}, {"M": {"x": {"N": "3"}}}]}}}}),
            ),
            ("#st, #a", json!({"a": {"N": "1"}, "status": {"S": "s"}})),
        ];
        for (expr, want) in cases {
            let mut p = params(json!({"#st": "status", "#a": "a", "#x": "x"}), Json::Null);
            let paths = parse_projection(expr, &mut p).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(show(&project(&source, &paths)), *want, "{expr}");
        }
    }

    #[test]
    fn bad_projections_get_dynamodb_messages() {
        let cases: &[(&str, &str)] = &[
            ("", "Invalid ProjectionExpression: The expression can not be empty;"),
            ("a,", "Invalid ProjectionExpression: Syntax error; token: \"<EOF>\", near: \",\""),
            ("a b", "Invalid ProjectionExpression: Syntax error; token: \"b\", near: \"a b\""),
            ("status", "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: status"),
            ("#zz", "Invalid ProjectionExpression: An expression attribute name used in the document path is not defined; attribute name: #zz"),
            ("a, a.b", "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"),
            ("l[0], l.x", "Invalid ProjectionExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [l, [0]], path two: [l, x]"),
        ];
        for (expr, want) in cases {
            let mut p = params(json!({"#a": "a"}), Json::Null);
            assert_eq!(message(parse_projection(expr, &mut p)), *want, "{expr:?}");
        }
    }

    #[test]
    fn key_conditions_are_checked_against_the_key_schema() {
        let s = |v: &str| AttrValue::S(v.into());
        let n = |v: i64| AttrValue::N(crate::value::Number::from_i64(v));
        let key = |h: AttrValue, r: Option<(&str, RangeOp)>| {
            Ok(KeyCondition {
                hash: ("pk".into(), h),
                range: r.map(|(k, op)| (k.to_owned(), op)),
            })
        };
        let err = |m: &str| Err(m.to_owned());
        let cases: Vec<(&str, Option<&str>, Result<KeyCondition, String>)> = vec![
            ("pk = :a", None, key(s("a"), None)),
            ("pk = :a", Some("sk"), key(s("a"), None)),
            ("#h = :a", Some("sk"), key(s("a"), None)),
            ("pk = :a AND sk > :b", Some("sk"), key(s("a"), Some(("sk", RangeOp::Gt(s("b")))))),
            (":b < sk AND pk = :a", Some("sk"), key(s("a"), Some(("sk", RangeOp::Gt(s("b")))))),
            (":a = pk and :b >= sk", Some("sk"), key(s("a"), Some(("sk", RangeOp::Le(s("b")))))),
            ("pk = :a and sk between :n2 and :n6", Some("sk"), key(s("a"), Some(("sk", RangeOp::Between(n(2), n(6)))))),
            ("pk = :a AND begins_with(sk, :b)", Some("sk"), key(s("a"), Some(("sk", RangeOp::BeginsWith(s("b")))))),
            ("(pk = :a) AND (sk <= :n6)", Some("sk"), key(s("a"), Some(("sk", RangeOp::Le(n(6)))))),
            ("pk = :a OR sk = :b", Some("sk"), err("Invalid operator used in KeyConditionExpression: OR")),
            ("NOT pk = :a", None, err("Invalid operator used in KeyConditionExpression: NOT")),
            ("pk IN (:a)", None, err("Invalid operator used in KeyConditionExpression: IN")),
            ("pk <> :a", None, err("Invalid operator used in KeyConditionExpression: <>")),
            ("attribute_exists(pk)", None, err("Invalid operator used in KeyConditionExpression: attribute_exists")),
            ("pk = :a AND contains(sk, :b)", Some("sk"), err("Invalid operator used in KeyConditionExpression: contains")),
            ("size(pk) > :n2", None, err("KeyConditionExpressions cannot contain nested operations")),
            ("pk.x = :a", None, err("KeyConditionExpressions cannot have conditions on nested attributes")),
            ("pk = sk", Some("sk"), err("Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition")),
            (":a = :b", None, err("Invalid condition in KeyConditionExpression: No key attribute specified")),
            ("pk = :a AND pk = :b", None, err("KeyConditionExpressions must only contain one condition per key")),
            (":a BETWEEN sk AND :b", Some("sk"), err("Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand")),
            ("begins_with(:a, sk)", Some("sk"), err("Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand")),
            ("pk = :a AND sk = :b AND x = :a", Some("sk"), err("Conditions can be of length 1 or 2 only")),
            ("sk = :b", Some("sk"), err("Query condition missed key schema element: pk")),
            ("pk = :a AND xattr = :b", Some("sk"), err("Query condition missed key schema element: sk")),
            ("pk > :a", Some("sk"), err("Query key condition not supported")),
            ("pk = :a AND sk = :b", None, err("Query key condition not supported")),
            ("pk = :a AND sk BETWEEN :n6 AND :n2", Some("sk"), err("Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:6}, upper bound operand: AttributeValue: {N:2}")),
            ("status = :a", None, err("Invalid KeyConditionExpression: Attribute name is a reserved keyword; reserved keyword: status")),
            ("pk = ", None, err("Invalid KeyConditionExpression: Syntax error; token: \"<EOF>\", near: \"= \"")),
            ("", None, err("Invalid KeyConditionExpression: The expression can not be empty;")),
        ];
        for (expr, range, want) in cases {
            let mut p = params(
                json!({"#h": "pk"}),
                json!({":a": {"S": "a"}, ":b": {"S": "b"}, ":n2": {"N": "2"}, ":n6": {"N": "6"}}),
            );
            let got = parse_key_condition(expr, &mut p, "pk", range).map_err(|e| e.to_string());
            assert_eq!(got, want, "{expr:?}");
        }
    }

    #[test]
    fn range_operators_match_key_values() {
        let s = |v: &str| AttrValue::S(v.into());
        let n = |v: i64| AttrValue::N(crate::value::Number::from_i64(v));
        let cases: Vec<(RangeOp, AttrValue, bool)> = vec![
            (RangeOp::Eq(n(2)), n(2), true),
            (RangeOp::Eq(n(2)), s("2"), false),
            (RangeOp::Lt(n(2)), n(1), true),
            (RangeOp::Le(n(2)), n(2), true),
            (RangeOp::Gt(s("b")), s("a"), false),
            (RangeOp::Ge(s("b")), s("b"), true),
            (RangeOp::Between(n(2), n(6)), n(6), true),
            (RangeOp::Between(n(2), n(6)), n(7), false),
            (RangeOp::BeginsWith(s("ab")), s("abc"), true),
            (RangeOp::BeginsWith(s("ab")), s("a"), false),
            (
                RangeOp::BeginsWith(AttrValue::B(vec![1])),
                AttrValue::B(vec![1, 2]),
                true,
            ),
        ];
        for (op, v, want) in cases {
            assert_eq!(op.matches(&v), want, "{op:?} on {v:?}");
        }
    }

    #[test]
    fn params_are_validated_and_must_all_be_used() {
        let bad: &[(Json, &str)] = &[
            (json!({"ExpressionAttributeNames": {}}), "ExpressionAttributeNames must not be empty"),
            (json!({"ExpressionAttributeValues": {}}), "ExpressionAttributeValues must not be empty"),
            (json!({"ExpressionAttributeNames": {"a": "x"}}), "ExpressionAttributeNames contains invalid key: Syntax error; key: \"a\""),
            (json!({"ExpressionAttributeNames": {"#a-b": "x"}}), "ExpressionAttributeNames contains invalid key: Syntax error; key: \"#a-b\""),
            (json!({"ExpressionAttributeValues": {"x": {"S": "x"}}}), "ExpressionAttributeValues contains invalid key: Syntax error; key: \"x\""),
            (json!({"ExpressionAttributeValues": {":": {"S": "x"}}}), "ExpressionAttributeValues contains invalid key: Syntax error; key: \":\""),
            (json!({"ExpressionAttributeValues": {":a": {"N": "x"}}}), "ExpressionAttributeValues contains invalid value: A value provided cannot be converted into a number for key :a"),
            (json!({"ExpressionAttributeValues": {":a": {"SS": []}}}), "ExpressionAttributeValues contains invalid value: One or more parameter values were invalid: An string set  may not be empty for key :a"),
        ];
        for (req, want) in bad {
            assert_eq!(message(Params::from_request(req)), *want, "{req}");
        }
        assert!(Params::from_request(&json!({})).is_ok());

        // Usage counts across all the expressions of one request; names are reported first.
        let usage: &[(&str, &str, &str)] = &[
            ("#a = :v", "SET #b = :w", "<ok>"),
            (
                "#a = :v",
                "SET b = :w",
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}",
            ),
            (
                "a = :v",
                "SET b = :v",
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}",
            ),
            (
                "#a = #b",
                "SET c = :v",
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}",
            ),
            (
                "#a = :v",
                "SET #b = :v",
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}",
            ),
        ];
        for (cond, update, want) in usage {
            let mut p = Params::from_request(&json!({
                "ExpressionAttributeNames": {"#a": "a", "#b": "b"},
                "ExpressionAttributeValues": {":v": {"S": "v"}, ":w": {"S": "w"}},
            }))
            .expect("valid");
            parse_condition(Kind::Condition, cond, &mut p).expect("condition parses");
            parse_update(update, &mut p).expect("update parses");
            assert_eq!(message(p.check_all_used()), *want, "{cond} / {update}");
        }
    }

    #[test]
    fn reserved_words_are_the_full_case_insensitive_list() {
        assert_eq!(crate::reserved::RESERVED_WORDS.len(), 573);
        assert!(crate::reserved::RESERVED_WORDS
            .windows(2)
            .all(|w| w[0] < w[1]));
        for word in ["status", "STATUS", "Name", "size", "abort", "zone", "ttl"] {
            assert!(is_reserved(word), "{word}");
        }
        for word in ["pk", "sk", "statuses", "myattr", ""] {
            assert!(!is_reserved(word), "{word}");
        }
    }
}
