//! How each runtime starts and what it is given, as `sam build` would prepare it: a
//! `bootstrap` executable for `provided.*` (built with cargo for `rust-cargolambda`, or by
//! `make`), nimbus's own Python or Node.js runtime loop (or `awslambdaric`) for `python3.x` and
//! `nodejsN.x`, with the function's dependencies installed (`requirements.txt`,
//! `package.json`, esbuild bundles), its layers mounted on the runtime's search paths, and the
//! AWS SDK the managed runtime ships.

mod build;
mod code;
mod layers;
mod node;
mod python;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nimbus_template::{Code, Function, Stack};

/// The command that starts one execution environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// `LAMBDA_TASK_ROOT` and the working directory: the function's code.
    pub task_root: PathBuf,
    /// What the runtime adds to the process environment after the function's own variables:
    /// the search paths of installed dependencies, layers and the runtime's SDK.
    pub env: BTreeMap<String, String>,
}

/// Which Python runtime interface client runs Python handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PythonRuntime {
    /// nimbus's own standard-library loop (no install needed).
    #[default]
    Builtin,
    /// AWS's `awslambdaric` package, which must be importable by the chosen python.
    Awslambdaric,
}

/// Lambda's runtime identifiers nimbus runs, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runtime<'a> {
    Provided,
    /// `python3.12` -> `3.12`.
    Python(&'a str),
    /// `nodejs20.x` -> 20.
    Node(u32),
}

impl<'a> Runtime<'a> {
    pub(crate) fn parse(id: &'a str) -> Option<Self> {
        if id.starts_with("provided") {
            return Some(Self::Provided);
        }
        if let Some(v) = id.strip_prefix("python") {
            let ok = v.split_once('.').is_some_and(|(a, b)| {
                a == "3" && !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit())
            });
            return ok.then_some(Self::Python(v));
        }
        let major = id
            .strip_prefix("nodejs")?
            .strip_suffix(".x")?
            .parse()
            .ok()?;
        (18..=24).contains(&major).then_some(Self::Node(major))
    }
}

/// The interpreter a function's runtime needs, found once per function and shared by its
/// layers' builds.
pub(crate) enum Interp {
    None,
    Python(python::Python),
    Node(node::Node),
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("function {function}: Runtime {runtime} (Resources.{logical_id}.Properties.Runtime, line {line}) is not supported by nimbus; it runs provided.al2023, provided.al2, python3.x and nodejs18.x to nodejs24.x")]
    UnsupportedRuntime {
        function: String,
        logical_id: String,
        runtime: String,
        line: usize,
    },
    #[error("function {function}: CodeUri {path} does not exist; fix CodeUri (it is relative to the template's folder)")]
    MissingCode { function: String, path: PathBuf },
    #[error("function {function}: {path} is missing; a provided.* runtime needs an executable named bootstrap in CodeUri, or Metadata: BuildMethod: rust-cargolambda to build one with cargo")]
    MissingBootstrap { function: String, path: PathBuf },
    #[error("function {function}: {path} is not executable; run chmod +x on it")]
    NotExecutable { function: String, path: PathBuf },
    #[error("function {function}: InlineCode is only supported for python and nodejs runtimes")]
    InlineNotSupported { function: String },
    #[error("function {function}: no working {wanted} or python3; install Python 3 or point --python at an interpreter")]
    PythonNotFound { function: String, wanted: String },
    #[error("function {function}: runtime {runtime} needs Node.js, and there is no working {wanted}; install Node.js {major} (e.g. apt-get install nodejs) or point --node at it")]
    NodeNotFound {
        function: String,
        runtime: String,
        wanted: String,
        major: u32,
    },
    #[error("function {function}: cargo build failed ({detail}); fix the compile errors above")]
    BuildFailed { function: String, detail: String },
    #[error("function {function}: `{command}` failed ({status}); its last output:\n{tail}")]
    CommandFailed {
        function: String,
        command: String,
        status: String,
        tail: String,
    },
    #[error("function {function}: {what}")]
    Invalid { function: String, what: String },
    #[error("function {function}: {path}: {source}")]
    Io {
        function: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What preparing needs besides the function.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// The template's folder: `CodeUri` is relative to it.
    pub template_dir: PathBuf,
    /// `<state-dir>`: inline code, builds and the runtime loops are written under it.
    pub state_dir: PathBuf,
    /// Shared by every stack on the machine: installed dependencies (keyed by the hash of
    /// their manifest), the runtimes' SDKs, build tools.
    pub cache_dir: PathBuf,
    pub python_runtime: PythonRuntime,
    /// The interpreter for python functions; `None`: `pythonX.Y` of the runtime, else `python3`.
    pub python: Option<PathBuf>,
    /// The `node` for nodejs functions; `None`: `node` on PATH.
    pub node: Option<PathBuf>,
    /// Build `rust-cargolambda` functions with `cargo build --release` (else expect a built one).
    pub cargo: PathBuf,
    /// `--layer ARN=DIR`: published layers mapped to local folders (an ARN without its
    /// version matches every version).
    pub layer_dirs: Vec<(String, PathBuf)>,
    /// 0 at start, then one more for each `--watch` rebuild: builds of a new generation go to
    /// new folders, so environments still running the old code keep their files.
    pub generation: u64,
}

