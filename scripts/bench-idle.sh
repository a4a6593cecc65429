#!/usr/bin/env bash
# Idle connection scale: for each count (default 10k, 50k, 100k), a fresh `cobra run` (embedded backend),
# then `cobra bench --idle N` holds N authenticated idle connections spread over 127.0.0.x source
# addresses, and reads the server's VmRSS before and after from /proc. Prints one line per count.
# A count beyond what the file-descriptor limit allows (`ulimit -Hn`, one descriptor per connection in
# each process) is reported as not measurable rather than silently lowered.
#
# Usage: scripts/bench-idle.sh [COUNT...]      Env: COBRA_BIN, BENCH_SERVER_CPU=0, BENCH_TOOL_CPU=1,
#        BENCH_IDLE_OPTS="--no-deflate --idle-sources 4"  more `cobra bench` options,
#        BENCH_MASSIF=N  also run the server under valgrind massif with N connections and print the top
#                        allocation sites (slow: keep N around 1000).
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
TOOL_CPU="${BENCH_TOOL_CPU:-1}"
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(10000 50000 100000)
WORK="$(mktemp -d /tmp/cobra-idle.XXXXXX)"
SERVER_PID=""
trap stop_server_and_clean EXIT

ulimit -n "$(ulimit -Hn)"
FD_LIMIT="$(ulimit -n)"
bench_cobra_bin "$ROOT"
"$COBRA_BIN" init --apps-config "$WORK/apps.yaml" --force >/dev/null
export COBRA_APPS_CONFIG="$WORK/apps.yaml"

start() { # $@ = command prefix (e.g. valgrind ...)
  PORT="$(free_port)"
  SERVER_WAIT_SECONDS=30 start_server bench-idle "$WORK/server.log" taskset -c "$SERVER_CPU" "$@" \
    "$COBRA_BIN" run --host 127.0.0.1 --port "$PORT" --apps-config "$WORK/apps.yaml" --max-connections "$MAX_CONN"
}
stop() {
  kill -INT "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

echo "fd limit (ulimit -Hn): $FD_LIMIT"
for n in "${COUNTS[@]}"; do
  if [ "$n" -gt $((FD_LIMIT - 200)) ]; then
    echo "$n idle: not measurable here: needs $n descriptors per process, ulimit -Hn is $FD_LIMIT"
    continue
  fi
  MAX_CONN=$((n + 1000))
  start
  # shellcheck disable=SC2086
  taskset -c "$TOOL_CPU" "$COBRA_BIN" bench --endpoint "ws://127.0.0.1:$PORT" --publishers 0 --subscribers 0 \
    --duration 0.1 --idle "$n" --server-pid "$SERVER_PID" --json --quiet ${BENCH_IDLE_OPTS:-} >"$WORK/idle-$n.json"
  python3 - "$WORK/idle-$n.json" <<'PY'
import json, sys
i = json.load(open(sys.argv[1]))["idle"]
print(f"{i['requested']} idle: {i['held']} held ({i['failed']} failed) in {i['connect_seconds']:.1f} s over "
      f"{len(i['sources']) or 1} source address(es); server RSS {i['server_rss_before_kib']} -> "
      f"{i['server_rss_after_kib']} KiB = {i['server_rss_per_connection_bytes']:.0f} B per connection")
PY
  stop
done

if [ -n "${BENCH_MASSIF:-}" ]; then
  MAX_CONN=$((BENCH_MASSIF + 1000))
  start valgrind --tool=massif --massif-out-file="$WORK/massif.out" --threshold=0.5 --detailed-freq=1
  taskset -c "$TOOL_CPU" "$COBRA_BIN" bench --endpoint "ws://127.0.0.1:$PORT" --publishers 0 --subscribers 0 \
    --duration 0.1 --idle "$BENCH_MASSIF" --timeout 60 --quiet >/dev/null
  stop
  # The peak snapshot's allocation tree: what holds the memory of BENCH_MASSIF idle connections.
  ms_print "$WORK/massif.out" | awk '/^ *n *time/ {n++} n>=2' | head -120
fi
