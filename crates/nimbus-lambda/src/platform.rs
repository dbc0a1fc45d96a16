//! The set of functions nimbus serves, their pools, and the account's concurrency.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use nimbus_core::concurrency::Concurrency;
use nimbus_core::report;
use nimbus_core::trace::TraceHeader;
use nimbus_telemetry::traces::SpanKind;
use nimbus_telemetry::{ErrorLabels, Telemetry, ThrottleLabels};
use tokio::sync::Notify;

use crate::pool::FunctionPool;
use crate::{
    AliasInfo, FunctionSpec, InvokeError, InvokeRequest, InvokeResponse, LogSink, PlatformConfig,
    PlatformError, VersionError, VersionInfo,
};

/// Cheap to clone; every clone drives the same functions.
#[derive(Clone)]
pub struct Platform {
    inner: Arc<Inner>,
}

struct Inner {
    config: PlatformConfig,
    pools: BTreeMap<String, Arc<FunctionPool>>,
    concurrency: Mutex<Concurrency>,
    logs: Arc<LogSink>,
    telemetry: Arc<Telemetry>,
    accepting: AtomicBool,
    in_flight: AtomicUsize,
    idle_now: Notify,
    reaper: Mutex<Option<tokio::task::JoinHandle<()>>>,
    faults: Arc<crate::faults::Faults>,
    versions: crate::versions::Registry,
    /// One reprovisioning at a time: two would each start the environments missing.
    provisioning: tokio::sync::Mutex<()>,
}

/// Holds one in-flight count and, once acquired, one unit of concurrency counted in the
/// function's running-invocations gauge; gives them back on drop, whatever path the
/// invocation leaves by.
struct Slot {
    inner: Arc<Inner>,
    function: String,
    acquired: Option<nimbus_telemetry::IntGauge>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(running) = self.acquired.take() {
            running.dec();
            self.inner
                .concurrency
                .lock()
                .expect("concurrency poisoned")
                .release(&self.function);
        }
        if self.inner.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle_now.notify_waiters();
        }
    }
}

impl Platform {
    /// Registers the functions and starts the idle reaper. Environments start on first use,
    /// except provisioned ones: call [`Platform::prewarm`].
    pub fn new(
        config: PlatformConfig,
        functions: Vec<FunctionSpec>,
        logs: Arc<LogSink>,
        telemetry: Arc<Telemetry>,
    ) -> Result<Self, PlatformError> {
        for dir in ["tmp", "runtime"] {
            let path = config.state_dir.join(dir);
            std::fs::create_dir_all(&path).map_err(|source| PlatformError::StateDir {
                path: path.clone(),
                source,
            })?;
        }
        let concurrency = Concurrency::new(
            config.account_concurrency,
            functions
                .iter()
                .map(|f| (f.name.as_str(), f.reserved_concurrency)),
        )?;
        let pools = functions
            .into_iter()
            .map(|f| (f.name.clone(), FunctionPool::new(f)))
            .collect();
        let versions = crate::versions::Registry::open(&config.state_dir, &pools)?;
        let platform = Self {
            inner: Arc::new(Inner {
                config,
                pools,
                concurrency: Mutex::new(concurrency),
                logs,
                telemetry,
                accepting: AtomicBool::new(true),
                in_flight: AtomicUsize::new(0),
                idle_now: Notify::new(),
                reaper: Mutex::new(None),
                faults: Arc::default(),
                versions,
                provisioning: tokio::sync::Mutex::new(()),
            }),
        };
        platform.start_reaper();
        Ok(platform)
    }

