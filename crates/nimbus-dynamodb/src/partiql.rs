//! PartiQL, as DynamoDB reads it: `ExecuteStatement`, `BatchExecuteStatement` and
//! `ExecuteTransaction`.
//!
//! A statement is parsed, then rewritten into the request it means (`GetItem`, `Query` or `Scan`
//! for `SELECT`; `PutItem`, `UpdateItem`, `DeleteItem` for `INSERT`, `UPDATE`, `DELETE`; their
//! `TransactWriteItems`/`TransactGetItems` entries in a transaction) with generated expression
//! names (`#p0`) and values (`:v0`), and run by that operation. So conditions, updates, limits,
//! capacity and stream records have one implementation, shared with the rest of the API.
//!
//! No crate parses DynamoDB's PartiQL dialect (its `VALUE {...}` documents, `<<...>>` sets,
//! `?` parameters and the functions it allows), hence this small hand-written parser.

use std::collections::HashMap;

use base64::Engine;
use serde_json::{json, Map, Value as Json};

use crate::error::DdbError;
use crate::{items, queries, DynamoDb};

/// A statement's length limit, as DynamoDB's API declares it.
const MAX_STATEMENT: usize = 8192;
/// How deep brackets, `NOT`s and nested documents may go: the parser recurses on each.
const MAX_DEPTH: usize = 100;
/// The statements a batch may hold.
const MAX_BATCH: usize = 25;
/// The statements a transaction may hold.
const MAX_TRANSACTION: usize = 100;

fn malformed(why: impl std::fmt::Display) -> DdbError {
    DdbError::validation(format!(
        "Statement wasn't well formed, can't be processed: {why}"
    ))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A bare identifier or keyword.
    Word(String),
    /// A `"double-quoted"` identifier.
    Quoted(String),
    /// A `'single-quoted'` string.
    Str(String),
    Num(String),
    Param,
    Punct(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<Tok>, DdbError> {
    const PUNCT: &[&str] = &[
        "<<", ">>", "<=", ">=", "<>", "!=", "=", "<", ">", "(", ")", "[", "]", "{", "}", ",", ".",
        ":", "*", "+", "-",
    ];
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(malformed(format!("unterminated {c}quoted{c} text"))),
                    Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                        s.push(c);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        s.push(other);
                        i += 1;
                    }
                }
            }
            out.push(if c == '"' {
                Tok::Quoted(s)
            } else {
                Tok::Str(s)
            });
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.'
                    || chars[i] == 'e'
                    || chars[i] == 'E'
                    || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
            continue;
        }
        if c == '?' {
            out.push(Tok::Param);
            i += 1;
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        match PUNCT.iter().find(|p| rest.starts_with(**p)) {
            Some(p) => {
                out.push(Tok::Punct(p));
                i += p.len();
            }
            None => return Err(malformed(format!("unexpected character {c:?}"))),
        }
    }
    Ok(out)
}

/// One step of a document path.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Name(String),
    Index(u64),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Path(Vec<Seg>),
    Value(Json),
    Size(Vec<Seg>),
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Cmp(Operand, &'static str, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Func(&'static str, Vec<Operand>),
    Missing(Operand, bool),
}

/// What an `UPDATE`'s `SET` assigns.
#[derive(Debug, Clone, PartialEq)]
enum Assigned {
    Operand(Operand),
    Arith(Operand, &'static str, Operand),
    ListAppend(Operand, Operand),
}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Set(Vec<Seg>, Assigned),
    Remove(Vec<Seg>),
    SetAdd(Vec<Seg>, Operand),
    SetDelete(Vec<Seg>, Operand),
}

#[derive(Debug, Clone, PartialEq)]
enum Statement {
    Select {
        projection: Option<Vec<Vec<Seg>>>,
        table: String,
        index: Option<String>,
        filter: Option<Cond>,
    },
    Insert {
        table: String,
        item: Map<String, Json>,
    },
    Update {
        table: String,
        actions: Vec<Action>,
        filter: Option<Cond>,
        returning: Option<&'static str>,
    },
    Delete {
        table: String,
        filter: Option<Cond>,
        returning: Option<&'static str>,
    },
    /// `EXISTS(SELECT ...)`: a transaction's condition check.
    Exists(Box<Statement>),
}

