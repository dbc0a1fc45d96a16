//! Spans nimbus records along an X-Ray trace, and the recent traces it keeps in memory.
//!
//! Each hop that does work for a traced request (the gateway, Lambda's invoke with its
//! initialisation and execution, a bus's `PutEvents`, a rule's delivery, an SQS send, a
//! message's wait in a queue, an asynchronous event's wait) opens a span as the child of the
//! header's `Parent`, and passes on a header whose `Parent` is its own span, as AWS services
//! do with their segments. A header with `Sampled=0` is not recorded.
//!
//! The store is bounded: [`MAX_TRACES`] traces (the oldest go first) of at most
//! [`MAX_SPANS_PER_TRACE`] spans each. An exporter (OTLP) can be attached to see every span.
//!
//! Invariant: no clock and no I/O; callers pass epoch microseconds in.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use nimbus_core::trace::TraceHeader;

/// Traces kept for the dashboard; older ones are forgotten.
pub const MAX_TRACES: usize = 500;
/// Spans kept per trace; a trace that fans out further keeps its first ones and counts the rest.
pub const MAX_SPANS_PER_TRACE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpanKind {
    /// An API Gateway request.
    Gateway,
    /// Lambda's service handling one invocation.
    Invoke,
    /// A cold start: the execution environment's initialisation.
    Init,
    /// The function's own run (its X-Ray segment; `_X_AMZN_TRACE_ID`'s `Parent`).
    Execution,
    /// An asynchronous event waiting in the function's queue.
    AsyncQueue,
    /// `PutEvents` on a bus.
    Bus,
    /// A rule's delivery to one target.
    Target,
    /// A message between its send and a mapping's receive.
    QueueWait,
    /// A Step Functions execution.
    StateMachine,
    /// One state of an execution.
    State,
    /// A DynamoDB API call (a function's SDK call carries its trace header).
    DynamoDb,
}

impl SpanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Gateway => "gateway",
            SpanKind::Invoke => "invoke",
            SpanKind::Init => "init",
            SpanKind::Execution => "execution",
            SpanKind::AsyncQueue => "async-queue",
            SpanKind::Bus => "bus",
            SpanKind::Target => "target",
            SpanKind::QueueWait => "queue-wait",
            SpanKind::StateMachine => "state-machine",
            SpanKind::State => "state",
            SpanKind::DynamoDb => "dynamodb",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The X-Ray root, `1-<8 hex>-<24 hex>` (shared by the trace's spans).
    pub trace_id: Arc<str>,
    /// 16 hex digits.
    pub id: String,
    pub parent_id: Option<String>,
    pub name: Arc<str>,
    /// The node of the stack doing the work: `api:<name>`, `function:<name>`, `bus:<name>`,
    /// `rule:<name>`, `queue:<name>`.
    pub service: Arc<str>,
    pub kind: SpanKind,
    pub start_us: u64,
    pub end_us: u64,
    /// Why it failed, when it did.
    pub error: Option<String>,
    pub attributes: Vec<(&'static str, String)>,
}

/// A span opened where its work starts; recorded with [`Traces::close`].
#[derive(Debug)]
pub struct OpenSpan {
    span: Span,
    /// What the header passed on carries after `Parent` (`;Sampled=..` and the keys nimbus
    /// does not interpret), rendered once per trace rather than once per span.
    tail: Arc<str>,
}

impl OpenSpan {
    pub fn id(&self) -> &str {
        &self.span.id
    }

    /// The header to pass on: the same trace, with this span as the parent.
    pub fn header(&self) -> String {
        let s = &self.span;
        format!("Root={};Parent={}{}", s.trace_id, s.id, self.tail)
    }

    /// Names the span once its name is known (a request's route, after matching).
    pub fn rename(&mut self, name: impl Into<Arc<str>>) {
        self.span.name = name.into();
    }

    pub fn attr(&mut self, key: &'static str, value: impl Into<String>) {
        self.span.attributes.push((key, value.into()));
    }

    pub fn fail(&mut self, why: impl Into<String>) {
        self.span.error = Some(why.into());
    }

    /// Moves the start, for work whose beginning is only known afterwards (a cold start
    /// measured by the environment, a message's send time).
    pub fn set_start_us(&mut self, start_us: u64) {
        self.span.start_us = start_us;
    }
}

/// One line of the recent-traces list.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    pub trace_id: String,
    /// The first span's name and service (the request that started it).
    pub name: String,
    pub service: String,
    pub start_us: u64,
    pub end_us: u64,
    pub spans: usize,
    pub error: bool,
    pub services: Vec<String>,
}

