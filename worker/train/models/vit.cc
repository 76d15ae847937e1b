#include "worker/train/models/vit.h"

#include <cmath>

#include <c10/util/Exception.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)
#include <torch/nn/init.h>

#include "absl/strings/str_cat.h"
#include "worker/train/models/model_registry.h"
#include "worker/train/quant/cga.h"

namespace pendulum::train {
namespace {

using quant::LsqGranularity;
using quant::LsqQuantizer;
using quant::LsqQuantizerOptions;
using quant::QuantAct;
using quant::QuantActOptions;
using quant::QuantLinear;
using quant::QuantLinearOptions;
using quant::WeightQuant;

bool ActQuant(const ViTQuantOptions& q) { return q.enabled && q.act_bits > 0; }

// A block linear: StatsQ/LSQ weights, per-token LSQ inputs with shifts.
QuantLinearOptions BlockLinear(int64_t in, int64_t out, const ViTQuantOptions& q, bool unsigned_input) {
  QuantLinearOptions o(in, out);
  if (q.enabled) o.weight_quant(q.weight_quant).weight_bits(q.weight_bits);
  if (ActQuant(q)) o.act_bits(q.act_bits).act_all_positive(unsigned_input);
  return o;
}

LsqQuantizer ActQuantizer(int bits, bool all_positive, LsqGranularity g) {
  return LsqQuantizer(LsqQuantizerOptions(bits).all_positive(all_positive).granularity(g));
}

}  // namespace

absl::StatusOr<ViTOptions> ViTOptionsFromSpec(const v1::ModelSpec& spec, const ModelInputs& inputs) {
  ViTOptions o;
  const std::string& arch = spec.arch();
  if (arch == "deit_tiny" || arch == "deit_small") {
    o.image_size = 224;
    o.patch_size = 16;
    o.in_channels = 3;
    o.depth = 12;
    o.dim = arch == "deit_tiny" ? 192 : 384;
    o.heads = arch == "deit_tiny" ? 3 : 6;
  } else if (arch == "vit_tiny28") {
    o = ViTOptions();
  } else if (arch == "vit") {
    o.image_size = inputs.image_size();
    o.in_channels = inputs.in_channels();
  } else {
    return absl::InvalidArgumentError(absl::StrCat("spec.model.arch: '", arch, "' is not a ViT"));
  }
  const v1::ViTSpec& v = spec.vit();
  if (v.image_size()) o.image_size = v.image_size();
  if (v.patch_size()) o.patch_size = v.patch_size();
  if (v.in_channels()) o.in_channels = v.in_channels();
  if (v.depth()) o.depth = v.depth();
  if (v.dim()) o.dim = v.dim();
  if (v.heads()) o.heads = v.heads();
  if (v.mlp_ratio() > 0) o.mlp_ratio = v.mlp_ratio();
  o.distill_token = v.distill_token();
  o.num_classes = spec.num_classes() > 0 ? spec.num_classes() : inputs.num_classes;
  if (inputs.example_shape.size() >= 3) {
    if (inputs.in_channels() != o.in_channels || inputs.image_size() != o.image_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec.model.vit: model expects ", o.in_channels, "x", o.image_size, "x", o.image_size,
          " images, the dataset gives ", inputs.in_channels(), "x", inputs.image_size(), "x", inputs.image_size()));
    }
  }
  if (o.image_size <= 0 || o.patch_size <= 0 || o.image_size % o.patch_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("spec.model.vit.image_size: got ", o.image_size,
                                                   ", must be a positive multiple of patch_size ", o.patch_size));
  }
  if (o.dim <= 0 || o.heads <= 0 || o.dim % o.heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.model.vit.dim: got ", o.dim, ", must be a positive multiple of heads ", o.heads));
  }
  if (o.depth <= 0 || o.in_channels <= 0 || o.num_classes <= 0) {
    return absl::InvalidArgumentError("spec.model.vit: depth, in_channels and num_classes must be positive");
  }
  return o;
}

