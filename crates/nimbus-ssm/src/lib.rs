//! AWS Systems Manager Parameter Store, as nimbus serves it (AWS JSON 1.1, `AmazonSSM.<Op>`).
//!
//! Every parameter keeps each of its versions (up to 100, as Parameter Store), with the labels
//! attached to them; the newest version is the parameter's value. Parameters live in
//! `<state-dir>/ssm.db` and each change is committed before it is answered.
//!
//! `SecureString` values are kept as given: nimbus has no KMS. Asked without `WithDecryption`,
//! a `SecureString` answers an opaque base64 token in its place, as Parameter Store answers the
//! ciphertext, so code that forgets to decrypt fails locally as it would on AWS.
//!
//! Parameters from the template (`AWS::SSM::Parameter`) are created at start-up and updated only
//! when the template's own value changes: a value set later with `aws ssm put-parameter`
//! survives restarts, as it survives a stack update that does not touch the parameter.

mod names;
mod ops;
mod store;

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

pub use store::TemplateParameter;

/// Parameter Store's own errors: the error code clients read from `__type`, and its message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SsmError {
    #[error("{message}")]
    Service { code: &'static str, message: String },
    /// nimbus's own failure (its database): Parameter Store's `InternalServerError`.
    #[error("{0}")]
    Internal(String),
}

impl SsmError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> SsmError {
        SsmError::Service {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn validation(message: impl Into<String>) -> SsmError {
        SsmError::new("ValidationException", message)
    }

    pub fn code(&self) -> &'static str {
        match self {
            SsmError::Service { code, .. } => code,
            SsmError::Internal(_) => "InternalServerError",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            SsmError::Service { .. } => 400,
            SsmError::Internal(_) => 500,
        }
    }

    /// The body of the error answer.
    pub fn body(&self) -> Value {
        json!({"__type": self.code(), "message": self.to_string()})
    }
}

impl From<rusqlite::Error> for SsmError {
    fn from(e: rusqlite::Error) -> SsmError {
        SsmError::Internal(format!("the parameter database failed: {e}"))
    }
}

/// Where ARNs point.
#[derive(Debug, Clone)]
pub struct SsmConfig {
    pub region: String,
    pub account: String,
}

/// The Parameter Store service: cheap to clone, one database behind it.
#[derive(Clone)]
pub struct ParameterStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Mutex<rusqlite::Connection>,
    config: SsmConfig,
}

impl ParameterStore {
    /// Opens (creating if needed) `<path>`; `None` keeps everything in memory (tests).
    pub fn open(path: Option<&Path>, config: SsmConfig) -> Result<ParameterStore, SsmError> {
        let conn = store::open(path)?;
        Ok(ParameterStore {
            inner: Arc::new(Inner {
                db: Mutex::new(conn),
                config,
            }),
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.inner.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates or updates the template's parameters (see the crate docs); returns their names.
    pub fn apply_template(
        &self,
        params: &[TemplateParameter],
        now_ms: u64,
    ) -> Result<Vec<String>, SsmError> {
        let mut db = self.db();
        store::apply_template(&mut db, params, now_ms)
    }

    /// The names of every parameter, for the dashboard and start-up output (never values).
    pub fn names(&self) -> Result<Vec<String>, SsmError> {
        store::names(&self.db())
    }

    /// Runs one action; `input` is the request's JSON body.
    pub fn dispatch(&self, action: &str, input: &Value, now_ms: u64) -> Result<Value, SsmError> {
        let mut db = self.db();
        let c = &self.inner.config;
        let ctx = ops::Ctx {
            region: &c.region,
            account: &c.account,
            now_ms,
        };
        match action {
            "PutParameter" => ops::put_parameter(&mut db, &ctx, input),
            "GetParameter" => ops::get_parameter(&db, &ctx, input),
            "GetParameters" => ops::get_parameters(&db, &ctx, input),
            "GetParametersByPath" => ops::get_parameters_by_path(&db, &ctx, input),
            "DeleteParameter" => ops::delete_parameter(&mut db, input),
            "DeleteParameters" => ops::delete_parameters(&mut db, input),
            "DescribeParameters" => ops::describe_parameters(&db, &ctx, input),
            "GetParameterHistory" => ops::get_parameter_history(&db, &ctx, input),
            "LabelParameterVersion" => ops::label_parameter_version(&mut db, input),
            "UnlabelParameterVersion" => ops::unlabel_parameter_version(&mut db, input),
            other => Err(SsmError::new(
                "UnknownOperationException",
                format!("nimbus's Parameter Store does not serve {other}"),
            )),
        }
    }
}
