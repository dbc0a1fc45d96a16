"""The CloudWatch Logs API on nimbus's AWS endpoint: a function's log group read back with the
AWS CLI and boto3 (groups, one stream per execution environment, events paged both ways, filter
patterns), and the errors CloudWatch answers."""

import json
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import botocore.exceptions
import pytest
import requests

from conftest import NIMBUS, aws, poll

APP = '''
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        print("[ERROR] order %s failed" % event["n"])
    else:
        print("[INFO] order %s ok" % event["n"])
    return {"stream": context.log_stream_name, "group": context.log_group_name}
'''

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    Handler: app.handler
    CodeUri: src
    Timeout: 10
Resources:
  Orders:
    Type: AWS::Serverless::Function
  Idle:
    Type: AWS::Serverless::Function
"""

GROUP = "/aws/lambda/Orders"
GROUP_ARN = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/Orders"
STREAM_NAME = re.compile(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}")


def invoke(n, payload):
    out = n.client("lambda").invoke(FunctionName="Orders", Payload=json.dumps(payload).encode())
    return json.loads(out["Payload"].read())


def wait_for_reports(n, count):
    """nimbus's writer thread files lines a moment after the response: wait for `count` REPORTs."""
    rc, out, err = poll(
        lambda: aws(n, "logs", "filter-log-events", "--log-group-name", GROUP, "--filter-pattern", "REPORT"),
        lambda r: r[0] == 0 and len(r[1]["events"]) >= count)
    assert rc == 0, err
    assert len(out["events"]) == count, out


def messages(events):
    return [e["message"] for e in events]


@pytest.fixture
def orders(start_nimbus):
    """nimbus with Orders invoked three times (the second fails to log an error); Idle never runs."""
    n = start_nimbus(TEMPLATE, {"src/app.py": APP})
    answers = [invoke(n, {"n": i, "fail": i == 2}) for i in (1, 2, 3)]
    wait_for_reports(n, 3)
    return n, answers


def test_the_aws_cli_filters_a_functions_log_group(orders):
    n, answers = orders
    # One warm environment served all three: one stream, the name the function was given.
    [stream] = {a["stream"] for a in answers}
    assert STREAM_NAME.fullmatch(stream) and answers[0]["group"] == GROUP

    rc, out, err = aws(n, "logs", "filter-log-events", "--log-group-name", GROUP, "--filter-pattern", "ERROR")
    assert rc == 0, err
    [event] = out["events"]
    # Lambda's messages end with a newline.
    assert event["message"] == "[ERROR] order 2 failed\n"
    assert event["logStreamName"] == stream
    assert isinstance(event["timestamp"], int) and event["ingestionTime"] >= event["timestamp"]
    assert re.fullmatch(r"\d{56}", event["eventId"])
    assert out["searchedLogStreams"] == []

    rc, out, err = aws(n, "logs", "filter-log-events", "--log-group-name", GROUP,
                       "--filter-pattern", '?"order 1" ?"order 3" -ERROR')
    assert rc == 0, err
    assert messages(out["events"]) == ["[INFO] order 1 ok\n", "[INFO] order 3 ok\n"]

    # Idle has not run: like Lambda, it has no log group yet.
    rc, out, err = aws(n, "logs", "describe-log-groups", "--log-group-name-prefix", "/aws/lambda/")
    assert rc == 0, err
    [group] = out["logGroups"]
    assert group["logGroupName"] == GROUP
    assert group["arn"] == GROUP_ARN + ":*" and group["logGroupArn"] == GROUP_ARN
    assert group["storedBytes"] > 0 and group["creationTime"] > 0

    rc, out, err = aws(n, "logs", "describe-log-streams", "--log-group-name", GROUP,
                       "--order-by", "LastEventTime", "--descending")
    assert rc == 0, err
    [s] = out["logStreams"]
    assert s["logStreamName"] == stream
    assert 0 < s["firstEventTimestamp"] <= s["lastEventTimestamp"] <= s["lastIngestionTime"]
    assert s["arn"] == f"{GROUP_ARN}:log-stream:{stream}"

    rc, out, err = aws(n, "logs", "get-log-events", "--log-group-name", GROUP, "--log-stream-name", stream,
                       "--start-from-head")
    assert rc == 0, err
    lines = messages(out["events"])
    assert all(m.endswith("\n") for m in lines)
    assert lines[0].startswith("START RequestId: ") and lines[0].endswith(" Version: $LATEST\n")
    assert [m for m in lines if "order" in m] == [
        "[INFO] order 1 ok\n", "[ERROR] order 2 failed\n", "[INFO] order 3 ok\n"]
    assert sum(m.startswith("REPORT RequestId: ") for m in lines) == 3
    # At the end of the stream the forward token comes back as it went, as on AWS.
    token = out["nextForwardToken"]
    assert token.startswith("f/") and out["nextBackwardToken"].startswith("b/")
    rc, again, err = aws(n, "logs", "get-log-events", "--log-group-name", GROUP, "--log-stream-name", stream,
                         "--next-token", token)
    assert rc == 0, err
    assert again["events"] == [] and again["nextForwardToken"] == token


