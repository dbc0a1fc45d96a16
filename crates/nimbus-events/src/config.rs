//! What the template asks of the event engine, read from the resolved stack and checked before
//! anything starts: every error names the resource, the property and the template line.
//!
//! Sources: SAM function properties `EventInvokeConfig` and `DeadLetterQueue`, SAM events
//! `EventBridgeRule`, `Schedule` and `SQS`; resources `AWS::Lambda::EventInvokeConfig`,
//! `AWS::Events::EventBus`, `AWS::Events::Rule`, `AWS::Lambda::EventSourceMapping` and
//! `AWS::CloudWatch::Alarm`.

use std::collections::{BTreeMap, BTreeSet};

use nimbus_core::alarm::{Comparison, Evaluation, MissingData};
use nimbus_core::pattern::Pattern;
use nimbus_core::retry::RetryPolicy;
use nimbus_core::schedule::Schedule;
use nimbus_core::transform::TargetInput;
use nimbus_telemetry::cloudwatch::{Source, Statistic};
use nimbus_template::Stack;
use serde_json::Value;

/// Where events, records and failed invocations can be sent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dest {
    Function(String),
    Queue(String),
    Bus(String),
    /// An SNS topic, by name: published to through [`crate::Hub::set_topic_publisher`].
    Topic(String),
    /// A Step Functions state machine, by name: an execution started through
    /// [`crate::Hub::set_machine_starter`].
    StateMachine(String),
    /// A CloudWatch Logs log group, by name: the event written to it through
    /// [`crate::Hub::set_log_writer`].
    LogGroup(String),
}

impl Dest {
    /// The ARN of a destination, for records and messages.
    pub fn arn(&self, region: &str, account: &str) -> String {
        match self {
            Dest::Function(f) => nimbus_core::arn::function_arn(region, account, f),
            Dest::Queue(q) => nimbus_core::arn::queue_arn(region, account, q),
            Dest::Bus(b) => nimbus_core::arn::event_bus_arn(region, account, b),
            Dest::Topic(t) => format!("arn:aws:sns:{region}:{account}:{t}"),
            Dest::StateMachine(m) => format!("arn:aws:states:{region}:{account}:stateMachine:{m}"),
            Dest::LogGroup(g) => nimbus_core::arn::log_group_arn(region, account, g),
        }
    }
}

/// The name of a template's state machine resource (`Name` for SAM's, `StateMachineName` for
/// CloudFormation's, else the logical id); `None` for other resources.
fn machine_name(id: &str, r: &nimbus_template::Resource) -> Option<String> {
    let key = match r.resource_type.as_str() {
        "AWS::Serverless::StateMachine" => "Name",
        "AWS::StepFunctions::StateMachine" => "StateMachineName",
        _ => return None,
    };
    Some(r.properties[key].as_str().unwrap_or(id).to_owned())
}

/// Where an asynchronous invocation's destination ARN delivers: a function (with its
/// qualifier), a queue, a topic or an event bus. `None` for anything else.
pub fn dest_from_arn(arn: &str) -> Option<Dest> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _, service, _, _, resource] = parts.as_slice() else {
        return None;
    };
    if resource.is_empty() {
        return None;
    }
    Some(match *service {
        "lambda" => {
            let name = resource.strip_prefix("function:")?;
            Dest::Function(name.strip_suffix(":$LATEST").unwrap_or(name).to_owned())
        }
        "sqs" => Dest::Queue((*resource).to_owned()),
        "sns" => Dest::Topic((*resource).to_owned()),
        "events" => Dest::Bus(resource.strip_prefix("event-bus/")?.to_owned()),
        _ => return None,
    })
}

/// The bus a name or an ARN (`arn:aws:events:..:event-bus/NAME`) names.
pub fn bus_name(raw: &str) -> &str {
    raw.rsplit_once(":event-bus/").map_or(raw, |(_, n)| n)
}

/// A function's asynchronous invocation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AsyncConfig {
    pub policy: RetryPolicy,
    pub on_success: Option<Dest>,
    pub on_failure: Option<Dest>,
    /// `DeadLetterQueue` of `Type: SQS`: the queue's name.
    pub dead_letter_queue: Option<String>,
    /// `DeadLetterQueue` of `Type: SNS`: the topic's name.
    pub dead_letter_topic: Option<String>,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        AsyncConfig {
            policy: RetryPolicy::LAMBDA_ASYNC,
            on_success: None,
            on_failure: None,
            dead_letter_queue: None,
            dead_letter_topic: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub name: String,
    pub bus: String,
    pub pattern: Option<Pattern>,
    /// The pattern as JSON text and the schedule as written, for `DescribeRule`.
    pub pattern_text: Option<String>,
    pub schedule_expression: Option<String>,
    pub schedule: Option<Schedule>,
    pub enabled: bool,
    pub targets: Vec<TargetSpec>,
}

#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub id: String,
    pub dest: Dest,
    pub input: TargetInput,
    pub retry: RetryPolicy,
    pub dead_letter_queue: Option<String>,
    /// `SqsParameters.MessageGroupId`: required for, and only for, a FIFO queue target.
    pub message_group_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MappingSpec {
    pub function: String,
    pub queue: String,
    pub batch_size: u32,
    pub window_ms: u64,
    pub max_concurrency: Option<u32>,
    pub report_batch_item_failures: bool,
    pub filters: Vec<Pattern>,
    pub enabled: bool,
}

