#!/usr/bin/env bash
# GPU build-and-test in one call (issue 4: "with a GPU machine, the build
# against a CUDA LibTorch and the same tests pass there; record a DeiT-Tiny
# W2A2 step time"). Meant for a GPU host with a CUDA PyTorch in python3 and no
# package registry (such as the device machines); never used by CI.
#
#   scripts/gpu/fetch_debs.sh          # here, once: .gpudeps/ (Debian .debs + reference vectors)
#   scripts/gpu/build_and_test.sh      # there: everything below, logs in $OUT
#
# Phases, each logged to $OUT (at most 9 files):
#   facts.txt       GPU, OS, compiler, CMake, PyTorch (version, CUDA, ABI)
#   configure.log   Debian packages unpacked into $PREFIX; CMake against torch's LibTorch (C++20, Release)
#   build.log       compiler output of failed edges only: pendulum-train and the CUDA tests,
#                   then the trainer's unit tests (phase A); then everything (phase B)
#   ctest_gpu.log   label gpu: CUDA vs CPU quantizers, bf16 autocast, memory cap, W2A2 ViT on the GPU
#   ctest_train.log every trainer unit test (labels unit and reference), on the same build
#   bench_deit.log  bench/train/deit_tiny_step.sh: DeiT-Tiny FP vs W2A2 step time, fp32 and bf16
#   ctest_rest.log  phase B: the integration and fault suites (real server, worker, trainer)
#   crash_stacks.txt the stack of every test binary that crashed (demangled)
#   summary.txt     one line per phase: status and seconds
# Phase B starts only while less than PENDULUM_GPU_BUDGET_S (default 330) seconds have passed.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/gpu-out}
DEPS=${PENDULUM_GPU_DEPS:-$ROOT/.gpudeps}
PREFIX=${PENDULUM_DEPS_PREFIX:-/opt/pendulum-deps}
BUILD=${BUILD_DIR:-$ROOT/build-gpu}
JOBS=${JOBS:-$(nproc)}
BUDGET=${PENDULUM_GPU_BUDGET_S:-330}
START=$(date +%s)
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
: > "$OUT/build.log"
elapsed() { echo $(( $(date +%s) - START )); }
# build TARGETS...: ninja into the build dir's full log; only the failed edges'
# output (from each "FAILED:" to the next progress line) goes to $OUT/build.log.
build() {
  ninja -C "$BUILD" -j "$JOBS" -k 0 "$@" > "$BUILD/ninja.log" 2>&1
  local rc=$?
  awk '/^FAILED:/ { on = 1 } /^\[[0-9]+\/[0-9]+\]/ { on = 0 } on' "$BUILD/ninja.log" | head -c 15000000 >> "$OUT/build.log"
  echo "[$(elapsed) s] ninja $* -> rc $rc, $(grep -c '^FAILED:' "$BUILD/ninja.log") failed edges" >> "$OUT/build.log"
  return $rc
}
note() { echo "$1: $2 at ${3:-$(elapsed)} s" | tee -a "$SUMMARY"; }

# --- facts ---------------------------------------------------------------
TORCH_INFO=$(python3 -c 'import torch; print(torch.__version__, torch.version.cuda, int(torch.compiled_with_cxx11_abi()), torch.utils.cmake_prefix_path)' 2>&1)
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  grep -E '^(PRETTY_NAME|VERSION_ID)' /etc/os-release
  ldd --version 2>&1 | head -1
  for c in g++ c++ clang++; do command -v $c > /dev/null && $c --version | head -1; done
  cmake --version | head -1; ninja --version; nvcc --version | tail -2
  echo "torch: $TORCH_INFO"; echo "cores: $(nproc)"
} > "$OUT/facts.txt" 2>&1
TORCH_CMAKE=$(echo "$TORCH_INFO" | tail -1 | awk '{print $4}')
note facts "torch $(echo "$TORCH_INFO" | tail -1 | awk '{print $1, "cuda", $2, "cxx11abi", $3}')"

