//! `nimbus up` and `nimbus validate`: template in, a served system out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use nimbus_lambda::launch::{self, PrepareOptions, PythonRuntime};
use nimbus_lambda::{FunctionSpec, LogFormat, LogSink, Platform, PlatformConfig};
use nimbus_template::{LoadOptions, Stack};

use crate::cli::{LogFormatArg, PythonRuntimeArg, TemplateArgs, UpArgs};
use crate::samconfig::Settings;

/// Reads and resolves the template, printing every error and warning with its location.
/// `endpoint`: nimbus's AWS endpoint when starting (`None` for `validate`).
/// `state_dir`: where nimbus's Parameter Store is, which `AWS::SSM::Parameter::Value<...>`
/// parameters read.
fn load(
    args: &TemplateArgs,
    endpoint: Option<&str>,
    state_dir: Option<&Path>,
) -> anyhow::Result<Option<(Stack, Settings)>> {
    let starting = endpoint.is_some();
    let source = std::fs::read_to_string(&args.template)
        .with_context(|| format!("cannot read template {}", args.template.display()))?;
    let settings = crate::samconfig::settings(args)?;
    if let Some(file) = &settings.file {
        eprintln!(
            "nimbus: using {} (environment {})",
            file.display(),
            args.config_env
        );
    }
    let mut opts = LoadOptions {
        parameter_overrides: settings.parameter_overrides.clone(),
        region: settings.region.clone(),
        stack_name: settings.stack_name.clone(),
        strict: args.strict,
        import_values: args.import_values.iter().cloned().collect(),
        endpoint_url: endpoint.unwrap_or("http://127.0.0.1:4566").to_owned(),
        include: Some(include_reader(template_dir(&args.template))),
        parameter_store: state_dir.map(|d| parameter_store_reader(d, &settings.region)),
        ..LoadOptions::default()
    };
    let file = args.template.display().to_string();
    let mut loaded = nimbus_template::load(&source, &file, &opts);
    // In a terminal, ask for what nobody gave a value, as `sam deploy --guided` does; the
    // answers are loaded again with the others.
    if let (true, Ok(stack)) = (starting, &loaded) {
        let asked = ask_for_placeholders(stack);
        if !asked.is_empty() {
            opts.parameter_overrides.extend(asked);
            loaded = nimbus_template::load(&source, &file, &opts);
        }
    }
    match loaded {
        Ok(stack) => {
            for w in &stack.warnings {
                eprintln!("warning: {w}");
            }
            Ok(Some((stack, settings)))
        }
        Err(errors) => {
            for w in &errors.warnings {
                eprintln!("warning: {w}");
            }
            for e in &errors.errors {
                eprintln!("error: {e}");
            }
            let outcome = if starting {
                "; nothing was started"
            } else {
                ""
            };
            eprintln!("{}: {} error(s){outcome}", file, errors.errors.len());
            Ok(None)
        }
    }
}

/// Values typed for the parameters that got placeholders, when standard input is a terminal.
/// An empty answer keeps the placeholder; a NoEcho parameter is read without echo.
fn ask_for_placeholders(stack: &Stack) -> Vec<(String, String)> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Vec::new();
    }
    let mut answers = Vec::new();
    for (name, p) in stack.parameters.iter().filter(|(_, p)| p.placeholder) {
        let shown = if p.no_echo {
            "hidden".to_owned()
        } else {
            p.value.to_string()
        };
        eprint!(
            "Parameter {name} has no value; enter one (Enter keeps the placeholder, {shown}): "
        );
        let _ = std::io::stderr().flush();
        let echo_off = p.no_echo.then(no_echo);
        let mut line = String::new();
        let read = stdin.lock().read_line(&mut line);
        drop(echo_off);
        if p.no_echo {
            eprintln!();
        }
        let value = line.trim_end_matches(['\r', '\n']);
        if read.is_ok_and(|n| n > 0) && !value.is_empty() {
            answers.push((name.clone(), value.to_owned()));
        }
    }
    answers
}

/// Turns the terminal's echo off until dropped, for a NoEcho parameter's value.
fn no_echo() -> Option<impl Drop> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg, Termios};
    struct Restore(Termios);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.0);
        }
    }
    let saved = tcgetattr(std::io::stdin()).ok()?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(std::io::stdin(), SetArg::TCSANOW, &quiet).ok()?;
    Some(Restore(saved))
}

/// What `validate` prints for a template that does not hold together.
fn invalid(template: &Path, errors: &[String]) -> ExitCode {
    for e in errors {
        eprintln!("error: {}: {e}", template.display());
    }
    eprintln!("{}: {} error(s)", template.display(), errors.len());
    ExitCode::FAILURE
}

