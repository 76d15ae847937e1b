#include "worker/train/core/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard (not reached transitively in LibTorch 2.x)
#include <ATen/Context.h>
#include <c10/util/Exception.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"

namespace pendulum::train {
namespace fs = std::filesystem;
namespace {

constexpr int64_t kFormatVersion = 1;

at::Tensor BytesToTensor(const std::string& bytes) {
  at::Tensor t = at::empty({int64_t(bytes.size())}, at::kByte);
  if (!bytes.empty()) std::memcpy(t.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  return t;
}

std::string TensorToBytes(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), c.numel());
}

// Parameters and buffers by dotted name. Archive keys cannot hold dots, so the
// names go into one byte tensor and the values into t0, t1, ...
void WriteNamedTensors(const Model& model, torch::serialize::OutputArchive* archive) {
  std::vector<std::string> names;
  int64_t i = 0;
  auto add = [&](const std::string& name, const at::Tensor& t, bool is_buffer) {
    if (!t.defined()) return;
    names.push_back(name);
    archive->write("t" + std::to_string(i++), t.detach().cpu(), is_buffer);
  };
  for (const auto& p : model.named_parameters(true)) add(p.key(), p.value(), false);
  for (const auto& b : model.named_buffers(true)) add(b.key(), b.value(), true);
  archive->write("names", BytesToTensor(absl::StrJoin(names, "\n")), true);
}

int64_t FileSize(const std::string& path) {
  std::error_code ec;
  auto n = fs::file_size(path, ec);
  return ec ? -1 : int64_t(n);
}

absl::Status FsyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat("fsync ", path, ": ", std::strerror(err)));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SavedCheckpoint> SaveCheckpoint(const std::string& dir, const TrainPosition& pos,
                                               const v1::RunSpec& spec, const Model& model,
                                               const torch::optim::Optimizer* optimizer,
                                               const TrainingMethod* method) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  SavedCheckpoint saved;
  saved.path = (fs::path(dir) / absl::StrCat("step-", pos.step, ".ckpt")).string();
  const std::string tmp = saved.path + ".tmp";
  try {
    torch::serialize::OutputArchive archive;
    archive.write("format", at::tensor(kFormatVersion), true);
    archive.write("position", at::tensor(std::vector<int64_t>{pos.step, pos.stage, pos.epoch,
                                                              pos.epoch_in_stage, pos.batch_in_epoch,
                                                              pos.stage_start_step}),
                  true);
    archive.write("spec", BytesToTensor(spec.SerializeAsString()), true);
    torch::serialize::OutputArchive model_archive;
    WriteNamedTensors(model, &model_archive);
    archive.write("model", model_archive);
    if (optimizer != nullptr) {
      torch::serialize::OutputArchive opt_archive;
      optimizer->save(opt_archive);
      archive.write("optimizer", opt_archive);
    }
    if (method != nullptr) {
      torch::serialize::OutputArchive method_archive;
      absl::Status s = method->SaveState(&method_archive);
      if (!s.ok()) return absl::Status(s.code(), absl::StrCat("saving method state: ", s.message()));
      archive.write("method", method_archive);
    }
    {
      at::Generator gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      archive.write("rng_cpu", gen.get_state(), true);
    }
    archive.save_to(tmp);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("writing checkpoint ", tmp, ": ", e.what_without_backtrace()));
  }
  // Durable before visible: the daemon uploads a checkpoint as soon as it sees
  // CheckpointSaved, and a crash must never leave a half-written step-S.ckpt.
  if (auto s = FsyncPath(tmp, false); !s.ok()) return s;
  if (std::rename(tmp.c_str(), saved.path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("rename ", tmp, " -> ", saved.path, ": ", std::strerror(errno)));
  }
  if (auto s = FsyncPath(dir, true); !s.ok()) return s;
  saved.bytes = FileSize(saved.path);
  auto sha = Sha256FileHex(saved.path);
  if (!sha.ok()) return sha.status();
  saved.sha256 = *sha;
  return saved;
}

