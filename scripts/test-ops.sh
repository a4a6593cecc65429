#!/usr/bin/env bash
# Operations stage (issue 19), what cannot run as a cargo test:
#  1. `systemd-analyze verify` on deploy/systemd/cobra.service;
#  2. deploy/Dockerfile's build stage: its RUN steps, as written, in this checkout (PROFILE=dev by
#     default to stay fast: OPS_PROFILE=release builds what the image ships);
#  3. its runtime stage against the binary built: the ENV it sets, the HEALTHCHECK command until
#     healthy, then the STOPSIGNAL, which must drain and exit 0.
# The chart and the unit's settings are checked by `cargo test -p cobra-server --test deploy`.
# Skips loudly without systemd-analyze; fails under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/common.sh
. scripts/lib/common.sh
work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- 2. the Dockerfile's build steps -------------------------------------------------------------
dockerfile=deploy/Dockerfile
# The build stage's RUN lines, continuation lines joined, and its ARG defaults.
stage=$(awk '/^FROM .* AS build/{on=1; next} /^FROM /{on=0} on' "$dockerfile" | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta')
run_steps=$(printf '%s\n' "$stage" | sed -n 's/^RUN //p')
[ -n "$run_steps" ] || { echo "test-ops: no RUN step in the build stage of $dockerfile" >&2; exit 1; }
echo "test-ops: the Dockerfile's build steps (PROFILE=${OPS_PROFILE:-dev})"
(
  export PROFILE="${OPS_PROFILE:-dev}" OUT="$work/out"
  while IFS= read -r step; do
    echo "+ $step"
    bash -euo pipefail -c "$step"
  done <<< "$run_steps"
)
bin="$work/out/cobra"
[ -x "$bin" ] || { echo "test-ops: the build steps did not produce $bin" >&2; exit 1; }

# --- 3. the runtime stage against that binary -----------------------------------------------------
runtime=$(awk '/^FROM /{stage=$0} stage ~ /AS runtime/' "$dockerfile" | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta')
env_line=$(printf '%s\n' "$runtime" | sed -n 's/^ENV //p')
health_cmd=$(printf '%s\n' "$runtime" | sed -n 's/^HEALTHCHECK .* CMD \(\[.*\]\)$/\1/p')
stop_signal=$(printf '%s\n' "$runtime" | sed -n 's/^STOPSIGNAL //p')
entrypoint=$(printf '%s\n' "$runtime" | sed -n 's/^ENTRYPOINT \(\[.*\]\)$/\1/p')
[ -n "$health_cmd" ] && [ -n "$stop_signal" ] && [ -n "$entrypoint" ] || {
  echo "test-ops: the runtime stage needs HEALTHCHECK ... CMD [..], STOPSIGNAL and ENTRYPOINT [..]" >&2; exit 1; }
to_args() { python3 -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])))' "$1" | sed "s|^/usr/local/bin/cobra$|$bin|"; }
mapfile -t health < <(to_args "$health_cmd")
mapfile -t entry < <(to_args "$entrypoint")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" init --apps-config "$work/apps.yaml" >/dev/null
(
  # The image's environment, with a free port and a config of our own.
  for kv in $env_line; do export "${kv?}"; done
  export COBRA_PORT="$port" COBRA_APPS_CONFIG="$work/apps.yaml" COBRA_DRAIN_SECONDS=2 COBRA_HOST=127.0.0.1
  exec "${entry[@]}" >"$work/out.log" 2>"$work/err.log"
) &
server_pid=$!
healthy=""
for _ in $(seq 1 100); do
  if COBRA_PORT="$port" "${health[@]}" 2>/dev/null; then healthy=1; break; fi
  sleep 0.1
done
[ -n "$healthy" ] || { echo "test-ops: HEALTHCHECK never passed" >&2; cat "$work/err.log" >&2; exit 1; }
echo "test-ops: HEALTHCHECK passes"
grep -q '"level":"INFO"' "$work/err.log" || { echo "test-ops: the image's COBRA_LOG_FORMAT should log JSON" >&2; exit 1; }
kill -s "${stop_signal#SIG}" "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
[ "$status" = 0 ] || { echo "test-ops: exit status $status after $stop_signal" >&2; cat "$work/err.log" >&2; exit 1; }
grep -q 'draining' "$work/err.log" || { echo "test-ops: $stop_signal did not drain" >&2; exit 1; }
echo "test-ops: $stop_signal drains and exits 0"

# --- 1. the systemd unit --------------------------------------------------------------------------
command -v systemd-analyze >/dev/null 2>&1 || require_tools test-ops scripts/install-ops.sh systemd-analyze
# verify checks that ExecStart exists: point it at the binary just built.
sed "s|/usr/local/bin/cobra|$bin|g" deploy/systemd/cobra.service > "$work/cobra.service"
systemd-analyze verify "$work/cobra.service"
echo "test-ops: systemd-analyze verify passes"
echo "test-ops: ok"
