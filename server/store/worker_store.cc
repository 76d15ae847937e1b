#include "server/store/worker_store.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace pendulum::store {

using pendulum::v1::WorkerInfo;
using pendulum::v1::WorkerState;

namespace {

WorkerState Shown(int64_t state, bool draining) {
  auto s = static_cast<WorkerState>(state);
  return (s == pendulum::v1::WORKER_ONLINE && draining) ? pendulum::v1::WORKER_DRAINING : s;
}

// Fills running_runs and free_gpus / free_slots from the active runs.
absl::Status FillUsage(Connection* conn, WorkerInfo* w) {
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s,
      conn->Prepare("SELECT id, req_gpus, req_gpu_fraction FROM runs "
                    "WHERE worker_id = ? AND state IN (?, ?, ?) ORDER BY id"));
  s->Bind(1, w->id())
      .Bind(2, static_cast<int64_t>(pendulum::v1::STARTING))
      .Bind(3, static_cast<int64_t>(pendulum::v1::RUNNING))
      .Bind(4, static_cast<int64_t>(pendulum::v1::CANCELLING));
  int64_t gpus_used = 0;
  int64_t slots_used = 0;
  w->clear_running_runs();
  while (true) {
    PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    w->add_running_runs(s->ColumnInt(0));
    int64_t gpus = s->ColumnInt(1);
    double fraction = s->ColumnDouble(2);
    if (gpus > 0) {
      gpus_used += gpus;
    } else if (fraction > 0) {
      gpus_used += 1;
    } else {
      slots_used += 1;
    }
  }
  s->Reset();
  const int64_t gpus_total = w->gpus_size();
  w->set_free_gpus(static_cast<uint32_t>(std::max<int64_t>(0, gpus_total - gpus_used)));
  w->set_free_slots(static_cast<uint32_t>(std::max<int64_t>(0, int64_t{w->slots()} - slots_used)));
  return absl::OkStatus();
}

absl::StatusOr<WorkerInfo> ReadWorker(Connection* conn, const std::string& id) {
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s,
      conn->Prepare("SELECT info, state, draining, last_heartbeat_ms FROM workers WHERE id = ?"));
  s->Bind(1, id);
  PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
  if (!row) return absl::NotFoundError(absl::StrCat("worker \"", id, "\" not found"));
  WorkerInfo w;
  if (!w.ParseFromString(s->ColumnBlob(0))) {
    s->Reset();
    return absl::InternalError(absl::StrCat("worker \"", id, "\": stored info does not parse"));
  }
  w.set_id(id);
  w.set_state(Shown(s->ColumnInt(1), s->ColumnInt(2) != 0));
  w.set_last_heartbeat_unix_ms(s->ColumnInt(3));
  s->Reset();
  PENDULUM_RETURN_IF_ERROR(FillUsage(conn, &w));
  return w;
}

}  // namespace

WorkerStore::WorkerStore(Database* db, const Clock* clock) : db_(db), clock_(clock) {}

absl::StatusOr<WorkerInfo> WorkerStore::UpsertWorker(const WorkerInfo& info) {
  if (info.id().empty()) return absl::InvalidArgumentError("worker_id: must not be empty");
  WorkerInfo stored;
  stored.set_id(info.id());
  stored.set_hostname(info.hostname());
  *stored.mutable_gpus() = info.gpus();
  stored.set_slots(info.slots());
  *stored.mutable_labels() = info.labels();
  stored.set_version(info.version());
  std::string blob;
  if (!stored.SerializeToString(&blob)) return absl::InternalError("WorkerInfo does not serialize");
  const int64_t now = clock_->NowUnixMillis();
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s,
      conn->Prepare("INSERT INTO workers(id, hostname, state, draining, slots, gpu_count, info, "
                    "registered_ms, last_heartbeat_ms) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET hostname = excluded.hostname, state = excluded.state, "
                    "slots = excluded.slots, gpu_count = excluded.gpu_count, info = excluded.info, "
                    "registered_ms = excluded.registered_ms, last_heartbeat_ms = excluded.last_heartbeat_ms"));
  s->Bind(1, info.id())
      .Bind(2, info.hostname())
      .Bind(3, static_cast<int64_t>(pendulum::v1::WORKER_ONLINE))
      .Bind(4, static_cast<int64_t>(info.slots()))
      .Bind(5, static_cast<int64_t>(info.gpus_size()))
      .BindBlob(6, blob)
      .Bind(7, now)
      .Bind(8, now);
  PENDULUM_RETURN_IF_ERROR(s->Run());
  return ReadWorker(conn.get(), info.id());
}

