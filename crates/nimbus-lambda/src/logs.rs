//! Function logs: every line a function prints, framed by Lambda's START / END / REPORT lines,
//! shown on the console and appended to `<state-dir>/logs/<function>.log` (API access lines to
//! `<api>.log`), each file line carrying its time and its execution environment's log stream.
//! The file format, and reading it back, is [`crate::logfile`].

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use nimbus_telemetry::Telemetry;
use tokio::sync::{mpsc, oneshot};

/// Longest line kept whole; longer output is split, so one line cannot grow a buffer unbounded.
const MAX_LINE: usize = 256 * 1024;
/// `X-Amz-Log-Type: Tail` returns the last 4 KB of the invocation's log.
pub const TAIL_BYTES: usize = 4096;
/// How long output capture waits after EOF for the END/REPORT of an invocation in progress.
const AFTER_EOF_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// One line for the log, rendered by the writer thread.
pub(crate) struct Record {
    /// The function (or API, for access lines) the line belongs to: the console prefix and
    /// the log file's name.
    pub function: Arc<str>,
    pub request_id: Option<Arc<str>>,
    /// The log stream of the environment that wrote the line (none for access lines).
    pub stream: Option<Arc<str>>,
    pub kind: Kind,
    pub line: String,
    pub time_ms: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// What the function printed.
    Function,
    /// nimbus's own lines about an invocation (START, END, REPORT, platform errors).
    Platform,
    /// An API access-log line, already a JSON object.
    Access,
    /// A line written to a log group by another service (an EventBridge rule's event).
    Group,
}

enum Msg {
    Lines(Vec<Record>),
    Flush(oneshot::Sender<()>),
}

/// Where log lines go: the console and `<dir>/<function>.log`. Lines are written by one
/// thread of their own, in batches, so a slow terminal or disk never blocks the async
/// runtime; when the bounded queue is full, the capture tasks wait, and so the functions'
/// writes to their pipes do too.
pub struct LogSink {
    tx: mpsc::Sender<Msg>,
}

/// Batches queued for the writer thread before producers wait.
const SINK_QUEUE: usize = 1024;

impl LogSink {
    /// `dir`: where per-function files go (`None`: console only). `console`: also print.
    /// `telemetry`: where the functions' Embedded Metric Format lines are recorded (parsed on
    /// the writer thread, off the invocation's path).
    pub fn new(
        format: LogFormat,
        dir: Option<PathBuf>,
        console: bool,
        telemetry: Option<Arc<Telemetry>>,
    ) -> std::io::Result<Self> {
        if let Some(d) = &dir {
            std::fs::create_dir_all(d)?;
        }
        let (tx, rx) = mpsc::channel(SINK_QUEUE);
        std::thread::Builder::new()
            .name("nimbus-logs".into())
            .spawn(move || write_logs(rx, format, dir, console, telemetry))?;
        Ok(Self { tx })
    }

    pub(crate) async fn write(&self, lines: Vec<Record>) {
        if !lines.is_empty() {
            let _ = self.tx.send(Msg::Lines(lines)).await;
        }
    }

    /// Writes one platform line outside any environment (e.g. a function that cannot start).
    pub(crate) async fn platform_line(&self, function: &str, request_id: &str, line: String) {
        let time_ms = crate::env::epoch_ms();
        self.write(vec![Record {
            function: function.into(),
            request_id: Some(request_id.into()),
            // No environment wrote it: it goes to the day's stream of such lines.
            stream: Some(crate::logfile::day_stream(time_ms).into()),
            kind: Kind::Platform,
            line,
            time_ms,
        }])
        .await;
    }

    /// Queues one line for the log group `group` (not a function's), in `stream`, without
    /// waiting: `Err` when the writer is behind, so the caller can retry as a failed delivery.
    pub fn try_group_line(&self, group: &str, stream: &str, line: String) -> Result<(), String> {
        let record = Record {
            function: crate::logfile::group_source(group).into(),
            request_id: None,
            stream: Some(stream.into()),
            kind: Kind::Group,
            line,
            time_ms: crate::env::epoch_ms(),
        };
        self.tx
            .try_send(Msg::Lines(vec![record]))
            .map_err(|_| format!("log group {group}: the log writer is behind"))
    }