pub fn validate(args: &TemplateArgs) -> anyhow::Result<ExitCode> {
    let state_dir = default_state_dir(&args.template);
    let Some((stack, _)) = load(args, None, Some(&state_dir))? else {
        return Ok(ExitCode::FAILURE);
    };
    // The APIs are checked as `up` would check them (no key is generated here).
    let mut stack = stack;
    if let Err(errors) = crate::definitions::inline(&mut stack, &template_dir(&args.template)) {
        return Ok(invalid(&args.template, &errors));
    }
    let apis = match nimbus_gateway::config::apis(&stack, &mut String::new) {
        Ok(apis) => apis,
        Err(errors) => return Ok(invalid(&args.template, &errors)),
    };
    let tables = match template_tables(&stack) {
        Ok(t) => t,
        Err(errors) => return Ok(invalid(&args.template, &errors)),
    };
    let parameters = match template_parameters(&stack) {
        Ok(p) => p,
        Err(errors) => return Ok(invalid(&args.template, &errors)),
    };
    let secrets = match template_secrets(&stack, "us-east-1", "123456789012") {
        Ok(s) => s,
        Err(errors) => return Ok(invalid(&args.template, &errors)),
    };
    let (topics, subscriptions) = match template_sns(&stack, "us-east-1", "123456789012") {
        Ok(t) => t,
        Err(errors) => return Ok(invalid(&args.template, &errors)),
    };
    if let Err(errors) = nimbus_s3::template_buckets(&stack) {
        return Ok(invalid(&args.template, &errors));
    }
    let machines = match crate::states::template_machines(
        &stack,
        &template_dir(&args.template),
        "123456789012",
    ) {
        Ok(m) => m,
        Err(errors) => return Ok(invalid(&args.template, &errors)),
    };
    let machine_errors: Vec<String> = machines
        .iter()
        .filter_map(|m| {
            nimbus_sfn::asl::parse(&m.definition).err().map(|d| {
                format!(
                    "state machine {}: {}",
                    m.name,
                    nimbus_sfn::asl::invalid_definition_message(&d)
                )
            })
        })
        .collect();
    if !machine_errors.is_empty() {
        return Ok(invalid(&args.template, &machine_errors));
    }
    let streams = tables
        .iter()
        .filter(|t| t.stream.is_some())
        .map(|t| t.name.clone())
        .collect();
    let events = match events_spec(&stack, None, &streams) {
        Ok(spec) => spec,
        Err(errors) => return Ok(invalid(&args.template, &errors)),
    };
    let alarms: Vec<String> = events.alarms.iter().map(|a| a.name.clone()).collect();
    if let Err(errors) = crate::release::Plan::read(&stack, &args.template, &alarms) {
        // These name the template and line themselves.
        for e in &errors {
            eprintln!("error: {e}");
        }
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "{}: valid; {} function(s), {} resource(s), {} warning(s)",
        args.template.display(),
        stack.functions.len(),
        stack.resources.len(),
        stack.warnings.len()
    );
    for f in &stack.functions {
        println!(
            "  {:<24} {:<16} {:>5} MB {:>4} s  {}",
            f.name,
            f.runtime,
            f.memory_size,
            f.timeout,
            f.handler.as_deref().unwrap_or("-")
        );
    }
    for api in &apis {
        for note in &api.notes {
            eprintln!("warning: {}: {note}", args.template.display());
        }
        println!("  API {} (stage {})", api.logical_id, api.stage);
        for r in &api.routes {
            println!("    {} -> {}", r.key(), r.function);
        }
    }
    for m in &machines {
        println!("  state machine {} ({})", m.name, m.kind);
    }
    for r in &events.rules {
        println!(
            "  rule {} on bus {} ({} target(s))",
            r.name,
            r.bus,
            r.targets.len()
        );
    }
    for m in &events.mappings {
        println!("  event source mapping {} -> {}", m.queue, m.function);
    }
    for p in &parameters {
        println!("  SSM parameter {} ({})", p.name, p.kind);
    }
    for s in &secrets {
        println!("  secret {}", s.name);
    }
    for t in &topics {
        println!("  SNS topic {}", t.name);
    }
    for s in &subscriptions {
        println!(
            "  SNS subscription {} -> {} {}",
            s.topic_arn, s.protocol, s.endpoint
        );
    }
    for t in &tables {
        let stream = t
            .stream
            .as_deref()
            .map(|v| format!(", stream {v}"))
            .unwrap_or_default();
        println!(
            "  DynamoDB table {} ({} GSI(s), {} LSI(s){stream})",
            t.name,
            t.gsis.len(),
            t.lsis.len()
        );
    }
    for m in &events.stream_mappings {
        println!("  stream {} -> {}", m.table, m.function);
    }
    if !stack.not_emulated.is_empty() {
        let list: Vec<String> = stack
            .not_emulated
            .iter()
            .map(|(id, ty)| format!("{id} ({ty})"))
            .collect();
        println!(
            "  accepted, not emulated (a local run needs nothing from them): {}",
            list.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn template_dir(template: &Path) -> PathBuf {
    match template.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `.nimbus/` beside the template.
/// Reads `AWS::Include` files relative to the template's folder, as `sam` packages them.
fn include_reader(dir: PathBuf) -> nimbus_template::Reader {
    // A snippet is a piece of a template, which CloudFormation caps at 1 MB; 10 MB leaves room
    // for a large OpenAPI document and still bounds what is read.
    const MAX_INCLUDE: u64 = 10 << 20;
    nimbus_template::Reader(Arc::new(move |location: &str| {
        use std::io::Read;
        let path = dir.join(location);
        // Read through a limit, not by the file's stated size: a FIFO or a /proc file says 0.
        let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut text = String::new();
        file.take(MAX_INCLUDE + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if text.len() as u64 > MAX_INCLUDE {
            return Err(format!(
                "{} is over the {MAX_INCLUDE} bytes nimbus reads",
                path.display()
            ));
        }
        Ok(text)
    }))
}

/// Reads nimbus's Parameter Store (`<state-dir>/ssm.db`) when it exists: a first run, or
/// `validate` before any, has none, and reading must not create it.
fn parameter_store_reader(state_dir: &Path, region: &str) -> nimbus_template::Reader {
    let path = state_dir.join("ssm.db");
    let config = nimbus_ssm::SsmConfig {
        region: region.to_owned(),
        account: LoadOptions::default().account_id,
    };
    nimbus_template::Reader(Arc::new(move |name: &str| {
        if !path.exists() {
            return Err("no Parameter Store yet".into());
        }
        let store = nimbus_ssm::ParameterStore::open(Some(&path), config.clone())
            .map_err(|e| e.to_string())?;
        let input = serde_json::json!({"Name": name});
        let out = store
            .dispatch("GetParameter", &input, nimbus_events::now_ms())
            .map_err(|e| e.to_string())?;
        // CloudFormation refuses a SecureString here, so its value never enters a stack.
        if out["Parameter"]["Type"] == "SecureString" {
            return Err(format!(
                "{name} is a SecureString, which an AWS::SSM::Parameter::Value parameter cannot read"
            ));
        }
        out["Parameter"]["Value"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "no value".into())
    }))
}

pub fn default_state_dir(template: &std::path::Path) -> PathBuf {
    template_dir(template).join(".nimbus")
}

pub async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    // The endpoint is known before the template is read: queue URLs in it name the endpoint.
    let listener = tokio::net::TcpListener::bind((args.host, args.aws_port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{}; is another nimbus running? choose another port with --aws-port",
                args.host, args.aws_port
            )
        })?;
    let aws_addr = listener.local_addr()?;
    let endpoint = format!("http://{aws_addr}");
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| default_state_dir(&args.template.template));
    let Some((stack, settings)) = load(&args.template, Some(&endpoint), Some(&state_dir))? else {
        return Ok(ExitCode::FAILURE);
    };
    let template_dir = template_dir(&args.template.template);
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
    let state_dir = state_dir.canonicalize()?;
    let template_dir = template_dir.canonicalize()?;

    let prepare = PrepareOptions {
        template_dir,
        state_dir: state_dir.clone(),
        python_runtime: match args.python_runtime {
            PythonRuntimeArg::Builtin => PythonRuntime::Builtin,
            PythonRuntimeArg::Awslambdaric => PythonRuntime::Awslambdaric,
        },
        python: args.python.clone(),
        node: args.node.clone(),
        cache_dir: args
            .cache_dir
            .clone()
            .unwrap_or_else(PrepareOptions::default_cache_dir),
        layer_dirs: args.layers.clone(),
        generation: 0,
        cargo: std::env::var_os("CARGO")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("cargo")),
    };
    // Builds of an earlier run (and of its --watch generations) are made afresh.
    for dir in ["build", "code", "inline", "layers", "scratch"] {
        let _ = std::fs::remove_dir_all(state_dir.join(dir));
    }
    let mut config = PlatformConfig::new(state_dir.clone(), endpoint.clone());
    config.region = settings.region.clone();
    config.account_concurrency = args.account_concurrency;
    config.idle_timeout = Duration::from_secs(args.idle_timeout);

    let now = nimbus_events::now_ms();
    let (region, account) = (config.region.clone(), config.account_id.clone());
    let ssm_path = state_dir.join("ssm.db");
    let ssm = nimbus_ssm::ParameterStore::open(
        Some(&ssm_path),
        nimbus_ssm::SsmConfig {
            region: region.clone(),
            account: account.clone(),
        },
    )
    .with_context(|| format!("cannot open {}", ssm_path.display()))?;
    let parameters = match template_parameters(&stack)
        .and_then(|p| ssm.apply_template(&p, now).map_err(|e| vec![e.to_string()]))
    {
        Ok(p) => p,
        Err(errors) => return Ok(refused_early(&args.template.template, "parameter", &errors)),
    };
    let secrets_path = state_dir.join("secretsmanager.db");
    let secrets = nimbus_secrets::SecretsManager::open(
        Some(&secrets_path),
        nimbus_secrets::SecretsConfig {
            region: region.clone(),
            account: account.clone(),
        },
    )
    .with_context(|| format!("cannot open {}", secrets_path.display()))?;
    let template_secrets = match template_secrets(&stack, &region, &account).and_then(|s| {
        secrets
            .apply_template(&s, now)
            .map_err(|e| vec![e.to_string()])
    }) {
        Ok(s) => s,
        Err(errors) => return Ok(refused_early(&args.template.template, "secret", &errors)),
    };
    // Dynamic references in function environments, resolved as CloudFormation resolves them
    // at deployment: from the parameters and secrets as they are now.
    let mut stack = stack;
    let mut errors = Vec::new();
    for f in &mut stack.functions {
        for (key, value) in f.environment.iter_mut() {
            let at = format!("function {} Environment.Variables.{key}", f.name);
            match crate::dynref::resolve(value, &at, &ssm, &secrets, now) {
                Ok(v) => *value = v,
                Err(e) => errors.push(e),
            }
        }
    }
    if !errors.is_empty() {
        return Ok(refused_early(
            &args.template.template,
            "dynamic reference",
            &errors,
        ));
    }

    let machines = match crate::states::template_machines(&stack, &prepare.template_dir, &account) {
        Ok(m) => m,
        Err(errors) => {
            return Ok(refused_early(
                &args.template.template,
                "state machine",
                &errors,
            ))
        }
    };
    let mut new_key = || {
        use rand::distr::{Alphanumeric, SampleString};
        Alphanumeric.sample_string(&mut rand::rng(), 40)
    };
    if let Err(errors) = crate::definitions::inline(&mut stack, &prepare.template_dir) {
        for e in &errors {
            eprintln!("error: {}: {e}", args.template.template.display());
        }
        eprintln!("{} API error(s); nothing was started", errors.len());
        return Ok(ExitCode::FAILURE);
    }
    let apis = match nimbus_gateway::config::apis(&stack, &mut new_key) {
        Ok(apis) => {
            for note in apis.iter().flat_map(|a| &a.notes) {
                eprintln!("warning: {}: {note}", args.template.template.display());
            }
            apis
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {}: {e}", args.template.template.display());
            }
            eprintln!("{} API error(s); nothing was started", errors.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut api_listeners = Vec::new();
    for (i, api) in apis.iter().enumerate() {
        let port = if args.api_port == 0 {
            0
        } else {
            args.api_port.saturating_add(i as u16)
        };
        let listener = tokio::net::TcpListener::bind((args.host, port))
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}:{port} for API {}; choose other ports with --api-port",
                    args.host, api.logical_id
                )
            })?;
        api_listeners.push(listener);
    }

    // URLs of the stack's own APIs in function environments point at the local gateway.
    let bases: Vec<String> = api_listeners
        .iter()
        .map(|l| l.local_addr().map(|a| format!("http://{a}")))
        .collect::<Result<_, _>>()?;
    let local_apis: Vec<nimbus_core::local_url::LocalApi<'_>> = apis
        .iter()
        .zip(&bases)
        .map(|(api, base)| nimbus_core::local_url::LocalApi {
            id: &api.logical_id,
            stage: &api.stage,
            base,
        })
        .collect();

    let specs: Vec<FunctionSpec> = stack
        .functions
        .iter()
        .map(|f| {
            let launch = launch::prepare(f, &stack, &prepare).map_err(|e| {
                eprintln!("error: {e}");
                eprintln!("       {} will answer every invoke with Runtime.InvalidEntrypoint until this is fixed", f.name);
                e.to_string()
            });
            FunctionSpec {
                name: f.name.clone(),
                arn: nimbus_core::arn::function_arn(&config.region, &config.account_id, &f.name),
                runtime: f.runtime.clone(),
                handler: f.handler.clone(),
                memory_mb: f.memory_size,
                timeout: Duration::from_secs(u64::from(f.timeout)),
                environment: f
                    .environment
                    .iter()
                    .map(|(k, v)| {
                        let local =
                            nimbus_core::local_url::rewrite(v, &config.region, &local_apis);
                        (k.clone(), local.unwrap_or_else(|| v.clone()))
                    })
                    .collect(),
                reserved_concurrency: f.reserved_concurrent_executions,
                // With AutoPublishAlias, provisioned concurrency is the alias's (release.rs).
                provisioned_concurrency: match f.auto_publish_alias {
                    Some(_) => 0,
                    None => f.provisioned_concurrency.unwrap_or(0),
                },
                tracing_active: f.tracing.as_deref() == Some("Active"),
                version: "$LATEST".into(),
                description: f
                    .properties
                    .get("Description")
                    .and_then(|d| d.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                revision_id: nimbus_lambda::new_revision_id(),
                last_modified_ms: nimbus_lambda::epoch_ms(),
                launch,
            }
        })
        .collect();

    let log_format = match args.log_format {
        LogFormatArg::Text => LogFormat::Text,
        LogFormatArg::Json => LogFormat::Json,
    };
    let telemetry = Arc::new(nimbus_telemetry::Telemetry::with_seed(rand::random()));
    let otlp = crate::otlp::start(&telemetry.traces).map_err(|e| anyhow::anyhow!(e))?;
    if let (Some(_), Some((var, endpoint))) = (&otlp, crate::otlp::configured()) {
        println!("nimbus: exporting trace spans over OTLP to {endpoint} ({var})");
    }
    let logs = Arc::new(
        LogSink::new(
            log_format,
            Some(nimbus_lambda::logfile::log_dir(&state_dir)),
            true,
            Some(telemetry.clone()),
        )
        .context("cannot open the log directory")?,
    );
    let platform = Platform::new(config, specs, logs.clone(), telemetry)?;

    let limits = nimbus_gateway::server::AccountLimits {
        throttle: nimbus_gateway::config::Throttle {
            rate: args.account_rate,
            burst: args.account_burst,
        },
    };
    let db = state_dir.join("nimbus.db");
    let store = Arc::new(
        nimbus_store::Store::open(&db).with_context(|| format!("cannot open {}", db.display()))?,
    );
    let signals = nimbus_events::Signals::default();
    let sqs = nimbus_aws::Sqs::new(
        store.clone(),
        nimbus_aws::SqsConfig {
            endpoint: endpoint.clone(),
            region: platform.config().region.clone(),
            account: platform.config().account_id.clone(),
        },
        signals.clone(),
    );
    let queues = match template_queues(&stack, &store) {
        Ok(q) => q,
        Err(errors) => {
            return Ok(refuse(&platform, &args.template.template, "queue", &errors).await)
        }
    };
    let ddb_path = state_dir.join("dynamodb.db");
    let dynamodb = nimbus_dynamodb::DynamoDb::open(
        Some(&ddb_path),
        &nimbus_dynamodb::DdbConfig {
            region: platform.config().region.clone(),
            account: platform.config().account_id.clone(),
        },
    )
    .with_context(|| format!("cannot open {}", ddb_path.display()))?;
    let tables = match template_tables(&stack).and_then(|defs| {
        let mut errors = Vec::new();
        let mut names = Vec::new();
        for (id, def) in defs.into_iter().enumerate() {
            let name = def.name.clone();
            match dynamodb.ensure_table(def) {
                Ok(()) => names.push(name),
                Err(e) => errors.push(format!("table {name} (#{id}): {e}")),
            }
        }
        if errors.is_empty() {
            Ok(names)
        } else {
            Err(errors)
        }
    }) {
        Ok(t) => t,
        Err(errors) => {
            return Ok(refuse(&platform, &args.template.template, "table", &errors).await)
        }
    };
    let streams = dynamodb
        .table_names()
        .into_iter()
        .filter(|t| dynamodb.has_stream(t))
        .collect();
    let events = match events_spec(&stack, Some(&store), &streams) {
        Ok(spec) => spec,
        Err(errors) => {
            return Ok(refuse(&platform, &args.template.template, "event", &errors).await)
        }
    };
    let hub = nimbus_events::Hub::new(
        store.clone(),
        platform.clone(),
        nimbus_events::Settings {
            region: platform.config().region.clone(),
            account: platform.config().account_id.clone(),
            delay_scale: args.delay_scale,
        },
        signals,
        events,
    );
    // The chaos API's rules: AWS API faults (nimbus-aws), API route faults (the gateway) and
    // faults on functions' outbound calls (the egress proxy).
    let chaos = nimbus_aws::Chaos::default();
    let own: Vec<String> = bases
        .iter()
        .chain(std::iter::once(&endpoint))
        .map(|url| {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            rest.split('/').next().unwrap_or(rest).to_owned()
        })
        .collect();
    let egress = nimbus_aws::egress::start(
        (std::net::Ipv4Addr::LOCALHOST, 0).into(),
        chaos.clone(),
        platform.telemetry().clone(),
        own,
    )
    .await
    .context("cannot start the egress proxy")?;
    let egress_url = format!("http://{egress}");
    if args.egress_proxy {
        let _ = platform.config().egress_proxy.set(egress_url.clone());
    }
    {
        let platform = platform.clone();
        chaos.on_egress(move || {
            if platform.config().egress_proxy.set(egress_url.clone()).is_ok() {
                tracing::warn!(
                    proxy = %egress_url,
                    "chaos: egress rules need functions to use nimbus's egress proxy: their environments restart with it (cold starts follow; start nimbus with --egress-proxy to have it from the first start)"
                );
                platform.recycle_environments();
            }
        });
    }
    let codedeploy_path = state_dir.join("codedeploy.db");
    let deployments = nimbus_codedeploy::Deployments::open(
        Some(&codedeploy_path),
        platform.clone(),
        {
            let hub = hub.clone();
            std::sync::Arc::new(move |alarm: &str| hub.alarm_state(alarm).map(str::to_owned))
        },
        args.delay_scale,
    )
    .with_context(|| format!("cannot open {}", codedeploy_path.display()))?;
    let releases = {
        let alarms: Vec<String> = hub.alarms().map(|a| a.name.clone()).collect();
        match crate::release::Plan::read(&stack, &args.template.template, &alarms) {
            Ok(plan) => crate::release::Releases::new(plan, platform.clone(), deployments.clone()),
            Err(errors) => {
                for e in &errors {
                    eprintln!("error: {e}");
                }
                eprintln!(
                    "{} deployment preference error(s); nothing was started",
                    errors.len()
                );
                platform.shutdown(Duration::ZERO).await;
                return Ok(ExitCode::FAILURE);
            }
        }
    };
    let sns_path = state_dir.join("sns.db");
    let sns = nimbus_sns::Sns::open(
        Some(&sns_path),
        hub.clone(),
        nimbus_sns::SnsConfig {
            region: region.clone(),
            account: account.clone(),
            endpoint: endpoint.clone(),
        },
    )
    .with_context(|| format!("cannot open {}", sns_path.display()))?;
    {
        let sns = sns.clone();
        hub.set_topic_publisher(Box::new(move |topic, message, attributes| {
            sns.publish(topic, message, attributes)
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", e.code()))
        }));
    }
    {
        // A rule's log group target: each event in a stream named by its id, as EventBridge
        // writes them.
        let logs = Arc::clone(&logs);
        hub.set_log_writer(Box::new(move |group, event| {
            let id = serde_json::from_str::<serde_json::Value>(event)
                .ok()
                .and_then(|e| e["id"].as_str().map(str::to_owned))
                .filter(|id| nimbus_lambda::logfile::is_stream_name(id))
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            logs.try_group_line(group, &id, event.to_owned())
        }));
    }
    let topics = match template_sns(&stack, &region, &account)
        .and_then(|(t, s)| sns.apply_template(&t, &s).map_err(|e| vec![e.to_string()]))
    {
        Ok(t) => t,
        Err(errors) => {
            return Ok(refuse(&platform, &args.template.template, "topic", &errors).await)
        }
    };
    let s3 = nimbus_s3::S3::open(
        &state_dir,
        nimbus_s3::S3Config {
            region: region.clone(),
            account: account.clone(),
            day_ms: (86_400_000.0 * args.delay_scale) as u64,
        },
    )
    .with_context(|| format!("cannot open S3's state in {}", state_dir.display()))?;
    s3.set_hub(hub.clone());
    let buckets = match nimbus_s3::template_buckets(&stack).and_then(|b| {
        s3.apply_template(&b)
            .map(|()| b)
            .map_err(|e| vec![e.to_string()])
    }) {
        Ok(b) => b,
        Err(errors) => {
            return Ok(refuse(&platform, &args.template.template, "bucket", &errors).await)
        }
    };
    let sfn_path = state_dir.join("stepfunctions.db");
    let sfn = nimbus_sfn::StepFunctions::open(
        Some(&sfn_path),
        nimbus_sfn::SfnConfig {
            region: region.clone(),
            account: account.clone(),
            delay_scale: args.delay_scale,
        },
    )
    .with_context(|| format!("cannot open {}", sfn_path.display()))?;
    if let Err(errors) = sfn.apply_template(&machines) {
        let errors: Vec<String> = errors.lines().map(str::to_owned).collect();
        return Ok(refuse(&platform, &args.template.template, "state machine", &errors).await);
    }
    {
        let sfn = sfn.clone();
        hub.set_machine_starter(Box::new(move |machine, input| {
            sfn.start_now(machine, input)
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", e.code()))
        }));
    }
    sfn.set_telemetry(Arc::clone(platform.telemetry()));
    {
        let logs = Arc::clone(&logs);
        sfn.set_log_sink(Box::new(move |group, stream, line| {
            if let Err(e) = logs.try_group_line(group, stream, line) {
                tracing::warn!(error = %e, "a Step Functions log line was dropped");
            }
        }));
    }
    sfn.set_integrations(Arc::new(crate::states::NimbusTasks {
        platform: platform.clone(),
        sqs: sqs.clone(),
        hub: hub.clone(),
        dynamodb: dynamodb.clone(),
        sns: sns.clone(),
        ssm: ssm.clone(),
        secrets: secrets.clone(),
        s3: s3.clone(),
        local_apis: local_apis
            .iter()
            .map(|a| (a.id.to_owned(), a.stage.to_owned(), a.base.to_owned()))
            .collect(),
    }));

    let jwks_files = args.jwks.iter().cloned().collect();
    let aws_endpoint = Arc::new(std::sync::OnceLock::new());
    let services: Arc<dyn nimbus_gateway::service::Services> =
        Arc::new(crate::integrations::NimbusServices {
            sqs: sqs.clone(),
            hub: hub.clone(),
            sfn: sfn.clone(),
            chaos: chaos.clone(),
            aws: Arc::clone(&aws_endpoint),
            region: region.clone(),
        });
    let api_listeners = match nimbus_gateway::server::build(
        apis,
        &platform,
        &logs,
        limits,
        jwks_files,
        Some(services),
    ) {
        Ok(states) => states.into_iter().zip(api_listeners).collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("error: {}: {e}", args.template.template.display());
            platform.shutdown(Duration::ZERO).await;
            return Ok(ExitCode::FAILURE);
        }
    };

    platform.prewarm().await;

    println!("nimbus: AWS endpoint {endpoint}");
    println!(
        "nimbus: egress proxy http://{egress} (functions' outbound calls{}; chaos rules for \"egress\")",
        if args.egress_proxy {
            ", given to every function"
        } else {
            ", given to functions once an egress rule is set"
        }
    );
    println!("nimbus: state directory {}", state_dir.display());
    for f in platform.functions() {
        println!("nimbus: function {} ({})", f.name, f.runtime);
    }
    for m in &machines {
        println!("nimbus: state machine {} ({})", m.name, m.kind);
    }
    match sfn.resume() {
        Ok(0) => {}
        Ok(n) => println!("nimbus: {n} Step Functions execution(s) continue where they were"),
        Err(e) => eprintln!("warning: cannot continue the running Step Functions executions: {e}"),
    }
    for q in &queues {
        println!("nimbus: queue {q} {}", sqs.queue_url(q));
    }
    for t in &tables {
        println!("nimbus: DynamoDB table {t}");
    }
    // Names only: values never reach the console.
    for p in &parameters {
        println!("nimbus: SSM parameter {p}");
    }
    for t in &topics {
        println!("nimbus: SNS topic {t}");
    }
    for b in &buckets {
        println!("nimbus: S3 bucket {} {endpoint}/{}", b.name, b.name);
    }
    for (name, arn) in &template_secrets {
        println!("nimbus: secret {name} {arn}");
    }
    for m in hub.stream_mappings() {
        let state = if m.enabled { "" } else { " (disabled)" };
        println!("nimbus: stream {} -> {}{state}", m.table, m.function);
    }
    for r in hub.rules() {
        let on = match (&r.pattern_text, &r.schedule_expression) {
            (_, Some(s)) => s.clone(),
            (Some(p), None) => format!("pattern {p}"),
            (None, None) => String::new(),
        };
        let targets: Vec<String> = r.targets.iter().map(|t| format!("{:?}", t.dest)).collect();
        let state = if r.enabled { "" } else { " (disabled)" };
        println!(
            "nimbus: rule {} on bus {}{state}: {on} -> {}",
            r.name,
            r.bus,
            targets.join(", ")
        );
    }
    for a in hub.alarms() {
        println!(
            "nimbus: alarm {} on {} {} {} {} {} (period {} s)",
            a.name,
            a.namespace,
            a.metric,
            a.statistic.name(),
            a.evaluation.comparison.as_str(),
            a.evaluation.threshold,
            a.period_s
        );
    }
    for m in hub.mappings() {
        let state = if m.enabled { "" } else { " (disabled)" };
        println!(
            "nimbus: event source mapping {} -> {} (batch {}){state}",
            m.queue, m.function, m.batch_size
        );
    }
    if args.delay_scale != 1.0 {
        println!(
            "nimbus: retry and backoff delays scaled by {} (--delay-scale)",
            args.delay_scale
        );
    }
    hub.start()?;
    // SNS's HTTP/HTTPS subscriptions are POSTed through the gateway's outbound client (http
    // and https, system roots with Mozilla's as the fallback).
    sns.start_http_delivery(Arc::new(|r: nimbus_sns::HttpRequest| {
        Box::pin(async move {
            nimbus_gateway::outbound::send("POST", &r.url, &r.headers, r.body.into(), r.timeout)
                .await
                .map(|answer| answer.status.as_u16())
                .map_err(|failure| failure.why)
        })
    }));
    hub.start_streams(&dynamodb);
    match deployments.resume() {
        Ok(0) => {}
        Ok(n) => println!("nimbus: {n} deployment(s) running when nimbus stopped were rolled back"),
        Err(e) => eprintln!("warning: cannot read the deployments of the last run: {e}"),
    }
    releases.release_all().await;
    for (api, listener) in &api_listeners {
        let cfg = &api.config;
        let kind = match cfg.kind {
            nimbus_gateway::ApiKind::Rest => "REST API",
            nimbus_gateway::ApiKind::Http => "HTTP API",
        };
        println!(
            "nimbus: {kind} {} (stage {}) http://{}",
            cfg.logical_id,
            cfg.stage,
            listener.local_addr()?
        );
        for r in &cfg.routes {
            let key = if r.api_key_required {
                " (API key required)"
            } else {
                ""
            };
            println!("nimbus:   {} -> {}{key}", r.key(), r.function);
        }
        for plan in &cfg.usage_plans {
            for k in &plan.keys {
                if k.generated {
                    // Generated keys exist only in this run: the user needs the value to call.
                    println!(
                        "nimbus:   API key {} (usage plan {}): {}",
                        k.id, plan.id, k.value
                    );
                } else {
                    println!(
                        "nimbus:   API key {} (usage plan {}): value from the template",
                        k.id, plan.id
                    );
                }
            }
        }
    }
    let me = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "nimbus".into());
    println!(
        "nimbus: ready; try: {me} invoke <function> --payload '{{}}' --endpoint-url {endpoint}"
    );

    platform.telemetry().start_time.set(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    );
    let (shutdown, _) = tokio::sync::watch::channel(false);
    {
        // DynamoDB deletes expired items in the background, typically within days; locally
        // within seconds, so a test of TTL does not wait.
        let dynamodb = dynamodb.clone();
        let mut stop = shutdown.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let db = dynamodb.clone();
                match tokio::task::spawn_blocking(move || db.sweep_ttl()).await {
                    Ok(Err(e)) => tracing::error!(error = %e, "DynamoDB TTL sweep failed"),
                    Ok(Ok(n)) if n > 0 => {
                        tracing::info!(deleted = n, "DynamoDB TTL deleted expired items")
                    }
                    _ => {}
                }
            }
        });
    }
    {
        // Storage is billed by the month on what is held over time: sample it each second.
        let (s3, secrets, telemetry) = (s3.clone(), secrets.clone(), platform.telemetry().clone());
        let mut stop = shutdown.subscribe();
        tokio::spawn(async move {
            let mut last = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let (s3, secrets) = (s3.clone(), secrets.clone());
                let sample = tokio::task::spawn_blocking(move || {
                    (s3.stored_bytes(), secrets.billed_count())
                })
                .await;
                let now = tokio::time::Instant::now();
                let seconds = (now - last).as_secs_f64();
                last = now;
                match sample {
                    Ok((Ok(buckets), Ok(secrets))) => {
                        telemetry.record_stored(&buckets, secrets, seconds)
                    }
                    Ok((Err(e), _)) => tracing::warn!(error = %e, "cannot read S3's stored bytes"),
                    Ok((_, Err(e))) => tracing::warn!(error = %e, "cannot count secrets"),
                    Err(_) => {}
                }
            }
        });
    }
    {
        // S3 applies lifecycle rules in the background, once a day or so; locally about a
        // hundred times a (scaled) day, at least every second and at most every minute.
        let s3 = s3.clone();
        let every = Duration::from_millis((86_400_000.0 * args.delay_scale / 100.0) as u64)
            .clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut stop = shutdown.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                match s3.sweep_lifecycle(nimbus_events::now_ms() as i64).await {
                    Err(e) => tracing::error!(error = %e, "S3 lifecycle sweep failed"),
                    Ok(n) if n > 0 => {
                        tracing::info!(expired = n, "S3 lifecycle rules expired objects")
                    }
                    _ => {}
                }
            }
        });
    }
    let mut servers = Vec::new();
    let served: Vec<nimbus_dashboard::graph::ServedApi<'_>> = api_listeners
        .iter()
        .map(|(api, l)| nimbus_dashboard::graph::ServedApi {
            config: &api.config,
            url: l
                .local_addr()
                .map(|a| format!("http://{a}"))
                .unwrap_or_default(),
        })
        .collect();
    let graph = nimbus_dashboard::graph::build(
        &nimbus_dashboard::graph::Meta {
            template: args.template.template.display().to_string(),
            endpoint: endpoint.clone(),
        },
        &served,
        &platform,
        &hub,
        &queues,
    );
    drop(served);
    let rebuilder = crate::watch::Rebuilder::new(
        stack.clone(),
        prepare.clone(),
        platform.clone(),
        releases.clone(),
    );
    let app = nimbus_aws::router(nimbus_aws::Services {
        platform: platform.clone(),
        sqs,
        events: hub.clone(),
        dynamodb: dynamodb.clone(),
        ssm,
        secrets,
        sns,
        sfn: sfn.clone(),
        s3,
        codedeploy: deployments.clone(),
        chaos,
    });
    let _ = aws_endpoint.set(app.clone());
    let app = app
        .merge(crate::release::deploy_router(rebuilder.clone()))
        .merge(crate::cost::router(graph.clone(), hub.clone()))
        .merge(nimbus_dashboard::router(
            hub.clone(),
            graph,
            {
                let hub = hub.clone();
                move || hub.alarm_states()
            },
            {
                let deployments = deployments.clone();
                move || {
                    deployments.describe().unwrap_or_else(
                        |e| serde_json::json!({"deployments": [], "error": e.to_string()}),
                    )
                }
            },
        ));
    println!("nimbus: dashboard {endpoint}/_nimbus/");
    let mut stop = shutdown.subscribe();
    servers.push(tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
    }));
    for (api, listener) in api_listeners {
        let app = nimbus_gateway::server::router(api)
            .into_make_service_with_connect_info::<nimbus_gateway::listener::Peer>();
        let listener = nimbus_gateway::listener::CaseListener(listener);
        let mut stop = shutdown.subscribe();
        servers.push(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        }));
    }

    let watch = if args.watch {
        Some(crate::watch::start(rebuilder)?)
    } else {
        None
    };

    wait_for_signal().await;
    drop(watch);
    println!("nimbus: shutting down (a second Ctrl-C stops at once)");
    tokio::spawn(async {
        wait_for_signal().await;
        eprintln!("nimbus: second signal; stopping now");
        std::process::exit(130);
    });
    let _ = shutdown.send(true);
    hub.stop();
    platform
        .shutdown(Duration::from_secs(args.shutdown_grace))
        .await;
    // Every invocation has ended by now, so open requests answer at once; keep-alive
    // connections are closed by the graceful shutdown.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        for server in servers {
            let _ = server.await;
        }
    })
    .await;
    logs.flush().await;
    if let Some(otlp) = &otlp {
        otlp.flush(Duration::from_secs(3)).await;
    }
    println!("nimbus: stopped");
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("cannot install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("cannot install SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Reports the template's `what` errors and stops the functions already set up: nothing runs.
/// Refuses to start before any function runs: the errors, and nothing started.
fn refused_early(template: &Path, what: &str, errors: &[String]) -> ExitCode {
    for e in errors {
        eprintln!("error: {}: {e}", template.display());
    }
    eprintln!("{} {what} error(s); nothing was started", errors.len());
    ExitCode::FAILURE
}

async fn refuse(platform: &Platform, template: &Path, what: &str, errors: &[String]) -> ExitCode {
    for e in errors {
        eprintln!("error: {}: {e}", template.display());
    }
    eprintln!("{} {what} error(s); nothing was started", errors.len());
    platform.shutdown(Duration::ZERO).await;
    ExitCode::FAILURE
}

/// A template queue's physical name: `QueueName`, else the logical id (`.fifo` added for FIFO).
/// A template property as the APIs take it: a string as it is, anything else as JSON text
/// (numbers, booleans, policies written as objects); absent is `None`.
fn property_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn queue_name(id: &str, p: &serde_json::Value) -> String {
    let fifo = p["FifoQueue"] == true || p["FifoQueue"] == "true";
    match p["QueueName"].as_str() {
        Some(n) => n.to_owned(),
        None if fifo => format!("{id}.fifo"),
        None => id.to_owned(),
    }
}

/// The template's rules, mappings and asynchronous settings, checked against the functions and
/// the queues that exist.
/// `store`: the queues that exist (`None` in `validate`: the template's own).
fn events_spec(
    stack: &Stack,
    store: Option<&nimbus_store::Store>,
    streams: &std::collections::BTreeSet<String>,
) -> Result<nimbus_events::EventsSpec, Vec<String>> {
    let functions = stack.functions.iter().map(|f| f.name.clone()).collect();
    let queues = match store {
        Some(store) => store
            .list_queues("")
            .map_err(|e| vec![e.to_string()])?
            .into_iter()
            .collect(),
        None => stack
            .resources
            .iter()
            .filter(|(_, r)| r.resource_type == "AWS::SQS::Queue")
            .map(|(id, r)| queue_name(id, &r.properties))
            .collect(),
    };
    let spec = nimbus_events::config::read(
        stack,
        nimbus_events::config::Known {
            functions: &functions,
            queues: &queues,
            streams,
        },
    )?;
    for w in &spec.warnings {
        eprintln!("warning: {w}");
    }
    Ok(spec)
}

/// The template's topics and subscriptions: `AWS::SNS::Topic` (with its `Subscription` list),
/// `AWS::SNS::Subscription` and SAM `SNS` events.
fn template_sns(
    stack: &Stack,
    region: &str,
    account: &str,
) -> Result<
    (
        Vec<nimbus_sns::TemplateTopic>,
        Vec<nimbus_sns::TemplateSubscription>,
    ),
    Vec<String>,
> {
    use serde_json::Value;
    let text = property_text;
    let topic_arn = |name: &str| format!("arn:aws:sns:{region}:{account}:{name}");
    let mut topics = Vec::new();
    let mut subs = Vec::new();
    let mut errors = Vec::new();
    let subscription = |topic: String, p: &Value, protocol: &str, endpoint: String| {
        let mut attributes = serde_json::Map::new();
        for key in [
            "FilterPolicy",
            "FilterPolicyScope",
            "RawMessageDelivery",
            "RedrivePolicy",
            "DeliveryPolicy",
        ] {
            if let Some(v) = text(&p[key]) {
                attributes.insert(key.into(), v.into());
            }
        }
        nimbus_sns::TemplateSubscription {
            topic_arn: topic,
            protocol: protocol.to_owned(),
            endpoint,
            attributes,
        }
    };
    for (id, r) in &stack.resources {
        let p = &r.properties;
        let at = format!("Resources.{id}.Properties (line {})", r.line);
        match r.resource_type.as_str() {
            "AWS::SNS::Topic" => {
                let name = p["TopicName"].as_str().unwrap_or(id).to_owned();
                let mut attributes = serde_json::Map::new();
                for key in [
                    "FifoTopic",
                    "ContentBasedDeduplication",
                    "DisplayName",
                    "DeliveryPolicy",
                    "SignatureVersion",
                ] {
                    if let Some(v) = text(&p[key]) {
                        attributes.insert(key.into(), v.into());
                    }
                }
                for s in p["Subscription"].as_array().into_iter().flatten() {
                    match (s["Protocol"].as_str(), s["Endpoint"].as_str()) {
                        (Some(protocol), Some(endpoint)) => subs.push(subscription(
                            topic_arn(&name),
                            &Value::Null,
                            protocol,
                            endpoint.to_owned(),
                        )),
                        _ => errors.push(format!(
                            "{at}.Subscription: each subscription needs Protocol and Endpoint"
                        )),
                    }
                }
                topics.push(nimbus_sns::TemplateTopic { name, attributes });
            }
            "AWS::SNS::Subscription" => {
                match (
                    p["TopicArn"].as_str(),
                    p["Protocol"].as_str(),
                    p["Endpoint"].as_str(),
                ) {
                    (Some(t), Some(protocol), Some(endpoint)) => {
                        subs.push(subscription(t.to_owned(), p, protocol, endpoint.to_owned()))
                    }
                    _ => errors.push(format!(
                        "{at}: TopicArn, Protocol and Endpoint are required"
                    )),
                }
            }
            _ => {}
        }
    }
    for f in &stack.functions {
        for (event_id, ev) in &f.events {
            if ev["Type"] != "SNS" {
                continue;
            }
            let p = &ev["Properties"];
            let at = format!(
                "Resources.{}.Properties.Events.{event_id} (line {})",
                f.logical_id, f.line
            );
            let Some(topic) = p["Topic"].as_str() else {
                errors.push(format!("{at}: Topic is required"));
                continue;
            };
            if !p["SqsSubscription"].is_null() && p["SqsSubscription"] != false {
                eprintln!("warning: {at}: SqsSubscription is not served: the function is subscribed to the topic directly");
            }
            let function = nimbus_core::arn::function_arn(region, account, &f.event_target());
            subs.push(subscription(topic.to_owned(), p, "lambda", function));
        }
    }
    // An email or SMS subscription (an alarm topic's, say) must not stop a local run.
    subs.retain(|s| {
        let served = matches!(s.protocol.as_str(), "sqs" | "lambda" | "http" | "https");
        if !served {
            eprintln!(
                "warning: the {} subscription of {} to {} is not served: nimbus delivers sqs, lambda, http and https subscriptions",
                s.protocol, s.topic_arn, s.endpoint
            );
        }
        served
    });
    match errors.is_empty() {
        true => Ok((topics, subs)),
        false => Err(errors),
    }
}

/// The template's `AWS::SSM::Parameter`s; a property CloudFormation would refuse is an error
/// naming the resource and its line.
fn template_parameters(stack: &Stack) -> Result<Vec<nimbus_ssm::TemplateParameter>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (id, r) in &stack.resources {
        if r.resource_type != "AWS::SSM::Parameter" {
            continue;
        }
        let p = &r.properties;
        let at = format!("Resources.{id}.Properties (line {})", r.line);
        // Scalars only: a parameter's value is never an object.
        let text = |k: &str| {
            Some(&p[k])
                .filter(|v| !v.is_object() && !v.is_array())
                .and_then(property_text)
        };
        let kind = text("Type").unwrap_or_default();
        if !matches!(kind.as_str(), "String" | "StringList") {
            errors.push(match kind.as_str() {
                "SecureString" => format!("{at}: SSM Parameters of type SecureString cannot be created using CloudFormation"),
                "" => format!("{at}: Type is required (String or StringList)"),
                other => format!("{at}: Type {other:?} is not String or StringList"),
            });
            continue;
        }
        let Some(value) = text("Value") else {
            errors.push(format!("{at}: Value is required"));
            continue;
        };
        out.push(nimbus_ssm::TemplateParameter {
            name: text("Name").unwrap_or_else(|| id.clone()),
            kind,
            value,
            description: text("Description"),
            allowed_pattern: text("AllowedPattern"),
            tier: text("Tier"),
            data_type: text("DataType"),
        });
    }
    match errors.is_empty() {
        true => Ok(out),
        false => Err(errors),
    }
}

