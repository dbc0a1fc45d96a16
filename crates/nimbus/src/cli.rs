//! The command line: `nimbus up`, `nimbus invoke`, `nimbus validate`.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "nimbus",
    version,
    about = "Run serverless systems described by AWS SAM templates on one machine, with AWS semantics."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Build the template's functions and serve them (Lambda Runtime API, Invoke API).
    Up(Box<UpArgs>),
    /// Invoke a function of a running nimbus through the Lambda Invoke API.
    Invoke(InvokeArgs),
    /// Check a template and print what nimbus would run; exits non-zero on an error.
    Validate(TemplateArgs),
    /// Print the functions' (and APIs' access) logs from the state directory.
    Logs(LogsArgs),
    /// Print what the running nimbus's work so far would have cost on AWS.
    Cost(CostArgs),
    /// List, inject or clear faults on a running nimbus's AWS APIs (its chaos API).
    Chaos(ChaosArgs),
    /// List a running nimbus's gradual deployments (CodeDeploy's), newest first.
    Deployments(DeploymentsArgs),
    /// Rebuild a function of a running nimbus from its sources and release it (publish, then
    /// move its AutoPublishAlias at once or by its DeploymentPreference), following any
    /// deployment to its verdict.
    Deploy(DeployArgs),
}

#[derive(Args)]
pub struct DeployArgs {
    /// The function (its name); every function of the template when left out.
    pub function: Option<String>,
    /// The nimbus AWS endpoint.
    #[arg(long, default_value = "http://127.0.0.1:4566", env = "NIMBUS_ENDPOINT")]
    pub endpoint_url: String,
    /// Return once released, without following the deployments.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Args)]
pub struct DeploymentsArgs {
    /// The nimbus AWS endpoint.
    #[arg(long, default_value = "http://127.0.0.1:4566", env = "NIMBUS_ENDPOINT")]
    pub endpoint_url: String,
    /// Only this many of the newest.
    #[arg(long, default_value_t = 20)]
    pub last: usize,
}

#[derive(Args)]
pub struct ChaosArgs {
    /// The nimbus AWS endpoint.
    #[arg(long, default_value = "http://127.0.0.1:4566", env = "NIMBUS_ENDPOINT")]
    pub endpoint_url: String,
    #[command(subcommand)]
    pub action: ChaosAction,
}

#[derive(Subcommand)]
pub enum ChaosAction {
    /// Print the active fault rules, the latency effect and the FIS experiments running.
    List,
    /// Add a fault rule: matching requests answer with an error instead.
    Inject {
        /// The service (botocore's name: sqs, dynamodb, s3, lambda, sns, events, ...).
        #[arg(long)]
        service: Option<String>,
        /// The operation (SendMessage, PutItem, Invoke, ...); every one when left out.
        #[arg(long)]
        operation: Option<String>,
        #[arg(long)]
        region: Option<String>,
        /// The share of matching requests that fail, 0 to 1.
        #[arg(long, default_value_t = 1.0)]
        probability: f64,
        /// The HTTP status of the error.
        #[arg(long, default_value_t = 503)]
        status: u16,
        /// The AWS error code.
        #[arg(long, default_value = "ServiceUnavailable")]
        code: String,
    },
    /// Add this many milliseconds to every AWS API call (0 removes it).
    Latency { ms: u64 },
    /// Remove every fault rule and the latency effect.
    Clear,
    /// Run an AWS FIS experiment template file (what `aws fis create-experiment-template
    /// --cli-input-json` takes): create it, start it, and follow it to its end. Exit status 1
    /// when it is stopped or fails.
    Run {
        /// The experiment template (JSON).
        file: PathBuf,
        /// Return once started, without following the experiment.
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Args)]
pub struct CostArgs {
    /// The nimbus AWS endpoint.
    #[arg(long, default_value = "http://127.0.0.1:4566", env = "NIMBUS_ENDPOINT")]
    pub endpoint_url: String,
    /// Price everything, without AWS's monthly free tier.
    #[arg(long)]
    pub no_free_tier: bool,
    /// A price file of your own (the format of crates/nimbus/prices/us-east-1.json).
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// Print the estimate as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct LogsArgs {
    /// A function's (or an API's) logical id; all of them when left out.
    pub function: Option<String>,
    /// The template whose state directory (`.nimbus/` beside it) holds the logs.
    #[arg(long, default_value = "template.yaml")]
    pub template: PathBuf,
    /// The state directory, when `nimbus up` was given one.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Only lines from this long ago: 30s, 10m, 2h, 1d.
    #[arg(long, value_parser = crate::logs::parse_since)]
    pub since: Option<std::time::Duration>,
    /// Only lines matching a CloudWatch Logs filter pattern: terms (all must appear),
    /// "quoted phrases", ?alternatives, -exclusions; case-sensitive.
    #[arg(long)]
    pub filter: Option<String>,
    /// Keep printing lines as they are written (Ctrl-C stops).
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Args, Clone)]
pub struct TemplateArgs {
    /// The SAM / CloudFormation template (YAML or JSON).
    #[arg(default_value = "template.yaml")]
    pub template: PathBuf,
    /// Template parameters, as `Key=Value` (repeatable, or several after one flag).
    #[arg(long = "parameter-overrides", value_name = "KEY=VALUE", num_args = 1.., value_parser = parse_key_value)]
    pub parameter_overrides: Vec<(String, String)>,
    /// `AWS::StackName` for the template [default: samconfig's stack_name, else nimbus].
    #[arg(long)]
    pub stack_name: Option<String>,
    /// `AWS::Region`, also given to functions as AWS_REGION [default: samconfig's region, else
    /// us-east-1].
    #[arg(long, env = "NIMBUS_REGION")]
    pub region: Option<String>,
    /// A SAM configuration file [default: samconfig.toml, .yaml or .yml beside the template].
    #[arg(long)]
    pub config_file: Option<PathBuf>,
    /// The environment of the configuration file to use.
    #[arg(long, default_value = "default")]
    pub config_env: String,
    /// Refuse parameters without a Default or a value (and Fn::ImportValue without
    /// --import-values), instead of starting with placeholders.
    #[arg(long)]
    pub strict: bool,
    /// Other stacks' exports for Fn::ImportValue, as `Name=Value` (repeatable).
    #[arg(long = "import-values", value_name = "NAME=VALUE", num_args = 1.., value_parser = parse_key_value)]
    pub import_values: Vec<(String, String)>,
}