absl::StatusOr<ViTQuantOptions> ViTQuantOptionsFromOfq(const v1::OfqMethod& ofq) {
  ViTQuantOptions q;
  q.enabled = true;
  std::vector<std::string> errors;
  const std::string& wq = ofq.weight_quantizer();
  if (wq.empty() || wq == "statsq") {
    q.weight_quant = WeightQuant::kStatsQ;
  } else if (wq == "lsq") {
    q.weight_quant = WeightQuant::kLsq;
  } else {
    errors.push_back(absl::StrCat("spec.method.ofq.weight_quantizer: got '", wq, "', allowed: statsq, lsq"));
  }
  auto bits_ok = [](uint32_t b) { return b == 2 || b == 3 || b == 4 || b == 8; };
  q.weight_bits = ofq.weight_bits() ? static_cast<int>(ofq.weight_bits()) : 2;
  if (!bits_ok(q.weight_bits)) {
    errors.push_back(absl::StrCat("spec.method.ofq.weight_bits: got ", q.weight_bits, ", allowed 2, 3, 4, 8"));
  }
  q.act_bits = static_cast<int>(ofq.act_bits());
  if (q.act_bits != 0 && !bits_ok(q.act_bits)) {
    errors.push_back(absl::StrCat("spec.method.ofq.act_bits: got ", q.act_bits, ", allowed 0, 2, 3, 4, 8"));
  }
  q.qk_reparam = ofq.qk_reparam();
  q.embed_head_bits = ofq.has_embed_head_bits() ? static_cast<int>(ofq.embed_head_bits()) : 8;
  if (q.embed_head_bits < 2 || q.embed_head_bits > 8) {
    errors.push_back(absl::StrCat("spec.method.ofq.embed_head_bits: got ", q.embed_head_bits, ", allowed 2..8"));
  }
  q.quantize_attention = ofq.has_quantize_attention() ? ofq.quantize_attention() : true;
  const std::string& fq = ofq.cga().freeze_qk();
  if (fq.empty() || fq == "none") {
    q.freeze_qk_mask = false;
  } else if (fq == "mask") {
    q.freeze_qk_mask = true;
  } else {
    errors.push_back(absl::StrCat("spec.method.ofq.cga.freeze_qk: got '", fq, "', allowed: none, mask"));
  }
  q.boundary_range = ofq.cga().has_boundary_range() ? ofq.cga().boundary_range() : 0.005;
  if (!(q.boundary_range > 0 && q.boundary_range < 0.5)) {
    errors.push_back(absl::StrCat("spec.method.ofq.cga.boundary_range: got ", q.boundary_range,
                                  ", must be in (0, 0.5)"));
  }
  if (!errors.empty()) {
    std::string msg;
    for (const auto& e : errors) absl::StrAppend(&msg, msg.empty() ? "" : "; ", e);
    return absl::InvalidArgumentError(msg);
  }
  return q;
}

// ---------------------------------------------------------------- QkProduct

QkProductImpl::QkProductImpl(int64_t dim_, int64_t heads_, int bits_, bool mask_frozen_, double br)
    : dim(dim_), heads(heads_), bits(bits_), mask_frozen(mask_frozen_), boundary_range(br) {
  reset();
}

void QkProductImpl::reset() {
  quant = register_module("quant", quant::StatsQuantizer(quant::StatsQuantizerOptions(bits)));
}

torch::Tensor QkProductImpl::forward(const torch::Tensor& wq, const torch::Tensor& wk) {
  const int64_t d = dim / heads;
  // W_qk^h = (W_q^h)ᵀ W_k^h, in float, every step (§1.3).
  torch::Tensor qk = torch::matmul(wq.reshape({heads, d, dim}).transpose(-2, -1), wk.reshape({heads, d, dim}));
  qk = qk.reshape({heads * dim, dim});
  torch::Tensor out;
  if (mask_frozen && cga_active && is_training()) {
    // freeze_qk = mask [CHOICE]: only entries near a threshold pass gradient.
    quant::StatsQResult probe = quant::StatsQuantize(qk.detach(), bits);
    torch::Tensor free = quant::CgaFreeMaskFromLatent(probe.latent, boundary_range).to(qk.scalar_type());
    out = quant->ForwardMasked(qk, free);
  } else {
    out = quant->forward(qk);
  }
  return out.reshape({heads, dim, dim});
}

bool QkProductImpl::has_quant_view() const { return quant->last_codes().defined(); }

quant::QuantWeightView QkProductImpl::quant_view() const {
  quant::QuantWeightView v;
  v.kind = quant::WeightQuantKind::kStatsQ;
  v.bits = bits;
  v.codes = quant->last_codes();
  v.latent = quant->last_latent();
  v.scale = quant->last_scale();
  v.code_min = -(int64_t{1} << (bits - 1));
  v.code_max = (int64_t{1} << (bits - 1)) - 1;
  v.cga_target = false;  // W_q, W_k are not frozen by CGA (official code)
  return v;
}

