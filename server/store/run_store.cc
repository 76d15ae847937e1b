#include "server/store/run_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace pendulum::store {

using pendulum::v1::Run;
using pendulum::v1::RunSpec;
using pendulum::v1::RunState;

namespace {

// Column order shared by every SELECT that builds a Run (see RowToRun).
constexpr char kRunColumns[] =
    "r.id, r.name, r.owner, r.state, r.spec, r.priority, r.attempt, r.worker_id, r.created_ms, "
    "r.started_ms, r.finished_ms, r.exit_reason, r.exit_code, r.queue_reason, r.sweep_id, "
    "r.points_emitted, r.progress_step, r.progress_total_steps, r.progress_epoch, "
    "r.progress_last_loss, r.progress_steps_per_sec, "
    "COALESCE((SELECT ap.points_stored FROM attempt_progress ap "
    "          WHERE ap.run_id = r.id AND ap.attempt = r.attempt), 0)";

absl::StatusOr<Run> RowToRun(const Statement& s) {
  Run run;
  run.set_id(s.ColumnInt(0));
  run.set_name(s.ColumnText(1));
  run.set_owner(s.ColumnText(2));
  run.set_state(static_cast<RunState>(s.ColumnInt(3)));
  if (!run.mutable_spec()->ParseFromString(s.ColumnBlob(4))) {
    return absl::InternalError(absl::StrCat("run ", run.id(), ": stored spec does not parse"));
  }
  run.set_priority(static_cast<int32_t>(s.ColumnInt(5)));
  run.set_attempt(static_cast<uint32_t>(s.ColumnInt(6)));
  run.set_worker_id(s.ColumnText(7));
  run.set_created_unix_ms(s.ColumnInt(8));
  run.set_started_unix_ms(s.ColumnInt(9));
  run.set_finished_unix_ms(s.ColumnInt(10));
  run.set_exit_reason(s.ColumnText(11));
  run.set_exit_code(static_cast<int32_t>(s.ColumnInt(12)));
  run.set_queue_reason(s.ColumnText(13));
  run.set_sweep_id(s.ColumnInt(14));
  run.set_points_emitted(s.ColumnInt(15));
  auto* p = run.mutable_progress();
  p->set_step(s.ColumnInt(16));
  p->set_total_steps(s.ColumnInt(17));
  p->set_epoch(s.ColumnDouble(18));
  p->set_last_loss(s.ColumnDouble(19));
  p->set_steps_per_second(s.ColumnDouble(20));
  run.set_points_stored(s.ColumnInt(21));
  return run;
}

absl::StatusOr<std::vector<Run>> CollectRuns(Statement* s) {
  std::vector<Run> runs;
  while (true) {
    PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    PENDULUM_ASSIGN_OR_RETURN(Run run, RowToRun(*s));
    runs.push_back(std::move(run));
  }
  s->Reset();
  return runs;
}

absl::StatusOr<Run> ReadRun(Connection* conn, int64_t run_id) {
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s, conn->Prepare(absl::StrCat("SELECT ", kRunColumns, " FROM runs r WHERE r.id = ?")));
  s->Bind(1, run_id);
  PENDULUM_ASSIGN_OR_RETURN(std::vector<Run> runs, CollectRuns(s));
  if (runs.empty()) return absl::NotFoundError(absl::StrCat("run ", run_id, " not found"));
  return std::move(runs.front());
}

// The few columns a transition decides on.
struct RunHead {
  RunState state = pendulum::v1::RUN_STATE_UNSPECIFIED;
  uint32_t attempt = 0;
  std::string worker_id;
  int64_t started_ms = 0;
};

absl::StatusOr<RunHead> ReadHead(Connection* conn, int64_t run_id) {
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s, conn->Prepare("SELECT state, attempt, worker_id, started_ms FROM runs WHERE id = ?"));
  s->Bind(1, run_id);
  PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
  if (!row) return absl::NotFoundError(absl::StrCat("run ", run_id, " not found"));
  RunHead head{static_cast<RunState>(s->ColumnInt(0)), static_cast<uint32_t>(s->ColumnInt(1)),
               s->ColumnText(2), s->ColumnInt(3)};
  s->Reset();
  return head;
}

