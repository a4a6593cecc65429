#!/usr/bin/env bash
# C ABI tests (issue 5): everything libcobra's C and C++ users depend on, against our real server.
#  1. include/cobra.h matches cbindgen's output (tests/c_header.rs).
#  2. tests/c/test_client.c and the C++ wrapper test, built with -Wall -Wextra -Werror against the static
#     AND the shared library, run against a server started here (on a free port, killed on exit).
#  3. The same C test under gcc -fsanitize=address,undefined and under valgrind --leak-check=full; the C++
#     wrapper test (which includes a subscriber stalled by its own handler, then caught up from history)
#     under g++ -fsanitize=address,undefined.
#  4. The C and C++ examples (CMake), static and shared, run against the server (scripts/run-c-examples.sh).
#  5. The stripped release libcobra.so (x86_64) must stay <= 2.5 MB (2,621,440 bytes).
# Needs gcc, g++, cmake, valgrind, python3: missing ones skip loudly, or fail under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
MAX_SO_BYTES=2621440
# shellcheck source=lib/common.sh
. scripts/lib/common.sh
step() { printf '\n---- test-c: %s\n' "$*"; }

missing=()
for tool in gcc g++ cmake valgrind python3 strip; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
require_tools test-c scripts/setup.sh "${missing[@]}"

step "build libcobra (debug: .so + .a) and the server"
cargo build -q -p cobra
cargo build -q -p cobra-server --bin cobra
T=$root/target/debug
[ -f "$T/libcobra.so" ] && [ -f "$T/libcobra.a" ] || { echo "libcobra.so/.a missing in $T" >&2; exit 1; }

step "include/cobra.h is up to date (cbindgen)"
cargo test -q -p cobra --test c_header

work=$(mktemp -d "${TMPDIR:-/tmp}/cobra-test-c.XXXXXX")
cleanup() {
  "$root/scripts/server-for-c.sh" stop "$work/server" || true
  rm -rf "$work"
}
trap cleanup EXIT

step "start the server"
start_test_server "$root" "$work/server"

CFLAGS=(-std=c11 -Wall -Wextra -Werror -pedantic -g -I"$root/include")
CXXFLAGS=(-std=c++17 -Wall -Wextra -Werror -pedantic -g -I"$root/include")
SYSLIBS=(-lpthread -ldl -lm -lrt)
build_c() { # name lib-dir kind(static|shared) [extra flags...]
  local out=$1 libdir=$2 kind=$3; shift 3
  if [ "$kind" = static ]; then
    gcc "${CFLAGS[@]}" "$@" tests/c/test_client.c "$libdir/libcobra.a" "${SYSLIBS[@]}" -o "$work/$out"
  else
    gcc "${CFLAGS[@]}" "$@" tests/c/test_client.c -L"$libdir" -lcobra -Wl,-rpath,"$libdir" "${SYSLIBS[@]}" -o "$work/$out"
  fi
}

step "C test against the static library"
build_c test_static "$T" static
"$work/test_static"

step "C test against the shared library"
build_c test_shared "$T" shared
"$work/test_shared"

step "C++ wrapper test (cobra.hpp), static and shared"
g++ "${CXXFLAGS[@]}" tests/c/test_wrapper.cpp "$T/libcobra.a" "${SYSLIBS[@]}" -o "$work/test_cpp_static"
g++ "${CXXFLAGS[@]}" tests/c/test_wrapper.cpp -L"$T" -lcobra -Wl,-rpath,"$T" "${SYSLIBS[@]}" -o "$work/test_cpp_shared"
"$work/test_cpp_static"
"$work/test_cpp_shared"

step "C test under AddressSanitizer + UndefinedBehaviorSanitizer (gcc)"
build_c test_asan "$T" static -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$work/test_asan"

step "C++ wrapper test under AddressSanitizer + UndefinedBehaviorSanitizer (g++)"
g++ "${CXXFLAGS[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
  tests/c/test_wrapper.cpp "$T/libcobra.a" "${SYSLIBS[@]}" -o "$work/test_cpp_asan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$work/test_cpp_asan"

step "C test under valgrind (memcheck, leaks)"
# tests/c/valgrind.supp explains each (minimal) suppression.
COBRA_TEST_SLOW=1 valgrind -q --leak-check=full --show-leak-kinds=definite,possible \
  --errors-for-leak-kinds=definite,possible --error-exitcode=1 --suppressions=tests/c/valgrind.supp \
  "$work/test_shared"

step "C and C++ examples (CMake), static and shared"
for link in shared static; do
  COBRA_LINK=$link COBRA_LIB_DIR=$T "$root/scripts/run-c-examples.sh" --no-build --server-dir "$work/server"
done

step "release build: size of the stripped libcobra.so (x86_64)"
cargo build -q --release -p cobra --no-default-features --features tls   # the C library: no uniffi scaffolding
strip --strip-all -o "$work/libcobra.stripped.so" target/release/libcobra.so
size=$(stat -c %s "$work/libcobra.stripped.so")
echo "libcobra.so (release, stripped, $(uname -m)): $size bytes (limit $MAX_SO_BYTES)"
[ "$size" -le "$MAX_SO_BYTES" ] || { echo "test-c: FAIL: libcobra.so grew beyond 2.5 MB" >&2; exit 1; }

step "C test against the release shared library"
build_c test_release "$root/target/release" shared
"$work/test_release"

echo; echo "test-c: all C ABI checks passed"
