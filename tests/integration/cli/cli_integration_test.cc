// End-to-end: the real `pendulum` CLI binary against a real pendulum-server
// process (its own SQLite file, loopback, port 0). Covers submit/list/show/
// cancel/watch/metrics, sweeps, auth failures, 20+ kinds of bad spec rejected
// with the field named and the database unchanged, every example spec, and a
// SIGKILLed server that loses no accepted run.
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/child_command.h"
#include "tests/support/server_process.h"
#include "tests/support/test_paths.h"

namespace pendulum::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kValidSpec[] = R"(name: it-run
model: {arch: mlp, hidden: [16]}
data: {dataset: synthetic, synthetic: {num_train: 64, num_eval: 16, num_classes: 4, shape: [8]}}
optimizer: {type: sgd, lr: 0.1}
schedule: {epochs: 1, batch_size: 16}
)";

int64_t AsInt(const json& j) {
  if (j.is_string()) return std::stoll(j.get<std::string>());
  if (j.is_number()) return j.get<int64_t>();
  return 0;
}

class CliIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTestTempDir();
    db_ = dir_ / "pendulum.db";
    ASSERT_TRUE(fs::exists(CliBinary())) << "pendulum CLI not built at " << CliBinary();
    ASSERT_TRUE(fs::exists(ServerBinary()))
        << "pendulum-server not built at " << ServerBinary()
        << " — these tests need the real server binary (target pendulum-server)";
    std::string error;
    admin_ = ServerProcess::CreateToken(db_, "root", "admin", &error);
    ASSERT_FALSE(admin_.empty()) << error;
    alice_ = ServerProcess::CreateToken(db_, "alice", "user", &error);
    ASSERT_FALSE(alice_.empty()) << error;
    bob_ = ServerProcess::CreateToken(db_, "bob", "user", &error);
    ASSERT_FALSE(bob_.empty()) << error;
    server_ = std::make_unique<ServerProcess>(db_);
    ASSERT_TRUE(server_->Start()) << server_->failure();
  }

  void TearDown() override {
    if (server_) server_->Stop();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // Runs the CLI with PENDULUM_SERVER/PENDULUM_TOKEN from the environment.
  CommandResult Cli(const std::vector<std::string>& args, const std::string& token, const std::string& stdin_text = "") {
    std::vector<std::string> argv = {CliBinary().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::map<std::string, std::string> env = {{"PENDULUM_SERVER", server_->address()}};
    env["PENDULUM_TOKEN"] = token.empty() ? std::string("\x01") : token;
    return RunChildCommand(argv, env, stdin_text);
  }

  fs::path WriteSpec(const std::string& name, const std::string& text) {
    fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p;
  }

  // Submits and returns the single run id printed (fails the test otherwise).
  int64_t Submit(const std::string& text, const std::string& token, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"submit", WriteSpec("submit.yaml", text).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult r = Cli(args, token);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    EXPECT_EQ(out.find_first_not_of("0123456789"), std::string::npos) << "stdout must be the run id alone: " << r.out;
    return out.empty() ? 0 : std::stoll(out);
  }

  json RunsJson(const std::string& token, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"runs", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult r = Cli(args, token);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  }

  json ShowJson(int64_t id, const std::string& token) {
    CommandResult r = Cli({"show", std::to_string(id), "--json"}, token);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }

  // Rows in the runs table, read straight from the SQLite file (read-only;
  // WAL lets us read while the server writes).
  int64_t DbRunCount() {
    sqlite3* db = nullptr;
    const std::string uri = "file:" + db_.string() + "?mode=ro";
    if (sqlite3_open_v2(uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << db_ << ": " << sqlite3_errmsg(db);
      sqlite3_close(db);
      return -1;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* stmt = nullptr;
    int64_t count = -1;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM runs", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      count = sqlite3_column_int64(stmt, 0);
    } else {
      ADD_FAILURE() << "SELECT COUNT(*) FROM runs: " << sqlite3_errmsg(db);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return count;
  }

  fs::path dir_, db_;
  std::string admin_, alice_, bob_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(CliIntegrationTest, SubmitListShowCancel) {
  const int64_t id = Submit(kValidSpec, alice_, {"--set", "optimizer.lr=0.05", "--set", "tags.team=vision"});
  ASSERT_GT(id, 0);

  json runs = RunsJson(alice_);
  ASSERT_TRUE(runs.is_array()) << runs;
  bool listed = false;
  for (const auto& r : runs) {
    if (AsInt(r["id"]) == id) {
      listed = true;
      EXPECT_EQ(r["owner"], "alice");
      EXPECT_EQ(r["name"], "it-run");
    }
  }
  EXPECT_TRUE(listed) << runs;

  CommandResult table = Cli({"runs"}, alice_);
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("ID"), std::string::npos);
  EXPECT_NE(table.out.find("it-run"), std::string::npos) << table.out;

  json shown = ShowJson(id, alice_);
  EXPECT_DOUBLE_EQ(shown["spec"]["optimizer"]["lr"].get<double>(), 0.05) << "override not applied: " << shown;
  EXPECT_EQ(shown["spec"]["tags"]["team"], "vision");
  EXPECT_TRUE(shown.contains("points_emitted"));
  EXPECT_TRUE(shown.contains("points_stored"));

  CommandResult text = Cli({"show", std::to_string(id)}, alice_);
  EXPECT_EQ(text.exit_code, 0) << text.err;
  for (const char* part : {"state:", "attempt:", "worker:", "queue reason:", "exit:", "progress:",
                           "points:        emitted", "artifacts:     -", "spec:", "  name: it-run", "lr: 0.05"}) {
    EXPECT_NE(text.out.find(part), std::string::npos) << part << " missing in:\n" << text.out;
  }

  // Nothing stored yet: fetching an artifact is NOT_FOUND, saying what the run has.
  CommandResult artifact = Cli({"artifact", std::to_string(id), "interaction_basis/layer0.pt", "--out",
                                (dir_ / "layer0.pt").string()},
                               alice_);
  EXPECT_NE(artifact.exit_code, 0);
  EXPECT_NE(artifact.err.find("no named artifacts"), std::string::npos) << artifact.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "layer0.pt"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "layer0.pt.part"));
  EXPECT_NE(Cli({"artifact", std::to_string(id)}, alice_).err.find("expected RUN and NAME"), std::string::npos);

  // No worker here, so the run is queued: a checkpoint request is refused, clearly.
  CommandResult checkpoint = Cli({"checkpoint", std::to_string(id)}, alice_);
  EXPECT_NE(checkpoint.exit_code, 0);
  EXPECT_NE(checkpoint.err.find("FAILED_PRECONDITION"), std::string::npos) << checkpoint.err;

  CommandResult cancel = Cli({"cancel", std::to_string(id)}, alice_);
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_NE(cancel.out.find("CANCEL"), std::string::npos) << cancel.out;
  json after = ShowJson(id, alice_);
  EXPECT_EQ(after["state"], "CANCELLED") << "a queued run with no worker is cancelled at once: " << after;

  CommandResult again = Cli({"cancel", std::to_string(id)}, alice_);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("FAILED_PRECONDITION"), std::string::npos) << again.err;

  // watch on a finished run reports how it ended and exits non-zero for CANCELLED.
  CommandResult watch = Cli({"watch", std::to_string(id)}, alice_);
  EXPECT_NE(watch.exit_code, 0);
  EXPECT_NE(watch.err.find("CANCELLED"), std::string::npos) << watch.out << watch.err;

  CommandResult missing = Cli({"show", "999999"}, alice_);
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("NOT_FOUND"), std::string::npos) << missing.err;
}