absl::Status AppendEvent(Connection* conn, int64_t run_id, uint32_t attempt, int64_t now,
                         RunState from, RunState to, const std::string& worker_id,
                         const std::string& reason) {
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s,
      conn->Prepare("INSERT INTO run_events(run_id, attempt, time_ms, from_state, to_state, worker_id, "
                    "reason) VALUES (?, ?, ?, ?, ?, ?, ?)"));
  s->Bind(1, run_id)
      .Bind(2, static_cast<int64_t>(attempt))
      .Bind(3, now)
      .Bind(4, static_cast<int64_t>(from))
      .Bind(5, static_cast<int64_t>(to))
      .Bind(6, worker_id)
      .Bind(7, reason);
  return s->Run();
}

std::string StateList(const std::vector<RunState>& states) {
  std::vector<std::string> names;
  for (RunState s : states) names.push_back(RunStateName(s));
  return absl::StrJoin(names, ", ");
}

absl::Status InsertRun(Connection* conn, const RunSpec& spec, const std::string& owner,
                       int64_t sweep_id, int64_t now, int64_t* id) {
  std::string blob;
  if (!spec.SerializeToString(&blob)) return absl::InternalError("RunSpec does not serialize");
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s,
      conn->Prepare("INSERT INTO runs(name, owner, state, spec, priority, req_gpus, req_gpu_fraction, "
                    "req_gpu_memory_mb, req_cpus, created_ms, sweep_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  s->Bind(1, spec.name())
      .Bind(2, owner)
      .Bind(3, static_cast<int64_t>(pendulum::v1::QUEUED))
      .BindBlob(4, blob)
      .Bind(5, static_cast<int64_t>(spec.priority()))
      .Bind(6, static_cast<int64_t>(spec.resources().gpus()))
      .Bind(7, spec.resources().gpu_fraction())
      .Bind(8, static_cast<int64_t>(spec.resources().gpu_memory_mb()))
      .Bind(9, static_cast<int64_t>(spec.resources().cpus()))
      .Bind(10, now)
      .Bind(11, sweep_id);
  absl::Status st = s->Run();
  if (absl::IsFailedPrecondition(st)) {
    // The only foreign key here is the owner.
    return absl::NotFoundError(absl::StrCat("owner \"", owner, "\": no such user"));
  }
  PENDULUM_RETURN_IF_ERROR(st);
  *id = conn->LastInsertRowId();
  return AppendEvent(conn, *id, 0, now, pendulum::v1::RUN_STATE_UNSPECIFIED, pendulum::v1::QUEUED, "",
                     sweep_id ? absl::StrCat("submitted (sweep ", sweep_id, ")") : "submitted");
}

}  // namespace

bool IsTerminal(RunState state) {
  return state == pendulum::v1::SUCCEEDED || state == pendulum::v1::FAILED ||
         state == pendulum::v1::CANCELLED;
}

std::string RunStateName(RunState state) { return pendulum::v1::RunState_Name(state); }

RunStore::RunStore(Database* db, const Clock* clock) : db_(db), clock_(clock) {}

absl::StatusOr<Run> RunStore::CreateRun(const RunSpec& spec, const std::string& owner) {
  PENDULUM_ASSIGN_OR_RETURN(SweepResult result, CreateRuns({spec}, owner, /*as_sweep=*/false));
  return std::move(result.runs.front());
}

