#!/usr/bin/env bash
# Installs cargo-deny (licenses, bans, sources and advisories of the dependency graph; scripts/test-deny.sh runs it)
# from crates.io into cargo's bin directory, and tries to fetch the RustSec advisory database next to it.
# Idempotent: skipped when the pinned version is already installed. The database fetch may fail where only the package
# registries are reachable: scripts/test-deny.sh then uses a local copy (COBRA_ADVISORY_DB) or says it could not check.
set -euo pipefail
CARGO_DENY_VERSION="${CARGO_DENY_VERSION:-0.20.2}"

if cargo deny --version 2>/dev/null | grep -qx "cargo-deny $CARGO_DENY_VERSION"; then
  echo "cargo-deny: already installed ($CARGO_DENY_VERSION)"
else
  echo "cargo-deny: installing $CARGO_DENY_VERSION from crates.io (a few minutes on 2 cores)"
  cargo install --locked --quiet "cargo-deny@$CARGO_DENY_VERSION"
fi
echo "cargo-deny: $(cargo deny --version)"