# --- dependencies and configure ---------------------------------------------
{
  if [ -d "$DEPS/debs" ]; then
    mkdir -p "$PREFIX"
    for f in "$DEPS"/debs/*.deb; do
      case $(basename "$f") in
        dataset-*) dpkg -x "$f" / ;;   # data only, at its Debian path (/usr/share/datasets)
        *) dpkg -x "$f" "$PREFIX" ;;
      esac
    done
    echo "unpacked $(ls "$DEPS"/debs/*.deb | wc -l) packages into $PREFIX"
  fi
  [ -d "$DEPS/reference" ] && export PENDULUM_REFERENCE_DIR=$DEPS/reference
} > "$OUT/configure.log" 2>&1
[ -d "$DEPS/reference" ] && export PENDULUM_REFERENCE_DIR=$DEPS/reference
export PATH=$PREFIX/usr/bin:$PATH
export LD_LIBRARY_PATH=$PREFIX/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
# -include cstdint: Debian's abseil/protobuf headers predate GCC 13's leaner includes.
configure() {  # $1 build dir, $2 ON|OFF (PENDULUM_BUILD_SERVICES)
  cmake -S . -B "$1" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_STANDARD=${PENDULUM_CXX_STANDARD:-20} \
    -DCMAKE_CXX_FLAGS="-include cstdint" \
    -DCMAKE_PREFIX_PATH="$TORCH_CMAKE;$PREFIX/usr;$PREFIX/usr/lib/x86_64-linux-gnu/cmake" \
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
    -DProtobuf_PROTOC_EXECUTABLE="$PREFIX/usr/bin/protoc" -DProtobuf_INCLUDE_DIR="$PREFIX/usr/include" \
    -DCMAKE_CUDA_COMPILER="$NVCC" -DCUDAToolkit_ROOT="$(dirname "$(dirname "$NVCC")")" \
    -DCUDA_TOOLKIT_ROOT_DIR="$(dirname "$(dirname "$NVCC")")" \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DTORCH_CUDA_ARCH_LIST=9.0 \
    -DPENDULUM_BUILD_TRAIN=ON -DPENDULUM_BUILD_SERVICES="$2" >> "$OUT/configure.log" 2>&1
}
SERVICES=ON
if ! configure "$BUILD" ON; then
  # The trainer side alone needs no gRPC/SQLite/prometheus-cpp: still check the CUDA build.
  echo "=== full configure failed; trainer-only (PENDULUM_BUILD_SERVICES=OFF) ===" >> "$OUT/configure.log"
  BUILD=$BUILD-trainer
  SERVICES=OFF
  if ! configure "$BUILD" OFF; then note configure FAILED; exit 1; fi
fi
note configure "ok, services $SERVICES ($(grep -o 'Pendulum: LibTorch.*' "$OUT/configure.log" | tail -1))"

# --- phase A: the trainer and the CUDA tests first, then the trainer's unit tests
if build pendulum-train cuda_training_test; then
  note build-trainer ok
else
  note build-trainer "FAILED ($(grep -c '^FAILED:' "$BUILD/ninja.log") edges; errors in build.log)"
  exit 1  # nothing below can run without the trainer
fi
cd "$BUILD"
ctest -L gpu --output-on-failure -j 2 --timeout 600 > "$OUT/ctest_gpu.log" 2>&1
note ctest-gpu "$(grep -E 'tests passed|No tests were found' "$OUT/ctest_gpu.log" | tail -1)"
cd "$ROOT"
bench/train/deit_tiny_step.sh "$BUILD" --batch 64 --steps 60 > "$OUT/bench_deit.log" 2>&1
note bench-deit "$(tail -1 "$OUT/bench_deit.log")"
build worker/train/all tests/unit/train/all
note build-train-tests "$([ $? -eq 0 ] && echo ok || echo "FAILED ($(grep -c '^FAILED:' "$BUILD/ninja.log") edges)")"
cd "$BUILD"
ctest -L 'unit|reference' -LE gpu --output-on-failure -j "$JOBS" --timeout 600 > "$OUT/ctest_train.log" 2>&1
note ctest-train "$(grep -E 'tests passed|No tests were found' "$OUT/ctest_train.log" | tail -1)"
# A crashing test prints its stack (tests/support/gtest_main.cc); keep the
# frames, demangled, where the summary points.
for log in "$OUT/ctest_gpu.log" "$OUT/ctest_train.log"; do
  if grep -q 'test binary crashed' "$log"; then
    grep -B2 -A40 'test binary crashed' "$log" | (command -v c++filt > /dev/null && c++filt || cat) >> "$OUT/crash_stacks.txt"
  fi
done
[ -s "$OUT/crash_stacks.txt" ] && note crash-stacks "$(grep -c 'test binary crashed' "$OUT/crash_stacks.txt") crash(es); frames in crash_stacks.txt"
cd "$ROOT"

# --- phase B: everything else, while time allows ----------------------------
if [ "$SERVICES" = OFF ]; then
  note phase-B "skipped (trainer-only build: the services did not configure here)"
elif [ "$(elapsed)" -lt "$BUDGET" ]; then
  build
  note build-all "$([ $? -eq 0 ] && echo ok || echo FAILED)"
  # A real Prometheus server is not on GPU hosts; its tests run in CI.
  cd "$BUILD"
  ctest -L 'integration|fault' -E 'observability_prometheus|Prometheus' --output-on-failure -j "$JOBS" \
    --timeout 600 > "$OUT/ctest_rest.log" 2>&1
  note ctest-all "$(grep -E 'tests passed' "$OUT/ctest_rest.log" | tail -1)"
else
  note phase-B "skipped (budget ${BUDGET} s spent)"
fi
