//! Query and Scan: key-ordered walks over a table or a secondary index, with `Limit`, the 1 MB
//! page, `ExclusiveStartKey`/`LastEvaluatedKey`, filters, projections and parallel scan segments.

use std::borrow::Cow;
use std::ops::Bound;

use serde_json::{json, Map, Value as Json};

use crate::error::DdbError;
use crate::expr::{self, Kind, Params, Path, RangeOp};
use crate::items::{condition_arg, consumed, projected, projection_arg, read_units, table_name};
use crate::state::{IndexEntry, TableState};
use crate::table::{IndexDef, PrimaryKey, Projection, TableDef};
use crate::value::{item_from_json, item_size, item_to_json, Item, KeyVal};
use crate::DynamoDb;

/// A page stops once it has read this much, as DynamoDB's does.
const PAGE_BYTES: usize = 1024 * 1024;

fn limit_arg(input: &Json) -> Result<Option<usize>, DdbError> {
    match &input["Limit"] {
        Json::Null => Ok(None),
        v => match v.as_i64() {
            Some(n) if n >= 1 => Ok(Some(n as usize)),
            _ => Err(DdbError::validation(format!(
                "1 validation error detected: Value '{v}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
            ))),
        },
    }
}

/// The walk's position, as `ExclusiveStartKey` gives it and `LastEvaluatedKey` hands it out.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Position {
    Table(PrimaryKey),
    Index(KeyVal, Option<KeyVal>, PrimaryKey),
}

fn start_key(
    input: &Json,
    def: &TableDef,
    index: Option<&IndexDef>,
) -> Result<Option<Position>, DdbError> {
    let invalid = || {
        DdbError::validation(
            "The provided starting key is invalid: The provided key element does not match the schema",
        )
    };
    let esk = match &input["ExclusiveStartKey"] {
        Json::Null => return Ok(None),
        Json::Object(m) => item_from_json(m)?,
        _ => return Err(invalid()),
    };
    let table_key = def
        .primary_key(
            &esk.iter()
                .filter(|(k, _)| def.key.names().any(|n| n == k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            false,
        )
        .map_err(|_| invalid())?;
    match index {
        None => {
            if esk.len() != def.key.names().count() {
                return Err(invalid());
            }
            Ok(Some(Position::Table(table_key)))
        }
        Some(i) => {
            let (h, r) = def.index_key(i, &esk).ok_or_else(invalid)?;
            Ok(Some(Position::Index(h, r, table_key)))
        }
    }
}

fn last_key(def: &TableDef, index: Option<&IndexDef>, pos: &Position) -> Json {
    let mut m = Item::new();
    match pos {
        Position::Table(k) => m.extend(k.to_item(&def.key)),
        Position::Index(h, r, k) => {
            m.extend(k.to_item(&def.key));
            if let Some(i) = index {
                m.insert(i.key.hash.clone(), h.to_attr());
                if let (Some(n), Some(r)) = (&i.key.range, r) {
                    m.insert(n.clone(), r.to_attr());
                }
            }
        }
    }
    Json::Object(item_to_json(&m))
}

/// What a read returns of each item: `Select` and the projection, checked as DynamoDB checks them.
struct Output {
    count_only: bool,
    /// `Select: ALL_ATTRIBUTES`: a local index's items are then fetched from the table.
    all_attributes: bool,
    projection: Option<Vec<Path>>,
}

fn output(
    input: &Json,
    def: &TableDef,
    index: Option<&IndexDef>,
    params: &mut Params,
) -> Result<Output, DdbError> {
    let projection = projection_arg(input, params)?;
    let select = input["Select"].as_str();
    match select {
        None | Some("ALL_ATTRIBUTES" | "ALL_PROJECTED_ATTRIBUTES" | "SPECIFIC_ATTRIBUTES" | "COUNT") => {}
        Some(v) => {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '{v}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
            )))
        }
    }
    if projection.is_some()
        && matches!(
            select,
            Some("ALL_ATTRIBUTES" | "ALL_PROJECTED_ATTRIBUTES" | "COUNT")
        )
    {
        return Err(DdbError::validation(format!(
            "Cannot specify the ProjectionExpression when choosing to get {}",
            select.unwrap_or_default()
        )));
    }
    if select == Some("SPECIFIC_ATTRIBUTES") && projection.is_none() {
        return Err(DdbError::validation(
            "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
        ));
    }
    if select == Some("ALL_PROJECTED_ATTRIBUTES") && index.is_none() {
        return Err(DdbError::validation(
            "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        ));
    }
    if let (Some("ALL_ATTRIBUTES"), Some(i)) = (select, index) {
        if !i.local && i.projection != Projection::All {
            return Err(DdbError::invalid(format!(
                "Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                i.name
            )));
        }
    }
    let _ = def;
    Ok(Output {
        count_only: select == Some("COUNT"),
        all_attributes: select == Some("ALL_ATTRIBUTES"),
        projection,
    })
}

/// `IndexName` and `ConsistentRead`, which global secondary indexes refuse.
fn index_and_consistency<'a>(
    input: &Json,
    def: &'a TableDef,
) -> Result<(Option<&'a IndexDef>, bool), DdbError> {
    let index = index_arg(input, def)?;
    let consistent = input["ConsistentRead"].as_bool().unwrap_or(false);
    if consistent && index.is_some_and(|i| !i.local) {
        return Err(DdbError::validation(
            "Consistent reads are not supported on global secondary indexes",
        ));
    }
    Ok((index, consistent))
}

