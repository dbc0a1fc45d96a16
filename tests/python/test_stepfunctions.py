"""Step Functions against nimbus with boto3: a SAM state machine of Python Lambda tasks with
Retry, Catch, Choice, Map, Parallel and Wait; its history; Express StartSyncExecution; service
integrations (SQS, DynamoDB); the API's errors in Step Functions' shapes; and a Standard
execution that survives kill -9 during a Wait without a repeated history event."""

import json
import time

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import poll, wait_until

ROLE = "arn:aws:iam::123456789012:role/states"

APP = '''
import json, os
class FlakyError(Exception):
    pass
class BrokenError(Exception):
    pass
def double(event, context):
    return {"name": event["name"], "items": event["items"], "total": 2 * sum(event["items"])}
def flaky(event, context):
    p = os.path.join(os.environ["COUNTS"], event["key"])
    n = int(open(p).read()) + 1 if os.path.exists(p) else 1
    with open(p, "w") as f:
        f.write(str(n))
    if n < 3:
        raise FlakyError("attempt %d fails" % n)
    return {"attempts": n}
def broken(event, context):
    raise BrokenError("always broken")
def square(event, context):
    return event * event
'''


def definition(states, start):
    return json.dumps({"StartAt": start, "States": states})


FLOW = {
    "Compute": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "${Double}", "Payload.$": "$"},
                "OutputPath": "$.Payload", "Next": "IsBig"},
    "IsBig": {"Type": "Choice", "Choices": [{"Variable": "$.total", "NumericGreaterThan": 10, "Next": "Both"}],
              "Default": "TooSmall"},
    "TooSmall": {"Type": "Fail", "Error": "TooSmall", "CausePath": "States.Format('total {}', $.total)"},
    "Both": {"Type": "Parallel", "ResultPath": "$.both", "Next": "Pause", "Branches": [
        {"StartAt": "Squares", "States": {"Squares": {
            "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "End": True,
            "ItemProcessor": {"StartAt": "Square", "States": {"Square": {
                "Type": "Task", "Resource": "${SquareArn}", "End": True}}}}}},
        {"StartAt": "Count", "States": {"Count": {
            "Type": "Pass", "Parameters": {"n.$": "States.ArrayLength($.items)"}, "End": True}}},
    ]},
    "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Summarize"},
    "Summarize": {"Type": "Pass", "Parameters": {
        "message.$": "States.Format('total {} for {}', $.total, $.name)",
        "squares.$": "$.both[0]", "count.$": "$.both[1].n", "execution.$": "$$.Execution.Name"},
        "End": True},
}

RETRY = {
    "TryIt": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Parameters": {"FunctionName": "${Flaky}", "Payload.$": "$"},
              "ResultSelector": {"attempts.$": "$.Payload.attempts"},
              "Retry": [{"ErrorEquals": ["FlakyError"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1.0}],
              "Next": "Broken"},
    "Broken": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
               "Parameters": {"FunctionName": "${Broken}", "Payload": {}},
               "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handled"}],
               "ResultPath": "$.never", "End": True},
    "Handled": {"Type": "Pass", "End": True},
}

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    CodeUri: src
    Timeout: 10
Resources:
  Double: {Type: AWS::Serverless::Function, Properties: {Handler: app.double}}
  Square: {Type: AWS::Serverless::Function, Properties: {Handler: app.square}}
  Flaky:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.flaky
      Environment: {Variables: {COUNTS: %(counts)s}}
  Broken: {Type: AWS::Serverless::Function, Properties: {Handler: app.broken}}
  Flow:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: flow
      Tracing: {Enabled: true}
      Definition: %(flow)s
      DefinitionSubstitutions:
        Double: !Ref Double
        SquareArn: !GetAtt Square.Arn
      Policies:
        - LambdaInvokePolicy: {FunctionName: !Ref Double}
  Retrying:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      StateMachineName: retrying
      RoleArn: arn:aws:iam::123456789012:role/r
      DefinitionString: '%(retry)s'
      DefinitionSubstitutions:
        Flaky: !GetAtt Flaky.Arn
        Broken: !Ref Broken
  Quick:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: quick
      Type: EXPRESS
      Definition:
        StartAt: Greet
        States:
          Greet:
            Type: Pass
            Parameters: {"greeting.$": "States.Format('hello {}', $.name)"}
            End: true
