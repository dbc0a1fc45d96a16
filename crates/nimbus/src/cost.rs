//! `nimbus cost`: what a running nimbus's work so far would have cost on AWS. It reads the
//! stack (`/_nimbus/api/stack`: functions' memory, APIs' kinds) and the counters on `/metrics`,
//! and prices them with `nimbus_core::cost` and the price file embedded from
//! `prices/us-east-1.json` (or `--prices`).

use std::process::ExitCode;

use anyhow::Context;
use nimbus_core::cost::{self, Prices, Usage};
use nimbus_telemetry::samples::{self, Sample};

use crate::cli::CostArgs;

const PRICES: &str = include_str!("../prices/us-east-1.json");

fn sum(samples: &[Sample], name: &str, keep: impl Fn(&Sample) -> bool) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && keep(s))
        .map(|s| s.value)
        .sum()
}

/// The usage nimbus measured, from its stack and metrics.
fn usage(stack: &serde_json::Value, samples: &[Sample]) -> Usage {
    let mut u = Usage::default();
    for n in stack["nodes"].as_array().into_iter().flatten() {
        let name = n["name"].as_str().unwrap_or("").to_owned();
        match n["kind"].as_str() {
            Some("function") => {
                let of = |s: &Sample| s.label("function") == Some(name.as_str());
                let requests = sum(samples, "nimbus_lambda_invocations_total", of);
                let billed = sum(samples, "nimbus_lambda_billed_milliseconds_total", of);
                let memory = n["detail"]["memory_mb"].as_u64().unwrap_or(128) as u32;
                let arm = n["detail"]["architecture"] == "arm64";
                u.functions.push((name, requests, billed, memory, arm));
            }
            Some("api") => {
                let requests = sum(samples, "nimbus_apigateway_requests_total", |s| {
                    s.label("api") == Some(name.as_str())
                });
                u.apis.push((name, requests, n["detail"]["type"] == "REST"));
            }
            _ => {}
        }
    }
    u.events = sum(samples, "nimbus_events_put_entries_total", |_| true);
    // A machine with Express starts is billed by request; the others by transition.
    let express: Vec<String> = samples
        .iter()
        .filter(|s| {
            s.name == "nimbus_states_executions_started_total"
                && s.label("status") == Some("EXPRESS")
        })
        .filter_map(|s| s.label("state_machine").map(str::to_owned))
        .collect();
    u.express_requests = sum(samples, "nimbus_states_executions_started_total", |s| {
        s.label("status") == Some("EXPRESS")
    });
    u.express_billed_ms = sum(
        samples,
        "nimbus_states_express_billed_milliseconds_total",
        |_| true,
    );
    u.standard_transitions = sum(samples, "nimbus_states_transitions_total", |s| {
        !s.label("state_machine")
            .is_some_and(|m| express.iter().any(|e| e == m))
    });
    for s in samples
        .iter()
        .filter(|s| s.name == "nimbus_dynamodb_requests_total" && s.label("outcome") == Some("ok"))
    {
        let (r, w) = cost::dynamodb_units(s.label("operation").unwrap_or(""));
        u.dynamodb_reads += r * s.value;
        u.dynamodb_writes += w * s.value;
    }
    let calls = |service: &str, ops: &[&str]| {
        sum(samples, "nimbus_aws_api_calls_total", |s| {
            s.label("service") == Some(service)
                && (ops.is_empty() || ops.contains(&s.label("operation").unwrap_or("")))
        })
    };
    u.sqs_requests = sum(samples, "nimbus_sqs_billed_requests_total", |_| true);
    u.sns_publishes = calls("sns", &["Publish", "PublishBatch"]);
    u.secrets_api_calls = calls("secretsmanager", &[]);
    for s in samples
        .iter()
        .filter(|s| s.name == "nimbus_s3_stored_byte_seconds_total")
    {
        let bucket = s.label("bucket").unwrap_or("").to_owned();
        u.s3_storage.push((bucket, cost::gb_months(s.value)));
    }
    u.secret_months = sum(
        samples,
        "nimbus_secretsmanager_secret_seconds_total",
        |_| true,
    ) / cost::MONTH_SECONDS;
    for s in samples
        .iter()
        .filter(|s| s.name == "nimbus_s3_requests_total")
    {
        if cost::s3_put_class(s.label("operation").unwrap_or("")) {
            u.s3_put_class += s.value;
        } else {
            u.s3_get_class += s.value;
        }
    }
    u
}

