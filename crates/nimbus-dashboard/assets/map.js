// Overview: headline numbers and the service map (the stack's graph, laid out in layered
// columns left to right, with live rates on nodes and edges).

import { state, go, getJSON } from './app.js';
import { $, $$, html, raw, setHTML, esc, fmtRate, fmtInt, fmtAge, fmtMs, fmtAgo, fmtClock, fitText, textWidth, splitId, KIND_ORDER, KIND_LABEL } from './util.js';
import { classifyLog, logSummary } from './logs.js';

const NODE_W = 156;
const NODE_H = 76;
const GAP_X = 100;
const GAP_Y = 28;
const PAD = 20;
const MIN_SCALE = 0.76; // below this the map scrolls (drag to pan) rather than shrinking further

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
const F_NAME = `650 13.5px ${FONT}`;
const F_SUB = `400 11px ${FONT}`;
const F_STATS = `400 11.5px ${FONT}`;
const F_STATS_B = `650 11.5px ${FONT}`;
const F_EDGE = `550 10.5px ${FONT}`;
const F_EDGE_B = `650 10.5px ${FONT}`;

const KIND_COLOR = {
  api: '#7c3aed',
  function: '#ea580c',
  bus: '#db2777',
  rule: '#0d9488',
  queue: '#2563eb',
  other: '#64748b',
};

/** Small glyphs drawn in a 16x16 box (white on the kind's colour). */
const GLYPH = {
  api: '<circle cx="8" cy="8" r="6.2" fill="none" stroke="#fff" stroke-width="1.6"/><ellipse cx="8" cy="8" rx="2.6" ry="6.2" fill="none" stroke="#fff" stroke-width="1.4"/><path d="M1.8 8h12.4" stroke="#fff" stroke-width="1.4"/>',
  function: '<text x="8" y="12.6" text-anchor="middle" font-size="14" font-weight="700" fill="#fff" font-family="system-ui, sans-serif">λ</text>',
  bus: '<path d="M1 8h14" stroke="#fff" stroke-width="1.6"/><circle cx="3.5" cy="8" r="2" fill="#fff"/><circle cx="8" cy="8" r="2" fill="#fff"/><circle cx="12.5" cy="8" r="2" fill="#fff"/><path d="M8 2v3.5M8 10.5V14" stroke="#fff" stroke-width="1.4"/>',
  rule: '<path d="M2 2.8h12L9.4 8.4V13l-2.8 1.4V8.4z" fill="none" stroke="#fff" stroke-width="1.5" stroke-linejoin="round"/>',
  queue: '<rect x="2" y="2.6" width="12" height="2.8" rx=".8" fill="#fff"/><rect x="2" y="6.6" width="12" height="2.8" rx=".8" fill="#fff" opacity=".85"/><rect x="2" y="10.6" width="12" height="2.8" rx=".8" fill="#fff" opacity=".7"/>',
  other: '<circle cx="8" cy="8" r="4.5" fill="#fff"/>',
};

export function kindGlyph(kind, size = 18) {
  const k = GLYPH[kind] ? kind : 'other';
  return raw(
    `<svg class="kind-glyph" width="${size}" height="${size}" viewBox="-3 -3 22 22" aria-hidden="true"><rect x="-3" y="-3" width="22" height="22" rx="5" fill="${KIND_COLOR[k]}"/>${GLYPH[k]}</svg>`,
  );
}

const FAILURE_EDGES = new Set(['redrive', 'destination', 'dead-letter']);

// ---------------------------------------------------------------- graph layout

/**
 * Layered layout: back edges (cycles) are found by DFS and ignored for layering; each node's
 * column is its longest path from a source; nodes without any edge fall back to their kind's
 * column (api, function, bus, rule, queue); empty columns are removed; rows are ordered by a
 * few barycentre sweeps to reduce crossings.
 */
