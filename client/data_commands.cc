// metrics, oscillation, compare: reading back what runs recorded.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/arg_parser.h"
#include "client/commands.h"
#include "client/run_format.h"
#include "client/status_conversion.h"
#include "client/table_printer.h"
#include "google/protobuf/descriptor.h"
#include "spec/yaml_message_writer.h"

namespace pendulum::client {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

absl::Status ParseInt(const ArgParser& p, const char* flag, int64_t lo, int64_t hi, int64_t* out) {
  if (!p.Has(flag)) return absl::OkStatus();
  if (!absl::SimpleAtoi(p.Get(flag), out) || *out < lo || *out > hi) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": got '", p.Get(flag), "', must be an integer in ",
                                                   lo, "..", hi));
  }
  return absl::OkStatus();
}

// CSV field quoting (names may hold commas in principle).
std::string Csv(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) { return std::isfinite(v) ? spec::FormatDouble(v) : "null"; }

// Leaf fields of a spec as "path" -> "value", for finding what a sweep varied.
void Flatten(const Message& m, const std::string& prefix, std::map<std::string, std::string>* out) {
  const auto* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    const std::string path = prefix.empty() ? f->name() : prefix + "." + f->name();
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated()) {
      const Message& sub = r->GetMessage(m, f);
      std::map<std::string, std::string> inner;
      Flatten(sub, path, &inner);
      if (inner.empty()) (*out)[path] = "{}";  // e.g. method.plain
      out->insert(inner.begin(), inner.end());
      continue;
    }
    // Scalars, lists and maps: their YAML rendering is a fine comparable value.
    std::string yaml;
    {
      std::unique_ptr<Message> copy(m.New());
      copy->CopyFrom(m);
      std::vector<const FieldDescriptor*> all;
      copy->GetReflection()->ListFields(*copy, &all);
      for (const FieldDescriptor* g : all) {
        if (g != f) copy->GetReflection()->ClearField(copy.get(), g);
      }
      yaml = spec::MessageToYaml(*copy);
    }
    const std::string key = f->name() + ": ";
    if (yaml.rfind(key, 0) == 0) yaml = yaml.substr(key.size());
    while (!yaml.empty() && yaml.back() == '\n') yaml.pop_back();
    (*out)[path] = yaml;
  }
}

absl::Status ListSweepRuns(int64_t sweep, const CliContext& ctx, std::vector<int64_t>* ids) {
  v1::ListRunsRequest request;
  request.set_sweep_id(sweep);
  request.set_page_size(1000);
  do {
    v1::ListRunsResponse response;
    auto call = ctx.NewCall();
    if (absl::Status s = FromGrpcStatus(ctx.runs->ListRuns(call.get(), request, &response)); !s.ok()) return s;
    for (const v1::Run& r : response.runs()) ids->push_back(r.id());
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  if (ids->empty()) return absl::NotFoundError(absl::StrCat("sweep ", sweep, ": no runs visible to you"));
  std::sort(ids->begin(), ids->end());
  return absl::OkStatus();
}

}  // namespace

absl::Status MetricsCommand(const Args& args, const CliContext& ctx) {
  ArgParser p;
  p.AddValueFlag("name");
  p.AddValueFlag("format");
  p.AddValueFlag("max-points");
  p.AddValueFlag("step-min");
  p.AddValueFlag("step-max");
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  if (p.positional().size() != 1) return absl::InvalidArgumentError("metrics: expected exactly one RUN id");
  int64_t id = 0;
  if (absl::Status s = ParseRunId(p.positional()[0], &id); !s.ok()) return s;
  const std::string format = p.Get("format", "csv");
  if (format != "csv" && format != "json") {
    return absl::InvalidArgumentError(absl::StrCat("--format: got '", format, "', must be csv or json"));
  }
  v1::QueryMetricsRequest request;
  request.set_run_id(id);
  for (const std::string& n : p.GetAll("name")) {
    for (const std::string& part : SplitSweepValues(n)) request.add_names(part);
  }
  int64_t max_points = 0, step_min = 0, step_max = 0;
  if (absl::Status s = ParseInt(p, "max-points", 0, 100000, &max_points); !s.ok()) return s;
  if (absl::Status s = ParseInt(p, "step-min", 0, INT64_MAX, &step_min); !s.ok()) return s;
  if (absl::Status s = ParseInt(p, "step-max", 0, INT64_MAX, &step_max); !s.ok()) return s;
  request.set_max_points(static_cast<uint32_t>(max_points));
  request.set_step_min(step_min);
  request.set_step_max(step_max);
  v1::QueryMetricsResponse response;
  auto call = ctx.NewCall();
  if (absl::Status s = FromGrpcStatus(ctx.runs->QueryMetrics(call.get(), request, &response)); !s.ok()) return s;
  if (format == "json") {
    *ctx.out << ToJson(response) << "\n";
    return absl::OkStatus();
  }
  *ctx.out << "name,step,value,time_unix_ms,attempt\n";
  for (const v1::MetricSeries& series : response.series()) {
    for (const v1::MetricPoint& pt : series.points()) {
      *ctx.out << Csv(series.name()) << "," << pt.step() << "," << spec::FormatDouble(pt.value()) << ","
               << pt.time_unix_ms() << "," << pt.attempt() << "\n";
    }
  }
  return absl::OkStatus();
}

