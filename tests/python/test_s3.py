"""S3 against nimbus with boto3, the AWS CLI and curl: objects with metadata, ranges,
conditions, copies and tags; S3's errors for bad input with nothing half written; listings with a
delimiter over 2,500 keys; a 50 MiB multipart upload with CRC32 checksums; versioning;
`aws s3 cp/sync/ls/rm`; presigned URLs; notifications to a function, a queue and EventBridge;
and kill -9 losing no acknowledged object and showing no partial one."""

import base64
import hashlib
import json
import re
import os
import socket
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import Nimbus, aws, wait_until

MiB = 1024 * 1024

BUCKET = """
Resources:
  Data:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: data
  Unnamed:
    Type: AWS::S3::Bucket
Outputs:
  UnnamedName:
    Value: !Ref Unnamed
  UnnamedArn:
    Value: !GetAtt Unnamed.Arn
"""


def s3(n, **config):
    """A boto3 S3 client on nimbus's endpoint; `config` adds botocore settings (presigning)."""
    if not config:
        return n.client("s3")
    return boto3.client("s3", endpoint_url=n.endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}, **config))


def error(call):
    with pytest.raises(ClientError) as e:
        call()
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"].get("Message", "")


def test_objects_round_trip_with_metadata_ranges_conditions_copies_and_tags(start_nimbus):
    n = start_nimbus(BUCKET)
    c = s3(n)
    names = [b["Name"] for b in c.list_buckets()["Buckets"]]
    # A bucket without BucketName is named (and Ref'd) by its logical id, lowercased.
    assert names == ["data", "unnamed"]
    assert "nimbus: S3 bucket unnamed" in "\n".join(n.lines)
    assert c.get_bucket_location(Bucket="data")["LocationConstraint"] is None

    body = os.urandom(3000)
    put = c.put_object(Bucket="data", Key="dir/a b+c.bin", Body=body, ContentType="application/x-test",
                       CacheControl="max-age=60", Metadata={"owner": "me"}, Tagging="team=core&tier=1")
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    g = c.get_object(Bucket="data", Key="dir/a b+c.bin")
    assert g["Body"].read() == body
    assert (g["ContentType"], g["CacheControl"], g["Metadata"], g["TagCount"]) == ("application/x-test", "max-age=60", {"owner": "me"}, 2)
    h = c.head_object(Bucket="data", Key="dir/a b+c.bin")
    assert h["ContentLength"] == 3000 and h["ETag"] == put["ETag"]

    r = c.get_object(Bucket="data", Key="dir/a b+c.bin", Range="bytes=-10")
    assert (r["ResponseMetadata"]["HTTPStatusCode"], r["ContentRange"], r["Body"].read()) == (206, "bytes 2990-2999/3000", body[-10:])
    status, code, _ = error(lambda: c.get_object(Bucket="data", Key="dir/a b+c.bin", Range="bytes=3000-"))
    assert (status, code) == (416, "InvalidRange")
    status, code, _ = error(lambda: c.get_object(Bucket="data", Key="dir/a b+c.bin", IfMatch='"nope"'))
    assert (status, code) == (412, "PreconditionFailed")
    status, _, _ = error(lambda: c.get_object(Bucket="data", Key="dir/a b+c.bin", IfNoneMatch=put["ETag"]))
    assert status == 304
    # Conditional writes: If-None-Match: * refuses to overwrite.
    status, code, _ = error(lambda: c.put_object(Bucket="data", Key="dir/a b+c.bin", Body=b"x", IfNoneMatch="*"))
    assert (status, code) == (412, "PreconditionFailed")

    cp = c.copy_object(Bucket="data", Key="copy", CopySource={"Bucket": "data", "Key": "dir/a b+c.bin"})
    assert cp["CopyObjectResult"]["ETag"] == put["ETag"]
    assert c.get_object(Bucket="data", Key="copy")["Metadata"] == {"owner": "me"}
    c.copy_object(Bucket="unnamed", Key="replaced", CopySource="data/copy", MetadataDirective="REPLACE",
                  Metadata={"new": "yes"}, ContentType="text/plain")
    r = c.head_object(Bucket="unnamed", Key="replaced")
    assert (r["Metadata"], r["ContentType"], r["ContentLength"]) == ({"new": "yes"}, "text/plain", 3000)
    status, code, _ = error(lambda: c.copy_object(Bucket="data", Key="copy", CopySource="data/copy"))
    assert (status, code) == (400, "InvalidRequest")
    # The copy shares no fate with its source.
    c.delete_object(Bucket="data", Key="copy")
    assert c.get_object(Bucket="unnamed", Key="replaced")["Body"].read() == body

    assert c.get_object_tagging(Bucket="data", Key="dir/a b+c.bin")["TagSet"] == [
        {"Key": "team", "Value": "core"}, {"Key": "tier", "Value": "1"}]
    c.put_object_tagging(Bucket="data", Key="dir/a b+c.bin", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert c.get_object_tagging(Bucket="data", Key="dir/a b+c.bin")["TagSet"] == [{"Key": "k", "Value": "v"}]
    c.delete_object_tagging(Bucket="data", Key="dir/a b+c.bin")
    assert c.get_object_tagging(Bucket="data", Key="dir/a b+c.bin")["TagSet"] == []
    c.put_bucket_tagging(Bucket="data", Tagging={"TagSet": [{"Key": "env", "Value": "dev"}]})
    assert c.get_bucket_tagging(Bucket="data")["TagSet"] == [{"Key": "env", "Value": "dev"}]
    status, code, _ = error(lambda: c.get_bucket_tagging(Bucket="unnamed"))
    assert (status, code) == (404, "NoSuchTagSet")
    c.put_bucket_cors(Bucket="data", CORSConfiguration={"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]})
    assert c.get_bucket_cors(Bucket="data")["CORSRules"][0]["AllowedMethods"] == ["GET"]
    assert c.head_bucket(Bucket="data")["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"


def test_bad_input_gets_s3s_errors_and_nothing_is_half_written(start_nimbus):
    n = start_nimbus(BUCKET)
    c = s3(n)
    cases = [
        (lambda: c.create_bucket(Bucket="Bad_Name"), (400, "InvalidBucketName")),
        (lambda: c.create_bucket(Bucket="ab"), (400, "InvalidBucketName")),
        (lambda: c.head_bucket(Bucket="missing"), (404, "404")),
        (lambda: c.get_object(Bucket="missing", Key="k"), (404, "NoSuchBucket")),
        (lambda: c.get_object(Bucket="data", Key="missing"), (404, "NoSuchKey")),
        (lambda: c.put_object(Bucket="data", Key="k" * 1025, Body=b"x"), (400, "KeyTooLongError")),
        (lambda: c.put_object(Bucket="data", Key="md5", Body=b"abc", ContentMD5=base64.b64encode(hashlib.md5(b"abd").digest()).decode()),
         (400, "BadDigest")),
        (lambda: c.put_object(Bucket="data", Key="md5", Body=b"abc", ContentMD5="not-md5"), (400, "InvalidDigest")),
        (lambda: c.put_object(Bucket="data", Key="crc", Body=b"abc", ChecksumCRC32=base64.b64encode(b"\0\0\0\0").decode()),
         (400, "BadDigest")),
        (lambda: c.get_object(Bucket="data", Key="k", VersionId="nope"), (404, "NoSuchVersion")),
        (lambda: c.upload_part(Bucket="data", Key="k", UploadId="nope", PartNumber=1, Body=b"x"), (404, "NoSuchUpload")),
        (lambda: c.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Sometimes"}), (400, "MalformedXML")),
    ]
    for call, want in cases:
        status, code, _ = error(call)
        assert (status, code) == want
    # Nothing of a refused upload is visible.
    keys = [o["Key"] for o in c.list_objects_v2(Bucket="data").get("Contents", [])]
    assert keys == []
    assert os.listdir(n_state_tmp(n)) == []

    c.put_object(Bucket="data", Key="keep", Body=b"x")
    status, code, message = error(lambda: c.delete_bucket(Bucket="data"))
    assert (status, code, message) == (409, "BucketNotEmpty", "The bucket you tried to delete is not empty")

    up = c.create_multipart_upload(Bucket="data", Key="small")["UploadId"]
    e1 = c.upload_part(Bucket="data", Key="small", UploadId=up, PartNumber=1, Body=b"a" * 100)["ETag"]
    e2 = c.upload_part(Bucket="data", Key="small", UploadId=up, PartNumber=2, Body=b"b" * 100)["ETag"]
    status, code, _ = error(lambda: c.complete_multipart_upload(Bucket="data", Key="small", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]}))
    assert (status, code) == (400, "EntityTooSmall")
    status, code, _ = error(lambda: c.complete_multipart_upload(Bucket="data", Key="small", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]}))
    assert (status, code) == (400, "InvalidPartOrder")
    status, code, _ = error(lambda: c.complete_multipart_upload(Bucket="data", Key="small", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": '"0123"'}]}))
    assert (status, code) == (400, "InvalidPart")
    status, code, _ = error(lambda: c.upload_part(Bucket="data", Key="small", UploadId=up, PartNumber=10001, Body=b"x"))
    assert (status, code) == (400, "InvalidArgument")
    status, code, _ = error(lambda: c.head_object(Bucket="data", Key="small"))
    assert status == 404
    # An upload in progress keeps the bucket from being deleted; aborting frees it.
    c.delete_object(Bucket="data", Key="keep")
    assert error(lambda: c.delete_bucket(Bucket="data"))[1] == "BucketNotEmpty"
    c.abort_multipart_upload(Bucket="data", Key="small", UploadId=up)
    c.delete_bucket(Bucket="data")
    assert [b["Name"] for b in c.list_buckets()["Buckets"]] == ["unnamed"]


def n_state_tmp(n):
    """The folder partial uploads are written in (the state directory is beside the template)."""
    line = n.wait_for("nimbus: state directory ")
    return os.path.join(line.split("nimbus: state directory ", 1)[1].strip(), "s3", "tmp")


def test_listings_of_2500_keys_with_a_delimiter_and_pages(start_nimbus):
    n = start_nimbus(BUCKET)
    c = s3(n)
    keys = [f"logs/{d}/{i:04d}.txt" for d in ("a", "b") for i in range(1200)] + [f"top{i:03d}" for i in range(100)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: c.put_object(Bucket="data", Key=k, Body=k.encode()), keys))
    got, pages = [], 0
    for page in c.get_paginator("list_objects_v2").paginate(Bucket="data", PaginationConfig={"PageSize": 1000}):
        pages += 1
        got += [o["Key"] for o in page.get("Contents", [])]
    assert got == sorted(keys) and pages == 3
    r = c.list_objects_v2(Bucket="data", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["logs/"] and r["KeyCount"] == 101
    r = c.list_objects_v2(Bucket="data", Prefix="logs/", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["logs/a/", "logs/b/"] and "Contents" not in r
    # MaxKeys counts prefixes too; the token resumes after a common prefix.
    r = c.list_objects_v2(Bucket="data", Delimiter="/", MaxKeys=1)
    assert (r["IsTruncated"], [p["Prefix"] for p in r["CommonPrefixes"]]) == (True, ["logs/"])
    r = c.list_objects_v2(Bucket="data", Delimiter="/", MaxKeys=2, ContinuationToken=r["NextContinuationToken"])
    assert [o["Key"] for o in r["Contents"]] == ["top000", "top001"]
    v1 = c.list_objects(Bucket="data", Prefix="logs/b/", Marker="logs/b/1100.txt")
    assert [o["Key"] for o in v1["Contents"]] == [f"logs/b/{i:04d}.txt" for i in range(1101, 1200)]
    r = c.list_objects_v2(Bucket="data", StartAfter="top098")
    assert [o["Key"] for o in r["Contents"]] == ["top099"]
    assert error(lambda: c.list_objects_v2(Bucket="data", ContinuationToken="%%%"))[1] == "InvalidArgument"


def test_a_50_mib_multipart_upload_with_crc32_checksums(start_nimbus):
    n = start_nimbus(BUCKET)
    c = s3(n)
    data = os.urandom(50 * MiB)
    size = 8 * MiB
    parts = [data[i:i + size] for i in range(0, len(data), size)]
    up = c.create_multipart_upload(Bucket="data", Key="big", ChecksumAlgorithm="CRC32")["UploadId"]
    assert [u["UploadId"] for u in c.list_multipart_uploads(Bucket="data")["Uploads"]] == [up]
    done = []
    for i, p in enumerate(parts, 1):
        r = c.upload_part(Bucket="data", Key="big", UploadId=up, PartNumber=i, Body=p, ChecksumAlgorithm="CRC32")
        crc = base64.b64encode(zlib.crc32(p).to_bytes(4, "big")).decode()
        assert r["ChecksumCRC32"] == crc
        done.append({"PartNumber": i, "ETag": r["ETag"], "ChecksumCRC32": crc})
    listed = c.list_parts(Bucket="data", Key="big", UploadId=up)["Parts"]
    assert [p["Size"] for p in listed] == [len(p) for p in parts]
    r = c.complete_multipart_upload(Bucket="data", Key="big", UploadId=up, MultipartUpload={"Parts": done})
    want = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    assert r["ETag"] == f'"{want}-{len(parts)}"'
    composite = base64.b64encode(zlib.crc32(b"".join(base64.b64decode(d["ChecksumCRC32"]) for d in done)).to_bytes(4, "big")).decode()
    assert r["ChecksumCRC32"] == f"{composite}-{len(parts)}"
    g = c.get_object(Bucket="data", Key="big")
    assert hashlib.sha256(g["Body"].read()).digest() == hashlib.sha256(data).digest()
    r = c.get_object(Bucket="data", Key="big", Range=f"bytes={20 * MiB}-{20 * MiB + 99}")
    assert r["Body"].read() == data[20 * MiB:20 * MiB + 100]
    assert c.list_multipart_uploads(Bucket="data").get("Uploads", []) == []
    # One part by its number, as transfer managers download in parallel.
    p2 = c.get_object(Bucket="data", Key="big", PartNumber=2)
    assert (p2["PartsCount"], p2["ContentLength"], p2["ContentRange"]) == (len(parts), size, f"bytes {size}-{2 * size - 1}/{len(data)}")
    assert p2["Body"].read() == parts[1]
    assert error(lambda: c.get_object(Bucket="data", Key="big", PartNumber=len(parts) + 1))[:2] == (416, "InvalidPartNumber")


def test_versioning_keeps_versions_and_delete_markers(start_nimbus):
    n = start_nimbus(BUCKET)
    c = s3(n)
    c.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Enabled"})
    assert c.get_bucket_versioning(Bucket="data")["Status"] == "Enabled"
    v1 = c.put_object(Bucket="data", Key="doc", Body=b"one")["VersionId"]
    v2 = c.put_object(Bucket="data", Key="doc", Body=b"two")["VersionId"]
    assert v1 != v2
    assert c.get_object(Bucket="data", Key="doc")["Body"].read() == b"two"
    assert c.get_object(Bucket="data", Key="doc", VersionId=v1)["Body"].read() == b"one"
    d = c.delete_object(Bucket="data", Key="doc")
    assert d["DeleteMarker"] is True
    assert error(lambda: c.get_object(Bucket="data", Key="doc"))[:2] == (404, "NoSuchKey")
    r = c.list_object_versions(Bucket="data")
    assert [v["VersionId"] for v in r["Versions"]] == [v2, v1]
    assert [(m["VersionId"], m["IsLatest"]) for m in r["DeleteMarkers"]] == [(d["VersionId"], True)]
    assert "Contents" not in c.list_objects_v2(Bucket="data")
    # Removing the marker brings the newest version back.
    c.delete_object(Bucket="data", Key="doc", VersionId=d["VersionId"])
    assert c.get_object(Bucket="data", Key="doc")["Body"].read() == b"two"
    c.delete_object(Bucket="data", Key="doc", VersionId=v2)
    assert c.get_object(Bucket="data", Key="doc")["Body"].read() == b"one"


def test_the_aws_cli_copies_syncs_lists_and_removes(start_nimbus, tmp_path):
    n = start_nimbus(BUCKET)
    src = tmp_path / "site"
    (src / "css").mkdir(parents=True)
    (src / "index.html").write_text("<h1>hi</h1>")
    (src / "css" / "a b.css").write_text("body{}")
    big = os.urandom(9 * MiB)  # above the CLI's 8 MiB threshold: a multipart upload
    (tmp_path / "big.bin").write_bytes(big)
    cli_text(n, "s3", "cp", str(tmp_path / "big.bin"), "s3://data/big.bin")
    cli_text(n, "s3", "sync", str(src), "s3://data/site")
    cli_text(n, "s3", "cp", "s3://data/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big
    listed = sorted(line.split(maxsplit=3)[3] for line in cli_text(n, "s3", "ls", "--recursive", "s3://data/").splitlines())
    assert listed == ["big.bin", "site/css/a b.css", "site/index.html"]
    code, head, err = aws(n, "s3api", "head-object", "--bucket", "data", "--key", "site/css/a b.css")
    assert code == 0 and head["ContentLength"] == 6, err
    # A second sync uploads nothing new.
    assert cli_text(n, "s3", "sync", str(src), "s3://data/site") == ""
    cli_text(n, "s3", "rm", "--recursive", "s3://data/site")
    keys = [o["Key"] for o in s3(n).list_objects_v2(Bucket="data").get("Contents", [])]
    assert keys == ["big.bin"]


def cli_text(n, *args):
    """The AWS CLI's text output (`aws s3 ls` writes no JSON)."""
    cli = os.path.join(os.path.dirname(sys.executable), "aws")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run([cli, "--endpoint-url", n.endpoint, *args], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_presigned_urls_work_with_curl_until_they_expire(start_nimbus, tmp_path):
    n = start_nimbus(BUCKET)
    c = s3(n, signature_version="s3v4", s3={"addressing_style": "path"})
    body = os.urandom(5000)
    (tmp_path / "up.bin").write_bytes(body)
    put = c.generate_presigned_url("put_object", Params={"Bucket": "data", "Key": "p.bin"}, ExpiresIn=60)
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "--data-binary",
                        f"@{tmp_path / 'up.bin'}", put], capture_output=True, text=True, timeout=30)
    assert r.stdout == "200", r.stderr
    get = c.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": "p.bin"}, ExpiresIn=60)
    r = subprocess.run(["curl", "-sS", get], capture_output=True, timeout=30)
    assert r.stdout == body
    expired = c.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": "p.bin"}, ExpiresIn=1)
    time.sleep(2.1)
    r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", expired], capture_output=True, text=True, timeout=30)
    assert r.stdout.endswith("\n403") and "<Code>AccessDenied</Code>" in r.stdout and "Request has expired" in r.stdout


NOTIFY = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Events:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: s3-events
  Bus:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: bus-events
  Uploads:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: uploads
      NotificationConfiguration:
        EventBridgeConfiguration:
          EventBridgeEnabled: true
        QueueConfigurations:
          - Event: s3:ObjectRemoved:*
            Queue: !GetAtt Events.Arn
          - Event: s3:ObjectCreated:*
            Queue: !GetAtt Events.Arn
            Filter:
              S3Key:
                Rules:
                  - Name: prefix
                    Value: incoming/
  OnUpload:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src/
      Environment:
        Variables:
          OUT: {out}
      Events:
        Images:
          Type: S3
          Properties:
            Bucket: !Ref Uploads
            Events: s3:ObjectCreated:*
            Filter:
              S3Key:
                Rules:
                  - Name: suffix
                    Value: .jpg
  Created:
    Type: AWS::Events::Rule
    Properties:
      EventPattern:
        source: [aws.s3]
        detail-type: [Object Created]
      Targets:
        - Id: q
          Arn: !GetAtt Bus.Arn
"""

HANDLER = """
import json, os
def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(event) + "\\n")
"""


def test_notifications_reach_a_function_a_queue_and_eventbridge(start_nimbus, tmp_path):
    out = tmp_path / "events.jsonl"
    n = start_nimbus(NOTIFY.replace("{out}", str(out)), {"src/app.py": HANDLER})
    c, sqs = s3(n), n.client("sqs")
    c.put_object(Bucket="uploads", Key="incoming/cat.jpg", Body=b"meow")
    c.put_object(Bucket="uploads", Key="other/dog.png", Body=b"woof")
    c.delete_object(Bucket="uploads", Key="other/dog.png")

    lines = wait_until("the function's S3 event", lambda: out.exists() and out.read_text().splitlines())
    rec = json.loads(lines[0])["Records"][0]
    assert (rec["eventSource"], rec["eventName"], rec["s3"]["bucket"]["name"], rec["s3"]["object"]["key"], rec["s3"]["object"]["size"]) == \
        ("aws:s3", "ObjectCreated:Put", "uploads", "incoming/cat.jpg", 4)

    url = sqs.get_queue_url(QueueName="s3-events")["QueueUrl"]
    bodies = []
    deadline = time.time() + 10
    while len(bodies) < 3 and time.time() < deadline:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            bodies.append(json.loads(m["Body"]))
    # Setting the configuration (the template's, the first time) sends S3's test event, once
    # for the queue although two rules name it.
    tests = [b for b in bodies if b.get("Event") == "s3:TestEvent"]
    assert [(t["Service"], t["Bucket"]) for t in tests] == [("Amazon S3", "uploads")]
    got = [b["Records"][0] for b in bodies if "Records" in b]
    assert sorted((r["eventName"], r["s3"]["object"]["key"]) for r in got) == [
        ("ObjectCreated:Put", "incoming/cat.jpg"), ("ObjectRemoved:Delete", "other/dog.png")]

    url = sqs.get_queue_url(QueueName="bus-events")["QueueUrl"]
    events = []
    deadline = time.time() + 10
    while len(events) < 2 and time.time() < deadline:
        events += [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])]
    assert sorted(e["detail"]["object"]["key"] for e in events) == ["incoming/cat.jpg", "other/dog.png"]
    assert {(e["source"], e["detail-type"], e["detail"]["reason"]) for e in events} == {("aws.s3", "Object Created", "PutObject")}
    # The template's configuration is the bucket's, as the API reads it.
    cfg = c.get_bucket_notification_configuration(Bucket="uploads")
    assert len(cfg["QueueConfigurations"]) == 2 and len(cfg["LambdaFunctionConfigurations"]) == 1
    assert "EventBridgeConfiguration" in cfg
    # A configuration set through the API is checked as S3 checks it.
    status, code, _ = error(lambda: c.put_bucket_notification_configuration(Bucket="uploads", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": "arn:aws:sqs:us-east-1:123456789012:s3-events", "Events": ["s3:Nope"]}]}))
    assert (status, code) == (400, "InvalidArgument")


def test_kill_9_loses_no_acknowledged_object_and_shows_no_partial_one(tmp_path):
    (tmp_path / "template.yaml").write_text(BUCKET)
    n = Nimbus(tmp_path)
    c = s3(n)
    bodies = {f"k{i:02d}": os.urandom(100 + 37_000 * i) for i in range(40)}  # up to 1.4 MB: both write paths
    for k, b in bodies.items():
        c.put_object(Bucket="data", Key=k, Body=b)

    # An upload in flight when nimbus is killed: its body only half sent.
    host, port = n.endpoint.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(b"PUT /data/partial HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n"
              b"Authorization: AWS4-HMAC-SHA256 Credential=t/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x\r\n\r\n")
    s.sendall(os.urandom(4 * MiB))
    time.sleep(0.3)
    n.proc.kill()
    n.proc.wait()
    s.close()

    again = Nimbus(tmp_path)
    try:
        c = s3(again)
        for k, b in bodies.items():
            assert c.get_object(Bucket="data", Key=k)["Body"].read() == b, k
        assert error(lambda: c.head_object(Bucket="data", Key="partial"))[0] == 404
        assert len(c.list_objects_v2(Bucket="data")["Contents"]) == 40
        assert os.listdir(n_state_tmp(again)) == []
    finally:
        again.stop()


MAP_OVER_S3 = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Data:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: data
  FromCsv:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: from-csv
      Definition:
        StartAt: Each
        States:
          Each:
            Type: Map
            ItemReader:
              Resource: arn:aws:states:::s3:getObject
              ReaderConfig: {InputType: CSV, CSVHeaderLocation: FIRST_ROW}
              Parameters: {Bucket: data, "Key.$": "$.key"}
            ItemSelector: {"sku.$": "$$.Map.Item.Value.sku", "qty.$": "States.StringToJson($$.Map.Item.Value.qty)"}
            ItemProcessor:
              ProcessorConfig: {Mode: DISTRIBUTED, ExecutionType: STANDARD}
              StartAt: Double
              States:
                Double:
                  Type: Pass
                  Parameters: {"sku.$": "$.sku", "twice.$": "States.MathAdd($.qty, $.qty)"}
                  End: true
            ResultWriter:
              Resource: arn:aws:states:::s3:putObject
              Parameters: {Bucket: data, Prefix: results}
            End: true
  FromListing:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: from-listing
      Definition:
        StartAt: Each
        States:
          Each:
            Type: Map
            ItemReader:
              Resource: arn:aws:states:::s3:listObjectsV2
              Parameters: {Bucket: data, Prefix: in/}
            ItemProcessor:
              ProcessorConfig: {Mode: DISTRIBUTED, ExecutionType: EXPRESS}
              StartAt: Key
              States:
                Key: {Type: Pass, OutputPath: $.Key, End: true}
            ResultWriter:
              WriterConfig: {OutputType: JSON, Transformation: COMPACT}
            End: true
  FromParquet:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: from-parquet
      Definition:
        StartAt: Each
        States:
          Each:
            Type: Map
            ItemReader:
              Resource: arn:aws:states:::s3:getObject
              ReaderConfig: {InputType: PARQUET}
              Parameters: {Bucket: data, Key: fruit.parquet}
            ItemProcessor:
              ProcessorConfig: {Mode: DISTRIBUTED, ExecutionType: EXPRESS}
              StartAt: Name
              States:
                Name: {Type: Pass, End: true}
            End: true
  FromInventory:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: from-inventory
      Definition:
        StartAt: Each
        States:
          Each:
            Type: Map
            ItemReader:
              Resource: arn:aws:states:::s3:getObject
              ReaderConfig: {InputType: MANIFEST}
              Parameters: {Bucket: data, "Key.$": "$.manifest"}
            ItemProcessor:
              ProcessorConfig: {Mode: DISTRIBUTED, ExecutionType: STANDARD}
              StartAt: Name
              States:
                Name: {Type: Pass, Parameters: {"key.$": "$.Key", "size.$": "$.Size"}, End: true}
            End: true
"""


FRUIT_PARQUET = (
    "UEFSMRUEFTAVLkwVBhUAEgAAGAQBAAkBPAIAAAAAAAAAAwAAAAAAAAAVABUIFQwsFQYVEBUGFQYcNgAoCAMAAAAAAAAAGAgB"
    "AAAAAAAAABERAAAABAwCAyQAFQQVMhU2TBUGFQASAAAZYAUAAABhcHBsZQQAAABwZWFyBAAAAHBsdW0VABUIFQwsFQYVEBUG"
    "FQYcNgAoBHBsdW0YBWFwcGxlEREAAAAEDAIDJAAZEQIZGAgBAAAAAAAAABkYCAMAAAAAAAAAFQIZFgAAGRECGRgFYXBwbGUZ"
    "GARwbHVtFQIZFgAAGRwWUhViFgAAABkcFoYCFVQWAAAZFhoAFQIZPEgEaXRlbRUEABUEJQAYAmlkABUMJQAYBG5hbWUlAAAW"
    "BhkcGSwmABwVBBk1AAYQGRgCaWQVAhYGFqoBFqwBJlImCBwYCAMAAAAAAAAAGAgBAAAAAAAAABYAKAgDAAAAAAAAABgIAQAA"
    "AAAAAAAREQAZLBUEFQAVAgAVABUQFQIAABbIAxUUFtoCFT4AJgAcFQwZNQAGEBkYBG5hbWUVAhYGFp4BFqYBJoYCJrQBHDYA"
    "KARwbHVtGAVhcHBsZRERABksFQQVABUCABUAFRAVAgA8FhoAABbcAxUcFpgDFTAAFsgCFgYmCBbSAhQAACgZcGFycXVldC1y"
    "cyB2ZXJzaW9uIDU1LjIuMBksHAAAHAAAABUBAABQQVIx"
)


def test_a_distributed_map_reads_items_from_s3_and_writes_its_results_there(start_nimbus):
    n = start_nimbus(MAP_OVER_S3)
    c, sfn = s3(n), n.client("stepfunctions")
    c.put_object(Bucket="data", Key="orders.csv", Body=b'sku,qty\nA-1,2\n"B,2",5\n')
    for k in ("in/a.txt", "in/b.txt", "other/c.txt"):
        c.put_object(Bucket="data", Key=k, Body=b"x")

    last = {}

    def run(machine, payload):
        arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:{machine}"
        ex = last["arn"] = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
        d = wait_until("the execution's end", lambda: (lambda d: d if d["status"] != "RUNNING" else None)(
            sfn.describe_execution(executionArn=ex)))
        assert d["status"] == "SUCCEEDED", d
        return json.loads(d["output"])

    out = run("from-csv", {"key": "orders.csv"})
    # Without a Label, Step Functions names the run with a generated label, not the state's name.
    uid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    assert re.fullmatch(f"arn:aws:states:us-east-1:123456789012:mapRun:from-csv/{uid}:{uid}", out["MapRunArn"]), out
    assert out["MapRunArn"] in [r["mapRunArn"] for r in sfn.list_map_runs(executionArn=last["arn"])["mapRuns"]]
    manifest_key = out["ResultWriterDetails"]["Key"]
    assert out["ResultWriterDetails"]["Bucket"] == "data" and manifest_key.startswith("results/")
    manifest = json.loads(c.get_object(Bucket="data", Key=manifest_key)["Body"].read())
    assert manifest["MapRunArn"] == out["MapRunArn"] and manifest["ResultFiles"]["FAILED"] == []
    [done] = manifest["ResultFiles"]["SUCCEEDED"]
    results = json.loads(c.get_object(Bucket="data", Key=done["Key"])["Body"].read())
    assert [json.loads(r["Output"]) for r in results] == [{"sku": "A-1", "twice": 4}, {"sku": "B,2", "twice": 10}]
    assert {r["Status"] for r in results} == {"SUCCEEDED"} and json.loads(results[0]["Input"]) == {"sku": "A-1", "qty": 2}

    assert run("from-listing", {}) == ["in/a.txt", "in/b.txt"]

    # An S3 Inventory report: its manifest names gzip'd CSV files whose rows are the items.
    import gzip
    c.put_object(Bucket="data", Key="inv/data/1.csv.gz",
                 Body=gzip.compress(b'"photos","a.jpg","12"\n"photos","b, c.jpg","7"\n'))
    c.put_object(Bucket="data", Key="inv/data/2.csv.gz", Body=gzip.compress(b'"photos","d.jpg","1"\n'))
    c.put_object(Bucket="data", Key="inv/manifest.json", Body=json.dumps({
        "sourceBucket": "photos", "destinationBucket": "arn:aws:s3:::data", "version": "2016-11-30",
        "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size",
        "files": [{"key": "inv/data/1.csv.gz", "size": 1, "MD5checksum": "x"},
                  {"key": "inv/data/2.csv.gz", "size": 1, "MD5checksum": "x"}]}).encode())
    assert run("from-inventory", {"manifest": "inv/manifest.json"}) == [
        {"key": "a.jpg", "size": "12"}, {"key": "b, c.jpg", "size": "7"}, {"key": "d.jpg", "size": "1"}]
    # A Parquet object (written by parquet-rs from three (id INT64, name UTF8) rows, Snappy
    # pages): its rows are the items, typed as their columns are.
    import base64
    c.put_object(Bucket="data", Key="fruit.parquet", Body=base64.b64decode(FRUIT_PARQUET))
    assert run("from-parquet", {}) == [{"id": 1, "name": "apple"}, {"id": 2, "name": "pear"}, {"id": 3, "name": "plum"}]
    # A manifest that names a missing file fails the Map, naming the file.
    c.put_object(Bucket="data", Key="inv/broken.json", Body=json.dumps({
        "destinationBucket": "data", "fileFormat": "CSV", "fileSchema": "Bucket, Key",
        "files": [{"key": "inv/data/gone.csv.gz"}]}).encode())
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:from-inventory"
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"manifest": "inv/broken.json"}))["executionArn"]
    d = wait_until("the failure", lambda: (lambda d: d if d["status"] != "RUNNING" else None)(sfn.describe_execution(executionArn=ex)))
    assert (d["status"], d["error"]) == ("FAILED", "States.ItemReaderFailed") and "inv/data/gone.csv.gz" in d["cause"], d

    # A missing object fails the Map with States.ItemReaderFailed, naming S3's error.
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:from-csv"
    ex = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"key": "missing.csv"}))["executionArn"]
    d = wait_until("the failure", lambda: (lambda d: d if d["status"] != "RUNNING" else None)(sfn.describe_execution(executionArn=ex)))
    assert d["status"] == "FAILED" and d["error"] == "States.ItemReaderFailed" and "NoSuchKey" in d["cause"]


