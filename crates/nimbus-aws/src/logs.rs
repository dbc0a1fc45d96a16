//! Amazon CloudWatch Logs over AWS JSON 1.1 (`X-Amz-Target: Logs_20140328.<Action>`), read
//! only, for the functions' log groups `/aws/lambda/<FunctionName>` and the groups EventBridge
//! rules write events to (one stream per event, named by its id): `DescribeLogGroups`,
//! `DescribeLogStreams`, `GetLogEvents`, `FilterLogEvents`. A function's group exists once the
//! function has logged (its file exists), as on AWS, where Lambda creates the group on first
//! use. Reading the files (streams, pages, tokens) is `nimbus_lambda::logfile`; this module
//! names groups, checks parameters as CloudWatch does and shapes the answers.

use std::sync::Arc;

use axum::http::StatusCode;
use nimbus_core::arn::{log_group_arn, log_stream_arn};
use nimbus_lambda::logfile::{
    self, FilterRead, LogReadError, LogStore, StreamList, StreamOrder, StreamRead, StreamSelection,
    TimeRange,
};
use nimbus_lambda::Platform;
use nimbus_telemetry::filter::FilterPattern;
use serde_json::{json, Value};

use crate::AwsError;

const LAMBDA_GROUP_PREFIX: &str = "/aws/lambda/";
/// `DescribeLogGroups` and `DescribeLogStreams` answer at most 50 items a page.
const MAX_DESCRIBE: i64 = 50;
/// `FilterLogEvents` takes at most 100 stream names.
const MAX_STREAM_NAMES: usize = 100;
const MAX_FILTER_PATTERN: usize = 1024;
/// `FilterLogEvents` reads newest first only from a `startTime` on or after
/// 2024-01-01T00:00:00Z (the API reference's rule).
const NEWEST_FIRST_SINCE_MS: u64 = 1_704_067_200_000;

/// The functions' log groups over the state directory's log files.
#[derive(Clone)]
pub struct Logs {
    platform: Platform,
    store: Arc<LogStore>,
    dir: std::path::PathBuf,
}

impl Logs {
    pub fn new(platform: Platform) -> Self {
        let dir = logfile::log_dir(&platform.config().state_dir);
        Self {
            platform,
            store: Arc::new(LogStore::new(dir.clone())),
            dir,
        }
    }
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(
        StatusCode::BAD_REQUEST,
        "InvalidParameterException",
        message,
    )
}

/// CloudWatch's wording for a value outside a member's constraints.
fn constraint(value: impl std::fmt::Display, member: &str, rule: &str) -> AwsError {
    invalid(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must {rule}"
    ))
}

fn group_not_found() -> AwsError {
    AwsError::new(
        StatusCode::BAD_REQUEST,
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
}

fn read_error(e: LogReadError) -> AwsError {
    match e {
        LogReadError::NoLog(_) => group_not_found(),
        LogReadError::NoStream(_) => AwsError::new(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            "The specified log stream does not exist.",
        ),
        LogReadError::InvalidToken => invalid("The specified nextToken is invalid."),
        LogReadError::Io { .. } => {
            tracing::error!(error = %e, "logs API cannot read a log file");
            AwsError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceUnavailableException",
                format!("nimbus cannot read the log: {e}"),
            )
        }
    }
}

/// Typed reads of the request's members; a member of the wrong JSON type is a
/// `SerializationException`, as AWS JSON services answer it.
struct Input<'a>(&'a Value);

