//! The weather service: cache first; on a miss one upstream exchange per city at a time
//! (geocode, then current weather), retried and guarded by the circuit breaker within the
//! invocation's deadline; a stale entry covers a failing provider.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use serde_json::Value;

use crate::breaker::{Admit, Breaker};
use crate::cache::{Entry, Store};
use crate::config::{Config, ProviderConfig};
use crate::error::ApiError;
use crate::model::{render, CacheInfo, Observation, Place};
use crate::provider::{open_meteo, owm, redact, Invalid};
use crate::request::WeatherQuery;
use crate::retry::{FailureClass, Next, Stop};
use crate::singleflight::Group;
use crate::telemetry::{CacheOutcome, UpstreamStats};
use crate::upstream;

/// Wall-clock time in Unix milliseconds; tests substitute their own.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// Why the provider gave no weather.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchError {
    NotFound,
    Invalid {
        url: String,
        detail: String,
    },
    Rejected {
        url: String,
        status: u16,
    },
    Unavailable {
        url: String,
        detail: String,
        attempts: u32,
        retry_after: Option<Duration>,
    },
    CircuitOpen {
        retry_after: Duration,
    },
    Deadline {
        url: String,
        detail: String,
    },
}

/// Without a hint from the provider, when a client should try again after a 503.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How often an environment waiting for another's fetch looks at the shared cache.
const LOCK_POLL: Duration = Duration::from_millis(20);

impl FetchError {
    fn api_error(&self, provider: &str, city: &str) -> ApiError {
        let secs = |d: Duration| d.as_millis().div_ceil(1000).max(1) as u64;
        match self {
            FetchError::NotFound => ApiError::new(
                404,
                "city_not_found",
                format!("{provider} knows no city named {city:?}"),
            ),
            FetchError::Invalid { url, detail } => ApiError::new(
                502,
                "provider_bad_response",
                format!("{provider} answered with something that is not weather (GET {url}): {detail}"),
            ),
            FetchError::Rejected { url, status } => ApiError::new(
                502,
                "provider_rejected",
                format!("{provider} refused the request with HTTP {status} (GET {url}); check the provider settings"),
            ),
            FetchError::Unavailable {
                url,
                detail,
                attempts,
                retry_after,
            } => ApiError {
                retry_after: Some(secs(retry_after.unwrap_or(DEFAULT_RETRY_AFTER))),
                ..ApiError::new(
                    503,
                    "provider_unavailable",
                    format!("{provider} is unavailable: {detail} (GET {url}, {attempts} attempt(s))"),
                )
            },
            FetchError::CircuitOpen { retry_after } => ApiError {
                retry_after: Some(secs(*retry_after)),
                ..ApiError::new(
                    503,
                    "circuit_open",
                    format!("{provider} failed repeatedly; not calling it for {} s", secs(*retry_after)),
                )
            },
            FetchError::Deadline { url, detail } => ApiError::new(
                504,
                "deadline_exceeded",
                format!("no answer from {provider} in the time this request has left ({detail}; GET {url})"),
            ),
        }
    }
}

/// What one weather request produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub result: Result<Value, ApiError>,
    pub cache: CacheOutcome,
    pub upstream: UpstreamStats,
    /// Seconds the answer stays fresh, for `Cache-Control`.
    pub fresh_for: Option<u64>,
}

type Flight = (Result<Fetched, FetchError>, UpstreamStats);

#[derive(Debug, Clone)]
struct Fetched {
    entry: Arc<Entry>,
    /// Another environment fetched it; this one read it from the shared cache.
    shared: bool,
}

pub struct Service {
    config: Config,
    http: reqwest::Client,
    store: Store,
    breaker: Mutex<Breaker>,
    flights: Group<String, Flight>,
    clock: Arc<dyn Clock>,
}

impl Service {
    pub fn new(config: Config, store: Store, clock: Arc<dyn Clock>) -> Service {
        let http = reqwest::Client::builder()
            .user_agent(concat!("nimbus-weather/", env!("CARGO_PKG_VERSION")))
            // Each attempt has its own deadline-derived timeout; this bounds connecting.
            .connect_timeout(config.retry.attempt_timeout)
            .build()
            .expect("the HTTP client builds with static settings");
        Service {
            breaker: Mutex::new(Breaker::new(config.breaker_threshold, config.breaker_open)),
            config,
            http,
            store,
            flights: Group::default(),
            clock,
        }
    }

