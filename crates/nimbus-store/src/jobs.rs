//! Durable scheduled work: asynchronous invocations waiting for their function, and rule
//! deliveries waiting for a retry.
//!
//! A job lives in a *lane* (one per function or per rule target) and is due at `due_ms`. A
//! worker *claims* due jobs: a claimed job is leased until `due_ms` moves to the lease's end, so
//! a worker that dies leaves its jobs to come back, as an SQS message does after its visibility
//! timeout. At start-up nothing is running, so [`Store::release_leases`] hands every claimed
//! job back at once. A job is finished (deleted) or rescheduled by the worker; whatever it
//! produces (a DLQ message, a destination record) is sent before the job is finished, so a
//! crash in between delivers twice rather than never (at least once, as on AWS).

use rusqlite::{params, Connection, OptionalExtension};

use crate::{Store, StoreError};

/// A job to add.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewJob {
    pub lane: String,
    /// The request id (async invocations) or event id (rule deliveries).
    pub id: String,
    pub payload: String,
    /// What the worker needs besides the payload (trace header, target), as JSON.
    pub meta: String,
    /// When the job may first run; `None` for at once.
    pub due_ms: Option<u64>,
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub seq: i64,
    pub lane: String,
    pub id: String,
    pub payload: String,
    pub meta: String,
    pub created_ms: u64,
    /// Runs that reached the target (function errors count; throttles do not).
    pub attempts: u32,
    /// Consecutive throttles, for the backoff.
    pub throttles: u32,
}

impl Store {
    /// Adds `jobs`, all or none: all of them are durable when this returns.
    pub async fn add_jobs(&self, jobs: Vec<NewJob>, now_ms: u64) -> Result<(), StoreError> {
        self.write(move |tx, _| add_jobs_in(tx, &jobs, now_ms))
            .await
    }

    /// [`Store::add_jobs`] in a commit of its own, for callers that cannot wait on a group
    /// commit.
    pub fn add_jobs_now(&self, jobs: &[NewJob], now_ms: u64) -> Result<(), StoreError> {
        self.write_now(|tx, _| add_jobs_in(tx, jobs, now_ms))
    }

    /// Claims up to `max` jobs of `lane` that are due at `now_ms`, oldest due first, leasing
    /// them until `lease_until_ms`.
    pub fn claim_jobs(
        &self,
        lane: &str,
        max: u32,
        now_ms: u64,
        lease_until_ms: u64,
    ) -> Result<Vec<Job>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let jobs: Vec<Job> = tx
            .prepare_cached(
                "SELECT seq, lane, id, payload, meta, created_ms, attempts, throttles FROM jobs
                 WHERE lane = ?1 AND due_ms <= ?2 ORDER BY due_ms, seq LIMIT ?3",
            )?
            .query_map(params![lane, now_ms as i64, max as i64], |r| {
                Ok(Job {
                    seq: r.get(0)?,
                    lane: r.get(1)?,
                    id: r.get(2)?,
                    payload: r.get(3)?,
                    meta: r.get(4)?,
                    created_ms: r.get::<_, i64>(5)? as u64,
                    attempts: r.get::<_, i64>(6)? as u32,
                    throttles: r.get::<_, i64>(7)? as u32,
                })
            })?
            .collect::<Result<_, _>>()?;
        {
            let mut lease =
                tx.prepare_cached("UPDATE jobs SET due_ms = ?2, leased = 1 WHERE seq = ?1")?;
            for j in &jobs {
                lease.execute(params![j.seq, lease_until_ms as i64])?;
            }
        }
        tx.commit()?;
        Ok(jobs)
    }

    /// Puts a claimed job back to run at `due_ms` with its new counts.
    pub async fn reschedule_job(
        &self,
        seq: i64,
        due_ms: u64,
        attempts: u32,
        throttles: u32,
    ) -> Result<(), StoreError> {
        self.write(move |tx, _| {
            tx.prepare_cached(
                "UPDATE jobs SET due_ms = ?2, attempts = ?3, throttles = ?4, leased = 0
                 WHERE seq = ?1",
            )?
            .execute(params![
                seq,
                due_ms as i64,
                attempts as i64,
                throttles as i64
            ])?;
            Ok(())
        })
        .await
    }

    /// Removes a job that has succeeded or been given up on.
    pub async fn finish_job(&self, seq: i64) -> Result<(), StoreError> {
        self.write(move |tx, _| {
            tx.prepare_cached("DELETE FROM jobs WHERE seq = ?1")?
                .execute([seq])?;
            Ok(())
        })
        .await
    }

    /// Makes every leased job due at `now_ms`: for start-up, when no worker is running.
    pub fn release_leases(&self, now_ms: u64) -> Result<usize, StoreError> {
        Ok(self
            .lock()
            .prepare_cached("UPDATE jobs SET due_ms = ?1, leased = 0 WHERE leased = 1")?
            .execute([now_ms as i64])?)
    }

    /// When the next job of `lane` is due (leased jobs at their lease's end).
    pub fn next_job_due_ms(&self, lane: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .lock()
            .prepare_cached("SELECT MIN(due_ms) FROM jobs WHERE lane = ?1")?
            .query_row([lane], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten()
            .map(|v| v as u64))
    }

    /// Jobs in `lane`: waiting, and leased (running).
    pub fn job_counts(&self, lane: &str) -> Result<(u64, u64), StoreError> {
        Ok(self
            .lock()
            .prepare_cached(
                "SELECT COALESCE(SUM(leased = 0), 0), COALESCE(SUM(leased = 1), 0)
                 FROM jobs WHERE lane = ?1",
            )?
            .query_row([lane], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })?)
    }

    /// Every lane starting with `prefix` that has jobs: `(lane, jobs, oldest created_ms)`.
    pub fn job_lane_stats(&self, prefix: &str) -> Result<Vec<(String, u64, u64)>, StoreError> {
        Ok(self
            .lock()
            .prepare_cached(
                "SELECT lane, COUNT(*), MIN(created_ms) FROM jobs
                 WHERE substr(lane, 1, length(?1)) = ?1 GROUP BY lane ORDER BY lane",
            )?
            .query_map([prefix], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            })?
            .collect::<Result<_, _>>()?)
    }

    /// The lanes that have jobs, for start-up.
    pub fn job_lanes(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .lock()
            .prepare_cached("SELECT DISTINCT lane FROM jobs ORDER BY lane")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }
}

fn add_jobs_in(tx: &Connection, jobs: &[NewJob], now_ms: u64) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO jobs (lane, id, payload, meta, created_ms, due_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for j in jobs {
        insert.execute(params![
            j.lane,
            j.id,
            j.payload,
            j.meta,
            now_ms as i64,
            j.due_ms.unwrap_or(now_ms) as i64
        ])?;
    }
    Ok(())
}
