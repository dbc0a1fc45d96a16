//! A Lambda function for nimbus's own tests, built with the unmodified `lambda_runtime` crate.
//! The payload's `action` picks a behaviour; `TESTFN_INIT` picks one for the init phase.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, ctx) = event.into_parts();
    let action = payload["action"].as_str().unwrap_or("echo");
    match action {
        "echo" => Ok(json!({
            "event": payload,
            "request_id": ctx.request_id,
            "deadline_ms": ctx.deadline,
            "arn": ctx.invoked_function_arn,
            "trace_id": ctx.xray_trace_id,
            "client_context": ctx.client_context.map(|c| json!({"custom": c.custom, "env": c.environment})),
            "env": {
                "name": std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
                "memory": std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").ok(),
                "version": std::env::var("AWS_LAMBDA_FUNCTION_VERSION").ok(),
                "region": std::env::var("AWS_REGION").ok(),
                "endpoint": std::env::var("AWS_ENDPOINT_URL").ok(),
                "log_group": std::env::var("AWS_LAMBDA_LOG_GROUP_NAME").ok(),
                "init_type": std::env::var("AWS_LAMBDA_INITIALIZATION_TYPE").ok(),
                "tmpdir": std::env::var("TMPDIR").ok(),
                "custom": std::env::var("CUSTOM").ok(),
            },
            "pid": std::process::id(),
        })),
        "error" => Err("something went wrong".into()),
        "panic" => panic!("kaboom"),
        "sleep" => {
            let ms = payload["ms"].as_u64().unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json!({"slept_ms": ms, "pid": std::process::id()}))
        }
        "exit" => {
            println!("exiting on purpose");
            std::process::exit(payload["code"].as_i64().unwrap_or(1) as i32)
        }
        "alloc" => {
            // Touch every page so the memory is resident, then hold it.
            let mb = payload["mb"].as_u64().unwrap_or(256) as usize;
            let block = vec![1u8; mb * 1024 * 1024];
            tokio::time::sleep(Duration::from_millis(
                payload["hold_ms"].as_u64().unwrap_or(1000),
            ))
            .await;
            Ok(
                json!({"allocated_mb": mb, "checksum": block.iter().step_by(4096).map(|b| *b as u64).sum::<u64>()}),
            )
        }
        "big" => {
            let bytes = payload["bytes"].as_u64().unwrap_or(7 * 1024 * 1024) as usize;
            Ok(Value::String("x".repeat(bytes)))
        }
        "print" => {
            for line in payload["lines"].as_array().into_iter().flatten() {
                println!("{}", line.as_str().unwrap_or_default());
            }
            Ok(json!({"printed": true}))
        }
        "spawn" => {
            // A grandchild that would outlive a careless platform.
            let child = std::process::Command::new("sleep").arg("300").spawn()?;
            Ok(json!({"child_pid": child.id(), "pid": std::process::id()}))
        }
        other => Err(format!("unknown action {other}").into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    match std::env::var("TESTFN_INIT").as_deref() {
        Ok("fail") => {
            eprintln!("init failed on purpose");
            std::process::exit(3);
        }
        Ok("hang") => tokio::time::sleep(Duration::from_secs(3600)).await,
        _ => {}
    }
    lambda_runtime::run(service_fn(handler)).await
}
