#!/usr/bin/env python3
"""Runs a load scenario (artillery's phase format) against the order-notification pipeline on
nimbus and reports what happened to every order.

It starts `nimbus up` on the template with a fresh state directory, posts orders to
`POST /notify` on the phases' schedule (artillery's arrival model: `arrivalRate`, optionally
ramping to `rampTo`, spread evenly within each second), waits for the pipeline to drain, and
reads the functions' own JSON log lines from the state directory:

    notify   {"event":"accepted","correlation_id","ts_ms"}
    deliver  {"event":"attempt","correlation_id","attempt","status","error","ts_ms"}
             {"event":"delivered"|"gave_up","correlation_id","attempts","ts_ms"}

Report: orders sent / accepted, delivered, orders retried and retries, 429s and 5xx seen by
deliver, messages in the dead-letter queue, still queued (flow control, drain timed out), lost
(accepted, neither delivered, in the DLQ nor still queued),
and end-to-end latency percentiles (accepted -> delivered).

Loopback only; bounded in time by the scenario plus --drain-timeout.
"""

import argparse
import glob
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import requests
import yaml
from botocore.config import Config


def arrivals(phases):
    """Offsets (seconds from the start) of every request, artillery's way."""
    out, t0 = [], 0.0
    for p in phases:
        duration = int(p["duration"])
        start = float(p["arrivalRate"])
        end = float(p.get("rampTo", start))
        carry = 0.0
        for s in range(duration):
            rate = start + (end - start) * (s / duration if duration else 0)
            carry += rate
            n = int(math.floor(carry))
            carry -= n
            for i in range(n):
                out.append(t0 + s + i / max(n, 1))
        t0 += duration
    return out


