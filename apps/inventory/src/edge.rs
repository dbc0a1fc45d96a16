//! What the three `src/bin/` programs share at their edge with the world: their configuration
//! from the environment and the AWS SDK's. The rest of the crate stays free of I/O.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// A required environment variable, or exit status 2 with the reason: a function that cannot
/// be configured fails its init, as on Lambda.
pub fn required_env(function: &str, name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| {
            eprintln!("{function}: bad configuration: {name} is not set");
            std::process::exit(2)
        })
}

/// The SDK's configuration, once per environment. Region, credentials and (on nimbus)
/// `AWS_ENDPOINT_URL` come from the environment; HTTPS is rustls on ring.
pub async fn aws_config() -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}