absl::StatusOr<SweepResult> RunStore::CreateRuns(const std::vector<RunSpec>& specs,
                                                 const std::string& owner, bool as_sweep) {
  if (specs.empty()) return absl::InvalidArgumentError("specs: at least one run is required");
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  const int64_t now = clock_->NowUnixMillis();
  SweepResult result;
  std::vector<int64_t> ids;
  {
    Transaction txn(conn.get());
    PENDULUM_RETURN_IF_ERROR(txn.status());
    if (as_sweep) {
      PENDULUM_ASSIGN_OR_RETURN(
          Statement * s, conn->Prepare("INSERT INTO sweeps(owner, size, created_ms) VALUES (?, ?, ?)"));
      s->Bind(1, owner).Bind(2, static_cast<int64_t>(specs.size())).Bind(3, now);
      absl::Status st = s->Run();
      if (absl::IsFailedPrecondition(st)) {
        return absl::NotFoundError(absl::StrCat("owner \"", owner, "\": no such user"));
      }
      PENDULUM_RETURN_IF_ERROR(st);
      result.sweep_id = conn->LastInsertRowId();
    }
    for (const RunSpec& spec : specs) {
      int64_t id = 0;
      PENDULUM_RETURN_IF_ERROR(InsertRun(conn.get(), spec, owner, result.sweep_id, now, &id));
      ids.push_back(id);
    }
    PENDULUM_RETURN_IF_ERROR(txn.Commit());
  }
  for (int64_t id : ids) {
    PENDULUM_ASSIGN_OR_RETURN(Run run, ReadRun(conn.get(), id));
    result.runs.push_back(std::move(run));
  }
  return result;
}

absl::StatusOr<Run> RunStore::GetRun(int64_t run_id) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  return ReadRun(conn.get(), run_id);
}

absl::StatusOr<RunPage> RunStore::ListRuns(const RunFilter& filter) {
  int page_size = filter.page_size == 0 ? 100 : filter.page_size;
  if (page_size < 1 || page_size > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: got ", filter.page_size, ", must be 1..1000 (0 = 100)"));
  }
  int64_t before_id = 0;
  if (!filter.page_token.empty()) {
    // Token "r<id>": list runs with a smaller id (newest first, stable under inserts).
    if (filter.page_token[0] != 'r' ||
        !absl::SimpleAtoi(filter.page_token.substr(1), &before_id) || before_id <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_token: got \"", filter.page_token,
                       "\", must be a next_page_token returned by an earlier ListRuns"));
    }
  }
  std::vector<std::string> where;
  if (!filter.states.empty()) {
    where.push_back(absl::StrCat("r.state IN (",
                                 absl::StrJoin(std::vector<std::string>(filter.states.size(), "?"), ","),
                                 ")"));
  }
  if (!filter.owner.empty()) where.push_back("r.owner = ?");
  if (!filter.name_contains.empty()) where.push_back("instr(r.name, ?) > 0");
  if (filter.sweep_id != 0) where.push_back("r.sweep_id = ?");
  if (before_id != 0) where.push_back("r.id < ?");
  std::string sql = absl::StrCat("SELECT ", kRunColumns, " FROM runs r",
                                 where.empty() ? "" : " WHERE ", absl::StrJoin(where, " AND "),
                                 " ORDER BY r.id DESC LIMIT ?");
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(Statement * s, conn->Prepare(sql));
  int i = 1;
  for (RunState st : filter.states) s->Bind(i++, static_cast<int64_t>(st));
  if (!filter.owner.empty()) s->Bind(i++, filter.owner);
  if (!filter.name_contains.empty()) s->Bind(i++, filter.name_contains);
  if (filter.sweep_id != 0) s->Bind(i++, filter.sweep_id);
  if (before_id != 0) s->Bind(i++, before_id);
  s->Bind(i++, static_cast<int64_t>(page_size) + 1);  // one extra row tells whether more follow
  PENDULUM_ASSIGN_OR_RETURN(std::vector<Run> runs, CollectRuns(s));
  RunPage page;
  if (static_cast<int>(runs.size()) > page_size) {
    runs.resize(page_size);
    page.next_page_token = absl::StrCat("r", runs.back().id());
  }
  page.runs = std::move(runs);
  return page;
}

