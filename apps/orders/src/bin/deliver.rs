//! deliver: orders from the bus to the slow downstream API (lambda_runtime). Invoked either
//! asynchronously by an EventBridge rule (one event) or by an SQS event source mapping (a
//! batch of records, answered with `batchItemFailures`); see `orders::deliver`.

use std::time::{Duration, Instant};

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use orders::deliver::{self, Attempt, Config, Effects, Order};
use serde_json::Value;

/// The real world: reqwest (rustls), tokio's timer, the system clock and `rand`.
struct Live {
    http: reqwest::Client,
    cfg: Config,
}

impl Effects for Live {
    async fn post(&self, order: &Order, timeout_ms: u64) -> Attempt {
        let started = Instant::now();
        let body = match serde_json::to_vec(&order.body) {
            Ok(b) => b,
            Err(e) => return Attempt::Failed(format!("could not write the order: {e}")),
        };
        let send = self
            .http
            .post(&self.cfg.url)
            .header("x-api-key", self.cfg.api_key.expose())
            .header("x-correlation-id", &order.correlation_id)
            .header("content-type", "application/json")
            .body(body)
            .send();
        let timeout = Duration::from_millis(timeout_ms);
        match tokio::time::timeout(timeout, send).await {
            Err(_) => Attempt::TimedOut {
                after_ms: timeout_ms,
            },
            Ok(Err(e)) if e.is_timeout() => Attempt::TimedOut {
                after_ms: timeout_ms,
            },
            Ok(Err(e)) => Attempt::Failed(deliver::describe(&e.without_url())),
            Ok(Ok(resp)) => {
                let status = resp.status().as_u16();
                // Read the (small) answer so the connection can be reused; the status is
                // what counts, whatever happens to the body.
                let left = timeout.saturating_sub(started.elapsed());
                let _ = tokio::time::timeout(left, resp.bytes()).await;
                Attempt::Status(status)
            }
        }
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await
    }

    fn now_ms(&self) -> u64 {
        orders::edge::now_ms()
    }

    fn random(&self) -> f64 {
        rand::random::<f64>()
    }

    fn log(&self, line: String) {
        println!("{line}");
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cfg = orders::edge::or_exit("deliver", Config::from_vars(&|k| std::env::var(k).ok()));
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(cfg.retry.attempt_timeout_ms))
        .build()?;
    let live = &*Box::leak(Box::new(Live { http, cfg }));
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline_ms = Some(event.context.deadline);
        deliver::handle(live, &live.cfg.retry, event.payload, deadline_ms).await
    }))
    .await
}
