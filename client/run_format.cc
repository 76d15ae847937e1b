#include "client/run_format.h"

#include <cmath>
#include <cstdio>
#include <ctime>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace pendulum::client {

std::string StateName(v1::RunState state) {
  if (state == v1::RUN_STATE_UNSPECIFIED) return "UNKNOWN";
  return v1::RunState_Name(state);
}

bool ParseState(const std::string& text, v1::RunState* state) {
  return v1::RunState_Parse(absl::AsciiStrToUpper(text), state) && *state != v1::RUN_STATE_UNSPECIFIED;
}

bool IsTerminal(v1::RunState state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
}

std::string FormatTime(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[64];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>((s % 3600) / 60));
  } else if (s >= 60) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%llds", static_cast<long long>(s));
  }
  return buf;
}

std::string FormatProgress(const v1::RunProgress& p) {
  if (p.step() <= 0) return "-";
  if (p.total_steps() <= 0) return absl::StrCat(p.step());
  char pct[32];
  std::snprintf(pct, sizeof(pct), "%.1f%%", 100.0 * p.step() / p.total_steps());
  return absl::StrCat(p.step(), "/", p.total_steps(), " (", pct, ")");
}

std::string ProgressBar(const v1::RunProgress& p, int width) {
  std::string out;
  double frac = p.total_steps() > 0 ? std::min(1.0, static_cast<double>(p.step()) / p.total_steps()) : 0;
  if (p.total_steps() > 0) {
    if (width > 0) {
      const int filled = static_cast<int>(frac * width);
      out = absl::StrCat("[", std::string(filled, '#'), std::string(width - filled, '.'), "] ");
    }
    char pct[16];
    std::snprintf(pct, sizeof(pct), "%3.0f%% ", 100 * frac);
    out += pct;
  }
  absl::StrAppend(&out, "step ", p.step());
  if (p.total_steps() > 0) absl::StrAppend(&out, "/", p.total_steps());
  char buf[96];
  std::snprintf(buf, sizeof(buf), " loss %.4g", p.last_loss());
  out += buf;
  if (p.steps_per_second() > 0) {
    std::snprintf(buf, sizeof(buf), " %.3g steps/s", p.steps_per_second());
    out += buf;
    if (p.total_steps() > 0) {
      absl::StrAppend(&out, " ETA ", FormatDuration((p.total_steps() - p.step()) / p.steps_per_second()));
    }
  }
  return out;
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  options.always_print_enums_as_ints = false;
  std::string json;
  // Serialising a valid in-memory message cannot fail; an empty object is a safe fallback.
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) return "{}";
  return json;
}

}  // namespace pendulum::client
