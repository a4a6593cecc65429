#!/usr/bin/env bash
# Tools for the Kotlin/JVM binding tests and the mobile cross checks, all from the allowed registries, into .tools/:
# - kotlinc from the npm package `kotlin-compiler` (JNA comes from Debian's libjna-java, installed by setup.sh);
# - the Rust targets for Android (arm64-v8a, armeabi-v7a, x86_64, x86), iOS and macOS (check + staticlib only: no NDK or Xcode exists on Linux CI);
# - Python `ziglang` for its libc headers and clang driver, which let `ring` (rustls' crypto) compile for those
#   targets without an NDK or an Apple SDK (see scripts/cross-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
KOTLIN_VERSION=2.4.20
ZIG_VERSION=0.17.1
TOOLS=.tools
mkdir -p "$TOOLS"

if [ ! -x "$TOOLS/kotlinc/bin/kotlinc" ]; then
  (cd "$TOOLS" && npm pack --silent "kotlin-compiler@${KOTLIN_VERSION}" >/dev/null \
     && tar xzf "kotlin-compiler-${KOTLIN_VERSION}.tgz" && rm -rf kotlinc && mv package kotlinc \
     && rm "kotlin-compiler-${KOTLIN_VERSION}.tgz")
  chmod +x "$TOOLS"/kotlinc/bin/* 2>/dev/null || true
fi

rustup target add aarch64-linux-android x86_64-linux-android armv7-linux-androideabi i686-linux-android \
  aarch64-apple-ios x86_64-apple-darwin aarch64-apple-darwin >/dev/null

if [ ! -x "$TOOLS/venv/bin/python" ]; then python3 -m venv "$TOOLS/venv"; fi
if ! "$TOOLS/venv/bin/python" -c 'import ziglang' 2>/dev/null; then
  "$TOOLS/venv/bin/pip" install -q "ziglang==${ZIG_VERSION}"
fi
mkdir -p "$TOOLS/empty-sdk"
cat > "$TOOLS/zig-ios-cc" <<'SH'
#!/usr/bin/env bash
# cc-rs passes --target=arm64-apple-ios; zig wants its own -target spelling.
args=(); for a in "$@"; do case "$a" in --target=*|-target) ;; *) args+=("$a");; esac; done
exec "$(dirname "$0")/venv/bin/python" -m ziglang cc -target aarch64-ios.13.0 "${args[@]}"
SH
chmod +x "$TOOLS/zig-ios-cc"
# The same for macOS (cargo check of the desktop library for the Unity editor / macOS players).
for arch in x86_64 aarch64; do
  cat > "$TOOLS/zig-macos-$arch-cc" <<SH
#!/usr/bin/env bash
# cc-rs passes --target=$arch-apple-macosx; zig wants its own -target spelling.
args=(); for a in "\$@"; do case "\$a" in --target=*|-target) ;; *) args+=("\$a");; esac; done
exec "\$(dirname "\$0")/venv/bin/python" -m ziglang cc -target $arch-macos.11.0 "\${args[@]}"
SH
  chmod +x "$TOOLS/zig-macos-$arch-cc"
done
echo "mobile tools: kotlinc $("$TOOLS/kotlinc/bin/kotlinc" -version 2>&1 | tail -1)"
