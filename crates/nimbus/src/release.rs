//! `AutoPublishAlias` and `DeploymentPreference`: what `sam deploy` does to a function's alias
//! when its code or configuration changed. At start-up and after each `--watch` rebuild
//! nimbus publishes `$LATEST` (no new version when nothing changed), then points the alias at
//! it: at once, or by a CodeDeploy deployment when the function has a preference.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::{json, Value};

use nimbus_codedeploy::{config, Deployments, Preference};
use nimbus_lambda::{AliasInfo, AliasUpdate, Platform};
use nimbus_template::Stack;

/// The template's `AWS::Lambda::Version`: published once per logical id, as CloudFormation does.
#[derive(Clone)]
struct CfnVersion {
    id: String,
    function: String,
    description: Option<String>,
}

/// The template's `AWS::Lambda::Alias`.
#[derive(Clone)]
struct CfnAlias {
    function: String,
    name: String,
    /// A number, `$LATEST`, or a version resource's logical id (what its `GetAtt Version` gives).
    version: String,
    additional: Option<(String, f64)>,
    description: String,
    provisioned: Option<u32>,
}

/// The functions with an `AutoPublishAlias`: their alias and deployment preference.
#[derive(Clone)]
pub struct Releases {
    platform: Platform,
    deployments: Deployments,
    cfn_versions: Vec<CfnVersion>,
    cfn_aliases: Vec<CfnAlias>,
    /// Per function: its alias, deployment preference and the alias's provisioned concurrency.
    functions: BTreeMap<String, (String, Option<Preference>, Option<u32>)>,
}

/// What the template asks to release: read and checked before anything runs (`nimbus
/// validate` checks it too).
pub struct Plan {
    cfn_versions: Vec<CfnVersion>,
    cfn_aliases: Vec<CfnAlias>,
    functions: BTreeMap<String, (String, Option<Preference>, Option<u32>)>,
}

impl Releases {
    pub fn new(plan: Plan, platform: Platform, deployments: Deployments) -> Self {
        Self {
            platform,
            deployments,
            cfn_versions: plan.cfn_versions,
            cfn_aliases: plan.cfn_aliases,
            functions: plan.functions,
        }
    }
}

impl Plan {
    /// Reads every function's `AutoPublishAlias` and `DeploymentPreference` and the template's
    /// own versions and aliases; the errors name the template line and property. `alarms` are
    /// the template's alarm names.
    pub fn read(
        stack: &Stack,
        template: &std::path::Path,
        alarms: &[String],
    ) -> Result<Self, Vec<String>> {
        let mut customs = BTreeMap::new();
        let mut errors = Vec::new();
        for r in stack.resources.values() {
            if r.resource_type != "AWS::CodeDeploy::DeploymentConfig" {
                continue;
            }
            let name = r.properties["DeploymentConfigName"]
                .as_str()
                .unwrap_or(&r.logical_id)
                .to_owned();
            match config::custom_config(&r.properties) {
                Ok(routing) => {
                    customs.insert(name, routing);
                }
                Err(e) => errors.push(format!(
                    "{}:{}: Resources.{}.Properties: {e}",
                    template.display(),
                    r.line,
                    r.logical_id
                )),
            }
        }
        let (cfn_versions, cfn_aliases) = cfn_resources(stack, template, &mut errors);
        let mut functions = BTreeMap::new();
        for f in &stack.functions {
            let at = |prop: &str| {
                format!(
                    "{}:{}: Resources.{}.Properties.{prop}",
                    template.display(),
                    f.property_lines.get(prop).copied().unwrap_or(f.line),
                    f.logical_id
                )
            };
            let preference = match config::preference(&f.properties, &customs) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(format!("{}: {e}", at("DeploymentPreference")));
                    continue;
                }
            };
            if let Some(p) = &preference {
                for alarm in &p.alarms {
                    if !alarms.contains(alarm) {
                        errors.push(format!(
                            "{}: alarm {alarm:?} is not an AWS::CloudWatch::Alarm of the template (nimbus watches the template's alarms)",
                            at("DeploymentPreference")
                        ));
                    }
                }
                for hook in p.pre_traffic.iter().chain(&p.post_traffic) {
                    if stack.function(hook).is_none() {
                        errors.push(format!(
                            "{}: hook {hook:?} is not a function of the template",
                            at("DeploymentPreference")
                        ));
                    }
                }
            }
            if let Some(alias) = &f.auto_publish_alias {
                functions.insert(
                    f.name.clone(),
                    (alias.clone(), preference, f.provisioned_concurrency),
                );
            }
        }
        match errors.is_empty() {
            true => Ok(Self {
                cfn_versions,
                cfn_aliases,
                functions,
            }),
            false => Err(errors),
        }
    }
}

