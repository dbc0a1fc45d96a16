//! The loader proper: top-level sections, then resources, functions and outputs.

use std::collections::BTreeMap;

use crate::diag::{child, did_you_mean, index, Diags};
use crate::function;
use crate::globals::Globals;
use crate::model::{ParameterValue, Resource, Stack};
use crate::params::{self, is_logical_id};
use crate::resolve::{Decl, Resolver, Template};
use crate::yaml::{Entry, Kind, Node, Pos};
use crate::LoadOptions;

const SECTIONS: &[&str] = &[
    "AWSTemplateFormatVersion",
    "Transform",
    "Description",
    "Metadata",
    "Parameters",
    "Rules",
    "Mappings",
    "Conditions",
    "Globals",
    "Resources",
    "Outputs",
];

const SAM_TRANSFORM: &str = "AWS::Serverless-2016-10-31";

const RESOURCE_ATTRIBUTES: &[&str] = &[
    "Type",
    "Properties",
    "Metadata",
    "Condition",
    "DependsOn",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "UpdatePolicy",
    "CreationPolicy",
    "IgnoreGlobals",
    "Connectors",
];

const SAM_TYPES: &[&str] = &[
    "AWS::Serverless::Function",
    "AWS::Serverless::Api",
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::SimpleTable",
    "AWS::Serverless::LayerVersion",
    "AWS::Serverless::Application",
    "AWS::Serverless::StateMachine",
    "AWS::Serverless::Connector",
    "AWS::Serverless::GraphQLApi",
];

/// The resource types that become [`crate::Function`]s.
const FUNCTIONS: &[&str] = &["AWS::Serverless::Function", "AWS::Lambda::Function"];

/// The other resource types nimbus serves today; every type in neither list is kept in the
/// model with a warning.
const SERVED: &[&str] = &[
    "AWS::Serverless::Api",
    "AWS::Serverless::HttpApi",
    "AWS::ApiGateway::ApiKey",
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGateway::UsagePlanKey",
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
    "AWS::DynamoDB::GlobalTable",
    "AWS::Serverless::SimpleTable",
    "AWS::Events::EventBus",
    "AWS::Events::Rule",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::CloudWatch::Alarm",
    "AWS::Serverless::LayerVersion",
    "AWS::Lambda::LayerVersion",
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::Resource",
    "AWS::ApiGateway::Method",
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::Stage",
    "AWS::ApiGateway::Authorizer",
    "AWS::ApiGateway::GatewayResponse",
    "AWS::ApiGateway::RequestValidator",
    "AWS::ApiGateway::Model",
    "AWS::ApiGatewayV2::Authorizer",
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Stage",
    "AWS::ApiGatewayV2::Deployment",
    "AWS::SSM::Parameter",
    "AWS::SecretsManager::Secret",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::Serverless::StateMachine",
    "AWS::StepFunctions::StateMachine",
    "AWS::Scheduler::Schedule",
    "AWS::S3::Bucket",
    "AWS::Lambda::Version",
    "AWS::Lambda::Alias",
    "AWS::CodeDeploy::DeploymentConfig",
    // A function's group, or a rule's target (written to on first use).
    "AWS::Logs::LogGroup",
];

/// Resource types a local run needs nothing from (permissions, networking, encryption keys,
/// domains, certificates, firewalls, deployment bookkeeping): accepted without a warning and
/// listed by `nimbus validate`. A prefix ending in `::` takes the whole service.
const NOT_EMULATED: &[&str] = &[
    "AWS::IAM::",
    "AWS::EC2::",
    "AWS::KMS::",
    "AWS::WAF::",
    "AWS::WAFv2::",
    "AWS::WAFRegional::",
    "AWS::CertificateManager::",
    "AWS::Route53::",
    "AWS::ResourceGroups::",
    "AWS::ApplicationInsights::",
    "AWS::CloudFormation::",
    "AWS::XRay::",
    "AWS::SSO::",
    "AWS::Budgets::",
    "AWS::ApiGateway::Account",
    "AWS::ApiGateway::DomainName",
    "AWS::ApiGateway::BasePathMapping",
    "AWS::ApiGatewayV2::DomainName",
    "AWS::ApiGatewayV2::ApiMapping",
    "AWS::Lambda::Permission",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::S3::BucketPolicy",
    "AWS::Events::EventBusPolicy",
    "AWS::Logs::ResourcePolicy",
    "AWS::Serverless::Connector",
    "AWS::CodeDeploy::Application",
];

