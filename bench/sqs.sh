#!/usr/bin/env bash
# Benchmark: durable SQS sends on nimbus (each acknowledged message committed to SQLite first).
# wrk as a keep-alive client posting AWS JSON 1.0 requests to the AWS endpoint:
#   single   SendMessage, one message per request, at 1 and at $CONC connections
#   batch    SendMessageBatch of 10 messages per request, at $CONC connections (messages/s)
# then ReceiveMessage + DeleteMessageBatch of 10 with boto3 (one client, one thread): messages/s.
# Target (PASS/MISS): at least 5,000 durable single sends/s at c=$CONC.
# Exits 0 whether the target is met or not; non-zero only if something failed to run.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_DURATION     seconds per measured wrk run (default 5)
#   BENCH_NO_BUILD=1   skip `cargo build`
#   BENCH_PYTHON       a python with boto3 (default: the test venv under the target dir)
# Load generator: wrk (Debian package; installed with apt-get when missing). Traffic: 127.0.0.1 only.
set -euo pipefail

DUR=${BENCH_DURATION:-5}
CONC=16
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
PY=${BENCH_PYTHON:-$TARGET/test-venv/bin/python}
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_load_tools

build -p nimbus --bin nimbus
NIMBUS=$TARGET/release/nimbus
[[ -x $NIMBUS ]] || die "missing $NIMBUS"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-sqsbench.XXXXXX")
mkdir -p "$WORK/app"
cat >"$WORK/app/template.yaml" <<'EOF'
Resources:
  Bench:
    Type: AWS::SQS::Queue
    Properties: {QueueName: bench}
EOF

OUT="$WORK/nimbus.log"
start_leader "$OUT" "$NIMBUS" up "$WORK/app/template.yaml" --aws-port 0 --state-dir "$WORK/state" --shutdown-grace 1
NB_PID=$LEADER
wait_line "$OUT" "$NB_PID" '^nimbus: ready' nimbus 30
EP=$(sed -n 's/^nimbus: AWS endpoint //p' "$OUT" | head -1)
QURL="$EP/123456789012/bench"

lua() { # file, action, body
    cat >"$1" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
wrk.headers["X-Amz-Target"] = "AmazonSQS.$2"
wrk.body = '$3'
EOF
}
# Bodies without quotes or backslashes: they pass through Lua's string syntax unchanged.
lua "$WORK/single.lua" SendMessage "{\"QueueUrl\":\"$QURL\",\"MessageBody\":\"order 42: one widget to Melbourne\"}"
ENTRIES=$(for i in $(seq 0 9); do printf '{"Id":"m%d","MessageBody":"order %d"}' "$i" "$i"; if ((i < 9)); then printf ','; fi; done)
lua "$WORK/batch.lua" SendMessageBatch "{\"QueueUrl\":\"$QURL\",\"Entries\":[$ENTRIES]}"

code=$(curl -sS -o "$WORK/check.json" -w '%{http_code}' -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: AmazonSQS.SendMessage' -d "$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$WORK/single.lua")" "$EP/") || die "SendMessage failed"
[[ $code == 200 ]] && grep -q MessageId "$WORK/check.json" || die "SendMessage answered $code: $(cat "$WORK/check.json")"

run() { # name connections script -> RPS P50 P99
    local t=1
    (($2 > 1)) && t=2
    wrk_measure "$1" "$DUR" "$WORK/wrk-$1.txt" -t"$t" -c"$2" -s "$3" "$EP/"
    log "$1: ${RPS} req/s, p50 ${P50} ms, p99 ${P99} ms (c=$2)"
}

run single-c1 1 "$WORK/single.lua"; S1=$RPS S1P50=$P50 S1P99=$P99
run single-c$CONC "$CONC" "$WORK/single.lua"; SN=$RPS SNP50=$P50 SNP99=$P99
run batch-c$CONC "$CONC" "$WORK/batch.lua"; BN=$((RPS * 10)) BNP50=$P50 BNP99=$P99

RECV="n/a"
if [[ -x $PY ]] && "$PY" -c 'import boto3' 2>/dev/null; then
    RECV=$("$PY" - "$EP" "$QURL" <<'EOF'
import sys, time, boto3
from botocore.config import Config
ep, url = sys.argv[1], sys.argv[2]
sqs = boto3.client("sqs", endpoint_url=ep, region_name="us-east-1", aws_access_key_id="x",
                   aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))
n, start = 0, time.time()
while time.time() - start < 5:
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    if not msgs:
        break
    sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
    n += len(msgs)
print(f"{n / (time.time() - start):.0f}")
EOF
)
else
    log "no python with boto3 at $PY (run scripts/test.sh once, or set BENCH_PYTHON): skipping receive"
fi
stop_leader "$NB_PID"

ELAPSED=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')
echo
echo "durable SQS on nimbus (SQLite WAL); wrk keep-alive POSTs; ${DUR}s per run; $(nproc) CPUs"
printf '%-44s %12s %22s\n' "metric" "messages/s" "p50 / p99 (ms)"
printf '%-44s %12s %22s\n' "SendMessage, c=1" "$S1" "$S1P50 / $S1P99"
printf '%-44s %12s %22s\n' "SendMessage, c=$CONC" "$SN" "$SNP50 / $SNP99"
printf '%-44s %12s %22s\n' "SendMessageBatch (10 per request), c=$CONC" "$BN" "$BNP50 / $BNP99"
printf '%-44s %12s %22s\n' "ReceiveMessage + DeleteMessageBatch, boto3" "$RECV" "-"
echo
printf '%-52s %10s %10s  %s\n' "target" "value" "goal" "result"
printf '%-52s %10s %10s  %s\n' "durable single sends/s, c=$CONC" "$SN" ">= 5000" "$(verdict "$SN" ">=" 5000)"
echo
echo "total time: ${ELAPSED}s"
exit 0
