#!/usr/bin/env bash
# The SDK on Android and iOS targets: `cargo check` and a static library for each (the most that can be built on
# Linux without an NDK or Xcode; see README "Mobile"): Android arm64-v8a, armeabi-v7a (32-bit phones are still in
# the field), x86_64 and x86 (i686), and iOS. macOS (x86_64, arm64): `cargo check` only (the desktop library of the
# Unity editor and macOS players; linking it needs Apple's linker). Needs scripts/install-mobile-tools.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/common.sh
. scripts/lib/common.sh
installed=$(rustup target list --installed)
missing=()
[ -x .tools/venv/bin/python ] || missing+=(.tools/venv)
[ -x .tools/zig-macos-aarch64-cc ] || missing+=(.tools/zig-macos-aarch64-cc)
for t in i686-linux-android aarch64-apple-darwin; do grep -q "$t" <<<"$installed" || missing+=("rust target $t"); done
require_tools test-mobile scripts/install-mobile-tools.sh "${missing[@]}"
# shellcheck source=cross-env.sh
source scripts/cross-env.sh
for t in aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android aarch64-apple-ios; do
  echo "-- $t: check"
  cargo check -q -p cobra --target "$t"
  echo "-- $t: staticlib"
  # `cargo build` would also try to link the cdylib, which needs the platform's linker.
  cargo rustc -q -p cobra --target "$t" --crate-type staticlib
  ls -l "target/$t/debug/libcobra.a" | awk '{print "   " $5 " bytes"}'
done
for t in x86_64-apple-darwin aarch64-apple-darwin; do
  echo "-- $t: check"
  cargo check -q -p cobra --target "$t"
done
