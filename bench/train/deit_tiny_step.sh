#!/usr/bin/env bash
# DeiT-Tiny training-step time through the real trainer (pendulum-train), for
# issue 4's "record a DeiT-Tiny W2A2 step time" on a GPU host: full precision
# vs W2A2 OFQ (StatsQ weights, 8-bit patch embedding and head, oscillation
# tracking on), each in fp32 and bf16 autocast. 224x224x3 synthetic images,
# 1000 classes, AdamW; the step time is the trainer's own step_time_ms window
# (forward, backward, optimizer, tracker; data loading overlapped), median of
# the windows after warm-up. Prints one JSON object.
#   bench/train/deit_tiny_step.sh [BUILD_DIR] [--batch 64] [--steps 80] [--device cuda|cpu]
set -euo pipefail
BUILD=${1:-build}; shift || true
BATCH=64; STEPS=80; DEVICE=cuda
while [ $# -gt 0 ]; do
  case $1 in
    --batch) BATCH=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
TRAIN=$BUILD/worker/train/pendulum-train
[ -x "$TRAIN" ] || { echo "no $TRAIN: build pendulum-train first" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
GPUS=0; [ "$DEVICE" = cuda ] && GPUS=1
EVERY=10
WARMUP=$(( STEPS / 2 ))

spec() {  # $1 name, $2 method block (may be empty)
  cat > "$WORK/$1.yaml" <<YAML
name: deit-tiny-$1
model: {arch: deit_tiny}
data:
  dataset: synthetic
  synthetic: {num_train: $(( BATCH * 8 )), num_eval: $BATCH, num_classes: 1000, shape: [3, 224, 224]}
  loader_threads: 4
  prefetch: 4
optimizer: {type: adamw, lr: 0.0005, weight_decay: 0.05}
schedule: {max_steps: $STEPS, epochs: 1000, batch_size: $BATCH, eval_every_epochs: 0}
resources: {gpus: $GPUS, cpus: 8}
logging: {metrics_every_steps: $EVERY, oscillation_every_steps: 20, snapshot_every_steps: 0}
seed: 1
$2
YAML
}
W2A2='method: {ofq: {weight_quantizer: statsq, weight_bits: 2, act_bits: 2}}'
spec fp ""
spec w2a2 "$W2A2"

# Median step time (ms) of the progress windows after warm-up.
run() {  # $1 spec name, $2 precision
  local log="$WORK/$1-$2.log"
  if ! "$TRAIN" --spec "$WORK/$1.yaml" --out "$WORK/out-$1-$2" --precision "$2" > /dev/null 2> "$log"; then
    echo "null"; tail -5 "$log" >&2; return
  fi
  awk -v warm="$WARMUP" '
    /\[pendulum-train\] step [0-9]+\// {
      split($3, s, "/"); if (s[1] + 0 <= warm) next;
      for (i = 1; i <= NF; i++) if ($i == "ms/step") print $(i - 1)
    }' "$log" | sort -g | awk '{ v[n++] = $1 }
    END { if (n == 0) print "null"; else print (n % 2) ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2 }'
}

PRECISIONS="fp32"; [ "$DEVICE" = cuda ] && PRECISIONS="fp32 bf16"
declare -A ms
for p in $PRECISIONS; do
  for m in fp w2a2; do ms[$m-$p]=$(run $m $p); done
done
DEV_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
{
  printf '{"bench":"deit_tiny_step","device":"%s","gpu":"%s","batch":%s,"steps":%s,"warmup_steps":%s,"image":224,"classes":1000' \
    "$DEVICE" "${DEV_NAME:-none}" "$BATCH" "$STEPS" "$WARMUP"
  for k in "${!ms[@]}"; do printf ',"step_ms_%s":%s' "${k//-/_}" "${ms[$k]}"; done
  for p in $PRECISIONS; do
    if [ "${ms[fp-$p]}" != null ] && [ "${ms[w2a2-$p]}" != null ]; then
      printf ',"w2a2_over_fp_%s":%s' "$p" "$(awk -v a="${ms[w2a2-$p]}" -v b="${ms[fp-$p]}" 'BEGIN{printf "%.3f", a/b}')"
    fi
  done
  echo '}'
}
