#include "worker/train/incremental/kd_loss.h"

#include <ATen/ATen.h>

namespace pendulum::train::incremental {

at::Tensor KdLoss(const at::Tensor& pred, const at::Tensor& soft, double temperature) {
  at::Tensor log_p = at::log_softmax(pred / temperature, 1);
  at::Tensor q = at::softmax(soft.detach() / temperature, 1);
  return -(q * log_p).sum() / static_cast<double>(pred.size(0));
}

IncrementalLossTerms IncrementalLoss(const at::Tensor& logits, const at::Tensor& old_logits,
                                     const at::Tensor& targets, int64_t known_classes, double temperature,
                                     bool use_kd) {
  IncrementalLossTerms t;
  t.loss_ce = at::cross_entropy_loss(logits, targets);
  if (!use_kd || known_classes <= 0 || !old_logits.defined()) {
    t.loss = t.loss_ce;
    return t;
  }
  t.kd_lambda = static_cast<double>(known_classes) / static_cast<double>(logits.size(1));
  t.loss_kd = KdLoss(logits.narrow(1, 0, known_classes), old_logits, temperature);
  t.loss = t.loss_ce * (1 - t.kd_lambda) + t.loss_kd * t.kd_lambda;
  return t;
}

}  // namespace pendulum::train::incremental
