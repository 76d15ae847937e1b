#include "worker/train/incremental/incremental_method.h"

#include <algorithm>
#include <random>
#include <utility>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/utils.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "worker/train/core/method_registry.h"
#include "worker/train/data/data_loader.h"
#include "worker/train/incremental/herding.h"
#include "worker/train/incremental/kd_loss.h"
#include "worker/train/models/model_factory.h"

namespace pendulum::train::incremental {
namespace {

constexpr double kUnseenLogit = -1e9;  // finite, so the loop's eval CE stays finite
constexpr int64_t kFeatureBatch = 256;

std::vector<std::vector<int64_t>> IndicesByLabel(const Dataset& data, int64_t num_classes) {
  std::vector<std::vector<int64_t>> by_label(static_cast<size_t>(num_classes));
  at::Tensor labels = data.labels.to(at::kCPU).contiguous();
  const int64_t* y = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < data.size(); ++i) {
    if (y[i] >= 0 && y[i] < num_classes) by_label[static_cast<size_t>(y[i])].push_back(i);
  }
  return by_label;
}

double Accuracy(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& mask) {
  const int64_t n = mask.sum().item<int64_t>();
  if (n == 0) return 0.0;
  return (pred.eq(target) & mask).sum().item<double>() / static_cast<double>(n);
}

}  // namespace