export function layoutGraph(nodes, edges) {
  const rank = (n) => {
    const i = KIND_ORDER.indexOf(n.kind);
    return i < 0 ? KIND_ORDER.length : i;
  };
  const sorted = [...nodes].sort((a, b) => rank(a) - rank(b) || String(a.name).localeCompare(String(b.name)));
  const ids = sorted.map((n) => n.id);
  const out = new Map(ids.map((id) => [id, []]));
  const indeg = new Map(ids.map((id) => [id, 0]));
  const connected = new Set();
  for (const e of edges) {
    if (e.from === e.to || !out.has(e.from) || !out.has(e.to)) continue;
    if (!out.get(e.from).includes(e.to)) out.get(e.from).push(e.to);
    indeg.set(e.to, indeg.get(e.to) + 1);
    connected.add(e.from).add(e.to);
  }
  // DFS from sources first (kind order), then from anything left (cycles)
  const mark = new Map();
  const dag = new Map(ids.map((id) => [id, []]));
  const back = new Set();
  const dfs = (u) => {
    mark.set(u, 1);
    for (const v of out.get(u)) {
      if (mark.get(v) === 1) {
        back.add(u + '\u0000' + v);
        continue;
      }
      dag.get(u).push(v);
      if (!mark.get(v)) dfs(v);
    }
    mark.set(u, 2);
  };
  for (const id of ids) if (indeg.get(id) === 0 && !mark.get(id)) dfs(id);
  for (const id of ids) if (!mark.get(id)) dfs(id);

  // longest path over the DAG (Kahn's order)
  const din = new Map(ids.map((id) => [id, 0]));
  for (const [, vs] of dag) for (const v of vs) din.set(v, din.get(v) + 1);
  const layer = new Map(ids.map((id) => [id, 0]));
  const queue = ids.filter((id) => din.get(id) === 0);
  while (queue.length) {
    const u = queue.shift();
    for (const v of dag.get(u)) {
      layer.set(v, Math.max(layer.get(v), layer.get(u) + 1));
      din.set(v, din.get(v) - 1);
      if (din.get(v) === 0) queue.push(v);
    }
  }
  const byId = new Map(sorted.map((n) => [n.id, n]));
  for (const id of ids) if (!connected.has(id)) layer.set(id, Math.min(rank(byId.get(id)), KIND_ORDER.length - 1));

  // compact the columns
  const used = [...new Set(layer.values())].sort((a, b) => a - b);
  const remap = new Map(used.map((l, i) => [l, i]));
  const layers = used.map(() => []);
  for (const id of ids) {
    const l = remap.get(layer.get(id));
    layer.set(id, l);
    layers[l].push(id);
  }

  // barycentre ordering
  const nbr = new Map(ids.map((id) => [id, []]));
  for (const [u, vs] of out) for (const v of vs) {
    nbr.get(u).push(v);
    nbr.get(v).push(u);
  }
  const pos = new Map();
  const setPos = () => layers.forEach((ls) => ls.forEach((id, i) => pos.set(id, i - (ls.length - 1) / 2)));
  setPos();
  const sweep = (li, dir) => {
    const ls = layers[li];
    const bc = new Map();
    for (const id of ls) {
      const ns = nbr.get(id).filter((v) => (dir > 0 ? layer.get(v) < li : layer.get(v) > li));
      bc.set(id, ns.length ? ns.reduce((a, v) => a + pos.get(v), 0) / ns.length : pos.get(id));
    }
    ls.sort((a, b) => bc.get(a) - bc.get(b));
    ls.forEach((id, i) => pos.set(id, i - (ls.length - 1) / 2));
  };
  for (let it = 0; it < 4; it++) {
    for (let l = 1; l < layers.length; l++) sweep(l, 1);
    for (let l = layers.length - 2; l >= 0; l--) sweep(l, -1);
  }

  const maxRows = Math.max(1, ...layers.map((l) => l.length));
  const hasBack = edges.some((e) => back.has(e.from + '\u0000' + e.to) || (layer.get(e.to) !== undefined && layer.get(e.to) <= layer.get(e.from) && e.from !== e.to));
  const width = PAD * 2 + layers.length * NODE_W + Math.max(0, layers.length - 1) * GAP_X;
  const height = PAD * 2 + maxRows * NODE_H + (maxRows - 1) * GAP_Y + (hasBack ? 46 : 0);
  const at = new Map();
  layers.forEach((ls, li) => {
    ls.forEach((id, i) => {
      at.set(id, {
        x: PAD + li * (NODE_W + GAP_X),
        y: PAD + ((maxRows - ls.length) / 2 + i) * (NODE_H + GAP_Y),
        layer: li,
      });
    });
  });
  return { at, width, height, layers: layers.length };
}

function bezierMid(p0, p1, p2, p3) {
  const t = 0.5;
  const mt = 1 - t;
  const f = (a, b, c, d) => mt * mt * mt * a + 3 * mt * mt * t * b + 3 * mt * t * t * c + t * t * t * d;
  return [f(p0[0], p1[0], p2[0], p3[0]), f(p0[1], p1[1], p2[1], p3[1])];
}

function edgePath(a, b, height) {
  if (b.layer > a.layer) {
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x - 3;
    const y2 = b.y + NODE_H / 2;
    const dx = Math.max(40, (x2 - x1) / 2);
    const c1 = [x1 + dx, y1];
    const c2 = [x2 - dx, y2];
    return { d: `M${x1},${y1} C${c1[0]},${c1[1]} ${c2[0]},${c2[1]} ${x2},${y2}`, mid: bezierMid([x1, y1], c1, c2, [x2, y2]) };
  }
  // backwards or within a column: loop underneath
  const x1 = a.x + NODE_W / 2 + 14;
  const y1 = a.y + NODE_H;
  const x2 = b.x + NODE_W / 2 - 14;
  const y2 = b.y + NODE_H + 3;
  const low = Math.min(height - 8, Math.max(y1, y2) + 46);
  const c1 = [x1, low];
  const c2 = [x2, low];
  return { d: `M${x1},${y1} C${c1[0]},${c1[1]} ${c2[0]},${c2[1]} ${x2},${y2}`, mid: bezierMid([x1, y1], c1, c2, [x2, y2]) };
}

