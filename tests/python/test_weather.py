"""The weather app end to end: apps/weather/template.yaml unchanged, served by `nimbus up`, called
through nimbus's API Gateway with `requests`, the provider played by apps/weather's fake (the
providers' documented formats). Every response is checked against the app's OpenAPI document."""

import concurrent.futures
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_spec_validator import validate as validate_spec

from conftest import ROOT, Nimbus, chaos_toolkit

APP = ROOT / "apps" / "weather"
sys.path.insert(0, str(APP))
from fake_provider import FakeProvider  # noqa: E402

SPEC = json.loads((APP / "openapi.json").read_text())
OPENAPI = OpenAPI.from_dict(SPEC)
KEY_ID = "WeatherApiApiKey"


def checked(resp):
    """`resp`, after checking it against the OpenAPI document (status, headers, body)."""
    OPENAPI.validate_response(RequestsOpenAPIRequest(resp.request), RequestsOpenAPIResponse(resp))
    return resp


class Weather:
    """One `nimbus up apps/weather/template.yaml` with the provider URLs pointed at `fake`."""

    def __init__(self, tmp, fake, *overrides, owm=False, args=()):
        urls = [f"OpenMeteoGeocodingUrl={fake.url}", f"OpenMeteoForecastUrl={fake.url}"]
        if owm:
            urls = [f"OpenWeatherMapUrl={fake.url}"]
        params = [*urls, "RateLimit=500", "BurstLimit=500", *overrides]
        self.state = tmp
        self.nimbus = Nimbus(
            APP,
            ["--api-port", "0", "--state-dir", str(tmp), *args, "--parameter-overrides", *params],
            timeout=600,
        )
        self.url = self.nimbus.api_url("WeatherApi")
        self.key = self.nimbus.api_key(KEY_ID)

    def get(self, path, key=True, **params):
        headers = {"x-api-key": self.key} if key is True else ({"x-api-key": key} if key else {})
        return checked(requests.get(self.url + path, params=params, headers=headers, timeout=30))

    def log_records(self, at_least=1, timeout=5):
        """The function's JSON request records, from nimbus's log file. nimbus writes the file
        from its own thread, a moment after the response: wait for `at_least` records."""
        log = self.state / "logs" / "WeatherFunction.log"
        deadline = time.time() + timeout
        while True:
            records = []
            for line in log.read_text().splitlines() if log.exists() else []:
                start = line.find('{"')
                if start >= 0 and '"message":"request"' in line:
                    records.append(json.loads(line[start:]))
            if len(records) >= at_least or time.time() > deadline:
                return records
            time.sleep(0.02)

    def stop(self):
        self.nimbus.stop()


@pytest.fixture
def fake():
    f = FakeProvider().start()
    yield f
    f.stop()


@pytest.fixture
def start_weather(tmp_path, fake):
    started = []

    def start(*overrides, owm=False, provider=None, args=()):
        w = Weather(tmp_path / f"state{len(started)}", provider or fake, *overrides, owm=owm, args=args)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    server = shutil.which("redis-server")
    assert server, "redis-server is missing: scripts/test.sh installs it (apt-get install redis-server)"
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


# ---- the template and the document ----------------------------------------------------------


