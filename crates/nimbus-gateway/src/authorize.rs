//! Running a route's authorizer, the I/O around `auth`: JWT authorizers verify against the
//! issuer's keys (a local file given with `--jwks`, or fetched once from an `http://` issuer's
//! OpenID discovery document); Lambda authorizers invoke their function through the platform.
//! Lambda authorizer answers are cached per authorizer and identity for their TTL, as API
//! Gateway does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use nimbus_lambda::InvokeRequest;
use serde_json::Value;

use crate::auth::{self, AnswerFormat, AuthError, AuthorizerAnswer, Jwks, JwtConfig};
use crate::config::{AuthorizerConfig, LambdaAuthorizerKind, RouteConfig};
use crate::server::ApiState;
use crate::{
    ApiKind, GatewayRequest, GatewayResponse, MatchedRoute, PayloadVersion, RequestContext,
};

/// How long fetched keys are trusted before they are fetched again.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// Lambda authorizers get this long to answer (API Gateway allows up to 30 s of integration
/// time; authorizers are meant to be quick).
const AUTHORIZER_TIMEOUT: Duration = Duration::from_secs(10);
/// Authorizer answers kept at most, across all authorizers of one API.
const MAX_CACHED_ANSWERS: usize = 10_000;
/// Longest identity (the authorizer's identity source values) whose answer is cached.
const MAX_CACHED_IDENTITY: usize = 4096;
/// Largest discovery document or JWKS nimbus reads.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// The signing keys of each JWT issuer.
#[derive(Default)]
pub struct JwksStore {
    /// `--jwks ISSUER=FILE`.
    files: HashMap<String, PathBuf>,
    fetched: Mutex<HashMap<String, (Instant, Arc<Jwks>)>>,
}

impl JwksStore {
    pub fn new(files: HashMap<String, PathBuf>) -> Self {
        Self {
            files,
            fetched: Mutex::new(HashMap::new()),
        }
    }

    async fn get(&self, issuer: &str) -> Result<Arc<Jwks>, AuthError> {
        if let Some((at, jwks)) = self.fetched.lock().expect("jwks poisoned").get(issuer) {
            if at.elapsed() < JWKS_TTL {
                return Ok(jwks.clone());
            }
        }
        let bytes = match self.files.get(issuer) {
            Some(path) => tokio::fs::read(path).await.map_err(|e| {
                AuthError::InvalidJwks(format!("cannot read {}: {e}", path.display()))
            })?,
            None if issuer.starts_with("http://") || issuer.starts_with("https://") => {
                fetch_jwks(issuer).await?
            }
            None => {
                return Err(AuthError::InvalidJwks(format!(
                    "the issuer {issuer:?} is not an http(s) URL; save its JWKS to a file and start nimbus with --jwks {issuer}=FILE"
                )))
            }
        };
        let jwks = Arc::new(Jwks::from_json(&bytes)?);
        self.fetched
            .lock()
            .expect("jwks poisoned")
            .insert(issuer.to_owned(), (Instant::now(), jwks.clone()));
        Ok(jwks)
    }
}

async fn http_get(url: &str) -> Result<Bytes, AuthError> {
    let fail = |why: String| AuthError::InvalidJwks(format!("GET {url}: {why}"));
    let answer = crate::outbound::send("GET", url, &[], Bytes::new(), Duration::from_secs(5))
        .await
        .map_err(|f| fail(f.why))?;
    if !answer.status.is_success() {
        return Err(fail(format!("status {}", answer.status)));
    }
    if answer.body.len() > MAX_JWKS_BYTES {
        return Err(fail(format!("over {MAX_JWKS_BYTES} bytes")));
    }
    Ok(answer.body)
}

/// OpenID discovery, as API Gateway does it: `{issuer}/.well-known/openid-configuration`,
/// then its `jwks_uri`.
async fn fetch_jwks(issuer: &str) -> Result<Vec<u8>, AuthError> {
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc: Value = serde_json::from_slice(&http_get(&discovery).await?)
        .map_err(|e| AuthError::InvalidJwks(format!("{discovery} is not JSON: {e}")))?;
    let jwks_uri = doc["jwks_uri"]
        .as_str()
        .ok_or_else(|| AuthError::InvalidJwks(format!("{discovery} has no jwks_uri")))?;
    Ok(http_get(jwks_uri).await?.to_vec())
}

/// Cached Lambda authorizer answers of one API, by authorizer and identity.
#[derive(Default)]
pub struct AnswerCache {
    entries: Mutex<HashMap<(String, String), (Instant, AuthorizerAnswer)>>,
}

impl AnswerCache {
    fn get(&self, authorizer: &str, key: &str, ttl: Duration) -> Option<AuthorizerAnswer> {
        let entries = self.entries.lock().expect("auth cache poisoned");
        entries
            .get(&(authorizer.to_owned(), key.to_owned()))
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, a)| a.clone())
    }

    fn put(&self, authorizer: &str, key: String, answer: AuthorizerAnswer, ttl: Duration) {
        // Identities are client input: huge ones are not kept, so the cache stays bounded in
        // bytes (at most MAX_CACHED_ANSWERS entries of MAX_CACHED_IDENTITY bytes).
        if key.len() > MAX_CACHED_IDENTITY {
            return;
        }
        let mut entries = self.entries.lock().expect("auth cache poisoned");
        if entries.len() >= MAX_CACHED_ANSWERS {
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= MAX_CACHED_ANSWERS {
                entries.clear();
            }
        }
        entries.insert((authorizer.to_owned(), key), (Instant::now(), answer));
    }
}

