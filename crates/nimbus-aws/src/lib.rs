//! The AWS APIs nimbus serves on its one endpoint, so the AWS CLI, boto3 and the AWS SDKs work
//! against it with `--endpoint-url`. So far: Lambda's Invoke, ListFunctions, GetFunction and
//! GetFunctionConfiguration (restJson1).

mod error;
mod lambda;

pub use error::AwsError;
pub use lambda::router as lambda_router;

use axum::Router;
use nimbus_lambda::Platform;

/// Every AWS API nimbus serves, as one router for the AWS endpoint.
pub fn router(platform: Platform) -> Router {
    lambda_router(platform).fallback(error::unknown_operation)
}
