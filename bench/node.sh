#!/usr/bin/env bash
# Benchmark: Node.js functions on nimbus, side by side in one run with AWS's Runtime Interface
# Emulator (RIE) running the same handler, and the time of a second `nimbus up` of a template
# whose functions have Python and Node dependencies.
#
# Prints:
#   - warm invoke p50/p99 and throughput of a trivial Node handler at concurrency 1 and 16
#     (nimbus), and at 1 under RIE (which runs one environment). Under RIE the runtime client is
#     AWS's aws-lambda-ric from npm when it builds here (it compiles C++ and needs cmake), else
#     nimbus's own runtime loop (then RIE vs nimbus compares the platforms with one client);
#   - cold start: the first invoke of a fresh environment (nimbus, RIE) against `node -e 0`, the
#     floor of any Node process start;
#   - `nimbus up` to ready: a template with Python (requirements.txt) and Node (package.json)
#     dependencies started twice (the second installs nothing), against the same functions
#     without dependencies. Target: the second start within 2 s of the no-dependency one.
# Exits 0 whether targets are met or not; non-zero only if something failed to run.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_CACHE        where RIE and aws-lambda-ric go (default: $CARGO_TARGET_DIR/bench-cache)
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
LOOP=$ROOT/crates/nimbus-lambda/runtimes/node/nimbus_runtime.mjs
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_load_tools
need unzip unzip
need ss iproute2
command -v node >/dev/null || die "node is missing (apt-get install nodejs)"

build -p nimbus --bin nimbus
NIMBUS=$TARGET/release/nimbus
[[ -x $NIMBUS ]] || die "missing $NIMBUS"
ensure_rie

# ---------------------------------------------------------------- aws-lambda-ric, if it builds
RIC_DIR=$CACHE/aws-lambda-ric
RIC=$RIC_DIR/node_modules/.bin/aws-lambda-ric
if [[ ! -x $RIC && ! -e $RIC_DIR/failed ]]; then
    log "npm install aws-lambda-ric -> $RIC_DIR (compiles C++; needs cmake, g++, autoconf, libtool)"
    mkdir -p "$RIC_DIR"
    if ! (cd "$RIC_DIR" && timeout 600 npm install --no-audit --no-fund --loglevel=error aws-lambda-ric >"$RIC_DIR/install.log" 2>&1); then
        touch "$RIC_DIR/failed"
        log "aws-lambda-ric did not build (see $RIC_DIR/install.log); RIE runs nimbus's runtime loop instead"
    fi
fi
if [[ -x $RIC ]]; then RIE_CLIENT="aws-lambda-ric $(cd "$RIC_DIR" && node -p 'require("aws-lambda-ric/package.json").version')"; else RIE_CLIENT="nimbus_runtime.mjs"; fi

# ---------------------------------------------------------------- fixtures
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-node.XXXXXX")
mkdir -p "$WORK/app/fn"
echo 'exports.handler = async (event) => ({ event });' >"$WORK/app/fn/index.js"
cat >"$WORK/app/template.yaml" <<'EOF'
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: index.handler
      Runtime: nodejs20.x
      MemorySize: 128
      Timeout: 10
EOF
cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$PAYLOAD'
wrk.headers["Content-Type"] = "application/json"
EOF
# The dependency template: one Python and one Node function, each with a dependency, and the
# same two without (the baseline of nimbus's own start).
mkdir -p "$WORK/deps/py" "$WORK/deps/node" "$WORK/nodeps/py" "$WORK/nodeps/node"
printf 'def handler(e, c):\n    return {}\n' | tee "$WORK/deps/py/app.py" >"$WORK/nodeps/py/app.py"
echo 'exports.handler = async () => ({});' | tee "$WORK/deps/node/index.js" >"$WORK/nodeps/node/index.js"
echo 'tenacity==8.2.2' >"$WORK/deps/py/requirements.txt"
echo '{"name":"d","version":"1.0.0","dependencies":{"uuid":"9.0.1"}}' >"$WORK/deps/node/package.json"
for t in deps nodeps; do
    cat >"$WORK/$t/template.yaml" <<'EOF'
Transform: AWS::Serverless-2016-10-31
Resources:
  Py:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: py, Handler: app.handler, Runtime: python3.12}
  Node:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: node, Handler: index.handler, Runtime: nodejs20.x}
