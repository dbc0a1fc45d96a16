"""SNS against nimbus with boto3 (the query protocol) and the AWS CLI: topics, subscriptions,
fan-out to SQS (enveloped and raw) and to a function, filter policies on attributes and on the
body, FIFO topics, errors in SNS's shapes, and a publish accepted before `kill -9` delivered
after it."""

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import aws, wait_until

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: orders
      Subscription:
        - Protocol: sqs
          Endpoint: !GetAtt All.Arn
  All:
    Type: AWS::SQS::Queue
    Properties: {QueueName: all}
  Red:
    Type: AWS::SQS::Queue
    Properties: {QueueName: red}
  RedOnly:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref Orders
      Protocol: sqs
      Endpoint: !GetAtt Red.Arn
      RawMessageDelivery: true
      FilterPolicy: {color: [red]}
  Sink:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: app.handler
      Events:
        Big:
          Type: SNS
          Properties:
            Topic: !Ref Orders
            FilterPolicyScope: MessageBody
            FilterPolicy: {size: [{numeric: [">", 10]}]}
"""

APP = '''
import json, os
def handler(event, context):
    print("SNS-EVENT " + json.dumps(event))
    return {}
'''


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def drain(sqs, url, want, timeout=15):
    got = []

    def more():
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   MessageAttributeNames=["All"]).get("Messages", [])
        got.extend(msgs)
        return len(got) >= want

    wait_until(f"{want} messages on {url}", more, timeout)
    return got


def test_a_publish_fans_out_by_filter_policy_in_each_subscriptions_shape(start_nimbus):
    n = start_nimbus(TEMPLATE, {"src/app.py": APP})
    sns, sqs = n.client("sns"), n.client("sqs")
    topic = "arn:aws:sns:us-east-1:123456789012:orders"
    assert topic in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted(s["Protocol"] for s in subs) == ["lambda", "sqs", "sqs"]

    red = sns.publish(TopicArn=topic, Message='{"size": 3}', Subject="paint",
                      MessageAttributes={"color": {"DataType": "String", "StringValue": "red"}})
    sns.publish(TopicArn=topic, Message='{"size": 30}',
                MessageAttributes={"color": {"DataType": "String", "StringValue": "blue"}})

    all_url = sqs.get_queue_url(QueueName="all")["QueueUrl"]
    enveloped = [json.loads(m["Body"]) for m in drain(sqs, all_url, 2)]
    first = next(e for e in enveloped if e["MessageId"] == red["MessageId"])
    assert first["Type"] == "Notification" and first["TopicArn"] == topic
    assert first["Message"] == '{"size": 3}' and first["Subject"] == "paint"
    assert first["MessageAttributes"] == {"color": {"Type": "String", "Value": "red"}}
    assert {"Timestamp", "SignatureVersion", "Signature", "SigningCertURL", "UnsubscribeURL"} <= set(first)

    red_url = sqs.get_queue_url(QueueName="red")["QueueUrl"]
    raw = drain(sqs, red_url, 1)
    assert [m["Body"] for m in raw] == ['{"size": 3}'], "raw delivery, and only the red one"
    assert raw[0]["MessageAttributes"]["color"]["StringValue"] == "red"
    # Two published; each filtered out of one subscription (red: the function's, blue: the red
    # queue's); four deliveries: two to `all`, one to `red`, one to the function.
    metrics = urllib.request.urlopen(n.endpoint + "/metrics", timeout=10).read().decode()
    for want in ['nimbus_sns_messages_published_total{topic="orders"} 2',
                 'nimbus_sns_notifications_filtered_out_total{topic="orders"} 2',
                 'nimbus_sns_notifications_delivered_total{topic="orders",protocol="sqs"} 3',
                 'nimbus_sns_notifications_delivered_total{topic="orders",protocol="lambda"} 1']:
        assert want in metrics, want

    line = n.wait_for("SNS-EVENT ", timeout=20)
    event = json.loads(line.split("SNS-EVENT ", 1)[1])
    record = event["Records"][0]
    assert record["EventSource"] == "aws:sns" and record["Sns"]["Message"] == '{"size": 30}'
    assert record["Sns"]["MessageAttributes"]["color"] == {"Type": "String", "Value": "blue"}
    assert sum("SNS-EVENT " in l for l in n.lines) == 1, "the body filter let only size 30 through"


def test_topics_and_subscriptions_through_the_api_with_snss_errors(start_nimbus):
    n = start_nimbus("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: q}\n")
    sns, sqs = n.client("sns"), n.client("sqs")
    arn = sns.create_topic(Name="events", Attributes={"DisplayName": "Events"}, Tags=[{"Key": "team", "Value": "a"}])["TopicArn"]
    assert sns.create_topic(Name="events")["TopicArn"] == arn, "creating it again answers the same topic"
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "Events"
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "a"}]
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:123456789012:q",
                        Attributes={"RawMessageDelivery": "true"}, ReturnSubscriptionArn=True)["SubscriptionArn"]
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert attrs["RawMessageDelivery"] == "true" and attrs["PendingConfirmation"] == "false"
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy", AttributeValue='{"k": ["v"]}')
    batch = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": "1", "Message": "yes", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
        {"Id": "2", "Message": "no"},
        {"Id": "3", "Message": ""},
    ])
    assert sorted(s["Id"] for s in batch["Successful"]) == ["1", "2"]
    assert [(f["Id"], f["Code"]) for f in batch["Failed"]] == [("3", "InvalidParameter")]
    url = sqs.get_queue_url(QueueName="q")["QueueUrl"]
    assert [m["Body"] for m in drain(sqs, url, 1)] == ["yes"]

    for call, kwargs, error in [
        (sns.publish, {"TopicArn": arn + "-nope", "Message": "x"}, "NotFound"),
        (sns.publish, {"TopicArn": arn, "Message": "x" * 262145}, "InvalidParameter"),
        (sns.subscribe, {"TopicArn": arn, "Protocol": "sqs", "Endpoint": "arn:aws:sqs:us-east-1:123456789012:q",
                         "Attributes": {"FilterPolicy": "{not json"}}, "InvalidParameter"),
        (sns.create_topic, {"Name": "bad name"}, "InvalidParameter"),
        (sns.unsubscribe, {"SubscriptionArn": arn + ":nope"}, "NotFound"),
    ]:
        with pytest.raises(ClientError) as e:
            call(**kwargs)
        assert code(e) == error, (call, kwargs)
    assert len(sns.list_subscriptions()["Subscriptions"]) == 1, "nothing half written"

    sns.unsubscribe(SubscriptionArn=sub)
    sns.delete_topic(TopicArn=arn)
    assert sns.list_topics()["Topics"] == []
    rc, out, err = aws(n, "sns", "list-topics")
    assert rc == 0 and out["Topics"] == [], err


def test_a_fifo_topic_keeps_groups_and_drops_duplicates_into_a_fifo_queue(start_nimbus):
    n = start_nimbus("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: q.fifo, FifoQueue: true}\n")
    sns, sqs = n.client("sns"), n.client("sqs")
    arn = sns.create_topic(Name="t.fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"})["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:123456789012:q.fifo",
                  Attributes={"RawMessageDelivery": "true"})
    with pytest.raises(ClientError) as e:
        sns.publish(TopicArn=arn, Message="no group")
    assert code(e) == "InvalidParameter"
    for body in ["a", "b", "a"]:
        sns.publish(TopicArn=arn, Message=body, MessageGroupId="g")
    url = sqs.get_queue_url(QueueName="q.fifo")["QueueUrl"]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2)["Messages"]
    assert [m["Body"] for m in got] == ["a", "b"], "in order, the duplicate dropped"


def test_an_accepted_publish_is_delivered_after_kill_9(start_nimbus):
    template = TEMPLATE
    n = start_nimbus(template, {"src/app.py": APP})
    sns = n.client("sns")
    topic = "arn:aws:sns:us-east-1:123456789012:orders"
    ids = {sns.publish(TopicArn=topic, Message=f"m{i}")["MessageId"] for i in range(20)}
    n.proc.kill()
    n.proc.wait()
    again = start_nimbus(template, {"src/app.py": APP})
    sqs = again.client("sqs")
    url = sqs.get_queue_url(QueueName="all")["QueueUrl"]
    got = {json.loads(m["Body"])["MessageId"] for m in drain(sqs, url, 20)}
    assert ids <= got


TOPIC_TARGETS = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Alerts:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: alerts
      Subscription:
        - {Protocol: sqs, Endpoint: !GetAtt AlertsQueue.Arn}
  AlertsQueue:
    Type: AWS::SQS::Queue
    Properties: {QueueName: alerts-q}
  ShopRule:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [shop]}
      Targets:
        - {Id: ToAlerts, Arn: !Ref Alerts}
  Fails:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: fails.handler
      EventInvokeConfig:
        MaximumRetryAttempts: 0
        DestinationConfig:
          OnFailure: {Type: SNS, Destination: !Ref Alerts}
"""

