//! HTTP API JWT authorizers, as AWS's guide "Control access to HTTP APIs with JWT authorizers"
//! describes them: the token (optionally after `Bearer `) must be signed with an RSA-based
//! algorithm by a key of the issuer's JWKS named by its `kid`; `iss` must equal the issuer;
//! `aud`, or `client_id` only when there is no `aud`, must be one of the audiences; `exp` must
//! be after now and `nbf` and `iat` before it; and when the route has authorization scopes,
//! the token's `scope` or `scp` must hold at least one of them.
//!
//! AWS documents no clock-skew leeway, so there is none. It does not say whether a token whose
//! `nbf` or `iat` is exactly now is valid; RFC 7519 accepts it, and so does nimbus.
//!
//! The claims reach the integration as AWS renders them, all strings: numbers as written
//! (`"1700000000"`), booleans as `"true"`, arrays as `"[a b c]"` (measured on AWS by users of
//! Cognito groups). Objects and `null`, which nobody has reported, become their JSON text.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{json, Map, Value};

use super::AuthError;
use crate::PayloadVersion;

/// A JWT authorizer's `JwtConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    pub issuer: String,
    /// A token must be for one of these; with none, no token is.
    pub audiences: Vec<String>,
}

/// The signing keys of an issuer (`jwks_uri`), by `kid`.
#[derive(Debug, Clone)]
pub struct Jwks {
    keys: Vec<Key>,
}

#[derive(Debug, Clone)]
struct Key {
    kid: String,
    kind: KeyKind,
    /// The JWK's own `alg`, when it pins one.
    alg: Option<String>,
    decoding: DecodingKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
}

impl Jwks {
    /// Reads a JWK Set (RFC 7517). RSA keys and EC P-256 keys are kept; keys meant for
    /// encryption (`use: enc`), keys without a `kid` (a token could never name them) and
    /// other key types or curves are skipped, as an IdP's set may hold them. A kept key whose
    /// parameters do not decode makes the whole set invalid, so a broken issuer shows at once.
    pub fn from_json(bytes: &[u8]) -> Result<Jwks, AuthError> {
        let doc: Value = serde_json::from_slice(bytes)
            .map_err(|e| AuthError::InvalidJwks(format!("not JSON: {e}")))?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| AuthError::InvalidJwks("no \"keys\" array".into()))?;
        let mut keys: Vec<Key> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let Some(jwk) = entry.as_object() else {
                return Err(AuthError::InvalidJwks(format!(
                    "keys[{i}] is not an object"
                )));
            };
            let text = |name: &str| jwk.get(name).and_then(Value::as_str);
            if text("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let Some(kid) = text("kid") else { continue };
            let bad = |what: &str| AuthError::InvalidJwks(format!("key {kid:?}: {what}"));
            let (kind, decoding) = match (text("kty"), text("crv")) {
                (Some("RSA"), _) => {
                    let (Some(n), Some(e)) = (text("n"), text("e")) else {
                        return Err(bad("an RSA key needs n and e"));
                    };
                    let decoded = |v: &str| URL_SAFE_NO_PAD.decode(v).ok();
                    if decoded(n).is_none_or(|n| n.is_empty())
                        || decoded(e).is_none_or(|e| e.is_empty())
                    {
                        return Err(bad("n and e must be base64url, without padding"));
                    }
                    let key = DecodingKey::from_rsa_components(n, e)
                        .map_err(|e| bad(&format!("unusable RSA key: {e}")))?;
                    (KeyKind::Rsa, key)
                }
                (Some("EC"), Some("P-256")) => {
                    let (Some(x), Some(y)) = (text("x"), text("y")) else {
                        return Err(bad("an EC key needs x and y"));
                    };
                    let coordinate = |v: &str| URL_SAFE_NO_PAD.decode(v).ok();
                    if coordinate(x).is_none_or(|c| c.len() != 32)
                        || coordinate(y).is_none_or(|c| c.len() != 32)
                    {
                        return Err(bad("P-256 x and y must be 32 bytes each, base64url"));
                    }
                    let key = DecodingKey::from_ec_components(x, y)
                        .map_err(|e| bad(&format!("unusable EC key: {e}")))?;
                    (KeyKind::EcP256, key)
                }
                _ => continue,
            };
            if keys.iter().any(|k| k.kid == kid) {
                continue;
            }
            keys.push(Key {
                kid: kid.to_string(),
                kind,
                alg: text("alg").map(str::to_string),
                decoding,
            });
        }
        Ok(Jwks { keys })
    }

    /// The `kid`s of the keys kept, in the set's order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    fn key(&self, kid: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// What a valid token puts in `requestContext.authorizer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtClaims {
    /// Every claim, rendered as AWS renders it.
    pub claims: BTreeMap<String, String>,
    /// The token's scopes when the route requires scopes; `None` otherwise, which AWS sends
    /// as `"scopes": null`.
    pub scopes: Option<Vec<String>>,
}

