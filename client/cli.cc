#include "client/cli.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "client/commands.h"

namespace pendulum::client {
namespace {

const std::map<std::string, std::string>& HelpTexts() {
  static const auto* texts = new std::map<std::string, std::string>{
      {"", R"(pendulum: submit and follow training runs on a Pendulum server.

Usage: pendulum [--server HOST:PORT] [--token TOKEN] COMMAND [ARGS...]

Commands:
  submit FILE        submit a run (or a sweep) from a YAML/JSON spec; prints the run id(s)
  runs               list runs (table, or --json)
  show RUN           one run: state, attempt, worker, reasons, progress, points, artifacts, spec
  watch RUN          follow a run live until it ends (exit 0 only if it SUCCEEDED)
  cancel RUN         cancel a queued or running run
  checkpoint RUN     ask a running run to write and upload a checkpoint now
  artifact RUN NAME  fetch a stored artifact of a run (an analysis run's tensors, …) to a file
  metrics RUN        metric points as CSV or JSON
  oscillation RUN    per-layer oscillation statistics and the most oscillating weights
  compare RUN...     final metrics grouped by swept configuration, mean ± std over seeds
  workers            the worker pool
  token              create / list / revoke API tokens (admins)
  user               create / list users and set their GPU quotas (admins)
  drain WORKER       stop placing runs on a worker (running runs finish); undrain WORKER reverses it

Global flags:
  --server HOST:PORT  server address (default $PENDULUM_SERVER, else 127.0.0.1:7070)
  --token TOKEN       bearer token (default $PENDULUM_TOKEN)
  --tls-ca FILE       dial with TLS, trusting the CA (or self-signed server
                      certificate) in this PEM file (default $PENDULUM_TLS_CA)
  --help              this text; `pendulum COMMAND --help` for a command

Errors print the server's message on stderr and exit 1 (usage errors exit 2).
)"},
      {"submit", R"(Usage: pendulum submit FILE [--set PATH=VALUE]... [--sweep PATH=V1,V2,...]... [--dry-run]

Submits the spec in FILE (YAML or JSON; - reads stdin). The server parses and
validates it; any error names the field, e.g. "spec.optimizer.lr: got -0.1, must be > 0".
Prints the new run id alone on stdout (one id per line for a sweep; the sweep
id goes to stderr).

  --set PATH=VALUE      override one field after parsing; VALUE is YAML, e.g.
                        --set optimizer.lr=0.01 --set model.hidden=[256,256]
                        --set tags.team=vision --set method.ofq.weight_bits=2
  --sweep PATH=V1,V2    one sweep axis; the runs are the cartesian product of all
                        axes, e.g. --sweep seed=1,2,3 --sweep method.ofq.weight_quantizer=statsq,lsq
                        (commas inside [..] or {..} do not split)
  --dry-run             parse, apply --set and validate locally; print the resolved
                        spec as YAML; submit nothing
)"},
      {"runs", R"(Usage: pendulum runs [--state S[,S...]]... [--name TEXT] [--sweep ID] [--owner USER | --all] [--limit N] [--json]

Lists runs, newest first. Users see their own runs; admins see everyone's.

  --state S     only runs in these states (QUEUED, STARTING, RUNNING, CANCELLING,
                SUCCEEDED, FAILED, CANCELLED; case-insensitive; repeatable or comma-separated)
  --name TEXT   only runs whose name contains TEXT
  --sweep ID    only the runs of one sweep
  --owner USER  only USER's runs (admins)
  --all         every user's runs (admins)
  --limit N     at most N runs (default 1000)
  --json        a JSON array of Run objects (proto field names)
)"},
      {"show", R"(Usage: pendulum show RUN [--json]

Shows one run: state, owner, attempt, worker, times, queue reason, exit code and
reason, progress (step, epoch, loss, speed), metric points emitted by the trainer
vs stored by the server, the stored artifacts (checkpoints and named files such
as an analysis run's tensors; fetch with `pendulum artifact`), and the spec as YAML.

  --json   the Run object as JSON (proto field names)
)"},
      {"watch", R"(Usage: pendulum watch RUN [--plain] [--history]

Follows a run until it ends. On a terminal: a live progress bar with step, loss,
speed and ETA. Otherwise (or with --plain): one line per state change and at most
one progress line per second. Exit status: 0 when the run SUCCEEDED, 1 when it
FAILED or was CANCELLED (the reason goes to stderr).

  --plain     plain lines even on a terminal
  --history   also fetch points stored before the watch began
)"},
      {"cancel", R"(Usage: pendulum cancel RUN [--reason TEXT]

Cancels a queued or running run (a running trainer gets SIGTERM, then SIGKILL
after the grace period). Prints the run's new state. Cancelling a finished run
is an error (FAILED_PRECONDITION).
)"},
      {"metrics", R"(Usage: pendulum metrics RUN [--name NAME]... [--format csv|json] [--max-points N] [--step-min S] [--step-max S]

Prints the run's scalar metric points.

  --name NAME       only this series (repeatable or comma-separated; default all)
  --format FORMAT   csv (default: name,step,value,time_unix_ms,attempt) or json
  --max-points N    downsample each series to at most N points (0 = all; max 100000)
  --step-min S      first step (inclusive)
  --step-max S      last step (inclusive; 0 = no limit)
)"},
      {"oscillation", R"(Usage: pendulum oscillation RUN [--layer NAME] [--top K] [--step S] [--json]

Per-layer oscillation statistics (latest value of each statistic per layer),
then for each per-weight snapshot the top-K most oscillating weights.

  --layer NAME   only this layer, e.g. blocks.3.attn.qkv
  --top K        rows per snapshot (default 10)
  --step S       the snapshot at or before step S (default the latest)
  --json         the raw QueryOscillationResponse as JSON
)"},
      {"compare", R"(Usage: pendulum compare RUN... | --sweep ID [--metric NAME]... [--json]

Compares the final value of each metric across runs. Runs are grouped by the
spec fields that differ between them (seed, name, description and tags excepted),
and each group shows mean ± sample std over its runs (e.g. the seeds of a sweep).

  --sweep ID      all runs of this sweep
  --metric NAME   only this metric (repeatable or comma-separated; default all)
  --json          a JSON array of {config, metric, mean, std, n, runs}
)"},
      {"workers", R"(Usage: pendulum workers [--json]

Lists the worker pool: state, free/total GPUs and CPU slots, running runs and the
last heartbeat.
)"},
      {"user", R"(Usage:
  pendulum user create NAME [--role admin|user|worker] [--gpu-quota N]
  pendulum user list [--json]
  pendulum user quota NAME N      at most N whole GPUs running at once (0 = unlimited)

Admin role required. Quotas apply from the next scheduling pass; a run over
its owner's quota waits with the reason "user quota reached".
)"},
      {"checkpoint", R"(Usage: pendulum checkpoint RUN

Asks the trainer of a running run to checkpoint now; the worker uploads the
checkpoint to the server, and a requeued run resumes from the newest one.
FAILED_PRECONDITION if the run is not running.
)"},
      {"artifact", R"(Usage: pendulum artifact RUN NAME [--out FILE]

Fetches one stored artifact of a run (the names `pendulum show RUN` lists under
artifacts, e.g. interaction_basis/layer0.pt of an analysis run) into FILE
(default: the last part of NAME in the current directory; `--out -` writes to
stdout). The file is written under FILE.part and renamed when complete.
)"},
      {"drain", R"(Usage: pendulum drain WORKER

Admin role required. The scheduler places nothing new on WORKER; its running
runs go on. `pendulum undrain WORKER` makes it eligible again.
)"},
      {"undrain", R"(Usage: pendulum undrain WORKER

Admin role required. Makes a drained worker eligible for new runs again.
)"},
      {"token", R"(Usage:
  pendulum token create --user NAME [--role admin|user|worker] [--description TEXT]
      creates a token (and the user if new); prints the token once on stdout
  pendulum token list [--user NAME] [--json]
  pendulum token revoke TOKEN_ID

Admin role required. To bootstrap without a running server use
`pendulum-server token create --db FILE --user NAME --role ROLE`.
)"},
  };
  return *texts;
}

using Command = absl::Status (*)(const Args&, const CliContext&);

const std::map<std::string, Command>& Commands() {
  static const auto* commands = new std::map<std::string, Command>{
      {"submit", SubmitCommand},   {"runs", RunsCommand},       {"show", ShowCommand},
      {"watch", WatchCommand},     {"cancel", CancelCommand},   {"metrics", MetricsCommand},
      {"oscillation", OscillationCommand}, {"compare", CompareCommand}, {"workers", WorkersCommand},
      {"token", TokenCommand},     {"user", UserCommand},       {"drain", DrainCommand},
      {"checkpoint", CheckpointCommand}, {"artifact", ArtifactCommand},
      {"undrain", UndrainCommand},
  };
  return *commands;
}

}  // namespace

absl::StatusOr<GlobalOptions> ParseGlobalOptions(const std::vector<std::string>& args,
                                                 const std::function<const char*(const char*)>& getenv) {
  GlobalOptions o;
  const char* env_server = getenv("PENDULUM_SERVER");
  const char* env_token = getenv("PENDULUM_TOKEN");
  o.server = env_server && *env_server ? env_server : kDefaultServer;
  o.token = env_token ? env_token : "";
  const char* env_ca = getenv("PENDULUM_TLS_CA");
  o.tls_ca = env_ca ? env_ca : "";
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") flags_done = true;
    if (!flags_done) {
      bool matched = false;
      for (const char* name : {"server", "token", "tls-ca"}) {
        const std::string flag = absl::StrCat("--", name);
        std::string value;
        if (a == flag) {
          if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat(flag, ": missing value"));
          value = args[++i];
          matched = true;
        } else if (a.rfind(flag + "=", 0) == 0) {
          value = a.substr(flag.size() + 1);
          matched = true;
        } else {
          continue;
        }
        const std::string n = name;
        (n == "server" ? o.server : n == "token" ? o.token : o.tls_ca) = value;
        break;
      }
      if (matched) continue;
    }
    o.command.push_back(a);
  }
  if (o.server.empty()) return absl::InvalidArgumentError("--server: empty address");
  return o;
}

std::string CommandHelp(const std::string& command) {
  auto it = HelpTexts().find(command);
  return it == HelpTexts().end() ? HelpTexts().at("") : it->second;
}

bool IsHelpRequest(const std::vector<std::string>& command) {
  if (command.empty() || command[0] == "help" || command[0] == "--help" || command[0] == "-h") return true;
  for (const std::string& a : command) {
    if (a == "--") break;
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

int RunCli(const std::vector<std::string>& command, const CliContext& ctx) {
  if (IsHelpRequest(command)) {
    std::string topic;
    if (!command.empty() && command[0] != "--help" && command[0] != "-h") {
      topic = command[0] == "help" ? (command.size() > 1 ? command[1] : "") : command[0];
    }
    if (!topic.empty() && HelpTexts().count(topic) == 0) {
      *ctx.err << "pendulum: unknown command '" << topic << "'\n\n" << CommandHelp("");
      return 2;
    }
    *ctx.out << CommandHelp(topic);
    return command.empty() ? 2 : 0;
  }
  auto it = Commands().find(command[0]);
  if (it == Commands().end()) {
    *ctx.err << "pendulum: unknown command '" << command[0] << "'; run `pendulum --help` for the list\n";
    return 2;
  }
  const Args args(command.begin() + 1, command.end());
  absl::Status status = it->second(args, ctx);
  if (status.ok()) return 0;
  std::string code = absl::StatusCodeToString(status.code());
  *ctx.err << "pendulum " << command[0] << ": " << status.message();
  if (status.code() != absl::StatusCode::kInvalidArgument) *ctx.err << " [" << code << "]";
  if (status.code() == absl::StatusCode::kUnavailable) {
    // The usual causes: wrong address, server down, or TLS on one side only.
    *ctx.err << (ctx.tls ? "\n  hint: check --server, and that the server's certificate is signed by --tls-ca"
                         : "\n  hint: check --server; if the server uses TLS, pass --tls-ca FILE");
  }
  *ctx.err << "\n";
  return 1;
}

}  // namespace pendulum::client
