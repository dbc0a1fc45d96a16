//! `nimbus chaos`: the chaos API of a running nimbus (`/_nimbus/chaos/faults`, `/effects`)
//! and its FIS experiments, from the command line.

use std::process::ExitCode;

use crate::cli::{ChaosAction, ChaosArgs};
use crate::client::{call, get};

const FIS_AUTH: &str = "AWS4-HMAC-SHA256 Credential=nimbus/20260101/us-east-1/fis/aws4_request, SignedHeaders=host, Signature=0";

async fn send(endpoint: &str, method: &str, path: &str, body: String) -> anyhow::Result<String> {
    let (status, text) = call(endpoint, method, path, Some(body)).await?;
    if status != 200 {
        let why = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or(text);
        anyhow::bail!("nimbus refused it: {why}");
    }
    Ok(text)
}

pub async fn chaos(args: ChaosArgs) -> anyhow::Result<ExitCode> {
    let ep = &args.endpoint_url;
    match args.action {
        ChaosAction::List => {
            let faults: serde_json::Value =
                serde_json::from_str(&get(ep, "/_nimbus/chaos/faults").await?)?;
            let effects: serde_json::Value =
                serde_json::from_str(&get(ep, "/_nimbus/chaos/effects").await?)?;
            let rules = faults.as_array().cloned().unwrap_or_default();
            if rules.is_empty() {
                println!("no fault rules");
            }
            for r in rules {
                let any = |k: &str| r[k].as_str().unwrap_or("*").to_owned();
                let mut does = Vec::new();
                if let Some(ms) = r["latency"].as_u64() {
                    does.push(format!("+{ms} ms"));
                }
                if r["error"].is_object() {
                    does.push(format!(
                        "{} {}",
                        r["error"]["statusCode"],
                        r["error"]["code"].as_str().unwrap_or("")
                    ));
                }
                let api = r["api"]
                    .as_str()
                    .map(|a| format!(" of API {a}"))
                    .unwrap_or_default();
                println!(
                    "fault: {} {}{api} in {} at {} -> {}",
                    any("service"),
                    any("operation"),
                    any("region"),
                    r["probability"],
                    does.join(", ")
                );
            }
            println!("latency: {} ms", effects["latency"]);
            let (_, text) = crate::client::call_with(
                ep,
                "GET",
                "/experiments",
                None,
                &[("authorization", FIS_AUTH)],
            )
            .await?;
            let running: Vec<String> = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["experiments"].as_array().cloned())
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e["state"]["status"] == "running")
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect();
            println!(
                "FIS experiments running: {}",
                if running.is_empty() {
                    "none".into()
                } else {
                    running.join(", ")
                }
            );
        }
        ChaosAction::Inject {
            service,
            operation,
            region,
            probability,
            status,
            code,
        } => {
            let mut rule = serde_json::json!({"probability": probability, "error": {"statusCode": status, "code": code}});
            for (k, v) in [
                ("service", service),
                ("operation", operation),
                ("region", region),
            ] {
                if let Some(v) = v {
                    rule[k] = v.into();
                }
            }
            let text = send(
                ep,
                "PATCH",
                "/_nimbus/chaos/faults",
                serde_json::json!([rule]).to_string(),
            )
            .await?;
            let n = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.as_array().map(Vec::len))
                .unwrap_or(0);
            println!("fault added; {n} rule(s) active");
        }
        ChaosAction::Latency { ms } => {
            send(
                ep,
                "POST",
                "/_nimbus/chaos/effects",
                serde_json::json!({"latency": ms}).to_string(),
            )
            .await?;
            println!("latency: {ms} ms");
        }
        ChaosAction::Run { file, no_wait } => return run(ep, &file, no_wait).await,
        ChaosAction::Clear => {
            send(ep, "POST", "/_nimbus/chaos/faults", "[]".into()).await?;
            send(
                ep,
                "POST",
                "/_nimbus/chaos/effects",
                r#"{"latency":0}"#.into(),
            )
            .await?;
            println!("no fault rules, no latency");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One FIS call (REST-JSON; nimbus routes it by its signature's service).
async fn fis(
    ep: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let (status, text) = crate::client::call_with(
        ep,
        method,
        path,
        body.map(|b| b.to_string()),
        &[("authorization", FIS_AUTH)],
    )
    .await?;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    if !(200..300).contains(&status) {
        anyhow::bail!(
            "FIS refused it ({status}): {}",
            v["message"].as_str().unwrap_or(&text)
        );
    }
    Ok(v)
}

/// `nimbus chaos run FILE`: an experiment template file created, started and followed.
async fn run(ep: &str, file: &std::path::Path, no_wait: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let mut template: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", file.display()))?;
    if !template.is_object() {
        anyhow::bail!(
            "{}: an experiment template is a JSON object",
            file.display()
        );
    }
    let token = format!("nimbus-chaos-run-{}", std::process::id());
    template["clientToken"] = token.clone().into();
    if template["roleArn"].is_null() {
        template["roleArn"] = "arn:aws:iam::123456789012:role/nimbus-fis".into();
    }
    if template["stopConditions"].is_null() {
        template["stopConditions"] = serde_json::json!([{"source": "none"}]);
    }
    let made = fis(ep, "POST", "/experimentTemplates", Some(template))
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let tid = made["experimentTemplate"]["id"].as_str().unwrap_or("");
    let started = fis(
        ep,
        "POST",
        "/experiments",
        Some(serde_json::json!({"experimentTemplateId": tid, "clientToken": token})),
    )
    .await?;
    let id = started["experiment"]["id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    println!("experiment {id} (template {tid}) started");
    if no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let mut last = String::new();
    loop {
        let e = fis(ep, "GET", &format!("/experiments/{id}"), None).await?;
        let state = &e["experiment"]["state"];
        let status = state["status"].as_str().unwrap_or("").to_owned();
        if status != last {
            let reason = state["reason"].as_str().unwrap_or("");
            println!(
                "experiment {id}: {status}{}",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({reason})")
                }
            );
            last = status.clone();
        }
        match status.as_str() {
            "completed" => return Ok(ExitCode::SUCCESS),
            "stopped" | "failed" => return Ok(ExitCode::FAILURE),
            _ => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
}
