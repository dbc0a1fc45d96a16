//! Configuration from environment variables, read through a lookup function so that tests
//! pass their own variables. Every problem names the variable and what it holds.

use std::fmt;

/// A bad variable: the message names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Looks a variable up: `|k| std::env::var(k).ok()` in the functions.
pub type Vars<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A variable that must be set and not empty.
pub fn required(vars: Vars<'_>, name: &str) -> Result<String, ConfigError> {
    match vars(name) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(ConfigError(format!("{name} is not set"))),
    }
}

/// A whole number of at least `min`; `default` when unset or empty.
pub fn u64_or(vars: Vars<'_>, name: &str, default: u64, min: u64) -> Result<u64, ConfigError> {
    let Some(raw) = vars(name).filter(|v| !v.trim().is_empty()) else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        Ok(n) => Err(ConfigError(format!(
            "{name} must be at least {min}, got {n}"
        ))),
        Err(_) => Err(ConfigError(format!(
            "{name} must be a whole number, got {raw:?}"
        ))),
    }
}

/// A number from 0 to 1; `default` when unset or empty.
pub fn fraction_or(vars: Vars<'_>, name: &str, default: f64) -> Result<f64, ConfigError> {
    let Some(raw) = vars(name).filter(|v| !v.trim().is_empty()) else {
        return Ok(default);
    };
    match raw.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(ConfigError(format!(
            "{name} must be a number from 0 to 1, got {raw:?}"
        ))),
    }
}

#[cfg(test)]
pub(crate) fn vars_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_default_when_unset_or_empty_and_are_checked_when_set() {
        let vars = vars_from(&[("EMPTY", " "), ("N", "42"), ("LOW", "0"), ("BAD", "4x")]);
        assert_eq!(u64_or(&vars, "UNSET", 7, 1), Ok(7));
        assert_eq!(u64_or(&vars, "EMPTY", 7, 1), Ok(7));
        assert_eq!(u64_or(&vars, "N", 7, 1), Ok(42));
        assert_eq!(
            u64_or(&vars, "LOW", 7, 1),
            Err(ConfigError("LOW must be at least 1, got 0".into()))
        );
        assert_eq!(
            u64_or(&vars, "BAD", 7, 1),
            Err(ConfigError("BAD must be a whole number, got \"4x\"".into()))
        );
    }

    #[test]
    fn fractions_are_from_0_to_1() {
        let vars = vars_from(&[("A", "0.25"), ("B", "1"), ("C", "1.5"), ("D", "-0.1")]);
        assert_eq!(fraction_or(&vars, "A", 0.2), Ok(0.25));
        assert_eq!(fraction_or(&vars, "B", 0.2), Ok(1.0));
        assert_eq!(fraction_or(&vars, "UNSET", 0.2), Ok(0.2));
        assert_eq!(
            fraction_or(&vars, "C", 0.2),
            Err(ConfigError(
                "C must be a number from 0 to 1, got \"1.5\"".into()
            ))
        );
        assert!(fraction_or(&vars, "D", 0.2).is_err());
    }

    #[test]
    fn required_variables_must_be_set_and_not_blank() {
        let vars = vars_from(&[("SET", " x "), ("BLANK", "")]);
        assert_eq!(required(&vars, "SET"), Ok("x".into()));
        assert_eq!(
            required(&vars, "BLANK"),
            Err(ConfigError("BLANK is not set".into()))
        );
        assert!(required(&vars, "UNSET").is_err());
    }
}
