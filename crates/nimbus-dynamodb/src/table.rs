//! A table's definition: key schema, attribute definitions, secondary indexes, billing, stream
//! and TTL settings, read from `CreateTable` or from a template, validated with DynamoDB's
//! messages, and described as `DescribeTable` answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use crate::error::DdbError;
use crate::value::{AttrValue, Item, KeyVal};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySchema {
    pub hash: String,
    pub range: Option<String>,
}

impl KeySchema {
    fn to_json(&self) -> Json {
        let mut v = vec![json!({"AttributeName": self.hash, "KeyType": "HASH"})];
        if let Some(r) = &self.range {
            v.push(json!({"AttributeName": r, "KeyType": "RANGE"}));
        }
        Json::Array(v)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.hash.as_str()).chain(self.range.as_deref())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    pub key: KeySchema,
    pub projection: Projection,
    pub local: bool,
    pub provisioned: Option<(u64, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    pub name: String,
    pub key: KeySchema,
    /// AttributeDefinitions: name to `S`, `N` or `B`.
    pub attributes: BTreeMap<String, String>,
    pub gsis: Vec<IndexDef>,
    pub lsis: Vec<IndexDef>,
    pub pay_per_request: bool,
    pub provisioned: Option<(u64, u64)>,
    /// `StreamViewType` while a stream is enabled.
    pub stream: Option<String>,
    /// The stream's label (a timestamp), kept after the stream is disabled, as DynamoDB keeps
    /// `LatestStreamArn`.
    pub stream_label: Option<String>,
    pub ttl_attribute: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub created_ms: u64,
    pub table_id: String,
    pub deletion_protection: bool,
}

/// The stream label of a template's table. `!GetAtt Table.StreamArn` is resolved before the
/// table exists (nimbus-template's attrs.rs gives this label), so the table's stream carries the
/// same one and the ARN a function is handed is the stream's real ARN. Streams enabled later
/// through the API are labelled with their creation time, as on AWS.
pub const TEMPLATE_STREAM_LABEL: &str = "1970-01-01T00:00:00.000";

const VIEW_TYPES: &[&str] = &["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"];

/// DynamoDB's constraint messages for a request member (`1 validation error detected: ...`).
fn constraint(value: &Json, at: &str, rule: &str) -> DdbError {
    let shown = match value {
        Json::Null => "null".to_string(),
        Json::String(s) => format!("'{s}'"),
        other => format!("'{other}'"),
    };
    DdbError::validation(format!(
        "1 validation error detected: Value {shown} at '{at}' failed to satisfy constraint: {rule}"
    ))
}

pub fn check_table_name(v: &Json, at: &str) -> Result<String, DdbError> {
    let Some(name) = v.as_str() else {
        return Err(constraint(v, at, "Member must not be null"));
    };
    if name.len() < 3 {
        return Err(constraint(
            v,
            at,
            "Member must have length greater than or equal to 3",
        ));
    }
    if name.len() > 255 {
        return Err(constraint(
            v,
            at,
            "Member must have length less than or equal to 255",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(constraint(
            v,
            at,
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    Ok(name.to_string())
}

fn key_schema(v: &Json, at: &str) -> Result<KeySchema, DdbError> {
    let Some(list) = v.as_array() else {
        return Err(constraint(v, at, "Member must not be null"));
    };
    let mut hash = None;
    let mut range = None;
    for e in list {
        let name = e["AttributeName"].as_str().ok_or_else(|| {
            DdbError::invalid("Invalid KeySchema: Some key element is missing AttributeName")
        })?;
        match e["KeyType"].as_str() {
            Some("HASH") if hash.is_none() => hash = Some(name.to_string()),
            Some("RANGE") if range.is_none() && hash.is_some() => range = Some(name.to_string()),
            Some("HASH") | Some("RANGE") => {
                return Err(DdbError::invalid(
                    "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
                ))
            }
            _ => {
                return Err(constraint(
                    &e["KeyType"],
                    &format!("{at}.1.member.keyType"),
                    "Member must satisfy enum value set: [HASH, RANGE]",
                ))
            }
        }
    }
    match (list.len(), hash) {
        (1 | 2, Some(hash)) => Ok(KeySchema { hash, range }),
        (0, _) | (_, None) => Err(DdbError::invalid(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        )),
        _ => Err(DdbError::invalid(
            "Too many key schema elements; KeySchema can have at most 2 elements",
        )),
    }
}

fn projection(v: &Json) -> Result<Projection, DdbError> {
    match v["ProjectionType"].as_str().unwrap_or("ALL") {
        "ALL" => Ok(Projection::All),
        "KEYS_ONLY" => Ok(Projection::KeysOnly),
        "INCLUDE" => Ok(Projection::Include(
            v["NonKeyAttributes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        )),
        other => Err(DdbError::invalid(format!(
            "Unknown ProjectionType: {other}"
        ))),
    }
}

fn throughput(v: &Json) -> Option<(u64, u64)> {
    let r = v["ReadCapacityUnits"]
        .as_u64()
        .or_else(|| v["ReadCapacityUnits"].as_str()?.parse().ok())?;
    let w = v["WriteCapacityUnits"]
        .as_u64()
        .or_else(|| v["WriteCapacityUnits"].as_str()?.parse().ok())?;
    Some((r, w))
}

pub(crate) fn indexes(
    v: &Json,
    local: bool,
    table_key: &KeySchema,
) -> Result<Vec<IndexDef>, DdbError> {
    let Some(list) = v.as_array() else {
        return Ok(Vec::new());
    };
    let mut out: Vec<IndexDef> = Vec::new();
    for e in list {
        let name = e["IndexName"].as_str().unwrap_or_default().to_string();
        if name.len() < 3 {
            return Err(constraint(
                &e["IndexName"],
                "globalSecondaryIndexes.1.member.indexName",
                "Member must have length greater than or equal to 3",
            ));
        }
        let key = key_schema(&e["KeySchema"], "keySchema")?;
        if local && (key.hash != table_key.hash || key.range.is_none()) {
            return Err(DdbError::invalid(format!(
                "Index KeySchema does not have the same leading hash key as table KeySchema for index: {name}. index hash key: {}, table hash key: {}",
                key.hash, table_key.hash
            )));
        }
        if out.iter().any(|i| i.name == name) {
            return Err(DdbError::invalid(format!("Duplicate index name: {name}")));
        }
        out.push(IndexDef {
            name,
            key,
            projection: projection(&e["Projection"])?,
            local,
            provisioned: throughput(&e["ProvisionedThroughput"]),
        });
    }
    Ok(out)
}

impl TableDef {
    /// A table as `CreateTable` describes it (also the shape of `AWS::DynamoDB::Table`'s
    /// properties, once `from_template` has adapted the few that differ).
    pub fn from_create(input: &Json, now_ms: u64) -> Result<TableDef, DdbError> {
        let name = check_table_name(&input["TableName"], "tableName")?;
        let key = key_schema(&input["KeySchema"], "keySchema")?;
        let mut attributes = BTreeMap::new();
        for a in input["AttributeDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let n = a["AttributeName"].as_str().unwrap_or_default();
            let t = a["AttributeType"].as_str().unwrap_or_default();
            if !matches!(t, "S" | "N" | "B") {
                return Err(constraint(
                    &a["AttributeType"],
                    "attributeDefinitions.1.member.attributeType",
                    "Member must satisfy enum value set: [B, N, S]",
                ));
            }
            attributes.insert(n.to_string(), t.to_string());
        }
        let gsis = indexes(&input["GlobalSecondaryIndexes"], false, &key)?;
        let lsis = indexes(&input["LocalSecondaryIndexes"], true, &key)?;
        if let Some(dup) = gsis.iter().find(|g| lsis.iter().any(|l| l.name == g.name)) {
            return Err(DdbError::invalid(format!(
                "Duplicate index name: {}",
                dup.name
            )));
        }
        let mut used: Vec<&str> = key.names().collect();
        for i in gsis.iter().chain(&lsis) {
            used.extend(i.key.names());
        }
        used.sort();
        used.dedup();
        let missing: Vec<&str> = used
            .iter()
            .copied()
            .filter(|n| !attributes.contains_key(*n))
            .collect();
        if !missing.is_empty() {
            return Err(DdbError::invalid(format!(
                "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
                missing.join(", "),
                attributes.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        if used.len() != attributes.len() {
            return Err(DdbError::invalid(
                "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
            ));
        }
        let provisioned = throughput(&input["ProvisionedThroughput"]);
        let pay_per_request = match input["BillingMode"].as_str() {
            Some("PAY_PER_REQUEST") => {
                if provisioned.is_some() {
                    return Err(DdbError::invalid(
                        "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                    ));
                }
                true
            }
            Some("PROVISIONED") | None => {
                if provisioned.is_none() {
                    return Err(DdbError::invalid(
                        "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
                    ));
                }
                false
            }
            Some(_) => {
                return Err(constraint(
                    &input["BillingMode"],
                    "billingMode",
                    "Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]",
                ))
            }
        };
        let stream = stream_spec(&input["StreamSpecification"])?;
        let tags = input["Tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some((
                    t["Key"].as_str()?.to_string(),
                    t["Value"].as_str()?.to_string(),
                ))
            })
            .collect();
        Ok(TableDef {
            name,
            key,
            attributes,
            gsis,
            lsis,
            pay_per_request,
            provisioned,
            stream_label: stream.as_ref().map(|_| stream_label(now_ms)),
            stream,
            ttl_attribute: None,
            tags,
            created_ms: now_ms,
            table_id: uuid::Uuid::new_v4().to_string(),
            deletion_protection: input["DeletionProtectionEnabled"]
                .as_bool()
                .unwrap_or(false),
        })
    }

    /// `AWS::DynamoDB::Table`, `AWS::DynamoDB::GlobalTable` or `AWS::Serverless::SimpleTable`
    /// properties, resolved, for the table called `name`.
    pub fn from_template(
        resource_type: &str,
        name: &str,
        props: &Json,
        now_ms: u64,
    ) -> Result<TableDef, DdbError> {
        let mut input = props.clone();
        if !input.is_object() {
            input = json!({});
        }
        if resource_type == "AWS::Serverless::SimpleTable" {
            let pk = &props["PrimaryKey"];
            let key_name = pk["Name"].as_str().unwrap_or("id");
            let key_type = match pk["Type"].as_str().unwrap_or("String") {
                "String" => "S",
                "Number" => "N",
                "Binary" => "B",
                other => {
                    return Err(DdbError::invalid(format!(
                        "PrimaryKey.Type {other:?} is not String, Number or Binary"
                    )))
                }
            };
            input = json!({
                "KeySchema": [{"AttributeName": key_name, "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": key_name, "AttributeType": key_type}],
            });
            match throughput(&props["ProvisionedThroughput"]) {
                Some((r, w)) => {
                    input["ProvisionedThroughput"] =
                        json!({"ReadCapacityUnits": r, "WriteCapacityUnits": w});
                }
                None => input["BillingMode"] = json!("PAY_PER_REQUEST"),
            }
            if props["SSESpecification"].is_object() {
                // Encryption at rest changes nothing a local run can observe.
            }
        }
        if resource_type == "AWS::DynamoDB::GlobalTable" && input["BillingMode"].is_null() {
            // GlobalTable's billing defaults to PROVISIONED with write capacity set globally;
            // capacity is not enforced locally, so on-demand stands in.
            input["BillingMode"] = json!("PAY_PER_REQUEST");
        }
        input["TableName"] = json!(name);
        // CloudFormation's StreamSpecification has only StreamViewType; its presence enables it.
        if let Some(view) = input["StreamSpecification"]["StreamViewType"].as_str() {
            input["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": view});
        }
        let mut def = TableDef::from_create(&input, now_ms)?;
        if def.stream.is_some() {
            def.stream_label = Some(TEMPLATE_STREAM_LABEL.to_string());
        }
        let ttl = &props["TimeToLiveSpecification"];
        if ttl["Enabled"].as_bool().unwrap_or(false) || ttl["Enabled"].as_str() == Some("true") {
            def.ttl_attribute = ttl["AttributeName"].as_str().map(str::to_owned);
        }
        Ok(def)
    }

    pub fn arn(&self, region: &str, account: &str) -> String {
        format!("arn:aws:dynamodb:{region}:{account}:table/{}", self.name)
    }

    pub fn stream_arn(&self, region: &str, account: &str) -> Option<String> {
        self.stream_label
            .as_ref()
            .map(|l| format!("{}/stream/{l}", self.arn(region, account)))
    }

    pub fn index(&self, name: &str) -> Option<&IndexDef> {
        self.gsis.iter().chain(&self.lsis).find(|i| i.name == name)
    }

    /// The key attributes of `item`, checked against the schema with DynamoDB's messages.
    /// `whole_item`: a PutItem's item (missing keys are "Missing the key"), else a `Key`.
    pub fn primary_key(&self, item: &Item, whole_item: bool) -> Result<PrimaryKey, DdbError> {
        if !whole_item {
            let wanted = 1 + usize::from(self.key.range.is_some());
            if item.len() != wanted || self.key.names().any(|k| !item.contains_key(k)) {
                return Err(DdbError::validation(
                    "The provided key element does not match the schema",
                ));
            }
        }
        let hash = self.key_value(item, &self.key.hash, whole_item)?;
        let range = match &self.key.range {
            Some(r) => Some(self.key_value(item, r, whole_item)?),
            None => None,
        };
        Ok(PrimaryKey { hash, range })
    }

    fn key_value(&self, item: &Item, name: &str, whole_item: bool) -> Result<KeyVal, DdbError> {
        let want = self.attributes.get(name).map(String::as_str).unwrap_or("S");
        let Some(v) = item.get(name) else {
            return Err(if whole_item {
                DdbError::invalid(format!("Missing the key {name} in the item"))
            } else {
                DdbError::validation("The provided key element does not match the schema")
            });
        };
        if v.type_name() != want {
            return Err(DdbError::invalid(format!(
                "Type mismatch for key {name} expected: {want} actual: {}",
                v.type_name()
            )));
        }
        match v {
            AttrValue::S(s) if s.is_empty() => Err(DdbError::validation(format!(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: {name}"
            ))),
            AttrValue::B(b) if b.is_empty() => Err(DdbError::validation(format!(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty binary value. Key: {name}"
            ))),
            AttrValue::S(s) if s.len() > key_limit(name, self) => Err(DdbError::validation(format!(
                "One or more parameter values were invalid: Size of {} is greater than maximum allowed size of {} bytes",
                if self.key.hash == name { "hashkey" } else { "rangekey" },
                key_limit(name, self)
            ))),
            _ => KeyVal::from_attr(v).ok_or_else(|| {
                DdbError::invalid(format!(
                    "Type mismatch for key {name} expected: {want} actual: {}",
                    v.type_name()
                ))
            }),
        }
    }

    /// An index's key of `item`, `None` when the item lacks one of its attributes or has them
    /// with another type (DynamoDB leaves such items out of the index).
    pub fn index_key(&self, index: &IndexDef, item: &Item) -> Option<(KeyVal, Option<KeyVal>)> {
        let typed = |n: &str| {
            let v = item.get(n)?;
            (Some(v.type_name()) == self.attributes.get(n).map(String::as_str))
                .then(|| KeyVal::from_attr(v))
                .flatten()
        };
        let hash = typed(&index.key.hash)?;
        let range = match &index.key.range {
            Some(r) => Some(typed(r)?),
            None => None,
        };
        Some((hash, range))
    }

    /// The item as an index projects it.
    pub fn project_for_index(&self, index: &IndexDef, item: &Item) -> Item {
        match &index.projection {
            Projection::All => item.clone(),
            p => item
                .iter()
                .filter(|(k, _)| {
                    self.key.names().any(|n| n == k.as_str())
                        || index.key.names().any(|n| n == k.as_str())
                        || matches!(p, Projection::Include(extra) if extra.contains(k))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// `DescribeTable`'s `Table` (also `CreateTable`'s and `DeleteTable`'s `TableDescription`).
    pub fn describe(
        &self,
        region: &str,
        account: &str,
        items: u64,
        bytes: u64,
        status: &str,
    ) -> Json {
        let arn = self.arn(region, account);
        let secs = self.created_ms as f64 / 1000.0;
        let pt = |p: Option<(u64, u64)>| {
            let (r, w) = p.unwrap_or((0, 0));
            json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": r, "WriteCapacityUnits": w})
        };
        let mut t = json!({
            "AttributeDefinitions": self.attributes.iter()
                .map(|(n, t)| json!({"AttributeName": n, "AttributeType": t})).collect::<Vec<_>>(),
            "TableName": self.name,
            "KeySchema": self.key.to_json(),
            "TableStatus": status,
            "CreationDateTime": secs,
            "ProvisionedThroughput": pt(self.provisioned),
            "TableSizeBytes": bytes,
            "ItemCount": items,
            "TableArn": arn,
            "TableId": self.table_id,
            "DeletionProtectionEnabled": self.deletion_protection,
        });
        if self.pay_per_request {
            t["BillingModeSummary"] = json!({
                "BillingMode": "PAY_PER_REQUEST",
                "LastUpdateToPayPerRequestDateTime": secs,
            });
        }
        let index_json = |i: &IndexDef| {
            let mut p = json!({"ProjectionType": match &i.projection {
                Projection::All => "ALL", Projection::KeysOnly => "KEYS_ONLY", Projection::Include(_) => "INCLUDE",
            }});
            if let Projection::Include(extra) = &i.projection {
                p["NonKeyAttributes"] = json!(extra);
            }
            let mut j = json!({
                "IndexName": i.name,
                "KeySchema": i.key.to_json(),
                "Projection": p,
                "IndexSizeBytes": 0,
                "ItemCount": 0,
                "IndexArn": format!("{arn}/index/{}", i.name),
            });
            if !i.local {
                j["IndexStatus"] = json!("ACTIVE");
                j["ProvisionedThroughput"] = pt(i.provisioned);
            }
            j
        };
        if !self.gsis.is_empty() {
            t["GlobalSecondaryIndexes"] = self.gsis.iter().map(index_json).collect();
        }
        if !self.lsis.is_empty() {
            t["LocalSecondaryIndexes"] = self.lsis.iter().map(index_json).collect();
        }
        if let Some(view) = &self.stream {
            t["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": view});
        }
        if let (Some(label), Some(arn)) = (&self.stream_label, self.stream_arn(region, account)) {
            t["LatestStreamLabel"] = json!(label);
            t["LatestStreamArn"] = json!(arn);
        }
        t
    }
}

/// Partition keys are at most 2048 bytes, sort keys 1024.
fn key_limit(name: &str, def: &TableDef) -> usize {
    if def.key.hash == name {
        2048
    } else {
        1024
    }
}

pub fn stream_spec(v: &Json) -> Result<Option<String>, DdbError> {
    if !v.is_object() || v["StreamEnabled"].as_bool() != Some(true) {
        if v["StreamEnabled"].as_bool() == Some(false) && v["StreamViewType"].is_string() {
            return Err(DdbError::validation(
                "One or more parameter values were invalid: StreamSpecification: StreamViewType must not be specified when StreamEnabled is false",
            ));
        }
        return Ok(None);
    }
    match v["StreamViewType"].as_str() {
        Some(t) if VIEW_TYPES.contains(&t) => Ok(Some(t.to_string())),
        Some(_) => Err(constraint(
            &v["StreamViewType"],
            "streamSpecification.streamViewType",
            "Member must satisfy enum value set: [NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES, KEYS_ONLY]",
        )),
        None => Err(DdbError::invalid(
            "You must specify a StreamViewType when enabling a stream",
        )),
    }
}

/// A stream label: the stream's creation time, as DynamoDB labels streams.
pub fn stream_label(now_ms: u64) -> String {
    let t = time_of(now_ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
        t.0,
        t.1,
        t.2,
        t.3,
        t.4,
        t.5,
        now_ms % 1000
    )
}

/// (year, month, day, hour, minute, second) in UTC of Unix milliseconds.
fn time_of(ms: u64) -> (i64, u32, u32, u64, u64, u64) {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// An item's primary key, ordered as DynamoDB orders items within a partition.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PrimaryKey {
    pub hash: KeyVal,
    pub range: Option<KeyVal>,
}

impl PrimaryKey {
    /// Bounds before and after every primary key (keys order by variant: S, N, B).
    pub const MIN: PrimaryKey = PrimaryKey {
        hash: KeyVal::S(String::new()),
        range: None,
    };
    pub const MAX: PrimaryKey = PrimaryKey {
        hash: KeyVal::Max,
        range: Some(KeyVal::Max),
    };

    /// The key as an item (`LastEvaluatedKey`, stream `Keys`).
    pub fn to_item(&self, schema: &KeySchema) -> Item {
        let mut m = Item::new();
        m.insert(schema.hash.clone(), self.hash.to_attr());
        if let (Some(n), Some(v)) = (&schema.range, &self.range) {
            m.insert(n.clone(), v.to_attr());
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(extra: Json) -> Result<TableDef, String> {
        let mut input = json!({
            "TableName": "cars",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        });
        for (k, v) in extra.as_object().unwrap() {
            input[k] = v.clone();
        }
        TableDef::from_create(&input, 1_700_000_000_000).map_err(|e| e.to_string())
    }

    #[test]
    fn create_table_is_validated_with_dynamodb_messages() {
        let cases: &[(Json, Option<&str>)] = &[
            (json!({}), None),
            (json!({"TableName": "ab"}), Some("1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3")),
            (json!({"TableName": null}), Some("1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null")),
            (json!({"TableName": "a b c"}), Some("1 validation error detected: Value 'a b c' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")),
            (json!({"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]}),
             Some("One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [sk], AttributeDefinitions: [pk]")),
            (json!({"AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "x", "AttributeType": "S"}]}),
             Some("One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions")),
            (json!({"BillingMode": "PROVISIONED"}), Some("One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED")),
            (json!({"ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}),
             Some("One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST")),
            (json!({"StreamSpecification": {"StreamEnabled": true, "StreamViewType": "ALL"}}),
             Some("1 validation error detected: Value 'ALL' at 'streamSpecification.streamViewType' failed to satisfy constraint: Member must satisfy enum value set: [NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES, KEYS_ONLY]")),
        ];
        for (extra, want) in cases {
            let got = create(extra.clone());
            match want {
                None => assert!(got.is_ok(), "{extra}: {got:?}"),
                Some(w) => assert_eq!(got.unwrap_err(), *w, "{extra}"),
            }
        }
    }

    #[test]
    fn template_tables_become_definitions() {
        let t = TableDef::from_template(
            "AWS::DynamoDB::Table",
            "acc",
            &json!({
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "status", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [{"IndexName": "by-status", "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}],
                "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
                "TimeToLiveSpecification": {"AttributeName": "expires", "Enabled": true},
            }),
            1_700_000_000_123,
        )
        .unwrap();
        assert_eq!(t.stream.as_deref(), Some("NEW_AND_OLD_IMAGES"));
        assert_eq!(t.stream_label.as_deref(), Some(TEMPLATE_STREAM_LABEL));
        assert_eq!(t.ttl_attribute.as_deref(), Some("expires"));
        let d = t.describe("us-east-1", "000000000000", 0, 0, "ACTIVE");
        assert_eq!(d["GlobalSecondaryIndexes"][0]["IndexName"], "by-status");
        assert_eq!(
            d["LatestStreamArn"],
            "arn:aws:dynamodb:us-east-1:000000000000:table/acc/stream/1970-01-01T00:00:00.000"
        );
        let api = TableDef::from_create(
            &json!({"TableName": "api", "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                    "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "KEYS_ONLY"}}),
            1_700_000_000_123,
        )
        .unwrap();
        assert_eq!(api.stream_label.as_deref(), Some("2023-11-14T22:13:20.123"));
        let simple =
            TableDef::from_template("AWS::Serverless::SimpleTable", "simple", &json!({}), 0)
                .unwrap();
        assert_eq!(
            simple.key,
            KeySchema {
                hash: "id".into(),
                range: None
            }
        );
        assert!(simple.pay_per_request);
    }

    #[test]
    fn keys_are_checked_against_the_schema() {
        let t = create(json!({})).unwrap();
        let item = |v: AttrValue| Item::from([("pk".to_string(), v)]);
        let cases: &[(Item, bool, Result<(), &str>)] = &[
            (item(AttrValue::S("a".into())), true, Ok(())),
            (item(AttrValue::N(crate::Number::from_i64(1))), true,
             Err("One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N")),
            (item(AttrValue::S(String::new())), true,
             Err("One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk")),
            (Item::new(), true, Err("One or more parameter values were invalid: Missing the key pk in the item")),
            (Item::new(), false, Err("The provided key element does not match the schema")),
        ];
        for (i, whole, want) in cases {
            let got = t
                .primary_key(i, *whole)
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{i:?}");
        }
    }
}
