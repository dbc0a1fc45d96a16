//! status-counter: keeps the number of cars per status from the bus's car events
//! (lambda_runtime, invoked by an EventBridge rule). Each change is one atomic `ADD` on the
//! counts table, so concurrent events never lose an update.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use inventory::events;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

struct Counter {
    db: Client,
    counts: String,
}

impl Counter {
    async fn handle(&self, event: Value) -> Result<Value, Error> {
        let detail_type = event["detail-type"].as_str().unwrap_or_default();
        let changes = events::status_changes(detail_type, &event["detail"]);
        for (status, delta) in &changes {
            self.db
                .update_item()
                .table_name(&self.counts)
                .key("status", AttributeValue::S(status.clone()))
                .update_expression("ADD #c :d")
                .expression_attribute_names("#c", "count")
                .expression_attribute_values(":d", AttributeValue::N(delta.to_string()))
                .send()
                .await
                // A failed invocation is retried by Lambda's asynchronous invocation.
                .map_err(|e| format!("counts table: {}", DisplayErrorContext(&e)))?;
        }
        println!(
            "{}",
            json!({"event": "counted", "detail_type": detail_type, "changes": changes.len()})
        );
        Ok(json!({}))
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let counts = inventory::edge::required_env("status-counter", "COUNTS_TABLE");
    let config = inventory::edge::aws_config().await;
    let counter = &*Box::leak(Box::new(Counter {
        db: Client::new(&config),
        counts,
    }));
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        counter.handle(event.payload).await
    }))
    .await
}