TEST_F(CliIntegrationTest, SweepSubmitsTheCartesianProduct) {
  CommandResult r = Cli({"submit", WriteSpec("s.yaml", kValidSpec).string(), "--sweep", "seed=1,2,3", "--sweep",
                         "model.hidden=[8],[16,16]"},
                        alice_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<int64_t> ids;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) ids.push_back(std::stoll(line));
  ASSERT_EQ(ids.size(), 6u) << r.out;
  std::set<std::pair<uint64_t, size_t>> combos;
  int64_t sweep = 0;
  for (int64_t id : ids) {
    json s = ShowJson(id, alice_);
    combos.insert({static_cast<uint64_t>(AsInt(s["spec"]["seed"])), s["spec"]["model"]["hidden"].size()});
    sweep = AsInt(s["sweep_id"]);
  }
  EXPECT_EQ(combos.size(), 6u);
  EXPECT_GT(sweep, 0);
  json listed = RunsJson(alice_, {"--sweep", std::to_string(sweep)});
  EXPECT_EQ(listed.size(), 6u) << listed;
  // No metrics yet (no worker): compare still groups and reports cleanly.
  CommandResult cmp = Cli({"compare", "--sweep", std::to_string(sweep)}, alice_);
  EXPECT_EQ(cmp.exit_code, 0) << cmp.err;
  EXPECT_NE(cmp.err.find("is QUEUED"), std::string::npos) << cmp.err;
}

