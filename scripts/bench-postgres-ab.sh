#!/usr/bin/env bash
# Compares two builds of bus-bench's PostgreSQL mode on one throwaway local
# server, alternating A, B, A, B… so the machine's drift hits both alike.
# Each build is a folder holding `release/bus-bench` and the test connector
# library beside it (copy them out of target/release after each build):
#   scripts/bench-postgres-ab.sh /tmp/before /tmp/after [rounds]
# bus-bench runs with `--quick` unless BENCH_ARGS says otherwise (an empty
# BENCH_ARGS runs the full phases: three times longer, less noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 BUILD_A BUILD_B [ROUNDS]" >&2; exit 2; }
a=$1 b=$2 rounds=${3:-3}
. scripts/throwaway-postgres.sh
for round in $(seq 1 "$rounds"); do
    for build in "$a" "$b"; do
        echo "== $build, round $round"
        "$build/release/bus-bench" --postgres "$pg_url" ${BENCH_ARGS---quick} 2>/dev/null | grep '^|'
    done
done
