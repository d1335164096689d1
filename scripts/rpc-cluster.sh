#!/usr/bin/env bash
# Starts, stops and shows the RPC cluster as local processes: N workers on
# 50052, 50053, ... and the LB on 50051 in front of them.
#
#   scripts/rpc-cluster.sh start [--workers N] [--db database.db] [--sales N]
#   scripts/rpc-cluster.sh stop
#   scripts/rpc-cluster.sh status
#
# `start` builds the release binaries (cargo does nothing when they are up to
# date), seeds the database if it is missing, starts everything in the
# background with pid files and logs under $RUN_DIR (default ./run/rpc), and
# returns once the LB has every worker in rotation. `stop` sends SIGTERM (the
# LB first, so it stops taking calls before its workers go), waits, and
# SIGKILLs what is left.
#
# Environment: RUN_DIR, LB_PORT (50051), WORKER_PORT (first worker, 50052),
# WORKER_THREADS (query threads per worker; default: the worker's own),
# CARGO_TARGET_DIR (where the binaries are built), BIN_DIR (binaries to use
# as they are instead), RUST_LOG.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh

RUN_DIR=${RUN_DIR:-run/rpc}
LB_PORT=${LB_PORT:-50051}
WORKER_PORT=${WORKER_PORT:-50052}

cmd_stop() {
    [[ -d "$RUN_DIR" ]] || { log "nothing to stop ($RUN_DIR does not exist)"; return 0; }
    [[ -f "$RUN_DIR/lb.pid" ]] && stop_pidfile "$RUN_DIR/lb.pid" 10
    local f
    for f in "$RUN_DIR"/worker-*.pid; do
        [[ -e "$f" ]] && stop_pidfile "$f" 10
    done
    return 0
}

cmd_status() {
    local f any=0 state
    for f in "$RUN_DIR"/lb.pid "$RUN_DIR"/worker-*.pid; do
        [[ -e "$f" ]] || continue
        any=1
        if alive "$f"; then state="running (pid $(cat "$f"))"; else state="dead (stale pid file)"; fi
        printf '%-12s %s\n' "$(basename "$f" .pid)" "$state"
    done
    [[ $any == 1 ]] || { echo "not running"; return 1; }
    if [[ -f "$RUN_DIR/lb.log" ]]; then
        echo "last LB summary:"
        grep -E 'worker .*(calls|up:|down:)' "$RUN_DIR/lb.log" | tail -n 8 || true
    fi
}

cmd_start() {
    local workers db sales
    parse_start_args "$@"
    if alive "$RUN_DIR/lb.pid"; then
        die "already running (pid $(cat "$RUN_DIR/lb.pid")); run '$0 stop' first"
    fi
    local port
    for port in "$LB_PORT" $(seq "$WORKER_PORT" $((WORKER_PORT + workers - 1))); do
        port_open "$port" && die "port $port is already in use"
    done

    build_release --bin lb --bin worker --bin seeder
    seed_db "$db" "$sales"
    mkdir -p "$RUN_DIR"

    local i list=() threads=()
    [[ -n "${WORKER_THREADS:-}" ]] && threads=(--threads "$WORKER_THREADS")
    for ((i = 1; i <= workers; i++)); do
        port=$((WORKER_PORT + i - 1))
        "$BIN_DIR/worker" --listen "127.0.0.1:$port" --db "$db" --id "worker-$i" "${threads[@]}" \
            >"$RUN_DIR/worker-$i.log" 2>&1 &
        echo $! >"$RUN_DIR/worker-$i.pid"
        list+=("127.0.0.1:$port")
    done
    local IFS=,
    "$BIN_DIR/lb" --listen "0.0.0.0:$LB_PORT" --workers "${list[*]}" >"$RUN_DIR/lb.log" 2>&1 &
    echo $! >"$RUN_DIR/lb.pid"
    unset IFS

    # Ready when the LB has logged every worker up (it logs each transition).
    local up f
    for ((i = 0; i < 300; i++)); do
        alive "$RUN_DIR/lb.pid" || { tail -n 20 "$RUN_DIR/lb.log" >&2; cmd_stop; die "the LB exited"; }
        for f in "$RUN_DIR"/worker-*.pid; do
            alive "$f" && continue
            f=${f%.pid}.log
            tail -n 20 "$f" >&2
            cmd_stop
            die "$(basename "$f" .log) exited (log above)"
        done
        up=$(grep -c ' up: ' "$RUN_DIR/lb.log" || true)
        if [[ $up -ge $workers ]] && port_open "$LB_PORT"; then
            log "LB on :$LB_PORT with $workers workers on :$WORKER_PORT.. (logs in $RUN_DIR)"
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$RUN_DIR/lb.log" >&2
    cmd_stop
    die "the LB did not report $workers healthy workers within 30 s"
}

case ${1:-} in
    start) shift; cmd_start "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    -h|--help|help) usage ;;
    *) usage 2 ;;
esac
