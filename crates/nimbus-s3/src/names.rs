//! S3's naming and size rules (pure): bucket names, keys, tags, user metadata.

use crate::error::S3Error;

/// Keys longer than this (in UTF-8 bytes) are refused.
pub const MAX_KEY_BYTES: usize = 1024;
/// User-defined metadata: names and values together, in UTF-8 bytes.
pub const MAX_METADATA_BYTES: usize = 2048;

/// Checks a general purpose bucket's name against S3's rules.
pub fn check_bucket(name: &str) -> Result<(), S3Error> {
    if bucket_problem(name).is_some() {
        return Err(S3Error::new(
            400,
            "InvalidBucketName",
            "The specified bucket is not valid.",
        )
        .with("BucketName", name));
    }
    Ok(())
}

/// What is wrong with a bucket name, for messages that say more than S3's error does
/// (template diagnostics).
pub fn bucket_problem(name: &str) -> Option<&'static str> {
    let b = name.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return Some("a bucket name has 3 to 63 characters");
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
    {
        return Some("a bucket name has only lowercase letters, digits, '.' and '-'");
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Some("a bucket name begins and ends with a letter or digit");
    }
    if name.contains("..") {
        return Some("a bucket name has no two adjacent periods");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some("a bucket name is not an IP address");
    }
    const PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
    const SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];
    if PREFIXES.iter().any(|p| name.starts_with(p)) || SUFFIXES.iter().any(|s| name.ends_with(s)) {
        return Some("a bucket name does not use a prefix or suffix S3 reserves");
    }
    None
}

pub fn check_key(key: &str) -> Result<(), S3Error> {
    if key.len() > MAX_KEY_BYTES {
        return Err(S3Error::new(400, "KeyTooLongError", "Your key is too long")
            .with("MaxSizeAllowed", MAX_KEY_BYTES.to_string())
            .with("Size", key.len().to_string()));
    }
    Ok(())
}

/// A tag set's limits: objects have up to 10 tags, buckets up to 50; keys up to 128 characters,
/// values up to 256, keys unique.
pub fn check_tags(tags: &[(String, String)], max: usize) -> Result<(), S3Error> {
    let invalid = |m: &str| S3Error::new(400, "InvalidTag", m.to_owned());
    if tags.len() > max {
        return Err(invalid(&format!(
            "Object tags cannot be greater than {max}"
        )));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(invalid("The TagKey you have provided is invalid"));
        }
        if v.chars().count() > 256 {
            return Err(invalid("The TagValue you have provided is invalid"));
        }
        if tags[..i].iter().any(|(other, _)| other == k) {
            return Err(invalid("Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

/// `x-amz-tagging: k1=v1&k2=v2` (URL-encoded, as a query string).
pub fn parse_tagging_header(value: &str) -> Result<Vec<(String, String)>, S3Error> {
    let tags: Vec<(String, String)> = form_urlencoded::parse(value.as_bytes())
        .into_owned()
        .collect();
    check_tags(&tags, 10)?;
    Ok(tags)
}

pub fn check_metadata(meta: &[(String, String)]) -> Result<(), S3Error> {
    let size: usize = meta.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_METADATA_BYTES {
        return Err(S3Error::new(
            400,
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size.",
        )
        .with("Size", size.to_string())
        .with("MaxSizeAllowed", MAX_METADATA_BYTES.to_string()));
    }
    Ok(())
}

/// The name a template bucket without `BucketName` gets (the same as its `Ref`).
pub fn default_bucket_name(logical_id: &str) -> String {
    nimbus_template::default_bucket_name(logical_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3s_rules() {
        let cases: &[(&str, bool)] = &[
            ("my-bucket", true),
            ("a.b.c", true),
            ("abc", true),
            ("123", true),
            ("ab", false),
            (&"a".repeat(64), false),
            ("My-Bucket", false),
            ("-bucket", false),
            ("bucket-", false),
            ("a..b", false),
            ("192.168.1.1", false),
            ("under_score", false),
            ("xn--bucket", false),
            ("bucket-s3alias", false),
            ("bucket--ol-s3", false),
        ];
        for (name, ok) in cases {
            assert_eq!(check_bucket(name).is_ok(), *ok, "{name}");
        }
        let e = check_bucket("Bad").unwrap_err();
        assert_eq!((e.status, e.code), (400, "InvalidBucketName"));
    }

    #[test]
    fn keys_up_to_1024_bytes() {
        assert!(check_key(&"k".repeat(1024)).is_ok());
        let e = check_key(&"k".repeat(1025)).unwrap_err();
        assert_eq!((e.status, e.code), (400, "KeyTooLongError"));
        // Bytes, not characters.
        assert!(check_key(&"é".repeat(513)).is_err());
    }

    #[test]
    fn tagging_header_is_a_query_string_with_limits() {
        assert_eq!(
            parse_tagging_header("a=1&b=x%20y").unwrap(),
            [("a".into(), "1".into()), ("b".into(), "x y".into())]
        );
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert_eq!(
            parse_tagging_header(&eleven.join("&")).unwrap_err().code,
            "InvalidTag"
        );
        assert_eq!(
            parse_tagging_header("a=1&a=2").unwrap_err().code,
            "InvalidTag"
        );
    }

    #[test]
    fn default_names_are_valid_bucket_names() {
        for id in ["Uploads", "B", "ReportsBucket2"] {
            assert!(check_bucket(&default_bucket_name(id)).is_ok(), "{id}");
        }
    }
}