impl PrepareOptions {
    /// `$NIMBUS_CACHE_DIR`, else `$XDG_CACHE_HOME/nimbus`, else `~/.cache/nimbus`.
    pub fn default_cache_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("NIMBUS_CACHE_DIR") {
            return PathBuf::from(dir);
        }
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(dir).join("nimbus");
        }
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache").join("nimbus"))
            .unwrap_or_else(|| std::env::temp_dir().join("nimbus-cache"))
    }

    /// `<state-dir>/<kind>/<function>[.<generation>]`: per-function output of builds that run
    /// each start (bundles, make artifacts, extracted archives, inline code).
    pub(crate) fn work_dir(&self, kind: &str, f: &Function) -> PathBuf {
        let name = match self.generation {
            0 => f.name.clone(),
            g => format!("{}.{g}", f.name),
        };
        self.state_dir.join(kind).join(name)
    }
}

/// Works out, and builds or installs where needed, what starts `f`: runs cargo, make, pip,
/// npm or esbuild as `sam build` would, with their progress logged. `stack` holds the layers
/// the function names.
pub fn prepare(
    f: &Function,
    stack: &Stack,
    opts: &PrepareOptions,
) -> Result<LaunchSpec, PrepareError> {
    let Some(runtime) = Runtime::parse(&f.runtime) else {
        return Err(PrepareError::UnsupportedRuntime {
            function: f.name.clone(),
            logical_id: f.logical_id.clone(),
            runtime: f.runtime.clone(),
            line: f.property_lines.get("Runtime").copied().unwrap_or(f.line),
        });
    };
    let code = code::locate(f, runtime, opts)?;
    let interp = match runtime {
        Runtime::Provided => Interp::None,
        Runtime::Python(v) => Interp::Python(python::interpreter(f, v, opts)?),
        Runtime::Node(major) => Interp::Node(node::interpreter(f, major, opts)?),
    };
    let layers = layers::resolve(f, stack, &interp, opts)?;
    let task_root = match f.build_method.as_deref() {
        Some("makefile") => make(
            f,
            &f.logical_id,
            &code,
            &opts.work_dir("build", f),
            &opts.work_dir("scratch", f),
        )?,
        _ => code,
    };

    let mut spec = match (runtime, &interp) {
        (Runtime::Python(version), Interp::Python(py)) => {
            python::prepare(f, task_root, &layers, py, version, opts)?
        }
        (Runtime::Node(major), Interp::Node(node)) => {
            node::prepare(f, task_root, &layers, node, major, opts)?
        }
        _ => {
            let program = if f.build_method.as_deref() == Some("rust-cargolambda") {
                cargo_build(f, &task_root, opts)?
            } else {
                task_root.join("bootstrap")
            };
            check_executable(f, &program)?;
            LaunchSpec {
                program,
                args: Vec::new(),
                task_root,
                env: BTreeMap::new(),
            }
        }
    };
    layers::add_paths(&mut spec.env, &layers);
    if runtime != Runtime::Provided {
        exec_wrapper(f, &layers, &mut spec);
    }
    Ok(spec)
}

