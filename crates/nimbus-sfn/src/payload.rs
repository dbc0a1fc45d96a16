//! Payload templates: `Parameters`, `ResultSelector`, `ItemSelector` and a Task's
//! `Parameters`. A key ending in `.$` takes its value from a path over the input (`$...`),
//! over the context object (`$$...`), or from an intrinsic function; everything else is copied.

use serde_json::{Map, Value};

use crate::error::StatesError;
use crate::intrinsic::{looks_like_intrinsic, Intrinsic};
use crate::path::Path;

/// What a `.$` value means, decided from its text.
enum Binding {
    Path(Path),
    Intrinsic(Intrinsic),
}

fn binding(key: &str, value: &Value) -> Result<Binding, String> {
    let invalid = || {
        format!("The value for the field '{key}' must be a valid JSONPath or a valid intrinsic function call")
    };
    let Value::String(text) = value else {
        return Err(invalid());
    };
    if looks_like_intrinsic(text) {
        Intrinsic::parse(text)
            .map(Binding::Intrinsic)
            .map_err(|e| format!("{} ({e})", invalid()))
    } else if text.starts_with('$') {
        Path::parse(text)
            .map(Binding::Path)
            .map_err(|e| format!("{} ({e})", invalid()))
    } else {
        Err(invalid())
    }
}

