"""OTLP span export: with OTEL_EXPORTER_OTLP_ENDPOINT set, nimbus sends the spans it records to
a collector over OTLP/HTTP protobuf. A mock collector here decodes them with the
OpenTelemetry project's own protobuf classes (opentelemetry-proto) and checks one request's
spans: the X-Ray trace as the W3C trace id, parents, kinds and services. Also: export settings
nimbus cannot use stop start-up with the variable named."""

import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from conftest import NIMBUS, poll

APP = '''
import json, os

def handler(event, context):
    if event.get("rawPath") == "/fail":
        raise RuntimeError("boom")
    return {"statusCode": 200, "body": json.dumps({"trace": os.environ["_X_AMZN_TRACE_ID"]})}
'''

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: app.handler
      Events:
        Get:
          Type: HttpApi
          Properties:
            Path: /{proxy+}
            Method: GET
"""


class Collector:
    """An OTLP/HTTP receiver on loopback that keeps every export request it is sent."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.path, self.headers.get("Content-Type"), body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def spans(self):
        """(service.name, span) for every span received so far."""
        out = []
        for _, _, body in list(self.requests):
            req = ExportTraceServiceRequest()
            req.ParseFromString(body)
            for rs in req.resource_spans:
                attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    assert ss.scope.name == "nimbus"
                    out.extend((attrs["service.name"], s) for s in ss.spans)
        return out

    def close(self):
        self.server.shutdown()


@pytest.fixture
def collector(monkeypatch):
    c = Collector()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.url)
    yield c
    c.close()


def attrs(span):
    return {a.key: a.value.string_value for a in span.attributes}


def test_a_requests_spans_reach_the_collector_as_one_trace(collector, start_nimbus):
    n = start_nimbus(TEMPLATE, {"src/app.py": APP})
    n.wait_for("nimbus: exporting trace spans over OTLP to " + collector.url)
    api = n.api_url("ServerlessHttpApi")
    r = requests.get(api + "/hello", timeout=10)
    assert r.status_code == 200
    seen_by_function = dict(p.split("=", 1) for p in r.json()["trace"].split(";"))
    root = seen_by_function["Root"]

    spans = poll(collector.spans, lambda s: len(s) >= 4, timeout=15)
    assert {path for path, _, _ in collector.requests} == {"/v1/traces"}
    assert {ct for _, ct, _ in collector.requests} == {"application/x-protobuf"}
    by_kind = {attrs(s)["nimbus.span.kind"]: (svc, s) for svc, s in spans}
    assert set(by_kind) >= {"gateway", "invoke", "init", "execution"}, by_kind.keys()

    # The X-Ray root is the W3C trace id without its version and dashes (opentelemetry-aws).
    trace_id = root[2:].replace("-", "")
    assert {s.trace_id.hex() for _, s in spans} == {trace_id}
    assert {attrs(s)["aws.xray.trace_id"] for _, s in spans} == {root}

    svc, gateway = by_kind["gateway"]
    assert svc == "api:ServerlessHttpApi" and gateway.kind == Span.SPAN_KIND_SERVER
    assert gateway.name == "GET /{proxy+}"
    assert attrs(gateway)["http.status_code"] == "200"
    assert gateway.parent_span_id == b""
    svc, invoke = by_kind["invoke"]
    assert svc == "function:Hello" and invoke.parent_span_id == gateway.span_id
    _, execution = by_kind["execution"]
    assert execution.parent_span_id == invoke.span_id
    _, init = by_kind["init"]
    assert init.parent_span_id == invoke.span_id and init.name == "Initialization"
    # The function's Parent is its execution span, as exported.
    assert seen_by_function["Parent"] == execution.span_id.hex()
    for _, s in spans:
        assert s.end_time_unix_nano >= s.start_time_unix_nano > 0


def test_a_failed_invocation_is_an_error_span(collector, start_nimbus):
    n = start_nimbus(TEMPLATE, {"src/app.py": APP})
    api = n.api_url("ServerlessHttpApi")
    assert requests.get(api + "/fail", timeout=10).status_code == 500

    def failed():
        return [s for svc, s in collector.spans()
                if svc == "function:Hello" and attrs(s)["nimbus.span.kind"] == "execution"]
    spans = poll(failed, lambda s: len(s) >= 1, timeout=15)
    assert spans[0].status.code == Status.STATUS_CODE_ERROR
    assert spans[0].status.message == "Unhandled"


def test_spans_still_queued_at_shutdown_are_sent(collector, start_nimbus):
    n = start_nimbus(TEMPLATE, {"src/app.py": APP})
    api = n.api_url("ServerlessHttpApi")
    assert requests.get(api + "/hello", timeout=10).status_code == 200
    n.stop()
    assert n.proc.returncode == 0
    kinds = {attrs(s)["nimbus.span.kind"] for _, s in collector.spans()}
    assert {"gateway", "invoke", "execution"} <= kinds


@pytest.mark.parametrize("env, message", [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://[::1"},
     "cannot export spans over OTLP: invalid exporter configuration: "
     "OTEL_EXPORTER_OTLP_ENDPOINT: invalid endpoint 'http://[::1'"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: nimbus exports spans over http/protobuf only"),
])
def test_export_settings_nimbus_cannot_use_stop_start_up(tmp_path, env, message):
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(APP)
    out = subprocess.run(
        [str(NIMBUS), "up", str(tmp_path / "template.yaml"), "--aws-port", "0", "--api-port", "0"],
        capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert out.returncode != 0
    assert message in out.stderr, out.stderr
