//! One execution environment: a function process, the Runtime API server it talks to, and the
//! task that captures its output.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use nimbus_core::report::{self, Report};
use nimbus_core::trace::TraceHeader;
use tokio::sync::{mpsc, oneshot, watch};

use crate::logs::{LogCtl, LogSink, Origin};
use crate::{runtime_api, FunctionSpec, InvokeRequest, LaunchSpec, PlatformConfig};

/// What the runtime reported for one invocation.
#[derive(Debug)]
pub(crate) enum RuntimeResult {
    Response(Bytes),
    Error(Bytes),
    TooLarge,
}

/// An invocation handed to the environment's `/next`.
pub(crate) struct Dispatch {
    pub request_id: String,
    pub payload: Bytes,
    /// The function's timeout: the deadline is set when `/next` hands the event over.
    pub timeout: Duration,
    pub client_context: Option<String>,
    pub trace_header: String,
    /// The ARN the caller named, with its qualifier.
    pub invoked_arn: Arc<str>,
    /// An injected startup delay (FIS's `aws:lambda:invocation-add-delay`): the event reaches
    /// the runtime this long after the invocation starts, so the delay is in the REPORT line's
    /// duration and counts against the timeout, as FIS's extension makes it.
    pub delay: Duration,
    pub started_tx: oneshot::Sender<Instant>,
    pub result_tx: oneshot::Sender<RuntimeResult>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EnvStatus {
    Starting,
    Ready { init: Duration },
    Failed(Failure),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    /// The runtime posted `/runtime/init/error`.
    InitError { error_type: String, body: Bytes },
    /// The process ended; the text is how, e.g. `exit status 1` or `signal: killed`.
    Exited(String),
}

/// The invocation currently running in the environment.
pub(crate) struct Current {
    pub request_id: String,
    pub result_tx: Option<oneshot::Sender<RuntimeResult>>,
}

#[derive(Default)]
pub(crate) struct EnvState {
    pub current: Option<Current>,
    /// Recently completed request ids, so a second `/response` gets 403 rather than 400.
    pub finished: VecDeque<String>,
}

/// What the Runtime API handlers share with the environment.
pub(crate) struct EnvShared {
    pub function: Arc<FunctionSpec>,
    pub spawned_at: Instant,
    pub requests: tokio::sync::Mutex<mpsc::Receiver<Dispatch>>,
    pub state: Mutex<EnvState>,
    pub status: watch::Sender<EnvStatus>,
    pub log_ctl: mpsc::Sender<LogCtl>,
    /// The request id `/next` last handed out, for the capture task's START line.
    pub started: Arc<Mutex<Option<Arc<str>>>>,
    /// Invocations dispatched whose END/REPORT has not been sent to the capture task yet: it
    /// keeps reading control messages after EOF until this is 0.
    pub pending: Arc<AtomicUsize>,
}

impl EnvShared {
    /// Marks a failure unless one was already recorded: the first cause is the one to report.
    pub fn fail(&self, failure: Failure) {
        self.status.send_if_modified(|s| {
            if matches!(s, EnvStatus::Failed(_)) {
                false
            } else {
                *s = EnvStatus::Failed(failure);
                true
            }
        });
    }
}

pub(crate) struct Env {
    pub id: u64,
    pub pid: i32,
    pub provisioned: bool,
    shared: Arc<EnvShared>,
    requests: mpsc::Sender<Dispatch>,
    init_reported: AtomicBool,
    exited: watch::Receiver<bool>,
    /// Set once the process is reaped and its group killed: its pid may be reused after that.
    reaped: Arc<AtomicBool>,
    /// Set by [`Env::kill`]: the environment no longer counts as one of its pool's, even
    /// before its process is gone.
    killed: AtomicBool,
    /// The running invocation's trace, for the REPORT line of an actively traced function.
    xray: Mutex<Option<TraceHeader>>,
}

/// The outcome of one invocation in an environment.
pub(crate) struct RunOutcome {
    pub payload: Bytes,
    pub function_error: bool,
    pub log_tail: Option<String>,
    /// False when the environment must be discarded (crash, timeout, init failure).
    pub reusable: bool,
    /// As on the REPORT line: for metrics.
    pub duration: Duration,
    pub init_duration: Option<Duration>,
    /// `timeout` or `error` (a platform failure), as on the REPORT line.
    pub status: Option<&'static str>,
    /// The environment was warm but its process ended before taking the event from `/next`
    /// (a runtime that posts an error and then exits, as Node's does after an unhandled
    /// rejection): the event never reached it, nothing was logged, and the platform hands it
    /// to another environment, as Lambda does.
    pub undelivered: bool,
}

/// How long an exited environment's output capture may take to finish (it waits up to 5 s for
/// the END/REPORT of an invocation in progress).
const LOG_DRAIN_LIMIT: Duration = Duration::from_secs(7);
/// How often a running invocation's resident memory is compared with its `MemorySize`.
/// Lambda enforces the limit in the kernel; nimbus samples /proc, so a spike shorter than
/// this can pass unnoticed.
const MEMORY_CHECK_PERIOD: Duration = Duration::from_millis(50);

impl Env {
    /// Starts the process and its Runtime API server. The environment initialises on its own;
    /// [`Env::invoke`] waits for it.
    pub async fn spawn(
        id: u64,
        function: Arc<FunctionSpec>,
        launch: &LaunchSpec,
        config: &PlatformConfig,
        logs: Arc<LogSink>,
        provisioned: bool,
    ) -> std::io::Result<Arc<Env>> {
        let listener = tokio::net::TcpListener::bind((config.runtime_api_host, 0)).await?;
        let api_addr = listener.local_addr()?;

        let tmp_dir = config
            .state_dir
            .join("tmp")
            .join(format!("{}-{id}", function.name));
        std::fs::create_dir_all(&tmp_dir)?;

        let (pipe_reader, pipe_writer) = std::io::pipe()?;
        let pipe_writer = OwnedFd::from(pipe_writer);

        // The environment's log stream: the function sees it in AWS_LAMBDA_LOG_STREAM_NAME and
        // every line it writes is filed under it.
        let stream: Arc<str> =
            crate::logfile::version_stream_name(epoch_ms(), &function.version, rand::random())
                .into();
        let env_vars = environment(
            &function,
            launch,
            config,
            &api_addr.to_string(),
            &tmp_dir,
            provisioned,
            &stream,
        );
        let mut cmd = tokio::process::Command::new(&launch.program);
        cmd.args(&launch.args)
            .current_dir(&launch.task_root)
            .env_clear()
            .envs(&env_vars)
            .stdin(Stdio::null())
            .stdout(Stdio::from(pipe_writer.try_clone()?))
            .stderr(Stdio::from(pipe_writer))
            // Its own process group, so a timeout kills everything the function started.
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; nothing is allocated between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // If nimbus itself dies (even by SIGKILL), the function goes with it.
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            let _ = std::fs::remove_dir_all(&tmp_dir);
            std::io::Error::new(
                e.kind(),
                format!("cannot start {}: {e}", launch.program.display()),
            )
        })?;
        // The parent's copies of the pipe's write end close with `cmd`, so EOF follows the
        // child's exit.
        drop(cmd);
        let pid = child.id().map(|p| p as i32).unwrap_or_default();

