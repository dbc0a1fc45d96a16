//! CloudWatch's metrics (`AWS/Lambda Errors FunctionName=F`, `AWS/SQS
//! ApproximateAgeOfOldestMessage QueueName=Q`, an EMF namespace's own metrics, ...) computed
//! from nimbus's samples: one period's datapoint is the difference between the samples taken
//! at its end and at its start (counters, histograms) or the sample at its end (gauges).
//!
//! Where nimbus's data is coarser than CloudWatch's: `Minimum` / `Maximum` and percentiles of
//! a duration are estimated from histogram buckets (linear within a bucket, as Prometheus's
//! `histogram_quantile`).

use std::collections::BTreeMap;

use crate::samples::Sample;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    Sum,
    Average,
    SampleCount,
    Minimum,
    Maximum,
    /// `ExtendedStatistic: p99` is `Percentile(99.0)`.
    Percentile(f64),
}

impl Statistic {
    /// `Statistic` or `ExtendedStatistic` (exactly one of them), as an alarm declares it.
    pub fn parse(statistic: Option<&str>, extended: Option<&str>) -> Result<Statistic, String> {
        match (statistic, extended) {
            (Some(s), None) => Ok(match s {
                "Sum" => Statistic::Sum,
                "Average" => Statistic::Average,
                "SampleCount" => Statistic::SampleCount,
                "Minimum" => Statistic::Minimum,
                "Maximum" => Statistic::Maximum,
                other => {
                    return Err(format!(
                    "Statistic {other:?} is not one of SampleCount, Average, Sum, Minimum, Maximum"
                ))
                }
            }),
            (None, Some(p)) => p
                .strip_prefix('p')
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| (0.0..=100.0).contains(n))
                .map(Statistic::Percentile)
                .ok_or_else(|| {
                    format!("ExtendedStatistic {p:?} is not a percentile p0.0 to p100 (nimbus serves percentiles only)")
                }),
            (Some(_), Some(_)) => Err("give Statistic or ExtendedStatistic, not both".into()),
            (None, None) => Err("Statistic or ExtendedStatistic is required".into()),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Statistic::Sum => "Sum".into(),
            Statistic::Average => "Average".into(),
            Statistic::SampleCount => "SampleCount".into(),
            Statistic::Minimum => "Minimum".into(),
            Statistic::Maximum => "Maximum".into(),
            Statistic::Percentile(p) => format!("p{p}"),
        }
    }
}

/// A family of samples with some labels fixed (others summed over).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: Vec<(&'static str, String)>,
}