"""


def template(tmp_path):
    counts = tmp_path / "counts"
    counts.mkdir(exist_ok=True)
    return TEMPLATE % {"counts": counts, "flow": json.dumps({"StartAt": "Compute", "States": FLOW}),
                       "retry": json.dumps({"StartAt": "TryIt", "States": RETRY})}


def finish(sfn, arn, timeout=30):
    out = {}

    def done():
        out.update(sfn.describe_execution(executionArn=arn))
        return out["status"] != "RUNNING"

    wait_until(f"execution {arn} ends", done, timeout)
    return out


def history(sfn, arn):
    events, kwargs = [], {}
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=20, **kwargs)
        events += page["events"]
        if "nextToken" not in page:
            return events
        kwargs = {"nextToken": page["nextToken"]}


def killed_and_restarted(start_nimbus, n, template):
    """`kill -9` of nimbus `n`, then a nimbus on the same state with `template`, once its
    Standard executions have been picked up again."""
    n.proc.kill()
    n.proc.wait()
    again = start_nimbus(template)
    again.wait_for("execution(s) continue where they were", timeout=30)
    return again


def machine(sfn, name):
    return next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == name)


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_a_sam_state_machine_runs_lambda_tasks_through_choice_parallel_map_and_wait(start_nimbus, tmp_path):
    n = start_nimbus(template(tmp_path), {"src/app.py": APP})
    sfn = n.client("stepfunctions")
    arn = machine(sfn, "flow")
    assert arn == "arn:aws:states:us-east-1:123456789012:stateMachine:flow"
    ex = sfn.start_execution(stateMachineArn=arn, name="first", input=json.dumps({"name": "acc", "items": [1, 2, 3]}))
    d = finish(sfn, ex["executionArn"])
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == {"message": "total 12 for acc", "squares": [1, 4, 9], "count": 3,
                                       "execution": "first"}

    events = history(sfn, ex["executionArn"])
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    types = [e["type"] for e in events]
    assert types[:6] == ["ExecutionStarted", "TaskStateEntered", "TaskScheduled", "TaskStarted",
                         "TaskSucceeded", "TaskStateExited"]
    assert types[-1] == "ExecutionSucceeded"
    assert types.count("LambdaFunctionScheduled") == 3 and types.count("MapIterationSucceeded") == 3
    scheduled = events[2]["taskScheduledEventDetails"]
    assert (scheduled["resourceType"], scheduled["resource"]) == ("lambda", "invoke")
    assert json.loads(scheduled["parameters"])["FunctionName"] == "Double"
    assert events[1]["previousEventId"] == 0 and events[2]["previousEventId"] == 2
    newest = sfn.get_execution_history(executionArn=ex["executionArn"], reverseOrder=True, maxResults=1)
    assert newest["events"][0]["type"] == "ExecutionSucceeded"

    small = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"name": "s", "items": [1]}))
    d = finish(sfn, small["executionArn"])
    assert (d["status"], d["error"], d["cause"]) == ("FAILED", "TooSmall", "total 2")

    listed = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [e["status"] for e in listed] == ["FAILED", "SUCCEEDED"], "newest first"
    assert sfn.list_executions(stateMachineArn=arn, statusFilter="SUCCEEDED")["executions"][0]["name"] == "first"

    import urllib.request
    metrics = urllib.request.urlopen(n.endpoint + "/metrics", timeout=10).read().decode()
    for line in ['states_executions_started_total{state_machine="flow",status="STANDARD"} 2',
                 'states_executions_ended_total{state_machine="flow",status="SUCCEEDED"} 1',
                 'states_executions_ended_total{state_machine="flow",status="FAILED"} 1',
                 'states_execution_duration_seconds_count{state_machine="flow"} 2']:
        assert line in metrics, line
    transitions = [l for l in metrics.splitlines() if 'states_transitions_total{state_machine="flow"}' in l]
    assert transitions and int(float(transitions[0].split()[-1])) >= 12, transitions

    # The execution is a trace: a span per state, the Lambda invocations inside them.
    traces = json.loads(urllib.request.urlopen(n.endpoint + "/_nimbus/api/traces?limit=50", timeout=10).read())
    first_trace = next(t for t in traces["traces"] if t["name"] == "first")
    spans = json.loads(urllib.request.urlopen(
        n.endpoint + "/_nimbus/api/traces/" + first_trace["trace_id"], timeout=10).read())["spans"]
    by_id = {s["id"]: s for s in spans}
    kinds = [s["kind"] for s in spans]
    assert kinds[0] == "state-machine" and kinds.count("state") >= 6, kinds
    invokes = [s for s in spans if s["kind"] == "invoke"]
    assert {s["name"] for s in invokes} >= {"Double", "Square"}, invokes
    compute = next(s for s in invokes if s["name"] == "Double")
    assert by_id[compute["parent_id"]]["name"] == "Compute", "the invocation is inside its Task state's span"


def test_retry_until_the_function_succeeds_and_catch_with_a_result_path(start_nimbus, tmp_path):
    n = start_nimbus(template(tmp_path), {"src/app.py": APP})
    sfn = n.client("stepfunctions")
    ex = sfn.start_execution(stateMachineArn=machine(sfn, "retrying"), input=json.dumps({"key": "k1"}))
    d = finish(sfn, ex["executionArn"])
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    assert out["attempts"] == 3
    assert out["error"]["Error"] == "BrokenError"
    cause = json.loads(out["error"]["Cause"])
    assert cause["errorMessage"] == "always broken" and cause["errorType"] == "BrokenError"
    types = [e["type"] for e in history(sfn, ex["executionArn"])]
    assert types.count("TaskScheduled") == 4 and types.count("TaskFailed") == 3


def test_express_start_sync_execution_answers_with_the_output(start_nimbus, tmp_path):
    n = start_nimbus(template(tmp_path), {"src/app.py": APP})
    import boto3
    sync = boto3.client("stepfunctions", endpoint_url=n.endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
    arn = machine(sync, "quick")
    r = sync.start_sync_execution(stateMachineArn=arn, input=json.dumps({"name": "sync"}))
    assert r["status"] == "SUCCEEDED" and json.loads(r["output"]) == {"greeting": "hello sync"}
    assert r["executionArn"].startswith("arn:aws:states:us-east-1:123456789012:express:quick:")
    assert r["billingDetails"]["billedDurationInMilliseconds"] % 100 == 0
    with pytest.raises(ClientError) as e:
        sync.describe_execution(executionArn=r["executionArn"])
    assert code(e) == "InvalidArn"
    with pytest.raises(ClientError) as e:
        sync.start_sync_execution(stateMachineArn=machine(sync, "flow"), input="{}")
    assert code(e) == "StateMachineTypeNotSupported"


SERVICES = """
Resources:
  Jobs: {Type: AWS::SQS::Queue, Properties: {QueueName: jobs}}
  Items:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: items
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
"""


def test_tasks_call_sqs_and_dynamodb_and_their_errors_reach_catch(start_nimbus):
    n = start_nimbus(SERVICES)
    sfn, sqs = n.client("stepfunctions"), n.client("sqs")
    url = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    states = {
        "Put": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                "Parameters": {"TableName": "items", "Item": {"id": {"S.$": "$.id"}},
                               "ConditionExpression": "attribute_not_exists(id)"},
                "ResultPath": None, "Next": "Get",
                "Catch": [{"ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"], "ResultPath": "$.dup",
                           "Next": "Get"}]},
        "Get": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:getItem",
                "Parameters": {"TableName": "items", "Key": {"id": {"S.$": "$.id"}}},
                "ResultSelector": {"found.$": "$.Item.id.S"}, "ResultPath": "$.get", "Next": "Send"},
        "Send": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
                 "Parameters": {"QueueUrl": url, "MessageBody.$": "$"}, "ResultPath": None, "End": True},
    }
    arn = sfn.create_state_machine(name="services", definition=definition(states, "Put"), roleArn=ROLE)["stateMachineArn"]
    first = finish(sfn, sfn.start_execution(stateMachineArn=arn, input='{"id": "a"}')["executionArn"])
    assert first["status"] == "SUCCEEDED", first
    assert json.loads(first["output"]) == {"id": "a", "get": {"found": "a"}}
    second = finish(sfn, sfn.start_execution(stateMachineArn=arn, input='{"id": "a"}')["executionArn"])
    assert json.loads(second["output"])["dup"]["Error"] == "DynamoDB.ConditionalCheckFailedException"
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                                    WaitTimeSeconds=1).get("Messages", [])]
    assert {"id": "a", "get": {"found": "a"}} in bodies


def test_wait_for_task_token_is_completed_from_outside(start_nimbus):
    n = start_nimbus(SERVICES)
    sfn, sqs = n.client("stepfunctions"), n.client("sqs")
    url = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    states = {
        "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": url, "MessageBody": {"token.$": "$$.Task.Token", "order.$": "$.order"}},
                "HeartbeatSeconds": 30, "ResultPath": "$.answer", "Next": "Done",
                "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.rejected", "Next": "Done"}]},
        "Done": {"Type": "Succeed"},
    }
    arn = sfn.create_state_machine(name="approval", definition=definition(states, "Ask"), roleArn=ROLE)["stateMachineArn"]

    def token_of(order):
        found = {}

        def arrived():
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                body = json.loads(m["Body"])
                found[body["order"]] = body["token"]
            return order in found

        wait_until(f"the task token of {order}", arrived, 15)
        return found[order]

    ok = sfn.start_execution(stateMachineArn=arn, input='{"order": "o1"}')["executionArn"]
    token = token_of("o1")
    sfn.send_task_heartbeat(taskToken=token)
    assert sfn.describe_execution(executionArn=ok)["status"] == "RUNNING", "it waits for the token"
    sfn.send_task_success(taskToken=token, output='{"approved": true}')
    assert "TaskSucceeded" in [e["type"] for e in history(sfn, ok)], \
        "SendTaskSuccess answers once the task has recorded the answer (it survives kill -9)"
    d = finish(sfn, ok)
    assert json.loads(d["output"]) == {"order": "o1", "answer": {"approved": True}}
    assert "TaskSubmitted" in [e["type"] for e in history(sfn, ok)]
    for call, kwargs, error in [
        (sfn.send_task_success, {"taskToken": token, "output": "{}"}, "TaskTimedOut"),
        (sfn.send_task_success, {"taskToken": "made-up", "output": "{}"}, "InvalidToken"),
    ]:
        with pytest.raises(ClientError) as e:
            call(**kwargs)
        assert code(e) == error

    no = sfn.start_execution(stateMachineArn=arn, input='{"order": "o2"}')["executionArn"]
    sfn.send_task_failure(taskToken=token_of("o2"), error="Rejected", cause="out of stock")
    d = finish(sfn, no)
    assert json.loads(d["output"])["rejected"] == {"Error": "Rejected", "Cause": "out of stock"}


def test_the_api_answers_with_step_functions_errors(start_nimbus):
    n = start_nimbus(SERVICES)
    sfn = n.client("stepfunctions")
    good = definition({"Pick": {"Type": "Choice", "Choices": [
        {"Variable": "$.x", "NumericEquals": 1, "Next": "One"}]}, "One": {"Type": "Succeed"}}, "Pick")
    arn = sfn.create_state_machine(name="pick", definition=good, roleArn=ROLE)["stateMachineArn"]
    assert sfn.create_state_machine(name="pick", definition=good, roleArn=ROLE)["stateMachineArn"] == arn, \
        "creating the same machine again is idempotent"
    described = sfn.describe_state_machine(stateMachineArn=arn)
    assert (described["status"], described["type"], described["definition"]) == ("ACTIVE", "STANDARD", good)

    lost = definition({"First": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "Lost"}],
                                 "Default": "Done"}, "Lost": {"Type": "Pass"}, "Done": {"Type": "Succeed"}}, "First")
    dangling = definition({"A": {"Type": "Pass", "Next": "Nowhere"}}, "A")
    cases = [
        (sfn.create_state_machine, {"name": "lost", "definition": lost, "roleArn": ROLE}, "InvalidDefinition", "/States/Lost"),
        (sfn.create_state_machine, {"name": "d", "definition": dangling, "roleArn": ROLE}, "InvalidDefinition",
         "MISSING_TRANSITION_TARGET: Missing 'Next' target: Nowhere at /States/A/Next"),
        (sfn.create_state_machine, {"name": "pick", "definition": dangling.replace("Nowhere", "A"), "roleArn": ROLE},
         "InvalidDefinition", "MISSING_END_STATE"),
        (sfn.create_state_machine, {"name": "bad name", "definition": good, "roleArn": ROLE}, "InvalidName", "bad name"),
        (sfn.create_state_machine, {"name": "pick", "definition": good.replace("1", "2"), "roleArn": ROLE},
         "StateMachineAlreadyExists", arn),
        (sfn.describe_state_machine, {"stateMachineArn": arn + "x"}, "StateMachineDoesNotExist", arn + "x"),
        (sfn.describe_state_machine, {"stateMachineArn": "nope"}, "InvalidArn", "nope"),
        (sfn.start_execution, {"stateMachineArn": arn, "input": "{not json"}, "InvalidExecutionInput", "Invalid State Machine Execution Input"),
        (sfn.describe_execution, {"executionArn": arn.replace("stateMachine", "execution") + ":none"},
         "ExecutionDoesNotExist", "Execution Does Not Exist"),
        (sfn.list_executions, {"stateMachineArn": arn, "statusFilter": "succeeded"}, "ValidationException", "statusFilter"),
    ]
    for call, kwargs, error, text in cases:
        with pytest.raises(ClientError) as e:
            call(**kwargs)
        assert code(e) == error, (kwargs, e.value.response)
        assert text in e.value.response["Error"]["Message"], e.value.response

    v = sfn.validate_state_machine_definition(definition=lost)
    assert v["result"] == "FAIL" and v["diagnostics"][0]["location"] == "/States/Lost"
    assert sfn.validate_state_machine_definition(definition=good)["result"] == "OK"

    ex = sfn.start_execution(stateMachineArn=arn, name="two", input='{"x": 2}')
    d = finish(sfn, ex["executionArn"])
    assert (d["status"], d["error"]) == ("FAILED", "States.NoChoiceMatched")
    # No error name is special: one that looks like nimbus's own is just the execution's error.
    odd = sfn.create_state_machine(name="odd", roleArn=ROLE, definition=definition(
        {"F": {"Type": "Fail", "Error": "nimbus.Suspended", "Cause": "user"}}, "F"))["stateMachineArn"]
    d = finish(sfn, sfn.start_execution(stateMachineArn=odd)["executionArn"])
    assert (d["status"], d["error"]) == ("FAILED", "nimbus.Suspended")
    with pytest.raises(ClientError) as e:
        sfn.start_execution(stateMachineArn=arn, name="two", input='{"x": 2}')
    assert code(e) == "ExecutionAlreadyExists"

    waiting = sfn.create_state_machine(name="waits", roleArn=ROLE, definition=definition(
        {"Hold": {"Type": "Wait", "Seconds": 600, "End": True}}, "Hold"))["stateMachineArn"]
    held = sfn.start_execution(stateMachineArn=waiting, name="held", input='{"a": 1}')["executionArn"]
    assert sfn.start_execution(stateMachineArn=waiting, name="held", input='{"a": 1}')["executionArn"] == held, \
        "starting a running execution again with the same input answers it"
    with pytest.raises(ClientError) as e:
        sfn.start_execution(stateMachineArn=waiting, name="held", input='{"a": 2}')
    assert code(e) == "ExecutionAlreadyExists"
    sfn.stop_execution(executionArn=held, error="Operator", cause="enough")
    d = sfn.describe_execution(executionArn=held)
    assert (d["status"], d["error"], d["cause"]) == ("ABORTED", "Operator", "enough")
    assert history(sfn, held)[-1]["type"] == "ExecutionAborted"

    sfn.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "a"}])
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "team", "value": "a"}]
    sfn.delete_state_machine(stateMachineArn=arn)
    sfn.delete_state_machine(stateMachineArn=arn)
    assert "pick" not in [m["name"] for m in sfn.list_state_machines()["stateMachines"]]


WAITING = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Waiting:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: waiting
      Definition:
        StartAt: First
        States:
          First: {Type: Pass, Result: {step: 1}, ResultPath: $.first, Next: Hold}
          Hold: {Type: Wait, Seconds: 4, Next: After}
          After: {Type: Pass, Parameters: {"waited.$": "$.first.step"}, End: true}
  Remembers:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: remembers
      Definition:
        QueryLanguage: JSONata
        StartAt: First
        States:
          First: {Type: Pass, Assign: {step: "{% $states.input.step %}"}, Output: {}, Next: Hold}
          Hold: {Type: Wait, Seconds: 4, Next: After}
          After: {Type: Pass, Output: {waited: "{% $step %}"}, End: true}
"""


