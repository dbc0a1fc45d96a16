// Functions, Queues, State machines and Alarms views.

import { state, functionNames, queueNames, stackNodes, sfnCall } from './app.js';
import { $, $$, html, raw, esc, setHTML, cssEscape, fmtInt, fmtMs, fmtAge, fmtAgo, fmtDateTime, fmtClock, fitText, textWidth, trunc, liveChart, COLORS } from './util.js';
import { kindGlyph } from './map.js';

// ================================================================= Functions

const fnCharts = new Map(); // name -> {inv, lat, conc}
let fnSig = '';
let fnDetail = null; // name shown alone, or null for all

function fnNode(name) {
  return stackNodes('function').find((n) => String(n.name) === name) || null;
}

function fnCard(name) {
  const n = fnNode(name);
  const d = (n && n.detail) || {};
  const chips = [];
  if (d.runtime) chips.push(html`<span class="chip">${d.runtime}</span>`);
  if (d.memory_mb) chips.push(html`<span class="chip">${d.memory_mb} MB</span>`);
  if (d.timeout_s) chips.push(html`<span class="chip">timeout ${d.timeout_s} s</span>`);
  if (d.reserved_concurrency !== null && d.reserved_concurrency !== undefined) chips.push(html`<span class="chip">reserved concurrency ${d.reserved_concurrency}</span>`);
  if (d.tracing === 'Active') chips.push(html`<span class="chip chip-info">X-Ray tracing</span>`);
  if (!n) chips.push(html`<span class="chip chip-muted">not in the template</span>`);
  const stat = (key, label, title) => html`<div class="stat" title="${title}"><div class="stat-value" data-total="${key}">–</div><div class="stat-label">${label}</div></div>`;
  return html`<article class="card fn-card" data-function="${name}">
    <header class="fn-head">
      <div class="fn-title">${kindGlyph('function', 22)}<h2><a href="#/functions/${encodeURIComponent(name)}">${name}</a></h2>${chips}</div>
      <nav class="fn-links"><a class="fn-details-link" href="#/functions/${encodeURIComponent(name)}">Details</a><a href="#/logs/${encodeURIComponent(name)}">Logs</a></nav>
    </header>
    <div class="fn-totals">
      ${stat('invocations', 'invocations', 'Invocations since nimbus started')}
      ${stat('errors', 'errors', 'Function errors, timeouts and runtime failures since nimbus started')}
      ${stat('throttles', 'throttles', 'Invocations refused by a concurrency limit since nimbus started')}
      ${stat('cold_starts', 'cold starts', 'Invocations that started a new execution environment')}
      ${stat('running', 'running now', 'Invocations running at this moment')}
      ${stat('p50', 'p50 duration', 'Median duration over the last 10 s (estimated from histogram buckets)')}
      ${stat('p99', 'p99 duration', '99th percentile duration over the last 10 s (estimated from histogram buckets)')}
    </div>
    <div class="fn-charts">
      <figure class="chart"><figcaption>Invocations, errors, throttles <span class="unit">per second</span></figcaption><div class="chart-host" data-chart="inv"></div></figure>
      <figure class="chart"><figcaption>Duration <span class="unit">p50 · p90 · p99</span></figcaption><div class="chart-host" data-chart="lat"></div></figure>
      <figure class="chart"><figcaption>Concurrency and cold starts <span class="unit">running · started per 2 s</span></figcaption><div class="chart-host" data-chart="conc"></div></figure>
    </div>
    <div class="fn-extra" hidden></div>
  </article>`;
}

function buildFunctions() {
  const names = functionNames();
  const sig = names.join('\u0000') + '|' + state.stackVersion;
  if (sig === fnSig) return;
  fnSig = sig;
  const list = $('#fn-list');
  fnCharts.clear();
  if (!state.stack && !state.metrics.latest) {
    setHTML(list, html`<div class="card empty"><div class="empty-title">Waiting for nimbus…</div><p>Function metrics appear here once the dashboard reaches nimbus.</p></div>`);
    return;
  }
  if (!names.length) {
    setHTML(
      list,
      html`<div class="card empty"><div class="empty-title">No functions in this template</div><p>Declare an <code>AWS::Serverless::Function</code> in the template and restart <code>nimbus up</code>; each function gets a card here with its invocations, errors, latency percentiles, concurrency and cold starts.</p></div>`,
    );
    return;
  }
  setHTML(list, html`${names.map(fnCard)}`);
  for (const card of $$('.fn-card', list)) {
    const name = card.getAttribute('data-function');
    const host = (k) => card.querySelector(`[data-chart="${k}"]`);
    fnCharts.set(name, {
      inv: liveChart(host('inv'), {
        series: [
          { label: 'invocations/s', color: COLORS.blue },
          { label: 'errors/s', color: COLORS.red },
          { label: 'throttles/s', color: COLORS.amber, fill: false },
        ],
        minMax: 1,
      }),
      lat: liveChart(host('lat'), {
        series: [
          { label: 'p50', color: COLORS.green, fill: false },
          { label: 'p90', color: COLORS.amber, fill: false },
          { label: 'p99', color: COLORS.violet },
        ],
        yFmt: (v) => fmtMs(v).replace(' ms', 'ms').replace(' s', 's'),
        minMax: 1,
      }),
      conc: liveChart(host('conc'), {
        series: [
          { label: 'running', color: COLORS.teal },
          { label: 'cold starts', color: COLORS.orange, bars: true, fmt: (v) => fmtInt(v) },
        ],
        yFmt: (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)),
        minMax: 2,
      }),
    });
  }
}

function applyDetailMode() {
  const list = $('#fn-list');
  const crumbs = $('#fn-crumbs');
  const cards = $$('.fn-card', list);
  let found = false;
  for (const c of cards) {
    const show = !fnDetail || c.getAttribute('data-function') === fnDetail;
    c.hidden = !show;
    c.classList.toggle('is-detail', !!fnDetail && show);
    if (fnDetail && show) found = true;
    const extra = c.querySelector('.fn-extra');
    if (extra) extra.hidden = !(fnDetail && show);
    const details = c.querySelector('.fn-details-link');
    if (details) details.hidden = !!fnDetail;
  }
  $('#fn-title').textContent = fnDetail ? fnDetail : 'Functions';
  crumbs.hidden = !fnDetail;
  $('#fn-lede').hidden = !!fnDetail;
  const missing = $('#fn-missing');
  if (fnDetail && !found && cards.length) {
    missing.hidden = false;
    setHTML(missing, html`<div class="empty-title">No function named “${fnDetail}”</div><p>This stack has ${functionNames().join(', ') || 'no functions'}. <a href="#/functions">Show all functions</a>.</p>`);
  } else missing.hidden = true;
}

function renderFnExtra(name) {
  const card = $(`.fn-card[data-function="${cssEscape(name)}"]`);
  if (!card) return;
  const extra = card.querySelector('.fn-extra');
  const n = fnNode(name);
  const d = (n && n.detail) || {};
  const logs = state.logs.filter((e) => String(e.source) === name).slice(-14);
  const traces = state.traces.filter((t) => Array.isArray(t.services) && t.services.includes(`function:${name}`)).slice(0, 8);
  const inEdges = ((state.stack && state.stack.edges) || []).filter((e) => e && e.to === `function:${name}`);
  const outEdges = ((state.stack && state.stack.edges) || []).filter((e) => e && e.from === `function:${name}`);
  setHTML(
    extra,
    html`<div class="fn-extra-grid">
      <section>
        <h3>Configuration</h3>
        <dl class="kv">
          ${Object.entries(d).map(([k, v]) => html`<dt>${k.replace(/_/g, ' ')}</dt><dd>${v === null || v === undefined ? html`<span class="muted">—</span>` : typeof v === 'object' ? JSON.stringify(v) : String(v)}</dd>`)}
          <dt>triggered by</dt><dd>${inEdges.length ? inEdges.map((e, i) => html`${i ? ', ' : ''}<code>${e.from}</code>${e.label ? html` <span class="muted">(${e.label})</span>` : ''}`) : html`<span class="muted">direct invokes only</span>`}</dd>
          <dt>sends to</dt><dd>${outEdges.length ? outEdges.map((e, i) => html`${i ? ', ' : ''}<code>${e.to}</code>${e.label ? html` <span class="muted">(${e.label})</span>` : ''}`) : html`<span class="muted">—</span>`}</dd>
        </dl>
      </section>
      <section>
        <h3>Recent traces</h3>
        ${traces.length
          ? html`<ul class="mini-list">${traces.map((t) => html`<li><a href="#/traces/${encodeURIComponent(t.trace_id)}">${t.name || t.trace_id}</a> <span class="muted">${fmtMs(Number(t.duration_ms))} · ${fmtAgo(Number(t.start_us) / 1000)}</span>${t.error ? html` <span class="badge badge-alarm">error</span>` : ''}</li>`)}</ul>`
          : html`<p class="muted">No traces through ${name} yet — invoke it, or send a request to an API that routes to it.</p>`}
      </section>
      <section class="span-2">
        <h3>Recent log lines <a class="small" href="#/logs/${encodeURIComponent(name)}">open in Logs →</a></h3>
        ${logs.length
          ? html`<div class="mini-log">${logs.map((e) => html`<div class="log-line ${e.kind === 'platform' ? 'is-platform' : ''}"><span class="log-time">${fmtClock(Number(e.time_ms), true)}</span><span class="log-msg">${String(e.message ?? '')}</span></div>`)}</div>`
          : html`<p class="muted">Nothing logged by ${name} since this page opened. Invoke it: <code>nimbus invoke ${name} --payload '{}'</code></p>`}
      </section>
    </div>`,
  );
}

