"""The event engine with boto3: asynchronous invocation (retries, DLQ, destinations, durability
across kill -9), EventBridge PutEvents -> rules -> SQS and Lambda targets, and SQS event source
mappings (batches, partial failures, filters, MaximumConcurrency). Delays are scaled with
--delay-scale so Lambda's one- and two-minute retries take about a second."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import wait_until

APP = '''
import json, os, time

def log(context, **fields):
    with open(os.environ["CALLS"], "a") as f:
        f.write(json.dumps(dict(fn=context.function_name, rid=context.aws_request_id,
                                trace=os.environ.get("_X_AMZN_TRACE_ID"), **fields)) + "\\n")

def handler(event, context):
    mode = os.environ.get("MODE", "ok")
    start = time.time()
    if mode == "slow":
        time.sleep(float(os.environ.get("SLEEP", "0.3")))
    log(context, event=event, start=start, end=time.time())
    if mode == "fail":
        raise RuntimeError("always fails: %s" % event.get("n"))
    if mode == "partial":
        failed = [r["messageId"] for r in event["Records"] if r["body"].startswith("fail")]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
    return {"ok": True, "got": event}
'''


def template(calls, resources):
    return f"""
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    Handler: app.handler
    CodeUri: src
    Timeout: 5
    Environment:
      Variables:
        CALLS: {calls}
Resources:
{resources}
"""


def calls_of(path, fn=None):
    if not path.exists():
        return []
    out = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    return [c for c in out if fn is None or c["fn"] == fn]


def receive_all(sqs, url, n, timeout=20):
    got = []
    deadline = time.time() + timeout
    while len(got) < n and time.time() < deadline:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                MessageAttributeNames=["All"], AttributeNames=["All"])
        for m in r.get("Messages", []):
            got.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert len(got) >= n, f"expected {n} messages, got {got}"
    return got


def work_queue(visibility, max_receive_count):
    """A queue `Work` that redrives to `WorkDlq` after `max_receive_count` receives."""
    return f"""  Work:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: {visibility}
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDlq.Arn
        maxReceiveCount: {max_receive_count}
  WorkDlq:
    Type: AWS::SQS::Queue
"""


ASYNC = """
  Failing:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          MODE: fail
      DeadLetterQueue:
        Type: SQS
        TargetArn: !GetAtt Dlq.Arn
      EventInvokeConfig:
        MaximumRetryAttempts: 2
        DestinationConfig:
          OnFailure:
            Type: SQS
            Destination: !GetAtt Failures.Arn
  Working:
    Type: AWS::Serverless::Function
    Properties:
      EventInvokeConfig:
        MaximumRetryAttempts: 0
        DestinationConfig:
          OnSuccess:
            Type: SQS
            Destination: !GetAtt Successes.Arn
  Dlq:
    Type: AWS::SQS::Queue
  Failures:
    Type: AWS::SQS::Queue
  Successes:
    Type: AWS::SQS::Queue
"""


def test_failed_async_events_are_retried_twice_then_sent_to_the_dlq_and_on_failure(start_nimbus, calls):
    n = start_nimbus(template(calls, ASYNC), {"src/app.py": APP}, args=["--delay-scale", "0.01"])
    lam, sqs = n.lambda_client(), n.client("sqs")
    r = lam.invoke(FunctionName="Failing", InvocationType="Event", Payload=b'{"n": 7}')
    assert r["StatusCode"] == 202
    request_id = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]

    failures = receive_all(sqs, sqs.get_queue_url(QueueName="Failures")["QueueUrl"], 1)
    record = json.loads(failures[0]["Body"])
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:Failing:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"n": 7}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorMessage"] == "always fails: 7"
    assert record["timestamp"].endswith("Z")

    dead = receive_all(sqs, sqs.get_queue_url(QueueName="Dlq")["QueueUrl"], 1)
    assert json.loads(dead[0]["Body"]) == {"n": 7}
    attrs = dead[0]["MessageAttributes"]
    assert attrs["RequestID"] == {"StringValue": request_id, "DataType": "String"}
    assert attrs["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
    assert attrs["ErrorMessage"]["StringValue"] == "always fails: 7"

    runs = calls_of(calls, "Failing")
    assert [c["rid"] for c in runs] == [request_id] * 3, "retries keep the request id"
    gaps = [b["start"] - a["start"] for a, b in zip(runs, runs[1:])]
    # 1 and 2 minutes scaled by 0.01 (plus the run itself).
    assert 0.55 <= gaps[0] < 3 and 1.15 <= gaps[1] < 4, gaps


def test_a_successful_async_event_sends_its_record_to_on_success(start_nimbus, calls):
    n = start_nimbus(template(calls, ASYNC), {"src/app.py": APP}, args=["--delay-scale", "0.01"])
    lam, sqs = n.lambda_client(), n.client("sqs")
    r = lam.invoke(FunctionName="Working", InvocationType="Event", Payload=b'{"hello": "world"}')
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    got = receive_all(sqs, sqs.get_queue_url(QueueName="Successes")["QueueUrl"], 1)
    record = json.loads(got[0]["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["requestId"] == rid
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"ok": True, "got": {"hello": "world"}}


DURABLE = """
  Slow:
    Type: AWS::Serverless::Function
    Properties:
      ReservedConcurrentExecutions: 1
      Environment:
        Variables:
          MODE: slow
          SLEEP: "0.2"
