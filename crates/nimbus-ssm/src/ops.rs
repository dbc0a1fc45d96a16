//! One function per Parameter Store operation.

use base64::Engine;
use rusqlite::Connection;
use serde_json::{json, Value};

use crate::names::{self, Selector};
use crate::store::{self, Version};
use crate::SsmError;

/// Versions a parameter keeps (Parameter Store's limit).
const MAX_VERSIONS: usize = 100;
/// Labels one version may carry.
const MAX_LABELS: usize = 10;

pub(crate) struct Ctx<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub now_ms: u64,
}

impl Ctx<'_> {
    fn arn(&self, name: &str) -> String {
        format!(
            "arn:aws:ssm:{}:{}:parameter/{}",
            self.region,
            self.account,
            name.trim_start_matches('/')
        )
    }
}

fn string<'a>(input: &'a Value, key: &str) -> Result<&'a str, SsmError> {
    input[key].as_str().ok_or_else(|| {
        SsmError::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(key)
        ))
    })
}

fn lower_first(key: &str) -> String {
    let mut c = key.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// A count parameter within `lo..=hi`, or `default`.
fn bounded(input: &Value, key: &str, lo: u64, hi: u64, default: u64) -> Result<usize, SsmError> {
    match &input[key] {
        Value::Null => Ok(default as usize),
        v => match v.as_u64() {
            Some(n) if (lo..=hi).contains(&n) => Ok(n as usize),
            _ => Err(SsmError::validation(format!(
                "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must have value between {lo} and {hi}",
                lower_first(key)
            ))),
        },
    }
}

/// The strings of a JSON array (anything else in it, or no array, gives none).
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A request's list of 1 to `max` strings under `key` (`Names`, `Labels`).
fn bounded_list(input: &Value, key: &str, max: usize) -> Result<Vec<String>, SsmError> {
    let list = strings(&input[key]);
    if list.is_empty() || list.len() > max {
        return Err(SsmError::validation(format!(
            "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length between 1 and {max}",
            lower_first(key)
        )));
    }
    Ok(list)
}

/// Where a paged listing goes on: after the name the token carries.
fn token_after(input: &Value) -> Result<String, SsmError> {
    match input["NextToken"].as_str() {
        None => Ok(String::new()),
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| SsmError::new("InvalidNextToken", "The specified token isn't valid.")),
    }
}

fn token(name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name)
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// A `SecureString` asked for without decryption: an opaque stand-in for KMS's ciphertext,
/// derived from the parameter's name and version, never from its value.
fn ciphertext(v: &Version) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("nimbus-kms:alias/aws/ssm:{}:{}", v.name, v.version))
}

fn parameter_json(ctx: &Ctx<'_>, v: &Version, decrypt: bool, selector: Option<&str>) -> Value {
    let value = match (v.kind.as_str(), decrypt) {
        ("SecureString", false) => ciphertext(v),
        _ => v.value.clone(),
    };
    let mut p = json!({
        "Name": v.name,
        "Type": v.kind,
        "Value": value,
        "Version": v.version,
        "LastModifiedDate": seconds(v.modified_ms),
        "ARN": ctx.arn(&v.name),
        "DataType": v.data_type,
    });
    if let Some(s) = selector {
        p["Selector"] = s.into();
    }
    p
}

fn not_found(_name: &str) -> SsmError {
    // Parameter Store answers ParameterNotFound with no message.
    SsmError::new("ParameterNotFound", "")
}

