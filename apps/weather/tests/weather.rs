//! The weather function's behaviour without Lambda: provider mapping on fixtures in each
//! provider's documented format, validation, and the service (retries, breaker, cache,
//! deadline) against a local fake provider, with a clock the test moves.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest::Url;
use serde_json::Value;
use weather::cache::Store;
use weather::config::Config;
use weather::model::{Place, Units};
use weather::provider::{open_meteo, owm};
use weather::request::{validate, WeatherQuery};
use weather::service::{Clock, Service};
use weather::telemetry::CacheOutcome;

/// The package's directory as `cargo test` gives it when the test runs: a test binary reused
/// from a checkout elsewhere (a shared target directory) would carry that checkout's path.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", manifest_dir());
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---- provider mapping -------------------------------------------------------------------

#[test]
fn open_meteo_geocoding_maps_the_best_match_and_none_for_no_results() {
    let place = open_meteo::parse_geocode(&fixture("open_meteo_geocoding_berlin.json"))
        .unwrap()
        .unwrap();
    assert_eq!(
        place,
        Place {
            name: "Berlin".into(),
            country: "DE".into(),
            latitude: 52.52437,
            longitude: 13.41053
        }
    );
    assert_eq!(
        open_meteo::parse_geocode(&fixture("open_meteo_geocoding_none.json")).unwrap(),
        None
    );
    assert!(open_meteo::parse_geocode(b"<html>busy</html>").is_err());
}

#[test]
fn open_meteo_current_maps_to_the_common_shape() {
    let place = open_meteo::parse_geocode(&fixture("open_meteo_geocoding_berlin.json"))
        .unwrap()
        .unwrap();
    let obs =
        open_meteo::parse_current(&fixture("open_meteo_forecast_current.json"), &place).unwrap();
    assert_eq!(obs.city, "Berlin");
    assert_eq!(obs.observed_at, 1_763_805_600);
    assert_eq!(obs.temperature_c, 4.7);
    assert_eq!(obs.feels_like_c, 1.2);
    assert_eq!(obs.humidity_pct, 81.0);
    assert_eq!(obs.pressure_hpa, 1009.6);
    assert_eq!(obs.wind_speed_ms, 4.3);
    assert_eq!(obs.wind_direction_deg, 247.0);
    assert_eq!(obs.condition.code, "rain");
    assert_eq!(obs.condition.provider_code, 61);
    assert_eq!(obs.provider, "open-meteo");
    // The error document Open-Meteo sends with a 400 is not weather.
    let e = open_meteo::parse_current(&fixture("open_meteo_error.json"), &place).unwrap_err();
    assert!(e.0.contains("documented JSON"), "{e}");
}

#[test]
fn open_meteo_urls_ask_for_metric_unix_time_and_the_country() {
    let base = Url::parse("https://geocoding-api.open-meteo.com").unwrap();
    let url = open_meteo::geocode_url(&base, "São Paulo", Some("BR"));
    assert_eq!(
        url.as_str(),
        "https://geocoding-api.open-meteo.com/v1/search?name=S%C3%A3o+Paulo&count=1&language=en&format=json&countryCode=BR"
    );
    let place = Place {
        name: "x".into(),
        country: "BR".into(),
        latitude: -23.5,
        longitude: -46.6,
    };
    let url = open_meteo::forecast_url(&Url::parse("https://api.open-meteo.com/").unwrap(), &place);
    let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(url.path(), "/v1/forecast");
    assert!(q.contains(&("wind_speed_unit".into(), "ms".into())));
    assert!(q.contains(&("timeformat".into(), "unixtime".into())));
    assert!(q.contains(&("latitude".into(), "-23.5".into())));
}

