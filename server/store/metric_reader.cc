#include "server/store/metric_reader.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace pendulum::store {

using pendulum::v1::MetricPoint;
using pendulum::v1::MetricSeries;

namespace {

constexpr uint32_t kMaxPointsLimit = 100000;

absl::Status CheckRun(Connection* conn, int64_t run_id) {
  PENDULUM_ASSIGN_OR_RETURN(Statement * s, conn->Prepare("SELECT 1 FROM runs WHERE id = ?"));
  s->Bind(1, run_id);
  PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
  s->Reset();
  if (!row) return absl::NotFoundError(absl::StrCat("run ", run_id, " not found"));
  return absl::OkStatus();
}

// (id, name) of the distinct names a run has in `table`'s `column`, found by a
// skip-scan over the (run_id, column, step) index: one seek per name, however
// many points each name has.
absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> DistinctNames(Connection* conn,
                                                                           const std::string& table,
                                                                           const std::string& column,
                                                                           int64_t run_id) {
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s,
      conn->Prepare(absl::StrCat(
          "WITH RECURSIVE n(id) AS (SELECT MIN(", column, ") FROM ", table, " WHERE run_id = ?1 ",
          "UNION ALL SELECT (SELECT MIN(", column, ") FROM ", table, " WHERE run_id = ?1 AND ", column,
          " > n.id) FROM n WHERE n.id IS NOT NULL) ",
          "SELECT m.id, m.name FROM n JOIN metric_names m ON m.id = n.id ORDER BY m.name")));
  s->Bind(1, run_id);
  std::vector<std::pair<int64_t, std::string>> names;
  while (true) {
    PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    names.emplace_back(s->ColumnInt(0), s->ColumnText(1));
  }
  s->Reset();
  return names;
}

// id of `name`, or -1 if no point ever used it.
absl::StatusOr<int64_t> LookupNameId(Connection* conn, const std::string& name) {
  PENDULUM_ASSIGN_OR_RETURN(Statement * s, conn->Prepare("SELECT id FROM metric_names WHERE name = ?"));
  s->Bind(1, name);
  PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
  int64_t id = row ? s->ColumnInt(0) : -1;
  s->Reset();
  return id;
}

// Keeps the last point of each of at most max_points equal step ranges.
void Downsample(uint32_t max_points, MetricSeries* series) {
  const int n = series->points_size();
  if (max_points == 0 || n <= static_cast<int>(max_points)) return;
  const int64_t lo = series->points(0).step();
  const int64_t hi = series->points(n - 1).step();
  const int64_t width = std::max<int64_t>(1, (hi - lo + max_points) / max_points);  // ceil((hi-lo+1)/max)
  google::protobuf::RepeatedPtrField<MetricPoint> kept;
  for (int i = 0; i < n; ++i) {
    const int64_t bucket = (series->points(i).step() - lo) / width;
    const bool last_in_bucket = i + 1 == n || (series->points(i + 1).step() - lo) / width != bucket;
    if (last_in_bucket) *kept.Add() = series->points(i);
  }
  series->mutable_points()->Swap(&kept);
}

}  // namespace

MetricReader::MetricReader(Database* db) : db_(db) {}