FAILS = '''
def handler(event, context):
    raise RuntimeError("always")
'''


def test_a_topic_is_a_rule_target_and_a_functions_failure_destination(start_nimbus):
    n = start_nimbus(TOPIC_TARGETS, {"src/fails.py": FAILS})
    n.client("events").put_events(Entries=[{"Source": "shop", "DetailType": "order", "Detail": '{"id": 7}'}])
    n.client("lambda").invoke(FunctionName="Fails", InvocationType="Event", Payload=b'{"order": 8}')
    sqs = n.client("sqs")
    url = sqs.get_queue_url(QueueName="alerts-q")["QueueUrl"]
    messages = [json.loads(json.loads(m["Body"])["Message"]) for m in drain(sqs, url, 2, timeout=30)]
    event = next(m for m in messages if m.get("source") == "shop")
    assert event["detail"] == {"id": 7}, "the rule's event, as the topic's message"
    record = next(m for m in messages if "requestContext" in m)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"] == {"order": 8}


def test_a_failed_delivery_goes_to_the_subscriptions_dead_letter_queue(start_nimbus):
    n = start_nimbus("Resources:\n  D:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: sns-dlq}\n")
    sns, sqs = n.client("sns"), n.client("sqs")
    arn = sns.create_topic(Name="t")["TopicArn"]
    gone = sqs.create_queue(QueueName="gone")["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:sns-dlq"})
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:123456789012:gone",
                  Attributes={"RedrivePolicy": policy})
    sqs.delete_queue(QueueUrl=gone)
    sns.publish(TopicArn=arn, Message="lost?", MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    dlq = sqs.get_queue_url(QueueName="sns-dlq")["QueueUrl"]
    got = drain(sqs, dlq, 1)
    envelope = json.loads(got[0]["Body"])
    assert envelope["Message"] == "lost?" and envelope["TopicArn"] == arn, envelope
    assert envelope["MessageAttributes"]["k"]["Value"] == "v", envelope
    for bad in ['{"deadLetterTargetArn": "arn:aws:sns:us-east-1:123456789012:t"}', "not json", "{}"]:
        with pytest.raises(ClientError) as e:
            sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:123456789012:sns-dlq",
                          Attributes={"RedrivePolicy": bad})
        assert code(e) == "InvalidParameter" and "RedrivePolicy" in e.value.response["Error"]["Message"], bad


