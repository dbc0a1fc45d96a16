//! API Gateway authorizers as pure functions: JWT authorizers of HTTP APIs ([`jwt`]) and
//! Lambda authorizers of both API kinds ([`lambda`]: the event to send, the answer to judge,
//! the cache key). Time is passed in; nothing here does I/O.
//!
//! Every refusal is an [`AuthError`]: its `Display` is the reason to log, and
//! [`AuthError::response`] is what API Gateway answers the client, which never says why.

pub mod jwt;
pub mod lambda;
mod policy;

pub use jwt::{verify_jwt, Jwks, JwtClaims, JwtConfig};
pub use lambda::{
    cache_key, function_error, http_v1_request_event, http_v2_request_event, identity_values,
    method_arn, rest_request_event, rest_token_event, AnswerFormat, Authorized, AuthorizerAnswer,
};

use serde_json::json;

use crate::{ApiKind, GatewayResponse};

/// Why a request was not authorized, or why its authorizer could not decide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    // --- The caller's identity is missing or unusable: 401.
    #[error("the identity source {0} is missing or empty")]
    MissingIdentity(String),
    #[error("the identity source holds no token")]
    MissingToken,
    #[error("the token is not a JWT: {0}")]
    Malformed(String),
    #[error("the token is signed with {0}, and JWT authorizers accept only RSA-based algorithms (RS256, RS384, RS512)")]
    UnsupportedAlgorithm(String),
    #[error("the token has no kid header")]
    MissingKid,
    #[error("the issuer's JWKS has no key with kid {0:?}")]
    UnknownKid(String),
    #[error("the key {kid:?} cannot verify {alg} signatures")]
    KeyMismatch { kid: String, alg: String },
    #[error("the token does not have a valid signature")]
    BadSignature,
    #[error("the token does not have a valid issuer: expected {expected:?}, got {found:?}")]
    IssuerMismatch {
        expected: String,
        found: Option<String>,
    },
    #[error("the token does not have a valid audience")]
    AudienceMismatch,
    #[error("the token has no exp claim")]
    MissingExpiry,
    #[error("the token has expired (exp {exp}, now {now})")]
    Expired { exp: String, now: u64 },
    #[error("the token is not valid yet (nbf {nbf}, now {now})")]
    NotYetValid { nbf: String, now: u64 },
    #[error("the token was issued in the future (iat {iat}, now {now})")]
    IssuedInFuture { iat: String, now: u64 },
    /// The authorizer function failed with the message `Unauthorized`.
    #[error("the authorizer answered Unauthorized")]
    Unauthorized,

    // --- The caller is known and not allowed: 403.
    #[error("the token has none of the route's scopes {required:?} (it has {found:?})")]
    InsufficientScope {
        required: Vec<String>,
        found: Vec<String>,
    },
    #[error("the authorizer's policy denies {0} explicitly")]
    ExplicitDeny(String),
    /// No statement allows the method, or a simple response said `isAuthorized: false`.
    #[error("the authorizer does not allow {0}")]
    NotAllowed(String),

    // --- The authorizer is broken: 500.
    #[error("the JWKS is not valid: {0}")]
    InvalidJwks(String),
    #[error("the identity source {0:?} is not one nimbus can read")]
    UnsupportedIdentitySource(String),
    #[error("the authorizer's answer is malformed: {0}")]
    MalformedAnswer(String),
    #[error(
        "the authorizer's context value {0:?} is an object or an array, which REST APIs refuse"
    )]
    ContextValueNotAllowed(String),
    #[error("the authorizer function failed: {0}")]
    AuthorizerFailed(String),
}

impl AuthError {
    /// The HTTP status API Gateway answers with.
    pub fn status(&self) -> u16 {
        use AuthError::*;
        match self {
            MissingIdentity(_)
            | MissingToken
            | Malformed(_)
            | UnsupportedAlgorithm(_)
            | MissingKid
            | UnknownKid(_)
            | KeyMismatch { .. }
            | BadSignature
            | IssuerMismatch { .. }
            | AudienceMismatch
            | MissingExpiry
            | Expired { .. }
            | NotYetValid { .. }
            | IssuedInFuture { .. }
            | Unauthorized => 401,
            InsufficientScope { .. } | ExplicitDeny(_) | NotAllowed(_) => 403,
            InvalidJwks(_)
            | UnsupportedIdentitySource(_)
            | MalformedAnswer(_)
            | ContextValueNotAllowed(_)
            | AuthorizerFailed(_) => 500,
        }
    }