TEST_F(CliIntegrationTest, AuthFailures) {
  const int64_t id = Submit(kValidSpec, alice_);
  ASSERT_GT(id, 0);

  CommandResult none = Cli({"runs"}, "");
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("UNAUTHENTICATED"), std::string::npos) << none.err;

  CommandResult wrong = Cli({"runs"}, "not-a-real-token");
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.err.find("UNAUTHENTICATED"), std::string::npos) << wrong.err;

  CommandResult submit_no_token = Cli({"submit", WriteSpec("x.yaml", kValidSpec).string()}, "");
  EXPECT_NE(submit_no_token.exit_code, 0);
  EXPECT_TRUE(submit_no_token.out.empty()) << "no run id may be printed: " << submit_no_token.out;

  // bob cannot see, watch or cancel alice's run; it stays as it was.
  CommandResult show = Cli({"show", std::to_string(id)}, bob_);
  EXPECT_NE(show.exit_code, 0);
  EXPECT_TRUE(show.err.find("NOT_FOUND") != std::string::npos ||
              show.err.find("PERMISSION_DENIED") != std::string::npos)
      << show.err;
  CommandResult cancel = Cli({"cancel", std::to_string(id)}, bob_);
  EXPECT_NE(cancel.exit_code, 0) << cancel.out;
  EXPECT_EQ(ShowJson(id, alice_)["state"], "QUEUED");
  for (const auto& r : RunsJson(bob_)) EXPECT_NE(AsInt(r["id"]), id) << "bob lists alice's run";
  CommandResult other_owner = Cli({"runs", "--owner", "alice"}, bob_);
  EXPECT_NE(other_owner.exit_code, 0);

  // The admin sees everyone's runs.
  bool admin_sees = false;
  for (const auto& r : RunsJson(admin_, {"--all"})) admin_sees |= AsInt(r["id"]) == id;
  EXPECT_TRUE(admin_sees);

  // Users may not manage tokens; admins may, and a revoked token stops working.
  CommandResult user_token = Cli({"token", "create", "--user", "mallory", "--role", "admin"}, bob_);
  EXPECT_NE(user_token.exit_code, 0);
  EXPECT_NE(user_token.err.find("PERMISSION_DENIED"), std::string::npos) << user_token.err;
  CommandResult made = Cli({"token", "create", "--user", "carol", "--role", "user"}, admin_);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  std::string carol = made.out.substr(0, made.out.find('\n'));
  EXPECT_EQ(Cli({"runs"}, carol).exit_code, 0);
  CommandResult list = Cli({"token", "list", "--json", "--user", "carol"}, admin_);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  json tokens = json::parse(list.out, nullptr, false);
  ASSERT_TRUE(tokens.contains("tokens") && tokens["tokens"].size() == 1) << list.out;
  const int64_t token_id = AsInt(tokens["tokens"][0]["id"]);
  ASSERT_EQ(Cli({"token", "revoke", std::to_string(token_id)}, admin_).exit_code, 0);
  CommandResult revoked = Cli({"runs"}, carol);
  EXPECT_NE(revoked.exit_code, 0);
  EXPECT_NE(revoked.err.find("UNAUTHENTICATED"), std::string::npos) << revoked.err;
}

