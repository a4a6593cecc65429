#!/usr/bin/env bash
# Runs our real `cobra` server for the C/C++ tests and examples, on a free loopback port with a throwaway
# apps config.  Usage:  scripts/server-for-c.sh start|stop|restart STATE_DIR
#   start    picks a free port (unless STATE_DIR/port exists: restart keeps the port), writes
#            STATE_DIR/apps.yaml (app `_pubsub`, role `pubsub`, random secret, every permission),
#            starts `$COBRA_SERVER_BIN run` (default target/debug/cobra) and waits until it accepts TCP;
#            writes STATE_DIR/{port,pid,env}; `env` holds COBRA_ENDPOINT/APPKEY/ROLE/SECRET exports.
#   stop     SIGINT (stop at once, 1001 to every client: SIGTERM would drain over --drain-seconds) then
#            SIGKILL after 5 s; waits for the process to be gone.
#   restart  stop + start on the same port (what the C test's reconnect check calls).
set -euo pipefail
cmd=${1:?usage: $0 start|stop|restart STATE_DIR}
dir=${2:?usage: $0 start|stop|restart STATE_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${COBRA_SERVER_BIN:-$root/target/debug/cobra}
mkdir -p "$dir"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop() {
  [ -f "$dir/pid" ] || return 0
  local pid; pid=$(cat "$dir/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  fi
  rm -f "$dir/pid"
}

start() {
  [ -x "$bin" ] || { echo "server-for-c: no server binary at $bin (cargo build -p cobra-server)" >&2; exit 1; }
  if [ ! -f "$dir/apps.yaml" ]; then
    local secret; secret=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    cat > "$dir/apps.yaml" <<YAML
apps:
  _pubsub:
    roles:
      pubsub:
        secret: $secret
        permissions: [subscribe, unsubscribe, publish, admin, read, write, delete]
channel_max_length: 1000
YAML
    printf 'export COBRA_APPKEY=_pubsub COBRA_ROLE=pubsub COBRA_SECRET=%s\n' "$secret" > "$dir/creds"
  fi
  local keep_port=""; [ -f "$dir/port" ] && keep_port=$(cat "$dir/port")
  for _ in 1 2 3 4 5; do
    local port=${keep_port:-$(free_port)}
    "$bin" run --host 127.0.0.1 --port "$port" --apps-config "$dir/apps.yaml" >>"$dir/server.log" 2>&1 &
    local pid=$!
    echo "$pid" > "$dir/pid"
    for _ in $(seq 200); do                      # up to 10 s
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      if listening "$port"; then
        echo "$port" > "$dir/port"
        { cat "$dir/creds"; echo "export COBRA_ENDPOINT=ws://127.0.0.1:$port"; } > "$dir/env"
        return 0
      fi
      sleep 0.05
    done
    stop
    # The port was taken in between (or, on restart, is still held): try again.
    sleep 0.2
  done
  echo "server-for-c: the server did not start; log:" >&2; tail -n 30 "$dir/server.log" >&2; exit 1
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  *) echo "usage: $0 start|stop|restart STATE_DIR" >&2; exit 2 ;;
esac
