//! `nimbus up --watch`: when a file of a function's code (or of a template layer it uses)
//! changes, that function alone is prepared again (cargo, pip, npm, esbuild, make: installs
//! only when a dependency file changed, since installs are cached by content) and swapped in.
//! New invocations start new environments on the new code; running invocations finish on the
//! old code, whose environments are then stopped. A failed rebuild keeps the last good code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nimbus_lambda::launch::{self, PrepareOptions};
use nimbus_lambda::Platform;
use nimbus_template::Stack;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// A rebuild waits for this long without a change: an editor's save is several events, and a
/// large file (an archive, a binary) is written in many.
const SETTLE: Duration = Duration::from_millis(200);

/// Folder names whose changes are never code edits: build outputs, caches, VCS data.
const IGNORED_DIRS: &[&str] = &[
    "node_modules",
    "target",
    "__pycache__",
    ".git",
    ".aws-sam",
    ".nimbus",
    ".pytest_cache",
    ".mypy_cache",
];

/// Keeps the watch running; dropping it stops watching.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Which functions each watched root belongs to.
struct Roots {
    /// `(root, function)`: a change at or under `root` rebuilds `function`.
    entries: Vec<(PathBuf, String)>,
    /// Never treated as code: nimbus's own state directory and cache.
    excluded: Vec<PathBuf>,
}

impl Roots {
    fn affected<'a>(&'a self, path: &'a Path) -> impl Iterator<Item = &'a str> + 'a {
        let excluded = self.excluded.iter().any(|e| path.starts_with(e));
        // Only what lies below a root counts as noise: code may itself live under a folder
        // such as `.aws-sam/build` or `target/lambda`.
        self.entries
            .iter()
            .filter(move |(root, _)| {
                !excluded
                    && path
                        .strip_prefix(root)
                        .is_ok_and(|rel| root == path || !is_noise(rel))
            })
            .map(|(_, f)| f.as_str())
    }
}

/// Editor droppings and build outputs inside a code folder (`path` relative to it).
fn is_noise(path: &Path) -> bool {
    let in_ignored_dir = path.components().any(|c| match c {
        Component::Normal(n) => IGNORED_DIRS.iter().any(|d| n == *d),
        _ => false,
    });
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    in_ignored_dir
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".pyc")
        || name.starts_with(".#")
        || name == "4913"
}

/// Starts watching every function's sources.
/// Prepares one function again and swaps it in, then releases it (`AutoPublishAlias`): what a
/// `--watch` change and `nimbus deploy` both do. One rebuild at a time.
#[derive(Clone)]
pub struct Rebuilder {
    stack: Arc<Stack>,
    prepare: PrepareOptions,
    platform: Platform,
    releases: crate::release::Releases,
    state: Arc<tokio::sync::Mutex<Generations>>,
}

/// The last generation made, and per function the generation it serves and the one before,
/// whose environments may still finish an invocation; older ones' files are removed.
type Generations = (u64, BTreeMap<String, (u64, Option<u64>)>);

impl Rebuilder {
    pub fn new(
        stack: Stack,
        prepare: PrepareOptions,
        platform: Platform,
        releases: crate::release::Releases,
    ) -> Self {
        let generation = prepare.generation;
        Self {
            stack: Arc::new(stack),
            prepare,
            platform,
            releases,
            state: Arc::new(tokio::sync::Mutex::new((generation, BTreeMap::new()))),
        }
    }

    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// Rebuilds `name` from its sources and releases it: what happened, or why it failed (the
    /// function then keeps serving its last good code).
    pub async fn rebuild(&self, name: &str) -> Result<crate::release::Release, String> {
        let Some(f) = self.stack.function(name).cloned() else {
            return Err(format!("no function {name:?} in the template"));
        };
        let mut state = self.state.lock().await;
        state.0 += 1;
        let generation = state.0;
        let opts = PrepareOptions {
            generation,
            ..self.prepare.clone()
        };
        println!("nimbus: {name} changed; rebuilding");
        let started = Instant::now();
        let stack = self.stack.clone();
        let result = tokio::task::spawn_blocking(move || launch::prepare(&f, &stack, &opts)).await;
        match result {
            Ok(Ok(spec)) => {
                self.platform.replace_code(name, Ok(spec));
                let (current, previous) = state
                    .1
                    .get(name)
                    .copied()
                    .unwrap_or((self.prepare.generation, None));
                if let Some(old) = previous {
                    launch::remove_generation(&self.prepare.state_dir, name, old);
                }
                state.1.insert(name.to_owned(), (generation, Some(current)));
                drop(state);
                println!(
                    "nimbus: {name} reloaded in {:.1} s; new invocations run the new code",
                    started.elapsed().as_secs_f64()
                );
                Ok(self.releases.release(name).await)
            }
            Ok(Err(e)) => {
                launch::remove_generation(&self.prepare.state_dir, name, generation);
                eprintln!("error: {e}");
                eprintln!("       {name} keeps serving its last good code");
                Err(format!("{e}; {name} keeps serving its last good code"))
            }
            Err(e) => {
                eprintln!("error: rebuilding {name} failed: {e}");
                Err(format!("rebuilding {name} failed: {e}"))
            }
        }
    }
}

