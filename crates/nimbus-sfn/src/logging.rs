//! Executions' logs in CloudWatch Logs, as a machine's `loggingConfiguration` asks (`level`
//! `ALL`, `ERROR`, `FATAL` or `OFF`, `includeExecutionData`, a `cloudWatchLogsLogGroup`
//! destination): each history event the level admits becomes one JSON line in the group, in
//! Step Functions' log shape (`id`, `type`, `details`, `previous_event_id`, `event_timestamp`,
//! `execution_arn`, `redrive_count`, numbers as strings), one stream per execution named as
//! Step Functions names them (`states/<machine>/<yyyy-mm-dd-hh-mm>/<8 hex>`). A journal
//! wrapper: the events are logged once the inner journal has kept them.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::engine::{BoxFuture, Cursor, Event, Journal};
use crate::state::MachineRow;
use crate::Inner;

/// Where and how one execution logs.
#[derive(Clone)]
pub(crate) struct Destination {
    group: String,
    stream: String,
    level: String,
    include_data: bool,
    execution_arn: String,
}

/// The execution's destination, when its machine logs to a log group and a sink is set.
pub(crate) fn destination(
    sfn: &Inner,
    machine: &MachineRow,
    execution_arn: &str,
    start_ms: u64,
) -> Option<Destination> {
    let config = &machine.settings["loggingConfiguration"];
    let level = config["level"]
        .as_str()
        .unwrap_or("OFF")
        .to_ascii_uppercase();
    let group = config["destinations"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|d| d["cloudWatchLogsLogGroup"]["logGroupArn"].as_str())
        .and_then(nimbus_core::arn::log_group_of_arn)
        .map(str::to_owned)?;
    (matches!(level.as_str(), "ALL" | "ERROR" | "FATAL") && sfn.log_sink.get().is_some()).then(
        || Destination {
            group,
            stream: stream_name(&machine.name, execution_arn, start_ms),
            level,
            // CloudFormation may hand the flag over as text.
            include_data: config["includeExecutionData"] == true
                || config["includeExecutionData"] == "true",
            execution_arn: execution_arn.to_owned(),
        },
    )
}

/// The lines of the events `dest`'s level admits.
fn lines(dest: &Destination, events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| admits(&dest.level, &e.kind))
        .map(|e| line(e, &dest.execution_arn, dest.include_data).to_string())
        .collect()
}

/// Sends lines to the destination's group and stream.
fn emit(sfn: &Inner, dest: &Destination, lines: Vec<String>) {
    if let Some(sink) = sfn.log_sink.get() {
        for l in lines {
            sink(&dest.group, &dest.stream, l);
        }
    }
}

/// Logs the events `dest`'s level admits.
pub(crate) fn write(sfn: &Inner, dest: &Destination, events: &[Event]) {
    emit(sfn, dest, lines(dest, events));
}

/// `inner`, logging what it keeps when the execution has a destination.
pub(crate) fn journal(
    sfn: &Arc<Inner>,
    inner: Arc<dyn Journal>,
    machine: &MachineRow,
    execution_arn: &str,
    start_ms: u64,
) -> Arc<dyn Journal> {
    match destination(sfn, machine, execution_arn, start_ms) {
        Some(dest) => Arc::new(Logged {
            inner,
            sfn: Arc::clone(sfn),
            dest,
        }),
        None => inner,
    }
}

/// `states/<machine>/<yyyy-mm-dd-hh-mm>/<8 hex of the execution>`.
fn stream_name(machine: &str, execution_arn: &str, start_ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(start_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let hash = execution_arn.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!(
        "states/{machine}/{:04}-{:02}-{:02}-{:02}-{:02}/{hash:08x}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// Whether `level` logs an event of `kind`: `ERROR` the failures of anything, `FATAL` only
/// the execution's own end in failure.
fn admits(level: &str, kind: &str) -> bool {
    match level {
        "ALL" => true,
        "ERROR" => {
            kind.ends_with("Failed")
                || kind.ends_with("TimedOut")
                || kind.ends_with("Aborted")
                || kind.ends_with("StartFailed")
                || kind.ends_with("SubmitFailed")
        }
        "FATAL" => matches!(
            kind,
            "ExecutionFailed" | "ExecutionAborted" | "ExecutionTimedOut"
        ),
        _ => false,
    }
}

/// One event as Step Functions logs it.
fn line(e: &Event, execution_arn: &str, include_data: bool) -> Value {
    let details = e
        .details
        .as_ref()
        .map(|(_, d)| crate::engine::shown_details(d, include_data))
        .unwrap_or_else(|| json!({}));
    json!({
        "id": e.id.to_string(),
        "type": e.kind,
        "details": details,
        "previous_event_id": e.previous.to_string(),
        "event_timestamp": e.ts_ms.to_string(),
        "execution_arn": execution_arn,
        "redrive_count": "0",
    })
}

struct Logged {
    inner: Arc<dyn Journal>,
    sfn: Arc<Inner>,
    dest: Destination,
}

impl Journal for Logged {
    fn record<'a>(
        &'a self,
        events: Vec<Event>,
        cursor: Option<Cursor>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            // Rendered before the events move into the journal; sent once they are kept.
            let lines = lines(&self.dest, &events);
            self.inner.record(events, cursor).await?;
            emit(&self.sfn, &self.dest, lines);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_admit_what_step_functions_logs_at_them() {
        // (event type, ALL, ERROR, FATAL)
        let table = [
            ("ExecutionStarted", true, false, false),
            ("TaskStateEntered", true, false, false),
            ("LambdaFunctionFailed", true, true, false),
            ("TaskTimedOut", true, true, false),
            ("ExecutionFailed", true, true, true),
            ("ExecutionAborted", true, true, true),
            ("ExecutionSucceeded", true, false, false),
        ];
        for (kind, all, error, fatal) in table {
            assert_eq!(
                (
                    admits("ALL", kind),
                    admits("ERROR", kind),
                    admits("FATAL", kind),
                    admits("OFF", kind)
                ),
                (all, error, fatal, false),
                "{kind}"
            );
        }
    }

    #[test]
    fn streams_and_lines_are_in_step_functions_shape() {
        let arn = "arn:aws:states:us-east-1:123456789012:execution:m:e1";
        let s = stream_name("m", arn, 1_765_000_000_000);
        assert!(s.starts_with("states/m/2025-12-06-05-46/"), "{s}");
        assert_eq!(s.len(), "states/m/2025-12-06-05-46/".len() + 8);
        let e = Event {
            id: 2,
            previous: 1,
            ts_ms: 5,
            kind: "PassStateExited".into(),
            details: Some((
                "stateExitedEventDetails".into(),
                json!({"name": "P", "output": "{}"}),
            )),
        };
        assert_eq!(
            line(&e, arn, false),
            json!({"id": "2", "type": "PassStateExited", "details": {"name": "P"},
                   "previous_event_id": "1", "event_timestamp": "5", "execution_arn": arn,
                   "redrive_count": "0"})
        );
        assert_eq!(line(&e, arn, true)["details"]["output"], "{}");
        assert_eq!(
            nimbus_core::arn::log_group_of_arn(
                "arn:aws:logs:us-east-1:123456789012:log-group:/aws/vendedlogs/states/m:*"
            ),
            Some("/aws/vendedlogs/states/m")
        );
    }
}