// ---------------------------------------------------------------- node subtitles and stats

function nodeSubtitle(n, dlqs) {
  const d = n.detail || {};
  switch (n.kind) {
    case 'function':
      return d.runtime ? String(d.runtime) : 'Lambda function';
    case 'api':
      return `${d.type ? d.type + ' ' : ''}API`;
    case 'bus':
      return 'Event bus';
    case 'rule':
      return d.schedule ? `Schedule · ${d.schedule}` : 'Rule';
    case 'queue':
      return dlqs.has(n.id) ? 'Dead-letter queue' : d.fifo ? 'SQS FIFO queue' : 'SQS queue';
    default:
      return n.implicit ? `${n.kind} (not in template)` : n.kind;
  }
}

/** [{text, tone, title}] for a node's stats line. */
function nodeStats(n, dlqs) {
  const m = state.metrics;
  const snap = m.latest;
  if (!snap) return [{ text: 'waiting for metrics…', tone: 'muted' }];
  const name = n.name;
  const lastMin = (metric, sel) => m.increase(metric, sel, 60);
  switch (n.kind) {
    case 'function': {
      const sel = { function: name };
      const inv = m.rate('nimbus_lambda_invocations_total', sel);
      const err = lastMin('nimbus_lambda_errors_total', sel);
      const thr = lastMin('nimbus_lambda_throttles_total', sel);
      return [
        { text: `${fmtRate(inv)}/s`, tone: inv ? 'strong' : '', title: 'invocations per second (last 10 s)' },
        { text: `${fmtInt(err)} err`, tone: err ? 'danger' : 'muted', title: 'errors in the last minute' },
        { text: `${fmtInt(thr)} thr`, tone: thr ? 'warn' : 'muted', title: 'throttles in the last minute' },
      ];
    }
    case 'api': {
      const sel = { api: name };
      const r = m.rate('nimbus_apigateway_requests_total', sel);
      const e5 = lastMin('nimbus_apigateway_requests_total', { api: name, status_class: '5xx' });
      const e4 = lastMin('nimbus_apigateway_requests_total', { api: name, status_class: '4xx' });
      return [
        { text: `${fmtRate(r)} req/s`, tone: r ? 'strong' : '', title: 'requests per second (last 10 s)' },
        { text: `${fmtInt(e5)} 5xx`, tone: e5 ? 'danger' : 'muted', title: '5xx answers in the last minute' },
        { text: `${fmtInt(e4)} 4xx`, tone: e4 ? 'warn' : 'muted', title: '4xx answers in the last minute' },
      ];
    }
    case 'bus': {
      const r = m.rate('nimbus_events_put_entries_total', { bus: name });
      return [{ text: `${fmtRate(r)} events/s`, tone: r ? 'strong' : '', title: 'PutEvents entries per second (last 10 s)' }];
    }
    case 'rule': {
      const d = n.detail || {};
      const sel = d.bus ? { bus: d.bus, rule: name } : { rule: name };
      const r = m.rate('nimbus_events_rule_matches_total', sel);
      const f = lastMin('nimbus_events_target_failures_total', sel);
      const out = [{ text: `${fmtRate(r)} matches/s`, tone: r ? 'strong' : '', title: 'events matched per second (last 10 s)' }];
      if (f) out.push({ text: `${fmtInt(f)} failed`, tone: 'danger', title: 'target deliveries failed in the last minute' });
      return out;
    }
    case 'queue': {
      const sel = { queue: name };
      const vis = snap.sum('nimbus_sqs_messages_visible', sel);
      const fl = snap.sum('nimbus_sqs_messages_in_flight', sel);
      const del = snap.sum('nimbus_sqs_messages_delayed', sel);
      const age = snap.sum('nimbus_sqs_oldest_message_age_seconds', sel);
      const isDlq = dlqs.has(n.id);
      const out = [
        { text: `${fmtInt(vis)} visible`, tone: vis ? (isDlq ? 'danger' : 'strong') : '', title: 'messages waiting to be received' },
        { text: `${fmtInt(fl)} in flight`, tone: fl ? '' : 'muted', title: 'received, not yet deleted' },
      ];
      if (del) out.push({ text: `${fmtInt(del)} delayed`, tone: 'muted' });
      else if (vis && age) out.push({ text: `oldest ${fmtAge(age)}`, tone: 'muted', title: 'age of the oldest message' });
      return out;
    }
    default:
      return [];
  }
}

