//! The IAM policy document a Lambda authorizer answers with, judged for one method ARN as IAM
//! judges it: an explicit `Deny` wins, else an `Allow` is needed, else the request is
//! implicitly denied. Resources match per ARN segment (the parts between colons) with `*`
//! (any run of characters, `/` included) and `?` (one character), and a `*` ending a
//! pattern's last segment also matches the colons after it (IAM user guide, "IAM JSON policy
//! elements: Resource"). Actions match case-insensitively, as IAM action names do.

use serde_json::{Map, Value};

/// What API Gateway asks of the policy for every request.
const INVOKE: &str = "execute-api:Invoke";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    allow: bool,
    actions: Patterns,
    resources: Patterns,
}

/// `Action` / `Resource`, or their `Not` forms, which apply to everything they do not list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Patterns {
    negated: bool,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

impl Policy {
    /// Reads a `policyDocument`; the error says what makes it unusable.
    pub(crate) fn parse(doc: &Value) -> Result<Policy, String> {
        let doc = doc.as_object().ok_or("policyDocument is not an object")?;
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) => list.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return Err("policyDocument has no Statement".into()),
        };
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| Statement::parse(s).map_err(|e| format!("Statement[{i}]: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Policy { statements })
    }

    pub(crate) fn decide(&self, method_arn: &str) -> Decision {
        let applies = |s: &&Statement| {
            s.actions.covers(|p| glob(p, INVOKE, true))
                && s.resources.covers(|p| arn_matches(p, method_arn))
        };
        let mut decision = Decision::ImplicitDeny;
        for s in self.statements.iter().filter(applies) {
            if !s.allow {
                return Decision::ExplicitDeny;
            }
            decision = Decision::Allow;
        }
        decision
    }
}

impl Statement {
    fn parse(s: &Value) -> Result<Statement, String> {
        let s = s.as_object().ok_or("not an object")?;
        let allow = match s.get("Effect").and_then(Value::as_str) {
            Some("Allow") => true,
            Some("Deny") => false,
            Some(other) => return Err(format!("Effect {other:?} is neither Allow nor Deny")),
            None => return Err("no Effect".into()),
        };
        Ok(Statement {
            allow,
            actions: Patterns::parse(s, "Action")?,
            resources: Patterns::parse(s, "Resource")?,
        })
    }
}

impl Patterns {
    fn parse(s: &Map<String, Value>, name: &str) -> Result<Patterns, String> {
        let not_name = format!("Not{name}");
        let (negated, value) = match (s.get(name), s.get(&not_name)) {
            (Some(v), None) => (false, v),
            (None, Some(v)) => (true, v),
            (Some(_), Some(_)) => return Err(format!("both {name} and {not_name}")),
            (None, None) => return Err(format!("no {name}")),
        };
        let values = match value {
            Value::String(one) => vec![one.clone()],
            Value::Array(list) => list
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or(format!("{name} holds something other than strings"))?,
            _ => return Err(format!("{name} is neither a string nor a list of strings")),
        };
        Ok(Patterns { negated, values })
    }

    fn covers(&self, matches: impl Fn(&str) -> bool) -> bool {
        self.values.iter().any(|p| matches(p)) != self.negated
    }
}

/// Whether the IAM resource pattern `pattern` names `arn`.
pub(crate) fn arn_matches(pattern: &str, arn: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let t: Vec<&str> = arn.splitn(6, ':').collect();
    for (i, segment) in p.iter().enumerate() {
        let last = i + 1 == p.len();
        if last && p.len() < t.len() && segment.ends_with('*') {
            return glob(segment, &t[i..].join(":"), false);
        }
        match t.get(i) {
            Some(target) if glob(segment, target, false) => {}
            _ => return false,
        }
    }
    p.len() == t.len()
}

