// Traces: the list of recent traces, and one trace's waterfall.

import { state, getJSON, stackNodes, functionNames } from './app.js';
import { $, $$, html, setHTML, fmtMs, fmtAgo, fmtClock, fmtDateTime, splitId } from './util.js';
import { kindGlyph } from './map.js';

export const SPAN_KINDS = {
  gateway: { color: '#7c3aed', label: 'API Gateway' },
  invoke: { color: '#ea580c', label: 'Lambda invoke' },
  init: { color: '#eab308', label: 'cold start (init)' },
  execution: { color: '#fb923c', label: 'function run' },
  'async-queue': { color: '#94a3b8', label: 'async queue wait' },
  bus: { color: '#db2777', label: 'PutEvents' },
  target: { color: '#0d9488', label: 'rule target' },
  'queue-wait': { color: '#93c5fd', label: 'waiting in SQS' },
  sqs: { color: '#2563eb', label: 'SendMessage' },
};
const OTHER_COLOR = '#64748b';

let listSig = '';
let openId = null; // trace shown in the waterfall
let detail = null; // {trace_id, spans} | {missing: true} | null while loading
let detailSig = '';
let expanded = new Set(); // span ids whose attributes are open
let loading = false;

// ---------------------------------------------------------------- list

function tryCommand() {
  const edges = (state.stack && state.stack.edges) || [];
  for (const api of stackNodes('api')) {
    const url = api.detail && typeof api.detail.url === 'string' ? api.detail.url.replace(/\/$/, '') : null;
    const route = edges.find((e) => e && e.from === api.id && e.kind === 'route' && /^[A-Z]+ \//.test(e.label || ''));
    if (url && route) {
      const [method, path] = route.label.split(' ');
      const p = path.replace(/\{[^}]*\}/g, 'x');
      return method === 'GET' || method === 'ANY' ? `curl ${url}${p}` : `curl -X ${method} ${url}${p} -d '{}'`;
    }
  }
  const fns = functionNames();
  return fns.length ? `nimbus invoke ${fns[0]} --payload '{}'` : null;
}

function serviceChip(s) {
  const { kind, name } = splitId(s);
  return html`<span class="svc" title="${s}">${kindGlyph(kind, 14)}${name}</span>`;
}

function renderList() {
  const host = $('#trace-list');
  if (!state.tracesLoaded) {
    if (!host.dataset.rendered) setHTML(host, html`<div class="empty"><div class="empty-title">Loading traces…</div></div>`);
    return;
  }
  const traces = [...state.traces].sort((a, b) => Number(b.start_us) - Number(a.start_us));
  const sig = JSON.stringify(traces.map((t) => [t.trace_id, t.duration_ms, t.spans, t.error, t.name]));
  if (sig === listSig) {
    for (const el of $$('[data-ago]', host)) el.textContent = fmtAgo(Number(el.getAttribute('data-ago')));
    return;
  }
  listSig = sig;
  host.dataset.rendered = '1';
  if (!traces.length) {
    const cmd = tryCommand();
    setHTML(
      host,
      html`<div class="empty"><div class="empty-title">No traces yet — send a request to an API</div>
        <p>Every API request, invoke, event and message that flows through nimbus is recorded as a trace: one row per request here, and a waterfall of its spans when you open it.</p>
        ${cmd ? html`<p>Try: <code class="cmd">${cmd}</code></p>` : ''}</div>`,
    );
    return;
  }
  const maxDur = Math.max(1, ...traces.map((t) => Number(t.duration_ms) || 0));
  setHTML(
    host,
    html`<table class="table traces">
      <thead><tr><th>Started</th><th>Trace</th><th>Services</th><th class="num">Duration</th><th class="num">Spans</th><th>Status</th></tr></thead>
      <tbody>${traces.map((t) => {
        const startMs = Number(t.start_us) / 1000;
        const dur = Number(t.duration_ms);
        const services = Array.isArray(t.services) ? t.services : t.service ? [t.service] : [];
        return html`<tr class="clickable ${t.error ? 'has-error' : ''}" data-trace-id="${t.trace_id}" tabindex="0">
          <td class="nowrap"><div>${fmtClock(startMs)}</div><div class="muted small" data-ago="${startMs}">${fmtAgo(startMs)}</div></td>
          <td><a class="trace-name" href="#/traces/${encodeURIComponent(t.trace_id)}">${t.name || '(unnamed)'}</a><div class="mono muted small">${t.trace_id}</div></td>
          <td class="svc-cell"><div class="svcs" title="${services.join(' → ')}">${services.map(serviceChip)}</div></td>
          <td class="num nowrap"><div>${fmtMs(dur)}</div><div class="dur-bar"><span style="width:${Math.max(2, Math.min(100, (dur / maxDur) * 100)).toFixed(1)}%"></span></div></td>
          <td class="num">${t.spans ?? ''}</td>
          <td>${t.error ? html`<span class="badge badge-alarm">error</span>` : html`<span class="badge badge-ok">ok</span>`}</td>
        </tr>`;
      })}</tbody>
    </table>`,
  );
  for (const tr of $$('tr[data-trace-id]', host)) {
    const open = (ev) => {
      if (ev && ev.target && ev.target.closest('a')) return; // the link navigates by itself
      location.hash = '#/traces/' + encodeURIComponent(tr.getAttribute('data-trace-id'));
    };
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') open();
    });
  }
}

