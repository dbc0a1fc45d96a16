//! A bucket's lifecycle expiration rules (pure): read from `PutBucketLifecycleConfiguration`'s
//! XML or the template's `LifecycleConfiguration`, and which objects, versions and uploads they
//! expire at a given time. The sweep that acts on them is `S3::sweep_lifecycle`.
//!
//! S3 expires an object at the first midnight UTC after its age reaches `Days`; nimbus expires
//! it once its age reaches `Days` (with `--delay-scale`, scaled days), without the rounding,
//! so a local run does not wait for midnight. Transitions between storage classes are
//! accepted and have nothing to do (nimbus has one storage class).

use serde_json::Value;

use crate::error::S3Error;
use crate::state::ObjectRow;
use crate::xml;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rule {
    pub id: String,
    pub enabled: bool,
    pub prefix: String,
    pub tags: Vec<(String, String)>,
    pub size_greater_than: Option<u64>,
    pub size_less_than: Option<u64>,
    /// Current versions expire this many days after they were written...
    pub days: Option<u64>,
    /// ... or from this date (ms).
    pub date_ms: Option<i64>,
    /// Noncurrent versions expire this many days after they stopped being current.
    pub noncurrent_days: Option<u64>,
    /// Uploads not completed this many days after they began are aborted.
    pub abort_days: Option<u64>,
}

impl Rule {
    /// Whether the rule's filter selects an object.
    pub fn selects(&self, key: &str, size: u64, tags: &[(String, String)]) -> bool {
        self.enabled
            && key.starts_with(&self.prefix)
            && self.tags.iter().all(|t| tags.contains(t))
            && self.size_greater_than.is_none_or(|n| size > n)
            && self.size_less_than.is_none_or(|n| size < n)
    }

    /// Whether a current version written at `written_ms` has expired at `now_ms`.
    pub fn expires_current(&self, written_ms: i64, now_ms: i64, day_ms: u64) -> bool {
        self.days
            .is_some_and(|d| now_ms >= written_ms + (d * day_ms) as i64)
            || self.date_ms.is_some_and(|t| now_ms >= t)
    }

    /// Whether a version that stopped being current at `since_ms` has expired.
    pub fn expires_noncurrent(&self, since_ms: i64, now_ms: i64, day_ms: u64) -> bool {
        self.noncurrent_days
            .is_some_and(|d| now_ms >= since_ms + (d * day_ms) as i64)
    }

    pub fn aborts_upload(&self, started_ms: i64, now_ms: i64, day_ms: u64) -> bool {
        self.enabled
            && self
                .abort_days
                .is_some_and(|d| now_ms >= started_ms + (d * day_ms) as i64)
    }
}

/// A version to expire: its key, its version id (`None` for the current version, which a
/// versioned bucket then hides behind a delete marker) and the sequence number it was judged at.
pub type Due = (String, Option<String>, i64);

/// The versions among `rows` (whole keys, in key order and newest first within a key, as
/// `ListObjectVersions` walks them) that `rules` expire at `now_ms`. A noncurrent version
/// stopped being current when the next newer one was written.
pub fn due(rows: &[ObjectRow], rules: &[Rule], now_ms: i64, day_ms: u64) -> Vec<Due> {
    let mut out = Vec::new();
    let mut newer: Option<(&str, i64)> = None;
    for r in rows {
        let since = newer.filter(|(k, _)| *k == r.key).map(|(_, t)| t);
        newer = Some((&r.key, r.modified_ms));
        if r.delete_marker {
            continue;
        }
        let mut selected = rules.iter().filter(|l| l.selects(&r.key, r.size, &r.tags));
        let expired = match (r.latest, since) {
            (true, _) => selected.any(|l| l.expires_current(r.modified_ms, now_ms, day_ms)),
            (false, Some(t)) => selected.any(|l| l.expires_noncurrent(t, now_ms, day_ms)),
            (false, None) => false,
        };
        if expired {
            let version = (!r.latest).then(|| r.version_id.clone());
            out.push((r.key.clone(), version, r.seq));
        }
    }
    out
}

