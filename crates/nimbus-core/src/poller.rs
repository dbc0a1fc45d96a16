//! How many batches an SQS event source mapping keeps in flight: up to its limit
//! (`MaximumConcurrency`), fewer while the function throttles.
//!
//! Lambda's pollers back off when invocations are throttled and scale up again as they succeed.
//! nimbus does the same with additive increase and multiplicative decrease: each throttle halves
//! the batches allowed at once (never below one), each success allows one more (never above the
//! limit). Only when a single batch at a time is still throttled does the poller pause, 1 s
//! doubling to 64 s (scaled like every other local delay), so a function whose concurrency is
//! taken by something else is not polled in a tight loop.

/// The longest pause after repeated throttles at one batch in flight.
pub const MAX_PAUSE_MS: u64 = 64_000;

#[derive(Debug, Clone, PartialEq)]
pub struct PollerScale {
    limit: u32,
    allowed: u32,
    /// Throttles in a row with one batch allowed.
    streak: u32,
    paused_until_ms: u64,
    /// Bumped at each decrease: a throttle of a batch started before the last decrease was
    /// already answered by it, so a burst of throttles halves once, not once per batch.
    generation: u64,
}

/// Whether the poller may start another batch now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Now,
    /// Not before this time.
    PausedUntil(u64),
    /// Not before one of the batches in flight ends.
    WhenOneEnds,
}

impl PollerScale {
    /// Starts at the limit: one machine has no fleet of pollers to warm up.
    pub fn new(limit: u32) -> PollerScale {
        let limit = limit.max(1);
        PollerScale {
            limit,
            allowed: limit,
            streak: 0,
            paused_until_ms: 0,
            generation: 0,
        }
    }

    /// What a batch started now must hand back to [`PollerScale::throttled`].
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn allowed(&self) -> u32 {
        self.allowed
    }

    pub fn may_start(&self, in_flight: u32, now_ms: u64) -> Start {
        if now_ms < self.paused_until_ms {
            Start::PausedUntil(self.paused_until_ms)
        } else if in_flight >= self.allowed {
            Start::WhenOneEnds
        } else {
            Start::Now
        }
    }

    pub fn succeeded(&mut self) {
        self.streak = 0;
        self.allowed = (self.allowed + 1).min(self.limit);
    }

    /// A batch started in `generation` was throttled at `now_ms`; `scale` shrinks the pause
    /// (`--delay-scale`).
    pub fn throttled(&mut self, generation: u64, now_ms: u64, scale: f64) {
        if generation != self.generation {
            return;
        }
        self.generation += 1;
        if self.allowed > 1 {
            self.allowed /= 2;
            return;
        }
        self.streak += 1;
        let pause = (500u64 << self.streak.min(7)).min(MAX_PAUSE_MS);
        self.paused_until_ms = now_ms + (pause as f64 * scale) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_halve_the_batches_in_flight_and_successes_add_them_back() {
        let mut p = PollerScale::new(8);
        assert_eq!(p.may_start(7, 0), Start::Now);
        assert_eq!(p.may_start(8, 0), Start::WhenOneEnds);
        p.throttled(p.generation(), 0, 1.0);
        assert_eq!(p.allowed(), 4);
        p.throttled(p.generation(), 0, 1.0);
        p.throttled(p.generation(), 0, 1.0);
        assert_eq!(p.allowed(), 1);
        assert_eq!(p.may_start(0, 0), Start::Now, "no pause while shrinking");
        for want in [2, 3, 4, 5, 6, 7, 8, 8] {
            p.succeeded();
            assert_eq!(p.allowed(), want);
        }
    }

    #[test]
    fn throttles_at_one_batch_pause_with_a_doubling_scaled_delay() {
        let mut p = PollerScale::new(1);
        p.throttled(p.generation(), 1_000, 1.0);
        assert_eq!(p.may_start(0, 1_000), Start::PausedUntil(2_000));
        assert_eq!(p.may_start(0, 2_000), Start::Now);
        p.throttled(p.generation(), 2_000, 1.0);
        assert_eq!(p.may_start(0, 2_000), Start::PausedUntil(4_000));
        for _ in 0..10 {
            p.throttled(p.generation(), 10_000, 1.0);
        }
        assert_eq!(
            p.may_start(0, 10_000),
            Start::PausedUntil(10_000 + MAX_PAUSE_MS)
        );
        p.succeeded();
        p.throttled(p.generation(), 100_000, 0.01);
        assert_eq!(p.may_start(0, 100_000), Start::PausedUntil(100_010));
    }

    #[test]
    fn a_burst_of_throttles_from_one_generation_halves_once() {
        let mut p = PollerScale::new(64);
        let started = p.generation();
        for _ in 0..54 {
            p.throttled(started, 0, 1.0);
        }
        assert_eq!(p.allowed(), 32);
        assert_eq!(
            p.may_start(0, 0),
            Start::Now,
            "no pause: batches still succeed"
        );
    }

    #[test]
    fn a_zero_limit_still_allows_one_batch() {
        let p = PollerScale::new(0);
        assert_eq!(p.allowed(), 1);
    }
}
