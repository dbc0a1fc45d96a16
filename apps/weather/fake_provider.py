#!/usr/bin/env python3
"""A local stand-in for the weather providers, speaking their documented formats:
Open-Meteo's geocoding (/v1/search) and forecast (/v1/forecast?current=...) APIs and
OpenWeatherMap's geocoding (/geo/1.0/direct) and current weather (/data/2.5/weather) APIs.

For demos without network, the tests and the benchmark. Weather is made up but stable per city;
"Atlantis" (and any name starting with "Nowhere") is unknown. Behaviour can be changed while it
runs, in-process (the tests) or over HTTP:

    POST /_fake/mode   {"fail_next": 2, "status": 500}      the next 2 calls answer 500
                       {"always": "error"|"hang"|"garbage"|"ok", "status": 503, "retry_after": 1}
                       {"delay_ms": 50}                      every answer waits this long
    GET  /_fake/calls  how many calls each endpoint had
    POST /_fake/reset

Run: python3 apps/weather/fake_provider.py --port 8099 [--owm-key KEY] [--delay-ms 50]
Only listens on loopback.
"""

import argparse
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

KNOWN = {
    "melbourne": ("Melbourne", "AU", -37.814, 144.96332),
    "london": ("London", "GB", 51.50853, -0.12574),
    "berlin": ("Berlin", "DE", 52.52437, 13.41053),
    "paris": ("Paris", "FR", 48.85341, 2.3488),
    "tokyo": ("Tokyo", "JP", 35.6895, 139.69171),
    "new york": ("New York", "US", 40.71427, -74.00597),
    "são paulo": ("São Paulo", "BR", -23.5475, -46.63611),
}


def _digest(name):
    return int.from_bytes(hashlib.sha256(name.lower().encode()).digest()[:8], "big")


def place(name, country=None):
    """(name, country, lat, lon) for a city, or None when it is unknown."""
    key = name.strip().lower()
    if key == "atlantis" or key.startswith("nowhere"):
        return None
    if key in KNOWN:
        found = KNOWN[key]
        if country and country.upper() != found[1]:
            return None
        return found
    d = _digest(key)
    lat = round((d % 1600) / 10 - 80, 4)
    lon = round(((d >> 12) % 3600) / 10 - 180, 4)
    return (name.strip().title(), (country or "XX").upper(), lat, lon)


def weather(lat, lon):
    d = _digest(f"{lat:.3f},{lon:.3f}")
    return {
        "temperature": round((d % 400) / 10 - 5, 1),
        "humidity": d % 100,
        "pressure": round(990 + (d >> 8) % 400 / 10, 1),
        "wind_speed": round((d >> 16) % 150 / 10, 1),
        "wind_direction": (d >> 24) % 360,
        "wmo": [0, 1, 2, 3, 45, 61, 63, 71, 80, 95][(d >> 32) % 10],
    }