/// The version `raw` (`name`, `name:3`, `name:label` or an ARN) selects.
fn select(db: &Connection, raw: &str) -> Result<(Version, Option<String>), SsmError> {
    let named = names::name_of(raw);
    let (name, selector) = names::split_selector(&named);
    match selector {
        Selector::Latest => {
            let v = store::latest(db, name)?.ok_or_else(|| not_found(name))?;
            Ok((v, None))
        }
        Selector::Version(n) => {
            let all = store::history(db, name)?;
            if all.is_empty() {
                return Err(not_found(name));
            }
            let v = all.into_iter().find(|v| v.version == n).ok_or_else(|| {
                SsmError::new(
                    "ParameterVersionNotFound",
                    format!("Systems Manager could not find version {n} of {name}. Verify the version and try again."),
                )
            })?;
            Ok((v, Some(format!(":{n}"))))
        }
        Selector::Label(label) => {
            let all = store::history(db, name)?;
            if all.is_empty() {
                return Err(not_found(name));
            }
            let v = all
                .into_iter()
                .find(|v| v.labels.contains(&label))
                .ok_or_else(|| not_found(name))?;
            Ok((v, Some(format!(":{label}"))))
        }
    }
}

pub(crate) fn put_parameter(
    db: &mut Connection,
    ctx: &Ctx<'_>,
    input: &Value,
) -> Result<Value, SsmError> {
    let name = string(input, "Name")?;
    let value = string(input, "Value")?;
    names::check_name(name)?;
    let tier = input["Tier"].as_str().unwrap_or("Standard");
    let limit = match tier {
        "Standard" => 4096,
        "Advanced" | "Intelligent-Tiering" => 8192,
        other => {
            return Err(SsmError::validation(format!(
                "1 validation error detected: Value '{other}' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]"
            )))
        }
    };
    if value.is_empty() {
        return Err(SsmError::validation(
            "1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1.",
        ));
    }
    if value.chars().count() > limit {
        return Err(SsmError::validation(match tier {
            "Standard" => "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html".to_owned(),
            _ => format!("Advanced tier parameters support a maximum parameter value of {limit} characters."),
        }));
    }
    let tx = db.transaction()?;
    let current = store::latest(&tx, name)?;
    let kind = match (input["Type"].as_str(), &current) {
        (Some(t @ ("String" | "StringList" | "SecureString")), _) => t.to_owned(),
        (Some(other), _) => {
            return Err(SsmError::validation(format!(
                "1 validation error detected: Value '{other}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]"
            )))
        }
        (None, Some(c)) => c.kind.clone(),
        (None, None) => {
            return Err(SsmError::validation(
                "A parameter type is required when you create a parameter.",
            ))
        }
    };
    let overwrite = input["Overwrite"].as_bool().unwrap_or(false);
    if current.is_some() && !overwrite {
        return Err(SsmError::new(
            "ParameterAlreadyExists",
            "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
        ));
    }
    let allowed_pattern = input["AllowedPattern"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| current.as_ref().and_then(|c| c.allowed_pattern.clone()));
    if let Some(p) = &allowed_pattern {
        let re = regex::Regex::new(p).map_err(|e| {
            SsmError::new(
                "InvalidAllowedPatternException",
                format!("The allowed pattern {p} is not a valid regular expression: {e}"),
            )
        })?;
        if !re.is_match(value) {
            return Err(SsmError::new(
                "ParameterPatternMismatchException",
                format!("Parameter value, cannot be validated against allowedPattern: {p}"),
            ));
        }
    }
    let data_type = input["DataType"].as_str().unwrap_or("text");
    if !matches!(data_type, "text" | "aws:ec2:image" | "aws:ssm:integration") {
        return Err(SsmError::validation(format!(
            "The following data type is not supported: {data_type} (Data type names are all lowercase.)"
        )));
    }
    let history = store::history(&tx, name)?;
    if history.len() >= MAX_VERSIONS {
        let oldest = &history[0];
        if !oldest.labels.is_empty() {
            return Err(SsmError::new(
                "ParameterMaxVersionLimitExceeded",
                format!("You attempted to create a new version of {name} by calling the PutParameter API with the overwrite flag. Version {}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.", oldest.version),
            ));
        }
        store::delete_version(&tx, name, oldest.version)?;
    }
    let version = current.as_ref().map_or(1, |c| c.version + 1);
    store::insert(
        &tx,
        &Version {
            name: name.to_owned(),
            version,
            kind,
            value: value.to_owned(),
            description: input["Description"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| current.as_ref().and_then(|c| c.description.clone())),
            allowed_pattern,
            tier: tier.to_owned(),
            data_type: data_type.to_owned(),
            modified_ms: ctx.now_ms,
            labels: Vec::new(),
        },
    )?;
    tx.commit()?;
    Ok(json!({"Version": version, "Tier": tier}))
}

