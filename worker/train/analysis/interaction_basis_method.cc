#include "worker/train/analysis/interaction_basis_method.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>
#include <torch/serialize/output-archive.h>
#include <torch/utils.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "worker/train/analysis/basis_ablation.h"
#include "worker/train/analysis/linear_chain.h"
#include "worker/train/core/method_registry.h"
#include "worker/train/data/data_loader.h"

namespace pendulum::train::analysis {
namespace {

std::vector<double> ToVector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kDouble).contiguous().flatten().cpu();  // host pointer below
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// Share of the total edge mass in the top `frac` of edges, and the Gini coefficient.
void EdgeSparsity(const at::Tensor& e, double* top1, double* top5, double* gini) {
  at::Tensor v = std::get<0>(e.flatten().to(at::kDouble).sort(0, /*descending=*/true));
  const double total = v.sum().item<double>();
  const int64_t n = v.numel();
  auto top = [&](double f) {
    const int64_t k = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(f * n)));
    return total > 0 ? v.slice(0, 0, k).sum().item<double>() / total : 0.0;
  };
  *top1 = top(0.01);
  *top5 = top(0.05);
  // Gini over ascending values: Σ (2i − n − 1) x_i / (n Σ x).
  at::Tensor asc = v.flip({0});
  at::Tensor i = at::arange(1, n + 1, at::kDouble);
  *gini = total > 0 ? ((2 * i - n - 1) * asc).sum().item<double>() / (n * total) : 0.0;
}

}  // namespace

absl::StatusOr<InteractionBasisRunOptions> InteractionBasisMethod::OptionsFromSpec(
    const v1::InteractionBasisMethod& m) {
  InteractionBasisRunOptions o;
  const std::string p = "spec.method.interaction_basis.";
  if (m.num_samples() > 0) o.num_samples = m.num_samples();
  if (m.has_eps_d()) o.basis.eps_d = m.eps_d();
  if (m.has_eps_lambda()) o.basis.eps_lambda = m.eps_lambda();
  o.basis.centre = m.centre();
  if (!m.integration().empty() && m.integration() != "gradient") {
    return absl::InvalidArgumentError(absl::StrCat(
        p, "integration: got \"", m.integration(),
        "\"; only gradient (α = 1) is implemented (integrated gradients are not yet)"));
  }
  o.modularity.seed = m.cluster_seed();
  if (m.has_edge_eps()) {
    if (!(m.edge_eps() > 0)) return absl::InvalidArgumentError(absl::StrCat(p, "edge_eps: got ", m.edge_eps(), ", must be > 0"));
    o.modularity.edge_eps = m.edge_eps();
  }
  if (m.has_edge_eps_relative()) {
    if (!(m.edge_eps_relative() > 0 && m.edge_eps_relative() < 1)) {
      return absl::InvalidArgumentError(absl::StrCat(p, "edge_eps_relative: got ", m.edge_eps_relative(), ", must be in (0, 1)"));
    }
    o.modularity.edge_eps_relative = m.edge_eps_relative();
  }
  if (m.has_resolution()) {
    if (!(m.resolution() > 0)) return absl::InvalidArgumentError(absl::StrCat(p, "resolution: got ", m.resolution(), ", must be > 0"));
    o.modularity.resolution = m.resolution();
  }
  if (m.split() == "eval") {
    o.use_eval_split = true;
  } else if (!m.split().empty() && m.split() != "train") {
    return absl::InvalidArgumentError(absl::StrCat(p, "split: got \"", m.split(), "\", must be train or eval"));
  }
  for (uint32_t k : m.ablation_kept()) o.ablation_kept.push_back(k);
  return o;
}

