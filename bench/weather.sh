#!/usr/bin/env bash
# Benchmark: the weather app (apps/weather/template.yaml, unchanged) through nimbus's API Gateway,
# against the gateway's echo figure measured in the same run. With wrk (keep-alive, GET, x-api-key):
#   echo      GET /echo on a REST API with the same API key + usage plan set-up, answered by the
#             echo function (crates/nimbus/examples/testfn.rs, unmodified lambda_runtime)
#   cached    GET /weather?city=Melbourne: every request answered from the function's cache
#   uncached  GET /weather?city=<new each request>: geocoding + current weather from the fake
#             provider (apps/weather/fake_provider.py), which answers each call after 50 ms
# at 1 and at $CONC connections: requests/s, p50, p99. Target (PASS/MISS):
#   cached req/s >= 0.8 x echo req/s, at c=1 and at c=$CONC (the cached path within 20% of echo).
# Exits 0 whether the target is met or not; non-zero only if something failed to run.
#
# Lambda does not queue: with c connections up to c environments start. A warm-up run before
# each measured one starts them (and fills each environment's in-memory cache for "cached").
# The usage plan and the account throttle are raised so that speed is measured, not the limits.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_DURATION     seconds per measured wrk run (default 5)
#   BENCH_NO_BUILD=1   skip `cargo build`
# Load generator: wrk (Debian package; installed with apt-get when missing). Traffic: 127.0.0.1 only.
set -euo pipefail

DUR=${BENCH_DURATION:-5}
CONC=64
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


need_load_tools
need python3 python3

build -p nimbus --bin nimbus --example testfn
build -p weather
NIMBUS=$TARGET/release/nimbus
TESTFN=$TARGET/release/examples/testfn
[[ -x $NIMBUS && -x $TESTFN ]] || die "missing $NIMBUS or $TESTFN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-weatherbench.XXXXXX")
mkdir -p "$WORK/echo/fn"
ln -s "$TESTFN" "$WORK/echo/fn/bootstrap"
cat >"$WORK/echo/template.yaml" <<'EOF'
Transform: AWS::Serverless-2016-10-31
Resources:
  EchoApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: Prod
      Auth:
        ApiKeyRequired: true
        UsagePlan:
          CreateUsagePlan: PER_API
          Throttle: {RateLimit: 1000000, BurstLimit: 1000000}
          Quota: {Limit: 1000000000, Period: DAY}
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: bootstrap
      Runtime: provided.al2023
      MemorySize: 128
      Timeout: 10
      Events:
        Echo:
          Type: Api
          Properties: {RestApiId: !Ref EchoApi, Path: /echo, Method: get}
EOF

# wrk_run name url connections seconds script -> sets P50 P99 RPS REQS
wrk_run() {
    local name=$1 url=$2 c=$3 d=$4 script=$5 out="$WORK/wrk-$1.txt" t=1
    ((c > 1)) && t=2
    wrk_measure "$name" "$d" "$out" -t"$t" -c"$c" --timeout 5s -s "$script" "$url"
    log "$name: p50 ${P50} ms, p99 ${P99} ms, ${RPS} req/s (${REQS} requests, c=$c, ${d}s)"
}

script() { # file, api key, "unique" to make every request's city new
    cat >"$1" <<EOF
wrk.headers["x-api-key"] = "$2"
EOF
    if [[ ${3:-} == unique ]]; then
        # Each wrk thread numbers its own cities: no two requests ask for the same one.
        cat >>"$1" <<'EOF'
local n = 0
local id = tostring(math.random(1, 1e9))
request = function()
    n = n + 1
    return wrk.format("GET", "/weather?city=Bench" .. id .. "x" .. n)
end
EOF
    fi
}

# measure label url script: warm-up + measured run at c=1 and at c=$CONC; sets <label>_* variables
measure() {
    local label=$1 url=$2 s=$3
    wrk_run "$label-warmup-c1" "$url" 1 1 "$s"
    wrk_run "$label-c1" "$url" 1 "$DUR" "$s"
    printf -v "${label}_P50_1" %s "$P50"; printf -v "${label}_P99_1" %s "$P99"; printf -v "${label}_RPS_1" %s "$RPS"
    wrk_run "$label-warmup-c$CONC" "$url" "$CONC" 2 "$s"
    wrk_run "$label-c$CONC" "$url" "$CONC" "$DUR" "$s"
    printf -v "${label}_P50_N" %s "$P50"; printf -v "${label}_P99_N" %s "$P99"; printf -v "${label}_RPS_N" %s "$RPS"
}

