//! Task tokens of `.waitForTaskToken` tasks: a running task waits on its token until
//! `SendTaskSuccess` or `SendTaskFailure` answers it; `SendTaskHeartbeat` keeps it alive.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::Value;
use tokio::sync::{oneshot, Notify};

use crate::error::StatesError;

/// What a waiting task is answered with.
pub type TaskAnswer = Result<Value, StatesError>;

/// An answer, and how the task says it has recorded it (its end event is durable).
pub type Answered = (TaskAnswer, oneshot::Sender<()>);

struct Waiter {
    answer: oneshot::Sender<Answered>,
    beat: Arc<Notify>,
}

/// Why a token could not be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token nimbus made.
    Invalid,
    /// A token nimbus made whose task is no longer waiting (answered, timed out, stopped).
    Gone,
}

#[derive(Default)]
pub struct Tokens {
    waiting: Mutex<HashMap<String, Waiter>>,
    /// Activity tasks waiting for a worker (`GetActivityTask`), by activity ARN.
    activities: Mutex<HashMap<String, VecDeque<ActivityTask>>>,
    /// Wakes workers polling for activity tasks.
    scheduled: Notify,
}

/// An activity task waiting for a worker: its token, its input, and how the task learns
/// which worker took it.
pub struct ActivityTask {
    pub token: String,
    pub input: String,
    pub started: oneshot::Sender<String>,
}

const PREFIX: &str = "nimbus-task-token:";

impl Tokens {
    /// A new token: opaque to callers, recognisably nimbus's own to [`Tokens::answer`].
    pub fn new_token() -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("{PREFIX}{}", uuid::Uuid::new_v4()))
    }

    fn check(token: &str) -> Result<(), TokenError> {
        let ok = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .is_some_and(|s| s.starts_with(PREFIX));
        if ok {
            Ok(())
        } else {
            Err(TokenError::Invalid)
        }
    }

    /// Starts waiting on `token`: the receiver gets the answer, the notify each heartbeat.
    pub fn register(&self, token: &str) -> (oneshot::Receiver<Answered>, Arc<Notify>) {
        let (tx, rx) = oneshot::channel();
        let beat = Arc::new(Notify::new());
        self.lock().insert(
            token.to_owned(),
            Waiter {
                answer: tx,
                beat: Arc::clone(&beat),
            },
        );
        (rx, beat)
    }

    pub fn forget(&self, token: &str) {
        self.lock().remove(token);
    }

    /// Answers the task waiting on `token`. The receiver completes once the task has recorded
    /// the answer (closed if the execution went away first), so a caller can be acknowledged
    /// only when the answer survives a `kill -9`.
    pub fn answer(
        &self,
        token: &str,
        answer: TaskAnswer,
    ) -> Result<oneshot::Receiver<()>, TokenError> {
        Self::check(token)?;
        let waiter = self.lock().remove(token).ok_or(TokenError::Gone)?;
        let (recorded, rx) = oneshot::channel();
        waiter
            .answer
            .send((answer, recorded))
            .map_err(|_| TokenError::Gone)?;
        Ok(rx)
    }

    /// Queues an activity task for `activity`'s workers.
    pub fn schedule(&self, activity: &str, task: ActivityTask) {
        let mut queues = self.activities.lock().unwrap_or_else(|e| e.into_inner());
        // Tasks whose executions have gone (stopped, timed out) leave with each new one.
        for queue in queues.values_mut() {
            queue.retain(|t| !t.started.is_closed());
        }
        queues.retain(|_, q| !q.is_empty());
        queues
            .entry(activity.to_owned())
            .or_default()
            .push_back(task);
        drop(queues);
        self.scheduled.notify_waiters();
    }

    /// Takes `activity`'s oldest task for `worker`, waiting up to `wait` for one (a task whose
    /// execution has gone away is skipped).
    pub async fn take(
        &self,
        activity: &str,
        worker: &str,
        wait: std::time::Duration,
    ) -> Option<(String, String)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let woken = self.scheduled.notified();
            {
                let mut queues = self.activities.lock().unwrap_or_else(|e| e.into_inner());
                let queue = queues.entry(activity.to_owned()).or_default();
                while let Some(task) = queue.pop_front() {
                    if task.started.send(worker.to_owned()).is_ok() {
                        return Some((task.token, task.input));
                    }
                }
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return None;
            }
        }
    }

    pub fn heartbeat(&self, token: &str) -> Result<(), TokenError> {
        Self::check(token)?;
        match self.lock().get(token) {
            Some(w) => {
                w.beat.notify_one();
                Ok(())
            }
            None => Err(TokenError::Gone),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiter>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_token_is_answered_once_and_strangers_are_refused() {
        let tokens = Tokens::default();
        let token = Tokens::new_token();
        let (rx, _) = tokens.register(&token);
        assert_eq!(tokens.heartbeat(&token), Ok(()));
        let recorded = tokens.answer(&token, Ok(json!(1))).unwrap();
        let (answer, ack) = rx.await.unwrap();
        assert_eq!(answer, Ok(json!(1)));
        ack.send(()).unwrap();
        recorded.await.unwrap();
        assert_eq!(
            tokens.answer(&token, Ok(json!(2))).err(),
            Some(TokenError::Gone)
        );
        assert_eq!(tokens.heartbeat("not-a-token"), Err(TokenError::Invalid));
        assert_eq!(
            tokens.answer(&Tokens::new_token(), Ok(json!(3))).err(),
            Some(TokenError::Gone)
        );
    }
}
