#!/usr/bin/env bash
# Crash drill at full size: queue N outgoing tasks (100,000 by default) while
# the daemon drains them, SIGKILL it in the middle, restart it, and check that
# nothing was lost, that delivery kept commit order, that at most the task in
# flight was delivered twice, and that the database is intact.
#
#   scripts/crash-drill.sh            # N=100000
#   N=20000 scripts/crash-drill.sh
#
# The automated test `faults::killed_mid_drain_nothing_is_lost_and_order_is_kept`
# runs the same check at a smaller size in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
PORT=${PORT:-18777}
cargo build --release -q -p bus-daemon -p testkit-connector
dir=$(mktemp -d)
trap 'kill -9 $(cat "$dir/pid" 2>/dev/null) 2>/dev/null || true' EXIT
mkdir -p "$dir/connectors"
cp target/release/libtestkit_connector.so "$dir/connectors/libtestkit.so"
cat > "$dir/bus.toml" <<TOML
database = "bus.db"
connectors_dir = "connectors"
state_dir = "state"
listen = "127.0.0.1:$PORT"
TOML
daemon=target/release/bus-daemon
script='{"subscriptions": [{"process_type": "AsyncSimple", "scope": "objects", "object_type": "cms.user"}]}'
$daemon --config "$dir/bus.toml" connector add --name A --assembly testkit --class ScriptedConnector --enabled --config-text "$script"

start() {
    $daemon --config "$dir/bus.toml" serve > "$dir/daemon.log" 2>&1 &
    echo $! > "$dir/pid"
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && return; sleep 0.1; done
    echo "the daemon did not start" >&2; exit 1
}

start
python3 - "$N" "$PORT" <<'PY' &
import json, sys, urllib.request
n, port = int(sys.argv[1]), sys.argv[2]
for start in range(0, n, 500):
    changes = [{"op": "create_object", "object_type": "cms.user", "object": {"code_name": f"u{i:07d}"}} for i in range(start, min(n, start + 500))]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/batch", data=json.dumps({"changes": changes}).encode(), headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=60).read()
    except Exception as e:
        print(f"producer stopped at {start}: {e}", file=sys.stderr)
        break
PY
producer=$!
# Kill once a good part has been delivered.
until [ "$(sqlite3 "$dir/bus.db" "SELECT COUNT(*) FROM CMS_EventLog WHERE Source = 'A'" 2>/dev/null || echo 0)" -gt $((N / 4)) ]; do sleep 0.2; done
kill -9 "$(cat "$dir/pid")"
echo "killed the daemon after $(sqlite3 "$dir/bus.db" "SELECT COUNT(*) FROM CMS_EventLog WHERE Source = 'A'") deliveries"
wait $producer || true
echo "integrity after the kill: $(sqlite3 "$dir/bus.db" 'PRAGMA integrity_check')"
start
until [ "$(sqlite3 "$dir/bus.db" 'SELECT COUNT(*) FROM Integration_Synchronization')" -eq 0 ]; do sleep 0.5; done
python3 - "$dir/bus.db" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
users = db.execute("SELECT COUNT(*) FROM CMS_Object WHERE ObjectType = 'cms.user'").fetchone()[0]
ids = [json.loads(d)["task_id"] for (d,) in db.execute("SELECT Description FROM CMS_EventLog WHERE Source = 'A' ORDER BY EventID")]
distinct = set(ids)
firsts = [t for i, t in enumerate(ids) if i == 0 or t != ids[i - 1]]
ordered = all(a < b for a, b in zip(firsts, firsts[1:]))
print(f"users stored: {users}; delivered: {len(distinct)} distinct, {len(ids) - len(distinct)} repeated; commit order kept: {ordered}")
print(f"integrity: {db.execute('PRAGMA integrity_check').fetchone()[0]}")
ok = len(distinct) == users and ordered and len(ids) - len(distinct) <= 1
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