fn not_emulated(resource_type: &str) -> bool {
    NOT_EMULATED.iter().any(|t| {
        if t.ends_with("::") {
            resource_type.starts_with(t)
        } else {
            resource_type == *t
        }
    })
}

/// Builds the stack, reporting into `diags`. The caller turns any error into a failure.
pub(crate) fn build(root: &Node, opts: &LoadOptions, diags: &mut Diags) -> Option<Stack> {
    let Some(sections) = root.entries() else {
        diags.error(
            "(template)",
            root.pos,
            format!(
                "a template must be a map of sections (AWSTemplateFormatVersion, Resources, ...), \
                 got {}",
                root.describe()
            ),
        );
        return None;
    };
    for e in sections {
        if e.key == "Rules" {
            diags.warn(
                "Rules",
                e.key_pos,
                "Rules are not evaluated by nimbus; their assertions are not checked",
            );
        } else if !SECTIONS.contains(&e.key.as_str()) {
            diags.error(
                &e.key,
                e.key_pos,
                format!(
                    "unknown top-level section {:?}{}; a template has {}",
                    e.key,
                    did_you_mean(&e.key, SECTIONS.iter().copied()),
                    SECTIONS.join(", ")
                ),
            );
        }
    }
    if let Some(v) = root.get("AWSTemplateFormatVersion") {
        if v.scalar_text().as_deref() != Some("2010-09-09") {
            diags.error(
                "AWSTemplateFormatVersion",
                v.pos,
                format!(
                    "expected \"2010-09-09\", the only template format version, got {}",
                    v.describe()
                ),
            );
        }
    }
    let has_sam = transform(root.entry("Transform"), diags);
    if let Some(d) = root.get("Description") {
        if d.as_str().is_none() {
            diags.error(
                "Description",
                d.pos,
                format!("expected a string, got {}", d.describe()),
            );
        }
    }
    if let Some(m) = root.get("Metadata") {
        if m.entries().is_none() && !matches!(m.kind, Kind::Null) {
            diags.error(
                "Metadata",
                m.pos,
                format!("expected a map, got {}", m.describe()),
            );
        }
    }

    let params = params::load(root.entry("Parameters"), opts, diags);
    let mappings = mappings(root.entry("Mappings"), diags);
    let conditions = conditions(root.entry("Conditions"), diags);
    let globals_entry = root.entry("Globals");
    if let (Some(g), false) = (globals_entry, has_sam) {
        diags.error(
            "Globals",
            g.key_pos,
            format!("Globals is a SAM section; add \"Transform: {SAM_TRANSFORM}\" to the template"),
        );
    }
    let globals = Globals::load(globals_entry, diags);

    let mut resources = BTreeMap::new();
    match root.entry("Resources") {
        None => diags.error(
            "Resources",
            Pos { line: 1, column: 1 },
            "missing Resources section; a template needs at least one resource",
        ),
        Some(e) => match e.value.entries() {
            Some(entries) if !entries.is_empty() => {
                for r in entries {
                    if let Some(decl) = declare(r, &globals, diags) {
                        resources.insert(r.key.clone(), decl);
                    }
                }
            }
            Some(_) | None if matches!(e.value.kind, Kind::Map(_) | Kind::Null) => diags.error(
                "Resources",
                e.key_pos,
                "Resources is empty; declare at least one resource",
            ),
            _ => diags.error(
                "Resources",
                e.value.pos,
                format!("expected a map of resources, got {}", e.value.describe()),
            ),
        },
    }
    for (id, decl) in &resources {
        if params.contains_key(id) {
            diags.error(
                &child("Resources", id),
                decl.key_pos,
                format!("{id:?} is both a parameter and a resource; logical ids must be unique"),
            );
        }
    }
    if !has_sam {
        if let Some(d) = resources
            .values()
            .find(|d| d.resource_type.starts_with("AWS::Serverless::"))
        {
            diags.error(
                &child(&child("Resources", &d.logical_id), "Type"),
                d.key_pos,
                format!(
                    "{} needs \"Transform: {SAM_TRANSFORM}\" at the top of the template; \
                     CloudFormation refuses SAM resources without it",
                    d.resource_type
                ),
            );
        }
    }

    let generated = implicit_resources(&resources, &globals, &params, diags);
    let t = Template {
        params,
        mappings,
        conditions,
        resources,
        implicit: generated.implicit,
        aliases: generated.aliases,
        generated_refs: generated.refs,
    };
    let mut r = Resolver::new(&t, opts, diags);
    for (name, node) in &t.conditions {
        r.condition(name, node.pos, &child("Conditions", name));
    }

    let mut stack_resources = BTreeMap::new();
    let mut functions = Vec::new();
    let mut function_names: BTreeMap<String, String> = BTreeMap::new();
    let mut not_emulated_ids = Vec::new();
    for (id, decl) in &t.resources {
        if !r.is_kept(id) {
            continue;
        }
        let base = child("Resources", id);
        depends_on(&mut r, &t, decl, &base);
        let empty = Node::new(Kind::Map(Vec::new()), decl.properties_pos);
        let props_path = child(&base, "Properties");
        let props = r
            .resolve(&decl.properties, &props_path)
            .unwrap_or_else(|| empty.clone());
        if props.entries().is_none() && !props.is_invalid() {
            r.diags.error(
                &props_path,
                props.pos,
                format!("expected a map of properties, got {}", props.describe()),
            );
        }
        let metadata = match &decl.metadata {
            Some(m) => r
                .resolve(m, &child(&base, "Metadata"))
                .unwrap_or_else(|| empty.clone()),
            None => empty.clone(),
        };
        if FUNCTIONS.contains(&decl.resource_type.as_str()) {
            if let Some(name) = r.physical_name(id) {
                if let Some(f) = function::build(decl, name, &props, &metadata, r.diags) {
                    match function_names.get(&f.name) {
                        Some(first) => {
                            let (path, pos) = match props.entry("FunctionName") {
                                Some(e) => (child(&props_path, "FunctionName"), e.value.pos),
                                None => (base.clone(), decl.key_pos),
                            };
                            r.diags.error(
                                &path,
                                pos,
                                format!(
                                    "function name {:?} is already used by Resources.{first}; \
                                     function names must be unique",
                                    f.name
                                ),
                            );
                        }
                        None => {
                            function_names.insert(f.name.clone(), id.clone());
                            functions.push(f);
                        }
                    }
                }
            }
        } else if not_emulated(&decl.resource_type) {
            not_emulated_ids.push((id.clone(), decl.resource_type.clone()));
        } else if !SERVED.contains(&decl.resource_type.as_str()) {
            r.diags.warn(
                &base,
                decl.key_pos,
                format!(
                    "resource type {} is not served by nimbus yet; ignoring Resources.{id}",
                    decl.resource_type
                ),
            );
        }
        stack_resources.insert(
            id.clone(),
            Resource {
                logical_id: id.clone(),
                resource_type: decl.resource_type.clone(),
                properties: props.to_json(),
                metadata: metadata.to_json(),
                line: decl.key_pos.line,
                property_lines: crate::yaml::key_lines(&props),
            },
        );
    }

    // The APIs SAM generates for `Api` / `HttpApi` events are served like declared ones.
    for (id, decl) in &t.implicit {
        if !decl.resource_type.starts_with("AWS::Serverless::") {
            continue;
        }
        let path = child(&child("Resources", id), "Properties");
        let props = r
            .resolve(&decl.properties, &path)
            .unwrap_or_else(|| Node::new(Kind::Map(Vec::new()), decl.properties_pos));
        stack_resources.insert(
            id.clone(),
            Resource {
                logical_id: id.clone(),
                resource_type: decl.resource_type.clone(),
                properties: props.to_json(),
                metadata: serde_json::Value::Object(Default::default()),
                line: decl.key_pos.line,
                property_lines: crate::yaml::key_lines(&props),
            },
        );
    }

    let outputs = outputs(&mut r, root.entry("Outputs"));
    let parameters = t
        .params
        .iter()
        .map(|(k, p)| {
            (
                k.clone(),
                ParameterValue {
                    value: p.value.to_json(),
                    no_echo: p.no_echo,
                    placeholder: p.placeholder,
                },
            )
        })
        .collect();
    Some(Stack {
        functions,
        resources: stack_resources,
        parameters,
        outputs,
        warnings: Vec::new(),
        not_emulated: not_emulated_ids,
        region: opts.region.clone(),
        account_id: opts.account_id.clone(),
    })
}

