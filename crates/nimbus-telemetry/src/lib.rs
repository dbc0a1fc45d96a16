//! What nimbus measures: one [`Telemetry`] handle, shared by the platform, the gateway, the
//! event engine and the AWS endpoint, holding Prometheus metric families named
//! `nimbus_<subsystem>_<name>_<unit>` (counters end in `_total`). Labels are bounded: function,
//! API, route, queue, bus, rule and target names, status classes and error types, never request
//! ids. Queue and async-queue gauges are filled from the store at scrape time
//! ([`Telemetry::set_queues`], [`Telemetry::set_async_queues`]).
//!
//! Functions' CloudWatch Embedded Metric Format lines ([`emf`]) become metrics too.
//!
//! Invariant: no I/O and no clock; callers pass durations and snapshots in.

pub mod cloudwatch;
pub mod emf;
pub mod filter;
pub mod recent;
pub mod samples;
pub mod traces;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Distinct EMF series kept; more are dropped (with one warning), so a function that puts a
/// request id in a dimension cannot grow memory without bound.
pub const MAX_EMF_SERIES: usize = 1000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionLabels {
    pub function: String,
}

/// CloudWatch's `ExecutedVersion` and `Resource` dimensions of a function's metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    pub function: String,
    /// The version that ran: `$LATEST` or a number.
    pub version: String,
    /// What the caller invoked: the function (`F`), or a version or alias (`F:live`).
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub function: String,
    /// `function` (the handler failed), `timeout`, or `runtime` (the process or its start failed).
    pub error_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ThrottleLabels {
    pub function: String,
    /// Lambda's `Reason`: `ReservedFunctionConcurrentInvocationLimitExceeded`, ...
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub api: String,
    /// The route key as declared (`GET /weather/{city}`), not the request path.
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteStatusLabels {
    pub api: String,
    pub route: String,
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    pub status_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    pub table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

/// An SNS delivery: the topic and the subscription's protocol (`sqs`, `lambda`, `http`,
/// `https`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicProtocolLabels {
    pub topic: String,
    pub protocol: String,
}

/// SNS's CloudWatch metrics, by topic: `NumberOfMessagesPublished`,
/// `NumberOfNotificationsDelivered`, `NumberOfNotificationsFailed` and
/// `NumberOfNotificationsFilteredOut`.
pub struct SnsMetrics {
    pub published: Family<TopicLabels, Counter>,
    pub delivered: Family<TopicProtocolLabels, Counter>,
    pub failed: Family<TopicProtocolLabels, Counter>,
    pub filtered_out: Family<TopicLabels, Counter>,
}

/// A DynamoDB call: the table (empty for calls on several or none), the operation, and `ok` or
/// DynamoDB's error code (a bounded set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableRequestLabels {
    pub table: String,
    pub operation: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableOperationLabels {
    pub table: String,
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BusLabels {
    pub bus: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub bus: String,
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub bus: String,
    pub rule: String,
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EmfLabels {
    pub function: String,
    pub namespace: String,
    pub metric: String,
    pub unit: String,
    /// The dimension set as `Name=value,Name=value`, in the order the line declared it.
    pub dimensions: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;
/// An integer gauge, e.g. one function's running invocations.
pub type IntGauge = Gauge;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Seconds: a millisecond to a quarter of an hour (Lambda's longest timeout).
fn seconds_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        300.0, 900.0,
    ])
}

pub struct LambdaMetrics {
    pub invocations: Family<FunctionLabels, Counter>,
    /// Invocations and failed ones by the version that ran and the resource invoked.
    pub version_invocations: Family<VersionLabels, Counter>,
    pub version_errors: Family<VersionLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub throttles: Family<ThrottleLabels, Counter>,
    pub duration: Histograms<FunctionLabels>,
    pub init_duration: Histograms<FunctionLabels>,
    pub cold_starts: Family<FunctionLabels, Counter>,
    /// Billed duration as AWS bills it (each invocation's INIT and run, rounded up to 1 ms).
    pub billed_ms: Family<FunctionLabels, Counter>,
    pub concurrent_executions: Family<FunctionLabels, Gauge>,
    pub async_events_queued: Family<FunctionLabels, Gauge>,
    pub async_event_age: Family<FunctionLabels, FloatGauge>,
    pub dead_letter_sends: Family<FunctionLabels, Counter>,
}

pub struct GatewayMetrics {
    pub requests: Family<RouteStatusLabels, Counter>,
    pub latency: Histograms<RouteLabels>,
    pub integration_latency: Histograms<RouteLabels>,
    pub cache_hits: Family<RouteLabels, Counter>,
    pub throttled: Family<RouteLabels, Counter>,
    pub forbidden: Family<RouteLabels, Counter>,
}

pub struct SqsMetrics {
    pub visible: Family<QueueLabels, Gauge>,
    pub in_flight: Family<QueueLabels, Gauge>,
    pub delayed: Family<QueueLabels, Gauge>,
    pub oldest_message_age: Family<QueueLabels, FloatGauge>,
    /// The store's group commit: commits, and the writes they carried.
    pub store_commits: Counter,
    pub store_writes: Counter,
    /// SQS API requests as AWS bills them: each 64 KB chunk of a request's payload is one.
    pub billed_requests: Counter,
}

pub struct DynamoDbMetrics {
    pub requests: Family<TableRequestLabels, Counter>,
    pub latency: Histograms<TableOperationLabels>,
    /// CloudWatch's `ConsumedReadCapacityUnits` and `ConsumedWriteCapacityUnits`: what each
    /// call consumed, computed as DynamoDB computes it (fractions for eventually consistent
    /// reads).
    pub read_units: Family<TableLabels, Counter<f64, AtomicU64>>,
    pub write_units: Family<TableLabels, Counter<f64, AtomicU64>>,
    pub items: Family<TableLabels, Gauge>,
    pub bytes: Family<TableLabels, Gauge>,
}

/// An S3 bucket, an operation and its outcome (`ok` or S3's error code).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BucketRequestLabels {
    pub bucket: String,
    pub operation: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BucketLabels {
    pub bucket: String,
}

/// A service and the error code a chaos fault answered with.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabels {
    pub service: String,
    pub code: String,
}

/// An AWS API call of a JSON- or query-protocol service (SQS, SNS, Parameter Store, Secrets
/// Manager, EventBridge, ...), for what AWS bills per request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiCallLabels {
    /// botocore's service name: `sqs`, `sns`, `ssm`, `secretsmanager`, `events`, ...
    pub service: String,
    pub operation: String,
}

