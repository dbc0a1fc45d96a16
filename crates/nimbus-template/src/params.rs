//! `Parameters`: declared types and constraints, checked against overrides or defaults.

use std::collections::BTreeMap;

use crate::diag::{child, did_you_mean, Diags};
use crate::pattern::Pattern;
use crate::yaml::{Entry, Kind, Node, Pos};
use crate::LoadOptions;

/// A parameter's value as `Ref` yields it: CloudFormation hands out `Number` parameters as
/// strings, and list types as lists of strings.
#[derive(Debug, Clone)]
pub(crate) struct Param {
    pub value: Node,
    pub no_echo: bool,
    /// Nobody gave a value: it is a placeholder.
    pub placeholder: bool,
}

const KEYS: &[&str] = &[
    "Type",
    "Default",
    "AllowedValues",
    "AllowedPattern",
    "ConstraintDescription",
    "Description",
    "MaxLength",
    "MaxValue",
    "MinLength",
    "MinValue",
    "NoEcho",
];

#[derive(Clone, Copy, PartialEq)]
enum Type {
    String,
    Number,
    NumberList,
    List,
    /// `AWS::SSM::Parameter::Value<...>`: the value lives in Parameter Store, which nimbus does
    /// not read.
    Ssm {
        list: bool,
    },
    /// `AWS::EC2::KeyPair::KeyName` and friends: checked by CloudFormation against the account,
    /// which does not exist locally, so taken as written.
    AwsSpecific {
        list: bool,
    },
}

impl Type {
    fn parse(s: &str) -> Option<Type> {
        Some(match s {
            "String" | "AWS::SSM::Parameter::Name" => Type::String,
            "Number" => Type::Number,
            "List<Number>" => Type::NumberList,
            "CommaDelimitedList" => Type::List,
            _ => {
                if let Some(inner) = s
                    .strip_prefix("AWS::SSM::Parameter::Value<")
                    .and_then(|r| r.strip_suffix('>'))
                {
                    Type::Ssm {
                        list: inner.starts_with("List<") || inner == "CommaDelimitedList",
                    }
                } else if s.starts_with("AWS::") {
                    Type::AwsSpecific { list: false }
                } else if s.starts_with("List<AWS::") && s.ends_with('>') {
                    Type::AwsSpecific { list: true }
                } else {
                    return None;
                }
            }
        })
    }

    fn is_list(self) -> bool {
        matches!(
            self,
            Type::NumberList
                | Type::List
                | Type::Ssm { list: true }
                | Type::AwsSpecific { list: true }
        )
    }

    fn is_number(self) -> bool {
        matches!(self, Type::Number | Type::NumberList)
    }
}

