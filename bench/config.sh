#!/usr/bin/env bash
# Benchmark: SNS Publish fanned out to an SQS subscription, Parameter Store GetParameter and
# Secrets Manager GetSecretValue, on nimbus (durable: a publish's delivery is in the queue
# before the answer) and on moto's server (PyPI, in memory), side by side in one run with the
# same keep-alive Rust client (crates/nimbus/examples/aws_json_load.rs) at 1 and $CONC
# connections. SNS speaks the query protocol (form-encoded), the other two AWS JSON 1.1.
# Target (PASS/MISS): every figure at least 10x moto's.
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
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
PY=${BENCH_PYTHON:-$TARGET/test-venv/bin/python}
CACHE=$TARGET/bench-peers
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need curl curl
need setsid util-linux
[[ -x $PY ]] && "$PY" -c 'import boto3' 2>/dev/null || die "no python with boto3 at $PY (run scripts/test.sh once, or set BENCH_PYTHON)"

build_json_load

if ! "$CACHE/moto-venv/bin/python" -c 'import moto.ssm, moto.secretsmanager, moto.sns, yaml' 2>/dev/null; then
    log "pip install moto[server,ssm,secretsmanager,sns,sqs] -> $CACHE/moto-venv"
    [[ -x $CACHE/moto-venv/bin/pip ]] || python3 -m venv "$CACHE/moto-venv"
    "$CACHE/moto-venv/bin/pip" install -q 'moto[server,ssm,secretsmanager,sns,sqs]' >&2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-config.XXXXXX")
mkdir -p "$WORK/app"
cat >"$WORK/app/template.yaml" <<'EOF'
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: bench
      Subscription:
        - {Protocol: sqs, Endpoint: !GetAtt Sink.Arn}
  Sink:
    Type: AWS::SQS::Queue
    Properties: {QueueName: sink, MessageRetentionPeriod: 3600}
  Param:
    Type: AWS::SSM::Parameter
    Properties: {Name: /bench/param, Type: String, Value: "https://slow.example.com/notify"}
  Secret:
    Type: AWS::SecretsManager::Secret
    Properties: {Name: bench/secret, SecretString: "api-key-0123456789"}
EOF

declare -A R
run() { # server, label, service, target, content type, body, connections
    local out rps p50 p99 errs
    out=$(AWS_LOAD_SERVICE=$3 timeout $((DUR + 30)) "$LOAD" "$EP/" "$4" "$5" "$6" "$7" "$DUR") || die "$1 $2: the load client failed"
    read -r rps p50 p99 errs <<<"$out"
    ((errs == 0)) || die "$1 $2: $errs requests failed"
    R["$1 $2 c$7"]="$rps"
    log "$1 $2 c=$7: $rps/s, p50 $p50 ms, p99 $p99 ms"
}
measure() { # server
    local topic="arn:aws:sns:us-east-1:123456789012:bench"
    for c in 1 "$CONC"; do
        run "$1" publish sns "" application/x-www-form-urlencoded \
            "Action=Publish&Version=2010-03-31&TopicArn=$topic&Message=order+42+placed" "$c"
        run "$1" get-parameter ssm AmazonSSM.GetParameter application/x-amz-json-1.1 '{"Name":"/bench/param"}' "$c"
        run "$1" get-secret secretsmanager secretsmanager.GetSecretValue application/x-amz-json-1.1 '{"SecretId":"bench/secret"}' "$c"
    done
}
# Every publish reached the queue: the end-to-end check of the SNS figures.
sink_depth() {
    "$PY" - "$EP" <<'EOF'
import sys, boto3
sqs = boto3.client("sqs", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
url = sqs.get_queue_url(QueueName="sink")["QueueUrl"]
print(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])
EOF
}

nimbus_up "$NIMBUS" "$WORK/nimbus.log" 30 "$WORK/app/template.yaml" --aws-port 0 --api-port 0 --state-dir "$WORK/state" --shutdown-grace 1
measure nimbus
log "nimbus: $(sink_depth) messages in the subscribed queue"
stop_leader "$NB_PID"

port=$(pick_port)
start_leader "$WORK/moto.log" "$CACHE/moto-venv/bin/moto_server" -H 127.0.0.1 -p "$port"
MOTO=$LEADER
for ((i = 0; i < 1500; i++)); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.02; done
EP="http://127.0.0.1:$port"
"$PY" - "$EP" <<'EOF' || die "cannot create moto's topic, queue, parameter and secret"
import sys, boto3
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
sqs, sns = boto3.client("sqs", **kw), boto3.client("sns", **kw)
sqs.create_queue(QueueName="sink")
topic = sns.create_topic(Name="bench")["TopicArn"]
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:123456789012:sink")
boto3.client("ssm", **kw).put_parameter(Name="/bench/param", Value="https://slow.example.com/notify", Type="String")
boto3.client("secretsmanager", **kw).create_secret(Name="bench/secret", SecretString="api-key-0123456789")
EOF
measure moto
log "moto: $(sink_depth) messages in the subscribed queue"
stop_leader "$MOTO"

echo
echo "SNS Publish (to an SQS subscription), GetParameter, GetSecretValue; ${DUR}s per run; $(nproc) CPUs shared by client and server"
printf '%-34s %12s %12s %8s  %s\n' "operation (requests/s)" "nimbus" "moto" "ratio" "target >= 10x"
for op in publish get-parameter get-secret; do
    for c in 1 "$CONC"; do
        n=${R["nimbus $op c$c"]} m=${R["moto $op c$c"]}
        ratio=$(awk -v a="$n" -v b="$m" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
        printf '%-34s %12s %12s %8s  %s\n' "$op, c=$c" "$n" "$m" "$ratio" "$(verdict "$ratio" ">=" 10)"
    done
done
echo "total time: $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')s"
exit 0