pub struct S3Metrics {
    pub requests: Family<BucketRequestLabels, Counter>,
    pub bytes_in: Family<BucketLabels, Counter>,
    pub bytes_out: Family<BucketLabels, Counter>,
    /// Bytes each bucket holds (every version and uploaded part, as S3 bills storage).
    pub stored: Family<BucketLabels, Gauge>,
    /// Stored bytes integrated over this run's time: what S3 storage is billed on.
    pub stored_byte_seconds: Family<BucketLabels, Counter<f64, AtomicU64>>,
    /// Secrets Manager's secrets, and their count integrated over this run's time (billed per
    /// secret per month).
    pub secrets: Gauge,
    pub secret_seconds: Counter<f64, AtomicU64>,
    /// The buckets last sampled, so a deleted one's size series goes.
    sampled: Mutex<Vec<String>>,
}

/// A state machine.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MachineLabels {
    pub state_machine: String,
}

/// A state machine and an execution's type (`STANDARD`, `EXPRESS`) or end (`SUCCEEDED`,
/// `FAILED`, `TIMED_OUT`, `ABORTED`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MachineStatusLabels {
    pub state_machine: String,
    pub status: String,
}

pub struct StatesMetrics {
    pub started: Family<MachineStatusLabels, Counter>,
    pub ended: Family<MachineStatusLabels, Counter>,
    pub duration: Histograms<MachineLabels>,
    pub transitions: Family<MachineLabels, Counter>,
    /// Express executions' duration as billed: each rounded up to 100 ms.
    pub express_billed_ms: Family<MachineLabels, Counter>,
}

