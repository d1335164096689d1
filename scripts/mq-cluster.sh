#!/usr/bin/env bash
# Starts, stops and shows the MQ cluster as local processes: N mq-workers
# consuming one queue on the broker at AMQP_URL.
#
#   scripts/mq-cluster.sh start [--workers N] [--db database.db] [--sales N]
#   scripts/mq-cluster.sh stop
#   scripts/mq-cluster.sh status
#
# `start` builds the release binaries (cargo does nothing when they are up to
# date), seeds the database if it is missing, starts the workers in the
# background with pid files and logs under $RUN_DIR (default ./run/mq), and
# returns once every worker reports all its consumers attached. `stop` sends
# SIGTERM (each worker finishes and acks what it holds), waits, and SIGKILLs
# what is left.
#
# Environment: AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/%2f),
# QUEUE (worker_queue), RUN_DIR, WORKER_THREADS (consumers per worker;
# default: the number of cores), PREFETCH (per consumer; default the
# worker's), CARGO_TARGET_DIR (where the binaries are built), BIN_DIR
# (binaries to use as they are instead), RUST_LOG.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh

RUN_DIR=${RUN_DIR:-run/mq}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
QUEUE=${QUEUE:-worker_queue}

cmd_stop() {
    [[ -d "$RUN_DIR" ]] || { log "nothing to stop ($RUN_DIR does not exist)"; return 0; }
    local f
    for f in "$RUN_DIR"/mq-worker-*.pid; do
        [[ -e "$f" ]] && stop_pidfile "$f" 15
    done
    return 0
}

cmd_status() {
    local f any=0 state
    for f in "$RUN_DIR"/mq-worker-*.pid; do
        [[ -e "$f" ]] || continue
        any=1
        if alive "$f"; then state="running (pid $(cat "$f"))"; else state="dead (stale pid file)"; fi
        printf '%-14s %s\n' "$(basename "$f" .pid)" "$state"
        grep -E 'served [0-9]+|consumers attached|lost the broker' "${f%.pid}.log" | tail -n 2 | sed 's/^/    /' || true
    done
    [[ $any == 1 ]] || { echo "not running"; return 1; }
}

cmd_start() {
    local workers db sales
    parse_start_args "$@"
    local f
    for f in "$RUN_DIR"/mq-worker-*.pid; do
        alive "$f" && die "already running ($(basename "$f" .pid), pid $(cat "$f")); run '$0 stop' first"
    done

    build_release --bin mq-worker --bin seeder
    seed_db "$db" "$sales"
    mkdir -p "$RUN_DIR"
    rm -f "$RUN_DIR"/mq-worker-*.pid

    local i opts=()
    [[ -n "${WORKER_THREADS:-}" ]] && opts+=(--threads "$WORKER_THREADS")
    [[ -n "${PREFETCH:-}" ]] && opts+=(--prefetch "$PREFETCH")
    for ((i = 1; i <= workers; i++)); do
        RUST_LOG=${RUST_LOG:-info} "$BIN_DIR/mq-worker" --db "$db" --queue "$QUEUE" \
            --id "mq-worker-$i" "${opts[@]}" >"$RUN_DIR/mq-worker-$i.log" 2>&1 &
        echo $! >"$RUN_DIR/mq-worker-$i.pid"
    done

    # Ready when every worker has logged "all N consumers attached".
    local ready
    for ((i = 0; i < 300; i++)); do
        ready=0
        for f in "$RUN_DIR"/mq-worker-*.pid; do
            if ! alive "$f"; then
                f=${f%.pid}.log
                tail -n 20 "$f" >&2
                cmd_stop
                die "$(basename "$f" .log) exited (log above)"
            fi
            grep -q 'consumers attached' "${f%.pid}.log" && ready=$((ready + 1))
        done
        if [[ $ready -ge $workers ]]; then
            log "$workers mq-workers consuming $QUEUE (logs in $RUN_DIR)"
            return 0
        fi
        sleep 0.1
    done
    tail -n 5 "$RUN_DIR"/mq-worker-*.log >&2
    cmd_stop
    die "the workers did not attach to the broker at $AMQP_URL within 30 s"
}

case ${1:-} in
    start) shift; cmd_start "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    -h|--help|help) usage ;;
    *) usage 2 ;;
esac
