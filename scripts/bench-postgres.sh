#!/usr/bin/env bash
# Runs bus-bench's PostgreSQL mode on a throwaway local server started from
# the installed binaries (data in a temp folder, durable settings: fsync on),
# then stops it. Extra arguments go to bus-bench (e.g. --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p bus-bench -p testkit-connector
. scripts/throwaway-postgres.sh
target/release/bus-bench --postgres "$pg_url" "$@"
