# Shared by the benchmark scripts: logging, servers started as session leaders and stopped with
# everything they spawned, cleanup on exit or interrupt, tool installation, wrk's units.
# Source it after `set -euo pipefail`.

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# Every server runs as the leader of its own session (setsid), so that it and whatever it
# spawned can be stopped by that id alone.
LEADERS=()
WORK=""
WRK_PID="" # a wrk running in the background, so that a signal is handled at once

stop_leader() { # pid: SIGTERM its group, wait up to 5 s, then SIGKILL anything left in its session
    local pid=$1 st i
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        st=$(ps -o stat= -p "$pid" 2>/dev/null) || break
        [[ $st == Z* ]] && break
        sleep 0.05
    done
    pkill -KILL -s "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local keep=() p
    for p in "${LEADERS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    LEADERS=("${keep[@]+"${keep[@]}"}")
}

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    if [[ -n $WRK_PID ]]; then kill -TERM "$WRK_PID" 2>/dev/null || true; wait "$WRK_PID" 2>/dev/null || true; fi
    for p in "${LEADERS[@]+"${LEADERS[@]}"}"; do stop_leader "$p"; done
    [[ -n $WORK && -d $WORK ]] && rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

start_leader() { # log file, command...: starts it in a new session; sets LEADER
    local out=$1
    shift
    setsid "$@" >"$out" 2>&1 </dev/null &
    LEADER=$!
    LEADERS+=("$LEADER")
}

need() { # command, Debian package: installs the package when the command is missing
    command -v "$1" >/dev/null 2>&1 && return
    log "installing $2 (apt-get)"
    if [[ -z ${APT_UPDATED:-} ]]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    command -v "$1" >/dev/null 2>&1 || die "$1 is missing and could not be installed"
}

need_load_tools() { # what every wrk benchmark needs
    need wrk wrk
    need curl curl
    need pkill procps
    need setsid util-linux
}

build() { # cargo build --release ARGS..., unless BENCH_NO_BUILD is set (needs ROOT and TARGET)
    [[ -n ${BENCH_NO_BUILD:-} ]] && return
    log "cargo build --release $* (target: $TARGET)"
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release "$@")
}

build_json_load() { # nimbus and the keep-alive AWS JSON load client in release; sets NIMBUS and LOAD
    build -p nimbus --bin nimbus --example aws_json_load
    NIMBUS=${BENCH_NIMBUS:-$TARGET/release/nimbus} # BENCH_NIMBUS: another build, for an A/B
    LOAD=$TARGET/release/examples/aws_json_load
    [[ -x $NIMBUS && -x $LOAD ]] || die "missing $NIMBUS or $LOAD"
}

