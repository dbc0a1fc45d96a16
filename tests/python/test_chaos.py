"""Chaos faults on nimbus's AWS APIs, in LocalStack's chaos API shape (`/_nimbus/chaos/faults`,
`/_nimbus/chaos/effects`): boto3 sees the configured error in each service's own protocol
(AWS JSON, query/XML, REST-JSON, S3's XML), probabilities hold, latency is added, clearing
restores, and bad rules are refused with the reason."""

import json
import subprocess
import time

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import NIMBUS, ROOT, TESTFN, poll

TEMPLATE = """
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties: {QueueName: chaos-q}
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: chaos-t
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
  B:
    Type: AWS::S3::Bucket
    Properties: {BucketName: chaos-b}
  Topic:
    Type: AWS::SNS::Topic
    Properties: {TopicName: chaos-topic}
"""


def faults(n, method, rules=None):
    r = requests.request(method, f"{n.endpoint}/_nimbus/chaos/faults", data=None if rules is None else json.dumps(rules), timeout=10)
    return r.status_code, r.json()


def code_of(call):
    try:
        call()
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
    return 200, None


def test_faults_answer_in_each_services_protocol_and_clear(start_nimbus):
    n = start_nimbus(TEMPLATE)
    sqs, ddb, s3, sns = n.client("sqs"), n.client("dynamodb"), n.client("s3"), n.client("sns")
    q = sqs.get_queue_url(QueueName="chaos-q")["QueueUrl"]
    topic = sns.list_topics()["Topics"][0]["TopicArn"]
    status, listed = faults(n, "POST", [
        {"service": "sqs", "operation": "SendMessage", "error": {"statusCode": 503, "code": "ServiceUnavailable"}},
        {"service": "dynamodb", "operation": "PutItem", "probability": 1, "error": {"statusCode": 400, "code": "ProvisionedThroughputExceededException"}},
        {"service": "s3", "error": {"statusCode": 500, "code": "InternalError"}},
    ])
    assert status == 200 and [r.get("operation") for r in listed] == ["SendMessage", "PutItem", None]
    assert code_of(lambda: sqs.send_message(QueueUrl=q, MessageBody="x")) == (503, "ServiceUnavailable")
    assert code_of(lambda: sqs.receive_message(QueueUrl=q)) == (200, None)  # another operation
    assert code_of(lambda: ddb.put_item(TableName="chaos-t", Item={"pk": {"S": "a"}})) == (400, "ProvisionedThroughputExceededException")
    assert code_of(lambda: ddb.get_item(TableName="chaos-t", Key={"pk": {"S": "a"}})) == (200, None)
    assert code_of(lambda: s3.put_object(Bucket="chaos-b", Key="k", Body=b"x")) == (500, "InternalError")
    # PATCH adds a rule (SNS speaks the query protocol); DELETE removes one.
    status, listed = faults(n, "PATCH", [{"service": "sns", "operation": "Publish", "error": {"statusCode": 429, "code": "Throttling"}}])
    assert status == 200 and len(listed) == 4
    assert code_of(lambda: sns.publish(TopicArn=topic, Message="m")) == (429, "Throttling")
    status, listed = faults(n, "DELETE", [{"service": "s3", "error": {"statusCode": 500, "code": "InternalError"}}])
    assert status == 200 and len(listed) == 3
    assert code_of(lambda: s3.put_object(Bucket="chaos-b", Key="k", Body=b"x")) == (200, None)
    # An S3 rule may name the operation, by S3's own names.
    faults(n, "PATCH", [{"service": "s3", "operation": "GetObject", "error": {"statusCode": 503, "code": "SlowDown"}}])
    assert code_of(lambda: s3.get_object(Bucket="chaos-b", Key="k")) == (503, "SlowDown")
    assert code_of(lambda: s3.put_object(Bucket="chaos-b", Key="k2", Body=b"x")) == (200, None)
    assert code_of(lambda: s3.list_objects_v2(Bucket="chaos-b")) == (200, None)
    faults(n, "DELETE", [{"service": "s3", "operation": "GetObject", "error": {"statusCode": 503, "code": "SlowDown"}}])
    # A probability of 0.5 fails about half the calls (one attempt each: botocore retries a 503).
    once = boto3.client("sqs", endpoint_url=n.endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(retries={"total_max_attempts": 1}))
    faults(n, "POST", [{"service": "sqs", "operation": "GetQueueAttributes", "probability": 0.5}])
    failed = sum(code_of(lambda: once.get_queue_attributes(QueueUrl=q))[0] == 503 for _ in range(200))
    assert 60 <= failed <= 140, failed
    metrics = requests.get(f"{n.endpoint}/metrics", timeout=10).text
    assert 'nimbus_chaos_faults_injected_total{service="sqs",code="ServiceUnavailable"}' in metrics
    # Clearing restores everything.
    assert faults(n, "POST", []) == (200, [])
    assert code_of(lambda: sqs.send_message(QueueUrl=q, MessageBody="x")) == (200, None)


