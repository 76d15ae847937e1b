#!/usr/bin/env bash
# Runs the methods.md §7.2 small-scale check (replay-CE vs +KD vs +KD+WA vs
# +KD+WA+clip, Fashion-MNIST, 5 stages of 2 classes) through a real
# pendulum-server and pendulum-worker, then prints `pendulum compare` tables.
# Default size is the reduced one of README.md (6000 train / 2000 eval
# images, about a minute per run on an idle 2-core machine); FULL=1 uses the
# whole dataset. One torch thread per run, two runs at a time.
#
#   examples/incremental/run_sweep.sh BUILD_DIR
# Env: SEEDS (default "1 2 3"), FULL (0|1), PORT (default 7191), HOME_DIR (default a temp dir),
#      SLOTS (runs at a time, default 2), SERVER/WORKER/CLI/TRAINER (binaries; default in BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=$(realpath "${1:?usage: run_sweep.sh BUILD_DIR}")
SERVER=${SERVER:-$BUILD/server/pendulum-server}
WORKER=${WORKER:-$BUILD/worker/daemon/pendulum-worker}
CLI=${CLI:-$BUILD/client/pendulum}
TRAINER=${TRAINER:-$BUILD/worker/train/pendulum-train}
SLOTS=${SLOTS:-2}
SEEDS=${SEEDS:-1 2 3}
PORT=${PORT:-7191}
HOME_DIR=${HOME_DIR:-$(mktemp -d /tmp/pendulum-incremental.XXXXXX)}
SIZE=(--set data.train_subset=6000 --set data.eval_subset=2000)
[ "${FULL:-0}" = 1 ] && SIZE=()

WORKER_NAME=worker-incremental
# shellcheck source=../local_pool.sh
source examples/local_pool.sh

declare -A IDS
for v in replay_ce kd kd_wa kd_wa_clip; do
  for seed in $SEEDS; do
    IDS[$v]+=" $("$CLI" submit "examples/incremental/wa_fmnist_$v.yaml" --set resources.cpus=1 --set seed="$seed" "${SIZE[@]}")"
  done
done
for v in replay_ce kd kd_wa kd_wa_clip; do
  for id in ${IDS[$v]}; do
    "$CLI" watch "$id" --plain > /dev/null 2>&1 || echo "run $id ($v) did not succeed" >&2
  done
done
METRICS=incremental/avg_inc_acc,incremental/final_acc,incremental/acc_before_wa,incremental/old_acc,incremental/new_pred_share,incremental/gamma_raw,incremental/gamma
for v in replay_ce kd kd_wa kd_wa_clip; do
  echo "== $v (runs${IDS[$v]})"
  # shellcheck disable=SC2086
  "$CLI" compare ${IDS[$v]} --metric "$METRICS"
done
