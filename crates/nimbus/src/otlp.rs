//! OTLP export of the spans nimbus records, for Jaeger, Tempo, Honeycomb or an OpenTelemetry
//! Collector. Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! is set, as with the OpenTelemetry SDKs; the other standard variables (`..._HEADERS`,
//! `..._TIMEOUT`) apply too. Transport: OTLP/HTTP with protobuf (`http/protobuf`), through
//! `opentelemetry-otlp`.
//!
//! Spans leave the request path through a bounded queue: when the collector is slow or down,
//! spans past [`QUEUE_SPANS`] are dropped (and counted) rather than held. A task sends them in
//! batches, one OTLP resource per node of the stack (`service.name` is the dashboard's node id:
//! `api:<name>`, `function:<name>`, `bus:<name>`, ...), so a tracing UI shows the stack's
//! services as such. X-Ray trace ids become W3C ids as `opentelemetry-aws` maps them (the root
//! without `1-` and its dashes), so a trace found in nimbus is the same trace in the collector.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nimbus_telemetry::traces::{Span, SpanKind, Traces};
use opentelemetry::trace::{SpanContext, SpanId, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use opentelemetry_sdk::Resource;
use tokio::sync::{mpsc, oneshot};

/// Spans waiting to be sent; more are dropped.
pub const QUEUE_SPANS: usize = 4096;
/// Spans per export request, at most.
const BATCH_SPANS: usize = 512;
/// How long a span may wait for its batch to fill.
const BATCH_DELAY: Duration = Duration::from_millis(1000);
/// A failing collector is reported at most this often.
const WARN_EVERY: Duration = Duration::from_secs(30);

const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

enum Msg {
    Span(Box<Span>),
    Flush(oneshot::Sender<()>),
}

/// The running exporter: flush it before nimbus exits.
pub struct Otlp {
    tx: mpsc::Sender<Msg>,
    /// Spans dropped from a full queue or in a failed export.
    lost: Arc<AtomicU64>,
}

/// Where spans go when export is configured: the variable that set it and its value.
pub fn configured() -> Option<(&'static str, String)> {
    ENDPOINT_VARS.iter().find_map(|var| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (*var, v))
    })
}

/// Starts export when it is configured; `Ok(None)` when it is not. An endpoint or protocol
/// nimbus cannot use is an error naming the variable.
pub fn start(traces: &Traces) -> Result<Option<Otlp>, String> {
    if configured().is_none() {
        return Ok(None);
    }
    // The traces variable wins over the general one, as in the SDKs.
    let protocol = [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .into_iter()
    .find_map(|var| {
        std::env::var(var)
            .ok()
            .filter(|p| !p.trim().is_empty())
            .map(|p| (var, p))
    });
    if let Some((var, p)) = protocol {
        if p.trim() != "http/protobuf" {
            return Err(format!(
                "{var}={p}: nimbus exports spans over http/protobuf only"
            ));
        }
    }
    // Build one exporter now, so a bad endpoint stops start-up instead of every export.
    new_exporter("nimbus").map_err(|e| format!("cannot export spans over OTLP: {e}"))?;
    let (tx, rx) = mpsc::channel(QUEUE_SPANS);
    let lost = Arc::new(AtomicU64::new(0));
    let hook_tx = tx.clone();
    let hook_lost = lost.clone();
    traces.set_exporter(move |span| {
        if hook_tx.try_send(Msg::Span(Box::new(span.clone()))).is_err() {
            hook_lost.fetch_add(1, Ordering::Relaxed);
        }
    });
    tokio::spawn(run(rx, lost.clone()));
    Ok(Some(Otlp { tx, lost }))
}

impl Otlp {
    /// Sends what is queued, waiting at most `within`.
    pub async fn flush(&self, within: Duration) {
        let (done, wait) = oneshot::channel();
        let sent = tokio::time::timeout(within, async {
            if self.tx.send(Msg::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        })
        .await;
        if sent.is_err() {
            eprintln!("nimbus: OTLP export did not finish within {within:?}; spans not sent");
        }
        let lost = self.lost.load(Ordering::Relaxed);
        if lost > 0 {
            eprintln!(
                "nimbus: OTLP export lost {lost} spans (the queue was full or the collector failed)"
            );
        }
    }
}

fn new_exporter(service: &str) -> Result<opentelemetry_otlp::SpanExporter, String> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .map_err(|e| e.to_string())?;
    exporter.set_resource(&resource(service));
    Ok(exporter)
}

fn resource(service: &str) -> Resource {
    Resource::builder_empty()
        .with_service_name(service.to_owned())
        .with_attributes([
            KeyValue::new("service.namespace", "nimbus"),
            KeyValue::new("cloud.provider", "aws"),
        ])
        .build()
}

async fn run(mut rx: mpsc::Receiver<Msg>, lost: Arc<AtomicU64>) {
    let mut exporters: HashMap<Arc<str>, opentelemetry_otlp::SpanExporter> = HashMap::new();
    let mut pending: Vec<Span> = Vec::new();
    let mut last_warning: Option<Instant> = None;
    loop {
        let mut flushed = None;
        let deadline = tokio::time::sleep(BATCH_DELAY);
        tokio::pin!(deadline);
        // Gather until the batch is full, the delay is up, or a flush is asked for.
        while pending.len() < BATCH_SPANS && flushed.is_none() {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Span(s)) => pending.push(*s),
                    Some(Msg::Flush(done)) => flushed = Some(done),
                    None => return,
                },
                () = &mut deadline => break,
            }
        }
        if !pending.is_empty() {
            let mut by_service: HashMap<Arc<str>, Vec<SpanData>> = HashMap::new();
            for span in pending.drain(..) {
                by_service
                    .entry(span.service.clone())
                    .or_default()
                    .push(span_data(&span));
            }
            for (service, batch) in by_service {
                let n = batch.len();
                let result = match exporters.get(&service) {
                    Some(e) => e.export(batch).await.map_err(|e| e.to_string()),
                    None => match new_exporter(&service) {
                        Ok(e) => {
                            let r = e.export(batch).await.map_err(|e| e.to_string());
                            exporters.insert(service.clone(), e);
                            r
                        }
                        Err(e) => Err(e),
                    },
                };
                if let Err(e) = result {
                    lost.fetch_add(n as u64, Ordering::Relaxed);
                    if last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                        last_warning = Some(Instant::now());
                        tracing::warn!(service = %service, spans = n, "OTLP export failed: {e}");
                    }
                }
            }
        }
        if let Some(done) = flushed {
            let _ = done.send(());
        }
    }
}

