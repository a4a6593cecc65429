#!/usr/bin/env bash
# The whole test suite: what CI runs (`.ci/run`) after `scripts/setup.sh`.
# Each stage prints its name; the first failure stops the run. Stages that need an absent external tool skip with a
# loud message locally and fail under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
stage() { printf '\n==== %s ====\n' "$*"; }

stage "format"
cargo fmt --all -- --check

stage "clippy"
cargo clippy --workspace --all-targets -- -D warnings

stage "build the server binary (end-to-end tests spawn it)"
cargo build -p cobra-server --bin cobra

stage "unit, integration and end-to-end tests"
cargo test --workspace

for s in scripts/test-*.sh; do
  [ -x "$s" ] || continue
  stage "$s"
  "$s"
done
echo; echo "all tests passed"