// ---------------------------------------------------------------- waterfall

function niceStep(totalMs) {
  const target = totalMs / 6;
  const pow = Math.pow(10, Math.floor(Math.log10(Math.max(target, 1e-6))));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * pow >= target) return m * pow;
  return 10 * pow;
}

/** Orders spans depth-first (children by start), with their depth. */
function spanTree(spans) {
  const byId = new Map(spans.map((s) => [String(s.id), s]));
  const kids = new Map();
  const roots = [];
  for (const s of spans) {
    const p = s.parent_id === null || s.parent_id === undefined ? null : String(s.parent_id);
    if (p && byId.has(p) && p !== String(s.id)) {
      if (!kids.has(p)) kids.set(p, []);
      kids.get(p).push(s);
    } else roots.push(s);
  }
  const byStart = (a, b) => Number(a.start_us) - Number(b.start_us);
  roots.sort(byStart);
  const out = [];
  const seen = new Set();
  const walk = (s, depth) => {
    if (seen.has(s)) return;
    seen.add(s);
    out.push({ span: s, depth, hasKids: kids.has(String(s.id)) });
    for (const c of (kids.get(String(s.id)) || []).sort(byStart)) walk(c, depth + 1);
  };
  for (const r of roots) walk(r, 0);
  for (const s of spans) if (!seen.has(s)) walk(s, 0); // cycles in parent ids: show anyway
  return out;
}

