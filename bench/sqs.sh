#!/usr/bin/env bash
# Benchmark: durable SQS sends on nimbus (each acknowledged message committed to SQLite first).
# Clients, all on 127.0.0.1:
#   Rust     crates/nimbus/examples/aws_json_load.rs (hyper, one kept-alive connection per task)
#            posting AWS JSON 1.0: SendMessage at 1 and $CONC connections, SendMessageBatch of 10
#   boto3    send_message in 1 and $BOTO_THREADS threads (one client per thread)
# then ReceiveMessage + DeleteMessageBatch of 10 with boto3 (one client, one thread): messages/s.
# Peer, side by side in the same run with the same Rust client: fakecloud 0.51 (a Rust AWS
# emulator), in memory and with --storage-mode=persistent, when its binary is in the bench
# cache ($TARGET/bench-peers/fakecloud/bin, or BENCH_FAKECLOUD; BENCH_INSTALL_FAKECLOUD=1
# installs it there with `cargo install`, about 25 minutes on 2 cores).
# Targets (PASS/MISS): durable single sends at or above fakecloud in memory at c=1 and c=$CONC,
# at least 10x fakecloud persistent; without fakecloud, at least 5,000 sends/s at c=$CONC.
# Exits 0 whether the target is met or not; non-zero only if something failed to run.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_DURATION     seconds per measured run (default 5)
#   BENCH_NO_BUILD=1   skip `cargo build`
#   BENCH_PYTHON       a python with boto3 (default: the test venv under the target dir)
#   BENCH_FAKECLOUD    the fakecloud binary (default: $TARGET/bench-peers/fakecloud/bin/fakecloud)
set -euo pipefail

DUR=${BENCH_DURATION:-5}
CONC=16
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
PY=${BENCH_PYTHON:-$TARGET/test-venv/bin/python}
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BOTO_THREADS=8
need curl curl
need pkill procps
need setsid util-linux
[[ -x $PY ]] && "$PY" -c 'import boto3' 2>/dev/null || die "no python with boto3 at $PY (run scripts/test.sh once, or set BENCH_PYTHON)"

build_json_load

FAKECLOUD=${BENCH_FAKECLOUD:-$TARGET/bench-peers/fakecloud/bin/fakecloud}
if [[ ! -x $FAKECLOUD && ${BENCH_INSTALL_FAKECLOUD:-} == 1 ]]; then
    log "cargo install fakecloud 0.51.0 -> $TARGET/bench-peers/fakecloud (about 25 minutes)"
    nice -n 10 cargo install fakecloud --version 0.51.0 --locked --root "$TARGET/bench-peers/fakecloud" >&2 \
        || die "cannot install fakecloud"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-sqsbench.XXXXXX")
mkdir -p "$WORK/app"
cat >"$WORK/app/template.yaml" <<'EOF'
Resources:
  Bench:
    Type: AWS::SQS::Queue
    Properties: {QueueName: bench}
EOF

nimbus_up "$NIMBUS" "$WORK/nimbus.log" 30 "$WORK/app/template.yaml" --aws-port 0 --state-dir "$WORK/state" --shutdown-grace 1
QURL="$EP/123456789012/bench"

SINGLE="{\"QueueUrl\":\"$QURL\",\"MessageBody\":\"order 42: one widget to Melbourne\"}"
ENTRIES=$(for i in $(seq 0 9); do printf '{"Id":"m%d","MessageBody":"order %d"}' "$i" "$i"; if ((i < 9)); then printf ','; fi; done)
BATCH="{\"QueueUrl\":\"$QURL\",\"Entries\":[$ENTRIES]}"

