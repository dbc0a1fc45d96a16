//! AWS SAM / CloudFormation templates in, one resolved and validated [`Stack`] out.
//!
//! This crate is pure: the caller reads the file and hands its text in, so everything here is
//! tested without a file system.
//!
//! The way through, one module per step: `yaml` builds a positioned tree (short-form tags become
//! long forms), `template` checks the sections and drives the rest, `params` checks parameters,
//! `globals` merges SAM's `Globals`, `resolve` evaluates conditions and intrinsic functions with
//! the per-type `Ref`/`Fn::GetAtt` rules of `attrs`, and `function` turns function resources into
//! [`Function`]s. `diag` collects every problem with its position; `pattern` is the small regex
//! matcher behind `AllowedPattern`.
//!
//! # `Ref` and `Fn::GetAtt`
//!
//! Physical names follow `sam local`: a resource's name property when set, else its logical id
//! (CloudFormation would add the stack name and a random suffix, which would make local names
//! unpredictable). From that name:
//!
//! | type | `Ref` | `Fn::GetAtt` |
//! | --- | --- | --- |
//! | `AWS::Serverless::Function`, `AWS::Lambda::Function` | `FunctionName` or logical id | `Arn` |
//! | `AWS::SQS::Queue` | queue URL `{endpoint}/{account}/{name}` (nimbus's AWS endpoint, `http://127.0.0.1:4566` by default) | `Arn`, `QueueName`, `QueueUrl` |
//! | `AWS::Events::EventBus` | `Name` (as on AWS) | `Arn`, `Name` |
//! | `AWS::Events::Rule` | `Name` or logical id | `Arn` |
//! | `AWS::Serverless::StateMachine`, `AWS::StepFunctions::StateMachine` | the ARN (as on AWS) | `Arn`, `Name` |
//! | `AWS::IAM::Role` | `RoleName` or logical id | `Arn`, `RoleId` |
//! | `AWS::SNS::Topic` | the ARN (as on AWS) | `TopicArn`, `TopicName` |
//! | `AWS::DynamoDB::Table`, `AWS::Serverless::SimpleTable` | `TableName` or logical id | `Arn`, `StreamArn` |
//! | `AWS::CloudWatch::Alarm` | `AlarmName` or logical id | `Arn` |
//! | `AWS::Logs::LogGroup` | `LogGroupName` or logical id | `Arn` |
//! | `AWS::S3::Bucket` | `BucketName` or the logical id lowercased | `Arn`, `DomainName`, `RegionalDomainName`, `DualStackDomainName`, `WebsiteURL` |
//! | `AWS::SSM::Parameter` | `Name` or logical id | as for anything else |
//! | `AWS::SecretsManager::Secret` | the ARN, `...:secret:{Name or logical id}-{6 characters derived from the name}` (as on AWS, where the suffix is random) | `Id` (the ARN) |
//! | `AWS::Serverless::LayerVersion`, `AWS::Lambda::LayerVersion` | the version ARN `arn:...:layer:{LayerName or logical id}:1` (as on AWS) | none |
//! | anything else | the logical id | any attribute: `Arn` is `arn:{partition}:{service}:{region}:{account}:{type}/{logical id}`, others `{logical id}.{attribute}` |
//!
//! A FIFO queue (`FifoQueue: true`) without a `QueueName` is named `{logical id}.fifo`, since
//! SQS requires the suffix.
//!
//! SAM's generated resources can be referenced too, as on AWS: `ServerlessRestApi` and
//! `ServerlessHttpApi` (for `Api`/`HttpApi` events without an explicit API; `Ref` is the
//! logical id), `{Function}Role` for functions without a `Role` (an `AWS::IAM::Role`), and
//! `{Function}.Alias` with `AutoPublishAlias` (`Ref` is the alias ARN). The generated APIs are
//! in [`Stack::resources`] with `Globals.Api` / `Globals.HttpApi` applied, since the gateway
//! serves them; the generated roles and aliases are not.
//!
//! # Pseudo parameters
//!
//! `AWS::Region`, `AWS::AccountId` and `AWS::StackName` come from [`LoadOptions`];
//! `AWS::Partition` and `AWS::URLSuffix` follow the region (`aws-cn` / `amazonaws.com.cn` for
//! `cn-*`, `aws-us-gov` for `us-gov-*`, else `aws` / `amazonaws.com`); `AWS::StackId` is a
//! CloudFormation stack ARN whose UUID is derived from region, account and stack name, so it is
//! the same on every run; `AWS::NotificationARNs` is empty; `AWS::NoValue` removes the key or
//! list element. `Fn::GetAZs` returns the region's `a`, `b` and `c` zones.

use std::collections::BTreeMap;

pub mod model;
pub use model::*;

mod attrs;
mod diag;
mod function;
pub use function::RESERVED_ENV;
mod globals;
mod params;
mod pattern;
mod resolve;
mod sam_props;
mod template;
mod yaml;

