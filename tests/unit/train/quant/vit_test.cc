// ViT family (full precision and OFQ-quantized from one definition), QKR,
// the oscillation monitor on a real model, and trap 9 (scales created by the
// dummy forward, before the optimizer).

#include <set>

#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>

#include "gtest/gtest.h"
#include "worker/train/models/vit.h"
#include "worker/train/quant/cga.h"
#include "worker/train/quant/oscillation_monitor.h"

namespace pendulum::train {
namespace {

ModelInputs FashionInputs() {
  ModelInputs in;
  in.num_classes = 10;
  in.example_shape = {1, 28, 28};
  return in;
}

v1::ModelSpec Tiny28() {
  v1::ModelSpec spec;
  spec.set_arch("vit_tiny28");
  return spec;
}

v1::OfqMethod Ofq(const std::string& wq, bool qkr) {
  v1::OfqMethod ofq;
  ofq.set_weight_quantizer(wq);
  ofq.set_weight_bits(2);
  ofq.set_act_bits(2);
  ofq.set_qk_reparam(qkr);
  return ofq;
}

TEST(ViTTest, Tiny28PresetShapes) {
  auto o = ViTOptionsFromSpec(Tiny28(), FashionInputs());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->num_patches(), 16);
  EXPECT_EQ(o->dim, 64);
  EXPECT_EQ(o->heads, 4);
  EXPECT_EQ(o->depth, 2);
  auto m = MakeViT(Tiny28(), FashionInputs(), nullptr);
  ASSERT_TRUE(m.ok()) << m.status();
  ModelOutput out = (*m)->Forward(at::randn({3, 1, 28, 28}));
  EXPECT_EQ(out.logits.sizes(), (at::IntArrayRef{3, 10}));
}

TEST(ViTTest, DeitPresetsAndDistillToken) {
  v1::ModelSpec spec;
  spec.set_arch("deit_small");
  ModelInputs in;
  in.num_classes = 1000;
  auto o = ViTOptionsFromSpec(spec, in);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->dim, 384);
  EXPECT_EQ(o->heads, 6);
  EXPECT_EQ(o->depth, 12);
  EXPECT_EQ(o->num_patches(), 196);
  v1::ModelSpec small = Tiny28();
  small.mutable_vit()->set_distill_token(true);
  auto m = MakeViT(small, FashionInputs(), nullptr);
  ASSERT_TRUE(m.ok());
  ModelOutput out = (*m)->Forward(at::randn({2, 1, 28, 28}));
  ASSERT_TRUE(out.extra.count("dist_logits"));
}

