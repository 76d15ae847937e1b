#pragma once
// Command-line parsing for one `pendulum` command: declared flags (with or
// without a value, repeatable or not) and positional arguments. Accepts
// `--flag value`, `--flag=value` and `--` (end of flags). Unknown flags and
// missing values are INVALID_ARGUMENT naming the flag. Not thread-safe.

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace pendulum::client {

class ArgParser {
 public:
  // A flag taking a value (repeatable: every occurrence is kept).
  void AddValueFlag(const std::string& name);
  // A boolean flag (no value).
  void AddBoolFlag(const std::string& name);

  absl::Status Parse(const std::vector<std::string>& args);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  // Last value given, or `fallback`.
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  const std::vector<std::string>& GetAll(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, bool> declared_;  // name -> takes a value
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

}  // namespace pendulum::client