/// Whether the SAM transform is declared; any other transform is an error.
fn transform(e: Option<&Entry>, diags: &mut Diags) -> bool {
    let Some(e) = e else { return false };
    let items: Vec<&Node> = match &e.value.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![&e.value],
    };
    let mut has_sam = false;
    for (i, n) in items.iter().enumerate() {
        let path = if items.len() > 1 {
            index("Transform", i)
        } else {
            "Transform".to_string()
        };
        match n.as_str() {
            Some(SAM_TRANSFORM) => has_sam = true,
            Some(other) => diags.error(
                &path,
                n.pos,
                format!("transform {other:?} is not supported by nimbus; only {SAM_TRANSFORM} is"),
            ),
            None => diags.error(
                &path,
                n.pos,
                format!("expected a transform name, got {}", n.describe()),
            ),
        }
    }
    has_sam
}

fn mappings(e: Option<&Entry>, diags: &mut Diags) -> Option<Node> {
    let e = e?;
    let Some(maps) = e.value.entries() else {
        if !matches!(e.value.kind, Kind::Null) {
            diags.error(
                "Mappings",
                e.value.pos,
                format!("expected a map of mappings, got {}", e.value.describe()),
            );
        }
        return None;
    };
    for m in maps {
        let path = child("Mappings", &m.key);
        let Some(tops) = m.value.entries() else {
            diags.error(
                &path,
                m.value.pos,
                format!(
                    "expected a map of top-level keys, got {}",
                    m.value.describe()
                ),
            );
            continue;
        };
        for top in tops {
            let tpath = child(&path, &top.key);
            let Some(seconds) = top.value.entries() else {
                diags.error(
                    &tpath,
                    top.value.pos,
                    format!(
                        "expected a map of second-level keys, got {}",
                        top.value.describe()
                    ),
                );
                continue;
            };
            for s in seconds {
                let bad = match &s.value.kind {
                    Kind::Map(_) => true,
                    Kind::Seq(items) => items.iter().any(|i| i.scalar_text().is_none()),
                    _ => false,
                };
                if bad {
                    diags.error(
                        &child(&tpath, &s.key),
                        s.value.pos,
                        "a mapping value must be a string, a number or a list of them; intrinsic functions are not allowed here",
                    );
                }
            }
        }
    }
    Some(e.value.clone())
}