def test_latency_effect_and_bad_rules(start_nimbus):
    n = start_nimbus(TEMPLATE)
    sqs = n.client("sqs")
    q = sqs.get_queue_url(QueueName="chaos-q")["QueueUrl"]
    r = requests.post(f"{n.endpoint}/_nimbus/chaos/effects", data=json.dumps({"latency": 300}), timeout=10)
    assert r.status_code == 200 and r.json() == {"latency": 300}
    t = time.time()
    sqs.get_queue_attributes(QueueUrl=q)
    assert time.time() - t >= 0.3
    requests.post(f"{n.endpoint}/_nimbus/chaos/effects", data=json.dumps({"latency": 0}), timeout=10)
    t = time.time()
    sqs.get_queue_attributes(QueueUrl=q)
    assert time.time() - t < 0.3
    for rules, want in [
        ([{"service": "kinesis"}], 'nimbus serves no service "kinesis"'),
        ([{"probability": 2}], "probability must be a number from 0 to 1"),
        ([{"error": {"statusCode": 200}}], "HTTP error status"),
        ({"service": "sqs"}, "JSON array"),
    ]:
        r = requests.post(f"{n.endpoint}/_nimbus/chaos/faults", data=json.dumps(rules), timeout=10)
        assert r.status_code == 400 and want in r.json()["message"], r.text
    # A refused rule set leaves the rules as they were.
    assert faults(n, "GET") == (200, [])


FIS_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src/
      Environment:
        Variables:
          MARKS: {marks}
  Errors:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: echo-errors
      Namespace: AWS/Lambda
      MetricName: Errors
      Dimensions: [{Name: FunctionName, Value: !Ref Echo}]
      Statistic: Sum
      Period: 10
      EvaluationPeriods: 1
      Threshold: 1
      ComparisonOperator: GreaterThanOrEqualToThreshold
      TreatMissingData: notBreaching
"""

ECHO = """
import os, uuid
def handler(event, context):
    open(os.path.join(os.environ["MARKS"], uuid.uuid4().hex), "w").close()
    return {"statusCode": 200, "body": "ran"}
"""


def fis_template(fis, arn, action, params, stop=None):
    """A FIS experiment template with one Lambda action on the function `arn`: its id."""
    import uuid as _uuid
    return fis.create_experiment_template(
        clientToken=_uuid.uuid4().hex, description=action, roleArn="arn:aws:iam::123456789012:role/fis",
        stopConditions=stop or [{"source": "none"}],
        targets={"fn": {"resourceType": "aws:lambda:function", "resourceArns": [arn], "selectionMode": "ALL"}},
        actions={"act": {"actionId": action, "parameters": params, "targets": {"Functions": "fn"}}})["experimentTemplate"]["id"]


SHARE_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Py:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python3.12, Handler: app.handler, CodeUri: py/}
  Node:
    Type: AWS::Serverless::Function
    Properties: {Runtime: nodejs20.x, Handler: index.handler, CodeUri: node/}
  Rust:
    Type: AWS::Serverless::Function
    Properties: {Runtime: provided.al2023, Handler: bootstrap, CodeUri: rust/}
"""


