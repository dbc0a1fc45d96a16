//! The dashboard at `/_nimbus/` on the AWS endpoint: a page (embedded assets, no build step)
//! and the JSON API it polls (`API.md`): the stack as a graph, every metric sample, recent
//! traces and their spans, the newest log lines, alarms.
//!
//! Invariant: read-only. Nothing here changes the system it shows; it reads the telemetry
//! handle, the event engine's settings and the store's queue counts.

pub mod graph;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use nimbus_events::Hub;
use nimbus_telemetry::samples;
use serde_json::{json, Value};

mod assets {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// Traces one list answer may hold.
const MAX_TRACE_LIST: usize = 500;
/// Log lines one answer may hold.
const MAX_LOG_LINES: usize = 1000;

#[derive(Clone)]
struct Dashboard {
    hub: Hub,
    graph: Arc<Value>,
    alarms: Arc<dyn Fn() -> Value + Send + Sync>,
    deployments: Arc<dyn Fn() -> Value + Send + Sync>,
}

/// The dashboard's routes: `/_nimbus/` and everything under it. `graph` is
/// [`graph::build`]'s answer; `alarms` gives the alarms' states as `API.md` shows them, and
/// `deployments` the CodeDeploy deployments with their timelines.
pub fn router(
    hub: Hub,
    graph: Value,
    alarms: impl Fn() -> Value + Send + Sync + 'static,
    deployments: impl Fn() -> Value + Send + Sync + 'static,
) -> Router {
    Router::new()
        .route(
            "/_nimbus",
            get(|| async { Redirect::permanent("/_nimbus/") }),
        )
        .route("/_nimbus/", get(index))
        .route("/_nimbus/api/stack", get(stack))
        .route("/_nimbus/api/metrics", get(metrics))
        .route("/_nimbus/api/traces", get(traces))
        .route("/_nimbus/api/traces/{id}", get(trace))
        .route("/_nimbus/api/logs", get(logs))
        .route("/_nimbus/api/alarms", get(alarm_states))
        .route("/_nimbus/api/deployments", get(deployment_list))
        .route("/_nimbus/api/{*rest}", get(unknown_api))
        .route("/_nimbus/{*path}", get(asset))
        .with_state(Dashboard {
            hub,
            graph: Arc::new(graph),
            alarms: Arc::new(alarms),
            deployments: Arc::new(deployments),
        })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

fn serve(path: &str) -> Response {
    match assets::ASSETS.iter().find(|(p, _)| *p == path) {
        Some((p, bytes)) => (
            [
                (header::CONTENT_TYPE, content_type(p)),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'",
                ),
            ],
            *bytes,
        )
            .into_response(),
        None => not_found(format!("no dashboard file {path}")),
    }
}

fn not_found(message: String) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "message": message }))).into_response()
}

async fn index() -> Response {
    serve("index.html")
}

async fn asset(Path(path): Path<String>) -> Response {
    serve(&path)
}

async fn unknown_api(Path(rest): Path<String>) -> Response {
    not_found(format!("no dashboard API /_nimbus/api/{rest}; see API.md"))
}

async fn stack(State(d): State<Dashboard>) -> Json<Value> {
    Json(graph::with_calls(
        &d.graph,
        &d.hub.telemetry().traces.calls(),
    ))
}

async fn metrics(State(d): State<Dashboard>) -> Json<Value> {
    let samples: Vec<Value> = samples::parse(&d.hub.scrape_metrics())
        .into_iter()
        .map(|s| {
            let labels: serde_json::Map<String, Value> = s
                .labels
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            // JSON has no infinity; `+Inf` only appears in `le` labels, never as a value.
            let value = if s.value.is_finite() {
                json!(s.value)
            } else {
                Value::Null
            };
            json!({"name": s.name, "labels": labels, "value": value})
        })
        .collect();
    Json(json!({"time_ms": nimbus_lambda::epoch_ms(), "samples": samples}))
}

fn number(
    q: &HashMap<String, String>,
    key: &str,
    default: usize,
    max: usize,
) -> Result<usize, String> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map(|n| n.min(max))
            .map_err(|_| format!("{key} must be a whole number, not {v:?}")),
    }
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "message": message }))).into_response()
}

async fn traces(State(d): State<Dashboard>, Query(q): Query<HashMap<String, String>>) -> Response {
    let limit = match number(&q, "limit", 50, MAX_TRACE_LIST) {
        Ok(n) => n,
        Err(m) => return bad_request(m),
    };
    let list: Vec<Value> = d
        .hub
        .telemetry()
        .traces
        .recent(limit)
        .into_iter()
        .map(|t| {
            json!({
                "trace_id": t.trace_id,
                "name": t.name,
                "service": t.service,
                "start_us": t.start_us,
                "duration_ms": t.end_us.saturating_sub(t.start_us) as f64 / 1000.0,
                "spans": t.spans,
                "error": t.error,
                "services": t.services,
            })
        })
        .collect();
    Json(json!({ "traces": list })).into_response()
}

async fn trace(State(d): State<Dashboard>, Path(id): Path<String>) -> Response {
    let Some((spans, dropped)) = d.hub.telemetry().traces.get(&id) else {
        return not_found(format!(
            "trace {id} is not kept (only the newest traces are)"
        ));
    };
    let spans: Vec<Value> = spans
        .into_iter()
        .map(|s| {
            let attributes: serde_json::Map<String, Value> = s
                .attributes
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v)))
                .collect();
            json!({
                "id": s.id,
                "parent_id": s.parent_id,
                "name": &*s.name,
                "service": &*s.service,
                "kind": s.kind.as_str(),
                "start_us": s.start_us,
                "end_us": s.end_us,
                "error": s.error,
                "attributes": attributes,
            })
        })
        .collect();
    Json(json!({"trace_id": id, "spans": spans, "dropped_spans": dropped})).into_response()
}

async fn logs(State(d): State<Dashboard>, Query(q): Query<HashMap<String, String>>) -> Response {
    let (after, limit) = match (
        number(&q, "after", 0, usize::MAX),
        number(&q, "limit", 200, MAX_LOG_LINES),
    ) {
        (Ok(a), Ok(l)) => (a as u64, l),
        (Err(m), _) | (_, Err(m)) => return bad_request(m),
    };
    let (lines, last) =
        d.hub
            .telemetry()
            .logs
            .after(after, q.get("source").map(String::as_str), limit);
    let events: Vec<Value> = lines
        .into_iter()
        .map(|l| {
            json!({
                "seq": l.seq,
                "time_ms": l.time_ms,
                "source": &*l.source,
                "kind": l.kind,
                "request_id": l.request_id.as_deref(),
                "message": l.message,
            })
        })
        .collect();
    Json(json!({"events": events, "next": last})).into_response()
}

async fn alarm_states(State(d): State<Dashboard>) -> Json<Value> {
    Json((d.alarms)())
}

/// `{"deployments": [...]}`, newest first: CodeDeploy's deployments with their timelines.
async fn deployment_list(State(d): State<Dashboard>) -> Json<Value> {
    Json((d.deployments)())
}
