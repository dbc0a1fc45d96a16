//! What the keep-alive load clients (`aws_json_load`, `s3_load`) share: each task's tally of
//! latencies and errors, and the one-line report `requests/s p50_ms p99_ms errors`.

use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Tally {
    pub latencies: Vec<Duration>,
    pub errors: u64,
}

impl Tally {
    /// Counts one request that began at `started`; the first error is printed to stderr.
    pub fn record(&mut self, started: Instant, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.latencies.push(started.elapsed()),
            Err(e) => {
                if self.errors == 0 {
                    eprintln!("{e}");
                }
                self.errors += 1;
            }
        }
    }
}

/// Joins the tasks' tallies and prints the report, the latencies with `decimals` places.
pub async fn report(tasks: Vec<tokio::task::JoinHandle<Tally>>, started: Instant, decimals: usize) {
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await.expect("a load task");
        all.latencies.extend(t.latencies);
        all.errors += t.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut l = all.latencies;
    l.sort();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    println!(
        "{:.0} {:.decimals$} {:.decimals$} {}",
        l.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99),
        all.errors
    );
}