absl::Status WorkerStore::Heartbeat(const std::string& worker_id,
                                    const std::vector<pendulum::v1::GpuInfo>& gpus) {
  const int64_t now = clock_->NowUnixMillis();
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  Transaction txn(conn.get());
  PENDULUM_RETURN_IF_ERROR(txn.status());
  if (!gpus.empty()) {
    PENDULUM_ASSIGN_OR_RETURN(WorkerInfo w, ReadWorker(conn.get(), worker_id));
    w.clear_gpus();
    for (const auto& g : gpus) *w.add_gpus() = g;
    w.clear_running_runs();
    std::string blob;
    if (!w.SerializeToString(&blob)) return absl::InternalError("WorkerInfo does not serialize");
    PENDULUM_ASSIGN_OR_RETURN(Statement * u,
                              conn->Prepare("UPDATE workers SET info = ?, gpu_count = ? WHERE id = ?"));
    u->BindBlob(1, blob).Bind(2, static_cast<int64_t>(gpus.size())).Bind(3, worker_id);
    PENDULUM_RETURN_IF_ERROR(u->Run());
  }
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s, conn->Prepare("UPDATE workers SET last_heartbeat_ms = ?, state = ? WHERE id = ?"));
  s->Bind(1, now).Bind(2, static_cast<int64_t>(pendulum::v1::WORKER_ONLINE)).Bind(3, worker_id);
  PENDULUM_RETURN_IF_ERROR(s->Run());
  if (conn->Changes() == 0) {
    return absl::NotFoundError(absl::StrCat("worker \"", worker_id, "\" not found (not registered)"));
  }
  return txn.Commit();
}

absl::Status WorkerStore::SetWorkerState(const std::string& worker_id, WorkerState state) {
  if (state != pendulum::v1::WORKER_ONLINE && state != pendulum::v1::WORKER_LOST &&
      state != pendulum::v1::WORKER_OFFLINE) {
    return absl::InvalidArgumentError(absl::StrCat(
        "state: got ", WorkerState_Name(state),
        ", must be WORKER_ONLINE, WORKER_LOST or WORKER_OFFLINE (draining is SetDraining)"));
  }
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(Statement * s, conn->Prepare("UPDATE workers SET state = ? WHERE id = ?"));
  s->Bind(1, static_cast<int64_t>(state)).Bind(2, worker_id);
  PENDULUM_RETURN_IF_ERROR(s->Run());
  if (conn->Changes() == 0) return absl::NotFoundError(absl::StrCat("worker \"", worker_id, "\" not found"));
  return absl::OkStatus();
}

absl::StatusOr<WorkerInfo> WorkerStore::SetDraining(const std::string& worker_id, bool draining) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_ASSIGN_OR_RETURN(Statement * s, conn->Prepare("UPDATE workers SET draining = ? WHERE id = ?"));
  s->Bind(1, static_cast<int64_t>(draining)).Bind(2, worker_id);
  PENDULUM_RETURN_IF_ERROR(s->Run());
  if (conn->Changes() == 0) return absl::NotFoundError(absl::StrCat("worker \"", worker_id, "\" not found"));
  return ReadWorker(conn.get(), worker_id);
}

absl::StatusOr<WorkerInfo> WorkerStore::GetWorker(const std::string& worker_id) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  return ReadWorker(conn.get(), worker_id);
}

absl::StatusOr<std::vector<WorkerInfo>> WorkerStore::ListWorkers() {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  std::vector<std::string> ids;
  {
    PENDULUM_ASSIGN_OR_RETURN(Statement * s, conn->Prepare("SELECT id FROM workers ORDER BY id"));
    while (true) {
      PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
      if (!row) break;
      ids.push_back(s->ColumnText(0));
    }
    s->Reset();
  }
  std::vector<WorkerInfo> workers;
  for (const std::string& id : ids) {
    PENDULUM_ASSIGN_OR_RETURN(WorkerInfo w, ReadWorker(conn.get(), id));
    workers.push_back(std::move(w));
  }
  return workers;
}

}  // namespace pendulum::store