    fn start_reaper(&self) {
        let weak = Arc::downgrade(&self.inner);
        let idle_timeout = self.inner.config.idle_timeout;
        let period = (idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let now = Instant::now();
                for pool in inner.pools.values().chain(inner.versions.pools().iter()) {
                    let reaped = pool.reap(now, idle_timeout);
                    if reaped > 0 {
                        tracing::debug!(function = %pool.spec.name, reaped, "stopped idle environments");
                    }
                }
            }
        });
        *self.inner.reaper.lock().expect("reaper poisoned") = Some(handle);
    }

    pub fn config(&self) -> &PlatformConfig {
        &self.inner.config
    }

    /// Every function's `$LATEST` configuration now.
    pub fn functions(&self) -> impl Iterator<Item = Arc<FunctionSpec>> + '_ {
        self.inner.pools.values().map(|p| p.current().1)
    }

    /// A function's `$LATEST` configuration now.
    pub fn function(&self, name: &str) -> Option<Arc<FunctionSpec>> {
        self.inner.pools.get(name).map(|p| p.current().1)
    }

    /// Whether `name` or `name:qualifier` names a function, a published version or an alias.
    pub fn exists(&self, qualified: &str) -> bool {
        let (name, qualifier) = split_qualifier(qualified);
        match (self.inner.pools.get(name), qualifier) {
            (None, _) => false,
            (Some(_), None | Some("$LATEST")) => true,
            (Some(_), Some(q)) => self.inner.versions.knows(name, q),
        }
    }

    fn latest(&self, name: &str) -> Result<&Arc<FunctionPool>, VersionError> {
        self.inner.pools.get(name).ok_or_else(|| {
            let cfg = &self.inner.config;
            VersionError::NotFound(format!(
                "Function not found: {}",
                nimbus_core::arn::function_arn(&cfg.region, &cfg.account_id, name)
            ))
        })
    }

    /// `PublishVersion`: a snapshot of `$LATEST`'s code and configuration, or the newest
    /// version when neither changed since it.
    pub async fn publish_version(
        &self,
        name: &str,
        description: Option<String>,
        code_sha256: Option<String>,
        revision_id: Option<String>,
    ) -> Result<VersionInfo, VersionError> {
        let latest = self.latest(name)?.clone();
        let platform = self.clone();
        tokio::task::spawn_blocking(move || {
            platform.inner.versions.publish(
                &latest,
                description.as_deref(),
                code_sha256.as_deref(),
                revision_id.as_deref(),
            )
        })
        .await
        .map_err(|e| VersionError::Store(format!("publishing stopped: {e}")))?
    }

    /// The version the template's `AWS::Lambda::Version` `logical_id` stands for: the one
    /// published for it before (CloudFormation publishes a version resource once), else a new
    /// publish of `$LATEST`.
    pub async fn publish_version_ref(
        &self,
        name: &str,
        logical_id: &str,
        description: Option<String>,
    ) -> Result<u32, VersionError> {
        if let Some(n) = self.inner.versions.version_ref(name, logical_id) {
            return Ok(n);
        }
        let v = self.publish_version(name, description, None, None).await?;
        let n: u32 = v.spec.version.parse().unwrap_or_default();
        let arn = self.latest(name)?.spec.arn.clone();
        self.inner
            .versions
            .bind_version_ref(name, &arn, logical_id, n)?;
        Ok(n)
    }

    /// The version a template `AWS::Lambda::Version` id stands for, once published.
    pub fn version_ref(&self, name: &str, logical_id: &str) -> Option<u32> {
        self.inner.versions.version_ref(name, logical_id)
    }

    /// The published versions of a function, oldest first.
    pub fn versions(&self, name: &str) -> Result<Vec<VersionInfo>, VersionError> {
        self.latest(name)?;
        Ok(self.inner.versions.versions(name))
    }

    /// One published version.
    pub fn version(&self, name: &str, n: u32) -> Option<VersionInfo> {
        self.inner.versions.version(name, n)
    }

    /// Deletes a published version (refused while an alias uses it); its environments stop.
    pub fn delete_version(&self, name: &str, n: u32) -> Result<bool, VersionError> {
        let arn = self.latest(name)?.spec.arn.clone();
        match self.inner.versions.delete_version(name, &arn, n)? {
            Some(pool) => {
                for env in pool.stop_starting() {
                    env.kill();
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub fn aliases(&self, name: &str) -> Result<Vec<AliasInfo>, VersionError> {
        self.latest(name)?;
        Ok(self.inner.versions.aliases(name))
    }

    pub fn alias(&self, name: &str, alias: &str) -> Result<AliasInfo, VersionError> {
        let arn = &self.latest(name)?.spec.arn;
        self.inner
            .versions
            .alias(name, alias)
            .ok_or_else(|| crate::versions::alias_not_found(arn, alias))
    }

    pub fn create_alias(&self, alias: AliasInfo) -> Result<AliasInfo, VersionError> {
        let arn = self.latest(&alias.function)?.spec.arn.clone();
        self.inner.versions.create_alias(&arn, alias)
    }

    /// Changes an alias; provisioned concurrency on it follows its versions and weights.
    pub fn update_alias(
        &self,
        name: &str,
        alias: &str,
        update: crate::versions::AliasUpdate,
    ) -> Result<AliasInfo, VersionError> {
        let arn = self.latest(name)?.spec.arn.clone();
        let updated = self
            .inner
            .versions
            .update_alias(&arn, name, alias, update)?;
        if self.inner.versions.provisioned(name, alias).is_some() {
            let platform = self.clone();
            let name = name.to_owned();
            tokio::spawn(async move { platform.reprovision(&name).await });
        }
        Ok(updated)
    }

    pub fn delete_alias(&self, name: &str, alias: &str) -> Result<(), VersionError> {
        self.latest(name)?;
        self.inner.versions.delete_alias(name, alias)
    }

    /// `UpdateFunctionConfiguration`: `$LATEST` takes the change; environments started from
    /// now on run with it, idle ones of the old configuration are stopped.
    pub fn update_configuration(
        &self,
        name: &str,
        revision_id: Option<&str>,
        change: impl FnOnce(&mut FunctionSpec),
    ) -> Result<Arc<FunctionSpec>, VersionError> {
        let pool = self.latest(name)?;
        if revision_id.is_some_and(|r| r != pool.current().1.revision_id) {
            return Err(crate::versions::stale_revision());
        }
        Ok(pool.update(change))
    }

    /// `UpdateFunctionCode` with a `.zip`: `$LATEST` runs the archive's code from now on,
    /// started as the function's own code was (same runtime, dependencies and layers).
    pub async fn update_code(
        &self,
        name: &str,
        zip: bytes::Bytes,
        revision_id: Option<String>,
    ) -> Result<Arc<FunctionSpec>, VersionError> {
        let pool = self.latest(name)?.clone();
        let (_, spec) = pool.current();
        if revision_id.is_some_and(|r| r != spec.revision_id) {
            return Err(crate::versions::stale_revision());
        }
        let launch = spec.launch.clone().map_err(|e| {
            VersionError::Conflict(format!(
                "The function {name} cannot take new code: it does not start ({e})"
            ))
        })?;
        let out = self
            .inner
            .config
            .state_dir
            .join("code")
            .join("uploads")
            .join(name)
            .join(uuid::Uuid::new_v4().to_string());
        let dir = out.clone();
        tokio::task::spawn_blocking(move || crate::versions::extract_zip(&zip, &dir))
            .await
            .map_err(|e| VersionError::Store(format!("extracting stopped: {e}")))??;
        let launch = crate::versions::rebase(&launch, &out);
        Ok(pool.update(|spec| spec.launch = Ok(launch)))
    }

    /// The SHA-256 of `$LATEST`'s code (or of a version's), as Lambda's `CodeSha256`.
    pub async fn code_sha256(&self, spec: Arc<FunctionSpec>) -> Option<String> {
        let launch = spec.launch.clone().ok()?;
        tokio::task::spawn_blocking(move || crate::versions::code_sha256(&launch).ok())
            .await
            .ok()
            .flatten()
    }

    /// `PutFunctionConcurrency` / `DeleteFunctionConcurrency`: the function's reserved
    /// concurrency, shared by all its versions.
    pub fn set_reserved_concurrency(
        &self,
        name: &str,
        reserved: Option<u32>,
    ) -> Result<(), VersionError> {
        let pool = self.latest(name)?;
        self.inner
            .concurrency
            .lock()
            .expect("concurrency poisoned")
            .set_reserved(name, reserved)
            .map_err(|e| VersionError::Invalid(e.to_string()))?;
        pool.update(|spec| spec.reserved_concurrency = reserved);
        Ok(())
    }

    /// New invocations of `name` run `launch` (a rebuilt function, or why the rebuild cannot
    /// start); running invocations finish on the old code, whose environments are then
    /// stopped. `false` when there is no such function.
    pub fn replace_code(&self, name: &str, launch: Result<crate::LaunchSpec, String>) -> bool {
        match self.inner.pools.get(name) {
            Some(pool) => {
                pool.replace_code(launch);
                true
            }
            None => false,
        }
    }

    /// Gives every function (each version too) fresh environments from now on: idle ones stop
    /// now, busy ones after their invocation, and provisioned ones are started again at once.
    /// For a change to what an environment starts with that is not the function's
    /// configuration (nimbus's egress proxy).
    pub fn recycle_environments(&self) {
        let inner = &self.inner;
        for pool in inner.pools.values().cloned().chain(inner.versions.pools()) {
            pool.recycle();
        }
        let platform = self.clone();
        tokio::spawn(async move { platform.prewarm().await });
    }

    /// Starts each function's `ProvisionedConcurrencyConfig` environments and waits for their
    /// init. A failed init is logged and leaves the function on-demand.
    pub async fn prewarm(&self) {
        let inner = &self.inner;
        {
            // One warm-up at a time: two would each start the whole shortfall.
            let _one = inner.provisioning.lock().await;
            for pool in inner.pools.values() {
                self.warm(pool, pool.spec.provisioned_concurrency as usize)
                    .await;
            }
        }
        for name in inner.pools.keys() {
            self.reprovision(name).await;
        }
    }

    /// Starts provisioned environments in `pool` until it has `count`, each initialised
    /// before it takes work.
    async fn warm(&self, pool: &Arc<FunctionPool>, count: usize) {
        let inner = &self.inner;
        let (generation, spec) = pool.current();
        let Ok(launch) = spec.launch.as_ref() else {
            return;
        };
        for _ in pool.provisioned()..count {
            match pool
                .start(&spec, launch, &inner.config, inner.logs.clone(), true)
                .await
            {
                // Provisioned environments may initialise for up to 130 s or the
                // function's timeout, whichever is longer (Lambda's limit).
                Ok(env) => match env
                    .wait_ready(pool.spec.timeout.max(Duration::from_secs(130)))
                    .await
                {
                    Ok(()) => pool.put_idle(env, generation),
                    Err(failure) => {
                        env.kill();
                        tracing::error!(function = %pool.spec.name, version = %pool.spec.version, ?failure, "provisioned environment failed to initialise");
                    }
                },
                Err(e) => {
                    tracing::error!(function = %pool.spec.name, version = %pool.spec.version, error = %e, "cannot start provisioned environment")
                }
            }
        }
    }

    /// Gives each published version of `name` the provisioned environments its versions' and
    /// aliases' configurations add up to, stopping surplus ones; returns once they are ready.
    pub async fn reprovision(&self, name: &str) {
        let _one = self.inner.provisioning.lock().await;
        for (pool, count) in self.inner.versions.provisioned_targets(name) {
            pool.set_provisioned_target(count);
            self.warm(&pool, count).await;
        }
    }

    /// `PutProvisionedConcurrencyConfig` on a version or alias; the environments start in the
    /// background (the configuration is `IN_PROGRESS` until they are ready).
    pub fn put_provisioned(
        &self,
        name: &str,
        qualifier: &str,
        count: Option<u32>,
    ) -> Result<(), VersionError> {
        self.latest(name)?;
        if qualifier == "$LATEST" {
            return Err(VersionError::Invalid(
                "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
                    .into(),
            ));
        }
        if !self.exists(&format!("{name}:{qualifier}")) {
            let cfg = &self.inner.config;
            return Err(VersionError::NotFound(format!(
                "Function not found: {}:{qualifier}",
                nimbus_core::arn::function_arn(&cfg.region, &cfg.account_id, name)
            )));
        }
        self.inner
            .versions
            .set_provisioned(name, qualifier, count)?;
        let platform = self.clone();
        let name = name.to_owned();
        tokio::spawn(async move { platform.reprovision(&name).await });
        Ok(())
    }

    /// A version's or alias's provisioned concurrency: requested, ready now, last modified ms.
    pub fn provisioned(&self, name: &str, qualifier: &str) -> Option<(u32, u32, u64)> {
        let (requested, modified) = self.inner.versions.provisioned(name, qualifier)?;
        let versions: Vec<String> = match crate::versions::version_number(qualifier) {
            Some(_) => vec![qualifier.to_owned()],
            None => self
                .inner
                .versions
                .alias(name, qualifier)
                .map(|a| {
                    std::iter::once(a.version)
                        .chain(a.additional.map(|(v, _)| v))
                        .collect()
                })
                .unwrap_or_default(),
        };
        let ready: usize = self
            .inner
            .versions
            .provisioned_targets(name)
            .iter()
            .filter(|(pool, _)| versions.contains(&pool.spec.version))
            .map(|(pool, _)| pool.provisioned())
            .sum();
        Some((requested, (ready as u32).min(requested), modified))
    }

    /// Runs `name` once and waits for the result. The invocation runs in a task of its own,
    /// so a caller that goes away (a client disconnecting) does not abandon the environment
    /// mid-invocation: as on AWS, the function runs to completion.
    pub async fn invoke(
        &self,
        name: &str,
        req: InvokeRequest,
    ) -> Result<InvokeResponse, InvokeError> {
        let inner = &self.inner;
        let qualified = name;
        let (name, qualifier) = split_qualifier(qualified);
        let not_found = || InvokeError::NotFound(qualified.to_owned());
        let latest = inner.pools.get(name).ok_or_else(not_found)?;
        // The function sees the ARN it was invoked by, qualifier and all.
        let (pool, invoked_arn) = match qualifier {
            None => (latest.clone(), latest.arn.clone()),
            Some("$LATEST") => (
                latest.clone(),
                format!("{}:$LATEST", latest.spec.arn).into(),
            ),
            Some(q) => inner
                .versions
                .resolve(name, q, latest)
                .ok_or_else(not_found)?,
        };
        inner.in_flight.fetch_add(1, Ordering::AcqRel);
        let mut slot = Slot {
            inner: inner.clone(),
            function: name.to_owned(),
            acquired: None,
        };
        if !inner.accepting.load(Ordering::Acquire) {
            return Err(InvokeError::ShuttingDown);
        }
        let acquired = inner
            .concurrency
            .lock()
            .expect("concurrency poisoned")
            .try_acquire(name);
        let m = &inner.telemetry.lambda;
        if let Err(reason) = acquired {
            m.throttles
                .get_or_create(&ThrottleLabels {
                    function: name.to_owned(),
                    reason: reason.as_str().to_owned(),
                })
                .inc();
            return Err(InvokeError::Throttled(reason));
        }
        m.invocations.get_or_create(&pool.labels).inc();
        let by_version = nimbus_telemetry::VersionLabels {
            function: name.to_owned(),
            version: pool.spec.version.clone(),
            resource: match qualifier {
                Some(q) => format!("{name}:{q}"),
                None => name.to_owned(),
            },
        };
        m.version_invocations.get_or_create(&by_version).inc();
        let running = m.concurrent_executions.get_or_create(&pool.labels).clone();
        running.inc();
        slot.acquired = Some(running);
        let injected = match inner.faults.is_empty() {
            true => crate::faults::Injected::default(),
            false => inner.faults.pick(name, || rand::random::<f64>() * 100.0),
        };
        let platform = self.clone();
        let task = tokio::spawn(async move {
            let delay = Duration::from_millis(injected.delay_ms);
            let function = pool.spec.name.clone();
            let response = match &injected.replace {
                Some((replacement, true)) => {
                    // The handler never runs, but Lambda still frames the invocation (FIS's
                    // extension answers inside the environment): START, END and a REPORT
                    // whose duration is the injected delay.
                    let request_id = req
                        .request_id
                        .clone()
                        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                    let logs = &platform.inner.logs;
                    let version = pool.spec.version.clone();
                    logs.platform_line(
                        &function,
                        &request_id,
                        nimbus_core::report::start_line(&request_id, &version),
                    )
                    .await;
                    let started = std::time::Instant::now();
                    tokio::time::sleep(delay).await;
                    let (payload, function_error) = replacement.answer();
                    if function_error.is_some() {
                        // An injected error is a failed invocation in Lambda's Errors metric.
                        platform.count_error(&function, "function");
                    }
                    let report = nimbus_core::report::Report {
                        duration: started.elapsed(),
                        memory_size_mb: pool.spec.memory_mb,
                        max_memory_used_mb: 0,
                        init_duration: None,
                        status: None,
                        xray: None,
                    };
                    logs.platform_line(
                        &function,
                        &request_id,
                        nimbus_core::report::end_line(&request_id),
                    )
                    .await;
                    logs.platform_line(
                        &function,
                        &request_id,
                        nimbus_core::report::report_line(&request_id, &report),
                    )
                    .await;
                    InvokeResponse {
                        request_id,
                        payload,
                        function_error,
                        executed_version: version,
                        log_tail: None,
                    }
                }
                other => {
                    // An injected delay is part of the invocation, as FIS's extension adds it
                    // inside the environment: in the REPORT duration and the timeout.
                    let mut response = platform.run(&pool, req, invoked_arn, delay).await;
                    if let Some((replacement, false)) = other {
                        let already_failed = response.function_error.is_some();
                        (response.payload, response.function_error) = replacement.answer();
                        if response.function_error.is_some() && !already_failed {
                            platform.count_error(&function, "function");
                        }
                    }
                    response
                }
            };
            drop(slot);
            if response.function_error.is_some() {
                platform
                    .inner
                    .telemetry
                    .lambda
                    .version_errors
                    .get_or_create(&by_version)
                    .inc();
            }
            response
        });
        Ok(task.await.expect("invocation task panicked"))
    }

    async fn run(
        &self,
        pool: &Arc<FunctionPool>,
        req: InvokeRequest,
        invoked_arn: Arc<str>,
        delay: Duration,
    ) -> InvokeResponse {
        let inner = &self.inner;
        let name = &pool.spec.name;
        let request_id = req
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let header = req
            .trace_header
            .as_deref()
            .and_then(TraceHeader::parse)
            .unwrap_or_else(new_trace_root);
        let traces = &inner.telemetry.traces;
        let started_us = crate::epoch_us();
        // The function runs in its own segment: `Parent` is its id, which Lambda's REPORT
        // line states as the SegmentId and the function's SDK calls carry on.
        let trace_header;
        let (invoke_span, exec_span) = match traces.open_header(
            header,
            SpanKind::Invoke,
            pool.span_service.clone(),
            pool.span_name.clone(),
            started_us,
        ) {
            Ok(invoke) => {
                let exec = traces.open_child(
                    &invoke,
                    SpanKind::Execution,
                    pool.span_service.clone(),
                    pool.span_name.clone(),
                    started_us,
                );
                trace_header = exec.header();
                (Some(invoke), Some(exec))
            }
            // Not sampled: nothing is recorded, but the function still gets a segment id.
            Err(h) => {
                trace_header = TraceHeader {
                    parent: Some(traces.new_span_id()),
                    ..h
                }
                .to_string();
                (None, None)
            }
        };

        let (generation, spec) = pool.current();
        let launch = match spec.launch.as_ref() {
            Ok(l) => l,
            Err(reason) => {
                if let Some(mut s) = invoke_span {
                    s.fail(reason.clone());
                    traces.close(s, crate::epoch_us());
                }
                return self.entrypoint_failure(pool, &request_id, reason).await;
            }
        };
        // A warm environment whose process ends before taking the event never saw it: the
        // event goes to a new environment, once.
        let mut attempt = 0;
        let (env, generation, outcome) = loop {
            attempt += 1;
            let idle = if attempt == 1 { pool.take_idle() } else { None };
            let (env, generation) = match idle {
                Some(idle) => idle,
                None => match pool
                    .start(&spec, launch, &inner.config, inner.logs.clone(), false)
                    .await
                {
                    Ok(env) => (env, generation),
                    Err(e) => {
                        if let Some(mut s) = invoke_span {
                            s.fail(e.to_string());
                            traces.close(s, crate::epoch_us());
                        }
                        return self
                            .entrypoint_failure(pool, &request_id, &e.to_string())
                            .await;
                    }
                },
            };
            let outcome = env
                .invoke(
                    &request_id,
                    &req,
                    trace_header.clone(),
                    inner.config.init_timeout,
                    invoked_arn.clone(),
                    delay,
                )
                .await;
            if outcome.undelivered && attempt == 1 {
                env.kill();
                continue;
            }
            break (env, generation, outcome);
        };
        if outcome.reusable {
            pool.put_idle(env.clone(), generation);
        } else {
            env.kill();
        }
        // A provisioned environment stopped after its invocation (it crashed or timed out, or
        // its generation is an older one's) is replaced.
        if env.provisioned && env.is_killed() && inner.accepting.load(Ordering::Acquire) {
            let platform = self.clone();
            tokio::spawn(async move { platform.prewarm().await });
        }
        let m = &inner.telemetry.lambda;
        let labels = &pool.labels;
        m.duration
            .get_or_create(labels)
            .observe(outcome.duration.as_secs_f64());
        // AWS bills INIT with the invocation (on-demand functions, since August 2025).
        let billed = (outcome.duration + outcome.init_duration.unwrap_or_default())
            .as_nanos()
            .div_ceil(1_000_000)
            .max(1);
        m.billed_ms.get_or_create(labels).inc_by(billed as u64);
        if let Some(init) = outcome.init_duration {
            m.cold_starts.get_or_create(labels).inc();
            m.init_duration
                .get_or_create(labels)
                .observe(init.as_secs_f64());
        }
        let error_type = match (outcome.status, outcome.function_error) {
            (Some("timeout"), _) => Some("timeout"),
            (Some(_), _) => Some("runtime"),
            (None, true) => Some("function"),
            (None, false) => None,
        };
        if let Some(error_type) = error_type {
            self.count_error(name, error_type);
        }
        if let (Some(mut invoke), Some(mut exec)) = (invoke_span, exec_span) {
            let end_us = crate::epoch_us();
            let exec_start = end_us
                .saturating_sub(outcome.duration.as_micros() as u64)
                .max(started_us);
            if let Some(init) = outcome.init_duration {
                let init_start = exec_start
                    .saturating_sub(init.as_micros() as u64)
                    .max(started_us);
                let s = traces.open_child(
                    &invoke,
                    SpanKind::Init,
                    pool.span_service.clone(),
                    "Initialization",
                    init_start,
                );
                traces.close(s, exec_start);
            }
            exec.set_start_us(exec_start);
            exec.attr("request_id", request_id.clone());
            invoke.attr("request_id", request_id.clone());
            invoke.attr("cold_start", outcome.init_duration.is_some().to_string());
            if let Some(error_type) = error_type {
                let why = match error_type {
                    "function" => "Unhandled".to_owned(),
                    other => format!("Runtime ({other})"),
                };
                exec.fail(why.clone());
                invoke.fail(why);
            }
            traces.close(exec, end_us);
            traces.close(invoke, end_us);
        }
        InvokeResponse {
            request_id,
            payload: outcome.payload,
            function_error: outcome.function_error.then_some("Unhandled"),
            executed_version: pool.spec.version.clone(),
            log_tail: outcome.log_tail,
        }
    }

    fn count_error(&self, function: &str, error_type: &str) {
        self.inner
            .telemetry
            .lambda
            .errors
            .get_or_create(&ErrorLabels {
                function: function.to_owned(),
                error_type: error_type.to_owned(),
            })
            .inc();
    }

    /// The faults injected into invocations (AWS FIS's Lambda actions).
    pub fn faults(&self) -> &Arc<crate::faults::Faults> {
        &self.inner.faults
    }

    /// The metrics this platform records into.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.inner.telemetry
    }

    async fn entrypoint_failure(
        &self,
        pool: &FunctionPool,
        request_id: &str,
        reason: &str,
    ) -> InvokeResponse {
        self.count_error(&pool.spec.name, "runtime");
        let message = format!("RequestId: {request_id} Error: {reason}");
        self.inner
            .logs
            .platform_line(&pool.spec.name, request_id, message.clone())
            .await;
        InvokeResponse {
            request_id: request_id.to_owned(),
            payload: Bytes::from(report::error_body(&message, "Runtime.InvalidEntrypoint")),
            function_error: Some("Unhandled"),
            executed_version: pool.spec.version.clone(),
            log_tail: None,
        }
    }

    /// Stops taking invocations, lets running ones finish for up to `grace`, then kills every
    /// environment and waits until each process is gone.
    pub async fn shutdown(&self, grace: Duration) {
        let inner = &self.inner;
        inner.accepting.store(false, Ordering::Release);
        let drained = async {
            loop {
                let notified = inner.idle_now.notified();
                if inner.in_flight.load(Ordering::Acquire) == 0 {
                    break;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(grace, drained).await.is_err() {
            tracing::warn!(
                in_flight = inner.in_flight.load(Ordering::Acquire),
                "invocations still running after the shutdown grace period; stopping them"
            );
        }
        if let Some(reaper) = inner.reaper.lock().expect("reaper poisoned").take() {
            reaper.abort();
        }
        let envs: Vec<_> = inner
            .pools
            .values()
            .cloned()
            .chain(inner.versions.pools())
            .flat_map(|p| p.stop_starting())
            .collect();
        for env in &envs {
            env.kill();
        }
        let all_exited = async {
            for env in &envs {
                env.wait_exited().await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), all_exited)
            .await
            .is_err()
        {
            tracing::warn!("some function output was still open 10 s after its process was killed");
        }
    }
}

/// `name:qualifier` split at its colon.
pub(crate) fn split_qualifier(qualified: &str) -> (&str, Option<&str>) {
    match qualified.split_once(':') {
        Some((name, q)) => (name, Some(q)),
        None => (qualified, None),
    }
}

fn new_trace_root() -> TraceHeader {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    TraceHeader::new_root(secs, rand::random(), true)
}
