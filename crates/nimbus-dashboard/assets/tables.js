// Tables view: DynamoDB tables and their items, read from DynamoDB's API (AWS JSON 1.0) on
// nimbus's endpoint, as any SDK would (ListTables, DescribeTable, Scan, Query), so the
// dashboard depends on no DynamoDB code. Read-only. Per-table requests, errors and latency come
// from /metrics. Routes: #/tables and #/tables/<table>.

import { state, awsJsonCall } from './app.js';
import { $, $$, html, setHTML, fmtInt } from './util.js';

const PAGE = 50;
const LIST_REFRESH_MS = 5000;
const COLUMNS = 8;

let view = { table: null };
let tables = null; // [DescribeTable's Table] or null while loading
let listError = '';
let listAt = 0;
// The items shown: {table, query: {index, pk, sk} | null, items, next, error, loading}
let page = null;
let busy = false;

async function ddb(op, input) {
  try {
    return await awsJsonCall(`DynamoDB_20120810.${op}`, input);
  } catch (e) {
    throw new Error(e.code && e.code !== e.message ? `${e.code}: ${e.message}` : e.message);
  }
}

/** A DynamoDB attribute value as plain JSON. */
function plain(v) {
  if (!v || typeof v !== 'object') return v;
  if ('S' in v) return v.S;
  if ('N' in v) return Number(v.N);
  if ('BOOL' in v) return v.BOOL;
  if ('NULL' in v) return null;
  if ('M' in v) return Object.fromEntries(Object.entries(v.M).map(([k, x]) => [k, plain(x)]));
  if ('L' in v) return v.L.map(plain);
  if ('SS' in v) return v.SS;
  if ('NS' in v) return v.NS.map(Number);
  if ('B' in v) return `<binary ${String(v.B).length} b64>`;
  if ('BS' in v) return v.BS.map((b) => `<binary ${String(b).length} b64>`);
  return v;
}

function shown(v) {
  const p = plain(v);
  return typeof p === 'string' ? p : JSON.stringify(p);
}

async function loadTables() {
  try {
    const names = [];
    let start;
    do {
      const page = await ddb('ListTables', start ? { ExclusiveStartTableName: start } : {});
      names.push(...(page.TableNames || []));
      start = page.LastEvaluatedTableName;
    } while (start && names.length < 1000);
    tables = await Promise.all(names.map(async (n) => (await ddb('DescribeTable', { TableName: n })).Table));
    listError = '';
  } catch (e) {
    listError = String(e.message || e);
  }
  listAt = Date.now();
}

function keysOf(schema) {
  const hash = (schema || []).find((k) => k.KeyType === 'HASH');
  const range = (schema || []).find((k) => k.KeyType === 'RANGE');
  return { pk: hash ? hash.AttributeName : null, sk: range ? range.AttributeName : null };
}

function metricsOf(table) {
  const snap = state.metrics.latest;
  if (!snap) return { requests: null, errors: null };
  const requests = snap.sum('nimbus_dynamodb_requests_total', { table });
  const ok = snap.sum('nimbus_dynamodb_requests_total', { table, outcome: 'ok' });
  return { requests, errors: requests === null ? null : requests - (ok || 0) };
}