// ------------------------------------------------------------- ViTAttention

ViTAttentionImpl::ViTAttentionImpl(int64_t dim_, int64_t heads_, const ViTQuantOptions& q_)
    : dim(dim_), heads(heads_), q(q_) {
  reset();
}

void ViTAttentionImpl::reset() {
  const bool act = ActQuant(q);
  const bool qkr = q.enabled && q.qk_reparam;
  if (!qkr) {
    qkv = register_module("qkv", QuantLinear(BlockLinear(dim, 3 * dim, q, false)));
    if (act) {
      move_qkv_b4 = register_parameter("move_qkv_b4", torch::zeros({3 * dim}));
      move_q_aft = register_parameter("move_q_aft", torch::zeros({dim}));
      move_k_aft = register_parameter("move_k_aft", torch::zeros({dim}));
      move_v_aft = register_parameter("move_v_aft", torch::zeros({dim}));
      quant_q = register_module("quant_q", ActQuantizer(q.act_bits, false, LsqGranularity::kPerToken));
      quant_k = register_module("quant_k", ActQuantizer(q.act_bits, false, LsqGranularity::kPerToken));
      quant_v = register_module("quant_v", ActQuantizer(q.act_bits, false, LsqGranularity::kPerLastDim));
    }
  } else {
    if (act) {
      quant_x = register_module("quant_x", QuantAct(QuantActOptions(dim, q.act_bits)));
    }
    q_lin = register_module("q", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(false)));
    k_lin = register_module("k", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(false)));
    // v reads the already quantized x̂: no input quantizer of its own.
    QuantLinearOptions vo(dim, dim);
    vo.weight_quant(q.weight_quant).weight_bits(q.weight_bits);
    v = register_module("v", QuantLinear(vo));
    qk = register_module("qk", QkProduct(dim, heads, q.weight_bits, q.freeze_qk_mask, q.boundary_range));
    if (act) {
      move_qkx_b4 = register_parameter("move_qkx_b4", torch::zeros({heads * dim}));
      move_qkx_aft = register_parameter("move_qkx_aft", torch::zeros({heads * dim}));
      move_v_b4 = register_parameter("move_v_b4", torch::zeros({dim}));
      move_v_aft = register_parameter("move_v_aft", torch::zeros({dim}));
      quant_qkx = register_module("quant_qkx", ActQuantizer(q.act_bits, false, LsqGranularity::kPerToken));
      quant_v = register_module("quant_v", ActQuantizer(q.act_bits, false, LsqGranularity::kPerLastDim));
    }
  }
  if (act && q.quantize_attention) {
    quant_softmax = register_module("quant_softmax", ActQuantizer(q.act_bits, true, LsqGranularity::kPerToken));
  }
  proj = register_module("proj", QuantLinear(BlockLinear(dim, dim, q, false)));
}

torch::Tensor ViTAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2), H = heads, d = C / heads;
  // The attention scale keeps d = C/H under QKR too (trap 3).
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const bool act = ActQuant(q);
  torch::Tensor attn, vh;
  if (!qk) {
    torch::Tensor t = qkv->forward(x);
    if (act) t = t + move_qkv_b4;
    t = t.reshape({B, N, 3, H, d}).permute({2, 0, 3, 1, 4});
    torch::Tensor qh = t[0], kh = t[1];
    vh = t[2];
    if (act) {
      qh = quant_q->forward(qh);  // one scale per token
      kh = quant_k->forward(kh);
      torch::Tensor vf = quant_v->forward(vh.permute({0, 2, 1, 3}).reshape({B, N, C}));  // per channel
      auto heads_of = [&](const torch::Tensor& f) { return f.reshape({B, N, H, d}).permute({0, 2, 1, 3}); };
      auto flat = [&](const torch::Tensor& h) { return h.permute({0, 2, 1, 3}).reshape({B, N, C}); };
      qh = heads_of(flat(qh) + move_q_aft);
      kh = heads_of(flat(kh) + move_k_aft);
      vh = heads_of(vf + move_v_aft);
    }
    attn = torch::matmul(qh, kh.transpose(-2, -1)) * scale;
  } else {
    torch::Tensor xq = quant_x ? quant_x->forward(x) : x;
    torch::Tensor vo = v->forward(xq);
    if (act) vo = quant_v->forward(vo + move_v_b4) + move_v_aft;
    vh = vo.reshape({B, N, H, d}).permute({0, 2, 1, 3});
    torch::Tensor wqk = qk->forward(q_lin->weight, k_lin->weight);  // [H, C, C]
    // P^h = Ŵ_qk^h x̂ᵀ → [B, H, C, N] → per (token, head) row quantization.
    torch::Tensor p = torch::einsum("hdc,bcn->bhdn", {wqk, xq.transpose(-2, -1)});
    if (act) {
      p = p.permute({0, 3, 1, 2}).reshape({B, N, H * C}) + move_qkx_b4;
      p = quant_qkx->forward(p.reshape({B, N * H, C})).reshape({B, N, H * C}) + move_qkx_aft;
      p = p.reshape({B, N, H, C}).permute({0, 2, 3, 1});
    }
    attn = torch::einsum("bnc,bhcm->bhnm", {xq, p}) * scale;
  }
  attn = attn.softmax(-1);
  if (quant_softmax) attn = quant_softmax->forward(attn);  // unsigned (trap 7)
  torch::Tensor out = torch::matmul(attn, vh).transpose(1, 2).reshape({B, N, C});
  return proj->forward(out);
}

