#!/usr/bin/env node
// End-to-end test of the nimbus dashboard (/_nimbus/) in headless Chromium, driven by
// playwright-core. Needs a running nimbus:
//
//   NIMBUS_ENDPOINT=http://127.0.0.1:4566 NIMBUS_FUNCTION=Hello node tests/browser/dashboard.mjs
//
// Environment:
//   NIMBUS_ENDPOINT  nimbus's AWS endpoint                      [http://127.0.0.1:4566]
//   NIMBUS_FUNCTION  a function of the stack to invoke          [the stack's first function]
//   NIMBUS_STATE_MACHINE  a STANDARD state machine to run once   [the first STANDARD one, if any]
//   NIMBUS_BUCKET    a bucket holding notes/readme.txt (text, x-amz-meta-owner) to browse  [skipped]
//   NIMBUS_TABLE     a DynamoDB table (partition key pk, sort key sk) holding pk "car#1" items  [skipped]
//   NIMBUS_TOPIC     an SNS topic with an sqs subscription; the parameter /dashboard/param and the
//                    secret dashboard-secret exist, NIMBUS_SECRET_VALUE being its value  [skipped]
//   SCREENSHOT_DIR   where the views' screenshots go            [<repo>/target/dashboard-screenshots]
//   CHROMIUM         the browser                                 [/usr/bin/chromium]
//
// Checks: the page loads with no console error and no failed request; the service map has a
// node for every node of GET /_nimbus/api/stack; an Invoke of NIMBUS_FUNCTION raises its
// invocation total on the Functions view and its REPORT line (by request id) reaches the log
// tail within 10 s; the Traces view lists a trace whose waterfall has span rows; an execution of
// NIMBUS_STATE_MACHINE (started through the Step Functions API) shows on the State machines
// view: the machine is listed, its graph has a box per state, and the execution's path is
// highlighted; the Buckets view lists NIMBUS_BUCKET, opens its notes/ folder and previews
// notes/readme.txt with its metadata. Screenshots of every view are saved. The whole run is bounded to 75 s. Exit
// status 0 only if all passed.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const endpoint = (process.env.NIMBUS_ENDPOINT || 'http://127.0.0.1:4566').replace(/\/+$/, '');
const dashboard = `${endpoint}/_nimbus/`;
const shotDir = path.resolve(process.env.SCREENSHOT_DIR || path.join(repoRoot, 'target', 'dashboard-screenshots'));
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const TOTAL_MS = 75_000;
const STEP_MS = 10_000;

const t0 = Date.now();
const secs = () => ((Date.now() - t0) / 1000).toFixed(1).padStart(5) + 's';
let passed = 0;
let failed = 0;
let browser = null;
let currentStep = 'start';

const consoleErrors = [];
const failedRequests = [];
let watching = true;

function log(msg) {
  process.stdout.write(`[${secs()}] ${msg}\n`);
}

class StepError extends Error {}

/** Polls `probe` (async, returns a truthy value when done) until `timeoutMs`; the error says what was not seen. */
async function waitFor(what, probe, timeoutMs = STEP_MS, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? ` (last error: ${last.message.split('\n')[0]})` : '';
      throw new StepError(`${what} — not seen within ${(timeoutMs / 1000).toFixed(0)} s${detail}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

async function step(name, fn, { critical = true } = {}) {
  currentStep = name;
  const started = Date.now();
  try {
    await fn();
    passed++;
    log(`ok     ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return true;
  } catch (e) {
    failed++;
    log(`FAILED ${name}\n         ${String(e && e.message ? e.message : e).split('\n').join('\n         ')}`);
    await shot(`failed-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 50)}`).catch(() => {});
    if (critical) throw new StepError('stop');
    return false;
  }
}

let page = null;
async function shot(name, opts = {}) {
  if (!page) return;
  fs.mkdirSync(shotDir, { recursive: true });
  const file = path.join(shotDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: opts.fullPage ?? true, timeout: 5000 });
  const rel = path.relative(process.cwd(), file);
  log(`       screenshot ${rel.startsWith('..') ? file : rel}`);
}