struct BadSpec {
  const char* label;
  std::string text;                 // spec file contents
  std::vector<std::string> extra;   // extra CLI args (--set / --sweep)
  const char* field;                // must be named in stderr
};

std::string Base() { return kValidSpec; }

// Admins create users with GPU quotas, change them, and drain workers; users
// may do none of it; bad names and numbers are refused naming the problem.
TEST_F(CliIntegrationTest, AdminsManageUsersQuotasAndDrain) {
  CommandResult made = Cli({"user", "create", "dan", "--gpu-quota", "2"}, admin_);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_NE(made.out.find("dan"), std::string::npos) << made.out;
  CommandResult quota = Cli({"user", "quota", "dan", "5"}, admin_);
  ASSERT_EQ(quota.exit_code, 0) << quota.err;
  CommandResult list = Cli({"user", "list", "--json"}, admin_);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  json users = json::parse(list.out, nullptr, false);
  ASSERT_TRUE(users.contains("users")) << list.out;
  bool found = false;
  for (const auto& u : users["users"]) {
    if (u["name"] == "dan") {
      found = true;
      EXPECT_EQ(AsInt(u["gpu_quota"]), 5) << u.dump();
    }
  }
  EXPECT_TRUE(found) << list.out;

  CommandResult ghost = Cli({"user", "quota", "ghost", "1"}, admin_);
  EXPECT_NE(ghost.exit_code, 0);
  EXPECT_NE(ghost.err.find("ghost"), std::string::npos) << ghost.err;
  CommandResult negative = Cli({"user", "quota", "dan", "-3"}, admin_);
  EXPECT_NE(negative.exit_code, 0);
  EXPECT_NE(negative.err.find("GPU quota"), std::string::npos) << negative.err;
  CommandResult twice = Cli({"user", "create", "dan"}, admin_);
  EXPECT_NE(twice.exit_code, 0);
  EXPECT_NE(twice.err.find("already exists"), std::string::npos) << twice.err;

  CommandResult by_user = Cli({"user", "quota", "dan", "100"}, bob_);
  EXPECT_NE(by_user.exit_code, 0);
  EXPECT_NE(by_user.err.find("PERMISSION_DENIED"), std::string::npos) << by_user.err;
  CommandResult drain_by_user = Cli({"drain", "w1"}, bob_);
  EXPECT_NE(drain_by_user.exit_code, 0);
  EXPECT_NE(drain_by_user.err.find("PERMISSION_DENIED"), std::string::npos) << drain_by_user.err;
  CommandResult drain_unknown = Cli({"drain", "no-such-worker"}, admin_);
  EXPECT_NE(drain_unknown.exit_code, 0);
  EXPECT_NE(drain_unknown.err.find("no-such-worker"), std::string::npos) << drain_unknown.err;
  // Nothing above changed dan's quota.
  list = Cli({"user", "list", "--json"}, admin_);
  EXPECT_NE(list.out.find("\"gpu_quota\":5"), std::string::npos) << list.out;
}