        let (req_tx, req_rx) = mpsc::channel(1);
        let (status_tx, _) = watch::channel(EnvStatus::Starting);
        let (log_tx, log_rx) = mpsc::channel(64);
        let pending = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(Mutex::new(None));
        let shared = Arc::new(EnvShared {
            function: function.clone(),
            spawned_at: Instant::now(),
            requests: tokio::sync::Mutex::new(req_rx),
            state: Mutex::new(EnvState::default()),
            status: status_tx,
            log_ctl: log_tx,
            pending: pending.clone(),
            started: started.clone(),
        });

        let reader = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(pipe_reader))?;
        let log_task = tokio::spawn(crate::logs::capture(
            reader,
            log_rx,
            pending,
            started,
            pid,
            logs,
            Origin {
                function: function.name.clone(),
                stream,
                version: function.version.as_str().into(),
            },
        ));

        let server = tokio::spawn(runtime_api::serve(listener, shared.clone()));

        let (exited_tx, exited_rx) = watch::channel(false);
        let watcher_shared = shared.clone();
        let reaped = Arc::new(AtomicBool::new(false));
        let watcher_reaped = reaped.clone();
        tokio::spawn(async move {
            let how = match child.wait().await {
                Ok(status) => describe_exit(status),
                Err(e) => format!("wait failed: {e}"),
            };
            // Whatever the runtime started goes with it, even when it exited on its own.
            kill_group(pid);
            watcher_reaped.store(true, Ordering::Release);
            watcher_shared.fail(Failure::Exited(how));
            server.abort();
            // Output written just before the exit is still in the pipe: let the capture task
            // read it to EOF before the environment is reported gone. A process that left the
            // group can hold the pipe open forever, hence the bound.
            let mut log_task = log_task;
            if tokio::time::timeout(LOG_DRAIN_LIMIT, &mut log_task)
                .await
                .is_err()
            {
                log_task.abort();
            }
            let _ = std::fs::remove_dir_all(&tmp_dir);
            let _ = exited_tx.send(true);
        });

        Ok(Arc::new(Env {
            id,
            pid,
            provisioned,
            shared,
            requests: req_tx,
            init_reported: AtomicBool::new(provisioned),
            exited: exited_rx,
            reaped,
            killed: AtomicBool::new(false),
            xray: Mutex::new(None),
        }))
    }

    pub fn status(&self) -> EnvStatus {
        self.shared.status.borrow().clone()
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    pub fn is_failed(&self) -> bool {
        matches!(*self.shared.status.borrow(), EnvStatus::Failed(_))
    }

    /// Waits until the environment has finished initialising (its first `/next`) or failed.
    pub async fn wait_ready(&self, limit: Duration) -> Result<(), Failure> {
        let mut status = self.shared.status.subscribe();
        let waited =
            tokio::time::timeout(limit, status.wait_for(|s| *s != EnvStatus::Starting)).await;
        match waited {
            Ok(Ok(s)) => match &*s {
                EnvStatus::Failed(f) => Err(f.clone()),
                _ => Ok(()),
            },
            Ok(Err(_)) => Err(Failure::Exited("environment lost".into())),
            Err(_) => Err(Failure::Exited(format!(
                "init did not finish within {:.2} seconds",
                limit.as_secs_f64()
            ))),
        }
    }

    /// Kills the whole process group. The exit watcher cleans up after it.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        if !self.reaped.load(Ordering::Acquire) {
            kill_group(self.pid);
        }
    }

    /// Resolves once the process has exited and its output has been captured.
    pub async fn wait_exited(&self) {
        let mut exited = self.exited.clone();
        let _ = exited.wait_for(|e| *e).await;
    }

    /// Runs one invocation. Never fails: every function or platform failure is an outcome.
    pub async fn invoke(
        &self,
        request_id: &str,
        req: &InvokeRequest,
        trace_header: String,
        init_timeout: Duration,
        invoked_arn: Arc<str>,
        delay: Duration,
    ) -> RunOutcome {
        let function = &self.shared.function;
        if function.tracing_active {
            // `Parent` is already the function's own segment (the platform made it).
            *self.xray.lock().unwrap_or_else(|e| e.into_inner()) =
                TraceHeader::parse(&trace_header);
        }
        let (started_tx, started_rx) = oneshot::channel();
        let (result_tx, result_rx) = oneshot::channel();
        let dispatched_at = Instant::now();
        let dispatch = Dispatch {
            request_id: request_id.to_owned(),
            // A `Bytes` clone shares the payload; the platform keeps the request for a retry.
            payload: req.payload.clone(),
            timeout: function.timeout,
            client_context: req.client_context.clone(),
            trace_header,
            invoked_arn,
            delay,
            started_tx,
            result_tx,
        };
        let mut status = self.shared.status.subscribe();
        let warm = matches!(*status.borrow(), EnvStatus::Ready { .. });
        self.shared.pending.fetch_add(1, Ordering::AcqRel);
        if self.requests.send(dispatch).await.is_err() {
            return self
                .platform_failure(
                    request_id,
                    "Runtime.ExitError",
                    "environment stopped",
                    req.tail_log,
                    None,
                )
                .await;
        }

        // Phase 1: the runtime takes the event from /next. A warm environment is already
        // waiting. A cold one first initialises: Lambda allows 10 s, and past that retries the
        // init inside the invocation under the function's timeout; nimbus lets the same init
        // go on for that long rather than restarting it.
        let phase1_limit = if matches!(*status.borrow(), EnvStatus::Starting) {
            (init_timeout + function.timeout).saturating_sub(self.shared.spawned_at.elapsed())
        } else {
            function.timeout
        };
        let mut started_rx = started_rx;
        let started = tokio::select! {
            // A runtime that took the event and then died has seen it: that is not
            // "undelivered", so the hand-over is checked first.
            biased;
            started = &mut started_rx => match started {
                Ok(at) => at,
                Err(_) if warm => return self.undelivered(),
                Err(_) => return self.exit_outcome(request_id, &mut status, req.tail_log, dispatched_at).await,
            },
            _ = wait_failed(&mut status) => {
                match started_rx.try_recv() {
                    Ok(at) => at,
                    Err(_) if warm => return self.undelivered(),
                    Err(_) => return self.exit_outcome(request_id, &mut status, req.tail_log, dispatched_at).await,
                }
            }
            _ = tokio::time::sleep(phase1_limit) => {
                return self.timed_out(request_id, req.tail_log, dispatched_at).await;
            }
        };

        // Phase 2: the function runs against its deadline and its memory size.
        let deadline = started + function.timeout;
        let mut memory_check = tokio::time::interval_at(
            (Instant::now() + MEMORY_CHECK_PERIOD).into(),
            MEMORY_CHECK_PERIOD,
        );
        let over_memory = async {
            loop {
                memory_check.tick().await;
                if crate::memory::current_memory_mb(self.pid) > function.memory_mb {
                    break;
                }
            }
        };
        tokio::select! {
            // A result that arrived wins over the exit that may follow it at once (a runtime
            // that gives up after its oversized response was refused).
            biased;
            result = result_rx => match result {
                Ok(RuntimeResult::Response(body)) => {
                    self.finish(request_id, body, false, true, started, None, req.tail_log).await
                }
                Ok(RuntimeResult::Error(body)) => {
                    self.finish(request_id, body, true, true, started, None, req.tail_log).await
                }
                Ok(RuntimeResult::TooLarge) => {
                    let body = report::error_body(
                        &format!("Response payload size exceeded maximum allowed payload size ({} bytes).", crate::MAX_SYNC_PAYLOAD),
                        "Function.ResponseSizeTooLarge",
                    );
                    self.finish(request_id, Bytes::from(body), true, true, started, Some("error"), req.tail_log).await
                }
                Err(_) => self.exit_outcome(request_id, &mut status, req.tail_log, started).await,
            },
            _ = wait_failed(&mut status) => {
                self.exit_outcome(request_id, &mut status, req.tail_log, started).await
            }
            _ = over_memory => {
                self.kill();
                let message = format!("RequestId: {request_id} Error: Runtime exited with error: signal: killed");
                self.platform_failure(request_id, "Runtime.OutOfMemory", &message, req.tail_log, Some(started)).await
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                self.timed_out(request_id, req.tail_log, started).await
            }
        }
    }

    /// Kills the environment and answers Lambda's `Sandbox.Timedout`.
    async fn timed_out(&self, request_id: &str, tail: bool, since: Instant) -> RunOutcome {
        self.kill();
        let timeout = self.shared.function.timeout;
        let now = epoch_ms();
        let message = format!(
            "{} {request_id} Task timed out after {:.2} seconds",
            report::timestamp_millis(now),
            timeout.as_secs_f64()
        );
        let _ = self.shared.log_ctl.send(LogCtl::Line(message)).await;
        let body = report::timeout_error_body(now, request_id, timeout);
        self.finish(
            request_id,
            Bytes::from(body),
            true,
            false,
            since,
            Some("timeout"),
            tail,
        )
        .await
    }

    /// A warm environment ended before it took the event: see [`RunOutcome::undelivered`].
    fn undelivered(&self) -> RunOutcome {
        self.kill();
        self.shared.pending.fetch_sub(1, Ordering::AcqRel);
        RunOutcome {
            payload: Bytes::new(),
            function_error: false,
            log_tail: None,
            reusable: false,
            duration: Duration::ZERO,
            init_duration: None,
            status: None,
            undelivered: true,
        }
    }

    /// The outcome when the environment failed while an invocation was pending.
    async fn exit_outcome(
        &self,
        request_id: &str,
        status: &mut watch::Receiver<EnvStatus>,
        tail: bool,
        since: Instant,
    ) -> RunOutcome {
        // The process may still be alive (e.g. it posted an init error): make sure it is not.
        self.kill();
        let failure = match &*status.borrow_and_update() {
            EnvStatus::Failed(f) => Some(f.clone()),
            _ => None,
        };
        match failure {
            Some(Failure::InitError { body, .. }) => {
                self.finish(request_id, body, true, false, since, Some("error"), tail)
                    .await
            }
            Some(Failure::Exited(how)) => {
                let message =
                    format!("RequestId: {request_id} Error: Runtime exited with error: {how}");
                self.platform_failure(request_id, "Runtime.ExitError", &message, tail, Some(since))
                    .await
            }
            None => {
                self.platform_failure(
                    request_id,
                    "Runtime.ExitError",
                    "environment stopped",
                    tail,
                    Some(since),
                )
                .await
            }
        }
    }

    async fn platform_failure(
        &self,
        request_id: &str,
        error_type: &str,
        message: &str,
        tail: bool,
        since: Option<Instant>,
    ) -> RunOutcome {
        let _ = self
            .shared
            .log_ctl
            .send(LogCtl::Line(format!("{message}\n{error_type}")))
            .await;
        let body = report::error_body(message, error_type);
        self.finish(
            request_id,
            Bytes::from(body),
            true,
            false,
            since.unwrap_or_else(Instant::now),
            Some("error"),
            tail,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        request_id: &str,
        payload: Bytes,
        function_error: bool,
        reusable: bool,
        started: Instant,
        status: Option<&'static str>,
        tail: bool,
    ) -> RunOutcome {
        let duration = started.elapsed();
        let init_duration = match self.status() {
            EnvStatus::Ready { init } if !self.init_reported.swap(true, Ordering::Relaxed) => {
                Some(init)
            }
            _ => None,
        };
        let report = Report {
            duration,
            memory_size_mb: self.shared.function.memory_mb,
            max_memory_used_mb: 0,
            init_duration,
            status,
            xray: self.xray.lock().unwrap_or_else(|e| e.into_inner()).take(),
        };
        let (tail_tx, tail_rx) = if tail {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let _ = self
            .shared
            .log_ctl
            .send(LogCtl::Done {
                request_id: request_id.to_owned(),
                report,
                tail: tail_tx,
            })
            .await;
        self.shared.pending.fetch_sub(1, Ordering::AcqRel);
        // Bounded: the capture task may be waiting on a full log queue.
        let log_tail = match tail_rx {
            Some(rx) => tokio::time::timeout(Duration::from_secs(2), rx)
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        };
        RunOutcome {
            payload,
            function_error,
            log_tail,
            reusable: reusable && !self.is_failed(),
            duration,
            init_duration,
            status,
            undelivered: false,
        }
    }
}

fn kill_group(pid: i32) {
    if pid > 0 {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

async fn wait_failed(status: &mut watch::Receiver<EnvStatus>) {
    let _ = status.wait_for(|s| matches!(s, EnvStatus::Failed(_))).await;
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => {
            let name = nix::sys::signal::Signal::try_from(sig)
                .map(|s| s.as_str().trim_start_matches("SIG").to_lowercase())
                .unwrap_or_else(|_| sig.to_string());
            let name = if name == "kill" {
                "killed".to_owned()
            } else {
                name
            };
            format!("signal: {name}")
        }
        _ => "exited".into(),
    }
}

/// Unix milliseconds now: the one wall-clock reading the I/O crates share.
pub fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Microseconds since the epoch: span times.
pub fn epoch_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

/// Points a function's HTTP clients at nimbus's egress proxy, in both spellings clients read,
/// unless the function's own configuration names a proxy (then it keeps its own). `NO_PROXY`
/// gains nimbus's AWS endpoint, for the clients that honour `host:port` entries (Python's);
/// the proxy passes the others' calls there through untouched.
fn egress_proxy(env: &mut BTreeMap<String, String>, proxy: &str, endpoint_url: &str) {
    const PROXIES: [&str; 4] = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"];
    if PROXIES.iter().any(|k| env.contains_key(*k)) {
        return;
    }
    for k in PROXIES {
        env.insert(k.to_owned(), proxy.to_owned());
    }
    let endpoint = endpoint_url
        .split_once("://")
        .map_or(endpoint_url, |(_, rest)| rest)
        .trim_end_matches('/');
    let theirs = env
        .get("NO_PROXY")
        .or_else(|| env.get("no_proxy"))
        .filter(|v| !v.is_empty())
        .cloned();
    // `*` bypasses every proxy only when it is the whole value.
    if theirs
        .as_deref()
        .is_some_and(|v| v.split(',').any(|e| e.trim() == "*"))
    {
        return;
    }
    let own = theirs.map_or_else(|| endpoint.to_owned(), |v| format!("{v},{endpoint}"));
    env.insert("NO_PROXY".into(), own.clone());
    env.insert("no_proxy".into(), own);
}

/// The process environment Lambda gives a function (INTERFACES.md section 1).
fn environment(
    f: &FunctionSpec,
    launch: &LaunchSpec,
    config: &PlatformConfig,
    runtime_api: &str,
    tmp_dir: &std::path::Path,
    provisioned: bool,
    log_stream: &str,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = f.environment.clone();
    let runtime_dir = config.state_dir.join("runtime");
    let task_root = launch.task_root.display().to_string();
    let fixed: [(&str, String); 21] = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", f.name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", f.version.clone()),
        ("_HANDLER", f.handler.clone().unwrap_or_default()),
        ("AWS_REGION", config.region.clone()),
        ("AWS_DEFAULT_REGION", config.region.clone()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", f.name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream.to_owned()),
        ("LAMBDA_TASK_ROOT", task_root),
        ("LAMBDA_RUNTIME_DIR", runtime_dir.display().to_string()),
        ("TZ", ":UTC".into()),
        // Dummy credentials: SDKs refuse to sign without some, and nimbus does not check them.
        ("AWS_ACCESS_KEY_ID", "nimbus".into()),
        ("AWS_SECRET_ACCESS_KEY", "nimbus".into()),
        ("AWS_SESSION_TOKEN", "nimbus".into()),
        (
            "AWS_LAMBDA_INITIALIZATION_TYPE",
            if provisioned {
                "provisioned-concurrency"
            } else {
                "on-demand"
            }
            .into(),
        ),
        ("AWS_ENDPOINT_URL", config.endpoint_url.clone()),
        ("TMPDIR", tmp_dir.display().to_string()),
        (
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        ("LANG", "en_US.UTF-8".into()),
        ("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR".into()),
    ];
    for (k, v) in fixed {
        env.insert(k.to_owned(), v);
    }
    env.extend(launch.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(proxy) = config.egress_proxy.get() {
        egress_proxy(&mut env, proxy, &config.endpoint_url);
    }
    if let Some(version) = f.runtime.strip_prefix("python") {
        env.insert(
            "AWS_EXECUTION_ENV".into(),
            format!("AWS_Lambda_python{version}"),
        );
        // A pipe, not a terminal: without this Python holds log lines back until exit.
        env.insert("PYTHONUNBUFFERED".into(), "1".into());
    } else if f.runtime.starts_with("nodejs") {
        env.insert(
            "AWS_EXECUTION_ENV".into(),
            format!("AWS_Lambda_{}", f.runtime),
        );
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_egress_proxy_is_given_unless_the_function_names_its_own() {
        let mut env = BTreeMap::new();
        egress_proxy(&mut env, "http://127.0.0.1:5000", "http://127.0.0.1:4566/");
        assert_eq!(env["HTTPS_PROXY"], "http://127.0.0.1:5000");
        assert_eq!(env["http_proxy"], "http://127.0.0.1:5000");
        assert_eq!(env["NO_PROXY"], "127.0.0.1:4566");
        let mut own = BTreeMap::from([("https_proxy".to_owned(), "http://corp:3128".to_owned())]);
        egress_proxy(&mut own, "http://127.0.0.1:5000", "http://127.0.0.1:4566");
        assert_eq!(own.len(), 1);
        let mut skip = BTreeMap::from([("NO_PROXY".to_owned(), "internal.example".to_owned())]);
        egress_proxy(&mut skip, "http://127.0.0.1:5000", "http://127.0.0.1:4566");
        assert_eq!(skip["HTTP_PROXY"], "http://127.0.0.1:5000");
        assert_eq!(skip["no_proxy"], "internal.example,127.0.0.1:4566");
        let mut all = BTreeMap::from([("no_proxy".to_owned(), "*".to_owned())]);
        egress_proxy(&mut all, "http://127.0.0.1:5000", "http://127.0.0.1:4566");
        assert_eq!(all["no_proxy"], "*");
    }
}
