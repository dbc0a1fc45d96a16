//! The two providers nimbus's weather API speaks: how to ask each (URLs) and what its answers
//! mean (parsers). Pure: no I/O, so each mapping is tested on fixtures in the provider's
//! documented format.

pub mod open_meteo;
pub mod owm;

use reqwest::Url;

/// A provider answered 200 with something that is not what its documentation promises.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    fn json(e: serde_json::Error) -> Invalid {
        Invalid(format!("the body is not the documented JSON ({e})"))
    }
}

/// The URL as it may appear in messages and logs: query parameters that carry a credential are
/// replaced, so a provider key never leaves the function.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = match k.as_ref() {
                "appid" | "apikey" | "key" => "REDACTED".to_owned(),
                _ => v.into_owned(),
            };
            (k.into_owned(), v)
        })
        .collect();
    if pairs.is_empty() {
        shown.set_query(None);
    } else {
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// `base` (a configured base URL, with or without a trailing slash) joined with `path`.
fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_credentials_and_keeps_the_rest() {
        let url = Url::parse("https://api.example/data?lat=1&appid=s3cret&units=metric").unwrap();
        let shown = redact(&url);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("appid=REDACTED") && shown.contains("lat=1"),
            "{shown}"
        );
    }

    #[test]
    fn endpoint_keeps_a_base_path() {
        let base = Url::parse("http://127.0.0.1:9/prefix/").unwrap();
        assert_eq!(
            endpoint(&base, "v1/search").as_str(),
            "http://127.0.0.1:9/prefix/v1/search"
        );
    }
}