def test_an_invocation_error_hits_its_percentage_of_1000_invocations_on_python_node_and_rust(start_nimbus):
    from concurrent.futures import ThreadPoolExecutor
    import uuid as _uuid
    n = start_nimbus(SHARE_TEMPLATE, {
        "py/app.py": "def handler(event, context):\n    return {'ran': True}\n",
        "node/index.js": "exports.handler = async () => ({ ran: true });\n",
        "rust/bootstrap": TESTFN,
    })
    lam, fis = n.client("lambda"), n.client("fis")
    arns = [lam.get_function(FunctionName=f)["Configuration"]["FunctionArn"] for f in ("Py", "Node", "Rust")]
    tid = fis.create_experiment_template(
        clientToken=_uuid.uuid4().hex, description="share", roleArn="arn:aws:iam::123456789012:role/fis",
        stopConditions=[{"source": "none"}],
        targets={"fns": {"resourceType": "aws:lambda:function", "resourceArns": arns, "selectionMode": "ALL"}},
        actions={"err": {"actionId": "aws:lambda:invocation-error", "targets": {"Functions": "fns"},
                         "parameters": {"duration": "PT10M", "invocationPercentage": "30",
                                        "preventExecution": "true"}}})["experimentTemplate"]["id"]
    eid = fis.start_experiment(clientToken=_uuid.uuid4().hex, experimentTemplateId=tid)["experiment"]["id"]

    def faulted(name):
        r = lam.invoke(FunctionName=name, Payload=json.dumps({"action": "echo"}).encode())
        payload = json.loads(r["Payload"].read())
        if r.get("FunctionError"):
            assert payload["errorType"] == "FaultInjectionError", payload
            return True
        return False

    with ThreadPoolExecutor(8) as pool:
        for name in ("Py", "Node", "Rust"):
            hits = sum(pool.map(faulted, [name] * 1000))
            # Binomial(1000, 0.3): mean 300, standard deviation 14.5; five of them either side.
            assert 228 <= hits <= 372, (name, hits)
    fis.stop_experiment(id=eid)
    assert not any(faulted(name) for name in ("Py", "Node", "Rust") for _ in range(20))


