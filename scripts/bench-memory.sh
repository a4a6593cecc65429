#!/usr/bin/env bash
# Memory of channel history on the embedded backend (the README's sizing figure): a fresh `cobra run`,
# a warm-up run of `cobra bench` on another app (so runtime, allocator and connection buffers are already
# grown), then CHANNELS publishers fill CHANNELS channels of app1 past channel_max_length (1000) with SIZE-byte
# messages; the server's VmRSS growth over that fill, divided by the channels, is the memory one full channel
# of history holds. (With the Redis backend history lives in Redis, not in the server.)
#
# Usage: scripts/bench-memory.sh        Env: COBRA_BIN (default: build the bench profile), CHANNELS=50, SIZE=300
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
CHANNELS="${CHANNELS:-50}"
SIZE="${SIZE:-300}"
WORK="$(mktemp -d /tmp/cobra-mem.XXXXXX)"
SERVER_PID=""
trap 'stop_server_and_clean INT' EXIT
bench_cobra_bin "$ROOT"
cat > "$WORK/apps.yaml" <<YAML
apps:
  app1: {roles: {r: {secret: s1, permissions: [publish, subscribe]}}}
  app2: {roles: {r: {secret: s2, permissions: [publish, subscribe]}}}
channel_max_length: 1000
YAML
PORT="$(free_port)"
start_server bench-memory "$WORK/server.log" \
  "$COBRA_BIN" run --host 127.0.0.1 --port "$PORT" --apps-config "$WORK/apps.yaml"
rss() { awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
bench() { # $1 appkey $2 secret $3 messages per channel (at least): runs of 1 s at full speed until published
  local want=$(( $3 * CHANNELS )) done=0 n
  while [ "$done" -lt "$want" ]; do
    n=$("$COBRA_BIN" bench --endpoint "ws://127.0.0.1:$PORT" --appkey "$1" --rolename r --rolesecret "$2" \
      -n "$CHANNELS" -m 0 --channels "$CHANNELS" --size "$SIZE" --rate 0 --duration 1 --no-deflate 2>/dev/null \
      | sed -n 's/^published *\([0-9]*\) .*/\1/p')
    done=$((done + ${n:-0}))
  done
}
bench app2 s2 100                 # warm-up on other channels: 100 messages each
sleep 1; before=$(rss)
bench app1 s1 1100                # past channel_max_length: every channel holds 1000
sleep 1; after=$(rss)
per_channel=$(( (after - before) / CHANNELS ))
echo "history: $CHANNELS channels x 1000 messages of $SIZE bytes: RSS +$((after - before)) KiB" \
     "= $per_channel KiB per full channel, $(( (after - before) * 1024 / CHANNELS / 1000 )) bytes per message"
