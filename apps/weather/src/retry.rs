//! When to try an upstream call again, and how long to wait: exponential backoff with full
//! jitter, `Retry-After` honoured, never past the invocation's deadline.
//!
//! Written here rather than with `backon` because the decision needs all three inputs at once
//! (the failure's class, the server's `Retry-After`, the time the invocation has left) and must
//! be testable without a clock or randomness: the caller passes both in.

use std::time::Duration;

/// Time kept back from the invocation deadline for answering the client.
pub const RESPONSE_MARGIN: Duration = Duration::from_millis(250);
/// An attempt with less time than this is not worth making.
pub const MIN_ATTEMPT: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
    pub attempt_timeout: Duration,
}

/// What went wrong with one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FailureClass {
    /// Timeouts, connection errors, 5xx, 429: worth another try.
    Transient { retry_after: Option<Duration> },
    /// Any other 4xx, or an answer that makes no sense: trying again will not help.
    Permanent,
}

impl FailureClass {
    /// The wait the provider asked for, if any.
    pub fn retry_after(self) -> Option<Duration> {
        match self {
            FailureClass::Transient { retry_after } => retry_after,
            FailureClass::Permanent => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    RetryAfter(Duration),
    Stop(Stop),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    NotRetryable,
    AttemptsExhausted,
    /// The server asked for a wait longer than the invocation has left.
    RetryAfterTooLong(Duration),
    /// Waiting and trying again would not fit before the deadline.
    Deadline,
}

impl RetryPolicy {
    /// The timeout for an attempt starting with `remaining` until the deadline, or `None` when
    /// no useful attempt fits.
    pub fn attempt_timeout(&self, remaining: Duration) -> Option<Duration> {
        let usable = remaining.checked_sub(RESPONSE_MARGIN)?;
        let t = usable.min(self.attempt_timeout);
        (t >= MIN_ATTEMPT).then_some(t)
    }

    /// After attempt number `attempts` (1-based) failed with `failure`, with `remaining` left:
    /// wait and retry, or stop. `jitter` is uniform in [0, 1).
    pub fn next(
        &self,
        attempts: u32,
        failure: FailureClass,
        remaining: Duration,
        jitter: f64,
    ) -> Next {
        if failure == FailureClass::Permanent {
            return Next::Stop(Stop::NotRetryable);
        }
        let retry_after = failure.retry_after();
        if attempts >= self.max_attempts {
            return Next::Stop(Stop::AttemptsExhausted);
        }
        let delay = match retry_after {
            Some(d) => d,
            None => {
                let exp = self
                    .base
                    .saturating_mul(1u32 << (attempts - 1).min(20))
                    .min(self.max_delay);
                exp.mul_f64(jitter.clamp(0.0, 1.0))
            }
        };
        let fits = remaining
            .checked_sub(delay)
            .and_then(|left| self.attempt_timeout(left))
            .is_some();
        match (fits, retry_after) {
            (true, _) => Next::RetryAfter(delay),
            (false, Some(d)) => Next::Stop(Stop::RetryAfterTooLong(d)),
            (false, None) => Next::Stop(Stop::Deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base: MS(100),
            max_delay: MS(1000),
            attempt_timeout: MS(2000),
        }
    }

    fn transient() -> FailureClass {
        FailureClass::Transient { retry_after: None }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_scales_all_of_it() {
        let p = policy();
        let big = Duration::from_secs(60);
        assert_eq!(
            p.next(1, transient(), big, 0.999_999),
            Next::RetryAfter(MS(100) - Duration::from_nanos(100))
        );
        assert_eq!(p.next(2, transient(), big, 0.5), Next::RetryAfter(MS(100)));
        assert_eq!(p.next(3, transient(), big, 0.5), Next::RetryAfter(MS(200)));
        assert_eq!(p.next(1, transient(), big, 0.0), Next::RetryAfter(MS(0)));
        let capped = RetryPolicy {
            max_attempts: 30,
            ..p
        };
        assert_eq!(
            capped.next(12, transient(), big, 0.5),
            Next::RetryAfter(MS(500))
        );
    }

    #[test]
    fn permanent_failures_and_the_last_attempt_stop() {
        let p = policy();
        let big = Duration::from_secs(60);
        assert_eq!(
            p.next(1, FailureClass::Permanent, big, 0.5),
            Next::Stop(Stop::NotRetryable)
        );
        assert_eq!(
            p.next(4, transient(), big, 0.5),
            Next::Stop(Stop::AttemptsExhausted)
        );
    }

    #[test]
    fn retry_after_is_honoured_exactly_when_it_fits() {
        let p = policy();
        let ra = FailureClass::Transient {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(
            p.next(1, ra, Duration::from_secs(10), 0.0),
            Next::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            p.next(1, ra, Duration::from_secs(2), 0.0),
            Next::Stop(Stop::RetryAfterTooLong(Duration::from_secs(2)))
        );
    }

    #[test]
    fn the_deadline_bounds_waits_and_attempts() {
        let p = policy();
        // 300 ms left: the 250 ms margin leaves 50 ms, less than a useful attempt.
        assert_eq!(
            p.next(1, transient(), MS(300), 0.0),
            Next::Stop(Stop::Deadline)
        );
        assert_eq!(p.attempt_timeout(MS(300)), None);
        assert_eq!(p.attempt_timeout(MS(1000)), Some(MS(750)));
        assert_eq!(p.attempt_timeout(Duration::from_secs(60)), Some(MS(2000)));
        assert_eq!(p.attempt_timeout(MS(100)), None);
    }
}