pub struct EventsMetrics {
    pub put_events_entries: Family<BusLabels, Counter>,
    pub matched: Family<RuleLabels, Counter>,
    pub target_invocations: Family<TargetLabels, Counter>,
    pub target_failures: Family<TargetLabels, Counter>,
}

pub struct EmfMetrics {
    pub observations: Family<EmfLabels, Counter>,
    pub sum: Family<EmfLabels, FloatGauge>,
    pub last: Family<EmfLabels, FloatGauge>,
    pub invalid_lines: Family<FunctionLabels, Counter>,
    series: Mutex<HashSet<EmfLabels>>,
    /// The cap on series was reached and said so.
    capped: AtomicBool,
}

/// Every metric nimbus keeps.
pub struct Telemetry {
    registry: Registry,
    /// Serialises scrapes: the scrape-time gauges are cleared and refilled.
    scrape: Mutex<()>,
    pub lambda: LambdaMetrics,
    pub gateway: GatewayMetrics,
    pub sqs: SqsMetrics,
    pub dynamodb: DynamoDbMetrics,
    pub s3: S3Metrics,
    pub sns: SnsMetrics,
    /// Requests a chaos fault answered instead of the service.
    pub chaos_faults: Family<FaultLabels, Counter>,
    /// AWS API calls answered by the JSON and query protocol services, by operation.
    pub api_calls: Family<ApiCallLabels, Counter>,
    /// When this nimbus started (Unix seconds), for rates over the whole run (`nimbus cost`).
    pub start_time: Gauge,
    pub states: StatesMetrics,
    pub events: EventsMetrics,
    pub emf: EmfMetrics,
    /// Spans of recent traces (the dashboard's waterfall; OTLP export hooks in here).
    pub traces: traces::Traces,
    /// The newest log lines (the dashboard's live tail).
    pub logs: recent::RecentLogs,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Telemetry")
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

/// A queue's counts at scrape time.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSnapshot {
    pub queue: String,
    pub visible: i64,
    pub in_flight: i64,
    pub delayed: i64,
    pub oldest_age_s: f64,
}

/// A function's durable async queue at scrape time.
#[derive(Debug, Clone, PartialEq)]
pub struct AsyncSnapshot {
    pub function: String,
    pub queued: i64,
    pub oldest_age_s: f64,
}

impl Telemetry {
    pub fn new() -> Telemetry {
        Telemetry::with_seed(0)
    }