function renderDetail() {
  const host = $('#trace-detail');
  if (!detail) {
    setHTML(host, html`<div class="card empty"><div class="empty-title">Loading trace…</div></div>`);
    detailSig = '';
    return;
  }
  if (detail.missing) {
    detailSig = '';
    setHTML(
      host,
      html`<div class="card empty"><div class="empty-title">This trace is no longer kept</div><p>nimbus keeps the most recent traces in memory; <code>${openId}</code> is not among them. <a href="#/traces">Back to the list</a>.</p></div>`,
    );
    return;
  }
  const spans = (Array.isArray(detail.spans) ? detail.spans : []).filter((s) => s && s.id !== undefined);
  const sig = JSON.stringify(spans);
  if (sig === detailSig) return;
  detailSig = sig;
  const summary = state.traces.find((t) => t.trace_id === openId) || {};
  if (!spans.length) {
    setHTML(host, html`<div class="card empty"><div class="empty-title">No spans in this trace yet</div></div>`);
    return;
  }
  const t0 = Math.min(...spans.map((s) => Number(s.start_us)));
  const ends = spans.map((s) => Number(s.end_us)).filter((v) => isFinite(v) && v > 0);
  const t1 = Math.max(t0 + 1, ...ends, ...spans.map((s) => Number(s.start_us)));
  const total = t1 - t0; // us
  const totalMs = total / 1000;
  const step = niceStep(totalMs);
  const ticks = [];
  for (let v = 0; v <= totalMs + 1e-9 && ticks.length < 20; v += step) ticks.push(v);
  const rows = spanTree(spans);
  const anyError = spans.some((s) => s.error);
  const services = [...new Set(spans.map((s) => s.service).filter(Boolean))];
  const kindsUsed = [...new Set(spans.map((s) => s.kind))];
  const name = summary.name || (rows[0] && rows[0].span.name) || openId;

  setHTML(
    host,
    html`<div class="card wf-card">
      <div class="wf-head">
        <div>
          <h2 class="wf-title">${name} ${anyError ? html`<span class="badge badge-alarm">error</span>` : html`<span class="badge badge-ok">ok</span>`}</h2>
          <div class="wf-meta">
            <span><span class="muted">trace</span> <code>${openId}</code></span>
            <span><span class="muted">started</span> ${fmtDateTime(t0 / 1000)}</span>
            <span><span class="muted">duration</span> <strong>${fmtMs(totalMs)}</strong></span>
            <span><span class="muted">spans</span> <strong>${spans.length}</strong></span>
          </div>
          <div class="svcs">${services.map(serviceChip)}</div>
        </div>
      </div>
      <div class="wf-legend">${kindsUsed.map((k) => html`<span class="wf-key"><i style="background:${(SPAN_KINDS[k] || {}).color || OTHER_COLOR}"></i>${(SPAN_KINDS[k] || {}).label || k}</span>`)}${anyError ? html`<span class="wf-key"><i style="background:#dc2626"></i>error</span>` : ''}<span class="muted small">Click a span for its attributes.</span></div>
      <div id="waterfall" class="waterfall" role="table" aria-label="Spans of the trace">
        <div class="wf-axis" role="row">
          <div class="wf-axis-label" role="columnheader">Span</div>
          <div class="wf-axis-track" role="columnheader">${ticks.map((v) => html`<span class="wf-tick" style="left:${((v / totalMs) * 100).toFixed(3)}%">${v === 0 ? '0' : fmtMs(v)}</span>`)}</div>
        </div>
        ${rows.map(({ span: s, depth }) => {
          const start = Number(s.start_us);
          const endRaw = Number(s.end_us);
          const running = !(isFinite(endRaw) && endRaw > 0);
          const end = running ? t1 : endRaw;
          const left = ((start - t0) / total) * 100;
          const width = Math.max(0, ((end - start) / total) * 100);
          const durMs = (end - start) / 1000;
          const color = s.error ? '#dc2626' : (SPAN_KINDS[s.kind] || {}).color || OTHER_COLOR;
          // the duration goes right of the bar, else inside a wide bar, else left of it
          const place = left + width < 80 ? 'right' : width > 14 ? 'inside' : 'left';
          const id = String(s.id);
          const attrs = s.attributes && typeof s.attributes === 'object' ? Object.entries(s.attributes).sort(([a], [b]) => a.localeCompare(b)) : [];
          const tip = `${s.name} (${s.kind}) ${fmtMs(durMs)}${s.error ? ' — error: ' + s.error : ''}`;
          return html`<div class="span-row ${s.error ? 'is-error' : ''} ${expanded.has(id) ? 'is-open' : ''}" data-span-kind="${s.kind}" data-span-id="${id}" role="row" tabindex="0" title="${tip}">
              <div class="span-label" role="cell" style="padding-left:${10 + Math.min(depth, 12) * 13}px">
                <i class="span-dot" style="background:${color}"></i>
                <span class="span-name">${s.name}</span>
                <span class="span-svc">${s.service || ''}</span>
              </div>
              <div class="span-track" role="cell">
                ${ticks.map((v) => html`<span class="wf-grid" style="left:${((v / totalMs) * 100).toFixed(3)}%"></span>`)}
                <div class="span-bar ${running ? 'is-running' : ''}" style="left:${left.toFixed(3)}%;width:${width.toFixed(3)}%;background:${color}"></div>
                <span class="span-dur is-${place}" style="${place === 'right' ? `left:calc(${(left + width).toFixed(3)}% + 6px)` : place === 'inside' ? `right:calc(${(100 - left - width).toFixed(3)}% + 6px)` : `right:calc(${(100 - left).toFixed(3)}% + 6px)`}">${fmtMs(durMs)}${running ? ' …' : ''}${s.error ? html` <b class="err-text">${s.error}</b>` : ''}</span>
              </div>
            </div>
            <div class="span-attrs" data-for="${id}" ${expanded.has(id) ? '' : 'hidden'}>
              <dl class="kv">
                <dt>service</dt><dd>${s.service || '—'}</dd>
                <dt>kind</dt><dd>${s.kind} <span class="muted">${(SPAN_KINDS[s.kind] || {}).label || ''}</span></dd>
                <dt>start</dt><dd>+${fmtMs((start - t0) / 1000)} <span class="muted">(${fmtClock(start / 1000, true)})</span></dd>
                <dt>duration</dt><dd>${running ? 'still running' : fmtMs(durMs)}</dd>
                ${s.error ? html`<dt>error</dt><dd class="err-text">${s.error}</dd>` : ''}
                <dt>span id</dt><dd><code>${id}</code>${s.parent_id ? html` <span class="muted">parent</span> <code>${s.parent_id}</code>` : ''}</dd>
                ${attrs.map(([k, v]) => html`<dt>${k}</dt><dd><code>${typeof v === 'object' ? JSON.stringify(v) : String(v)}</code></dd>`)}
              </dl>
            </div>`;
        })}
      </div>
    </div>`,
  );
  for (const row of $$('.span-row', host)) {
    const toggle = () => {
      const id = row.getAttribute('data-span-id');
      const panel = row.nextElementSibling;
      const open = !expanded.has(id);
      if (open) expanded.add(id);
      else expanded.delete(id);
      row.classList.toggle('is-open', open);
      if (panel && panel.classList.contains('span-attrs')) panel.hidden = !open;
    };
    row.addEventListener('click', toggle);
    row.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        toggle();
      }
    });
  }
}

