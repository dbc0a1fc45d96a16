//! The stack as the dashboard draws it: nodes (APIs, functions, buses, rules, queues) and the
//! edges the template declares between them, each edge naming the counter that measures its
//! traffic. Edges for calls functions make through the SDK are not in the template; they are
//! added from traces when the dashboard asks ([`with_calls`]).

use std::collections::BTreeSet;

use nimbus_events::{Dest, Hub};
use nimbus_gateway::config::ApiConfig;
use nimbus_gateway::ApiKind;
use nimbus_lambda::Platform;
use nimbus_telemetry::traces::Call;
use serde_json::{json, Value};

/// Where the stack came from and where it is served, for the header.
pub struct Meta {
    pub template: String,
    pub endpoint: String,
}

/// An API and the URL nimbus serves it on.
pub struct ServedApi<'a> {
    pub config: &'a ApiConfig,
    pub url: String,
}

fn selector(name: &str, labels: Value) -> Value {
    json!({"name": name, "labels": labels})
}

fn dest_node(dest: &Dest) -> String {
    match dest {
        Dest::Function(f) => format!("function:{}", base(f)),
        Dest::Queue(q) => format!("queue:{q}"),
        Dest::Bus(b) => format!("bus:{b}"),
        Dest::Topic(t) => format!("topic:{t}"),
        Dest::StateMachine(m) => format!("statemachine:{m}"),
        Dest::LogGroup(g) => format!("loggroup:{g}"),
    }
}

