#include "worker/train/reg/compander_function.h"

#include "absl/strings/str_cat.h"

namespace pendulum::train::reg {

absl::StatusOr<CompanderFamily> ParseCompanderFamily(const std::string& name) {
  if (name.empty() || name == "tanh") return CompanderFamily::kTanh;
  if (name == "mulaw" || name == "mu_law") return CompanderFamily::kMuLaw;
  if (name == "power") return CompanderFamily::kPower;
  return absl::InvalidArgumentError(absl::StrCat(
      "spec.method.compander.family: got \"", name, "\", must be one of tanh, mu_law, power"));
}

const char* CompanderFamilyName(CompanderFamily family) {
  switch (family) {
    case CompanderFamily::kTanh: return "tanh";
    case CompanderFamily::kMuLaw: return "mu_law";
    case CompanderFamily::kPower: return "power";
  }
  return "?";
}

at::Tensor CompanderFunction::Forward(const at::Tensor& v, const at::Tensor& a,
                                      const at::Tensor& beta) const {
  switch (family) {
    case CompanderFamily::kTanh:
      return a * at::tanh(beta * v / a);
    case CompanderFamily::kMuLaw:
      return at::sign(v) * a * at::log1p(beta * at::abs(v) / a) / at::log1p(beta);
    case CompanderFamily::kPower: {
      // Shifted so that f(0) = 0 exactly and f stays odd and continuous.
      const at::Tensor offset = a * at::pow(power_eps / a, beta);
      return at::sign(v) * (a * at::pow((at::abs(v) + power_eps) / a, beta) - offset);
    }
  }
  return v;
}

at::Tensor CompanderFunction::Inverse(const at::Tensor& w, const at::Tensor& a,
                                      const at::Tensor& beta) const {
  switch (family) {
    case CompanderFamily::kTanh: {
      const at::Tensor limit = 0.999 * a;
      const at::Tensor wc = at::max(at::min(w, limit), -limit);
      return a / beta * at::atanh(wc / a);
    }
    case CompanderFamily::kMuLaw:
      return at::sign(w) * a / beta * at::expm1(at::abs(w) * at::log1p(beta) / a);
    case CompanderFamily::kPower: {
      const at::Tensor offset = a * at::pow(power_eps / a, beta);
      const at::Tensor u = (at::abs(w) + offset) / a;
      return at::sign(w) * at::clamp_min(a * at::pow(u, 1.0 / beta) - power_eps, 0.0);
    }
  }
  return w;
}

at::Tensor CompanderFunction::Derivative(const at::Tensor& v, const at::Tensor& a,
                                         const at::Tensor& beta) const {
  switch (family) {
    case CompanderFamily::kTanh: {
      const at::Tensor t = at::tanh(beta * v / a);
      return beta * (1 - t * t);
    }
    case CompanderFamily::kMuLaw:
      return beta / (at::log1p(beta) * (1 + beta * at::abs(v) / a));
    case CompanderFamily::kPower:
      return beta * at::pow((at::abs(v) + power_eps) / a, beta - 1);
  }
  return at::ones_like(v);
}

}  // namespace pendulum::train::reg
