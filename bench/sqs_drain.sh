#!/usr/bin/env bash
# Scale run: a backlog of $BENCH_MESSAGES (default 1,000,000) messages in one standard queue,
# drained by an event source mapping (BatchSize 10, ScalingConfig.MaximumConcurrency 10) into a
# trivial Python function that appends each record's messageId to a file. Every
# $BENCH_SAMPLE seconds it prints the depth, the drain rate over the interval, nimbus's
# resident memory and how long /metrics takes to answer. At half the backlog nimbus is killed
# with SIGKILL and started again on the same state directory; at the end every message id that
# was sent must have been delivered at least once.
# Targets (PASS/MISS): the drain rate of the last quarter within 1.5x of the first quarter's;
# memory at the end within 1.5x of memory at the first sample; /metrics under 50 ms at p99;
# every message delivered (that one is a failure, not a MISS).
# Exits 0 whether the targets are met or not; non-zero if something failed to run or a message
# was lost.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_MESSAGES     backlog size (default 1000000)
#   BENCH_SAMPLE       seconds between samples (default 5)
#   BENCH_NO_BUILD=1   skip `cargo build`
# Traffic: 127.0.0.1 only. Time: about 15 minutes at 1M on 2 cores.
set -euo pipefail

N=${BENCH_MESSAGES:-1000000}
SAMPLE=${BENCH_SAMPLE:-5}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need curl curl
need setsid util-linux
need python3 python3

build_json_load

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-drain.XXXXXX")
mkdir -p "$WORK/fill" "$WORK/drain/src"
QUEUE='  Backlog:
    Type: AWS::SQS::Queue
    Properties: {QueueName: backlog, VisibilityTimeout: 60, MessageRetentionPeriod: 86400}'
printf 'Resources:\n%s\n' "$QUEUE" >"$WORK/fill/template.yaml"
cat >"$WORK/drain/template.yaml" <<EOF
Transform: AWS::Serverless-2016-10-31
Resources:
$QUEUE
  Sink:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      CodeUri: src
      Handler: app.handler
      Timeout: 30
      Environment: {Variables: {SINK_FILE: $WORK/delivered}}
      Events:
        Backlog:
          Type: SQS
          Properties:
            Queue: !GetAtt Backlog.Arn
            BatchSize: 10
            ScalingConfig: {MaximumConcurrency: 10}
EOF
cat >"$WORK/drain/src/app.py" <<'EOF'
import os

def handler(event, context):
    with open(os.environ["SINK_FILE"], "a") as f:
        f.write("".join(r["messageId"] + "\n" for r in event["Records"]))
EOF

sqs() { # action, JSON body: the answer
    curl -sS --max-time 60 -H 'Content-Type: application/x-amz-json-1.0' \
        -H "X-Amz-Target: AmazonSQS.$1" -d "$2" "$EP/"
}
counts() { # -> "visible in_flight"
    sqs GetQueueAttributes "{\"QueueUrl\":\"$EP/123456789012/backlog\",\"AttributeNames\":[\"All\"]}" |
        python3 -c 'import json,sys; a=json.load(sys.stdin)["Attributes"]; print(a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"])'
}

# 1. The backlog, sent with no consumer. Each message id the send answers is kept.
nimbus_up "$NIMBUS" "$WORK/fill.log" 30 "$WORK/fill/template.yaml" --aws-port 0 \
    --state-dir "$WORK/state" --shutdown-grace 1
log "sending $N messages"
python3 - "$EP" "$N" >"$WORK/sent" <<'EOF'
import http.client, json, sys, urllib.parse
ep, n = sys.argv[1], int(sys.argv[2])
u = urllib.parse.urlparse(ep)
conn = http.client.HTTPConnection(u.hostname, u.port)
url = f"{ep}/123456789012/backlog"
headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessageBatch"}
sent = 0
while sent < n:
    k = min(10, n - sent)
    body = json.dumps({"QueueUrl": url, "Entries": [{"Id": str(i), "MessageBody": f"m{sent + i}"} for i in range(k)]})
    conn.request("POST", "/", body, headers)
    answer = json.loads(conn.getresponse().read())
    assert len(answer["Successful"]) == k, answer
    sys.stdout.write("".join(e["MessageId"] + "\n" for e in answer["Successful"]))
    sent += k
EOF
read -r depth _ <<<"$(counts)"
((depth == N)) || die "the queue holds $depth messages, not $N"
stop_leader "$NB_PID"
log "backlog: $depth messages ($(du -sh "$WORK/state" | cut -f1) of state)"

