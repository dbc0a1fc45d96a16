//! When to try an asynchronous invocation or a rule delivery again, and when to give up.
//!
//! Lambda's asynchronous queue (the Lambda developer guide, "Asynchronous invocation"): after a
//! function error it retries twice by default (`MaximumRetryAttempts` 0-2), about one minute and
//! then two minutes later; after a throttle (or a system error) it requeues the event with
//! exponential backoff from one second up to five minutes. Either way the event is dropped once
//! it is older than `MaximumEventAgeInSeconds` (60 s - 6 h, default 6 h).
//!
//! EventBridge retries a failed target delivery with exponential backoff and jitter, up to
//! `RetryPolicy.MaximumRetryAttempts` (0-185, default 185) and `MaximumEventAgeInSeconds`
//! (60 s - 24 h, default 24 h).
//!
//! `scale` multiplies every delay (never the event age limits), so a local run can see a retry
//! after 0.6 s instead of a minute; it is 1.0 unless the user asks otherwise.

/// Why an event was given up on, as destination records name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    RetriesExhausted,
    EventAgeExceeded,
}

impl GiveUp {
    pub fn as_str(self) -> &'static str {
        match self {
            GiveUp::RetriesExhausted => "RetriesExhausted",
            GiveUp::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run again at this time (Unix ms).
    RetryAt(u64),
    GiveUp(GiveUp),
}

/// `EventInvokeConfig` (or a rule target's `RetryPolicy`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub maximum_retry_attempts: u32,
    pub maximum_event_age_s: u32,
}

impl RetryPolicy {
    /// Lambda's asynchronous defaults.
    pub const LAMBDA_ASYNC: RetryPolicy = RetryPolicy {
        maximum_retry_attempts: 2,
        maximum_event_age_s: 21_600,
    };
    /// EventBridge's target defaults.
    pub const EVENTBRIDGE_TARGET: RetryPolicy = RetryPolicy {
        maximum_retry_attempts: 185,
        maximum_event_age_s: 86_400,
    };

    fn expired(&self, created_ms: u64, at_ms: u64) -> bool {
        at_ms.saturating_sub(created_ms) > self.maximum_event_age_s as u64 * 1000
    }

    /// Whether an event created at `created_ms` may still run at `now_ms`.
    pub fn alive(&self, created_ms: u64, now_ms: u64) -> bool {
        !self.expired(created_ms, now_ms)
    }

    /// After the function failed on its `attempts`-th run (1 for the first).
    pub fn after_function_error(
        &self,
        attempts: u32,
        created_ms: u64,
        now_ms: u64,
        scale: f64,
    ) -> Next {
        let retries_done = attempts.saturating_sub(1);
        if retries_done >= self.maximum_retry_attempts {
            return Next::GiveUp(GiveUp::RetriesExhausted);
        }
        // 1 minute before the first retry, 2 before the second (and any later one).
        let delay_ms = if retries_done == 0 { 60_000 } else { 120_000 };
        self.at(created_ms, now_ms + scaled(delay_ms, scale))
    }

    /// After the `throttles`-th throttle in a row (1 for the first): 1 s doubling to 5 min.
    pub fn after_throttle(&self, throttles: u32, created_ms: u64, now_ms: u64, scale: f64) -> Next {
        self.at(created_ms, now_ms + scaled(backoff_step(throttles), scale))
    }

    /// After a rule target's `attempts`-th delivery failed; `jitter` in [0, 1) spreads the
    /// wait between half and all of the exponential step (1 s doubling to 5 min).
    pub fn after_delivery_failure(
        &self,
        attempts: u32,
        created_ms: u64,
        now_ms: u64,
        jitter: f64,
        scale: f64,
    ) -> Next {
        if attempts.saturating_sub(1) >= self.maximum_retry_attempts {
            return Next::GiveUp(GiveUp::RetriesExhausted);
        }
        let step = backoff_step(attempts);
        let delay_ms = step / 2 + (step as f64 / 2.0 * jitter.clamp(0.0, 1.0)) as u64;
        self.at(created_ms, now_ms + scaled(delay_ms, scale))
    }

    fn at(&self, created_ms: u64, due_ms: u64) -> Next {
        if self.expired(created_ms, due_ms) {
            Next::GiveUp(GiveUp::EventAgeExceeded)
        } else {
            Next::RetryAt(due_ms)
        }
    }
}

/// The `n`-th step (1 for the first) of a wait of 1 s doubling to 5 min, in milliseconds.
fn backoff_step(n: u32) -> u64 {
    1000u64
        .saturating_mul(1 << n.saturating_sub(1).min(20))
        .min(300_000)
}

fn scaled(ms: u64, scale: f64) -> u64 {
    (ms as f64 * scale).round().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;
    const P: RetryPolicy = RetryPolicy::LAMBDA_ASYNC;

    #[test]
    fn function_errors_are_retried_after_one_then_two_minutes_then_given_up() {
        assert_eq!(
            P.after_function_error(1, T0, T0, 1.0),
            Next::RetryAt(T0 + 60_000)
        );
        assert_eq!(
            P.after_function_error(2, T0, T0 + 60_000, 1.0),
            Next::RetryAt(T0 + 180_000)
        );
        assert_eq!(
            P.after_function_error(3, T0, T0 + 180_000, 1.0),
            Next::GiveUp(GiveUp::RetriesExhausted)
        );
    }

    #[test]
    fn zero_retry_attempts_give_up_after_the_first_failure() {
        let p = RetryPolicy {
            maximum_retry_attempts: 0,
            ..P
        };
        assert_eq!(
            p.after_function_error(1, T0, T0, 1.0),
            Next::GiveUp(GiveUp::RetriesExhausted)
        );
    }

    #[test]
    fn the_scale_shortens_delays_but_not_the_event_age_limit() {
        assert_eq!(
            P.after_function_error(1, T0, T0, 0.01),
            Next::RetryAt(T0 + 600)
        );
        let p = RetryPolicy {
            maximum_event_age_s: 60,
            ..P
        };
        assert_eq!(
            p.after_function_error(1, T0, T0 + 1000, 1.0),
            Next::GiveUp(GiveUp::EventAgeExceeded),
            "a retry a minute later would be past the 60 s age limit"
        );
        assert!(p.alive(T0, T0 + 60_000));
        assert!(!p.alive(T0, T0 + 60_001));
    }

    #[test]
    fn throttles_back_off_exponentially_up_to_five_minutes() {
        let delays: Vec<u64> = (1..=12)
            .map(|n| match P.after_throttle(n, T0, T0, 1.0) {
                Next::RetryAt(t) => t - T0,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            delays,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300].map(|s| s * 1000)
        );
    }

    #[test]
    fn rule_deliveries_back_off_with_jitter_and_stop_at_the_attempt_limit() {
        let p = RetryPolicy {
            maximum_retry_attempts: 2,
            ..RetryPolicy::EVENTBRIDGE_TARGET
        };
        assert_eq!(
            p.after_delivery_failure(1, T0, T0, 0.0, 1.0),
            Next::RetryAt(T0 + 500)
        );
        assert_eq!(
            p.after_delivery_failure(2, T0, T0, 0.999_999, 1.0),
            Next::RetryAt(T0 + 1999)
        );
        assert_eq!(
            p.after_delivery_failure(3, T0, T0, 0.5, 1.0),
            Next::GiveUp(GiveUp::RetriesExhausted)
        );
    }
}
