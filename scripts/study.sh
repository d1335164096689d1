#!/usr/bin/env bash
# The study in one command: the same query mix, at the same rate, through the
# RPC cluster (hammer → lb → workers) and the MQ cluster (hammer → RabbitMQ →
# mq-workers), on the same database; then one table comparing them.
#
#   scripts/study.sh [--sales 10000] [--workers 2] [--rate 500] [--concurrency 50]
#                    [--duration 30s] [--warmup 5s] [--out results/<time>]
#                    [--find-max] [--slo-p99 10ms]
#
# Needs a RabbitMQ broker at AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/%2f).
# Results: <out>/{rpc,mq}.json (hammer's report) and .hgrm (latency distributions).
# With --find-max, each architecture is also searched for the highest rate
# whose p99 holds --slo-p99 (4 s steps; <out>/{rpc,mq}.max.json).
set -euo pipefail
cd "$(dirname "$0")/.."

sales=10000 workers=2 rate=500 concurrency=50 duration=30s warmup=5s
find_max=false slo=10ms
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
        --find-max) find_max=true; shift ;;
        --slo-p99) slo=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
search=(--find-max --slo-p99 "$slo" --rate "$rate" --concurrency "$concurrency"
        --duration 4s --db "$db" --seed 1 -q)

log "RPC: $workers workers behind the LB"
scripts/rpc-cluster.sh start --workers "$workers" --db "$db" >&2
"$bin/hammer" grpc --target 127.0.0.1:50051 "${common[@]}" \
    --json "$out/rpc.json" --hgrm "$out/rpc.hgrm"
if $find_max; then
    log "RPC: highest rate with p99 <= $slo"
    "$bin/hammer" grpc --target 127.0.0.1:50051 "${search[@]}" --json "$out/rpc.max.json" >/dev/null
fi
scripts/rpc-cluster.sh stop >&2

log "MQ: $workers mq-workers behind RabbitMQ"
scripts/mq-cluster.sh start --workers "$workers" --db "$db" >&2
"$bin/hammer" amqp --amqp "$AMQP_URL" "${common[@]}" \
    --json "$out/mq.json" --hgrm "$out/mq.hgrm"
if $find_max; then
    log "MQ: highest rate with p99 <= $slo"
    "$bin/hammer" amqp --amqp "$AMQP_URL" "${search[@]}" --json "$out/mq.max.json" >/dev/null
fi
scripts/mq-cluster.sh stop >&2

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    path = os.path.join(out, name)
    return json.load(open(path)) if os.path.exists(path) else None
print()
print(f"{'architecture':<12} {'rate':>7} {'achieved':>9} {'ok':>8} {'failed':>7} {'p50 ms':>8} {'p90 ms':>8} "
      f"{'p99 ms':>8} {'p99.9 ms':>9} {'max ms':>8} {'max rate at SLO':>16}")
for name, key in [("rpc (gRPC)", "rpc"), ("mq (AMQP)", "mq")]:
    r, m = load(key + ".json"), load(key + ".max.json")
    lat = r["latency_ms"]
    failed = r["errors_total"] + r["timeouts"]  # errors_total counts client-side drops too
    top = "-" if m is None else f"{m['max_rate']:.0f}/s" + (" (hammer)" if m["limited_by_hammer"] else "")
    print(f"{name:<12} {r['target_rate']:>7} {r['achieved_rps']:>9.1f} {r['ok']:>8} {failed:>7} "
          f"{lat['p50']:>8.2f} {lat['p90']:>8.2f} {lat['p99']:>8.2f} {lat['p999']:>9.2f} {lat['max']:>8.2f} {top:>16}")
PY
log "reports in $out"
