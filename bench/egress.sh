#!/usr/bin/env bash
# Benchmark: the cost of nimbus's egress proxy (functions' outbound HTTP through it, for chaos
# rules on "egress"), in one run, with wrk (keep-alive) at c=1 and c=$CONC:
#   direct   GET of a small answer straight from an HTTP server (a second nimbus's
#            /_nimbus/chaos/effects, which no chaos layer touches), the floor
#   proxied  the same GET through the egress proxy with no rule: what every outbound call of a
#            function given the proxy pays
#   armed    through the proxy with one egress rule for another host, so each request is matched
# Targets (PASS/MISS): proxied p50 within 0.2 ms of direct at c=1 (one loopback hop), and armed
# within 5% of proxied (rule matching is a lock read and a comparison).
# Exits 0 whether the targets are met or not; non-zero only if something failed to run.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_DURATION     seconds per measured run (default 5)
#   BENCH_NO_BUILD=1   skip `cargo build`
set -euo pipefail

DUR=${BENCH_DURATION:-5}
CONC=16
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_load_tools
build -p nimbus --bin nimbus
NIMBUS=$TARGET/release/nimbus
[[ -x $NIMBUS ]] || die "missing $NIMBUS"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-egressbench.XXXXXX")
mkdir -p "$WORK/app"
cat >"$WORK/app/template.yaml" <<'YAML'
Resources:
  Q:
    Type: AWS::SQS::Queue
YAML

# The destination is another nimbus: the proxy passes its own nimbus's addresses through
# without looking at the rules, and this measures the path a function's call takes.
nimbus_up "$NIMBUS" "$WORK/upstream.log" 60 "$WORK/app/template.yaml" --aws-port 0 --api-port 0 --state-dir "$WORK/upstream" --shutdown-grace 1
UP_PID=$NB_PID
UP=$EP
nimbus_up "$NIMBUS" "$WORK/nimbus.log" 60 "$WORK/app/template.yaml" --aws-port 0 --api-port 0 --state-dir "$WORK/state" --shutdown-grace 1
PROXY=$(sed -n 's/^nimbus: egress proxy \(http:[^ ]*\).*/\1/p' "$WORK/nimbus.log" | head -1)
[[ $PROXY == http://127.0.0.1:* ]] || die "no egress proxy in nimbus's output"
cat >"$WORK/proxied.lua" <<LUA
wrk.path = "$UP/_nimbus/chaos/effects"
wrk.headers["Host"] = "${UP#http://}"
LUA

declare -A R
run() { # label url connections [wrk args...]
    local label=$1 url=$2 c=$3 t=1
    shift 3
    ((c > 1)) && t=2
    WRK_TOLERATE=1 wrk_measure "$label-warm" 1 "$WORK/warm.txt" -t"$t" -c"$c" "$@" "$url"
    wrk_measure "$label" "$DUR" "$WORK/$label-c$c.txt" -t"$t" -c"$c" "$@" "$url"
    R["$label $c"]="$RPS $P50"
    log "$label c=$c: ${RPS}/s, p50 ${P50} ms"
}

for c in 1 $CONC; do
    run direct "$UP/_nimbus/chaos/effects" "$c"
    run proxied "$PROXY" "$c" -s "$WORK/proxied.lua"
done
curl -fsS -o /dev/null -X POST "$EP/_nimbus/chaos/faults" -d '[{"service":"egress","host":"elsewhere.example","latency":1}]'
for c in 1 $CONC; do
    run armed "$PROXY" "$c" -s "$WORK/proxied.lua"
done
stop_leader "$NB_PID"
stop_leader "$UP_PID"

echo
echo "Egress proxy, wrk keep-alive GET, ${DUR}s per run; $(nproc) CPUs shared by client, proxy and server"
printf '%-8s %20s %20s %20s %10s %10s\n' "conns" "direct /s (p50 ms)" "proxied /s (p50)" "armed /s (p50)" "hop p50" "armed/prox"
for c in 1 $CONC; do
    read -r dr dp <<<"${R["direct $c"]}"
    read -r pr pp <<<"${R["proxied $c"]}"
    read -r ar ap <<<"${R["armed $c"]}"
    hop=$(awk -v a="$pp" -v b="$dp" 'BEGIN {printf "%+.3f ms", a - b}')
    armed=$(awk -v a="$ap" -v b="$pp" 'BEGIN {printf "%+.1f%%", (b > 0) ? (a / b - 1) * 100 : 0}')
    printf '%-8s %20s %20s %20s %10s %10s\n' "c=$c" "$dr ($dp)" "$pr ($pp)" "$ar ($ap)" "$hop" "$armed"
done
read -r _ dp <<<"${R["direct 1"]}"
read -r _ pp <<<"${R["proxied 1"]}"
read -r _ ap <<<"${R["armed 1"]}"
echo "target: proxied p50 - direct p50 <= 0.2 ms at c=1: $(verdict "$(awk -v a="$pp" -v b="$dp" 'BEGIN {print a - b}')" "<=" 0.2)"
echo "target: armed p50 within 5% of proxied at c=1: $(verdict "$(awk -v a="$ap" -v b="$pp" 'BEGIN {print (b > 0) ? a / b - 1 : 0}')" "<=" 0.05)"
