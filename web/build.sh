#!/usr/bin/env bash
# Builds the page's WebAssembly into web/pkg/ (README.md beside this file): the wasm32 target,
# wasm-bindgen-cli built from source at the wasm-bindgen crate's version in Cargo.lock, the
# release build of wgstyle-web, then wasm-bindgen's ES-module glue. No prebuilt download.
set -euo pipefail
web="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$web")"
cd "$root"

rustup target list --installed | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown

# The CLI must be exactly the crate's version (the glue's ABI changes between versions).
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$version" ] || { echo "build.sh: no wasm-bindgen in Cargo.lock" >&2; exit 1; }
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $version"; then
  echo "build.sh: installing wasm-bindgen-cli $version (from source)"
  cargo install wasm-bindgen-cli --version "$version"
fi

profile=${WGSTYLE_WEB_PROFILE:-release}
cargo build --target wasm32-unknown-unknown -p wgstyle-web --profile "$profile"
wasm-bindgen --target web --no-typescript --out-dir "$web/pkg" \
  "$root/target/wasm32-unknown-unknown/$profile/wgstyle_web.wasm"
echo "build.sh: web/pkg/ ready ($(du -h "$web/pkg/wgstyle_web_bg.wasm" | cut -f1) of wasm)"
