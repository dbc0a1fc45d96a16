//! The order-notification pipeline's three functions, as pure policy: what each one decides,
//! answers and logs, tested without sockets or clocks. The `src/bin/` programs do the I/O
//! (lambda_http / lambda_runtime, the AWS SDK, reqwest, the clock and the random source).
//!
//! - [`notify`]: `POST /notify` validates an order, stamps it with a correlation id and puts
//!   it on the pipeline's EventBridge bus.
//! - [`deliver`]: takes orders from the bus (an EventBridge event, or an SQS batch of them)
//!   and posts each to the slow downstream API, with retries.
//! - [`slow`]: the slow, flaky downstream API itself.

pub mod config;
pub mod deliver;
pub mod edge;
pub mod log;
pub mod notify;
pub mod slow;
