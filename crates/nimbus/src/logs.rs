//! `nimbus logs`: what the state directory's log files hold, for one function (or API) or all,
//! interleaved by time, optionally only since a moment, matching a CloudWatch filter pattern,
//! and followed as it grows. Works whether or not nimbus is running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use nimbus_lambda::logfile::{self, Line};
use nimbus_telemetry::filter::FilterPattern;

use crate::cli::LogsArgs;

/// How often `--follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

pub fn logs(args: &LogsArgs) -> anyhow::Result<std::process::ExitCode> {
    let dir = match &args.state_dir {
        Some(d) => logfile::log_dir(d),
        None => logfile::log_dir(&crate::up::default_state_dir(&args.template)),
    };
    let filter = FilterPattern::parse(args.filter.as_deref().unwrap_or(""))?;
    let since_ms = args
        .since
        .map(|d| nimbus_lambda::epoch_ms().saturating_sub(d.as_millis() as u64));
    let files = log_files(&dir, args.function.as_deref())?;
    let prefix = files.len() > 1 || args.function.is_none();
    let mut offsets: BTreeMap<String, u64> = BTreeMap::new();
    let mut lines = Vec::new();
    for (name, path) in &files {
        let (read, end) = read_from(path, 0)?;
        offsets.insert(name.clone(), end);
        lines.extend(read.into_iter().map(|l| (name.clone(), l)));
    }
    print_lines(lines, since_ms, &filter, prefix);
    if !args.follow {
        return Ok(std::process::ExitCode::SUCCESS);
    }
    loop {
        std::thread::sleep(FOLLOW_POLL);
        // New functions' files appear while following all.
        let files = log_files(&dir, args.function.as_deref()).unwrap_or_default();
        let mut lines = Vec::new();
        for (name, path) in &files {
            let from = offsets.get(name).copied().unwrap_or(0);
            if let Ok((read, end)) = read_from(path, from) {
                offsets.insert(name.clone(), end);
                lines.extend(read.into_iter().map(|l| (name.clone(), l)));
            }
        }
        print_lines(lines, None, &filter, prefix);
    }
}

/// The log files to read: `<function>.log`, or every `*.log`, by name (a log group's by the
/// group's name, `/aws/events/orders`).
fn log_files(dir: &Path, function: Option<&str>) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let all: Vec<(String, PathBuf)> = logfile::log_sources(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .into_iter()
        .map(|(name, path)| (logfile::source_group(&name).unwrap_or(name), path))
        .collect();
    match function {
        None => Ok(all),
        Some(f) => match all.iter().find(|(n, _)| n == f) {
            Some(found) => Ok(vec![found.clone()]),
            None => {
                let known: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
                bail!(
                    "no log for {f} in {} (logs there: {})",
                    dir.display(),
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                )
            }
        },
    }
}

/// The complete lines from byte `from`, and the offset after the last complete line (a line
/// still being written is read on the next poll).
fn read_from(path: &Path, from: u64) -> anyhow::Result<(Vec<String>, u64)> {
    logfile::read_lines(path, from).with_context(|| format!("cannot read {}", path.display()))
}

fn print_lines(
    lines: Vec<(String, String)>,
    since_ms: Option<u64>,
    filter: &FilterPattern,
    prefix: bool,
) {
    let mut timed: Vec<(u64, usize, String, String)> = Vec::with_capacity(lines.len());
    for (i, (name, line)) in lines.into_iter().enumerate() {
        // Shown as written, without the stream the file adds for the logs API.
        let (ms, text, shown) = match Line::parse(&line) {
            Some(l) => (l.time_ms, l.text, l.shown().into_owned()),
            None => (0, line.as_str(), line.clone()),
        };
        if since_ms.is_some_and(|s| ms < s) || !filter.matches(text) {
            continue;
        }
        timed.push((ms, i, name, shown));
    }
    // Interleaved by time; lines of one file keep their order.
    timed.sort_by_key(|(ms, i, _, _)| (*ms, *i));
    let mut out = std::io::stdout().lock();
    for (_, _, name, line) in timed {
        use std::io::Write;
        let written = if prefix {
            writeln!(out, "{name} | {line}")
        } else {
            writeln!(out, "{line}")
        };
        if written.is_err() {
            // The reader went away (`| head`): stop quietly.
            std::process::exit(0);
        }
    }
}

/// `30s`, `10m`, `2h`, `1d` (or a bare number of seconds).
pub fn parse_since(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 10m, 2h or 1d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_seconds_minutes_hours_and_days() {
        assert_eq!(parse_since("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_since("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_since("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_since("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_since("45"), Ok(Duration::from_secs(45)));
        assert!(parse_since("10 minutes").is_err());
        assert!(parse_since("m").is_err());
    }
}