function renderList() {
  const host = $('#table-list');
  if (listError) {
    setHTML(host, html`<div class="empty"><div class="empty-title">Cannot list tables</div><p>${listError}</p></div>`);
    return;
  }
  if (!tables) {
    setHTML(host, html`<div class="empty"><div class="empty-title">Loading tables…</div></div>`);
    return;
  }
  if (!tables.length) {
    setHTML(
      host,
      html`<div class="empty"><div class="empty-title">No tables yet</div>
        <p>Declare an <code>AWS::DynamoDB::Table</code> (or <code>AWS::Serverless::SimpleTable</code>) in the template and restart <code>nimbus up</code>, or create one with <code>aws dynamodb create-table --endpoint-url ${location.origin}</code>.</p></div>`,
    );
    return;
  }
  const rows = tables.map((t) => {
    const k = keysOf(t.KeySchema);
    const m = metricsOf(t.TableName);
    const gsis = (t.GlobalSecondaryIndexes || []).length;
    const lsis = (t.LocalSecondaryIndexes || []).length;
    return html`<tr class="clickable" data-table="${t.TableName}">
      <td><strong>${t.TableName}</strong></td>
      <td class="mono">${k.pk}${k.sk ? html` <span class="muted">+</span> ${k.sk}` : ''}</td>
      <td>${gsis || lsis ? `${gsis} global, ${lsis} local` : html`<span class="muted">none</span>`}</td>
      <td>${t.StreamSpecification && t.StreamSpecification.StreamEnabled ? t.StreamSpecification.StreamViewType : html`<span class="muted">off</span>`}</td>
      <td class="num">${fmtInt(t.ItemCount)}</td>
      <td class="num">${fmtInt(m.requests)}</td>
      <td class="num" data-tone="${m.errors ? 'danger' : ''}">${fmtInt(m.errors)}</td>
    </tr>`;
  });
  setHTML(
    host,
    html`<table class="table">
      <thead><tr><th>Table</th><th>Key</th><th>Indexes</th><th>Stream</th><th class="num">Items</th><th class="num">Requests</th><th class="num">Errors</th></tr></thead>
      <tbody>${rows}</tbody>
    </table>`,
  );
  for (const tr of $$('tr[data-table]', host)) tr.addEventListener('click', () => (location.hash = '#/tables/' + encodeURIComponent(tr.dataset.table)));
}

/** The key schema of the table or of one of its indexes. */
function schemaOf(t, index) {
  if (!index) return t.KeySchema;
  const all = [...(t.GlobalSecondaryIndexes || []), ...(t.LocalSecondaryIndexes || [])];
  const i = all.find((x) => x.IndexName === index);
  return i ? i.KeySchema : t.KeySchema;
}

/** The type DynamoDB knows an attribute by (S, N or B). */
function typeOf(t, name) {
  const d = (t.AttributeDefinitions || []).find((a) => a.AttributeName === name);
  return d ? d.AttributeType : 'S';
}

async function loadItems(t, query, start) {
  const input = { TableName: t.TableName, Limit: PAGE };
  if (start) input.ExclusiveStartKey = start;
  let op = 'Scan';
  if (query && query.pk !== '') {
    op = 'Query';
    const k = keysOf(schemaOf(t, query.index));
    if (query.index) input.IndexName = query.index;
    input.ExpressionAttributeNames = { '#pk': k.pk };
    input.ExpressionAttributeValues = { ':pk': { [typeOf(t, k.pk)]: query.pk } };
    input.KeyConditionExpression = '#pk = :pk';
    if (k.sk && query.sk !== '') {
      input.ExpressionAttributeNames['#sk'] = k.sk;
      input.ExpressionAttributeValues[':sk'] = { [typeOf(t, k.sk)]: query.sk };
      input.KeyConditionExpression += typeOf(t, k.sk) === 'S' ? ' AND begins_with(#sk, :sk)' : ' AND #sk = :sk';
    }
  } else if (query && query.index) {
    input.IndexName = query.index;
  }
  try {
    const out = await ddb(op, input);
    const items = (start && page ? page.items : []).concat(out.Items || []);
    page = { table: t.TableName, query, items, next: out.LastEvaluatedKey || null, error: '', op };
  } catch (e) {
    page = { table: t.TableName, query, items: [], next: null, error: String(e.message || e), op };
  }
}