absl::StatusOr<std::vector<Run>> RunStore::ListRunsInStates(const std::vector<RunState>& states) {
  if (states.empty()) return std::vector<Run>{};
  std::string sql = absl::StrCat(
      "SELECT ", kRunColumns, " FROM runs r WHERE r.state IN (",
      absl::StrJoin(std::vector<std::string>(states.size(), "?"), ","), ") ORDER BY r.id");
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(Statement * s, conn->Prepare(sql));
  int i = 1;
  for (RunState st : states) s->Bind(i++, static_cast<int64_t>(st));
  return CollectRuns(s);
}

absl::StatusOr<std::vector<Run>> RunStore::ListActiveRunsOnWorker(const std::string& worker_id) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s, conn->Prepare(absl::StrCat("SELECT ", kRunColumns,
                                                " FROM runs r WHERE r.worker_id = ? AND r.state IN "
                                                "(?, ?, ?) ORDER BY r.id")));
  s->Bind(1, worker_id)
      .Bind(2, static_cast<int64_t>(pendulum::v1::STARTING))
      .Bind(3, static_cast<int64_t>(pendulum::v1::RUNNING))
      .Bind(4, static_cast<int64_t>(pendulum::v1::CANCELLING));
  return CollectRuns(s);
}

absl::StatusOr<std::vector<std::pair<RunState, int64_t>>> RunStore::CountRunsByState() {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(Statement * s,
                            conn->Prepare("SELECT state, COUNT(*) FROM runs GROUP BY state ORDER BY state"));
  std::vector<std::pair<RunState, int64_t>> counts;
  while (true) {
    PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    counts.emplace_back(static_cast<RunState>(s->ColumnInt(0)), s->ColumnInt(1));
  }
  s->Reset();
  return counts;
}

absl::StatusOr<Run> RunStore::UpdateRunState(int64_t run_id, const RunTransition& t) {
  if (t.to == pendulum::v1::RUN_STATE_UNSPECIFIED || t.to == pendulum::v1::QUEUED ||
      t.to == pendulum::v1::STARTING) {
    return absl::InvalidArgumentError(absl::StrCat(
        "to: got ", RunStateName(t.to),
        ", must be RUNNING, CANCELLING, SUCCEEDED, FAILED or CANCELLED (use AssignRun/RequeueRun)"));
  }
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  const int64_t now = clock_->NowUnixMillis();
  {
    Transaction txn(conn.get());
    PENDULUM_RETURN_IF_ERROR(txn.status());
    PENDULUM_ASSIGN_OR_RETURN(RunHead head, ReadHead(conn.get(), run_id));
    if (t.expected_attempt && *t.expected_attempt != head.attempt) {
      return absl::FailedPreconditionError(absl::StrCat("run ", run_id, " is at attempt ", head.attempt,
                                                        ", not ", *t.expected_attempt));
    }
    bool allowed = t.allowed_from.empty()
                       ? !IsTerminal(head.state)
                       : std::find(t.allowed_from.begin(), t.allowed_from.end(), head.state) !=
                             t.allowed_from.end();
    if (!allowed) {
      return absl::FailedPreconditionError(absl::StrCat(
          "run ", run_id, " is ", RunStateName(head.state), "; cannot change to ", RunStateName(t.to),
          t.allowed_from.empty() ? " (it has finished)"
                                 : absl::StrCat(" (allowed from: ", StateList(t.allowed_from), ")")));
    }
    const bool terminal = IsTerminal(t.to);
    int64_t started = head.started_ms;
    if (t.to == pendulum::v1::RUNNING && started == 0) started = now;
    PENDULUM_ASSIGN_OR_RETURN(
        Statement * s,
        conn->Prepare("UPDATE runs SET state = ?, started_ms = ?, queue_reason = '', "
                      "finished_ms = CASE WHEN ? THEN ? ELSE finished_ms END, "
                      "exit_reason = CASE WHEN ? THEN ? ELSE exit_reason END, "
                      "exit_code = CASE WHEN ? THEN ? ELSE exit_code END WHERE id = ?"));
    s->Bind(1, static_cast<int64_t>(t.to))
        .Bind(2, started)
        .Bind(3, static_cast<int64_t>(terminal))
        .Bind(4, now)
        .Bind(5, static_cast<int64_t>(terminal))
        .Bind(6, t.reason)
        .Bind(7, static_cast<int64_t>(t.exit_code.has_value()))
        .Bind(8, static_cast<int64_t>(t.exit_code.value_or(0)))
        .Bind(9, run_id);
    PENDULUM_RETURN_IF_ERROR(s->Run());
    PENDULUM_RETURN_IF_ERROR(
        AppendEvent(conn.get(), run_id, head.attempt, now, head.state, t.to, head.worker_id, t.reason));
    PENDULUM_RETURN_IF_ERROR(txn.Commit());
  }
  return ReadRun(conn.get(), run_id);
}

