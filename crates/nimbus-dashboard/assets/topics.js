// Topics view: SNS topics with their subscriptions, read from SNS's query API (JSON answers to
// `Accept: application/json`: ListTopics, GetTopicAttributes, ListSubscriptionsByTopic); and
// Config view: Parameter Store's parameters and Secrets Manager's secrets by name
// (DescribeParameters, ListSecrets: neither answers a value, so no value can reach the page).
// Both on nimbus's endpoint, as any SDK would call them. Read-only. Published, delivered,
// failed and filtered-out counts come from /metrics. Routes: #/topics, #/config.

import { state, awsJsonCall } from './app.js';
import { $, html, setHTML, fmtInt, fmtDateTime } from './util.js';

const REFRESH_MS = 5000;
const MAX_ITEMS = 1000;

async function sns(action, params = {}) {
  const res = await fetch('/', {
    method: 'POST',
    cache: 'no-store',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ Action: action, Version: '2010-03-31', ...params }),
  });
  const doc = await res.json().catch(() => null);
  if (!res.ok || !doc) {
    const e = doc && doc.Error;
    throw new Error(e ? `${e.Code}: ${e.Message}` : `HTTP ${res.status}`);
  }
  return (doc[`${action}Response`] || {})[`${action}Result`] || {};
}

/**
 * An endpoint as the page may show it: a URL's password is never displayed. The credentials
 * end at the last `@` before the query, the rule SNS's delivery uses (http.rs).
 */
