#!/usr/bin/env bash
# Game engines and desktop (issue 17), against our real server on loopback:
#  1. Unity package: engines/unity/Runtime compiled with mcs, (a) as on Mono/.NET and run by a test program on
#     Mono (connect, filtered subscribe, publish, 8 publishing threads, server restart, suspend/resume, metrics, an
#     aggregate (GROUP BY) subscription with exact rows,
#     main-thread dispatcher, dispose while callbacks run, handle leaks counted through cobra_live_handles);
#     (b) type-checked as Unity compiles it (UNITY_5_3_OR_NEWER, the sample MonoBehaviour, iOS `__Internal`)
#     against compile-only UnityEngine stand-ins. No Unity editor or IL2CPP runs here.
#  2. Windows: cobra.dll + import library for x86_64-pc-windows-gnu (Debian mingw-w64), its exports checked, the C
#     and C++ examples built with the mingw compilers and run under Wine (headless, throwaway WINEPREFIX): a
#     telemetry publisher and a StreamSQL-filtered subscriber, end to end, and the C FPS table (a GROUP BY
#     subscription, its output diffed with examples/c/fps_table.expected) (scripts/run-c-examples.sh). The DLL
#     size is printed.
#  3. scripts/unity-plugins.sh --no-build fills the package's Plugins/ from these builds.
# Needs scripts/install-engines.sh (mono-complete, mingw-w64, wine, the rustup target): missing tools skip loudly,
# or fail under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
WIN=x86_64-pc-windows-gnu
# shellcheck source=lib/common.sh
. scripts/lib/common.sh
step() { printf '\n---- test-engines: %s\n' "$*"; }

missing=()
for tool in mcs mono monodis x86_64-w64-mingw32-gcc-posix x86_64-w64-mingw32-g++-posix x86_64-w64-mingw32-objdump wine wineserver python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
rustup target list --installed | grep -q "^$WIN\$" || missing+=("rustup target $WIN")
require_tools test-engines scripts/install-engines.sh "${missing[@]}"

step "build libcobra (debug, as scripts/test-c.sh does) and the server"
cargo build -q -p cobra
cargo build -q -p cobra-server --bin cobra
T=$root/target/debug

