//! Parameter Store's rules for names, paths and labels (pure).

use crate::SsmError;

/// Levels a hierarchical name may have.
pub(crate) const MAX_LEVELS: usize = 15;

const NAME_RULES: &str =
    "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive).";
const PATH_RULES: &str = "Parameter name: can't be prefixed with \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_";

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')
}

/// Checks a parameter name: its characters, its prefix, its hierarchy.
pub(crate) fn check_name(name: &str) -> Result<(), SsmError> {
    if name.is_empty() || name.len() > 2048 {
        return Err(SsmError::validation(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must have length between 1 and 2048"
        )));
    }
    let bare = name.trim_start_matches('/');
    let lower = bare.to_ascii_lowercase();
    let bad_path = name.contains('/')
        && (!name.starts_with('/') || name.ends_with('/') || name.contains("//"));
    if !name.chars().all(name_char)
        || lower.starts_with("aws")
        || lower.starts_with("ssm")
        || bad_path
    {
        // Parameter Store's wording: the short form for a plain name, the path form otherwise.
        return Err(SsmError::validation(match name.contains('/') {
            true => PATH_RULES,
            false => NAME_RULES,
        }));
    }
    let levels = name.matches('/').count();
    if levels > MAX_LEVELS {
        return Err(SsmError::new(
            "HierarchyLevelLimitExceededException",
            format!("A hierarchy can have a maximum of {MAX_LEVELS} levels: {name} has {levels}."),
        ));
    }
    Ok(())
}

/// Checks a path for `GetParametersByPath`: `/` or a name-like path starting with `/`.
pub(crate) fn check_path(path: &str) -> Result<(), SsmError> {
    let ok = path == "/"
        || (path.starts_with('/')
            && path.chars().all(name_char)
            && !path.contains("//")
            && path.matches('/').count() <= MAX_LEVELS + 1);
    match ok {
        true => Ok(()),
        false => Err(SsmError::validation(format!(
            "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_. Path: {path}"
        ))),
    }
}

/// Whether `label` may be attached to a version: up to 100 letters, digits and `._-`, not
/// starting with a digit, `aws` or `ssm`.
pub(crate) fn label_ok(label: &str) -> bool {
    let lower = label.to_ascii_lowercase();
    !label.is_empty()
        && label.len() <= 100
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !label.starts_with(|c: char| c.is_ascii_digit())
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
}

/// `name`, `name:3` or `name:label`, as `GetParameter` accepts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Selector {
    Latest,
    Version(i64),
    Label(String),
}

pub(crate) fn split_selector(raw: &str) -> (&str, Selector) {
    match raw.rsplit_once(':') {
        Some((name, sel)) if !name.is_empty() && !sel.is_empty() && !name.starts_with("arn") => {
            match sel.parse::<i64>() {
                Ok(v) => (name, Selector::Version(v)),
                Err(_) => (name, Selector::Label(sel.to_owned())),
            }
        }
        _ => (raw, Selector::Latest),
    }
}

/// The parameter name an ARN names (`arn:aws:ssm:<region>:<account>:parameter/<name>`), or the
/// name as given.
pub(crate) fn name_of(raw: &str) -> String {
    match raw.split_once(":parameter") {
        Some((prefix, rest)) if prefix.starts_with("arn:") => {
            // `parameter/a` names `a`; `parameter/a/b` names `/a/b`.
            let rest = rest.trim_start_matches('/');
            match rest.contains('/') {
                true => format!("/{rest}"),
                false => rest.to_owned(),
            }
        }
        _ => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_parameter_stores_rules() {
        for (name, ok) in [
            ("plain", true),
            ("/app/db/url", true),
            ("with.dots-and_dashes", true),
            ("awsish", false),
            ("/SSM/x", false),
            ("app/no-leading-slash", false),
            ("/trailing/", false),
            ("/a//b", false),
            ("spaces are bad", false),
            ("", false),
        ] {
            assert_eq!(check_name(name).is_ok(), ok, "{name}");
        }
        let deep = "/l".repeat(16);
        assert_eq!(
            check_name(&deep).unwrap_err().code(),
            "HierarchyLevelLimitExceededException"
        );
        assert!(check_name(&"/l".repeat(15)).is_ok());
    }

    #[test]
    fn selectors_and_arns_name_a_parameter() {
        assert_eq!(split_selector("/a/b:3"), ("/a/b", Selector::Version(3)));
        assert_eq!(
            split_selector("/a/b:prod"),
            ("/a/b", Selector::Label("prod".into()))
        );
        assert_eq!(split_selector("/a/b"), ("/a/b", Selector::Latest));
        assert_eq!(
            name_of("arn:aws:ssm:us-east-1:123456789012:parameter/a/b"),
            "/a/b"
        );
        assert_eq!(
            name_of("arn:aws:ssm:us-east-1:123456789012:parameter/plain"),
            "plain"
        );
        assert_eq!(name_of("/a/b"), "/a/b");
    }

    #[test]
    fn labels_follow_parameter_stores_rules() {
        for (label, ok) in [
            ("prod", true),
            ("v1.2-beta_x", true),
            ("1st", false),
            ("AWSlabel", false),
            ("has space", false),
            ("", false),
        ] {
            assert_eq!(label_ok(label), ok, "{label}");
        }
    }
}