/// A call a function made into nimbus, seen in traces (`function:Notify` -> `bus:default`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub from: String,
    pub to: String,
    /// `PutEvents`, `SendMessage` or `Invoke`.
    pub operation: &'static str,
}

type Exporter = Box<dyn Fn(&Span) + Send + Sync>;

pub struct Traces {
    state: Mutex<State>,
    next_id: AtomicU64,
    exporter: OnceLock<Exporter>,
}

#[derive(Default)]
struct State {
    traces: HashMap<Arc<str>, Trace>,
    /// Trace ids, oldest first.
    order: VecDeque<Arc<str>>,
}

/// Where a new span hangs: its trace, its parent span, and the header's tail.
struct Parent {
    trace_id: Arc<str>,
    id: Option<String>,
    tail: Arc<str>,
}

struct Trace {
    spans: Vec<Span>,
    dropped: usize,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Traces")
    }
}

impl Traces {
    /// `seed` makes span ids differ between runs (callers pass randomness in).
    pub fn new(seed: u64) -> Traces {
        Traces {
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(seed),
            exporter: OnceLock::new(),
        }
    }

    /// Sends every recorded span to `exporter` too (set once, at start-up).
    pub fn set_exporter(&self, exporter: impl Fn(&Span) + Send + Sync + 'static) {
        let _ = self.exporter.set(Box::new(exporter));
    }

    /// A new 16-hex-digit span id: splitmix64 over a counter, so ids are unique within a run
    /// and look random, without a random-number call per span.
    pub fn new_span_id(&self) -> String {
        let mut z = self
            .next_id
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        format!("{:016x}", z ^ (z >> 31))
    }

    /// Opens a span as the child of `header`'s parent; `None` when there is no valid header
    /// or it says `Sampled=0` (nothing is recorded then, and the header goes on unchanged).
    pub fn open(
        &self,
        header: Option<&str>,
        kind: SpanKind,
        service: impl Into<Arc<str>>,
        name: impl Into<Arc<str>>,
        start_us: u64,
    ) -> Option<OpenSpan> {
        let h = TraceHeader::parse(header?)?;
        self.open_header(h, kind, service, name, start_us).ok()
    }

    /// [`Traces::open`] for a header already parsed. A `Sampled=0` header records nothing
    /// and comes back untouched, for the caller to pass on.
    pub fn open_header(
        &self,
        h: TraceHeader,
        kind: SpanKind,
        service: impl Into<Arc<str>>,
        name: impl Into<Arc<str>>,
        start_us: u64,
    ) -> Result<OpenSpan, TraceHeader> {
        if h.sampled.as_deref() == Some("0") {
            return Err(h);
        }
        let mut tail = String::new();
        if let Some(v) = &h.sampled {
            let _ = write!(tail, ";Sampled={v}");
        }
        for (k, v) in &h.other {
            let _ = write!(tail, ";{k}={v}");
        }
        let parent = Parent {
            trace_id: h.root.into(),
            id: h.parent,
            tail: tail.into(),
        };
        Ok(self.span(parent, kind, service.into(), name.into(), start_us))
    }

    /// Opens a child of `parent`.
    pub fn open_child(
        &self,
        parent: &OpenSpan,
        kind: SpanKind,
        service: impl Into<Arc<str>>,
        name: impl Into<Arc<str>>,
        start_us: u64,
    ) -> OpenSpan {
        let p = Parent {
            trace_id: parent.span.trace_id.clone(),
            id: Some(parent.span.id.clone()),
            tail: parent.tail.clone(),
        };
        self.span(p, kind, service.into(), name.into(), start_us)
    }

    /// A new span under `parent`, in its trace.
    fn span(
        &self,
        parent: Parent,
        kind: SpanKind,
        service: Arc<str>,
        name: Arc<str>,
        start_us: u64,
    ) -> OpenSpan {
        OpenSpan {
            span: Span {
                trace_id: parent.trace_id,
                id: self.new_span_id(),
                parent_id: parent.id,
                name,
                service,
                kind,
                start_us,
                end_us: start_us,
                error: None,
                attributes: Vec::with_capacity(4),
            },
            tail: parent.tail,
        }
    }

    /// Records `open` as ending at `end_us` (never before its start).
    pub fn close(&self, open: OpenSpan, end_us: u64) {
        let mut span = open.span;
        span.end_us = end_us.max(span.start_us);
        self.record(span);
    }