async function loadDetail() {
  if (!openId || loading) return;
  const id = openId;
  loading = true;
  try {
    const json = await getJSON('api/traces/' + encodeURIComponent(id));
    if (id === openId) detail = json && typeof json === 'object' ? json : { spans: [] };
  } catch (e) {
    if (id === openId && e && e.status === 404) detail = { missing: true };
    // network errors: keep what is shown; the header says "disconnected"
  } finally {
    loading = false;
  }
  if (id === openId && !$('#view-traces').hidden) renderDetail();
}

function showMode() {
  $('#trace-list-wrap').hidden = !!openId;
  $('#trace-detail').hidden = !openId;
  $('#traces-title').textContent = openId ? 'Trace' : 'Traces';
  $('#traces-crumbs').hidden = !openId;
  $('#traces-lede').hidden = !!openId;
}

export const tracesView = {
  init() {},
  show(arg) {
    const next = arg || null;
    if (next !== openId) {
      openId = next;
      detail = null;
      detailSig = '';
      expanded = new Set();
    }
    showMode();
    if (openId) {
      renderDetail();
      loadDetail();
    } else renderList();
  },
  update() {
    if (openId) {
      // a trace grows while its asynchronous parts run: refresh it until it is stable
      if (!detail || !detail.missing) loadDetail();
    } else renderList();
  },
  hide() {},
};
