// Logs: a live tail of api/logs (polled by app.js), with a source filter, a text filter and
// auto-scroll that pauses while the reader is scrolled up.

import { state, stackNodes } from './app.js';
import { $, html, setHTML, fmtClock, fmtMs } from './util.js';

const MAX_ROWS = 5000;

let source = ''; // '' = all
let filter = '';
let showPlatform = true;
let follow = true;
let unseen = 0;
let programmaticScroll = false;
let optionsSig = '';

const ERROR_RE = /\b(ERROR|Error|Exception|Traceback|panicked|FATAL|CRITICAL|errorMessage|errorType)\b|Task timed out|Runtime exited|Runtime\.[A-Z]\w+|Sandbox\.Timedout/;
const WARN_RE = /\b(WARN|WARNING|Warning)\b/;
const PLATFORM_RE = /^(START|END|REPORT|INIT_START|INIT_REPORT|EXTENSION|TELEMETRY) /;

function hue(s) {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
  return h % 360;
}

function parseAccess(msg) {
  if (typeof msg !== 'string' || msg[0] !== '{') return null;
  try {
    const j = JSON.parse(msg);
    return j && typeof j === 'object' ? j : null;
  } catch (e) {
    return null;
  }
}

/** {msg, kind, tone ('error' | 'warn' | ''), platform, access} of a log event. */
export function classifyLog(e) {
  const msg = String(e.message ?? '');
  const kind = String(e.kind || 'function');
  let tone = '';
  let access = null;
  if (kind === 'access') {
    access = parseAccess(msg);
    const st = access ? Number(access.status) : NaN;
    if (st >= 500) tone = 'error';
    else if (st >= 400) tone = 'warn';
  } else if (ERROR_RE.test(msg)) tone = 'error';
  else if (WARN_RE.test(msg)) tone = 'warn';
  const platform = kind === 'platform' || (kind !== 'access' && PLATFORM_RE.test(msg));
  return { msg, kind, tone, platform, access };
}

/** One line of plain text for an event (an access log line as "POST /path → 500 · 12 ms"). */
export function logSummary(e) {
  const c = classifyLog(e);
  if (c.access) {
    const a = c.access;
    const lat = Number(a.latencyMs);
    return `${a.httpMethod || ''} ${a.path || a.routeKey || ''} → ${a.status ?? '?'}${isFinite(lat) ? ` · ${fmtMs(lat)}` : ''}`.trim();
  }
  return c.msg.split('\n')[0];
}

function passes(e, c) {
  if (source && String(e.source) !== source) return false;
  if (!showPlatform && c.platform && c.tone !== 'error') return false;
  if (filter) {
    const hay = `${e.source ?? ''} ${c.msg} ${e.request_id ?? ''}`.toLowerCase();
    if (!hay.includes(filter)) return false;
  }
  return true;
}

function rowHTML(e, c) {
  const src = String(e.source ?? '');
  let body;
  if (c.access) {
    const a = c.access;
    const st = Number(a.status);
    const method = a.httpMethod || a.method || '';
    const path = a.path || a.resourcePath || a.routeKey || '';
    const lat = Number(a.latencyMs ?? a.responseLatency);
    body = html`<span class="acc-status s${isFinite(st) ? String(st)[0] : 'x'}xx">${isFinite(st) ? st : '?'}</span> ${method} ${path}${isFinite(lat) ? html` <span class="muted">· ${fmtMs(lat)}</span>` : ''}${a.error ? html` <span class="err-text">· ${typeof a.error === 'string' ? a.error : JSON.stringify(a.error)}</span>` : ''} <span class="acc-raw">${c.msg}</span>`;
  } else body = html`${c.msg}`;
  const cls = `log-line kind-${c.kind}${c.platform ? ' is-platform' : ''}${c.tone ? ' is-' + c.tone : ''}`;
  return html`<div class="${cls}" data-seq="${e.seq ?? ''}"${e.request_id ? html` data-request-id="${e.request_id}"` : ''}><span class="log-time" title="${safeIso(e.time_ms)}">${fmtClock(Number(e.time_ms), true)}</span><span class="log-src" style="--h:${hue(src)}" title="${src} (${c.kind})">${src}</span><span class="log-msg">${body}</span></div>`.s;
}

function safeIso(ms) {
  const d = new Date(Number(ms));
  return isNaN(d.getTime()) ? '' : d.toISOString();
}

function tail() {
  return $('#log-tail');
}

function emptyHTML() {
  if (!state.logsLoaded) return '<div class="log-empty">Loading log lines…</div>';
  if (state.logs.length === 0) {
    const fn = stackNodes('function')[0];
    return html`<div class="log-empty"><div class="empty-title">No log lines yet</div><p>Function output (with Lambda's START / END / REPORT lines) and API access logs stream here as they happen.${fn ? html` Invoke a function to see some: <code>nimbus invoke ${fn.name} --payload '{}'</code>` : ''}</p></div>`.s;
  }
  return '<div class="log-empty"><div class="empty-title">No lines match</div><p>Change the source or clear the filter to see more.</p></div>';
}

function rerender() {
  const el = tail();
  const parts = [];
  let shown = 0;
  for (let i = state.logs.length - 1; i >= 0 && shown < MAX_ROWS; i--) {
    const e = state.logs[i];
    const c = classifyLog(e);
    if (!passes(e, c)) continue;
    parts.push(rowHTML(e, c));
    shown++;
  }
  parts.reverse();
  el.innerHTML = parts.length ? parts.join('') : emptyHTML();
  el.dataset.empty = parts.length ? '' : '1';
  unseen = 0;
  follow = true;
  scrollToEnd();
  renderCount();
}

