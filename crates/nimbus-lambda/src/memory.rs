//! `Max Memory Used` for REPORT lines: the peak resident set of the environment's process tree.

/// Sum of `VmHWM` (peak RSS) over `pid` and its descendants, in MB rounded up. 0 when /proc is
/// unreadable (the process is gone).
pub(crate) fn max_memory_used_mb(pid: i32) -> u32 {
    tree_sum_mb(pid, "VmHWM:")
}

/// Sum of `VmRSS` (resident now) over `pid` and its descendants, in MB rounded up.
pub(crate) fn current_memory_mb(pid: i32) -> u32 {
    tree_sum_mb(pid, "VmRSS:")
}

fn tree_sum_mb(pid: i32, field: &str) -> u32 {
    let mut total_kb = 0u64;
    let mut stack = vec![pid];
    // Bounded walk: a fork bomb must not stall the REPORT line.
    let mut visited = 0;
    while let Some(p) = stack.pop() {
        visited += 1;
        if visited > 256 {
            break;
        }
        total_kb += status_kb(p, field).unwrap_or(0);
        // Children are listed per thread: a child forked from any thread counts.
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if let Ok(children) = std::fs::read_to_string(task.path().join("children")) {
                stack.extend(
                    children
                        .split_whitespace()
                        .filter_map(|c| c.parse::<i32>().ok()),
                );
            }
        }
    }
    total_kb.div_ceil(1024) as u32
}

fn status_kb(pid: i32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_kb(&status, field)
}

fn parse_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_peak_rss_from_proc_status() {
        let status = "Name:\tx\nVmPeak:\t  1000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1500 kB\n";
        assert_eq!(super::parse_kb(status, "VmHWM:"), Some(2048));
        assert_eq!(super::parse_kb(status, "VmRSS:"), Some(1500));
        assert_eq!(super::parse_kb("Name:\tx\n", "VmHWM:"), None);
    }

    #[test]
    fn measures_this_process() {
        let pid = std::process::id() as i32;
        // Current first: other tests allocate meanwhile, and the peak only grows.
        let current = super::current_memory_mb(pid);
        assert!(current > 0);
        assert!(super::max_memory_used_mb(pid) >= current);
    }
}
