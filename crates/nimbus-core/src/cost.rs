//! What a run would have cost on AWS (pure): a price list (a versioned JSON file: region,
//! currency, and each service's figures with the pricing page they came from) applied to the
//! usage nimbus measured. The caller gathers the usage (nimbus's metrics) and prints the
//! estimate.

use serde_json::Value;

/// One service's prices: figure name -> value, with its source page.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    pub version: String,
    pub region: String,
    pub currency: String,
    doc: Value,
}

/// The figures an estimate reads; a price file must have each.
const FIGURES: &[(&str, &str)] = &[
    ("lambda", "requests_per_million"),
    ("lambda", "gb_second_x86_64"),
    ("lambda", "gb_second_arm64"),
    ("lambda", "free_requests"),
    ("lambda", "free_gb_seconds"),
    ("apigateway", "rest_requests_per_million"),
    ("apigateway", "http_requests_per_million"),
    ("apigateway", "free_rest_requests"),
    ("apigateway", "free_http_requests"),
    ("eventbridge", "events_per_million"),
    ("stepfunctions", "standard_transitions_per_thousand"),
    ("stepfunctions", "free_standard_transitions"),
    ("stepfunctions", "express_requests_per_million"),
    ("stepfunctions", "express_gb_hour"),
    ("dynamodb", "write_request_units_per_million"),
    ("dynamodb", "read_request_units_per_million"),
    ("s3", "storage_gb_month"),
    ("s3", "free_storage_gb_months"),
    ("s3", "put_class_per_thousand"),
    ("s3", "get_class_per_thousand"),
    ("s3", "free_put_class"),
    ("s3", "free_get_class"),
    ("sqs", "requests_per_million"),
    ("sqs", "free_requests"),
    ("sns", "publishes_per_million"),
    ("sns", "free_publishes"),
    ("secretsmanager", "api_calls_per_ten_thousand"),
    ("secretsmanager", "secret_per_month"),
];

/// The month storage is billed by: 30 days, as `nimbus cost` projects a month.
pub const MONTH_SECONDS: f64 = 30.0 * 86_400.0;

/// GB-months from byte-seconds (S3's GB is 2^30 bytes).
pub fn gb_months(byte_seconds: f64) -> f64 {
    byte_seconds / f64::from(1u32 << 30) / MONTH_SECONDS
}

impl Prices {
    /// Reads a price file; every figure must be there, each service with its `source`.
    pub fn parse(text: &str) -> Result<Prices, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let field = |k: &str| {
            doc[k]
                .as_str()
                .map(str::to_owned)
                .ok_or(format!("the field {k:?} (a string) is missing"))
        };
        let prices = Prices {
            version: field("version")?,
            region: field("region")?,
            currency: field("currency")?,
            doc: doc.clone(),
        };
        for (service, figure) in FIGURES {
            if !doc[service]["source"].is_string() {
                return Err(format!("{service}.source (the pricing page) is missing"));
            }
            match doc[service][figure].as_f64() {
                Some(v) if v >= 0.0 => {}
                _ => {
                    return Err(format!(
                        "{service}.{figure} (a non-negative number) is missing"
                    ))
                }
            }
        }
        Ok(prices)
    }

    fn get(&self, service: &str, figure: &str) -> f64 {
        self.doc[service][figure].as_f64().unwrap_or(0.0)
    }
}

/// What was used, as nimbus measured it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// (function, requests, billed milliseconds, memory MB, arm64)
    pub functions: Vec<(String, f64, f64, u32, bool)>,
    /// (api, requests, REST rather than HTTP)
    pub apis: Vec<(String, f64, bool)>,
    pub events: f64,
    pub standard_transitions: f64,
    pub express_requests: f64,
    /// Express executions' billed milliseconds (each rounded up to 100 ms).
    pub express_billed_ms: f64,
    pub dynamodb_reads: f64,
    pub dynamodb_writes: f64,
    pub s3_put_class: f64,
    pub s3_get_class: f64,
    /// SQS API requests as billed (each 64 KB chunk of a payload is one; a batch is one).
    pub sqs_requests: f64,
    /// SNS `Publish` and `PublishBatch` requests (deliveries to SQS and Lambda are free).
    pub sns_publishes: f64,
    /// Secrets Manager API calls.
    pub secrets_api_calls: f64,
    /// (bucket, GB-months of storage over the run)
    pub s3_storage: Vec<(String, f64)>,
    /// Secrets stored, in secret-months over the run.
    pub secret_months: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub service: &'static str,
    pub resource: String,
    pub item: String,
    pub quantity: f64,
    pub unit: &'static str,
    pub cost: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub lines: Vec<Line>,
    pub total: f64,
}