def test_fis_lambda_actions_inject_and_lift_faults(start_nimbus, tmp_path):
    import uuid as _uuid
    marks = tmp_path / "marks"
    marks.mkdir()
    n = start_nimbus(FIS_TEMPLATE.replace("{marks}", str(marks)), {"src/app.py": ECHO})
    lam, fis = n.client("lambda"), n.client("fis")
    arn = lam.get_function(FunctionName="Echo")["Configuration"]["FunctionArn"]

    def template(action, params, stop=None):
        return fis_template(fis, arn, action, params, stop)

    def run(tid):
        return fis.start_experiment(clientToken=_uuid.uuid4().hex, experimentTemplateId=tid)["experiment"]["id"]

    def invoke():
        r = lam.invoke(FunctionName="Echo", Payload=b"{}")
        return r.get("FunctionError"), json.loads(r["Payload"].read())

    # An HTTP response replaces the function's, which still runs without preventExecution.
    eid = run(template("aws:lambda:invocation-http-integration-response",
                       {"duration": "PT1M", "statusCode": "503", "contentTypeHeader": "text/plain", "preventExecution": "false"}))
    before = len(list(marks.iterdir()))
    assert invoke() == (None, {"statusCode": 503, "headers": {"Content-Type": "text/plain"}, "body": ""})
    assert len(list(marks.iterdir())) == before + 1
    fis.stop_experiment(id=eid)
    assert fis.get_experiment(id=eid)["experiment"]["state"]["status"] == "stopped"
    assert invoke() == (None, {"statusCode": 200, "body": "ran"})

    # An action ends by itself after its duration.
    eid = run(template("aws:lambda:invocation-error", {"duration": "PT1S", "preventExecution": "true"}))
    r = lam.invoke(FunctionName="Echo", Payload=b"{}")
    err, payload = r.get("FunctionError"), json.loads(r["Payload"].read())
    assert err == "Unhandled" and payload["errorType"] == "FaultInjectionError"
    # The handler did not run, yet the invocation is framed in the log as Lambda frames it.
    rid = r["ResponseMetadata"]["RequestId"]
    logs = n.client("logs")
    framed = poll(lambda: [e["message"].split("\t")[0].split(" RequestId")[0] for e in logs.filter_log_events(
        logGroupName="/aws/lambda/Echo", filterPattern=f'"{rid}"')["events"]], lambda l: len(l) >= 3)
    assert framed == ["START", "END", "REPORT"], framed
    wait_status = lambda want: next((s for _ in range(50) if (s := fis.get_experiment(id=eid)["experiment"]["state"]["status"]) == want or time.sleep(0.1)), None)  # noqa: E731
    assert wait_status("completed") == "completed"
    assert invoke()[0] is None

    # A stop condition on an alarm stops the experiment when the alarm fires.
    alarm = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:echo-errors"
    eid = run(template("aws:lambda:invocation-error", {"duration": "PT5M", "preventExecution": "false"},
                       stop=[{"source": "aws:cloudwatch:alarm", "value": alarm}]))
    for _ in range(3):
        invoke()
    status = None
    for _ in range(150):
        status = fis.get_experiment(id=eid)["experiment"]["state"]
        if status["status"] != "running":
            break
        time.sleep(0.2)
    assert status["status"] == "stopped" and "echo-errors" in status["reason"], status
    assert invoke()[0] is None

    # Bad input is refused with FIS's error and the reason.
    for params, want in [({"duration": "PT1M", "delayMilliseconds": "300"}, "delayMilliseconds"),
                         ({"duration": "PT1M", "invocationPercentage": "101"}, "invocationPercentage"),
                         ({"duration": "soon"}, "ISO 8601")]:
        try:
            template("aws:lambda:invocation-add-delay", params)
            raise AssertionError(f"{params} was accepted")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ValidationException" and want in e.response["Error"]["Message"], e.response


def test_the_chaos_command_injects_lists_and_clears(start_nimbus):
    import subprocess
    from conftest import NIMBUS
    n = start_nimbus(TEMPLATE)
    sqs = n.client("sqs")
    q = sqs.get_queue_url(QueueName="chaos-q")["QueueUrl"]

    def chaos(*args):
        out = subprocess.run([str(NIMBUS), "chaos", "--endpoint-url", n.endpoint, *args], capture_output=True, text=True, timeout=30)
        return out.returncode, out.stdout + out.stderr

    code, out = chaos("inject", "--service", "sqs", "--operation", "SendMessage", "--code", "ServiceUnavailable")
    assert code == 0 and "1 rule(s) active" in out, out
    assert code_of(lambda: sqs.send_message(QueueUrl=q, MessageBody="x")) == (503, "ServiceUnavailable")
    assert chaos("latency", "50")[0] == 0
    code, out = chaos("list")
    assert code == 0 and "fault: sqs SendMessage" in out and "latency: 50 ms" in out, out
    code, out = chaos("inject", "--service", "kinesis")
    assert code != 0 and "nimbus serves no service" in out, out
    assert chaos("clear")[0] == 0
    assert code_of(lambda: sqs.send_message(QueueUrl=q, MessageBody="x")) == (200, None)
    assert "no fault rules" in chaos("list")[1]


ROUTES = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src/
      Events:
        Post: {Type: HttpApi, Properties: {Path: /orders, Method: POST}}
        Get: {Type: HttpApi, Properties: {Path: '/orders/{id}', Method: GET}}