def test_a_standard_execution_survives_kill_9_during_a_wait(start_nimbus):
    n = start_nimbus(WAITING)
    sfn = n.client("stepfunctions")
    started = time.time()
    ex = sfn.start_execution(stateMachineArn=machine(sfn, "waiting"), input="{}")["executionArn"]
    remembers = sfn.start_execution(stateMachineArn=machine(sfn, "remembers"), input='{"step": 7}')["executionArn"]
    wait_until("the Wait state entered", lambda: any(
        e["type"] == "WaitStateEntered" for e in sfn.get_execution_history(executionArn=ex)["events"]), 10)
    again = killed_and_restarted(start_nimbus, n, WAITING)
    sfn = again.client("stepfunctions")
    d = finish(sfn, ex, timeout=30)
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == {"waited": 1}
    assert time.time() - started >= 4, "the wait is not cut short by the restart"
    events = history(sfn, ex)
    types = [e["type"] for e in events]
    assert types == ["ExecutionStarted", "PassStateEntered", "PassStateExited", "WaitStateEntered",
                     "WaitStateExited", "PassStateEntered", "PassStateExited", "ExecutionSucceeded"], types
    assert [e["id"] for e in events] == list(range(1, 9))
    d = finish(sfn, remembers, timeout=30)
    assert json.loads(d["output"]) == {"waited": 7}, "a variable assigned before the kill is there after it"


RULES = """
Transform: AWS::Serverless-2016-10-31
Resources:
  OnOrder:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: on-order
      Definition:
        StartAt: Keep
        States:
          Keep: {Type: Pass, Parameters: {"order.$": "$.detail.id", "via": "sam"}, End: true}
      Events:
        Placed:
          Type: EventBridgeRule
          Properties:
            Pattern: {source: [shop], detail-type: [OrderPlaced]}
  Audit:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      StateMachineName: audit
      RoleArn: arn:aws:iam::123456789012:role/r
      Definition:
        StartAt: Keep
        States:
          Keep: {Type: Pass, End: true}
  AuditRule:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [shop]}
      Targets:
        - Id: audit
          Arn: !Ref Audit
          RoleArn: arn:aws:iam::123456789012:role/r
          InputPath: $.detail
"""


def test_eventbridge_rules_start_state_machines(start_nimbus):
    n = start_nimbus(RULES)
    sfn, events = n.client("stepfunctions"), n.client("events")
    r = events.put_events(Entries=[{"Source": "shop", "DetailType": "OrderPlaced", "Detail": '{"id": "o-7"}'}])
    assert r["FailedEntryCount"] == 0

    def ended(name):
        arn = machine(sfn, name)

        def done():
            runs = sfn.list_executions(stateMachineArn=arn)["executions"]
            return runs and runs[0]["status"] == "SUCCEEDED" and runs
        wait_until(f"an execution of {name}", done, 15)
        return sfn.describe_execution(executionArn=sfn.list_executions(stateMachineArn=arn)["executions"][0]["executionArn"])

    assert json.loads(ended("on-order")["output"]) == {"order": "o-7", "via": "sam"}
    assert json.loads(ended("audit")["output"]) == {"id": "o-7"}


JSONATA = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Runtime: python3.12, CodeUri: src, Timeout: 10}
Resources:
  Double: {Type: AWS::Serverless::Function, Properties: {Handler: app.double}}
  Broken: {Type: AWS::Serverless::Function, Properties: {Handler: app.broken}}
  Priced:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: priced
      Definition:
        QueryLanguage: JSONata
        StartAt: Total
        States:
          Total:
            Type: Task
            Resource: arn:aws:states:::lambda:invoke
            Arguments:
              FunctionName: !Ref Double
              Payload: {name: "{% $states.input.customer %}", items: "{% $states.input.lines.qty[] %}"}
            Assign: {customer: "{% $states.input.customer %}", lines: "{% $states.input.lines %}"}
            Output: "{% $states.result.Payload.total %}"
            Next: Big
          Big:
            Type: Choice
            Choices:
              - Condition: "{% $states.input > 10 %}"
                Next: Each
                Assign: {size: big}
            Default: Each
            Assign: {size: small}
          Each:
            Type: Map
            Items: "{% $lines %}"
            ItemSelector: {sku: "{% $states.context.Map.Item.Value.sku %}", at: "{% $states.context.Map.Item.Index %}"}
            ItemProcessor:
              StartAt: Label
              States:
                Label:
                  Type: Pass
                  Output: "{% $uppercase($states.input.sku) & '#' & $string($states.input.at) %}"
                  End: true
            Output: {labels: "{% $states.result %}", size: "{% $size %}", who: "{% $customer %}"}
            Next: Hold
          Hold:
            Type: Wait
            Seconds: "{% 1 %}"
            Next: Risky
          Risky:
            Type: Task
            Resource: arn:aws:states:::lambda:invoke
            Arguments: {FunctionName: !Ref Broken, Payload: {}}
            Catch:
              - ErrorEquals: [States.ALL]
                Output: "{% $merge([$states.input, {'error': $states.errorOutput.Error}]) %}"
                Next: Done
            End: true
          Done:
            Type: Succeed
"""


def test_jsonata_arguments_output_assign_choice_map_and_catch(start_nimbus):
    n = start_nimbus(JSONATA, {"src/app.py": APP})
    sfn = n.client("stepfunctions")
    arn = machine(sfn, "priced")
    lines = [{"sku": "ab", "qty": 2}, {"sku": "cd", "qty": 5}]
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"customer": "ann", "lines": lines}))
    d = finish(sfn, ex["executionArn"])
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == {"labels": ["AB#0", "CD#1"], "size": "big", "who": "ann",
                                       "error": "BrokenError"}
    small = finish(sfn, sfn.start_execution(stateMachineArn=arn, input=json.dumps(
        {"customer": "bo", "lines": [{"sku": "x", "qty": 1}]}))["executionArn"])
    assert json.loads(small["output"])["size"] == "small"
    with pytest.raises(ClientError) as e:
        sfn.create_state_machine(name="bad-jsonata", roleArn=ROLE, definition=json.dumps({
            "QueryLanguage": "JSONata", "StartAt": "A",
            "States": {"A": {"Type": "Pass", "Output": "{% $states.input + %}", "End": True}}}))
    assert code(e) == "InvalidDefinition" and "/States/A/Output" in e.value.response["Error"]["Message"]


APIS = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: orders
      Definition:
        StartAt: Keep
        States:
          Keep: {Type: Pass, End: true}
      Events:
        Post:
          Type: Api
          Properties: {Path: /orders, Method: post}
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      DefinitionBody:
        openapi: "3.0.1"
        info: {title: http, version: "1"}
        paths:
          /start:
            post:
              x-amazon-apigateway-integration:
                type: aws_proxy
                integrationSubtype: StepFunctions-StartExecution
                payloadFormatVersion: "1.0"
                credentials: arn:aws:iam::123456789012:role/api
                requestParameters:
                  StateMachineArn: !Ref Orders
                  Input: $request.body
"""


def test_an_api_event_and_an_http_api_integration_start_executions(start_nimbus):
    import urllib.request
    n = start_nimbus(APIS)
    sfn = n.client("stepfunctions")
    arn = machine(sfn, "orders")

    def post(url, body):
        req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())

    status, answer = post(n.api_url("ServerlessRestApi") + "/orders", {"order": 1})
    assert status == 200 and answer["executionArn"].startswith(arn.replace("stateMachine", "execution"))
    d = finish(sfn, answer["executionArn"])
    assert json.loads(d["output"]) == {"order": 1}

    status, answer = post(n.api_url("Http") + "/start", {"order": 2})
    assert status == 200, answer
    assert json.loads(finish(sfn, answer["executionArn"])["output"]) == {"order": 2}


def test_a_task_starts_a_child_execution_and_waits_for_it_and_reads_parameter_store(start_nimbus):
    n = start_nimbus(SERVICES)
    sfn, ssm = n.client("stepfunctions"), n.client("ssm")
    ssm.put_parameter(Name="/app/greeting", Value="hello", Type="String")
    child = sfn.create_state_machine(name="child", roleArn=ROLE, definition=definition({
        "Wait": {"Type": "Wait", "Seconds": 1, "Next": "Answer"},
        "Answer": {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"}, "End": True}}, "Wait"))["stateMachineArn"]
    failing = sfn.create_state_machine(name="failing", roleArn=ROLE, definition=definition({
        "No": {"Type": "Fail", "Error": "Nope", "Cause": "child says no"}}, "No"))["stateMachineArn"]
    quick = sfn.create_state_machine(name="quick-child", roleArn=ROLE, type="EXPRESS", definition=definition({
        "Up": {"Type": "Pass", "Parameters": {"up.$": "States.MathAdd($.n, 1)"}, "End": True}}, "Up"))["stateMachineArn"]
    parent = sfn.create_state_machine(name="parent", roleArn=ROLE, definition=definition({
        "Greeting": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:ssm:getParameter",
                     "Parameters": {"Name": "/app/greeting"}, "ResultSelector": {"value.$": "$.Parameter.Value"},
                     "ResultPath": "$.greeting", "Next": "Child"},
        "Child": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                  "Parameters": {"StateMachineArn": child, "Input": {"n.$": "$.n"}},
                  "ResultSelector": {"output.$": "$.Output", "status.$": "$.Status"}, "ResultPath": "$.child",
                  "Next": "Quick"},
        "Quick": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                  "Parameters": {"StateMachineArn": quick, "Input": {"n.$": "$.n"}},
                  "ResultSelector": {"output.$": "$.Output"}, "ResultPath": "$.quick", "Next": "Failing"},
        "Failing": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync",
                    "Parameters": {"StateMachineArn": failing, "Input": {}},
                    "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.failed", "Next": "Done"}],
                    "Next": "Done"},
        "Done": {"Type": "Succeed"}}, "Greeting"))["stateMachineArn"]
    d = finish(sfn, sfn.start_execution(stateMachineArn=parent, input='{"n": 21}')["executionArn"])
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    assert out["greeting"] == {"value": "hello"}
    assert out["child"] == {"output": {"doubled": 42}, "status": "SUCCEEDED"}
    assert out["quick"] == {"output": {"up": 22}}, "an Express child runs to its end for .sync"
    assert out["failed"]["Error"] == "States.TaskFailed" and json.loads(out["failed"]["Cause"])["Status"] == "FAILED"