/// Checks a template when the definition is accepted: every `.$` key, at any depth, must
/// hold a path or an intrinsic call.
pub fn validate(template: &Value) -> Result<(), String> {
    match template {
        Value::Object(map) => {
            for (key, value) in map {
                if key.ends_with(".$") {
                    binding(key, value)?;
                } else {
                    validate(value)?;
                }
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(validate),
        _ => Ok(()),
    }
}

/// Renders a template against the effective input and the context object.
pub fn render(template: &Value, input: &Value, context: &Value) -> Result<Value, StatesError> {
    render_in(template, &crate::path::Roots::new(input, context))
}

/// [`render`] with workflow variables (`"x.$": "$name.field"`).
pub fn render_in(template: &Value, r: &crate::path::Roots<'_>) -> Result<Value, StatesError> {
    match template {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                match key.strip_suffix(".$") {
                    Some(name) => {
                        out.insert(name.to_string(), resolve(key, value, r)?);
                    }
                    None => {
                        out.insert(key.clone(), render_in(value, r)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|item| render_in(item, r))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

fn resolve(key: &str, value: &Value, r: &crate::path::Roots<'_>) -> Result<Value, StatesError> {
    // Definitions are validated before they run; a template that skipped validation still
    // fails the state rather than the process.
    match binding(key, value).map_err(StatesError::runtime)? {
        Binding::Intrinsic(call) => call.eval_in(r),
        Binding::Path(path) => {
            let input = r.input;
            r.select(&path).ok_or_else(|| {
                StatesError::runtime(format!(
                    "The JSONPath '{}' specified for the field '{key}' could not be found in the input '{}'",
                    path.as_str(),
                    serde_json::to_string(input).unwrap_or_default()
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input() -> Value {
        json!({
            "flagged": 7,
            "vals": [0, 10, 20, 30, 40, 50],
            "name": "Foo",
            "product": {"details": {"color": "blue", "size": "small"}, "availability": "in stock"}
        })
    }

    fn context() -> Value {
        json!({"Execution": {"Id": "arn:exec", "Input": {"k": "v"}}, "Map": {"Item": {"Index": 2}}})
    }

    #[test]
    fn validate_accepts_paths_intrinsics_and_plain_values() {
        let cases = [
            json!({}),
            json!({"a": 1, "b": "$.not-a-binding", "c": [1, {"d": null}]}),
            json!({"a.$": "$"}),
            json!({"a.$": "$.vals[0]", "b.$": "$$.Execution.Id", "c.$": "$$"}),
            json!({"a.$": "States.Format('{}', $.name)"}),
            json!({"outer": {"inner.$": "$.name"}, "list": [{"x.$": "$.vals[*]"}]}),
            json!("plain string"),
            json!([{"x.$": "$.a"}]),
        ];
        for template in cases {
            assert_eq!(validate(&template), Ok(()), "{template}");
        }
    }

    #[test]
    fn validate_names_the_bad_key() {
        let cases = [
            (json!({"a.$": "missing"}), "a.$"),
            (json!({"a.$": 1}), "a.$"),
            (json!({"a.$": null}), "a.$"),
            (json!({"a.$": "$."}), "a.$"),
            (json!({"a.$": "States.Nope()"}), "a.$"),
            (json!({"a.$": "States.Format('x'"}), "a.$"),
            (json!({"outer": {"deep.$": "nope"}}), "deep.$"),
            (json!({"list": [1, {"item.$": ["$.a"]}]}), "item.$"),
        ];
        for (template, key) in cases {
            let err = validate(&template).err().unwrap_or_default();
            assert!(
                err.starts_with(&format!(
                    "The value for the field '{key}' must be a valid JSONPath or a valid intrinsic function call"
                )),
                "{template}: {err}"
            );
        }
    }

    #[test]
    fn render_builds_the_effective_payload() {
        let cases = [
            (
                // The ASL specification's own example.
                json!({"flagged": true, "parts": {"first.$": "$.vals[0]", "last3.$": "$.vals[3:]"}}),
                json!({"flagged": true, "parts": {"first": 0, "last3": [30, 40, 50]}}),
            ),
            (
                json!({"comment": "Selecting what I care about.", "MyDetails": {"size.$": "$.product.details.size", "exists.$": "$.product.availability", "StaticValue": "foo"}}),
                json!({"comment": "Selecting what I care about.", "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"}}),
            ),
            (
                json!({"execId.$": "$$.Execution.Id", "index.$": "$$.Map.Item.Index", "all.$": "$"}),
                json!({"execId": "arn:exec", "index": 2, "all": input()}),
            ),
            (
                json!({"greeting.$": "States.Format('Hello {}', $.name)", "exec.$": "States.Array($$.Execution.Input.k)"}),
                json!({"greeting": "Hello Foo", "exec": ["v"]}),
            ),
            (
                json!({"list": [{"v.$": "$.name"}, "plain", ["x", {"n.$": "$.flagged"}]]}),
                json!({"list": [{"v": "Foo"}, "plain", ["x", {"n": 7}]]}),
            ),
            (
                json!({"not.$.a.binding": "$.name", "dollar": "$.name"}),
                json!({"not.$.a.binding": "$.name", "dollar": "$.name"}),
            ),
            (json!({"none.$": "$.vals[?(@ > 100)]"}), json!({"none": []})),
            (json!(["$.name", 1, null]), json!(["$.name", 1, null])),
            (json!(42), json!(42)),
        ];
        for (template, expected) in cases {
            assert_eq!(
                render(&template, &input(), &context()),
                Ok(expected),
                "{template}"
            );
        }
    }

    #[test]
    fn render_fails_with_aws_cause_when_a_path_matches_nothing() {
        let small = json!({"other": 1});
        let cases = [
            (
                json!({"missing.$": "$.nope.deep"}),
                "The JSONPath '$.nope.deep' specified for the field 'missing.$' could not be found in the input '{\"other\":1}'",
            ),
            (
                json!({"outer": [{"value.$": "$$.Execution.Input.no_such_jsonpath"}]}),
                "The JSONPath '$$.Execution.Input.no_such_jsonpath' specified for the field 'value.$' could not be found in the input '{\"other\":1}'",
            ),
        ];
        for (template, cause) in cases {
            assert_eq!(
                render(&template, &small, &context()),
                Err(StatesError::runtime(cause)),
                "{template}"
            );
        }
    }

    #[test]
    fn render_passes_intrinsic_errors_through() {
        let got = render(
            &json!({"n.$": "States.MathAdd($.name, 1)"}),
            &input(),
            &context(),
        );
        assert_eq!(
            got.map_err(|e| e.error),
            Err("States.IntrinsicFailure".to_string())
        );
        let got = render(&json!({"n.$": "not a path"}), &input(), &context());
        assert_eq!(got.map_err(|e| e.error), Err("States.Runtime".to_string()));
    }
}
