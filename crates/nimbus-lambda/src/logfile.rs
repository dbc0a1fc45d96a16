//! The log files under `<state-dir>/logs/`: their line format, and every read of them. `nimbus
//! logs` and the CloudWatch Logs API both read through this module, so the format has one owner.
//!
//! **Format.** One file per function (`<function>.log`) or API (`<api>.log`), one line per log
//! event, appended by the [`crate::LogSink`] writer thread. Text format:
//! `<time>\t<stream>\t<line>`: `<time>` is RFC 3339 with milliseconds, `<stream>` the log stream
//! of the execution environment that wrote the line, named as Lambda names them
//! (`2026/11/22/[$LATEST]<32 hex digits>`). Lines written before nimbus recorded streams are
//! `<time>\t<line>` and read as that day's stream whose hex part is all zeros, the stream that
//! lines written outside any environment (a function that cannot start) are given. A line with
//! no stream whose text itself begins with a stream name and a tab would be misread; nimbus
//! never wrote one. JSON format: one object per line with `time` (access lines: `requestTime`)
//! and `logStream`.
//!
//! **Bounds.** No read holds a whole file in memory. Lines are read one at a time; a line over
//! [`MAX_FILE_LINE`] bytes (nimbus writes none: function lines are cut at 256 KiB) is skipped.
//! A stream's reads scan only the part of the file between its first and its last line. A paged
//! read stops after [`SCAN_BUDGET`] bytes and hands back a token to go on from, as CloudWatch
//! may answer a partial or empty page. Pages hold at most [`MAX_EVENTS`] events and
//! [`MAX_PAGE_BYTES`] (CloudWatch's own limits). Stream listings come from an index per file
//! (each stream's first and last times and where it lies in the file) that each request brings
//! up to date by reading only what was appended since; it holds at most
//! [`MAX_STREAMS_PER_FILE`] streams (one per execution environment ever started).
//!
//! **Tokens** are file positions: `f/<offset>/<check>` reads forward from a line start,
//! `b/<offset>/<check>` backward; the check binds a token to its file and stream, and an offset
//! that is not a line start of the file is refused.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nimbus_telemetry::filter::FilterPattern;

/// Longest line read; longer ones are skipped. Function lines are cut at 256 KiB of output,
/// which lossy UTF-8 decoding and JSON escaping can grow several times.
pub const MAX_FILE_LINE: usize = 4 << 20;
/// Bytes one paged read scans before it answers with what it found and a token to go on.
pub const SCAN_BUDGET: u64 = 32 << 20;
/// CloudWatch's most events per page (`GetLogEvents`, `FilterLogEvents`).
pub const MAX_EVENTS: usize = 10_000;
/// CloudWatch's page size: 1 MB, counting each event's message plus 26 bytes.
pub const MAX_PAGE_BYTES: usize = 1_048_576;
const EVENT_OVERHEAD: usize = 26;
/// Streams indexed per file; lines of later streams stay readable through filters only.
pub const MAX_STREAMS_PER_FILE: usize = 100_000;
/// Bytes read at a time when reading a file backward.
const BACKWARD_CHUNK: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LogReadError {
    #[error("there is no log file for {0}")]
    NoLog(String),
    #[error("there is no log stream {0}")]
    NoStream(String),
    #[error("the token is not one this log handed out")]
    InvalidToken,
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Where the log files of a state directory are.
pub fn log_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("logs")
}

fn log_path(dir: &Path, source: &str) -> PathBuf {
    dir.join(format!("{source}.log"))
}

/// Lambda's name for the log stream of an environment started at `epoch_ms`:
/// `YYYY/MM/DD/[$LATEST]` and 32 hex digits of `id`.
pub fn stream_name(epoch_ms: u64, id: u128) -> String {
    version_stream_name(epoch_ms, "$LATEST", id)
}

/// The log stream of an environment of one version: Lambda puts the version in brackets.
pub fn version_stream_name(epoch_ms: u64, version: &str, id: u128) -> String {
    let date = date_of(epoch_ms);
    format!(
        "{:04}/{:02}/{:02}/[{version}]{id:032x}",
        date.year(),
        date.month() as u8,
        date.day()
    )
}

/// The stream of lines no environment wrote (or written before streams were recorded): one a
/// day, its hex part all zeros.
pub fn day_stream(epoch_ms: u64) -> String {
    stream_name(epoch_ms, 0)
}

fn date_of(epoch_ms: u64) -> time::Date {
    i64::try_from(epoch_ms)
        .ok()
        .and_then(|ms| {
            time::OffsetDateTime::UNIX_EPOCH.checked_add(time::Duration::milliseconds(ms))
        })
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date()
}

/// The file source of a log group that is not a function's (`/aws/events/orders`): `~group~`
/// and the name with `/` as `~`, which neither a function name, an API's logical id nor a
/// log group name (`[.\-_/#A-Za-z0-9]+`) can contain, so it reads back unambiguously.
pub fn group_source(group: &str) -> String {
    format!("{GROUP_SOURCE}{}", group.replace('/', "~"))
}

/// The log group a file source holds, for a [`group_source`].
pub fn source_group(source: &str) -> Option<String> {
    source
        .strip_prefix(GROUP_SOURCE)
        .map(|g| g.replace('~', "/"))
}

const GROUP_SOURCE: &str = "~group~";

/// A log stream name nimbus writes: Lambda's (`YYYY/MM/DD/[<qualifier>]<32 hex digits>`), an
/// event's id (a UUID), the stream EventBridge writes each event to in a log group, or a
/// Step Functions execution's (`states/<machine>/<yyyy-mm-dd-hh-mm>/<8 hex>`).
pub fn is_stream_name(s: &str) -> bool {
    is_lambda_stream_name(s) || is_uuid(s) || is_states_stream_name(s)
}

fn is_states_stream_name(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("states/") else {
        return false;
    };
    let mut parts = rest.rsplitn(3, '/');
    let (Some(hex), Some(minute), Some(machine)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !machine.is_empty()
        && !machine.contains(['\t', '\n'])
        && minute.len() == 16
        && minute.bytes().enumerate().all(|(i, c)| match i {
            4 | 7 | 10 | 13 => c == b'-',
            _ => c.is_ascii_digit(),
        })
        && hex.len() == 8
        && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `YYYY/MM/DD/[<qualifier>]<32 lowercase hex digits>`.
fn is_lambda_stream_name(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 12 + 2 + 32 {
        return false;
    }
    let date_ok = b[..10].iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'/',
        _ => c.is_ascii_digit(),
    });
    if !date_ok || b[10] != b'/' || b[11] != b'[' {
        return false;
    }
    // The first 12 bytes are ASCII, so 12 is a character boundary.
    let Some((qualifier, hex)) = s[12..].split_once(']') else {
        return false;
    };
    !qualifier.is_empty()
        && qualifier
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'$' | b'-' | b'_'))
        && hex.len() == 32
        && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Epoch milliseconds of an RFC 3339 time. nimbus writes `2026-11-22T13:26:41.123Z`
/// ([`nimbus_core::report::timestamp_millis`]), read without the general parser since scans
/// read one per line; any other RFC 3339 form goes through it.
fn parse_time(s: &str) -> Option<u64> {
    parse_time_fixed(s).or_else(|| {
        let t =
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
        u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
    })
}

