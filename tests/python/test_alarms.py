"""CloudWatch alarms on nimbus's metrics: a failing function trips its `Errors` alarm, the
`CloudWatch Alarm State Change` event reaches a rule on the default bus, and bad alarm
definitions stop start-up naming the property. Periods are scaled with --delay-scale (60 s
periods take 1.2 s)."""

import json

from conftest import poll
from test_events import APP, refused_start_up, template

ALARMED = """
  Failing:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          MODE: fail
  FailingErrors:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: failing-errors
      AlarmDescription: Failing's errors
      Namespace: AWS/Lambda
      MetricName: Errors
      Dimensions:
        - Name: FunctionName
          Value: !Ref Failing
      Statistic: Sum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 1
      ComparisonOperator: GreaterThanOrEqualToThreshold
      TreatMissingData: notBreaching
  NotComputed:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/Lambda
      MetricName: ProvisionedConcurrencySpilloverInvocations
      Dimensions: [{Name: FunctionName, Value: !Ref Failing}]
      Statistic: Sum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 1
      ComparisonOperator: GreaterThanThreshold
  AlarmEvents:
    Type: AWS::SQS::Queue
  OnAlarm:
    Type: AWS::Events::Rule
    Properties:
      EventPattern:
        source: [aws.cloudwatch]
        detail-type: [CloudWatch Alarm State Change]
      Targets:
        - Id: ToQueue
          Arn: !GetAtt AlarmEvents.Arn
"""


def alarm_events(sqs, url):
    got = []
    r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    for m in r.get("Messages", []):
        got.append(json.loads(m["Body"]))
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def test_a_failing_function_trips_its_errors_alarm_and_the_state_change_reaches_a_rule(
        start_nimbus, calls):
    import requests

    n = start_nimbus(template(calls, ALARMED), {"src/app.py": APP}, args=["--delay-scale", "0.02"])
    n.wait_for("nimbus: alarm failing-errors on AWS/Lambda Errors Sum GreaterThanOrEqualToThreshold 1 (period 60 s)")
    sqs = n.client("sqs")
    url = sqs.get_queue_url(QueueName="AlarmEvents")["QueueUrl"]
    # No data is not breaching: the alarm settles in OK first.
    seen = []
    poll(lambda: seen.extend(alarm_events(sqs, url)) or seen,
         lambda s: any(e["detail"]["state"]["value"] == "OK" for e in s), timeout=15)
    assert [e["detail"]["state"]["value"] for e in seen][:1] == ["OK"], seen

    out = n.lambda_client().invoke(FunctionName="Failing", Payload=b'{"n": 1}')
    assert out["FunctionError"] == "Unhandled"
    poll(lambda: seen.extend(alarm_events(sqs, url)) or seen,
         lambda s: any(e["detail"]["state"]["value"] == "ALARM" for e in s), timeout=15)
    alarm = next(e for e in seen if e["detail"]["state"]["value"] == "ALARM")
    assert alarm["source"] == "aws.cloudwatch"
    assert alarm["detail-type"] == "CloudWatch Alarm State Change"
    assert alarm["resources"] == ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:failing-errors"]
    d = alarm["detail"]
    assert d["alarmName"] == "failing-errors"
    assert d["previousState"]["value"] == "OK"
    assert d["state"]["reason"].startswith(
        "Threshold Crossed: 1 out of the last 1 datapoints [1.0 ("), d["state"]["reason"]
    assert d["state"]["reason"].endswith(
        "was greater than or equal to the threshold (1.0) (minimum 1 datapoint for OK -> ALARM transition).")
    reason_data = json.loads(d["state"]["reasonData"])
    assert reason_data["recentDatapoints"] == [1.0]
    assert reason_data["statistic"] == "Sum" and reason_data["period"] == 60
    metric = d["configuration"]["metrics"][0]["metricStat"]
    assert metric["metric"] == {"namespace": "AWS/Lambda", "name": "Errors",
                                "dimensions": {"FunctionName": "Failing"}}
    assert d["configuration"]["description"] == "Failing's errors"

    # A period without invocations is not breaching: back to OK.
    poll(lambda: seen.extend(alarm_events(sqs, url)) or seen,
         lambda s: [e["detail"]["state"]["value"] for e in s][-1:] == ["OK"] and len(s) >= 3,
         timeout=15)
    assert [e["detail"]["state"]["value"] for e in seen] == ["OK", "ALARM", "OK"], seen

    states = requests.get(n.endpoint + "/_nimbus/api/alarms", timeout=5).json()["alarms"]
    by_name = {a["name"]: a for a in states}
    assert [h["to"] for h in by_name["failing-errors"]["history"]] == ["OK", "ALARM", "OK"]
    # A metric nimbus does not compute is said so, and the alarm never leaves INSUFFICIENT_DATA.
    assert by_name["NotComputed"]["state"] == "INSUFFICIENT_DATA"
    assert "nimbus does not compute AWS/Lambda ProvisionedConcurrencySpilloverInvocations" in \
        by_name["NotComputed"]["reason"]


BAD_ALARMS = """
  NoPeriods:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/Lambda
      MetricName: Errors
      Statistic: Sum
      Threshold: 1
      ComparisonOperator: GreaterThanThreshold
  BadOperator:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/SQS
      MetricName: ApproximateAgeOfOldestMessage
      Dimensions: [{Name: QueueName, Value: q}]
      Statistic: Maximum
      Period: 45
      EvaluationPeriods: 2
      DatapointsToAlarm: 3
      Threshold: 60
      ComparisonOperator: Bigger
      TreatMissingData: sometimes
"""


def test_bad_alarm_definitions_stop_start_up_naming_the_property(tmp_path, calls):
    out = refused_start_up(tmp_path, template(calls, BAD_ALARMS))
    err = out.stderr
    assert "Resources.NoPeriods.Properties.EvaluationPeriods" in err, err
    assert "Resources.BadOperator.Properties.ComparisonOperator" in err and '"Bigger"' in err
    assert "Resources.BadOperator.Properties.Period" in err and "45 is not 10, 20, 30 or a multiple of 60" in err
    assert "Resources.BadOperator.Properties.DatapointsToAlarm" in err and "3 is more than EvaluationPeriods (2)" in err
    assert "Resources.BadOperator.Properties.TreatMissingData" in err
    assert "nothing was started" in err
