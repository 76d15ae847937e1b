#pragma once
// The `pendulum` commands. Each takes its own arguments (after the command
// name; global flags already removed) and a CliContext, prints its result on
// ctx.out, and returns the error (server message verbatim) for the caller to
// print on stderr. `--help` is handled by the dispatcher (cli.h) using
// CommandHelp(). Run on one thread.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/cli_context.h"

namespace pendulum::client {

using Args = std::vector<std::string>;

absl::Status SubmitCommand(const Args& args, const CliContext& ctx);
absl::Status RunsCommand(const Args& args, const CliContext& ctx);
absl::Status ShowCommand(const Args& args, const CliContext& ctx);
// OK only when the run ends SUCCEEDED; FAILED/CANCELLED give ABORTED/CANCELLED.
absl::Status WatchCommand(const Args& args, const CliContext& ctx);
absl::Status CancelCommand(const Args& args, const CliContext& ctx);
// Asks a running run's trainer to checkpoint now (SIGUSR1 on the worker).
absl::Status CheckpointCommand(const Args& args, const CliContext& ctx);
// pendulum artifact RUN NAME [--out FILE]: fetches a stored artifact of a run.
absl::Status ArtifactCommand(const Args& args, const CliContext& ctx);
absl::Status MetricsCommand(const Args& args, const CliContext& ctx);
absl::Status OscillationCommand(const Args& args, const CliContext& ctx);
absl::Status CompareCommand(const Args& args, const CliContext& ctx);
absl::Status WorkersCommand(const Args& args, const CliContext& ctx);
absl::Status TokenCommand(const Args& args, const CliContext& ctx);
absl::Status UserCommand(const Args& args, const CliContext& ctx);
absl::Status DrainCommand(const Args& args, const CliContext& ctx);
absl::Status UndrainCommand(const Args& args, const CliContext& ctx);

// Splits a --sweep value list on commas outside brackets/braces/quotes, so
// "model.hidden=[64,64],[128,128]" gives two values.
std::vector<std::string> SplitSweepValues(const std::string& values);

// Parses a run id ("42"), INVALID_ARGUMENT naming `what` otherwise.
absl::Status ParseRunId(const std::string& text, int64_t* id);

}  // namespace pendulum::client
