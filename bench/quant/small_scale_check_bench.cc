// methods.md §7.1, OFQ small-scale check on Fashion-MNIST (MLP 784-256-256-10,
// 20k-image subset, batch 128, AdamW lr 1e-3 cosine): FP pretrain 2 epochs,
// then W2/A4 QAT for 4 epochs with LSQ weights vs StatsQ weights, then 1 epoch
// of CGA (BR 0.005, lr 1e-5) on the StatsQ model. Oscillation tracked as in
// §1.5 (tau 0.005), counted from QAT step 200. 3 seeds; prints JSON lines
// per seed/config and a summary with mean ± std.
//   ofq_small_scale_bench [data_dir=/usr/share/datasets/fashion-mnist] [threads=2]

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/optim/adamw.h>
#include <zlib.h>

#include "worker/train/quant/cga.h"
#include "worker/train/quant/oscillation_monitor.h"
#include "worker/train/quant/quant_mlp.h"

namespace q = pendulum::train::quant;

namespace {

std::vector<uint8_t> ReadGz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    std::exit(2);
  }
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.insert(out.end(), buf, buf + n);
  gzclose(f);
  return out;
}

// IDX files: images [N, 28, 28] uint8 (16-byte header), labels [N] (8-byte header).
std::pair<at::Tensor, at::Tensor> LoadFashion(const std::string& dir, const std::string& split, int64_t limit) {
  std::vector<uint8_t> img = ReadGz(dir + "/" + split + "-images-idx3-ubyte.gz");
  std::vector<uint8_t> lab = ReadGz(dir + "/" + split + "-labels-idx1-ubyte.gz");
  const int64_t n = std::min<int64_t>(limit, static_cast<int64_t>(lab.size() - 8));
  at::Tensor x = at::from_blob(img.data() + 16, {n, 784}, at::kByte).to(at::kFloat).div_(255.0);
  x = (x - 0.2860) / 0.3530;
  at::Tensor y = at::from_blob(lab.data() + 8, {n}, at::kByte).to(at::kLong);
  return {x.clone(), y.clone()};
}

double Accuracy(pendulum::train::Model& m, const at::Tensor& x, const at::Tensor& y) {
  at::NoGradGuard g;
  m.eval();
  double correct = m.Forward(x).logits.argmax(1).eq(y).sum().item<double>();
  m.train();
  return correct / static_cast<double>(y.size(0));
}

struct RunResult {
  double acc = 0, osc_ratio = 0, flips_per_step = 0, free_frac = 0;
};

// Trains for `epochs` with AdamW; lr cosine (or constant when cosine=false).
// Tracks oscillation from `start_step` when monitor is set; CGA when cga set.
RunResult Train(pendulum::train::Model& m, const at::Tensor& x, const at::Tensor& y, int epochs, double lr,
                bool cosine, q::OscillationMonitor* monitor, q::ConfidenceGuidedAnnealing* cga,
                const std::string& tracked_layer, int64_t start_step) {
  const int64_t batch = 128, n = x.size(0), spe = n / batch, total = spe * epochs;
  std::vector<at::Tensor> decay, no_decay;
  for (auto& p : m.named_parameters()) (p.value().dim() >= 2 ? decay : no_decay).push_back(p.value());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(lr).weight_decay(0.05)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(lr).weight_decay(0.0)));
  torch::optim::AdamW opt(groups, torch::optim::AdamWOptions(lr));
  m.train();
  int64_t step = 0;
  double flips = 0, free_sum = 0;
  int64_t tracked_steps = 0;
  for (int e = 0; e < epochs; ++e) {
    at::Tensor perm = at::randperm(n);
    for (int64_t b = 0; b < spe; ++b) {
      const double cur = cosine ? lr * 0.5 * (1 + std::cos(M_PI * step / total)) : lr;
      for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(cur);
      at::Tensor idx = perm.narrow(0, b * batch, batch);
      opt.zero_grad();
      at::cross_entropy_loss(m.Forward(x.index_select(0, idx)).logits, y.index_select(0, idx)).backward();
      if (cga) cga->MaskGradients();
      opt.step();
      if (cga) {
        cga->RestoreFrozen();
        free_sum += cga->free_fraction();
      }
      ++step;
      if (monitor) {
        monitor->Step(start_step + step);
        if (start_step + step >= 200) {
          for (const auto& l : monitor->Stats(step).layers()) {
            if (l.layer() == tracked_layer) flips += l.values().at("flip_rate");
          }
          ++tracked_steps;
        }
      }
    }
  }
  RunResult r;
  if (monitor) {
    for (const auto& l : monitor->Stats(step).layers()) {
      if (l.layer() == tracked_layer) r.osc_ratio = l.values().at("osc_ratio_0.005");
    }
  }
  r.flips_per_step = tracked_steps ? flips / tracked_steps : 0;
  r.free_frac = step ? free_sum / step : 0;
  return r;
}