fn parse_time_fixed(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let shape = b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z';
    if !shape {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let month = time::Month::try_from(u8::try_from(num(5, 7)?).ok()?).ok()?;
    let day = u8::try_from(num(8, 10)?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(num(0, 4)?).ok()?, month, day).ok()?;
    let (h, m, sec, ms) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let days = i64::from(date.to_julian_day())
        - i64::from(time::OffsetDateTime::UNIX_EPOCH.to_julian_day());
    let secs = days * 86_400 + i64::from(h * 3600 + m * 60 + sec);
    u64::try_from(secs)
        .ok()?
        .checked_mul(1000)?
        .checked_add(u64::from(ms))
}

/// Writes one text-format line: `<time>\t<stream>\t<line>`, or `<time>\t<line>` for a line of
/// no stream (API access lines).
pub(crate) fn write_text_line(
    out: &mut impl Write,
    time_ms: u64,
    stream: Option<&str>,
    line: &str,
) -> io::Result<()> {
    let time = nimbus_core::report::TimestampMillis(time_ms);
    match stream {
        Some(s) => writeln!(out, "{time}\t{s}\t{line}"),
        None => writeln!(out, "{time}\t{line}"),
    }
}

/// One line of a log file, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub time_ms: u64,
    /// The line's time as written (text format).
    stamp: &'a str,
    stream: Option<Cow<'a, str>>,
    /// What was logged: the text after the time and stream, or the whole JSON object.
    pub text: &'a str,
    json: bool,
}

#[derive(serde::Deserialize)]
struct JsonFields<'a> {
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
    #[serde(rename = "requestTime", borrow, default)]
    request_time: Option<Cow<'a, str>>,
    #[serde(rename = "logStream", borrow, default)]
    log_stream: Option<Cow<'a, str>>,
}

impl<'a> Line<'a> {
    /// A line in either format; `None` for one that carries no time.
    pub fn parse(line: &'a str) -> Option<Line<'a>> {
        if let Some((stamp, rest)) = line.split_once('\t') {
            if let Some(time_ms) = parse_time(stamp) {
                let (stream, text) = match rest.split_once('\t') {
                    Some((s, text)) if is_stream_name(s) => (Some(Cow::Borrowed(s)), text),
                    _ => (None, rest),
                };
                return Some(Line {
                    time_ms,
                    stamp,
                    stream,
                    text,
                    json: false,
                });
            }
        }
        if !line.starts_with('{') {
            return None;
        }
        let fields: JsonFields = serde_json::from_str(line).ok()?;
        let time_ms = fields
            .time
            .as_deref()
            .or(fields.request_time.as_deref())
            .and_then(parse_time)?;
        Some(Line {
            time_ms,
            stamp: "",
            stream: fields.log_stream.filter(|s| is_stream_name(s)),
            text: line,
            json: true,
        })
    }

    /// The stream the line belongs to (a line written with none: its day's stream).
    pub fn stream(&self) -> Cow<'_, str> {
        match &self.stream {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(day_stream(self.time_ms)),
        }
    }

    /// The line as `nimbus logs` prints it: `<time>\t<text>` (the stream is for the API), or
    /// the JSON object as written.
    pub fn shown(&self) -> Cow<'a, str> {
        if self.json {
            Cow::Borrowed(self.text)
        } else {
            Cow::Owned(format!("{}\t{}", self.stamp, self.text))
        }
    }

    /// The message of the CloudWatch event: Lambda ends each text event with a newline; a JSON
    /// line is the object as written.
    pub fn message(&self) -> String {
        if self.json {
            self.text.to_owned()
        } else {
            format!("{}\n", self.text)
        }
    }
}

/// Calls `f` with the parsed line of `raw` (lossily decoded if it is not UTF-8).
fn with_line<R>(raw: &[u8], f: impl FnOnce(&Line<'_>) -> Option<R>) -> Option<R> {
    match std::str::from_utf8(raw) {
        Ok(s) => Line::parse(s).as_ref().and_then(f),
        Err(_) => {
            let s = String::from_utf8_lossy(raw);
            Line::parse(&s).as_ref().and_then(f)
        }
    }
}

/// The log files in `dir` (`<name>.log`), as `(name, path)` sorted by name; none if `dir` does
/// not exist.
pub fn log_sources(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut all = Vec::new();
    if !dir.is_dir() {
        return Ok(all);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
        {
            all.push((name.to_owned(), path.clone()));
        }
    }
    all.sort();
    Ok(all)
}

/// The complete lines of `path` from byte `from`, and the offset after the last of them (a line
/// still being written is left for the next read). A file now shorter than `from` was replaced
/// and is read from its start.
pub fn read_lines(path: &Path, from: u64) -> io::Result<(Vec<String>, u64)> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let from = if from > len { 0 } else { from };
    let mut reader = Forward::new(file, from, len)?;
    let mut lines = Vec::new();
    while let Some((_, raw)) = reader.next()? {
        lines.push(String::from_utf8_lossy(raw).into_owned());
    }
    Ok((lines, reader.pos()))
}

/// Reads the complete lines of `[from, end)` of a file, first to last.
struct Forward {
    reader: BufReader<File>,
    /// After the last complete line returned.
    pos: u64,
    /// Where the reader is (past `pos` while inside a line).
    read: u64,
    end: u64,
    buf: Vec<u8>,
}

impl Forward {
    fn new(mut file: File, from: u64, end: u64) -> io::Result<Self> {
        file.seek(SeekFrom::Start(from))?;
        Ok(Self {
            reader: BufReader::with_capacity(64 * 1024, file),
            pos: from,
            read: from,
            end,
            buf: Vec::new(),
        })
    }

    fn pos(&self) -> u64 {
        self.pos
    }

    /// The next complete line (without its newline) and where it starts.
    fn next(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        loop {
            if self.read >= self.end {
                return Ok(None);
            }
            let start = self.read;
            self.buf.clear();
            let mut too_long = false;
            loop {
                let left = usize::try_from(self.end - self.read).unwrap_or(usize::MAX);
                let avail = self.reader.fill_buf()?;
                let avail = &avail[..avail.len().min(left)];
                if avail.is_empty() {
                    // The file ends inside a line that is still being written.
                    self.read = self.end;
                    return Ok(None);
                }
                let (take, used, done) = match avail.iter().position(|&b| b == b'\n') {
                    Some(i) => (i, i + 1, true),
                    None => (avail.len(), avail.len(), false),
                };
                if !too_long && self.buf.len() + take <= MAX_FILE_LINE {
                    self.buf.extend_from_slice(&avail[..take]);
                } else {
                    too_long = true;
                    self.buf.clear();
                }
                self.reader.consume(used);
                self.read += used as u64;
                if done {
                    break;
                }
            }
            self.pos = self.read;
            if too_long {
                tracing::warn!(
                    offset = start,
                    "log line over {MAX_FILE_LINE} bytes skipped"
                );
                continue;
            }
            return Ok(Some((start, &self.buf)));
        }
    }
}