function updateFunctions() {
  buildFunctions();
  applyDetailMode();
  const snap = state.metrics.latest;
  const m = state.metrics;
  for (const [name, charts] of fnCharts) {
    const card = $(`.fn-card[data-function="${cssEscape(name)}"]`);
    if (!card || card.hidden) continue;
    const sel = { function: name };
    const set = (key, text, tone) => {
      const el = card.querySelector(`[data-total="${key}"]`);
      if (!el) return;
      if (el.textContent !== text) el.textContent = text;
      el.dataset.tone = tone || '';
    };
    if (snap) {
      const inv = snap.sum('nimbus_lambda_invocations_total', sel) ?? 0;
      const err = snap.sum('nimbus_lambda_errors_total', sel) ?? 0;
      const thr = snap.sum('nimbus_lambda_throttles_total', sel) ?? 0;
      const cold = snap.sum('nimbus_lambda_cold_starts_total', sel) ?? 0;
      const run = snap.sum('nimbus_lambda_concurrent_executions', sel) ?? 0;
      const p50 = m.quantile(0.5, 'nimbus_lambda_duration_seconds', sel);
      const p99 = m.quantile(0.99, 'nimbus_lambda_duration_seconds', sel);
      set('invocations', fmtInt(inv));
      set('errors', fmtInt(err), err ? 'danger' : '');
      set('throttles', fmtInt(thr), thr ? 'warn' : '');
      set('cold_starts', fmtInt(cold));
      set('running', fmtInt(run), run ? 'active' : '');
      set('p50', p50 === null ? '–' : fmtMs(p50 * 1000));
      set('p99', p99 === null ? '–' : fmtMs(p99 * 1000));
    }
    const s = state.fnSeries.get(name);
    if (s) {
      charts.inv.setData(s.xs, s.inv, s.err, s.thr);
      charts.lat.setData(s.xs, s.p50, s.p90, s.p99);
      charts.conc.setData(s.xs, s.conc, s.cold);
    }
  }
  if (fnDetail) renderFnExtra(fnDetail);
}

export const functionsView = {
  init() {},
  show(arg) {
    fnDetail = arg || null;
    updateFunctions();
    for (const c of fnCharts.values()) Object.values(c).forEach((ch) => ch.resize());
  },
  update: updateFunctions,
  hide() {},
};

// ================================================================= Queues

const qCharts = new Map();
let qSig = '';

function queueNode(name) {
  return stackNodes('queue').find((n) => String(n.name) === name) || null;
}

function buildQueues() {
  const names = queueNames();
  const sig = names.join('\u0000') + '|' + state.stackVersion;
  if (sig === qSig) return;
  qSig = sig;
  qCharts.clear();
  const host = $('#queue-table');
  if (!names.length) {
    setHTML(
      host,
      html`<div class="empty"><div class="empty-title">No queues</div><p>Declare an <code>AWS::SQS::Queue</code> in the template, or create one with <code>aws sqs create-queue --queue-name jobs --endpoint-url ${(state.stack && state.stack.endpoint) || location.origin}</code>; its depth shows up here.</p></div>`,
    );
    return;
  }
  const edges = (state.stack && state.stack.edges) || [];
  const dlqTargets = new Map();
  for (const n of stackNodes('queue')) if (n.detail && n.detail.dead_letter) dlqTargets.set(String(n.detail.dead_letter), n.name);
  for (const e of edges) if (e && e.kind === 'redrive') dlqTargets.set(String(e.to), String(e.from).replace(/^queue:/, ''));
  const rows = names.map((name) => {
    const n = queueNode(name);
    const d = (n && n.detail) || {};
    const id = `queue:${name}`;
    const from = edges.filter((e) => e && e.to === id && e.kind !== 'redrive').map((e) => String(e.from).replace(/^[a-z-]+:/, ''));
    const to = edges.filter((e) => e && e.from === id && e.kind !== 'redrive').map((e) => String(e.to).replace(/^[a-z-]+:/, ''));
    const isDlq = dlqTargets.has(id);
    const badges = [];
    if (d.fifo) badges.push(html`<span class="chip">FIFO</span>`);
    if (isDlq) badges.push(html`<span class="chip chip-warn">dead-letter queue of ${dlqTargets.get(id)}</span>`);
    if (d.dead_letter) badges.push(html`<span class="chip chip-muted">DLQ: ${String(d.dead_letter).replace(/^queue:/, '')}</span>`);
    if (!n) badges.push(html`<span class="chip chip-muted">created by a client</span>`);
    return html`<tr data-queue="${name}" class="${isDlq ? 'is-dlq' : ''}">
      <td class="q-name"><div class="with-glyph">${kindGlyph('queue', 18)}<strong>${name}</strong></div><div class="q-badges">${badges}</div>
        ${from.length || to.length ? html`<div class="q-flow muted small">${from.length ? html`from ${from.join(', ')}` : ''}${from.length && to.length ? ' · ' : ''}${to.length ? html`to ${to.join(', ')}` : ''}</div>` : ''}</td>
      <td class="num" data-q="visible">–</td>
      <td class="num" data-q="inflight">–</td>
      <td class="num" data-q="delayed">–</td>
      <td class="num" data-q="age">–</td>
      <td class="q-spark"><div class="spark-host"></div></td>
    </tr>`;
  });
  setHTML(
    host,
    html`<table class="table">
      <thead><tr><th>Queue</th><th class="num" title="ApproximateNumberOfMessages">Visible</th><th class="num" title="ApproximateNumberOfMessagesNotVisible">In flight</th><th class="num" title="ApproximateNumberOfMessagesDelayed">Delayed</th><th class="num">Oldest message</th><th>Depth, since this page opened</th></tr></thead>
      <tbody>${rows}</tbody>
    </table>`,
  );
  for (const tr of $$('tr[data-queue]', host)) {
    qCharts.set(
      tr.getAttribute('data-queue'),
      liveChart(tr.querySelector('.spark-host'), {
        series: [
          { label: 'visible', color: COLORS.blue },
          { label: 'in flight', color: COLORS.violet },
        ],
        height: 40,
        spark: true,
        minMax: 1,
      }),
    );
  }
}

function updateQueues() {
  buildQueues();
  const snap = state.metrics.latest;
  for (const tr of $$('#queue-table tr[data-queue]')) {
    const name = tr.getAttribute('data-queue');
    const sel = { queue: name };
    const get = (metric) => (snap ? snap.sum(metric, sel) : null);
    const vis = get('nimbus_sqs_messages_visible');
    const set = (k, text, tone) => {
      const el = tr.querySelector(`[data-q="${k}"]`);
      if (el.textContent !== text) el.textContent = text;
      el.dataset.tone = tone || '';
    };
    const isDlq = tr.classList.contains('is-dlq');
    set('visible', fmtInt(vis), vis ? (isDlq ? 'danger' : 'strong') : '');
    set('inflight', fmtInt(get('nimbus_sqs_messages_in_flight')));
    set('delayed', fmtInt(get('nimbus_sqs_messages_delayed')));
    const age = get('nimbus_sqs_oldest_message_age_seconds');
    set('age', vis || age ? fmtAge(age) : '—');
    const s = state.queueSeries.get(name);
    const ch = qCharts.get(name);
    if (s && ch) ch.setData(s.xs, s.visible, s.inflight);
  }
}

export const queuesView = {
  init() {},
  show() {
    updateQueues();
    for (const c of qCharts.values()) c.resize();
  },
  update: updateQueues,
  hide() {},
};

// ================================================================= Alarms

const OPS = {
  GreaterThanOrEqualToThreshold: '≥',
  GreaterThanThreshold: '>',
  LessThanThreshold: '<',
  LessThanOrEqualToThreshold: '≤',
};

export function stateBadge(s) {
  const st = String(s || 'INSUFFICIENT_DATA');
  const cls = st === 'OK' ? 'badge-ok' : st === 'ALARM' ? 'badge-alarm' : 'badge-unknown';
  const text = st === 'INSUFFICIENT_DATA' ? 'INSUFFICIENT DATA' : st;
  return html`<span class="badge ${cls}" data-state="${st}">${text}</span>`;
}

let alarmSig = '';

