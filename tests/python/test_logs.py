"""`nimbus logs`: a function's lines from the state directory, filtered with a CloudWatch filter
pattern, limited with --since, followed with --follow; a function without logs named."""

import subprocess
import threading
import time

from conftest import NIMBUS, poll

APP = '''
def handler(event, context):
    print("[ERROR] order %s failed" % event["n"] if event.get("fail") else "[INFO] order %s ok" % event["n"])
    return {"n": event["n"]}
'''

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src
"""


def logs(tmp_path, *args):
    return subprocess.run([str(NIMBUS), "logs", "--template", str(tmp_path / "template.yaml"), *args],
                          capture_output=True, text=True, timeout=30)


def test_logs_filters_limits_and_follows(start_nimbus, tmp_path):
    n = start_nimbus(TEMPLATE, {"src/app.py": APP})
    lam = n.client("lambda")
    lam.invoke(FunctionName="Orders", Payload=b'{"n": 1}')
    lam.invoke(FunctionName="Orders", Payload=b'{"n": 2, "fail": true}')

    def wait_for(args, needle):
        return poll(lambda: logs(tmp_path, *args), lambda out: needle in out.stdout)

    out = wait_for(["Orders"], "order 2 failed")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any("START RequestId:" in l for l in lines) and any("REPORT RequestId:" in l for l in lines)
    assert [l.split("\t", 1)[1] for l in lines if "order" in l] == ["[INFO] order 1 ok", "[ERROR] order 2 failed"]

    out = logs(tmp_path, "Orders", "--filter", "ERROR")
    assert [l.split("\t", 1)[1] for l in out.stdout.splitlines()] == ["[ERROR] order 2 failed"]
    out = logs(tmp_path, "Orders", "--filter", '?"order 1" ?"order 2" -INFO')
    assert [l.split("\t", 1)[1] for l in out.stdout.splitlines()] == ["[ERROR] order 2 failed"]
    # Without a function: every log, each line prefixed with its function.
    out = logs(tmp_path, "--filter", "order")
    assert all(l.startswith("Orders | ") for l in out.stdout.splitlines()) and len(out.stdout.splitlines()) == 2

    time.sleep(2.2)
    assert logs(tmp_path, "Orders", "--since", "2s").stdout == ""

    follow = subprocess.Popen([str(NIMBUS), "logs", "Orders", "--template", str(tmp_path / "template.yaml"),
                               "--follow", "--filter", "order 3"], stdout=subprocess.PIPE, text=True)
    # A line that never comes must not hang the test run.
    guard = threading.Timer(15, follow.kill)
    guard.start()
    try:
        time.sleep(0.5)
        lam.invoke(FunctionName="Orders", Payload=b'{"n": 3}')
        line = follow.stdout.readline()
        assert line.rstrip("\n").endswith("[INFO] order 3 ok")
    finally:
        guard.cancel()
        follow.kill()
        follow.wait()

    out = logs(tmp_path, "Missing")
    assert out.returncode != 0
    assert "no log for Missing in" in out.stderr and "logs there: Orders" in out.stderr
    out = logs(tmp_path, "Orders", "--filter", "{ $.level = 1 }")
    assert out.returncode != 0 and "JSON, space-delimited and regular-expression patterns are not supported" in out.stderr
    out = logs(tmp_path, "Orders", "--since", "ten minutes")
    assert out.returncode != 0 and "30s, 10m, 2h or 1d" in out.stderr
