#include "server/store/metric_ingestor.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace pendulum::store {

using pendulum::v1::RunEvents;
using pendulum::v1::TrainerEvent;

// One queued item. Batches are written together; a supersede or flush is a
// barrier processed after everything queued before it has committed.
struct MetricIngestor::Work {
  enum class Kind { kBatch, kSupersede, kFlush };
  Kind kind = Kind::kBatch;
  RunEvents batch;
  IngestCallback done;
  int64_t events = 0;
  // kSupersede
  int64_t run_id = 0;
  uint32_t new_attempt = 0;
  int64_t resume_step = 0;
  std::promise<absl::Status> barrier_done;
};

// Everything the writer thread owns: the write connection, its prepared
// statements and the caches. Touched only by the writer thread (and by Start
// before the thread exists), so it needs no lock.
class MetricIngestor::Writer {
 public:
  Writer(std::unique_ptr<Connection> conn, const Clock* clock, IngestorOptions options)
      : conn_(std::move(conn)), clock_(clock), options_(std::move(options)) {}

  absl::Status Prepare();
  // Writes `batches` in one transaction; fills acks[i] for batches[i].
  void WriteBatches(const std::vector<Work*>& batches, std::vector<absl::StatusOr<IngestAck>>* acks);
  absl::Status Supersede(int64_t run_id, uint32_t new_attempt, int64_t resume_step);

 private:
  using AttemptKey = std::pair<int64_t, uint32_t>;
  // What is durably stored for one (run, attempt): everything <= acked, plus
  // the seqs in `above` (stored out of order, waiting for the gap to fill).
  // `above` lives only in memory: after a restart the worker resends every
  // unacked event, INSERT OR IGNORE keeps the rows single, and the set is rebuilt.
  struct AttemptState {
    uint64_t acked = 0;
    std::set<uint64_t> above;
  };
  struct Supersession {
    uint32_t attempt;
    int64_t resume_step;
  };

  // The newest Scalars of one batch: the run's progress is updated once per
  // batch, not once per event.
  struct BatchProgress {
    bool any = false;
    int64_t step = 0;
    double epoch = 0;
    int64_t time_ms = 0;
    bool has_loss = false;
    int64_t loss_step = 0;
    double loss = 0;
    // Applied after the scalar progress, so steps/s sees the previous step.
    bool finished = false;
    pendulum::v1::Finished finished_event;
  };

  absl::StatusOr<int64_t> NameId(const std::string& name);
  absl::StatusOr<AttemptState> LoadAttempt(const AttemptKey& key);
  absl::StatusOr<bool> RunExists(int64_t run_id);
  absl::StatusOr<const std::vector<Supersession>*> Supersessions(int64_t run_id);
  absl::Status WriteOne(const RunEvents& batch, AttemptState* state, IngestAck* ack);
  absl::Status WriteEvent(const RunEvents& batch, const TrainerEvent& e, bool superseded_check,
                          const std::vector<Supersession>& sups, int64_t* rows_inserted,
                          bool* any_row_new, BatchProgress* progress, IngestAck* ack);

  std::unique_ptr<Connection> conn_;
  const Clock* clock_;
  const IngestorOptions options_;

  Statement* insert_metric_ = nullptr;
  Statement* insert_osc_ = nullptr;
  Statement* insert_snapshot_ = nullptr;
  Statement* insert_checkpoint_ = nullptr;
  Statement* upsert_progress_ = nullptr;
  Statement* select_progress_ = nullptr;
  Statement* insert_name_ = nullptr;
  Statement* select_name_ = nullptr;
  Statement* select_run_ = nullptr;
  Statement* update_run_scalars_ = nullptr;
  Statement* update_run_started_ = nullptr;
  Statement* update_run_checkpoint_ = nullptr;
  Statement* update_run_finished_ = nullptr;
  Statement* select_supersessions_ = nullptr;

  absl::flat_hash_map<std::string, int64_t> name_ids_;
  absl::flat_hash_map<AttemptKey, AttemptState> attempts_;
  absl::flat_hash_set<int64_t> known_runs_;
  absl::flat_hash_map<int64_t, std::vector<Supersession>> supersessions_;
};

