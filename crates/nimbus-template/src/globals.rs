//! SAM's `Globals` section, merged into resources the way the SAM translator merges it.
//!
//! Rules: when the global and the resource's value are both maps they merge key by key
//! (recursively); when both are lists the global entries come first; in every other case the
//! resource's value wins. An intrinsic function counts as a scalar, since it resolves to one.

use std::collections::BTreeMap;

use crate::diag::{child, did_you_mean, index, Diags};
use crate::yaml::{Entry, Kind, Node};

/// Section name, the SAM type it applies to, and the properties it may set.
const SECTIONS: &[(&str, &str, &[&str])] = &[
    (
        "Function",
        "AWS::Serverless::Function",
        &[
            "Handler",
            "Runtime",
            "CodeUri",
            "DeadLetterQueue",
            "Description",
            "MemorySize",
            "Timeout",
            "VpcConfig",
            "Environment",
            "Tags",
            "PropagateTags",
            "Tracing",
            "KmsKeyArn",
            "AutoPublishAlias",
            "AutoPublishAliasAllProperties",
            "Layers",
            "DeploymentPreference",
            "RolePath",
            "PermissionsBoundary",
            "ReservedConcurrentExecutions",
            "ProvisionedConcurrencyConfig",
            "AssumeRolePolicyDocument",
            "EventInvokeConfig",
            "FileSystemConfigs",
            "CodeSigningConfigArn",
            "Architectures",
            "SnapStart",
            "EphemeralStorage",
            "FunctionUrlConfig",
            "RuntimeManagementConfig",
            "LoggingConfig",
            "RecursiveLoop",
            "SourceKMSKeyArn",
        ],
    ),
    (
        "Api",
        "AWS::Serverless::Api",
        &[
            "Auth",
            "Name",
            "DefinitionUri",
            "CacheClusterEnabled",
            "CacheClusterSize",
            "MergeDefinitions",
            "Variables",
            "EndpointConfiguration",
            "MethodSettings",
            "BinaryMediaTypes",
            "MinimumCompressionSize",
            "Cors",
            "GatewayResponses",
            "AccessLogSetting",
            "CanarySetting",
            "TracingEnabled",
            "OpenApiVersion",
            "Domain",
            "AlwaysDeploy",
            "PropagateTags",
        ],
    ),
    (
        "HttpApi",
        "AWS::Serverless::HttpApi",
        &[
            "Auth",
            "AccessLogSettings",
            "StageVariables",
            "Tags",
            "CorsConfiguration",
            "DefaultRouteSettings",
            "Domain",
            "RouteSettings",
            "FailOnWarnings",
            "PropagateTags",
        ],
    ),
    (
        "SimpleTable",
        "AWS::Serverless::SimpleTable",
        &["SSESpecification", "PropagateTags"],
    ),
    (
        "StateMachine",
        "AWS::Serverless::StateMachine",
        &["PropagateTags"],
    ),
    (
        "LayerVersion",
        "AWS::Serverless::LayerVersion",
        &["PublishLambdaVersion"],
    ),
];

/// The validated `Globals`, by the resource type each section applies to.
#[derive(Debug, Default)]
pub(crate) struct Globals {
    by_type: BTreeMap<&'static str, Node>,
}

