#!/usr/bin/env bash
# The browser test (README.md beside this file): builds the page, converts two styles from
# ${WGSTYLE_SHARED:-../shared} into web/styles/, and drives the page in headless Chromium
# through test.mjs, comparing with the native CLI. Needs /usr/bin/chromium and node/npm.
set -euo pipefail
web="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$web")"
shared="${WGSTYLE_SHARED:-$root/../shared}"
cd "$root"

if [ ! -d "$shared/weights/styles" ]; then
  if [ "${CI:-}" = true ]; then
    echo "web/test.sh: shared data missing at $shared (set WGSTYLE_SHARED)" >&2
    exit 1
  fi
  echo "web/test.sh: skipped: shared data missing at $shared (set WGSTYLE_SHARED)"
  exit 0
fi

"$web/build.sh"
# The crate's native unit tests (pixel conversions).
cargo test -p wgstyle-web --quiet
cargo build --bin wgstyle
bin="$root/target/debug/wgstyle"

# Two styles: lengstrom's network (deeplearnjs checkpoint) and pytorch/examples' (.pth; random
# weights, a numeric reference); the page lists them from styles/index.json.
mkdir -p "$web/styles" "$web/out"
"$bin" convert "$shared/weights/styles/scream" "$web/styles/scream.safetensors" --force
"$bin" convert "$shared/golden/pytorch/transformer_net.pth" "$web/styles/pytorch-examples.safetensors" --force
cat > "$web/styles/index.json.tmp" <<'JSON'
[
  {"name": "The Scream (lengstrom)", "file": "scream.safetensors"},
  {"name": "pytorch/examples network (random weights)", "file": "pytorch-examples.safetensors"}
]
JSON
mv "$web/styles/index.json.tmp" "$web/styles/index.json"

cd "$web"
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
node test.mjs "$bin" "$shared/images/content/chicago.jpg" \
  "$web/styles/scream.safetensors" "$web/styles/pytorch-examples.safetensors"
