#!/usr/bin/env bash
# Set up and build the app window from a fresh Debian 12 machine: system packages, the wasm
# target, wasm-bindgen-cli (the same version as the wasm-bindgen crate in Cargo.lock),
# tauri-driver and wasm-opt; then the Leptos UI (ui/dist) and the Tauri app, which embeds it.
# Every install is skipped when what it installs is already there, so a second run only builds.
#
# Usage: scripts/setup-app.sh [--debug] [--no-build]
#   --debug     debug builds (what the end-to-end tests drive; faster to build)
#   --no-build  install only
# Needs root or sudo for apt. Nothing is downloaded at build time: cargo fetches from crates.io,
# npm from its registry, apt from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release; build=1
for arg in "$@"; do
  case $arg in
    --debug) profile=debug ;;
    --no-build) build= ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done
step() { printf '\n--- %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Tauri's webview and its build, a display for tests and screenshots, the WebDriver for the
# window, Chromium for the browser tests, and a real Secret Service (gnome-keyring on a private
# D-Bus session) for the device's secrets. (Debian 12 has no libappindicator3-dev.)
packages=(build-essential pkg-config libssl-dev file curl
  libwebkit2gtk-4.1-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev librsvg2-dev
  libayatana-appindicator3-dev libxdo-dev
  xvfb xauth xdotool imagemagick webkit2gtk-driver fonts-noto-cjk
  chromium chromium-driver
  dbus gnome-keyring libsecret-tools)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
# npm for wasm-opt; a Node.js installed another way (with its own npm) is fine as it is.
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  step "apt: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step "wasm target"
rustup target list --installed | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown

# wasm-bindgen-cli must match the crate exactly, or the generated glue does not fit the module.
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
  step "wasm-bindgen-cli $bindgen_version"
  # Not --locked: its own lock file pins a crate version this registry does not serve.
  cargo install --quiet wasm-bindgen-cli --version "$bindgen_version"
fi
# (tauri-driver has no --version: ask cargo what it installed.)
if ! cargo install --list | grep -qx 'tauri-driver v2.1.0:'; then
  step "tauri-driver 2.1.0"
  cargo install --quiet --locked tauri-driver --version 2.1.0
fi
# Debian's binaryen (108) writes a module that fails to load; this one works.
if [ ! -x .tools/node_modules/.bin/wasm-opt ]; then
  step "wasm-opt (binaryen 132, npm)"
  npm install --prefix .tools --no-audit --no-fund --silent binaryen@132.0.0
fi

[ -n "$build" ] || exit 0
step "UI ($profile)"
if [ $profile = debug ]; then ./scripts/build-ui.sh --debug; else ./scripts/build-ui.sh; fi
step "app window ($profile)"
# The UI is embedded at compile time: make sure a changed ui/dist is picked up.
touch app/build.rs
flag=--release; [ $profile = debug ] && flag=
cargo build --locked -p fieldbook-app -p fieldbook-relay --features fieldbook-app/custom-protocol \
  --bin fieldbook-desktop --bin fieldbook-relay $flag
echo "built ${CARGO_TARGET_DIR:-target}/$profile/fieldbook-desktop"