"""


def test_accepted_async_events_survive_kill_9(start_nimbus, calls):
    n = start_nimbus(template(calls, DURABLE), {"src/app.py": APP})
    lam = n.lambda_client()
    accepted = set()
    for i in range(30):
        r = lam.invoke(FunctionName="Slow", InvocationType="Event", Payload=json.dumps({"n": i}).encode())
        assert r["StatusCode"] == 202
        accepted.add(r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])
    n.proc.kill()
    n.proc.wait()
    before = {c["rid"] for c in calls_of(calls)}
    assert len(before) < 30, "the kill should interrupt the queue"

    start_nimbus(template(calls, DURABLE), {}, args=[])
    wait_until("all 30 events", lambda: {c["rid"] for c in calls_of(calls)} >= accepted or None, 30)
    assert {c["event"]["n"] for c in calls_of(calls)} == set(range(30))


BUS = """
  Orders:
    Type: AWS::Events::EventBus
    Properties:
      Name: orders
  Handler:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Big:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Orders
            Pattern:
              source: [shop]
              detail:
                total: [{numeric: [">", 100]}]
  Seen:
    Type: AWS::SQS::Queue
  ToQueue:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Orders
      EventPattern:
        source: [shop]
        detail-type: [{prefix: order-}]
      Targets:
        - Id: q
          Arn: !GetAtt Seen.Arn
          InputTransformer:
            InputPathsMap:
              id: $.detail.id
              kind: $.detail-type
            InputTemplate: '{"order": <id>, "kind": "<kind>", "rule": "<aws.events.rule-name>"}'
"""


def test_put_events_reaches_rule_targets_on_sqs_and_lambda(start_nimbus, calls):
    n = start_nimbus(template(calls, BUS), {"src/app.py": APP})
    events, sqs = n.client("events"), n.client("sqs")
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    r = events.put_events(Entries=[
        {"Source": "shop", "DetailType": "order-created", "Detail": json.dumps({"id": 1, "total": 250}),
         "EventBusName": "orders", "TraceHeader": trace},
        {"Source": "shop", "DetailType": "order-created", "Detail": json.dumps({"id": 2, "total": 5}),
         "EventBusName": "orders"},
        {"Source": "shop", "DetailType": "order-created", "Detail": "not json", "EventBusName": "orders"},
        {"Source": "shop", "DetailType": "order-created", "Detail": "{}", "EventBusName": "nope"},
        {"Source": "shop", "Detail": "{}", "EventBusName": "orders"},
    ])
    assert r["FailedEntryCount"] == 3
    e = r["Entries"]
    assert "EventId" in e[0] and "EventId" in e[1]
    assert e[2] == {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    assert e[3]["ErrorCode"] == "ResourceNotFoundException"
    assert e[4]["ErrorCode"] == "InvalidArgument" and "DetailType" in e[4]["ErrorMessage"]

    got = receive_all(sqs, sqs.get_queue_url(QueueName="Seen")["QueueUrl"], 2)
    bodies = sorted((json.loads(m["Body"]) for m in got), key=lambda b: b["order"])
    assert bodies == [
        {"order": 1, "kind": "order-created", "rule": "ToQueue"},
        {"order": 2, "kind": "order-created", "rule": "ToQueue"},
    ]
    first = next(m for m in got if json.loads(m["Body"])["order"] == 1)
    # The same trace; its parent is now the rule's delivery span, as each AWS hop's segment is.
    seen = first["Attributes"]["AWSTraceHeader"]
    assert seen.startswith("Root=1-5759e988-bd862e3fe1be46a994272793;Parent="), seen
    assert seen.endswith(";Sampled=1") and "53995c3f42cd8ad8" not in seen

    wait_until("the Lambda target", lambda: calls_of(calls, "Handler"))
    time.sleep(0.5)
    invoked = calls_of(calls, "Handler")
    assert len(invoked) == 1, "only the event over 100 matches"
    ev = invoked[0]["event"]
    assert ev["id"] == e[0]["EventId"]
    assert ev["detail"] == {"id": 1, "total": 250}
    assert ev["source"] == "shop" and ev["detail-type"] == "order-created"
    assert ev["account"] == "123456789012" and ev["region"] == "us-east-1" and ev["version"] == "0"
    assert invoked[0]["trace"].startswith("Root=1-5759e988-bd862e3fe1be46a994272793")

    rules = events.list_rules(EventBusName="orders")["Rules"]
    assert {r["Name"] for r in rules} == {"HandlerBig", "ToQueue"}
    targets = events.list_targets_by_rule(Rule="ToQueue", EventBusName="orders")["Targets"]
    assert targets == [{"Id": "q", "Arn": "arn:aws:sqs:us-east-1:123456789012:Seen"}]


def test_put_events_rejects_more_than_ten_entries(start_nimbus, calls):
    n = start_nimbus(template(calls, BUS), {"src/app.py": APP})
    events = n.client("events")
    entry = {"Source": "s", "DetailType": "d", "Detail": "{}"}
    with pytest.raises(ClientError) as e:
        events.put_events(Entries=[entry] * 11)
    assert e.value.response["Error"]["Code"] == "ValidationException"


MAPPING = """
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          MODE: partial
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Work.Arn
            BatchSize: 5
            MaximumBatchingWindowInSeconds: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
            FilterCriteria:
              Filters:
                - Pattern: '{"body": [{"anything-but": "ignore-me"}]}'