fn date_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// `<LifecycleConfiguration>`; at most 1,000 rules.
pub fn from_xml(body: &str) -> Result<Vec<Rule>, S3Error> {
    let doc = xml::parse(body, "LifecycleConfiguration")?;
    let num = |n: Option<&str>| n.and_then(|v| v.trim().parse::<u64>().ok());
    let mut rules = Vec::new();
    for r in xml::children(doc.root_element(), "Rule") {
        let status = xml::child_text(r, "Status").ok_or_else(S3Error::malformed_xml)?;
        if status != "Enabled" && status != "Disabled" {
            return Err(S3Error::malformed_xml());
        }
        let mut rule = Rule {
            id: xml::child_text(r, "ID").unwrap_or_default().to_owned(),
            enabled: status == "Enabled",
            prefix: xml::child_text(r, "Prefix").unwrap_or_default().to_owned(),
            ..Rule::default()
        };
        if let Some(f) = xml::children(r, "Filter").next() {
            // `Filter` holds a Prefix, a Tag, size bounds, or an `And` of them.
            let scopes: Vec<roxmltree::Node<'_, '_>> =
                std::iter::once(f).chain(xml::children(f, "And")).collect();
            for s in scopes {
                if let Some(p) = xml::child_text(s, "Prefix") {
                    rule.prefix = p.to_owned();
                }
                for t in xml::children(s, "Tag") {
                    rule.tags.push((
                        xml::child_text(t, "Key").unwrap_or_default().to_owned(),
                        xml::child_text(t, "Value").unwrap_or_default().to_owned(),
                    ));
                }
                rule.size_greater_than = rule
                    .size_greater_than
                    .or(num(xml::child_text(s, "ObjectSizeGreaterThan")));
                rule.size_less_than = rule
                    .size_less_than
                    .or(num(xml::child_text(s, "ObjectSizeLessThan")));
            }
        }
        if let Some(e) = xml::children(r, "Expiration").next() {
            rule.days = num(xml::child_text(e, "Days"));
            rule.date_ms = xml::child_text(e, "Date").and_then(date_ms);
            if rule.days == Some(0) {
                return Err(S3Error::invalid_argument(
                    "'Days' for Expiration action must be a positive integer",
                    "Days",
                    "0",
                ));
            }
        }
        if let Some(e) = xml::children(r, "NoncurrentVersionExpiration").next() {
            rule.noncurrent_days = num(xml::child_text(e, "NoncurrentDays"));
        }
        if let Some(e) = xml::children(r, "AbortIncompleteMultipartUpload").next() {
            rule.abort_days = num(xml::child_text(e, "DaysAfterInitiation"));
        }
        rules.push(rule);
    }
    if rules.is_empty() || rules.len() > 1000 {
        return Err(S3Error::malformed_xml());
    }
    Ok(rules)
}

