#include "spec/run_spec_validator.h"

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spec/vit_presets.h"
#include "spec/yaml_message_writer.h"

namespace pendulum::spec {
namespace {

// The allowed values of the string "enums" (kept as strings in the proto so a
// spec stays readable; the proto comments list the same sets).
const std::vector<std::string> kArchs = {"mlp",      "cnn_small", "vit",   "deit_tiny",
                                         "deit_small", "vit_tiny28", "resnet32", "resnet18",
                                         "wrn",      "vgg16",     "block_mlp"};
const std::vector<std::string> kDatasets = {"fashion_mnist", "cifar10", "cifar100",
                                            "imagenet_folder", "synthetic"};
const std::vector<std::string> kOptimizers = {"sgd", "adam", "adamw", "adamp", "sgdp"};

// Collects "PATH: got X, must be Y" lines.
class Checker {
 public:
  void Add(const std::string& path, const std::string& what) {
    errors_.push_back(absl::StrCat(path, ": ", what));
  }

  static std::string Num(double v) { return FormatDoubleShort(v); }
  static std::string FormatDoubleShort(double v) {
    std::string s = FormatDouble(v);
    if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
    return s;
  }

  // lo <= v <= hi for integers.
  void IntRange(const std::string& path, int64_t v, int64_t lo, int64_t hi, const char* note = "") {
    if (v < lo || v > hi) Add(path, absl::StrCat("got ", v, ", must be in ", lo, "..", hi, note));
  }
  void UIntMax(const std::string& path, uint64_t v, uint64_t hi, const char* note = "") {
    if (v > hi) Add(path, absl::StrCat("got ", v, ", must be in 0..", hi, note));
  }
  // Zero means "use the default"; otherwise lo..hi.
  void UIntZeroOr(const std::string& path, uint64_t v, uint64_t lo, uint64_t hi) {
    if (v != 0 && (v < lo || v > hi)) {
      Add(path, absl::StrCat("got ", v, ", must be 0 (default) or in ", lo, "..", hi));
    }
  }
  // Doubles: bounds with explicit openness, e.g. Real(p, v, 0, false, 1, true) = 0 < v <= 1.
  void Real(const std::string& path, double v, double lo, bool lo_incl, double hi, bool hi_incl) {
    const bool ok = std::isfinite(v) && (lo_incl ? v >= lo : v > lo) && (hi_incl ? v <= hi : v < hi);
    if (!ok) {
      Add(path, absl::StrCat("got ", Num(v), ", must be ", lo_incl ? ">= " : "> ", Num(lo),
                             " and ", hi_incl ? "<= " : "< ", Num(hi)));
    }
  }
  void AtLeast(const std::string& path, double v, double lo, bool incl) {
    if (!std::isfinite(v) || (incl ? v < lo : v <= lo)) {
      Add(path, absl::StrCat("got ", Num(v), ", must be ", incl ? ">= " : "> ", Num(lo)));
    }
  }
  // String enum; empty allowed when `empty_ok` (the proto default).
  void OneOf(const std::string& path, const std::string& v, const std::vector<std::string>& allowed,
             bool empty_ok) {
    if (v.empty() && empty_ok) return;
    for (const auto& a : allowed) {
      if (v == a) return;
    }
    if (v.empty()) {
      Add(path, absl::StrCat("required; one of: ", absl::StrJoin(allowed, ", ")));
    } else {
      Add(path, absl::StrCat("got '", v, "', must be one of: ", absl::StrJoin(allowed, ", ")));
    }
  }
  void Bits(const std::string& path, uint32_t v, bool zero_ok) {
    if ((zero_ok && v == 0) || v == 2 || v == 3 || v == 4 || v == 8) return;
    Add(path, absl::StrCat("got ", v, ", must be one of ", zero_ok ? "0 (full precision), " : "",
                           "2, 3, 4, 8"));
  }

  std::vector<std::string>& errors() { return errors_; }

