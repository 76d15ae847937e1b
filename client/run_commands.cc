// submit, runs, show, watch, cancel.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/arg_parser.h"
#include "client/commands.h"
#include "client/run_format.h"
#include "client/status_conversion.h"
#include "client/table_printer.h"
#include "spec/run_spec_parser.h"
#include "spec/run_spec_validator.h"

namespace pendulum::client {
namespace {

absl::Status ReadSpecFile(const std::string& path, std::string* text) {
  std::stringstream buffer;
  if (path == "-") {
    buffer << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read spec file '", path, "'"));
    buffer << in.rdbuf();
  }
  *text = buffer.str();
  if (text->size() > spec::kMaxSpecBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec file '", path, "' is ", text->size(), " bytes; the limit is ", spec::kMaxSpecBytes));
  }
  return absl::OkStatus();
}

absl::Status OnePositionalRun(const ArgParser& p, const char* command, int64_t* id) {
  if (p.positional().size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(command, ": expected exactly one RUN id (see pendulum ",
                                                   command, " --help)"));
  }
  return ParseRunId(p.positional()[0], id);
}

}  // namespace

absl::Status ParseRunId(const std::string& text, int64_t* id) {
  if (!absl::SimpleAtoi(text, id) || *id <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("RUN: got '", text, "', must be a run id (a positive integer)"));
  }
  return absl::OkStatus();
}

std::vector<std::string> SplitSweepValues(const std::string& values) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  char quote = 0;
  for (char c : values) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
      continue;
    }
    cur += c;
  }
  out.push_back(cur);
  return out;
}

absl::Status SubmitCommand(const Args& args, const CliContext& ctx) {
  ArgParser p;
  p.AddValueFlag("set");
  p.AddValueFlag("sweep");
  p.AddBoolFlag("dry-run");
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  if (p.positional().size() != 1) {
    return absl::InvalidArgumentError("submit: expected exactly one spec FILE (YAML or JSON; - for stdin)");
  }
  v1::SubmitRunRequest request;
  if (absl::Status s = ReadSpecFile(p.positional()[0], request.mutable_spec_text()); !s.ok()) return s;
  for (const std::string& o : p.GetAll("set")) request.add_overrides(o);
  for (const std::string& axis : p.GetAll("sweep")) {
    const size_t eq = axis.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == axis.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--sweep: got '", axis, "', must look like path=v1,v2,... e.g. seed=1,2,3"));
    }
    v1::SweepAxis* a = request.add_sweep();
    a->set_path(axis.substr(0, eq));
    for (const std::string& v : SplitSweepValues(axis.substr(eq + 1))) a->add_values(v);
  }
  if (p.Has("dry-run")) {
    // Local check only: the same parser and validator the server runs.
    std::vector<std::string> overrides(request.overrides().begin(), request.overrides().end());
    absl::StatusOr<v1::RunSpec> spec = spec::LoadRunSpec(request.spec_text(), overrides);
    if (!spec.ok()) return spec.status();
    *ctx.out << spec::RunSpecToYaml(*spec);
    return absl::OkStatus();
  }
  v1::SubmitRunResponse response;
  auto call = ctx.NewCall();
  if (absl::Status s = FromGrpcStatus(ctx.runs->SubmitRun(call.get(), request, &response)); !s.ok()) return s;
  for (int64_t id : response.run_ids()) *ctx.out << id << "\n";
  if (response.sweep_id() != 0) {
    *ctx.err << "sweep " << response.sweep_id() << ": " << response.run_ids_size() << " runs\n";
  }
  return absl::OkStatus();
}

