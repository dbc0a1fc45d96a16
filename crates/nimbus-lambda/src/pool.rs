//! The execution environments of one function: warm ones are reused most-recently-used first,
//! new ones start on demand, idle ones are stopped after the idle timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::env::Env;
use crate::{FunctionSpec, LaunchSpec, LogSink, PlatformConfig};

pub(crate) struct FunctionPool {
    /// The function as it was registered: its name, ARN and version never change.
    pub spec: Arc<FunctionSpec>,
    /// The function's name, and `function:<name>`, as its trace spans name them, and its
    /// metric labels: made once, not per invocation.
    pub span_name: Arc<str>,
    pub span_service: Arc<str>,
    /// The function's unqualified ARN, as an invocation by name sees it.
    pub arn: Arc<str>,
    pub labels: nimbus_telemetry::FunctionLabels,
    /// The configuration and code new environments start with, and its generation: replaced
    /// when `--watch` rebuilds the function or its configuration is updated. An environment of
    /// an older generation is not reused.
    current: Mutex<(u64, Arc<FunctionSpec>)>,
    /// Provisioned environments to keep (the template's, or `PutProvisionedConcurrencyConfig`'s
    /// share for this version).
    provisioned_target: std::sync::atomic::AtomicUsize,
    /// Warm environments waiting for work, the most recently used last, with the generation
    /// of the code they run.
    idle: Mutex<Vec<(Arc<Env>, Instant, u64)>>,
    /// Every live environment, busy or idle, so shutdown can stop them all. `None` once
    /// shutdown has begun: no environment starts after that.
    live: Mutex<Option<HashMap<u64, Arc<Env>>>>,
}

static NEXT_ENV_ID: AtomicU64 = AtomicU64::new(1);

impl FunctionPool {
    pub fn new(spec: FunctionSpec) -> Arc<Self> {
        Arc::new(Self {
            span_name: spec.name.as_str().into(),
            span_service: format!("function:{}", spec.name).into(),
            arn: spec.arn.as_str().into(),
            labels: nimbus_telemetry::function(&spec.name),
            current: Mutex::new((0, Arc::new(spec.clone()))),
            provisioned_target: (spec.provisioned_concurrency as usize).into(),
            spec: Arc::new(spec),
            idle: Mutex::new(Vec::new()),
            live: Mutex::new(Some(HashMap::new())),
        })
    }

    /// The configuration and code new environments run, and its generation.
    pub fn current(&self) -> (u64, Arc<FunctionSpec>) {
        let current = self.current.lock().expect("pool poisoned");
        (current.0, current.1.clone())
    }

    /// New environments run `launch` from now on; idle environments of the old code are
    /// stopped, and busy ones are stopped when their invocation ends (see [`Self::put_idle`]).
    pub fn replace_code(&self, launch: Result<LaunchSpec, String>) {
        self.update(|spec| spec.launch = launch);
    }

    /// Changes the configuration (and a new revision id) new environments start with; idle
    /// environments of the old one are stopped. Returns the new configuration.
    pub fn update(&self, change: impl FnOnce(&mut FunctionSpec)) -> Arc<FunctionSpec> {
        let (generation, spec) = {
            let mut current = self.current.lock().expect("pool poisoned");
            let mut spec = FunctionSpec::clone(&current.1);
            change(&mut spec);
            spec.revision_id = uuid::Uuid::new_v4().to_string();
            spec.last_modified_ms = crate::epoch_ms();
            let spec = Arc::new(spec);
            *current = (current.0 + 1, spec.clone());
            (current.0, spec)
        };
        self.stop_idle_before(generation);
        spec
    }

    /// Stops the idle environments of generations before `generation`.
    fn stop_idle_before(&self, generation: u64) {
        self.idle
            .lock()
            .expect("pool poisoned")
            .retain(|(env, _, g)| {
                let keep = *g == generation;
                if !keep {
                    env.kill();
                }
                keep
            });
    }