class FakeProvider:
    def __init__(self, port=0, owm_key="", delay_ms=0):
        self.lock = threading.Lock()
        self.owm_key = owm_key
        self.default_delay_ms = delay_ms
        self.reset()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without this, Nagle and delayed
            # ACKs add 40 ms to every answer.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._get(self)

            def do_POST(self):
                fake._post(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def reset(self):
        with self.lock:
            self.calls = {"geocode": 0, "forecast": 0, "owm_geocode": 0, "owm_weather": 0}
            self.fail_next = 0
            self.status = 500
            self.always = "ok"
            self.retry_after = None
            self.delay_ms = self.default_delay_ms

    def mode(self, **kw):
        with self.lock:
            for k, v in kw.items():
                if k not in ("fail_next", "status", "always", "retry_after", "delay_ms"):
                    raise ValueError(f"unknown mode {k}")
                setattr(self, k, v)

    def _send(self, h, status, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        for k, v in headers:
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _post(self, h):
        length = int(h.headers.get("content-length") or 0)
        body = json.loads(h.rfile.read(length) or b"{}")
        if h.path == "/_fake/mode":
            try:
                self.mode(**body)
            except (TypeError, ValueError) as e:
                return self._send(h, 400, {"error": str(e)})
            return self._send(h, 200, {"ok": True})
        if h.path == "/_fake/reset":
            self.reset()
            return self._send(h, 200, {"ok": True})
        self._send(h, 404, {"error": "not found"})

    def _get(self, h):
        url = urlparse(h.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/_fake/calls":
            with self.lock:
                return self._send(h, 200, dict(self.calls))
        endpoint = {
            "/v1/search": "geocode",
            "/v1/forecast": "forecast",
            "/geo/1.0/direct": "owm_geocode",
            "/data/2.5/weather": "owm_weather",
        }.get(url.path)
        if endpoint is None:
            return self._send(h, 404, {"error": True, "reason": "Not Found"})
        if endpoint.startswith("owm") and q.get("appid") != self.owm_key:
            return self._send(h, 401, {"cod": 401, "message": "Invalid API key. Please see https://openweathermap.org/faq#error401 for more info."})
        with self.lock:
            self.calls[endpoint] += 1
            delay = self.delay_ms / 1000
            behaviour = self.always
            if self.fail_next > 0:
                self.fail_next -= 1
                behaviour = "error"
            status, retry_after = self.status, self.retry_after
        if delay:
            time.sleep(delay)
        if behaviour == "hang":
            time.sleep(30)
        if behaviour == "error":
            headers = [("retry-after", str(retry_after))] if retry_after is not None else []
            return self._send(h, status, {"error": True, "reason": "fake failure"}, headers)
        if behaviour == "garbage":
            return self._send(h, 200, b"<html>maintenance</html>")
        return self._send(h, 200, getattr(self, "_" + endpoint)(q))

    def _geocode(self, q):
        p = place(q.get("name", ""), q.get("countryCode"))
        if p is None:
            return {"generationtime_ms": 0.2}
        name, country, lat, lon = p
        return {
            "results": [{
                "id": _digest(name) % 10_000_000, "name": name, "latitude": lat, "longitude": lon,
                "elevation": 10.0, "feature_code": "PPL", "country_code": country,
                "timezone": "GMT", "country": country, "admin1": "",
            }],
            "generationtime_ms": 0.4,
        }

    def _forecast(self, q):
        lat, lon = float(q["latitude"]), float(q["longitude"])
        w = weather(lat, lon)
        return {
            "latitude": lat, "longitude": lon, "generationtime_ms": 0.05, "utc_offset_seconds": 0,
            "timezone": "GMT", "timezone_abbreviation": "GMT", "elevation": 10.0,
            "current_units": {
                "time": "unixtime", "interval": "seconds", "temperature_2m": "°C",
                "relative_humidity_2m": "%", "apparent_temperature": "°C", "weather_code": "wmo code",
                "pressure_msl": "hPa", "wind_speed_10m": "m/s", "wind_direction_10m": "°",
            },
            "current": {
                "time": int(time.time()) // 900 * 900, "interval": 900,
                "temperature_2m": w["temperature"], "relative_humidity_2m": w["humidity"],
                "apparent_temperature": round(w["temperature"] - 1.5, 1), "weather_code": w["wmo"],
                "pressure_msl": w["pressure"], "wind_speed_10m": w["wind_speed"],
                "wind_direction_10m": w["wind_direction"],
            },
        }

    def _owm_geocode(self, q):
        name, _, country = q.get("q", "").partition(",")
        p = place(name, country or None)
        if p is None:
            return []
        name, country, lat, lon = p
        return [{"name": name, "local_names": {"en": name}, "lat": lat, "lon": lon, "country": country}]

    def _owm_weather(self, q):
        lat, lon = float(q["lat"]), float(q["lon"])
        w = weather(lat, lon)
        owm_id = {0: 800, 1: 801, 2: 802, 3: 804, 45: 741, 61: 500, 63: 501, 71: 600, 80: 521, 95: 211}[w["wmo"]]
        return {
            "coord": {"lon": lon, "lat": lat},
            "weather": [{"id": owm_id, "main": "Weather", "description": "made-up weather", "icon": "01d"}],
            "base": "stations",
            "main": {"temp": w["temperature"], "feels_like": round(w["temperature"] - 1.5, 1),
                     "pressure": round(w["pressure"]), "humidity": w["humidity"]},
            "visibility": 10000,
            "wind": {"speed": w["wind_speed"], "deg": w["wind_direction"]},
            "dt": int(time.time()) // 600 * 600,
            "sys": {"country": "XX"},
            "timezone": 0, "id": 1, "name": "Fake", "cod": 200,
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--owm-key", default="", help="the appid the OpenWeatherMap endpoints accept")
    ap.add_argument("--delay-ms", type=int, default=0, help="every answer waits this long")
    args = ap.parse_args()
    fake = FakeProvider(args.port, args.owm_key, args.delay_ms)
    print(f"fake weather provider on {fake.url} (Open-Meteo and OpenWeatherMap formats)", flush=True)
    try:
        fake.server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
