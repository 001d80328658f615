#!/usr/bin/env bash
# Sync performance side by side: our relay and device engines against the reference
# automerge-repo sync server (npm, @automerge/automerge-repo-sync-server 0.2.8) with
# automerge-repo clients, on this machine, in one run. Prints a Markdown table with both,
# the ratio and the physical bounds measured beside them (see docs/performance.md).
#
#   scripts/compare.sh                          # full sizes: 1k and 10k dossiers, 1k and 5k connections
#   scripts/compare.sh --sizes 100 --connections 100
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null && command -v npm >/dev/null || {
  echo "the reference side needs Node.js and npm (Debian: apt-get install nodejs npm)" >&2
  exit 1
}
# The reference, as locked in tests/compare/package-lock.json (registry only).
# (`npm install`, not `npm ci`: see .ci/run.)
[ -d tests/compare/node_modules ] || npm install --prefix tests/compare --no-audit --no-fund
cargo build --release --locked -p fieldbook-tests --bins
exec target/release/compare "$@"