absl::StatusOr<IncrementalOptions> ResolveIncrementalOptions(const v1::IncrementalMethod& spec) {
  IncrementalOptions o;
  std::vector<std::string> errors;
  if (spec.has_memory_size()) o.memory_size = spec.memory_size();
  if (o.memory_size < 0 || o.memory_size > 10000000) {
    errors.push_back(absl::StrCat("spec.method.incremental.memory_size: got ", o.memory_size, ", must be in 0..10000000"));
  }
  if (spec.exemplar_selection().empty() || spec.exemplar_selection() == "herding") {
    o.herding = true;
  } else if (spec.exemplar_selection() == "random") {
    o.herding = false;
  } else {
    errors.push_back(absl::StrCat("spec.method.incremental.exemplar_selection: got '", spec.exemplar_selection(),
                                  "', must be one of: herding, random"));
  }
  o.kd = !spec.has_kd() || spec.kd();
  if (spec.has_kd_temperature()) o.temperature = spec.kd_temperature();
  if (!(o.temperature > 0)) {
    errors.push_back(absl::StrCat("spec.method.incremental.kd_temperature: got ", o.temperature, ", must be > 0"));
  }
  o.weight_aligning = spec.weight_aligning().enabled();
  o.wa.norm = spec.weight_aligning().has_norm() ? static_cast<int>(spec.weight_aligning().norm()) : 2;
  if (o.wa.norm != 1 && o.wa.norm != 2) {
    errors.push_back(absl::StrCat("spec.method.incremental.weight_aligning.norm: got ", spec.weight_aligning().norm(),
                                  ", must be 1 or 2"));
  }
  o.wa.clamp_gamma_le_1 = spec.weight_aligning().clamp_gamma_le_1();
  o.weight_clip = spec.weight_clip();
  o.epochs_per_stage = spec.epochs_per_stage();
  if (spec.classes_per_stage() == 0) {
    errors.push_back("spec.method.incremental.classes_per_stage: required, must be >= 1");
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  return o;
}

absl::StatusOr<std::unique_ptr<TrainingMethod>> IncrementalMethod::Create(const TrainContext& ctx) {
  if (ctx.spec == nullptr) return absl::InvalidArgumentError("incremental method: no run spec");
  const v1::IncrementalMethod& spec = ctx.spec->method().incremental();
  auto options = ResolveIncrementalOptions(spec);
  if (!options.ok()) return options.status();
  const int64_t num_classes =
      ctx.spec->model().num_classes() > 0 ? int64_t(ctx.spec->model().num_classes()) : ctx.inputs.num_classes;
  auto scenario = Scenario::FromSpec(spec, num_classes);
  if (!scenario.ok()) return scenario.status();
  return std::unique_ptr<TrainingMethod>(new IncrementalMethod(*scenario, *options));
}

absl::StatusOr<std::shared_ptr<IncrementalNet>> IncrementalMethod::BuildNet(int64_t num_classes) const {
  auto backbone = MakeModel(ctx_.spec->model(), ctx_.inputs);
  if (!backbone.ok()) return backbone.status();
  auto dim = ProbeFeatureDim(**backbone, ctx_.inputs.example_shape);
  if (!dim.ok()) return dim.status();
  const bool fc_bias = !ctx_.spec->model().has_fc_bias() || ctx_.spec->model().fc_bias();
  auto net = std::make_shared<IncrementalNet>(*backbone, *dim, num_classes, fc_bias);
  net->to(ctx_.device);
  return net;
}

absl::Status IncrementalMethod::Setup(const TrainContext& ctx, ModelPtr* model) {
  ctx_ = ctx;
  if (ctx.train_data == nullptr || ctx.eval_data == nullptr) {
    return absl::FailedPreconditionError("incremental method: needs training and evaluation data");
  }
  const int64_t n = scenario_.num_classes();
  if (ctx.train_data->num_classes > n || ctx.inputs.num_classes > n) {
    return absl::InvalidArgumentError(absl::StrCat("spec.model.num_classes: got ", n, ", the data has ",
                                                   ctx.train_data->num_classes, " classes"));
  }
  auto dim = ProbeFeatureDim(**model, ctx.inputs.example_shape);
  if (!dim.ok()) return dim.status();
  const bool fc_bias = !ctx.spec->model().has_fc_bias() || ctx.spec->model().fc_bias();
  net_ = std::make_shared<IncrementalNet>(*model, *dim, scenario_.stage_sizes().at(0), fc_bias);
  net_->to(ctx.device);
  model_ = net_;
  *model = net_;

  train_by_label_ = IndicesByLabel(*ctx.train_data, n);
  eval_by_label_ = IndicesByLabel(*ctx.eval_data, n);
  std::vector<int64_t> to_output(static_cast<size_t>(n)), to_label(static_cast<size_t>(n));
  for (int64_t label = 0; label < n; ++label) to_output[static_cast<size_t>(label)] = scenario_.OutputOf(label);
  for (int64_t k = 0; k < n; ++k) to_label[static_cast<size_t>(k)] = scenario_.LabelOf(k);
  label_to_output_ = at::tensor(to_output, at::kLong).to(ctx.device);
  output_to_label_ = at::tensor(to_label, at::kLong).to(ctx.device);
  return absl::OkStatus();
}

absl::Status IncrementalMethod::BeginStage(int stage, ModelPtr* model, StagePlan* plan) {
  stage_ = stage;
  const int64_t known = scenario_.KnownBefore(stage);
  const int64_t total = scenario_.TotalAfter(stage);
  // A checkpoint written after the last stage's EndStage (so that it holds
  // the final memory and results) resumes into that finished stage: accept
  // it, and EndStage below leaves the finished stage as it is.
  const bool finished_stage = plan->resuming && completed_stages_ == stage + 1;
  if (completed_stages_ != stage && !finished_stage) {
    return absl::InternalError(absl::StrCat("incremental method: stage ", stage, " begins after ",
                                            completed_stages_, " completed stages (checkpoint and method state disagree)"));
  }
  if (stage > 0 && options_.kd && teacher_ == nullptr && !finished_stage) {
    return absl::InternalError(absl::StrCat("incremental method: stage ", stage, " has no teacher model"));
  }
  const int64_t before = net_->fc()->out_features();
  if (before < total) {
    net_->fc()->Grow(total);  // new tensors: the optimizer must be rebuilt
    net_->fc()->to(ctx_.device);
  }
  plan->rebuild_optimizer = before != total;
  plan->train_indices.clear();
  for (int64_t k = known; k < total; ++k) {
    const auto& idx = train_by_label_[static_cast<size_t>(scenario_.LabelOf(k))];
    plan->train_indices.insert(plan->train_indices.end(), idx.begin(), idx.end());
  }
  for (const auto& [index, cls] : memory_.AllExemplars()) plan->train_indices.push_back(index);
  std::sort(plan->train_indices.begin(), plan->train_indices.end());
  plan->eval_indices.clear();
  for (int64_t k = 0; k < total; ++k) {
    const auto& idx = eval_by_label_[static_cast<size_t>(scenario_.LabelOf(k))];
    plan->eval_indices.insert(plan->eval_indices.end(), idx.begin(), idx.end());
  }
  std::sort(plan->eval_indices.begin(), plan->eval_indices.end());
  if (plan->eval_indices.empty()) {
    // An empty list means "all" to the loop; the seen classes have no eval data.
    return absl::FailedPreconditionError(absl::StrCat("incremental stage ", stage, ": no evaluation examples of the seen classes"));
  }
  plan->epochs = options_.epochs_per_stage;
  std::vector<std::string> labels;
  for (int64_t k = known; k < total; ++k) labels.push_back(std::to_string(scenario_.LabelOf(k)));
  plan->label = absl::StrFormat("stage %d/%d: classes %d..%d (labels %s), %d examples incl. %d exemplars", stage + 1,
                                scenario_.num_stages(), known, total - 1, absl::StrJoin(labels, ","),
                                plan->train_indices.size(), memory_.size());
  ce_sum_ = kd_sum_ = 0;
  loss_steps_ = 0;
  *model = net_;
  return absl::OkStatus();
}

int64_t IncrementalMethod::PlannedTotalSteps(int64_t batch_size, int64_t default_epochs) const {
  if (batch_size <= 0) return 0;
  const int64_t epochs = options_.epochs_per_stage > 0 ? options_.epochs_per_stage : default_epochs;
  auto count = [&](int64_t k) {
    return int64_t(train_by_label_.at(static_cast<size_t>(scenario_.LabelOf(k))).size());
  };
  int64_t total_steps = 0;
  for (int64_t t = 0; t < scenario_.num_stages(); ++t) {
    const int64_t known = scenario_.KnownBefore(t);
    const int64_t m = memory_.PerClass(known);  // what EndStage(t-1) kept per class
    int64_t n = 0;
    for (int64_t k = 0; k < known; ++k) n += std::min(m, count(k));
    for (int64_t k = known; k < scenario_.TotalAfter(t); ++k) n += count(k);
    total_steps += epochs * (n / batch_size);
  }
  return total_steps;
}

at::Tensor IncrementalMethod::ToLabelSpace(const at::Tensor& logits) const {
  at::Tensor out = at::full({logits.size(0), scenario_.num_classes()}, kUnseenLogit, logits.options());
  out.index_copy_(1, output_to_label_.narrow(0, 0, logits.size(1)).to(logits.device()), logits);
  return out;
}

absl::StatusOr<LossOutput> IncrementalMethod::ComputeLoss(const Batch& batch, const StepInfo& info) {
  const int64_t known = scenario_.KnownBefore(stage_);
  at::Tensor y = label_to_output_.index_select(0, batch.y);
  ModelOutput out = net_->Forward(batch.x);
  at::Tensor old_logits;
  const bool use_kd = options_.kd && known > 0;
  if (use_kd) {
    torch::NoGradGuard no_grad;
    old_logits = teacher_->Forward(batch.x).logits;
  }
  IncrementalLossTerms terms = IncrementalLoss(out.logits, old_logits, y, known, options_.temperature, use_kd);
  LossOutput result;
  result.loss = terms.loss;
  result.logits = ToLabelSpace(out.logits.detach());
  const double ce = terms.loss_ce.item<double>();
  result.scalars["incremental/ce"] = ce;
  ce_sum_ += ce;
  if (terms.loss_kd.defined()) {
    const double kd = terms.loss_kd.item<double>();
    result.scalars["incremental/kd"] = kd;
    kd_sum_ += kd;
  }
  ++loss_steps_;
  return result;
}

absl::Status IncrementalMethod::AfterOptimizerStep(const StepInfo& info) {
  // Official WA code: clip after EVERY step, not per epoch (§2.5 Trap 3).
  if (options_.weight_clip) ClipWeightsNonNegative(net_->fc()->weight);
  return absl::OkStatus();
}

void IncrementalMethod::AddStepScalars(const StepInfo& info, std::map<std::string, double>* values) {
  (*values)["incremental/stage"] = static_cast<double>(stage_);
}

torch::Tensor IncrementalMethod::EvalLogits(const torch::Tensor& x) { return ToLabelSpace(net_->Forward(x).logits); }

void IncrementalMethod::AddEvalScalars(const StepInfo& info, const torch::Tensor& logits, const torch::Tensor& labels,
                                       std::map<std::string, double>* values) {
  // Live (before this stage's aligning) view of the old/new split.
  const int64_t known = scenario_.KnownBefore(stage_);
  at::Tensor map = label_to_output_.to(at::kCPU);
  at::Tensor target = map.index_select(0, labels);
  at::Tensor pred = map.index_select(0, logits.argmax(1));
  at::Tensor is_old = target.lt(known);
  (*values)["incremental/stage"] = static_cast<double>(stage_);
  if (known > 0) (*values)["incremental/live_old_acc"] = Accuracy(pred, target, is_old);
  (*values)["incremental/live_new_acc"] = Accuracy(pred, target, ~is_old);
  (*values)["incremental/live_new_pred_share"] = pred.ge(known).to(at::kDouble).mean().item<double>();
}

at::Tensor IncrementalMethod::ExtractFeatures(IncrementalNet& net, const Dataset& data,
                                              const std::vector<int64_t>& indices) const {
  if (indices.empty()) return at::zeros({0, net.fc()->in_features()});
  DataLoaderOptions o;
  o.batch_size = kFeatureBatch;
  o.shuffle = false;
  o.augment = false;  // eval transforms (§2.5 Trap 4)
  o.drop_last = false;
  o.threads = 0;
  DataLoader loader(&data, indices, o);
  loader.StartEpoch(0, 0);
  const bool was_training = net.is_training();
  net.eval();
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  while (auto batch = loader.Next()) {
    parts.push_back(net.Forward(batch->x.to(ctx_.device)).extra.at("features").to(at::kCPU, at::kFloat));
  }
  net.train(was_training);
  return at::cat(parts);
}

absl::Status IncrementalMethod::BuildMemory(int64_t stage) {
  const int64_t known = scenario_.KnownBefore(stage);
  const int64_t total = scenario_.TotalAfter(stage);
  const int64_t m = memory_.PerClass(total);
  memory_.ShrinkTo(m);  // old classes keep their herding prefix (§2.5 Trap 6)
  for (int64_t k = known; k < total; ++k) {
    const auto& idx = train_by_label_[static_cast<size_t>(scenario_.LabelOf(k))];
    std::vector<int64_t> chosen;
    if (options_.herding) {
      at::Tensor features = ExtractFeatures(*net_, *ctx_.train_data, idx);
      for (int64_t row : HerdingSelect(features, m)) chosen.push_back(idx[static_cast<size_t>(row)]);
    } else {
      std::vector<int64_t> shuffled = idx;
      std::mt19937_64 rng(ctx_.spec->seed() * 1000003ULL + static_cast<uint64_t>(k));
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      shuffled.resize(std::min<size_t>(shuffled.size(), static_cast<size_t>(std::max<int64_t>(m, 0))));
      chosen = std::move(shuffled);
    }
    memory_.Set(k, std::move(chosen));
  }
  return absl::OkStatus();
}

at::Tensor IncrementalMethod::NmeClassMeans() {
  const int64_t seen = net_->fc()->out_features();
  at::Tensor means = at::zeros({seen, net_->fc()->in_features()});
  for (const auto& [cls, indices] : memory_.classes()) {
    if (cls >= seen || indices.empty()) continue;
    at::Tensor f = NormalizeFeatures(ExtractFeatures(*net_, *ctx_.train_data, indices));
    at::Tensor mean = f.mean(0);
    means[cls] = mean / (mean.norm() + 1e-8);
  }
  return means;
}

absl::Status IncrementalMethod::EndStage(int stage, const StepInfo& info) {
  // Resumed from a checkpoint taken after this stage ended: its aligning,
  // memory and metrics are already in the restored state (aligning twice
  // would be harmless, §2.5 Trap 5, but the stage's metrics would repeat).
  if (completed_stages_ > stage) return absl::OkStatus();
  const int64_t known = scenario_.KnownBefore(stage);
  const int64_t total = scenario_.TotalAfter(stage);
  StageResult r;
  r.stage = stage;
  r.seen_classes = total;
  r.ce_mean = loss_steps_ > 0 ? ce_sum_ / double(loss_steps_) : 0;
  r.kd_mean = loss_steps_ > 0 ? kd_sum_ / double(loss_steps_) : 0;

  // One pass over the seen classes' eval data; logits before and after WA
  // come from the same features (WA only rescales fc rows).
  std::vector<int64_t> eval_idx;
  for (int64_t k = 0; k < total; ++k) {
    const auto& idx = eval_by_label_[static_cast<size_t>(scenario_.LabelOf(k))];
    eval_idx.insert(eval_idx.end(), idx.begin(), idx.end());
  }
  std::sort(eval_idx.begin(), eval_idx.end());
  at::Tensor features = ExtractFeatures(*net_, *ctx_.eval_data, eval_idx);
  at::Tensor labels = ctx_.eval_data->labels.to(at::kCPU).index_select(0, at::tensor(eval_idx, at::kLong));
  at::Tensor target = label_to_output_.to(at::kCPU).index_select(0, labels);
  at::Tensor is_new = target.ge(known);
  auto head_logits = [&]() {
    torch::NoGradGuard no_grad;
    auto& fc = net_->fc();
    at::Tensor w = fc->weight.detach().to(at::kCPU, at::kFloat);
    return fc->has_bias() ? at::linear(features, w, fc->bias.detach().to(at::kCPU, at::kFloat)) : at::linear(features, w);
  };
  // Health of the backbone: at §7.2 size an unstable step (huge logits on the
  // 3136-d unpooled cnn_small features) can kill every ReLU, after which all
  // classes score 0 and argmax names one class (acc = 1/C); say so plainly.
  r.feature_norm = features.size(0) > 0 ? features.norm(2, {1}).mean().item<double>() : 0.0;
  r.dead_feature_share = features.size(0) > 0 ? features.abs().amax(0).eq(0).to(at::kDouble).mean().item<double>() : 0.0;
  at::Tensor logits_before = head_logits();
  r.logit_scale = logits_before.numel() > 0 ? logits_before.abs().amax(1).mean().item<double>() : 0.0;
  at::Tensor pred_before = logits_before.argmax(1);
  r.acc_before_wa = Accuracy(pred_before, target, at::ones_like(target, at::kBool));
  r.new_pred_share_before_wa = pred_before.ge(known).to(at::kDouble).mean().item<double>();

  if (options_.weight_aligning && known > 0) {
    r.wa = AlignWeights(net_->fc()->weight, known, options_.wa);
  } else {
    r.wa.mean_old_norm_before = r.wa.mean_old_norm_after = MeanRowNorm(net_->fc()->weight, 0, known, options_.wa.norm);
    r.wa.mean_new_norm_before = r.wa.mean_new_norm_after = MeanRowNorm(net_->fc()->weight, known, total, options_.wa.norm);
    // The γ WA would apply: < 1 means the new rows out-grew the old ones.
    r.wa.raw_gamma = r.wa.mean_new_norm_before > 0 && known > 0 ? r.wa.mean_old_norm_before / r.wa.mean_new_norm_before : 1;
  }
  at::Tensor pred = head_logits().argmax(1);
  r.acc = Accuracy(pred, target, at::ones_like(target, at::kBool));
  r.old_acc = Accuracy(pred, target, ~is_new);
  r.new_acc = Accuracy(pred, target, is_new);
  r.new_pred_share = pred.ge(known).to(at::kDouble).mean().item<double>();

  if (absl::Status s = BuildMemory(stage); !s.ok()) return s;
  at::Tensor means = NmeClassMeans();
  at::Tensor dist = at::cdist(NormalizeFeatures(features), means);
  r.nme_acc = Accuracy(dist.argmin(1), target, at::ones_like(target, at::kBool));

  std::map<std::string, double> v;
  v["incremental/stage"] = stage;
  v["incremental/seen_classes"] = double(total);
  v["incremental/acc"] = r.acc;
  v["incremental/acc_before_wa"] = r.acc_before_wa;
  if (known > 0) v["incremental/old_acc"] = r.old_acc;
  v["incremental/new_acc"] = r.new_acc;
  v["incremental/new_pred_share"] = r.new_pred_share;
  v["incremental/new_pred_share_before_wa"] = r.new_pred_share_before_wa;
  v["incremental/new_class_share"] = double(total - known) / double(total);
  v["incremental/nme_acc"] = r.nme_acc;
  v["incremental/gamma"] = r.wa.gamma;
  v["incremental/gamma_raw"] = r.wa.raw_gamma;
  v["incremental/old_norm_before"] = r.wa.mean_old_norm_before;
  v["incremental/new_norm_before"] = r.wa.mean_new_norm_before;
  v["incremental/old_norm_after"] = r.wa.mean_old_norm_after;
  v["incremental/new_norm_after"] = r.wa.mean_new_norm_after;
  v["incremental/ce_mean"] = r.ce_mean;
  if (known > 0 && options_.kd) v["incremental/kd_mean"] = r.kd_mean;
  v["incremental/memory_size"] = double(memory_.size());
  v["incremental/feature_norm"] = r.feature_norm;
  v["incremental/dead_feature_share"] = r.dead_feature_share;
  v["incremental/logit_scale"] = r.logit_scale;
  v[absl::StrCat("incremental/acc_stage_", stage)] = r.acc;
  results_.push_back(r);
  if (ctx_.events != nullptr) {
    if (absl::Status s = ctx_.events->EmitScalars(info.step, double(info.epoch), v); !s.ok()) return s;
    ctx_.events->EmitLog("info", absl::StrFormat("incremental stage %d: acc %.4f (before WA %.4f) old %.4f new %.4f "
                                                 "new-share %.3f gamma %.4f nme %.4f memory %d",
                                                 stage, r.acc, r.acc_before_wa, r.old_acc, r.new_acc,
                                                 r.new_pred_share, r.wa.gamma, r.nme_acc, memory_.size()))
        .IgnoreError();  // a log line is best effort; the metrics above are not
    if (r.dead_feature_share >= 1.0) {
      ctx_.events->EmitLog("warning", absl::StrFormat("incremental stage %d: every feature is 0 on the eval data (all "
                                                      "ReLUs dead), so the classifier predicts one class; the step "
                                                      "was too large: lower optimizer.lr or momentum", stage))
          .IgnoreError();
    }
  }

  // The aligned model is the next stage's KD teacher (§2.5 Trap 2).
  if (stage + 1 < scenario_.num_stages()) {
    auto teacher = BuildNet(total);
    if (!teacher.ok()) return teacher.status();
    models::CopyModuleState(*net_, **teacher);
    teacher_ = *teacher;
    teacher_->eval();
    for (auto& p : teacher_->parameters()) p.set_requires_grad(false);
  }
  completed_stages_ = stage + 1;
  return absl::OkStatus();
}

absl::Status IncrementalMethod::OnTrainEnd(const StepInfo& info) {
  if (results_.empty() || ctx_.events == nullptr) return absl::OkStatus();
  double sum = 0, nme_sum = 0;
  for (const auto& r : results_) {
    sum += r.acc;
    nme_sum += r.nme_acc;
  }
  std::map<std::string, double> v;
  // Average incremental accuracy includes stage 0 (PyCIL; §2.3 CHOICE).
  v["incremental/avg_inc_acc"] = sum / double(results_.size());
  v["incremental/avg_inc_nme_acc"] = nme_sum / double(results_.size());
  v["incremental/final_acc"] = results_.back().acc;
  v["incremental/final_nme_acc"] = results_.back().nme_acc;
  v["incremental/stages_completed"] = double(results_.size());
  return ctx_.events->EmitScalars(info.step, double(info.epoch), v);
}

namespace {

// A StageResult as one checkpoint row. Every field, so a resumed run's
// results() equal an uninterrupted run's. Checkpoints written before the
// last 8 columns existed (12 columns) still load; the missing ones stay 0.
constexpr int64_t kResultColumns = 20;

std::vector<double> ResultRow(const StageResult& r) {
  return {double(r.stage), double(r.seen_classes), r.acc, r.acc_before_wa, r.old_acc, r.new_acc,
          r.new_pred_share, r.new_pred_share_before_wa, r.nme_acc, r.wa.gamma, r.ce_mean, r.kd_mean,
          r.wa.raw_gamma, r.wa.mean_old_norm_before, r.wa.mean_new_norm_before, r.wa.mean_old_norm_after,
          r.wa.mean_new_norm_after, r.feature_norm, r.dead_feature_share, r.logit_scale};
}

StageResult ResultFromRow(const std::vector<double>& row) {
  auto at = [&](size_t i) { return i < row.size() ? row[i] : 0.0; };
  StageResult r;
  r.stage = int64_t(at(0));
  r.seen_classes = int64_t(at(1));
  r.acc = at(2);
  r.acc_before_wa = at(3);
  r.old_acc = at(4);
  r.new_acc = at(5);
  r.new_pred_share = at(6);
  r.new_pred_share_before_wa = at(7);
  r.nme_acc = at(8);
  r.wa.gamma = at(9);
  r.ce_mean = at(10);
  r.kd_mean = at(11);
  r.wa.raw_gamma = row.size() > 12 ? at(12) : r.wa.gamma;
  r.wa.mean_old_norm_before = at(13);
  r.wa.mean_new_norm_before = at(14);
  r.wa.mean_old_norm_after = at(15);
  r.wa.mean_new_norm_after = at(16);
  r.feature_norm = at(17);
  r.dead_feature_share = at(18);
  r.logit_scale = at(19);
  return r;
}

}  // namespace

absl::Status IncrementalMethod::SaveState(torch::serialize::OutputArchive* archive) const {
  try {
    archive->write("completed_stages", at::tensor({completed_stages_}, at::kLong));
    torch::serialize::OutputArchive memory;
    memory_.Save(memory);
    archive->write("memory", memory);
    std::vector<double> rows;
    for (const auto& r : results_) {
      const std::vector<double> row = ResultRow(r);
      rows.insert(rows.end(), row.begin(), row.end());
    }
    archive->write("results", at::tensor(rows, at::kDouble).reshape({int64_t(results_.size()), kResultColumns}));
    if (teacher_ != nullptr) {
      archive->write("teacher_classes", at::tensor({teacher_->fc()->out_features()}, at::kLong));
      torch::serialize::OutputArchive teacher;
      teacher_->save(teacher);
      archive->write("teacher", teacher);
    }
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("incremental method state: ", e.what_without_backtrace()));
  }
}

