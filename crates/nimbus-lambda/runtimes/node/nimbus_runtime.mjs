// nimbus's Node.js runtime loop: runs `_HANDLER` behind the Lambda Runtime API.
//
// Node's standard library only, so it runs on any node >= 18.19 without installing anything.
// It follows what AWS's own runtime interface client (aws-lambda-nodejs-runtime-interface-client,
// what Lambda's nodejs18.x..22.x runtimes run) does: patch console, load the handler once (init),
// then loop on /next, calling the handler with the event, a context and a callback, and post the
// result or the error. Error types, messages, log framing and exit codes copy that client's
// observable behaviour so functions see what they would see on Lambda.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import Module, { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const env = process.env;
const TASK_ROOT = env.LAMBDA_TASK_ROOT || process.cwd();
const api = new URL(`http://${env.AWS_LAMBDA_RUNTIME_API}`);
const HOST = api.hostname.replace(/^\[|\]$/g, '');
const PORT = Number(api.port || 80);
const PREFIX = '/2018-06-01/runtime';
// One connection, reused: calls are strictly sequential (next, then response or error, then next).
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

// ---------------------------------------------------------------------------------------------
// Errors. Runtime errors are named `Runtime.<Class>` on the prototype (so the class name, which
// JSON logs report as errorType, stays bare), exactly as the AWS client defines them.
class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class NodeJsExit extends Error {
  constructor() {
    super('The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes');
  }
}
class UnhandledPromiseRejection extends Error {
  // The message is String(reason), so an Error reason reads "Error: boom" as on Lambda.
  constructor(reason, promise) { super(reason); this.reason = reason; this.promise = promise; }
}
for (const C of [ImportModuleError, HandlerNotFound, MalformedHandlerName, UserCodeSyntaxError,
  NodeJsExit, UnhandledPromiseRejection]) C.prototype.name = `Runtime.${C.name}`;

const isErrorLike = (e) => util.types.isNativeError(e) || Boolean(e && e.name && e.message && e.stack
  && typeof e.name === 'string' && typeof e.message === 'string' && typeof e.stack === 'string');

// The body Lambda returns to the caller. Anything that is not an Error (a thrown string or object)
// is reported by its typeof, with no trace. DEL is escaped because the API rejects it.
function errorResponse(err) {
  try {
    if (isErrorLike(err)) {
      return { errorType: err.name?.replaceAll('\x7F', '%7F'), errorMessage: err.message?.replaceAll('\x7F', '%7F'),
        trace: err.stack.replaceAll('\x7F', '%7F').split('\n') };
    }
    return { errorType: typeof err, errorMessage: err.toString(), trace: [] };
  } catch {
    return { errorType: 'handled', errorMessage: 'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack' };
  }
}

// ---------------------------------------------------------------------------------------------
// Logging: one line per console call, `time \t requestId \t LEVEL \t message`, newlines turned into
// \r so CloudWatch (and nimbus) keep a multi-line message as one event. Before the first invoke the
// request id prints as `undefined`, as on Lambda.
let requestId;
let tenantId;
const jsonLogs = env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';
const LEVELS = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };

// In JSON logs a lone Error argument becomes a structured object instead of its (empty) JSON.
const jsonErrorReplacer = (_key, v) => (v instanceof Error
  ? Object.assign({ errorType: v?.constructor?.name ?? 'UnknownError', errorMessage: v.message,
    stackTrace: typeof v.stack === 'string' ? v.stack.split('\n') : v.stack }, v)
  : v);

function jsonLine(timestamp, level, params) {
  const record = { timestamp, level, requestId };
  if (tenantId != null) record.tenantId = tenantId;
  if (params.length === 1) {
    record.message = params[0];
    try { return JSON.stringify(record, jsonErrorReplacer); } catch {
      record.message = util.format(record.message);
      return JSON.stringify(record);
    }
  }
  record.message = util.format(...params);
  const err = params.find((p) => p instanceof Error);
  if (err) {
    Object.assign(record, { errorType: err?.constructor?.name ?? 'UnknownError', errorMessage: err.message,
      stackTrace: typeof err.stack === 'string' ? err.stack.split('\n') : [] });
  }
  return JSON.stringify(record);
}