/// A value for a parameter nobody gave one, accepted by its declared constraints: the first
/// `AllowedValues` entry, a number within `MinValue`/`MaxValue`, an id of the right shape for
/// the AWS-specific types, else a word padded to `MinLength`, within `MaxLength`, that
/// `AllowedPattern` accepts. `None` when no candidate fits.
fn placeholder(decl: &Node, ty: Type, type_name: &str) -> Option<String> {
    if let Some(first) = decl
        .get("AllowedValues")
        .and_then(Node::as_seq)
        .and_then(|items| items.first())
        .and_then(Node::scalar_text)
    {
        return Some(first);
    }
    let number = |key: &str| {
        decl.get(key)
            .and_then(Node::scalar_text)
            .and_then(|t| t.trim().parse::<f64>().ok())
    };
    if ty.is_number() {
        let v = match (number("MinValue"), number("MaxValue")) {
            (Some(min), _) => min,
            (None, Some(max)) if max < 1.0 => max,
            _ => 1.0,
        };
        return Some(if v.fract() == 0.0 {
            format!("{}", v as i64)
        } else {
            v.to_string()
        });
    }
    let inner = type_name
        .strip_prefix("List<")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(type_name);
    let shaped = match inner {
        "AWS::EC2::VPC::Id" => "vpc-0123456789abcdef0",
        "AWS::EC2::Subnet::Id" => "subnet-0123456789abcdef0",
        "AWS::EC2::SecurityGroup::Id" => "sg-0123456789abcdef0",
        "AWS::EC2::Image::Id" => "ami-0123456789abcdef0",
        "AWS::EC2::Instance::Id" => "i-0123456789abcdef0",
        "AWS::EC2::Volume::Id" => "vol-0123456789abcdef0",
        "AWS::Route53::HostedZone::Id" => "Z0123456789ABCDEFGHIJ",
        "AWS::EC2::AvailabilityZone::Name" => "us-east-1a",
        _ => "",
    };
    if !shaped.is_empty() {
        return Some(shaped.to_owned());
    }
    // CloudFormation's parameter values are at most 4 KB.
    let min_len = number("MinLength").map_or(0, |n| n.max(0.0) as usize);
    if min_len > 4096 {
        return None;
    }
    let max_len = number("MaxLength").map_or(usize::MAX, |n| n.max(0.0) as usize);
    let pattern = decl
        .get("AllowedPattern")
        .and_then(Node::as_str)
        .and_then(|p| Pattern::parse(p).ok());
    let candidates = [
        "placeholder",
        "nimbus-placeholder",
        "Placeholder1",
        "placeholder@example.com",
        "https://example.com",
        "arn:aws:iam::123456789012:role/placeholder",
        "a",
        "A",
        "0",
        "1",
    ];
    candidates
        .iter()
        .map(|c| {
            let mut v = (*c).to_owned();
            while v.len() < min_len {
                v.push('x');
            }
            v
        })
        .find(|v| v.len() <= max_len && pattern.as_ref().is_none_or(|p| p.full_match(v)))
}

pub(crate) fn load(
    section: Option<&Entry>,
    opts: &LoadOptions,
    diags: &mut Diags,
) -> BTreeMap<String, Param> {
    let mut params = BTreeMap::new();
    let entries = match section {
        None => &[][..],
        Some(e) => match &e.value.kind {
            Kind::Map(entries) => entries,
            Kind::Null => &[][..],
            _ => {
                diags.error(
                    "Parameters",
                    e.value.pos,
                    "expected a map of parameter declarations",
                );
                &[][..]
            }
        },
    };
    for e in entries {
        if let Some(p) = load_one(e, opts, diags) {
            params.insert(e.key.clone(), p);
        }
    }
    for name in opts.parameter_overrides.keys() {
        if !entries.iter().any(|e| &e.key == name) {
            let declared = entries.iter().map(|e| e.key.as_str());
            diags.error(
                "Parameters",
                section.map_or(Pos::default(), |s| s.key_pos),
                format!(
                    "--parameter-overrides sets {name:?}, which is not a parameter of this template{}",
                    did_you_mean(name, declared)
                ),
            );
        }
    }
    params
}