// ----------------------------------------------------------------- ViTBlock

ViTBlockImpl::ViTBlockImpl(int64_t dim_, int64_t heads_, double mlp_ratio_, const ViTQuantOptions& q_)
    : dim(dim_), heads(heads_), mlp_ratio(mlp_ratio_), q(q_) {
  reset();
}

void ViTBlockImpl::reset() {
  const int64_t hidden = static_cast<int64_t>(dim * mlp_ratio);
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  attn = register_module("attn", ViTAttention(dim, heads, q));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  fc1 = register_module("fc1", QuantLinear(BlockLinear(dim, hidden, q, false)));
  // fc2's input follows GELU: unsigned (§1.1).
  fc2 = register_module("fc2", QuantLinear(BlockLinear(hidden, dim, q, true)));
}

torch::Tensor ViTBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = x + attn->forward(norm1->forward(x));
  return y + fc2->forward(torch::gelu(fc1->forward(norm2->forward(y))));
}

// ---------------------------------------------------------------------- ViT

ViT::ViT(const ViTOptions& o, const ViTQuantOptions& q, const std::string& arch)
    : Model(arch), options_(o), quant_(q) {
  TORCH_CHECK(o.dim % o.heads == 0, "ViT dim ", o.dim, " not divisible by heads ", o.heads);
  TORCH_CHECK(o.image_size % o.patch_size == 0, "ViT image_size ", o.image_size, " not divisible by patch ",
              o.patch_size);
  const bool act = ActQuant(q);
  patch_embed_ = register_module(
      "patch_embed", quant::QuantConv2d(quant::QuantConv2dOptions(o.in_channels, o.dim, o.patch_size)
                                            .weight_bits(q.enabled ? q.embed_head_bits : 0)
                                            .act_bits(act ? q.embed_head_bits : 0)));
  cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, o.dim}));
  if (o.distill_token) dist_token_ = register_parameter("dist_token", torch::zeros({1, 1, o.dim}));
  pos_embed_ = register_parameter("pos_embed", torch::zeros({1, o.num_tokens(), o.dim}));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i) blocks_->push_back(ViTBlock(o.dim, o.heads, o.mlp_ratio, q));
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim}).eps(1e-6)));
  auto head_options = [&]() {
    QuantLinearOptions h(o.dim, o.num_classes);
    h.cga_target(false);
    if (q.enabled) h.weight_quant(WeightQuant::kLsq).weight_bits(q.embed_head_bits);
    if (act) h.act_bits(q.embed_head_bits).act_granularity(LsqGranularity::kPerTensor);
    return h;
  };
  head_ = register_module("head", QuantLinear(head_options()));
  if (o.distill_token) head_dist_ = register_module("head_dist", QuantLinear(head_options()));

  // timm/DeiT init: N(0, 0.02) for tokens, position embedding and linear
  // weights, zero biases; LayerNorm (1, 0).
  torch::NoGradGuard no_grad;
  for (auto& p : named_parameters(/*recurse=*/true)) {
    const std::string& name = p.key();
    torch::Tensor t = p.value();
    if (name.find("norm") != std::string::npos || name.find("move_") != std::string::npos) continue;
    if (name == "cls_token" || name == "dist_token" || name == "pos_embed" ||
        (t.dim() == 2 && name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0)) {
      torch::nn::init::normal_(t, 0.0, 0.02);
    } else if (t.dim() == 1 && name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      t.zero_();
    }
  }
}

