//! A failure inside an execution: Step Functions' error name and cause, which `Retry` and
//! `Catch` match on and `DescribeExecution` reports.

/// An error raised while running a state (`States.Runtime`, `States.IntrinsicFailure`, a task's
/// own error name, ...). This is data about the execution, not a failure of nimbus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatesError {
    pub error: String,
    pub cause: String,
}

impl StatesError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> StatesError {
        StatesError {
            error: error.into(),
            cause: cause.into(),
        }
    }

    pub fn runtime(cause: impl Into<String>) -> StatesError {
        StatesError::new("States.Runtime", cause)
    }
}