fn conditions(e: Option<&Entry>, diags: &mut Diags) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let Some(e) = e else { return out };
    let Some(entries) = e.value.entries() else {
        if !matches!(e.value.kind, Kind::Null) {
            diags.error(
                "Conditions",
                e.value.pos,
                format!("expected a map of conditions, got {}", e.value.describe()),
            );
        }
        return out;
    };
    for c in entries {
        if !is_logical_id(&c.key) {
            diags.error(
                &child("Conditions", &c.key),
                c.key_pos,
                "a condition name must be alphanumeric (A-Z, a-z, 0-9)",
            );
        }
        out.insert(c.key.clone(), c.value.clone());
    }
    out
}

fn valid_type(t: &str) -> bool {
    let parts: Vec<&str> = t.split("::").collect();
    let shape_ok = parts.len() == 3 || (parts.len() == 2 && parts[0] == "Custom");
    shape_ok
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

fn declare(e: &Entry, globals: &Globals, diags: &mut Diags) -> Option<Decl> {
    let id = &e.key;
    let base = child("Resources", id);
    if !is_logical_id(id) {
        diags.error(
            &base,
            e.key_pos,
            "a logical id must be alphanumeric (A-Z, a-z, 0-9)",
        );
    }
    let Some(fields) = e.value.entries() else {
        diags.error(
            &base,
            e.value.pos,
            format!(
                "expected a map with at least a Type, got {}",
                e.value.describe()
            ),
        );
        return None;
    };
    for f in fields {
        if !RESOURCE_ATTRIBUTES.contains(&f.key.as_str()) {
            diags.error(
                &child(&base, &f.key),
                f.key_pos,
                format!(
                    "unknown resource attribute {:?}{}; resources take {}",
                    f.key,
                    did_you_mean(&f.key, RESOURCE_ATTRIBUTES.iter().copied()),
                    RESOURCE_ATTRIBUTES.join(", ")
                ),
            );
        }
    }
    let resource_type = match e.value.get("Type") {
        None => {
            diags.error(
                &base,
                e.key_pos,
                "missing Type; add e.g. \"Type: AWS::Serverless::Function\"",
            );
            return None;
        }
        Some(t) => match t.as_str() {
            Some(s) if !valid_type(s) => {
                diags.error(
                    &child(&base, "Type"),
                    t.pos,
                    format!("{s:?} is not a resource type; types look like AWS::Service::Resource"),
                );
                return None;
            }
            Some(s) if s.starts_with("AWS::Serverless::") && !SAM_TYPES.contains(&s) => {
                diags.error(
                    &child(&base, "Type"),
                    t.pos,
                    format!(
                        "unknown SAM resource type {s:?}{}",
                        did_you_mean(s, SAM_TYPES.iter().copied())
                    ),
                );
                return None;
            }
            Some(s) => s.to_string(),
            None => {
                diags.error(
                    &child(&base, "Type"),
                    t.pos,
                    format!("expected a resource type string, got {}", t.describe()),
                );
                return None;
            }
        },
    };
    let condition = match e.value.get("Condition") {
        None => None,
        Some(c) => match c.as_str() {
            Some(name) => Some((name.to_string(), c.pos)),
            None => {
                diags.error(
                    &child(&base, "Condition"),
                    c.pos,
                    format!("expected a condition name, got {}", c.describe()),
                );
                None
            }
        },
    };
    let props_entry = e.value.entry("Properties");
    let properties_pos = props_entry.map_or(e.key_pos, |p| p.key_pos);
    let properties = match props_entry.map(|p| &p.value) {
        None
        | Some(Node {
            kind: Kind::Null, ..
        }) => Node::new(Kind::Map(Vec::new()), properties_pos),
        Some(p) => p.clone(),
    };
    if properties.entries().is_none() && properties.intrinsic().is_none() {
        diags.error(
            &child(&base, "Properties"),
            properties.pos,
            format!(
                "expected a map of properties, got {}",
                properties.describe()
            ),
        );
        return None;
    }
    let metadata = match e.value.get("Metadata") {
        None
        | Some(Node {
            kind: Kind::Null, ..
        }) => None,
        Some(m) if m.entries().is_some() => Some(m.clone()),
        Some(m) => {
            diags.error(
                &child(&base, "Metadata"),
                m.pos,
                format!("expected a map, got {}", m.describe()),
            );
            None
        }
    };
    crate::sam_props::check(
        &resource_type,
        &properties,
        &child(&base, "Properties"),
        diags,
    );
    let properties = globals.apply(
        &resource_type,
        &properties,
        e.value.get("IgnoreGlobals"),
        &base,
        diags,
    );
    Some(Decl {
        logical_id: id.clone(),
        resource_type,
        key_pos: e.key_pos,
        properties_pos,
        condition,
        properties,
        metadata,
        depends_on: e.value.get("DependsOn").cloned(),
    })
}

/// What the SAM transform would generate that a template may name.
struct Generated {
    implicit: BTreeMap<String, Decl>,
    aliases: BTreeMap<String, String>,
    refs: BTreeMap<String, String>,
}

/// Resources the SAM transform generates, with SAM's logical ids, so that `Ref`, `Fn::GetAtt`,
/// `Fn::Sub`, `DependsOn` and `Outputs` may name them as on AWS: `ServerlessRestApi` /
/// `ServerlessHttpApi` for events without an explicit API; each API's stage
/// (`{Api}{StageName}Stage`, `{Api}ApiGatewayDefaultStage`) and deployment
/// (`{Api}Deployment<hash>`); usage plans, keys and plan keys; `{Function}Role`,
/// `{Function}Version<hash>`, `{Function}Alias{Alias}`; per event, the permission, rule, event
/// source mapping or subscription (`{Function}{Event}[Permission]`); `{StateMachine}Role`; and
/// the referenceable properties (`{Api}.Stage`, `{Function}.Alias`, ...).
fn implicit_resources(
    resources: &BTreeMap<String, Decl>,
    globals: &Globals,
    params: &BTreeMap<String, crate::params::Param>,
    diags: &mut Diags,
) -> Generated {
    let mut implicit = BTreeMap::new();
    let mut aliases = BTreeMap::new();
    let mut refs = BTreeMap::new();
    // The APIs, declared or generated, and their stage names.
    let mut apis: Vec<(String, &Decl, bool)> = Vec::new();
    let mut implicit_rest: Option<&Decl> = None;
    let mut implicit_http: Option<&Decl> = None;
    for (id, d) in resources {
        match d.resource_type.as_str() {
            "AWS::Serverless::Api" => apis.push((id.clone(), d, true)),
            "AWS::Serverless::HttpApi" => apis.push((id.clone(), d, false)),
            "AWS::Serverless::StateMachine" if d.properties.get("Role").is_none() => add(
                &mut implicit,
                resources,
                format!("{id}Role"),
                "AWS::IAM::Role",
                d,
                d.condition.clone(),
                vec![],
            ),
            _ => {}
        }
        if d.resource_type != "AWS::Serverless::Function" {
            continue;
        }
        let cond = || d.condition.clone();
        if d.properties.get("Role").is_none() {
            add(
                &mut implicit,
                resources,
                format!("{id}Role"),
                "AWS::IAM::Role",
                d,
                cond(),
                vec![],
            );
        }
        if let Some(alias) = d.properties.get("AutoPublishAlias") {
            aliases.insert(format!("{id}.Alias"), id.clone());
            if let Some(alias) = alias.as_str() {
                let alias_id = format!("{id}Alias{}", logical_id_part(alias));
                aliases.insert(alias_id, id.clone());
            }
            add(
                &mut implicit,
                resources,
                format!("{id}Version"),
                "AWS::Lambda::Version",
                d,
                cond(),
                vec![],
            );
            refs.insert(format!("{id}.Version"), format!("{id}Version"));
        }
        if d.properties.get("EventInvokeConfig").is_some() {
            add(
                &mut implicit,
                resources,
                format!("{id}EventInvokeConfig"),
                "AWS::Lambda::EventInvokeConfig",
                d,
                cond(),
                vec![],
            );
        }
        for ev in d
            .properties
            .get("Events")
            .and_then(Node::entries)
            .unwrap_or_default()
        {
            let props = ev.value.get("Properties");
            let event_id = format!("{id}{}", ev.key);
            let permission = format!("{event_id}Permission");
            const PERMISSION: &str = "AWS::Lambda::Permission";
            let kind = ev.value.get("Type").and_then(Node::as_str);
            match kind {
                Some("Api") if props.and_then(|p| p.get("RestApiId")).is_none() => {
                    implicit_rest.get_or_insert(d);
                }
                Some("HttpApi") if props.and_then(|p| p.get("ApiId")).is_none() => {
                    implicit_http.get_or_insert(d);
                }
                _ => {}
            }
            let made: Vec<(String, &str)> = match kind {
                // Older SAM versions named an Api event's permission after the stage too.
                Some("Api") => vec![
                    (format!("{permission}Prod"), PERMISSION),
                    (permission, PERMISSION),
                ],
                Some("EventBridgeRule" | "CloudWatchEvent" | "Schedule") => {
                    vec![(event_id, "AWS::Events::Rule"), (permission, PERMISSION)]
                }
                Some(
                    "SQS" | "DynamoDB" | "Kinesis" | "MSK" | "MQ" | "SelfManagedKafka"
                    | "DocumentDB",
                ) => vec![(event_id, "AWS::Lambda::EventSourceMapping")],
                Some("SNS") => vec![
                    (event_id, "AWS::SNS::Subscription"),
                    (permission, PERMISSION),
                ],
                Some(
                    "HttpApi" | "S3" | "IoTRule" | "CloudWatchLogs" | "Cognito" | "AlexaSkill",
                ) => vec![(permission, PERMISSION)],
                _ => Vec::new(),
            };
            for (made_id, ty) in made {
                add(&mut implicit, resources, made_id, ty, d, cond(), vec![]);
            }
        }
    }
    if let Some(d) = implicit_rest {
        add(
            &mut implicit,
            resources,
            "ServerlessRestApi".into(),
            "AWS::Serverless::Api",
            d,
            None,
            vec![],
        );
    }
    if let Some(d) = implicit_http {
        add(
            &mut implicit,
            resources,
            "ServerlessHttpApi".into(),
            "AWS::Serverless::HttpApi",
            d,
            None,
            vec![],
        );
    }
    // SAM applies `Globals.Api` / `Globals.HttpApi` to the APIs it generates too.
    for (id, decl) in implicit.iter_mut() {
        if decl.resource_type.starts_with("AWS::Serverless::") {
            decl.properties = globals.apply(
                &decl.resource_type,
                &decl.properties,
                None,
                &child("Resources", id),
                diags,
            );
        }
    }
    let generated_apis: Vec<(String, Decl, bool)> = implicit
        .iter()
        .filter(|(_, d)| d.resource_type.starts_with("AWS::Serverless::"))
        .map(|(id, d)| (id.clone(), d.clone(), d.resource_type.ends_with("::Api")))
        .collect();
    let all_apis = apis
        .into_iter()
        .map(|(id, d, rest)| (id, d.clone(), rest))
        .chain(generated_apis);
    for (id, d, rest) in all_apis {
        let cond = || d.condition.clone();
        // A generated REST API's stage is Prod; an HTTP API without StageName uses $default.
        // SAM resolves a parameter `Ref` in StageName itself, since the stage's logical id is
        // made from it.
        let stage = d
            .properties
            .get("StageName")
            .and_then(|n| match n.as_str() {
                Some(s) => Some(s.to_owned()),
                None => params.get(n.get("Ref")?.as_str()?)?.value.scalar_text(),
            });
        let stage_id = match (&stage, rest) {
            (Some(s), _) => format!("{id}{}Stage", logical_id_part(s)),
            (None, true) => format!("{id}ProdStage"),
            (None, false) => format!("{id}ApiGatewayDefaultStage"),
        };
        let stage_name = stage.unwrap_or_else(|| if rest { "Prod" } else { "$default" }.into());
        let (stage_type, deployment_type) = if rest {
            ("AWS::ApiGateway::Stage", "AWS::ApiGateway::Deployment")
        } else {
            ("AWS::ApiGatewayV2::Stage", "AWS::ApiGatewayV2::Deployment")
        };
        add(
            &mut implicit,
            resources,
            stage_id.clone(),
            stage_type,
            &d,
            cond(),
            vec![("StageName", stage_name)],
        );
        refs.insert(format!("{id}.Stage"), stage_id);
        if rest {
            add(
                &mut implicit,
                resources,
                format!("{id}Deployment"),
                deployment_type,
                &d,
                cond(),
                vec![],
            );
            refs.insert(format!("{id}.Deployment"), format!("{id}Deployment"));
        }
        // SAM's usage plan, and its key, which a template's own resources may name.
        let plan = d
            .properties
            .get("Auth")
            .and_then(|a| a.get("UsagePlan"))
            .and_then(|p| p.get("CreateUsagePlan"))
            .and_then(Node::as_str);
        let prefix = match plan {
            Some("PER_API") => id.clone(),
            Some("SHARED") => "Serverless".to_owned(),
            _ => continue,
        };
        for (suffix, ty) in [
            ("UsagePlan", "AWS::ApiGateway::UsagePlan"),
            ("ApiKey", "AWS::ApiGateway::ApiKey"),
            ("UsagePlanKey", "AWS::ApiGateway::UsagePlanKey"),
        ] {
            let generated = format!("{prefix}{suffix}");
            let condition = if plan == Some("PER_API") {
                cond()
            } else {
                None
            };
            add(
                &mut implicit,
                resources,
                generated.clone(),
                ty,
                &d,
                condition,
                vec![],
            );
            refs.insert(format!("{id}.{suffix}"), generated);
        }
    }
    Generated {
        implicit,
        aliases,
        refs,
    }
}

/// Adds a generated resource, unless the template declares one with that id.
fn add(
    implicit: &mut BTreeMap<String, Decl>,
    resources: &BTreeMap<String, Decl>,
    id: String,
    ty: &str,
    from: &Decl,
    condition: Option<(String, Pos)>,
    props: Vec<(&str, String)>,
) {
    if resources.contains_key(&id) {
        return;
    }
    let entries = props
        .into_iter()
        .map(|(k, v)| Entry {
            key: k.to_owned(),
            key_pos: from.key_pos,
            value: Node::string(v, from.key_pos),
        })
        .collect();
    implicit.entry(id.clone()).or_insert_with(|| Decl {
        logical_id: id,
        resource_type: ty.to_string(),
        key_pos: from.key_pos,
        properties_pos: from.key_pos,
        condition,
        properties: Node::new(Kind::Map(entries), from.key_pos),
        metadata: None,
        depends_on: None,
    });
}

/// SAM builds logical ids from names by keeping their letters and digits only.
fn logical_id_part(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).collect()
}