    /// API Gateway's answer to the client: REST APIs' default gateway responses (with
    /// `x-amzn-errortype`) or HTTP APIs' fixed bodies, plus the `www-authenticate` challenge
    /// HTTP APIs add when a JWT is refused.
    pub fn response(&self, kind: ApiKind) -> GatewayResponse {
        let status = self.status();
        let (error_type, rest_message) = match (status, self) {
            (401, _) => ("UnauthorizedException", json!("Unauthorized")),
            (403, AuthError::ExplicitDeny(_)) => (
                "AccessDeniedException",
                json!("User is not authorized to access this resource with an explicit deny"),
            ),
            (403, _) => (
                "AccessDeniedException",
                json!("User is not authorized to access this resource"),
            ),
            // REST's AUTHORIZER_CONFIGURATION_ERROR / AUTHORIZER_FAILURE responses render a
            // null `$context.error.messageString`.
            _ => ("AuthorizerConfigurationException", serde_json::Value::Null),
        };
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        let message = match kind {
            ApiKind::Rest => {
                headers.push(("x-amzn-errortype".into(), error_type.into()));
                rest_message
            }
            ApiKind::Http => {
                if let Some(challenge) = self.bearer_challenge() {
                    headers.push(("www-authenticate".into(), challenge));
                }
                json!(match status {
                    401 => "Unauthorized",
                    403 => "Forbidden",
                    _ => "Internal Server Error",
                })
            }
        };
        // REST's ACCESS_DENIED gateway response spells its key `Message`, unlike the others.
        let key = if kind == ApiKind::Rest && status == 403 {
            "Message"
        } else {
            "message"
        };
        GatewayResponse {
            status,
            headers,
            body: json!({ key: message }).to_string().into_bytes(),
        }
    }

    /// The RFC 6750 challenge of an HTTP API JWT refusal, in the form AWS's troubleshooting
    /// guide shows: `Bearer scope="" error="invalid_token" error_description="..."`. Only the
    /// audience wording is AWS's own; the others follow it. The descriptions are fixed texts:
    /// a header must not echo what the token carried.
    fn bearer_challenge(&self) -> Option<String> {
        use AuthError::*;
        let description = match self {
            InsufficientScope { required, .. } => {
                return Some(format!(
                    "Bearer scope=\"{}\" error=\"insufficient_scope\" error_description=\"the token does not have the required scopes\"",
                    required.join(" ")
                ))
            }
            Malformed(_) => "the token is not a valid JWT",
            UnsupportedAlgorithm(_) => "the token's signing algorithm is not supported",
            MissingKid => "the token has no kid header",
            UnknownKid(_) | KeyMismatch { .. } => "the token's key is not in the issuer's JWKS",
            BadSignature => "the token does not have a valid signature",
            IssuerMismatch { .. } => "the token does not have a valid issuer",
            AudienceMismatch => "the token does not have a valid audience",
            MissingExpiry => "the token has no exp claim",
            Expired { .. } => "the token has expired",
            NotYetValid { .. } => "the token is not valid yet",
            IssuedInFuture { .. } => "the token was issued in the future",
            _ => return None,
        };
        Some(format!(
            "Bearer scope=\"\" error=\"invalid_token\" error_description=\"{description}\""
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a GatewayResponse, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn body(r: &GatewayResponse) -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn a_refused_jwt_gets_401_and_the_challenge_aws_documents() {
        let r = AuthError::AudienceMismatch.response(ApiKind::Http);
        assert_eq!(r.status, 401);
        assert_eq!(body(&r), json!({"message": "Unauthorized"}));
        assert_eq!(
            header(&r, "www-authenticate"),
            Some(
                r#"Bearer scope="" error="invalid_token" error_description="the token does not have a valid audience""#
            )
        );
    }

    #[test]
    fn a_missing_scope_is_forbidden_and_names_the_required_scopes() {
        let e = AuthError::InsufficientScope {
            required: vec!["read".into(), "admin".into()],
            found: vec![],
        };
        let r = e.response(ApiKind::Http);
        assert_eq!(r.status, 403);
        assert_eq!(body(&r), json!({"message": "Forbidden"}));
        assert!(header(&r, "www-authenticate")
            .unwrap()
            .starts_with(r#"Bearer scope="read admin" error="insufficient_scope""#));
    }

    #[test]
    fn rest_denials_use_the_default_gateway_responses() {
        let explicit = AuthError::ExplicitDeny("arn".into()).response(ApiKind::Rest);
        assert_eq!(explicit.status, 403);
        assert_eq!(
            body(&explicit),
            json!({"Message": "User is not authorized to access this resource with an explicit deny"})
        );
        assert_eq!(
            header(&explicit, "x-amzn-errortype"),
            Some("AccessDeniedException")
        );
        let implicit = AuthError::NotAllowed("arn".into()).response(ApiKind::Rest);
        assert_eq!(
            body(&implicit),
            json!({"Message": "User is not authorized to access this resource"})
        );
        let unauthorized = AuthError::Unauthorized.response(ApiKind::Rest);
        assert_eq!(unauthorized.status, 401);
        assert_eq!(body(&unauthorized), json!({"message": "Unauthorized"}));
        assert_eq!(header(&unauthorized, "www-authenticate"), None);
    }

    #[test]
    fn a_broken_authorizer_is_a_500_with_aws_bodies() {
        let e = AuthError::MalformedAnswer("no policyDocument".into());
        let rest = e.response(ApiKind::Rest);
        assert_eq!(rest.status, 500);
        assert_eq!(body(&rest), json!({"message": null}));
        assert_eq!(
            header(&rest, "x-amzn-errortype"),
            Some("AuthorizerConfigurationException")
        );
        let http = e.response(ApiKind::Http);
        assert_eq!(body(&http), json!({"message": "Internal Server Error"}));
        assert_eq!(header(&http, "www-authenticate"), None);
    }

    #[test]
    fn challenges_do_not_echo_claim_values() {
        let e = AuthError::Expired {
            exp: "\"1\" injected=\"x".into(),
            now: 2,
        };
        let r = e.response(ApiKind::Http);
        assert!(!header(&r, "www-authenticate").unwrap().contains("injected"));
    }
}
