//! Group commit: concurrent writes share one SQLite transaction.
//!
//! A commit costs the same few pages written to the WAL whether it holds one write or a hundred,
//! so under concurrency the commit, not the write, is what limits throughput. Writes queue, and
//! a batch takes every queued write, runs each inside a savepoint of one transaction (a write
//! that fails is rolled back alone), commits, and only then answers each writer, with its own
//! result or the commit's error. A write is therefore acknowledged only once it is durable,
//! exactly as when each had its own transaction.
//!
//! Who runs a batch: a write that finds no batch running runs its own at once, on its own task
//! (a lone write is never delayed waiting for company, nor sent to another thread). Writes that
//! arrive meanwhile wait, and the first writer hands them to the store's writer thread, which
//! commits batch after batch until the queue is empty. The request-serving threads thus never
//! run other requests' commits, keep taking requests, and the batches grow with the load. A
//! waiting writer only waits for its answer: a cancelled request leaves its write to be
//! committed (it was accepted) and strands nothing.
//!
//! Written here rather than taken from a crate: group commit is a property of how this store
//! uses its one connection (savepoints per write, answers after the commit), not a generic
//! primitive any maintained crate offers over rusqlite.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rusqlite::{Connection, Transaction};
use tokio::sync::oneshot;

use crate::StoreError;

/// A queued write: runs inside the batch's transaction, says whether it succeeded (a failed one
/// is rolled back to its savepoint) and returns what answers its writer once the commit is done.
/// Given the error instead of a transaction when none could be begun.
type Work = Box<dyn FnOnce(Result<&Transaction<'_>, &rusqlite::Error>) -> (bool, Answer) + Send>;
/// Answers a writer, given the commit's error if the commit failed.
type Answer = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

#[derive(Default)]
struct Queue {
    /// A batch is running, or the writer thread has been asked to run them.
    busy: bool,
    /// The writer thread is asked to commit until the queue is empty.
    handed_over: bool,
    /// The store is gone: the writer thread ends.
    closed: bool,
    waiting: VecDeque<Work>,
}

struct Inner {
    conn: Mutex<Connection>,
    queue: Mutex<Queue>,
    /// Wakes the writer thread.
    wake: Condvar,
    commits: AtomicU64,
    writes: AtomicU64,
}

/// The store's connection and the queue of writes waiting for a commit.
pub(crate) struct Group {
    inner: Arc<Inner>,
    /// Joined on drop, so the connection is closed (and the WAL checkpointed) when the store is.
    writer: Option<std::thread::JoinHandle<()>>,
}

/// Commits and the writes they carried since the store was opened: their ratio is how much
/// group commit saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitStats {
    pub commits: u64,
    pub writes: u64,
}

impl Group {
    pub(crate) fn new(conn: Connection) -> Group {
        let inner = Arc::new(Inner {
            conn: Mutex::new({
                // The hot writes, their savepoints, the reads of counts and jobs together are
                // more statements than rusqlite's default cache of 16: past it, a mixed load
                // would prepare statements again and again.
                conn.set_prepared_statement_cache_capacity(64);
                conn
            }),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        });
        let writer = Arc::clone(&inner);
        let writer = std::thread::Builder::new()
            .name("nimbus-store-writer".into())
            .spawn(move || writer.writer_thread())
            .expect("a thread for the store's writer");
        Group {
            inner,
            writer: Some(writer),
        }
    }

