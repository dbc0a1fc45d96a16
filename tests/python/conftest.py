"""Starts a real `nimbus up` for the Python end-to-end tests."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]


def poll(read, done, timeout=10, interval=0.1):
    """Calls `read()` until `done(value)` or `timeout` seconds pass; the last value either way,
    so the caller's assertions say what was seen."""
    deadline = time.time() + timeout
    while True:
        value = read()
        if done(value) or time.time() > deadline:
            return value
        time.sleep(interval)


def wait_until(what, check, timeout=20):
    """`check()`'s first truthy value; fails the test after `timeout` seconds."""
    got = poll(check, bool, timeout, 0.05)
    if not got:
        raise AssertionError(f"timed out waiting for {what}")
    return got


def chaos_toolkit(experiment, journal, **env):
    """Runs a Chaos Toolkit experiment file with the `chaos` CLI installed beside this Python,
    from the repository's root, with `env` added to the environment; returns its journal."""
    chaos = Path(sys.executable).parent / "chaos"
    run = subprocess.run([str(chaos), "--no-log-file", "run", "--journal-path", str(journal), str(experiment)],
                         env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    j = json.loads(Path(journal).read_text())
    assert j["status"] == "completed" and not j["deviated"], j["status"]
    return j


def aws(n, *args):
    """The AWS CLI (installed with the test requirements) against nimbus: its exit status, its
    JSON answer and its stderr."""
    cli = Path(sys.executable).parent / "aws"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}
    out = subprocess.run([str(cli), "--endpoint-url", n.endpoint, "--output", "json", *args],
                         capture_output=True, text=True, env=env, timeout=60)
    return out.returncode, (json.loads(out.stdout) if out.stdout.strip() else None), out.stderr


TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
NIMBUS = Path(os.environ.get("NIMBUS_BIN", TARGET / "debug" / "nimbus"))
TESTFN = Path(os.environ.get("NIMBUS_TESTFN", TARGET / "debug" / "examples" / "testfn"))


class Nimbus:
    def __init__(self, template_dir, args=(), template="template.yaml", timeout=60):
        assert NIMBUS.exists(), f"{NIMBUS} is missing: run scripts/test.sh (it builds it)"
        # Everything nimbus printed, stdout and stderr, each line as it was read; `err_lines` holds
        # the stderr lines alone (build errors, warnings and the INFO log of installs).
        self.lines = []
        self.err_lines = []
        self.proc = subprocess.Popen(
            [str(NIMBUS), "up", str(template_dir / template), "--aws-port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        line = self.wait_for("nimbus: AWS endpoint ", timeout)
        self.endpoint = line.split("nimbus: AWS endpoint ", 1)[1].strip()
        self.wait_for("nimbus: ready", timeout)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _read_stderr(self):
        # Passed on to the test's own stderr as well, so pytest still shows it on a failure.
        for line in self.proc.stderr:
            line = line.rstrip("\n")
            self.err_lines.append(line)
            self.lines.append(line)
            try:
                sys.stderr.write(line + "\n")
            except (ValueError, OSError):  # pytest closed the capture after the test
                pass

    @property
    def stderr(self):
        return "\n".join(self.err_lines)

    def wait_for(self, needle, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in list(self.lines):
                if needle in line:
                    return line
            if self.proc.poll() is not None and not any(needle in l for l in self.lines):
                raise AssertionError("nimbus exited: %s\n%s" % (self.proc.returncode, "\n".join(self.lines)))
            time.sleep(0.02)
        raise AssertionError("no line with %r in:\n%s" % (needle, "\n".join(self.lines)))

    def api_url(self, api_id):
        """The base URL nimbus printed for the API `api_id`."""
        line = self.wait_for(f" API {api_id} (stage ")
        return line.rsplit(" ", 1)[1].strip()

    def api_key(self, key_id):
        """The value of a key nimbus generated (it prints those at start-up)."""
        line = self.wait_for(f"API key {key_id} ")
        return line.rsplit(": ", 1)[1].strip()

    def client(self, service):
        """A boto3 client for `service` on nimbus's AWS endpoint (no retries, long reads)."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 1}, read_timeout=60),
        )

    def lambda_client(self):
        return self.client("lambda")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def calls(tmp_path):
    """Where the event tests' functions record their calls (one JSON object a line)."""
    return tmp_path / "calls.jsonl"


@pytest.fixture
def start_nimbus(tmp_path):
    started = []

    def start(template, files=None, args=(), timeout=60):
        (tmp_path / "template.yaml").write_text(template)
        for rel, content in (files or {}).items():
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                path.symlink_to(content)
            else:
                path.write_text(content)
        n = Nimbus(tmp_path, args, timeout=timeout)
        started.append(n)
        return n

    yield start
    for n in started:
        n.stop()
