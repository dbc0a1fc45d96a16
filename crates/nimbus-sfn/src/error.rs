//! A failure inside an execution: Step Functions' error name and cause, which `Retry` and
//! `Catch` match on and `DescribeExecution` reports.

/// An error raised while running a state (`States.Runtime`, `States.IntrinsicFailure`, a task's
/// own error name, ...). This is data about the execution, not a failure of nimbus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatesError {
    pub error: String,
    pub cause: String,
    /// Not an error of the execution: its history could not be written, so it stops where it
    /// is and continues after a restart. No error name a user can raise means this.
    suspended: bool,
}

impl StatesError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> StatesError {
        StatesError {
            error: error.into(),
            cause: cause.into(),
            suspended: false,
        }
    }

    /// The journal failed (`why`): the execution stops without an end.
    pub fn suspended(why: impl Into<String>) -> StatesError {
        StatesError {
            error: String::new(),
            cause: why.into(),
            suspended: true,
        }
    }

    pub fn is_suspended(&self) -> bool {
        self.suspended
    }

    pub fn runtime(cause: impl Into<String>) -> StatesError {
        StatesError::new("States.Runtime", cause)
    }
}