absl::Status OscillationCommand(const Args& args, const CliContext& ctx) {
  ArgParser p;
  p.AddValueFlag("layer");
  p.AddValueFlag("top");
  p.AddValueFlag("step");
  p.AddBoolFlag("json");
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  if (p.positional().size() != 1) return absl::InvalidArgumentError("oscillation: expected exactly one RUN id");
  int64_t id = 0, top = 10, step = 0;
  if (absl::Status s = ParseRunId(p.positional()[0], &id); !s.ok()) return s;
  if (absl::Status s = ParseInt(p, "top", 1, 10000, &top); !s.ok()) return s;
  if (absl::Status s = ParseInt(p, "step", 0, INT64_MAX, &step); !s.ok()) return s;
  v1::QueryOscillationRequest request;
  request.set_run_id(id);
  request.set_layer(p.Get("layer"));
  request.set_snapshot_step(step);
  request.set_include_snapshot(true);
  v1::QueryOscillationResponse response;
  auto call = ctx.NewCall();
  if (absl::Status s = FromGrpcStatus(ctx.runs->QueryOscillation(call.get(), request, &response)); !s.ok()) return s;
  if (p.Has("json")) {
    *ctx.out << ToJson(response) << "\n";
    return absl::OkStatus();
  }
  // Latest statistics per layer.
  std::map<std::string, const v1::LayerOscillationPoint*> latest;
  std::set<std::string> stat_names;
  for (const auto& pt : response.series()) {
    auto& slot = latest[pt.layer()];
    if (slot == nullptr || pt.step() >= slot->step()) slot = &pt;
    for (const auto& [k, v] : pt.values()) stat_names.insert(k);
  }
  if (latest.empty() && response.snapshots().empty()) {
    *ctx.out << "run " << id << ": no oscillation data" << (request.layer().empty() ? "" : " for layer " + request.layer())
             << "\n";
    return absl::OkStatus();
  }
  if (!latest.empty()) {
    std::vector<std::string> header = {"LAYER", "STEP"};
    header.insert(header.end(), stat_names.begin(), stat_names.end());
    TablePrinter table(header);
    for (const auto& [layer, pt] : latest) {
      std::vector<std::string> row = {layer, absl::StrCat(pt->step())};
      for (const std::string& n : stat_names) {
        auto it = pt->values().find(n);
        row.push_back(it == pt->values().end() ? "-" : Num(it->second));
      }
      table.AddRow(row);
    }
    table.Print(*ctx.out);
  }
  for (const v1::WeightSnapshot& snap : response.snapshots()) {
    *ctx.out << "\n" << snap.layer() << " @ step " << snap.step() << " (shape ["
             << absl::StrJoin(snap.shape(), ", ") << "]): top " << std::min<int64_t>(top, snap.top_size())
             << " oscillating weights\n";
    TablePrinter table({"RANK", "INDEX", "COORDS", "FREQUENCY", "COUNT"});
    for (int i = 0; i < snap.top_size() && i < top; ++i) {
      const v1::TopWeight& w = snap.top(i);
      table.AddRow({absl::StrCat(i + 1), absl::StrCat(w.index()), "[" + absl::StrJoin(w.coords(), ",") + "]",
                    Num(w.frequency()), absl::StrCat(w.count())});
    }
    table.Print(*ctx.out);
  }
  return absl::OkStatus();
}