impl Releases {
    /// The template's `ProvisionedConcurrencyConfig`, on the alias as SAM sets it.
    /// Returns once the environments are ready, so start-up's "ready" means warm.
    async fn provision(&self, name: &str, alias: &str, count: Option<u32>) {
        let current = self.platform.provisioned(name, alias).map(|p| p.0);
        if current != count {
            if let Err(e) = self.platform.put_provisioned(name, alias, count) {
                eprintln!("error: cannot provision concurrency on {name}:{alias}: {e}");
            }
        }
        self.platform.reprovision(name).await;
    }

    /// Releases every function with an `AutoPublishAlias`, then the template's own versions
    /// and aliases.
    pub async fn release_all(&self) {
        for name in self.functions.keys() {
            let _ = self.release(name).await;
        }
        for v in &self.cfn_versions {
            match self
                .platform
                .publish_version_ref(&v.function, &v.id, v.description.clone())
                .await
            {
                Ok(n) => println!("nimbus: {} version {n} ({})", v.function, v.id),
                Err(e) => eprintln!("error: cannot publish {} for {}: {e}", v.id, v.function),
            }
        }
        for a in &self.cfn_aliases {
            if let Err(e) = self.cfn_alias(a).await {
                eprintln!("error: cannot set alias {} of {}: {e}", a.name, a.function);
            }
        }
    }

    /// Creates or updates a template alias, its version ids read as the versions they stand for.
    async fn cfn_alias(&self, a: &CfnAlias) -> Result<(), nimbus_lambda::VersionError> {
        let number = |v: &str| match self.platform.version_ref(&a.function, v) {
            Some(n) => n.to_string(),
            None => v.to_owned(),
        };
        let version = number(&a.version);
        let additional = a.additional.as_ref().map(|(v, w)| (number(v), *w));
        match self.platform.alias(&a.function, &a.name) {
            Err(_) => {
                self.platform.create_alias(AliasInfo {
                    function: a.function.clone(),
                    name: a.name.clone(),
                    version: version.clone(),
                    additional,
                    description: a.description.clone(),
                    revision_id: String::new(),
                })?;
            }
            Ok(current) => {
                if current.version != version
                    || current.additional != additional
                    || current.description != a.description
                {
                    self.platform.update_alias(
                        &a.function,
                        &a.name,
                        AliasUpdate {
                            version: Some(version.clone()),
                            description: Some(a.description.clone()),
                            additional: Some(additional),
                            revision_id: None,
                        },
                    )?;
                }
            }
        }
        println!("nimbus: {} alias {} -> {version}", a.function, a.name);
        self.provision(&a.function, &a.name, a.provisioned).await;
        Ok(())
    }

