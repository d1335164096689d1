# What the scripts of this folder share; sourced, never run. Logging with the
# script's name, --help from the script's header comment, background
# processes by pid file (alive, wait for exit, stop with SIGTERM then
# SIGKILL), ports, and the release binaries and database the clusters and
# benchmarks start from.
#
# The binaries come from $BIN_DIR when it is set (used as they are: nothing
# is built), else from ${CARGO_TARGET_DIR:-target}/release, which
# build_release brings up to date.

if [[ -n ${BIN_DIR:-} ]]; then
    BUILD_RELEASE=0
else
    BIN_DIR=${CARGO_TARGET_DIR:-target}/release
    BUILD_RELEASE=1
fi

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Prints the script's header comment (line 2 up to `set -euo`) and exits
# with status $1 (default 0).
usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit "${1:-0}"
}

# Every script that sources this answers -h or --help as its first argument,
# before it builds or starts anything.
case ${1:-} in -h | --help) usage ;; esac

# Whether the process of pid file $1 is running.
alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Waits up to $2 seconds for the process of pid file $1 to exit.
wait_exit() {
    local pid i
    pid=$(cat "$1")
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# Stops the process of pid file $1: SIGTERM, up to $2 seconds (default 10)
# to exit, then SIGKILL. Removes the pid file.
stop_pidfile() {
    local pidfile=$1 grace=${2:-10} name
    name=$(basename "$pidfile" .pid)
    if alive "$pidfile"; then
        kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
        if ! wait_exit "$pidfile" "$grace"; then
            log "$name did not stop within $grace s; killing it"
            kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
        fi
        log "stopped $name"
    fi
    rm -f "$pidfile"
}

# Whether something accepts connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits up to 10 s for 127.0.0.1:$1 to accept connections; dies if process
# $2 exits first or the port stays closed (naming log file $3).
wait_port() {
    local port=$1 pid=$2 logfile=$3 i
    for ((i = 0; i < 100; i++)); do
        port_open "$port" && return 0
        kill -0 "$pid" 2>/dev/null || die "pid $pid exited (see $logfile)"
        sleep 0.1
    done
    die "nothing listens on $port after 10 s (see $logfile)"
}

# Builds release binaries (cargo arguments: --bin NAME, -p CRATE,
# --example NAME), unless BIN_DIR was given. Cargo does nothing when they
# are up to date.
build_release() {
    if [[ $BUILD_RELEASE == 0 ]]; then
        log "using the binaries in $BIN_DIR as they are"
        return 0
    fi
    log "building release binaries"
    cargo build --release --quiet "$@"
}

# Seeds database $1 with $2 sales (seed 1) unless it exists.
seed_db() {
    [[ -f "$1" ]] && return 0
    log "seeding $1 ($2 sales)"
    mkdir -p "$(dirname "$1")"
    "$BIN_DIR/seeder" --db "$1" --sales "$2" --seed 1
}

# Parses a cluster script's `start [--workers N] [--db PATH] [--sales N]`
# into the caller's variables workers, db and sales (declare them local first).
parse_start_args() {
    workers=2 db=database.db sales=10000
    while [[ $# -gt 0 ]]; do
        case $1 in
            --workers) workers=${2:?--workers needs a number}; shift 2 ;;
            --db) db=${2:?--db needs a path}; shift 2 ;;
            --sales) sales=${2:?--sales needs a number}; shift 2 ;;
            -h|--help) usage ;;
            *) die "unknown option $1 (see --help)" ;;
        esac
    done
    [[ $workers =~ ^[1-9][0-9]*$ ]] || die "--workers must be a positive number, not $workers"
}
