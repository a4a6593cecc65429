#!/usr/bin/env bash
# Builds the C and C++ examples with CMake and runs them against a local cobra server:
# a StreamSQL subscriber (slow frames only) and a telemetry publisher (fps events through the metrics
# publisher), first in C, then in C++; then the C FPS table (a GROUP BY subscription), its output diffed with
# examples/c/fps_table.expected. Exits non-zero unless every subscriber got exactly what its filter
# lets through.
#
#   scripts/run-c-examples.sh                 # builds libcobra (release) and the server, starts it, runs all
#   COBRA_LINK=static scripts/run-c-examples.sh
# Options (used by scripts/test-c.sh): --no-build (use COBRA_LIB_DIR and the server binary as they are),
# --server-dir DIR (a server already started by scripts/server-for-c.sh in DIR).
# Used by scripts/test-engines.sh for the Windows build run under Wine: --prebuilt DIR (examples already built,
# as DIR/<lang>/<name>[_cpp]<COBRA_EXE_SUFFIX>; no CMake), --runner CMD (e.g. `wine`), --langs "c cpp".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
link=${COBRA_LINK:-shared}
build=1
server_dir=""
prebuilt=""
runner=()
langs="c cpp"
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --server-dir) server_dir=$2; shift ;;
    --prebuilt) prebuilt=$2; build=0; shift ;;
    --runner) read -r -a runner <<<"$2"; shift ;;
    --langs) langs=$2; shift ;;
    *) echo "usage: $0 [--no-build] [--server-dir DIR] [--prebuilt DIR] [--runner CMD] [--langs LIST]" >&2; exit 2 ;;
  esac
  shift
done

if [ "$build" = 1 ]; then
  cargo build -q --release -p cobra --no-default-features --features tls   # the C library: no uniffi scaffolding
  cargo build -q -p cobra-server --bin cobra
fi
lib_dir=${COBRA_LIB_DIR:-$root/target/release}

work=$(mktemp -d "${TMPDIR:-/tmp}/cobra-examples.XXXXXX")
own_server=""
cleanup() {
  if [ -n "$own_server" ]; then "$root/scripts/server-for-c.sh" stop "$own_server" || true; fi
  # A subscriber still running after a failure must not outlive us.
  jobs -p | xargs -r kill 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
if [ -z "$server_dir" ]; then
  own_server=$work/server
  server_dir=$own_server
  "$root/scripts/server-for-c.sh" start "$server_dir"
fi
# shellcheck disable=SC1091
source "$server_dir/env"
export COBRA_ENDPOINT COBRA_APPKEY COBRA_ROLE COBRA_SECRET

out=$root/target/examples/$link
exe=${COBRA_EXE_SUFFIX:-}
if [ -n "$prebuilt" ]; then
  out=$prebuilt
else
  for lang in $langs; do
    echo "== building examples/$lang ($link libcobra from $lib_dir)"
    cmake -S "examples/$lang" -B "$out/$lang" -DCOBRA_LINK="$link" -DCOBRA_LIB_DIR="$lib_dir" >/dev/null
    cmake --build "$out/$lang" >/dev/null
  done
fi

frames=80   # fps = 20 + (7 * frame) % 40: exactly a quarter of the frames are under 30 fps
expected=$((frames / 4))
run_pair() { # lang suffix
  local lang=$1 suffix=$2 sub_out=$work/sub-$1.out
  export COBRA_FPS_ID="example_fps_${lang}_$$"
  echo "== $lang: streamsql_subscriber$suffix $expected & telemetry_publisher$suffix $frames"
  "${runner[@]}" "$out/$lang/streamsql_subscriber$suffix$exe" "$expected" > "$sub_out" &
  local sub=$!
  # Windows programs (under Wine) end their lines with \r\n: match with or without the \r.
  for _ in $(seq 600); do                       # wait (up to 30 s: Wine starts slowly) for the subscription
    grep -q '^subscribed\s*$' "$sub_out" 2>/dev/null && break
    kill -0 "$sub" 2>/dev/null || break
    sleep 0.05
  done
  grep -q '^subscribed\s*$' "$sub_out" || { echo "the $lang subscriber did not subscribe" >&2; cat "$sub_out" >&2; exit 1; }
  "${runner[@]}" "$out/$lang/telemetry_publisher$suffix$exe" "$frames"
  wait "$sub" || { echo "the $lang subscriber failed" >&2; cat "$sub_out" >&2; exit 1; }
  sed -i $'s/\r$//' "$sub_out"
  local got; got=$(grep '"data.fps"' "$sub_out" | grep -c '"device.game":"demo"')
  head -n 3 "$sub_out" | sed 's/^/   /'
  [ "$got" -eq "$expected" ] || { echo "the $lang subscriber got $got messages, expected $expected" >&2; exit 1; }
  if grep '"data.fps"' "$sub_out" | grep -qv '"data.fps":2[0-9],'; then
    echo "the $lang subscriber got a frame the filter should have dropped" >&2; exit 1
  fi
  echo "   ok: $got slow frames of $frames, each with its envelope"
}
for lang in $langs; do
  if [ "$lang" = cpp ]; then run_pair cpp _cpp; else run_pair "$lang" ""; fi
done

# The FPS table (C only): a GROUP BY subscription fed a fixed sequence with explicit timestamps by the example
# itself, so its whole output is known: diffed with examples/c/fps_table.expected.
if [[ " $langs " == *" c "* ]]; then
  table=$out/c/fps_table$exe
  [ -f "$table" ] || { echo "examples: $table was not built" >&2; exit 1; }
  echo "== c: fps_table (diffed with examples/c/fps_table.expected)"
  COBRA_FPS_ID="example_fps_table_$$" "${runner[@]}" "$table" > "$work/fps_table.out" \
    || { echo "fps_table failed" >&2; cat "$work/fps_table.out" >&2; exit 1; }
  sed -i $'s/\r$//' "$work/fps_table.out"
  diff -u "$root/examples/c/fps_table.expected" "$work/fps_table.out" \
    || { echo "fps_table: output differs from examples/c/fps_table.expected" >&2; exit 1; }
  echo "   ok: the FPS table of 3 rows in 2 windows, as expected"
fi
echo "examples: all passed ($link${runner:+, run with ${runner[*]}})"