#[derive(Clone, Copy, ValueEnum, Default)]
pub enum LogFormatArg {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum, Default)]
pub enum PythonRuntimeArg {
    /// nimbus's own runtime loop (standard library only).
    #[default]
    Builtin,
    /// AWS's awslambdaric package (`python -m awslambdaric handler`); install it first.
    Awslambdaric,
}

#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub template: TemplateArgs,
    /// Address to listen on. Loopback by default: nimbus has no authentication.
    #[arg(long, default_value = "127.0.0.1", env = "NIMBUS_HOST")]
    pub host: IpAddr,
    /// Port of the AWS endpoint (Lambda Invoke API, ...); 0 picks a free one.
    #[arg(long, default_value_t = 4566, env = "NIMBUS_AWS_PORT")]
    pub aws_port: u16,
    /// Port of the first API (REST or HTTP API); further APIs take the next ports. 0 picks
    /// free ones.
    #[arg(long, default_value_t = 3000, env = "NIMBUS_API_PORT")]
    pub api_port: u16,
    /// Account-wide API Gateway throttle: requests per second (AWS's default is 10,000).
    #[arg(long, default_value_t = 10_000.0)]
    pub account_rate: f64,
    /// Account-wide API Gateway burst (AWS's default is 5,000).
    #[arg(long, default_value_t = 5_000)]
    pub account_burst: u32,
    /// Keys for an HTTP API JWT authorizer's issuer, as `ISSUER=FILE` (a JWKS JSON file); by
    /// default nimbus fetches them from the issuer's OpenID discovery document (http or https).
    #[arg(long = "jwks", value_name = "ISSUER=FILE", value_parser = parse_issuer_file)]
    pub jwks: Vec<(String, PathBuf)>,
    /// Where logs and temporary files go [default: .nimbus/ beside the template].
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Console and log-file format.
    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormatArg,
    /// Seconds an execution environment may stay idle before it is stopped.
    #[arg(long, default_value_t = 300)]
    pub idle_timeout: u64,
    /// Account-wide concurrent executions (AWS's default quota is 1000).
    #[arg(long, default_value_t = 1000)]
    pub account_concurrency: u32,
    /// Which runtime interface client runs Python functions.
    #[arg(long, value_enum, default_value_t)]
    pub python_runtime: PythonRuntimeArg,
    /// Python interpreter for python3.x functions, e.g. a virtualenv's [default: pythonX.Y of
    /// the function's runtime, else python3, from PATH].
    #[arg(long, env = "NIMBUS_PYTHON")]
    pub python: Option<PathBuf>,
    /// Node.js for nodejsN.x functions [default: node from PATH].
    #[arg(long, env = "NIMBUS_NODE")]
    pub node: Option<PathBuf>,
    /// A published layer (which nimbus cannot download) served from a local folder laid out as
    /// the layer's zip is (python/, nodejs/node_modules/, bin/, lib/). An ARN without its
    /// version matches every version. Repeatable.
    #[arg(long = "layer", value_name = "ARN=DIR", value_parser = parse_layer)]
    pub layers: Vec<(String, PathBuf)>,
    /// Where installed dependencies, the runtimes' AWS SDKs and build tools are cached, shared
    /// by every stack [default: $XDG_CACHE_HOME/nimbus or ~/.cache/nimbus].
    #[arg(long, env = "NIMBUS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Multiplies every retry and backoff delay of asynchronous invocations, rule deliveries and
    /// event source mappings (Lambda retries a failed event after about 1 and 2 minutes; 0.01
    /// makes that 0.6 and 1.2 s), CloudWatch alarms' periods, and S3 lifecycle days. Event
    /// age limits are not scaled.
    #[arg(long, default_value_t = 1.0, env = "NIMBUS_DELAY_SCALE", value_parser = parse_scale)]
    pub delay_scale: f64,
    /// Rebuild a function when a file of its code (or of a template layer it uses) changes, and
    /// serve new invocations from the new code; running ones finish on the old.
    #[arg(long)]
    pub watch: bool,
    /// Seconds to let running invocations finish on SIGINT/SIGTERM before stopping them.
    #[arg(long, default_value_t = 10)]
    pub shutdown_grace: u64,
    /// Give every function nimbus's egress proxy (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) from its
    /// first start, so chaos rules for "egress" apply without restarting environments. Without
    /// it, the first such rule restarts them with the proxy.
    #[arg(long)]
    pub egress_proxy: bool,
}

