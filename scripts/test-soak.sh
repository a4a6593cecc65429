#!/usr/bin/env bash
# CI stage for the soak (issue 8): the 60-second run of scripts/soak.sh.
set -euo pipefail
exec "$(dirname "$0")/soak.sh" 60