fn depends_on(r: &mut Resolver<'_>, t: &Template, decl: &Decl, base: &str) {
    let Some(n) = &decl.depends_on else { return };
    let path = child(base, "DependsOn");
    let items: Vec<(String, &Node)> = match &n.kind {
        Kind::String(_) => vec![(path.clone(), n)],
        Kind::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, n)| (index(&path, i), n))
            .collect(),
        _ => {
            r.diags.error(
                &path,
                n.pos,
                format!(
                    "expected a resource name or a list of them, got {}",
                    n.describe()
                ),
            );
            return;
        }
    };
    for (p, item) in items {
        let Some(name) = item.as_str() else {
            r.diags.error(
                &p,
                item.pos,
                format!("expected a resource name, got {}", item.describe()),
            );
            continue;
        };
        if t.decl(name).is_none() {
            r.diags.error(
                &p,
                item.pos,
                format!(
                    "DependsOn names {name:?}, which is not a resource{}",
                    did_you_mean(name, t.resources.keys().map(String::as_str))
                ),
            );
        } else if !r.is_kept(name) {
            r.diags.error(
                &p,
                item.pos,
                format!("DependsOn names Resources.{name}, which is not created because its condition is false"),
            );
        }
    }
}

fn outputs(r: &mut Resolver<'_>, e: Option<&Entry>) -> BTreeMap<String, serde_json::Value> {
    const KEYS: &[&str] = &["Value", "Description", "Export", "Condition"];
    let mut out = BTreeMap::new();
    let Some(e) = e else { return out };
    let Some(entries) = e.value.entries() else {
        if !matches!(e.value.kind, Kind::Null) {
            r.diags.error(
                "Outputs",
                e.value.pos,
                format!("expected a map of outputs, got {}", e.value.describe()),
            );
        }
        return out;
    };
    for o in entries {
        let path = child("Outputs", &o.key);
        if !is_logical_id(&o.key) {
            r.diags.error(
                &path,
                o.key_pos,
                "an output name must be alphanumeric (A-Z, a-z, 0-9)",
            );
        }
        let Some(fields) = o.value.entries() else {
            r.diags.error(
                &path,
                o.value.pos,
                format!("expected a map with a Value, got {}", o.value.describe()),
            );
            continue;
        };
        for f in fields {
            if !KEYS.contains(&f.key.as_str()) {
                r.diags.error(
                    &child(&path, &f.key),
                    f.key_pos,
                    format!(
                        "unknown output property {:?}; outputs take {}",
                        f.key,
                        KEYS.join(", ")
                    ),
                );
            }
        }
        if let Some(c) = o.value.get("Condition") {
            match c.as_str() {
                Some(name) => {
                    if r.condition(name, c.pos, &child(&path, "Condition")) == Some(false) {
                        continue;
                    }
                }
                None => r.diags.error(
                    &child(&path, "Condition"),
                    c.pos,
                    format!("expected a condition name, got {}", c.describe()),
                ),
            }
        }
        if let Some(x) = o.value.get("Export") {
            // Exports only matter to other stacks; resolving still reports mistakes in them.
            r.resolve(x, &child(&path, "Export"));
        }
        match o.value.get("Value") {
            None => r.diags.error(&path, o.key_pos, "missing Value"),
            Some(v) => match r.resolve(v, &child(&path, "Value")) {
                Some(n) => {
                    out.insert(o.key.clone(), n.to_json());
                }
                None => r.diags.error(
                    &child(&path, "Value"),
                    v.pos,
                    "the Value resolves to AWS::NoValue; an output needs a value",
                ),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_types_need_three_parts_or_custom() {
        assert!(valid_type("AWS::SQS::Queue"));
        assert!(valid_type("Custom::Seeder"));
        assert!(!valid_type("AWS::SQS"));
        assert!(!valid_type("Queue"));
        assert!(!valid_type("AWS::SQS::Queue::Extra"));
    }
}
