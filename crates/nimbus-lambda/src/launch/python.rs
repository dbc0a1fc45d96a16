//! Python functions: the interpreter, `requirements.txt` installed with pip as `sam build`
//! does (into a folder cached by the hash of the requirements and the Python version), the
//! layers' `python/` folders, and `boto3`, which Lambda's Python runtimes ship.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use nimbus_template::Function;

use super::layers::Layer;
use super::{build, LaunchSpec, PrepareError, PrepareOptions, PythonRuntime};

const PYTHON_LOOP: &str = include_str!("../../runtimes/python/nimbus_runtime.py");

/// What Lambda's Python runtimes provide without a declaration: boto3 recent enough to honour
/// `AWS_ENDPOINT_URL` (1.28.57), so a function's SDK calls reach nimbus.
const RUNTIME_SDK: &str = "boto3>=1.34";

/// A working interpreter and its `major.minor`.
#[derive(Debug, Clone)]
pub(crate) struct Python {
    pub path: PathBuf,
    pub version: String,
}

/// The interpreter for `f` (see [`super::choose_python`]).
pub(crate) fn interpreter(
    f: &Function,
    version: &str,
    opts: &PrepareOptions,
) -> Result<Python, PrepareError> {
    let wanted = format!("python{version}");
    let (path, version) = super::choose_python(f, opts.python.as_deref(), &wanted, version)?;
    Ok(Python { path, version })
}

pub(crate) fn prepare(
    f: &Function,
    task_root: PathBuf,
    layers: &[Layer],
    py: &Python,
    runtime_version: &str,
    opts: &PrepareOptions,
) -> Result<LaunchSpec, PrepareError> {
    // The order of Lambda's sys.path: the code (with what sam build installed beside it), the
    // layers (/opt/python/lib/pythonX.Y/site-packages, then /opt/python), then the runtime's
    // own packages (boto3).
    let mut path = vec![task_root.clone()];
    if f.build_method.as_deref() != Some("makefile") {
        path.extend(requirements(f, py, &task_root, opts)?);
    }
    for layer in layers.iter().rev() {
        if let Some(root) = &layer.root {
            path.push(
                root.join("python/lib")
                    .join(format!("python{runtime_version}"))
                    .join("site-packages"),
            );
            path.push(root.join("python"));
        }
        path.extend(layer.python.iter().cloned());
    }
    path.extend(runtime_sdk(f, py, opts));
    path.retain(|p| p.is_dir());

    let args = match opts.python_runtime {
        PythonRuntime::Builtin => {
            let dir = opts.state_dir.join("runtime").join("python");
            let script = dir.join("nimbus_runtime.py");
            build::write_file(&f.name, &script, PYTHON_LOOP)?;
            vec![OsString::from("-u"), script.into_os_string()]
        }
        PythonRuntime::Awslambdaric => vec![
            OsString::from("-m"),
            OsString::from("awslambdaric"),
            OsString::from(f.handler.clone().unwrap_or_default()),
        ],
    };
    let mut env = BTreeMap::new();
    let joined = std::env::join_paths(&path).unwrap_or_default();
    env.insert("PYTHONPATH".into(), joined.to_string_lossy().into_owned());
    Ok(LaunchSpec {
        program: py.path.clone(),
        args,
        task_root,
        env,
    })
}

/// `requirements.txt` in `dir`, installed with pip into a cached folder; `None` when there is
/// none, or it lists nothing.
pub(crate) fn requirements(
    f: &Function,
    py: &Python,
    dir: &Path,
    opts: &PrepareOptions,
) -> Result<Option<PathBuf>, PrepareError> {
    let file = dir.join("requirements.txt");
    if !file.is_file() {
        return Ok(None);
    }
    let text = build::read(&f.name, &file)?;
    let lists_something = String::from_utf8_lossy(&text)
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if !lists_something {
        return Ok(None);
    }
    // Wheels are for this interpreter's version and platform (part of every cache key); files
    // it names (`-r base.txt`, `-c constraints.txt`) are part of what it installs. It may name
    // other files and local paths, so pip runs in `dir`.
    let mut named = Vec::new();
    for line in String::from_utf8_lossy(&text).lines() {
        let mut words = line.split_whitespace();
        if let (Some("-r" | "-c" | "--requirement" | "--constraint"), Some(name)) =
            (words.next(), words.next())
        {
            named.push(std::fs::read(dir.join(name)).unwrap_or_default());
        }
    }
    let mut parts: Vec<&[u8]> = vec![&text];
    parts.extend(named.iter().map(Vec::as_slice));
    let target = build::deps_dir(&opts.cache_dir, &format!("python{}", py.version), &parts);
    let dir = build::cached_dir(&f.name, &target, |tmp| {
        build::run(
            &f.name,
            "installing requirements.txt",
            pip(py)
                .current_dir(dir)
                .args(["-r", "requirements.txt", "--target"])
                .arg(tmp),
        )
    })?;
    Ok(Some(dir))
}

/// Packages named by `specs` installed into a cached folder (keyed by the specs and the Python
/// version), e.g. the package behind a published layer.
pub(crate) fn install_packages(
    f: &Function,
    py: &Python,
    specs: &[String],
    opts: &PrepareOptions,
) -> Result<PathBuf, PrepareError> {
    let joined = specs.join("\n");
    let target = build::deps_dir(
        &opts.cache_dir,
        &format!("python{}", py.version),
        &[joined.as_bytes()],
    );
    build::cached_dir(&f.name, &target, |tmp| {
        build::run(
            &f.name,
            &format!("installing {}", specs.join(" ")),
            pip(py).args(specs).arg("--target").arg(tmp),
        )
    })
}

fn pip(py: &Python) -> Command {
    let mut cmd = Command::new(&py.path);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
    ]);
    cmd
}

/// boto3 for this interpreter, installed once per machine. Without it (no network, no pip)
/// functions still start, and only those that import boto3 fail, so this warns once.
fn runtime_sdk(f: &Function, py: &Python, opts: &PrepareOptions) -> Option<PathBuf> {
    static FAILED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    if FAILED.lock().is_ok_and(|v| v.contains(&py.version)) {
        return None;
    }
    let target = opts
        .cache_dir
        .join("runtime")
        .join(format!("python{}-sdk", py.version));
    match build::cached_dir(&f.name, &target, |tmp| {
        build::run(
            &f.name,
            "installing boto3, which Lambda's Python runtimes provide",
            pip(py).arg(RUNTIME_SDK).arg("--target").arg(tmp),
        )
    }) {
        Ok(dir) => Some(dir),
        Err(e) => {
            tracing::warn!("{e}\n  functions that import boto3 without declaring it in requirements.txt will fail to import it");
            if let Ok(mut v) = FAILED.lock() {
                v.push(py.version.clone());
            }
            None
        }
    }
}