struct Parser<'a> {
    toks: Vec<Tok>,
    at: usize,
    params: &'a [Json],
    used: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn eat_word(&mut self, w: &str) -> bool {
        let yes = self.is_word(w);
        if yes {
            self.at += 1;
        }
        yes
    }

    fn word(&mut self, w: &str) -> Result<(), DdbError> {
        match self.eat_word(w) {
            true => Ok(()),
            false => Err(self.unexpected(&format!("expected {w}"))),
        }
    }

    fn eat(&mut self, p: &str) -> bool {
        let yes = matches!(self.peek(), Some(Tok::Punct(x)) if *x == p);
        if yes {
            self.at += 1;
        }
        yes
    }

    fn punct(&mut self, p: &str) -> Result<(), DdbError> {
        match self.eat(p) {
            true => Ok(()),
            false => Err(self.unexpected(&format!("expected {p}"))),
        }
    }

    fn unexpected(&self, what: &str) -> DdbError {
        match self.peek() {
            None => malformed(format!("{what} at the end of the statement")),
            Some(t) => malformed(format!("{what}, found {}", describe(t))),
        }
    }

    fn name(&mut self) -> Result<String, DdbError> {
        match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => Ok(w),
            _ => {
                self.at -= 1;
                Err(self.unexpected("expected a name"))
            }
        }
    }

    fn path(&mut self) -> Result<Vec<Seg>, DdbError> {
        let mut segs = vec![Seg::Name(self.name()?)];
        loop {
            if self.eat(".") {
                segs.push(Seg::Name(self.name()?));
            } else if self.eat("[") {
                match self.next() {
                    Some(Tok::Num(n)) => segs.push(Seg::Index(
                        n.parse()
                            .map_err(|_| malformed(format!("bad list index {n}")))?,
                    )),
                    _ => return Err(malformed("a list index must be a whole number")),
                }
                self.punct("]")?;
            } else {
                return Ok(segs);
            }
        }
    }

    fn table(&mut self) -> Result<(String, Option<String>), DdbError> {
        let table = self.name()?;
        let index = match self.eat(".") {
            true => Some(self.name()?),
            false => None,
        };
        Ok((table, index))
    }

    /// One level deeper into brackets, refused past [`MAX_DEPTH`].
    fn deeper(&mut self) -> Result<(), DdbError> {
        self.depth += 1;
        match self.depth > MAX_DEPTH {
            true => Err(malformed(format!(
                "nested more than {MAX_DEPTH} levels deep"
            ))),
            false => Ok(()),
        }
    }

    /// A literal, a parameter, a document `{...}`, a list `[...]` or a set `<<...>>`.
    fn value(&mut self) -> Result<Json, DdbError> {
        self.deeper()?;
        let v = self.bare_value();
        self.depth -= 1;
        v
    }

    fn bare_value(&mut self) -> Result<Json, DdbError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(json!({"S": s})),
            Some(Tok::Num(n)) => Ok(json!({"N": n})),
            Some(Tok::Punct("-")) => match self.next() {
                Some(Tok::Num(n)) => Ok(json!({"N": format!("-{n}")})),
                _ => Err(malformed("a minus sign must precede a number")),
            },
            Some(Tok::Param) => {
                let v = self.params.get(self.used).cloned().ok_or_else(|| {
                    DdbError::validation(
                        "Number of parameters in request and statement don't match.",
                    )
                })?;
                self.used += 1;
                Ok(v)
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(json!({"BOOL": true})),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(json!({"BOOL": false})),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(json!({"NULL": true})),
            Some(Tok::Punct("{")) => {
                let mut m = Map::new();
                if !self.eat("}") {
                    loop {
                        let key = match self.next() {
                            Some(Tok::Str(k)) | Some(Tok::Quoted(k)) => k,
                            _ => return Err(malformed("a document's keys must be quoted strings")),
                        };
                        self.punct(":")?;
                        m.insert(key, self.value()?);
                        if self.eat("}") {
                            break;
                        }
                        self.punct(",")?;
                    }
                }
                Ok(json!({"M": m}))
            }
            Some(Tok::Punct("[")) => {
                let items = self.values_until("]")?;
                Ok(json!({"L": items}))
            }
            Some(Tok::Punct("<<")) => {
                let items = self.values_until(">>")?;
                set_of(items)
            }
            _ => {
                self.at -= 1;
                Err(self.unexpected("expected a value"))
            }
        }
    }

    fn values_until(&mut self, close: &str) -> Result<Vec<Json>, DdbError> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(self.value()?);
            if self.eat(close) {
                return Ok(items);
            }
            self.punct(",")?;
        }
    }

    fn starts_value(&self) -> bool {
        match self.peek() {
            Some(Tok::Str(_) | Tok::Num(_) | Tok::Param) => true,
            Some(Tok::Punct(p)) => matches!(*p, "{" | "[" | "<<" | "-"),
            Some(Tok::Word(w)) => ["true", "false", "null"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k)),
            _ => false,
        }
    }

    fn operand(&mut self) -> Result<Operand, DdbError> {
        if self.starts_value() {
            return Ok(Operand::Value(self.value()?));
        }
        if self.is_word("size") && self.toks.get(self.at + 1) == Some(&Tok::Punct("(")) {
            self.at += 2;
            let p = self.path()?;
            self.punct(")")?;
            return Ok(Operand::Size(p));
        }
        Ok(Operand::Path(self.path()?))
    }

    /// One or more `item`s separated by commas.
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DdbError>,
    ) -> Result<Vec<T>, DdbError> {
        let mut all = vec![item(self)?];
        while self.eat(",") {
            all.push(item(self)?);
        }
        Ok(all)
    }

    /// `OR` binds looser than `AND`, which binds looser than `NOT`.
    fn condition(&mut self) -> Result<Cond, DdbError> {
        self.joined("or", Self::conjunction, Cond::Or)
    }

    fn conjunction(&mut self) -> Result<Cond, DdbError> {
        self.joined("and", Self::negation, Cond::And)
    }

    fn joined(
        &mut self,
        word: &str,
        part: fn(&mut Self) -> Result<Cond, DdbError>,
        make: fn(Vec<Cond>) -> Cond,
    ) -> Result<Cond, DdbError> {
        let mut parts = vec![part(self)?];
        while self.eat_word(word) {
            parts.push(part(self)?);
        }
        Ok(match parts.len() {
            1 => parts.remove(0),
            _ => make(parts),
        })
    }

    fn negation(&mut self) -> Result<Cond, DdbError> {
        self.deeper()?;
        let c = self.predicate();
        self.depth -= 1;
        c
    }

    fn predicate(&mut self) -> Result<Cond, DdbError> {
        if self.eat_word("not") {
            return Ok(Cond::Not(Box::new(self.negation()?)));
        }
        if self.eat("(") {
            let c = self.condition()?;
            self.punct(")")?;
            return Ok(c);
        }
        for (word, function) in [
            ("begins_with", "begins_with"),
            ("contains", "contains"),
            ("attribute_type", "attribute_type"),
        ] {
            if self.is_word(word) && self.toks.get(self.at + 1) == Some(&Tok::Punct("(")) {
                self.at += 2;
                let args = self.list(Self::operand)?;
                self.punct(")")?;
                if args.len() != 2 {
                    return Err(malformed(format!("{word} takes two arguments")));
                }
                return Ok(Cond::Func(function, args));
            }
        }
        let left = self.operand()?;
        if self.eat_word("between") {
            let low = self.operand()?;
            self.word("and")?;
            let high = self.operand()?;
            return Ok(Cond::Between(left, low, high));
        }
        if self.eat_word("in") {
            let close = match () {
                _ if self.eat("[") => "]",
                _ if self.eat("(") => ")",
                _ => return Err(self.unexpected("expected [ or ( after IN")),
            };
            let list = self.list(Self::operand)?;
            self.punct(close)?;
            return Ok(Cond::In(left, list));
        }
        if self.eat_word("is") {
            let not = self.eat_word("not");
            if self.eat_word("missing") {
                return Ok(Cond::Missing(left, !not));
            }
            if self.eat_word("null") {
                let is_null = Cond::Func(
                    "attribute_type",
                    vec![left, Operand::Value(json!({"S": "NULL"}))],
                );
                return Ok(match not {
                    true => Cond::Not(Box::new(is_null)),
                    false => is_null,
                });
            }
            return Err(self.unexpected("expected MISSING or NULL after IS"));
        }
        let op = match self.next() {
            Some(Tok::Punct(p)) if matches!(p, "=" | "<>" | "!=" | "<" | "<=" | ">" | ">=") => {
                if p == "!=" {
                    "<>"
                } else {
                    p
                }
            }
            _ => {
                self.at -= 1;
                return Err(self.unexpected("expected a comparison"));
            }
        };
        Ok(Cond::Cmp(left, op, self.operand()?))
    }

    fn filter(&mut self) -> Result<Option<Cond>, DdbError> {
        match self.eat_word("where") {
            true => Ok(Some(self.condition()?)),
            false => Ok(None),
        }
    }

    fn returning(&mut self) -> Result<Option<&'static str>, DdbError> {
        if !self.eat_word("returning") {
            return Ok(None);
        }
        let which = match () {
            _ if self.eat_word("all") => "ALL",
            _ if self.eat_word("modified") => "UPDATED",
            _ => return Err(self.unexpected("expected ALL or MODIFIED after RETURNING")),
        };
        let when = match () {
            _ if self.eat_word("old") => "OLD",
            _ if self.eat_word("new") => "NEW",
            _ => return Err(self.unexpected("expected OLD or NEW")),
        };
        self.punct("*")?;
        Ok(Some(match (which, when) {
            ("ALL", "OLD") => "ALL_OLD",
            ("ALL", _) => "ALL_NEW",
            (_, "OLD") => "UPDATED_OLD",
            _ => "UPDATED_NEW",
        }))
    }

    fn statement(&mut self) -> Result<Statement, DdbError> {
        if self.eat_word("select") {
            let projection = match self.eat("*") {
                true => None,
                false => Some(self.list(Self::path)?),
            };
            self.word("from")?;
            let (table, index) = self.table()?;
            let filter = self.filter()?;
            return Ok(Statement::Select {
                projection,
                table,
                index,
                filter,
            });
        }
        if self.eat_word("insert") {
            self.word("into")?;
            let table = self.name()?;
            self.word("value")?;
            let item = match self.value()? {
                Json::Object(mut m) if m.contains_key("M") => match m.remove("M") {
                    Some(Json::Object(item)) => item,
                    _ => return Err(malformed("INSERT's VALUE must be a document")),
                },
                _ => return Err(malformed("INSERT's VALUE must be a document")),
            };
            return Ok(Statement::Insert { table, item });
        }
        if self.eat_word("update") {
            let table = self.name()?;
            let mut actions = Vec::new();
            loop {
                if self.eat_word("set") {
                    actions.extend(self.list(Self::assignment)?);
                } else if self.eat_word("remove") {
                    actions.extend(self.list(Self::path)?.into_iter().map(Action::Remove));
                } else {
                    break;
                }
            }
            if actions.is_empty() {
                return Err(self.unexpected("expected SET or REMOVE"));
            }
            let filter = self.filter()?;
            let returning = self.returning()?;
            return Ok(Statement::Update {
                table,
                actions,
                filter,
                returning,
            });
        }
        if self.eat_word("delete") {
            self.word("from")?;
            let table = self.name()?;
            let filter = self.filter()?;
            let returning = self.returning()?;
            return Ok(Statement::Delete {
                table,
                filter,
                returning,
            });
        }
        if self.eat_word("exists") {
            self.punct("(")?;
            let inner = self.statement()?;
            self.punct(")")?;
            if !matches!(inner, Statement::Select { .. }) {
                return Err(malformed("EXISTS takes a SELECT"));
            }
            return Ok(Statement::Exists(Box::new(inner)));
        }
        Err(self.unexpected("expected SELECT, INSERT, UPDATE, DELETE or EXISTS"))
    }

    fn assignment(&mut self) -> Result<Action, DdbError> {
        let path = self.path()?;
        self.punct("=")?;
        for (word, add) in [("set_add", true), ("set_delete", false)] {
            if self.is_word(word) && self.toks.get(self.at + 1) == Some(&Tok::Punct("(")) {
                self.at += 2;
                let target = self.path()?;
                self.punct(",")?;
                let v = self.operand()?;
                self.punct(")")?;
                if target != path {
                    return Err(malformed(format!("{word} must name the attribute it sets")));
                }
                return Ok(match add {
                    true => Action::SetAdd(path, v),
                    false => Action::SetDelete(path, v),
                });
            }
        }
        if self.is_word("list_append") && self.toks.get(self.at + 1) == Some(&Tok::Punct("(")) {
            self.at += 2;
            let a = self.operand()?;
            self.punct(",")?;
            let b = self.operand()?;
            self.punct(")")?;
            return Ok(Action::Set(path, Assigned::ListAppend(a, b)));
        }
        let left = self.operand()?;
        for op in ["+", "-"] {
            if self.eat(op) {
                let right = self.operand()?;
                return Ok(Action::Set(path, Assigned::Arith(left, op, right)));
            }
        }
        Ok(Action::Set(path, Assigned::Operand(left)))
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("keyword or name {w}"),
        Tok::Quoted(w) => format!("name \"{w}\""),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Num(n) => format!("number {n}"),
        Tok::Param => "?".into(),
        Tok::Punct(p) => p.to_string(),
    }
}

