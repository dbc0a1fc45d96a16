//! Usage-plan quotas: at most `limit` requests per calendar day, week or month (UTC), as API
//! Gateway counts them for each API key.

use time::{Duration, OffsetDateTime, Time};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    /// `DAY`, `WEEK` or `MONTH`, as usage plans spell them.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "DAY" => Some(Self::Day),
            "WEEK" => Some(Self::Week),
            "MONTH" => Some(Self::Month),
            _ => None,
        }
    }

    /// The start of the period that contains `t`. Weeks start on Monday 00:00 UTC.
    fn start(self, t: OffsetDateTime) -> OffsetDateTime {
        let day = t.replace_time(Time::MIDNIGHT);
        match self {
            Self::Day => day,
            Self::Week => day - Duration::days(i64::from(t.weekday().number_days_from_monday())),
            Self::Month => day.replace_day(1).unwrap_or(day),
        }
    }
}

/// One key's quota. The caller passes the time, so the rule is tested without waiting.
#[derive(Debug, Clone)]
pub struct Quota {
    limit: u64,
    period: Period,
    window: Option<OffsetDateTime>,
    used: u64,
}

impl Quota {
    /// `offset` is the usage plan's `Quota.Offset`: requests already counted in the first
    /// period.
    pub fn new(limit: u64, period: Period, offset: u64) -> Self {
        Self {
            limit,
            period,
            window: None,
            used: offset,
        }
    }

    /// Counts one request at `now`; false when the period's quota is used up.
    pub fn try_consume(&mut self, now: OffsetDateTime) -> bool {
        let window = self.period.start(now);
        match self.window {
            Some(w) if w == window => {}
            Some(_) => {
                self.window = Some(window);
                self.used = 0;
            }
            None => self.window = Some(window),
        }
        if self.used >= self.limit {
            return false;
        }
        self.used += 1;
        true
    }

    /// Requests left in the period that contains `now`.
    pub fn remaining(&self, now: OffsetDateTime) -> u64 {
        match self.window {
            Some(w) if w == self.period.start(now) => self.limit.saturating_sub(self.used),
            _ => self.limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_daily_quota_refuses_past_its_limit_and_resets_at_midnight_utc() {
        let mut q = Quota::new(2, Period::Day, 0);
        let t = datetime!(2026-11-22 10:00 UTC);
        assert!(q.try_consume(t));
        assert!(q.try_consume(t + Duration::hours(13)));
        assert!(!q.try_consume(t + Duration::hours(13) + Duration::minutes(59)));
        assert_eq!(q.remaining(t), 0);
        assert!(q.try_consume(datetime!(2026-11-23 00:00 UTC)));
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        let mut w = Quota::new(1, Period::Week, 0);
        assert!(w.try_consume(datetime!(2026-11-22 23:00 UTC))); // a Sunday
        assert!(w.try_consume(datetime!(2026-11-23 00:00 UTC))); // Monday: new week
        assert!(!w.try_consume(datetime!(2026-11-29 23:59 UTC)));
        let mut m = Quota::new(1, Period::Month, 0);
        assert!(m.try_consume(datetime!(2026-11-30 12:00 UTC)));
        assert!(!m.try_consume(datetime!(2026-11-01 00:00 UTC) + Duration::days(29)));
        assert!(m.try_consume(datetime!(2026-12-01 00:00 UTC)));
    }

    #[test]
    fn offset_counts_against_the_first_period_only() {
        let mut q = Quota::new(3, Period::Day, 2);
        let t = datetime!(2026-11-22 10:00 UTC);
        assert!(q.try_consume(t));
        assert!(!q.try_consume(t));
        assert_eq!(q.remaining(datetime!(2026-11-23 10:00 UTC)), 3);
    }

    #[test]
    fn periods_parse_as_usage_plans_spell_them() {
        assert_eq!(Period::parse("WEEK"), Some(Period::Week));
        assert_eq!(Period::parse("week"), None);
    }
}
