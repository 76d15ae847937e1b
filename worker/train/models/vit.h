#pragma once
// Vision transformer family (model.arch vit, deit_tiny, deit_small, vit_tiny28)
// with full-precision and OFQ-quantized variants from one definition
// (methods.md §1.1–1.3): the same modules and parameter names, with the
// quantizers switched on by ViTQuantOptions. LayerNorm stays in float.
// Quantized: block linears with StatsQ or LSQ weights and per-token LSQ
// inputs with learnable shifts; q/k/v and attention-probability quantizers;
// 8-bit patch embedding and heads; optional QKR attention (§1.3).
// Not thread-safe (a torch module); owned through ModelPtr.

#include <memory>
#include <string>
#include <vector>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "absl/status/statusor.h"
#include "pendulum/v1/method_ofq.pb.h"
#include "pendulum/v1/run_spec.pb.h"
#include "worker/train/models/model.h"
#include "worker/train/quant/lsq_quantizer.h"
#include "worker/train/quant/quant_act.h"
#include "worker/train/quant/quant_linear.h"
#include "worker/train/quant/quant_weight_view.h"
#include "worker/train/quant/statsq_quantizer.h"

namespace pendulum::train {

struct ViTOptions {
  int64_t image_size = 28;
  int64_t patch_size = 7;
  int64_t in_channels = 1;
  int64_t depth = 2;
  int64_t dim = 64;
  int64_t heads = 4;
  double mlp_ratio = 4.0;
  bool distill_token = false;
  int64_t num_classes = 10;
  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
  int64_t num_tokens() const { return num_patches() + 1 + (distill_token ? 1 : 0); }
};

// Presets: "deit_tiny" (224/16, 12 blocks, 192 wide, 3 heads), "deit_small"
// (384 wide, 6 heads), "vit_tiny28" (28/7 → 16 patches, dim 64, 4 heads,
// 2 blocks). Fields set in spec.vit override the preset.
absl::StatusOr<ViTOptions> ViTOptionsFromSpec(const v1::ModelSpec& spec, const ModelInputs& inputs);

struct ViTQuantOptions {
  bool enabled = false;  // false: full precision everywhere
  quant::WeightQuant weight_quant = quant::WeightQuant::kStatsQ;
  int weight_bits = 2;
  int act_bits = 2;  // 0 = full-precision activations
  bool qk_reparam = false;
  int embed_head_bits = 8;
  bool quantize_attention = true;
  // CGA freeze_qk = mask: the STE gradient of W_qk is multiplied by free(W_qk).
  bool freeze_qk_mask = false;
  double boundary_range = 0.005;
};

// From the OFQ method message; INVALID_ARGUMENT names bad fields
// (spec.method.ofq.weight_bits: got 5, allowed 2, 3, 4, 8).
absl::StatusOr<ViTQuantOptions> ViTQuantOptionsFromOfq(const v1::OfqMethod& ofq);

// W_qk = stack_h (W_q^h)ᵀ W_k^h as (H·C) × C, StatsQ'd row-wise every step (§1.3).
class QkProductImpl : public torch::nn::Cloneable<QkProductImpl>, public quant::QuantWeightSource {
 public:
  QkProductImpl(int64_t dim, int64_t heads, int bits, bool mask_frozen, double boundary_range);
  void reset() override;
  // Returns the quantized W_qk as [H, C, C].
  torch::Tensor forward(const torch::Tensor& wq, const torch::Tensor& wk);
  bool has_quant_view() const override;
  quant::QuantWeightView quant_view() const override;
  // Set by the OFQ method during its CGA phase (only matters with mask_frozen).
  void set_cga_active(bool active) { cga_active = active; }

  int64_t dim, heads;
  int bits;
  bool cga_active = false;
  bool mask_frozen;
  double boundary_range;
  quant::StatsQuantizer quant{nullptr};
};
TORCH_MODULE(QkProduct);

class ViTAttentionImpl : public torch::nn::Cloneable<ViTAttentionImpl> {
 public:
  ViTAttentionImpl(int64_t dim, int64_t heads, const ViTQuantOptions& q);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  int64_t dim, heads;
  ViTQuantOptions q;
  // Standard path (FP, or quantized without QKR).
  quant::QuantLinear qkv{nullptr};
  torch::Tensor move_qkv_b4, move_q_aft, move_k_aft, move_v_aft;
  quant::LsqQuantizer quant_q{nullptr}, quant_k{nullptr}, quant_v{nullptr};
  // QKR path.
  quant::QuantAct quant_x{nullptr};
  torch::nn::Linear q_lin{nullptr}, k_lin{nullptr};  // "q", "k": no bias (trap 3)
  quant::QuantLinear v{nullptr};
  QkProduct qk{nullptr};
  torch::Tensor move_qkx_b4, move_qkx_aft, move_v_b4;
  quant::LsqQuantizer quant_qkx{nullptr};
  // Both paths.
  quant::LsqQuantizer quant_softmax{nullptr};
  quant::QuantLinear proj{nullptr};
};
TORCH_MODULE(ViTAttention);

class ViTBlockImpl : public torch::nn::Cloneable<ViTBlockImpl> {
 public:
  ViTBlockImpl(int64_t dim, int64_t heads, double mlp_ratio, const ViTQuantOptions& q);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  int64_t dim, heads;
  double mlp_ratio;
  ViTQuantOptions q;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  ViTAttention attn{nullptr};
  quant::QuantLinear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(ViTBlock);

class ViT : public Model {
 public:
  ViT(const ViTOptions& options, const ViTQuantOptions& quant, const std::string& arch = "vit");
  // logits = head(cls); with a distillation token, extra["dist_logits"] =
  // head_dist(dist) and, in eval mode, logits = (head + head_dist) / 2 (DeiT).
  ModelOutput Forward(const torch::Tensor& x) override;

  const ViTOptions& options() const { return options_; }
  const ViTQuantOptions& quant_options() const { return quant_; }

 private:
  ViTOptions options_;
  ViTQuantOptions quant_;
  quant::QuantConv2d patch_embed_{nullptr};
  torch::Tensor cls_token_, dist_token_, pos_embed_;
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  quant::QuantLinear head_{nullptr}, head_dist_{nullptr};
};

// Builds a ViT from the spec; quantized when ofq is non-null. Never throws.
absl::StatusOr<std::shared_ptr<ViT>> MakeViT(const v1::ModelSpec& spec, const ModelInputs& inputs,
                                             const v1::OfqMethod* ofq);

// Copies a full-precision ViT's weights into a (quantized) ViT of the same
// shape by parameter name; under QKR, qkv.weight is split into q/k/v and the
// q and k biases are discarded (trap 3). Quantizer scales and shifts are not
// touched. Returns the names copied.
absl::StatusOr<std::vector<std::string>> LoadFullPrecisionViT(const torch::nn::Module& fp, ViT& target);

}  // namespace pendulum::train
