// Buckets view: S3 buckets and their objects, read from S3's REST API on nimbus's endpoint
// (ListBuckets, ListObjectsV2 with a '/' delimiter, HeadObject, a ranged GetObject for the
// preview of a small text object), as any SDK would, so the dashboard depends on no S3 code.
// Read-only. Per-bucket requests, errors and bytes come from /metrics.
// Routes: #/buckets, #/buckets/<bucket>/<prefix>, and ?key=<key> for an object's details.

import { state } from './app.js';
import { $, $$, html, setHTML, fmtInt, fmtDateTime } from './util.js';

// nimbus routes a request to S3 by its signature's service; it checks no signature.
const SIG = 'AWS4-HMAC-SHA256 Credential=dashboard/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0';
const PAGE = 200;
const PREVIEW_BYTES = 16384;
const LIST_REFRESH_MS = 5000;

let view = { bucket: null, prefix: '', key: null };
let buckets = null; // [{name, created}] or null while loading
let bucketsError = '';
let bucketsAt = 0;
let listing = null; // {bucket, prefix, folders, objects, token, truncated, error}
let detail = null; // {bucket, key, head, preview, error}
let busy = false;

async function s3(path, opts = {}) {
  const res = await fetch(path, { cache: 'no-store', ...opts, headers: { authorization: SIG, ...(opts.headers || {}) } });
  const text = await res.text();
  if (!res.ok && res.status !== 206) {
    const doc = text ? new DOMParser().parseFromString(text, 'application/xml') : null;
    const code = doc && doc.querySelector('Code') ? doc.querySelector('Code').textContent : `HTTP ${res.status}`;
    const msg = doc && doc.querySelector('Message') ? doc.querySelector('Message').textContent : '';
    throw new Error(msg ? `${code}: ${msg}` : code);
  }
  return { res, text };
}

const xml = (text) => new DOMParser().parseFromString(text, 'application/xml');
const kids = (node, name) => Array.from(node.children).filter((c) => c.localName === name);
const field = (node, name) => {
  const c = kids(node, name)[0];
  return c ? c.textContent : '';
};

