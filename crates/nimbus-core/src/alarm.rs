//! CloudWatch metric alarm evaluation: "M out of N" datapoints against a threshold, with
//! `TreatMissingData`, and the state reasons CloudWatch writes.
//!
//! What nimbus keeps simpler than CloudWatch: it evaluates the last `EvaluationPeriods`
//! periods only (CloudWatch may look further back over missing data), so with
//! `TreatMissingData: missing` the alarm is `INSUFFICIENT_DATA` only when every one of them is
//! missing, and otherwise judges the datapoints present.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl Comparison {
    pub fn parse(s: &str) -> Option<Comparison> {
        Some(match s {
            "GreaterThanOrEqualToThreshold" => Comparison::GreaterThanOrEqualToThreshold,
            "GreaterThanThreshold" => Comparison::GreaterThanThreshold,
            "LessThanThreshold" => Comparison::LessThanThreshold,
            "LessThanOrEqualToThreshold" => Comparison::LessThanOrEqualToThreshold,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            Comparison::GreaterThanThreshold => "GreaterThanThreshold",
            Comparison::LessThanThreshold => "LessThanThreshold",
            Comparison::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }

    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => value >= threshold,
            Comparison::GreaterThanThreshold => value > threshold,
            Comparison::LessThanThreshold => value < threshold,
            Comparison::LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    /// As the state reason says it: "greater than or equal to".
    fn phrase(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => "greater than or equal to",
            Comparison::GreaterThanThreshold => "greater than",
            Comparison::LessThanThreshold => "less than",
            Comparison::LessThanOrEqualToThreshold => "less than or equal to",
        }
    }
}

/// `TreatMissingData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingData {
    #[default]
    Missing,
    Breaching,
    NotBreaching,
    Ignore,
}