impl JwtClaims {
    /// `requestContext.authorizer` of the integration's event: `{"jwt": {claims, scopes}}`
    /// for payload 2.0, `{claims, scopes}` for payload 1.0.
    pub fn authorizer_value(&self, payload: PayloadVersion) -> Value {
        let inner = json!({ "claims": self.claims, "scopes": self.scopes });
        match payload {
            PayloadVersion::V2 => json!({ "jwt": inner }),
            PayloadVersion::V1 => inner,
        }
    }
}

/// Validates the token in `identity` (the identity source's value, `Bearer ` optional) as an
/// HTTP API JWT authorizer does at `now_epoch_secs`. `required_scopes` are the route's
/// `AuthorizationScopes`: any one of them suffices.
pub fn verify_jwt(
    identity: &str,
    cfg: &JwtConfig,
    jwks: &Jwks,
    required_scopes: &[String],
    now_epoch_secs: u64,
) -> Result<JwtClaims, AuthError> {
    let token = strip_bearer(identity.trim());
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("a JWT has three dot-separated parts"));
    };
    let header = decode_object(header_b64, "header")?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("the header has no alg"))?;
    let algorithm = match alg {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        other => return Err(AuthError::UnsupportedAlgorithm(other.to_string())),
    };
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(AuthError::MissingKid)?;
    let key = jwks
        .key(kid)
        .ok_or_else(|| AuthError::UnknownKid(kid.to_string()))?;
    if key.kind != KeyKind::Rsa || key.alg.as_deref().is_some_and(|a| a != alg) {
        return Err(AuthError::KeyMismatch {
            kid: kid.to_string(),
            alg: alg.to_string(),
        });
    }
    let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
    // The crate checks the signature only; the claims follow AWS's rules below, at the time
    // the caller gives rather than the system clock.
    match jsonwebtoken::crypto::verify(signature_b64, signed.as_bytes(), &key.decoding, algorithm) {
        Ok(true) => {}
        Ok(false) | Err(_) => return Err(AuthError::BadSignature),
    }
    let claims = decode_object(payload_b64, "payload")?;

    let issuer = claims.get("iss").and_then(Value::as_str);
    if issuer != Some(cfg.issuer.as_str()) {
        return Err(AuthError::IssuerMismatch {
            expected: cfg.issuer.clone(),
            found: issuer.map(str::to_string),
        });
    }
    check_audience(&claims, &cfg.audiences)?;

    let now = now_epoch_secs as f64;
    let exp = numeric_date(&claims, "exp")?.ok_or(AuthError::MissingExpiry)?;
    if exp <= now {
        return Err(AuthError::Expired {
            exp: claims["exp"].to_string(),
            now: now_epoch_secs,
        });
    }
    if numeric_date(&claims, "nbf")?.is_some_and(|nbf| nbf > now) {
        return Err(AuthError::NotYetValid {
            nbf: claims["nbf"].to_string(),
            now: now_epoch_secs,
        });
    }
    if numeric_date(&claims, "iat")?.is_some_and(|iat| iat > now) {
        return Err(AuthError::IssuedInFuture {
            iat: claims["iat"].to_string(),
            now: now_epoch_secs,
        });
    }

    let token_scopes = scopes(&claims);
    if !required_scopes.is_empty() && !required_scopes.iter().any(|s| token_scopes.contains(s)) {
        return Err(AuthError::InsufficientScope {
            required: required_scopes.to_vec(),
            found: token_scopes,
        });
    }
    Ok(JwtClaims {
        claims: claims
            .iter()
            .map(|(name, value)| (name.clone(), render_claim(value)))
            .collect(),
        scopes: (!required_scopes.is_empty()).then_some(token_scopes),
    })
}