/// What an authorizer let through.
pub(crate) struct Granted {
    /// What goes into `requestContext.authorizer`.
    pub context: Value,
    /// A Lambda authorizer's `usageIdentifierKey`: the API key to meter when the API's
    /// `ApiKeySourceType` is `AUTHORIZER`.
    pub usage_key: Option<String>,
}

/// Runs the route's authorizer. `Err` carries the response API Gateway gives the client, and
/// the reason for the access log.
pub(crate) async fn authorize(
    api: &ApiState,
    name: &str,
    route: &RouteConfig,
    req: &GatewayRequest,
    matched: &MatchedRoute,
    ctx: &RequestContext,
) -> Result<Granted, (GatewayResponse, String)> {
    let kind = api.config.kind;
    let refuse = |e: AuthError| (e.response(kind), e.to_string());
    let Some(config) = api.config.authorizers.get(name) else {
        let e = AuthError::AuthorizerFailed(format!("no authorizer named {name}"));
        return Err(refuse(e));
    };
    match config {
        AuthorizerConfig::Jwt {
            issuer,
            audiences,
            identity_source,
        } => {
            let identity = auth::identity_values(
                std::slice::from_ref(identity_source),
                kind,
                req,
                matched,
                ctx,
            )
            .map_err(refuse)?;
            let jwks = api.jwks.get(issuer).await.map_err(refuse)?;
            let cfg = JwtConfig {
                issuer: issuer.clone(),
                audiences: audiences.clone(),
            };
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let claims =
                auth::verify_jwt(&identity[0], &cfg, &jwks, &route.authorization_scopes, now)
                    .map_err(refuse)?;
            Ok(Granted {
                context: claims.authorizer_value(route.payload),
                usage_key: None,
            })
        }
        AuthorizerConfig::Lambda {
            function,
            kind: lambda_kind,
            identity_sources,
            ttl_secs,
        } => {
            let identity = auth::identity_values(identity_sources, kind, req, matched, ctx)
                .map_err(|e| match (kind, &e) {
                    // REST answers a missing identity source with 401 Unauthorized.
                    (ApiKind::Rest, AuthError::MissingIdentity(_)) => {
                        refuse(AuthError::Unauthorized)
                    }
                    _ => refuse(e),
                })?;
            let region = &api.platform.config().region;
            let arn = auth::method_arn(
                region,
                &ctx.account_id,
                &ctx.api_id,
                &ctx.stage,
                &req.method,
                &req.raw_path,
            );
            let ttl = Duration::from_secs(*ttl_secs);
            let cache_key = (*ttl_secs > 0)
                .then(|| auth::cache_key(&identity))
                .flatten();
            let cached = cache_key
                .as_ref()
                .and_then(|k| api.answers.get(name, k, ttl));
            let started = Instant::now();
            let answer = match cached {
                Some(answer) => answer,
                None => {
                    let event = match lambda_kind {
                        LambdaAuthorizerKind::RestToken => {
                            auth::rest_token_event(&identity[0], &arn)
                        }
                        LambdaAuthorizerKind::RestRequest => {
                            auth::rest_request_event(req, matched, ctx, &arn)
                        }
                        LambdaAuthorizerKind::HttpV1 => {
                            auth::http_v1_request_event(req, matched, ctx, &arn, &identity)
                        }
                        LambdaAuthorizerKind::HttpV2 { .. } => {
                            auth::http_v2_request_event(req, matched, ctx, &arn, &identity)
                        }
                    };
                    let invoke = InvokeRequest {
                        payload: serde_json::to_vec(&event).unwrap_or_default().into(),
                        ..InvokeRequest::default()
                    };
                    let out = match tokio::time::timeout(
                        AUTHORIZER_TIMEOUT,
                        api.platform.invoke(function, invoke),
                    )
                    .await
                    {
                        Err(_) => {
                            return Err(refuse(AuthError::AuthorizerFailed(format!(
                                "{function} did not answer within {} s",
                                AUTHORIZER_TIMEOUT.as_secs()
                            ))))
                        }
                        Ok(Err(e)) => {
                            return Err(refuse(AuthError::AuthorizerFailed(e.to_string())))
                        }
                        Ok(Ok(out)) => out,
                    };
                    if out.function_error.is_some() {
                        let message = serde_json::from_slice::<Value>(&out.payload)
                            .ok()
                            .and_then(|v| v["errorMessage"].as_str().map(str::to_owned))
                            .unwrap_or_default();
                        return Err(refuse(auth::function_error(kind, &message)));
                    }
                    let format = match lambda_kind {
                        LambdaAuthorizerKind::HttpV2 { simple: true } => AnswerFormat::Simple,
                        _ => AnswerFormat::IamPolicy,
                    };
                    let answer =
                        AuthorizerAnswer::parse(&out.payload, format, kind).map_err(refuse)?;
                    if let Some(k) = cache_key {
                        api.answers.put(name, k, answer.clone(), ttl);
                    }
                    answer
                }
            };
            let authorized = answer.authorize(&arn).map_err(refuse)?;
            let latency = started.elapsed().as_millis() as u64;
            let payload = match kind {
                ApiKind::Rest => PayloadVersion::V1,
                ApiKind::Http => route.payload,
            };
            Ok(Granted {
                context: authorized.authorizer_value(payload, latency),
                usage_key: authorized.usage_identifier_key.clone(),
            })
        }
    }
}
