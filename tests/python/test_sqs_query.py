"""SQS's query protocol (form-encoded `Action=...`, XML answers), what SDKs from before SQS's JSON
protocol send: raw requests checked element by element, a boto3 release that still speaks the
query protocol (its own virtualenv, see scripts/test.sh), and the AWS CLI on the JSON protocol."""

import hashlib
import json
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest
import requests

from conftest import aws

NS = {"q": "http://queue.amazonaws.com/doc/2012-11-05/"}

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: jobs
      VisibilityTimeout: 1
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt JobsDlq.Arn
        maxReceiveCount: 1
  JobsDlq:
    Type: AWS::SQS::Queue
"""


@pytest.fixture
def nimbus(start_nimbus):
    return start_nimbus(TEMPLATE)


def call(n, params, url=None, method="POST"):
    params = {"Version": "2012-11-05", **params}
    if method == "GET":
        r = requests.get(url or n.endpoint + "/", params=params, timeout=30)
    else:
        r = requests.post(url or n.endpoint + "/", data=params, timeout=30)
    assert r.headers["content-type"] == "text/xml"
    return r.status_code, ET.fromstring(r.content)  # bytes: the XML declaration says UTF-8


def text(root, path):
    el = root.find(path, NS)
    assert el is not None, f"{path} missing in {ET.tostring(root)}"
    return el.text or ""


def test_queue_life_cycle_and_messages_over_the_query_protocol(nimbus):
    status, root = call(nimbus, {
        "Action": "CreateQueue", "QueueName": "q1",
        "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "30",
        "Attribute.2.Name": "DelaySeconds", "Attribute.2.Value": "0",
    })
    assert status == 200 and root.tag == "{%s}CreateQueueResponse" % NS["q"]
    url = text(root, "q:CreateQueueResult/q:QueueUrl")
    assert url.endswith("/q1")
    assert text(root, "q:ResponseMetadata/q:RequestId")

    _, root = call(nimbus, {"Action": "ListQueues"}, method="GET")
    urls = [e.text for e in root.findall("q:ListQueuesResult/q:QueueUrl", NS)]
    assert sorted(u.rsplit("/", 1)[1] for u in urls) == ["JobsDlq", "jobs", "q1"]

    body = "a <b> & \"c\" \r\n é"
    _, root = call(nimbus, {
        "Action": "SendMessage", "QueueUrl": url, "MessageBody": body,
        "MessageAttribute.1.Name": "kind", "MessageAttribute.1.Value.DataType": "String",
        "MessageAttribute.1.Value.StringValue": "order",
        "MessageAttribute.2.Name": "blob", "MessageAttribute.2.Value.DataType": "Binary",
        "MessageAttribute.2.Value.BinaryValue": "AAEC",
    })
    assert text(root, "q:SendMessageResult/q:MD5OfMessageBody") == hashlib.md5(body.encode()).hexdigest()
    sent_id = text(root, "q:SendMessageResult/q:MessageId")
    attrs_md5 = text(root, "q:SendMessageResult/q:MD5OfMessageAttributes")

    # Sent to the queue URL itself, without a QueueUrl parameter, as some SDKs do.
    _, root = call(nimbus, {
        "Action": "ReceiveMessage", "AttributeName.1": "All", "MessageAttributeName.1": "All",
        "MaxNumberOfMessages": "10",
    }, url=url)
    msgs = root.findall("q:ReceiveMessageResult/q:Message", NS)
    assert len(msgs) == 1
    m = msgs[0]
    assert text(m, "q:MessageId") == sent_id
    assert text(m, "q:Body") == body  # the carriage return survives XML
    assert text(m, "q:MD5OfMessageAttributes") == attrs_md5
    system = {text(a, "q:Name"): text(a, "q:Value") for a in m.findall("q:Attribute", NS)}
    assert system["ApproximateReceiveCount"] == "1"
    user = {text(a, "q:Name"): a.find("q:Value", NS) for a in m.findall("q:MessageAttribute", NS)}
    assert text(user["kind"], "q:StringValue") == "order"
    assert text(user["blob"], "q:BinaryValue") == "AAEC"

    _, root = call(nimbus, {"Action": "DeleteMessage", "QueueUrl": url,
                            "ReceiptHandle": text(m, "q:ReceiptHandle")})
    assert root.tag.endswith("DeleteMessageResponse")
    assert root.find("q:DeleteMessageResult", NS) is None

    _, root = call(nimbus, {"Action": "GetQueueAttributes", "QueueUrl": url,
                            "AttributeName.1": "ApproximateNumberOfMessages",
                            "AttributeName.2": "VisibilityTimeout"})
    got = {text(a, "q:Name"): text(a, "q:Value")
           for a in root.findall("q:GetQueueAttributesResult/q:Attribute", NS)}
    assert got == {"ApproximateNumberOfMessages": "0", "VisibilityTimeout": "30"}

    status, _ = call(nimbus, {"Action": "DeleteQueue", "QueueUrl": url})
    assert status == 200
    status, root = call(nimbus, {"Action": "GetQueueUrl", "QueueName": "q1"})
    assert status == 400
    assert text(root, "q:Error/q:Code") == "AWS.SimpleQueueService.NonExistentQueue"
    assert text(root, "q:Error/q:Type") == "Sender"
    assert text(root, "q:RequestId")


def test_batches_over_the_query_protocol_report_each_entry(nimbus):
    url = nimbus.endpoint + "/123456789012/jobs"
    _, root = call(nimbus, {
        "Action": "SendMessageBatch", "QueueUrl": url,
        "SendMessageBatchRequestEntry.1.Id": "a", "SendMessageBatchRequestEntry.1.MessageBody": "one",
        "SendMessageBatchRequestEntry.2.Id": "b", "SendMessageBatchRequestEntry.2.MessageBody": "two",
        "SendMessageBatchRequestEntry.2.DelaySeconds": "901",
    })
    ok = root.findall("q:SendMessageBatchResult/q:SendMessageBatchResultEntry", NS)
    failed = root.findall("q:SendMessageBatchResult/q:BatchResultErrorEntry", NS)
    assert [text(e, "q:Id") for e in ok] == ["a"]
    assert [(text(e, "q:Id"), text(e, "q:Code"), text(e, "q:SenderFault")) for e in failed] == [
        ("b", "InvalidParameterValue", "true")]

    _, root = call(nimbus, {"Action": "ReceiveMessage", "QueueUrl": url})
    handle = text(root, "q:ReceiveMessageResult/q:Message/q:ReceiptHandle")
    _, root = call(nimbus, {
        "Action": "DeleteMessageBatch", "QueueUrl": url,
        "DeleteMessageBatchRequestEntry.1.Id": "x", "DeleteMessageBatchRequestEntry.1.ReceiptHandle": handle,
        "DeleteMessageBatchRequestEntry.2.Id": "y", "DeleteMessageBatchRequestEntry.2.ReceiptHandle": "bogus",
    })
    assert [text(e, "q:Id") for e in root.findall(
        "q:DeleteMessageBatchResult/q:DeleteMessageBatchResultEntry", NS)] == ["x"]
    assert [text(e, "q:Code") for e in root.findall(
        "q:DeleteMessageBatchResult/q:BatchResultErrorEntry", NS)] == ["ReceiptHandleIsInvalid"]


def test_bad_query_requests_get_error_responses(nimbus):
    url = nimbus.endpoint + "/123456789012/jobs"
    cases = [
        ({"QueueName": "x"}, "MissingAction"),
        ({"Action": "Frobnicate"}, "InvalidAction"),
        ({"Action": "CreateQueue", "QueueName": "bad name"}, "InvalidParameterValue"),
        ({"Action": "CreateQueue", "QueueName": "a", "Attribute.1.Value": "1"}, "MalformedQueryString"),
        ({"Action": "ReceiveMessage", "QueueUrl": url, "MaxNumberOfMessages": "11"}, "InvalidParameterValue"),
        ({"Action": "SendMessage", "QueueUrl": url, "MessageBody": "x" * (262_144 + 1)}, "InvalidParameterValue"),
        ({"Action": "SendMessageBatch", "QueueUrl": url}, "AWS.SimpleQueueService.EmptyBatchRequest"),
        ({"Action": "TagQueue", "QueueUrl": url}, "AWS.SimpleQueueService.UnsupportedOperation"),
    ]
    for params, code in cases:
        status, root = call(nimbus, params)
        assert (status, text(root, "q:Error/q:Code")) == (400, code), params
        assert text(root, "q:Error/q:Message")


# A boto3 release from before SQS's JSON protocol, in its own virtualenv (scripts/test.sh makes
# it): the real client's query serializer and XML parser against nimbus.
QUERY_CLIENT = r"""
import json, sys, boto3
from botocore.exceptions import ClientError
sqs = boto3.client("sqs", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
assert sqs.meta.service_model.protocol == "query", sqs.meta.service_model.protocol
out = {}
url = sqs.create_queue(QueueName="legacy", Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
sent = sqs.send_message(QueueUrl=url, MessageBody="hello\r\nworld",
    MessageAttributes={"n": {"DataType": "Number", "StringValue": "42"},
                       "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})
batch = sqs.send_message_batch(QueueUrl=url, Entries=[
    {"Id": "1", "MessageBody": "one"}, {"Id": "2", "MessageBody": "two", "DelaySeconds": 999}])
got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                          MessageAttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
out["received"] = sorted(m["Body"] for m in got)
first = [m for m in got if m["MessageId"] == sent["MessageId"]][0]
out["attr_n"] = first["MessageAttributes"]["n"]["StringValue"]
out["attr_b"] = list(first["MessageAttributes"]["b"]["BinaryValue"])
out["receive_count"] = first["Attributes"]["ApproximateReceiveCount"]
out["batch_ok"] = [e["Id"] for e in batch["Successful"]]
out["batch_failed"] = [(e["Id"], e["Code"]) for e in batch["Failed"]]
deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[
    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
out["deleted"] = len(deleted["Successful"])
out["depth"] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
out["queues"] = sorted(u.rsplit("/", 1)[1] for u in sqs.list_queues()["QueueUrls"])
try:
    sqs.get_queue_url(QueueName="missing")
except ClientError as e:
    out["error"] = e.response["Error"]["Code"]
    out["typed"] = isinstance(e, sqs.exceptions.QueueDoesNotExist)
print(json.dumps(out))
"""


def test_a_query_protocol_boto3_works_unchanged(nimbus):
    python = os.environ.get("NIMBUS_QUERY_PYTHON")
    if not python:
        pytest.skip("NIMBUS_QUERY_PYTHON (a virtualenv with a query-protocol boto3) is set by scripts/test.sh")
    out = subprocess.run([python, "-c", QUERY_CLIENT, nimbus.endpoint], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["received"] == ["hello\r\nworld", "one"]
    assert got["attr_n"] == "42" and got["attr_b"] == [0, 1]
    assert got["receive_count"] == "1"
    assert got["batch_ok"] == ["1"]
    assert got["batch_failed"] == [["2", "InvalidParameterValue"]]
    assert got["deleted"] == 2
    assert got["depth"] == {"ApproximateNumberOfMessages": "0"}
    assert got["queues"] == ["JobsDlq", "jobs", "legacy"]
    assert got["error"] == "AWS.SimpleQueueService.NonExistentQueue" and got["typed"]


def test_the_aws_cli_drives_queues_and_buses(start_nimbus):
    n = start_nimbus(TEMPLATE + """
  Rule:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [cli.test]}
      Targets:
        - Arn: !GetAtt Jobs.Arn
          Id: jobs
""")
    rc, out, err = aws(n, "sqs", "create-queue", "--queue-name", "cli-q")
    assert rc == 0, err
    url = out["QueueUrl"]
    rc, out, err = aws(n, "sqs", "send-message", "--queue-url", url, "--message-body", "from the cli",
                       "--message-attributes", '{"k":{"DataType":"String","StringValue":"v"}}')
    assert rc == 0, err
    rc, out, err = aws(n, "sqs", "receive-message", "--queue-url", url, "--message-attribute-names", "All")
    assert rc == 0, err
    [m] = out["Messages"]
    assert m["Body"] == "from the cli" and m["MessageAttributes"]["k"]["StringValue"] == "v"
    rc, _, err = aws(n, "sqs", "delete-message", "--queue-url", url, "--receipt-handle", m["ReceiptHandle"])
    assert rc == 0, err

    rc, out, err = aws(n, "events", "put-events", "--entries",
                       json.dumps([{"Source": "cli.test", "DetailType": "t", "Detail": '{"a":1}'},
                                   {"Source": "cli.test", "DetailType": "t", "Detail": "not json"}]))
    assert rc == 0, err
    assert out["FailedEntryCount"] == 1
    assert out["Entries"][1]["ErrorCode"] == "MalformedDetail"
    jobs = n.endpoint + "/123456789012/jobs"
    rc, out, err = aws(n, "sqs", "receive-message", "--queue-url", jobs, "--wait-time-seconds", "5")
    assert rc == 0, err
    assert json.loads(out["Messages"][0]["Body"])["detail"] == {"a": 1}

    rc, _, err = aws(n, "sqs", "get-queue-url", "--queue-name", "nope")
    assert rc != 0 and "NonExistentQueue" in err
