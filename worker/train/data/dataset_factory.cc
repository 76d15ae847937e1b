#include "worker/train/data/dataset_factory.h"

#include <cstring>
#include <filesystem>

#include <ATen/CPUGeneratorImpl.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/train/data/cifar_reader.h"
#include "worker/train/data/idx_reader.h"

namespace pendulum::train {
namespace fs = std::filesystem;
namespace {

// "name" or "name.gz", whichever exists (gz preferred, as Debian ships it).
std::string FindFile(const std::string& dir, const std::string& name) {
  std::error_code ec;
  for (const std::string& candidate : {name + ".gz", name}) {
    fs::path p = fs::path(dir) / candidate;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return (fs::path(dir) / (name + ".gz")).string();  // reported as missing
}

absl::StatusOr<Dataset> ReadIdxPair(const std::string& dir, const std::string& images_name,
                                    const std::string& labels_name, const std::string& name) {
  const std::string images_path = FindFile(dir, images_name);
  const std::string labels_path = FindFile(dir, labels_name);
  auto images = ReadIdxFile(images_path);
  if (!images.ok()) return images.status();
  auto labels = ReadIdxFile(labels_path);
  if (!labels.ok()) return labels.status();
  if (images->dims.size() != 3) {
    return absl::DataLossError(absl::StrCat("corrupt IDX file ", images_path,
                                            ": expected 3 dims [N, H, W], got ", images->dims.size()));
  }
  if (labels->dims.size() != 1 || labels->dims[0] != images->dims[0]) {
    return absl::DataLossError(absl::StrCat("corrupt IDX file ", labels_path, ": expected ",
                                            images->dims[0], " labels to match ", images_path));
  }
  Dataset d;
  d.name = name;
  d.num_classes = 10;
  const int64_t n = images->dims[0], h = images->dims[1], w = images->dims[2];
  d.example_shape = {1, h, w};
  d.images = at::empty({n, 1, h, w}, at::kByte);
  std::memcpy(d.images.data_ptr<uint8_t>(), images->data.data(), images->data.size());
  d.labels = at::empty({n}, at::kLong);
  int64_t* lab = d.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (labels->data[i] >= 10) {
      return absl::DataLossError(absl::StrCat("corrupt IDX file ", labels_path, ": label ",
                                              int(labels->data[i]), " at ", i, " is not in 0..9"));
    }
    lab[i] = labels->data[i];
  }
  d.mean = {0.2860f};
  d.std = {0.3530f};
  return d;
}

void TakeSubset(Dataset* d, uint32_t n) {
  if (n == 0 || n >= d->size()) return;
  d->images = d->images.narrow(0, 0, n).contiguous();
  d->labels = d->labels.narrow(0, 0, n).contiguous();
}

std::string DirOr(const std::string& path, const std::string& subdir, const std::string& probe) {
  std::error_code ec;
  if (!subdir.empty() && !fs::exists(fs::path(path) / probe, ec) &&
      fs::exists(fs::path(path) / subdir / probe, ec)) {
    return (fs::path(path) / subdir).string();
  }
  return path;
}

}  // namespace

absl::StatusOr<DataBundle> LoadFashionMnist(const std::string& dir) {
  DataBundle b;
  auto train = ReadIdxPair(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "fashion_mnist/train");
  if (!train.ok()) return train.status();
  auto eval = ReadIdxPair(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "fashion_mnist/eval");
  if (!eval.ok()) return eval.status();
  b.train = std::move(*train);
  b.eval = std::move(*eval);
  return b;
}

absl::StatusOr<DataBundle> MakeSyntheticData(const v1::SyntheticDataSpec& s, uint64_t seed) {
  const int64_t num_train = s.num_train() > 0 ? s.num_train() : 1024;
  const int64_t num_eval = s.num_eval() > 0 ? s.num_eval() : 256;
  const int64_t classes = s.num_classes() > 0 ? s.num_classes() : 10;
  const double noise = s.noise() > 0 ? s.noise() : 1.0;
  if (classes < 2) {
    return absl::InvalidArgumentError(absl::StrCat("spec.data.synthetic.num_classes: got ", classes, ", must be 2..1000"));
  }
  std::vector<int64_t> shape(s.shape().begin(), s.shape().end());
  if (shape.empty()) shape = {784};
  if (shape.size() > 4) return absl::InvalidArgumentError("spec.data.synthetic.shape: at most 4 dims");
  int64_t dim = 1;
  for (int64_t v : shape) {
    if (v <= 0) return absl::InvalidArgumentError("spec.data.synthetic.shape: every dim must be >= 1");
    dim *= v;
  }
  // A private generator: the data never depends on (or disturbs) torch's
  // global RNG, so model init and data are independent streams of the seed.
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed ^ 0x5D1A7A5EEDULL);
  at::Tensor means = at::randn({classes, dim}, gen, at::kFloat);
  auto make = [&](int64_t n, const std::string& name) {
    Dataset d;
    d.name = name;
    d.num_classes = classes;
    d.example_shape = shape;
    d.labels = at::randint(classes, {n}, gen, at::kLong);
    at::Tensor x = means.index_select(0, d.labels) + noise * at::randn({n, dim}, gen, at::kFloat);
    std::vector<int64_t> full = {n};
    full.insert(full.end(), shape.begin(), shape.end());
    d.images = x.reshape(full).contiguous();
    return d;
  };
  DataBundle b;
  b.train = make(num_train, "synthetic/train");
  b.eval = make(num_eval, "synthetic/eval");
  return b;
}