#[test]
fn openweathermap_maps_to_the_same_shape() {
    let place = owm::parse_geocode(&fixture("owm_geocoding_london.json"))
        .unwrap()
        .unwrap();
    assert_eq!(place.country, "GB");
    assert_eq!(owm::parse_geocode(b"[]").unwrap(), None);
    let obs = owm::parse_current(&fixture("owm_current_metric.json"), &place).unwrap();
    assert_eq!(obs.city, "London");
    assert_eq!(obs.temperature_c, 12.33);
    assert_eq!(obs.feels_like_c, 11.59);
    assert_eq!(obs.humidity_pct, 84.0);
    assert_eq!(obs.pressure_hpa, 1015.0);
    assert_eq!(obs.wind_speed_ms, 5.66);
    assert_eq!(obs.wind_direction_deg, 230.0);
    assert_eq!(obs.condition.code, "rain");
    assert_eq!(obs.condition.text, "Moderate rain");
    assert_eq!(obs.provider, "openweathermap");
    // Kelvin (the API's default units) is caught as implausible rather than served as 298 °C.
    let e = owm::parse_current(&fixture("owm_current_standard_units.json"), &place).unwrap_err();
    assert!(e.0.contains("implausible"), "{e}");
    assert!(owm::parse_current(&fixture("owm_unauthorized.json"), &place).is_err());
}

#[test]
fn openweathermap_urls_carry_the_key_and_metric_units() {
    let base = Url::parse("https://api.openweathermap.org").unwrap();
    let url = owm::geocode_url(&base, "London", Some("GB"), "k");
    assert_eq!(
        url.as_str(),
        "https://api.openweathermap.org/geo/1.0/direct?q=London%2CGB&limit=1&appid=k"
    );
    let place = Place {
        name: "London".into(),
        country: "GB".into(),
        latitude: 51.5,
        longitude: -0.12,
    };
    let url = owm::weather_url(&base, &place, "k");
    assert_eq!(
        url.as_str(),
        "https://api.openweathermap.org/data/2.5/weather?lat=51.5&lon=-0.12&units=metric&appid=k"
    );
}

// ---- validation -------------------------------------------------------------------------

#[test]
fn validation_accepts_good_input_and_names_what_is_wrong_otherwise() {
    let ok = validate(Some("  Melbourne "), Some("au"), Some("imperial")).unwrap();
    assert_eq!(
        ok,
        WeatherQuery {
            city: "Melbourne".into(),
            country: Some("AU".into()),
            units: Units::Imperial
        }
    );
    assert_eq!(
        validate(Some("Zürich"), None, None).unwrap().units,
        Units::Metric
    );
    assert_eq!(
        validate(Some(&"é".repeat(100)), None, None)
            .unwrap()
            .city
            .chars()
            .count(),
        100
    );
    // (city, country, units, expected error code)
    type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, &'a str);
    let cases: &[Case] = &[
        (None, None, None, "invalid_city"),
        (Some(""), None, None, "invalid_city"),
        (Some("   "), None, None, "invalid_city"),
        (Some(&"a".repeat(101)), None, None, "invalid_city"),
        (Some("Mel\u{0}bourne"), None, None, "invalid_city"),
        (Some("Mel\nbourne"), None, None, "invalid_city"),
        (Some("Paris"), Some("FRA"), None, "invalid_country"),
        (Some("Paris"), Some("F1"), None, "invalid_country"),
        (Some("Paris"), None, Some("kelvin"), "invalid_units"),
        (Some("Paris"), None, Some("Metric"), "invalid_units"),
    ];
    for (city, country, units, code) in cases {
        let e = validate(*city, *country, *units).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (400, *code),
            "{city:?} {country:?} {units:?}"
        );
    }
}

#[test]
fn the_cache_key_ignores_case_and_units() {
    let a = validate(Some("melbourne"), Some("au"), Some("metric")).unwrap();
    let b = validate(Some("MELBOURNE"), Some("AU"), Some("imperial")).unwrap();
    assert_eq!(a.key(), b.key());
    assert_ne!(
        a.key(),
        validate(Some("melbourne"), None, None).unwrap().key()
    );
}

#[test]
fn the_openapi_document_describes_every_route() {
    let doc: Value = serde_json::from_str(weather::OPENAPI).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/weather", "/weather/{city}", "/openapi.json"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path}");
    }
}

// ---- the service against a fake provider ------------------------------------------------

/// Real time plus an offset the test can advance (the deadline logic needs time to pass for
/// real while a provider hangs; freshness and the breaker need big jumps).
#[derive(Default)]
struct TestClock(AtomicU64);