/// Reads the complete lines of `[lo, end)` of a file, last to first. `lo` and `end` are line
/// starts.
struct Backward {
    file: File,
    lo: u64,
    /// Start of the last line returned (the next one returned ends just before it).
    pos: u64,
    /// File offset of `buf[0]`; `buf` runs up to `pos`.
    base: u64,
    buf: Vec<u8>,
}

impl Backward {
    fn new(file: File, lo: u64, end: u64) -> Self {
        Self {
            file,
            lo,
            pos: end.max(lo),
            base: end.max(lo),
            buf: Vec::new(),
        }
    }

    fn pos(&self) -> u64 {
        self.pos
    }

    /// Prepends the bytes before `base` (up to a chunk); false at `lo`.
    fn read_chunk(&mut self) -> io::Result<bool> {
        if self.base <= self.lo {
            return Ok(false);
        }
        let from = self.base.saturating_sub(BACKWARD_CHUNK).max(self.lo);
        let mut chunk = vec![0; usize::try_from(self.base - from).unwrap_or(0)];
        self.file.read_exact_at(&mut chunk, from)?;
        chunk.extend_from_slice(&self.buf);
        self.buf = chunk;
        self.base = from;
        Ok(true)
    }

    /// The previous complete line (without its newline) and where it starts.
    fn prev(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        // Drop the line returned last time: `buf` ends where it started.
        self.buf
            .truncate(usize::try_from(self.pos - self.base).unwrap_or(0));
        loop {
            if self.pos <= self.lo {
                return Ok(None);
            }
            // `buf` ends with the newline of the line wanted, once read.
            let n = self.buf.len();
            if n > 0 {
                let found = self.buf[..n - 1].iter().rposition(|&b| b == b'\n');
                if found.is_some() || self.base == self.lo {
                    let from = found.map_or(0, |i| i + 1);
                    self.pos = self.base + from as u64;
                    if n - 1 - from > MAX_FILE_LINE {
                        tracing::warn!(
                            offset = self.pos,
                            "log line over {MAX_FILE_LINE} bytes skipped"
                        );
                        self.buf.truncate(from);
                        continue;
                    }
                    return Ok(Some((self.pos, &self.buf[from..n - 1])));
                }
            }
            if n > MAX_FILE_LINE + 1 {
                self.skip_long_line()?;
                continue;
            }
            if !self.read_chunk()? {
                return Ok(None);
            }
        }
    }

    /// Moves `pos` to the start of the over-long line that ends at `pos`, keeping only what
    /// comes before it.
    fn skip_long_line(&mut self) -> io::Result<()> {
        tracing::warn!(
            end = self.pos,
            "log line over {MAX_FILE_LINE} bytes skipped"
        );
        self.buf.clear();
        loop {
            if !self.read_chunk()? {
                self.pos = self.lo;
                return Ok(());
            }
            if let Some(i) = self.buf.iter().rposition(|&b| b == b'\n') {
                self.buf.truncate(i + 1);
                self.pos = self.base + i as u64 + 1;
                return Ok(());
            }
            self.buf.clear();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// FNV-1a: ties a token to the file and stream it was made for.
fn check(scope: &str) -> u32 {
    scope.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn event_token(direction: Direction, offset: u64, scope: &str) -> String {
    let d = match direction {
        Direction::Forward => 'f',
        Direction::Backward => 'b',
    };
    format!("{d}/{offset:020}/{:08x}", check(scope))
}

fn parse_event_token(token: &str, scope: &str) -> Option<(Direction, u64)> {
    let mut parts = token.split('/');
    let direction = match parts.next()? {
        "f" => Direction::Forward,
        "b" => Direction::Backward,
        _ => return None,
    };
    let offset = parts.next()?;
    let tag = parts.next()?;
    if parts.next().is_some()
        || offset.len() != 20
        || !offset.bytes().all(|c| c.is_ascii_digit())
        || tag != format!("{:08x}", check(scope))
    {
        return None;
    }
    Some((direction, offset.parse().ok()?))
}

/// A token that resumes a sorted listing after the item whose key is `(ms, name)`.
pub fn list_token(ms: u64, name: &str) -> String {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    format!("n/{ms}/{hex}")
}

fn parse_list_token(token: &str) -> Option<(u64, String)> {
    let rest = token.strip_prefix("n/")?;
    let (ms, hex) = rest.split_once('/')?;
    if hex.len() % 2 != 0 || !ms.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some((ms.parse().ok()?, String::from_utf8(bytes).ok()?))
}

/// One page of `items` ordered by `key` (ascending, or descending), starting after the item a
/// [`list_token`] names; the token of the next page when more follow.
pub fn page_sorted<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> (u64, &str),
    descending: bool,
    token: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), LogReadError> {
    items.sort_by(|a, b| key(a).cmp(&key(b)));
    if descending {
        items.reverse();
    }
    let start = match token {
        None => 0,
        Some(t) => {
            let (ms, name) = parse_list_token(t).ok_or(LogReadError::InvalidToken)?;
            let after = (ms, name.as_str());
            items
                .iter()
                .position(|it| {
                    if descending {
                        key(it) < after
                    } else {
                        key(it) > after
                    }
                })
                .unwrap_or(items.len())
        }
    };
    let more = items.len() - start > limit;
    let page: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let next = match page.last() {
        Some(last) if more => {
            let (ms, name) = key(last);
            Some(list_token(ms, name))
        }
        _ => None,
    };
    Ok((page, next))
}

/// `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl TimeRange {
    pub const ALL: TimeRange = TimeRange {
        start_ms: 0,
        end_ms: u64::MAX,
    };

    fn contains(&self, ms: u64) -> bool {
        self.start_ms <= ms && ms < self.end_ms
    }
}

/// A log event read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub stream: String,
    pub time_ms: u64,
    pub message: String,
    /// Where its line starts in the file.
    pub offset: u64,
    /// Where its line ends (after the newline).
    end: u64,
}

impl Event {
    /// A 56-digit id, like CloudWatch's, unique in its log: time, then file offset.
    pub fn id(&self) -> String {
        format!("{:020}{:036}", self.time_ms, self.offset)
    }
}

/// What is known of one stream of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub name: String,
    pub first_event_ms: u64,
    pub last_event_ms: u64,
    /// Where its first line starts and its last line ends: reads of the stream scan only this.
    pub first_offset: u64,
    pub end_offset: u64,
}

/// A log file as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInfo {
    /// When the file was created (its modification time where the file system keeps no
    /// creation time).
    pub created_ms: u64,
    pub stored_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOrder {
    Name,
    LastEventTime,
}

/// A listing of streams (`DescribeLogStreams`).
#[derive(Debug, Clone)]
pub struct StreamList<'a> {
    pub prefix: Option<&'a str>,
    pub order: StreamOrder,
    pub descending: bool,
    pub limit: usize,
    pub token: Option<&'a str>,
}

/// A read of one stream (`GetLogEvents`).
#[derive(Debug, Clone)]
pub struct StreamRead<'a> {
    pub range: TimeRange,
    pub limit: usize,
    pub token: Option<&'a str>,
    /// Without a token: the earliest events (else the latest).
    pub start_from_head: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPage {
    /// Oldest first.
    pub events: Vec<Event>,
    /// Reads on after the last event (where the read stopped, when there was none).
    pub forward_token: String,
    /// Reads on before the first event.
    pub backward_token: String,
}