def test_boto3_pages_events_forward_backward_and_through_the_paginator(orders):
    n, answers = orders
    stream = answers[0]["stream"]
    logs = n.client("logs")
    everything = messages(logs.get_log_events(logGroupName=GROUP, logStreamName=stream,
                                              startFromHead=True)["events"])
    assert len(everything) == 12  # START, the line, END, REPORT, three times

    got, token = [], None
    while True:
        more = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True,
                                   limit=5, **more)
        assert len(page["events"]) <= 5
        got += messages(page["events"])
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert got == everything

    # Without a token: the latest events, oldest first; the backward token reaches the older ones.
    latest = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, limit=4)
    assert messages(latest["events"]) == everything[-4:]
    older = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, limit=4,
                                nextToken=latest["nextBackwardToken"])
    assert messages(older["events"]) == everything[-8:-4]

    pages = list(logs.get_paginator("filter_log_events").paginate(
        logGroupName=GROUP, filterPattern="order", PaginationConfig={"PageSize": 2}))
    assert [len(p["events"]) for p in pages] == [2, 1]
    assert [m for p in pages for m in messages(p["events"])] == [
        "[INFO] order 1 ok\n", "[ERROR] order 2 failed\n", "[INFO] order 3 ok\n"]

    # Newest first, and the group named by its ARN.
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    newest = logs.filter_log_events(logGroupIdentifier=GROUP_ARN, filterPattern="order",
                                    startFromHead=False, startTime=an_hour_ago)
    assert messages(newest["events"]) == [
        "[INFO] order 3 ok\n", "[ERROR] order 2 failed\n", "[INFO] order 1 ok\n"]
    # A time range: FilterLogEvents includes both ends.
    error = logs.filter_log_events(logGroupName=GROUP, filterPattern="ERROR")["events"][0]
    at = logs.filter_log_events(logGroupName=GROUP, filterPattern="order",
                                startTime=error["timestamp"], endTime=error["timestamp"])
    assert "[ERROR] order 2 failed\n" in messages(at["events"])


def test_nimbus_logs_prints_lines_without_their_stream(orders, tmp_path):
    n, answers = orders
    out = subprocess.run([str(NIMBUS), "logs", "Orders", "--template", str(tmp_path / "template.yaml")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert answers[0]["stream"] not in out.stdout
    assert [l.split("\t", 1)[1] for l in out.stdout.splitlines() if "order" in l] == [
        "[INFO] order 1 ok", "[ERROR] order 2 failed", "[INFO] order 3 ok"]


def test_each_execution_environment_writes_its_own_stream(start_nimbus):
    n = start_nimbus(TEMPLATE, {"src/app.py": APP})
    # Two at once: two environments.
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda i: invoke(n, {"n": i, "sleep": 1}), [1, 2]))
    streams = sorted({a["stream"] for a in answers})
    assert len(streams) == 2
    wait_for_reports(n, 2)

    rc, out, err = aws(n, "logs", "describe-log-streams", "--log-group-name", GROUP)
    assert rc == 0, err
    assert [s["logStreamName"] for s in out["logStreams"]] == streams
    for i, a in enumerate(answers, start=1):
        rc, out, err = aws(n, "logs", "filter-log-events", "--log-group-name", GROUP,
                           "--log-stream-names", a["stream"], "--filter-pattern", "order")
        assert rc == 0, err
        assert messages(out["events"]) == [f"[INFO] order {i} ok\n"]
        assert out["events"][0]["logStreamName"] == a["stream"]
        rc, out, err = aws(n, "logs", "describe-log-streams", "--log-group-name", GROUP,
                           "--log-stream-name-prefix", a["stream"])
        assert rc == 0, err
        assert [s["logStreamName"] for s in out["logStreams"]] == [a["stream"]]
    # Two pages of one.
    rc, out, err = aws(n, "logs", "describe-log-streams", "--log-group-name", GROUP, "--limit", "1",
                       "--no-paginate")
    assert rc == 0, err
    assert [s["logStreamName"] for s in out["logStreams"]] == streams[:1] and out["nextToken"]


