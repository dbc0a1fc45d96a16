"""Versions, aliases and gradual deployments through boto3: PublishVersion snapshots, weighted
aliases measured over 2,000 invocations, RevisionId checks, UpdateFunctionCode with a zip,
AutoPublishAlias (event sources invoke the alias), and CodeDeploy deployments from
DeploymentPreference: a good linear one with a PreTraffic hook completes, a bad canary is rolled
back by its Errors alarm, a failing or silent hook stops it before traffic moves, and a restart
mid-deployment rolls it back. Lambda's and CodeDeploy's error codes for bad input."""

import io
import json
import subprocess
import time
import zipfile

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import NIMBUS, wait_until

APP = '''
import json, os
def handler(event, context):
    out = {"version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"], "v": os.environ.get("VARIANT"),
           "code": "one", "arn": context.invoked_function_arn}
    if os.environ.get("CALLS"):
        with open(os.environ["CALLS"], "a") as f:
            f.write(json.dumps(out) + "\\n")
    return out
'''

PLAIN = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Runtime: python3.12, CodeUri: src, Handler: app.handler, Timeout: 10}
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Environment: {Variables: {VARIANT: one}}
"""


def calls_of(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def err(call):
    try:
        call()
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
    return 200, None


def invoke(lam, qualifier=None):
    kw = {"Qualifier": qualifier} if qualifier else {}
    r = lam.invoke(FunctionName="F", Payload=b"{}", **kw)
    return r.get("ExecutedVersion"), json.loads(r["Payload"].read())


def test_versions_are_snapshots_and_a_weighted_alias_splits_traffic(start_nimbus):
    n = start_nimbus(PLAIN, {"src/app.py": APP})
    lam = n.lambda_client()
    v1 = lam.publish_version(FunctionName="F", Description="first")
    assert (v1["Version"], v1["Description"]) == ("1", "first")
    assert v1["FunctionArn"].endswith(":function:F:1") and v1["CodeSha256"]
    # Nothing changed: the newest version is the answer, as on Lambda.
    assert lam.publish_version(FunctionName="F")["Version"] == "1"
    lam.update_function_configuration(FunctionName="F", Environment={"Variables": {"VARIANT": "two"}})
    assert lam.publish_version(FunctionName="F")["Version"] == "2"
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName="F")["Versions"]]
    assert versions == ["$LATEST", "1", "2"]
    # Each version keeps its configuration; $LATEST is the working copy.
    assert invoke(lam, "1") == ("1", {"version": "1", "v": "one", "code": "one", "arn": v1["FunctionArn"]})
    assert invoke(lam, "2")[1]["v"] == "two"
    assert invoke(lam)[0] == "$LATEST"

    alias = lam.create_alias(FunctionName="F", Name="live", FunctionVersion="1",
                             RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    assert alias["AliasArn"].endswith(":function:F:live")
    counts, wrong = {"1": 0, "2": 0}, []
    for _ in range(2000):
        executed, body = invoke(lam, "live")
        counts[executed] += 1
        if body["version"] != executed or body["v"] != {"1": "one", "2": "two"}[executed] \
                or not body["arn"].endswith(":F:live"):
            wrong.append((executed, body))
    # 2,000 draws at 0.1: mean 200, standard deviation 13.4; +-50 is beyond 3.7 sigma.
    assert 150 <= counts["2"] <= 250, counts
    assert not wrong, wrong[:3]
    listed = lam.list_aliases(FunctionName="F")["Aliases"]
    assert [(a["Name"], a["FunctionVersion"], a["RoutingConfig"]["AdditionalVersionWeights"]) for a in listed] \
        == [("live", "1", {"2": 0.1})]
    # The version's log stream names it, as Lambda's `[1]` streams do.
    streams = n.client("logs").describe_log_streams(logGroupName="/aws/lambda/F")["logStreams"]
    assert any("]" in s["logStreamName"] and "[1]" in s["logStreamName"] for s in streams)


def zipped(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def test_update_function_code_with_a_zip_leaves_published_versions_alone(start_nimbus):
    n = start_nimbus(PLAIN, {"src/app.py": APP})
    lam = n.lambda_client()
    assert lam.publish_version(FunctionName="F")["Version"] == "1"
    before = lam.get_function(FunctionName="F")["Configuration"]
    out = lam.update_function_code(FunctionName="F", ZipFile=zipped({"app.py": APP.replace('"one"', '"two"')}))
    assert out["RevisionId"] != before["RevisionId"] and out["CodeSha256"] != before["CodeSha256"]
    assert invoke(lam)[1]["code"] == "two"
    assert invoke(lam, "1")[1]["code"] == "one"
    published = lam.update_function_code(FunctionName="F", ZipFile=zipped({"app.py": APP.replace('"one"', '"three"')}),
                                         Publish=True)
    assert published["Version"] == "2"
    assert invoke(lam, "2")[1]["code"] == "three"
    # A stale RevisionId is refused; the current one is taken.
    current = lam.get_function_configuration(FunctionName="F")["RevisionId"]
    assert err(lambda: lam.update_function_configuration(FunctionName="F", MemorySize=256,
                                                         RevisionId=before["RevisionId"])) \
        == (412, "PreconditionFailedException")
    assert lam.update_function_configuration(FunctionName="F", MemorySize=256, RevisionId=current)["MemorySize"] == 256


BAD = [
    ("weights over 1", lambda l: l.create_alias(FunctionName="F", Name="a", FunctionVersion="1",
                                                 RoutingConfig={"AdditionalVersionWeights": {"2": 1.5}}),
     (400, "ValidationException")),
    ("two additional versions", lambda l: l.create_alias(FunctionName="F", Name="a", FunctionVersion="1",
                                                          RoutingConfig={"AdditionalVersionWeights": {"2": 0.1, "3": 0.1}}),
     (400, "InvalidParameterValueException")),
    ("$LATEST with weights", lambda l: l.create_alias(FunctionName="F", Name="a", FunctionVersion="$LATEST",
                                                       RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}}),
     (400, "InvalidParameterValueException")),
    ("the primary version as additional", lambda l: l.create_alias(
        FunctionName="F", Name="a", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}}),
     (400, "InvalidParameterValueException")),
    ("an alias to a missing version", lambda l: l.create_alias(FunctionName="F", Name="a", FunctionVersion="9"),
     (404, "ResourceNotFoundException")),
    ("a numeric alias name", lambda l: l.create_alias(FunctionName="F", Name="12", FunctionVersion="1"),
     (400, "ValidationException")),
    ("an alias that exists", lambda l: l.create_alias(FunctionName="F", Name="live", FunctionVersion="1"),
     (409, "ResourceConflictException")),
    ("a stale alias RevisionId", lambda l: l.update_alias(FunctionName="F", Name="live", Description="x",
                                                          RevisionId="0d1e5f4e-0000-0000-0000-000000000000"),
     (412, "PreconditionFailedException")),
    ("deleting a version an alias uses", lambda l: l.delete_function(FunctionName="F", Qualifier="1"),
     (409, "ResourceConflictException")),
    ("invoking a missing alias", lambda l: l.invoke(FunctionName="F", Qualifier="nope"),
     (404, "ResourceNotFoundException")),
    ("invoking a missing version", lambda l: l.invoke(FunctionName="F:7"), (404, "ResourceNotFoundException")),
    ("qualifiers that disagree", lambda l: l.invoke(FunctionName="F:1", Qualifier="2"),
     (400, "InvalidParameterValueException")),
    ("a wrong CodeSha256", lambda l: l.publish_version(FunctionName="F", CodeSha256="bm90IGl0"),
     (400, "InvalidParameterValueException")),
    ("reserving beyond the account", lambda l: l.put_function_concurrency(FunctionName="F", ReservedConcurrentExecutions=950),
     (400, "InvalidParameterValueException")),
    ("an invalid environment variable name", lambda l: l.update_function_configuration(
        FunctionName="F", Environment={"Variables": {"1X": "y"}}), (400, "ValidationException")),
    ("a reserved environment variable", lambda l: l.update_function_configuration(
        FunctionName="F", Environment={"Variables": {"AWS_REGION": "x"}}), (400, "InvalidParameterValueException")),
    ("a zip that is not one", lambda l: l.update_function_code(FunctionName="F", ZipFile=b"not a zip"),
     (400, "InvalidParameterValueException")),
]


@pytest.mark.parametrize("what,call,want", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_lambdas_errors(start_nimbus, what, call, want):
    n = start_nimbus(PLAIN, {"src/app.py": APP})
    lam = n.lambda_client()
    lam.publish_version(FunctionName="F")
    lam.update_function_configuration(FunctionName="F", Description="2")
    lam.update_function_configuration(FunctionName="F", Timeout=11)
    lam.publish_version(FunctionName="F")
    lam.create_alias(FunctionName="F", Name="live", FunctionVersion="1")
    assert err(lambda: call(lam)) == want, what


def test_function_concurrency_round_trip(start_nimbus):
    n = start_nimbus(PLAIN, {"src/app.py": APP})
    lam = n.lambda_client()
    assert lam.put_function_concurrency(FunctionName="F", ReservedConcurrentExecutions=0)["ReservedConcurrentExecutions"] == 0
    assert lam.get_function_concurrency(FunctionName="F")["ReservedConcurrentExecutions"] == 0
    # Reserved 0 throttles every invoke, with Lambda's reason.
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName="F", Payload=b"{}")
    assert e.value.response["Error"]["Code"] == "TooManyRequestsException"
    lam.delete_function_concurrency(FunctionName="F")
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="F")
    assert invoke(lam)[0] == "$LATEST"


AUTO = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties: {QueueName: auto-q}
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: app.handler
      AutoPublishAlias: live
      Environment: {Variables: {CALLS: "%s"}}
      Events:
        FromQueue:
          Type: SQS
          Properties: {Queue: !GetAtt Q.Arn, BatchSize: 1}
Outputs:
  Alias:
    Value: !Ref F.Alias
"""


