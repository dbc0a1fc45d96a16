//! The `lambda_http` side: which route was called, the request's parameters and deadline in,
//! the HTTP response and the request's log line out.

use std::time::Instant;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

use crate::error::ApiError;
use crate::request::validate;
use crate::service::Service;
use crate::telemetry::{line, CacheOutcome, RequestRecord, UpstreamStats};

/// When no Lambda context came with the request (never on Lambda): this long to answer.
const DEFAULT_BUDGET_MS: u64 = 3_000;

/// The route template that matched: API Gateway's resource (REST) or route key (HTTP API),
/// which do not depend on stages or custom domain mappings the way the path does.
fn route(req: &Request) -> String {
    let from_context = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.resource_path.clone(),
        Some(RequestContext::ApiGatewayV2(c)) => c
            .route_key
            .as_deref()
            .map(|k| k.split_once(' ').map_or(k, |(_, path)| path).to_owned()),
        _ => None,
    };
    from_context.unwrap_or_else(|| req.uri().path().to_owned())
}

pub async fn handle(service: &Service, clock_now_ms: u64, req: Request) -> Response<Body> {
    let started = Instant::now();
    let route = route(&req);
    let query = req.query_string_parameters_ref();
    let q = |name: &str| query.and_then(|m| m.first(name));
    let (request_id, deadline_ms) = match req.lambda_context_ref() {
        Some(c) => (c.request_id.clone(), c.deadline),
        None => (String::new(), clock_now_ms + DEFAULT_BUDGET_MS),
    };
    let api_request_id = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.request_id.clone(),
        Some(RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
        _ => None,
    };

    let mut cache = CacheOutcome::Bypass;
    let mut upstream = UpstreamStats::default();
    let mut fresh_for = None;
    let mut validated = None;
    let result: Result<(serde_json::Value, &str), ApiError> = match route.as_str() {
        "/openapi.json" => serde_json::from_str(crate::OPENAPI)
            .map(|doc| (doc, "application/json"))
            .map_err(|e| ApiError::new(500, "internal", format!("openapi.json: {e}"))),
        "/weather" | "/weather/{city}" => {
            let city = match route.as_str() {
                "/weather" => q("city").map(str::to_owned),
                _ => req
                    .path_parameters_ref()
                    .and_then(|p| p.first("city"))
                    .map(str::to_owned),
            };
            match validate(city.as_deref(), q("country"), q("units")) {
                Err(e) => Err(e),
                Ok(wq) => {
                    let outcome = service.weather(&wq, deadline_ms).await;
                    validated = Some(wq);
                    cache = outcome.cache;
                    upstream = outcome.upstream;
                    fresh_for = outcome.fresh_for;
                    outcome.result.map(|v| (v, "application/json"))
                }
            }
        }
        other => Err(ApiError::new(
            404,
            "not_found",
            format!("no route {other}; see /openapi.json"),
        )),
    };

    let (status, body, content_type, error) = match &result {
        Ok((v, ct)) => (200, v.to_string(), *ct, None),
        Err(e) => (e.status, e.body().to_string(), "application/json", Some(e)),
    };
    let mut resp = Response::builder()
        .status(status)
        .header("content-type", content_type);
    if cache != CacheOutcome::Bypass && error.is_none() {
        resp = resp.header("x-cache", cache.as_str().to_uppercase());
    }
    resp = match (error, fresh_for) {
        (Some(e), _) => if let Some(secs) = e.retry_after {
            resp.header("retry-after", secs.to_string())
        } else {
            resp
        }
        .header("cache-control", "no-store"),
        (None, Some(secs)) => resp.header("cache-control", format!("max-age={secs}")),
        (None, None) => resp,
    };

    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let record = RequestRecord {
        timestamp_ms: clock_now_ms,
        request_id: &request_id,
        api_request_id: api_request_id.as_deref(),
        route: &route,
        city: validated.as_ref().map(|w| w.city.as_str()),
        country: validated.as_ref().and_then(|w| w.country.as_deref()),
        units: validated.as_ref().map(|w| w.units.as_str()),
        status,
        error_code: error.map(|e| e.code),
        cache,
        provider: service.provider(),
        upstream,
        latency_ms,
    };
    // Weather routes report metrics; the document route would only skew them.
    if route != "/openapi.json" {
        println!("{}", line(service.metrics_namespace(), &record));
    }
    resp.body(Body::Text(body))
        .expect("static header names and values are valid")
}