function scrollToEnd() {
  const el = tail();
  programmaticScroll = true;
  el.scrollTop = el.scrollHeight;
  requestAnimationFrame(() => {
    programmaticScroll = false;
  });
  renderPaused();
}

function renderPaused() {
  const b = $('#log-paused');
  b.hidden = follow;
  b.textContent = unseen ? `Paused · ${unseen} new line${unseen === 1 ? '' : 's'} — jump to newest ↓` : 'Paused — jump to newest ↓';
}

function renderCount() {
  const el = tail();
  const n = el.dataset.empty ? 0 : el.childElementCount;
  $('#log-count').textContent = `${n.toLocaleString('en-US')} line${n === 1 ? '' : 's'}${n !== state.logs.length ? ` of ${state.logs.length.toLocaleString('en-US')}` : ''}`;
}

function renderSourceOptions() {
  const names = [];
  const seen = new Set();
  const add = (name, kind) => {
    if (!name || seen.has(name)) return;
    seen.add(name);
    names.push({ name, kind });
  };
  for (const n of stackNodes('function')) add(String(n.name), 'function');
  for (const n of stackNodes('api')) add(String(n.name), 'api');
  for (const [name, kind] of state.logSources) add(name, kind === 'access' ? 'api' : kind === 'platform' || kind === 'function' ? 'function' : 'other');
  if (source) add(source, 'other');
  const sig = JSON.stringify(names) + source;
  if (sig === optionsSig) return;
  optionsSig = sig;
  const groups = { function: 'Functions', api: 'APIs', other: 'Other' };
  const sel = $('#log-source');
  setHTML(
    sel,
    html`<option value="">All sources</option>${Object.entries(groups).map(([k, label]) => {
      const items = names.filter((n) => n.kind === k);
      return items.length ? html`<optgroup label="${label}">${items.map((n) => html`<option value="${n.name}" ${n.name === source ? 'selected' : ''}>${n.name}</option>`)}</optgroup>` : '';
    })}`,
  );
  sel.value = source;
}

export const logsView = {
  init() {
    const el = tail();
    el.addEventListener('scroll', () => {
      if (programmaticScroll) return;
      const atEnd = el.scrollTop + el.clientHeight >= el.scrollHeight - 24;
      if (atEnd !== follow) {
        follow = atEnd;
        if (follow) unseen = 0;
        renderPaused();
      }
    });
    $('#log-paused').addEventListener('click', () => {
      follow = true;
      unseen = 0;
      scrollToEnd();
    });
    $('#log-source').addEventListener('change', (ev) => {
      source = ev.target.value;
      const want = source ? '#/logs/' + encodeURIComponent(source) : '#/logs';
      if (location.hash !== want) history.replaceState(null, '', want);
      rerender();
    });
    let t = null;
    $('#log-filter').addEventListener('input', (ev) => {
      clearTimeout(t);
      t = setTimeout(() => {
        filter = ev.target.value.trim().toLowerCase();
        rerender();
      }, 120);
    });
    $('#log-platform').addEventListener('change', (ev) => {
      showPlatform = ev.target.checked;
      rerender();
    });
    $('#log-clear').addEventListener('click', () => {
      $('#log-filter').value = '';
      filter = '';
      source = '';
      history.replaceState(null, '', '#/logs');
      renderSourceOptions();
      $('#log-source').value = '';
      rerender();
    });
    rerender();
  },
  /** New events from a poll (called whether or not the view is shown). */
  ingest({ fresh, dropped, skipped }) {
    renderSourceOptions();
    const el = tail();
    if (dropped && el.dataset.empty !== '1') {
      // trim rows whose events left the buffer
      const oldest = state.logs.length ? Number(state.logs[0].seq) : Infinity;
      while (el.firstElementChild && Number(el.firstElementChild.getAttribute('data-seq')) < oldest) el.firstElementChild.remove();
    }
    if (!fresh || !fresh.length) {
      if (el.dataset.empty === '1') {
        const h = emptyHTML();
        if (el.innerHTML !== h) el.innerHTML = h;
      }
      return;
    }
    const parts = [];
    if (skipped > 0 && !filter && !source) {
      parts.push(html`<div class="log-line log-gap" data-seq="${fresh[0].seq ?? ''}"><span></span><span></span><span class="log-msg">… ${skipped.toLocaleString('en-US')} line${skipped === 1 ? '' : 's'} skipped: more arrived in 2 s than one poll fetches (1,000)</span></div>`.s);
    }
    for (const e of fresh) {
      const c = classifyLog(e);
      if (passes(e, c)) parts.push(rowHTML(e, c));
    }
    if (!parts.length) return;
    if (el.dataset.empty === '1') {
      el.innerHTML = '';
      el.dataset.empty = '';
    }
    el.insertAdjacentHTML('beforeend', parts.join(''));
    while (el.childElementCount > MAX_ROWS) el.firstElementChild.remove();
    if (follow) scrollToEnd();
    else {
      unseen += parts.length;
      renderPaused();
    }
    renderCount();
  },
  show(arg) {
    const want = arg || '';
    if (want !== source) {
      source = want;
      renderSourceOptions();
      $('#log-source').value = source;
      rerender();
    } else {
      renderSourceOptions();
      if (follow) scrollToEnd();
    }
  },
  update() {
    renderCount();
  },
  hide() {},
};

