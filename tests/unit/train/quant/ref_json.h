#pragma once
// Reads reference tensors ({"shape", "dtype", "data"}) from the shared
// reference vectors and compares torch tensors against them. Test-only.

#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "gtest/gtest.h"

namespace pendulum::train::quant::testing {

inline at::ScalarType DtypeFromName(const std::string& name) {
  if (name == "float64") return at::kDouble;
  if (name == "float32") return at::kFloat;
  if (name == "bool") return at::kBool;
  if (name == "int64") return at::kLong;
  if (name == "int32") return at::kInt;
  ADD_FAILURE() << "unknown reference dtype '" << name << "'";
  return at::kDouble;
}

inline at::Tensor TensorFromJson(const nlohmann::json& j) {
  std::vector<int64_t> shape = j.at("shape").get<std::vector<int64_t>>();
  std::vector<double> data;
  for (const auto& v : j.at("data")) data.push_back(v.get<double>());
  at::Tensor t = at::tensor(data, at::kDouble);
  t = t.reshape(shape);
  return t.to(DtypeFromName(j.at("dtype").get<std::string>()));
}

// Tolerance of the case: 1e-6 for float64, 1e-5 for float32 (abs and rel).
inline double ToleranceFor(const std::string& dtype) { return dtype == "float32" ? 1e-5 : 1e-6; }

inline void ExpectTensorNear(const at::Tensor& actual, const nlohmann::json& expected, double tol,
                             const std::string& what) {
  at::Tensor e = TensorFromJson(expected).to(at::kDouble);
  ASSERT_TRUE(actual.defined()) << what << ": no value";
  at::Tensor a = actual.detach().to(at::kDouble).reshape(e.sizes());
  at::Tensor err = (a - e).abs() - (e.abs() * tol + tol);
  const double worst = err.numel() ? err.max().item<double>() : -1.0;
  if (worst > 0) {
    const int64_t i = err.reshape({-1}).argmax().item<int64_t>();
    ADD_FAILURE() << what << ": mismatch at flat index " << i << ": got " << a.reshape({-1})[i].item<double>()
                  << ", expected " << e.reshape({-1})[i].item<double>() << " (tol " << tol << ")";
  }
}

}  // namespace pendulum::train::quant::testing