impl<'a> Input<'a> {
    fn member(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    fn wrong_type(key: &str, expected: &str) -> AwsError {
        AwsError::new(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            format!("{key} must be {expected}"),
        )
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, AwsError> {
        match self.member(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Err(constraint(
                "",
                key,
                "have length greater than or equal to 1",
            )),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Self::wrong_type(key, "a string")),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, AwsError> {
        match self.member(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(Self::wrong_type(key, "a boolean")),
        }
    }

    fn integer(&self, key: &str) -> Result<Option<i64>, AwsError> {
        match self.member(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| Self::wrong_type(key, "an integer")),
        }
    }

    /// An epoch-milliseconds member (at least 0).
    fn time(&self, key: &str) -> Result<Option<u64>, AwsError> {
        match self.integer(key)? {
            None => Ok(None),
            Some(ms) => u64::try_from(ms)
                .map(Some)
                .map_err(|_| constraint(ms, key, "have value greater than or equal to 0")),
        }
    }

    /// `limit`, 1 to `max`, or `default`.
    fn limit(&self, max: i64, default: i64) -> Result<usize, AwsError> {
        let limit = self.integer("limit")?.unwrap_or(default);
        if limit < 1 {
            return Err(constraint(
                limit,
                "limit",
                "have value greater than or equal to 1",
            ));
        }
        if limit > max {
            return Err(constraint(
                limit,
                "limit",
                &format!("have value less than or equal to {max}"),
            ));
        }
        Ok(limit as usize)
    }
}

impl Logs {
    /// Answers one CloudWatch Logs action. The log files are read on the blocking pool.
    pub async fn dispatch(&self, action: &str, input: Value) -> Result<Value, AwsError> {
        let logs = self.clone();
        let action = action.to_owned();
        tokio::task::spawn_blocking(move || logs.answer(&action, &input))
            .await
            .map_err(|e| {
                AwsError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ServiceUnavailableException",
                    format!("the logs request failed: {e}"),
                )
            })?
    }

    fn answer(&self, action: &str, input: &Value) -> Result<Value, AwsError> {
        let input = Input(input);
        match action {
            "DescribeLogGroups" => self.describe_log_groups(&input),
            "DescribeLogStreams" => self.describe_log_streams(&input),
            "GetLogEvents" => self.get_log_events(&input),
            "FilterLogEvents" => self.filter_log_events(&input),
            other => Err(AwsError::new(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                format!("nimbus serves DescribeLogGroups, DescribeLogStreams, GetLogEvents and FilterLogEvents of CloudWatch Logs (read-only, the functions' log groups), not {other}"),
            )),
        }
    }

    fn arn(&self, group: &str) -> String {
        let cfg = self.platform.config();
        log_group_arn(&cfg.region, &cfg.account_id, group)
    }

    /// The log file source of the group the request names (`logGroupName`, or
    /// `logGroupIdentifier` as a name or ARN), and the group's name, if it exists: a function's
    /// group once it has logged, another group (a rule's target) once written to.
    fn source(&self, input: &Input<'_>) -> Result<(String, String), AwsError> {
        let group = match (
            input.string("logGroupName")?,
            input.string("logGroupIdentifier")?,
        ) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
                ))
            }
            (Some(name), None) => name,
            (None, Some(id)) => group_of_identifier(id),
            (None, None) => {
                return Err(invalid(
                    "Either logGroupName or logGroupIdentifier must be specified.",
                ))
            }
        };
        let source = match group.strip_prefix(LAMBDA_GROUP_PREFIX) {
            Some(f) if self.platform.function(f).is_some() => f.to_owned(),
            Some(_) => return Err(group_not_found()),
            None => logfile::group_source(group),
        };
        match self.store.log_info(&source).map_err(read_error)? {
            Some(_) => Ok((source, group.to_owned())),
            None => Err(group_not_found()),
        }
    }

    fn describe_log_groups(&self, input: &Input<'_>) -> Result<Value, AwsError> {
        let prefix = input.string("logGroupNamePrefix")?;
        let pattern = match input.member("logGroupNamePattern") {
            // An empty pattern is allowed (its minimum length is 0) and matches every group.
            Some(Value::String(p)) => Some(p.as_str()),
            Some(_) => return Err(Input::wrong_type("logGroupNamePattern", "a string")),
            None => None,
        };
        if prefix.is_some() && pattern.is_some() {
            return Err(invalid(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
            ));
        }
        let limit = input.limit(MAX_DESCRIBE, MAX_DESCRIBE)?;
        let token = input.string("nextToken")?;
        let mut groups = Vec::new();
        for f in self.platform.functions() {
            let name = format!("{LAMBDA_GROUP_PREFIX}{}", f.name);
            if prefix.is_some_and(|p| !name.starts_with(p))
                || pattern.is_some_and(|p| !name.contains(p))
            {
                continue;
            }
            if let Some(info) = self.store.log_info(&f.name).map_err(read_error)? {
                groups.push((name, info));
            }
        }
        // Groups other services wrote to (a rule's log group target).
        let sources = logfile::log_sources(&self.dir).map_err(|e| {
            read_error(LogReadError::Io {
                path: self.dir.clone(),
                source: e,
            })
        })?;
        for (source, _) in sources {
            let Some(name) = logfile::source_group(&source) else {
                continue;
            };
            if prefix.is_some_and(|p| !name.starts_with(p))
                || pattern.is_some_and(|p| !name.contains(p))
            {
                continue;
            }
            if let Some(info) = self.store.log_info(&source).map_err(read_error)? {
                groups.push((name, info));
            }
        }
        let (page, next) =
            logfile::page_sorted(groups, |(name, _)| (0, name.as_str()), false, token, limit)
                .map_err(read_error)?;
        let groups: Vec<Value> = page
            .into_iter()
            .map(|(name, info)| {
                let arn = self.arn(&name);
                // With a pattern, AWS answers only these three members.
                if pattern.is_some() {
                    return json!({
                        "logGroupName": name,
                        "creationTime": info.created_ms,
                        "arn": format!("{arn}:*"),
                    });
                }
                json!({
                    "logGroupName": name,
                    "creationTime": info.created_ms,
                    "metricFilterCount": 0,
                    "arn": format!("{arn}:*"),
                    "storedBytes": info.stored_bytes,
                    "logGroupClass": "STANDARD",
                    "logGroupArn": arn,
                })
            })
            .collect();
        let mut out = json!({ "logGroups": groups });
        if let Some(next) = next {
            out["nextToken"] = next.into();
        }
        Ok(out)
    }

    fn describe_log_streams(&self, input: &Input<'_>) -> Result<Value, AwsError> {
        let (source, group) = self.source(input)?;
        let prefix = input.string("logStreamNamePrefix")?;
        let order = match input.string("orderBy")? {
            None | Some("LogStreamName") => StreamOrder::Name,
            Some("LastEventTime") => StreamOrder::LastEventTime,
            Some(other) => {
                return Err(constraint(
                    other,
                    "orderBy",
                    "satisfy enum value set: [LogStreamName, LastEventTime]",
                ))
            }
        };
        if order == StreamOrder::LastEventTime && prefix.is_some() {
            return Err(invalid(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        let q = StreamList {
            prefix,
            order,
            descending: input.boolean("descending")?.unwrap_or(false),
            limit: input.limit(MAX_DESCRIBE, MAX_DESCRIBE)?,
            token: input.string("nextToken")?,
        };
        let (streams, next) = self.store.list_streams(&source, &q).map_err(read_error)?;
        let cfg = self.platform.config();
        let streams: Vec<Value> = streams
            .into_iter()
            .map(|s| {
                json!({
                    "logStreamName": s.name,
                    // The stream appears with its first line.
                    "creationTime": s.first_event_ms,
                    "firstEventTimestamp": s.first_event_ms,
                    "lastEventTimestamp": s.last_event_ms,
                    // A line is in the file as soon as it is written.
                    "lastIngestionTime": s.last_event_ms,
                    "arn": log_stream_arn(&cfg.region, &cfg.account_id, &group, &s.name),
                    // Always 0 for streams on AWS since 2019.
                    "storedBytes": 0,
                })
            })
            .collect();
        let mut out = json!({ "logStreams": streams });
        if let Some(next) = next {
            out["nextToken"] = next.into();
        }
        Ok(out)
    }

    fn get_log_events(&self, input: &Input<'_>) -> Result<Value, AwsError> {
        let (source, _) = self.source(input)?;
        let stream = input.string("logStreamName")?.ok_or_else(|| {
            invalid("1 validation error detected: Value null at 'logStreamName' failed to satisfy constraint: Member must not be null")
        })?;
        let q = StreamRead {
            // Both ends as GetLogEvents states them: from startTime, before endTime.
            range: TimeRange {
                start_ms: input.time("startTime")?.unwrap_or(0),
                end_ms: input.time("endTime")?.unwrap_or(u64::MAX),
            },
            limit: input.limit(logfile::MAX_EVENTS as i64, logfile::MAX_EVENTS as i64)?,
            token: input.string("nextToken")?,
            start_from_head: input.boolean("startFromHead")?.unwrap_or(false),
        };
        let page = self
            .store
            .read_stream(&source, stream, &q)
            .map_err(read_error)?;
        let events: Vec<Value> = page
            .events
            .into_iter()
            .map(|e| {
                json!({
                    "timestamp": e.time_ms,
                    "message": e.message,
                    "ingestionTime": e.time_ms,
                })
            })
            .collect();
        Ok(json!({
            "events": events,
            "nextForwardToken": page.forward_token,
            "nextBackwardToken": page.backward_token,
        }))
    }

    fn filter_log_events(&self, input: &Input<'_>) -> Result<Value, AwsError> {
        let (source, _) = self.source(input)?;
        let names = match input.member("logStreamNames") {
            None => None,
            Some(Value::Array(items)) => {
                if items.is_empty() || items.len() > MAX_STREAM_NAMES {
                    return Err(constraint(
                        format!("[{} names]", items.len()),
                        "logStreamNames",
                        &format!("have length less than or equal to {MAX_STREAM_NAMES} and greater than or equal to 1"),
                    ));
                }
                let names = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<String>>>()
                    .ok_or_else(|| Input::wrong_type("logStreamNames", "a list of strings"))?;
                Some(names)
            }
            Some(_) => return Err(Input::wrong_type("logStreamNames", "a list of strings")),
        };
        let prefix = input.string("logStreamNamePrefix")?;
        let streams = match (&names, prefix) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.",
                ))
            }
            (Some(names), None) => StreamSelection::Names(names),
            (None, Some(p)) => StreamSelection::Prefix(p),
            (None, None) => StreamSelection::All,
        };
        let pattern_text = match input.member("filterPattern") {
            None => "",
            Some(Value::String(p)) => p.as_str(),
            Some(_) => return Err(Input::wrong_type("filterPattern", "a string")),
        };
        if pattern_text.len() > MAX_FILTER_PATTERN {
            return Err(constraint(
                pattern_text,
                "filterPattern",
                &format!("have length less than or equal to {MAX_FILTER_PATTERN}"),
            ));
        }
        let pattern = FilterPattern::parse(pattern_text).map_err(|e| invalid(e.to_string()))?;
        let start = input.time("startTime")?;
        let start_from_head = input.boolean("startFromHead")?.unwrap_or(true);
        if !start_from_head && start.is_none_or(|s| s < NEWEST_FIRST_SINCE_MS) {
            return Err(invalid(
                "startFromHead false (newest first) needs a startTime on or after 2024-01-01T00:00:00Z.",
            ));
        }
        let q = FilterRead {
            streams,
            // FilterLogEvents includes events at endTime.
            range: TimeRange {
                start_ms: start.unwrap_or(0),
                end_ms: input
                    .time("endTime")?
                    .map_or(u64::MAX, |e| e.saturating_add(1)),
            },
            pattern: &pattern,
            limit: input.limit(logfile::MAX_EVENTS as i64, logfile::MAX_EVENTS as i64)?,
            token: input.string("nextToken")?,
            start_from_head,
        };
        let page = self.store.filter(&source, &q).map_err(read_error)?;
        let events: Vec<Value> = page
            .events
            .into_iter()
            .map(|e| {
                json!({
                    "logStreamName": e.stream,
                    "timestamp": e.time_ms,
                    "message": e.message,
                    "ingestionTime": e.time_ms,
                    "eventId": e.id(),
                })
            })
            .collect();
        // No longer filled in by AWS (always empty since 2020), still in the answer.
        let mut out = json!({ "events": events, "searchedLogStreams": [] });
        if let Some(next) = page.next_token {
            out["nextToken"] = next.into();
        }
        Ok(out)
    }
}

