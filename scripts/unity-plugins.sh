#!/usr/bin/env bash
# Fills the Unity package's native plugins (engines/unity/Runtime/Plugins/) from the cross builds that work on
# Linux, and says which ones must come from another machine:
#   Linux/x86_64/libcobra.so      editor + player          built here
#   Windows/x86_64/cobra.dll      editor + player          built here (x86_64-pc-windows-gnu, Debian mingw-w64)
#   iOS/libcobra.a                IL2CPP, __Internal       built here (staticlib; scripts/install-mobile-tools.sh)
#   Android/<abi>/libcobra.so     arm64-v8a, armeabi-v7a, x86_64: linked by the Android NDK, which Linux CI lacks;
#                                 copied from android/src/main/jniLibs/ once android/build-rust.sh has run
#   macOS/libcobra.dylib          editor + player: needs Apple's linker; copied from target/<darwin>/release if a Mac
#                                 built it (universal through lipo when both architectures are there)
# The C library is built without the uniffi scaffolding (`--no-default-features --features tls`), as for C users.
#
#   scripts/unity-plugins.sh              build (release) what builds here, then copy
#   scripts/unity-plugins.sh --no-build   copy what is already built (release, else debug)
# Exit status 0 unless a build fails; missing platforms are listed, not fatal.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
plugins=$root/engines/unity/Runtime/Plugins
build=1
[ "${1:-}" = --no-build ] && build=0
FEATURES=(--no-default-features --features tls)

if [ "$build" = 1 ]; then
  cargo build -q --release -p cobra "${FEATURES[@]}"
  if rustup target list --installed | grep -q x86_64-pc-windows-gnu && command -v x86_64-w64-mingw32-gcc >/dev/null; then
    cargo build -q --release -p cobra "${FEATURES[@]}" --target x86_64-pc-windows-gnu
  fi
  if [ -x .tools/venv/bin/python ] && rustup target list --installed | grep -q aarch64-apple-ios; then
    # shellcheck source=cross-env.sh
    (source scripts/cross-env.sh && cargo rustc -q --release -p cobra "${FEATURES[@]}" --target aarch64-apple-ios --crate-type staticlib)
  fi
fi

first() { for f in "$@"; do [ -f "$f" ] && { echo "$f"; return 0; }; done; return 1; }
filled=() missing=()
place() { # destination (relative to Plugins) how-to-get-it candidate...
  local dest=$1 how=$2; shift 2
  local src
  if src=$(first "$@"); then
    mkdir -p "$(dirname "$plugins/$dest")"
    cp "$src" "$plugins/$dest"
    filled+=("$dest ($(stat -c %s "$plugins/$dest") bytes, from ${src#"$root"/})")
  else
    rm -f "$plugins/$dest"
    missing+=("$dest: $how")
  fi
}
T=$root/target
place Linux/x86_64/libcobra.so "run without --no-build" "$T/release/libcobra.so" "$T/debug/libcobra.so"
place Windows/x86_64/cobra.dll "run without --no-build (needs scripts/install-engines.sh)" "$T/x86_64-pc-windows-gnu/release/cobra.dll" "$T/x86_64-pc-windows-gnu/debug/cobra.dll"
place iOS/libcobra.a "run without --no-build (needs scripts/install-mobile-tools.sh)" "$T/aarch64-apple-ios/release/libcobra.a" "$T/aarch64-apple-ios/debug/libcobra.a"
for abi in arm64-v8a armeabi-v7a x86_64; do
  place "Android/$abi/libcobra.so" "needs the Android NDK: ANDROID_NDK_HOME=... android/build-rust.sh" "$root/android/src/main/jniLibs/$abi/libcobra.so"
done
mac_x=$T/x86_64-apple-darwin/release/libcobra.dylib mac_a=$T/aarch64-apple-darwin/release/libcobra.dylib
if [ -f "$mac_x" ] && [ -f "$mac_a" ] && command -v lipo >/dev/null; then
  mkdir -p "$plugins/macOS"
  lipo -create "$mac_x" "$mac_a" -output "$plugins/macOS/libcobra.dylib"
  filled+=("macOS/libcobra.dylib (universal)")
else
  place macOS/libcobra.dylib "needs a Mac: cargo build --release -p cobra --no-default-features --features tls" "$mac_a" "$mac_x"
fi

echo "Unity plugins in ${plugins#"$root"/}:"
for f in "${filled[@]}"; do echo "  filled   $f"; done
for m in "${missing[@]}"; do echo "  MISSING  $m"; done
