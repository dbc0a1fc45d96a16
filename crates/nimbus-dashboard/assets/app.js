// nimbus dashboard: polling, shared state, header, navigation (location hash) and routing.
// Every request is relative to the page (served at /_nimbus/), so `api/stack` is /_nimbus/api/stack.

import { $, MetricStore, fmtClock } from './util.js';
import { overviewView } from './map.js';
import { functionsView, queuesView, alarmsView, statemachinesView } from './views.js';
import { tracesView } from './traces.js';
import { bucketsView } from './buckets.js';
import { deploymentsView } from './deployments.js';
import { tablesView } from './tables.js';
import { topicsView, configView } from './topics.js';
import { logsView } from './logs.js';

const POLL_MS = 2000;
const FETCH_TIMEOUT_MS = 4000;
const SERIES_POINTS = 300; // ~10 minutes at one point per 2 s
const STACK_REFRESH_MS = 15000;
const LOG_KEEP = 5000;

export const state = {
  stack: null, // GET api/stack
  stackSig: '',
  stackVersion: 0, // bumped when the stack changes (views rebuild)
  metrics: new MetricStore(),
  fnSeries: new Map(), // function name -> {xs, inv, err, thr, p50, p90, p99, conc, cold}
  queueSeries: new Map(), // queue name -> {xs, visible, inflight}
  traces: [],
  tracesLoaded: false,
  logs: [], // events, oldest first
  logsAfter: 0,
  logSources: new Map(), // source -> kind
  logsLoaded: false,
  alarms: [],
  alarmsLoaded: false,
  machines: [], // Step Functions ListStateMachines
  machinesLoaded: false,
  connected: null, // null: connecting, true, false
  lastOkMs: 0,
  failures: 0,
  pollCount: 0,
};

const VIEWS = {
  overview: overviewView,
  functions: functionsView,
  queues: queuesView,
  statemachines: statemachinesView,
  buckets: bucketsView,
  tables: tablesView,
  topics: topicsView,
  config: configView,
  deployments: deploymentsView,
  traces: tracesView,
  logs: logsView,
  alarms: alarmsView,
};

let current = { name: null, arg: null };

// ---------------------------------------------------------------- fetching

/** GET a JSON document relative to the page; throws on network error, timeout or non-2xx. */
export async function getJSON(path) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    const res = await fetch(path, { cache: 'no-store', signal: ctl.signal, headers: { accept: 'application/json' } });
    if (!res.ok) {
      const err = new Error(`HTTP ${res.status}`);
      err.status = res.status;
      throw err;
    }
    return await res.json();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Calls a read-only Step Functions operation (AWS JSON 1.0) on nimbus's AWS endpoint, which
 * serves this page too. Throws on network error or timeout, and on an error answer with
 * `code` (e.g. StateMachineTypeNotSupported) and `status` set.
 */
export function sfnCall(op, input = {}) {
  return awsJsonCall(`AWSStepFunctions.${op}`, input);
}

/** An AWS JSON 1.0 call (`target`: `DynamoDB_20120810.Scan`, ...), as sfnCall describes. */
export async function awsJsonCall(target, input = {}) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    const res = await fetch('/', {
      method: 'POST',
      cache: 'no-store',
      signal: ctl.signal,
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': target },
      body: JSON.stringify(input),
    });
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = null;
    }
    if (!res.ok) {
      const type = String((body && (body.__type || body.code)) || `HTTP ${res.status}`);
      const err = new Error(String((body && (body.message || body.Message)) || type));
      err.status = res.status;
      err.code = type.split('#').pop();
      throw err;
    }
    return body && typeof body === 'object' ? body : {};
  } finally {
    clearTimeout(timer);
  }
}

