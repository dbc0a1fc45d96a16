//! `AWS::Serverless::Function` and `AWS::Lambda::Function` into [`Function`], with Lambda's
//! defaults and limits.

use std::collections::BTreeMap;

use crate::diag::{child, index, Diags};
use crate::model::{Code, Function};
use crate::resolve::Decl;
use crate::yaml::{Kind, Node, Pos};

/// Lambda's limit for all environment variable names and values together.
const ENV_LIMIT_BYTES: usize = 4096;

/// Names Lambda sets itself and refuses in a function's configuration.
pub const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

const IMAGE_UNSUPPORTED: &str =
    "container image functions are not supported; package the function as a zip (PackageType: Zip)";

/// Reads one function. `None` when it has errors (all of them reported).
pub(crate) fn build(
    decl: &Decl,
    name: String,
    props: &Node,
    metadata: &Node,
    diags: &mut Diags,
) -> Option<Function> {
    let id = &decl.logical_id;
    let base = format!("Resources.{id}.Properties");
    let mut r = Reader {
        diags,
        base: &base,
        props,
        ok: true,
    };
    let serverless = decl.resource_type == "AWS::Serverless::Function";

    if let Some(n) = props.get("FunctionName") {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid && !n.is_invalid() {
            r.error(
                "FunctionName",
                n.pos,
                format!(
                    "function name {name:?} is invalid: use 1 to 64 letters, digits, hyphens or \
                     underscores"
                ),
            );
        }
    }
    // Nothing else about an image function matters locally, so one message is enough.
    let image = props
        .entry("PackageType")
        .filter(|e| e.value.as_str() == Some("Image"))
        .or_else(|| props.entry("ImageUri"));
    if let Some(e) = image {
        r.error(&e.key, e.value.pos, IMAGE_UNSUPPORTED);
        return None;
    }

    let code = if serverless {
        serverless_code(&mut r)
    } else {
        lambda_code(&mut r, decl, metadata)
    };

    let runtime = r.string("Runtime");
    if runtime.is_none() && props.get("Runtime").is_none() {
        let hint = if serverless {
            " on the function or in Globals.Function"
        } else {
            ""
        };
        r.error_at_props(
            decl,
            format!("missing Runtime; set it{hint}, e.g. \"Runtime: provided.al2023\""),
        );
    }
    let handler = r.string("Handler");
    if let (Some(rt), None, None) = (&runtime, &handler, props.get("Handler")) {
        // OS-only runtimes run a `bootstrap` executable; every other runtime needs to know
        // which function in the code to call.
        if !rt.starts_with("provided") {
            let example = if rt.starts_with("nodejs") {
                "index.handler"
            } else {
                "app.handler"
            };
            r.error_at_props(
                decl,
                format!("missing Handler; runtime {rt} needs one, e.g. \"Handler: {example}\""),
            );
        }
    }

    let memory_size = r
        .integer("MemorySize", 128, Some(10240), " (MB)")
        .unwrap_or(128);
    let timeout = r
        .integer("Timeout", 1, Some(900), " (seconds)")
        .unwrap_or(3);
    let reserved_concurrent_executions = r.integer("ReservedConcurrentExecutions", 0, None, "");
    let environment = environment(&mut r);
    let architectures = architectures(&mut r);
    let auto_publish_alias = if serverless {
        r.string("AutoPublishAlias")
    } else {
        None
    };

    let mut provisioned_concurrency = None;
    if serverless {
        if let Some(pc) = props.get("ProvisionedConcurrencyConfig") {
            let path = child(&base, "ProvisionedConcurrencyConfig");
            match pc.get("ProvisionedConcurrentExecutions") {
                Some(n) => {
                    provisioned_concurrency = integer(
                        r.diags,
                        n,
                        &child(&path, "ProvisionedConcurrentExecutions"),
                        1,
                        None,
                        "",
                    );
                    r.ok &= provisioned_concurrency.is_some() || n.is_invalid();
                }
                None if !pc.is_invalid() => {
                    r.error(
                        "ProvisionedConcurrencyConfig",
                        pc.pos,
                        "missing ProvisionedConcurrentExecutions in ProvisionedConcurrencyConfig",
                    );
                }
                None => {}
            }
            if props.get("AutoPublishAlias").is_none() {
                r.error(
                    "ProvisionedConcurrencyConfig",
                    pc.pos,
                    "ProvisionedConcurrencyConfig needs AutoPublishAlias: provisioned concurrency \
                     is set on an alias",
                );
            }
        }
    }

    let tracing = if serverless {
        r.one_of("Tracing", &["Active", "PassThrough", "Disabled"])
    } else {
        match props.get("TracingConfig") {
            Some(tc) => {
                let tpath = child(&base, "TracingConfig");
                let mut sub = Reader {
                    diags: r.diags,
                    base: &tpath,
                    props: tc,
                    ok: true,
                };
                let v = sub.one_of("Mode", &["Active", "PassThrough"]);
                r.ok &= sub.ok;
                v
            }
            None => None,
        }
    };

    let events = if serverless {
        events(&mut r)
    } else {
        BTreeMap::new()
    };

    let meta_path = format!("Resources.{id}.Metadata");
    let mut m = Reader {
        diags: r.diags,
        base: &meta_path,
        props: metadata,
        ok: true,
    };
    let build_method = m.string("BuildMethod");
    let build_binary = match metadata.get("BuildProperties") {
        Some(bp) => {
            let bpath = child(&meta_path, "BuildProperties");
            let mut b = Reader {
                diags: m.diags,
                base: &bpath,
                props: bp,
                ok: true,
            };
            let v = b.string("Binary");
            m.ok &= b.ok;
            v
        }
        None => None,
    };
    r.ok &= m.ok;
    let layers = layers(&mut r);

    if !r.ok {
        return None;
    }
    Some(Function {
        logical_id: id.clone(),
        name,
        runtime: runtime?,
        handler,
        code: code?,
        memory_size,
        timeout,
        environment,
        reserved_concurrent_executions,
        provisioned_concurrency,
        architectures,
        build_method,
        build_binary,
        layers,
        metadata: metadata.to_json(),
        auto_publish_alias,
        tracing,
        events,
        properties: props.to_json(),
        line: decl.key_pos.line,
        property_lines: crate::yaml::key_lines(props),
    })
}

