#!/usr/bin/env bash
# One-time setup of everything the full test suite needs. Idempotent: each step is skipped when already done.
# Needs root (or sudo) for apt; everything else lands in .tools/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/common.sh
. scripts/lib/common.sh

# System packages: redis-server (Redis backend tests), libjna-java (Kotlin on the JVM), clang/lld/llvm (Swift header
# check, ring cross-compilation for the mobile checks), cmake (C/C++ examples), valgrind (C ABI leak check).
need=()
for p in redis-server:redis-server clang:clang ld.lld:lld llvm-ar-14:llvm cmake:cmake valgrind:valgrind; do
  command -v "${p%%:*}" >/dev/null 2>&1 || need+=("${p##*:}")
done
[ -f /usr/share/java/jna.jar ] || need+=(libjna-java)
if [ ${#need[@]} -gt 0 ]; then
  apt_install "${need[@]}"
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true

# Third-party peers (Python cobras, Python websockets, Node ws), the mobile/Kotlin tool chain and the rest.
# Every scripts/install-*.sh is run, in name order: each stage of the suite that needs a tool ships its own installer.
for s in scripts/install-*.sh; do
  [ -x "$s" ] && "$s"
done
echo "setup: done"