function fmtPeriod(s) {
  if (!isFinite(s) || s <= 0) return '?';
  if (s % 86400 === 0) return `${s / 86400} d`;
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

function renderAlarms() {
  const host = $('#alarm-table');
  if (!state.alarmsLoaded) {
    if (!host.dataset.rendered) setHTML(host, html`<div class="empty"><div class="empty-title">Loading alarms…</div></div>`);
    return;
  }
  const sig = JSON.stringify(state.alarms);
  if (sig === alarmSig) {
    for (const el of $$('[data-ago]', host)) el.textContent = fmtAgo(Number(el.getAttribute('data-ago')));
    return;
  }
  alarmSig = sig;
  host.dataset.rendered = '1';
  const open = new Set($$('tr[data-alarm] details[open]', host).map((d) => d.closest('tr').getAttribute('data-alarm')));
  if (!state.alarms.length) {
    setHTML(
      host,
      html`<div class="empty"><div class="empty-title">No alarms in this template</div><p>Add an <code>AWS::CloudWatch::Alarm</code> resource (for example on <code>AWS/Lambda</code> <code>Errors</code> with a <code>FunctionName</code> dimension) and restart <code>nimbus up</code>. nimbus evaluates it against its own metrics and shows its state here: <span class="badge badge-ok">OK</span> <span class="badge badge-alarm">ALARM</span> <span class="badge badge-unknown">INSUFFICIENT DATA</span></p></div>`,
    );
    return;
  }
  const order = { ALARM: 0, INSUFFICIENT_DATA: 1, OK: 2 };
  const alarms = [...state.alarms].sort((a, b) => (order[a.state] ?? 1) - (order[b.state] ?? 1) || String(a.name).localeCompare(String(b.name)));
  setHTML(
    host,
    html`<table class="table alarms">
      <thead><tr><th>State</th><th>Alarm</th><th>Metric</th><th>Condition</th><th>Reason</th><th>Last change</th></tr></thead>
      <tbody>${alarms.map((a) => {
        const dims = a.dimensions && typeof a.dimensions === 'object' ? Object.entries(a.dimensions) : [];
        const op = OPS[a.comparison] || a.comparison || '';
        const period = Number(a.period_s);
        const evals = Number(a.evaluation_periods) || 1;
        const hist = Array.isArray(a.history) ? [...a.history].sort((x, y) => Number(y.time_ms) - Number(x.time_ms)) : [];
        return html`<tr data-alarm="${a.name}" class="state-${String(a.state || '').toLowerCase()}">
          <td>${stateBadge(a.state)}</td>
          <td><strong>${a.name}</strong></td>
          <td><div>${a.namespace ? html`<span class="muted">${a.namespace} / </span>` : ''}${a.metric}</div>${dims.length ? html`<div class="dims">${dims.map(([k, v]) => html`<span class="chip chip-muted">${k}=${String(v)}</span>`)}</div>` : ''}</td>
          <td><code>${a.statistic || ''} ${op} ${a.threshold ?? ''}</code><div class="muted small">${evals === 1 ? html`over 1 period of ${fmtPeriod(period)}` : html`over ${evals} periods of ${fmtPeriod(period)}`}</div></td>
          <td class="reason">${a.reason || html`<span class="muted">—</span>`}
            ${hist.length ? html`<details ${open.has(String(a.name)) ? 'open' : ''}><summary>History (${hist.length})</summary><ol class="history">${hist.slice(0, 20).map((h) => html`<li><span class="muted">${fmtDateTime(Number(h.time_ms))}</span> ${stateBadge(h.from)} → ${stateBadge(h.to)}${h.reason ? html`<div class="small muted">${h.reason}</div>` : ''}</li>`)}</ol></details>` : ''}</td>
          <td class="nowrap">${isFinite(Number(a.updated_ms)) && a.updated_ms ? html`<span data-ago="${Number(a.updated_ms)}" title="${fmtDateTime(Number(a.updated_ms))}">${fmtAgo(Number(a.updated_ms))}</span>` : html`<span class="muted">never</span>`}</td>
        </tr>`;
      })}</tbody>
    </table>`,
  );
}

export const alarmsView = {
  init() {},
  show: renderAlarms,
  update: renderAlarms,
  hide() {},
};


// ================================================================= State machines
//
// Read from the Step Functions API (AWS JSON 1.0) on nimbus's endpoint, like any SDK would:
// ListStateMachines (polled by app.js), DescribeStateMachine, ListExecutions, DescribeExecution
// and GetExecutionHistory. Read-only. Routes: #/statemachines, #/statemachines/<name>,
// #/statemachines/<name>/<execution ARN>.

const SM_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
const SM_F_NAME = `650 13px ${SM_FONT}`;
const SM_F_SUB = `400 11px ${SM_FONT}`;
const SM_F_LABEL = `600 10.5px ${SM_FONT}`;
const SM_W_MIN = 136;
const SM_W_MAX = 236;
const SM_H = 50; // a state's box
const SM_GX = 34; // between states of a layer
const SM_GY = 50; // between layers
const SM_HEAD = 42; // a Parallel / Map group's title
const SM_PAD = 14; // inside a group
const SM_MARK_W = 64;
const SM_MARK_H = 26;
const SM_MARGIN = 24;
const SEP = '\u0000';
const START = '\u0001start';
const END = '\u0001end';
const DEF_REFRESH_MS = 15000;
const HISTORY_MAX = 1000;
const ROWS_MAX = 400;
const JSON_INLINE = 52;
const JSON_LIMIT = 20000;

const TYPE_COLOR = {
  Task: '#ea580c',
  Pass: '#64748b',
  Choice: '#7c3aed',
  Wait: '#d97706',
  Succeed: '#059669',
  Fail: '#dc2626',
  Parallel: '#0d9488',
  Map: '#2563eb',
};

let smName = null; // machine shown, or null for the list
let smExecArn = null; // execution shown on the graph, or null
let smDef = null; // {arn, text, machine, error, at}
let smExecs = null; // {arn, list, express, error}
let smExec = null; // {arn, describe, events, more, missing, error}
const smBusy = { def: false, execs: false, exec: false };
const smSig = { list: '', skel: '', graph: '', execs: '', exec: '' };
const smFull = new Map(); // key -> full text of a truncated JSON value ("Show all")

function smMachine(name) {
  return state.machines.find((m) => String(m.name) === name) || null;
}

function smHash(name, execArn) {
  return '#/statemachines/' + encodeURIComponent(name) + (execArn ? '/' + encodeURIComponent(execArn) : '');
}

/** Epoch seconds (AWS JSON) to milliseconds; NaN when absent. */
const secMs = (v) => (v === null || v === undefined || v === '' ? NaN : Number(v) * 1000);

export function execBadge(status) {
  const st = String(status || 'UNKNOWN');
  const cls = st === 'SUCCEEDED' ? 'badge-ok' : st === 'RUNNING' ? 'badge-running' : ['FAILED', 'TIMED_OUT', 'ABORTED'].includes(st) ? 'badge-alarm' : 'badge-unknown';
  return html`<span class="badge ${cls}" data-status="${st}">${st.replace(/_/g, ' ')}</span>`;
}

function smDuration(startMs, stopMs) {
  if (!isFinite(startMs)) return '–';
  const end = isFinite(stopMs) ? stopMs : Date.now();
  return fmtMs(Math.max(0, end - startMs));
}

function smCmdEndpoint() {
  return (state.stack && state.stack.endpoint) || location.origin;
}

// ---------------------------------------------------------------- JSON values

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** A JSON (or plain) text: inline when short, else a collapsed one-line preview that opens to the pretty-printed value. */
function jsonBlock(text, key, open, inline = JSON_INLINE) {
  if (text === null || text === undefined) return html`<span class="muted">—</span>`;
  const s = String(text);
  let compact = s;
  let pretty = s;
  try {
    const v = JSON.parse(s);
    compact = JSON.stringify(v);
    pretty = JSON.stringify(v, null, 2);
  } catch (e) {
    /* not JSON: shown as text */
  }
  if (compact.length <= inline && !compact.includes('\n')) return html`<code class="json-inline">${compact}</code>`;
  const cut = pretty.length > JSON_LIMIT;
  if (cut) smFull.set(key, pretty);
  return html`<details class="json" data-key="${key}" ${open.has(key) ? 'open' : ''}>
    <summary><code>${trunc(compact.replace(/\s+/g, ' '), inline)}</code><span class="json-size">${fmtBytes(s.length)}</span></summary>
    <pre>${cut ? pretty.slice(0, JSON_LIMIT) : pretty}</pre>
    ${cut ? html`<button class="btn-ghost json-all" type="button" data-full="${key}">Show all ${fmtInt(pretty.length)} characters</button>` : ''}
  </details>`;
}

function openKeys(host) {
  return new Set($$('details.json[open]', host).map((d) => d.getAttribute('data-key')));
}

function wireJson(host) {
  for (const b of $$('button[data-full]', host)) {
    b.addEventListener('click', () => {
      const pre = b.parentElement && b.parentElement.querySelector('pre');
      const full = smFull.get(b.getAttribute('data-full'));
      if (pre && full !== undefined) pre.textContent = full; // text, never markup
      b.remove();
    });
  }
}

// ---------------------------------------------------------------- list

function renderSmList() {
  const host = $('#sm-list');
  if (!state.machinesLoaded) {
    if (!host.dataset.rendered) setHTML(host, html`<div class="empty"><div class="empty-title">Loading state machines…</div></div>`);
    return;
  }
  const machines = [...state.machines].sort((a, b) => String(a.name).localeCompare(String(b.name)));
  const sig = JSON.stringify(machines);
  if (sig === smSig.list) {
    for (const el of $$('[data-ago]', host)) el.textContent = fmtAgo(Number(el.getAttribute('data-ago')));
    return;
  }
  smSig.list = sig;
  host.dataset.rendered = '1';
  if (!machines.length) {
    setHTML(
      host,
      html`<div class="empty"><div class="empty-title">No state machines</div>
        <p>Declare an <code>AWS::Serverless::StateMachine</code> (or <code>AWS::StepFunctions::StateMachine</code>) in the template and restart <code>nimbus up</code>, or create one with <code>aws stepfunctions create-state-machine --endpoint-url ${smCmdEndpoint()}</code>. Each one is listed here with its definition drawn as a graph and its executions.</p></div>`,
    );
    return;
  }
  setHTML(
    host,
    html`<table class="table sm-table">
      <thead><tr><th>State machine</th><th>Type</th><th>Created</th></tr></thead>
      <tbody>${machines.map((m) => {
        const created = secMs(m.creationDate);
        const express = String(m.type) === 'EXPRESS';
        return html`<tr class="clickable" data-machine="${m.name}" tabindex="0">
          <td><div class="with-glyph">${smGlyph(20)}<a class="trace-name" href="${smHash(String(m.name))}">${m.name}</a></div><div class="mono muted small sm-arn">${m.stateMachineArn}</div></td>
          <td><span class="chip ${express ? 'chip-warn' : 'chip-info'}">${m.type || '?'}</span></td>
          <td class="nowrap"><div>${fmtDateTime(created)}</div><div class="muted small" data-ago="${created}">${fmtAgo(created)}</div></td>
        </tr>`;
      })}</tbody>
    </table>`,
  );
  for (const tr of $$('tr[data-machine]', host)) {
    const open = (ev) => {
      if (ev && ev.target && ev.target.closest('a')) return;
      location.hash = smHash(tr.getAttribute('data-machine'));
    };
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') open();
    });
  }
}

