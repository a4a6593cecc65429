# Sourced (not run) before cross-compiling the SDK for Android/iOS on Linux.
# ring, rustls' crypto provider, compiles a little C and assembly. With no NDK or Apple SDK here, Debian's clang plus the
# libc headers shipped in the PyPI `ziglang` wheel are enough: ring's objects only reference memcmp/memcpy/memmove/memset
# and getauxval, so the musl headers are harmless for a bionic target. This is for CI checks only: release builds for
# devices use the real NDK / Xcode (android/build-rust.sh, ios/build-xcframework.sh).
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ZINC=$("$_root/.tools/venv/bin/python" -c 'import ziglang,os;print(os.path.join(os.path.dirname(ziglang.__file__),"lib/libc/include"))')
export CC_aarch64_linux_android=clang AR_aarch64_linux_android=llvm-ar-14
export CFLAGS_aarch64_linux_android="--target=aarch64-linux-android21 -nostdlibinc -isystem $ZINC/aarch64-linux-musl -isystem $ZINC/generic-musl -isystem $ZINC/any-linux-any"
export CC_x86_64_linux_android=clang AR_x86_64_linux_android=llvm-ar-14
export CFLAGS_x86_64_linux_android="--target=x86_64-linux-android21 -nostdlibinc -isystem $ZINC/x86_64-linux-musl -isystem $ZINC/generic-musl -isystem $ZINC/any-linux-any"
export CC_armv7_linux_androideabi=clang AR_armv7_linux_androideabi=llvm-ar-14
export CFLAGS_armv7_linux_androideabi="--target=armv7-linux-androideabi21 -nostdlibinc -isystem $ZINC/arm-linux-musl -isystem $ZINC/generic-musl -isystem $ZINC/any-linux-any"
export CC_i686_linux_android=clang AR_i686_linux_android=llvm-ar-14
export CFLAGS_i686_linux_android="--target=i686-linux-android21 -nostdlibinc -isystem $ZINC/x86-linux-musl -isystem $ZINC/generic-musl -isystem $ZINC/any-linux-any"
export CC_aarch64_apple_ios="$_root/.tools/zig-ios-cc" AR_aarch64_apple_ios=llvm-ar-14
export CFLAGS_aarch64_apple_ios="-isystem $ZINC/any-darwin-any"
# macOS (`cargo check` only: no Apple linker here): zig's clang with its bundled Darwin headers, as for iOS.
export CC_x86_64_apple_darwin="$_root/.tools/zig-macos-x86_64-cc" AR_x86_64_apple_darwin=llvm-ar-14
export CC_aarch64_apple_darwin="$_root/.tools/zig-macos-aarch64-cc" AR_aarch64_apple_darwin=llvm-ar-14
export SDKROOT="$_root/.tools/empty-sdk"