    /// New environments start afresh from now on (same configuration and revision): idle ones
    /// stop now, busy ones when their invocation ends.
    pub fn recycle(&self) {
        let generation = {
            let mut current = self.current.lock().expect("pool poisoned");
            current.0 += 1;
            current.0
        };
        self.stop_idle_before(generation);
    }

    /// A warm environment if one is idle, with its code's generation.
    pub fn take_idle(&self) -> Option<(Arc<Env>, u64)> {
        let mut idle = self.idle.lock().expect("pool poisoned");
        while let Some((env, _, generation)) = idle.pop() {
            if !env.is_failed() {
                return Some((env, generation));
            }
        }
        None
    }

    pub async fn start(
        self: &Arc<Self>,
        spec: &Arc<FunctionSpec>,
        launch: &LaunchSpec,
        config: &PlatformConfig,
        logs: Arc<LogSink>,
        provisioned: bool,
    ) -> std::io::Result<Arc<Env>> {
        let id = NEXT_ENV_ID.fetch_add(1, Ordering::Relaxed);
        let env = Env::spawn(id, spec.clone(), launch, config, logs, provisioned).await?;
        match self.live.lock().expect("pool poisoned").as_mut() {
            Some(live) => {
                live.insert(id, env.clone());
            }
            None => {
                env.kill();
                return Err(std::io::Error::other("nimbus is shutting down"));
            }
        }
        let pool = self.clone();
        let watched = env.clone();
        tokio::spawn(async move {
            watched.wait_exited().await;
            if let Some(live) = pool.live.lock().expect("pool poisoned").as_mut() {
                live.remove(&watched.id);
            }
            pool.idle
                .lock()
                .expect("pool poisoned")
                .retain(|(e, _, _)| e.id != watched.id);
        });
        Ok(env)
    }

    /// Keeps `env` warm for the next invocation, unless the code changed since it started.
    pub fn put_idle(&self, env: Arc<Env>, generation: u64) {
        let current = self.current.lock().expect("pool poisoned").0;
        let surplus = env.provisioned && self.provisioned() > self.provisioned_target();
        if generation != current || surplus {
            env.kill();
            return;
        }
        self.idle
            .lock()
            .expect("pool poisoned")
            .push((env, Instant::now(), generation));
    }

    /// Stops environments idle for `idle_timeout` or longer; provisioned ones stay.
    pub fn reap(&self, now: Instant, idle_timeout: Duration) -> usize {
        let mut idle = self.idle.lock().expect("pool poisoned");
        let before = idle.len();
        idle.retain(|(env, since, _)| {
            let keep = env.provisioned || now.duration_since(*since) < idle_timeout;
            if !keep {
                env.kill();
            }
            keep
        });
        before - idle.len()
    }

    /// Live environments started as provisioned concurrency (busy or idle).
    pub fn provisioned(&self) -> usize {
        self.live
            .lock()
            .expect("pool poisoned")
            .as_ref()
            .map_or(0, |live| {
                live.values()
                    .filter(|e| e.provisioned && !e.is_failed() && !e.is_killed())
                    .count()
            })
    }

    /// How many provisioned environments this pool should keep.
    pub fn provisioned_target(&self) -> usize {
        self.provisioned_target.load(Ordering::Acquire)
    }

    /// Keeps `target` provisioned environments from now on: idle ones beyond it stop now, busy
    /// ones when their invocation ends ([`Self::put_idle`]).
    pub fn set_provisioned_target(&self, target: usize) {
        self.provisioned_target.store(target, Ordering::Release);
        let mut surplus = self.provisioned().saturating_sub(target);
        self.idle
            .lock()
            .expect("pool poisoned")
            .retain(|(env, _, _)| {
                if !env.provisioned || surplus == 0 {
                    return true;
                }
                surplus -= 1;
                env.kill();
                false
            });
    }

    /// Refuses new environments from now on and returns every live one (shutdown).
    pub fn stop_starting(&self) -> Vec<Arc<Env>> {
        self.live
            .lock()
            .expect("pool poisoned")
            .take()
            .map(|live| live.into_values().collect())
            .unwrap_or_default()
    }
}
