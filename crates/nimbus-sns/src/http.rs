//! Delivery to HTTP/HTTPS subscriptions: subscription confirmations and notifications as SNS
//! POSTs them (its headers, its JSON, signed), retried under the subscription's delivery policy.
//!
//! Every POST is first a job in nimbus's durable store (lane [`LANE`]), added before `Publish`
//! or `Subscribe` answers, so an accepted message survives `kill -9`. One worker claims due jobs
//! and sends each on a task of its own (at most [`MAX_IN_FLIGHT`] at once, so a slow endpoint
//! does not hold up the others); an answer from 200 to 499 other than 429 ends the job, as it
//! does on SNS, and anything else (429, 5xx, a refused connection, no answer within 15 s)
//! reschedules it by the
//! policy's phases, then sends it to the subscription's dead-letter queue. Messages are signed
//! when they are sent, not when they are published, so publishing never waits on RSA.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use nimbus_store::{Job, NewJob};
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;

use crate::{state, Sns, SnsError};

/// The store lane of HTTP/HTTPS deliveries.
const LANE: &str = "sns:http";
/// Deliveries in flight at once, over every subscription.
const MAX_IN_FLIGHT: usize = 32;
/// SNS waits 15 seconds for an endpoint's answer.
const TIMEOUT: Duration = Duration::from_secs(15);
/// A claimed job comes back after this long if its worker died with it.
const LEASE_MS: u64 = 60_000;
const DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=UTF-8";

/// One POST to an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub timeout: Duration,
}

/// Sends an [`HttpRequest`], answering the endpoint's status or why there was none. Given by
/// nimbus's binary (its outbound HTTPS client), so this crate holds no HTTP stack of its own.
pub type HttpSender = Arc<
    dyn Fn(HttpRequest) -> Pin<Box<dyn Future<Output = Result<u16, String>> + Send>> + Send + Sync,
>;

/// How the backoff phase's delays grow from `minDelayTarget` to `maxDelayTarget`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Backoff {
    Linear,
    Arithmetic,
    Geometric,
    Exponential,
}

/// A `healthyRetryPolicy`, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RetryPolicy {
    min_delay: u32,
    max_delay: u32,
    retries: u32,
    no_delay_retries: u32,
    min_delay_retries: u32,
    max_delay_retries: u32,
    backoff: Backoff,
}

impl Default for RetryPolicy {
    /// SNS's HTTP/S default: three retries, 20 seconds apart.
    fn default() -> RetryPolicy {
        RetryPolicy {
            min_delay: 20,
            max_delay: 20,
            retries: 3,
            no_delay_retries: 0,
            min_delay_retries: 0,
            max_delay_retries: 0,
            backoff: Backoff::Linear,
        }
    }
}