/// The group a `logGroupIdentifier` names: the name itself, or the name inside an ARN
/// (`arn:aws:logs:<region>:<account>:log-group:<name>`, with or without `:*`).
fn group_of_identifier(id: &str) -> &str {
    match id
        .strip_prefix("arn:")
        .and_then(|_| id.split_once(":log-group:"))
    {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_name_a_group_by_name_or_by_arn_with_or_without_the_star() {
        for id in [
            "/aws/lambda/Orders",
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/Orders",
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/Orders:*",
        ] {
            assert_eq!(group_of_identifier(id), "/aws/lambda/Orders", "{id}");
        }
    }

    #[test]
    fn limits_outside_the_members_range_are_refused_in_cloudwatchs_words() {
        let cases = [
            (json!({"limit": 0}), "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"),
            (json!({"limit": 10001}), "Value '10001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000"),
        ];
        for (input, message) in cases {
            let err = Input(&input).limit(10_000, 10_000).unwrap_err();
            assert_eq!(err.code, "InvalidParameterException");
            assert_eq!(
                err.message,
                format!("1 validation error detected: {message}")
            );
        }
        let default = json!({});
        assert_eq!(Input(&default).limit(50, 50).unwrap(), 50);
        let wrong = json!({"limit": "ten"});
        assert_eq!(
            Input(&wrong).limit(50, 50).unwrap_err().code,
            "SerializationException"
        );
    }

    #[test]
    fn times_and_tokens_are_checked_like_their_members() {
        let input = json!({"startTime": -1, "nextToken": ""});
        let err = Input(&input).time("startTime").unwrap_err();
        assert!(err
            .message
            .ends_with("Member must have value greater than or equal to 0"));
        let err = Input(&input).string("nextToken").unwrap_err();
        assert_eq!(
            err.message,
            "1 validation error detected: Value '' at 'nextToken' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
    }
}