function fmtBytes(n) {
  if (n === null || n === undefined || !isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

const enc = (s) => encodeURIComponent(s).replace(/%2F/g, '/');
const hashOf = (bucket, prefix, key) =>
  '#/buckets/' + encodeURIComponent(bucket) + (prefix ? '/' + encodeURIComponent(prefix) : '') + (key ? '?key=' + encodeURIComponent(encodeURIComponent(key)) : ''); // the router decodes once

async function loadBuckets() {
  try {
    const { text } = await s3('/');
    buckets = kids(xml(text).documentElement.querySelector('Buckets') || xml('<x/>').documentElement, 'Bucket').map((b) => ({
      name: field(b, 'Name'),
      created: Date.parse(field(b, 'CreationDate')),
    }));
    bucketsError = '';
  } catch (e) {
    bucketsError = String(e.message || e);
  }
  bucketsAt = Date.now();
}

async function loadListing(bucket, prefix, token) {
  const q = new URLSearchParams({ 'list-type': '2', delimiter: '/', 'max-keys': String(PAGE), prefix });
  if (token) q.set('continuation-token', token);
  try {
    const { text } = await s3('/' + encodeURIComponent(bucket) + '?' + q.toString());
    const root = xml(text).documentElement;
    const page = {
      folders: kids(root, 'CommonPrefixes').map((p) => field(p, 'Prefix')),
      objects: kids(root, 'Contents').map((o) => ({
        key: field(o, 'Key'),
        size: Number(field(o, 'Size')),
        modified: Date.parse(field(o, 'LastModified')),
        etag: field(o, 'ETag'),
      })),
      token: field(root, 'NextContinuationToken'),
      truncated: field(root, 'IsTruncated') === 'true',
    };
    if (token && listing && listing.bucket === bucket && listing.prefix === prefix) {
      listing.folders.push(...page.folders);
      listing.objects.push(...page.objects);
      Object.assign(listing, { token: page.token, truncated: page.truncated });
    } else {
      listing = { bucket, prefix, ...page, error: '' };
    }
  } catch (e) {
    listing = { bucket, prefix, folders: [], objects: [], token: '', truncated: false, error: String(e.message || e) };
  }
}

const TEXTUAL = /^(text\/|application\/(json|xml|yaml|x-yaml|javascript|x-ndjson|csv))|\+json|\+xml/;

async function loadDetail(bucket, key) {
  detail = { bucket, key, head: null, preview: null, error: '' };
  try {
    const path = '/' + encodeURIComponent(bucket) + '/' + enc(key);
    const { res } = await s3(path, { method: 'HEAD' });
    const h = res.headers;
    const meta = [];
    h.forEach((v, k) => {
      if (k.startsWith('x-amz-meta-')) meta.push([k.slice(11), v]);
    });
    detail.head = {
      type: h.get('content-type') || '',
      size: Number(h.get('content-length')),
      etag: h.get('etag') || '',
      modified: Date.parse(h.get('last-modified') || ''),
      version: h.get('x-amz-version-id') || '',
      tags: h.get('x-amz-tagging-count') || '0',
      meta,
    };
    if (TEXTUAL.test(detail.head.type) && detail.head.size > 0) {
      const { text } = await s3(path, { headers: { range: `bytes=0-${PREVIEW_BYTES - 1}` } });
      detail.preview = { text, cut: detail.head.size > PREVIEW_BYTES };
    }
  } catch (e) {
    detail.error = String(e.message || e);
  }
}

function metricsOf(bucket) {
  const m = state.metrics;
  const snap = m.latest;
  if (!snap) return { requests: null, errors: null, received: null, sent: null };
  const requests = snap.sum('nimbus_s3_requests_total', { bucket });
  const ok = snap.sum('nimbus_s3_requests_total', { bucket, outcome: 'ok' });
  return {
    requests,
    errors: requests === null ? null : requests - (ok || 0),
    received: snap.sum('nimbus_s3_received_bytes_total', { bucket }),
    sent: snap.sum('nimbus_s3_sent_bytes_total', { bucket }),
  };
}

function renderList() {
  const host = $('#bucket-list');
  if (bucketsError) {
    setHTML(host, html`<div class="empty"><div class="empty-title">Cannot list buckets</div><p>${bucketsError}</p></div>`);
    return;
  }
  if (!buckets) {
    setHTML(host, html`<div class="empty"><div class="empty-title">Loading buckets…</div></div>`);
    return;
  }
  if (!buckets.length) {
    setHTML(
      host,
      html`<div class="empty"><div class="empty-title">No buckets yet</div>
        <p>Declare an <code>AWS::S3::Bucket</code> in the template and restart <code>nimbus up</code>, or create one with <code>aws s3 mb s3://my-bucket --endpoint-url ${location.origin}</code>.</p></div>`,
    );
    return;
  }
  const rows = buckets.map((b) => {
    const m = metricsOf(b.name);
    return html`<tr class="clickable" data-bucket="${b.name}">
      <td><strong>${b.name}</strong></td>
      <td>${isFinite(b.created) ? fmtDateTime(b.created) : '–'}</td>
      <td class="num">${fmtInt(m.requests)}</td>
      <td class="num" data-tone="${m.errors ? 'danger' : ''}">${fmtInt(m.errors)}</td>
      <td class="num">${fmtBytes(m.received)}</td>
      <td class="num">${fmtBytes(m.sent)}</td>
    </tr>`;
  });
  setHTML(
    host,
    html`<table class="table">
      <thead><tr><th>Bucket</th><th>Created</th><th class="num">Requests</th><th class="num">Errors</th><th class="num">Bytes in</th><th class="num">Bytes out</th></tr></thead>
      <tbody>${rows}</tbody>
    </table>`,
  );
  for (const tr of $$('tr[data-bucket]', host)) tr.addEventListener('click', () => (location.hash = hashOf(tr.dataset.bucket, '')));
}

function renderBucket() {
  const host = $('#bucket-detail');
  const { bucket, prefix } = view;
  const parts = prefix ? prefix.replace(/\/$/, '').split('/') : [];
  const crumbs = [html`<a href="${hashOf(bucket, '')}">${bucket}</a>`];
  parts.forEach((p, i) => crumbs.push(html` / <a href="${hashOf(bucket, parts.slice(0, i + 1).join('/') + '/')}">${p}</a>`));
  let body;
  if (!listing || listing.bucket !== bucket || listing.prefix !== prefix) {
    body = html`<div class="empty"><div class="empty-title">Loading objects…</div></div>`;
  } else if (listing.error) {
    body = html`<div class="empty"><div class="empty-title">Cannot list objects</div><p>${listing.error}</p></div>`;
  } else if (!listing.folders.length && !listing.objects.length) {
    body = html`<div class="empty"><div class="empty-title">No objects here</div><p>Upload one: <code>aws s3 cp file.txt s3://${bucket}/${prefix} --endpoint-url ${location.origin}</code></p></div>`;
  } else {
    const rows = [
      ...listing.folders.map(
        (f) => html`<tr class="clickable" data-prefix="${f}"><td><strong>${f.slice(prefix.length)}</strong></td><td class="muted">folder</td><td></td><td></td></tr>`,
      ),
      ...listing.objects.map(
        (o) => html`<tr class="clickable" data-key="${o.key}"><td class="mono">${o.key.slice(prefix.length) || o.key}</td><td class="num">${fmtBytes(o.size)}</td><td>${isFinite(o.modified) ? fmtDateTime(o.modified) : '–'}</td><td class="mono muted small">${o.etag}</td></tr>`,
      ),
    ];
    body = html`<table class="table" id="object-table">
        <thead><tr><th>Name</th><th class="num">Size</th><th>Last modified</th><th>ETag</th></tr></thead>
        <tbody>${rows}</tbody>
      </table>
      ${listing.truncated ? html`<div class="card-head"><button class="btn-ghost" id="objects-more" type="button">Load more</button></div>` : ''}`;
  }
  const m = metricsOf(bucket);
  setHTML(
    host,
    html`<div class="crumbs"><a href="#/buckets">← All buckets</a></div>
      <p class="muted">${crumbs} · <span id="bucket-stats">${statsText(m)}</span></p>
      <div class="card table-card">${body}</div>
      <div id="object-detail"></div>`,
  );
  for (const tr of $$('tr[data-prefix]', host)) tr.addEventListener('click', () => (location.hash = hashOf(bucket, tr.dataset.prefix)));
  for (const tr of $$('tr[data-key]', host)) tr.addEventListener('click', () => (location.hash = hashOf(bucket, prefix, tr.dataset.key)));
  const more = $('#objects-more', host);
  if (more) more.addEventListener('click', async () => {
    more.disabled = true;
    await loadListing(bucket, prefix, listing.token);
    renderBucket();
  });
  renderDetail();
}

function renderDetail() {
  const host = $('#object-detail');
  if (!host || !view.key) return;
  if (!detail || detail.key !== view.key || detail.bucket !== view.bucket) {
    setHTML(host, html`<div class="card"><div class="empty"><div class="empty-title">Loading ${view.key}…</div></div></div>`);
    return;
  }
  if (detail.error) {
    setHTML(host, html`<div class="card"><div class="empty"><div class="empty-title">${view.key}</div><p>${detail.error}</p></div></div>`);
    return;
  }
  const h = detail.head;
  const rows = [
    ['Key', detail.key],
    ['Size', `${fmtBytes(h.size)} (${fmtInt(h.size)} bytes)`],
    ['Content-Type', h.type],
    ['Last modified', isFinite(h.modified) ? fmtDateTime(h.modified) : '–'],
    ['ETag', h.etag],
    ['Tags', h.tags],
    ...(h.version ? [['Version', h.version]] : []),
    ...h.meta.map(([k, v]) => [`x-amz-meta-${k}`, v]),
  ];
  setHTML(
    host,
    html`<div class="card" id="object-card">
      <div class="card-head"><h2 class="mono">${detail.key}</h2></div>
      <table class="table"><tbody>${rows.map(([k, v]) => html`<tr><th>${k}</th><td class="mono">${v}</td></tr>`)}</tbody></table>
      ${detail.preview
        ? html`<div class="card-head"><h2>Preview${detail.preview.cut ? html` <span class="muted small">(first ${fmtBytes(PREVIEW_BYTES)})</span>` : ''}</h2></div>
            <pre class="mono object-preview" id="object-preview">${detail.preview.text}</pre>`
        : ''}
    </div>`,
  );
}

function parseArg(arg) {
  // "<bucket>/<prefix>?key=<key>" (the router has decoded it once)
  let key = null;
  let rest = arg || '';
  const q = rest.indexOf('?key=');
  if (q >= 0) {
    key = decodeURIComponent(rest.slice(q + 5));
    rest = rest.slice(0, q);
  }
  const slash = rest.indexOf('/');
  return slash < 0 ? { bucket: rest || null, prefix: '', key } : { bucket: rest.slice(0, slash), prefix: rest.slice(slash + 1), key };
}

async function refresh(force) {
  if (busy) return;
  busy = true;
  try {
    if (!view.bucket) {
      if (force || Date.now() - bucketsAt > LIST_REFRESH_MS) await loadBuckets();
      renderList();
    } else {
      if (force || !listing || listing.bucket !== view.bucket || listing.prefix !== view.prefix) {
        renderBucket();
        await loadListing(view.bucket, view.prefix);
      }
      if (view.key && (force || !detail || detail.key !== view.key || detail.bucket !== view.bucket)) {
        renderBucket();
        await loadDetail(view.bucket, view.key);
      }
      renderBucket();
    }
  } finally {
    busy = false;
  }
}

export const bucketsView = {
  init() {},
  show(arg) {
    view = parseArg(arg);
    $('#bucket-list-wrap').hidden = !!view.bucket;
    $('#bucket-detail').hidden = !view.bucket;
    $('#buckets-title').textContent = view.bucket || 'Buckets';
    refresh(true);
  },
  update() {
    if (!view.bucket) refresh(false);
    else renderBucketStats();
  },
  hide() {},
};

function statsText(m) {
  return `${fmtInt(m.requests)} requests, ${fmtInt(m.errors)} errors, ${fmtBytes(m.received)} in, ${fmtBytes(m.sent)} out`;
}

function renderBucketStats() {
  // The listing stays as loaded (a user reading it should not see it jump); the counts move.
  const el = $('#bucket-stats');
  if (el && view.bucket) el.textContent = statsText(metricsOf(view.bucket));
}