/// The estimate of a run from its stack and metrics, and the month it projects to (after a
/// minute of running).
fn estimate(
    stack: &serde_json::Value,
    metrics: &[Sample],
    prices: &Prices,
    free_tier: bool,
) -> (cost::Estimate, Option<f64>) {
    let started_s = metrics
        .iter()
        .find(|s| s.name == "nimbus_start_time_seconds")
        .map(|s| s.value);
    let e = cost::estimate(&usage(stack, metrics), prices, free_tier);
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let month = started_s
        .filter(|s| now_s - s > 60.0)
        .map(|s| e.total / (now_s - s) * 30.0 * 86_400.0);
    (e, month)
}

/// `nimbus cost --json`'s document, which `/_nimbus/api/cost` also answers.
fn to_json(
    e: &cost::Estimate,
    month: Option<f64>,
    prices: &Prices,
    free_tier: bool,
) -> serde_json::Value {
    let lines: Vec<serde_json::Value> = e
        .lines
        .iter()
        .map(|l| {
            serde_json::json!({"service": l.service, "resource": l.resource, "item": l.item,
                                    "quantity": l.quantity, "unit": l.unit, "cost": l.cost})
        })
        .collect();
    serde_json::json!({"currency": prices.currency, "region": prices.region,
        "prices_version": prices.version, "free_tier": free_tier,
        "lines": lines, "total": e.total, "projected_per_month": month})
}

/// `GET /_nimbus/api/cost[?free_tier=false]`: the running nimbus's estimate with the embedded
/// prices, for the dashboard.
pub fn router(graph: serde_json::Value, hub: nimbus_events::Hub) -> axum::Router {
    use axum::extract::{Query, State};
    type Shared = (std::sync::Arc<serde_json::Value>, nimbus_events::Hub);
    async fn answer(
        State((graph, hub)): State<Shared>,
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> axum::Json<serde_json::Value> {
        let prices = Prices::parse(PRICES).expect("the embedded price file is valid");
        let free_tier = q.get("free_tier").map(String::as_str) != Some("false");
        let metrics = samples::parse(&hub.scrape_metrics());
        let (e, month) = estimate(&graph, &metrics, &prices, free_tier);
        axum::Json(to_json(&e, month, &prices, free_tier))
    }
    axum::Router::new()
        .route("/_nimbus/api/cost", axum::routing::get(answer))
        .with_state((std::sync::Arc::new(graph), hub))
}

fn money(v: f64) -> String {
    if v == 0.0 {
        "$0".into()
    } else if v < 0.01 {
        format!("${v:.8}")
    } else {
        format!("${v:.4}")
    }
}

pub async fn cost(args: CostArgs) -> anyhow::Result<ExitCode> {
    let text = match &args.prices {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        None => PRICES.to_owned(),
    };
    let prices = Prices::parse(&text).map_err(|why| {
        let file = args
            .prices
            .as_ref()
            .map_or("the embedded price file".to_owned(), |p| {
                p.display().to_string()
            });
        anyhow::anyhow!("{file}: {why}")
    })?;
    let stack: serde_json::Value =
        serde_json::from_str(&crate::client::get(&args.endpoint_url, "/_nimbus/api/stack").await?)
            .context("nimbus's /_nimbus/api/stack is not JSON")?;
    let metrics = samples::parse(&crate::client::get(&args.endpoint_url, "/metrics").await?);
    let (e, month) = estimate(&stack, &metrics, &prices, !args.no_free_tier);
    if args.json {
        let out = to_json(&e, month, &prices, !args.no_free_tier);
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "What this run would have cost on AWS ({}, {} prices of {}; free tier {}):",
        prices.region,
        prices.currency,
        prices.version,
        if args.no_free_tier {
            "not applied"
        } else {
            "applied"
        }
    );
    let mut service = "";
    for l in &e.lines {
        if l.service != service {
            service = l.service;
            println!("{service}");
        }
        let what = if l.resource.is_empty() {
            l.item.clone()
        } else {
            format!("{} {}", l.resource, l.item)
        };
        let quantity = if l.unit == "GB-s" {
            format!("{:.4} GB-s", l.quantity)
        } else if l.unit.ends_with("months") {
            format!("{:.3e} {}", l.quantity, l.unit)
        } else {
            format!("{} {}", l.quantity.round(), l.unit)
        };
        println!("  {what:<48} {quantity:>22} {:>14}", money(l.cost));
    }
    println!("Total {:>80}", money(e.total));
    if let Some(m) = month {
        println!("Projected at this rate for a 30-day month: {}", money(m));
    }
    println!("Not priced yet: FIFO queues' higher request rate, data transfer, CloudWatch, and the SQS requests Lambda's event source mappings make on AWS.");
    Ok(ExitCode::SUCCESS)
}
