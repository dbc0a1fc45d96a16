//! A circuit breaker per provider: after `threshold` consecutive failed attempts it opens and
//! fails fast for `open_for`; then one probe is let through (half-open), and its outcome closes
//! or re-opens it. Pure state machine over caller-supplied times, in milliseconds.
//!
//! Small enough to own; the crates that exist (`failsafe`) bring their own clocks and
//! backoff types, which would make the policy harder to test with controlled time.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed { failures: u32 },
    Open { until_ms: u64 },
    HalfOpen { probe_since_ms: u64 },
}

#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    state: State,
}

/// Whether an attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admit {
    Yes,
    /// The one attempt that decides whether the circuit closes again.
    Probe,
    No {
        retry_after: Duration,
    },
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            open_for,
            state: State::Closed { failures: 0 },
        }
    }

    pub fn admit(&mut self, now_ms: u64) -> Admit {
        match self.state {
            State::Closed { .. } => Admit::Yes,
            State::Open { until_ms } if now_ms < until_ms => Admit::No {
                retry_after: Duration::from_millis(until_ms - now_ms),
            },
            State::Open { .. } => {
                self.state = State::HalfOpen {
                    probe_since_ms: now_ms,
                };
                Admit::Probe
            }
            // A probe whose outcome never arrived (its request was cancelled) must not keep the
            // circuit shut forever: after another `open_for`, probe again.
            State::HalfOpen { probe_since_ms }
                if now_ms.saturating_sub(probe_since_ms) >= self.open_for.as_millis() as u64 =>
            {
                self.state = State::HalfOpen {
                    probe_since_ms: now_ms,
                };
                Admit::Probe
            }
            State::HalfOpen { probe_since_ms } => Admit::No {
                retry_after: Duration::from_millis(
                    (self.open_for.as_millis() as u64)
                        .saturating_sub(now_ms.saturating_sub(probe_since_ms))
                        .max(1),
                ),
            },
        }
    }

    /// The provider answered (even "no such city"): it is up.
    pub fn success(&mut self) {
        self.state = State::Closed { failures: 0 };
    }

    pub fn failure(&mut self, now_ms: u64) {
        let open = State::Open {
            until_ms: now_ms + self.open_for.as_millis() as u64,
        };
        self.state = match self.state {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            State::Closed { .. } | State::HalfOpen { .. } => open,
            // Attempts admitted before it opened may still report: they do not extend it.
            State::Open { until_ms } => State::Open { until_ms },
        };
    }

    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_consecutive_failures_and_a_success_resets_the_count() {
        let mut b = Breaker::new(3, Duration::from_secs(10));
        b.failure(0);
        b.failure(0);
        b.success();
        b.failure(0);
        b.failure(0);
        assert_eq!(b.admit(0), Admit::Yes);
        b.failure(1_000);
        assert!(b.is_open());
        assert_eq!(
            b.admit(4_000),
            Admit::No {
                retry_after: Duration::from_secs(7)
            }
        );
    }

    #[test]
    fn half_opens_for_one_probe_whose_outcome_decides() {
        let mut b = Breaker::new(1, Duration::from_secs(10));
        b.failure(0);
        assert_eq!(b.admit(10_000), Admit::Probe);
        assert!(matches!(b.admit(10_001), Admit::No { .. }));
        b.failure(10_500);
        assert!(matches!(b.admit(20_000), Admit::No { .. }));
        assert_eq!(b.admit(20_500), Admit::Probe);
        b.success();
        assert_eq!(b.admit(20_501), Admit::Yes);
        assert!(!b.is_open());
    }

    #[test]
    fn a_lost_probe_is_replaced_after_another_open_period() {
        let mut b = Breaker::new(1, Duration::from_secs(10));
        b.failure(0);
        assert_eq!(b.admit(10_000), Admit::Probe);
        assert!(matches!(b.admit(19_999), Admit::No { .. }));
        assert_eq!(b.admit(20_000), Admit::Probe);
    }

    #[test]
    fn late_failures_do_not_extend_an_open_circuit() {
        let mut b = Breaker::new(1, Duration::from_secs(10));
        b.failure(0);
        b.failure(5_000);
        assert_eq!(b.admit(10_000), Admit::Probe);
    }
}