/// One of nimbus's spans as OpenTelemetry's: W3C ids from the X-Ray ones, kind, times,
/// attributes, and an error status when it failed.
pub fn span_data(span: &Span) -> SpanData {
    // opentelemetry-aws reads the header as X-Ray writes it; the root maps to the trace id.
    let context = opentelemetry_aws::trace::xray_propagator::span_context_from_str(&format!(
        "Root={};Parent={};Sampled=1",
        span.trace_id, span.id
    ));
    let (trace_id, span_id) = context
        .map(|c| (c.trace_id(), c.span_id()))
        .unwrap_or((opentelemetry::trace::TraceId::INVALID, SpanId::INVALID));
    let parent = span
        .parent_id
        .as_deref()
        .and_then(|p| SpanId::from_hex(p).ok())
        .unwrap_or(SpanId::INVALID);
    let mut attributes: Vec<KeyValue> = span
        .attributes
        .iter()
        .map(|(k, v)| KeyValue::new(*k, v.clone()))
        .collect();
    attributes.push(KeyValue::new("nimbus.span.kind", span.kind.as_str()));
    attributes.push(KeyValue::new(
        "aws.xray.trace_id",
        span.trace_id.to_string(),
    ));
    SpanData {
        span_context: SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: parent,
        parent_span_is_remote: false,
        span_kind: kind(span.kind),
        name: Cow::Owned(span.name.to_string()),
        start_time: at(span.start_us),
        end_time: at(span.end_us),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: match &span.error {
            Some(e) => Status::error(e.clone()),
            None => Status::Unset,
        },
        instrumentation_scope: InstrumentationScope::builder("nimbus")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    }
}

fn kind(k: SpanKind) -> opentelemetry::trace::SpanKind {
    use opentelemetry::trace::SpanKind as O;
    match k {
        SpanKind::Gateway | SpanKind::Invoke | SpanKind::Bus => O::Server,
        SpanKind::Target => O::Producer,
        SpanKind::QueueWait | SpanKind::AsyncQueue => O::Consumer,
        SpanKind::StateMachine | SpanKind::DynamoDb => O::Server,
        SpanKind::Init | SpanKind::Execution | SpanKind::State => O::Internal,
    }
}

fn at(epoch_us: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_micros(epoch_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(kind: SpanKind, error: Option<&str>) -> Span {
        Span {
            trace_id: "1-5759e988-bd862e3fe1be46a994272793".into(),
            id: "53995c3f42cd8ad8".into(),
            parent_id: Some("0123456789abcdef".into()),
            name: "POST /orders".into(),
            service: "api:Api".into(),
            kind,
            start_us: 1_700_000_000_000_000,
            end_us: 1_700_000_000_001_500,
            error: error.map(str::to_owned),
            attributes: vec![("http.status_code", "201".into())],
        }
    }

    #[test]
    fn an_xray_root_becomes_the_w3c_trace_id_without_its_version_and_dashes() {
        let d = span_data(&span(SpanKind::Gateway, None));
        assert_eq!(
            d.span_context.trace_id().to_string(),
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(d.span_context.span_id().to_string(), "53995c3f42cd8ad8");
        assert_eq!(d.parent_span_id.to_string(), "0123456789abcdef");
        assert!(d.span_context.is_sampled());
    }

    #[test]
    fn times_kind_name_and_attributes_carry_over() {
        let d = span_data(&span(SpanKind::QueueWait, None));
        assert_eq!(
            d.end_time.duration_since(d.start_time).unwrap(),
            Duration::from_micros(1500)
        );
        assert_eq!(d.span_kind, opentelemetry::trace::SpanKind::Consumer);
        assert_eq!(d.name, "POST /orders");
        assert!(d
            .attributes
            .contains(&KeyValue::new("http.status_code", "201")));
        assert!(d
            .attributes
            .contains(&KeyValue::new("nimbus.span.kind", "queue-wait")));
        assert_eq!(d.status, Status::Unset);
    }

    #[test]
    fn a_failed_span_has_an_error_status_with_the_reason() {
        let d = span_data(&span(SpanKind::Execution, Some("Unhandled")));
        assert_eq!(d.status, Status::error("Unhandled"));
    }

    #[test]
    fn a_parent_that_is_not_a_span_id_leaves_the_span_a_root() {
        let mut s = span(SpanKind::Invoke, None);
        s.parent_id = Some("not-hex".into());
        assert_eq!(span_data(&s).parent_span_id, SpanId::INVALID);
        s.parent_id = None;
        assert_eq!(span_data(&s).parent_span_id, SpanId::INVALID);
    }
}
