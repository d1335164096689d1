#!/usr/bin/env bash
# Query engine throughput: seeds a 10k-sales and a 1M-sales database, then
# runs the engine benchmark (worker/benches/engine.rs) on both with 1 and 2
# threads for the seed's query mix. Prints queries per second (wall) and
# queries per CPU second (independent of other load), with the machine load.
#
#   scripts/bench-engine.sh [-- extra bench flags, e.g. --seconds 5]
#
# BENCH_DIR (default: a fresh temporary directory, removed at the end)
# holds the databases; existing ones are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

[ "${1:-}" != "--" ] || shift

build_release -p seeder

dir="${BENCH_DIR:-}"
if [ -z "$dir" ]; then
    dir="$(mktemp -d)"
    trap 'rm -rf "$dir"' EXIT
fi
for sales in 10000 1000000; do
    seed_db "$dir/sales-$sales.db" "$sales"
done

cargo bench --quiet -p worker --bench engine --no-run
echo "load before: $(uptime)"
cargo bench --quiet -p worker --bench engine -- \
    --db "$dir/sales-10000.db" --db "$dir/sales-1000000.db" "$@"
echo "load after: $(uptime)"
