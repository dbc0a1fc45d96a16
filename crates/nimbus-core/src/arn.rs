//! The ARNs nimbus hands out, and Lambda function names as the Invoke API accepts them.

/// `arn:aws:lambda:{region}:{account}:function:{name}`.
pub fn function_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:function:{name}")
}

/// `arn:aws:sqs:{region}:{account}:{queue}`.
pub fn queue_arn(region: &str, account: &str, queue: &str) -> String {
    format!("arn:aws:sqs:{region}:{account}:{queue}")
}

/// `arn:aws:events:{region}:{account}:event-bus/{bus}`.
pub fn event_bus_arn(region: &str, account: &str, bus: &str) -> String {
    format!("arn:aws:events:{region}:{account}:event-bus/{bus}")
}

/// A rule's ARN, as EventBridge writes it (the bus appears unless it is `default`).
pub fn rule_arn(region: &str, account: &str, bus: &str, rule: &str) -> String {
    if bus == "default" {
        format!("arn:aws:events:{region}:{account}:rule/{rule}")
    } else {
        format!("arn:aws:events:{region}:{account}:rule/{bus}/{rule}")
    }
}

/// `arn:aws:logs:{region}:{account}:log-group:{group}`: the form without the trailing `:*`,
/// which `logGroupIdentifier` takes and `logGroupArn` states (`arn` adds `:*`).
pub fn log_group_arn(region: &str, account: &str, group: &str) -> String {
    format!("arn:aws:logs:{region}:{account}:log-group:{group}")
}

/// The group a log group's ARN names (`...:log-group:NAME`, with or without the `:*` that
/// CloudFormation's `Arn` attribute adds).
pub fn log_group_of_arn(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":log-group:")?;
    let name = rest.strip_suffix(":*").unwrap_or(rest);
    (!name.is_empty()).then_some(name)
}

/// `arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:{stream}`.
pub fn log_stream_arn(region: &str, account: &str, group: &str, stream: &str) -> String {
    format!(
        "{}:log-stream:{stream}",
        log_group_arn(region, account, group)
    )
}

/// A `FunctionName` path segment of the Invoke API, split into name and qualifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef<'a> {
    pub name: &'a str,
    pub qualifier: Option<&'a str>,
}

/// Accepts the three forms AWS documents: `my-function`, `123456789012:function:my-function`
/// and `arn:aws:lambda:us-west-2:123456789012:function:my-function`, each with an optional
/// `:qualifier`. Returns `None` for anything else.
pub fn parse_function_ref(s: &str) -> Option<FunctionRef<'_>> {
    let parts: Vec<&str> = s.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, q] => (*name, Some(*q)),
        [_acct, "function", name] => (*name, None),
        [_acct, "function", name, q] => (*name, Some(*q)),
        ["arn", _partition, "lambda", _region, _acct, "function", name] => (*name, None),
        ["arn", _partition, "lambda", _region, _acct, "function", name, q] => (*name, Some(*q)),
        _ => return None,
    };
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let valid_qualifier = qualifier.is_none_or(|q| {
        !q.is_empty()
            && q.len() <= 128
            && q.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'$')
    });
    (valid_name && valid_qualifier).then_some(FunctionRef { name, qualifier })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Option<(&str, Option<&str>)> {
        parse_function_ref(s).map(|r| (r.name, r.qualifier))
    }

    #[test]
    fn log_group_and_stream_arns_are_cloudwatchs() {
        assert_eq!(
            log_group_arn("us-east-1", "123456789012", "/aws/lambda/Orders"),
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/Orders"
        );
        assert_eq!(
            log_stream_arn("us-east-1", "123456789012", "/aws/lambda/Orders", "2026/11/22/[$LATEST]ab"),
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/Orders:log-stream:2026/11/22/[$LATEST]ab"
        );
    }

    #[test]
    fn accepts_every_documented_function_name_form() {
        assert_eq!(parsed("Hello"), Some(("Hello", None)));
        assert_eq!(parsed("Hello:$LATEST"), Some(("Hello", Some("$LATEST"))));
        assert_eq!(parsed("123456789012:function:Hello"), Some(("Hello", None)));
        assert_eq!(
            parsed("arn:aws:lambda:us-east-1:123456789012:function:Hello:live"),
            Some(("Hello", Some("live")))
        );
    }

    #[test]
    fn rejects_malformed_names() {
        assert_eq!(parsed(""), None);
        assert_eq!(parsed("a:b:c"), None);
        assert_eq!(parsed("has space"), None);
        assert_eq!(parsed(&"x".repeat(65)), None);
        assert_eq!(parsed("arn:aws:s3:::bucket"), None);
    }
}
