#!/usr/bin/env bash
# Every test, from a fresh Debian 12 machine: sets up and builds the app window
# (scripts/setup-app.sh --debug: system packages, wasm target, pinned tools, UI, app), runs the
# workspace's tests, then the end-to-end tests that drive the real window under Xvfb and the
# manager's web view (served by a relay process) in headless Chromium.
#
# Usage: scripts/test.sh [--no-window]
#   --no-window  only `cargo test --workspace` (no system packages, no display needed)
set -euo pipefail
cd "$(dirname "$0")/.."

window=1
[ "${1:-}" = --no-window ] && window=

if [ -n "$window" ]; then
  ./scripts/setup-app.sh --debug
fi

printf '\n--- cargo test --workspace (%s)\n' "$(date -u +%H:%M:%S)"
cargo test --workspace --locked

if [ -n "$window" ]; then
  printf '\n--- the app window, end to end (%s)\n' "$(date -u +%H:%M:%S)"
  # One window at a time: two WebKit processes starting at once on 2 cores only add noise.
  # `--workspace` keeps the feature set of the build above (with `-p` cargo would rebuild
  # most dependencies for this one test).
  xvfb-run -a -s "-screen 0 1280x900x24" \
    cargo test --workspace --locked --test app_window -- --ignored --test-threads=1
  printf '\n--- the web view in Chromium, end to end (%s)\n' "$(date -u +%H:%M:%S)"
  cargo test --workspace --locked --test web_view -- --ignored
fi
