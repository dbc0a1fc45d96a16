//! slow-api: `POST /slow` (lambda_http, REST API behind an API key and a usage plan). Fails
//! at once with probability FAILURE_RATE, else answers after a random delay.

use std::time::Duration;

use lambda_http::{run, service_fn, Body, Error, Request, Response};
use orders::edge::{json_response, now_ms, or_exit};
use orders::slow::{self, Config, Decision};

async fn handle(cfg: &Config, req: Request) -> Response<Body> {
    let id = req
        .headers()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let decision = slow::decide(rand::random::<f64>(), cfg);
    let delay_ms = match decision {
        Decision::Fail => 0,
        Decision::Delay(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        }
    };
    let (status, body) = slow::answer(decision, id.as_deref());
    println!(
        "{}",
        slow::call_line(id.as_deref(), status, delay_ms, now_ms())
    );
    json_response(status, &body)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cfg = or_exit("slow-api", Config::from_vars(&|k| std::env::var(k).ok()));
    let cfg = &cfg;
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(handle(cfg, req).await)
    }))
    .await
}
