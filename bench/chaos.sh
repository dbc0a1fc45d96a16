#!/usr/bin/env bash
# Benchmark: the cost of nimbus's chaos layer on the AWS API path, in one run. SQS
# GetQueueAttributes (no disk write, so the layer's share is as large as it gets) and a warm
# Lambda Invoke of a Rust echo function, with the keep-alive Rust client
# (examples/aws_json_load.rs), at c=1 and c=$CONC:
#   idle    no fault rule (every request pays one uncontended lock read)
#   armed   one rule for another service, so every request is classified and matched
#           (and a FIS experiment of 0% on the function, so every invocation rolls)
# Target (PASS/MISS): idle vs armed p50 within 2% (the idle path is what every run pays).
# Exits 0 whether the target is met or not; non-zero only if something failed to run.
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

need curl curl
need pkill procps
need setsid util-linux
build_json_load
build --example testfn
TESTFN=$TARGET/release/examples/testfn
[[ -x $TESTFN ]] || die "missing $TESTFN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-chaosbench.XXXXXX")
mkdir -p "$WORK/app/fn"
cp "$TESTFN" "$WORK/app/fn/bootstrap"
cat >"$WORK/app/template.yaml" <<'EOF'
Transform: AWS::Serverless-2016-10-31
Resources:
  Bench:
    Type: AWS::SQS::Queue
    Properties: {QueueName: bench}
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      CodeUri: fn/
EOF

nimbus_up "$NIMBUS" "$WORK/nimbus.log" 60 "$WORK/app/template.yaml" --aws-port 0 --api-port 0 --state-dir "$WORK/state" --shutdown-grace 1
QURL="$EP/123456789012/bench"
ATTRS="{\"QueueUrl\":\"$QURL\",\"AttributeNames\":[\"ApproximateNumberOfMessages\"]}"

json_run() { # label connections -> RPS P50
    local out
    out=$(timeout $((DUR + 30)) "$LOAD" "$EP/" AmazonSQS.GetQueueAttributes application/x-amz-json-1.0 "$ATTRS" "$2" "$DUR") || die "$1: the load client failed"
    read -r RPS P50 _ ERRS <<<"$out"
    ((ERRS == 0)) || die "$1: $ERRS requests failed"
    log "$1 GetQueueAttributes c=$2: ${RPS}/s, p50 ${P50} ms"
}

invoke_run() { # label connections -> RPS P50 (Invoke is REST-JSON: the client posts to the invocations path)
    local out
    out=$(timeout $((DUR + 30)) "$LOAD" "$EP/2015-03-31/functions/Echo/invocations" "" application/json '{"echo":1}' "$2" "$DUR") || die "$1: the load client failed"
    read -r RPS P50 _ ERRS <<<"$out"
    ((ERRS == 0)) || die "$1: $ERRS invocations failed"
    log "$1 Invoke c=$2: ${RPS}/s, p50 ${P50} ms"
}

declare -A R
measure() { # label
    local c
    for c in 1 $CONC; do
        json_run "$1" "$c"; R["$1 sqs $c"]="$RPS $P50"
        invoke_run "$1" "$c"; R["$1 invoke $c"]="$RPS $P50"
    done
}

# warm the function's environments first
invoke_run warm-up $CONC
measure idle
curl -sS -o /dev/null -X POST "$EP/_nimbus/chaos/faults" -d '[{"service":"dynamodb","operation":"PutItem"}]'
SIG='Authorization: AWS4-HMAC-SHA256 Credential=bench/20261206/us-east-1/fis/aws4_request, SignedHeaders=host, Signature=0'
TID=$(curl -sS -H "$SIG" -H 'content-type: application/json' -X POST "$EP/experimentTemplates" -d '{"description":"0%","roleArn":"arn:aws:iam::123456789012:role/fis","stopConditions":[{"source":"none"}],"targets":{"fn":{"resourceType":"aws:lambda:function","resourceArns":["arn:aws:lambda:us-east-1:123456789012:function:Echo"],"selectionMode":"ALL"}},"actions":{"a":{"actionId":"aws:lambda:invocation-error","parameters":{"duration":"PT1H","invocationPercentage":"0"},"targets":{"Functions":"fn"}}}}' | sed -n 's/.*"id":"\(EXT[^"]*\)".*/\1/p')
[[ -n $TID ]] || die "cannot create the FIS template"
curl -sS -o /dev/null -H "$SIG" -H 'content-type: application/json' -X POST "$EP/experiments" -d "{\"experimentTemplateId\":\"$TID\"}"
measure armed
stop_leader "$NB_PID"

echo
echo "Chaos layer, ${DUR}s per run; $(nproc) CPUs shared by client and nimbus"
printf '%-34s %22s %22s %8s  %s\n' "request" "idle /s (p50 ms)" "armed /s (p50 ms)" "p50" "result"
for op in sqs invoke; do
    for c in 1 $CONC; do
        read -r ir ip <<<"${R["idle $op $c"]}"
        read -r ar ap <<<"${R["armed $op $c"]}"
        ratio=$(awk -v a="$ap" -v b="$ip" 'BEGIN {printf "%+.1f%%", (b > 0) ? (a / b - 1) * 100 : 0}')
        within=$(awk -v a="$ap" -v b="$ip" 'BEGIN {print ((b > 0 && a / b - 1 <= 0.02) ? 1 : 0)}')
        printf '%-34s %22s %22s %8s  %s\n' "$([[ $op == sqs ]] && echo GetQueueAttributes || echo 'Invoke (warm)') c=$c" "$ir ($ip)" "$ar ($ap)" "$ratio" "$( ((within)) && echo PASS || echo MISS)"
    done
done
echo "(idle is what every run pays; armed adds classification, rule matching and a roll per request)"