def test_the_templates_pass_cfn_lint():
    lint = Path(sys.executable).parent / "cfn-lint"
    out = subprocess.run(
        [str(lint), str(APP / "template.yaml"), str(ROOT / "apps" / "hello" / "template.yaml")],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_openapi_document_is_valid_and_served(start_weather):
    validate_spec(SPEC)
    w = start_weather()
    served = w.get("/openapi.json", key=False)
    assert served.status_code == 200
    assert served.json() == SPEC


# ---- answers --------------------------------------------------------------------------------


def test_the_weather_in_both_units_by_query_and_by_path_then_from_the_cache(start_weather, fake):
    w = start_weather()
    r = w.get("/weather", city="Melbourne", country="AU")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["city"], body["country"], body["provider"]) == ("Melbourne", "AU", "open-meteo")
    assert body["units"]["system"] == "metric" and body["units"]["temperature"] == "°C"
    assert body["cache"] == {"hit": False, "stale": False, "age_seconds": 0}
    assert r.headers["x-cache"] == "MISS"
    assert fake.calls["geocode"] == 1 and fake.calls["forecast"] == 1

    r = w.get("/weather/melbourne", country="au", units="imperial")
    assert r.status_code == 200, r.text
    imperial = r.json()
    assert imperial["cache"]["hit"] is True and r.headers["x-cache"] == "HIT"
    assert imperial["units"]["temperature"] == "°F" and imperial["units"]["wind_speed"] == "mph"
    assert abs(imperial["temperature"] - (body["temperature"] * 9 / 5 + 32)) <= 0.1
    assert fake.calls["geocode"] == 1, "the second request came from the cache"

    r = w.get("/weather/S%C3%A3o%20Paulo")
    assert r.status_code == 200 and r.json()["city"] == "São Paulo", r.text

    records = w.log_records(at_least=3)
    assert [r["cache"] for r in records] == ["miss", "hit", "miss"]
    first = records[0]
    assert first["city"] == "Melbourne" and first["status"] == 200
    assert first["upstreamAttempts"] == 2 and first["requestId"]
    assert first["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "WeatherApi"
    assert first["Provider"] == "open-meteo" and first["CacheMisses"] == 1


def test_bad_requests_and_unknown_cities(start_weather, fake):
    w = start_weather()
    cases = [
        ({}, 400, "invalid_city"),
        ({"city": ""}, 400, "invalid_city"),
        ({"city": "x" * 101}, 400, "invalid_city"),
        ({"city": "Mel\x01bourne"}, 400, "invalid_city"),
        ({"city": "Paris", "units": "kelvin"}, 400, "invalid_units"),
        ({"city": "Paris", "country": "France"}, 400, "invalid_country"),
        ({"city": "Atlantis"}, 404, "city_not_found"),
    ]
    for params, status, code in cases:
        r = w.get("/weather", **params)
        assert r.status_code == status, (params, r.text)
        assert r.json()["error"]["code"] == code, (params, r.text)
    assert fake.calls["geocode"] == 1, "only the valid request reached the provider"


def test_api_keys_and_the_usage_plan(start_weather):
    w = start_weather("RateLimit=1", "BurstLimit=2")
    assert w.get("/weather", key=None, city="Paris").status_code == 403
    assert w.get("/weather", key="not-a-key-of-this-api-at-all", city="Paris").status_code == 403
    statuses = [w.get("/weather", city="Paris").status_code for _ in range(4)]
    assert statuses[:2] == [200, 200] and 429 in statuses[2:], statuses


def test_the_daily_quota(start_weather):
    w = start_weather("DailyQuota=2")
    assert [w.get("/weather", city="Paris").status_code for _ in range(3)] == [200, 200, 429]


# ---- resilience -----------------------------------------------------------------------------


def test_a_provider_error_is_retried_and_answered_once(start_weather, fake):
    w = start_weather()
    fake.mode(fail_next=1, status=500)
    r = w.get("/weather", city="Berlin")
    assert r.status_code == 200, r.text
    assert fake.calls["geocode"] == 2
    assert w.log_records(at_least=1)[-1]["upstreamAttempts"] == 3


def test_a_down_provider_with_a_warm_cache_serves_stale(start_weather, fake):
    w = start_weather("CacheTtlSeconds=1")
    assert w.get("/weather", city="Tokyo").status_code == 200
    time.sleep(1.2)
    fake.mode(always="error", status=503)
    r = w.get("/weather", city="Tokyo")
    assert r.status_code == 200, r.text
    assert r.json()["cache"]["stale"] is True and r.json()["cache"]["age_seconds"] >= 1
    assert r.headers["x-cache"] == "STALE"


def test_a_down_provider_with_a_cold_cache_is_503_naming_it(start_weather, fake):
    port = free_port()  # nothing listens there
    w = start_weather(f"OpenMeteoGeocodingUrl=http://127.0.0.1:{port}")
    r = w.get("/weather", city="Tokyo")
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) >= 1
    message = r.json()["error"]["message"]
    assert r.json()["error"]["code"] == "provider_unavailable"
    assert "open-meteo" in message and f"http://127.0.0.1:{port}/v1/search" in message, message


def test_the_circuit_opens_then_recovers(start_weather, fake):
    w = start_weather("BreakerFailureThreshold=3", "BreakerOpenSeconds=2", "UpstreamMaxAttempts=3")
    fake.mode(always="error", status=500)
    r = w.get("/weather", city="Paris")
    assert (r.status_code, r.json()["error"]["code"]) == (503, "provider_unavailable")
    calls = fake.calls["geocode"]
    r = w.get("/weather", city="London")
    assert (r.status_code, r.json()["error"]["code"]) == (503, "circuit_open"), r.text
    assert 1 <= int(r.headers["retry-after"]) <= 2
    assert fake.calls["geocode"] == calls, "an open circuit does not call the provider"
    fake.mode(always="ok")
    time.sleep(2.1)
    r = w.get("/weather", city="London")
    assert r.status_code == 200, r.text


def test_a_provider_slower_than_the_function_timeout_is_504(start_weather, fake):
    w = start_weather("FunctionTimeout=2", "UpstreamTimeoutMs=1500")
    fake.mode(always="hang")
    started = time.time()
    r = w.get("/weather", city="Paris")
    assert r.status_code == 504, r.text
    assert r.json()["error"]["code"] == "deadline_exceeded"
    assert time.time() - started < 2.5


