#!/usr/bin/env bash
# Measures what the LB hop costs, with `hammer` as the client, in three cases
# on a 10k-sales database (seeded under $RUN_DIR if missing):
#
#   (a) hammer -> one worker, directly;
#   (b) hammer -> LB -> that one worker;
#   (c) hammer -> LB -> two workers.
#
# Each case runs the seed's default load (500 calls/s of GetSalesMetrics over
# 50 HTTP/2 connections, 10 s after a 2 s warm-up) and then `hammer
# --find-max`: the highest rate whose p99 holds 10 ms (4 s steps). The CPU
# time of the worker(s) and the LB (utime + stime from /proc/<pid>/stat,
# before and after the default load, warm-up included) divided by the calls
# gives each process's CPU microseconds per call. One table sums it up, with
# the LB hop cost, (b)/(a): the share of the direct max rate that is left
# through the LB with the same worker (goal: at least 75 %), and (c)/(a):
# what a second worker behind the LB adds. Every case uses the same query mix
# (seed 1). Hammer, the LB and the workers share this machine, so figures
# depend on its cores and load: the load average is printed with them;
# compare the ratios of one run.
#
#   scripts/bench-lb.sh [--rate 500] [--duration 10s] [--warmup 2s]
#                       [--find-duration 4s] [--slo-p99 10ms]
#
# Short settings make a quick check, e.g. --duration 1s --warmup 0s
# --find-duration 1s. Reports go to $RUN_DIR: <case>.load.json and
# <case>.max.json (hammer's), their .txt summaries, and the processes' logs.
#
# Environment: RUN_DIR (default ./run/bench-lb), BASE_PORT (default 50151:
# the LB; workers on the next ports), WORKER_THREADS, CARGO_TARGET_DIR,
# BIN_DIR (binaries to use as they are instead of building them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

RUN_DIR=${RUN_DIR:-run/bench-lb}
BASE_PORT=${BASE_PORT:-50151}
LB_PORT=$BASE_PORT
W1_PORT=$((BASE_PORT + 1))
W2_PORT=$((BASE_PORT + 2))
RATE=500 DURATION=10s WARMUP=2s FIND_DURATION=4s SLO=10ms

while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage ;;
        --rate | --duration | --warmup | --find-duration | --slo-p99)
            [[ -n ${2:-} ]] || die "$1 needs a value"
            case $1 in
                --rate) RATE=$2 ;;
                --duration) DURATION=$2 ;;
                --warmup) WARMUP=$2 ;;
                --find-duration) FIND_DURATION=$2 ;;
                --slo-p99) SLO=$2 ;;
            esac
            shift 2
            ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
command -v python3 >/dev/null || die "python3 is needed to summarise the JSON reports"

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