CORS = """
Resources:
  Site:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: site
      CorsConfiguration:
        CorsRules:
          - AllowedOrigins: ["http://*.example.com"]
            AllowedMethods: [GET, PUT]
            AllowedHeaders: ["content-type", "x-amz-*"]
            ExposedHeaders: [ETag]
            MaxAge: 600
  Plain:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: plain
"""


def test_cors_preflights_and_responses_follow_the_buckets_rules(start_nimbus):
    import requests
    n = start_nimbus(CORS)
    c = s3(n)
    c.put_object(Bucket="site", Key="index.html", Body=b"<h1>hi</h1>", ContentType="text/html")
    ok = requests.options(f"{n.endpoint}/site/index.html", headers={
        "Origin": "http://app.example.com", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "Content-Type, X-Amz-Meta-Owner"}, timeout=10)
    assert ok.status_code == 200, ok.text
    h = ok.headers
    assert (h["Access-Control-Allow-Origin"], h["Access-Control-Allow-Methods"], h["Access-Control-Max-Age"]) == \
        ("http://app.example.com", "GET, PUT", "600")
    assert h["Access-Control-Allow-Headers"] == "content-type, x-amz-meta-owner"
    refused = requests.options(f"{n.endpoint}/site/index.html", headers={
        "Origin": "http://evil.test", "Access-Control-Request-Method": "GET"}, timeout=10)
    assert refused.status_code == 403 and "<Code>AccessForbidden</Code>" in refused.text
    none = requests.options(f"{n.endpoint}/plain/x", headers={
        "Origin": "http://app.example.com", "Access-Control-Request-Method": "GET"}, timeout=10)
    assert none.status_code == 403 and "CORS is not enabled for this bucket" in none.text
    # An actual browser GET gets the headers; the object comes back as usual.
    g = requests.get(f"{n.endpoint}/site/index.html", headers={"Origin": "http://www.example.com"}, timeout=10)
    assert g.status_code == 200 and g.headers["Access-Control-Allow-Origin"] == "http://www.example.com"
    assert g.headers["Access-Control-Expose-Headers"] == "ETag"
    # The API reads and replaces the configuration, checked as S3 checks it.
    assert c.get_bucket_cors(Bucket="site")["CORSRules"][0]["MaxAgeSeconds"] == 600
    status, code, _ = error(lambda: c.put_bucket_cors(Bucket="plain", CORSConfiguration={
        "CORSRules": [{"AllowedMethods": ["PATCH"], "AllowedOrigins": ["*"]}]}))
    assert (status, code) == (400, "InvalidRequest")
    c.put_bucket_cors(Bucket="plain", CORSConfiguration={"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]})
    anyone = requests.options(f"{n.endpoint}/plain/x", headers={"Origin": "http://x.test", "Access-Control-Request-Method": "GET"}, timeout=10)
    assert anyone.status_code == 200 and anyone.headers["Access-Control-Allow-Origin"] == "*"
    c.delete_bucket_cors(Bucket="plain")
    assert error(lambda: c.get_bucket_cors(Bucket="plain"))[:2] == (404, "NoSuchCORSConfiguration")


LIFECYCLE = """
Resources:
  Scratch:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: scratch
      LifecycleConfiguration:
        Rules:
          - Id: tmp
            Status: Enabled
            Prefix: tmp/
            ExpirationInDays: 1
            AbortIncompleteMultipartUpload: {DaysAfterInitiation: 1}
"""


def test_lifecycle_rules_expire_objects_and_uploads_in_scaled_days(start_nimbus):
    # --delay-scale 0.00005: a lifecycle day is 4.3 s.
    n = start_nimbus(LIFECYCLE, args=["--delay-scale", "0.00005"])
    c = s3(n)
    rules = c.get_bucket_lifecycle_configuration(Bucket="scratch")["Rules"]
    assert [(r["ID"], r["Expiration"]["Days"]) for r in rules] == [("tmp", 1)]
    c.put_object(Bucket="scratch", Key="tmp/a", Body=b"a")
    c.put_object(Bucket="scratch", Key="keep/b", Body=b"b")
    up = c.create_multipart_upload(Bucket="scratch", Key="tmp/big")["UploadId"]
    wait_until("tmp/a to expire", lambda: [o["Key"] for o in c.list_objects_v2(Bucket="scratch")["Contents"]] == ["keep/b"], timeout=20)
    wait_until("the upload to be aborted", lambda: c.list_multipart_uploads(Bucket="scratch").get("Uploads", []) == [], timeout=10)
    assert error(lambda: c.upload_part(Bucket="scratch", Key="tmp/big", UploadId=up, PartNumber=1, Body=b"x"))[1] == "NoSuchUpload"
    # A configuration set through the API replaces the template's, checked as S3 checks it.
    status, code, _ = error(lambda: c.put_bucket_lifecycle_configuration(Bucket="scratch", LifecycleConfiguration={
        "Rules": [{"ID": "zero", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 0}}]}))
    assert (status, code) == (400, "InvalidArgument")


def test_a_presigned_post_uploads_from_a_form_within_its_policy(start_nimbus):
    import requests
    n = start_nimbus(BUCKET)
    c = s3(n, signature_version="s3v4", s3={"addressing_style": "path"})
    post = c.generate_presigned_post("data", "uploads/${filename}", Fields={"Content-Type": "text/plain"},
                                     Conditions=[["starts-with", "$key", "uploads/"], {"Content-Type": "text/plain"},
                                                 ["content-length-range", 1, 100]], ExpiresIn=60)
    r = requests.post(post["url"], data=post["fields"], files={"file": ("note.txt", b"posted from a form")}, timeout=10)
    assert r.status_code == 204, r.text
    g = c.get_object(Bucket="data", Key="uploads/note.txt")
    assert (g["Body"].read(), g["ContentType"]) == (b"posted from a form", "text/plain")
    assert r.headers["ETag"] == g["ETag"]
    # Outside the policy: too large, or a key it does not allow.
    big = requests.post(post["url"], data=post["fields"], files={"file": ("big.txt", b"x" * 101)}, timeout=10)
    assert big.status_code == 400 and "<Code>EntityTooLarge</Code>" in big.text
    fields = dict(post["fields"], key="private/x")
    other = requests.post(post["url"], data=fields, files={"file": ("x", b"x")}, timeout=10)
    assert other.status_code == 403 and "Policy Condition failed" in other.text
    assert [o["Key"] for o in c.list_objects_v2(Bucket="data")["Contents"]] == ["uploads/note.txt"]
    # success_action_status 201 answers with the document S3 sends.
    post = c.generate_presigned_post("data", "k201", Fields={"success_action_status": "201"},
                                     Conditions=[{"success_action_status": "201"}], ExpiresIn=60)
    r = requests.post(post["url"], data=post["fields"], files={"file": ("f", b"y")}, timeout=10)
    assert r.status_code == 201 and "<Key>k201</Key>" in r.text
