#!/usr/bin/env bash
# The server's end-to-end protocol suites again, on the Redis backend sharded over three local
# redis-server nodes (issue 3). Every test server gets a Redis namespace of its own, so the suites
# run in parallel on the same nodes. Skips loudly without redis-server; fails under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "test-redis: redis-server is not installed (required under CI)" >&2
    exit 1
  fi
  echo "test-redis: SKIPPED: redis-server is not installed (apt-get install redis-server)" >&2
  exit 0
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

urls=()
for i in 1 2 3; do
  port=$(free_port)
  mkdir -p "$work/$i"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/$i" \
    --logfile "$work/$i/redis.log" &
  pids+=("$!")
  urls+=("redis://127.0.0.1:$port")
done
for url in "${urls[@]}"; do
  port=${url##*:}
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue 2; fi
    sleep 0.05
  done
  echo "test-redis: redis-server on port $port did not start" >&2
  cat "$work"/*/redis.log >&2 || true
  exit 1
done

COBRA_TEST_REDIS_URLS=$(IFS=';'; echo "${urls[*]}")
export COBRA_TEST_REDIS_URLS
echo "test-redis: the protocol suites over $COBRA_TEST_REDIS_URLS"
cargo test -p cobra-server --test protocol --test history --test backpressure --test http_and_deflate \
  --test interop_python
