//! A bucket's CORS configuration (pure): read from `PutBucketCors`'s XML or the template's
//! `CorsConfiguration`, checked as S3 checks it, and matched against a browser's preflight
//! (`OPTIONS` with `Origin` and `Access-Control-Request-*`) or actual request, first rule wins.

use serde_json::Value;

use crate::error::S3Error;
use crate::xml;

const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rule {
    pub id: Option<String>,
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    pub headers: Vec<String>,
    pub expose: Vec<String>,
    pub max_age: Option<u64>,
}

/// `*` matches any run of characters (S3 allows one in an origin or a header name).
fn wildcard(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(text),
        Some((head, tail)) => {
            text.len() >= head.len() + tail.len()
                && text[..head.len()].eq_ignore_ascii_case(head)
                && text[text.len() - tail.len()..].eq_ignore_ascii_case(tail)
        }
    }
}

impl Rule {
    fn check(self) -> Result<Rule, S3Error> {
        if self.origins.is_empty() || self.methods.is_empty() {
            return Err(S3Error::malformed_xml());
        }
        if let Some(m) = self.methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
            return Err(S3Error::invalid_request(format!(
                "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
            )));
        }
        for o in &self.origins {
            if o.matches('*').count() > 1 {
                return Err(S3Error::invalid_request(format!(
                    "AllowedOrigin \"{o}\" can not have more than one wildcard."
                )));
            }
        }
        Ok(self)
    }

    fn allows(&self, origin: &str, method: &str, headers: &[String]) -> bool {
        self.origins.iter().any(|o| wildcard(o, origin))
            && self.methods.iter().any(|m| m == method)
            && headers
                .iter()
                .all(|h| self.headers.iter().any(|a| wildcard(a, h)))
    }
}

/// `PutBucketCors`'s `<CORSConfiguration>`; at most 100 rules.
pub fn from_xml(body: &str) -> Result<Vec<Rule>, S3Error> {
    let doc = xml::parse(body, "CORSConfiguration")?;
    let all = |n: roxmltree::Node<'_, '_>, name: &'static str| -> Vec<String> {
        xml::children(n, name)
            .map(|c| c.text().unwrap_or_default().trim().to_owned())
            .collect()
    };
    let rules: Vec<Rule> = xml::children(doc.root_element(), "CORSRule")
        .map(|r| {
            Rule {
                id: xml::child_text(r, "ID").map(str::to_owned),
                origins: all(r, "AllowedOrigin"),
                methods: all(r, "AllowedMethod"),
                headers: all(r, "AllowedHeader"),
                expose: all(r, "ExposeHeader"),
                max_age: xml::child_text(r, "MaxAgeSeconds").and_then(|s| s.trim().parse().ok()),
            }
            .check()
        })
        .collect::<Result<_, _>>()?;
    if rules.is_empty() || rules.len() > 100 {
        return Err(S3Error::malformed_xml());
    }
    Ok(rules)
}

/// The template's `CorsConfiguration: {CorsRules: [...]}` as the XML S3 would answer with.
pub fn template_xml(config: &Value) -> Result<String, String> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    let rules: Vec<Rule> = config["CorsRules"]
        .as_array()
        .ok_or("CorsRules: a list of rules is required")?
        .iter()
        .map(|r| Rule {
            id: r["Id"].as_str().map(str::to_owned),
            origins: strings(&r["AllowedOrigins"]),
            methods: strings(&r["AllowedMethods"]),
            headers: strings(&r["AllowedHeaders"]),
            expose: strings(&r["ExposedHeaders"]),
            max_age: r["MaxAge"]
                .as_u64()
                .or_else(|| r["MaxAge"].as_str().and_then(|s| s.parse().ok())),
        })
        .map(|r| r.check().map_err(|e| e.message))
        .collect::<Result<_, _>>()?;
    Ok(to_xml(&rules))
}

pub fn to_xml(rules: &[Rule]) -> String {
    let mut out = String::new();
    xml::root(&mut out, "CORSConfiguration");
    for r in rules {
        out.push_str("<CORSRule>");
        if let Some(id) = &r.id {
            xml::element(&mut out, "ID", id);
        }
        for (name, list) in [
            ("AllowedHeader", &r.headers),
            ("AllowedMethod", &r.methods),
            ("AllowedOrigin", &r.origins),
            ("ExposeHeader", &r.expose),
        ] {
            for v in list {
                xml::element(&mut out, name, v);
            }
        }
        if let Some(age) = r.max_age {
            xml::element(&mut out, "MaxAgeSeconds", &age.to_string());
        }
        out.push_str("</CORSRule>");
    }
    out.push_str("</CORSConfiguration>");
    out
}