    pub fn record(&self, span: Span) {
        if let Some(export) = self.exporter.get() {
            export(&span);
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let State { traces, order } = &mut *s;
        if let Some(trace) = traces.get_mut(&span.trace_id) {
            if trace.spans.len() >= MAX_SPANS_PER_TRACE {
                trace.dropped += 1;
            } else {
                trace.spans.push(span);
            }
            return;
        }
        let evicted = if order.len() >= MAX_TRACES {
            order.pop_front().and_then(|oldest| traces.remove(&oldest))
        } else {
            None
        };
        let id = span.trace_id.clone();
        order.push_back(id.clone());
        let mut spans = Vec::with_capacity(4);
        spans.push(span);
        traces.insert(id, Trace { spans, dropped: 0 });
        drop(s);
        // The forgotten trace's spans are freed outside the lock.
        drop(evicted);
    }

    /// The newest traces first, at most `limit`.
    pub fn recent(&self, limit: usize) -> Vec<TraceSummary> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.order
            .iter()
            .rev()
            .filter_map(|id| s.traces.get(id).map(|t| (id, t)))
            .take(limit)
            .map(|(id, t)| summary(id, t))
            .collect()
    }

    /// One trace's spans in start order, with how many were dropped over the cap.
    pub fn get(&self, trace_id: &str) -> Option<(Vec<Span>, usize)> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let t = s.traces.get(trace_id)?;
        let mut spans = t.spans.clone();
        spans.sort_by_key(|s| (s.start_us, s.end_us));
        Some((spans, t.dropped))
    }

    /// The calls functions made into nimbus, as the kept traces show them: a `bus`,
    /// `queue-wait` or `invoke` span whose parent is a function's execution span.
    pub fn calls(&self) -> BTreeSet<Call> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut calls = BTreeSet::new();
        for t in s.traces.values() {
            let executions: HashMap<&str, &str> = t
                .spans
                .iter()
                .filter(|s| s.kind == SpanKind::Execution)
                .map(|s| (s.id.as_str(), &*s.service))
                .collect();
            for span in &t.spans {
                let operation = match span.kind {
                    SpanKind::Bus => "PutEvents",
                    SpanKind::QueueWait => "SendMessage",
                    SpanKind::Invoke => "Invoke",
                    _ => continue,
                };
                if let Some(from) = span.parent_id.as_deref().and_then(|p| executions.get(p)) {
                    calls.insert(Call {
                        from: (*from).to_owned(),
                        to: span.service.to_string(),
                        operation,
                    });
                }
            }
        }
        calls
    }
}

