"""Lambda's managed runtimes and `sam build`'s packaging, end to end: Node.js handlers of every
module style (CommonJS, ES modules, callbacks, nested folders, TypeScript bundled by esbuild)
through the Invoke API and an HTTP API, Node's error shapes and console framing, dependencies
(requirements.txt, package.json), the AWS SDKs the runtimes ship, layers, zip and CDK code
locations, the install cache, `--watch`, and what nimbus does with a function it cannot start.

Most cases share one stack per module-scoped fixture, so nimbus starts a handful of times. The
first run installs packages from PyPI and npm (into ~/.cache/nimbus), later runs reuse them."""

import base64
import io
import json
import os
import re
import shutil
import threading
import time
import zipfile

import pytest
import requests

from conftest import Nimbus, poll, wait_until

# A first start installs from PyPI and npm; a cached one takes seconds.
FIRST_START = 300

# Python functions run on python3.11 from PATH (else python3, with a warning): no --python, so
# nimbus finds the interpreter as it does for a user, not the test's virtualenv.
PY = "python3.11"
NODE = "nodejs20.x"

# The same files in several stacks share the install cache.
REQUIREMENTS = "tenacity==8.2.2\nPyYAML==6.0.2\n"
PACKAGE_JSON = json.dumps({"name": "uses-ms", "private": True, "dependencies": {"ms": "2.1.3"}})


def write_tree(root, files):
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def launch(root, template, files, args=(), timeout=FIRST_START):
    write_tree(root, {"template.yaml": template, **files})
    return Nimbus(root, args, timeout=timeout)


def zip_of(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def lambda_client(n):
    """One client per nimbus, reused as an application reuses it, so calls follow each other as
    closely as they do in production."""
    if not hasattr(n, "runtimes_client"):
        n.runtimes_client = n.lambda_client()
    return n.runtimes_client


def invoke(n, name, payload=None, **kw):
    resp = lambda_client(n).invoke(FunctionName=name, Payload=json.dumps(payload or {}), **kw)
    return resp, json.loads(resp["Payload"].read())


def ok(n, name, payload=None):
    """The answer of an invocation that must succeed."""
    resp, body = invoke(n, name, payload)
    assert "FunctionError" not in resp, body
    return body


def line_of(text, needle):
    """1-based line number of the first line of `text` containing `needle`."""
    return next(i for i, l in enumerate(text.splitlines(), 1) if needle in l)


def receive_one(sqs, url, timeout=15):
    got = poll(lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []),
               bool, timeout)
    assert got, f"no message on {url} within {timeout} s"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    return got[0]


# ---------------------------------------------------------------------------------------------
# The stack of working functions.

NODE_CJS = """
const os = require('node:os');
exports.handler = async (event, context) => ({
  kind: 'cjs',
  event,
  requestId: context.awsRequestId,
  arn: context.invokedFunctionArn,
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  memory: context.memoryLimitInMB,
  logGroupName: context.logGroupName,
  logStreamName: context.logStreamName,
  remaining: context.getRemainingTimeInMillis(),
  platform: os.platform(),
});
"""

# Top-level await: the handler sees what init computed.
NODE_ESM = """
const config = await new Promise((resolve) => setTimeout(() => resolve({ loadedAt: 'init' }), 20));
export const handler = async (event) => ({ kind: 'esm', config, event });
"""

NODE_TYPE_MODULE = """
import { basename } from 'node:path';
export const handler = async (event) => ({ kind: 'type-module', file: basename(import.meta.url), event });
"""

NODE_CALLBACK = """
exports.handler = (event, context, callback) => {
  setTimeout(() => callback(null, { kind: 'callback', event }), 20);
};
"""

NODE_NESTED = """
exports.run = async (event) => ({ kind: 'nested', event });
"""

NODE_TS = """
interface Doubled { kind: string; n: number; }
const double = (n: number): number => n * 2;
export const handler = async (event: { n: number }): Promise<Doubled> => ({ kind: 'ts', n: double(event.n) });
"""

NODE_HTTP = """
exports.handler = async (event) => ({
  statusCode: 200,
  headers: { 'content-type': 'application/json', 'x-handled-by': 'node' },
  body: JSON.stringify({
    version: event.version,
    routeKey: event.routeKey,
    rawPath: event.rawPath,
    method: event.requestContext.http.method,
    name: (event.queryStringParameters || {}).name,
  }),
});
"""

