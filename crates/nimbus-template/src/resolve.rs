//! Conditions and intrinsic functions: a positioned tree in, a resolved positioned tree out.
//!
//! Results keep positions (a `Ref` resolves to a value placed where the `Ref` was), so checks
//! that run after resolution, like "Timeout must be 1..=900", still point at the right line.

use std::collections::{BTreeMap, HashMap};

use crate::attrs::{self, Env, Family};
use crate::diag::{child, did_you_mean, index, Diags};
use crate::params::Param;
use crate::yaml::{Entry, Kind, Node, Pos};
use crate::LoadOptions;

/// A resource as declared, with `Globals` already merged into its properties.
#[derive(Debug, Clone)]
pub(crate) struct Decl {
    pub logical_id: String,
    pub resource_type: String,
    pub key_pos: Pos,
    pub properties_pos: Pos,
    pub condition: Option<(String, Pos)>,
    pub properties: Node,
    pub metadata: Option<Node>,
    pub depends_on: Option<Node>,
}

/// The parts of a template that intrinsics can refer to.
pub(crate) struct Template {
    pub params: BTreeMap<String, Param>,
    pub mappings: Option<Node>,
    pub conditions: BTreeMap<String, Node>,
    pub resources: BTreeMap<String, Decl>,
    /// Resources SAM generates (`ServerlessRestApi`, `{Function}Role`, ...): they can be
    /// referenced, as on AWS, but are not part of `Stack::resources`.
    pub implicit: BTreeMap<String, Decl>,
    /// `{Function}.Alias` references, by that name, to the function's logical id.
    pub aliases: BTreeMap<String, String>,
    /// SAM's other referenceable properties (`{Api}.Stage`, `{Api}.Deployment`,
    /// `{Function}.Version`, `{Api}.ApiKey`, ...), by that name, to the generated logical id.
    pub generated_refs: BTreeMap<String, String>,
}

impl Template {
    /// A declared or generated resource. SAM names some generated resources with a hash of
    /// their content (`MyApiDeployment926eeb5ff1`, `MyFunctionVersion640128d35d`); any such
    /// hash names the one local resource, which is generated without it.
    pub fn decl(&self, id: &str) -> Option<&Decl> {
        self.resources
            .get(id)
            .or_else(|| self.implicit.get(id))
            .or_else(|| self.implicit.get(without_sam_hash(id)?))
    }
}

/// `MyApiDeployment926eeb5ff1` -> `MyApiDeployment`: a 10-hex-digit suffix after the words SAM
/// puts before its hashes.
fn without_sam_hash(id: &str) -> Option<&str> {
    let (head, tail) = id.split_at_checked(id.len().checked_sub(10)?)?;
    let hashed = tail
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    (hashed && (head.ends_with("Deployment") || head.ends_with("Version"))).then_some(head)
}

const PSEUDO: &[&str] = &[
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
];

enum Memo<T> {
    Busy,
    Done(T),
}

pub(crate) struct Resolver<'a> {
    t: &'a Template,
    pub env: Env,
    stack_name: String,
    stack_id: String,
    url_suffix: String,
    pub diags: &'a mut Diags,
    conditions: HashMap<String, Memo<Option<bool>>>,
    names: HashMap<String, Memo<Option<String>>>,
    /// Evaluating `Conditions`, where CloudFormation allows only parameters.
    in_conditions: bool,
    /// `--import-values`: other stacks' exports, by name.
    imports: std::collections::BTreeMap<String, String>,
    strict: bool,
    include: Option<crate::Reader>,
    /// How deep `AWS::Include`s are nested now (an include may include).
    include_depth: usize,
}

