//! Pure policy shared by nimbus's I/O layers. Nothing here reads a clock, opens a socket or
//! spawns a process: callers pass time and randomness in, so every rule is tested directly.

pub mod alarm;
pub mod arn;
pub mod chaos;
pub mod concurrency;
pub mod cost;
pub mod json;
pub mod local_url;
pub mod pattern;
pub mod poller;
pub mod quota;
pub mod report;
pub mod retry;
pub mod route;
pub mod schedule;
pub mod trace;
pub mod transform;
pub mod vtl;
