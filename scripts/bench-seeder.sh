#!/usr/bin/env bash
# Seeder throughput and memory: writes 1,000,000 and 10,000,000 sales
# (index and statistics included) and prints wall time, CPU time and max
# RSS for each, with the machine load. Figures only; nothing is asserted.
#
#   scripts/bench-seeder.sh [SALES...]      default: 1000000 10000000
#
# BENCH_DIR (default: a fresh temporary directory, removed at the end)
# holds the databases.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

sizes=("$@")
for n in "${sizes[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "not a number of sales: $n (see --help)"
done
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 10000000)

build_release -p seeder
seeder="$BIN_DIR/seeder"

dir="${BENCH_DIR:-}"
if [ -z "$dir" ]; then
    dir="$(mktemp -d)"
    trap 'rm -rf "$dir"' EXIT
fi

echo "load before: $(uptime)"
for sales in "${sizes[@]}"; do
    db="$dir/bench-$sales.db"
    stats="$dir/time-$sales.txt"
    /usr/bin/time -v -o "$stats" "$seeder" --db "$db" --sales "$sales" --seed 1
    awk -v sales="$sales" '
        /Elapsed \(wall clock\)/ { wall = $NF }
        /User time/ { user = $NF }
        /System time/ { sys = $NF }
        /Maximum resident set size/ { rss = $NF }
        END { printf "%d sales: wall %s, cpu %.2f s (user %s + sys %s), max RSS %.1f MiB\n",
              sales, wall, user + sys, user, sys, rss / 1024 }' "$stats"
done
echo "load after: $(uptime)"
