#!/usr/bin/env bash
# Tools of the operations stage (scripts/test-ops.sh): `systemd-analyze`, to verify the systemd unit
# in deploy/systemd. Idempotent. (No Docker engine, Kubernetes or helm here: the Dockerfile's steps
# and the Helm chart are checked by scripts/test-ops.sh and server/tests/deploy.rs without them.)
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends systemd
fi