NODE_ERRORS = """
class OrderRejected extends Error {
  constructor(message) { super(message); this.name = 'OrderRejected'; }
}
class Unnamed extends Error {}
exports.handler = async (event) => {
  switch (event.action) {
    case 'throw': throw new OrderRejected('order 42 has no items');
    case 'unnamed': throw new Unnamed('a subclass that keeps the name Error');
    case 'string': throw 'just a string';
    case 'reject':
      Promise.reject(new Error('nobody awaited this'));
      return new Promise((resolve) => setTimeout(() => resolve('too late'), 2000));
    case 'sleep':
      await new Promise((resolve) => setTimeout(resolve, event.ms));
      return 'woke';
    default: return 'fine';
  }
};
"""

NODE_CALLBACK_ERROR = """
exports.handler = (event, context, callback) => {
  if (event.fail) return callback(new TypeError('callback got an error'));
  callback(null, 'fine');
};
"""

NODE_CRASH_AT_LOAD = """
class ConfigError extends Error {
  constructor(message) { super(message); this.name = 'ConfigError'; }
}
throw new ConfigError('TABLE_NAME is not set');
"""

NODE_SYNTAX_ERROR = """
exports.handler = async (event) => {
  return { unbalanced: true ;
"""

NODE_LOGS = """
exports.handler = async (event, context) => {
  console.log('hello\\nworld');
  console.log({ order: 42, items: ['a', 'b'] });
  console.error('bad %s', 'thing');
  return context.awsRequestId;
};
"""

# The queue's URL from the template (`!Ref`), else looked up by name.
NODE_SQS = """
import { SQSClient, SendMessageCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
const sqs = new SQSClient({});
export const handler = async (event) => {
  const QueueUrl = process.env.QUEUE_URL
    ?? (await sqs.send(new GetQueueUrlCommand({ QueueName: process.env.QUEUE_NAME }))).QueueUrl;
  const out = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify(event) }));
  return { messageId: out.MessageId };
};
"""

NODE_DEPS = """
const ms = require('ms');
exports.handler = async () => ({ twoHours: ms('2h'), version: require('ms/package.json').version });
"""

NODE_LAYER_USER = """
const { greet } = require('greeter');
exports.handler = async (event) => ({ greeting: greet(event.name), from: require.resolve('greeter') });
"""

PY_DEPS = """
import importlib.metadata
import tenacity
import yaml

def handler(event, context):
    attempts = []

    @tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none())
    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise IOError("not yet")
        return len(attempts)

    return {
        "tenacity": importlib.metadata.version("tenacity"),
        "attempts": flaky(),
        "pyyaml": importlib.metadata.version("PyYAML"),
        "with_libyaml": yaml.__with_libyaml__,
        "extension": yaml._yaml.__file__,
        "parsed": yaml.load("a: [1, 2]", Loader=yaml.CLoader),
    }
"""

PY_BOTO3 = """
import json, os
import boto3

sqs = boto3.client("sqs")

def handler(event, context):
    out = sqs.send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=json.dumps(event))
    return {"messageId": out["MessageId"]}
"""

PY_LAYER_USER = """
import shared_util

def handler(event, context):
    return {"shout": shared_util.shout(event["say"]), "from": shared_util.__file__}
"""

PY_PLAIN = """
def handler(event, context):
    return {"kind": KIND, "event": event}
"""

MAKEFILE = """
build-PyMake:
\tcp app.py $(ARTIFACTS_DIR)/
\techo made > $(ARTIFACTS_DIR)/stamp.txt
"""

PY_MADE = """
import os

def handler(event, context):
    with open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "stamp.txt")) as f:
        return {"kind": "makefile", "stamp": f.read().strip()}
"""

