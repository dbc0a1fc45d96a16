//! Where a function's code is: a folder (`CodeUri`, or a CDK asset folder), a `.zip` file
//! (extracted under the state directory), or inline source (written out as Lambda names it).

use std::path::{Path, PathBuf};

use nimbus_template::{Code, Function};

use super::{build, PrepareError, PrepareOptions, Runtime};

/// The folder holding `f`'s code, ready to run or build.
pub(crate) fn locate(
    f: &Function,
    runtime: Runtime<'_>,
    opts: &PrepareOptions,
) -> Result<PathBuf, PrepareError> {
    match &f.code {
        Code::Uri(uri) => {
            let path = opts.template_dir.join(uri);
            if path.is_dir() {
                Ok(path)
            } else if path.is_file() && is_zip(&path) {
                let out = opts.work_dir("code", f);
                extract(f, &path, &out)?;
                if let Runtime::Node(_) = runtime {
                    if !out.join("package.json").exists() {
                        commonjs_root(f, &out)?;
                    }
                }
                Ok(out)
            } else if path.is_file() {
                Err(PrepareError::Invalid {
                    function: f.name.clone(),
                    what: format!(
                        "CodeUri {} is a file but not a .zip archive; point CodeUri at the \
                         function's folder or at a .zip of it",
                        path.display()
                    ),
                })
            } else {
                Err(PrepareError::MissingCode {
                    function: f.name.clone(),
                    path,
                })
            }
        }
        Code::Inline(source) => {
            // The file names CloudFormation gives inline code (`Code.ZipFile`), which handlers
            // then name as `index.<function>`.
            let file = match runtime {
                Runtime::Python(_) => "index.py",
                Runtime::Node(_) => "index.js",
                Runtime::Provided => {
                    return Err(PrepareError::InlineNotSupported {
                        function: f.name.clone(),
                    })
                }
            };
            let dir = opts.work_dir("inline", f);
            let dir = build::fresh_dir(&f.name, &dir)?;
            let path = dir.join(file);
            std::fs::write(&path, source).map_err(|source| PrepareError::Io {
                function: f.name.clone(),
                path,
                source,
            })?;
            if let Runtime::Node(_) = runtime {
                commonjs_root(f, &dir)?;
            }
            Ok(dir)
        }
    }
}

/// Code nimbus writes under the state directory (inline code, an extracted archive, a bundle)
/// is the whole of `/var/task` on Lambda, where no `package.json` above it makes `.js` files ES
/// modules. Here the state directory may sit inside a project whose `package.json` says
/// `"type": "module"`, so the folder gets one of its own that says CommonJS.
pub(crate) fn commonjs_root(f: &Function, dir: &Path) -> Result<(), PrepareError> {
    let path = dir.join("package.json");
    std::fs::write(&path, "{\"type\": \"commonjs\"}\n").map_err(|source| PrepareError::Io {
        function: f.name.clone(),
        path,
        source,
    })
}

fn is_zip(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut magic))
        .is_ok()
        && magic == *b"PK\x03\x04"
}

/// Extracts a code archive afresh. The zip crate refuses entries whose names would leave the
/// output folder (`../`, absolute paths), and keeps the entries' Unix modes, so a `bootstrap`
/// stays executable.
pub(crate) fn extract(f: &Function, zip: &Path, out: &Path) -> Result<(), PrepareError> {
    let invalid = |e: &dyn std::fmt::Display| PrepareError::Invalid {
        function: f.name.clone(),
        what: format!("cannot extract {}: {e}", zip.display()),
    };
    let file = std::fs::File::open(zip).map_err(|source| PrepareError::Io {
        function: f.name.clone(),
        path: zip.to_owned(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| invalid(&e))?;
    build::fresh_dir(&f.name, out)?;
    archive.extract(out).map_err(|e| invalid(&e))
}