/// A DynamoDB stream's event source mapping (SAM `DynamoDB` events and
/// `AWS::Lambda::EventSourceMapping`s whose source is a table's stream).
#[derive(Debug, Clone)]
pub struct StreamMappingSpec {
    /// Stable across runs: where the mapping's checkpoint is kept.
    pub id: String,
    pub function: String,
    pub table: String,
    /// `TRIM_HORIZON` (true) or `LATEST`: where a new mapping starts reading.
    pub from_start: bool,
    pub batch_size: u32,
    pub window_ms: u64,
    /// `MaximumRetryAttempts`; `None` retries until the record expires (Lambda's -1).
    pub max_retries: Option<u32>,
    /// `MaximumRecordAgeInSeconds`; `None` is the stream's 24-hour retention (Lambda's -1).
    pub max_record_age_s: Option<u64>,
    pub bisect: bool,
    pub report_batch_item_failures: bool,
    pub on_failure: Option<Dest>,
    pub filters: Vec<Pattern>,
    pub enabled: bool,
    /// `ParallelizationFactor` (1-10): concurrent batches, each for the keys hashed to it.
    pub parallelization: u32,
    /// `TumblingWindowInSeconds` in milliseconds; 0 for none.
    pub tumbling_window_ms: u64,
}

#[derive(Debug, Clone, Default)]
pub struct EventsSpec {
    pub async_configs: BTreeMap<String, AsyncConfig>,
    /// Custom buses; `default` always exists.
    pub buses: BTreeSet<String>,
    pub rules: Vec<RuleSpec>,
    pub mappings: Vec<MappingSpec>,
    pub stream_mappings: Vec<StreamMappingSpec>,
    pub alarms: Vec<AlarmSpec>,
    pub warnings: Vec<String>,
}

/// An `AWS::CloudWatch::Alarm` on one metric.
#[derive(Debug, Clone)]
pub struct AlarmSpec {
    /// `AlarmName`, or the logical id.
    pub name: String,
    pub description: Option<String>,
    pub namespace: String,
    pub metric: String,
    pub dimensions: BTreeMap<String, String>,
    pub statistic: Statistic,
    pub period_s: u64,
    pub evaluation: Evaluation,
    /// What nimbus reads for the metric, or why it cannot: such an alarm stays
    /// `INSUFFICIENT_DATA` and says why.
    pub source: Result<Source, String>,
}

/// The names a template's ARNs may refer to.
pub struct Known<'a> {
    pub functions: &'a BTreeSet<String>,
    pub queues: &'a BTreeSet<String>,
    /// DynamoDB tables that have a stream.
    pub streams: &'a BTreeSet<String>,
}

struct Reader<'a> {
    known: Known<'a>,
    buses: BTreeSet<String>,
    /// The template's SNS topics (`TopicName` or the logical id).
    topics: BTreeSet<String>,
    /// The template's state machines (`Name`/`StateMachineName` or the logical id).
    machines: BTreeSet<String>,
    errors: Vec<String>,
    warnings: Vec<String>,
}

/// A place in the template, for messages: `Resources.R.Properties.Targets[0].Arn (line 12)`.
#[derive(Clone)]
struct At {
    path: String,
    line: usize,
}

impl At {
    fn child(&self, key: &str) -> At {
        At {
            path: format!("{}.{key}", self.path),
            line: self.line,
        }
    }
    fn index(&self, i: usize) -> At {
        At {
            path: format!("{}[{i}]", self.path),
            line: self.line,
        }
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (line {})", self.path, self.line)
    }
}