EOF
done

wrk_run() { # name url threads connections seconds; sets P50 P99 RPS REQS
    local name=$1 url=$2 t=$3 c=$4 d=$5
    wrk_measure "$name" "$d" "$WORK/wrk-$name.txt" -t"$t" -c"$c" --timeout 5s -s "$WORK/post.lua" "$url"
    log "$name: p50 ${P50} ms, p99 ${P99} ms, ${RPS} req/s (${REQS} requests, c=$c, ${d}s)"
}

first_invoke_ms() { # url: one invoke (checked), its curl time in ms
    local t
    t=$(curl -sS --max-time 30 -o "$WORK/first.body" -w '%{time_total}' -H 'Content-Type: application/json' -d "$PAYLOAD" "$1") ||
        die "invoke $1 failed"
    grep -q '"action":"echo"' "$WORK/first.body" || die "unexpected reply from $1: $(head -c 300 "$WORK/first.body")"
    awk -v t="$t" 'BEGIN {printf "%.3f\n", t * 1000}'
}

start_nimbus() { # tag: nimbus on the echo app; sets NB_PID NB_URL
    nimbus_up "$NIMBUS" "$WORK/nimbus-$1.log" 30 "$WORK/app/template.yaml" --aws-port 0 \
        --state-dir "$WORK/state-$1" --shutdown-grace 1
    NB_URL="$EP/2015-03-31/functions/Echo/invocations"
}

rie_up() { # tag: RIE running the echo handler with the chosen runtime client; sets RIE_PID RIE_URL
    local client=(node "$LOOP")
    [[ -x $RIC ]] && client=("$RIC" index.handler)
    start_rie "$1" env -C "$WORK/app/fn" _HANDLER=index.handler LAMBDA_TASK_ROOT="$WORK/app/fn" "${client[@]}"
}

log "nimbus $("$NIMBUS" --version | awk '{print $2}'), node $(node --version), RIE from aws-sam-cli $SAM_VERSION with $RIE_CLIENT, $(nproc) CPUs, ${DUR}s per run"

# ================================================================ warm
start_nimbus warm
first_invoke_ms "$NB_URL" >/dev/null
WRK_TOLERATE=1 wrk_run nimbus-warmup-c1 "$NB_URL" 1 1 1 >/dev/null
wrk_run nimbus-c1 "$NB_URL" 1 1 "$DUR"
NB_P50=$P50 NB_P99=$P99 NB_RPS1=$RPS
WRK_TOLERATE=1 wrk_run nimbus-warmup-c$CONC "$NB_URL" 2 "$CONC" 2 >/dev/null
sleep 0.5 # the warm-up's in-flight invocations end before the measured run
wrk_run nimbus-c$CONC "$NB_URL" 2 "$CONC" "$DUR"
NB_RPS16=$RPS NB_P50_16=$P50 NB_P99_16=$P99
stop_leader "$NB_PID"

rie_up warm
first_invoke_ms "$RIE_URL" >/dev/null
WRK_TOLERATE=1 wrk_run rie-warmup-c1 "$RIE_URL" 1 1 1 >/dev/null
wrk_run rie-c1 "$RIE_URL" 1 1 "$DUR"
RIE_P50=$P50 RIE_P99=$P99 RIE_RPS1=$RPS
stop_leader "$RIE_PID"

# ================================================================ cold
: >"$WORK/nb-cold"; : >"$WORK/rie-cold"; : >"$WORK/node-start"
for ((r = 1; r <= COLD_RUNS; r++)); do
    start_nimbus "cold$r"
    first_invoke_ms "$NB_URL" >>"$WORK/nb-cold"
    stop_leader "$NB_PID"
    rie_up "cold$r"
    first_invoke_ms "$RIE_URL" >>"$WORK/rie-cold"
    stop_leader "$RIE_PID"
    t0=$EPOCHREALTIME
    node -e 0
    awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f\n", (b - a) * 1000}' >>"$WORK/node-start"
done
NB_COLD=$(median <"$WORK/nb-cold") RIE_COLD=$(median <"$WORK/rie-cold") NODE_START=$(median <"$WORK/node-start")

