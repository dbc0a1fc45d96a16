"""`nimbus cost`: a fixed workload priced with the repository's price file equals the figure
computed here by hand from the same file and nimbus's own counters; the free tier and a bad
price file behave as documented."""

import json
import re
import subprocess
import time

import boto3
import requests
from botocore.config import Config

from conftest import NIMBUS, ROOT, poll

PRICES = json.loads((ROOT / "crates" / "nimbus" / "prices" / "us-east-1.json").read_text())

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Work:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src/
      MemorySize: 256
"""

APP = "def handler(event, context):\n    return event\n"


def cost(n, *args):
    out = subprocess.run([str(NIMBUS), "cost", "--endpoint-url", n.endpoint, *args],
                         capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout, out.stderr


def test_cost_of_a_fixed_workload_matches_the_price_file(start_nimbus, tmp_path):
    n = start_nimbus(TEMPLATE, {"src/app.py": APP})
    lam = n.client("lambda")
    for i in range(50):
        lam.invoke(FunctionName="Work", Payload=json.dumps({"i": i}).encode())["Payload"].read()
    metrics = requests.get(f"{n.endpoint}/metrics", timeout=10).text
    billed_ms = float(re.search(r'nimbus_lambda_billed_milliseconds_total\{function="Work"\} (\S+)', metrics).group(1))
    lp = PRICES["lambda"]
    want = 50 * lp["requests_per_million"] / 1e6 + billed_ms / 1000 * 256 / 1024 * lp["gb_second_x86_64"]
    code, out, err = cost(n, "--no-free-tier", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert abs(got["total"] - want) < 1e-12, (got, want)
    assert [(l["item"], l["quantity"]) for l in got["lines"]][0] == ("requests", 50)
    # The text form names the function's lines and the total.
    code, out, _ = cost(n, "--no-free-tier")
    assert code == 0 and "Work requests" in out and re.search(r"^Total\s+\$", out, re.M), out
    # The monthly free tier covers this much.
    code, out, _ = cost(n, "--json")
    assert json.loads(out)["total"] == 0
    # A price file without a figure is refused, naming it.
    bad = {**PRICES, "lambda": {k: v for k, v in lp.items() if k != "gb_second_x86_64"}}
    (tmp_path / "prices.json").write_text(json.dumps(bad))
    code, _, err = cost(n, "--prices", str(tmp_path / "prices.json"))
    assert code != 0 and "lambda.gb_second_x86_64" in err, err


QUEUES = """
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties: {QueueName: cost-q}
  T:
    Type: AWS::SNS::Topic
    Properties: {TopicName: cost-t}
  S:
    Type: AWS::SecretsManager::Secret
    Properties: {Name: cost-s, SecretString: x}
"""


def test_sqs_sns_and_secrets_manager_calls_are_priced_and_the_dashboard_api_agrees(start_nimbus):
    n = start_nimbus(QUEUES)
    sqs, sns, sm = n.client("sqs"), n.client("sns"), n.client("secretsmanager")
    url = sqs.get_queue_url(QueueName="cost-q")["QueueUrl"]
    for i in range(20):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "b"} for i in range(10)])
    # Each 64 KB chunk of a payload is a request: 100 KB of body and attributes is two.
    sqs.send_message(QueueUrl=url, MessageBody="x" * 99_000,
                     MessageAttributes={"a": {"DataType": "String", "StringValue": "y" * 1_000}})
    topic = sns.create_topic(Name="cost-t")["TopicArn"]
    for _ in range(5):
        sns.publish(TopicArn=topic, Message="m")
    for _ in range(4):
        sm.get_secret_value(SecretId="cost-s")
    # Storage is sampled each second: wait for the first sample that counts time.
    secret_seconds = lambda: sum(float(l.rsplit(" ", 1)[1]) for l in requests.get(f"{n.endpoint}/metrics", timeout=10).text.splitlines()  # noqa: E731
                                 if l.startswith("nimbus_secretsmanager_secret_seconds_total"))
    poll(secret_seconds, lambda v: v > 0)
    code, out, err = cost(n, "--no-free-tier", "--json")
    assert code == 0, err
    lines = {(l["service"], l["item"]): l for l in json.loads(out)["lines"]}
    # Every SQS call is a request (GetQueueUrl, 20 sends, one batch), the large send two;
    # CreateTopic is free.
    sqs_line = lines[("SQS", "requests (standard queue rate)")]
    assert sqs_line["quantity"] == 24, lines
    assert abs(sqs_line["cost"] - 24 * PRICES["sqs"]["requests_per_million"] / 1e6) < 1e-15
    assert lines[("SNS", "publishes")]["quantity"] == 5
    calls = lines[("Secrets Manager", "API calls")]
    assert abs(calls["cost"] - 4 * PRICES["secretsmanager"]["api_calls_per_ten_thousand"] / 1e4) < 1e-15
    # Stored secrets are billed per secret-month, prorated: one secret for the seconds so far.
    stored = lines[("Secrets Manager", "secrets stored")]
    assert 0 < stored["quantity"] * 30 * 86400 < 120, stored
    assert abs(stored["cost"] - stored["quantity"] * PRICES["secretsmanager"]["secret_per_month"]) < 1e-15
    api = requests.get(f"{n.endpoint}/_nimbus/api/cost?free_tier=false", timeout=10).json()
    counted = lambda ls: {(l["service"], l["item"]): l["quantity"] for l in ls if not l["unit"].endswith("months")}  # noqa: E731
    assert counted(api["lines"]) == counted(lines.values())
    # The free tier covers SQS and SNS here; Secrets Manager has none (a 30-day trial only).
    free = requests.get(f"{n.endpoint}/_nimbus/api/cost", timeout=10).json()
    secrets_now = sum(l["cost"] for l in free["lines"] if l["service"] == "Secrets Manager")
    assert abs(free["total"] - secrets_now) < 1e-15, free


def test_s3_storage_is_priced_by_the_gb_month_it_was_held(start_nimbus):
    n = start_nimbus("""
