//! S3's XML: answers written as text (S3's shapes are flat and fixed, a writer crate would add
//! nothing), requests read with roxmltree. Element names are matched without their namespace:
//! clients send `xmlns="http://s3.amazonaws.com/doc/2006-03-01/"` or none.

use crate::error::S3Error;

pub const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
pub const NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Escapes text for an element's content or an attribute value.
pub fn escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all (S3 keys may hold them): as references
            // XML 1.1 readers accept, which is what S3 itself writes.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push_str(&format!("&#x{:X};", c as u32));
            }
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// `<name>text</name>`.
pub fn element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    escape(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Opens a document's root element in S3's namespace.
pub fn root(out: &mut String, name: &str) {
    out.push_str(DECLARATION);
    out.push('<');
    out.push_str(name);
    out.push_str(" xmlns=\"");
    out.push_str(NAMESPACE);
    out.push_str("\">");
}

/// Parses a request body; S3's `MalformedXML` when it is not XML or its root is not `root`.
pub fn parse<'a>(body: &'a str, root: &str) -> Result<roxmltree::Document<'a>, S3Error> {
    let doc = roxmltree::Document::parse(body).map_err(|_| S3Error::malformed_xml())?;
    if doc.root_element().tag_name().name() != root {
        return Err(S3Error::malformed_xml());
    }
    Ok(doc)
}

/// The element children of `node` named `name`.
pub fn children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The text of the first child named `name` (an empty element gives `""`).
pub fn child_text<'a>(node: roxmltree::Node<'a, '_>, name: &'static str) -> Option<&'a str> {
    children(node, name)
        .next()
        .map(|c| c.text().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_control_characters() {
        let mut out = String::new();
        escape(&mut out, "a<b>&\"c'\u{1}\r");
        assert_eq!(out, "a&lt;b&gt;&amp;&quot;c&apos;&#x1;&#13;");
    }

    #[test]
    fn parse_ignores_namespace_and_checks_root() {
        let body = format!("<Delete xmlns=\"{NAMESPACE}\"><Object><Key>k</Key></Object></Delete>");
        let doc = parse(&body, "Delete").unwrap();
        let keys: Vec<_> = children(doc.root_element(), "Object")
            .filter_map(|o| child_text(o, "Key"))
            .collect();
        assert_eq!(keys, ["k"]);
        assert_eq!(parse(&body, "Tagging").unwrap_err().code, "MalformedXML");
        assert_eq!(
            parse("<Delete>", "Delete").unwrap_err().code,
            "MalformedXML"
        );
    }
}