/// `*` matches any run of characters, `?` exactly one; linear backtracking on the last `*`.
fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let same = |a: char, b: char| {
        if ignore_case {
            a.to_lowercase().eq(b.to_lowercase())
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && same(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets/a1b2";

    fn policy(statements: Value) -> Policy {
        Policy::parse(&json!({"Version": "2012-10-17", "Statement": statements})).unwrap()
    }

    fn allow(resource: &str) -> Value {
        json!({"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": resource})
    }

    #[test]
    fn resource_wildcards_match_like_iam() {
        for pattern in [
            ARN,
            "*",
            "arn:aws:execute-api:*:*:*",
            "arn:aws:execute-api:us-east-1:*:abc123/*",
            "arn:aws:execute-api:us-east-1:123456789012:abc123/*/GET/*",
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*/pets/*",
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets/a1b?",
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets/*2",
            "arn:aws:execute-api:*",
            "arn:aws:*",
        ] {
            assert!(arn_matches(pattern, ARN), "{pattern}");
        }
        for pattern in [
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/*",
            "arn:aws:execute-api:us-east-1:123456789012:abc123/test/*",
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets",
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets/a1b",
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets/a1b2?",
            "arn:aws:execute-api:eu-west-1:123456789012:abc123/*",
            "arn:aws:execute-api:us-east-1:123456789012:other/*",
            "arn:aws:execute-api:us-east-1:123456789012",
            // A `*` inside a segment does not cross a colon.
            "arn:aws:execute-api:us-*:abc123/*",
            "ARN:AWS:EXECUTE-API:US-EAST-1:123456789012:ABC123/*",
            "",
        ] {
            assert!(!arn_matches(pattern, ARN), "{pattern}");
        }
    }

    #[test]
    fn an_explicit_deny_wins_over_any_allow() {
        let p = policy(json!([
            allow("*"),
            {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:abc123/*/GET/pets/*"},
            allow(ARN),
        ]));
        assert_eq!(p.decide(ARN), Decision::ExplicitDeny);
        let other = ARN.replace("/GET/", "/POST/");
        assert_eq!(p.decide(&other), Decision::Allow);
    }

    #[test]
    fn nothing_allowed_is_an_implicit_deny() {
        let p = policy(json!([allow("arn:aws:execute-api:*:*:abc123/prod/POST/*")]));
        assert_eq!(p.decide(ARN), Decision::ImplicitDeny);
        assert_eq!(policy(json!([])).decide(ARN), Decision::ImplicitDeny);
    }

    #[test]
    fn only_invoke_actions_count() {
        for action in [
            json!("execute-api:Invoke"),
            json!("execute-api:invoke"),
            json!("execute-api:*"),
            json!("*"),
            json!(["execute-api:InvalidateCache", "execute-api:Invoke"]),
        ] {
            let p = policy(json!({"Effect": "Allow", "Action": action, "Resource": "*"}));
            assert_eq!(p.decide(ARN), Decision::Allow, "{action}");
        }
        let p = policy(
            json!({"Effect": "Allow", "Action": "execute-api:InvalidateCache", "Resource": "*"}),
        );
        assert_eq!(p.decide(ARN), Decision::ImplicitDeny);
    }

    #[test]
    fn not_forms_apply_to_what_they_do_not_list() {
        let p = policy(json!({
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "NotResource": "arn:aws:execute-api:*:*:abc123/*/DELETE/*",
        }));
        assert_eq!(p.decide(ARN), Decision::Allow);
        assert_eq!(
            p.decide(&ARN.replace("/GET/", "/DELETE/")),
            Decision::ImplicitDeny
        );
        let p = policy(
            json!({"Effect": "Deny", "NotAction": "execute-api:InvalidateCache", "Resource": "*"}),
        );
        assert_eq!(p.decide(ARN), Decision::ExplicitDeny);
    }

    #[test]
    fn a_single_statement_object_and_resource_lists_are_accepted() {
        let p = policy(
            json!({"Effect": "Allow", "Action": ["execute-api:Invoke"], "Resource": ["x", ARN]}),
        );
        assert_eq!(p.decide(ARN), Decision::Allow);
    }

    #[test]
    fn unusable_policies_are_errors() {
        for doc in [
            json!(null),
            json!("Allow"),
            json!({}),
            json!({"Statement": "Allow"}),
            json!({"Statement": [1]}),
            json!({"Statement": [{"Action": "*", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "allow", "Action": "*", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": 1, "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": ["*", 2]}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "*", "Resource": "*"}]}),
        ] {
            assert!(Policy::parse(&doc).is_err(), "{doc}");
        }
    }

    #[test]
    fn glob_handles_runs_of_stars_and_backtracking() {
        assert!(glob("a**b*c", "aXbYbZc", false));
        assert!(glob("*a*a*a", "aaaaaaaa", false));
        assert!(!glob("*a*a*b", "aaaaaaaa", false));
        assert!(glob("", "", false));
        assert!(!glob("", "x", false));
        assert!(glob("?é?", "aéb", false));
    }
}
