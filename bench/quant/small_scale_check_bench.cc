// methods.md §7.1, the OFQ small-scale check, run through the real trainer:
// every run is a pendulum-train process on an example spec of examples/ofq/
// (the same files the sweep submits), chained as the OFQ pipeline is:
//   <model>_fp_pretrain → <model>_qat_lsq, <model>_qat_statsq
//   [, vit_qat_statsq_qkr] (each --init from the FP checkpoint)
//   → <model>_cga (--init from the StatsQ QAT checkpoint)
// for model mlp (784-256-256-10, W2/A4) and vit (vit_tiny28, W2A2), seeds
// 1, 2, 3. Results are read back from each run's events.pb: final eval_acc,
// the oscillation ratio (tau 0.005) and flip rate over the 2-bit weights
// (the 8-bit first layer/patch embedding and heads are LSQ in every
// configuration, so they are left out of the comparison), the same for the
// attention weights (QKR claim), and CGA's free fraction. Prints one JSON
// line per run and a summary (mean ± std over seeds) with the qualitative
// checks: StatsQ oscillates less than LSQ; CGA drives flips to near zero.
//
// This replaces an earlier stand-alone re-implementation of the training
// loop (which crashed), so that the check measures what users run.
//
//   ofq_small_scale_bench [--trainer PATH] [--examples DIR] [--work DIR]
//       [--models mlp,vit] [--seeds 1,2,3] [--jobs 2] [--threads 1]
//       [--train-subset N] [--eval-subset N] [--epochs-scale F] [--start-step S]
//       [--configs lsq,statsq,statsq+qkr,statsq+cga] [--qat-set key=value ...]
// Defaults: this build's pendulum-train, the source tree's examples/ofq, a
// fresh temp dir, the examples' sizes. --jobs runs seeds in parallel, each
// trainer with --threads torch threads. A smaller check (a few minutes):
//   --train-subset 5000 --eval-subset 2000 --start-step 50
// (--start-step: QAT steps before the oscillation count starts; the examples
// use 200 of 4×156 steps). --configs picks the QAT/CGA configurations (FP
// always runs; statsq+cga needs statsq). --qat-set (repeatable) overrides a
// spec field of the QAT runs only, for diagnostics (e.g.
// optimizer.weight_decay=0).
//
// flip_rate is the mean of the 2-bit flip rate over the OscillationStats
// events inside the counting window (step >= start_step; every event for
// CGA runs, which count from their first step).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "proto/io/event_stream.h"
#include "spec/run_spec_parser.h"

namespace fs = std::filesystem;
using pendulum::v1::TrainerEvent;