fn malformed(why: &str) -> AuthError {
    AuthError::Malformed(why.to_string())
}

/// The auth scheme is case-insensitive (RFC 7235), so `bearer x` is a token too.
fn strip_bearer(value: &str) -> &str {
    if value.eq_ignore_ascii_case("bearer") {
        return "";
    }
    match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => value[7..].trim_start(),
        _ => value,
    }
}

fn decode_object(part: &str, what: &str) -> Result<Map<String, Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::Malformed(format!("the {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AuthError::Malformed(format!(
            "the {what} is not a JSON object"
        ))),
    }
}

/// Only `aud` counts when present; `client_id` (Cognito access tokens have no `aud`) is the
/// fallback, as AWS's troubleshooting guide states.
fn check_audience(claims: &Map<String, Value>, audiences: &[String]) -> Result<(), AuthError> {
    let accepted = |v: &Value| v.as_str().is_some_and(|a| audiences.iter().any(|x| x == a));
    let ok = match claims.get("aud") {
        Some(Value::Array(values)) => values.iter().any(accepted),
        Some(aud) => accepted(aud),
        None => claims.get("client_id").is_some_and(accepted),
    };
    if ok {
        Ok(())
    } else {
        Err(AuthError::AudienceMismatch)
    }
}

fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| AuthError::Malformed(format!("the {name} claim is not a number"))),
    }
}

