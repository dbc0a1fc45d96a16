//! The X-Ray trace header (`X-Amzn-Trace-Id`), kept with its unknown keys so it travels intact.

/// `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    pub root: String,
    pub parent: Option<String>,
    pub sampled: Option<String>,
    /// Keys nimbus does not interpret (`Lineage=`, `Self=`, ...), in order.
    pub other: Vec<(String, String)>,
}

impl TraceHeader {
    /// A new root: `1-` + 8 hex digits of epoch seconds + `-` + 24 random hex digits.
    pub fn new_root(epoch_secs: u64, random: [u8; 12], sampled: bool) -> Self {
        use std::fmt::Write as _;
        let mut root = String::with_capacity(35);
        let _ = write!(root, "1-{:08x}-", epoch_secs as u32);
        for b in random {
            let _ = write!(root, "{b:02x}");
        }
        Self {
            root,
            parent: None,
            sampled: Some(if sampled { "1" } else { "0" }.into()),
            other: Vec::new(),
        }
    }

    /// Parses a header value; `None` when it has no valid `Root`.
    pub fn parse(value: &str) -> Option<Self> {
        let mut header = Self {
            root: String::new(),
            parent: None,
            sampled: None,
            other: Vec::new(),
        };
        for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=')?;
            match k {
                "Root" => header.root = v.to_owned(),
                "Parent" => header.parent = Some(v.to_owned()),
                "Sampled" => header.sampled = Some(v.to_owned()),
                _ => header.other.push((k.to_owned(), v.to_owned())),
            }
        }
        valid_root(&header.root).then_some(header)
    }
}

fn valid_root(root: &str) -> bool {
    let b = root.as_bytes();
    b.len() == 35
        && root.starts_with("1-")
        && b[10] == b'-'
        && root[2..10].bytes().all(|c| c.is_ascii_hexdigit())
        && root[11..].bytes().all(|c| c.is_ascii_hexdigit())
}

impl std::fmt::Display for TraceHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Root={}", self.root)?;
        if let Some(p) = &self.parent {
            write!(f, ";Parent={p}")?;
        }
        if let Some(s) = &self.sampled {
            write!(f, ";Sampled={s}")?;
        }
        for (k, v) in &self.other {
            write!(f, ";{k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_root_has_the_xray_shape() {
        let h = TraceHeader::new_root(0x5759e988, [0xab; 12], true);
        assert_eq!(
            h.to_string(),
            "Root=1-5759e988-abababababababababababab;Sampled=1"
        );
        assert!(TraceHeader::parse(&h.to_string()).is_some());
    }

    #[test]
    fn parse_keeps_unknown_keys_in_order() {
        let v = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a:1;Self=x";
        let h = TraceHeader::parse(v).unwrap();
        assert_eq!(h.parent.as_deref(), Some("53995c3f42cd8ad8"));
        assert_eq!(h.to_string(), v);
    }

    #[test]
    fn parse_rejects_a_header_without_a_valid_root() {
        assert_eq!(TraceHeader::parse("Parent=1"), None);
        assert_eq!(TraceHeader::parse("Root=2-zz"), None);
        assert_eq!(TraceHeader::parse("garbage"), None);
    }
}
