//! Function logs: every line a function prints, framed by Lambda's START / END / REPORT lines,
//! shown on the console and appended to `<state-dir>/logs/<function>.log`.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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

/// Where log lines go. Cheap to share.
pub struct LogSink {
    format: LogFormat,
    console: bool,
    dir: Option<PathBuf>,
    files: Mutex<HashMap<String, File>>,
}

impl LogSink {
    /// `dir`: where per-function files go (`None`: console only). `console`: also print.
    pub fn new(format: LogFormat, dir: Option<PathBuf>, console: bool) -> std::io::Result<Self> {
        if let Some(d) = &dir {
            std::fs::create_dir_all(d)?;
        }
        Ok(Self {
            format,
            console,
            dir,
            files: Mutex::new(HashMap::new()),
        })
    }

    /// Writes one line. `platform` marks nimbus's own lines (START, END, REPORT, errors).
    pub fn emit(&self, function: &str, request_id: Option<&str>, platform: bool, line: &str) {
        let rendered = match self.format {
            LogFormat::Text => None,
            LogFormat::Json => Some(
                serde_json::json!({
                    "time": nimbus_core::report::timestamp_millis(crate::env::epoch_ms()),
                    "function": function,
                    "requestId": request_id,
                    "type": if platform { "platform" } else { "function" },
                    "message": line,
                })
                .to_string(),
            ),
        };
        if self.console {
            let mut out = std::io::stdout().lock();
            let _ = match &rendered {
                Some(json) => writeln!(out, "{json}"),
                None => writeln!(out, "{function} | {line}"),
            };
        }
        if let Some(dir) = &self.dir {
            let mut files = self.files.lock().expect("log files poisoned");
            let file = match files.get_mut(function) {
                Some(f) => Some(f),
                None => File::options()
                    .create(true)
                    .append(true)
                    .open(dir.join(format!("{function}.log")))
                    .ok()
                    .map(|f| files.entry(function.to_owned()).or_insert(f)),
            };
            if let Some(f) = file {
                let _ = writeln!(f, "{}", rendered.as_deref().unwrap_or(line));
            }
        }
    }
}

/// Messages from the environment to its capture task, in order with the function's output.
pub(crate) enum LogCtl {
    Start {
        request_id: String,
    },
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

/// Reads the function's merged stdout/stderr line by line until EOF, interleaving the platform
/// lines it is sent. Before writing START or END it drains what the pipe already holds, so
/// every line the function printed before answering lands inside its invocation. After EOF it
/// still waits (bounded) for the END/REPORT of invocations that were dispatched, since a
/// process that dies mid-invocation closes the pipe before the platform reports it.
pub(crate) async fn capture(
    pipe: tokio::net::unix::pipe::Receiver,
    mut ctl: mpsc::Receiver<LogCtl>,
    pending: Arc<AtomicUsize>,
    pid: i32,
    sink: Arc<LogSink>,
    function: String,
) {
    let mut cap = Capture {
        sink,
        function,
        partial: Vec::new(),
        request_id: None,
        tail: String::new(),
        pid,
    };
    let mut ctl_open = true;
    loop {
        tokio::select! {
            biased;
            msg = ctl.recv(), if ctl_open => match msg {
                Some(msg) => {
                    cap.drain(&pipe);
                    cap.control(msg);
                }
                None => ctl_open = false,
            },
            ready = pipe.readable() => {
                if ready.is_err() || cap.drain(&pipe) {
                    break;
                }
            }
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
    }
    // A `Done` may be queued just as the count reached 0.
    while let Ok(msg) = ctl.try_recv() {
        cap.control(msg);
    }
}

struct Capture {
    sink: Arc<LogSink>,
    function: String,
    partial: Vec<u8>,
    request_id: Option<String>,
    tail: String,
    /// The environment's main process, for `Max Memory Used`.
    pid: i32,
}

impl Capture {
    /// Reads everything available now. Returns true at EOF.
    fn drain(&mut self, pipe: &tokio::net::unix::pipe::Receiver) -> bool {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match pipe.try_read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => self.push(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
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
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = String::from_utf8_lossy(raw);
        self.record(&line, false);
    }

    fn record(&mut self, line: &str, platform: bool) {
        self.sink
            .emit(&self.function, self.request_id.as_deref(), platform, line);
        if self.request_id.is_some() {
            self.tail.push_str(line);
            self.tail.push('\n');
            trim_front(&mut self.tail, TAIL_BYTES * 2);
        }
    }

    fn control(&mut self, msg: LogCtl) {
        match msg {
            LogCtl::Start { request_id } => {
                self.tail.clear();
                self.request_id = Some(request_id.clone());
                self.record(
                    &nimbus_core::report::start_line(&request_id, "$LATEST"),
                    true,
                );
            }
            LogCtl::Line(text) => {
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
                    self.request_id = Some(request_id.clone());
                    self.record(
                        &nimbus_core::report::start_line(&request_id, "$LATEST"),
                        true,
                    );
                }
                self.record(&nimbus_core::report::end_line(&request_id), true);
                let mut report = report;
                report.max_memory_used_mb = crate::memory::max_memory_used_mb(self.pid);
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