impl Series {
    fn new(name: &str, labels: &[(&'static str, &str)]) -> Series {
        Series {
            name: name.to_owned(),
            labels: labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        }
    }

    fn matches(&self, s: &Sample) -> bool {
        s.name == self.name
            && self
                .labels
                .iter()
                .all(|(k, v)| s.label(k) == Some(v.as_str()))
    }

    fn sum(&self, samples: &[Sample]) -> f64 {
        samples
            .iter()
            .filter(|s| self.matches(s))
            .map(|s| s.value)
            .sum()
    }
}

/// How one CloudWatch metric is read from nimbus's samples.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A per-event metric worth 0 or 1 each time (Lambda `Errors`, API `5XXError`): `events`
    /// counts the ones, `of` (summed) all events. No datapoint without events.
    Events { events: Series, of: Vec<Series> },
    /// A plain count (`Invocations`, `Count`, `MatchedEvents`).
    Count { count: Series },
    /// A histogram in seconds reported in `scale` units (1000: milliseconds).
    /// `histogram` names the family without its `_bucket` / `_sum` / `_count` suffix.
    Histogram { histogram: Series, scale: f64 },
    /// A gauge, sampled at the period's end.
    Gauge { gauge: Series, scale: f64 },
    /// An EMF metric: sum and observation counters.
    Emf { sum: Series, count: Series },
}

/// Finds what nimbus reads for `namespace`/`metric` with `dimensions`; an error says why not.
pub fn source(
    namespace: &str,
    metric: &str,
    dimensions: &BTreeMap<String, String>,
) -> Result<Source, String> {
    let dim = |name: &str| -> Result<&str, String> {
        dimensions
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("{namespace} {metric} needs the dimension {name}"))
    };
    let unknown = || format!("nimbus does not compute {namespace} {metric}");
    match namespace {
        "AWS/Lambda" => {
            let f = dim("FunctionName")?;
            // By version or alias: CloudWatch's ExecutedVersion and Resource dimensions.
            let version = dimensions.get("ExecutedVersion").map(String::as_str);
            let resource = dimensions.get("Resource").map(String::as_str);
            if version.is_some() || resource.is_some() {
                let mut labels = vec![("function", f)];
                labels.extend(version.map(|v| ("version", v)));
                labels.extend(resource.map(|r| ("resource", r)));
                let invocations = Series::new("nimbus_lambda_version_invocations_total", &labels);
                return match metric {
                    "Invocations" => Ok(Source::Count { count: invocations }),
                    "Errors" => Ok(Source::Events {
                        events: Series::new("nimbus_lambda_version_errors_total", &labels),
                        of: vec![invocations],
                    }),
                    _ => Err(format!(
                        "nimbus computes {namespace} {metric} by FunctionName alone; by ExecutedVersion or Resource it computes Invocations and Errors"
                    )),
                };
            }
            let invocations = Series::new("nimbus_lambda_invocations_total", &[("function", f)]);
            Ok(match metric {
                "Invocations" => Source::Count { count: invocations },
                "Errors" => Source::Events {
                    events: Series::new("nimbus_lambda_errors_total", &[("function", f)]),
                    of: vec![invocations],
                },
                // Throttled invocations did not run, so they are not among `invocations`.
                "Throttles" => {
                    let throttles =
                        Series::new("nimbus_lambda_throttles_total", &[("function", f)]);
                    Source::Events {
                        events: throttles.clone(),
                        of: vec![invocations, throttles],
                    }
                }
                "Duration" => Source::Histogram {
                    histogram: Series::new("nimbus_lambda_duration_seconds", &[("function", f)]),
                    scale: 1000.0,
                },
                "ConcurrentExecutions" => Source::Gauge {
                    gauge: Series::new("nimbus_lambda_concurrent_executions", &[("function", f)]),
                    scale: 1.0,
                },
                "AsyncEventAge" => Source::Gauge {
                    gauge: Series::new("nimbus_lambda_async_event_age_seconds", &[("function", f)]),
                    scale: 1000.0,
                },
                "DeadLetterErrors" | "DestinationDeliveryFailures" | "AsyncEventsDropped" => {
                    return Err(unknown())
                }
                _ => return Err(unknown()),
            })
        }
        "AWS/ApiGateway" => {
            let api = dim("ApiName").or_else(|_| dim("ApiId")).map_err(|_| {
                format!(
                    "{namespace} {metric} needs the dimension ApiName (REST) or ApiId (HTTP API)"
                )
            })?;
            let mut labels = vec![("api", api)];
            // REST APIs narrow by Resource and Method, HTTP APIs by Route; routes are labelled
            // by their key (`GET /items/{id}`).
            let route;
            if let (Some(r), Some(m)) = (dimensions.get("Resource"), dimensions.get("Method")) {
                route = format!("{m} {r}");
                labels.push(("route", &route));
            } else if let Some(r) = dimensions.get("Route") {
                labels.push(("route", r));
            }
            let requests = Series::new("nimbus_apigateway_requests_total", &labels);
            let class = |c: &str| {
                let mut l = labels.clone();
                l.push(("status_class", c));
                Series::new("nimbus_apigateway_requests_total", &l)
            };
            Ok(match metric {
                "Count" => Source::Count { count: requests },
                "5XXError" | "5xx" => Source::Events {
                    events: class("5xx"),
                    of: vec![requests],
                },
                "4XXError" | "4xx" => Source::Events {
                    events: class("4xx"),
                    of: vec![requests],
                },
                "Latency" => Source::Histogram {
                    histogram: Series::new("nimbus_apigateway_latency_seconds", &labels),
                    scale: 1000.0,
                },
                "IntegrationLatency" => Source::Histogram {
                    histogram: Series::new(
                        "nimbus_apigateway_integration_latency_seconds",
                        &labels,
                    ),
                    scale: 1000.0,
                },
                _ => return Err(unknown()),
            })
        }
        "AWS/SQS" => {
            let q = dim("QueueName")?;
            let gauge = |name: &'static str| Source::Gauge {
                gauge: Series::new(name, &[("queue", q)]),
                scale: 1.0,
            };
            Ok(match metric {
                "ApproximateNumberOfMessagesVisible" => gauge("nimbus_sqs_messages_visible"),
                "ApproximateNumberOfMessagesNotVisible" => gauge("nimbus_sqs_messages_in_flight"),
                "ApproximateNumberOfMessagesDelayed" => gauge("nimbus_sqs_messages_delayed"),
                "ApproximateAgeOfOldestMessage" => gauge("nimbus_sqs_oldest_message_age_seconds"),
                _ => return Err(unknown()),
            })
        }
        "AWS/Events" => {
            let rule = dim("RuleName")?;
            let mut labels = vec![("rule", rule)];
            if let Some(bus) = dimensions.get("EventBusName") {
                labels.push(("bus", bus));
            }
            Ok(match metric {
                "MatchedEvents" | "TriggeredRules" => Source::Count {
                    count: Series::new("nimbus_events_rule_matches_total", &labels),
                },
                "Invocations" => Source::Count {
                    count: Series::new("nimbus_events_target_invocations_total", &labels),
                },
                "FailedInvocations" => Source::Count {
                    count: Series::new("nimbus_events_target_failures_total", &labels),
                },
                _ => return Err(unknown()),
            })
        }
        ns if ns.starts_with("AWS/") => Err(format!("nimbus does not compute {ns} metrics")),
        // Anything else is a function's own namespace, through EMF. The dimension set is
        // labelled as `Name=value,...` in the order the line declared it; alarms give them
        // sorted by name, so a function should declare them sorted for an alarm to find them.
        ns => {
            let dims = dimensions
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let labels = [("namespace", ns), ("metric", metric), ("dimensions", &dims)];
            Ok(Source::Emf {
                sum: Series::new("nimbus_emf_sum", &labels),
                count: Series::new("nimbus_emf_observations_total", &labels),
            })
        }
    }
}

