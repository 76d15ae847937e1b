#pragma once
// Paths tests need: the source tree, the build tree (binaries), the shared
// reference vectors, and a fresh temporary directory per test. Header-only.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "gtest/gtest.h"

namespace pendulum::testing {

inline std::filesystem::path SourceDir() {
  const char* env = std::getenv("PENDULUM_SOURCE_DIR");
  return env ? std::filesystem::path(env) : std::filesystem::current_path();
}

inline std::filesystem::path BinaryDir() {
  const char* env = std::getenv("PENDULUM_BINARY_DIR");
  return env ? std::filesystem::path(env) : std::filesystem::current_path();
}

// PENDULUM_REFERENCE_DIR when set, else ../shared/reference beside the checkout.
inline std::filesystem::path ReferenceDir() {
  const char* env = std::getenv("PENDULUM_REFERENCE_DIR");
  if (env && *env) return std::filesystem::path(env);
  return SourceDir().parent_path() / "shared" / "reference";
}

// A directory unique to the running test, created empty, removed by the caller
// (or left for inspection when the test fails; tmp is cleaned by the OS).
inline std::filesystem::path MakeTestTempDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("pendulum-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace pendulum::testing
