"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core
from tests/browser; scripts/test.sh installs both): it loads with no console errors, the
service map shows every function, a fresh invocation and its REPORT line appear within
seconds, a trace opens in the waterfall, and a state machine's execution shows its path on
the State machines view (a distributed Map's Map Run its child executions), a bucket's object previews on the Buckets view, and a table's items
scan and query on the Tables view, a topic's subscription and counts on the Topics view, and
parameters and secrets by name (never a secret's value) on the Config view. Screenshots go to
<target>/dashboard-screenshots."""

import os
import subprocess

from conftest import ROOT, TARGET
from test_dashboard_api import APP, TEMPLATE

ALARM = """
  WorkerErrors:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/Lambda
      MetricName: Errors
      Dimensions: [{Name: FunctionName, Value: !Ref Worker}]
      Statistic: Sum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 1
      ComparisonOperator: GreaterThanOrEqualToThreshold
      TreatMissingData: notBreaching
"""

# Pass -> Choice -> Succeed / Fail: the browser test runs it once ({"ok": true} succeeds).
STATE_MACHINE = """
  Checkout:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: checkout
      Type: STANDARD
      Definition:
        StartAt: Prepare
        States:
          Prepare:
            Type: Pass
            Parameters: {"ok.$": "$.ok", "order.$": "$.order", "checked": true}
            Next: IsOk
          IsOk:
            Type: Choice
            Choices:
              - {Variable: "$.ok", BooleanEquals: true, Next: Done}
            Default: Rejected
          Done:
            Type: Succeed
          Rejected:
            Type: Fail
            Error: Rejected
            Cause: the order is not ok
  Fanout:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: fanout
      Definition:
        StartAt: Each
        States:
          Each:
            Type: Map
            ItemsPath: $.items
            End: true
            ItemProcessor:
              ProcessorConfig: {Mode: DISTRIBUTED, ExecutionType: STANDARD}
              StartAt: Twice
              States:
                Twice: {Type: Pass, Parameters: {"n.$": "States.MathAdd($, $)"}, End: true}
"""


BUCKET = """
  Files:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: files
"""

TOPIC = """
  Alerts:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: alerts
      Subscription:
        - {Protocol: sqs, Endpoint: !GetAtt AlertsQueue.Arn}
  AlertsQueue:
    Type: AWS::SQS::Queue
    Properties: {QueueName: alerts-q}
"""

TABLE = """
  Cars:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: cars
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: sk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]
"""


def test_the_dashboard_shows_the_stack_invocations_logs_and_traces_in_chromium(start_nimbus):
    n = start_nimbus(TEMPLATE + ALARM + STATE_MACHINE + BUCKET + TABLE + TOPIC, {"src/app.py": APP}, args=["--delay-scale", "0.05"])
    n.client("sns").publish(TopicArn="arn:aws:sns:us-east-1:123456789012:alerts", Message="hello")
    n.client("ssm").put_parameter(Name="/dashboard/param", Value="not-secret", Type="String")
    secret_value = "s3cr3t-value-never-shown"
    n.client("secretsmanager").create_secret(Name="dashboard-secret", SecretString=secret_value)
    ddb = n.client("dynamodb")
    for i in range(6):
        ddb.put_item(TableName="cars", Item={"pk": {"S": f"car#{i % 2}"}, "sk": {"S": f"v#{i}"}, "price": {"N": str(100 + i)}})
    s3 = n.client("s3")
    s3.put_object(Bucket="files", Key="notes/readme.txt", Body=b"hello from S3\n", ContentType="text/plain",
                  Metadata={"owner": "browser-test"})
    s3.put_object(Bucket="files", Key="data.bin", Body=b"\0" * 100)
    shots = TARGET / "dashboard-screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, NIMBUS_ENDPOINT=n.endpoint, NIMBUS_FUNCTION="Worker",
               NIMBUS_STATE_MACHINE="checkout", NIMBUS_FANOUT_MACHINE="fanout", NIMBUS_BUCKET="files", NIMBUS_TABLE="cars",
               NIMBUS_TOPIC="alerts", NIMBUS_SECRET_VALUE=secret_value,
               SCREENSHOT_DIR=str(shots))
    out = subprocess.run(["node", str(ROOT / "tests" / "browser" / "dashboard.mjs")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert " 0 failed" in out.stdout, out.stdout
    assert (shots / "overview.png").exists() or any(shots.glob("*.png")), list(shots.iterdir())