fn index_arg<'a>(input: &Json, def: &'a TableDef) -> Result<Option<&'a IndexDef>, DdbError> {
    match input["IndexName"].as_str() {
        None => Ok(None),
        Some(n) => def.index(n).map(Some).ok_or_else(|| {
            DdbError::validation(format!("The table does not have the specified index: {n}"))
        }),
    }
}

/// Walks `positions` (already in order, after the start key) and builds the page.
#[allow(clippy::too_many_arguments)]
fn page<'a>(
    t: &'a TableState,
    index: Option<&IndexDef>,
    positions: impl Iterator<Item = (Position, &'a Item)>,
    limit: Option<usize>,
    filter: Option<&expr::Condition>,
    out_spec: &Output,
    input: &Json,
    consistent: bool,
) -> Json {
    let mut items = Vec::new();
    let mut scanned = 0usize;
    let mut count = 0usize;
    let mut bytes = 0usize;
    let mut last = None;
    for (pos, item) in positions {
        // A local index reads what it does not project from the table, as DynamoDB does
        // (with the extra read cost); a global one has only its projection.
        let from_table = index
            .is_none_or(|i| i.local && (out_spec.all_attributes || out_spec.projection.is_some()));
        let shown_item = match index {
            Some(i) if !from_table => Cow::Owned(t.def.project_for_index(i, item)),
            _ => Cow::Borrowed(item),
        };
        scanned += 1;
        bytes += item_size(&shown_item);
        let keep = filter.is_none_or(|f| f.eval(&shown_item));
        if keep {
            count += 1;
            if !out_spec.count_only {
                let shown = projected(&shown_item, out_spec.projection.as_deref());
                items.push(Json::Object(item_to_json(&shown)));
            }
        }
        if limit == Some(scanned) || bytes >= PAGE_BYTES {
            last = Some(pos);
            break;
        }
    }
    let mut out = Map::new();
    if !out_spec.count_only {
        out.insert("Items".into(), Json::Array(items));
    }
    out.insert("Count".into(), json!(count));
    out.insert("ScannedCount".into(), json!(scanned));
    if let Some(pos) = last {
        out.insert("LastEvaluatedKey".into(), last_key(&t.def, index, &pos));
    }
    consumed(input, &t.def.name, read_units(bytes, consistent), &mut out);
    Json::Object(out)
}

