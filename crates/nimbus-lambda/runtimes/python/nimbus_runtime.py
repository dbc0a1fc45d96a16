"""nimbus's Python runtime loop: runs `_HANDLER` (module.function) behind the Lambda Runtime API.

Standard library only, so it runs on any python3 without installing anything. It follows what
AWS's Python runtime does: import the handler once (init), then loop on /next, calling the handler
with the event and a context object, and post the result or the error.
"""

import decimal
import http.client
import importlib
import json
import os
import sys
import time
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
PREFIX = "/2018-06-01/runtime"


class Connection:
    """One keep-alive connection to the Runtime API, reopened if the server closed it."""

    def __init__(self):
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(API)
            try:
                self.conn.request(method, PREFIX + path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                return resp, resp.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise


class ClientContext:
    def __init__(self, raw):
        self.client = raw.get("client")
        self.custom = raw.get("custom")
        self.env = raw.get("env")


class CognitoIdentity:
    def __init__(self, raw):
        self.cognito_identity_id = raw.get("cognitoIdentityId")
        self.cognito_identity_pool_id = raw.get("cognitoIdentityPoolId")


class LambdaContext:
    def __init__(self, request_id, deadline_ms, arn, client_context, identity):
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.client_context = ClientContext(json.loads(client_context)) if client_context else None
        self.identity = CognitoIdentity(json.loads(identity)) if identity else None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def json_default(value):
    # AWS's Python runtime writes Decimal (what boto3 returns for DynamoDB numbers) as a number.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError("Object of type %s is not JSON serializable" % type(value).__name__)


def error_body(exc, request_id=""):
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:]),
    }


def log_error(body):
    # Lambda's Python runtime prints the error to the function's log as well as returning it.
    print("[ERROR] %s: %s" % (body["errorType"], body["errorMessage"]), file=sys.stderr)
    for frame in body.get("stackTrace", []):
        print(frame.rstrip(), file=sys.stderr)


def post_init_error(conn, error_type, message):
    body = {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": []}
    log_error(body)
    conn.request(
        "POST",
        "/init/error",
        json.dumps(body).encode(),
        {"Lambda-Runtime-Function-Error-Type": error_type, "Content-Type": "application/json"},
    )


def load_handler(conn):
    handler = os.environ.get("_HANDLER", "")
    module_name, _, function_name = handler.rpartition(".")
    if not module_name or not function_name:
        post_init_error(conn, "Runtime.MalformedHandlerName", "Bad handler '%s': not enough values to unpack (expected 2, got 1)" % handler)
        return None
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        post_init_error(conn, "Runtime.ImportModuleError", "Unable to import module '%s': %s" % (module_name, exc))
        return None
    except SyntaxError as exc:
        post_init_error(conn, "Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (module_name, exc))
        return None
    except Exception as exc:  # the module's own code failed while importing: an init error
        body = error_body(exc)
        log_error(body)
        conn.request("POST", "/init/error", json.dumps(body).encode(),
                     {"Lambda-Runtime-Function-Error-Type": "Runtime.Unknown"})
        return None
    func = getattr(module, function_name, None)
    if func is None:
        post_init_error(conn, "Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (function_name, module_name))
        return None
    return func


def main():
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", os.getcwd()))
    conn = Connection()
    func = load_handler(conn)
    if func is None:
        sys.exit(1)
    while True:
        resp, event_bytes = conn.request("GET", "/invocation/next")
        if resp.status != 200:
            print("[ERROR] runtime API /next answered %d: %r" % (resp.status, event_bytes[:200]), file=sys.stderr)
            sys.exit(1)
        request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
        trace_id = resp.getheader("Lambda-Runtime-Trace-Id")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        context = LambdaContext(
            request_id,
            int(resp.getheader("Lambda-Runtime-Deadline-Ms", "0")),
            resp.getheader("Lambda-Runtime-Invoked-Function-Arn"),
            resp.getheader("Lambda-Runtime-Client-Context"),
            resp.getheader("Lambda-Runtime-Cognito-Identity"),
        )
        try:
            event = json.loads(event_bytes) if event_bytes else {}
            result = func(event, context)
            try:
                payload = json.dumps(result, default=json_default).encode()
            except (TypeError, ValueError) as exc:
                body = {"errorMessage": "Unable to marshal response: %s" % exc, "errorType": "Runtime.MarshalError",
                        "requestId": request_id, "stackTrace": []}
                log_error(body)
                conn.request("POST", "/invocation/%s/error" % request_id, json.dumps(body).encode(),
                             {"Lambda-Runtime-Function-Error-Type": "Runtime.MarshalError"})
                continue
            conn.request("POST", "/invocation/%s/response" % request_id, payload)
        except Exception as exc:
            body = error_body(exc, request_id)
            log_error(body)
            conn.request("POST", "/invocation/%s/error" % request_id, json.dumps(body).encode(),
                         {"Lambda-Runtime-Function-Error-Type": body["errorType"]})


if __name__ == "__main__":
    main()