absl::Status IncrementalMethod::LoadState(torch::serialize::InputArchive* archive) {
  try {
    at::Tensor completed, results;
    archive->read("completed_stages", completed);
    completed_stages_ = completed.item<int64_t>();
    torch::serialize::InputArchive memory;
    archive->read("memory", memory);
    if (absl::Status s = memory_.Load(memory); !s.ok()) return s;
    archive->read("results", results);
    results_.clear();
    results = results.to(at::kDouble).contiguous();
    const int64_t columns = results.dim() == 2 ? results.size(1) : 0;
    for (int64_t i = 0; i < results.size(0); ++i) {
      const double* row = results[i].data_ptr<double>();
      results_.push_back(ResultFromRow(std::vector<double>(row, row + columns)));
    }
    at::Tensor teacher_classes;
    if (archive->try_read("teacher_classes", teacher_classes)) {
      auto teacher = BuildNet(teacher_classes.item<int64_t>());
      if (!teacher.ok()) return teacher.status();
      torch::serialize::InputArchive t;
      archive->read("teacher", t);
      (*teacher)->load(t);
      (*teacher)->to(ctx_.device);
      teacher_ = *teacher;
      teacher_->eval();
      for (auto& p : teacher_->parameters()) p.set_requires_grad(false);
    } else {
      teacher_ = nullptr;
    }
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("incremental method state: ", e.what_without_backtrace()));
  }
}

PENDULUM_REGISTER_METHOD(incremental, IncrementalMethod::Create);

}  // namespace pendulum::train::incremental