/// The response headers for a request from `origin` with `method` (and, for a preflight, the
/// headers it asks for), or `None` when no rule allows it.
pub fn answer(
    rules: &[Rule],
    origin: &str,
    method: &str,
    request_headers: &[String],
    preflight: bool,
) -> Option<Vec<(&'static str, String)>> {
    let rule = rules
        .iter()
        .find(|r| r.allows(origin, method, request_headers))?;
    let any = rule.origins.iter().any(|o| o == "*");
    let mut h = vec![
        (
            "access-control-allow-origin",
            if any {
                "*".to_owned()
            } else {
                origin.to_owned()
            },
        ),
        ("access-control-allow-methods", rule.methods.join(", ")),
        (
            "vary",
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method".to_owned(),
        ),
    ];
    if !any {
        h.push(("access-control-allow-credentials", "true".to_owned()));
    }
    if preflight && !request_headers.is_empty() {
        h.push(("access-control-allow-headers", request_headers.join(", ")));
    }
    if !rule.expose.is_empty() {
        h.push(("access-control-expose-headers", rule.expose.join(", ")));
    }
    if let Some(age) = rule.max_age {
        h.push(("access-control-max-age", age.to_string()));
    }
    Some(h)
}

pub fn not_allowed() -> S3Error {
    S3Error::new(
        403,
        "AccessForbidden",
        "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
    )
}

pub fn not_enabled() -> S3Error {
    S3Error::new(
        403,
        "AccessForbidden",
        "CORSResponse: CORS is not enabled for this bucket.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"<CORSConfiguration>
        <CORSRule><AllowedOrigin>http://*.example.com</AllowedOrigin><AllowedMethod>PUT</AllowedMethod>
          <AllowedMethod>POST</AllowedMethod><AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>content-type</AllowedHeader>
          <ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>300</MaxAgeSeconds></CORSRule>
        <CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>
      </CORSConfiguration>"#;

    #[test]
    fn first_matching_rule_answers_a_request() {
        let rules = from_xml(CONFIG).unwrap();
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(&str, &str, Vec<String>, Option<&str>)] = &[
            (
                "http://app.example.com",
                "PUT",
                h(&["content-type", "x-amz-meta-a"]),
                Some("http://app.example.com"),
            ),
            ("http://app.example.com", "PUT", h(&["authorization"]), None),
            ("http://evil.test", "PUT", h(&[]), None),
            ("http://evil.test", "GET", h(&[]), Some("*")),
            ("http://app.example.com", "DELETE", h(&[]), None),
        ];
        for (origin, method, headers, want) in cases {
            let got = answer(&rules, origin, method, headers, true);
            let allow = got.as_ref().and_then(|h| {
                h.iter()
                    .find(|(n, _)| *n == "access-control-allow-origin")
                    .map(|(_, v)| v.as_str())
            });
            assert_eq!(allow, *want, "{origin} {method} {headers:?}");
        }
        let put = answer(&rules, "http://a.example.com", "PUT", &[], true).unwrap();
        assert!(put.contains(&("access-control-max-age", "300".into())));
        assert!(put.contains(&("access-control-expose-headers", "ETag".into())));
        assert!(put.contains(&("access-control-allow-credentials", "true".into())));
    }

    #[test]
    fn configurations_are_checked_as_s3_checks_them() {
        let bad = [
            ("<CORSConfiguration/>", "MalformedXML"),
            ("<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>", "MalformedXML"),
            ("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>", "InvalidRequest"),
            ("<CORSConfiguration><CORSRule><AllowedOrigin>*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>", "InvalidRequest"),
        ];
        for (body, code) in bad {
            assert_eq!(from_xml(body).unwrap_err().code, code, "{body}");
        }
        let t = serde_json::json!({"CorsRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "MaxAge": 60}]});
        let x = template_xml(&t).unwrap();
        assert_eq!(from_xml(&x).unwrap()[0].max_age, Some(60));
        assert!(template_xml(&serde_json::json!({"CorsRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["TRACE"]}]})).is_err());
    }
}