pub(crate) fn get_parameter(
    db: &Connection,
    ctx: &Ctx<'_>,
    input: &Value,
) -> Result<Value, SsmError> {
    let raw = string(input, "Name")?;
    let decrypt = input["WithDecryption"].as_bool().unwrap_or(false);
    let (v, selector) = select(db, raw)?;
    Ok(json!({"Parameter": parameter_json(ctx, &v, decrypt, selector.as_deref())}))
}

pub(crate) fn get_parameters(
    db: &Connection,
    ctx: &Ctx<'_>,
    input: &Value,
) -> Result<Value, SsmError> {
    let decrypt = input["WithDecryption"].as_bool().unwrap_or(false);
    let mut found = Vec::new();
    let mut invalid = Vec::new();
    for raw in bounded_list(input, "Names", 10)? {
        match select(db, &raw) {
            Ok((v, selector)) => found.push(parameter_json(ctx, &v, decrypt, selector.as_deref())),
            Err(SsmError::Service { .. }) => invalid.push(raw),
            Err(e) => return Err(e),
        }
    }
    Ok(json!({"Parameters": found, "InvalidParameters": invalid}))
}

pub(crate) fn get_parameters_by_path(
    db: &Connection,
    ctx: &Ctx<'_>,
    input: &Value,
) -> Result<Value, SsmError> {
    let path = string(input, "Path")?;
    names::check_path(path)?;
    let recursive = input["Recursive"].as_bool().unwrap_or(false);
    let decrypt = input["WithDecryption"].as_bool().unwrap_or(false);
    let max = bounded(input, "MaxResults", 1, 10, 10)?;
    let after = token_after(input)?;
    let prefix = match path.ends_with('/') {
        true => path.to_owned(),
        false => format!("{path}/"),
    };
    let mut out = Vec::new();
    let mut next = None;
    for v in store::latest_after(db, &after)? {
        let Some(rest) = v.name.strip_prefix(&prefix) else {
            continue;
        };
        if rest.is_empty() || (!recursive && rest.contains('/')) {
            continue;
        }
        if out.len() == max {
            next = Some(token(&out_last_name(&out)));
            break;
        }
        out.push(parameter_json(ctx, &v, decrypt, None));
    }
    let mut answer = json!({"Parameters": out});
    if let Some(t) = next {
        answer["NextToken"] = t.into();
    }
    Ok(answer)
}

fn out_last_name(out: &[Value]) -> String {
    out.last()
        .and_then(|p| p["Name"].as_str())
        .unwrap_or("")
        .to_owned()
}

pub(crate) fn delete_parameter(db: &mut Connection, input: &Value) -> Result<Value, SsmError> {
    let name = string(input, "Name")?;
    match store::delete(db, name)? {
        true => Ok(json!({})),
        false => Err(not_found(name)),
    }
}

pub(crate) fn delete_parameters(db: &mut Connection, input: &Value) -> Result<Value, SsmError> {
    let names = bounded_list(input, "Names", 10)?;
    let tx = db.transaction()?;
    let mut deleted = Vec::new();
    let mut invalid = Vec::new();
    for name in names {
        match store::delete(&tx, &name)? {
            true => deleted.push(name),
            false => invalid.push(name),
        }
    }
    tx.commit()?;
    Ok(json!({"DeletedParameters": deleted, "InvalidParameters": invalid}))
}

