#pragma once
// Base of AdamP and SGDP: a torch::optim::Optimizer that also keeps the
// §3.5 projection statistics (ProjectionStatsSource). Subclasses call
// BeginStepStats() at the top of step(), SnapshotForStats() before changing a
// parameter and RecordParamStats() after. As OptimizerMetrics it hands the
// trainer those statistics as scalars ("<type>/fraction_projected",
// "<type>/<param name>/norm", ...). Single-threaded like any optimizer.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/Tensor.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>

#include "worker/train/core/optimizer_registry.h"
#include "worker/train/optim/projection_stats.h"

namespace pendulum::train::optim {

class ProjectedOptimizer : public torch::optim::Optimizer,
                           public ProjectionStatsSource,
                           public OptimizerMetrics {
 public:
  // Scalar prefix ("adamp", "sgdp") and names[g][i] of tensor i in group g,
  // used by AppendMetricScalars (unnamed tensors become "g<g>.p<i>").
  void set_metric_names(std::string prefix, std::vector<std::vector<std::string>> names) {
    metric_prefix_ = std::move(prefix);
    metric_names_ = std::move(names);
  }
  // OptimizerMetrics: detailed stats for the next step only; the scalars
  // cover the counters since the previous metric step (then reset).
  void PrepareMetricStep() override { set_collect_step_stats(true); }
  void AppendMetricScalars(std::map<std::string, double>* values) override;

  const std::vector<ParamStepStats>& last_step_stats() const override { return last_stats_; }
  const ProjectionCounters& projection_counters() const override { return counters_; }
  int64_t stepped_numel() const override { return stepped_numel_; }
  void ResetProjectionCounters() override {
    counters_ = ProjectionCounters();
    stepped_numel_ = 0;
  }
  void set_collect_step_stats(bool on) override { collect_step_stats_ = on; }

 protected:
  ProjectedOptimizer(std::vector<torch::optim::OptimizerParamGroup> groups,
                     std::unique_ptr<torch::optim::OptimizerOptions> defaults)
      : torch::optim::Optimizer(std::move(groups), std::move(defaults)) {}

  void BeginStepStats() { last_stats_.clear(); }
  // torch's optimizer load() restores per-parameter state only; this also
  // restores each group's saved options (lr, decay, ...), as Python's
  // load_state_dict does, so a resumed run continues with what it saved.
  template <typename Options>
  void RestoreGroupOptions(torch::serialize::InputArchive& archive) {
    torch::serialize::InputArchive groups;
    if (!archive.try_read("param_groups", groups)) return;
    for (size_t i = 0; i < param_groups_.size(); ++i) {
      torch::serialize::InputArchive group, options_archive;
      if (!groups.try_read("param_groups/" + std::to_string(i), group)) return;
      if (!group.try_read("options", options_archive)) return;
      Options options(0);
      options.serialize(options_archive);
      param_groups_[i].set_options(std::make_unique<Options>(options));
    }
  }
  // A copy of p taken before the update when detailed stats are on; else undefined.
  at::Tensor SnapshotForStats(const at::Tensor& p) const;
  void RecordParamStats(int group, int index, const at::Tensor& p, const at::Tensor& before,
                        const ProjectionOutcome& outcome);

 private:
  std::string metric_prefix_ = "adamp";
  std::vector<std::vector<std::string>> metric_names_;
  bool collect_step_stats_ = false;
  std::vector<ParamStepStats> last_stats_;
  ProjectionCounters counters_;
  int64_t stepped_numel_ = 0;
};

}  // namespace pendulum::train::optim
