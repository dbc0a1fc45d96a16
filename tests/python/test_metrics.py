"""GET /metrics on the AWS endpoint: after a scripted set of invocations, errors, throttles, API
requests, queue sends and events, the exact counter and gauge values; histogram buckets that
add up; functions' Embedded Metric Format lines as metrics, a malformed one counted and
skipped."""

import json
import re

import requests

from conftest import poll

APP = '''
import json, os, time

def handler(event, context):
    mode = os.environ.get("MODE", "ok")
    if mode == "fail":
        raise RuntimeError("always fails")
    if mode == "emf":
        print(json.dumps({"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [
            {"Namespace": "shop", "Dimensions": [["Service"]],
             "Metrics": [{"Name": "OrderValue", "Unit": "None"}]}]},
            "Service": "checkout", "OrderValue": event.get("value", 1), "requestId": context.aws_request_id}))
        print(json.dumps({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [
            {"Namespace": "shop", "Dimensions": [], "Metrics": [{"Name": "Missing"}]}]}}))
    if mode == "http":
        return {"statusCode": 200, "body": "hi"}
    return {"ok": True}
'''

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    Handler: app.handler
    CodeUri: src
    Timeout: 5
Resources:
  Ok:
    Type: AWS::Serverless::Function
  Fail:
    Type: AWS::Serverless::Function
    Properties:
      Environment: {Variables: {MODE: fail}}
  Off:
    Type: AWS::Serverless::Function
    Properties:
      ReservedConcurrentExecutions: 0
  Emf:
    Type: AWS::Serverless::Function
    Properties:
      Environment: {Variables: {MODE: emf}}
  Web:
    Type: AWS::Serverless::Function
    Properties:
      Environment: {Variables: {MODE: http}}
      Events:
        Hi:
          Type: HttpApi
          Properties: {Path: /hi, Method: GET}
  Jobs:
    Type: AWS::SQS::Queue
    Properties: {QueueName: jobs}
  Orders:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [shop]}
      Targets:
        - Id: to-jobs
          Arn: !GetAtt Jobs.Arn
"""

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")


def scrape(n):
    r = requests.get(n.endpoint + "/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.endswith("# EOF\n")
    samples = {}
    for line in r.text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not an exposition sample: {line!r}"
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


def test_metrics_count_exactly_what_happened(start_nimbus):
    n = start_nimbus(TEMPLATE, {"src/app.py": APP})
    lam, sqs, events = n.client("lambda"), n.client("sqs"), n.client("events")
    for _ in range(3):
        assert lam.invoke(FunctionName="Ok", Payload=b"{}")["StatusCode"] == 200
    for _ in range(2):
        assert lam.invoke(FunctionName="Fail", Payload=b"{}")["FunctionError"] == "Unhandled"
    # One raw request: boto3 would retry a throttle on its own.
    r = requests.post(n.endpoint + "/2015-03-31/functions/Off/invocations", data=b"{}", timeout=10)
    assert r.status_code == 429 and r.json()["Type"] == "User"
    for v in (5, 7):
        lam.invoke(FunctionName="Emf", Payload=json.dumps({"value": v}).encode())
    api = n.api_url("ServerlessHttpApi")
    for _ in range(2):
        assert requests.get(api + "/hi", timeout=10).status_code == 200
    assert requests.get(api + "/nowhere", timeout=10).status_code == 404
    url = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=60)
    r = events.put_events(Entries=[{"Source": "shop", "DetailType": "t", "Detail": "{}"},
                                   {"Source": "other", "DetailType": "t", "Detail": "{}"}])
    assert r["FailedEntryCount"] == 0

    # EMF lines are parsed by the log writer, a moment after the invocation answers.
    m = poll(lambda: scrape(n), lambda m: m.get('nimbus_emf_invalid_lines_total{function="Emf"}') == 2)

    expected = {
        'nimbus_lambda_invocations_total{function="Ok"}': 3,
        'nimbus_lambda_invocations_total{function="Fail"}': 2,
        'nimbus_lambda_errors_total{function="Fail",error_type="function"}': 2,
        'nimbus_lambda_throttles_total{function="Off",reason="ReservedFunctionConcurrentInvocationLimitExceeded"}': 1,
        'nimbus_lambda_cold_starts_total{function="Ok"}': 1,
        'nimbus_lambda_duration_seconds_count{function="Ok"}': 3,
        'nimbus_lambda_init_duration_seconds_count{function="Ok"}': 1,
        'nimbus_lambda_concurrent_executions{function="Ok"}': 0,
        'nimbus_apigateway_requests_total{api="ServerlessHttpApi",route="GET /hi",status_class="2xx"}': 2,
        'nimbus_apigateway_requests_total{api="ServerlessHttpApi",route="(no route)",status_class="4xx"}': 1,
        'nimbus_apigateway_latency_seconds_count{api="ServerlessHttpApi",route="GET /hi"}': 2,
        'nimbus_apigateway_integration_latency_seconds_count{api="ServerlessHttpApi",route="GET /hi"}': 2,
        # 3 sent + 1 from the rule; one received and in flight.
        'nimbus_sqs_messages_visible{queue="jobs"}': 3,
        'nimbus_sqs_messages_in_flight{queue="jobs"}': 1,
        'nimbus_sqs_messages_delayed{queue="jobs"}': 0,
        'nimbus_events_put_entries_total{bus="default"}': 2,
        'nimbus_events_rule_matches_total{bus="default",rule="Orders"}': 1,
        'nimbus_events_target_invocations_total{bus="default",rule="Orders",target="to-jobs"}': 1,
        'nimbus_emf_observations_total{function="Emf",namespace="shop",metric="OrderValue",unit="None",dimensions="Service=checkout"}': 2,
        'nimbus_emf_sum{function="Emf",namespace="shop",metric="OrderValue",unit="None",dimensions="Service=checkout"}': 12,
        'nimbus_emf_last{function="Emf",namespace="shop",metric="OrderValue",unit="None",dimensions="Service=checkout"}': 7,
        'nimbus_emf_invalid_lines_total{function="Emf"}': 2,
    }
    got = {k: m.get(k) for k in expected}
    assert got == expected
    assert 'nimbus_lambda_invocations_total{function="Off"}' not in m
    assert not any("target_failures" in k for k in m)
    assert m['nimbus_sqs_oldest_message_age_seconds{queue="jobs"}'] >= 0
    # No request id ever becomes a label.
    assert not any(re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", k) for k in m)
    # Cumulative buckets: never decreasing, +Inf equals the count.
    buckets = sorted(((float(re.search(r'le="([^"]+)"', k).group(1)), v) for k, v in m.items()
                      if k.startswith("nimbus_lambda_duration_seconds_bucket") and 'function="Ok"' in k))
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and buckets[-1] == (float("inf"), 3)