"""

ROUTE_ECHO = "def handler(event, context):\n    return {'statusCode': 200, 'body': event['routeKey']}\n"


def test_api_route_faults_fail_or_slow_one_route(start_nimbus):
    n = start_nimbus(ROUTES, {"src/app.py": ROUTE_ECHO}, args=["--api-port", "0"])
    base = n.api_url("ServerlessHttpApi")
    status, _ = faults(n, "POST", [
        {"service": "apigateway", "api": "ServerlessHttpApi", "operation": "POST /orders",
         "error": {"statusCode": 502, "code": "BadGateway"}},
        {"service": "apigateway", "operation": "GET /orders/{id}", "latency": 400},
    ])
    assert status == 200
    r = requests.post(f"{base}/orders", data="{}", timeout=10)
    assert (r.status_code, r.headers.get("x-amzn-errortype")) == (502, "BadGateway"), r.text
    assert "simulated fault" in r.json()["message"]
    started = time.time()
    r = requests.get(f"{base}/orders/7", timeout=10)
    took = time.time() - started
    assert (r.status_code, r.text) == (200, "GET /orders/{id}") and took >= 0.4, (r.status_code, took)
    metrics = requests.get(f"{n.endpoint}/metrics", timeout=10).text
    assert 'nimbus_chaos_faults_injected_total{service="apigateway",code="BadGateway"} 1' in metrics
    # A rule for one API does not touch AWS API calls; clearing restores the route.
    assert n.client("lambda").invoke(FunctionName="Orders", Payload=b'{"routeKey": "x"}')["StatusCode"] == 200
    faults(n, "POST", [])
    assert requests.post(f"{base}/orders", data="{}", timeout=10).status_code == 200
    status, body = faults(n, "POST", [{"service": "sqs", "api": "ServerlessHttpApi"}])
    assert status == 400 and "apigateway" in json.dumps(body), body


def test_an_injected_delay_is_in_the_report_duration_and_the_timeout(start_nimbus, tmp_path):
    import base64
    import re as _re
    import uuid as _uuid
    marks = tmp_path / "marks"
    marks.mkdir()
    n = start_nimbus(FIS_TEMPLATE.replace("{marks}", str(marks)), {"src/app.py": ECHO})
    lam, fis = n.client("lambda"), n.client("fis")
    arn = lam.get_function(FunctionName="Echo")["Configuration"]["FunctionArn"]
    tid = fis_template(fis, arn, "aws:lambda:invocation-add-delay",
                       {"duration": "PT1M", "startupDelayMilliseconds": "400"})
    fis.start_experiment(clientToken=_uuid.uuid4().hex, experimentTemplateId=tid)
    started = time.time()
    r = lam.invoke(FunctionName="Echo", Payload=b"{}", LogType="Tail")
    took = time.time() - started
    report = next(l for l in base64.b64decode(r["LogResult"]).decode().splitlines() if l.startswith("REPORT"))
    duration = float(_re.search(r"\tDuration: ([\d.]+) ms", report).group(1))
    assert took >= 0.4 and duration >= 400, (took, report)
    assert json.loads(r["Payload"].read()) == {"statusCode": 200, "body": "ran"}


def test_chaos_run_follows_an_experiment_file_and_the_orders_experiment_loads(start_nimbus, tmp_path):
    n = start_nimbus(FIS_TEMPLATE.replace("{marks}", str(tmp_path)).replace("  Echo:", "  Deliver:")
                     .replace("!Ref Echo", "!Ref Deliver"), {"src/app.py": ECHO})
    brief = {
        "description": "one second of errors",
        "targets": {"fn": {"resourceType": "aws:lambda:function", "selectionMode": "ALL",
                           "resourceArns": ["arn:aws:lambda:us-east-1:123456789012:function:Deliver"]}},
        "actions": {"err": {"actionId": "aws:lambda:invocation-error",
                            "parameters": {"duration": "PT1S", "preventExecution": "true"},
                            "targets": {"Functions": "fn"}}},
    }
    (tmp_path / "brief.json").write_text(json.dumps(brief))
    out = subprocess.run([str(NIMBUS), "chaos", "--endpoint-url", n.endpoint, "run", str(tmp_path / "brief.json")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "running" in out.stdout and ": completed" in out.stdout, out
    # The orders app's shipped experiment is one FIS accepts.
    shipped = ROOT / "apps" / "orders" / "chaos" / "slow-deliver.json"
    out = subprocess.run([str(NIMBUS), "chaos", "--endpoint-url", n.endpoint, "run", "--no-wait", str(shipped)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "started" in out.stdout, out
    listed = subprocess.run([str(NIMBUS), "chaos", "--endpoint-url", n.endpoint, "list"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "experiment" in listed.stdout, listed.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"actions": {"a": {"actionId": "aws:ec2:stop-instances"}}}')
    out = subprocess.run([str(NIMBUS), "chaos", "--endpoint-url", n.endpoint, "run", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "bad.json" in out.stderr, out


def test_fis_templates_survive_a_restart_and_a_running_experiment_is_stopped(start_nimbus, tmp_path):
    import uuid as _uuid
    template = FIS_TEMPLATE.replace("{marks}", str(tmp_path))
    n = start_nimbus(template, {"src/app.py": ECHO})
    fis = n.client("fis")
    arn = n.client("lambda").get_function(FunctionName="Echo")["Configuration"]["FunctionArn"]
    tid = fis_template(fis, arn, "aws:lambda:invocation-error", {"duration": "PT5M", "preventExecution": "true"})
    eid = fis.start_experiment(clientToken=_uuid.uuid4().hex, experimentTemplateId=tid)["experiment"]["id"]
    assert n.client("lambda").invoke(FunctionName="Echo", Payload=b"{}").get("FunctionError") == "Unhandled"
    n.proc.kill()
    n.proc.wait()
    n = start_nimbus(template)
    fis = n.client("fis")
    assert fis.get_experiment_template(id=tid)["experimentTemplate"]["description"] == "aws:lambda:invocation-error"
    state = fis.get_experiment(id=eid)["experiment"]["state"]
    assert state["status"] == "stopped" and "nimbus stopped" in state["reason"], state
    # No fault survives the restart.
    assert n.client("lambda").invoke(FunctionName="Echo", Payload=b"{}").get("FunctionError") is None


FETCH = """
import os, ssl, time, urllib.error, urllib.request

