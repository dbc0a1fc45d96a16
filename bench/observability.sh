#!/usr/bin/env bash
# Benchmark: what observability costs. Gateway echo throughput (an HTTP API in front of
# crates/nimbus/examples/testfn.rs, wrk keep-alive POSTs) of this nimbus, which records metrics
# and trace spans (gateway, invoke, execution; the requests come without X-Amzn-Trace-Id, so each
# is a new sampled trace) on every invocation and request, against a baseline nimbus built from
# the last commit before metrics and tracing existed ($BASELINE_REV, built in a git worktree), in one run. The two alternate
# (base, current, base, current, ...) so that drift on a noisy machine hits both; each figure
# is the median of $ROUNDS runs. Also: how long one GET /metrics takes after the load.
# Target (PASS/MISS): current within 10% of the baseline's requests/s at c=$CONC.
# Exits 0 whether the target is met or not; non-zero only if something failed to run.
#
# Environment:
#   CARGO_TARGET_DIR     cargo's target dir (default: ./target of the workspace)
#   BENCH_DURATION       seconds per measured wrk run (default 5)
#   BENCH_ROUNDS         measured runs per binary (default 3)
#   BENCH_BASELINE_REV   the baseline commit (default: the parent of the commit that added
#                        crates/nimbus-telemetry)
# Load generator: wrk (Debian package; installed with apt-get when missing). Traffic: 127.0.0.1 only.
set -euo pipefail

DUR=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CONC=16
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_load_tools
need git git

ADDED=$(cd "$ROOT" && git log --diff-filter=A --format=%H -- crates/nimbus-telemetry/Cargo.toml | tail -1)
[[ -n $ADDED ]] || die "cannot find the commit that added crates/nimbus-telemetry"
BASELINE_REV=${BENCH_BASELINE_REV:-$ADDED^}
BASELINE_SHA=$(cd "$ROOT" && git rev-parse --short "$BASELINE_REV")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-obsbench.XXXXXX")
# The baseline is built in a target dir of its own: the two trees have the same package ids, and
# cargo's mtime fingerprints would take one tree's artifacts for the other's in a shared one.
BASE_TARGET=$TARGET/bench-baseline
log "building the baseline nimbus at $BASELINE_SHA (in $BASE_TARGET)"
(cd "$ROOT" && git worktree add --detach -q "$WORK/base" "$BASELINE_REV")
trap '(cd "$ROOT" && git worktree remove --force "$WORK/base" 2>/dev/null) || true; cleanup' EXIT
(cd "$WORK/base" && CARGO_TARGET_DIR=$BASE_TARGET cargo build --release -q -p nimbus --bin nimbus)
cp "$BASE_TARGET/release/nimbus" "$WORK/nimbus-base"
build -p nimbus --bin nimbus --example testfn
cp "$TARGET/release/nimbus" "$WORK/nimbus-current"
TESTFN=$TARGET/release/examples/testfn

mkdir -p "$WORK/app/fn"
ln -s "$TESTFN" "$WORK/app/fn/bootstrap"
cat >"$WORK/app/template.yaml" <<EOF
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: bootstrap
      Runtime: provided.al2023
      ReservedConcurrentExecutions: $CONC
      Events:
        Echo:
          Type: HttpApi
          Properties: {Path: /echo, Method: POST}
EOF
cat >"$WORK/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"action":"echo"}'
EOF

# On a failed request: the gateway's access lines that were not 200, and the function's
# platform errors, from the run's state directory.
explain_errors() {
    echo "[bench] requests that failed (access log):"
    grep -h -v '"status":200' "$WORK"/state/logs/ServerlessHttpApi.log | tail -5 || true
    grep -h -E 'Task timed out|Runtime\.|errorType' "$WORK"/state/logs/Echo.log | tail -5 || true
}
WRK_ON_ERROR=explain_errors