/// Reads typed properties out of a resolved map, reporting each problem once.
struct Reader<'r> {
    diags: &'r mut Diags,
    base: &'r str,
    props: &'r Node,
    ok: bool,
}

impl Reader<'_> {
    fn error(&mut self, key: &str, pos: Pos, message: impl Into<String>) {
        self.ok = false;
        self.diags.error(&child(self.base, key), pos, message);
    }

    fn error_at_props(&mut self, decl: &Decl, message: String) {
        self.ok = false;
        self.diags.error(self.base, decl.properties_pos, message);
    }

    fn string(&mut self, key: &str) -> Option<String> {
        let n = self.props.get(key)?;
        match &n.kind {
            Kind::String(s) => Some(s.clone()),
            Kind::Invalid => {
                self.ok = false;
                None
            }
            _ => {
                self.error(
                    key,
                    n.pos,
                    format!("expected a string, got {}", n.describe()),
                );
                None
            }
        }
    }

    fn one_of(&mut self, key: &str, allowed: &[&str]) -> Option<String> {
        let v = self.string(key)?;
        if allowed.contains(&v.as_str()) {
            return Some(v);
        }
        let pos = self.props.get(key).map_or(Pos::default(), |n| n.pos);
        self.error(
            key,
            pos,
            format!("expected one of {}, got {v:?}", allowed.join(", ")),
        );
        None
    }

    fn integer(&mut self, key: &str, min: i64, max: Option<i64>, unit: &str) -> Option<u32> {
        let n = self.props.get(key)?;
        let v = integer(self.diags, n, &child(self.base, key), min, max, unit);
        self.ok &= v.is_some();
        v
    }
}

