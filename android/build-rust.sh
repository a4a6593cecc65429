#!/usr/bin/env bash
# Builds libcobra.so for Android into android/src/main/jniLibs/<abi>/ (arm64-v8a, armeabi-v7a, x86_64) with cargo-ndk.
#
# NOT EXERCISED ON THE PROJECT'S LINUX CI: it needs an Android NDK (ANDROID_NDK_HOME), and none can be installed there
# (no NDK on PyPI, npm or Debian main). Linux CI proves instead that the SDK checks and builds as a static library for
# aarch64/x86_64-linux-android (scripts/test-mobile.sh) and runs the same Kotlin bindings on the JVM
# (scripts/test-bindings.sh). Needs: an NDK (r26+), `cargo install cargo-ndk --locked`, the rustup targets below.
#
#   ANDROID_NDK_HOME=/path/to/ndk android/build-rust.sh [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
NDK=${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}
if [ -z "$NDK" ] || [ ! -d "$NDK/toolchains/llvm" ]; then
  echo "build-rust: no Android NDK found: set ANDROID_NDK_HOME to an NDK (r26 or later); nothing was built." >&2
  exit 1
fi
if ! cargo ndk --version >/dev/null 2>&1; then
  echo "build-rust: cargo-ndk is missing: cargo install cargo-ndk --locked" >&2
  exit 1
fi
PROFILE=(--release)
[ "${1:-}" = --debug ] && PROFILE=()
MIN_API=24   # matches android/build.gradle.kts minSdk
rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
# cargo-ndk links the cdylib with the NDK's clang and copies it to jniLibs/<abi>/libcobra.so, the name JNA loads
# ("cobra", from the uniffi bindings).
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 --platform "$MIN_API" -o android/src/main/jniLibs \
  build -p cobra --lib "${PROFILE[@]}"
find android/src/main/jniLibs -name '*.so' -exec ls -l {} \;
