//! Node.js functions: the host's `node`, `package.json` dependencies installed with npm as
//! `sam build` does (`npm ci` with a lock file, else `npm install --omit=dev`; cached by the
//! hash of the manifests and Node's major version), esbuild bundles
//! (`Metadata: BuildMethod: esbuild`), the layers' `nodejs/` folders, and the AWS SDK for
//! JavaScript v3, which Lambda's Node.js runtimes ship: the `@aws-sdk/*` packages a function
//! imports without declaring them are installed once into a shared folder.
//!
//! Installed packages stay outside the function's folder. CommonJS finds them through
//! `NODE_PATH`; ES modules ignore `NODE_PATH`, so nimbus's runtime loop registers a resolve
//! hook that falls back to the same folders (`NIMBUS_NODE_MODULES`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nimbus_template::Function;

use super::layers::Layer;
use super::{build, LaunchSpec, PrepareError, PrepareOptions};

const NODE_LOOP: &str = include_str!("../../runtimes/node/nimbus_runtime.mjs");

/// The esbuild nimbus installs when neither the function's dependencies nor PATH have one.
const ESBUILD: &str = "esbuild@0.25.9";
/// The AWS SDK for JavaScript v3 as Lambda's runtimes ship it: recent enough to honour
/// `AWS_ENDPOINT_URL`.
const SDK_VERSION: &str = "^3.700.0";
/// Bounds on scanning a function's own source for the SDK packages it imports.
const SCAN_MAX_FILES: usize = 5_000;
const SCAN_MAX_BYTES: u64 = 2 * 1024 * 1024;

/// A working `node` and its major version.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub path: PathBuf,
    pub major: u32,
}

/// `--node`, else `node` on PATH; run once to check it works and learn its version.
pub(crate) fn interpreter(
    f: &Function,
    major: u32,
    opts: &PrepareOptions,
) -> Result<Node, PrepareError> {
    let candidate = opts.node.clone().or_else(|| super::find_on_path("node"));
    let found = candidate.as_ref().and_then(|p| {
        let out = Command::new(p)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let found: u32 = text
            .trim()
            .strip_prefix('v')?
            .split('.')
            .next()?
            .parse()
            .ok()?;
        out.status.success().then_some(found)
    });
    match (candidate, found) {
        (Some(path), Some(found)) => Ok(Node { path, major: found }),
        (candidate, _) => Err(PrepareError::NodeNotFound {
            function: f.name.clone(),
            runtime: f.runtime.clone(),
            wanted: candidate
                .map_or_else(|| "node on PATH".to_owned(), |p| p.display().to_string()),
            major,
        }),
    }
}

pub(crate) fn prepare(
    f: &Function,
    code: PathBuf,
    layers: &[Layer],
    node: &Node,
    major: u32,
    opts: &PrepareOptions,
) -> Result<LaunchSpec, PrepareError> {
    if node.major != major {
        tracing::warn!(
            "function {}: runtime is {} but {} is Node.js {}",
            f.name,
            f.runtime,
            node.path.display(),
            node.major
        );
    }
    let method = f.build_method.as_deref();
    let mut modules = Vec::new();
    let task_root = match method {
        Some("makefile") => code.clone(),
        Some("esbuild") => {
            // Bundling needs the development dependencies too (TypeScript types, plugins).
            let deps = dependencies(f, node, &code, true, opts)?;
            let out = esbuild(f, &code, deps.as_deref(), opts)?;
            modules.extend(deps);
            out
        }
        _ => {
            modules.extend(dependencies(f, node, &code, false, opts)?);
            code.clone()
        }
    };
    // Lambda's NODE_PATH: /opt/nodejs/nodeN/node_modules, /opt/nodejs/node_modules, then the
    // runtime's own modules (the SDK).
    for layer in layers.iter().rev() {
        if let Some(root) = &layer.root {
            modules.push(root.join(format!("nodejs/node{major}/node_modules")));
            modules.push(root.join("nodejs/node_modules"));
        }
        modules.extend(layer.node_modules.iter().cloned());
    }
    modules.extend(runtime_sdk(f, node, &code, &modules, opts));
    modules.retain(|p| p.is_dir());

    let dir = opts.state_dir.join("runtime").join("node");
    let script = dir.join("nimbus_runtime.mjs");
    build::write_file(&f.name, &script, NODE_LOOP)?;

    let joined = std::env::join_paths(&modules)
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let mut env = BTreeMap::new();
    env.insert("NODE_PATH".into(), joined.clone());
    env.insert("NIMBUS_NODE_MODULES".into(), joined);
    Ok(LaunchSpec {
        program: node.path.clone(),
        args: vec![script.into_os_string()],
        task_root,
        env,
    })
}

