#!/usr/bin/env bash
# The server's end-to-end protocol suites again on the Redis backend, in two stages:
#   nodes:   sharded over three standalone redis-server nodes (COBRA_TEST_REDIS_URLS, issue 3);
#   cluster: through a Redis Cluster of 6 processes, 3 primaries + 3 replicas, made with
#            `redis-cli --cluster create` (COBRA_TEST_REDIS_CLUSTER, `--redis-cluster`, issue 18).
# TEST_REDIS_STAGES=nodes|cluster|all (default all) picks. Every test server gets a Redis namespace
# of its own, so the suites run in parallel on the same nodes. Skips loudly without redis-server
# (and the cluster stage without redis-cli); fails under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/common.sh
. scripts/lib/common.sh
# shellcheck source=lib/redis-cluster.sh
. scripts/lib/redis-cluster.sh

STAGES="${TEST_REDIS_STAGES:-all}"
case "$STAGES" in
  nodes | cluster | all) ;;
  *)
    echo "test-redis: TEST_REDIS_STAGES must be nodes, cluster or all (got '$STAGES')" >&2
    exit 2
    ;;
esac

command -v redis-server >/dev/null 2>&1 || require_tools test-redis scripts/setup.sh redis-server
if [ "$STAGES" != nodes ]; then
  command -v redis-cli >/dev/null 2>&1 || require_tools test-redis scripts/install-redis-tools.sh redis-cli
fi

SUITES=(--test protocol --test history --test backpressure --test http_and_deflate --test interop_python)

work=$(mktemp -d)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_all
  rm -rf "$work"
}
trap cleanup EXIT

# start_node DIR PORT [redis-server options]: a redis-server without persistence; waits for it.
start_node() {
  local dir=$1 port=$2
  shift 2
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" "$@" &
  pids+=("$!")
  wait_port "$port" "$!" || {
    echo "test-redis: redis-server on port $port did not start" >&2
    cat "$dir/redis.log" >&2 || true
    exit 1
  }
}

# Built once, outside the timed stages.
cargo test -p cobra-server "${SUITES[@]}" --no-run

if [ "$STAGES" = nodes ] || [ "$STAGES" = all ]; then
  urls=()
  for i in 1 2 3; do
    port=$(cluster_free_port)
    start_node "$work/nodes/$i" "$port"
    urls+=("redis://127.0.0.1:$port")
  done
  COBRA_TEST_REDIS_URLS=$(IFS=';'; echo "${urls[*]}")
  echo "test-redis: [nodes] the protocol suites over $COBRA_TEST_REDIS_URLS"
  COBRA_TEST_REDIS_URLS="$COBRA_TEST_REDIS_URLS" cargo test -p cobra-server "${SUITES[@]}"
  stop_all
fi

if [ "$STAGES" = cluster ] || [ "$STAGES" = all ]; then
  ports=()
  for i in 1 2 3 4 5 6; do
    port=$(cluster_free_port)
    # A short node timeout: a lost node is noticed quickly (nothing is killed here).
    start_node "$work/cluster/$i" "$port" --cluster-enabled yes --cluster-node-timeout 2000 \
      --cluster-config-file "$work/cluster/$i/nodes.conf"
    ports+=("$port")
  done
  CLUSTER_LOG="$work/cluster/create.log" redis_cluster_create 1 "${ports[@]}"
  seeds=()
  for port in "${ports[@]}"; do seeds+=("redis://127.0.0.1:$port"); done
  COBRA_TEST_REDIS_CLUSTER=$(IFS=','; echo "${seeds[*]}")
  echo "test-redis: [cluster] the protocol suites through the Redis Cluster $COBRA_TEST_REDIS_CLUSTER"
  COBRA_TEST_REDIS_CLUSTER="$COBRA_TEST_REDIS_CLUSTER" cargo test -p cobra-server "${SUITES[@]}"
  stop_all
fi
