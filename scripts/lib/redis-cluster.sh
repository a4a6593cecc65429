# Shell helpers making a local Redis Cluster of real processes, sourced by scripts/test-redis.sh and
# benches/compare.sh (the Rust tests have the same in server/tests/support/redis.rs). Needs bash,
# python3 (free ports), redis-server and redis-cli.

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# A free loopback port whose cluster bus port (port + 10000) is free too.
cluster_free_port() {
  python3 - <<'PY'
import socket
for _ in range(200):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    if port > 55000:
        s.close(); continue
    try:
        b = socket.socket(); b.bind(("127.0.0.1", port + 10000)); b.close()
    except OSError:
        s.close(); continue
    s.close(); print(port); break
PY
}


# redis_cluster_create REPLICAS PORT... : `redis-cli --cluster create` over the running
# cluster-enabled nodes on PORT..., then waits (polling, at most ~30 s) until every node reports
# `cluster_state:ok` with all 16384 slots served and every replica has finished its first sync.
redis_cluster_create() {
  local replicas=$1
  shift
  local addrs=() port
  for port in "$@"; do addrs+=("127.0.0.1:$port"); done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$replicas" --cluster-yes \
    </dev/null >"${CLUSTER_LOG:-/dev/null}" 2>&1 || {
    echo "redis-cluster: redis-cli --cluster create failed" >&2
    [ -n "${CLUSTER_LOG:-}" ] && cat "$CLUSTER_LOG" >&2
    return 1
  }
  local info repl ok
  for _ in $(seq 1 600); do
    ok=1
    for port in "$@"; do
      info=$(redis-cli -p "$port" cluster info 2>/dev/null || true)
      repl=$(redis-cli -p "$port" info replication 2>/dev/null || true)
      if ! grep -q 'cluster_state:ok' <<<"$info" || ! grep -q 'cluster_slots_ok:16384' <<<"$info" ||
        ! { grep -q 'role:master' <<<"$repl" || grep -q 'master_link_status:up' <<<"$repl"; }; then
        ok=0
        break
      fi
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.05
  done
  echo "redis-cluster: the cluster on ports $* is not ok after 30 s" >&2
  return 1
}
