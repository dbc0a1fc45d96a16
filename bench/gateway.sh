#!/usr/bin/env bash
# Benchmark: the cost of nimbus's API Gateway. One echo function (crates/nimbus/examples/testfn.rs,
# unmodified lambda_runtime) measured three ways, side by side, with wrk (keep-alive, POST of a
# small JSON body):
#   gateway  POST /echo on an HTTP API (payload format 2.0); the function echoes the event
#   direct   the same function through the Lambda Invoke API
#            (POST /2015-03-31/functions/Echo/invocations) of the same nimbus
#   floor    a bare axum echo server (crates/nimbus-gateway/examples/floor.rs): the HTTP stack alone
# at 1 and at $CONC connections: requests/s, p50, p99, and the CPU time nimbus and the function
# processes spent per request (from /proc, 10 ms ticks). Then PASS/MISS per target:
#   gateway p50 - direct p50 at c=1 <= 100 us;  gateway req/s at c=$CONC >= 1/4 of the floor's.
# Exits 0 whether targets are met or not; non-zero only if something failed to run.
#
# Concurrency: Lambda does not queue, a request finding no free environment is throttled, so
# the function may start one environment per connection: ReservedConcurrentExecutions = $CONC (64).
# A warm-up run before each measured one starts them, so measured runs see warm environments only.
# The account-wide API Gateway throttle (10,000 req/s by default) is raised for the run
# (--account-rate/--account-burst) so that the gateway's own speed is measured, not the limit.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_DURATION     seconds per measured wrk run (default 5)
#   BENCH_NO_BUILD=1   skip `cargo build`
# Load generator: wrk (Debian package; installed with apt-get when missing). Traffic: 127.0.0.1 only.
set -euo pipefail

DUR=${BENCH_DURATION:-5}
CONC=64
PAYLOAD='{"action":"echo"}'
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------- helpers of this script

# ---------------------------------------------------------------- tools
need_load_tools

# ---------------------------------------------------------------- build (one cargo command at a time)
build -p nimbus --bin nimbus --example testfn
build -p nimbus-gateway --example floor
NIMBUS=$TARGET/release/nimbus
TESTFN=$TARGET/release/examples/testfn
FLOOR=$TARGET/release/examples/floor
[[ -x $NIMBUS && -x $TESTFN && -x $FLOOR ]] || die "missing $NIMBUS, $TESTFN or $FLOOR"

# ---------------------------------------------------------------- fixtures
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-gwbench.XXXXXX")
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
      MemorySize: 128
      Timeout: 10
      ReservedConcurrentExecutions: $CONC
      Events:
        Echo:
          Type: HttpApi
          Properties:
            Path: /echo
            Method: POST
            PayloadFormatVersion: "2.0"
EOF
cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$PAYLOAD'
wrk.headers["Content-Type"] = "application/json"
EOF

# ---------------------------------------------------------------- helpers

# CPU ticks (utime + stime, all threads) of one pid, or of every process of a session but its leader
cpu_pid() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
cpu_session_others() {
    local sid=$1 p sum=0 t
    for p in $(ps -o pid= -s "$sid" 2>/dev/null); do
        [[ $p == "$sid" ]] && continue
        t=$(cpu_pid "$p")
        sum=$((sum + t))
    done
    echo "$sum"
}

