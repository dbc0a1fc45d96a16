//! The DynamoDB API through `dispatch`, as the endpoint calls it: behaviour that needs several
//! operations, time under the test's control, or a database reopened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nimbus_dynamodb::{DdbConfig, DynamoDb};
use serde_json::{json, Value};

fn config() -> DdbConfig {
    DdbConfig {
        region: "us-east-1".into(),
        account: "000000000000".into(),
    }
}

/// A service whose clock the test moves.
fn service(path: Option<&std::path::Path>, clock: &Arc<AtomicU64>) -> DynamoDb {
    let c = clock.clone();
    DynamoDb::open(path, &config())
        .unwrap()
        .with_clock(move || c.load(Ordering::SeqCst))
}

fn call(db: &DynamoDb, action: &str, input: Value) -> Result<Value, (String, String)> {
    db.dispatch(action, &input)
        .map_err(|e| (e.code().to_string(), e.to_string()))
}

fn ok(db: &DynamoDb, action: &str, input: Value) -> Value {
    call(db, action, input.clone()).unwrap_or_else(|e| panic!("{action} {input}: {e:?}"))
}

fn ranged_table(db: &DynamoDb, stream: bool) {
    let mut t = json!({
        "TableName": "cars", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                 {"AttributeName": "sk", "AttributeType": "N"},
                                 {"AttributeName": "g", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [{"IndexName": "by-g", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]}],
    });
    if stream {
        t["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": "KEYS_ONLY"});
    }
    ok(db, "CreateTable", t);
}

