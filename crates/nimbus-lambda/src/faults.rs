//! Faults injected into invocations, as AWS Fault Injection Service's Lambda actions do
//! (`aws:lambda:invocation-add-delay`, `-invocation-error`, `-invocation-http-integration-response`).
//! The FIS API in nimbus-aws installs and lifts them; the platform consults them on every
//! invocation, whatever the runtime. Each fault applies to an invocation of one of its functions
//! with its own probability.

use std::sync::RwLock;

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Wait this long before the function gets the event.
    Delay { ms: u64 },
    /// The invocation fails; with `prevent` the handler never runs.
    Error { prevent: bool },
    /// The invocation answers this HTTP response (an API Gateway proxy result) instead.
    HttpResponse {
        status: u16,
        content_type: String,
        prevent: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Who installed it (an experiment's id), so it can be lifted alone.
    pub owner: String,
    pub functions: Vec<String>,
    /// 0 to 100.
    pub percentage: f64,
    pub kind: FaultKind,
}

#[derive(Debug, Default)]
pub struct Faults {
    active: RwLock<Vec<Fault>>,
}

/// What the faults chose for one invocation.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Injected {
    pub delay_ms: u64,
    /// Replace the result with this; `prevent` says whether the handler still runs.
    pub replace: Option<(Replacement, bool)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Replacement {
    Error,
    Http { status: u16, content_type: String },
}

impl Faults {
    pub fn install(&self, faults: Vec<Fault>) {
        self.active.write().unwrap().extend(faults);
    }

    /// Lifts every fault `owner` installed.
    pub fn lift(&self, owner: &str) {
        self.active.write().unwrap().retain(|f| f.owner != owner);
    }

    pub fn is_empty(&self) -> bool {
        self.active.read().unwrap().is_empty()
    }

    /// Rolls each fault of `function` (`roll` gives a uniform number in [0, 100) per fault).
    pub fn pick(&self, function: &str, mut roll: impl FnMut() -> f64) -> Injected {
        let mut out = Injected::default();
        for f in self.active.read().unwrap().iter() {
            if !f.functions.iter().any(|n| n == function) || roll() >= f.percentage {
                continue;
            }
            match &f.kind {
                FaultKind::Delay { ms } => out.delay_ms += ms,
                FaultKind::Error { prevent } if out.replace.is_none() => {
                    out.replace = Some((Replacement::Error, *prevent))
                }
                FaultKind::HttpResponse {
                    status,
                    content_type,
                    prevent,
                } if out.replace.is_none() => {
                    out.replace = Some((
                        Replacement::Http {
                            status: *status,
                            content_type: content_type.clone(),
                        },
                        *prevent,
                    ))
                }
                _ => {}
            }
        }
        out
    }
}

impl Replacement {
    /// The payload and function error the invocation answers with.
    pub fn answer(&self) -> (Bytes, Option<&'static str>) {
        match self {
            Replacement::Error => (
                Bytes::from_static(
                    br#"{"errorType":"FaultInjectionError","errorMessage":"The invocation failed: a fault was injected by aws:lambda:invocation-error"}"#,
                ),
                Some("Unhandled"),
            ),
            Replacement::Http {
                status,
                content_type,
            } => (
                Bytes::from(
                    serde_json::json!({
                        "statusCode": status,
                        "headers": {"Content-Type": content_type},
                        "body": "",
                    })
                    .to_string(),
                ),
                None,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_to_their_functions_by_percentage() {
        let f = Faults::default();
        f.install(vec![
            Fault {
                owner: "e1".into(),
                functions: vec!["a".into()],
                percentage: 50.0,
                kind: FaultKind::Error { prevent: true },
            },
            Fault {
                owner: "e2".into(),
                functions: vec!["a".into(), "b".into()],
                percentage: 100.0,
                kind: FaultKind::Delay { ms: 300 },
            },
        ]);
        assert_eq!(
            f.pick("a", || 10.0),
            Injected {
                delay_ms: 300,
                replace: Some((Replacement::Error, true))
            }
        );
        assert_eq!(f.pick("a", || 60.0).replace, None);
        assert_eq!(f.pick("b", || 0.0).delay_ms, 300);
        assert_eq!(f.pick("c", || 0.0), Injected::default());
        f.lift("e2");
        assert_eq!(f.pick("b", || 0.0), Injected::default());
        let (body, err) = Replacement::Http {
            status: 503,
            content_type: "text/plain".into(),
        }
        .answer();
        assert_eq!(err, None);
        assert!(std::str::from_utf8(&body)
            .unwrap()
            .contains("\"statusCode\":503"));
    }
}