TEST_F(CliIntegrationTest, BadSpecsAreRejectedNamingTheFieldAndStoreNothing) {
  const std::vector<BadSpec> cases = {
      {"unknown_top_field", Base() + "learning_rate: 0.1\n", {}, "spec.learning_rate"},
      {"unknown_nested_field", Base() + "resources: {gpu: 1}\n", {}, "spec.resources.gpu"},
      {"wrong_type", Base(), {"--set", "schedule.batch_size=abc"}, "spec.schedule.batch_size"},
      {"negative_unsigned", Base(), {"--set", "schedule.epochs=-2"}, "spec.schedule.epochs"},
      {"uint32_overflow", Base(), {"--set", "schedule.batch_size=5000000000"}, "spec.schedule.batch_size"},
      {"negative_lr", Base(), {"--set", "optimizer.lr=-0.1"}, "spec.optimizer.lr"},
      {"missing_lr", "name: x\nmodel: {arch: mlp}\ndata: {dataset: synthetic}\noptimizer: {type: sgd}\n"
                     "schedule: {epochs: 1, batch_size: 8}\n", {}, "spec.optimizer.lr"},
      {"unknown_optimizer", Base(), {"--set", "optimizer.type=rmsprop"}, "spec.optimizer.type"},
      {"unknown_arch", Base(), {"--set", "model.arch=resnet99"}, "spec.model.arch"},
      {"unknown_dataset", Base(), {"--set", "data.dataset=mnist"}, "spec.data.dataset"},
      {"missing_name", Base(), {"--set", "name="}, "spec.name"},
      {"batch_too_big", Base(), {"--set", "schedule.batch_size=70000"}, "spec.schedule.batch_size"},
      {"no_epochs_or_steps", Base(), {"--set", "schedule.epochs=0"}, "spec.schedule.epochs"},
      {"two_methods", Base() + "method: {ofq: {weight_bits: 2}, incremental: {base_classes: 2}}\n", {},
       "spec.method.incremental"},
      {"duplicate_key", Base() + "seed: 1\nseed: 2\n", {}, "spec.seed"},
      {"malformed_yaml", "name: x\nmodel: {arch: mlp\n", {}, "spec:"},
      {"malformed_json", "{\"name\": \"x\",, }", {}, "spec:"},
      {"top_level_list", "- name: x\n", {}, "spec:"},
      {"empty_file", "", {}, "spec_text"},
      {"bad_bits", Base() + "method: {ofq: {weight_bits: 5}}\n", {}, "spec.method.ofq.weight_bits"},
      {"cga_boundary_range", Base() + "method: {ofq: {weight_bits: 2, cga: {enabled: true, boundary_range: 0.7}}}\n",
       {}, "spec.method.ofq.cga.boundary_range"},
      {"incremental_stage_too_big", Base() + "method: {incremental: {base_classes: 2, classes_per_stage: 11}}\n", {},
       "spec.method.incremental.classes_per_stage"},
      {"too_many_gpus", Base(), {"--set", "resources.gpus=17"}, "spec.resources.gpus"},
      {"priority", Base(), {"--set", "priority=101"}, "spec.priority"},
      {"vit_heads", "name: v\nmodel: {arch: vit_tiny28, vit: {heads: 3}}\ndata: {dataset: fashion_mnist}\n"
                    "optimizer: {type: adamw, lr: 0.001}\nschedule: {epochs: 1, batch_size: 8}\n", {},
       "spec.model.vit.dim"},
      {"unknown_override_path", Base(), {"--set", "optimizer.learning_rate=0.1"}, "spec.optimizer.learning_rate"},
      {"bad_sweep_value", Base(), {"--sweep", "seed=1,abc"}, "spec.seed"},
      {"bad_sweep_path", Base(), {"--sweep", "model.widths=1,2"}, "spec.model.widths"},
  };
  ASSERT_GE(cases.size(), 20u);
  const json before_runs = RunsJson(admin_, {"--all"});
  const int64_t before_db = DbRunCount();
  for (const BadSpec& c : cases) {
    SCOPED_TRACE(c.label);
    std::vector<std::string> args = {"submit", WriteSpec(std::string(c.label) + ".yaml", c.text).string()};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    CommandResult r = Cli(args, alice_);
    EXPECT_NE(r.exit_code, 0) << c.label << " was accepted: " << r.out;
    EXPECT_TRUE(r.out.empty()) << "no run id may be printed: " << r.out;
    EXPECT_NE(r.err.find(c.field), std::string::npos) << c.label << ": stderr lacks " << c.field << ":\n" << r.err;
  }
  EXPECT_EQ(DbRunCount(), before_db) << "a rejected spec reached the database";
  EXPECT_EQ(RunsJson(admin_, {"--all"}).size(), before_runs.size());
}