absl::StatusOr<Run> RunStore::AssignRun(int64_t run_id, const std::string& worker_id,
                                        const std::string& reason) {
  if (worker_id.empty()) return absl::InvalidArgumentError("worker_id: must not be empty");
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  const int64_t now = clock_->NowUnixMillis();
  {
    Transaction txn(conn.get());
    PENDULUM_RETURN_IF_ERROR(txn.status());
    PENDULUM_ASSIGN_OR_RETURN(RunHead head, ReadHead(conn.get(), run_id));
    if (head.state != pendulum::v1::QUEUED) {
      return absl::FailedPreconditionError(absl::StrCat("run ", run_id, " is ", RunStateName(head.state),
                                                        "; only QUEUED runs can be assigned"));
    }
    const uint32_t attempt = std::max<uint32_t>(head.attempt, 1);
    PENDULUM_ASSIGN_OR_RETURN(
        Statement * s,
        conn->Prepare("UPDATE runs SET state = ?, attempt = ?, worker_id = ?, started_ms = 0, "
                      "queue_reason = '', points_emitted = 0 WHERE id = ?"));
    s->Bind(1, static_cast<int64_t>(pendulum::v1::STARTING))
        .Bind(2, static_cast<int64_t>(attempt))
        .Bind(3, worker_id)
        .Bind(4, run_id);
    PENDULUM_RETURN_IF_ERROR(s->Run());
    PENDULUM_RETURN_IF_ERROR(AppendEvent(conn.get(), run_id, attempt, now, head.state,
                                         pendulum::v1::STARTING, worker_id, reason));
    PENDULUM_RETURN_IF_ERROR(txn.Commit());
  }
  return ReadRun(conn.get(), run_id);
}

absl::StatusOr<Run> RunStore::RequeueRun(int64_t run_id, uint32_t expected_attempt,
                                         const std::string& reason) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  const int64_t now = clock_->NowUnixMillis();
  {
    Transaction txn(conn.get());
    PENDULUM_RETURN_IF_ERROR(txn.status());
    PENDULUM_ASSIGN_OR_RETURN(RunHead head, ReadHead(conn.get(), run_id));
    if (head.attempt != expected_attempt) {
      return absl::FailedPreconditionError(absl::StrCat("run ", run_id, " is at attempt ", head.attempt,
                                                        ", not ", expected_attempt,
                                                        " (already requeued?)"));
    }
    if (head.state != pendulum::v1::STARTING && head.state != pendulum::v1::RUNNING &&
        head.state != pendulum::v1::CANCELLING) {
      return absl::FailedPreconditionError(
          absl::StrCat("run ", run_id, " is ", RunStateName(head.state),
                       "; only STARTING, RUNNING or CANCELLING runs can be requeued"));
    }
    PENDULUM_ASSIGN_OR_RETURN(
        Statement * s,
        conn->Prepare("UPDATE runs SET state = ?, attempt = attempt + 1, worker_id = '', started_ms = 0, "
                      "points_emitted = 0, progress_steps_per_sec = 0, queue_reason = ? WHERE id = ?"));
    s->Bind(1, static_cast<int64_t>(pendulum::v1::QUEUED)).Bind(2, reason).Bind(3, run_id);
    PENDULUM_RETURN_IF_ERROR(s->Run());
    PENDULUM_RETURN_IF_ERROR(AppendEvent(conn.get(), run_id, head.attempt + 1, now, head.state,
                                         pendulum::v1::QUEUED, head.worker_id,
                                         absl::StrCat("requeued: ", reason)));
    PENDULUM_RETURN_IF_ERROR(txn.Commit());
  }
  return ReadRun(conn.get(), run_id);
}

