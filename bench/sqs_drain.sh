#!/usr/bin/env bash
# Scale run: a backlog of $BENCH_MESSAGES (default 1,000,000) messages in one standard queue,
# drained by an event source mapping (BatchSize 10, ScalingConfig.MaximumConcurrency 10) into a
# trivial Python function that appends each record's messageId to a file. Every
# $BENCH_SAMPLE seconds it prints the depth, the drain rate over the interval, nimbus's
# resident memory and how long /metrics takes to answer. At half the backlog nimbus is killed
# with SIGKILL and started again on the same state directory; at the end every message id that
# was sent must have been delivered at least once.
# Poison: $BENCH_POISON of the messages (spread evenly) make the function report them failed
# (ReportBatchItemFailures); the queue's RedrivePolicy (maxReceiveCount 3, VisibilityTimeout
# 10 s) must move each to the dead-letter queue after its third receive, never sooner, while the
# rest drain at the same rate. Every poison message must be in the dead-letter queue at the end.
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
#   BENCH_POISON       poison messages among them (default 100; 0 for none)
#   BENCH_NO_BUILD=1   skip `cargo build`
# Traffic: 127.0.0.1 only. Time: about 15 minutes at 1M on 2 cores.
set -euo pipefail

N=${BENCH_MESSAGES:-1000000}
SAMPLE=${BENCH_SAMPLE:-5}
POISON=${BENCH_POISON:-100}
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
    Properties:
      QueueName: backlog
      VisibilityTimeout: 10
      MessageRetentionPeriod: 86400
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Dead.Arn, maxReceiveCount: 3}
  Dead:
    Type: AWS::SQS::Queue
    Properties: {QueueName: dead, MessageRetentionPeriod: 86400}'
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
      Timeout: 5
      Environment: {Variables: {SINK_FILE: $WORK/delivered, POISON_FILE: $WORK/poison-seen}}
      Events:
        Backlog:
          Type: SQS
          Properties:
            Queue: !GetAtt Backlog.Arn
            BatchSize: 10
            ScalingConfig: {MaximumConcurrency: 10}
            FunctionResponseTypes: [ReportBatchItemFailures]
EOF
cat >"$WORK/drain/src/app.py" <<'EOF'
import os, time

def handler(event, context):
    good = [r for r in event["Records"] if not r["body"].startswith("poison")]
    bad = [r for r in event["Records"] if r["body"].startswith("poison")]
    with open(os.environ["SINK_FILE"], "a") as f:
        f.write("".join(r["messageId"] + "\n" for r in good))
    if bad:
        now = time.time()
        with open(os.environ["POISON_FILE"], "a") as f:
            f.write("".join(f"{r['messageId']} {r['attributes']['ApproximateReceiveCount']} {now:.3f} {int(r['attributes']['ApproximateFirstReceiveTimestamp']) / 1000:.3f}\n" for r in bad))
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in bad]}
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
python3 - "$EP" "$N" "$POISON" "$WORK/poison" >"$WORK/sent" <<'EOF'
import http.client, json, sys, urllib.parse
ep, n, poison = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
step = n // poison if poison else 0
poisoned = open(sys.argv[4], "w")
u = urllib.parse.urlparse(ep)
conn = http.client.HTTPConnection(u.hostname, u.port)
url = f"{ep}/123456789012/backlog"
headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessageBatch"}
sent = 0
while sent < n:
    k = min(10, n - sent)
    bodies = [("poison" if step and (sent + i) % step == step // 2 else "m") + str(sent + i) for i in range(k)]
    body = json.dumps({"QueueUrl": url, "Entries": [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)]})
    conn.request("POST", "/", body, headers)
    answer = json.loads(conn.getresponse().read())
    assert len(answer["Successful"]) == k, answer
    for e in answer["Successful"]:
        out = poisoned if bodies[int(e["Id"])].startswith("poison") else sys.stdout
        out.write(e["MessageId"] + "\n")
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

# The dead-letter queue, read whole (visibility kept long so each message is read once).
nimbus_up "$NIMBUS" "$WORK/dead.log" 30 "$WORK/fill/template.yaml" --aws-port 0 \
    --state-dir "$WORK/state" --shutdown-grace 1
while :; do
    got=$(sqs ReceiveMessage "{\"QueueUrl\":\"$EP/123456789012/dead\",\"MaxNumberOfMessages\":10,\"VisibilityTimeout\":600}" |
        python3 -c 'import json,sys; [print(m["MessageId"]) for m in json.load(sys.stdin).get("Messages", [])]')
    [[ -n $got ]] || break
    printf '%s\n' "$got" >>"$WORK/dead.ids"
done
stop_leader "$NB_PID"
touch "$WORK/dead.ids" "$WORK/poison-seen"
sort -u -o "$WORK/dead.ids" "$WORK/dead.ids"
sort -u -o "$WORK/poison" "$WORK/poison"
poison_missing=$(comm -23 "$WORK/poison" "$WORK/dead.ids" | wc -l)
dead_other=$(comm -13 "$WORK/poison" "$WORK/dead.ids" | wc -l)
# Per poison message: the calls the function saw, and the shortest time from a message's first
# receive (SQS's ApproximateFirstReceiveTimestamp) to its third call: two visibility timeouts
# (20 s) is the floor, as a retry may come only once the timeout of the receive before it ran out.
read -r attempts_min attempts_max gap_min <<<"$(sort -k1,1 -k3,3g "$WORK/poison-seen" | awk '
    $1 != id { if (id != "") { n[id] = c }; id = $1; c = 0 }
    { c++; if ($2 == 3) { g = $3 - $4; if (gmin == "" || g < gmin) gmin = g } }
    END { if (id != "") n[id] = c; lo = ""; hi = 0
          for (k in n) { if (lo == "" || n[k] < lo) lo = n[k]; if (n[k] > hi) hi = n[k] }
          printf "%s %s %s\n", (lo == "" ? 0 : lo), hi, (gmin == "" ? "n/a" : sprintf("%.1f", gmin)) }')"

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
echo "poison messages: $(wc -l <"$WORK/poison"), in the dead-letter queue: $(wc -l <"$WORK/dead.ids") (missing: $poison_missing, others there: $dead_other); calls each before the move: $attempts_min to $attempts_max (maxReceiveCount 3); shortest time from a first receive to the third call: ${gap_min} s (floor: two visibility timeouts, 20 s)"
echo "total time: $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')s"
((lost == 0)) || die "$lost acknowledged messages were never delivered"
((poison_missing == 0 && dead_other == 0)) || die "the dead-letter queue holds the wrong messages"
exit 0