/// One period's datapoint: `start` is the samples at its start, `end` at its end. `None`
/// when the metric had no data in the period (as CloudWatch has no datapoint then).
pub fn datapoint(
    source: &Source,
    stat: Statistic,
    start: &[Sample],
    end: &[Sample],
) -> Option<f64> {
    let delta = |s: &Series| (s.sum(end) - s.sum(start)).max(0.0);
    match source {
        Source::Count { count } => {
            let n = delta(count);
            if n == 0.0 {
                return None;
            }
            Some(match stat {
                Statistic::Sum | Statistic::SampleCount => n,
                _ => 1.0,
            })
        }
        Source::Events { events, of } => {
            let hits = delta(events);
            let all = of.iter().map(delta).sum::<f64>().max(hits);
            if all == 0.0 {
                return None;
            }
            Some(match stat {
                Statistic::Sum => hits,
                Statistic::SampleCount => all,
                Statistic::Average => hits / all,
                Statistic::Maximum => f64::from(u8::from(hits > 0.0)),
                Statistic::Minimum => f64::from(u8::from(hits >= all)),
                Statistic::Percentile(p) => f64::from(u8::from(hits / all > 1.0 - p / 100.0)),
            })
        }
        Source::Gauge { gauge, scale } => {
            let present = end.iter().any(|s| gauge.matches(s));
            present.then(|| gauge.sum(end) * scale)
        }
        Source::Emf { sum, count } => {
            let n = delta(count);
            if n == 0.0 {
                return None;
            }
            let total = delta(sum);
            Some(match stat {
                Statistic::Sum => total,
                Statistic::SampleCount => n,
                // EMF keeps sums, not every value: min, max and percentiles are the mean.
                _ => total / n,
            })
        }
        Source::Histogram { histogram, scale } => {
            let named = |suffix: &str| Series {
                name: format!("{}{suffix}", histogram.name),
                labels: histogram.labels.clone(),
            };
            let n = delta(&named("_count"));
            if n == 0.0 {
                return None;
            }
            let total = delta(&named("_sum")) * scale;
            Some(match stat {
                Statistic::Sum => total,
                Statistic::SampleCount => n,
                Statistic::Average => total / n,
                Statistic::Minimum => quantile(&named("_bucket"), start, end, 0.0)? * scale,
                Statistic::Maximum => quantile(&named("_bucket"), start, end, 1.0)? * scale,
                Statistic::Percentile(p) => {
                    quantile(&named("_bucket"), start, end, p / 100.0)? * scale
                }
            })
        }
    }
}

