#!/usr/bin/env bash
# Runs the small-scale checks of methods.md §7.4 (Weight Compander), §7.5
# (TSCNC) and §7.6 (Interaction Basis) through a real pendulum-server and
# pendulum-worker on Fashion-MNIST, then prints `pendulum compare` tables.
# Sized for a loaded 2-core machine (~20 min): one seed, one torch thread per
# run, two runs at a time; the §7.5 runs use a 10k-image subset and 3+1+1 epochs
# (the spec says 20k and 4+1+2; pass FULL=1 for that).
#
#   examples/reg/run_checks.sh BUILD_DIR [SERVER_BIN_DIR]
# BUILD_DIR holds worker/train/pendulum-train; SERVER_BIN_DIR (default BUILD_DIR)
# holds pendulum-server, pendulum-worker and pendulum (flat, or in the build layout).
# Env: TRAINER (default BUILD_DIR/worker/train/pendulum-train), HOME_DIR (default a temp dir), PORT (default 7190), SEEDS (default "1"),
#      ONLY (wc|tscnc|ib; default all three).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=$(realpath "${1:?usage: run_checks.sh BUILD_DIR [SERVER_BIN_DIR]}")
BINS=$(realpath "${2:-$BUILD}")
find_bin() {  # name, build-layout subdir
  if [ -x "$BINS/$1" ]; then echo "$BINS/$1"; else echo "$BINS/$2/$1"; fi
}
SERVER=$(find_bin pendulum-server server)
WORKER=$(find_bin pendulum-worker worker/daemon)
CLI=$(find_bin pendulum client)
TRAINER=${TRAINER:-$BUILD/worker/train/pendulum-train}
HOME_DIR=${HOME_DIR:-$(mktemp -d /tmp/pendulum-checks.XXXXXX)}
PORT=${PORT:-7190}
SEEDS=${SEEDS:-1}
ONLY=${ONLY:-wc tscnc ib}
SLOTS=2
WORKER_NAME=worker-checks
# shellcheck source=../local_pool.sh
source examples/local_pool.sh

submit() {  # file, extra --set args...; prints the run id
  local f=$1
  shift
  "$CLI" submit "$f" --set resources.cpus=1 "$@"
}
wait_all() {  # run ids...
  for id in "$@"; do
    "$CLI" watch "$id" --plain > /dev/null 2>&1 || echo "run $id did not succeed:" >&2
    "$CLI" show "$id" | grep -E "^(run|state|exit)" >&2
  done
}

declare -a WC=() TS=() IB=()  # assigned: with set -u an unassigned array is unbound
# The §7.6 training run goes first (priority 10), so its analysis (priority 10)
# can start as soon as it is done, ahead of the queued §7.4/§7.5 runs.
if [[ " $ONLY " == *" ib "* ]]; then
  TRAIN_ID=$(submit examples/analysis/mnist_mlp_train.yaml --set priority=10)
  IB+=("$(submit examples/analysis/ib_block_mlp.yaml --set priority=10)")
fi
for seed in $SEEDS; do
  if [[ " $ONLY " == *" wc "* ]]; then
    for f in wc_baseline wc_fixed wc_learnable; do
      WC+=("$(submit examples/reg/$f.yaml --set seed="$seed" --set schedule.eval_every_epochs=5)")
    done
  fi
  if [[ " $ONLY " == *" tscnc "* ]]; then
    small=(--set data.train_subset=10000 --set method.tscnc.pretrain_epochs=3
           --set method.tscnc.finetune_epochs=1 --set method.tscnc.robust_eval_examples=500)
    [ "${FULL:-0}" = 1 ] && small=()
    for f in tscnc_baseline_90 tscnc_tsc_90 tscnc_tscnc_90 tscnc_baseline_99 tscnc_tsc_99 tscnc_tscnc_99; do
      TS+=("$(submit examples/reg/$f.yaml --set seed="$seed" "${small[@]}")")
    done
  fi
done
if [[ " $ONLY " == *" ib "* ]]; then
  wait_all "$TRAIN_ID"
  IB+=("$TRAIN_ID" "$(submit examples/analysis/ib_mnist_mlp.yaml --set init.from_run="$TRAIN_ID" --set priority=10)")
fi
wait_all "${WC[@]}" "${TS[@]}" "${IB[@]}"

if [ ${#WC[@]} -gt 0 ]; then
  echo "== §7.4 Weight Compander: WC-like (family tanh), methods.md §4 GAP =="
  "$CLI" compare "${WC[@]}" --metric train_acc,eval_acc,eval_loss,compander/max_abs_w,compander/near_zero_frac,compander/saturated_frac
  for id in "${WC[@]}"; do
    echo "-- run $id: last train loss/acc (window), final eval"
    "$CLI" metrics "$id" --name loss --format csv | tail -n 1
  done
fi
if [ ${#TS[@]} -gt 0 ]; then
  echo "== §7.5 TSCNC (code is the spec; paper's equations and tables: GAP) =="
  # kappa_kept: sigma_max/sigma_min over the kept (non-zero) rows and columns;
  # the whole-matrix kappa of a pruned layer is inf (1e300) by construction.
  "$CLI" compare "${TS[@]}" --metric eval_acc,tscnc/eval_fgsm_acc,tscnc/eval_pgd_acc,tscnc/sparsity,tscnc/kappa_kept/fc0,tscnc/kappa_kept/fc1,tscnc/kappa_kept/head,tscnc/lipschitz_bound
fi
if [ ${#IB[@]} -gt 0 ]; then
  echo "== §7.6 Interaction Basis (equations reconstructed from rib code: GAP) =="
  "$CLI" compare "${IB[@]}" --json > "$HOME_DIR/ib_compare.json"
  "$CLI" compare "${IB[@]}"
  # The analysis runs' basis tensors and clusters are stored on the server.
  for id in "${IB[@]}"; do
    "$CLI" show "$id" | sed -n '/^artifacts:/,/^spec:/p' | grep -v '^spec:'
  done
  mkdir -p "$HOME_DIR/ib_artifacts"
  "$CLI" artifact "${IB[0]}" interaction_basis/summary.json --out "$HOME_DIR/ib_artifacts/block_mlp_summary.json"
fi
echo "runs: WC ${WC[*]:-} TSCNC ${TS[*]:-} IB ${IB[*]:-}; home $HOME_DIR"
