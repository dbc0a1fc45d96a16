//! Running build steps (pip, npm, esbuild, make) for a function, and the content-keyed cache
//! of what they install: a second `nimbus up` of the same code installs nothing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::PrepareError;

/// How many lines of a failed command's output an error repeats.
const TAIL_LINES: usize = 20;

/// A build step that runs longer than this is killed (with everything it started): a stalled
/// `npm install` must not hold start-up or `--watch` forever.
const STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How much of each of a step's output streams is kept for the error message.
const OUTPUT_KEPT: usize = 64 * 1024;

/// Puts a build command in its own process group, killed with nimbus if nimbus dies, like the
/// functions' processes: npm, pip and cargo start children of their own.
pub(crate) fn contain(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe; nothing is allocated between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}

/// Runs one build step, its output captured (the last 64 KB of each stream). On failure the
/// error names the function, the command and its last output lines; the caller decides
/// whether the function can still start.
pub(crate) fn run(function: &str, what: &str, cmd: &mut Command) -> Result<(), PrepareError> {
    let shown = display(cmd);
    tracing::info!("{function}: {what} ({shown})");
    let started = Instant::now();
    contain(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PrepareError::Io {
            function: function.to_owned(),
            path: PathBuf::from(cmd.get_program()),
            source,
        })?;
    let readers = [
        child.stdout.take().map(|s| keep_tail(Box::new(s))),
        child.stderr.take().map(|s| keep_tail(Box::new(s))),
    ];
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() > STEP_TIMEOUT => {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = child.wait();
                break Err(format!(
                    "killed after {} minutes",
                    STEP_TIMEOUT.as_secs() / 60
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(e.to_string()),
        }
    };
    let mut text = String::new();
    for reader in readers.into_iter().flatten() {
        text.push_str(&String::from_utf8_lossy(&reader.join().unwrap_or_default()));
    }
    match status {
        Ok(s) if s.success() => {
            tracing::info!(
                "{function}: {what} done in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Ok(s) => Err(PrepareError::CommandFailed {
            function: function.to_owned(),
            command: shown,
            status: s.to_string(),
            tail: tail(&text, TAIL_LINES),
        }),
        Err(why) => Err(PrepareError::CommandFailed {
            function: function.to_owned(),
            command: shown,
            status: why,
            tail: tail(&text, TAIL_LINES),
        }),
    }
}

/// Reads a stream to its end on a thread of its own, keeping its last [`OUTPUT_KEPT`] bytes.
fn keep_tail(mut stream: Box<dyn Read + Send>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut chunk = [0u8; 8192];
        while let Ok(n) = stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&chunk[..n]);
            if kept.len() > 2 * OUTPUT_KEPT {
                kept.drain(..kept.len() - OUTPUT_KEPT);
            }
        }
        if kept.len() > OUTPUT_KEPT {
            kept.drain(..kept.len() - OUTPUT_KEPT);
        }
        kept
    })
}

/// The command as a person would type it (arguments with spaces quoted).
fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| {
            let a = a.to_string_lossy();
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `n` non-empty lines of `text`, indented for an error message.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A short content hash of `parts` (each part length-prefixed, so parts cannot run together).
pub(crate) fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize()[..10]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cache folder for an install of `parts` by `runtime` (`python3.11`, `node20`): named by
/// the runtime and a digest of what it installs and this machine's architecture, since wheels
/// and native add-ons are built for both.
pub(crate) fn deps_dir(cache_dir: &Path, runtime: &str, parts: &[&[u8]]) -> PathBuf {
    let mut all: Vec<&[u8]> = parts.to_vec();
    all.push(runtime.as_bytes());
    all.push(std::env::consts::ARCH.as_bytes());
    cache_dir
        .join("deps")
        .join(format!("{runtime}-{}", digest(&all)))
}

/// `text` written to `path` (its folder made), through a temporary file and a rename; unchanged
/// text is not rewritten, so running environments never see a half-written file.
pub(crate) fn write_file(function: &str, path: &Path, text: &str) -> Result<(), PrepareError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_error(function, dir))?;
    }
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(io_error(function, &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(function, path))
}

/// `dir`, filled once by `fill` and then reused. `fill` works in a fresh folder beside `dir`
/// that is renamed into place only when it succeeds, so an interrupted or failed install never
/// leaves a folder that looks complete, and two nimbus processes filling the same folder at
/// once both end up with a whole one.
pub(crate) fn cached_dir(
    function: &str,
    dir: &Path,
    fill: impl FnOnce(&Path) -> Result<(), PrepareError>,
) -> Result<PathBuf, PrepareError> {
    if dir.is_dir() {
        return Ok(dir.to_owned());
    }
    let io = |path: &Path| io_error(function, path);
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another process finished the same install first: theirs is as good as ours.
        if !dir.is_dir() {
            return Err(io(dir)(e));
        }
    }
    Ok(dir.to_owned())
}