impl TestClock {
    fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        real + self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone, Copy, Debug)]
enum Answer {
    Ok,
    Status(u16),
    RateLimited { retry_after_secs: u64 },
    Garbage,
    Hang,
}

#[derive(Default)]
struct FakeState {
    /// Answers for the next calls, in order; `Answer::Ok` once empty.
    script: Mutex<VecDeque<Answer>>,
    /// Used when the script is empty.
    fallback: Mutex<Option<Answer>>,
    calls: Mutex<Vec<String>>,
    owm_key: Mutex<String>,
}

struct Fake {
    state: Arc<FakeState>,
    url: Url,
}

impl Fake {
    async fn start() -> Fake {
        let state = Arc::new(FakeState::default());
        let app = axum::Router::new()
            .route("/v1/search", get(om_search))
            .route("/v1/forecast", get(om_forecast))
            .route("/geo/1.0/direct", get(owm_geo))
            .route("/data/2.5/weather", get(owm_weather))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake { state, url }
    }

    fn script(&self, answers: &[Answer]) {
        self.state.script.lock().unwrap().extend(answers);
    }

    fn always(&self, answer: Option<Answer>) {
        *self.state.fallback.lock().unwrap() = answer;
    }

    fn calls(&self) -> Vec<String> {
        self.state.calls.lock().unwrap().clone()
    }
}

async fn scripted(state: &FakeState, what: &str, ok: Response) -> Response {
    state.calls.lock().unwrap().push(what.to_owned());
    let next = state.script.lock().unwrap().pop_front();
    let answer = next
        .or(*state.fallback.lock().unwrap())
        .unwrap_or(Answer::Ok);
    match answer {
        Answer::Ok => ok,
        Answer::Status(code) => (StatusCode::from_u16(code).unwrap(), "{}").into_response(),
        Answer::RateLimited { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", retry_after_secs.to_string())],
            "{}",
        )
            .into_response(),
        Answer::Garbage => (StatusCode::OK, "<html>maintenance</html>").into_response(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            ok
        }
    }
}

type Params = Query<std::collections::HashMap<String, String>>;

fn json(body: Vec<u8>) -> Response {
    ([("content-type", "application/json")], body).into_response()
}

async fn om_search(State(s): State<Arc<FakeState>>, Query(p): Params) -> Response {
    let body = match p.get("name").map(String::as_str) {
        Some("Atlantis") => fixture("open_meteo_geocoding_none.json"),
        _ => fixture("open_meteo_geocoding_berlin.json"),
    };
    scripted(&s, "geocode", json(body)).await
}

async fn om_forecast(State(s): State<Arc<FakeState>>) -> Response {
    scripted(
        &s,
        "forecast",
        json(fixture("open_meteo_forecast_current.json")),
    )
    .await
}

async fn owm_geo(State(s): State<Arc<FakeState>>, Query(p): Params, _h: HeaderMap) -> Response {
    if p.get("appid") != Some(&*s.owm_key.lock().unwrap()) {
        return (StatusCode::UNAUTHORIZED, fixture("owm_unauthorized.json")).into_response();
    }
    scripted(&s, "geocode", json(fixture("owm_geocoding_london.json"))).await
}

async fn owm_weather(State(s): State<Arc<FakeState>>, Query(p): Params) -> Response {
    if p.get("appid") != Some(&*s.owm_key.lock().unwrap())
        || p.get("units").map(String::as_str) != Some("metric")
    {
        return (StatusCode::UNAUTHORIZED, fixture("owm_unauthorized.json")).into_response();
    }
    scripted(&s, "weather", json(fixture("owm_current_metric.json"))).await
}

