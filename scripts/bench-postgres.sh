#!/usr/bin/env bash
# Runs bus-bench's PostgreSQL mode on a throwaway local server started from
# the installed binaries (data in a temp folder, durable settings: fsync on),
# then stops it. Extra arguments go to bus-bench (e.g. --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
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
cargo build --release -p bus-bench -p testkit-connector
target/release/bus-bench --postgres "postgres://postgres@127.0.0.1:$port/postgres" "$@"