    /// Publishes `name`'s `$LATEST` and moves its alias to the version, directly or by a
    /// deployment; says what it did (printed as well). A function without `AutoPublishAlias`
    /// only runs its new code as `$LATEST`.
    pub async fn release(&self, name: &str) -> Release {
        let Some((alias, preference, provisioned)) = self.functions.get(name) else {
            return Release::said(format!(
                "{name}: $LATEST runs the new code (no AutoPublishAlias)"
            ));
        };
        let version = match self.platform.publish_version(name, None, None, None).await {
            Ok(v) => v.spec.version.clone(),
            Err(e) => {
                return Release::failed(format!("cannot publish a version of {name}: {e}"));
            }
        };
        let current = self.platform.alias(name, alias).ok();
        match current {
            None => {
                let made = self.platform.create_alias(AliasInfo {
                    function: name.to_owned(),
                    name: alias.clone(),
                    version: version.clone(),
                    additional: None,
                    description: String::new(),
                    revision_id: String::new(),
                });
                let out = match made {
                    Ok(_) => Release::said(format!(
                        "{name} version {version}, alias {alias} -> {version}"
                    )),
                    Err(e) => {
                        Release::failed(format!("cannot create alias {alias} of {name}: {e}"))
                    }
                };
                self.provision(name, alias, *provisioned).await;
                out
            }
            Some(a) if a.version == version && a.additional.is_none() => {
                self.provision(name, alias, *provisioned).await;
                Release::quiet(format!(
                    "{name}: unchanged, alias {alias} is version {version}"
                ))
            }
            Some(a) => {
                if self.deployments.running(name) {
                    return Release::failed(format!(
                        "{name} changed during its deployment; version {version} is published, and the alias stays with the running deployment"
                    ));
                }
                match preference {
                    Some(p) => match self.deployments.start(name, alias, &a.version, &version, p.clone()) {
                        Ok(id) => Release {
                            deployment: Some(id.clone()),
                            ..Release::said(format!(
                                "{name} version {version} published; deployment {id} shifts alias {alias} from version {} ({})",
                                a.version, p.config_name
                            ))
                        },
                        Err(e) => Release::failed(format!("cannot start the deployment of {name}: {e}")),
                    },
                    None => {
                        let update = AliasUpdate {
                            version: Some(version.clone()),
                            additional: Some(None),
                            ..AliasUpdate::default()
                        };
                        match self.platform.update_alias(name, alias, update) {
                            Ok(_) => Release::said(format!(
                                "{name} version {version} published; alias {alias} -> {version} (was {})",
                                a.version
                            )),
                            Err(e) => Release::failed(format!("cannot move alias {alias} of {name}: {e}")),
                        }
                    }
                }
            }
        }
    }
}

/// What a release did: its message (printed as `nimbus: ...`, or as an error), and the
/// deployment it started.
#[derive(Debug, Clone)]
pub struct Release {
    pub message: String,
    pub ok: bool,
    pub deployment: Option<String>,
}

impl Release {
    fn said(message: String) -> Release {
        println!("nimbus: {message}");
        Release {
            message,
            ok: true,
            deployment: None,
        }
    }

    /// A release that changed nothing: not worth a line at start-up.
    fn quiet(message: String) -> Release {
        Release {
            message,
            ok: true,
            deployment: None,
        }
    }

    fn failed(message: String) -> Release {
        eprintln!("error: {message}");
        Release {
            message,
            ok: false,
            deployment: None,
        }
    }
}

