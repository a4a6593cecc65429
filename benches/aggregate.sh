#!/usr/bin/env bash
# Live aggregation under load (issue 15), in one run against one embedded server: `cobra bench` publishes at
# its max rate into one channel read by ONE subscriber, which is in turn
#   none     a plain subscription (every event delivered),
#   plain    a plain StreamSQL filter with a projection (`SELECT t, p, s, k, data.fps ... WHERE data.fps >= 0`:
#            every event passes, projected),
#   groupby  a GROUP BY subscription: 3 aggregates over 100 groups (`k` is `s % 100` in every bench message),
#            1-second tumbling windows (so ~100 rows a second go out instead of the events).
# The three are interleaved, BENCH_ROUNDS times, so that the machine's load drifts over all of them alike; the
# table gives the median of each. Events/s is what the server acknowledged (publishes); "server µs/event" is the
# server's CPU time (user + system, from /proc) over the events it acknowledged, the figure to compare on a
# shared machine. The per-group state bound is what the server reports in the GROUP BY subscription's
# `rtm/subscribe/ok` (`aggregate.max_group_bytes`), read with a Python `websockets` client; the server's RSS after
# each scenario is printed too.
#
# Usage: benches/aggregate.sh
# Env:   BENCH_DURATION=3 (seconds per scenario)  BENCH_ROUNDS=3  BENCH_PUBLISHERS=10
#        BENCH_SERVER_CPU=0 BENCH_TOOL_CPU=1 (taskset cores)
#        COBRA_BIN=path  (default: build the `bench` profile of `cobra`, as benches/compare.sh does)
#        PYTHON=path     (a Python with `websockets`; default .tools/pyws-venv/bin/python, from scripts/setup.sh)
set -euo pipefail

# shellcheck source=../scripts/lib/common.sh
. "$(dirname "$0")/../scripts/lib/common.sh"
DUR="${BENCH_DURATION:-3}"
ROUNDS="${BENCH_ROUNDS:-3}"
PUBS="${BENCH_PUBLISHERS:-10}"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
TOOL_CPU="${BENCH_TOOL_CPU:-1}"
PYTHON="${PYTHON:-$ROOT/.tools/pyws-venv/bin/python}"
WORK="$(mktemp -d /tmp/cobra-aggregate-bench.XXXXXX)"
SERVER_PID=""
trap stop_server_and_clean EXIT

bench_cobra_bin "$ROOT"

proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

"$COBRA_BIN" init --apps-config "$WORK/apps.yaml" --force >/dev/null
export COBRA_APPS_CONFIG="$WORK/apps.yaml" HOME="$WORK"
PORT="$(free_port)"
start_server aggregate "$WORK/server.log" taskset -c "$SERVER_CPU" \
  "$COBRA_BIN" run --host 127.0.0.1 --port "$PORT" --apps-config "$WORK/apps.yaml"
URL="ws://127.0.0.1:$PORT"

GROUPBY='SELECT k, COUNT(*), AVG(data.fps), MAX(data.fps) FROM `{channel}` GROUP BY k WINDOW TUMBLING (1 SECOND)'
PLAIN='SELECT t, p, s, k, data.fps FROM `{channel}` WHERE data.fps >= 0'

