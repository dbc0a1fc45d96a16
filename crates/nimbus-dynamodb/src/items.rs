//! Item operations: PutItem, GetItem, UpdateItem, DeleteItem, BatchGetItem, BatchWriteItem,
//! TransactWriteItems and TransactGetItems.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value as Json};

use crate::error::{CancellationReason, DdbError};
use crate::expr::{self, Condition, Kind, Params, Path, Update};
use crate::state::{Change, State};
use crate::table::{check_table_name, PrimaryKey, TableDef};
use crate::value::{item_from_json, item_size, item_to_json, AttrValue, Item};
use crate::DynamoDb;

/// DynamoDB's item size limit.
const MAX_ITEM_BYTES: usize = 400 * 1024;

pub(crate) fn table_name(input: &Json) -> Result<String, DdbError> {
    check_table_name(&input["TableName"], "tableName")
}

fn null_member(at: &str) -> DdbError {
    DdbError::validation(format!(
        "1 validation error detected: Value null at '{at}' failed to satisfy constraint: Member must not be null"
    ))
}

/// A required item-shaped member (`Item`, `Key`).
pub(crate) fn item_arg(input: &Json, member: &str, at: &str) -> Result<Item, DdbError> {
    match &input[member] {
        Json::Object(m) => item_from_json(m),
        Json::Null => Err(null_member(at)),
        other => Err(DdbError::Serialization(format!(
            "{member} must be a map of attribute values, not {other}"
        ))),
    }
}

/// An optional expression member, parsed against the request's placeholders.
pub(crate) fn condition_arg(
    input: &Json,
    member: &str,
    kind: Kind,
    params: &mut Params,
) -> Result<Option<Condition>, DdbError> {
    match input[member].as_str() {
        Some(text) => Ok(Some(expr::parse_condition(kind, text, params)?)),
        None => Ok(None),
    }
}

/// The projection of a read: `ProjectionExpression`, or the legacy `AttributesToGet`.
pub(crate) fn projection_arg(
    input: &Json,
    params: &mut Params,
) -> Result<Option<Vec<Path>>, DdbError> {
    let legacy = input["AttributesToGet"].as_array();
    match (input["ProjectionExpression"].as_str(), legacy) {
        (Some(_), Some(_)) => Err(DdbError::validation(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
        )),
        (Some(text), None) => Ok(Some(expr::parse_projection(text, params)?)),
        (None, Some(names)) => Ok(Some(
            names
                .iter()
                .filter_map(Json::as_str)
                .map(|n| Path(vec![expr::PathElem::Attr(n.to_string())]))
                .collect(),
        )),
        (None, None) => Ok(None),
    }
}

/// The item reduced to the request's projection, if it has one.
pub(crate) fn projected<'a>(item: &'a Item, projection: Option<&[Path]>) -> Cow<'a, Item> {
    match projection {
        Some(p) => Cow::Owned(expr::project(item, p)),
        None => Cow::Borrowed(item),
    }
}

fn enum_arg<'a>(
    input: &'a Json,
    member: &str,
    at: &str,
    allowed: &[&'a str],
) -> Result<&'a str, DdbError> {
    match input[member].as_str() {
        None => Ok(allowed[0]),
        Some(v) if allowed.contains(&v) => Ok(v),
        Some(v) => Err(DdbError::validation(format!(
            "1 validation error detected: Value '{v}' at '{at}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        ))),
    }
}

const RETURN_VALUES: &[&str] = &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"];

/// `ReturnValues`, of which PutItem and DeleteItem take only `NONE` and `ALL_OLD`.
fn return_values<'a>(input: &'a Json, op: &str) -> Result<&'a str, DdbError> {
    let rv = enum_arg(input, "ReturnValues", "returnValues", RETURN_VALUES)?;
    if op != "UpdateItem" && !matches!(rv, "NONE" | "ALL_OLD") {
        return Err(DdbError::validation(
            "ReturnValues can only be ALL_OLD or NONE",
        ));
    }
    Ok(rv)
}

fn old_on_failure(input: &Json) -> Result<bool, DdbError> {
    Ok(enum_arg(
        input,
        "ReturnValuesOnConditionCheckFailure",
        "returnValuesOnConditionCheckFailure",
        &["NONE", "ALL_OLD"],
    )? == "ALL_OLD")
}

