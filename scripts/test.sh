#!/usr/bin/env bash
# Runs every nimbus test: Rust unit, integration and end-to-end tests (cargo test), then the
# Python end-to-end tests (boto3 and awslambdaric as clients of a real `nimbus up`).
# Installs what the Python tests need into a virtualenv under the cargo target directory.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$PWD/target}"
venv="$target/test-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
# A boto3 from before SQS's JSON protocol, for the query-protocol tests; it cannot share a
# virtualenv with the current boto3.
query_venv="$target/test-venv-query"
if [ ! -x "$query_venv/bin/python" ]; then
  python3 -m venv "$query_venv"
fi
"$query_venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements-query.txt

# The weather app's shared-cache test runs a real Redis (the ElastiCache engine).
if ! command -v redis-server >/dev/null; then
  echo "installing redis-server (Debian package) for the weather app's tests" >&2
  apt_get() { if [ "$(id -u)" -eq 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi; }
  apt_get install -y -q redis-server >/dev/null 2>&1 || { apt_get update -q >/dev/null && apt_get install -y -q redis-server >/dev/null; }
fi

# The dashboard's browser test drives Debian's Chromium with playwright-core (from npm; it
# never downloads a browser of its own).
if ! command -v chromium >/dev/null; then
  echo "installing chromium (Debian package) for the dashboard's browser test" >&2
  apt_get() { if [ "$(id -u)" -eq 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi; }
  apt_get install -y -q chromium >/dev/null 2>&1 || { apt_get update -q >/dev/null && apt_get install -y -q chromium >/dev/null; }
fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

# The end-to-end tests run the test functions, which are examples: build them first, so they
# are never older than their source. The apps are built as `nimbus up` builds them
# (cargo build --release), so their tests find them built.
cargo build --workspace --examples
cargo build --release -p weather -p orders -p inventory
cargo test --workspace

export NIMBUS_BIN="$target/debug/nimbus"
export NIMBUS_TESTFN="$target/debug/examples/testfn"
export NIMBUS_QUERY_PYTHON="$query_venv/bin/python"
"$venv/bin/python" -m pytest tests/python -q -p no:cacheprovider