absl::Status InteractionBasisMethod::Setup(const TrainContext& ctx, ModelPtr* model) {
  PENDULUM_RETURN_IF_ERROR(TrainingMethod::Setup(ctx, model));
  const std::string& arch = ctx.spec->model().arch();
  if (arch != "mlp" && arch != "block_mlp") {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec.model.arch: interaction_basis supports mlp and block_mlp (Linear + ReLU), got '", arch, "'"));
  }
  if (!ctx.spec->model().activation().empty() && ctx.spec->model().activation() != "relu") {
    return absl::InvalidArgumentError("spec.model.activation: interaction_basis needs relu");
  }
  const Dataset* data = o_.use_eval_split ? ctx.eval_data : ctx.train_data;
  if (data == nullptr || data->size() == 0) {
    return absl::FailedPreconditionError("interaction_basis: the chosen data split is empty");
  }
  const int64_t n = std::min<int64_t>(o_.num_samples, data->size());
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  DataLoaderOptions lo;
  lo.batch_size = n;
  lo.shuffle = false;
  lo.drop_last = false;
  DataLoader loader(data, idx, lo);
  loader.StartEpoch(0);
  std::optional<Batch> batch = loader.Next();
  if (!batch.has_value()) return absl::InternalError("interaction_basis: the data loader gave no batch");
  (*model)->eval();
  PENDULUM_RETURN_IF_ERROR(Analyse(**model, batch->x, batch->y));
  (*model)->train();
  for (const auto& p : (*model)->parameters()) frozen_values_.push_back(p.detach().clone());
  return absl::OkStatus();
}

