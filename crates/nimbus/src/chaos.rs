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
                println!(
                    "fault: {} {} in {} at {} -> {} {}",
                    any("service"),
                    any("operation"),
                    any("region"),
                    r["probability"],
                    r["error"]["statusCode"],
                    r["error"]["code"].as_str().unwrap_or("")
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