fn npm(node: &Node) -> Command {
    // The npm that came with this node, else the one on PATH.
    let beside = node
        .path
        .parent()
        .map(|d| d.join("npm"))
        .filter(|p| p.is_file());
    let mut cmd = Command::new(beside.unwrap_or_else(|| PathBuf::from("npm")));
    cmd.args([
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
        "--loglevel=error",
    ]);
    cmd
}

/// `package.json` in `dir` installed into a cached folder; returns its `node_modules`, or
/// `None` when there is no manifest or it depends on nothing.
pub(crate) fn dependencies(
    f: &Function,
    node: &Node,
    dir: &Path,
    with_dev: bool,
    opts: &PrepareOptions,
) -> Result<Option<PathBuf>, PrepareError> {
    // Native add-ons are built for the node that installs them, and for this machine.
    let major = node.major;
    let manifest_path = dir.join("package.json");
    if !manifest_path.is_file() {
        return Ok(None);
    }
    let manifest = build::read(&f.name, &manifest_path)?;
    let parsed: serde_json::Value =
        serde_json::from_slice(&manifest).map_err(|e| PrepareError::Invalid {
            function: f.name.clone(),
            what: format!(
                "{} is not valid JSON: {e}; npm cannot install its dependencies",
                manifest_path.display()
            ),
        })?;
    let declares = |key: &str| parsed[key].as_object().is_some_and(|m| !m.is_empty());
    if !(declares("dependencies") || with_dev && declares("devDependencies")) {
        return Ok(None);
    }
    let lock = ["package-lock.json", "npm-shrinkwrap.json"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file());
    let lock_text = lock
        .as_deref()
        .map(|p| build::read(&f.name, p))
        .transpose()?
        .unwrap_or_default();
    let npmrc = std::fs::read(dir.join(".npmrc")).unwrap_or_default();
    let mode: &[u8] = if with_dev { b"all" } else { b"prod" };
    let target = build::deps_dir(
        &opts.cache_dir,
        &format!("node{major}"),
        &[&manifest, &lock_text, &npmrc, mode],
    );
    let out = build::cached_dir(&f.name, &target, |tmp| {
        let copy = |name: &str| -> Result<(), PrepareError> {
            let from = dir.join(name);
            if from.is_file() {
                std::fs::copy(&from, tmp.join(name)).map_err(|source| PrepareError::Io {
                    function: f.name.clone(),
                    path: from,
                    source,
                })?;
            }
            Ok(())
        };
        for name in [
            "package.json",
            "package-lock.json",
            "npm-shrinkwrap.json",
            ".npmrc",
        ] {
            copy(name)?;
        }
        let mut cmd = npm(node);
        cmd.current_dir(tmp);
        let what = if lock.is_some() {
            cmd.arg("ci");
            "installing package.json dependencies (npm ci)"
        } else {
            cmd.args(["install", "--no-package-lock"]);
            "installing package.json dependencies (npm install)"
        };
        if !with_dev {
            cmd.arg("--omit=dev");
        }
        build::run(&f.name, what, &mut cmd)?;
        // A registry token in .npmrc has done its work: it stays in the user's folder only.
        let _ = std::fs::remove_file(tmp.join(".npmrc"));
        Ok(())
    })?;
    let modules = out.join("node_modules");
    Ok(modules.is_dir().then_some(modules))
}