    pub fn provider(&self) -> &'static str {
        self.config.provider.name()
    }

    pub fn metrics_namespace(&self) -> &str {
        &self.config.metrics_namespace
    }

    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// The weather for `q`, answering before `deadline_ms` (Unix ms, the invocation's).
    pub async fn weather(&self, q: &WeatherQuery, deadline_ms: u64) -> Outcome {
        let key = q.key();
        let cached = self.cache_get(&key).await;
        let now = self.clock.now_ms();
        if let Some(e) = cached
            .as_ref()
            .filter(|e| e.is_fresh(now, self.config.cache_ttl))
        {
            return self.answer(q, e, CacheOutcome::Hit, UpstreamStats::default());
        }
        let (flight, ran) = self
            .flights
            .run(key.clone(), || self.fetch_shared(q, &key, deadline_ms))
            .await;
        // Stats belong to the request whose fetch it was; the others made no upstream call.
        let stats = if ran {
            flight.1
        } else {
            UpstreamStats::default()
        };
        match flight.0 {
            Ok(f) => {
                let outcome = match ran && !f.shared {
                    true => CacheOutcome::Miss,
                    false => CacheOutcome::Hit,
                };
                self.answer(q, &f.entry, outcome, stats)
            }
            // "No such city" is an answer, not a failure a stale entry should cover.
            Err(err) => match cached {
                Some(stale) if err != FetchError::NotFound => {
                    self.answer(q, &stale, CacheOutcome::Stale, stats)
                }
                _ => Outcome {
                    result: Err(err.api_error(self.provider(), &q.city)),
                    cache: CacheOutcome::Miss,
                    upstream: stats,
                    fresh_for: None,
                },
            },
        }
    }

    fn answer(
        &self,
        q: &WeatherQuery,
        e: &Entry,
        outcome: CacheOutcome,
        upstream: UpstreamStats,
    ) -> Outcome {
        let age = e.age(self.clock.now_ms());
        let info = CacheInfo {
            hit: outcome != CacheOutcome::Miss,
            stale: outcome == CacheOutcome::Stale,
            age_seconds: age.as_secs(),
        };
        let fresh_for = match outcome {
            CacheOutcome::Stale => 0,
            _ => self.config.cache_ttl.saturating_sub(age).as_secs(),
        };
        Outcome {
            result: Ok(render(&e.observation, q.units, info)),
            cache: outcome,
            upstream,
            fresh_for: Some(fresh_for),
        }
    }

    async fn cache_get(&self, key: &str) -> Option<Entry> {
        match self.store.get(key).await {
            Ok(e) => e,
            Err(err) => {
                warn(&format!("cache read failed, treating as a miss: {err}"));
                None
            }
        }
    }

    /// The fetch for one city in this environment, coordinated with other environments
    /// through the shared cache's lock: one fetches, the others wait for its entry.
    async fn fetch_shared(&self, q: &WeatherQuery, key: &str, deadline_ms: u64) -> Flight {
        let mut stats = UpstreamStats::default();
        let token = format!("{:016x}", rand::random::<u64>());
        let lock_ttl = Duration::from_millis(deadline_ms.saturating_sub(self.clock.now_ms()))
            .clamp(Duration::from_secs(1), Duration::from_secs(60));
        let locked = match self.store.try_lock(key, &token, lock_ttl).await {
            Ok(l) => l,
            Err(err) => {
                warn(&format!("cache lock failed, fetching without it: {err}"));
                true
            }
        };
        if !locked {
            // Another environment is fetching: wait for its entry, but leave enough time to
            // fetch here if it never comes.
            let now = self.clock.now_ms();
            let wait_until = (now + lock_ttl.as_millis() as u64).min(deadline_ms.saturating_sub(
                (self.config.retry.attempt_timeout.as_millis() as u64).saturating_mul(2),
            ));
            while self.clock.now_ms() < wait_until {
                tokio::time::sleep(LOCK_POLL).await;
                if let Some(fetched) = self.fresh_shared(key).await {
                    return (Ok(fetched), stats);
                }
                // The holder gave up or died (its lock expired): take over.
                if self
                    .store
                    .try_lock(key, &token, lock_ttl)
                    .await
                    .unwrap_or(true)
                {
                    break;
                }
            }
        }
        // The previous holder may have stored its entry and let go between this request's
        // cache read and its lock: look again before calling the provider.
        if let Some(fetched) = self.fresh_shared(key).await {
            self.unlock(key, &token).await;
            return (Ok(fetched), stats);
        }
        let result = self.fetch(q, deadline_ms, &mut stats).await;
        let result = match result {
            Ok(observation) => {
                let entry = Entry {
                    observation,
                    fetched_at_ms: self.clock.now_ms(),
                };
                if let Err(err) = self
                    .store
                    .put(key, entry.clone(), self.config.stale_ttl)
                    .await
                {
                    warn(&format!("cache write failed: {err}"));
                }
                Ok(Fetched {
                    entry: Arc::new(entry),
                    shared: false,
                })
            }
            Err(e) => Err(e),
        };
        self.unlock(key, &token).await;
        (result, stats)
    }

    /// A fresh entry another fetch (here or in another environment) stored meanwhile.
    async fn fresh_shared(&self, key: &str) -> Option<Fetched> {
        let e = self.cache_get(key).await?;
        e.is_fresh(self.clock.now_ms(), self.config.cache_ttl)
            .then(|| Fetched {
                entry: Arc::new(e),
                shared: true,
            })
    }

    async fn unlock(&self, key: &str, token: &str) {
        if let Err(err) = self.store.unlock(key, token).await {
            warn(&format!(
                "cache unlock failed (the lock expires by itself): {err}"
            ));
        }
    }

    async fn fetch(
        &self,
        q: &WeatherQuery,
        deadline_ms: u64,
        stats: &mut UpstreamStats,
    ) -> Result<Observation, FetchError> {
        let country = q.country.as_deref();
        match &self.config.provider {
            ProviderConfig::OpenMeteo {
                geocoding,
                forecast,
            } => {
                let url = open_meteo::geocode_url(geocoding, &q.city, country);
                let place = self
                    .call(&url, open_meteo::parse_geocode, deadline_ms, stats)
                    .await?
                    .ok_or(FetchError::NotFound)?;
                let place = matching_country(place, country)?;
                let url = open_meteo::forecast_url(forecast, &place);
                self.call(
                    &url,
                    |b| open_meteo::parse_current(b, &place),
                    deadline_ms,
                    stats,
                )
                .await
            }
            ProviderConfig::OpenWeatherMap { base, key } => {
                let url = owm::geocode_url(base, &q.city, country, key.expose());
                let place = self
                    .call(&url, owm::parse_geocode, deadline_ms, stats)
                    .await?
                    .ok_or(FetchError::NotFound)?;
                let place = matching_country(place, country)?;
                let url = owm::weather_url(base, &place, key.expose());
                self.call(&url, |b| owm::parse_current(b, &place), deadline_ms, stats)
                    .await
            }
        }
    }

    /// One provider call with retries, breaker and deadline; `parse` turns a 200's body into
    /// the answer.
    async fn call<T>(
        &self,
        url: &Url,
        parse: impl Fn(&[u8]) -> Result<T, Invalid>,
        deadline_ms: u64,
        stats: &mut UpstreamStats,
    ) -> Result<T, FetchError> {
        let policy = self.config.retry;
        let shown = redact(url);
        let mut attempts = 0;
        loop {
            let now = self.clock.now_ms();
            let remaining = Duration::from_millis(deadline_ms.saturating_sub(now));
            let Some(timeout) = policy.attempt_timeout(remaining) else {
                return Err(FetchError::Deadline {
                    url: shown,
                    detail: format!("{} ms left", remaining.as_millis()),
                });
            };
            if let Admit::No { retry_after } = self.breaker().admit(now) {
                return Err(FetchError::CircuitOpen { retry_after });
            }
            attempts += 1;
            stats.attempts += 1;
            let started = Instant::now();
            let answer = upstream::get(&self.http, url, timeout).await;
            stats.latency_ms += started.elapsed().as_secs_f64() * 1000.0;
            let failure = match answer {
                Ok(body) => match parse(&body) {
                    Ok(v) => {
                        self.breaker().success();
                        return Ok(v);
                    }
                    Err(Invalid(detail)) => {
                        stats.errors += 1;
                        self.breaker().failure(self.clock.now_ms());
                        return Err(FetchError::Invalid { url: shown, detail });
                    }
                },
                Err(f) => f,
            };
            stats.errors += 1;
            match failure.class {
                FailureClass::Transient { .. } => self.breaker().failure(self.clock.now_ms()),
                // A 4xx is the provider answering: it is up.
                FailureClass::Permanent => self.breaker().success(),
            }
            let remaining = Duration::from_millis(deadline_ms.saturating_sub(self.clock.now_ms()));
            match policy.next(attempts, failure.class, remaining, rand::random::<f64>()) {
                Next::RetryAfter(delay) => {
                    stats.retries += 1;
                    tokio::time::sleep(delay).await;
                }
                Next::Stop(Stop::NotRetryable) => {
                    return Err(match failure.status {
                        Some(status) => FetchError::Rejected { url: shown, status },
                        None => FetchError::Invalid {
                            url: shown,
                            detail: failure.detail,
                        },
                    })
                }
                Next::Stop(Stop::AttemptsExhausted) => {
                    return Err(FetchError::Unavailable {
                        url: shown,
                        detail: failure.detail,
                        attempts,
                        retry_after: failure.class.retry_after(),
                    });
                }
                Next::Stop(Stop::RetryAfterTooLong(d)) => {
                    return Err(FetchError::Unavailable {
                        url: shown,
                        detail: format!("{} and asked to wait {} s", failure.detail, d.as_secs()),
                        attempts,
                        retry_after: Some(d),
                    })
                }
                Next::Stop(Stop::Deadline) => {
                    return Err(FetchError::Deadline {
                        url: shown,
                        detail: failure.detail,
                    })
                }
            }
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().expect("breaker lock poisoned")
    }
}

/// A geocoder may ignore the country filter; a match elsewhere is not the city asked for.
fn matching_country(place: Place, country: Option<&str>) -> Result<Place, FetchError> {
    match country {
        Some(c) if !place.country.eq_ignore_ascii_case(c) => Err(FetchError::NotFound),
        _ => Ok(place),
    }
}

/// A warning in the same JSON-lines shape as the request records.
pub fn warn(message: &str) {
    println!(
        "{}",
        serde_json::json!({"level": "WARN", "message": message})
    );
}
