//! `Choice` rules: parsed once with the definition, evaluated against a state's input. Pure.

use std::cmp::Ordering;

use serde_json::Value;

use crate::asl::Lang;
use crate::clock::parse_timestamp;
use crate::error::StatesError;
use crate::path::Path;

#[derive(Debug, Clone)]
pub enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Compare {
        variable: Path,
        op: Op,
        operand: Operand,
    },
    /// JSONata's `Condition`, evaluated by the JSONata engine.
    Condition(String),
}

#[derive(Debug, Clone)]
pub enum Operand {
    Value(Value),
    /// The `...Path` variants compare with another value of the input.
    Path(Path),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

const OPS: &[(&str, Op)] = &[
    ("StringEquals", Op::StringEquals),
    ("StringLessThan", Op::StringLessThan),
    ("StringGreaterThan", Op::StringGreaterThan),
    ("StringLessThanEquals", Op::StringLessThanEquals),
    ("StringGreaterThanEquals", Op::StringGreaterThanEquals),
    ("StringMatches", Op::StringMatches),
    ("NumericEquals", Op::NumericEquals),
    ("NumericLessThan", Op::NumericLessThan),
    ("NumericGreaterThan", Op::NumericGreaterThan),
    ("NumericLessThanEquals", Op::NumericLessThanEquals),
    ("NumericGreaterThanEquals", Op::NumericGreaterThanEquals),
    ("BooleanEquals", Op::BooleanEquals),
    ("TimestampEquals", Op::TimestampEquals),
    ("TimestampLessThan", Op::TimestampLessThan),
    ("TimestampGreaterThan", Op::TimestampGreaterThan),
    ("TimestampLessThanEquals", Op::TimestampLessThanEquals),
    ("TimestampGreaterThanEquals", Op::TimestampGreaterThanEquals),
    ("IsNull", Op::IsNull),
    ("IsPresent", Op::IsPresent),
    ("IsNumeric", Op::IsNumeric),
    ("IsString", Op::IsString),
    ("IsBoolean", Op::IsBoolean),
    ("IsTimestamp", Op::IsTimestamp),
];

/// Parses one rule. `top` rules carry `Next` (nested rules in `And`/`Or`/`Not` must not).
/// Errors are `(location below the rule, message)`.
pub fn parse_rule(v: &Value, top: bool, lang: Lang) -> Result<Rule, (String, String)> {
    let Some(obj) = v.as_object() else {
        return Err((String::new(), "Expected an object".into()));
    };
    let mut keys: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "Comment" && *k != "Assign" && *k != "Output")
        .collect();
    if top {
        keys.retain(|k| *k != "Next");
    } else if obj.contains_key("Next") {
        return Err((
            "/Next".into(),
            "Nested Choice rules may not have a 'Next' field".into(),
        ));
    }
    if lang == Lang::Jsonata {
        return match obj.get("Condition") {
            Some(Value::String(c)) if keys == ["Condition"] => Ok(Rule::Condition(c.clone())),
            _ => Err((
                String::new(),
                "A JSONata Choice rule needs exactly a 'Condition' (and 'Next')".into(),
            )),
        };
    }
    for combinator in ["And", "Or"] {
        if let Some(list) = obj.get(combinator) {
            if keys.len() != 1 {
                return Err((
                    String::new(),
                    format!("'{combinator}' must stand alone in a rule"),
                ));
            }
            let Some(list) = list.as_array().filter(|l| !l.is_empty()) else {
                return Err((
                    format!("/{combinator}"),
                    "Expected a non-empty array of rules".into(),
                ));
            };
            let mut rules = Vec::new();
            for (i, r) in list.iter().enumerate() {
                rules.push(
                    parse_rule(r, false, lang)
                        .map_err(|(at, m)| (format!("/{combinator}/{i}{at}"), m))?,
                );
            }
            return Ok(if combinator == "And" {
                Rule::And(rules)
            } else {
                Rule::Or(rules)
            });
        }
    }
    if let Some(inner) = obj.get("Not") {
        if keys.len() != 1 {
            return Err((String::new(), "'Not' must stand alone in a rule".into()));
        }
        let r = parse_rule(inner, false, lang).map_err(|(at, m)| (format!("/Not{at}"), m))?;
        return Ok(Rule::Not(Box::new(r)));
    }
    let Some(variable) = obj.get("Variable") else {
        return Err((
            String::new(),
            "A Choice rule needs 'Variable' and one comparison, or 'And', 'Or' or 'Not'".into(),
        ));
    };
    let variable = match variable.as_str().map(Path::parse) {
        Some(Ok(p)) => p,
        Some(Err(why)) => {
            return Err((
                "/Variable".into(),
                format!("The value for the field 'Variable' must be a valid JSONPath: {why}"),
            ))
        }
        None => return Err(("/Variable".into(), "Expected value of type: String".into())),
    };
    let comparisons: Vec<&str> = keys.iter().copied().filter(|k| *k != "Variable").collect();
    let [key] = comparisons.as_slice() else {
        return Err((
            String::new(),
            format!(
                "A Choice rule needs exactly one comparison operator, found {}",
                if comparisons.is_empty() {
                    "none".to_owned()
                } else {
                    comparisons.join(", ")
                }
            ),
        ));
    };
    let (name, by_path) = match key.strip_suffix("Path") {
        Some(base) if OPS.iter().any(|(n, _)| *n == base) && !base.starts_with("Is") => {
            (base, true)
        }
        _ => (*key, false),
    };
    let Some(&(_, op)) = OPS.iter().find(|(n, _)| *n == name) else {
        return Err((
            format!("/{key}"),
            format!("Unknown comparison operator: {key}"),
        ));
    };
    let value = &obj[*key];
    let at = format!("/{key}");
    let operand = if by_path {
        match value.as_str().map(Path::parse) {
            Some(Ok(p)) => Operand::Path(p),
            _ => {
                return Err((
                    at,
                    format!("The value for the field '{key}' must be a valid JSONPath"),
                ))
            }
        }
    } else {
        let ok = match op {
            Op::StringEquals
            | Op::StringLessThan
            | Op::StringGreaterThan
            | Op::StringLessThanEquals
            | Op::StringGreaterThanEquals
            | Op::StringMatches => value.is_string(),
            Op::NumericEquals
            | Op::NumericLessThan
            | Op::NumericGreaterThan
            | Op::NumericLessThanEquals
            | Op::NumericGreaterThanEquals => value.is_number(),
            Op::TimestampEquals
            | Op::TimestampLessThan
            | Op::TimestampGreaterThan
            | Op::TimestampLessThanEquals
            | Op::TimestampGreaterThanEquals => value.as_str().and_then(parse_timestamp).is_some(),
            _ => value.is_boolean(),
        };
        if !ok {
            let want = match name {
                n if n.starts_with("String") => "String",
                n if n.starts_with("Numeric") => "Number",
                n if n.starts_with("Timestamp") => "an ISO-8601 timestamp String",
                _ => "Boolean",
            };
            return Err((at, format!("Expected value of type: {want}")));
        }
        Operand::Value(value.clone())
    };
    Ok(Rule::Compare {
        variable,
        op,
        operand,
    })
}