/// npm packages (`name@range`) installed into a cached folder; returns its `node_modules`.
pub(crate) fn install_packages(
    f: &Function,
    node: &Node,
    packages: &[String],
    opts: &PrepareOptions,
) -> Result<PathBuf, PrepareError> {
    let target = build::deps_dir(
        &opts.cache_dir,
        &format!("node{}", node.major),
        &[packages.join("\n").as_bytes()],
    );
    let out = build::cached_dir(&f.name, &target, |tmp| {
        std::fs::write(tmp.join("package.json"), "{\"private\":true}\n").map_err(|source| {
            PrepareError::Io {
                function: f.name.clone(),
                path: tmp.to_owned(),
                source,
            }
        })?;
        build::run(
            &f.name,
            &format!("installing {}", packages.join(" ")),
            npm(node)
                .current_dir(tmp)
                .args(["install", "--no-package-lock", "--omit=dev"])
                .args(packages),
        )
    })?;
    Ok(out.join("node_modules"))
}

/// The `@aws-sdk/*` packages the function's own source imports that neither its dependencies
/// nor its layers provide, installed as Lambda's runtime would have them. A failed install
/// warns and the function starts anyway: only its SDK imports fail.
fn runtime_sdk(
    f: &Function,
    node: &Node,
    code: &Path,
    modules: &[PathBuf],
    opts: &PrepareOptions,
) -> Option<PathBuf> {
    let wanted: Vec<String> = sdk_imports(code)
        .into_iter()
        .filter(|p| !modules.iter().any(|m| m.join(p).is_dir()))
        .map(|p| format!("{p}@{SDK_VERSION}"))
        .collect();
    if wanted.is_empty() {
        return None;
    }
    match install_packages(f, node, &wanted, opts) {
        Ok(dir) => Some(dir),
        Err(e) => {
            tracing::warn!("{e}\n  its imports of the AWS SDK for JavaScript will fail");
            None
        }
    }
}

/// Package names after `@aws-sdk/` in quoted specifiers of the function's own source files
/// (not `node_modules`), e.g. `@aws-sdk/client-sqs` from `from "@aws-sdk/client-sqs"`.
fn sdk_imports(code: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![code.to_owned()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if name != "node_modules" && !name.starts_with('.') {
                    stack.push(path);
                }
                continue;
            }
            let source_file = ["js", "mjs", "cjs", "ts", "mts", "cts", "jsx", "tsx"]
                .iter()
                .any(|ext| path.extension().is_some_and(|e| e == *ext));
            if !source_file || entry.metadata().map_or(true, |m| m.len() > SCAN_MAX_BYTES) {
                continue;
            }
            files += 1;
            if files > SCAN_MAX_FILES {
                return found;
            }
            if let Ok(text) = std::fs::read_to_string(&path) {
                found.extend(sdk_specifiers(&text));
            }
        }
    }
    found
}

fn sdk_specifiers(text: &str) -> impl Iterator<Item = String> + '_ {
    text.match_indices("@aws-sdk/").filter_map(move |(at, m)| {
        let quoted = text[..at].ends_with(['"', '\'', '`']);
        let rest = &text[at + m.len()..];
        let len = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(rest.len());
        (quoted && len > 0).then(|| format!("@aws-sdk/{}", &rest[..len]))
    })
}