TEST_F(CliIntegrationTest, EveryExampleSpecIsAccepted) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(SourceDir() / "examples")) {
    if (e.is_regular_file() && (e.path().extension() == ".yaml" || e.path().extension() == ".yml" ||
                                e.path().extension() == ".json")) {
      files.push_back(e.path());
    }
  }
  ASSERT_GE(files.size(), 2u);
  for (const fs::path& f : files) {
    CommandResult r = Cli({"submit", f.string()}, alice_);
    EXPECT_EQ(r.exit_code, 0) << f << ":\n" << r.err;
    EXPECT_FALSE(r.out.empty()) << f;
  }
  EXPECT_EQ(RunsJson(alice_).size(), files.size());
}

TEST_F(CliIntegrationTest, SigkilledServerLosesNoAcceptedRun) {
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Submit(kValidSpec, alice_, {"--set", "seed=" + std::to_string(i)}));
  server_->Kill();  // no shutdown path runs: only what was committed survives
  ASSERT_TRUE(server_->Start()) << server_->failure();
  std::set<int64_t> listed;
  for (const auto& r : RunsJson(alice_)) listed.insert(AsInt(r["id"]));
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_TRUE(listed.count(ids[i])) << "run " << ids[i] << " lost";
    json s = ShowJson(ids[i], alice_);
    EXPECT_EQ(AsInt(s["spec"]["seed"]), static_cast<int64_t>(i));
    EXPECT_EQ(s["state"], "QUEUED");
  }
  // The restarted server keeps accepting runs, with fresh ids.
  const int64_t next = Submit(kValidSpec, alice_);
  EXPECT_GT(next, ids.back());
}

TEST_F(CliIntegrationTest, MetricsOfARunWithoutPointsAndWorkers) {
  const int64_t id = Submit(kValidSpec, alice_);
  CommandResult csv = Cli({"metrics", std::to_string(id), "--format", "csv"}, alice_);
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(csv.out, "name,step,value,time_unix_ms,attempt\n");
  CommandResult js = Cli({"metrics", std::to_string(id), "--format", "json", "--name", "loss"}, alice_);
  ASSERT_EQ(js.exit_code, 0) << js.err;
  EXPECT_FALSE(json::parse(js.out, nullptr, false).is_discarded()) << js.out;
  CommandResult bad = Cli({"metrics", std::to_string(id), "--format", "xml"}, alice_);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--format"), std::string::npos);
  CommandResult workers = Cli({"workers"}, alice_);
  EXPECT_EQ(workers.exit_code, 0) << workers.err;
  EXPECT_NE(workers.out.find("STATE"), std::string::npos);
}

TEST(CliHelpTest, EveryCommandHasHelp) {
  ASSERT_TRUE(fs::exists(CliBinary())) << "pendulum CLI not built at " << CliBinary();
  for (const char* cmd : {"submit", "runs", "show", "watch", "cancel", "metrics", "oscillation", "compare",
                          "workers", "token"}) {
    CommandResult r = RunChildCommand({CliBinary().string(), cmd, "--help"}, {{"PENDULUM_SERVER", "127.0.0.1:1"}});
    EXPECT_EQ(r.exit_code, 0) << cmd << r.err;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd << ":\n" << r.out;
  }
  CommandResult top = RunChildCommand({CliBinary().string(), "--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* cmd : {"submit", "watch", "compare", "token"}) EXPECT_NE(top.out.find(cmd), std::string::npos);
  CommandResult unknown = RunChildCommand({CliBinary().string(), "frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("unknown command 'frobnicate'"), std::string::npos);
}

TEST(CliHelpTest, UnreachableServerIsAClearError) {
  CommandResult r = RunChildCommand({CliBinary().string(), "--server", "127.0.0.1:1", "runs"},
                                    {{"PENDULUM_TOKEN", "x"}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("UNAVAILABLE"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace pendulum::testing
