#!/bin/sh
# methods.md §7.1 on a Pendulum server: the OFQ small-scale check as sweeps of
# the specs beside this file, 3 seeds, then `pendulum compare` prints the
# table (final eval accuracy, oscillation ratio and flip rate of the 2-bit
# block weights, CGA free fraction; mean ± std over seeds per configuration).
#   examples/ofq/small_scale_sweep.sh [mlp|vit] [--set PATH=VALUE]...
# e.g. a quick version: examples/ofq/small_scale_sweep.sh mlp --set data.train_subset=5000
# Needs PENDULUM_SERVER / PENDULUM_TOKEN (see README) and `pendulum` on PATH
# (or PENDULUM_CLI=path). Each stage waits for the previous one: a QAT run
# initialises from its seed's finished FP run (init.from_run), CGA from the
# StatsQ QAT run. bench/quant/small_scale_check_bench.cc runs the same specs
# without a server.
set -eu
cli=${PENDULUM_CLI:-pendulum}
here=$(cd "$(dirname "$0")" && pwd)
model=${1:-mlp}
[ $# -gt 0 ] && shift
case "$model" in
  mlp) qat_configs="qat_lsq qat_statsq" ;;
  vit) qat_configs="qat_lsq qat_statsq qat_statsq_qkr" ;;
  *) echo "usage: $0 [mlp|vit] [--set PATH=VALUE]..." >&2; exit 2 ;;
esac
seeds="1 2 3"

submit() {  # submit FILE [args...]: prints the run id
  file=$1
  shift
  "$cli" submit "$here/$file" "$@" 2>/dev/null
}

wait_ok() {  # wait for every run id given; fail if one did not succeed
  for id in "$@"; do
    "$cli" watch "$id" >/dev/null || { echo "run $id did not succeed: pendulum show $id" >&2; exit 1; }
  done
}

fp=""
for s in $seeds; do fp="$fp $(submit "${model}_fp_pretrain.yaml" --set seed="$s" "$@")"; done
echo "FP pretraining: runs$fp" >&2
# shellcheck disable=SC2086
wait_ok $fp

qat=""
statsq=""
i=0
for f in $fp; do
  i=$((i + 1))
  s=$(echo $seeds | cut -d' ' -f$i)
  for c in $qat_configs; do
    id=$(submit "${model}_${c}.yaml" --set seed="$s" --set init.from_run="$f" "$@")
    qat="$qat $id"
    [ "$c" = qat_statsq ] && statsq="$statsq $id"
  done
done
echo "QAT: runs$qat" >&2
# shellcheck disable=SC2086
wait_ok $qat

cga=""
i=0
for q in $statsq; do
  i=$((i + 1))
  s=$(echo $seeds | cut -d' ' -f$i)
  cga="$cga $(submit "${model}_cga.yaml" --set seed="$s" --set init.from_run="$q" "$@")"
done
echo "CGA: runs$cga" >&2
# shellcheck disable=SC2086
wait_ok $cga

# shellcheck disable=SC2086
"$cli" compare $qat $cga --metric eval_acc,ofq/osc_ratio_wq,ofq/flip_rate_wq,ofq/cga_free_frac
