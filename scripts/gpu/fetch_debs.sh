#!/usr/bin/env bash
# Prepares what scripts/gpu/build_and_test.sh needs on a GPU host that has a
# CUDA PyTorch but no package registry: the Debian packages Pendulum builds
# against (as .deb files, unpacked there into a prefix), the Fashion-MNIST
# package, and a copy of the shared reference vectors. Run here (Debian 12,
# apt reachable), from the repository root; writes .gpudeps/ (git-ignored via
# .git/info/exclude; about 56 MB, under the device tool's 64 MiB limit) with
# a clean copy of HEAD in .gpudeps/src. On the device (carry .gpudeps):
#   cd .gpudeps/src && PENDULUM_GPU_DEPS=$(cd .. && pwd) bash scripts/gpu/build_and_test.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=.gpudeps
mkdir -p "$DEST/debs"
grep -qx '/.gpudeps/' .git/info/exclude 2>/dev/null || echo '/.gpudeps/' >> .git/info/exclude
PACKAGES=(
  # protobuf + gRPC (server, daemon, client; the trainer links protobuf only)
  libprotobuf-dev libprotobuf32 libprotoc32 protobuf-compiler
  libgrpc++-dev libgrpc-dev libgrpc++1.51 libgrpc29 protobuf-compiler-grpc
  libre2-9 libre2-dev libc-ares2 libc-ares-dev libabsl-dev libabsl20220623
  # spec, store, metrics, tests
  libyaml-cpp-dev libyaml-cpp0.7 libsqlite3-dev libsqlite3-0
  prometheus-cpp-dev libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libprometheus-cpp-push1.0
  libcivetweb1 libcivetweb-dev civetweb nlohmann-json3-dev zlib1g-dev libssl-dev libssl3
  libgtest-dev libgmock-dev libcurl4-openssl-dev libcurl4
  # real data for the tests that train on Fashion-MNIST
  dataset-fashion-mnist
)
(cd "$DEST/debs" && apt-get download "${PACKAGES[@]}")
REF=${PENDULUM_REFERENCE_DIR:-$(cd .. && pwd)/shared/reference}
rm -rf "$DEST/reference" && cp -r "$REF" "$DEST/reference"
# A clean copy of HEAD: what the GPU run builds, so uncommitted edits in this
# working tree (other people's half-done work) cannot break it.
rm -rf "$DEST/src" && mkdir -p "$DEST/src" && git archive HEAD | tar -x -C "$DEST/src"
du -sh "$DEST"
