#!/usr/bin/env bash
# Installs the real peers the bot tests (server/tests/bots_*.rs) talk to. Idempotent, safe to re-run in CI.
#   PostgreSQL server binaries (Debian `postgresql`): the tests run initdb/pg_ctl from /usr/lib/postgresql/*/bin
#   .tools/statsd       the statsd daemon from npm (console backend)
#   .tools/sentry-venv  the official `sentry-sdk` Python package (its envelope parser checks what the bot sends)
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
TOOLS="$ROOT/.tools"
STATSD_VERSION="${STATSD_VERSION:-0.9.0}"
SENTRY_SDK_VERSION="${SENTRY_SDK_VERSION:-2.75.0}"
mkdir -p "$TOOLS"

if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  echo "postgresql: already installed"
else
  apt_install postgresql
fi

if [ -f "$TOOLS/statsd/node_modules/statsd/stats.js" ]; then
  echo "statsd: already installed"
else
  mkdir -p "$TOOLS/statsd"
  (cd "$TOOLS/statsd" && npm install --silent --no-audit --no-fund --no-save "statsd@${STATSD_VERSION}" >/dev/null)
fi

pip_pinned sentry-sdk "$TOOLS/sentry-venv" sentry-sdk "$SENTRY_SDK_VERSION"
echo "bots: peers ready (statsd $STATSD_VERSION, sentry-sdk $SENTRY_SDK_VERSION)"