""" + work_queue(visibility=1, max_receive_count=2)


def test_sqs_mapping_deletes_successes_and_sends_reported_failures_to_the_dlq(start_nimbus, calls):
    n = start_nimbus(template(calls, MAPPING), {"src/app.py": APP})
    sqs = n.client("sqs")
    url = sqs.get_queue_url(QueueName="Work")["QueueUrl"]
    bodies = ["ok-1", "ok-2", "fail-3", "ok-4", "ignore-me"]
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": b, "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}
        for i, b in enumerate(bodies)
    ])
    dead = receive_all(sqs, sqs.get_queue_url(QueueName="WorkDlq")["QueueUrl"], 1, timeout=30)
    assert [m["Body"] for m in dead] == ["fail-3"]

    runs = calls_of(calls, "Consumer")
    delivered = [r["body"] for c in runs for r in c["event"]["Records"]]
    assert "ignore-me" not in delivered, "filtered out"
    assert sorted(b for b in delivered if b.startswith("ok")) == ["ok-1", "ok-2", "ok-4"], "successes delivered once"
    assert delivered.count("fail-3") == 2, "failed twice, then redriven (maxReceiveCount 2)"
    first = runs[0]["event"]["Records"][0]
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:Work"
    assert first["awsRegion"] == "us-east-1"
    assert first["messageAttributes"]["k"]["stringValue"] == "v"
    assert first["messageAttributes"]["k"]["dataType"] == "String"
    assert set(first["attributes"]) >= {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"}
    assert first["md5OfBody"] and first["receiptHandle"] and first["messageId"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


CONCURRENCY = """
  Limited:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          MODE: slow
          SLEEP: "0.25"
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Load.Arn
            BatchSize: 1
            ScalingConfig:
              MaximumConcurrency: 3
  Load:
    Type: AWS::SQS::Queue
"""


def test_a_mapping_never_runs_more_batches_at_once_than_its_maximum_concurrency(start_nimbus, calls):
    n = start_nimbus(template(calls, CONCURRENCY), {"src/app.py": APP})
    sqs = n.client("sqs")
    url = sqs.get_queue_url(QueueName="Load")["QueueUrl"]
    for i in range(4):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": f"{i}-{j}"} for j in range(10)])
    runs = wait_until("40 invocations", lambda: (lambda c: c if len(c) >= 40 else None)(calls_of(calls, "Limited")), 60)
    points = sorted([(c["start"], 1) for c in runs] + [(c["end"], -1) for c in runs], key=lambda p: (p[0], p[1]))
    level = peak = 0
    for _, d in points:
        level += d
        peak = max(peak, level)
    assert peak == 3, f"expected the mapping to use exactly its 3 slots at peak, saw {peak}"
    assert sorted(r["body"] for c in runs for r in c["event"]["Records"]) == sorted(f"{i}-{j}" for i in range(4) for j in range(10))


def refused_start_up(tmp_path, text):
    """`nimbus up` on a template it must refuse: the finished process (stderr says why)."""
    import subprocess
    from conftest import NIMBUS
    (tmp_path / "template.yaml").write_text(text)
    out = subprocess.run([str(NIMBUS), "up", str(tmp_path / "template.yaml"), "--aws-port", "0"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    return out


def test_a_rule_targeting_a_missing_queue_stops_start_up_with_the_property_named(tmp_path, calls):
    bad = """
  Rule:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [x]}
      Targets:
        - Id: t
          Arn: arn:aws:sqs:us-east-1:123456789012:missing
  BadPattern:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [{prefix: 5}]}
      Targets: []