code=$(curl -sS -o "$WORK/check.json" -w '%{http_code}' -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: AmazonSQS.SendMessage' -d "$SINGLE" "$EP/") || die "SendMessage failed"
[[ $code == 200 ]] && grep -q MessageId "$WORK/check.json" || die "SendMessage answered $code: $(cat "$WORK/check.json")"

run() { # name action body connections -> RPS P50 P99
    local out
    out=$(timeout $((DUR + 30)) "$LOAD" "$EP/" "AmazonSQS.$2" application/x-amz-json-1.0 "$3" "$4" "$DUR") || die "$1: the load client failed"
    read -r RPS P50 P99 ERRS <<<"$out"
    ((ERRS == 0)) || die "$1: $ERRS requests failed"
    log "$1: ${RPS} req/s, p50 ${P50} ms, p99 ${P99} ms (c=$4)"
}

run single-c1 SendMessage "$SINGLE" 1; S1=$RPS S1P50=$P50 S1P99=$P99
run single-c$CONC SendMessage "$SINGLE" "$CONC"; SN=$RPS SNP50=$P50 SNP99=$P99
run batch-c$CONC SendMessageBatch "$BATCH" "$CONC"; BN=$((RPS * 10)) BNP50=$P50 BNP99=$P99
COMMITS=$(curl -sS "$EP/metrics" | awk '/^nimbus_store_commits_total/ {c=$2} /^nimbus_store_writes_total/ {w=$2} END {printf "%.2f", (c > 0 ? w / c : 0)}')
log "writes per commit over the sends: $COMMITS"

# fakecloud, in memory and persistent: the same three runs against a queue of the same name.
fakecloud_runs() { # label, fakecloud args... -> sets FC_S1 FC_SN FC_BN
    local label=$1 port
    shift
    port=$(pick_port)
    start_leader "$WORK/fakecloud-$label.log" "$FAKECLOUD" --addr "127.0.0.1:$port" "$@"
    local fc=$LEADER i
    for ((i = 0; i < 100; i++)); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/_fakecloud/health" && break
        sleep 0.1
    done
    curl -sS -o /dev/null -H 'Content-Type: application/x-amz-json-1.0' -H 'X-Amz-Target: AmazonSQS.CreateQueue' \
        -d '{"QueueName":"bench"}' "http://127.0.0.1:$port/" || die "fakecloud ($label) did not start"
    local saved=$EP
    EP="http://127.0.0.1:$port"
    local url="$EP/123456789012/bench"
    run "fakecloud-$label-c1" SendMessage "${SINGLE//$QURL/$url}" 1; FC_S1=$RPS
    run "fakecloud-$label-c$CONC" SendMessage "${SINGLE//$QURL/$url}" "$CONC"; FC_SN=$RPS
    run "fakecloud-$label-batch" SendMessageBatch "${BATCH//$QURL/$url}" "$CONC"; FC_BN=$((RPS * 10))
    EP=$saved
    stop_leader "$fc"
}
HAVE_FC=0
if [[ -x $FAKECLOUD ]]; then
    HAVE_FC=1
    fakecloud_runs memory; M1=$FC_S1 MN=$FC_SN MB=$FC_BN
    mkdir -p "$WORK/fakecloud-data"
    fakecloud_runs persistent --storage-mode persistent --data-path "$WORK/fakecloud-data"; P1=$FC_S1 PN=$FC_SN PB=$FC_BN
else
    log "no fakecloud at $FAKECLOUD: the peer columns are skipped (BENCH_INSTALL_FAKECLOUD=1 installs it)"
fi

boto_send() { # threads -> sends/s
    "$PY" - "$EP" "$QURL" "$1" "$DUR" <<'EOF'
import sys, threading, time, boto3
from botocore.config import Config
ep, url, threads, dur = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
counts = [0] * threads
def work(i):
    sqs = boto3.session.Session().client("sqs", endpoint_url=ep, region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))
    sqs.send_message(QueueUrl=url, MessageBody="warm")
    end = time.time() + dur
    while time.time() < end:
        sqs.send_message(QueueUrl=url, MessageBody="order 42: one widget to Melbourne")
        counts[i] += 1
start = time.time()
ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
[t.start() for t in ts]
[t.join() for t in ts]
print(f"{sum(counts) / (time.time() - start):.0f}")
EOF
}
B1=$(boto_send 1) || die "boto3 sends failed"
log "boto3 send_message, 1 thread: $B1/s"
BT=$(boto_send "$BOTO_THREADS") || die "boto3 sends failed"
log "boto3 send_message, $BOTO_THREADS threads: $BT/s"

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
) || die "boto3 receive failed"
stop_leader "$NB_PID"

ELAPSED=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')
echo
echo "durable SQS on nimbus (SQLite WAL); ${DUR}s per run; $(nproc) CPUs, shared by client and server"
if ((HAVE_FC)); then
    printf '%-44s %12s %22s %14s %14s\n' "metric (messages/s)" "nimbus" "p50 / p99 (ms)" "fakecloud mem" "fakecloud disk"
    printf '%-44s %12s %22s %14s %14s\n' "SendMessage, Rust keep-alive, c=1" "$S1" "$S1P50 / $S1P99" "$M1" "$P1"
    printf '%-44s %12s %22s %14s %14s\n' "SendMessage, Rust keep-alive, c=$CONC" "$SN" "$SNP50 / $SNP99" "$MN" "$PN"
    printf '%-44s %12s %22s %14s %14s\n' "SendMessageBatch (10/request), Rust, c=$CONC" "$BN" "$BNP50 / $BNP99" "$MB" "$PB"
else
    printf '%-44s %12s %22s\n' "metric" "messages/s" "p50 / p99 (ms)"
    printf '%-44s %12s %22s\n' "SendMessage, Rust keep-alive, c=1" "$S1" "$S1P50 / $S1P99"
    printf '%-44s %12s %22s\n' "SendMessage, Rust keep-alive, c=$CONC" "$SN" "$SNP50 / $SNP99"
    printf '%-44s %12s %22s\n' "SendMessageBatch (10/request), Rust, c=$CONC" "$BN" "$BNP50 / $BNP99"
fi
printf '%-44s %12s %22s\n' "send_message, boto3, 1 thread" "$B1" "-"
printf '%-44s %12s %22s\n' "send_message, boto3, $BOTO_THREADS threads" "$BT" "-"
printf '%-44s %12s %22s\n' "ReceiveMessage + DeleteMessageBatch, boto3" "$RECV" "-"
echo
printf '%-52s %10s %10s  %s\n' "target" "value" "goal" "result"
if ((HAVE_FC)); then
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
    printf '%-52s %10s %10s  %s\n' "sends c=1, nimbus / fakecloud in memory" "$(ratio "$S1" "$M1")" ">= 1.00" "$(verdict "$(ratio "$S1" "$M1")" ">=" 1)"
    printf '%-52s %10s %10s  %s\n' "sends c=$CONC, nimbus / fakecloud in memory" "$(ratio "$SN" "$MN")" ">= 1.00" "$(verdict "$(ratio "$SN" "$MN")" ">=" 1)"
    printf '%-52s %10s %10s  %s\n' "sends c=$CONC, nimbus / fakecloud persistent" "$(ratio "$SN" "$PN")" ">= 10" "$(verdict "$(ratio "$SN" "$PN")" ">=" 10)"
else
    printf '%-52s %10s %10s  %s\n' "durable single sends/s, Rust client, c=$CONC" "$SN" ">= 5000" "$(verdict "$SN" ">=" 5000)"
fi
echo "writes per commit during the nimbus send runs (group commit): $COMMITS"
echo
echo "total time: ${ELAPSED}s"
exit 0
