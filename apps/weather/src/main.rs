//! The weather function's entry point: configuration from the environment, the cache chosen
//! once per environment, then the Lambda runtime loop.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::{run, service_fn, Error, Request};
use weather::cache::Store;
use weather::config::Config;
use weather::service::{warn, Clock, Service, SystemClock};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = match Config::from_vars(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("weather: bad configuration: {e}");
            std::process::exit(2);
        }
    };
    let store = match &config.redis_url {
        None => Store::memory(config.stale_ttl),
        Some(url) => match Store::redis(url.expose(), Duration::from_secs(1)).await {
            Ok(s) => s,
            // A cache outage must not take the API down: this environment caches locally.
            // The URL is not shown: it may hold a password.
            Err(e) => {
                warn(&format!(
                    "REDIS_URL unreachable, caching in memory instead: {e}"
                ));
                Store::memory(config.stale_ttl)
            }
        },
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let service = Arc::new(Service::new(config, store, clock.clone()));
    run(service_fn(move |req: Request| {
        let (service, clock) = (service.clone(), clock.clone());
        async move { Ok::<_, Error>(weather::handler::handle(&service, clock.now_ms(), req).await) }
    }))
    .await
}
