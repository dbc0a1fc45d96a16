"""boto3, unmodified, as the Lambda Invoke API client."""

import base64
import json

import pytest
from botocore.exceptions import ClientError

from conftest import TESTFN

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: bootstrap
      Runtime: provided.al2023
      Timeout: 2
  Off:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Runtime: provided.al2023
      ReservedConcurrentExecutions: 0
"""


@pytest.fixture
def nimbus(start_nimbus):
    return start_nimbus(TEMPLATE, {"fn/bootstrap": TESTFN})


def test_boto3_invoke_returns_the_payload_and_lambda_headers(nimbus):
    client = nimbus.lambda_client()
    resp = client.invoke(
        FunctionName="Echo",
        Payload=json.dumps({"action": "echo", "n": 42}),
        LogType="Tail",
        ClientContext=base64.b64encode(json.dumps({"custom": {"a": "b"}}).encode()).decode(),
    )
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in resp
    body = json.loads(resp["Payload"].read())
    assert body["event"]["n"] == 42
    assert body["client_context"]["custom"] == {"a": "b"}
    log = base64.b64decode(resp["LogResult"]).decode()
    assert log.startswith("START RequestId: %s Version: $LATEST" % body["request_id"])
    assert "REPORT RequestId: %s" % body["request_id"] in log


def test_boto3_sees_function_errors_and_timeouts(nimbus):
    client = nimbus.lambda_client()
    resp = client.invoke(FunctionName="Echo", Payload=b'{"action":"error"}')
    assert resp["FunctionError"] == "Unhandled"
    assert json.loads(resp["Payload"].read())["errorMessage"] == "something went wrong"
    resp = client.invoke(FunctionName="Echo", Payload=b'{"action":"sleep","ms":5000}')
    assert resp["FunctionError"] == "Unhandled"
    body = json.loads(resp["Payload"].read())
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 2.00 seconds")


def test_boto3_gets_typed_exceptions(nimbus):
    client = nimbus.lambda_client()
    with pytest.raises(client.exceptions.ResourceNotFoundException) as e:
        client.invoke(FunctionName="Missing", Payload=b"{}")
    assert "Function not found: arn:aws:lambda:us-east-1:123456789012:function:Missing" in str(e.value)
    with pytest.raises(client.exceptions.TooManyRequestsException) as e:
        client.invoke(FunctionName="Off", Payload=b"{}")
    assert e.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName="Echo", Payload=b"{nope")
    with pytest.raises(ClientError) as e:
        client.invoke(FunctionName="Echo", Payload=b"x" * (6 * 1024 * 1024 + 10))
    assert e.value.response["Error"]["Code"] == "RequestTooLargeException"


def test_boto3_event_and_dry_run_invocations(nimbus):
    client = nimbus.lambda_client()
    assert client.invoke(FunctionName="Echo", InvocationType="DryRun")["StatusCode"] == 204
    resp = client.invoke(FunctionName="Echo", InvocationType="Event",
                         Payload=json.dumps({"action": "print", "lines": ["from-boto3-event"]}))
    assert resp["StatusCode"] == 202
    nimbus.wait_for("Echo | from-boto3-event")


def test_boto3_list_and_get_function(nimbus):
    client = nimbus.lambda_client()
    names = sorted(f["FunctionName"] for f in client.list_functions()["Functions"])
    assert names == ["Echo", "Off"]
    fn = client.get_function(FunctionName="Off")
    assert fn["Configuration"]["FunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:Off"
    assert fn["Concurrency"]["ReservedConcurrentExecutions"] == 0
    conf = client.get_function_configuration(FunctionName="Echo")
    assert conf["Timeout"] == 2 and conf["MemorySize"] == 128
