//! The weather API's function: `GET /weather?city=NAME[&country=ISO2][&units=metric|imperial]`,
//! `GET /weather/{city}` and `GET /openapi.json`, behind API Gateway, built with the unmodified
//! `lambda_http` crate.
//!
//! Pure policy (validation, provider mapping, retry, circuit breaker, cache freshness, the
//! telemetry line) lives in its own modules, tested without sockets or clocks; [`service`] and
//! [`handler`] are the I/O around them.

pub mod breaker;
pub mod cache;
pub mod config;
pub mod error;
pub mod handler;
pub mod model;
pub mod provider;
pub mod request;
pub mod retry;
pub mod service;
pub mod singleflight;
pub mod telemetry;
pub mod upstream;

/// The OpenAPI 3 description served at `/openapi.json`; the tests check real responses
/// against it.
pub const OPENAPI: &str = include_str!("../openapi.json");
