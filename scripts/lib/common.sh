# shellcheck shell=bash
# Shell helpers the scripts and benchmarks share (sourced; needs bash and python3).

# The repository's root, whichever script sources this file and from where.
# shellcheck disable=SC2034 # for the scripts that source this file
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Several scripts point HOME at a scratch directory (the apps config and the CLI's state go there):
# rustup and cargo must still find the toolchain and the registry where they are.
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"

# A free loopback TCP port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT PID [SECONDS]: polls until a TCP connect to 127.0.0.1:PORT succeeds; fails when process
# PID has died or after SECONDS (default 15).
wait_port() {
  for _ in $(seq 1 $((${3:-15} * 20))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# start_server NAME LOG COMMAND...: starts COMMAND, a server that listens on $PORT, in the background with
# its output in LOG, as $SERVER_PID, and returns once it listens. When it dies first or does not listen
# within $SERVER_WAIT_SECONDS (default 15), the script NAME stops (exit 1) with the end of LOG.
start_server() {
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  wait_port "$PORT" "$SERVER_PID" "${SERVER_WAIT_SECONDS:-15}" || {
    echo "$name: the server did not start: $(tail -c 300 "$log")" >&2
    exit 1
  }
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

# skip_or_fail NAME SETUP MISSING...: the one rule for a test whose tools are missing: under CI=true the
# test script NAME fails (exit 1); otherwise a loud SKIPPED banner, and the caller skips what needs them.
# SETUP is what installs them.
skip_or_fail() {
  local name=$1 setup=$2
  shift 2
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
}

# require_tools NAME SETUP [MISSING...]: returns when nothing is MISSING; otherwise skip_or_fail, and the
# script stops (exit 0) when not under CI.
require_tools() {
  [ $# -gt 2 ] || return 0
  skip_or_fail "$@"
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

# apt_install PACKAGE...: installs Debian packages, through sudo when not root.
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

# pip_pinned LABEL VENV PACKAGE VERSION: installs PACKAGE==VERSION into the virtualenv VENV (made anew with
# ${PYTHON:-python3}) unless that version is installed there already.
pip_pinned() {
  local label=$1 venv=$2 pkg=$3 version=$4
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('$pkg') != '$version')" 2>/dev/null; then
    echo "$label: already installed"
    return 0
  fi
  echo "$label: installing $version into $venv"
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$pkg==$version"
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