/// Reads the event engine's part of `stack`; every error at once.
pub fn read(stack: &Stack, known: Known<'_>) -> Result<EventsSpec, Vec<String>> {
    let mut r = Reader {
        known,
        buses: BTreeSet::new(),
        topics: stack
            .resources
            .iter()
            .filter(|(_, r)| r.resource_type == "AWS::SNS::Topic")
            .map(|(id, r)| r.properties["TopicName"].as_str().unwrap_or(id).to_owned())
            .collect(),
        machines: stack
            .resources
            .iter()
            .filter_map(|(id, r)| machine_name(id, r))
            .collect(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let mut spec = EventsSpec::default();
    for (id, res) in &stack.resources {
        if res.resource_type == "AWS::Events::EventBus" {
            let name = res.properties["Name"].as_str().unwrap_or(id).to_owned();
            r.buses.insert(name);
        }
    }
    for f in &stack.functions {
        let at = At {
            path: format!("Resources.{}.Properties", f.logical_id),
            line: f.line,
        };
        let cfg = r.function_async(&f.properties, &at);
        if cfg != AsyncConfig::default() {
            spec.async_configs.insert(f.name.clone(), cfg);
        }
        for (event_id, ev) in &f.events {
            let at = At {
                path: format!("Resources.{}.Properties.Events.{event_id}", f.logical_id),
                line: f.line,
            };
            let props = &ev["Properties"];
            let name = format!("{}{event_id}", f.logical_id);
            match ev["Type"].as_str().unwrap_or("") {
                // CloudWatchEvent is the older name of the same event type.
                "EventBridgeRule" | "CloudWatchEvent" => {
                    let dest = Dest::Function(f.event_target());
                    if let Some(rule) = r.sam_rule(dest, "LambdaTarget", &name, props, &at, false) {
                        spec.rules.push(rule);
                    }
                }
                "Schedule" => {
                    let dest = Dest::Function(f.event_target());
                    if let Some(rule) = r.sam_rule(dest, "LambdaTarget", &name, props, &at, true) {
                        spec.rules.push(rule);
                    }
                }
                "ScheduleV2" => {
                    let dest = Dest::Function(f.event_target());
                    let props = r.scheduler(props, &at);
                    if let Some(rule) = r.sam_rule(dest, "LambdaTarget", &name, &props, &at, true) {
                        spec.rules.push(rule);
                    }
                }
                "SQS" => {
                    if let Some(m) = r.mapping(&f.event_target(), props, &at.child("Properties"), "Queue") {
                        spec.mappings.push(m);
                    }
                }
                "DynamoDB" => {
                    let id = format!("{}/{event_id}", f.logical_id);
                    if let Some(m) =
                        r.stream_mapping(id, &f.event_target(), props, &at.child("Properties"), "Stream")
                    {
                        spec.stream_mappings.push(m);
                    }
                }
                // Served by the gateway, by nimbus-sns (the template's subscriptions) and by
                // nimbus-s3 (a bucket's notifications), which read them from the stack.
                "Api" | "HttpApi" | "SNS" | "S3" => {}
                other => r.warnings.push(format!(
                    "{at}: event type {other} is not served by nimbus; the function will not receive these events"
                )),
            }
        }
    }
    for (id, res) in &stack.resources {
        let at = At {
            path: format!("Resources.{id}.Properties"),
            line: res.line,
        };
        let p = &res.properties;
        if res.resource_type == "AWS::Serverless::StateMachine" {
            let machine = machine_name(id, res).unwrap_or_else(|| id.clone());
            for (event_id, ev) in p["Events"].as_object().into_iter().flatten() {
                let at = at.child("Events").child(event_id);
                let props = &ev["Properties"];
                let name = format!("{id}{event_id}");
                let dest = Dest::StateMachine(machine.clone());
                let v2;
                let (props, schedule) = match ev["Type"].as_str().unwrap_or("") {
                    "EventBridgeRule" | "CloudWatchEvent" => (props, false),
                    "Schedule" => (props, true),
                    "ScheduleV2" => {
                        v2 = r.scheduler(props, &at);
                        (&v2, true)
                    }
                    other => {
                        r.warnings.push(format!(
                            "{at}: state machine event type {other} is not served by nimbus yet; the state machine will not be started by these events"
                        ));
                        continue;
                    }
                };
                if let Some(rule) =
                    r.sam_rule(dest, "StepFunctionsTarget", &name, props, &at, schedule)
                {
                    spec.rules.push(rule);
                }
            }
        }
        match res.resource_type.as_str() {
            "AWS::Events::Rule" => {
                if let Some(rule) = r.rule_resource(id, p, &at) {
                    spec.rules.push(rule);
                }
            }
            // EventBridge Scheduler: one target, served as a schedule rule on the default bus.
            "AWS::Scheduler::Schedule" => {
                let target = &p["Target"];
                let props = r.scheduler(p, &at);
                if let Some(dest) = r.dest(&target["Arn"], &at.child("Target").child("Arn")) {
                    let name = p["Name"].as_str().unwrap_or(id).to_owned();
                    let mut props = props;
                    props["Input"] = target
                        .get("Input")
                        .cloned()
                        .unwrap_or(props["Input"].clone());
                    if let Some(rule) = r.sam_rule(dest, "Target", &name, &props, &at, true) {
                        spec.rules.push(rule);
                    }
                }
            }
            "AWS::Lambda::EventSourceMapping" => {
                let function = r.qualified_function_ref(p, &at.child("FunctionName"));
                let from_stream = p["EventSourceArn"]
                    .as_str()
                    .is_some_and(|a| a.contains(":dynamodb:"));
                if let Some(function) = function {
                    if from_stream {
                        if let Some(m) =
                            r.stream_mapping(id.clone(), &function, p, &at, "EventSourceArn")
                        {
                            spec.stream_mappings.push(m);
                        }
                    } else if let Some(m) = r.mapping(&function, p, &at, "EventSourceArn") {
                        spec.mappings.push(m);
                    }
                }
            }
            "AWS::CloudWatch::Alarm" => {
                if let Some(a) = r.alarm(id, p, &at) {
                    spec.alarms.push(a);
                }
            }
            "AWS::Lambda::EventInvokeConfig" => {
                let Some(function) = r.function_ref(p, &at.child("FunctionName")) else {
                    continue;
                };
                let mut cfg = spec.async_configs.remove(&function).unwrap_or_default();
                let own = r.invoke_config(p, &at, false);
                cfg.policy = own.policy;
                cfg.on_success = own.on_success;
                cfg.on_failure = own.on_failure;
                spec.async_configs.insert(function, cfg);
            }
            _ => {}
        }
    }
    spec.buses = std::mem::take(&mut r.buses);
    spec.warnings = std::mem::take(&mut r.warnings);
    if r.errors.is_empty() {
        Ok(spec)
    } else {
        Err(r.errors)
    }
}

impl Reader<'_> {
    fn error(&mut self, at: &At, message: impl std::fmt::Display) {
        self.errors.push(format!("{at}: {message}"));
    }

    /// A bus named by name or ARN; `default` when absent.
    fn bus(&mut self, v: &Value, at: &At) -> Option<String> {
        let raw = match v {
            Value::Null => return Some("default".into()),
            Value::String(s) => s.as_str(),
            other => {
                self.error(
                    at,
                    format!("expected an event bus name or ARN, got {other}"),
                );
                return None;
            }
        };
        let name = bus_name(raw);
        if name == "default" || self.buses.contains(name) {
            Some(name.to_owned())
        } else {
            self.error(
                at,
                format!("no event bus {name:?}: declare an AWS::Events::EventBus named so, or use the default bus"),
            );
            None
        }
    }

    /// The resource an ARN names, which must exist.
    fn dest(&mut self, v: &Value, at: &At) -> Option<Dest> {
        let Some(arn) = v.as_str() else {
            self.error(at, format!("expected an ARN, got {v}"));
            return None;
        };
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let (service, resource) = match parts.as_slice() {
            ["arn", _, service, _, _, resource] => (*service, *resource),
            _ => {
                self.error(at, format!("{arn:?} is not an ARN"));
                return None;
            }
        };
        let dest = match service {
            "lambda" => {
                let name = resource.strip_prefix("function:").unwrap_or(resource);
                // A version or alias is invoked as such (`name:qualifier`).
                match name.split_once(':') {
                    None | Some((_, "$LATEST")) => {
                        Dest::Function(name.split(':').next().unwrap_or(name).to_owned())
                    }
                    Some(_) => Dest::Function(name.to_owned()),
                }
            }
            "sqs" => Dest::Queue(resource.to_owned()),
            "events" => Dest::Bus(
                resource
                    .strip_prefix("event-bus/")
                    .unwrap_or(resource)
                    .to_owned(),
            ),
            "sns" => Dest::Topic(resource.to_owned()),
            "states" => Dest::StateMachine(
                resource
                    .strip_prefix("stateMachine:")
                    .unwrap_or(resource)
                    .to_owned(),
            ),
            // `log-group:NAME`, with or without the `:*` CloudFormation's `Arn` attribute adds.
            "logs" => match nimbus_core::arn::log_group_of_arn(arn) {
                Some(g) => Dest::LogGroup(g.to_owned()),
                None => {
                    self.error(at, format!("{arn} is not a log group ARN (arn:aws:logs:REGION:ACCOUNT:log-group:NAME)"));
                    return None;
                }
            },
            other => {
                self.error(
                    at,
                    format!("{arn}: nimbus delivers to Lambda functions, SQS queues, event buses, SNS topics, state machines and log groups, not {other}"),
                );
                return None;
            }
        };
        let missing = match &dest {
            Dest::Function(f) => !self
                .known
                .functions
                .contains(f.split(':').next().unwrap_or(f)),
            Dest::Queue(q) => !self.known.queues.contains(q),
            Dest::Bus(b) => b != "default" && !self.buses.contains(b),
            Dest::Topic(t) => !self.topics.contains(t),
            Dest::StateMachine(m) => !self.machines.contains(m),
            // A log group outside the template may exist already; nimbus makes it on first use.
            Dest::LogGroup(_) => false,
        };
        if missing {
            self.error(at, format!("{arn} names no resource of this template"));
            return None;
        }
        Some(dest)
    }

    /// The function `FunctionName` names (a name or an ARN), without its qualifier.
    fn function_ref(&mut self, p: &Value, at: &At) -> Option<String> {
        self.qualified_function_ref(p, at)
            .map(|f| f.split(':').next().unwrap_or(&f).to_owned())
    }

    /// The function `FunctionName` names, with its version or alias (`name:qualifier`) if it
    /// has one.
    fn qualified_function_ref(&mut self, p: &Value, at: &At) -> Option<String> {
        let raw = p["FunctionName"].as_str().unwrap_or("");
        let name = raw.rsplit_once(":function:").map_or(raw, |(_, n)| n);
        let (base, qualifier) = match name.split_once(':') {
            Some((base, q)) => (base, Some(q)),
            None => (name, None),
        };
        if self.known.functions.contains(base) {
            Some(match qualifier {
                None | Some("$LATEST") => base.to_owned(),
                Some(q) => format!("{base}:{q}"),
            })
        } else {
            self.error(at, format!("no function {raw:?} in this template"));
            None
        }
    }

    /// A target's `SqsParameters.MessageGroupId`, which EventBridge requires for a FIFO queue and
    /// refuses for anything else.
    fn message_group(&mut self, t: &Value, dest: &Dest, at: &At) -> Option<String> {
        let params_at = at.child("SqsParameters");
        let at = params_at.child("MessageGroupId");
        let group = &t["SqsParameters"]["MessageGroupId"];
        let fifo = matches!(dest, Dest::Queue(q) if q.ends_with(".fifo"));
        match (group, fifo) {
            (Value::String(g), true) if !g.is_empty() && g.len() <= 128 => Some(g.clone()),
            (Value::Null, true) => {
                self.error(&at, "required: the target is a FIFO queue");
                None
            }
            (Value::Null, false) if t["SqsParameters"].is_null() => None,
            (_, false) => {
                self.error(&params_at, "SqsParameters apply to FIFO queue targets only");
                None
            }
            (other, true) => {
                self.error(
                    &at,
                    format!("expected a message group id of 1 to 128 characters, got {other}"),
                );
                None
            }
        }
    }

    fn queue_dest(&mut self, v: &Value, at: &At) -> Option<String> {
        match self.dest(v, at)? {
            Dest::Queue(q) => Some(q),
            other => {
                self.error(at, format!("expected an SQS queue ARN, got {other:?}"));
                None
            }
        }
    }

    fn int(&mut self, p: &Value, key: &str, at: &At, min: u64, max: u64) -> Option<u64> {
        let v = &p[key];
        let n = match v {
            Value::Null => return None,
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(
                    &at.child(key),
                    format!("expected an integer from {min} to {max}, got {v}"),
                );
                None
            }
        }
    }

    fn alarm(&mut self, id: &str, p: &Value, at: &At) -> Option<AlarmSpec> {
        if !p["Metrics"].is_null() {
            self.warnings.push(format!(
                "{}: metric math alarms are not evaluated by nimbus; the alarm is ignored",
                at.child("Metrics")
            ));
            return None;
        }
        let text = |key: &str| p[key].as_str().map(str::to_owned);
        let before = self.errors.len();
        let required = |r: &mut Self, key: &str| {
            let v = text(key);
            if v.is_none() {
                r.error(&at.child(key), "required (a string)");
            }
            v
        };
        let namespace = required(self, "Namespace");
        let metric = required(self, "MetricName");
        let comparison = required(self, "ComparisonOperator").and_then(|c| {
            let parsed = Comparison::parse(&c);
            if parsed.is_none() {
                self.error(
                    &at.child("ComparisonOperator"),
                    format!("{c:?} is not GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold or LessThanOrEqualToThreshold (anomaly detection is not served)"),
                );
            }
            parsed
        });
        let statistic =
            match Statistic::parse(p["Statistic"].as_str(), p["ExtendedStatistic"].as_str()) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.error(&at.child("Statistic"), e);
                    None
                }
            };
        let threshold = match &p["Threshold"] {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        if threshold.is_none() {
            self.error(
                &at.child("Threshold"),
                format!("expected a number, got {}", p["Threshold"]),
            );
        }
        let periods = self.int(p, "EvaluationPeriods", at, 1, 100_000);
        if p["EvaluationPeriods"].is_null() {
            self.error(
                &at.child("EvaluationPeriods"),
                "required (an integer from 1)",
            );
        }
        let period_s = self.int(p, "Period", at, 1, 86_400 * 7).unwrap_or(60);
        if !(period_s == 10 || period_s == 20 || period_s == 30 || period_s.is_multiple_of(60)) {
            self.error(
                &at.child("Period"),
                format!("{period_s} is not 10, 20, 30 or a multiple of 60 seconds"),
            );
        }
        let to_alarm = self.int(p, "DatapointsToAlarm", at, 1, 100_000);
        if let (Some(m), Some(n)) = (to_alarm, periods) {
            if m > n {
                self.error(
                    &at.child("DatapointsToAlarm"),
                    format!("{m} is more than EvaluationPeriods ({n})"),
                );
            }
        }
        let missing = match text("TreatMissingData") {
            None => MissingData::Missing,
            Some(t) => MissingData::parse(&t).unwrap_or_else(|| {
                self.error(
                    &at.child("TreatMissingData"),
                    format!("{t:?} is not breaching, notBreaching, ignore or missing"),
                );
                MissingData::Missing
            }),
        };
        let mut dimensions = BTreeMap::new();
        match &p["Dimensions"] {
            Value::Null => {}
            Value::Array(a) => {
                for (i, d) in a.iter().enumerate() {
                    match (d["Name"].as_str(), d["Value"].as_str()) {
                        (Some(n), Some(v)) => {
                            dimensions.insert(n.to_owned(), v.to_owned());
                        }
                        _ => self.error(
                            &at.child("Dimensions").index(i),
                            "expected {Name: string, Value: string}",
                        ),
                    }
                }
            }
            other => self.error(
                &at.child("Dimensions"),
                format!("expected a list, got {other}"),
            ),
        }
        if self.errors.len() > before {
            return None;
        }
        let (namespace, metric, comparison, statistic, threshold, periods) = (
            namespace?,
            metric?,
            comparison?,
            statistic?,
            threshold?,
            periods?,
        );
        let source = nimbus_telemetry::cloudwatch::source(&namespace, &metric, &dimensions);
        if let Err(why) = &source {
            self.warnings
                .push(format!("{at}: {why}; the alarm stays INSUFFICIENT_DATA"));
        }
        Some(AlarmSpec {
            name: text("AlarmName").unwrap_or_else(|| id.to_owned()),
            description: text("AlarmDescription"),
            namespace,
            metric,
            dimensions,
            statistic,
            period_s,
            evaluation: Evaluation {
                threshold,
                comparison,
                evaluation_periods: periods as usize,
                datapoints_to_alarm: to_alarm.unwrap_or(periods) as usize,
                missing,
            },
            source,
        })
    }

    fn function_async(&mut self, p: &Value, at: &At) -> AsyncConfig {
        let mut cfg = match &p["EventInvokeConfig"] {
            Value::Null => AsyncConfig::default(),
            c => self.invoke_config(c, &at.child("EventInvokeConfig"), true),
        };
        let dlq = &p["DeadLetterQueue"];
        if !dlq.is_null() {
            let at = at.child("DeadLetterQueue");
            match dlq["Type"].as_str() {
                Some("SQS") => {
                    cfg.dead_letter_queue =
                        self.queue_dest(&dlq["TargetArn"], &at.child("TargetArn"))
                }
                Some("SNS") => {
                    let at = at.child("TargetArn");
                    match self.dest(&dlq["TargetArn"], &at) {
                        Some(Dest::Topic(t)) => cfg.dead_letter_topic = Some(t),
                        Some(other) => {
                            self.error(&at, format!("expected an SNS topic ARN, got {other:?}"))
                        }
                        None => {}
                    }
                }
                other => self.error(
                    &at.child("Type"),
                    format!("a dead-letter queue's Type is SQS or SNS, got {other:?}"),
                ),
            }
        }
        cfg
    }

    fn invoke_config(&mut self, c: &Value, at: &At, sam: bool) -> AsyncConfig {
        let mut cfg = AsyncConfig::default();
        if let Some(n) = self.int(c, "MaximumRetryAttempts", at, 0, 2) {
            cfg.policy.maximum_retry_attempts = n as u32;
        }
        if let Some(n) = self.int(c, "MaximumEventAgeInSeconds", at, 60, 21_600) {
            cfg.policy.maximum_event_age_s = n as u32;
        }
        let dc = &c["DestinationConfig"];
        for (key, slot) in [
            ("OnSuccess", &mut cfg.on_success),
            ("OnFailure", &mut cfg.on_failure),
        ] {
            let d = &dc[key];
            if d.is_null() {
                continue;
            }
            let at = at.child("DestinationConfig").child(key);
            if d["Destination"].is_null() {
                let hint = if sam {
                    " (SAM would create an SQS queue or SNS topic for you; nimbus needs the queue declared and its ARN here)"
                } else {
                    ""
                };
                self.error(&at.child("Destination"), format!("required{hint}"));
                continue;
            }
            *slot = self.dest(&d["Destination"], &at.child("Destination"));
        }
        cfg
    }

    fn input(&mut self, p: &Value, at: &At) -> TargetInput {
        let transformer = &p["InputTransformer"];
        let no_paths = serde_json::Map::new();
        let paths = transformer["InputPathsMap"]
            .as_object()
            .unwrap_or(&no_paths);
        let template = transformer["InputTemplate"].as_str();
        let t = if transformer.is_null() {
            None
        } else {
            Some((paths, template.unwrap_or("")))
        };
        // SAM accepts the event's constant input as YAML; AWS takes it as JSON text.
        let input = json_text(&p["Input"]);
        match TargetInput::parse(input.as_deref(), p["InputPath"].as_str(), t) {
            Ok(i) => i,
            Err(e) => {
                self.error(at, e);
                TargetInput::Event
            }
        }
    }

    fn retry(&mut self, p: &Value, at: &At) -> RetryPolicy {
        let mut policy = RetryPolicy::EVENTBRIDGE_TARGET;
        let rp = &p["RetryPolicy"];
        let at = at.child("RetryPolicy");
        if let Some(n) = self.int(rp, "MaximumRetryAttempts", &at, 0, 185) {
            policy.maximum_retry_attempts = n as u32;
        }
        if let Some(n) = self.int(rp, "MaximumEventAgeInSeconds", &at, 60, 86_400) {
            policy.maximum_event_age_s = n as u32;
        }
        policy
    }

    fn target_dlq(&mut self, p: &Value, at: &At) -> Option<String> {
        let d = &p["DeadLetterConfig"];
        if d.is_null() {
            return None;
        }
        let at = at.child("DeadLetterConfig");
        if d["Arn"].is_null() {
            let hint = if d["Type"] == "SQS" {
                ": SAM's DeadLetterConfig.Type creates a queue on AWS; nimbus needs the queue declared and its Arn given"
            } else {
                ""
            };
            self.error(&at.child("Arn"), format!("required{hint}"));
            return None;
        }
        self.queue_dest(&d["Arn"], &at.child("Arn"))
    }

    fn pattern(&mut self, v: &Value, at: &At) -> Option<Pattern> {
        let parsed = match v {
            Value::String(s) => Pattern::parse(s),
            other => Pattern::from_value(other),
        };
        match parsed {
            Ok(p) => Some(p),
            Err(e) => {
                self.error(at, format!("invalid event pattern: {e}"));
                None
            }
        }
    }

    fn schedule(&mut self, v: &Value, at: &At) -> Option<Schedule> {
        match Schedule::parse(v.as_str().unwrap_or("")) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(at, format!("invalid schedule expression {v}: {e}"));
                None
            }
        }
    }

    fn enabled(&mut self, p: &Value, at: &At) -> bool {
        match (&p["Enabled"], &p["State"]) {
            (Value::Bool(b), _) => *b,
            (_, Value::String(s)) => match s.as_str() {
                "ENABLED" => true,
                "DISABLED" => false,
                other => {
                    self.error(
                        &at.child("State"),
                        format!("expected ENABLED or DISABLED, got {other:?}"),
                    );
                    true
                }
            },
            _ => true,
        }
    }

    /// EventBridge Scheduler's properties (`ScheduleV2` events, `AWS::Scheduler::Schedule`) in
    /// the shape of a `Schedule` event: `ScheduleExpression` as `Schedule`, `State`, and the
    /// target's `Input` (Scheduler sends `{}` when there is none, not an event envelope).
    fn scheduler(&mut self, p: &Value, at: &At) -> Value {
        let mut v = p.clone();
        if let Some(obj) = v.as_object_mut() {
            if let Some(expr) = p.get("ScheduleExpression") {
                obj.insert("Schedule".into(), expr.clone());
            }
            if obj.get("Input").is_none() {
                obj.insert("Input".into(), Value::String("{}".into()));
            }
            obj.remove("Name");
        }
        match p["ScheduleExpressionTimezone"].as_str() {
            None | Some("UTC" | "Etc/UTC") => {}
            Some(tz) => self.warnings.push(format!(
                "{at}: ScheduleExpressionTimezone {tz} is not applied by nimbus; the schedule runs in UTC"
            )),
        }
        v
    }

    /// A SAM `EventBridgeRule` or `Schedule` event: a rule with the function as its target.
    fn sam_rule(
        &mut self,
        dest: Dest,
        target_suffix: &str,
        name: &str,
        ev: &Value,
        at: &At,
        schedule: bool,
    ) -> Option<RuleSpec> {
        let at = at.child("Properties");
        let (pattern, sched) = if schedule {
            (
                None,
                Some(self.schedule(&ev["Schedule"], &at.child("Schedule"))?),
            )
        } else {
            if ev["Pattern"].is_null() {
                self.error(&at.child("Pattern"), "required");
                return None;
            }
            (
                Some(self.pattern(&ev["Pattern"], &at.child("Pattern"))?),
                None,
            )
        };
        let bus = if schedule {
            Some("default".into())
        } else {
            self.bus(&ev["EventBusName"], &at.child("EventBusName"))
        }?;
        let target = TargetSpec {
            id: ev["Target"]["Id"]
                .as_str()
                .unwrap_or(&format!("{name}{target_suffix}"))
                .to_owned(),
            dest,
            input: self.input(ev, &at),
            retry: self.retry(ev, &at),
            dead_letter_queue: self.target_dlq(ev, &at),
            message_group_id: None,
        };
        Some(RuleSpec {
            pattern_text: json_text(&ev["Pattern"]),
            schedule_expression: ev["Schedule"].as_str().map(str::to_owned),
            name: ev["RuleName"]
                .as_str()
                .or(ev["Name"].as_str())
                .unwrap_or(name)
                .to_owned(),
            bus,
            pattern,
            schedule: sched,
            enabled: self.enabled(ev, &at),
            targets: vec![target],
        })
    }

    fn rule_resource(&mut self, id: &str, p: &Value, at: &At) -> Option<RuleSpec> {
        let pattern = match &p["EventPattern"] {
            Value::Null => None,
            v => Some(self.pattern(v, &at.child("EventPattern"))?),
        };
        let schedule = match &p["ScheduleExpression"] {
            Value::Null => None,
            v => Some(self.schedule(v, &at.child("ScheduleExpression"))?),
        };
        if pattern.is_none() && schedule.is_none() {
            self.error(at, "a rule needs EventPattern or ScheduleExpression");
            return None;
        }
        let bus = self.bus(&p["EventBusName"], &at.child("EventBusName"))?;
        let mut targets = Vec::new();
        let empty = Vec::new();
        let list = match &p["Targets"] {
            Value::Array(a) => a,
            Value::Null => &empty,
            other => {
                self.error(
                    &at.child("Targets"),
                    format!("expected a list of targets, got {other}"),
                );
                return None;
            }
        };
        if list.len() > 5 {
            self.error(
                &at.child("Targets"),
                format!("a rule has at most 5 targets, got {}", list.len()),
            );
        }
        let mut ids = BTreeSet::new();
        for (i, t) in list.iter().enumerate() {
            let at = at.child("Targets").index(i);
            let Some(tid) = t["Id"].as_str() else {
                self.error(&at.child("Id"), "required");
                continue;
            };
            if !ids.insert(tid.to_owned()) {
                self.error(
                    &at.child("Id"),
                    format!("target id {tid:?} is used twice in this rule"),
                );
            }
            let Some(dest) = self.dest(&t["Arn"], &at.child("Arn")) else {
                continue;
            };
            let message_group_id = self.message_group(t, &dest, &at);
            targets.push(TargetSpec {
                id: tid.to_owned(),
                dest,
                input: self.input(t, &at),
                retry: self.retry(t, &at),
                dead_letter_queue: self.target_dlq(t, &at),
                message_group_id,
            });
        }
        Some(RuleSpec {
            pattern_text: json_text(&p["EventPattern"]),
            schedule_expression: p["ScheduleExpression"].as_str().map(str::to_owned),
            name: p["Name"].as_str().unwrap_or(id).to_owned(),
            bus,
            pattern,
            schedule,
            enabled: self.enabled(p, at),
            targets,
        })
    }

    fn mapping(
        &mut self,
        function: &str,
        p: &Value,
        at: &At,
        source_key: &str,
    ) -> Option<MappingSpec> {
        let queue = self.queue_dest(&p[source_key], &at.child(source_key))?;
        let window_s = self
            .int(p, "MaximumBatchingWindowInSeconds", at, 0, 300)
            .unwrap_or(0);
        let batch_size = self.int(p, "BatchSize", at, 1, 10_000).unwrap_or(10) as u32;
        if batch_size > 10 && window_s == 0 {
            self.error(
                &at.child("BatchSize"),
                "a BatchSize over 10 needs MaximumBatchingWindowInSeconds of at least 1 (as Lambda requires)",
            );
        }
        let max_concurrency = match &p["ScalingConfig"] {
            Value::Null => None,
            s => self
                .int(s, "MaximumConcurrency", &at.child("ScalingConfig"), 2, 1000)
                .map(|n| n as u32),
        };
        let report = self.report_batch_item_failures(p, at);
        let filters = self.filter_criteria(p, at);
        Some(MappingSpec {
            function: function.to_owned(),
            queue,
            batch_size,
            window_ms: window_s * 1000,
            max_concurrency,
            report_batch_item_failures: report,
            filters,
            enabled: self.enabled(p, at),
        })
    }
}