impl RetryPolicy {
    /// Reads a `healthyRetryPolicy` object; the error says which field is wrong.
    pub(crate) fn parse(v: &Value) -> Result<RetryPolicy, String> {
        let Some(m) = v.as_object() else {
            return Err("healthyRetryPolicy must be an object".into());
        };
        let d = RetryPolicy::default();
        // Every count is at most 100 and every delay at most 3600 before any arithmetic.
        let number = |name: &str, default: u32, max: u32| -> Result<u32, String> {
            let n = match m.get(name) {
                None | Some(Value::Null) => default,
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("{name} must be a whole number of 0 or more"))?,
            };
            match n <= max {
                true => Ok(n),
                false => Err(format!("{name} must be at most {max}")),
            }
        };
        let p = RetryPolicy {
            min_delay: number("minDelayTarget", d.min_delay, 3600)?,
            max_delay: number("maxDelayTarget", d.max_delay, 3600)?,
            retries: number("numRetries", d.retries, 100)?,
            no_delay_retries: number("numNoDelayRetries", 0, 100)?,
            min_delay_retries: number("numMinDelayRetries", 0, 100)?,
            max_delay_retries: number("numMaxDelayRetries", 0, 100)?,
            backoff: match m.get("backoffFunction").and_then(Value::as_str) {
                None | Some("linear") => Backoff::Linear,
                Some("arithmetic") => Backoff::Arithmetic,
                Some("geometric") => Backoff::Geometric,
                Some("exponential") => Backoff::Exponential,
                Some(other) => {
                    return Err(format!(
                        "backoffFunction {other} is not one of arithmetic, exponential, geometric, linear"
                    ))
                }
            },
        };
        if p.min_delay < 1 {
            return Err("minDelayTarget must be at least 1".into());
        }
        if p.min_delay > p.max_delay {
            return Err("minDelayTarget must not exceed maxDelayTarget".into());
        }
        if p.no_delay_retries + p.min_delay_retries + p.max_delay_retries > p.retries {
            return Err(
                "numNoDelayRetries, numMinDelayRetries and numMaxDelayRetries together must not exceed numRetries"
                    .into(),
            );
        }
        let total: f64 = (1..=p.retries).filter_map(|k| p.delay_secs(k)).sum();
        if total > 3600.0 {
            return Err(format!(
                "the retries take {total:.0} seconds in all; SNS allows 3600"
            ));
        }
        Ok(p)
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "minDelayTarget": self.min_delay,
            "maxDelayTarget": self.max_delay,
            "numRetries": self.retries,
            "numNoDelayRetries": self.no_delay_retries,
            "numMinDelayRetries": self.min_delay_retries,
            "numMaxDelayRetries": self.max_delay_retries,
            "backoffFunction": match self.backoff {
                Backoff::Linear => "linear",
                Backoff::Arithmetic => "arithmetic",
                Backoff::Geometric => "geometric",
                Backoff::Exponential => "exponential",
            },
        })
    }

    /// Seconds before retry `k` (1 is the first retry), or `None` past the last one. The
    /// phases are SNS's: immediate retries, retries at the minimum delay, the backoff phase
    /// from the minimum to the maximum, then retries at the maximum. SNS publishes the backoff
    /// curves only as a chart; these follow its shapes (linear a straight line, arithmetic and
    /// exponential starting slow, geometric starting fast) and end at the maximum as SNS's do.
    fn delay_secs(&self, k: u32) -> Option<f64> {
        if k == 0 || k > self.retries {
            return None;
        }
        let (min, max) = (f64::from(self.min_delay), f64::from(self.max_delay));
        if k <= self.no_delay_retries {
            return Some(0.0);
        }
        if k <= self.no_delay_retries + self.min_delay_retries {
            return Some(min);
        }
        let backoff =
            self.retries - self.no_delay_retries - self.min_delay_retries - self.max_delay_retries;
        let j = k - self.no_delay_retries - self.min_delay_retries;
        if j > backoff {
            return Some(max);
        }
        let f = f64::from(j) / f64::from(backoff);
        let shape = match self.backoff {
            Backoff::Linear => f,
            Backoff::Arithmetic => f * f,
            Backoff::Geometric => 1.0 - (1.0 - f) * (1.0 - f),
            Backoff::Exponential => (2f64.powf(8.0 * f) - 1.0) / 255.0,
        };
        Some(min + (max - min) * shape)
    }
}

/// A subscription's `DeliveryPolicy` attribute, checked.
pub(crate) fn check_subscription_policy(text: &str) -> Result<(), SnsError> {
    let bad = |why: String| SnsError::invalid(format!("Invalid parameter: DeliveryPolicy: {why}"));
    let doc: Value = serde_json::from_str(text).map_err(|_| bad("not valid JSON".into()))?;
    if !doc.is_object() {
        return Err(bad("must be a JSON object".into()));
    }
    if let Some(p) = doc.get("healthyRetryPolicy") {
        RetryPolicy::parse(p).map_err(bad)?;
    }
    check_request_policy(&doc["requestPolicy"]).map_err(bad)
}

/// A topic's `DeliveryPolicy` attribute (`{"http": {"defaultHealthyRetryPolicy": ...}}`),
/// checked.
pub(crate) fn check_topic_policy(text: &str) -> Result<(), SnsError> {
    let bad = |why: String| SnsError::invalid(format!("Invalid parameter: DeliveryPolicy: {why}"));
    let doc: Value = serde_json::from_str(text).map_err(|_| bad("not valid JSON".into()))?;
    if !doc.is_object() {
        return Err(bad("must be a JSON object".into()));
    }
    let http = &doc["http"];
    if let Some(p) = http.get("defaultHealthyRetryPolicy") {
        RetryPolicy::parse(p).map_err(bad)?;
    }
    check_request_policy(&http["defaultRequestPolicy"]).map_err(bad)
}