function writeLog(level, params) {
  const time = new Date().toISOString();
  const line = jsonLogs ? jsonLine(time, level, params) : `${time}\t${requestId}\t${level}\t${util.format(...params)}`;
  process.stdout.write(`${line.replace(/\n/g, '\r')}\n`);
}

function patchConsole() {
  // AWS_LAMBDA_LOG_LEVEL filters in both formats, as in the AWS client; unset means everything.
  const min = LEVELS[env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase()] ?? LEVELS.TRACE;
  const logger = (level) => (LEVELS[level] >= min ? (msg, ...rest) => writeLog(level, [msg, ...rest]) : () => {});
  console.trace = logger('TRACE');
  console.debug = logger('DEBUG');
  console.info = logger('INFO');
  console.log = console.info;
  console.warn = logger('WARN');
  console.error = logger('ERROR');
  console.fatal = (msg, ...rest) => writeLog('FATAL', [msg, ...rest]);
}

// Text logs print the error as a tab and JSON including its enumerable fields (e.g. `code`,
// or `reason` of an unhandled rejection); JSON logs hand the Error itself to the JSON logger.
function logError(title, err) {
  const error = err instanceof Error ? err : new Error(err);
  if (jsonLogs) { console.error(error); return; }
  const withFields = (_key, v) => {
    if (!(v instanceof Error)) return v;
    const out = Object.assign({ errorType: v.name, errorMessage: v.message, code: v.code }, v);
    if (typeof v.stack === 'string') out.stack = v.stack.split('\n');
    return out;
  };
  let text;
  try { text = JSON.stringify(error, withFields); } catch { text = JSON.stringify(errorResponse(error)); }
  console.error(title, `\t${text}`);
}

// ---------------------------------------------------------------------------------------------
// Runtime API client.
function request(method, urlPath, body, headers = {}, via = agent, attempt = 1) {
  return new Promise((resolve, reject) => {
    const hdrs = body === undefined ? headers
      : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers };
    // No timeout anywhere: /next is a long poll that may wait for minutes.
    const req = http.request({ host: HOST, port: PORT, method, path: PREFIX + urlPath, headers: hdrs, agent: via }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      // A pooled connection the server already closed fails at once; Node's documented remedy
      // is to send again, which opens a fresh one.
      if (req.reusedSocket && err.code === 'ECONNRESET' && attempt < 3) {
        resolve(request(method, urlPath, body, headers, via, attempt + 1));
      } else reject(err);
    });
    req.end(body);
  });
}

// Header values must be plain visible ASCII or Node refuses to send the request.
const errorTypeHeader = (type) => ({ 'Lambda-Runtime-Function-Error-Type': String(type).replace(/[^\x20-\x7e]/g, '_') });

// Uncaught exceptions, unhandled rejections and init failures end the process, as Lambda's runtime
// does (129 after an uncaught exception, 128 after an unhandled rejection); nimbus sees the exit
// and starts a fresh environment. The error goes to /init/error until the first invoke, then to
// the current invocation. A connection of its own: the shared one may be parked in a /next poll.
let crashTarget = null;
let crashing = false;
function crash(err, code) {
  if (crashing) return;
  crashing = true;
  const body = errorResponse(err);
  const target = crashTarget === null ? '/init/error' : `/invocation/${encodeURIComponent(crashTarget)}/error`;
  setTimeout(() => process.exit(code), 5000).unref();
  request('POST', target, JSON.stringify(body), errorTypeHeader(body.errorType), false)
    .finally(() => process.exit(code));
}

process.on('uncaughtException', (err) => {
  logError('Uncaught Exception', err);
  crash(err, 129);
});
process.on('unhandledRejection', (reason, promise) => {
  const err = new UnhandledPromiseRejection(reason, promise);
  logError('Unhandled Promise Rejection', err);
  crash(err, 128);
});

// Callback handlers finish "when the event loop is empty": Node's `beforeExit` is exactly that
// moment. One listener, whose action each invocation swaps.
let onEmptyEventLoop = () => {};
process.on('beforeExit', () => onEmptyEventLoop());

// ---------------------------------------------------------------------------------------------
// Handler loading, with Lambda's search order and error wording.