absl::Status InteractionBasisMethod::Analyse(torch::nn::Module& model, const at::Tensor& x,
                                             const at::Tensor& y) {
  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  PENDULUM_ASSIGN_OR_RETURN(LinearChain chain, LinearChainFromModule(model));
  const at::Tensor inputs = x.to(at::kDouble).reshape({x.size(0), -1});
  PENDULUM_ASSIGN_OR_RETURN(InteractionBasisResult res, ComputeInteractionBasis(chain, inputs, o_.basis));
  const double basis_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const size_t L = chain.num_layers();
  std::vector<at::Tensor> edges;
  for (size_t l = 0; l < L; ++l) edges.push_back(res.layers[l].edges);
  InteractionGraph graph =
      BuildInteractionGraph(edges, o_.modularity.edge_eps, o_.modularity.edge_eps_relative);
  if (o_.basis.centre) {
    // Centred layers keep the constant (bias) direction as their first
    // direction; it feeds every module, so it would merge them. It is not a
    // feature: leave it out of the module graph (it stays its own community).
    for (size_t l = 0; l < L; ++l) {
      const int64_t c = graph.layer_offset[l];
      graph.adjacency.select(0, c).zero_();
      graph.adjacency.select(1, c).zero_();
    }
  }
  Clustering clusters = FindModules(graph.adjacency, o_.modularity);

  nlohmann::json summary;
  summary["label"] = "interaction basis (jacobian, gradient integration, squared edges); "
                     "equations reconstructed from ApolloResearch/rib (methods.md §6 GAP)";
  summary["num_samples"] = inputs.size(0);
  summary["centre"] = o_.basis.centre;
  summary["eps_d"] = o_.basis.eps_d;
  summary["eps_lambda"] = o_.basis.eps_lambda;
  summary["basis_seconds"] = basis_s;
  scalars_["ib/basis_seconds"] = basis_s;
  const at::Tensor labels = y.defined() ? y.to(at::kLong) : at::Tensor();
  for (size_t l = 0; l <= L; ++l) {
    const InteractionLayer& layer = res.layers[l];
    nlohmann::json j;
    j["width"] = layer.width;
    j["r"] = layer.r;
    j["r_prime"] = layer.r_prime;
    j["d"] = ToVector(layer.d_all);
    if (layer.lambda_all.defined()) j["lambda"] = ToVector(layer.lambda_all);
    // r' at several ε (§6.4).
    if (layer.lambda_all.defined()) {
      for (double eps : {1e-12, 1e-9, 1e-6, 1e-3}) {
        const int64_t r = (layer.lambda_all > eps).sum().item<int64_t>();
        j["r_prime_at_eps"][absl::StrCat(eps)] = r;
        scalars_[absl::StrCat("ib/r_prime_eps", eps, "/layer", l)] = static_cast<double>(r);
      }
    }
    scalars_[absl::StrCat("ib/r/layer", l)] = static_cast<double>(layer.r);
    scalars_[absl::StrCat("ib/r_prime/layer", l)] = static_cast<double>(layer.r_prime);
    scalars_[absl::StrCat("ib/width/layer", l)] = static_cast<double>(layer.width);
    if (l < L) {
      double top1, top5, gini;
      EdgeSparsity(layer.edges, &top1, &top5, &gini);
      j["edges_top1_share"] = top1;
      j["edges_top5_share"] = top5;
      j["edges_gini"] = gini;
      scalars_[absl::StrCat("ib/edges_top1_share/layer", l)] = top1;
      scalars_[absl::StrCat("ib/edges_top5_share/layer", l)] = top5;
      scalars_[absl::StrCat("ib/edges_gini/layer", l)] = gini;
      // Ablation curves: interaction vs PCA vs neuron basis.
      std::vector<int64_t> ks = o_.ablation_kept;
      if (ks.empty()) {
        for (int64_t k = 1; k < layer.ext_width; k *= 2) ks.push_back(k);
        ks.push_back(layer.ext_width);
      }
      const std::vector<std::pair<std::string, NodeBasis>> bases = {
          {"interaction", layer.basis},
          {"pca", PcaBasis(layer.gram, o_.basis.eps_d)},
          {"neuron", NeuronBasisByMoment(layer.gram)}};
      for (const auto& [name, basis] : bases) {
        AblationCurve c = AblateBasis(chain, inputs, labels, l, layer.mean, basis, ks, name);
        nlohmann::json cj;
        cj["kept"] = c.kept;
        cj["output_mse"] = c.output_mse;
        if (!c.accuracy.empty()) cj["accuracy"] = c.accuracy;
        j["ablation"][name] = cj;
        for (size_t i = 0; i < c.kept.size(); ++i) {
          const std::string key = absl::StrCat("ib/ablation/", name, "/layer", l, "/k", c.kept[i]);
          scalars_[key + "/output_mse"] = c.output_mse[i];
          if (!c.accuracy.empty()) scalars_[key + "/acc"] = c.accuracy[i];
        }
      }
    }
    summary["layers"].push_back(j);
  }
  std::map<int64_t, int64_t> sizes;
  for (int64_t c : clusters.community) ++sizes[c];
  std::vector<int64_t> size_list;
  for (const auto& [c, s] : sizes) size_list.push_back(s);
  summary["modularity"] = {{"q", clusters.q},
                           {"num_communities", clusters.num_communities},
                           {"community_sizes", size_list},
                           {"community", clusters.community},
                           {"layer_offset", graph.layer_offset},
                           {"edge_eps", o_.modularity.edge_eps},
                           {"edge_eps_relative", o_.modularity.edge_eps_relative},
                           {"resolution", o_.modularity.resolution},
                           {"seed", o_.modularity.seed},
                           {"optimiser", "seeded Louvain (CHOICE instead of Leiden)"}};
  scalars_["ib/q"] = clusters.q;
  scalars_["ib/num_communities"] = static_cast<double>(clusters.num_communities);
  // Communities of more than one direction are the modules worth naming.
  std::vector<int64_t> modules;
  for (int64_t s : size_list) {
    if (s > 1) modules.push_back(s);
  }
  std::sort(modules.rbegin(), modules.rend());
  scalars_["ib/num_modules"] = static_cast<double>(modules.size());
  std::string dims;
  for (size_t l = 0; l <= L; ++l) {
    absl::StrAppend(&dims, l == 0 ? "" : ", ", res.layers[l].r_prime, "/", res.layers[l].width);
  }
  summary_text_ = absl::StrCat(
      "interaction basis on ", inputs.size(0), " samples: Q ", absl::SixDigits(clusters.q), ", ",
      modules.size(), " modules of >1 direction (sizes ", absl::StrJoin(modules, ", "), "; ",
      clusters.num_communities, " communities in all); kept r'/width per node layer: ", dims,
      ctx_.out_dir.empty() ? ""
                           : absl::StrCat("; artifacts interaction_basis/summary.json and interaction_basis/layer0..",
                                          L, ".pt (pendulum artifact RUN NAME --out FILE)"),
      " [rib-code reconstruction, methods.md §6 GAP]");

  if (!ctx_.out_dir.empty()) {
    const std::filesystem::path dir = ctx_.out_dir / "interaction_basis";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("interaction_basis: creating ", dir.string(), ": ", ec.message()));
    {
      std::ofstream out(dir / "summary.json");
      out << summary.dump(1) << "\n";
      if (!out) return absl::InternalError(absl::StrCat("interaction_basis: writing ", (dir / "summary.json").string()));
    }
    artifacts_.emplace_back("interaction_basis/summary.json", (dir / "summary.json").string());
    try {
      for (size_t l = 0; l <= L; ++l) {
        const InteractionLayer& layer = res.layers[l];
        torch::serialize::OutputArchive a;
        a.write("C", layer.basis.c);
        a.write("C_pinv", layer.basis.c_pinv);
        a.write("gram", layer.gram);
        if (layer.u.defined()) {
          a.write("U", layer.u);
          a.write("D", layer.d);
          a.write("V", layer.v);
          a.write("Lambda", layer.lambda);
          a.write("grad_gram", layer.grad_gram);
          a.write("edges", layer.edges);
        }
        a.save_to((dir / absl::StrCat("layer", l, ".pt")).string());
        artifacts_.emplace_back(absl::StrCat("interaction_basis/layer", l, ".pt"),
                                (dir / absl::StrCat("layer", l, ".pt")).string());
      }
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("interaction_basis: saving tensors: ", e.what_without_backtrace()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LossOutput> InteractionBasisMethod::ComputeLoss(const Batch& batch, const StepInfo&) {
  LossOutput out;
  out.logits = model_->Forward(batch.x).logits;
  out.loss = out.logits.sum() * 0.0;  // analysis run: nothing to train
  return out;
}

absl::Status InteractionBasisMethod::AfterOptimizerStep(const StepInfo&) {
  // Weight decay or momentum could still move the weights; put them back.
  torch::NoGradGuard no_grad;
  const auto params = model_->parameters();
  for (size_t i = 0; i < params.size() && i < frozen_values_.size(); ++i) {
    params[i].copy_(frozen_values_[i].to(params[i].device()));
  }
  return absl::OkStatus();
}

absl::Status InteractionBasisMethod::OnTrainEnd(const StepInfo& info) {
  if (ctx_.events == nullptr) return absl::OkStatus();
  PENDULUM_RETURN_IF_ERROR(ctx_.events->EmitScalars(info.step, info.epoch_fraction(), scalars_));
  // C, C⁺, Λ, U, D, V, the Grams and edges per layer (layerN.pt) and the
  // clusters (summary.json) go to the server as named artifacts.
  for (const auto& [name, path] : artifacts_) {
    PENDULUM_RETURN_IF_ERROR(ctx_.events->EmitArtifact(info.step, name, path, "analysis"));
  }
  return ctx_.events->EmitLog(
      "info", absl::StrCat("interaction_basis: Q = ", scalars_["ib/q"], ", ",
                           scalars_["ib/num_communities"], " communities; ", artifacts_.size(),
                           " artifacts in ", (ctx_.out_dir / "interaction_basis").string()));
}

PENDULUM_REGISTER_METHOD(interaction_basis, [](const TrainContext& ctx)
                                                -> absl::StatusOr<std::unique_ptr<TrainingMethod>> {
  PENDULUM_ASSIGN_OR_RETURN(InteractionBasisRunOptions o,
                            InteractionBasisMethod::OptionsFromSpec(ctx.spec->method().interaction_basis()));
  return std::unique_ptr<TrainingMethod>(std::make_unique<InteractionBasisMethod>(o));
});

}  // namespace pendulum::train::analysis
