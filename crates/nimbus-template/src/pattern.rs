//! `AllowedPattern`: CloudFormation checks a parameter with Java's `matches()`, so the whole
//! value must match. The `regex` crate covers the syntax templates use; what it refuses
//! (lookaround, backreferences) is reported rather than matched wrongly.

#[derive(Debug)]
pub(crate) struct Pattern {
    re: regex::Regex,
}

impl Pattern {
    pub fn parse(src: &str) -> Result<Pattern, String> {
        regex::Regex::new(&format!("^(?:{src})$"))
            .map(|re| Pattern { re })
            .map_err(|e| match e {
                // The crate's message draws the pattern with a caret; keep its last line.
                regex::Error::Syntax(detail) => detail
                    .lines()
                    .rev()
                    .find(|l| l.starts_with("error:"))
                    .map(|l| l.trim_start_matches("error:").trim().to_owned())
                    .unwrap_or_else(|| detail.clone()),
                other => other.to_string(),
            })
    }

    pub fn full_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::parse(p).unwrap().full_match(s)
    }

    #[test]
    fn matches_the_whole_value_like_java() {
        assert!(m("[a-z]+", "abc"));
        assert!(!m("[a-z]+", "abc1"));
        assert!(m("^[a-z][a-z0-9-]*$", "my-bucket-1"));
        assert!(m("(dev|prod)", "prod"));
        assert!(!m("(dev|prod)", "qa"));
        assert!(!m("dev|prod", "development"));
        assert!(m("\\d{3}-\\d{2,}", "123-4567"));
        assert!(!m("\\d{3}-\\d{2,}", "123-4"));
        assert!(m("[\\w.]+@example\\.com", "first.last@example.com"));
        assert!(m(".*", ""));
    }

    #[test]
    fn refuses_syntax_it_cannot_match_faithfully() {
        assert!(Pattern::parse("(?=a)").is_err());
        assert!(Pattern::parse("(a)\\1").is_err());
        assert!(Pattern::parse("*a").is_err());
        assert!(Pattern::parse("[a-").is_err());
        assert!(Pattern::parse("a)").is_err());
    }
}
