//! Layers: a template's own `AWS::Serverless::LayerVersion` / `AWS::Lambda::LayerVersion`
//! (a local folder or `.zip`, built when it has `Metadata: BuildMethod`), published layers
//! mapped to local folders with `--layer`, and the Powertools layers, which are one package
//! each and so are installed from PyPI or npm.
//!
//! Lambda extracts each layer into `/opt`, later layers over earlier ones; here each layer
//! stays in its own folder and the runtime's search paths list them, the last layer first, so
//! the same file wins.

use std::collections::BTreeMap;
use std::path::PathBuf;

use nimbus_template::{Function, Resource, Stack};

use super::{code, Interp, PrepareError, PrepareOptions};

/// One layer, resolved to what the runtime searches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layer {
    /// A folder laid out as Lambda's `/opt`: `python/`, `nodejs/node_modules/`, `bin/`, `lib/`.
    pub root: Option<PathBuf>,
    /// Folders that are importable as `/opt/python` is (a built Python layer's source and its
    /// installed requirements).
    pub python: Vec<PathBuf>,
    /// Folders searched as `/opt/nodejs/node_modules` is.
    pub node_modules: Vec<PathBuf>,
}

/// The layers `f` names, in its order. A published layer nimbus cannot fetch or map is left
/// out with a warning: the function still starts, as far as it can without it.
pub(crate) fn resolve(
    f: &Function,
    stack: &Stack,
    interp: &Interp,
    opts: &PrepareOptions,
) -> Result<Vec<Layer>, PrepareError> {
    let mut out = Vec::new();
    for arn in &f.layers {
        if let Some(r) = template_layer(stack, arn) {
            out.push(template(f, r, interp, opts)?);
        } else if let Some((_, dir)) = opts
            .layer_dirs
            .iter()
            .find(|(prefix, _)| arn == prefix || arn.starts_with(&format!("{prefix}:")))
        {
            if !dir.is_dir() {
                return Err(PrepareError::Invalid {
                    function: f.name.clone(),
                    what: format!(
                        "--layer maps {arn} to {}, which is not a folder",
                        dir.display()
                    ),
                });
            }
            out.push(Layer {
                root: Some(dir.clone()),
                ..Layer::default()
            });
        } else if let Some(layer) = powertools(f, arn, interp, opts)? {
            out.push(layer);
        } else {
            tracing::warn!(
                "function {}: layer {arn} is published on AWS and nimbus cannot download it; \
                 the function starts without it. Map it to a local folder with \
                 --layer {}=DIR",
                f.name,
                without_version(arn)
            );
        }
    }
    Ok(out)
}

/// `arn:...:layer:Name:3` -> `arn:...:layer:Name`.
fn without_version(arn: &str) -> &str {
    match arn.rsplit_once(':') {
        Some((rest, v)) if v.bytes().all(|b| b.is_ascii_digit()) && rest.contains(":layer:") => {
            rest
        }
        _ => arn,
    }
}

/// The template's layer resource whose `Ref` (its version ARN) or logical id is `arn`.
fn template_layer<'s>(stack: &'s Stack, arn: &str) -> Option<&'s Resource> {
    stack.resources.values().find(|r| {
        if !matches!(
            r.resource_type.as_str(),
            "AWS::Serverless::LayerVersion" | "AWS::Lambda::LayerVersion"
        ) {
            return false;
        }
        let name = r.properties["LayerName"].as_str().unwrap_or(&r.logical_id);
        arn == r.logical_id
            || without_version(arn)
                .strip_suffix(name)
                .is_some_and(|p| p.ends_with(":layer:"))
    })
}

/// The local folders (or archives) of the template's layers `f` uses.
pub(crate) fn template_sources(f: &Function, stack: &Stack, opts: &PrepareOptions) -> Vec<PathBuf> {
    f.layers
        .iter()
        .filter_map(|arn| template_layer(stack, arn))
        .filter_map(|r| location(r).1)
        .map(|l| opts.template_dir.join(l))
        .collect()
}

/// The property naming a layer's content, and the local path in it, if it is one.
fn location(r: &Resource) -> (&'static str, Option<&str>) {
    match r.resource_type.as_str() {
        "AWS::Serverless::LayerVersion" => ("ContentUri", r.properties["ContentUri"].as_str()),
        // CDK's layers point Content at S3 and record the local asset folder in Metadata.
        _ => ("Content", r.metadata["aws:asset:path"].as_str()),
    }
}

