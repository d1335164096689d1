#!/usr/bin/env bash
# Measures hammer's own ceiling: the calls/s it sustains against a no-op gRPC
# endpoint (a worker's grpc.health.v1.Health/Check, `hammer --method health`)
# and the CPU it spends per call, so that the study's figures can be checked
# against it: a run whose rate comes near this ceiling measures hammer, not the
# system under test. Every hammer report says so by itself too (`hammer_behind`,
# the send-lag percentiles and hammer's CPU use).
#
# The worker shares this machine's cores with hammer, so the ceiling is a lower
# bound; the CPU per call is hammer's alone (getrusage of the hammer process).
# The load average is printed with the figures: compare within one run.
#
#   scripts/bench-hammer.sh [--rates 1000,2000,5000,10000,20000] [--duration 5s]
#
# Environment: RUN_DIR (default run/bench-hammer), PORT (default 50162),
# CONCURRENCY (HTTP/2 connections, default 50), CARGO_TARGET_DIR, BIN_DIR
# (binaries to use as they are instead of building them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

RUN_DIR=${RUN_DIR:-run/bench-hammer}
PORT=${PORT:-50162}
CONCURRENCY=${CONCURRENCY:-50}
RATES=1000,2000,5000,10000,20000
DURATION=5s

while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage ;;
        --rates) [[ -n ${2:-} ]] || die "--rates needs a value"; RATES=$2; shift 2 ;;
        --duration) [[ -n ${2:-} ]] || die "--duration needs a value"; DURATION=$2; shift 2 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
command -v python3 >/dev/null || die "python3 is needed to summarise the JSON report"

WORKER_PID=
cleanup() {
    [[ -n $WORKER_PID ]] && kill -TERM "$WORKER_PID" 2>/dev/null && wait "$WORKER_PID" 2>/dev/null
    true
}
trap cleanup EXIT

build_release --bin hammer --bin worker --bin seeder

mkdir -p "$RUN_DIR"
DB=$RUN_DIR/sales-10k.db
seed_db "$DB" 10000

port_open "$PORT" && die "port $PORT is taken (set PORT)"
RUST_LOG=warn "$BIN_DIR/worker" --listen "127.0.0.1:$PORT" --db "$DB" --threads 1 --id bench \
    >"$RUN_DIR/worker.log" 2>&1 &
WORKER_PID=$!
wait_port "$PORT" "$WORKER_PID" "$RUN_DIR/worker.log"

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
"$BIN_DIR/hammer" grpc --target "127.0.0.1:$PORT" --method health --rates "$RATES" \
    --duration "$DURATION" --warmup 1s --timeout 2s --concurrency "$CONCURRENCY" -q \
    --json "$RUN_DIR/hammer.json" >"$RUN_DIR/hammer.txt"
echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg) after the run"

python3 - "$RUN_DIR/hammer.json" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
print(f"{'rate':>8} {'ok/s':>9} {'p99 ms':>8} {'lag p99':>8} {'CPU %':>7} {'CPU us/call':>11}  hammer")
ceiling, per_call = 0.0, []
for r in runs:
    cpu_us = r["hammer_cpu_us_per_call"]
    held = r["achieved_rps"] >= 0.97 * r["target_rate"] and not r["hammer_behind"]
    if held:
        ceiling = max(ceiling, r["target_rate"])
        per_call.append(cpu_us)
    print(f"{r['target_rate']:>8.0f} {r['achieved_rps']:>9.1f} {r['latency_ms']['p99']:>8.3f} "
          f"{r['hammer_lag_ms']['p99']:>8.3f} {r['hammer_cpu_percent']:>7.1f} {cpu_us:>11.1f}  "
          f"{'kept up' if held else 'BEHIND: ' + (r['hammer_warning'] or 'target rate not reached')}")
cores = runs[0]["hammer_cores"]
print(f"hammer sustained {ceiling:.0f} calls/s on this machine (sharing its {cores} cores with the worker)")
if per_call:
    us = min(per_call)
    print(f"hammer CPU per call: {us:.1f} us, i.e. about {1e6 / us:.0f} calls/s per core of its own")
print("figures reported elsewhere are hammer-limited when their rate nears this ceiling; "
      "each report flags it (hammer_behind, send lag, hammer CPU)")
PY