#[derive(Args)]
pub struct InvokeArgs {
    /// Function name, `name:qualifier`, or ARN.
    pub function: String,
    /// The event, as JSON text, or `@path` to read it from a file.
    #[arg(long, default_value = "{}")]
    pub payload: String,
    /// RequestResponse (wait for the result), Event (asynchronous) or DryRun.
    #[arg(long, default_value = "RequestResponse")]
    pub invocation_type: String,
    /// Print the last 4 KB of the invocation's log to stderr.
    #[arg(long)]
    pub tail: bool,
    /// The nimbus AWS endpoint.
    #[arg(long, default_value = "http://127.0.0.1:4566", env = "NIMBUS_ENDPOINT")]
    pub endpoint_url: String,
}

fn parse_issuer_file(s: &str) -> Result<(String, PathBuf), String> {
    // Issuers are URLs with their own `=`-free syntax; split at the last `=`.
    match s.rsplit_once('=') {
        Some((issuer, file)) if !issuer.is_empty() && !file.is_empty() => {
            Ok((issuer.to_owned(), PathBuf::from(file)))
        }
        _ => Err(format!("expected ISSUER=FILE, got {s:?}")),
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number greater than 0 and at most 1"
        )),
    }
}

fn parse_layer(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((arn, dir)) if arn.contains(":layer:") && !dir.is_empty() => {
            Ok((arn.to_owned(), PathBuf::from(dir)))
        }
        _ => Err(format!(
            "expected ARN=DIR with a layer ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME[:VERSION]), got {s:?}"
        )),
    }
}
