//! The cache of observations: in the function's memory by default, or Redis (the ElastiCache
//! engine) shared by every environment when `REDIS_URL` is set. Entries stay past their
//! freshness (`ttl`) for `stale_ttl`, so that a failing provider can be covered by a stale
//! answer marked as such.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::model::Observation;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub observation: Observation,
    /// Unix milliseconds.
    pub fetched_at_ms: u64,
}

impl Entry {
    pub fn age(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.fetched_at_ms))
    }

    pub fn is_fresh(&self, now_ms: u64, ttl: Duration) -> bool {
        self.age(now_ms) < ttl
    }
}

#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct CacheError(#[from] redis::RedisError);

/// Where entries live.
#[derive(Clone)]
pub enum Store {
    Memory(moka::sync::Cache<String, Arc<Entry>>),
    Redis(ConnectionManager),
}

/// Bounds the in-process cache: a function's memory is small and cities are unbounded input.
const MEMORY_ENTRIES: u64 = 10_000;
const REDIS_PREFIX: &str = "weather:v1:";

impl Store {
    pub fn memory(stale_ttl: Duration) -> Store {
        Store::Memory(
            moka::sync::Cache::builder()
                .max_capacity(MEMORY_ENTRIES)
                .time_to_live(stale_ttl)
                .build(),
        )
    }

    /// Connects (with a bounded wait) so a wrong `REDIS_URL` fails the function's init with
    /// a clear message instead of every request.
    pub async fn redis(url: &str, timeout: Duration) -> Result<Store, CacheError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Store::Redis(conn))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Entry>, CacheError> {
        match self {
            Store::Memory(c) => Ok(c.get(key).map(|e| (*e).clone())),
            Store::Redis(conn) => {
                let mut conn = conn.clone();
                let raw: Option<Vec<u8>> = conn.get(format!("{REDIS_PREFIX}{key}")).await?;
                // An entry another version wrote, or garbage, is a miss, not an error.
                Ok(raw.and_then(|b| serde_json::from_slice(&b).ok()))
            }
        }
    }

    pub async fn put(
        &self,
        key: &str,
        entry: Entry,
        stale_ttl: Duration,
    ) -> Result<(), CacheError> {
        match self {
            Store::Memory(c) => {
                c.insert(key.to_owned(), Arc::new(entry));
                Ok(())
            }
            Store::Redis(conn) => {
                let mut conn = conn.clone();
                let body = serde_json::to_vec(&entry).expect("entries serialize");
                let _: () = conn
                    .set_ex(
                        format!("{REDIS_PREFIX}{key}"),
                        body,
                        stale_ttl.as_secs().max(1),
                    )
                    .await?;
                Ok(())
            }
        }
    }

    /// Cross-environment single flight: takes the fetch lock for `key` unless another
    /// environment holds it. The memory store has no other environments to coordinate with.
    pub async fn try_lock(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        match self {
            Store::Memory(_) => Ok(true),
            Store::Redis(conn) => {
                let mut conn = conn.clone();
                let set: Option<String> = redis::cmd("SET")
                    .arg(format!("{REDIS_PREFIX}lock:{key}"))
                    .arg(token)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl.as_millis().max(1) as u64)
                    .query_async(&mut conn)
                    .await?;
                Ok(set.is_some())
            }
        }
    }

    /// Releases the lock if this holder still has it (it may have expired and moved on).
    pub async fn unlock(&self, key: &str, token: &str) -> Result<(), CacheError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(conn) => {
                let mut conn = conn.clone();
                let _: i64 = redis::cmd("EVAL")
                    .arg("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end")
                    .arg(1)
                    .arg(format!("{REDIS_PREFIX}lock:{key}"))
                    .arg(token)
                    .query_async(&mut conn)
                    .await?;
                Ok(())
            }
        }
    }
}
