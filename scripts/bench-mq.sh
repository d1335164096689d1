#!/usr/bin/env bash
# How close the MQ path comes to the transport's own ceiling, in one run.
#
#   scripts/bench-mq.sh [--seconds S] [--window W] [--channels C] [--threads T]
#                       [--prefetch K] [--encoding proto|json] [--sales N]
#
# (a) ceiling: a minimal publish -> consume -> reply -> ack loop with amiquip
#     (one client thread, one worker thread, W outstanding, tiny bodies);
# (b) the MQ path: one mq-worker (T consumers, prefetch K) running real
#     queries on a database of N sales (default 10,000), driven by mq::Client
#     (C lanes) with W outstanding calls;
# then the ratio (b)/(a). Both against the broker at AMQP_URL, on private
# queues that are deleted afterwards. Prints the machine load too: figures
# taken while the machine is busy are noisy; the ratio less so.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
RUN_DIR=${RUN_DIR:-run/bench-mq}

seconds=5 window=64 channels=1 threads="" prefetch=64 encoding=proto sales=10000
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --window) window=$2; shift 2 ;;
        --channels) channels=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --prefetch) prefetch=$2; shift 2 ;;
        --encoding) encoding=$2; shift 2 ;;
        --sales) sales=$2; shift 2 ;;
        -h|--help) usage ;;
        *) log "unknown option $1 (see --help)"; exit 2 ;;
    esac
done

build_release -p mq --bin mq-worker --example bench
build_release -p seeder --bin seeder
bench=$BIN_DIR/examples/bench

mkdir -p "$RUN_DIR"
db=$RUN_DIR/sales-$sales.db
seed_db "$db" "$sales"

queue=bench_mq_$$
worker_pid=""
cleanup() {
    [[ -n $worker_pid ]] && kill -TERM "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null
    "$bench" delete-queue "$queue" >/dev/null 2>&1 || true
}
trap cleanup EXIT

log "load before: $(uptime | sed 's/.*load/load/')"
log "(a) transport ceiling: window $window, $seconds s"
a=$("$bench" ceiling --seconds "$seconds" --window "$window")
echo "$a"

opts=(--prefetch "$prefetch")
[[ -n $threads ]] && opts+=(--threads "$threads")
RUST_LOG=info "$BIN_DIR/mq-worker" --db "$db" --queue "$queue" --id bench "${opts[@]}" \
    --stats-interval 0 >"$RUN_DIR/mq-worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 1 100); do
    kill -0 "$worker_pid" 2>/dev/null || { cat "$RUN_DIR/mq-worker.log" >&2; exit 1; }
    grep -q 'consumers attached' "$RUN_DIR/mq-worker.log" && break
    sleep 0.1
done
log "(b) MQ path: mq-worker ${threads:-(cores)} consumers, prefetch $prefetch; client $channels lanes, window $window, $encoding"
b=$("$bench" client --queue "$queue" --seconds "$seconds" --window "$window" \
    --channels "$channels" --encoding "$encoding")
echo "$b"
log "load after: $(uptime | sed 's/.*load/load/')"

rate() { sed -E 's/.*"rate":([0-9.]+).*/\1/' <<<"$1"; }
ra=$(rate "$a") rb=$(rate "$b")
awk -v a="$ra" -v b="$rb" 'BEGIN { printf "ceiling %.0f/s, MQ path %.0f/s: %.0f %% of the ceiling\n", a, b, 100 * b / a }'