/// An empty folder at `dir` (what was there is removed): the output of a build that runs on
/// every start (esbuild bundles, `make` artifacts).
pub(crate) fn fresh_dir(function: &str, dir: &Path) -> Result<PathBuf, PrepareError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|source| PrepareError::Io {
        function: function.to_owned(),
        path: dir.to_owned(),
        source,
    })?;
    Ok(dir.to_owned())
}

/// Folders a copy of a function's source leaves out: version control, build outputs and
/// installed dependencies, which a build makes again.
const NOT_COPIED: &[&str] = &[
    ".git",
    ".nimbus",
    ".aws-sam",
    "node_modules",
    "target",
    "__pycache__",
];

/// Copies the source folder `from` to a fresh `to`, as `sam build` copies a function's source
/// to a scratch folder before running its builder, so builds never write into the user's
/// tree. Symbolic links are copied as links.
pub(crate) fn copy_source(function: &str, from: &Path, to: &Path) -> Result<(), PrepareError> {
    fresh_dir(function, to)?;
    let io = |path: &Path| io_error(function, path);
    let mut stack = vec![(from.to_owned(), to.to_owned())];
    while let Some((src, dst)) = stack.pop() {
        for entry in std::fs::read_dir(&src).map_err(io(&src))? {
            let entry = entry.map_err(io(&src))?;
            let kind = entry.file_type().map_err(io(&entry.path()))?;
            let target = dst.join(entry.file_name());
            if kind.is_dir() {
                if NOT_COPIED.iter().any(|n| entry.file_name() == *n) {
                    continue;
                }
                std::fs::create_dir(&target).map_err(io(&target))?;
                stack.push((entry.path(), target));
            } else if kind.is_symlink() {
                let link = std::fs::read_link(entry.path()).map_err(io(&entry.path()))?;
                std::os::unix::fs::symlink(link, &target).map_err(io(&target))?;
            } else {
                std::fs::copy(entry.path(), &target).map_err(io(&target))?;
            }
        }
    }
    Ok(())
}

/// Turns an I/O error at `path` into the function's prepare error.
fn io_error(function: &str, path: &Path) -> impl FnOnce(std::io::Error) -> PrepareError {
    let function = function.to_owned();
    let path = path.to_owned();
    move |source| PrepareError::Io {
        function,
        path,
        source,
    }
}

/// Reads a file that is part of a cache key, naming the function on failure.
pub(crate) fn read(function: &str, path: &Path) -> Result<Vec<u8>, PrepareError> {
    std::fs::read(path).map_err(|source| PrepareError::Io {
        function: function.to_owned(),
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_separates_parts() {
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
        assert_eq!(digest(&[b"x"]), digest(&[b"x"]));
        assert_eq!(digest(&[b"x"]).len(), 20);
    }

    #[test]
    fn tail_keeps_the_last_non_empty_lines() {
        assert_eq!(tail("a\n\nb\nc\n\n", 2), "    b\n    c");
        assert_eq!(tail("", 3), "");
    }

    #[test]
    fn a_failed_fill_leaves_nothing_and_a_good_one_is_reused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("deps");
        let err = cached_dir("F", &dir, |tmp| {
            std::fs::write(tmp.join("half"), "x").unwrap();
            Err(PrepareError::CommandFailed {
                function: "F".into(),
                command: "pip".into(),
                status: "exit status: 1".into(),
                tail: String::new(),
            })
        });
        assert!(err.is_err());
        assert!(!dir.exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);

        cached_dir("F", &dir, |tmp| {
            std::fs::write(tmp.join("whole"), "x").map_err(|_| unreachable!())
        })
        .unwrap();
        // A second call must not run the install again.
        cached_dir("F", &dir, |_| panic!("installed twice")).unwrap();
        assert!(dir.join("whole").is_file());
    }

    #[test]
    fn failed_command_names_the_command_and_its_output() {
        let err = run(
            "F",
            "testing",
            Command::new("sh").args(["-c", "echo one; echo two >&2; exit 3"]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "function F: `sh -c 'echo one; echo two >&2; exit 3'` failed (exit status: 3)"
            ),
            "{err}"
        );
        assert!(err.contains("    one\n    two"), "{err}");
    }
}