/// A `<<...>>` set: strings, numbers or binaries, all of one type.
fn set_of(items: Vec<Json>) -> Result<Json, DdbError> {
    let mut kind = None;
    let mut out = Vec::new();
    for v in items {
        let (k, inner) = v
            .as_object()
            .and_then(|m| m.iter().next())
            .map(|(k, v)| (k.clone(), v.clone()))
            .ok_or_else(|| malformed("a set holds strings, numbers or binaries"))?;
        if !matches!(k.as_str(), "S" | "N" | "B") || kind.as_ref().is_some_and(|x| *x != k) {
            return Err(malformed(
                "a set's members must all be strings, all numbers or all binaries",
            ));
        }
        kind = Some(k);
        out.push(inner);
    }
    match kind {
        Some(k) => Ok(json!({ format!("{k}S"): out })),
        None => Err(DdbError::invalid("An string set  may not be empty")),
    }
}

/// Parses one statement, its `?`s taken from `params` in order.
fn parse(text: &str, params: &[Json]) -> Result<Statement, DdbError> {
    if text.is_empty() {
        return Err(DdbError::validation(
            "1 validation error detected: Value '' at 'statement' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    if text.len() > MAX_STATEMENT {
        return Err(DdbError::validation(format!(
            "1 validation error detected: Value at 'statement' failed to satisfy constraint: Member must have length less than or equal to {MAX_STATEMENT}"
        )));
    }
    let mut p = Parser {
        toks: tokenize(text)?,
        at: 0,
        params,
        used: 0,
        depth: 0,
    };
    let statement = p.statement()?;
    if p.peek().is_some() {
        return Err(p.unexpected("expected the end of the statement"));
    }
    if p.used != params.len() {
        return Err(DdbError::validation(
            "Number of parameters in request and statement don't match.",
        ));
    }
    Ok(statement)
}

/// Expression names and values, generated as a statement is rendered.
#[derive(Default)]
struct Exprs {
    names: Map<String, Json>,
    by_name: HashMap<String, String>,
    values: Map<String, Json>,
}

impl Exprs {
    fn name(&mut self, n: &str) -> String {
        if let Some(p) = self.by_name.get(n) {
            return p.clone();
        }
        let p = format!("#p{}", self.by_name.len());
        self.by_name.insert(n.to_owned(), p.clone());
        self.names.insert(p.clone(), n.into());
        p
    }

    fn value(&mut self, v: &Json) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v.clone());
        p
    }

    fn path(&mut self, segs: &[Seg]) -> String {
        let mut out = String::new();
        for s in segs {
            match s {
                Seg::Name(n) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(&self.name(n));
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    fn operand(&mut self, o: &Operand) -> String {
        match o {
            Operand::Path(p) => self.path(p),
            Operand::Value(v) => self.value(v),
            Operand::Size(p) => format!("size({})", self.path(p)),
        }
    }

    fn cond(&mut self, c: &Cond) -> String {
        match c {
            Cond::And(all) => all
                .iter()
                .map(|c| format!("({})", self.cond(c)))
                .collect::<Vec<_>>()
                .join(" AND "),
            Cond::Or(any) => any
                .iter()
                .map(|c| format!("({})", self.cond(c)))
                .collect::<Vec<_>>()
                .join(" OR "),
            Cond::Not(c) => format!("NOT ({})", self.cond(c)),
            Cond::Cmp(a, op, b) => format!("{} {op} {}", self.operand(a), self.operand(b)),
            Cond::Between(a, lo, hi) => format!(
                "{} BETWEEN {} AND {}",
                self.operand(a),
                self.operand(lo),
                self.operand(hi)
            ),
            Cond::In(a, list) => {
                let a = self.operand(a);
                let list: Vec<String> = list.iter().map(|o| self.operand(o)).collect();
                format!("{a} IN ({})", list.join(", "))
            }
            Cond::Func(f, args) => {
                let args: Vec<String> = args.iter().map(|o| self.operand(o)).collect();
                format!("{f}({})", args.join(", "))
            }
            Cond::Missing(a, missing) => {
                let a = self.operand(a);
                match missing {
                    true => format!("attribute_not_exists({a})"),
                    false => format!("attribute_exists({a})"),
                }
            }
        }
    }

    /// Adds the names and values to `request`, when there are any.
    fn into_request(self, request: &mut Json) {
        if !self.names.is_empty() {
            request["ExpressionAttributeNames"] = Json::Object(self.names);
        }
        if !self.values.is_empty() {
            request["ExpressionAttributeValues"] = Json::Object(self.values);
        }
    }
}

/// The top-level `AND`ed conditions, each comparison written path-first (`1 < sk` as
/// `sk > 1`), as key conditions need them.
fn conjuncts(c: Option<Cond>) -> Vec<Cond> {
    match c {
        None => Vec::new(),
        Some(Cond::And(all)) => all.into_iter().flat_map(|c| conjuncts(Some(c))).collect(),
        Some(Cond::Cmp(v @ Operand::Value(_), op, p @ Operand::Path(_))) => {
            let flipped = match op {
                "<" => ">",
                "<=" => ">=",
                ">" => "<",
                ">=" => "<=",
                other => other,
            };
            vec![Cond::Cmp(p, flipped, v)]
        }
        Some(c) => vec![c],
    }
}

/// Whether a condition reads the top-level attribute `attr` anywhere.
fn mentions(c: &Cond, attr: &str) -> bool {
    let on = |o: &Operand| match o {
        Operand::Path(p) | Operand::Size(p) => p.first() == Some(&Seg::Name(attr.to_owned())),
        Operand::Value(_) => false,
    };
    match c {
        Cond::And(all) | Cond::Or(all) => all.iter().any(|c| mentions(c, attr)),
        Cond::Not(c) => mentions(c, attr),
        Cond::Cmp(a, _, b) => on(a) || on(b),
        Cond::Between(a, lo, hi) => on(a) || on(lo) || on(hi),
        Cond::In(a, list) => on(a) || list.iter().any(on),
        Cond::Func(_, args) => args.iter().any(on),
        Cond::Missing(a, _) => on(a),
    }
}

/// The value `attr = <value>` compares to (conditions come path-first from [`conjuncts`]).
fn equality_on<'a>(c: &'a Cond, attr: &str) -> Option<&'a Json> {
    let top = |o: &Operand| matches!(o, Operand::Path(p) if p.len() == 1 && p[0] == Seg::Name(attr.to_owned()));
    match c {
        Cond::Cmp(a, "=", Operand::Value(v)) if top(a) => Some(v),
        _ => None,
    }
}

/// Whether a condition on the sort key can be part of a key condition.
fn is_range_condition(c: &Cond, attr: &str) -> bool {
    let top = |o: &Operand| matches!(o, Operand::Path(p) if p.len() == 1 && p[0] == Seg::Name(attr.to_owned()));
    let value = |o: &Operand| matches!(o, Operand::Value(_));
    match c {
        Cond::Cmp(a, op, b) => top(a) && value(b) && *op != "<>",
        Cond::Between(a, lo, hi) => top(a) && value(lo) && value(hi),
        Cond::Func("begins_with", args) => top(&args[0]) && value(&args[1]),
        _ => false,
    }
}

/// A request to run, and how its answer becomes the statement's.
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    /// A key lookup (run as a `Query` on the key), with the key itself for transactions.
    Get(Json, Map<String, Json>),
    Query(Json),
    Scan(Json),
    Put(Json),
    Update(Json),
    Delete(Json),
    /// A transaction's condition check.
    Check(Json),
}

