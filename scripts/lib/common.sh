# Shell helpers the scripts and benchmarks share (sourced; needs bash and python3).

# A free loopback TCP port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT PID: polls until a TCP connect to 127.0.0.1:PORT succeeds; fails when process PID
# has died or after ~15 s.
wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# bench_cobra_bin ROOT: sets COBRA_BIN to the `cobra` of the `bench` profile (opt-level 3, fat LTO),
# building it, unless COBRA_BIN is set already. The profile inherits `release`, so it lands in
# target/release.
bench_cobra_bin() {
  if [ -z "${COBRA_BIN:-}" ]; then
    (cd "$1" && cargo build --profile bench -p cobra-server --bin cobra >&2)
    COBRA_BIN="$1/target/release/cobra"
  fi
}

# stop_server_and_clean [SIGNAL]: the EXIT trap of a script whose only background job is its server,
# $SERVER_PID (empty when none), working in $WORK: signals the server (TERM unless SIGNAL), waits
# for it, then removes $WORK.
stop_server_and_clean() {
  if [ -n "${SERVER_PID:-}" ]; then kill "-${1:-TERM}" "$SERVER_PID" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$WORK"
}

# require_tools NAME SETUP [MISSING...]: returns when nothing is MISSING. Otherwise the test script
# NAME fails under CI=true, or else stops (exit 0) after a loud SKIPPED banner; SETUP is the script
# that installs what is missing.
require_tools() {
  local name=$1 setup=$2
  shift 2
  [ $# -eq 0 ] && return 0
  local list
  list=$(printf '%s, ' "$@")
  list=${list%, }
  if [ "${CI:-}" = true ]; then
    echo "$name: FAIL: missing under CI: $list (run $setup)" >&2
    exit 1
  fi
  echo "###############################################################################" >&2
  echo "# $name: SKIPPED: missing $list (run $setup). Under CI=true this fails." >&2
  echo "###############################################################################" >&2
  exit 0
}

# start_test_server ROOT DIR: starts a server with ROOT/scripts/server-for-c.sh in DIR and exports
# what the C, C++ and engine tests read: COBRA_ENDPOINT, COBRA_APPKEY, COBRA_ROLE, COBRA_SECRET, and
# COBRA_TEST_RESTART_CMD (restarts it on the same port).
start_test_server() {
  "$1/scripts/server-for-c.sh" start "$2"
  # shellcheck disable=SC1091
  source "$2/env"
  export COBRA_ENDPOINT COBRA_APPKEY COBRA_ROLE COBRA_SECRET
  export COBRA_TEST_RESTART_CMD="'$1/scripts/server-for-c.sh' restart '$2'"
  echo "server at $COBRA_ENDPOINT"
}

# npm_pinned LABEL DIR PACKAGE VERSION PROJECT: installs PACKAGE@VERSION under DIR/node_modules unless
# that version is there already; PROJECT names DIR's package.json when it is created.
npm_pinned() {
  local label=$1 dir=$2 pkg=$3 version=$4 project=$5
  if [ -f "$dir/node_modules/$pkg/package.json" ] \
    && node -e "process.exit(require('$dir/node_modules/$pkg/package.json').version === '$version' ? 0 : 1)" 2>/dev/null; then
    echo "$label: already installed"
    return 0
  fi
  echo "$label: installing $version into $dir"
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo "{\"name\":\"$project\",\"private\":true}" > "$dir/package.json"
  (cd "$dir" && npm install --silent --no-audit --no-fund "$pkg@$version")
}
