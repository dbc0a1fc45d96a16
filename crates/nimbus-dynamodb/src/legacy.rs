//! DynamoDB's legacy conditional parameters (`Expected`, `KeyConditions`, `QueryFilter`,
//! `ScanFilter`, `AttributeUpdates`, with `ConditionalOperator`), which older SDK code still
//! sends (the Java SDK v1's DynamoDBMapper writes `Expected` for its optimistic locking).
//!
//! Each is rewritten into the expression it stands for, with placeholders of its own, and the
//! request then goes through the same expression engine: one semantics, one set of checks. The
//! mapping follows the Developer Guide's "Legacy conditional parameters" pages.

use serde_json::{json, Map, Value as Json};

use crate::error::DdbError;

/// Which expression each legacy parameter becomes, per action.
const LEGACY: &[(&str, &str, &str)] = &[
    ("PutItem", "Expected", "ConditionExpression"),
    ("DeleteItem", "Expected", "ConditionExpression"),
    ("UpdateItem", "Expected", "ConditionExpression"),
    ("UpdateItem", "AttributeUpdates", "UpdateExpression"),
    ("Query", "KeyConditions", "KeyConditionExpression"),
    ("Query", "QueryFilter", "FilterExpression"),
    ("Scan", "ScanFilter", "FilterExpression"),
];

const EXPRESSION_MEMBERS: &[&str] = &[
    "ConditionExpression",
    "UpdateExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
];

/// Placeholders made for the legacy parameters: `#legacyN` and `:legacyN`.
struct Placeholders {
    names: Map<String, Json>,
    values: Map<String, Json>,
}

impl Placeholders {
    fn name(&mut self, attribute: &str) -> String {
        let key = format!("#legacy{}", self.names.len());
        self.names.insert(key.clone(), json!(attribute));
        key
    }

    fn value(&mut self, v: &Json) -> String {
        let key = format!(":legacy{}", self.values.len());
        self.values.insert(key.clone(), v.clone());
        key
    }
}

/// The request with its legacy parameters rewritten as expressions, or `None` when it has none.
pub fn rewrite(action: &str, input: &Json) -> Result<Option<Json>, DdbError> {
    let present: Vec<(&str, &str)> = LEGACY
        .iter()
        .filter(|(a, member, _)| *a == action && !input[*member].is_null())
        .map(|(_, member, expr)| (*member, *expr))
        .collect();
    if present.is_empty() {
        return Ok(None);
    }
    let expressions: Vec<&str> = EXPRESSION_MEMBERS
        .iter()
        .copied()
        .filter(|m| !input[*m].is_null())
        .collect();
    if !expressions.is_empty() {
        let legacy: Vec<&str> = present.iter().map(|(m, _)| *m).collect();
        return Err(DdbError::validation(format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
            legacy.join(", "),
            expressions.join(", ")
        )));
    }
    for member in ["ExpressionAttributeNames", "ExpressionAttributeValues"] {
        if !input[member].is_null() {
            return Err(DdbError::validation(format!(
                "{member} can only be specified when using expressions"
            )));
        }
    }
    let mut p = Placeholders {
        names: Map::new(),
        values: Map::new(),
    };
    let mut out = input.clone();
    for (member, expr) in present {
        let text = match member {
            "AttributeUpdates" => updates(&input[member], &mut p)?,
            "Expected" => conditions(&input[member], join(input)?, &mut p, true)?,
            // Key conditions are always joined with AND; ConditionalOperator is for filters.
            "KeyConditions" => conditions(&input[member], " AND ", &mut p, false)?,
            _ => conditions(&input[member], join(input)?, &mut p, false)?,
        };
        let obj = out.as_object_mut().expect("requests are objects");
        obj.remove(member);
        if let Some(text) = text {
            obj.insert(expr.to_string(), json!(text));
        }
    }
    let obj = out.as_object_mut().expect("requests are objects");
    obj.remove("ConditionalOperator");
    obj.insert(crate::expr::GENERATED_MARK.into(), Json::Bool(true));
    if !p.names.is_empty() {
        obj.insert("ExpressionAttributeNames".into(), Json::Object(p.names));
    }
    if !p.values.is_empty() {
        obj.insert("ExpressionAttributeValues".into(), Json::Object(p.values));
    }
    Ok(Some(out))
}

