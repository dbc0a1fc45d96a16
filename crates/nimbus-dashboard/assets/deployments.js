// Deployments view: CodeDeploy's gradual deployments of AutoPublishAlias functions (canary,
// linear, all at once), newest first, from /_nimbus/api/deployments: each one's versions,
// configuration, verdict, the alias's weight on the new version over time and what happened.
// Read-only. Route: #/deployments.

import { $, html, raw, setHTML, fmtDateTime, fmtMs } from './util.js';
import { getJSON } from './app.js';

let deployments = [];
let loadError = '';
let sig = '';

async function load() {
  try {
    const doc = await getJSON('api/deployments');
    deployments = Array.isArray(doc.deployments) ? doc.deployments : [];
    loadError = '';
  } catch (e) {
    loadError = String(e.message || e);
  }
}

const STATUS = {
  InProgress: 'chip-info',
  Succeeded: 'badge-ok',
  Failed: 'badge-alarm',
  Stopped: 'badge-unknown',
};

function statusBadge(s) {
  const cls = STATUS[s] || 'badge-unknown';
  return cls.startsWith('chip') ? html`<span class="chip ${cls}">${s}</span>` : html`<span class="badge ${cls}">${s}</span>`;
}

/** The new version's share of the alias over time: a step line, 0 to 100%. */
function weightChart(d) {
  const pts = (d.weights || []).map((w) => [Number(w.time_ms), Number(w.weight)]).filter(([t, w]) => isFinite(t) && isFinite(w));
  if (!pts.length) return '';
  const end = d.completed_ms || Date.now();
  const t0 = pts[0][0];
  const span = Math.max(1, end - t0);
  const W = 520;
  const H = 90;
  const x = (t) => 40 + ((t - t0) / span) * (W - 50);
  const y = (w) => 10 + (1 - w) * (H - 25);
  let path = `M${x(pts[0][0]).toFixed(1)},${y(pts[0][1]).toFixed(1)}`;
  for (let i = 1; i < pts.length; i++) {
    path += ` H${x(pts[i][0]).toFixed(1)} V${y(pts[i][1]).toFixed(1)}`;
  }
  path += ` H${x(end).toFixed(1)}`;
  const color = d.status === 'Failed' ? 'var(--danger)' : d.status === 'Succeeded' ? 'var(--ok)' : 'var(--info)';
  return raw(`<svg class="weights" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="weight of version ${d.to} over time">
    <text x="2" y="${y(1) + 4}" font-size="10" fill="currentColor">100%</text>
    <text x="2" y="${y(0) + 4}" font-size="10" fill="currentColor">0%</text>
    <line x1="40" x2="${W - 10}" y1="${y(0)}" y2="${y(0)}" stroke="#e5e8ec"/>
    <line x1="40" x2="${W - 10}" y1="${y(1)}" y2="${y(1)}" stroke="#e5e8ec"/>
    <path d="${path}" fill="none" stroke="${color}" stroke-width="2"/>
    <text x="40" y="${H - 2}" font-size="10" fill="currentColor">${fmtMs(0)}</text>
    <text x="${W - 10}" y="${H - 2}" font-size="10" text-anchor="end" fill="currentColor">${fmtMs(span)}</text>
  </svg>`);
}

function render() {
  const host = $('#deployment-list');
  if (!host) return;
  const next = JSON.stringify([deployments, loadError]);
  if (next === sig && host.dataset.rendered) return;
  sig = next;
  host.dataset.rendered = '1';
  if (loadError) {
    setHTML(host, html`<div class="empty"><div class="empty-title">Cannot read the deployments</div><p>${loadError}</p></div>`);
    return;
  }
  if (!deployments.length) {
    setHTML(
      host,
      html`<div class="empty"><div class="empty-title">No deployments yet</div><p>Give a function <code>AutoPublishAlias</code> and a <code>DeploymentPreference</code> (for example <code>Type: Canary10Percent5Minutes</code> with <code>Alarms</code>), then change its code under <code>nimbus up --watch</code> or restart <code>nimbus up</code>: nimbus publishes the new version and shifts the alias to it here, rolling back if an alarm fires.</p></div>`,
    );
    return;
  }
  setHTML(
    host,
    html`<table class="table deployments">
      <thead><tr><th>Status</th><th>Deployment</th><th>Alias</th><th>Versions</th><th>Configuration</th><th>Started, took</th></tr></thead>
      <tbody>${deployments.map((d) => {
        const took = d.completed_ms ? Number(d.completed_ms) - Number(d.created_ms) : Date.now() - Number(d.created_ms);
        const events = Array.isArray(d.events) ? d.events : [];
        return html`<tr data-deployment="${d.id}">
          <td>${statusBadge(d.status)}</td>
          <td><code>${d.id}</code>${d.error ? html`<div class="small reason">${d.error.message}${d.rolled_back ? html` <span class="chip chip-warn">rolled back to ${d.from}</span>` : ''}</div>` : ''}
            <details><summary>Timeline (${events.length})</summary>${weightChart(d)}<ol class="history">${events.map((e) => html`<li><span class="muted">${fmtDateTime(Number(e.time_ms))}</span> ${e.text}</li>`)}</ol></details></td>
          <td><strong>${d.function}</strong>:${d.alias}</td>
          <td>${d.from} → ${d.to}</td>
          <td class="small">${String(d.config || '').replace('CodeDeployDefault.Lambda', '')}</td>
          <td class="nowrap">${fmtDateTime(Number(d.created_ms))}<div class="muted small">${fmtMs(took)}${d.status === 'InProgress' ? ' so far' : ''}</div></td>
        </tr>`;
      })}</tbody>
    </table>`,
  );
}

async function refresh() {
  await load();
  render();
}

export const deploymentsView = {
  init() {},
  show: refresh,
  update: refresh,
  hide() {},
};