function smGlyph(size) {
  return raw(
    `<svg class="kind-glyph" width="${size}" height="${size}" viewBox="0 0 22 22" aria-hidden="true"><rect width="22" height="22" rx="5" fill="#be185d"/><rect x="8" y="3.5" width="6" height="4" rx="1" fill="#fff"/><rect x="3.5" y="14.5" width="6" height="4" rx="1" fill="#fff"/><rect x="12.5" y="14.5" width="6" height="4" rx="1" fill="#fff"/><path d="M11 7.5v3.5M6.5 14.5V11h9v3.5" fill="none" stroke="#fff" stroke-width="1.4"/></svg>`,
  );
}

// ---------------------------------------------------------------- definition graph

const validMachine = (m) => m && typeof m === 'object' && m.States && typeof m.States === 'object' && !Array.isArray(m.States);

/** A state's outgoing transitions, one per target (kinds merged): [{to, kinds}]. */
function smEdgesOf(st) {
  const byTo = new Map();
  const add = (to, kind) => {
    if (typeof to !== 'string') return;
    if (!byTo.has(to)) byTo.set(to, new Set());
    byTo.get(to).add(kind);
  };
  if (st && typeof st === 'object') {
    add(st.Next, 'next');
    if (Array.isArray(st.Choices)) for (const c of st.Choices) add(c && c.Next, 'choice');
    add(st.Default, 'default');
    if (Array.isArray(st.Catch)) for (const c of st.Catch) add(c && c.Next, 'catch');
  }
  return [...byTo].map(([to, kinds]) => ({ to, kinds }));
}

const isTerminal = (st) => !!st && (st.End === true || st.Type === 'Succeed' || st.Type === 'Fail');

function subMachines(st) {
  if (!st || typeof st !== 'object') return [];
  if (st.Type === 'Parallel' && Array.isArray(st.Branches)) return st.Branches.filter(validMachine);
  if (st.Type === 'Map') {
    const p = st.ItemProcessor || st.Iterator;
    return validMachine(p) ? [p] : [];
  }
  return [];
}

function subtitle(st) {
  const type = String((st && st.Type) || '?');
  if (type === 'Task' && typeof st.Resource === 'string') {
    const r = st.Resource;
    const fn = st.Parameters && typeof st.Parameters === 'object' && (st.Parameters.FunctionName || st.Parameters['FunctionName.$']);
    if (/^arn:aws:states:::/.test(r)) return `Task · ${r.replace(/^arn:aws:states:::/, '')}${fn ? ' ' + String(fn).split(':').pop() : ''}`;
    if (/:function:/.test(r)) return `Task · λ ${r.split(':function:')[1].split(':')[0]}`;
    return 'Task';
  }
  if (type === 'Wait') {
    if (st.Seconds !== undefined) return `Wait · ${st.Seconds} s`;
    return 'Wait';
  }
  if (type === 'Parallel') return `Parallel · ${subMachines(st).length} branches`;
  if (type === 'Map') return 'Map · each item';
  return type;
}

/**
 * Layered layout of one (sub)machine: a state's layer is its BFS depth from StartAt (states it
 * cannot reach go in a last layer); states of a layer side by side, ordered by the mean x of
 * their predecessors. Parallel and Map states are groups holding their branches' layouts.
 * Coordinates are relative to the (sub)machine's top left.
 */
function layoutMachine(m, top) {
  const states = m.States;
  const names = Object.keys(states);
  const depth = new Map();
  const order = [];
  if (states[m.StartAt]) {
    depth.set(m.StartAt, 0);
    const q = [m.StartAt];
    while (q.length) {
      const u = q.shift();
      order.push(u);
      for (const e of smEdgesOf(states[u])) {
        if (Object.prototype.hasOwnProperty.call(states, e.to) && !depth.has(e.to)) {
          depth.set(e.to, depth.get(u) + 1);
          q.push(e.to);
        }
      }
    }
  }
  const lastDepth = order.length ? Math.max(...order.map((n) => depth.get(n))) : -1;
  for (const n of names) {
    if (!depth.has(n)) {
      depth.set(n, lastDepth + 1);
      order.push(n);
    }
  }
  const nodes = new Map();
  for (const n of order) nodes.set(n, sizeState(n, states[n]));
  const layers = [];
  for (const n of order) (layers[depth.get(n)] = layers[depth.get(n)] || []).push(n);
  const preds = new Map(names.map((n) => [n, []]));
  for (const u of names) for (const e of smEdgesOf(states[u])) if (preds.has(e.to) && depth.get(u) < depth.get(e.to)) preds.get(e.to).push(u);

  // x relative to the centre line, layer by layer
  let minX = 0;
  let maxX = 0;
  const layerH = [];
  layers.forEach((L, li) => {
    if (li > 0) {
      const key = new Map(
        L.map((n, i) => {
          const ps = preds.get(n).filter((p) => nodes.get(p).cx !== undefined);
          return [n, [ps.length ? ps.reduce((a, p) => a + nodes.get(p).cx, 0) / ps.length : Infinity, i]];
        }),
      );
      L.sort((a, b) => key.get(a)[0] - key.get(b)[0] || key.get(a)[1] - key.get(b)[1]);
    }
    const width = L.reduce((a, n) => a + nodes.get(n).w, 0) + SM_GX * (L.length - 1);
    let x = -width / 2;
    for (const n of L) {
      const b = nodes.get(n);
      b.x = x;
      b.cx = x + b.w / 2;
      x += b.w + SM_GX;
    }
    minX = Math.min(minX, -width / 2);
    maxX = Math.max(maxX, width / 2);
    layerH.push(Math.max(...L.map((n) => nodes.get(n).h)));
  });
  const head = top ? SM_MARK_H + SM_GY * 0.7 : 0;
  let y = head;
  layers.forEach((L, li) => {
    for (const n of L) nodes.get(n).y = y;
    y += layerH[li] + (li < layers.length - 1 ? SM_GY : 0);
  });
  const width = Math.max(maxX - minX, top ? SM_MARK_W : 0);
  for (const b of nodes.values()) {
    b.x -= minX - (width - (maxX - minX)) / 2;
    b.cx = b.x + b.w / 2;
  }
  const height = y + (top ? SM_GY * 0.7 + SM_MARK_H : 0);
  return { machine: m, top, nodes, depth, width, height };
}

function sizeState(name, st) {
  const sub = subtitle(st);
  const textW = Math.max(textWidth(name, SM_F_NAME), textWidth(sub, SM_F_SUB) + 12) + 28;
  const w = Math.round(Math.min(SM_W_MAX, Math.max(SM_W_MIN, textW)));
  const kids = subMachines(st).map((m) => layoutMachine(m, false));
  if (!kids.length) return { name, st, sub, w, h: SM_H, kids };
  const innerW = kids.reduce((a, k) => a + k.width, 0) + SM_GX * (kids.length - 1);
  const innerH = Math.max(...kids.map((k) => k.height));
  const gw = Math.max(w + 40, innerW + 2 * SM_PAD);
  let kx = (gw - innerW) / 2;
  for (const k of kids) {
    k.ox = kx;
    k.oy = SM_HEAD + (innerH - k.height) / 2;
    kx += k.width + SM_GX;
  }
  return { name, st, sub, w: Math.round(gw), h: Math.round(SM_HEAD + innerH + SM_PAD), kids, group: true };
}

const f1 = (v) => (Math.round(v * 10) / 10).toString();

function bezierMid(p) {
  // the point at t = 0.5 of a cubic Bézier [x0,y0,x1,y1,x2,y2,x3,y3]
  return [(p[0] + 3 * p[2] + 3 * p[4] + p[6]) / 8, (p[1] + 3 * p[3] + 3 * p[5] + p[7]) / 8];
}