fn check_request_policy(v: &Value) -> Result<(), String> {
    match v.get("headerContentType") {
        None => Ok(()),
        Some(Value::String(s)) if !s.is_empty() && !s.contains(['\r', '\n']) => Ok(()),
        Some(_) => Err("requestPolicy.headerContentType must be a content type".into()),
    }
}

/// The retry policy and content type a delivery uses: the subscription's, unless the topic
/// disables subscription overrides, then the topic's defaults, then SNS's.
pub(crate) fn effective_policy(
    topic: Option<&str>,
    subscription: Option<&str>,
) -> (RetryPolicy, String) {
    let parse = |t: Option<&str>| t.and_then(|t| serde_json::from_str::<Value>(t).ok());
    let topic = parse(topic).map(|t| t["http"].clone()).unwrap_or_default();
    let sub = parse(subscription)
        .filter(|_| topic["disableSubscriptionOverrides"].as_bool() != Some(true))
        .unwrap_or_default();
    let retry = [
        &sub["healthyRetryPolicy"],
        &topic["defaultHealthyRetryPolicy"],
    ]
    .into_iter()
    .find(|p| p.is_object())
    .and_then(|p| RetryPolicy::parse(p).ok())
    .unwrap_or_default();
    let content_type = [
        &sub["requestPolicy"]["headerContentType"],
        &topic["defaultRequestPolicy"]["headerContentType"],
    ]
    .into_iter()
    .find_map(Value::as_str)
    .unwrap_or(DEFAULT_CONTENT_TYPE)
    .to_owned();
    (retry, content_type)
}

/// What a job needs besides its body.
pub(crate) struct Delivery<'a> {
    pub kind: &'a str,
    pub message_id: &'a str,
    pub url: &'a str,
    pub topic_arn: &'a str,
    pub subscription_arn: &'a str,
    pub raw: bool,
    pub signature_version: &'a str,
    pub retry: &'a RetryPolicy,
    pub content_type: &'a str,
    /// The subscription's dead-letter queue and what it is sent when the policy is exhausted.
    pub dlq: Option<(String, String)>,
}

/// The durable job of one POST: `body` is the message unsigned (or the raw message).
pub(crate) fn job(d: Delivery<'_>, body: String) -> NewJob {
    NewJob {
        lane: LANE.to_owned(),
        id: d.message_id.to_owned(),
        payload: body,
        meta: json!({
            "kind": d.kind,
            "protocol": if d.url.starts_with("https:") { "https" } else { "http" },
            "url": d.url,
            "topic": d.topic_arn,
            "subscription": d.subscription_arn,
            "raw": d.raw,
            "signatureVersion": d.signature_version,
            "retry": d.retry.to_json(),
            "contentType": d.content_type,
            "dlq": d.dlq.map(|(q, b)| json!([q, b])),
        })
        .to_string(),
        due_ms: None,
    }
}

/// The endpoint without its credentials, and the `Authorization` they make: SNS sends a URL's
/// `user:password@` as basic authentication (percent-decoded, `user:` when there is no
/// password, as RFC 7617 has it).
fn split_credentials(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    // The host is after the last `@` before the query: a password's own `@` must be encoded,
    // but an unencoded `/` in it still leaves the credentials out of the URL sent and logged.
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let (authority_and_path, tail) = rest.split_at(end);
    let Some((userinfo, host_and_path)) = authority_and_path.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let credentials = format!("{}:{}", decode(user), decode(password));
    (
        format!("{scheme}://{host_and_path}{tail}"),
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )),
    )
}

/// The endpoint as logs may show it: never its credentials.
pub(crate) fn redacted(url: &str) -> String {
    split_credentials(url).0
}