function renderTable() {
  const host = $('#table-detail');
  const t = (tables || []).find((x) => x.TableName === view.table);
  if (!t) {
    setHTML(host, html`<div class="card"><div class="empty"><div class="empty-title">${tables ? `No table named “${view.table}”` : 'Loading…'}</div><p><a href="#/tables">All tables</a></p></div></div>`);
    return;
  }
  const k = keysOf(t.KeySchema);
  const indexes = [...(t.GlobalSecondaryIndexes || []), ...(t.LocalSecondaryIndexes || [])].map((i) => i.IndexName);
  const q = (page && page.table === t.TableName && page.query) || { index: '', pk: '', sk: '' };
  const items = page && page.table === t.TableName ? page.items : null;
  // Key attributes first, then the most common others, up to COLUMNS in all.
  const counts = new Map();
  for (const it of items || []) for (const name of Object.keys(it)) counts.set(name, (counts.get(name) || 0) + 1);
  const keys = [k.pk, k.sk].filter(Boolean);
  const rest = [...counts.entries()].filter(([n]) => !keys.includes(n)).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([n]) => n);
  const cols = [...keys, ...rest].slice(0, COLUMNS);
  setHTML(
    host,
    html`<div class="crumbs"><a href="#/tables">← All tables</a></div>
    <div class="card">
      <div class="card-head"><h2>${t.TableName}</h2><span class="muted small">${fmtInt(t.ItemCount)} items · key ${k.pk}${k.sk ? ` + ${k.sk}` : ''} · ${t.BillingModeSummary ? t.BillingModeSummary.BillingMode : 'PROVISIONED'}</span></div>
      <form class="query-box" id="table-query">
        <label class="field"><span>Index</span><select name="index"><option value="">(table)</option>${indexes.map((n) => html`<option value="${n}" ${q.index === n ? 'selected' : ''}>${n}</option>`)}</select></label>
        <label class="field"><span>Partition key</span><input name="pk" value="${q.pk}" placeholder="empty: scan" autocomplete="off" spellcheck="false"></label>
        <label class="field"><span>Sort key (begins with)</span><input name="sk" value="${q.sk}" autocomplete="off" spellcheck="false"></label>
        <button class="btn-ghost" type="submit">${q.pk ? 'Query' : 'Scan'}</button>
      </form>
      ${page && page.error ? html`<div class="empty"><div class="empty-title">${page.op} failed</div><p>${page.error}</p></div>` : ''}
      ${items === null ? html`<div class="empty"><div class="empty-title">Loading items…</div></div>` : items.length === 0 && !(page && page.error) ? html`<div class="empty"><div class="empty-title">No items</div></div>` : items.length ? html`<div class="table-scroll"><table class="table items">
        <thead><tr>${cols.map((c) => html`<th class="mono">${c}</th>`)}${counts.size > cols.length ? html`<th class="muted">…</th>` : ''}</tr></thead>
        <tbody>${items.map((it) => html`<tr title="${JSON.stringify(plain({ M: it }), null, 1)}">${cols.map((c) => html`<td class="mono small">${c in it ? shown(it[c]) : ''}</td>`)}${counts.size > cols.length ? html`<td class="muted small">${Object.keys(it).length - cols.filter((c) => c in it).length} more</td>` : ''}</tr>`)}</tbody>
      </table></div>
      <div class="muted small items-foot">${fmtInt(items.length)} item(s) shown${page && page.next ? html` · <button class="btn-ghost" id="items-more" type="button">Next ${PAGE}</button>` : ''}</div>` : ''}
    </div>`,
  );
  $('#table-query', host).addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    page = null;
    renderTable();
    await loadItems(t, { index: String(f.get('index') || ''), pk: String(f.get('pk') || ''), sk: String(f.get('sk') || '') });
    renderTable();
  });
  const more = $('#items-more', host);
  if (more) more.addEventListener('click', async () => {
    await loadItems(t, page.query, page.next);
    renderTable();
  });
}

async function refresh(force) {
  if (busy) return;
  busy = true;
  try {
    if (force || !tables || Date.now() - listAt > LIST_REFRESH_MS) await loadTables();
    if (!view.table) {
      renderList();
    } else {
      const t = (tables || []).find((x) => x.TableName === view.table);
      if (t && (force || !page || page.table !== t.TableName)) {
        page = null;
        renderTable();
        await loadItems(t, null, null);
      }
      renderTable();
    }
  } finally {
    busy = false;
  }
}

export const tablesView = {
  init() {},
  show(arg) {
    view = { table: arg || null }; // the router has decoded it
    $('#table-list-wrap').hidden = !!view.table;
    $('#table-detail').hidden = !view.table;
    $('#tables-title').textContent = view.table || 'Tables';
    refresh(true);
  },
  update() {
    // The items page stays as the user left it; the list refreshes its counts.
    if (!view.table) refresh(false);
  },
  hide() {},
};