// Whether a `.js` file in `folder` is an ES module: the nearest package.json says type=module.
// The search stops at a node_modules folder, like the AWS client's.
function inModulePackage(folder) {
  if (folder.endsWith('/node_modules')) return false;
  const pj = path.join(folder, 'package.json');
  if (fs.existsSync(pj)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(pj, 'utf8'));
      if (pkg) return pkg.type === 'module';
    } catch (e) {
      console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
      return false;
    }
  }
  return folder === '/' ? false : inModulePackage(path.dirname(folder));
}

// Lambda tries, in order: the exact path (a directory loads its index/main), `.js` as CommonJS
// unless its package says module, `.js` as ESM if it does, `.mjs`, `.cjs`, and last a
// node-style lookup of the bare name, whose failure gives the familiar "Cannot find module".
async function loadModule(moduleRoot, name) {
  const base = path.resolve(TASK_ROOT, moduleRoot, name);
  const has = (ext) => fs.existsSync(base + ext);
  const req = (ext) => (has(ext) ? require(base + ext) : undefined);
  const imp = async (ext) => (has(ext) ? import(pathToFileURL(base + ext).href) : undefined);
  const exact = req('');
  if (exact) return exact;
  const esmJs = has('.js') && inModulePackage(path.dirname(base));
  const cjsJs = esmJs ? undefined : req('.js');
  if (cjsJs) return cjsJs;
  const other = (esmJs && await imp('.js')) || await imp('.mjs') || req('.cjs');
  if (other) return other;
  return require(require.resolve(name, { paths: [TASK_ROOT, moduleRoot] }));
}

async function loadHandler(full) {
  if (full.includes('..')) {
    throw new MalformedHandlerName(`'${full}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`);
  }
  // `a/b/mod.obj.fn`: folders `a/b/`, module `mod`, then the property path `obj.fn`.
  const last = path.basename(full);
  const moduleRoot = full.substring(0, full.indexOf(last));
  const match = /^([^.]*)\.(.*)$/.exec(last);
  if (!match) throw new MalformedHandlerName('Bad handler');
  const [, name, propertyPath] = match;
  let app;
  try {
    app = await loadModule(moduleRoot, name);
  } catch (e) {
    // Wrapped errors keep the original's text as their message: "Error: Cannot find module ...".
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e?.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e;
  }
  const fn = propertyPath.split('.').reduce((obj, key) => obj && obj[key], app);
  if (!fn) throw new HandlerNotFound(`${full} is undefined or not exported`);
  if (typeof fn !== 'function') throw new HandlerNotFound(`${full} is not a function`);
  return fn;
}

// Node's ESM resolver ignores NODE_PATH, yet on Lambda an ES module can import the bundled AWS SDK
// and layer packages. This hook retries a bare specifier the default resolver could not find from
// each NIMBUS_NODE_MODULES folder in turn, so the function's own node_modules still win. Each
// folder must be named node_modules: resolving from a file beside it looks inside it first.
function registerModuleFallback() {
  const dirs = (env.NIMBUS_NODE_MODULES ?? '').split(':').filter(Boolean);
  if (dirs.length === 0 || typeof Module.register !== 'function') return;
  const anchors = dirs.map((d) => pathToFileURL(path.join(path.dirname(path.resolve(d)), '__nimbus__.mjs')).href);
  const hook = `const anchors = ${JSON.stringify(anchors)};
export async function resolve(specifier, context, next) {
  try { return await next(specifier, context); } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !/^[^./#][^:]*$/.test(specifier)) throw err;
    for (const parentURL of anchors) {
      try { return await next(specifier, { ...context, parentURL }); } catch (e) {
        if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
      }
    }
    throw err;
  }
}`;
  Module.register(`data:text/javascript,${encodeURIComponent(hook)}`);
}

// ---------------------------------------------------------------------------------------------
// The invoke loop.

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try { return JSON.parse(value); } catch (err) { throw new Error(`Cannot parse ${name} as json: ${err.toString()}`); }
}

