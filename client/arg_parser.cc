#include "client/arg_parser.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pendulum::client {

void ArgParser::AddValueFlag(const std::string& name) { declared_[name] = true; }
void ArgParser::AddBoolFlag(const std::string& name) { declared_[name] = false; }

absl::Status ArgParser::Parse(const std::vector<std::string>& args) {
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      if (arg == "--") {
        flags_done = true;
        continue;
      }
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_inline = false;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline = true;
    }
    auto it = declared_.find(name);
    if (it == declared_.end()) {
      std::vector<std::string> known;
      for (const auto& [n, v] : declared_) known.push_back("--" + n);
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, "; this command takes: ",
                                                     known.empty() ? "no flags" : absl::StrJoin(known, ", ")));
    }
    if (!it->second) {
      if (has_inline) return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      values_[name].push_back("true");
      continue;
    }
    if (!has_inline) {
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat("--", name, ": missing value"));
      value = args[++i];
    }
    values_[name].push_back(value);
  }
  return absl::OkStatus();
}

std::string ArgParser::Get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() || it->second.empty() ? fallback : it->second.back();
}

const std::vector<std::string>& ArgParser::GetAll(const std::string& name) const {
  static const std::vector<std::string> kEmpty;
  auto it = values_.find(name);
  return it == values_.end() ? kEmpty : it->second;
}

}  // namespace pendulum::client