TEST(ViTTest, BadSpecNamesTheField) {
  v1::ModelSpec spec = Tiny28();
  spec.mutable_vit()->set_dim(65);
  auto m = MakeViT(spec, FashionInputs(), nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(std::string(m.status().message()).find("spec.model.vit.dim"), std::string::npos);
  v1::OfqMethod ofq = Ofq("statsq", false);
  ofq.set_weight_bits(5);
  auto q = MakeViT(Tiny28(), FashionInputs(), &ofq);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(std::string(q.status().message()).find("spec.method.ofq.weight_bits"), std::string::npos);
}

// Trap 9: the LSQ scales exist only after the first forward, so the optimizer
// must be built after a dummy forward on a training batch.
TEST(ViTTest, DummyForwardCreatesActivationScales) {
  v1::OfqMethod ofq = Ofq("statsq", false);
  auto m = MakeViT(Tiny28(), FashionInputs(), &ofq);
  ASSERT_TRUE(m.ok()) << m.status();
  const size_t before = (*m)->parameters().size();
  (*m)->train();
  (*m)->Forward(at::randn({4, 1, 28, 28}));
  const size_t after = (*m)->parameters().size();
  EXPECT_GT(after, before);
  std::set<std::string> names;
  for (const auto& p : (*m)->named_parameters()) names.insert(p.key());
  EXPECT_TRUE(names.count("blocks.0.attn.quant_softmax.s"));  // attention probabilities (trap 7)
  EXPECT_TRUE(names.count("blocks.0.fc2.act.quant.s"));
  EXPECT_TRUE(names.count("head.wq.s"));  // 8-bit LSQ head weights
  EXPECT_TRUE(names.count("patch_embed.wq.s"));
  // Per-token activation scales: one per token (17 = 16 patches + cls).
  EXPECT_EQ((*m)->named_parameters()["blocks.0.fc1.act.quant.s"].size(0), 17);
}

TEST(ViTTest, QuantizedTrainsAndEveryParameterGetsAGradient) {
  for (const std::string wq : {"statsq", "lsq"}) {
    for (bool qkr : {false, true}) {
      if (wq == "lsq" && qkr) continue;
      SCOPED_TRACE(wq + (qkr ? "+qkr" : ""));
      at::manual_seed(0);
      v1::OfqMethod ofq = Ofq(wq, qkr);
      auto m = MakeViT(Tiny28(), FashionInputs(), &ofq);
      ASSERT_TRUE(m.ok()) << m.status();
      (*m)->train();
      at::Tensor x = at::randn({8, 1, 28, 28});
      at::Tensor y = at::randint(0, 10, {8});
      (*m)->Forward(x);  // dummy forward
      at::Tensor loss = at::cross_entropy_loss((*m)->Forward(x).logits, y);
      loss.backward();
      for (const auto& p : (*m)->named_parameters()) {
        ASSERT_TRUE(p.value().grad().defined()) << p.key();
      }
    }
  }
}

TEST(ViTTest, QkrDiscardsQkBiasesAndLoadsFromFullPrecision) {
  at::manual_seed(1);
  auto fp = MakeViT(Tiny28(), FashionInputs(), nullptr);
  ASSERT_TRUE(fp.ok());
  v1::OfqMethod ofq = Ofq("statsq", true);
  auto q = MakeViT(Tiny28(), FashionInputs(), &ofq);
  ASSERT_TRUE(q.ok());
  auto names = (*q)->named_parameters();
  EXPECT_EQ(names.find("blocks.0.attn.q.bias"), nullptr);  // trap 3
  EXPECT_EQ(names.find("blocks.0.attn.k.bias"), nullptr);
  ASSERT_NE(names.find("blocks.0.attn.v.bias"), nullptr);
  auto copied = LoadFullPrecisionViT(**fp, **q);
  ASSERT_TRUE(copied.ok()) << copied.status();
  at::Tensor qkv = (*fp)->named_parameters()["blocks.1.attn.qkv.weight"];
  EXPECT_TRUE(names["blocks.1.attn.k.weight"].equal(qkv.narrow(0, 64, 64)));
  EXPECT_TRUE(names["blocks.1.attn.v.bias"].equal((*fp)->named_parameters()["blocks.1.attn.qkv.bias"].narrow(0, 128, 64)));
  EXPECT_TRUE(names["blocks.0.fc1.weight"].equal((*fp)->named_parameters()["blocks.0.fc1.weight"]));
  // W_qk is tracked as an (H·C) × C StatsQ weight.
  (*q)->train();
  (*q)->Forward(at::randn({2, 1, 28, 28}));
  auto qk = (*q)->named_modules()["blocks.0.attn.qk"];
  auto* src = dynamic_cast<quant::QuantWeightSource*>(qk.get());
  ASSERT_NE(src, nullptr);
  EXPECT_EQ(src->quant_view().codes.sizes(), (at::IntArrayRef{4 * 64, 64}));
}

TEST(ViTTest, MonitorAndCgaOnTinyViT) {
  at::manual_seed(2);
  v1::OfqMethod ofq = Ofq("statsq", false);
  auto made = MakeViT(Tiny28(), FashionInputs(), &ofq);
  ASSERT_TRUE(made.ok());
  std::shared_ptr<ViT> m = *made;
  m->train();
  at::Tensor x = at::randn({8, 1, 28, 28});
  at::Tensor y = at::randint(0, 10, {8});
  m->Forward(x);
  quant::OscillationMonitor monitor;
  monitor.Attach(m);
  std::vector<quant::CgaTarget> targets;
  for (const auto& item : m->named_modules("", false)) {
    auto* src = dynamic_cast<quant::QuantWeightSource*>(item.value().get());
    if (src && src->has_quant_view() && src->quant_view().cga_target) {
      targets.push_back({item.key(), src->quant_view().param, 2});
    }
  }
  EXPECT_EQ(targets.size(), 8u);  // 2 blocks × (qkv, proj, fc1, fc2)
  quant::ConfidenceGuidedAnnealing cga(targets, 0.005);
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-3));
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    at::cross_entropy_loss(m->Forward(x).logits, y).backward();
    monitor.Step(step);
    cga.MaskGradients();
    opt.step();
    cga.RestoreFrozen();
  }
  pendulum::v1::OscillationStats stats = monitor.Stats(2, &cga);
  std::set<std::string> layers;
  for (const auto& l : stats.layers()) layers.insert(l.layer());
  EXPECT_TRUE(layers.count("blocks.0.attn.qkv"));
  EXPECT_TRUE(layers.count("blocks.1.fc2"));
  EXPECT_TRUE(layers.count("head"));
  EXPECT_TRUE(layers.count("model"));
  for (const auto& l : stats.layers()) {
    if (l.layer() != "blocks.0.fc1") continue;
    for (const char* key : {"osc_ratio_0.005", "osc_ratio_0.02", "flip_rate", "oscillations", "low_conf_0.005",
                            "low_conf_0.01", "low_conf_0.05", "scale_mean", "scale_std", "cga_free_frac"}) {
      EXPECT_TRUE(l.values().count(key)) << key;
    }
    EXPECT_LT(l.values().at("cga_free_frac"), 0.1);
    EXPECT_LE(l.values().at("low_conf_0.005"), l.values().at("low_conf_0.05"));
  }
  auto snaps = monitor.Snapshots(2, 5);
  EXPECT_EQ(snaps.size(), monitor.layer_names().size());
  EXPECT_GT(monitor.tracked_weights(), 60000);
}

}  // namespace
}  // namespace pendulum::train
