#!/usr/bin/env bash
# Benchmark: S3 on nimbus (durable: each acknowledged object a published file and a committed
# row) against moto's server (PyPI; in memory), side by side in one run on the same machine,
# with `cp` of the same large file on the same disk as the floor.
# Client: crates/nimbus/examples/s3_load.rs (hyper, one kept-alive connection per task),
# path-style requests:
#   PutObject and GetObject of 4 KiB objects at c=1 and c=$CONC (objects/s, p50/p99)
#   PutObject and GetObject of one 256 MiB object, streamed (MiB/s), nimbus's peak RSS around it
# Targets (PASS/MISS): small objects at least 10x moto; the large object at least half of
# cp's speed; nimbus's peak memory grows by less than 64 MiB while it streams 256 MiB. A PUT
# hashes every byte with MD5 (S3's ETag), so md5sum's speed is printed too: it bounds a PUT
# below cp on most CPUs.
# Exits 0 whether the targets are met or not; non-zero only if something failed to run.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: ./target of the workspace)
#   BENCH_DURATION     seconds per measured run (default 5)
#   BENCH_NO_BUILD=1   skip `cargo build`
#   BENCH_PEERS        "moto" (default) or "" for nimbus alone
set -euo pipefail

DUR=${BENCH_DURATION:-5}
CONC=16
BIG_MIB=256
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
PEERS=${BENCH_PEERS-moto}
CACHE=$TARGET/bench-peers
T_START=$EPOCHREALTIME

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need curl curl
need pkill procps
need setsid util-linux

build -p nimbus --bin nimbus --example s3_load
NIMBUS=$TARGET/release/nimbus
LOAD=$TARGET/release/examples/s3_load
[[ -x $NIMBUS && -x $LOAD ]] || die "missing $NIMBUS or $LOAD"

mkdir -p "$CACHE"
if [[ $PEERS == *moto* && ! -x $CACHE/moto-venv/bin/moto_server ]]; then
    log "pip install moto[server,s3] -> $CACHE/moto-venv"
    python3 -m venv "$CACHE/moto-venv"
    "$CACHE/moto-venv/bin/pip" install -q 'moto[server,s3]' >&2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-s3bench.XXXXXX")
mkdir -p "$WORK/app"
cat >"$WORK/app/template.yaml" <<'EOF'
Resources:
  Bench:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: bench
EOF
head -c $((BIG_MIB << 20)) /dev/urandom >"$WORK/big.bin"