    /// `seed` varies span ids between runs; callers pass randomness in.
    pub fn with_seed(seed: u64) -> Telemetry {
        let mut r = Registry::with_prefix("nimbus");
        let lambda = LambdaMetrics {
            invocations: Family::default(),
            version_invocations: Family::default(),
            version_errors: Family::default(),
            errors: Family::default(),
            throttles: Family::default(),
            duration: Family::new_with_constructor(seconds_histogram),
            init_duration: Family::new_with_constructor(seconds_histogram),
            cold_starts: Family::default(),
            billed_ms: Family::default(),
            concurrent_executions: Family::default(),
            async_events_queued: Family::default(),
            async_event_age: Family::default(),
            dead_letter_sends: Family::default(),
        };
        let l = &lambda;
        r.register(
            "lambda_invocations",
            "Function invocations that ran (not throttled)",
            l.invocations.clone(),
        );
        r.register(
            "lambda_errors",
            "Invocations that failed, by error type (function, timeout, runtime)",
            l.errors.clone(),
        );
        r.register(
            "lambda_version_invocations",
            "Invocations that ran, by executed version and invoked resource (function, version or alias)",
            l.version_invocations.clone(),
        );
        r.register(
            "lambda_version_errors",
            "Invocations that failed, by executed version and invoked resource",
            l.version_errors.clone(),
        );
        r.register(
            "lambda_throttles",
            "Invocations refused for lack of concurrency, by reason",
            l.throttles.clone(),
        );
        r.register_with_unit(
            "lambda_duration",
            "Invocation duration, as on the REPORT line",
            Unit::Seconds,
            l.duration.clone(),
        );
        r.register_with_unit(
            "lambda_init_duration",
            "Execution environment initialisation time of cold starts",
            Unit::Seconds,
            l.init_duration.clone(),
        );
        r.register(
            "lambda_cold_starts",
            "Invocations that started a new execution environment",
            l.cold_starts.clone(),
        );
        r.register(
            "lambda_billed_milliseconds",
            "Billed duration in ms, as AWS bills it: INIT plus the run, each invocation rounded up to 1 ms",
            l.billed_ms.clone(),
        );
        r.register(
            "lambda_concurrent_executions",
            "Invocations running now",
            l.concurrent_executions.clone(),
        );
        r.register(
            "lambda_async_events_queued",
            "Asynchronous events waiting in the function's durable queue (incl. retries)",
            l.async_events_queued.clone(),
        );
        r.register_with_unit(
            "lambda_async_event_age",
            "Age of the oldest event in the function's asynchronous queue",
            Unit::Seconds,
            l.async_event_age.clone(),
        );
        r.register(
            "lambda_dead_letter_sends",
            "Asynchronous events given up and sent to a dead-letter queue or OnFailure destination",
            l.dead_letter_sends.clone(),
        );

        let gateway = GatewayMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(seconds_histogram),
            integration_latency: Family::new_with_constructor(seconds_histogram),
            cache_hits: Family::default(),
            throttled: Family::default(),
            forbidden: Family::default(),
        };
        let g = &gateway;
        r.register(
            "apigateway_requests",
            "API requests by route and status class",
            g.requests.clone(),
        );
        r.register_with_unit(
            "apigateway_latency",
            "Time from request to response, as API Gateway's Latency",
            Unit::Seconds,
            g.latency.clone(),
        );
        r.register_with_unit(
            "apigateway_integration_latency",
            "Time spent in the Lambda integration, as API Gateway's IntegrationLatency",
            Unit::Seconds,
            g.integration_latency.clone(),
        );
        r.register(
            "apigateway_cache_hits",
            "Responses served from the stage cache",
            g.cache_hits.clone(),
        );
        r.register(
            "apigateway_throttled",
            "Requests the gateway refused with 429 (throttle or quota), not the function's own",
            g.throttled.clone(),
        );
        r.register(
            "apigateway_forbidden",
            "Requests the gateway refused for the API key or the authorizer, not the function's own 403s",
            g.forbidden.clone(),
        );

        let sqs = SqsMetrics {
            visible: Family::default(),
            in_flight: Family::default(),
            delayed: Family::default(),
            oldest_message_age: Family::default(),
            store_commits: Counter::default(),
            store_writes: Counter::default(),
            billed_requests: Counter::default(),
        };
        r.register(
            "sqs_billed_requests",
            "SQS API requests as AWS bills them: each 64 KB chunk of a request's message payload (bodies and attributes) is one",
            sqs.billed_requests.clone(),
        );
        r.register(
            "sqs_messages_visible",
            "Messages available for retrieval",
            sqs.visible.clone(),
        );
        r.register(
            "sqs_messages_in_flight",
            "Messages received and not yet deleted or visible again",
            sqs.in_flight.clone(),
        );
        r.register(
            "sqs_messages_delayed",
            "Messages not yet available because of a delay",
            sqs.delayed.clone(),
        );
        r.register_with_unit(
            "sqs_oldest_message_age",
            "Age of the oldest message in the queue",
            Unit::Seconds,
            sqs.oldest_message_age.clone(),
        );
        r.register(
            "store_commits",
            "Commits of nimbus's database by its group commit",
            sqs.store_commits.clone(),
        );
        r.register(
            "store_writes",
            "Writes (sends, receives, deletes, jobs) those commits carried",
            sqs.store_writes.clone(),
        );