/// Runs until nimbus stops: claims due deliveries and sends each on a task of its own.
pub(crate) async fn worker(sns: Sns, send: HttpSender) {
    // The signing key may have to be generated: once, off the async threads, before the first
    // delivery needs it.
    let signer = {
        let sns = sns.clone();
        tokio::task::spawn_blocking(move || sns.signer()).await
    };
    match signer {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "SNS cannot sign HTTP/HTTPS messages"),
        Err(e) => tracing::error!(error = %e, "SNS's signing key"),
    }
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let wake = sns.http_wake();
    let mut stop = sns.hub().stopping();
    loop {
        let free = permits.available_permits() as u32;
        if free == 0 {
            // Every permit is taken: a finishing delivery wakes the worker.
            tokio::select! {
                _ = wake.notified() => continue,
                _ = stop.changed() => return,
            }
        }
        let now = nimbus_events::now_ms();
        match sns
            .hub()
            .store()
            .claim_jobs(LANE, free, now, now + LEASE_MS)
        {
            Ok(jobs) => {
                for job in jobs {
                    let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                        return;
                    };
                    let (sns, send) = (sns.clone(), Arc::clone(&send));
                    tokio::spawn(async move {
                        attempt(&sns, &send, job).await;
                        drop(permit);
                        sns.http_wake().notify_one();
                    });
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read SNS's HTTP deliveries"),
        }
        let wait = match sns.hub().store().next_job_due_ms(LANE) {
            Ok(Some(due)) => {
                Duration::from_millis(due.saturating_sub(nimbus_events::now_ms()).clamp(10, 1000))
            }
            _ => Duration::from_secs(1),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

/// The request a job makes: SNS's headers, and the body signed unless it is raw.
fn request(sns: &Sns, job: &Job, meta: &Value) -> Result<HttpRequest, SnsError> {
    let kind = meta["kind"].as_str().unwrap_or("Notification");
    let raw = meta["raw"].as_bool() == Some(true);
    let body = match raw {
        true => job.payload.clone(),
        false => {
            let mut doc: Map<String, Value> = serde_json::from_str(&job.payload)
                .map_err(|e| SnsError::Internal(format!("a stored SNS delivery: {e}")))?;
            let version = meta["signatureVersion"].as_str().unwrap_or("1");
            let signer = sns.signer()?;
            let signature = signer.sign(&doc, version)?;
            doc.insert("SignatureVersion".into(), version.into());
            doc.insert("Signature".into(), signature.into());
            doc.insert("SigningCertURL".into(), sns.cert_url().into());
            Value::Object(doc).to_string()
        }
    };
    let (url, authorization) = split_credentials(meta["url"].as_str().unwrap_or(""));
    let mut headers = vec![
        ("x-amz-sns-message-type".to_owned(), kind.to_owned()),
        ("x-amz-sns-message-id".to_owned(), job.id.clone()),
        (
            "x-amz-sns-topic-arn".to_owned(),
            meta["topic"].as_str().unwrap_or("").to_owned(),
        ),
        (
            "content-type".to_owned(),
            meta["contentType"]
                .as_str()
                .unwrap_or(DEFAULT_CONTENT_TYPE)
                .to_owned(),
        ),
        (
            "user-agent".to_owned(),
            "Amazon Simple Notification Service Agent".to_owned(),
        ),
    ];
    if kind != "SubscriptionConfirmation" {
        headers.push((
            "x-amz-sns-subscription-arn".to_owned(),
            meta["subscription"].as_str().unwrap_or("").to_owned(),
        ));
    }
    if raw {
        headers.push(("x-amz-sns-rawdelivery".to_owned(), "true".to_owned()));
    }
    if let Some(a) = authorization {
        headers.push(("authorization".to_owned(), a));
    }
    Ok(HttpRequest {
        url,
        headers,
        body,
        timeout: TIMEOUT,
    })
}

/// SNS counts an answer from 200 to 499 as delivered, except 429 (too many requests), which it
/// retries like a 5xx.
fn delivered(status: u16) -> bool {
    (200..500).contains(&status) && status != 429
}

async fn attempt(sns: &Sns, send: &HttpSender, job: Job) {
    let meta: Value = serde_json::from_str(&job.meta).unwrap_or_default();
    let subscription = meta["subscription"].as_str().unwrap_or("");
    let endpoint = redacted(meta["url"].as_str().unwrap_or(""));
    // A notification for a subscription that has since been deleted is not sent, nor a
    // confirmation for one deleted or confirmed meanwhile.
    let confirmation = meta["kind"] == "SubscriptionConfirmation";
    let wanted = state::subscription(&sns.db(), subscription)
        .ok()
        .flatten()
        .is_some_and(|s| s.pending == confirmation);
    if !wanted {
        tracing::info!(%subscription, "SNS delivery dropped: the subscription is gone or its state changed");
        finish(sns, &job).await;
        return;
    }
    let outcome = match request(sns, &job, &meta) {
        Ok(r) => send(r).await.and_then(|status| match delivered(status) {
            true => Ok(()),
            false => Err(format!("the endpoint answered {status}")),
        }),
        Err(e) => Err(e.to_string()),
    };
    // Notifications count toward the topic's delivered and failed metrics; confirmations do
    // not, as on SNS.
    let counted = !confirmation;
    let topic = meta["topic"]
        .as_str()
        .and_then(|t| t.rsplit(':').next())
        .unwrap_or("");
    let protocol = meta["protocol"].as_str().unwrap_or("http");
    let telemetry = sns.hub().telemetry();
    let Err(why) = outcome else {
        if counted {
            telemetry.record_sns_delivery(topic, protocol, true);
        }
        finish(sns, &job).await;
        return;
    };
    let attempts = job.attempts + 1;
    let retry = RetryPolicy::parse(&meta["retry"]).unwrap_or_default();
    match retry.delay_secs(attempts) {
        Some(delay) => {
            let delay_ms = (delay * 1000.0 * sns.hub().settings().delay_scale) as u64;
            tracing::warn!(%subscription, %endpoint, error = %why, attempt = attempts, retry_in_ms = delay_ms, "SNS HTTP delivery failed; retrying");
            let due = nimbus_events::now_ms() + delay_ms;
            if let Err(e) = sns
                .hub()
                .store()
                .reschedule_job(job.seq, due, attempts, 0)
                .await
            {
                tracing::error!(error = %e, "cannot reschedule an SNS delivery");
            }
        }
        None => {
            let dlq = meta["dlq"].as_array().and_then(|a| {
                Some((
                    a.first()?.as_str()?.to_owned(),
                    a.get(1)?.as_str()?.to_owned(),
                ))
            });
            if counted {
                telemetry.record_sns_delivery(topic, protocol, false);
            }
            let why = format!("{endpoint}: {why} after {attempts} attempt(s)");
            if let Err(e) = crate::ops::dead_letter(sns, &dlq, &why) {
                tracing::error!(error = %e, "cannot dead-letter an SNS delivery");
            }
            finish(sns, &job).await;
        }
    }
}

async fn finish(sns: &Sns, job: &Job) {
    if let Err(e) = sns.hub().store().finish_job(job.seq).await {
        tracing::error!(error = %e, "cannot finish an SNS delivery");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_policys_phases() {
        let p = |v: Value| RetryPolicy::parse(&v).unwrap();
        for (policy, want) in [
            (json!({}), vec![20.0, 20.0, 20.0]),
            (
                json!({"minDelayTarget": 1, "maxDelayTarget": 1, "numRetries": 2}),
                vec![1.0, 1.0],
            ),
            (
                json!({"minDelayTarget": 10, "maxDelayTarget": 40, "numRetries": 7,
                       "numNoDelayRetries": 1, "numMinDelayRetries": 1, "numMaxDelayRetries": 2}),
                vec![0.0, 10.0, 20.0, 30.0, 40.0, 40.0, 40.0],
            ),
            (json!({"numRetries": 0}), vec![]),
        ] {
            let policy = p(policy.clone());
            let got: Vec<f64> = (1..=policy.retries)
                .map(|k| policy.delay_secs(k).unwrap())
                .collect();
            assert_eq!(got, want, "{policy:?}");
            assert_eq!(policy.delay_secs(policy.retries + 1), None);
        }
        // Every curve climbs from the minimum to the maximum.
        for f in ["linear", "arithmetic", "geometric", "exponential"] {
            let policy = p(
                json!({"minDelayTarget": 1, "maxDelayTarget": 60, "numRetries": 10,
                                  "backoffFunction": f}),
            );
            let delays: Vec<f64> = (1..=10).map(|k| policy.delay_secs(k).unwrap()).collect();
            assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{f}: {delays:?}");
            assert_eq!(delays[9], 60.0, "{f}");
            assert!(delays[0] >= 1.0, "{f}");
        }
    }

    #[test]
    fn bad_policies_say_which_field_is_wrong() {
        for (policy, want) in [
            (
                json!({"minDelayTarget": 0}),
                "minDelayTarget must be at least 1",
            ),
            (
                json!({"maxDelayTarget": 4000}),
                "maxDelayTarget must be at most 3600",
            ),
            (
                json!({"numRetries": 3, "numNoDelayRetries": 4294967295u64, "numMinDelayRetries": 1}),
                "numNoDelayRetries must be at most 100",
            ),
            (
                json!({"minDelayTarget": 30, "maxDelayTarget": 20}),
                "must not exceed maxDelayTarget",
            ),
            (json!({"numRetries": 101}), "numRetries must be at most 100"),
            (
                json!({"numRetries": -1}),
                "numRetries must be a whole number",
            ),
            (json!({"backoffFunction": "cubic"}), "backoffFunction cubic"),
            (
                json!({"numRetries": 1, "numNoDelayRetries": 1, "numMinDelayRetries": 1}),
                "together must not exceed numRetries",
            ),
            (
                json!({"minDelayTarget": 3600, "maxDelayTarget": 3600, "numRetries": 2}),
                "SNS allows 3600",
            ),
        ] {
            let e = RetryPolicy::parse(&policy).unwrap_err();
            assert!(e.contains(want), "{policy}: {e}");
        }
        for (text, want) in [
            ("{not json", "not valid JSON"),
            ("[]", "must be a JSON object"),
            (
                r#"{"requestPolicy": {"headerContentType": 7}}"#,
                "headerContentType",
            ),
        ] {
            let e = check_subscription_policy(text).unwrap_err().to_string();
            assert!(
                e.starts_with("Invalid parameter: DeliveryPolicy: ") && e.contains(want),
                "{e}"
            );
        }
    }

    #[test]
    fn the_subscriptions_policy_wins_unless_the_topic_disables_overrides() {
        let topic = r#"{"http": {"defaultHealthyRetryPolicy": {"numRetries": 5},
                                 "defaultRequestPolicy": {"headerContentType": "application/json"}}}"#;
        let locked = r#"{"http": {"defaultHealthyRetryPolicy": {"numRetries": 5},
                                  "disableSubscriptionOverrides": true}}"#;
        let sub = r#"{"healthyRetryPolicy": {"numRetries": 1}}"#;
        for (t, s, retries, content_type) in [
            (None, None, 3, DEFAULT_CONTENT_TYPE),
            (Some(topic), None, 5, "application/json"),
            (Some(topic), Some(sub), 1, "application/json"),
            (Some(locked), Some(sub), 5, DEFAULT_CONTENT_TYPE),
        ] {
            let (policy, ct) = effective_policy(t, s);
            assert_eq!((policy.retries, ct.as_str()), (retries, content_type));
        }
    }

    #[test]
    fn credentials_in_the_url_become_basic_authentication_and_never_reach_logs() {
        for (url, bare, auth) in [
            ("https://example.com/hook", "https://example.com/hook", None),
            (
                "https://user:pa55@example.com/hook?x=1",
                "https://example.com/hook?x=1",
                Some("Basic dXNlcjpwYTU1"),
            ),
            ("http://u@h:8080", "http://h:8080", Some("Basic dTo=")),
            (
                "https://me:p%40ss%2Fw@example.com/x",
                "https://example.com/x",
                Some("Basic bWU6cEBzcy93"),
            ),
            (
                "https://me:a/b@example.com/x",
                "https://example.com/x",
                Some("Basic bWU6YS9i"),
            ),
        ] {
            let (u, a) = split_credentials(url);
            assert_eq!((u.as_str(), a.as_deref()), (bare, auth), "{url}");
            assert_eq!(redacted(url), bare);
        }
        for (status, ok) in [
            (200, true),
            (204, true),
            (404, true),
            (429, false),
            (499, true),
            (500, false),
            (503, false),
            (199, false),
        ] {
            assert_eq!(delivered(status), ok, "{status}");
        }
    }
}