/// The template's `AWS::SecretsManager::Secret`s, each with the ARN its `Ref` resolved to.
fn template_secrets(
    stack: &Stack,
    region: &str,
    account: &str,
) -> Result<Vec<nimbus_secrets::TemplateSecret>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (id, r) in &stack.resources {
        if r.resource_type != "AWS::SecretsManager::Secret" {
            continue;
        }
        let p = &r.properties;
        let at = format!("Resources.{id}.Properties (line {})", r.line);
        let name = p["Name"].as_str().unwrap_or(id).to_owned();
        let generate = &p["GenerateSecretString"];
        let value = match (p["SecretString"].as_str(), generate.is_object()) {
            (Some(_), true) => {
                errors.push(format!(
                    "{at}: use SecretString or GenerateSecretString, not both"
                ));
                continue;
            }
            (Some(v), false) => nimbus_secrets::TemplateValue::String(v.to_owned()),
            (None, true) => {
                let template = generate["SecretStringTemplate"].as_str().map(str::to_owned);
                let key = generate["GenerateStringKey"].as_str().map(str::to_owned);
                if key.is_some() != template.is_some() {
                    errors.push(format!(
                        "{at}.GenerateSecretString: SecretStringTemplate and GenerateStringKey go together"
                    ));
                    continue;
                }
                match nimbus_secrets::template_spec(generate) {
                    Ok(spec) => nimbus_secrets::TemplateValue::Generate {
                        spec,
                        template,
                        key,
                    },
                    Err(e) => {
                        errors.push(format!("{at}.GenerateSecretString: {e}"));
                        continue;
                    }
                }
            }
            (None, false) => nimbus_secrets::TemplateValue::None,
        };
        out.push(nimbus_secrets::TemplateSecret {
            arn: nimbus_template::secret_arn(region, account, &name),
            name,
            description: p["Description"].as_str().map(str::to_owned),
            value,
        });
    }
    match errors.is_empty() {
        true => Ok(out),
        false => Err(errors),
    }
}

