//! DynamoDB's errors, as its AWS JSON 1.0 protocol names them (`__type` ends in the code).

use serde_json::{Map, Value};

/// One entry of a `TransactionCanceledException`'s `CancellationReasons`.
#[derive(Debug, Clone, PartialEq)]
pub struct CancellationReason {
    /// `None`, `ConditionalCheckFailed`, `ValidationError`, `TransactionConflict`, ...
    pub code: &'static str,
    pub message: Option<String>,
    /// The item, when `ReturnValuesOnConditionCheckFailure` asked for it.
    pub item: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DdbError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    /// The conditional request failed; the item is there when the caller asked for it.
    #[error("The conditional request failed")]
    ConditionalCheckFailed(Option<Map<String, Value>>),
    #[error("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", .0.iter().map(|r| r.code).collect::<Vec<_>>().join(", "))]
    TransactionCanceled(Vec<CancellationReason>),
    #[error("{0}")]
    IdempotentParameterMismatch(String),
    /// A PartiQL `INSERT` of a key that exists.
    #[error("{0}")]
    DuplicateItem(String),
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    UnknownOperation(String),
    /// nimbus's own failure (its database); DynamoDB's `InternalServerError`.
    #[error("{0}")]
    Internal(String),
}

impl DdbError {
    pub fn validation(msg: impl Into<String>) -> DdbError {
        DdbError::Validation(msg.into())
    }

    /// `One or more parameter values were invalid: ...`, DynamoDB's prefix for bad values.
    pub fn invalid(msg: impl std::fmt::Display) -> DdbError {
        DdbError::Validation(format!("One or more parameter values were invalid: {msg}"))
    }

    pub fn not_found() -> DdbError {
        DdbError::ResourceNotFound("Requested resource not found".into())
    }

    /// The code the SDKs map to an exception class.
    pub fn code(&self) -> &'static str {
        match self {
            DdbError::Validation(_) => "ValidationException",
            DdbError::ResourceNotFound(_) => "ResourceNotFoundException",
            DdbError::ResourceInUse(_) => "ResourceInUseException",
            DdbError::ConditionalCheckFailed(_) => "ConditionalCheckFailedException",
            DdbError::TransactionCanceled(_) => "TransactionCanceledException",
            DdbError::IdempotentParameterMismatch(_) => "IdempotentParameterMismatchException",
            DdbError::DuplicateItem(_) => "DuplicateItemException",
            DdbError::Serialization(_) => "SerializationException",
            DdbError::UnknownOperation(_) => "UnknownOperationException",
            DdbError::Internal(_) => "InternalServerError",
        }
    }

    /// 500 for nimbus's own failures, 400 for everything the caller did.
    pub fn status(&self) -> u16 {
        match self {
            DdbError::Internal(_) => 500,
            _ => 400,
        }
    }

    /// The error body as DynamoDB sends it.
    pub fn body(&self) -> Value {
        let namespace = match self {
            DdbError::Serialization(_) | DdbError::UnknownOperation(_) => {
                "com.amazon.coral.service"
            }
            DdbError::Validation(_) => "com.amazon.coral.validate",
            _ => "com.amazonaws.dynamodb.v20120810",
        };
        let mut body = Map::new();
        body.insert(
            "__type".into(),
            format!("{namespace}#{}", self.code()).into(),
        );
        body.insert("message".into(), self.to_string().into());
        match self {
            DdbError::ConditionalCheckFailed(Some(item)) => {
                body.insert("Item".into(), Value::Object(item.clone()));
            }
            DdbError::TransactionCanceled(reasons) => {
                let reasons = reasons
                    .iter()
                    .map(|r| {
                        let mut o = Map::new();
                        if let Some(item) = &r.item {
                            o.insert("Item".into(), Value::Object(item.clone()));
                        }
                        o.insert("Code".into(), r.code.into());
                        if let Some(m) = &r.message {
                            o.insert("Message".into(), m.clone().into());
                        }
                        Value::Object(o)
                    })
                    .collect();
                body.insert("CancellationReasons".into(), Value::Array(reasons));
            }
            _ => {}
        }
        Value::Object(body)
    }
}

impl From<rusqlite::Error> for DdbError {
    fn from(e: rusqlite::Error) -> Self {
        DdbError::Internal(format!("nimbus's DynamoDB database: {e}"))
    }
}
