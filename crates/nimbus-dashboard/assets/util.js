// Shared helpers: HTML escaping, formatting, the metrics store (rates and histogram
// quantiles from successive /metrics snapshots) and a small uPlot wrapper.

// ---------------------------------------------------------------- HTML

class Raw {
  constructor(s) { this.s = s; }
  toString() { return this.s; }
}

/** Marks a string as already-safe HTML. */
export const raw = (s) => new Raw(String(s));

/** Escapes text for use in HTML text and attribute values. */
export function esc(s) {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function renderValue(v) {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Raw) return v.s;
  if (Array.isArray(v)) return v.map(renderValue).join('');
  return esc(v);
}

/** Tagged template: every interpolated value is escaped unless it is raw() or html``. */
export function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += renderValue(values[i]) + strings[i + 1];
  return new Raw(out);
}

/** Replaces an element's content with an html`` result. */
export function setHTML(el, content) {
  if (el) el.innerHTML = renderValue(content);
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/** CSS.escape for attribute selectors, with a fallback. */
export function cssEscape(s) {
  return window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/["\\]/g, '\\$&');
}

// ---------------------------------------------------------------- formatting

export function fmtInt(n) {
  if (n === null || n === undefined || !isFinite(n)) return '–';
  return Math.round(n).toLocaleString('en-US');
}

/** A rate per second: 0, 0.05, 1.2, 35, 1.2k. */
export function fmtRate(r) {
  if (r === null || r === undefined || !isFinite(r)) return '–';
  if (r === 0) return '0';
  const a = Math.abs(r);
  if (a < 0.01) return '<0.01';
  if (a < 10) return r.toFixed(a < 1 ? 2 : 1).replace(/\.0+$/, '');
  if (a < 1000) return Math.round(r).toString();
  return (r / 1000).toFixed(1) + 'k';
}

/** Milliseconds: 0.31 ms, 12 ms, 1.24 s, 2 min. */
export function fmtMs(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return '–';
  if (ms === 0) return '0 ms';
  if (ms < 1) return ms.toFixed(2) + ' ms';
  if (ms < 10) return ms.toFixed(1) + ' ms';
  if (ms < 1000) return Math.round(ms) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
  return (ms / 60000).toFixed(1) + ' min';
}

/** Seconds as an age: 4 s, 3 min 20 s, 2 h 5 min. */
export function fmtAge(s) {
  if (s === null || s === undefined || !isFinite(s)) return '–';
  if (s < 1) return s > 0 ? '<1 s' : '0 s';
  if (s < 60) return Math.round(s) + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (Math.round(s) % 60) + ' s';
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

export function fmtClock(ms, withMs = false) {
  if (!isFinite(ms)) return '–';
  const d = new Date(ms);
  const base = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withMs ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
}

/** "12 s ago", "3 min ago", "yesterday 14:02". */
export function fmtAgo(ms, now = Date.now()) {
  if (!isFinite(ms)) return '–';
  const s = Math.max(0, (now - ms) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return Math.floor(s) + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return new Date(ms).toLocaleString();
}

export function fmtDateTime(ms) {
  if (!isFinite(ms)) return '–';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(ms)}`;
}

let measureCtx = null;
/** Width in px of `text` in a CSS `font` (canvas measurement; a rough estimate without canvas). */
export function textWidth(text, font) {
  if (measureCtx === null) {
    try {
      measureCtx = document.createElement('canvas').getContext('2d') || false;
    } catch (e) {
      measureCtx = false;
    }
  }
  if (!measureCtx) return String(text).length * 7;
  measureCtx.font = font;
  return measureCtx.measureText(String(text)).width;
}

/** Truncates `text` with an ellipsis so that it fits `maxWidth` px in `font`. */
export function fitText(text, font, maxWidth) {
  text = String(text ?? '');
  if (textWidth(text, font) <= maxWidth) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (textWidth(text.slice(0, mid) + '…', font) <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return text.slice(0, Math.max(1, lo)) + '…';
}

/** Truncates with an ellipsis. */
export function trunc(s, n) {
  s = String(s ?? '');
  return s.length > n ? s.slice(0, Math.max(1, n - 1)) + '…' : s;
}

// ---------------------------------------------------------------- node kinds

export const KIND_ORDER = ['api', 'function', 'bus', 'rule', 'queue'];
export const KIND_LABEL = {
  api: 'API',
  function: 'Lambda function',
  bus: 'Event bus',
  rule: 'EventBridge rule',
  queue: 'SQS queue',
};

/** Splits a node id "kind:name" (the name may itself contain colons). */
export function splitId(id) {
  const i = String(id).indexOf(':');
  return i < 0 ? { kind: 'other', name: String(id) } : { kind: id.slice(0, i), name: id.slice(i + 1) };
}

// ---------------------------------------------------------------- metrics

const WINDOW_S = 10; // rates and quantiles are computed over this many seconds
const KEEP_S = 10 * 60 + 20; // snapshots kept (about 10 minutes at one per 2 s)

/** Does a sample's label set match a selector (a label absent from the selector matches any value)? */
export function labelsMatch(labels, sel) {
  if (!sel) return true;
  for (const k in sel) {
    if (sel[k] === undefined || sel[k] === null) continue;
    if (!labels || String(labels[k]) !== String(sel[k])) return false;
  }
  return true;
}

/** One /metrics snapshot, indexed by metric name. */
class Snapshot {
  constructor(t, samples) {
    this.t = t; // seconds
    this.byName = new Map();
    for (const s of samples || []) {
      if (!s || typeof s.name !== 'string') continue;
      const v = Number(s.value);
      if (!isFinite(v)) continue;
      let arr = this.byName.get(s.name);
      if (!arr) this.byName.set(s.name, (arr = []));
      arr.push({ labels: s.labels || {}, value: v });
    }
  }
  /** Sum of the samples of `name` matching `sel`; null when there is no such sample. */
  sum(name, sel) {
    const arr = this.byName.get(name);
    if (!arr) return null;
    let total = 0;
    let found = false;
    for (const s of arr) {
      if (labelsMatch(s.labels, sel)) {
        total += s.value;
        found = true;
      }
    }
    return found ? total : null;
  }
  /** Distinct values of a label over the samples of `name`. */
  labelValues(name, label) {
    const out = new Set();
    for (const s of this.byName.get(name) || []) if (s.labels[label] !== undefined) out.add(String(s.labels[label]));
    return out;
  }
  /** Cumulative bucket counts of a histogram, summed over matching series: Map(le -> count). */
  buckets(name, sel) {
    const out = new Map();
    for (const s of this.byName.get(name + '_bucket') || []) {
      if (!labelsMatch(s.labels, sel)) continue;
      const le = s.labels.le;
      const ub = le === '+Inf' || le === 'Inf' || le === '+inf' ? Infinity : Number(le);
      if (Number.isNaN(ub)) continue;
      out.set(ub, (out.get(ub) || 0) + s.value);
    }
    return out;
  }
}

/** Prometheus-style histogram_quantile over (already differenced) cumulative buckets. */
export function histogramQuantile(q, bucketMap) {
  const bounds = Array.from(bucketMap.keys()).sort((a, b) => a - b);
  if (!bounds.length) return null;
  const counts = bounds.map((b) => Math.max(0, bucketMap.get(b)));
  // keep counts monotonic (float noise, partial resets)
  for (let i = 1; i < counts.length; i++) if (counts[i] < counts[i - 1]) counts[i] = counts[i - 1];
  const total = counts[counts.length - 1];
  if (!(total > 0)) return null;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (counts[i] >= rank) {
      const upper = bounds[i];
      if (upper === Infinity) return i > 0 ? bounds[i - 1] : null;
      const lower = i > 0 ? bounds[i - 1] : 0;
      const prevCount = i > 0 ? counts[i - 1] : 0;
      const inBucket = counts[i] - prevCount;
      if (inBucket <= 0) return upper;
      return lower + (upper - lower) * ((rank - prevCount) / inBucket);
    }
  }
  return bounds[bounds.length - 1] === Infinity ? bounds[bounds.length - 2] ?? null : bounds[bounds.length - 1];
}

export class MetricStore {
  constructor() {
    this.snaps = [];
  }
  get latest() {
    return this.snaps[this.snaps.length - 1] || null;
  }
  /** Adds a GET api/metrics answer; returns the new snapshot. */
  push(json) {
    const tMs = Number(json && json.time_ms) || Date.now();
    const snap = new Snapshot(tMs / 1000, json && json.samples);
    const last = this.latest;
    if (last && snap.t <= last.t) {
      // same or older timestamp (clock step, or a restarted server): start over
      if (snap.t < last.t - 1) this.snaps = [];
      else this.snaps.pop();
    }
    this.snaps.push(snap);
    const cutoff = snap.t - KEEP_S;
    while (this.snaps.length > 2 && this.snaps[0].t < cutoff) this.snaps.shift();
    return snap;
  }
  /** The snapshot about `windowS` before `snap` (at least one step back); null if none. */
  before(snap, windowS = WINDOW_S) {
    const i = this.snaps.indexOf(snap);
    if (i <= 0) return null;
    let j = i - 1;
    while (j > 0 && snap.t - this.snaps[j - 1].t <= windowS + 0.5) j--;
    return this.snaps[j];
  }
  value(name, sel, snap = this.latest) {
    return snap ? snap.sum(name, sel) : null;
  }
  /** Increase of a counter over the window ending at `snap` (a reset counts from zero). */
  increase(name, sel, windowS = WINDOW_S, snap = this.latest) {
    if (!snap) return null;
    const prev = this.before(snap, windowS);
    if (!prev) return null;
    const now = snap.sum(name, sel);
    if (now === null) return prev.sum(name, sel) === null ? 0 : null;
    const then = prev.sum(name, sel) ?? 0;
    return now >= then ? now - then : now;
  }
  /** Per-second rate of a counter over the window ending at `snap`. */
  rate(name, sel, windowS = WINDOW_S, snap = this.latest) {
    if (!snap) return null;
    const prev = this.before(snap, windowS);
    if (!prev) return null;
    const inc = this.increase(name, sel, windowS, snap);
    const dt = snap.t - prev.t;
    return inc === null || dt <= 0 ? null : inc / dt;
  }
  /** Quantile (in the histogram's unit) of the observations made in the window ending at `snap`. */
  quantile(q, name, sel, windowS = WINDOW_S, snap = this.latest) {
    if (!snap) return null;
    const prev = this.before(snap, windowS);
    if (!prev) return null;
    const now = snap.buckets(name, sel);
    const then = prev.buckets(name, sel);
    const diff = new Map();
    for (const [le, c] of now) {
      const p = then.get(le) || 0;
      diff.set(le, c >= p ? c - p : c);
    }
    return histogramQuantile(q, diff);
  }
}

// ---------------------------------------------------------------- charts (uPlot)

export const COLORS = {
  blue: '#2563eb',
  red: '#dc2626',
  amber: '#d97706',
  green: '#059669',
  violet: '#7c3aed',
  slate: '#64748b',
  teal: '#0d9488',
  orange: '#ea580c',
};

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

const AXIS_FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';

/**
 * A live chart in `el`. `series`: [{label, color, fill, bars, fmt}]. Created lazily once the
 * element has a width (charts in hidden views are created when the view is shown).
 * Returns {setData(xs, ...ys), resize()}.
 */
export function liveChart(el, { series, height = 150, yFmt = fmtRate, minMax = 1, spark = false }) {
  let plot = null;
  let data = null;
  const U = window.uPlot;

  function options(width) {
    const s = [{}];
    for (const d of series) {
      const item = {
        label: d.label,
        stroke: d.color,
        width: spark ? 1.25 : 1.6,
        fill: d.fill === false ? undefined : alpha(d.color, spark ? 0.14 : 0.08),
        // a line needs two points: until there are a few, draw the points themselves
        points: spark ? { show: false } : { show: (u, si, i0, i1) => i1 - i0 < 4, size: 5 },
        spanGaps: false,
        value: (u, v) => (v === null || v === undefined ? '–' : (d.fmt || yFmt)(v)),
      };
      if (d.bars && U.paths && U.paths.bars) {
        item.paths = U.paths.bars({ size: [0.7, 8], align: 0 });
        item.fill = alpha(d.color, 0.55);
        item.width = 0;
        item.points = { show: false };
      }
      s.push(item);
    }
    const axisCommon = {
      stroke: '#6b7280',
      font: AXIS_FONT,
      grid: { stroke: '#eef0f3', width: 1 },
      ticks: { show: false },
    };
    return {
      width,
      height,
      padding: spark ? [2, 2, 2, 2] : [10, 12, 0, 2],
      legend: { show: !spark, live: true },
      cursor: spark ? { show: false } : { drag: { x: false, y: false }, points: { size: 6 } },
      select: { show: false },
      scales: {
        x: { time: true },
        y: {
          range: (u, min, max) => [0, Math.max(minMax, (max || 0) * 1.15)],
        },
      },
      axes: spark
        ? [{ show: false }, { show: false }]
        : [
            { ...axisCommon, space: 78, size: 24, values: (u, vals) => vals.map((v) => fmtClock(v * 1000)) },
            { ...axisCommon, size: 50, values: (u, vals) => vals.map((v) => (v === 0 ? '0' : yFmt(v))) },
          ],
      series: s,
    };
  }

  function ensure() {
    if (plot) return true;
    const w = el.clientWidth;
    if (!U || !w) return false;
    el.textContent = '';
    plot = new U(options(w), data || [[], ...series.map(() => [])], el);
    return true;
  }

  if (window.ResizeObserver) {
    new ResizeObserver(() => {
      if (!el.clientWidth) return;
      if (!plot) {
        if (data) ensure();
      } else if (Math.abs(plot.width - el.clientWidth) > 2) {
        plot.setSize({ width: el.clientWidth, height });
      }
    }).observe(el);
  }

  return {
    setData(xs, ...ys) {
      data = [xs, ...ys];
      if (ensure()) {
        plot.setData(data);
        // with no cursor over the chart, the legend shows the latest values
        if (!spark && xs.length && !(plot.cursor && plot.cursor.left >= 0)) {
          try {
            plot.setLegend({ idx: xs.length - 1 });
          } catch (e) {
            /* older uPlot */
          }
        }
      }
    },
    resize() {
      if (plot && el.clientWidth && Math.abs(plot.width - el.clientWidth) > 2) plot.setSize({ width: el.clientWidth, height });
      else if (!plot && data) ensure();
    },
  };
}