def test_test_state_runs_one_state(start_nimbus, tmp_path):
    n = start_nimbus(template(tmp_path), {"src/app.py": APP})
    import boto3
    # TestState, like StartSyncExecution, is sent to a `sync-` host: a local endpoint has none.
    sfn = boto3.client("stepfunctions", endpoint_url=n.endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test",
                       config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
    pass_state = {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"}, "Next": "After"}
    r = sfn.test_state(definition=json.dumps(pass_state), roleArn=ROLE, input='{"a": 1, "b": 2}')
    assert (r["status"], json.loads(r["output"]), r["nextState"]) == ("SUCCEEDED", {"sum": 3}, "After")
    choice = {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "One"}], "Default": "Other"}
    assert sfn.test_state(definition=json.dumps(choice), roleArn=ROLE, input='{"x": 1}')["nextState"] == "One"
    task = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "Broken", "Payload": {}}, "End": True}
    failed = sfn.test_state(definition=json.dumps(task), roleArn=ROLE, input="{}")
    assert (failed["status"], failed["error"]) == ("FAILED", "BrokenError")
    retried = sfn.test_state(definition=json.dumps({**task, "Retry": [{"ErrorEquals": ["BrokenError"]}]}),
                             roleArn=ROLE, input="{}")
    assert retried["status"] == "RETRIABLE"
    caught = sfn.test_state(definition=json.dumps({**task, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Oops"}]}),
                            roleArn=ROLE, input="{}")
    assert (caught["status"], caught["nextState"], json.loads(caught["output"])["Error"]) == ("CAUGHT_ERROR", "Oops", "BrokenError")


def test_redrive_runs_a_failed_execution_again_from_the_state_that_failed(start_nimbus, tmp_path):
    n = start_nimbus(template(tmp_path), {"src/app.py": APP})
    sfn = n.client("stepfunctions")
    states = {
        "Before": {"Type": "Pass", "Result": "done", "ResultPath": "$.before", "Next": "TryIt"},
        "TryIt": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                  "Parameters": {"FunctionName": "Flaky", "Payload.$": "$"}, "ResultSelector": {"n.$": "$.Payload.attempts", "redrives.$": "$$.Execution.RedriveCount"},
                  "ResultPath": "$.result", "End": True},
    }
    arn = sfn.create_state_machine(name="redrivable", roleArn=ROLE, definition=definition(states, "Before"))["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"key": "redrive"}))["executionArn"]
    d = finish(sfn, ex)
    assert (d["status"], d["error"], d["redriveStatus"]) == ("FAILED", "FlakyError", "REDRIVABLE")
    for expected in ("FAILED", "SUCCEEDED"):
        sfn.redrive_execution(executionArn=ex)
        d = finish(sfn, ex)
        assert d["status"] == expected, d
    # The context object counts the redrives too.
    assert json.loads(d["output"]) == {"key": "redrive", "before": "done", "result": {"n": 3, "redrives": 2}}
    assert d["redriveCount"] == 2
    types = [e["type"] for e in history(sfn, ex)]
    assert types.count("ExecutionRedriven") == 2 and types.count("PassStateEntered") == 1, types
    assert types.count("TaskStateEntered") == 3
    with pytest.raises(ClientError) as e:
        sfn.redrive_execution(executionArn=ex)
    assert code(e) == "ExecutionNotRedrivable"


def test_an_activity_worker_takes_and_answers_a_task(start_nimbus):
    import threading
    n = start_nimbus(SERVICES)
    sfn = n.client("stepfunctions")
    activity = sfn.create_activity(name="review")["activityArn"]
    assert sfn.create_activity(name="review")["activityArn"] == activity
    assert [a["name"] for a in sfn.list_activities()["activities"]] == ["review"]
    arn = sfn.create_state_machine(name="reviewed", roleArn=ROLE, definition=definition({
        "Review": {"Type": "Task", "Resource": activity, "HeartbeatSeconds": 30, "ResultPath": "$.review", "End": True}},
        "Review"))["stateMachineArn"]

    def worker():
        task = sfn.get_activity_task(activityArn=activity, workerName="w1")
        doc = json.loads(task["input"])
        sfn.send_task_success(taskToken=task["taskToken"], output=json.dumps({"ok": doc["doc"] == "a"}))

    t = threading.Thread(target=worker)
    t.start()
    ex = sfn.start_execution(stateMachineArn=arn, input='{"doc": "a"}')["executionArn"]
    t.join(30)
    d = finish(sfn, ex)
    assert json.loads(d["output"]) == {"doc": "a", "review": {"ok": True}}
    events = history(sfn, ex)
    started = next(e for e in events if e["type"] == "ActivityStarted")
    assert started["activityStartedEventDetails"]["workerName"] == "w1"
    with pytest.raises(ClientError) as e:
        sfn.describe_activity(activityArn=activity + "-nope")
    assert code(e) == "ActivityDoesNotExist"
    sfn.delete_activity(activityArn=activity)
    assert sfn.list_activities()["activities"] == []


def test_jsonpath_states_assign_and_read_variables(start_nimbus, tmp_path):
    n = start_nimbus(template(tmp_path), {"src/app.py": APP})
    sfn = n.client("stepfunctions")
    states = {
        "Compute": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "Double", "Payload.$": "$"},
                    "Assign": {"total.$": "$.Payload.total", "customer.$": "$.Payload.name", "fixed": "yes"},
                    "ResultPath": None, "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$total", "NumericGreaterThan": 5, "Next": "Each",
                                                  "Assign": {"size": "big"}}],
                  "Default": "Each", "Assign": {"size": "small"}},
        "Each": {"Type": "Map", "ItemsPath": "$.items", "ResultPath": "$.labels",
                 "ItemProcessor": {"StartAt": "Label", "States": {"Label": {
                     "Type": "Pass", "Parameters": {"label.$": "States.Format('{}-{}', $customer, $)"}, "End": True}}},
                 "Next": "Done"},
        "Done": {"Type": "Pass", "Parameters": {"total.$": "$total", "size.$": "$size", "fixed.$": "$fixed",
                                                 "labels.$": "$.labels[*].label"}, "End": True},
    }
    arn = sfn.create_state_machine(name="vars", roleArn=ROLE, definition=definition(states, "Compute"))["stateMachineArn"]
    d = finish(sfn, sfn.start_execution(stateMachineArn=arn, input=json.dumps({"name": "ann", "items": [1, 2]}))["executionArn"])
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == {"total": 6, "size": "big", "fixed": "yes", "labels": ["ann-1", "ann-2"]}



SCHEDULES = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Ticker:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: ticker
      Definition:
        StartAt: Tick
        States:
          Tick: {Type: Pass, End: true}
      Events:
        Every:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(5 minutes)
            Input: '{"from": "scheduler"}'
  Plain:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      StateMachineName: plain
      RoleArn: arn:aws:iam::123456789012:role/r
      Definition:
        StartAt: Tick
        States:
          Tick: {Type: Pass, End: true}
  PlainSchedule:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: cron(0 12 * * ? *)
      FlexibleTimeWindow: {Mode: "OFF"}
      Target:
        Arn: !Ref Plain
        RoleArn: arn:aws:iam::123456789012:role/r
"""


def test_scheduler_schedules_are_rules_that_start_state_machines(start_nimbus):
    # Firing is the event engine's schedule (tested with the rules); here: they are wired, with
    # no "not served" warning.
    n = start_nimbus(SCHEDULES)
    n.wait_for("nimbus: ready")
    assert any('TickerEvery on bus default: rate(5 minutes) -> StateMachine("ticker")' in l for l in n.lines), n.lines
    assert any('PlainSchedule on bus default: cron(0 12 * * ? *) -> StateMachine("plain")' in l for l in n.lines), n.lines
    assert "not served" not in n.stderr


def test_a_distributed_map_batches_items_and_tolerates_failures(start_nimbus):
    n = start_nimbus(SERVICES)
    sfn = n.client("stepfunctions")
    states = {
        "Fan": {"Type": "Map", "ItemsPath": "$.orders", "MaxConcurrency": 4, "Label": "Fan",
                "ItemSelector": {"id.$": "$$.Map.Item.Value.id"},
                "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"run.$": "$.run"}},
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                                  "StartAt": "Count", "States": {"Count": {
                                      "Type": "Pass", "Parameters": {"n.$": "States.ArrayLength($.Items)",
                                                                     "run.$": "$.BatchInput.run"}, "End": True}}},
                "End": True},
    }
    arn = sfn.create_state_machine(name="fan", roleArn=ROLE, definition=definition(states, "Fan"))["stateMachineArn"]
    orders = [{"id": i} for i in range(5)]
    d = finish(sfn, sfn.start_execution(stateMachineArn=arn, input=json.dumps({"run": "r1", "orders": orders}))["executionArn"])
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == [{"n": 2, "run": "r1"}, {"n": 2, "run": "r1"}, {"n": 1, "run": "r1"}]
    with pytest.raises(ClientError) as e:
        sfn.create_state_machine(name="reads-s3", roleArn=ROLE, definition=definition({"M": {
            "Type": "Map", "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b", "Key": "k"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
            "End": True}}, "M"))
    assert code(e) == "InvalidDefinition" and "/States/M/ItemReader" in e.value.response["Error"]["Message"]


def test_an_http_task_calls_an_endpoint_and_its_errors_reach_catch(start_nimbus):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            seen.append((self.path, self.headers.get("x-trace"), body))
            if self.path.startswith("/missing"):
                self.send_response(404)
                self.end_headers()
                self.wfile.write(b'{"message": "no such thing"}')
                return
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"echo": json.loads(body)}).encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        n = start_nimbus(SERVICES)
        sfn = n.client("stepfunctions")
        call = {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                "Parameters": {"ApiEndpoint": base + "/orders", "Method": "POST", "Headers": {"x-trace": "t1"},
                               "QueryParameters": {"q": "1"}, "RequestBody": {"id.$": "$.id"},
                               "Authentication": {"ConnectionArn": "arn:aws:events:us-east-1:123456789012:connection/c/x"}},
                "ResultSelector": {"status.$": "$.StatusCode", "body.$": "$.ResponseBody"},
                "ResultPath": "$.ok", "Next": "Missing"}
        missing = {**call, "Parameters": {**call["Parameters"], "ApiEndpoint": base + "/missing"},
                   "ResultSelector": {"never.$": "$"}, "Next": "Done",
                   "Catch": [{"ErrorEquals": ["States.Http.StatusCode.404"], "ResultPath": "$.missing", "Next": "Done"}]}
        arn = sfn.create_state_machine(name="http", roleArn=ROLE, definition=definition(
            {"Call": call, "Missing": missing, "Done": {"Type": "Succeed"}}, "Call"))["stateMachineArn"]
        d = finish(sfn, sfn.start_execution(stateMachineArn=arn, input='{"id": 7}')["executionArn"])
        assert d["status"] == "SUCCEEDED", d
        out = json.loads(d["output"])
        assert out["ok"] == {"status": 200, "body": {"echo": {"id": 7}}}
        assert out["missing"]["Error"] == "States.Http.StatusCode.404"
        assert json.loads(out["missing"]["Cause"])["ResponseBody"] == {"message": "no such thing"}
        assert seen[0][0] == "/orders?q=1" and seen[0][1] == "t1"
    finally:
        server.shutdown()


def test_versions_and_aliases_pin_what_an_execution_runs(start_nimbus):
    n = start_nimbus(SERVICES)
    sfn = n.client("stepfunctions")

    def answering(v):
        return definition({"Answer": {"Type": "Pass", "Result": {"v": v}, "End": True}}, "Answer")

    created = sfn.create_state_machine(name="pinned", roleArn=ROLE, definition=answering(1), publish=True,
                                       versionDescription="first")
    arn, v1 = created["stateMachineArn"], created["stateMachineVersionArn"]
    assert v1 == arn + ":1"
    sfn.update_state_machine(stateMachineArn=arn, definition=answering(2))
    v2 = sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"]
    assert v2 == arn + ":2"
    assert sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"] == v2, \
        "nothing changed: the newest version is answered again"
    assert [v["stateMachineVersionArn"] for v in sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]] == [v2, v1]
    alias = sfn.create_state_machine_alias(name="prod", routingConfiguration=[
        {"stateMachineVersionArn": v1, "weight": 100}])["stateMachineAliasArn"]

    def run(target):
        ex = sfn.start_execution(stateMachineArn=target)["executionArn"]
        return finish(sfn, ex)

    d = run(alias)
    assert json.loads(d["output"]) == {"v": 1}
    assert (d["stateMachineAliasArn"], d["stateMachineVersionArn"]) == (alias, v1)
    assert json.loads(run(arn)["output"]) == {"v": 2}, "the machine itself runs its latest definition"
    assert json.loads(run(v1)["output"]) == {"v": 1}
    sfn.update_state_machine_alias(stateMachineAliasArn=alias, routingConfiguration=[
        {"stateMachineVersionArn": v2, "weight": 100}])
    assert json.loads(run(alias)["output"]) == {"v": 2}
    assert sfn.describe_state_machine_alias(stateMachineAliasArn=alias)["routingConfiguration"][0]["stateMachineVersionArn"] == v2
    for call, kwargs, error in [
        (sfn.delete_state_machine_version, {"stateMachineVersionArn": v2}, "ConflictException"),
        (sfn.create_state_machine_alias, {"name": "bad", "routingConfiguration": [
            {"stateMachineVersionArn": arn + ":9", "weight": 100}]}, "ResourceNotFound"),
        (sfn.create_state_machine_alias, {"name": "split", "routingConfiguration": [
            {"stateMachineVersionArn": v1, "weight": 50}, {"stateMachineVersionArn": v2, "weight": 40}]}, "ValidationException"),
        (sfn.start_execution, {"stateMachineArn": arn + ":7"}, "StateMachineDoesNotExist"),
    ]:
        with pytest.raises(ClientError) as e:
            call(**kwargs)
        assert code(e) == error, (kwargs, e.value.response)
    sfn.delete_state_machine_alias(stateMachineAliasArn=alias)
    sfn.delete_state_machine_version(stateMachineVersionArn=v2)
    assert sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"] == []


APIGW_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Shop:
    Type: AWS::Serverless::Api
    Properties: {StageName: Prod}
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: echo.handler
      Events:
        Item:
          Type: Api
          Properties: {RestApiId: !Ref Shop, Path: "/items/{id}", Method: get}
  Caller:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: caller
      DefinitionSubstitutions:
        Endpoint: !Sub "${Shop}.execute-api.${AWS::Region}.amazonaws.com"
      Definition:
        StartAt: Call
        States:
          Call:
            Type: Task
            Resource: arn:aws:states:::apigateway:invoke
            Parameters:
              ApiEndpoint: ${Endpoint}
              Method: GET
              Stage: Prod
              Path.$: States.Format('items/{}', $.id)
              QueryParameters: {q: [a, b]}
              Headers: {X-Who: [ada]}
              AuthType: IAM_ROLE
            ResultSelector: {status.$: $.StatusCode, body.$: $.ResponseBody}
            ResultPath: $.ok
            Next: Missing
          Missing:
            Type: Task
            Resource: arn:aws:states:::apigateway:invoke
            Parameters: {ApiEndpoint: "${Endpoint}", Method: GET, Stage: Prod, Path: nothing/here}
            Catch: [{ErrorEquals: [ApiGateway.403], ResultPath: $.missing, Next: Done}]
            Next: Done
          Done: {Type: Succeed}
"""

