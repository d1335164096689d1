#!/usr/bin/env bash
# Measures our gRPC stack on its own:
#
#   1. max calls/s of GetSalesMetrics against ONE worker on a 10k-sales
#      database, with 1, 4 and 16 connections (closed loop, 16 calls in
#      flight per connection), and the worker's CPU microseconds per call
#      (utime + stime from /proc/<pid>/stat over the measured window / calls);
#      then the same with Health/Check, which does no database work: what the
#      gRPC stack alone costs per call;
#   2. what HTTP/2 flow-control windows do to large messages: an in-process
#      echo of 1 MiB messages with 64 KiB (the HTTP/2 default) and 1 MiB
#      stream windows.
#
# The client is proto/examples/grpc_bench.rs (one client thread). Client and
# worker share this machine, so absolute figures depend on its cores and
# load: the load average is printed with them; compare ratios within a run.
#
#   scripts/bench-grpc.sh [--seconds S]
#
# Environment: RUN_DIR (default run/bench-grpc), PORT (default 50152),
# WORKER_THREADS (default 2), CONNECTIONS (default "1 4 16"), CARGO_TARGET_DIR,
# BIN_DIR (binaries to use as they are instead of building them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

RUN_DIR=${RUN_DIR:-run/bench-grpc}
PORT=${PORT:-50152}
WORKER_THREADS=${WORKER_THREADS:-2}
CONNECTIONS=${CONNECTIONS:-1 4 16}
SECONDS_OPT=(--seconds 5)

case ${1:-} in
    -h | --help) usage ;;
    --seconds) [[ -n ${2:-} ]] || die "--seconds needs a value"; SECONDS_OPT=(--seconds "$2") ;;
    "") ;;
    *) die "unknown argument $1 (see --help)" ;;
esac

WORKER_PID=
cleanup() {
    [[ -n $WORKER_PID ]] && kill -TERM "$WORKER_PID" 2>/dev/null && wait "$WORKER_PID" 2>/dev/null
    true
}
trap cleanup EXIT

build_release --bin worker --bin seeder
build_release -p proto --example grpc_bench
BENCH=$BIN_DIR/examples/grpc_bench

mkdir -p "$RUN_DIR"
DB=$RUN_DIR/sales-10k.db
seed_db "$DB" 10000

port_open "$PORT" && die "port $PORT is taken (set PORT)"
RUST_LOG=warn "$BIN_DIR/worker" --listen "127.0.0.1:$PORT" --db "$DB" --threads "$WORKER_THREADS" \
    --id bench >"$RUN_DIR/worker.log" 2>&1 &
WORKER_PID=$!
wait_port "$PORT" "$WORKER_PID" "$RUN_DIR/worker.log"

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
echo "worker: $WORKER_THREADS query threads, 10k sales, pid $WORKER_PID"
for method in sales health; do
    for c in $CONNECTIONS; do
        "$BENCH" --addr "127.0.0.1:$PORT" --method "$method" --connections "$c" --concurrency 16 \
            "${SECONDS_OPT[@]}" --pid "$WORKER_PID" --clk-tck "$(getconf CLK_TCK)"
    done
done
echo "flow-control windows, 1 MiB messages echoed in process, 4 calls in flight:"
for w in 65535 1048576; do
    "$BENCH" --payload 1048576 --window "$w" --concurrency 4 "${SECONDS_OPT[@]}"
done
echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg) after the run"
