//! API Gateway in front of nimbus's functions: REST APIs (payload 1.0) and HTTP APIs (1.0 and
//! 2.0), as the template declares them. The only crate that knows API Gateway event shapes.

pub mod admission;
pub mod auth;
mod authorize;
mod authorizers;
pub mod cache;
pub mod cfn;
pub mod config;
pub mod cors;
pub mod event;
pub mod gateway_responses;
pub mod integration;
pub mod listener;
pub mod openapi;
pub mod outbound;
pub mod response;
pub mod server;
pub mod service;

use std::collections::BTreeMap;

use bytes::Bytes;

/// Which flavour of API Gateway an API is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    /// `AWS::Serverless::Api` / `Api` events: API Gateway REST APIs.
    Rest,
    /// `AWS::Serverless::HttpApi` / `HttpApi` events: API Gateway HTTP APIs.
    Http,
}

/// The Lambda proxy integration's payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadVersion {
    V1,
    V2,
}

/// An HTTP request as the gateway received it, before any function is involved.
#[derive(Debug, Clone, Default)]
pub struct GatewayRequest {
    /// Upper-case, e.g. `GET`.
    pub method: String,
    /// The path as received, percent-encoded, without the query string, e.g. `/items/a%20b`.
    pub raw_path: String,
    /// The query string as received, without `?` (may be empty).
    pub raw_query: String,
    /// Header names lower-case (HTTP/1.1 as parsed by hyper), values as received, in order,
    /// repeated names kept as separate entries.
    pub headers: Vec<(String, String)>,
    /// The header names as the client wrote them (see `listener`), when known: REST APIs
    /// hand functions these.
    pub header_names: Vec<String>,
    pub body: Bytes,
    pub source_ip: String,
    /// E.g. `HTTP/1.1`.
    pub protocol: String,
}

/// Which route a request matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedRoute {
    /// REST: the resource path template, e.g. `/items/{id}`. HTTP API: the route key, e.g.
    /// `GET /items/{id}` or `$default`.
    pub route_key: String,
    /// The resource path template, e.g. `/items/{id}` or `/{proxy+}` (`/` for `$default`... see
    /// event.rs for what each payload puts where).
    pub resource_path: String,
    /// Decoded path parameters by name (`proxy` for `{proxy+}`).
    pub path_parameters: BTreeMap<String, String>,
}

/// What the gateway knows about the request besides the HTTP message.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub account_id: String,
    pub api_id: String,
    pub stage: String,
    pub stage_variables: BTreeMap<String, String>,
    /// The API Gateway request id (a UUID).
    pub request_id: String,
    /// `Host` as the client sent it, e.g. `127.0.0.1:3000`.
    pub domain_name: String,
    /// Milliseconds since the Unix epoch when the request arrived.
    pub request_time_epoch_ms: u64,
    /// REST: the API key the caller presented (`x-api-key`), when the method requires one.
    pub api_key: Option<String>,
    /// REST: the id of that API key.
    pub api_key_id: Option<String>,
    /// Whatever an authorizer produced, placed in `requestContext.authorizer` (REST) or
    /// `requestContext.authorizer` (HTTP API). `None`: no authorizer ran.
    pub authorizer: Option<serde_json::Value>,
    /// Content types the REST API treats as binary (`BinaryMediaTypes`), e.g. `image/png`,
    /// `*/*`.
    pub binary_media_types: Vec<String>,
}

/// An HTTP response for the client.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatewayResponse {
    pub status: u16,
    /// Names as the function gave them; repeated names are separate entries.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}
