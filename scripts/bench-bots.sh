#!/usr/bin/env bash
# Throughput of one bot per sink, on one core: `cobra bench` publishes N 300-byte events into a channel's history
# (server pinned to core 0), then `cobra bot <sink> --position 0-0 --count N` drains them pinned to core 1; the figure
# is N / wall time, with the bot's CPU time beside it. Sinks: file (plain, fsync interval), statsd (UDP to a bound
# socket that does not read: the bot's cost, not a daemon's), postgres (a server started here, fsync off).
# Usage: scripts/bench-bots.sh [N]   (release build: cargo build --release -p cobra-server --bin cobra)
# BOT_ARGS="--pdu-batch-size 1" adds options to every bot (to compare settings); SINKS="file statsd" picks sinks.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-300000}"
read -r -a EXTRA <<<"${BOT_ARGS:-}"
SINKS="${SINKS:-file statsd postgres}"
BIN="$PWD/target/release/cobra"
WORK="$(mktemp -d)"; chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -d "$WORK/pg" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=lib/common.sh
. scripts/lib/common.sh
PORT="$(free_port)"
export HOME="$WORK" COBRA_PORT="$PORT"
"$BIN" init >/dev/null
taskset -c 0 "$BIN" run --channel-max-length "$((N + 1000))" >"$WORK/server.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do "$BIN" health >/dev/null 2>&1 && break; sleep 0.1; done
# Publish at least N events (the tool runs for a duration): 1 publisher, 300-byte events, no subscriber.
published=0
while [ "$published" -lt "$N" ]; do
  out="$(taskset -c 1 "$BIN" bench -n 1 -m 0 --size 300 --duration 3 --channel-prefix botbench --json --quiet)"
  published=$((published + $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["published"])' "$out")))
done
echo "history: $published events of 300 bytes on botbench_0; each bot drains the first $N"

run() {
  local name="$1"; shift
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -o "$WORK/$name.time" -f '%U %S' taskset -c 1 "$BIN" bot "$@" --channel botbench_0 --position 0-0 \
    --count "$N" --stats-interval 0 "${EXTRA[@]}" >/dev/null 2>"$WORK/$name.err" || { cat "$WORK/$name.err"; exit 1; }
  t1=$(date +%s.%N)
  python3 - "$name" "$N" "$t0" "$t1" $(tail -1 "$WORK/$name.time") <<'PY'
import sys
name, n, t0, t1, u, s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
wall, cpu = t1 - t0, u + s
print(f"{name:9s} {n / wall:9.0f} events/s wall ({wall:.2f} s); bot CPU {cpu:.2f} s = {n / cpu:9.0f} events per CPU-second")
PY
  grep -o 'resubscribes\|stopped.*' "$WORK/$name.err" | tail -1
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); bot options: ${BOT_ARGS:-(defaults)}"
want() { [[ " $SINKS " == *" $1 "* ]]; }
want file && run file file --dir "$WORK/files" --fsync interval
want statsd || exit 0
UDP="$(free_port)"
python3 -c "import socket,time;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('127.0.0.1',$UDP));time.sleep(3600)" & PIDS+=($!)
run statsd statsd --statsd "127.0.0.1:$UDP" --fields id --gauge data.fps
want postgres || exit 0
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
PGPORT="$(free_port)"
mkdir -p "$WORK/pg" && chown postgres "$WORK/pg"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg/data" -A trust -U cobra --no-sync >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w \
  -o "-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
run postgres postgres --url "postgresql://cobra@127.0.0.1:$PGPORT/postgres" --table bench --batch-size 5000
