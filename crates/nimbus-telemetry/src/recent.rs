//! The newest log lines, in memory, for the dashboard's live tail: a bounded ring with
//! sequence numbers, so a reader asks for what came after the last line it saw.
//!
//! The log files stay the record; this only saves the dashboard from reading them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Lines kept; older ones drop out (they are still in the log files).
pub const MAX_RECENT_LINES: usize = 2000;
/// A longer line is cut (on a character boundary) in the ring, not in the files.
pub const MAX_RECENT_LINE_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub seq: u64,
    pub time_ms: u64,
    /// The function or API that wrote it.
    pub source: Arc<str>,
    /// `function`, `platform` or `access`.
    pub kind: &'static str,
    pub request_id: Option<Arc<str>>,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct RecentLogs {
    ring: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    lines: VecDeque<LogLine>,
    last_seq: u64,
}

impl RecentLogs {
    /// Takes the line's parts by value (shared names, the message moved in), so that a push
    /// on the log writer's path copies nothing.
    pub fn push(
        &self,
        time_ms: u64,
        source: Arc<str>,
        kind: &'static str,
        request_id: Option<Arc<str>>,
        mut message: String,
    ) {
        if message.len() > MAX_RECENT_LINE_BYTES {
            let mut end = MAX_RECENT_LINE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let mut r = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        r.last_seq += 1;
        let line = LogLine {
            seq: r.last_seq,
            time_ms,
            source,
            kind,
            request_id,
            message,
        };
        let old = if r.lines.len() >= MAX_RECENT_LINES {
            r.lines.pop_front()
        } else {
            None
        };
        r.lines.push_back(line);
        drop(r);
        drop(old);
    }

    /// Lines after `after` (all kept ones when 0), of `source` when given, oldest first; at
    /// most the newest `limit` of them. Also the last sequence number given out, so a reader
    /// with nothing new still moves on.
    pub fn after(&self, after: u64, source: Option<&str>, limit: usize) -> (Vec<LogLine>, u64) {
        let r = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<LogLine> = r
            .lines
            .iter()
            .rev()
            .take_while(|l| l.seq > after)
            .filter(|l| source.is_none_or(|s| *l.source == *s))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        (out, r.last_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_get_what_came_after_their_last_line_oldest_first() {
        let r = RecentLogs::default();
        for i in 0..5 {
            r.push(i, "Fn".into(), "function", None, format!("line {i}"));
        }
        let (lines, last) = r.after(2, None, 100);
        assert_eq!(last, 5);
        assert_eq!(
            lines.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
            ["line 2", "line 3", "line 4"]
        );
        let (lines, _) = r.after(0, None, 2);
        assert_eq!(
            lines.iter().map(|l| l.seq).collect::<Vec<_>>(),
            [4, 5],
            "the newest `limit` lines"
        );
    }

    #[test]
    fn a_source_filter_keeps_one_functions_lines() {
        let r = RecentLogs::default();
        r.push(1, "A".into(), "function", None, "a".into());
        r.push(2, "B".into(), "platform", Some("req".into()), "b".into());
        let (lines, last) = r.after(0, Some("B"), 10);
        assert_eq!(last, 2);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].request_id.as_deref(), Some("req"));
    }

    #[test]
    fn the_ring_is_bounded_in_lines_and_bytes() {
        let r = RecentLogs::default();
        for i in 0..MAX_RECENT_LINES + 10 {
            r.push(i as u64, "A".into(), "function", None, "x".into());
        }
        let (lines, last) = r.after(0, None, usize::MAX);
        assert_eq!(lines.len(), MAX_RECENT_LINES);
        assert_eq!(last, (MAX_RECENT_LINES + 10) as u64);
        let long = "é".repeat(MAX_RECENT_LINE_BYTES);
        r.push(0, "A".into(), "function", None, long);
        let (lines, _) = r.after(last, None, 1);
        assert!(lines[0].message.len() <= MAX_RECENT_LINE_BYTES);
        assert!(lines[0].message.chars().all(|c| c == 'é'));
    }
}