# 2. The drain, with a kill -9 at half way.
start_drain() {
    nimbus_up "$NIMBUS" "$WORK/drain-$1.log" 60 "$WORK/drain/template.yaml" --aws-port 0 \
        --api-port 0 --state-dir "$WORK/state" --shutdown-grace 1
}
start_drain 1
printf '%s\n' "elapsed_s depth in_flight drained_per_s rss_mb metrics_ms" >"$WORK/rows"
t0=$EPOCHREALTIME
last_t=$t0 last_left=$N killed=0
while :; do
    sleep "$SAMPLE"
    metrics_ms=$(curl -sS -o /dev/null -w '%{time_total}' "$EP/metrics" | awk '{printf "%.1f", $1 * 1000}')
    read -r visible in_flight <<<"$(counts)"
    rss=$(awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$NB_PID/status")
    now=$EPOCHREALTIME
    left=$((visible + in_flight))
    rate=$(awk -v a="$last_left" -v b="$left" -v s="$last_t" -v e="$now" 'BEGIN {printf "%.0f", (a - b) / (e - s)}')
    elapsed=$(awk -v s="$t0" -v e="$now" 'BEGIN {printf "%.0f", e - s}')
    printf '%s\n' "$elapsed $visible $in_flight $rate $rss $metrics_ms" >>"$WORK/rows"
    log "t=${elapsed}s: $visible waiting, $in_flight in flight, ${rate}/s, ${rss} MB, /metrics ${metrics_ms} ms"
    last_t=$now last_left=$left
    if ((!killed && left <= N / 2)); then
        log "kill -9 at $left left"
        kill -KILL "$NB_PID"
        wait "$NB_PID" 2>/dev/null || true
        killed=1
        start_drain 2
        last_t=$EPOCHREALTIME
        echo "restart" >>"$WORK/rows"
    fi
    ((left > 0)) || break
done
stop_leader "$NB_PID"

sort -u "$WORK/delivered" >"$WORK/delivered.ids"
sort -u "$WORK/sent" >"$WORK/sent.ids"
lost=$(comm -23 "$WORK/sent.ids" "$WORK/delivered.ids" | wc -l)
again=$(($(wc -l <"$WORK/delivered") - $(wc -l <"$WORK/delivered.ids")))

echo
echo "drain of $N messages by an SQS event source mapping (BatchSize 10, MaximumConcurrency 10), kill -9 at half; $(nproc) CPUs"
column -t "$WORK/rows"
# The rate while a backlog waits (the tail after the kill waits for the visibility timeout of
# the messages in flight when it struck, which measures the timeout, not the drain).
rates=$(grep -v restart "$WORK/rows" | awk 'NR > 1 && $2 > 0 {print $4}')
count=$(wc -l <<<"$rates")
q=$((count / 4 > 0 ? count / 4 : 1))
first=$(head -n "$q" <<<"$rates" | median)
lastq=$(tail -n "$q" <<<"$rates" | median)
ratio=$(awk -v a="$first" -v b="$lastq" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }')
rss0=$(awk 'NR == 2 {print $5}' "$WORK/rows")
rss1=$(grep -v restart "$WORK/rows" | awk 'END {print $5}')
mem=$(awk -v a="$rss1" -v b="$rss0" 'BEGIN { printf "%.2f", a / b }')
mp99=$(grep -v restart "$WORK/rows" | awk 'NR > 1 {print $6}' | sort -g | awk '{a[NR] = $1} END { i = int(NR * 0.99 + 0.5); if (i < 1) i = 1; print a[i] }')
echo
printf '%-56s %10s %10s  %s\n' "drain rate, first quarter / last quarter (median)" "$ratio" "<= 1.5" "$(verdict "$ratio" "<=" 1.5)"
printf '%-56s %10s %10s  %s\n' "resident memory, end / first sample" "$mem" "<= 1.5" "$(verdict "$mem" "<=" 1.5)"
printf '%-56s %10s %10s  %s\n' "/metrics p99 during the drain (ms)" "$mp99" "<= 50" "$(verdict "$mp99" "<=" 50)"
echo "messages sent: $(wc -l <"$WORK/sent.ids"), delivered: $(wc -l <"$WORK/delivered.ids") (again after the kill: $again), lost: $lost"
echo "total time: $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')s"
((lost == 0)) || die "$lost acknowledged messages were never delivered"
exit 0