ECHO_APP = '''
import json
def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({
        "id": event["pathParameters"]["id"],
        "q": event["multiValueQueryStringParameters"]["q"],
        "who": {k.lower(): v for k, v in event["headers"].items()}.get("x-who"),
        "stage": event["requestContext"]["stage"]})}
'''


def test_an_apigateway_invoke_task_calls_the_stacks_api_on_the_local_gateway(start_nimbus):
    n = start_nimbus(APIGW_TEMPLATE, {"src/echo.py": ECHO_APP})
    sfn = n.client("stepfunctions")
    arn = machine(sfn, "caller")
    d = finish(sfn, sfn.start_execution(stateMachineArn=arn, input='{"id": "7"}')["executionArn"])
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    assert out["ok"] == {"status": 200, "body": {"id": "7", "q": ["a", "b"], "who": "ada", "stage": "Prod"}}
    # Step Functions' error for a status outside 2xx, the answer's body as the cause.
    assert out["missing"] == {"Error": "ApiGateway.403", "Cause": '{"message":"Missing Authentication Token"}'}


LOGGED_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Trail:
    Type: AWS::Logs::LogGroup
    Properties: {LogGroupName: /aws/vendedlogs/states/trail}
  Everything:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: everything
      Logging:
        Level: ALL
        IncludeExecutionData: true
        Destinations: [{CloudWatchLogsLogGroup: {LogGroupArn: !GetAtt Trail.Arn}}]
      Definition:
        StartAt: P
        States:
          P: {Type: Pass, Result: {ok: true}, End: true}
  Errors:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: errors
      Logging:
        Level: ERROR
        IncludeExecutionData: false
        Destinations: [{CloudWatchLogsLogGroup: {LogGroupArn: !GetAtt Trail.Arn}}]
      Definition:
        StartAt: P
        States:
          P: {Type: Pass, Next: F}
          F: {Type: Fail, Error: Broken, Cause: on purpose}
"""


def test_executions_log_to_their_cloudwatch_log_group_at_their_level(start_nimbus):
    n = start_nimbus(LOGGED_TEMPLATE)
    sfn, logs = n.client("stepfunctions"), n.client("logs")
    ok = finish(sfn, sfn.start_execution(stateMachineArn=machine(sfn, "everything"), input='{"a": 1}')["executionArn"])
    bad = finish(sfn, sfn.start_execution(stateMachineArn=machine(sfn, "errors"), input='{"a": 1}')["executionArn"])
    assert (ok["status"], bad["status"]) == ("SUCCEEDED", "FAILED")
    group = "/aws/vendedlogs/states/trail"

    def lines():
        try:
            return [json.loads(e["message"]) for e in logs.filter_log_events(logGroupName=group)["events"]]
        except logs.exceptions.ResourceNotFoundException:
            return []
    got = poll(lines, lambda l: len(l) >= 5)
    by_execution = {}
    for l in got:
        by_execution.setdefault(l["execution_arn"], []).append(l["type"])
    # ALL: every event, with the execution's data.
    assert by_execution[ok["executionArn"]] == ["ExecutionStarted", "PassStateEntered", "PassStateExited", "ExecutionSucceeded"]
    started = next(l for l in got if l["type"] == "ExecutionStarted")
    assert json.loads(started["details"]["input"]) == {"a": 1} and started["id"] == "1"
    # ERROR: only the failure, without data.
    assert by_execution[bad["executionArn"]] == ["ExecutionFailed"]
    failed = next(l for l in got if l["type"] == "ExecutionFailed")
    assert failed["details"] == {"error": "Broken", "cause": "on purpose"}
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]]
    assert len(streams) == 2 and all(s.startswith(("states/everything/", "states/errors/")) for s in streams), streams


@pytest.mark.parametrize("parameters, cause", [
    ({"Method": "GET"}, "The field 'ApiEndpoint' is required by arn:aws:states:::apigateway:invoke"),
    ({"ApiEndpoint": "x.execute-api.us-east-1.amazonaws.com", "Method": "TRACE"}, "The value of the field 'Method' must be one of"),
    ({"ApiEndpoint": "x.execute-api.us-east-1.amazonaws.com", "Method": "GET", "Headers": {"Authorization": ["t"]}},
     'The header "Authorization" is not permitted in arn:aws:states:::apigateway:invoke'),
])
def test_a_bad_apigateway_invoke_task_fails_the_execution_naming_the_field(start_nimbus, parameters, cause):
    n = start_nimbus(SERVICES)
    sfn = n.client("stepfunctions")
    task = {"Type": "Task", "Resource": "arn:aws:states:::apigateway:invoke", "Parameters": parameters, "End": True}
    arn = sfn.create_state_machine(name="bad-apigw", roleArn=ROLE, definition=definition({"Call": task}, "Call"))["stateMachineArn"]
    d = finish(sfn, sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"])
    assert (d["status"], d["error"]) == ("FAILED", "States.Runtime"), d
    assert cause in d["cause"], d["cause"]


PASS_MACHINE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Quick:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: quick
      Definition:
        StartAt: Done
        States:
          Done: {Type: Pass, End: true}
"""


def test_an_execution_continues_its_callers_sampled_trace(start_nimbus):
    n = start_nimbus(PASS_MACHINE)
    sfn = n.client("stepfunctions")
    arn = machine(sfn, "quick")
    import urllib.request

    def spans_of(root):
        traces = json.loads(urllib.request.urlopen(n.endpoint + "/_nimbus/api/traces?limit=50", timeout=10).read())
        if not any(t["trace_id"] == root for t in traces["traces"]):
            return None
        return json.loads(urllib.request.urlopen(n.endpoint + "/_nimbus/api/traces/" + root, timeout=10).read())["spans"]

    # `traceHeader` in the request, on a machine without tracing: the caller sampled it.
    root, parent = "1-5f84c7a0-6c1e2b3a4d5e6f708192a3b4", "53995c3f42cd8ad8"
    ex = sfn.start_execution(stateMachineArn=arn, traceHeader=f"Root={root};Parent={parent};Sampled=1")
    finish(sfn, ex["executionArn"])
    spans = wait_until("the execution's spans in the caller's trace", lambda: spans_of(root))
    top = next(s for s in spans if s["kind"] == "state-machine")
    assert top["parent_id"] == parent, top

    # The caller's X-Amzn-Trace-Id (what botocore sends from a traced function) does the same.
    root2, parent2 = "1-5f84c7a0-000000000000000000000002", "1111222233334444"
    def add_header(request, **kwargs):
        request.headers["X-Amzn-Trace-Id"] = f"Root={root2};Parent={parent2};Sampled=1"
    sfn.meta.events.register("before-send.states.StartExecution", add_header)
    ex = sfn.start_execution(stateMachineArn=arn)
    finish(sfn, ex["executionArn"])
    spans = wait_until("the header's trace", lambda: spans_of(root2))
    assert next(s for s in spans if s["kind"] == "state-machine")["parent_id"] == parent2

    # Not sampled, on an untraced machine: nothing recorded.
    root3 = "1-5f84c7a0-000000000000000000000003"
    sfn.meta.events.unregister("before-send.states.StartExecution", add_header)
    ex = sfn.start_execution(stateMachineArn=arn, traceHeader=f"Root={root3};Sampled=0")
    finish(sfn, ex["executionArn"])
    assert spans_of(root3) is None

    with pytest.raises(ClientError) as long:
        sfn.start_execution(stateMachineArn=arn, traceHeader="x" * 300)
    assert long.value.response["Error"]["Code"] == "ValidationException"