    /// Queues one access-log line without waiting: when the writer is behind, the line is
    /// dropped rather than holding up the response it describes.
    pub fn try_access_line(&self, api: &str, json: String) {
        let record = Record {
            function: api.into(),
            request_id: None,
            stream: None,
            kind: Kind::Access,
            line: json,
            time_ms: crate::env::epoch_ms(),
        };
        if self.tx.try_send(Msg::Lines(vec![record])).is_err() {
            tracing::warn!(api, "access-log queue full; line dropped");
        }
    }

    /// Waits until every line queued so far is written and flushed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

fn write_logs(
    mut rx: mpsc::Receiver<Msg>,
    format: LogFormat,
    dir: Option<PathBuf>,
    console: bool,
    telemetry: Option<Arc<Telemetry>>,
) {
    let mut stdout = std::io::BufWriter::new(std::io::stdout());
    let mut files: HashMap<Arc<str>, std::io::BufWriter<File>> = HashMap::new();
    // A JSON line is rendered here, reusing one buffer.
    let mut json: Vec<u8> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut waiters = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take().or_else(|| rx.try_recv().ok()) {
            let lines = match msg {
                Msg::Lines(lines) => lines,
                Msg::Flush(done) => {
                    waiters.push(done);
                    continue;
                }
            };
            for r in lines {
                if let Some(t) = &telemetry {
                    if r.kind == Kind::Function {
                        t.record_log_line(&r.function, &r.line);
                    }
                }
                let rendered: &str = match (format, r.kind) {
                    (LogFormat::Text, _) | (_, Kind::Access) => &r.line,
                    (LogFormat::Json, _) => {
                        json.clear();
                        let _ = serde_json::to_writer(
                            &mut json,
                            &serde_json::json!({
                                "time": nimbus_core::report::timestamp_millis(r.time_ms),
                                "function": &*r.function,
                                "requestId": r.request_id.as_deref(),
                                "type": match r.kind {
                                    Kind::Platform => "platform",
                                    Kind::Group => "event",
                                    _ => "function",
                                },
                                "message": r.line,
                                "logStream": r.stream.as_deref(),
                            }),
                        );
                        std::str::from_utf8(&json).unwrap_or_default()
                    }
                };
                // A log group's lines are for the Logs API, not the console.
                if console && r.kind != Kind::Group {
                    let _ = match format {
                        LogFormat::Text => writeln!(stdout, "{} | {rendered}", r.function),
                        LogFormat::Json => writeln!(stdout, "{rendered}"),
                    };
                }
                if let Some(dir) = &dir {
                    let file = match files.get_mut(&r.function) {
                        Some(f) => Some(f),
                        None => File::options()
                            .create(true)
                            .append(true)
                            .open(dir.join(format!("{}.log", r.function)))
                            .ok()
                            .map(|f| {
                                files
                                    .entry(r.function.clone())
                                    .or_insert(std::io::BufWriter::new(f))
                            }),
                    };
                    if let Some(f) = file {
                        // Text lines carry their time and stream in the file (JSON lines have
                        // "time" and "logStream"), so `nimbus logs` and the logs API can place
                        // them.
                        let _ = match format {
                            LogFormat::Text => crate::logfile::write_text_line(
                                f,
                                r.time_ms,
                                r.stream.as_deref(),
                                rendered,
                            ),
                            LogFormat::Json => writeln!(f, "{rendered}"),
                        };
                    }
                }
                // Last, so the dashboard's ring takes the line without a copy. The ring shows
                // what functions and APIs logged; a log group's events are the Logs API's.
                if let Some(t) = telemetry.as_ref().filter(|_| r.kind != Kind::Group) {
                    let kind = match r.kind {
                        Kind::Function => "function",
                        Kind::Platform => "platform",
                        Kind::Access => "access",
                        Kind::Group => "group",
                    };
                    t.logs
                        .push(r.time_ms, r.function, kind, r.request_id, r.line);
                }
            }
        }
        let _ = stdout.flush();
        for f in files.values_mut() {
            let _ = f.flush();
        }
        for done in waiters {
            let _ = done.send(());
        }
        // Let lines gather before the next batch: under load this turns a wake-up and a few
        // write calls per invocation into one per batch. Nothing waits on log output.
        std::thread::sleep(WRITER_LINGER);
    }
}

