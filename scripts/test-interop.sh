#!/usr/bin/env bash
# Interop with third-party peers that `cargo test --workspace` cannot run by default:
#  - wire/tests/interop_python.rs (cobra-wire's permessage-deflate against Python `websockets`, both
#    directions): #[ignore]d in plain `cargo test` because it needs a Python with `websockets`; here it
#    runs with the pinned one from .tools/pyws-venv (scripts/install-peers.sh).
# The root tests tests/interop_cobras.rs and tests/interop_deflate.rs run in `cargo test --workspace`
# (they find the peers themselves, with the same skip policy).
# A missing peer skips loudly locally and fails under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/common.sh
. scripts/lib/common.sh

PYTHON="$PWD/.tools/pyws-venv/bin/python"
if [ ! -x "$PYTHON" ] || ! "$PYTHON" -c 'import websockets' 2>/dev/null; then
  require_tools test-interop scripts/install-peers.sh "Python websockets at $PYTHON"
fi

echo "---- test-interop: cobra-wire permessage-deflate vs Python websockets $("$PYTHON" -c 'import websockets; print(websockets.__version__)')"
COBRA_TEST_PYTHON="$PYTHON" cargo test -p cobra-wire --test interop_python -- --include-ignored
