"""DynamoDB against nimbus with boto3 (client and resource APIs) and the AWS CLI: tables from the
template and the API, every attribute type with exact numbers, expressions, queries and scans
with pagination, secondary indexes, batches, transactions, DynamoDB's validation messages,
durability across `kill -9`, DynamoDB Streams and stream-triggered functions."""

import concurrent.futures
import json
import time
import urllib.error
import urllib.request
from decimal import Decimal

import boto3
import pytest
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from conftest import aws, wait_until

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Cars:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: cars
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: N}
        - {AttributeName: status, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: by-status
          KeySchema:
            - {AttributeName: status, KeyType: HASH}
          Projection: {ProjectionType: ALL}
      StreamSpecification:
        StreamViewType: NEW_AND_OLD_IMAGES
      TimeToLiveSpecification:
        AttributeName: expires
        Enabled: true
  Simple:
    Type: AWS::Serverless::SimpleTable
    Properties:
      PrimaryKey: {Name: id, Type: Number}
"""

S = lambda x: {"S": x}  # noqa: E731
N = lambda x: {"N": str(x)}  # noqa: E731


@pytest.fixture
def n(start_nimbus):
    return start_nimbus(TEMPLATE)


@pytest.fixture
def ddb(n):
    return n.client("dynamodb")


def error(excinfo):
    e = excinfo.value.response["Error"]
    return e["Code"], e["Message"]


def test_template_tables_are_described_as_cloudformation_made_them(n, ddb):
    n.wait_for("nimbus: DynamoDB table cars")
    t = ddb.describe_table(TableName="cars")["Table"]
    assert t["TableStatus"] == "ACTIVE"
    assert t["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert t["GlobalSecondaryIndexes"][0]["IndexName"] == "by-status"
    assert t["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert t["LatestStreamArn"].startswith("arn:aws:dynamodb:us-east-1:") and "/stream/" in t["LatestStreamArn"]
    assert t["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    simple = ddb.describe_table(TableName="Simple")["Table"]
    assert simple["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "N"}]
    assert ddb.describe_time_to_live(TableName="cars")["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
    assert sorted(ddb.list_tables()["TableNames"]) == ["Simple", "cars"]


def test_every_type_round_trips_with_exact_numbers(ddb):
    item = {
        "pk": S("types"), "sk": N(1), "str": S("h\u00e9llo"),
        "big": N("12345678901234567890123456789012345678"), "frac": N("-1234.5678901234567890123456789012345678"),
        "bin": {"B": b"\x00\xff"}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [b"\x01"]},
        "lst": {"L": [S("x"), {"NULL": True}, {"M": {}}]}, "map": {"M": {"k": {"BOOL": False}}}, "nothing": {"NULL": True},
    }
    ddb.put_item(TableName="cars", Item=item)
    got = ddb.get_item(TableName="cars", Key={"pk": S("types"), "sk": N(1)}, ConsistentRead=True)["Item"]
    got["ss"]["SS"].sort()
    got["ns"]["NS"].sort()
    assert got == item
    ddb.put_item(TableName="cars", Item={"pk": S("norm"), "sk": N(1), "n": N("1.50E+2")})
    assert ddb.get_item(TableName="cars", Key={"pk": S("norm"), "sk": N(1)})["Item"]["n"] == N("150")
    with pytest.raises(ClientError) as e:  # 1234...679 is not 1234...678, though they are equal as floats
        ddb.update_item(TableName="cars", Key={"pk": S("types"), "sk": N(1)}, UpdateExpression="SET t = :t",
                        ConditionExpression="big = :v",
                        ExpressionAttributeValues={":t": N(1), ":v": N("12345678901234567890123456789012345679")})
    assert error(e)[0] == "ConditionalCheckFailedException"


def test_conditions_updates_and_return_values(ddb):
    key = {"pk": S("c"), "sk": N(1)}
    ddb.put_item(TableName="cars", Item=dict(key, v=S("first")), ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName="cars", Item=dict(key, v=S("second")), ConditionExpression="attribute_not_exists(pk)",
                     ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert error(e) == ("ConditionalCheckFailedException", "The conditional request failed")
    assert e.value.response["Item"] == dict(key, v=S("first"))
    ddb.put_item(TableName="cars", Item=dict(key, a=N(5), lst={"L": [S("x")]}, gone=S("bye"), tags={"NS": ["1", "2"]}))
    r = ddb.update_item(
        TableName="cars", Key=key,
        UpdateExpression="SET #a = #a + :one, lst = list_append(lst, :more) REMOVE gone ADD tags :three",
        ExpressionAttributeNames={"#a": "a"},
        ExpressionAttributeValues={":one": N(1), ":more": {"L": [S("y")]}, ":three": {"NS": ["3"]}},
        ReturnValues="UPDATED_NEW")
    assert r["Attributes"]["a"] == N(6) and r["Attributes"]["lst"] == {"L": [S("x"), S("y")]}
    assert sorted(r["Attributes"]["tags"]["NS"]) == ["1", "2", "3"]
    now = ddb.get_item(TableName="cars", Key=key)["Item"]
    assert "gone" not in now
    old = ddb.delete_item(TableName="cars", Key=key, ReturnValues="ALL_OLD")["Attributes"]
    assert old["a"] == N(6)
    assert "Item" not in ddb.get_item(TableName="cars", Key=key)


def test_resource_api_queries_pages_and_indexes(n):
    table = boto3.resource("dynamodb", endpoint_url=n.endpoint, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test").Table("cars")
    with table.batch_writer() as w:
        for i in range(1, 8):
            w.put_item(Item={"pk": "range", "sk": i, "status": "open" if i % 2 else "sold", "price": Decimal(i) * 1000})
    pages, start = [], None
    while True:
        kw = {"KeyConditionExpression": Key("pk").eq("range") & Key("sk").between(2, 6),
              "ScanIndexForward": False, "Limit": 2}
        if start:
            kw["ExclusiveStartKey"] = start
        r = table.query(**kw)
        pages.append([int(i["sk"]) for i in r["Items"]])
        start = r.get("LastEvaluatedKey")
        if not start:
            break
    assert [x for p in pages for x in p] == [6, 5, 4, 3, 2]
    assert all(len(p) <= 2 for p in pages)
    r = table.query(IndexName="by-status", KeyConditionExpression=Key("status").eq("open"),
                    FilterExpression=Attr("price").gte(3000))
    assert sorted(int(i["sk"]) for i in r["Items"]) == [3, 5, 7]
    assert r["ScannedCount"] == 4 and r["Count"] == 3
    r = table.scan(FilterExpression=Attr("pk").eq("range"), Select="COUNT")
    assert r["Count"] == 7 and "Items" not in r
    segments = [table.scan(Segment=s, TotalSegments=3)["Items"] for s in range(3)]
    keys = sorted((i["pk"], int(i["sk"])) for seg in segments for i in seg if i["pk"] == "range")
    assert keys == [("range", i) for i in range(1, 8)]


def test_batches_and_transactions(ddb):
    ddb.batch_write_item(RequestItems={"cars": [
        {"PutRequest": {"Item": {"pk": S(f"b{i}"), "sk": N(0)}}} for i in range(5)]})
    got = ddb.batch_get_item(RequestItems={"cars": {"Keys": [{"pk": S(f"b{i}"), "sk": N(0)} for i in range(6)]}})
    assert sorted(i["pk"]["S"] for i in got["Responses"]["cars"]) == [f"b{i}" for i in range(5)]
    assert got["UnprocessedKeys"] == {}
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "cars", "Item": {"pk": S("tx-a"), "sk": N(1)}}},
            {"ConditionCheck": {"TableName": "cars", "Key": {"pk": S("b0"), "sk": N(0)},
                                "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Delete": {"TableName": "cars", "Key": {"pk": S("b1"), "sk": N(0)}}},
        ])
    assert error(e)[0] == "TransactionCanceledException"
    assert [r["Code"] for r in e.value.response["CancellationReasons"]] == ["None", "ConditionalCheckFailed", "None"]
    assert "Item" not in ddb.get_item(TableName="cars", Key={"pk": S("tx-a"), "sk": N(1)})
    assert "Item" in ddb.get_item(TableName="cars", Key={"pk": S("b1"), "sk": N(0)})
    ddb.transact_write_items(ClientRequestToken="t1", TransactItems=[
        {"Update": {"TableName": "cars", "Key": {"pk": S("b2"), "sk": N(0)}, "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": N(1)}}}])
    # The same token again within ten minutes is not applied twice.
    ddb.transact_write_items(ClientRequestToken="t1", TransactItems=[
        {"Update": {"TableName": "cars", "Key": {"pk": S("b2"), "sk": N(0)}, "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": N(1)}}}])
    got = ddb.transact_get_items(TransactItems=[{"Get": {"TableName": "cars", "Key": {"pk": S("b2"), "sk": N(0)}}},
                                                {"Get": {"TableName": "cars", "Key": {"pk": S("nope"), "sk": N(0)}}}])
    assert got["Responses"][0]["Item"]["n"] == N(1) and got["Responses"][1] == {}


def test_concurrent_conditional_writes_have_exactly_one_winner(n):
    def attempt(i):
        c = n.client("dynamodb")
        try:
            c.put_item(TableName="cars", Item={"pk": S("race"), "sk": N(0), "who": N(i)},
                       ConditionExpression="attribute_not_exists(pk)")
            return True
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        wins = list(ex.map(attempt, range(16)))
    assert wins.count(True) == 1


BAD = [
    ("put_item", dict(TableName="cars", Item={"pk": N(1), "sk": N(1)}),
     "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N"),
    ("put_item", dict(TableName="cars", Item={"pk": S(""), "sk": N(1)}),
     "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk"),
    ("put_item", dict(TableName="cars", Item={"sk": N(1)}),
     "One or more parameter values were invalid: Missing the key pk in the item"),
    ("put_item", dict(TableName="cars", Item={"pk": S("x"), "sk": N(1), "big": S("x" * 410_000)}),
     "Item size has exceeded the maximum allowed size"),
    ("put_item", dict(TableName="cars", Item={"pk": S("x"), "sk": N(1), "status": N(1)}),
     "One or more parameter values were invalid: Type mismatch for Index Key status Expected: S Actual: N IndexName: by-status"),
    ("get_item", dict(TableName="cars", Key={"pk": S("x")}), "The provided key element does not match the schema"),
    ("put_item", dict(TableName="cars", Item={"pk": S("x"), "sk": N("1e200")}),
     "Number overflow. Attempting to store a number with magnitude larger than supported range"),
    ("update_item", dict(TableName="cars", Key={"pk": S("x"), "sk": N(1)}, UpdateExpression="SET pk = :v",
                         ExpressionAttributeValues={":v": S("y")}),
     "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"),
    ("query", dict(TableName="cars", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": S("x")},
                   ExclusiveStartKey={"nope": S("x")}),
     "The provided starting key is invalid: The provided key element does not match the schema"),
    ("batch_write_item", dict(RequestItems={"cars": [{"PutRequest": {"Item": {"pk": S("d"), "sk": N(0)}}}] * 2}),
     "Provided list of item keys contains duplicates"),
    ("transact_write_items", dict(TransactItems=[{"Put": {"TableName": "cars", "Item": {"pk": S("d"), "sk": N(0)}}}] * 2),
     "Transaction request cannot include multiple operations on one item"),
    ("put_item", dict(TableName="cars", Item={"pk": S("x"), "sk": N(1)}, ReturnValues="ALL_NEW"),
     "ReturnValues can only be ALL_OLD or NONE"),
]


@pytest.mark.parametrize("op,kw,message", BAD, ids=[b[2][:60] for b in BAD])
def test_bad_input_gets_dynamodb_validation_messages_and_writes_nothing(ddb, op, kw, message):
    before = ddb.scan(TableName="cars", ConsistentRead=True)["Count"]
    with pytest.raises(ClientError) as e:
        getattr(ddb, op)(**kw)
    assert error(e) == ("ValidationException", message)
    assert ddb.scan(TableName="cars", ConsistentRead=True)["Count"] == before


def raw(n, action, body):
    """A DynamoDB call as bytes on the wire, for what boto3 refuses before sending."""
    req = urllib.request.Request(n.endpoint + "/", data=body.encode(), method="POST", headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDB_20120810.{action}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


RAW_BAD = [
    ("Query", '{"TableName": "cars", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "x"}}, "Limit": 0}',
     "ValidationException",
     "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"),
    ("PutItem", '{"TableName": "cars", "Item": {"pk": {"S": "x", "N": "1"}, "sk": {"N": "1"}}}', "ValidationException",
     "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"),
    ("PutItem", '{"TableName": "ca", "Item": {}}', "ValidationException",
     "1 validation error detected: Value 'ca' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3"),
    ("Frobnicate", "{}", "UnknownOperationException", None),
    ("PutItem", "{not json", "SerializationException", None),
]


@pytest.mark.parametrize("action,body,code,message", RAW_BAD, ids=[r[0] + ":" + r[2] for r in RAW_BAD])
def test_malformed_requests_get_dynamodb_errors(n, action, body, code, message):
    status, answer = raw(n, action, body)
    assert status == 400
    assert answer["__type"].rsplit("#", 1)[1] == code
    if message:
        assert answer["message"] == message


def test_missing_tables_and_existing_tables(ddb):
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName="nope", Key={"pk": S("x")})
    assert error(e) == ("ResourceNotFoundException", "Requested resource not found")
    with pytest.raises(ClientError) as e:
        ddb.create_table(TableName="cars", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    assert error(e) == ("ResourceInUseException", "Table already exists: cars")


def test_the_aws_cli_creates_writes_and_queries(n):
    rc, out, err = aws(n, "dynamodb", "create-table", "--table-name", "cli",
                       "--attribute-definitions", "AttributeName=id,AttributeType=S",
                       "--key-schema", "AttributeName=id,KeyType=HASH", "--billing-mode", "PAY_PER_REQUEST")
    assert rc == 0, err
    assert out["TableDescription"]["TableName"] == "cli"
    rc, _, err = aws(n, "dynamodb", "wait", "table-exists", "--table-name", "cli")
    assert rc == 0, err
    rc, _, err = aws(n, "dynamodb", "put-item", "--table-name", "cli", "--item", '{"id": {"S": "a"}, "n": {"N": "1"}}')
    assert rc == 0, err
    rc, out, err = aws(n, "dynamodb", "query", "--table-name", "cli", "--key-condition-expression", "id = :i",
                       "--expression-attribute-values", '{":i": {"S": "a"}}')
    assert rc == 0, err
    assert out["Items"] == [{"id": {"S": "a"}, "n": {"N": "1"}}]
    rc, _, err = aws(n, "dynamodb", "get-item", "--table-name", "cli", "--key", '{"id": {"N": "1"}}')
    assert rc != 0 and "Type mismatch for key id expected: S actual: N" in err
    rc, out, err = aws(n, "dynamodb", "delete-table", "--table-name", "cli")
    assert rc == 0 and out["TableDescription"]["TableStatus"] == "DELETING", err


def test_acknowledged_writes_survive_kill_9(start_nimbus):
    n = start_nimbus(TEMPLATE)
    ddb = n.client("dynamodb")
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: ddb.put_item(TableName="cars", Item={"pk": S(f"dur-{i}"), "sk": N(0), "i": N(i)}),
                    range(200)))
    ddb.create_table(TableName="made-by-api", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    ddb.put_item(TableName="made-by-api", Item={"id": S("kept")})
    n.proc.kill()
    n.proc.wait()
    again = start_nimbus(TEMPLATE)
    ddb = again.client("dynamodb")
    found = sum(1 for i in range(200) if ddb.get_item(TableName="cars", Key={"pk": S(f"dur-{i}"), "sk": N(0)})
                .get("Item", {}).get("i") == N(i))
    assert found == 200
    assert ddb.get_item(TableName="made-by-api", Key={"id": S("kept")})["Item"] == {"id": S("kept")}


def test_streams_api_reads_changes_in_order(n, ddb):
    streams = n.client("dynamodbstreams")
    key = {"pk": S("s"), "sk": N(1)}
    ddb.put_item(TableName="cars", Item=dict(key, v=N(1)))
    ddb.put_item(TableName="cars", Item=dict(key, v=N(1)))  # no change: no record
    ddb.update_item(TableName="cars", Key=key, UpdateExpression="SET v = :two", ExpressionAttributeValues={":two": N(2)})
    ddb.delete_item(TableName="cars", Key=key)
    arn = ddb.describe_table(TableName="cars")["Table"]["LatestStreamArn"]
    assert streams.list_streams(TableName="cars")["Streams"][0]["StreamArn"] == arn
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    recs = streams.get_records(ShardIterator=it)["Records"]
    assert [r["eventName"] for r in recs] == ["INSERT", "MODIFY", "REMOVE"]
    assert recs[1]["dynamodb"]["OldImage"]["v"] == N(1) and recs[1]["dynamodb"]["NewImage"]["v"] == N(2)
    assert recs[2]["dynamodb"]["Keys"] == key


STREAM_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: orders
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
  Failed:
    Type: AWS::SQS::Queue
  Recorder:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src/
      Environment:
        Variables:
          CALLS: CALLS_FILE
      Events:
        Changes:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Orders.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 10
            MaximumRetryAttempts: 1
            DestinationConfig:
              OnFailure:
                Destination: !GetAtt Failed.Arn
"""

RECORDER = """
import json, os
def handler(event, context):
    with open(os.environ["CALLS"], "a") as f:
        f.write(json.dumps(event["Records"]) + "\\n")
    for r in event["Records"]:
        if r["dynamodb"]["Keys"]["id"]["S"] == "poison":
            raise RuntimeError("poison record")
    return {}
"""


def test_a_stream_triggered_function_sees_every_change_in_order_and_poison_goes_to_on_failure(start_nimbus, calls):
    n = start_nimbus(STREAM_TEMPLATE.replace("CALLS_FILE", str(calls)), files={"src/app.py": RECORDER},
                     args=("--delay-scale", "0.01"))
    n.wait_for("nimbus: stream orders -> Recorder")
    ddb = n.client("dynamodb")
    ddb.put_item(TableName="orders", Item={"id": S("o1"), "v": N(1)})
    ddb.update_item(TableName="orders", Key={"id": S("o1")}, UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": N(2)})
    ddb.delete_item(TableName="orders", Key={"id": S("o1")})

    def seen():
        if not calls.exists():
            return []
        return [r for line in calls.read_text().splitlines() for r in json.loads(line)]
    def o1():
        return [r for r in seen() if r["dynamodb"]["Keys"]["id"] == S("o1")]
    mine = wait_until("three stream records of o1", lambda: len(o1()) >= 3 and o1())
    assert [r["eventName"] for r in mine] == ["INSERT", "MODIFY", "REMOVE"]
    assert mine[0]["eventSource"] == "aws:dynamodb" and ":table/orders/stream/" in mine[0]["eventSourceARN"]
    assert "OldImage" not in mine[0]["dynamodb"] and mine[2]["dynamodb"]["OldImage"]["v"] == N(2)

    ddb.put_item(TableName="orders", Item={"id": S("poison")})
    sqs = n.client("sqs")
    url = sqs.get_queue_url(QueueName="Failed")["QueueUrl"]
    msgs = wait_until("the OnFailure record", lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"))
    info = json.loads(msgs[0]["Body"])
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["requestContext"]["approximateInvokeCount"] == 2
    assert info["DDBStreamBatchInfo"]["batchSize"] == 1
    # The stream moves on after giving up on the poison record.
    ddb.put_item(TableName="orders", Item={"id": S("after")})
    wait_until("the record after the poison one", lambda: any(r["dynamodb"]["Keys"]["id"] == S("after") for r in seen()))


WINDOWED = STREAM_TEMPLATE.replace("""            BatchSize: 10
            MaximumRetryAttempts: 1""", """            BatchSize: 10
            MaximumRetryAttempts: 1
            ParallelizationFactor: 4
            TumblingWindowInSeconds: 2""")

COUNTER = """
import json, os
def handler(event, context):
    state = event.get("state") or {}
    with open(os.environ["CALLS"], "a") as f:
        f.write(json.dumps({"final": event["isFinalInvokeForWindow"], "early": event["isWindowTerminatedEarly"],
                            "window": event["window"], "state": state, "shard": event["shardId"],
                            "records": [[r["dynamodb"]["Keys"]["id"]["S"], r["dynamodb"]["NewImage"]["v"]["N"]]
                                        for r in event["Records"]]}) + "\\n")
    return {"state": {"count": state.get("count", 0) + len(event["Records"])}}
"""


def test_parallel_lanes_keep_each_keys_order_and_tumbling_windows_carry_state_to_a_final_call(start_nimbus, calls):
    n = start_nimbus(WINDOWED.replace("CALLS_FILE", str(calls)), files={"src/app.py": COUNTER})
    n.wait_for("nimbus: stream orders -> Recorder")
    ddb = n.client("dynamodb")
    for v in range(5):
        for k in range(8):
            ddb.put_item(TableName="orders", Item={"id": S(f"k{k}"), "v": N(v)})

    def lines():
        return [json.loads(l) for l in calls.read_text().splitlines()] if calls.exists() else []
    def finals_cover_everything():
        finals = [c for c in lines() if c["final"]]
        return sum(c["state"].get("count", 0) for c in finals) == 40 and finals
    wait_until("final invocations whose states count all 40 records", finals_cover_everything, timeout=30)
    calls_ = lines()
    seen = [rec for c in calls_ if not c["final"] for rec in c["records"]]
    assert len(seen) == 40, seen
    # Each key's records in order, whichever lane took them.
    for k in range(8):
        assert [int(v) for key, v in seen if key == f"k{k}"] == list(range(5)), k
    for c in calls_:
        assert c["window"]["end"].endswith("Z") and c["window"]["start"] < c["window"]["end"], c
        assert c["shard"].startswith("shardId-") and not c["early"], c
        if c["final"]:
            assert c["records"] == [], c


def test_expired_items_are_deleted_with_a_service_stream_record(n, ddb):
    past = int(time.time()) - 60
    ddb.put_item(TableName="cars", Item={"pk": S("ttl"), "sk": N(0), "expires": N(past)})
    ddb.put_item(TableName="cars", Item={"pk": S("ttl"), "sk": N(1), "expires": N(past + 3600 * 24)})
    gone = wait_until("the expired item deleted", lambda: "Item" not in ddb.get_item(
        TableName="cars", Key={"pk": S("ttl"), "sk": N(0)}), timeout=15)
    assert gone
    assert "Item" in ddb.get_item(TableName="cars", Key={"pk": S("ttl"), "sk": N(1)})
    streams = n.client("dynamodbstreams")
    arn = ddb.describe_table(TableName="cars")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    removes = [r for r in streams.get_records(ShardIterator=it)["Records"] if r["eventName"] == "REMOVE"]
    assert removes[-1]["userIdentity"] == {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}


def test_a_bad_template_table_is_named_with_its_line_and_dynamodb_s_message(tmp_path):
    import subprocess
    from conftest import NIMBUS
    (tmp_path / "template.yaml").write_text("""Transform: AWS::Serverless-2016-10-31
Resources:
  Good:
    Type: AWS::Serverless::SimpleTable
  Bad:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]
""")
    out = subprocess.run([str(NIMBUS), "validate", str(tmp_path / "template.yaml")], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert ("Resources.Bad.Properties (line 5): One or more parameter values were invalid: Some index key attributes "
            "are not defined in AttributeDefinitions. Keys: [sk], AttributeDefinitions: [pk]") in out.stderr


def test_legacy_conditional_parameters_still_work(ddb):
    key = {"pk": S("legacy"), "sk": N(1)}
    ddb.put_item(TableName="cars", Item=dict(key, v=N(1)), Expected={"pk": {"Exists": False}})
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName="cars", Item=dict(key, v=N(2)), Expected={"pk": {"Exists": False}})
    assert error(e) == ("ConditionalCheckFailedException", "The conditional request failed")
    ddb.update_item(TableName="cars", Key=key, AttributeUpdates={
        "v": {"Action": "ADD", "Value": N(4)}, "tag": {"Action": "PUT", "Value": S("x")}},
        Expected={"v": {"Value": N(1)}})
    assert ddb.get_item(TableName="cars", Key=key)["Item"] == dict(key, v=N(5), tag=S("x"))
    for sk in (2, 3):
        ddb.put_item(TableName="cars", Item={"pk": S("legacy"), "sk": N(sk), "v": N(sk)})
    r = ddb.query(TableName="cars", KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("legacy")]},
        "sk": {"ComparisonOperator": "GE", "AttributeValueList": [N(2)]}},
        QueryFilter={"v": {"ComparisonOperator": "GT", "AttributeValueList": [N(2)]}})
    assert [i["sk"] for i in r["Items"]] == [N(3)] and r["ScannedCount"] == 2
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName="cars", Item=key, Expected={"pk": {"Exists": False}},
                     ConditionExpression="attribute_not_exists(pk)")
    assert error(e)[0] == "ValidationException" and "Can not use both expression and non-expression" in error(e)[1]