# wrk_run name url threads connections seconds [leader] -> $WORK/wrk-name.txt;
# sets P50 P99 RPS REQS, and with a leader pid CPU_MAIN CPU_FN (CPU us per request of the leader
# process and of the other processes of its session: the function environments)
wrk_run() {
    local name=$1 url=$2 t=$3 c=$4 d=$5 sid=${6:-} out="$WORK/wrk-$1.txt" m0=0 f0=0 m1 f1 hz
    if [[ -n $sid ]]; then m0=$(cpu_pid "$sid"); f0=$(cpu_session_others "$sid"); fi
    wrk_measure "$name" "$d" "$out" -t"$t" -c"$c" --timeout 5s -s "$WORK/post.lua" "$url"
    CPU_MAIN=- CPU_FN=-
    if [[ -n $sid ]]; then
        m1=$(cpu_pid "$sid"); f1=$(cpu_session_others "$sid"); hz=$(getconf CLK_TCK)
        CPU_MAIN=$(awk -v a="$m0" -v b="$m1" -v n="$REQS" -v hz="$hz" 'BEGIN {printf "%.0f", (b - a) * 1e6 / hz / n}')
        CPU_FN=$(awk -v a="$f0" -v b="$f1" -v n="$REQS" -v hz="$hz" 'BEGIN {printf "%.0f", (b - a) * 1e6 / hz / n}')
    fi
    log "$name: p50 ${P50} ms, p99 ${P99} ms, ${RPS} req/s (${REQS} requests, c=$c, ${d}s; CPU us/req: server $CPU_MAIN, function $CPU_FN)"
}

check() { # url, grep pattern: one POST must answer 200 with a body matching the pattern
    local url=$1 pat=$2 hdr="$WORK/check.hdr" body="$WORK/check.body" code
    code=$(curl -sS --max-time 10 -D "$hdr" -o "$body" -w '%{http_code}' -H 'Content-Type: application/json' -d "$PAYLOAD" "$url") ||
        die "POST $url failed"
    [[ $code == 200 ]] && grep -qF -- "$pat" "$body" && ! grep -qi '^x-amz-function-error' "$hdr" ||
        die "unexpected reply from $url ($code): $(head -c 300 "$body")"
}

envs() { ps -o comm= -s "$1" | grep -c '^bootstrap$' || true; }

# measure label url leader: warm-up + measured run at c=1 and at c=$CONC; sets <label>_* variables
measure() {
    local label=$1 url=$2 sid=${3:-}
    wrk_run "$label-warmup-c1" "$url" 1 1 1 "$sid"
    wrk_run "$label-c1" "$url" 1 1 "$DUR" "$sid"
    printf -v "${label}_P50_1" %s "$P50"; printf -v "${label}_P99_1" %s "$P99"; printf -v "${label}_RPS_1" %s "$RPS"
    printf -v "${label}_CM_1" %s "$CPU_MAIN"; printf -v "${label}_CF_1" %s "$CPU_FN"
    wrk_run "$label-warmup-c$CONC" "$url" 2 "$CONC" 2 "$sid"
    wrk_run "$label-c$CONC" "$url" 2 "$CONC" "$DUR" "$sid"
    printf -v "${label}_P50_N" %s "$P50"; printf -v "${label}_P99_N" %s "$P99"; printf -v "${label}_RPS_N" %s "$RPS"
    printf -v "${label}_CM_N" %s "$CPU_MAIN"; printf -v "${label}_CF_N" %s "$CPU_FN"
}

# ================================================================ nimbus: gateway and direct invoke
log "nimbus $("$NIMBUS" --version 2>/dev/null | awk '{print $2}'), $(nproc) CPUs, ${DUR}s per run, c=1 and c=$CONC"
NB_OUT="$WORK/nimbus.log"
nimbus_up "$NIMBUS" "$NB_OUT" 15 "$WORK/app/template.yaml" --host 127.0.0.1 --aws-port 0 --api-port 0 \
    --account-rate 1000000000 --account-burst 1000000 --state-dir "$WORK/state" --shutdown-grace 1
