//! Lambda execution environments: each function runs as real processes that speak the Lambda
//! Runtime API to a server nimbus starts for each environment.
//!
//! This crate is the only one that knows Runtime API paths and headers. Function failures
//! (errors, timeouts, crashes, oversized responses) are data in [`InvokeResponse`], never Rust
//! errors: [`InvokeError`] is for what the platform itself refuses (unknown function, throttle).

mod env;
pub mod faults;
pub mod launch;
pub mod logfile;
pub mod logs;
mod memory;
mod platform;
mod pool;
mod runtime_api;
pub mod versions;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

pub use env::{epoch_ms, epoch_us};
pub use launch::{LaunchSpec, PrepareError};
pub use logs::{LogFormat, LogSink};
pub use nimbus_core::concurrency::ThrottleReason;
pub use nimbus_template::RESERVED_ENV;
pub use platform::Platform;
pub use versions::{AliasInfo, AliasUpdate, VersionError, VersionInfo};

/// Largest synchronous request or response payload: 6 MB, as on AWS.
pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// Largest asynchronous (`Event`) request payload: 1 MB, as on AWS.
pub const MAX_ASYNC_PAYLOAD: usize = 1024 * 1024;

/// One function as the platform runs it.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub name: String,
    pub arn: String,
    pub runtime: String,
    pub handler: Option<String>,
    pub memory_mb: u32,
    pub timeout: Duration,
    pub environment: BTreeMap<String, String>,
    pub reserved_concurrency: Option<u32>,
    pub provisioned_concurrency: u32,
    /// `Tracing: Active`: REPORT lines state the invocation's X-Ray trace.
    pub tracing_active: bool,
    /// `$LATEST`, or the number of a published version.
    pub version: String,
    pub description: String,
    /// Changes whenever the configuration or code does (Lambda's `RevisionId`).
    pub revision_id: String,
    pub last_modified_ms: u64,
    /// How to start an environment, or why it cannot start (a missing bootstrap, a failed
    /// build). A function that cannot start is still served: each invoke answers
    /// `Runtime.InvalidEntrypoint` with the reason, as Lambda does.
    pub launch: Result<LaunchSpec, String>,
}

/// A fresh `RevisionId`.
pub fn new_revision_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Settings shared by every function.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    pub region: String,
    pub account_id: String,
    /// Given to functions as `AWS_ENDPOINT_URL`, so their SDK calls reach nimbus.
    pub endpoint_url: String,
    /// Where per-function logs and per-environment temporary directories live.
    pub state_dir: PathBuf,
    /// The account-wide concurrency limit (AWS's default is 1000).
    pub account_concurrency: u32,
    /// An environment idle this long is stopped.
    pub idle_timeout: Duration,
    /// Lambda's init phase limit (10 s).
    pub init_timeout: Duration,
    /// Address the per-environment Runtime API servers bind to.
    pub runtime_api_host: IpAddr,
    /// nimbus's egress proxy (`http://127.0.0.1:<port>`), once functions are to be given it:
    /// environments started after it is set get `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY`.
    pub egress_proxy: std::sync::Arc<std::sync::OnceLock<String>>,
}

impl PlatformConfig {
    pub fn new(state_dir: PathBuf, endpoint_url: String) -> Self {
        Self {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            endpoint_url,
            state_dir,
            account_concurrency: 1000,
            idle_timeout: Duration::from_secs(300),
            init_timeout: Duration::from_secs(10),
            runtime_api_host: IpAddr::from([127, 0, 0, 1]),
            egress_proxy: Default::default(),
        }
    }
}

/// A request to run a function once.
#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
    pub payload: Bytes,
    /// Decoded `X-Amz-Client-Context` (JSON text).
    pub client_context: Option<String>,
    /// The caller's `X-Amzn-Trace-Id`; a new root is made when absent.
    pub trace_header: Option<String>,
    /// `X-Amz-Log-Type: Tail`: return the last 4 KB of the invocation's log.
    pub tail_log: bool,
    /// The request id to use (an `Event` invocation answers with it before running); a new
    /// one when `None`.
    pub request_id: Option<String>,
}

/// What an invocation produced. A function failure is `function_error: Some("Unhandled")`
/// with the error document as payload, as the Invoke API reports it.
#[derive(Debug, Clone)]
pub struct InvokeResponse {
    pub request_id: String,
    pub payload: Bytes,
    pub function_error: Option<&'static str>,
    pub executed_version: String,
    /// The invocation's log, last 4 KB, when `tail_log` was asked for.
    pub log_tail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The function, or the version or alias named after its `:`, does not exist.
    #[error("function not found: {0}")]
    NotFound(String),
    #[error("rate exceeded ({})", .0.as_str())]
    Throttled(ThrottleReason),
    #[error("nimbus is shutting down")]
    ShuttingDown,
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error(transparent)]
    Concurrency(#[from] nimbus_core::concurrency::ConcurrencyError),
    #[error(transparent)]
    Versions(#[from] VersionError),
    #[error("cannot create {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
}