def test_metrics_count_calls_by_table_operation_and_outcome_and_read_table_sizes(n, ddb):
    for i in range(3):
        ddb.put_item(TableName="cars", Item={"pk": S(f"m{i}"), "sk": N(0)})
    with pytest.raises(ClientError):
        ddb.put_item(TableName="cars", Item={"pk": N(1), "sk": N(0)})
    text = requests_get(n.endpoint + "/metrics")
    assert 'nimbus_dynamodb_requests_total{table="cars",operation="PutItem",outcome="ok"} 3' in text
    assert 'nimbus_dynamodb_requests_total{table="cars",operation="PutItem",outcome="ValidationException"} 1' in text
    assert 'nimbus_dynamodb_items{table="cars"} 3' in text
    assert 'nimbus_dynamodb_latency_seconds_count{table="cars",operation="PutItem"} 4' in text


def requests_get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def test_partiql_statements_read_and_write_items(ddb):
    run = lambda statement, *params, **kw: ddb.execute_statement(  # noqa: E731
        Statement=statement, **({"Parameters": list(params)} if params else {}), **kw)
    run("INSERT INTO cars VALUE {'pk': ?, 'sk': 1, 'status': 'new', 'tags': <<'a'>>, 'n': 5}", S("p1"))
    run("INSERT INTO \"cars\" VALUE {'pk': 'p1', 'sk': 2, 'status': 'sold', 'n': 7}")
    with pytest.raises(ClientError) as dup:
        run("INSERT INTO cars VALUE {'pk': 'p1', 'sk': 1}")
    assert dup.value.response["Error"] == {"Code": "DuplicateItemException",
                                           "Message": "Duplicate primary key exists in table"}

    # A full key is a lookup; a partition key a query (with the rest as a filter); else a scan.
    got = run("SELECT * FROM cars WHERE pk = ? AND sk = ?", S("p1"), N(1))["Items"]
    assert got == [{"pk": S("p1"), "sk": N(1), "status": S("new"), "tags": {"SS": ["a"]}, "n": N(5)}]
    got = run("SELECT sk, n FROM cars WHERE pk = 'p1' AND n > 5")["Items"]
    assert got == [{"sk": N(2), "n": N(7)}]
    got = run('SELECT pk, sk FROM "cars"."by-status" WHERE status = \'sold\'')["Items"]
    assert got == [{"pk": S("p1"), "sk": N(2)}]
    got = run("SELECT sk FROM cars WHERE n BETWEEN 1 AND 6 OR status IN ['sold']")["Items"]
    assert sorted(int(i["sk"]["N"]) for i in got) == [1, 2]
    # Conditions written value-first, and more than one on the sort key.
    assert run("SELECT sk FROM cars WHERE 'p1' = pk AND 1 < sk")["Items"] == [{"sk": N(2)}]
    assert run("SELECT sk FROM cars WHERE pk = 'p1' AND sk <> 1")["Items"] == [{"sk": N(2)}]
    assert run("SELECT sk FROM cars WHERE pk = 'p1' AND sk > 0 AND sk < 2")["Items"] == [{"sk": N(1)}]
    # Pages: Limit, then NextToken.
    first = run("SELECT sk FROM cars WHERE pk = 'p1'", Limit=1)
    assert first["Items"] == [{"sk": N(1)}] and "NextToken" in first
    rest = run("SELECT sk FROM cars WHERE pk = 'p1'", NextToken=first["NextToken"])
    assert rest["Items"] == [{"sk": N(2)}]

    # UPDATE changes an item that exists, with RETURNING; never creates one.
    out = run("UPDATE cars SET n = n + 1 SET tags = set_add(tags, <<'b'>>) REMOVE status "
              "WHERE pk = 'p1' AND sk = 1 RETURNING ALL NEW *")
    item = out["Items"][0]
    assert (item["n"], sorted(item["tags"]["SS"]), "status" in item) == (N(6), ["a", "b"], False)
    with pytest.raises(ClientError) as missing:
        run("UPDATE cars SET n = 1 WHERE pk = 'nope' AND sk = 1")
    assert missing.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert "Item" not in ddb.get_item(TableName="cars", Key={"pk": S("nope"), "sk": N(1)})
    # An OR among the conditions keeps its meaning: still no item is created.
    with pytest.raises(ClientError) as missing:
        run("UPDATE cars SET n = 1 WHERE pk = 'ghost' AND sk = 1 AND (n = 1 OR status IS MISSING)")
    assert missing.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert "Item" not in ddb.get_item(TableName="cars", Key={"pk": S("ghost"), "sk": N(1)})
    with pytest.raises(ClientError) as keyless:
        run("UPDATE cars SET n = 1 WHERE pk = 'p1'")
    assert keyless.value.response["Error"]["Message"] == \
        "Where clause does not contain a mandatory equality on all key attributes"

    # DELETE with a condition; RETURNING ALL OLD *.
    with pytest.raises(ClientError) as cond:
        run("DELETE FROM cars WHERE pk = 'p1' AND sk = 2 AND n = 0")
    assert cond.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    out = run("DELETE FROM cars WHERE pk = 'p1' AND sk = 2 RETURNING ALL OLD *")
    assert out["Items"][0]["n"] == N(7)
    assert run("SELECT * FROM cars WHERE pk = 'p1' AND sk = 2")["Items"] == []


