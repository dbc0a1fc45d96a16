//! Table operations: CreateTable, DeleteTable, DescribeTable, ListTables, UpdateTable, TTL,
//! tags, DescribeLimits and DescribeEndpoints.

use serde_json::{json, Value as Json};

use crate::error::DdbError;
use crate::table::{self, check_table_name, TableDef};
use crate::DynamoDb;

fn name_of(input: &Json) -> Result<String, DdbError> {
    check_table_name(&input["TableName"], "tableName")
}

pub fn create_table(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let def = TableDef::from_create(input, db.now_ms())?;
    let mut st = db.lock();
    st.create_table(def.clone())?;
    let d = st.describe(&def.name, "ACTIVE")?;
    Ok(json!({ "TableDescription": d }))
}

pub fn describe_table(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let name = name_of(input)?;
    let st = db.lock();
    let d = st.describe(&name, "ACTIVE")?;
    Ok(json!({ "Table": d }))
}

pub fn delete_table(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let name = name_of(input)?;
    let mut st = db.lock();
    let t = st.described(&name)?;
    if t.def.deletion_protection {
        return Err(DdbError::validation(
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
        ));
    }
    let d = st.describe(&name, "DELETING")?;
    st.delete_table(&name)?;
    Ok(json!({ "TableDescription": d }))
}

pub fn list_tables(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let limit = match &input["Limit"] {
        Json::Null => 100,
        v => match v.as_u64() {
            Some(n @ 1..=100) => n as usize,
            _ => {
                return Err(DdbError::validation(format!(
                    "1 validation error detected: Value '{v}' at 'limit' failed to satisfy constraint: Member must have value {} 100",
                    if v.as_i64().unwrap_or(0) < 1 { "greater than or equal to 1, less than or equal to" } else { "less than or equal to" }
                )))
            }
        },
    };
    let start = input["ExclusiveStartTableName"].as_str().unwrap_or("");
    let st = db.lock();
    let names: Vec<&String> = st
        .tables
        .keys()
        .filter(|n| n.as_str() > start)
        .take(limit + 1)
        .collect();
    let mut out = json!({ "TableNames": names.iter().take(limit).collect::<Vec<_>>() });
    if names.len() > limit {
        out["LastEvaluatedTableName"] = json!(names[limit - 1]);
    }
    Ok(out)
}

pub fn update_table(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let name = name_of(input)?;
    let now = db.now_ms();
    let mut st = db.lock();
    let t = st.described(&name)?;
    let mut def = t.def.clone();
    let mut changed = false;
    for a in input["AttributeDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let (Some(n), Some(ty)) = (a["AttributeName"].as_str(), a["AttributeType"].as_str()) else {
            return Err(DdbError::validation(
                "1 validation error detected: Value null at 'attributeDefinitions.member.attributeName' failed to satisfy constraint: Member must not be null",
            ));
        };
        if !matches!(ty, "S" | "N" | "B") {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '{ty}' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"
            )));
        }
        match def.attributes.get(n) {
            Some(old) if old != ty => {
                return Err(DdbError::invalid(format!(
                    "Cannot change the type of attribute {n} from {old} to {ty}; an attribute that is part of a key keeps its type"
                )))
            }
            _ => {
                def.attributes.insert(n.to_string(), ty.to_string());
            }
        }
    }
    match input["BillingMode"].as_str() {
        Some("PAY_PER_REQUEST") => {
            def.pay_per_request = true;
            def.provisioned = None;
            changed = true;
        }
        Some("PROVISIONED") => {
            if def.provisioned.is_none() && !input["ProvisionedThroughput"].is_object() {
                return Err(DdbError::invalid(
                    "ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
                ));
            }
            def.pay_per_request = false;
            changed = true;
        }
        _ => {}
    }
    if input["ProvisionedThroughput"].is_object() {
        let r = input["ProvisionedThroughput"]["ReadCapacityUnits"].as_u64();
        let w = input["ProvisionedThroughput"]["WriteCapacityUnits"].as_u64();
        if let (Some(r), Some(w)) = (r, w) {
            def.provisioned = Some((r, w));
            changed = true;
        }
    }
    if input["StreamSpecification"].is_object() {
        let spec = table::stream_spec(&input["StreamSpecification"])?;
        match (&def.stream, &spec) {
            (Some(_), Some(_)) => {
                return Err(DdbError::validation(format!(
                    "Table already has an enabled stream: TableName: {name}"
                )))
            }
            (None, None) => {
                return Err(DdbError::validation(format!(
                    "Table already has stream disabled: TableName: {name}"
                )))
            }
            (None, Some(_)) => def.stream_label = Some(table::stream_label(now)),
            (Some(_), None) => {}
        }
        def.stream = spec;
        changed = true;
    }
    for u in input["GlobalSecondaryIndexUpdates"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if u["Create"].is_object() {
            let index = table::indexes(&json!([u["Create"]]), false, &def.key)?
                .into_iter()
                .next()
                .expect("one index was given");
            let missing: Vec<&str> = index
                .key
                .names()
                .filter(|k| !def.attributes.contains_key(*k))
                .collect();
            if !missing.is_empty() {
                // The definitions DynamoDB lists: the table's hash key and the index's keys.
                let known: Vec<&str> = def
                    .attributes
                    .keys()
                    .map(String::as_str)
                    .filter(|n| *n == def.key.hash || index.key.names().any(|k| k == *n))
                    .collect();
                return Err(DdbError::invalid(format!(
                    "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
                    missing.join(", "),
                    known.join(", ")
                )));
            }
            if def.index(&index.name).is_some() {
                return Err(DdbError::validation(format!(
                    "One or more parameter values were invalid: Index with name: {} already exists",
                    index.name
                )));
            }
            def.gsis.push(index);
            changed = true;
        } else if let Some(n) = u["Delete"]["IndexName"].as_str() {
            let before = def.gsis.len();
            def.gsis.retain(|i| i.name != n);
            if def.gsis.len() == before {
                return Err(DdbError::ResourceNotFound(format!(
                    "Requested resource not found: Index: {n} not found"
                )));
            }
            // AttributeDefinitions hold key attributes only: the index's own go with it.
            let keys: Vec<String> = def
                .key
                .names()
                .chain(def.gsis.iter().chain(&def.lsis).flat_map(|i| i.key.names()))
                .map(str::to_owned)
                .collect();
            def.attributes.retain(|a, _| keys.contains(a));
            changed = true;
        } else if let Some(n) = u["Update"]["IndexName"].as_str() {
            if def.index(n).is_none() {
                return Err(DdbError::ResourceNotFound(format!(
                    "Requested resource not found: Index: {n} not found"
                )));
            }
            changed = true;
        }
    }
    if let Some(p) = input["DeletionProtectionEnabled"].as_bool() {
        def.deletion_protection = p;
        changed = true;
    }
    if !changed {
        return Err(DdbError::validation(
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
        ));
    }
    st.redefine(def)?;
    let d = st.describe(&name, "ACTIVE")?;
    Ok(json!({ "TableDescription": d }))
}

