#!/usr/bin/env bash
# The Python leg of CI: a fresh virtual environment, the package built from this tree
# (reusing the repository's cargo target directory), then `pytest python/tests`.
# Exits non-zero on any failure; prints how long the leg took.
set -euo pipefail

start=$(date +%s)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

work=$(mktemp -d)
trap 'rm -rf "$work"; echo "python leg: $(( $(date +%s) - start )) s"' EXIT
venv="$work/venv"

python3 -m venv "$venv"
# Ray is not installed here: see python/README.md (size and install time); its test skips.
"$venv/bin/pip" install --quiet --disable-pip-version-check maturin numpy pytest pillow

# The CLI binary, for the test that compares the binding's output with the library's.
cargo build --quiet --bin wgstyle --manifest-path "$repo/Cargo.toml"
# One dev-profile build of the extension into the venv (deps are opt-level 2).
(cd "$here" && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" maturin develop --quiet)

set +e
(cd "$repo" && "$venv/bin/python" -m pytest -q python/tests)
rc=$?
set -e
case $rc in
  0) echo "python tests passed" ;;
  5) echo "error: pytest collected no tests from python/tests" >&2; exit 1 ;;
  *) echo "error: python tests failed (pytest exit code $rc)" >&2; exit "$rc" ;;
esac