def test_partiql_batches_and_transactions(ddb):
    out = ddb.batch_execute_statement(Statements=[
        {"Statement": "INSERT INTO cars VALUE {'pk': 'b', 'sk': 1}"},
        {"Statement": "INSERT INTO cars VALUE {'pk': 'b', 'sk': ?}", "Parameters": [N(2)]},
        {"Statement": "INSERT INTO cars VALUE {'pk': 'b', 'sk': 1}"},
        {"Statement": "INSERT INTO nosuch VALUE {'pk': 'b'}"},
    ])["Responses"]
    assert out[0] == {"TableName": "cars"} and out[1] == {"TableName": "cars"}
    assert out[2]["Error"]["Code"] == "DuplicateItem"
    assert out[3]["Error"]["Code"] == "ResourceNotFound"
    out = ddb.batch_execute_statement(Statements=[
        {"Statement": "SELECT sk FROM cars WHERE pk = 'b' AND sk = 2"},
        {"Statement": "SELECT * FROM cars WHERE pk = 'b' AND sk = 9"},
        {"Statement": "SELECT * FROM cars WHERE pk = 'b'"},
    ])["Responses"]
    assert out[0] == {"TableName": "cars", "Item": {"sk": N(2)}}
    assert out[1] == {"TableName": "cars"}
    assert out[2]["Error"]["Code"] == "ValidationError"
    # Reads and writes mixed: refused whole, nothing written.
    with pytest.raises(ClientError) as mixed:
        ddb.batch_execute_statement(Statements=[
            {"Statement": "INSERT INTO cars VALUE {'pk': 'mixed', 'sk': 1}"},
            {"Statement": "SELECT * FROM cars WHERE pk = 'b' AND sk = 1"},
        ])
    assert mixed.value.response["Error"]["Code"] == "ValidationException"
    assert "Item" not in ddb.get_item(TableName="cars", Key={"pk": S("mixed"), "sk": N(1)})

    # A transaction: all or nothing; an INSERT of an existing key is DuplicateItem.
    with pytest.raises(ClientError) as cancelled:
        ddb.execute_transaction(TransactStatements=[
            {"Statement": "UPDATE cars SET n = 1 WHERE pk = 'b' AND sk = 1"},
            {"Statement": "INSERT INTO cars VALUE {'pk': 'b', 'sk': 2}"},
        ])
    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "DuplicateItem"]
    assert "n" not in ddb.get_item(TableName="cars", Key={"pk": S("b"), "sk": N(1)})["Item"]
    ddb.execute_transaction(TransactStatements=[
        {"Statement": "UPDATE cars SET n = 1 WHERE pk = 'b' AND sk = 1"},
        {"Statement": "EXISTS(SELECT * FROM cars WHERE pk = 'b' AND sk = 2)"},
        {"Statement": "INSERT INTO cars VALUE {'pk': 'b', 'sk': 3}"},
    ])
    got = ddb.execute_transaction(TransactStatements=[
        {"Statement": "SELECT n FROM cars WHERE pk = 'b' AND sk = 1"},
        {"Statement": "SELECT * FROM cars WHERE pk = 'b' AND sk = 3"},
    ])["Responses"]
    assert got == [{"Item": {"n": N(1)}}, {"Item": {"pk": S("b"), "sk": N(3)}}]