def test_errors_are_cloudwatchs(orders):
    n, answers = orders
    stream = answers[0]["stream"]

    for group in ["/aws/lambda/Missing", "/aws/lambda/Idle", "Orders"]:
        rc, _, err = aws(n, "logs", "filter-log-events", "--log-group-name", group)
        assert rc != 0
        assert "(ResourceNotFoundException)" in err and "The specified log group does not exist." in err, err
    rc, _, err = aws(n, "logs", "get-log-events", "--log-group-name", GROUP,
                     "--log-stream-name", "2026/01/01/[$LATEST]00000000000000000000000000000001")
    assert rc != 0 and "(ResourceNotFoundException)" in err and "The specified log stream does not exist." in err, err

    rc, _, err = aws(n, "logs", "filter-log-events", "--log-group-name", GROUP, "--filter-pattern", '"unclosed')
    assert rc != 0 and "(InvalidParameterException)" in err and "a quoted phrase is not closed" in err, err
    rc, _, err = aws(n, "logs", "get-log-events", "--log-group-name", GROUP, "--log-stream-name", stream,
                     "--limit", "10001")
    assert rc != 0 and "(InvalidParameterException)" in err, err
    assert ("1 validation error detected: Value '10001' at 'limit' failed to satisfy constraint: "
            "Member must have value less than or equal to 10000") in err
    rc, _, err = aws(n, "logs", "get-log-events", "--log-group-name", GROUP, "--log-stream-name", stream,
                     "--next-token", "f/00000000000000000003/00000000")
    assert rc != 0 and "(InvalidParameterException)" in err and "The specified nextToken is invalid." in err, err
    rc, _, err = aws(n, "logs", "describe-log-streams", "--log-group-name", GROUP, "--order-by", "LastEventTime",
                     "--log-stream-name-prefix", "2026")
    assert rc != 0 and "Cannot order by LastEventTime with a logStreamNamePrefix." in err, err

    logs = n.client("logs")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.filter_log_events(logGroupName=GROUP, logGroupIdentifier=GROUP_ARN)
    assert e.value.response["Error"] == {
        "Code": "InvalidParameterException",
        "Message": "LogGroup name and LogGroup ARN are mutually exclusive parameters."}
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=GROUP, logStreamNames=[stream], logStreamNamePrefix="2026")

    # botocore refuses a limit under 1 itself; nimbus answers a client that sends one anyway.
    r = requests.post(n.endpoint, data=json.dumps({"logGroupName": GROUP, "limit": 0}), timeout=10, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.FilterLogEvents"})
    assert r.status_code == 400
    assert r.json()["__type"] == "InvalidParameterException"
    assert "Member must have value greater than or equal to 1" in r.json()["message"]
    r = requests.post(n.endpoint, data="{}", timeout=10, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.PutLogEvents"})
    assert r.status_code == 400 and r.json()["__type"] == "UnknownOperationException"


EVENTS_TEMPLATE = """
Resources:
  Audit:
    Type: AWS::Logs::LogGroup
    Properties: {LogGroupName: /aws/events/orders}
  ToAudit:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [orders.api]}
      Targets: [{Arn: !GetAtt Audit.Arn, Id: audit}]
"""


def test_a_rules_log_group_target_writes_each_event_to_a_stream_named_by_its_id(start_nimbus):
    n = start_nimbus(EVENTS_TEMPLATE)
    entries = [{"Source": "orders.api", "DetailType": "placed", "Detail": json.dumps({"n": i})} for i in range(3)]
    out = n.client("events").put_events(Entries=entries)
    assert out["FailedEntryCount"] == 0, out
    ids = sorted(e["EventId"] for e in out["Entries"])
    logs = n.client("logs")
    group = "/aws/events/orders"

    streams = poll(lambda: logs.describe_log_streams(logGroupName=group)["logStreams"]
                   if any(g["logGroupName"] == group for g in logs.describe_log_groups(logGroupNamePrefix="/aws/events/")["logGroups"]) else [],
                   lambda s: len(s) == 3)
    assert sorted(s["logStreamName"] for s in streams) == ids
    events = logs.get_log_events(logGroupName=group, logStreamName=ids[0], startFromHead=True)["events"]
    assert len(events) == 1
    event = json.loads(events[0]["message"])
    assert event["id"] == ids[0] and event["source"] == "orders.api" and event["detail-type"] == "placed"

    found = logs.filter_log_events(logGroupName=group, filterPattern=f'"{ids[1]}"')["events"]
    assert [(e["logStreamName"], json.loads(e["message"])["id"]) for e in found] == [(ids[1], ids[1])]

    # A group nothing wrote to does not exist, in CloudWatch's words.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.describe_log_streams(logGroupName="/aws/events/nothing")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
