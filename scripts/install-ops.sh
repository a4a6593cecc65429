#!/usr/bin/env bash
# Tools of the operations stage (scripts/test-ops.sh): `systemd-analyze`, to verify the systemd unit
# in deploy/systemd. Idempotent. (No Docker engine, Kubernetes or helm here: the Dockerfile's steps
# and the Helm chart are checked by scripts/test-ops.sh and server/tests/deploy.rs without them.)
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  apt_install systemd
fi