absl::StatusOr<DataBundle> LoadData(const v1::DataSpec& spec, uint64_t seed) {
  absl::StatusOr<DataBundle> b;
  const std::string& ds = spec.dataset();
  if (ds == "fashion_mnist") {
    b = LoadFashionMnist(spec.path().empty() ? kDefaultFashionMnistDir : spec.path());
  } else if (ds == "cifar10" || ds == "cifar100") {
    if (spec.path().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("spec.data.path: required for ", ds,
                                                     " (the folder with the binary-version files)"));
    }
    const bool c10 = ds == "cifar10";
    const std::string dir = DirOr(spec.path(), c10 ? "cifar-10-batches-bin" : "cifar-100-binary",
                                  c10 ? "test_batch.bin" : "test.bin");
    std::vector<std::string> train_files, eval_files;
    if (c10) {
      for (int i = 1; i <= 5; ++i) train_files.push_back((fs::path(dir) / absl::StrCat("data_batch_", i, ".bin")).string());
      eval_files.push_back((fs::path(dir) / "test_batch.bin").string());
    } else {
      train_files.push_back((fs::path(dir) / "train.bin").string());
      eval_files.push_back((fs::path(dir) / "test.bin").string());
    }
    auto train = ReadCifarFiles(train_files, c10 ? 1 : 2, c10 ? 10 : 100, ds + "/train");
    if (!train.ok()) return train.status();
    auto eval = ReadCifarFiles(eval_files, c10 ? 1 : 2, c10 ? 10 : 100, ds + "/eval");
    if (!eval.ok()) return eval.status();
    const std::vector<float> mean = c10 ? std::vector<float>{0.4914f, 0.4822f, 0.4465f}
                                        : std::vector<float>{0.5071f, 0.4865f, 0.4409f};
    const std::vector<float> stdv = c10 ? std::vector<float>{0.2470f, 0.2435f, 0.2616f}
                                        : std::vector<float>{0.2673f, 0.2564f, 0.2762f};
    train->mean = eval->mean = mean;
    train->std = eval->std = stdv;
    b = DataBundle{std::move(*train), std::move(*eval)};
  } else if (ds == "synthetic") {
    b = MakeSyntheticData(spec.synthetic(), seed);
  } else if (ds == "imagenet_folder") {
    return absl::UnimplementedError(
        "spec.data.dataset: 'imagenet_folder' is not supported yet in this version "
        "(supported: fashion_mnist, cifar10, cifar100, synthetic)");
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec.data.dataset: got '", ds, "', allowed: fashion_mnist, cifar10, cifar100, synthetic"));
  }
  if (!b.ok()) return b.status();
  TakeSubset(&b->train, spec.train_subset());
  TakeSubset(&b->eval, spec.eval_subset());
  return b;
}

}  // namespace pendulum::train