impl<'a> Resolver<'a> {
    pub fn new(t: &'a Template, opts: &LoadOptions, diags: &'a mut Diags) -> Resolver<'a> {
        let region = opts.region.clone();
        let (partition, url_suffix) = if region.starts_with("cn-") {
            ("aws-cn", "amazonaws.com.cn")
        } else if region.starts_with("us-gov-") {
            ("aws-us-gov", "amazonaws.com")
        } else {
            ("aws", "amazonaws.com")
        };
        let env = Env {
            partition: partition.into(),
            region,
            account: opts.account_id.clone(),
            endpoint: opts.endpoint_url.trim_end_matches('/').to_owned(),
        };
        // AWS makes the id a random UUID; hashing the stack's coordinates keeps it stable
        // across runs, so nothing downstream sees a new stack on every start.
        let seed = format!("{}/{}/{}", env.region, env.account, opts.stack_name);
        let (h1, h2) = (
            attrs::fnv1a(seed.as_bytes(), 1),
            attrs::fnv1a(seed.as_bytes(), 2),
        );
        let uuid = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            h1 >> 32,
            (h1 >> 16) & 0xffff,
            h1 & 0xffff,
            h2 >> 48,
            h2 & 0xffff_ffff_ffff
        );
        let stack_id = env.arn(
            "cloudformation",
            true,
            &format!("stack/{}/{uuid}", opts.stack_name),
        );
        Resolver {
            t,
            env,
            stack_name: opts.stack_name.clone(),
            stack_id,
            url_suffix: url_suffix.into(),
            diags,
            conditions: HashMap::new(),
            names: HashMap::new(),
            in_conditions: false,
            imports: opts.import_values.clone(),
            strict: opts.strict,
            include: opts.include.clone(),
            include_depth: 0,
        }
    }

    fn fail(&mut self, path: &str, pos: Pos, message: impl Into<String>) -> Option<Node> {
        self.diags.error(path, pos, message);
        Some(Node::invalid(pos))
    }

    // ---- conditions -------------------------------------------------------------------------

    /// The value of a named condition, evaluated once. `None` when it could not be evaluated
    /// (the reason is already reported).
    pub fn condition(&mut self, name: &str, pos: Pos, path: &str) -> Option<bool> {
        match self.conditions.get(name) {
            Some(Memo::Done(v)) => return *v,
            Some(Memo::Busy) => {
                self.diags
                    .error(path, pos, format!("condition {name:?} depends on itself"));
                return None;
            }
            None => {}
        }
        let t = self.t;
        let Some(expr) = t.conditions.get(name) else {
            self.diags.error(
                path,
                pos,
                format!(
                    "unknown condition {name:?}{}; declare it under Conditions",
                    did_you_mean(name, t.conditions.keys().map(String::as_str))
                ),
            );
            return None;
        };
        self.conditions.insert(name.to_string(), Memo::Busy);
        let saved = std::mem::replace(&mut self.in_conditions, true);
        let value = self.condition_expr(expr, &child("Conditions", name));
        self.in_conditions = saved;
        self.conditions.insert(name.to_string(), Memo::Done(value));
        value
    }

    fn condition_expr(&mut self, node: &Node, path: &str) -> Option<bool> {
        let (f, arg) = match node.entries() {
            Some([e]) => (e.key.as_str(), &e.value),
            _ => {
                if !node.is_invalid() {
                    self.diags.error(
                        path,
                        node.pos,
                        format!(
                            "a condition must be Fn::Equals, Fn::And, Fn::Or, Fn::Not or \
                             Condition, got {}",
                            node.describe()
                        ),
                    );
                }
                return None;
            }
        };
        let p = child(path, f);
        let items = arg.as_seq().unwrap_or_default();
        match f {
            "Fn::Equals" => {
                if items.len() != 2 {
                    self.diags
                        .error(&p, arg.pos, "Fn::Equals expects a list of two values");
                    return None;
                }
                let a = self.resolve(&items[0], &index(&p, 0))?;
                let b = self.resolve(&items[1], &index(&p, 1))?;
                if a.is_invalid() || b.is_invalid() {
                    return None;
                }
                Some(loose(&a) == loose(&b))
            }
            "Fn::And" | "Fn::Or" => {
                if !(2..=10).contains(&items.len()) {
                    self.diags.error(
                        &p,
                        arg.pos,
                        format!("{f} expects a list of 2 to 10 conditions"),
                    );
                    return None;
                }
                // Every operand is evaluated, so each mistake in them is reported.
                let values: Vec<Option<bool>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| self.condition_expr(n, &index(&p, i)))
                    .collect();
                let values: Option<Vec<bool>> = values.into_iter().collect();
                let values = values?;
                Some(if f == "Fn::And" {
                    values.iter().all(|v| *v)
                } else {
                    values.iter().any(|v| *v)
                })
            }
            "Fn::Not" => {
                if items.len() != 1 {
                    self.diags
                        .error(&p, arg.pos, "Fn::Not expects a list of one condition");
                    return None;
                }
                self.condition_expr(&items[0], &index(&p, 0)).map(|v| !v)
            }
            "Condition" => match arg.as_str() {
                Some(name) => self.condition(name, arg.pos, &p),
                None => {
                    self.diags
                        .error(&p, arg.pos, "Condition takes a condition name");
                    None
                }
            },
            _ => {
                self.diags.error(
                    path,
                    node.pos,
                    format!(
                        "{f} cannot be used as a condition; use Fn::Equals, Fn::And, Fn::Or, \
                         Fn::Not or Condition"
                    ),
                );
                None
            }
        }
    }

    /// Whether a resource exists after `Conditions`. A condition that could not be evaluated
    /// counts as true, so the resource is still checked.
    pub fn is_kept(&mut self, id: &str) -> bool {
        let t = self.t;
        let Some(decl) = t.decl(id) else {
            return false;
        };
        match &decl.condition {
            None => true,
            Some((c, pos)) => {
                let path = child(&child("Resources", id), "Condition");
                self.condition(c, *pos, &path) != Some(false)
            }
        }
    }

    /// `Fn::Transform` of `AWS::Include`: the local file at `Parameters.Location`, parsed as
    /// YAML or JSON and resolved in place (its own intrinsics included), as CloudFormation
    /// inserts the snippet before processing. Its values are placed at the include's position,
    /// so a message about them points at the include.
    fn include(&mut self, arg: &Node, pos: Pos, path: &str) -> Option<Node> {
        let p = child(path, "Fn::Transform");
        let name = arg.get("Name").and_then(Node::as_str);
        if name != Some("AWS::Include") {
            return self.fail(
                &p,
                pos,
                format!(
                    "only the AWS::Include transform is run by nimbus (macros are not), got Name {}",
                    name.map_or("(none)".to_owned(), |n| format!("{n:?}"))
                ),
            );
        }
        let location = match arg.get("Parameters").and_then(|a| a.get("Location")) {
            Some(l) => match self.resolve(l, &child(&p, "Parameters.Location")) {
                Some(Node {
                    kind: Kind::String(s),
                    ..
                }) => s,
                _ => {
                    return self.fail(
                        &p,
                        pos,
                        "Parameters.Location must be a string (a file path)",
                    )
                }
            },
            None => {
                return self.fail(
                    &p,
                    pos,
                    "Parameters.Location is required (the file to include)",
                )
            }
        };
        if location.starts_with("s3://") || location.starts_with("https://") {
            return self.fail(
                &p,
                pos,
                format!("Location {location:?} is in S3, which nimbus cannot read; point it at a file beside the template"),
            );
        }
        const MAX_DEPTH: usize = 8;
        if self.include_depth >= MAX_DEPTH {
            return self.fail(
                &p,
                pos,
                format!(
                    "includes nest deeper than {MAX_DEPTH} (does {location:?} include itself?)"
                ),
            );
        }
        let Some(reader) = self.include.clone() else {
            return self.fail(
                &p,
                pos,
                "AWS::Include needs the template's folder to read from",
            );
        };
        let text = match (reader.0)(&location) {
            Ok(t) => t,
            Err(e) => return self.fail(&p, pos, format!("cannot read {location:?}: {e}")),
        };
        let (root, errors) = crate::yaml::parse(&text);
        if let Some(e) = errors.first() {
            return self.fail(
                &p,
                pos,
                format!("{location}:{}:{}: {}", e.pos.line, e.pos.column, e.message),
            );
        }
        let Some(root) = root else {
            return self.fail(&p, pos, format!("{location} is empty"));
        };
        self.include_depth += 1;
        let out = self.resolve(&at(root, pos), path);
        self.include_depth -= 1;
        out
    }

    // ---- intrinsic functions ----------------------------------------------------------------

    /// Resolves every intrinsic in `node`. `None` means `AWS::NoValue`: the caller drops the
    /// key or list element. Errors are reported and leave `Kind::Invalid` in place.
    pub fn resolve(&mut self, node: &Node, path: &str) -> Option<Node> {
        match &node.kind {
            Kind::Map(entries) => {
                if let Some((f, arg)) = node.intrinsic() {
                    return self.call(f, arg, node.pos, path);
                }
                let mut out = Vec::with_capacity(entries.len());
                for e in entries {
                    if let Some(v) = self.resolve(&e.value, &child(path, &e.key)) {
                        out.push(Entry {
                            key: e.key.clone(),
                            key_pos: e.key_pos,
                            value: v,
                        });
                    }
                }
                Some(Node::new(Kind::Map(out), node.pos))
            }
            Kind::Seq(items) => {
                let out = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| self.resolve(n, &index(path, i)))
                    .collect();
                Some(Node::new(Kind::Seq(out), node.pos))
            }
            _ => Some(node.clone()),
        }
    }

    fn call(&mut self, f: &str, arg: &Node, pos: Pos, path: &str) -> Option<Node> {
        match f {
            "Ref" => match arg.as_str() {
                Some(name) => self.ref_name(name, pos, path),
                None => self.fail(
                    path,
                    pos,
                    format!(
                        "Ref takes the name of a parameter, resource or pseudo parameter as a \
                         plain string, got {}",
                        arg.describe()
                    ),
                ),
            },
            "Fn::GetAtt" => self.get_att(arg, pos, path),
            "Fn::Sub" => self.sub(arg, pos, path),
            "Fn::Join" => self.join(arg, pos, path),
            "Fn::Select" => self.select(arg, pos, path),
            "Fn::Split" => self.split(arg, pos, path),
            "Fn::If" => self.if_(arg, pos, path),
            "Fn::FindInMap" => self.find_in_map(arg, pos, path),
            "Fn::Base64" => {
                let p = child(path, f);
                match self.resolve(arg, &p) {
                    Some(Node { kind: Kind::String(s), .. }) => {
                        Some(Node::string(base64(s.as_bytes()), pos))
                    }
                    Some(n) if n.is_invalid() => Some(n),
                    other => self.fail(
                        path,
                        pos,
                        format!("Fn::Base64 expects a string, got {}", describe_opt(&other)),
                    ),
                }
            }
            "Fn::GetAZs" => {
                let p = child(path, f);
                let region = match self.resolve(arg, &p) {
                    Some(Node { kind: Kind::String(s), .. }) if !s.is_empty() => s,
                    Some(Node { kind: Kind::String(_) | Kind::Null, .. }) => self.env.region.clone(),
                    Some(n) if n.is_invalid() => return Some(n),
                    other => {
                        return self.fail(
                            path,
                            pos,
                            format!("Fn::GetAZs expects a region name or \"\", got {}", describe_opt(&other)),
                        )
                    }
                };
                // nimbus has no zones; three names in AWS's format keep templates that pick
                // a zone by index working.
                let azs = ["a", "b", "c"].iter().map(|z| Node::string(format!("{region}{z}"), pos));
                Some(Node::new(Kind::Seq(azs.collect()), pos))
            }
            "Fn::ImportValue" => {
                let p = child(path, f);
                let name = match self.resolve(arg, &p) {
                    Some(Node { kind: Kind::String(s), .. }) => s,
                    Some(n) if n.is_invalid() => return Some(n),
                    other => {
                        return self.fail(
                            path,
                            pos,
                            format!("Fn::ImportValue expects an export name, got {}", describe_opt(&other)),
                        )
                    }
                };
                // nimbus runs one stack, so other stacks' exports come from the command line.
                if let Some(v) = self.imports.get(&name) {
                    return Some(Node::string(v.clone(), pos));
                }
                if self.strict {
                    return self.fail(
                        path,
                        pos,
                        format!("Fn::ImportValue of {name:?}: no other stack exports it here; pass --import-values {name}=VALUE"),
                    );
                }
                self.diags.warn(
                    path,
                    pos,
                    format!("Fn::ImportValue of {name:?}: no other stack exports it here; using the placeholder {name:?}. Pass --import-values {name}=VALUE for the real value; --strict refuses instead"),
                );
                Some(Node::string(name, pos))
            }
            "Fn::Equals" | "Fn::And" | "Fn::Or" | "Fn::Not" => self.fail(
                path,
                pos,
                format!("{f} can only be used under Conditions; declare a condition there and use Fn::If"),
            ),
            "Fn::Transform" => self.include(arg, pos, path),
            "Fn::Cidr" | "Fn::Length" | "Fn::ToJsonString" => {
                self.fail(path, pos, format!("{f} is not supported by nimbus; write the value out"))
            }
            _ => {
                const KNOWN: &[&str] = &[
                    "Fn::GetAtt",
                    "Fn::Sub",
                    "Fn::Join",
                    "Fn::Select",
                    "Fn::Split",
                    "Fn::If",
                    "Fn::FindInMap",
                    "Fn::Base64",
                    "Fn::GetAZs",
                ];
                self.fail(
                    path,
                    pos,
                    format!("unknown intrinsic function {f:?}{}", did_you_mean(f, KNOWN.iter().copied())),
                )
            }
        }
    }

    fn pseudo(&self, name: &str) -> Option<Option<Node>> {
        let s = |v: &str| Some(Some(Node::string(v, Pos::default())));
        match name {
            "AWS::AccountId" => s(&self.env.account),
            "AWS::Region" => s(&self.env.region),
            "AWS::Partition" => s(&self.env.partition),
            "AWS::StackName" => s(&self.stack_name),
            "AWS::StackId" => s(&self.stack_id),
            "AWS::URLSuffix" => s(&self.url_suffix),
            "AWS::NotificationARNs" => Some(Some(Node::new(Kind::Seq(Vec::new()), Pos::default()))),
            "AWS::NoValue" => Some(None),
            _ => None,
        }
    }

    /// `Ref name`, also used for `${name}` in `Fn::Sub`.
    fn ref_name(&mut self, name: &str, pos: Pos, path: &str) -> Option<Node> {
        let t = self.t;
        if let Some(v) = self.pseudo(name) {
            return v.map(|n| n.with_pos(pos));
        }
        if name.starts_with("AWS::") {
            return self.fail(
                path,
                pos,
                format!(
                    "unknown pseudo parameter {name:?}{}",
                    did_you_mean(name, PSEUDO.iter().copied())
                ),
            );
        }
        if let Some(p) = t.params.get(name) {
            return Some(p.value.clone().with_pos(pos));
        }
        if let Some(generated) = t.generated_refs.get(name) {
            return self.ref_name(generated, pos, path);
        }
        if let Some(function) = t.aliases.get(name) {
            self.target(function, "Ref", pos, path)?;
            let alias = self.property_text(function, "AutoPublishAlias");
            let fn_name = self.physical_name(function);
            return match (alias, fn_name) {
                (Some(alias), Some(fn_name)) => Some(Node::string(
                    format!("{}:{alias}", self.env.function_arn(&fn_name)),
                    pos,
                )),
                _ => Some(Node::invalid(pos)),
            };
        }
        let Some(decl) = self.target(name, "Ref", pos, path) else {
            return Some(Node::invalid(pos));
        };
        if let Some(arn) = self.qualified_function(name, &decl.resource_type) {
            return Some(Node::string(arn, pos));
        }
        let family = attrs::family(&decl.resource_type);
        match self.physical_name(name) {
            Some(phys) => Some(Node::string(
                attrs::ref_value(&self.env, family, &phys),
                pos,
            )),
            None => Some(Node::invalid(pos)),
        }
    }

    /// Looks up a resource that is referenced, reporting why it cannot be.
    fn target(&mut self, id: &str, what: &str, pos: Pos, path: &str) -> Option<&'a Decl> {
        let t = self.t;
        let Some(decl) = t.decl(id) else {
            let message = if what == "Ref" {
                let names = t
                    .params
                    .keys()
                    .chain(t.resources.keys())
                    .map(String::as_str);
                format!(
                    "Ref to {id:?}, which is not a parameter, resource or pseudo parameter{}",
                    did_you_mean(id, names)
                )
            } else {
                format!(
                    "{what} of {id:?}, which is not a resource{}",
                    did_you_mean(id, t.resources.keys().map(String::as_str))
                )
            };
            self.diags.error(path, pos, message);
            return None;
        };
        if self.in_conditions {
            self.diags.error(
                path,
                pos,
                format!("conditions can only use parameters and pseudo parameters, not the resource {id:?}"),
            );
            return None;
        }
        if !self.is_kept(id) {
            let cond = decl
                .condition
                .as_ref()
                .map(|c| c.0.as_str())
                .unwrap_or_default();
            self.diags.error(
                path,
                pos,
                format!(
                    "{what} to Resources.{id}, which is not created because its condition \
                     {cond:?} is false; guard this value with Fn::If [{cond}, ...]"
                ),
            );
            return None;
        }
        Some(decl)
    }

    /// A resource's physical name (see [`crate::attrs`]), computed once.
    pub fn physical_name(&mut self, id: &str) -> Option<String> {
        match self.names.get(id) {
            Some(Memo::Done(v)) => return v.clone(),
            Some(Memo::Busy) => {
                let t = self.t;
                let decl = t.decl(id)?;
                self.diags.error(
                    &child("Resources", id),
                    decl.key_pos,
                    "the name of this resource depends on itself; break the cycle of Ref/Fn::GetAtt",
                );
                return None;
            }
            None => {}
        }
        let t = self.t;
        let decl = t.decl(id)?;
        self.names.insert(id.to_string(), Memo::Busy);
        let prop = attrs::name_property(&decl.resource_type)
            .and_then(|p| decl.properties.entry(p).map(|e| (p, e)));
        let name = match prop {
            Some((p, e)) => {
                let path = format!("Resources.{id}.Properties.{p}");
                match self.resolve(&e.value, &path) {
                    None => Some(self.default_name(decl)),
                    Some(Node {
                        kind: Kind::String(s),
                        ..
                    }) => Some(s),
                    Some(n) if n.is_invalid() => None,
                    Some(n) => {
                        self.diags.error(
                            &path,
                            n.pos,
                            format!("expected a name string, got {}", n.describe()),
                        );
                        None
                    }
                }
            }
            None => Some(self.default_name(decl)),
        };
        self.names.insert(id.to_string(), Memo::Done(name.clone()));
        name
    }

    fn default_name(&mut self, decl: &Decl) -> String {
        if attrs::family(&decl.resource_type) == Family::Bucket {
            return crate::default_bucket_name(&decl.logical_id);
        }
        let fifo = attrs::family(&decl.resource_type) == Family::Queue
            && self
                .property_text(&decl.logical_id, "FifoQueue")
                .is_some_and(|v| v == "true");
        if fifo {
            format!("{}.fifo", decl.logical_id)
        } else {
            decl.logical_id.clone()
        }
    }

    /// A resolved scalar property of a resource, as text.
    /// `Ref` of an `AWS::Lambda::Version` or `AWS::Lambda::Alias`: the function's ARN with the
    /// alias's name, or with the version's logical id (which nimbus serves as a qualifier of the
    /// version it publishes for it). `None` for other types.
    fn qualified_function(&mut self, id: &str, resource_type: &str) -> Option<String> {
        let qualifier = match resource_type {
            "AWS::Lambda::Version" => id.to_owned(),
            "AWS::Lambda::Alias" => self.property_text(id, "Name")?,
            _ => return None,
        };
        let function = self.property_text(id, "FunctionName")?;
        Some(format!(
            "{}:{qualifier}",
            self.env.function_arn(function_name_of(&function))
        ))
    }

    fn property_text(&mut self, id: &str, prop: &str) -> Option<String> {
        let t = self.t;
        let decl = t.decl(id)?;
        let node = decl.properties.get(prop)?;
        self.resolve(node, &format!("Resources.{id}.Properties.{prop}"))?
            .scalar_text()
    }

    fn get_att(&mut self, arg: &Node, pos: Pos, path: &str) -> Option<Node> {
        let usage = "Fn::GetAtt expects [Resource, Attribute] or \"Resource.Attribute\"";
        match &arg.kind {
            Kind::String(s) => match s.split_once('.') {
                Some((id, attr)) => self.get_att_parts(id, attr, pos, path),
                None => self.fail(path, pos, format!("{usage}, got {s:?}")),
            },
            Kind::Seq(items) if items.len() == 2 => {
                let Some(id) = items[0].as_str() else {
                    return self.fail(
                        path,
                        pos,
                        format!("{usage}, got {} as the resource", items[0].describe()),
                    );
                };
                // The attribute name may itself be a Ref, as CloudFormation allows.
                let attr = self.resolve(&items[1], &index(&child(path, "Fn::GetAtt"), 1));
                match attr {
                    Some(Node {
                        kind: Kind::String(a),
                        ..
                    }) => self.get_att_parts(id, &a, pos, path),
                    Some(n) if n.is_invalid() => Some(n),
                    other => self.fail(
                        path,
                        pos,
                        format!("{usage}, got {} as the attribute", describe_opt(&other)),
                    ),
                }
            }
            _ => self.fail(path, pos, format!("{usage}, got {}", arg.describe())),
        }
    }

    fn get_att_parts(&mut self, id: &str, attr: &str, pos: Pos, path: &str) -> Option<Node> {
        let decl = match self.target(id, "Fn::GetAtt", pos, path) {
            Some(d) => d,
            None => return Some(Node::invalid(pos)),
        };
        match (decl.resource_type.as_str(), attr) {
            // The number is the publish's, known when nimbus starts the stack: the logical id
            // stands for it, and nimbus serves that id as a qualifier of the version.
            ("AWS::Lambda::Version", "Version") => return Some(Node::string(id, pos)),
            ("AWS::Lambda::Alias", "AliasArn") => {
                let arn = self.qualified_function(id, &decl.resource_type);
                return Some(arn.map_or_else(|| Node::invalid(pos), |a| Node::string(a, pos)));
            }
            ("AWS::Lambda::Version" | "AWS::Lambda::Alias", "FunctionArn") => {
                let f = self.property_text(id, "FunctionName");
                return Some(match f.as_deref().map(function_name_of) {
                    Some(f) => Node::string(self.env.function_arn(f), pos),
                    None => Node::invalid(pos),
                });
            }
            _ => {}
        }
        let Some(name) = self.physical_name(id) else {
            return Some(Node::invalid(pos));
        };
        let family = attrs::family(&decl.resource_type);
        let bus = if family == Family::Rule {
            self.property_text(id, "EventBusName")
                .map(|b| match b.split_once("event-bus/") {
                    Some((_, name)) => name.to_string(),
                    None => b,
                })
        } else {
            None
        };
        match attrs::get_att(
            &self.env,
            &decl.resource_type,
            id,
            &name,
            attr,
            bus.as_deref(),
        ) {
            Some(v) => Some(Node::string(v, pos)),
            None => {
                let known = attrs::attributes(family).unwrap_or_default();
                self.fail(
                    path,
                    pos,
                    format!(
                        "Resources.{id} ({}) has no attribute {attr:?}{}; it has {}",
                        decl.resource_type,
                        did_you_mean(attr, known.iter().copied()),
                        known.join(", ")
                    ),
                )
            }
        }
    }

    fn sub(&mut self, arg: &Node, pos: Pos, path: &str) -> Option<Node> {
        let usage = "Fn::Sub expects a string or [string, {variables}]";
        let (template, vars_node) = match &arg.kind {
            Kind::String(s) => (s.as_str(), None),
            Kind::Seq(items) if items.len() == 2 => match items[0].as_str() {
                Some(s) => (s, Some(&items[1])),
                None => {
                    return self.fail(
                        path,
                        pos,
                        format!("{usage}, got {} as the string", items[0].describe()),
                    )
                }
            },
            _ => return self.fail(path, pos, format!("{usage}, got {}", arg.describe())),
        };
        let mut vars: HashMap<&str, Option<String>> = HashMap::new();
        if let Some(vn) = vars_node {
            let Some(entries) = vn.entries() else {
                return self.fail(
                    path,
                    vn.pos,
                    format!("{usage}, got {} as the variables", vn.describe()),
                );
            };
            let vpath = index(&child(path, "Fn::Sub"), 1);
            for e in entries {
                let p = child(&vpath, &e.key);
                let text = match self.resolve(&e.value, &p) {
                    Some(n) if n.is_invalid() => None,
                    Some(n) => match n.scalar_text() {
                        Some(t) => Some(t),
                        None => {
                            self.diags.error(
                                &p,
                                n.pos,
                                format!(
                                    "a Fn::Sub variable must be a string, got {}",
                                    n.describe()
                                ),
                            );
                            None
                        }
                    },
                    None => {
                        self.diags.error(
                            &p,
                            e.value.pos,
                            "a Fn::Sub variable cannot be AWS::NoValue",
                        );
                        None
                    }
                };
                vars.insert(&e.key, text);
            }
        }
        let mut out = String::new();
        let mut ok = true;
        for part in sub_parts(template) {
            match part {
                SubPart::Text(t) => out.push_str(&t),
                SubPart::Var(name) => {
                    let text = match vars.get(name) {
                        Some(v) => v.clone(),
                        None => self.sub_var(name, pos, path),
                    };
                    match text {
                        Some(t) => out.push_str(&t),
                        None => ok = false,
                    }
                }
            }
        }
        Some(if ok {
            Node::string(out, pos)
        } else {
            Node::invalid(pos)
        })
    }

    fn sub_var(&mut self, name: &str, pos: Pos, path: &str) -> Option<String> {
        let node = match name.split_once('.') {
            Some((id, attr)) if !name.starts_with("AWS::") => {
                self.get_att_parts(id, attr, pos, path)
            }
            _ => self.ref_name(name, pos, path),
        };
        match node {
            None => {
                self.diags
                    .error(path, pos, "${AWS::NoValue} cannot be used inside Fn::Sub");
                None
            }
            Some(n) if n.is_invalid() => None,
            Some(n) => match n.scalar_text() {
                Some(t) => Some(t),
                None => {
                    self.diags.error(
                        path,
                        pos,
                        format!(
                            "Fn::Sub cannot insert ${{{name}}}: it is {}; use Fn::Join for lists",
                            n.describe()
                        ),
                    );
                    None
                }
            },
        }
    }

    /// The two-element argument list most functions take.
    fn pair<'n>(
        &mut self,
        f: &str,
        arg: &'n Node,
        pos: Pos,
        path: &str,
        usage: &str,
    ) -> Option<&'n [Node]> {
        match arg.as_seq() {
            Some(items) if items.len() == 2 => Some(items),
            _ => {
                self.diags.error(
                    path,
                    pos,
                    format!("{f} expects {usage}, got {}", arg.describe()),
                );
                None
            }
        }
    }

    /// Resolves a function argument that must be a list.
    fn list_arg(&mut self, f: &str, node: &Node, pos: Pos, path: &str) -> Result<Vec<Node>, Node> {
        match self.resolve(node, path) {
            Some(Node {
                kind: Kind::Seq(items),
                ..
            }) => Ok(items),
            Some(n) if n.is_invalid() => Err(n),
            other => {
                self.diags.error(
                    path,
                    pos,
                    format!("{f} needs a list here, got {}", describe_opt(&other)),
                );
                Err(Node::invalid(pos))
            }
        }
    }

    fn join(&mut self, arg: &Node, pos: Pos, path: &str) -> Option<Node> {
        let Some(items) = self.pair("Fn::Join", arg, pos, path, "[delimiter, [values]]") else {
            return Some(Node::invalid(pos));
        };
        let Some(delim) = items[0].as_str() else {
            return self.fail(
                path,
                pos,
                format!(
                    "the Fn::Join delimiter must be a string, got {}",
                    items[0].describe()
                ),
            );
        };
        let p = index(&child(path, "Fn::Join"), 1);
        let values = match self.list_arg("Fn::Join", &items[1], pos, &p) {
            Ok(v) => v,
            Err(n) => return Some(n),
        };
        let mut parts = Vec::with_capacity(values.len());
        let mut ok = true;
        for v in &values {
            match v.scalar_text() {
                Some(t) => parts.push(t),
                None if v.is_invalid() => ok = false,
                None => {
                    ok = false;
                    self.diags.error(
                        path,
                        v.pos,
                        format!("Fn::Join can only join strings, got {}", v.describe()),
                    );
                }
            }
        }
        Some(if ok {
            Node::string(parts.join(delim), pos)
        } else {
            Node::invalid(pos)
        })
    }

    fn select(&mut self, arg: &Node, pos: Pos, path: &str) -> Option<Node> {
        let Some(items) = self.pair("Fn::Select", arg, pos, path, "[index, [values]]") else {
            return Some(Node::invalid(pos));
        };
        let fp = child(path, "Fn::Select");
        let index_node = self.resolve(&items[0], &index(&fp, 0));
        let i = match index_node
            .as_ref()
            .and_then(Node::scalar_text)
            .map(|t| t.parse::<usize>())
        {
            Some(Ok(i)) => i,
            _ if index_node.as_ref().is_some_and(Node::is_invalid) => {
                return Some(Node::invalid(pos))
            }
            _ => {
                return self.fail(
                    path,
                    pos,
                    format!(
                        "the Fn::Select index must be a non-negative integer, got {}",
                        describe_opt(&index_node)
                    ),
                )
            }
        };
        let values = match self.list_arg("Fn::Select", &items[1], pos, &index(&fp, 1)) {
            Ok(v) => v,
            Err(n) => return Some(n),
        };
        match values.into_iter().nth(i) {
            Some(v) => Some(v.with_pos(pos)),
            None => self.fail(
                path,
                pos,
                format!("Fn::Select index {i} is out of range for the list"),
            ),
        }
    }

    fn split(&mut self, arg: &Node, pos: Pos, path: &str) -> Option<Node> {
        let Some(items) = self.pair("Fn::Split", arg, pos, path, "[delimiter, string]") else {
            return Some(Node::invalid(pos));
        };
        let Some(delim) = items[0].as_str().filter(|d| !d.is_empty()) else {
            return self.fail(
                path,
                pos,
                format!(
                    "the Fn::Split delimiter must be a non-empty string, got {}",
                    items[0].describe()
                ),
            );
        };
        match self.resolve(&items[1], &index(&child(path, "Fn::Split"), 1)) {
            Some(Node {
                kind: Kind::String(s),
                ..
            }) => {
                let parts = s.split(delim).map(|p| Node::string(p, pos)).collect();
                Some(Node::new(Kind::Seq(parts), pos))
            }
            Some(n) if n.is_invalid() => Some(n),
            other => self.fail(
                path,
                pos,
                format!(
                    "Fn::Split needs a string to split, got {}",
                    describe_opt(&other)
                ),
            ),
        }
    }

    fn if_(&mut self, arg: &Node, pos: Pos, path: &str) -> Option<Node> {
        let items = match arg.as_seq() {
            Some(items) if items.len() == 3 => items,
            _ => {
                return self.fail(
                    path,
                    pos,
                    format!(
                        "Fn::If expects [condition, value if true, value if false], got {}",
                        arg.describe()
                    ),
                )
            }
        };
        let Some(name) = items[0].as_str() else {
            return self.fail(
                path,
                pos,
                format!(
                    "the Fn::If condition must be a condition name, got {}",
                    items[0].describe()
                ),
            );
        };
        let fp = child(path, "Fn::If");
        // Only the chosen branch is resolved: the other one typically refers to a resource that
        // the same condition removed.
        match self.condition(name, items[0].pos, &index(&fp, 0)) {
            Some(true) => self.resolve(&items[1], path),
            Some(false) => self.resolve(&items[2], path),
            None => Some(Node::invalid(pos)),
        }
    }

    fn find_in_map(&mut self, arg: &Node, pos: Pos, path: &str) -> Option<Node> {
        let items = match arg.as_seq() {
            Some(items) if items.len() == 3 => items,
            Some(items) if items.len() == 4 => return self.fail(
                path,
                pos,
                "Fn::FindInMap with a DefaultValue needs the AWS::LanguageExtensions transform, \
                     which nimbus does not support; add the missing keys to the mapping",
            ),
            _ => {
                return self.fail(
                    path,
                    pos,
                    format!(
                        "Fn::FindInMap expects [MapName, TopLevelKey, SecondLevelKey], got {}",
                        arg.describe()
                    ),
                )
            }
        };
        let fp = child(path, "Fn::FindInMap");
        let mut keys = Vec::with_capacity(3);
        for (i, item) in items.iter().enumerate() {
            match self.resolve(item, &index(&fp, i)) {
                Some(n) if n.is_invalid() => return Some(n),
                Some(n) if n.scalar_text().is_some() => {
                    keys.push(n.scalar_text().unwrap_or_default())
                }
                other => {
                    return self.fail(
                        path,
                        pos,
                        format!(
                            "Fn::FindInMap keys must be strings, got {}",
                            describe_opt(&other)
                        ),
                    )
                }
            }
        }
        let t = self.t;
        let empty = Node::new(Kind::Map(Vec::new()), Pos::default());
        let mappings = t.mappings.as_ref().unwrap_or(&empty);
        let Some(map) = mappings.get(&keys[0]) else {
            let names = mappings
                .entries()
                .unwrap_or_default()
                .iter()
                .map(|e| e.key.as_str());
            return self.fail(
                path,
                pos,
                format!(
                    "Fn::FindInMap: there is no mapping {:?} under Mappings{}",
                    keys[0],
                    did_you_mean(&keys[0], names)
                ),
            );
        };
        let Some(top) = map.get(&keys[1]) else {
            let names = map
                .entries()
                .unwrap_or_default()
                .iter()
                .map(|e| e.key.as_str());
            return self.fail(
                path,
                pos,
                format!(
                    "Fn::FindInMap: Mappings.{} has no key {:?}{}",
                    keys[0],
                    keys[1],
                    did_you_mean(&keys[1], names)
                ),
            );
        };
        match top.get(&keys[2]) {
            Some(v) => Some(v.clone().with_pos(pos)),
            None => {
                let names = top
                    .entries()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| e.key.as_str());
                self.fail(
                    path,
                    pos,
                    format!(
                        "Fn::FindInMap: Mappings.{}.{} has no key {:?}{}",
                        keys[0],
                        keys[1],
                        keys[2],
                        did_you_mean(&keys[2], names)
                    ),
                )
            }
        }
    }
}