/// `scope` is the OAuth 2.0 space-separated string; `scp` is the array some IdPs send (or a
/// string, for others).
fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    let claim = claims.get("scope").or_else(|| claims.get("scp"));
    match claim {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(values)) => values
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn render_claim(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(render_claim).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(_) | Value::Null => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{encode, EncodingKey, Header};

    use super::*;

    // Keys made with openssl for these tests only; they sign nothing else.
    const RSA_PEM: &str = include_str!("testdata/rsa-test-key.pem");
    const EC_PEM: &str = include_str!("testdata/ec-test-key.pem");

    const ISSUER: &str = "https://issuer.example.com/pool";
    const NOW: u64 = 1_700_000_000;

    fn rsa_key() -> EncodingKey {
        EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap()
    }

    fn ec_key() -> EncodingKey {
        EncodingKey::from_ec_pem(EC_PEM.as_bytes()).unwrap()
    }

    fn public_jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(key, alg).unwrap()).unwrap();
        // Most IdPs do not pin an algorithm on their keys.
        jwk.as_object_mut().unwrap().remove("alg");
        jwk["kid"] = kid.into();
        jwk
    }

    fn jwks_json() -> Vec<u8> {
        json!({"keys": [
            public_jwk(&rsa_key(), Algorithm::RS256, "rsa-1"),
            public_jwk(&ec_key(), Algorithm::ES256, "ec-1"),
            {"kty": "RSA", "use": "enc", "kid": "enc-1", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "kid": "hmac-1", "k": "c2VjcmV0"},
            {"kty": "EC", "crv": "P-384", "kid": "p384-1", "x": "AA", "y": "AA"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        ]})
        .to_string()
        .into_bytes()
    }

    fn jwks() -> Jwks {
        Jwks::from_json(&jwks_json()).unwrap()
    }

    fn cfg() -> JwtConfig {
        JwtConfig {
            issuer: ISSUER.into(),
            audiences: vec!["my-app".into(), "other-app".into()],
        }
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER,
            "aud": "my-app",
            "sub": "user-1",
            "exp": NOW + 3600,
            "iat": NOW - 10,
            "nbf": NOW - 10,
            "scope": "read write",
        })
    }

    fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        encode(&header, claims, key).unwrap()
    }

    fn rs256(claims: &Value) -> String {
        sign(Algorithm::RS256, Some("rsa-1"), claims, &rsa_key())
    }

    fn verify(token: &str) -> Result<JwtClaims, AuthError> {
        verify_jwt(token, &cfg(), &jwks(), &[], NOW)
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value;
        }
        claims
    }

    fn scopes(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_valid_token_yields_its_claims_as_strings() {
        let claims = with(claims(), "cognito:groups", json!(["admin", "users"]));
        let claims = with(claims, "email_verified", json!(true));
        let claims = with(claims, "address", json!({"country": "FR"}));
        let out = verify(&format!("Bearer {}", rs256(&claims))).unwrap();
        assert_eq!(out.claims["sub"], "user-1");
        assert_eq!(out.claims["exp"], (NOW + 3600).to_string());
        assert_eq!(out.claims["email_verified"], "true");
        assert_eq!(out.claims["cognito:groups"], "[admin users]");
        assert_eq!(out.claims["address"], r#"{"country":"FR"}"#);
        assert_eq!(out.claims["scope"], "read write");
        assert_eq!(out.scopes, None);
    }

    #[test]
    fn the_bearer_prefix_is_optional_and_case_insensitive() {
        let token = rs256(&claims());
        for identity in [
            token.clone(),
            format!("Bearer {token}"),
            format!("bearer {token}"),
        ] {
            assert!(verify(&identity).is_ok(), "{identity}");
        }
        assert_eq!(verify("Bearer "), Err(AuthError::MissingToken));
        assert_eq!(verify(""), Err(AuthError::MissingToken));
    }

    #[test]
    fn rs384_and_rs512_are_rsa_based_too() {
        for alg in [Algorithm::RS384, Algorithm::RS512] {
            let token = sign(alg, Some("rsa-1"), &claims(), &rsa_key());
            assert!(verify(&token).is_ok(), "{alg:?}");
        }
    }

    #[test]
    fn an_expired_token_is_refused_even_at_its_exp_second() {
        let token = rs256(&with(claims(), "exp", json!(NOW)));
        assert!(matches!(verify(&token), Err(AuthError::Expired { .. })));
        let token = rs256(&with(claims(), "exp", json!(NOW - 1)));
        assert!(matches!(verify(&token), Err(AuthError::Expired { .. })));
        let token = rs256(&with(claims(), "exp", json!(NOW + 1)));
        assert!(verify(&token).is_ok());
    }

    #[test]
    fn a_token_without_exp_is_refused() {
        let token = rs256(&with(claims(), "exp", Value::Null));
        assert_eq!(verify(&token), Err(AuthError::MissingExpiry));
        let token = rs256(&with(claims(), "exp", json!("tomorrow")));
        assert!(matches!(verify(&token), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn a_token_not_yet_valid_is_refused() {
        let token = rs256(&with(claims(), "nbf", json!(NOW + 60)));
        assert!(matches!(verify(&token), Err(AuthError::NotYetValid { .. })));
        let token = rs256(&with(claims(), "iat", json!(NOW + 60)));
        assert!(matches!(
            verify(&token),
            Err(AuthError::IssuedInFuture { .. })
        ));
        let token = rs256(&with(with(claims(), "nbf", json!(NOW)), "iat", json!(NOW)));
        assert!(verify(&token).is_ok());
    }

    #[test]
    fn a_token_for_another_audience_is_refused() {
        let token = rs256(&with(claims(), "aud", json!("someone-else")));
        assert_eq!(verify(&token), Err(AuthError::AudienceMismatch));
        let token = rs256(&with(claims(), "aud", json!(["x", "other-app"])));
        assert!(verify(&token).is_ok());
        let token = rs256(&with(claims(), "aud", json!([])));
        assert_eq!(verify(&token), Err(AuthError::AudienceMismatch));
    }

    #[test]
    fn client_id_counts_only_when_aud_is_absent() {
        let access = with(
            with(claims(), "aud", Value::Null),
            "client_id",
            json!("my-app"),
        );
        assert!(verify(&rs256(&access)).is_ok());
        let both = with(
            with(claims(), "aud", json!("someone-else")),
            "client_id",
            json!("my-app"),
        );
        assert_eq!(verify(&rs256(&both)), Err(AuthError::AudienceMismatch));
        let neither = with(claims(), "aud", Value::Null);
        assert_eq!(verify(&rs256(&neither)), Err(AuthError::AudienceMismatch));
    }

    #[test]
    fn no_token_passes_an_authorizer_without_audiences() {
        let cfg = JwtConfig {
            audiences: vec![],
            ..cfg()
        };
        let r = verify_jwt(&rs256(&claims()), &cfg, &jwks(), &[], NOW);
        assert_eq!(r, Err(AuthError::AudienceMismatch));
    }

    #[test]
    fn a_token_from_another_issuer_is_refused() {
        let token = rs256(&with(claims(), "iss", json!("https://evil.example.com")));
        assert!(matches!(
            verify(&token),
            Err(AuthError::IssuerMismatch { found: Some(f), .. }) if f == "https://evil.example.com"
        ));
        let token = rs256(&with(claims(), "iss", Value::Null));
        assert!(matches!(
            verify(&token),
            Err(AuthError::IssuerMismatch { found: None, .. })
        ));
    }

    #[test]
    fn one_of_the_route_scopes_is_enough() {
        let token = rs256(&claims());
        let out = verify_jwt(&token, &cfg(), &jwks(), &scopes(&["admin", "write"]), NOW).unwrap();
        assert_eq!(out.scopes, Some(scopes(&["read", "write"])));
        let scp = rs256(&with(
            with(claims(), "scope", Value::Null),
            "scp",
            json!(["admin"]),
        ));
        assert!(verify_jwt(&scp, &cfg(), &jwks(), &scopes(&["admin"]), NOW).is_ok());
    }

    #[test]
    fn a_token_with_none_of_the_route_scopes_is_refused() {
        let token = rs256(&claims());
        assert_eq!(
            verify_jwt(&token, &cfg(), &jwks(), &scopes(&["admin"]), NOW),
            Err(AuthError::InsufficientScope {
                required: scopes(&["admin"]),
                found: scopes(&["read", "write"]),
            })
        );
        let bare = rs256(&with(claims(), "scope", Value::Null));
        assert!(matches!(
            verify_jwt(&bare, &cfg(), &jwks(), &scopes(&["read"]), NOW),
            Err(AuthError::InsufficientScope { .. })
        ));
    }

    #[test]
    fn a_tampered_token_has_a_bad_signature() {
        let token = rs256(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let forged =
            URL_SAFE_NO_PAD.encode(with(claims(), "sub", json!("admin")).to_string().as_bytes());
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert_eq!(verify(&tampered), Err(AuthError::BadSignature));
        let unsigned = format!("{}.{}.", parts[0], parts[1]);
        assert_eq!(verify(&unsigned), Err(AuthError::BadSignature));
        let garbled = format!("{}.{}.!!!", parts[0], parts[1]);
        assert_eq!(verify(&garbled), Err(AuthError::BadSignature));
    }

    #[test]
    fn a_token_naming_an_unknown_key_is_refused() {
        let token = sign(
            Algorithm::RS256,
            Some("rotated-away"),
            &claims(),
            &rsa_key(),
        );
        assert_eq!(
            verify(&token),
            Err(AuthError::UnknownKid("rotated-away".into()))
        );
        let token = sign(Algorithm::RS256, None, &claims(), &rsa_key());
        assert_eq!(verify(&token), Err(AuthError::MissingKid));
        // Skipped keys cannot be named either.
        let token = sign(Algorithm::RS256, Some("enc-1"), &claims(), &rsa_key());
        assert_eq!(verify(&token), Err(AuthError::UnknownKid("enc-1".into())));
    }

    #[test]
    fn an_rsa_token_cannot_name_an_ec_key() {
        let token = sign(Algorithm::RS256, Some("ec-1"), &claims(), &rsa_key());
        assert!(matches!(verify(&token), Err(AuthError::KeyMismatch { .. })));
    }

    #[test]
    fn a_key_pinned_to_another_algorithm_is_not_used() {
        let mut jwk = public_jwk(&rsa_key(), Algorithm::RS256, "rsa-1");
        jwk["alg"] = "RS512".into();
        let jwks = Jwks::from_json(json!({"keys": [jwk]}).to_string().as_bytes()).unwrap();
        let r = verify_jwt(&rs256(&claims()), &cfg(), &jwks, &[], NOW);
        assert!(matches!(r, Err(AuthError::KeyMismatch { .. })));
    }

    #[test]
    fn es256_is_refused_because_aws_accepts_only_rsa() {
        let token = sign(Algorithm::ES256, Some("ec-1"), &claims(), &ec_key());
        assert_eq!(
            verify(&token),
            Err(AuthError::UnsupportedAlgorithm("ES256".into()))
        );
    }

    #[test]
    fn alg_none_and_hmac_are_refused() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"rsa-1"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        assert_eq!(
            verify(&format!("{header}.{payload}.")),
            Err(AuthError::UnsupportedAlgorithm("none".into()))
        );
        // The classic confusion attack: HMAC keyed with the public key's bytes.
        let hs = sign(
            Algorithm::HS256,
            Some("rsa-1"),
            &claims(),
            &EncodingKey::from_secret(RSA_PEM.as_bytes()),
        );
        assert_eq!(
            verify(&hs),
            Err(AuthError::UnsupportedAlgorithm("HS256".into()))
        );
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let samples = [
            "not a token".to_string(),
            "a.b".into(),
            "a.b.c.d".into(),
            "...".into(),
            "Bearer".into(),
            "Bearer  ....".into(),
            "ééé.ééé.ééé".into(),
            "\u{0}.\u{0}.\u{0}".into(),
            format!("{}.{}.sig", b64("[]"), b64("{}")),
            format!("{}.{}.sig", b64("{\"alg\":7}"), b64("{}")),
            format!(
                "{}.{}.sig",
                b64("{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}"),
                b64("{")
            ),
            format!("{}.x.y", b64("null")),
            "x".repeat(100_000),
            ".".repeat(10_000),
        ];
        for s in samples {
            let r = verify(&s);
            assert!(r.is_err(), "{s:?}");
            assert_eq!(r.unwrap_err().status(), 401, "{s:?}");
        }
    }

    #[test]
    fn the_jwks_keeps_rsa_and_p256_signing_keys_by_kid() {
        assert_eq!(jwks().kids().collect::<Vec<_>>(), ["rsa-1", "ec-1"]);
    }

    #[test]
    fn a_broken_jwks_is_an_error() {
        for doc in [
            "not json",
            "{}",
            r#"{"keys": {}}"#,
            r#"{"keys": [1]}"#,
            r#"{"keys": [{"kty": "RSA", "kid": "a", "n": "AQAB"}]}"#,
            r#"{"keys": [{"kty": "RSA", "kid": "a", "n": "!!", "e": "AQAB"}]}"#,
            r#"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "a", "x": "AQAB", "y": "AQAB"}]}"#,
        ] {
            assert!(
                matches!(
                    Jwks::from_json(doc.as_bytes()),
                    Err(AuthError::InvalidJwks(_))
                ),
                "{doc}"
            );
        }
        assert_eq!(
            Jwks::from_json(br#"{"keys": []}"#).unwrap().kids().count(),
            0
        );
    }

    #[test]
    fn claims_land_where_lambda_http_reads_them() {
        use aws_lambda_events::apigw::ApiGatewayV2httpRequest;

        let token = rs256(&with(claims(), "groups", json!(["a", "b"])));
        let out = verify_jwt(&token, &cfg(), &jwks(), &scopes(&["read"]), NOW).unwrap();
        let value = out.authorizer_value(PayloadVersion::V2);
        assert_eq!(value["jwt"]["scopes"], json!(["read", "write"]));
        let ctx = crate::RequestContext {
            authorizer: Some(value),
            ..Default::default()
        };
        let route = crate::MatchedRoute {
            route_key: "GET /me".into(),
            resource_path: "/me".into(),
            path_parameters: Default::default(),
        };
        let req = crate::GatewayRequest {
            header_names: Vec::new(),
            method: "GET".into(),
            raw_path: "/me".into(),
            ..Default::default()
        };
        let event = crate::event::http_v2(&req, &route, &ctx);
        let parsed: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
        let jwt = parsed.request_context.authorizer.unwrap().jwt.unwrap();
        assert_eq!(jwt.claims["groups"], "[a b]");
        assert_eq!(jwt.scopes, Some(scopes(&["read", "write"])));

        let v1 = out.authorizer_value(PayloadVersion::V1);
        assert_eq!(v1["claims"]["sub"], "user-1");
        let unscoped = verify(&token).unwrap().authorizer_value(PayloadVersion::V2);
        assert_eq!(unscoped["jwt"]["scopes"], Value::Null);
    }
}