MAP_RESTART = """
Resources:
  Marks:
    Type: AWS::SQS::Queue
    Properties: {QueueName: map-marks}
  Fanout:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      StateMachineName: fanout
      RoleArn: arn:aws:iam::123456789012:role/r
      Definition:
        StartAt: Each
        States:
          Each:
            Type: Map
            ItemsPath: $.items
            ItemProcessor:
              StartAt: Which
              States:
                Which:
                  Type: Choice
                  Choices: [{Variable: $.kind, StringEquals: task, Next: Mark}]
                  Default: Hold
                Mark:
                  Type: Task
                  Resource: arn:aws:states:::sqs:sendMessage
                  Parameters: {QueueUrl: "http://localhost/123456789012/map-marks", MessageBody: marked}
                  ResultSelector: {marked: true}
                  End: true
                Hold: {Type: Wait, Seconds: 4, Next: Done}
                Done: {Type: Pass, Result: {held: true}, End: true}
            End: true
  Callbacks:
    Type: AWS::SQS::Queue
    Properties: {QueueName: map-callbacks}
  FanoutCallback:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      StateMachineName: fanout-callback
      RoleArn: arn:aws:iam::123456789012:role/r
      Definition:
        StartAt: Each
        States:
          Each:
            Type: Map
            ItemsPath: $.items
            End: true
            ItemProcessor:
              StartAt: Which
              States:
                Which:
                  Type: Choice
                  Choices: [{Variable: $.kind, StringEquals: task, Next: Mark}]
                  Default: Call
                Mark:
                  Type: Task
                  Resource: arn:aws:states:::sqs:sendMessage
                  Parameters: {QueueUrl: "http://localhost/123456789012/map-marks", MessageBody: marked}
                  ResultSelector: {marked: true}
                  End: true
                Call:
                  Type: Task
                  Resource: arn:aws:states:::sqs:sendMessage.waitForTaskToken
                  Parameters:
                    QueueUrl: "http://localhost/123456789012/map-callbacks"
                    MessageBody.$: $$.Task.Token
                  Catch: [{ErrorEquals: [States.TaskFailed], ResultPath: $.error, Next: Caught}]
                  End: true
                Caught: {Type: Pass, End: true}
  ForkMarks:
    Type: AWS::SQS::Queue
    Properties: {QueueName: fork-marks}
  Fork:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      StateMachineName: fork
      RoleArn: arn:aws:iam::123456789012:role/r
      Definition:
        StartAt: Both
        States:
          Both:
            Type: Parallel
            End: true
            Branches:
              - StartAt: ForkMark
                States:
                  ForkMark:
                    Type: Task
                    Resource: arn:aws:states:::sqs:sendMessage
                    Parameters: {QueueUrl: "http://localhost/123456789012/fork-marks", MessageBody: marked}
                    ResultSelector: {marked: true}
                    End: true
              - StartAt: ForkStamp
                States:
                  ForkStamp:
                    Type: Task
                    Resource: arn:aws:states:::sqs:sendMessage
                    Parameters: {QueueUrl: "http://localhost/123456789012/fork-marks", MessageBody: stamped}
                    ResultPath: null
                    Next: ForkHold
                  ForkHold: {Type: Wait, Seconds: 6, Next: ForkDone}
                  ForkDone: {Type: Pass, Result: {held: true}, End: true}
"""


def test_a_map_cut_by_kill_9_keeps_its_finished_iterations_and_goes_on_where_the_others_were(start_nimbus):
    n = start_nimbus(MAP_RESTART)
    sfn, sqs = n.client("stepfunctions"), n.client("sqs")
    ex = sfn.start_execution(stateMachineArn=machine(sfn, "fanout"),
                             input=json.dumps({"items": [{"kind": "task"}, {"kind": "wait"}]}))["executionArn"]
    seen = lambda: [e["type"] for e in sfn.get_execution_history(executionArn=ex, maxResults=1000)["events"]]  # noqa: E731
    wait_until("the task iteration finished and the other waits",
               lambda: "MapIterationSucceeded" in seen() and "WaitStateEntered" in seen(), 10)
    before = seen()
    assert "WaitStateExited" not in before and before.count("MapIterationSucceeded") == 1, before
    again = killed_and_restarted(start_nimbus, n, MAP_RESTART)
    sfn, sqs = again.client("stepfunctions"), again.client("sqs")
    d = finish(sfn, ex, timeout=30)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == [{"marked": True}, {"held": True}]
    # The finished iteration's task was not started again, and the Map started once.
    url = sqs.get_queue_url(QueueName="map-marks")["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "1"
    types = [e["type"] for e in history(sfn, ex)]
    assert types.count("MapStateStarted") == 1 and types.count("TaskScheduled") == 1, types
    # The waiting iteration went on waiting; the finished one did not run again.
    assert types.count("MapIterationStarted") == 2 and types.count("MapIterationSucceeded") == 2, types
    assert types.count("WaitStateEntered") == 1 and types.count("WaitStateExited") == 1, types
    assert types[-2:] == ["MapStateExited", "ExecutionSucceeded"], types


def test_a_callback_task_in_a_map_iteration_at_kill_9_waits_again_on_the_token_it_handed_out(start_nimbus):
    n = start_nimbus(MAP_RESTART)
    sfn = n.client("stepfunctions")
    ex = sfn.start_execution(stateMachineArn=machine(sfn, "fanout-callback"),
                             input=json.dumps({"items": [{"kind": "task"}, {"kind": "callback"}]}))["executionArn"]
    seen = lambda: [e["type"] for e in sfn.get_execution_history(executionArn=ex, maxResults=1000)["events"]]  # noqa: E731
    wait_until("one iteration finished and the other's token is out",
               lambda: "MapIterationSucceeded" in seen() and "TaskSubmitted" in seen(), 10)
    n = killed_and_restarted(start_nimbus, n, MAP_RESTART)
    sfn, sqs = n.client("stepfunctions"), n.client("sqs")
    url = sqs.get_queue_url(QueueName="map-callbacks")["QueueUrl"]
    token = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"][0]["Body"]

    def answered():
        try:
            sfn.send_task_success(taskToken=token, output='{"answered": true}')
            return True
        except ClientError as e:
            # The resumed iteration has not registered its token yet.
            assert code(e) == "TaskTimedOut", e
            return False

    wait_until("the token handed out before the kill is answerable again", answered, 10)
    d = finish(sfn, ex, timeout=30)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == [{"marked": True}, {"answered": True}]
    events = history(sfn, ex)
    types = [e["type"] for e in events]
    # The token nimbus keeps with the scheduling for a restart is not shown.
    scheduled = [e["taskScheduledEventDetails"] for e in events if e["type"] == "TaskScheduled"]
    assert all(set(d) <= {"resourceType", "resource", "region", "parameters", "heartbeatInSeconds",
                          "timeoutInSeconds"} for d in scheduled), scheduled
    # Neither task ran again; the callback's one scheduling got the answer.
    assert types.count("TaskScheduled") == 2 and types.count("TaskSubmitted") == 1, types
    assert types.count("TaskSucceeded") == 2 and "TaskFailed" not in types, types
    assert types.count("MapStateStarted") == 1 and types.count("MapIterationSucceeded") == 2, types


def test_map_iterations_resumed_after_kill_9_keep_their_variables_fail_a_taken_activity_and_wait_out_a_retry(
        start_nimbus):
    import threading
    n = start_nimbus(MAP_RESTART)
    sfn = n.client("stepfunctions")
    activity = sfn.create_activity(name="inspect")["activityArn"]
    states = {
        "Each": {"Type": "Map", "ItemsPath": "$.items", "End": True, "ItemProcessor": {"StartAt": "Which", "States": {
            "Which": {"Type": "Choice", "Default": "Remember",
                      "Choices": [{"Variable": "$.kind", "StringEquals": "activity", "Next": "Inspect"}]},
            "Inspect": {"Type": "Task", "Resource": activity, "End": True,
                        "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Caught"}]},
            "Caught": {"Type": "Pass", "End": True},
            "Remember": {"Type": "Pass", "Assign": {"who.$": "$.kind", "n": 7}, "Next": "Send"},
            "Send": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
                     "Parameters": {"QueueUrl": "http://localhost/123456789012/no-such-queue", "MessageBody": "x"},
                     "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 6, "MaxAttempts": 1}],
                     "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Recall"}], "End": True},
            "Recall": {"Type": "Pass", "Parameters": {"who.$": "$who", "n.$": "$n"}, "End": True}}}}}
    arn = sfn.create_state_machine(name="resumed-parts", roleArn=ROLE,
                                   definition=definition(states, "Each"))["stateMachineArn"]
    taken = threading.Thread(target=lambda: sfn.get_activity_task(activityArn=activity, workerName="w1"))
    taken.start()
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps(
        {"items": [{"kind": "remember"}, {"kind": "activity"}]}))["executionArn"]
    seen = lambda: [e["type"] for e in sfn.get_execution_history(executionArn=ex, maxResults=1000)["events"]]  # noqa: E731
    wait_until("the activity is taken and the send failed once",
               lambda: "ActivityStarted" in seen() and "TaskFailed" in seen(), 10)
    taken.join(10)
    # Half the retry's interval gone, killed.
    time.sleep(3)
    n = killed_and_restarted(start_nimbus, n, MAP_RESTART)
    sfn = n.client("stepfunctions")
    d = finish(sfn, ex, timeout=30)
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    # Variables assigned before the kill are there after it, in their own iteration.
    assert out[0] == {"who": "remember", "n": 7}, out
    # The activity a worker had taken failed at the restart, in its own iteration.
    assert out[1]["error"]["Error"] == "States.TaskFailed" and "at most once" in out[1]["error"]["Cause"], out
    events = history(sfn, ex)
    remembered = next(e for e in events if e["type"] == "PassStateExited"
                      and e["stateExitedEventDetails"]["name"] == "Remember")["stateExitedEventDetails"]
    assert remembered["assignedVariables"] == {"who": '"remember"', "n": "7"}, remembered
    assert remembered["assignedVariablesDetails"] == {"truncated": False}
    # The retry's 6 s counted from the failure, not from the restart (that would be 9 or more).
    failed = next(e for e in events if e["type"] == "TaskFailed")
    again = [e for e in events if e["type"] == "TaskScheduled"][1]
    waited = (again["timestamp"] - failed["timestamp"]).total_seconds()
    assert 5.9 <= waited < 8.5, waited
    types = [e["type"] for e in events]
    assert types.count("ActivityStarted") == 1 and types.count("ActivityFailed") == 1, types


