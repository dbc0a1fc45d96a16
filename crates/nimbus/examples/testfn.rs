//! A Lambda function for nimbus's own tests, built with the unmodified `lambda_runtime` crate.
//! The payload's `action` picks a behaviour; `TESTFN_INIT` picks one for the init phase.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, ctx) = event.into_parts();
    if payload["methodArn"].is_string() || payload["routeArn"].is_string() {
        return authorizer(payload);
    }
    if payload["requestContext"].is_object() {
        return gateway(payload, ctx).await;
    }
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

/// As a Lambda authorizer: the token (REST TOKEN) or the `authorization` header decides.
fn authorizer(event: Value) -> Result<Value, Error> {
    let token = event["authorizationToken"]
        .as_str()
        .or_else(|| event["headers"]["authorization"].as_str())
        .unwrap_or_default()
        .to_owned();
    let arn = event["methodArn"]
        .as_str()
        .or_else(|| event["routeArn"].as_str())
        .unwrap_or_default();
    if event["version"] == "2.0" && event["routeArn"].is_string() {
        // HTTP API simple response.
        return Ok(json!({"isAuthorized": token == "allow", "context": {"user": "simple-user"}}));
    }
    let effect = match token.as_str() {
        "allow" => "Allow",
        "deny" => "Deny",
        "unauthorized" => return Err("Unauthorized".into()),
        _ => return Ok(json!("not a policy")),
    };
    Ok(json!({
        "principalId": "user-42",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": arn}],
        },
        "context": {"tier": "gold", "n": 7},
        // Metered when the API's ApiKeySourceType is AUTHORIZER.
        "usageIdentifierKey": "authorizer-issued-key-0001",
    }))
}

/// Behind API Gateway: `?action=` picks the behaviour; the default echoes the event as the
/// response body.
async fn gateway(event: Value, ctx: lambda_runtime::Context) -> Result<Value, Error> {
    let query = &event["queryStringParameters"];
    let action = query["action"].as_str().unwrap_or("echo");
    match action {
        "echo" => Ok(json!({
            "statusCode": 200,
            "headers": {"content-type": "application/json", "x-seen-trace": ctx.xray_trace_id},
            "body": event.to_string(),
        })),
        "status" => Ok(json!({
            "statusCode": query["code"].as_str().and_then(|c| c.parse::<u16>().ok()).unwrap_or(200),
            "headers": {"content-type": "text/plain"},
            "multiValueHeaders": {"x-multi": ["a", "b"]},
            "body": "status",
        })),
        "sleep" => {
            let ms = query["ms"]
                .as_str()
                .and_then(|m| m.parse().ok())
                .unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json!({"statusCode": 200, "body": "slept"}))
        }
        "error" => Err("gateway function failed".into()),
        "malformed" => Ok(json!({"statusCode": "abc"})),
        "raw" => Ok(json!({"hello": "world"})),
        "binary" => Ok(json!({
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "body": "AAECAwT/",
            "isBase64Encoded": true,
        })),
        "cookies" => {
            Ok(json!({"statusCode": 201, "cookies": ["a=1; Path=/", "b=2"], "body": "cookies"}))
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