STACK = f"""
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 10
    MemorySize: 256
Resources:
  NodeCjs:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/cjs, Handler: app.handler, Runtime: {NODE}}}
  NodeEsm:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/esm, Handler: app.handler, Runtime: {NODE}}}
  NodeTypeModule:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/type-module, Handler: index.handler, Runtime: nodejs22.x}}
  NodeCallback:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/callback, Handler: app.handler, Runtime: {NODE}}}
  NodeNested:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/nested, Handler: nested/deep/mod.run, Runtime: {NODE}}}
  NodeTs:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/ts, Handler: app.handler, Runtime: {NODE}}}
    Metadata:
      BuildMethod: esbuild
      BuildProperties:
        EntryPoints: [app.ts]
        Target: es2020
  NodeInline:
    Type: AWS::Serverless::Function
    Properties:
      Handler: index.handler
      Runtime: {NODE}
      InlineCode: |
        exports.handler = async (event) => ({{ kind: 'inline', event }});
  NodeZip:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: zips/node.zip, Handler: app.handler, Runtime: {NODE}}}
  NodeDeps:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/deps, Handler: app.handler, Runtime: {NODE}}}
  NodeHttp:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: node/http
      Handler: app.handler
      Runtime: {NODE}
      Events:
        Hello:
          Type: HttpApi
          Properties: {{Path: /hello, Method: get}}
  NodeErrors:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/errors, Handler: app.handler, Runtime: {NODE}}}
  NodeSlow:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/errors, Handler: app.handler, Runtime: {NODE}, Timeout: 1}}
  NodeCallbackError:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/callback-error, Handler: app.handler, Runtime: {NODE}}}
  NodeCrashAtLoad:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/crash, Handler: app.handler, Runtime: {NODE}}}
  NodeSyntaxError:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/syntax, Handler: app.handler, Runtime: {NODE}}}
  NodeNoModule:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/cjs, Handler: missing.handler, Runtime: {NODE}}}
  NodeNoHandler:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/cjs, Handler: app.nope, Runtime: {NODE}}}
  NodeLogs:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node/logs, Handler: app.handler, Runtime: {NODE}}}
  NodeSqs:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: node/sqs
      Handler: app.handler
      Runtime: {NODE}
      Environment:
        Variables:
          QUEUE_URL: !Ref NodeOutbox
  NodeSqsByName:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: node/sqs
      Handler: app.handler
      Runtime: {NODE}
      Environment:
        Variables:
          QUEUE_NAME: !GetAtt NodeByNameOutbox.QueueName
  NodeLayerUser:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: node/layer-user
      Handler: app.handler
      Runtime: {NODE}
      Layers: [!Ref NodeLayer]
  NodeLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/node
      CompatibleRuntimes: [{NODE}]
  PyDeps:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: py/deps, Handler: app.handler, Runtime: {PY}}}
  PyBoto3:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: py/boto3
      Handler: app.handler
      Runtime: {PY}
      Environment:
        Variables:
          QUEUE_URL: !Ref PyOutbox
  PyLayerUser:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: py/layer-user
      Handler: app.handler
      Runtime: {PY}
      Layers: [!Ref PyLayer]
  PyLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/py
      CompatibleRuntimes: [{PY}]
  PyZip:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: zips/py.zip, Handler: app.handler, Runtime: {PY}}}
  PyMake:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: py/make, Handler: app.handler, Runtime: {PY}}}
    Metadata:
      BuildMethod: makefile
  NodeOutbox:
    Type: AWS::SQS::Queue
  PyOutbox:
    Type: AWS::SQS::Queue
  NodeByNameOutbox:
    Type: AWS::SQS::Queue
"""

