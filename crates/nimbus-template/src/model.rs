//! The resolved stack: what the rest of nimbus consumes. Every intrinsic function is already
//! evaluated, `Globals` are merged, conditions have removed what they exclude.

use std::collections::BTreeMap;

use crate::Diagnostic;

#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// `AWS::Serverless::Function` and `AWS::Lambda::Function` resources, in logical-id order.
    pub functions: Vec<Function>,
    /// Every resource left after `Conditions`, by logical id, with resolved properties.
    pub resources: BTreeMap<String, Resource>,
    /// Resolved parameter values (overrides applied, defaults filled in).
    pub parameters: BTreeMap<String, ParameterValue>,
    /// Resolved `Outputs` values.
    pub outputs: BTreeMap<String, serde_json::Value>,
    /// E.g. resource types nimbus does not serve yet. Never silently dropped.
    pub warnings: Vec<Diagnostic>,
    /// `(logical id, type)` of resources a local run needs nothing from (IAM, VPC, KMS, WAF,
    /// domains, certificates, permissions and policies): accepted without a warning.
    pub not_emulated: Vec<(String, String)>,
    /// The region and account the stack was resolved for (what its ARNs name).
    pub region: String,
    pub account_id: String,
}

impl Stack {
    /// The function with this name (`FunctionName`, or else the logical id).
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParameterValue {
    /// The value as `Ref` yields it: a string for `String` and `Number` parameters (CloudFormation
    /// hands numbers out as strings), an array of strings for list types.
    pub value: serde_json::Value,
    /// `NoEcho: true`: the value must never be printed or logged.
    pub no_echo: bool,
    /// No default and no value was given: nimbus made up a placeholder.
    pub placeholder: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub logical_id: String,
    pub resource_type: String,
    /// Resolved `Properties` (an object; empty when absent).
    pub properties: serde_json::Value,
    /// Resolved `Metadata` (an object; empty when absent).
    pub metadata: serde_json::Value,
    /// 1-based line of the resource in the template.
    pub line: usize,
    /// 1-based line of each property's key, for messages about one property.
    pub property_lines: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub logical_id: String,
    /// `FunctionName`, or else the logical id, as `sam local` does.
    pub name: String,
    /// E.g. `provided.al2023`, `python3.12`. `None` only for container images, which nimbus rejects.
    pub runtime: String,
    pub handler: Option<String>,
    pub code: Code,
    /// MB, 128..=10240, default 128.
    pub memory_size: u32,
    /// Seconds, 1..=900, default 3.
    pub timeout: u32,
    pub environment: BTreeMap<String, String>,
    pub reserved_concurrent_executions: Option<u32>,
    /// `ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions`.
    pub provisioned_concurrency: Option<u32>,
    pub architectures: Vec<String>,
    /// `Metadata.BuildMethod`, e.g. `rust-cargolambda`.
    pub build_method: Option<String>,
    /// `Metadata.BuildProperties.Binary` for cargo-lambda builds.
    pub build_binary: Option<String>,
    /// `Layers`, resolved: layer version ARNs (a template's own layers as `Ref` gives them).
    pub layers: Vec<String>,
    /// The resource's resolved `Metadata` (build properties, CDK asset paths).
    pub metadata: serde_json::Value,
    pub auto_publish_alias: Option<String>,
    /// `Tracing: Active | PassThrough`.
    pub tracing: Option<String>,
    /// `Events`, resolved, by event logical id: served by later subsystems.
    pub events: BTreeMap<String, serde_json::Value>,
    /// All resolved properties after the Globals merge, for subsystems that need more.
    pub properties: serde_json::Value,
    pub line: usize,
    /// 1-based line of each property's key (a property from `Globals` has its line there).
    pub property_lines: BTreeMap<String, usize>,
}

impl Function {
    /// What the function's SAM `Events` invoke: with `AutoPublishAlias`, SAM points every event
    /// source at the alias (`name:alias`); otherwise the function itself.
    pub fn event_target(&self) -> String {
        match &self.auto_publish_alias {
            Some(alias) => format!("{}:{alias}", self.name),
            None => self.name.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Code {
    /// `CodeUri` as written (a path relative to the template's folder).
    Uri(String),
    /// `InlineCode`.
    Inline(String),
}