API=$(grep -E '^nimbus: HTTP API ServerlessHttpApi \(stage ' "$NB_OUT" | head -1 | awk '{print $NF}')
[[ $EP == http://127.0.0.1:* && $API == http://127.0.0.1:* ]] || { cat "$NB_OUT" >&2; die "no endpoint/API URL in nimbus output"; }
GW_URL="$API/echo"
DI_URL="$EP/2015-03-31/functions/Echo/invocations"
check "$GW_URL" '"routeKey":"POST /echo"'
check "$DI_URL" '"event":{"action":"echo"}'

measure gw "$GW_URL" "$NB_PID"
GW_ENVS=$(envs "$NB_PID")
measure di "$DI_URL" "$NB_PID"
DI_ENVS=$(envs "$NB_PID")
check "$GW_URL" '"routeKey":"POST /echo"'
GW_BYTES=$(curl -sS --max-time 10 -o /dev/null -w '%{size_download}' -H 'Content-Type: application/json' -d "$PAYLOAD" "$GW_URL")
DI_BYTES=$(curl -sS --max-time 10 -o /dev/null -w '%{size_download}' -H 'Content-Type: application/json' -d "$PAYLOAD" "$DI_URL")
stop_leader "$NB_PID"

# ================================================================ floor: bare axum
FL_OUT="$WORK/floor.log"
start_leader "$FL_OUT" "$FLOOR" 0
FL_PID=$LEADER
wait_line "$FL_OUT" "$FL_PID" '^floor: listening on ' floor
FL_URL="$(awk '/^floor: listening on / {print $NF; exit}' "$FL_OUT")/echo"
check "$FL_URL" "$PAYLOAD"
measure fl "$FL_URL" "$FL_PID"
FL_BYTES=$(curl -sS --max-time 10 -o /dev/null -w '%{size_download}' -H 'Content-Type: application/json' -d "$PAYLOAD" "$FL_URL")
stop_leader "$FL_PID"

# ================================================================ report
D_P50_US=$(awk -v a="$gw_P50_1" -v b="$di_P50_1" 'BEGIN {printf "%.0f", (a - b) * 1000}')
R_TPUT=$(awk -v a="$gw_RPS_N" -v b="$fl_RPS_N" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f", a / b }')
ELAPSED=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')

row() { printf '%-34s %14s %14s %14s\n' "$@"; }
echo
echo "echo function (testfn, lambda_runtime) behind an HTTP API (2.0) / Invoke API / bare axum;"
echo "wrk POST $PAYLOAD, keep-alive; ${DUR}s per run after a warm-up; $(nproc) CPUs; c=$CONC: up to $CONC environments"
row "metric" "gateway" "direct invoke" "axum floor"
row "----------------------------------" "--------------" "--------------" "--------------"
row "c=1: req/s" "$gw_RPS_1" "$di_RPS_1" "$fl_RPS_1"
row "c=1: p50 / p99 (ms)" "$gw_P50_1/$gw_P99_1" "$di_P50_1/$di_P99_1" "$fl_P50_1/$fl_P99_1"
row "c=1: CPU us/req server / function" "$gw_CM_1/$gw_CF_1" "$di_CM_1/$di_CF_1" "$fl_CM_1/-"
row "c=$CONC: req/s" "$gw_RPS_N" "$di_RPS_N" "$fl_RPS_N"
row "c=$CONC: p50 / p99 (ms)" "$gw_P50_N/$gw_P99_N" "$di_P50_N/$di_P99_N" "$fl_P50_N/$fl_P99_N"
row "c=$CONC: CPU us/req server / function" "$gw_CM_N/$gw_CF_N" "$di_CM_N/$di_CF_N" "$fl_CM_N/-"
row "environments after the runs" "$GW_ENVS" "$DI_ENVS" "-"
row "response body (bytes)" "$GW_BYTES" "$DI_BYTES" "$FL_BYTES"
echo
printf '%-52s %10s %10s  %s\n' "target" "value" "goal" "result"
printf '%-52s %10s %10s  %s\n' "gateway p50 - direct p50, c=1 (us)" "$D_P50_US" "<= 100" "$(verdict "$D_P50_US" "<=" 100)"
printf '%-52s %10s %10s  %s\n' "gateway req/s / floor req/s, c=$CONC" "$R_TPUT" ">= 0.25" "$(verdict "$R_TPUT" ">=" 0.25)"
echo
echo "total time: ${ELAPSED}s"
exit 0