fn summary(id: &str, t: &Trace) -> TraceSummary {
    let mut by_start: Vec<&Span> = t.spans.iter().collect();
    by_start.sort_by_key(|s| s.start_us);
    let first = by_start.first().copied();
    let mut services: Vec<String> = Vec::new();
    for s in &by_start {
        if !services.iter().any(|known| **known == *s.service) {
            services.push(s.service.to_string());
        }
    }
    TraceSummary {
        trace_id: id.to_owned(),
        name: first.map(|s| s.name.to_string()).unwrap_or_default(),
        service: first.map(|s| s.service.to_string()).unwrap_or_default(),
        start_us: first.map(|s| s.start_us).unwrap_or_default(),
        end_us: t.spans.iter().map(|s| s.end_us).max().unwrap_or_default(),
        spans: t.spans.len() + t.dropped,
        error: t.spans.iter().any(|s| s.error.is_some()),
        services,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    #[test]
    fn a_span_is_the_child_of_the_headers_parent_and_passes_itself_on() {
        let t = Traces::new(7);
        let open = t
            .open(Some(HEADER), SpanKind::Gateway, "api:Api", "GET /", 10)
            .unwrap();
        let passed = TraceHeader::parse(&open.header()).unwrap();
        assert_eq!(passed.root, "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(passed.parent.as_deref(), Some(open.id()));
        assert_eq!(passed.sampled.as_deref(), Some("1"));
        t.close(open, 25);
        let (spans, dropped) = t.get("1-5759e988-bd862e3fe1be46a994272793").unwrap();
        assert_eq!(dropped, 0);
        assert_eq!(spans[0].parent_id.as_deref(), Some("53995c3f42cd8ad8"));
        assert_eq!((spans[0].start_us, spans[0].end_us), (10, 25));
    }

    #[test]
    fn the_header_passed_on_keeps_the_keys_nimbus_does_not_interpret() {
        let t = Traces::new(5);
        let h = TraceHeader::parse(&format!("{HEADER};Lineage=a87bd80c:1|68fd508a:5")).unwrap();
        let open = t
            .open_header(h, SpanKind::Gateway, "api:Api", "GET /", 0)
            .unwrap();
        let child = t.open_child(&open, SpanKind::Invoke, "function:F", "F", 1);
        assert_eq!(
            child.header(),
            format!(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent={};Sampled=1;Lineage=a87bd80c:1|68fd508a:5",
                child.id()
            )
        );
    }

    #[test]
    fn an_unsampled_parsed_header_comes_back_untouched() {
        let t = Traces::new(5);
        let h = TraceHeader::parse("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0").unwrap();
        let back = t
            .open_header(h.clone(), SpanKind::Gateway, "api:Api", "GET /", 0)
            .unwrap_err();
        assert_eq!(back, h);
        assert!(t.recent(10).is_empty());
    }

    #[test]
    fn unsampled_or_missing_headers_record_nothing() {
        let t = Traces::new(1);
        let unsampled = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0";
        assert!(t
            .open(Some(unsampled), SpanKind::Bus, "bus:b", "x", 0)
            .is_none());
        assert!(t.open(None, SpanKind::Bus, "bus:b", "x", 0).is_none());
        assert!(t
            .open(Some("Root=junk"), SpanKind::Bus, "bus:b", "x", 0)
            .is_none());
        assert!(t.recent(10).is_empty());
    }

    #[test]
    fn span_ids_are_sixteen_hex_digits_and_do_not_repeat() {
        let t = Traces::new(0);
        let ids: BTreeSet<String> = (0..10_000).map(|_| t.new_span_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids
            .iter()
            .all(|i| i.len() == 16 && i.bytes().all(|b| b.is_ascii_hexdigit())));
    }

    fn root(n: usize) -> String {
        format!("Root=1-00000000-{n:024x};Sampled=1")
    }

    #[test]
    fn the_oldest_traces_are_forgotten_past_the_cap() {
        let t = Traces::new(3);
        for n in 0..MAX_TRACES + 5 {
            let open = t
                .open(Some(&root(n)), SpanKind::Gateway, "api:a", "r", n as u64)
                .unwrap();
            t.close(open, n as u64 + 1);
        }
        let recent = t.recent(usize::MAX);
        assert_eq!(recent.len(), MAX_TRACES);
        assert_eq!(
            recent[0].trace_id,
            format!("1-00000000-{:024x}", MAX_TRACES + 4)
        );
        assert!(t.get(&format!("1-00000000-{:024x}", 4)).is_none());
        assert!(t.get(&format!("1-00000000-{:024x}", 5)).is_some());
    }

    #[test]
    fn a_trace_keeps_its_first_spans_and_counts_the_rest() {
        let t = Traces::new(3);
        for i in 0..MAX_SPANS_PER_TRACE + 3 {
            let open = t
                .open(
                    Some(&root(1)),
                    SpanKind::QueueWait,
                    "queue:q",
                    "s",
                    i as u64,
                )
                .unwrap();
            t.close(open, i as u64);
        }
        let (spans, dropped) = t.get(&format!("1-00000000-{:024x}", 1)).unwrap();
        assert_eq!((spans.len(), dropped), (MAX_SPANS_PER_TRACE, 3));
        assert_eq!(t.recent(1)[0].spans, MAX_SPANS_PER_TRACE + 3);
    }

    #[test]
    fn calls_are_spans_whose_parent_is_a_functions_execution() {
        let t = Traces::new(9);
        let invoke = t
            .open(
                Some(HEADER),
                SpanKind::Invoke,
                "function:Notify",
                "Notify",
                0,
            )
            .unwrap();
        let exec = t.open_child(&invoke, SpanKind::Execution, "function:Notify", "Notify", 1);
        let bus = t
            .open(
                Some(&exec.header()),
                SpanKind::Bus,
                "bus:default",
                "PutEvents",
                2,
            )
            .unwrap();
        let target = t.open_child(&bus, SpanKind::Target, "rule:R", "R -> T", 3);
        t.close(target, 3);
        t.close(bus, 3);
        t.close(exec, 4);
        t.close(invoke, 5);
        let calls: Vec<Call> = t.calls().into_iter().collect();
        assert_eq!(
            calls,
            vec![Call {
                from: "function:Notify".into(),
                to: "bus:default".into(),
                operation: "PutEvents"
            }]
        );
        let summary = &t.recent(1)[0];
        assert_eq!(summary.name, "Notify");
        assert_eq!(summary.spans, 4);
        assert_eq!(
            summary.services,
            vec!["function:Notify", "bus:default", "rule:R"]
        );
    }

    #[test]
    fn an_exporter_sees_every_recorded_span() {
        let t = Traces::new(2);
        let seen = std::sync::Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        t.set_exporter(move |_| {
            s.fetch_add(1, Ordering::Relaxed);
        });
        for n in 0..3 {
            let open = t
                .open(Some(&root(n)), SpanKind::Bus, "bus:b", "p", 0)
                .unwrap();
            t.close(open, 1);
        }
        assert_eq!(seen.load(Ordering::Relaxed), 3);
    }
}