/// The metadata `DescribeParameters` and `GetParameterHistory` share.
fn metadata(ctx: &Ctx<'_>, v: &Version) -> Value {
    let mut m = json!({
        "Name": v.name,
        "ARN": ctx.arn(&v.name),
        "Type": v.kind,
        "LastModifiedDate": seconds(v.modified_ms),
        "LastModifiedUser": format!("arn:aws:iam::{}:root", ctx.account),
        "Version": v.version,
        "Tier": v.tier,
        "Policies": [],
        "DataType": v.data_type,
    });
    if let Some(d) = &v.description {
        m["Description"] = d.clone().into();
    }
    if let Some(p) = &v.allowed_pattern {
        m["AllowedPattern"] = p.clone().into();
    }
    m
}

/// One `ParameterFilters` entry of `DescribeParameters`.
struct Filter {
    key: String,
    option: String,
    values: Vec<String>,
}

impl Filter {
    fn matches(&self, v: &Version) -> bool {
        let any = |f: &dyn Fn(&str) -> bool| self.values.iter().any(|x| f(x));
        match (self.key.as_str(), self.option.as_str()) {
            ("Name", "BeginsWith") => any(&|x| v.name.starts_with(x)),
            ("Name", "Contains") => any(&|x| v.name.contains(x)),
            ("Name", _) => any(&|x| v.name == x),
            ("Type", _) => any(&|x| v.kind == x),
            ("DataType", _) => any(&|x| v.data_type == x),
            ("Tier", _) => any(&|x| v.tier == x),
            ("Label", _) => any(&|x| v.labels.iter().any(|l| l == x)),
            ("Path", option) => any(&|x| {
                let prefix = format!("{}/", x.trim_end_matches('/'));
                v.name.strip_prefix(&prefix).is_some_and(|rest| {
                    !rest.is_empty() && (option == "Recursive" || !rest.contains('/'))
                })
            }),
            _ => false,
        }
    }
}

fn filters(input: &Value) -> Result<Vec<Filter>, SsmError> {
    if input["Filters"].is_array() && input["ParameterFilters"].is_array() {
        return Err(SsmError::validation(
            "You can use either Filters or ParameterFilters in a single request.",
        ));
    }
    let mut out = Vec::new();
    for (list, key_field) in [("ParameterFilters", "Key"), ("Filters", "Key")] {
        for f in input[list].as_array().into_iter().flatten() {
            let key = f[key_field].as_str().unwrap_or("").to_owned();
            if !matches!(
                key.as_str(),
                "Name" | "Type" | "DataType" | "Tier" | "Label" | "Path"
            ) {
                return Err(SsmError::new(
                    "InvalidFilterKey",
                    format!("The following filter key is not valid: {key}"),
                ));
            }
            let default = if key == "Path" { "OneLevel" } else { "Equals" };
            out.push(Filter {
                option: f["Option"].as_str().unwrap_or(default).to_owned(),
                values: strings(&f["Values"]),
                key,
            });
        }
    }
    Ok(out)
}

pub(crate) fn describe_parameters(
    db: &Connection,
    ctx: &Ctx<'_>,
    input: &Value,
) -> Result<Value, SsmError> {
    let max = bounded(input, "MaxResults", 1, 50, 50)?;
    let after = token_after(input)?;
    let filters = filters(input)?;
    let mut out: Vec<Value> = Vec::new();
    let mut next = None;
    for v in store::latest_after(db, &after)? {
        if !filters.iter().all(|f| f.matches(&v)) {
            continue;
        }
        if out.len() == max {
            next = Some(token(&out_last_name(&out)));
            break;
        }
        out.push(metadata(ctx, &v));
    }
    let mut answer = json!({"Parameters": out});
    if let Some(t) = next {
        answer["NextToken"] = t.into();
    }
    Ok(answer)
}