def handler(event, context):
    started = time.monotonic()
    out = {"proxy": os.environ.get("HTTP_PROXY")}
    ctx = ssl.create_default_context(cafile=event["cafile"]) if event.get("cafile") else None
    try:
        with urllib.request.urlopen(event["url"], timeout=10, context=ctx) as r:
            out.update(status=r.status, body=r.read().decode())
    except urllib.error.HTTPError as e:
        out.update(status=e.code, body=e.read().decode())
    except Exception as e:
        out.update(error=type(e).__name__, reason=str(e))
    out["ms"] = (time.monotonic() - started) * 1000
    return out
"""

FETCH_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Fetch:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src/
      Timeout: 30
"""


class Upstream:
    """A plain HTTP server on loopback answering every GET with 200 and a fixed body."""

    def __init__(self):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = b"upstream says hello, at some length so that a cut shows" * 10
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def test_egress_rules_break_a_functions_outbound_calls_per_host(start_nimbus, tmp_path):
    up = Upstream()
    try:
        n = start_nimbus(FETCH_TEMPLATE, {"src/app.py": FETCH})
        lam = n.lambda_client()

        def fetch(url=f"http://127.0.0.1:{up.port}/x"):
            r = lam.invoke(FunctionName="Fetch", Payload=json.dumps({"url": url}).encode())
            assert "FunctionError" not in r, r
            return json.loads(r["Payload"].read())

        # Without egress rules (and without --egress-proxy) functions get no proxy.
        first = fetch()
        assert first["proxy"] is None and first["status"] == 200, first
        host = f"127.0.0.1:{up.port}"
        cases = [
            ({"service": "egress", "host": host, "error": {"statusCode": 503, "code": "ServiceUnavailable"}},
             lambda r: r["status"] == 503 and "ServiceUnavailable" in r["body"]),
            ({"service": "egress", "host": host, "error": {"statusCode": 429, "code": "TooManyRequests"}},
             lambda r: r["status"] == 429),
            ({"service": "egress", "host": "127.0.0.1", "connection": "refuse"},
             lambda r: r["status"] == 502 and "refused" in r["body"]),
            ({"service": "egress", "host": host, "connection": "reset"},
             lambda r: r.get("error") in ("IncompleteRead", "RemoteDisconnected", "ConnectionResetError"), ),
            ({"service": "egress", "host": host, "latency": 400},
             lambda r: r["status"] == 200 and r["ms"] >= 400),
            ({"service": "egress", "host": "elsewhere.example", "connection": "refuse"},
             lambda r: r["status"] == 200 and r["body"].startswith("upstream says hello")),
        ]
        for rule, ok in cases:
            status, _ = faults(n, "POST", [rule])
            assert status == 200
            got = fetch()
            # The first egress rule restarted the environment with the proxy.
            assert got["proxy"] and got["proxy"].startswith("http://127.0.0.1:"), got
            assert ok(got), (rule, got)
        # Cleared: the proxy passes calls through untouched.
        faults(n, "POST", [])
        cleared = fetch()
        assert cleared["status"] == 200 and cleared["body"] == first["body"], cleared
        # Calls to nimbus's own endpoint bypass the proxy (NO_PROXY).
        faults(n, "POST", [{"service": "egress", "connection": "refuse"}])
        own = fetch(f"{n.endpoint}/_nimbus/chaos/faults")
        assert own["status"] == 200 and "egress" in own["body"], own
        faults(n, "POST", [])
        metrics = requests.get(f"{n.endpoint}/metrics", timeout=10).text
        assert 'nimbus_chaos_faults_injected_total{service="egress",code="connection-refuse"} 1' in metrics, metrics
        # HTTPS goes through a CONNECT tunnel, never decrypted: the function verifies the
        # destination's own certificate, and rules break the tunnel.
        from test_gateway_https import https_backend, make_certificates
        ca, cert, key = make_certificates(tmp_path)
        tls = https_backend(cert, key)
        try:
            def fetch_tls():
                event = {"url": f"https://localhost:{tls.server_address[1]}/secure", "cafile": str(ca)}
                r = lam.invoke(FunctionName="Fetch", Payload=json.dumps(event).encode())
                return json.loads(r["Payload"].read())
            ok = fetch_tls()
            assert ok["status"] == 200 and json.loads(ok["body"])["path"] == "/secure", ok
            tls_host = f"localhost:{tls.server_address[1]}"
            for rule, want in [
                ({"service": "egress", "host": tls_host, "connection": "refuse"}, "Tunnel connection failed: 502"),
                ({"service": "egress", "host": tls_host, "error": {"statusCode": 503}}, "Tunnel connection failed: 503"),
            ]:
                faults(n, "POST", [rule])
                got = fetch_tls()
                assert got.get("error") == "URLError" and want in got["reason"], (rule, got)
            faults(n, "POST", [{"service": "egress", "host": tls_host, "connection": "reset"}])
            got = fetch_tls()
            assert "error" in got and "status" not in got, got
            faults(n, "POST", [])
            assert fetch_tls()["status"] == 200
        finally:
            tls.shutdown()
        # Bad egress rules are refused whole.
        for rule, want in [({"service": "egress", "connection": "drop"}, "connection must be"),
                           ({"service": "sqs", "host": "x"}, "egress")]:
            status, body = faults(n, "POST", [rule])
            assert status == 400 and want in body["message"], body
    finally:
        up.stop()