/// Every page of a query, following LastEvaluatedKey: the sort keys in order.
fn query_all(db: &DynamoDb, mut input: Value) -> Vec<i64> {
    let mut seen = Vec::new();
    for _ in 0..100 {
        let out = ok(db, "Query", input.clone());
        seen.extend(
            out["Items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["sk"]["N"].as_str().unwrap().parse::<i64>().unwrap()),
        );
        match out.get("LastEvaluatedKey") {
            Some(k) => input["ExclusiveStartKey"] = k.clone(),
            None => return seen,
        }
    }
    panic!("no end of pages");
}

#[test]
fn queries_walk_each_sort_key_condition_in_both_directions_and_page_by_page() {
    let clock = Arc::new(AtomicU64::new(1_700_000_000_000));
    let db = service(None, &clock);
    ranged_table(&db, false);
    // Partitions on either side of "p", so a walk that leaves its partition shows.
    for pk in ["o", "p", "q"] {
        for sk in 1..=12 {
            ok(
                &db,
                "PutItem",
                json!({"TableName": "cars", "Item": {"pk": {"S": pk}, "sk": {"N": sk.to_string()}, "g": {"S": format!("g{pk}")}}}),
            );
        }
    }
    let cases: &[(&str, Value, Vec<i64>)] = &[
        ("pk = :p", json!({}), (1..=12).collect()),
        ("pk = :p AND sk = :a", json!({":a": {"N": "5"}}), vec![5]),
        (
            "pk = :p AND sk < :a",
            json!({":a": {"N": "5"}}),
            vec![1, 2, 3, 4],
        ),
        (
            "pk = :p AND sk <= :a",
            json!({":a": {"N": "5"}}),
            vec![1, 2, 3, 4, 5],
        ),
        (
            "pk = :p AND sk > :a",
            json!({":a": {"N": "9"}}),
            vec![10, 11, 12],
        ),
        (
            "pk = :p AND sk >= :a",
            json!({":a": {"N": "9"}}),
            vec![9, 10, 11, 12],
        ),
        (
            "pk = :p AND sk BETWEEN :a AND :b",
            json!({":a": {"N": "3"}, ":b": {"N": "6"}}),
            vec![3, 4, 5, 6],
        ),
        ("pk = :p AND sk > :a", json!({":a": {"N": "12"}}), vec![]),
        ("pk = :p AND sk < :a", json!({":a": {"N": "1"}}), vec![]),
    ];
    for (kce, values, want) in cases {
        let mut values = values.clone();
        values[":p"] = json!({"S": "p"});
        for limit in [None, Some(1), Some(3), Some(20)] {
            for forward in [true, false] {
                let mut input = json!({"TableName": "cars", "KeyConditionExpression": kce,
                                       "ExpressionAttributeValues": values, "ScanIndexForward": forward});
                if let Some(l) = limit {
                    input["Limit"] = json!(l);
                }
                let mut expected = want.clone();
                if !forward {
                    expected.reverse();
                }
                assert_eq!(query_all(&db, input.clone()), expected, "{input}");
                // The same through the index, whose partition is "gp".
                input["IndexName"] = json!("by-g");
                input["KeyConditionExpression"] = json!(kce.replace("pk = :p", "g = :p"));
                input["ExpressionAttributeValues"][":p"] = json!({"S": "gp"});
                assert_eq!(query_all(&db, input.clone()), expected, "{input}");
            }
        }
    }
}

#[test]
fn a_ttl_sweep_with_nothing_expired_leaves_the_service_usable() {
    let clock = Arc::new(AtomicU64::new(1_700_000_000_000));
    let db = service(None, &clock);
    ranged_table(&db, true);
    ok(
        &db,
        "UpdateTimeToLive",
        json!({"TableName": "cars", "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "exp"}}),
    );
    ok(
        &db,
        "PutItem",
        json!({"TableName": "cars", "Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "exp": {"N": "1700000100"}}}),
    );
    // Run where a lock held twice would hang the test rather than fail it.
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = db.clone();
    let c = clock.clone();
    std::thread::spawn(move || {
        let first = worker.sweep_ttl().unwrap();
        let tables = worker.dispatch("ListTables", &json!({})).unwrap();
        c.store(1_700_000_200_000, Ordering::SeqCst);
        let second = worker.sweep_ttl().unwrap();
        tx.send((first, second, tables)).unwrap();
    });
    let (first, second, tables) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the sweep finished");
    assert_eq!((first, second), (0, 1));
    assert_eq!(tables["TableNames"], json!(["cars"]));
    assert!(ok(
        &db,
        "GetItem",
        json!({"TableName": "cars", "Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}})
    )
    .get("Item")
    .is_none());
}

#[test]
fn stream_sequence_numbers_never_go_back_after_a_trim_a_restart_or_a_recreated_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dynamodb.db");
    let clock = Arc::new(AtomicU64::new(1_700_000_000_000));
    let put = |db: &DynamoDb, n: u32| {
        ok(
            db,
            "PutItem",
            json!({"TableName": "cars", "Item": {"pk": {"S": format!("k{n}")}, "sk": {"N": "1"}}}),
        );
    };
    let db = service(Some(&path), &clock);
    ranged_table(&db, true);
    for n in 0..3 {
        put(&db, n);
    }
    assert_eq!(db.stream_latest("cars").unwrap(), 3);
    // A day later every record is trimmed away.
    clock.store(1_700_000_000_000 + 25 * 3600 * 1000, Ordering::SeqCst);
    db.sweep_ttl().unwrap();
    assert!(db.stream_records("cars", 0, 10).unwrap().is_empty());
    drop(db);
    let db = service(Some(&path), &clock);
    put(&db, 3);
    assert_eq!(db.stream_latest("cars").unwrap(), 4);
    ok(&db, "DeleteTable", json!({"TableName": "cars"}));
    ranged_table(&db, true);
    put(&db, 4);
    assert_eq!(
        db.stream_records("cars", 0, 10)
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect::<Vec<_>>(),
        [5]
    );
}

#[test]
fn transactions_report_what_their_changes_would_break_as_cancellation_reasons() {
    let clock = Arc::new(AtomicU64::new(1_700_000_000_000));
    let db = service(None, &clock);
    ranged_table(&db, false);
    ok(
        &db,
        "PutItem",
        json!({"TableName": "cars", "Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "s": {"S": "text"}}}),
    );
    let err = call(&db, "TransactWriteItems", json!({"TransactItems": [
        {"Update": {"TableName": "cars", "Key": {"pk": {"S": "a"}, "sk": {"N": "1"}},
                    "UpdateExpression": "SET s = s + :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"ConditionCheck": {"TableName": "cars", "Key": {"pk": {"S": "missing"}, "sk": {"N": "1"}},
                            "ConditionExpression": "attribute_exists(pk)"}},
        {"Update": {"TableName": "cars", "Key": {"pk": {"S": "missing"}, "sk": {"N": "2"}},
                    "ConditionExpression": "attribute_exists(pk)",
                    "UpdateExpression": "SET n = n + :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
    ]}))
    .unwrap_err();
    assert_eq!(err.0, "TransactionCanceledException");
    assert_eq!(err.1, "Transaction cancelled, please refer cancellation reasons for specific reasons [ValidationError, ConditionalCheckFailed, ConditionalCheckFailed]");
}

#[test]
fn table_definitions_refuse_what_dynamodb_refuses() {
    let clock = Arc::new(AtomicU64::new(1_700_000_000_000));
    let db = service(None, &clock);
    ranged_table(&db, false);
    let cases: &[(&str, Value, &str)] = &[
        ("UpdateTable", json!({"TableName": "cars", "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "N"}], "BillingMode": "PAY_PER_REQUEST"}),
         "One or more parameter values were invalid: Cannot change the type of attribute pk from S to N; an attribute that is part of a key keeps its type"),
        ("UpdateTable", json!({"TableName": "cars", "AttributeDefinitions": [{"AttributeName": "x", "AttributeType": "SS"}], "BillingMode": "PAY_PER_REQUEST"}),
         "1 validation error detected: Value 'SS' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"),
        ("CreateTable", json!({"TableName": "dup", "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "GlobalSecondaryIndexes": [{"IndexName": "same", "Projection": {"ProjectionType": "ALL"}, "KeySchema": [{"AttributeName": "sk", "KeyType": "HASH"}]}],
            "LocalSecondaryIndexes": [{"IndexName": "same", "Projection": {"ProjectionType": "ALL"},
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]}]}),
         "One or more parameter values were invalid: Duplicate index name: same"),
        ("Query", json!({"TableName": "cars", "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
                         "ExpressionAttributeValues": {":p": {"S": "a"}, ":s": {"N": "1"}}}),
         "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
        ("UpdateTable", json!({"TableName": "cars", "BillingMode": "PROVISIONED"}),
         "One or more parameter values were invalid: ProvisionedThroughput must be specified when BillingMode is PROVISIONED"),
        ("Query", json!({"TableName": "cars", "KeyConditionExpression": "pk = :p", "FilterExpression": "sk > :s",
                         "ExpressionAttributeValues": {":p": {"S": "a"}, ":s": {"N": "1"}}}),
         "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk"),
    ];
    for (action, input, want) in cases {
        let got = call(&db, action, input.clone()).unwrap_err();
        assert_eq!(
            got,
            ("ValidationException".to_string(), want.to_string()),
            "{action} {input}"
        );
    }
}

#[test]
fn ttl_sweeps_read_only_expired_items_and_delete_at_most_a_thousand_at_a_time() {
    let clock = Arc::new(AtomicU64::new(1_700_000_000_000));
    let db = service(None, &clock);
    ranged_table(&db, false);
    ok(
        &db,
        "UpdateTimeToLive",
        json!({"TableName": "cars", "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "exp"}}),
    );
    let mut requests = Vec::new();
    for i in 0..1800 {
        // Half expired a minute ago, a few far in the past (ignored, as DynamoDB does), the rest later.
        let exp = match i % 3 {
            0 | 1 => 1_700_000_000 - 60,
            _ => 1_700_000_000 + 3600,
        };
        let exp = if i < 10 { 1_000_000_000 } else { exp };
        requests.push(json!({"PutRequest": {"Item": {"pk": {"S": format!("k{i}")}, "sk": {"N": "1"}, "exp": {"N": exp.to_string()}}}}));
        if requests.len() == 25 {
            ok(
                &db,
                "BatchWriteItem",
                json!({"RequestItems": {"cars": requests.split_off(0)}}),
            );
        }
    }
    let expired = (10..1800).filter(|i| i % 3 != 2).count();
    assert_eq!(db.sweep_ttl().unwrap(), 1000);
    assert_eq!(db.sweep_ttl().unwrap(), expired - 1000);
    assert_eq!(db.sweep_ttl().unwrap(), 0);
    let left = ok(&db, "Scan", json!({"TableName": "cars", "Select": "COUNT"}));
    assert_eq!(left["Count"], json!(1800 - expired));
}

#[test]
fn deleting_an_index_drops_its_attribute_definitions() {
    let clock = Arc::new(AtomicU64::new(1_700_000_000_000));
    let db = service(None, &clock);
    ranged_table(&db, false);
    let out = ok(
        &db,
        "UpdateTable",
        json!({"TableName": "cars", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "by-g"}}]}),
    );
    let names: Vec<&str> = out["TableDescription"]["AttributeDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["AttributeName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pk", "sk"]);
    assert!(out["TableDescription"]
        .get("GlobalSecondaryIndexes")
        .is_none());
}