class Nimbus:
    def __init__(self, binary, template, state, args):
        self.lines = []
        self.proc = subprocess.Popen(
            [binary, "up", template, "--aws-port", "0", "--api-port", "0", "--state-dir", state, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for("nimbus: ready", 600)
        self.endpoint = self.value("nimbus: AWS endpoint ")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, needle, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(needle in l for l in self.lines):
                return
            if self.proc.poll() is not None:
                sys.exit("nimbus exited:\n" + "\n".join(self.lines[-40:]))
            time.sleep(0.05)
        sys.exit(f"nimbus: no {needle!r} in {timeout} s:\n" + "\n".join(self.lines[-40:]))

    def value(self, prefix):
        return next(l for l in self.lines if l.startswith(prefix))[len(prefix):].strip()

    def api(self, api_id):
        line = next(l for l in self.lines if f" API {api_id} (stage " in l)
        return line.rsplit(" ", 1)[1]

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


RECORD = re.compile(r'\{"event"')


def records(state):
    """Every JSON record the functions logged, by event kind."""
    out = {}
    for path in glob.glob(os.path.join(state, "logs", "*.log")):
        with open(path, errors="replace") as f:
            for line in f:
                m = RECORD.search(line)
                if not m:
                    continue
                try:
                    rec, _ = json.JSONDecoder().raw_decode(line[m.start():])
                except ValueError:
                    continue
                out.setdefault(rec.get("event"), []).append(rec)
    return out


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nimbus", required=True)
    ap.add_argument("--template", required=True)
    ap.add_argument("--scenario", required=True, help="artillery-format YAML with config.phases")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="divide deliver's retry waits by 1/scale and pass --delay-scale (e.g. 0.1)")
    ap.add_argument("--override", action="append", default=[], help="extra K=V template parameters")
    ap.add_argument("--drain-timeout", type=float, default=900)
    ap.add_argument("--json", help="write the report as JSON here too")
    a = ap.parse_args()

    phases = yaml.safe_load(open(a.scenario))["config"]["phases"]
    plan = arrivals(phases)
    overrides = [f"DeliverRetryMinMs={int(3000 * a.scale)}", f"DeliverRetryMaxMs={int(8000 * a.scale)}"]
    if a.scale < 1 and "QueueVisibilityTimeout" in open(a.template).read():
        # A reported failure comes back after the visibility timeout: scale it with the rest
        # (36 s still covers deliver's worst case with scaled waits: 5 x (5 s + 0.8 s)).
        overrides.append(f"QueueVisibilityTimeout={max(int(360 * a.scale), 36)}")
    overrides += a.override
    state = tempfile.mkdtemp(prefix="nimbus-orders-")
    args = ["--parameter-overrides", *overrides, "--delay-scale", str(min(a.scale, 1.0)), "--shutdown-grace", "1"]
    print(f"[orders] {len(plan)} orders over {plan[-1] if plan else 0:.0f} s; {os.path.basename(a.template)}; state {state}", flush=True)
    n = Nimbus(a.nimbus, a.template, state, args)
    try:
        url = n.api("NotifyApi") + "/notify"
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=64, pool_maxsize=64)
        session.mount("http://", adapter)
        results = []

        def post(i):
            body = {"order_id": f"o-{i}", "email": "customer@example.com", "items": [{"sku": "widget", "quantity": 1}]}
            t = time.time()
            try:
                r = session.post(url, json=body, timeout=30)
                cid = r.json().get("correlation_id") if r.status_code == 200 else None
                results.append((r.status_code, cid, time.time() - t))
            except Exception as e:  # a refused connection is a result too
                results.append((str(e)[:80], None, time.time() - t))

        start = time.time()
        with ThreadPoolExecutor(max_workers=64) as pool:
            for i, offset in enumerate(plan):
                delay = start + offset - time.time()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(post, i)
        load_s = time.time() - start
        accepted = {cid for status, cid, _ in results if cid}
        print(f"[orders] load done in {load_s:.0f} s: {len(accepted)} of {len(results)} accepted; draining", flush=True)

        sqs = boto3.client("sqs", endpoint_url=n.endpoint, region_name="us-east-1", aws_access_key_id="x",
                           aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))

        def count(queue, *attrs):
            try:
                u = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            except Exception:
                return None
            got = sqs.get_queue_attributes(QueueUrl=u, AttributeNames=list(attrs))["Attributes"]
            return sum(int(got[k]) for k in attrs)

        def dlq_count():
            return count("DeliveryDlq", "ApproximateNumberOfMessages")

        def backlog():
            """Orders still in the delivery queue (waiting, or received and not yet deleted)."""
            return count("DeliveryQueue", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible") or 0

        # Drained when every accepted order is delivered or dead-lettered, or when nothing has
        # happened for longer than the slowest retry (Lambda's 2-minute async retry, scaled).
        quiet_s = 130 * min(a.scale, 1.0) + 15
        deadline = time.time() + a.drain_timeout
        last_size, last_change = -1, time.time()
        while time.time() < deadline:
            recs = records(state)
            delivered = {r["correlation_id"] for r in recs.get("delivered", [])}
            dlq = dlq_count() or 0
            if len(delivered & accepted) + dlq >= len(accepted):
                break
            size = sum(len(v) for v in recs.values())
            if size != last_size or backlog() > 0:
                last_size, last_change = size, time.time()
            elif time.time() - last_change > quiet_s:
                break
            time.sleep(1)
        drain_s = time.time() - start - load_s
        recs = records(state)
        dlq = dlq_count()
        queued = backlog()
        # What the run would have cost on AWS, before the free tier (nimbus cost's estimate).
        try:
            cost = requests.get(f"{n.endpoint}/_nimbus/api/cost?free_tier=false", timeout=10).json()
        except Exception as e:  # noqa: BLE001
            cost = {"error": str(e)}
    finally:
        n.stop()

    accepted_at = {r["correlation_id"]: r["ts_ms"] for r in recs.get("accepted", [])}
    delivered_at = {}
    for r in recs.get("delivered", []):
        delivered_at.setdefault(r["correlation_id"], r["ts_ms"])
    attempts = recs.get("attempt", [])
    retried = {r["correlation_id"] for r in attempts if r.get("attempt", 1) > 1}
    latencies = [(delivered_at[c] - accepted_at[c]) / 1000 for c in delivered_at if c in accepted_at]
    delivered = set(delivered_at) & accepted
    in_dlq = dlq or 0
    statuses = {}
    for status, _, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    report = {
        "template": os.path.basename(a.template),
        "scenario": os.path.basename(a.scenario),
        "orders_sent": len(results),
        "notify_statuses": statuses,
        "accepted": len(accepted),
        "delivered": len(delivered),
        "orders_retried": len(retried),
        "retries": sum(1 for r in attempts if r.get("attempt", 1) > 1),
        "deliver_429s": sum(1 for r in attempts if r.get("status") == 429),
        "deliver_5xx": sum(1 for r in attempts if isinstance(r.get("status"), int) and r["status"] >= 500),
        "deliver_gave_up": len(recs.get("gave_up", [])),
        "in_dlq": dlq,
        "still_queued": queued,
        "lost": max(len(accepted) - len(delivered) - in_dlq - queued, 0),
        "latency_s": {"p50": pct(latencies, 50), "p90": pct(latencies, 90), "p99": pct(latencies, 99),
                      "max": max(latencies) if latencies else float("nan")},
        "load_s": round(load_s, 1),
        "drain_s": round(drain_s, 1),
        "aws_cost": cost,
    }
    print()
    print(f"order pipeline: {report['template']}, scenario {report['scenario']}")
    for k in ["orders_sent", "accepted", "delivered", "orders_retried", "retries", "deliver_429s", "deliver_5xx",
              "deliver_gave_up", "in_dlq", "still_queued", "lost"]:
        print(f"  {k:<18} {report[k] if report[k] is not None else 'n/a (no DLQ)'}")
    if queued:
        print(f"  (drain timed out with {queued} order(s) still in the delivery queue: not lost, not yet delivered)")
    print(f"  {'notify statuses':<18} {statuses}")
    lat = report["latency_s"]
    print(f"  {'latency (s)':<18} p50 {lat['p50']:.2f}  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  max {lat['max']:.2f}")
    print(f"  {'time (s)':<18} load {report['load_s']}, drain {report['drain_s']}")
    if "total" in cost:
        by = {}
        for line in cost["lines"]:
            by[line["service"]] = by.get(line["service"], 0.0) + line["cost"]
        parts = ", ".join(f"{k} ${v:.6f}" for k, v in sorted(by.items(), key=lambda kv: -kv[1]) if v > 0)
        print(f"  {'on AWS (USD)':<18} ${cost['total']:.6f} before the free tier ({parts})")
    else:
        print(f"  {'on AWS (USD)':<18} n/a: {cost.get('error')}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