@pytest.mark.parametrize("statement, params, code, message", [
    ("SELEC * FROM cars", None, "ValidationException",
     "Statement wasn't well formed, can't be processed: expected SELECT, INSERT, UPDATE, DELETE or EXISTS, found keyword or name SELEC"),
    ("SELECT * FROM cars WHERE pk = ?", None, "ValidationException",
     "Number of parameters in request and statement don't match."),
    ("SELECT * FROM nosuch", None, "ResourceNotFoundException", "Requested resource not found"),
    ("DELETE FROM cars WHERE sk = 1", None, "ValidationException",
     "Where clause does not contain a mandatory equality on all key attributes"),
    ("SELECT * FROM cars WHERE " + "(" * 200 + "pk = 'x'" + ")" * 200, None, "ValidationException",
     "Statement wasn't well formed, can't be processed: nested more than 100 levels deep"),
    ("SELECT * FROM cars WHERE pk = '" + "x" * 9000 + "'", None, "ValidationException",
     "1 validation error detected: Value at 'statement' failed to satisfy constraint: Member must have length less than or equal to 8192"),
])
def test_bad_partiql_gets_dynamodb_errors(ddb, statement, params, code, message):
    with pytest.raises(ClientError) as bad:
        ddb.execute_statement(Statement=statement, **({"Parameters": params} if params else {}))
    assert bad.value.response["Error"] == {"Code": code, "Message": message}