absl::Status RunsCommand(const Args& args, const CliContext& ctx) {
  ArgParser p;
  p.AddBoolFlag("json");
  p.AddBoolFlag("all");
  p.AddValueFlag("state");
  p.AddValueFlag("owner");
  p.AddValueFlag("name");
  p.AddValueFlag("sweep");
  p.AddValueFlag("limit");
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  if (!p.positional().empty()) return absl::InvalidArgumentError("runs: takes no positional arguments");
  v1::ListRunsRequest request;
  for (const std::string& list : p.GetAll("state")) {
    for (const std::string& name : SplitSweepValues(list)) {
      v1::RunState state;
      if (!ParseState(name, &state)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--state: got '", name, "', must be one of QUEUED, STARTING, RUNNING, CANCELLING, SUCCEEDED, FAILED, CANCELLED"));
      }
      request.add_states(state);
    }
  }
  if (p.Has("owner")) request.set_owner(p.Get("owner"));
  // --all: every user's runs (admins only). The server already lists all runs
  // for an admin who names no owner, so this just makes sure none is named.
  if (p.Has("all")) request.clear_owner();
  request.set_name_contains(p.Get("name"));
  int64_t sweep = 0;
  if (p.Has("sweep") && (!absl::SimpleAtoi(p.Get("sweep"), &sweep) || sweep <= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("--sweep: got '", p.Get("sweep"), "', must be a sweep id"));
  }
  request.set_sweep_id(sweep);
  int64_t limit = 1000;
  if (p.Has("limit") && (!absl::SimpleAtoi(p.Get("limit"), &limit) || limit <= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("--limit: got '", p.Get("limit"), "', must be a positive integer"));
  }
  std::vector<v1::Run> runs;
  do {
    request.set_page_size(static_cast<uint32_t>(std::min<int64_t>(1000, limit - runs.size())));
    v1::ListRunsResponse response;
    auto call = ctx.NewCall();
    if (absl::Status s = FromGrpcStatus(ctx.runs->ListRuns(call.get(), request, &response)); !s.ok()) return s;
    for (const v1::Run& r : response.runs()) runs.push_back(r);
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty() && static_cast<int64_t>(runs.size()) < limit);

  if (p.Has("json")) {
    *ctx.out << "[";
    for (size_t i = 0; i < runs.size(); ++i) *ctx.out << (i ? ",\n" : "\n") << ToJson(runs[i]);
    *ctx.out << (runs.empty() ? "]\n" : "\n]\n");
    return absl::OkStatus();
  }
  TablePrinter table({"ID", "NAME", "STATE", "OWNER", "ATTEMPT", "WORKER", "PROGRESS", "LOSS", "CREATED", "REASON"});
  for (const v1::Run& r : runs) {
    std::string reason = r.state() == v1::QUEUED ? r.queue_reason() : r.exit_reason();
    // Scheduler reasons ("waiting behind higher priority run 812 (gpu-07 is
    // reserved for it)") run to ~80 characters; keep them whole.
    if (reason.size() > 90) reason = reason.substr(0, 87) + "...";
    for (char& c : reason) {
      if (c == '\n') c = ' ';
    }
    char loss[32] = "-";
    if (r.progress().step() > 0) std::snprintf(loss, sizeof(loss), "%.4g", r.progress().last_loss());
    table.AddRow({absl::StrCat(r.id()), r.name(), StateName(r.state()), r.owner(), absl::StrCat(r.attempt()),
                  r.worker_id().empty() ? "-" : r.worker_id(), FormatProgress(r.progress()), loss,
                  FormatTime(r.created_unix_ms()), reason.empty() ? "-" : reason});
  }
  table.Print(*ctx.out);
  return absl::OkStatus();
}

absl::Status ShowCommand(const Args& args, const CliContext& ctx) {
  ArgParser p;
  p.AddBoolFlag("json");
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  v1::GetRunRequest request;
  int64_t id = 0;
  if (absl::Status s = OnePositionalRun(p, "show", &id); !s.ok()) return s;
  request.set_run_id(id);
  v1::Run run;
  auto call = ctx.NewCall();
  if (absl::Status s = FromGrpcStatus(ctx.runs->GetRun(call.get(), request, &run)); !s.ok()) return s;
  if (p.Has("json")) {
    *ctx.out << ToJson(run) << "\n";
    return absl::OkStatus();
  }
  std::ostream& o = *ctx.out;
  const v1::RunProgress& pr = run.progress();
  o << "run " << run.id() << "  " << run.name() << "\n";
  o << "state:         " << StateName(run.state()) << "\n";
  o << "owner:         " << run.owner() << "\n";
  o << "priority:      " << run.priority() << "\n";
  o << "attempt:       " << run.attempt() << "\n";
  o << "worker:        " << (run.worker_id().empty() ? "-" : run.worker_id()) << "\n";
  if (run.sweep_id() != 0) o << "sweep:         " << run.sweep_id() << "\n";
  o << "created:       " << FormatTime(run.created_unix_ms()) << "\n";
  o << "started:       " << FormatTime(run.started_unix_ms()) << "\n";
  o << "finished:      " << FormatTime(run.finished_unix_ms()) << "\n";
  o << "queue reason:  " << (run.queue_reason().empty() ? "-" : run.queue_reason()) << "\n";
  o << "exit:          ";
  if (IsTerminal(run.state())) {
    o << "code " << run.exit_code() << (run.exit_reason().empty() ? "" : ", " + run.exit_reason()) << "\n";
  } else {
    o << "-\n";
  }
  char extra[160];
  std::snprintf(extra, sizeof(extra), ", epoch %.2f, loss %.4g, %.3g steps/s", pr.epoch(), pr.last_loss(),
                pr.steps_per_second());
  o << "progress:      " << FormatProgress(pr) << (pr.step() > 0 ? extra : "") << "\n";
  o << "points:        emitted " << run.points_emitted() << ", stored " << run.points_stored();
  if (run.points_emitted() > 0 && run.points_stored() < run.points_emitted()) {
    o << " (" << run.points_emitted() - run.points_stored() << " not yet stored)";
  }
  o << "\nartifacts:     " << (run.artifacts().empty() ? "-" : "") << "\n";
  for (const v1::RunArtifact& a : run.artifacts()) {
    o << "  " << (a.name().empty() ? absl::StrCat(a.kind(), " (id ", a.id(), ")") : a.name()) << "  " << a.kind()
      << ", step " << a.step() << ", attempt " << a.attempt() << ", " << a.size() << " bytes\n";
  }
  o << "spec:\n";
  std::istringstream yaml(spec::RunSpecToYaml(run.spec()));
  for (std::string line; std::getline(yaml, line);) o << "  " << line << "\n";
  return absl::OkStatus();
}