function statsWidth(stats) {
  return stats.reduce((w, s, i) => w + (i ? textWidth(' · ', F_STATS) : 0) + textWidth(s.text, s.tone === 'strong' || s.tone === 'danger' ? F_STATS_B : F_STATS), 0);
}

function statsSVG(stats) {
  const max = NODE_W - 24;
  let shown = stats.slice();
  // drop the least important trailing items (never an alarming one) until the line fits
  while (shown.length > 1 && statsWidth(shown) > max) {
    const i = shown.map((x) => x.tone !== 'danger' && x.tone !== 'warn').lastIndexOf(true);
    shown.splice(i > 0 ? i : shown.length - 1, 1);
  }
  return shown
    .map((s, i) => `${i ? '<tspan class="sep"> · </tspan>' : ''}<tspan class="tone-${esc(s.tone || 'none')}">${esc(s.text)}</tspan>`)
    .join('');
}

/** Splits an edge label into at most two lines that fit the gap between columns. */
function wrapLabel(label, maxW) {
  const words = String(label).split(/\s+/).filter(Boolean);
  const lines = [];
  let cur = '';
  for (const w of words) {
    const next = cur ? cur + ' ' + w : w;
    if (!cur || textWidth(next, F_EDGE) <= maxW) cur = next;
    else {
      lines.push(cur);
      cur = w;
    }
  }
  if (cur) lines.push(cur);
  if (lines.length > 2) lines.splice(1, lines.length - 1, lines.slice(1).join(' '));
  return lines.map((l) => fitText(l, F_EDGE, maxW));
}

// ---------------------------------------------------------------- edges' live numbers

function edgeNumbers(e) {
  const m = state.metrics;
  let rate = null;
  let errs = null;
  if (e.traffic && e.traffic.name) rate = m.rate(e.traffic.name, e.traffic.labels || {});
  if (e.errors && e.errors.name) errs = m.increase(e.errors.name, e.errors.labels || {}, 60);
  return { rate, errs };
}

// ---------------------------------------------------------------- the view

let built = -1; // stackVersion the map was built for
let graph = null; // {nodes, edges, layout, dlqs}
let selected = null;

function buildGraph() {
  const st = state.stack || {};
  const nodes = (Array.isArray(st.nodes) ? st.nodes : [])
    .filter((n) => n && n.id)
    .map((n) => ({ ...n, id: String(n.id), kind: String(n.kind || splitId(n.id).kind), name: String(n.name ?? splitId(n.id).name) }));
  const ids = new Set(nodes.map((n) => n.id));
  const edges = (Array.isArray(st.edges) ? st.edges : []).filter((e) => e && e.from && e.to).map((e) => ({ ...e, from: String(e.from), to: String(e.to) }));
  // an edge may name a node the template does not declare (e.g. a destination queue by ARN): show it anyway
  for (const e of edges) {
    for (const id of [e.from, e.to]) {
      if (!ids.has(id)) {
        const { kind, name } = splitId(id);
        nodes.push({ id, kind, name, detail: {}, implicit: true });
        ids.add(id);
      }
    }
  }
  const dlqs = new Set();
  for (const n of nodes) if (n.kind === 'queue' && n.detail && n.detail.dead_letter) dlqs.add(String(n.detail.dead_letter));
  for (const e of edges) if (e.kind === 'redrive') dlqs.add(e.to);
  const layout = layoutGraph(nodes, edges);
  return { nodes, edges, layout, dlqs };
}