/// How long the log writer waits between batches.
const WRITER_LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// Messages from the environment to its capture task, in order with the function's output.
pub(crate) enum LogCtl {
    /// A platform line inside the current invocation (e.g. the timeout message).
    Line(String),
    Done {
        request_id: String,
        /// `max_memory_used_mb` is read here, off the invocation's path, just before the
        /// REPORT line is written.
        report: nimbus_core::report::Report,
        tail: Option<oneshot::Sender<String>>,
    },
}

/// Whose lines a capture task files: the function, and its environment's log stream.
pub(crate) struct Origin {
    pub function: String,
    pub stream: Arc<str>,
    /// The version its START lines name.
    pub version: Arc<str>,
}

/// Reads the function's merged stdout/stderr line by line until EOF, interleaving the platform
/// lines it is sent. Before writing START or END it drains what the pipe already holds, so
/// every line the function printed before answering lands inside its invocation. After EOF it
/// still waits (bounded) for the END/REPORT of invocations that were dispatched, since a
/// process that dies mid-invocation closes the pipe before the platform reports it.
pub(crate) async fn capture(
    pipe: tokio::net::unix::pipe::Receiver,
    mut ctl: mpsc::Receiver<LogCtl>,
    pending: Arc<AtomicUsize>,
    started: Arc<std::sync::Mutex<Option<Arc<str>>>>,
    pid: i32,
    sink: Arc<LogSink>,
    origin: Origin,
) {
    let mut cap = Capture {
        function: origin.function.into(),
        stream: origin.stream,
        version: origin.version,
        partial: Vec::new(),
        request_id: None,
        tail: String::new(),
        pid,
        started,
        memory: None,
        out: Vec::new(),
    };
    let mut ctl_open = true;
    loop {
        let eof = tokio::select! {
            biased;
            msg = ctl.recv(), if ctl_open => match msg {
                Some(msg) => {
                    // Lines printed before the control message belong before its lines.
                    while cap.drain(&pipe) == Drained::More {}
                    cap.control(msg);
                    false
                }
                None => {
                    ctl_open = false;
                    false
                }
            },
            ready = pipe.readable() => ready.is_err() || cap.drain(&pipe) == Drained::Eof,
        };
        sink.write(std::mem::take(&mut cap.out)).await;
        if eof {
            break;
        }
    }
    cap.flush_partial();
    let guard = tokio::time::sleep(AFTER_EOF_WAIT);
    tokio::pin!(guard);
    while pending.load(Ordering::Acquire) > 0 && ctl_open {
        tokio::select! {
            msg = ctl.recv() => match msg {
                Some(msg) => cap.control(msg),
                None => break,
            },
            _ = &mut guard => break,
        }
        sink.write(std::mem::take(&mut cap.out)).await;
    }
    // A `Done` may be queued just as the count reached 0.
    while let Ok(msg) = ctl.try_recv() {
        cap.control(msg);
    }
    sink.write(cap.out).await;
}

#[derive(PartialEq)]
enum Drained {
    /// Nothing more to read now.
    Empty,
    /// The per-call budget ran out with data still waiting.
    More,
    Eof,
}

/// Bytes read per wake-up, so a chatty function cannot keep its capture task from handling
/// control messages (and from yielding to the runtime).
const DRAIN_BUDGET: usize = 64 * 1024;

struct Capture {
    function: Arc<str>,
    /// The environment's log stream.
    stream: Arc<str>,
    version: Arc<str>,
    partial: Vec<u8>,
    request_id: Option<Arc<str>>,
    tail: String,
    /// The environment's main process, for `Max Memory Used`.
    pid: i32,
    /// The request id `/next` last handed out (see [`Capture::sync_start`]).
    started: Arc<std::sync::Mutex<Option<Arc<str>>>>,
    /// The last `Max Memory Used` reading and when it was taken.
    memory: Option<(std::time::Instant, u32)>,
    /// Lines to hand to the sink at the end of this step.
    out: Vec<Record>,
}

/// How long a `Max Memory Used` reading is reused. Walking the process tree in /proc costs more
/// than a warm invocation itself; the peak only grows, so a reading this recent understates it
/// by at most what was allocated since, and the next REPORT catches up.
const MEMORY_READING_TTL: std::time::Duration = std::time::Duration::from_millis(200);

