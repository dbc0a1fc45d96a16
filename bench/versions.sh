#!/usr/bin/env bash
# Benchmark: what routing through a weighted alias costs an invocation, in one run. A warm
# Lambda Invoke of a Rust echo function (examples/testfn.rs) with the keep-alive Rust client
# (examples/aws_json_load.rs), at c=1 and c=$CONC, alternating two rounds of:
#   unqualified   POST .../functions/Echo/invocations ($LATEST)
#   version       POST .../functions/Echo:1/invocations (a qualified invoke, one version)
#   alias         POST .../functions/Echo:live/invocations, live = version 1 with 0.5 to version 2
# Target (PASS/MISS): the alias's p50 within 5% of the unqualified one (median of the rounds).
# The version column separates the lookup of a qualifier from the alternation between two
# versions' environments that a 0.5 weight causes.
# Exits 0 whether the target is met or not; non-zero only if something failed to run.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_DURATION     seconds per measured run (default 5)
#   BENCH_NO_BUILD=1   skip `cargo build`
set -euo pipefail

DUR=${BENCH_DURATION:-5}
CONC=16
ROUNDS=3
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need curl curl
need pkill procps
need setsid util-linux
build_json_load
build --example testfn
TESTFN=$TARGET/release/examples/testfn
[[ -x $TESTFN ]] || die "missing $TESTFN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-versionsbench.XXXXXX")
mkdir -p "$WORK/app/fn"
cp "$TESTFN" "$WORK/app/fn/bootstrap"
cat >"$WORK/app/template.yaml" <<'EOF'
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      CodeUri: fn/
      AutoPublishAlias: live
      Environment: {Variables: {ROUND: one}}
EOF

nimbus_up "$NIMBUS" "$WORK/nimbus.log" 60 "$WORK/app/template.yaml" --aws-port 0 --api-port 0 --state-dir "$WORK/state" --shutdown-grace 1
FN="$EP/2015-03-31/functions/Echo"
curl -sfS -o /dev/null -X PUT "$FN/configuration" -H 'content-type: application/json' -d '{"Environment":{"Variables":{"ROUND":"two"}}}' || die "cannot update the configuration"
V2=$(curl -sfS -X POST "$FN/versions" -H 'content-type: application/json' -d '{}' | sed -n 's/.*"Version":"\([0-9]*\)".*/\1/p')
[[ $V2 == 2 ]] || die "PublishVersion did not make version 2 (got '$V2')"
curl -sfS -o /dev/null -X PUT "$FN/aliases/live" -H 'content-type: application/json' -d "{\"RoutingConfig\":{\"AdditionalVersionWeights\":{\"2\":0.5}}}" || die "cannot weight the alias"

invoke_run() { # label function connections -> RPS P50
    local out
    out=$(timeout $((DUR + 30)) "$LOAD" "$EP/2015-03-31/functions/$2/invocations" "" application/json '{"echo":1}' "$3" "$DUR") || die "$1: the load client failed"
    read -r RPS P50 _ ERRS <<<"$out"
    ((ERRS == 0)) || die "$1: $ERRS invocations failed"
    log "$1 c=$3: ${RPS}/s, p50 ${P50} ms"
}

declare -A P R
# Warm every pool: $LATEST, and both versions behind the alias.
invoke_run warm-up Echo $CONC
invoke_run warm-up Echo:live $CONC
invoke_run warm-up Echo:1 $CONC
for round in $(seq $ROUNDS); do
    for c in 1 $CONC; do
        invoke_run unqualified Echo "$c"; P["u $c"]+="$P50 "; R["u $c"]+="$RPS "
        invoke_run version Echo:1 "$c"; P["v $c"]+="$P50 "; R["v $c"]+="$RPS "
        invoke_run alias Echo:live "$c"; P["a $c"]+="$P50 "; R["a $c"]+="$RPS "
    done
done
stop_leader "$NB_PID"

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
echo
echo "Weighted alias vs unqualified invoke, ${DUR}s per run, median of $ROUNDS rounds; $(nproc) CPUs shared by client and nimbus"
printf '%-20s %22s %22s %22s %8s %8s  %s\n' "invoke" "unqualified /s (p50)" "version 1 /s (p50)" "alias 0.5/0.5 (p50)" "version" "alias" "result"
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.1f%%", (b > 0) ? (a / b - 1) * 100 : 0}'; }
for c in 1 $CONC; do
    up=$(median <<<"${P["u $c"]}"); ur=$(median <<<"${R["u $c"]}")
    vp=$(median <<<"${P["v $c"]}"); vr=$(median <<<"${R["v $c"]}")
    ap=$(median <<<"${P["a $c"]}"); ar=$(median <<<"${R["a $c"]}")
    within=$(awk -v a="$ap" -v b="$up" 'BEGIN {print ((b > 0 && a / b - 1 <= 0.05) ? 1 : 0)}')
    printf '%-20s %22s %22s %22s %8s %8s  %s\n' "Invoke (warm) c=$c" "$ur ($up)" "$vr ($vp)" "$ar ($ap)" "$(pct "$vp" "$up")" "$(pct "$ap" "$up")" "$( ((within)) && echo PASS || echo MISS)"
done
echo "(the alias picks a version per invocation by its weight; each version runs in environments of its own)"