/// Applies `prices` to `usage`. With `free_tier`, each service's monthly free allowance is
/// taken off first (in the order the lines come).
pub fn estimate(usage: &Usage, prices: &Prices, free_tier: bool) -> Estimate {
    let mut lines = Vec::new();
    let p = |s: &str, f: &str| prices.get(s, f);
    let free = |s: &str, f: &str| if free_tier { p(s, f) } else { 0.0 };
    let mut free_requests = free("lambda", "free_requests");
    let mut free_gbs = free("lambda", "free_gb_seconds");
    let mut free_rest = free("apigateway", "free_rest_requests");
    let mut free_http = free("apigateway", "free_http_requests");
    let mut free_transitions = free("stepfunctions", "free_standard_transitions");
    let mut free_put = free("s3", "free_put_class");
    let mut free_storage = free("s3", "free_storage_gb_months");
    let mut free_get = free("s3", "free_get_class");
    let mut free_sqs = free("sqs", "free_requests");
    let mut free_sns = free("sns", "free_publishes");
    let take = |left: &mut f64, q: f64| {
        let used = q.min(*left);
        *left -= used;
        q - used
    };
    for (name, requests, billed_ms, memory, arm) in &usage.functions {
        let gbs = billed_ms / 1000.0 * f64::from(*memory) / 1024.0;
        let rate = if *arm {
            p("lambda", "gb_second_arm64")
        } else {
            p("lambda", "gb_second_x86_64")
        };
        lines.push(Line {
            service: "Lambda",
            resource: name.clone(),
            item: "requests".into(),
            quantity: *requests,
            unit: "requests",
            cost: take(&mut free_requests, *requests) / 1e6 * p("lambda", "requests_per_million"),
        });
        lines.push(Line {
            service: "Lambda",
            resource: name.clone(),
            item: format!(
                "duration ({memory} MB, {})",
                if *arm { "arm64" } else { "x86_64" }
            ),
            quantity: gbs,
            unit: "GB-s",
            cost: take(&mut free_gbs, gbs) * rate,
        });
    }
    for (api, requests, rest) in &usage.apis {
        let (left, rate) = if *rest {
            (&mut free_rest, p("apigateway", "rest_requests_per_million"))
        } else {
            (&mut free_http, p("apigateway", "http_requests_per_million"))
        };
        lines.push(Line {
            service: "API Gateway",
            resource: api.clone(),
            item: format!("{} API requests", if *rest { "REST" } else { "HTTP" }),
            quantity: *requests,
            unit: "requests",
            cost: take(left, *requests) / 1e6 * rate,
        });
    }
    for (bucket, gb_months) in usage.s3_storage.iter().filter(|(_, q)| *q > 0.0) {
        lines.push(Line {
            service: "S3",
            resource: bucket.clone(),
            item: "storage (Standard)".into(),
            quantity: *gb_months,
            unit: "GB-months",
            cost: take(&mut free_storage, *gb_months) * p("s3", "storage_gb_month"),
        });
    }
    let mut simple = |service, item: &str, quantity: f64, unit, cost: f64| {
        if quantity > 0.0 {
            lines.push(Line {
                service,
                resource: String::new(),
                item: item.into(),
                quantity,
                unit,
                cost,
            });
        }
    };
    simple(
        "EventBridge",
        "events published",
        usage.events,
        "events",
        usage.events / 1e6 * p("eventbridge", "events_per_million"),
    );
    simple(
        "Step Functions",
        "Standard state transitions",
        usage.standard_transitions,
        "transitions",
        take(&mut free_transitions, usage.standard_transitions) / 1000.0
            * p("stepfunctions", "standard_transitions_per_thousand"),
    );
    simple(
        "Step Functions",
        "Express requests",
        usage.express_requests,
        "requests",
        usage.express_requests / 1e6 * p("stepfunctions", "express_requests_per_million"),
    );
    // Express memory is billed in 64 MB chunks from 50 MB plus the definition and the data
    // the execution holds: 64 MB unless those pass 14 MB, which nimbus does not measure.
    let express_gbs = usage.express_billed_ms / 1000.0 * 64.0 / 1024.0;
    simple(
        "Step Functions",
        "Express duration (64 MB)",
        express_gbs,
        "GB-s",
        express_gbs / 3600.0 * p("stepfunctions", "express_gb_hour"),
    );
    simple(
        "DynamoDB",
        "write request units (on demand)",
        usage.dynamodb_writes,
        "WRU",
        usage.dynamodb_writes / 1e6 * p("dynamodb", "write_request_units_per_million"),
    );
    simple(
        "DynamoDB",
        "read request units (on demand)",
        usage.dynamodb_reads,
        "RRU",
        usage.dynamodb_reads / 1e6 * p("dynamodb", "read_request_units_per_million"),
    );
    simple(
        "S3",
        "PUT, COPY, POST, LIST requests",
        usage.s3_put_class,
        "requests",
        take(&mut free_put, usage.s3_put_class) / 1000.0 * p("s3", "put_class_per_thousand"),
    );
    simple(
        "S3",
        "GET and other requests",
        usage.s3_get_class,
        "requests",
        take(&mut free_get, usage.s3_get_class) / 1000.0 * p("s3", "get_class_per_thousand"),
    );
    simple(
        "SQS",
        "requests (standard queue rate)",
        usage.sqs_requests,
        "requests",
        take(&mut free_sqs, usage.sqs_requests) / 1e6 * p("sqs", "requests_per_million"),
    );
    simple(
        "SNS",
        "publishes",
        usage.sns_publishes,
        "requests",
        take(&mut free_sns, usage.sns_publishes) / 1e6 * p("sns", "publishes_per_million"),
    );
    simple(
        "Secrets Manager",
        "API calls",
        usage.secrets_api_calls,
        "calls",
        usage.secrets_api_calls / 1e4 * p("secretsmanager", "api_calls_per_ten_thousand"),
    );
    simple(
        "Secrets Manager",
        "secrets stored",
        usage.secret_months,
        "secret-months",
        usage.secret_months * p("secretsmanager", "secret_per_month"),
    );
    let total = lines.iter().map(|l| l.cost).sum();
    Estimate { lines, total }
}