/// Removes what preparing `function` at `generation` wrote under the state directory (bundles,
/// make artifacts and scratch copies, extracted archives, inline code, built layers), once no
/// environment runs that code any more. Generations are unique per rebuild, so a layer folder
/// with that suffix belongs to this one.
pub fn remove_generation(state_dir: &Path, function: &str, generation: u64) {
    for kind in ["build", "code", "inline", "scratch", "layers"] {
        let Ok(entries) = std::fs::read_dir(state_dir.join(kind)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Generation 0's layers are shared by every function prepared at start-up: they
            // stay. A later generation's are this rebuild's own.
            let ours = match generation {
                0 => kind != "layers" && name == function,
                g => name.ends_with(&format!(".{g}")),
            };
            if ours {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// The files `f` is made of: its code folder (or archive) and the folders of the template's
/// layers it uses. `--watch` rebuilds `f` when one of them changes.
pub fn sources(f: &Function, stack: &Stack, opts: &PrepareOptions) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Code::Uri(uri) = &f.code {
        out.push(opts.template_dir.join(uri));
    }
    out.extend(layers::template_sources(f, stack, opts));
    out
}

/// `AWS_LAMBDA_EXEC_WRAPPER`: Lambda starts the wrapper script with the runtime's command as
/// its arguments. A wrapper under `/opt/` comes from a layer, so it is looked up in the layers
/// (the last one first, as the last layer's files win in `/opt`).
fn exec_wrapper(f: &Function, layers: &[layers::Layer], spec: &mut LaunchSpec) {
    let Some(wrapper) = f.environment.get("AWS_LAMBDA_EXEC_WRAPPER") else {
        return;
    };
    let path = wrapper
        .strip_prefix("/opt/")
        .and_then(|rel| {
            layers
                .iter()
                .rev()
                .filter_map(|l| l.root.as_ref())
                .map(|r| r.join(rel))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from(wrapper));
    let mut args = vec![spec.program.clone().into_os_string()];
    args.append(&mut spec.args);
    spec.program = path;
    spec.args = args;
}

/// `Metadata: BuildMethod: makefile`: `make build-<LogicalId>` with `ARTIFACTS_DIR` (also as a
/// make variable), as `sam build` runs it: in a scratch copy of the code's folder, so the
/// Makefile's own outputs land outside the user's tree. The artifacts are the code.
fn make(
    f: &Function,
    target_id: &str,
    code: &Path,
    out: &Path,
    scratch: &Path,
) -> Result<PathBuf, PrepareError> {
    if !code.join("Makefile").is_file() {
        return Err(PrepareError::Invalid {
            function: f.name.clone(),
            what: format!(
                "Metadata.BuildMethod is makefile, but {} has no Makefile",
                code.display()
            ),
        });
    }
    build::copy_source(&f.name, code, scratch)?;
    let out = build::fresh_dir(&f.name, out)?;
    build::run(
        &f.name,
        "building with make",
        std::process::Command::new("make")
            .current_dir(scratch)
            .arg(format!("build-{target_id}"))
            .arg(format!("ARTIFACTS_DIR={}", out.display()))
            .env("ARTIFACTS_DIR", &out),
    )?;
    Ok(out)
}

fn check_executable(f: &Function, program: &Path) -> Result<(), PrepareError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(program) {
        Err(_) => Err(PrepareError::MissingBootstrap {
            function: f.name.clone(),
            path: program.to_owned(),
        }),
        Ok(m) if !m.is_file() || m.permissions().mode() & 0o111 == 0 => {
            Err(PrepareError::NotExecutable {
                function: f.name.clone(),
                path: program.to_owned(),
            })
        }
        Ok(_) => Ok(()),
    }
}

/// The interpreter for a python function and its `major.minor`: `--python` if given, else
/// `pythonX.Y`, else `python3`. Each candidate is run once to check that it works, because
/// version managers such as pyenv put shims on PATH for versions that are not active.
fn choose_python(
    f: &Function,
    explicit: Option<&Path>,
    wanted: &str,
    version: &str,
) -> Result<(PathBuf, String), PrepareError> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(p) => vec![p.to_owned()],
        None => [wanted, "python3"]
            .iter()
            .filter_map(|name| find_on_path(name))
            .collect(),
    };
    for candidate in candidates {
        if let Some(found) = python_version(&candidate) {
            if found != version {
                tracing::warn!(
                    "function {}: runtime is python{version} but {} is Python {found}",
                    f.name,
                    candidate.display()
                );
            }
            return Ok((candidate, found));
        }
    }
    Err(PrepareError::PythonNotFound {
        function: f.name.clone(),
        wanted: explicit.map_or_else(|| wanted.to_owned(), |p| p.display().to_string()),
    })
}

/// `3.12` for a working interpreter, `None` when it does not run.
fn python_version(python: &Path) -> Option<String> {
    let out = std::process::Command::new(python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// `cargo build --release` of the crate in `dir`; returns the built executable. Which binary:
/// `Metadata.BuildProperties.Binary`, else the package's only binary, as cargo-lambda does.
fn cargo_build(f: &Function, dir: &Path, opts: &PrepareOptions) -> Result<PathBuf, PrepareError> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(PrepareError::MissingCode {
            function: f.name.clone(),
            path: manifest,
        });
    }
    tracing::info!(
        "building {} (cargo build --release in {})",
        f.name,
        dir.display()
    );
    let mut cmd = std::process::Command::new(&opts.cargo);
    cmd.args([
        "build",
        "--release",
        "--message-format=json-render-diagnostics",
        "--manifest-path",
    ])
    .arg(&manifest);
    // A named binary may belong to any member of a workspace whose root is the CodeUri.
    if let Some(bin) = &f.build_binary {
        cmd.args(["--bin", bin]);
    }
    build::contain(&mut cmd);
    let output = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| PrepareError::Io {
            function: f.name.clone(),
            path: opts.cargo.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(PrepareError::BuildFailed {
            function: f.name.clone(),
            detail: output.status.to_string(),
        });
    }
    let manifest = manifest.canonicalize().unwrap_or(manifest);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let binaries = built_binaries(&stdout, f.build_binary.is_none().then_some(&*manifest));
    let chosen = match &f.build_binary {
        Some(name) => binaries.iter().find(|(n, _)| n == name),
        None if binaries.len() == 1 => binaries.first(),
        None => None,
    };
    chosen
        .map(|(_, path)| path.clone())
        .ok_or_else(|| PrepareError::BuildFailed {
            function: f.name.clone(),
            detail: match &f.build_binary {
                Some(name) => format!("the crate has no binary named {name}"),
                None if binaries.is_empty() => format!(
                    "{} builds no binary of its own (a workspace root?); name the binary with \
                     Metadata: BuildProperties: Binary",
                    manifest.display()
                ),
                None => format!(
                    "the crate builds {} binaries ({}); name one with Metadata: BuildProperties: Binary",
                    binaries.len(),
                    binaries.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                ),
            },
        })
}

/// `(name, path)` of each binary cargo built (for the package at `manifest`, when given), from
/// cargo's JSON messages.
fn built_binaries(messages: &str, manifest: Option<&Path>) -> Vec<(String, PathBuf)> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            manifest
                .is_none_or(|manifest| m["manifest_path"].as_str().map(Path::new) == Some(manifest))
        })
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .filter_map(|m| {
            let name = m["target"]["name"].as_str()?.to_owned();
            let exe = m["executable"].as_str()?;
            Some((name, PathBuf::from(exe)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_binaries_of_the_built_package_only() {
        let msgs = r#"{"reason":"compiler-artifact","manifest_path":"/w/dep/Cargo.toml","target":{"kind":["bin"],"name":"dep"},"executable":"/t/dep"}
{"reason":"compiler-artifact","manifest_path":"/w/f/Cargo.toml","target":{"kind":["lib"],"name":"f"},"executable":null}
{"reason":"compiler-artifact","manifest_path":"/w/f/Cargo.toml","target":{"kind":["bin"],"name":"hello"},"executable":"/t/release/hello"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            built_binaries(msgs, Some(Path::new("/w/f/Cargo.toml"))),
            vec![("hello".to_owned(), PathBuf::from("/t/release/hello"))]
        );
    }
}
