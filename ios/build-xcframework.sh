#!/usr/bin/env bash
# Builds ios/build/cobraFFI.xcframework (static libcobra.a for iOS devices, the iOS simulator and macOS, with the uniffi
# C header and module map) and stages the Swift sources for ios/Package.swift.
#
# macOS + Xcode ONLY. It cannot run on the project's Linux CI: there is no xcodebuild/lipo/Apple SDK there, and the
# simulator Rust targets (aarch64-apple-ios-sim, x86_64-apple-ios) cannot even be installed from its toolchain mirror.
# What Linux CI proves instead: `cargo check` + a staticlib for aarch64-apple-ios (scripts/test-mobile.sh), the
# generated Swift + C header (scripts/test-bindings.sh: committed files current, clang -fsyntax-only on the header).
#
#   ios/build-xcframework.sh [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -s)" != Darwin ] || ! command -v xcodebuild >/dev/null 2>&1 || ! command -v lipo >/dev/null 2>&1; then
  echo "build-xcframework: needs macOS with Xcode (xcodebuild, lipo); nothing was built." >&2
  echo "  On Linux, scripts/test-mobile.sh checks that the SDK compiles for aarch64-apple-ios as a static library." >&2
  exit 1
fi
PROFILE=release; FLAG=(--release)
if [ "${1:-}" = --debug ]; then PROFILE=debug; FLAG=(); fi

DEVICE=aarch64-apple-ios
SIMULATORS=(aarch64-apple-ios-sim x86_64-apple-ios)
MACOS=(aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "$DEVICE" "${SIMULATORS[@]}" "${MACOS[@]}"
for t in "$DEVICE" "${SIMULATORS[@]}" "${MACOS[@]}"; do
  echo "-- $t"
  # Only the static library: the XCFramework links it into the app (no dylib to embed and sign).
  cargo rustc -q -p cobra --lib "${FLAG[@]}" --target "$t" --crate-type staticlib
done

out=ios/build
rm -rf "$out" && mkdir -p "$out/sim" "$out/macos" "$out/headers"
libs() { for t in "$@"; do echo "target/$t/$PROFILE/libcobra.a"; done; }
# One fat library per platform (simulator: arm64 + x86_64; macOS: arm64 + x86_64), as -create-xcframework wants.
# shellcheck disable=SC2046
lipo -create $(libs "${SIMULATORS[@]}") -output "$out/sim/libcobra.a"
# shellcheck disable=SC2046
lipo -create $(libs "${MACOS[@]}") -output "$out/macos/libcobra.a"
cp bindings/swift/cobraFFI.h "$out/headers/"
cp bindings/swift/cobraFFI.modulemap "$out/headers/module.modulemap"   # module `cobraFFI`, imported by cobra.swift
xcodebuild -create-xcframework \
  -library "target/$DEVICE/$PROFILE/libcobra.a" -headers "$out/headers" \
  -library "$out/sim/libcobra.a" -headers "$out/headers" \
  -library "$out/macos/libcobra.a" -headers "$out/headers" \
  -output "$out/cobraFFI.xcframework"

# Stage the Swift sources that live outside the package directory (SwiftPM refuses paths outside it).
mkdir -p ios/Sources/Cobra/Generated ios/Tests/CobraTests
cp bindings/swift/cobra.swift bindings/swift/CobraHelpers.swift ios/Sources/Cobra/Generated/
cp tests/swift/*.swift ios/Tests/CobraTests/
echo "build-xcframework: $out/cobraFFI.xcframework ready; cd ios && swift build"
