#!/usr/bin/env bash
# The order-notification pipeline under the seed talk's load, with and without flow control.
#   bench/orders.sh [compressed|seed|smoke] [both|plain|flow]
# compressed (default): apps/orders/load/seed-compressed.yml (108 s of load), deliver's retry
#   waits and nimbus's async retry delays divided by ten; seed: the full 18-minute load at AWS's
#   timing; smoke: 20 s at 5 orders/s. Prints one report per variant (bench/orders_load.py).
# Environment: CARGO_TARGET_DIR, BENCH_NO_BUILD=1, BENCH_PYTHON (a python with boto3, requests
# and pyyaml: the test venv by default). Traffic: 127.0.0.1 only.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
PY=${BENCH_PYTHON:-$TARGET/test-venv/bin/python}
SCENARIO=${1:-compressed}
VARIANTS=${2:-both}

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -x $PY ]] || die "no python at $PY (run scripts/test.sh once, or set BENCH_PYTHON)"

case $SCENARIO in
    compressed) FILE=$ROOT/apps/orders/load/seed-compressed.yml SCALE=0.1 ;;
    seed) FILE=$ROOT/apps/orders/load/seed.yml SCALE=1 ;;
    smoke) FILE=$ROOT/apps/orders/load/smoke.yml SCALE=0.1 ;;
    *) die "unknown scenario $SCENARIO (compressed, seed or smoke)" ;;
esac
# nimbus builds the functions at start-up as well; building them here keeps that out of the run.
build -p nimbus --bin nimbus -p orders
run() { # template
    CARGO_TARGET_DIR=$TARGET "$PY" "$ROOT/bench/orders_load.py" --nimbus "$TARGET/release/nimbus" \
        --template "$ROOT/apps/orders/$1" --scenario "$FILE" --scale "$SCALE"
}
[[ $VARIANTS == flow ]] || run template.yaml
[[ $VARIANTS == plain ]] || run template-flow-control.yaml