#[derive(Debug, Clone)]
pub enum StreamSelection<'a> {
    All,
    Names(&'a [String]),
    Prefix(&'a str),
}

impl StreamSelection<'_> {
    fn selects(&self, name: &str) -> bool {
        match self {
            StreamSelection::All => true,
            StreamSelection::Names(names) => names.iter().any(|n| n == name),
            StreamSelection::Prefix(p) => name.starts_with(p),
        }
    }
}

/// A search of a whole file (`FilterLogEvents`).
#[derive(Debug, Clone)]
pub struct FilterRead<'a> {
    pub streams: StreamSelection<'a>,
    pub range: TimeRange,
    pub pattern: &'a FilterPattern,
    pub limit: usize,
    pub token: Option<&'a str>,
    /// Without a token: oldest first (else newest first).
    pub start_from_head: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterPage {
    /// In the order read: oldest first when reading forward, newest first backward.
    pub events: Vec<Event>,
    /// `None` once the whole file is searched.
    pub next_token: Option<String>,
}

/// Events gathered for one page, within CloudWatch's page limits.
struct Page {
    events: Vec<Event>,
    bytes: usize,
    limit: usize,
}

impl Page {
    fn new(limit: usize) -> Self {
        Self {
            events: Vec::new(),
            bytes: 0,
            limit: limit.clamp(1, MAX_EVENTS),
        }
    }

    fn full(&self) -> bool {
        self.events.len() >= self.limit
    }

    /// Adds `event` unless the page would pass 1 MB; the first event always fits, so every
    /// page makes progress.
    fn push(&mut self, event: Event) -> bool {
        let size = event.message.len() + EVENT_OVERHEAD;
        if !self.events.is_empty() && self.bytes + size > MAX_PAGE_BYTES {
            return false;
        }
        self.bytes += size;
        self.events.push(event);
        true
    }
}

#[derive(Default)]
struct FileIndex {
    /// Device and inode: a file replaced under the same name is indexed again.
    identity: (u64, u64),
    /// Indexed up to here (a line start).
    scanned: u64,
    streams: HashMap<String, StreamInfo>,
    warned_full: bool,
}

impl FileIndex {
    fn add(&mut self, stream: Cow<'_, str>, time_ms: u64, start: u64, end: u64) {
        if let Some(s) = self.streams.get_mut(&*stream) {
            s.first_event_ms = s.first_event_ms.min(time_ms);
            s.last_event_ms = s.last_event_ms.max(time_ms);
            s.end_offset = end;
        } else if self.streams.len() < MAX_STREAMS_PER_FILE {
            let name = stream.into_owned();
            self.streams.insert(
                name.clone(),
                StreamInfo {
                    name,
                    first_event_ms: time_ms,
                    last_event_ms: time_ms,
                    first_offset: start,
                    end_offset: end,
                },
            );
        } else if !self.warned_full {
            self.warned_full = true;
            tracing::warn!(
                "a log file has over {MAX_STREAMS_PER_FILE} streams; later ones are not listed"
            );
        }
    }
}

/// Reads the log files of one directory, keeping an index of each file's streams.
pub struct LogStore {
    dir: PathBuf,
    indexes: Mutex<HashMap<String, FileIndex>>,
    scan_budget: u64,
}