 private:
  std::vector<std::string> errors_;
};

bool ValidKeyChars(const std::string& key, bool allow_upper_slash) {
  for (char c : key) {
    const unsigned char u = static_cast<unsigned char>(c);
    const bool ok = absl::ascii_islower(u) || absl::ascii_isdigit(u) || c == '_' || c == '.' ||
                    c == '-' || (allow_upper_slash && (absl::ascii_isupper(u) || c == '/'));
    if (!ok) return false;
  }
  return true;
}

// Classes of a dataset, 0 when unknown (imagenet_folder reads its folder).
uint32_t DatasetClasses(const v1::DataSpec& data) {
  if (data.dataset() == "fashion_mnist" || data.dataset() == "cifar10") return 10;
  if (data.dataset() == "cifar100") return 100;
  if (data.dataset() == "synthetic") {
    return data.synthetic().num_classes() != 0 ? data.synthetic().num_classes() : 10;
  }
  return 0;
}

void CheckModel(const v1::RunSpec& spec, Checker* c) {
  const std::string p = "spec.model";
  if (!spec.has_model()) {
    c->Add(p, absl::StrCat("required (at least model.arch: one of ", absl::StrJoin(kArchs, ", "), ")"));
    return;
  }
  const v1::ModelSpec& m = spec.model();
  c->OneOf(p + ".arch", m.arch(), kArchs, false);
  c->UIntMax(p + ".num_classes", m.num_classes(), 100000, " (0 = from the dataset)");
  if (m.hidden_size() > 64) c->Add(p + ".hidden", absl::StrCat("has ", m.hidden_size(), " layers, at most 64"));
  for (int i = 0; i < m.hidden_size(); ++i) {
    if (m.hidden(i) < 1 || m.hidden(i) > 65536) {
      c->Add(absl::StrCat(p, ".hidden[", i, "]"), absl::StrCat("got ", m.hidden(i), ", must be in 1..65536"));
    }
  }
  c->Real(p + ".dropout", m.dropout(), 0, true, 1, false);
  c->OneOf(p + ".activation", m.activation(), {"relu", "gelu"}, true);
  if (m.wrn_depth() != 0 || m.wrn_width() != 0) {
    if (m.arch() != "wrn") {
      c->Add(m.wrn_depth() != 0 ? p + ".wrn_depth" : p + ".wrn_width",
             absl::StrCat("only used by arch wrn, not '", m.arch(), "'"));
    }
    if (m.wrn_depth() != 0 && (m.wrn_depth() < 10 || (m.wrn_depth() - 4) % 6 != 0)) {
      c->Add(p + ".wrn_depth", absl::StrCat("got ", m.wrn_depth(),
                                            ", must be >= 10 with (depth - 4) % 6 == 0, e.g. 16, 28, 40"));
    }
    c->UIntZeroOr(p + ".wrn_width", m.wrn_width(), 1, 20);
  }
  if (!m.has_vit()) {
    if (m.arch() == "vit") {
      c->Add(p + ".vit", "required for arch vit (image_size, patch_size, depth, dim, heads); "
                         "or use a preset arch: deit_tiny, deit_small, vit_tiny28");
    }
    return;
  }
  const std::string vp = p + ".vit";
  if (!IsViTArch(m.arch()) && !m.arch().empty()) {
    c->Add(vp, absl::StrCat("only used by ViT archs (vit, deit_tiny, deit_small, vit_tiny28), not '",
                            m.arch(), "'"));
    return;
  }
  const v1::ViTSpec& v = m.vit();
  c->UIntZeroOr(vp + ".image_size", v.image_size(), 8, 1024);
  c->UIntZeroOr(vp + ".patch_size", v.patch_size(), 1, 64);
  c->UIntZeroOr(vp + ".in_channels", v.in_channels(), 1, 16);
  c->UIntZeroOr(vp + ".depth", v.depth(), 1, 48);
  c->UIntZeroOr(vp + ".dim", v.dim(), 8, 4096);
  c->UIntZeroOr(vp + ".heads", v.heads(), 1, 64);
  if (v.mlp_ratio() != 0) c->Real(vp + ".mlp_ratio", v.mlp_ratio(), 0, false, 16, true);
  const v1::ViTSpec r = ResolveViTSpec(m);
  if (m.arch() == "vit") {
    for (auto [name, value] : {std::pair<const char*, uint32_t>{"image_size", r.image_size()},
                               {"patch_size", r.patch_size()},
                               {"depth", r.depth()},
                               {"dim", r.dim()},
                               {"heads", r.heads()}}) {
      if (value == 0) c->Add(vp + "." + name, "required for arch vit (no preset)");
    }
  }
  if (r.image_size() != 0 && r.patch_size() != 0 && r.image_size() % r.patch_size() != 0) {
    c->Add(vp + ".image_size", absl::StrCat("got ", r.image_size(), ", must be divisible by patch_size ",
                                            r.patch_size()));
  }
  if (r.dim() != 0 && r.heads() != 0 && r.dim() % r.heads() != 0) {
    c->Add(vp + ".dim", absl::StrCat("got ", r.dim(), ", must be divisible by heads ", r.heads()));
  }
}

void CheckData(const v1::RunSpec& spec, Checker* c) {
  const std::string p = "spec.data";
  if (!spec.has_data()) {
    c->Add(p, absl::StrCat("required (at least data.dataset: one of ", absl::StrJoin(kDatasets, ", "), ")"));
    return;
  }
  const v1::DataSpec& d = spec.data();
  c->OneOf(p + ".dataset", d.dataset(), kDatasets, false);
  if (d.dataset() == "imagenet_folder" && d.path().empty()) {
    c->Add(p + ".path", "required for dataset imagenet_folder (the folder with train/ and val/)");
  }
  c->UIntMax(p + ".loader_threads", d.loader_threads(), 64);
  c->UIntMax(p + ".prefetch", d.prefetch(), 64);
  c->UIntZeroOr(p + ".image_size", d.image_size(), 8, 1024);
  if (!d.has_synthetic()) return;
  const std::string sp = p + ".synthetic";
  if (d.dataset() != "synthetic" && !d.dataset().empty()) {
    c->Add(sp, absl::StrCat("only used with dataset synthetic, not '", d.dataset(), "'"));
  }
  const v1::SyntheticDataSpec& s = d.synthetic();
  c->UIntZeroOr(sp + ".num_train", s.num_train(), 1, 10000000);
  c->UIntMax(sp + ".num_eval", s.num_eval(), 10000000);
  c->UIntZeroOr(sp + ".num_classes", s.num_classes(), 2, 1000);
  if (s.shape_size() > 4) c->Add(sp + ".shape", absl::StrCat("has ", s.shape_size(), " dims, at most 4"));
  for (int i = 0; i < s.shape_size(); ++i) {
    if (s.shape(i) < 1 || s.shape(i) > 65536) {
      c->Add(absl::StrCat(sp, ".shape[", i, "]"), absl::StrCat("got ", s.shape(i), ", must be in 1..65536"));
    }
  }
  c->AtLeast(sp + ".noise", s.noise(), 0, true);
}

void CheckOfq(const v1::RunSpec& spec, Checker* c) {
  const std::string p = "spec.method.ofq";
  const v1::OfqMethod& o = spec.method().ofq();
  c->OneOf(p + ".weight_quantizer", o.weight_quantizer(), {"statsq", "lsq"}, true);
  if (o.weight_bits() == 0) {
    c->Add(p + ".weight_bits", "required; one of 2, 3, 4, 8");
  } else {
    c->Bits(p + ".weight_bits", o.weight_bits(), false);
  }
  c->Bits(p + ".act_bits", o.act_bits(), true);
  if (o.qk_reparam() && !IsViTArch(spec.model().arch())) {
    c->Add(p + ".qk_reparam", absl::StrCat("only for ViT archs (vit, deit_tiny, deit_small, vit_tiny28), "
                                           "model.arch is '", spec.model().arch(), "'"));
  }
  if (o.has_embed_head_bits()) c->IntRange(p + ".embed_head_bits", o.embed_head_bits(), 2, 8);
  const v1::CgaSpec& g = o.cga();
  if (g.has_boundary_range()) c->Real(p + ".cga.boundary_range", g.boundary_range(), 0, false, 0.5, false);
  c->OneOf(p + ".cga.freeze_qk", g.freeze_qk(), {"none", "mask"}, true);
  if (g.freeze_qk() == "mask" && !o.qk_reparam()) {
    c->Add(p + ".cga.freeze_qk", "'mask' needs method.ofq.qk_reparam: true");
  }
  const v1::OscillationSpec& s = o.oscillation();
  if (s.has_momentum()) c->Real(p + ".oscillation.momentum", s.momentum(), 0, false, 1, true);
  if (s.thresholds_size() > 16) {
    c->Add(p + ".oscillation.thresholds", absl::StrCat("has ", s.thresholds_size(), " values, at most 16"));
  }
  for (int i = 0; i < s.thresholds_size(); ++i) {
    c->Real(absl::StrCat(p, ".oscillation.thresholds[", i, "]"), s.thresholds(i), 0, false, 1, false);
  }
}

void CheckIncremental(const v1::RunSpec& spec, Checker* c) {
  const std::string p = "spec.method.incremental";
  const v1::IncrementalMethod& m = spec.method().incremental();
  uint32_t classes = spec.model().num_classes() != 0 ? spec.model().num_classes()
                                                     : DatasetClasses(spec.data());
  const std::string range = classes != 0 ? absl::StrCat("1..", classes) : "1..num_classes";
  if (m.base_classes() == 0) c->Add(p + ".base_classes", absl::StrCat("required, ", range));
  if (m.classes_per_stage() == 0) c->Add(p + ".classes_per_stage", absl::StrCat("required, ", range));
  if (classes != 0) {
    if (m.base_classes() > classes) {
      c->Add(p + ".base_classes", absl::StrCat("got ", m.base_classes(), ", must be in ", range,
                                               " (the number of classes)"));
    }
    if (m.classes_per_stage() > classes) {
      c->Add(p + ".classes_per_stage", absl::StrCat("got ", m.classes_per_stage(), ", must be in ", range));
    }
    // Stages after the first need not divide the rest evenly: as in PyCIL,
    // the last stage takes what is left (Scenario::Make).
  }
  // Scenario::Make (worker/train/incremental/scenario.cc): the class order
  // is a NumPy-legacy permutation seeded with a uint32.
  if (m.has_class_order_seed()) {
    c->UIntMax(p + ".class_order_seed", m.class_order_seed(), 0xffffffffULL, " (< 2^32)");
  }
  if (m.has_memory_size()) c->UIntMax(p + ".memory_size", m.memory_size(), 10000000);
  c->OneOf(p + ".exemplar_selection", m.exemplar_selection(), {"herding", "random"}, true);
  if (m.has_kd_temperature()) c->AtLeast(p + ".kd_temperature", m.kd_temperature(), 0, false);
  if (m.weight_aligning().has_norm() && m.weight_aligning().norm() != 1 && m.weight_aligning().norm() != 2) {
    c->Add(p + ".weight_aligning.norm", absl::StrCat("got ", m.weight_aligning().norm(), ", must be 1 or 2"));
  }
  c->UIntMax(p + ".epochs_per_stage", m.epochs_per_stage(), 100000);
}

// The rules below copy the trainer's own checks (cited per field) so that a
// bad spec is refused at submit, not when pendulum-train starts on a worker.
// The trainer keeps its checks (defence in depth); keep the two in step.
void CheckCompander(const v1::RunSpec& spec, Checker* c) {
  const std::string p = "spec.method.compander";
  const v1::CompanderMethod& m = spec.method().compander();
  // ParseCompanderFamily (worker/train/reg/compander_function.cc) takes "",
  // tanh, mu_law, power and the alias mulaw.
  const std::string& f = m.family();
  if (!(f.empty() || f == "tanh" || f == "mu_law" || f == "mulaw" || f == "power")) {
    c->Add(p + ".family", absl::StrCat("got '", f, "', must be one of: tanh, mu_law, power (mulaw = mu_law)"));
  }
  // WeightCompander::Attach (worker/train/reg/weight_compander.cc).
  if (m.has_a()) c->AtLeast(p + ".a", m.a(), 0, false);
  if (m.has_a_std_multiplier()) c->AtLeast(p + ".a_std_multiplier", m.a_std_multiplier(), 0, false);
  if (m.has_beta()) {
    if (f == "power") {
      if (!std::isfinite(m.beta()) || !(m.beta() > 0 && m.beta() < 1)) {
        c->Add(p + ".beta", absl::StrCat("got ", Checker::Num(m.beta()),
                                         ", must be > 0 and < 1 (the power family's exponent p)"));
      }
    } else {
      c->AtLeast(p + ".beta", m.beta(), 0, false);
    }
  }
  // CompanderMethod::OptionsFromSpec (worker/train/reg/compander_method.cc).
  if (m.has_power_eps()) c->AtLeast(p + ".power_eps", m.power_eps(), 0, false);
}

void CheckTscnc(const v1::RunSpec& spec, Checker* c) {
  const std::string p = "spec.method.tscnc";
  const v1::TscncMethod& m = spec.method().tscnc();
  c->AtLeast(p + ".tsc_weight", m.tsc_weight(), 0, true);
  c->AtLeast(p + ".cnc_weight", m.cnc_weight(), 0, true);
  c->OneOf(p + ".phase", m.phase(), {"pretrain", "prune", "finetune", "all"}, true);
  if (m.phase() == "pretrain" && m.sparsity() == 0) {
    // Pruning does not happen in this phase; the kept fraction is unused.
  } else {
    c->Real(p + ".sparsity", m.sparsity(), 0, false, 1, true);
  }
  // TscncMethod::OptionsFromSpec (worker/train/reg/tscnc_method.cc) parses
  // tsc_form only when tsc is on (ParseTscForm, tsc_penalty.cc), cn_form
  // always (ParseCnForm, condition_number.cc), and checks pole_limit.
  if (m.tsc()) c->OneOf(p + ".tsc_form", m.tsc_form(), {"code", "tl1_abs", "none"}, true);
  c->OneOf(p + ".cn_form", m.cn_form(), {"slogdet", "logcond"}, true);
  if (m.has_pole_limit()) c->Real(p + ".pole_limit", m.pole_limit(), 0, false, 1, false);
  // Tscnc::Attach (worker/train/reg/tscnc.cc).
  if (m.has_tsc_a()) c->AtLeast(p + ".tsc_a", m.tsc_a(), 0, false);
  if (m.has_droprate_init()) c->Real(p + ".droprate_init", m.droprate_init(), 0, false, 1, false);
  if (m.has_lambda0()) c->AtLeast(p + ".lambda0", m.lambda0(), 0, true);
  if (m.has_prior_weight_decay()) c->AtLeast(p + ".prior_weight_decay", m.prior_weight_decay(), 0, true);
  // train_size <= 0 is replaced by the data size in TscncMethod::Setup; a
  // value in (0, 1) reaches Attach, which needs >= 1.
  if (!(m.train_size() <= 0 || m.train_size() >= 1) || std::isinf(m.train_size())) {
    c->Add(p + ".train_size", absl::StrCat("got ", Checker::Num(m.train_size()),
                                           ", must be >= 1 (0 = the size of the training data)"));
  }
  const std::string ap = p + ".adversarial";
  const v1::AdversarialSpec& a = m.adversarial();
  // OptionsFromSpec parses loss and start whether or not adversarial training
  // is on, and the robust evaluation (FGSM/PGD at epsilon) runs at every
  // evaluation, so these are checked either way.
  c->OneOf(ap + ".loss", a.loss(), {"trades", "pgd_ce"}, true);
  c->OneOf(ap + ".start", a.start(), {"gaussian", "uniform", "none"}, true);
  c->AtLeast(ap + ".epsilon", a.epsilon(), 0, true);  // 0 = the default radius
  if (a.enabled()) {
    // 0 = the method's default step / step count.
    c->AtLeast(ap + ".step_size", a.step_size(), 0, true);
    c->UIntMax(ap + ".steps", a.steps(), 1000, " (0 = default)");
    c->AtLeast(ap + ".trades_beta", a.trades_beta(), 0, true);
  }
}

void CheckInteractionBasis(const v1::RunSpec& spec, Checker* c) {
  const std::string p = "spec.method.interaction_basis";
  const v1::InteractionBasisMethod& m = spec.method().interaction_basis();
  if (m.num_samples() == 0) {
    c->Add(p + ".num_samples", "required, 1..10000000");
  } else {
    c->IntRange(p + ".num_samples", m.num_samples(), 1, 10000000);
  }
  if (m.has_eps_d()) c->AtLeast(p + ".eps_d", m.eps_d(), 0, false);
  if (m.has_eps_lambda()) c->AtLeast(p + ".eps_lambda", m.eps_lambda(), 0, false);
  // The proto also names trapezoid and gauss_legendre; they are not
  // implemented yet, so they are refused here rather than at run time.
  c->OneOf(p + ".integration", m.integration(), {"gradient"}, true);
  // InteractionBasisMethod::OptionsFromSpec
  // (worker/train/analysis/interaction_basis_method.cc).
  if (m.has_edge_eps()) c->AtLeast(p + ".edge_eps", m.edge_eps(), 0, false);
  if (m.has_edge_eps_relative()) c->Real(p + ".edge_eps_relative", m.edge_eps_relative(), 0, false, 1, false);
  if (m.has_resolution()) c->AtLeast(p + ".resolution", m.resolution(), 0, false);
  c->OneOf(p + ".split", m.split(), {"train", "eval"}, true);
  // InteractionBasisMethod::Setup: the analysis reads a Linear + ReLU chain.
  const std::string& arch = spec.model().arch();
  if (!arch.empty() && arch != "mlp" && arch != "block_mlp") {
    c->Add("spec.model.arch", absl::StrCat("got '", arch, "', method interaction_basis supports mlp and "
                                                          "block_mlp (Linear + ReLU)"));
  }
  if (!spec.model().activation().empty() && spec.model().activation() != "relu") {
    c->Add("spec.model.activation", absl::StrCat("got '", spec.model().activation(),
                                                 "', method interaction_basis needs relu"));
  }
}

void CheckMethod(const v1::RunSpec& spec, Checker* c) {
  const v1::MethodSpec& method = spec.method();
  switch (method.kind_case()) {
    case v1::MethodSpec::kOfq:
      CheckOfq(spec, c);
      break;
    case v1::MethodSpec::kIncremental:
      CheckIncremental(spec, c);
      break;
    case v1::MethodSpec::kCompander:
      CheckCompander(spec, c);
      break;
    case v1::MethodSpec::kTscnc:
      CheckTscnc(spec, c);
      break;
    case v1::MethodSpec::kInteractionBasis:
      CheckInteractionBasis(spec, c);
      break;
    case v1::MethodSpec::kPlain:
    case v1::MethodSpec::KIND_NOT_SET:
      break;
  }
}

void CheckOptimizer(const v1::RunSpec& spec, Checker* c) {
  const std::string p = "spec.optimizer";
  if (!spec.has_optimizer()) {
    c->Add(p, absl::StrCat("required (optimizer.type: one of ", absl::StrJoin(kOptimizers, ", "),
                           "; optimizer.lr > 0)"));
    return;
  }
  const v1::OptimizerSpec& o = spec.optimizer();
  c->OneOf(p + ".type", o.type(), kOptimizers, false);
  if (o.lr() == 0) {
    c->Add(p + ".lr", "required, must be > 0 and <= 10");
  } else {
    c->Real(p + ".lr", o.lr(), 0, false, 10, true);
  }
  c->Real(p + ".weight_decay", o.weight_decay(), 0, true, 1, true);
  c->Real(p + ".momentum", o.momentum(), 0, true, 1, false);
  // Which options each type reads, from the trainer's spec -> options code:
  // sgd: MakeSgd (worker/train/core/optimizer_factory.cc) reads momentum,
  // nesterov; adam/adamw: MakeAdam/MakeAdamW read beta1, beta2, eps; adamp:
  // ToAdamP (worker/train/optim/projected_optimizer_factory.cc) reads beta1,
  // beta2, eps, delta, wd_ratio, nesterov (on the first moment, no momentum);
  // sgdp: ToSGDP reads momentum, nesterov, eps, delta, wd_ratio.
  const std::string& t = o.type();
  const bool sgd_family = t == "sgd" || t == "sgdp";
  const bool adam_family = t == "adam" || t == "adamw" || t == "adamp";
  const bool projected = t == "adamp" || t == "sgdp";
  const bool uses_nesterov = sgd_family || t == "adamp";
  const bool uses_eps = adam_family || t == "sgdp";
  if (!t.empty()) {
    auto only_for = [&](const char* name, bool set, bool used, const char* types) {
      if (set && !used) c->Add(p + "." + name, absl::StrCat("only for ", types, ", optimizer.type is '", t, "'"));
    };
    only_for("momentum", o.momentum() != 0, sgd_family, "sgd/sgdp");
    only_for("nesterov", o.nesterov(), uses_nesterov, "sgd/sgdp/adamp");
    only_for("beta1", o.has_beta1(), adam_family, "adam/adamw/adamp");
    only_for("beta2", o.has_beta2(), adam_family, "adam/adamw/adamp");
    only_for("eps", o.has_eps(), uses_eps, "adam/adamw/adamp/sgdp");
    only_for("delta", o.has_delta(), projected, "adamp/sgdp");
    only_for("wd_ratio", o.has_wd_ratio(), projected, "adamp/sgdp");
  }
  // MakeSgd refuses nesterov without momentum (torch's SGD needs it); SGDP
  // would run it as plain SGDP, refused here as well since it means nothing.
  // AdamP's nesterov uses beta1, not momentum.
  if (o.nesterov() && o.momentum() == 0 && sgd_family) c->Add(p + ".nesterov", "needs optimizer.momentum > 0");
  if (o.has_beta1()) c->Real(p + ".beta1", o.beta1(), 0, true, 1, false);
  if (o.has_beta2()) c->Real(p + ".beta2", o.beta2(), 0, true, 1, false);
  if (o.has_eps()) c->AtLeast(p + ".eps", o.eps(), 0, false);
  if (o.has_delta()) c->Real(p + ".delta", o.delta(), 0, false, 1, false);
  if (o.has_wd_ratio()) c->Real(p + ".wd_ratio", o.wd_ratio(), 0, true, 1, true);
  c->AtLeast(p + ".grad_clip_norm", o.grad_clip_norm(), 0, true);
}

void CheckSchedule(const v1::RunSpec& spec, Checker* c) {
  const std::string p = "spec.schedule";
  if (!spec.has_schedule()) {
    c->Add(p, "required (schedule.batch_size, and schedule.epochs or schedule.max_steps)");
    return;
  }
  const v1::ScheduleSpec& s = spec.schedule();
  c->UIntMax(p + ".epochs", s.epochs(), 100000);
  c->UIntMax(p + ".max_steps", s.max_steps(), 1000000000);
  const bool per_stage = spec.method().has_incremental() && spec.method().incremental().epochs_per_stage() > 0;
  if (s.epochs() == 0 && s.max_steps() == 0 && !per_stage) {
    c->Add(p + ".epochs", "got 0 and schedule.max_steps is 0; at least one must be > 0");
  }
  if (s.batch_size() == 0) {
    c->Add(p + ".batch_size", "required, must be in 1..65536");
  } else {
    c->IntRange(p + ".batch_size", s.batch_size(), 1, 65536);
  }
  c->UIntMax(p + ".eval_batch_size", s.eval_batch_size(), 65536, " (0 = batch_size)");
  c->OneOf(p + ".lr_schedule", s.lr_schedule(), {"constant", "cosine", "step"}, true);
  c->Real(p + ".warmup_epochs", s.warmup_epochs(), 0, true, 1000, true);
  c->AtLeast(p + ".warmup_lr", s.warmup_lr(), 0, true);
  c->AtLeast(p + ".min_lr", s.min_lr(), 0, true);
  if (spec.optimizer().lr() > 0 && s.min_lr() > spec.optimizer().lr()) {
    c->Add(p + ".min_lr", absl::StrCat("got ", Checker::Num(s.min_lr()), ", must be <= optimizer.lr ",
                                       Checker::Num(spec.optimizer().lr())));
  }
  if (s.lr_schedule() == "step") {
    if (s.milestones_size() == 0) c->Add(p + ".milestones", "required for lr_schedule step, e.g. [30, 60]");
    c->Real(p + ".gamma", s.gamma(), 0, false, 1, true);
  } else {
    if (s.milestones_size() > 0) c->Add(p + ".milestones", "only used by lr_schedule step");
    if (s.gamma() != 0) c->Add(p + ".gamma", "only used by lr_schedule step");
  }
  for (int i = 0; i < s.milestones_size(); ++i) {
    if (s.milestones(i) == 0 || (i > 0 && s.milestones(i) <= s.milestones(i - 1))) {
      c->Add(absl::StrCat(p, ".milestones[", i, "]"),
             absl::StrCat("got ", s.milestones(i), ", milestones must be >= 1 and strictly increasing"));
    }
  }
  if (s.has_eval_every_epochs()) c->UIntMax(p + ".eval_every_epochs", s.eval_every_epochs(), 1000);
}

void CheckResources(const v1::RunSpec& spec, Checker* c) {
  const std::string p = "spec.resources";
  const v1::ResourceSpec& r = spec.resources();
  c->UIntMax(p + ".gpus", r.gpus(), 16);
  c->Real(p + ".gpu_fraction", r.gpu_fraction(), 0, true, 1, false);
  if (r.gpu_fraction() > 0 && r.gpus() > 1) {
    c->Add(p + ".gpu_fraction", absl::StrCat("got ", Checker::Num(r.gpu_fraction()),
                                             ", cannot be combined with resources.gpus ", r.gpus(), " > 1"));
  }
  c->UIntMax(p + ".gpu_memory_mb", r.gpu_memory_mb(), 1048576);
  c->UIntMax(p + ".cpus", r.cpus(), 256);
  if (r.node_labels_size() > 32) c->Add(p + ".node_labels", absl::StrCat("has ", r.node_labels_size(), " entries, at most 32"));
  for (const auto& [key, value] : r.node_labels()) {
    if (key.empty() || key.size() > 63 || !ValidKeyChars(key, true)) {
      c->Add(absl::StrCat(p, ".node_labels[\"", key, "\"]"),
             "label keys must be 1..63 characters of [A-Za-z0-9_./-]");
    }
  }
}

void CheckTop(const v1::RunSpec& spec, Checker* c) {
  if (spec.name().empty()) {
    c->Add("spec.name", "required, 1..200 printable characters");
  } else if (spec.name().size() > 200) {
    c->Add("spec.name", absl::StrCat("has ", spec.name().size(), " characters, at most 200"));
  } else {
    for (char ch : spec.name()) {
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
        c->Add("spec.name", "must be printable (no control characters or newlines)");
        break;
      }
    }
  }
  if (spec.description().size() > 4000) {
    c->Add("spec.description", absl::StrCat("has ", spec.description().size(), " characters, at most 4000"));
  }
  if (spec.tags_size() > 32) c->Add("spec.tags", absl::StrCat("has ", spec.tags_size(), " entries, at most 32"));
  for (const auto& [key, value] : spec.tags()) {
    if (key.empty() || key.size() > 63 || !ValidKeyChars(key, false)) {
      c->Add(absl::StrCat("spec.tags[\"", key, "\"]"), "tag keys must be 1..63 characters of [a-z0-9_.-]");
    }
    if (value.size() > 256) c->Add(absl::StrCat("spec.tags.", key), "tag values are at most 256 characters");
  }
  if (spec.seed() > static_cast<uint64_t>(INT64_MAX)) {
    c->Add("spec.seed", absl::StrCat("got ", spec.seed(), ", must be in 0..", INT64_MAX));
  }
  c->UIntMax("spec.checkpoint_every_steps", spec.checkpoint_every_steps(), 10000000,
             " (0 = at the end of each epoch)");
  c->IntRange("spec.priority", spec.priority(), -100, 100);
}

void CheckLogging(const v1::RunSpec& spec, Checker* c) {
  const std::string p = "spec.logging";
  const v1::LoggingSpec& l = spec.logging();
  if (l.has_metrics_every_steps()) c->IntRange(p + ".metrics_every_steps", l.metrics_every_steps(), 1, 1000000);
  if (l.has_oscillation_every_steps()) {
    c->IntRange(p + ".oscillation_every_steps", l.oscillation_every_steps(), 1, 1000000);
  }
  if (l.has_snapshot_every_steps()) {
    c->UIntMax(p + ".snapshot_every_steps", l.snapshot_every_steps(), 1000000000, " (0 = only at the end)");
  }
  if (l.has_snapshot_top_k()) c->UIntMax(p + ".snapshot_top_k", l.snapshot_top_k(), 10000);
}

void CheckInitDistillLoss(const v1::RunSpec& spec, Checker* c) {
  const v1::InitSpec& i = spec.init();
  if (i.from_run() < 0) c->Add("spec.init.from_run", absl::StrCat("got ", i.from_run(), ", must be a run id >= 1 (0 = none)"));
  if (i.from_run() != 0 && !i.checkpoint_path().empty()) {
    c->Add("spec.init.checkpoint_path", "set only one of init.from_run and init.checkpoint_path");
  }
  if (i.resume_state() && i.from_run() == 0 && i.checkpoint_path().empty()) {
    c->Add("spec.init.resume_state", "needs init.from_run or init.checkpoint_path");
  }
  const v1::DistillSpec& d = spec.distill();
  if (d.teacher_run() < 0) {
    c->Add("spec.distill.teacher_run", absl::StrCat("got ", d.teacher_run(), ", must be a run id >= 1 (0 = none)"));
  }
  if (d.teacher_run() != 0 && !d.teacher_checkpoint().empty()) {
    c->Add("spec.distill.teacher_checkpoint", "set only one of distill.teacher_run and distill.teacher_checkpoint");
  }
  c->AtLeast("spec.distill.temperature", d.temperature(), 0, true);
  c->Real("spec.distill.weight", d.weight(), 0, true, 100, true);
  // temperature/weight without teacher_run/teacher_checkpoint is fine: stand-alone
  // pendulum-train takes the teacher from --teacher.
  c->Real("spec.loss.label_smoothing", spec.loss().label_smoothing(), 0, true, 1, false);
}

}  // namespace

absl::Status ValidateRunSpec(const v1::RunSpec& spec) {
  Checker c;
  CheckTop(spec, &c);
  CheckModel(spec, &c);
  CheckData(spec, &c);
  CheckMethod(spec, &c);
  CheckOptimizer(spec, &c);
  CheckSchedule(spec, &c);
  CheckResources(spec, &c);
  CheckLogging(spec, &c);
  CheckInitDistillLoss(spec, &c);
  if (c.errors().empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(c.errors(), "\n"));
}

}  // namespace pendulum::spec
