//! End-to-end tests: a real `nimbus up`, real function processes built with the unmodified
//! `lambda_runtime` crate, and plain HTTP clients speaking the Lambda Invoke API.

mod cli;
mod gateway;
mod gateway_auth;
mod gateway_services;
mod harness;
mod invoke;
mod lifecycle;
