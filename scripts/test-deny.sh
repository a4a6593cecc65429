#!/usr/bin/env bash
# cargo deny over the whole workspace (deny.toml): licenses, banned sources, duplicate versions
# (reported), and RustSec advisories.
#
# Advisories need the RustSec database. It is fetched when the network allows; where only the
# package registries are reachable (as on our CI machines) a local copy is used instead:
# COBRA_ADVISORY_DB=<a git checkout of rustsec/advisory-db>, cloned from the local path. With
# neither, the advisories check is reported SKIPPED (loudly, also under CI: the database is not
# a tool anyone here can install), and the other checks still run and must pass.
# Needs cargo-deny (scripts/install-cargo-deny.sh): skips loudly without it, fails under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/common.sh
. scripts/lib/common.sh

cargo deny --version >/dev/null 2>&1 || require_tools test-deny scripts/install-cargo-deny.sh cargo-deny

cargo deny --all-features check licenses bans sources

if [ -n "${COBRA_ADVISORY_DB:-}" ]; then
  # The local copy is a git checkout: cargo-deny clones it through a file:// URL, no network.
  db="$(cd "$COBRA_ADVISORY_DB" && pwd)"
  cfg="$(mktemp --suffix=.toml)"
  trap 'rm -f "$cfg"' EXIT
  sed "s|^db-path = .*|&\ndb-urls = [\"file://$db\"]|" deny.toml > "$cfg"
  cargo deny --all-features check --config "$cfg" advisories
elif timeout 120 cargo deny --all-features fetch db >/dev/null 2>&1; then
  cargo deny --all-features check advisories
else
  echo "SKIPPED: advisories: the RustSec database cannot be fetched from here and no local copy is set" \
    "(COBRA_ADVISORY_DB=<a checkout of rustsec/advisory-db>)" >&2
fi
echo "test-deny: passed"
