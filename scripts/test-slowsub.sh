#!/usr/bin/env bash
# CI stage for slow subscribers (issue 23): a subscriber paused while a publisher runs, then
# resumed, measured by `cobra bench --paused` on the embedded backend and on Redis:
#   - within `channel_max_length`: it receives every message, none missed (exact counts), and
#     the server did catch it up from history (`cobra_catchup_started_total` > 0);
#   - beyond it with `--paused-fast-forward`: received + missed == published exactly, and each
#     gap's reported count equals the jump in sequence numbers after it;
#   - beyond it without: `out_of_sync` once, received + missed <= published;
#   - in both, the count the server reports in /metrics (`cobra_catchup_missed_messages_total`)
#     equals what the subscriber was told, and `history_expired` counts each gap once.
# Takes about 1.5 minutes here with the defaults (a debug build; the issue's full scale is
# 200k messages/s paused 10 s: SLOWSUB_RATE=200000 SLOWSUB_PAUSE=10 with a release build,
# COBRA_BIN=target/release/cobra). Redis: needs redis-server (skips loudly, fails under CI=true).
# Env: SLOWSUB_RATE=3000 messages/s, SLOWSUB_PAUSE=5 seconds, COBRA_BIN=path (skips the build).
set -euo pipefail
cd "$(dirname "$0")/.."

RATE="${SLOWSUB_RATE:-3000}"
PAUSE="${SLOWSUB_PAUSE:-5}"
# Publishing: 1 s before the pause, the pause, 2 s after it.
DUR="$(python3 -c "print(1 + $PAUSE + 2)")"
if [ -z "${COBRA_BIN:-}" ]; then
  cargo build -p cobra-server --bin cobra
  COBRA_BIN="target/debug/cobra"
fi
WORK="$(mktemp -d /tmp/cobra-slowsub.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=lib/common.sh
. scripts/lib/common.sh

"$COBRA_BIN" init --apps-config "$WORK/apps.yaml" --force >/dev/null
export COBRA_APPS_CONFIG="$WORK/apps.yaml" HOME="$WORK"

BACKENDS=(embedded)
if command -v redis-server >/dev/null 2>&1; then
  BACKENDS+=(redis)
else
  skip_or_fail "test-slowsub (on Redis)" scripts/setup.sh redis-server
fi

SERVER_PID=""
SERVER_PORT=""
REDIS_PID=""
start_server() { # backend channel_max_length
  SERVER_PORT="$(free_port)"
  local extra=()
  if [ "$1" = redis ]; then
    local rport
    rport="$(free_port)"
    mkdir -p "$WORK/redis-$rport"
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/redis-$rport" \
      >"$WORK/redis-$rport.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    wait_port "$rport" "$REDIS_PID" || { echo "test-slowsub: redis-server did not start" >&2; exit 1; }
    extra=(--redis "redis://127.0.0.1:$rport")
  fi
  # A small outbound queue: the pause overflows it (and the socket buffers, small on the
  # paused connection: --stalled-rcvbuf) long before the history.
  "$COBRA_BIN" run --host 127.0.0.1 --port "$SERVER_PORT" --apps-config "$WORK/apps.yaml" \
    --channel-max-length "$2" --outbound-queue-bytes 65536 "${extra[@]}" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_port "$SERVER_PORT" "$SERVER_PID" || {
    echo "test-slowsub: the server did not start: $(tail -c 500 "$WORK/server.log")" >&2
    exit 1
  }
}
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  if [ -n "$REDIS_PID" ]; then
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=""
  fi
}

# case: within | fast_forward | strict
run_case() { # backend case
  local kept subs=0 flags=()
  case "$2" in
    within) kept=$((RATE * 20 + 100000)); subs=1 ;;
    fast_forward) kept=1000; flags=(--paused-fast-forward) ;;
    strict) kept=1000 ;;
  esac
  start_server "$1" "$kept"
  echo "test-slowsub: $1 / $2: $RATE msg/s, paused ${PAUSE} s, channel_max_length $kept"
  "$COBRA_BIN" bench --endpoint "ws://127.0.0.1:$SERVER_PORT" --json --quiet --no-deflate \
    --rate "$RATE" --duration "$DUR" --subscribers "$subs" --paused 1 --pause-at 1 \
    --pause-for "$PAUSE" --stalled-rcvbuf 4096 --timeout 30 "${flags[@]}" >"$WORK/report.json"
  curl -sf "http://127.0.0.1:$SERVER_PORT/metrics" >"$WORK/metrics.txt"
  stop_server
  python3 - "$2" "$WORK/report.json" "$WORK/metrics.txt" <<'PY'
import json, sys
case, report, metrics = sys.argv[1], json.load(open(sys.argv[2])), open(sys.argv[3]).read()
m = {}
for line in metrics.splitlines():
    if line and not line.startswith("#"):
        name, _, value = line.rpartition(" ")
        m[name] = float(value)
p = report["paused"]
expired = m['cobra_laggards_cut_off_total{reason="history_expired"}']
print(f"  published {report['published']} ({report['published_per_sec']:.0f}/s), paused one: "
      f"received {p['received']} + missed {p['missed']} of {p['expected']}, {p['gaps']} gap(s), "
      f"out_of_sync {p['out_of_sync']}; server: catch-ups {m['cobra_catchup_started_total']:.0f}, "
      f"missed {m['cobra_catchup_missed_messages_total']:.0f}, "
      f"history_expired {expired:.0f}")
def check(ok, what):
    if not ok:
        sys.exit(f"test-slowsub: {case}: {what}\n{json.dumps(report, indent=1)}")
check(report["published"] == report["acked"] > 0, "every publish acknowledged")
check(p["expected"] == report["published"], "one channel, one publisher")
check(p["out_of_order"] == 0 and p["gap_mismatches"] == 0 and p["notices"] == [], "order, gaps")
check(m["cobra_catchup_started_total"] > 0, "the paused one caught up from history")
check(m["cobra_catchup_missed_messages_total"] == p["missed"], "the server's missed count is what it was told")
if case == "within":
    check(report["lost"] == 0, "the reading subscriber lost nothing")
    check(p["received"] == p["expected"] and p["missed"] == 0, "nothing lost within the history")
    check(expired == 0, "no history_expired")
elif case == "fast_forward":
    check(p["missed"] > 0 and p["gaps"] >= 1, "the pause outlasted the history")
    check(p["received"] + p["missed"] == p["expected"], "received + missed == published")
    check(expired == p["gaps"], "history_expired counts each gap once")
else:
    check(p["out_of_sync"] == 1 and p["missed"] > 0, "out_of_sync with the count")
    check(p["received"] + p["missed"] <= p["expected"], "received + missed <= published")
    check(expired == 1, "history_expired counted once")
PY
}

for backend in "${BACKENDS[@]}"; do
  for c in within fast_forward strict; do
    run_case "$backend" "$c"
  done
done
echo "test-slowsub: ok"