/// Loads a SAM / CloudFormation template (YAML or JSON) into a resolved [`Stack`].
///
/// `file_name` only labels diagnostics. Every problem is collected: the error lists all of them,
/// sorted by position, with the warnings found so far. On success, warnings (e.g. resource types
/// nimbus does not serve yet) are in [`Stack::warnings`]. What `Ref` and `Fn::GetAtt` return is
/// in the crate documentation.
/// The name of a template bucket without `BucketName`: CloudFormation generates a lowercase
/// name (`<stack>-<logical id>-<random>`); locally the logical id lowercased (padded to S3's
/// three-character minimum) is enough, and `Ref` and nimbus-s3 agree on it.
pub fn default_bucket_name(logical_id: &str) -> String {
    let mut name = logical_id.to_ascii_lowercase();
    while name.len() < 3 {
        name.push('0');
    }
    name
}

/// The ARN of a template's secret: Secrets Manager adds six random characters to the name; a
/// local stack derives them from the name, so `Ref` resolves before the secret exists and the
/// same ARN comes back on every run. nimbus-secrets creates the template's secrets with it.
pub fn secret_arn(region: &str, account: &str, name: &str) -> String {
    let partition = match region {
        r if r.starts_with("cn-") => "aws-cn",
        r if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    };
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut h = attrs::fnv1a(name.as_bytes(), 0x5ec2e7);
    let suffix: String = (0..6)
        .map(|_| {
            let c = ALNUM[(h % ALNUM.len() as u64) as usize] as char;
            h /= ALNUM.len() as u64;
            c
        })
        .collect();
    format!("arn:{partition}:secretsmanager:{region}:{account}:secret:{name}-{suffix}")
}

pub fn load(source: &str, file_name: &str, opts: &LoadOptions) -> Result<Stack, TemplateErrors> {
    let mut diags = diag::Diags::new(file_name);
    let (root, syntax_errors) = yaml::parse(source);
    for e in syntax_errors {
        let path = if e.path.is_empty() {
            "(template)".to_string()
        } else {
            e.path
        };
        diags.error(&path, e.pos, e.message);
    }
    let stack = match &root {
        Some(root) => template::build(root, opts, &mut diags),
        None => {
            if diags.errors.is_empty() {
                diags.error(
                    "(template)",
                    yaml::Pos { line: 1, column: 1 },
                    "the template is empty; it needs at least a Resources section",
                );
            }
            None
        }
    };
    let (errors, warnings) = diags.finish();
    match stack {
        Some(mut stack) if errors.is_empty() => {
            stack.warnings = warnings;
            Ok(stack)
        }
        _ => Err(TemplateErrors { errors, warnings }),
    }
}

/// Where a template value came from, for error messages a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name as the caller gave it.
    pub file: String,
    /// 1-based line; 0 when unknown.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    /// Dotted path in the template, e.g. `Resources.Hello.Properties.Timeout`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.path, self.message
        )
    }
}

/// Every error found in a template: loading does not stop at the first one.
#[derive(Debug, thiserror::Error)]
#[error("{} error(s) in template:\n{}", .errors.len(), .errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
pub struct TemplateErrors {
    pub errors: Vec<Diagnostic>,
    /// Warnings found before the errors made loading fail.
    pub warnings: Vec<Diagnostic>,
}

/// What the caller supplies besides the text.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `--parameter-overrides Key=Value`.
    pub parameter_overrides: BTreeMap<String, String>,
    pub region: String,
    pub account_id: String,
    pub stack_name: String,
    /// Refuse a parameter without a Default or an override, instead of starting with a
    /// placeholder value (and a warning).
    pub strict: bool,
    /// nimbus's AWS endpoint: what queue URLs (`Ref` of a queue, `QueueUrl`) start with.
    pub endpoint_url: String,
    /// `--import-values NAME=VALUE`: what `Fn::ImportValue` of another stack's export gives.
    pub import_values: BTreeMap<String, String>,
    /// Reads the file an `Fn::Transform` of `AWS::Include` names (its `Location`), for the
    /// caller does the I/O; without one, such an include is an error.
    pub include: Option<Reader>,
    /// Reads a parameter of nimbus's Parameter Store by name: what an
    /// `AWS::SSM::Parameter::Value<...>` template parameter gives.
    pub parameter_store: Option<Reader>,
}

/// A lookup the caller does for the loader (which does no I/O): a file by its `Location`
/// relative to the template's folder, a Parameter Store value by its name; `Err` says why
/// there is none.
#[derive(Clone)]
pub struct Reader(pub std::sync::Arc<Lookup>);

/// What a [`Reader`] calls: the name in, the text (or why not) out.
pub type Lookup = dyn Fn(&str) -> Result<String, String> + Send + Sync;

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reader")
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            parameter_overrides: BTreeMap::new(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            stack_name: "nimbus".into(),
            strict: false,
            endpoint_url: "http://127.0.0.1:4566".into(),
            import_values: BTreeMap::new(),
            include: None,
            parameter_store: None,
        }
    }
}
