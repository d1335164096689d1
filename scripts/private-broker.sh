#!/usr/bin/env bash
# A private RabbitMQ node for tests that must stop and restart a broker,
# isolated from the shared one (port 5672) in every way that matters:
# its own node name, AMQP and distribution ports, data and log folders,
# Erlang cookie (HOME) and an empty plugin list (no management port clash).
#
#   scripts/private-broker.sh start [--dir DIR] [--port PORT]
#       Starts the node (or starts it again: DIR remembers its name, ports
#       and data) and waits until it accepts connections. Prints shell
#       assignments: DIR=... NODE=... PORT=... URL=...
#   scripts/private-broker.sh stop --dir DIR     stops it (data kept)
#   scripts/private-broker.sh status --dir DIR   exit 0 if it answers a ping
#   scripts/private-broker.sh clean --dir DIR    stops it and removes DIR
#
# It runs RabbitMQ's own scripts directly (/usr/lib/rabbitmq/bin), not the
# distribution's wrapper, which would switch to the `rabbitmq` user and so
# to the shared broker's cookie and log folder.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RABBIT_BIN=${RABBIT_BIN:-/usr/lib/rabbitmq/bin}
[[ -x "$RABBIT_BIN/rabbitmq-server" ]] || RABBIT_BIN=$(dirname "$(command -v rabbitmq-server || echo /nonexistent/x)")
[[ -x "$RABBIT_BIN/rabbitmq-server" ]] || die "rabbitmq-server not found (set RABBIT_BIN)"

cmd=${1:-}
shift || true
DIR="" PORT=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --dir) DIR=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        *) die "unknown argument $1" ;;
    esac
done

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The AMQP port and the distribution port (DIST_OFFSET above it) are both kept
# below the kernel's ephemeral range: a port in that range can be taken at any
# moment as the local end of some outgoing connection, or still be held by one
# in TIME_WAIT, which a connect test does not see, and then the node cannot
# bind it and exits.
DIST_OFFSET=10000 # the distribution port is the AMQP port plus this
LOWEST_PORT=10000
pick_port() {
    local first span
    first=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    span=$((first - LOWEST_PORT - DIST_OFFSET))
    ((span >= 1000)) || span=1000
    for _ in $(seq 1 50); do
        local p=$((LOWEST_PORT + RANDOM % span))
        if port_free "$p" && port_free $((p + DIST_OFFSET)); then echo "$p"; return; fi
    done
    die "no free port found"
}

# The node's environment; everything under DIR.
node_env() {
    export HOME="$DIR/home"
    export RABBITMQ_NODENAME="$NODE"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$PORT"
    export RABBITMQ_DIST_PORT=$((PORT + DIST_OFFSET))
    export RABBITMQ_MNESIA_BASE="$DIR/mnesia"
    export RABBITMQ_LOG_BASE="$DIR/log"
    export RABBITMQ_PID_FILE="$DIR/rabbitmq.pid"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
    export RABBITMQ_CONFIG_FILE="$DIR/rabbitmq"        # .conf added by RabbitMQ
    export RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config"
    export RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf"
    export ERL_CRASH_DUMP="$DIR/erl_crash.dump" # not in the caller's folder
}

ctl() { "$RABBIT_BIN/rabbitmqctl" -n "$NODE" "$@"; }

# Why a start failed, on stderr: a test removes DIR when it gives up, so the
# files named in the error message may be gone by the time anyone looks.
show_failure() {
    echo "--- last lines of $DIR/server.out:" >&2
    tail -n 20 "$DIR/server.out" >&2 2>/dev/null || true
    echo "--- errors in $DIR/log:" >&2
    grep -h -i -E 'error|crash|eaddrinuse|failed' "$DIR"/log/*.log 2>/dev/null | tail -n 20 >&2 || true
}

load_dir() {
    [[ -n "$DIR" ]] || die "--dir is required"
    [[ -f "$DIR/node.env" ]] || die "$DIR is not a private broker folder"
    # shellcheck disable=SC1091
    source "$DIR/node.env"
    node_env
}

case $cmd in
    start)
        if [[ -z "$DIR" ]]; then DIR=$(mktemp -d "${TMPDIR:-/tmp}/mqbroker.XXXXXX"); fi
        mkdir -p "$DIR"
        DIR=$(cd "$DIR" && pwd)
        if [[ -f "$DIR/node.env" ]]; then
            # shellcheck disable=SC1091
            source "$DIR/node.env"
        else
            PORT=${PORT:-$(pick_port)}
            NODE="mqtest-$$-$PORT@localhost"
            printf 'NODE=%q\nPORT=%q\n' "$NODE" "$PORT" >"$DIR/node.env"
            mkdir -p "$DIR/home" "$DIR/mnesia" "$DIR/log"
            echo '[].' >"$DIR/enabled_plugins"
            : >"$DIR/rabbitmq.conf"
            echo '[].' >"$DIR/advanced.config"
            : >"$DIR/rabbitmq-env.conf"
        fi
        node_env
        port_free "$PORT" || die "port $PORT is taken"
        port_free $((PORT + DIST_OFFSET)) || die "port $((PORT + DIST_OFFSET)) (distribution) is taken"
        log "starting $NODE on 127.0.0.1:$PORT (data in $DIR)"
        nohup "$RABBIT_BIN/rabbitmq-server" >>"$DIR/server.out" 2>&1 &
        echo $! >"$DIR/server.pid"
        for _ in $(seq 1 120); do
            if ctl await_startup --timeout 1 >/dev/null 2>&1 \
                && "$RABBIT_BIN/rabbitmq-diagnostics" -n "$NODE" -q ping >/dev/null 2>&1; then
                printf 'DIR=%q\nNODE=%q\nPORT=%q\nURL=%q\n' \
                    "$DIR" "$NODE" "$PORT" "amqp://guest:guest@127.0.0.1:$PORT/%2f"
                exit 0
            fi
            kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null || {
                show_failure
                die "the node exited; see $DIR/server.out and $DIR/log"
            }
            sleep 0.5
        done
        show_failure
        die "the node did not start within 60 s; see $DIR/server.out"
        ;;
    stop)
        load_dir
        log "stopping $NODE"
        ctl stop >/dev/null 2>&1 || log "$NODE was not running"
        if [[ -f "$DIR/server.pid" ]]; then
            pid=$(cat "$DIR/server.pid")
            for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        fi
        ;;
    status)
        load_dir
        "$RABBIT_BIN/rabbitmq-diagnostics" -n "$NODE" -q ping
        ;;
    clean)
        load_dir
        ctl stop >/dev/null 2>&1 || true
        if [[ -f "$DIR/server.pid" ]]; then
            pid=$(cat "$DIR/server.pid")
            for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        fi
        rm -rf "$DIR"
        ;;
    *)
        [[ -z "$cmd" || "$cmd" == -h || "$cmd" == --help ]] && usage
        usage 2
        ;;
esac