def test_a_parallel_cut_by_kill_9_twice_keeps_its_finished_branch_and_goes_on_where_the_other_was(start_nimbus):
    n = start_nimbus(MAP_RESTART)
    sfn = n.client("stepfunctions")
    ex = sfn.start_execution(stateMachineArn=machine(sfn, "fork"), input="{}")["executionArn"]
    seen = lambda: [e["type"] for e in sfn.get_execution_history(executionArn=ex, maxResults=1000)["events"]]  # noqa: E731
    wait_until("one branch finished and the other, past its task, waits",
               lambda: seen().count("TaskStateExited") == 2 and "WaitStateEntered" in seen(), 10)
    # Half its wait gone, killed; and again while the branch goes on waiting after the restart.
    time.sleep(3)
    for _ in range(2):
        assert "WaitStateExited" not in seen(), seen()
        n = killed_and_restarted(start_nimbus, n, MAP_RESTART)
        sfn = n.client("stepfunctions")
    d = finish(sfn, ex, timeout=30)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == [{"marked": True}, {"held": True}]
    # Neither the finished branch's task nor the waiting branch's earlier task ran again.
    sqs = n.client("sqs")
    url = sqs.get_queue_url(QueueName="fork-marks")["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "2"
    events = history(sfn, ex)
    types = [e["type"] for e in events]
    assert types.count("ParallelStateStarted") == 1 and types.count("TaskScheduled") == 2, types
    assert types.count("WaitStateEntered") == 1 and types.count("WaitStateExited") == 1, types
    # The branches hang off the one ParallelStateStarted, as does its end; the wait's exit
    # follows its entry across both restarts.
    started = next(e["id"] for e in events if e["type"] == "ParallelStateStarted")
    firsts = sorted(e["type"] for e in events if e["previousEventId"] == started)
    assert firsts == ["ParallelStateSucceeded", "TaskStateEntered", "TaskStateEntered"], firsts
    wait = next(e for e in events if e["type"] == "WaitStateEntered")
    done = next(e for e in events if e["type"] == "WaitStateExited")
    assert done["previousEventId"] == wait["id"]
    # The 6-second wait counted from its entry, not from a restart (that would be 9 or more).
    waited = (done["timestamp"] - wait["timestamp"]).total_seconds()
    assert 5.9 <= waited < 8.5, waited
    assert types[-2:] == ["ParallelStateExited", "ExecutionSucceeded"], types


def distributed(states, start, **map_fields):
    """A machine whose one state is a distributed Map of Standard children over `$.items`."""
    return definition({"Fan": {"Type": "Map", "ItemsPath": "$.items", "End": True, **map_fields, "ItemProcessor": {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": start, "States": states}}}, "Fan")


DOUBLE_OR_FAIL = {
    "Which": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 3, "Next": "Odd"}], "Default": "Double"},
    "Odd": {"Type": "Fail", "Error": "Odd", "Cause": "three"},
    "Double": {"Type": "Pass", "Parameters": {"double.$": "States.MathAdd($.n, $.n)"}, "End": True},
}


def test_a_distributed_map_runs_its_items_as_child_executions_of_a_map_run(start_nimbus):
    n = start_nimbus(SERVICES)
    sfn = n.client("stepfunctions")
    arn = sfn.create_state_machine(name="fanout", roleArn=ROLE, definition=distributed(
        DOUBLE_OR_FAIL, "Which", Label="Fan", MaxConcurrency=2, ToleratedFailureCount=1))["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": [{"n": 1}, {"n": 2}, {"n": 3}]}))["executionArn"]
    d = finish(sfn, ex)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == [{"double": 2}, {"double": 4}, {"Error": "Odd", "Cause": "three"}]
    events = history(sfn, ex)
    # The parent's history says the Map Run, not its children's states, as on AWS.
    assert [e["type"] for e in events] == [
        "ExecutionStarted", "MapStateEntered", "MapStateStarted", "MapRunStarted", "MapRunSucceeded",
        "MapStateSucceeded", "MapStateExited", "ExecutionSucceeded"], [e["type"] for e in events]
    assert events[2]["mapStateStartedEventDetails"] == {"length": 0}
    run_arn = events[3]["mapRunStartedEventDetails"]["mapRunArn"]
    assert run_arn.startswith("arn:aws:states:us-east-1:123456789012:mapRun:fanout/Fan:"), run_arn

    runs = sfn.list_map_runs(executionArn=ex)["mapRuns"]
    assert [(r["mapRunArn"], r["executionArn"], r["stateMachineArn"]) for r in runs] == [(run_arn, ex, arn + "/Fan")]
    described = sfn.describe_map_run(mapRunArn=run_arn)
    assert (described["status"], described["maxConcurrency"], described["toleratedFailureCount"]) == ("SUCCEEDED", 2, 1)
    want = {"pending": 0, "running": 0, "succeeded": 2, "failed": 1, "timedOut": 0, "aborted": 0, "total": 3}
    for counts in (described["executionCounts"], described["itemCounts"]):
        assert {k: counts[k] for k in want} == want, counts
    assert described["stopDate"] >= described["startDate"]

    children = sfn.list_executions(mapRunArn=run_arn)["executions"]
    assert sorted(c["status"] for c in children) == ["FAILED", "SUCCEEDED", "SUCCEEDED"], children
    assert all(c["mapRunArn"] == run_arn and c["itemCount"] == 1 and c["stateMachineArn"] == arn + "/Fan"
               for c in children), children
    failed = sfn.list_executions(mapRunArn=run_arn, statusFilter="FAILED")["executions"]
    child = sfn.describe_execution(executionArn=failed[0]["executionArn"])
    assert (child["mapRunArn"], child["error"], child["cause"], json.loads(child["input"])) == (
        run_arn, "Odd", "three", {"n": 3}), child
    assert child["redriveStatus"] == "REDRIVABLE_BY_MAP_RUN", child
    assert [e["type"] for e in history(sfn, child["executionArn"])] == [
        "ExecutionStarted", "ChoiceStateEntered", "ChoiceStateExited", "FailStateEntered", "ExecutionFailed"]
    machine_of = sfn.describe_state_machine_for_execution(executionArn=child["executionArn"])
    assert (machine_of["label"], machine_of["mapRunArn"], machine_of["stateMachineArn"]) == ("Fan", run_arn, arn + "/Fan")
    assert json.loads(machine_of["definition"])["StartAt"] == "Which"
    # A child is not one of its parent machine's executions.
    assert [e["executionArn"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]] == [ex]

    # Past its tolerance the Map Run fails, with Step Functions' threshold error.
    over = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": [{"n": 3}, {"n": 3}, {"n": 1}]}))["executionArn"]
    d = finish(sfn, over)
    assert (d["status"], d["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold"), d
    events = history(sfn, over)
    failed_run = next(e for e in events if e["type"] == "MapRunFailed")["mapRunFailedEventDetails"]
    assert failed_run == {"error": "States.ExceedToleratedFailureThreshold",
                          "cause": "The specified tolerated failure threshold was exceeded"}, failed_run
    over_run = sfn.list_map_runs(executionArn=over)["mapRuns"][0]["mapRunArn"]
    assert sfn.describe_map_run(mapRunArn=over_run)["status"] == "FAILED"

    for call, kwargs, error in [
        (sfn.describe_map_run, {"mapRunArn": run_arn + "-nope"}, "ResourceNotFound"),
        (sfn.describe_map_run, {"mapRunArn": "arn:aws:states:us-east-1:123456789012:execution:x:y"}, "InvalidArn"),
        (sfn.update_map_run, {"mapRunArn": run_arn, "maxConcurrency": 5}, "ValidationException"),
        (sfn.update_map_run, {"mapRunArn": run_arn, "toleratedFailurePercentage": 101}, "ValidationException"),
        (sfn.list_map_runs, {"executionArn": ex + "-nope"}, "ExecutionDoesNotExist"),
        (sfn.list_executions, {"mapRunArn": run_arn, "stateMachineArn": arn}, "ValidationException"),
        # A child is redriven through its parent.
        (sfn.redrive_execution, {"executionArn": failed[0]["executionArn"]}, "ExecutionNotRedrivable"),
    ]:
        with pytest.raises(ClientError) as e:
            call(**kwargs)
        assert code(e) == error, (call, kwargs, e.value.response)


def test_update_map_run_raises_a_running_map_runs_concurrency_at_once(start_nimbus):
    n = start_nimbus(SERVICES)
    sfn = n.client("stepfunctions")
    arn = sfn.create_state_machine(name="slow-fanout", roleArn=ROLE, definition=distributed(
        {"Hold": {"Type": "Wait", "Seconds": 4, "End": True}}, "Hold", MaxConcurrency=1))["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": [1, 2, 3]}))["executionArn"]
    run_arn = wait_until("the Map Run", lambda: sfn.list_map_runs(executionArn=ex)["mapRuns"], 10)[0]["mapRunArn"]
    counts = lambda: sfn.describe_map_run(mapRunArn=run_arn)["executionCounts"]  # noqa: E731
    first = poll(counts, lambda c: c["running"] == 1 and c["total"] == 3, 10)
    assert (first["running"], first["pending"]) == (1, 2), first
    sfn.update_map_run(mapRunArn=run_arn, maxConcurrency=3)
    # All three run at once well before the first child's 4 s wait ends.
    raised = poll(counts, lambda c: c["running"] == 3, 3)
    assert raised["running"] == 3, raised
    assert sfn.describe_map_run(mapRunArn=run_arn)["maxConcurrency"] == 3
    d = finish(sfn, ex)
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == [1, 2, 3], d