impl Reader<'_> {
    /// `FunctionResponseTypes: [ReportBatchItemFailures]` of a mapping.
    fn report_batch_item_failures(&mut self, p: &Value, at: &At) -> bool {
        match &p["FunctionResponseTypes"] {
            Value::Null => false,
            Value::Array(a) if a.iter().all(|v| v == "ReportBatchItemFailures") => !a.is_empty(),
            other => {
                self.error(
                    &at.child("FunctionResponseTypes"),
                    format!("expected [ReportBatchItemFailures], got {other}"),
                );
                false
            }
        }
    }

    /// A mapping's `FilterCriteria.Filters[].Pattern`s.
    fn filter_criteria(&mut self, p: &Value, at: &At) -> Vec<Pattern> {
        let mut filters = Vec::new();
        if let Some(list) = p["FilterCriteria"]["Filters"].as_array() {
            for (i, f) in list.iter().enumerate() {
                let at = at
                    .child("FilterCriteria")
                    .child("Filters")
                    .index(i)
                    .child("Pattern");
                if let Some(pat) = self.pattern(&f["Pattern"], &at) {
                    filters.push(pat);
                }
            }
        }
        filters
    }

    /// An integer where Lambda's -1 means "no limit": `None` then.
    fn limit_or_unlimited(
        &mut self,
        p: &Value,
        key: &str,
        at: &At,
        min: i64,
        max: i64,
    ) -> Option<u64> {
        let v = &p[key];
        let n = match v {
            Value::Null => return None,
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        match n {
            Some(-1) => None,
            Some(n) if (min..=max).contains(&n) => Some(n as u64),
            _ => {
                self.error(
                    &at.child(key),
                    format!("expected -1 (no limit) or an integer from {min} to {max}, got {v}"),
                );
                None
            }
        }
    }

    fn stream_mapping(
        &mut self,
        id: String,
        function: &str,
        p: &Value,
        at: &At,
        source_key: &str,
    ) -> Option<StreamMappingSpec> {
        let arn = p[source_key].as_str().unwrap_or_default();
        let table = arn
            .split_once(":table/")
            .and_then(|(_, rest)| rest.split_once("/stream/"))
            .map(|(t, _)| t.to_owned());
        let Some(table) = table else {
            self.error(
                &at.child(source_key),
                format!(
                    "expected a DynamoDB stream ARN (!GetAtt Table.StreamArn), got {}",
                    p[source_key]
                ),
            );
            return None;
        };
        if !self.known.streams.contains(&table) {
            self.error(
                &at.child(source_key),
                format!("table {table:?} has no stream: give it a StreamSpecification with a StreamViewType"),
            );
            return None;
        }
        let from_start = match p["StartingPosition"].as_str() {
            Some("TRIM_HORIZON") => true,
            Some("LATEST") => false,
            other => {
                self.error(
                    &at.child("StartingPosition"),
                    format!("expected TRIM_HORIZON or LATEST, got {other:?} (AT_TIMESTAMP is for Kinesis)"),
                );
                return None;
            }
        };
        let window_s = self
            .int(p, "MaximumBatchingWindowInSeconds", at, 0, 300)
            .unwrap_or(0);
        let batch_size = self.int(p, "BatchSize", at, 1, 10_000).unwrap_or(100) as u32;
        let max_retries = self
            .limit_or_unlimited(p, "MaximumRetryAttempts", at, 0, 10_000)
            .map(|n| n as u32);
        let max_record_age_s =
            self.limit_or_unlimited(p, "MaximumRecordAgeInSeconds", at, 60, 604_800);
        let bisect =
            p["BisectBatchOnFunctionError"] == true || p["BisectBatchOnFunctionError"] == "true";
        let parallelization = self.int(p, "ParallelizationFactor", at, 1, 10).unwrap_or(1) as u32;
        let tumbling_window_s = self
            .int(p, "TumblingWindowInSeconds", at, 0, 900)
            .unwrap_or(0);
        let report = self.report_batch_item_failures(p, at);
        let dest = &p["DestinationConfig"]["OnFailure"]["Destination"];
        let on_failure = if dest.is_null() {
            None
        } else {
            self.dest(
                dest,
                &at.child("DestinationConfig")
                    .child("OnFailure")
                    .child("Destination"),
            )
        };
        let filters = self.filter_criteria(p, at);
        Some(StreamMappingSpec {
            id,
            function: function.to_owned(),
            table,
            from_start,
            batch_size,
            window_ms: window_s * 1000,
            max_retries,
            max_record_age_s,
            bisect,
            report_batch_item_failures: report,
            on_failure,
            filters,
            enabled: self.enabled(p, at),
            parallelization,
            tumbling_window_ms: tumbling_window_s * 1000,
        })
    }
}

/// A pattern given as an object or as JSON text, as JSON text.
fn json_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}