/** FIS experiments (REST-JSON on the AWS endpoint, signed-looking for the `fis` service). */
async function fisExperiments() {
  const res = await fetch('/experiments', {
    cache: 'no-store',
    headers: { authorization: 'AWS4-HMAC-SHA256 Credential=dashboard/20260101/us-east-1/fis/aws4_request, SignedHeaders=host, Signature=0' },
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return await res.json();
}

/** The topbar's chaos banner: shown while any fault, latency or FIS experiment is active. */
function renderChaos(faultsR, effectsR, fisR) {
  const el = $('#chaos-banner');
  if (!el) return;
  const rules = faultsR.status === 'fulfilled' && Array.isArray(faultsR.value) ? faultsR.value.length : 0;
  const latency = effectsR.status === 'fulfilled' && effectsR.value ? Number(effectsR.value.latency) || 0 : 0;
  const running = fisR.status === 'fulfilled' && fisR.value && Array.isArray(fisR.value.experiments)
    ? fisR.value.experiments.filter((e) => e && e.state && e.state.status === 'running').length
    : 0;
  const parts = [];
  if (rules) parts.push(`${rules} fault rule${rules === 1 ? '' : 's'}`);
  if (latency) parts.push(`+${latency} ms latency`);
  if (running) parts.push(`${running} FIS experiment${running === 1 ? '' : 's'} running`);
  const text = parts.length ? `Chaos active: ${parts.join(' · ')}` : '';
  if (el.textContent !== text) el.textContent = text;
  el.hidden = !text;
}

// ---------------------------------------------------------------- derived state

export function stackNodes(kind) {
  const nodes = (state.stack && Array.isArray(state.stack.nodes) && state.stack.nodes) || [];
  return kind ? nodes.filter((n) => n && n.kind === kind) : nodes;
}

/** Function names: the stack's, then any others seen in metrics. */
export function functionNames() {
  const names = stackNodes('function').map((n) => String(n.name));
  const snap = state.metrics.latest;
  if (snap) {
    for (const n of snap.labelValues('nimbus_lambda_invocations_total', 'function')) if (!names.includes(n)) names.push(n);
  }
  return names;
}

/** Queue names: the stack's, then queues created by clients (seen in metrics). */
export function queueNames() {
  const names = stackNodes('queue').map((n) => String(n.name));
  const snap = state.metrics.latest;
  if (snap) {
    for (const n of snap.labelValues('nimbus_sqs_messages_visible', 'queue')) if (!names.includes(n)) names.push(n);
  }
  return names;
}

function pushPoint(series, key, value) {
  const arr = series[key];
  arr.push(value === undefined ? null : value);
}

function trimSeries(series) {
  const extra = series.xs.length - SERIES_POINTS;
  if (extra > 0) for (const k in series) series[k].splice(0, extra);
}

function recordSeries(snap) {
  const m = state.metrics;
  const t = snap.t;
  for (const name of functionNames()) {
    let s = state.fnSeries.get(name);
    if (!s) {
      s = { xs: [], inv: [], err: [], thr: [], p50: [], p90: [], p99: [], conc: [], cold: [] };
      state.fnSeries.set(name, s);
    }
    const sel = { function: name };
    s.xs.push(t);
    pushPoint(s, 'inv', m.rate('nimbus_lambda_invocations_total', sel, 10, snap));
    pushPoint(s, 'err', m.rate('nimbus_lambda_errors_total', sel, 10, snap));
    pushPoint(s, 'thr', m.rate('nimbus_lambda_throttles_total', sel, 10, snap));
    for (const [k, q] of [['p50', 0.5], ['p90', 0.9], ['p99', 0.99]]) {
      const v = m.quantile(q, 'nimbus_lambda_duration_seconds', sel, 10, snap);
      pushPoint(s, k, v === null ? null : v * 1000);
    }
    pushPoint(s, 'conc', snap.sum('nimbus_lambda_concurrent_executions', sel) ?? 0);
    // cold starts in this poll interval (bars)
    pushPoint(s, 'cold', m.increase('nimbus_lambda_cold_starts_total', sel, 0, snap));
    trimSeries(s);
  }
  for (const name of queueNames()) {
    let s = state.queueSeries.get(name);
    if (!s) {
      s = { xs: [], visible: [], inflight: [] };
      state.queueSeries.set(name, s);
    }
    const sel = { queue: name };
    s.xs.push(t);
    pushPoint(s, 'visible', snap.sum('nimbus_sqs_messages_visible', sel));
    pushPoint(s, 'inflight', snap.sum('nimbus_sqs_messages_in_flight', sel));
    trimSeries(s);
  }
}

function addLogs(json) {
  const events = Array.isArray(json && json.events) ? json.events : [];
  const next = Number(json && json.next);
  if (isFinite(next) && next < state.logsAfter) {
    // the server's sequence went backwards: nimbus restarted; start over
    state.logs = [];
    state.logsAfter = 0;
  }
  const fresh = [];
  // the server answers the newest `limit` lines after SEQ: a jump in sequence numbers means
  // lines went by faster than one poll could fetch
  let skipped = 0;
  const firstSeq = events.length ? Number(events[0] && events[0].seq) : NaN;
  if (state.logsAfter > 0 && isFinite(firstSeq) && firstSeq > state.logsAfter + 1) skipped = firstSeq - state.logsAfter - 1;
  for (const e of events) {
    if (!e || typeof e !== 'object') continue;
    const seq = Number(e.seq);
    if (isFinite(seq) && seq <= state.logsAfter && state.logsAfter > 0) continue;
    fresh.push(e);
    if (isFinite(seq)) state.logsAfter = Math.max(state.logsAfter, seq);
    if (e.source !== undefined && !state.logSources.has(String(e.source))) state.logSources.set(String(e.source), e.kind);
  }
  if (isFinite(next) && next > state.logsAfter) state.logsAfter = next;
  state.logs.push(...fresh);
  let dropped = 0;
  if (state.logs.length > LOG_KEEP) {
    dropped = state.logs.length - LOG_KEEP;
    state.logs.splice(0, dropped);
  }
  state.logsLoaded = true;
  return { fresh, dropped, skipped };
}

// ---------------------------------------------------------------- polling

let lastStackFetch = 0;

function applyStack(stack) {
  if (!stack || typeof stack !== 'object') return;
  const sig = JSON.stringify(stack);
  if (sig !== state.stackSig) {
    state.stack = stack;
    state.stackSig = sig;
    state.stackVersion++;
    safe(renderStackMeta);
  }
}

async function poll() {
  const started = Date.now();
  if (state.connected === false) {
    // while nimbus is away, knock with one request per poll rather than five
    try {
      const stack = await getJSON('api/stack');
      lastStackFetch = started;
      applyStack(stack);
      state.connected = null;
      safe(renderLive);
      return poll();
    } catch (e) {
      state.failures++;
      safe(renderLive);
      setTimeout(poll, POLL_MS);
      return;
    }
  }
  const needStack = !state.stack || started - lastStackFetch > STACK_REFRESH_MS;
  const logPath = state.logsAfter > 0 ? `api/logs?after=${state.logsAfter}&limit=1000` : 'api/logs?limit=1000';
  const [stackR, metricsR, tracesR, logsR, alarmsR, machinesR, faultsR, effectsR, fisR] = await Promise.allSettled([
    needStack ? getJSON('api/stack') : Promise.resolve(null),
    getJSON('api/metrics'),
    getJSON('api/traces?limit=50'),
    getJSON(logPath),
    getJSON('api/alarms'),
    sfnCall('ListStateMachines', { maxResults: 1000 }),
    getJSON('chaos/faults'),
    getJSON('chaos/effects'),
    fisExperiments(),
  ]);
  safe(() => renderChaos(faultsR, effectsR, fisR));

  let anyOk = false;
  let logDelta = { fresh: [], dropped: 0 };
  try {
    if (needStack && stackR.status === 'fulfilled' && stackR.value) {
      lastStackFetch = started;
      anyOk = true;
      applyStack(stackR.value);
    }
    if (metricsR.status === 'fulfilled' && metricsR.value) {
      anyOk = true;
      const snap = state.metrics.push(metricsR.value);
      recordSeries(snap);
    }
    if (tracesR.status === 'fulfilled' && tracesR.value) {
      anyOk = true;
      state.traces = Array.isArray(tracesR.value.traces) ? tracesR.value.traces.filter((t) => t && t.trace_id) : [];
      state.tracesLoaded = true;
    }
    if (logsR.status === 'fulfilled' && logsR.value) {
      anyOk = true;
      logDelta = addLogs(logsR.value);
    }
    if (alarmsR.status === 'fulfilled' && alarmsR.value) {
      anyOk = true;
      state.alarms = Array.isArray(alarmsR.value.alarms) ? alarmsR.value.alarms.filter(Boolean) : [];
      state.alarmsLoaded = true;
    }
    if (machinesR.status === 'fulfilled' && machinesR.value) {
      anyOk = true;
      const list = Array.isArray(machinesR.value.stateMachines) ? machinesR.value.stateMachines : [];
      state.machines = list.filter((m) => m && typeof m.stateMachineArn === 'string');
      state.machinesLoaded = true;
    }
  } catch (e) {
    // malformed answers must never stop the dashboard
  }

  if (anyOk) {
    state.connected = true;
    state.lastOkMs = Date.now();
    state.failures = 0;
  } else {
    state.failures++;
    state.connected = false;
  }
  state.pollCount++;
  safe(renderLive);
  safe(renderNavBadges);
  // logs are appended incrementally; tell the log view even when hidden so it stays in sync
  safe(() => logsView.ingest(logDelta));
  const view = VIEWS[current.name];
  if (view) safe(() => view.update());

  const delay = Math.max(250, POLL_MS - (Date.now() - started));
  setTimeout(poll, delay);
}

function safe(fn) {
  try {
    fn();
  } catch (e) {
    // a rendering problem in one part must not take down the others; keep the console quiet
    if (window.__NIMBUS_DEBUG__) console.warn(e);
  }
}

// ---------------------------------------------------------------- header, nav

function renderStackMeta() {
  const s = state.stack || {};
  const tmpl = $('#stack-template');
  tmpl.textContent = s.template || 'template';
  tmpl.title = s.template || '';
  const meta = [];
  if (s.region) meta.push(s.region);
  if (s.account) meta.push(`account ${s.account}`);
  $('#stack-region').textContent = meta.join(' · ');
  const ep = $('#stack-endpoint');
  const endpoint = s.endpoint || location.origin;
  ep.textContent = endpoint.replace(/^https?:\/\//, '');
  ep.title = `AWS endpoint: ${endpoint} (use it as --endpoint-url)`;
  document.title = `nimbus · ${s.template ? s.template.split('/').slice(-2).join('/') : 'dashboard'}`;
}

function renderLive() {
  const el = $('#live');
  const text = $('#live-text');
  if (state.connected === true) {
    el.dataset.status = 'live';
    text.textContent = `Live · updated ${fmtClock(state.lastOkMs)}`;
    el.title = 'Polling nimbus every 2 s';
  } else if (state.connected === false) {
    el.dataset.status = 'down';
    text.textContent = state.lastOkMs ? `Disconnected · last update ${fmtClock(state.lastOkMs)}` : 'Disconnected';
    el.title = 'nimbus is not answering; retrying every 2 s. Is `nimbus up` still running?';
  } else {
    el.dataset.status = 'connecting';
    text.textContent = 'Connecting…';
  }
  document.body.classList.toggle('is-disconnected', state.connected === false);
}

function setBadge(name, text, tone = '') {
  const b = $(`#nav-${name} .nav-badge`);
  if (!b) return;
  b.textContent = text;
  b.hidden = text === '' || text === null;
  b.dataset.tone = tone;
}

function renderNavBadges() {
  setBadge('functions', state.stack ? String(functionNames().length) : '');
  setBadge('queues', state.stack ? String(queueNames().length) : '');
  setBadge('statemachines', state.machinesLoaded ? String(state.machines.length) : '');
  setBadge('traces', state.tracesLoaded ? String(state.traces.length) : '');
  const firing = state.alarms.filter((a) => a.state === 'ALARM').length;
  setBadge('alarms', state.alarmsLoaded ? (firing ? String(firing) : String(state.alarms.length)) : '', firing ? 'danger' : '');
}

// ---------------------------------------------------------------- routing

function parseHash() {
  const h = (location.hash || '').replace(/^#\/?/, '');
  const [name, ...rest] = h.split('/');
  let arg = rest.length ? rest.join('/') : null;
  try {
    arg = arg === null ? null : decodeURIComponent(arg);
  } catch (e) {
    /* keep as is */
  }
  return { name: VIEWS[name] ? name : 'overview', arg };
}

function route() {
  const next = parseHash();
  if (!location.hash || !VIEWS[(location.hash.replace(/^#\/?/, '').split('/')[0])]) {
    history.replaceState(null, '', '#/overview');
  }
  const changed = next.name !== current.name;
  if (changed && current.name && VIEWS[current.name].hide) safe(() => VIEWS[current.name].hide());
  current = next;
  for (const [name] of Object.entries(VIEWS)) {
    const sec = $(`#view-${name}`);
    if (sec) sec.hidden = name !== next.name;
    const link = $(`#nav-${name}`);
    if (link) {
      if (name === next.name) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }
  safe(() => VIEWS[next.name].show(next.arg));
  if (changed) window.scrollTo(0, 0);
}

/** Navigates to a hash route, e.g. go('traces', id). */
export function go(name, arg) {
  location.hash = '#/' + name + (arg !== undefined && arg !== null ? '/' + encodeURIComponent(arg) : '');
}

export function currentRoute() {
  return current;
}

// ---------------------------------------------------------------- start

function start() {
  for (const v of Object.values(VIEWS)) safe(() => v.init());
  window.addEventListener('hashchange', route);
  route();
  renderLive();
  poll();
}

// keep the page free of uncaught errors: a failed promise somewhere must not surface
window.addEventListener('unhandledrejection', (e) => e.preventDefault());

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