impl MissingData {
    pub fn parse(s: &str) -> Option<MissingData> {
        Some(match s {
            "missing" => MissingData::Missing,
            "breaching" => MissingData::Breaching,
            "notBreaching" => MissingData::NotBreaching,
            "ignore" => MissingData::Ignore,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub threshold: f64,
    pub comparison: Comparison,
    /// N: the periods looked at.
    pub evaluation_periods: usize,
    /// M: breaching datapoints among the N that make ALARM (`DatapointsToAlarm`, default N).
    pub datapoints_to_alarm: usize,
    pub missing: MissingData,
}

/// One period's value, `None` when the metric had no datapoint in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Datapoint {
    /// The period's start.
    pub start_ms: u64,
    pub value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub state: AlarmState,
    /// CloudWatch's `StateReason`.
    pub reason: String,
    /// The values judged, oldest first (`recentDatapoints` of the reason data).
    pub recent: Vec<f64>,
}

/// The state the last `evaluation_periods` datapoints (oldest first; more are ignored) put an
/// alarm in, coming from `current`.
pub fn evaluate(e: &Evaluation, current: AlarmState, datapoints: &[Datapoint]) -> Verdict {
    let n = e.evaluation_periods.max(1);
    let window = &datapoints[datapoints.len().saturating_sub(n)..];
    let present: Vec<&Datapoint> = window.iter().filter(|d| d.value.is_some()).collect();
    let missing = n - present.len();
    let recent: Vec<f64> = present.iter().filter_map(|d| d.value).collect();
    if present.is_empty() {
        match e.missing {
            MissingData::Missing => {
                let plural = if n == 1 {
                    "datapoint was"
                } else {
                    "datapoints were"
                };
                return Verdict {
                    state: AlarmState::InsufficientData,
                    reason: format!("Insufficient Data: {n} {plural} unknown."),
                    recent,
                };
            }
            MissingData::Ignore => {
                return Verdict {
                    state: current,
                    reason: format!("No datapoints in the last {n} periods; state kept."),
                    recent,
                }
            }
            treated => {
                let (state, as_what) = if treated == MissingData::Breaching {
                    (AlarmState::Alarm, "Breaching")
                } else {
                    (AlarmState::Ok, "NonBreaching")
                };
                let (periods, were) = if n == 1 {
                    ("period", "datapoint was")
                } else {
                    ("periods", "datapoints were")
                };
                return Verdict {
                    state,
                    reason: format!("Threshold Crossed: no datapoints were received for {n} {periods} and {n} missing {were} treated as [{as_what}]."),
                    recent,
                };
            }
        }
    }
    let missing_breaches = match e.missing {
        MissingData::Breaching => missing,
        _ => 0,
    };
    let breaching: Vec<&Datapoint> = present
        .iter()
        .copied()
        .filter(|d| {
            d.value
                .is_some_and(|v| e.comparison.breaches(v, e.threshold))
        })
        .collect();
    let m = e.datapoints_to_alarm.clamp(1, n);
    let alarm = breaching.len() + missing_breaches >= m;
    let (state, shown, not) = if alarm {
        (AlarmState::Alarm, breaching, "")
    } else {
        let ok: Vec<&Datapoint> = present
            .iter()
            .copied()
            .filter(|d| {
                d.value
                    .is_some_and(|v| !e.comparison.breaches(v, e.threshold))
            })
            .collect();
        (AlarmState::Ok, ok, "not ")
    };
    let values: Vec<String> = shown
        .iter()
        .map(|d| {
            format!(
                "{} ({})",
                number(d.value.unwrap_or_default()),
                reason_time(d.start_ms)
            )
        })
        .collect();
    let count = shown.len() + if alarm { missing_breaches } else { 0 };
    let minimum = if alarm { m } else { 1 };
    let min_noun = if minimum == 1 {
        "datapoint"
    } else {
        "datapoints"
    };
    Verdict {
        state,
        reason: format!(
            "Threshold Crossed: {count} out of the last {n} datapoints [{}] was {not}{} the threshold ({}) (minimum {minimum} {min_noun} for {current} -> {state} transition).",
            values.join(", "),
            e.comparison.phrase(),
            number(e.threshold),
        ),
        recent,
    }
}

/// `2.0`, `0.5`: CloudWatch writes datapoints and thresholds with at least one decimal.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// `dd/MM/yy HH:mm:ss` in UTC, as datapoints appear in a state reason.
pub fn reason_time(epoch_ms: u64) -> String {
    match time::OffsetDateTime::from_unix_timestamp((epoch_ms / 1000) as i64) {
        Ok(t) => format!(
            "{:02}/{:02}/{:02} {:02}:{:02}:{:02}",
            t.day(),
            t.month() as u8,
            t.year() % 100,
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => String::new(),
    }
}

/// `2019-10-01T13:56:40.987+0000`: the timestamps of alarm state events (Lambda's platform
/// style with CloudWatch's zone suffix).
pub fn state_timestamp(epoch_ms: u64) -> String {
    let mut t = crate::report::timestamp_millis(epoch_ms);
    t.pop(); // the `Z`
    t.push_str("+0000");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(n: usize, m: usize, missing: MissingData) -> Evaluation {
        Evaluation {
            threshold: 1.0,
            comparison: Comparison::GreaterThanOrEqualToThreshold,
            evaluation_periods: n,
            datapoints_to_alarm: m,
            missing,
        }
    }

    fn points(values: &[Option<f64>]) -> Vec<Datapoint> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Datapoint {
                start_ms: 1_570_035_540_000 + i as u64 * 60_000,
                value: *v,
            })
            .collect()
    }

    #[test]
    fn one_breaching_datapoint_alarms_with_cloudwatchs_reason() {
        let v = evaluate(
            &eval(1, 1, MissingData::Missing),
            AlarmState::Ok,
            &points(&[Some(2.0)]),
        );
        assert_eq!(v.state, AlarmState::Alarm);
        assert_eq!(
            v.reason,
            "Threshold Crossed: 1 out of the last 1 datapoints [2.0 (02/10/19 16:59:00)] was greater than or equal to the threshold (1.0) (minimum 1 datapoint for OK -> ALARM transition)."
        );
        assert_eq!(v.recent, vec![2.0]);
    }

    #[test]
    fn below_the_threshold_is_ok_and_says_not() {
        let v = evaluate(
            &eval(1, 1, MissingData::Missing),
            AlarmState::Alarm,
            &points(&[Some(0.0)]),
        );
        assert_eq!(v.state, AlarmState::Ok);
        assert!(v.reason.contains("[0.0 (02/10/19 16:59:00)] was not greater than or equal to the threshold (1.0) (minimum 1 datapoint for ALARM -> OK transition)."), "{}", v.reason);
    }

    #[test]
    fn m_out_of_n_needs_m_breaching_datapoints_among_the_last_n() {
        let e = eval(3, 2, MissingData::Missing);
        let one = evaluate(
            &e,
            AlarmState::Ok,
            &points(&[Some(5.0), Some(0.0), Some(5.0), Some(0.0)]),
        );
        assert_eq!(
            one.state,
            AlarmState::Ok,
            "the oldest is outside the window"
        );
        let two = evaluate(
            &e,
            AlarmState::Ok,
            &points(&[Some(5.0), Some(0.0), Some(5.0)]),
        );
        assert_eq!(two.state, AlarmState::Alarm);
        assert!(two
            .reason
            .starts_with("Threshold Crossed: 2 out of the last 3 datapoints"));
    }

    #[test]
    fn all_missing_is_insufficient_data_unless_told_otherwise() {
        let none = points(&[None, None]);
        let v = evaluate(&eval(2, 2, MissingData::Missing), AlarmState::Ok, &none);
        assert_eq!(v.state, AlarmState::InsufficientData);
        assert_eq!(v.reason, "Insufficient Data: 2 datapoints were unknown.");
        assert_eq!(
            evaluate(&eval(2, 2, MissingData::Ignore), AlarmState::Alarm, &none).state,
            AlarmState::Alarm
        );
        assert_eq!(
            evaluate(&eval(2, 2, MissingData::Breaching), AlarmState::Ok, &none).state,
            AlarmState::Alarm
        );
        let v = evaluate(
            &eval(2, 2, MissingData::NotBreaching),
            AlarmState::Alarm,
            &none,
        );
        assert_eq!(v.state, AlarmState::Ok);
        assert_eq!(v.reason, "Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints were treated as [NonBreaching].");
    }

    #[test]
    fn missing_datapoints_count_as_breaching_when_told() {
        let v = evaluate(
            &eval(2, 2, MissingData::Breaching),
            AlarmState::Ok,
            &points(&[None, Some(3.0)]),
        );
        assert_eq!(v.state, AlarmState::Alarm);
        let v = evaluate(
            &eval(2, 2, MissingData::Missing),
            AlarmState::Ok,
            &points(&[None, Some(3.0)]),
        );
        assert_eq!(v.state, AlarmState::Ok, "one breaching of two needed");
    }

    #[test]
    fn comparisons_and_names_round_trip() {
        for c in [
            Comparison::GreaterThanOrEqualToThreshold,
            Comparison::GreaterThanThreshold,
            Comparison::LessThanThreshold,
            Comparison::LessThanOrEqualToThreshold,
        ] {
            assert_eq!(Comparison::parse(c.as_str()), Some(c));
        }
        assert!(Comparison::LessThanThreshold.breaches(0.5, 1.0));
        assert!(!Comparison::GreaterThanThreshold.breaches(1.0, 1.0));
        assert_eq!(Comparison::parse("Bigger"), None);
        assert_eq!(
            MissingData::parse("notBreaching"),
            Some(MissingData::NotBreaching)
        );
        assert_eq!(MissingData::parse("NotBreaching"), None);
    }

    #[test]
    fn state_timestamps_have_cloudwatchs_shape() {
        assert_eq!(
            state_timestamp(1_569_938_200_987),
            "2019-10-01T13:56:40.987+0000"
        );
    }
}