# ---- OpenWeatherMap and its key -------------------------------------------------------------


def test_openweathermap_with_a_noecho_key_that_never_shows(start_weather):
    secret = "owm-secret-0123456789"
    provider = FakeProvider(owm_key=secret).start()
    try:
        w = start_weather(f"OpenWeatherMapApiKey={secret}", owm=True, provider=provider)
        r = w.get("/weather", city="London", country="GB")
        assert r.status_code == 200, r.text
        assert r.json()["provider"] == "openweathermap"
        assert provider.calls["owm_geocode"] == 1 and provider.calls["owm_weather"] == 1
        provider.owm_key = "rotated"
        r = w.get("/weather", city="Paris")
        assert (r.status_code, r.json()["error"]["code"]) == (502, "provider_rejected"), r.text
        assert secret not in r.text and "appid=REDACTED" in r.text
        w.stop()
        logs = "\n".join(w.nimbus.lines) + "".join(
            p.read_text() for p in w.state.rglob("*.log")
        )
        assert secret not in logs
    finally:
        provider.stop()


# ---- the shared cache -----------------------------------------------------------------------


def test_fifty_concurrent_requests_make_one_upstream_call_and_environments_share_redis(
    start_weather, fake, redis_url
):
    fake.mode(delay_ms=200)
    a = start_weather(f"RedisUrl={redis_url}")
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda _: a.get("/weather", city="Melbourne"), range(50)))
    assert [r.status_code for r in answers] == [200] * 50, {r.status_code for r in answers}
    assert fake.calls["geocode"] == 1 and fake.calls["forecast"] == 1, fake.calls
    assert sum(r.headers["x-cache"] == "MISS" for r in answers) == 1
    request_ids = {rec["requestId"] for rec in a.log_records(at_least=50)}
    assert len(request_ids) == 50

    # Another nimbus: other processes, other environments, the same Redis.
    b = start_weather(f"RedisUrl={redis_url}")
    r = b.get("/weather", city="melbourne")
    assert r.status_code == 200 and r.json()["cache"]["hit"] is True, r.text
    assert fake.calls["geocode"] == 1


def test_the_chaos_toolkit_experiment_keeps_the_api_answering_through_a_provider_outage(start_weather, fake, tmp_path):
    """apps/weather/chaos/provider-outage.json, run by Chaos Toolkit's own CLI against nimbus,
    the provider cut off and then slowed by nimbus's egress proxy; asserted from its journal."""
    w = start_weather("CacheTtlSeconds=1", "BreakerOpenSeconds=1", "UpstreamTimeoutMs=500",
                      args=["--egress-proxy"])
    j = chaos_toolkit(APP / "chaos" / "provider-outage.json", tmp_path / "journal.json",
                      NIMBUS_ENDPOINT=w.nimbus.endpoint, WEATHER_URL=w.url, WEATHER_API_KEY=w.key,
                      PROVIDER_HOST=f"127.0.0.1:{fake.port}", SLOW_MS="1500", RECOVERY_SECONDS="2")
    assert j["steady_states"]["before"]["steady_state_met"] and j["steady_states"]["after"]["steady_state_met"]
    out = {r["activity"]["name"]: r for r in j["run"]}
    answer = lambda name: (out[name]["output"]["status"], out[name]["output"]["headers"],  # noqa: E731
                           out[name]["output"]["body"])

    def body(raw):
        return raw if isinstance(raw, dict) else json.loads(raw)

    # Down: the known city from the cache, marked stale; a new city is a 503 with Retry-After.
    status, headers, raw = answer("known-city-while-down")
    assert status == 200 and headers.get("x-cache") == "STALE" and body(raw)["cache"]["stale"], (status, headers, raw)
    status, headers, raw = answer("new-city-while-down")
    assert status == 503 and int(headers["retry-after"]) > 0, (status, headers, raw)
    # Slow past the upstream timeout: still the stale answer.
    status, headers, raw = answer("known-city-while-slow")
    assert status == 200 and body(raw)["cache"]["stale"], (status, headers, raw)
    # Back: fresh again.
    status, headers, raw = answer("known-city-after")
    assert status == 200 and not body(raw)["cache"]["stale"], (status, headers, raw)
    # Never a 500, and every fault was lifted.
    statuses = [r["output"]["status"] for r in j["run"] if isinstance(r.get("output"), dict) and "status" in r["output"]]
    assert 500 not in statuses, statuses
    assert requests.get(f"{w.nimbus.endpoint}/_nimbus/chaos/faults", timeout=10).json() == []
    injected = requests.get(f"{w.nimbus.endpoint}/metrics", timeout=10).text
    assert 'nimbus_chaos_faults_injected_total{service="egress",code="connection-refuse"}' in injected
