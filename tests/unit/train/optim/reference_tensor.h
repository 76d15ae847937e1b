#pragma once
// Reading /work/shared/reference/*.json for LibTorch tests: a tensor is
// {"shape": [...], "dtype": "float64"|"float32"|"int64"|"bool", "data": [...]}
// flattened row-major. Header-only; used by the optim and incremental tests.

#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/test_paths.h"

namespace pendulum::testing {

using ordered_json = nlohmann::ordered_json;

inline ordered_json LoadReferenceFile(const std::string& name) {
  const auto path = ReferenceDir() / name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open reference file " + path.string());
  return ordered_json::parse(in);
}

inline at::ScalarType ReferenceDtype(const std::string& dtype) {
  if (dtype == "float64") return at::kDouble;
  if (dtype == "float32") return at::kFloat;
  if (dtype == "int64") return at::kLong;
  if (dtype == "bool") return at::kBool;
  throw std::runtime_error("reference tensor has unknown dtype '" + dtype + "'");
}

// Exact: float32 values are stored as their exact double value.
inline at::Tensor ReferenceTensor(const ordered_json& j) {
  std::vector<int64_t> shape = j.at("shape").get<std::vector<int64_t>>();
  const at::ScalarType dtype = ReferenceDtype(j.at("dtype").get<std::string>());
  std::vector<double> data = j.at("data").get<std::vector<double>>();
  at::Tensor flat = at::empty({static_cast<int64_t>(data.size())}, at::TensorOptions().dtype(at::kDouble));
  std::copy(data.begin(), data.end(), flat.data_ptr<double>());
  return flat.reshape(shape).to(dtype).clone();
}

// max |a − b| in float64.
inline double MaxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0 && b.numel() == 0) return 0.0;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace pendulum::testing