fn template(
    f: &Function,
    r: &Resource,
    interp: &Interp,
    opts: &PrepareOptions,
) -> Result<Layer, PrepareError> {
    let id = &r.logical_id;
    let (property, location) = location(r);
    let line = r.property_lines.get(property).copied().unwrap_or(r.line);
    let Some(location) = location else {
        return Err(PrepareError::Invalid {
            function: f.name.clone(),
            what: format!(
                "layer {id} (Resources.{id}.Properties.{property}, line {line}) is not a local \
                 path; nimbus reads layers from local folders or .zip files"
            ),
        });
    };
    let mut dir = opts.template_dir.join(location);
    if dir.is_file() {
        let out = opts
            .state_dir
            .join("layers")
            .join(format!("{id}.{}", opts.generation));
        code::extract(f, &dir, &out)?;
        dir = out;
    }
    if !dir.is_dir() {
        return Err(PrepareError::Invalid {
            function: f.name.clone(),
            what: format!(
                "layer {id}: Resources.{id}.Properties.{property} (line {line}) names {}, which \
                 does not exist",
                dir.display()
            ),
        });
    }
    let method = r.metadata["BuildMethod"].as_str();
    match method {
        None => Ok(Layer {
            root: Some(dir),
            ..Layer::default()
        }),
        Some("makefile") => {
            let at = |kind: &str| {
                opts.state_dir
                    .join("layers")
                    .join(format!("{id}-{kind}.{}", opts.generation))
            };
            Ok(Layer {
                root: Some(super::make(f, id, &dir, &at("build"), &at("scratch"))?),
                ..Layer::default()
            })
        }
        // `sam build` puts a built Python layer's source and its requirements under python/.
        Some(m) if m.starts_with("python") => {
            let mut python = vec![dir.clone()];
            if let Interp::Python(py) = interp {
                python.extend(super::python::requirements(f, py, &dir, opts)?);
            }
            Ok(Layer {
                python,
                ..Layer::default()
            })
        }
        Some(m) if m.starts_with("nodejs") => {
            let mut node_modules = Vec::new();
            if let Interp::Node(node) = interp {
                node_modules.extend(super::node::dependencies(f, node, &dir, false, opts)?);
            }
            Ok(Layer {
                node_modules,
                ..Layer::default()
            })
        }
        Some(other) => Err(PrepareError::Invalid {
            function: f.name.clone(),
            what: format!(
                "layer {id}: Metadata.BuildMethod {other:?} is not one nimbus builds; use a \
                 python3.x or nodejsN.x runtime id, or makefile"
            ),
        }),
    }
}

/// Powertools for AWS Lambda's published layers hold one package: install that package.
fn powertools(
    f: &Function,
    arn: &str,
    interp: &Interp,
    opts: &PrepareOptions,
) -> Result<Option<Layer>, PrepareError> {
    let name = without_version(arn).rsplit(':').next().unwrap_or_default();
    let major = if name.contains("V3") {
        3
    } else if name.contains("V2") {
        2
    } else {
        1
    };
    match interp {
        Interp::Python(py) if name.starts_with("AWSLambdaPowertoolsPython") => {
            let spec = format!("aws-lambda-powertools[all]>={major},<{}", major + 1);
            let dir = super::python::install_packages(f, py, &[spec], opts)?;
            tracing::info!("function {}: layer {arn} is served by the PyPI package aws-lambda-powertools {major}.x", f.name);
            Ok(Some(Layer {
                python: vec![dir],
                ..Layer::default()
            }))
        }
        Interp::Node(node) if name.starts_with("AWSLambdaPowertoolsTypeScript") => {
            let packages: Vec<String> = ["commons", "logger", "metrics", "tracer", "parameters"]
                .iter()
                .map(|p| format!("@aws-lambda-powertools/{p}@^{major}"))
                .collect();
            let dir = super::node::install_packages(f, node, &packages, opts)?;
            tracing::info!("function {}: layer {arn} is served by the npm packages @aws-lambda-powertools/* {major}.x", f.name);
            Ok(Some(Layer {
                node_modules: vec![dir],
                ..Layer::default()
            }))
        }
        _ => Ok(None),
    }
}

/// `bin/` on `PATH` and `lib/` on `LD_LIBRARY_PATH`, the last layer first, as in `/opt`.
pub(crate) fn add_paths(env: &mut BTreeMap<String, String>, layers: &[Layer]) {
    let roots: Vec<&PathBuf> = layers
        .iter()
        .rev()
        .filter_map(|l| l.root.as_ref())
        .collect();
    let bins: Vec<PathBuf> = roots
        .iter()
        .map(|r| r.join("bin"))
        .filter(|p| p.is_dir())
        .collect();
    if !bins.is_empty() {
        let path =
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        let all = bins.into_iter().chain(std::env::split_paths(&path));
        if let Ok(joined) = std::env::join_paths(all) {
            env.insert("PATH".into(), joined.to_string_lossy().into_owned());
        }
    }
    let libs: Vec<PathBuf> = roots
        .iter()
        .map(|r| r.join("lib"))
        .filter(|p| p.is_dir())
        .collect();
    if !libs.is_empty() {
        let joined = std::env::join_paths(libs).unwrap_or_default();
        env.insert(
            "LD_LIBRARY_PATH".into(),
            joined.to_string_lossy().into_owned(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_arns_lose_only_a_numeric_version() {
        for (arn, want) in [
            (
                "arn:aws:lambda:us-east-1:123:layer:Shared:1",
                "arn:aws:lambda:us-east-1:123:layer:Shared",
            ),
            (
                "arn:aws:lambda:us-east-1:123:layer:Shared",
                "arn:aws:lambda:us-east-1:123:layer:Shared",
            ),
            ("SharedLayer", "SharedLayer"),
        ] {
            assert_eq!(without_version(arn), want, "{arn}");
        }
    }
}