build_release --bin hammer --bin lb --bin worker --bin seeder
mkdir -p "$RUN_DIR"
DB=$RUN_DIR/bench.db
seed_db "$DB" 10000
rm -f "$RUN_DIR"/*.cpu "$RUN_DIR"/*.json

for port in "$LB_PORT" "$W1_PORT" "$W2_PORT"; do
    port_open "$port" && die "port $port is taken (set BASE_PORT)"
done

threads=()
[[ -n "${WORKER_THREADS:-}" ]] && threads=(--threads "$WORKER_THREADS")
start_worker() { # id port; leaves its pid in $STARTED
    RUST_LOG=warn "$BIN_DIR/worker" --listen "127.0.0.1:$2" --db "$DB" --id "$1" "${threads[@]}" \
        >"$RUN_DIR/$1.log" 2>&1 &
    STARTED=$!
    PIDS+=("$STARTED")
    wait_port "$2" "$STARTED" "$RUN_DIR/$1.log"
}
start_lb() { # workers (host:port,...), how many
    "$BIN_DIR/lb" --listen "127.0.0.1:$LB_PORT" --workers "$1" --stats-interval 60s \
        >"$RUN_DIR/lb.log" 2>&1 &
    LB_PID=$!
    PIDS+=("$LB_PID")
    wait_port "$LB_PORT" "$LB_PID" "$RUN_DIR/lb.log"
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(grep -c ' up: ' "$RUN_DIR/lb.log" || true) -ge $2 ]] && return 0
        sleep 0.1
    done
    die "the LB did not report $2 workers up (see $RUN_DIR/lb.log)"
}
stop_lb() {
    kill -TERM "$LB_PID"
    wait "$LB_PID" || true
}

CLK_TCK=$(getconf CLK_TCK)
# CPU time (utime + stime) of process $1 so far, in microseconds.
cpu_us() {
    local stat fields
    stat=$(<"/proc/$1/stat")
    read -ra fields <<<"${stat##*) }" # fields from the 3rd (state) on
    echo $(((fields[11] + fields[12]) * 1000000 / CLK_TCK))
}

# Runs case $1 against target $2: the default load, with the CPU time of the
# processes named in the rest (role=pid; role worker or lb) measured around
# it, then the search for the max rate.
run_case() {
    local name=$1 target=$2 proc before=() i=0
    shift 2
    for proc in "$@"; do before+=("$(cpu_us "${proc#*=}")"); done
    log "case $name: $RATE/s for $DURATION after $WARMUP (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    RUST_LOG=${RUST_LOG:-warn} "$BIN_DIR/hammer" grpc --target "$target" --db "$DB" --seed 1 \
        --rate "$RATE" --concurrency 50 --duration "$DURATION" --warmup "$WARMUP" \
        -q --json "$RUN_DIR/$name.load.json" \
        >"$RUN_DIR/$name.load.txt" || die "hammer failed (see $RUN_DIR/$name.load.txt)"
    for proc in "$@"; do
        echo "${proc%=*} $(($(cpu_us "${proc#*=}") - before[i]))" >>"$RUN_DIR/$name.cpu"
        i=$((i + 1))
    done
    log "case $name: highest rate with p99 <= $SLO ($FIND_DURATION steps)"
    RUST_LOG=${RUST_LOG:-warn} "$BIN_DIR/hammer" grpc --target "$target" --db "$DB" --seed 1 \
        --find-max --slo-p99 "$SLO" --duration "$FIND_DURATION" -q --json "$RUN_DIR/$name.max.json" \
        >"$RUN_DIR/$name.max.txt" || die "hammer failed (see $RUN_DIR/$name.max.txt)"
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
start_worker w1 "$W1_PORT"
W1_PID=$STARTED
run_case a "127.0.0.1:$W1_PORT" "worker=$W1_PID"

start_lb "127.0.0.1:$W1_PORT" 1
run_case b "127.0.0.1:$LB_PORT" "worker=$W1_PID" "lb=$LB_PID"
stop_lb

start_worker w2 "$W2_PORT"
W2_PID=$STARTED
start_lb "127.0.0.1:$W1_PORT,127.0.0.1:$W2_PORT" 2
run_case c "127.0.0.1:$LB_PORT" "worker=$W1_PID" "worker=$W2_PID" "lb=$LB_PID"
echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg) after the run"

python3 - "$RUN_DIR" <<'PY'
import json, os, sys

run_dir = sys.argv[1]
cases = [("a", "(a) hammer -> worker"), ("b", "(b) hammer -> LB -> worker"),
         ("c", "(c) hammer -> LB -> 2 workers")]


def cpu_per_call(name, load):
    """CPU us per call by role (workers summed), and each process's share."""
    calls = load["sent"] + load["target_rate"] * load["warmup_s"]
    by_role, each = {}, []
    for line in open(os.path.join(run_dir, name + ".cpu")):
        role, us = line.split()
        per_call = int(us) / calls if calls else float("nan")
        by_role[role] = by_role.get(role, 0.0) + per_call
        each.append(f"{role} {per_call:.1f}")
    return by_role, each


rows, max_rate, notes = [], {}, []
for name, label in cases:
    load = json.load(open(os.path.join(run_dir, name + ".load.json")))
    found = json.load(open(os.path.join(run_dir, name + ".max.json")))
    by_role, each = cpu_per_call(name, load)
    max_rate[name] = found["max_rate"]
    slo = found["slo_p99_ms"]
    limit = f"{found['max_rate']:.0f}" + (" (hammer)" if found["limited_by_hammer"] else "")
    worker = by_role.get("worker")
    lb = by_role.get("lb")
    rows.append((label, f"{load['target_rate']:.0f}", f"{load['achieved_rps']:.1f}",
                 f"{load['latency_ms']['p50']:.3f}", f"{load['latency_ms']['p99']:.3f}", limit,
                 "-" if worker is None else f"{worker:.1f}", "-" if lb is None else f"{lb:.1f}"))
    if load["hammer_behind"]:
        notes.append(f"{label}: hammer fell behind at {load['target_rate']:.0f}/s: "
                     f"{load['hammer_warning']}")
    if len(each) > 2:
        notes.append(f"{label}: CPU us/call per process: {', '.join(each)}")

head = ("case", "rate", "achieved", "p50 ms", "p99 ms", f"max/s p99<={slo:g}ms",
        "worker us/call", "LB us/call")
widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
for r in [head] + rows:
    print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
for n in notes:
    print(n)


def share(x, y):
    return f"{100 * max_rate[x] / max_rate[y]:.0f} %" if max_rate[y] > 0 else "n/a"


print(f"LB hop cost: through the LB, {share('b', 'a')} of the direct max rate with one worker "
      f"(b)/(a) (goal: at least 75 %)")
print(f"two workers behind the LB: {share('c', 'a')} of one worker's direct max rate (c)/(a)")
print("CPU per call: at the default load, warm-up calls and CPU included; "
      "worker us/call sums the workers'")
PY