/// The S3 operations S3 bills at the PUT/COPY/POST/LIST rate; the rest at the GET rate.
pub fn s3_put_class(operation: &str) -> bool {
    operation.starts_with("Put")
        || operation.starts_with("List")
        || matches!(
            operation,
            "CopyObject"
                | "PostObject"
                | "UploadPart"
                | "CreateMultipartUpload"
                | "CompleteMultipartUpload"
                | "CreateBucket"
        )
}

/// DynamoDB operations that consume write units (the rest read); transactions cost twice.
pub fn dynamodb_units(operation: &str) -> (f64, f64) {
    match operation {
        "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" => (0.0, 1.0),
        "TransactWriteItems" => (0.0, 2.0),
        "TransactGetItems" => (2.0, 0.0),
        "GetItem" | "Query" | "Scan" | "BatchGetItem" => (1.0, 0.0),
        _ => (0.0, 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices() -> Prices {
        Prices::parse(include_str!("../../nimbus/prices/us-east-1.json")).unwrap()
    }

    #[test]
    fn lambda_requests_and_gb_seconds_as_aws_bills_them() {
        let usage = Usage {
            functions: vec![("f".into(), 100.0, 100.0 * 12.0, 128, false)],
            apis: vec![("Api".into(), 1_000.0, true)],
            s3_put_class: 10.0,
            sqs_requests: 2_000_000.0,
            sns_publishes: 10.0,
            secrets_api_calls: 20_000.0,
            s3_storage: vec![(
                "b".into(),
                gb_months(2.0 * f64::from(1u32 << 30) * MONTH_SECONDS),
            )],
            secret_months: 0.5,
            express_billed_ms: 3_600_000.0 * 16.0,
            ..Usage::default()
        };
        let e = estimate(&usage, &prices(), false);
        let cost = |item: &str| {
            e.lines
                .iter()
                .find(|l| l.item.starts_with(item))
                .unwrap()
                .cost
        };
        assert!((cost("requests") - 100.0 * 0.20 / 1e6).abs() < 1e-12);
        // 1.2 s at 128 MB = 0.15 GB-s.
        assert!((cost("duration") - 0.15 * 0.0000166667).abs() < 1e-12);
        assert!((cost("REST") - 1_000.0 * 3.5 / 1e6).abs() < 1e-12);
        assert!((cost("PUT") - 10.0 * 0.005 / 1000.0).abs() < 1e-12);
        assert!((cost("requests (standard") - 2.0 * 0.40).abs() < 1e-12);
        assert!((cost("publishes") - 10.0 * 0.50 / 1e6).abs() < 1e-12);
        assert!((cost("API calls") - 2.0 * 0.05).abs() < 1e-12);
        // 2 GiB held for a 30-day month.
        assert!((cost("storage") - 2.0 * 0.023).abs() < 1e-12);
        assert!((cost("secrets stored") - 0.5 * 0.40).abs() < 1e-12);
        // 16 hours at 64 MB is one GB-hour.
        assert!((cost("Express duration") - 0.06).abs() < 1e-12);
        let total: f64 = e.lines.iter().map(|l| l.cost).sum();
        assert_eq!(e.total, total);
        // The free tier covers all of it (S3's 5 GB-months too) but SQS's second million,
        // Secrets Manager (which has no free tier beyond a 30-day trial) and Express duration.
        let free = estimate(&usage, &prices(), true);
        assert!(
            (free.total - (0.40 + 0.10 + 0.20 + 0.06)).abs() < 1e-12,
            "{free:?}"
        );
    }

    #[test]
    fn a_price_file_missing_a_figure_is_refused_naming_it() {
        let mut doc: Value =
            serde_json::from_str(include_str!("../../nimbus/prices/us-east-1.json")).unwrap();
        doc["lambda"]
            .as_object_mut()
            .unwrap()
            .remove("gb_second_arm64");
        assert_eq!(
            Prices::parse(&doc.to_string()).unwrap_err(),
            "lambda.gb_second_arm64 (a non-negative number) is missing"
        );
        doc["lambda"].as_object_mut().unwrap().remove("source");
        assert!(Prices::parse(&doc.to_string())
            .unwrap_err()
            .contains("lambda.source"));
        assert!(Prices::parse("{}").unwrap_err().contains("version"));
    }
}
