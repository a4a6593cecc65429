#!/usr/bin/env bash
# Installs the real peers the bot tests (server/tests/bots_*.rs) talk to. Idempotent, safe to re-run in CI.
#   PostgreSQL server binaries (Debian `postgresql`): the tests run initdb/pg_ctl from /usr/lib/postgresql/*/bin
#   .tools/statsd       the statsd daemon from npm (console backend)
#   .tools/sentry-venv  the official `sentry-sdk` Python package (its envelope parser checks what the bot sends)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
PYTHON="${PYTHON:-python3}"
STATSD_VERSION="${STATSD_VERSION:-0.9.0}"
SENTRY_SDK_VERSION="${SENTRY_SDK_VERSION:-2.75.0}"
mkdir -p "$TOOLS"

if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  echo "postgresql: already installed"
else
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql
fi

if [ -f "$TOOLS/statsd/node_modules/statsd/stats.js" ]; then
  echo "statsd: already installed"
else
  mkdir -p "$TOOLS/statsd"
  (cd "$TOOLS/statsd" && npm install --silent --no-audit --no-fund --no-save "statsd@${STATSD_VERSION}" >/dev/null)
fi

VENV="$TOOLS/sentry-venv"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import sentry_sdk, sys; sys.exit(sentry_sdk.VERSION != '$SENTRY_SDK_VERSION')" 2>/dev/null; then
  echo "sentry-sdk: already installed"
else
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "sentry-sdk==${SENTRY_SDK_VERSION}"
fi
echo "bots: peers ready (statsd $STATSD_VERSION, sentry-sdk $SENTRY_SDK_VERSION)"
