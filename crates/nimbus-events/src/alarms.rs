//! `AWS::CloudWatch::Alarm`s evaluated on nimbus's own metrics: each alarm samples its metric
//! once a period (scaled by `--delay-scale`, like the engine's other AWS waits), judges the
//! last `EvaluationPeriods` datapoints (`nimbus_core::alarm`), and on a change of state logs
//! it and puts CloudWatch's `CloudWatch Alarm State Change` event on the default bus, where
//! rules can react to it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nimbus_core::alarm::{self, AlarmState, Datapoint};
use nimbus_telemetry::cloudwatch;
use nimbus_telemetry::samples::{self, Sample};
use serde_json::{json, Value};

use crate::config::AlarmSpec;
use crate::{now_ms, Hub, PutEventsEntry};

/// State changes kept per alarm for the dashboard.
const MAX_HISTORY: usize = 50;
/// The shortest evaluation interval, however small the scale.
const MIN_TICK: Duration = Duration::from_millis(50);

pub(crate) struct Alarm {
    pub(crate) spec: AlarmSpec,
    status: Mutex<Status>,
}

struct Status {
    state: AlarmState,
    reason: String,
    updated_ms: u64,
    datapoints: VecDeque<Datapoint>,
    history: VecDeque<Value>,
}

impl Alarm {
    pub(crate) fn new(spec: AlarmSpec) -> Alarm {
        let reason = match &spec.source {
            Ok(_) => "Unchecked: Initial alarm creation".to_owned(),
            Err(why) => format!("Unchecked: {why}"),
        };
        Alarm {
            spec,
            status: Mutex::new(Status {
                state: AlarmState::InsufficientData,
                reason,
                updated_ms: now_ms(),
                datapoints: VecDeque::new(),
                history: VecDeque::new(),
            }),
        }
    }

    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub(crate) fn state(&self) -> &'static str {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .state
            .as_str()
    }

    /// The alarm as the dashboard's API shows it.
    pub(crate) fn describe(&self) -> Value {
        let s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let a = &self.spec;
        json!({
            "name": a.name,
            "description": a.description,
            "state": s.state.as_str(),
            "reason": s.reason,
            "updated_ms": s.updated_ms,
            "namespace": a.namespace,
            "metric": a.metric,
            "dimensions": a.dimensions,
            "statistic": a.statistic.name(),
            "period_s": a.period_s,
            "evaluation_periods": a.evaluation.evaluation_periods,
            "datapoints_to_alarm": a.evaluation.datapoints_to_alarm,
            "threshold": a.evaluation.threshold,
            "comparison": a.evaluation.comparison.as_str(),
            "datapoints": s.datapoints.iter().map(|d| json!({"start_ms": d.start_ms, "value": d.value})).collect::<Vec<_>>(),
            "history": s.history,
        })
    }
}

fn snapshot(hub: &Hub) -> Vec<Sample> {
    samples::parse(&hub.scrape_metrics())
}

/// Evaluates one alarm until the engine stops.
pub(crate) async fn evaluator(hub: Hub, alarm: Arc<Alarm>) {
    let Ok(source) = alarm.spec.source.clone() else {
        return;
    };
    let scale = hub.settings().delay_scale;
    let tick = Duration::from_secs_f64(alarm.spec.period_s as f64 * scale).max(MIN_TICK);
    let mut stop = hub.stopping();
    let mut previous = snapshot(&hub);
    let mut started = now_ms();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
        let current = snapshot(&hub);
        let value = cloudwatch::datapoint(&source, alarm.spec.statistic, &previous, &current);
        previous = current;
        let start_ms = started;
        started = now_ms();
        let change = {
            let mut s = alarm.status.lock().unwrap_or_else(|e| e.into_inner());
            s.datapoints.push_back(Datapoint { start_ms, value });
            while s.datapoints.len() > alarm.spec.evaluation.evaluation_periods {
                s.datapoints.pop_front();
            }
            let points: Vec<Datapoint> = s.datapoints.iter().copied().collect();
            let verdict = alarm::evaluate(&alarm.spec.evaluation, s.state, &points);
            if verdict.state == s.state {
                None
            } else {
                let previous = (s.state, s.reason.clone(), s.updated_ms);
                let now = now_ms();
                s.state = verdict.state;
                s.reason = verdict.reason.clone();
                s.updated_ms = now;
                s.history.push_front(json!({
                    "time_ms": now,
                    "from": previous.0.as_str(),
                    "to": verdict.state.as_str(),
                    "reason": verdict.reason,
                }));
                s.history.truncate(MAX_HISTORY);
                Some((previous, verdict, now, start_ms))
            }
        };
        if let Some((previous, verdict, now, start_ms)) = change {
            let a = &alarm.spec;
            match verdict.state {
                AlarmState::Alarm => {
                    tracing::warn!(alarm = %a.name, from = %previous.0, reason = %verdict.reason, "alarm state ALARM")
                }
                state => {
                    tracing::info!(alarm = %a.name, from = %previous.0, to = %state, reason = %verdict.reason, "alarm state changed")
                }
            }
            let event = state_change_detail(a, previous, &verdict, now, start_ms);
            put_state_change(&hub, a, event);
        }
    }
}

/// The `detail` of CloudWatch's `CloudWatch Alarm State Change` event.
fn state_change_detail(
    a: &AlarmSpec,
    previous: (AlarmState, String, u64),
    verdict: &alarm::Verdict,
    now: u64,
    start_ms: u64,
) -> Value {
    let reason_data = json!({
        "version": "1.0",
        "queryDate": alarm::state_timestamp(now),
        "startDate": alarm::state_timestamp(start_ms),
        "statistic": a.statistic.name(),
        "period": a.period_s,
        "recentDatapoints": verdict.recent,
        "threshold": a.evaluation.threshold,
    })
    .to_string();
    let mut detail = json!({
        "alarmName": a.name,
        "state": {
            "value": verdict.state.as_str(),
            "reason": verdict.reason,
            "reasonData": reason_data,
            "timestamp": alarm::state_timestamp(now),
        },
        "previousState": {
            "value": previous.0.as_str(),
            "reason": previous.1,
            "timestamp": alarm::state_timestamp(previous.2),
        },
        "configuration": {
            "metrics": [{
                "id": format!("m-{}", a.name),
                "metricStat": {
                    "metric": {
                        "namespace": a.namespace,
                        "name": a.metric,
                        "dimensions": a.dimensions,
                    },
                    "period": a.period_s,
                    "stat": a.statistic.name(),
                },
                "returnData": true,
            }],
        },
    });
    if let Some(d) = &a.description {
        detail["configuration"]["description"] = d.clone().into();
    }
    detail
}

fn put_state_change(hub: &Hub, a: &AlarmSpec, detail: Value) {
    let s = hub.settings();
    let entry = PutEventsEntry {
        source: Some("aws.cloudwatch".into()),
        detail_type: Some("CloudWatch Alarm State Change".into()),
        detail: Some(detail.to_string()),
        event_bus_name: None,
        resources: vec![format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{}",
            s.region, s.account, a.name
        )],
        time: None,
        trace_header: None,
    };
    if let Some(Err(e)) = hub.put_events(&[entry]).into_iter().next() {
        tracing::error!(alarm = %a.name, code = %e.code, error = %e.message, "cannot put the alarm's state change on the default bus");
    }
}
