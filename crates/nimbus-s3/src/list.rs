//! Listings (`ListObjectsV2`, `ListObjects`, `ListObjectVersions`): prefix, delimiter and
//! pagination over keys in UTF-8 byte order, as S3 lists them. The walk is given a `fetch`
//! that returns rows from a key on, so it is tested without a database; with one, each fetch
//! is a seek on `objects_latest` / `objects_versions`, and a common prefix is skipped with one
//! seek past it, so a page costs its own rows, not the bucket's.

use crate::error::S3Error;
use crate::state::ObjectRow;

pub struct Params<'a> {
    pub prefix: &'a str,
    pub delimiter: &'a str,
    /// List keys after this one (exclusive): `StartAfter`, a continuation token, `Marker`.
    pub after: Option<&'a str>,
    pub max: usize,
    /// Versions listing: every row (delete markers included) rather than current objects.
    pub versions: bool,
    /// Versions listing resumed inside a key: skip that key's versions up to and including this
    /// sequence number.
    pub after_seq: Option<i64>,
}

#[derive(Debug, Default)]
pub struct Listing {
    pub objects: Vec<ObjectRow>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or common prefix listed (the next page starts after it).
    pub last: Option<String>,
}

/// The first string after every string that begins with `prefix` (which ends with a
/// delimiter): its last character incremented.
fn past(prefix: &str) -> String {
    let mut s = prefix.to_owned();
    while let Some(c) = s.pop() {
        let mut next = c as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(n) = char::from_u32(next) {
            s.push(n);
            return s;
        }
    }
    // Only U+10FFFF characters: nothing is after; an empty bound would restart, so use the
    // largest string a key can be.
    "\u{10FFFF}".repeat(1025)
}

/// The common prefix `key` rolls up into, if any.
fn rolled<'k>(key: &'k str, prefix: &str, delimiter: &str) -> Option<&'k str> {
    if delimiter.is_empty() {
        return None;
    }
    let rest = &key[prefix.len()..];
    rest.find(delimiter)
        .map(|i| &key[..prefix.len() + i + delimiter.len()])
}

const BATCH: usize = 1000;

pub fn walk(
    p: &Params<'_>,
    mut fetch: impl FnMut(&str, usize) -> Result<Vec<ObjectRow>, S3Error>,
) -> Result<Listing, S3Error> {
    let mut out = Listing::default();
    // Resuming after a common prefix skips everything under it.
    let mut cursor = match p.after {
        Some(a) if a.starts_with(p.prefix) => match rolled(a, p.prefix, p.delimiter) {
            Some(cp) => past(cp),
            None => a.to_owned(),
        },
        Some(a) if a > p.prefix => a.to_owned(),
        _ => p.prefix.to_owned(),
    };
    let mut count = 0;
    loop {
        let rows = fetch(&cursor, BATCH)?;
        let exhausted = rows.len() < BATCH;
        let mut jumped = false;
        let mut last_key = None;
        for row in rows {
            if !row.key.starts_with(p.prefix) {
                return Ok(out);
            }
            last_key = Some(row.key.clone());
            if p.after == Some(row.key.as_str()) {
                match p.after_seq {
                    Some(seq) if row.seq < seq => {}
                    _ => continue,
                }
            }
            if let Some(cp) = rolled(&row.key, p.prefix, p.delimiter) {
                if out.prefixes.last().map(String::as_str) != Some(cp) {
                    if count == p.max {
                        out.truncated = true;
                        return Ok(out);
                    }
                    out.prefixes.push(cp.to_owned());
                    out.last = Some(cp.to_owned());
                    count += 1;
                }
                cursor = past(cp);
                jumped = true;
                break;
            }
            if row.delete_marker && !p.versions {
                continue;
            }
            if count == p.max {
                out.truncated = true;
                return Ok(out);
            }
            out.last = Some(row.key.clone());
            out.objects.push(row);
            count += 1;
        }
        if jumped {
            continue;
        }
        if exhausted {
            return Ok(out);
        }
        // A full batch: go on after its last key. A versions listing can have more versions of
        // that key than a batch holds; the batch size keeps that to a bucket with over a
        // thousand versions of one key, which this walk then lists only in part.
        let Some(k) = last_key else {
            return Ok(out);
        };
        cursor = format!("{k}\u{0}");
    }
}

/// `encoding-type=url`: keys percent-encoded (slashes kept), which the AWS CLI asks for.
pub fn encode_url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn bucket(keys: &[&str]) -> BTreeMap<String, ObjectRow> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| {
                (
                    k.to_string(),
                    ObjectRow {
                        seq: i as i64 + 1,
                        key: k.to_string(),
                        delete_marker: k.ends_with("deleted"),
                        ..Default::default()
                    },
                )
            })
            .collect()
    }

    fn list(
        b: &BTreeMap<String, ObjectRow>,
        prefix: &str,
        delimiter: &str,
        after: Option<&str>,
        max: usize,
    ) -> (Vec<String>, Vec<String>, bool) {
        let p = Params {
            prefix,
            delimiter,
            after,
            max,
            versions: false,
            after_seq: None,
        };
        let l = walk(&p, |start, n| {
            Ok(b.range(start.to_owned()..)
                .take(n)
                .map(|(_, r)| r.clone())
                .collect())
        })
        .unwrap();
        (
            l.objects.into_iter().map(|o| o.key).collect(),
            l.prefixes,
            l.truncated,
        )
    }

    #[test]
    fn listings_roll_up_common_prefixes_and_page() {
        let b = bucket(&["a", "d/1", "d/2", "d/x/3", "e/1", "f", "g-deleted", "h"]);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            list(&b, "", "", None, 1000),
            (
                s(&["a", "d/1", "d/2", "d/x/3", "e/1", "f", "h"]),
                s(&[]),
                false
            )
        );
        assert_eq!(
            list(&b, "", "/", None, 1000),
            (s(&["a", "f", "h"]), s(&["d/", "e/"]), false)
        );
        assert_eq!(
            list(&b, "d/", "/", None, 1000),
            (s(&["d/1", "d/2"]), s(&["d/x/"]), false)
        );
        // max counts keys and prefixes; truncated only when something is left.
        assert_eq!(list(&b, "", "/", None, 2), (s(&["a"]), s(&["d/"]), true));
        assert_eq!(
            list(&b, "", "/", Some("d/"), 2),
            (s(&["f"]), s(&["e/"]), true)
        );
        assert_eq!(
            list(&b, "", "/", Some("e/"), 2),
            (s(&["f", "h"]), s(&[]), false)
        );
        assert_eq!(list(&b, "", "", Some("f"), 1), (s(&["h"]), s(&[]), false));
        assert_eq!(list(&b, "", "", None, 0), (s(&[]), s(&[]), true));
        assert_eq!(list(&b, "zz", "", None, 10), (s(&[]), s(&[]), false));
    }

    #[test]
    fn long_listings_page_through_batches() {
        let keys: Vec<String> = (0..2500).map(|i| format!("k/{i:05}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let b = bucket(&refs);
        let mut after: Option<String> = None;
        let mut got = Vec::new();
        loop {
            let (objs, _, truncated) = list(&b, "k/", "/", after.as_deref(), 1000);
            after = objs.last().cloned();
            got.extend(objs);
            if !truncated {
                break;
            }
        }
        assert_eq!(got, keys);
    }

    #[test]
    fn url_encoding_keeps_slashes() {
        assert_eq!(encode_url("a b/ç+&"), "a%20b/%C3%A7%2B%26");
    }
}
