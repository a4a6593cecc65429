#!/usr/bin/env bash
# uniffi bindings tests (issue 6), against our real server:
#  1. the committed generated files (bindings/kotlin/uniffi/cobra/cobra.kt, bindings/swift/{cobra.swift,cobraFFI.h,
#     cobraFFI.modulemap}) equal a fresh generation (scripts/gen-bindings.sh into a temp dir);
#  2. the Swift C header passes `clang -fsyntax-only` (no Swift compiler exists on Linux CI: tests/swift/ waits for macOS);
#  3. Python: tests/python/test_cobra.py with the freshly generated cobra.py + libcobra.so;
#  4. Kotlin: bindings/kotlin/ + tests/kotlin/Main.kt compiled in ONE kotlinc call (~25 s), run on the JVM with JNA.
# The server (`target/debug/cobra run` on a free port, throwaway apps config) is stopped on exit.
# Needs kotlinc (scripts/install-mobile-tools.sh), java, JNA (libjna-java), clang, python3: if one is missing this
# skips loudly, or fails under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
KOTLINC=${KOTLINC:-$root/.tools/kotlinc/bin/kotlinc}
KOTLIN_LIB=$(dirname "$(dirname "$KOTLINC")")/lib
JNA=${JNA_JAR:-/usr/share/java/jna.jar}
# shellcheck source=lib/common.sh
. scripts/lib/common.sh
step() { printf '\n---- test-bindings: %s\n' "$*"; }

missing=()
[ -x "$KOTLINC" ] || missing+=("kotlinc ($KOTLINC)")
[ -f "$JNA" ] || missing+=("JNA ($JNA)")
for tool in java clang python3; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
require_tools test-bindings scripts/setup.sh "${missing[@]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/cobra-test-bindings.XXXXXX")
cleanup() {
  "$root/scripts/server-for-c.sh" stop "$work/server" || true
  rm -rf "$work"
}
trap cleanup EXIT

step "regenerate the bindings and compare with the committed ones"
scripts/gen-bindings.sh "$work/gen"
generated=(kotlin/uniffi/cobra/cobra.kt swift/cobra.swift swift/cobraFFI.h swift/cobraFFI.modulemap)
stale=0
for f in "${generated[@]}"; do
  if ! diff -q "bindings/$f" "$work/gen/$f" >/dev/null 2>&1; then
    echo "test-bindings: bindings/$f differs from a fresh generation:" >&2
    diff -u "bindings/$f" "$work/gen/$f" 2>&1 | head -n 40 >&2 || true
    stale=1
  fi
done
# A file uniffi now generates that is not in the list above would go uncommitted: catch it.
extra=$(cd "$work/gen" && find kotlin swift -type f | sort | grep -vxF -f <(printf '%s\n' "${generated[@]}") || true)
if [ -n "$extra" ]; then echo "test-bindings: unexpected generated files: $extra" >&2; stale=1; fi
if [ "$stale" = 1 ]; then
  echo "test-bindings: FAIL: run scripts/gen-bindings.sh and commit bindings/" >&2; exit 1
fi
echo "committed bindings are up to date"

step "clang -fsyntax-only bindings/swift/cobraFFI.h"
clang -fsyntax-only -Wall -Wextra -Werror -Wno-pragma-once-outside-header -x c bindings/swift/cobraFFI.h
echo "header OK"

step "start the server"
cargo build -q -p cobra-server --bin cobra
scripts/server-for-c.sh start "$work/server"
# shellcheck disable=SC1091
source "$work/server/env"
export COBRA_ENDPOINT COBRA_APPKEY COBRA_ROLE COBRA_SECRET
echo "server at $COBRA_ENDPOINT"

step "Python (uniffi bindings + libcobra.so)"
mkdir -p "$work/py"
cp "$work/gen/python/cobra.py" target/debug/libcobra.so "$work/py/"
timeout 120 python3 tests/python/test_cobra.py "$work/py"

step "Kotlin: compile bindings + tests/kotlin/Main.kt (one kotlinc call)"
timeout 600 "$KOTLINC" -J-Xmx2g -nowarn bindings/kotlin/uniffi/cobra/*.kt tests/kotlin/Main.kt \
  -cp "$JNA" -d "$work/kt.jar"

step "Kotlin: run on the JVM (JNA)"
timeout 120 java -Djna.library.path="$root/target/debug" \
  -cp "$work/kt.jar:$JNA:$KOTLIN_LIB/kotlin-stdlib.jar" MainKt

echo; echo "test-bindings: all passed"
