#!/usr/bin/env bash
# Benchmark: the event engine.
#   PutEvents -> rule -> SQS target: wrk posting AWS JSON 1.1 PutEvents (1 and 10 entries per
#     request, c=$CONC); every accepted event is matched and its SQS message committed before
#     the answer, so events/s is delivered events/s (checked against the queue's count).
#   SQS -> Lambda delivery latency: boto3 sends one message at a time (20/s); a Python function
#     behind an event source mapping (BatchSize 1) records when it saw each message; latency =
#     handler start - the moment SendMessage was called (sender's clock = function's clock).
#     Baseline in the same run: boto3 synchronous Invoke of the same function (call -> handler).
# Target (PASS/MISS): delivery p50 under 5 ms.
# Exits 0 whether the target is met or not; non-zero only if something failed to run.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_DURATION     seconds per measured wrk run (default 5)
#   BENCH_MESSAGES     messages for the latency run (default 200)
#   BENCH_NO_BUILD=1   skip `cargo build`
#   BENCH_PYTHON       a python with boto3 (default: the test venv under the target dir)
# Load generator: wrk (Debian package; installed with apt-get when missing). Traffic: 127.0.0.1 only.
set -euo pipefail

DUR=${BENCH_DURATION:-5}
MSGS=${BENCH_MESSAGES:-200}
CONC=16
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
PY=${BENCH_PYTHON:-$TARGET/test-venv/bin/python}
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_load_tools
[[ -x $PY ]] && "$PY" -c 'import boto3' 2>/dev/null || die "no python with boto3 at $PY (run scripts/test.sh once, or set BENCH_PYTHON)"

build -p nimbus --bin nimbus
NIMBUS=$TARGET/release/nimbus
[[ -x $NIMBUS ]] || die "missing $NIMBUS"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-eventsbench.XXXXXX")
mkdir -p "$WORK/app/src"
cat >"$WORK/app/src/app.py" <<'EOF'
import json, os, time

def handler(event, context):
    seen = time.time_ns()
    with open(os.environ["SEEN"], "a") as f:
        for r in event.get("Records", []):
            f.write("%s %d\n" % (json.loads(r["body"])["sent_ns"], seen))
        if "sent_ns" in event:
            f.write("invoke %s %d\n" % (event["sent_ns"], seen))
    return {}
EOF
cat >"$WORK/app/template.yaml" <<EOF
Transform: AWS::Serverless-2016-10-31
Resources:
  Sink:
    Type: AWS::SQS::Queue
    Properties: {QueueName: sink}
  ToSink:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [bench]}
      Targets: [{Id: sink, Arn: !GetAtt Sink.Arn}]
  Work:
    Type: AWS::SQS::Queue
    Properties: {QueueName: work}
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      Handler: app.handler
      CodeUri: src
      Environment: {Variables: {SEEN: $WORK/seen.txt}}
      Events:
        Work:
          Type: SQS
          Properties: {Queue: !GetAtt Work.Arn, BatchSize: 1}
EOF

nimbus_up "$NIMBUS" "$WORK/nimbus.log" 30 "$WORK/app/template.yaml" --aws-port 0 --state-dir "$WORK/state" --shutdown-grace 1

lua() { # file, entries
    cat >"$1" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
wrk.headers["X-Amz-Target"] = "AWSEvents.PutEvents"
wrk.body = '{"Entries":[$2]}'
EOF
}
# Detail is a JSON string inside JSON: its quotes are escaped once, which Lua's '..' keeps.
ENTRY='{"Source":"bench","DetailType":"order","Detail":"{\\"id\\":42,\\"city\\":\\"Melbourne\\"}"}'
lua "$WORK/one.lua" "$ENTRY"
lua "$WORK/ten.lua" "$(for i in $(seq 10); do printf '%s' "$ENTRY"; ((i < 10)) && printf ','; done)"
body='{"Entries":[{"Source":"bench","DetailType":"order","Detail":"{\"id\":42}"}]}'
code=$(curl -sS -o "$WORK/check.json" -w '%{http_code}' -H 'Content-Type: application/x-amz-json-1.1' \
    -H 'X-Amz-Target: AWSEvents.PutEvents' -d "$body" "$EP/") || die "PutEvents failed"
[[ $code == 200 ]] && grep -q '"FailedEntryCount":0' "$WORK/check.json" || die "PutEvents answered $code: $(cat "$WORK/check.json")"

