# Sourced by the PostgreSQL bench scripts: starts a throwaway local server
# from the installed binaries (data in a temp folder, durable settings:
# fsync on), sets $pg_url to it, and stops it and removes the folder when
# the sourcing script exits.
bin=$(dirname "$(ls /usr/local/bin/initdb /usr/lib/postgresql/*/bin/initdb 2>/dev/null | head -1)")
[ -x "$bin/initdb" ] || { echo "the PostgreSQL server binaries are not installed (Debian: postgresql)" >&2; exit 1; }
pg_dir=$(mktemp -d)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then chown postgres "$pg_dir"; as_pg=(runuser -u postgres --); fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$bin/initdb" -D "$pg_dir/data" --auth=trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
"${as_pg[@]}" "$bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
    -o "-k $pg_dir -p $port -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
trap '"${as_pg[@]}" "$bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null; rm -rf "$pg_dir"' EXIT
pg_url="postgres://postgres@127.0.0.1:$port/postgres"