impl LogStore {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            indexes: Mutex::new(HashMap::new()),
            scan_budget: SCAN_BUDGET,
        }
    }

    fn io_error(&self, source: &str) -> impl Fn(io::Error) -> LogReadError {
        let path = log_path(&self.dir, source);
        move |e| LogReadError::Io {
            path: path.clone(),
            source: e,
        }
    }

    fn open(&self, source: &str) -> Result<File, LogReadError> {
        match File::open(log_path(&self.dir, source)) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(LogReadError::NoLog(source.to_owned()))
            }
            Err(e) => Err(self.io_error(source)(e)),
        }
    }

    /// Runs `f` on the file's index, brought up to date, with the file open.
    fn indexed<R>(
        &self,
        source: &str,
        f: impl FnOnce(&FileIndex, File) -> R,
    ) -> Result<R, LogReadError> {
        let io_err = self.io_error(source);
        let file = self.open(source)?;
        let meta = file.metadata().map_err(&io_err)?;
        let identity = (meta.dev(), meta.ino());
        let mut indexes = self.indexes.lock().unwrap_or_else(|e| e.into_inner());
        let index = indexes.entry(source.to_owned()).or_default();
        if index.identity != identity || meta.len() < index.scanned {
            *index = FileIndex {
                identity,
                ..FileIndex::default()
            };
        }
        if meta.len() > index.scanned {
            let clone = file.try_clone().map_err(&io_err)?;
            let mut reader = Forward::new(clone, index.scanned, meta.len()).map_err(&io_err)?;
            while let Some((start, raw)) = reader.next().map_err(&io_err)? {
                let end = start + raw.len() as u64 + 1;
                with_line(raw, |line| {
                    index.add(line.stream(), line.time_ms, start, end);
                    Some(())
                });
            }
            index.scanned = reader.pos();
        }
        Ok(f(index, file))
    }

    /// The file of `source`: `None` if there is none.
    pub fn log_info(&self, source: &str) -> Result<Option<LogInfo>, LogReadError> {
        let file = match self.open(source) {
            Ok(f) => f,
            Err(LogReadError::NoLog(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.metadata().map_err(self.io_error(source))?;
        let created = meta
            .created()
            .or_else(|_| meta.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64);
        Ok(Some(LogInfo {
            created_ms: created,
            stored_bytes: meta.len(),
        }))
    }

    /// One page of the file's streams.
    pub fn list_streams(
        &self,
        source: &str,
        q: &StreamList<'_>,
    ) -> Result<(Vec<StreamInfo>, Option<String>), LogReadError> {
        let streams: Vec<StreamInfo> = self.indexed(source, |index, _| {
            index
                .streams
                .values()
                .filter(|s| q.prefix.is_none_or(|p| s.name.starts_with(p)))
                .cloned()
                .collect()
        })?;
        let order = q.order;
        page_sorted(
            streams,
            |s: &StreamInfo| match order {
                StreamOrder::Name => (0, s.name.as_str()),
                StreamOrder::LastEventTime => (s.last_event_ms, s.name.as_str()),
            },
            q.descending,
            q.token,
            q.limit,
        )
    }

    /// The offset a token stands for, checked to be a line start of this file.
    fn position(
        file: &File,
        token: &str,
        scope: &str,
        scanned: u64,
    ) -> Result<(Direction, u64), LogReadError> {
        let (direction, offset) =
            parse_event_token(token, scope).ok_or(LogReadError::InvalidToken)?;
        if offset > scanned {
            return Err(LogReadError::InvalidToken);
        }
        if offset > 0 {
            let mut before = [0u8];
            file.read_exact_at(&mut before, offset - 1)
                .map_err(|_| LogReadError::InvalidToken)?;
            if before[0] != b'\n' {
                return Err(LogReadError::InvalidToken);
            }
        }
        Ok((direction, offset))
    }

    /// One page of one stream's events.
    pub fn read_stream(
        &self,
        source: &str,
        stream: &str,
        q: &StreamRead<'_>,
    ) -> Result<StreamPage, LogReadError> {
        let (info, file, scanned) = self.indexed(source, |index, file| {
            (index.streams.get(stream).cloned(), file, index.scanned)
        })?;
        let info = info.ok_or_else(|| LogReadError::NoStream(stream.to_owned()))?;
        let scope = format!("{source}\n{stream}");
        let from = match q.token {
            Some(t) => Some(Self::position(&file, t, &scope, scanned)?),
            None => None,
        };
        let direction = match from {
            Some((d, _)) => d,
            None if q.start_from_head => Direction::Forward,
            None => Direction::Backward,
        };
        // Only the part of the file the stream spans, from the token on (or up to it).
        let (lo, hi) = match (direction, from) {
            (Direction::Forward, Some((_, o))) => {
                let lo = o.max(info.first_offset);
                (lo, info.end_offset.max(lo))
            }
            (Direction::Backward, Some((_, o))) => {
                let hi = o.min(info.end_offset);
                (info.first_offset.min(hi), hi)
            }
            (_, None) => (info.first_offset, info.end_offset),
        };
        let mut page = Page::new(q.limit);
        let next = scan(
            file,
            direction,
            lo,
            hi,
            self.scan_budget,
            &mut page,
            |at, raw| {
                with_line(raw, |line| {
                    (q.range.contains(line.time_ms) && line.stream() == stream).then(|| Event {
                        stream: stream.to_owned(),
                        time_ms: line.time_ms,
                        message: line.message(),
                        offset: at,
                        end: at + raw.len() as u64 + 1,
                    })
                })
            },
        )
        .map_err(self.io_error(source))?;
        let mut events = page.events;
        let (forward, backward) = match direction {
            Direction::Forward => (next, events.first().map_or(lo, |e| e.offset)),
            Direction::Backward => {
                // Gathered newest first: the first is the latest.
                let after_latest = events.first().map_or(hi, |e| e.end);
                events.reverse();
                (after_latest, next)
            }
        };
        Ok(StreamPage {
            events,
            forward_token: event_token(Direction::Forward, forward, &scope),
            backward_token: event_token(Direction::Backward, backward, &scope),
        })
    }

    /// One page of the file's events that the selection, range and pattern match.
    pub fn filter(&self, source: &str, q: &FilterRead<'_>) -> Result<FilterPage, LogReadError> {
        let (span, file, scanned) = self.indexed(source, |index, file| {
            let span = match q.streams {
                StreamSelection::All => Some((0, index.scanned)),
                // Only the part of the file the selected streams span.
                _ => index
                    .streams
                    .values()
                    .filter(|s| q.streams.selects(&s.name))
                    .fold(None, |acc: Option<(u64, u64)>, s| {
                        Some(acc.map_or((s.first_offset, s.end_offset), |(lo, hi)| {
                            (lo.min(s.first_offset), hi.max(s.end_offset))
                        }))
                    }),
            };
            (span, file, index.scanned)
        })?;
        let Some((lo, hi)) = span else {
            return Ok(FilterPage {
                events: Vec::new(),
                next_token: None,
            });
        };
        let from = match q.token {
            Some(t) => Some(Self::position(&file, t, source, scanned)?),
            None => None,
        };
        let direction = match from {
            Some((d, _)) => d,
            None if q.start_from_head => Direction::Forward,
            None => Direction::Backward,
        };
        let (from_lo, from_hi) = match (direction, from) {
            (Direction::Forward, Some((_, o))) => (o.max(lo), hi.max(o)),
            (Direction::Backward, Some((_, o))) => (lo.min(o), o.min(hi)),
            (_, None) => (lo, hi),
        };
        let mut page = Page::new(q.limit);
        let next = scan(
            file,
            direction,
            from_lo,
            from_hi,
            self.scan_budget,
            &mut page,
            |at, raw| {
                with_line(raw, |line| {
                    if !q.range.contains(line.time_ms) || !q.pattern.matches(line.text) {
                        return None;
                    }
                    let stream = line.stream();
                    q.streams.selects(&stream).then(|| Event {
                        stream: stream.into_owned(),
                        time_ms: line.time_ms,
                        message: line.message(),
                        offset: at,
                        end: at + raw.len() as u64 + 1,
                    })
                })
            },
        )
        .map_err(self.io_error(source))?;
        let more = match direction {
            Direction::Forward => next < from_hi,
            Direction::Backward => next > from_lo,
        };
        Ok(FilterPage {
            events: page.events,
            next_token: more.then(|| event_token(direction, next, source)),
        })
    }
}

/// Reads `[lo, hi)` of `file` forward, or backward from `hi`, adding the events `event_of`
/// finds to `page` until it is full, `budget` bytes are read or the span ends. Returns where a
/// next read in the same direction goes on from: the line of an event the page had no room
/// for, or where this read stopped.
fn scan(
    file: File,
    direction: Direction,
    lo: u64,
    hi: u64,
    budget: u64,
    page: &mut Page,
    event_of: impl Fn(u64, &[u8]) -> Option<Event>,
) -> io::Result<u64> {
    let mut reader = match direction {
        Direction::Forward => Reader::Forward(Forward::new(file, lo, hi)?),
        Direction::Backward => Reader::Backward(Backward::new(file, lo, hi)),
    };
    let mut budget = budget;
    while let Some((at, raw)) = reader.step()? {
        budget = budget.saturating_sub(raw.len() as u64 + 1);
        if let Some(event) = event_of(at, raw) {
            let resume = match direction {
                Direction::Forward => event.offset,
                Direction::Backward => event.end,
            };
            if !page.push(event) {
                return Ok(resume);
            }
            if page.full() {
                break;
            }
        }
        if budget == 0 {
            break;
        }
    }
    Ok(reader.pos())
}

enum Reader {
    Forward(Forward),
    Backward(Backward),
}

impl Reader {
    fn step(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        match self {
            Reader::Forward(r) => r.next(),
            Reader::Backward(r) => r.prev(),
        }
    }

    fn pos(&self) -> u64 {
        match self {
            Reader::Forward(r) => r.pos(),
            Reader::Backward(r) => r.pos(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S1: &str = "2026/11/22/[$LATEST]0123456789abcdef0123456789abcdef";
    const S2: &str = "2026/11/22/[$LATEST]fedcba9876543210fedcba9876543210";
    /// 2026-11-22T13:26:41.000Z
    const T0: u64 = 1_795_354_001_000;

    fn text(ms: u64, stream: Option<&str>, line: &str) -> String {
        let mut out = Vec::new();
        write_text_line(&mut out, ms, stream, line).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A store over a temporary directory holding `Fn.log` with `lines` (each ends with \n).
    fn store(lines: &[String]) -> (tempfile::TempDir, LogStore) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Fn.log"), lines.concat()).unwrap();
        let store = LogStore::new(dir.path().to_owned());
        (dir, store)
    }

    fn append(dir: &tempfile::TempDir, more: &str) {
        use std::io::Write;
        let mut f = File::options()
            .append(true)
            .open(dir.path().join("Fn.log"))
            .unwrap();
        f.write_all(more.as_bytes()).unwrap();
    }

    /// Ten lines alternating between S1 (even) and S2 (odd), a second apart.
    fn interleaved() -> Vec<String> {
        (0..10)
            .map(|i| {
                let s = if i % 2 == 0 { S1 } else { S2 };
                text(T0 + i * 1000, Some(s), &format!("line {i}"))
            })
            .collect()
    }

    fn messages(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.message.trim_end()).collect()
    }

    fn read(limit: usize, token: Option<&str>, head: bool) -> StreamRead<'_> {
        StreamRead {
            range: TimeRange::ALL,
            limit,
            token,
            start_from_head: head,
        }
    }

    #[test]
    fn stream_names_are_lambdas_with_the_day_and_32_hex_digits() {
        let name = stream_name(T0, 0xabc);
        assert_eq!(name, "2026/11/22/[$LATEST]00000000000000000000000000000abc");
        assert!(is_stream_name(&name));
        assert_eq!(day_stream(T0), stream_name(T0, 0));
        for bad in [
            "2026/11/22/[$LATEST]0123",
            "2026/11/22/$LATEST0123456789abcdef0123456789abcdef",
            "2026/11/22/[$LATEST]0123456789ABCDEF0123456789abcdef",
            "START RequestId: 0123456789abcdef0123456789abcdef01",
            "2026-11-22/[$LATEST]0123456789abcdef0123456789abcdef",
            "2026/11/22/[]0123456789abcdef0123456789abcdef",
            "6a7e8feb-b491-4cf7-a9f1-bf3703467718x",
            "6a7e8feb_b491-4cf7-a9f1-bf3703467718",
        ] {
            assert!(!is_stream_name(bad), "{bad}");
        }
        // An event's id: the stream EventBridge writes it to in a log group; a Step Functions
        // execution's stream.
        assert!(is_stream_name("6a7e8feb-b491-4cf7-a9f1-bf3703467718"));
        assert!(is_stream_name("states/orders/2026-12-06-20-55/0a1b2c3d"));
        assert!(!is_stream_name("states/orders/2026-12-06/0a1b2c3d"));
    }

    #[test]
    fn log_group_sources_read_back_as_their_groups() {
        for group in ["/aws/events/orders", "audit", "a.b-c_d#e/f"] {
            let source = group_source(group);
            assert!(!source.contains('/'), "{source}");
            assert_eq!(source_group(&source).as_deref(), Some(group));
        }
        assert_eq!(source_group("Orders"), None);
    }

    #[test]
    fn a_text_line_keeps_time_stream_and_text_and_shows_without_the_stream() {
        let raw = text(T0 + 123, Some(S1), "[INFO] order 1\tok");
        assert_eq!(
            raw,
            format!("2026-11-22T13:26:41.123Z\t{S1}\t[INFO] order 1\tok\n")
        );
        let line = Line::parse(raw.trim_end()).unwrap();
        assert_eq!(line.time_ms, T0 + 123);
        assert_eq!(line.stream(), S1);
        assert_eq!(line.text, "[INFO] order 1\tok");
        assert_eq!(line.shown(), "2026-11-22T13:26:41.123Z\t[INFO] order 1\tok");
        assert_eq!(line.message(), "[INFO] order 1\tok\n");
    }

    #[test]
    fn a_line_without_a_stream_reads_as_its_days_zero_stream() {
        // As nimbus wrote them before streams: a REPORT line's own tabs are not a stream.
        let raw = "2026-11-22T13:26:41.123Z\tREPORT RequestId: 1\tDuration: 1.00 ms\t";
        let line = Line::parse(raw).unwrap();
        assert_eq!(line.stream(), day_stream(T0));
        assert_eq!(line.text, "REPORT RequestId: 1\tDuration: 1.00 ms\t");
        assert_eq!(line.shown(), raw);
    }

    #[test]
    fn json_lines_read_time_or_request_time_and_log_stream() {
        let raw = format!(
            r#"{{"time":"2026-11-22T13:26:41.123Z","function":"Fn","message":"hi","logStream":"{S2}"}}"#
        );
        let line = Line::parse(&raw).unwrap();
        assert_eq!((line.time_ms, line.stream()), (T0 + 123, Cow::Borrowed(S2)));
        assert_eq!(
            (line.text, line.shown()),
            (raw.as_str(), Cow::Borrowed(raw.as_str()))
        );
        assert_eq!(line.message(), raw);
        let access = r#"{"requestId":"r","requestTime":"2026-11-22T13:26:41.000Z","status":200}"#;
        let line = Line::parse(access).unwrap();
        assert_eq!(
            (line.time_ms, line.stream()),
            (T0, Cow::Owned(day_stream(T0)))
        );
        assert_eq!(Line::parse("no time here"), None);
        assert_eq!(Line::parse("yesterday\tsomething"), None);
        assert_eq!(Line::parse(r#"{"message":"no time"}"#), None);
    }

    #[test]
    fn times_in_other_rfc3339_forms_are_read_too() {
        assert_eq!(parse_time("2026-11-22T13:26:41.123Z"), Some(T0 + 123));
        assert_eq!(parse_time("2026-11-22T14:26:41.123+01:00"), Some(T0 + 123));
        assert_eq!(parse_time("2026-11-22T13:26:41Z"), Some(T0));
        assert_eq!(parse_time("2026-13-22T13:26:41.123Z"), None);
        assert_eq!(parse_time("2026-11-22T24:26:41.123Z"), None);
    }

    #[test]
    fn event_tokens_round_trip_and_are_bound_to_their_scope() {
        let t = event_token(Direction::Backward, 4096, "Fn\nS1");
        assert!(t.starts_with("b/00000000000000004096/"));
        assert_eq!(
            parse_event_token(&t, "Fn\nS1"),
            Some((Direction::Backward, 4096))
        );
        assert_eq!(parse_event_token(&t, "Fn\nS2"), None);
        for bad in [
            "",
            "f/",
            "x/00000000000000004096/00000000",
            "f/4096/00000000",
            "f/99999999999999999999/00000000",
            "f/0000000000000000409a/00000000",
        ] {
            assert_eq!(parse_event_token(bad, "Fn\nS1"), None, "{bad}");
        }
    }

    #[test]
    fn list_tokens_round_trip_any_name() {
        let t = list_token(17, "2026/11/22/[$LATEST]é");
        assert_eq!(
            parse_list_token(&t),
            Some((17, "2026/11/22/[$LATEST]é".to_owned()))
        );
        for bad in ["", "n/", "n/1/abc", "n/x/00", "n/1/zz", "n/1/ff"] {
            assert_eq!(parse_list_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn sorted_pages_resume_after_the_token_in_either_order() {
        let items: Vec<u64> = vec![5, 1, 4, 2, 3];
        fn key(n: &u64) -> (u64, &str) {
            (*n, ["", "a", "b", "c", "d", "e"][*n as usize])
        }
        let (page, next) = page_sorted(items.clone(), key, false, None, 2).unwrap();
        assert_eq!(page, [1, 2]);
        let (page, next) = page_sorted(items.clone(), key, false, next.as_deref(), 2).unwrap();
        assert_eq!(page, [3, 4]);
        let (page, next) = page_sorted(items.clone(), key, false, next.as_deref(), 2).unwrap();
        assert_eq!((page, next), (vec![5], None));
        let (page, next) = page_sorted(items.clone(), key, true, None, 3).unwrap();
        assert_eq!(page, [5, 4, 3]);
        let (page, next) = page_sorted(items.clone(), key, true, next.as_deref(), 3).unwrap();
        assert_eq!((page, next), (vec![2, 1], None));
        assert!(matches!(
            page_sorted(items, key, false, Some("f/1"), 2),
            Err(LogReadError::InvalidToken)
        ));
    }

    #[test]
    fn streams_are_listed_with_first_and_last_times_by_name_or_last_event() {
        let mut lines = interleaved();
        // A line from before streams were recorded, and one still being written.
        lines.insert(
            0,
            format!(
                "{}\tlegacy line\n",
                nimbus_core::report::timestamp_millis(T0 - 5000)
            ),
        );
        lines.push(format!(
            "{}\t{S1}\tunfinished",
            nimbus_core::report::timestamp_millis(T0)
        ));
        let (_dir, store) = store(&lines);
        let list = |order, descending, prefix, limit, token| StreamList {
            prefix,
            order,
            descending,
            limit,
            token,
        };
        let (all, next) = store
            .list_streams("Fn", &list(StreamOrder::Name, false, None, 50, None))
            .unwrap();
        assert_eq!(next, None);
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [day_stream(T0).as_str(), S1, S2]);
        assert_eq!(
            (all[1].first_event_ms, all[1].last_event_ms),
            (T0, T0 + 8000)
        );
        assert_eq!(
            (all[2].first_event_ms, all[2].last_event_ms),
            (T0 + 1000, T0 + 9000)
        );
        let (by_time, _) = store
            .list_streams(
                "Fn",
                &list(StreamOrder::LastEventTime, true, None, 50, None),
            )
            .unwrap();
        let names: Vec<&str> = by_time.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [S2, S1, day_stream(T0).as_str()]);
        let (page, next) = store
            .list_streams(
                "Fn",
                &list(
                    StreamOrder::Name,
                    false,
                    Some("2026/11/22/[$LATEST]0123"),
                    50,
                    None,
                ),
            )
            .unwrap();
        assert_eq!((page.len(), page[0].name.as_str(), next), (1, S1, None));
        let (page, next) = store
            .list_streams("Fn", &list(StreamOrder::Name, false, None, 2, None))
            .unwrap();
        assert_eq!(page.len(), 2);
        let (page, next) = store
            .list_streams(
                "Fn",
                &list(StreamOrder::Name, false, None, 2, next.as_deref()),
            )
            .unwrap();
        assert_eq!((page[0].name.as_str(), next), (S2, None));
        assert!(matches!(
            store.list_streams("Missing", &list(StreamOrder::Name, false, None, 2, None)),
            Err(LogReadError::NoLog(_))
        ));
    }

    #[test]
    fn the_index_follows_appends_and_a_replaced_file() {
        let (dir, store) = store(&interleaved()[..2]);
        let names = |store: &LogStore| -> Vec<(String, u64)> {
            let q = StreamList {
                prefix: None,
                order: StreamOrder::Name,
                descending: false,
                limit: 50,
                token: None,
            };
            let (streams, _) = store.list_streams("Fn", &q).unwrap();
            streams
                .into_iter()
                .map(|s| (s.name, s.last_event_ms))
                .collect()
        };
        assert_eq!(
            names(&store),
            [(S1.to_owned(), T0), (S2.to_owned(), T0 + 1000)]
        );
        append(&dir, &text(T0 + 7000, Some(S1), "later"));
        assert_eq!(names(&store)[0], (S1.to_owned(), T0 + 7000));
        // Replaced by a shorter file: indexed from scratch.
        let path = dir.path().join("Fn.log");
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, text(T0, Some(S2), "new")).unwrap();
        assert_eq!(names(&store), [(S2.to_owned(), T0)]);
    }

    #[test]
    fn a_stream_reads_forward_in_pages_and_the_last_token_comes_back_unchanged() {
        let (dir, store) = store(&interleaved());
        let first = store.read_stream("Fn", S1, &read(2, None, true)).unwrap();
        assert_eq!(messages(&first.events), ["line 0", "line 2"]);
        assert!(first
            .events
            .iter()
            .all(|e| e.stream == S1 && e.message.ends_with('\n')));
        assert_eq!(first.events[1].time_ms, T0 + 2000);
        let second = store
            .read_stream("Fn", S1, &read(2, Some(&first.forward_token), true))
            .unwrap();
        assert_eq!(messages(&second.events), ["line 4", "line 6"]);
        let third = store
            .read_stream("Fn", S1, &read(2, Some(&second.forward_token), true))
            .unwrap();
        assert_eq!(messages(&third.events), ["line 8"]);
        let end = store
            .read_stream("Fn", S1, &read(2, Some(&third.forward_token), true))
            .unwrap();
        assert!(end.events.is_empty());
        assert_eq!(end.forward_token, third.forward_token);
        // What the stream writes next is found from the same token.
        append(&dir, &text(T0 + 20_000, Some(S1), "line 20"));
        let tail = store
            .read_stream("Fn", S1, &read(2, Some(&end.forward_token), true))
            .unwrap();
        assert_eq!(messages(&tail.events), ["line 20"]);
        // Backward from the second page: the first page again.
        let back = store
            .read_stream("Fn", S1, &read(2, Some(&second.backward_token), true))
            .unwrap();
        assert_eq!(messages(&back.events), ["line 0", "line 2"]);
    }

    #[test]
    fn without_a_token_a_stream_answers_its_latest_events_oldest_first() {
        let (_dir, store) = store(&interleaved());
        let latest = store.read_stream("Fn", S2, &read(2, None, false)).unwrap();
        assert_eq!(messages(&latest.events), ["line 7", "line 9"]);
        let older = store
            .read_stream("Fn", S2, &read(2, Some(&latest.backward_token), false))
            .unwrap();
        assert_eq!(messages(&older.events), ["line 3", "line 5"]);
        let oldest = store
            .read_stream("Fn", S2, &read(2, Some(&older.backward_token), false))
            .unwrap();
        assert_eq!(messages(&oldest.events), ["line 1"]);
        let none = store
            .read_stream("Fn", S2, &read(2, Some(&oldest.backward_token), false))
            .unwrap();
        assert!(none.events.is_empty());
        assert_eq!(none.backward_token, oldest.backward_token);
        let newer = store
            .read_stream("Fn", S2, &read(10, Some(&oldest.forward_token), false))
            .unwrap();
        assert_eq!(
            messages(&newer.events),
            ["line 3", "line 5", "line 7", "line 9"]
        );
    }

    #[test]
    fn a_time_range_includes_its_start_and_excludes_its_end() {
        let (_dir, store) = store(&interleaved());
        let q = StreamRead {
            range: TimeRange {
                start_ms: T0 + 2000,
                end_ms: T0 + 6000,
            },
            ..read(10, None, true)
        };
        let page = store.read_stream("Fn", S1, &q).unwrap();
        assert_eq!(messages(&page.events), ["line 2", "line 4"]);
    }

    #[test]
    fn tokens_of_another_stream_or_inside_a_line_or_past_the_end_are_refused() {
        let (_dir, store) = store(&interleaved());
        let page = store.read_stream("Fn", S1, &read(1, None, true)).unwrap();
        let other = store.read_stream("Fn", S2, &read(1, Some(&page.forward_token), true));
        assert!(matches!(other, Err(LogReadError::InvalidToken)));
        let scope = format!("Fn\n{S1}");
        for offset in [3, 1 << 40] {
            let token = event_token(Direction::Forward, offset, &scope);
            let r = store.read_stream("Fn", S1, &read(1, Some(&token), true));
            assert!(matches!(r, Err(LogReadError::InvalidToken)), "{offset}");
        }
        assert!(matches!(
            store.read_stream(
                "Fn",
                "2026/11/22/[$LATEST]00000000000000000000000000000001",
                &read(1, None, true)
            ),
            Err(LogReadError::NoStream(_))
        ));
    }

    #[test]
    fn pages_stop_at_one_megabyte_and_go_on_from_there() {
        let big = "x".repeat(400_000);
        let lines: Vec<String> = (0..4)
            .map(|i| text(T0 + i, Some(S1), &format!("{i}{big}")))
            .collect();
        let (_dir, store) = store(&lines);
        let first = store.read_stream("Fn", S1, &read(10, None, true)).unwrap();
        assert_eq!(first.events.len(), 2);
        let rest = store
            .read_stream("Fn", S1, &read(10, Some(&first.forward_token), true))
            .unwrap();
        assert_eq!(rest.events.len(), 2);
        assert!(rest.events[0].message.starts_with('2'));
        // Backward, the page holds the latest that fit.
        let latest = store.read_stream("Fn", S1, &read(10, None, false)).unwrap();
        assert_eq!(latest.events.len(), 2);
        assert!(latest.events[0].message.starts_with('2'));
    }

    #[test]
    fn over_long_lines_are_skipped_both_ways() {
        let lines = vec![
            text(T0, Some(S1), "before"),
            text(T0 + 1, Some(S1), &"y".repeat(MAX_FILE_LINE + 10)),
            text(T0 + 2, Some(S1), "between"),
            // Longer than what a backward read gathers before it gives a line up.
            text(T0 + 3, Some(S1), &"z".repeat(2 * MAX_FILE_LINE)),
            text(T0 + 4, Some(S1), "after"),
        ];
        let (_dir, store) = store(&lines);
        let forward = store.read_stream("Fn", S1, &read(10, None, true)).unwrap();
        assert_eq!(messages(&forward.events), ["before", "between", "after"]);
        let backward = store.read_stream("Fn", S1, &read(10, None, false)).unwrap();
        assert_eq!(messages(&backward.events), ["before", "between", "after"]);
    }

    #[test]
    fn filters_match_pattern_streams_and_range_and_page_in_both_directions() {
        let (_dir, store) = store(&interleaved());
        let pattern = FilterPattern::parse("line -\"line 3\"").unwrap();
        let filter = |streams, limit, token, head| FilterRead {
            streams,
            range: TimeRange::ALL,
            pattern: &pattern,
            limit,
            token,
            start_from_head: head,
        };
        let page = store
            .filter("Fn", &filter(StreamSelection::All, 4, None, true))
            .unwrap();
        assert_eq!(
            messages(&page.events),
            ["line 0", "line 1", "line 2", "line 4"]
        );
        assert_eq!(page.events[1].stream, S2);
        assert_eq!(page.events[0].id().len(), 56);
        let rest = store
            .filter(
                "Fn",
                &filter(StreamSelection::All, 10, page.next_token.as_deref(), true),
            )
            .unwrap();
        assert_eq!(
            messages(&rest.events),
            ["line 5", "line 6", "line 7", "line 8", "line 9"]
        );
        assert_eq!(rest.next_token, None);

        let names = [S2.to_owned()];
        let page = store
            .filter(
                "Fn",
                &filter(StreamSelection::Names(&names), 2, None, false),
            )
            .unwrap();
        assert_eq!(messages(&page.events), ["line 9", "line 7"]);
        let rest = store
            .filter(
                "Fn",
                &filter(
                    StreamSelection::Names(&names),
                    10,
                    page.next_token.as_deref(),
                    false,
                ),
            )
            .unwrap();
        assert_eq!(
            (messages(&rest.events), rest.next_token),
            (vec!["line 5", "line 1"], None)
        );

        let page = store
            .filter(
                "Fn",
                &filter(
                    StreamSelection::Prefix("2026/11/22/[$LATEST]0"),
                    10,
                    None,
                    true,
                ),
            )
            .unwrap();
        assert_eq!(
            messages(&page.events),
            ["line 0", "line 2", "line 4", "line 6", "line 8"]
        );
        let page = store
            .filter(
                "Fn",
                &filter(StreamSelection::Prefix("nope"), 10, None, true),
            )
            .unwrap();
        assert_eq!((page.events.len(), page.next_token), (0, None));

        let in_range = FilterRead {
            range: TimeRange {
                start_ms: T0 + 8000,
                end_ms: u64::MAX,
            },
            ..filter(StreamSelection::All, 10, None, true)
        };
        assert_eq!(
            messages(&store.filter("Fn", &in_range).unwrap().events),
            ["line 8", "line 9"]
        );
    }

    #[test]
    fn a_filter_that_runs_out_of_scan_budget_answers_a_partial_page_and_a_token() {
        let (_dir, mut store) = store(&interleaved());
        // About three lines' worth.
        store.scan_budget = 3 * interleaved()[0].len() as u64;
        let pattern = FilterPattern::parse("\"line 9\"").unwrap();
        let mut token: Option<String> = None;
        let mut pages = 0;
        let mut found = Vec::new();
        loop {
            let q = FilterRead {
                streams: StreamSelection::All,
                range: TimeRange::ALL,
                pattern: &pattern,
                limit: 10,
                token: token.as_deref(),
                start_from_head: true,
            };
            let page = store.filter("Fn", &q).unwrap();
            pages += 1;
            found.extend(page.events);
            token = page.next_token;
            if token.is_none() || pages > 10 {
                break;
            }
        }
        assert_eq!(messages(&found), ["line 9"]);
        assert_eq!(pages, 4);
        let bad = FilterRead {
            streams: StreamSelection::All,
            range: TimeRange::ALL,
            pattern: &pattern,
            limit: 10,
            token: Some("f/00000000000000000001/00000000"),
            start_from_head: true,
        };
        assert!(matches!(
            store.filter("Fn", &bad),
            Err(LogReadError::InvalidToken)
        ));
    }

    #[test]
    fn read_lines_leaves_an_unfinished_line_for_later_and_restarts_a_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Fn.log");
        std::fs::write(&path, "one\ntwo\nthr").unwrap();
        let (lines, end) = read_lines(&path, 0).unwrap();
        assert_eq!((lines, end), (vec!["one".to_owned(), "two".to_owned()], 8));
        std::fs::write(&path, "new\n").unwrap();
        assert_eq!(read_lines(&path, end).unwrap(), (vec!["new".to_owned()], 4));
        assert_eq!(
            log_sources(dir.path()).unwrap(),
            [("Fn".to_owned(), path.clone())]
        );
    }
}
