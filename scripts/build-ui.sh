#!/usr/bin/env bash
# Build the Leptos UI into ui/dist (embedded by the Tauri app, served by the relay):
# cargo (wasm32) → wasm-bindgen (pinned to the wasm-bindgen crate in Cargo.lock) → wasm-opt.
# Usage: scripts/build-ui.sh [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release; flag=--release
if [[ "${1:-}" == "--debug" ]]; then profile=debug; flag=; fi
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --locked -p fieldbook-ui --target wasm32-unknown-unknown $flag
rm -rf ui/dist && mkdir -p ui/dist/pkg
wasm-bindgen --target web --no-typescript --out-dir ui/dist/pkg --out-name ui \
  "$target_dir/wasm32-unknown-unknown/$profile/ui.wasm"
# Debian's binaryen (108) produces a module that fails to load; the pinned npm one works.
wasm_opt=.tools/node_modules/.bin/wasm-opt
if [[ $profile == release && -x $wasm_opt ]]; then
  "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    ui/dist/pkg/ui_bg.wasm -o ui/dist/pkg/ui_bg.wasm
fi
cp ui/static/* ui/dist/
ls -l ui/dist/pkg/ui_bg.wasm | awk '{printf "ui/dist built (%s, wasm %.1f MB)\n", "'$profile'", $5/1048576}'
