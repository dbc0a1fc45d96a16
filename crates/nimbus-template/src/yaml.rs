//! A positioned YAML tree: every node knows its line and column, maps keep their order.
//!
//! yaml-rust2's own `Yaml` type drops positions and tags, and both are needed: positions for
//! messages a user can act on, tags for the CloudFormation short forms (`!Ref`, `!Sub`, ...).
//! So the tree is built here from the parser's marked events.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_marker(m: &Marker) -> Pos {
        // yaml-rust2 counts lines from 1 but columns from 0.
        Pos {
            line: m.line(),
            column: m.col() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
    /// An error has already been reported for this value. Consumers stay quiet about it, so one
    /// mistake yields one message rather than a cascade.
    Invalid,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// Short-form tags and the long form each one stands for.
const SHORT_FORMS: &[(&str, &str)] = &[
    ("Ref", "Ref"),
    ("Condition", "Condition"),
    ("GetAtt", "Fn::GetAtt"),
    ("Sub", "Fn::Sub"),
    ("Join", "Fn::Join"),
    ("Select", "Fn::Select"),
    ("Split", "Fn::Split"),
    ("If", "Fn::If"),
    ("Equals", "Fn::Equals"),
    ("And", "Fn::And"),
    ("Or", "Fn::Or"),
    ("Not", "Fn::Not"),
    ("FindInMap", "Fn::FindInMap"),
    ("Base64", "Fn::Base64"),
    ("GetAZs", "Fn::GetAZs"),
    ("ImportValue", "Fn::ImportValue"),
    ("Cidr", "Fn::Cidr"),
    ("Length", "Fn::Length"),
    ("ToJsonString", "Fn::ToJsonString"),
    ("Transform", "Fn::Transform"),
];

impl Node {
    pub fn new(kind: Kind, pos: Pos) -> Node {
        Node { kind, pos }
    }

    pub fn string(s: impl Into<String>, pos: Pos) -> Node {
        Node::new(Kind::String(s.into()), pos)
    }

    pub fn invalid(pos: Pos) -> Node {
        Node::new(Kind::Invalid, pos)
    }

    pub fn with_pos(mut self, pos: Pos) -> Node {
        self.pos = pos;
        self
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries()?.iter().find(|e| e.key == key)
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn is_invalid(&self) -> bool {
        matches!(self.kind, Kind::Invalid)
    }

    /// `Ref` or `Fn::*` as the only key of a map: CloudFormation's test for an intrinsic call.
    pub fn intrinsic(&self) -> Option<(&str, &Node)> {
        match self.entries()? {
            [e] if e.key == "Ref" || e.key.starts_with("Fn::") => Some((&e.key, &e.value)),
            _ => None,
        }
    }

    /// The text CloudFormation would use where a string is expected: strings as they are,
    /// numbers and booleans written out.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            Kind::String(s) => Some(s.clone()),
            Kind::Number(n) => Some(n.to_string()),
            Kind::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// How a value reads in a "got ..." message.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Null => "null".into(),
            Kind::Bool(b) => b.to_string(),
            Kind::Number(n) => n.to_string(),
            Kind::String(s) => format!("{s:?}"),
            Kind::Seq(items) => match items.len() {
                0 => "an empty list".into(),
                1 => "a list of 1 value".into(),
                n => format!("a list of {n} values"),
            },
            Kind::Map(_) => match self.intrinsic() {
                Some((name, _)) => format!("an unresolved {name}"),
                None => "a map".into(),
            },
            Kind::Invalid => "an invalid value".into(),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null | Kind::Invalid => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Number(n) => Value::Number(n.clone()),
            Kind::String(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A problem found while reading the YAML text itself.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub path: String,
    pub pos: Pos,
    pub message: String,
}

/// Parses one YAML (or JSON) document. A syntax error stops parsing, since nothing after it can
/// be trusted; tree-level problems such as duplicate keys are collected and parsing goes on.
pub(crate) fn parse(source: &str) -> (Option<Node>, Vec<SyntaxError>) {
    let mut builder = Builder::new(source);
    let mut parser = Parser::new_from_str(source);
    if let Err(e) = parser.load(&mut builder, true) {
        let path = builder.path();
        builder.errors.push(SyntaxError {
            path,
            pos: Pos::from_marker(e.marker()),
            message: format!("invalid YAML: {}", e.info()),
        });
        return (None, builder.errors);
    }
    let mut docs = builder.docs;
    let mut errors = builder.errors;
    if docs.len() > 1 {
        errors.push(SyntaxError {
            path: String::new(),
            pos: docs[1].pos,
            message: "a template is a single YAML document; remove the second `---` document"
                .into(),
        });
    }
    let root = if docs.is_empty() {
        None
    } else {
        Some(docs.swap_remove(0))
    };
    (root, errors)
}

struct Frame {
    pos: Pos,
    anchor: usize,
    tag: Option<Tag>,
    kind: FrameKind,
}

enum FrameKind {
    Seq(Vec<Node>),
    Map {
        entries: Vec<Entry>,
        key: Option<PendingKey>,
    },
}

struct PendingKey {
    name: String,
    pos: Pos,
    /// The key repeats an earlier one (already reported), so its value is dropped.
    discard: bool,
}

struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: HashMap<usize, Node>,
    errors: Vec<SyntaxError>,
    /// The source as characters and where each line starts, to find what the parser's events
    /// do not mark: where a tag starts, whether a map is written `{...}`.
    chars: Vec<char>,
    line_starts: Vec<usize>,
}

impl Builder {
    fn new(source: &str) -> Builder {
        let chars: Vec<char> = source.chars().collect();
        let mut line_starts = vec![0];
        line_starts.extend(
            chars
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == '\n')
                .map(|(i, _)| i + 1),
        );
        Builder {
            stack: Vec::new(),
            docs: Vec::new(),
            anchors: HashMap::new(),
            errors: Vec::new(),
            chars,
            line_starts,
        }
    }

    fn offset(&self, pos: Pos) -> Option<usize> {
        let start = *self.line_starts.get(pos.line.checked_sub(1)?)?;
        Some(start + pos.column - 1)
    }

    fn pos_of(&self, offset: usize) -> Pos {
        let line = self.line_starts.partition_point(|s| *s <= offset);
        Pos {
            line,
            column: offset - self.line_starts[line - 1] + 1,
        }
    }

    /// Where the tag in front of a node starts: `!Ref X` is reported at `!Ref`, not at `X`.
    fn tag_start(&self, tag: &Tag, node_pos: Pos) -> Pos {
        let Some(mut i) = self.offset(node_pos).filter(|i| *i <= self.chars.len()) else {
            return node_pos;
        };
        while i > 0 && self.chars[i - 1].is_whitespace() {
            i -= 1;
        }
        let text = format!("{}{}", tag.handle, tag.suffix);
        let len = text.chars().count();
        if i >= len && self.chars[i - len..i].iter().copied().eq(text.chars()) {
            self.pos_of(i - len)
        } else {
            node_pos
        }
    }

    fn is_flow_map_at(&self, pos: Pos) -> bool {
        self.offset(pos).and_then(|i| self.chars.get(i)) == Some(&'{')
    }

    /// The dotted path of the node being built, for messages.
    fn path(&self) -> String {
        let mut path = String::new();
        for frame in &self.stack {
            match &frame.kind {
                FrameKind::Seq(items) => path.push_str(&format!("[{}]", items.len())),
                FrameKind::Map { key: Some(k), .. } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&k.name);
                }
                FrameKind::Map { key: None, .. } => {}
            }
        }
        path
    }

    fn error(&mut self, pos: Pos, message: String) {
        let path = self.path();
        self.errors.push(SyntaxError { path, pos, message });
    }

    fn awaiting_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame {
                kind: FrameKind::Map { key: None, .. },
                ..
            })
        )
    }

    fn set_key(&mut self, name: String, pos: Pos) {
        let mut first = None;
        if let Some(Frame {
            kind: FrameKind::Map { entries, .. },
            ..
        }) = self.stack.last()
        {
            first = entries.iter().find(|e| e.key == name).map(|e| e.key_pos);
        }
        if let Some(Frame {
            kind: FrameKind::Map { key, .. },
            ..
        }) = self.stack.last_mut()
        {
            *key = Some(PendingKey {
                name: name.clone(),
                pos,
                discard: first.is_some(),
            });
        }
        if let Some(first) = first {
            self.error(
                pos,
                format!(
                    "duplicate key {name:?}: it is already set on line {}; keep only one",
                    first.line
                ),
            );
        }
    }

    fn push_value(&mut self, node: Node) {
        if self.awaiting_key() {
            // Only scalars can be keys in a template; `? [a, b]: c` has no CloudFormation meaning.
            self.error(node.pos, "a map key must be a plain string".into());
            if let Some(Frame {
                kind: FrameKind::Map { key, .. },
                ..
            }) = self.stack.last_mut()
            {
                *key = Some(PendingKey {
                    name: String::new(),
                    pos: node.pos,
                    discard: true,
                });
            }
            return;
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame {
                kind: FrameKind::Seq(items),
                ..
            }) => items.push(node),
            Some(Frame {
                kind: FrameKind::Map { entries, key },
                ..
            }) => {
                if let Some(k) = key.take() {
                    if !k.discard {
                        entries.push(Entry {
                            key: k.name,
                            key_pos: k.pos,
                            value: node,
                        });
                    }
                }
            }
        }
    }

    fn finish(&mut self, node: Node, anchor: usize, tag: Option<Tag>) {
        let node = self.apply_tag(node, tag);
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        self.push_value(node);
    }

    fn apply_tag(&mut self, node: Node, tag: Option<Tag>) -> Node {
        let Some(tag) = tag else { return node };
        let node = Node {
            pos: self.tag_start(&tag, node.pos),
            ..node
        };
        if tag.handle == "tag:yaml.org,2002:" {
            // Scalars with a core-schema tag were typed already in `scalar`.
            return node;
        }
        let long = SHORT_FORMS
            .iter()
            .find(|(short, _)| tag.handle == "!" && *short == tag.suffix)
            .map(|(_, long)| *long);
        let Some(long) = long else {
            self.error(
                node.pos,
                format!(
                    "unknown tag \"{}{}\"; CloudFormation's short forms are {}",
                    tag.handle,
                    tag.suffix,
                    SHORT_FORMS
                        .iter()
                        .map(|(s, _)| format!("!{s}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return Node::invalid(node.pos);
        };
        let pos = node.pos;
        let arg = if long == "Fn::GetAtt" {
            match &node.kind {
                // `!GetAtt Res.Attr.Part`: the resource name has no dots, the attribute may.
                Kind::String(s) => match s.split_once('.') {
                    Some((res, attr)) => Node::new(
                        Kind::Seq(vec![Node::string(res, pos), Node::string(attr, pos)]),
                        pos,
                    ),
                    None => {
                        self.error(
                            pos,
                            format!("!GetAtt expects \"Resource.Attribute\", got {s:?}"),
                        );
                        return Node::invalid(pos);
                    }
                },
                _ => node,
            }
        } else {
            node
        };
        Node::new(
            Kind::Map(vec![Entry {
                key: long.to_string(),
                key_pos: pos,
                value: arg,
            }]),
            pos,
        )
    }

    fn scalar(&mut self, text: String, style: TScalarStyle, tag: &Option<Tag>, pos: Pos) -> Node {
        let kind = match tag {
            Some(t) if t.handle == "tag:yaml.org,2002:" => {
                let typed = match t.suffix.as_str() {
                    "str" => Some(Kind::String(text.clone())),
                    "null" => Some(Kind::Null),
                    "bool" => match text.as_str() {
                        "true" | "True" | "TRUE" => Some(Kind::Bool(true)),
                        "false" | "False" | "FALSE" => Some(Kind::Bool(false)),
                        _ => None,
                    },
                    "int" | "float" => match plain_scalar(&text) {
                        k @ Kind::Number(_) => Some(k),
                        _ => None,
                    },
                    _ => Some(Kind::String(text.clone())),
                };
                match typed {
                    Some(k) => k,
                    None => {
                        self.error(pos, format!("{text:?} is not a valid !!{}", t.suffix));
                        Kind::Invalid
                    }
                }
            }
            // Operands of short forms are text: `!Ref 123` names something called "123".
            Some(_) => Kind::String(text),
            None if style == TScalarStyle::Plain => plain_scalar(&text),
            None => Kind::String(text),
        };
        Node::new(kind, pos)
    }
}

/// YAML 1.2 core-schema typing of an unquoted scalar, as CloudFormation reads it.
fn plain_scalar(text: &str) -> Kind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        _ => {}
    }
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    if let Some(hex) = unsigned.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Kind::Number(i.into());
        }
    }
    if let Some(oct) = unsigned.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Kind::Number(i.into());
        }
    }
    if let Ok(i) = unsigned.parse::<i64>() {
        return Kind::Number(i.into());
    }
    if let Ok(u) = unsigned.parse::<u64>() {
        return Kind::Number(u.into());
    }
    // Rust's float parser also takes "inf" and "NaN"; YAML spells those differently and JSON
    // cannot hold them, so only digit-based forms become numbers.
    let float_chars = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if float_chars && text.chars().any(|c| c.is_ascii_digit()) {
        if let Some(n) = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return Kind::Number(n);
        }
    }
    Kind::String(text.to_string())
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Pos::from_marker(&mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                if self.awaiting_key() {
                    self.set_key(text, pos);
                } else {
                    let node = self.scalar(text, style, &tag, pos);
                    self.finish(node, anchor, tag);
                }
            }
            Event::SequenceStart(anchor, tag) => {
                self.stack.push(Frame {
                    pos,
                    anchor,
                    tag,
                    kind: FrameKind::Seq(Vec::new()),
                });
            }
            Event::MappingStart(anchor, tag) => {
                self.stack.push(Frame {
                    pos,
                    anchor,
                    tag,
                    kind: FrameKind::Map {
                        entries: Vec::new(),
                        key: None,
                    },
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return;
                };
                let node = match frame.kind {
                    FrameKind::Seq(items) => Node::new(Kind::Seq(items), frame.pos),
                    FrameKind::Map { entries, .. } => {
                        // A block map's own mark points past its first key; the key is where a
                        // reader looks.
                        let pos = if self.is_flow_map_at(frame.pos) {
                            frame.pos
                        } else {
                            entries.first().map_or(frame.pos, |e| e.key_pos)
                        };
                        Node::new(Kind::Map(entries), pos)
                    }
                };
                self.finish(node, frame.anchor, frame.tag);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => self.push_value(node.with_pos(pos)),
                None => {
                    self.error(pos, "alias to an unknown anchor".into());
                    self.push_value(Node::invalid(pos));
                }
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// The 1-based line of each key of a map (none for anything else).
pub(crate) fn key_lines(map: &Node) -> std::collections::BTreeMap<String, usize> {
    map.entries()
        .unwrap_or_default()
        .iter()
        .map(|e| (e.key.clone(), e.key_pos.line))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> Node {
        let (root, errors) = parse(src);
        assert!(errors.is_empty(), "{errors:?}");
        root.unwrap()
    }

    #[test]
    fn plain_scalars_are_typed_and_quoted_ones_stay_strings() {
        let root = parse_ok("a: 123\nb: '123'\nc: true\nd: 1.5\ne: ~\nf: 0x10\ng: .inf\n");
        let json = root.to_json();
        assert_eq!(json["a"], serde_json::json!(123));
        assert_eq!(json["b"], serde_json::json!("123"));
        assert_eq!(json["c"], serde_json::json!(true));
        assert_eq!(json["d"], serde_json::json!(1.5));
        assert_eq!(json["e"], serde_json::Value::Null);
        assert_eq!(json["f"], serde_json::json!(16));
        assert_eq!(json["g"], serde_json::json!(".inf"));
    }

    #[test]
    fn positions_are_one_based() {
        let root = parse_ok("a:\n  b: 1\n");
        let a = root.entry("a").unwrap();
        assert_eq!(a.key_pos, Pos { line: 1, column: 1 });
        let b = a.value.entry("b").unwrap();
        assert_eq!(b.key_pos, Pos { line: 2, column: 3 });
        assert_eq!(b.value.pos, Pos { line: 2, column: 6 });
    }

    #[test]
    fn short_forms_become_long_forms() {
        let root = parse_ok("a: !Ref X\nb: !GetAtt F.Arn\nc: !Sub [x, {}]\n");
        assert_eq!(root.get("a").unwrap().pos, Pos { line: 1, column: 4 });
        assert_eq!(root.get("c").unwrap().pos, Pos { line: 3, column: 4 });
        let json = root.to_json();
        assert_eq!(json["a"], serde_json::json!({"Ref": "X"}));
        assert_eq!(json["b"], serde_json::json!({"Fn::GetAtt": ["F", "Arn"]}));
        assert_eq!(json["c"], serde_json::json!({"Fn::Sub": ["x", {}]}));
    }

    #[test]
    fn anchors_and_aliases_copy_the_node() {
        let root = parse_ok("a: &x {k: 1}\nb: *x\n");
        assert_eq!(root.to_json()["b"], serde_json::json!({"k": 1}));
    }

    #[test]
    fn duplicate_keys_are_reported_with_both_lines() {
        let (_, errors) = parse("a: 1\nb:\n  c: 1\n  c: 2\n");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "b.c");
        assert_eq!(errors[0].pos, Pos { line: 4, column: 3 });
        assert_eq!(
            errors[0].message,
            "duplicate key \"c\": it is already set on line 3; keep only one"
        );
    }
}