pub fn describe_ttl(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let name = name_of(input)?;
    let st = db.lock();
    let t = st.table(&name)?;
    Ok(match &t.def.ttl_attribute {
        Some(a) => {
            json!({"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": a}})
        }
        None => json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}),
    })
}

pub fn update_ttl(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let name = name_of(input)?;
    let spec = &input["TimeToLiveSpecification"];
    let (Some(enabled), Some(attr)) = (spec["Enabled"].as_bool(), spec["AttributeName"].as_str())
    else {
        return Err(DdbError::validation(
            "1 validation error detected: Value null at 'timeToLiveSpecification' failed to satisfy constraint: Member must not be null",
        ));
    };
    let mut st = db.lock();
    let mut def = st.table(&name)?.def.clone();
    match (&def.ttl_attribute, enabled) {
        (Some(_), true) => return Err(DdbError::validation("TimeToLive is already enabled")),
        (None, false) => return Err(DdbError::validation("TimeToLive is already disabled")),
        (Some(a), false) if a != attr => {
            return Err(DdbError::validation(format!(
                "TimeToLive is active on a different AttributeName: current AttributeName is {a}"
            )))
        }
        _ => {}
    }
    def.ttl_attribute = enabled.then(|| attr.to_string());
    st.redefine(def)?;
    Ok(json!({"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attr}}))
}

/// The table named by a resource ARN (`arn:aws:dynamodb:<region>:<account>:table/<name>`).
fn table_of_arn(db: &DynamoDb, input: &Json) -> Result<String, DdbError> {
    let arn = input["ResourceArn"].as_str().unwrap_or_default();
    let name = arn
        .split_once(":table/")
        .map(|(_, n)| n.split('/').next().unwrap_or(n))
        .ok_or_else(|| {
            DdbError::validation(format!(
                "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
            ))
        })?;
    db.lock()
        .table(name)
        .map(|_| name.to_string())
        .map_err(|_| {
            DdbError::ResourceNotFound(format!(
                "Requested resource not found: ResourcArn: {arn} not found"
            ))
        })
}

pub fn tag_resource(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let name = table_of_arn(db, input)?;
    let mut st = db.lock();
    let mut def = st.table(&name)?.def.clone();
    for t in input["Tags"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (t["Key"].as_str(), t["Value"].as_str()) {
            def.tags.insert(k.to_string(), v.to_string());
        }
    }
    st.redefine(def)?;
    Ok(json!({}))
}

pub fn untag_resource(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let name = table_of_arn(db, input)?;
    let mut st = db.lock();
    let mut def = st.table(&name)?.def.clone();
    for k in input["TagKeys"].as_array().into_iter().flatten() {
        if let Some(k) = k.as_str() {
            def.tags.remove(k);
        }
    }
    st.redefine(def)?;
    Ok(json!({}))
}

pub fn list_tags(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let name = table_of_arn(db, input)?;
    let st = db.lock();
    let tags: Vec<Json> = st
        .table(&name)?
        .def
        .tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({ "Tags": tags }))
}

/// DynamoDB's default account quotas.
pub fn describe_limits() -> Json {
    json!({
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    })
}

pub fn describe_endpoints(db: &DynamoDb) -> Json {
    let region = db.lock().region.clone();
    json!({"Endpoints": [{"Address": format!("dynamodb.{region}.amazonaws.com"), "CachePeriodInMinutes": 1440}]})
}
