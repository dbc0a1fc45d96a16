//! In-process single flight: concurrent callers asking for the same key share one execution of
//! the work. (Across environments, the cache's lock does the same job.)
//!
//! A dozen lines over `tokio::sync::OnceCell`, whose `get_or_init` already guarantees one
//! initialiser at a time and hands the value to every waiter; if the running caller is
//! cancelled, a waiter takes over.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

pub struct Group<K, V> {
    flights: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Default for Group<K, V> {
    fn default() -> Self {
        Group {
            flights: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Group<K, V> {
    /// Runs `work` unless a flight for `key` is under way, in which case its result is shared.
    /// The boolean says whether this caller's `work` ran.
    pub async fn run<F, Fut>(&self, key: K, work: F) -> (V, bool)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = V>,
    {
        let cell = {
            let mut flights = self.flights.lock().expect("single-flight map poisoned");
            flights.entry(key.clone()).or_default().clone()
        };
        let mut ran = false;
        let value = cell
            .get_or_init(|| {
                ran = true;
                work()
            })
            .await
            .clone();
        let mut flights = self.flights.lock().expect("single-flight map poisoned");
        if flights.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            flights.remove(&key);
        }
        (value, ran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(flavor = "current_thread")]
    async fn fifty_concurrent_callers_share_one_execution() {
        let group: Arc<Group<String, u32>> = Arc::default();
        let calls = Arc::new(AtomicU32::new(0));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (group, calls, mut rx) = (group.clone(), calls.clone(), rx.clone());
            tasks.push(tokio::spawn(async move {
                group
                    .run("melbourne".to_owned(), || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let _ = rx.wait_for(|go| *go).await;
                        7
                    })
                    .await
            }));
        }
        // Single-threaded runtime: a few yields let every task reach the flight before it ends.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        tx.send(true).unwrap();
        let mut leaders = 0;
        for t in tasks {
            let (v, ran) = t.await.unwrap();
            assert_eq!(v, 7);
            leaders += ran as u32;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(leaders, 1);
        // The flight is over: the next caller runs again.
        let (_, ran) = group.run("melbourne".to_owned(), || async { 8 }).await;
        assert!(ran);
    }
}
