#!/usr/bin/env bash
# SDK memory of an idle connected client (issue 21): a real `cobra run`, then the release build of
# `examples/idle_memory.rs` (the SDK as a game ships it: `[profile.release]`, size-tuned) connects one
# client with permessage-deflate negotiated, publishes one 300-byte event, gets it acked and back,
# and reads its own RSS and the allocator's live bytes before and after; then CLIENTS more clients
# for the cost of each further one. Fails when the first client grows anonymous RSS (heap, stacks;
# not the code pages) or each further one grows RSS by more than LIMIT_KIB.
#
# Usage: scripts/check-sdk-idle.sh      Env: COBRA_BIN (default: debug build of the server; its
#        speed does not matter here), IDLE_MEMORY_BIN (default: build the example), CLIENTS=10,
#        LIMIT_KIB=100, RUNS=3 (each run is a fresh process; the check holds for the median run),
#        PUBLISH=N (then also print the publishing rate over N events and the wire bytes per event)
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
CLIENTS="${CLIENTS:-10}"
LIMIT_KIB="${LIMIT_KIB:-100}"
RUNS="${RUNS:-3}"
WORK="$(mktemp -d /tmp/cobra-sdk-idle.XXXXXX)"
SERVER_PID=""
trap stop_server_and_clean EXIT

if [ -z "${COBRA_BIN:-}" ]; then
  (cd "$ROOT" && cargo build -p cobra-server --bin cobra >&2)
  COBRA_BIN="$ROOT/target/debug/cobra"
fi
if [ -z "${IDLE_MEMORY_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --example idle_memory >&2)
  IDLE_MEMORY_BIN="$ROOT/target/release/examples/idle_memory"
fi

SECRET=0123456789abcdef0123456789abcdef
cat >"$WORK/apps.yaml" <<YAML
apps:
  _pubsub:
    roles:
      pubsub: {secret: $SECRET, permissions: [publish, subscribe, unsubscribe]}
YAML
PORT="$(free_port)"
SERVER_WAIT_SECONDS=20 start_server check-sdk-idle "$WORK/server.log" \
  "$COBRA_BIN" run --host 127.0.0.1 --port "$PORT" --apps-config "$WORK/apps.yaml"

for run in $(seq 1 "$RUNS"); do
  "$IDLE_MEMORY_BIN" --endpoint "ws://127.0.0.1:$PORT" --appkey _pubsub --rolename pubsub --rolesecret "$SECRET" \
    --clients "$CLIENTS" >"$WORK/run-$run.json"
  cat "$WORK/run-$run.json" >&2
done
if [ "${PUBLISH:-0}" -gt 0 ]; then
  # Publishing rate and wire bytes per event, after the memory runs (printed, not checked here).
  "$IDLE_MEMORY_BIN" --endpoint "ws://127.0.0.1:$PORT" --appkey _pubsub --rolename pubsub --rolesecret "$SECRET" \
    --clients 0 --publish "$PUBLISH" | tail -n +2
fi

python3 - "$LIMIT_KIB" "$WORK"/run-*.json <<'PY'
import json, statistics, sys
limit = float(sys.argv[1])
runs = [json.loads(open(p).readline()) for p in sys.argv[2:]]
def med(key):
    return statistics.median(r[key] for r in runs)
# The first client's file-backed growth is the SDK's code paged in (shared with the library file,
# paid once per process whatever the clients): the check is on anonymous memory for it.
first, each = med("first_rss_anon_kib"), med("each_rss_kib")
print(f"idle connected SDK client, permessage-deflate negotiated (release build, median of {len(runs)} runs):")
print(f"  first client: RSS +{med('first_rss_kib'):.0f} KiB (anon +{med('first_rss_anon_kib'):.0f}, file-backed +{med('first_rss_file_kib'):.0f}), "
      f"allocator live bytes +{med('first_heap_bytes') / 1024:.1f} KiB")
print(f"  each of {runs[0]['clients']} more: RSS +{each:.1f} KiB (anon +{med('each_rss_anon_kib'):.1f}, "
      f"file-backed +{med('each_rss_file_kib'):.1f}), allocator live bytes +{med('each_heap_bytes') / 1024:.1f} KiB")
bad = [f"{name} {v:.1f} KiB > {limit:.0f} KiB" for name, v in (("first client (anon)", first), ("each client", each)) if v > limit]
if bad:
    print("FAIL: " + "; ".join(bad))
    sys.exit(1)
print(f"OK: both within {limit:.0f} KiB")
PY