absl::StatusOr<pendulum::v1::QueryMetricsResponse> MetricReader::QueryMetrics(
    const pendulum::v1::QueryMetricsRequest& request) {
  if (request.step_min() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("step_min: got ", request.step_min(), ", must be >= 0"));
  }
  if (request.step_max() < 0 || (request.step_max() != 0 && request.step_max() < request.step_min())) {
    return absl::InvalidArgumentError(absl::StrCat("step_max: got ", request.step_max(),
                                                   ", must be 0 (no limit) or >= step_min (",
                                                   request.step_min(), ")"));
  }
  if (request.max_points() > kMaxPointsLimit) {
    return absl::InvalidArgumentError(absl::StrCat("max_points: got ", request.max_points(),
                                                   ", must be 0..", kMaxPointsLimit));
  }
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_RETURN_IF_ERROR(CheckRun(conn.get(), request.run_id()));
  // One read transaction: every series comes from the same snapshot.
  Transaction txn(conn.get(), /*immediate=*/false);
  PENDULUM_RETURN_IF_ERROR(txn.status());
  std::vector<std::pair<int64_t, std::string>> names;
  if (request.names().empty()) {
    PENDULUM_ASSIGN_OR_RETURN(names, DistinctNames(conn.get(), "metrics", "name_id", request.run_id()));
  } else {
    std::vector<std::string> sorted(request.names().begin(), request.names().end());
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    for (const std::string& name : sorted) {
      PENDULUM_ASSIGN_OR_RETURN(int64_t id, LookupNameId(conn.get(), name));
      names.emplace_back(id, name);
    }
  }
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s,
      conn->Prepare("SELECT step, value, time_ms, attempt FROM metrics "
                    "WHERE run_id = ? AND name_id = ? AND step >= ? AND step <= ? AND (? OR superseded = 0) "
                    "ORDER BY step, attempt, seq"));
  pendulum::v1::QueryMetricsResponse response;
  const int64_t step_max = request.step_max() == 0 ? INT64_MAX : request.step_max();
  for (const auto& [id, name] : names) {
    MetricSeries* series = response.add_series();
    series->set_name(name);
    if (id < 0) continue;  // a name never stored: an empty series
    s->Bind(1, request.run_id())
        .Bind(2, id)
        .Bind(3, request.step_min())
        .Bind(4, step_max)
        .Bind(5, static_cast<int64_t>(request.include_superseded()));
    while (true) {
      PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
      if (!row) break;
      MetricPoint* p = series->add_points();
      p->set_step(s->ColumnInt(0));
      p->set_value(s->ColumnDouble(1));
      p->set_time_unix_ms(s->ColumnInt(2));
      p->set_attempt(static_cast<uint32_t>(s->ColumnInt(3)));
    }
    s->Reset();
    Downsample(request.max_points(), series);
  }
  PENDULUM_RETURN_IF_ERROR(txn.Commit());
  return response;
}

absl::StatusOr<pendulum::v1::QueryOscillationResponse> MetricReader::QueryOscillation(
    const pendulum::v1::QueryOscillationRequest& request) {
  if (request.snapshot_step() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot_step: got ", request.snapshot_step(), ", must be >= 0 (0 = latest)"));
  }
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_RETURN_IF_ERROR(CheckRun(conn.get(), request.run_id()));
  Transaction txn(conn.get(), /*immediate=*/false);
  PENDULUM_RETURN_IF_ERROR(txn.status());
  pendulum::v1::QueryOscillationResponse response;

  // Layers, by name.
  std::vector<std::pair<int64_t, std::string>> layers;
  if (request.layer().empty()) {
    PENDULUM_ASSIGN_OR_RETURN(layers,
                              DistinctNames(conn.get(), "layer_oscillation", "layer_id", request.run_id()));
  } else {
    PENDULUM_ASSIGN_OR_RETURN(int64_t id, LookupNameId(conn.get(), request.layer()));
    if (id >= 0) layers.emplace_back(id, request.layer());
  }
  // Statistic filter: id → name (empty = all; names resolved lazily).
  absl::flat_hash_map<int64_t, std::string> stat_names;
  const bool all_stats = request.stats().empty();
  for (const std::string& stat : request.stats()) {
    PENDULUM_ASSIGN_OR_RETURN(int64_t id, LookupNameId(conn.get(), stat));
    if (id >= 0) stat_names[id] = stat;
  }
  if (all_stats || !stat_names.empty()) {
    PENDULUM_ASSIGN_OR_RETURN(
        Statement * s,
        conn->Prepare("SELECT o.step, o.attempt, o.seq, o.stat_id, n.name, o.value FROM layer_oscillation o "
                      "JOIN metric_names n ON n.id = o.stat_id "
                      "WHERE o.run_id = ? AND o.layer_id = ? AND o.superseded = 0 "
                      "ORDER BY o.step, o.attempt, o.seq"));
    for (const auto& [layer_id, layer_name] : layers) {
      s->Bind(1, request.run_id()).Bind(2, layer_id);
      pendulum::v1::LayerOscillationPoint* point = nullptr;
      int64_t cur_attempt = -1;
      int64_t cur_seq = -1;
      while (true) {
        PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
        if (!row) break;
        const int64_t stat_id = s->ColumnInt(3);
        if (!all_stats && !stat_names.contains(stat_id)) continue;
        const int64_t attempt = s->ColumnInt(1);
        const int64_t seq = s->ColumnInt(2);
        // One point per (event, layer): rows of one event are adjacent.
        if (point == nullptr || attempt != cur_attempt || seq != cur_seq) {
          point = response.add_series();
          point->set_step(s->ColumnInt(0));
          point->set_layer(layer_name);
          cur_attempt = attempt;
          cur_seq = seq;
        }
        (*point->mutable_values())[s->ColumnText(4)] = s->ColumnDouble(5);
      }
      s->Reset();
    }
  }

  if (request.include_snapshot()) {
    std::vector<std::string> snap_layers;
    if (!request.layer().empty()) {
      snap_layers.push_back(request.layer());
    } else {
      PENDULUM_ASSIGN_OR_RETURN(
          Statement * ls,
          conn->Prepare("SELECT DISTINCT layer FROM weight_snapshots WHERE run_id = ? AND superseded = 0 "
                        "ORDER BY layer"));
      ls->Bind(1, request.run_id());
      while (true) {
        PENDULUM_ASSIGN_OR_RETURN(bool row, ls->Step());
        if (!row) break;
        snap_layers.push_back(ls->ColumnText(0));
      }
      ls->Reset();
    }
    PENDULUM_ASSIGN_OR_RETURN(
        Statement * s,
        conn->Prepare("SELECT snapshot FROM weight_snapshots WHERE run_id = ? AND layer = ? AND superseded = 0 "
                      "AND step <= ? ORDER BY step DESC, attempt DESC, seq DESC LIMIT 1"));
    const int64_t at = request.snapshot_step() == 0 ? INT64_MAX : request.snapshot_step();
    for (const std::string& layer : snap_layers) {
      s->Bind(1, request.run_id()).Bind(2, layer).Bind(3, at);
      PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
      if (row) {
        if (!response.add_snapshots()->ParseFromString(s->ColumnBlob(0))) {
          s->Reset();
          return absl::InternalError(absl::StrCat("run ", request.run_id(), " layer ", layer,
                                                  ": stored snapshot does not parse"));
        }
      }
      s->Reset();
    }
  }
  PENDULUM_RETURN_IF_ERROR(txn.Commit());
  return response;
}