function attachInvokeData(context, h) {
  if (h['lambda-runtime-trace-id']) env._X_AMZN_TRACE_ID = h['lambda-runtime-trace-id'];
  else delete env._X_AMZN_TRACE_ID;
  const deadline = Number(h['lambda-runtime-deadline-ms']) || 0;
  return Object.assign(context, {
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseJsonHeader(h['lambda-runtime-client-context'], 'ClientContext'),
    identity: parseJsonHeader(h['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
    invokedFunctionArn: h['lambda-runtime-invoked-function-arn'],
    awsRequestId: h['lambda-runtime-aws-request-id'],
    tenantId: h['lambda-runtime-aws-tenant-id'],
    // Not clamped at 0, like Lambda's.
    getRemainingTimeInMillis: () => deadline - Date.now(),
  });
}

function scheduleNext(handler, isAsync) {
  setImmediate(() => invokeOnce(handler, isAsync).catch((err) => {
    console.log(`Unexpected Top Level Error: ${err.toString()}`);
    crash(err, 129);
  }));
}

async function invokeOnce(handler, isAsync) {
  const next = await request('GET', '/invocation/next');
  if (next.status !== 200) throw new Error(`Failed to get next invocation, status ${next.status}: ${next.body.slice(0, 200)}`);
  const h = next.headers;
  const id = h['lambda-runtime-aws-request-id'];
  requestId = id;
  tenantId = h['lambda-runtime-aws-tenant-id'];
  crashTarget = id;

  const again = () => scheduleNext(handler, isAsync);
  const post = (kind, body, headers) => request('POST', `/invocation/${encodeURIComponent(id)}/${kind}`, body, headers)
    .then(again, (err) => crash(err, 129));
  const postError = (err) => {
    logError('Invoke Error', err);
    const body = errorResponse(err);
    post('error', JSON.stringify(body), errorTypeHeader(body.errorType));
  };
  let completed = false;
  const complete = (result) => {
    if (completed) {
      console.error('Invocation has already been reported as done. Cannot call complete more than once per invocation.');
      return;
    }
    completed = true;
    let body;
    // A throw here reaches the caller (user code or the promise chain) and is reported as the
    // invocation's error, as with Lambda's runtime.
    try { body = JSON.stringify(result === undefined ? null : result); } catch { throw new Error('Unable to stringify response body'); }
    post('response', body);
  };

  let waitForEmptyEventLoop = true;
  const callback = (err, result) => {
    onEmptyEventLoop = () => {};
    if (err !== undefined && err !== null) postError(err);
    else if (!waitForEmptyEventLoop) complete(result);
    else onEmptyEventLoop = () => setImmediate(() => complete(result));
  };
  const done = (err, result) => {
    onEmptyEventLoop = () => {};
    return err !== undefined && err !== null ? postError(err) : complete(result);
  };
  // Only the first of callback/succeed/fail/done counts. `finished` is set after the call so a
  // call that threw (an unserialisable result) can still be followed by the error report.
  let finished = false;
  const once = (fn) => (...args) => { if (!finished) { fn(...args); finished = true; } };
  const context = {
    get callbackWaitsForEmptyEventLoop() { return waitForEmptyEventLoop; },
    set callbackWaitsForEmptyEventLoop(value) { waitForEmptyEventLoop = value; },
    succeed: once((result) => done(null, result)),
    fail: once((err) => done(err === undefined || err === null ? 'handled' : err, null)),
    done: once(done),
  };
  const cb = once(callback);

  // The event loop emptied without an answer: an async handler's promise never settled (an
  // error), or a sync handler never called back (Lambda answers null).
  onEmptyEventLoop = () => {
    completed = true;
    if (isAsync) postError(new NodeJsExit());
    else post('response', 'null');
  };

  try {
    const result = handler(JSON.parse(next.body), attachInvokeData(context, h), cb);
    if (result && typeof result.then === 'function') {
      result.then(context.succeed, context.fail).catch(context.fail);
    }
  } catch (err) {
    cb(err);
  }
}

async function main() {
  patchConsole();
  registerModuleFallback();
  let handler;
  try {
    handler = await loadHandler(env._HANDLER ?? '');
  } catch (err) {
    logError('Uncaught Exception', err);
    crash(err, 129);
    return;
  }
  const isAsync = handler.constructor?.name === 'AsyncFunction';
  if (env.AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING === undefined && handler.length === 3 && !isAsync) {
    console.warn('AWS Lambda plans to remove support for callback-based function handlers starting with Node.js 24. You will need to update this function to use an async handler to use Node.js 24 or later. For more information and to provide feedback on this change, see https://github.com/aws/aws-lambda-nodejs-runtime-interface-client/issues/137. To disable this warning, set the AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING environment variable.');
  }
  scheduleNext(handler, isAsync);
}

main();