/// The key schema of a table or one of its indexes.
fn key_of(
    db: &DynamoDb,
    table: &str,
    index: Option<&str>,
) -> Result<(String, Option<String>), DdbError> {
    let st = db.lock();
    let t = st.table(table)?;
    let key = match index {
        None => &t.def.key,
        Some(i) => {
            &t.def
                .gsis
                .iter()
                .chain(&t.def.lsis)
                .find(|x| x.name == i)
                .ok_or_else(|| {
                    DdbError::validation(format!(
                        "The table does not have the specified index: {i}"
                    ))
                })?
                .key
        }
    };
    Ok((key.hash.clone(), key.range.clone()))
}

/// The full primary key a write's `WHERE` must pin with equalities; the other conditions.
fn split_key(
    hash: &str,
    range: Option<&str>,
    filter: Option<Cond>,
) -> Result<(Map<String, Json>, Vec<Cond>), DdbError> {
    let mut key = Map::new();
    let mut rest = Vec::new();
    for c in conjuncts(filter) {
        let attr = [Some(hash), range]
            .into_iter()
            .flatten()
            .find(|a| !key.contains_key(*a) && equality_on(&c, a).is_some());
        match attr {
            Some(a) => {
                let v = equality_on(&c, a).cloned().unwrap_or_default();
                key.insert(a.to_owned(), v);
            }
            None => rest.push(c),
        }
    }
    if !key.contains_key(hash) || range.is_some_and(|r| !key.contains_key(r)) {
        return Err(DdbError::validation(
            "Where clause does not contain a mandatory equality on all key attributes",
        ));
    }
    Ok((key, rest))
}

