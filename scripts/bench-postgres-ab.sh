#!/usr/bin/env bash
# Compares two builds of bus-bench's PostgreSQL mode on one throwaway local
# server, alternating A, B, A, B… so the machine's drift hits both alike.
# Each build is a folder holding `release/bus-bench` and the test connector
# library beside it (copy them out of target/release after each build):
#   scripts/bench-postgres-ab.sh /tmp/before /tmp/after [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 BUILD_A BUILD_B [ROUNDS]" >&2; exit 2; }
a=$1 b=$2 rounds=${3:-3}
bin=$(dirname "$(ls /usr/local/bin/initdb /usr/lib/postgresql/*/bin/initdb 2>/dev/null | head -1)")
[ -x "$bin/initdb" ] || { echo "the PostgreSQL server binaries are not installed (Debian: postgresql)" >&2; exit 1; }
dir=$(mktemp -d)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; as_pg=(runuser -u postgres --); fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$bin/initdb" -D "$dir/data" --auth=trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
trap '"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null; rm -rf "$dir"' EXIT
for round in $(seq 1 "$rounds"); do
    for build in "$a" "$b"; do
        echo "== $build, round $round"
        "$build/release/bus-bench" --postgres "postgres://postgres@127.0.0.1:$port/postgres" --quick 2>/dev/null | grep '^|'
    done
done