/// The `q` quantile (0..=1) of the observations made between `start` and `end`, from the
/// cumulative buckets: linear within the bucket it falls in.
fn quantile(bucket: &Series, start: &[Sample], end: &[Sample], q: f64) -> Option<f64> {
    // Bounds are never negative, so their bit patterns sort as the numbers do.
    let buckets = |samples: &[Sample]| -> Vec<(f64, f64)> {
        let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for s in samples.iter().filter(|s| bucket.matches(s)) {
            let le = match s.label("le") {
                Some("+Inf") => f64::INFINITY,
                Some(v) => v.parse().unwrap_or(f64::INFINITY),
                None => continue,
            };
            by_le.entry(le.to_bits()).or_insert((le, 0.0)).1 += s.value;
        }
        by_le.into_values().collect()
    };
    let before = buckets(start);
    let after = buckets(end);
    let counts: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, c)| {
            let old = before
                .iter()
                .find(|(l, _)| l == le)
                .map(|(_, c)| *c)
                .unwrap_or(0.0);
            (*le, (c - old).max(0.0))
        })
        .collect();
    let total = counts.last()?.1;
    if total == 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = 0.0;
    let mut below = 0.0;
    for (le, cumulative) in &counts {
        if *cumulative >= rank && *cumulative > 0.0 {
            if le.is_infinite() {
                return Some(lower);
            }
            let in_bucket = cumulative - below;
            let fraction = if in_bucket > 0.0 {
                (rank - below) / in_bucket
            } else {
                1.0
            };
            return Some(lower + (le - lower) * fraction.clamp(0.0, 1.0));
        }
        lower = *le;
        below = *cumulative;
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{function, samples, ErrorLabels, Telemetry};

    fn dims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn lambda(metric: &str) -> Source {
        source("AWS/Lambda", metric, &dims(&[("FunctionName", "F")])).unwrap()
    }

    #[test]
    fn lambda_errors_are_the_errors_of_the_period_and_their_rate() {
        let t = Telemetry::new();
        let start = samples::parse(&t.encode());
        for _ in 0..4 {
            t.lambda.invocations.get_or_create(&function("F")).inc();
        }
        t.lambda
            .errors
            .get_or_create(&ErrorLabels {
                function: "F".into(),
                error_type: "timeout".into(),
            })
            .inc();
        let end = samples::parse(&t.encode());
        let errors = lambda("Errors");
        assert_eq!(datapoint(&errors, Statistic::Sum, &start, &end), Some(1.0));
        assert_eq!(
            datapoint(&errors, Statistic::Average, &start, &end),
            Some(0.25)
        );
        assert_eq!(
            datapoint(&errors, Statistic::SampleCount, &start, &end),
            Some(4.0)
        );
        assert_eq!(
            datapoint(&errors, Statistic::Maximum, &start, &end),
            Some(1.0)
        );
        assert_eq!(
            datapoint(&errors, Statistic::Sum, &end, &end),
            None,
            "no invocations, no datapoint"
        );
        assert_eq!(
            datapoint(&lambda("Invocations"), Statistic::Sum, &start, &end),
            Some(4.0)
        );
    }

    #[test]
    fn errors_by_executed_version_and_resource_count_only_that_version_or_alias() {
        let t = Telemetry::new();
        let start = samples::parse(&t.encode());
        let labels = |version: &str, resource: &str| crate::VersionLabels {
            function: "F".into(),
            version: version.into(),
            resource: resource.into(),
        };
        for (version, resource, invocations, errors) in [
            ("1", "F:live", 6, 0),
            ("2", "F:live", 2, 2),
            ("$LATEST", "F", 3, 1),
        ] {
            let l = labels(version, resource);
            t.lambda
                .version_invocations
                .get_or_create(&l)
                .inc_by(invocations);
            t.lambda.version_errors.get_or_create(&l).inc_by(errors);
        }
        let end = samples::parse(&t.encode());
        let by = |pairs: &[(&str, &str)]| {
            let errors = source("AWS/Lambda", "Errors", &dims(pairs)).unwrap();
            let invocations = source("AWS/Lambda", "Invocations", &dims(pairs)).unwrap();
            (
                datapoint(&errors, Statistic::Sum, &start, &end),
                datapoint(&invocations, Statistic::Sum, &start, &end),
            )
        };
        // Dimensions, then the datapoints of Errors and of Invocations (Sum).
        type Row<'a> = (&'a [(&'a str, &'a str)], (Option<f64>, Option<f64>));
        let table: &[Row] = &[
            (
                &[("FunctionName", "F"), ("Resource", "F:live")],
                (Some(2.0), Some(8.0)),
            ),
            (
                &[("FunctionName", "F"), ("ExecutedVersion", "2")],
                (Some(2.0), Some(2.0)),
            ),
            (
                &[
                    ("FunctionName", "F"),
                    ("Resource", "F:live"),
                    ("ExecutedVersion", "1"),
                ],
                (Some(0.0), Some(6.0)),
            ),
            (
                &[("FunctionName", "F"), ("Resource", "F")],
                (Some(1.0), Some(3.0)),
            ),
        ];
        for (pairs, want) in table {
            assert_eq!(&by(pairs), want, "{pairs:?}");
        }
        assert!(source(
            "AWS/Lambda",
            "Duration",
            &dims(&[("FunctionName", "F"), ("Resource", "F:live")])
        )
        .is_err());
    }

    #[test]
    fn duration_statistics_come_from_the_histogram_in_milliseconds() {
        let t = Telemetry::new();
        let start = samples::parse(&t.encode());
        let h = t.lambda.duration.get_or_create(&function("F")).clone();
        for v in [0.002, 0.002, 0.002, 0.2] {
            h.observe(v);
        }
        let end = samples::parse(&t.encode());
        let d = lambda("Duration");
        let avg = datapoint(&d, Statistic::Average, &start, &end).unwrap();
        assert!((avg - 51.5).abs() < 1e-6, "{avg}");
        let p50 = datapoint(&d, Statistic::Percentile(50.0), &start, &end).unwrap();
        assert!(p50 > 1.0 && p50 <= 2.5, "{p50}");
        let max = datapoint(&d, Statistic::Maximum, &start, &end).unwrap();
        assert!(max > 100.0 && max <= 250.0, "{max}");
    }

    #[test]
    fn queue_gauges_are_read_at_the_periods_end() {
        let t = Telemetry::new();
        t.set_queues(&[crate::QueueSnapshot {
            queue: "Q".into(),
            visible: 3,
            in_flight: 1,
            delayed: 0,
            oldest_age_s: 42.0,
        }]);
        let end = samples::parse(&t.encode());
        let age = source(
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            &dims(&[("QueueName", "Q")]),
        )
        .unwrap();
        assert_eq!(datapoint(&age, Statistic::Maximum, &[], &end), Some(42.0));
        let other = source(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            &dims(&[("QueueName", "Other")]),
        )
        .unwrap();
        assert_eq!(datapoint(&other, Statistic::Maximum, &[], &end), None);
    }

    #[test]
    fn unknown_metrics_and_missing_dimensions_say_so() {
        assert_eq!(
            source("AWS/Lambda", "Errors", &BTreeMap::new()).unwrap_err(),
            "AWS/Lambda Errors needs the dimension FunctionName"
        );
        assert_eq!(
            source("AWS/Lambda", "Bogus", &dims(&[("FunctionName", "F")])).unwrap_err(),
            "nimbus does not compute AWS/Lambda Bogus"
        );
        assert!(source("AWS/EC2", "CPUUtilization", &BTreeMap::new()).is_err());
        assert!(Statistic::parse(Some("Median"), None).is_err());
        assert_eq!(
            Statistic::parse(None, Some("p99")),
            Ok(Statistic::Percentile(99.0))
        );
        assert!(Statistic::parse(None, Some("tm99")).is_err());
    }
}
