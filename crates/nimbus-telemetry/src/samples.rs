//! The samples of an exposition ([`crate::Telemetry::encode`]) read back as data, for the
//! dashboard's JSON and for alarms. prometheus-client writes families but does not let them be
//! iterated, so the text it writes is the one list of everything there is.

/// One sample line: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The samples of an OpenMetrics / Prometheus text exposition; comment lines and lines that
/// do not parse are skipped (this reads nimbus's own output, not arbitrary input).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let mut labels = Vec::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut key = String::new();
        let end;
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => {
                    end = i + 1;
                    break;
                }
                ',' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            c => value.push(c),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c => key.push(c),
            }
        }
        &body[end..]
    } else {
        rest
    };
    // A timestamp may follow the value; nimbus writes none.
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_and_without_labels_parse() {
        let text = "# HELP x y\n# TYPE nimbus_a counter\nnimbus_a_total{function=\"F\",error_type=\"timeout\"} 3\nnimbus_b 1.5\nnimbus_h_bucket{le=\"+Inf\",function=\"F\"} 7\n# EOF\n";
        let s = parse(text);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "nimbus_a_total");
        assert_eq!(s[0].label("error_type"), Some("timeout"));
        assert_eq!(s[0].value, 3.0);
        assert_eq!((s[1].name.as_str(), s[1].value), ("nimbus_b", 1.5));
        assert_eq!(s[2].label("le"), Some("+Inf"));
    }

    #[test]
    fn escaped_label_values_are_unescaped() {
        let s = parse("m{dimensions=\"a=\\\"q\\\",b=\\\\\"} 1\n");
        assert_eq!(s[0].label("dimensions"), Some("a=\"q\",b=\\"));
    }

    #[test]
    fn the_whole_exposition_of_a_telemetry_reads_back() {
        let t = crate::Telemetry::new();
        t.lambda
            .invocations
            .get_or_create(&crate::function("F"))
            .inc();
        t.lambda
            .duration
            .get_or_create(&crate::function("F"))
            .observe(0.003);
        let s = parse(&t.encode());
        let inv = s
            .iter()
            .find(|s| s.name == "nimbus_lambda_invocations_total")
            .unwrap();
        assert_eq!((inv.label("function"), inv.value), (Some("F"), 1.0));
        let count = s
            .iter()
            .find(|s| s.name == "nimbus_lambda_duration_seconds_count")
            .unwrap();
        assert_eq!(count.value, 1.0);
        assert!(s
            .iter()
            .any(|s| s.name == "nimbus_lambda_duration_seconds_bucket"
                && s.label("le") == Some("0.005")
                && s.value == 1.0));
    }
}