pub fn start(rebuilder: Rebuilder) -> anyhow::Result<Watch> {
    let stack = rebuilder.stack.clone();
    let prepare = rebuilder.prepare.clone();
    let mut entries = Vec::new();
    for f in &stack.functions {
        for root in launch::sources(f, &stack, &prepare) {
            let root = root.canonicalize().unwrap_or(root);
            entries.push((root, f.name.clone()));
        }
    }
    let roots = Arc::new(Roots {
        entries,
        excluded: vec![prepare.state_dir.clone(), prepare.cache_dir.clone()],
    });
    let pending: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let wake = Arc::new(Notify::new());

    let mut watcher = {
        let roots = roots.clone();
        let pending = pending.clone();
        let wake = wake.clone();
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            let mut any = false;
            if let Ok(mut set) = pending.lock() {
                for path in &event.paths {
                    for f in roots.affected(path) {
                        any |= set.insert(f.to_owned());
                    }
                }
            }
            if any {
                wake.notify_one();
            }
        })?
    };
    let mut watched = BTreeMap::new();
    for (root, _) in &roots.entries {
        // An archive is watched through its folder; the paths filter picks the file.
        let (path, mode) = if root.is_dir() {
            (root.clone(), RecursiveMode::Recursive)
        } else {
            let parent = root.parent().unwrap_or(Path::new(".")).to_owned();
            (parent, RecursiveMode::NonRecursive)
        };
        // A folder watched for an archive beside it may also be some function's code folder:
        // then it is watched recursively.
        let upgrade = watched.get(&path) == Some(&RecursiveMode::NonRecursive)
            && mode == RecursiveMode::Recursive;
        if upgrade {
            let _ = watcher.unwatch(&path);
        }
        if upgrade || !watched.contains_key(&path) {
            watched.insert(path.clone(), mode);
            watcher
                .watch(&path, mode)
                .map_err(|e| anyhow::anyhow!("--watch: cannot watch {}: {e}", path.display()))?;
        }
    }
    println!(
        "nimbus: watching {} folder(s) of function code; a change rebuilds that function",
        watched.len()
    );

    let task = tokio::spawn(async move {
        loop {
            wake.notified().await;
            // Quiet for SETTLE since the last change.
            while tokio::time::timeout(SETTLE, wake.notified()).await.is_ok() {}
            let names = std::mem::take(&mut *pending.lock().expect("watch set poisoned"));
            for name in names {
                let _ = rebuilder.rebuild(&name).await;
            }
        }
    });
    Ok(Watch {
        _watcher: watcher,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_map_to_the_functions_whose_code_they_are() {
        let roots = Roots {
            entries: vec![
                (PathBuf::from("/app/fn-a"), "A".into()),
                (PathBuf::from("/app"), "Root".into()),
                (PathBuf::from("/layers/shared"), "A".into()),
            ],
            excluded: vec![PathBuf::from("/app/.state")],
        };
        let check = |path: &str| -> Vec<String> {
            roots.affected(Path::new(path)).map(str::to_owned).collect()
        };
        assert_eq!(check("/app/fn-a/app.py"), ["A", "Root"]);
        assert_eq!(check("/app/other.py"), ["Root"]);
        assert_eq!(check("/layers/shared/python/util.py"), ["A"]);
        let built = Roots {
            entries: vec![(PathBuf::from("/app/.aws-sam/build/Fn"), "Fn".into())],
            excluded: vec![],
        };
        assert_eq!(
            built
                .affected(Path::new("/app/.aws-sam/build/Fn/app.py"))
                .collect::<Vec<_>>(),
            ["Fn"],
            "code under an ignored folder name is still code"
        );
        for noise in [
            "/app/fn-a/node_modules/x/index.js",
            "/app/fn-a/__pycache__/app.cpython-311.pyc",
            "/app/target/release/hello",
            "/app/fn-a/.app.py.swp",
            "/app/fn-a/app.py~",
            "/app/.state/nimbus.db",
        ] {
            assert!(check(noise).is_empty(), "{noise}");
        }
        assert!(check("/elsewhere/x.py").is_empty());
    }
}