def test_consumed_capacity_is_counted_whether_or_not_the_caller_asks(n, ddb):
    ddb.put_item(TableName="cars", Item={"pk": S("c"), "sk": N(1), "blob": S("x" * 1500)})
    out = ddb.get_item(TableName="cars", Key={"pk": S("c"), "sk": N(1)})
    assert "ConsumedCapacity" not in out  # not asked for, not answered
    out = ddb.get_item(TableName="cars", Key={"pk": S("c"), "sk": N(1)}, ConsistentRead=True,
                       ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == {"TableName": "cars", "CapacityUnits": 1.0}
    ddb.execute_statement(Statement="SELECT * FROM cars WHERE pk = 'c' AND sk = 1")
    text = requests_get(n.endpoint + "/metrics")
    # The 1.5 KB item: 2 write units; reads of 0.5 (eventually consistent), 1 and 0.5.
    assert 'nimbus_dynamodb_consumed_write_capacity_units_total{table="cars"} 2.0' in text, text
    assert 'nimbus_dynamodb_consumed_read_capacity_units_total{table="cars"} 2.0' in text, text


TRACED = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Tracing: Active}
Resources:
  Cars:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: cars
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      BillingMode: PAY_PER_REQUEST
  Writer:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: app.handler
      Events:
        Api: {Type: HttpApi, Properties: {Path: /cars, Method: post}}