DLQ_TOPIC = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Failed:
    Type: AWS::SQS::Queue
    Properties: {QueueName: failed-events}
  Dead:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: dead
      Subscription:
        - {Protocol: sqs, Endpoint: !GetAtt Failed.Arn}
  Fails:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src/
      DeadLetterQueue: {Type: SNS, TargetArn: !Ref Dead}
      EventInvokeConfig: {MaximumRetryAttempts: 0}
"""


def test_a_functions_dead_letter_topic_gets_its_failed_events(start_nimbus):
    n = start_nimbus(DLQ_TOPIC, {"src/app.py": "def handler(event, context):\n    raise RuntimeError('no')\n"})
    n.lambda_client().invoke(FunctionName="Fails", InvocationType="Event", Payload=b'{"order": 7}')
    sqs = n.client("sqs")
    url = sqs.get_queue_url(QueueName="failed-events")["QueueUrl"]
    got = drain(sqs, url, 1)
    envelope = json.loads(got[0]["Body"])
    assert envelope["TopicArn"].endswith(":dead") and json.loads(envelope["Message"]) == {"order": 7}, envelope
    # Lambda's dead-letter attributes travel with the message, as on the queue form.
    attrs = envelope["MessageAttributes"]
    assert attrs["ErrorCode"] == {"Type": "Number", "Value": "200"}, attrs
    assert attrs["ErrorMessage"] == {"Type": "String", "Value": "no"}, attrs
    assert attrs["RequestID"]["Type"] == "String" and len(attrs["RequestID"]["Value"]) == 36, attrs
