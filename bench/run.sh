#!/usr/bin/env bash
# Benchmark: nimbus vs AWS's Runtime Interface Emulator (RIE) for a Rust echo function
# (crates/nimbus/examples/testfn.rs, built with the unmodified lambda_runtime crate).
#
# Measures warm invoke latency (p50/p99, keep-alive client, concurrency 1), throughput
# (nimbus at concurrency 16, RIE at 1: RIE runs one environment) and cold start (first invoke
# after a fresh start, median of BENCH_COLD_RUNS), then prints a table and PASS/MISS per target.
# Exits 0 whether targets are met or not; non-zero only if something failed to run.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_CACHE        where the aws-sam-cli wheel and RIE binary go (default: $CARGO_TARGET_DIR/bench-cache)
#   BENCH_DURATION     seconds per measured wrk run (default 5)
#   BENCH_COLD_RUNS    fresh starts per cold-start measurement (default 10)
#   BENCH_NO_BUILD=1   skip `cargo build`
# Load generator: wrk (Debian package; installed with apt-get when missing). Traffic: 127.0.0.1 only.
set -euo pipefail

DUR=${BENCH_DURATION:-5}
COLD_RUNS=${BENCH_COLD_RUNS:-10}
CONC=16
PAYLOAD='{"action":"echo"}'
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
CACHE=$(realpath -m "${BENCH_CACHE:-$TARGET/bench-cache}")
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------- tools
need_load_tools
need unzip unzip
need ss iproute2

# ---------------------------------------------------------------- build
build -p nimbus --bin nimbus --example testfn
NIMBUS=$TARGET/release/nimbus
TESTFN=$TARGET/release/examples/testfn
[[ -x $NIMBUS && -x $TESTFN ]] || die "missing $NIMBUS or $TESTFN"

# ---------------------------------------------------------------- RIE from the aws-sam-cli wheel
ensure_rie

# ---------------------------------------------------------------- fixtures
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench.XXXXXX")
mkdir -p "$WORK/app/fn"
ln -s "$TESTFN" "$WORK/app/fn/bootstrap"
cat >"$WORK/app/template.yaml" <<'EOF'
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
EOF
cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$PAYLOAD'
wrk.headers["Content-Type"] = "application/json"
EOF

# ---------------------------------------------------------------- helpers

# wrk_run name url threads connections seconds -> $WORK/wrk-name.txt; sets P50 P99 RPS REQS
wrk_run() {
    local name=$1 url=$2 t=$3 c=$4 d=$5 out="$WORK/wrk-$1.txt"
    wrk_measure "$name" "$d" "$out" -t"$t" -c"$c" --timeout 5s -s "$WORK/post.lua" "$url"
    log "$name: p50 ${P50} ms, p99 ${P99} ms, ${RPS} req/s (${REQS} requests, c=$c, ${d}s)"
}

check_echo() { # url: one invoke must return the echoed event and no function error
    local url=$1 hdr="$WORK/check.hdr" body="$WORK/check.body"
    curl -sS --max-time 10 -D "$hdr" -o "$body" -H 'Content-Type: application/json' -d "$PAYLOAD" "$url" ||
        die "invoke $url failed"
    grep -q '"event":{"action":"echo"}' "$body" && ! grep -qi '^x-amz-function-error' "$hdr" ||
        die "unexpected reply from $url: $(head -c 300 "$body")"
}

first_invoke() { # url -> prints seconds (curl time_total) of one invoke; checks the reply
    local url=$1 body="$WORK/first.body" t
    t=$(curl -sS --max-time 30 -o "$body" -w '%{time_total}' -H 'Content-Type: application/json' -d "$PAYLOAD" "$url") ||
        die "first invoke $url failed"
    grep -q '"event":{"action":"echo"}' "$body" || die "unexpected first reply: $(head -c 300 "$body")"
    echo "$t"
}

minmax() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END { printf "%.2f-%.2f", lo, hi }'; }

