#pragma once
// Losses of class-incremental training with KD (methods.md §2.1; PyCIL
// models/wa.py `_KD_loss` and `_update_representation`). Pure functions on
// tensors, differentiable in the current logits; any thread.

#include <cstdint>

#include <ATen/Tensor.h>

namespace pendulum::train::incremental {

// L_KD = −(1/B) Σ_b Σ_c softmax(soft_b/T)_c · log softmax(pred_b/T)_c.
// No T² factor. `soft` (the teacher's logits) gets no gradient. pred and soft
// are [B, C_o]; the caller restricts pred to the old logits.
at::Tensor KdLoss(const at::Tensor& pred, const at::Tensor& soft, double temperature);

struct IncrementalLossTerms {
  at::Tensor loss;     // what is back-propagated
  at::Tensor loss_ce;  // CE over all C classes (mean over the batch)
  at::Tensor loss_kd;  // KD on the old logits; undefined when not used
  double kd_lambda = 0;  // λ = C_o / C (0 when KD is off or there are no old classes)
};

// L = (1 − λ)·CE(logits, y) + λ·KD(logits[:, :C_o], old_logits, T), λ = C_o/C
// with C = logits.size(1). Without old classes (known_classes == 0) or with
// use_kd false it is plain CE over all classes (the replay-CE baseline).
IncrementalLossTerms IncrementalLoss(const at::Tensor& logits, const at::Tensor& old_logits,
                                     const at::Tensor& targets, int64_t known_classes, double temperature,
                                     bool use_kd);

}  // namespace pendulum::train::incremental