# ================================================================ nimbus up with dependencies
up_ms() { # template, state dir: ms from spawn to "nimbus: ready"
    local t0 t1
    t0=$(now_ms)
    nimbus_up "$NIMBUS" "$WORK/up.log" 600 "$1" --aws-port 0 --api-port 0 --state-dir "$2" --shutdown-grace 1
    t1=$(now_ms)
    stop_leader "$NB_PID"
    echo $((t1 - t0))
}
# A cache of this run's own, so the first start really installs.
export NIMBUS_CACHE_DIR=$WORK/cache
FIRST_UP=$(up_ms "$WORK/deps/template.yaml" "$WORK/state-deps1")
grep -q 'installing' "$WORK/up.log" || log "note: the first start installed nothing?"
: >"$WORK/up-deps"; : >"$WORK/up-nodeps"
for ((r = 1; r <= 5; r++)); do
    up_ms "$WORK/deps/template.yaml" "$WORK/state-deps" >>"$WORK/up-deps"
    ! grep -q 'installing' "$WORK/up.log" || die "a second nimbus up installed again: $(grep installing "$WORK/up.log")"
    up_ms "$WORK/nodeps/template.yaml" "$WORK/state-nodeps" >>"$WORK/up-nodeps"
done
UP_DEPS=$(median <"$WORK/up-deps") UP_NODEPS=$(median <"$WORK/up-nodeps")
UP_EXTRA=$(awk -v a="$UP_DEPS" -v b="$UP_NODEPS" 'BEGIN {printf "%.0f", a - b}')

# ================================================================ report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
ELAPSED=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')

echo
echo "Node.js echo handler (nodejs20.x on node $(node --version)); wrk keep-alive; ${DUR}s per run; $(nproc) CPUs; cold = median of $COLD_RUNS"
printf '%-44s %14s %14s %14s\n' "metric" "nimbus" "RIE" "node -e 0"
printf '%-44s %14s %14s %14s\n' "--------------------------------------------" "--------------" "--------------" "--------------"
printf '%-44s %14s %14s %14s\n' "warm p50, c=1 (ms)" "$NB_P50" "$RIE_P50" "-"
printf '%-44s %14s %14s %14s\n' "warm p99, c=1 (ms)" "$NB_P99" "$RIE_P99" "-"
printf '%-44s %14s %14s %14s\n' "throughput, c=1 (req/s)" "$NB_RPS1" "$RIE_RPS1" "-"
printf '%-44s %14s %14s %14s\n' "throughput, c=$CONC (req/s)" "$NB_RPS16" "-" "-"
printf '%-44s %14s %14s %14s\n' "  p50 / p99 at c=$CONC (ms)" "$NB_P50_16/$NB_P99_16" "-" "-"
printf '%-44s %14s %14s %14s\n' "cold: first invoke / process start, median (ms)" "$NB_COLD" "$RIE_COLD" "$NODE_START"
echo "RIE's runtime client: $RIE_CLIENT"
echo
printf '%-44s %14s\n' "nimbus up to ready (ms)" "median"
printf '%-44s %14s\n' "  Python + Node deps, first (installs)" "$FIRST_UP"
printf '%-44s %14s\n' "  Python + Node deps, again (cached)" "$UP_DEPS"
printf '%-44s %14s\n' "  same functions without deps" "$UP_NODEPS"
echo
printf '%-52s %8s %8s  %s\n' "target" "value" "goal" "result"
printf '%-52s %8s %8s  %s\n' "warm p50: nimbus / RIE" "$(ratio "$NB_P50" "$RIE_P50")" "<= 1" "$(verdict "$(ratio "$NB_P50" "$RIE_P50")" "<=" 1)"
printf '%-52s %8s %8s  %s\n' "cold first invoke: nimbus / RIE" "$(ratio "$NB_COLD" "$RIE_COLD")" "<= 1" "$(verdict "$(ratio "$NB_COLD" "$RIE_COLD")" "<=" 1)"
printf '%-52s %8s %8s  %s\n' "second up beyond no-deps start (ms)" "$UP_EXTRA" "< 2000" "$(verdict "$UP_EXTRA" "<=" 1999)"
echo
echo "total time: ${ELAPSED}s"
exit 0
