// Functions, Queues and Alarms views.

import { state, functionNames, queueNames, stackNodes } from './app.js';
import { $, $$, html, setHTML, cssEscape, fmtInt, fmtMs, fmtAge, fmtAgo, fmtDateTime, fmtClock, liveChart, COLORS } from './util.js';
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