absl::Status CompareCommand(const Args& args, const CliContext& ctx) {
  ArgParser p;
  p.AddValueFlag("sweep");
  p.AddValueFlag("metric");
  p.AddBoolFlag("json");
  if (absl::Status s = p.Parse(args); !s.ok()) return s;
  std::vector<int64_t> ids;
  for (const std::string& text : p.positional()) {
    int64_t id = 0;
    if (absl::Status s = ParseRunId(text, &id); !s.ok()) return s;
    ids.push_back(id);
  }
  if (p.Has("sweep")) {
    int64_t sweep = 0;
    if (!absl::SimpleAtoi(p.Get("sweep"), &sweep) || sweep <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("--sweep: got '", p.Get("sweep"), "', must be a sweep id"));
    }
    if (absl::Status s = ListSweepRuns(sweep, ctx, &ids); !s.ok()) return s;
  }
  if (ids.empty()) return absl::InvalidArgumentError("compare: give RUN ids or --sweep ID");
  std::vector<std::string> metric_names;
  for (const std::string& m : p.GetAll("metric")) {
    for (const std::string& part : SplitSweepValues(m)) metric_names.push_back(part);
  }

  struct RunData {
    v1::Run run;
    std::map<std::string, std::string> config;
    std::map<std::string, double> final_values;
  };
  std::vector<RunData> data;
  for (int64_t id : ids) {
    RunData d;
    v1::GetRunRequest get;
    get.set_run_id(id);
    auto call = ctx.NewCall();
    if (absl::Status s = FromGrpcStatus(ctx.runs->GetRun(call.get(), get, &d.run)); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("run ", id, ": ", s.message()));
    }
    Flatten(d.run.spec(), "", &d.config);
    v1::QueryMetricsRequest q;
    q.set_run_id(id);
    for (const auto& n : metric_names) q.add_names(n);
    q.set_max_points(1);  // downsampling keeps the last value of the bucket: the final value
    v1::QueryMetricsResponse r;
    auto call2 = ctx.NewCall();
    if (absl::Status s = FromGrpcStatus(ctx.runs->QueryMetrics(call2.get(), q, &r)); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("run ", id, ": ", s.message()));
    }
    for (const auto& series : r.series()) {
      if (series.points().empty()) continue;
      const v1::MetricPoint* last = &series.points(0);
      for (const auto& pt : series.points()) {
        if (pt.step() >= last->step()) last = &pt;
      }
      d.final_values[series.name()] = last->value();
    }
    if (d.run.state() != v1::SUCCEEDED) {
      *ctx.err << "note: run " << id << " is " << StateName(d.run.state()) << "; its latest values are included\n";
    }
    data.push_back(std::move(d));
  }
  // The swept configuration: spec paths whose values differ between runs,
  // except the ones that identify a replicate (seed) or only label it.
  std::set<std::string> varying;
  std::set<std::string> all_paths;
  for (const auto& d : data) {
    for (const auto& [k, v] : d.config) all_paths.insert(k);
  }
  for (const std::string& path : all_paths) {
    if (path == "seed" || path == "name" || path == "description" || path.rfind("tags", 0) == 0) continue;
    // Lineage, not configuration: each seed of a pipeline (FP → QAT → CGA)
    // initialises from, or distils from, its own seed's earlier run.
    if (path == "init.from_run" || path == "init.checkpoint_path" || path == "distill.teacher_run" ||
        path == "distill.teacher_checkpoint") {
      continue;
    }
    std::set<std::string> values;
    for (const auto& d : data) {
      auto it = d.config.find(path);
      values.insert(it == d.config.end() ? "(unset)" : it->second);
    }
    if (values.size() > 1) varying.insert(path);
  }
  std::map<std::string, std::vector<const RunData*>> groups;
  for (const auto& d : data) {
    std::vector<std::string> parts;
    for (const std::string& path : varying) {
      auto it = d.config.find(path);
      parts.push_back(path + "=" + (it == d.config.end() ? "(unset)" : it->second));
    }
    groups[parts.empty() ? "(all runs)" : absl::StrJoin(parts, " ")].push_back(&d);
  }
  std::set<std::string> names;
  for (const auto& d : data) {
    for (const auto& [k, v] : d.final_values) names.insert(k);
  }
  if (!metric_names.empty()) names = std::set<std::string>(metric_names.begin(), metric_names.end());

  struct Row {
    std::string config, metric;
    double mean = 0, std = 0;
    size_t n = 0;
    std::vector<int64_t> runs;
  };
  std::vector<Row> rows;
  for (const auto& [config, members] : groups) {
    for (const std::string& metric : names) {
      Row row{config, metric};
      std::vector<double> values;
      for (const RunData* d : members) {
        auto it = d->final_values.find(metric);
        if (it == d->final_values.end()) continue;
        values.push_back(it->second);
        row.runs.push_back(d->run.id());
      }
      if (values.empty()) continue;
      row.n = values.size();
      for (double v : values) row.mean += v;
      row.mean /= values.size();
      if (values.size() > 1) {
        double ss = 0;
        for (double v : values) ss += (v - row.mean) * (v - row.mean);
        row.std = std::sqrt(ss / (values.size() - 1));  // sample std over seeds
      }
      rows.push_back(row);
    }
  }
  if (p.Has("json")) {
    *ctx.out << "[";
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      *ctx.out << (i ? ",\n" : "\n") << "{\"config\": " << JsonString(r.config) << ", \"metric\": " << JsonString(r.metric)
               << ", \"mean\": " << JsonNumber(r.mean) << ", \"std\": " << JsonNumber(r.std) << ", \"n\": " << r.n
               << ", \"runs\": [" << absl::StrJoin(r.runs, ", ") << "]}";
    }
    *ctx.out << (rows.empty() ? "]\n" : "\n]\n");
    return absl::OkStatus();
  }
  if (rows.empty()) {
    *ctx.out << "no metrics recorded for runs " << absl::StrJoin(ids, ", ") << "\n";
    return absl::OkStatus();
  }
  TablePrinter table({"CONFIG", "METRIC", "MEAN ± STD", "N", "RUNS"});
  for (const Row& r : rows) {
    table.AddRow({r.config, r.metric, Num(r.mean) + " ± " + Num(r.std), absl::StrCat(r.n), absl::StrJoin(r.runs, ",")});
  }
  table.Print(*ctx.out);
  return absl::OkStatus();
}

}  // namespace pendulum::client