/** Draws a laid-out (sub)machine at (ox, oy) into ctx's layers (groups, edges, nodes, labels). */
function drawMachine(L, ox, oy, ctx) {
  const states = L.machine.States;
  const abs = (b) => ({ x: ox + b.x, y: oy + b.y, w: b.w, h: b.h, cx: ox + b.x + b.w / 2, cy: oy + b.y + b.h / 2 });
  const edgeKey = (a, b) => a + SEP + b;

  // pts: one cubic [x0,y0,x1,y1,x2,y2,x3,y3]; or {d, at: [x, y]} for a routed path
  const edge = (pts, kinds, from, to) => {
    const catchOnly = kinds.size === 1 && kinds.has('catch');
    const label = [...kinds].filter((k) => k !== 'next').join(' · ');
    const taken = ctx.taken.has(edgeKey(from, to));
    const failed = taken && to === END && ctx.endFailed;
    const cls = `sm-edge${catchOnly ? ' catch' : ''}${taken ? ' taken' : ''}${failed ? ' fail' : ''}`;
    const marker = failed ? 'sm-arrow-fail' : taken ? 'sm-arrow-taken' : catchOnly ? 'sm-arrow-catch' : 'sm-arrow';
    const d = Array.isArray(pts) ? `M${f1(pts[0])} ${f1(pts[1])}C${f1(pts[2])} ${f1(pts[3])} ${f1(pts[4])} ${f1(pts[5])} ${f1(pts[6])} ${f1(pts[7])}` : pts.d;
    ctx.edges.push(`<g class="${cls}" data-from="${esc(from === START ? '' : from)}" data-to="${esc(to === END ? '' : to)}"><path d="${d}" marker-end="url(#${marker})"/></g>`);
    if (label) {
      const [mx, my] = Array.isArray(pts) ? bezierMid(pts) : pts.at;
      const tw = textWidth(label, SM_F_LABEL) + 10;
      ctx.labels.push(
        `<g class="sm-elabel${catchOnly ? ' catch' : ''}${taken ? ' taken' : ''}" transform="translate(${f1(mx - tw / 2)},${f1(my - 8)})"><rect width="${f1(tw)}" height="16" rx="8"/><text x="${f1(tw / 2)}" y="11.5" text-anchor="middle">${esc(label)}</text></g>`,
      );
    }
  };

  /**
   * A forward edge from layer du down to layer dt: a plain S-curve between adjacent layers;
   * over layers in between, straight down (or down a free column beside them when a state is in
   * the way), turning towards the target in the gap just above it.
   */
  const route = (sx, sy, tx, ty, du, dt) => {
    const mids = [...L.nodes.entries()].filter(([n]) => L.depth.get(n) > du && L.depth.get(n) < dt).map(([, b]) => abs(b));
    if (!mids.length) {
      const dy = Math.max(16, (ty - sy) / 2);
      return [sx, sy, sx, sy + dy, tx, ty - dy, tx, ty];
    }
    const yTop = Math.min(...mids.map((m) => m.y));
    const yBot = Math.max(...mids.map((m) => m.y + m.h));
    let col = sx;
    if (mids.some((m) => sx > m.x - 10 && sx < m.x + m.w + 10)) {
      const lane = 22 + 12 * ctx.lanes++;
      const right = Math.max(...mids.map((m) => m.x + m.w)) + lane;
      const left = Math.min(...mids.map((m) => m.x)) - lane;
      col = Math.abs(right - sx) <= Math.abs(sx - left) ? right : left;
      ctx.minX = Math.min(ctx.minX, col);
      ctx.maxX = Math.max(ctx.maxX, col);
    }
    const y1 = (sy + yTop) / 2;
    const y2 = (yBot + ty) / 2;
    return {
      d: `M${f1(sx)} ${f1(sy)}C${f1(sx)} ${f1(y1)} ${f1(col)} ${f1(y1)} ${f1(col)} ${f1(yTop)}L${f1(col)} ${f1(yBot)}C${f1(col)} ${f1(y2)} ${f1(tx)} ${f1(y2)} ${f1(tx)} ${f1(ty)}`,
      at: [(sx + col) / 2, y1],
    };
  };

  for (const [name, b] of L.nodes) {
    const st = states[name];
    const S = abs(b);
    const out = smEdgesOf(st).filter((e) => L.nodes.has(e.to));
    const fwd = out.filter((e) => L.depth.get(e.to) > L.depth.get(name)).sort((a, c) => L.nodes.get(a.to).cx - L.nodes.get(c.to).cx);
    const extra = L.top && isTerminal(st) ? 1 : 0;
    const k = fwd.length + extra;
    const spread = Math.min(18, S.w / (k + 1));
    fwd.forEach((e, i) => {
      const T = abs(L.nodes.get(e.to));
      const sx = S.cx + (i - (k - 1) / 2) * spread;
      edge(route(sx, S.y + S.h, T.cx, T.y - 2, L.depth.get(name), L.depth.get(e.to)), e.kinds, name, e.to);
    });
    let back = 0;
    for (const e of out) {
      if (L.depth.get(e.to) > L.depth.get(name)) continue;
      const T = abs(L.nodes.get(e.to));
      if (L.depth.get(e.to) === L.depth.get(name) && e.to !== name) {
        // sideways, within a layer
        const right = T.cx > S.cx;
        const sx = right ? S.x + S.w : S.x;
        const tx = right ? T.x - 2 : T.x + T.w + 2;
        const dx = (tx - sx) / 2;
        edge([sx, S.cy, sx + dx, S.cy, tx - dx, T.cy, tx, T.cy], e.kinds, name, e.to);
      } else {
        // a loop back up: out of the right side, round, into the target's right side
        const lo = L.depth.get(e.to);
        const hi = L.depth.get(name);
        const span = [...L.nodes.entries()].filter(([n]) => L.depth.get(n) >= lo && L.depth.get(n) <= hi).map(([, nb]) => ox + nb.x + nb.w);
        const bulge = Math.max(S.x + S.w, T.x + T.w, ...span) + 40 + 14 * back++;
        ctx.maxX = Math.max(ctx.maxX, bulge);
        edge([S.x + S.w, S.cy, bulge, S.cy, bulge, T.cy, T.x + T.w + 2, T.cy], e.kinds, name, e.to);
      }
    }
    if (extra) {
      const sx = S.cx + (k - 1 - (k - 1) / 2) * spread;
      edge(route(sx, S.y + S.h, ctx.end.cx, ctx.end.y - 2, L.depth.get(name), Infinity), new Set(['next']), name, END);
    }
  }
  if (L.top && L.nodes.has(L.machine.StartAt)) {
    const T = abs(L.nodes.get(L.machine.StartAt));
    const sy = ctx.start.y + SM_MARK_H;
    const ty = T.y - 2;
    const dy = (ty - sy) / 2;
    edge([ctx.start.cx, sy, ctx.start.cx, sy + dy, T.cx, ty - dy, T.cx, ty], new Set(['next']), START, L.machine.StartAt);
  }

  for (const [name, b] of L.nodes) {
    const S = abs(b);
    const st = states[name];
    const type = String((st && st.Type) || '?');
    const info = ctx.status.get(name);
    const cls = info ? info.status : ctx.hasExec ? 'unvisited' : '';
    const color = TYPE_COLOR[type] || '#64748b';
    const tip = `${name} (${type})${info ? ` — ${info.status}${info.visits > 1 ? `, entered ${info.visits} times` : ''}` : ctx.hasExec ? ' — not visited' : ''}`;
    const count = info && info.visits > 1 ? `<g class="sm-count" transform="translate(${f1(b.w - 12)},-8)"><rect x="-${f1(textWidth('×' + info.visits, SM_F_LABEL) / 2 + 6)}" width="${f1(textWidth('×' + info.visits, SM_F_LABEL) + 12)}" height="16" rx="8"/><text y="11.5" text-anchor="middle">×${info.visits}</text></g>` : '';
    const subText = fitText(b.sub, SM_F_SUB, b.w - 36);
    const subW = textWidth(subText, SM_F_SUB);
    if (b.group) {
      ctx.groups.push(
        `<g class="sm-node sm-group ${cls}" data-state="${esc(name)}" data-type="${esc(type)}" transform="translate(${f1(S.x)},${f1(S.y)})"><title>${esc(tip)}</title>` +
          `<rect class="sm-box" width="${b.w}" height="${b.h}" rx="10"/>` +
          `<text class="sm-name" x="14" y="19">${esc(fitText(name, SM_F_NAME, b.w - 28))}</text>` +
          `<circle cx="18" cy="31" r="3.5" fill="${color}"/><text class="sm-sub" x="26" y="34.5">${esc(subText)}</text>` +
          b.kids
            .slice(1)
            .map((kid) => `<path class="sm-divider" d="M${f1(kid.ox - SM_GX / 2)} ${SM_HEAD}V${f1(b.h - SM_PAD / 2)}"/>`)
            .join('') +
          `${count}</g>`,
      );
      for (const kid of b.kids) drawMachine(kid, S.x + kid.ox, S.y + kid.oy, ctx);
    } else {
      const tx = b.w / 2 - (subW + 11) / 2;
      ctx.nodes.push(
        `<g class="sm-node ${cls}" data-state="${esc(name)}" data-type="${esc(type)}" transform="translate(${f1(S.x)},${f1(S.y)})" tabindex="0"><title>${esc(tip)}</title>` +
          `<rect class="sm-box" width="${b.w}" height="${b.h}" rx="9"/>` +
          `<text class="sm-name" x="${f1(b.w / 2)}" y="21" text-anchor="middle">${esc(fitText(name, SM_F_NAME, b.w - 20))}</text>` +
          `<circle cx="${f1(tx + 3.5)}" cy="33.5" r="3.5" fill="${color}"/><text class="sm-sub" x="${f1(tx + 11)}" y="37.5">${esc(subText)}</text>` +
          `${count}</g>`,
      );
    }
  }
}