"""
    out = refused_start_up(tmp_path, template(calls, bad))
    assert "Resources.Rule.Properties.Targets[0].Arn" in out.stderr
    assert "arn:aws:sqs:us-east-1:123456789012:missing names no resource of this template" in out.stderr
    assert "Resources.BadPattern.Properties.EventPattern" in out.stderr
    assert "nothing was started" in out.stderr


FIFO_TARGET = """
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: orders.fifo
      FifoQueue: true
      ContentBasedDeduplication: true
  ToFifo:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [shop]}
      Targets:
        - Id: fifo
          Arn: !GetAtt Orders.Arn
          InputPath: $.detail
          SqsParameters:
            MessageGroupId: shop-orders
"""


def test_a_fifo_queue_target_gets_the_rule_message_group_in_order(start_nimbus, calls):
    n = start_nimbus(template(calls, FIFO_TARGET), {"src/app.py": APP})
    events, sqs = n.client("events"), n.client("sqs")
    for i in range(6):
        r = events.put_events(Entries=[{"Source": "shop", "DetailType": "order", "Detail": json.dumps({"n": i})}])
        assert r["FailedEntryCount"] == 0
    url = sqs.get_queue_url(QueueName="orders.fifo")["QueueUrl"]
    got = receive_all(sqs, url, 6)
    assert [json.loads(m["Body"])["n"] for m in got] == list(range(6))
    assert {m["Attributes"]["MessageGroupId"] for m in got} == {"shop-orders"}
    # Identical bodies in the deduplication window are one message, as content-based dedup says.
    for _ in range(2):
        events.put_events(Entries=[{"Source": "shop", "DetailType": "order", "Detail": '{"n": 99}'}])
    assert len(receive_all(sqs, url, 1)) == 1
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []


def test_a_fifo_target_without_a_message_group_stops_start_up(tmp_path, calls):
    out = refused_start_up(tmp_path, template(calls, FIFO_TARGET.replace(
        "          SqsParameters:\n            MessageGroupId: shop-orders\n", "")))
    assert "Resources.ToFifo.Properties.Targets[0].SqsParameters.MessageGroupId" in out.stderr
    assert "required: the target is a FIFO queue" in out.stderr


THROTTLED = """
  Single:
    Type: AWS::Serverless::Function
    Properties:
      ReservedConcurrentExecutions: 1
      Environment:
        Variables:
          MODE: slow
          SLEEP: "0.2"
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Work.Arn
            BatchSize: 1
            ScalingConfig:
              MaximumConcurrency: 4
""" + work_queue(visibility=30, max_receive_count=1)


def test_throttled_mapping_batches_go_back_without_burning_receives(start_nimbus, calls):
    # Four pollers, one unit of concurrency: three of every four batches are throttled. With
    # maxReceiveCount 1, a throttle that counted as a receive would send messages to the DLQ; and
    # a throttled message left in flight would wait out the 30 s visibility timeout.
    n = start_nimbus(template(calls, THROTTLED), {"src/app.py": APP})
    sqs = n.client("sqs")
    url = sqs.get_queue_url(QueueName="Work")["QueueUrl"]
    for first in (0, 6):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": f"m{j}"}
                                                      for j in range(first, first + 6)])
    started = time.time()
    runs = wait_until("12 invocations", lambda: (lambda c: c if len(c) >= 12 else None)(calls_of(calls, "Single")), 25)
    assert time.time() - started < 25
    assert sorted(r["body"] for c in runs for r in c["event"]["Records"]) == sorted(f"m{j}" for j in range(12))
    dlq = sqs.get_queue_url(QueueName="WorkDlq")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    receive_counts = [int(r["attributes"]["ApproximateReceiveCount"]) for c in runs for r in c["event"]["Records"]]
    assert receive_counts == [1] * 12