/// The conditions `AND`ed, each in brackets (an `OR` among them keeps its meaning when more is
/// appended).
fn render_conditions(x: &mut Exprs, conds: &[Cond]) -> Option<String> {
    match conds.len() {
        0 => None,
        1 => Some(format!("({})", x.cond(&conds[0]))),
        _ => Some(x.cond(&Cond::And(conds.to_vec()))),
    }
}

/// A key condition: DynamoDB's grammar for those has no brackets.
fn render_key(x: &mut Exprs, conds: &[Cond]) -> String {
    conds
        .iter()
        .map(|c| x.cond(c))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn plan(db: &DynamoDb, statement: Statement, input: &Json) -> Result<Plan, DdbError> {
    match statement {
        Statement::Select {
            projection,
            table,
            index,
            filter,
        } => {
            let (hash, range) = key_of(db, &table, index.as_deref())?;
            let mut x = Exprs::default();
            let mut request = json!({"TableName": table});
            if let Some(i) = &index {
                request["IndexName"] = i.clone().into();
            }
            let conds = conjuncts(filter);
            let mut rest = conds.clone();
            let mut key = Vec::new();
            if let Some(at) = rest.iter().position(|c| equality_on(c, &hash).is_some()) {
                key.push(rest.remove(at));
                if let Some(r) = &range {
                    if let Some(at) = rest.iter().position(|c| is_range_condition(c, r)) {
                        key.push(rest.remove(at));
                    }
                }
            }
            // A Query's filter may not name a key attribute: when the rest does (a second
            // sort-key condition, `sk <> 1`, an OR over keys), the statement is a Scan with the
            // whole condition as its filter, which DynamoDB's answer equals.
            let keys_in_rest = [Some(hash.as_str()), range.as_deref()]
                .into_iter()
                .flatten()
                .any(|k| rest.iter().any(|c| mentions(c, k)));
            let kind = match key.is_empty() || keys_in_rest {
                true => {
                    if let Some(f) = render_conditions(&mut x, &conds) {
                        request["FilterExpression"] = f.into();
                    }
                    "Scan"
                }
                false => {
                    let full = index.is_none()
                        && key.len() == 1 + usize::from(range.is_some())
                        && key.iter().all(|c| matches!(c, Cond::Cmp(_, "=", _)))
                        && rest.is_empty();
                    request["KeyConditionExpression"] = render_key(&mut x, &key).into();
                    if let Some(f) = render_conditions(&mut x, &rest) {
                        request["FilterExpression"] = f.into();
                    }
                    match full {
                        true => "Get",
                        false => "Query",
                    }
                }
            };
            let lookup: Map<String, Json> = [Some(hash.as_str()), range.as_deref()]
                .into_iter()
                .flatten()
                .filter_map(|k| {
                    key.iter()
                        .find_map(|c| equality_on(c, k))
                        .map(|v| (k.to_owned(), v.clone()))
                })
                .collect();
            if let Some(paths) = &projection {
                let text: Vec<String> = paths.iter().map(|p| x.path(p)).collect();
                request["ProjectionExpression"] = text.join(", ").into();
            }
            for k in ["ConsistentRead", "ReturnConsumedCapacity", "Limit"] {
                if let Some(v) = input.get(k) {
                    request[k] = v.clone();
                }
            }
            if let Some(token) = input["NextToken"].as_str() {
                let key = base64::engine::general_purpose::STANDARD
                    .decode(token)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
                    .filter(Json::is_object)
                    .ok_or_else(|| DdbError::validation("The provided starting key is invalid"))?;
                request["ExclusiveStartKey"] = key;
            }
            x.into_request(&mut request);
            Ok(match kind {
                "Scan" => Plan::Scan(request),
                "Query" => Plan::Query(request),
                _ => Plan::Get(request, lookup),
            })
        }
        Statement::Insert { table, item } => {
            let (hash, _) = key_of(db, &table, None)?;
            let mut x = Exprs::default();
            let condition = format!("attribute_not_exists({})", x.name(&hash));
            let mut request = json!({
                "TableName": table,
                "Item": item,
                "ConditionExpression": condition,
            });
            pass_on(input, &mut request);
            x.into_request(&mut request);
            Ok(Plan::Put(request))
        }
        Statement::Update {
            table,
            actions,
            filter,
            returning,
        } => {
            // PartiQL's UPDATE changes an item that exists; it never creates one.
            let (mut request, mut x) = one_item(db, table, filter, true)?;
            let (mut set, mut remove, mut add, mut delete) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for a in &actions {
                match a {
                    Action::Set(p, v) => {
                        let p = x.path(p);
                        let v = match v {
                            Assigned::Operand(o) => x.operand(o),
                            Assigned::Arith(l, op, r) => {
                                format!("{} {op} {}", x.operand(l), x.operand(r))
                            }
                            Assigned::ListAppend(a, b) => {
                                format!("list_append({}, {})", x.operand(a), x.operand(b))
                            }
                        };
                        set.push(format!("{p} = {v}"));
                    }
                    Action::Remove(p) => remove.push(x.path(p)),
                    Action::SetAdd(p, v) => add.push(format!("{} {}", x.path(p), x.operand(v))),
                    Action::SetDelete(p, v) => {
                        delete.push(format!("{} {}", x.path(p), x.operand(v)))
                    }
                }
            }
            let mut update = Vec::new();
            for (clause, parts) in [
                ("SET", set),
                ("REMOVE", remove),
                ("ADD", add),
                ("DELETE", delete),
            ] {
                if !parts.is_empty() {
                    update.push(format!("{clause} {}", parts.join(", ")));
                }
            }
            request["UpdateExpression"] = update.join(" ").into();
            if let Some(r) = returning {
                request["ReturnValues"] = r.into();
            }
            pass_on(input, &mut request);
            x.into_request(&mut request);
            Ok(Plan::Update(request))
        }
        Statement::Delete {
            table,
            filter,
            returning,
        } => {
            let (mut request, x) = one_item(db, table, filter, false)?;
            if let Some(r) = returning {
                if r != "ALL_OLD" {
                    return Err(malformed("DELETE can return ALL OLD * only"));
                }
                request["ReturnValues"] = r.into();
            }
            pass_on(input, &mut request);
            x.into_request(&mut request);
            Ok(Plan::Delete(request))
        }
        Statement::Exists(select) => {
            let Statement::Select { table, filter, .. } = *select else {
                return Err(malformed("EXISTS takes a SELECT"));
            };
            let (mut request, x) = one_item(db, table, filter, true)?;
            x.into_request(&mut request);
            Ok(Plan::Check(request))
        }
    }
}

/// A statement on one item (`UPDATE`, `DELETE`, `EXISTS`): its table and the key its `WHERE`
/// pins, the other conditions as the `ConditionExpression`, after `attribute_exists` of the
/// key when the item `must_exist`; and the placeholders made so far, for the caller to add to.
fn one_item(
    db: &DynamoDb,
    table: String,
    filter: Option<Cond>,
    must_exist: bool,
) -> Result<(Json, Exprs), DdbError> {
    let (hash, range) = key_of(db, &table, None)?;
    let (key, rest) = split_key(&hash, range.as_deref(), filter)?;
    let mut x = Exprs::default();
    let mut condition: Vec<String> = Vec::new();
    if must_exist {
        condition.push(format!("attribute_exists({})", x.name(&hash)));
    }
    condition.extend(render_conditions(&mut x, &rest));
    let mut request = json!({"TableName": table, "Key": key});
    if !condition.is_empty() {
        request["ConditionExpression"] = condition.join(" AND ").into();
    }
    Ok((request, x))
}

/// The request's settings a write statement passes on to its operation.
fn pass_on(input: &Json, request: &mut Json) {
    for k in [
        "ReturnValuesOnConditionCheckFailure",
        "ReturnConsumedCapacity",
    ] {
        if let Some(v) = input.get(k) {
            request[k] = v.clone();
        }
    }
}

/// The `Parameters` of a request (or a batch entry).
fn parameters(input: &Json) -> Result<&[Json], DdbError> {
    match &input["Parameters"] {
        Json::Null => Ok(&[]),
        Json::Array(a) if !a.is_empty() => Ok(a),
        Json::Array(_) => Err(DdbError::validation(
            "1 validation error detected: Value '[]' at 'parameters' failed to satisfy constraint: Member must have length greater than or equal to 1",
        )),
        _ => Err(DdbError::Serialization(
            "Parameters must be a list of attribute values".into(),
        )),
    }
}

fn statement_text(input: &Json) -> Result<&str, DdbError> {
    input["Statement"].as_str().ok_or_else(|| {
        DdbError::validation(
            "1 validation error detected: Value null at 'statement' failed to satisfy constraint: Member must not be null",
        )
    })
}

/// Runs one planned statement, answering `ExecuteStatement`'s shape.
fn run(db: &DynamoDb, plan: Plan) -> Result<Json, DdbError> {
    match plan {
        Plan::Get(mut request, _) => {
            // A key lookup: GetItem's capacity and consistency, Query's expressions. The
            // key condition names only the key, so the Query answers at most that item.
            if let Some(o) = request.as_object_mut() {
                o.remove("Limit");
            }
            page(queries::query(db, &request)?)
        }
        Plan::Query(request) => page(queries::query(db, &request)?),
        Plan::Scan(request) => page(queries::scan(db, &request)?),
        Plan::Put(request) => match items::put_item(db, &request) {
            Ok(out) => Ok(written(out)),
            Err(DdbError::ConditionalCheckFailed(_)) => Err(DdbError::DuplicateItem(
                "Duplicate primary key exists in table".into(),
            )),
            Err(e) => Err(e),
        },
        Plan::Update(request) => items::update_item(db, &request).map(written),
        Plan::Delete(request) => items::delete_item(db, &request).map(written),
        Plan::Check(_) => Err(malformed("EXISTS is allowed only in ExecuteTransaction")),
    }
}

/// A read's answer: its items, and where the next page starts.
fn page(out: Json) -> Result<Json, DdbError> {
    let mut answer = json!({"Items": out["Items"].clone()});
    if let Some(key) = out.get("LastEvaluatedKey") {
        answer["LastEvaluatedKey"] = key.clone();
        answer["NextToken"] = base64::engine::general_purpose::STANDARD
            .encode(key.to_string())
            .into();
    }
    if let Some(c) = out.get("ConsumedCapacity") {
        answer["ConsumedCapacity"] = c.clone();
    }
    Ok(answer)
}

/// A write's answer: the item it returned, if `RETURNING` asked for one.
fn written(out: Json) -> Json {
    let items = match out.get("Attributes") {
        Some(a) => vec![a.clone()],
        None => Vec::new(),
    };
    let mut answer = json!({"Items": items});
    if let Some(c) = out.get("ConsumedCapacity") {
        answer["ConsumedCapacity"] = c.clone();
    }
    answer
}

pub fn execute_statement(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let statement = parse(statement_text(input)?, parameters(input)?)?;
    if matches!(statement, Statement::Exists(_)) {
        return Err(malformed("EXISTS is allowed only in ExecuteTransaction"));
    }
    run(db, plan(db, statement, input)?)
}

/// DynamoDB's code for a statement's error in a batch's answer.
fn batch_code(e: &DdbError) -> &'static str {
    match e {
        DdbError::ConditionalCheckFailed(_) => "ConditionalCheckFailed",
        DdbError::DuplicateItem(_) => "DuplicateItem",
        DdbError::ResourceNotFound(_) => "ResourceNotFound",
        DdbError::Internal(_) => "InternalServerError",
        _ => "ValidationError",
    }
}