ModelOutput ViT::Forward(const torch::Tensor& x_in) {
  torch::Tensor x = patch_embed_->forward(x_in).flatten(2).transpose(1, 2);  // [B, P, C]
  const int64_t B = x.size(0);
  std::vector<torch::Tensor> tokens{cls_token_.expand({B, -1, -1})};
  if (dist_token_.defined()) tokens.push_back(dist_token_.expand({B, -1, -1}));
  tokens.push_back(x);
  x = torch::cat(tokens, 1) + pos_embed_;
  for (const auto& block : *blocks_) x = block->as<ViTBlock>()->forward(x);
  x = norm_->forward(x);
  ModelOutput out;
  out.logits = head_->forward(x.select(1, 0));
  if (head_dist_) {
    torch::Tensor dist = head_dist_->forward(x.select(1, 1));
    out.extra["dist_logits"] = dist;
    if (!is_training()) out.logits = (out.logits + dist) / 2;
  }
  return out;
}

absl::StatusOr<std::shared_ptr<ViT>> MakeViT(const v1::ModelSpec& spec, const ModelInputs& inputs,
                                             const v1::OfqMethod* ofq) {
  absl::StatusOr<ViTOptions> o = ViTOptionsFromSpec(spec, inputs);
  if (!o.ok()) return o.status();
  ViTQuantOptions q;
  if (ofq != nullptr) {
    absl::StatusOr<ViTQuantOptions> qo = ViTQuantOptionsFromOfq(*ofq);
    if (!qo.ok()) return qo.status();
    q = *qo;
  }
  try {
    return std::make_shared<ViT>(*o, q, spec.arch());
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("building ViT: ", e.what_without_backtrace()));
  }
}

absl::StatusOr<std::vector<std::string>> LoadFullPrecisionViT(const torch::nn::Module& fp, ViT& target) {
  std::vector<std::string> copied;
  try {
    torch::NoGradGuard no_grad;
    auto src = fp.named_parameters(true);
    const int64_t C = target.options().dim;
    for (auto& p : target.named_parameters(true)) {
      const std::string& name = p.key();
      torch::Tensor dst = p.value();
      if (const torch::Tensor* s = src.find(name)) {
        if (s->sizes() != dst.sizes()) {
          return absl::InvalidArgumentError(absl::StrCat("init: parameter ", name, " has shape ",
                                                         c10::str(s->sizes()), ", target ", c10::str(dst.sizes())));
        }
        dst.copy_(*s);
        copied.push_back(name);
        continue;
      }
      // QKR: split the pretrained qkv (q and k biases are discarded, trap 3).
      auto ends_with = [&](const std::string& suffix) {
        return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
      };
      int part = -1;
      std::string suffix;
      if (ends_with("attn.q.weight")) part = 0, suffix = "q.weight";
      if (ends_with("attn.k.weight")) part = 1, suffix = "k.weight";
      if (ends_with("attn.v.weight")) part = 2, suffix = "v.weight";
      if (ends_with("attn.v.bias")) part = 2, suffix = "v.bias";
      if (part < 0) continue;
      const std::string base = name.substr(0, name.size() - suffix.size());
      const bool is_bias = suffix == "v.bias";
      const torch::Tensor* s = src.find(base + (is_bias ? "qkv.bias" : "qkv.weight"));
      if (s == nullptr) continue;
      dst.copy_(s->narrow(0, part * C, C));
      copied.push_back(name);
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("init from full-precision ViT: ", e.what_without_backtrace()));
  }
  return copied;
}

namespace {

absl::StatusOr<ModelPtr> BuildFullPrecisionViT(const v1::ModelSpec& spec, const ModelInputs& inputs) {
  absl::StatusOr<std::shared_ptr<ViT>> m = MakeViT(spec, inputs, nullptr);
  if (!m.ok()) return m.status();
  return ModelPtr(*m);
}

}  // namespace

PENDULUM_REGISTER_MODEL(vit, BuildFullPrecisionViT);
PENDULUM_REGISTER_MODEL(deit_tiny, BuildFullPrecisionViT);
PENDULUM_REGISTER_MODEL(deit_small, BuildFullPrecisionViT);
PENDULUM_REGISTER_MODEL(vit_tiny28, BuildFullPrecisionViT);

}  // namespace pendulum::train