async function go(hash, readySelector) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
  if (readySelector) await page.waitForSelector(readySelector, { state: 'visible', timeout: STEP_MS });
}

async function getJSON(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  return res.json();
}

/** A Step Functions operation (AWS JSON 1.0) on nimbus's endpoint, as an SDK sends it. */
async function sfn(op, input) {
  const res = await fetch(`${endpoint}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AWSStepFunctions.${op}` },
    body: JSON.stringify(input),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  if (!res.ok) throw new StepError(`${op} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** Names of a definition's states, nested branches and item processors included. */
function stateNames(def) {
  const out = [];
  for (const [name, st] of Object.entries((def && def.States) || {})) {
    out.push(name);
    for (const b of st.Branches || []) out.push(...stateNames(b));
    if (st.ItemProcessor || st.Iterator) out.push(...stateNames(st.ItemProcessor || st.Iterator));
  }
  return out;
}

const numberIn = (s) => {
  const m = String(s || '').replace(/[,\s\u202f]/g, '').match(/-?\d+(\.\d+)?/);
  return m ? Number(m[0]) : null;
};

async function main() {
  log(`dashboard ${dashboard}; screenshots in ${shotDir}`);

  // ---------------------------------------------------------------- the API first
  let stack;
  let fnName = process.env.NIMBUS_FUNCTION || '';
  await step('GET /_nimbus/api/stack answers with the stack', async () => {
    try {
      stack = await getJSON(`${dashboard}api/stack`);
    } catch (e) {
      throw new StepError(`nimbus's dashboard API is not reachable at ${dashboard}api/stack: ${e.message}. Is \`nimbus up\` running with its AWS endpoint at ${endpoint}?`);
    }
    if (!stack || !Array.isArray(stack.nodes)) throw new StepError(`api/stack has no "nodes" array: ${JSON.stringify(stack).slice(0, 300)}`);
    const fns = stack.nodes.filter((n) => n.kind === 'function').map((n) => n.name);
    if (!fnName) {
      if (!fns.length) throw new StepError('the stack has no function to invoke (and NIMBUS_FUNCTION is not set)');
      fnName = fns[0];
      log(`       NIMBUS_FUNCTION not set; using the stack's first function, ${fnName}`);
    } else if (!fns.includes(fnName)) {
      throw new StepError(`NIMBUS_FUNCTION=${fnName} is not a function of the stack (functions: ${fns.join(', ') || 'none'})`);
    }
  });

  // ---------------------------------------------------------------- browser
  browser = await chromium.launch({
    executablePath: chromiumPath,
    timeout: 20_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('console', (msg) => {
    if (watching && msg.type() === 'error') consoleErrors.push(`${msg.text()}${msg.location() && msg.location().url ? ` (${msg.location().url})` : ''}`);
  });
  page.on('pageerror', (err) => {
    if (watching) consoleErrors.push(`uncaught: ${err.message}`);
  });
  page.on('requestfailed', (req) => {
    if (watching) failedRequests.push(`${req.method()} ${req.url()}: ${req.failure() ? req.failure().errorText : 'failed'}`);
  });
  page.on('response', (res) => {
    if (watching && res.status() >= 400) failedRequests.push(`${res.request().method()} ${res.url()}: HTTP ${res.status()}`);
  });

  await step('/_nimbus/ loads and shows live data', async () => {
    const res = await page.goto(dashboard, { waitUntil: 'load', timeout: STEP_MS });
    if (!res || !res.ok()) throw new StepError(`GET ${dashboard} answered ${res ? res.status() : 'nothing'}`);
    await waitFor('the header\'s live indicator saying "Live"', () => page.locator('#live[data-status="live"]').count());
  });

  // ---------------------------------------------------------------- service map
  await step('the service map has a node for every node of the stack', async () => {
    await go('#/overview', '#map');
    const want = stack.nodes.map((n) => n.id);
    const fnIds = stack.nodes.filter((n) => n.kind === 'function').map((n) => n.id);
    let missing = want;
    await waitFor(
      'service map nodes',
      async () => {
        const have = new Set(await page.$$eval('#map [data-node-id]', (els) => els.map((e) => e.getAttribute('data-node-id'))));
        missing = want.filter((id) => !have.has(id));
        return missing.length === 0;
      },
      STEP_MS,
    ).catch(() => {
      const missingFns = missing.filter((id) => fnIds.includes(id));
      throw new StepError(
        `the service map at ${dashboard}#/overview is missing ${missing.length} of ${want.length} nodes: ${missing.join(', ')}` +
          (missingFns.length ? ` (functions: ${missingFns.join(', ')})` : ''),
      );
    });
    // rates need two polls: wait for them (at most 5 s) so the screenshot shows numbers
    await waitFor('rates on the overview', async () => {
      const first = await page.locator('#kpis .kpi-value').first().textContent();
      return first && first.trim() !== '…';
    }, 5000).catch(() => {});
    await page.waitForTimeout(300);
    await shot('overview');
  }, { critical: false });

  // ---------------------------------------------------------------- invoke -> totals and logs
  let requestId = null;
  let invokedAt = 0;
  await step(`invoking ${fnName} raises its invocation total on the Functions view`, async () => {
    await go('#/functions', `[data-function="${fnName}"]`);
    const total = page.locator(`[data-function="${fnName}"] [data-total="invocations"]`);
    const before = await waitFor(
      `a number in ${fnName}'s invocation total ([data-function="${fnName}"] [data-total="invocations"])`,
      async () => {
        const n = numberIn(await total.textContent());
        return n === null ? null : { n };
      },
    );
    invokedAt = Date.now();
    const url = `${endpoint}/2015-03-31/functions/${encodeURIComponent(fnName)}/invocations`;
    const res = await fetch(url, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(STEP_MS) });
    const body = await res.text();
    if (res.status !== 200) throw new StepError(`POST ${url} answered ${res.status}: ${body.slice(0, 300)}`);
    requestId = res.headers.get('x-amz-request-id') || res.headers.get('x-amzn-requestid');
    const fnError = res.headers.get('x-amz-function-error');
    log(`       invoked ${fnName}: request id ${requestId || '(none)'}${fnError ? `, function error ${fnError}` : ''}`);
    let lastText = '';
    await waitFor(
      `${fnName}'s invocation total rising above ${before.n} after the invoke`,
      async () => {
        lastText = (await total.textContent()) || '';
        const n = numberIn(lastText);
        return n !== null && n > before.n;
      },
      Math.max(1000, invokedAt + STEP_MS - Date.now()),
    ).catch((e) => {
      throw new StepError(`${e.message}; it still shows "${lastText}"`);
    });
    await page.waitForTimeout(1000); // let the charts draw the new point
    await shot('functions');
  }, { critical: false });

  await step(`the invocation's REPORT line reaches the log tail`, async () => {
    if (!requestId) throw new StepError('the Invoke response had no x-amz-request-id (or x-amzn-requestid) header, so its log line cannot be matched');
    await go('#/logs', '#log-tail');
    const line = page.locator('#log-tail .log-line', { hasText: requestId }).filter({ hasText: 'REPORT' });
    await waitFor(
      `a REPORT line with request id ${requestId} in #log-tail`,
      async () => (await line.count()) > 0,
      Math.max(3000, invokedAt + STEP_MS - Date.now()),
    ).catch(async (e) => {
      const lines = await page.locator('#log-tail .log-line').count();
      const withId = await page.locator('#log-tail .log-line', { hasText: requestId }).count();
      throw new StepError(`${e.message} (the tail has ${lines} lines, ${withId} of them with that request id)`);
    });
    await shot('logs', { fullPage: false });
  }, { critical: false });

  // ---------------------------------------------------------------- traces
  await step('the Traces view lists a trace, and the newest opens a waterfall with spans', async () => {
    await go('#/traces', '#trace-list');
    const rows = page.locator('#trace-list [data-trace-id]');
    await waitFor('a trace row ([data-trace-id]) in the Traces view', async () => (await rows.count()) > 0);
    await shot('traces');
    const first = rows.first();
    const id = await first.getAttribute('data-trace-id');
    await first.click();
    await waitFor(`the waterfall (#waterfall) of trace ${id} with at least one span row ([data-span-kind])`, async () => (await page.locator('#waterfall [data-span-kind]').count()) > 0);
    const n = await page.locator('#waterfall [data-span-kind]').count();
    const hash = await page.evaluate(() => location.hash);
    if (!hash.startsWith('#/traces/')) throw new StepError(`clicking a trace should route to #/traces/<id>, the page is at ${hash}`);
    log(`       trace ${id}: ${n} span rows`);
    // open the first span's attributes for the screenshot
    await page.locator('#waterfall .span-row').first().click();
    await shot('waterfall');
  }, { critical: false });

  // ---------------------------------------------------------------- state machines
  await step('an execution of a state machine shows its path on the State machines view', async () => {
    const machines = (await sfn('ListStateMachines', {})).stateMachines || [];
    const wanted = process.env.NIMBUS_STATE_MACHINE;
    const m = wanted ? machines.find((x) => x.name === wanted) : machines.find((x) => x.type === 'STANDARD');
    if (!m) {
      if (wanted) throw new StepError(`NIMBUS_STATE_MACHINE=${wanted} is not a state machine of nimbus (machines: ${machines.map((x) => x.name).join(', ') || 'none'})`);
      log('       no STANDARD state machine: skipped');
      return;
    }
    const def = JSON.parse((await sfn('DescribeStateMachine', { stateMachineArn: m.stateMachineArn })).definition);
    const names = stateNames(def);
    // one that takes the Choice's default into the Fail state, then the one the test follows
    await sfn('StartExecution', { stateMachineArn: m.stateMachineArn, name: `browser-rejected-${Date.now()}`, input: JSON.stringify({ ok: false, order: { id: 41 } }) });
    const started = await sfn('StartExecution', { stateMachineArn: m.stateMachineArn, name: `browser-${Date.now()}`, input: JSON.stringify({ ok: true, order: { id: 42, items: ['book', 'pen'] } }) });
    const arn = started.executionArn;
    let status = 'RUNNING';
    await waitFor(`execution ${arn} to end`, async () => {
      status = (await sfn('DescribeExecution', { executionArn: arn })).status;
      return status !== 'RUNNING';
    });
    log(`       ${m.name}: execution ${arn.split(':').pop()} ${status}`);

    await go('#/statemachines', '#sm-list');
    await waitFor(`a row for ${m.name} in the state machines table ([data-machine="${m.name}"])`, async () => (await page.locator(`#sm-list [data-machine="${m.name}"]`).count()) > 0);
    await shot('statemachines-list');
    await page.locator(`#sm-list [data-machine="${m.name}"]`).click();
    let drawn = [];
    await waitFor(`the graph of ${m.name} with a box for each of its states (${names.join(', ')})`, async () => {
      drawn = await page.$$eval('#sm-graph .sm-node[data-state]', (els) => els.map((e) => e.getAttribute('data-state')));
      return names.every((n) => drawn.includes(n));
    }).catch((e) => {
      throw new StepError(`${e.message}; drawn: ${drawn.join(', ') || 'none'}`);
    });
    const row = page.locator(`#sm-execs tr[data-exec-arn="${arn}"]`);
    await waitFor(`the execution in the executions list (#sm-execs tr[data-exec-arn="${arn}"])`, async () => (await row.count()) > 0);
    await row.click();
    const hash = await page.evaluate(() => location.hash);
    if (!hash.startsWith('#/statemachines/')) throw new StepError(`clicking an execution should route to #/statemachines/<name>/<arn>, the page is at ${hash}`);
    const first = def.StartAt;
    await waitFor(`the first state ${first} marked succeeded on the graph (.sm-node.succeeded[data-state="${first}"])`, async () => (await page.locator(`#sm-graph .sm-node.succeeded[data-state="${first}"]`).count()) > 0);
    await waitFor('the states table of the execution (#sm-states)', async () => (await page.locator('#sm-states [data-state-row]').count()) > 0);
    const visited = await page.locator('#sm-graph .sm-node.succeeded, #sm-graph .sm-node.failed').count();
    const rows = await page.locator('#sm-states [data-state-row]').count();
    log(`       ${drawn.length} states drawn, ${visited} on the execution's path, ${rows} rows in its states table`);
    // open the first state's input for the screenshot
    const details = page.locator('#sm-states details.json').first();
    if (await details.count()) await details.locator('summary').click();
    await page.evaluate(() => window.scrollTo(0, 0)); // the sticky header stays on top in a full-page shot
    await page.waitForTimeout(200);
    await shot('statemachines');
  }, { critical: false });

  await step("a distributed Map's Map Run shows its counts and links its child executions", async () => {
    const name = process.env.NIMBUS_FANOUT_MACHINE;
    if (!name) {
      log('       no NIMBUS_FANOUT_MACHINE: skipped');
      return;
    }
    const machines = (await sfn('ListStateMachines', {})).stateMachines || [];
    const m = machines.find((x) => x.name === name);
    if (!m) throw new StepError(`NIMBUS_FANOUT_MACHINE=${name} is not a state machine of nimbus`);
    const { executionArn: arn } = await sfn('StartExecution', { stateMachineArn: m.stateMachineArn, input: JSON.stringify({ items: [1, 2, 3] }) });
    await waitFor(`execution ${arn} to end`, async () => (await sfn('DescribeExecution', { executionArn: arn })).status !== 'RUNNING');
    await go(`#/statemachines/${encodeURIComponent(name)}/${encodeURIComponent(arn)}`, '#sm-exec');
    const children = page.locator('#sm-exec .sm-maprun [data-child-execution]');
    await waitFor('three child executions under the Map Run (.sm-maprun [data-child-execution])', async () => (await children.count()) === 3);
    await children.first().locator('a').click();
    await waitFor('the child execution, linking back to its parent ([data-parent-execution])', async () => (await page.locator('#sm-exec [data-parent-execution]').count()) > 0);
    log(`       ${name}: a Map Run of 3 children, the first opened`);
    await shot('statemachines-maprun-child');
  }, { critical: false });

  // ---------------------------------------------------------------- buckets
  await step("a bucket's folders and objects are browsable and a text object previews", async () => {
    const bucket = process.env.NIMBUS_BUCKET;
    if (!bucket) {
      log('       no NIMBUS_BUCKET: skipped');
      return;
    }
    await go('#/buckets', '#bucket-list');
    await waitFor(`a row for ${bucket} in the buckets table`, async () => (await page.locator(`#bucket-list [data-bucket="${bucket}"]`).count()) > 0);
    await shot('buckets');
    await page.locator(`#bucket-list [data-bucket="${bucket}"]`).click();
    await waitFor('the folder notes/ in the bucket', async () => (await page.locator('#bucket-detail [data-prefix="notes/"]').count()) > 0);
    await page.locator('#bucket-detail [data-prefix="notes/"]').click();
    await waitFor('the object notes/readme.txt in the folder', async () => (await page.locator('#bucket-detail [data-key="notes/readme.txt"]').count()) > 0);
    await page.locator('#bucket-detail [data-key="notes/readme.txt"]').click();
    await waitFor('the preview of notes/readme.txt', async () => ((await page.locator('#object-preview').textContent().catch(() => '')) || '').includes('hello from S3'));
    const meta = (await page.locator('#object-card').textContent()) || '';
    if (!meta.includes('x-amz-meta-owner')) throw new StepError(`the object's metadata (x-amz-meta-owner) is not shown: ${meta.slice(0, 300)}`);
    await shot('bucket-object');
  }, { critical: false });

  // ---------------------------------------------------------------- tables
  await step("a table's items scan and query by key", async () => {
    const table = process.env.NIMBUS_TABLE;
    if (!table) {
      log('       no NIMBUS_TABLE: skipped');
      return;
    }
    await go('#/tables', '#table-list');
    await waitFor(`a row for ${table} in the tables table`, async () => (await page.locator(`#table-list [data-table="${table}"]`).count()) > 0);
    await shot('tables');
    await page.locator(`#table-list [data-table="${table}"]`).click();
    await waitFor('the scanned items', async () => (await page.locator('#table-detail table.items tbody tr').count()) > 0);
    const scanned = await page.locator('#table-detail table.items tbody tr').count();
    await page.locator('#table-query input[name=pk]').fill('car#1');
    await page.locator('#table-query button').click();
    await waitFor('the queried items', async () => {
      const rows = page.locator('#table-detail table.items tbody tr');
      const n = await rows.count();
      if (n === 0 || n >= scanned) return false;
      const first = (await rows.first().textContent()) || '';
      return first.includes('car#1');
    });
    await shot('table-items');
  }, { critical: false });

  // ---------------------------------------------------------------- topics and config
  await step("a topic's subscriptions and counts, and parameters and secrets by name only", async () => {
    const topic = process.env.NIMBUS_TOPIC;
    const secret = process.env.NIMBUS_SECRET_VALUE;
    if (!topic) {
      log('       no NIMBUS_TOPIC: skipped');
      return;
    }
    await go('#/topics', '#topic-list');
    await waitFor(`the topic ${topic} with a published count`, async () => {
      const txt = (await page.locator('#topic-list').textContent()) || '';
      return txt.includes(topic) && txt.includes('Published') && !txt.includes('Loading');
    });
    const topicsText = (await page.locator('#topic-list').textContent()) || '';
    if (!topicsText.includes('sqs')) throw new StepError(`the topic's sqs subscription is not listed: ${topicsText.slice(0, 300)}`);
    await shot('topics');
    await go('#/config', '#config-lists');
    await waitFor('the parameters and secrets', async () => {
      const txt = (await page.locator('#config-lists').textContent()) || '';
      return txt.includes('Parameters') && txt.includes('Secrets') && !txt.includes('Loading');
    });
    const configText = (await page.locator('#config-lists').textContent()) || '';
    if (!configText.includes('/dashboard/param')) throw new StepError(`the parameter is not listed: ${configText.slice(0, 300)}`);
    if (!configText.includes('dashboard-secret')) throw new StepError(`the secret is not listed: ${configText.slice(0, 300)}`);
    if (secret && (configText.includes(secret) || (await page.content()).includes(secret))) {
      throw new StepError('a secret value is on the page');
    }
    await shot('config');
  }, { critical: false });

  // ---------------------------------------------------------------- the remaining views
  await step('the Queues and Alarms views render', async () => {
    await go('#/queues', '#queue-table');
    await waitFor('the queues table or its empty state', async () => (await page.locator('#queue-table table, #queue-table .empty').count()) > 0);
    await shot('queues');
    await go('#/alarms', '#alarm-table');
    await waitFor('the alarms table or its empty state', async () => {
      const txt = (await page.locator('#alarm-table').textContent()) || '';
      return !txt.includes('Loading') && (await page.locator('#alarm-table table, #alarm-table .empty').count()) > 0;
    });
    await shot('alarms');
  }, { critical: false });
}

async function finish(code) {
  watching = false;
  if (browser) await browser.close().catch(() => {});
  log(`${passed} passed, ${failed} failed`);
  process.exit(code);
}

const overall = setTimeout(() => {
  failed++;
  log(`FAILED the whole test must finish within ${TOTAL_MS / 1000} s; it was still at: ${currentStep}`);
  finish(1);
}, TOTAL_MS);

try {
  await main();
} catch (e) {
  if (!(e instanceof StepError)) {
    failed++;
    log(`FAILED ${currentStep}: ${e && e.stack ? e.stack : e}`);
  }
}

// ---------------------------------------------------------------- always: console and network
watching = false;
if (page) {
  if (consoleErrors.length === 0) {
    passed++;
    log('ok     no console errors');
  } else {
    failed++;
    log(`FAILED ${consoleErrors.length} console error(s):\n         ${consoleErrors.slice(0, 10).join('\n         ')}`);
  }
  if (failedRequests.length === 0) {
    passed++;
    log('ok     no failed requests');
  } else {
    failed++;
    log(`FAILED ${failedRequests.length} failed request(s):\n         ${failedRequests.slice(0, 10).join('\n         ')}`);
  }
}
clearTimeout(overall);
await finish(failed ? 1 : 0);