def test_auto_publish_alias_publishes_on_change_and_event_sources_invoke_the_alias(start_nimbus, calls):
    n = start_nimbus(AUTO % calls, {"src/app.py": APP})
    lam, sqs = n.lambda_client(), n.client("sqs")
    n.wait_for("nimbus: F version 1, alias live -> 1")
    url = sqs.get_queue_url(QueueName="auto-q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    got = wait_until("the queue's invocation", lambda: calls_of(calls) or None)
    assert got[0]["version"] == "1" and got[0]["arn"].endswith(":function:F:live"), got
    n.stop()
    # Unchanged: a restart publishes nothing new.
    n = start_nimbus(AUTO % calls)
    assert [v["Version"] for v in n.lambda_client().list_versions_by_function(FunctionName="F")["Versions"]] \
        == ["$LATEST", "1"]
    assert not any("version 2" in line for line in n.lines)
    n.stop()
    # Changed code: version 2, and the alias moves (no DeploymentPreference: at once).
    n = start_nimbus(AUTO % calls, {"src/app.py": APP.replace('"one"', '"two"')})
    n.wait_for("nimbus: F version 2 published; alias live -> 2 (was 1)")
    executed, body = invoke(n.lambda_client(), "live")
    assert (executed, body["code"]) == ("2", "two")
    assert invoke(n.lambda_client(), "1")[1]["code"] == "one"


HOOK = '''
import boto3, os
def handler(event, context):
    status = os.environ["HOOK_STATUS"]
    if status != "silent":
        boto3.client("codedeploy").put_lifecycle_event_hook_execution_status(
            deploymentId=event["DeploymentId"],
            lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
            status=status)
    return status
'''

BAD_CODE = '''
def handler(event, context):
    raise RuntimeError("the bad version")
'''


def deploying(kind, hook_status=None, alarm=True):
    hooks = "" if hook_status is None else "\n        Hooks: {PreTraffic: !Ref PreHook}"
    alarms = "\n        Alarms: [!Ref Errors]" if alarm else ""
    hook_fn = "" if hook_status is None else f"""
  PreHook:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: hook
      Handler: hook.handler
      Timeout: 10
      Environment: {{Variables: {{HOOK_STATUS: {hook_status}}}}}"""
    return f"""
Transform: AWS::Serverless-2016-10-31
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: app.handler
      Timeout: 10
      AutoPublishAlias: live
      DeploymentPreference:
        Type: {kind}{alarms}{hooks}{hook_fn}
  Errors:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/Lambda
      MetricName: Errors
      Dimensions: [{{Name: FunctionName, Value: !Ref F}}]
      Statistic: Sum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
"""


def codedeploy_of(n):
    return n.client("codedeploy")


def deployment(n):
    cd = codedeploy_of(n)
    ids = wait_until("a deployment", lambda: cd.list_deployments()["deployments"] or None, 30)
    return ids[0]


def finished(n, dep_id, timeout=60):
    cd = codedeploy_of(n)
    return wait_until(f"deployment {dep_id} to finish", lambda: (
        lambda d: d if d["status"] in ("Succeeded", "Failed", "Stopped") else None)(
        cd.get_deployment(deploymentId=dep_id)["deploymentInfo"]), timeout)


@pytest.mark.parametrize("kind,shifts", [("Linear10PercentEvery1Minute", 10), ("Canary10Percent5Minutes", 2),
                                          ("AllAtOnce", 1)])
def test_a_good_deployment_with_a_good_hook_completes_on_restart(start_nimbus, kind, shifts):
    files = {"src/app.py": APP, "hook/hook.py": HOOK}
    start_nimbus(deploying(kind, "Succeeded"), files).stop()
    n = start_nimbus(deploying(kind, "Succeeded"),
                     {"src/app.py": APP.replace('"one"', '"two"')}, args=["--delay-scale", "0.003"])
    d = finished(n, deployment(n))
    assert d["status"] == "Succeeded", d
    assert d["deploymentConfigName"] == f"CodeDeployDefault.Lambda{kind}"
    a = n.lambda_client().get_alias(FunctionName="F", Name="live")
    assert (a["FunctionVersion"], a.get("RoutingConfig")) == ("2", None)
    assert invoke(n.lambda_client(), "live")[1]["code"] == "two"
    # Each shift is logged.
    assert sum("traffic shifted" in line for line in n.lines) == shifts


def test_nimbus_deploy_rebuilds_releases_and_follows_the_deployment(start_nimbus, tmp_path):
    n = start_nimbus(deploying("Canary10Percent5Minutes"), {"src/app.py": APP}, args=["--delay-scale", "0.002"])
    (tmp_path / "src" / "app.py").write_text(APP.replace('"one"', '"two"'))
    out = subprocess.run([str(NIMBUS), "deploy", "F", "--endpoint-url", n.endpoint],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out
    assert "F version 2 published; deployment d-" in out.stdout and ": Succeeded" in out.stdout, out.stdout
    executed, body = invoke(n.lambda_client(), "live")
    assert (executed, body["code"]) == ("2", "two")
    # Nothing changed: nothing to deploy.
    again = subprocess.run([str(NIMBUS), "deploy", "F", "--endpoint-url", n.endpoint],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "unchanged, alias live is version 2" in again.stdout, again
    missing = subprocess.run([str(NIMBUS), "deploy", "Nope", "--endpoint-url", n.endpoint],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and 'no function "Nope"' in missing.stderr, missing


def test_a_bad_canary_is_rolled_back_by_its_alarm_under_watch(start_nimbus, tmp_path):
    n = start_nimbus(deploying("Canary10Percent5Minutes"), {"src/app.py": APP},
                     args=["--watch", "--delay-scale", "0.01"])
    n.wait_for("nimbus: watching")
    lam = n.lambda_client()
    assert invoke(lam, "live")[0] == "1"
    (tmp_path / "src" / "app.py.new").write_text(BAD_CODE)
    (tmp_path / "src" / "app.py.new").rename(tmp_path / "src" / "app.py")
    dep_id = deployment(n)
    samples = []
    deadline = time.time() + 60
    while time.time() < deadline:
        r = lam.invoke(FunctionName="F", Qualifier="live", Payload=b"{}")
        samples.append((time.time(), r["ExecutedVersion"], r.get("FunctionError")))
        d = codedeploy_of(n).get_deployment(deploymentId=dep_id)["deploymentInfo"]
        if d["status"] != "InProgress":
            break
    assert d["status"] == "Failed", d
    assert d["errorInformation"]["code"] == "ALARM_ACTIVE" and "Errors" in d["errorInformation"]["message"]
    assert "rollbackInfo" in d
    assert any(v == "2" for _, v, _ in samples), "the canary should have taken some traffic"
    a = lam.get_alias(FunctionName="F", Name="live")
    assert (a["FunctionVersion"], a.get("RoutingConfig")) == ("1", None)
    # After the rollback only version 1 answers.
    after = [invoke(lam, "live") for _ in range(50)]
    assert all(v == "1" and b["code"] == "one" for v, b in after)
    # The dashboard's timeline: the alias's share on version 2 went to 10% and back to 0.
    listed = requests.get(f"{n.endpoint}/_nimbus/api/deployments", timeout=10).json()["deployments"]
    mine = next(x for x in listed if x["id"] == dep_id)
    assert [w["weight"] for w in mine["weights"]] == [0, 0.1, 0] and mine["rolled_back"], mine
    out = subprocess.run([str(NIMBUS), "deployments", "--endpoint-url", n.endpoint],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and dep_id in out.stdout and "rolled back to version 1" in out.stdout, out


@pytest.mark.parametrize("status,reason", [("Failed", "reported Failed"), ("silent", "did not report")])
def test_a_failing_or_silent_pretraffic_hook_stops_the_deployment_before_traffic_moves(start_nimbus, status, reason):
    files = {"src/app.py": APP, "hook/hook.py": HOOK}
    start_nimbus(deploying("Canary10Percent5Minutes", status), files).stop()
    # One hour of hook timeout at 0.001 is 3.6 s.
    n = start_nimbus(deploying("Canary10Percent5Minutes", status), {"src/app.py": APP.replace('"one"', '"two"')},
                     args=["--delay-scale", "0.001"])
    d = finished(n, deployment(n))
    assert (d["status"], d["errorInformation"]["code"]) == ("Failed", "HOOK_EXECUTION_FAILURE"), d
    assert reason in d["errorInformation"]["message"]
    assert not any("traffic shifted" in line for line in n.lines)
    assert invoke(n.lambda_client(), "live")[0] == "1"


def test_a_hook_reporting_twice_or_for_another_deployment_is_refused(start_nimbus):
    n = start_nimbus(PLAIN, {"src/app.py": APP})
    cd = codedeploy_of(n)
    assert err(lambda: cd.get_deployment(deploymentId="d-NOPE12345")) == (400, "DeploymentDoesNotExistException")
    assert err(lambda: cd.put_lifecycle_event_hook_execution_status(
        deploymentId="d-NOPE12345", lifecycleEventHookExecutionId="x", status="Succeeded")) \
        == (400, "DeploymentDoesNotExistException")


def test_a_restart_mid_deployment_rolls_it_back(start_nimbus):
    files = {"src/app.py": APP}
    start_nimbus(deploying("Canary10Percent30Minutes", alarm=False), files).stop()
    # 30 minutes at 0.01 is 18 s of canary: time to kill nimbus in the middle of it.
    n = start_nimbus(deploying("Canary10Percent30Minutes", alarm=False), {"src/app.py": APP.replace('"one"', '"two"')},
                     args=["--delay-scale", "0.01"])
    dep_id = deployment(n)
    n.wait_for("traffic shifted")
    n.proc.kill()
    n.proc.wait()
    n = start_nimbus(deploying("Canary10Percent30Minutes", alarm=False), {}, args=["--delay-scale", "0.01"])
    n.wait_for("1 deployment(s) running when nimbus stopped were rolled back")
    d = codedeploy_of(n).get_deployment(deploymentId=dep_id)["deploymentInfo"]
    assert (d["status"], d["errorInformation"]["code"]) == ("Stopped", "DEPLOYMENT_STOPPED"), d
    # The template still wants version 2: its deployment starts again, from version 1.
    again = [i for i in codedeploy_of(n).list_deployments()["deployments"] if i != dep_id]
    assert len(again) == 1, again


@pytest.mark.parametrize("preference,message", [
    ("{Type: AllAtOnce}", "'DeploymentPreference' needs 'AutoPublishAlias'"),
    ("{Type: Canary5Percent1Minute}", "neither a predefined configuration"),
    ("{Type: AllAtOnce, Alarms: [NoSuchAlarm]}", "is not an AWS::CloudWatch::Alarm of the template"),
])
def test_a_bad_deployment_preference_stops_start_up_naming_the_property(tmp_path, preference, message):
    alias = "" if "AutoPublishAlias" in message else "\n      AutoPublishAlias: live"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(APP)
    (tmp_path / "template.yaml").write_text(f"""
Transform: AWS::Serverless-2016-10-31
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: app.handler{alias}
      DeploymentPreference: {preference}
""")
    for command in (["up", str(tmp_path / "template.yaml"), "--aws-port", "0"],
                    ["validate", str(tmp_path / "template.yaml")]):
        out = subprocess.run([str(NIMBUS), *command], capture_output=True, text=True, timeout=60)
        assert out.returncode != 0, command
        assert "Resources.F.Properties.DeploymentPreference" in out.stderr and message in out.stderr, out.stderr


PROVISIONED = """
Transform: AWS::Serverless-2016-10-31
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: app.handler
      AutoPublishAlias: live
      ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: 2}
"""

INIT_TYPE = APP.replace('"code": "one",', '"code": "one", "init": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],')


def test_provisioned_concurrency_is_the_aliases_and_follows_the_api(start_nimbus):
    n = start_nimbus(PROVISIONED, {"src/app.py": INIT_TYPE})
    lam = n.lambda_client()
    cfg = lam.get_provisioned_concurrency_config(FunctionName="F", Qualifier="live")
    assert (cfg["RequestedProvisionedConcurrentExecutions"], cfg["AvailableProvisionedConcurrentExecutions"],
            cfg["Status"]) == (2, 2, "READY"), cfg
    # The alias's invocations take the warm environments; $LATEST's start on demand.
    assert invoke(lam, "live")[1]["init"] == "provisioned-concurrency"
    assert invoke(lam)[1]["init"] == "on-demand"
    assert err(lambda: lam.put_provisioned_concurrency_config(
        FunctionName="F", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1)) == (400, "InvalidParameterValueException")
    assert err(lambda: lam.put_provisioned_concurrency_config(
        FunctionName="F", Qualifier="nope", ProvisionedConcurrentExecutions=1)) == (404, "ResourceNotFoundException")
    put = lam.put_provisioned_concurrency_config(FunctionName="F", Qualifier="1", ProvisionedConcurrentExecutions=1)
    assert put["RequestedProvisionedConcurrentExecutions"] == 1
    wait_until("version 1's own config to be ready", lambda: lam.get_provisioned_concurrency_config(
        FunctionName="F", Qualifier="1")["Status"] == "READY" or None)
    lam.delete_provisioned_concurrency_config(FunctionName="F", Qualifier="1")
    assert err(lambda: lam.get_provisioned_concurrency_config(FunctionName="F", Qualifier="1")) \
        == (404, "ProvisionedConcurrencyConfigNotFoundException")


CFN = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties: {QueueName: cfn-q}
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: app.handler
      Environment: {Variables: {CALLS: "%s"}}
  V:
    Type: AWS::Lambda::Version
    Properties: {FunctionName: !Ref F, Description: from the template}
  Prod:
    Type: AWS::Lambda::Alias
    Properties: {FunctionName: !Ref F, FunctionVersion: !GetAtt V.Version, Name: prod}
  M:
    Type: AWS::Lambda::EventSourceMapping
    Properties: {FunctionName: !Ref Prod, EventSourceArn: !GetAtt Q.Arn, BatchSize: 1}
"""


def test_cloudformation_versions_and_aliases_are_published_once_and_served(start_nimbus, calls):
    n = start_nimbus(CFN % calls, {"src/app.py": APP})
    lam, sqs = n.lambda_client(), n.client("sqs")
    n.wait_for("nimbus: F alias prod -> 1")
    assert invoke(lam, "prod")[0] == "1"
    # The version's Ref names its logical id as the qualifier: served as the version.
    assert invoke(lam, "V")[0] == "1"
    assert lam.get_function(FunctionName="F", Qualifier="1")["Configuration"]["Description"] == "from the template"
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="cfn-q")["QueueUrl"], MessageBody="m")
    got = wait_until("the mapping's invocation", lambda: calls_of(calls) or None)
    assert got[0]["version"] == "1" and got[0]["arn"].endswith(":function:F:prod"), got
    n.stop()
    # CloudFormation publishes a version resource once: changed code does not move it.
    n = start_nimbus(CFN % calls, {"src/app.py": APP.replace('"one"', '"two"')})
    n.wait_for("nimbus: F alias prod -> 1")
    assert invoke(n.lambda_client(), "prod")[1]["code"] == "one"
    assert invoke(n.lambda_client())[1]["code"] == "two"


FAILING = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Failed:
    Type: AWS::SQS::Queue
    Properties: {QueueName: failed-q}
  F:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: app.handler
      AutoPublishAlias: live
"""


def test_event_invoke_config_of_an_alias_sends_its_failures_where_it_says(start_nimbus):
    n = start_nimbus(FAILING, {"src/app.py": BAD_CODE}, args=["--delay-scale", "0.01"])
    lam, sqs = n.lambda_client(), n.client("sqs")
    url = sqs.get_queue_url(QueueName="failed-q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert err(lambda: lam.get_function_event_invoke_config(FunctionName="F", Qualifier="live")) \
        == (404, "ResourceNotFoundException")
    put = lam.put_function_event_invoke_config(
        FunctionName="F", Qualifier="live", MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    assert put["FunctionArn"].endswith(":function:F:live") and put["MaximumRetryAttempts"] == 0
    assert put["DestinationConfig"]["OnFailure"]["Destination"] == queue_arn
    updated = lam.update_function_event_invoke_config(FunctionName="F", Qualifier="live", MaximumEventAgeInSeconds=600)
    assert (updated["MaximumRetryAttempts"], updated["MaximumEventAgeInSeconds"]) == (0, 600)
    listed = lam.list_function_event_invoke_configs(FunctionName="F")["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"].rsplit(":", 1)[1] for c in listed] == ["live"]
    assert err(lambda: lam.put_function_event_invoke_config(
        FunctionName="F", Qualifier="live", DestinationConfig={"OnFailure": {"Destination": "arn:aws:s3:::nope"}})) \
        == (400, "InvalidParameterValueException")
    # An event through the alias fails once (no retries) and its record reaches the queue.
    lam.invoke(FunctionName="F", Qualifier="live", InvocationType="Event", Payload=b'{"n": 1}')
    msgs = wait_until("the failure record", lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"), 30)
    record = json.loads(msgs[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted" and record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestContext"]["functionArn"].endswith(":function:F:live"), record["requestContext"]
    lam.delete_function_event_invoke_config(FunctionName="F", Qualifier="live")
    assert lam.list_function_event_invoke_configs(FunctionName="F")["FunctionEventInvokeConfigs"] == []