fn service(fake: &Fake, clock: Arc<TestClock>, extra: &[(&str, &str)]) -> Service {
    let base = fake.url.to_string();
    let mut vars: Vec<(String, String)> = vec![
        ("OPEN_METEO_GEOCODING_URL".into(), base.clone()),
        ("OPEN_METEO_FORECAST_URL".into(), base.clone()),
        ("OPENWEATHERMAP_URL".into(), base),
        ("UPSTREAM_RETRY_BASE_MS".into(), "5".into()),
        ("UPSTREAM_RETRY_MAX_MS".into(), "20".into()),
        ("UPSTREAM_TIMEOUT_MS".into(), "500".into()),
        ("UPSTREAM_MAX_ATTEMPTS".into(), "3".into()),
        ("BREAKER_FAILURE_THRESHOLD".into(), "5".into()),
        ("BREAKER_OPEN_SECONDS".into(), "30".into()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_vars(|k| {
        vars.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    let store = Store::memory(config.stale_ttl);
    Service::new(config, store, clock)
}

fn berlin() -> WeatherQuery {
    validate(Some("Berlin"), None, None).unwrap()
}

/// A deadline this far from the service clock's now.
fn deadline(clock: &TestClock, budget: Duration) -> u64 {
    clock.now_ms() + budget.as_millis() as u64
}

#[tokio::test]
async fn a_miss_fetches_then_the_cache_answers_in_either_unit() {
    let fake = Fake::start().await;
    let clock = Arc::new(TestClock::default());
    let svc = service(&fake, clock.clone(), &[]);
    let out = svc
        .weather(&berlin(), deadline(&clock, Duration::from_secs(5)))
        .await;
    let body = out.result.unwrap();
    assert_eq!(out.cache, CacheOutcome::Miss);
    assert_eq!(out.upstream.attempts, 2);
    assert_eq!(body["temperature"], 4.7);
    assert_eq!(body["cache"]["hit"], false);
    assert_eq!(fake.calls(), ["geocode", "forecast"]);

    clock.advance(Duration::from_secs(90));
    let imperial = validate(Some("berlin"), None, Some("imperial")).unwrap();
    let out = svc
        .weather(&imperial, deadline(&clock, Duration::from_secs(5)))
        .await;
    let body = out.result.unwrap();
    assert_eq!(out.cache, CacheOutcome::Hit);
    assert_eq!(out.upstream.attempts, 0);
    assert_eq!(body["temperature"], 40.5);
    assert_eq!(
        body["cache"],
        serde_json::json!({"hit": true, "stale": false, "age_seconds": 90})
    );
    // 600 s of freshness less an age of 90 s and the few real milliseconds the test took
    // (TestClock runs on real time), in whole seconds rounded down.
    assert!(
        matches!(out.fresh_for, Some(509..=510)),
        "{:?}",
        out.fresh_for
    );
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_and_answer_once() {
    let fake = Fake::start().await;
    let clock = Arc::new(TestClock::default());
    let svc = service(&fake, clock.clone(), &[]);
    fake.script(&[Answer::Status(500), Answer::Status(503)]);
    let out = svc
        .weather(&berlin(), deadline(&clock, Duration::from_secs(5)))
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(out.upstream.attempts, 4);
    assert_eq!(out.upstream.retries, 2);
    assert_eq!(out.upstream.errors, 2);
    assert_eq!(fake.calls(), ["geocode", "geocode", "geocode", "forecast"]);
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_time_the_provider_asks() {
    let fake = Fake::start().await;
    let clock = Arc::new(TestClock::default());
    let svc = service(&fake, clock.clone(), &[]);
    fake.script(&[Answer::RateLimited {
        retry_after_secs: 1,
    }]);
    let started = std::time::Instant::now();
    let out = svc
        .weather(&berlin(), deadline(&clock, Duration::from_secs(5)))
        .await;
    assert!(out.result.is_ok());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );

    // A wait longer than the invocation has left is not attempted: 503 passes it on.
    fake.script(&[Answer::RateLimited {
        retry_after_secs: 60,
    }]);
    let out = svc
        .weather(
            &validate(Some("Paris"), None, None).unwrap(),
            deadline(&clock, Duration::from_secs(5)),
        )
        .await;
    let e = out.result.unwrap_err();
    assert_eq!(
        (e.status, e.code, e.retry_after),
        (503, "provider_unavailable", Some(60))
    );
    assert_eq!(out.upstream.attempts, 1);
}

#[tokio::test]
async fn client_errors_and_nonsense_are_not_retried() {
    let fake = Fake::start().await;
    let clock = Arc::new(TestClock::default());
    let svc = service(&fake, clock.clone(), &[]);
    fake.script(&[Answer::Status(400)]);
    let out = svc
        .weather(&berlin(), deadline(&clock, Duration::from_secs(5)))
        .await;
    let e = out.result.unwrap_err();
    assert_eq!((e.status, e.code), (502, "provider_rejected"));
    assert_eq!(out.upstream.attempts, 1);

    fake.script(&[Answer::Garbage]);
    let out = svc
        .weather(&berlin(), deadline(&clock, Duration::from_secs(5)))
        .await;
    let e = out.result.unwrap_err();
    assert_eq!((e.status, e.code), (502, "provider_bad_response"));
    assert_eq!(out.upstream.attempts, 1);

    let atlantis = validate(Some("Atlantis"), None, None).unwrap();
    let out = svc
        .weather(&atlantis, deadline(&clock, Duration::from_secs(5)))
        .await;
    let e = out.result.unwrap_err();
    assert_eq!((e.status, e.code), (404, "city_not_found"));
    assert!(e.message.contains("Atlantis"), "{}", e.message);
    // A country filter the geocoder ignored still yields 404, not another country's weather.
    let wrong = validate(Some("Berlin"), Some("US"), None).unwrap();
    let e = svc
        .weather(&wrong, deadline(&clock, Duration::from_secs(5)))
        .await
        .result
        .unwrap_err();
    assert_eq!(e.status, 404);
}

#[tokio::test]
async fn an_unreachable_provider_is_503_naming_it_and_the_url() {
    let fake = Fake::start().await;
    let clock = Arc::new(TestClock::default());
    // Nothing listens on port 9 of loopback (discard): connections are refused.
    let svc = service(
        &fake,
        clock.clone(),
        &[("OPEN_METEO_GEOCODING_URL", "http://127.0.0.1:9")],
    );
    let out = svc
        .weather(&berlin(), deadline(&clock, Duration::from_secs(5)))
        .await;
    let e = out.result.unwrap_err();
    assert_eq!((e.status, e.code), (503, "provider_unavailable"));
    assert_eq!(e.retry_after, Some(5));
    assert!(e.message.contains("open-meteo"), "{}", e.message);
    assert!(
        e.message
            .contains("http://127.0.0.1:9/v1/search?name=Berlin"),
        "{}",
        e.message
    );
    assert!(e.message.contains("connection failed"), "{}", e.message);
    assert_eq!(out.upstream.attempts, 3);
}

#[tokio::test]
async fn a_failing_provider_is_covered_by_a_stale_entry_marked_with_its_age() {
    let fake = Fake::start().await;
    let clock = Arc::new(TestClock::default());
    let svc = service(&fake, clock.clone(), &[]);
    svc.weather(&berlin(), deadline(&clock, Duration::from_secs(5)))
        .await
        .result
        .unwrap();
    clock.advance(Duration::from_secs(700));
    fake.always(Some(Answer::Status(500)));
    let out = svc
        .weather(&berlin(), deadline(&clock, Duration::from_secs(5)))
        .await;
    let body = out.result.unwrap();
    assert_eq!(out.cache, CacheOutcome::Stale);
    assert_eq!(
        body["cache"],
        serde_json::json!({"hit": true, "stale": true, "age_seconds": 700})
    );
    assert_eq!(out.fresh_for, Some(0));
    assert_eq!(out.upstream.attempts, 3);
}

#[tokio::test]
async fn the_circuit_opens_fails_fast_and_recovers_through_a_probe() {
    let fake = Fake::start().await;
    let clock = Arc::new(TestClock::default());
    let svc = service(&fake, clock.clone(), &[("BREAKER_FAILURE_THRESHOLD", "4")]);
    fake.always(Some(Answer::Status(502)));
    let paris = validate(Some("Paris"), None, None).unwrap();
    let e = svc
        .weather(&paris, deadline(&clock, Duration::from_secs(5)))
        .await
        .result
        .unwrap_err();
    assert_eq!(e.code, "provider_unavailable");
    // The fourth failed attempt opens it, part-way through this request.
    let out = svc
        .weather(&paris, deadline(&clock, Duration::from_secs(5)))
        .await;
    let e = out.result.unwrap_err();
    assert_eq!((e.status, e.code), (503, "circuit_open"));
    assert_eq!(out.upstream.attempts, 1);
    let calls = fake.calls().len();
    let e = svc
        .weather(&paris, deadline(&clock, Duration::from_secs(5)))
        .await
        .result
        .unwrap_err();
    assert_eq!(e.code, "circuit_open");
    assert!(e.retry_after.unwrap() > 25, "{e:?}");
    assert_eq!(fake.calls().len(), calls, "an open circuit makes no call");

    fake.always(None);
    clock.advance(Duration::from_secs(31));
    let out = svc
        .weather(&paris, deadline(&clock, Duration::from_secs(5)))
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(
        out.upstream.attempts, 2,
        "the probe succeeded and closed it"
    );
}

#[tokio::test]
async fn a_provider_slower_than_the_deadline_is_504() {
    let fake = Fake::start().await;
    let clock = Arc::new(TestClock::default());
    let svc = service(&fake, clock.clone(), &[("UPSTREAM_TIMEOUT_MS", "400")]);
    fake.always(Some(Answer::Hang));
    let started = std::time::Instant::now();
    let out = svc
        .weather(&berlin(), deadline(&clock, Duration::from_millis(900)))
        .await;
    let e = out.result.unwrap_err();
    assert_eq!((e.status, e.code), (504, "deadline_exceeded"));
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "answered before the deadline"
    );
}

#[tokio::test]
async fn concurrent_requests_for_one_city_make_one_upstream_exchange() {
    let fake = Fake::start().await;
    let clock = Arc::new(TestClock::default());
    let svc = Arc::new(service(&fake, clock.clone(), &[]));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (svc, clock) = (svc.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            svc.weather(&berlin(), deadline(&clock, Duration::from_secs(5)))
                .await
        }));
    }
    let mut misses = 0;
    for t in tasks {
        let out = t.await.unwrap();
        assert!(out.result.is_ok());
        misses += (out.cache == CacheOutcome::Miss) as u32;
    }
    assert_eq!(misses, 1);
    assert_eq!(fake.calls(), ["geocode", "forecast"]);
}

#[tokio::test]
async fn openweathermap_is_used_with_its_key_and_the_key_never_shows() {
    let fake = Fake::start().await;
    *fake.state.owm_key.lock().unwrap() = "s3cret-key".into();
    let clock = Arc::new(TestClock::default());
    let svc = service(
        &fake,
        clock.clone(),
        &[("OPENWEATHERMAP_API_KEY", "s3cret-key")],
    );
    let london = validate(Some("London"), Some("GB"), None).unwrap();
    let out = svc
        .weather(&london, deadline(&clock, Duration::from_secs(5)))
        .await;
    let body = out.result.unwrap();
    assert_eq!(body["provider"], "openweathermap");
    assert_eq!(body["city"], "London");
    assert!(!body.to_string().contains("s3cret"));

    let svc = service(
        &fake,
        clock.clone(),
        &[("OPENWEATHERMAP_API_KEY", "wrong-key")],
    );
    let e = svc
        .weather(&london, deadline(&clock, Duration::from_secs(5)))
        .await
        .result
        .unwrap_err();
    assert_eq!((e.status, e.code), (502, "provider_rejected"));
    assert!(e.message.contains("appid=REDACTED"), "{}", e.message);
    assert!(!e.message.contains("wrong-key"), "{}", e.message);

    let svc = service(
        &fake,
        clock.clone(),
        &[
            ("OPENWEATHERMAP_API_KEY", "s3cret-key"),
            ("OPENWEATHERMAP_URL", "http://127.0.0.1:9"),
        ],
    );
    let e = svc
        .weather(&london, deadline(&clock, Duration::from_secs(5)))
        .await
        .result
        .unwrap_err();
    assert_eq!(e.code, "provider_unavailable");
    assert!(!e.message.contains("s3cret"), "{}", e.message);
}