function renderGraphSvg(machine, analysis) {
  const L = layoutMachine(machine, true);
  const pad = SM_MARGIN;
  const ctx = {
    groups: [],
    edges: [],
    nodes: [],
    labels: [],
    maxX: L.width,
    minX: 0,
    lanes: 0,
    status: analysis ? analysis.byName : new Map(),
    taken: analysis ? analysis.taken : new Set(),
    hasExec: !!analysis,
    endFailed: !!analysis && !['RUNNING', 'SUCCEEDED'].includes(analysis.status),
    start: { cx: L.width / 2, y: 0 },
    end: { cx: L.width / 2, y: L.height - SM_MARK_H },
  };
  // terminal states of the top level lead to End once the execution succeeded
  if (analysis && analysis.byName.has(machine.StartAt)) ctx.taken.add(START + SEP + machine.StartAt);
  if (analysis) {
    for (const [name, st] of Object.entries(machine.States)) {
      if (!isTerminal(st)) continue;
      const ended = analysis.status === 'SUCCEEDED' && analysis.exited.has(name);
      const failedHere = st.Type === 'Fail' && analysis.status !== 'RUNNING' && analysis.byName.has(name);
      if (ended || failedHere) ctx.taken.add(name + SEP + END);
    }
  }
  drawMachine(L, 0, 0, ctx);
  const x0 = Math.floor(Math.min(0, ctx.minX - 8)) - pad;
  const W = Math.ceil(Math.max(L.width, ctx.maxX + 8)) + pad - x0;
  const H = Math.ceil(L.height) + 2 * pad;
  const endCls = analysis ? (analysis.status === 'SUCCEEDED' ? 'succeeded' : analysis.status === 'RUNNING' ? 'unvisited' : 'failed') : '';
  const startCls = analysis ? 'succeeded' : '';
  const mark = (cls, x, y, text, id) =>
    `<g class="sm-mark ${cls}" data-mark="${id}" transform="translate(${f1(x - SM_MARK_W / 2)},${f1(y)})"><rect width="${SM_MARK_W}" height="${SM_MARK_H}" rx="${SM_MARK_H / 2}"/><text x="${SM_MARK_W / 2}" y="17.5" text-anchor="middle">${text}</text></g>`;
  const arrow = (id) => `<marker id="${id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z"/></marker>`;
  return (
    `<svg class="sm-svg" width="${W}" height="${H}" viewBox="${x0} ${-pad} ${W} ${H}" role="img" aria-label="Definition of the state machine as a graph">` +
    `<defs>${arrow('sm-arrow')}${arrow('sm-arrow-catch')}${arrow('sm-arrow-taken')}${arrow('sm-arrow-fail')}</defs>` +
    ctx.groups.join('') +
    ctx.edges.join('') +
    mark(startCls, ctx.start.cx, ctx.start.y, 'Start', 'start') +
    mark(endCls, ctx.end.cx, ctx.end.y, 'End', 'end') +
    ctx.nodes.join('') +
    ctx.labels.join('') +
    '</svg>'
  );
}

// ---------------------------------------------------------------- execution history

const FAILURE = /(Failed|TimedOut|Aborted)$/;

function eventDetails(e) {
  for (const k of Object.keys(e)) if (k.endsWith('EventDetails') && e[k] && typeof e[k] === 'object') return e[k];
  return {};
}

/**
 * Replays an execution's history: one entry per state entered (in order), with its input,
 * output, error and how it ended, the transitions taken, and each state's overall status
 * (running before failed before succeeded when a state was entered more than once).
 */
function analyzeHistory(events, describe) {
  const status = String((describe && describe.status) || 'RUNNING');
  const list = [...events].filter((e) => e && typeof e === 'object').sort((a, b) => Number(a.id) - Number(b.id));
  const byId = new Map(list.map((e) => [Number(e.id), e]));
  const owner = new Map(); // event id -> occurrence
  const occ = [];
  const taken = new Set();
  const exited = new Set();
  const movedOn = new Set(); // ids of exit events followed by the next state's entry
  for (const e of list) {
    const t = String(e.type || '');
    const prev = byId.get(Number(e.previousEventId));
    const ts = secMs(e.timestamp);
    if (t.endsWith('StateEntered')) {
      const d = e.stateEnteredEventDetails || {};
      const o = { name: String(d.name ?? '?'), type: t.slice(0, -'StateEntered'.length), start: ts, end: NaN, input: d.input, output: undefined, error: null, cause: null, failed: false, exited: false, recovered: false };
      occ.push(o);
      owner.set(Number(e.id), o);
      if (prev && String(prev.type || '').endsWith('StateExited')) {
        taken.add(String((prev.stateExitedEventDetails || {}).name) + SEP + o.name);
        movedOn.add(Number(prev.id));
      }
      else if (prev && prev.type === 'ExecutionStarted') taken.add(START + SEP + o.name);
      continue;
    }
    const chain = prev ? owner.get(Number(prev.id)) : null;
    if (t.endsWith('StateExited')) {
      const d = e.stateExitedEventDetails || {};
      const name = String(d.name ?? '?');
      let o = chain && chain.name === name && !chain.exited ? chain : null;
      if (!o) for (let i = occ.length - 1; i >= 0; i--) if (occ[i].name === name && !occ[i].exited) { o = occ[i]; break; }
      if (o) {
        o.exited = true;
        o.end = ts;
        o.output = d.output;
        o.exitId = Number(e.id);
        owner.set(Number(e.id), o);
      }
      continue;
    }
    let o = chain && !chain.exited ? chain : null;
    if (!o && !t.startsWith('Execution')) for (let i = occ.length - 1; i >= 0; i--) if (!occ[i].exited) { o = occ[i]; break; }
    if (!o) continue;
    owner.set(Number(e.id), o);
    if (/^Execution(Failed|TimedOut|Aborted)$/.test(t) && !o.error) {
      // the execution stopped in this state (a Fail state, or an uncaught error)
      const d = eventDetails(e);
      o.error = d.error ?? t.replace(/^Execution/, 'Execution ');
      o.cause = d.cause ?? null;
      continue;
    }
    if (t.startsWith('Execution') || t.startsWith('MapIteration')) continue;
    if (t === 'MapRunStarted') {
      // a distributed Map: its items ran as the Map Run's child executions
      o.mapRunArn = String((e.mapRunStartedEventDetails || {}).mapRunArn || '');
      continue;
    }
    if (FAILURE.test(t)) {
      const d = eventDetails(e);
      o.failed = true;
      // MapRunFailed says why; the MapStateFailed after it says nothing more
      if (d.error || !o.error) {
        o.error = d.error ?? t;
        o.cause = d.cause ?? null;
      }
    } else if (/^(Task|LambdaFunction|Activity)Succeeded$/.test(t) && o.failed) {
      o.failed = false; // a retry succeeded
      o.recovered = true;
    }
  }
  // states the execution ended in (exited without entering a next state)
  for (const o of occ) if (o.exited && !movedOn.has(o.exitId)) exited.add(o.name);
  const running = status === 'RUNNING';
  const stopMs = secMs(describe && describe.stopDate);
  for (const o of occ) {
    if (o.exited) o.status = o.failed ? 'failed' : 'succeeded';
    else if (o.type === 'Fail') o.status = 'failed';
    else if (running) o.status = 'running';
    else o.status = status === 'SUCCEEDED' ? 'succeeded' : 'failed';
    if (!o.exited && !running && isFinite(stopMs)) o.end = stopMs;
  }
  const rank = { running: 3, failed: 2, succeeded: 1 };
  const byName = new Map();
  for (const o of occ) {
    const cur = byName.get(o.name);
    if (!cur) byName.set(o.name, { status: o.status, visits: 1 });
    else {
      cur.visits++;
      if (rank[o.status] > rank[cur.status]) cur.status = o.status;
    }
  }
  return { occ, byName, taken, exited, status };
}

// ---------------------------------------------------------------- machine page

function smSkeleton(m) {
  const sig = `${m.stateMachineArn}|${m.type}`;
  if (sig === smSig.skel) return;
  smSig.skel = sig;
  smSig.graph = '';
  smSig.execs = '';
  smSig.exec = '';
  setHTML(
    $('#sm-detail'),
    html`<div class="sm-grid">
      <div class="card sm-graph-card">
        <div class="card-head">
          <h2 id="sm-graph-title">Definition</h2>
          <div class="map-legend" id="sm-legend"></div>
        </div>
        <div class="sm-graph" id="sm-graph"><div class="empty"><div class="empty-title">Loading the definition…</div></div></div>
        <div class="map-foot" id="sm-graph-foot">Parallel branches and Map item processors are drawn inside their state. Pick an execution to see the path it took.</div>
      </div>
      <div class="card sm-execs-card">
        <div class="card-head"><h2>Recent executions</h2><span class="muted small">newest first</span></div>
        <div class="table-card" id="sm-execs"><div class="empty"><div class="empty-title">Loading executions…</div></div></div>
      </div>
    </div>
    <div id="sm-exec"></div>`,
  );
}

function renderSmMeta(m) {
  const meta = $('#sm-meta');
  if (!m) {
    meta.hidden = true;
    return;
  }
  meta.hidden = false;
  const created = secMs(m.creationDate);
  const parsed = smDef && smDef.arn === m.stateMachineArn && smDef.machine ? smDef.machine : null;
  const count = parsed ? countStates(parsed) : null;
  const express = String(m.type) === 'EXPRESS';
  setHTML(
    meta,
    html`<span class="chip ${express ? 'chip-warn' : 'chip-info'}">${m.type || '?'}</span>
      ${count !== null ? html`<span><span class="muted">states</span> <strong>${count}</strong></span>` : ''}
      <span><span class="muted">created</span> ${fmtDateTime(created)}</span>
      <span class="sm-meta-arn"><span class="muted">ARN</span> <code>${m.stateMachineArn}</code></span>`,
  );
}

function countStates(machine) {
  let n = 0;
  for (const st of Object.values(machine.States)) {
    n++;
    for (const sub of subMachines(st)) n += countStates(sub);
  }
  return n;
}