Resources:
  B:
    Type: AWS::S3::Bucket
    Properties: {BucketName: cost-b}
""")
    s3 = n.client("s3")
    s3.put_object(Bucket="cost-b", Key="a", Body=b"x" * 300_000)
    s3.put_object(Bucket="cost-b", Key="b", Body=b"y" * 200_000)
    s3.delete_object(Bucket="cost-b", Key="b")
    up = s3.create_multipart_upload(Bucket="cost-b", Key="big")["UploadId"]
    s3.upload_part(Bucket="cost-b", Key="big", UploadId=up, PartNumber=1, Body=b"z" * 100_000)

    def metric(name):
        text = requests.get(f"{n.endpoint}/metrics", timeout=10).text
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name + '{bucket="cost-b"}'))

    # Held: the object and the uploaded part (S3 bills an unfinished upload's parts).
    assert poll(lambda: metric("nimbus_s3_stored_bytes"), lambda b: b == 400_000) == 400_000
    time.sleep(2)
    before = metric("nimbus_s3_stored_byte_seconds_total")
    code, out, err = cost(n, "--no-free-tier", "--json")
    after = metric("nimbus_s3_stored_byte_seconds_total")
    assert code == 0, err
    line = next(l for l in json.loads(out)["lines"] if l["item"] == "storage (Standard)")
    assert line["resource"] == "cost-b" and line["unit"] == "GB-months"
    month = 30 * 86400
    by_hand = lambda byte_s: byte_s / 2**30 / month * PRICES["s3"]["storage_gb_month"]  # noqa: E731
    assert before >= 400_000 and by_hand(before) <= line["cost"] <= by_hand(after), (before, line, after)
    # 5 GB-months free: this is well inside it.
    free = requests.get(f"{n.endpoint}/_nimbus/api/cost", timeout=10).json()
    assert next(l for l in free["lines"] if l["item"] == "storage (Standard)")["cost"] == 0
    # What is held follows every change: a part uploaded again, an upload completed, a second
    # version kept, every version deleted and the bucket too (what it held still counts).
    held = lambda want: poll(lambda: metric("nimbus_s3_stored_bytes"), lambda b: b == want, timeout=5)  # noqa: E731
    etag = s3.upload_part(Bucket="cost-b", Key="big", UploadId=up, PartNumber=1, Body=b"z" * 50_000)["ETag"]
    assert held(350_000) == 350_000
    s3.complete_multipart_upload(Bucket="cost-b", Key="big", UploadId=up,
                                 MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]})
    assert held(350_000) == 350_000
    s3.put_bucket_versioning(Bucket="cost-b", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="cost-b", Key="a", Body=b"v" * 10)
    assert held(350_010) == 350_010
    for v in s3.list_object_versions(Bucket="cost-b").get("Versions", []):
        s3.delete_object(Bucket="cost-b", Key=v["Key"], VersionId=v["VersionId"])
    assert held(0) == 0
    s3.delete_bucket(Bucket="cost-b")
    text = lambda: requests.get(f"{n.endpoint}/metrics", timeout=10).text  # noqa: E731
    gauge = 'nimbus_s3_stored_bytes{bucket="cost-b"}'
    assert gauge not in poll(text, lambda t: gauge not in t, timeout=5)
    assert metric("nimbus_s3_stored_byte_seconds_total") >= after


def test_express_executions_are_billed_by_request_and_by_duration(start_nimbus):
    n = start_nimbus("""
Resources:
  Quick:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      StateMachineName: quick
      StateMachineType: EXPRESS
      Definition: {StartAt: P, States: {P: {Type: Pass, End: true}}}
""")
    # boto3 sends StartSyncExecution to a `sync-` host, which a loopback address cannot have.
    sfn = boto3.client("stepfunctions", endpoint_url=n.endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test",
                       config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))
    arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    for _ in range(3):
        assert sfn.start_sync_execution(stateMachineArn=arn, input="{}")["status"] == "SUCCEEDED"
    code, out, err = cost(n, "--no-free-tier", "--json")
    assert code == 0, err
    lines = {l["item"]: l for l in json.loads(out)["lines"]}
    assert lines["Express requests"]["quantity"] == 3
    # Each execution is billed in whole 100 ms units (a Pass chain takes well under one), at
    # 64 MB: at least three units, always a whole number of them.
    unit = 0.1 * 64 / 1024
    duration = lines["Express duration (64 MB)"]
    units = duration["quantity"] / unit
    assert units >= 3 - 1e-9 and abs(units - round(units)) < 1e-9, duration
    assert abs(duration["cost"] - duration["quantity"] / 3600 * PRICES["stepfunctions"]["express_gb_hour"]) < 1e-15