        let events = EventsMetrics {
            put_events_entries: Family::default(),
            matched: Family::default(),
            target_invocations: Family::default(),
            target_failures: Family::default(),
        };
        r.register(
            "events_put_entries",
            "Events accepted by PutEvents, per bus (scheduled events are not put: see target invocations)",
            events.put_events_entries.clone(),
        );
        r.register(
            "events_rule_matches",
            "Events a rule matched",
            events.matched.clone(),
        );
        r.register(
            "events_target_invocations",
            "Deliveries to a rule's target, first attempts and retries",
            events.target_invocations.clone(),
        );
        r.register(
            "events_target_failures",
            "Deliveries to a rule's target that failed (retried or dead-lettered)",
            events.target_failures.clone(),
        );

        let emf = EmfMetrics {
            observations: Family::default(),
            sum: Family::default(),
            last: Family::default(),
            invalid_lines: Family::default(),
            series: Mutex::new(HashSet::new()),
            capped: AtomicBool::new(false),
        };
        r.register(
            "emf_observations",
            "Values functions reported in Embedded Metric Format lines",
            emf.observations.clone(),
        );
        r.register(
            "emf_sum",
            "Sum of the values functions reported in Embedded Metric Format lines",
            emf.sum.clone(),
        );
        r.register(
            "emf_last",
            "Last value a function reported for an Embedded Metric Format metric",
            emf.last.clone(),
        );
        r.register(
            "emf_invalid_lines",
            "Log lines that declared _aws but broke the Embedded Metric Format (no metric kept)",
            emf.invalid_lines.clone(),
        );

