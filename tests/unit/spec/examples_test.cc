// Every examples/**/*.yaml must parse and validate: examples are documentation
// that users copy, so none may rot. The glob runs at test time, so examples
// added by any method owner are covered without touching this file.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "spec/run_spec_parser.h"
#include "spec/run_spec_validator.h"
#include "tests/support/test_paths.h"

namespace pendulum::spec {
namespace {

std::vector<std::filesystem::path> ExampleFiles() {
  std::vector<std::filesystem::path> files;
  const auto root = testing::SourceDir() / "examples";
  if (!std::filesystem::exists(root)) return files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(
           root, std::filesystem::directory_options::follow_directory_symlink)) {
    const auto ext = e.path().extension();
    if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml" || ext == ".json")) {
      files.push_back(e.path());
    }
  }
  return files;
}

TEST(ExamplesTest, EveryExampleParsesAndValidates) {
  const auto files = ExampleFiles();
  ASSERT_GE(files.size(), 2u) << "examples/ missing under " << testing::SourceDir();
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<v1::RunSpec> spec = ParseRunSpec(text.str());
    ASSERT_TRUE(spec.ok()) << path << ":\n" << spec.status().message();
    absl::Status valid = ValidateRunSpec(*spec);
    EXPECT_TRUE(valid.ok()) << path << ":\n" << valid.message();
  }
}

TEST(ExamplesTest, BaseExamplesExist) {
  for (const char* name : {"mlp_fashion_mnist.yaml", "quick_synthetic.yaml"}) {
    EXPECT_TRUE(std::filesystem::exists(testing::SourceDir() / "examples" / name)) << name;
  }
}

}  // namespace
}  // namespace pendulum::spec
