"""SQS against nimbus with boto3 (the JSON protocol): queue life cycle, messages, visibility,
batches, long polling, redrive to a dead-letter queue, errors in AWS's shapes, and durability
across `kill -9`."""

import hashlib
import threading
import time

import pytest
from botocore.exceptions import ClientError

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: jobs
      VisibilityTimeout: 1
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt JobsDlq.Arn
        maxReceiveCount: 2
  JobsDlq:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 1209600
"""


@pytest.fixture
def sqs(start_nimbus):
    n = start_nimbus(TEMPLATE)
    return n.client("sqs")


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_template_queues_exist_with_their_attributes(sqs):
    url = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    assert url.endswith("/123456789012/jobs") or url.endswith("/jobs")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "1"
    assert attrs["QueueArn"].startswith("arn:aws:sqs:us-east-1:")
    assert '"maxReceiveCount":2' in attrs["RedrivePolicy"]
    assert attrs["RedrivePolicy"].count("JobsDlq") == 1
    urls = sqs.list_queues()["QueueUrls"]
    assert {u.rsplit("/", 1)[1] for u in urls} == {"jobs", "JobsDlq"}


def test_queue_life_cycle(sqs):
    url = sqs.create_queue(QueueName="tmp-1", Attributes={"DelaySeconds": "0"})["QueueUrl"]
    assert sqs.create_queue(QueueName="tmp-1", Attributes={"DelaySeconds": "0"})["QueueUrl"] == url
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName="tmp-1", Attributes={"DelaySeconds": "5"})
    assert error_code(e) == "QueueAlreadyExists"
    assert [u.rsplit("/", 1)[1] for u in sqs.list_queues(QueueNamePrefix="tmp")["QueueUrls"]] == ["tmp-1"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "45"})
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert got == {"VisibilityTimeout": "45"}
    sqs.send_message(QueueUrl=url, MessageBody="x")
    sqs.purge_queue(QueueUrl=url)
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(ClientError) as e:
        sqs.get_queue_url(QueueName="tmp-1")
    assert error_code(e) == "AWS.SimpleQueueService.NonExistentQueue"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert isinstance(e.value, sqs.exceptions.QueueDoesNotExist)


def test_send_receive_delete_with_attributes_and_md5s(sqs):
    url = sqs.create_queue(QueueName="plain")["QueueUrl"]
    body = "héllo wörld"
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageAttributes={
            "timestamp": {"DataType": "Number", "StringValue": "1493147359900"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"}},
    )
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    got = sqs.receive_message(
        QueueUrl=url, AttributeNames=["All"], MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    assert len(got) == 1
    m = got[0]
    assert m["MessageId"] == sent["MessageId"] and m["Body"] == body
    assert m["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert m["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert m["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01"
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"
    assert m["Attributes"]["AWSTraceHeader"].startswith("Root=1-5759e988")
    assert int(m["Attributes"]["SentTimestamp"]) > 1.7e12
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_visibility_timeouts_and_changes(sqs):
    url = sqs.create_queue(QueueName="vis")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="a")
    first = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"][0]
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
    time.sleep(1.1)
    second = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"], VisibilityTimeout=30)["Messages"][0]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0)
    third = sqs.receive_message(QueueUrl=url)["Messages"][0]
    # A stale receipt handle is accepted and deletes nothing.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"])
    with pytest.raises(ClientError) as e:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    assert error_code(e) == "ReceiptHandleIsInvalid"


def test_batches_and_their_errors(sqs):
    url = sqs.create_queue(QueueName="batch")["QueueUrl"]
    entries = [{"Id": f"m{i}", "MessageBody": f"body {i}"} for i in range(10)]
    entries[3]["MessageBody"] = ""
    out = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert len(out["Successful"]) == 9
    assert [f["Id"] for f in out["Failed"]] == ["m3"] and out["Failed"][0]["SenderFault"] is True
    got = []
    while len(got) < 9:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        assert batch, "messages went missing"
        got += batch
    assert sorted(m["Body"] for m in got) == sorted(e["MessageBody"] for e in entries if e["MessageBody"])
    deleted = sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
    )
    assert len(deleted["Successful"]) == 9 and not deleted.get("Failed")
    with pytest.raises(ClientError) as e:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": "x"} for i in range(11)])
    assert error_code(e) == "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
    with pytest.raises(ClientError) as e:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}])
    assert error_code(e) == "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"


def test_bad_input_gets_sqs_errors(sqs):
    url = sqs.create_queue(QueueName="errs")["QueueUrl"]
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x" * (256 * 1024 + 1))
    assert error_code(e) == "InvalidParameterValue"
    assert "shorter than 262144 bytes" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url.rsplit("/", 1)[0] + "/missing", MessageBody="x")
    assert error_code(e) == "AWS.SimpleQueueService.NonExistentQueue"
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName="bad", Attributes={"VisibilityTimeout": "99999"})
    assert error_code(e) == "InvalidAttributeValue"
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName="q-no-suffix", Attributes={"FifoQueue": "true"})
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}})
    assert error_code(e) == "InvalidParameterValue"


def test_long_polling_returns_as_soon_as_a_message_arrives(sqs):
    url = sqs.create_queue(QueueName="poll")["QueueUrl"]
    threading.Timer(0.3, lambda: sqs.send_message(QueueUrl=url, MessageBody="late")).start()
    started = time.time()
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    waited = time.time() - started
    assert got[0]["Body"] == "late"
    assert 0.25 <= waited < 2, waited
    started = time.time()
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []
    assert time.time() - started >= 0.95


def test_a_message_received_too_often_moves_to_the_dead_letter_queue(sqs):
    url = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="JobsDlq")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    for _ in range(2):
        assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"][0]["Body"] == "poison"
        time.sleep(1.05)
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    dead = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=2)["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [url]


def test_acknowledged_messages_survive_kill_9(start_nimbus):
    n = start_nimbus(TEMPLATE)
    sqs = n.client("sqs")
    url = sqs.create_queue(QueueName="durable", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    bodies = set()
    for i in range(20):
        entries = [{"Id": str(j), "MessageBody": f"m-{i}-{j}"} for j in range(10)]
        assert len(sqs.send_message_batch(QueueUrl=url, Entries=entries)["Successful"]) == 10
        bodies |= {e["MessageBody"] for e in entries}
    for i in range(50):
        sqs.send_message(QueueUrl=url, MessageBody=f"single-{i}")
        bodies.add(f"single-{i}")
    in_flight = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(in_flight) == 10
    n.proc.kill()
    n.proc.wait()

    again = start_nimbus(TEMPLATE)
    sqs = again.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 250
    time.sleep(2.1)  # the in-flight ones come back after their visibility timeout
    seen = set()
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        seen |= {m["Body"] for m in batch}
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
    assert seen == bodies


def test_sixteen_concurrent_senders_killed_mid_stream_lose_nothing_acknowledged(start_nimbus):
    """Group commit answers each sender only after the commit holding its message: whatever
    was acknowledged when the process died is there after restart, and the queue's maintained
    count agrees with what is actually stored."""
    n = start_nimbus(TEMPLATE)
    url = n.client("sqs").create_queue(QueueName="burst")["QueueUrl"]
    acked = [set() for _ in range(16)]
    clients = [n.client("sqs") for _ in range(16)]  # made here: boto3's client creation is not thread-safe
    stop = threading.Event()

    def sender(i):
        sqs = clients[i]
        k = 0
        while not stop.is_set():
            try:
                if k % 2:
                    entries = [{"Id": str(j), "MessageBody": f"{i}-{k}-{j}"} for j in range(10)]
                    ok = sqs.send_message_batch(QueueUrl=url, Entries=entries)["Successful"]
                    acked[i] |= {f"{i}-{k}-{e['Id']}" for e in ok}
                else:
                    sqs.send_message(QueueUrl=url, MessageBody=f"{i}-{k}")
                    acked[i].add(f"{i}-{k}")
            except Exception:  # the server is gone: this sender is done
                return
            k += 1

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    deadline = time.time() + 10
    while sum(map(len, acked)) < 3000 and time.time() < deadline:
        time.sleep(0.05)
    n.proc.kill()
    n.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    acknowledged = set().union(*acked)
    assert len(acknowledged) >= 3000

    sqs = start_nimbus(TEMPLATE).client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    stored = int(attrs["ApproximateNumberOfMessages"])
    seen = set()
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
        if not batch:
            break
        seen |= {m["Body"] for m in batch}
    assert acknowledged <= seen, f"{len(acknowledged - seen)} acknowledged messages lost"
    assert stored == len(seen), "the maintained count matches the messages stored"


def test_fifo_queues_keep_group_order_and_drop_duplicates(sqs):
    url = sqs.create_queue(QueueName="orders.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true", "VisibilityTimeout": "1"})["QueueUrl"]
    sent = [sqs.send_message(QueueUrl=url, MessageBody=f"{g}-{i}", MessageGroupId=g)
            for i in range(3) for g in ("a", "b")]
    assert all("SequenceNumber" in s for s in sent)
    dup = sqs.send_message(QueueUrl=url, MessageBody="a-0", MessageGroupId="a")
    assert dup["MessageId"] == sent[0]["MessageId"], "a duplicate answers with the first message's id"
    explicit = sqs.send_message(QueueUrl=url, MessageBody="a-0", MessageGroupId="a", MessageDeduplicationId="other")
    assert explicit["MessageId"] != sent[0]["MessageId"]

    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"])["Messages"]
    assert first[0]["Body"] == "a-0"
    assert first[0]["Attributes"]["MessageGroupId"] == "a"
    assert first[0]["Attributes"]["SequenceNumber"] == sent[0]["SequenceNumber"]
    # Group a is in flight: only group b's messages, in order.
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in rest] == ["b-0", "b-1", "b-2"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    later = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in later] == ["a-1", "a-2", "a-0"]

    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x")
    assert error_code(e) == "MissingParameter"
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="a", DelaySeconds=5)
    assert error_code(e) == "InvalidParameterValue"