        let dynamodb = DynamoDbMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(seconds_histogram),
            read_units: Family::default(),
            write_units: Family::default(),
            items: Family::default(),
            bytes: Family::default(),
        };
        r.register(
            "dynamodb_consumed_read_capacity_units",
            "Read capacity units DynamoDB calls consumed (CloudWatch's ConsumedReadCapacityUnits), by table",
            dynamodb.read_units.clone(),
        );
        r.register(
            "dynamodb_consumed_write_capacity_units",
            "Write capacity units DynamoDB calls consumed (CloudWatch's ConsumedWriteCapacityUnits), by table",
            dynamodb.write_units.clone(),
        );
        r.register(
            "dynamodb_requests",
            "DynamoDB API calls, by table, operation and outcome (ok or DynamoDB's error code)",
            dynamodb.requests.clone(),
        );
        r.register_with_unit(
            "dynamodb_latency",
            "DynamoDB API call latency inside nimbus, by table and operation",
            Unit::Seconds,
            dynamodb.latency.clone(),
        );
        r.register(
            "dynamodb_items",
            "Items in each DynamoDB table, read at scrape time",
            dynamodb.items.clone(),
        );
        r.register_with_unit(
            "dynamodb_table_size",
            "Size of each DynamoDB table's items as DynamoDB counts it, read at scrape time",
            Unit::Bytes,
            dynamodb.bytes.clone(),
        );
        let s3 = S3Metrics {
            requests: Family::default(),
            bytes_in: Family::default(),
            bytes_out: Family::default(),
            stored: Family::default(),
            stored_byte_seconds: Family::default(),
            secrets: Gauge::default(),
            secret_seconds: Counter::default(),
            sampled: Mutex::default(),
        };
        r.register_with_unit(
            "s3_stored",
            "Bytes each S3 bucket holds: every object version and uploaded part",
            Unit::Bytes,
            s3.stored.clone(),
        );
        r.register(
            "s3_stored_byte_seconds",
            "Bytes each S3 bucket held, integrated over this run's seconds (sampled each second)",
            s3.stored_byte_seconds.clone(),
        );
        r.register(
            "secretsmanager_secrets",
            "Secrets Manager secrets stored",
            s3.secrets.clone(),
        );
        r.register(
            "secretsmanager_secret_seconds",
            "Secrets stored, integrated over this run's seconds (sampled each second)",
            s3.secret_seconds.clone(),
        );
        r.register(
            "s3_requests",
            "S3 API calls, by bucket, operation and outcome (ok or S3's error code)",
            s3.requests.clone(),
        );
        r.register_with_unit(
            "s3_received",
            "Object bytes S3 stored from requests (uploads and parts), by bucket",
            Unit::Bytes,
            s3.bytes_in.clone(),
        );
        r.register_with_unit(
            "s3_sent",
            "Object bytes S3 sent in answers (GetObject), by bucket",
            Unit::Bytes,
            s3.bytes_out.clone(),
        );
        let chaos_faults = Family::<FaultLabels, Counter>::default();
        r.register(
            "chaos_faults_injected",
            "AWS API requests answered by a chaos fault (POST /_nimbus/chaos/faults), by service and error code",
            chaos_faults.clone(),
        );
        let api_calls = Family::<ApiCallLabels, Counter>::default();
        r.register(
            "aws_api_calls",
            "AWS API calls of the JSON and query protocol services (SQS, SNS, Parameter Store, Secrets Manager, EventBridge, ...), by service and operation",
            api_calls.clone(),
        );
        let start_time = Gauge::default();
        r.register(
            "start_time_seconds",
            "When this nimbus started, in Unix seconds",
            start_time.clone(),
        );
        let states = StatesMetrics {
            started: Family::default(),
            ended: Family::default(),
            duration: Family::new_with_constructor(seconds_histogram),
            transitions: Family::default(),
            express_billed_ms: Family::default(),
        };
        r.register(
            "states_express_billed_milliseconds",
            "Express executions' duration as Step Functions bills it (each rounded up to 100 ms), by state machine",
            states.express_billed_ms.clone(),
        );
        r.register(
            "states_executions_started",
            "Step Functions executions started, by state machine and type (STANDARD, EXPRESS)",
            states.started.clone(),
        );
        r.register(
            "states_executions_ended",
            "Step Functions executions ended, by state machine and status (SUCCEEDED, FAILED, TIMED_OUT, ABORTED)",
            states.ended.clone(),
        );
        r.register_with_unit(
            "states_execution_duration",
            "Step Functions execution durations, by state machine",
            Unit::Seconds,
            states.duration.clone(),
        );
        r.register(
            "states_transitions",
            "Step Functions state transitions (states entered), by state machine",
            states.transitions.clone(),
        );
        let sns = SnsMetrics {
            published: Family::default(),
            delivered: Family::default(),
            failed: Family::default(),
            filtered_out: Family::default(),
        };
        r.register(
            "sns_messages_published",
            "Messages published to each SNS topic (CloudWatch's NumberOfMessagesPublished)",
            sns.published.clone(),
        );
        r.register(
            "sns_notifications_delivered",
            "SNS deliveries that reached their subscription (a queue, a function's event queue, an HTTP endpoint's 2xx-4xx answer), by topic and protocol",
            sns.delivered.clone(),
        );
        r.register(
            "sns_notifications_failed",
            "SNS deliveries given up on (a missing queue or function, an HTTP delivery policy exhausted), by topic and protocol",
            sns.failed.clone(),
        );
        r.register(
            "sns_notifications_filtered_out",
            "Subscriptions whose filter policy did not match a published message, by topic",
            sns.filtered_out.clone(),
        );
        Telemetry {
            registry: r,
            scrape: Mutex::new(()),
            lambda,
            gateway,
            sqs,
            dynamodb,
            s3,
            sns,
            chaos_faults,
            api_calls,
            start_time,
            states,
            events,
            emf,
            traces: traces::Traces::new(seed),
            logs: recent::RecentLogs::default(),
        }
    }

    /// One scrape: `refresh` sets the scrape-time gauges, then everything is encoded, with no
    /// other scrape in between.
    pub fn scrape(&self, refresh: impl FnOnce()) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        refresh();
        self.encode()
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Replaces the queue gauges with the store's counts (queues deleted since disappear).
    pub fn set_queues(&self, queues: &[QueueSnapshot]) {
        let s = &self.sqs;
        s.visible.clear();
        s.in_flight.clear();
        s.delayed.clear();
        s.oldest_message_age.clear();
        for q in queues {
            let l = QueueLabels {
                queue: q.queue.clone(),
            };
            s.visible.get_or_create(&l).set(q.visible);
            s.in_flight.get_or_create(&l).set(q.in_flight);
            s.delayed.get_or_create(&l).set(q.delayed);
            s.oldest_message_age.get_or_create(&l).set(q.oldest_age_s);
        }
    }

    /// Brings the store's commit counters up to `commits` and `writes` (totals since start).
    pub fn set_store_commits(&self, commits: u64, writes: u64) {
        let s = &self.sqs;
        s.store_commits
            .inc_by(commits.saturating_sub(s.store_commits.get()));
        s.store_writes
            .inc_by(writes.saturating_sub(s.store_writes.get()));
    }

    /// Replaces the table gauges with `(table, items, bytes)` now (deleted tables disappear).
    pub fn set_tables(&self, tables: &[(String, u64, u64)]) {
        let d = &self.dynamodb;
        d.items.clear();
        d.bytes.clear();
        for (table, items, bytes) in tables {
            let l = TableLabels {
                table: table.clone(),
            };
            d.items.get_or_create(&l).set(*items as i64);
            d.bytes.get_or_create(&l).set(*bytes as i64);
        }
    }

    /// Records one DynamoDB call.
    pub fn record_dynamodb(&self, table: &str, operation: &str, outcome: &str, seconds: f64) {
        let d = &self.dynamodb;
        d.requests
            .get_or_create(&TableRequestLabels {
                table: table.to_owned(),
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        d.latency
            .get_or_create(&TableOperationLabels {
                table: table.to_owned(),
                operation: operation.to_owned(),
            })
            .observe(seconds);
    }

    /// Adds the capacity a DynamoDB call consumed on `table`.
    pub fn record_dynamodb_capacity(&self, table: &str, units: f64, write: bool) {
        let d = &self.dynamodb;
        let family = match write {
            true => &d.write_units,
            false => &d.read_units,
        };
        family
            .get_or_create(&TableLabels {
                table: table.to_owned(),
            })
            .inc_by(units);
    }

    /// Counts one SNS delivery's outcome.
    pub fn record_sns_delivery(&self, topic: &str, protocol: &str, delivered: bool) {
        let family = match delivered {
            true => &self.sns.delivered,
            false => &self.sns.failed,
        };
        family
            .get_or_create(&TopicProtocolLabels {
                topic: topic.to_owned(),
                protocol: protocol.to_owned(),
            })
            .inc();
    }

    /// Counts one message published to `topic`, and the subscriptions it was filtered out of.
    pub fn record_sns_publish(&self, topic: &str, filtered_out: u64) {
        let l = TopicLabels {
            topic: topic.to_owned(),
        };
        self.sns.published.get_or_create(&l).inc();
        if filtered_out > 0 {
            self.sns.filtered_out.get_or_create(&l).inc_by(filtered_out);
        }
    }

    /// Records one S3 call.
    pub fn record_s3(&self, bucket: &str, operation: &str, outcome: &str) {
        self.s3
            .requests
            .get_or_create(&BucketRequestLabels {
                bucket: bucket.to_owned(),
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Records object bytes S3 stored (`received`) or sent.
    pub fn record_s3_bytes(&self, bucket: &str, received: u64, sent: u64) {
        let l = BucketLabels {
            bucket: bucket.to_owned(),
        };
        if received > 0 {
            self.s3.bytes_in.get_or_create(&l).inc_by(received);
        }
        if sent > 0 {
            self.s3.bytes_out.get_or_create(&l).inc_by(sent);
        }
    }

    /// What S3 buckets and Secrets Manager hold now, and for how long since the last sample:
    /// the storage AWS bills by the month.
    pub fn record_stored(&self, buckets: &[(String, u64)], secrets: u64, seconds: f64) {
        for (bucket, bytes) in buckets {
            let l = BucketLabels {
                bucket: bucket.clone(),
            };
            self.s3.stored.get_or_create(&l).set(*bytes as i64);
            self.s3
                .stored_byte_seconds
                .get_or_create(&l)
                .inc_by(*bytes as f64 * seconds);
        }
        self.s3.secrets.set(secrets as i64);
        self.s3.secret_seconds.inc_by(secrets as f64 * seconds);
        // A deleted bucket holds nothing now; what it held still counts (and is billed).
        let mut sampled = self.s3.sampled.lock().unwrap();
        for gone in sampled
            .iter()
            .filter(|b| !buckets.iter().any(|(n, _)| n == *b))
        {
            self.s3.stored.remove(&BucketLabels {
                bucket: gone.clone(),
            });
        }
        *sampled = buckets.iter().map(|(b, _)| b.clone()).collect();
    }

    /// A Step Functions execution started (`kind`: `STANDARD` or `EXPRESS`).
    pub fn record_execution_started(&self, machine: &str, kind: &str) {
        self.states
            .started
            .get_or_create(&MachineStatusLabels {
                state_machine: machine.to_owned(),
                status: kind.to_owned(),
            })
            .inc();
    }

    /// A Step Functions execution ended with `status` after `seconds`.
    pub fn record_execution_ended(&self, machine: &str, status: &str, seconds: f64) {
        self.states
            .ended
            .get_or_create(&MachineStatusLabels {
                state_machine: machine.to_owned(),
                status: status.to_owned(),
            })
            .inc();
        self.states
            .duration
            .get_or_create(&MachineLabels {
                state_machine: machine.to_owned(),
            })
            .observe(seconds);
    }

    /// An Express execution of `machine` ended; `ms` is its billed duration.
    pub fn record_express_billed(&self, machine: &str, ms: u64) {
        self.states
            .express_billed_ms
            .get_or_create(&MachineLabels {
                state_machine: machine.to_owned(),
            })
            .inc_by(ms);
    }

    /// A state of a `machine`'s execution was entered.
    pub fn record_state_transition(&self, machine: &str) {
        self.states
            .transitions
            .get_or_create(&MachineLabels {
                state_machine: machine.to_owned(),
            })
            .inc();
    }

    /// Replaces the asynchronous queue gauges with the store's counts.
    pub fn set_async_queues(&self, queues: &[AsyncSnapshot]) {
        let l = &self.lambda;
        l.async_events_queued.clear();
        l.async_event_age.clear();
        for q in queues {
            let labels = function(&q.function);
            l.async_events_queued.get_or_create(&labels).set(q.queued);
            l.async_event_age.get_or_create(&labels).set(q.oldest_age_s);
        }
    }

    /// Records one log line of `function` if it is an Embedded Metric Format line; a broken one
    /// is counted and logged, never an error.
    pub fn record_log_line(&self, function: &str, line: &str) {
        if !emf::looks_like_emf(line) {
            return;
        }
        match emf::parse(line) {
            Ok(Some(metrics)) => {
                for m in metrics {
                    self.record_emf(function, m);
                }
            }
            Ok(None) => {}
            Err(e) => {
                self.emf
                    .invalid_lines
                    .get_or_create(&self::function(function))
                    .inc();
                tracing::warn!(%function, error = %e, "log line ignored as a metric");
            }
        }
    }

    fn record_emf(&self, function: &str, m: emf::EmfMetric) {
        let labels = EmfLabels {
            function: function.to_owned(),
            namespace: m.namespace,
            metric: m.name,
            unit: m.unit,
            dimensions: m
                .dimensions
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        };
        {
            let mut series = self.emf.series.lock().unwrap_or_else(|e| e.into_inner());
            if !series.contains(&labels) {
                if series.len() >= MAX_EMF_SERIES {
                    if !self.emf.capped.swap(true, Ordering::Relaxed) {
                        tracing::warn!(%function, "more than {MAX_EMF_SERIES} EMF series; new ones are dropped (is a request id a dimension?)");
                    }
                    return;
                }
                series.insert(labels.clone());
            }
        }
        let e = &self.emf;
        e.observations
            .get_or_create(&labels)
            .inc_by(m.values.len() as u64);
        e.sum.get_or_create(&labels).inc_by(m.values.iter().sum());
        if let Some(v) = m.values.last() {
            e.last.get_or_create(&labels).set(*v);
        }
    }
}

/// The labels of one function.
pub fn function(name: &str) -> FunctionLabels {
    FunctionLabels {
        function: name.to_owned(),
    }
}

/// `2xx` ... `5xx` for a status code.
pub fn status_class(status: u16) -> String {
    format!("{}xx", status / 100)
}