pub(crate) fn get_parameter_history(
    db: &Connection,
    ctx: &Ctx<'_>,
    input: &Value,
) -> Result<Value, SsmError> {
    let name = names::name_of(string(input, "Name")?);
    let decrypt = input["WithDecryption"].as_bool().unwrap_or(false);
    let max = bounded(input, "MaxResults", 1, 50, 50)?;
    let skip: usize = match input["NextToken"].as_str() {
        None => 0,
        Some(_) => token_after(input)?
            .parse()
            .map_err(|_| SsmError::new("InvalidNextToken", "The specified token isn't valid."))?,
    };
    let all = store::history(db, &name)?;
    if all.is_empty() {
        return Err(not_found(&name));
    }
    let page: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(max)
        .map(|v| {
            let mut m = metadata(ctx, v);
            // A history entry has the value and the labels, and no ARN.
            m.as_object_mut().map(|o| o.remove("ARN"));
            m["Value"] = parameter_json(ctx, v, decrypt, None)["Value"].clone();
            m["Labels"] = json!(v.labels);
            m
        })
        .collect();
    let mut answer = json!({"Parameters": page});
    if skip + max < all.len() {
        answer["NextToken"] = token(&(skip + max).to_string()).into();
    }
    Ok(answer)
}

/// The version a label operation names: `ParameterVersion`, or the newest.
fn labelled_version(
    db: &Connection,
    input: &Value,
) -> Result<(String, Vec<Version>, i64), SsmError> {
    let name = names::name_of(string(input, "Name")?);
    let all = store::history(db, &name)?;
    let newest = all
        .last()
        .map(|v| v.version)
        .ok_or_else(|| not_found(&name))?;
    let version = input["ParameterVersion"].as_i64().unwrap_or(newest);
    if !all.iter().any(|v| v.version == version) {
        return Err(SsmError::new(
            "ParameterVersionNotFound",
            format!("Systems Manager could not find version {version} of {name}. Verify the version and try again."),
        ));
    }
    Ok((name, all, version))
}

pub(crate) fn label_parameter_version(
    db: &mut Connection,
    input: &Value,
) -> Result<Value, SsmError> {
    let labels = bounded_list(input, "Labels", MAX_LABELS)?;
    let tx = db.transaction()?;
    let (name, all, version) = labelled_version(&tx, input)?;
    let (valid, invalid): (Vec<String>, Vec<String>) =
        labels.into_iter().partition(|l| names::label_ok(l));
    let mut target = Vec::new();
    for v in &all {
        // A label names one version of a parameter: it moves.
        let kept: Vec<String> = v
            .labels
            .iter()
            .filter(|l| !valid.contains(l))
            .cloned()
            .collect();
        if v.version == version {
            target = kept;
        } else if kept.len() != v.labels.len() {
            store::set_labels(&tx, &name, v.version, &kept)?;
        }
    }
    target.extend(valid);
    if target.len() > MAX_LABELS {
        return Err(SsmError::new(
            "ParameterVersionLabelLimitExceeded",
            format!("A parameter version can have maximum {MAX_LABELS} labels.Move one or more labels to another version and try again."),
        ));
    }
    store::set_labels(&tx, &name, version, &target)?;
    tx.commit()?;
    Ok(json!({"InvalidLabels": invalid, "ParameterVersion": version}))
}

pub(crate) fn unlabel_parameter_version(
    db: &mut Connection,
    input: &Value,
) -> Result<Value, SsmError> {
    let labels = bounded_list(input, "Labels", MAX_LABELS)?;
    let tx = db.transaction()?;
    let (name, all, version) = labelled_version(&tx, input)?;
    let current = all
        .iter()
        .find(|v| v.version == version)
        .map(|v| v.labels.clone())
        .unwrap_or_default();
    let (removed, invalid): (Vec<String>, Vec<String>) =
        labels.into_iter().partition(|l| current.contains(l));
    let kept: Vec<String> = current
        .into_iter()
        .filter(|l| !removed.contains(l))
        .collect();
    store::set_labels(&tx, &name, version, &kept)?;
    tx.commit()?;
    Ok(json!({"RemovedLabels": removed, "InvalidLabels": invalid}))
}