/// Whether `rule` holds for `input` (with `context` for `$$` paths). A `...Path` operand that
/// selects nothing is a `States.Runtime` error, as on AWS; a `Variable` that selects nothing is
/// simply not matched (except by `IsPresent: false`).
pub fn eval(rule: &Rule, input: &Value, context: &Value) -> Result<bool, StatesError> {
    eval_in(rule, &crate::path::Roots::new(input, context))
}

/// [`eval`] with workflow variables (`"Variable": "$name"`).
pub fn eval_in(rule: &Rule, r: &crate::path::Roots<'_>) -> Result<bool, StatesError> {
    Ok(match rule {
        Rule::And(rules) => {
            for rule in rules {
                if !eval_in(rule, r)? {
                    return Ok(false);
                }
            }
            true
        }
        Rule::Or(rules) => {
            for rule in rules {
                if eval_in(rule, r)? {
                    return Ok(true);
                }
            }
            false
        }
        Rule::Not(inner) => !eval_in(inner, r)?,
        Rule::Condition(_) => {
            return Err(StatesError::runtime(
                "JSONata Choice conditions are evaluated by the JSONata engine",
            ))
        }
        Rule::Compare {
            variable,
            op,
            operand,
        } => {
            let found = r.select(variable);
            // Only `IsPresent` may ask about a field the input lacks; any other test of it
            // fails the execution, as on AWS.
            if found.is_none() && *op != Op::IsPresent {
                return Err(StatesError::runtime(format!(
                    "Invalid path '{}': The choice state's condition path references an invalid value.",
                    variable.as_str()
                )));
            }
            let expected = match operand {
                Operand::Value(v) => v.clone(),
                Operand::Path(p) => {
                    match r.select(p) {
                        Some(v) => v,
                        None => {
                            return Err(StatesError::runtime(format!(
                                "Invalid path '{}': The choice state's condition path references an invalid value.",
                                p.as_str()
                            )))
                        }
                    }
                }
            };
            compare(found.as_ref(), *op, &expected)
        }
    })
}

