//! DynamoDB Streams (`X-Amz-Target: DynamoDBStreams_20120810.<Action>`): ListStreams,
//! DescribeStream, GetShardIterator and GetRecords over a table's stream records.
//!
//! Each stream has one shard that never closes: a local table's write rate never needs DynamoDB's
//! splits, and one shard keeps every key's records in order, as DynamoDB promises per key.

use serde_json::{json, Value as Json};

use crate::error::DdbError;
use crate::state::State;
use crate::DynamoDb;

const ITERATOR_PREFIX: &str = "nimbus-shard-iterator/";

pub(crate) fn shard_id(st: &State, table: &str) -> Result<String, DdbError> {
    let t = st.table(table)?;
    Ok(format!(
        "shardId-{:020}-{}",
        t.def.created_ms,
        &t.def.table_id.replace('-', "")[..8]
    ))
}

/// The table a stream ARN names (`...:table/<name>/stream/<label>`), checked to have that stream.
fn table_of_stream(st: &State, arn: &str) -> Result<String, DdbError> {
    let not_found = || {
        DdbError::ResourceNotFound(format!(
            "Requested resource not found: Stream: {arn} not found"
        ))
    };
    let rest = arn.split_once(":table/").ok_or_else(not_found)?.1;
    let (table, label) = rest.split_once("/stream/").ok_or_else(not_found)?;
    let t = st.tables.get(table).ok_or_else(not_found)?;
    if t.def.stream_label.as_deref() != Some(label) {
        return Err(not_found());
    }
    Ok(table.to_string())
}

fn stream_arn_arg(input: &Json) -> Result<&str, DdbError> {
    input["StreamArn"].as_str().ok_or_else(|| {
        DdbError::validation(
            "1 validation error detected: Value null at 'streamArn' failed to satisfy constraint: Member must not be null",
        )
    })
}

pub fn list_streams(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let st = db.lock();
    let only = input["TableName"].as_str();
    let streams: Vec<Json> = st
        .tables
        .values()
        .filter(|t| only.is_none_or(|n| n == t.def.name))
        .filter_map(|t| {
            Some(json!({
                "StreamArn": t.def.stream_arn(&st.region, &st.account)?,
                "TableName": t.def.name,
                "StreamLabel": t.def.stream_label.clone()?,
            }))
        })
        .collect();
    Ok(json!({ "Streams": streams }))
}

pub fn describe_stream(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let arn = stream_arn_arg(input)?;
    let st = db.lock();
    let table = table_of_stream(&st, arn)?;
    let t = st.table(&table)?;
    let first = st.stream_first(&table)?.unwrap_or(t.stream_seq + 1);
    let mut key = vec![json!({"AttributeName": t.def.key.hash, "KeyType": "HASH"})];
    if let Some(r) = &t.def.key.range {
        key.push(json!({"AttributeName": r, "KeyType": "RANGE"}));
    }
    Ok(json!({"StreamDescription": {
        "StreamArn": arn,
        "StreamLabel": t.def.stream_label,
        "StreamStatus": if t.def.stream.is_some() { "ENABLED" } else { "DISABLED" },
        "StreamViewType": t.def.stream.clone().unwrap_or_else(|| "NEW_AND_OLD_IMAGES".into()),
        "CreationRequestDateTime": t.def.created_ms as f64 / 1000.0,
        "TableName": table,
        "KeySchema": key,
        "Shards": [{
            "ShardId": shard_id(&st, &table)?,
            "SequenceNumberRange": {"StartingSequenceNumber": format!("{first:021}")},
        }],
    }}))
}

pub fn get_shard_iterator(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let arn = stream_arn_arg(input)?;
    let st = db.lock();
    let table = table_of_stream(&st, arn)?;
    let shard = input["ShardId"].as_str().unwrap_or_default();
    if shard != shard_id(&st, &table)? {
        return Err(DdbError::ResourceNotFound(
            "Requested resource not found: Shard does not exist".into(),
        ));
    }
    let seq = || -> Result<u64, DdbError> {
        input["SequenceNumber"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| DdbError::validation("Invalid SequenceNumber"))
    };
    let after = match input["ShardIteratorType"].as_str() {
        Some("TRIM_HORIZON") => 0,
        Some("LATEST") => st.table(&table)?.stream_seq,
        Some("AT_SEQUENCE_NUMBER") => seq()?.saturating_sub(1),
        Some("AFTER_SEQUENCE_NUMBER") => seq()?,
        other => {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '{}' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_SEQUENCE_NUMBER, TRIM_HORIZON]",
                other.unwrap_or("null")
            )))
        }
    };
    Ok(json!({"ShardIterator": format!("{ITERATOR_PREFIX}{arn}|{after}")}))
}

/// A record as the Streams API gives it: the same as Lambda's event record but for
/// `userIdentity`, whose members the API capitalizes (`Type`, `PrincipalId`).
fn api_record(mut r: Json) -> Json {
    if let Some(who) = r.get_mut("userIdentity") {
        *who = json!({"Type": who["type"], "PrincipalId": who["principalId"]});
    }
    r
}

pub fn get_records(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let iterator = input["ShardIterator"].as_str().unwrap_or_default();
    let invalid = || DdbError::validation(format!("Invalid ShardIterator: {iterator}"));
    let (arn, after) = iterator
        .strip_prefix(ITERATOR_PREFIX)
        .and_then(|s| s.rsplit_once('|'))
        .ok_or_else(invalid)?;
    let after: u64 = after.parse().map_err(|_| invalid())?;
    let limit = match &input["Limit"] {
        Json::Null => 1000,
        v => match v.as_u64() {
            Some(n @ 1..=1000) => n as usize,
            _ => {
                return Err(DdbError::validation(format!(
                    "1 validation error detected: Value '{v}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000"
                )))
            }
        },
    };
    let st = db.lock();
    let table = table_of_stream(&st, arn)?;
    let raw = st.stream_records_raw(&table, after, limit)?;
    drop(st);
    let next = raw.last().map_or(after, |(seq, _)| *seq);
    let records = raw
        .iter()
        .map(|(_, text)| crate::state::parse_record(text).map(api_record))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "Records": records,
        "NextShardIterator": format!("{ITERATOR_PREFIX}{arn}|{next}"),
    }))
}
