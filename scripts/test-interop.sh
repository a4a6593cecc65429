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

PYTHON="$PWD/.tools/pyws-venv/bin/python"
if [ ! -x "$PYTHON" ] || ! "$PYTHON" -c 'import websockets' 2>/dev/null; then
  if [ "${CI:-}" = true ]; then
    echo "test-interop: FAIL: no Python websockets at $PYTHON under CI (run scripts/install-peers.sh)" >&2
    exit 1
  fi
  echo "###############################################################################" >&2
  echo "# test-interop: SKIPPED: no Python websockets at $PYTHON (run scripts/install-peers.sh)." >&2
  echo "# Under CI=true this fails." >&2
  echo "###############################################################################" >&2
  exit 0
fi

echo "---- test-interop: cobra-wire permessage-deflate vs Python websockets $("$PYTHON" -c 'import websockets; print(websockets.__version__)')"
COBRA_TEST_PYTHON="$PYTHON" cargo test -p cobra-wire --test interop_python -- --include-ignored