/// Refuses what DynamoDB refuses in a whole item beyond its key: the size limit, and a
/// secondary index key attribute of the wrong type or empty.
pub(crate) fn validate_item(def: &TableDef, item: &Item) -> Result<(), DdbError> {
    if item_size(item) > MAX_ITEM_BYTES {
        return Err(DdbError::validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    for index in def.gsis.iter().chain(&def.lsis) {
        for k in index.key.names() {
            let Some(v) = item.get(k) else { continue };
            let want = def.attributes.get(k).map(String::as_str).unwrap_or("S");
            if v.type_name() != want {
                return Err(DdbError::invalid(format!(
                    "Type mismatch for Index Key {k} Expected: {want} Actual: {} IndexName: {}",
                    v.type_name(),
                    index.name
                )));
            }
            if matches!(v, AttrValue::S(s) if s.is_empty())
                || matches!(v, AttrValue::B(b) if b.is_empty())
            {
                return Err(DdbError::validation(format!(
                    "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty {} value. IndexName: {}, IndexKey: {k}",
                    if want == "S" { "string" } else { "binary" },
                    index.name
                )));
            }
        }
    }
    Ok(())
}

/// Evaluates a condition on the item as it is (an absent item is an empty one).
fn check(cond: &Option<Condition>, old: Option<&Item>, want_old: bool) -> Result<(), DdbError> {
    let Some(cond) = cond else { return Ok(()) };
    let empty = Item::new();
    if cond.eval(old.unwrap_or(&empty)) {
        Ok(())
    } else {
        Err(DdbError::ConditionalCheckFailed(
            old.filter(|_| want_old).map(item_to_json),
        ))
    }
}

/// Write capacity units: one per KB of the larger of the old and new item, at least one.
fn write_units(old: Option<&Item>, new: Option<&Item>) -> f64 {
    let size = old.map_or(0, item_size).max(new.map_or(0, item_size));
    size.div_ceil(1024).max(1) as f64
}

/// Read capacity units for `bytes` read: one per 4 KB, half for eventually consistent reads.
pub(crate) fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

/// `ConsumedCapacity` when the request asked for it.
pub(crate) fn consumed(input: &Json, table: &str, units: f64, out: &mut Map<String, Json>) {
    match input["ReturnConsumedCapacity"].as_str() {
        Some("TOTAL") => {
            out.insert(
                "ConsumedCapacity".into(),
                json!({"TableName": table, "CapacityUnits": units}),
            );
        }
        Some("INDEXES") => {
            out.insert(
                "ConsumedCapacity".into(),
                json!({"TableName": table, "CapacityUnits": units, "Table": {"CapacityUnits": units}}),
            );
        }
        _ => {}
    }
}

fn write_one(db: &DynamoDb, st: &mut State, change: Change) -> Result<(), DdbError> {
    st.write(vec![change], db.now_ms())?;
    db.records.notify_waiters();
    Ok(())
}

/// `ConditionExpression` (with its placeholders, all of which it must use), `ReturnValues` and
/// whether `ReturnValuesOnConditionCheckFailure` asks for the old item: PutItem's and
/// DeleteItem's arguments besides the item or key.
fn condition_and_returns<'a>(
    input: &'a Json,
    op: &str,
) -> Result<(Option<Condition>, &'a str, bool), DdbError> {
    let mut params = Params::from_request(input)?;
    let cond = condition_arg(input, "ConditionExpression", Kind::Condition, &mut params)?;
    params.check_all_used()?;
    Ok((cond, return_values(input, op)?, old_on_failure(input)?))
}

/// A write's answer: the `Attributes` asked for, and `ConsumedCapacity` if asked for.
fn write_answer(input: &Json, table: &str, units: f64, attributes: Option<&Item>) -> Json {
    let mut out = Map::new();
    if let Some(a) = attributes.filter(|a| !a.is_empty()) {
        out.insert("Attributes".into(), Json::Object(item_to_json(a)));
    }
    consumed(input, table, units, &mut out);
    Json::Object(out)
}

pub fn put_item(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let name = table_name(input)?;
    let item = item_arg(input, "Item", "item")?;
    let (cond, rv, want_old) = condition_and_returns(input, "PutItem")?;
    let mut st = db.lock();
    let t = st.table(&name)?;
    let key = t.def.primary_key(&item, true)?;
    validate_item(&t.def, &item)?;
    let old = t.items.get(&key);
    check(&cond, old, want_old)?;
    let units = write_units(old, Some(&item));
    // The old item is copied only when the answer shows it.
    let old = old.filter(|_| rv == "ALL_OLD").cloned();
    write_one(db, &mut st, Change::by_caller(&name, key, Some(item)))?;
    Ok(write_answer(input, &name, units, old.as_ref()))
}

pub fn get_item(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let name = table_name(input)?;
    let key_item = item_arg(input, "Key", "key")?;
    let mut params = Params::from_request(input)?;
    let projection = projection_arg(input, &mut params)?;
    params.check_all_used()?;
    let consistent = input["ConsistentRead"].as_bool().unwrap_or(false);
    let st = db.lock();
    let t = st.table(&name)?;
    let key = t.def.primary_key(&key_item, false)?;
    let mut out = Map::new();
    let found = t.items.get(&key);
    let units = read_units(found.map_or(0, item_size), consistent);
    if let Some(item) = found {
        let shown = projected(item, projection.as_deref());
        out.insert("Item".into(), Json::Object(item_to_json(&shown)));
    }
    consumed(input, &name, units, &mut out);
    Ok(Json::Object(out))
}

pub fn delete_item(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let name = table_name(input)?;
    let key_item = item_arg(input, "Key", "key")?;
    let (cond, rv, want_old) = condition_and_returns(input, "DeleteItem")?;
    let mut st = db.lock();
    let t = st.table(&name)?;
    let key = t.def.primary_key(&key_item, false)?;
    let old = t.items.get(&key);
    check(&cond, old, want_old)?;
    let units = write_units(old, None);
    let existed = old.is_some();
    let old = old.filter(|_| rv == "ALL_OLD").cloned();
    if existed {
        write_one(db, &mut st, Change::by_caller(&name, key, None))?;
    }
    Ok(write_answer(input, &name, units, old.as_ref()))
}

/// Refuses an update that writes a key attribute.
fn check_key_untouched(def: &TableDef, update: &Update) -> Result<(), DdbError> {
    for p in update.paths() {
        if def.key.names().any(|k| k == p.top()) {
            return Err(DdbError::invalid(format!(
                "Cannot update attribute {}. This attribute is part of the key",
                p.top()
            )));
        }
    }
    Ok(())
}

pub fn update_item(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let name = table_name(input)?;
    let key_item = item_arg(input, "Key", "key")?;
    let mut params = Params::from_request(input)?;
    let update = match input["UpdateExpression"].as_str() {
        Some(text) => Some(expr::parse_update(text, &mut params)?),
        None => None,
    };
    let cond = condition_arg(input, "ConditionExpression", Kind::Condition, &mut params)?;
    params.check_all_used()?;
    let rv = return_values(input, "UpdateItem")?;
    let want_old = old_on_failure(input)?;
    let mut st = db.lock();
    let t = st.table(&name)?;
    let key = t.def.primary_key(&key_item, false)?;
    if let Some(u) = &update {
        check_key_untouched(&t.def, u)?;
    }
    let old = t.items.get(&key);
    check(&cond, old, want_old)?;
    let mut new = old.cloned().unwrap_or_else(|| key_item.clone());
    if let Some(u) = &update {
        u.apply(&mut new)?;
    }
    validate_item(&t.def, &new)?;
    let units = write_units(old, Some(&new));
    // What the answer shows is taken before the new item moves into the write.
    let paths = || update.as_ref().map(Update::paths).unwrap_or_default();
    let attributes = match rv {
        "ALL_OLD" => old.cloned(),
        "ALL_NEW" => Some(new.clone()),
        "UPDATED_OLD" => old.map(|o| expr::project(o, &paths())),
        "UPDATED_NEW" => Some(expr::project(&new, &paths())),
        _ => None,
    };
    write_one(db, &mut st, Change::by_caller(&name, key, Some(new)))?;
    Ok(write_answer(input, &name, units, attributes.as_ref()))
}

fn request_items(input: &Json) -> Result<&Map<String, Json>, DdbError> {
    match &input["RequestItems"] {
        Json::Object(m) if !m.is_empty() => Ok(m),
        Json::Object(_) => Err(DdbError::validation(
            "1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
        )),
        _ => Err(null_member("requestItems")),
    }
}

pub fn batch_get(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let requests = request_items(input)?;
    let total: usize = requests
        .values()
        .map(|r| r["Keys"].as_array().map_or(0, Vec::len))
        .sum();
    if total > 100 {
        return Err(DdbError::validation(
            "Too many items requested for the BatchGetItem call",
        ));
    }
    let mut parsed = Vec::new();
    for (table, r) in requests {
        check_table_name(&json!(table), "requestItems")?;
        let mut params = Params::from_request(r)?;
        let projection = projection_arg(r, &mut params)?;
        params.check_all_used()?;
        let keys = r["Keys"]
            .as_array()
            .ok_or_else(|| null_member("requestItems.member.keys"))?
            .iter()
            .map(|k| match k {
                Json::Object(m) => item_from_json(m),
                _ => Err(DdbError::Serialization(
                    "a key must be a map of attribute values".into(),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(DdbError::validation(
                "1 validation error detected: Value '[]' at 'requestItems.member.keys' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        parsed.push((
            table.clone(),
            keys,
            projection,
            r["ConsistentRead"].as_bool().unwrap_or(false),
        ));
    }
    let st = db.lock();
    let mut responses = Map::new();
    let mut capacity = Vec::new();
    for (table, keys, projection, consistent) in parsed {
        let t = st.table(&table)?;
        let mut seen = BTreeSet::new();
        let mut found = Vec::new();
        let mut bytes = 0;
        for k in &keys {
            let key = t.def.primary_key(k, false)?;
            if !seen.insert(key.clone()) {
                return Err(DdbError::validation(
                    "Provided list of item keys contains duplicates",
                ));
            }
            if let Some(item) = t.items.get(&key) {
                bytes += item_size(item);
                let shown = projected(item, projection.as_deref());
                found.push(Json::Object(item_to_json(&shown)));
            }
        }
        capacity.push(json!({"TableName": table, "CapacityUnits": read_units(bytes, consistent)}));
        responses.insert(table, Json::Array(found));
    }
    let mut out = json!({"Responses": responses, "UnprocessedKeys": {}});
    if matches!(
        input["ReturnConsumedCapacity"].as_str(),
        Some("TOTAL" | "INDEXES")
    ) {
        out["ConsumedCapacity"] = Json::Array(capacity);
    }
    Ok(out)
}

pub fn batch_write(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let requests = request_items(input)?;
    let total: usize = requests
        .values()
        .map(|r| r.as_array().map_or(0, Vec::len))
        .sum();
    if total > 25 {
        return Err(DdbError::validation(
            "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
        ));
    }
    // Parsed before the lock: up to 16 MB of items must not hold up every other table.
    let mut parsed: Vec<(&String, Vec<(Item, bool)>)> = Vec::new();
    for (table, list) in requests {
        check_table_name(&json!(table), "requestItems")?;
        let list = list.as_array().filter(|l| !l.is_empty()).ok_or_else(|| {
            DdbError::validation(
                "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
            )
        })?;
        let mut writes = Vec::with_capacity(list.len());
        for r in list {
            writes.push(match (r.get("PutRequest"), r.get("DeleteRequest")) {
                (Some(p), None) if p.is_object() => (item_arg(p, "Item", "item")?, true),
                (None, Some(d)) if d.is_object() => (item_arg(d, "Key", "key")?, false),
                _ => {
                    return Err(DdbError::validation(
                        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                    ))
                }
            });
        }
        parsed.push((table, writes));
    }
    let mut st = db.lock();
    let mut changes = Vec::new();
    let mut seen = BTreeSet::new();
    let mut capacity: BTreeMap<String, f64> = BTreeMap::new();
    for (table, writes) in parsed {
        let t = st.table(table)?;
        for (item, put) in writes {
            let key = t.def.primary_key(&item, put)?;
            let new = if put {
                validate_item(&t.def, &item)?;
                Some(item)
            } else {
                None
            };
            if !seen.insert((table.clone(), key.clone())) {
                return Err(DdbError::validation(
                    "Provided list of item keys contains duplicates",
                ));
            }
            *capacity.entry(table.clone()).or_default() +=
                write_units(t.items.get(&key), new.as_ref());
            changes.push(Change::by_caller(table, key, new));
        }
    }
    st.write(changes, db.now_ms())?;
    drop(st);
    db.records.notify_waiters();
    let mut out = json!({"UnprocessedItems": {}});
    if matches!(
        input["ReturnConsumedCapacity"].as_str(),
        Some("TOTAL" | "INDEXES")
    ) {
        out["ConsumedCapacity"] = capacity
            .into_iter()
            .map(|(t, u)| json!({"TableName": t, "CapacityUnits": u}))
            .collect();
    }
    Ok(out)
}

/// One action of a transaction, validated before anything is read.
struct TxAction {
    table: String,
    key_item: Item,
    kind: TxKind,
    cond: Option<Condition>,
    want_old: bool,
}

enum TxKind {
    Check,
    Put(Item),
    Delete,
    Update(Option<Update>),
}

fn transact_items(input: &Json, max: usize) -> Result<&Vec<Json>, DdbError> {
    let list = input["TransactItems"]
        .as_array()
        .ok_or_else(|| null_member("transactItems"))?;
    if list.is_empty() || list.len() > max {
        return Err(DdbError::validation(format!(
            "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length {} {max}",
            if list.is_empty() { "greater than or equal to 1, less than or equal to" } else { "less than or equal to" }
        )));
    }
    Ok(list)
}

fn parse_tx_action(element: &Json) -> Result<TxAction, DdbError> {
    let ops: Vec<(&str, &Json)> = ["ConditionCheck", "Put", "Delete", "Update"]
        .into_iter()
        .filter_map(|k| element.get(k).filter(|v| v.is_object()).map(|v| (k, v)))
        .collect();
    let [(op, body)] = ops.as_slice() else {
        return Err(DdbError::validation(
            "TransactItems can only contain one of Check, Put, Update or Delete",
        ));
    };
    let table = table_name(body)?;
    let mut params = Params::from_request(body)?;
    let (key_item, kind) = match *op {
        "Put" => {
            let item = item_arg(body, "Item", "item")?;
            (item.clone(), TxKind::Put(item))
        }
        "Update" => {
            let update = match body["UpdateExpression"].as_str() {
                Some(t) => Some(expr::parse_update(t, &mut params)?),
                None => None,
            };
            (item_arg(body, "Key", "key")?, TxKind::Update(update))
        }
        "Delete" => (item_arg(body, "Key", "key")?, TxKind::Delete),
        _ => {
            if body["ConditionExpression"].is_null() {
                return Err(DdbError::validation(
                    "The ConditionExpression must be specified for a ConditionCheck",
                ));
            }
            (item_arg(body, "Key", "key")?, TxKind::Check)
        }
    };
    let cond = condition_arg(body, "ConditionExpression", Kind::Condition, &mut params)?;
    params.check_all_used()?;
    Ok(TxAction {
        table,
        key_item,
        kind,
        cond,
        want_old: old_on_failure(body)?,
    })
}

/// What identifies a transaction's request for its idempotency token: a hash, so ten minutes
/// of tokens never hold the requests themselves.
fn fingerprint(items: &Json) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    items.to_string().hash(&mut h);
    h.finish()
}

pub fn transact_write(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let list = transact_items(input, 100)?;
    let actions = list
        .iter()
        .map(parse_tx_action)
        .collect::<Result<Vec<_>, _>>()?;
    let token = input["ClientRequestToken"].as_str().map(str::to_owned);
    if let Some(t) = token.as_deref().filter(|t| t.is_empty() || t.len() > 36) {
        return Err(DdbError::validation(format!(
            "1 validation error detected: Value '{t}' at 'clientRequestToken' failed to satisfy constraint: Member must have length less than or equal to 36"
        )));
    }
    let now = db.now_ms();
    let mut st = db.lock();
    if let Some(token) = &token {
        // A retried transaction with the same token within ten minutes is not applied again.
        let fingerprint = fingerprint(&input["TransactItems"]);
        st.tokens
            .retain(|_, (_, at)| now.saturating_sub(*at) < 10 * 60 * 1000);
        if let Some((seen, _)) = st.tokens.get(token) {
            if *seen == fingerprint {
                return Ok(json!({}));
            }
            return Err(DdbError::IdempotentParameterMismatch(
                "Request parameters do not match with the previous request with the same idempotency token".into(),
            ));
        }
    }
    let mut targets = BTreeSet::new();
    let mut planned: Vec<(PrimaryKey, Option<Option<Item>>)> = Vec::new();
    let mut reasons = Vec::new();
    let mut failed = false;
    for a in &actions {
        let t = st.table(&a.table)?;
        let whole = matches!(a.kind, TxKind::Put(_));
        let key = t.def.primary_key(&a.key_item, whole)?;
        if !targets.insert((a.table.clone(), key.clone())) {
            return Err(DdbError::validation(
                "Transaction request cannot include multiple operations on one item",
            ));
        }
        // What the request says on its own is refused for the whole request; what the
        // transaction's changes would make of an item is a cancellation reason, as DynamoDB does.
        match &a.kind {
            TxKind::Put(item) => validate_item(&t.def, item)?,
            TxKind::Update(Some(u)) => check_key_untouched(&t.def, u)?,
            _ => {}
        }
        let old = t.items.get(&key);
        if let Err(e) = check(&a.cond, old, a.want_old) {
            let DdbError::ConditionalCheckFailed(item) = e else {
                return Err(e);
            };
            failed = true;
            reasons.push(CancellationReason {
                code: "ConditionalCheckFailed",
                message: Some("The conditional request failed".into()),
                item,
            });
            planned.push((key, None));
            continue;
        }
        let new = match &a.kind {
            TxKind::Check => Ok(None),
            TxKind::Put(item) => Ok(Some(Some(item.clone()))),
            TxKind::Delete => Ok(Some(None)),
            TxKind::Update(u) => {
                let mut new = old.cloned().unwrap_or_else(|| a.key_item.clone());
                u.as_ref()
                    .map_or(Ok(()), |u| u.apply(&mut new))
                    .and_then(|()| validate_item(&t.def, &new))
                    .map(|()| Some(Some(new)))
            }
        };
        match new {
            Ok(new) => {
                reasons.push(CancellationReason {
                    code: "None",
                    message: None,
                    item: None,
                });
                planned.push((key, new));
            }
            Err(e) => {
                failed = true;
                reasons.push(CancellationReason {
                    code: "ValidationError",
                    message: Some(e.to_string()),
                    item: None,
                });
                planned.push((key, None));
            }
        }
    }
    if failed {
        return Err(DdbError::TransactionCanceled(reasons));
    }
    let changes = actions
        .iter()
        .zip(planned)
        .filter_map(|(a, (key, new))| new.map(|new| Change::by_caller(&a.table, key, new)))
        .collect();
    st.write(changes, now)?;
    if let Some(token) = token {
        st.tokens
            .insert(token, (fingerprint(&input["TransactItems"]), now));
    }
    drop(st);
    db.records.notify_waiters();
    Ok(json!({}))
}

pub fn transact_get(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let list = transact_items(input, 100)?;
    let mut gets = Vec::new();
    for element in list {
        let body = &element["Get"];
        if !body.is_object() {
            return Err(null_member("transactItems.member.get"));
        }
        let table = table_name(body)?;
        let key = item_arg(body, "Key", "key")?;
        let mut params = Params::from_request(body)?;
        let projection = projection_arg(body, &mut params)?;
        params.check_all_used()?;
        gets.push((table, key, projection));
    }
    let st = db.lock();
    let mut responses = Vec::new();
    for (table, key_item, projection) in gets {
        let t = st.table(&table)?;
        let key = t.def.primary_key(&key_item, false)?;
        responses.push(match t.items.get(&key) {
            Some(item) => {
                let shown = projected(item, projection.as_deref());
                json!({"Item": item_to_json(&shown)})
            }
            None => json!({}),
        });
    }
    Ok(json!({ "Responses": responses }))
}
