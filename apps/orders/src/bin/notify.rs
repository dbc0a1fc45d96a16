//! notify: `POST /notify` (lambda_http, REST API). The order, stamped with API Gateway's
//! request id as its correlation id, goes on the pipeline's bus as one PutEvents entry.

use aws_config::BehaviorVersion;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use lambda_http::request::RequestContext;
use lambda_http::{run, service_fn, Body, Error, Request, RequestExt, Response};
use orders::edge::{json_response, now_ms, or_exit};
use orders::notify::{self, ApiError, EntryResult};

struct Notify {
    events: Client,
    bus: String,
}

/// API Gateway's request id, else (invoked some other way) Lambda's.
fn correlation_id(req: &Request) -> String {
    let from_api = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.request_id.clone(),
        Some(RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
        _ => None,
    };
    from_api
        .filter(|id| !id.is_empty())
        .or_else(|| req.lambda_context_ref().map(|c| c.request_id.clone()))
        .unwrap_or_default()
}

impl Notify {
    async fn handle(&self, req: Request) -> Response<Body> {
        let id = correlation_id(&req);
        match self.accept(&req, &id).await {
            Ok(()) => {
                println!("{}", notify::accepted_line(&id, now_ms()));
                json_response(200, &notify::accepted_body(&id))
            }
            Err(e) => {
                println!("{}", notify::rejected_line(&id, &e, now_ms()));
                json_response(e.status, &e.body())
            }
        }
    }

    async fn accept(&self, req: &Request, id: &str) -> Result<(), ApiError> {
        let order = notify::prepare(req.body().as_ref(), id)?;
        let detail = serde_json::Value::Object(order).to_string();
        let mut entry = PutEventsRequestEntry::builder()
            .source(notify::SOURCE)
            .detail_type(notify::DETAIL_TYPE)
            .event_bus_name(&self.bus)
            .detail(detail);
        if let Some(trace) = req
            .lambda_context_ref()
            .and_then(|c| c.xray_trace_id.clone())
        {
            entry = entry.trace_header(trace);
        }
        let out = self
            .events
            .put_events()
            .entries(entry.build())
            .send()
            .await
            .map_err(|e| notify::bus_unavailable(&DisplayErrorContext(&e).to_string()))?;
        let entries: Vec<EntryResult> = out
            .entries()
            .iter()
            .map(|e| EntryResult {
                event_id: e.event_id().map(str::to_owned),
                error_code: e.error_code().map(str::to_owned),
                error_message: e.error_message().map(str::to_owned),
            })
            .collect();
        notify::check_put_events(out.failed_entry_count(), &entries).map(|_| ())
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let bus = or_exit(
        "notify",
        std::env::var("EVENT_BUS_NAME")
            .ok()
            .filter(|b| !b.trim().is_empty())
            .ok_or("EVENT_BUS_NAME is not set"),
    );
    // Once per environment. Region, credentials and (on nimbus) AWS_ENDPOINT_URL come from the
    // environment; HTTPS is rustls on ring, like reqwest's.
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await;
    let notify = &*Box::leak(Box::new(Notify {
        events: Client::new(&config),
        bus,
    }));
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(notify.handle(req).await)
    }))
    .await
}