/// `Metadata: BuildMethod: esbuild` with SAM's `BuildProperties` (defaults as SAM's: target
/// es2020, CommonJS, minified); bundled into `<state>/build/<function>`, afresh each start.
fn esbuild(
    f: &Function,
    code: &Path,
    deps: Option<&Path>,
    opts: &PrepareOptions,
) -> Result<PathBuf, PrepareError> {
    let props = &f.metadata["BuildProperties"];
    let invalid = |what: String| PrepareError::Invalid {
        function: f.name.clone(),
        what: format!("Resources.{}.Metadata.BuildProperties.{what}", f.logical_id),
    };
    let strings = |key: &str| -> Result<Vec<String>, PrepareError> {
        match &props[key] {
            serde_json::Value::Null => Ok(Vec::new()),
            serde_json::Value::String(s) => Ok(vec![s.clone()]),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| invalid(format!("{key}: expected a list of strings")))
                })
                .collect(),
            _ => Err(invalid(format!("{key}: expected a list of strings"))),
        }
    };
    let flag = |key: &str, default: bool| match &props[key] {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => default,
    };
    let entries = strings("EntryPoints")?;
    if entries.is_empty() {
        return Err(invalid(
            "EntryPoints: missing; name the handler's source file, e.g. [app.ts]".into(),
        ));
    }
    for e in &entries {
        if !code.join(e).is_file() {
            return Err(invalid(format!(
                "EntryPoints: {} does not exist",
                code.join(e).display()
            )));
        }
    }
    let out = build::fresh_dir(&f.name, &opts.work_dir("build", f))?;
    let program = deps
        .map(|d| d.join(".bin/esbuild"))
        .filter(|p| p.is_file())
        .or_else(|| super::find_on_path("esbuild"))
        .map_or_else(|| esbuild_tool(f, opts), Ok)?;
    let mut cmd = Command::new(program);
    cmd.current_dir(code).args(&entries).args([
        "--bundle",
        "--platform=node",
        "--log-level=warning",
    ]);
    cmd.arg(format!("--outdir={}", out.display()));
    cmd.arg(format!(
        "--target={}",
        props["Target"].as_str().unwrap_or("es2020")
    ));
    cmd.arg(format!(
        "--format={}",
        props["Format"].as_str().unwrap_or("cjs")
    ));
    if flag("Minify", true) {
        cmd.arg("--minify");
    }
    if flag("Sourcemap", false) {
        cmd.arg("--sourcemap");
    }
    let mut external = strings("External")?;
    // The runtime provides the SDK; without it in the dependencies, leave it to the runtime.
    if !deps.is_some_and(|d| d.join("@aws-sdk").is_dir()) {
        external.push("@aws-sdk/*".into());
    }
    for e in external {
        cmd.arg(format!("--external:{e}"));
    }
    for l in strings("Loader")? {
        cmd.arg(format!("--loader:{l}"));
    }
    for o in strings("OutExtension")? {
        cmd.arg(format!("--out-extension:{o}"));
    }
    let main_fields = strings("MainFields")?;
    if !main_fields.is_empty() {
        cmd.arg(format!("--main-fields={}", main_fields.join(",")));
    }
    if let Some(banner) = props["Banner"].as_str() {
        cmd.arg(format!("--banner:{banner}"));
    }
    if let Some(deps) = deps {
        cmd.env("NODE_PATH", deps);
    }
    build::run(&f.name, "bundling with esbuild", &mut cmd)?;
    super::code::commonjs_root(f, &out)?;
    Ok(out)
}

/// esbuild from npm, installed once into the cache.
fn esbuild_tool(f: &Function, opts: &PrepareOptions) -> Result<PathBuf, PrepareError> {
    let node = interpreter(f, 0, opts)?;
    let modules = install_packages(f, &node, &[ESBUILD.to_owned()], opts)?;
    Ok(modules.join(".bin/esbuild"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sdk_packages_in_quoted_specifiers_only() {
        let src = r#"
import { SQSClient } from "@aws-sdk/client-sqs";
const { DynamoDBDocumentClient } = require('@aws-sdk/lib-dynamodb');
const lazy = await import(`@aws-sdk/client-s3`);
// see the docs of @aws-sdk/client-sns: not an import
import x from "@aws-sdk/";
"#;
        let found: Vec<String> = sdk_specifiers(src).collect();
        assert_eq!(
            found,
            [
                "@aws-sdk/client-sqs",
                "@aws-sdk/lib-dynamodb",
                "@aws-sdk/client-s3"
            ]
        );
    }
}