namespace {

struct Options {
  std::string trainer = std::string(PENDULUM_BINARY_DIR) + "/worker/train/pendulum-train";
  fs::path examples = fs::path(PENDULUM_SOURCE_DIR) / "examples" / "ofq";
  fs::path work;
  std::vector<std::string> models = {"mlp", "vit"};
  std::vector<int> seeds = {1, 2, 3};
  int jobs = 2;
  int threads = 1;
  int64_t train_subset = 0;  // 0: as in the example
  int64_t eval_subset = 0;
  double epochs_scale = 1.0;
  int64_t start_step = -1;   // method.ofq.oscillation.start_step of QAT runs; -1: as in the example
  std::set<std::string> configs = {"lsq", "statsq", "statsq+qkr", "statsq+cga"};
  std::vector<std::string> qat_overrides;  // --qat-set, QAT runs only
};

// What one run reported.
struct RunResult {
  bool ok = false;
  std::string error;
  std::string checkpoint;  // final checkpoint (absolute)
  double eval_acc = NAN;
  double osc_ratio = NAN;       // tau 0.005, over the low-bit weights, at the end
  double flip_rate = NAN;       // mean over OscillationStats events, low-bit weights
  double osc_ratio_attn = NAN;  // same, attention weights only (ViT)
  double cga_free_frac = NAN;   // mean over the run (CGA only)
  // Where the oscillating 2-bit weights sit at the end: share of the
  // oscillating weights (f > 0.005) per rounding threshold, in code units of
  // the latent (StatsQ: z, LSQ: clamp(W/s)); key "osc_at_thr_<t>".
  std::map<std::string, double> osc_at_thr;
  double seconds = 0;
  int64_t steps = 0;
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// fork/exec; stdout and stderr to `log`. Returns the exit status.
int RunProcess(const std::vector<std::string>& argv, const fs::path& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Aggregates per-layer statistics over the layers quantized at `bits`.
struct LayerAgg {
  double weighted_ratio = 0, weighted_flips = 0, n = 0;
};

RunResult Parse(const fs::path& out, int low_bits, int64_t count_from) {
  RunResult r;
  std::vector<TrainerEvent> events;
  size_t consumed = 0;
  auto st = pendulum::io::ParseDelimitedEvents(ReadFile(out / "events.pb"), &events, &consumed);
  if (!st.ok()) {
    r.error = std::string(st.message());
    return r;
  }
  std::map<std::string, int64_t> numel;  // from the final snapshots
  for (const auto& e : events) {
    if (!e.has_snapshot()) continue;
    int64_t n = 1;
    for (int64_t d : e.snapshot().shape()) n *= d;
    numel[e.snapshot().layer()] = n;
  }
  double flips_sum = 0, free_sum = 0;
  int flips_n = 0, free_n = 0;
  for (const auto& e : events) {
    if (e.has_scalars()) {
      const auto& v = e.scalars().values();
      if (auto it = v.find("eval_acc"); it != v.end()) r.eval_acc = it->second;
    } else if (e.has_checkpoint()) {
      r.checkpoint = (out / e.checkpoint().path()).string();
    } else if (e.has_finished()) {
      r.ok = e.finished().ok();
      r.error = e.finished().message();
      r.steps = e.finished().final_step();
    } else if (e.has_oscillation()) {
      const bool in_window = e.oscillation().step() >= count_from;
      std::map<std::string, double> thr;
      LayerAgg all, attn;
      bool cga = false;
      double free_w = 0, free_n_w = 0;
      for (const auto& l : e.oscillation().layers()) {
        const auto& v = l.values();
        auto bits = v.find("bits");
        if (bits == v.end() || int(bits->second) != low_bits || !numel.count(l.layer())) continue;
        const double n = double(numel[l.layer()]);
        for (LayerAgg* a : {&all, &attn}) {
          if (a == &attn && l.layer().find("attn") == std::string::npos) continue;
          a->weighted_ratio += v.at("osc_ratio_0.005") * n;
          a->weighted_flips += v.at("flip_rate") * n;
          a->n += n;
        }
        for (const auto& [key, value] : v) {
          if (key.rfind("osc_at_thr_", 0) == 0) thr[key] += value * n;
        }
        if (auto f = v.find("cga_free_frac"); f != v.end()) {
          cga = true;
          free_w += f->second * n;
          free_n_w += n;
        }
      }
      if (all.n > 0) {
        r.osc_ratio = all.weighted_ratio / all.n;
        if (in_window) {
          flips_sum += all.weighted_flips / all.n;
          ++flips_n;
        }
        // Share of the oscillating weights per threshold (last event wins).
        r.osc_at_thr.clear();
        double osc_total = 0;
        for (const auto& [key, w] : thr) osc_total += w;
        for (const auto& [key, w] : thr) r.osc_at_thr[key] = osc_total > 0 ? w / osc_total : 0.0;
      }
      if (attn.n > 0) r.osc_ratio_attn = attn.weighted_ratio / attn.n;
      if (cga && free_n_w > 0) {
        free_sum += free_w / free_n_w;
        ++free_n;
      }
    }
  }
  if (flips_n > 0) r.flip_rate = flips_sum / flips_n;
  if (free_n > 0) r.cga_free_frac = free_sum / free_n;
  return r;
}

std::mutex print_mu;

std::string Num(double v) {
  if (std::isnan(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

RunResult Train(const Options& o, const std::string& model, const std::string& config, const std::string& example,
                int seed, const std::string& init, int low_bits) {
  const fs::path dir = o.work / absl::StrCat(model, "-", config, "-seed", seed);
  fs::create_directories(dir);
  std::vector<std::string> overrides = {absl::StrCat("seed=", seed), absl::StrCat("resources.cpus=", o.threads),
                                        "logging.oscillation_every_steps=20"};
  if (o.train_subset > 0) overrides.push_back(absl::StrCat("data.train_subset=", o.train_subset));
  if (o.eval_subset > 0) overrides.push_back(absl::StrCat("data.eval_subset=", o.eval_subset));
  const bool qat = config != "fp" && config != "statsq+cga";
  if (o.start_step >= 0 && qat) {
    overrides.push_back(absl::StrCat("method.ofq.oscillation.start_step=", o.start_step));
  }
  if (qat) overrides.insert(overrides.end(), o.qat_overrides.begin(), o.qat_overrides.end());
  auto spec = pendulum::spec::LoadRunSpec(ReadFile(o.examples / example), overrides);
  RunResult r;
  if (!spec.ok()) {
    r.error = std::string(spec.status().message());
    return r;
  }
  if (o.epochs_scale != 1.0) {
    spec->mutable_schedule()->set_epochs(
        std::max<uint32_t>(1, uint32_t(std::lround(spec->schedule().epochs() * o.epochs_scale))));
  }
  {
    std::ofstream f(dir / "spec.pb", std::ios::binary);
    f << spec->SerializeAsString();
  }
  std::vector<std::string> argv = {o.trainer, "--spec", (dir / "spec.pb").string(), "--out", (dir / "out").string(),
                                   "--threads", std::to_string(o.threads)};
  if (!init.empty()) {
    argv.push_back("--init");
    argv.push_back(init);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = RunProcess(argv, dir / "train.log");
  const int64_t count_from =
      spec->has_method() && spec->method().has_ofq() ? int64_t(spec->method().ofq().oscillation().start_step()) : 0;
  r = Parse(dir / "out", low_bits, count_from);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (rc != 0) {
    r.ok = false;
    r.error = absl::StrCat("pendulum-train exit ", rc, " (", (dir / "train.log").string(), "): ", r.error);
  }
  std::vector<std::string> thr;
  for (const auto& [key, share] : r.osc_at_thr) thr.push_back(absl::StrCat("\"", key.substr(11), "\":", Num(share)));
  std::lock_guard<std::mutex> lock(print_mu);
  std::printf(
      "{\"model\":\"%s\",\"config\":\"%s\",\"seed\":%d,\"ok\":%s,\"steps\":%lld,\"seconds\":%.1f,\"eval_acc\":%s,"
      "\"osc_ratio\":%s,\"flip_rate\":%s,\"osc_ratio_attn\":%s,\"cga_free_frac\":%s,\"osc_share_by_threshold\":{%s}%s}\n",
      model.c_str(), config.c_str(), seed, r.ok ? "true" : "false", static_cast<long long>(r.steps), r.seconds,
      Num(r.eval_acc).c_str(), Num(r.osc_ratio).c_str(), Num(r.flip_rate).c_str(), Num(r.osc_ratio_attn).c_str(),
      Num(r.cga_free_frac).c_str(), absl::StrJoin(thr, ",").c_str(),
      r.ok ? "" : absl::StrCat(",\"error\":\"", r.error.substr(0, 300), "\"").c_str());
  std::fflush(stdout);
  return r;
}

using Results = std::map<std::string, std::map<std::string, std::vector<RunResult>>>;  // model → config → seeds

void RunSeed(const Options& o, const std::string& model, int seed, Results* results, std::mutex* mu) {
  const int low_bits = 2;
  auto add = [&](const std::string& config, const RunResult& r) {
    std::lock_guard<std::mutex> lock(*mu);
    (*results)[model][config].push_back(r);
  };
  RunResult fp = Train(o, model, "fp", model + "_fp_pretrain.yaml", seed, "", low_bits);
  add("fp", fp);
  if (!fp.ok || fp.checkpoint.empty()) return;
  auto want = [&](const std::string& c) { return o.configs.count(c) > 0; };
  if (want("lsq")) add("lsq", Train(o, model, "lsq", model + "_qat_lsq.yaml", seed, fp.checkpoint, low_bits));
  RunResult statsq;
  if (want("statsq") || want("statsq+cga")) {
    statsq = Train(o, model, "statsq", model + "_qat_statsq.yaml", seed, fp.checkpoint, low_bits);
    add("statsq", statsq);
  }
  if (model == "vit" && want("statsq+qkr")) {
    add("statsq+qkr", Train(o, model, "statsq+qkr", "vit_qat_statsq_qkr.yaml", seed, fp.checkpoint, low_bits));
  }
  if (want("statsq+cga") && statsq.ok && !statsq.checkpoint.empty()) {
    add("statsq+cga", Train(o, model, "statsq+cga", model + "_cga.yaml", seed, statsq.checkpoint, low_bits));
  }
}

std::string MeanStd(const std::vector<RunResult>& runs, double RunResult::*field) {
  std::vector<double> v;
  for (const auto& r : runs) {
    if (r.ok && !std::isnan(r.*field)) v.push_back(r.*field);
  }
  if (v.empty()) return "null";
  double m = 0;
  for (double x : v) m += x;
  m /= v.size();
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  const double sd = v.size() > 1 ? std::sqrt(ss / (v.size() - 1)) : 0.0;
  return absl::StrCat("{\"mean\":", Num(m), ",\"std\":", Num(sd), ",\"n\":", v.size(), "}");
}

double Mean(const std::vector<RunResult>& runs, double RunResult::*field) {
  double s = 0;
  int n = 0;
  for (const auto& r : runs) {
    if (r.ok && !std::isnan(r.*field)) {
      s += r.*field;
      ++n;
    }
  }
  return n ? s / n : NAN;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--trainer") o.trainer = value;
    else if (flag == "--examples") o.examples = value;
    else if (flag == "--work") o.work = value;
    else if (flag == "--models") o.models = absl::StrSplit(value, ',');
    else if (flag == "--seeds") {
      o.seeds.clear();
      for (absl::string_view s : absl::StrSplit(value, ',')) o.seeds.push_back(std::atoi(std::string(s).c_str()));
    } else if (flag == "--jobs") o.jobs = std::max(1, std::atoi(value.c_str()));
    else if (flag == "--threads") o.threads = std::max(1, std::atoi(value.c_str()));
    else if (flag == "--train-subset") o.train_subset = std::atoll(value.c_str());
    else if (flag == "--eval-subset") o.eval_subset = std::atoll(value.c_str());
    else if (flag == "--epochs-scale") o.epochs_scale = std::atof(value.c_str());
    else if (flag == "--start-step") o.start_step = std::atoll(value.c_str());
    else if (flag == "--configs") {
      o.configs.clear();
      for (absl::string_view c : absl::StrSplit(value, ',')) o.configs.insert(std::string(c));
    } else if (flag == "--qat-set") o.qat_overrides.push_back(value);
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (!fs::exists(o.trainer)) {
    std::printf("{\"bench\":\"ofq_small_scale_check\",\"skipped\":\"pendulum-train not built at %s\"}\n",
                o.trainer.c_str());
    return 0;
  }
  if (o.work.empty()) o.work = fs::temp_directory_path() / absl::StrCat("ofq-small-scale-", getpid());
  fs::create_directories(o.work);
  const auto t0 = std::chrono::steady_clock::now();
  Results results;
  std::mutex mu;
  for (const std::string& model : o.models) {
    // Seeds in parallel, --jobs at a time.
    for (size_t i = 0; i < o.seeds.size(); i += o.jobs) {
      std::vector<std::thread> threads;
      for (size_t j = i; j < std::min(o.seeds.size(), i + size_t(o.jobs)); ++j) {
        threads.emplace_back(RunSeed, std::cref(o), model, o.seeds[j], &results, &mu);
      }
      for (auto& t : threads) t.join();
    }
  }
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string summary;
  bool all_ok = true;
  std::vector<std::string> checks;
  for (const auto& [model, configs] : results) {
    std::vector<std::string> parts;
    for (const auto& [config, runs] : configs) {
      for (const auto& r : runs) all_ok &= r.ok;
      parts.push_back(absl::StrCat("\"", config, "\":{\"eval_acc\":", MeanStd(runs, &RunResult::eval_acc),
                                   ",\"osc_ratio\":", MeanStd(runs, &RunResult::osc_ratio),
                                   ",\"flip_rate\":", MeanStd(runs, &RunResult::flip_rate),
                                   ",\"osc_ratio_attn\":", MeanStd(runs, &RunResult::osc_ratio_attn),
                                   ",\"cga_free_frac\":", MeanStd(runs, &RunResult::cga_free_frac), "}"));
    }
    absl::StrAppend(&summary, summary.empty() ? "" : ",", "\"", model, "\":{", absl::StrJoin(parts, ","), "}");
    auto get = [&](const std::string& c) -> const std::vector<RunResult>& {
      static const std::vector<RunResult> kEmpty;
      auto it = configs.find(c);
      return it == configs.end() ? kEmpty : it->second;
    };
    const double lsq = Mean(get("lsq"), &RunResult::osc_ratio), sq = Mean(get("statsq"), &RunResult::osc_ratio);
    const double qat_flips = Mean(get("statsq"), &RunResult::flip_rate);
    const double cga_flips = Mean(get("statsq+cga"), &RunResult::flip_rate);
    // null when a configuration the check needs was not run (--configs).
    auto verdict = [](double a, double b) -> std::string {
      if (std::isnan(a) || std::isnan(b)) return "null";
      return a < b ? "true" : "false";
    };
    checks.push_back(absl::StrCat("\"", model, "_statsq_lower_osc_than_lsq\":", verdict(sq, lsq)));
    checks.push_back(absl::StrCat("\"", model, "_cga_flips_below_10pct_of_qat\":", verdict(cga_flips, 0.1 * qat_flips)));
    if (model == "vit") {
      const double attn = Mean(get("statsq"), &RunResult::osc_ratio_attn);
      const double attn_qkr = Mean(get("statsq+qkr"), &RunResult::osc_ratio_attn);
      checks.push_back(absl::StrCat("\"vit_qkr_lower_attn_osc\":", verdict(attn_qkr, attn)));
    }
  }
  std::printf("{\"bench\":\"ofq_small_scale_check\",\"work\":\"%s\",\"seconds\":%.0f,\"all_runs_ok\":%s,"
              "\"summary\":{%s},\"check\":{%s}}\n",
              o.work.c_str(), total_s, all_ok ? "true" : "false", summary.c_str(),
              absl::StrJoin(checks, ",").c_str());
  return all_ok ? 0 : 1;
}