pub fn batch_execute_statement(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let statements = input["Statements"].as_array().ok_or_else(|| {
        DdbError::validation(
            "1 validation error detected: Value null at 'statements' failed to satisfy constraint: Member must not be null",
        )
    })?;
    if statements.is_empty() || statements.len() > MAX_BATCH {
        return Err(DdbError::validation(format!(
            "1 validation error detected: Value at 'statements' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH} and greater than or equal to 1"
        )));
    }
    // Every entry is parsed before any runs: a batch that mixes reads and writes is refused
    // whole, as DynamoDB refuses it, with nothing written.
    let parsed: Vec<Result<Statement, DdbError>> = statements
        .iter()
        .map(|entry| {
            statement_text(entry).and_then(|t| parameters(entry).and_then(|p| parse(t, p)))
        })
        .collect();
    let reads = parsed
        .iter()
        .flatten()
        .filter(|s| matches!(s, Statement::Select { .. }))
        .count();
    let writes = parsed.iter().flatten().count() - reads;
    if reads > 0 && writes > 0 {
        return Err(DdbError::validation(
            "Batch statements must be either all reads or all writes",
        ));
    }
    let mut responses = Vec::new();
    for (entry, statement) in statements.iter().zip(parsed) {
        let result = statement.and_then(|s| {
            let name = match &s {
                Statement::Select { table, .. }
                | Statement::Insert { table, .. }
                | Statement::Update { table, .. }
                | Statement::Delete { table, .. } => table.clone(),
                Statement::Exists(_) => String::new(),
            };
            Ok((name, plan(db, s, entry)?))
        });
        let response = match result {
            Ok((name, get @ Plan::Get(..))) => match run(db, get) {
                Ok(out) => {
                    let mut r = json!({"TableName": name});
                    if let Some(item) = out["Items"].get(0) {
                        r["Item"] = item.clone();
                    }
                    r
                }
                Err(e) => error_entry(Some(&name), &e),
            },
            Ok((name, Plan::Query(_) | Plan::Scan(_))) => error_entry(
                Some(&name),
                &DdbError::validation(
                    "Select statements within BatchExecuteStatement must specify an equality condition on all key attributes",
                ),
            ),
            Ok((name, p)) => match run(db, p) {
                Ok(_) => json!({"TableName": name}),
                Err(e) => error_entry(Some(&name), &e),
            },
            Err(e) => error_entry(None, &e),
        };
        responses.push(response);
    }
    Ok(json!({"Responses": responses}))
}

