//! Who gets through: API keys, usage-plan throttles and quotas, stage and route throttles, and
//! the account-wide limit, in the order API Gateway applies them. Token buckets are governor's;
//! the clock is a parameter, so tests move time by hand.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::RateLimiter;
use nimbus_core::quota::Quota;
use time::OffsetDateTime;

use crate::config::{ApiConfig, RouteConfig, Throttle};

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// A token bucket, or a bucket that never has a token (a rate or burst of 0).
pub struct Bucket<C: Clock> {
    limiter: Option<Limiter<C>>,
}

impl<C: Clock + Clone> Bucket<C> {
    pub fn new(t: Throttle, clock: &C) -> Self {
        // NaN and negative rates refuse everything; the period is kept within what
        // `Duration` and governor represent.
        let limiter = NonZeroU32::new(t.burst)
            .filter(|_| t.rate > 0.0)
            .map(|burst| {
                let period = Duration::from_secs_f64(1.0 / t.rate.clamp(1e-6, 1e9));
                let quota = governor::Quota::with_period(period.max(Duration::from_nanos(1)))
                    .expect("period is positive")
                    .allow_burst(burst);
                RateLimiter::direct_with_clock(quota, clock.clone())
            });
        Self { limiter }
    }

    pub fn take(&self) -> bool {
        self.limiter.as_ref().is_some_and(|l| l.check().is_ok())
    }
}

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead; with the API key the caller presented, when the route required one.
    Allow { api_key: Option<(String, String)> },
    /// 403 `{"message":"Forbidden"}`: a required API key is missing, unknown or disabled.
    Forbidden,
    /// 429 `{"message":"Too Many Requests"}`.
    TooManyRequests,
    /// 429 `{"message":"Limit Exceeded"}`: the key's usage-plan quota is used up.
    LimitExceeded,
}

struct KeyState<C: Clock> {
    id: String,
    enabled: bool,
    bucket: Option<Bucket<C>>,
    quota: Option<Mutex<Quota>>,
}

/// Admission for one API stage.
pub struct Admission<C: Clock> {
    account: Arc<Bucket<C>>,
    stage: Option<Bucket<C>>,
    routes: HashMap<String, Bucket<C>>,
    /// By key value.
    keys: HashMap<String, KeyState<C>>,
}

impl<C: Clock + Clone> Admission<C> {
    pub fn new(api: &ApiConfig, account: Arc<Bucket<C>>, clock: &C) -> Self {
        let mut keys = HashMap::new();
        for plan in &api.usage_plans {
            for key in &plan.keys {
                // A key belongs to one plan per stage; the first one wins.
                keys.entry(key.value.clone()).or_insert_with(|| KeyState {
                    id: key.id.clone(),
                    enabled: key.enabled,
                    bucket: plan.throttle.map(|t| Bucket::new(t, clock)),
                    quota: plan
                        .quota
                        .map(|q| Mutex::new(Quota::new(q.limit, q.period, q.offset))),
                });
            }
        }
        Self {
            account,
            stage: api.stage_throttle.map(|t| Bucket::new(t, clock)),
            routes: api
                .route_throttles
                .iter()
                .map(|(k, t)| (k.clone(), Bucket::new(*t, clock)))
                .collect(),
            keys,
        }
    }