pub fn query(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let name = table_name(input)?;
    let limit = limit_arg(input)?;
    let Some(kce) = input["KeyConditionExpression"].as_str() else {
        return Err(DdbError::validation(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
        ));
    };
    let st = db.lock();
    let t = st.table(&name)?;
    let (index, consistent) = index_and_consistency(input, &t.def)?;
    let mut params = Params::from_request(input)?;
    let (hash_name, range_name) = match index {
        Some(i) => (&i.key.hash, i.key.range.as_ref()),
        None => (&t.def.key.hash, t.def.key.range.as_ref()),
    };
    let kc =
        expr::parse_key_condition(kce, &mut params, hash_name, range_name.map(String::as_str))?;
    let filter = condition_arg(input, "FilterExpression", Kind::Filter, &mut params)?;
    if let Some(f) = &filter {
        let names = f.top_level_names();
        let queried = std::iter::once(hash_name).chain(range_name);
        if let Some(key) = queried.into_iter().find(|k| names.contains(k.as_str())) {
            return Err(DdbError::validation(format!(
                "Filter Expression can only contain non-primary key attributes: Primary key attribute: {key}"
            )));
        }
    }
    let out_spec = output(input, &t.def, index, &mut params)?;
    params.check_all_used()?;
    let want = |n: &str| t.def.attributes.get(n).map(String::as_str).unwrap_or("S");
    let hash = KeyVal::from_attr(&kc.hash.1)
        .filter(|_| kc.hash.1.type_name() == want(hash_name))
        .ok_or_else(|| DdbError::validation("One or more parameter values were invalid: Condition parameter type does not match schema type"))?;
    if let (Some((_, op)), Some(want_type)) = (&kc.range, range_name.map(|r| want(r))) {
        if matches!(op, RangeOp::BeginsWith(_)) && want_type == "N" {
            return Err(DdbError::validation(
                "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
            ));
        }
        if range_values(op).iter().any(|v| v.type_name() != want_type) {
            return Err(DdbError::validation(
                "One or more parameter values were invalid: Condition parameter type does not match schema type",
            ));
        }
    }
    let start = start_key(input, &t.def, index)?;
    let forward = input["ScanIndexForward"].as_bool().unwrap_or(true);
    if let Some(start) = &start {
        let start_hash = match start {
            Position::Table(k) => &k.hash,
            Position::Index(h, _, _) => h,
        };
        if *start_hash != hash {
            return Err(DdbError::validation(
                "The provided starting key is outside query boundaries based on provided conditions",
            ));
        }
    }
    let in_range = |r: &Option<KeyVal>| match (&kc.range, r) {
        (None, _) => true,
        (Some((_, op)), Some(r)) => op.matches(&r.to_attr()),
        (Some(_), None) => false,
    };
    // The walk is lazy and bounded by the sort key condition and the start key, so a page
    // costs its own items, not the partition's.
    let (lo, hi) = sort_bounds(kc.range.as_ref().map(|(_, op)| op));
    let candidates: Box<dyn Iterator<Item = (Position, &Item)>> = match index {
        None => {
            let at = |r: Option<KeyVal>| PrimaryKey {
                hash: hash.clone(),
                range: r,
            };
            let mut lo = lo.map(at);
            let mut hi = hi.map(at);
            if let Some(Position::Table(k)) = &start {
                if forward {
                    lo = Bound::Excluded(k.clone());
                } else {
                    hi = Bound::Excluded(k.clone());
                }
            }
            if !ordered(&lo, &hi) {
                Box::new(std::iter::empty())
            } else {
                let walk = t.items.range((lo, hi));
                let walk: Box<dyn Iterator<Item = (&PrimaryKey, &Item)>> = if forward {
                    Box::new(walk)
                } else {
                    Box::new(walk.rev())
                };
                Box::new(
                    walk.filter(move |(k, _)| in_range(&k.range))
                        .map(|(k, item)| (Position::Table(k.clone()), item)),
                )
            }
        }
        Some(i) => {
            let (first, last) = (PrimaryKey::MIN, PrimaryKey::MAX);
            let mut lo = match lo {
                Bound::Included(r) => Bound::Included((hash.clone(), r, first.clone())),
                Bound::Excluded(r) => Bound::Excluded((hash.clone(), r, last.clone())),
                Bound::Unbounded => Bound::Unbounded,
            };
            let mut hi = match hi {
                Bound::Included(r) => Bound::Included((hash.clone(), r, last)),
                Bound::Excluded(r) => Bound::Excluded((hash.clone(), r, first)),
                Bound::Unbounded => Bound::Unbounded,
            };
            if let Some(Position::Index(h, r, k)) = &start {
                let at = (h.clone(), r.clone(), k.clone());
                if forward {
                    lo = Bound::Excluded(at);
                } else {
                    hi = Bound::Excluded(at);
                }
            }
            if !ordered(&lo, &hi) {
                Box::new(std::iter::empty())
            } else {
                let walk = t.indexes[&i.name].range((lo, hi));
                let walk: Box<dyn Iterator<Item = &IndexEntry>> = if forward {
                    Box::new(walk)
                } else {
                    Box::new(walk.rev())
                };
                Box::new(
                    walk.filter(move |(_, r, _)| in_range(r))
                        .filter_map(|e| index_position(t, e)),
                )
            }
        }
    };
    Ok(page(
        t,
        index,
        candidates,
        limit,
        filter.as_ref(),
        &out_spec,
        input,
        consistent,
    ))
}

fn range_values(op: &RangeOp) -> Vec<&crate::value::AttrValue> {
    match op {
        RangeOp::Eq(v)
        | RangeOp::Lt(v)
        | RangeOp::Le(v)
        | RangeOp::Gt(v)
        | RangeOp::Ge(v)
        | RangeOp::BeginsWith(v) => vec![v],
        RangeOp::Between(a, b) => vec![a, b],
    }
}

/// An index entry as a walk's position, with the table's item it points to.
fn index_position<'a>(t: &'a TableState, (h, r, k): &IndexEntry) -> Option<(Position, &'a Item)> {
    Some((
        Position::Index(h.clone(), r.clone(), k.clone()),
        t.items.get(k)?,
    ))
}