"""

WRITER = '''
import boto3
ddb = boto3.client("dynamodb")
def handler(event, context):
    ddb.put_item(TableName="cars", Item={"pk": {"S": "traced"}})
    return {"statusCode": 201}
'''


def test_a_functions_dynamodb_call_is_a_span_of_its_trace(start_nimbus):
    n = start_nimbus(TRACED, {"src/app.py": WRITER})
    r = urllib.request.urlopen(urllib.request.Request(
        n.api_url("ServerlessHttpApi") + "/cars", data=b"{}", method="POST"), timeout=30)
    assert r.status == 201

    def traced():
        traces = json.loads(urllib.request.urlopen(n.endpoint + "/_nimbus/api/traces", timeout=10).read())
        for t in traces["traces"]:
            trace = json.loads(urllib.request.urlopen(
                n.endpoint + "/_nimbus/api/traces/" + t["trace_id"], timeout=10).read())
            if any(s["kind"] == "dynamodb" for s in trace["spans"]):
                return trace
        return None
    trace = wait_until("a trace with the DynamoDB call", traced)
    spans = {s["id"]: s for s in trace["spans"]}
    call = next(s for s in trace["spans"] if s["kind"] == "dynamodb")
    assert (call["name"], call["service"]) == ("PutItem", "table:cars"), call
    # botocore sends the function's _X_AMZN_TRACE_ID: the call's parent is the function's run.
    assert spans[call["parent_id"]]["kind"] == "execution", spans[call["parent_id"]]