SIG="AWS4-HMAC-SHA256 Credential=bench/20261206/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000"
call() { # method url [curl args...]: dies unless 200
    local code m=$1 u=$2
    shift 2
    code=$(curl -sS -o "$WORK/answer" -w '%{http_code}' -X "$m" -H "Authorization: $SIG" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@" "$u") || die "$m $u failed"
    [[ $code == 200 ]] || die "$m $u answered $code: $(head -c 300 "$WORK/answer")"
}

rss_peak_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

declare -A R
measure() { # server endpoint pid
    local s=$1 ep=$2 pid=$3 c out
    call PUT "$ep/bench" # moto needs the bucket; nimbus has it from the template (200 again)
    head -c 4096 /dev/urandom >"$WORK/small.bin"
    call PUT "$ep/bench/small" --data-binary "@$WORK/small.bin"
    for c in 1 $CONC; do
        out=$(timeout $((DUR + 30)) "$LOAD" put "$ep/bench/obj" 4096 "$c" "$DUR") || die "$s put: the load client failed"
        read -r rps p50 p99 errs <<<"$out"
        ((errs == 0)) || die "$s put c=$c: $errs requests failed"
        R["$s put $c"]="$rps $p50 $p99"
        log "$s PutObject 4 KiB c=$c: ${rps}/s, p50 $p50 ms, p99 $p99 ms"
        out=$(timeout $((DUR + 30)) "$LOAD" get "$ep/bench/small" "$c" "$DUR") || die "$s get: the load client failed"
        read -r rps p50 p99 errs <<<"$out"
        ((errs == 0)) || die "$s get c=$c: $errs requests failed"
        R["$s get $c"]="$rps $p50 $p99"
        log "$s GetObject 4 KiB c=$c: ${rps}/s, p50 $p50 ms, p99 $p99 ms"
    done
    local before after mibs
    before=$(rss_peak_kib "$pid")
    read -r mibs _ <<<"$("$LOAD" put-file "$ep/bench/big" "$WORK/big.bin")" || die "$s: the large PUT failed"
    R["$s bigput"]=$mibs
    read -r mibs _ <<<"$("$LOAD" get-file "$ep/bench/big")" || die "$s: the large GET failed"
    R["$s bigget"]=$mibs
    after=$(rss_peak_kib "$pid")
    R["$s rss"]=$(((after - before) / 1024))
    log "$s ${BIG_MIB} MiB: PUT ${R["$s bigput"]} MiB/s, GET ${R["$s bigget"]} MiB/s, peak RSS +${R["$s rss"]} MiB"
}

# The floor: cp of the same file on the same disk (page cache warm, as the servers' is).
cp "$WORK/big.bin" "$WORK/warm.bin" && rm -f "$WORK/warm.bin"
CP=()
for i in 1 2 3; do
    t0=$EPOCHREALTIME
    cp "$WORK/big.bin" "$WORK/copy.bin"
    t1=$EPOCHREALTIME
    rm -f "$WORK/copy.bin"
    CP+=("$(awk -v a="$t0" -v b="$t1" -v m="$BIG_MIB" 'BEGIN {printf "%.1f", m / (b - a)}')")
done
CP_MIBS=$(printf '%s\n' "${CP[@]}" | median)
log "cp ${BIG_MIB} MiB on the same disk: ${CP_MIBS} MiB/s (median of ${CP[*]})"
# A PUT must also hash every byte: S3's ETag is the body's MD5. md5sum of the same file is that
# step's own floor on this CPU.
MD5=()
for i in 1 2 3; do
    t0=$EPOCHREALTIME
    md5sum "$WORK/big.bin" >/dev/null
    t1=$EPOCHREALTIME
    MD5+=("$(awk -v a="$t0" -v b="$t1" -v m="$BIG_MIB" 'BEGIN {printf "%.1f", m / (b - a)}')")
done
MD5_MIBS=$(printf '%s\n' "${MD5[@]}" | median)
log "md5sum ${BIG_MIB} MiB: ${MD5_MIBS} MiB/s (median of ${MD5[*]})"

nimbus_up "$NIMBUS" "$WORK/nimbus.log" 30 "$WORK/app/template.yaml" --aws-port 0 --api-port 0 --state-dir "$WORK/state" --shutdown-grace 1
measure nimbus "$EP" "$NB_PID"
stop_leader "$NB_PID"
SERVERS=(nimbus)

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
echo "S3, ${DUR}s per run; $(nproc) CPUs shared by client and server; nimbus durable, moto in memory"
printf '%-24s' "operation"
for s in "${SERVERS[@]}"; do printf ' %28s' "$s /s (p50/p99 ms)"; done
echo
for c in 1 $CONC; do
    for op in put get; do
        printf '%-24s' "${op^}Object 4 KiB c=$c"
        for s in "${SERVERS[@]}"; do
            read -r rps p50 p99 <<<"${R["$s $op $c"]}"
            printf ' %28s' "$rps ($p50/$p99)"
        done
        echo
    done
done
for op in bigput bigget; do
    printf '%-24s' "$([[ $op == bigput ]] && echo PutObject || echo GetObject) ${BIG_MIB} MiB"
    for s in "${SERVERS[@]}"; do printf ' %28s' "${R["$s $op"]} MiB/s"; done
    echo
done
printf '%-24s' "peak RSS growth"
for s in "${SERVERS[@]}"; do printf ' %28s' "${R["$s rss"]} MiB"; done
echo
printf '%-24s %28s\n' "cp ${BIG_MIB} MiB (floor)" "$CP_MIBS MiB/s"
printf '%-24s %28s\n' "md5sum ${BIG_MIB} MiB" "$MD5_MIBS MiB/s"

echo
printf '%-30s %10s %10s %8s  %s\n' "target" "nimbus" "reference" "ratio" "result"
if ((${#SERVERS[@]} > 1)); then
    for c in 1 $CONC; do
        for op in put get; do
            read -r mine _ <<<"${R["nimbus $op $c"]}"
            read -r theirs _ <<<"${R["moto $op $c"]}"
            ratio=$(awk -v a="$mine" -v b="$theirs" 'BEGIN {printf "%.1f", (b > 0) ? a / b : 0}')
            printf '%-30s %10s %10s %8s  %s\n' "${op^}Object 4 KiB c=$c >= 10x moto" "$mine" "$theirs" "${ratio}x" "$(verdict "$ratio" ">=" 10)"
        done
    done
fi
for op in bigput bigget; do
    mine=${R["nimbus $op"]}
    ratio=$(awk -v a="$mine" -v b="$CP_MIBS" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
    printf '%-30s %10s %10s %8s  %s\n' "${op/big/large } >= 0.5x cp" "$mine" "$CP_MIBS" "${ratio}x" "$(verdict "$ratio" ">=" 0.5)"
done
ratio=$(awk -v a="${R["nimbus bigput"]}" -v b="$MD5_MIBS" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
printf '%-30s %10s %10s %8s  %s\n' "large put / md5sum (info)" "${R["nimbus bigput"]}" "$MD5_MIBS" "${ratio}x" "-"
printf '%-30s %10s %10s %8s  %s\n' "RSS growth streaming < 64 MiB" "${R["nimbus rss"]}" "64" "" "$(verdict "${R["nimbus rss"]}" "<=" 63)"
echo "(${ELAPSED}s in all)"
