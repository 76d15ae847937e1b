#pragma once
// Left-aligned plain-text table for terminal output: a header row, then rows,
// columns padded to the widest cell, two spaces apart. Not thread-safe.

#include <ostream>
#include <string>
#include <vector>

namespace pendulum::client {

class TablePrinter {
 public:
  explicit TablePrinter(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size(); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace pendulum::client
