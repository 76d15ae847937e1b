#include "worker/train/core/trainer_main.h"
#include "worker/train/core/process_tuning.h"

#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "worker/train/core/event_writer.h"
#include "worker/train/core/signals.h"
#include "worker/train/core/trainer.h"

#ifdef PENDULUM_HAVE_SPEC_LIBRARY
#include "spec/run_spec_parser.h"
#include "spec/run_spec_validator.h"
#endif

namespace pendulum::train {
namespace {

constexpr char kUsage[] =
    "usage: pendulum-train --spec FILE --out DIR [--events-fd N] [--run-id ID --attempt A]\n"
    "                      [--resume CKPT] [--init CKPT] [--teacher CKPT] [--threads N]\n"
    "                      [--precision auto|fp32|bf16]\n"
    "  --spec FILE     RunSpec: binary pendulum.v1.RunSpec if it ends in .pb, else YAML/JSON\n"
    "  --out DIR       run directory (created); checkpoints in DIR/checkpoints,\n"
    "                  events in DIR/events.pb unless --events-fd is given\n"
    "  --events-fd N   write length-delimited TrainerEvents to file descriptor N\n"
    "  --resume CKPT   continue a checkpoint exactly (step numbering and data order)\n"
    "  --init CKPT     initialise weights from another run's checkpoint\n"
    "  --teacher CKPT  knowledge-distillation teacher checkpoint\n"
    "  --threads N     LibTorch threads (default: spec resources.cpus, else 2)\n"
    "  --precision P   auto (default: bf16 autocast on CUDA, fp32 on CPU), fp32, or bf16\n"
    "exit status: 0 ok, 1 training failed, 2 bad command line or spec, 3 data error, 143 SIGTERM\n";

int Usage(const std::string& error) {
  if (!error.empty()) std::fprintf(stderr, "pendulum-train: %s\n", error.c_str());
  std::fprintf(stderr, "%s", kUsage);
  return 2;
}

absl::StatusOr<v1::RunSpec> LoadSpec(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--spec: cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  v1::RunSpec spec;
  if (absl::EndsWith(path, ".pb")) {
    if (!spec.ParseFromString(text)) {
      return absl::InvalidArgumentError(absl::StrCat("--spec: ", path, " is not a binary pendulum.v1.RunSpec"));
    }
  } else {
#ifdef PENDULUM_HAVE_SPEC_LIBRARY
    auto parsed = spec::ParseRunSpec(text);
    if (!parsed.ok()) return parsed.status();
    spec = std::move(*parsed);
#else
    // Without the spec library (YAML) only JSON with the proto field names is read.
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    auto st = google::protobuf::util::JsonStringToMessage(text, &spec, options);
    if (!st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--spec: cannot parse ", path, " as JSON (",
                                                     st.ToString(),
                                                     "); YAML specs need the spec library, not in this build"));
    }
#endif
  }
#ifdef PENDULUM_HAVE_SPEC_LIBRARY
  if (auto st = spec::ValidateRunSpec(spec); !st.ok()) return st;
#endif
  return spec;
}

}  // namespace

int RunTrainerMain(int argc, char** argv) {
  TuneMallocForTraining();  // before the first tensor: see process_tuning.h
  InstallTrainerSignalHandlers();
  std::map<std::string, std::string> flags;
  static const char* kKnown[] = {"spec", "out", "events-fd", "run-id", "attempt",
                                 "resume", "init", "teacher", "threads", "precision"};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (!absl::StartsWith(arg, "--")) return Usage(absl::StrCat("unexpected argument '", arg, "'"));
    std::string name = arg.substr(2), value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else {
      if (i + 1 >= argc) return Usage(absl::StrCat("--", name, " needs a value"));
      value = argv[++i];
    }
    bool known = false;
    for (const char* k : kKnown) known |= name == k;
    if (!known) return Usage(absl::StrCat("unknown flag --", name));
    flags[name] = value;
  }
  if (!flags.count("spec")) return Usage("--spec is required");
  if (!flags.count("out")) return Usage("--out is required");
  int events_fd = -1, threads = 0;
  if (flags.count("events-fd") && (!absl::SimpleAtoi(flags["events-fd"], &events_fd) || events_fd < 0)) {
    return Usage(absl::StrCat("--events-fd: got '", flags["events-fd"], "', must be a file descriptor number"));
  }
  if (flags.count("threads") && (!absl::SimpleAtoi(flags["threads"], &threads) || threads < 1 || threads > 256)) {
    return Usage(absl::StrCat("--threads: got '", flags["threads"], "', must be 1..256"));
  }

  if (flags.count("precision") && flags["precision"] != "auto" && flags["precision"] != "fp32" &&
      flags["precision"] != "bf16") {
    return Usage(absl::StrCat("--precision: got '", flags["precision"], "', must be one of: auto, fp32, bf16"));
  }

  const std::string out_dir = flags["out"];
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return Usage(absl::StrCat("--out: cannot create ", out_dir, ": ", ec.message()));

  std::unique_ptr<EventWriter> events;
  if (events_fd >= 0) {
    events = std::make_unique<EventWriter>(events_fd, /*owns_fd=*/false);
  } else {
    auto opened = EventWriter::OpenFile((std::filesystem::path(out_dir) / "events.pb").string());
    if (!opened.ok()) {
      std::fprintf(stderr, "pendulum-train: %s\n", std::string(opened.status().message()).c_str());
      return 1;
    }
    events = std::move(*opened);
  }

  auto spec = LoadSpec(flags["spec"]);
  if (!spec.ok()) {
    const std::string message(spec.status().message());
    std::fprintf(stderr, "pendulum-train: invalid spec: %s\n", message.c_str());
    // Started then Finished, so the daemon sees the reason in the stream too.
    events->EmitStarted(0, 0, "cpu").IgnoreError();  // best effort: exiting with 2 anyway
    events->EmitFinished(false, absl::StrCat("invalid spec: ", message), 0).IgnoreError();  // same
    return 2;
  }

  TrainerOptions options;
  options.spec = std::move(*spec);
  // --init is where the daemon put spec.init.from_run's checkpoint. Record it
  // in the spec as well, so every reader of spec.init (the loop's weight load
  // and methods such as OFQ, whose quantized model takes the scales, shifts
  // and QKR weights of a QAT checkpoint only after Setup) sees the same file.
  if (!flags["init"].empty()) options.spec.mutable_init()->set_checkpoint_path(flags["init"]);
  options.out_dir = out_dir;
  options.resume_path = flags["resume"];
  options.init_path = flags["init"];
  options.teacher_path = flags["teacher"];
  options.threads = threads;
  if (flags.count("precision")) options.precision = flags["precision"];
  Trainer trainer(std::move(options), events.get());
  TrainResult result = trainer.Run();
  return result.exit_code;
}

}  // namespace pendulum::train
