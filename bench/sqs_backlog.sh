#!/usr/bin/env bash
# Benchmark: what a backlog costs. For each depth (messages waiting in one standard queue),
# a fresh nimbus is filled with SendMessageBatch, then ReceiveMessage (10 messages,
# VisibilityTimeout 0, so the depth stays put) and GetQueueAttributes (the queue's counts) are
# timed with the keep-alive load client (crates/nimbus/examples/aws_json_load.rs) on one
# connection. Target (issue: queue cost independent of backlog): ReceiveMessage p50 at the
# largest depth within 1.5x of its value at the smallest.
# Exits 0 whether the target is met or not; non-zero only if something failed to run.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_DEPTHS       depths to measure (default "1000 10000 100000 1000000")
#   BENCH_DURATION     seconds per measured run (default 3)
#   BENCH_NO_BUILD=1   skip `cargo build`
# Traffic: 127.0.0.1 only.
set -euo pipefail

DEPTHS=${BENCH_DEPTHS:-1000 10000 100000 1000000}
DUR=${BENCH_DURATION:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need curl curl
need setsid util-linux

build_json_load

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-backlog.XXXXXX")
cat >"$WORK/template.yaml" <<'EOF'
Resources:
  Backlog:
    Type: AWS::SQS::Queue
    Properties: {QueueName: backlog, MessageRetentionPeriod: 86400}
EOF

sqs() { # action, JSON body: the answer
    curl -sS --max-time 60 -H 'Content-Type: application/x-amz-json-1.0' \
        -H "X-Amz-Target: AmazonSQS.$1" -d "$2" "$EP/"
}
depth() {
    sqs GetQueueAttributes "{\"QueueUrl\":\"$QURL\",\"AttributeNames\":[\"ApproximateNumberOfMessages\"]}" |
        sed -E 's/.*"ApproximateNumberOfMessages":"([0-9]+)".*/\1/'
}
load() { # target, body, connections, seconds -> sets RPS P50 P99
    local out errs
    out=$("$LOAD" "$EP/" "AmazonSQS.$1" application/x-amz-json-1.0 "$2" "$3" "$4") || die "load client failed ($1)"
    read -r RPS P50 P99 errs <<<"$out"
    ((errs == 0)) || die "$1: $errs requests failed"
}

ENTRIES=$(for i in $(seq 1 10); do printf '{"Id":"m%d","MessageBody":"order %d: one widget to Melbourne"}\n' "$i" "$i"; done | paste -sd, -)
printf '%s\n' "depth receive_p50_ms receive_p99_ms receive_per_s attributes_p50_ms send_per_s send_cpu_us_per_msg" >"$WORK/rows"
for d in $DEPTHS; do
    nimbus_up "$NIMBUS" "$WORK/nimbus-$d.log" 30 "$WORK/template.yaml" --aws-port 0 \
        --state-dir "$WORK/state-$d" --shutdown-grace 1
    QURL="$EP/123456789012/backlog"
    BATCH="{\"QueueUrl\":\"$QURL\",\"Entries\":[$ENTRIES]}"
    have=0
    while ((have < d)); do
        # Short bursts near the depth, so the queue ends close to it.
        secs=$(awk -v left=$((d - have)) 'BEGIN { s = left / 40000; if (s > 1) s = 1; if (s < 0.02) s = 0.02; print s }')
        load SendMessageBatch "$BATCH" 1 "$secs"
        have=$(depth)
    done
    log "depth $d: $have messages waiting"
    load ReceiveMessage "{\"QueueUrl\":\"$QURL\",\"MaxNumberOfMessages\":10,\"VisibilityTimeout\":0}" 1 "$DUR"
    R50=$P50 R99=$P99 RPS_R=$RPS
    load GetQueueAttributes "{\"QueueUrl\":\"$QURL\",\"AttributeNames\":[\"All\"]}" 1 "$DUR"
    A50=$P50
    # Single sends on 16 connections at this depth, and nimbus's CPU time per message sent
    # (user + system, from /proc, over the run).
    cpu0=$(awk '{print $14 + $15}' "/proc/$NB_PID/stat")
    load SendMessage "{\"QueueUrl\":\"$QURL\",\"MessageBody\":\"order 42: one widget to Melbourne\"}" 16 "$DUR"
    cpu1=$(awk '{print $14 + $15}' "/proc/$NB_PID/stat")
    SEND=$RPS
    CPU=$(awk -v t=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v n="$RPS" -v d="$DUR" 'BEGIN { printf "%.0f", t / hz * 1e6 / (n * d) }')
    log "depth $d: receive p50 $R50 ms, p99 $R99 ms, $RPS_R/s; attributes p50 $A50 ms; send $SEND/s at ${CPU} us CPU each"
    printf '%s\n' "$have $R50 $R99 $RPS_R $A50 $SEND $CPU" >>"$WORK/rows"
    stop_leader "$NB_PID"
done

echo
echo "ReceiveMessage (10, VisibilityTimeout 0) and GetQueueAttributes on one keep-alive connection, then SendMessage on 16, ${DUR}s each; $(nproc) CPUs"
column -t "$WORK/rows"
first=$(awk 'NR == 2 {print $2}' "$WORK/rows")
last=$(awk 'END {print $2}' "$WORK/rows")
ratio=$(awk -v a="$last" -v b="$first" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }')
echo
printf '%-56s %8s %8s  %s\n' "receive p50, largest / smallest depth" "$ratio" "<= 1.5" "$(verdict "$ratio" "<=" 1.5)"
echo "total time: $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')s"
exit 0
