//! The slow, flaky downstream API: `POST /slow` fails at once with probability `FAILURE_RATE`,
//! else answers after a uniform random delay of 0..=`MAX_DELAY_MS`. Behind API Gateway it also
//! has an API key and a usage plan's throttle, which answer 403 and 429 before it runs.

use serde_json::{json, Value};

use crate::config::{fraction_or, u64_or, ConfigError, Vars};
use crate::log;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// 0 to 1.
    pub failure_rate: f64,
    pub max_delay_ms: u64,
}

impl Config {
    pub fn from_vars(vars: Vars<'_>) -> Result<Self, ConfigError> {
        Ok(Config {
            failure_rate: fraction_or(vars, "FAILURE_RATE", 0.2)?,
            max_delay_ms: u64_or(vars, "MAX_DELAY_MS", 2000, 0)?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Answer 500 at once.
    Fail,
    /// Wait this long, then answer 200.
    Delay(u64),
}

/// What one call does, from one uniform random number `u` in [0, 1): below the failure rate
/// it fails; the rest of the range, stretched back to [0, 1), picks the delay uniformly in
/// 0..=`max_delay_ms`.
pub fn decide(u: f64, cfg: &Config) -> Decision {
    let u = u.clamp(0.0, 1.0);
    if u < cfg.failure_rate {
        return Decision::Fail;
    }
    let span = 1.0 - cfg.failure_rate;
    let v = if span > 0.0 {
        (u - cfg.failure_rate) / span
    } else {
        0.0
    };
    let delay = (v * (cfg.max_delay_ms as f64 + 1.0)).floor() as u64;
    Decision::Delay(delay.min(cfg.max_delay_ms))
}

/// The status and body of the answer.
pub fn answer(decision: Decision, correlation_id: Option<&str>) -> (u16, Value) {
    match decision {
        Decision::Fail => (500, json!({"error": "injected failure"})),
        Decision::Delay(_) => (200, json!({"received": correlation_id})),
    }
}

/// `{"event":"slow_call","correlation_id","status","delay_ms","ts_ms"}`
pub fn call_line(correlation_id: Option<&str>, status: u16, delay_ms: u64, ts_ms: u64) -> String {
    log::line(
        "slow_call",
        &[
            ("correlation_id", log::opt(correlation_id)),
            ("status", Value::from(status)),
            ("delay_ms", Value::from(delay_ms)),
        ],
        ts_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vars_from;

    const CFG: Config = Config {
        failure_rate: 0.2,
        max_delay_ms: 2000,
    };

    #[test]
    fn below_the_failure_rate_a_call_fails() {
        assert_eq!(decide(0.0, &CFG), Decision::Fail);
        assert_eq!(decide(0.199_999, &CFG), Decision::Fail);
        assert_eq!(decide(0.2, &CFG), Decision::Delay(0));
    }

    #[test]
    fn the_rest_of_the_range_spreads_delays_over_0_to_max() {
        assert_eq!(decide(0.6, &CFG), Decision::Delay(1000));
        assert_eq!(decide(0.999_999_999, &CFG), Decision::Delay(2000));
        assert_eq!(decide(1.0, &CFG), Decision::Delay(2000));
        // Every delay is reachable and none is out of range.
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..100_000 {
            if let Decision::Delay(d) = decide(i as f64 / 100_000.0, &CFG) {
                assert!(d <= 2000);
                seen.insert(d);
            }
        }
        assert_eq!(seen.len(), 2001);
    }

    #[test]
    fn rates_of_0_and_1_never_and_always_fail() {
        let never = Config {
            failure_rate: 0.0,
            max_delay_ms: 0,
        };
        assert_eq!(decide(0.0, &never), Decision::Delay(0));
        assert_eq!(decide(0.99, &never), Decision::Delay(0));
        let always = Config {
            failure_rate: 1.0,
            max_delay_ms: 10,
        };
        assert_eq!(decide(0.999_999, &always), Decision::Fail);
    }

    #[test]
    fn answers_and_log_lines() {
        assert_eq!(
            answer(Decision::Fail, Some("c-1")),
            (500, json!({"error":"injected failure"}))
        );
        assert_eq!(
            answer(Decision::Delay(5), Some("c-1")),
            (200, json!({"received":"c-1"}))
        );
        assert_eq!(
            answer(Decision::Delay(5), None),
            (200, json!({"received":null}))
        );
        assert_eq!(
            call_line(Some("c-1"), 200, 1234, 99),
            r#"{"event":"slow_call","correlation_id":"c-1","status":200,"delay_ms":1234,"ts_ms":99}"#
        );
        assert_eq!(
            call_line(None, 500, 0, 99),
            r#"{"event":"slow_call","correlation_id":null,"status":500,"delay_ms":0,"ts_ms":99}"#
        );
    }

    #[test]
    fn configuration_defaults_and_checks() {
        assert_eq!(Config::from_vars(&vars_from(&[])), Ok(CFG));
        let vars = vars_from(&[("FAILURE_RATE", "0.5"), ("MAX_DELAY_MS", "10")]);
        assert_eq!(
            Config::from_vars(&vars),
            Ok(Config {
                failure_rate: 0.5,
                max_delay_ms: 10
            })
        );
        let vars = vars_from(&[("FAILURE_RATE", "20%")]);
        assert_eq!(
            Config::from_vars(&vars).unwrap_err().to_string(),
            "FAILURE_RATE must be a number from 0 to 1, got \"20%\""
        );
    }
}
