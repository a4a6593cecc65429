#!/usr/bin/env bash
# Installs what the dashboard's browser test (scripts/test-dashboard.sh) needs:
#   chromium        Debian's headless browser (apt, /usr/bin/chromium); never a browser download
#   playwright-core the npm driver only (no bundled browsers), under .tools/browser (gitignored)
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
PLAYWRIGHT_CORE_VERSION="${PLAYWRIGHT_CORE_VERSION:-1.65.2}"

if command -v chromium >/dev/null 2>&1; then
  echo "chromium: already installed ($(chromium --version 2>/dev/null || echo '?'))"
else
  echo "chromium: installing with apt"
  apt_install chromium
fi

DIR="$ROOT/.tools/browser"
# playwright-core downloads no browser on install (only the `playwright` package does).
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
  npm_pinned playwright-core "$DIR" playwright-core "$PLAYWRIGHT_CORE_VERSION" cobra-dashboard-test
echo "playwright-core: NODE_PATH=$DIR/node_modules"
