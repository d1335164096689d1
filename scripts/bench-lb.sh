#!/usr/bin/env bash
# Measures what the LB hop costs: the highest rate of GetSalesMetrics calls
# with p99 < 10 ms, and the CPU time per call of each process, for
#
#   1. the client calling one worker directly,
#   2. the client calling the LB in front of that one worker,
#   3. the client calling two workers directly (round-robin),
#   4. the client calling the LB in front of the two workers,
#
# on a 10k-sales database (seeded under $RUN_DIR if missing). The client is
# the open-loop benchmark lb/examples/bench.rs. Everything runs on this
# machine, so the figures depend on its cores and load: the machine's load
# average is printed with them, and the ratios (same run, same machine) are
# what to compare. Goal: through the LB, at least 75 % of the direct
# throughput.
#
#   scripts/bench-lb.sh [extra bench options, e.g. --seconds 5 --rates 500,1000]
#
# Environment: RUN_DIR (default ./run/bench-lb), BASE_PORT (default 50151:
# the LB; workers on the next ports), WORKER_THREADS, CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_DIR=${RUN_DIR:-run/bench-lb}
BASE_PORT=${BASE_PORT:-50151}
BIN_DIR=${CARGO_TARGET_DIR:-target}/release
LB_PORT=$BASE_PORT
W1_PORT=$((BASE_PORT + 1))
W2_PORT=$((BASE_PORT + 2))

log() { printf '[bench-lb] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; }

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
    local i
    for ((i = 0; i < 100; i++)); do port_open "$1" && return 0; sleep 0.1; done
    die "nothing listens on $1 (see $RUN_DIR/*.log)"
}
# Waits until the LB log shows $1 workers up.
wait_up() {
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(grep -c ' up: ' "$RUN_DIR/lb.log" || true) -ge $1 ]] && return 0
        sleep 0.1
    done
    die "the LB did not report $1 workers up (see $RUN_DIR/lb.log)"
}

log "building release binaries"
cargo build --release --quiet --bin lb --bin worker --bin seeder
cargo build --release --quiet -p lb --example bench
BENCH=$BIN_DIR/examples/bench
mkdir -p "$RUN_DIR"
DB=$RUN_DIR/bench.db
[[ -f "$DB" ]] || "$BIN_DIR/seeder" --db "$DB" --sales 10000 --seed 1

threads=()
[[ -n "${WORKER_THREADS:-}" ]] && threads=(--threads "$WORKER_THREADS")
start_worker() { # id port
    RUST_LOG=warn "$BIN_DIR/worker" --listen "127.0.0.1:$2" --db "$DB" --id "$1" "${threads[@]}" \
        >"$RUN_DIR/$1.log" 2>&1 &
    PIDS+=($!)
    wait_port "$2"
}
start_lb() { # workers
    "$BIN_DIR/lb" --listen "127.0.0.1:$LB_PORT" --workers "$1" --stats-interval 60s \
        >"$RUN_DIR/lb.log" 2>&1 &
    LB_PID=$!
    PIDS+=("$LB_PID")
    wait_port "$LB_PORT"
}
stop_lb() {
    kill -TERM "$LB_PID"
    wait "$LB_PID" || true
}

# Runs the bench client and prints its lines prefixed with the case name;
# leaves the max rate in $MAX.
bench() { # name bench-args...
    local name=$1 out
    shift
    log "case: $name (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    out=$("$BENCH" "$@" "${EXTRA[@]}")
    sed "s/^/$name: /" <<<"$out"
    MAX=$(sed -n 's/^max_rate=//p' <<<"$out")
}
EXTRA=("$@")

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
start_worker w1 "$W1_PORT"
W1_PID=${PIDS[-1]}
bench direct-1-worker --target "127.0.0.1:$W1_PORT" --pid "worker=$W1_PID"
DIRECT=$MAX

start_lb "127.0.0.1:$W1_PORT"
wait_up 1
bench lb-1-worker --target "127.0.0.1:$LB_PORT" --pid "lb=$LB_PID" --pid "worker=$W1_PID"
LB1=$MAX
stop_lb

start_worker w2 "$W2_PORT"
W2_PID=${PIDS[-1]}
bench direct-2-workers --target "127.0.0.1:$W1_PORT" --target "127.0.0.1:$W2_PORT" \
    --conns 2 --pid "w1=$W1_PID" --pid "w2=$W2_PID"
DIRECT2=$MAX

start_lb "127.0.0.1:$W1_PORT,127.0.0.1:$W2_PORT"
wait_up 2
bench lb-2-workers --target "127.0.0.1:$LB_PORT" --pid "lb=$LB_PID" --pid "w1=$W1_PID" --pid "w2=$W2_PID"
LB2=$MAX

echo "summary: max calls/s with p99 < 10 ms: direct-1-worker=$DIRECT lb-1-worker=$LB1" \
    "direct-2-workers=$DIRECT2 lb-2-workers=$LB2"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f %%", 100 * a / b; else print "n/a" }'; }
echo "summary: through the LB, share of direct throughput: 1 worker $(ratio "$LB1" "$DIRECT")," \
    "2 workers $(ratio "$LB2" "$DIRECT2") (goal: at least 75 %)"
echo "machine load after: $(cut -d' ' -f1-3 /proc/loadavg)"