function renderMap() {
  const host = $('#map');
  if (!state.stack) {
    setHTML(
      host,
      state.connected === false
        ? html`<div class="empty"><div class="empty-title">Cannot reach nimbus</div><p>The dashboard polls <code>${location.origin}${location.pathname}api/stack</code> every 2 s. Start the stack with <code>nimbus up template.yaml</code>; this page reconnects by itself.</p></div>`
        : html`<div class="empty"><div class="empty-title">Loading the stack…</div></div>`,
    );
    built = -1;
    return;
  }
  graph = buildGraph();
  built = state.stackVersion;
  if (!graph.nodes.length) {
    setHTML(
      host,
      html`<div class="empty"><div class="empty-title">Nothing to draw yet</div><p>This template declares no functions, APIs, event buses, rules or queues. Add an <code>AWS::Serverless::Function</code> and restart <code>nimbus up</code>.</p></div>`,
    );
    return;
  }
  const { nodes, edges, layout, dlqs } = graph;
  const { at, width, height } = layout;
  const parts = [];
  parts.push(`<svg class="map-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="Service map">
  <defs>
    <filter id="node-shadow" x="-10%" y="-10%" width="120%" height="140%"><feDropShadow dx="0" dy="1" stdDeviation="1.6" flood-color="#0f172a" flood-opacity="0.10"/></filter>
    <marker id="arrow" viewBox="0 0 10 10" refX="8.5" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,1 L9,5 L0,9 z" fill="#94a3b8"/></marker>
    <marker id="arrow-active" viewBox="0 0 10 10" refX="8.5" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,1 L9,5 L0,9 z" fill="#2563eb"/></marker>
    <marker id="arrow-error" viewBox="0 0 10 10" refX="8.5" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,1 L9,5 L0,9 z" fill="#dc2626"/></marker>
    <marker id="arrow-fail" viewBox="0 0 10 10" refX="8.5" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,1 L9,5 L0,9 z" fill="#d97706"/></marker>
  </defs>`);
  // edges under nodes
  parts.push('<g class="edges">');
  edges.forEach((e, i) => {
    const a = at.get(e.from);
    const b = at.get(e.to);
    if (!a || !b) return;
    const { d, mid } = edgePath(a, b, height);
    const fail = FAILURE_EDGES.has(e.kind);
    const cls = `edge edge-${esc(e.kind || 'flow')}${fail ? ' edge-failure' : ''}${e.kind === 'call' ? ' edge-call' : ''}`;
    const tip = `${e.from} → ${e.to}${e.kind ? ` (${e.kind})` : ''}${e.label ? `: ${e.label}` : ''}`;
    parts.push(`<g class="${cls}" data-edge="${i}" data-from="${esc(e.from)}" data-to="${esc(e.to)}"><title>${esc(tip)}</title>
      <path class="edge-hit" d="${d}"/>
      <path class="edge-line" d="${d}" marker-end="url(#${fail ? 'arrow-fail' : 'arrow'})"/>
      <path class="edge-flow" d="${d}"/>
      <g class="edge-label" transform="translate(${mid[0].toFixed(1)},${mid[1].toFixed(1)})"></g>
    </g>`);
  });
  parts.push('</g><g class="nodes">');
  for (const n of nodes) {
    const p = at.get(n.id);
    if (!p) continue;
    const kind = GLYPH[n.kind] ? n.kind : 'other';
    const clickable = n.kind === 'function';
    const label = `${KIND_LABEL[n.kind] || n.kind} ${n.name}${clickable ? ' — open its metrics' : ''}`;
    const tip = `${label}\n${nodeSubtitle(n, dlqs)}`;
    parts.push(`<g class="node node-${esc(kind)}${n.implicit ? ' node-implicit' : ''}${clickable ? ' node-link' : ''}" data-node-id="${esc(n.id)}" data-kind="${esc(n.kind)}" transform="translate(${p.x},${p.y})" tabindex="0" role="button" aria-label="${esc(label)}">
      <title>${esc(tip)}</title>
      <rect class="node-box" width="${NODE_W}" height="${NODE_H}" rx="9" filter="url(#node-shadow)"/>
      <g transform="translate(12,9)"><rect width="17" height="17" rx="4.5" fill="${KIND_COLOR[kind]}"/><g transform="translate(1.5,1.5) scale(0.875)">${GLYPH[kind]}</g></g>
      <text class="node-sub" x="36" y="21.5">${esc(fitText(nodeSubtitle(n, dlqs), F_SUB, NODE_W - 44))}</text>
      <text class="node-name" x="12" y="42">${esc(fitText(n.name, F_NAME, NODE_W - 22))}</text>
      <line class="node-divider" x1="12" x2="${NODE_W - 12}" y1="51" y2="51"/>
      <text class="node-stats" x="12" y="67"></text>
    </g>`);
  }
  parts.push('</g></svg>');
  host.innerHTML = parts.join('');
  fitMap();
  for (const el of $$('.node', host)) {
    const id = el.getAttribute('data-node-id');
    const activate = () => onNodeClick(id);
    el.addEventListener('click', activate);
    el.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        activate();
      }
    });
  }
  updateMap();
}

function fitMap() {
  const host = $('#map');
  const svg = $('svg.map-svg', host);
  if (!svg || !graph) return;
  const { width, height } = graph.layout;
  const avail = host.clientWidth - 24;
  if (avail <= 0) return;
  const wide = width * MIN_SCALE > avail + 1;
  const scale = fitAll ? Math.min(1, avail / width) : Math.max(MIN_SCALE, Math.min(1, avail / width));
  svg.setAttribute('width', String(Math.round(width * scale)));
  svg.setAttribute('height', String(Math.round(height * scale)));
  host.classList.toggle('can-pan', width * scale > avail + 1);
  const btn = $('#map-fit');
  btn.hidden = !wide;
  btn.textContent = fitAll ? 'Readable size' : 'Fit whole map';
  $('#map-more').hidden = !(wide && !fitAll);
}

let fitAll = false;