namespace {

// Attempt states kept in memory; beyond this, fully-acked ones are dropped
// (they reload from attempt_progress on next sight).
constexpr size_t kMaxCachedAttempts = 4096;

absl::Status Step(Statement* s) {
  absl::Status st = s->Run();
  s->Reset();
  return st;
}

}  // namespace

absl::Status MetricIngestor::Writer::Prepare() {
  struct {
    Statement** slot;
    const char* sql;
  } statements[] = {
      {&insert_metric_,
       "INSERT OR IGNORE INTO metrics(run_id, attempt, seq, name_id, step, value, time_ms, superseded) "
       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"},
      {&insert_osc_,
       "INSERT OR IGNORE INTO layer_oscillation(run_id, attempt, seq, layer_id, stat_id, step, value, "
       "superseded) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"},
      {&insert_snapshot_,
       "INSERT OR IGNORE INTO weight_snapshots(run_id, attempt, seq, layer, step, superseded, snapshot) "
       "VALUES (?, ?, ?, ?, ?, ?, ?)"},
      {&insert_checkpoint_,
       "INSERT OR IGNORE INTO run_checkpoints(run_id, attempt, seq, step, path, bytes, sha256, time_ms) "
       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"},
      {&upsert_progress_,
       "INSERT INTO attempt_progress(run_id, attempt, acked_seq, points_stored) VALUES (?, ?, ?, ?) "
       "ON CONFLICT(run_id, attempt) DO UPDATE SET acked_seq = excluded.acked_seq, "
       "points_stored = points_stored + excluded.points_stored"},
      {&select_progress_, "SELECT acked_seq FROM attempt_progress WHERE run_id = ? AND attempt = ?"},
      {&insert_name_, "INSERT OR IGNORE INTO metric_names(name) VALUES (?)"},
      {&select_name_, "SELECT id FROM metric_names WHERE name = ?"},
      {&select_run_, "SELECT 1 FROM runs WHERE id = ?"},
      // SET expressions see the old row, so steps/s compares with the previous progress.
      {&update_run_scalars_,
       "UPDATE runs SET "
       "progress_steps_per_sec = CASE WHEN progress_time_ms > 0 AND ?3 > progress_time_ms AND "
       "?1 > progress_step THEN (?1 - progress_step) * 1000.0 / (?3 - progress_time_ms) "
       "ELSE progress_steps_per_sec END, "
       "progress_step = ?1, progress_epoch = ?2, progress_time_ms = ?3, "
       "progress_last_loss = CASE WHEN ?4 THEN ?5 ELSE progress_last_loss END "
       "WHERE id = ?6 AND attempt = ?7 AND (progress_time_ms = 0 OR ?1 >= progress_step)"},
      {&update_run_started_,
       "UPDATE runs SET progress_step = ?1, progress_total_steps = CASE WHEN ?2 > 0 THEN ?2 ELSE "
       "progress_total_steps END, progress_time_ms = ?3 WHERE id = ?4 AND attempt = ?5"},
      {&update_run_checkpoint_,
       "UPDATE runs SET last_checkpoint_step = MAX(last_checkpoint_step, ?1) WHERE id = ?2 AND "
       "attempt = ?3"},
      {&update_run_finished_,
       "UPDATE runs SET points_emitted = ?1, progress_step = CASE WHEN ?2 > 0 THEN ?2 ELSE "
       "progress_step END WHERE id = ?3 AND attempt = ?4"},
      {&select_supersessions_,
       "SELECT attempt, resume_step FROM supersessions WHERE run_id = ? ORDER BY attempt"},
  };
  for (auto& st : statements) {
    PENDULUM_ASSIGN_OR_RETURN(*st.slot, conn_->Prepare(st.sql));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> MetricIngestor::Writer::NameId(const std::string& name) {
  auto it = name_ids_.find(name);
  if (it != name_ids_.end()) return it->second;
  insert_name_->Bind(1, name);
  PENDULUM_RETURN_IF_ERROR(Step(insert_name_));
  select_name_->Bind(1, name);
  PENDULUM_ASSIGN_OR_RETURN(bool row, select_name_->Step());
  if (!row) {
    select_name_->Reset();
    return absl::InternalError(absl::StrCat("metric name \"", name, "\" vanished after insert"));
  }
  int64_t id = select_name_->ColumnInt(0);
  select_name_->Reset();
  name_ids_.emplace(name, id);
  return id;
}

absl::StatusOr<MetricIngestor::Writer::AttemptState> MetricIngestor::Writer::LoadAttempt(
    const AttemptKey& key) {
  auto it = attempts_.find(key);
  if (it != attempts_.end()) return it->second;
  select_progress_->Bind(1, key.first).Bind(2, static_cast<int64_t>(key.second));
  PENDULUM_ASSIGN_OR_RETURN(bool row, select_progress_->Step());
  AttemptState state;
  if (row) state.acked = static_cast<uint64_t>(select_progress_->ColumnInt(0));
  select_progress_->Reset();
  return state;
}

absl::StatusOr<bool> MetricIngestor::Writer::RunExists(int64_t run_id) {
  if (known_runs_.contains(run_id)) return true;
  select_run_->Bind(1, run_id);
  PENDULUM_ASSIGN_OR_RETURN(bool row, select_run_->Step());
  select_run_->Reset();
  if (row) known_runs_.insert(run_id);  // runs are never deleted
  return row;
}

absl::StatusOr<const std::vector<MetricIngestor::Writer::Supersession>*>
MetricIngestor::Writer::Supersessions(int64_t run_id) {
  auto it = supersessions_.find(run_id);
  if (it != supersessions_.end()) return &it->second;
  std::vector<Supersession> list;
  select_supersessions_->Bind(1, run_id);
  while (true) {
    PENDULUM_ASSIGN_OR_RETURN(bool row, select_supersessions_->Step());
    if (!row) break;
    list.push_back({static_cast<uint32_t>(select_supersessions_->ColumnInt(0)),
                    select_supersessions_->ColumnInt(1)});
  }
  select_supersessions_->Reset();
  return &supersessions_.emplace(run_id, std::move(list)).first->second;
}

absl::Status MetricIngestor::Writer::WriteEvent(const RunEvents& batch, const TrainerEvent& e,
                                                bool superseded_check,
                                                const std::vector<Supersession>& sups,
                                                int64_t* rows_inserted, bool* any_row_new,
                                                BatchProgress* progress, IngestAck* ack) {
  const int64_t run = batch.run_id();
  const int64_t attempt = batch.attempt();
  const int64_t seq = static_cast<int64_t>(e.seq());
  const int64_t time_ms = e.time_unix_ms() != 0 ? e.time_unix_ms() : clock_->NowUnixMillis();
  // A point is superseded if a later attempt resumed from a checkpoint before its step.
  auto superseded = [&](int64_t step) -> int64_t {
    if (!superseded_check) return 0;
    for (const Supersession& s : sups) {
      if (s.attempt > static_cast<uint32_t>(attempt) && step > s.resume_step) return 1;
    }
    return 0;
  };
  switch (e.payload_case()) {
    case TrainerEvent::kScalars: {
      const auto& sc = e.scalars();
      const int64_t sup = superseded(sc.step());
      for (const auto& [name, value] : sc.values()) {
        PENDULUM_ASSIGN_OR_RETURN(int64_t name_id, NameId(name));
        insert_metric_->Bind(1, run)
            .Bind(2, attempt)
            .Bind(3, seq)
            .Bind(4, name_id)
            .Bind(5, sc.step())
            .Bind(6, value)
            .Bind(7, time_ms)
            .Bind(8, sup);
        PENDULUM_RETURN_IF_ERROR(Step(insert_metric_));
        if (conn_->Changes() > 0) {
          ++*rows_inserted;
          *any_row_new = true;
        }
      }
      ack->max_step = std::max(ack->max_step, sc.step());
      if (!progress->any || sc.step() >= progress->step) {
        progress->any = true;
        progress->step = sc.step();
        progress->epoch = sc.epoch();
        progress->time_ms = time_ms;
      }
      for (const std::string& n : options_.loss_names) {
        auto it = sc.values().find(n);
        if (it != sc.values().end()) {
          if (!progress->has_loss || sc.step() >= progress->loss_step) {
            progress->has_loss = true;
            progress->loss_step = sc.step();
            progress->loss = it->second;
          }
          break;
        }
      }
      break;
    }
    case TrainerEvent::kOscillation: {
      const auto& osc = e.oscillation();
      for (const auto& layer : osc.layers()) {
        const int64_t step = layer.step() != 0 ? layer.step() : osc.step();
        const int64_t sup = superseded(step);
        PENDULUM_ASSIGN_OR_RETURN(int64_t layer_id, NameId(layer.layer()));
        for (const auto& [stat, value] : layer.values()) {
          PENDULUM_ASSIGN_OR_RETURN(int64_t stat_id, NameId(stat));
          insert_osc_->Bind(1, run)
              .Bind(2, attempt)
              .Bind(3, seq)
              .Bind(4, layer_id)
              .Bind(5, stat_id)
              .Bind(6, step)
              .Bind(7, value)
              .Bind(8, sup);
          PENDULUM_RETURN_IF_ERROR(Step(insert_osc_));
          if (conn_->Changes() > 0) *any_row_new = true;
        }
      }
      break;
    }
    case TrainerEvent::kSnapshot: {
      const auto& snap = e.snapshot();
      std::string blob;
      if (!snap.SerializeToString(&blob)) return absl::InternalError("WeightSnapshot does not serialize");
      insert_snapshot_->Bind(1, run)
          .Bind(2, attempt)
          .Bind(3, seq)
          .Bind(4, snap.layer())
          .Bind(5, snap.step())
          .Bind(6, superseded(snap.step()))
          .BindBlob(7, blob);
      PENDULUM_RETURN_IF_ERROR(Step(insert_snapshot_));
      if (conn_->Changes() > 0) *any_row_new = true;
      break;
    }
    case TrainerEvent::kCheckpoint: {
      const auto& ck = e.checkpoint();
      insert_checkpoint_->Bind(1, run)
          .Bind(2, attempt)
          .Bind(3, seq)
          .Bind(4, ck.step())
          .Bind(5, ck.path())
          .Bind(6, ck.bytes())
          .Bind(7, ck.sha256())
          .Bind(8, time_ms);
      PENDULUM_RETURN_IF_ERROR(Step(insert_checkpoint_));
      if (conn_->Changes() > 0) *any_row_new = true;
      update_run_checkpoint_->Bind(1, ck.step()).Bind(2, run).Bind(3, attempt);
      PENDULUM_RETURN_IF_ERROR(Step(update_run_checkpoint_));
      ack->checkpoints.push_back(ck);
      break;
    }
    case TrainerEvent::kFinished: {
      const auto& fin = e.finished();
      PENDULUM_ASSIGN_OR_RETURN(
          Statement * s,
          conn_->Prepare("UPDATE attempt_progress SET points_emitted = ?, finished = 1 "
                         "WHERE run_id = ? AND attempt = ?"));
      // The attempt_progress row exists: the batch's upsert ran before its events.
      s->Bind(1, fin.points_emitted()).Bind(2, run).Bind(3, attempt);
      PENDULUM_RETURN_IF_ERROR(Step(s));
      progress->finished = true;
      progress->finished_event = fin;
      ack->finished = true;
      ack->finished_event = fin;
      *any_row_new = true;
      break;
    }
    case TrainerEvent::kStarted: {
      const auto& st = e.started();
      update_run_started_->Bind(1, st.first_step())
          .Bind(2, st.total_steps())
          .Bind(3, time_ms)
          .Bind(4, run)
          .Bind(5, attempt);
      PENDULUM_RETURN_IF_ERROR(Step(update_run_started_));
      *any_row_new = true;
      break;
    }
    case TrainerEvent::kLog:
    case TrainerEvent::PAYLOAD_NOT_SET:
      *any_row_new = true;  // nothing stored; acknowledged as received
      break;
  }
  return absl::OkStatus();
}

absl::Status MetricIngestor::Writer::WriteOne(const RunEvents& batch, AttemptState* state,
                                              IngestAck* ack) {
  const AttemptKey key{batch.run_id(), batch.attempt()};
  PENDULUM_ASSIGN_OR_RETURN(const std::vector<Supersession>* sups, Supersessions(key.first));
  bool check_sup = false;
  for (const Supersession& s : *sups) check_sup |= s.attempt > key.second;
  // Make sure attempt_progress has the row before events (Finished updates it).
  upsert_progress_->Bind(1, key.first).Bind(2, static_cast<int64_t>(key.second))
      .Bind(3, static_cast<int64_t>(state->acked)).Bind(4, int64_t{0});
  PENDULUM_RETURN_IF_ERROR(Step(upsert_progress_));
  int64_t rows = 0;
  BatchProgress progress;
  for (const TrainerEvent& e : batch.events()) {
    const uint64_t seq = e.seq();
    if (seq <= state->acked || state->above.count(seq) != 0) {
      ++ack->duplicate_events;  // already durably stored
      continue;
    }
    bool any_new = false;
    PENDULUM_RETURN_IF_ERROR(WriteEvent(batch, e, check_sup, *sups, &rows, &any_new, &progress, ack));
    if (!any_new) ++ack->duplicate_events;  // stored before a restart; INSERT OR IGNORE kept one copy
    // Advance the contiguous mark; park out-of-order seqs until the gap fills.
    if (seq == state->acked + 1) {
      ++state->acked;
      while (!state->above.empty() && *state->above.begin() == state->acked + 1) {
        state->above.erase(state->above.begin());
        ++state->acked;
      }
    } else {
      state->above.insert(seq);
    }
  }
  if (progress.any) {
    // Progress of the current attempt only (the WHERE clause ignores stale attempts).
    update_run_scalars_->Bind(1, progress.step)
        .Bind(2, progress.epoch)
        .Bind(3, progress.time_ms)
        .Bind(4, static_cast<int64_t>(progress.has_loss))
        .Bind(5, progress.loss)
        .Bind(6, key.first)
        .Bind(7, static_cast<int64_t>(key.second));
    PENDULUM_RETURN_IF_ERROR(Step(update_run_scalars_));
  }
  if (progress.finished) {
    const auto& fin = progress.finished_event;
    update_run_finished_->Bind(1, fin.points_emitted())
        .Bind(2, fin.final_step())
        .Bind(3, key.first)
        .Bind(4, static_cast<int64_t>(key.second));
    PENDULUM_RETURN_IF_ERROR(Step(update_run_finished_));
  }
  upsert_progress_->Bind(1, key.first).Bind(2, static_cast<int64_t>(key.second))
      .Bind(3, static_cast<int64_t>(state->acked)).Bind(4, rows);
  PENDULUM_RETURN_IF_ERROR(Step(upsert_progress_));
  ack->points_inserted += rows;
  return absl::OkStatus();
}

void MetricIngestor::Writer::WriteBatches(const std::vector<Work*>& batches,
                                          std::vector<absl::StatusOr<IngestAck>>* acks) {
  acks->assign(batches.size(), absl::UnavailableError("not written"));
  // Validate and check runs before the transaction, so one bad batch does not
  // fail the others.
  std::vector<size_t> valid;
  for (size_t i = 0; i < batches.size(); ++i) {
    const RunEvents& b = batches[i]->batch;
    if (b.run_id() <= 0 || b.attempt() == 0) {
      (*acks)[i] = absl::InvalidArgumentError(absl::StrCat(
          "events: run_id and attempt must be >= 1, got run_id ", b.run_id(), " attempt ", b.attempt()));
      continue;
    }
    bool bad_seq = false;
    for (const TrainerEvent& e : b.events()) bad_seq |= e.seq() == 0;
    if (bad_seq) {
      (*acks)[i] = absl::InvalidArgumentError(
          absl::StrCat("events of run ", b.run_id(), ": seq must be >= 1 (events are numbered 1, 2, …)"));
      continue;
    }
    absl::StatusOr<bool> exists = RunExists(b.run_id());
    if (!exists.ok()) {
      (*acks)[i] = exists.status();
      continue;
    }
    if (!*exists) {
      (*acks)[i] = absl::NotFoundError(absl::StrCat("run ", b.run_id(), " not found"));
      continue;
    }
    valid.push_back(i);
  }
  if (valid.empty()) return;

  // State changes are staged and adopted only after COMMIT succeeds.
  absl::flat_hash_map<AttemptKey, AttemptState> staged;
  std::vector<IngestAck> results(batches.size());
  absl::Status status = [&]() -> absl::Status {
    Transaction txn(conn_.get());
    PENDULUM_RETURN_IF_ERROR(txn.status());
    for (size_t i : valid) {
      const RunEvents& b = batches[i]->batch;
      const AttemptKey key{b.run_id(), b.attempt()};
      auto it = staged.find(key);
      if (it == staged.end()) {
        PENDULUM_ASSIGN_OR_RETURN(AttemptState loaded, LoadAttempt(key));
        it = staged.emplace(key, std::move(loaded)).first;
      }
      IngestAck& ack = results[i];
      ack.run_id = key.first;
      ack.attempt = key.second;
      PENDULUM_RETURN_IF_ERROR(WriteOne(b, &it->second, &ack));
    }
    // The no-loss rule: acks are produced only once this commit succeeded.
    return txn.Commit();
  }();
  if (!status.ok()) {
    // Rolled back: ids of names inserted in this transaction are gone too.
    name_ids_.clear();
    PENDULUM_LOG(WARNING) << "metric batch transaction failed, " << valid.size()
                          << " batches not acked: " << status;
    for (size_t i : valid) (*acks)[i] = status;
    return;
  }
  for (size_t i : valid) {
    const RunEvents& b = batches[i]->batch;
    results[i].acked_seq = staged[{b.run_id(), b.attempt()}].acked;
    (*acks)[i] = std::move(results[i]);
  }
  if (attempts_.size() + staged.size() > kMaxCachedAttempts) {
    for (auto it = attempts_.begin(); it != attempts_.end();) {
      if (it->second.above.empty()) {
        attempts_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  for (auto& [key, state] : staged) attempts_[key] = std::move(state);
}

absl::Status MetricIngestor::Writer::Supersede(int64_t run_id, uint32_t new_attempt,
                                               int64_t resume_step) {
  PENDULUM_ASSIGN_OR_RETURN(bool exists, RunExists(run_id));
  if (!exists) return absl::NotFoundError(absl::StrCat("run ", run_id, " not found"));
  if (new_attempt < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("new_attempt: got ", new_attempt, ", must be >= 2 (an attempt after the first)"));
  }
  Transaction txn(conn_.get());
  PENDULUM_RETURN_IF_ERROR(txn.status());
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * ins, conn_->Prepare("INSERT OR REPLACE INTO supersessions(run_id, attempt, resume_step) "
                                      "VALUES (?, ?, ?)"));
  ins->Bind(1, run_id).Bind(2, static_cast<int64_t>(new_attempt)).Bind(3, resume_step);
  PENDULUM_RETURN_IF_ERROR(Step(ins));
  for (const char* table : {"metrics", "layer_oscillation", "weight_snapshots"}) {
    PENDULUM_ASSIGN_OR_RETURN(
        Statement * up, conn_->Prepare(absl::StrCat("UPDATE ", table, " SET superseded = 1 WHERE run_id = ? "
                                                    "AND attempt < ? AND step > ? AND superseded = 0")));
    up->Bind(1, run_id).Bind(2, static_cast<int64_t>(new_attempt)).Bind(3, resume_step);
    PENDULUM_RETURN_IF_ERROR(Step(up));
  }
  absl::Status st = txn.Commit();
  supersessions_.erase(run_id);  // reload either way: the cache must match the database
  return st;
}

// ---------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<MetricIngestor>> MetricIngestor::Start(Database* db, const Clock* clock,
                                                                      IngestorOptions options) {
  if (options.max_events_per_transaction < 1 || options.max_queued_events < 1) {
    return absl::InvalidArgumentError(
        "IngestorOptions: max_events_per_transaction and max_queued_events must be >= 1");
  }
  PENDULUM_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, db->OpenConnection());
  auto writer = std::make_unique<Writer>(std::move(conn), clock, options);
  PENDULUM_RETURN_IF_ERROR(writer->Prepare());
  return std::unique_ptr<MetricIngestor>(new MetricIngestor(db, clock, std::move(options), std::move(writer)));
}

MetricIngestor::MetricIngestor(Database* /*db*/, const Clock* clock, IngestorOptions options,
                               std::unique_ptr<Writer> writer)
    : options_(std::move(options)), clock_(clock), writer_(std::move(writer)) {
  thread_ = std::thread([this] { Loop(); });
}

MetricIngestor::~MetricIngestor() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();  // Loop drains the queue before it returns
}

void MetricIngestor::Enqueue(std::unique_ptr<Work> work) {
  {
    absl::MutexLock lock(&mu_);
    // Backpressure: wait while the queue is full (a batch larger than the
    // limit still goes in once the queue has room).
    auto has_room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || queued_events_ < options_.max_queued_events;
    };
    mu_.Await(absl::Condition(&has_room));
    if (!stopping_) {
      queued_events_ += work->events;
      queue_.push_back(std::move(work));
      return;
    }
  }
  // Shutting down: fail the work outside the lock.
  absl::Status down = absl::UnavailableError("metric ingestor is shutting down");
  if (work->kind == Work::Kind::kBatch) {
    if (work->done) work->done(down);
  } else {
    work->barrier_done.set_value(down);
  }
}

void MetricIngestor::Submit(RunEvents batch, IngestCallback done) {
  auto work = std::make_unique<Work>();
  work->kind = Work::Kind::kBatch;
  work->events = std::max(1, batch.events_size());
  work->batch = std::move(batch);
  work->done = std::move(done);
  Enqueue(std::move(work));
}

std::future<absl::StatusOr<IngestAck>> MetricIngestor::Submit(RunEvents batch) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<IngestAck>>>();
  std::future<absl::StatusOr<IngestAck>> future = promise->get_future();
  Submit(std::move(batch), [promise](absl::StatusOr<IngestAck> ack) { promise->set_value(std::move(ack)); });
  return future;
}

