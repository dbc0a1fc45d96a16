#!/usr/bin/env bash
# Benchmark: SNS delivery to an HTTP subscription, end to end. A keep-alive Rust client
# (crates/nimbus/examples/aws_json_load.rs) publishes to a topic for BENCH_DURATION seconds at
# $CONC connections; nimbus makes each publish a durable delivery job, signs the message
# (SHA1withRSA) and POSTs it to a local sink (Python, keep-alive, counting); a second run with
# RawMessageDelivery (no signature) prices the signing. Printed: the publish rate, the delivery
# rate (every accepted publish delivered, measured to the last POST), and the physical floor of
# this machine: the same client POSTing straight to the sink.
# No peer serves HTTP subscriptions with retries and signatures; the floor is the comparison.
# Exits 0 whether or not the figures look good; non-zero only if something failed to run.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_DURATION     seconds of publishing (default 4)
#   BENCH_NO_BUILD=1   skip `cargo build`
# Traffic: 127.0.0.1 only.
set -euo pipefail

DUR=${BENCH_DURATION:-4}
CONC=16
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need curl curl
need setsid util-linux
need python3 python3
build_json_load

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-sns-http.XXXXXX")
mkdir -p "$WORK/app"

# The sink: answers 200 with keep-alive, confirms subscriptions by visiting their SubscribeURL,
# and reports `count first_ms last_ms` of the notifications it received on GET /count.
cat >"$WORK/sink.py" <<'EOF'
import json, sys, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
lock = threading.Lock()
seen = {"count": 0, "first": 0, "last": 0}
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        kind = self.headers.get("x-amz-sns-message-type")
        if self.path == "/reset":
            with lock:
                seen.update(count=0, first=0, last=0)
        elif kind == "SubscriptionConfirmation":
            url = json.loads(body)["SubscribeURL"]
            threading.Thread(target=lambda: urllib.request.urlopen(url).read()).start()
        elif kind == "Notification":
            now = time.time() * 1000
            with lock:
                seen["count"] += 1
                seen["first"] = seen["first"] or now
                seen["last"] = now
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
    def do_GET(self):
        with lock:
            text = f'{seen["count"]} {seen["first"]:.0f} {seen["last"]:.0f}'.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)
    def log_message(self, *a):
        pass
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
SINK_PORT=$(pick_port)
start_leader "$WORK/sink.log" python3 "$WORK/sink.py" "$SINK_PORT"
SINK=$LEADER
for ((i = 0; i < 500; i++)); do curl -s -o /dev/null "http://127.0.0.1:$SINK_PORT/count" && break; sleep 0.02; done
count() { curl -s "http://127.0.0.1:$SINK_PORT/count"; }

# The floor: the same client and connections POSTing straight to the sink.
out=$(timeout $((DUR + 30)) "$LOAD" "http://127.0.0.1:$SINK_PORT/direct" "" text/plain '{"Type":"Notification"}' "$CONC" "$DUR") || die "the direct POSTs failed"
read -r floor _ _ ferrs <<<"$out"
log "direct POSTs to the sink, c=$CONC: $floor/s ($ferrs errors)"

declare -A R
# One run per delivery shape: the signed SNS JSON (SHA1withRSA per message), and the bare
# message (RawMessageDelivery: no signature), which prices the signing.
measure() { # label, RawMessageDelivery
    rm -rf "$WORK/state" "$WORK/app"
    mkdir -p "$WORK/app"
    curl -s -X POST "http://127.0.0.1:$SINK_PORT/reset" >/dev/null
    cat >"$WORK/app/template.yaml" <<EOF
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties: {TopicName: bench}
  Hook:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref Topic
      Protocol: http
      Endpoint: http://127.0.0.1:$SINK_PORT/hook
      RawMessageDelivery: $2
EOF
    nimbus_up "$NIMBUS" "$WORK/nimbus.log" 30 "$WORK/app/template.yaml" --aws-port 0 --api-port 0 --state-dir "$WORK/state" --shutdown-grace 1
    # Wait for the sink to confirm the template's subscription.
    for ((i = 0; i < 500; i++)); do
        curl -s -X POST -H 'content-type: application/x-www-form-urlencoded' \
            --data "Action=ListSubscriptionsByTopic&TopicArn=arn:aws:sns:us-east-1:123456789012:bench" "$EP/" |
            grep -q 'PendingConfirmation' || break
        sleep 0.02
    done
    local t0 out prps p50 p99 perrs prev got first last secs
    t0=$(now_ms)
    out=$(AWS_LOAD_SERVICE=sns timeout $((DUR + 30)) "$LOAD" "$EP/" "" application/x-www-form-urlencoded \
        "Action=Publish&Version=2010-03-31&TopicArn=arn:aws:sns:us-east-1:123456789012:bench&Message=order+42+placed" "$CONC" "$DUR") ||
        die "the publishes failed"
    read -r prps p50 p99 perrs <<<"$out"
    ((perrs == 0)) || die "$perrs publishes failed"
    log "$1: publish c=$CONC: $prps/s, p50 $p50 ms, p99 $p99 ms"
    # Delivered when the sink's count stops moving for a second (every accepted publish is a job).
    prev=-1
    for ((i = 0; i < 600; i++)); do
        read -r got first last <<<"$(count)"
        [[ $got == "$prev" ]] && break
        prev=$got
        sleep 1
    done
    stop_leader "$NB_PID"
    secs=$(awk -v a="$t0" -v b="$last" 'BEGIN { printf "%.2f", (b - a) / 1000 }')
    R["$1 publish"]=$prps
    R["$1 delivered"]=$got
    R["$1 secs"]=$secs
    R["$1 rate"]=$(awk -v n="$got" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
}
measure signed false
measure raw true
stop_leader "$SINK"

echo
echo "SNS to an HTTP subscription (durable jobs), c=$CONC, ${DUR}s of publishing; $(nproc) CPUs shared by client, nimbus and sink"
printf '%-44s %12s %12s\n' "figure" "signed" "raw"
for f in "publishes accepted per second:publish" "notifications delivered:delivered" \
    "seconds, first publish to last POST:secs" "deliveries per second, end to end:rate"; do
    printf '%-44s %12s %12s\n' "${f%%:*}" "${R["signed ${f##*:}"]}" "${R["raw ${f##*:}"]}"
done
printf '%-44s %12s\n' "floor: direct POSTs to the sink per second" "$floor"
printf '%-44s %12s %12s\n' "deliveries / floor" \
    "$(awk -v a="${R["signed rate"]}" -v b="$floor" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" \
    "$(awk -v a="${R["raw rate"]}" -v b="$floor" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
echo "total time: $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')s"
exit 0