impl Capture {
    fn max_memory_used_mb(&mut self) -> u32 {
        match self.memory {
            Some((at, mb)) if at.elapsed() < MEMORY_READING_TTL => mb,
            _ => {
                let mb = crate::memory::max_memory_used_mb(self.pid);
                self.memory = Some((std::time::Instant::now(), mb));
                mb
            }
        }
    }

    /// Reads what is available now, up to [`DRAIN_BUDGET`] bytes.
    fn drain(&mut self, pipe: &tokio::net::unix::pipe::Receiver) -> Drained {
        let mut buf = [0u8; 16 * 1024];
        let mut read = 0;
        while read < DRAIN_BUDGET {
            match pipe.try_read(&mut buf) {
                Ok(0) => return Drained::Eof,
                Ok(n) => {
                    read += n;
                    self.push(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Drained::Empty,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Drained::Eof,
            }
        }
        Drained::More
    }

    fn push(&mut self, mut data: &[u8]) {
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&data[..pos]);
            let line = std::mem::take(&mut self.partial);
            self.function_line(&line);
            data = &data[pos + 1..];
        }
        self.partial.extend_from_slice(data);
        while self.partial.len() >= MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            let line = std::mem::replace(&mut self.partial, rest);
            self.function_line(&line);
        }
    }

    fn flush_partial(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.function_line(&line);
        }
    }

    fn function_line(&mut self, raw: &[u8]) {
        self.sync_start();
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = String::from_utf8_lossy(raw);
        self.record(&line, false);
    }

    fn record(&mut self, line: &str, platform: bool) {
        let kind = if platform {
            Kind::Platform
        } else {
            Kind::Function
        };
        self.out.push(Record {
            function: self.function.clone(),
            request_id: self.request_id.clone(),
            stream: Some(self.stream.clone()),
            kind,
            line: line.to_owned(),
            time_ms: crate::env::epoch_ms(),
        });
        if self.request_id.is_some() {
            self.tail.push_str(line);
            self.tail.push('\n');
            trim_front(&mut self.tail, TAIL_BYTES * 2);
        }
    }

    fn control(&mut self, msg: LogCtl) {
        match msg {
            LogCtl::Line(text) => {
                self.sync_start();
                for line in text.lines() {
                    self.record(line, true);
                }
            }
            LogCtl::Done {
                request_id,
                report,
                tail,
            } => {
                // An invocation that never reached /next still gets its START line.
                if self.request_id.as_deref() != Some(request_id.as_str()) {
                    self.tail.clear();
                    self.request_id = Some(request_id.as_str().into());
                    self.record(
                        &nimbus_core::report::start_line(&request_id, &self.version),
                        true,
                    );
                }
                self.record(&nimbus_core::report::end_line(&request_id), true);
                let mut report = report;
                report.max_memory_used_mb = self.max_memory_used_mb();
                self.record(
                    &nimbus_core::report::report_line(&request_id, &report),
                    true,
                );
                if let Some(tx) = tail {
                    let mut t = std::mem::take(&mut self.tail);
                    trim_front(&mut t, TAIL_BYTES);
                    let _ = tx.send(t);
                }
                self.tail.clear();
                self.request_id = None;
                let mut started = self.started.lock().expect("started poisoned");
                if started.as_deref() == Some(request_id.as_str()) {
                    *started = None;
                }
            }
        }
    }

    /// Writes START for the invocation the runtime has taken from `/next`, if not yet done.
    /// The Runtime API handler records it in `started` rather than sending a message, so a
    /// warm invocation costs this task one wake-up (for its END), not two.
    fn sync_start(&mut self) {
        let started = self.started.lock().expect("started poisoned").clone();
        if let Some(id) = started {
            if self.request_id.as_deref() != Some(&*id) {
                self.tail.clear();
                self.request_id = Some(id.clone());
                self.record(&nimbus_core::report::start_line(&id, &self.version), true);
            }
        }
    }
}

/// Keeps the last `max` bytes of `s`, cut at a character boundary.
fn trim_front(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = s.len() - max;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s.drain(..cut);
    }
}

#[cfg(test)]
mod tests {
    use super::trim_front;

    #[test]
    fn trim_front_keeps_the_last_bytes_on_a_char_boundary() {
        let mut s = "ééé".to_owned(); // 6 bytes
        trim_front(&mut s, 3);
        assert_eq!(s, "é");
        let mut s = "abc".to_owned();
        trim_front(&mut s, 10);
        assert_eq!(s, "abc");
    }
}