absl::Status MetricIngestor::MarkSuperseded(int64_t run_id, uint32_t new_attempt, int64_t resume_step) {
  auto work = std::make_unique<Work>();
  work->kind = Work::Kind::kSupersede;
  work->run_id = run_id;
  work->new_attempt = new_attempt;
  work->resume_step = resume_step;
  std::future<absl::Status> done = work->barrier_done.get_future();
  Enqueue(std::move(work));
  return done.get();
}

void MetricIngestor::Flush() {
  auto work = std::make_unique<Work>();
  work->kind = Work::Kind::kFlush;
  std::future<absl::Status> done = work->barrier_done.get_future();
  Enqueue(std::move(work));
  done.get().IgnoreError();  // only "shutting down", after which nothing is pending anyway
}

int64_t MetricIngestor::QueuedEvents() const {
  absl::MutexLock lock(&mu_);
  return queued_events_;
}

void MetricIngestor::Loop() {
  std::vector<std::unique_ptr<Work>> taken;
  std::vector<Work*> batches;
  std::vector<absl::StatusOr<IngestAck>> acks;
  while (true) {
    taken.clear();
    int64_t taken_events = 0;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, and everything is drained
      // A barrier goes alone; otherwise take consecutive batches up to the limit.
      if (queue_.front()->kind != Work::Kind::kBatch) {
        taken.push_back(std::move(queue_.front()));
        queue_.pop_front();
      } else {
        while (!queue_.empty() && queue_.front()->kind == Work::Kind::kBatch &&
               (taken.empty() || taken_events + queue_.front()->events <= options_.max_events_per_transaction)) {
          taken_events += queue_.front()->events;
          taken.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
    }
    // SQL runs without the lock: Submit never waits on the database.
    if (taken.front()->kind == Work::Kind::kSupersede) {
      Work& w = *taken.front();
      w.barrier_done.set_value(writer_->Supersede(w.run_id, w.new_attempt, w.resume_step));
    } else if (taken.front()->kind == Work::Kind::kFlush) {
      taken.front()->barrier_done.set_value(absl::OkStatus());
    } else {
      batches.clear();
      for (auto& w : taken) batches.push_back(w.get());
      writer_->WriteBatches(batches, &acks);
      for (size_t i = 0; i < taken.size(); ++i) {
        if (taken[i]->done) taken[i]->done(std::move(acks[i]));
      }
    }
    {
      absl::MutexLock lock(&mu_);
      queued_events_ -= taken_events;  // barriers count 0
    }
  }
}

}  // namespace pendulum::store