fn error_entry(table: Option<&str>, e: &DdbError) -> Json {
    let mut r = json!({"Error": {"Code": batch_code(e), "Message": e.to_string()}});
    if let DdbError::ConditionalCheckFailed(Some(item)) = e {
        r["Error"]["Item"] = Json::Object(item.clone());
    }
    if let Some(t) = table {
        r["TableName"] = t.into();
    }
    r
}

pub fn execute_transaction(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let statements = input["TransactStatements"].as_array().ok_or_else(|| {
        DdbError::validation(
            "1 validation error detected: Value null at 'transactStatements' failed to satisfy constraint: Member must not be null",
        )
    })?;
    if statements.is_empty() || statements.len() > MAX_TRANSACTION {
        return Err(DdbError::validation(format!(
            "1 validation error detected: Value at 'transactStatements' failed to satisfy constraint: Member must have length less than or equal to {MAX_TRANSACTION} and greater than or equal to 1"
        )));
    }
    let mut plans = Vec::new();
    for entry in statements {
        let statement = parse(statement_text(entry)?, parameters(entry)?)?;
        plans.push(plan(db, statement, entry)?);
    }
    let reads = plans.iter().filter(|p| matches!(p, Plan::Get(..))).count();
    if reads == plans.len() {
        let gets: Vec<Json> = plans
            .into_iter()
            .map(|p| match p {
                Plan::Get(r, key) => json!({"Get": get_request(r, key)}),
                _ => Json::Null,
            })
            .collect();
        let mut request = json!({"TransactItems": gets});
        if let Some(c) = input.get("ReturnConsumedCapacity") {
            request["ReturnConsumedCapacity"] = c.clone();
        }
        let out = items::transact_get(db, &request)?;
        let mut answer = json!({"Responses": out["Responses"].clone()});
        if let Some(c) = out.get("ConsumedCapacity") {
            answer["ConsumedCapacity"] = c.clone();
        }
        return Ok(answer);
    }
    let inserts: Vec<bool> = plans.iter().map(|p| matches!(p, Plan::Put(_))).collect();
    let mut writes = Vec::new();
    for p in plans {
        let (kind, mut r) = match p {
            Plan::Put(r) => ("Put", r),
            Plan::Update(r) => ("Update", r),
            Plan::Delete(r) => ("Delete", r),
            Plan::Check(r) => ("ConditionCheck", r),
            Plan::Get(..) | Plan::Query(_) | Plan::Scan(_) => {
                return Err(DdbError::validation(
                    "Transaction statements must be either all reads or all writes; a read in a write transaction is written EXISTS(SELECT ...)",
                ))
            }
        };
        // A transaction's writes return nothing: `RETURNING` has no place to go.
        if let Some(o) = r.as_object_mut() {
            o.remove("ReturnValues");
        }
        writes.push(json!({ kind: r }));
    }
    let mut request = json!({"TransactItems": writes});
    for k in ["ClientRequestToken", "ReturnConsumedCapacity"] {
        if let Some(v) = input.get(k) {
            request[k] = v.clone();
        }
    }
    match items::transact_write(db, &request) {
        Ok(out) => Ok(match out.get("ConsumedCapacity") {
            Some(c) => json!({"ConsumedCapacity": c}),
            None => json!({}),
        }),
        // An INSERT whose key exists fails its condition: PartiQL calls that DuplicateItem.
        Err(DdbError::TransactionCanceled(reasons)) => Err(DdbError::TransactionCanceled(
            reasons
                .into_iter()
                .zip(inserts)
                .map(|(mut r, insert)| {
                    if insert && r.code == "ConditionalCheckFailed" {
                        r.code = "DuplicateItem";
                        r.message = Some("Duplicate primary key exists in table".into());
                    }
                    r
                })
                .collect(),
        )),
        Err(e) => Err(e),
    }
}