    /// The connection, for reads and for the rare writes that need it alone (schema changes,
    /// queue administration).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.inner.lock()
    }

    pub(crate) fn stats(&self) -> CommitStats {
        CommitStats {
            commits: self.inner.commits.load(Ordering::Relaxed),
            writes: self.inner.writes.load(Ordering::Relaxed),
        }
    }

    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.inner.queue().waiting.len()
    }

    #[cfg(test)]
    fn busy(&self) -> bool {
        self.inner.queue().busy
    }

    /// Runs `write` in a transaction shared with whatever other writes are waiting, and answers
    /// once that transaction has committed.
    pub(crate) async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_then(write, |_| {}).await
    }

    /// [`Group::write`], and `committed` with the write's result once its commit is durable,
    /// before the writer is answered: state kept beside the database (the store's queue
    /// counts) follows exactly the writes that were kept, even when the writer stopped waiting.
    pub(crate) async fn write_then<T, F, C>(&self, write: F, committed: C) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
        C: FnOnce(&T) + Send + 'static,
    {
        let (answer_tx, mut answer_rx) = oneshot::channel::<Result<T, StoreError>>();
        let work: Work = Box::new(move |tx| {
            let result = match tx {
                Ok(tx) => write(tx),
                Err(e) => Err(StoreError::Commit(e.to_string())),
            };
            let ok = result.is_ok();
            let answer: Answer = Box::new(move |commit_error| {
                let result = match (result, commit_error) {
                    (Ok(_), Some(e)) => Err(StoreError::Commit(e.to_string())),
                    (result, _) => result,
                };
                if let Ok(kept) = &result {
                    committed(kept);
                }
                let _ = answer_tx.send(result);
            });
            (ok, answer)
        });
        let inner = &self.inner;
        let lead = {
            let mut q = inner.queue();
            if q.busy {
                q.waiting.push_back(work);
                None
            } else {
                q.busy = true;
                Some(work)
            }
        };
        match lead {
            Some(work) => {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    inner.run(vec![work])
                }));
                let mut q = inner.queue();
                if q.waiting.is_empty() {
                    q.busy = false;
                } else {
                    q.handed_over = true;
                    inner.wake.notify_one();
                }
                drop(q);
                if let Err(panic) = ran {
                    std::panic::resume_unwind(panic);
                }
                answer_rx
                    .try_recv()
                    .unwrap_or_else(|_| Err(StoreError::Commit("the write was not run".into())))
            }
            None => answer_rx.await.unwrap_or_else(|_| {
                Err(StoreError::Commit(
                    "the write was lost with its batch".into(),
                ))
            }),
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.inner.queue().closed = true;
        self.inner.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the connection leaves no half-done transaction behind (rusqlite
        // rolls back on drop), so the connection is still good.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits what it is handed, batch after batch, until the queue is empty.
    fn writer_thread(&self) {
        loop {
            let batch: Vec<Work> = {
                let mut q = self.queue();
                loop {
                    if q.closed {
                        return;
                    }
                    if q.handed_over {
                        if q.waiting.is_empty() {
                            q.handed_over = false;
                            q.busy = false;
                        } else {
                            // Everything waiting: as many writes as requests in flight, which
                            // the server's connection limit bounds.
                            break q.waiting.drain(..).collect();
                        }
                    }
                    q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            // A write that panics loses its batch (its writers hear so), never the queue.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run(batch)));
        }
    }

    fn run(&self, batch: Vec<Work>) {
        let n = batch.len();
        let mut conn = self.lock();
        let mut answers = Vec::with_capacity(n);
        let commit = match conn.transaction() {
            Err(e) => {
                for w in batch {
                    answers.push(w(Err(&e)).1);
                }
                Ok(())
            }
            Ok(tx) => {
                // A write that failed outside a savepoint may have left part of itself behind:
                // then nothing of this batch is kept, and every writer hears why.
                let mut poisoned = false;
                // Prepared once per connection: under load the writer thread runs these
                // around every write, and parsing them each time was a share of its work.
                let step = |sql: &str| tx.prepare_cached(sql).and_then(|mut s| s.execute([]));
                for w in batch {
                    // One write alone needs no savepoint: if it fails, the transaction is
                    // rolled back whole.
                    let guarded = n > 1 && step("SAVEPOINT w").is_ok();
                    let (ok, answer) = w(Ok(&tx));
                    if guarded && !ok {
                        poisoned |= step("ROLLBACK TO w")
                            .and_then(|_| step("RELEASE w"))
                            .is_err();
                    } else if guarded {
                        poisoned |= step("RELEASE w").is_err();
                    } else {
                        poisoned |= !ok;
                    }
                    answers.push(answer);
                }
                if poisoned {
                    drop(tx);
                    Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                        Some("a write in the same commit failed".into()),
                    ))
                } else {
                    tx.commit()
                }
            }
        };
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(n as u64, Ordering::Relaxed);
        // Answered before the connection is let go: what a kept write changes beside the
        // database (`write_then`) is changed before anyone else can write, so a purge that
        // follows this commit is never undone by a count this commit moves late.
        for answer in answers {
            answer(commit.as_ref().err());
        }
        drop(conn);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn group() -> Arc<Group> {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        Arc::new(Group::new(conn))
    }

    fn rows(g: &Group) -> Vec<i64> {
        let conn = g.lock();
        let mut stmt = conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// A write of `v`; negative values insert and then fail, as a write that breaks a rule
    /// halfway does.
    fn insert(g: &Arc<Group>, v: i64) -> tokio::task::JoinHandle<Result<i64, StoreError>> {
        let g = Arc::clone(g);
        tokio::spawn(async move {
            g.write(move |tx| {
                tx.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
                match v < 0 {
                    true => Err(StoreError::Commit(format!("{v} refused"))),
                    false => Ok(v),
                }
            })
            .await
        })
    }

    /// Until a write is running its own batch (given a moment to reach the connection the test
    /// holds).
    async fn until_led(g: &Group) {
        for _ in 0..5000 {
            if g.busy() {
                tokio::time::sleep(Duration::from_millis(20)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("nobody leads");
    }

    async fn until_waiting(g: &Group, n: usize) {
        for _ in 0..5000 {
            if g.waiting() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("{} writers waiting, not {n}", g.waiting());
    }

    #[tokio::test]
    async fn a_lone_write_commits_at_once_on_its_own() {
        let g = group();
        assert_eq!(insert(&g, 1).await.unwrap().unwrap(), 1);
        assert_eq!(
            g.stats(),
            CommitStats {
                commits: 1,
                writes: 1
            }
        );
        assert_eq!(rows(&g), [1]);
    }

    // The test holds the connection across its waits on purpose: that is what makes writers
    // queue behind a running commit.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writers_waiting_on_a_commit_share_the_next_one_and_a_failed_write_is_undone_alone() {
        let g = group();
        let held = g.lock();
        // The first writer leads and waits for the connection; the others queue behind it.
        let first = insert(&g, 0);
        until_led(&g).await;
        let mut rest: Vec<_> = (1..=40).map(|v| insert(&g, v)).collect();
        rest.push(insert(&g, -1));
        until_waiting(&g, 41).await;
        drop(held);
        assert_eq!(first.await.unwrap().unwrap(), 0);
        let mut answers = Vec::new();
        for w in rest {
            answers.push(w.await.unwrap());
        }
        assert!(matches!(answers.pop(), Some(Err(StoreError::Commit(m))) if m == "-1 refused"));
        assert!(answers.iter().all(Result::is_ok));
        assert_eq!(rows(&g), (0..=40).collect::<Vec<_>>());
        assert_eq!(
            g.stats(),
            CommitStats {
                commits: 2,
                writes: 42
            },
            "the first write's own commit, then one for everyone who queued behind it"
        );
    }

    // The test holds the connection across its waits on purpose: that is what makes writers
    // queue behind a running commit.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_writer_that_goes_away_while_queued_stalls_nobody_and_its_write_is_kept() {
        let g = group();
        let held = g.lock();
        let first = insert(&g, 1);
        until_led(&g).await;
        let gone = insert(&g, 2);
        let last = insert(&g, 3);
        until_waiting(&g, 2).await;
        // A waiting writer is cancelled (its client hung up).
        gone.abort();
        let _ = gone.await;
        drop(held);
        first.await.unwrap().unwrap();
        assert_eq!(last.await.unwrap().unwrap(), 3);
        assert_eq!(
            rows(&g),
            [1, 2, 3],
            "an accepted write is kept even if its caller left"
        );
        assert_eq!(g.waiting(), 0);
    }
}