/// The template's DynamoDB tables (`AWS::DynamoDB::Table`, `AWS::DynamoDB::GlobalTable`,
/// `AWS::Serverless::SimpleTable`), named as `Ref` names them: `TableName`, else the logical id.
fn template_tables(stack: &Stack) -> Result<Vec<nimbus_dynamodb::TableDef>, Vec<String>> {
    let now = nimbus_events::now_ms();
    let mut defs = Vec::new();
    let mut errors = Vec::new();
    for (id, r) in &stack.resources {
        if !matches!(
            r.resource_type.as_str(),
            "AWS::DynamoDB::Table" | "AWS::DynamoDB::GlobalTable" | "AWS::Serverless::SimpleTable"
        ) {
            continue;
        }
        let name = r.properties["TableName"].as_str().unwrap_or(id);
        match nimbus_dynamodb::TableDef::from_template(&r.resource_type, name, &r.properties, now) {
            Ok(def) => defs.push(def),
            Err(e) => errors.push(format!("Resources.{id}.Properties (line {}): {e}", r.line)),
        }
    }
    if errors.is_empty() {
        Ok(defs)
    } else {
        Err(errors)
    }
}

/// Creates the template's `AWS::SQS::Queue`s in the store, or brings an existing one's attributes
/// in line with the template (its messages stay). Returns the queue names.
fn template_queues(stack: &Stack, store: &nimbus_store::Store) -> Result<Vec<String>, Vec<String>> {
    const ATTRIBUTES: &[&str] = &[
        "DelaySeconds",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout",
        "FifoQueue",
        "ContentBasedDeduplication",
        // An object in templates; SQS takes it as a JSON string.
        "RedrivePolicy",
    ];
    let now = nimbus_events::now_ms();
    let mut names = Vec::new();
    let mut errors = Vec::new();
    for (id, r) in &stack.resources {
        if r.resource_type != "AWS::SQS::Queue" {
            continue;
        }
        let p = &r.properties;
        let name = queue_name(id, p);
        let mut attrs = std::collections::BTreeMap::new();
        for a in ATTRIBUTES {
            if let Some(v) = property_text(&p[*a]) {
                attrs.insert(a.to_string(), v);
            }
        }
        let result = match store.create_queue(&name, attrs.clone(), now) {
            Err(nimbus_store::StoreError::Queue(nimbus_store::QueueError::QueueAlreadyExists(
                _,
            ))) => store.set_queue_attributes(&name, attrs),
            other => other.map(|_| ()),
        };
        match result {
            Ok(()) => names.push(name),
            Err(e) => errors.push(format!("Resources.{id} (line {}): {e}", r.line)),
        }
    }
    if errors.is_empty() {
        Ok(names)
    } else {
        Err(errors)
    }
}