work=$(mktemp -d "${TMPDIR:-/tmp}/cobra-test-engines.XXXXXX")
export WINEPREFIX=$work/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
cleanup() {
  "$root/scripts/server-for-c.sh" stop "$work/server" || true
  # Our own prefix's wineserver (and any program of it still running); other prefixes are not touched.
  [ -d "$WINEPREFIX" ] && wineserver -k 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step "start the server"
start_test_server "$root" "$work/server"

# Wine creates its prefix on first use (tens of seconds on a busy machine): start it now, in parallel with the
# Mono test and the Windows build.
(wine cmd /c exit >/dev/null 2>&1 || true) &
wine_boot=$!

unity=engines/unity
step "Unity runtime: compile with mcs (Mono/.NET profile) and the test program"
mcs -nologo -target:library -warnaserror -out:"$work/Cobra.Runtime.dll" -recurse:"$unity/Runtime/*.cs"
mcs -nologo -warnaserror -out:"$work/CobraMonoTest.exe" -r:"$work/Cobra.Runtime.dll" "$unity/Tests~/Mono/CobraMonoTest.cs"

step "Unity runtime: type-check as Unity compiles it (editor/Android, iOS) with the sample scene script"
mcs -nologo -target:library -warnaserror -define:UNITY_5_3_OR_NEWER -define:UNITY_ANDROID -out:"$work/unity-android.dll" \
  -recurse:"$unity/Runtime/*.cs" "$unity/Tests~/UnityStubs/UnityEngine.cs" "$unity/Samples~/Telemetry/CobraTelemetrySample.cs"
mcs -nologo -target:library -warnaserror -define:UNITY_5_3_OR_NEWER -define:UNITY_IOS -out:"$work/unity-ios.dll" \
  -recurse:"$unity/Runtime/*.cs" "$unity/Tests~/UnityStubs/UnityEngine.cs"
# iOS links libcobra.a into the player: every P/Invoke must bind to "__Internal", elsewhere to "cobra".
ios_other=$(monodis "$work/unity-ios.dll" | grep -o 'pinvokeimpl ("[^"]*"' | sort -u | grep -vc '"__Internal"' || true)
[ "$ios_other" = 0 ] || { echo "test-engines: FAIL: an iOS P/Invoke does not use __Internal" >&2; exit 1; }
android_libs=$(monodis "$work/unity-android.dll" | grep -o 'pinvokeimpl ("[^"]*"' | sort -u)
[ "$android_libs" = 'pinvokeimpl ("cobra"' ] || { echo "test-engines: FAIL: P/Invokes bind to $android_libs" >&2; exit 1; }
echo "P/Invoke targets: iOS __Internal, elsewhere \"cobra\""

step "Unity package: every file and folder has its .meta (immutable packages ignore those without)"
python3 scripts/unity-meta.py --check

step "Unity runtime on Mono against the server"
# Mono resolves DllImport("cobra") to libcobra.so through LD_LIBRARY_PATH.
LD_LIBRARY_PATH="$T${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" mono --debug "$work/CobraMonoTest.exe"

step "Windows: cobra.dll for $WIN (release, C library features)"
cargo build -q --release -p cobra --no-default-features --features tls --target "$WIN"
W=$root/target/$WIN/release
dll_size=$(stat -c %s "$W/cobra.dll")
echo "cobra.dll ($WIN, release): $dll_size bytes; import library libcobra.dll.a: $(stat -c %s "$W/libcobra.dll.a") bytes"
exports=$(x86_64-w64-mingw32-objdump -p "$W/cobra.dll" | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p')
# Every function declared in cobra.h (declarations may wrap: take every `cobra_name(` outside comments).
header_fns=$(grep -v '^ *\*\|^/\*' include/cobra.h | grep -o '\bcobra_[a-z0-9_]*(' | tr -d '(' | sort -u)
for fn in $header_fns; do
  grep -qw "$fn" <<<"$exports" || { echo "test-engines: FAIL: cobra.dll does not export $fn" >&2; exit 1; }
done
if grep -q 'uniffi_' <<<"$exports"; then echo "test-engines: FAIL: the C DLL exports uniffi scaffolding" >&2; exit 1; fi
echo "cobra.dll exports all $(wc -w <<<"$header_fns") functions of cobra.h"

step "Windows: the C and C++ examples built with mingw-w64 (posix threads, libgcc/libstdc++/winpthread static)"
bin=$work/win
mkdir -p "$bin/c" "$bin/cpp"
for lang in c cpp; do cp "$W/cobra.dll" "$bin/$lang/"; done
for ex in telemetry_publisher streamsql_subscriber; do
  x86_64-w64-mingw32-gcc-posix -std=c11 -Wall -Wextra -Werror -O1 -Iinclude "examples/c/$ex.c" "$W/libcobra.dll.a" \
    -static -lpthread -o "$bin/c/$ex.exe"
  x86_64-w64-mingw32-g++-posix -std=c++17 -Wall -Wextra -Werror -O1 -Iinclude "examples/cpp/$ex.cpp" "$W/libcobra.dll.a" \
    -static -lpthread -o "$bin/cpp/${ex}_cpp.exe"
done
x86_64-w64-mingw32-gcc-posix -std=c11 -Wall -Wextra -Werror -O1 -Iinclude examples/c/fps_table.c "$W/libcobra.dll.a" \
  -static -lpthread -o "$bin/c/fps_table.exe"
# The executables must need only cobra.dll and Windows' own DLLs.
for exe in "$bin"/*/*.exe; do
  deps=$(x86_64-w64-mingw32-objdump -p "$exe" | awk '/DLL Name:/ {print tolower($3)}' | grep -v -E '^(cobra|kernel32|msvcrt|ucrtbase|api-ms-win-.*|user32|advapi32|ws2_32|bcrypt|ntdll)\.dll$' || true)
  [ -z "$deps" ] || { echo "test-engines: FAIL: $(basename "$exe") needs $deps" >&2; exit 1; }
done

# Wine 8 (Debian 12) lacks bcryptprimitives.dll, from which Rust's std takes ProcessPrng (Windows 10+ has it): a
# test-only stand-in goes next to the executables (tests/wine/bcryptprimitives.c explains; never shipped).
x86_64-w64-mingw32-gcc-posix -shared -O2 -Wall -Wextra -Werror tests/wine/bcryptprimitives.c -lbcrypt -o "$bin/c/bcryptprimitives.dll"
cp "$bin/c/bcryptprimitives.dll" "$bin/cpp/"

step "Windows: the examples under Wine against the server (publish + StreamSQL-filtered subscribe)"
wait "$wine_boot" || true
COBRA_EXE_SUFFIX=.exe "$root/scripts/run-c-examples.sh" --prebuilt "$bin" --runner wine --server-dir "$work/server"

step "Unity plugins from these builds"
scripts/unity-plugins.sh --no-build

echo; echo "test-engines: all passed (cobra.dll: $dll_size bytes)"
