#!/usr/bin/env bash
# redis-cli (Debian `redis-tools`): the Redis Cluster tests (server/tests/redis_cluster.rs) and the
# `cluster3` target of benches/compare.sh create and reshard clusters with `redis-cli --cluster`.
# (Usually already there: `redis-server` depends on it.) Idempotent.
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
if command -v redis-cli >/dev/null 2>&1; then
  echo "redis-tools: already installed"
  exit 0
fi
apt_install redis-tools
