#!/usr/bin/env bash
# Benchmark: Step Functions on nimbus. A 10-state Pass chain run as an Express machine with
# StartSyncExecution (latency and executions/s at 1 and $CONC connections), and as a Standard
# machine started with StartExecution at $CONC connections: durable transitions/s, counted from
# the first start until every execution has ended (each state's exit and the next state's
# entry are one durable write). Client: the keep-alive Rust load client
# (crates/nimbus/examples/aws_json_load.rs); client and server share this machine's CPUs.
# And a Lambda Task's overhead: an Express machine of one `lambda:invoke` Task state against a
# direct Invoke of the same echo function (crates/nimbus/examples/testfn.rs), at 1 connection.
# And a distributed Map of $MAP_ITEMS items whose children are Standard executions (each a
# durable execution of its own: row, history, end) against the same Map run inline, in one
# Standard execution each: items/s from start to end. No target; the figure says what a Map
# Run's child executions cost.
# Targets (PASS/MISS): Express p50 < 1 ms; Standard >= 5,000 durable transitions/s; Task
# overhead (p50 difference) < 0.2 ms.
# Exits 0 whether the targets are met or not; non-zero only if something failed to run.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_DURATION     seconds per measured run (default 4)
#   BENCH_NO_BUILD=1   skip `cargo build`
#   BENCH_PYTHON       a python with boto3 (default: the test venv under the target dir)
# Traffic: 127.0.0.1 only.
set -euo pipefail

DUR=${BENCH_DURATION:-4}
CONC=16
MAP_ITEMS=${BENCH_MAP_ITEMS:-2000}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
PY=${BENCH_PYTHON:-$TARGET/test-venv/bin/python}
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need curl curl
need setsid util-linux
[[ -x $PY ]] && "$PY" -c 'import boto3' 2>/dev/null || die "no python with boto3 at $PY (run scripts/test.sh once, or set BENCH_PYTHON)"

build_json_load
build -p nimbus --example testfn
TESTFN=$TARGET/release/examples/testfn
[[ -x $TESTFN ]] || die "missing $TESTFN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-sfn.XXXXXX")
mkdir -p "$WORK/app/fn"
ln -s "$TESTFN" "$WORK/app/fn/bootstrap"
chain() { # type: a 10-state Pass chain as a template resource
    local states="" i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        if ((i < 10)); then
            states+="          S$i: {Type: Pass, Result: {step: $i}, ResultPath: \$.s$i, Next: S$((i + 1))}"$'\n'
        else
            states+="          S$i: {Type: Pass, Result: {step: $i}, ResultPath: \$.s$i, End: true}"$'\n'
        fi
    done
    printf '    Type: AWS::Serverless::StateMachine\n    Properties:\n      Name: chain-%s\n      Type: %s\n      Definition:\n        StartAt: S1\n        States:\n%s' \
        "${1,,}" "$1" "$states"
}
{
    echo "Transform: AWS::Serverless-2016-10-31"
    echo "Resources:"
    echo "  Express:"
    chain EXPRESS
    echo "  Standard:"
    chain STANDARD
    cat <<'EOF'
  Echo:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn, Handler: bootstrap, Runtime: provided.al2023, Timeout: 10}
  OneTask:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: one-task
      Type: EXPRESS
      Definition:
        StartAt: Call
        States:
          Call:
            Type: Task
            Resource: arn:aws:states:::lambda:invoke
            Parameters: {FunctionName: Echo, "Payload.$": "$"}
            OutputPath: $.Payload
            End: true
EOF
    for mode in DISTRIBUTED INLINE; do
        printf '  Fan%s:\n    Type: AWS::Serverless::StateMachine\n    Properties:\n      Name: fan-%s\n      Definition:\n        StartAt: Each\n        States:\n          Each:\n            Type: Map\n            ItemsPath: $.items\n            End: true\n            ItemProcessor:\n              ProcessorConfig: {Mode: %s, ExecutionType: STANDARD}\n              StartAt: P\n              States:\n                P: {Type: Pass, End: true}\n' \
            "${mode,,}" "${mode,,}" "$mode"
    done
} >"$WORK/app/template.yaml"

nimbus_up "$NIMBUS" "$WORK/nimbus.log" 30 "$WORK/app/template.yaml" --aws-port 0 --api-port 0 --state-dir "$WORK/state" --shutdown-grace 1

declare -A R
run() { # label, target, body, connections, [path, service]: sets R[label rps|p50|p99]
    local out rps p50 p99 errs
    out=$(AWS_LOAD_SERVICE=${6:-states} timeout $((DUR + 30)) "$LOAD" "$EP/${5:-}" "$2" application/x-amz-json-1.0 "$3" "$4" "$DUR") || die "$1: the load client failed"
    read -r rps p50 p99 errs <<<"$out"
    ((errs == 0)) || die "$1: $errs requests failed"
    R["$1 rps"]=$rps R["$1 p50"]=$p50 R["$1 p99"]=$p99
    log "$1: $rps/s, p50 $p50 ms, p99 $p99 ms"
}
ARN=arn:aws:states:us-east-1:123456789012:stateMachine
for c in 1 "$CONC"; do
    run "express c=$c" AWSStepFunctions.StartSyncExecution "{\"stateMachineArn\":\"$ARN:chain-express\",\"input\":\"{}\"}" "$c"