function renderSmGraph() {
  const host = $('#sm-graph');
  if (!host) return;
  const m = smMachine(smName);
  if (!smDef || !m || smDef.arn !== m.stateMachineArn) return;
  const execOk = smExecArn && smExec && smExec.arn === smExecArn && smExec.describe && smExec.events;
  const analysis = execOk ? analyzeHistory(smExec.events, smExec.describe) : null;
  const sig = JSON.stringify([smDef.text, smDef.error, analysis && [...analysis.byName], analysis && [...analysis.taken], analysis && analysis.status]);
  if (sig === smSig.graph) return;
  smSig.graph = sig;
  const title = $('#sm-graph-title');
  const legend = $('#sm-legend');
  if (smDef.error || !smDef.machine) {
    setHTML(host, html`<div class="empty"><div class="empty-title">The definition cannot be drawn</div><p>${smDef.error || 'It has no States.'}</p></div>`);
    return;
  }
  title.textContent = analysis ? `Path of ${smExec.describe.name || 'the execution'}` : 'Definition';
  const key = (cls, text) => html`<span><i class="lg sm-lg ${cls}"></i>${text}</span>`;
  setHTML(
    legend,
    html`${analysis ? html`${key('succeeded', 'succeeded')}${key('failed', 'failed')}${key('running', 'running')}${key('unvisited', 'not visited')}` : ''}
      <span class="lg-line"><svg width="26" height="8"><path d="M1 4h24" stroke="#94a3b8" stroke-width="2"/></svg>next · choice · default</span>
      <span class="lg-line"><svg width="26" height="8"><path d="M1 4h24" stroke="#d97706" stroke-width="2" stroke-dasharray="5 4"/></svg>catch</span>`,
  );
  setHTML(host, raw(renderGraphSvg(smDef.machine, analysis)));
  $('#sm-graph-foot').textContent = analysis
    ? 'States the execution entered are coloured by how they ended (×N: entered N times); its transitions are drawn in blue. Parallel branches and Map item processors are drawn inside their state.'
    : `Parallel branches and Map item processors are drawn inside their state.${String(m.type) === 'EXPRESS' ? '' : ' Pick an execution to see the path it took.'}`;
}

function renderSmExecs() {
  const host = $('#sm-execs');
  if (!host) return;
  const m = smMachine(smName);
  if (!m) return;
  if (String(m.type) === 'EXPRESS') {
    if (smSig.execs === 'express') return;
    smSig.execs = 'express';
    setHTML(
      host,
      html`<div class="empty"><div class="empty-title">Express executions keep no history</div><p>Like AWS, nimbus does not list the executions of an <code>EXPRESS</code> state machine. Run one with <code>aws stepfunctions start-sync-execution</code>: its result comes back in the answer.</p></div>`,
    );
    return;
  }
  if (!smExecs || smExecs.arn !== m.stateMachineArn) return;
  if (smExecs.error) {
    const sig = 'error:' + smExecs.error;
    if (smSig.execs === sig) return;
    smSig.execs = sig;
    setHTML(host, html`<div class="empty"><div class="empty-title">Cannot list executions</div><p>${smExecs.error}</p></div>`);
    return;
  }
  const list = smExecs.list;
  const sig = JSON.stringify([list, smExecArn]);
  if (sig === smSig.execs) {
    for (const el of $$('[data-ago]', host)) el.textContent = fmtAgo(Number(el.getAttribute('data-ago')));
    for (const el of $$('[data-since]', host)) el.textContent = smDuration(Number(el.getAttribute('data-since')), NaN);
    return;
  }
  smSig.execs = sig;
  if (!list.length) {
    setHTML(
      host,
      html`<div class="empty"><div class="empty-title">No executions yet</div><p>Start one:</p><p><code class="cmd">aws stepfunctions start-execution --state-machine-arn ${m.stateMachineArn} --input '{}' --endpoint-url ${smCmdEndpoint()}</code></p></div>`,
    );
    return;
  }
  setHTML(
    host,
    html`<table class="table sm-exec-table">
      <thead><tr><th>Execution</th><th>Status</th><th>Started</th><th class="num">Duration</th></tr></thead>
      <tbody>${list.map((x) => {
        const start = secMs(x.startDate);
        const stop = secMs(x.stopDate);
        const running = String(x.status) === 'RUNNING';
        const selected = x.executionArn === smExecArn;
        return html`<tr class="clickable ${selected ? 'is-selected' : ''} ${['FAILED', 'TIMED_OUT', 'ABORTED'].includes(String(x.status)) ? 'has-error' : ''}" data-exec-arn="${x.executionArn}" tabindex="0">
          <td class="sm-exec-name"><a href="${smHash(smName, x.executionArn)}" title="${x.executionArn}">${x.name}</a></td>
          <td>${execBadge(x.status)}</td>
          <td class="nowrap"><div>${fmtClock(start)}</div><div class="muted small" data-ago="${start}">${fmtAgo(start)}</div></td>
          <td class="num nowrap" ${running ? raw(`data-since="${Number(start)}"`) : ''}>${smDuration(start, running ? NaN : stop)}</td>
        </tr>`;
      })}</tbody>
    </table>
    ${list.length >= 50 ? html`<div class="map-foot">The 50 most recent executions.</div>` : ''}`,
  );
  for (const tr of $$('tr[data-exec-arn]', host)) {
    const open = (ev) => {
      if (ev && ev.target && ev.target.closest('a')) return;
      location.hash = smHash(smName, tr.getAttribute('data-exec-arn'));
    };
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') open();
    });
  }
}

function renderSmExec() {
  const host = $('#sm-exec');
  if (!host) return;
  if (!smExecArn) {
    if (smSig.exec !== 'none') {
      smSig.exec = 'none';
      setHTML(host, '');
    }
    return;
  }
  if (!smExec || smExec.arn !== smExecArn || (!smExec.describe && !smExec.missing && !smExec.error)) {
    if (smSig.exec !== 'loading') {
      smSig.exec = 'loading';
      setHTML(host, html`<div class="card empty sm-exec-card"><div class="empty-title">Loading the execution…</div></div>`);
    }
    return;
  }
  if (smExec.missing || (smExec.error && !smExec.describe)) {
    const sig = 'missing:' + (smExec.error || '');
    if (smSig.exec === sig) return;
    smSig.exec = sig;
    setHTML(
      host,
      html`<div class="card empty sm-exec-card"><div class="empty-title">${smExec.missing ? 'No such execution' : 'Cannot read the execution'}</div><p>${smExec.missing ? html`nimbus does not know <code>${smExecArn}</code>.` : smExec.error} <a href="${smHash(smName)}">Back to the state machine</a>.</p></div>`,
    );
    return;
  }
  const d = smExec.describe;
  const events = smExec.events || [];
  const sig = JSON.stringify([d, events.length, events.length ? events[events.length - 1].id : 0, smExec.more, smExec.runs, smExec.parent]);
  const running = String(d.status) === 'RUNNING';
  if (sig === smSig.exec) {
    if (running) for (const el of $$('[data-since]', host)) el.textContent = smDuration(Number(el.getAttribute('data-since')), NaN);
    return;
  }
  smSig.exec = sig;
  const open = openKeys(host);
  smFull.clear();
  const a = analyzeHistory(events, d);
  const start = secMs(d.startDate);
  const stop = secMs(d.stopDate);
  const rows = a.occ.slice(0, ROWS_MAX);
  const since = (ms) => (isFinite(ms) && isFinite(start) ? '+' + fmtMs(Math.max(0, ms - start)) : '–');
  setHTML(
    host,
    html`<div class="card sm-exec-card" data-exec-status="${d.status}">
      <div class="wf-head">
        <h2 class="wf-title">${d.name || smExecArn} ${execBadge(d.status)}</h2>
        <div class="wf-meta">
          <span><span class="muted">started</span> ${fmtDateTime(start)}</span>
          ${isFinite(stop) ? html`<span><span class="muted">stopped</span> ${fmtDateTime(stop)}</span>` : ''}
          <span><span class="muted">duration</span> <strong ${running ? raw(`data-since="${Number(start)}"`) : ''}>${smDuration(start, running ? NaN : stop)}</strong></span>
          <span><span class="muted">states entered</span> <strong>${a.occ.length}</strong></span>
          <span><span class="muted">events</span> <strong>${events.length}${smExec.more ? '+' : ''}</strong></span>
          ${smExec.parent ? html`<span><span class="muted">a child of</span> <a href="${smHash(smName, smExec.parent)}" data-parent-execution>its parent execution</a></span>` : ''}
        </div>
        <div class="mono muted small">${d.executionArn || smExecArn}</div>
      </div>
      <div class="sm-io">
        <dl class="kv">
          <dt>input</dt><dd>${jsonBlock(d.input, 'exec:in', open, 96)}</dd>
          ${d.output !== undefined && d.output !== null ? html`<dt>output</dt><dd>${jsonBlock(d.output, 'exec:out', open, 96)}</dd>` : ''}
          ${d.error || d.cause ? html`<dt>error</dt><dd><span class="err-text">${d.error || 'error'}</span></dd><dt>cause</dt><dd>${jsonBlock(d.cause, 'exec:cause', open, 96)}</dd>` : ''}
        </dl>
      </div>
      ${rows.length
        ? html`<div class="table-card"><table class="table sm-states" id="sm-states">
          <thead><tr><th class="num">#</th><th>State</th><th>Status</th><th class="num">Entered</th><th class="num">Duration</th><th>Input</th><th>Output / error</th></tr></thead>
          <tbody>${rows.map((o, i) => {
            const ended = o.exited || !running;
            return html`<tr class="${o.status === 'failed' ? 'has-error' : ''}" data-state-row="${o.name}" data-status="${o.status}">
              <td class="num muted">${i + 1}</td>
              <td class="nowrap"><div class="sm-state-name"><i class="sm-dot" style="background:${TYPE_COLOR[o.type] || '#64748b'}"></i><strong>${o.name}</strong></div><div class="muted small">${o.type}</div></td>
              <td><span class="sm-status ${o.status}">${o.status}</span>${o.recovered ? html`<div class="muted small">after a retry</div>` : ''}</td>
              <td class="num nowrap muted">${since(o.start)}</td>
              <td class="num nowrap" ${ended ? '' : raw(`data-since="${Number(o.start)}"`)}>${smDuration(o.start, ended ? o.end : NaN)}</td>
              <td class="sm-json">${jsonBlock(o.input, `${i}:in`, open, 30)}</td>
              <td class="sm-json">${o.error ? html`<div class="sm-err"><span class="err-text">${o.error}</span>${o.cause ? jsonBlock(o.cause, `${i}:cause`, open, 30) : ''}</div>` : ''}${o.exited ? jsonBlock(o.output, `${i}:out`, open, 30) : o.error ? '' : html`<span class="muted">${o.status === 'running' ? 'running…' : '—'}</span>`}</td>
            </tr>`;
          })}</tbody>
        </table></div>
        ${a.occ.length > ROWS_MAX ? html`<div class="map-foot">The first ${ROWS_MAX} of ${a.occ.length} states entered.</div>` : ''}
        ${smExec.more ? html`<div class="map-foot">The history has more than ${HISTORY_MAX} events; the first ${HISTORY_MAX} are shown.</div>` : ''}`
        : html`<div class="empty"><div class="empty-title">No state entered yet</div></div>`}
      ${(smExec.runs || []).map(mapRunCard)}
    </div>`,
  );
  wireJson(host);
}