/// The graph of the running stack, as `GET /_nimbus/api/stack` answers it (without calls).
pub fn build(
    meta: &Meta,
    apis: &[ServedApi<'_>],
    platform: &Platform,
    hub: &Hub,
    queues: &[String],
) -> Value {
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for api in apis {
        let c = api.config;
        nodes.push(json!({
            "id": format!("api:{}", c.logical_id),
            "kind": "api",
            "name": c.logical_id,
            "detail": {
                "type": match c.kind { ApiKind::Rest => "REST", ApiKind::Http => "HTTP" },
                "url": api.url,
                "stage": c.stage,
            },
        }));
        for r in &c.routes {
            let key = r.key();
            edges.push(json!({
                "from": format!("api:{}", c.logical_id),
                "to": format!("function:{}", base(&r.function)),
                "kind": "route",
                "label": key,
                "traffic": selector("nimbus_apigateway_requests_total",
                    json!({"api": c.logical_id, "route": key})),
                "errors": selector("nimbus_apigateway_requests_total",
                    json!({"api": c.logical_id, "route": key, "status_class": "5xx"})),
            }));
        }
    }
    for f in platform.functions() {
        nodes.push(json!({
            "id": format!("function:{}", f.name),
            "kind": "function",
            "name": f.name,
            "detail": {
                "runtime": f.runtime,
                "memory_mb": f.memory_mb,
                "timeout_s": f.timeout.as_secs_f64(),
                "reserved_concurrency": f.reserved_concurrency,
                "tracing": if f.tracing_active { "Active" } else { "PassThrough" },
            },
        }));
        let cfg = hub.async_config(&f.name);
        for (dest, label) in [
            (&cfg.on_success, "on success"),
            (&cfg.on_failure, "on failure"),
        ] {
            if let Some(d) = dest {
                edges.push(json!({
                    "from": format!("function:{}", f.name),
                    "to": dest_node(d),
                    "kind": "destination",
                    "label": label,
                }));
            }
        }
        if let Some(q) = &cfg.dead_letter_queue {
            edges.push(json!({
                "from": format!("function:{}", f.name),
                "to": format!("queue:{q}"),
                "kind": "dead-letter",
                "label": "DLQ",
                "traffic": selector("nimbus_lambda_dead_letter_sends_total", json!({"function": f.name})),
            }));
        }
    }
    for bus in hub.buses() {
        nodes.push(json!({"id": format!("bus:{bus}"), "kind": "bus", "name": bus, "detail": {}}));
    }
    for r in hub.rules() {
        let id = format!("rule:{}", r.name);
        nodes.push(json!({
            "id": id,
            "kind": "rule",
            "name": r.name,
            "detail": {
                "bus": r.bus,
                "pattern": r.pattern_text,
                "schedule": r.schedule_expression,
                "enabled": r.enabled,
            },
        }));
        if r.schedule_expression.is_none() {
            edges.push(json!({
                "from": format!("bus:{}", r.bus),
                "to": id,
                "kind": "rule",
                "label": "",
                "traffic": selector("nimbus_events_rule_matches_total",
                    json!({"bus": r.bus, "rule": r.name})),
            }));
        }
        for t in &r.targets {
            let labels = json!({"bus": r.bus, "rule": r.name, "target": t.id});
            edges.push(json!({
                "from": id,
                "to": dest_node(&t.dest),
                "kind": "target",
                "label": t.id,
                "traffic": selector("nimbus_events_target_invocations_total", labels.clone()),
                "errors": selector("nimbus_events_target_failures_total", labels),
            }));
            if let Some(q) = &t.dead_letter_queue {
                edges.push(json!({
                    "from": id,
                    "to": format!("queue:{q}"),
                    "kind": "dead-letter",
                    "label": format!("{} DLQ", t.id),
                }));
            }
        }
    }
    for q in queues {
        let attrs = hub.store().queue_attributes(q).ok();
        let redrive = attrs.as_ref().and_then(|a| a.redrive.as_ref());
        nodes.push(json!({
            "id": format!("queue:{q}"),
            "kind": "queue",
            "name": q,
            "detail": {
                "fifo": attrs.as_ref().is_some_and(|a| a.fifo),
                "dead_letter": redrive.map(|r| format!("queue:{}", r.dead_letter_queue)),
                "visibility_timeout_s": attrs.as_ref().map(|a| a.visibility_timeout_s),
            },
        }));
        if let Some(r) = redrive {
            edges.push(json!({
                "from": format!("queue:{q}"),
                "to": format!("queue:{}", r.dead_letter_queue),
                "kind": "redrive",
                "label": format!("after {} receives", r.max_receive_count),
            }));
        }
    }
    for m in hub.mappings() {
        edges.push(json!({
            "from": format!("queue:{}", m.queue),
            "to": format!("function:{}", base(&m.function)),
            "kind": "mapping",
            "label": format!("batch {}", m.batch_size),
            "traffic": selector("nimbus_lambda_invocations_total", json!({"function": base(&m.function)})),
            "errors": selector("nimbus_lambda_errors_total", json!({"function": base(&m.function)})),
        }));
    }
    let s = hub.settings();
    json!({
        "template": meta.template,
        "region": s.region,
        "account": s.account,
        "endpoint": meta.endpoint,
        "nodes": nodes,
        "edges": edges,
    })
}

/// `graph` with the calls seen in traces as `call` edges (those between known nodes only).
pub fn with_calls(graph: &Value, calls: &BTreeSet<Call>) -> Value {
    let mut g = graph.clone();
    let known: BTreeSet<String> = g["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["id"].as_str().map(str::to_owned))
        .collect();
    if let Some(edges) = g["edges"].as_array_mut() {
        for c in calls {
            if known.contains(&c.from) && known.contains(&c.to) {
                edges.push(json!({
                    "from": c.from,
                    "to": c.to,
                    "kind": "call",
                    "label": c.operation,
                }));
            }
        }
    }
    g
}

/// A function's node, whatever version or alias (`name:live`) an edge invokes.
fn base(function: &str) -> &str {
    function.split(':').next().unwrap_or(function)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_between_known_nodes_become_call_edges() {
        let graph = json!({
            "nodes": [{"id": "function:A"}, {"id": "bus:default"}],
            "edges": [],
        });
        let calls: BTreeSet<Call> = [
            Call {
                from: "function:A".into(),
                to: "bus:default".into(),
                operation: "PutEvents",
            },
            Call {
                from: "function:A".into(),
                to: "queue:gone".into(),
                operation: "SendMessage",
            },
        ]
        .into();
        let g = with_calls(&graph, &calls);
        assert_eq!(
            g["edges"],
            json!([{"from": "function:A", "to": "bus:default", "kind": "call", "label": "PutEvents"}])
        );
    }
}