STACK_FILES = {
    "node/cjs/app.js": NODE_CJS,
    "node/esm/app.mjs": NODE_ESM,
    "node/type-module/package.json": json.dumps({"name": "esm-package", "type": "module"}),
    "node/type-module/index.js": NODE_TYPE_MODULE,
    "node/callback/app.js": NODE_CALLBACK,
    "node/nested/nested/deep/mod.js": NODE_NESTED,
    "node/ts/app.ts": NODE_TS,
    "node/http/app.js": NODE_HTTP,
    "node/errors/app.js": NODE_ERRORS,
    "node/callback-error/app.js": NODE_CALLBACK_ERROR,
    "node/crash/app.js": NODE_CRASH_AT_LOAD,
    "node/syntax/app.js": NODE_SYNTAX_ERROR,
    "node/logs/app.js": NODE_LOGS,
    "node/sqs/app.mjs": NODE_SQS,
    "node/deps/package.json": PACKAGE_JSON,
    "node/deps/app.js": NODE_DEPS,
    "node/layer-user/app.js": NODE_LAYER_USER,
    "layers/node/nodejs/node_modules/greeter/package.json": json.dumps({"name": "greeter", "main": "index.js"}),
    "layers/node/nodejs/node_modules/greeter/index.js": "exports.greet = (name) => `hello, ${name}, from a layer`;\n",
    "py/deps/requirements.txt": REQUIREMENTS,
    "py/deps/app.py": PY_DEPS,
    "py/boto3/app.py": PY_BOTO3,
    "py/layer-user/app.py": PY_LAYER_USER,
    "layers/py/python/shared_util.py": "def shout(s):\n    return s.upper() + '!'\n",
    "py/make/Makefile": MAKEFILE,
    "py/make/app.py": PY_MADE,
    "zips/py.zip": zip_of({"app.py": "KIND = 'zip'\n" + PY_PLAIN}),
    "zips/node.zip": zip_of({"app.js": "exports.handler = async (event) => ({ kind: 'zip', event });\n"}),
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    n = launch(tmp_path_factory.mktemp("stack"), STACK, STACK_FILES)
    yield n
    n.stop()


# Each handler style answers its event. (function, event, the answer)
HANDLERS = [
    ("NodeEsm", {"n": 1}, {"kind": "esm", "config": {"loadedAt": "init"}, "event": {"n": 1}}),
    ("NodeTypeModule", {"n": 2}, {"kind": "type-module", "file": "index.js", "event": {"n": 2}}),
    ("NodeCallback", {"n": 3}, {"kind": "callback", "event": {"n": 3}}),
    ("NodeNested", {"n": 4}, {"kind": "nested", "event": {"n": 4}}),
    ("NodeTs", {"n": 21}, {"kind": "ts", "n": 42}),
    ("NodeInline", {"n": 5}, {"kind": "inline", "event": {"n": 5}}),
    ("NodeZip", {"n": 6}, {"kind": "zip", "event": {"n": 6}}),
    ("NodeDeps", {}, {"twoHours": 7200000, "version": "2.1.3"}),
    ("NodeCallbackError", {}, "fine"),
    ("PyZip", {"n": 7}, {"kind": "zip", "event": {"n": 7}}),
    ("PyMake", {}, {"kind": "makefile", "stamp": "made"}),
]


@pytest.mark.parametrize("function,event,answer", HANDLERS, ids=[h[0] for h in HANDLERS])
def test_handler_answers_through_the_invoke_api(stack, function, event, answer):
    assert ok(stack, function, event) == answer


def test_node_handler_gets_the_lambda_context(stack):
    resp, body = invoke(stack, "NodeCjs", {"k": [1, 2]})
    assert "FunctionError" not in resp, body
    assert body["kind"] == "cjs" and body["event"] == {"k": [1, 2]}
    assert body["requestId"] == resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert body["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:NodeCjs"
    assert body["functionName"] == "NodeCjs"
    assert body["functionVersion"] == "$LATEST"
    assert str(body["memory"]) == "256"
    assert body["logGroupName"] == "/aws/lambda/NodeCjs"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", body["logStreamName"]), body
    assert 0 < body["remaining"] <= 10_000


def test_node_function_behind_an_http_api_route_answers_a_2_0_response(stack):
    base = stack.api_url("ServerlessHttpApi")
    r = requests.get(f"{base}/hello", params={"name": "ada"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-handled-by"] == "node"
    assert r.json() == {"version": "2.0", "routeKey": "GET /hello", "rawPath": "/hello",
                        "method": "GET", "name": "ada"}


# Errors thrown, rejected or timed out, and what the caller sees. Each function then answers
# a good event, from a fresh environment where the runtime exited.
# (function, event, errorType, errorMessage pattern, good event, its answer)
NODE_ERRORS_TABLE = [
    ("NodeErrors", {"action": "throw"}, "OrderRejected", r"order 42 has no items", {}, "fine"),
    ("NodeErrors", {"action": "unnamed"}, "Error", r"a subclass that keeps the name Error", {}, "fine"),
    ("NodeErrors", {"action": "string"}, "string", r"just a string", {}, "fine"),
    ("NodeErrors", {"action": "reject"}, "Runtime.UnhandledPromiseRejection",
     r"Error: nobody awaited this", {}, "fine"),
    ("NodeCallbackError", {"fail": True}, "TypeError", r"callback got an error", {}, "fine"),
    ("NodeSlow", {"action": "sleep", "ms": 3000}, "Sandbox.Timedout",
     r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [0-9a-f-]{36} Task timed out after 1\.00 seconds",
     {"action": "sleep", "ms": 0}, "woke"),
]


@pytest.mark.parametrize("function,event,error_type,message,good,answer", NODE_ERRORS_TABLE,
                         ids=[r[2] for r in NODE_ERRORS_TABLE])
def test_node_error_is_an_unhandled_function_error_of_its_type(stack, function, event, error_type,
                                                                message, good, answer):
    started = time.time()
    resp, body = invoke(stack, function, event)
    assert resp["FunctionError"] == "Unhandled", body
    assert body["errorType"] == error_type, body
    assert re.fullmatch(message, body["errorMessage"]), body
    if error_type != "Sandbox.Timedout":
        assert isinstance(body["trace"], list), body
    else:
        assert time.time() - started < 3, "the timeout did not stop the invocation at 1 s"
    assert ok(stack, function, good) == answer


# Functions whose code cannot load: every invoke answers the init error.
# (function, errorType, errorMessage pattern)
NODE_INIT_ERRORS = [
    ("NodeCrashAtLoad", "ConfigError", r"TABLE_NAME is not set"),
    ("NodeSyntaxError", "Runtime.UserCodeSyntaxError", r"SyntaxError: Unexpected token ';'"),
    ("NodeNoModule", "Runtime.ImportModuleError", r"Error: Cannot find module 'missing'(.|\n)*"),
    ("NodeNoHandler", "Runtime.HandlerNotFound", r"app\.nope is undefined or not exported"),
]


@pytest.mark.parametrize("function,error_type,message", NODE_INIT_ERRORS, ids=[r[0] for r in NODE_INIT_ERRORS])
def test_node_init_failure_answers_every_invoke_with_the_init_error(stack, function, error_type, message):
    for _ in range(2):
        resp, body = invoke(stack, function, {})
        assert resp["FunctionError"] == "Unhandled", body
        assert body["errorType"] == error_type, body
        assert re.fullmatch(message, body["errorMessage"]), body
    assert ok(stack, "NodeCjs")["kind"] == "cjs"


def test_console_lines_are_framed_with_time_request_id_and_level(stack):
    resp, request_id = invoke(stack, "NodeLogs", LogType="Tail")
    assert "FunctionError" not in resp, request_id
    log = base64.b64decode(resp["LogResult"]).decode()
    lines = log.split("\n")
    frame = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t" + re.escape(request_id) + r"\t"

    def find(level, message):
        want = re.compile(frame + level + r"\t" + re.escape(message))
        found = [l for l in lines if want.fullmatch(l)]
        assert found, f"no line {want.pattern!r} in the log:\n{log}"

    # The two-line message stays one log line, its newline turned into \r as on Lambda.
    find("INFO", "hello\rworld")
    find("INFO", "{ order: 42, items: [ 'a', 'b' ] }")
    find("ERROR", "bad thing")
    assert not any(l.endswith("\tworld") or l == "world" for l in lines), log

    # The function's log file holds the same line: `<time>\t<stream>\t<line>`.
    state = stack.wait_for("nimbus: state directory ").split("nimbus: state directory ", 1)[1]
    path = os.path.join(state, "logs", "NodeLogs.log")
    stream = r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}"
    want = re.compile(r"\S+\t" + stream + r"\t" + frame + r"INFO\thello\rworld")

    def logged():
        with open(path, newline="") as f:
            return [l for l in f.read().split("\n") if want.fullmatch(l)]

    wait_until(f"the framed line in {path}", logged, timeout=10)


# (function, the queue it sends to: NodeSqs and PyBoto3 are given its URL with !Ref, as templates
# do; NodeSqsByName its name, and asks SQS for the URL)
@pytest.mark.parametrize("function,queue", [
    ("NodeSqs", "NodeOutbox"),
    ("NodeSqsByName", "NodeByNameOutbox"),
    ("PyBoto3", "PyOutbox"),
])
def test_the_runtime_sdk_works_undeclared_and_reaches_nimbus_sqs(stack, function, queue):
    event = {"order": 7, "from": function}
    body = ok(stack, function, event)
    sqs = stack.client("sqs")
    message = receive_one(sqs, sqs.get_queue_url(QueueName=queue)["QueueUrl"])
    assert json.loads(message["Body"]) == event
    assert message["MessageId"] == body["messageId"]


def test_requirements_install_pure_python_and_compiled_wheels(stack):
    body = ok(stack, "PyDeps")
    assert body["tenacity"] == "8.2.2"
    assert body["attempts"] == 3
    assert body["pyyaml"] == "6.0.2"
    # The C extension (libyaml) was installed and imported, not only the pure-Python fallback.
    assert body["with_libyaml"] is True, body
    assert re.search(r"_yaml\.cpython-\d+.*\.so$", body["extension"]), body
    assert body["parsed"] == {"a": [1, 2]}


@pytest.mark.parametrize("function,event,answer", [
    ("PyLayerUser", {"say": "hi"}, {"shout": "HI!", "from": "layers/py/python/shared_util.py"}),
    ("NodeLayerUser", {"name": "ada"}, {"greeting": "hello, ada, from a layer",
                                        "from": "layers/node/nodejs/node_modules/greeter/index.js"}),
])
def test_layer_contents_are_importable(stack, function, event, answer):
    body = ok(stack, function, event)
    assert body["from"].endswith("/" + answer["from"]), body
    assert body == {**answer, "from": body["from"]}


# ---------------------------------------------------------------------------------------------
# A template as CDK synthesises it: AWS::Lambda::Function whose code is an S3 asset, its local
# folder recorded in Metadata.

CDK_TEMPLATE = f"""
Resources:
  HandlerServiceRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Action: sts:AssumeRole
            Effect: Allow
            Principal: {{Service: lambda.amazonaws.com}}
        Version: "2012-10-17"
      ManagedPolicyArns:
        - !Join ["", ["arn:", !Ref AWS::Partition, ":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]]
  Handler886CB40B:
    Type: AWS::Lambda::Function
    Properties:
      Code:
        S3Bucket: !Sub cdk-hnb659fds-assets-${{AWS::AccountId}}-${{AWS::Region}}
        S3Key: 3f0d6c6a1b2c3d4e5f60718293a4b5c6d7e8f9012345678901234567890abcd.zip
      Handler: index.handler
      Role: !GetAtt HandlerServiceRole.Arn
      Runtime: {NODE}
    DependsOn: [HandlerServiceRole]
    Metadata:
      aws:cdk:path: AppStack/Handler/Resource
      aws:asset:path: asset.3f0d6c6a1b2c3d4e
      aws:asset:is-bundled: false
      aws:asset:property: Code
  PyHandler:
    Type: AWS::Lambda::Function
    Properties:
      Code:
        S3Bucket: !Sub cdk-hnb659fds-assets-${{AWS::AccountId}}-${{AWS::Region}}
        S3Key: 9a8b7c6d5e4f.zip
      Handler: index.handler
      Role: !GetAtt HandlerServiceRole.Arn
      Runtime: {PY}
    Metadata:
      aws:asset:path: asset.9a8b7c6d5e4f
      aws:asset:property: Code
"""


def test_cdk_shaped_template_runs_functions_from_their_asset_folders(start_nimbus):
    n = start_nimbus(CDK_TEMPLATE, {
        "asset.3f0d6c6a1b2c3d4e/index.js":
            "exports.handler = async (event) => ({ kind: 'cdk-node', event });\n",
        "asset.9a8b7c6d5e4f/index.py": "KIND = 'cdk-python'\n" + PY_PLAIN,
    }, timeout=FIRST_START)
    assert ok(n, "Handler886CB40B", {"a": 1}) == {"kind": "cdk-node", "event": {"a": 1}}
    assert ok(n, "PyHandler", {"b": 2}) == {"kind": "cdk-python", "event": {"b": 2}}


# ---------------------------------------------------------------------------------------------
# The install cache.

CACHED_TEMPLATE = f"""
Transform: AWS::Serverless-2016-10-31
Resources:
  PyDeps:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: py, Handler: app.handler, Runtime: {PY}}}
  NodeDeps:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: deps, Handler: app.handler, Runtime: {NODE}}}
  NodeSqs:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: sqs, Handler: app.handler, Runtime: {NODE}}}
  NodeTs:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: ts, Handler: app.handler, Runtime: {NODE}}}
    Metadata:
      BuildMethod: esbuild
      BuildProperties: {{EntryPoints: [app.ts]}}
"""


# What a first start into an empty cache installs, by function (esbuild only when it is not on PATH).
FIRST_INSTALLS = [
    "PyDeps: installing requirements.txt (",
    "PyDeps: installing boto3, which Lambda's Python runtimes provide (",
    "NodeDeps: installing package.json dependencies (npm install)",
    "NodeSqs: installing @aws-sdk/client-sqs@",
] + ([] if shutil.which("esbuild") else ["NodeTs: installing esbuild@"])


def test_a_second_start_installs_nothing(tmp_path, capsys):
    # A cache of its own, so the first start installs for certain (pip's and npm's own caches
    # keep that to seconds after the first run on a machine).
    args = ["--cache-dir", str(tmp_path / "cache")]
    files = {
        "py/requirements.txt": REQUIREMENTS,
        "py/app.py": PY_DEPS,
        "deps/package.json": PACKAGE_JSON,
        "deps/app.js": NODE_DEPS,
        "sqs/app.mjs": NODE_SQS,
        "ts/app.ts": NODE_TS,
    }
    started = time.time()
    first = launch(tmp_path, CACHED_TEMPLATE, files, args)
    first_took = time.time() - started
    first.stop()
    missing = [i for i in FIRST_INSTALLS if not any(i in l for l in first.err_lines)]
    assert missing == [], f"the first start did not install {missing}:\n{first.stderr}"

    started = time.time()
    second = Nimbus(tmp_path, args, timeout=FIRST_START)
    second_took = time.time() - started
    try:
        installs = [l for l in second.err_lines if ": installing " in l]
        assert installs == [], "the second start installed again:\n" + "\n".join(installs)
        assert ok(second, "PyDeps")["tenacity"] == "8.2.2"
        assert ok(second, "NodeDeps")["version"] == "2.1.3"
        assert ok(second, "NodeTs", {"n": 2}) == {"kind": "ts", "n": 4}
    finally:
        second.stop()
    with capsys.disabled():
        print(f"\n[cache] first start (installing into an empty cache) ready in {first_took:.1f} s; "
              f"second start ready in {second_took:.1f} s")


# ---------------------------------------------------------------------------------------------
# --watch.

WATCH_TEMPLATE = f"""
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 10
Resources:
  WatchPy:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: py, Handler: app.handler, Runtime: {PY}}}
  WatchNode:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: node, Handler: app.handler, Runtime: {NODE}}}
"""

WATCH_SOURCES = {
    # (file, source with the value it returns); the new value is longer, so Python's bytecode
    # cache cannot take the new file for the old one.
    "WatchPy": ("py/app.py", """
import time

def handler(event, context):
    if "sleep" in event:
        print(event["token"], flush=True)
        time.sleep(event["sleep"])
    return {"value": %r}
"""),
    "WatchNode": ("node/app.js", """
exports.handler = async (event) => {
  if (event.sleep) {
    console.log(event.token);
    await new Promise((resolve) => setTimeout(resolve, event.sleep * 1000));
  }
  return { value: %s };
};
"""),
}


def watch_source(function, value):
    file, text = WATCH_SOURCES[function]
    return file, text % (value if function == "WatchPy" else json.dumps(value))


@pytest.fixture(scope="module")
def watching(tmp_path_factory):
    root = tmp_path_factory.mktemp("watch")
    files = dict(watch_source(f, "v1") for f in WATCH_SOURCES)
    n = launch(root, WATCH_TEMPLATE, files, args=["--watch"])
    n.wait_for("nimbus: watching ")
    yield root, n
    n.stop()


@pytest.mark.parametrize("function", list(WATCH_SOURCES))
def test_watch_swaps_in_edited_code_without_failing_an_invocation(watching, function):
    root, n = watching
    client = n.lambda_client()
    seen, failures = [], []
    stop = threading.Event()

    def call(payload):
        try:
            resp = client.invoke(FunctionName=function, Payload=json.dumps(payload))
            body = json.loads(resp["Payload"].read())
            if "FunctionError" in resp:
                failures.append(body)
            return body
        except Exception as e:  # noqa: BLE001 - every failure is reported below
            failures.append(repr(e))

    def loop():
        deadline = time.time() + 15
        while not stop.is_set() and time.time() < deadline:
            body = call({})
            if isinstance(body, dict):
                seen.append(body.get("value"))

    assert ok(n, function) == {"value": "v1"}
    looper = threading.Thread(target=loop, daemon=True)
    looper.start()
    wait_until("invocations of the old code", lambda: "v1" in seen, timeout=10)

    # One invocation is running on the old code while the file changes: it finishes on it.
    slow = {}
    token = f"slow-call-of-{function}-started"
    slow_call = threading.Thread(target=lambda: slow.update(body=call({"sleep": 2, "token": token})),
                                 daemon=True)
    slow_call.start()
    n.wait_for(token, timeout=10)

    # Saved as editors save: written beside (outside the code folder), then renamed into place.
    file, text = watch_source(function, "version-2")
    staged = root / f"{function}.staged"
    staged.write_text(text)
    os.replace(staged, root / file)

    wait_until("the new code's answer", lambda: "version-2" in seen, timeout=10)
    stop.set()
    looper.join(20)
    slow_call.join(20)
    assert failures == [], failures
    assert slow.get("body") == {"value": "v1"}, slow
    n.wait_for(f"nimbus: {function} reloaded in ")
    # After the switch, no invocation ran the old code again.
    assert "v1" not in seen[seen.index("version-2"):], seen


# ---------------------------------------------------------------------------------------------
# Functions nimbus cannot start, beside one that works.

BROKEN = f"""
Transform: AWS::Serverless-2016-10-31
Resources:
  Good:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: good
      Handler: app.handler
      Runtime: {PY}
  Java:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: good
      Handler: com.example.App::handleRequest
      Runtime: java21
  Dotnet:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: good
      Handler: App::App.Function::Handler
      Runtime: dotnet8
  Ruby:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: good
      Handler: app.handler
      Runtime: ruby3.3
  PyNoModule:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: good
      Handler: missing.handler
      Runtime: {PY}
  NodeNoModule:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: node
      Handler: missing.handler
      Runtime: {NODE}
  PyBadRequirement:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: badreq
      Handler: app.handler
      Runtime: {PY}
  NodeBadPackageJson:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: badjson
      Handler: app.handler
      Runtime: {NODE}
  PyMissingLayer:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: good
      Handler: app.handler
      Runtime: {PY}
      Layers: [!Ref GoneLayer]
  GoneLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/gone
"""

BROKEN_FILES = {
    "good/app.py": "def handler(event, context):\n    return {'good': True}\n",
    "node/app.js": "exports.handler = async () => 'fine';\n",
    "badreq/requirements.txt": "nimbus-no-such-package-xyz==1.0\n",
    "badreq/app.py": "def handler(event, context):\n    return 'unreachable'\n",
    "badjson/package.json": '{ "dependencies": { "ms": "2.1.3", } ',
    "badjson/app.js": "exports.handler = async () => 'unreachable';\n",
}


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    n = launch(root, BROKEN, BROKEN_FILES)
    yield root.resolve(), n
    n.stop()


def unsupported(fn, runtime):
    return (fn, "Runtime.InvalidEntrypoint", "stderr",
            lambda root: [f"error: function {fn}: Runtime {runtime} (Resources.{fn}.Properties.Runtime, "
                          f"line {line_of(BROKEN, 'Runtime: ' + runtime)}) is not supported by nimbus"])


# (function, errorType, where nimbus says why: its stderr, or the function's own log; what it says)
BAD_INPUTS = [
    unsupported("Java", "java21"),
    unsupported("Dotnet", "dotnet8"),
    unsupported("Ruby", "ruby3.3"),
    ("PyNoModule", "Runtime.ImportModuleError", "log",
     lambda root: ["PyNoModule | ", "Unable to import module 'missing': No module named 'missing'"]),
    ("NodeNoModule", "Runtime.ImportModuleError", "log",
     lambda root: ["NodeNoModule | ", "Cannot find module 'missing'"]),
    ("PyBadRequirement", "Runtime.InvalidEntrypoint", "stderr",
     lambda root: ["error: function PyBadRequirement: `", "-r requirements.txt --target ",
                   "` failed (exit status: 1); its last output:",
                   "No matching distribution found for nimbus-no-such-package-xyz==1.0"]),
    ("NodeBadPackageJson", "Runtime.InvalidEntrypoint", "stderr",
     lambda root: [f"error: function NodeBadPackageJson: {root}/badjson/package.json is not valid JSON: ",
                   "; npm cannot install its dependencies"]),
    ("PyMissingLayer", "Runtime.InvalidEntrypoint", "stderr",
     lambda root: [f"error: function PyMissingLayer: layer GoneLayer: Resources.GoneLayer.Properties.ContentUri "
                   f"(line {line_of(BROKEN, 'ContentUri: layers/gone')}) names {root}/layers/gone, "
                   "which does not exist"]),
]


@pytest.mark.parametrize("function,error_type,where,says", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_a_function_that_cannot_start_answers_errors_and_nimbus_says_why(broken, function, error_type,
                                                                          where, says):
    root, n = broken
    assert ok(n, "Good") == {"good": True}
    for _ in range(2):
        resp, body = invoke(n, function)
        assert resp["FunctionError"] == "Unhandled", body
        assert body["errorType"] == error_type, body
    fragments = says(root)
    if where == "stderr":
        # Checked first with any line number, then exactly: a wrong line number alone says so.
        loose = [re.sub(r"line\\ \d+", r"line \\d+", re.escape(f)) for f in fragments]
        # The reason is in the invoke's answer too.
        assert re.search(loose[-1].removeprefix(re.escape("error: ")), body["errorMessage"]), body
        text = n.stderr
        missing = [f for f in loose if not re.search(f, text)]
        assert missing == [], f"stderr lacks {missing}:\n{text}"
        assert f"{function} will answer every invoke with Runtime.InvalidEntrypoint" in text
        missing = [f for f in fragments if f not in text]
        assert missing == [], f"stderr cites another line than {missing}:\n{text}"
    else:
        prefix, message = fragments
        assert message in body["errorMessage"], body
        n.wait_for(message)
        assert any(l.startswith(prefix) and message in l for l in n.lines), "\n".join(n.lines)


# ---------------------------------------------------------------------------------------------
# AWS_LAMBDA_EXEC_WRAPPER: Lambda starts the wrapper with the runtime's command as arguments; a
# wrapper under /opt comes from a layer.

WRAPPER_TEMPLATE = f"""
Transform: AWS::Serverless-2016-10-31
Resources:
  Tools:
    Type: AWS::Serverless::LayerVersion
    Properties: {{ContentUri: tools}}
  Wrapped:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: wrapped
      Handler: app.handler
      Runtime: {PY}
      Layers: [!Ref Tools]
      Environment:
        Variables:
          AWS_LAMBDA_EXEC_WRAPPER: /opt/wrapper.sh
"""


def test_an_exec_wrapper_from_a_layer_starts_the_runtime(tmp_path):
    files = {
        "tools/wrapper.sh": "#!/bin/sh\nexport WRAPPED_BY=wrapper.sh\nexport WRAPPED_ARGS=\"$#\"\nexec \"$@\"\n",
        "wrapped/app.py": "import os\n\ndef handler(event, context):\n"
                          "    return {k: os.environ.get(k) for k in ('WRAPPED_BY', 'WRAPPED_ARGS')}\n",
    }
    write_tree(tmp_path, files)
    os.chmod(tmp_path / "tools" / "wrapper.sh", 0o755)
    n = launch(tmp_path, WRAPPER_TEMPLATE, {})
    try:
        body = ok(n, "Wrapped")
        assert body["WRAPPED_BY"] == "wrapper.sh", body
        # The runtime's own command (interpreter and loop) came through as arguments.
        assert int(body["WRAPPED_ARGS"]) >= 2, body
    finally:
        n.stop()