/** The child executions a Map Run card lists. */
const CHILDREN_MAX = 50;

/** A distributed Map's Map Run: its counts, and links to its child executions. */
function mapRunCard(r) {
  const d = r.describe || {};
  const c = d.executionCounts || {};
  const n = (k) => Number(c[k] || 0);
  return html`<div class="table-card sm-maprun" data-map-run="${r.arn}">
    <div class="wf-meta"><strong>Map Run</strong> ${execBadge(d.status)}
      <span><span class="muted">children</span> <strong>${n('total')}</strong></span>
      <span><span class="muted">succeeded</span> ${n('succeeded')}</span>
      <span><span class="muted">failed</span> ${n('failed') + n('timedOut') + n('aborted')}</span>
      <span><span class="muted">running</span> ${n('running')}</span>
      <span><span class="muted">pending</span> ${n('pending')}</span></div>
    <div class="mono muted small">${r.arn}</div>
    ${r.children.length
      ? html`<table class="table"><thead><tr><th>Child execution</th><th>Status</th><th class="num">Started</th></tr></thead>
        <tbody>${r.children.map((x) => html`<tr data-child-execution="${x.executionArn}"><td class="mono"><a href="${smHash(smName, x.executionArn)}">${x.name}</a></td><td>${execBadge(x.status)}</td><td class="num nowrap muted">${fmtDateTime(secMs(x.startDate))}</td></tr>`)}</tbody></table>`
      : html`<div class="map-foot">${r.error || (n('total') ? 'Express children keep no history: only their counts.' : 'No child execution yet.')}</div>`}
    ${r.children.length >= CHILDREN_MAX ? html`<div class="map-foot">The newest ${CHILDREN_MAX} of ${n('total')} child executions.</div>` : ''}
  </div>`;
}

/** The Map Runs an execution's history names, and the parent of a Map Run's child. */
async function loadRuns(describe, events) {
  const named = (e) => String(((e.type === 'MapRunStarted' ? e.mapRunStartedEventDetails : e.mapRunRedrivenEventDetails) || {}).mapRunArn || '');
  const arns = [...new Set(events.filter((e) => e && (e.type === 'MapRunStarted' || e.type === 'MapRunRedriven')).map(named).filter(Boolean))];
  const runs = await Promise.all(
    arns.slice(0, 10).map(async (arn) => {
      try {
        const [r, c] = await Promise.all([sfnCall('DescribeMapRun', { mapRunArn: arn }), sfnCall('ListExecutions', { mapRunArn: arn, maxResults: CHILDREN_MAX })]);
        return { arn, describe: r, children: Array.isArray(c.executions) ? c.executions : [], error: null };
      } catch (e) {
        return { arn, describe: null, children: [], error: e.message };
      }
    }),
  );
  let parent = null;
  if (describe && describe.mapRunArn) {
    try {
      parent = (await sfnCall('DescribeMapRun', { mapRunArn: describe.mapRunArn })).executionArn || null;
    } catch (_) {
      parent = null;
    }
  }
  return { runs, parent };
}

function renderSmDetail() {
  const m = smMachine(smName);
  if (!m) {
    renderSmMeta(null);
    smSig.skel = '';
    const host = $('#sm-detail');
    setHTML(
      host,
      state.machinesLoaded
        ? html`<div class="card empty"><div class="empty-title">No state machine named “${smName}”</div><p>${state.machines.length ? html`This endpoint has ${state.machines.map((x) => String(x.name)).join(', ')}.` : 'This endpoint has no state machines.'} <a href="#/statemachines">Show all state machines</a>.</p></div>`
        : html`<div class="card empty"><div class="empty-title">Loading state machines…</div></div>`,
    );
    return;
  }
  smSkeleton(m);
  renderSmMeta(m);
  renderSmGraph();
  renderSmExecs();
  renderSmExec();
}

// ---------------------------------------------------------------- loading

function isCurrent(name, execArn) {
  return smName === name && (execArn === undefined || smExecArn === execArn) && !$('#view-statemachines').hidden;
}

async function loadDef(m) {
  if (smBusy.def) return;
  const arn = m.stateMachineArn;
  if (smDef && smDef.arn === arn && Date.now() - smDef.at < DEF_REFRESH_MS) return;
  smBusy.def = true;
  try {
    const d = await sfnCall('DescribeStateMachine', { stateMachineArn: arn });
    const text = String(d.definition || '');
    let machine = null;
    let error = null;
    try {
      const v = JSON.parse(text);
      if (validMachine(v)) machine = v;
      else error = 'The definition has no States object.';
    } catch (e) {
      error = `The definition is not JSON: ${e.message}`;
    }
    smDef = { arn, text, machine, error, at: Date.now() };
  } catch (e) {
    if (!smDef || smDef.arn !== arn) smDef = { arn, text: '', machine: null, error: `DescribeStateMachine failed: ${e.message}`, at: Date.now() };
  } finally {
    smBusy.def = false;
  }
  if (isCurrent(m.name)) {
    renderSmMeta(smMachine(smName));
    renderSmGraph();
  }
}

async function loadExecs(m) {
  if (smBusy.execs || String(m.type) === 'EXPRESS') return; // Express machines answer StateMachineTypeNotSupported
  const arn = m.stateMachineArn;
  smBusy.execs = true;
  try {
    const r = await sfnCall('ListExecutions', { stateMachineArn: arn, maxResults: 50 });
    smExecs = { arn, list: (Array.isArray(r.executions) ? r.executions : []).filter((x) => x && x.executionArn), error: null };
  } catch (e) {
    if (e.code === 'StateMachineTypeNotSupported') smExecs = { arn, list: [], error: 'Express executions keep no history.' };
    else if (!smExecs || smExecs.arn !== arn) smExecs = { arn, list: [], error: e.message };
  } finally {
    smBusy.execs = false;
  }
  if (isCurrent(m.name)) renderSmExecs();
}

async function loadExec(name, arn) {
  if (smBusy.exec) return;
  // a finished execution does not change: read it once
  if (smExec && smExec.arn === arn && (smExec.missing || (smExec.describe && String(smExec.describe.status) !== 'RUNNING' && smExec.events))) return;
  smBusy.exec = true;
  try {
    const [d, h] = await Promise.all([
      sfnCall('DescribeExecution', { executionArn: arn }),
      sfnCall('GetExecutionHistory', { executionArn: arn, maxResults: HISTORY_MAX }),
    ]);
    const events = Array.isArray(h.events) ? h.events : [];
    const { runs, parent } = await loadRuns(d, events);
    smExec = { arn, describe: d, events, more: !!h.nextToken, missing: false, error: null, runs, parent };
  } catch (e) {
    if (e.code === 'ExecutionDoesNotExist' || e.code === 'InvalidArn') smExec = { arn, missing: true, error: null };
    else if (!smExec || smExec.arn !== arn || !smExec.describe) smExec = { arn, describe: null, missing: false, error: e.message };
  } finally {
    smBusy.exec = false;
  }
  if (isCurrent(name, arn)) {
    renderSmExec();
    renderSmGraph();
  }
}

function smShowMode() {
  const detail = !!smName;
  $('#sm-list-wrap').hidden = detail;
  $('#sm-detail').hidden = !detail;
  $('#sm-crumbs').hidden = !detail;
  $('#sm-lede').hidden = detail;
  $('#sm-title').textContent = detail ? smName : 'State machines';
  if (!detail) $('#sm-meta').hidden = true;
}

function updateSm() {
  if (!smName) {
    renderSmList();
    return;
  }
  renderSmDetail();
  const m = smMachine(smName);
  if (!m) return;
  loadDef(m);
  loadExecs(m);
  if (smExecArn) loadExec(smName, smExecArn);
}

export const statemachinesView = {
  init() {},
  show(arg) {
    let name = arg || null;
    let exec = null;
    if (name && name.includes('/')) {
      exec = name.slice(name.indexOf('/') + 1) || null;
      name = name.slice(0, name.indexOf('/'));
    }
    if (name !== smName) {
      smDef = null;
      smExecs = null;
      smSig.skel = '';
    }
    if (name !== smName || exec !== smExecArn) {
      smExec = null;
      smSig.exec = '';
      smSig.graph = '';
      smSig.execs = '';
    }
    smName = name;
    smExecArn = exec;
    smShowMode();
    updateSm();
  },
  update: updateSm,
  hide() {},
};