/// `POST /_nimbus/deploy[?function=NAME]`: `nimbus deploy`'s endpoint on the AWS port. Rebuilds
/// the function (every function when none is named) from its sources, then releases it.
pub fn deploy_router(rebuilder: crate::watch::Rebuilder) -> axum::Router {
    use axum::extract::{Query, State};
    use axum::http::StatusCode;
    use axum::Json;

    async fn deploy(
        State(r): State<crate::watch::Rebuilder>,
        Query(mut which): Query<std::collections::HashMap<String, String>>,
    ) -> (StatusCode, Json<Value>) {
        let names: Vec<String> = match which.remove("function") {
            Some(f) if r.stack().function(&f).is_none() => {
                let known: Vec<&str> = r
                    .stack()
                    .functions
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect();
                return (
                    StatusCode::NOT_FOUND,
                    Json(
                        json!({"message": format!("no function {f:?} in the template; it has {}", known.join(", "))}),
                    ),
                );
            }
            Some(f) => vec![f],
            None => r.stack().functions.iter().map(|f| f.name.clone()).collect(),
        };
        let mut out = Vec::new();
        for name in names {
            out.push(match r.rebuild(&name).await {
                Ok(rel) => json!({"function": name, "ok": rel.ok, "message": rel.message, "deployment": rel.deployment}),
                Err(e) => json!({"function": name, "ok": false, "message": e}),
            });
        }
        (StatusCode::OK, Json(json!({ "released": out })))
    }

    axum::Router::new()
        .route("/_nimbus/deploy", axum::routing::post(deploy))
        .with_state(rebuilder)
}

/// One CodeDeploy call to a running nimbus.
async fn codedeploy(endpoint: &str, action: &str, input: Value) -> anyhow::Result<Value> {
    let target = format!("CodeDeploy_20141006.{action}");
    let (status, text) = crate::client::call_with(
        endpoint,
        "POST",
        "/",
        Some(input.to_string()),
        &[
            ("x-amz-target", &target),
            ("content-type", "application/x-amz-json-1.1"),
        ],
    )
    .await?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status != 200 {
        anyhow::bail!(
            "{action} answered {status}: {}",
            v["message"].as_str().unwrap_or(&text)
        );
    }
    Ok(v)
}