# The per-group bound the server reports for the GROUP BY statement.
BOUND="?"
if [ -x "$PYTHON" ] && "$PYTHON" -c 'import websockets' 2>/dev/null; then
  # `cobra init` wrote the `_pubsub` app (role `pubsub`), the one `cobra bench` uses by default.
  APPKEY=_pubsub ROLE=pubsub
  SECRET="$(python3 -c 'import re, sys; print(re.search(r"_pubsub:\s+roles:\s+pubsub:\s+secret:\s*(\S+)", open(sys.argv[1]).read()).group(1))' "$WORK/apps.yaml")"
  BOUND="$("$PYTHON" - "$URL" "$ROLE" "$SECRET" "$APPKEY" "${GROUPBY//\{channel\}/bound_probe}" <<'PY'
import asyncio, base64, hashlib, hmac, json, sys
from websockets.asyncio.client import connect

async def request(ws, pdu_id, action, body):
    await ws.send(json.dumps({"action": action, "id": pdu_id, "body": body}))
    return json.loads(await ws.recv())

async def main(url, role, secret, appkey, sql):
    async with connect(f"{url}/v2?appkey={appkey}", subprotocols=["json"], compression=None) as ws:
        hs = await request(ws, 1, "auth/handshake", {"method": "role_secret", "data": {"role": role}})
        digest = hmac.new(secret.encode(), hs["body"]["data"]["nonce"].encode(), hashlib.md5).digest()
        auth = await request(ws, 2, "auth/authenticate",
                             {"method": "role_secret", "credentials": {"hash": base64.b64encode(digest).decode()}})
        assert auth["action"] == "auth/authenticate/ok", auth
        ok = await request(ws, 3, "rtm/subscribe", {"subscription_id": "probe", "filter": sql})
        assert ok["action"] == "rtm/subscribe/ok", ok
        print(ok["body"]["aggregate"]["max_group_bytes"])

asyncio.run(main(*sys.argv[1:6]))
PY
)" || BOUND="?"
else
  echo "aggregate: no Python with websockets at $PYTHON: the per-group bound is not read" >&2
fi

for round in $(seq 1 "$ROUNDS"); do
  for scenario in none plain groupby; do
    case "$scenario" in
      none) filter=() ;;
      plain) filter=(--filter "$PLAIN") ;;
      groupby) filter=(--filter "$GROUPBY") ;;
    esac
    echo "aggregate: round $round / $scenario" >&2
    c0="$(proc_cpu "$SERVER_PID")"
    taskset -c "$TOOL_CPU" "$COBRA_BIN" bench --endpoint "$URL" --json --quiet --publishers "$PUBS" \
      --subscribers 1 --channels 1 --duration "$DUR" "${filter[@]}" >"$WORK/$scenario-$round.json" \
      2>"$WORK/$scenario-$round.err" || { echo "aggregate: $scenario failed: $(tail -c 300 "$WORK/$scenario-$round.err")" >&2; exit 1; }
    echo "$(proc_cpu "$SERVER_PID") $c0 $(rss_kib "$SERVER_PID")" >"$WORK/$scenario-$round.cpu"
  done
done

python3 - "$WORK" "$ROUNDS" "$BOUND" "$DUR" "$PUBS" <<'PY'
import json, statistics, sys
work, rounds, bound, dur, pubs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
label = {"none": "no filter", "plain": "plain filter (projection, all pass)",
         "groupby": "GROUP BY k: COUNT, AVG, MAX; 100 groups, 1 s windows"}
print(f"| Subscriber ({pubs} publishers at max rate, {dur} s x {rounds} rounds, medians) | events/s | server µs/event (CPU) | delivered/s | server RSS after |")
print("|---|---:|---:|---:|---:|")
base = None
for s in ["none", "plain", "groupby"]:
    rate, us, deliv, rss = [], [], [], []
    for r in range(1, rounds + 1):
        rep = json.load(open(f"{work}/{s}-{r}.json"))
        c1, c0, kib = open(f"{work}/{s}-{r}.cpu").read().split()
        rate.append(rep["published_per_sec"])
        deliv.append(rep["delivered_per_sec"])
        us.append((float(c1) - float(c0)) * 1e6 / max(rep["acked"], 1))
        rss.append(int(kib))
    m = statistics.median(rate)
    base = base or m
    print(f"| {label[s]} | {m:,.0f} ({m / base:.2f}x) | {statistics.median(us):.2f} | {statistics.median(deliv):,.0f} | {max(rss) / 1024:.1f} MiB |")
print()
print(f"Per-group state bound reported by the server for the GROUP BY statement (`rtm/subscribe/ok` "
      f"`aggregate.max_group_bytes`): {bound} bytes, so its 100 groups hold at most "
      f"{int(bound) * 100 / 1024:.1f} KiB." if bound.isdigit() else "Per-group bound: not read (no Python websockets).")
PY
