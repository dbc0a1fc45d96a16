#!/usr/bin/env bash
# Benchmark: DynamoDB on nimbus (durable: every acknowledged write committed to SQLite first)
# against two peers that install here, side by side in one run on the same machine:
#   dynalite     (npm; LevelDB in memory here, as its default)
#   moto server  (PyPI; in memory)
# Clients, all on 127.0.0.1:
#   Rust    crates/nimbus/examples/aws_json_load.rs (hyper, one kept-alive connection per task)
#           posting AWS JSON 1.0: ListTables (the protocol's floor: no item behind it),
#           PutItem, GetItem, Query of a 100-item page, at c=1 and c=$CONC
#   boto3   put_item and get_item in one thread (one client)
# nimbus's own CPU per operation (user + system, from /proc/PID/stat) is printed for each run.
# Target (PASS/MISS): every Rust-client throughput at least 10x the better peer's.
# Exits 0 whether the targets are met or not; non-zero only if something failed to run.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_DURATION     seconds per measured run (default 5)
#   BENCH_NO_BUILD=1   skip `cargo build`
#   BENCH_PYTHON       a python with boto3 (default: the test venv under the target dir)
#   BENCH_PEERS        which peers to run (default "dynalite moto")
set -euo pipefail

DUR=${BENCH_DURATION:-5}
CONC=16
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
PY=${BENCH_PYTHON:-$TARGET/test-venv/bin/python}
PEERS=${BENCH_PEERS:-dynalite moto}
CACHE=$TARGET/bench-peers
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need curl curl
need pkill procps
need setsid util-linux
[[ -x $PY ]] && "$PY" -c 'import boto3' 2>/dev/null || die "no python with boto3 at $PY (run scripts/test.sh once, or set BENCH_PYTHON)"

build_json_load

# The peers, installed once under the target directory.
mkdir -p "$CACHE"
if [[ $PEERS == *dynalite* && ! -x $CACHE/dynalite/node_modules/.bin/dynalite ]]; then
    need npm npm
    log "npm install dynalite@3 -> $CACHE/dynalite"
    mkdir -p "$CACHE/dynalite"
    (cd "$CACHE/dynalite" && npm install --no-audit --no-fund --loglevel=error dynalite@3 >&2)
fi
if [[ $PEERS == *moto* && ! -x $CACHE/moto-venv/bin/moto_server ]]; then
    log "pip install moto[server,dynamodb] -> $CACHE/moto-venv"
    python3 -m venv "$CACHE/moto-venv"
    "$CACHE/moto-venv/bin/pip" install -q 'moto[server,dynamodb]' >&2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-ddbbench.XXXXXX")
mkdir -p "$WORK/app"
cat >"$WORK/app/template.yaml" <<'EOF'
Resources:
  Placeholder:
    Type: AWS::SQS::Queue
EOF

CT=application/x-amz-json-1.0
call() { # endpoint action body: one request, the answer on stdout; dies unless 200
    local code
    code=$(curl -sS -o "$WORK/answer.json" -w '%{http_code}' -H "Content-Type: $CT" \
        -H "X-Amz-Target: DynamoDB_20120810.$2" -H "X-Amz-Date: 20261206T000000Z" \
        -H "Authorization: AWS4-HMAC-SHA256 Credential=bench/20261206/us-east-1/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000" \
        -d "$3" "$1/") || die "$2 failed"
    [[ $code == 200 ]] || die "$2 answered $code: $(cat "$WORK/answer.json")"
}

ITEM='{"pk":{"S":"car#0"},"sk":{"N":"SK"},"make":{"S":"Tesla"},"model":{"S":"Model 3"},"year":{"N":"2022"},"price":{"N":"35000.50"},"tags":{"SS":["ev","sedan"]}}'
put_body() { echo "{\"TableName\":\"bench\",\"Item\":${ITEM/SK/$1}}"; }
GET='{"TableName":"bench","Key":{"pk":{"S":"car#0"},"sk":{"N":"7"}}}'
QUERY='{"TableName":"bench","KeyConditionExpression":"pk = :p","ExpressionAttributeValues":{":p":{"S":"car#0"}},"Limit":100}'

setup() { # endpoint: the table and 200 items in one partition
    call "$1" CreateTable '{"TableName":"bench","BillingMode":"PAY_PER_REQUEST","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"N"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}]}'
    local i
    for ((i = 0; i < 30; i++)); do # dynalite creates tables asynchronously
        call "$1" DescribeTable '{"TableName":"bench"}'
        grep -q '"ACTIVE"' "$WORK/answer.json" && break
        sleep 0.2
    done
    for ((i = 0; i < 200; i++)); do call "$1" PutItem "$(put_body "$i")"; done
    call "$1" Query "$QUERY"
    grep -qE '"Count": ?100[,}]' "$WORK/answer.json" || die "the query page does not hold 100 items: $(head -c 300 "$WORK/answer.json")"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

run() { # server-name endpoint pid op body connections -> RPS P50 P99 (and CPU_US per op)
    local out t0 t1
    t0=$(cpu_ticks "$3")
    out=$(timeout $((DUR + 30)) "$LOAD" "$2/" "DynamoDB_20120810.$4" "$CT" "$5" "$6" "$DUR") || die "$1 $4: the load client failed"
    t1=$(cpu_ticks "$3")
    read -r RPS P50 P99 ERRS <<<"$out"
    ((ERRS == 0)) || die "$1 $4: $ERRS requests failed"
    CPU_US=$(awk -v d=$((t1 - t0)) -v t="$TICK" -v r="$RPS" -v s="$DUR" 'BEGIN { n = r * s; printf "%.1f", (n > 0) ? d / t * 1e6 / n : 0 }')
    log "$1 $4 c=$6: ${RPS}/s, p50 ${P50} ms, p99 ${P99} ms, server CPU ${CPU_US} us/op"
}

boto() { # endpoint -> "put/s get/s" with boto3, one thread
    "$PY" - "$1" "$DUR" <<'EOF'
import sys, time, boto3
from botocore.config import Config
ep, dur = sys.argv[1], float(sys.argv[2])
c = boto3.client("dynamodb", endpoint_url=ep, region_name="us-east-1", aws_access_key_id="x",
                 aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))
item = {"pk": {"S": "boto"}, "sk": {"N": "1"}, "make": {"S": "Tesla"}, "year": {"N": "2022"}}
rates = []
for op in ("put", "get"):
    n, end = 0, time.time() + dur
    start = time.time()
    while time.time() < end:
        if op == "put":
            c.put_item(TableName="bench", Item=item)
        else:
            c.get_item(TableName="bench", Key={"pk": {"S": "boto"}, "sk": {"N": "1"}})
        n += 1
    rates.append(f"{n / (time.time() - start):.0f}")
print(" ".join(rates))
EOF
}