absl::Status WatchCommand(const Args& args, const CliContext& ctx) {
  ArgParser p;
  p.AddBoolFlag("plain");
  p.AddBoolFlag("history");
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  int64_t id = 0;
  if (absl::Status s = OnePositionalRun(p, "watch", &id); !s.ok()) return s;
  const bool bar = ctx.out_is_tty && !p.Has("plain");
  v1::WatchRunRequest request;
  request.set_run_id(id);
  request.set_include_history(p.Has("history"));
  auto call = ctx.NewCall(/*stream=*/true);
  std::unique_ptr<grpc::ClientReaderInterface<v1::RunUpdate>> reader = ctx.runs->WatchRun(call.get(), request);
  v1::RunUpdate update;
  v1::Run last;
  bool have_run = false;
  v1::RunState printed_state = v1::RUN_STATE_UNSPECIFIED;
  int64_t printed_step = -1;
  auto last_print = std::chrono::steady_clock::now() - std::chrono::hours(1);
  std::ostream& o = *ctx.out;
  while (reader->Read(&update)) {
    if (!update.has_run()) continue;
    last = update.run();
    have_run = true;
    const auto now = std::chrono::steady_clock::now();
    const bool state_changed = last.state() != printed_state;
    if (bar) {
      if (state_changed && printed_state != v1::RUN_STATE_UNSPECIFIED) o << "\n";
      o << "\r\033[K" << "run " << id << " " << StateName(last.state());
      if (last.progress().step() > 0) o << " " << ProgressBar(last.progress(), 30);
      if (last.state() == v1::QUEUED && !last.queue_reason().empty()) o << " (" << last.queue_reason() << ")";
      o << std::flush;
    } else if (state_changed || (last.progress().step() != printed_step && now - last_print >= std::chrono::seconds(1))) {
      o << "run " << id << " " << StateName(last.state());
      if (last.progress().step() > 0) o << " " << ProgressBar(last.progress(), 0);
      if (last.state() == v1::QUEUED && !last.queue_reason().empty()) o << " (" << last.queue_reason() << ")";
      o << "\n" << std::flush;
      last_print = now;
    }
    printed_state = last.state();
    printed_step = last.progress().step();
    if (IsTerminal(last.state())) break;
  }
  if (bar) o << "\n";
  if (IsTerminal(last.state())) {
    call->TryCancel();  // we have what we need; do not wait for the server to close
    reader->Finish().IgnoreError();  // ignoring on purpose: the stream was cancelled by us
  } else {
    absl::Status s = FromGrpcStatus(reader->Finish());
    if (!s.ok()) return s;
    return absl::UnavailableError(absl::StrCat(
        "watch: the stream ended before run ", id, " finished (last state ",
        have_run ? StateName(last.state()) : "unknown", ")"));
  }
  switch (last.state()) {
    case v1::SUCCEEDED:
      o << "run " << id << " SUCCEEDED\n";
      return absl::OkStatus();
    case v1::CANCELLED:
      return absl::CancelledError(absl::StrCat("run ", id, " CANCELLED",
                                               last.exit_reason().empty() ? "" : ": " + last.exit_reason()));
    default:
      return absl::AbortedError(absl::StrCat("run ", id, " FAILED (exit code ", last.exit_code(), ")",
                                             last.exit_reason().empty() ? "" : ": " + last.exit_reason()));
  }
}