fn compare(found: Option<&Value>, op: Op, expected: &Value) -> bool {
    let want_bool = expected.as_bool().unwrap_or(false);
    match op {
        Op::IsPresent => return found.is_some() == want_bool,
        Op::IsNull => return found.is_some_and(Value::is_null) == want_bool,
        Op::IsNumeric => return found.is_some_and(Value::is_number) == want_bool,
        Op::IsString => return found.is_some_and(Value::is_string) == want_bool,
        Op::IsBoolean => return found.is_some_and(Value::is_boolean) == want_bool,
        Op::IsTimestamp => {
            return found
                .and_then(Value::as_str)
                .and_then(parse_timestamp)
                .is_some()
                == want_bool
        }
        _ => {}
    }
    let Some(found) = found else { return false };
    match op {
        Op::StringMatches => match (found.as_str(), expected.as_str()) {
            (Some(s), Some(pattern)) => wildcard_match(s, pattern),
            _ => false,
        },
        Op::StringEquals
        | Op::StringLessThan
        | Op::StringGreaterThan
        | Op::StringLessThanEquals
        | Op::StringGreaterThanEquals => match (found.as_str(), expected.as_str()) {
            (Some(a), Some(b)) => ordered(op, a.cmp(b)),
            _ => false,
        },
        Op::NumericEquals
        | Op::NumericLessThan
        | Op::NumericGreaterThan
        | Op::NumericLessThanEquals
        | Op::NumericGreaterThanEquals => match (found.as_f64(), expected.as_f64()) {
            (Some(a), Some(b)) if found.is_number() && expected.is_number() => {
                a.partial_cmp(&b).is_some_and(|o| ordered(op, o))
            }
            _ => false,
        },
        Op::BooleanEquals => match (found.as_bool(), expected.as_bool()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        _ => match (
            found.as_str().and_then(parse_timestamp),
            expected.as_str().and_then(parse_timestamp),
        ) {
            (Some(a), Some(b)) => ordered(op, a.cmp(&b)),
            _ => false,
        },
    }
}

fn ordered(op: Op, o: Ordering) -> bool {
    match op {
        Op::StringEquals | Op::NumericEquals | Op::TimestampEquals => o == Ordering::Equal,
        Op::StringLessThan | Op::NumericLessThan | Op::TimestampLessThan => o == Ordering::Less,
        Op::StringGreaterThan | Op::NumericGreaterThan | Op::TimestampGreaterThan => {
            o == Ordering::Greater
        }
        Op::StringLessThanEquals | Op::NumericLessThanEquals | Op::TimestampLessThanEquals => {
            o != Ordering::Greater
        }
        _ => o != Ordering::Less,
    }
}

/// `StringMatches`: `*` matches any run of characters; `\*` and `\\` are literal.
fn wildcard_match(text: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Star,
        Char(char),
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => toks.push(Tok::Char(chars.next().unwrap_or('\\'))),
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Char(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Greedy match with backtracking to the last star: linear in practice, never exponential.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(Tok::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Star)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(rule: Value, input: Value) -> Result<bool, String> {
        let r = parse_rule(&rule, false, Lang::JsonPath).map_err(|(a, m)| format!("{a}: {m}"))?;
        eval(&r, &input, &json!({})).map_err(|e| format!("{}: {}", e.error, e.cause))
    }

    #[test]
    fn comparisons_follow_the_states_language() {
        let input = json!({"s": "banana", "n": 12, "f": 1.5, "b": true, "t": "2026-01-01T00:00:00Z",
                           "nul": null, "other": 12, "later": "2026-06-01T00:00:00Z"});
        let cases = [
            (json!({"Variable": "$.s", "StringEquals": "banana"}), true),
            (json!({"Variable": "$.s", "StringLessThan": "cherry"}), true),
            (
                json!({"Variable": "$.s", "StringGreaterThanEquals": "banana"}),
                true,
            ),
            (json!({"Variable": "$.s", "StringMatches": "b*na"}), true),
            (json!({"Variable": "$.s", "StringMatches": "*nan*"}), true),
            (json!({"Variable": "$.s", "StringMatches": "c*"}), false),
            (json!({"Variable": "$.n", "NumericEquals": 12}), true),
            (json!({"Variable": "$.n", "NumericGreaterThan": 10}), true),
            (
                json!({"Variable": "$.f", "NumericLessThanEquals": 1.5}),
                true,
            ),
            (json!({"Variable": "$.s", "NumericEquals": 12}), false),
            (
                json!({"Variable": "$.n", "NumericEqualsPath": "$.other"}),
                true,
            ),
            (json!({"Variable": "$.b", "BooleanEquals": true}), true),
            (
                json!({"Variable": "$.t", "TimestampLessThan": "2026-01-02T00:00:00Z"}),
                true,
            ),
            (
                json!({"Variable": "$.t", "TimestampLessThanPath": "$.later"}),
                true,
            ),
            (json!({"Variable": "$.t", "IsTimestamp": true}), true),
            (json!({"Variable": "$.nul", "IsNull": true}), true),
            (json!({"Variable": "$.missing", "IsPresent": false}), true),
            (json!({"Variable": "$.missing", "IsPresent": true}), false),
            (json!({"Variable": "$.n", "IsNumeric": true}), true),
            (json!({"Variable": "$.s", "IsString": false}), false),
            (json!({"Variable": "$.b", "IsBoolean": true}), true),
            (
                json!({"And": [{"Variable": "$.n", "NumericGreaterThan": 1}, {"Variable": "$.b", "BooleanEquals": true}]}),
                true,
            ),
            (
                json!({"Or": [{"Variable": "$.n", "NumericLessThan": 1}, {"Variable": "$.b", "BooleanEquals": false}]}),
                false,
            ),
            (
                json!({"Not": {"Variable": "$.s", "StringEquals": "apple"}}),
                true,
            ),
        ];
        for (rule, want) in cases {
            assert_eq!(holds(rule.clone(), input.clone()), Ok(want), "{rule}");
        }
    }

    #[test]
    fn a_path_that_selects_nothing_is_a_runtime_error_except_for_is_present() {
        for rule in [
            json!({"Variable": "$.n", "NumericEqualsPath": "$.nope"}),
            json!({"Variable": "$.nope", "StringEquals": "x"}),
            json!({"Not": {"Variable": "$.nope", "IsNull": true}}),
        ] {
            let got = holds(rule.clone(), json!({"n": 1}));
            assert!(got.unwrap_err().starts_with("States.Runtime"), "{rule}");
        }
    }

    #[test]
    fn malformed_rules_are_refused_with_their_location() {
        let cases = [
            (json!({"Variable": "$.x"}), ""),
            (
                json!({"Variable": "$.x", "NumericEquals": "1"}),
                "/NumericEquals",
            ),
            (json!({"Variable": "$.x", "Frobnicate": 1}), "/Frobnicate"),
            (json!({"And": []}), "/And"),
            (
                json!({"Not": {"Variable": "$.x", "IsPresent": true, "Next": "A"}}),
                "/Not/Next",
            ),
            (
                json!({"Variable": "$.x", "TimestampEquals": "noon"}),
                "/TimestampEquals",
            ),
            (
                json!({"Variable": "$.x", "StringEquals": "a", "StringMatches": "b"}),
                "",
            ),
        ];
        for (rule, at) in cases {
            match parse_rule(&rule, false, Lang::JsonPath) {
                Ok(_) => panic!("{rule} was accepted"),
                Err((got, _)) => assert_eq!(got, at, "{rule}"),
            }
        }
    }

    #[test]
    fn wildcards_escape_and_backtrack() {
        let cases = [
            ("log-2026.txt", "log-*.txt", true),
            ("a*b", "a\\*b", true),
            ("axb", "a\\*b", false),
            ("aaa", "*a*a*a*", true),
            ("", "*", true),
            ("abc", "", false),
        ];
        for (text, pattern, want) in cases {
            assert_eq!(wildcard_match(text, pattern), want, "{text} ~ {pattern}");
        }
    }
}