/// `Expected`, `KeyConditions`, `QueryFilter` or `ScanFilter`: conditions on attributes,
/// joined by `ConditionalOperator` (`AND` unless it says `OR`).
/// `ConditionalOperator`: how filter and `Expected` conditions are joined (`AND` by default).
fn join(input: &Json) -> Result<&'static str, DdbError> {
    match input["ConditionalOperator"].as_str() {
        None | Some("AND") => Ok(" AND "),
        Some("OR") => Ok(" OR "),
        Some(other) => Err(DdbError::validation(format!(
            "1 validation error detected: Value '{other}' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]"
        ))),
    }
}

/// `Expected`, `KeyConditions`, `QueryFilter` or `ScanFilter`: conditions on attributes,
/// joined by `join`.
fn conditions(
    v: &Json,
    join: &str,
    p: &mut Placeholders,
    expected: bool,
) -> Result<Option<String>, DdbError> {
    let Some(map) = v.as_object() else {
        return Err(DdbError::Serialization(format!(
            "a legacy condition parameter must be a map of attribute names, not {v}"
        )));
    };
    let mut parts = Vec::new();
    for (attribute, c) in map {
        parts.push(condition(attribute, c, p, expected)?);
    }
    Ok((!parts.is_empty()).then(|| parts.join(join)))
}

fn condition(
    attribute: &str,
    c: &Json,
    p: &mut Placeholders,
    expected: bool,
) -> Result<String, DdbError> {
    let name = p.name(attribute);
    let op = c["ComparisonOperator"].as_str();
    if expected && op.is_none() {
        // Expected's short form: `Exists` and `Value`.
        return match (c["Exists"].as_bool(), c.get("Value")) {
            (Some(false), None) => Ok(format!("attribute_not_exists({name})")),
            (Some(false), Some(_)) => Err(DdbError::invalid(format!(
                "Value cannot be used when Exists is false for Attribute: {attribute}"
            ))),
            (_, Some(v)) => Ok(format!("{name} = {}", p.value(v))),
            (_, None) => Err(DdbError::invalid(format!(
                "Value must be provided when Exists is true for Attribute: {attribute}"
            ))),
        };
    }
    let op = op.unwrap_or_default();
    let list: Vec<Json> = match (&c["AttributeValueList"], c.get("Value")) {
        (Json::Array(a), _) => a.clone(),
        (Json::Null, Some(v)) => vec![v.clone()],
        _ => Vec::new(),
    };
    let want = match op {
        "NULL" | "NOT_NULL" => 0..=0,
        "BETWEEN" => 2..=2,
        "IN" => 1..=100,
        _ => 1..=1,
    };
    if !want.contains(&list.len()) {
        return Err(DdbError::invalid(format!(
            "Invalid number of argument(s) for the {op} ComparisonOperator"
        )));
    }
    let vals: Vec<String> = list.iter().map(|v| p.value(v)).collect();
    Ok(match op {
        "EQ" => format!("{name} = {}", vals[0]),
        "NE" => format!("{name} <> {}", vals[0]),
        "LE" => format!("{name} <= {}", vals[0]),
        "LT" => format!("{name} < {}", vals[0]),
        "GE" => format!("{name} >= {}", vals[0]),
        "GT" => format!("{name} > {}", vals[0]),
        "NOT_NULL" => format!("attribute_exists({name})"),
        "NULL" => format!("attribute_not_exists({name})"),
        "CONTAINS" => format!("contains({name}, {})", vals[0]),
        "NOT_CONTAINS" => format!("NOT contains({name}, {})", vals[0]),
        "BEGINS_WITH" => format!("begins_with({name}, {})", vals[0]),
        "IN" => format!("{name} IN ({})", vals.join(", ")),
        "BETWEEN" => format!("{name} BETWEEN {} AND {}", vals[0], vals[1]),
        other => {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '{other}' at 'comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"
            )))
        }
    })
}

