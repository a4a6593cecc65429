#!/usr/bin/env bash
# Installs what the dashboard's browser test (scripts/test-dashboard.sh) needs:
#   chromium        Debian's headless browser (apt, /usr/bin/chromium); never a browser download
#   playwright-core the npm driver only (no bundled browsers), under .tools/browser (gitignored)
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
PLAYWRIGHT_CORE_VERSION="${PLAYWRIGHT_CORE_VERSION:-1.65.2}"

if command -v chromium >/dev/null 2>&1; then
  echo "chromium: already installed ($(chromium --version 2>/dev/null || echo '?'))"
else
  echo "chromium: installing with apt"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
fi

DIR="$ROOT/.tools/browser"
# shellcheck source=lib/common.sh
. "$ROOT/scripts/lib/common.sh"
# playwright-core downloads no browser on install (only the `playwright` package does).
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
  npm_pinned playwright-core "$DIR" playwright-core "$PLAYWRIGHT_CORE_VERSION" cobra-dashboard-test
echo "playwright-core: NODE_PATH=$DIR/node_modules"