void CopyByName(pendulum::train::Model& from, pendulum::train::Model& to) {
  at::NoGradGuard g;
  auto src = from.named_parameters();
  for (auto& p : to.named_parameters()) {
    if (auto* s = src.find(p.key()); s && s->sizes() == p.value().sizes()) p.value().copy_(*s);
  }
}

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}
double Std(const std::vector<double>& v) {
  const double m = Mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return v.size() > 1 ? std::sqrt(s / (v.size() - 1)) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  at::set_num_threads(argc > 2 ? std::atoi(argv[2]) : 2);
  auto [xtr, ytr] = LoadFashion(dir, "train", 20000);
  auto [xte, yte] = LoadFashion(dir, "t10k", 10000);
  std::map<std::string, std::vector<double>> acc, osc, flips, freef;
  for (int seed : {1, 2, 3}) {
    at::manual_seed(seed);
    q::QuantMlpOptions fo;
    fo.hidden = {256, 256};
    fo.quantize = false;
    q::QuantMlp fp(fo);
    Train(fp, xtr, ytr, 2, 1e-3, true, nullptr, nullptr, "", 0);
    const double fp_acc = Accuracy(fp, xte, yte);
    acc["fp"].push_back(fp_acc);
    std::printf("{\"seed\":%d,\"config\":\"fp\",\"acc\":%.4f}\n", seed, fp_acc);
    for (const char* wq : {"lsq", "statsq"}) {
      at::manual_seed(seed);
      q::QuantMlpOptions qo;
      qo.hidden = {256, 256};
      qo.weight_quant = std::string(wq) == "lsq" ? q::WeightQuant::kLsq : q::WeightQuant::kStatsQ;
      qo.weight_bits = 2;
      qo.act_bits = 4;
      q::QuantMlp qm(qo);
      CopyByName(fp, qm);
      qm.train();
      qm.Forward(xtr.narrow(0, 0, 128));  // dummy forward: LSQ scales before the optimizer (trap 9)
      auto shared = std::shared_ptr<q::QuantMlp>(&qm, [](q::QuantMlp*) {});
      q::OscillationMonitor mon;
      mon.Attach(shared);
      RunResult r = Train(qm, xtr, ytr, 4, 1e-3, true, &mon, nullptr, "fc1", 0);
      r.acc = Accuracy(qm, xte, yte);
      acc[wq].push_back(r.acc);
      osc[wq].push_back(r.osc_ratio);
      flips[wq].push_back(r.flips_per_step);
      std::printf("{\"seed\":%d,\"config\":\"%s\",\"acc\":%.4f,\"osc_ratio_fc1\":%.5f,\"flip_rate_fc1\":%.6f}\n",
                  seed, wq, r.acc, r.osc_ratio, r.flips_per_step);
      if (std::string(wq) == "statsq") {
        std::vector<q::CgaTarget> targets;
        for (const auto& item : qm.named_modules("", false)) {
          auto* src = dynamic_cast<q::QuantWeightSource*>(item.value().get());
          if (src && src->has_quant_view() && src->quant_view().cga_target) {
            targets.push_back({item.key(), src->quant_view().param, 2});
          }
        }
        q::ConfidenceGuidedAnnealing cga(targets, 0.005);
        RunResult c = Train(qm, xtr, ytr, 1, 1e-5, false, &mon, &cga, "fc1", 1000000);
        c.acc = Accuracy(qm, xte, yte);
        acc["statsq+cga"].push_back(c.acc);
        osc["statsq+cga"].push_back(c.osc_ratio);
        flips["statsq+cga"].push_back(c.flips_per_step);
        freef["statsq+cga"].push_back(c.free_frac);
        std::printf(
            "{\"seed\":%d,\"config\":\"statsq+cga\",\"acc\":%.4f,\"osc_ratio_fc1\":%.5f,\"flip_rate_fc1\":%.6f,"
            "\"cga_free_frac\":%.5f}\n",
            seed, c.acc, c.osc_ratio, c.flips_per_step, c.free_frac);
      }
    }
  }
  std::printf("{\"summary\":{");
  bool first = true;
  for (const char* k : {"fp", "lsq", "statsq", "statsq+cga"}) {
    std::printf("%s\"%s\":{\"acc\":[%.4f,%.4f]", first ? "" : ",", k, Mean(acc[k]), Std(acc[k]));
    if (osc.count(k)) {
      std::printf(",\"osc_ratio_fc1\":[%.5f,%.5f],\"flip_rate_fc1\":[%.6f,%.6f]", Mean(osc[k]), Std(osc[k]),
                  Mean(flips[k]), Std(flips[k]));
    }
    if (freef.count(k)) std::printf(",\"cga_free_frac\":[%.5f,%.5f]", Mean(freef[k]), Std(freef[k]));
    std::printf("}");
    first = false;
  }
  const bool statsq_lower = Mean(osc["statsq"]) < Mean(osc["lsq"]);
  const bool cga_flips_low = Mean(flips["statsq+cga"]) < 0.1 * Mean(flips["statsq"]);
  std::printf("},\"check\":{\"statsq_lower_osc_than_lsq\":%s,\"cga_flips_below_10pct_of_qat\":%s}}\n",
              statsq_lower ? "true" : "false", cga_flips_low ? "true" : "false");
  return 0;
}
