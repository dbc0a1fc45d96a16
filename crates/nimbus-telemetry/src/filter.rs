//! CloudWatch Logs filter patterns for unstructured lines, the part `nimbus logs --filter` and
//! `FilterLogEvents` support: terms (`ERROR`), quoted phrases (`"Task timed out"`), all of which
//! must appear; `?term` alternatives, one of which must appear; `-term` exclusions. Matching is
//! case-sensitive and by substring, as in CloudWatch. JSON (`{ $.x = 1 }`), space-delimited
//! (`[ip, user]`) and regular-expression (`%...%`) patterns are refused with a message.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterPattern {
    all: Vec<String>,
    any: Vec<String>,
    none: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter pattern {pattern:?}: {reason}")]
pub struct FilterError {
    pub pattern: String,
    pub reason: String,
}

impl FilterPattern {
    pub fn parse(pattern: &str) -> Result<FilterPattern, FilterError> {
        let err = |reason: &str| FilterError {
            pattern: pattern.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = pattern.trim();
        if trimmed.starts_with('{') || trimmed.starts_with('[') || trimmed.starts_with('%') {
            return Err(err(
                "JSON, space-delimited and regular-expression patterns are not supported; use terms, \"quoted phrases\", ?alternatives and -exclusions",
            ));
        }
        let mut out = FilterPattern::default();
        let mut chars = trimmed.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let Some(&first) = chars.peek() else { break };
            let kind = match first {
                '?' | '-' => {
                    chars.next();
                    first
                }
                _ => ' ',
            };
            let mut term = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => term.extend(chars.next()),
                        c => term.push(c),
                    }
                }
                if !closed {
                    return Err(err("a quoted phrase is not closed"));
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    term.push(c);
                    chars.next();
                }
            }
            if term.is_empty() {
                if kind != ' ' {
                    return Err(err("? and - need a term after them"));
                }
                continue; // `""` matches everything
            }
            match kind {
                '?' => out.any.push(term),
                '-' => out.none.push(term),
                _ => out.all.push(term),
            }
        }
        Ok(out)
    }

    pub fn matches(&self, line: &str) -> bool {
        self.all.iter().all(|t| line.contains(t.as_str()))
            && !self.none.iter().any(|t| line.contains(t.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|t| line.contains(t.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, line: &str) -> bool {
        FilterPattern::parse(p).unwrap().matches(line)
    }

    #[test]
    fn terms_phrases_alternatives_and_exclusions_as_cloudwatch() {
        // The examples of CloudWatch's filter pattern syntax page.
        assert!(m("ERROR", "[ERROR] A fatal exception has occurred"));
        assert!(m("ERROR", "Exiting with ERRORCODE: -1"));
        assert!(!m("ERROR", "error in lower case"));
        assert!(m("ERROR ARGUMENTS", "[ERROR] Invalid ARGUMENTS"));
        assert!(!m("ERROR ARGUMENTS", "[ERROR] A fatal exception"));
        assert!(m("?ERROR ?WARN", "[WARN] low disk"));
        assert!(!m("?ERROR ?WARN", "[INFO] ok"));
        assert!(m("ERROR -Exiting", "[ERROR] A fatal exception"));
        assert!(!m("ERROR -Exiting", "Exiting with ERRORCODE: -1"));
        assert!(m("\"timed out\"", "Task timed out after 3.00 seconds"));
        assert!(!m("\"timed out\"", "timed, out"));
        assert!(m("\"\"", "anything"));
        assert!(m("", "anything"));
    }

    #[test]
    fn unsupported_and_broken_patterns_say_why() {
        for p in [
            "{ $.level = \"error\" }",
            "[ip, user]",
            "%ERR.*%",
            "\"open",
            "ERROR -",
        ] {
            assert!(FilterPattern::parse(p).is_err(), "{p}");
        }
    }
}