fn describe_opt(n: &Option<Node>) -> String {
    match n {
        Some(n) => n.describe(),
        None => "AWS::NoValue".into(),
    }
}

/// Values as `Fn::Equals` compares them: CloudFormation compares the text, so `5` equals `"5"`.
fn loose(n: &Node) -> serde_json::Value {
    match &n.kind {
        Kind::Seq(items) => serde_json::Value::Array(items.iter().map(loose).collect()),
        _ => match n.scalar_text() {
            Some(t) => serde_json::Value::String(t),
            None => n.to_json(),
        },
    }
}

#[derive(Debug, PartialEq)]
enum SubPart<'s> {
    Text(String),
    Var(&'s str),
}

fn sub_parts(s: &str) -> Vec<SubPart<'_>> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        text.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        if let Some(literal) = after.strip_prefix('!') {
            // `${!Name}` writes `${Name}` literally.
            text.push_str("${");
            rest = literal;
            continue;
        }
        match after.find('}') {
            Some(j) => {
                if !text.is_empty() {
                    parts.push(SubPart::Text(std::mem::take(&mut text)));
                }
                parts.push(SubPart::Var(after[..j].trim()));
                rest = &after[j + 1..];
            }
            None => {
                text.push_str("${");
                rest = after;
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(SubPart::Text(text));
    }
    parts
}

pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The function name in a `FunctionName` value: a name, or an ARN (qualified or not).
fn function_name_of(value: &str) -> &str {
    let name = value.rsplit_once(":function:").map_or(value, |(_, n)| n);
    name.split(':').next().unwrap_or(name)
}

/// `node` with every position set to `pos`.
fn at(node: Node, pos: Pos) -> Node {
    let kind = match node.kind {
        Kind::Map(entries) => Kind::Map(
            entries
                .into_iter()
                .map(|e| Entry {
                    key: e.key,
                    key_pos: pos,
                    value: at(e.value, pos),
                })
                .collect(),
        ),
        Kind::Seq(items) => Kind::Seq(items.into_iter().map(|n| at(n, pos)).collect()),
        other => other,
    };
    Node::new(kind, pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_splits_variables_and_keeps_escapes_literal() {
        assert_eq!(
            sub_parts("a-${X}-${!Y}-${ Z.Arn }-${"),
            vec![
                SubPart::Text("a-".into()),
                SubPart::Var("X"),
                SubPart::Text("-${Y}-".into()),
                SubPart::Var("Z.Arn"),
                SubPart::Text("-${".into()),
            ]
        );
    }

    #[test]
    fn base64_pads_like_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"hello world"), "aGVsbG8gd29ybGQ=");
    }
}
