#!/usr/bin/env bash
# Generates the uniffi bindings of the SDK from the debug cdylib (library mode, no UDL).
#
#   scripts/gen-bindings.sh            # Kotlin -> bindings/kotlin/, Swift -> bindings/swift/ (committed),
#                                      # Python -> target/bindings/python/ (not committed)
#   scripts/gen-bindings.sh OUT_DIR    # everything under OUT_DIR/{kotlin,swift,python} (scripts/test-bindings.sh
#                                      # uses this to check the committed files are current)
#
# `-p cobra` and `-p uniffi-bindgen` are built by separate cargo calls: together, cargo would unify uniffi's `cli`
# feature into the SDK (a different, much bigger cdylib and a rebuild each time). `--no-format` keeps the output
# independent of whichever ktlint/swiftformat happen to be installed, so generation is reproducible.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ge 1 ]; then
  KOTLIN_OUT="$1/kotlin"; SWIFT_OUT="$1/swift"; PYTHON_OUT="$1/python"
else
  KOTLIN_OUT=bindings/kotlin; SWIFT_OUT=bindings/swift; PYTHON_OUT=target/bindings/python
fi

cargo build -q -p cobra --lib
cargo build -q -p uniffi-bindgen
LIB=target/debug/libcobra.so
[ -f "$LIB" ] || { echo "gen-bindings: $LIB not found" >&2; exit 1; }

gen() { # language out_dir
  mkdir -p "$2"
  target/debug/uniffi-bindgen generate "$LIB" --no-format --language "$1" --out-dir "$2" >/dev/null
}
gen kotlin "$KOTLIN_OUT"
gen swift "$SWIFT_OUT"
gen python "$PYTHON_OUT"
echo "gen-bindings: kotlin -> $KOTLIN_OUT/uniffi/cobra/cobra.kt; swift -> $SWIFT_OUT/{cobra.swift,cobraFFI.h,cobraFFI.modulemap}; python -> $PYTHON_OUT/cobra.py"