/// An integer property; CloudFormation also takes numeric strings (which is what `Ref` to a
/// `Number` parameter gives).
fn integer(
    diags: &mut Diags,
    n: &Node,
    path: &str,
    min: i64,
    max: Option<i64>,
    unit: &str,
) -> Option<u32> {
    let value = match &n.kind {
        Kind::Invalid => return None,
        Kind::Number(num) => num.as_i64(),
        Kind::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match value {
        Some(v) if v >= min && max.is_none_or(|m| v <= m) => u32::try_from(v).ok(),
        _ => {
            let range = match max {
                Some(max) => format!("an integer between {min} and {max}{unit}"),
                None => format!("an integer of {min} or more{unit}"),
            };
            diags.error(
                path,
                n.pos,
                format!("expected {range}, got {}", n.describe()),
            );
            None
        }
    }
}

const S3_UNSUPPORTED: &str = "points at S3, which nimbus cannot read";

fn serverless_code(r: &mut Reader<'_>) -> Option<Code> {
    let uri = r.props.get("CodeUri");
    let inline = r.props.get("InlineCode");
    if let (Some(_), Some(i)) = (uri, inline) {
        r.error(
            "InlineCode",
            i.pos,
            "set either CodeUri or InlineCode, not both",
        );
        return None;
    }
    if inline.is_some() {
        return r.string("InlineCode").map(Code::Inline);
    }
    let Some(uri) = uri else {
        // SAM CLI builds a function without CodeUri from the template's own folder.
        return Some(Code::Uri(".".into()));
    };
    match &uri.kind {
        Kind::String(s) if s.starts_with("s3://") => {
            r.error(
                "CodeUri",
                uri.pos,
                format!(
                    "CodeUri {s:?} {S3_UNSUPPORTED}; use a local path, e.g. \"CodeUri: ./hello\""
                ),
            );
            None
        }
        Kind::Map(_) => {
            r.error(
                "CodeUri",
                uri.pos,
                format!("CodeUri with Bucket and Key {S3_UNSUPPORTED}; use a local path, e.g. \"CodeUri: ./hello\""),
            );
            None
        }
        _ => r.string("CodeUri").map(Code::Uri),
    }
}

/// The local folder CDK (and `sam build`) record for an asset in `Metadata`: what
/// `sam local` runs instead of the S3 object the template names.
pub(crate) fn asset_path(metadata: &Node) -> Option<String> {
    metadata
        .get("aws:asset:path")
        .and_then(|n| n.as_str().map(str::to_owned))
}

fn lambda_code(r: &mut Reader<'_>, decl: &Decl, metadata: &Node) -> Option<Code> {
    let Some(code) = r.props.get("Code") else {
        r.error_at_props(
            decl,
            "missing Code; inline the code with Code.ZipFile".into(),
        );
        return None;
    };
    if code.is_invalid() {
        r.ok = false;
        return None;
    }
    let base = child(r.base, "Code");
    if let Some(n) = code.get("ImageUri") {
        r.diags
            .error(&child(&base, "ImageUri"), n.pos, IMAGE_UNSUPPORTED);
        r.ok = false;
        return None;
    }
    if code.get("S3Key").is_some() || code.get("S3Bucket").is_some() {
        if let Some(asset) = asset_path(metadata) {
            return Some(Code::Uri(asset));
        }
    }
    for key in ["S3Key", "S3Bucket"] {
        if let Some(n) = code.get(key) {
            r.diags.error(
                &child(&base, key),
                n.pos,
                format!(
                    "Code.{key} {S3_UNSUPPORTED}; inline the code with Code.ZipFile, point \
                     Metadata.aws:asset:path at the code's local folder (as CDK does), or use an \
                     AWS::Serverless::Function with a local CodeUri"
                ),
            );
            r.ok = false;
            return None;
        }
    }
    let mut sub = Reader {
        diags: r.diags,
        base: &base,
        props: code,
        ok: true,
    };
    let zip = sub.string("ZipFile");
    r.ok &= sub.ok;
    if zip.is_none() && code.get("ZipFile").is_none() {
        r.error(
            "Code",
            code.pos,
            "expected Code.ZipFile with the function's source",
        );
    }
    zip.map(Code::Inline)
}

/// `Layers`: a list of layer version ARNs, at most five, as Lambda allows.
fn layers(r: &mut Reader<'_>) -> Vec<String> {
    let Some(list) = r.props.get("Layers") else {
        return Vec::new();
    };
    let Kind::Seq(items) = &list.kind else {
        if !list.is_invalid() {
            r.error(
                "Layers",
                list.pos,
                format!("expected a list of layer ARNs, got {}", list.describe()),
            );
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match &item.kind {
            Kind::String(s) => out.push(s.clone()),
            Kind::Invalid => r.ok = false,
            _ => r.error(
                &index("Layers", i),
                item.pos,
                format!("expected a layer version ARN, got {}", item.describe()),
            ),
        }
    }
    if out.len() > 5 {
        r.error(
            "Layers",
            list.pos,
            format!("a function can use at most 5 layers, got {}", out.len()),
        );
    }
    out
}

fn environment(r: &mut Reader<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(env) = r.props.get("Environment") else {
        return out;
    };
    let path = child(r.base, "Environment");
    let Some(vars) = env.get("Variables") else {
        if env.entries().is_none() && !env.is_invalid() {
            r.error(
                "Environment",
                env.pos,
                format!("expected a map with Variables, got {}", env.describe()),
            );
        }
        return out;
    };
    let vpath = child(&path, "Variables");
    let Some(entries) = vars.entries() else {
        if !vars.is_invalid() && !matches!(vars.kind, Kind::Null) {
            r.ok = false;
            r.diags.error(
                &vpath,
                vars.pos,
                format!("expected a map of names to values, got {}", vars.describe()),
            );
        }
        return out;
    };
    let mut total = 0;
    for e in entries {
        let p = child(&vpath, &e.key);
        let mut chars = e.key.chars();
        let valid_name = e.key.len() >= 2
            && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            r.ok = false;
            r.diags.error(
                &p,
                e.key_pos,
                format!(
                    "environment variable name {:?} is invalid: Lambda needs at least 2 characters, \
                     a letter first, then letters, digits or underscores",
                    e.key
                ),
            );
        } else if RESERVED_ENV.contains(&e.key.as_str()) {
            r.ok = false;
            r.diags.error(
                &p,
                e.key_pos,
                format!("environment variable {} is reserved: Lambda sets it itself; choose another name", e.key),
            );
        }
        match e.value.scalar_text() {
            Some(v) => {
                total += e.key.len() + v.len();
                out.insert(e.key.clone(), v);
            }
            None if e.value.is_invalid() => r.ok = false,
            None => {
                r.ok = false;
                r.diags.error(
                    &p,
                    e.value.pos,
                    format!("expected a string value, got {}", e.value.describe()),
                );
            }
        }
    }
    if total > ENV_LIMIT_BYTES {
        r.ok = false;
        r.diags.error(
            &vpath,
            vars.pos,
            format!(
                "environment variables take {total} bytes; Lambda allows 4 KB ({ENV_LIMIT_BYTES} \
                 bytes) for all names and values together"
            ),
        );
    }
    out
}

fn architectures(r: &mut Reader<'_>) -> Vec<String> {
    let default = vec!["x86_64".to_string()];
    let Some(n) = r.props.get("Architectures") else {
        return default;
    };
    let path = child(r.base, "Architectures");
    match n.as_seq() {
        Some([one]) => match one.as_str() {
            Some(a @ ("x86_64" | "arm64")) => return vec![a.to_string()],
            _ if one.is_invalid() => {}
            _ => r.diags.error(
                &index(&path, 0),
                one.pos,
                format!("expected x86_64 or arm64, got {}", one.describe()),
            ),
        },
        _ if n.is_invalid() => {}
        _ => r.diags.error(
            &path,
            n.pos,
            format!(
                "expected a list of exactly one architecture, [x86_64] or [arm64], got {}",
                n.describe()
            ),
        ),
    }
    r.ok = false;
    default
}

fn events(r: &mut Reader<'_>) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    let Some(n) = r.props.get("Events") else {
        return out;
    };
    let path = child(r.base, "Events");
    let Some(entries) = n.entries() else {
        if !n.is_invalid() && !matches!(n.kind, Kind::Null) {
            r.error(
                "Events",
                n.pos,
                format!("expected a map of events, got {}", n.describe()),
            );
        }
        return out;
    };
    for e in entries {
        let p = child(&path, &e.key);
        match e.value.get("Type") {
            Some(t) if t.as_str().is_some() => {}
            Some(t) => {
                r.ok = false;
                r.diags.error(
                    &child(&p, "Type"),
                    t.pos,
                    format!(
                        "expected an event type such as Api or SQS, got {}",
                        t.describe()
                    ),
                );
            }
            None if e.value.is_invalid() => {}
            None => {
                r.ok = false;
                r.diags
                    .error(&p, e.key_pos, "missing Type; add e.g. \"Type: Api\"");
            }
        }
        out.insert(e.key.clone(), e.value.to_json());
    }
    out
}