done

run "invoke c=1" "" '{"n":1}' 1 2015-03-31/functions/Echo/invocations lambda
run "task c=1" AWSStepFunctions.StartSyncExecution "{\"stateMachineArn\":\"$ARN:one-task\",\"input\":\"{\\\"n\\\":1}\"}" 1
overhead=$(awk -v a="${R["task c=1 p50"]}" -v b="${R["invoke c=1 p50"]}" 'BEGIN { printf "%.2f", a - b }')

# Standard: start for DUR seconds, then wait for every execution to end.
t0=$EPOCHREALTIME
run "standard starts c=$CONC" AWSStepFunctions.StartExecution "{\"stateMachineArn\":\"$ARN:chain-standard\",\"input\":\"{}\"}" "$CONC"
read -r done_n failed_n < <("$PY" - "$EP" "$ARN:chain-standard" <<'EOF'
import sys, time, boto3
sfn = boto3.client("stepfunctions", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
arn = sys.argv[2]
deadline = time.time() + 300
while sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING", maxResults=1)["executions"] and time.time() < deadline:
    time.sleep(0.05)
count = {}
for status in ("SUCCEEDED", "FAILED"):
    n = 0
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn, statusFilter=status, PaginationConfig={"PageSize": 1000}):
        n += len(page["executions"])
    count[status] = n
print(count["SUCCEEDED"], count["FAILED"])
EOF
)
t1=$EPOCHREALTIME
((failed_n == 0)) || die "$failed_n Standard executions failed"
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
transitions=$(awk -v n="$done_n" -v s="$secs" 'BEGIN { printf "%.0f", n * 10 / s }')

# One Map of MAP_ITEMS items, distributed (child executions) and inline: seconds to the end.
read -r map_distributed map_inline < <("$PY" - "$EP" "$ARN" "$MAP_ITEMS" <<'EOF'
import json, sys, time, boto3
sfn = boto3.client("stepfunctions", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
items = json.dumps({"items": list(range(int(sys.argv[3])))})
out = []
for mode in ("distributed", "inline"):
    t = time.time()
    ex = sfn.start_execution(stateMachineArn=f"{sys.argv[2]}:fan-{mode}", input=items)["executionArn"]
    while (d := sfn.describe_execution(executionArn=ex))["status"] == "RUNNING" and time.time() - t < 300:
        time.sleep(0.02)
    if d["status"] != "SUCCEEDED":
        sys.exit(f"the {mode} Map ended {d['status']}")
    out.append(f"{time.time() - t:.2f}")
print(*out)
EOF
)
[[ -n ${map_inline:-} ]] || die "the Map runs failed"
per_s() { awk -v n="$MAP_ITEMS" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }
stop_leader "$NB_PID"

echo
echo "Step Functions, a 10-state Pass chain; ${DUR}s per run; $(nproc) CPUs shared by client and server"
printf '%-40s %12s %10s %10s  %s\n' "" "per second" "p50 ms" "p99 ms" "target"
for c in 1 "$CONC"; do
    printf '%-40s %12s %10s %10s  %s\n' "Express StartSyncExecution, c=$c" "${R["express c=$c rps"]}" \
        "${R["express c=$c p50"]}" "${R["express c=$c p99"]}" "p50 <= 1 ms: $(verdict "${R["express c=$c p50"]}" "<=" 1)"
done
printf '%-40s %12s %10s %10s\n' "Standard StartExecution, c=$CONC" "${R["standard starts c=$CONC rps"]}" \
    "${R["standard starts c=$CONC p50"]}" "${R["standard starts c=$CONC p99"]}"
printf '%-40s %12s %10s %10s  %s\n' "Standard durable transitions" "$transitions" "-" "-" ">= 5000/s: $(verdict "$transitions" ">=" 5000)"
printf '%-40s %12s %10s %10s\n' "Invoke of the echo function, c=1" "${R["invoke c=1 rps"]}" "${R["invoke c=1 p50"]}" "${R["invoke c=1 p99"]}"
printf '%-40s %12s %10s %10s\n' "Express one lambda:invoke Task, c=1" "${R["task c=1 rps"]}" "${R["task c=1 p50"]}" "${R["task c=1 p99"]}"
printf '%-40s %12s %10s %10s  %s\n' "Task overhead (p50 difference), ms" "-" "$overhead" "-" "<= 0.2 ms: $(verdict "$overhead" "<=" 0.2)"
printf '%-40s %12s  (%s items in %s s)\n' "Map Run, Standard child executions" "$(per_s "$map_distributed")/s" "$MAP_ITEMS" "$map_distributed"
printf '%-40s %12s  (%s items in %s s)\n' "The same Map inline" "$(per_s "$map_inline")/s" "$MAP_ITEMS" "$map_inline"
echo "($done_n Standard executions ended in ${secs}s)"
echo "total time: $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')s"
exit 0