wrk_measure put-1 "$DUR" "$WORK/wrk-1.txt" -t2 -c"$CONC" -s "$WORK/one.lua" "$EP/"
P1=$RPS P1P50=$P50 P1P99=$P99 R1=$REQS
log "PutEvents x1: $P1 events/s, p50 $P1P50 ms"
wrk_measure put-10 "$DUR" "$WORK/wrk-10.txt" -t2 -c"$CONC" -s "$WORK/ten.lua" "$EP/"
P10=$((RPS * 10)) P10P50=$P50 P10P99=$P99 R10=$REQS
log "PutEvents x10: $P10 events/s, p50 $P10P50 ms"

"$PY" - "$EP" "$MSGS" "$WORK/seen.txt" "$((1 + R1 + R10 * 10))" >"$WORK/latency.txt" <<'EOF'
import json, statistics, sys, time, boto3
from botocore.config import Config
ep, n, seen_path, expected_sink = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
          config=Config(retries={"max_attempts": 1}))
sqs, lam = boto3.client("sqs", **kw), boto3.client("lambda", **kw)
sink = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName="sink")["QueueUrl"],
                                AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
print("sink", sink["ApproximateNumberOfMessages"], expected_sink)
url = sqs.get_queue_url(QueueName="work")["QueueUrl"]
# Warm the environment and the connection first.
for i in range(5):
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"sent_ns": time.time_ns()}))
    time.sleep(0.1)
time.sleep(1)
open(seen_path, "w").close()
for i in range(n):
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"sent_ns": time.time_ns()}))
    time.sleep(0.05)
for i in range(n):
    lam.invoke(FunctionName="Consumer", Payload=json.dumps({"sent_ns": time.time_ns()}))
deadline = time.time() + 30
while time.time() < deadline:
    lines = open(seen_path).read().splitlines()
    if len(lines) >= 2 * n:
        break
    time.sleep(0.1)
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
mapping = [(int(b) - int(a)) / 1e6 for a, b in (l.split() for l in lines if not l.startswith("invoke"))]
invoke = [(int(b) - int(a)) / 1e6 for _, a, b in (l.split() for l in lines if l.startswith("invoke"))]
print("mapping", len(mapping), "%.2f" % pct(mapping, 50), "%.2f" % pct(mapping, 99))
print("invoke", len(invoke), "%.2f" % pct(invoke, 50), "%.2f" % pct(invoke, 99))
EOF
stop_leader "$NB_PID"

read -r _ SINK EXPECTED < <(grep '^sink ' "$WORK/latency.txt")
read -r _ MN MP50 MP99 < <(grep '^mapping ' "$WORK/latency.txt")
read -r _ IN IP50 IP99 < <(grep '^invoke ' "$WORK/latency.txt")
[[ $SINK == "$EXPECTED" ]] || log "warning: the sink queue holds $SINK messages; wrk completed $EXPECTED events"
[[ $MN -ge $MSGS ]] || die "only $MN of $MSGS messages reached the function"

ELAPSED=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')
echo
echo "event engine on nimbus (SQLite WAL); ${DUR}s per wrk run; $(nproc) CPUs"
printf '%-52s %12s %22s\n' "metric" "events/s" "p50 / p99 (ms)"
printf '%-52s %12s %22s\n' "PutEvents (1 entry) -> rule -> SQS, c=$CONC" "$P1" "$P1P50 / $P1P99"
printf '%-52s %12s %22s\n' "PutEvents (10 entries) -> rule -> SQS, c=$CONC" "$P10" "$P10P50 / $P10P99"
printf '%-52s %12s\n' "events in the SQS target / events accepted" "$SINK / $EXPECTED"
echo
printf '%-52s %12s %22s\n' "latency (Python handler, warm)" "samples" "p50 / p99 (ms)"
printf '%-52s %12s %22s\n' "SendMessage -> mapping -> handler start" "$MN" "$MP50 / $MP99"
printf '%-52s %12s %22s\n' "baseline: boto3 Invoke -> handler start" "$IN" "$IP50 / $IP99"
echo
printf '%-52s %10s %10s  %s\n' "target" "value" "goal" "result"
printf '%-52s %10s %10s  %s\n' "SQS -> Lambda delivery p50 (ms)" "$MP50" "< 5" "$(verdict "$MP50" "<=" 5)"
echo
echo "total time: ${ELAPSED}s"
exit 0