nimbus_up() { # binary, log file, seconds to wait, args of `up`...: starts nimbus as a session
    # leader and waits until it is ready; sets NB_PID and EP (the AWS endpoint)
    local bin=$1 out=$2 secs=$3
    shift 3
    start_leader "$out" "$bin" up "$@"
    NB_PID=$LEADER
    wait_line "$out" "$NB_PID" '^nimbus: ready' nimbus "$secs"
    EP=$(sed -n 's/^nimbus: AWS endpoint //p' "$out" | head -1)
    [[ $EP == http://127.0.0.1:* ]] || { cat "$out" >&2; die "no AWS endpoint in nimbus output"; }
}

# The median of the numbers on stdin (the mean of the middle two for an even count), or n/a.
median() { sort -g | awk '{a[NR] = $1} END { if (NR == 0) { print "n/a"; exit }
    if (NR % 2) printf "%.2f", a[(NR + 1) / 2]; else printf "%.2f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

wait_line() { # log file, pid, ERE, what, [seconds, 15]: waits for a line of a server's output
    local out=$1 pid=$2 re=$3 what=$4 secs=${5:-15} i
    for ((i = 0; i < secs * 100; i++)); do
        grep -qE "$re" "$out" && return
        kill -0 "$pid" 2>/dev/null || { cat "$out" >&2; die "$what exited"; }
        sleep 0.01
    done
    cat "$out" >&2
    die "$what not ready in $secs s"
}

# wrk_measure name seconds output-file wrk-arguments...: runs wrk for that long (in the
# background, so that a signal is handled at once); dies if it fails or saw errors (unless
# WRK_TOLERATE=1: warm-ups, where cold starts may answer an error); sets P50 P99 (ms) RPS REQS
wrk_measure() {
    local name=$1 d=$2 out=$3
    shift 3
    timeout $((d + 15)) wrk -d"${d}s" --latency "$@" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || { WRK_PID=""; cat "$out" >&2; die "wrk ($name) failed"; }
    WRK_PID=""
    if [[ ${WRK_TOLERATE:-0} != 1 ]] && grep -qE 'Non-2xx|Socket errors' "$out"; then
        cat "$out" >&2
        # A script may say what the errors were (WRK_ON_ERROR names a function of its own).
        [[ -n ${WRK_ON_ERROR:-} ]] && "$WRK_ON_ERROR" >&2
        die "wrk ($name): errors"
    fi
    P50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    RPS=$(awk '$1 == "Requests/sec:" {printf "%.0f", $2}' "$out")
    REQS=$(awk '/requests in/ {print $1}' "$out")
    [[ -n $RPS && $REQS -gt 0 ]] || { cat "$out" >&2; die "wrk ($name): no result"; }
}

to_ms() { # wrk duration (e.g. 412.00us, 1.20ms, 1.01s) -> ms
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
    ok = (op == "<=") ? (v <= t) : (v >= t); print (ok ? "PASS" : "MISS") }'; }

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); } # wall clock in ms

# A port below the kernel's ephemeral range (so no client socket holds it) that no TCP socket uses.
port_free() { [[ -z $(ss -tanH "sport = :$1" 2>/dev/null) ]]; }
pick_port() {
    local lo p i
    lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    ((lo > 12000)) || lo=32768
    for ((i = 0; i < 50; i++)); do
        p=$((10000 + RANDOM % (lo - 10000)))
        port_free "$p" && { echo "$p"; return; }
    done
    die "no free loopback port found"
}

# AWS's Runtime Interface Emulator, from the aws-sam-cli wheel on PyPI (which ships it), into
# $CACHE once; sets RIE (its path) and SAM_VERSION. Needs CACHE, unzip and python3's pip.
ensure_rie() {
    RIE=$CACHE/aws-lambda-rie-x86_64
    mkdir -p "$CACHE"
    local wheel member
    wheel=$(ls -t "$CACHE"/aws_sam_cli-*.whl 2>/dev/null | head -1 || true)
    if [[ -z $wheel ]]; then
        log "pip download --no-deps aws-sam-cli -> $CACHE"
        python3 -m pip download --no-deps --quiet --dest "$CACHE" aws-sam-cli >&2
        wheel=$(ls -t "$CACHE"/aws_sam_cli-*.whl | head -1)
    fi
    if [[ ! -x $RIE || $wheel -nt $RIE ]]; then
        member=$(unzip -Z1 "$wheel" | grep -E '/aws-lambda-rie-x86_64$' | head -1)
        [[ -n $member ]] || die "no aws-lambda-rie-x86_64 in $wheel"
        unzip -o -j -q "$wheel" "$member" -d "$CACHE"
        chmod +x "$RIE"
        touch "$RIE"
    fi
    SAM_VERSION=$(basename "$wheel" | sed -E 's/^aws_sam_cli-([^-]+)-.*/\1/')
}

# start_rie tag command...: RIE on free loopback ports running the runtime `command` (with
# this shell's environment); sets RIE_PID RIE_URL RIE_OUT RIE_T0. Needs WORK and RIE.
start_rie() {
    local tag=$1 port api i
    shift
    RIE_TRIES=$((${RIE_TRIES:-0} + 1))
    port=$(pick_port)
    api=$(pick_port)
    [[ $api != "$port" ]] || api=$(pick_port)
    RIE_OUT="$WORK/rie-$tag.log"
    RIE_T0=$(now_ms)
    # RIE sets AWS_LAMBDA_FUNCTION_NAME/MEMORY_SIZE/VERSION itself (test_function, 3008, $LATEST).
    # --log-level error as `sam local` runs it; its per-invoke START/END/REPORT lines stay.
    start_leader "$RIE_OUT" "$RIE" --log-level error \
        --runtime-interface-emulator-address "127.0.0.1:$port" --runtime-api-address "127.0.0.1:$api" "$@"
    RIE_PID=$LEADER
    RIE_URL="http://127.0.0.1:$port/2015-03-31/functions/function/invocations"
    for ((i = 0; i < 1500; i++)); do # 15 s; GET / answers 404 once it listens, without invoking
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && { RIE_TRIES=0; return; }
        if ! kill -0 "$RIE_PID" 2>/dev/null; then # a port taken since we picked it: try others
            stop_leader "$RIE_PID"
            if grep -q 'address already in use' "$RIE_OUT" && ((RIE_TRIES < 3)); then start_rie "$tag" "$@"; RIE_TRIES=0; return; fi
            cat "$RIE_OUT" >&2
            die "RIE exited"
        fi
        sleep 0.01
    done
    cat "$RIE_OUT" >&2
    die "RIE not listening in 15 s"
}
