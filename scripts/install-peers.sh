#!/usr/bin/env bash
# Installs the third-party peers the interop tests run against, under .tools/ (gitignored):
#   .tools/cobras-venv  the original Python `cobras` 2.9.137 (server + `cobra` CLI), see tests/peers/cobras/
#   .tools/pyws-venv    Python `websockets` (a plain WebSocket peer for the SDK interop tests)
#   .tools/node         Node `ws` (same, in JavaScript)
# Idempotent: each step is skipped when its result is already there. Safe to re-run in CI.
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
TOOLS="$ROOT/.tools"
PEERS="$ROOT/tests/peers/cobras"
PYTHON="${PYTHON:-python3}"
# Versions pinned so every machine tests against the same peers.
PY_WEBSOCKETS_VERSION="${PY_WEBSOCKETS_VERSION:-17.4}"
NODE_WS_VERSION="${NODE_WS_VERSION:-8.23.0}"

mkdir -p "$TOOLS"

# 1. cobras, exactly as tests/peers/cobras/README.md (copied from ../shared/peers/cobras) says.
VENV="$TOOLS/cobras-venv"
if [ -x "$VENV/bin/cobra" ] && HOME="$TOOLS" "$VENV/bin/cobra" --version >/dev/null 2>&1; then
  echo "cobras: already installed"
else
  echo "cobras: installing into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'setuptools<70' wheel
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-build-isolation --no-deps \
    -r "$PEERS/requirements.txt"
  SP="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  cp "$PEERS/cobras_py311_compat.py" "$SP/"
  echo 'import cobras_py311_compat' > "$SP/cobras_py311_compat.pth"
fi
echo "cobras: $(HOME="$TOOLS" "$VENV/bin/cobra" --version 2>/dev/null) at $VENV/bin/cobra"

# 2. Python websockets, in its own venv: the cobras venv pins the old 10.4 on purpose.
PYWS="$TOOLS/pyws-venv"
pip_pinned "python websockets" "$PYWS" websockets "$PY_WEBSOCKETS_VERSION"
echo "python websockets: $PYWS/bin/python"

# 3. Node ws.
NODE_DIR="$TOOLS/node"
npm_pinned "node ws" "$NODE_DIR" ws "$NODE_WS_VERSION" cobra-test-peers
echo "node ws: NODE_PATH=$NODE_DIR/node_modules"