/// The template's `LifecycleConfiguration: {Rules: [...]}` as the XML S3 would answer with.
pub fn template_xml(config: &Value) -> Result<String, String> {
    let rules = config["Rules"]
        .as_array()
        .ok_or("Rules: a list of rules is required")?;
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let mut out = String::new();
    xml::root(&mut out, "LifecycleConfiguration");
    for (i, r) in rules.iter().enumerate() {
        let status = r["Status"]
            .as_str()
            .filter(|s| *s == "Enabled" || *s == "Disabled")
            .ok_or(format!(
                "Rules[{i}].Status: Enabled or Disabled is required"
            ))?;
        out.push_str("<Rule>");
        if let Some(id) = r["Id"].as_str() {
            xml::element(&mut out, "ID", id);
        }
        out.push_str("<Filter><And>");
        xml::element(&mut out, "Prefix", r["Prefix"].as_str().unwrap_or(""));
        for t in r["TagFilters"].as_array().into_iter().flatten() {
            out.push_str("<Tag>");
            xml::element(&mut out, "Key", t["Key"].as_str().unwrap_or(""));
            xml::element(&mut out, "Value", t["Value"].as_str().unwrap_or(""));
            out.push_str("</Tag>");
        }
        for key in ["ObjectSizeGreaterThan", "ObjectSizeLessThan"] {
            if let Some(v) = text(&r[key]) {
                xml::element(&mut out, key, &v);
            }
        }
        out.push_str("</And></Filter>");
        xml::element(&mut out, "Status", status);
        let days = text(&r["ExpirationInDays"]);
        let date = r["ExpirationDate"].as_str();
        if days.is_some() || date.is_some() {
            out.push_str("<Expiration>");
            if let Some(d) = &days {
                xml::element(&mut out, "Days", d);
            }
            if let Some(d) = date {
                xml::element(&mut out, "Date", d);
            }
            out.push_str("</Expiration>");
        }
        let noncurrent = text(&r["NoncurrentVersionExpiration"]["NoncurrentDays"])
            .or_else(|| text(&r["NoncurrentVersionExpirationInDays"]));
        if let Some(d) = noncurrent {
            out.push_str("<NoncurrentVersionExpiration>");
            xml::element(&mut out, "NoncurrentDays", &d);
            out.push_str("</NoncurrentVersionExpiration>");
        }
        if let Some(d) = text(&r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]) {
            out.push_str("<AbortIncompleteMultipartUpload>");
            xml::element(&mut out, "DaysAfterInitiation", &d);
            out.push_str("</AbortIncompleteMultipartUpload>");
        }
        out.push_str("</Rule>");
    }
    out.push_str("</LifecycleConfiguration>");
    from_xml(&out).map_err(|e| e.message)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400_000;

    #[test]
    fn rules_select_and_expire_by_age_date_and_filter() {
        let rules = from_xml(
            "<LifecycleConfiguration>
               <Rule><ID>logs</ID><Filter><And><Prefix>logs/</Prefix><Tag><Key>tmp</Key><Value>1</Value></Tag></And></Filter>
                 <Status>Enabled</Status><Expiration><Days>7</Days></Expiration>
                 <NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>
               <Rule><Prefix>old/</Prefix><Status>Disabled</Status><Expiration><Date>2026-01-01T00:00:00Z</Date></Expiration></Rule>
               <Rule><Filter/><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>
             </LifecycleConfiguration>",
        )
        .unwrap();
        let tmp = vec![("tmp".to_owned(), "1".to_owned())];
        let r = &rules[0];
        assert!(r.selects("logs/a", 1, &tmp));
        assert!(!r.selects("logs/a", 1, &[]));
        assert!(!r.selects("data/a", 1, &tmp));
        assert!(!r.expires_current(0, (7 * DAY - 1) as i64, DAY));
        assert!(r.expires_current(0, (7 * DAY) as i64, DAY));
        assert!(r.expires_noncurrent(0, DAY as i64, DAY));
        assert!(!rules[1].selects("old/a", 1, &[]));
        assert!(rules[1].expires_current(0, 1_767_225_600_000, DAY));
        assert!(rules[2].aborts_upload(0, (2 * DAY) as i64, DAY));
        assert!(!rules[2].aborts_upload(0, (2 * DAY) as i64 - 1, DAY));
    }

    #[test]
    fn due_finds_expired_current_and_noncurrent_versions() {
        let rules = from_xml(
            "<LifecycleConfiguration><Rule><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status>
               <Expiration><Days>2</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration>
             </Rule></LifecycleConfiguration>",
        )
        .unwrap();
        let day = DAY as i64;
        let row = |key: &str, seq: i64, latest: bool, marker: bool, written: i64| ObjectRow {
            seq,
            key: key.into(),
            version_id: format!("v{seq}"),
            latest,
            delete_marker: marker,
            modified_ms: written,
            ..ObjectRow::default()
        };
        // Newest first within a key, as the walk gives them.
        let rows = [
            row("keep/a", 1, true, false, 0),
            row("tmp/old", 4, true, false, 0),
            row("tmp/v", 7, true, false, 2 * day),
            row("tmp/v", 6, false, false, day),
            row("tmp/v", 5, false, false, 0),
            row("tmp/gone", 9, true, true, 0),
            row("tmp/gone", 8, false, false, 0),
        ];
        let got = due(&rows, &rules, (5 * day) / 2, DAY);
        // tmp/old is 2.5 days old; v6 stopped being current 0.5 days ago, v5 1.5 days ago;
        // a delete marker is never expired by Expiration; v8 is noncurrent since time 0.
        let want: Vec<Due> = vec![
            ("tmp/old".into(), None, 4),
            ("tmp/v".into(), Some("v5".into()), 5),
            ("tmp/gone".into(), Some("v8".into()), 8),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn bad_configurations_are_refused() {
        for (body, code) in [
            ("<LifecycleConfiguration/>", "MalformedXML"),
            ("<LifecycleConfiguration><Rule><Status>Maybe</Status></Rule></LifecycleConfiguration>", "MalformedXML"),
            ("<LifecycleConfiguration><Rule><Status>Enabled</Status><Expiration><Days>0</Days></Expiration></Rule></LifecycleConfiguration>", "InvalidArgument"),
        ] {
            assert_eq!(from_xml(body).unwrap_err().code, code, "{body}");
        }
    }

    #[test]
    fn template_rules_become_the_same_rules() {
        let t = serde_json::json!({"Rules": [{"Id": "tmp", "Status": "Enabled", "Prefix": "tmp/", "ExpirationInDays": 1,
            "NoncurrentVersionExpiration": {"NoncurrentDays": 3}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]});
        let rules = from_xml(&template_xml(&t).unwrap()).unwrap();
        assert_eq!(
            (
                rules[0].prefix.as_str(),
                rules[0].days,
                rules[0].noncurrent_days,
                rules[0].abort_days
            ),
            ("tmp/", Some(1), Some(3), Some(1))
        );
        assert!(template_xml(&serde_json::json!({"Rules": [{"ExpirationInDays": 1}]})).is_err());
    }
}