absl::Status CancelCommand(const Args& args, const CliContext& ctx) {
  ArgParser p;
  p.AddValueFlag("reason");
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  int64_t id = 0;
  if (absl::Status s = OnePositionalRun(p, "cancel", &id); !s.ok()) return s;
  v1::CancelRunRequest request;
  request.set_run_id(id);
  request.set_reason(p.Get("reason", "cancelled from the pendulum CLI"));
  v1::Run run;
  auto call = ctx.NewCall();
  if (absl::Status s = FromGrpcStatus(ctx.runs->CancelRun(call.get(), request, &run)); !s.ok()) return s;
  *ctx.out << "run " << run.id() << " " << StateName(run.state()) << "\n";
  return absl::OkStatus();
}

absl::Status ArtifactCommand(const Args& args, const CliContext& ctx) {
  ArgParser p;
  p.AddValueFlag("out");
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  if (p.positional().size() != 2) {
    return absl::InvalidArgumentError(
        "artifact: expected RUN and NAME (the name `pendulum show RUN` lists; see pendulum artifact --help)");
  }
  int64_t id = 0;
  if (absl::Status s = ParseRunId(p.positional()[0], &id); !s.ok()) return s;
  const std::string name = p.positional()[1];
  std::string out_path = p.Get("out");
  if (out_path.empty()) {
    out_path = name.substr(name.find_last_of('/') == std::string::npos ? 0 : name.find_last_of('/') + 1);
  }
  v1::FetchArtifactRequest request;
  request.set_run_id(id);
  request.set_name(name);
  auto call = ctx.NewCall(/*stream=*/true);
  auto reader = ctx.runs->FetchArtifact(call.get(), request);
  const bool to_stdout = out_path == "-";
  const std::string tmp = out_path + ".part";
  std::ofstream file;
  v1::ArtifactData data;
  int64_t received = 0, expected = -1;
  while (reader->Read(&data)) {
    if (data.has_info()) expected = data.info().size();
    if (!to_stdout && !file.is_open()) {
      file.open(tmp, std::ios::binary | std::ios::trunc);
      if (!file) {
        call->TryCancel();
        reader->Finish();
        return absl::UnavailableError(absl::StrCat("--out: cannot write '", tmp, "'"));
      }
    }
    std::ostream& sink = to_stdout ? *ctx.out : file;
    sink.write(data.data().data(), static_cast<std::streamsize>(data.data().size()));
    received += static_cast<int64_t>(data.data().size());
  }
  absl::Status status = FromGrpcStatus(reader->Finish());
  if (file.is_open()) file.close();
  if (status.ok() && expected >= 0 && received != expected) {
    status = absl::DataLossError(absl::StrCat("artifact '", name, "': received ", received, " bytes, expected ", expected));
  }
  if (!status.ok()) {
    if (!to_stdout) std::remove(tmp.c_str());
    return status;
  }
  if (!to_stdout) {
    if (!file.is_open() && received == 0) std::ofstream(tmp, std::ios::binary | std::ios::trunc).close();
    if (std::rename(tmp.c_str(), out_path.c_str()) != 0) {
      return absl::UnavailableError(absl::StrCat("--out: cannot rename '", tmp, "' to '", out_path, "'"));
    }
    *ctx.err << "run " << id << ": " << name << " -> " << out_path << " (" << received << " bytes)\n";
  }
  return absl::OkStatus();
}

absl::Status CheckpointCommand(const Args& args, const CliContext& ctx) {
  ArgParser p;
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  int64_t id = 0;
  if (absl::Status s = OnePositionalRun(p, "checkpoint", &id); !s.ok()) return s;
  v1::RequestCheckpointRequest request;
  request.set_run_id(id);
  v1::RequestCheckpointResponse response;
  auto call = ctx.NewCall();
  if (absl::Status s = FromGrpcStatus(ctx.runs->RequestCheckpoint(call.get(), request, &response)); !s.ok()) {
    return s;
  }
  *ctx.out << "run " << id << ": checkpoint requested (it is uploaded when the trainer has written it)\n";
  return absl::OkStatus();
}

}  // namespace pendulum::client