absl::Status RunStore::SetQueueReason(int64_t run_id, const std::string& reason) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(Statement * s,
                            conn->Prepare("UPDATE runs SET queue_reason = ? WHERE id = ? AND state = ?"));
  s->Bind(1, reason).Bind(2, run_id).Bind(3, static_cast<int64_t>(pendulum::v1::QUEUED));
  PENDULUM_RETURN_IF_ERROR(s->Run());
  if (conn->Changes() == 0) {
    // Distinguish "not queued" (fine) from "no such run".
    PENDULUM_RETURN_IF_ERROR(ReadHead(conn.get(), run_id).status());
  }
  return absl::OkStatus();
}

absl::Status RunStore::RecordProgress(int64_t run_id, uint32_t attempt,
                                      const pendulum::v1::RunProgress& progress) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s,
      conn->Prepare("UPDATE runs SET progress_step = ?, progress_total_steps = ?, progress_epoch = ?, "
                    "progress_last_loss = ?, progress_steps_per_sec = ? WHERE id = ? AND attempt = ?"));
  s->Bind(1, progress.step())
      .Bind(2, progress.total_steps())
      .Bind(3, progress.epoch())
      .Bind(4, progress.last_loss())
      .Bind(5, progress.steps_per_second())
      .Bind(6, run_id)
      .Bind(7, static_cast<int64_t>(attempt));
  PENDULUM_RETURN_IF_ERROR(s->Run());
  if (conn->Changes() == 0) PENDULUM_RETURN_IF_ERROR(ReadHead(conn.get(), run_id).status());
  return absl::OkStatus();
}

absl::StatusOr<ResumePoint> RunStore::GetResumePoint(int64_t run_id) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(Statement * s,
                            conn->Prepare("SELECT resume_artifact_id, resume_step FROM runs WHERE id = ?"));
  s->Bind(1, run_id);
  PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
  if (!row) return absl::NotFoundError(absl::StrCat("run ", run_id, " not found"));
  ResumePoint point{s->ColumnText(0), s->ColumnInt(1)};
  s->Reset();
  return point;
}

absl::StatusOr<std::vector<RunEvent>> RunStore::ListRunEvents(int64_t run_id) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_RETURN_IF_ERROR(ReadHead(conn.get(), run_id).status());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s,
      conn->Prepare("SELECT id, run_id, attempt, time_ms, from_state, to_state, worker_id, reason "
                    "FROM run_events WHERE run_id = ? ORDER BY id"));
  s->Bind(1, run_id);
  std::vector<RunEvent> events;
  while (true) {
    PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    RunEvent e;
    e.id = s->ColumnInt(0);
    e.run_id = s->ColumnInt(1);
    e.attempt = static_cast<uint32_t>(s->ColumnInt(2));
    e.time_unix_ms = s->ColumnInt(3);
    e.from_state = static_cast<RunState>(s->ColumnInt(4));
    e.to_state = static_cast<RunState>(s->ColumnInt(5));
    e.worker_id = s->ColumnText(6);
    e.reason = s->ColumnText(7);
    events.push_back(std::move(e));
  }
  s->Reset();
  return events;
}

}  // namespace pendulum::store