absl::StatusOr<std::unique_ptr<CheckpointReader>> CheckpointReader::Open(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return absl::NotFoundError(absl::StrCat("checkpoint not found: ", path));
  auto r = std::make_unique<CheckpointReader>();
  r->path_ = path;
  try {
    r->archive_.load_from(path);
    at::Tensor format, position, spec;
    if (!r->archive_.try_read("format", format) || !r->archive_.try_read("position", position) ||
        !r->archive_.try_read("spec", spec)) {
      return absl::DataLossError(absl::StrCat("not a pendulum checkpoint (missing header fields): ", path));
    }
    if (format.item<int64_t>() != kFormatVersion) {
      return absl::DataLossError(absl::StrCat("checkpoint ", path, " has format ", format.item<int64_t>(),
                                              ", this trainer reads ", kFormatVersion));
    }
    if (position.numel() != 6) return absl::DataLossError(absl::StrCat("corrupt checkpoint position in ", path));
    const int64_t* p = position.data_ptr<int64_t>();
    r->position_ = TrainPosition{p[0], p[1], p[2], p[3], p[4], p[5]};
    if (!r->spec_.ParseFromString(TensorToBytes(spec))) {
      return absl::DataLossError(absl::StrCat("corrupt RunSpec in checkpoint ", path));
    }
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("corrupt checkpoint ", path, ": ", e.what_without_backtrace()));
  }
  return r;
}

absl::Status CheckpointReader::LoadModel(Model* model, bool strict, std::vector<std::string>* missing) {
  try {
    torch::serialize::InputArchive m;
    if (!archive_.try_read("model", m)) return absl::DataLossError(absl::StrCat("no model in checkpoint ", path_));
    at::Tensor names_t;
    if (!m.try_read("names", names_t)) return absl::DataLossError(absl::StrCat("no tensor names in checkpoint ", path_));
    std::map<std::string, at::Tensor> saved;
    const std::string names = TensorToBytes(names_t);
    int64_t i = 0;
    if (!names.empty()) {
      for (absl::string_view name : absl::StrSplit(names, '\n')) {
        at::Tensor t;
        if (!m.try_read("t" + std::to_string(i++), t)) {
          return absl::DataLossError(absl::StrCat("checkpoint ", path_, " lacks the tensor for ", name));
        }
        saved.emplace(std::string(name), t);
      }
    }
    std::vector<std::string> absent;
    at::NoGradGuard no_grad;
    auto copy = [&](const std::string& name, at::Tensor& dst) -> absl::Status {
      if (!dst.defined()) return absl::OkStatus();
      auto it = saved.find(name);
      if (it == saved.end()) {
        absent.push_back(name);
        return absl::OkStatus();
      }
      if (it->second.sizes() != dst.sizes()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "checkpoint ", path_, ": tensor ", name, " has shape ", c10::str(it->second.sizes()),
            ", the model expects ", c10::str(dst.sizes()), " (different architecture?)"));
      }
      dst.copy_(it->second.to(dst.dtype()));
      return absl::OkStatus();
    };
    for (auto& p : model->named_parameters(true)) {
      if (auto s = copy(p.key(), p.value()); !s.ok()) return s;
    }
    for (auto& b : model->named_buffers(true)) {
      if (auto s = copy(b.key(), b.value()); !s.ok()) return s;
    }
    if (strict && !absent.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("checkpoint ", path_, " lacks model tensors: ",
                                                        absl::StrJoin(absent, ", ")));
    }
    if (missing != nullptr) *missing = std::move(absent);
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("loading model from ", path_, ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status CheckpointReader::LoadOptimizer(torch::optim::Optimizer* optimizer) {
  try {
    torch::serialize::InputArchive o;
    if (!archive_.try_read("optimizer", o)) {
      return absl::DataLossError(absl::StrCat("no optimizer state in checkpoint ", path_));
    }
    optimizer->load(o);
  } catch (const c10::Error& e) {
    return absl::FailedPreconditionError(absl::StrCat("loading optimizer state from ", path_,
                                                      " (different optimizer or parameters?): ",
                                                      e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status CheckpointReader::LoadMethod(TrainingMethod* method) {
  try {
    torch::serialize::InputArchive m;
    if (!archive_.try_read("method", m)) {
      return absl::DataLossError(absl::StrCat("no method state in checkpoint ", path_));
    }
    absl::Status s = method->LoadState(&m);
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat("loading method state from ", path_, ": ", s.message()));
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("loading method state from ", path_, ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status CheckpointReader::RestoreRng() {
  try {
    at::Tensor state;
    if (!archive_.try_read("rng_cpu", state)) return absl::DataLossError(absl::StrCat("no RNG state in ", path_));
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("restoring RNG state from ", path_, ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

}  // namespace pendulum::train
