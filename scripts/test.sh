#!/usr/bin/env bash
# Runs the whole test suite from a fresh clone.
#
# Finds or starts what the tests need: the Python interop peers (grpcio,
# pika, protobuf) in a private virtualenv, and a RabbitMQ broker at AMQP_URL
# (default amqp://guest:guest@127.0.0.1:5672/%2f). Under CI=true a missing
# piece is an error, never a reason to skip.
#
#   scripts/test.sh [cargo test arguments, e.g. -p lb or a test name]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# --- Python peers we did not write -------------------------------------------
VENV=${TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sales-study/venv}
PY_PACKAGES=(grpcio grpcio-tools protobuf pika)
if ! "$VENV/bin/python" -c 'import grpc, grpc_tools, google.protobuf, pika' 2>/dev/null; then
    log "installing ${PY_PACKAGES[*]} into $VENV"
    command -v python3 >/dev/null || die "python3 is required for the interop tests"
    python3 -m venv "$VENV" || die "cannot create a virtualenv at $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" \
        || die "pip could not install ${PY_PACKAGES[*]}"
fi
export PYTHON="$VENV/bin/python"

# --- RabbitMQ ------------------------------------------------------------------
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
amqp_hostport=$(printf '%s' "$AMQP_URL" | sed -E 's#^amqps?://([^@/]*@)?([^/:]+)(:([0-9]+))?.*#\2 \4#')
read -r amqp_host amqp_port <<<"$amqp_hostport"
amqp_port=${amqp_port:-5672}
broker_up() { (exec 3<>"/dev/tcp/$amqp_host/$amqp_port") 2>/dev/null; }
if ! broker_up; then
    if [[ "$amqp_host" == 127.0.0.1 || "$amqp_host" == localhost ]] && command -v rabbitmq-server >/dev/null; then
        log "no broker at $amqp_host:$amqp_port; starting rabbitmq-server"
        rabbitmq-server -detached || true
        for _ in $(seq 1 60); do broker_up && break; sleep 1; done
    fi
    broker_up || die "no RabbitMQ broker reachable at $amqp_host:$amqp_port (set AMQP_URL)"
fi
log "RabbitMQ at $amqp_host:$amqp_port"

# --- Build, lint, test ---------------------------------------------------------
log "building"
cargo build --workspace --all-targets --locked
if [[ "${CI:-}" == true ]]; then
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
fi
log "running tests"
# cargo prints one "test result" line per test binary, the last often a crate's
# empty doc-test run; add them up into one closing line for the whole suite.
results=$(mktemp)
trap 'rm -f "$results"' EXIT
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$results" || status=$?
awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "all: %d passed, %d failed\n", p, f }' "$results"
exit "$status"
