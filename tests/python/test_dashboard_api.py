"""The dashboard's JSON API (crates/nimbus-dashboard/API.md) on a real `nimbus up`: the stack
as a graph, one request's spans from the gateway through a function's PutEvents, the rule's
SQS target and the queue to the consuming function, the recent log lines, metric samples,
and refusals of bad parameters."""

import requests

from conftest import poll

APP = '''
import json, os, urllib.request

def api(event, context):
    entry = {"Source": "shop", "DetailType": "order", "Detail": json.dumps({"n": 1})}
    req = urllib.request.Request(
        os.environ["AWS_ENDPOINT_URL"],
        data=json.dumps({"Entries": [entry]}).encode(),
        # What an AWS SDK sends from a traced function: the trace as an HTTP header.
        headers={"X-Amz-Target": "AWSEvents.PutEvents",
                 "Content-Type": "application/x-amz-json-1.1",
                 "X-Amzn-Trace-Id": os.environ["_X_AMZN_TRACE_ID"]})
    urllib.request.urlopen(req).read()
    print("order placed")
    return {"statusCode": 200, "body": "ok"}

def worker(event, context):
    print("delivered", len(event["Records"]))
    return {}
'''

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    CodeUri: src
    Timeout: 5
Resources:
  Api:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.api
      Tracing: Active
      Events:
        Http:
          Type: HttpApi
          Properties: {Path: /orders, Method: POST}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.worker
      Events:
        Jobs:
          Type: SQS
          Properties: {Queue: !GetAtt Jobs.Arn, BatchSize: 1}
  Jobs:
    Type: AWS::SQS::Queue
  Placed:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [shop]}
      Targets:
        - Id: ToJobs
          Arn: !GetAtt Jobs.Arn
"""


def get(n, path, **params):
    r = requests.get(n.endpoint + path, params=params, timeout=5)
    return r.status_code, r.json()


def test_one_request_is_one_trace_across_gateway_function_bus_queue_and_consumer(start_nimbus):
    n = start_nimbus(TEMPLATE, {"src/app.py": APP})
    api = n.api_url("ServerlessHttpApi")
    r = requests.post(api + "/orders", data="{}", timeout=10)
    assert r.status_code == 200

    def newest_trace():
        traces = get(n, "/_nimbus/api/traces")[1]["traces"]
        return traces[0] if traces else None
    t = poll(newest_trace, lambda t: t is not None and "function:Worker" in t["services"])
    assert t and t["name"] == "POST /orders" and t["service"] == "api:ServerlessHttpApi", t
    assert not t["error"]
    status, trace = get(n, "/_nimbus/api/traces/" + t["trace_id"])
    assert status == 200
    spans = {s["id"]: s for s in trace["spans"]}
    by_kind = {}
    for s in trace["spans"]:
        by_kind.setdefault(s["kind"], []).append(s)

    def parent(s):
        return spans[s["parent_id"]]
    gateway = by_kind["gateway"][0]
    assert gateway["parent_id"] is None
    assert gateway["attributes"]["http.status_code"] == "200"
    # The chain: gateway -> invoke(Api) -> execution(Api) -> bus -> target -> queue-wait ->
    # invoke(Worker) -> execution(Worker); each span's parent is the hop before it.
    bus = by_kind["bus"][0]
    target = by_kind["target"][0]
    wait = by_kind["queue-wait"][0]
    assert bus["service"] == "bus:default" and bus["attributes"]["source"] == "shop"
    assert parent(bus)["kind"] == "execution" and parent(bus)["service"] == "function:Api"
    assert parent(parent(bus))["kind"] == "invoke"
    assert parent(parent(parent(bus)))["id"] == gateway["id"]
    assert parent(target)["id"] == bus["id"] and target["service"] == "rule:Placed"
    assert parent(wait)["id"] == target["id"] and wait["service"] == "queue:Jobs"
    worker = [s for s in by_kind["invoke"] if s["service"] == "function:Worker"][0]
    assert parent(worker)["id"] == wait["id"]
    assert {s["kind"] for s in trace["spans"]} >= {"init", "execution"}
    for s in trace["spans"]:
        assert s["end_us"] >= s["start_us"], s

    # The stack graph has the template's edges and the call the trace showed.
    _, stack = get(n, "/_nimbus/api/stack")
    ids = {node["id"] for node in stack["nodes"]}
    assert {"api:ServerlessHttpApi", "function:Api", "function:Worker", "bus:default",
            "rule:Placed", "queue:Jobs"} <= ids
    edges = {(e["from"], e["to"], e["kind"]) for e in stack["edges"]}
    assert ("api:ServerlessHttpApi", "function:Api", "route") in edges
    assert ("rule:Placed", "queue:Jobs", "target") in edges
    assert ("queue:Jobs", "function:Worker", "mapping") in edges
    assert ("function:Api", "bus:default", "call") in edges

    # Log lines of both functions, in order, with sequence numbers to resume from.
    _, logs = get(n, "/_nimbus/api/logs", source="Worker")
    assert any(e["message"] == "delivered 1" for e in logs["events"]), logs
    assert all(e["source"] == "Worker" for e in logs["events"])
    _, later = get(n, "/_nimbus/api/logs", after=logs["next"])
    assert all(e["seq"] > logs["next"] for e in later["events"])

    _, metrics = get(n, "/_nimbus/api/metrics")
    inv = {s["labels"]["function"]: s["value"] for s in metrics["samples"]
           if s["name"] == "nimbus_lambda_invocations_total"}
    assert inv == {"Api": 1.0, "Worker": 1.0}


def test_the_dashboard_refuses_bad_parameters_and_unknown_traces(start_nimbus):
    n = start_nimbus(TEMPLATE, {"src/app.py": APP})
    status, body = get(n, "/_nimbus/api/traces", limit="many")
    assert status == 400 and body["message"] == 'limit must be a whole number, not "many"'
    status, body = get(n, "/_nimbus/api/logs", after="-1")
    assert status == 400
    status, body = get(n, "/_nimbus/api/traces/1-00000000-000000000000000000000000")
    assert status == 404 and "not kept" in body["message"]
    status, body = get(n, "/_nimbus/api/nothing")
    assert status == 404 and "API.md" in body["message"]