declare -A R # "<server> <op> <c>" -> "rps p50 p99 cpu"
measure() { # server endpoint pid
    local op c
    setup "$2"
    for c in 1 $CONC; do
        # The floor: the same protocol path with no table behind it.
        run "$1" "$2" "$3" ListTables '{"Limit":1}' "$c"; R["$1 ListTables $c"]="$RPS $P50 $P99 $CPU_US"
        run "$1" "$2" "$3" PutItem "$(put_body 1000)" "$c"; R["$1 PutItem $c"]="$RPS $P50 $P99 $CPU_US"
        run "$1" "$2" "$3" GetItem "$GET" "$c"; R["$1 GetItem $c"]="$RPS $P50 $P99 $CPU_US"
        run "$1" "$2" "$3" Query "$QUERY" "$c"; R["$1 Query $c"]="$RPS $P50 $P99 $CPU_US"
    done
    read -r BP BG <<<"$(boto "$2")" || die "$1: boto3 failed"
    R["$1 boto put"]=$BP
    R["$1 boto get"]=$BG
    log "$1 boto3 put_item ${BP}/s, get_item ${BG}/s"
}

nimbus_up "$NIMBUS" "$WORK/nimbus.log" 30 "$WORK/app/template.yaml" --aws-port 0 --api-port 0 --state-dir "$WORK/state" --shutdown-grace 1
measure nimbus "$EP" "$NB_PID"
stop_leader "$NB_PID"
SERVERS=(nimbus)

if [[ $PEERS == *dynalite* ]]; then
    port=$(pick_port)
    start_leader "$WORK/dynalite.log" node "$CACHE/dynalite/node_modules/.bin/dynalite" --port "$port" --createTableMs 0 --deleteTableMs 0 --updateTableMs 0
    PID=$LEADER
    for ((i = 0; i < 500; i++)); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.02; done
    measure dynalite "http://127.0.0.1:$port" "$PID"
    stop_leader "$PID"
    SERVERS+=(dynalite)
fi
if [[ $PEERS == *moto* ]]; then
    port=$(pick_port)
    start_leader "$WORK/moto.log" "$CACHE/moto-venv/bin/moto_server" -H 127.0.0.1 -p "$port"
    PID=$LEADER
    for ((i = 0; i < 1500; i++)); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.02; done
    measure moto "http://127.0.0.1:$port" "$PID"
    stop_leader "$PID"
    SERVERS+=(moto)
fi

ELAPSED=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')
echo
echo "DynamoDB, ${DUR}s per run; $(nproc) CPUs shared by client and server; nimbus durable, peers in memory"
printf '%-22s' "operation"
for s in "${SERVERS[@]}"; do printf ' %26s' "$s /s (p50/p99 ms)"; done
printf ' %14s\n' "nimbus CPU/op"
for c in 1 $CONC; do
    for op in ListTables PutItem GetItem Query; do
        printf '%-22s' "$op c=$c"
        for s in "${SERVERS[@]}"; do
            read -r rps p50 p99 _ <<<"${R["$s $op $c"]}"
            printf ' %26s' "$rps ($p50/$p99)"
        done
        read -r _ _ _ cpu <<<"${R["nimbus $op $c"]}"
        printf ' %12s us\n' "$cpu"
    done
done
for op in put get; do
    printf '%-22s' "boto3 ${op}_item c=1"
    for s in "${SERVERS[@]}"; do printf ' %26s' "${R["$s boto $op"]}"; done
    echo
done
if ((${#SERVERS[@]} > 1)); then
    echo
    printf '%-30s %10s %10s %8s  %s\n' "target (Rust client)" "nimbus" "best peer" "ratio" "result"
    for c in 1 $CONC; do
        for op in PutItem GetItem Query; do
            read -r mine _ <<<"${R["nimbus $op $c"]}"
            best=0
            for s in "${SERVERS[@]:1}"; do
                read -r theirs _ <<<"${R["$s $op $c"]}"
                ((theirs > best)) && best=$theirs
            done
            ratio=$(awk -v a="$mine" -v b="$best" 'BEGIN { printf "%.1f", (b > 0) ? a / b : 0 }')
            printf '%-30s %10s %10s %8s  %s\n' "$op c=$c >= 10x" "$mine" "$best" "${ratio}x" "$(verdict "$ratio" ">=" 10)"
        done
    done
fi
echo
echo "total time: ${ELAPSED}s"
exit 0