impl Globals {
    pub fn load(section: Option<&Entry>, diags: &mut Diags) -> Globals {
        let mut by_type = BTreeMap::new();
        let Some(section) = section else {
            return Globals { by_type };
        };
        let Some(entries) = section.value.entries() else {
            diags.error(
                "Globals",
                section.value.pos,
                format!(
                    "expected a map of sections (Function, Api, ...), got {}",
                    section.value.describe()
                ),
            );
            return Globals { by_type };
        };
        for e in entries {
            let path = child("Globals", &e.key);
            let Some((name, ty, allowed)) = SECTIONS.iter().find(|(n, _, _)| *n == e.key) else {
                let names = SECTIONS.iter().map(|(n, _, _)| *n);
                diags.error(
                    &path,
                    e.key_pos,
                    format!(
                        "unknown Globals section {:?}{}; use {}",
                        e.key,
                        did_you_mean(&e.key, names.clone()),
                        names.collect::<Vec<_>>().join(", ")
                    ),
                );
                continue;
            };
            let Some(props) = e.value.entries() else {
                diags.error(
                    &path,
                    e.value.pos,
                    format!("expected a map of properties, got {}", e.value.describe()),
                );
                continue;
            };
            let mut kept = Vec::with_capacity(props.len());
            for p in props {
                if allowed.contains(&p.key.as_str()) {
                    kept.push(p.clone());
                } else if p.key == "Events" {
                    diags.error(
                        &child(&path, &p.key),
                        p.key_pos,
                        format!(
                            "\"Events\" cannot be set in Globals.{name}: each function declares \
                             its own events; move them to Resources.<Function>.Properties.Events"
                        ),
                    );
                } else {
                    // A near miss of a global property is a typo, not a misplaced property.
                    let suggestion = did_you_mean(&p.key, allowed.iter().copied());
                    let message = if suggestion.is_empty() {
                        format!(
                            "{:?} cannot be set in Globals.{name}; set it on each {ty} instead",
                            p.key
                        )
                    } else {
                        format!(
                            "{:?} is not a property of Globals.{name}{suggestion}",
                            p.key
                        )
                    };
                    diags.error(&child(&path, &p.key), p.key_pos, message);
                }
            }
            by_type.insert(*ty, Node::new(Kind::Map(kept), e.value.pos));
        }
        Globals { by_type }
    }

    /// The resource's properties with the globals for its type merged in. `ignore` is the SAM
    /// `IgnoreGlobals` attribute: `"*"` or a list of global property names to leave out.
    pub fn apply(
        &self,
        resource_type: &str,
        properties: &Node,
        ignore: Option<&Node>,
        path: &str,
        diags: &mut Diags,
    ) -> Node {
        let Some(global) = self.by_type.get(resource_type) else {
            return properties.clone();
        };
        let mut global = global.clone();
        if let Some(ignore) = ignore {
            let ipath = child(path, "IgnoreGlobals");
            match (&ignore.kind, &mut global.kind) {
                (Kind::String(s), _) if s == "*" => return properties.clone(),
                (Kind::Seq(names), Kind::Map(entries)) => {
                    for (i, n) in names.iter().enumerate() {
                        match n.as_str() {
                            Some(name) if entries.iter().any(|e| e.key == name) => {
                                entries.retain(|e| e.key != name);
                            }
                            _ => diags.error(
                                &index(&ipath, i),
                                n.pos,
                                format!("IgnoreGlobals names {}, which Globals does not set for {resource_type}", n.describe()),
                            ),
                        }
                    }
                }
                _ => diags.error(
                    &ipath,
                    ignore.pos,
                    format!(
                        "IgnoreGlobals must be \"*\" or a list of property names, got {}",
                        ignore.describe()
                    ),
                ),
            }
        }
        merge(&global, properties)
    }
}

#[derive(PartialEq)]
enum Shape {
    Scalar,
    Map,
    List,
}

fn shape(n: &Node) -> Shape {
    match &n.kind {
        Kind::Map(_) if n.intrinsic().is_none() => Shape::Map,
        Kind::Seq(_) => Shape::List,
        _ => Shape::Scalar,
    }
}

pub(crate) fn merge(global: &Node, local: &Node) -> Node {
    match (shape(global), shape(local), &global.kind, &local.kind) {
        (Shape::Map, Shape::Map, Kind::Map(g), Kind::Map(l)) => {
            let mut out = g.clone();
            for le in l {
                match out.iter_mut().find(|e| e.key == le.key) {
                    Some(e) => {
                        e.value = merge(&e.value, &le.value);
                        e.key_pos = le.key_pos;
                    }
                    None => out.push(le.clone()),
                }
            }
            Node::new(Kind::Map(out), local.pos)
        }
        (Shape::List, Shape::List, Kind::Seq(g), Kind::Seq(l)) => {
            Node::new(Kind::Seq(g.iter().chain(l).cloned().collect()), local.pos)
        }
        _ => local.clone(),
    }
}
