#!/usr/bin/env bash
# The study in one command: the same query mix, at the same rate, through the
# RPC cluster (hammer → lb → workers) and the MQ cluster (hammer → RabbitMQ →
# mq-workers), on the same database; then one table comparing them.
#
#   scripts/study.sh [--sales 10000] [--workers 2] [--rate 500] [--concurrency 50]
#                    [--duration 30s] [--warmup 5s] [--out results/<time>]
#
# Needs a RabbitMQ broker at AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/%2f).
# Results: <out>/{rpc,mq}.json (hammer's report) and .hgrm (latency distributions).
set -euo pipefail
cd "$(dirname "$0")/.."

sales=10000 workers=2 rate=500 concurrency=50 duration=30s warmup=5s
out="results/$(date -u +%Y%m%dT%H%M%SZ)"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --sales) sales=$2; shift 2 ;;
        --workers) workers=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --concurrency) concurrency=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "study.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

log() { printf '[study] %s\n' "$*" >&2; }
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
bin=${CARGO_TARGET_DIR:-target}/release
db="$out/database.db"
mkdir -p "$out"

log "building release binaries"
cargo build --release --locked --bins >&2

log "seeding $sales sales into $db"
"$bin/seeder" --db "$db" --sales "$sales" --seed 1 >&2

cleanup() {
    scripts/rpc-cluster.sh stop >/dev/null 2>&1 || true
    scripts/mq-cluster.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

common=(--rate "$rate" --concurrency "$concurrency" --duration "$duration"
        --warmup "$warmup" --db "$db" --seed 1 --verify 100)

log "RPC: $workers workers behind the LB"
scripts/rpc-cluster.sh start --workers "$workers" --db "$db" >&2
"$bin/hammer" grpc --target 127.0.0.1:50051 "${common[@]}" \
    --json "$out/rpc.json" --hgrm "$out/rpc.hgrm"
scripts/rpc-cluster.sh stop >&2

log "MQ: $workers mq-workers behind RabbitMQ"
scripts/mq-cluster.sh start --workers "$workers" --db "$db" >&2
"$bin/hammer" amqp --amqp "$AMQP_URL" "${common[@]}" \
    --json "$out/mq.json" --hgrm "$out/mq.hgrm"
scripts/mq-cluster.sh stop >&2

python3 - "$out/rpc.json" "$out/mq.json" <<'PY'
import json, sys
rows = [("rpc (gRPC)", json.load(open(sys.argv[1]))), ("mq (AMQP)", json.load(open(sys.argv[2])))]
print()
print(f"{'architecture':<12} {'rate':>7} {'achieved':>9} {'ok':>8} {'errors':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'max ms':>8}")
for name, r in rows:
    lat = r["latency_ms"]
    errors = sum(r["errors"].values()) if isinstance(r["errors"], dict) else r["errors"]
    print(f"{name:<12} {r['target_rate']:>7} {r['achieved_rps']:>9.1f} {r['ok']:>8} {errors + r['timeouts'] + r['dropped']:>7} "
          f"{lat['p50']:>8.2f} {lat['p90']:>8.2f} {lat['p99']:>8.2f} {lat['p999']:>9.2f} {lat['max']:>8.2f}")
PY
log "reports in $out"
