#!/usr/bin/env bash
# The README's test command: installs missing Debian packages, configures,
# builds with all cores and runs the whole suite through ctest.
#   tests/run.sh                 everything
#   tests/run.sh -L unit         only one label (extra args go to ctest)
# Env: BUILD_DIR (default build), PENDULUM_CXX_STANDARD (17|20),
#      PENDULUM_REFERENCE_DIR (default ../shared/reference).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

bash scripts/install_deps.sh

BUILD_DIR=${BUILD_DIR:-build}
export PENDULUM_REFERENCE_DIR=${PENDULUM_REFERENCE_DIR:-$(cd "$ROOT/.." && pwd)/shared/reference}
# ccache: paths relative to the checkout, and the working directory left out of
# the hash (-g would otherwise put it in), so another clone reuses the objects.
export CCACHE_BASEDIR=$ROOT
export CCACHE_NOHASHDIR=true
JOBS=$(nproc)

cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_STANDARD="${PENDULUM_CXX_STANDARD:-17}"
cmake --build "$BUILD_DIR" -j "$JOBS"

cd "$BUILD_DIR"
# Tests that start real processes pick free ports themselves; run two at once.
ctest --output-on-failure -j "$JOBS" --timeout 900 "$@"