/// `nimbus deployments`: each deployment's function, versions, configuration and outcome.
pub async fn list(args: crate::cli::DeploymentsArgs) -> anyhow::Result<ExitCode> {
    let ep = &args.endpoint_url;
    let ids = codedeploy(ep, "ListDeployments", json!({})).await?;
    let ids: Vec<&str> = ids["deployments"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        println!("no deployments");
    }
    for id in ids.into_iter().take(args.last) {
        let d = codedeploy(ep, "GetDeployment", json!({ "deploymentId": id })).await?;
        let d = &d["deploymentInfo"];
        let text = |k: &str| d[k].as_str().unwrap_or("").to_owned();
        let mut line = format!(
            "{id}  {:<10} {}  {}",
            text("status"),
            text("description"),
            text("deploymentConfigName")
        );
        if let Some(m) = d["errorInformation"]["message"].as_str() {
            line.push_str(&format!("  ({m})"));
        }
        if let Some(m) = d["rollbackInfo"]["rollbackMessage"].as_str() {
            line.push_str(&format!("  {m}"));
        }
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The template's `AWS::Lambda::Version` and `AWS::Lambda::Alias` resources; the errors name
/// the line and property.
fn cfn_resources(
    stack: &Stack,
    template: &std::path::Path,
    errors: &mut Vec<String>,
) -> (Vec<CfnVersion>, Vec<CfnAlias>) {
    let (mut versions, mut aliases) = (Vec::new(), Vec::new());
    for r in stack.resources.values() {
        let at = |prop: &str| {
            format!(
                "{}:{}: Resources.{}.Properties.{prop}",
                template.display(),
                r.property_lines.get(prop).copied().unwrap_or(r.line),
                r.logical_id
            )
        };
        let p = &r.properties;
        if !matches!(
            r.resource_type.as_str(),
            "AWS::Lambda::Version" | "AWS::Lambda::Alias"
        ) {
            continue;
        }
        // A name or an ARN, qualified or not: Lambda's own FunctionName parsing.
        let Some(function) = p["FunctionName"]
            .as_str()
            .and_then(nimbus_core::arn::parse_function_ref)
            .map(|r| r.name)
        else {
            errors.push(format!(
                "{}: required (the function's name or ARN)",
                at("FunctionName")
            ));
            continue;
        };
        if stack.function(function).is_none() {
            errors.push(format!(
                "{}: {function:?} is not a function of the template",
                at("FunctionName")
            ));
            continue;
        }
        let text = |k: &str| p[k].as_str().map(str::to_owned);
        if r.resource_type == "AWS::Lambda::Version" {
            versions.push(CfnVersion {
                id: r.logical_id.clone(),
                function: function.to_owned(),
                description: text("Description"),
            });
            continue;
        }
        let (Some(name), Some(version)) = (text("Name"), text("FunctionVersion")) else {
            errors.push(format!(
                "{}: Name and FunctionVersion are required",
                at("FunctionVersion")
            ));
            continue;
        };
        let weights = p["RoutingConfig"]["AdditionalVersionWeights"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if weights.len() > 1 {
            errors.push(format!(
                "{}: Lambda routes an alias to at most one additional version",
                at("RoutingConfig")
            ));
            continue;
        }
        let additional = match weights.first() {
            None => None,
            Some(w) => {
                let v = w["FunctionVersion"].as_str();
                let weight = w["FunctionWeight"]
                    .as_f64()
                    .or_else(|| w["FunctionWeight"].as_str().and_then(|s| s.parse().ok()));
                match (v, weight) {
                    (Some(v), Some(weight)) => Some((v.to_owned(), weight)),
                    _ => {
                        errors.push(format!(
                            "{}: each weight needs FunctionVersion and a numeric FunctionWeight",
                            at("RoutingConfig")
                        ));
                        continue;
                    }
                }
            }
        };
        let provisioned = p["ProvisionedConcurrencyConfig"]["ProvisionedConcurrentExecutions"]
            .as_u64()
            .map(|n| n as u32);
        aliases.push(CfnAlias {
            function: function.to_owned(),
            name,
            version,
            additional,
            description: text("Description").unwrap_or_default(),
            provisioned,
        });
    }
    (versions, aliases)
}

/// `nimbus deploy [FUNCTION]`: rebuild and release through a running nimbus, then follow each
/// deployment it started to its end. Exit status 1 when a rebuild, release or deployment failed.
pub async fn deploy(args: crate::cli::DeployArgs) -> anyhow::Result<ExitCode> {
    let ep = &args.endpoint_url;
    let path = match &args.function {
        Some(f) => format!(
            "/_nimbus/deploy?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("function", f)
                .finish()
        ),
        None => "/_nimbus/deploy".to_owned(),
    };
    let (status, text) = crate::client::call(ep, "POST", &path, None).await?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status != 200 {
        anyhow::bail!("{}", v["message"].as_str().unwrap_or(&text));
    }
    let mut ok = true;
    let mut running = Vec::new();
    for r in v["released"].as_array().cloned().unwrap_or_default() {
        let message = r["message"].as_str().unwrap_or("");
        match r["ok"].as_bool() == Some(true) {
            true => println!("{message}"),
            false => {
                ok = false;
                eprintln!("error: {message}");
            }
        }
        if let Some(id) = r["deployment"].as_str() {
            running.push(id.to_owned());
        }
    }
    if args.no_wait {
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    for id in running {
        let mut seen = 0;
        loop {
            let d = codedeploy(ep, "GetDeployment", json!({ "deploymentId": id })).await?;
            let d = &d["deploymentInfo"];
            let status = d["status"].as_str().unwrap_or("");
            if seen == 0 {
                println!(
                    "{id}: {} ({})",
                    d["description"].as_str().unwrap_or(""),
                    status
                );
                seen = 1;
            }
            if status != "InProgress" {
                let mut line = format!("{id}: {status}");
                if let Some(m) = d["errorInformation"]["message"].as_str() {
                    line.push_str(&format!(": {m}"));
                }
                if let Some(m) = d["rollbackInfo"]["rollbackMessage"].as_str() {
                    line.push_str(&format!("; {m}"));
                }
                println!("{line}");
                ok &= status == "Succeeded";
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