/// `AttributeUpdates`: `PUT` (the default) sets, `ADD` adds, `DELETE` removes the attribute
/// or, with a value, those elements of a set.
fn updates(v: &Json, p: &mut Placeholders) -> Result<Option<String>, DdbError> {
    let Some(map) = v.as_object() else {
        return Err(DdbError::Serialization(format!(
            "AttributeUpdates must be a map of attribute names, not {v}"
        )));
    };
    let (mut set, mut add, mut remove, mut delete) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (attribute, u) in map {
        let name = p.name(attribute);
        let value = u.get("Value").filter(|v| !v.is_null());
        match (u["Action"].as_str().unwrap_or("PUT"), value) {
            ("PUT", Some(v)) => set.push(format!("{name} = {}", p.value(v))),
            // Legacy ADD appends to a list, which the expression ADD does not take.
            ("ADD", Some(v)) if v.get("L").is_some() => {
                let empty = p.value(&json!({"L": []}));
                set.push(format!(
                    "{name} = list_append(if_not_exists({name}, {empty}), {})",
                    p.value(v)
                ));
            }
            ("ADD", Some(v)) => add.push(format!("{name} {}", p.value(v))),
            ("DELETE", Some(v)) => delete.push(format!("{name} {}", p.value(v))),
            ("DELETE", None) => remove.push(name),
            ("PUT" | "ADD", None) => {
                return Err(DdbError::invalid(format!(
                    "Only DELETE action is allowed when no attribute value is specified: {attribute}"
                )))
            }
            (other, _) => {
                return Err(DdbError::validation(format!(
                    "1 validation error detected: Value '{other}' at 'attributeUpdates.{attribute}.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"
                )))
            }
        }
    }
    let mut clauses = Vec::new();
    for (keyword, list) in [
        ("SET", set),
        ("ADD", add),
        ("REMOVE", remove),
        ("DELETE", delete),
    ] {
        if !list.is_empty() {
            clauses.push(format!("{keyword} {}", list.join(", ")));
        }
    }
    Ok((!clauses.is_empty()).then(|| clauses.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_parameters_become_the_expressions_they_stand_for() {
        let cases: &[(&str, Json, Result<Json, &str>)] = &[
            ("PutItem", json!({"Expected": {"v": {"Exists": false}}}),
             Ok(json!({"ConditionExpression": "attribute_not_exists(#legacy0)", "ExpressionAttributeNames": {"#legacy0": "v"}}))),
            ("PutItem", json!({"Expected": {"version": {"Value": {"N": "3"}}}}),
             Ok(json!({"ConditionExpression": "#legacy0 = :legacy0", "ExpressionAttributeNames": {"#legacy0": "version"},
                       "ExpressionAttributeValues": {":legacy0": {"N": "3"}}}))),
            ("Query", json!({"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]},
                                               "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "5"}]}},
                             "QueryFilter": {"n": {"ComparisonOperator": "NOT_NULL"}}}),
             Ok(json!({"KeyConditionExpression": "#legacy0 = :legacy0 AND #legacy1 BETWEEN :legacy1 AND :legacy2",
                       "FilterExpression": "attribute_exists(#legacy2)",
                       "ExpressionAttributeNames": {"#legacy0": "pk", "#legacy1": "sk", "#legacy2": "n"},
                       "ExpressionAttributeValues": {":legacy0": {"S": "a"}, ":legacy1": {"N": "1"}, ":legacy2": {"N": "5"}}}))),
            ("Scan", json!({"ScanFilter": {"a": {"ComparisonOperator": "IN", "AttributeValueList": [{"S": "x"}, {"S": "y"}]},
                                           "b": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [{"S": "z"}]}},
                            "ConditionalOperator": "OR"}),
             Ok(json!({"FilterExpression": "#legacy0 IN (:legacy0, :legacy1) OR NOT contains(#legacy1, :legacy2)",
                       "ExpressionAttributeNames": {"#legacy0": "a", "#legacy1": "b"},
                       "ExpressionAttributeValues": {":legacy0": {"S": "x"}, ":legacy1": {"S": "y"}, ":legacy2": {"S": "z"}}}))),
            ("UpdateItem", json!({"AttributeUpdates": {"a": {"Value": {"S": "x"}}, "b": {"Action": "ADD", "Value": {"N": "1"}},
                                                       "c": {"Action": "DELETE"}, "d": {"Action": "DELETE", "Value": {"SS": ["q"]}}}}),
             Ok(json!({"UpdateExpression": "SET #legacy0 = :legacy0 ADD #legacy1 :legacy1 REMOVE #legacy2 DELETE #legacy3 :legacy2",
                       "ExpressionAttributeNames": {"#legacy0": "a", "#legacy1": "b", "#legacy2": "c", "#legacy3": "d"},
                       "ExpressionAttributeValues": {":legacy0": {"S": "x"}, ":legacy1": {"N": "1"}, ":legacy2": {"SS": ["q"]}}}))),
            ("Query", json!({"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]},
                                               "sk": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "1"}]}},
                             "QueryFilter": {"x": {"ComparisonOperator": "NULL"}, "y": {"ComparisonOperator": "NULL"}},
                             "ConditionalOperator": "OR"}),
             Ok(json!({"KeyConditionExpression": "#legacy0 = :legacy0 AND #legacy1 > :legacy1",
                       "FilterExpression": "attribute_not_exists(#legacy2) OR attribute_not_exists(#legacy3)",
                       "ExpressionAttributeNames": {"#legacy0": "pk", "#legacy1": "sk", "#legacy2": "x", "#legacy3": "y"},
                       "ExpressionAttributeValues": {":legacy0": {"S": "a"}, ":legacy1": {"N": "1"}}}))),
            ("UpdateItem", json!({"AttributeUpdates": {"l": {"Action": "ADD", "Value": {"L": [{"S": "x"}]}}}}),
             Ok(json!({"UpdateExpression": "SET #legacy0 = list_append(if_not_exists(#legacy0, :legacy0), :legacy1)",
                       "ExpressionAttributeNames": {"#legacy0": "l"},
                       "ExpressionAttributeValues": {":legacy0": {"L": []}, ":legacy1": {"L": [{"S": "x"}]}}}))),
            ("PutItem", json!({"Expected": {"v": {"Exists": false}}, "ConditionExpression": "x = :y"}),
             Err("Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}")),
            ("Query", json!({"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": []}}}),
             Err("One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator")),
            ("UpdateItem", json!({"AttributeUpdates": {"a": {"Action": "PUT"}}}),
             Err("One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified: a")),
            ("PutItem", json!({"Expected": {"v": {"Exists": false}}, "ExpressionAttributeValues": {":x": {"S": "1"}}}),
             Err("ExpressionAttributeValues can only be specified when using expressions")),
        ];
        for (action, input, want) in cases {
            let got = rewrite(action, input)
                .map(|o| {
                    let mut o = o.unwrap();
                    let mark = o
                        .as_object_mut()
                        .unwrap()
                        .remove(crate::expr::GENERATED_MARK);
                    assert_eq!(mark, Some(Json::Bool(true)));
                    o
                })
                .map_err(|e| e.to_string());
            assert_eq!(got, want.clone().map_err(str::to_owned), "{action} {input}");
        }
        assert_eq!(rewrite("GetItem", &json!({"Key": {}})).unwrap(), None);
    }
}
