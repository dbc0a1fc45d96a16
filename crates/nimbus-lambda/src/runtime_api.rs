//! The Lambda Runtime API (2018-06-01), one server per execution environment.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;

use crate::env::{epoch_ms, Current, EnvShared, EnvStatus, Failure, RuntimeResult};
use crate::MAX_SYNC_PAYLOAD;

const FINISHED_REMEMBERED: usize = 16;
/// Error bodies posted by a runtime are capped: they end up in responses and logs.
const MAX_ERROR_BODY: usize = 1024 * 1024;

pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<EnvShared>) {
    let _ = axum::serve(listener, router(shared)).await;
}

pub(crate) fn router(shared: Arc<EnvShared>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .fallback(unknown_path)
        .with_state(shared)
}

fn api_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        nimbus_core::report::error_body(message, error_type),
    )
        .into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json")],
        r#"{"status":"OK"}"#,
    )
        .into_response()
}

async fn unknown_path(uri: axum::http::Uri) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "UnknownPath",
        &format!(
            "{} is not a Runtime API path; the runtime should use /2018-06-01/runtime/invocation/next, /invocation/{{id}}/response, /invocation/{{id}}/error or /init/error",
            uri.path()
        ),
    )
}

async fn next(State(shared): State<Arc<EnvShared>>) -> Response {
    let init = shared.spawned_at.elapsed();
    shared.status.send_if_modified(|s| {
        if *s == EnvStatus::Starting {
            *s = EnvStatus::Ready { init };
            true
        } else {
            false
        }
    });
    let dispatch = {
        let mut requests = shared.requests.lock().await;
        requests.recv().await
    };
    let Some(dispatch) = dispatch else {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            "the environment is shutting down",
        );
    };
    let deadline = epoch_ms() + dispatch.timeout.as_millis() as u64;
    {
        let mut state = shared.state.lock().expect("env state poisoned");
        state.current = Some(Current {
            request_id: dispatch.request_id.clone(),
            result_tx: Some(dispatch.result_tx),
        });
    }
    *shared.started.lock().expect("started poisoned") = Some(dispatch.request_id.as_str().into());
    let _ = dispatch.started_tx.send(Instant::now());
    if !dispatch.delay.is_zero() {
        tokio::time::sleep(dispatch.delay).await;
    }

    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    put("lambda-runtime-aws-request-id", &dispatch.request_id);
    put("lambda-runtime-deadline-ms", &deadline.to_string());
    put("lambda-runtime-invoked-function-arn", &dispatch.invoked_arn);
    put("lambda-runtime-trace-id", &dispatch.trace_header);
    if let Some(cc) = &dispatch.client_context {
        put("lambda-runtime-client-context", cc);
    }
    put("content-type", "application/json");
    (StatusCode::OK, headers, dispatch.payload).into_response()
}

/// Why a `/response` or `/error` for a request id is refused.
enum Rejection {
    /// The invocation already has a response or an error: 403.
    AlreadyDone,
    /// Not the invocation in progress: 400.
    NotCurrent,
}

impl Rejection {
    fn into_response(self, id: &str) -> Response {
        match self {
            Self::AlreadyDone => api_error(
                StatusCode::FORBIDDEN,
                "InvalidStateTransition",
                &format!("invocation {id} already has a response or an error"),
            ),
            Self::NotCurrent => api_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestID",
                &format!("request id {id} is not the invocation in progress"),
            ),
        }
    }
}

/// Takes the pending result sender for `id`, or says why not.
fn complete(
    shared: &EnvShared,
    id: &str,
) -> Result<tokio::sync::oneshot::Sender<RuntimeResult>, Rejection> {
    let mut state = shared.state.lock().expect("env state poisoned");
    if state.current.as_ref().is_some_and(|c| c.request_id == id) {
        let tx = state.current.take().and_then(|mut c| c.result_tx.take());
        state.finished.push_back(id.to_owned());
        if state.finished.len() > FINISHED_REMEMBERED {
            state.finished.pop_front();
        }
        tx.ok_or(Rejection::AlreadyDone)
    } else if state.finished.iter().any(|f| f == id) {
        Err(Rejection::AlreadyDone)
    } else {
        Err(Rejection::NotCurrent)
    }
}

enum ReadError {
    TooLarge,
    /// The runtime went away mid-body, or sent a malformed one.
    Broken,
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ReadError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = e
            .into_inner()
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some();
        if too_large {
            ReadError::TooLarge
        } else {
            ReadError::Broken
        }
    })
}

fn broken_body() -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestBody",
        "the request body could not be read",
    )
}

async fn response(
    State(shared): State<Arc<EnvShared>>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    match read_limited(body, MAX_SYNC_PAYLOAD).await {
        Ok(bytes) => match complete(&shared, &id) {
            Ok(tx) => {
                let _ = tx.send(RuntimeResult::Response(bytes));
                accepted()
            }
            Err(rejection) => rejection.into_response(&id),
        },
        Err(ReadError::TooLarge) => {
            if let Ok(tx) = complete(&shared, &id) {
                let _ = tx.send(RuntimeResult::TooLarge);
            }
            api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("Exceeded maximum allowed payload size ({MAX_SYNC_PAYLOAD} bytes)."),
            )
        }
        Err(ReadError::Broken) => broken_body(),
    }
}

fn error_type(headers: &HeaderMap) -> String {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("Runtime.Unknown")
        .to_owned()
}

/// A runtime may post anything as its error; the caller must still get Lambda's error shape.
fn normalise_error_body(bytes: Bytes, error_type: &str) -> Bytes {
    let is_object = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map(|v| v.is_object())
        .unwrap_or(false);
    if is_object {
        bytes
    } else {
        let text = String::from_utf8_lossy(&bytes);
        Bytes::from(nimbus_core::report::error_body(&text, error_type))
    }
}

async fn error(
    State(shared): State<Arc<EnvShared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let error_type = error_type(&headers);
    let (bytes, status) = match read_limited(body, MAX_ERROR_BODY).await {
        Ok(bytes) => (bytes, None),
        // The invocation still ends now, with what can be said about the error.
        Err(ReadError::TooLarge) => (
            Bytes::from(nimbus_core::report::error_body(
                &format!("the runtime's error document exceeded {MAX_ERROR_BODY} bytes"),
                &error_type,
            )),
            Some(StatusCode::PAYLOAD_TOO_LARGE),
        ),
        Err(ReadError::Broken) => return broken_body(),
    };
    match complete(&shared, &id) {
        Ok(tx) => {
            let body = normalise_error_body(bytes, &error_type);
            let _ = tx.send(RuntimeResult::Error(body));
            match status {
                Some(status) => api_error(
                    status,
                    "RequestEntityTooLarge",
                    &format!("error documents are limited to {MAX_ERROR_BODY} bytes"),
                ),
                None => accepted(),
            }
        }
        Err(rejection) => rejection.into_response(&id),
    }
}

async fn init_error(
    State(shared): State<Arc<EnvShared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_limited(body, MAX_ERROR_BODY).await {
        Ok(bytes) => bytes,
        Err(ReadError::TooLarge) => {
            return api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("error documents are limited to {MAX_ERROR_BODY} bytes"),
            )
        }
        Err(ReadError::Broken) => return broken_body(),
    };
    if *shared.status.borrow() != EnvStatus::Starting {
        return api_error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "init/error is only accepted before the first /next",
        );
    }
    let error_type = error_type(&headers);
    let body = normalise_error_body(bytes, &error_type);
    shared.fail(Failure::InitError { error_type, body });
    accepted()
}
