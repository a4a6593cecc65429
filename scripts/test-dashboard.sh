#!/usr/bin/env bash
# The web dashboard in a real browser: Debian's headless chromium driven by playwright-core (npm, no
# browser download), against real `cobra run` servers the test spawns on free ports (plain, TLS,
# --no-dashboard). Also the known-answer tests of the page's hand-written MD5/HMAC-MD5.
# Screenshots of every view go to target/dashboard-screenshots/.
# Tools come from scripts/install-browser.sh; a missing one skips loudly locally, fails under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "---- test-dashboard: MD5 / HMAC-MD5 known answers"
node server/dashboard/test/md5.test.js

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
PW_DIR="$PWD/.tools/browser/node_modules"
missing=()
[ -x "$CHROMIUM" ] || missing+=("chromium at $CHROMIUM")
[ -f "$PW_DIR/playwright-core/package.json" ] || missing+=("playwright-core in $PW_DIR")
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# shellcheck source=lib/common.sh
. scripts/lib/common.sh
require_tools test-dashboard scripts/install-browser.sh "${missing[@]}"

cargo build -q -p cobra-server --bin cobra
echo "---- test-dashboard: browser test (chromium $("$CHROMIUM" --version 2>/dev/null | awk '{print $2}'))"
COBRA_BIN="$PWD/target/debug/cobra" CHROMIUM="$CHROMIUM" NODE_PATH="$PW_DIR" \
  SCREENSHOTS="$PWD/target/dashboard-screenshots" \
  timeout 300 node server/dashboard/test/dashboard.test.js