/** Drag the map's background to scroll it when it is wider than the card. */
function enablePan(host) {
  let start = null;
  host.addEventListener('pointerdown', (ev) => {
    if (!host.classList.contains('can-pan') || ev.button !== 0 || ev.target.closest('.node')) return;
    start = { x: ev.clientX, y: ev.clientY, left: host.scrollLeft, top: host.scrollTop };
    host.classList.add('is-panning');
  });
  window.addEventListener('pointermove', (ev) => {
    if (!start) return;
    host.scrollLeft = start.left - (ev.clientX - start.x);
    host.scrollTop = start.top - (ev.clientY - start.y);
  });
  window.addEventListener('pointerup', () => {
    start = null;
    host.classList.remove('is-panning');
  });
}

function updateMap() {
  if (!graph) return;
  const host = $('#map');
  const nodeEls = new Map($$('.node', host).map((el) => [el.getAttribute('data-node-id'), el]));
  for (const n of graph.nodes) {
    const el = nodeEls.get(n.id);
    if (!el) continue;
    const stats = nodeStats(n, graph.dlqs);
    const t = el.querySelector('.node-stats');
    const svg = statsSVG(stats);
    if (t.innerHTML !== svg) t.innerHTML = svg;
    el.classList.toggle('node-error', stats.some((s) => s.tone === 'danger'));
    el.classList.toggle('node-busy', stats.some((s) => s.tone === 'strong'));
    el.classList.toggle('node-selected', selected === n.id);
  }
  $$('.edge', host).forEach((g) => {
    const e = graph.edges[Number(g.getAttribute('data-edge'))];
    if (!e) return;
    const { rate, errs } = edgeNumbers(e);
    const active = rate !== null && rate > 0;
    const failing = errs !== null && errs > 0;
    g.classList.toggle('edge-active', active);
    g.classList.toggle('edge-has-errors', failing);
    const line = g.querySelector('.edge-line');
    const fail = FAILURE_EDGES.has(e.kind);
    line.setAttribute('marker-end', `url(#${failing ? 'arrow-error' : active ? 'arrow-active' : fail ? 'arrow-fail' : 'arrow'})`);
    const nameLines = e.label ? wrapLabel(e.label, GAP_X - 8) : [];
    const rateText = e.traffic ? `${fmtRate(rate)}/s` : '';
    const errText = failing ? `${fmtInt(errs)} err` : '';
    const labelG = g.querySelector('.edge-label');
    if (!nameLines.length && !rateText && !errText) {
      labelG.innerHTML = '';
      return;
    }
    const second = [];
    if (rateText) second.push(`<tspan class="el-rate${active ? ' is-active' : ''}">${esc(rateText)}</tspan>`);
    if (errText) second.push(`<tspan class="el-err">${esc(errText)}</tspan>`);
    const widths = nameLines.map((l) => textWidth(l, F_EDGE));
    if (second.length) widths.push(textWidth([rateText, errText].filter(Boolean).join(' · '), F_EDGE_B));
    const w = Math.max(...widths) + 12;
    const lineH = 13;
    const count = nameLines.length + (second.length ? 1 : 0);
    const h = count * lineH + 6;
    let y = -h / 2 + 3 + 10;
    const rows = [];
    for (const l of nameLines) {
      rows.push(`<text class="el-text el-name" x="0" y="${y.toFixed(1)}" text-anchor="middle">${esc(l)}</text>`);
      y += lineH;
    }
    if (second.length) rows.push(`<text class="el-text" x="0" y="${y.toFixed(1)}" text-anchor="middle">${second.join('<tspan class="sep"> · </tspan>')}</text>`);
    const svg = `<rect class="el-box" x="${(-w / 2).toFixed(1)}" y="${(-h / 2).toFixed(1)}" width="${w.toFixed(1)}" height="${h}" rx="5"/>${rows.join('')}`;
    if (labelG.innerHTML !== svg) labelG.innerHTML = svg;
  });
}

function onNodeClick(id) {
  const n = graph && graph.nodes.find((x) => x.id === id);
  if (!n) return;
  if (n.kind === 'function') {
    go('functions', n.name);
    return;
  }
  selected = selected === id ? null : id;
  renderInspector();
  updateMap();
}