absl::StatusOr<std::vector<std::string>> MetricReader::MetricNames(int64_t run_id) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_RETURN_IF_ERROR(CheckRun(conn.get(), run_id));
  PENDULUM_ASSIGN_OR_RETURN(auto names, DistinctNames(conn.get(), "metrics", "name_id", run_id));
  std::vector<std::string> out;
  for (auto& [id, name] : names) out.push_back(std::move(name));
  return out;
}

namespace {
absl::StatusOr<std::vector<AttemptCounts>> ReadCounts(Connection* conn, int64_t run_id, int64_t attempt) {
  PENDULUM_ASSIGN_OR_RETURN(
      Statement * s,
      conn->Prepare("SELECT attempt, acked_seq, points_stored, points_emitted FROM attempt_progress "
                    "WHERE run_id = ? AND (? = 0 OR attempt = ?) ORDER BY attempt"));
  s->Bind(1, run_id).Bind(2, attempt).Bind(3, attempt);
  std::vector<AttemptCounts> out;
  while (true) {
    PENDULUM_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    AttemptCounts c;
    c.run_id = run_id;
    c.attempt = static_cast<uint32_t>(s->ColumnInt(0));
    c.acked_seq = static_cast<uint64_t>(s->ColumnInt(1));
    c.points_stored = s->ColumnInt(2);
    c.points_emitted = s->ColumnInt(3);
    out.push_back(c);
  }
  s->Reset();
  return out;
}
}  // namespace

absl::StatusOr<AttemptCounts> MetricReader::CountPoints(int64_t run_id, uint32_t attempt) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_RETURN_IF_ERROR(CheckRun(conn.get(), run_id));
  if (attempt == 0) return absl::InvalidArgumentError("attempt: got 0, must be >= 1");
  PENDULUM_ASSIGN_OR_RETURN(std::vector<AttemptCounts> counts, ReadCounts(conn.get(), run_id, attempt));
  if (counts.empty()) {
    AttemptCounts c;
    c.run_id = run_id;
    c.attempt = attempt;
    return c;
  }
  return counts.front();
}

absl::StatusOr<std::vector<AttemptCounts>> MetricReader::CountPointsPerAttempt(int64_t run_id) {
  PENDULUM_ASSIGN_OR_RETURN(Database::Lease conn, db_->Acquire());
  PENDULUM_RETURN_IF_ERROR(CheckRun(conn.get(), run_id));
  return ReadCounts(conn.get(), run_id, 0);
}

}  // namespace pendulum::store