function shownEndpoint(endpoint) {
  const text = String(endpoint || '');
  const scheme = text.indexOf('://');
  if (scheme < 0) return text;
  const rest = text.slice(scheme + 3);
  const cut = rest.search(/[?#]/);
  const head = cut < 0 ? rest : rest.slice(0, cut);
  const at = head.lastIndexOf('@');
  if (at < 0) return text;
  const user = head.slice(0, at).split(':')[0];
  return text.slice(0, scheme + 3) + user + ':****' + rest.slice(at);
}

// ---------------------------------------------------------------- topics

let topics = null; // [{arn, name, attrs, subs}] or null while loading
let topicsError = '';
let topicsAt = 0;
let busy = false;

async function loadTopics() {
  try {
    const arns = [];
    let token;
    do {
      const page = await sns('ListTopics', token ? { NextToken: token } : {});
      arns.push(...(page.Topics || []).map((t) => t.TopicArn));
      token = page.NextToken;
    } while (token && arns.length < MAX_ITEMS);
    topics = await Promise.all(
      arns.map(async (arn) => {
        const [attrs, subs] = await Promise.all([
          sns('GetTopicAttributes', { TopicArn: arn }),
          sns('ListSubscriptionsByTopic', { TopicArn: arn }),
        ]);
        return { arn, name: arn.split(':').pop(), attrs: attrs.Attributes || {}, subs: subs.Subscriptions || [] };
      }),
    );
    topicsError = '';
  } catch (e) {
    topicsError = String(e.message || e);
  }
  topicsAt = Date.now();
}

function topicMetrics(topic) {
  const snap = state.metrics.latest;
  const sum = (name) => (snap ? snap.sum(name, { topic }) : null);
  return {
    published: sum('nimbus_sns_messages_published_total'),
    delivered: sum('nimbus_sns_notifications_delivered_total'),
    failed: sum('nimbus_sns_notifications_failed_total'),
    filtered: sum('nimbus_sns_notifications_filtered_out_total'),
  };
}

function renderTopics() {
  const host = $('#topic-list');
  if (topicsError) {
    setHTML(host, html`<div class="card"><div class="empty"><div class="empty-title">Cannot list topics</div><p>${topicsError}</p></div></div>`);
    return;
  }
  if (!topics) {
    setHTML(host, html`<div class="card"><div class="empty"><div class="empty-title">Loading topics…</div></div></div>`);
    return;
  }
  if (!topics.length) {
    setHTML(
      host,
      html`<div class="card"><div class="empty"><div class="empty-title">No topics yet</div>
        <p>Declare an <code>AWS::SNS::Topic</code> in the template and restart <code>nimbus up</code>, or create one with <code>aws sns create-topic --endpoint-url ${location.origin}</code>.</p></div></div>`,
    );
    return;
  }
  setHTML(
    host,
    topics.map((t) => {
      const m = topicMetrics(t.name);
      const subs = t.subs.map(
        (s) => html`<tr>
          <td class="mono small">${s.Protocol}</td>
          <td class="mono small">${shownEndpoint(s.Endpoint)}</td>
          <td>${s.SubscriptionArn === 'PendingConfirmation' ? html`<span class="chip chip-warn">pending confirmation</span>` : html`<span class="muted small">confirmed</span>`}</td>
        </tr>`,
      );
      return html`<div class="card">
        <div class="card-head"><h2>${t.name}</h2><span class="muted small">${t.attrs.FifoTopic === 'true' ? 'FIFO · ' : ''}${fmtInt(Number(t.attrs.SubscriptionsConfirmed || 0))} confirmed, ${fmtInt(Number(t.attrs.SubscriptionsPending || 0))} pending</span></div>
        <table class="table"><thead><tr><th class="num">Published</th><th class="num">Delivered</th><th class="num">Failed</th><th class="num">Filtered out</th></tr></thead>
          <tbody><tr><td class="num">${fmtInt(m.published)}</td><td class="num">${fmtInt(m.delivered)}</td><td class="num" data-tone="${m.failed ? 'danger' : ''}">${fmtInt(m.failed)}</td><td class="num">${fmtInt(m.filtered)}</td></tr></tbody></table>
        ${t.subs.length
          ? html`<table class="table"><thead><tr><th>Protocol</th><th>Endpoint</th><th>State</th></tr></thead><tbody>${subs}</tbody></table>`
          : html`<div class="empty"><p>No subscriptions.</p></div>`}
      </div>`;
    }),
  );
}

async function refreshTopics(force) {
  if (busy) return;
  busy = true;
  try {
    if (force || !topics || Date.now() - topicsAt > REFRESH_MS) await loadTopics();
    renderTopics();
  } finally {
    busy = false;
  }
}

export const topicsView = {
  init() {},
  show() {
    refreshTopics(true);
  },
  update() {
    refreshTopics(false);
  },
  hide() {},
};

// ---------------------------------------------------------------- parameters and secrets

let config = null; // {parameters, secrets, errors}
let configAt = 0;
let configBusy = false;

async function pages(call, key, max = MAX_ITEMS) {
  const all = [];
  let token;
  do {
    const page = await call(token);
    all.push(...(page[key] || []));
    token = page.NextToken;
  } while (token && all.length < max);
  return all;
}

async function loadConfig() {
  const [parameters, secrets] = await Promise.allSettled([
    pages((t) => awsJsonCall('AmazonSSM.DescribeParameters', t ? { NextToken: t, MaxResults: 50 } : { MaxResults: 50 }), 'Parameters'),
    pages((t) => awsJsonCall('secretsmanager.ListSecrets', t ? { NextToken: t, MaxResults: 100 } : { MaxResults: 100 }), 'SecretList'),
  ]);
  config = {
    parameters: parameters.status === 'fulfilled' ? parameters.value : [],
    secrets: secrets.status === 'fulfilled' ? secrets.value : [],
    errors: [parameters, secrets].filter((r) => r.status === 'rejected').map((r) => String(r.reason.message || r.reason)),
  };
  configAt = Date.now();
}

const when = (seconds) => (seconds ? fmtDateTime(Number(seconds) * 1000) : '–');

function renderConfig() {
  const host = $('#config-lists');
  if (!config) {
    setHTML(host, html`<div class="card"><div class="empty"><div class="empty-title">Loading…</div></div></div>`);
    return;
  }
  const params = config.parameters.map(
    (p) => html`<tr><td class="mono small">${p.Name}</td><td>${p.Type}</td><td class="num">${fmtInt(p.Version)}</td><td class="small">${when(p.LastModifiedDate)}</td></tr>`,
  );
  const secrets = config.secrets.map(
    (s) => html`<tr><td class="mono small">${s.Name}</td><td class="num">${fmtInt(Object.keys(s.SecretVersionsToStages || {}).length)}</td><td class="small">${when(s.LastChangedDate)}</td><td>${s.DeletedDate ? html`<span class="chip chip-warn">deletion scheduled</span>` : html`<span class="muted small">active</span>`}</td></tr>`,
  );
  setHTML(
    host,
    html`${config.errors.map((e) => html`<div class="card"><div class="empty"><div class="empty-title">Cannot list</div><p>${e}</p></div></div>`)}
    <div class="card">
      <div class="card-head"><h2>Parameters</h2><span class="muted small">${fmtInt(config.parameters.length)} in Parameter Store</span></div>
      ${params.length
        ? html`<table class="table"><thead><tr><th>Name</th><th>Type</th><th class="num">Version</th><th>Last modified</th></tr></thead><tbody>${params}</tbody></table>`
        : html`<div class="empty"><p>No parameters. Declare an <code>AWS::SSM::Parameter</code> or run <code>aws ssm put-parameter --endpoint-url ${location.origin}</code>.</p></div>`}
    </div>
    <div class="card">
      <div class="card-head"><h2>Secrets</h2><span class="muted small">${fmtInt(config.secrets.length)} in Secrets Manager · names only, never values</span></div>
      ${secrets.length
        ? html`<table class="table"><thead><tr><th>Name</th><th class="num">Versions</th><th>Last changed</th><th>State</th></tr></thead><tbody>${secrets}</tbody></table>`
        : html`<div class="empty"><p>No secrets. Declare an <code>AWS::SecretsManager::Secret</code> or run <code>aws secretsmanager create-secret --endpoint-url ${location.origin}</code>.</p></div>`}
    </div>`,
  );
}

async function refreshConfig(force) {
  if (configBusy) return;
  configBusy = true;
  try {
    if (force || !config || Date.now() - configAt > REFRESH_MS) await loadConfig();
    renderConfig();
  } finally {
    configBusy = false;
  }
}

export const configView = {
  init() {},
  show() {
    refreshConfig(true);
  },
  update() {
    refreshConfig(false);
  },
  hide() {},
};