/// A key lookup as `TransactGetItems` takes it: the key, and the projection with only the
/// names it uses.
fn get_request(query: Json, key: Map<String, Json>) -> Json {
    let mut get = json!({"TableName": query["TableName"], "Key": key});
    if let Some(p) = query.get("ProjectionExpression") {
        get["ProjectionExpression"] = p.clone();
        let used: Map<String, Json> = query["ExpressionAttributeNames"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| {
                p.as_str()
                    .unwrap_or("")
                    .split(|c: char| !(c.is_alphanumeric() || c == '#'))
                    .any(|t| t == k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        get["ExpressionAttributeNames"] = Json::Object(used);
    }
    get
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str, params: &[Json]) -> Statement {
        parse(text, params).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn statements_parse_into_what_they_mean() {
        let p = |segs: &[&str]| {
            segs.iter()
                .map(|s| Seg::Name((*s).into()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            parsed(
                r#"SELECT a, "b".c[2] FROM "T"."ByB" WHERE pk = 'x' AND n > 3"#,
                &[]
            ),
            Statement::Select {
                projection: Some(vec![
                    p(&["a"]),
                    vec![Seg::Name("b".into()), Seg::Name("c".into()), Seg::Index(2)],
                ]),
                table: "T".into(),
                index: Some("ByB".into()),
                filter: Some(Cond::And(vec![
                    Cond::Cmp(
                        Operand::Path(p(&["pk"])),
                        "=",
                        Operand::Value(json!({"S": "x"}))
                    ),
                    Cond::Cmp(
                        Operand::Path(p(&["n"])),
                        ">",
                        Operand::Value(json!({"N": "3"}))
                    ),
                ])),
            }
        );
        assert_eq!(
            parsed(
                "insert into T value {'pk': ?, 'tags': <<'a', 'b'>>, 'l': [1, -2.5, true, null], 'm': {'x': 'it''s'}}",
                &[json!({"S": "k"})]
            ),
            Statement::Insert {
                table: "T".into(),
                item: json!({"pk": {"S": "k"}, "tags": {"SS": ["a", "b"]},
                             "l": {"L": [{"N": "1"}, {"N": "-2.5"}, {"BOOL": true}, {"NULL": true}]},
                             "m": {"M": {"x": {"S": "it's"}}}})
                .as_object()
                .unwrap()
                .clone(),
            }
        );
        assert!(matches!(
            parsed("UPDATE T SET n = n + 1 SET l = list_append(l, [1]) REMOVE old WHERE pk = 'k' RETURNING ALL NEW *", &[]),
            Statement::Update { ref actions, returning: Some("ALL_NEW"), .. } if actions.len() == 3
        ));
        assert!(matches!(
            parsed("DELETE FROM T WHERE pk = 'k' AND sk = 1", &[]),
            Statement::Delete {
                returning: None,
                ..
            }
        ));
        assert!(matches!(
            parsed("EXISTS(SELECT * FROM T WHERE pk = 'k')", &[]),
            Statement::Exists(_)
        ));
    }

    #[test]
    fn bad_statements_say_what_is_wrong() {
        for (text, params, want) in [
            ("SELEC * FROM T", vec![], "Statement wasn't well formed, can't be processed: expected SELECT, INSERT, UPDATE, DELETE or EXISTS, found keyword or name SELEC"),
            ("SELECT * FROM", vec![], "expected a name at the end of the statement"),
            ("SELECT * FROM T WHERE a = 'x", vec![], "unterminated 'quoted' text"),
            ("SELECT * FROM T WHERE a = ?", vec![], "Number of parameters in request and statement don't match."),
            ("SELECT * FROM T", vec![json!({"S": "x"})], "Number of parameters in request and statement don't match."),
            ("INSERT INTO T VALUE 'x'", vec![], "INSERT's VALUE must be a document"),
            ("SELECT * FROM T WHERE a = <<'x', 1>>", vec![], "must all be strings, all numbers or all binaries"),
            ("SELECT * FROM T WHERE a # 1", vec![], "unexpected character '#'"),
            ("SELECT * FROM T extra", vec![], "expected the end of the statement, found keyword or name extra"),
            ("", vec![], "Member must have length greater than or equal to 1"),
        ] {
            let e = parse(text, &params).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn conditions_render_as_dynamodb_expressions() {
        let Statement::Select { filter, .. } = parsed(
            "SELECT * FROM T WHERE NOT (a <> 1 OR b BETWEEN 1 AND 9) AND c IN [1, 2] AND begins_with(d, 'x') AND e IS MISSING AND f IS NOT MISSING AND size(g) > 2 AND h IS NULL",
            &[],
        ) else {
            panic!()
        };
        let mut x = Exprs::default();
        assert_eq!(
            x.cond(&filter.unwrap()),
            "(NOT ((#p0 <> :v0) OR (#p1 BETWEEN :v1 AND :v2))) AND (#p2 IN (:v3, :v4)) AND (begins_with(#p3, :v5)) AND (attribute_not_exists(#p4)) AND (attribute_exists(#p5)) AND (size(#p6) > :v6) AND (attribute_type(#p7, :v7))"
        );
        assert_eq!(x.values[":v7"], json!({"S": "NULL"}));
    }
}
