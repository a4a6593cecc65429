#!/usr/bin/env bash
# Tools of the game-engine and desktop stage (scripts/test-engines.sh), idempotent:
# - Debian mono-complete: `mcs` compiles the Unity package's C# runtime and its test program, `mono` runs it;
# - Debian mingw-w64: the x86_64-pc-windows-gnu C compiler and linker (ring's C code, cobra.dll, the C example);
# - Debian wine (+ wine64): runs the Windows C example against our server, headless;
# - the rustup target x86_64-pc-windows-gnu.
# The Android/iOS/macOS cross tools are scripts/install-mobile-tools.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/common.sh
. scripts/lib/common.sh

need=()
command -v mcs >/dev/null 2>&1 && command -v mono >/dev/null 2>&1 || need+=(mono-complete)
command -v x86_64-w64-mingw32-gcc-posix >/dev/null 2>&1 || need+=(mingw-w64)
command -v wine >/dev/null 2>&1 || need+=(wine)
{ [ -x /usr/lib/wine/wine64 ] || command -v wine64 >/dev/null 2>&1; } || need+=(wine64)
if [ ${#need[@]} -gt 0 ]; then
  apt_install "${need[@]}"
fi
rustup target add x86_64-pc-windows-gnu >/dev/null
echo "engines tools: $(mono --version | head -1), $(x86_64-w64-mingw32-gcc-posix --version | head -1), $(wine --version 2>/dev/null)"