fn load_one(e: &Entry, opts: &LoadOptions, diags: &mut Diags) -> Option<Param> {
    let name = &e.key;
    let path = child("Parameters", name);
    if !is_logical_id(name) {
        diags.error(
            &path,
            e.key_pos,
            "a parameter name must be alphanumeric (A-Z, a-z, 0-9)",
        );
    }
    let decl = &e.value;
    let Some(fields) = decl.entries() else {
        diags.error(
            &path,
            decl.pos,
            "expected a map with at least a Type, e.g. \"Type: String\"",
        );
        return None;
    };
    for f in fields {
        if !KEYS.contains(&f.key.as_str()) {
            diags.error(
                &child(&path, &f.key),
                f.key_pos,
                format!(
                    "unknown parameter property {:?}{}; parameters take {}",
                    f.key,
                    did_you_mean(&f.key, KEYS.iter().copied()),
                    KEYS.join(", ")
                ),
            );
        }
    }
    let Some(type_node) = decl.get("Type") else {
        diags.error(&path, e.key_pos, "missing Type; add e.g. \"Type: String\"");
        return None;
    };
    let Some(ty) = type_node.as_str().and_then(Type::parse) else {
        diags.error(
            &child(&path, "Type"),
            type_node.pos,
            format!(
                "unknown parameter type {}; use String, Number, List<Number>, CommaDelimitedList, \
                 an AWS-specific type or AWS::SSM::Parameter::Value<...>",
                type_node.describe()
            ),
        );
        return None;
    };
    let no_echo = match decl.get("NoEcho") {
        None => false,
        Some(n) => match (&n.kind, n.as_str()) {
            (Kind::Bool(b), _) => *b,
            (_, Some("true")) => true,
            (_, Some("false")) => false,
            _ => {
                diags.error(
                    &child(&path, "NoEcho"),
                    n.pos,
                    format!("expected true or false, got {}", n.describe()),
                );
                false
            }
        },
    };

    let (text, source, vpath, vpos) = if let Some(v) = opts.parameter_overrides.get(name) {
        (v.clone(), "override", path.clone(), e.key_pos)
    } else if let Some(d) = decl.get("Default") {
        let Some(text) = d.scalar_text() else {
            diags.error(
                &child(&path, "Default"),
                d.pos,
                format!(
                    "expected a string Default (lists are written \"a,b,c\"), got {}",
                    d.describe()
                ),
            );
            return None;
        };
        (text, "default", child(&path, "Default"), d.pos)
    } else if opts.strict {
        diags.error(
            &path,
            e.key_pos,
            format!(
                "parameter {name:?} has no Default and no override; add a Default or pass \
                 --parameter-overrides {name}=VALUE"
            ),
        );
        return None;
    } else {
        // A local run rarely needs what such parameters hold (VPC ids, bucket names, e-mail
        // addresses): start with a value their constraints accept, and say so.
        let Some(value) = placeholder(decl, ty, type_node.as_str().unwrap_or_default()) else {
            diags.error(
                &path,
                e.key_pos,
                format!(
                    "parameter {name:?} has no Default and no override, and nimbus cannot make \
                     up a value its constraints accept; pass --parameter-overrides {name}=VALUE"
                ),
            );
            return None;
        };
        let shown = if no_echo {
            "a placeholder (hidden by NoEcho)".to_owned()
        } else {
            format!("the placeholder {value:?}")
        };
        diags.warn(
            &path,
            e.key_pos,
            format!(
                "parameter {name:?} has no Default and no override; using {shown}. Pass \
                 --parameter-overrides {name}=VALUE (or samconfig.toml) for a real value; \
                 --strict refuses instead"
            ),
        );
        (value, "placeholder", path.clone(), e.key_pos)
    };

    // The value (Default or override) of an `AWS::SSM::Parameter::Value<...>` parameter names
    // a parameter in Parameter Store; its value is what `Ref` gives, as on AWS. An override
    // that names none is taken as the value itself, the way to give one without a store.
    let text = match ty {
        Type::Ssm { .. } if source != "placeholder" => {
            match opts.parameter_store.as_ref().map(|r| (r.0)(&text)) {
                Some(Ok(value)) => value,
                _ if source == "override" => text,
                _ if opts.strict => {
                    diags.error(
                        &vpath,
                        vpos,
                        format!(
                            "parameter {name:?} reads the SSM parameter {text:?}, which nimbus's \
                             Parameter Store does not have; put it there (aws ssm put-parameter \
                             --endpoint-url ...) and start again"
                        ),
                    );
                    return None;
                }
                _ => {
                    diags.warn(
                        &path,
                        e.key_pos,
                        format!(
                            "parameter {name:?} reads the SSM parameter {text:?}, which nimbus's \
                             Parameter Store does not have; using its name as the value. Put it \
                             there (aws ssm put-parameter --endpoint-url ...) for the real value; \
                             --strict refuses instead"
                        ),
                    );
                    text
                }
            }
        }
        _ => text,
    };

    let items: Vec<String> = if ty.is_list() {
        // CloudFormation trims the spaces around each member of a comma-delimited list.
        text.split(',').map(|s| s.trim().to_string()).collect()
    } else {
        vec![text.clone()]
    };
    let shown = |v: &str| {
        if no_echo {
            "(hidden by NoEcho)".to_string()
        } else {
            format!("{v:?}")
        }
    };
    let mut ok = true;
    let mut fail = |diags: &mut Diags, msg: String| {
        ok = false;
        diags.error(&vpath, vpos, msg);
    };

    if ty.is_number() {
        for item in &items {
            if item
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .is_none()
            {
                fail(diags, format!("{source} {} is not a number", shown(item)));
            }
        }
    }
    if let Some(av) = decl.get("AllowedValues") {
        let allowed: Option<Vec<String>> = av
            .as_seq()
            .map(|items| items.iter().filter_map(Node::scalar_text).collect());
        match allowed {
            Some(allowed) => {
                for item in &items {
                    if !allowed.contains(item) {
                        fail(
                            diags,
                            format!(
                                "{source} {} is not one of the AllowedValues: {}",
                                shown(item),
                                allowed.join(", ")
                            ),
                        );
                    }
                }
            }
            None => diags.error(
                &child(&path, "AllowedValues"),
                av.pos,
                format!("expected a list of values, got {}", av.describe()),
            ),
        }
    }
    if let Some(ap) = decl.get("AllowedPattern") {
        match ap.as_str().map(|s| (s, Pattern::parse(s))) {
            Some((src, Ok(pattern))) => {
                let hint = decl
                    .get("ConstraintDescription")
                    .and_then(Node::as_str)
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                for item in &items {
                    if !pattern.full_match(item) {
                        fail(
                            diags,
                            format!(
                                "{source} {} does not match AllowedPattern {src:?}{hint}",
                                shown(item)
                            ),
                        );
                    }
                }
            }
            Some((src, Err(why))) => diags.error(
                &child(&path, "AllowedPattern"),
                ap.pos,
                format!("AllowedPattern {src:?} uses regex syntax nimbus cannot check: {why}"),
            ),
            None => diags.error(
                &child(&path, "AllowedPattern"),
                ap.pos,
                format!(
                    "expected a regular expression string, got {}",
                    ap.describe()
                ),
            ),
        }
    }
    let bound = |key: &str, diags: &mut Diags| -> Option<f64> {
        let n = decl.get(key)?;
        match n.scalar_text().and_then(|t| t.parse::<f64>().ok()) {
            Some(f) => Some(f),
            None => {
                diags.error(
                    &child(&path, key),
                    n.pos,
                    format!("expected a number, got {}", n.describe()),
                );
                None
            }
        }
    };
    let min_len = bound("MinLength", diags);
    let max_len = bound("MaxLength", diags);
    let min_val = bound("MinValue", diags);
    let max_val = bound("MaxValue", diags);
    for item in &items {
        if !ty.is_number() {
            let len = item.chars().count() as f64;
            if let Some(min) = min_len.filter(|m| len < *m) {
                fail(
                    diags,
                    format!("{source} {} is shorter than MinLength {min}", shown(item)),
                );
            }
            if let Some(max) = max_len.filter(|m| len > *m) {
                fail(
                    diags,
                    format!("{source} {} is longer than MaxLength {max}", shown(item)),
                );
            }
        } else if let Ok(v) = item.trim().parse::<f64>() {
            if let Some(min) = min_val.filter(|m| v < *m) {
                fail(
                    diags,
                    format!("{source} {} is less than MinValue {min}", shown(item)),
                );
            }
            if let Some(max) = max_val.filter(|m| v > *m) {
                fail(
                    diags,
                    format!("{source} {} is greater than MaxValue {max}", shown(item)),
                );
            }
        }
    }
    if !ok {
        return Some(Param {
            value: Node::invalid(vpos),
            no_echo,
            placeholder: source == "placeholder",
        });
    }
    let value = if ty.is_list() {
        Node::new(
            Kind::Seq(items.into_iter().map(|s| Node::string(s, vpos)).collect()),
            vpos,
        )
    } else {
        Node::string(text, vpos)
    };
    Some(Param {
        value,
        no_echo,
        placeholder: source == "placeholder",
    })
}

/// CloudFormation's rule for logical ids and parameter names.
pub(crate) fn is_logical_id(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
}
