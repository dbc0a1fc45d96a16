//! API Gateway URLs in a template, pointed at the gateway nimbus runs.
//!
//! A template passes one function the URL of another's API the way it would on AWS:
//! `!Sub "https://${SlowApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/slow"`. nimbus
//! serves that API on a local port without the stage prefix, so such a URL in a function's
//! environment becomes `http://127.0.0.1:<port>/slow`; the template stays the one that deploys.

/// An API as nimbus serves it.
#[derive(Debug, Clone, Copy)]
pub struct LocalApi<'a> {
    /// What `Ref` of the API gives (its id in URLs).
    pub id: &'a str,
    /// Its stage (`Prod`, `$default`, ...).
    pub stage: &'a str,
    /// Where nimbus serves it, e.g. `http://127.0.0.1:3000`.
    pub base: &'a str,
}

/// `value` with every URL of one of `apis` rewritten; `None` when nothing changed.
pub fn rewrite(value: &str, region: &str, apis: &[LocalApi<'_>]) -> Option<String> {
    let mut out = value.to_owned();
    let mut changed = false;
    for api in apis {
        let host = format!("{}.execute-api.{region}.amazonaws.com", api.id);
        for scheme in ["https://", "http://"] {
            let prefix = format!("{scheme}{host}");
            while let Some(at) = out.find(&prefix) {
                let rest = &out[at + prefix.len()..];
                // The host must end here: `abc.execute-api...com.evil` is another host.
                if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
                    break;
                }
                let stage = format!("/{}", api.stage);
                let skip = if rest == stage
                    || rest.starts_with(&format!("{stage}/"))
                    || rest.starts_with(&format!("{stage}?"))
                {
                    stage.len()
                } else {
                    0
                };
                out.replace_range(at..at + prefix.len() + skip, api.base);
                changed = true;
            }
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APIS: &[LocalApi<'static>] = &[
        LocalApi {
            id: "SlowApi",
            stage: "Prod",
            base: "http://127.0.0.1:3001",
        },
        LocalApi {
            id: "Http",
            stage: "$default",
            base: "http://127.0.0.1:3002",
        },
    ];

    #[test]
    fn a_rest_api_url_loses_its_stage_and_points_at_the_local_port() {
        assert_eq!(
            rewrite(
                "https://SlowApi.execute-api.eu-west-1.amazonaws.com/Prod/slow?x=1",
                "eu-west-1",
                APIS
            )
            .as_deref(),
            Some("http://127.0.0.1:3001/slow?x=1")
        );
        assert_eq!(
            rewrite(
                "https://SlowApi.execute-api.eu-west-1.amazonaws.com/Prod",
                "eu-west-1",
                APIS
            )
            .as_deref(),
            Some("http://127.0.0.1:3001")
        );
    }

    #[test]
    fn an_http_api_default_stage_url_keeps_its_path() {
        assert_eq!(
            rewrite(
                "https://Http.execute-api.us-east-1.amazonaws.com/items",
                "us-east-1",
                APIS
            )
            .as_deref(),
            Some("http://127.0.0.1:3002/items")
        );
    }

    #[test]
    fn other_urls_and_other_regions_are_left_alone() {
        for v in [
            "https://example.com/Prod",
            "https://SlowApi.execute-api.us-west-2.amazonaws.com/Prod/slow",
            "https://SlowApi.execute-api.us-east-1.amazonaws.com.evil.com/x",
            "https://Other.execute-api.us-east-1.amazonaws.com/Prod",
        ] {
            assert_eq!(rewrite(v, "us-east-1", APIS), None, "{v}");
        }
    }

    #[test]
    fn every_occurrence_in_a_value_is_rewritten() {
        assert_eq!(
            rewrite(
                "a=https://SlowApi.execute-api.us-east-1.amazonaws.com/Prod/x,b=https://SlowApi.execute-api.us-east-1.amazonaws.com/Prod/y",
                "us-east-1",
                APIS
            )
            .as_deref(),
            Some("a=http://127.0.0.1:3001/x,b=http://127.0.0.1:3001/y")
        );
    }
}