function detailValue(k, v) {
  if (v === null || v === undefined || v === '') return html`<span class="muted">—</span>`;
  if (typeof v === 'string' && /^https?:\/\//.test(v)) return html`<a href="${v}" target="_blank" rel="noopener">${v}</a>`;
  if (typeof v === 'object') return html`<code>${JSON.stringify(v)}</code>`;
  if (k === 'pattern' && typeof v === 'string') {
    try {
      return html`<code>${JSON.stringify(JSON.parse(v))}</code>`;
    } catch (e) {
      return html`<code>${v}</code>`;
    }
  }
  return html`${String(v)}`;
}

function renderInspector() {
  const box = $('#inspector');
  const n = selected && graph && graph.nodes.find((x) => x.id === selected);
  if (!n) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const detail = n.detail && typeof n.detail === 'object' ? n.detail : {};
  const ins = graph.edges.filter((e) => e.to === n.id);
  const outs = graph.edges.filter((e) => e.from === n.id);
  const edgeRow = (e, dir) => {
    const other = dir === 'in' ? e.from : e.to;
    return html`<li>${dir === 'in' ? 'from' : 'to'} <button class="linklike" data-select="${other}">${other}</button> <span class="muted">${e.kind || ''}${e.label ? ` · ${e.label}` : ''}</span></li>`;
  };
  const links = [];
  if (n.kind === 'queue') links.push(html`<a href="#/queues">See the queue in Queues →</a>`);
  if (n.kind === 'api') links.push(html`<a href="#/logs/${encodeURIComponent(n.name)}">Access log in Logs →</a>`);
  setHTML(
    box,
    html`<div class="card-head">
        <h2 class="with-glyph">${kindGlyph(n.kind, 20)} ${n.name} <span class="muted small">${KIND_LABEL[n.kind] || n.kind}</span></h2>
        <button class="btn-ghost" data-close aria-label="Close">✕</button>
      </div>
      <div class="inspector-body">
        <dl class="kv">
          <dt>id</dt><dd><code>${n.id}</code></dd>
          ${Object.entries(detail).map(([k, v]) => html`<dt>${k.replace(/_/g, ' ')}</dt><dd>${detailValue(k, v)}</dd>`)}
          ${n.implicit ? html`<dt>note</dt><dd>Referenced by an edge but not declared in the template.</dd>` : ''}
        </dl>
        <div>
          <h3>Connections</h3>
          <ul class="conn">${ins.map((e) => edgeRow(e, 'in'))}${outs.map((e) => edgeRow(e, 'out'))}${ins.length + outs.length === 0 ? html`<li class="muted">none</li>` : ''}</ul>
          ${links.length ? html`<p>${links}</p>` : ''}
        </div>
      </div>`,
  );
  box.querySelector('[data-close]').addEventListener('click', () => {
    selected = null;
    renderInspector();
    updateMap();
  });
  for (const b of $$('[data-select]', box)) b.addEventListener('click', () => onNodeClick(b.getAttribute('data-select')));
}

// ---------------------------------------------------------------- KPIs

function kpi(label, value, sub, tone = '', href = '') {
  const inner = html`<div class="kpi-label">${label}</div><div class="kpi-value">${value}</div><div class="kpi-sub">${sub}</div>`;
  return href ? html`<a class="kpi tone-${tone}" href="${href}">${inner}</a>` : html`<div class="kpi tone-${tone}">${inner}</div>`;
}

let kpiHTML = '';

// What the run so far would cost on AWS (GET api/cost, the estimate `nimbus cost` prints),
// without the free tier so a small run still shows what it uses. Fetched every 10 s at most.
const COST_REFRESH_MS = 10000;
let cost = null;
let costAt = 0;

function refreshCost() {
  if (Date.now() - costAt < COST_REFRESH_MS) return;
  costAt = Date.now();
  getJSON('api/cost?free_tier=false')
    .then((c) => {
      cost = c;
      if (!$('#view-overview').hidden) renderKpis();
    })
    .catch(() => {});
}

function fmtMoney(v) {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  if (v === 0) return '$0';
  if (v < 0.01) return '$' + Number(v).toPrecision(2);
  return '$' + Number(v).toFixed(2);
}

function renderKpis() {
  refreshCost();
  const m = state.metrics;
  const snap = m.latest;
  const inv = m.rate('nimbus_lambda_invocations_total', {});
  const invTotal = snap ? snap.sum('nimbus_lambda_invocations_total', {}) : null;
  const err = m.increase('nimbus_lambda_errors_total', {}, 60);
  const errTotal = snap ? snap.sum('nimbus_lambda_errors_total', {}) : null;
  const thr = m.increase('nimbus_lambda_throttles_total', {}, 60);
  const req = m.rate('nimbus_apigateway_requests_total', {});
  const p99 = m.quantile(0.99, 'nimbus_apigateway_latency_seconds', {});
  const vis = snap ? snap.sum('nimbus_sqs_messages_visible', {}) : null;
  const fl = snap ? snap.sum('nimbus_sqs_messages_in_flight', {}) : null;
  const firing = state.alarms.filter((a) => a.state === 'ALARM').length;
  const alarmsText = !state.alarmsLoaded ? '–' : state.alarms.length ? (firing ? `${firing} firing` : 'all OK') : 'none';
  const out = html`${kpi('Invocations', inv === null ? '…' : `${fmtRate(inv)}/s`, `${fmtInt(invTotal ?? 0)} since start`, inv ? 'active' : '', '#/functions')}
      ${kpi('Errors, last minute', fmtInt(err ?? 0), `${fmtInt(errTotal ?? 0)} since start`, err ? 'danger' : '', '#/functions')}
      ${kpi('Throttles, last minute', fmtInt(thr ?? 0), 'concurrency limits hit', thr ? 'warn' : '', '#/functions')}
      ${kpi('API requests', req === null ? '…' : `${fmtRate(req)}/s`, p99 !== null ? `p99 latency ${p99 < 1 ? Math.round(p99 * 1000) + ' ms' : p99.toFixed(2) + ' s'}` : 'through API Gateway', req ? 'active' : '')}
      ${kpi('Messages waiting', fmtInt(vis ?? 0), `${fmtInt(fl ?? 0)} in flight`, vis ? 'info' : '', '#/queues')}
      ${kpi('Alarms', alarmsText, state.alarms.length ? `${state.alarms.length} defined` : 'CloudWatch alarms in the template', firing ? 'danger' : state.alarms.length ? 'ok' : '', '#/alarms')}
      ${kpi('On AWS, so far', cost ? fmtMoney(cost.total) : '…', cost && cost.projected_per_month !== null && cost.projected_per_month !== undefined ? `≈ ${fmtMoney(cost.projected_per_month)}/month at this rate, before the free tier` : 'before the free tier (nimbus cost)')}`.s;
  if (out !== kpiHTML) {
    kpiHTML = out;
    $('#kpis').innerHTML = out;
  }
}

// ---------------------------------------------------------------- recent activity

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

let recentSig = '';

function renderRecent() {
  const traces = [...state.traces].sort((a, b) => Number(b.start_us) - Number(a.start_us)).slice(0, 6);
  const errors = [];
  for (let i = state.logs.length - 1; i >= 0 && errors.length < 6; i--) {
    const e = state.logs[i];
    if (classifyLog(e).tone === 'error') errors.push(e);
  }
  const sig = JSON.stringify([traces.map((t) => [t.trace_id, t.duration_ms, t.error]), errors.map((e) => e.seq), state.tracesLoaded, state.logsLoaded]);
  if (sig === recentSig) {
    for (const el of $$('#recent [data-ago]')) el.textContent = fmtAgo(Number(el.getAttribute('data-ago')));
    return;
  }
  recentSig = sig;
  setHTML(
    $('#recent'),
    html`<div class="card">
        <div class="card-head"><h2>Latest traces</h2><a class="small" href="#/traces">All traces →</a></div>
        ${traces.length
          ? html`<ul class="recent-list">${traces.map((t) => {
              const ms = Number(t.start_us) / 1000;
              return html`<li><a class="recent-row" href="#/traces/${encodeURIComponent(t.trace_id)}">
                <span class="recent-main"><strong>${t.name || t.trace_id}</strong> <span class="muted small">${plural((t.services || []).length, 'service')} · ${plural(Number(t.spans) || 0, 'span')}</span></span>
                <span class="recent-side">${t.error ? html`<span class="badge badge-alarm">error</span>` : ''}<span class="num">${fmtMs(Number(t.duration_ms))}</span><span class="muted small" data-ago="${ms}">${fmtAgo(ms)}</span></span>
              </a></li>`;
            })}</ul>`
          : html`<div class="empty small-empty"><div class="empty-title">No traces yet — send a request to an API</div><p>Each request through the stack shows up here and in Traces.</p></div>`}
      </div>
      <div class="card">
        <div class="card-head"><h2>Recent errors</h2><a class="small" href="#/logs">All logs →</a></div>
        ${errors.length
          ? html`<ul class="recent-list">${errors.map(
              (e) => html`<li><a class="recent-row" href="#/logs/${encodeURIComponent(String(e.source ?? ''))}">
                <span class="recent-main"><strong>${e.source}</strong> <span class="recent-msg mono">${logSummary(e)}</span></span>
                <span class="recent-side"><span class="muted small">${fmtClock(Number(e.time_ms))}</span></span>
              </a></li>`,
            )}</ul>`
          : html`<div class="empty small-empty"><div class="empty-title">No errors logged</div><p>Error lines from functions and 5xx answers from APIs since this page was opened appear here.</p></div>`}
      </div>`,
  );
}

export const overviewView = {
  init() {
    window.addEventListener('resize', () => {
      if (!$('#view-overview').hidden) fitMap();
    });
    enablePan($('#map'));
    $('#map-fit').addEventListener('click', () => {
      fitAll = !fitAll;
      fitMap();
    });
  },
  show() {
    renderKpis();
    if (built !== state.stackVersion || !state.stack) renderMap();
    else {
      fitMap();
      updateMap();
    }
    renderInspector();
    recentSig = '';
    renderRecent();
  },
  update() {
    renderKpis();
    if (built !== state.stackVersion || !state.stack) {
      renderMap();
      renderInspector();
    } else updateMap();
    renderRecent();
  },
  hide() {},
};