    /// Decides on a request for `route`, with the `x-api-key` header if any; `now` is for
    /// quotas (calendar periods).
    pub fn check(
        &self,
        route: &RouteConfig,
        api_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Verdict {
        let mut key_state = None;
        if route.api_key_required {
            let Some((value, state)) = api_key.and_then(|k| self.keys.get(k).map(|s| (k, s)))
            else {
                return Verdict::Forbidden;
            };
            if !state.enabled {
                return Verdict::Forbidden;
            }
            if state.bucket.as_ref().is_some_and(|b| !b.take()) {
                return Verdict::TooManyRequests;
            }
            key_state = Some((value, state));
        }
        // A MethodSettings entry for one path may name the method or `*`.
        let route_bucket = self
            .routes
            .get(&route.key())
            .or_else(|| self.routes.get(&format!("* {}", route.path)));
        match route_bucket {
            Some(b) if !b.take() => return Verdict::TooManyRequests,
            Some(_) => {}
            None if self.stage.as_ref().is_some_and(|b| !b.take()) => {
                return Verdict::TooManyRequests
            }
            None => {}
        }
        if !self.account.take() {
            return Verdict::TooManyRequests;
        }
        // Last, so that a throttled request does not count against the key's quota.
        let mut presented = None;
        if let Some((value, state)) = key_state {
            if let Some(q) = &state.quota {
                if !q.lock().expect("quota poisoned").try_consume(now) {
                    return Verdict::LimitExceeded;
                }
            }
            presented = Some((value.to_owned(), state.id.clone()));
        }
        Verdict::Allow { api_key: presented }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiKey, QuotaConfig, UsagePlan};
    use crate::{ApiKind, PayloadVersion};
    use governor::clock::FakeRelativeClock;
    use nimbus_core::quota::Period;
    use std::collections::BTreeMap;
    use time::macros::datetime;

    fn route(path: &str, key_required: bool) -> RouteConfig {
        RouteConfig {
            method: "GET".into(),
            path: path.into(),
            function: "F".into(),
            payload: PayloadVersion::V1,
            timeout: Duration::from_secs(29),
            api_key_required: key_required,
            authorizer: None,
            authorization_scopes: vec![],
            cache_ttl: 0,
            source: "test".into(),
            validation: None,
            unserved: None,
            service: None,
            rest: None,
            response_parameters: BTreeMap::new(),
        }
    }

    fn api(
        plans: Vec<UsagePlan>,
        stage: Option<Throttle>,
        routes: &[(&str, Throttle)],
    ) -> ApiConfig {
        ApiConfig {
            logical_id: "Api".into(),
            kind: ApiKind::Rest,
            stage: "Prod".into(),
            stage_variables: BTreeMap::new(),
            routes: vec![],
            binary_media_types: vec![],
            stage_throttle: stage,
            route_throttles: routes.iter().map(|(k, t)| (k.to_string(), *t)).collect(),
            usage_plans: plans,
            cors: None,
            authorizers: BTreeMap::new(),
            default_authorizer: None,
            default_api_key_required: false,
            api_key_from_authorizer: false,
            authorizer_on_preflight: true,
            api_key_on_preflight: true,
            cache_ttls: BTreeMap::new(),
            notes: vec![],
            gateway_responses: BTreeMap::new(),
        }
    }

    fn plan(
        throttle: Option<Throttle>,
        quota: Option<QuotaConfig>,
        keys: &[(&str, bool)],
    ) -> UsagePlan {
        UsagePlan {
            id: "Plan".into(),
            throttle,
            quota,
            keys: keys
                .iter()
                .map(|(v, enabled)| ApiKey {
                    id: format!("id-{v}"),
                    value: v.to_string(),
                    enabled: *enabled,
                    generated: false,
                })
                .collect(),
        }
    }

    fn unlimited(clock: &FakeRelativeClock) -> Arc<Bucket<FakeRelativeClock>> {
        Arc::new(Bucket::new(
            Throttle {
                rate: 10_000.0,
                burst: 5_000,
            },
            clock,
        ))
    }

    const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

    #[test]
    fn a_required_key_must_be_known_and_enabled() {
        let clock = FakeRelativeClock::default();
        let a = Admission::new(
            &api(
                vec![plan(None, None, &[("good", true), ("off", false)])],
                None,
                &[],
            ),
            unlimited(&clock),
            &clock,
        );
        let r = route("/w", true);
        assert_eq!(a.check(&r, None, NOW), Verdict::Forbidden);
        assert_eq!(a.check(&r, Some("nope"), NOW), Verdict::Forbidden);
        assert_eq!(a.check(&r, Some("off"), NOW), Verdict::Forbidden);
        assert_eq!(
            a.check(&r, Some("good"), NOW),
            Verdict::Allow {
                api_key: Some(("good".into(), "id-good".into()))
            }
        );
        // Routes without ApiKeyRequired ignore keys entirely.
        assert_eq!(
            a.check(&route("/open", false), None, NOW),
            Verdict::Allow { api_key: None }
        );
    }

    #[test]
    fn a_key_throttle_allows_the_burst_then_refills_at_the_rate() {
        let clock = FakeRelativeClock::default();
        let p = plan(
            Some(Throttle {
                rate: 10.0,
                burst: 2,
            }),
            None,
            &[("k", true)],
        );
        let a = Admission::new(&api(vec![p], None, &[]), unlimited(&clock), &clock);
        let r = route("/w", true);
        assert!(matches!(a.check(&r, Some("k"), NOW), Verdict::Allow { .. }));
        assert!(matches!(a.check(&r, Some("k"), NOW), Verdict::Allow { .. }));
        assert_eq!(a.check(&r, Some("k"), NOW), Verdict::TooManyRequests);
        clock.advance(Duration::from_millis(100));
        assert!(matches!(a.check(&r, Some("k"), NOW), Verdict::Allow { .. }));
        assert_eq!(a.check(&r, Some("k"), NOW), Verdict::TooManyRequests);
    }

    #[test]
    fn a_quota_answers_limit_exceeded_until_the_next_period() {
        let clock = FakeRelativeClock::default();
        let q = QuotaConfig {
            limit: 2,
            period: Period::Day,
            offset: 0,
        };
        let a = Admission::new(
            &api(vec![plan(None, Some(q), &[("k", true)])], None, &[]),
            unlimited(&clock),
            &clock,
        );
        let r = route("/w", true);
        assert!(matches!(a.check(&r, Some("k"), NOW), Verdict::Allow { .. }));
        assert!(matches!(a.check(&r, Some("k"), NOW), Verdict::Allow { .. }));
        assert_eq!(a.check(&r, Some("k"), NOW), Verdict::LimitExceeded);
        assert!(matches!(
            a.check(&r, Some("k"), datetime!(2026-11-23 00:00 UTC)),
            Verdict::Allow { .. }
        ));
    }

    #[test]
    fn route_throttles_override_the_stage_throttle_and_the_account_limit_applies_to_all() {
        let clock = FakeRelativeClock::default();
        let stage = Throttle {
            rate: 1.0,
            burst: 1,
        };
        let hot = Throttle {
            rate: 1.0,
            burst: 3,
        };
        let account = Arc::new(Bucket::new(
            Throttle {
                rate: 1.0,
                burst: 5,
            },
            &clock,
        ));
        let a = Admission::new(
            &api(vec![], Some(stage), &[("GET /hot", hot)]),
            account,
            &clock,
        );
        assert!(matches!(
            a.check(&route("/cold", false), None, NOW),
            Verdict::Allow { .. }
        ));
        assert_eq!(
            a.check(&route("/cold", false), None, NOW),
            Verdict::TooManyRequests
        );
        for _ in 0..3 {
            assert!(matches!(
                a.check(&route("/hot", false), None, NOW),
                Verdict::Allow { .. }
            ));
        }
        assert_eq!(
            a.check(&route("/hot", false), None, NOW),
            Verdict::TooManyRequests
        );
        // 4 requests spent of the account's burst of 5; the stage bucket refills first.
        clock.advance(Duration::from_secs(1));
        assert!(matches!(
            a.check(&route("/cold", false), None, NOW),
            Verdict::Allow { .. }
        ));
        clock.advance(Duration::from_secs(1));
        assert!(matches!(
            a.check(&route("/cold", false), None, NOW),
            Verdict::Allow { .. }
        ));
    }

    #[test]
    fn a_throttled_request_does_not_count_against_the_quota() {
        let clock = FakeRelativeClock::default();
        let q = QuotaConfig {
            limit: 1,
            period: Period::Day,
            offset: 0,
        };
        let stage = Throttle {
            rate: 1.0,
            burst: 1,
        };
        let a = Admission::new(
            &api(vec![plan(None, Some(q), &[("k", true)])], Some(stage), &[]),
            unlimited(&clock),
            &clock,
        );
        let r = route("/w", true);
        assert!(matches!(a.check(&r, Some("k"), NOW), Verdict::Allow { .. }));
        // The quota of 1 is spent; the next refusal is the stage's, and does not touch it.
        assert_eq!(a.check(&r, Some("k"), NOW), Verdict::TooManyRequests);
        clock.advance(Duration::from_secs(1));
        assert_eq!(a.check(&r, Some("k"), NOW), Verdict::LimitExceeded);
    }

    #[test]
    fn a_method_setting_for_every_method_of_a_path_applies_to_its_routes() {
        let clock = FakeRelativeClock::default();
        let a = Admission::new(
            &api(
                vec![],
                None,
                &[(
                    "* /w",
                    Throttle {
                        rate: 1.0,
                        burst: 1,
                    },
                )],
            ),
            unlimited(&clock),
            &clock,
        );
        assert!(matches!(
            a.check(&route("/w", false), None, NOW),
            Verdict::Allow { .. }
        ));
        assert_eq!(
            a.check(&route("/w", false), None, NOW),
            Verdict::TooManyRequests
        );
    }

    #[test]
    fn nan_tiny_and_huge_rates_do_not_panic() {
        let clock = FakeRelativeClock::default();
        assert!(!Bucket::new(
            Throttle {
                rate: f64::NAN,
                burst: 1
            },
            &clock
        )
        .take());
        assert!(Bucket::new(
            Throttle {
                rate: 1e-20,
                burst: 1
            },
            &clock
        )
        .take());
        assert!(Bucket::new(
            Throttle {
                rate: f64::MAX,
                burst: 1
            },
            &clock
        )
        .take());
    }

    #[test]
    fn a_rate_or_burst_of_zero_refuses_everything() {
        let clock = FakeRelativeClock::default();
        assert!(!Bucket::new(
            Throttle {
                rate: 0.0,
                burst: 10
            },
            &clock
        )
        .take());
        assert!(!Bucket::new(
            Throttle {
                rate: 5.0,
                burst: 0
            },
            &clock
        )
        .take());
    }
}
