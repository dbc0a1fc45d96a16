//! car-events: the cars table's stream to the inventory bus (lambda_runtime). Each record
//! becomes one `CarCreated` / `CarUpdated` / `CarDeleted` event, in the stream's order; a
//! record whose event the bus did not take is reported in `batchItemFailures`, so Lambda retries
//! from it and the events after it are not published ahead of it.

use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use inventory::events::{self, CarEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// PutEvents takes at most 10 entries a call.
const PUT_EVENTS_MAX: usize = 10;

struct Publisher {
    events: Client,
    bus: String,
}

impl Publisher {
    async fn handle(&self, event: Value) -> Value {
        let records = event["Records"].as_array().cloned().unwrap_or_default();
        let mut parsed: Vec<CarEvent> = Vec::new();
        for r in &records {
            match events::from_record(r) {
                Ok(e) => parsed.push(e),
                // Not a car change: nothing to publish, and retrying will not help.
                Err(why) => eprintln!("car-events: skipping a record: {why}"),
            }
        }
        for chunk in parsed.chunks(PUT_EVENTS_MAX) {
            if let Some(failed) = self.publish(chunk).await {
                return json!({"batchItemFailures": [{"itemIdentifier": failed}]});
            }
        }
        println!("{}", json!({"event": "published", "count": parsed.len()}));
        json!({"batchItemFailures": []})
    }

    /// Puts `chunk` on the bus; the sequence number of the first event it did not take.
    async fn publish(&self, chunk: &[CarEvent]) -> Option<String> {
        let entries = chunk
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .source(events::SOURCE)
                    .detail_type(e.detail_type)
                    .event_bus_name(&self.bus)
                    .detail(e.detail.to_string())
                    .build()
            })
            .collect::<Vec<_>>();
        match self
            .events
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
        {
            Err(e) => {
                eprintln!("car-events: PutEvents failed: {}", DisplayErrorContext(&e));
                Some(chunk[0].sequence_number.clone())
            }
            Ok(out) => out
                .entries()
                .iter()
                .zip(chunk)
                .find(|(r, _)| r.error_code().is_some())
                .map(|(r, e)| {
                    eprintln!(
                        "car-events: the bus refused {}: {} {}",
                        e.detail_type,
                        r.error_code().unwrap_or_default(),
                        r.error_message().unwrap_or_default()
                    );
                    e.sequence_number.clone()
                }),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let bus = inventory::edge::required_env("car-events", "EVENT_BUS_NAME");
    let config = inventory::edge::aws_config().await;
    let publisher = &*Box::leak(Box::new(Publisher {
        events: Client::new(&config),
        bus,
    }));
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(publisher.handle(event.payload).await)
    }))
    .await
}