cpu_ticks() { # pid -> its user + system CPU time so far, in clock ticks (/proc/PID/stat)
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# run label binary -> appends the c=$CONC req/s to $WORK/<label>.runs, sets SCRAPE_MS for current
run() {
    local label=$1 bin=$2 out="$WORK/$1.log" api
    rm -rf "$WORK/state"
    nimbus_up "$bin" "$out" 30 "$WORK/app/template.yaml" --aws-port 0 --api-port 0 \
        --account-rate 1000000000 --account-burst 1000000 --state-dir "$WORK/state" --shutdown-grace 1
    api=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' <<<"$(grep ' API ServerlessHttpApi ' "$out")" | head -1)
    [[ -n $api ]] || { cat "$out" >&2; die "no API URL ($label)"; }
    WRK_TOLERATE=1 wrk_measure "$label-warmup" 2 "$WORK/wrk-warm.txt" -t2 -c"$CONC" -s "$WORK/post.lua" "$api/echo"
    # wrk stops with requests in flight, and their invocations still hold the function's
    # reserved concurrency ($CONC): without a pause, the measured run's first requests can
    # meet them and be throttled (429), as on AWS.
    sleep 0.5
    local cpu0
    cpu0=$(cpu_ticks "$NB_PID")
    wrk_measure "$label" "$DUR" "$WORK/wrk-$label.txt" -t2 -c"$CONC" -s "$WORK/post.lua" "$api/echo"
    # nimbus's own CPU time (not its functions') per request: the cost that observability adds
    # lives in this process, and this figure is far less noisy than requests/s on 2 shared cores.
    local us_per_req
    us_per_req=$(awk -v a="$cpu0" -v b="$(cpu_ticks "$NB_PID")" -v n="$REQS" -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%.1f", (b - a) / hz * 1e6 / n}')
    log "$label: ${RPS} req/s, p50 ${P50} ms, p99 ${P99} ms, nimbus CPU ${us_per_req} us/request (c=$CONC)"
    echo "$RPS" >>"$WORK/$label.runs"
    echo "$us_per_req" >>"$WORK/$label.cpu"
    if [[ $label == current ]]; then
        SCRAPE_MS=$(curl -sS -o "$WORK/metrics.txt" -w '%{time_total}' "$EP/metrics" | awk '{printf "%.2f", $1 * 1000}')
        grep -q '^nimbus_lambda_invocations_total{function="Echo"}' "$WORK/metrics.txt" || die "no Echo invocations in /metrics"
    fi
    stop_leader "$NB_PID"
}

for ((i = 1; i <= ROUNDS; i++)); do
    run base "$WORK/nimbus-base"
    run current "$WORK/nimbus-current"
done

BASE=$(median <"$WORK/base.runs")
CUR=$(median <"$WORK/current.runs")
BASE_CPU=$(median <"$WORK/base.cpu")
CUR_CPU=$(median <"$WORK/current.cpu")
CPU_RATIO=$(awk -v c="$CUR_CPU" -v b="$BASE_CPU" 'BEGIN {printf "%.3f", c / b}')
RATIO=$(awk -v c="$CUR" -v b="$BASE" 'BEGIN {printf "%.3f", c / b}')
ELAPSED=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')

echo
echo "observability cost: gateway echo (HTTP API -> testfn), wrk c=$CONC, ${DUR}s x $ROUNDS runs each, alternating; $(nproc) CPUs"
printf '%-44s %12s  %s\n' "nimbus" "median req/s" "runs"
printf '%-44s %12s  %s\n' "baseline $BASELINE_SHA (no metrics, no spans)" "$BASE" "$(paste -sd' ' "$WORK/base.runs")"
printf '%-44s %12s  %s\n' "current (metrics + spans, every request)" "$CUR" "$(paste -sd' ' "$WORK/current.runs")"
printf '%-44s %12s\n' "current / baseline" "$RATIO"
printf '%-44s %12s  %s\n' "baseline nimbus CPU (us/request)" "$BASE_CPU" "$(paste -sd' ' "$WORK/base.cpu")"
printf '%-44s %12s  %s\n' "current nimbus CPU (us/request)" "$CUR_CPU" "$(paste -sd' ' "$WORK/current.cpu")"
printf '%-44s %12s\n' "CPU per request, current / baseline" "$CPU_RATIO"
printf '%-44s %12s\n' "GET /metrics after the load (ms)" "$SCRAPE_MS"
echo
printf '%-44s %10s %10s  %s\n' "target" "value" "goal" "result"
printf '%-44s %10s %10s  %s\n' "throughput, current / baseline" "$RATIO" ">= 0.90" "$(verdict "$RATIO" ">=" 0.90)"
echo
echo "total time: ${ELAPSED}s"
exit 0
