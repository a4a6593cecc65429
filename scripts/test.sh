#!/usr/bin/env bash
# The whole test suite: what CI runs (`.ci/run`) after `scripts/setup.sh`.
# Each stage prints its name; the first failure stops the run. Stages that need an absent external tool skip with a
# loud message locally and fail under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each stage also prints the disk left: a CI machine's disk varies, and running out fails a build mid-link.
stage() { printf '\n==== %s ====\n' "$*"; df -h --output=avail . 2>/dev/null | tail -1 | sed 's/^ */disk available: /'; }

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
  if [ "${CI:-}" = true ]; then
    # Cross-compiled libraries (Windows, mobile) are checked by their own stage and used by no later one.
    for d in target/*-*-*/; do
      if [ "$d" != target/x86_64-unknown-linux-gnu/ ] && { [ -d "$d/release" ] || [ -d "$d/debug" ]; }; then rm -rf "$d"; fi
    done
  fi
done
echo; echo "all tests passed"
