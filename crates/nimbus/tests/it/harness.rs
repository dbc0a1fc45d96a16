//! Starts a real `nimbus up` on a temporary template and talks to it over HTTP, as a user would.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The test function, an example of this crate built with the unmodified `lambda_runtime`.
pub fn testfn() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = profile_dir.join("examples").join("testfn");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --examples` first (scripts/test.sh does)",
        path.display()
    );
    path
}

pub struct Nimbus {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub endpoint: String,
    pub output: Arc<Mutex<Vec<String>>>,
    agent: ureq::Agent,
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy for binary bodies; `bytes` has them exactly).
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

impl Nimbus {
    /// Writes `template` into a fresh folder with `fn/bootstrap` = the test function, and starts
    /// nimbus on a free port.
    pub fn start(template: &str, extra_args: &[&str]) -> Nimbus {
        Self::start_with_files(template, extra_args, &[])
    }

    /// Like [`Nimbus::start`], with extra files `(relative path, contents, executable)`.
    pub fn start_with_files(
        template: &str,
        extra_args: &[&str],
        files: &[(&str, &str, bool)],
    ) -> Nimbus {
        Self::start_inner(template, extra_args, files, &[])
    }

    /// Like [`Nimbus::start`], with `<dir>/bootstrap` linked to each given executable.
    pub fn start_with_bootstraps(
        template: &str,
        extra_args: &[&str],
        bootstraps: &[(&str, PathBuf)],
    ) -> Nimbus {
        Self::start_inner(template, extra_args, &[], bootstraps)
    }

    fn start_inner(
        template: &str,
        extra_args: &[&str],
        files: &[(&str, &str, bool)],
        bootstraps: &[(&str, PathBuf)],
    ) -> Nimbus {
        let dir = tempfile::tempdir().expect("tempdir");
        for (code_dir, exe) in bootstraps {
            let code = dir.path().join(code_dir);
            std::fs::create_dir_all(&code).unwrap();
            std::os::unix::fs::symlink(exe, code.join("bootstrap")).unwrap();
        }
        for (rel, contents, executable) in files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, contents).unwrap();
            if *executable {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        let code = dir.path().join("fn");
        std::fs::create_dir_all(&code).unwrap();
        std::os::unix::fs::symlink(testfn(), code.join("bootstrap")).unwrap();
        let template_path = dir.path().join("template.yaml");
        std::fs::write(&template_path, template).unwrap();

        let mut child = Command::new(env!("CARGO_BIN_EXE_nimbus"))
            .arg("up")
            .arg(&template_path)
            .args(["--aws-port", "0", "--api-port", "0"])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nimbus");
        let stdout = child.stdout.take().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let mut nimbus = Nimbus {
            child: Some(child),
            dir,
            endpoint: String::new(),
            output,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .into(),
        };
        let line = nimbus.wait_for_line("nimbus: AWS endpoint ", Duration::from_secs(60));
        nimbus.endpoint = line
            .trim_start_matches("nimbus: AWS endpoint ")
            .trim()
            .to_owned();
        nimbus.wait_for_line("nimbus: ready", Duration::from_secs(60));
        nimbus
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join(".nimbus")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Waits for a console line containing `needle`, and returns it.
    pub fn wait_for_line(&self, needle: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self
                .output
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            if start.elapsed() > limit {
                panic!(
                    "no line containing {needle:?} within {limit:?}; output so far:\n{}",
                    self.output.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The base URL nimbus printed for an API, e.g. `http://127.0.0.1:40123`.
    pub fn api_url(&self, logical_id: &str) -> String {
        let line = self.wait_for_line(&format!(" {logical_id} (stage "), Duration::from_secs(5));
        line.rsplit(' ').next().unwrap().to_owned()
    }

    /// Sends any request; `url` is absolute.
    pub fn request(&self, method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut req = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.to_vec()).expect("request");
        reply(self.agent.run(req).expect("request to nimbus"))
    }

    /// The first message of one ReceiveMessage on the template's queue `queue` (SQS's JSON
    /// protocol, waiting up to 5 s).
    pub fn receive_one(&self, queue: &str) -> serde_json::Value {
        let url = format!("{}/123456789012/{queue}", self.endpoint);
        let body = serde_json::json!({"QueueUrl": url, "WaitTimeSeconds": 5}).to_string();
        let r = self.request(
            "POST",
            &self.endpoint,
            &[
                ("content-type", "application/x-amz-json-1.0"),
                ("x-amz-target", "AmazonSQS.ReceiveMessage"),
            ],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["Messages"][0].clone()
    }

    pub fn lines(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    pub fn invoke(&self, function: &str, payload: &str) -> Reply {
        self.invoke_with(function, payload, &[])
    }

    pub fn invoke_with(&self, function: &str, payload: &str, headers: &[(&str, &str)]) -> Reply {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.endpoint
        );
        self.post(&url, payload.as_bytes(), headers)
    }

    pub fn post(&self, url: &str, body: &[u8], headers: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.post(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.send(body).expect("request to nimbus"))
    }

    pub fn get(&self, path: &str) -> Reply {
        let url = format!("{}{path}", self.endpoint);
        reply(self.agent.get(&url).call().expect("request to nimbus"))
    }

    /// Sends SIGTERM and waits for nimbus to exit; returns its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "nimbus did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nimbus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn reply(mut resp: ureq::http::Response<ureq::Body>) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    Reply {
        status,
        headers,
        body,
        bytes,
    }
}

/// Pids of every process whose parent chain leads to `root` (not including it).
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state, ppid, ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let ppid: u32 = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        parents.push((pid, ppid));
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

/// True while a process with this pid exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}
