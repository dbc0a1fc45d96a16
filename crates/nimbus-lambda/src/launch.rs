//! How each runtime starts: a `bootstrap` executable for `provided.*` (built with cargo for
//! `rust-cargolambda` functions), nimbus's own Python runtime loop (or `awslambdaric`) for
//! `python3.x`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nimbus_template::{Code, Function};

/// The command that starts one execution environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// `LAMBDA_TASK_ROOT` and the working directory: the function's code.
    pub task_root: PathBuf,
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

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("function {function}: runtime {runtime} is not supported by nimbus; use provided.al2023, provided.al2 or python3.x")]
    UnsupportedRuntime { function: String, runtime: String },
    #[error("function {function}: CodeUri {path} does not exist; fix CodeUri (it is relative to the template's folder)")]
    MissingCode { function: String, path: PathBuf },
    #[error("function {function}: {path} is missing; a provided.* runtime needs an executable named bootstrap in CodeUri, or Metadata: BuildMethod: rust-cargolambda to build one with cargo")]
    MissingBootstrap { function: String, path: PathBuf },
    #[error("function {function}: {path} is not executable; run chmod +x on it")]
    NotExecutable { function: String, path: PathBuf },
    #[error("function {function}: InlineCode is only supported for python runtimes")]
    InlineNotSupported { function: String },
    #[error("function {function}: no working {wanted} or python3; install Python 3 or point --python at an interpreter")]
    PythonNotFound { function: String, wanted: String },
    #[error("function {function}: cargo build failed ({detail}); fix the compile errors above and restart")]
    BuildFailed { function: String, detail: String },
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
    /// `<state-dir>`: inline code and the Python runtime loop are written under it.
    pub state_dir: PathBuf,
    pub python_runtime: PythonRuntime,
    /// The interpreter for python functions; `None`: `pythonX.Y` of the runtime, else `python3`.
    pub python: Option<PathBuf>,
    /// Build `rust-cargolambda` functions with `cargo build --release` (else expect a built one).
    pub cargo: PathBuf,
}

const PYTHON_LOOP: &str = include_str!("../runtimes/python/nimbus_runtime.py");

/// Works out (and if needed builds) what starts `f`. Runs cargo for `rust-cargolambda`
/// functions, with cargo's progress on the terminal.
pub fn prepare(f: &Function, opts: &PrepareOptions) -> Result<LaunchSpec, PrepareError> {
    let io = |path: &Path| {
        let function = f.name.clone();
        let path = path.to_owned();
        move |source| PrepareError::Io {
            function,
            path,
            source,
        }
    };
    let task_root = match &f.code {
        Code::Uri(uri) => {
            let dir = opts.template_dir.join(uri);
            if !dir.exists() {
                return Err(PrepareError::MissingCode {
                    function: f.name.clone(),
                    path: dir,
                });
            }
            dir
        }
        Code::Inline(source) => {
            if !f.runtime.starts_with("python") {
                return Err(PrepareError::InlineNotSupported {
                    function: f.name.clone(),
                });
            }
            // SAM writes inline code as index.py; handlers name it `index.<function>`.
            let dir = opts.state_dir.join("inline").join(&f.name);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            let file = dir.join("index.py");
            std::fs::write(&file, source).map_err(io(&file))?;
            dir
        }
    };

    if f.runtime.starts_with("provided") {
        let program = if f.build_method.as_deref() == Some("rust-cargolambda") {
            cargo_build(f, &task_root, opts)?
        } else {
            task_root.join("bootstrap")
        };
        check_executable(f, &program)?;
        Ok(LaunchSpec {
            program,
            args: Vec::new(),
            task_root,
        })
    } else if let Some(version) = f.runtime.strip_prefix("python") {
        let wanted = format!("python{version}");
        let python = choose_python(f, opts.python.as_deref(), &wanted, version)?;
        let handler = f.handler.clone().unwrap_or_default();
        let args = match opts.python_runtime {
            PythonRuntime::Builtin => {
                let dir = opts.state_dir.join("runtime").join("python");
                std::fs::create_dir_all(&dir).map_err(io(&dir))?;
                let script = dir.join("nimbus_runtime.py");
                std::fs::write(&script, PYTHON_LOOP).map_err(io(&script))?;
                vec![OsString::from("-u"), script.into_os_string()]
            }
            PythonRuntime::Awslambdaric => vec![
                OsString::from("-m"),
                OsString::from("awslambdaric"),
                OsString::from(handler),
            ],
        };
        Ok(LaunchSpec {
            program: python,
            args,
            task_root,
        })
    } else {
        Err(PrepareError::UnsupportedRuntime {
            function: f.name.clone(),
            runtime: f.runtime.clone(),
        })
    }
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

/// The interpreter for a python function: `--python` if given, else `pythonX.Y`, else
/// `python3`. Each candidate is run once to check that it works, because version managers such
/// as pyenv put shims on PATH for versions that are not active.
fn choose_python(
    f: &Function,
    explicit: Option<&Path>,
    wanted: &str,
    version: &str,
) -> Result<PathBuf, PrepareError> {
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
            return Ok(candidate);
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
    let output = std::process::Command::new(&opts.cargo)
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
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
    let binaries = built_binaries(&stdout, &manifest);
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
                None => format!(
                    "the crate builds {} binaries ({}); name one with Metadata: BuildProperties: Binary",
                    binaries.len(),
                    binaries.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                ),
            },
        })
}

/// `(name, path)` of each binary cargo built for the package at `manifest`, from cargo's JSON
/// messages.
fn built_binaries(messages: &str, manifest: &Path) -> Vec<(String, PathBuf)> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["manifest_path"].as_str().map(Path::new) == Some(manifest))
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
            built_binaries(msgs, Path::new("/w/f/Cargo.toml")),
            vec![("hello".to_owned(), PathBuf::from("/t/release/hello"))]
        );
    }
}