# Starts nimbus on the app; sets NB_PID NB_URL NB_OUT NB_T0 (spawn time, ms)
start_nimbus() {
    local tag=$1 ep="" i
    NB_OUT="$WORK/nimbus-$tag.log"
    NB_T0=$(now_ms)
    start_leader "$NB_OUT" "$NIMBUS" up "$WORK/app/template.yaml" --aws-port 0 --host 127.0.0.1 \
        --state-dir "$WORK/state-$tag" --shutdown-grace 1
    NB_PID=$LEADER
    for ((i = 0; i < 1500; i++)); do # 15 s
        grep -q '^nimbus: ready' "$NB_OUT" && break
        kill -0 "$NB_PID" 2>/dev/null || { cat "$NB_OUT" >&2; die "nimbus exited"; }
        sleep 0.01
    done
    grep -q '^nimbus: ready' "$NB_OUT" || { cat "$NB_OUT" >&2; die "nimbus not ready in 15 s"; }
    ep=$(sed -n 's/^nimbus: AWS endpoint //p' "$NB_OUT" | head -1)
    [[ $ep == http://127.0.0.1:* ]] || die "unexpected nimbus endpoint '$ep'"
    NB_URL="$ep/2015-03-31/functions/Echo/invocations"
}

init_duration() { # log file, from a line containing 'Init Duration: X ms'; waits up to 2 s
    local i v=""
    for ((i = 0; i < 200; i++)); do
        v=$(grep -o 'Init Duration: [0-9.]*' "$1" | head -1 | awk '{print $3}')
        [[ -n $v ]] && break
        sleep 0.01
    done
    echo "${v:-}"
}

# ================================================================ nimbus warm
log "nimbus $("$NIMBUS" --version 2>/dev/null | awk '{print $2}'), RIE from aws-sam-cli $SAM_VERSION, $(nproc) CPUs, ${DUR}s per run"
start_nimbus warm
check_echo "$NB_URL"
wrk_run nimbus-warmup-c1 "$NB_URL" 1 1 1 >/dev/null
wrk_run nimbus-c1 "$NB_URL" 1 1 "$DUR"
NB_P50=$P50 NB_P99=$P99 NB_RPS1=$RPS
wrk_run nimbus-warmup-c$CONC "$NB_URL" 2 "$CONC" 2
NB_ENVS=$(ps -o comm= -s "$NB_PID" | grep -c '^bootstrap$' || true)
log "nimbus environments after warm-up: $NB_ENVS"
wrk_run nimbus-c$CONC "$NB_URL" 2 "$CONC" "$DUR"
NB_RPS16=$RPS NB_P50_16=$P50 NB_P99_16=$P99
NB_ENVS_AFTER=$(ps -o comm= -s "$NB_PID" | grep -c '^bootstrap$' || true)
check_echo "$NB_URL"
stop_leader "$NB_PID"

# ================================================================ RIE warm
start_rie warm "$TESTFN"
check_echo "$RIE_URL"
wrk_run rie-warmup-c1 "$RIE_URL" 1 1 1 >/dev/null
wrk_run rie-c1 "$RIE_URL" 1 1 "$DUR"
RIE_P50=$P50 RIE_P99=$P99 RIE_RPS1=$RPS
check_echo "$RIE_URL"
stop_leader "$RIE_PID"

# ================================================================ cold starts
: >"$WORK/nb-cold" ; : >"$WORK/nb-spawn" ; : >"$WORK/nb-init"
: >"$WORK/rie-cold"; : >"$WORK/rie-spawn"; : >"$WORK/rie-init"
for ((r = 1; r <= COLD_RUNS; r++)); do
    start_nimbus "cold$r"
    t=$(first_invoke "$NB_URL")
    echo $(( $(now_ms) - NB_T0 )) >>"$WORK/nb-spawn"
    awk -v t="$t" 'BEGIN {printf "%.3f\n", t * 1000}' >>"$WORK/nb-cold"
    init_duration "$NB_OUT" >>"$WORK/nb-init"
    stop_leader "$NB_PID"

    start_rie "cold$r" "$TESTFN"
    t=$(first_invoke "$RIE_URL")
    echo $(( $(now_ms) - RIE_T0 )) >>"$WORK/rie-spawn"
    awk -v t="$t" 'BEGIN {printf "%.3f\n", t * 1000}' >>"$WORK/rie-cold"
    init_duration "$RIE_OUT" >>"$WORK/rie-init"
    stop_leader "$RIE_PID"
done
NB_COLD=$(median <"$WORK/nb-cold") RIE_COLD=$(median <"$WORK/rie-cold")
log "nimbus first invokes (ms): $(sort -g "$WORK/nb-cold" | tr '\n' ' ')"
log "RIE    first invokes (ms): $(sort -g "$WORK/rie-cold" | tr '\n' ' ')"

# ================================================================ report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }

R_P50=$(ratio "$NB_P50" "$RIE_P50")
R_TPUT=$(ratio "$NB_RPS16" "$RIE_RPS1")
R_COLD=$(ratio "$NB_COLD" "$RIE_COLD")
ELAPSED=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')

echo
echo "Rust echo function (testfn, lambda_runtime); wrk keep-alive; ${DUR}s per run; $(nproc) CPUs; cold = median of $COLD_RUNS"
printf '%-40s %14s %14s\n' "metric" "nimbus" "RIE"
printf '%-40s %14s %14s\n' "----------------------------------------" "--------------" "--------------"
printf '%-40s %14s %14s\n' "warm p50, c=1 (ms)" "$NB_P50" "$RIE_P50"
printf '%-40s %14s %14s\n' "warm p99, c=1 (ms)" "$NB_P99" "$RIE_P99"
printf '%-40s %14s %14s\n' "throughput, c=1 (req/s)" "$NB_RPS1" "$RIE_RPS1"
printf '%-40s %14s %14s\n' "throughput, c=$CONC (req/s)" "$NB_RPS16" "-"
printf '%-40s %14s %14s\n' "  p50 / p99 at c=$CONC (ms)" "$NB_P50_16/$NB_P99_16" "-"
printf '%-40s %14s %14s\n' "  environments (after warm-up / run)" "$NB_ENVS/$NB_ENVS_AFTER" "1"
printf '%-40s %14s %14s\n' "cold: first invoke, median (ms)" "$NB_COLD" "$RIE_COLD"
printf '%-40s %14s %14s\n' "cold: first invoke, min-max (ms)" "$(minmax <"$WORK/nb-cold")" "$(minmax <"$WORK/rie-cold")"
printf '%-40s %14s %14s\n' "cold: spawn -> first reply, median (ms)" "$(median <"$WORK/nb-spawn")" "$(median <"$WORK/rie-spawn")"
printf '%-40s %14s %14s\n' "cold: reported Init Duration, median (ms)" "$( (grep . "$WORK/nb-init" || true) | median)" "$( (grep . "$WORK/rie-init" || true) | median)"
echo
printf '%-52s %8s %8s  %s\n' "target" "ratio" "goal" "result"
printf '%-52s %8s %8s  %s\n' "warm p50: nimbus / RIE" "$R_P50" "<= 0.33" "$(verdict "$R_P50" "<=" 0.3334)"
printf '%-52s %8s %8s  %s\n' "throughput: nimbus c=$CONC / RIE c=1" "$R_TPUT" ">= 5" "$(verdict "$R_TPUT" ">=" 5)"
printf '%-52s %8s %8s  %s\n' "cold start (first invoke): nimbus / RIE" "$R_COLD" "<= 1" "$(verdict "$R_COLD" "<=" 1)"
echo
echo "total time: ${ELAPSED}s (RIE: aws-sam-cli $SAM_VERSION)"
exit 0