def test_a_map_run_cut_by_kill_9_goes_on_with_the_same_children(start_nimbus):
    n = start_nimbus(MAP_RESTART)
    sfn = n.client("stepfunctions")
    arn = sfn.create_state_machine(name="held-fanout", roleArn=ROLE, definition=distributed(
        {"First": {"Type": "Pass", "Next": "Hold"}, "Hold": {"Type": "Wait", "Seconds": 4, "Next": "Done"},
         "Done": {"Type": "Pass", "Parameters": {"done.$": "$"}, "End": True}}, "First"))["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": [1, 2, 3]}))["executionArn"]
    run_arn = wait_until("the Map Run", lambda: sfn.list_map_runs(executionArn=ex)["mapRuns"], 10)[0]["mapRunArn"]
    wait_until("three children waiting", lambda: all(
        "WaitStateEntered" in [e["type"] for e in history(sfn, c["executionArn"])]
        for c in sfn.list_executions(mapRunArn=run_arn)["executions"]) and len(
        sfn.list_executions(mapRunArn=run_arn)["executions"]) == 3, 10)
    n = killed_and_restarted(start_nimbus, n, MAP_RESTART)
    sfn = n.client("stepfunctions")
    d = finish(sfn, ex, timeout=30)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == [{"done": 1}, {"done": 2}, {"done": 3}]
    # The same three children went on; none started again, no event said twice.
    children = sfn.list_executions(mapRunArn=run_arn)["executions"]
    assert len(children) == 3 and {c["status"] for c in children} == {"SUCCEEDED"}, children
    for c in children:
        types = [e["type"] for e in history(sfn, c["executionArn"])]
        assert types.count("ExecutionStarted") == 1 and types.count("WaitStateEntered") == 1, types
        assert types[-1] == "ExecutionSucceeded", types
    types = [e["type"] for e in history(sfn, ex)]
    assert types.count("MapRunStarted") == 1 and types.count("MapRunSucceeded") == 1, types
    assert sfn.describe_map_run(mapRunArn=run_arn)["status"] == "SUCCEEDED"
    assert [r["mapRunArn"] for r in sfn.list_map_runs(executionArn=ex)["mapRuns"]] == [run_arn]


def test_stopping_an_execution_aborts_its_map_runs_children(start_nimbus):
    n = start_nimbus(SERVICES)
    sfn = n.client("stepfunctions")
    arn = sfn.create_state_machine(name="stopped-fanout", roleArn=ROLE, definition=distributed(
        {"Hold": {"Type": "Wait", "Seconds": 60, "End": True}}, "Hold"))["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": [1, 2]}))["executionArn"]
    run_arn = wait_until("the Map Run", lambda: sfn.list_map_runs(executionArn=ex)["mapRuns"], 10)[0]["mapRunArn"]
    wait_until("two children", lambda: len(sfn.list_executions(mapRunArn=run_arn)["executions"]) == 2, 10)
    sfn.stop_execution(executionArn=ex)
    assert sfn.describe_execution(executionArn=ex)["status"] == "ABORTED"
    children = sfn.list_executions(mapRunArn=run_arn)["executions"]
    assert [c["status"] for c in children] == ["ABORTED", "ABORTED"], children
    described = sfn.describe_map_run(mapRunArn=run_arn)
    assert described["status"] == "ABORTED" and described["executionCounts"]["aborted"] == 2, described

    # An execution that times out inside its distributed Map ends the run and its children too.
    timed = json.loads(distributed({"Hold": {"Type": "Wait", "Seconds": 60, "End": True}}, "Hold"))
    timed["TimeoutSeconds"] = 1
    arn = sfn.create_state_machine(name="timed-fanout", roleArn=ROLE, definition=json.dumps(timed))["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": [1]}))["executionArn"]
    assert finish(sfn, ex)["status"] == "TIMED_OUT"
    run_arn = sfn.list_map_runs(executionArn=ex)["mapRuns"][0]["mapRunArn"]
    described = poll(lambda: sfn.describe_map_run(mapRunArn=run_arn), lambda d: d["status"] != "RUNNING", 5)
    assert described["status"] == "ABORTED" and described["executionCounts"]["aborted"] == 1, described


def test_a_map_run_ends_its_nested_runs_and_one_dropped_by_its_parallel_is_aborted(start_nimbus):
    n = start_nimbus(SERVICES)
    sfn = n.client("stepfunctions")
    inner = json.loads(distributed({"Hold": {"Type": "Wait", "Seconds": 60, "End": True}}, "Hold"))["States"]["Fan"]
    inner["ItemsPath"] = "$.inner"
    arn = sfn.create_state_machine(name="nested-fanout", roleArn=ROLE, definition=distributed(
        {"Inner": inner}, "Inner"))["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": [{"inner": [1, 2]}]}))["executionArn"]
    run_arn = wait_until("the Map Run", lambda: sfn.list_map_runs(executionArn=ex)["mapRuns"], 10)[0]["mapRunArn"]
    child = wait_until("the child", lambda: sfn.list_executions(mapRunArn=run_arn)["executions"], 10)[0]["executionArn"]
    nested = wait_until("the child's own Map Run", lambda: sfn.list_map_runs(executionArn=child)["mapRuns"], 10)[0]["mapRunArn"]
    wait_until("two grandchildren", lambda: len(sfn.list_executions(mapRunArn=nested)["executions"]) == 2, 10)
    sfn.stop_execution(executionArn=ex)
    # Down the tree: the child, its run and the grandchildren end with the parent.
    assert sfn.describe_execution(executionArn=child)["status"] == "ABORTED"
    assert sfn.describe_map_run(mapRunArn=nested)["status"] == "ABORTED"
    assert [g["status"] for g in sfn.list_executions(mapRunArn=nested)["executions"]] == ["ABORTED", "ABORTED"]

    # A Parallel whose other branch fails drops the branch that runs a Map Run: the run is
    # aborted at once, while the execution goes on from the Parallel's Catch.
    branch = json.loads(distributed({"Hold": {"Type": "Wait", "Seconds": 60, "End": True}}, "Hold"))
    arn = sfn.create_state_machine(name="dropped-fanout", roleArn=ROLE, definition=definition({
        "Both": {"Type": "Parallel", "Next": "After", "Branches": [
            branch, {"StartAt": "Late", "States": {"Late": {"Type": "Wait", "Seconds": 1, "Next": "Boom"},
                                                   "Boom": {"Type": "Fail", "Error": "Boom"}}}],
                 "Catch": [{"ErrorEquals": ["Boom"], "Next": "After"}]},
        "After": {"Type": "Wait", "Seconds": 5, "End": True}}, "Both"))["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": [1]}))["executionArn"]
    run_arn = wait_until("the Map Run", lambda: sfn.list_map_runs(executionArn=ex)["mapRuns"], 10)[0]["mapRunArn"]
    described = poll(lambda: sfn.describe_map_run(mapRunArn=run_arn), lambda d: d["status"] != "RUNNING", 4)
    assert described["status"] == "ABORTED" and described["executionCounts"]["aborted"] == 1, described
    assert sfn.describe_execution(executionArn=ex)["status"] == "RUNNING"
    sfn.stop_execution(executionArn=ex)


def test_redriving_an_execution_redrives_its_failed_map_run_s_unsuccessful_children(start_nimbus):
    n = start_nimbus(SERVICES)
    sfn, ssm = n.client("stepfunctions"), n.client("ssm")
    arn = sfn.create_state_machine(name="flagged-fanout", roleArn=ROLE, definition=distributed({
        "Which": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 3, "Next": "Flag"}], "Default": "Done"},
        "Flag": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:ssm:getParameter",
                 "Parameters": {"Name": "/fanout/flag"}, "ResultSelector": {"flag.$": "$.Parameter.Value"}, "End": True},
        "Done": {"Type": "Pass", "Result": {"flag": "none"}, "End": True}}, "Which",
        # One at a time, in order: the failure cannot abort a sibling still running.
        MaxConcurrency=1))["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": [1, 2, 3]}))["executionArn"]
    assert finish(sfn, ex)["status"] == "FAILED"
    run_arn = sfn.list_map_runs(executionArn=ex)["mapRuns"][0]["mapRunArn"]
    before = {c["executionArn"]: c["status"] for c in sfn.list_executions(mapRunArn=run_arn)["executions"]}
    assert sorted(before.values()) == ["FAILED", "SUCCEEDED", "SUCCEEDED"], before

    ssm.put_parameter(Name="/fanout/flag", Value="up", Type="String")
    sfn.redrive_execution(executionArn=ex)
    d = finish(sfn, ex)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == [{"flag": "none"}, {"flag": "none"}, {"flag": "up"}]
    # The same run, redriven once: its failed child redriven, its succeeded ones left as they were.
    assert [r["mapRunArn"] for r in sfn.list_map_runs(executionArn=ex)["mapRuns"]] == [run_arn]
    described = sfn.describe_map_run(mapRunArn=run_arn)
    assert (described["status"], described["redriveCount"]) == ("SUCCEEDED", 1), described
    assert "redriveDate" in described and described["executionCounts"]["succeeded"] == 3, described
    after = sfn.list_executions(mapRunArn=run_arn)["executions"]
    assert {c["executionArn"] for c in after} == set(before) and {c["status"] for c in after} == {"SUCCEEDED"}
    for child, status in before.items():
        redriven = sfn.describe_execution(executionArn=child)["redriveCount"]
        assert redriven == (1 if status == "FAILED" else 0), (child, status, redriven)
    events = history(sfn, ex)
    redrive = next(e for e in events if e["type"] == "MapRunRedriven")["mapRunRedrivenEventDetails"]
    assert redrive == {"mapRunArn": run_arn, "redriveCount": 1}, redrive
    types = [e["type"] for e in events]
    assert types.count("MapRunStarted") == 1 and types[-2:] == ["MapStateExited", "ExecutionSucceeded"], types


def test_a_redrive_reopens_the_run_of_the_failed_attempt_and_a_retry_after_it_starts_a_new_one(start_nimbus):
    n = start_nimbus(SERVICES)
    sfn, ssm = n.client("stepfunctions"), n.client("ssm")
    fan = json.loads(distributed({
        "Flag": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:ssm:getParameter",
                 "Parameters": {"Name": "/retried/flag"}, "ResultSelector": {"flag.$": "$.Parameter.Value"},
                 "End": True}}, "Flag"))
    fan["States"]["Fan"]["Retry"] = [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"],
                                      "IntervalSeconds": 1, "MaxAttempts": 1}]
    arn = sfn.create_state_machine(name="retried-fanout", roleArn=ROLE, definition=json.dumps(fan))["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": [1]}))["executionArn"]
    assert finish(sfn, ex)["status"] == "FAILED"
    runs = lambda: [r["mapRunArn"] for r in sfn.list_map_runs(executionArn=ex)["mapRuns"]]  # noqa: E731
    first, retried = runs()
    # Redriven while the flag is still missing: the failed attempt's run (the retry's) is
    # redriven once, and the state's own retry after it starts a run of its own.
    sfn.redrive_execution(executionArn=ex)
    assert finish(sfn, ex)["status"] == "FAILED"
    assert runs()[:2] == [first, retried] and len(runs()) == 3, runs()
    third = runs()[2]
    counts = {a: sfn.describe_map_run(mapRunArn=a)["redriveCount"] for a in runs()}
    assert counts == {first: 0, retried: 1, third: 0}, counts
    ssm.put_parameter(Name="/retried/flag", Value="up", Type="String")
    sfn.redrive_execution(executionArn=ex)
    d = finish(sfn, ex)
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == [{"flag": "up"}], d
    assert len(runs()) == 3 and sfn.describe_map_run(mapRunArn=third)["redriveCount"] == 1
