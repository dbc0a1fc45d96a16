"""The hello app's Python function: the same greeting as the Rust one."""

import os


def handler(event, context):
    name = (event or {}).get("name") or "world"
    if not str(name).strip():
        raise ValueError("name must not be empty")
    print("greeting %s from %s" % (name, os.environ.get("AWS_LAMBDA_FUNCTION_NAME")))
    return {
        "message": "Hello, %s!" % name,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