/// The sort key bounds a key condition sets (within one partition): `None` sorts before every
/// sort key and `Some(KeyVal::Max)` after, so an open side still stays in the partition.
fn sort_bounds(op: Option<&RangeOp>) -> (Bound<Option<KeyVal>>, Bound<Option<KeyVal>>) {
    let key = |v: &crate::value::AttrValue| KeyVal::from_attr(v);
    let first = Bound::Included(None);
    let last = Bound::Included(Some(KeyVal::Max));
    match op {
        None => (first, last),
        Some(RangeOp::Eq(v)) => (Bound::Included(key(v)), Bound::Included(key(v))),
        Some(RangeOp::Lt(v)) => (first, Bound::Excluded(key(v))),
        Some(RangeOp::Le(v)) => (first, Bound::Included(key(v))),
        Some(RangeOp::Gt(v)) => (Bound::Excluded(key(v)), last),
        Some(RangeOp::Ge(v)) => (Bound::Included(key(v)), last),
        Some(RangeOp::Between(a, b)) => (Bound::Included(key(a)), Bound::Included(key(b))),
        // Every string or binary with a prefix sorts at or after the prefix itself.
        Some(RangeOp::BeginsWith(p)) => (Bound::Included(key(p)), last),
    }
}

/// Whether `BTreeMap::range` accepts these bounds (it panics on a reversed or empty-excluded
/// range; such a range simply has no keys).
fn ordered<K: Ord>(lo: &Bound<K>, hi: &Bound<K>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => a < b,
        _ => true,
    }
}

/// The parallel-scan segment a partition key falls in: a stable hash of its value.
fn segment_of(hash: &KeyVal, total: u64) -> u64 {
    let bytes: Vec<u8> = match hash {
        KeyVal::S(s) => s.as_bytes().to_vec(),
        KeyVal::N(n) => n.to_string().into_bytes(),
        KeyVal::B(b) => b.clone(),
        KeyVal::Max => Vec::new(),
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % total
}

pub fn scan(db: &DynamoDb, input: &Json) -> Result<Json, DdbError> {
    let name = table_name(input)?;
    let limit = limit_arg(input)?;
    let segment = match (&input["Segment"], &input["TotalSegments"]) {
        (Json::Null, Json::Null) => None,
        (Json::Null, _) => {
            return Err(DdbError::validation(
                "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
            ))
        }
        (_, Json::Null) => {
            return Err(DdbError::validation(
                "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
            ))
        }
        (s, n) => {
            let total = n.as_u64().filter(|n| (1..=1_000_000).contains(n)).ok_or_else(|| {
                DdbError::validation(format!(
                    "1 validation error detected: Value '{n}' at 'totalSegments' failed to satisfy constraint: Member must have value less than or equal to 1000000"
                ))
            })?;
            let seg = s.as_u64().unwrap_or(u64::MAX);
            if seg >= total {
                return Err(DdbError::validation(format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {total}"
                )));
            }
            Some((seg, total))
        }
    };
    let st = db.lock();
    let t = st.table(&name)?;
    let (index, consistent) = index_and_consistency(input, &t.def)?;
    let mut params = Params::from_request(input)?;
    let filter = condition_arg(input, "FilterExpression", Kind::Filter, &mut params)?;
    let out_spec = output(input, &t.def, index, &mut params)?;
    params.check_all_used()?;
    let start = start_key(input, &t.def, index)?;
    let in_segment = |k: &PrimaryKey| segment.is_none_or(|(s, n)| segment_of(&k.hash, n) == s);
    let positions: Box<dyn Iterator<Item = (Position, &Item)>> = match index {
        None => {
            let from = match &start {
                Some(Position::Table(k)) => Bound::Excluded(k.clone()),
                _ => Bound::Unbounded,
            };
            Box::new(
                t.items
                    .range((from, Bound::Unbounded))
                    .filter(move |(k, _)| in_segment(k))
                    .map(|(k, item)| (Position::Table(k.clone()), item)),
            )
        }
        Some(i) => {
            let from = match &start {
                Some(Position::Index(h, r, k)) => {
                    Bound::Excluded((h.clone(), r.clone(), k.clone()))
                }
                _ => Bound::Unbounded,
            };
            Box::new(
                t.indexes[&i.name]
                    .range((from, Bound::Unbounded))
                    .filter(move |(_, _, k)| in_segment(k))
                    .filter_map(|e| index_position(t, e)),
            )
        }
    };
    Ok(page(
        t,
        index,
        positions,
        limit,
        filter.as_ref(),
        &out_spec,
        input,
        consistent,
    ))
}
