"""Python handlers through nimbus's own runtime loop and through AWS's awslambdaric."""

import json
import sys

import pytest

APP = '''
import os, time

def handler(event, context):
    action = event.get("action", "echo")
    if action == "fail":
        raise ValueError("bad input: %s" % event.get("why"))
    if action == "sleep":
        time.sleep(event["s"])
    if action == "unserialisable":
        return {"when": object()}
    if action == "decimal":
        import decimal
        return {"pi": decimal.Decimal("3.14159"), "n": decimal.Decimal("42")}
    print("handled", context.aws_request_id)
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "log_group": context.log_group_name,
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "custom": os.environ.get("CUSTOM"),
        "execution_env": os.environ.get("AWS_EXECUTION_ENV"),
    }
'''

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    Timeout: 3
    MemorySize: 512
Resources:
  Py:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src
      Handler: app.handler
      Environment:
        Variables:
          CUSTOM: yes-really
  NoModule:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src
      Handler: missing.handler
  NoHandler:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src
      Handler: app.nope
  Inline:
    Type: AWS::Serverless::Function
    Properties:
      Handler: index.handler
      InlineCode: |
        def handler(event, context):
            return {"inline": True, "got": event}
"""

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.fixture(params=["builtin", "awslambdaric"])
def nimbus(request, start_nimbus):
    return start_nimbus(
        TEMPLATE,
        {"src/app.py": APP},
        args=("--python-runtime", request.param, "--python", sys.executable),
    )


def invoke(nimbus, name, payload):
    resp = nimbus.lambda_client().invoke(FunctionName=name, Payload=json.dumps(payload))
    return resp, json.loads(resp["Payload"].read())


def test_handler_gets_the_event_and_a_lambda_context(nimbus):
    resp, body = invoke(nimbus, "Py", {"action": "echo", "k": [1, 2]})
    assert "FunctionError" not in resp, body
    assert body["event"] == {"action": "echo", "k": [1, 2]}
    assert body["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:Py"
    assert body["function_name"] == "Py"
    assert str(body["memory"]) == "512"
    assert 0 < body["remaining_ms"] <= 3000
    assert body["log_group"] == "/aws/lambda/Py"
    assert body["custom"] == "yes-really"
    assert body["execution_env"] == "AWS_Lambda_python3.12"
    assert body["trace"].startswith("Root=1-")
    nimbus.wait_for("Py | handled %s" % body["request_id"])


def test_handler_exception_is_an_unhandled_function_error(nimbus):
    resp, body = invoke(nimbus, "Py", {"action": "fail", "why": "no city"})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "bad input: no city"
    assert isinstance(body["stackTrace"], list)


def test_unserialisable_result_is_a_marshal_error(nimbus):
    resp, body = invoke(nimbus, "Py", {"action": "unserialisable"})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.MarshalError"


def test_decimals_serialise_as_numbers_as_on_aws(nimbus):
    resp, body = invoke(nimbus, "Py", {"action": "decimal"})
    assert "FunctionError" not in resp, body
    assert body == {"pi": 3.14159, "n": 42}


def test_timeout_kills_the_python_environment(nimbus):
    resp, body = invoke(nimbus, "Py", {"action": "sleep", "s": 10})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    resp, body = invoke(nimbus, "Py", {})
    assert "FunctionError" not in resp


def test_missing_module_and_missing_handler_are_init_errors(nimbus):
    resp, body = invoke(nimbus, "NoModule", {})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "missing" in body["errorMessage"]
    resp, body = invoke(nimbus, "NoHandler", {})
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.HandlerNotFound"
    # The other functions keep serving.
    resp, body = invoke(nimbus, "Py", {})
    assert "FunctionError" not in resp


def test_inline_code_runs(nimbus):
    resp, body = invoke(nimbus, "Inline", {"a": 1})
    assert body == {"inline": True, "got": {"a": 1}}