start_nimbus() { # log, template, args...: sets NB_PID, API (first API URL), KEY
    local out=$1 template=$2
    shift 2
    # nimbus may run cargo first: give it 120 s.
    nimbus_up "$NIMBUS" "$out" 120 "$template" --host 127.0.0.1 --aws-port 0 --api-port 0 \
        --account-rate 1000000000 --account-burst 1000000 --shutdown-grace 1 "$@"
    API=$(grep -E '^nimbus: REST API .* \(stage ' "$out" | head -1 | awk '{print $NF}')
    KEY=$(sed -n 's/^nimbus:   API key [^ ]* (usage plan [^)]*): //p' "$out" | head -1)
    [[ $API == http://127.0.0.1:* && -n $KEY ]] || { cat "$out" >&2; die "no API URL or key in nimbus output"; }
}

log "nimbus $("$NIMBUS" --version 2>/dev/null | awk '{print $2}'), $(nproc) CPUs, ${DUR}s per run, c=1 and c=$CONC"

# ================================================================ echo baseline
start_nimbus "$WORK/echo.log" "$WORK/echo/template.yaml" --state-dir "$WORK/echo-state"
script "$WORK/echo.lua" "$KEY"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "x-api-key: $KEY" "$API/echo") || die "GET /echo failed"
[[ $code == 200 ]] || die "GET /echo answered $code"
measure echo "$API/echo" "$WORK/echo.lua"
stop_leader "$NB_PID"

# ================================================================ the weather app
FAKE_LOG="$WORK/fake.log"
FAKE_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_leader "$FAKE_LOG" python3 "$ROOT/apps/weather/fake_provider.py" --port "$FAKE_PORT" --delay-ms 50
FAKE_PID=$LEADER
wait_line "$FAKE_LOG" "$FAKE_PID" '^fake weather provider on ' "fake provider"
FAKE="http://127.0.0.1:$FAKE_PORT"
start_nimbus "$WORK/weather.log" "$ROOT/apps/weather/template.yaml" --state-dir "$WORK/weather-state" \
    --parameter-overrides "OpenMeteoGeocodingUrl=$FAKE" "OpenMeteoForecastUrl=$FAKE" \
    RateLimit=1000000 BurstLimit=1000000 DailyQuota=1000000000
body=$(curl -sS -H "x-api-key: $KEY" "$API/weather?city=Melbourne") || die "GET /weather failed"
grep -q '"city":"Melbourne"' <<<"$body" || die "unexpected weather answer: $body"
script "$WORK/cached.lua" "$KEY"
script "$WORK/uncached.lua" "$KEY" unique
measure cached "$API/weather?city=Melbourne" "$WORK/cached.lua"
measure uncached "$API/weather" "$WORK/uncached.lua"
CALLS=$(curl -sS "$FAKE/_fake/calls")
stop_leader "$NB_PID"
stop_leader "$FAKE_PID"

# ================================================================ report
R1=$(awk -v a="$cached_RPS_1" -v b="$echo_RPS_1" 'BEGIN {printf "%.3f", a / b}')
RN=$(awk -v a="$cached_RPS_N" -v b="$echo_RPS_N" 'BEGIN {printf "%.3f", a / b}')
ELAPSED=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')
row() { printf '%-28s %16s %16s %16s\n' "$@"; }
echo
echo "weather app through nimbus's REST API (API key + usage plan); wrk GET, keep-alive;"
echo "${DUR}s per run after a warm-up; $(nproc) CPUs; c=$CONC: up to $CONC environments; fake provider answers in 50 ms"
row "metric" "echo" "weather cached" "weather uncached"
row "---------------------------" "----------------" "----------------" "----------------"
row "c=1: req/s" "$echo_RPS_1" "$cached_RPS_1" "$uncached_RPS_1"
row "c=1: p50 / p99 (ms)" "$echo_P50_1/$echo_P99_1" "$cached_P50_1/$cached_P99_1" "$uncached_P50_1/$uncached_P99_1"
row "c=$CONC: req/s" "$echo_RPS_N" "$cached_RPS_N" "$uncached_RPS_N"
row "c=$CONC: p50 / p99 (ms)" "$echo_P50_N/$echo_P99_N" "$cached_P50_N/$cached_P99_N" "$uncached_P50_N/$uncached_P99_N"
echo "fake provider calls: $CALLS"
echo
printf '%-52s %10s %10s  %s\n' "target" "value" "goal" "result"
printf '%-52s %10s %10s  %s\n' "cached req/s / echo req/s, c=1" "$R1" ">= 0.8" "$(verdict "$R1" ">=" 0.8)"
printf '%-52s %10s %10s  %s\n' "cached req/s / echo req/s, c=$CONC" "$RN" ">= 0.8" "$(verdict "$RN" ">=" 0.8)"
echo
echo "total time: ${ELAPSED}s"
exit 0
